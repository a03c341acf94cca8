"""Engine: seconds per L-BFGS iteration, weft (default precision and fp32) vs pastiche, and
weft's final loss after N iterations at its default precision vs fp32 (method: docs/benchmarks.md)."""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench import DESIGN, STYLE
from scripts.bench.machine import devices, load1, med, no_gpu_rows, quartiles, rotated, sync, torch_threads
from scripts.bench.render import Table

TITLE = "Engine: seconds per iteration vs pastiche, and bf16 vs fp32 loss (issue 4)"
PASTICHE_STYLE_LAYERS = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]


def square_rgb(path: Path, size: int) -> np.ndarray:
    """The image's central square resized to ``size`` x ``size`` (so weft and pastiche see the same pixels)."""
    from PIL import Image

    from pipeline.manifest.images import load_rgb

    rgb = load_rgb(path)
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side]))
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


class WeftRun:
    """The engine's whole-repeat problem at one scale (``whole_problem``), optimised from the design."""

    def __init__(self, content_rgb: np.ndarray, style_rgb: np.ndarray, precision: str, device: str, repeat: str):
        import torch

        from pipeline.engine.device import effective_precision
        from pipeline.engine.knit import needs_knit
        from pipeline.engine.targets import compute_style_targets
        from pipeline.engine.vgg import get_model
        from pipeline.engine.whole import whole_problem
        from pipeline.repeat.lattice import as_repeat
        from pipeline.settings import Settings

        self.device = torch.device(device)
        self.settings = Settings(precision=precision)
        self.mode = effective_precision(precision, self.device)
        self.model = get_model(self.settings.weights, str(self.device), pooling=self.settings.pooling)
        rep, size = as_repeat(repeat), content_rgb.shape[:2]
        targets = compute_style_targets(self.model, [(style_rgb, 1.0)], size, self.settings, self.device)
        knit = needs_knit(content_rgb, rep)
        self.problem = whole_problem(content_rgb, targets, rep, size, self.settings, self.device, knit=knit)

    def run(self, n: int) -> tuple[Any, dict[str, float], list[float], list[float]]:
        """n iterations from the design: (image, last losses, seconds of each step, total loss per step)."""
        from pipeline.engine.optimise import optimise

        stamps = [time.perf_counter()]
        totals: list[float] = []

        def callback(step: int, total: int, losses: dict[str, float]) -> None:
            sync(str(self.device))
            stamps.append(time.perf_counter())
            totals.append(losses["total"])

        image, last = optimise(self.model, self.problem, self.problem.content, self.settings, n, self.device, callback)
        return image, last, list(np.diff(stamps)), totals

    def steps(self, n: int) -> list[float]:
        """Seconds of optimiser steps 2..n of a fresh L-BFGS from the design (step 1 excluded)."""
        return self.run(n)[2][1:]

    def score(self, image: Any) -> dict[str, float]:
        """The engine's fp32 score of ``image`` under this run's problem (``optimise.score``)."""
        from pipeline.engine.optimise import score

        return score(self.model, self.problem, image, self.settings)


class PasticheRun:
    """pastiche's own L-BFGS loop (one ``draw()`` per iteration) on the same pixels and layers."""

    def __init__(self, content_path: Path, style_path: Path, size: int, device: str):
        from pastiche.pastiche import PasticheArtist

        self.artist = PasticheArtist(
            str(content_path), [str(style_path)], optimizer="lbfgs", size=size, device=device,
            content_layers=["block4_relu2"], style_layers=PASTICHE_STYLE_LAYERS,
        )  # fmt: skip
        self.start = self.artist.pastiche.detach().clone()
        self.device = device

    def steps(self, n: int) -> list[float]:
        """Seconds of draws 2..n of a fresh L-BFGS from the start image (as the weft side does)."""
        import torch

        with torch.no_grad():
            self.artist.pastiche.copy_(self.start)
        self.artist.optimizer = torch.optim.LBFGS([self.artist.pastiche], max_iter=1, lr=1.0)
        seconds = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.artist.draw()
            sync(self.device)
            seconds.append(time.perf_counter() - t0)
        return seconds[1:]


def bench_engine(
    sizes: tuple[int, ...] = (256, 512),
    *,
    rounds: int = 7,
    steps: int = 5,
    loss_iterations: int = 100,
    loss_sizes: tuple[int, ...] | None = None,
    threads: tuple[int, ...] = (1, 2),
    device: str = "all",
    repeat: str = "block",
    design: Path = DESIGN,
    style: Path = STYLE,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Rows of kind 'speed' (per implementation and size), 'ratio' (pastiche / weft) and 'loss'.

    Each round runs every implementation for ``steps`` iterations in a rotating order; on the
    CPU once per torch thread count in ``threads``; the loss rows with the first thread count.
    """
    rows: list[dict] = []
    loss_sizes = sizes if loss_sizes is None else loss_sizes
    for dev in devices(device):
        for index, count in enumerate(threads if dev == "cpu" else (0,)):
            with torch_threads(count or None), tempfile.TemporaryDirectory(prefix="weft-bench-") as tmp:
                rows += _engine_on(dev, sizes, rounds, steps, loss_iterations if index == 0 else 0, loss_sizes,
                                   repeat, design, style, Path(tmp), log)  # fmt: skip
    return rows + no_gpu_rows(device, kind="speed", device="cuda", size="256 / 512", impl="weft / pastiche")


def _engine_on(
    dev: str, sizes: tuple[int, ...], rounds: int, steps: int, loss_iterations: int, loss_sizes: tuple[int, ...],
    repeat: str, design: Path, style: Path, tmp: Path, log: Callable[[str], None],
) -> list[dict]:  # fmt: skip
    import torch
    from PIL import Image

    from pipeline.manifest.images import load_rgb

    rows: list[dict] = []
    style_rgb = load_rgb(style)
    thread_note = torch.get_num_threads() if dev == "cpu" else "-"
    for size in sizes:
        content_rgb = square_rgb(design, size)
        content_path = tmp / f"content-{size}.png"
        Image.fromarray(content_rgb).save(content_path)
        engines: dict[str, Any] = {
            "weft auto": WeftRun(content_rgb, style_rgb, "auto", dev, repeat),
            "weft fp32": WeftRun(content_rgb, style_rgb, "fp32", dev, repeat),
            "pastiche": PasticheRun(content_path, style, size, dev),
        }
        names = list(engines)
        for name in names:  # warm-up: oneDNN primitive creation, allocator, caches
            engines[name].steps(3)
        samples: dict[str, list[float]] = defaultdict(list)
        per_round: dict[str, list[float]] = defaultdict(list)
        loads = []
        for r in range(rounds):
            for name in rotated(names, r):
                loads.append(load1())
                secs = engines[name].steps(steps)
                samples[name] += secs
                per_round[name].append(med(secs))
            log(f"engine {dev} {size}px {thread_note} threads round {r + 1}/{rounds}: "
                + ", ".join(f"{n} {per_round[n][-1]:.3f}s" for n in names) + f" (load {loads[-1]})")  # fmt: skip
        load = f"{med(loads):.2f} ({min(loads):.2f}-{max(loads):.2f})"
        label = {name: f"weft auto ({engines[name].mode})" if name == "weft auto" else name for name in names}
        for name in names:
            q1, q3 = quartiles(samples[name])
            rows.append({
                "kind": "speed", "device": dev, "size": size, "impl": label[name], "threads": thread_note,
                "s_per_iter": med(samples[name]), "q1": q1, "q3": q3, "n": len(samples[name]),
                "round_medians": [round(x, 4) for x in per_round[name]], "load": load,
            })  # fmt: skip
        pastiche = med(samples["pastiche"])
        for name in ("weft auto", "weft fp32"):
            # paired: within a round the blocks ran back to back, so they saw about the same load
            ratio_rounds = [p / w for p, w in zip(per_round["pastiche"], per_round[name])]
            rows.append({
                "kind": "ratio", "device": dev, "size": size, "impl": label[name],
                "ratio": med(ratio_rounds), "ratio_pooled": pastiche / med(samples[name]),
                "ratio_min_round": min(ratio_rounds), "ratio_max_round": max(ratio_rounds),
                "ratio_rounds": [round(x, 3) for x in ratio_rounds], "threads": thread_note, "load": load,
            })  # fmt: skip
        if size in loss_sizes and loss_iterations > 0:
            rows.append(_engine_loss(engines["weft auto"], engines["weft fp32"], size, loss_iterations, dev, log))
            rows[-1]["threads"] = thread_note
        del engines
    return rows


def _max_jump(totals: list[float]) -> float:
    """Largest loss of a step over the best loss before it (1.0: the loss never went up)."""
    best, worst = float("inf"), 1.0
    for value in totals:
        if best < float("inf"):
            worst = max(worst, value / best)
        best = min(best, value)
    return worst


def _engine_loss(auto: WeftRun, fp32: WeftRun, size: int, iterations: int, dev: str,
                 log: Callable[[str], None]) -> dict:  # fmt: skip
    """weft's final loss after ``iterations`` from the same start: default precision vs fp32."""
    loads = [load1()]
    image_a, last_a, secs_a, totals_a = auto.run(iterations)
    loads.append(load1())
    image_f, last_f, secs_f, totals_f = fp32.run(iterations)
    loads.append(load1())
    # one yardstick: both final images (and the start) scored under the fp32 problem
    auto_in_fp32, fp32_in_fp32 = fp32.score(image_a), fp32.score(image_f)
    start = fp32.score(fp32.problem.content)
    row = {
        "kind": "loss", "device": dev, "size": size, "iterations": iterations, "mode": auto.mode,
        "auto_total": last_a["total"], "auto_content": last_a["content"], "auto_style": last_a["style"],
        "fp32_total": last_f["total"], "fp32_content": last_f["content"], "fp32_style": last_f["style"],
        "rel_diff": (last_a["total"] - last_f["total"]) / last_f["total"],
        "auto_total_fp32eval": auto_in_fp32["total"], "fp32_total_fp32eval": fp32_in_fp32["total"],
        "rel_diff_fp32eval": (auto_in_fp32["total"] - fp32_in_fp32["total"]) / fp32_in_fp32["total"],
        "start_total_fp32eval": start["total"],
        "auto_s_per_iter_late": med(secs_a[len(secs_a) // 2 :]), "fp32_s_per_iter_late": med(secs_f[len(secs_f) // 2 :]),
        "auto_max_jump": _max_jump(totals_a), "fp32_max_jump": _max_jump(totals_f),
        "load": f"{med(loads):.2f}",
    }  # fmt: skip
    log(f"engine {dev} {size}px loss after {iterations}: {auto.mode} {row['auto_total']:.4g} vs fp32 "
        f"{row['fp32_total']:.4g} ({100 * row['rel_diff']:+.2f}%); fp32 eval {100 * row['rel_diff_fp32eval']:+.2f}%")  # fmt: skip
    return row


def tables(rows: list[dict]) -> list[Table]:
    speed = [r for r in rows if r["kind"] == "speed"]
    ratio = [r for r in rows if r["kind"] == "ratio"]
    loss = [r for r in rows if r["kind"] == "loss"]
    return [
        ("seconds per L-BFGS iteration (median; q1-q3 over all timed steps)",
         ["device", "size px", "implementation", "threads", "s / iter", "q1-q3", "steps", "load 1-min"],
         [[r["device"], f"{r['size']}x{r['size']}", r["impl"], str(r["threads"]), f"{r['s_per_iter']:.3f}",
           f"{r['q1']:.3f}-{r['q3']:.3f}", str(r["n"]), r["load"]] for r in speed]),
        ("pastiche / weft (time per iteration; > 1: weft faster): median over rounds of the ratio within each round",
         ["device", "size px", "threads", "weft", "pastiche / weft", "per round", "needs", "load 1-min"],
         [[r["device"], f"{r['size']}x{r['size']}", str(r["threads"]), r["impl"], f"**{r['ratio']:.2f}x**",
           " ".join(f"{x:.2f}" for x in r.get("ratio_rounds", [r["ratio_min_round"], r["ratio_max_round"]])),
           ">= 1.5x" + (" (met)" if r["ratio"] >= 1.5 else " (NOT met)") if "auto" in r["impl"] else "-",
           r["load"]] for r in ratio]),
        ("weft's final loss (content_weight x content + style_weight x style) after N iterations from the same start",
         ["device", "size px", "threads", "N", "default (" + (loss[0]["mode"] if loss else "auto") + ")", "fp32",
          "difference", "both images scored in fp32 (start: loss of the start image)",
          "worst loss jump (default / fp32)", "s/iter late (default / fp32)", "load"],
         [[r["device"], f"{r['size']}x{r['size']}", str(r["threads"]), str(r["iterations"]), f"{r['auto_total']:.4g}",
           f"{r['fp32_total']:.4g}", f"**{100 * r['rel_diff']:+.2f}%**",
           f"{r['auto_total_fp32eval']:.4g} vs {r['fp32_total_fp32eval']:.4g} ({100 * r['rel_diff_fp32eval']:+.2f}%; "
           f"start {r['start_total_fp32eval']:.4g})",
           f"{r.get('auto_max_jump', float('nan')):.3g}x / {r.get('fp32_max_jump', float('nan')):.3g}x",
           f"{r['auto_s_per_iter_late']:.3f} / {r['fp32_s_per_iter_late']:.3f}", r["load"]] for r in loss]),
    ]  # fmt: skip


def summary(rows: list[dict]) -> str:
    ratios = [r for r in rows if r["kind"] == "ratio" and "auto" in r["impl"]]
    loss = [r for r in rows if r["kind"] == "loss"]
    parts = ", ".join(f"{r['ratio']:.2f}x at {r['size']} px / {r['threads']} thread(s)" for r in ratios)
    ok = all(r["ratio"] >= 1.5 for r in ratios)
    text = (f"At its default precision ({ratios[0]['impl'].split('(')[-1].rstrip(')') if ratios else '?'}) weft runs an "
            f"L-BFGS iteration {parts} faster than pastiche on the same work ({'meets' if ok else 'misses'} the 1.5x "
            f"target)")  # fmt: skip
    if loss:
        worst = max(abs(r["rel_diff"]) for r in loss)
        text += (f"; its final loss after {loss[0]['iterations']} iterations differs from its own fp32 run by at "
                 f"most {100 * worst:.2f}% ({'within' if worst <= 0.05 else 'OUTSIDE'} the 5% bound)")
    return text + "."

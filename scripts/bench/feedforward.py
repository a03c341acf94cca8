"""Feed-forward engine vs the optimisation engine, side by side in one run (issue 12).

One house style (the Great Wave) trained on the three demo designs through ``weft run``; then
output megapixels per minute of both engines, the style and content loss of both results
under one fp32 VGG-19 evaluation, the training's time, and worker peak memory as the print grows.
The optimisation engine at 1024 and 2048 px on the default profile would take hours here, so its
rows are projected from timed iterations of each problem size its schedule optimises (the
``basis`` column says which rows are projected and which ran end to end).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench import DESIGN, MIB, ROOT, STYLE
from scripts.bench.cluster import CC0, local_cluster, run_on, write_manifest
from scripts.bench.machine import no_gpu_rows
from scripts.bench.render import Table, fmt

TITLE = "Feed-forward engine: throughput, quality, training, memory vs the optimisation engine (issue 12)"
#: The demo's designs and repeats: what the house style is trained on.
TRAINING_JOBS = {
    "strawberry": ("morris_strawberry_thief.jpg", "half-drop"),
    "snakeshead": ("morris_snakeshead.jpg", "brick"),
    "tartan": ("royal_stewart_sett.png", "block"),
}


def bench_feedforward(
    sizes: tuple[int, ...] = (1024, 2048),
    print_sizes: tuple[int, ...] = (4096, 8192),
    quality_size: int = 512,
    *,
    training: dict[str, Any] | None = None,
    device: str = "all",
    quiet: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train, stylize at every size with the feed-forward engine, run the optimisation engine at
    ``quality_size`` end to end and project it at ``sizes``; score both results at ``quality_size``."""
    from rich.console import Console

    console = Console(quiet=quiet, width=140)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="weft-bench-ff-") as tmp_name:
        work = Path(tmp_name)
        # one model for every size: trained at the enlargements of the scored results (the speed rows do not
        # depend on the weights); a house style left on train_scales = "auto" trains for all its sizes
        training = {"train_scales": [0.6, 1.5], **(training or {})}
        manifest = _manifest(work, quality_size, (*sizes, *print_sizes), training)
        store = work / "store.zarr"
        with local_cluster(2) as (cluster, _client, _):
            log(f"feedforward: training on {len(TRAINING_JOBS)} designs and stylizing them at {quality_size} px ...")
            first = run_on(cluster, manifest, store, console, only=tuple(f"ff-{name}" for name in TRAINING_JOBS))
        rows.append(_training_row(store, first, log))
        for size in (*sizes, *print_sizes):
            with local_cluster(2) as (cluster, _client, _):
                log(f"feedforward {size} px: running ...")
                result = run_on(cluster, manifest, store, console, only=(f"ff-{size}",))
            rows.append(_speed_row("feedforward", size, result.wall_seconds, "weft run, measured",
                                   max(result.worker_peak_rss.values()) / MIB))  # fmt: skip
            log(f"feedforward {size} px: {result.wall_seconds:.1f} s, peak {rows[-1]['peak_mib']:.0f} MiB")
        optimised, seconds = _optimise(quality_size, log)
        rows.append(_speed_row("optimise", quality_size, seconds, "weft stylize, measured", None))
        for size in sizes:
            rows.append(_speed_row("optimise", size, _projected_seconds(size, log), "projected from timed iterations", None))
        rows += _quality_rows(store, optimised, quality_size)
    rows += no_gpu_rows(device, engine="feedforward", size=" / ".join(map(str, (*sizes, *print_sizes))))
    return rows


def _manifest(work: Path, quality_size: int, sizes: tuple[int, ...], training: dict[str, Any]) -> Path:
    (work / "inputs").mkdir(parents=True)
    for design, _ in TRAINING_JOBS.values():
        shutil.copy(ROOT / "manifests" / "designs" / design, work / "inputs" / design)
    shutil.copy(STYLE, work / "inputs" / STYLE.name)
    jobs = [{"id": f"ff-{name}", "design": f"inputs/{design}", "style": "wave", "repeat": repeat, "size": quality_size}
            for name, (design, repeat) in TRAINING_JOBS.items()]  # fmt: skip
    jobs += [{"id": f"ff-{size}", "design": f"inputs/{DESIGN.name}", "style": "wave", "repeat": "half-drop",
              "size": size} for size in sizes]  # fmt: skip
    style = {"id": "wave", "path": f"inputs/{STYLE.name}", "license": CC0,
             "attribution": "Hokusai, The Great Wave (The Met JP1847)"}  # fmt: skip
    return write_manifest(work, jobs, [style], {"seed": 7, "dpi": 300, "engine": "feedforward", **training}, "default")


def _training_row(store: Path, result: Any, log: Callable[[str], None]) -> dict:
    from pipeline.run.models import finished_models

    (model,) = finished_models(store)
    curve = model["curve"]
    log(f"feedforward: trained {model['steps']} steps in {model['seconds']:.0f} s on {model['device']}")
    return {
        "kind": "training", "steps": model["steps"], "seconds": model["seconds"],
        "seconds_per_step": model["seconds"] / model["steps"], "device": model["device"],
        "first_loss": curve[0][2], "last_loss": float(np.mean([c[2] for c in curve[-20:]])),
        "run_wall": result.wall_seconds, "settings": model["settings"],
    }  # fmt: skip


def _speed_row(engine: str, size: int, seconds: float, basis: str, peak_mib: float | None) -> dict:
    megapixels = size * size * 448 / 512 / 1e6  # the strawberry design's aspect (512 x 448)
    return {"kind": "speed", "engine": engine, "size": size, "seconds": seconds, "mp_per_min": megapixels / seconds * 60,
            "basis": basis, "peak_mib": peak_mib}  # fmt: skip


def _optimise(size: int, log: Callable[[str], None]) -> tuple[np.ndarray, float]:
    """The optimisation engine on the default profile, the whole repeat at ``size`` (``weft stylize``'s path)."""
    import torch

    from pipeline.engine.whole import prepare_design, stylize_image
    from pipeline.manifest.images import load_rgb
    from pipeline.settings import load_profile, resolve_settings

    settings = resolve_settings(load_profile("default"))
    design = prepare_design(load_rgb(DESIGN), "half-drop", settings)
    log(f"optimise {size} px, default profile: running (about 20 minutes on 2 cores) ...")
    torch.set_num_threads(2)
    started = time.perf_counter()
    result = stylize_image(design, [(load_rgb(STYLE), 1.0)], repeat="half-drop", width=size, height=size * 448 // 512,
                           settings=settings, seed=7, device="cpu")  # fmt: skip
    seconds = time.perf_counter() - started
    log(f"optimise {size} px: {seconds:.0f} s")
    return result, seconds


def _projected_seconds(size: int, log: Callable[[str], None]) -> float:
    """Wall of a default-profile `weft run` at ``size`` on 2 workers x 1 thread, from timed iterations.

    Each problem size the schedule optimises (the coarse scales, one tile window) is timed for
    a few L-BFGS iterations at one thread; the coarse pass runs on one worker, tiles on two.
    """
    import torch

    from pipeline.manifest.specs import JobSpec
    from pipeline.repeat.lattice import Repeat
    from pipeline.run.plan import schedule
    from pipeline.settings import load_profile, resolve_settings

    settings = resolve_settings(load_profile("default"))
    spec = JobSpec("bench", DESIGN, (), Repeat.HALF_DROP, size, size * 448 // 512, 300, 7, settings, {}, "bench")
    levels, coarse = schedule(spec)
    torch.set_num_threads(1)
    total = 0.0
    for index, hw in enumerate(coarse):
        iterations = settings.iterations if index == 0 else settings.refine_iterations
        total += iterations * _seconds_per_iteration(hw)
    for level in levels[1:]:
        side = level.core + 2 * level.halo
        total += level.chunks * level.iterations * _seconds_per_iteration((side, side)) / 2
    log(f"optimise {size} px, default profile: projected {total:.0f} s")
    return total


_TIMED: dict[tuple[int, int], float] = {}


def _seconds_per_iteration(hw: tuple[int, int], steps: int = 3) -> float:
    """The mean of ``steps`` L-BFGS iterations after one warm-up, at this size (one thread)."""
    if hw not in _TIMED:
        from scripts.bench.engine import WeftRun, square_rgb
        from pipeline.manifest.images import load_rgb

        from PIL import Image

        content = np.asarray(Image.fromarray(square_rgb(DESIGN, max(hw))).resize((hw[1], hw[0])))
        problem = WeftRun(content, load_rgb(STYLE), "auto", "cpu", "half-drop")
        problem.run(1)
        started = time.perf_counter()
        problem.run(steps)
        _TIMED[hw] = (time.perf_counter() - started) / steps
    return _TIMED[hw]


def _quality_rows(store: Path, optimised: np.ndarray, size: int) -> list[dict]:
    """Style and content loss of both engines' results, one fp32 VGG-19 evaluation of the whole image each."""
    import torch
    import zarr

    from pipeline.engine.knit import needs_knit
    from pipeline.engine.optimise import score
    from pipeline.engine.pixels import to_caffe
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.engine.whole import prepare_design, whole_problem
    from pipeline.manifest.images import load_rgb
    from pipeline.repeat.lattice import Repeat
    from pipeline.settings import load_profile, resolve_settings

    settings = resolve_settings(load_profile("default"), {"precision": "fp32"})
    device = torch.device("cpu")
    feedforward = zarr.open_group(str(store), mode="r")["jobs/ff-strawberry/image"][...]
    hw = feedforward.shape[:2]
    design = prepare_design(load_rgb(DESIGN), Repeat.HALF_DROP, settings)
    model = get_model(settings.weights, "cpu")
    targets = compute_style_targets(model, [(load_rgb(STYLE), 1.0)], hw, settings, device)
    problem = whole_problem(design, targets, Repeat.HALF_DROP, hw, settings, device,
                            knit=needs_knit(design, Repeat.HALF_DROP))  # fmt: skip
    problem = dataclasses.replace(problem, padding=None, tv_repeat=None)  # zero padding: any size can be scored
    scores = {name: score(model, problem, to_caffe(image.astype(np.float32)), settings)
              for name, image in (("optimise", optimised), ("feedforward", feedforward))}  # fmt: skip
    scores["design, unstyled"] = score(model, problem, problem.content, settings)
    reference = scores["optimise"]
    return [{"kind": "quality", "engine": name, "size": size, "style": s["style"], "content": s["content"],
             "style_ratio": s["style"] / reference["style"], "content_ratio": s["content"] / reference["content"]}
            for name, s in scores.items()]  # fmt: skip


def tables(rows: list[dict]) -> list[Table]:
    speed = [r for r in rows if r.get("kind") == "speed"]
    ff = {r["size"]: r["mp_per_min"] for r in speed if r["engine"] == "feedforward"}
    speed_cells = [[r["engine"], str(r["size"]), fmt(r["seconds"], 1), fmt(r["mp_per_min"], 3),
                    fmt(ff[r["size"]] / r["mp_per_min"], 0) + "x" if r["engine"] == "optimise" and r["size"] in ff else "",
                    "-" if r["peak_mib"] is None else fmt(r["peak_mib"], 0), r["basis"]] for r in speed]  # fmt: skip
    quality = [[r["engine"], str(r["size"]), f"{r['style']:.4g}", f"{r['content']:.4g}", fmt(r["style_ratio"], 2),
                fmt(r["content_ratio"], 2)] for r in rows if r.get("kind") == "quality"]  # fmt: skip
    train = [[str(r["steps"]), fmt(r["seconds"], 0), fmt(r["seconds_per_step"], 2), r["device"],
              f"{r['first_loss']:.4g}", f"{r['last_loss']:.4g}"] for r in rows if r.get("kind") == "training"]  # fmt: skip
    return [
        ("Output megapixels per minute (strawberry design, half-drop, Great Wave)",
         ["engine", "size px", "seconds", "MP/min", "feed-forward speed-up", "worker peak MiB", "basis"], speed_cells),
        ("Loss of each result, one fp32 VGG-19 evaluation of the whole image (ratios to the optimisation engine)",
         ["result", "size px", "style loss", "content loss", "style ratio", "content ratio"], quality),
        ("Training (3 demo designs, one style)", ["steps", "seconds", "s/step", "device", "first loss",
                                                 "last loss (mean of 20)"], train),
    ]  # fmt: skip


def summary(rows: list[dict]) -> str:
    speed = {(r["engine"], r["size"]): r for r in rows if r.get("kind") == "speed"}
    quality = {r["engine"]: r for r in rows if r.get("kind") == "quality"}
    train = next((r for r in rows if r.get("kind") == "training"), None)
    parts = []
    for (engine, size), r in sorted(speed.items()):
        if engine == "optimise" and ("feedforward", size) in speed:
            parts.append(f"at {size} px feed-forward is {speed['feedforward', size]['mp_per_min'] / r['mp_per_min']:.0f}x "
                         f"the optimisation engine's MP/min")  # fmt: skip
    big = max((s for e, s in speed if e == "feedforward"), default=None)
    if big:
        parts.append(f"an {big} px print took {speed['feedforward', big]['seconds'] / 60:.1f} min")
    if "feedforward" in quality:
        q = quality["feedforward"]
        parts.append(f"its style loss is {q['style_ratio']:.2f}x and content loss {q['content_ratio']:.2f}x the "
                     f"optimisation engine's")  # fmt: skip
    if train:
        parts.append(f"training took {train['seconds'] / 60:.1f} min ({train['steps']} steps)")
    return "; ".join(parts).capitalize() + "." if parts else "Not measured."

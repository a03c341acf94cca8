#!/usr/bin/env python
"""weft benchmarks: speed, memory and overhead figures for ``docs/benchmarks.md``.

    .venv/bin/python scripts/bench.py                                   # every section, print tables
    .venv/bin/python scripts/bench.py --only engine,padding --write docs/benchmarks.md
    .venv/bin/python scripts/bench.py --only pipeline --json /tmp/pipeline.json

Sections (each a function returning rows, i.e. dicts, so tests and other scripts can call them):

* ``engine``   seconds per L-BFGS iteration, weft (default precision and fp32) vs ``pastiche``
               at 256 and 512 px, same layers, optimiser, size and threads, alternated in one
               process; and weft's final loss after N iterations, default precision vs fp32;
* ``padding``  VGG-19 forward+backward with zero vs lattice padding per repeat type;
* ``geometry`` lattice gathers on a 4096 x 4096 repeat (``scripts/bench_geometry.py``);
* ``pipeline`` ``weft run`` on a 2-worker LocalCluster at 1024 and 2048 px with the same
               tile size: worker peak RSS, wall vs task compute (overhead), throughput;
* ``export``   peak memory exporting an 8192 x 8192 job (``scripts/bench_export.py``);
* ``load``     200 tiny jobs sharing 5 styles on one 2-worker cluster: worker memory after
               every 50 jobs.

``--write FILE`` replaces only the sections that ran (each lives between
``<!-- bench:NAME -->`` markers), so sections can be run separately and at different times;
every section records the exact command, date and the machine's load average while it ran.
The machine is shared: timings alternate the things compared (A B C A B C ...) and report
medians, so contention hits every side alike. GPU rows run when ``torch.cuda.is_available()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

DESIGN = ROOT / "manifests" / "designs" / "morris_strawberry_thief.jpg"
STYLE = ROOT / "manifests" / "styles" / "hokusai_great_wave.jpg"
NO_GPU = "not measured: no GPU in this session"
SECTIONS = ("engine", "padding", "geometry", "pipeline", "export", "load")
PASTICHE_STYLE_LAYERS = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]
MIB = 2**20


# --- small helpers -----------------------------------------------------------------------------


def load1() -> float:
    """1-minute load average (the machine is shared; every figure carries it)."""
    return round(os.getloadavg()[0], 2)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def git_commit() -> str:
    """The checkout's commit, with '+changes' when the working tree differs from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    flags = cpu_flags()
    info = {
        "cpu": cpu_model(),
        "cores": cores(),
        "cpu_bf16": ", ".join(sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})) or "none",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    with contextlib.suppress(Exception):
        import dask
        import zarr

        info["dask"] = dask.__version__
        info["zarr"] = zarr.__version__
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["pastiche"] = version("pastiche")
    return info


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds while a section runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append(load1())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(load1())

    def summary(self) -> str:
        s = self.samples or [load1()]
        return f"median {statistics.median(s):.2f}, min {min(s):.2f}, max {max(s):.2f} ({len(s)} samples)"


def med(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def devices(requested: str) -> list[str]:
    """'cpu', 'cuda' or 'all' -> the devices to measure on ('cuda' only where torch sees one)."""
    import torch

    if requested == "all":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [requested]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


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


# --- 1. engine vs pastiche ---------------------------------------------------------------------


class _WeftEngine:
    """One weft optimisation set up like the coarse pass of ``stylize_image`` (lattice padding, seam fade)."""

    def __init__(self, content_rgb: np.ndarray, style_rgb: np.ndarray, precision: str, device: str, repeat: str):
        import torch

        from pipeline.repeat.geometry import as_repeat
        from pipeline.engine.knit import content_window, needs_knit
        from pipeline.engine.losses import seam_fade_mask
        from pipeline.engine.vgg import get_model
        from pipeline.settings import Settings
        from pipeline.engine.device import effective_precision
        from pipeline.engine.optimise import Problem
        from pipeline.engine.pixels import to_caffe
        from pipeline.engine.targets import compute_style_targets

        self.device = torch.device(device)
        self.settings = Settings(precision=precision)
        self.mode = effective_precision(precision, self.device)
        self.model = get_model(self.settings.weights, str(self.device), pooling=self.settings.pooling)
        rep = as_repeat(repeat)
        h, w = content_rgb.shape[:2]
        band = self.settings.seam_fade * min(h, w)
        knit = needs_knit(content_rgb, rep)
        content = to_caffe(content_window(content_rgb, rep, (h, w), (0, 0, h, w), band=band, knit=knit), self.device)
        targets = compute_style_targets(self.model, [(style_rgb, 1.0)], (h, w), self.settings, self.device)
        try:  # the engine's own content-weight map, as its coarse pass builds it
            from pipeline.engine.optimise import content_mask

            mask = content_mask(self.settings, rep, (h, w), (0, 0, h, w), self.device)
        except ImportError:  # engines before the seam_content setting
            mask = torch.from_numpy(seam_fade_mask(rep, (h, w), (0, 0, h, w), band)).to(self.device)[None, None]
        padding = rep if self.settings.padding == "lattice" else None
        self.problem = Problem(content=content, targets=targets, content_mask=mask, padding=padding, tv_repeat=padding)
        self.start = content.clone()

    def steps(self, n: int) -> list[float]:
        """Seconds of optimiser steps 2..n of a fresh L-BFGS from the start image (step 1 excluded)."""
        from pipeline.engine.optimise import optimise

        stamps: list[float] = []

        def callback(step: int, total: int, losses: dict[str, float]) -> None:
            _sync(str(self.device))
            stamps.append(time.perf_counter())

        optimise(self.model, self.problem, self.start, self.settings, n, self.device, callback)
        return list(np.diff(stamps))

    def run(self, n: int) -> tuple[Any, dict[str, float], list[float], list[float]]:
        """n iterations from the start: (image, last losses, per-step seconds, total loss per step)."""
        from pipeline.engine.optimise import optimise

        stamps = [time.perf_counter()]
        totals: list[float] = []

        def callback(step: int, total: int, losses: dict[str, float]) -> None:
            stamps.append(time.perf_counter())
            totals.append(losses["total"])

        image, last = optimise(self.model, self.problem, self.start, self.settings, n, self.device, callback)
        return image, last, list(np.diff(stamps)), totals

    def loss_fp32(self, image: Any) -> dict[str, float]:
        """content_weight * content + style_weight * style of ``image`` under this engine's problem, no autocast.

        Called on the fp32 engine, this scores any final image with the fp32 network against fp32
        targets: one yardstick for the bf16 and the fp32 result.
        """
        import torch

        from pipeline.engine.losses import content_loss, style_loss

        s, p = self.settings, self.problem
        layers = list(dict.fromkeys([s.content_layer, *s.style_layers]))
        with torch.no_grad():
            content_target = self.model(p.content, [s.content_layer], p.padding)[s.content_layer]
            mask = None
            if p.content_mask is not None:
                mask = torch.nn.functional.adaptive_avg_pool2d(p.content_mask, content_target.shape[-2:])
            feats = self.model(image.contiguous(memory_format=torch.channels_last), layers, p.padding)
            c = float(content_loss(feats[s.content_layer], content_target, mask))
            st = float(style_loss(feats, p.targets, s.style_layer_weights))
        return {"content": c, "style": st, "total": s.content_weight * c + s.style_weight * st}


class _PasticheEngine:
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
            _sync(self.device)
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
    """Seconds per L-BFGS iteration, weft vs pastiche, and weft's loss at default precision vs fp32.

    Rows with ``kind`` = 'speed' (per implementation and size), 'ratio' (pastiche / weft) and
    'loss'. Same content pixels (the design's central square written to a PNG pastiche reads),
    same style image, same layers (relu4_2; relu1_1..relu5_1), L-BFGS with one function
    evaluation per step and lr 1, started fresh from the content for every timed block on both
    sides. Each round runs every implementation for ``steps`` iterations, in a rotating order;
    the first step of each block is dropped; the figure is the median over rounds. On the CPU
    this is repeated for each torch thread count in ``threads``; the loss rows run once, with
    the first thread count.
    """
    rows: list[dict] = []
    loss_sizes = sizes if loss_sizes is None else loss_sizes
    for dev in devices(device):
        for index, count in enumerate(threads if dev == "cpu" else (0,)):
            with torch_threads(count or None), tempfile.TemporaryDirectory(prefix="weft-bench-") as tmp:
                rows += _engine_on(dev, sizes, rounds, steps, loss_iterations if index == 0 else 0, loss_sizes,
                                   repeat, design, style, Path(tmp), log)  # fmt: skip
    if device == "all" and "cuda" not in devices(device):
        rows.append({"kind": "speed", "device": "cuda", "size": "256 / 512", "impl": "weft / pastiche", "note": NO_GPU})
    return rows


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
            "weft auto": _WeftEngine(content_rgb, style_rgb, "auto", dev, repeat),
            "weft fp32": _WeftEngine(content_rgb, style_rgb, "fp32", dev, repeat),
            "pastiche": _PasticheEngine(content_path, style, size, dev),
        }
        names = list(engines)
        for name in names:  # warm-up: oneDNN primitive creation, allocator, caches
            engines[name].steps(3)
        samples: dict[str, list[float]] = defaultdict(list)
        per_round: dict[str, list[float]] = defaultdict(list)
        loads = []
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                loads.append(load1())
                secs = engines[name].steps(steps)
                samples[name] += secs
                per_round[name].append(med(secs))
            log(f"engine {dev} {size}px {thread_note} threads round {r + 1}/{rounds}: "
                + ", ".join(f"{n} {per_round[n][-1]:.3f}s" for n in names) + f" (load {loads[-1]})")  # fmt: skip
        load = f"{med(loads):.2f} ({min(loads):.2f}-{max(loads):.2f})"
        for name in names:
            q1, q3 = quartiles(samples[name])
            impl = name if name != "weft auto" else f"weft auto ({engines[name].mode})"
            rows.append({
                "kind": "speed", "device": dev, "size": size, "impl": impl, "threads": thread_note,
                "s_per_iter": med(samples[name]), "q1": q1, "q3": q3, "n": len(samples[name]),
                "round_medians": [round(x, 4) for x in per_round[name]], "load": load,
            })  # fmt: skip
        pastiche = med(samples["pastiche"])
        for name in ("weft auto", "weft fp32"):
            # paired: within a round the blocks ran back to back, so they saw about the same load
            ratio_rounds = [p / w for p, w in zip(per_round["pastiche"], per_round[name])]
            impl = name if name != "weft auto" else f"weft auto ({engines[name].mode})"
            rows.append({
                "kind": "ratio", "device": dev, "size": size, "impl": impl,
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


def _engine_loss(auto: _WeftEngine, fp32: _WeftEngine, size: int, iterations: int, dev: str,
                 log: Callable[[str], None]) -> dict:  # fmt: skip
    """weft's final loss after ``iterations`` from the same start: default precision vs fp32."""
    loads = [load1()]
    image_a, last_a, secs_a, totals_a = auto.run(iterations)
    loads.append(load1())
    image_f, last_f, secs_f, totals_f = fp32.run(iterations)
    loads.append(load1())
    # one yardstick: both final images scored by the fp32 network against the fp32 targets
    auto_in_fp32 = fp32.loss_fp32(image_a)
    fp32_in_fp32 = fp32.loss_fp32(image_f)
    start = fp32.loss_fp32(fp32.start)
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


# --- 2. padding cost -----------------------------------------------------------------------------


def bench_padding(
    sizes: tuple[int, ...] = (256, 512),
    precisions: tuple[str, ...] = ("bf16", "fp32"),
    *,
    rounds: int = 5,
    threads: int = 2,
    device: str = "all",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Forward+backward of VGG-19 (to relu5_1, gradient to the image) per padding, alternated."""
    import torch

    from pipeline.repeat.geometry import Repeat
    from pipeline.engine.vgg import get_model
    from pipeline.settings import Settings
    from pipeline.engine.device import precision_context

    rows: list[dict] = []
    s = Settings()
    layers = list(dict.fromkeys([s.content_layer, *s.style_layers]))
    paddings: list[Repeat | None] = [None, Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK]
    for dev in devices(device):
        torch_device = torch.device(dev)
        model = get_model(s.weights, dev, pooling=s.pooling)
        with torch_threads(threads if dev == "cpu" else None):
            for size in sizes:
                gen = torch.Generator().manual_seed(size)
                base = (torch.rand((1, 3, size, size), generator=gen) * 255 - 120).to(torch_device)
                base = base.contiguous(memory_format=torch.channels_last)
                for precision in precisions:
                    def fwd_bwd(pad: Repeat | None) -> float:
                        image = base.clone().requires_grad_(True)
                        _sync(dev)
                        t0 = time.perf_counter()
                        with precision_context(precision, torch_device):
                            feats = model(image, layers, pad)
                        loss = sum(f.float().square().mean() for f in feats.values())
                        loss.backward()
                        _sync(dev)
                        return time.perf_counter() - t0

                    for pad in paddings:  # warm-up
                        fwd_bwd(pad)
                    times: dict[Repeat | None, list[float]] = defaultdict(list)
                    loads = []
                    for r in range(rounds):
                        order = paddings[r % 4 :] + paddings[: r % 4]
                        for pad in order:
                            loads.append(load1())
                            times[pad].append(fwd_bwd(pad))
                    zeros = med(times[None])
                    for pad in paddings:
                        rows.append({
                            "device": dev, "size": size, "precision": precision,
                            "padding": "zeros" if pad is None else f"lattice {pad.value}",
                            "ms": 1e3 * med(times[pad]), "vs_zeros": med(times[pad]) / zeros,
                            "n": len(times[pad]), "threads": torch.get_num_threads() if dev == "cpu" else "-",
                            "load": f"{med(loads):.2f}",
                        })  # fmt: skip
                    log(f"padding {dev} {size}px {precision}: "
                        + ", ".join(f"{r['padding']} {r['ms']:.0f} ms" for r in rows[-4:]))  # fmt: skip
    if device == "all" and "cuda" not in devices(device):
        rows.append({"device": "cuda", "size": "256 / 512", "precision": "bf16 / fp32", "padding": "all", "note": NO_GPU})
    return rows


# --- 3. geometry ---------------------------------------------------------------------------------


def bench_geometry_rows(size: int = 4096, log: Callable[[str], None] = print) -> list[dict]:
    """``scripts/bench_geometry.py``'s rows (torch on one thread, like numpy), each with the load."""
    from bench_geometry import bench_geometry

    loads = [load1()]
    rows = bench_geometry(size)
    loads.append(load1())
    for row in rows:
        row["load"] = f"{med(loads):.2f}"
    import torch

    if not torch.cuda.is_available():
        rows.append({"op": "all", "repeat": "all", "backend": "torch-cuda", "note": NO_GPU})
    log(f"geometry: {len(rows)} rows")
    return rows


# --- 4. pipeline ---------------------------------------------------------------------------------

PIPELINE_SETTINGS = {"tile_size": 256, "iterations": 10, "refine_iterations": 5}


def _write_manifest(directory: Path, jobs: list[dict], styles: list[dict], defaults: dict, profile: str) -> Path:
    """A manifest TOML in ``directory`` (paths relative to it)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return str(v)

    lines = [f"profile = {json.dumps(profile)}", "", "[defaults]"]
    lines += [f"{k} = {value(v)}" for k, v in defaults.items()]
    for style in styles:
        lines += ["", "[[styles]]"] + [f"{k} = {value(v)}" for k, v in style.items()]
    for job in jobs:
        lines += ["", "[[jobs]]"] + [f"{k} = {value(v)}" for k, v in job.items()]
    path = directory / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _proc_status_bytes(field: str) -> int:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM) in bytes; 0 where there is none."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _worker_memory() -> dict[str, int]:
    """(run on a worker) current RSS, and peak RSS of this process's own memory (VmHWM) in bytes.

    VmHWM rather than ``ru_maxrss``: Linux carries a parent's peak over fork + exec into the
    child's ``ru_maxrss``, so a worker spawned by a large process would report the parent's size.
    """
    return {"rss": _proc_status_bytes("VmRSS"), "peak": _proc_status_bytes("VmHWM")}


def _warm_worker() -> int:
    """(run on a worker) import what every task imports; peak RSS afterwards (the baseline)."""
    import pipeline.engine.vgg  # noqa: F401
    import pipeline.engine.whole  # noqa: F401
    import pipeline.run.tasks  # noqa: F401

    return _proc_status_bytes("VmHWM")


def _task_stream_summary(records: list[dict], wall: float, workers: int) -> dict[str, Any]:
    """Per-prefix compute, worker busy fractions and the gaps, from Dask's task stream."""
    by_prefix: dict[str, list[float]] = defaultdict(list)
    busy: dict[str, float] = defaultdict(float)
    transfer = 0.0
    starts, stops = [], []
    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rec in records:
        key = rec.get("key", "")
        key = key if isinstance(key, str) else str(key)
        prefix = re.split(r"[-_]", key)[0]
        for ss in rec.get("startstops", ()):
            start, stop = ss["start"], ss["stop"]
            if ss["action"] == "compute":
                by_prefix[prefix].append(stop - start)
                busy[rec["worker"]] += stop - start
                intervals[rec["worker"]].append((start, stop))
                starts.append(start)
                stops.append(stop)
            elif ss["action"] == "transfer":
                transfer += stop - start
    span = (max(stops) - min(starts)) if starts else 0.0
    dask_compute = sum(busy.values())
    # time both workers were busy / one / none, inside the span
    events = sorted([(s, 1) for iv in intervals.values() for s, _ in iv] + [(e, -1) for iv in intervals.values() for _, e in iv])
    level, last_t = 0, events[0][0] if events else 0.0
    concurrency: dict[int, float] = defaultdict(float)
    for t, delta in events:
        concurrency[min(level, workers)] += t - last_t
        level, last_t = level + delta, t
    return {
        "tasks": {p: {"count": len(v), "seconds": sum(v), "median": med(v)} for p, v in sorted(by_prefix.items())},
        "dask_compute": dask_compute,
        "span": span,
        "client_serial": wall - span,
        "transfer": transfer,
        "busy_fraction": {w: b / span if span else 0.0 for w, b in busy.items()},
        "seconds_with_n_busy": {n: round(v, 2) for n, v in sorted(concurrency.items())},
    }


def _pipeline_run(
    manifest: Path, store: Path, *, workers: int, device: str, log: Callable[[str], None], quiet: bool
) -> dict:
    """One ``execute`` on a fresh cluster; memory from the run result, timeline from the task stream."""
    from dask.distributed import Client, LocalCluster, get_task_stream
    from rich.console import Console

    from pipeline.run.execute import RunOptions, execute

    console = Console(quiet=quiet, width=120)
    loads = LoadSampler(2.0)
    if device == "cuda":  # weft's own LocalCUDACluster: one worker per GPU
        options = RunOptions(manifest=manifest, store=store, device="cuda")
        with loads:
            result = execute(options, console)
        return {"result": result, "baseline": {}, "stream": None, "loads": loads}
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster, Client(cluster) as client:  # fmt: skip
        baseline = client.run(_warm_worker)
        options = RunOptions(
            manifest=manifest, store=store, scheduler_address=cluster.scheduler_address, threads_per_worker=1,
            device="cpu",
        )  # fmt: skip
        with loads, get_task_stream(client) as stream:
            result = execute(options, console)
        records = list(stream.data)
        after = client.run(_worker_memory)
        return {"result": result, "baseline": baseline, "stream": records, "loads": loads, "after": after}


TARGETS_CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from pipeline.manifest.images import load_rgb
from pipeline.engine.vgg import get_model
from pipeline.settings import Settings
from pipeline.engine.targets import compute_style_targets

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0

settings = Settings(**json.loads(sys.argv[4]))
model = get_model(settings.weights, "cpu", pooling=settings.pooling)
rgb = load_rgb(sys.argv[1])
before = hwm()
start = time.perf_counter()
compute_style_targets(model, [(rgb, 1.0)], (int(sys.argv[2]), int(sys.argv[3])), settings, torch.device("cpu"))
print(json.dumps({"before": before, "peak": hwm(), "seconds": time.perf_counter() - start}))
"""


def style_targets_memory(output_sizes: list[tuple[int, int]], settings: dict[str, Any] | None = None) -> list[dict]:
    """Peak RSS of ``compute_style_targets`` (what the pipeline's targets task runs) per output (h, w).

    Each in a fresh process (1 torch thread), VmHWM after loading the model vs after the targets.
    """
    import subprocess

    rows = []
    for h, w in output_sizes:
        child = subprocess.run(
            [sys.executable, "-c", TARGETS_CHILD, str(STYLE), str(h), str(w), json.dumps(settings or {})],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        r = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append({"kind": "targets_memory", "output": f"{w}x{h}", "before_mib": r["before"] / MIB,
                     "peak_mib": r["peak"] / MIB, "seconds": r["seconds"], "load": f"{load1():.2f}"})  # fmt: skip
    return rows


def bench_pipeline(
    sizes: tuple[int, ...] = (1024, 2048),
    *,
    workers: int = 2,
    settings: dict[str, Any] | None = None,
    repeat: str = "half-drop",
    device: str = "all",
    keep: Path | None = None,
    quiet: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """``weft run`` of one job per output size on a fresh 2-worker LocalCluster and a fresh store.

    The profile is ``demo`` with ``settings`` (default: tile_size 256, iterations 10,
    refine_iterations 5) so that every size uses the same tiles. Rows: per size, worker peak
    RSS (each worker), wall vs task compute / workers, throughput, and where the time went.
    """
    settings = {**PIPELINE_SETTINGS, **(settings or {})}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="weft-bench-pipeline-") as tmp_name:
        tmp = Path(keep) if keep else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        for dev in devices(device):
            for size in sizes:
                work = tmp / f"{dev}-{size}"
                (work / "inputs").mkdir(parents=True, exist_ok=True)
                shutil.copy(DESIGN, work / "inputs" / DESIGN.name)
                shutil.copy(STYLE, work / "inputs" / STYLE.name)
                manifest = _write_manifest(
                    work,
                    jobs=[{"id": f"bench-{size}", "design": f"inputs/{DESIGN.name}", "style": "wave",
                           "repeat": repeat, "size": size}],
                    styles=[{"id": "wave", "path": f"inputs/{STYLE.name}", "license": "Public domain (CC0)",
                             "attribution": "Hokusai, The Great Wave (The Met JP1847)"}],
                    defaults={"seed": 7, "dpi": 300, **settings},
                    profile="demo",
                )  # fmt: skip
                log(f"pipeline {dev} {size}px: running ...")
                run = _pipeline_run(manifest, work / "store.zarr", workers=workers, device=dev, log=log, quiet=quiet)
                rows.append(_pipeline_row(run, size, dev, settings, log))
        if device == "all" and "cuda" not in devices(device):
            rows.append({"device": "cuda", "size": " / ".join(map(str, sizes)), "note": NO_GPU})
    # the style targets of the final level are computed on the whole style image at the output's
    # size: measure that task alone, per output size, to see what it costs in memory
    finals = [tuple(int(v) for v in r["final_hw"]) for r in rows if "final_hw" in r]
    if finals:
        targets = style_targets_memory(list(dict.fromkeys(finals)), {k: v for k, v in settings.items()
                                                                     if k not in PIPELINE_SETTINGS})
        for r in targets:
            log(f"pipeline: style targets for a {r['output']} output alone: peak {r['peak_mib']:.0f} MiB "
                f"(model loaded: {r['before_mib']:.0f} MiB), {r['seconds']:.1f}s")
        rows += targets
    return rows


def _pipeline_row(run: dict, size: int, dev: str, settings: dict, log: Callable[[str], None]) -> dict:
    result = run["result"]
    outcome = next(iter(result.outcomes.values()))
    job = outcome.job
    ideal = result.compute_seconds / max(1, result.workers)
    peaks = {addr: rss for addr, rss in sorted(result.worker_peak_rss.items())}
    row: dict[str, Any] = {
        "device": dev, "size": size, "status": outcome.status, "error": outcome.error,
        "levels": [f"{lv.width}x{lv.height}{' tiled ' + str(lv.chunks) if lv.tiled else ''}" for lv in job.levels],
        "tiles": sum(lv.chunks for lv in job.levels if lv.tiled), "workers": result.workers,
        "final_hw": [job.levels[-1].height, job.levels[-1].width],
        "wall_s": result.wall_seconds, "compute_s": result.compute_seconds, "ideal_s": ideal,
        "overhead": result.wall_seconds / ideal - 1 if ideal else float("nan"),
        "mpx_per_min": (job.levels[-1].height * job.levels[-1].width / 1e6 / (result.wall_seconds / 60)
                        if result.wall_seconds else float("nan")),
        "peak_rss_mib": [round(v / MIB) for v in peaks.values()],
        "peak_hwm_mib": [round(m["peak"] / MIB) for _, m in sorted(run.get("after", {}).items())],
        "baseline_rss_mib": [round(v / MIB) for _, v in sorted(run["baseline"].items())],
        "seams": outcome.seams, "settings": settings, "load": run["loads"].summary(),
    }  # fmt: skip
    if run["stream"] is not None:
        row["timeline"] = _task_stream_summary(run["stream"], result.wall_seconds, result.workers)
        # RunResult.compute_seconds sums what tile/coarse/stitch tasks time inside themselves; the
        # style-targets tasks (and deserialising arguments) are not in it. Dask's own compute
        # intervals cover every task: the overhead against them is the fuller figure.
        all_compute = row["timeline"]["dask_compute"]
        row["dask_compute_s"] = all_compute
        row["overhead_dask"] = result.wall_seconds / (all_compute / max(1, result.workers)) - 1
    log(f"pipeline {dev} {size}px: {outcome.status}; wall {row['wall_s']:.1f}s, compute {row['compute_s']:.1f}s "
        f"on {row['workers']} workers (overhead {100 * row['overhead']:+.1f}%), peak RSS {row['peak_rss_mib']} MiB, "
        f"{row['mpx_per_min']:.2f} MPx/min; load {row['load']}")  # fmt: skip
    if "timeline" in row:
        t = row["timeline"]
        log(f"  timeline: span {t['span']:.1f}s, client-side serial {t['client_serial']:.1f}s, dask compute "
            f"{t['dask_compute']:.1f}s, busy {dict((k[-5:], round(v, 2)) for k, v in t['busy_fraction'].items())}, "
            f"seconds with n busy {t['seconds_with_n_busy']}, tasks {json.dumps(t['tasks'])}")  # fmt: skip
    return row


# --- 5. export -----------------------------------------------------------------------------------


def bench_export_rows(size: int = 8192, log: Callable[[str], None] = print) -> list[dict]:
    """``scripts/bench_export.py`` on a ``size`` x ``size`` job: peak RSS of TIFF and PNG export."""
    from bench_export import bench_export

    with tempfile.TemporaryDirectory(prefix="weft-bench-export-") as tmp, LoadSampler(2.0) as loads:
        result = bench_export(Path(tmp), size)
    rows = []
    for fmt in ("tiff", "png"):
        r = result[fmt]
        rows.append({
            "size": size, "format": fmt, "image_mib": result["image_bytes"] / MIB,
            "rss_before_mib": r["rss_before"] / MIB, "rss_peak_mib": r["rss_peak"] / MIB,
            "rss_delta_mib": r["rss_delta"] / MIB, "delta_over_image": r["rss_delta_over_image"],
            "peak_over_image": r["rss_peak_over_image"], "tracemalloc_mib": r["tracemalloc_peak"] / MIB,
            "seconds": r["seconds"], "file_mib": r["file_bytes"] / MIB, "load": loads.summary(),
        })  # fmt: skip
        log(f"export {size}px {fmt}: peak {rows[-1]['rss_peak_mib']:.0f} MiB, +{rows[-1]['rss_delta_mib']:.0f} MiB "
            f"({rows[-1]['delta_over_image']:.2f}x image), {r['seconds']:.1f}s")  # fmt: skip
    return rows


# --- 6. load: many small jobs ----------------------------------------------------------------------


def _style_variants(directory: Path, count: int) -> list[Path]:
    """``count`` distinct style images made from the two bundled ones (crops, flips, colour turns)."""
    from PIL import Image, ImageOps

    from pipeline.manifest.images import load_rgb

    sources = sorted((ROOT / "manifests" / "styles").glob("*.jpg"))
    paths = []
    for index in range(count):
        rgb = load_rgb(sources[index % len(sources)])
        h, w = rgb.shape[:2]
        k = index // len(sources)
        crop = rgb[: h - 16 * k, 16 * k :] if k else rgb
        image = Image.fromarray(np.ascontiguousarray(crop))
        if k % 2:
            image = ImageOps.mirror(image)
        if k >= 2:
            image = Image.fromarray(np.ascontiguousarray(np.asarray(image)[..., ::-1]))
        path = directory / f"style-{index}.png"
        image.save(path)
        paths.append(path)
    return paths


def bench_load(
    jobs: int = 200,
    *,
    styles: int = 5,
    size: int = 64,
    iterations: int = 5,
    batches: int = 4,
    workers: int = 2,
    quiet: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """``jobs`` tiny jobs sharing ``styles`` styles on ONE 2-worker cluster, run in ``batches`` runs.

    Each batch is a ``weft run --only`` of the next jobs into the same store, on the same worker
    processes; after each batch every worker's current and peak RSS is sampled, so growth
    across jobs (leaked targets, models, decoded images) shows as a rising column.
    """
    from dask.distributed import Client, LocalCluster
    from rich.console import Console

    from pipeline.run.execute import RunOptions, execute

    rows: list[dict] = []
    # the demo manifest's designs with their repeat types (snakeshead is 512 x 443: no half-drop)
    designs = {"royal_stewart_sett.png": "block", "morris_strawberry_thief.jpg": "half-drop",
               "morris_snakeshead.jpg": "brick"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="weft-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "inputs").mkdir()
        for name in designs:
            shutil.copy(ROOT / "manifests" / "designs" / name, tmp / "inputs" / name)
        design_list = list(designs)
        style_paths = _style_variants(tmp / "inputs", styles)
        style_tables = [
            {"id": f"s{i}", "path": f"inputs/{p.name}", "license": "Public domain (CC0)", "attribution": "bench variant"}
            for i, p in enumerate(style_paths)
        ]
        job_tables = [
            {"id": f"j{i:03d}", "design": f"inputs/{design_list[i % 3]}", "style": f"s{i % styles}",
             "repeat": designs[design_list[i % 3]], "size": size, "seed": i}
            for i in range(jobs)
        ]  # fmt: skip
        manifest = _write_manifest(
            tmp, job_tables, style_tables,
            defaults={"dpi": 300, "coarse_size": max(32, size), "scales": 1, "iterations": iterations,
                      "refine": False},
            profile="demo",
        )  # fmt: skip
        console = Console(quiet=quiet, width=120)
        ids = [j["id"] for j in job_tables]
        per_batch = -(-jobs // batches)
        started = time.perf_counter()
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster, Client(cluster) as client:  # fmt: skip
            client.run(_warm_worker)
            before = client.run(_worker_memory)
            rows.append(_load_row(0, 0.0, before, "", 0))
            done = 0
            for b in range(batches):
                batch = tuple(ids[b * per_batch : (b + 1) * per_batch])
                if not batch:
                    break
                t0 = time.perf_counter()
                with LoadSampler(2.0) as loads:
                    result = execute(
                        RunOptions(manifest=manifest, store=tmp / "store.zarr", only=batch,
                                   scheduler_address=cluster.scheduler_address, threads_per_worker=1, device="cpu"),
                        console,
                    )  # fmt: skip
                seconds = time.perf_counter() - t0
                done += len(batch)
                errors = {o.job.id: o.error for o in result.outcomes.values() if o.status == "failed"}
                failed = len(errors)
                memory = client.run(_worker_memory)
                rows.append(_load_row(done, seconds, memory, loads.summary(), failed, result.compute_seconds))
                rows[-1]["errors"] = errors
                rows[-1]["worker_stats"] = getattr(result, "worker_stats", {})
                for job_id, error in list(errors.items())[:3]:
                    log(f"load: job {job_id} failed: {error}")
                if len(errors) > 3:
                    log(f"load: ... and {len(errors) - 3} more failed jobs")
                r = rows[-1]
                log(f"load: {done} jobs, batch {seconds:.1f}s ({failed} failed), worker RSS {r['rss_mib']} MiB, "
                    f"peak {r['peak_mib']} MiB; load {r['load']}")  # fmt: skip
        total = time.perf_counter() - started
    for row in rows:
        row["total_s"] = total
        row["jobs_total"] = jobs
        row["styles"] = styles
        row["size"] = size
        row["iterations"] = iterations
    return rows


def _load_row(done: int, seconds: float, memory: dict, load: str, failed: int, compute: float = 0.0) -> dict:
    items = sorted(memory.items())
    return {
        "jobs_done": done, "batch_s": seconds, "batch_compute_s": compute, "failed": failed,
        "rss_mib": [round(m["rss"] / MIB) for _, m in items], "peak_mib": [round(m["peak"] / MIB) for _, m in items],
        "load": load,
    }  # fmt: skip


# --- tables and markdown ---------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return " / ".join(_fmt(v, digits) for v in value)
    return str(value)


def tables(section: str, rows: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows of cells) per table of a section; used for both rich and markdown."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    notes = [r for r in rows if "note" in r]
    rows = [r for r in rows if "note" not in r]
    if section == "engine":
        speed = [r for r in rows if r["kind"] == "speed"]
        out.append(("seconds per L-BFGS iteration (median; q1-q3 over all timed steps)",
                    ["device", "size px", "implementation", "threads", "s / iter", "q1-q3", "steps", "load 1-min"],
                    [[r["device"], f"{r['size']}x{r['size']}", r["impl"], str(r["threads"]), f"{r['s_per_iter']:.3f}",
                      f"{r['q1']:.3f}-{r['q3']:.3f}", str(r["n"]), r["load"]] for r in speed]))  # fmt: skip
        ratio = [r for r in rows if r["kind"] == "ratio"]
        out.append(("pastiche / weft (time per iteration; > 1: weft faster): median over rounds of the ratio "
                    "within each round",
                    ["device", "size px", "threads", "weft", "pastiche / weft", "per round", "needs", "load 1-min"],
                    [[r["device"], f"{r['size']}x{r['size']}", str(r["threads"]), r["impl"], f"**{r['ratio']:.2f}x**",
                      " ".join(f"{x:.2f}" for x in r.get("ratio_rounds", [r["ratio_min_round"], r["ratio_max_round"]])),
                      ">= 1.5x" + (" (met)" if r["ratio"] >= 1.5 else " (NOT met)") if "auto" in r["impl"] else "-",
                      r["load"]] for r in ratio]))  # fmt: skip
        loss = [r for r in rows if r["kind"] == "loss"]
        out.append(("weft's final loss (content_weight x content + style_weight x style) after N iterations from the same start",
                    ["device", "size px", "threads", "N", "default (" + (loss[0]["mode"] if loss else "auto") + ")", "fp32",
                     "difference", "both images scored in fp32 (start: loss of the start image)",
                     "worst loss jump (default / fp32)", "s/iter late (default / fp32)", "load"],
                    [[r["device"], f"{r['size']}x{r['size']}", str(r["threads"]), str(r["iterations"]), f"{r['auto_total']:.4g}",
                      f"{r['fp32_total']:.4g}", f"**{100 * r['rel_diff']:+.2f}%**",
                      f"{r['auto_total_fp32eval']:.4g} vs {r['fp32_total_fp32eval']:.4g} ({100 * r['rel_diff_fp32eval']:+.2f}%; "
                      f"start {r['start_total_fp32eval']:.4g})",
                      f"{r.get('auto_max_jump', float('nan')):.3g}x / {r.get('fp32_max_jump', float('nan')):.3g}x",
                      f"{r['auto_s_per_iter_late']:.3f} / {r['fp32_s_per_iter_late']:.3f}", r["load"]] for r in loss]))  # fmt: skip
    elif section == "padding":
        out.append(("VGG-19 forward + backward to relu5_1 (gradient to the image), median ms",
                    ["device", "size px", "precision", "padding", "ms", "vs zeros", "runs", "threads", "load"],
                    [[r["device"], f"{r['size']}x{r['size']}", r["precision"], r["padding"], f"{r['ms']:.0f}",
                      f"{r['vs_zeros']:.2f}", str(r["n"]), str(r["threads"]), r["load"]] for r in rows]))  # fmt: skip
    elif section == "geometry":
        out.append(("lattice gathers on a 4096 x 4096 x 3 uint8 repeat (best of runs; GB/s of output)",
                    ["op", "repeat", "backend", "MB", "ms", "GB/s", "copy GB/s", "slice GB/s", "x slice", "load"],
                    [[r["op"], r["repeat"], r["backend"], f"{r['mb']:.1f}", f"{r['ms']:.2f}", f"{r['gb_s']:.1f}",
                      f"{r['copy_gb_s']:.1f}", f"{r['slice_gb_s']:.1f}", f"{r['vs_slice']:.2f}", r["load"]]
                     for r in rows]))  # fmt: skip
    elif section == "pipeline":
        runs = [r for r in rows if r.get("kind") != "targets_memory"]
        out.append(("weft run, one job per size, fresh 2-worker LocalCluster and store each",
                    ["device", "output px", "levels (tiled: tiles)", "status", "wall s", "task compute s (RunResult)",
                     "ideal s", "overhead", "all tasks' compute s (Dask)", "overhead vs all tasks", "MPx/min",
                     "worker peak RSS MiB (RunResult)", "worker VmHWM MiB",
                     "after imports MiB", "load 1-min"],
                    [[r["device"], f"{r['final_hw'][1]}x{r['final_hw'][0]}", ", ".join(r["levels"]), r["status"],
                      f"{r['wall_s']:.1f}", f"{r['compute_s']:.1f}", f"{r['ideal_s']:.1f}",
                      f"**{100 * r['overhead']:+.1f}%**",
                      f"{r['dask_compute_s']:.1f}" if "dask_compute_s" in r else "-",
                      f"**{100 * r['overhead_dask']:+.1f}%**" if "overhead_dask" in r else "-",
                      f"{r['mpx_per_min']:.2f}", "**" + _fmt(r["peak_rss_mib"]) + "**", _fmt(r.get("peak_hwm_mib", [])),
                      _fmt(r["baseline_rss_mib"]), r["load"]]
                     for r in runs]))  # fmt: skip
        timeline = [r for r in runs if "timeline" in r]
        if timeline:
            out.append(("where the wall time went (Dask task stream)",
                        ["output px", "task span s", "client-side before/after s", "Dask compute s",
                         "s with 0 / 1 / 2 workers busy", "tasks: count, s (median s)"],
                        [[f"{r['final_hw'][1]}x{r['final_hw'][0]}", f"{r['timeline']['span']:.1f}",
                          f"{r['timeline']['client_serial']:.1f}", f"{r['timeline']['dask_compute']:.1f}",
                          " / ".join(f"{_busy(r, n):.1f}" for n in range(3)),
                          "; ".join(f"{p} {v['count']}, {v['seconds']:.1f} ({v['median']:.2f})"
                                    for p, v in r["timeline"]["tasks"].items())]
                         for r in timeline]))  # fmt: skip
        targets = [r for r in rows if r.get("kind") == "targets_memory"]
        if targets:
            out.append(("the style-targets task alone (compute_style_targets for the final level, fresh process)",
                        ["output px", "model loaded MiB", "peak MiB", "growth MiB", "seconds", "load"],
                        [[r["output"], f"{r['before_mib']:.0f}", f"**{r['peak_mib']:.0f}**",
                          f"{r['peak_mib'] - r['before_mib']:.0f}", f"{r['seconds']:.1f}", r["load"]]
                         for r in targets]))  # fmt: skip
    elif section == "export":
        out.append(("weft export of one 8192 x 8192 job (fresh process per format)",
                    ["format", "image MiB", "RSS after imports MiB", "peak RSS MiB", "export growth MiB",
                     "growth / image", "peak / image", "tracemalloc MiB", "seconds", "file MiB", "load"],
                    [[r["format"], f"{r['image_mib']:.0f}", f"{r['rss_before_mib']:.0f}", f"{r['rss_peak_mib']:.0f}",
                      f"{r['rss_delta_mib']:.0f}", f"**{r['delta_over_image']:.2f}x**", f"{r['peak_over_image']:.2f}x",
                      f"{r['tracemalloc_mib']:.0f}", f"{r['seconds']:.1f}", f"{r['file_mib']:.0f}", r["load"]]
                     for r in rows]))  # fmt: skip
    elif section == "load":
        out.append(("worker memory after every batch of jobs (same 2 worker processes throughout)",
                    ["jobs done", "batch s", "batch task compute s", "failed", "worker RSS now MiB",
                     "worker peak RSS (VmHWM) MiB", "model loads / inputs cached per worker", "load 1-min"],
                    [[str(r["jobs_done"]), f"{r['batch_s']:.1f}" if r["jobs_done"] else "(after start-up)",
                      f"{r['batch_compute_s']:.1f}" if r["jobs_done"] else "", str(r["failed"]) if r["jobs_done"] else "",
                      _fmt(r["rss_mib"]), _fmt(r["peak_mib"]), _worker_stats_cell(r), r["load"]]
                     for r in rows]))  # fmt: skip
    if notes:
        keys = [k for k in notes[0] if k != "note"]
        out.append(("GPU", [*keys, "result"], [[str(n.get(k, "")) for k in keys] + [n["note"]] for n in notes]))
    return out


def _worker_stats_cell(row: dict) -> str:
    stats = row.get("worker_stats") or {}
    if not stats:
        return "-"
    return " / ".join(f"{v.get('model_loads', '?')}, {v.get('inputs_cached', '?')}" for _, v in sorted(stats.items()))


def _busy(row: dict, n: int) -> float:
    seconds = row["timeline"]["seconds_with_n_busy"]
    return float(seconds.get(n, seconds.get(str(n), 0.0)))


def summary(section: str, rows: list[dict]) -> str:
    """One sentence of what the section's figures show (written from the figures)."""
    data = [r for r in rows if "note" not in r]
    if not data:
        return "Not measured."
    if section == "engine":
        ratios = [r for r in data if r["kind"] == "ratio" and "auto" in r["impl"]]
        loss = [r for r in data if r["kind"] == "loss"]
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
    if section == "padding":
        lattice = [r for r in data if r["padding"] != "zeros"]
        worst = max(lattice, key=lambda r: r["vs_zeros"])
        best = min(lattice, key=lambda r: r["vs_zeros"])
        return (f"Lattice padding costs {100 * (best['vs_zeros'] - 1):+.0f}% to {100 * (worst['vs_zeros'] - 1):+.0f}% "
                f"of a zero-padded forward+backward (worst: {worst['padding']}, {worst['precision']}, "
                f"{worst['size']} px), so seamlessness is nearly free.")  # fmt: skip
    if section == "geometry":
        big = [r for r in data if not r["op"].startswith("tile")]
        lo = min(big, key=lambda r: r["vs_slice"])
        verdict = ("that is memory speed" if lo["vs_slice"] >= 0.7 else
                   f"the slowest ({lo['op']}, {lo['repeat']}, {lo['backend']}) is below memory speed")
        return (f"Whole-image lattice gathers and wrap pads on {lo['shape'].split('x')[0]} px run at "
                f"{lo['vs_slice']:.2f}x or more of the speed of a plain strided copy of the same shape "
                f"(numpy and torch); {verdict}.")  # fmt: skip
    if section == "pipeline":
        runs = [r for r in data if r.get("kind") != "targets_memory"]
        targets = [r for r in data if r.get("kind") == "targets_memory"]
        peaks = {r["size"]: max(r["peak_rss_mib"]) for r in runs}
        over = ", ".join(
            f"{100 * r['overhead']:+.1f}% at {r['size']} px"
            + (f" ({100 * r['overhead_dask']:+.1f}% counting every task's compute)" if "overhead_dask" in r else "")
            for r in runs
        )
        sizes = sorted(peaks)
        growth = peaks[sizes[-1]] - peaks[sizes[0]]
        text = (f"Worker peak RSS is {peaks[sizes[0]]} MiB at {sizes[0]} px and {peaks[sizes[-1]]} MiB at "
                f"{sizes[-1]} px ({growth:+d} MiB for 4x the pixels: "
                f"{'flat' if abs(growth) < 0.1 * peaks[sizes[0]] else 'NOT flat'}); wall time vs task compute / "
                f"workers: {over} (target within +15%); "
                + ", ".join(f"{r['mpx_per_min']:.2f} MPx/min at {r['size']} px" for r in runs))  # fmt: skip
        if targets and len(targets) > 1:
            lo, hi = targets[0], targets[-1]
            grows = hi["peak_mib"] - lo["peak_mib"] > 0.1 * lo["peak_mib"]
            text += (f". The style-targets task alone peaks at {lo['peak_mib']:.0f} MiB for a {lo['output']} output "
                     f"and {hi['peak_mib']:.0f} MiB for {hi['output']}"
                     + (": it runs VGG-19 on the whole style image resized to the output's size, so it grows with "
                        "the print size while the tiles stay flat" if grows else
                        " (the style image is capped, so it does not grow with the print size either)"))  # fmt: skip
        return text + "."
    if section == "export":
        worst = max(data, key=lambda r: r["delta_over_image"])
        ratio = worst["delta_over_image"]
        verdict = ("far below the 3x bound: the file is streamed from chunks" if ratio < 1 else
                   "below the 3x bound" if ratio < 3 else "ABOVE the 3x bound")  # fmt: skip
        return (f"Exporting a {worst['size']} x {worst['size']} job grows the process by at most {ratio:.2f}x the "
                f"image's size ({worst['format']}), {verdict}.")
    if section == "load":
        first = next(r for r in data if r["jobs_done"])
        last = data[-1]
        grow = max(b - a for a, b in zip(first["rss_mib"], last["rss_mib"]))
        return (f"{last['jobs_done']} jobs on the same two workers: worker RSS after {first['jobs_done']} jobs "
                f"{_fmt(first['rss_mib'])} MiB, after {last['jobs_done']} {_fmt(last['rss_mib'])} MiB (largest growth "
                f"{grow:+d} MiB); {last['total_s']:.0f} s in all.")
    return ""


TITLES = {
    "engine": "Engine: seconds per iteration vs pastiche, and bf16 vs fp32 loss (issue 4)",
    "padding": "Lattice padding cost inside VGG-19",
    "geometry": "Geometry: lattice gathers at memory speed (issue 3)",
    "pipeline": "Pipeline: worker memory vs output size, overhead, throughput (issue 5)",
    "export": "Export: peak memory of an 8192 x 8192 export (issue 6)",
    "load": "Load: 200 small jobs sharing 5 styles (issue 7)",
}

METHOD = {
    "engine": "Same content pixels (the central square of `manifests/designs/morris_strawberry_thief.jpg`, written "
    "to a PNG for pastiche), same style (`hokusai_great_wave.jpg`), same layers (relu4_2; relu1_1..relu5_1), "
    "L-BFGS with lr 1 and one function evaluation per step on both sides, same torch threads, one process. "
    "weft is set up like its coarse pass (block lattice padding, seam fade, channels_last). Every timed block "
    "starts a fresh L-BFGS from the content on both sides, runs a few steps and drops the first; blocks "
    "alternate between the three implementations in a rotating order, after a warm-up block each; "
    "seconds per iteration are the median of all timed steps, and pastiche / weft is the median over rounds of "
    "the ratio of the two blocks' medians within a round (blocks of one round run back to back, under about "
    "the same load). The loss rows run weft N iterations from the same start at "
    "the default precision and in fp32 and compare the final weighted loss each run reports; the "
    "'scored in fp32' column re-evaluates both final images with the fp32 network and targets.",
    "padding": "One forward to relu5_1 and backward to the image (random 0..255 Caffe input, channels_last), "
    "padding alternated in a rotating order, median of the runs.",
    "geometry": "`scripts/bench_geometry.py` (torch pinned to one thread like numpy); best of repeated runs.",
    "pipeline": "One job per output size (`morris_strawberry_thief.jpg` x `hokusai_great_wave.jpg`, half-drop), "
    "profile `demo` with the settings below, into a fresh store on a fresh `LocalCluster` (2 worker "
    "processes x 1 thread) per size. `wall` is `RunResult.wall_seconds` (graph building to last task "
    "collected and the job finished), task compute is the sum of the seconds measured inside the tasks, "
    "ideal = compute / workers, overhead = wall / ideal - 1; the Dask columns take every task's compute "
    "interval from Dask's task stream instead (style-targets tasks included). Worker peak RSS is "
    "`RunResult.worker_peak_rss` (each worker's `ru_maxrss`) and, as a check, each worker's own `VmHWM`; "
    "'after imports' is `VmHWM` before the run, after importing torch and weft in the worker. The last "
    "table runs `compute_style_targets` for each final level alone in a fresh process.",
    "export": "`scripts/bench_export.py`: builds a store with one finished 8192 x 8192 job chunk by chunk, "
    "then exports it in a fresh subprocess per format reporting its own peak RSS before and after.",
    "load": "A manifest of 200 jobs (the 3 demo designs with their demo repeat types block / half-drop / "
    "brick, 5 style images made from the 2 bundled ones, 64 px, 5 L-BFGS iterations, no refinement) run as 4 `weft run --only` batches of 50 into one "
    "store, on ONE 2-worker LocalCluster that lives through all batches; after each batch every worker's "
    "current RSS (`VmRSS`) and peak (`VmHWM`) is read with `client.run`, with `RunResult.worker_stats` "
    "(model loads and decoded inputs cached per worker).",
}


#: What investigating a section's figures found (written by hand after the run that the section
#: shows; check them again when re-running). Rendered under each section of the markdown.
FINDINGS_NOTE = "(written by hand for the figures of 2026-11-25; check them again after a re-run)"
FINDINGS: dict[str, str] = {
    "engine": (
        "The one-thread rows are the steady ones (per-round ratios 2.7-3.0x; the benchmark itself is the "
        "load of about 1). bf16 autocast (oneDNN, AVX-512 BF16 / AMX on this CPU) is what makes weft fast: "
        "2.7x faster than its own fp32 per iteration; in fp32 weft is 5-10% faster than pastiche. The "
        "two-thread rows ran while other work kept the load near 4 on the 2 cores: two OpenMP threads then "
        "wait on each other at every parallel region, and the bf16 iteration, made of many short kernels, "
        "suffers most (2.4-2.6 s per 512 px iteration in the contended rounds, 0.64-0.69 s in the three "
        "rounds where the load fell, 1.19 s on one thread), so those ratios (2.0-2.2x, 2.6-2.8x in the "
        "quiet rounds) are bounded by the contention, not by the engine; a quiet machine is needed for a "
        "clean two-thread figure. bf16 L-BFGS does not diverge here: after 100 iterations its loss is "
        "within 0.5% of fp32's, and at no step did it rise more than 3% above its best. At 64 px (a side "
        "probe, not in the table) the bf16 run's third step jumped to about 480x its loss before "
        "recovering (fp32: 1.4x), so very small problems are noisier under bf16. The ratio column was "
        "re-derived (`--from-json`) from this run's saved per-round medians when the script moved from "
        "pooled medians to paired per-round ratios; pooled, the four bf16 ratios were 2.90, 2.90, 3.97 "
        "and 1.85."
    ),
    "geometry": (
        "The 512 + 2 x 64 tile (1.2 MB, served from cache) runs at 0.6-0.8x of a slice copy: that is the "
        "fixed cost of gathering its pieces (about 0.1 ms a call), not bandwidth. An earlier run (12:54 "
        "UTC, load 2) had the torch block whole-image gather at 0.68x; it did not reproduce (0.91x in a "
        "check at 13:42, and the table here), so best-of timings on this shared machine still carry "
        "some noise."
    ),
    "padding": (
        "Measured with one torch thread (at the time two threads were bound by other work's contention, "
        "see the engine section). fp32 lattice padding costs nothing measurable; bf16 costs 0-8%, more "
        "at 256 px where the gathers are a larger share of the cheaper convolutions."
    ),
    "pipeline": (
        "Worker memory: in the earlier runs of this section (12:46 and 13:00 UTC, before commit dce40de) "
        "one worker peaked at 2158 MiB at 2048 px against about 1280 MiB at 1024 px. Measured alone, "
        "the cause was the style-targets task: it ran VGG-19 on the whole style image resized to the "
        "output's size (2112 MiB for a 2048 x 1792 output, 1097 MiB for 1024 x 896, so about 16 GB more "
        "at an 8k print). With the style image capped (`style_max_size`, never above the scan) both "
        "sizes now peak at about 1270 MiB, which is the tile work. Overhead: almost none of it is Dask or "
        "the client (0 workers busy for under 0.1 s, under 0.7 s of client-side work); it is the serial "
        "head of the graph, where only one of the two workers has work: style targets -> coarse pass -> "
        "the 256 x 224 level, which is a single tile -> its stitch -> 4 tiles. That is 8-14 s with one "
        "worker idle whatever the output size, so it weighs +11% to +22% at 1024 px (three runs: +13.9%, "
        "+22.5%, +11.0%, depending on how long the coarse pass took under the load) and only +4% to +10% "
        "at 2048 px. Two accounting notes: `RunResult.compute_seconds` leaves out the style-targets "
        "tasks (the Dask columns include them), and the task's own timer starts after argument "
        "deserialisation."
    ),
    "export": (
        "Fixed while benchmarking: the export child measured `ru_maxrss`, which Linux carries over fork + "
        "exec from the parent, so when `bench.py` (2 GiB after other sections) started it, 'before' read "
        "the parent's 2096 MiB and the export's growth read 0. `scripts/bench_export.py` now reads the "
        "child's own `VmHWM`."
    ),
    "load": (
        "Flat: one model load per worker for all 200 jobs, at most 8 decoded inputs cached (3 designs + 5 "
        "styles), and worker RSS within about 13 MiB from 50 to 200 jobs (allocator noise, no trend "
        "proportional to jobs). About 0.3 s of wall per 64 px job on 2 workers."
    ),
}


def print_tables(section: str, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    for title, header, cells in tables(section, rows):
        table = Table(title=f"[{section}] {title}", title_justify="left")
        for name in header:
            table.add_column(name)
        for line in cells:
            table.add_row(*[c.replace("**", "") for c in line])
        console.print(table)
    console.print(summary(section, rows), highlight=False)


def markdown_section(section: str, rows: list[dict], meta: dict) -> str:
    lines = [f"<!-- bench:{section} -->", f"## {TITLES[section]}", ""]
    lines += [f"**What it shows.** {summary(section, rows)}", ""]
    if "provenance_lines" in meta:  # re-rendered from saved rows: the original run's command and date
        lines += [*meta["provenance_lines"], ""]
    else:
        lines += [f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; load average 1-min during the section: "
                  f"{meta['load']}; section took {meta['seconds']:.0f} s; {meta['threads']}"
                  + (f"; weft at {meta['commit']}" if meta.get("commit") else "") + ".", ""]  # fmt: skip
    lines += [f"Method: {METHOD[section]}", ""]
    if section == "pipeline":
        settings = next((r["settings"] for r in rows if "settings" in r), None)
        if settings:
            lines += ["Settings over `demo`: " + ", ".join(f"`{k} = {v}`" for k, v in settings.items()), ""]
    if FINDINGS.get(section):
        lines += [f"**Findings** {FINDINGS_NOTE}. {FINDINGS[section]}", ""]
    for title, header, cells in tables(section, rows):
        lines += [f"*{title}*", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells]
        lines.append("")
    lines.append(f"<!-- /bench:{section} -->")
    return "\n".join(lines)


HEADER = """# Benchmarks

Produced by `scripts/bench.py` (see its docstring); each section below says the exact command
that produced it, when, and the machine's load while it ran. Re-run a section with
`.venv/bin/python scripts/bench.py --only SECTION --write docs/benchmarks.md`: only that
section is replaced. The machine is shared with other work, so every comparison alternates
its sides (A B A B ...) and reports medians; a load average above the core count means the
absolute figures are pessimistic, the ratios much less so. The load figures include the
benchmark's own threads (about 1 for a one-thread measurement, 2 for two threads or two
workers), so load minus that is what other work added.
"""


def machine_block(info: dict) -> str:
    lines = ["<!-- bench:machine -->", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "<!-- /bench:machine -->"]
    return "\n".join(lines)


def write_markdown(path: Path, blocks: dict[str, str], info: dict) -> None:
    """Replace (or add) each section's block in ``path``, keeping the others."""
    text = path.read_text() if path.exists() else HEADER
    first = text.find("<!-- bench:")
    if first >= 0:  # the introduction is the script's too
        text = HEADER + "\n" + text[first:]
    blocks = {"machine": machine_block(info), **blocks}
    for name in ["machine", *SECTIONS]:
        if name not in blocks:
            continue
        pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _m: blocks[name], text)
        else:
            # keep the canonical order: insert before the first later section present
            order = ["machine", *SECTIONS]
            later = order[order.index(name) + 1 :]
            position = len(text)
            for other in later:
                m = re.search(rf"<!-- bench:{other} -->", text)
                if m:
                    position = m.start()
                    break
            text = text[:position].rstrip("\n") + "\n\n" + blocks[name] + "\n\n" + text[position:].lstrip("\n")
    path.write_text(text.rstrip("\n") + "\n")


def update_findings(path: Path) -> None:
    """Put the current FINDINGS into the sections already in ``path`` (figures untouched)."""
    text = path.read_text()
    for name, finding in FINDINGS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->)(.*?)(<!-- /bench:{name} -->)", re.S)
        match = pattern.search(text)
        if not match:
            continue
        body = re.sub(r"\*\*Findings\*\* .*?\n\n", "", match.group(2), flags=re.S)
        paragraph = f"**Findings** {FINDINGS_NOTE}. {finding}\n\n"
        method = re.search(r"Method: .*?\n\n(?:Settings over .*?\n\n)?", body, re.S)
        at = method.end() if method else len(body)
        body = body[:at] + paragraph + body[at:]
        text = text[: match.start()] + match.group(1) + body + match.group(3) + text[match.end() :]
    path.write_text(text)


# --- command line ----------------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--write", type=Path, help="update these sections in a markdown file (docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also dump the raw rows here")
    parser.add_argument("--threads", type=_ints, default=(1, 2),
                        help="torch CPU thread counts for engine (each) and padding (the last)")
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    parser.add_argument("--engine-sizes", type=_ints, default=(256, 512))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="L-BFGS steps per timed block (first dropped)")
    parser.add_argument("--loss-iterations", type=int, default=100)
    parser.add_argument("--loss-sizes", type=_ints, default=None, help="default: the engine sizes")
    parser.add_argument("--pipeline-sizes", type=_ints, default=(1024, 2048))
    parser.add_argument("--pipeline-iterations", type=int, default=PIPELINE_SETTINGS["iterations"])
    parser.add_argument("--pipeline-refine-iterations", type=int, default=PIPELINE_SETTINGS["refine_iterations"])
    parser.add_argument("--tile-size", type=int, default=PIPELINE_SETTINGS["tile_size"])
    parser.add_argument("--geometry-size", type=int, default=4096)
    parser.add_argument("--export-size", type=int, default=8192)
    parser.add_argument("--load-jobs", type=int, default=200)
    parser.add_argument("--verbose", action="store_true", help="show weft run's own plan/progress output")
    parser.add_argument("--findings-only", action="store_true",
                        help="only put the hand-written findings into the sections already in --write")
    parser.add_argument("--from-json", type=Path,
                        help="measure nothing: re-render the --only sections of --write from this --json output")
    args = parser.parse_args(argv)
    if args.findings_only:
        if not args.write:
            parser.error("--findings-only needs --write FILE")
        update_findings(args.write)
        return 0
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.from_json:
        if not args.write:
            parser.error("--from-json needs --write FILE")
        rerender(args.from_json, args.write, chosen)
        return 0
    command = " ".join([".venv/bin/python", "scripts/bench.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    info = machine()
    thread_notes = {
        "engine": f"torch threads {', '.join(map(str, args.threads))} (each measured)",
        "padding": f"torch threads {args.threads[-1]}",
        "geometry": "torch threads 1 (numpy is single-threaded)",
        "pipeline": "2 worker processes x 1 thread, torch threads 1 per worker",
        "export": "one process",
        "load": "2 worker processes x 1 thread, torch threads 1 per worker",
    }

    def log(message: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)

    log("machine: " + json.dumps(info))
    runners: dict[str, Callable[[], list[dict]]] = {
        "engine": lambda: bench_engine(
            args.engine_sizes, rounds=args.rounds, steps=args.steps, loss_iterations=args.loss_iterations,
            loss_sizes=args.loss_sizes, threads=args.threads, device=args.device, log=log,
        ),
        "padding": lambda: bench_padding(args.engine_sizes, rounds=args.rounds, threads=args.threads[-1],
                                         device=args.device, log=log),
        "geometry": lambda: bench_geometry_rows(args.geometry_size, log=log),
        "pipeline": lambda: bench_pipeline(
            args.pipeline_sizes, device=args.device, quiet=not args.verbose, log=log,
            settings={"tile_size": args.tile_size, "iterations": args.pipeline_iterations,
                      "refine_iterations": args.pipeline_refine_iterations},
        ),
        "export": lambda: bench_export_rows(args.export_size, log=log),
        "load": lambda: bench_load(args.load_jobs, quiet=not args.verbose, log=log),
    }  # fmt: skip
    results: dict[str, list[dict]] = {}
    metas: dict[str, dict] = {}
    blocks: dict[str, str] = {}
    for section in chosen:
        log(f"--- {section} (load {load1()})")
        started = time.perf_counter()
        with LoadSampler(5.0) as loads:
            rows = runners[section]()
        meta = {
            "command": command,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load": loads.summary(),
            "seconds": time.perf_counter() - started,
            "threads": thread_notes[section],
            "commit": git_commit(),
        }
        results[section] = rows
        print_tables(section, rows)
        blocks[section] = markdown_section(section, rows, meta)
        if args.write:  # after every section, so a long run leaves what it has
            write_markdown(args.write, {section: blocks[section]}, info)
        metas[section] = meta
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "results": results, "meta": metas}, indent=1,
                                            default=str))
    return 0


def rerender(source: Path, target: Path, sections: list[str]) -> None:
    """Rewrite ``sections`` of ``target`` from the rows saved in ``source`` (``--json`` output).

    For a new summary, table layout or findings without re-measuring. The command, date and load
    lines come from the JSON's meta, or else are kept from the section already in ``target``.
    """
    saved = json.loads(source.read_text())
    existing = target.read_text() if target.exists() else ""
    blocks = {}
    for section in sections:
        rows = saved["results"].get(section)
        if rows is None:
            continue
        meta = (saved.get("meta") or {}).get(section)
        if meta is None:
            block = re.search(rf"<!-- bench:{section} -->.*?<!-- /bench:{section} -->", existing, re.S)
            found = re.search(r"^(Command: .*?)\n\n", block.group(0), re.S | re.M) if block else None
            if not found:
                raise SystemExit(f"{source} has no meta for {section} and {target} no section to take it from")
            meta = {"provenance_lines": found.group(1).splitlines()}
        blocks[section] = markdown_section(section, rows, meta)
    write_markdown(target, blocks, saved["machine"])


if __name__ == "__main__":
    sys.exit(main())

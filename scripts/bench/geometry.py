"""Geometry: lattice gathers (``wrap_pad``, a tile window, a whole-image gather) on a large
repeat, in GB/s next to plain copies of the same shape (method: docs/benchmarks.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from scripts.bench.machine import devices, load1, med, no_gpu_rows, sync, torch_threads
from scripts.bench.render import Table

TITLE = "Geometry: lattice gathers at memory speed (issue 3)"
CORE, HALO, PAD = 512, 64, 64


def _best_seconds(fn: Callable[[], Any], min_time: float, device: str = "cpu") -> float:
    """Best of repeated runs, at least 3 and at least ``min_time`` s in all (first run warms up)."""
    fn()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or spent < min_time:
        start = time.perf_counter()
        fn()
        sync(device)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def _cases(size: int) -> dict[str, tuple[int, int, int, int]]:
    """name -> window (y0, x0, h, w); the tile window straddles the top-left corner of the wrap."""
    side = CORE + 2 * HALO
    return {
        f"wrap_pad {PAD}px": (-PAD, -PAD, size + 2 * PAD, size + 2 * PAD),
        f"tile {CORE}+2x{HALO}": (-HALO - CORE // 2, -HALO - CORE // 2, side, side),
        "whole, offset": (size // 3, size // 2 + 7, size, size),
    }


def bench_geometry(
    size: int = 4096, *, device: str = "all", min_time: float = 0.25, log: Callable[[str], None] = print
) -> list[dict]:
    """Rows {op, repeat, backend, shape, mb, ms, gb_s, copy_gb_s, slice_gb_s, vs_slice, load}, one per case.

    numpy (H, W, 3) and torch (1, 3, H, W) on the CPU, pinned to one thread like numpy, and
    on CUDA when asked for and present.
    """
    import torch

    from pipeline.repeat.gather import gather_window, wrap_pad

    from pipeline.repeat.lattice import Repeat

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    channels_first = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    backends: dict[str, Any] = {"numpy": image, "torch-cpu": channels_first}
    for dev in devices(device):
        if dev != "cpu":
            backends[f"torch-{dev}"] = channels_first.to(dev)
    rows = []
    loads = [load1()]
    with torch_threads(1):
        for backend, data in backends.items():
            dev = "cpu" if backend == "numpy" else str(data.device)
            for op, (y0, x0, h, w) in _cases(size).items():
                nbytes = h * w * 3
                sh, sw = min(h, size), min(w, size)
                # plain copies on the same backend: the same bytes, and an in-bounds slice of the same shape
                if backend == "numpy":
                    flat = np.empty(nbytes, np.uint8)
                    copy = _best_seconds(lambda: np.copy(flat), min_time)
                    slice_s = _best_seconds(lambda: data[:sh, :sw].copy(), min_time)
                else:
                    flat_t = torch.empty(nbytes, dtype=torch.uint8, device=data.device)
                    copy = _best_seconds(lambda: flat_t.clone(), min_time, dev)
                    slice_s = _best_seconds(lambda: data[..., :sh, :sw].clone(), min_time, dev)
                slice_gb_s = sh * sw * 3 / slice_s / 1e9
                for repeat in Repeat:
                    if op.startswith("wrap_pad"):
                        fn = lambda: wrap_pad(data, repeat, PAD)  # noqa: E731
                    else:
                        fn = lambda: gather_window(data, repeat, y0, x0, h, w)  # noqa: E731
                    seconds = _best_seconds(fn, min_time, dev)
                    rows.append({
                        "op": op, "repeat": repeat.value, "backend": backend, "shape": f"{h}x{w}x3",
                        "mb": nbytes / 1e6, "ms": seconds * 1e3, "gb_s": nbytes / seconds / 1e9,
                        "copy_gb_s": nbytes / copy / 1e9, "slice_gb_s": slice_gb_s,
                        "vs_slice": nbytes / seconds / 1e9 / slice_gb_s,
                    })  # fmt: skip
    loads.append(load1())
    for row in rows:
        row["load"] = f"{med(loads):.2f}"
    log(f"geometry: {len(rows)} rows")
    return rows + no_gpu_rows(device, op="all", repeat="all", backend="torch-cuda")


def tables(rows: list[dict]) -> list[Table]:
    side = next((r["shape"].split("x")[0] for r in rows if r["op"] == "whole, offset"), "?")
    return [(f"lattice gathers on a {side} x {side} x 3 uint8 repeat (best of runs; GB/s of output)",
             ["op", "repeat", "backend", "MB", "ms", "GB/s", "copy GB/s", "slice GB/s", "x slice", "load"],
             [[r["op"], r["repeat"], r["backend"], f"{r['mb']:.1f}", f"{r['ms']:.2f}", f"{r['gb_s']:.1f}",
               f"{r['copy_gb_s']:.1f}", f"{r['slice_gb_s']:.1f}", f"{r['vs_slice']:.2f}", r["load"]]
              for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    big = [r for r in rows if not r["op"].startswith("tile")]
    lo = min(big, key=lambda r: r["vs_slice"])
    verdict = ("that is memory speed" if lo["vs_slice"] >= 0.7 else
               f"the slowest ({lo['op']}, {lo['repeat']}, {lo['backend']}) is below memory speed")
    return (f"Whole-image lattice gathers and wrap pads on {lo['shape'].split('x')[0]} px run at "
            f"{lo['vs_slice']:.2f}x or more of the speed of a plain strided copy of the same shape "
            f"(numpy and torch); {verdict}.")  # fmt: skip

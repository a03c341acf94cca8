"""Gather throughput on a 4096 x 4096 x 3 uint8 repeat: are lattice gathers at memory speed?

For each repeat type, numpy (H, W, 3) and torch (1, 3, H, W) on the CPU (and CUDA when there
is a GPU), it times ``wrap_pad`` by 64 px, one tile window of 512 + 2*64 px across a corner of
the wrap, and a whole-image gather at an offset origin (what re-framing a level costs), and
reports GB/s of output next to two plain copies: a contiguous buffer of the same number of
bytes (``np.copy`` / ``clone``), and an in-bounds slice of the image of the same shape (the
same strided reads without the wrap; for the small tile the fair one, since a 1.2 MB buffer
copy runs from cache). ``bench_geometry()``
returns the rows for ``scripts/bench.py``; run this file to print them as a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.repeat.geometry import Repeat, gather_window, wrap_pad

SIZE = 4096
CORE, HALO, PAD = 512, 64, 64


def _best_seconds(fn: Callable[[], Any], min_time: float = 0.25, sync: Callable[[], None] | None = None) -> float:
    """Best of repeated runs, at least 3 and at least ``min_time`` s in all (first run warms up)."""
    fn()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or spent < min_time:
        start = time.perf_counter()
        fn()
        if sync:
            sync()
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
    size: int = SIZE, *, devices: tuple[str, ...] | None = None, min_time: float = 0.25, threads: int | None = 1
) -> list[dict]:
    """Rows {op, repeat, backend, shape, mb, ms, gb_s, copy_gb_s, slice_gb_s, vs_slice}, one per case.

    ``threads`` pins torch's CPU threads while timing (1: like numpy, and steady on a shared
    machine where an oversubscribed thread pool makes small copies 100x slower; None: leave it).
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(size, devices, min_time)
    finally:
        torch.set_num_threads(previous)


def _run(size: int, devices: tuple[str, ...] | None, min_time: float) -> list[dict]:
    import torch

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    channels_first = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    backends: dict[str, Any] = {"numpy": image, "torch-cpu": channels_first}
    if devices is None:
        devices = ("cuda",) if torch.cuda.is_available() else ()
    for device in devices:
        backends[f"torch-{device}"] = backends["torch-cpu"].to(device)
    rows = []
    for backend, data in backends.items():
        is_cuda = backend == "torch-cuda"
        sync = torch.cuda.synchronize if is_cuda else None
        for op, (y0, x0, h, w) in _cases(size).items():
            nbytes = h * w * 3
            # the plain copy of the same bytes, on the same backend
            if backend == "numpy":
                flat = np.empty(nbytes, np.uint8)
                copy = _best_seconds(lambda: np.copy(flat), min_time)
            else:
                flat_t = torch.empty(nbytes, dtype=torch.uint8, device=data.device)
                copy = _best_seconds(lambda: flat_t.clone(), min_time, sync)
            sh, sw = min(h, size), min(w, size)
            if backend == "numpy":
                slice_s = _best_seconds(lambda: data[:sh, :sw].copy(), min_time)
            else:
                slice_s = _best_seconds(lambda: data[..., :sh, :sw].clone(), min_time, sync)
            slice_gb_s = sh * sw * 3 / slice_s / 1e9
            for repeat in Repeat:
                if op.startswith("wrap_pad"):
                    fn = lambda: wrap_pad(data, repeat, PAD)  # noqa: E731
                else:
                    fn = lambda: gather_window(data, repeat, y0, x0, h, w)  # noqa: E731
                seconds = _best_seconds(fn, min_time, sync)
                rows.append(
                    {
                        "op": op,
                        "repeat": repeat.value,
                        "backend": backend,
                        "shape": f"{h}x{w}x3",
                        "mb": nbytes / 1e6,
                        "ms": seconds * 1e3,
                        "gb_s": nbytes / seconds / 1e9,
                        "copy_gb_s": nbytes / copy / 1e9,
                        "slice_gb_s": slice_gb_s,
                        "vs_slice": nbytes / seconds / 1e9 / slice_gb_s,
                    }
                )
    return rows


def _print(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lattice gathers on a {SIZE} x {SIZE} x 3 uint8 repeat (GB/s of output)")
    for name in ("op", "repeat", "backend", "MB", "ms", "GB/s", "copy GB/s", "slice GB/s", "x slice"):
        table.add_column(name, justify="left" if name in ("op", "repeat", "backend") else "right")
    for r in rows:
        table.add_row(
            r["op"], r["repeat"], r["backend"], f"{r['mb']:.1f}", f"{r['ms']:.2f}",
            f"{r['gb_s']:.1f}", f"{r['copy_gb_s']:.1f}", f"{r['slice_gb_s']:.1f}", f"{r['vs_slice']:.2f}",
        )  # fmt: skip
    Console(width=120).print(table)


if __name__ == "__main__":
    _print(bench_geometry())

"""What one optimisation holds in memory, per pixel: the measured figures ``tile_size = "auto"`` sizes by.

The VGG-19 forward to the deepest loss layer and its backward to the image keep every
activation autograd needs, so their memory grows with the pixels optimised. The figures here
are measured, per precision, by the benchmark section ``tile_memory`` (``scripts/bench/tile_memory.py``,
figures in docs/benchmarks.md): the slope of a fresh process's peak memory between two sizes.
L-BFGS adds its history, which is plain arithmetic on the image's size. Free of torch, so
planning can use it.
"""

from __future__ import annotations

import re

#: Peak bytes per optimised pixel of VGG-19 forward (to relu5_1) and backward to the image, with the
#: Gram and content losses, measured (bench section ``tile_memory``: 3148 and 4188 on a 2-core EPYC), plus 15%.
NETWORK_BYTES_PER_PIXEL: dict[str, int] = {"fp32": 3600, "bf16": 4800}
#: A worker's memory before its first optimisation: torch, weft, Dask and VGG-19 loaded (measured, rounded up).
WORKER_BASELINE_BYTES = 1 << 30
#: float32 vectors of the image's size that L-BFGS keeps besides its history (gradient, direction, previous
#: gradient, the flat parameters) and that Adam keeps (two moments, gradient, the update).
OPTIMISER_VECTORS = 4
#: L-BFGS history pairs (torch's ``history_size`` as :func:`pipeline.engine.optimise.optimise` sets it).
LBFGS_HISTORY = 50

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_bytes(text: str) -> int:
    """'6 GiB', '1500 MiB', '2.5GB' -> bytes; a clear ValueError for anything else."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size; write a number and a unit, e.g. \"6 GiB\" or \"1500 MiB\"")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r}: a memory size must be more than 0")
    return value


def format_bytes(value: float) -> str:
    """Bytes as humans read them: '1.5 GiB', '730 MiB'."""
    if value >= 2**30:
        return f"{value / 2**30:.1f} GiB"
    return f"{value / 2**20:.0f} MiB"


def optimiser_bytes_per_pixel(optimizer: str, iterations: int) -> int:
    """float32 state the optimiser keeps per pixel (3 channels): L-BFGS's history grows to ``LBFGS_HISTORY``."""
    vectors = OPTIMISER_VECTORS + (2 * min(iterations, LBFGS_HISTORY) if optimizer == "lbfgs" else 0)
    return vectors * 3 * 4


def task_bytes(pixels: int, *, precision: str, optimizer: str, iterations: int) -> int:
    """Peak memory of a worker optimising ``pixels`` at once: baseline + network + optimiser state."""
    per_pixel = NETWORK_BYTES_PER_PIXEL[precision] + optimiser_bytes_per_pixel(optimizer, iterations)
    return WORKER_BASELINE_BYTES + pixels * per_pixel


def pixels_within(budget: int, *, precision: str, optimizer: str, iterations: int) -> int:
    """How many pixels one optimisation may hold under ``budget`` bytes (0 when the baseline alone exceeds it)."""
    per_pixel = NETWORK_BYTES_PER_PIXEL[precision] + optimiser_bytes_per_pixel(optimizer, iterations)
    return max(0, (budget - WORKER_BASELINE_BYTES) // per_pixel)

"""What one optimisation holds in memory, per pixel: the measured figures ``tile_size = "auto"`` sizes by.

The VGG-19 forward to the deepest loss layer and its backward to the image keep every
activation autograd needs, so their memory grows with the pixels optimised. The figures here
are measured, per precision, by the benchmark section ``tile_memory`` (``scripts/bench/tile_memory.py``,
figures in docs/benchmarks.md): the slope of a fresh process's peak memory between two sizes.
L-BFGS adds its history, which is plain arithmetic on the image's size. Free of torch, so
planning can use it.
"""

from __future__ import annotations

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

def parse_bytes(text: str) -> int:
    """'6 GiB', '1500 MiB', '2.5GB', '16G' -> bytes, as Dask (and dask-jobqueue's ``memory``) read them.

    A clear ValueError for anything else, and for sizes that are empty or not more than 0.
    """
    from dask.utils import parse_bytes as dask_parse_bytes

    hint = "write a number and a unit, e.g. \"6 GiB\" or \"1500 MiB\""
    try:
        value = int(dask_parse_bytes(text)) if text.strip() else 0
    except ValueError:
        raise ValueError(f"{text!r} is not a memory size; {hint}") from None
    if value <= 0:
        raise ValueError(f"{text!r}: a memory size must be more than 0; {hint}")
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


def bytes_per_pixel(*, precision: str, optimizer: str, iterations: int) -> int:
    """What one more optimised pixel costs: the network's bytes plus the optimiser's state."""
    return NETWORK_BYTES_PER_PIXEL[precision] + optimiser_bytes_per_pixel(optimizer, iterations)


def task_bytes(pixels: int, *, precision: str, optimizer: str, iterations: int) -> int:
    """Peak memory of a worker optimising ``pixels`` at once: baseline + network + optimiser state."""
    return WORKER_BASELINE_BYTES + pixels * bytes_per_pixel(precision=precision, optimizer=optimizer,
                                                           iterations=iterations)  # fmt: skip


def pixels_within(budget: int, *, precision: str, optimizer: str, iterations: int) -> int:
    """How many pixels one optimisation may hold under ``budget`` bytes (0 when the baseline alone exceeds it)."""
    per_pixel = bytes_per_pixel(precision=precision, optimizer=optimizer, iterations=iterations)
    return max(0, (budget - WORKER_BASELINE_BYTES) // per_pixel)

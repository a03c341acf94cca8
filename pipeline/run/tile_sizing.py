"""``tile_size = "auto"``: the whole level when one worker's memory holds it, else the largest tile that does.

Tiling costs a halo around every tile (a 256 px core with a 64 px halo optimises 2.25x its
pixels), so a level that fits in a worker's memory is optimised whole, with lattice padding,
inside the job's whole-image task. The budget is the job's ``worker_memory`` setting, or what
the cluster gives a worker (:func:`pipeline.run.cluster.planned_worker_memory`), or
:data:`DEFAULT_WORKER_MEMORY`. The memory model is measured (:mod:`pipeline.engine.memory`).
The layout it picks goes into the job key (:func:`pipeline.run.plan.job_key`), so a given
manifest and budget always give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipeline.engine.memory import (
    NETWORK_BYTES_PER_PIXEL,
    format_bytes,
    parse_bytes,
    pixels_within,
    task_bytes,
)
from pipeline.errors import WeftError
from pipeline.settings import Settings

#: Tile cores that "auto" picks are multiples of this (and the chunk of whole levels in the store).
QUANTUM = 64
#: The zarr chunk side of a level optimised whole (it has no tiles; the chunk is only storage).
WHOLE_CHUNK = 512
#: The budget when neither the job's ``worker_memory`` nor the cluster says one (an external scheduler).
DEFAULT_WORKER_MEMORY = 4 * 2**30


@dataclass(frozen=True)
class Budget:
    """Bytes one task may use on a worker, and where that figure came from (`weft plan` says)."""

    bytes: int
    source: str

    def __str__(self) -> str:
        return f"{format_bytes(self.bytes)} per worker ({self.source})"


def job_budget(settings: Settings, cluster: Budget | None) -> Budget:
    """The job's own ``worker_memory``, else the cluster's, else the default."""
    if settings.worker_memory is not None:
        return Budget(parse_bytes(settings.worker_memory), f"worker_memory = {settings.worker_memory!r}")
    if cluster is not None:
        return cluster
    return Budget(DEFAULT_WORKER_MEMORY, "default: the cluster does not say before it starts")


def planning_precision(precision: str) -> str:
    """The precision whose footprint the planner assumes: 'auto' may become either, so the larger one."""
    if precision != "auto":
        return precision
    return max(NETWORK_BYTES_PER_PIXEL, key=NETWORK_BYTES_PER_PIXEL.__getitem__)


def _footprint(settings: Settings) -> dict[str, Any]:
    """What the memory model needs of a job: the planned precision, the optimiser and its most steps in one
    optimisation (L-BFGS's history grows with them, up to its size)."""
    steps = max(settings.iterations, settings.refine_iterations, settings.polish_iterations)
    return {"precision": planning_precision(settings.precision), "optimizer": settings.optimizer, "iterations": steps}


def level_bytes(settings: Settings, pixels: int) -> int:
    """Peak worker memory of optimising ``pixels`` at once under ``settings``."""
    return task_bytes(pixels, **_footprint(settings))


def fits_whole(settings: Settings, size: tuple[int, int], budget: Budget) -> bool:
    """Whether a whole level of ``size`` (w, h) fits the budget."""
    return level_bytes(settings, size[0] * size[1]) <= budget.bytes


def auto_core(settings: Settings, budget: Budget, job_id: str) -> int:
    """The largest tile core (a multiple of :data:`QUANTUM`) whose window (core + 2 halo) fits the budget.

    A budget that holds no tile of the smallest core is an error that names the job and the settings.
    """
    window = math.isqrt(pixels_within(budget.bytes, **_footprint(settings)))
    core = (window - 2 * settings.halo) // QUANTUM * QUANTUM
    smallest = max(QUANTUM, (2 * settings.overlap) // QUANTUM * QUANTUM + QUANTUM)
    if core < smallest:
        need = level_bytes(settings, (smallest + 2 * settings.halo) ** 2)
        raise WeftError(
            f"job {job_id!r}: tile_size = \"auto\" finds no tile that fits {budget}: the smallest "
            f"({smallest} px core, halo {settings.halo}) needs {format_bytes(need)}; raise worker_memory or give "
            f"the workers more memory, or lower halo"
        )
    return core


def even_core(largest: int, size: tuple[int, int]) -> int:
    """The core that cuts a level of ``size`` (w, h) into as few tiles as ``largest`` does, evened out.

    A 1024 px level under a 448 px largest core needs 3 tiles a side either way; 384 px cores
    (1024 / 3, rounded up to :data:`QUANTUM`) optimise 512² windows instead of 576²: less work,
    less memory, the same tile count.
    """
    side = max(size)
    count = math.ceil(side / largest)
    return min(largest, math.ceil(math.ceil(side / count) / QUANTUM) * QUANTUM)


def check_whole(settings: Settings, size: tuple[int, int], budget: Budget, job_id: str, what: str) -> None:
    """An error naming the job when a pass that must run whole (the coarse pass) does not fit the budget."""
    need = level_bytes(settings, size[0] * size[1])
    if need > budget.bytes:
        raise WeftError(
            f"job {job_id!r}: the {what} ({size[0]}x{size[1]}, whole) needs about {format_bytes(need)}, more than "
            f"{budget}; lower coarse_size, or raise worker_memory"
        )

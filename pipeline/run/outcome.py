"""What one run did to each job, and in all: what the summary, the exit code and benchmarks read."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.conventions import JobStatus
from pipeline.run.plan import JobPlan


@dataclass
class JobOutcome:
    """What happened to one job in this run (``job`` is None for a job the manifest could not build)."""

    job: JobPlan | None
    status: JobStatus = JobStatus.PENDING
    error: str | None = None
    compute_seconds: float = 0.0
    tasks: int = 0
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    seams: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run did, for the CLI's exit code and for benchmarks."""

    outcomes: dict[str, JobOutcome]
    wall_seconds: float = 0.0  # from the first submitted task to the last finished one
    compute_seconds: float = 0.0  # summed over tasks, as measured inside them
    workers: int = 0
    tasks: int = 0  # tasks submitted (0 when everything was already done)
    worker_peak_rss: dict[str, int] = field(default_factory=dict)  # bytes, per worker process
    task_counts: dict[str, int] = field(default_factory=dict)  # tasks submitted, by kind: targets, coarse, tile, ...
    #: per worker: tasks it computed by kind, model loads, cached inputs (pipeline.run.tasks.worker_stats)
    worker_stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if any(o.status is JobStatus.FAILED for o in self.outcomes.values()) else 0

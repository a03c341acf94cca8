"""The few facts every stage agrees on: job ids, the default dpi, the path rule, the job statuses.

Each is defined here once, so the manifest, the store, the run and the deliverables cannot
drift apart (a job id the manifest accepts is always a folder name the store can hold).
"""

from __future__ import annotations

import re
from enum import StrEnum

#: Print resolution when a job gives none: the textile printers' common default.
DEFAULT_DPI = 300

#: Whether paths may lead outside the manifest's folder, unless the caller says otherwise.
#: Off, so a manifest received from elsewhere cannot read arbitrary files; ``weft validate``,
#: ``weft plan``, ``weft run`` and the library all share this one default.
ALLOW_OUTSIDE_ROOT = False

#: Where the network may run: ``auto`` picks CUDA when the workers see a GPU.
DEVICES = ("auto", "cpu", "cuda")
#: The engines a job can use (``engine`` in the settings; ``weft stylize --engine``).
ENGINES = ("optimise", "feedforward")
#: Batch schedulers ``weft run --cluster`` submits workers to (through dask-jobqueue).
JOBQUEUE_KINDS = ("slurm", "pbs")
#: Every ``--cluster`` kind: the embedded LocalCluster, or a batch scheduler.
CLUSTER_KINDS = ("local", *JOBQUEUE_KINDS)
#: Print file formats ``weft export`` writes, with their file suffixes.
EXPORT_FORMATS = {"tiff": ".tif", "png": ".png"}

#: A job id: it names a folder in the store and a file in the export, so only safe characters.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_valid_job_id(job_id: object) -> bool:
    """True when ``job_id`` can name a store folder and an export file."""
    return isinstance(job_id, str) and JOB_ID_PATTERN.fullmatch(job_id) is not None


class JobStatus(StrEnum):
    """Where a job stands: in the store (the first four) and, for one run, in its summary (all)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already done with the same key: this run did nothing
    STOPPED = "stopped"  # the run stopped on a store fault before the job finished
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM while the job ran

    @property
    def stored(self) -> bool:
        """Whether the store can hold this status (the rest describe one run only)."""
        return self in STORED_STATUSES


STORED_STATUSES = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED})


class PlanState(StrEnum):
    """What the plan decided for a job by comparing its key with the store."""

    NEW = "new"
    CHANGED = "changed"  # the store holds an older key: recomputed from scratch
    RESUME = "resume"  # same key, unfinished: finished tiles are kept
    DONE = "done"  # same key, finished: skipped
    FORCED = "forced"  # --force
    FAILED = "failed"  # an input cannot be read or hashed

    @property
    def runs(self) -> bool:
        """Whether `weft run` computes anything for a job in this state."""
        return self in {PlanState.NEW, PlanState.CHANGED, PlanState.RESUME, PlanState.FORCED}

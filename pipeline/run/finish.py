"""The end of a job, on the client: seam figures, the pyramid, status done and timings.

Only after this is a job exportable: a job whose last chunk is written but that was never
finished (the run died in between) is finished by the next run without recomputing anything.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pipeline.conventions import JobStatus
from pipeline.repeat.seams import seam_figures
from pipeline.run import store
from pipeline.run.outcome import JobOutcome
from pipeline.run.plan import Plan
from pipeline.run.pyramid import write_pyramid


def finish_job(plan: Plan, root: Any, outcome: JobOutcome) -> None:
    """Seam figures, pyramid, status done, timings: the job is finished and exportable."""
    job = outcome.job
    assert job is not None
    image = store.level_array(str(plan.store), job.id)[...]
    final = job.levels[-1]
    grid = final.tile_grid(job.spec.repeat) if final.tiled and final.chunks > 1 else None
    seams = seam_figures(image, job.spec.repeat, grid)
    write_pyramid(str(plan.store), job.id)
    outcome.seconds = time.time() - outcome.started
    outcome.seams = seams
    outcome.status = JobStatus.DONE
    info = store.job_info(root, job.id)
    timings = dict(info.get("timings") or {})
    timings.update(
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(outcome.seconds, 2),
        compute_seconds=round(outcome.compute_seconds, 2),
    )
    store.set_job_status(root, job.id, JobStatus.DONE, timings=timings, seams=seams)

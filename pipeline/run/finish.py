"""The end of a job, on the client: seam figures, the pyramid, status done and timings.

Only after this is a job exportable: a job whose last chunk is written but that was never
finished (the run died in between) is finished by the next run without recomputing anything.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pipeline.conventions import JobStatus
from pipeline.repeat.seams import frame_ratio, seam_figures
from pipeline.run import store
from pipeline.run.models import model_record
from pipeline.run.outcome import JobOutcome
from pipeline.run.plan import Plan
from pipeline.run.pyramid import write_pyramid


def finish_job(plan: Plan, root: Any, outcome: JobOutcome) -> None:
    """Seam figures, pyramid, status done, timings: the job is finished and exportable."""
    job = outcome.job
    assert job is not None
    image = store.level_array(str(plan.store), job.id)[...]
    final = job.levels[-1]
    split = (final.tiled or final.inferred) and final.chunks > 1
    grid = final.tile_grid(job.spec.repeat) if split else None
    seams = {**seam_figures(image, job.spec.repeat, grid), "frame": round(float(frame_ratio(image, job.spec.repeat)), 3)}
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
    extra = {}
    if job.model is not None:  # the model file this result came from, by its hash (the record is in models/)
        record = model_record(str(plan.store), job.model.id) or {}
        extra["model"] = {"id": job.model.id, "key": job.model.key, "sha256": record.get("sha256")}
    store.set_job_status(root, job.id, JobStatus.DONE, timings=timings, seams=seams, **extra)

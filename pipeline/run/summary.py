"""The table a run ends with: every job, its status, size, time, seam figures and error, then each error in full.

Seam figures are relative to the image itself (:func:`pipeline.repeat.seams.seam_figures`):
the ratio of a boundary's step to its image's other lines, then its rank (#1 = the steepest).
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.console import print_errors
from pipeline.conventions import JobStatus
from pipeline.run.outcome import JobOutcome


def _relative_cell(seams: dict, key: str, prefix: str) -> str:
    """ "1.012 #80/192": the ratio to the image's own lines and its rank among them (repeat/seams.py)."""
    if key not in seams:
        return ""
    rank, compared = seams.get(f"{prefix}_rank"), seams.get(f"{prefix}_compared")
    return f"{seams[key]:.3f}" + (f" #{rank}/{compared}" if rank is not None and compared else "")


def print_summary(outcomes: dict[str, JobOutcome], console: Console) -> None:
    """One row per job: status, size, seconds, seam figures and the error's first line; every error below."""
    table = Table(title="summary", title_justify="left")
    for column in ("job", "status", "size px", "seconds", "repeat seam", "tile seam", "frame", "error"):
        table.add_column(column, overflow="fold")  # a narrow terminal folds ids and errors, never cuts them
    colours = {JobStatus.DONE: "green", JobStatus.SKIPPED: "green", JobStatus.FAILED: "red", JobStatus.STOPPED: "red"}
    for job_id, outcome in outcomes.items():
        colour = colours.get(outcome.status, "yellow")
        table.add_row(
            escape(job_id),
            f"[{colour}]{outcome.status}[/]",
            f"{outcome.job.spec.width}x{outcome.job.spec.height}" if outcome.job else "",
            f"{outcome.seconds:.1f}" if outcome.status is JobStatus.DONE else "",
            _relative_cell(outcome.seams, "repeat", "repeat"),
            _relative_cell(outcome.seams, "internal_max", "internal"),
            f"{outcome.seams['frame']:.2f}" if "frame" in outcome.seams else "",
            escape((outcome.error or "").strip().split("\n", 1)[0]),
        )
    console.print(table)
    failed = [(job_id, o.error) for job_id, o in outcomes.items() if o.status is JobStatus.FAILED and o.error]
    print_errors(console, failed)

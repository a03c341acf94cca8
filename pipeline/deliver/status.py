"""``weft status STORE``: one table of every job — state, progress, size, time, seams, error — and the trained models.

Reads only attributes and done maps (never image data), so it is instant on a store that
a run is writing right now. ``--runs`` lists the store's runs instead (when, where, what
command, how many jobs ended how, exit code).

In a terminal the error column shows the start of each error; anywhere else (a log file) it
is never cut. The first line of every failure follows the table in full either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.console import print_errors
from pipeline.conventions import JobStatus
from pipeline.run.lock import lock_info
from pipeline.run.models import finished_models
from pipeline.run.store import job_ids, job_info, open_store, run_records

STATUS_STYLE = {
    JobStatus.DONE: "green",
    JobStatus.RUNNING: "cyan",
    JobStatus.PENDING: "dim",
    JobStatus.FAILED: "bold red",
}
ERROR_WIDTH = 60


def shorten(text: str | None, width: int | None = ERROR_WIDTH) -> str:
    """First line of ``text``, cut to ``width`` characters with an ellipsis (``None``: never cut)."""
    if not text:
        return ""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if width is None or len(line) <= width else line[: width - 1] + "…"


def number(value: Any) -> float | None:
    """A stored attribute as a number, or None: attributes are data and may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def size_cm(info: Mapping[str, Any], sep: str = "x") -> str:
    """'WxH' in cm at the job's dpi, or '' when size or dpi is unknown."""
    width, height, dpi = (number(info.get(key)) for key in ("width", "height", "dpi"))
    if not (width and height and dpi):
        return ""
    return f"{width / dpi * 2.54:.1f}{sep}{height / dpi * 2.54:.1f}"


def seam_text(info: Mapping[str, Any]) -> str:
    """'repeat / internal max' seam ratios (about 1.0 is invisible)."""
    seams = info.get("seams") or {}
    values = [number(seams.get("repeat")), number(seams.get("internal_max"))]
    return " / ".join("-" if v is None else f"{v:.2f}" for v in values) if any(v is not None for v in values) else ""


def seconds_text(info: Mapping[str, Any]) -> str:
    seconds = number((info.get("timings") or {}).get("seconds"))
    return "" if seconds is None else f"{seconds:,.1f}"


def status_table(store: Path, infos: list[dict[str, Any]], error_width: int | None = ERROR_WIDTH) -> Table:
    table = Table(title=f"weft store {escape(str(store))}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("job", style="bold", no_wrap=True)
    for name in ("status", "tiles", "size px", "size cm", "seconds", "seams r / i"):
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=True)
    table.add_column("error", style="red", overflow="fold", ratio=1)
    for info in infos:
        status = str(info.get("status", "?"))
        progress = info["progress"]
        size = f"{info.get('width')}x{info.get('height')}" if info.get("width") else ""
        table.add_row(
            escape(str(info.get("job_id"))),
            f"[{STATUS_STYLE.get(status, 'yellow')}]{escape(status)}[/]",
            f"{progress['tiles_done']}/{progress['tiles_total']}",
            size,
            size_cm(info),
            seconds_text(info),
            seam_text(info),
            escape(shorten(info.get("error"), error_width)),
        )
    return table


def models_table(store: Path, models: list[dict[str, Any]]) -> Table:
    """One row per trained feed-forward model: styles, steps, time, device, final loss, file hash."""
    table = Table(title=f"models in {escape(str(store))}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("model", "styles", "images", "steps", "seconds", "final loss", "device", "sha256", "trained"):
        justify = "right" if name in {"images", "steps", "seconds", "final loss"} else "left"
        table.add_column(name, justify=justify, overflow="fold")
    for model in models:
        curve = model.get("curve") or []
        loss = number(curve[-1][2]) if curve and isinstance(curve[-1], list) and len(curve[-1]) > 2 else None
        seconds = number(model.get("seconds"))
        table.add_row(
            escape(str(model.get("id"))),
            escape("+".join(str(s.get("id")) for s in model.get("styles") or [] if isinstance(s, Mapping))),
            str(len(model.get("images") or [])),
            str(model.get("steps", "")),
            "" if seconds is None else f"{seconds:,.0f}",
            "" if loss is None else f"{loss:.4g}",
            escape(str(model.get("device", ""))),
            escape(str(model.get("sha256", ""))[:12]),
            escape(str(model.get("trained", ""))),
        )
    return table


def _counts_text(counts: Any) -> str:
    if not isinstance(counts, Mapping):
        return ""
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def runs_table(store: Path, runs: list[dict[str, Any]]) -> Table:
    """One row per recorded run, oldest first."""
    table = Table(title=f"runs of {escape(str(store))}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("started", "ended", "host", "command", "jobs", "exit"):
        table.add_column(name, justify="right" if name == "exit" else "left", overflow="fold")
    for run in runs:
        code = run.get("exit_code")
        colour = "green" if code == 0 else "red"
        table.add_row(
            *(escape(str(run.get(key) or "")) for key in ("started", "ended", "host", "command")),
            escape(_counts_text(run.get("counts"))),
            f"[{colour}]{escape(str(code))}[/]",
        )
    return table


def runs_command(store: Path, console: Console | None = None) -> int:
    """Print the runs recorded in ``store`` (``weft status --runs``); exit code 0."""
    console = console or Console()
    runs = run_records(open_store(store, "r"))
    if not runs:
        console.print(f"no runs recorded in {escape(str(store))}", highlight=False)
        return 0
    console.print(runs_table(store, runs))
    return 0


def status_command(store: Path, console: Console | None = None) -> int:
    """Print the jobs of ``store``; exit code 1 when any job failed, else 0."""
    console = console or Console()
    root = open_store(store, "r")
    lock = lock_info(store)
    if lock is not None:
        holder = f"written by pid {lock.get('pid', '?')} on {lock.get('host', '?')} since {lock.get('started', '?')}"
        console.print(f"[cyan]locked[/]: {escape(holder)}", highlight=False)
    infos = [job_info(root, job_id) for job_id in job_ids(root)]
    models = finished_models(store)
    if models:
        console.print(models_table(store, models))
    if not infos:
        console.print(f"no jobs in {escape(str(store))}", highlight=False)
        return 0
    console.print(status_table(store, infos, ERROR_WIDTH if console.is_terminal else None))
    failed = [info for info in infos if info.get("status") == JobStatus.FAILED]
    # in full below the table: a narrow terminal squeezes the error column
    print_errors(console, ((str(info.get("job_id")), str(info.get("error") or "")) for info in failed), first_line=True)
    order = (JobStatus.DONE, JobStatus.RUNNING, JobStatus.PENDING, JobStatus.FAILED)
    counts = {s: sum(1 for i in infos if i.get("status") == s) for s in order}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n), highlight=False)
    return 1 if failed else 0

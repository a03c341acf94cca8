"""The record of one run: ``run_started`` and ``run_finished`` events, and a line in the store's ``runs``.

Every run that got the store's lock is recorded, however it ends: all jobs done, some failed,
Ctrl-C (130), SIGTERM (143) or a store fault (1); the record is appended when it ends. A store
that cannot be written at all (disk full) keeps no record of the run that stopped on it; the
``run_finished`` event still says how it ended. ``weft status STORE --runs`` lists the records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pipeline import __version__
from pipeline.conventions import JobStatus
from pipeline.run import store
from pipeline.run.events import RunEvents, now, timestamp
from pipeline.run.lock import RunLock
from pipeline.run.outcome import RunResult
from pipeline.run.plan import Plan

#: Exit status of a run interrupted with Ctrl-C (128 + SIGINT, what the shell reports).
EXIT_INTERRUPTED = 130


def _exit_status(error: BaseException) -> int:
    """The exit status a run ends with when ``error`` stops it (as the CLI will report it)."""
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else 1
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return 1


def job_counts(result: RunResult) -> dict[str, int]:
    """How many jobs ended in each status, in the order of :class:`JobStatus` (none left out as 0)."""
    statuses = [outcome.status for outcome in result.outcomes.values()]
    return {str(status): statuses.count(status) for status in JobStatus if status in statuses}


def _announce(events: RunEvents, plan: Plan, result: RunResult, lock: Mapping[str, Any]) -> None:
    counts = job_counts(result)
    events.emit(
        "run_started",
        command=lock.get("command"), pid=lock.get("pid"), host=lock.get("host"), store=str(plan.store),
        manifest=str(plan.manifest.path), jobs=len(result.outcomes), to_run=len(plan.to_run),
        skipped=counts.get(JobStatus.SKIPPED, 0), failing=counts.get(JobStatus.FAILED, 0),
    )  # fmt: skip


def announce_settled(events: RunEvents, result: RunResult) -> None:
    """``job_skipped`` / ``job_failed`` for the jobs the plan settled before any work."""
    for job_id, outcome in result.outcomes.items():
        if outcome.status is JobStatus.SKIPPED:
            events.emit("job_skipped", job=job_id)
        elif outcome.status is JobStatus.FAILED:
            events.emit("job_failed", job=job_id, error=outcome.error or "failed")


@contextmanager
def recorded(lock: RunLock, events: RunEvents, plan: Plan, result: RunResult) -> Iterator[None]:
    """Inside the held ``lock``: ``run_started``; at the end, however the run ends, its record and ``run_finished``."""
    started = now()
    held = lock.info or {}
    _announce(events, plan, result, held)
    code = 1
    try:
        yield
        code = result.exit_code
    except BaseException as error:
        code = _exit_status(error)
        raise
    finally:
        ended = now()
        counts = job_counts(result)
        record = {
            "started": timestamp(started), "ended": timestamp(ended), "host": held.get("host"),
            "pid": held.get("pid"), "command": held.get("command"), "weft": __version__,
            "counts": counts, "exit_code": code,
        }  # fmt: skip
        try:
            store.record_run(lock.root if lock.root is not None else lock.path, record)
        except Exception:  # noqa: BLE001 - best effort: never hide the error the run stops on
            pass  # the store cannot be written (disk full, read-only): that error says so
        events.emit("run_finished", exit_code=code, seconds=round((ended - started).total_seconds(), 1), counts=counts)

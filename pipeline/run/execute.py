"""``weft run``: plan, lock the store, submit the graph, follow it to the end, summarise.

The graph (:mod:`pipeline.run.graph`) is per job: style targets (shared across jobs by style
and scale) -> coarse pass -> per refinement level, tiles -> stitched chunks. Finished tiles
and chunks are not submitted again; a failing job is reported and the others go on.

Faults that are not one job's (see docs/operations.md): a store that cannot be written (disk
full, read-only) stops the whole run with one clear error, since every job would fail the same
way; Ctrl-C, or SIGTERM from a batch scheduler, stops it cleanly (cluster closed, lock released,
interrupted jobs marked pending) and says how to resume. Nothing half-written is ever marked done.
"""

from __future__ import annotations

import shlex
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from pipeline.conventions import ALLOW_OUTSIDE_ROOT, JobStatus, PlanState, is_valid_job_id
from pipeline.errors import StoreError, WeftError
from pipeline.run import journal, store
from pipeline.run.closing_noise import QuietClosing
from pipeline.run.cluster import (
    ClusterInfo, ClusterOptions, SeenWorkers, connect, planned_worker_memory, worker_timeout,
)
from pipeline.run.events import RunEvents, run_events
from pipeline.run.finish import finish_job
from pipeline.run.graph import Graph
from pipeline.run.lock import RunLock
from pipeline.run.models import stored_models
from pipeline.run.interrupts import EXIT_TERMINATED, IgnoreInterrupts, Terminated, sigterm_stops_the_run, store_fault
from pipeline.run.outcome import JobOutcome, RunResult
from pipeline.run.plan import Plan, make_plan, print_plan
from pipeline.run.provenance import input_thumbnails, job_provenance
from pipeline.run.summary import print_summary
from pipeline.run.tasks import TRAINING_TOPIC, peak_rss, worker_stats


@dataclass(frozen=True)
class RunOptions:
    """Everything ``weft run`` was asked to do."""

    manifest: Path
    store: Path
    profile: str | None = None
    config: Path | None = None
    scheduler_address: str | None = None
    scheduler_file: Path | None = None
    cluster: str = "local"
    workers: int | None = None
    device: str = "auto"
    only: tuple[str, ...] = ()
    force: bool = False
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT
    threads_per_worker: int = 1
    worker_timeout: float | None = None  # seconds to wait for a first worker; None: $WEFT_WORKER_TIMEOUT or 300
    cli_settings: dict[str, Any] = field(default_factory=dict)
    log_json: Path | None = None  # the run's events as JSON lines too (pipeline.run.events)


def plan_run(options: RunOptions) -> Plan:
    """The plan of a run: the manifest's jobs compared with what the store already holds."""
    return make_plan(
        options.manifest,
        store=options.store,
        profile=options.profile,
        config=options.config,
        only=options.only,
        force=options.force,
        allow_outside_root=options.allow_outside_root,
        cli_settings=options.cli_settings or None,
        stored=store.stored_jobs(options.store),
        stored_models=stored_models(options.store),
        worker_memory=planned_worker_memory(cluster_options(options)),
    )


def cluster_options(options: RunOptions) -> ClusterOptions:
    """The cluster half of a run's options."""
    return ClusterOptions(
        scheduler_address=options.scheduler_address,
        scheduler_file=options.scheduler_file,
        kind=options.cluster,
        workers=options.workers,
        device=options.device,
        threads_per_worker=options.threads_per_worker,
        worker_timeout=options.worker_timeout or worker_timeout(),
    )


def run_manifest(options: RunOptions, console: Console) -> int:
    """Run every job that is not done; 0 when all jobs end done, 1 when any failed."""
    return execute(options, console).exit_code


def execute(options: RunOptions, console: Console) -> RunResult:
    """Plan, lock, compute and record every job that is not done; see :func:`run_manifest`.

    Raises :class:`WeftError` for a manifest that cannot run at all (before the store is touched),
    a store that is locked or cannot be written; ``KeyboardInterrupt`` after a clean stop on
    Ctrl-C, ``SystemExit(143)`` after one on SIGTERM.
    """
    plan = plan_run(options)
    print_plan(plan, console)
    outcomes = {job.id: JobOutcome(job) for job in plan.jobs}
    for job_id, reason in plan.invalid.items():
        outcomes[job_id] = JobOutcome(None, status=JobStatus.FAILED, error=reason)
    result = RunResult(outcomes)
    for job in plan.jobs:
        if job.state is PlanState.DONE:
            outcomes[job.id].status = JobStatus.SKIPPED
        elif job.state is PlanState.FAILED:
            outcomes[job.id].status, outcomes[job.id].error = JobStatus.FAILED, job.error
    with run_events(console, options.log_json) as events, sigterm_stops_the_run(), \
            RunLock(options.store, command=_command_line(options)) as lock, \
            journal.recorded(lock, events, plan, result):
        if lock.took_over:
            console.print(
                f"[yellow]note[/]: the previous run (pid {lock.took_over.get('pid')}, started "
                f"{lock.took_over.get('started')}) ended without releasing the store; resuming from its finished tiles",
                highlight=False,
            )
        root = store.open_store(options.store, "a")
        try:
            _record_invalid(root, plan, outcomes)
            journal.announce_settled(events, result)
            if plan.to_run:
                cluster = cluster_options(options)
                with connect(cluster) as (client, info):
                    console.print(f"cluster: {info.description}; dashboard: {info.dashboard}", highlight=False)
                    if _owns_workers(cluster):
                        client.register_plugin(IgnoreInterrupts())
                    if not cluster.external:  # workers this run starts, and so closes
                        client.register_plugin(QuietClosing())
                    _follow(client, info, plan, root, result, console, events)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (see sigterm_stops_the_run); the cluster is closed
            _interrupted(root, outcomes, options, console, terminated=isinstance(stop, Terminated))
            if isinstance(stop, Terminated):
                raise SystemExit(EXIT_TERMINATED) from None
            raise
        except OSError as error:  # written on the client: job folders, attributes, pyramids
            fault = store_fault(options.store, error)
            if fault is None:
                raise
            _stopped(outcomes, console)
            raise fault from None
        except StoreError:  # e.g. raised by _follow when a worker could not write
            _stopped(outcomes, console)
            raise
        print_summary(outcomes, console)  # before run_finished: a log ends with how the run ended
    return result


def _command_line(options: RunOptions) -> str:
    """The command that started this run (for the lock, and to say how to resume)."""
    argv = sys.argv
    if argv and Path(argv[0]).name in {"weft", "__main__.py"} and "run" in argv[1:]:
        return shlex.join(["weft", *argv[1:]])
    return shlex.join(["weft", "run", str(options.manifest), "--store", str(options.store)])


def _owns_workers(cluster: ClusterOptions) -> bool:
    """True when this run starts its own LocalCluster (its workers are its children)."""
    return cluster.kind == "local" and not cluster.external


def _record_invalid(root: Any, plan: Plan, outcomes: dict[str, JobOutcome]) -> None:
    """Record in the store every job that failed before any work (its manifest entry or files are broken)."""
    for job_id, outcome in outcomes.items():
        if outcome.status is not JobStatus.FAILED:
            continue
        if not is_valid_job_id(job_id):  # it cannot name a folder: the summary is all there is
            outcome.error = f"{outcome.error}\n(not recorded in the store: the id cannot be a folder name)"
            continue
        store.record_failure(root, job_id, outcome.error or "failed", manifest_source=str(plan.manifest.path))


def _stopped(outcomes: dict[str, JobOutcome], console: Console) -> None:
    """Summary of a run stopped by a store error (printed after it): what finished, what was left."""
    for outcome in outcomes.values():
        if outcome.status in {JobStatus.RUNNING, JobStatus.PENDING}:
            outcome.status = JobStatus.STOPPED
            outcome.error = "not finished: the run stopped on the store error below"
    print_summary(outcomes, console)


def _interrupted(
    root: Any, outcomes: dict[str, JobOutcome], options: RunOptions, console: Console, *, terminated: bool
) -> None:
    """After Ctrl-C/SIGTERM: jobs in progress go back to pending (best effort), then how to resume."""
    for job_id, outcome in outcomes.items():
        if outcome.status is not JobStatus.RUNNING:
            continue
        outcome.status = JobStatus.INTERRUPTED
        try:
            store.set_job_status(root, job_id, JobStatus.PENDING)
        except (OSError, WeftError):
            pass  # the store says "running" then; the next run resumes the job all the same
    print_summary(outcomes, console)
    what = "stopped by SIGTERM" if terminated else "interrupted"
    console.print(
        f"[yellow]{what}[/]: finished tiles are kept (a tile is marked done only once fully written) and the "
        f"store is unlocked. To resume, run the same command again:\n  {escape(_command_line(options))}",
        highlight=False,
    )


def _start_jobs(
    graph: Graph, info: ClusterInfo, plan: Plan, root: Any, outcomes: dict[str, JobOutcome], events: RunEvents
) -> None:
    """Prepare each job's folder in the store, mark it running and add its tasks to the graph."""
    for job in plan.to_run:
        outcome = outcomes[job.id]
        try:
            thumbs = input_thumbnails(job, plan.manifest.limits.max_input_pixels)
        except WeftError as error:
            outcome.status, outcome.error = JobStatus.FAILED, str(error)
            store.record_failure(root, job.id, str(error))
            events.emit("job_failed", job=job.id, error=outcome.error)
            continue
        layouts = [level.layout() for level in job.levels]
        store.prepare_job(
            root, job.id, job_key=job.key, provenance=job_provenance(job, info, plan), levels=layouts,
            thumbnails=thumbs, force=job.state is PlanState.FORCED,
        )  # fmt: skip
        started = datetime.now(UTC).isoformat(timespec="seconds")
        store.set_job_status(root, job.id, JobStatus.RUNNING, timings={"started": started})
        outcome.status = JobStatus.RUNNING
        events.emit(
            "job_started", job=job.id, size=f"{job.spec.width}x{job.spec.height}", levels=len(job.levels),
            tiles=job.tiles_total, state=str(job.state),
        )  # fmt: skip
        graph.add_job(job)


def _finish(plan: Plan, root: Any, outcome: JobOutcome, events: RunEvents) -> None:
    """Finish a job whose every task is done (:func:`finish_job`) and say so."""
    finish_job(plan, root, outcome)
    assert outcome.job is not None
    events.emit(
        "job_done", job=outcome.job.id, seconds=round(outcome.seconds, 1), repeat_seam=outcome.seams.get("repeat"),
        tile_seam_max=outcome.seams.get("internal_max"),
    )  # fmt: skip


def _follow(
    client: Any, info: ClusterInfo, plan: Plan, root: Any, result: RunResult, console: Console, events: RunEvents
) -> None:
    """Submit every job's graph and follow it: progress, failures (one job at a time), finishing."""
    from dask.distributed import as_completed

    outcomes = result.outcomes
    wall_started = time.perf_counter()
    seen = SeenWorkers(client)
    seen.look(now=True)
    graph = Graph(client, info, plan)
    client.subscribe_topic(TRAINING_TOPIC, lambda event: events.training(**event[1]))
    _start_jobs(graph, info, plan, root, outcomes, events)
    per_job: dict[str, list[Any]] = defaultdict(list)
    for future in graph.futures:
        per_job[graph.job_of[future.key]].append(future)
    remaining = {job_id: len(futures) for job_id, futures in per_job.items()}
    per_level = Counter((graph.job_of[future.key], graph.level_of[future.key]) for future in graph.futures)
    for job_id, outcome in outcomes.items():
        if outcome.status is JobStatus.RUNNING and not remaining.get(job_id):
            _finish(plan, root, outcome, events)  # everything was already done: just record it
    tiles = sum(1 for future in graph.futures if graph.computes_tile(future.key))
    with events.tracking(tiles_total=tiles, jobs_total=len(per_job)):
        for future in as_completed(graph.futures):
            job_id = graph.job_of[future.key]
            outcome = outcomes[job_id]
            seen.look()
            if future.status == "error":
                fault = store_fault(plan.store, future.exception())
                if fault is not None:  # every other task would fail the same way: stop now
                    client.cancel(graph.futures + list(graph.targets.values()))
                    raise fault
                if outcome.status is not JobStatus.FAILED:
                    outcome.status, outcome.error = JobStatus.FAILED, _error_text(future)
                    store.set_job_status(root, job_id, JobStatus.FAILED, error=outcome.error)
                    events.emit("job_failed", job=job_id, error=outcome.error)
                    for other in per_job[job_id]:
                        if not other.done():
                            other.cancel()
            elif future.status == "finished":
                outcome.compute_seconds += float(future.result().get("seconds", 0.0))
                outcome.tasks += 1
            remaining[job_id] -= 1
            level = graph.level_of[future.key]
            per_level[job_id, level] -= 1
            if per_level[job_id, level] == 0 and outcome.status is JobStatus.RUNNING and outcome.job is not None:
                done = outcome.job.levels[level]
                size = f"{done.width}x{done.height}"
                events.emit("level_done", job=job_id, level=level, size=size, tiles=done.chunks)
            events.advance(tiles=int(graph.computes_tile(future.key)), jobs=int(remaining[job_id] == 0))
            if remaining[job_id] == 0 and outcome.status is JobStatus.RUNNING:
                _finish(plan, root, outcome, events)
    result.wall_seconds = time.perf_counter() - wall_started
    result.compute_seconds = sum(o.compute_seconds for o in outcomes.values())
    client.unsubscribe_topic(TRAINING_TOPIC)
    result.tasks = len(graph.futures) + len(graph.targets) + len(graph.trainings)
    keys = [*graph.job_of, *graph.targets, *(f"train-{ident}" for ident in graph.trainings)]
    result.task_counts = dict(Counter(str(key).partition("-")[0] for key in keys))
    result.worker_peak_rss = client.run(peak_rss)
    result.worker_stats = client.run(worker_stats)
    seen.look(now=True)
    seen.add(result.worker_peak_rss)
    result.workers = len(seen) or info.workers  # those that were there, not those asked for
    if graph.futures:
        peak = max(result.worker_peak_rss.values(), default=0) / 2**20
        console.print(
            f"wall {result.wall_seconds:.1f} s for {result.compute_seconds:.1f} s of task compute on "
            f"{result.workers} worker(s) (ideal {result.compute_seconds / max(1, result.workers):.1f} s); "
            f"worker peak memory {peak:.0f} MiB",
            highlight=False,
        )


def _error_text(future: Any) -> str:
    """A failed task's error: a WeftError's own message, anything else as its one-line exception."""
    error = future.exception()
    if isinstance(error, WeftError):
        return str(error)
    return "".join(traceback.format_exception_only(type(error), error)).strip()

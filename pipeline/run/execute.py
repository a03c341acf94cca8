"""``weft run``: plan, lock the store, build the Dask graph, follow it, summarise.

Graph per job: style targets (shared across jobs by style and scale) -> coarse pass ->
per refinement level, one task per tile (depending only on the previous level's chunks its
halo reads) -> one stitch task per chunk (depending on the tiles that cover it). Finished
tiles and chunks are not submitted again; a failing job is reported and the others go on.

Faults that are not one job's (see docs/operations.md): a store that cannot be written (disk
full, read-only) stops the whole run with one clear error, since every job would fail the same
way; Ctrl-C, or SIGTERM from a batch scheduler, stops it cleanly (cluster closed, lock released,
interrupted jobs marked pending) and says how to resume. Nothing half-written is ever marked done.
"""

from __future__ import annotations

import errno
import platform
import shlex
import signal
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pipeline import ENGINE_VERSION, __version__

from pipeline.conventions import is_valid_job_id
from pipeline.manifest.specs import ALLOW_OUTSIDE_ROOT
from pipeline.run import store
from pipeline.run.cluster import ClusterInfo, ClusterOptions, connect
from pipeline.errors import StoreError, WeftError
from pipeline.run.plan import JobPlan, LevelPlan, Plan, make_plan, print_plan
from pipeline.run.tasks import (
    JobContext,
    StyleSource,
    coarse_task,
    resample_task,
    source_rect,
    stitch_task,
    style_targets_task,
    targets_key,
    tile_task,
    worker_stats,
)

#: How often a failing task is retried (a lost worker does not count: Dask reschedules that).
RETRIES = 2
#: OS errors that mean the store cannot be written at all: they stop the run instead of failing jobs one by one.
STORE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
#: Exit status of a run stopped by SIGTERM (128 + 15, the shell's convention); Ctrl-C gives 130.
EXIT_TERMINATED = 143


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
    cli_settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobOutcome:
    """What happened to one job in this run (``job`` is None for a job the manifest could not build)."""

    job: JobPlan | None
    status: str = "pending"
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
        return 1 if any(o.status == "failed" for o in self.outcomes.values()) else 0


def run_manifest(options: RunOptions, console: Console) -> int:
    """Run every job that is not done; 0 when all jobs end done, 1 when any failed."""
    return execute(options, console).exit_code


def execute(options: RunOptions, console: Console) -> RunResult:
    """Plan, lock, compute and record every job that is not done; see :func:`run_manifest`.

    Raises :class:`WeftError` for a manifest that cannot run at all (before the store is touched),
    a store that is locked or cannot be written; ``KeyboardInterrupt`` after a clean stop on
    Ctrl-C, ``SystemExit(143)`` after one on SIGTERM.
    """
    plan = make_plan(
        options.manifest,
        store=options.store,
        profile=options.profile,
        config=options.config,
        only=options.only,
        force=options.force,
        allow_outside_root=options.allow_outside_root,
        cli_settings=options.cli_settings or None,
    )
    print_plan(plan, console)
    outcomes = {job.id: JobOutcome(job) for job in plan.jobs}
    for job_id, reason in plan.invalid.items():
        outcomes[job_id] = JobOutcome(None, status="failed", error=reason)
    result = RunResult(outcomes)
    for job in plan.jobs:
        if job.state == "done":
            outcomes[job.id].status = "skipped"
        elif job.state == "failed":
            outcomes[job.id].status, outcomes[job.id].error = "failed", job.error
    with _sigterm_stops_the_run(), store.RunLock(options.store, command=_command_line(options)) as lock:
        if lock.took_over:
            console.print(
                f"[yellow]note[/]: the previous run (pid {lock.took_over.get('pid')}, started "
                f"{lock.took_over.get('started')}) ended without releasing the store; resuming from its finished tiles",
                highlight=False,
            )
        root = store.open_store(options.store, "a")
        try:
            _record_invalid(root, plan, outcomes)
            if plan.to_run:
                cluster = ClusterOptions(
                    scheduler_address=options.scheduler_address,
                    scheduler_file=options.scheduler_file,
                    kind=options.cluster,
                    workers=options.workers,
                    device=options.device,
                    threads_per_worker=options.threads_per_worker,
                )
                with connect(cluster) as (client, info):
                    console.print(f"cluster: {info.description}; dashboard: {info.dashboard}", highlight=False)
                    if _owns_workers(options):
                        client.register_plugin(IgnoreInterrupts())
                    _execute(client, info, plan, root, result, console)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (see _sigterm_stops_the_run); the cluster is closed
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
        except StoreError:  # e.g. raised by _execute when a worker could not write
            _stopped(outcomes, console)
            raise
    _print_summary(outcomes, console)
    return result


def _command_line(options: RunOptions) -> str:
    """The command that started this run (for the lock, and to say how to resume)."""
    argv = sys.argv
    if argv and Path(argv[0]).name in {"weft", "__main__.py"} and "run" in argv[1:]:
        return shlex.join(["weft", *argv[1:]])
    return shlex.join(["weft", "run", str(options.manifest), "--store", str(options.store)])


def _owns_workers(options: RunOptions) -> bool:
    """True when this run starts its own LocalCluster (its workers are its children)."""
    return options.cluster == "local" and not options.scheduler_address and not options.scheduler_file


def _record_invalid(root: Any, plan: Plan, outcomes: dict[str, JobOutcome]) -> None:
    """Record in the store every job that failed before any work (its manifest entry or files are broken)."""
    for job_id, outcome in outcomes.items():
        if outcome.status != "failed":
            continue
        if not is_valid_job_id(job_id):  # it cannot name a folder: the summary is all there is
            outcome.error = f"{outcome.error}\n(not recorded in the store: the id cannot be a folder name)"
            continue
        store.record_failure(root, job_id, outcome.error or "failed", manifest_source=str(plan.manifest.path))


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit, ``scancel``, ``kill``): stop like Ctrl-C, exit 143."""


@contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """While the run holds the store, SIGTERM unwinds it like Ctrl-C (lock released, cluster closed).

    Without this, a scheduler's SIGTERM would kill the run on the spot and leave its lock behind;
    on a shared file system the next night's run, on another node, would then be refused.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class IgnoreInterrupts(WorkerPlugin):
    """Worker plugin for the workers a run starts itself: Ctrl-C is the client's to handle.

    A Ctrl-C in a terminal reaches the whole process group; the workers would die with a
    traceback each while the client is closing them. They ignore SIGINT instead, and the
    client closes the cluster cleanly. (Never registered on someone else's workers.)
    """

    name = "weft-ignore-interrupts"

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def store_fault(path: Path | str, error: BaseException | None) -> StoreError | None:
    """A clear StoreError when ``error`` means the store cannot be written at all (disk full, read-only)."""
    if not isinstance(error, OSError) or error.errno not in STORE_FAULTS:
        return None
    reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
    return StoreError(
        f"cannot write to store {path}: {reason}. The run stopped; every tile marked done is complete. "
        "Free space (or make the store writable) and run the same command again to resume."
    )


def _stopped(outcomes: dict[str, JobOutcome], console: Console) -> None:
    """Summary of a run stopped by a store error (printed after it): what finished, what was left."""
    for outcome in outcomes.values():
        if outcome.status in {"running", "pending"}:
            outcome.status, outcome.error = "stopped", "not finished: the run stopped on the store error below"
    _print_summary(outcomes, console)


def _interrupted(
    root: Any, outcomes: dict[str, JobOutcome], options: RunOptions, console: Console, *, terminated: bool
) -> None:
    """After Ctrl-C/SIGTERM: jobs in progress go back to pending (best effort), then how to resume."""
    for job_id, outcome in outcomes.items():
        if outcome.status != "running":
            continue
        outcome.status = "interrupted"
        try:
            store.set_job_status(root, job_id, "pending")
        except (OSError, WeftError):
            pass  # the store says "running" then; the next run resumes the job all the same
    _print_summary(outcomes, console)
    what = "stopped by SIGTERM" if terminated else "interrupted"
    console.print(
        f"[yellow]{what}[/]: finished tiles are kept (a tile is marked done only once fully written) and the "
        f"store is unlocked. To resume, run the same command again:\n  {escape(_command_line(options))}",
        highlight=False,
    )


def _provenance(job: JobPlan, info: ClusterInfo, plan: Plan) -> dict[str, Any]:
    import dask
    import torch
    import zarr

    spec = job.spec
    assert job.design is not None
    return {
        "manifest_entry": spec.entry,
        "manifest_source": spec.source,
        "settings": spec.settings.model_dump(mode="json"),
        "settings_digest": spec.settings.digest(),
        "repeat": spec.repeat.value,
        "width": spec.width,
        "height": spec.height,
        "dpi": spec.dpi,
        "seed": spec.seed,
        "inputs": {
            "design": {"path": job.design.path, "sha256": job.design.sha256},
            "styles": [
                {
                    "id": use.style.id,
                    "path": source.path,
                    "sha256": source.sha256,
                    "weight": use.weight,
                    "license": use.style.license,
                    "attribution": use.style.attribution,
                    "notes": use.style.notes,
                }
                for use, source in zip(spec.styles, job.styles)
            ],
        },
        "weights": {"source": spec.settings.weights, "sha256": job.weights_sha256},
        "engine_version": ENGINE_VERSION,
        "versions": {
            "weft": __version__,
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "dask": dask.__version__,
            "python": platform.python_version(),
        },
        "device": info.device,
        "levels_plan": [
            {"index": lv.index, "size": [lv.width, lv.height], "tiled": lv.tiled, "iterations": lv.iterations}
            for lv in job.levels
        ],
    }


def _context(job: JobPlan, plan: Plan, info: ClusterInfo) -> JobContext:
    assert job.design is not None
    return JobContext(
        store_path=str(plan.store),
        job_id=job.id,
        repeat=job.spec.repeat,
        width=job.spec.width,
        height=job.spec.height,
        seed=job.spec.seed,
        settings=job.spec.settings,
        design_path=job.design.path,
        design_sha256=job.design.sha256,
        style_weights=tuple(use.weight for use in job.spec.styles),
        max_input_pixels=plan.manifest.limits.max_input_pixels,
        device=info.device,
        threads=info.threads,
    )


def _thumbnails(job: JobPlan, max_pixels: int) -> dict[str, np.ndarray]:
    from pipeline.manifest.images import load_rgb

    images = {"design": load_rgb(Path(job.spec.design), max_pixels=max_pixels, job=job.id)}
    for index, use in enumerate(job.spec.styles):
        images[f"style-{index}"] = load_rgb(use.style.path, max_pixels=max_pixels, job=job.id)
    return images


class _Graph:
    """Builds and tracks the futures of one run."""

    def __init__(self, client: Any, info: ClusterInfo, plan: Plan) -> None:
        self.client = client
        self.info = info
        self.plan = plan
        self.targets: dict[str, Any] = {}
        self.job_of: dict[Any, str] = {}
        self.futures: list[Any] = []
        self.resources = {"GPU": 1} if info.gpu else None

    def submit(self, job_id: str, fn: Any, *args: Any, key: str) -> Any:
        future = self.client.submit(fn, *args, key=key, retries=RETRIES, resources=self.resources, pure=False)
        self.job_of[future.key] = job_id
        self.futures.append(future)
        return future

    def style_targets(self, job: JobPlan, hw: tuple[int, int]) -> list[Any]:
        """Futures of each style's targets at an output size, shared with every other job."""
        futures = []
        limit = self.plan.manifest.limits.max_input_pixels
        for source in job.styles:
            style = StyleSource(source.path, source.sha256, limit)
            key = targets_key(style, hw, job.spec.settings)
            if key not in self.targets:
                self.targets[key] = self.client.submit(
                    style_targets_task, style, hw, job.spec.settings, self.info.device, self.info.threads,
                    key=key, retries=RETRIES, resources=self.resources,
                )  # fmt: skip
            futures.append(self.targets[key])
        return futures

    def add_job(self, job: JobPlan) -> None:
        ctx = _context(job, self.plan, self.info)
        path = str(self.plan.store)
        coarse = job.levels[0]
        previous_chunks: dict[tuple[int, int], Any] = {}
        if not store.done_map(path, job.id, coarse.index).all():
            targets = {hw: self.style_targets(job, hw) for hw in job.coarse_sizes}
            future = self.submit(job.id, coarse_task, ctx, coarse, targets, key=f"coarse-{job.id}")
            previous_chunks = {rc: future for rc in np.ndindex(*_chunk_shape(coarse))}
        previous = coarse
        for level in job.levels[1:]:
            previous_chunks = self._add_level(job, ctx, level, previous, previous_chunks)
            previous = level

    def _add_level(
        self, job: JobPlan, ctx: JobContext, level: LevelPlan, previous: LevelPlan, previous_chunks: dict
    ) -> dict[tuple[int, int], Any]:
        path = str(self.plan.store)
        grid = level.tile_grid(job.spec.repeat)
        previous_grid = previous.tile_grid(job.spec.repeat)
        chunks_done = store.done_map(path, job.id, level.index)
        chunk_futures: dict[tuple[int, int], Any] = {}
        if not level.tiled:
            for tile in grid.tiles():
                if chunks_done[tile.row, tile.col]:
                    continue
                needs = self._needs(level, previous, previous_grid, previous_chunks, tile.rect)
                chunk_futures[(tile.row, tile.col)] = self.submit(
                    job.id, resample_task, ctx, level, previous, tile.row, tile.col, *needs,
                    key=f"resample-{job.id}-{level.index}-{tile.row}-{tile.col}",
                )  # fmt: skip
            return chunk_futures
        tiles_done = store.tiles_done_map(path, job.id, level.index)
        tile_futures: dict[tuple[int, int], Any] = {}
        targets: list[Any] | None = None
        for tile in grid.tiles():
            if tiles_done[tile.row, tile.col]:
                continue
            if targets is None:
                targets = self.style_targets(job, (level.height, level.width))
            needs = self._needs(level, previous, previous_grid, previous_chunks, tile.window(level.halo))
            tile_futures[(tile.row, tile.col)] = self.submit(
                job.id, tile_task, ctx, level, previous, tile.row, tile.col, targets, *needs,
                key=f"tile-{job.id}-{level.index}-{tile.row}-{tile.col}",
            )  # fmt: skip
        for tile in grid.tiles():
            if chunks_done[tile.row, tile.col]:
                continue
            covering = {(t.row, t.col) for t, _, _ in grid.contributors(tuple(tile.rect), level.overlap)}
            needs = [tile_futures[rc] for rc in sorted(covering) if rc in tile_futures]
            chunk_futures[(tile.row, tile.col)] = self.submit(
                job.id, stitch_task, ctx, level, tile.row, tile.col, *needs,
                key=f"stitch-{job.id}-{level.index}-{tile.row}-{tile.col}",
            )  # fmt: skip
        return chunk_futures

    @staticmethod
    def _needs(level: LevelPlan, previous: LevelPlan, previous_grid: Any, previous_chunks: dict, window: Any) -> list:
        """Futures of the previous level's chunks that this window reads (across the wrap)."""
        if not previous_chunks:
            return []
        rect = source_rect(level, previous, window)
        wanted = {(t.row, t.col) for t, _, _ in previous_grid.contributors(tuple(rect), 0)}
        unique = {id(previous_chunks[rc]): previous_chunks[rc] for rc in sorted(wanted) if rc in previous_chunks}
        return list(unique.values())


def _chunk_shape(level: LevelPlan) -> tuple[int, int]:
    return -(-level.height // level.core), -(-level.width // level.core)


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (run on each worker)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _execute(client: Any, info: ClusterInfo, plan: Plan, root: Any, result: RunResult, console: Console) -> None:
    from dask.distributed import as_completed

    outcomes = result.outcomes
    wall_started = time.perf_counter()
    graph = _Graph(client, info, plan)
    for job in plan.to_run:
        outcome = outcomes[job.id]
        try:
            thumbs = _thumbnails(job, plan.manifest.limits.max_input_pixels)
        except WeftError as error:
            outcome.status, outcome.error = "failed", str(error)
            store.record_failure(root, job.id, str(error))
            continue
        layouts = [level.layout() for level in job.levels]
        store.prepare_job(
            root, job.id, job_key=job.key, provenance=_provenance(job, info, plan), levels=layouts,
            thumbnails=thumbs, force=job.state == "forced",
        )  # fmt: skip
        started = datetime.now(UTC).isoformat(timespec="seconds")
        store.set_job_status(root, job.id, "running", timings={"started": started})
        outcome.status = "running"
        graph.add_job(job)
    per_job: dict[str, list[Any]] = defaultdict(list)
    for future in graph.futures:
        per_job[graph.job_of[future.key]].append(future)
    remaining = {job_id: len(futures) for job_id, futures in per_job.items()}
    for job_id, outcome in outcomes.items():
        if outcome.status == "running" and not remaining.get(job_id):
            _finish_job(plan, root, outcome)  # everything was already done: just record it
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        tasks_bar = progress.add_task("tiles", total=len(graph.futures))
        jobs_bar = progress.add_task("jobs", total=len(per_job))
        for future in as_completed(graph.futures):
            job_id = graph.job_of[future.key]
            outcome = outcomes[job_id]
            progress.advance(tasks_bar)
            if future.status == "error":
                fault = store_fault(plan.store, future.exception())
                if fault is not None:  # every other task would fail the same way: stop now
                    client.cancel(graph.futures + list(graph.targets.values()))
                    raise fault
                if outcome.status != "failed":
                    outcome.status, outcome.error = "failed", _error_text(future)
                    store.set_job_status(root, job_id, "failed", error=outcome.error)
                    for other in per_job[job_id]:
                        if not other.done():
                            other.cancel()
            elif future.status == "finished":
                outcome.compute_seconds += float(future.result().get("seconds", 0.0))
                outcome.tasks += 1
            remaining[job_id] -= 1
            if remaining[job_id] == 0:
                progress.advance(jobs_bar)
                if outcome.status == "running":
                    _finish_job(plan, root, outcome)
    result.wall_seconds = time.perf_counter() - wall_started
    result.compute_seconds = sum(o.compute_seconds for o in outcomes.values())
    result.workers = info.workers
    result.tasks = len(graph.futures) + len(graph.targets)
    result.task_counts = dict(Counter(str(key).partition("-")[0] for key in [*graph.job_of, *graph.targets]))
    result.worker_peak_rss = client.run(_peak_rss)
    result.worker_stats = client.run(worker_stats)
    if graph.futures:
        peak = max(result.worker_peak_rss.values(), default=0) / 2**20
        console.print(
            f"wall {result.wall_seconds:.1f} s for {result.compute_seconds:.1f} s of task compute on "
            f"{info.workers} worker(s) (ideal {result.compute_seconds / max(1, info.workers):.1f} s); "
            f"worker peak memory {peak:.0f} MiB",
            highlight=False,
        )


def _error_text(future: Any) -> str:
    error = future.exception()
    if isinstance(error, WeftError):
        return str(error)
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def _finish_job(plan: Plan, root: Any, outcome: JobOutcome) -> None:
    """Seam figures, pyramid, status done, timings: the job is finished and exportable."""
    from pipeline.run.pyramid import write_pyramid
    from pipeline.repeat.seams import boundary_seam_ratio, repeat_seam_ratio, tile_boundary_lines

    job = outcome.job
    assert job is not None
    image = store.level_array(str(plan.store), job.id)[...]
    final = job.levels[-1]
    seams = {"repeat": round(float(repeat_seam_ratio(image, job.spec.repeat)), 4)}
    if final.tiled and final.chunks > 1:
        lines = tile_boundary_lines(final.tile_grid(job.spec.repeat))
        ratios = boundary_seam_ratio(image, lines, repeat=job.spec.repeat)
        seams["internal_max"] = round(float(max(ratios.values())), 4) if ratios else 1.0
    write_pyramid(str(plan.store), job.id)
    outcome.seconds = time.time() - outcome.started
    outcome.seams = seams
    outcome.status = "done"
    info = store.job_info(root, job.id)
    timings = dict(info.get("timings") or {})
    timings.update(
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(outcome.seconds, 2),
        compute_seconds=round(outcome.compute_seconds, 2),
    )
    store.set_job_status(root, job.id, "done", timings=timings, seams=seams)


def _print_summary(outcomes: dict[str, JobOutcome], console: Console) -> None:
    table = Table(title="summary", title_justify="left")
    for column in ("job", "status", "size px", "seconds", "repeat seam", "tile seam max", "error"):
        table.add_column(column)
    colours = {"done": "green", "skipped": "green", "failed": "red", "stopped": "red"}
    for job_id, outcome in outcomes.items():
        colour = colours.get(outcome.status, "yellow")
        table.add_row(
            job_id,
            f"[{colour}]{outcome.status}[/]",
            f"{outcome.job.spec.width}x{outcome.job.spec.height}" if outcome.job else "",
            f"{outcome.seconds:.1f}" if outcome.status == "done" else "",
            f"{outcome.seams['repeat']:.3f}" if "repeat" in outcome.seams else "",
            f"{outcome.seams['internal_max']:.3f}" if "internal_max" in outcome.seams else "",
            escape((outcome.error or "")[:300]),
        )
    console.print(table)

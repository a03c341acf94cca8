"""`weft run` end to end: a real LocalCluster of worker processes, a real zarr store on disk.

Every run here uses the real VGG-19 at tiny sizes (a 64 px coarse pass refined in four
64 px tiles up to 128 px), so what is checked is the real graph: skipping, recomputing,
resuming after a kill, independence from the worker count, and failing one job alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pytest
import zarr
from pipeline_helpers import (
    JOBS,
    _start_weft,
    _tiles_done,
    _wait_for,
    chunk_files,
    logging_tiles,
    pixels,
    run,
    tile_logs,
    wait_for,
    write_manifest,
)

from pipeline.run.outcome import RunResult
from pipeline.run.store import tile_done
from pipeline.repeat.seams import repeat_seam_ratio, repeat_seam_relative

pytestmark = pytest.mark.slow

# `baseline` (an uninterrupted run of JOBS, shared by the whole session) is in conftest.py


def test_run_writes_seamless_tiles_with_full_provenance(baseline: tuple[Path, Path, RunResult]) -> None:
    _, store, result = baseline
    assert result.exit_code == 0
    assert {o.status for o in result.outcomes.values()} == {"done"}
    root = zarr.open_group(str(store), mode="r")  # plain zarr, no weft
    for job_id, (_, style, repeat) in JOBS.items():
        job = root["jobs"][job_id]
        image = job["image"][...]
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        # the recorded figure is the image's own; seam quality itself is asserted at real
        # iteration counts in test_engine.py and measured on the demo in docs/benchmarks.md
        assert attrs_seam(job) == pytest.approx(repeat_seam_relative(image, repeat)["overall"].ratio, abs=1e-3)
        assert job.attrs["seams"]["repeat_local"] == pytest.approx(repeat_seam_ratio(image, repeat), abs=1e-3)
        attrs = job.attrs
        assert attrs["status"] == "done" and len(attrs["job_key"]) == 64
        assert attrs["repeat"] == repeat and attrs["seed"] == 3
        assert len(attrs["inputs"]["design"]["sha256"]) == 64
        assert attrs["inputs"]["styles"][0]["id"] == style
        assert attrs["inputs"]["styles"][0]["license"] == "Public domain"
        assert attrs["inputs"]["styles"][0]["attribution"]
        assert attrs["weights"]["sha256"].startswith("c34748d2")
        assert attrs["settings"]["tile_size"] == 64 and attrs["settings_digest"]
        assert set(attrs["versions"]) >= {"weft", "torch", "zarr", "dask", "python"}
        assert attrs["timings"]["seconds"] > 0
        assert attrs["seams"]["internal_max"] > 0
        assert "ome" in job["pyramid"].attrs
        assert job["done"][...].all()


def attrs_seam(job: zarr.Group) -> float:
    return float(job.attrs["seams"]["repeat"])


def computed(result: RunResult, kind: str) -> int:
    """Tasks of ``kind`` the run's workers computed (not those that found their work done)."""
    return sum(stats["computed"].get(kind, 0) for stats in result.worker_stats.values())


def test_second_run_does_no_work(baseline: tuple[Path, Path, RunResult]) -> None:
    manifest, store, _ = baseline
    before = pixels(store)
    files = chunk_files(store, "tartan")
    again = run(manifest, store)
    assert again.exit_code == 0 and again.tasks == 0
    assert {o.status for o in again.outcomes.values()} == {"skipped"}
    assert pixels(store) == before and chunk_files(store, "tartan") == files


def test_one_worker_and_two_workers_give_identical_bytes(
    baseline: tuple[Path, Path, RunResult], tmp_path: Path
) -> None:
    manifest, store, _ = baseline
    single = tmp_path / "one.zarr"
    assert run(manifest, single, workers=1).exit_code == 0
    assert pixels(single) == pixels(store)


def test_changed_setting_recomputes_only_that_job(baseline: tuple[Path, Path, RunResult], tmp_path: Path) -> None:
    _, store, _ = baseline
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    manifest = write_manifest(tmp_path, JOBS, extra={"strawberry": "refine_iterations = 5"})
    untouched = {job_id: chunk_files(copy, job_id) for job_id in ("tartan", "snakeshead")}
    result = run(manifest, copy)
    assert result.exit_code == 0
    states = {job_id: o.job.state for job_id, o in result.outcomes.items() if o.job}
    assert states == {"tartan": "done", "strawberry": "changed", "snakeshead": "done"}
    for job_id, files in untouched.items():
        assert chunk_files(copy, job_id) == files
    assert pixels(copy)["strawberry/image"] != pixels(store)["strawberry/image"]
    # only strawberry's tasks were submitted and computed: its coarse pass and its 4 tiles
    assert (result.task_counts["coarse"], result.task_counts["tile"]) == (1, 4)
    assert computed(result, "coarse") == 1 and computed(result, "tile") == 4


def test_run_killed_midway_resumes_to_identical_bytes(baseline: tuple[Path, Path, RunResult], tmp_path: Path) -> None:
    manifest, store, _ = baseline
    killed = tmp_path / "killed.zarr"
    process = _start_weft(manifest, killed)
    try:
        _wait_for(lambda: _tiles_done(killed) >= 1)
        os.killpg(process.pid, signal.SIGKILL)  # the run and its whole cluster, no clean-up
    finally:
        process.wait(timeout=60)
    finished = _tiles_done(killed)
    assert 1 <= finished < 3 * 4, "the run finished before it could be killed"
    resumed = run(manifest, killed)
    assert resumed.exit_code == 0
    assert resumed.tasks < 3 * 9 + 3
    # the finished tiles were neither submitted nor computed again; every other one was, once
    assert resumed.task_counts["tile"] == 3 * 4 - finished
    assert computed(resumed, "tile") == 3 * 4 - finished
    assert pixels(killed) == pixels(store)


def test_a_killed_worker_costs_only_its_tile(baseline: tuple[Path, Path, RunResult], tmp_path: Path) -> None:
    """SIGKILL a worker that has finished a tile and is computing another: only that one is done again.

    Dask recomputes every result the dead worker held (the client still wants them); the finished
    tiles among them find their done flag in the store and return at once. So each of the 12 tiles
    is computed exactly once in all, the one in flight by another worker.
    """
    manifest, store, _ = baseline
    target = tmp_path / "worker-killed.zarr"
    logs = tmp_path / "tile-logs"
    killed: dict[str, object] = {}
    finished = threading.Event()

    def busy_worker() -> int | None:
        for pid, log in tile_logs(logs).items():
            if log["computed"] and log["executing"]:
                return pid
        return None

    def kill_a_busy_worker() -> None:
        try:
            wait_for(lambda: finished.is_set() or busy_worker() is not None, timeout=600,
                     what="a worker with a tile done and one running")  # fmt: skip
            pid = busy_worker()
            if pid is None:
                return  # the run ended first: said below
            # LocalCluster's nannies live in this process; each worker is a spawned child of it
            workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
            assert len(workers) == 2 and pid in [p.pid for p in workers]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: _dead(pid), timeout=30, what="the killed worker to die")
            log = tile_logs(logs)[pid]  # its last word: what it had computed, what it was computing
            running = log["executing"]
            lost = running is not None and not tile_done(target, *_tile_of(running))
            killed.update(pid=pid, log=log, running=running, lost=lost)
        except BaseException as error:  # noqa: BLE001 - reported by the test's own thread below
            killed["error"] = error

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    with logging_tiles(logs):
        killer.start()
        try:
            result = run(manifest, target)  # in this process: the RunResult says what was submitted
        finally:
            finished.set()
    killer.join(timeout=60)
    if "error" in killed:
        raise killed["error"]
    assert "pid" in killed, "the run finished before a worker could be killed"
    assert result.exit_code == 0
    assert pixels(target) == pixels(store)

    tiles = [f"tile-{job_id}-1-{row}-{col}" for job_id in JOBS for row in range(2) for col in range(2)]
    assert result.task_counts["tile"] == len(tiles) == 12  # each submitted once; Dask did the rest
    victim: dict = killed["log"]  # type: ignore[assignment]
    assert victim["computed"], "the worker was killed holding a finished tile"
    by_victim = victim["computed"] + ([killed["running"]] if killed["running"] and not killed["lost"] else [])
    others = {pid: log for pid, log in tile_logs(logs).items() if pid != killed["pid"]}
    # the surviving worker and the one started in place of the dead one, as the run reports them
    assert sorted(len(log["computed"]) for log in others.values()) == sorted(
        stats["computed"].get("tile", 0) for stats in result.worker_stats.values()
    )
    by_others = [key for log in others.values() for key in log["computed"]]
    assert Counter(by_victim + by_others) == Counter(tiles), "a tile was computed twice (or not at all)"
    # what the kill cost: the tile in flight, once more elsewhere; no finished tile was redone
    redone = [key for key in by_others if key == killed["running"]] if killed["lost"] else []
    assert len(redone) == (1 if killed["lost"] else 0)


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _tile_of(key: str) -> tuple[str, int, int, int]:
    """(job id, level, row, col) of a tile task's key ``tile-<job>-<level>-<row>-<col>``."""
    _, job_id, level, row, col = key.rsplit("-", 4)
    return job_id, int(level), int(row), int(col)


def test_a_broken_input_fails_its_job_alone(baseline: tuple[Path, Path, RunResult], tmp_path: Path) -> None:
    _, store, _ = baseline
    manifest = write_manifest(
        tmp_path,
        {
            "tartan": JOBS["tartan"],
            "truncated": ("designs/truncated.jpg", "wave", "block"),
            "missing": ("designs/nowhere.png", "wave", "block"),
        },
    )
    good = (tmp_path / "designs" / "morris_snakeshead.jpg").read_bytes()
    (tmp_path / "designs" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    target = tmp_path / "mixed.zarr"
    result = run(manifest, target)
    assert result.exit_code == 1
    statuses = {job_id: o.status for job_id, o in result.outcomes.items()}
    assert statuses == {"tartan": "done", "truncated": "failed", "missing": "failed"}
    assert "truncated.jpg" in result.outcomes["truncated"].error
    assert "nowhere.png" in result.outcomes["missing"].error
    root = zarr.open_group(str(target), mode="r")
    assert root["jobs"]["truncated"].attrs["status"] == "failed"
    assert "truncated.jpg" in root["jobs"]["truncated"].attrs["error"]
    assert root["jobs"]["missing"].attrs["status"] == "failed"
    assert pixels(target)["tartan/image"] == pixels(store)["tartan/image"]


def test_force_recomputes_unchanged_jobs_to_the_same_bytes(
    baseline: tuple[Path, Path, RunResult], tmp_path: Path
) -> None:
    manifest, store, _ = baseline
    copy = tmp_path / "forced.zarr"
    shutil.copytree(store, copy)
    result = run(manifest, copy, force=True, only=("tartan",))
    assert result.exit_code == 0 and result.tasks > 0
    # the whole job again: its coarse pass, 4 tiles and 4 stitched chunks, each computed once
    assert {kind: result.task_counts[kind] for kind in ("coarse", "tile", "stitch")} == {"coarse": 1, "tile": 4, "stitch": 4}
    assert computed(result, "coarse") == 1 and computed(result, "tile") == 4
    assert [o.job.state for o in result.outcomes.values() if o.job] == ["forced"]
    assert pixels(copy) == pixels(store)

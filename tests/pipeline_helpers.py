"""Helpers for end-to-end ``weft run`` tests (tests/test_pipeline.py, tests/test_reliability.py).

A tiny settings profile (a 64 px coarse pass refined in four 64 px tiles up to 128 px), a
manifest over copies of the demo images, in-process and subprocess runs, and readers that
compare stores byte for byte. The session-wide ``baseline`` fixture (an uninterrupted run
of :data:`JOBS`) lives in ``conftest.py`` so both modules share one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from distributed.diagnostics.plugin import WorkerPlugin
from rich.console import Console

from pipeline.run.execute import RunOptions, execute

from pipeline.run.outcome import RunResult

ROOT = Path(__file__).resolve().parent.parent
WEFT = Path(sys.executable).with_name("weft")

PROFILE = """\
extends = "demo"
description = "tests: a 64 px coarse pass refined in 64 px tiles"

[settings]
coarse_size = 64
scales = 1
iterations = 8
refine_iterations = 4
tile_size = 64
halo = 16
overlap = 8
"""

JOBS = {
    "tartan": ("designs/royal_stewart_sett.png", "kiss", "block"),
    "strawberry": ("designs/morris_strawberry_thief.jpg", "wave", "half-drop"),
    "snakeshead": ("designs/morris_snakeshead.jpg", "wave", "brick"),
}


def write_manifest(folder: Path, jobs: dict[str, tuple[str, str, str]], extra: dict[str, str] | None = None) -> Path:
    """A manifest in ``folder`` over copies of the demo images, every output 128 x 128."""
    for sub in ("designs", "styles"):
        if not (folder / sub).exists():
            shutil.copytree(ROOT / "manifests" / sub, folder / sub)
    (folder / "tiny.toml").write_text(PROFILE)
    lines = [
        '[[styles]]\nid = "wave"\npath = "styles/hokusai_great_wave.jpg"\nlicense = "Public domain"\n'
        'attribution = "Katsushika Hokusai, The Great Wave"\n',
        '[[styles]]\nid = "kiss"\npath = "styles/klimt_the_kiss.jpg"\nlicense = "Public domain"\n'
        'attribution = "Gustav Klimt, The Kiss"\n',
    ]
    for job_id, (design, style, repeat) in jobs.items():
        more = (extra or {}).get(job_id, "")
        lines.append(
            f'[[jobs]]\nid = "{job_id}"\ndesign = "{design}"\nstyle = "{style}"\nrepeat = "{repeat}"\n'
            f"size = [128, 128]\nseed = 3\n{more}\n"
        )
    path = folder / "manifest.toml"
    path.write_text("\n".join(lines))
    return path


def run(
    manifest: Path, store: Path, workers: int = 2, *, config: Path | None = None, console: Console | None = None,
    **options: object,
) -> RunResult:  # fmt: skip
    """``weft run`` in this process (a real LocalCluster of worker processes), on the CPU."""
    return execute(
        RunOptions(
            manifest=manifest, store=store, config=config or manifest.parent / "tiny.toml", workers=workers,
            device="cpu", **options,
        ),  # type: ignore[arg-type]
        console or Console(file=open(os.devnull, "w"), width=200),  # noqa: SIM115 - closed with the process
    )


def pixels(store: Path) -> dict[str, bytes]:
    """Every image array of every job (final and per level), as bytes."""
    root = zarr.open_group(str(store), mode="r")
    found = {}
    for job_id in root["jobs"]:
        job = root["jobs"][job_id]
        if "image" in job:
            found[f"{job_id}/image"] = job["image"][...].tobytes()
        for level in job.get("levels", {}):
            if "image" in job["levels"][level]:  # the last level's image is the job's `image`
                found[f"{job_id}/levels/{level}"] = job["levels"][level]["image"][...].tobytes()
    return found


def chunk_files(store: Path, job_id: str) -> dict[str, tuple[int, bytes]]:
    """(mtime_ns, bytes) of each chunk file of a job's final image: unchanged means untouched."""
    folder = store / "jobs" / job_id / "image" / "c"
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``folder``: equal before and after means untouched."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def wait_for(condition: Callable[[], bool], timeout: float = 120.0, what: str = "the run") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


_wait_for = wait_for  # the name tests/test_pipeline.py used


def tiles_done(store: Path) -> int:
    """Refined tile windows written so far (level 1 of every job); 0 while the store is being created."""
    try:
        root = zarr.open_group(str(store), mode="r")
        return sum(
            int(np.count_nonzero(root["jobs"][j]["levels"]["1"]["tiles_done"][...]))
            for j in root["jobs"]
            if "levels" in root["jobs"][j] and "1" in root["jobs"][j]["levels"]
        )
    except Exception:  # noqa: BLE001 - the store is being created while we look
        return 0


_tiles_done = tiles_done


def start_weft(manifest: Path, store: Path, *extra: str, workers: int = 2) -> subprocess.Popen[bytes]:
    """``weft run`` as a real process in its own session (signals reach it and its children only)."""
    command = [str(WEFT), "run", str(manifest), "--store", str(store), "--config", str(manifest.parent / "tiny.toml"),
               "--workers", str(workers), "--device", "cpu", *extra]  # fmt: skip
    env = {**os.environ, "COLUMNS": "250"}  # rich: no wrapping inside the summary table
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)


_start_weft = start_weft


class TileLog(WorkerPlugin):
    """Worker plugin: each worker process keeps ``<folder>/<pid>.json`` up to date with the tile
    tasks it is executing and the ones it computed (``pipeline.run.tasks.COMPUTED`` went up; a tile
    already marked done in the store returns at once and is not counted).

    The file outlives the process, so a worker killed with SIGKILL still says what it had done.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def setup(self, worker: Any) -> None:
        from pipeline.run.tasks import COMPUTED

        self.path = Path(self.folder) / f"{os.getpid()}.json"
        self.seen = COMPUTED["tile"]
        self.record: dict[str, Any] = {"pid": os.getpid(), "executing": None, "computed": []}
        self._write()

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        from pipeline.run.tasks import COMPUTED

        if not str(key).startswith("tile-"):
            return
        if finish == "executing":
            self.record["executing"] = str(key)
        elif start == "executing":
            if COMPUTED["tile"] > self.seen:
                self.record["computed"].append(str(key))
                self.seen = COMPUTED["tile"]
            self.record["executing"] = None
        self._write()

    def _write(self) -> None:
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(self.record))
        os.replace(temp, self.path)


def tile_logs(folder: Path) -> dict[int, dict[str, Any]]:
    """What :class:`TileLog` wrote, by worker pid."""
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}


@contextlib.contextmanager
def logging_tiles(folder: Path) -> Iterator[None]:
    """While inside, every cluster a run connects to registers a :class:`TileLog` writing into ``folder``."""
    import pipeline.run.execute as execute_module

    folder.mkdir(parents=True, exist_ok=True)
    real = execute_module.connect

    @contextlib.contextmanager
    def connect(options: Any) -> Iterator[Any]:
        with real(options) as (client, info):
            client.register_plugin(TileLog(folder), name="tests-tile-log")
            yield client, info

    execute_module.connect = connect
    try:
        yield
    finally:
        execute_module.connect = real

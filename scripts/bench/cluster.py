"""What the pipeline and load sections share: a manifest on disk, a LocalCluster, worker memory."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.bench.machine import proc_status_bytes

CC0 = "Public domain (CC0)"


def write_manifest(directory: Path, jobs: list[dict], styles: list[dict], defaults: dict, profile: str) -> Path:
    """A manifest TOML in ``directory`` (paths relative to it)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, list)):
            return json.dumps(v)
        return str(v)

    lines = [f"profile = {json.dumps(profile)}", "", "[defaults]"]
    lines += [f"{k} = {value(v)}" for k, v in defaults.items()]
    for style in styles:
        lines += ["", "[[styles]]"] + [f"{k} = {value(v)}" for k, v in style.items()]
    for job in jobs:
        lines += ["", "[[jobs]]"] + [f"{k} = {value(v)}" for k, v in job.items()]
    path = directory / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def worker_memory() -> dict[str, int]:
    """(run on a worker) current RSS and this process's own peak RSS (VmHWM), in bytes."""
    return {"rss": proc_status_bytes("VmRSS"), "peak": proc_status_bytes("VmHWM")}


def warm_worker() -> int:
    """(run on a worker) import what every task imports; peak RSS afterwards (the baseline)."""
    import pipeline.engine.vgg  # noqa: F401
    import pipeline.engine.whole  # noqa: F401
    import pipeline.run.tasks  # noqa: F401

    return proc_status_bytes("VmHWM")


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[tuple[Any, Any, dict[str, int]]]:
    """(cluster, client, peak RSS per worker after ``warm_worker``): ``workers`` processes x 1 thread."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster, Client(cluster) as client:  # fmt: skip
        yield cluster, client, client.run(warm_worker)


def run_on(cluster: Any, manifest: Path, store: Path, console: Any, only: tuple[str, ...] = ()) -> Any:
    """``weft run`` of ``manifest`` into ``store`` on an existing CPU cluster; the RunResult."""
    from pipeline.run.execute import RunOptions, execute

    options = RunOptions(manifest=manifest, store=store, only=only, scheduler_address=cluster.scheduler_address,
                         threads_per_worker=1, device="cpu")  # fmt: skip
    return execute(options, console)

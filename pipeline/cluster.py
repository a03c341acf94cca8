"""A Dask client from CLI options: embedded LocalCluster, a running scheduler, or a batch system.

* default: an embedded ``LocalCluster`` of worker *processes*, one torch thread each, as many
  as cores (torch's own threading and Dask's would otherwise oversubscribe the cores);
* ``--scheduler-address`` / ``--scheduler-file``: a cluster someone else started (the sbatch
  scripts in ``scripts/`` start one and write the scheduler file);
* ``--cluster slurm|pbs``: dask-jobqueue with settings from ``configs/cluster/<kind>.toml``;
* ``--device cuda`` locally: dask-cuda's ``LocalCUDACluster``, one worker per GPU, each
  declaring the resource ``GPU=1`` that weft's tasks ask for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, WeftError
from pipeline.settings import config_dirs, read_toml


@dataclass(frozen=True)
class ClusterOptions:
    """How to get workers (the cluster half of ``weft run``'s options)."""

    scheduler_address: str | None = None
    scheduler_file: Path | None = None
    kind: str = "local"  # local | slurm | pbs
    workers: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    threads_per_worker: int = 1


@dataclass(frozen=True)
class ClusterInfo:
    """What the run needs to know about the cluster it got."""

    dashboard: str | None
    workers: int
    gpu: bool  # workers declare the GPU resource: tasks ask for it
    device: str  # the torch device tasks use
    threads: int  # torch threads per task
    description: str


def default_workers(threads_per_worker: int = 1) -> int:
    """As many single-threaded workers as this process may use cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // threads_per_worker)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cluster_config(kind: str) -> dict[str, Any]:
    """dask-jobqueue keyword arguments from ``configs/cluster/<kind>.toml`` (``[cluster]`` table)."""
    for directory in config_dirs():
        path = directory / "cluster" / f"{kind}.toml"
        if path.is_file():
            data = read_toml(path)
            table = data.get("cluster")
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: needs a [cluster] table of dask-jobqueue options")
            return table
    raise ConfigError(f"no configs/cluster/{kind}.toml found (looked in {', '.join(map(str, config_dirs()))})")


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[tuple[Any, ClusterInfo]]:
    """Yield (client, info); closes what it started, leaves external clusters running."""
    from dask.distributed import Client

    device = options.device
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cuda" and options.kind == "local" and not (options.scheduler_address or options.scheduler_file):
        if not cuda_available():
            raise WeftError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    threads = options.threads_per_worker
    if options.scheduler_address or options.scheduler_file:
        target = options.scheduler_address or str(options.scheduler_file)
        try:
            client = (
                Client(options.scheduler_address, timeout="30s")
                if options.scheduler_address
                else Client(scheduler_file=str(options.scheduler_file), timeout="30s")
            )
        except (OSError, TimeoutError) as error:
            raise WeftError(f"cannot reach the Dask scheduler at {target}: {error}") from None
        with client:
            yield client, _info(client, device, threads, f"external scheduler {target}")
        return
    if options.kind in {"slurm", "pbs"}:
        with _jobqueue_cluster(options.kind, options.workers or 1) as cluster, Client(cluster) as client:
            yield client, _info(client, device, threads, f"{options.kind} via dask-jobqueue")
        return
    workers = options.workers or default_workers(threads)
    with _local_cluster(workers, threads, device) as cluster, Client(cluster) as client:
        kind = "LocalCUDACluster" if device == "cuda" else "LocalCluster"
        yield client, _info(client, device, threads, f"{kind}, {workers} worker process(es) x {threads} thread(s)")


@contextlib.contextmanager
def _local_cluster(workers: int, threads: int, device: str) -> Iterator[Any]:
    if device == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise WeftError("--device cuda needs dask-cuda: pip install 'weft-textile[gpu]'") from None
        with LocalCUDACluster(
            n_workers=workers if workers else None, threads_per_worker=threads, resources={"GPU": 1}
        ) as cluster:
            yield cluster
        return
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=":0",
        silence_logs=40,  # logging.ERROR: the progress bar is the interface
    ) as cluster:
        yield cluster


@contextlib.contextmanager
def _jobqueue_cluster(kind: str, jobs: int) -> Iterator[Any]:
    try:
        import dask_jobqueue
    except ImportError:
        raise WeftError(f"--cluster {kind} needs dask-jobqueue: pip install 'weft-textile[cluster]'") from None
    config = cluster_config(kind)
    cls = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
    with cls(**config) as cluster:
        cluster.scale(jobs=jobs)
        yield cluster


def _info(client: Any, device: str, threads: int, description: str) -> ClusterInfo:
    workers = client.scheduler_info(n_workers=-1).get("workers", {}) if _accepts_n_workers(client) else (
        client.scheduler_info().get("workers", {})
    )  # fmt: skip
    gpu = any("GPU" in (w.get("resources") or {}) for w in workers.values())
    return ClusterInfo(
        dashboard=getattr(client, "dashboard_link", None),
        workers=len(workers),
        gpu=gpu,
        device=device,
        threads=threads,
        description=description,
    )


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters

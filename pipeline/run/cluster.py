"""A Dask client from CLI options: embedded LocalCluster, a running scheduler, or a batch system.

* default: an embedded ``LocalCluster`` of worker *processes*, one torch thread each, as many
  as cores (torch's own threading and Dask's would otherwise oversubscribe the cores);
* ``--scheduler-address`` / ``--scheduler-file``: a cluster someone else started (the batch
  scripts in ``scripts/`` start one and write the scheduler file); closing the client leaves
  it running;
* ``--cluster slurm|pbs``: dask-jobqueue with settings from ``configs/cluster/<kind>.toml``
  (``[cluster]``: keyword arguments of ``SLURMCluster``/``PBSCluster``, checked here;
  ``[weft]``: ``jobs``, how many batch jobs when ``--workers`` is not given);
* ``--device cuda`` locally: dask-cuda's ``LocalCUDACluster``, one worker per GPU, each
  declaring the resource ``GPU=1`` that weft's tasks ask for.

See ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.conventions import DEVICES, JOBQUEUE_KINDS
from pipeline.errors import ClusterError, ConfigError, SubmissionError, WeftError
from pipeline.run.tile_sizing import Budget
from pipeline.settings import config_dirs, read_toml

#: Seconds to wait for a scheduler (its address in the scheduler file, the connection) by
#: default; ``$WEFT_CONNECT_TIMEOUT`` overrides it.
CONNECT_TIMEOUT = 30.0
#: Seconds to wait for a first worker (batch jobs queued, starting) by default, on every path
#: that waits for workers; ``--worker-timeout`` or ``$WEFT_WORKER_TIMEOUT`` overrides it.
WORKER_TIMEOUT = 300.0
#: Seconds a queue query (``squeue``/``qstat``) may take when saying why no worker came.
QUEUE_QUERY_TIMEOUT = 10.0


def _env_seconds(name: str, default: float) -> float:
    """``$name`` as positive seconds if set, else ``default``; not a number is a ConfigError."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    return value if value > 0 else default


def connect_timeout() -> float:
    """``$WEFT_CONNECT_TIMEOUT`` seconds if set (and positive), else :data:`CONNECT_TIMEOUT`."""
    return _env_seconds("WEFT_CONNECT_TIMEOUT", CONNECT_TIMEOUT)


def worker_timeout() -> float:
    """``$WEFT_WORKER_TIMEOUT`` seconds if set (and positive), else :data:`WORKER_TIMEOUT`."""
    return _env_seconds("WEFT_WORKER_TIMEOUT", WORKER_TIMEOUT)


# Keyword arguments dask-jobqueue (0.8.5 .. 0.9) accepts, by kind. Checked here so that a typo
# in a config file is an error naming the file, not a TypeError deep inside dask-jobqueue.
_JOB_KEYS = {
    "name", "cores", "memory", "processes", "nanny", "protocol", "security", "interface",
    "death_timeout", "local_directory", "worker_command", "worker_extra_args",
    "job_extra_directives", "job_script_prologue", "job_directives_skip", "log_directory",
    "shebang", "python", "job_name", "job_cls", "config_name",
    # cluster (scheduler side) keywords
    "n_workers", "silence_logs", "scheduler_options", "shared_temp_directory",
}  # fmt: skip
_KIND_KEYS = {
    "slurm": {"queue", "account", "walltime", "job_cpu", "job_mem"},
    "pbs": {"queue", "account", "resource_spec", "walltime"},
}
_RENAMED = {  # deprecated by dask-jobqueue: say what the key is called now
    "extra": "worker_extra_args",
    "job_extra": "job_extra_directives",
    "env_extra": "job_script_prologue",
    "header_skip": "job_directives_skip",
    "project": "account",
    "dashboard_address": "scheduler_options = { dashboard_address = ... }",
    "host": "scheduler_options = { host = ... }",
}
_LIST_KEYS = {"worker_extra_args", "job_extra_directives", "job_script_prologue", "job_directives_skip"}
_INT_KEYS = {"cores", "processes", "job_cpu", "n_workers"}
_WEFT_KEYS = {"jobs"}


@dataclass(frozen=True)
class ClusterOptions:
    """How to get workers (the cluster half of ``weft run``'s options)."""

    scheduler_address: str | None = None
    scheduler_file: Path | None = None
    kind: str = "local"  # local | slurm | pbs
    workers: int | None = None  # local: worker processes (GPUs with cuda); slurm/pbs: batch jobs
    device: str = "auto"  # auto | cpu | cuda
    threads_per_worker: int = 1
    timeout: float = field(default_factory=connect_timeout)  # seconds to reach an external scheduler
    worker_timeout: float = field(default_factory=worker_timeout)  # seconds to see a first worker (any path)

    @property
    def external(self) -> bool:
        """The workers are someone else's (a running scheduler): the run neither starts nor closes them."""
        return bool(self.scheduler_address or self.scheduler_file)


@dataclass(frozen=True)
class ClusterInfo:
    """What the run needs to know about the cluster it got."""

    dashboard: str | None
    workers: int
    gpu: bool  # workers declare the GPU resource: tasks ask for it
    device: str  # the torch device tasks use
    threads: int  # torch threads per task
    description: str


def usable_cores() -> int:
    """The cores this process may run on (its affinity on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(threads_per_worker: int = 1) -> int:
    """As many single-threaded workers as this process may use cores."""
    return max(1, usable_cores() // threads_per_worker)


def planned_worker_memory(options: ClusterOptions) -> Budget | None:
    """What a worker of this cluster will have, known before it starts (``tile_size = "auto"`` plans by it).

    Local CPU workers share this machine's memory as ``LocalCluster`` shares it (by threads over
    cores); a local GPU worker has its GPU's memory; a SLURM/PBS worker its job's ``memory`` over
    ``processes``. An external scheduler's workers are unknown until connected: None.
    """
    from pipeline.engine.memory import format_bytes, parse_bytes

    if options.external:
        return None
    if options.kind in JOBQUEUE_KINDS:
        config = cluster_config(options.kind)
        if "memory" not in config:
            return None
        processes = int(config.get("processes", 1))
        try:
            total = parse_bytes(str(config["memory"]))
        except ValueError as error:
            raise ConfigError(f"{cluster_file(options.kind)}: memory: {error}") from None
        return Budget(total // processes, f"{options.kind} job memory {config['memory']} / {processes} process(es)")
    if options.device == "cuda" or (options.device == "auto" and Path("/dev/nvidiactl").exists()):
        import torch  # only where a GPU may be: planning a CPU run does not load torch

        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            return Budget(total, f"GPU memory {format_bytes(total)}")
    cores = usable_cores()
    workers = options.workers or default_workers(options.threads_per_worker)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    share = min(1.0, options.threads_per_worker / cores)
    return Budget(int(total * share), f"local cluster: {format_bytes(total)} x {options.threads_per_worker} thread(s) "
                                      f"/ {cores} cores, {workers} worker(s)")  # fmt: skip


def cluster_file(kind: str) -> Path:
    """``configs/cluster/<kind>.toml``: the first found in ``config_dirs()`` ($WEFT_CONFIG_DIR first)."""
    for directory in config_dirs():
        path = directory / "cluster" / f"{kind}.toml"
        if path.is_file():
            return path
    raise ConfigError(f"no configs/cluster/{kind}.toml found (looked in {', '.join(map(str, config_dirs()))})")


def cluster_config(kind: str) -> dict[str, Any]:
    """dask-jobqueue keyword arguments from ``configs/cluster/<kind>.toml`` (``[cluster]`` table).

    Every key is checked against what ``SLURMCluster``/``PBSCluster`` accept; a wrong one is a
    :class:`ConfigError` naming the file. ``log_directory`` is created by dask-jobqueue on the
    submitting host, so ``~`` and ``$VARS`` in it are expanded here; ``local_directory`` and
    ``job_script_prologue`` are left for the job's shell to expand on the compute node.
    """
    path = cluster_file(kind)
    return _check_cluster_table(kind, path, read_toml(path))


def default_jobs(kind: str) -> int:
    """``[weft] jobs`` of ``configs/cluster/<kind>.toml``: batch jobs to ask for without ``--workers``."""
    path = cluster_file(kind)
    weft = read_toml(path).get("weft", {})
    jobs = weft.get("jobs", 1) if isinstance(weft, dict) else 1
    return jobs if isinstance(jobs, int) and jobs >= 1 else 1


def _check_cluster_table(kind: str, path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    if kind not in _KIND_KEYS:
        raise ConfigError(f"unknown cluster kind {kind!r} (known: local, {', '.join(JOBQUEUE_KINDS)})")
    extra_tables = sorted(set(data) - {"cluster", "weft"})
    if extra_tables:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(extra_tables)} (expected [cluster] and [weft])")
    table = data.get("cluster")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: needs a [cluster] table of dask-jobqueue options")
    weft = data.get("weft", {})
    if not isinstance(weft, dict):
        raise ConfigError(f"{path}: [weft] must be a table")
    problems: list[str] = []
    for key in sorted(set(weft) - _WEFT_KEYS):
        problems.append(f"[weft] unknown key {key!r} (known: {', '.join(sorted(_WEFT_KEYS))})")
    if "jobs" in weft and not _whole(weft["jobs"]):
        problems.append("[weft] jobs must be a whole number >= 1")
    allowed = _JOB_KEYS | _KIND_KEYS[kind]
    for key in sorted(table):
        value = table[key]
        if key in _RENAMED:
            problems.append(f"[cluster] {key!r} is not accepted: use {_RENAMED[key]}")
        elif key not in allowed:
            problems.append(f"[cluster] unknown key {key!r} for --cluster {kind} (known: {', '.join(sorted(allowed))})")
        elif key in _LIST_KEYS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"[cluster] {key} must be a list of strings")
        elif key in _INT_KEYS and not _whole(value):
            problems.append(f"[cluster] {key} must be a whole number >= 1")
        elif key == "scheduler_options" and not isinstance(value, dict):
            problems.append("[cluster] scheduler_options must be a table")
    if not problems:
        resources = declared_resources(table.get("worker_extra_args", []))
        if "GPU" in resources and int(table.get("processes", 1)) > 1:
            problems.append(
                "[cluster] workers declare GPU but processes > 1: use one worker process per GPU "
                "(processes = 1, one GPU per job) and ask for more jobs instead"
            )
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    config = dict(table)
    if "log_directory" in config:
        config["log_directory"] = os.path.expandvars(os.path.expanduser(str(config["log_directory"])))
    return config


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def declared_resources(worker_args: list[str] | tuple[str, ...]) -> dict[str, float]:
    """The ``--resources "GPU=1 MEM=1e9"`` a worker command line declares, as a dict."""
    specs: list[str] = []
    args = list(worker_args)
    for i, arg in enumerate(args):
        if arg == "--resources" and i + 1 < len(args):
            specs.append(args[i + 1])
        elif arg.startswith("--resources="):
            specs.append(arg.split("=", 1)[1])
    resources: dict[str, float] = {}
    for spec in specs:
        for item in spec.replace(",", " ").split():
            name, _, amount = item.partition("=")
            try:
                resources[name] = float(amount)
            except ValueError:
                continue
    return resources


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[tuple[Any, ClusterInfo]]:
    """Yield (client, info); closes what it started, leaves external clusters running."""
    if options.device not in DEVICES:
        raise WeftError(f"unknown device {options.device!r} (use auto, cpu or cuda)")
    if options.scheduler_address and options.scheduler_file:
        raise WeftError("give --scheduler-address or --scheduler-file, not both")
    if options.external and options.kind != "local":
        raise WeftError(f"--cluster {options.kind} starts its own scheduler: drop --scheduler-address/--scheduler-file")
    if options.external:
        with _external(options) as pair:
            yield pair
        return
    if options.kind in JOBQUEUE_KINDS:
        with _jobqueue(options) as pair:
            yield pair
        return
    if options.kind != "local":
        raise WeftError(f"unknown cluster kind {options.kind!r} (use local, slurm or pbs)")
    from pipeline.engine.device import pick_device  # torch, only when a local cluster is started

    hint = "use --device cpu, or a GPU cluster via --scheduler-file / --cluster slurm|pbs"
    device = pick_device(options.device, hint=hint)
    from dask.distributed import Client

    threads = options.threads_per_worker
    with _local_cluster(options.workers, threads, device) as cluster, Client(cluster) as client:
        workers = len(cluster.workers)
        kind = "LocalCUDACluster" if device == "cuda" else "LocalCluster"
        unit = "GPU worker process(es)" if device == "cuda" else "worker process(es)"
        info = _info(client, device, threads, f"{kind}, {workers} {unit} x {threads} thread(s)")
        yield client, info


@contextlib.contextmanager
def _external(options: ClusterOptions) -> Iterator[tuple[Any, ClusterInfo]]:
    from dask.distributed import Client

    timeout = options.timeout
    if options.scheduler_file:
        address = _address_from_file(Path(options.scheduler_file), timeout)
        target = f"{address} (from {options.scheduler_file})"
    else:
        address = str(options.scheduler_address)
        target = address
    try:
        client = Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as error:
        raise WeftError(
            f"cannot reach the Dask scheduler at {target} within {timeout:g} s: {error}. "
            "Is `dask scheduler` running there, and is this host allowed to connect?"
        ) from None
    except ValueError as error:
        raise WeftError(f"invalid Dask scheduler address {address!r}: {error}") from None
    with client:
        _wait_for_a_worker(
            client, options.worker_timeout,
            lambda waited: f"the Dask scheduler at {target} has no workers (waited {waited:g} s, --worker-timeout): "
            "start `dask worker`/`dask cuda worker` against it, or use scripts/weft-slurm.sbatch",
        )  # fmt: skip
        device = _remote_device(client, options.device, target)
        yield client, _info(client, device, options.threads_per_worker, f"external scheduler {target}")


def _address_from_file(path: Path, timeout: float) -> str:
    """The ``address`` in a scheduler file, waiting up to ``timeout`` s for it to appear."""
    deadline = time.monotonic() + timeout
    last = "it does not exist"
    while True:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            address = data.get("address") if isinstance(data, dict) else None
            if isinstance(address, str) and address:
                return address
            last = "it has no 'address' (is it a scheduler file written by `dask scheduler --scheduler-file`?)"
        except FileNotFoundError:
            last = "it does not exist"
        except (OSError, ValueError) as error:
            last = f"it cannot be read: {error}"
        if time.monotonic() >= deadline:
            raise WeftError(
                f"scheduler file {path}: {last} (waited {timeout:g} s; "
                "start `dask scheduler --scheduler-file` first)"
            )
        time.sleep(0.1)


def _probe_cuda() -> bool:
    """Run on a worker: does torch see a CUDA GPU there?"""
    from pipeline.engine.device import cuda_available

    return cuda_available()


def _remote_device(client: Any, device: str, target: str) -> str:
    """The torch device for tasks on someone else's workers: theirs decides, not this host."""
    if device == "cpu":
        return "cpu"
    workers = _workers(client)
    gpu_workers = [a for a, w in workers.items() if "GPU" in (w.get("resources") or {})]
    candidates = gpu_workers or list(workers)  # tasks asking for GPU only land on GPU workers
    try:
        seen = client.run(_probe_cuda, workers=candidates)
    except Exception as error:  # noqa: BLE001 - a worker without weft/torch: say so
        raise WeftError(f"cannot ask the workers of {target} whether they have CUDA: {error}") from None
    with_cuda = sum(bool(v) for v in seen.values())
    if device == "cuda" and with_cuda < len(candidates):
        raise WeftError(
            f"--device cuda was asked for, but {len(candidates) - with_cuda} of the {len(candidates)} "
            f"worker(s) at {target} see no CUDA GPU (start GPU workers with `dask cuda worker`, or use --device cpu)"
        )
    return "cuda" if candidates and with_cuda == len(candidates) else "cpu"


@contextlib.contextmanager
def _local_cluster(workers: int | None, threads: int, device: str) -> Iterator[Any]:
    if device == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise WeftError("--device cuda needs dask-cuda: pip install 'weft-textile[gpu]'") from None
        with LocalCUDACluster(
            n_workers=workers,  # None: one worker per visible GPU
            threads_per_worker=threads,
            resources={"GPU": 1},
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster:
            yield cluster
        return
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=workers or default_workers(threads),
        threads_per_worker=threads,
        processes=True,
        dashboard_address=":0",
        silence_logs=40,  # logging.ERROR: the progress bar is the interface
    ) as cluster:
        yield cluster


@contextlib.contextmanager
def _jobqueue(options: ClusterOptions) -> Iterator[tuple[Any, ClusterInfo]]:
    """Submit the worker jobs, check that the batch system took them, wait for a first worker.

    A refused submission is a :class:`SubmissionError` with the batch system's message; no
    worker within ``options.worker_timeout`` is a :class:`ClusterError` saying what the queue
    holds. The device is then decided by the workers (``--device auto`` asks them), as for an
    external scheduler: declaring ``GPU=1`` does not make torch see one.
    """
    kind = options.kind
    config = cluster_config(kind)  # config errors first: they need no dask-jobqueue
    jobs = options.workers or default_jobs(kind)
    try:
        import dask_jobqueue
    except ImportError:
        raise WeftError(f"--cluster {kind} needs dask-jobqueue: pip install 'weft-textile[cluster]'") from None
    gpu = "GPU" in declared_resources(config.get("worker_extra_args", []))
    cls = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
    failures: list[str] = []
    config["job_cls"] = _recording_submissions(config.get("job_cls") or cls.job_cls, failures)
    from dask.distributed import Client

    try:
        cluster = cls(**config)
    except (TypeError, ValueError, OSError) as error:  # e.g. an unknown interface, an unwritable log_directory
        raise WeftError(f"{cluster_file(kind)}: dask-jobqueue refused the [cluster] table: {error}") from None
    with cluster, Client(cluster) as client:
        cluster.scale(jobs=jobs)
        deadline = time.monotonic() + options.worker_timeout
        job_ids = _submitted(cluster, jobs, failures, kind, deadline)
        processes = int(config.get("processes", 1))
        target = f"{kind} job(s) {', '.join(job_ids)}"
        _wait_for_a_worker(
            client, max(0.0, deadline - time.monotonic()),
            lambda _waited: f"no worker of the {target} connected within {options.worker_timeout:g} s "
            f"(--worker-timeout): {queue_report(kind, job_ids)}",
        )  # fmt: skip
        device = _remote_device(client, options.device, target)
        info = _info(
            client, device, options.threads_per_worker,
            f"{kind} via dask-jobqueue, {jobs} job(s) x {processes} worker process(es)"
            + (", GPU=1 each" if gpu else ""),
        )  # fmt: skip
        # more workers arrive as the batch system starts the jobs: the config says whether they have GPUs
        yield client, ClusterInfo(
            dashboard=info.dashboard,
            workers=info.workers,
            gpu=gpu or info.gpu,
            device=device,
            threads=info.threads,
            description=info.description,
        )


def _recording_submissions(job_cls: type, failures: list[str]) -> type:
    """``job_cls`` whose failed submission is recorded in ``failures`` instead of being logged.

    dask-jobqueue submits in the background and only logs a refused ``sbatch`` (a traceback
    nobody waits on); here the run sees it and stops with the batch system's message.
    """

    class Recorded(job_cls):  # type: ignore[misc, valid-type]
        async def start(self) -> None:
            try:
                await super().start()
            except Exception as error:  # noqa: BLE001 - any refusal: sbatch's exit code, no job id
                # the text only: the exception's traceback would keep this job alive, and Dask
                # checks at close that every job still alive was closed
                failures.append(str(error))
                # Dask's bookkeeping wants every started job "running"; with no job id, closing
                # it cancels nothing.
                from distributed.core import Status

                self.status = Status.running

    Recorded.__name__ = Recorded.__qualname__ = f"Recorded{job_cls.__name__}"
    return Recorded


def _submitted(cluster: Any, jobs: int, failures: list[str], kind: str, deadline: float) -> list[str]:
    """The job ids once all ``jobs`` submissions are answered; a refused one is a SubmissionError."""
    command = "sbatch" if kind == "slurm" else "qsub"
    while True:
        if failures:
            raise SubmissionError(
                f"{command} refused the worker job ({cluster_file(kind)}): {_submit_message(failures[0])}"
            )
        ids = [getattr(job, "job_id", None) for job in list(cluster.workers.values())]
        if len(ids) >= jobs and all(ids):
            return [str(job_id) for job_id in ids]
        if time.monotonic() >= deadline:
            raise SubmissionError(
                f"{command} did not answer for {jobs - sum(map(bool, ids))} of {jobs} worker job(s) within the "
                "worker timeout: is the batch system's controller up (`sinfo`/`qstat -B`)?"
            )
        time.sleep(0.05)


def _submit_message(text: str) -> str:
    """What the batch system said: the stderr dask-jobqueue quotes, else the whole text, on one line."""
    _, found, stderr = text.partition("stderr:")
    said = stderr.strip() if found and stderr.strip() else text.strip()
    return "; ".join(line.strip() for line in said.splitlines() if line.strip())


def _wait_for_a_worker(client: Any, timeout: float, message: Any) -> None:
    """Wait up to ``timeout`` s for one worker; else a ClusterError of ``message(timeout)``."""
    try:
        client.wait_for_workers(1, timeout=max(timeout, 0.001))
    except (TimeoutError, OSError):
        raise ClusterError(message(timeout)) from None


def queue_report(kind: str, job_ids: list[str]) -> str:
    """How many of ``job_ids`` the batch system holds pending, asked of ``squeue``/``qstat``."""
    if kind == "slurm":
        command = ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T %r"]
    else:
        command = ["qstat", *job_ids]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=QUEUE_QUERY_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not ask the queue about them ({command[0]}: {error})"
    if done.returncode != 0 and not done.stdout.strip():
        said = _submit_message(done.stderr or f"exit code {done.returncode}")
        return f"could not ask the queue about them ({command[0]}: {said})"
    states = _queue_states(kind, done.stdout, job_ids)
    pending = [job_id for job_id, (state, _) in states.items() if state in {"PENDING", "Q", "H", "W"}]
    listed = ", ".join(f"{job_id} {state}{f' ({why})' if why else ''}" for job_id, (state, why) in states.items())
    gone = [job_id for job_id in job_ids if job_id not in states]
    text = f"{len(pending)} of {len(job_ids)} job(s) pending in the queue"
    text += f" ({command[0]}: {listed})" if listed else ""
    if gone:
        text += f"; {', '.join(gone)} no longer in the queue (ended: see the job logs in log_directory)"
    return text


def _queue_states(kind: str, output: str, job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) from ``squeue -o '%i %T %r'`` or plain ``qstat`` output."""
    states: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        fields = line.split()
        if not fields:
            continue
        match = next((j for j in job_ids if fields[0] == j or fields[0].split(".")[0] == j.split(".")[0]), None)
        if match is None:
            continue
        if kind == "slurm" and len(fields) >= 2:
            states[match] = (fields[1], " ".join(fields[2:]).strip("()"))
        elif kind != "slurm" and len(fields) >= 5:  # Job id, Name, User, Time Use, S, Queue
            states[match] = (fields[4], "")
    return states


class SeenWorkers:
    """The workers connected at any time during a run: what "on N worker(s)" counts.

    Not the number asked for (``-w 3`` on a cluster with 2 free slots runs on 2): the
    scheduler is asked at most every ``every`` seconds (a run of thousands of tiles does not
    ask per tile), and :meth:`add` takes the workers seen otherwise (e.g. by ``client.run``).
    """

    def __init__(self, client: Any, every: float = 1.0) -> None:
        self.client = client
        self.every = every
        self.addresses: set[str] = set()
        self._last = float("-inf")

    def look(self, *, now: bool = False) -> None:
        if not now and time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        try:
            self.addresses.update(_workers(self.client))
        except (OSError, TimeoutError):  # a scheduler going away: keep those seen
            pass

    def add(self, addresses: Any) -> None:
        self.addresses.update(addresses)

    def __len__(self) -> int:
        return len(self.addresses)


def _workers(client: Any) -> dict[str, Any]:
    if _accepts_n_workers(client):
        return client.scheduler_info(n_workers=-1).get("workers", {})
    return client.scheduler_info().get("workers", {})


def _info(client: Any, device: str, threads: int, description: str) -> ClusterInfo:
    workers = _workers(client)
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

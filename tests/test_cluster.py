"""``pipeline.run.cluster`` against real processes: a ``dask scheduler`` and ``dask worker``s started
here as subprocesses (what the batch scripts start on a cluster), dask-jobqueue's job scripts
from the shipped ``configs/cluster/*.toml``, and a ``--cluster slurm`` run whose ``sbatch`` is
a stand-in that starts the job script on this machine.
"""

from __future__ import annotations

import json
import operator
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.run import cluster as cluster_mod
from pipeline.run.cluster import ClusterOptions, cluster_config, connect, declared_resources, default_jobs
from pipeline.errors import ConfigError, SubmissionError, WeftError

DASK = Path(sys.executable).parent / "dask"
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Processes:
    """Subprocesses of one test (or module); every one is stopped at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()
        self.procs.append(proc)
        return proc

    def scheduler(self) -> tuple[subprocess.Popen, Path, str]:
        """A ``dask scheduler`` on a free port of 127.0.0.1; returns (process, scheduler file, address)."""
        path = self.folder / "scheduler.json"
        proc = self.start(
            "scheduler", "scheduler", "--scheduler-file", str(path), "--host", "127.0.0.1", "--port", "0",
            "--dashboard-address", ":0", "--no-show",
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert proc.poll() is None, (self.folder / "scheduler.log").read_text()
            try:
                return proc, path, json.loads(path.read_text())["address"]
            except (FileNotFoundError, ValueError, KeyError):
                time.sleep(0.05)
        raise AssertionError("dask scheduler wrote no scheduler file")

    def worker(self, scheduler_file: Path, *extra: str, name: str = "worker") -> subprocess.Popen:
        return self.start(
            name, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(self.folder / name), *extra,
        )  # fmt: skip

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, Path, str]]:
    """A running scheduler with one plain single-threaded worker, shared by this module's tests."""
    procs = Processes(tmp_path_factory.mktemp("external"))
    try:
        sched, path, address = procs.scheduler()
        procs.worker(path)
        yield sched, path, address
    finally:
        procs.stop_all()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


# Tasks are plain library functions: the scheduler and workers run elsewhere and cannot import
# this test module (weft's own tasks live in the installed ``pipeline.run.tasks``).
_add = operator.add


def _ran_on(client, future) -> str:
    future.result(timeout=30)
    (where,) = client.who_has([future])[future.key]
    return where


def _workers_seen(address: str) -> int:
    from distributed import Client

    with Client(address, timeout="10s") as client:
        return len(client.nthreads())


# --- external scheduler ----------------------------------------------------------------------


def test_scheduler_file_connects_runs_a_task_and_leaves_the_cluster_running(external) -> None:
    sched, path, address = external
    with connect(ClusterOptions(scheduler_file=path, device="cpu", timeout=START_TIMEOUT)) as (client, info):
        assert info.workers == 1
        assert info.gpu is False
        assert info.device == "cpu" and info.threads == 1
        assert address in info.description and str(path) in info.description
        assert info.dashboard and info.dashboard.startswith("http")
        assert client.submit(_add, 1, 2, pure=False).result(timeout=30) == 3
    assert sched.poll() is None, "closing weft's client must not stop an external scheduler"
    assert _workers_seen(address) == 1


def test_scheduler_address_connects_to_the_same_scheduler(external) -> None:
    sched, _path, address = external
    with connect(ClusterOptions(scheduler_address=address, device="cpu", timeout=START_TIMEOUT)) as (client, info):
        assert info.workers == 1 and not info.gpu
        assert client.submit(_add, 20, 22, pure=False).result(timeout=30) == 42
    assert sched.poll() is None


def _workers_see_cuda(address: str) -> bool:
    """Whether every worker of the scheduler at ``address`` sees a CUDA GPU (asked on the workers)."""
    import torch
    from distributed import Client

    with Client(address, timeout="10s") as client:
        seen = client.run(torch.cuda.is_available)
    assert seen, "the scheduler has no workers to ask"
    return all(seen.values())


def _host_claims(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    """Make this process's CUDA probe (the engine's one rule, which the cluster asks) answer ``cuda``."""
    import pipeline.engine.device as device_mod

    monkeypatch.setattr(device_mod, "cuda_available", lambda: cuda)


def test_auto_device_on_external_workers_is_what_the_workers_see(external, monkeypatch: pytest.MonkeyPatch) -> None:
    _sched, path, address = external
    workers_cuda = _workers_see_cuda(address)
    _host_claims(monkeypatch, not workers_cuda)  # this host says the opposite: it must not be asked
    with connect(ClusterOptions(scheduler_file=path, timeout=START_TIMEOUT)) as (_client, info):
        assert info.device == ("cuda" if workers_cuda else "cpu")


class _FakeClient:
    """Just what ``_remote_device`` asks of a client: the workers, and each one's CUDA probe."""

    def __init__(self, workers: dict[str, dict], answers: dict[str, bool]) -> None:
        self.workers, self.answers = workers, answers
        self.asked: list[str] | None = None

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": self.workers}

    def run(self, function, workers: list[str]) -> dict[str, bool]:
        assert function is cluster_mod._probe_cuda
        self.asked = list(workers)
        return {address: self.answers[address] for address in workers}


CPU, GPU = {"resources": {}}, {"resources": {"GPU": 1.0}}


@pytest.mark.parametrize(
    ("workers", "answers", "expected", "asked"),
    [
        ({"a": CPU, "b": CPU}, {"a": True, "b": True}, "cuda", ["a", "b"]),
        ({"a": CPU, "b": CPU}, {"a": False, "b": False}, "cpu", ["a", "b"]),
        ({"a": CPU, "b": CPU}, {"a": True, "b": False}, "cpu", ["a", "b"]),  # one without CUDA: all on cpu
        ({"a": GPU, "b": CPU}, {"a": True, "b": False}, "cuda", ["a"]),  # tasks asking for GPU land on a only
        ({"a": GPU, "b": CPU}, {"a": False, "b": True}, "cpu", ["a"]),
    ],
)
@pytest.mark.parametrize("host_cuda", [True, False])
def test_auto_device_of_remote_workers_is_decided_by_their_probe(
    monkeypatch: pytest.MonkeyPatch, workers: dict, answers: dict, expected: str, asked: list[str], host_cuda: bool
) -> None:
    _host_claims(monkeypatch, host_cuda)
    client = _FakeClient(workers, answers)
    assert cluster_mod._remote_device(client, "auto", "tcp://sched:8786") == expected
    assert client.asked == asked


def test_remote_device_cpu_asks_nobody_and_cuda_needs_every_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    _host_claims(monkeypatch, True)
    client = _FakeClient({"a": CPU, "b": CPU}, {"a": True, "b": False})
    assert cluster_mod._remote_device(client, "cpu", "tcp://sched:8786") == "cpu" and client.asked is None
    with pytest.raises(WeftError, match=r"1 of the 2 worker\(s\) at tcp://sched:8786 see no CUDA GPU"):
        cluster_mod._remote_device(client, "cuda", "tcp://sched:8786")
    assert cluster_mod._remote_device(_FakeClient({"a": CPU}, {"a": True}), "cuda", "x") == "cuda"


@pytest.mark.parametrize("cuda", [True, False])
def test_probe_run_on_the_workers_is_the_cuda_probe(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    _host_claims(monkeypatch, cuda)
    assert cluster_mod._probe_cuda() is cuda


class _Chosen(Exception):  # noqa: N818 - not an error: how the fake cluster reports what it was asked for
    def __init__(self, device: str) -> None:
        super().__init__(device)
        self.device = device


@pytest.mark.parametrize("cuda", [True, False])
def test_auto_device_of_a_local_cluster_follows_the_cuda_probe(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    """The decision only: the cluster that would start is replaced by one that says which it was asked for."""
    _host_claims(monkeypatch, cuda)

    def local_cluster(workers, threads, device):
        raise _Chosen(device)

    monkeypatch.setattr(cluster_mod, "_local_cluster", local_cluster)
    with pytest.raises(_Chosen) as chosen, connect(ClusterOptions(device="auto")):
        pass
    assert chosen.value.device == ("cuda" if cuda else "cpu")
    with pytest.raises(_Chosen) as chosen, connect(ClusterOptions(device="cpu")):
        pass
    assert chosen.value.device == "cpu"


def test_gpu_resource_on_a_worker_makes_tasks_ask_for_it(processes: Processes) -> None:
    _sched, path, address = processes.scheduler()
    processes.worker(path, "--resources", "GPU=1", name="gpu-worker")
    with connect(ClusterOptions(scheduler_file=path, timeout=START_TIMEOUT)) as (client, info):
        assert info.gpu is True  # weft's tasks will carry resources={"GPU": 1}
        (worker,) = client.nthreads()
        future = client.submit(_add, 2, 2, resources={"GPU": 1}, pure=False)
        assert _ran_on(client, future) == worker  # on CPU, the task still runs on the worker declaring GPU
        # declaring GPU=1 is not enough: the device is what torch sees on that worker
        workers_cuda = _workers_see_cuda(address)
        assert info.device == ("cuda" if workers_cuda else "cpu")
    if not workers_cuda:
        with pytest.raises(WeftError, match="see no CUDA GPU"):
            with connect(ClusterOptions(scheduler_file=path, device="cuda", timeout=START_TIMEOUT)):
                pass


def test_unreachable_address_is_a_weft_error_quickly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(WeftError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        with connect(ClusterOptions(scheduler_address=f"tcp://127.0.0.1:{port}", timeout=1.0)):
            pass
    assert time.monotonic() - started < 10
    with pytest.raises(WeftError, match="invalid Dask scheduler address"):
        with connect(ClusterOptions(scheduler_address="no:such:address", timeout=1.0)):
            pass


def test_missing_or_broken_scheduler_file_is_a_weft_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(WeftError, match="does not exist"):
        with connect(ClusterOptions(scheduler_file=missing, timeout=0.3)):
            pass
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "Scheduler"}')
    with pytest.raises(WeftError, match="no 'address'"):
        with connect(ClusterOptions(scheduler_file=broken, timeout=0.3)):
            pass


def test_scheduler_without_workers_is_a_weft_error(processes: Processes) -> None:
    _sched, _path, address = processes.scheduler()
    with pytest.raises(WeftError, match="has no workers"):
        with connect(ClusterOptions(scheduler_address=address, timeout=1.0, worker_timeout=1.0)):
            pass


def test_conflicting_options_are_refused() -> None:
    with pytest.raises(WeftError, match="not both"):
        with connect(ClusterOptions(scheduler_address="tcp://127.0.0.1:1", scheduler_file=Path("s.json"))):
            pass
    with pytest.raises(WeftError, match="starts its own scheduler"):
        with connect(ClusterOptions(scheduler_address="tcp://127.0.0.1:1", kind="slurm")):
            pass


# --- local --device cuda ---------------------------------------------------------------------


def test_device_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():  # on a GPU machine, pretend there is none
        _host_claims(monkeypatch, False)
    with pytest.raises(WeftError, match="--device cuda was asked for, but torch sees no CUDA GPU"):
        with connect(ClusterOptions(device="cuda")):
            pass


def test_device_cuda_without_dask_cuda_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _host_claims(monkeypatch, True)
    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # import fails as if not installed
    with pytest.raises(WeftError, match=r"weft-textile\[gpu\]"):
        with connect(ClusterOptions(device="cuda")):
            pass


# --- --cluster slurm|pbs: configs/cluster/*.toml ---------------------------------------------


def _kwargs(kind: str, tmp_path: Path) -> dict:
    config = cluster_config(kind)
    config["log_directory"] = str(tmp_path / "logs")  # created on the submitting host
    config["scheduler_options"] = {**config.get("scheduler_options", {}), "dashboard_address": ":0"}
    return config


def test_shipped_configs_are_valid_and_declare_one_gpu_per_worker() -> None:
    for kind in ("slurm", "pbs"):
        config = cluster_config(kind)
        assert declared_resources(config["worker_extra_args"]) == {"GPU": 1.0}
        assert config["processes"] == 1
        assert any("activate" in line for line in config["job_script_prologue"])
        assert default_jobs(kind) >= 1
        assert "~" not in config["log_directory"]  # expanded on the submitting host


def test_slurm_job_script_has_gres_resources_and_venv(tmp_path: Path) -> None:
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    with dask_jobqueue.SLURMCluster(**_kwargs("slurm", tmp_path)) as cluster:
        script = cluster.job_script()
    assert "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH -p gpu" in script and "#SBATCH -t 08:00:00" in script
    assert "--resources GPU=1" in script
    assert "--nthreads 1" in script
    assert "source $HOME/weft/.venv/bin/activate" in script
    assert "--local-directory $TMPDIR" in script


def test_pbs_job_script_has_ngpus_resources_and_venv(tmp_path: Path) -> None:
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    with dask_jobqueue.PBSCluster(**_kwargs("pbs", tmp_path)) as cluster:
        script = cluster.job_script()
    assert "#PBS -l select=1:ncpus=8:ngpus=1:mem=40gb" in script
    assert "#PBS -q gpu" in script and "#PBS -l walltime=08:00:00" in script
    assert "--resources GPU=1" in script
    assert "--nthreads 1" in script
    assert "source $HOME/weft/.venv/bin/activate" in script


def _write_config(root: Path, kind: str, body: str) -> Path:
    path = root / "cluster" / f"{kind}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[cluster]\ncores = 1\nmemory = "1GB"\nqueu = "gpu"\n', "unknown key 'queu'"),
        ('[cluster]\ncores = 1\nmemory = "1GB"\nresource_spec = "x"\n', "'resource_spec' for --cluster slurm"),
        ('[cluster]\ncores = 1\nmemory = "1GB"\njob_extra = ["--gres=gpu:1"]\n', "use job_extra_directives"),
        ('[cluster]\ncores = 1\nmemory = "1GB"\nworker_extra_args = "--resources GPU=1"\n', "list of strings"),
        ('[cluster]\ncores = 0\nmemory = "1GB"\n', "cores must be a whole number"),
        (
            '[cluster]\ncores = 2\nprocesses = 2\nmemory = "1GB"\nworker_extra_args = ["--resources", "GPU=1"]\n',
            "one worker process per GPU",
        ),
        ('[cluster]\ncores = 1\nmemory = "1GB"\n[weft]\nworkers = 3\n', "[weft] unknown key 'workers'"),
        ('[clusters]\ncores = 1\n', "unknown top-level key(s) clusters"),
        ('cores = 1\n', "unknown top-level key(s) cores"),
    ],
)
def test_bad_cluster_config_is_a_config_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    path = _write_config(tmp_path, "slurm", body)
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        cluster_config("slurm")
    assert str(path) in str(caught.value) and message in str(caught.value)
    with pytest.raises(ConfigError, match="queu|resource_spec|job_extra|list of|cores|per GPU|weft|top-level"):
        with connect(ClusterOptions(kind="slurm")):  # refused before anything is submitted
            pass


def test_missing_cluster_config_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cluster_mod, "config_dirs", lambda: [tmp_path])
    with pytest.raises(ConfigError, match=r"no configs/cluster/pbs.toml"):
        cluster_config("pbs")


FAKE_SBATCH = """#!/bin/bash
# stand-in for sbatch: run (a copy of) the job script here, detached; the job id is its pid
cp "$1" "{logs}/job-$$.sh"
setsid bash "{logs}/job-$$.sh" > "{logs}/job-$$.log" 2>&1 < /dev/null &
echo "$!" >> "{logs}/pids"
echo "Submitted batch job $!"
"""
FAKE_SCANCEL = """#!/bin/bash
for id in "$@"; do kill -TERM -- "-$id" 2>/dev/null || kill -TERM "$id" 2>/dev/null; done
exit 0
"""


def test_cluster_slurm_submits_jobs_whose_gpu_workers_run_the_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--cluster slurm`, end to end but for SLURM itself: the job script dask-jobqueue builds
    from the config is started by a stand-in sbatch, its worker joins and runs a GPU task."""
    pytest.importorskip("dask_jobqueue")
    logs = tmp_path / "logs"
    bin_dir = tmp_path / "bin"
    logs.mkdir()
    bin_dir.mkdir()
    fakes = {"sbatch": FAKE_SBATCH.format(logs=logs), "scancel": FAKE_SCANCEL, "squeue": "#!/bin/bash\n"}
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _write_config(
        tmp_path / "configs",
        "slurm",
        f"""
        [weft]
        jobs = 1
        [cluster]
        queue = "gpu"
        cores = 1
        processes = 1
        memory = "1GB"
        walltime = "00:10:00"
        job_extra_directives = ["--gres=gpu:1"]
        worker_extra_args = ["--resources", "GPU=1", "--nthreads", "1", "--no-dashboard"]
        job_script_prologue = ["export WEFT_FAKE_PROLOGUE=1"]
        local_directory = "{tmp_path / 'scratch'}"
        log_directory = "{logs}"
        death_timeout = 30
        interface = "lo"
        scheduler_options = {{ dashboard_address = ":0" }}
        """,
    )
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path / "configs"))
    try:
        with connect(ClusterOptions(kind="slurm", device="cpu")) as (client, info):
            assert info.gpu is True  # from the config: workers arrive later
            assert "slurm via dask-jobqueue, 1 job(s)" in info.description
            client.wait_for_workers(1, timeout=START_TIMEOUT)
            (worker,) = client.nthreads()
            future = client.submit(_add, 3, 4, resources={"GPU": 1}, pure=False)
            assert _ran_on(client, future) == worker and future.result() == 7
    finally:
        pids = (logs / "pids").read_text().split() if (logs / "pids").exists() else []
        for pid in pids:  # scancel ran on close; make sure nothing is left either way
            try:
                os.killpg(int(pid), 9)
            except (ProcessLookupError, PermissionError):
                pass
    assert pids, "the stand-in sbatch was never called"


def _fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in scripts.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + textwrap.dedent(text))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_refused_submission_is_a_submission_error_with_the_batch_systems_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in sbatch that refuses (as a real one does for an unknown partition): one error, at once."""
    pytest.importorskip("dask_jobqueue")
    _fake_commands(
        tmp_path, monkeypatch,
        sbatch='echo "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n', scancel="exit 0\n",
    )  # fmt: skip
    _write_config(tmp_path / "configs", "slurm", f"""
        [cluster]
        queue = "nope"
        cores = 1
        memory = "1GB"
        log_directory = "{tmp_path / 'logs'}"
        scheduler_options = {{ dashboard_address = ":0", host = "127.0.0.1" }}
        """)  # fmt: skip
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path / "configs"))
    started = time.monotonic()
    with pytest.raises(SubmissionError, match="sbatch refused the worker job .*invalid partition specified: nope"):
        with connect(ClusterOptions(kind="slurm", workers=2, worker_timeout=60)):
            pass
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("kind", "fake", "said"),
    [
        ("slurm", 'echo "41 PENDING (BeginTime)"; echo "42 RUNNING (None)"\n',
         "1 of 3 job(s) pending in the queue (squeue: 41 PENDING (BeginTime), 42 RUNNING (None)); "
         "43 no longer in the queue"),
        ("pbs", 'echo "Job id  Name  User  Time Use S Queue"; echo "---"; echo "41.pbs  w  u  0  Q  gpu"\n',
         "1 of 3 job(s) pending in the queue (qstat: 41.pbs Q)"),
        ("slurm", 'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1\n',
         "could not ask the queue about them (squeue: slurm_load_jobs error: Unable to contact slurm controller)"),
    ],
)
def test_queue_report_says_how_many_jobs_are_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, fake: str, said: str
) -> None:
    _fake_commands(tmp_path, monkeypatch, squeue=fake, qstat=fake)
    ids = ["41", "42", "43"] if kind == "slurm" else ["41.pbs", "42.pbs", "43.pbs"]
    assert said in cluster_mod.queue_report(kind, ids)


def test_queue_report_without_the_command_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue here
    assert "could not ask the queue about them (squeue:" in cluster_mod.queue_report("slurm", ["7"])


def test_worker_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEFT_WORKER_TIMEOUT", "12.5")
    assert ClusterOptions().worker_timeout == 12.5
    monkeypatch.setenv("WEFT_WORKER_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="WEFT_WORKER_TIMEOUT must be a number"):
        ClusterOptions()
    monkeypatch.delenv("WEFT_WORKER_TIMEOUT")
    assert ClusterOptions().worker_timeout == cluster_mod.WORKER_TIMEOUT

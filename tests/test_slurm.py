"""weft against a real SLURM: the one-node cluster ``scripts/start-slurm.sh`` starts on this
machine (CI's ``.ci/run`` calls it). Real ``sbatch``, ``squeue`` and ``scancel``; CPU workers.

* ``weft run --cluster slurm`` (dask-jobqueue) and ``sbatch scripts/weft-slurm.sbatch`` write
  stores byte-identical to a local run of the same manifest;
* a submission SLURM refuses is one error with sbatch's own message, within seconds;
* jobs that are accepted but can never start end the run after ``--worker-timeout``, saying
  how many are pending;
* ``scancel`` of the batch script: its own bounded teardown ends the job (no SIGKILL) and the
  store is unlocked.

Skipped, with the reason in pytest's summary, where there is no SLURM (no ``sinfo``) or no
idle node. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.run.lock import LOCK_NAME
from pipeline_helpers import pixels, run, write_manifest

REPO = Path(__file__).resolve().parent.parent
WEFT = Path(sys.executable).with_name("weft")
SBATCH_SCRIPT = REPO / "scripts" / "weft-slurm.sbatch"
JOBS = {"tartan": ("designs/royal_stewart_sett.png", "kiss", "block")}  # one small job: 5 tasks
JOB_WAIT_S = 300.0  # a batch job of this manifest takes about a minute on 2 busy cores


def _ask(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=True).stdout.strip()


def _slurm_unavailable() -> str | None:
    """Why these tests cannot run here, or None."""
    said = os.environ.get("WEFT_SLURM_UNAVAILABLE")  # set by .ci/run when start-slurm.sh failed
    if said:
        return said
    if shutil.which("sinfo") is None:
        return "no SLURM here: `sinfo` is not on PATH (start a one-node SLURM with scripts/start-slurm.sh, as root)"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"SLURM does not answer (`sinfo`: {error}); start it with scripts/start-slurm.sh"
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        return f"SLURM does not answer (`sinfo`: {said}); start it with scripts/start-slurm.sh"
    states = done.stdout.split()
    if not {"idle", "mixed"} & set(states):
        return f"no idle SLURM node (sinfo says: {', '.join(states) or 'no nodes'}); see scripts/start-slurm.sh"
    return None


UNAVAILABLE = _slurm_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))]


def _partition() -> str:
    return _ask("sinfo", "-h", "-o", "%P").split()[0].rstrip("*")


def _cpus() -> int:
    """CPUs of the (first) node, as SLURM books them."""
    return int(_ask("sinfo", "-h", "-o", "%c").split()[0].rstrip("+"))


def _env(**more: str) -> dict[str, str]:
    """This environment, with this checkout first on PYTHONPATH (batch jobs inherit it)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "250", **more}


def _venv() -> Path:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the batch script activates a venv (WEFT_VENV): run the tests from one")
    return Path(sys.prefix)


def _prologue() -> list[str]:
    """Shell lines of a worker job: the same venv and checkout as this test."""
    lines = [f"export PYTHONPATH={_env()['PYTHONPATH']}", "export OMP_NUM_THREADS=1"]
    if sys.prefix != sys.base_prefix:
        lines.insert(0, f"source {Path(sys.prefix) / 'bin' / 'activate'}")
    return lines


def _site_config(folder: Path, name: str, *, jobs: int = 1, job_cpu: int = 1, queue: str | None = None,
                 directives: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """A site ``cluster/slurm.toml`` in ``folder`` (for $WEFT_CONFIG_DIR): CPU jobs on this node.

    The workers declare ``GPU=1`` as the shipped config does, although they have none: with
    ``--device auto`` weft must ask them, and run on their CPU.
    """
    toml = lambda value: repr(value).replace("'", '"')  # noqa: E731 - lists and strings only
    path = folder / "cluster" / "slurm.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        [weft]
        jobs = {jobs}
        [cluster]
        queue = "{queue or _partition()}"
        walltime = "00:15:00"
        cores = 1
        processes = 1
        job_cpu = {job_cpu}
        memory = "3GB"
        job_name = "{name}"
        job_extra_directives = {toml(list(directives))}
        worker_extra_args = ["--resources", "GPU=1", "--nthreads", "1"]
        job_script_prologue = {toml(_prologue())}
        python = "{sys.executable}"
        local_directory = "{folder / 'scratch'}"
        log_directory = "{folder / 'logs'}"
        death_timeout = 60
        scheduler_options = {{ dashboard_address = ":0", host = "127.0.0.1" }}
        """))  # fmt: skip
    return folder


def _weft_run(manifest: Path, store: Path, *extra: str, config_dir: Path, timeout: float) -> tuple[int, str, float]:
    """``weft run --cluster slurm`` as a process: (exit code, output, seconds)."""
    command = [str(WEFT), "run", str(manifest), "--store", str(store), "--config", str(manifest.parent / "tiny.toml"),
               "--cluster", "slurm", *extra]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=_env(WEFT_CONFIG_DIR=str(config_dir)),
        cwd=manifest.parent,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _our_jobs(name: str) -> list[str]:
    """Ids of the jobs named ``name`` still in the queue."""
    return _ask("squeue", "-h", "-n", name, "-o", "%i").split()


def _job_field(job_id: str, name: str) -> str:
    found = re.search(rf"\b{name}=(\S+)", _ask("scontrol", "show", "job", job_id))
    return found.group(1) if found else ""


def _wait_gone(job_id: str, timeout: float) -> float:
    """Seconds until the job left the queue (AssertionError after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not _ask("squeue", "-h", "-j", job_id, "-o", "%i"):
            return time.monotonic() - started
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], timeout=20, check=False)
    raise AssertionError(f"job {job_id} still in the queue after {timeout:g} s")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of :data:`JOBS` with the tests' tiny profile beside it."""
    return write_manifest(tmp_path_factory.mktemp("slurm-manifest"), JOBS)


@pytest.fixture(scope="module")
def local(manifest: Path) -> tuple[Path, dict[str, bytes]]:
    """(manifest, pixels) of a local CPU run of :data:`JOBS`: what every SLURM run must reproduce."""
    store = manifest.parent / "local.zarr"
    assert run(manifest, store, workers=2).exit_code == 0
    return manifest, pixels(store)


@pytest.fixture
def batch_jobs() -> Iterator[list[str]]:
    """Job ids a test submits; any still queued at the end are cancelled."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], timeout=20, check=False)


def test_cluster_slurm_runs_on_the_workers_that_started_and_matches_a_local_run(
    local: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    """More jobs than the node has room for (one stays pending): the run goes on with those that
    started, says so, runs on their CPUs although they declare GPU=1, and writes the local bytes."""
    manifest, expected = local
    cpus = _cpus()
    job_cpu = max(1, cpus // 2)
    slots = cpus // job_cpu
    site = _site_config(tmp_path / "site", "weft-e2e", jobs=slots + 1, job_cpu=job_cpu)
    store = tmp_path / "slurm.zarr"
    code, output, seconds = _weft_run(manifest, store, config_dir=site, timeout=JOB_WAIT_S)
    assert code == 0, output
    assert f"slurm via dask-jobqueue, {slots + 1} job(s)" in output
    assert f"on {slots} worker(s)" in output, output  # the pending job never ran a worker
    assert "--device cuda was asked for" not in output
    assert pixels(store) == expected
    assert not _our_jobs("weft-e2e"), "closing the cluster cancels its jobs"
    print(f"weft run --cluster slurm: {seconds:.1f} s")


def test_sbatch_script_runs_the_manifest_and_matches_a_local_run(
    local: tuple[Path, dict[str, bytes]], tmp_path: Path, batch_jobs: list[str]
) -> None:
    manifest, expected = local
    store = tmp_path / "batch.zarr"
    job_id = _submit_batch_script(manifest, store, tmp_path, batch_jobs)
    seconds = _wait_gone(job_id, JOB_WAIT_S)
    log = (tmp_path / f"weft-{job_id}.out").read_text()
    assert _job_field(job_id, "JobState") == "COMPLETED", log
    assert _job_field(job_id, "ExitCode") == "0:0", log
    assert "weft-slurm: weft run exited with 0" in log and "weft-slurm: Dask cluster down" in log
    assert pixels(store) == expected
    assert not (store / LOCK_NAME).exists()
    print(f"sbatch scripts/weft-slurm.sbatch: {seconds:.1f} s in the queue")


def _submit_batch_script(manifest: Path, store: Path, folder: Path, batch_jobs: list[str]) -> str:
    """``sbatch scripts/weft-slurm.sbatch`` on CPU, on this node, everything on 127.0.0.1."""
    cpus = _cpus()
    env = _env(
        MANIFEST=str(manifest), STORE=str(store), WEFT_VENV=str(_venv()), WEFT_DEVICE="cpu",
        WEFT_CPU_WORKERS="2", WEFT_WORKDIR=str(folder / "dask"), WEFT_LOCAL_DIR=str(folder / "scratch"),
        WEFT_WAIT_S="120", WEFT_SCHEDULER_ARGS="--host 127.0.0.1 --dashboard-address :0",
        WEFT_RUN_ARGS=f"--config {manifest.parent / 'tiny.toml'}",
    )  # fmt: skip
    submitted = subprocess.run(
        ["sbatch", "--parsable", f"--partition={_partition()}", "--gres=none", f"--cpus-per-task={cpus}",
         "--mem=6G", "--time=00:15:00", f"--chdir={folder}", f"--output={folder}/weft-%j.out", "--export=ALL",
         str(SBATCH_SCRIPT)],
        capture_output=True, text=True, timeout=20, check=True, env=env,
    )  # fmt: skip
    job_id = submitted.stdout.strip().split(";")[0]  # "id" or "id;cluster"
    batch_jobs.append(job_id)
    return job_id


def test_refused_submission_is_one_error_with_sbatchs_message(
    manifest: Path, tmp_path: Path
) -> None:
    site = _site_config(tmp_path / "site", "weft-refused", queue="weft-no-such-partition")
    code, output, seconds = _weft_run(manifest, tmp_path / "s.zarr", config_dir=site, timeout=60)
    assert code == 1, output
    assert "error: sbatch refused the worker job" in output and "invalid partition" in output.lower(), output
    assert "Traceback" not in output, output
    assert seconds < 30, f"took {seconds:.1f} s"
    assert not (tmp_path / "s.zarr" / LOCK_NAME).exists()
    print(f"refused sbatch: exit 1 in {seconds:.1f} s")


def test_jobs_that_cannot_start_end_the_run_after_the_worker_timeout(
    manifest: Path, tmp_path: Path
) -> None:
    site = _site_config(tmp_path / "site", "weft-never", jobs=2, directives=("--begin=now+1hour",))
    code, output, seconds = _weft_run(
        manifest, tmp_path / "s.zarr", "--worker-timeout", "10", config_dir=site, timeout=90
    )  # fmt: skip
    assert code == 1, output
    assert "connected within 10 s (--worker-timeout)" in output, output
    assert "2 of 2 job(s) pending in the queue" in output and "BeginTime" in output, output
    assert seconds < 45, f"took {seconds:.1f} s"
    assert not _our_jobs("weft-never"), "the pending jobs are cancelled when weft gives up"
    print(f"worker timeout 10 s: exit 1 in {seconds:.1f} s")


def test_scancel_ends_the_batch_job_by_its_own_teardown(
    manifest: Path, tmp_path: Path, batch_jobs: list[str]
) -> None:
    store = tmp_path / "cancelled.zarr"
    job_id = _submit_batch_script(manifest, store, tmp_path, batch_jobs)
    log = tmp_path / f"weft-{job_id}.out"
    deadline = time.monotonic() + JOB_WAIT_S
    while not ((store / LOCK_NAME).exists() and "cluster: external scheduler" in _read(log)):
        assert time.monotonic() < deadline, f"weft run never started in job {job_id}:\n{_read(log)}"
        assert _ask("squeue", "-h", "-j", job_id, "-o", "%i"), f"job {job_id} ended early:\n{_read(log)}"
        time.sleep(0.2)
    subprocess.run(["scancel", job_id], timeout=20, check=True)
    seconds = _wait_gone(job_id, 90)
    kill_wait = int(re.search(r"KillWait\s*=\s*(\d+)", _ask("scontrol", "show", "config")).group(1))
    text = _read(log)
    assert _job_field(job_id, "JobState") == "CANCELLED"
    exit_code = _job_field(job_id, "ExitCode")  # "<status>:<signal>"; 0:9 is SLURM's SIGKILL after KillWait
    assert exit_code.endswith(":0"), f"job ended by signal ({exit_code}):\n{text}"
    assert "weft-slurm: weft run exited with" in text and "weft-slurm: Dask cluster down" in text, text
    assert seconds < kill_wait, f"{seconds:.1f} s, KillWait is {kill_wait} s"
    assert not (store / LOCK_NAME).exists(), "the store lock is released"
    print(f"scancel: job ended by its own teardown in {seconds:.1f} s (KillWait {kill_wait} s), exit {exit_code}")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""

"""``weft unlock STORE`` against real stale locks: a process that took the run lock and was
killed with SIGKILL (no cleanup ran), as when a run or its whole node is killed mid-way.

A holder that died on *this* host is taken over by the next run on its own; one that died
on another node cannot be checked from here, so the next run is refused and says to run
``weft unlock`` - which these tests exercise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.run import lock as run_lock
from pipeline.run import store
from pipeline.cli import app
from pipeline.errors import StoreError

OTHER_HOST = "weft-node-17"
HOLD_LOCK = """
import sys, time
from pipeline.run.lock import RunLock
lock = RunLock(sys.argv[1], command="weft run killed.toml")
lock.__enter__()
print("locked", flush=True)
time.sleep(120)
"""


def _on_other_host() -> list[str]:
    """A command prefix that runs under another host name (a UTS namespace), or [] if not allowed."""
    if not shutil.which("unshare"):
        return []
    prefix = ["unshare", "--uts", "sh", "-c", f'hostname {OTHER_HOST} && exec "$0" "$@"']
    try:
        probe = subprocess.run([*prefix, "hostname"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return prefix if probe.returncode == 0 and probe.stdout.strip() == OTHER_HOST else []


def _killed_holder(path: Path, prefix: list[str] = ()) -> int:
    """Take the store's lock in a subprocess, then SIGKILL it; returns its pid."""
    proc = subprocess.Popen([*prefix, sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@pytest.fixture
def weft_store(tmp_path: Path) -> Path:
    path = tmp_path / "catalogue.zarr"
    store.open_store(path, "a")
    return path


def test_run_killed_on_another_node_is_cleared_with_weft_unlock(weft_store: Path) -> None:
    prefix = _on_other_host()
    pid = _killed_holder(weft_store, prefix)
    if not prefix:  # no namespaces here: the lock a dead node leaves differs only in its host
        info = json.loads((weft_store / run_lock.LOCK_NAME).read_text())
        (weft_store / run_lock.LOCK_NAME).write_text(json.dumps({**info, "host": OTHER_HOST}))
    held = run_lock.lock_info(weft_store)
    assert held["pid"] == pid and held["host"] == OTHER_HOST  # SIGKILL: nothing cleaned up

    # the next run cannot tell whether that node still runs: refused, and told what to do
    with pytest.raises(StoreError, match=rf"host {OTHER_HOST}.*weft unlock {weft_store}"):
        with run_lock.RunLock(weft_store, command="weft run next.toml"):
            pass
    with pytest.raises(StoreError) as refused:  # once old enough, it is called stale
        with run_lock.RunLock(weft_store, command="weft run next.toml", stale_after_hours=0):
            pass
    message = str(refused.value)
    assert "stale" in message and f"weft unlock {weft_store}" in message and str(pid) in message

    result = CliRunner().invoke(app, ["unlock", str(weft_store)])
    assert result.exit_code == 0, result.output
    assert "removed the lock" in result.output
    assert str(pid) in result.output and OTHER_HOST in result.output and "killed.toml" in result.output
    assert run_lock.lock_info(weft_store) is None

    with run_lock.RunLock(weft_store, command="weft run next.toml") as lock:
        assert run_lock.lock_info(weft_store)["token"] == lock.info["token"]
    assert run_lock.lock_info(weft_store) is None

    again = CliRunner().invoke(app, ["unlock", str(weft_store)])
    assert again.exit_code == 0 and "no lock" in again.output


def test_run_killed_on_this_host_needs_no_unlock(weft_store: Path) -> None:
    pid = _killed_holder(weft_store)
    with run_lock.RunLock(weft_store, command="weft run next.toml") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == pid
    result = CliRunner().invoke(app, ["unlock", str(weft_store)])
    assert result.exit_code == 0 and "no lock" in result.output


def test_unlock_refuses_a_folder_that_is_not_a_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["unlock", str(tmp_path / "missing.zarr")])
    assert result.exit_code == 1

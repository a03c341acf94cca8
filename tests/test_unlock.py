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
    assert again.exit_code == 0 and "no lock on" in again.output
    assert run_lock.lock_info(weft_store) is None


def test_run_killed_on_this_host_needs_no_unlock(weft_store: Path) -> None:
    pid = _killed_holder(weft_store)
    with run_lock.RunLock(weft_store, command="weft run next.toml") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == pid
    result = CliRunner().invoke(app, ["unlock", str(weft_store)])
    assert result.exit_code == 0 and "no lock on" in result.output


def unlock(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``weft unlock PATH`` in this process; its output (stdout and stderr) on wide consoles, in one line."""
    import pipeline.cli as cli
    from rich.console import Console

    monkeypatch.setattr(cli, "out", Console(width=400))  # no wrapping inside long temporary paths
    monkeypatch.setattr(cli, "console", Console(stderr=True, width=400))
    result = CliRunner().invoke(app, ["unlock", str(path)])
    return result.exit_code, " ".join(result.output.split())


def test_unlock_removes_a_lock_and_says_whose_it_was(weft_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = {"pid": 4242, "host": OTHER_HOST, "started": "2026-11-24T02:00:00+00:00", "command": "weft run nightly.toml",
            "token": "f" * 32}  # fmt: skip
    (weft_store / run_lock.LOCK_NAME).write_text(json.dumps(lock))
    code, output = unlock(weft_store, monkeypatch)
    assert code == 0, output
    assert output == (
        f"removed the lock on {weft_store}: pid 4242 on host {OTHER_HOST}, started 2026-11-24T02:00:00+00:00, "
        "command: weft run nightly.toml"
    )
    assert not (weft_store / run_lock.LOCK_NAME).exists() and run_lock.lock_info(weft_store) is None
    assert (weft_store / "zarr.json").is_file()  # only the lock went

    code, output = unlock(weft_store, monkeypatch)  # nothing left to remove: said, and not an error
    assert (code, output) == (0, f"no lock on {weft_store}")


def test_unlock_refuses_a_folder_that_is_not_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.zarr"
    code, output = unlock(missing, monkeypatch)
    assert code == 1
    assert output.startswith(f"error: store {missing} does not exist")
    assert not missing.exists()  # not created either

    other = tmp_path / "photos"  # some other folder that happens to hold a file of the lock's name
    other.mkdir()
    (other / run_lock.LOCK_NAME).write_text("keep me")
    code, output = unlock(other, monkeypatch)
    assert code == 1
    assert output == f"error: {other} is not a weft store: it has no zarr.json"
    assert (other / run_lock.LOCK_NAME).read_text() == "keep me"

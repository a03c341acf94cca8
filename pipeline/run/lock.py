"""The run lock: one ``weft run`` writes a store at a time, and a dead run's lock does not block the next.

The lock is a plain JSON file in the store, created atomically; see :class:`RunLock` for how
a lock left by a dead run on this host is taken over and why other stale locks are not.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zarr

from pipeline.errors import StoreError
from pipeline.run.store import PathLike, open_store


LOCK_NAME = ".weft-lock"


#: A lock taken on another host cannot be checked for a live pid; after this long it is called stale.
STALE_AFTER_HOURS = 24.0


def lock_info(path: PathLike) -> dict[str, Any] | None:
    """The lock's content (pid, host, started, command), ``{}`` if unreadable, None if unlocked."""
    lock = Path(path) / LOCK_NAME
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, ValueError):
        return False
    return True


def _stale_reason(info: Mapping[str, Any], stale_after_hours: float) -> str | None:
    """Why a lock no longer protects anything, or None if its holder may still be running."""
    if not info or not isinstance(info.get("pid"), int):
        return "its lock file is unreadable (a run was probably killed while starting)"
    if info.get("host") == socket.gethostname():
        if not _pid_alive(info["pid"]):
            return f"pid {info['pid']} is no longer running on this host"
        return None
    try:
        started = datetime.fromisoformat(str(info.get("started")))
        age_hours = (datetime.now(UTC) - started).total_seconds() / 3600
    except (TypeError, ValueError):
        return "its start time is unreadable"
    if age_hours > stale_after_hours:
        return f"it was taken on another host {age_hours:.0f} hours ago (more than {stale_after_hours:g})"
    return None


def _describe_holder(info: Mapping[str, Any]) -> str:
    return (
        f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {info.get('started', '?')} "
        f"(command: {info.get('command', '?')})"
    )


class RunLock:
    """Exclusive right to write a store, held for one ``weft run`` (``with RunLock(path, cmd):``).

    The lock is a plain JSON file ``<store>/.weft-lock`` created atomically (hard link of a
    private temp file), so two runs can never both believe they hold it. A lock left by a run
    that died *on this host* (its pid is gone: a kill, an OOM, a reboot) is taken over, so
    the next night's run resumes by itself; :attr:`took_over` then holds what it said. Any
    other stale lock (another host, unreadable) is *not* guessed about: the error explains why
    it looks stale and how to clear it (``weft unlock STORE``, i.e. :func:`break_lock`).
    """

    def __init__(self, path: PathLike, command: str, *, stale_after_hours: float = STALE_AFTER_HOURS) -> None:
        self.path = Path(path)
        self.command = command
        self.stale_after_hours = stale_after_hours
        self.info: dict[str, Any] | None = None
        self.root: zarr.Group | None = None
        self.took_over: dict[str, Any] | None = None

    def __enter__(self) -> RunLock:
        self.root = open_store(self.path, "a")
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
            "token": uuid.uuid4().hex,
        }
        lock = self.path / LOCK_NAME
        temp = self.path / f"{LOCK_NAME}.{info['token']}.tmp"
        try:
            temp.write_text(json.dumps(info), encoding="utf-8")
            try:
                os.link(temp, lock)
            except FileExistsError:
                self._take_over_dead_holder(lock)
                try:
                    os.link(temp, lock)
                except FileExistsError:
                    raise self._refusal() from None
            except OSError:  # file systems without hard links: exclusive create instead
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(info))
        except FileExistsError:
            raise self._refusal() from None
        except OSError as error:
            raise StoreError(f"cannot lock store {self.path}: {error.strerror or error}") from None
        finally:
            temp.unlink(missing_ok=True)
        self.info = info
        return self

    def _take_over_dead_holder(self, lock: Path) -> None:
        """Move aside a lock whose holder died on this host (atomic rename: one contender wins)."""
        info = lock_info(self.path) or {}
        if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            return
        if _pid_alive(info["pid"]):
            return
        aside = self.path / f"{LOCK_NAME}.stale.{uuid.uuid4().hex}"
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            return  # another run took it over first; the retry will find its live lock
        aside.unlink(missing_ok=True)
        self.took_over = info

    def _refusal(self) -> StoreError:
        info = lock_info(self.path) or {}
        reason = _stale_reason(info, self.stale_after_hours)
        if reason is None:
            hint = "" if info.get("host") == socket.gethostname() else (
                f"; if that run is gone (its node died), clear the lock with `weft unlock {self.path}`"
            )
            return StoreError(f"store {self.path} is being written by {_describe_holder(info)}{hint}")
        return StoreError(
            f"store {self.path} has a stale lock: {reason} (held by {_describe_holder(info)}). "
            f"If no weft run uses this store, clear it with `weft unlock {self.path}` and run again; "
            "finished tiles are kept."
        )

    def __exit__(self, *exc: object) -> None:
        # Remove only our own lock: someone may have broken it and started another run.
        current = lock_info(self.path)
        if self.info and current and current.get("token") == self.info["token"]:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
        self.info = None


def break_lock(path: PathLike) -> dict[str, Any] | None:
    """Remove a store's run lock (``weft unlock``); returns what the lock said, None if there was none."""
    open_store(path, "r")  # only ever delete a lock file inside a weft store
    info = lock_info(path)
    if info is None:
        return None
    (Path(path) / LOCK_NAME).unlink(missing_ok=True)
    return info

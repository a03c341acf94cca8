"""Stopping a run cleanly: Ctrl-C and SIGTERM unwind like an exception, a full disk stops everything.

A batch scheduler's SIGTERM must release the store's lock (the next night's run may start on
another node), and a store that cannot be written at all is one clear error, not one failed
job after another.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.errors import StoreError


#: OS errors that mean the store cannot be written at all: they stop the run instead of failing jobs one by one.
STORE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


#: Exit status of a run stopped by SIGTERM (128 + 15, the shell's convention); Ctrl-C gives 130.
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit, ``scancel``, ``kill``): stop like Ctrl-C, exit 143."""


@contextmanager
def sigterm_stops_the_run() -> Iterator[None]:
    """While the run holds the store, SIGTERM unwinds it like Ctrl-C (lock released, cluster closed).

    Without this, a scheduler's SIGTERM would kill the run on the spot and leave its lock behind;
    on a shared file system the next night's run, on another node, would then be refused.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class IgnoreInterrupts(WorkerPlugin):
    """Worker plugin for the workers a run starts itself: Ctrl-C is the client's to handle.

    A Ctrl-C in a terminal reaches the whole process group; the workers would die with a
    traceback each while the client is closing them. They ignore SIGINT instead, and the
    client closes the cluster cleanly. (Never registered on someone else's workers.)
    """

    name = "weft-ignore-interrupts"

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def store_fault(path: Path | str, error: BaseException | None) -> StoreError | None:
    """A clear StoreError when ``error`` means the store cannot be written at all (disk full, read-only)."""
    if not isinstance(error, OSError) or error.errno not in STORE_FAULTS:
        return None
    reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
    return StoreError(
        f"cannot write to store {path}: {reason}. The run stopped; every tile marked done is complete. "
        "Free space (or make the store writable) and run the same command again to resume."
    )

"""A worker that is closing does not print a heartbeat traceback: the end of a run stays readable.

Dask's worker sends a heartbeat every second on its own connection. When the run ends and
the cluster closes its workers, a heartbeat that is already on the wire loses its connection
and the worker logs ``Failed to communicate with scheduler during heartbeat`` at ERROR, with
a 30-line traceback, on the run's terminal (dask/distributed#9032, #7192). Nothing failed:
the worker was asked to close. A person reading the night's output should not have to know
that, and the tests refuse any traceback in a run's output.

So on the workers a run starts itself, that one record is demoted to DEBUG while the worker
is closing. A heartbeat that fails while the worker runs is a real problem and still logs at
ERROR. (Never registered on someone else's workers.)
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

#: The start of the message Dask's worker logs when a heartbeat's connection breaks.
HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat"

#: Worker states in which a broken heartbeat is the expected end of the connection.
CLOSING = frozenset({Status.closing, Status.closing_gracefully, Status.closed})

#: The logger Dask's worker writes to.
WORKER_LOGGER = "distributed.worker"


class ClosingHeartbeat(logging.Filter):
    """Demote a failed heartbeat to DEBUG while ``worker`` is closing; pass every other record as it is."""

    def __init__(self, worker: Any) -> None:
        super().__init__()
        self._worker = weakref.ref(worker)  # the filter outlives no worker: it must not keep one alive

    def filter(self, record: logging.LogRecord) -> bool:
        worker = self._worker()
        if worker is None or record.levelno <= logging.DEBUG or getattr(worker, "status", None) not in CLOSING:
            return True
        if str(record.msg).startswith(HEARTBEAT_FAILED):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


class QuietClosing(WorkerPlugin):
    """Worker plugin: installs :class:`ClosingHeartbeat` on the worker's logger.

    Dask removes a worker's plugins as it starts closing, before it closes the connections the
    heartbeat is on; so the filter stays for a closing worker (its weak reference makes it inert
    once the worker is gone), and only an unregistered plugin on a running worker takes it away.
    """

    name = "weft-quiet-closing"

    def __init__(self) -> None:
        self._filter: ClosingHeartbeat | None = None

    def setup(self, worker: Any) -> None:
        self._filter = ClosingHeartbeat(worker)
        logging.getLogger(WORKER_LOGGER).addFilter(self._filter)

    def teardown(self, worker: Any) -> None:
        if self._filter is not None and getattr(worker, "status", None) not in CLOSING:
            logging.getLogger(WORKER_LOGGER).removeFilter(self._filter)
            self._filter = None

"""A closing worker's lost heartbeat is not an error; a running worker's still is.

The race is reproduced for real, in this process: a Dask scheduler and worker on TCP, the
scheduler's heartbeat handler held back so that a heartbeat is on the wire, and the worker
closed under it, which is what happens when a run's cluster closes at the end of the night.
Without :class:`QuietClosing` the worker logs the ERROR and traceback seen in CI; with it,
the record is still there, at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from distributed import Client, Scheduler, Worker

from pipeline.run.closing_noise import HEARTBEAT_FAILED, WORKER_LOGGER, ClosingHeartbeat, QuietClosing


class Records(logging.Handler):
    """Every record that reaches Dask's worker logger (Dask's own handlers do not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def heartbeats(self) -> list[str]:
        """``LEVEL`` of each failed-heartbeat record."""
        return [r.levelname for r in self.records if r.getMessage().startswith(HEARTBEAT_FAILED)]


@pytest.fixture
def worker_log() -> Iterator[Records]:
    logger = logging.getLogger(WORKER_LOGGER)
    handler, level, filters = Records(), logger.level, list(logger.filters)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
    for added in [f for f in logger.filters if f not in filters]:
        logger.removeFilter(added)


async def _lose_a_heartbeat(*, quiet: bool, closing: bool) -> None:
    """One heartbeat that fails: cut by the worker's own close (``closing``), or refused while it runs."""
    async with Scheduler(dashboard_address=":0") as scheduler:
        answer = scheduler.handlers["heartbeat_worker"]

        async def held_back(*args: object, **kwargs: object) -> object:
            await asyncio.sleep(5)  # the worker closes long before this
            return answer(*args, **kwargs)

        async def refused(*args: object, **kwargs: object) -> object:
            raise ConnectionResetError("the scheduler's side of the heartbeat broke")

        async with Worker(scheduler.address, nthreads=1) as worker:
            if quiet:
                async with Client(scheduler.address, asynchronous=True) as client:
                    await client.register_plugin(QuietClosing())
            scheduler.handlers["heartbeat_worker"] = held_back if closing else refused
            heartbeat = asyncio.ensure_future(worker.heartbeat())
            if closing:
                await asyncio.sleep(0.3)  # the request is on the wire, waiting for its answer
                await worker.close()
            await heartbeat
            scheduler.handlers["heartbeat_worker"] = answer


@pytest.mark.parametrize("quiet", [False, True], ids=["dask alone", "with QuietClosing"])
def test_a_heartbeat_cut_by_the_worker_closing_is_demoted_to_debug(worker_log: Records, quiet: bool) -> None:
    asyncio.run(_lose_a_heartbeat(quiet=quiet, closing=True))
    # without the plugin this is the ERROR (with its traceback) that CI printed at the end of a run
    assert worker_log.heartbeats() == (["DEBUG"] if quiet else ["ERROR"])


def test_a_heartbeat_that_fails_while_the_worker_runs_is_still_an_error(worker_log: Records) -> None:
    asyncio.run(_lose_a_heartbeat(quiet=True, closing=False))
    assert worker_log.heartbeats() == ["ERROR"]


def test_the_filter_lets_other_records_through_and_keeps_no_worker_alive() -> None:
    class Closing:
        from distributed.core import Status

        status = Status.closing

    worker = Closing()
    quiet = ClosingHeartbeat(worker)
    other = logging.LogRecord(WORKER_LOGGER, logging.ERROR, __file__, 1, "Compute Failed", None, None)
    assert quiet.filter(other) and other.levelname == "ERROR"
    del worker  # the filter holds a weak reference: a gone worker's filter passes records unchanged
    beat = logging.LogRecord(WORKER_LOGGER, logging.ERROR, __file__, 1, HEARTBEAT_FAILED + ".", None, None)
    assert quiet.filter(beat) and beat.levelname == "ERROR"

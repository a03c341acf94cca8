"""What a run reports while it goes, and where it goes: progress bars, plain log lines, JSON lines.

The run (:mod:`pipeline.run.execute`) only emits events; sinks show them:

- :class:`TerminalSink`: rich progress bars, with each finished or failed job printed above
  them (stdout is a terminal);
- :class:`PlainSink`: one plain line per event, starting with an ISO 8601 timestamp, no markup
  or colour (stdout is a log file or a pipe: a nightly run under a scheduler);
- :class:`JsonSink`: the same events as JSON lines, ``{"event", "time", ...fields}``, one per
  line, flushed per line (``weft run --log-json FILE``, for monitoring).

Events: ``run_started``, ``job_started``, ``job_skipped``, ``level_done``, ``job_done``,
``job_failed``, ``progress``, ``training`` (a house style's model: step, loss, ETA; live sinks
see each message, the others one per interval and the last) and ``run_finished``. ``progress`` (tiles done and total, rate,
ETA) reaches the terminal on every finished task and the other sinks every
:data:`PROGRESS_INTERVAL` seconds from a heartbeat thread (a line even while one long tile
computes), plus once when the last task settles.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipeline.console import print_errors
from pipeline.errors import WeftError

#: Seconds between two progress lines in a log (the terminal's bars move on every task).
PROGRESS_INTERVAL = 30.0
#: Environment variable that overrides :data:`PROGRESS_INTERVAL` (seconds; tests use a fraction).
PROGRESS_INTERVAL_ENV = "WEFT_PROGRESS_INTERVAL"


def progress_interval() -> float:
    """:data:`PROGRESS_INTERVAL`, or ``$WEFT_PROGRESS_INTERVAL`` when that is a positive number."""
    value = os.environ.get(PROGRESS_INTERVAL_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return PROGRESS_INTERVAL
    return seconds if seconds > 0 else PROGRESS_INTERVAL


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, as in the store's timings and the lock."""
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run: its name, when, and its figures (plain JSON values)."""

    name: str
    time: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"event": self.name, "time": timestamp(self.time), **self.fields}


class EventSink(Protocol):
    """Where events go. ``live`` sinks get every ``progress`` event, the others one per interval."""

    live: bool

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


# --- plain lines -------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """'0:01:05', or '?' when unknown."""
    if seconds is None:
        return "?"
    return str(timedelta(seconds=round(seconds)))


def _figure(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _many(n: int, word: str) -> str:
    """'1 tile', '4 tiles'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no jobs"


def _run_started(f: Mapping[str, Any]) -> str:
    return (
        f"run started: {f['command']} (pid {f['pid']} on {f['host']}); {f['jobs']} job(s): {f['to_run']} to run, "
        f"{f['skipped']} already done, {f['failing']} failing; store {f['store']}"
    )


def _job_started(f: Mapping[str, Any]) -> str:
    levels, tiles = _many(f["levels"], "level"), _many(f["tiles"], "tile")
    return f"job started: {f['job']} ({f['size']}, {levels}, {tiles}, {f['state']})"


def _level_done(f: Mapping[str, Any]) -> str:
    return f"level done: {f['job']} level {f['level']} {f['size']}, {_many(f['tiles'], 'tile')}"


def _job_done(f: Mapping[str, Any]) -> str:
    return (
        f"job done: {f['job']} in {f['seconds']:.1f} s, repeat seam {_figure(f.get('repeat_seam'))}, "
        f"tile seam max {_figure(f.get('tile_seam_max'))}"
    )


def _progress(f: Mapping[str, Any]) -> str:
    total = f["tiles_total"]
    percent = 100 * f["tiles_done"] / total if total else 100.0
    return (
        f"progress: {f['tiles_done']}/{total} tiles ({percent:.0f}%), {f['jobs_done']}/{f['jobs_total']} jobs, "
        f"{f['rate']:.1f} tiles/min, ETA {duration(f['eta_seconds'])}, elapsed {duration(f['elapsed_seconds'])}"
    )


def training_eta(f: Mapping[str, Any]) -> float | None:
    """Seconds a training has left, from its pace so far (None before the first step)."""
    step, steps, seconds = f["step"], f["steps"], f["seconds"]
    return seconds / step * (steps - step) if step else None


def _training(f: Mapping[str, Any]) -> str:
    return (
        f"training: {f['model']} step {f['step']}/{f['steps']}, loss {f['loss']:.4g}, "
        f"elapsed {duration(f['seconds'])}, ETA {duration(training_eta(f))}"
    )


def _run_finished(f: Mapping[str, Any]) -> str:
    return f"run finished: exit {f['exit_code']} after {f['seconds']:.1f} s; {_counts(f['counts'])}"


_LINES = {
    "run_started": _run_started,
    "job_started": _job_started,
    "job_skipped": lambda f: f"job skipped: {f['job']} (already done)",
    "level_done": _level_done,
    "job_done": _job_done,
    "job_failed": lambda f: f"job failed: {f['job']}: {f['error']}",
    "progress": _progress,
    "training": _training,
    "run_finished": _run_finished,
}


def plain_lines(event: Event) -> list[str]:
    """The event as plain lines, each starting with its timestamp; a multi-line error keeps every line."""
    describe = _LINES.get(event.name)
    if describe is None:
        text = " ".join([event.name, *(f"{key}={value}" for key, value in event.fields.items())])
    else:
        text = describe(event.fields)
    first, *more = str(text).splitlines() or [""]
    stamp = timestamp(event.time)
    return [f"{stamp} {first}", *(f"{stamp}     {line}" for line in more)]


class PlainSink:
    """One plain line per event on a console (its lock keeps lines whole beside other output)."""

    live = False

    def __init__(self, console: Console) -> None:
        self.console = console

    def handle(self, event: Event) -> None:
        for line in plain_lines(event):
            self.console.out(line, highlight=False)  # no markup, no wrapping, no cropping

    def close(self) -> None:
        pass


# --- JSON lines --------------------------------------------------------------------------------


class JsonSink:
    """The events as JSON lines, appended to ``path`` and flushed after each line."""

    live = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file: TextIO | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise WeftError(f"--log-json {self.path}: cannot write: {error.strerror or error}") from None

    def handle(self, event: Event) -> None:
        if self.file is None:
            return
        try:
            self.file.write(json.dumps(event.as_json(), default=str) + "\n")
            self.file.flush()
        except OSError as error:  # the log's disk filled up: say so once, the run goes on
            reason = error.strerror or error
            print(f"warning: --log-json {self.path}: cannot write ({reason}); stopped", file=sys.stderr)
            self.close()

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


# --- terminal ----------------------------------------------------------------------------------


class TerminalSink:
    """Rich progress bars (tiles, jobs) while tasks run; finished and failed jobs printed above them."""

    live = True

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars: Progress | None = None
        self.tiles_bar: Any = None
        self.jobs_bar: Any = None
        self.training_bars: dict[str, Any] = {}

    def handle(self, event: Event) -> None:
        f = event.fields
        if event.name == "progress":
            self._show(f)
            if f.get("final"):
                self.close()
        elif event.name == "job_done":
            self.console.print(f"[green]done[/] {escape(_job_done(f).removeprefix('job done: '))}", highlight=False)
        elif event.name == "job_failed":
            print_errors(self.console, [(f["job"], f["error"])])
        elif event.name == "training":
            self._show_training(f)

    def _show_training(self, f: Mapping[str, Any]) -> None:
        bars = self._bars()
        if f["model"] not in self.training_bars:
            self.training_bars[f["model"]] = bars.add_task(f"training {f['model']}", total=f["steps"])
        bars.update(self.training_bars[f["model"]], completed=f["step"])

    def _bars(self) -> Progress:
        if self.bars is None:
            self.bars = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bars.start()
            self.training_bars = {}
        return self.bars

    def _show(self, f: Mapping[str, Any]) -> None:
        if self.tiles_bar is None:
            bars = self._bars()
            self.tiles_bar = bars.add_task("tiles", total=f["tiles_total"])
            self.jobs_bar = bars.add_task("jobs", total=f["jobs_total"])
        assert self.bars is not None
        self.bars.update(self.tiles_bar, completed=f["tiles_done"])
        self.bars.update(self.jobs_bar, completed=f["jobs_done"])

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None
            self.tiles_bar = self.jobs_bar = None


# --- the run's events --------------------------------------------------------------------------


class RunEvents:
    """Stamps events and hands them to every sink; counts progress and sends it on a heartbeat.

    Thread-safe: the heartbeat thread and the run's own thread both emit.
    """

    def __init__(self, sinks: Sequence[EventSink], interval: float | None = None) -> None:
        self.sinks = list(sinks)
        self.interval = progress_interval() if interval is None else interval
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self.tiles_done = self.tiles_total = self.jobs_done = self.jobs_total = 0
        self._training_shown: dict[str, float] = {}

    def emit(self, name: str, **fields: Any) -> None:
        self._send(Event(name, now(), fields))

    def _send(self, event: Event, *, live_only: bool = False, quiet_only: bool = False) -> None:
        with self._lock:
            for sink in self.sinks:
                if (live_only and not sink.live) or (quiet_only and sink.live):
                    continue
                sink.handle(event)

    def progress_fields(self) -> dict[str, Any]:
        """Tiles done and total, jobs, rate (tiles per minute of this run) and ETA in seconds."""
        with self._lock:
            elapsed = time.monotonic() - self._started
            rate = self.tiles_done / (elapsed / 60) if elapsed > 0 else 0.0
            left = self.tiles_total - self.tiles_done
            eta = left / rate * 60 if rate > 0 else (0.0 if left <= 0 else None)
            return {
                "tiles_done": self.tiles_done,
                "tiles_total": self.tiles_total,
                "jobs_done": self.jobs_done,
                "jobs_total": self.jobs_total,
                "rate": round(rate, 2),
                "eta_seconds": None if eta is None else round(eta, 1),
                "elapsed_seconds": round(elapsed, 1),
            }

    @contextmanager
    def tracking(self, tiles_total: int, jobs_total: int) -> Iterator[RunEvents]:
        """While tasks run: live sinks see every :meth:`advance`, the others a heartbeat; a last line at the end."""
        with self._lock:
            self._started = time.monotonic()
            self.tiles_done, self.tiles_total, self.jobs_done, self.jobs_total = 0, tiles_total, 0, jobs_total
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.interval):
                self._send(Event("progress", now(), self.progress_fields()), quiet_only=True)

        self._send(Event("progress", now(), self.progress_fields()), live_only=True)
        heartbeat = threading.Thread(target=beat, name="weft-progress", daemon=True)
        heartbeat.start()
        try:
            yield self
        finally:
            stop.set()
            heartbeat.join()
            self._send(Event("progress", now(), {**self.progress_fields(), "final": True}))

    def training(self, **fields: Any) -> None:
        """A training's progress: live sinks see every message, the others one per interval and the last."""
        with self._lock:
            model = fields["model"]
            moment = time.monotonic()
            last = self._training_shown.get(model)
            self._send(Event("training", now(), fields), live_only=True)
            if last is None or moment - last >= self.interval or fields["step"] >= fields["steps"]:
                self._training_shown[model] = moment
                self._send(Event("training", now(), fields), quiet_only=True)

    def advance(self, *, tiles: int = 0, jobs: int = 0) -> None:
        """Count finished tiles and jobs; live sinks (the progress bars) see it at once."""
        with self._lock:
            self.tiles_done += tiles
            self.jobs_done += jobs
            self._send(Event("progress", now(), self.progress_fields()), live_only=True)

    def close(self) -> None:
        with self._lock:
            for sink in self.sinks:
                sink.close()


def sinks_for(console: Console, log_json: Path | None = None) -> list[EventSink]:
    """Progress bars on a terminal, plain lines anywhere else; JSON lines too with ``--log-json``."""
    sinks: list[EventSink] = [TerminalSink(console) if console.is_terminal else PlainSink(console)]
    if log_json is not None:
        sinks.append(JsonSink(log_json))
    return sinks


@contextmanager
def run_events(console: Console, log_json: Path | None = None) -> Iterator[RunEvents]:
    """The events of one run, shown on ``console`` (and written to ``log_json``); closed at the end."""
    events = RunEvents(sinks_for(console, log_json))
    try:
        yield events
    finally:
        events.close()

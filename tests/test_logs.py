"""Nightly logs: plain event lines and JSON lines from ``weft run``, tables never cut, runs recorded.

The sinks and the run record are tested on their own (fast); one end-to-end test runs the real
``weft run`` with stdout a pipe, as a scheduler would, on a valid job and a broken one.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pipeline_helpers import WEFT, write_manifest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.console import LOG_WIDTH, LogConsole
from pipeline.conventions import JobStatus
from pipeline.errors import StoreError, WeftError
from pipeline.run import events as run_events
from pipeline.run import journal, store
from pipeline.run.events import (
    Event,
    JsonSink,
    PlainSink,
    RunEvents,
    TerminalSink,
    plain_lines,
)
from pipeline.run.lock import RunLock
from pipeline.run.outcome import JobOutcome, RunResult
from pipeline.run.summary import print_summary

MOMENT = datetime(2026, 3, 1, 21, 0, 5, tzinfo=UTC)
STAMP = "2026-03-01T21:00:05+00:00"
LONG_ID = "spring-collection-customer-artwork-strawberry-field-colourway-3-rejected-scan"
LONG_DESIGN = "designs/studio-archive-2026-spring/customer-supplied-artwork-do-not-resize-strawberry-field.png"
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ")


class Recorder:
    """A sink that keeps what it is given."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.events: list[Event] = []
        self.closed = False

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


# --- plain lines ---------------------------------------------------------------------------------


def test_plain_lines_of_each_event() -> None:
    lines = {
        "run_started": dict(command="weft run n.toml --store s.zarr", pid=42, host="gpu-3", store="s.zarr",
                            manifest="n.toml", jobs=3, to_run=2, skipped=1, failing=0),
        "job_started": dict(job="rose", size="512x512", levels=3, tiles=21, state="new"),
        "level_done": dict(job="rose", level=0, size="64x64", tiles=1),
        "job_done": dict(job="rose", seconds=12.34, repeat_seam=1.0123, tile_seam_max=None),
        "progress": dict(tiles_done=3, tiles_total=12, jobs_done=1, jobs_total=2, rate=4.5, eta_seconds=120.0,
                         elapsed_seconds=40.0),
        "run_finished": dict(exit_code=1, seconds=61.25, counts={"done": 2, "failed": 1}),
    }  # fmt: skip
    text = {name: plain_lines(Event(name, MOMENT, fields)) for name, fields in lines.items()}
    assert text["run_started"] == [
        f"{STAMP} run started: weft run n.toml --store s.zarr (pid 42 on gpu-3); 3 job(s): 2 to run, "
        "1 already done, 0 failing; store s.zarr"
    ]
    assert text["job_started"] == [f"{STAMP} job started: rose (512x512, 3 levels, 21 tiles, new)"]
    assert text["level_done"] == [f"{STAMP} level done: rose level 0 64x64, 1 tile"]
    assert text["job_done"] == [f"{STAMP} job done: rose in 12.3 s, repeat seam 1.012, tile seam max -"]
    assert text["progress"] == [
        f"{STAMP} progress: 3/12 tiles (25%), 1/2 jobs, 4.5 tiles/min, ETA 0:02:00, elapsed 0:00:40"
    ]
    assert text["run_finished"] == [f"{STAMP} run finished: exit 1 after 61.2 s; 2 done, 1 failed"]
    unknown = plain_lines(Event("cluster_lost", MOMENT, {"workers": 0}))
    assert unknown == [f"{STAMP} cluster_lost workers=0"]


def test_a_failed_job_keeps_its_id_and_every_line_of_its_error() -> None:
    error = f"/data/nightly/{LONG_DESIGN}: cannot decode (truncated or corrupt file?)\n[limits] second [bold]line[/]"
    lines = plain_lines(Event("job_failed", MOMENT, {"job": LONG_ID, "error": error}))
    assert lines == [
        f"{STAMP} job failed: {LONG_ID}: /data/nightly/{LONG_DESIGN}: cannot decode (truncated or corrupt file?)",
        f"{STAMP}     [limits] second [bold]line[/]",
    ]
    buffer = io.StringIO()
    PlainSink(LogConsole(file=buffer)).handle(Event("job_failed", MOMENT, {"job": LONG_ID, "error": error}))
    assert buffer.getvalue() == "\n".join(lines) + "\n", "plain text: no markup, colour, wrapping or cropping"


def test_json_lines_are_flushed_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    sink = JsonSink(path)
    sink.handle(Event("job_failed", MOMENT, {"job": LONG_ID, "error": "a\nb"}))
    first = path.read_text(encoding="utf-8")  # before close: written and flushed already
    assert json.loads(first) == {"event": "job_failed", "time": STAMP, "job": LONG_ID, "error": "a\nb"}
    sink.handle(Event("progress", MOMENT, {"tiles_done": 1, "eta_seconds": None, "path": Path("/x")}))
    sink.close()
    sink.handle(Event("ignored", MOMENT))  # after close: nothing, no error
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records] == ["job_failed", "progress"]
    assert records[1] == {"event": "progress", "time": STAMP, "tiles_done": 1, "eta_seconds": None, "path": "/x"}
    JsonSink(path).close()  # appends: a second run keeps the first run's lines
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_json_log_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(WeftError, match="--log-json"):
        JsonSink(tmp_path / "file" / "events.jsonl")


def test_progress_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("0.25", 0.25), ("", 30.0), ("soon", 30.0), ("-1", 30.0)):
        monkeypatch.setenv(run_events.PROGRESS_INTERVAL_ENV, value)
        assert run_events.progress_interval() == expected
    assert run_events.PROGRESS_INTERVAL == 30.0


def test_progress_reaches_live_sinks_at_once_and_logs_on_a_heartbeat() -> None:
    live, quiet = Recorder(live=True), Recorder(live=False)
    events = RunEvents([live, quiet], interval=0.05)
    with events.tracking(tiles_total=4, jobs_total=1):
        events.advance(tiles=1)
        time.sleep(0.3)  # no task finishes: the log still gets progress lines
        events.advance(tiles=3, jobs=1)
    events.emit("run_finished", exit_code=0, seconds=0.4, counts={"done": 1})
    events.close()
    assert live.closed and quiet.closed
    live_progress = [e.fields for e in live.events if e.name == "progress"]
    assert [f["tiles_done"] for f in live_progress] == [0, 1, 4, 4] and live_progress[-1]["final"]
    beats = [e.fields for e in quiet.events if e.name == "progress"]
    assert len(beats) >= 3 and all(f["tiles_done"] == 1 for f in beats[:-1])
    assert beats[-1] == {**beats[-1], "tiles_done": 4, "jobs_done": 1, "eta_seconds": 0.0, "final": True}
    assert beats[0]["rate"] > 0 and beats[0]["eta_seconds"] > 0 and beats[0]["tiles_total"] == 4
    assert quiet.events[-1].name == "run_finished"


def test_terminal_sink_draws_bars_and_prints_failures_in_full() -> None:
    buffer = io.StringIO()
    sink = TerminalSink(Console(file=buffer, force_terminal=True, width=60))
    progress = dict(tiles_done=0, tiles_total=4, jobs_done=0, jobs_total=2)
    sink.handle(Event("progress", MOMENT, progress))
    assert sink.bars is not None
    sink.handle(Event("job_failed", MOMENT, {"job": LONG_ID, "error": "boom"}))
    sink.handle(Event("progress", MOMENT, {**progress, "tiles_done": 4, "jobs_done": 2, "final": True}))
    assert sink.bars is None
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue()).replace("\n", "")
    assert f"failed {LONG_ID}: boom" in plain and "tiles" in plain and "4/4" in plain


def test_sinks_follow_the_console() -> None:
    tty = run_events.sinks_for(Console(file=io.StringIO(), force_terminal=True))
    log = run_events.sinks_for(LogConsole(file=io.StringIO()))
    assert [type(s) for s in tty] == [TerminalSink] and [type(s) for s in log] == [PlainSink]


# --- tables at full width --------------------------------------------------------------------------


def test_a_log_console_never_cuts_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a scheduler's environment often says
    buffer = io.StringIO()
    console = LogConsole(file=buffer)
    assert not console.is_terminal and console.width == LOG_WIDTH
    assert LogConsole(file=io.StringIO(), width=100).width == 100
    table = Table("job", "error")
    table.add_row(LONG_ID, "x" * 500)
    console.print(table)
    assert LONG_ID in buffer.getvalue() and "x" * 500 in buffer.getvalue() and "…" not in buffer.getvalue()
    assert "\x1b[" not in buffer.getvalue()


def test_summary_prints_every_error_in_full_below_the_table() -> None:
    error = f"/data/{LONG_DESIGN}: not an image: the file contains text (job '{LONG_ID}')\nsecond line"
    outcomes = {"ok": JobOutcome(None, status=JobStatus.SKIPPED),
                LONG_ID: JobOutcome(None, status=JobStatus.FAILED, error=error)}  # fmt: skip
    wide, narrow = io.StringIO(), io.StringIO()
    print_summary(outcomes, LogConsole(file=wide))
    print_summary(outcomes, Console(file=narrow, width=60))  # a narrow terminal folds, never cuts
    for text in (wide.getvalue(), narrow.getvalue()):
        assert "…" not in text
    lines = wide.getvalue().splitlines()
    row = next(line for line in lines if line.startswith("│ " + LONG_ID))
    assert f"/data/{LONG_DESIGN}: not an image" in row, "the table row is whole"
    assert f"failed {LONG_ID}: {error.splitlines()[0]}" in lines and "  second line" in lines


# --- the run record ----------------------------------------------------------------------------------


def _fake_plan(path: Path) -> Any:
    return SimpleNamespace(store=path, manifest=SimpleNamespace(path=Path("n.toml")), to_run=())


@pytest.mark.parametrize(
    ("stop", "code"),
    [(None, 1), (KeyboardInterrupt(), 130), (SystemExit(143), 143), (StoreError("disk full"), 1)],
)
def test_every_run_is_recorded_however_it_ends(tmp_path: Path, stop: BaseException | None, code: int) -> None:
    path = tmp_path / "s.zarr"
    result = RunResult({"a": JobOutcome(None, status=JobStatus.FAILED, error="x"),
                        "b": JobOutcome(None, status=JobStatus.DONE)})  # fmt: skip
    seen = Recorder(live=False)
    events = RunEvents([seen])
    with RunLock(path, "weft run n.toml --store s.zarr") as lock:
        try:
            with journal.recorded(lock, events, _fake_plan(path), result):
                if stop is not None:
                    raise stop
        except BaseException as error:  # noqa: BLE001 - re-raised as given
            assert error is stop
    (record,) = store.run_records(path)
    assert record["exit_code"] == code and record["counts"] == {"done": 1, "failed": 1}
    assert record["command"] == "weft run n.toml --store s.zarr" and record["host"] and record["pid"] == os.getpid()
    assert record["started"] <= record["ended"]
    assert [e.name for e in seen.events] == ["run_started", "run_finished"]
    assert seen.events[-1].fields["exit_code"] == code


def test_run_records_keep_the_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = store.open_store(tmp_path / "s.zarr", "a")
    monkeypatch.setattr(store, "MAX_RUNS", 3)
    for number in range(5):
        store.record_run(root, {"exit_code": number})
    assert [r["exit_code"] for r in store.run_records(tmp_path / "s.zarr")] == [2, 3, 4]
    root.attrs["runs"] = ["not a record", {"exit_code": 0}]
    assert store.run_records(root) == [{"exit_code": 0}]


# --- end to end: `weft run > log` ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_nightly_log_says_everything_in_full(tmp_path: Path) -> None:
    """stdout a pipe: plain lines while it runs (progress included), ids and errors whole, JSON events,
    and the run recorded in the store, twice after two runs."""
    folder = tmp_path / "nightly"
    manifest = write_manifest(folder, {"tartan": ("designs/royal_stewart_sett.png", "kiss", "block"),
                                       LONG_ID: (LONG_DESIGN, "wave", "block")})  # fmt: skip
    (folder / LONG_DESIGN).parent.mkdir(parents=True)
    (folder / LONG_DESIGN).write_text("Strawberry field, colourway 3: see the studio's email of 14 March.\n")
    target, log_json = tmp_path / "out.zarr", tmp_path / "events.jsonl"
    command = [str(WEFT), "run", str(manifest), "--store", str(target), "--config", str(folder / "tiny.toml"),
               "--workers", "1", "--device", "cpu", "--log-json", str(log_json)]  # fmt: skip
    env = {**os.environ, "WEFT_PROGRESS_INTERVAL": "0.5", "COLUMNS": "80"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               text=True, env=env)  # fmt: skip
    assert process.stdout is not None
    lines, progress_while_running = [], []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if " progress: " in line and TIMESTAMPED.match(line):
            progress_while_running.append(process.poll() is None)
    assert process.wait(timeout=600) == 1
    output = "\n".join(lines)
    assert any(progress_while_running), output
    assert "\x1b[" not in output and "…" not in output, output
    events = [line for line in lines if TIMESTAMPED.match(line)]
    assert events[0].split(" ", 2)[1:] and " run started: " in events[0]
    assert " run finished: exit 1 " in events[-1] and events[-1] == lines[-1]
    assert any(" level done: tartan level 1 128x128, 4 tiles" in line for line in events)
    done = re.compile(r" job done: tartan in [\d.]+ s, repeat seam [\d.]+, tile seam max [\d.]+$")
    assert any(done.search(line) for line in events)
    reason = f"field 'design': '{LONG_DESIGN}': not an image: the file contains text"
    assert any(line.endswith(f" job failed: {LONG_ID}: {manifest}: job '{LONG_ID}': {reason}") for line in events)
    summary = lines[next(i for i, line in enumerate(lines) if line.startswith("summary")):]
    assert any(line.startswith(f"│ {LONG_ID} ") and reason in line for line in summary), "the summary row is whole"
    assert f"failed {LONG_ID}: {manifest}: job '{LONG_ID}': {reason}" in summary

    records = [json.loads(line) for line in log_json.read_text(encoding="utf-8").splitlines()]
    assert all({"event", "time"} <= set(r) for r in records)
    ends = [(r["event"], r["job"]) for r in records if r["event"] in {"job_done", "job_failed"}]
    assert sorted(ends) == sorted([("job_done", "tartan"), ("job_failed", LONG_ID)])
    assert reason in next(r["error"] for r in records if r["event"] == "job_failed")
    assert any(r["event"] == "progress" for r in records) and records[-1]["event"] == "run_finished"

    again = subprocess.run([*command[:-2], "--only", "tartan"], capture_output=True, text=True, env=env, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert " job skipped: tartan (already done)" in again.stdout
    shown = CliRunner().invoke(app, ["status", str(target), "--runs"])
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "weft run" in line]
    assert len(rows) == 2 and "1 done, 1 failed" in rows[0] and rows[0].rstrip().endswith("1")
    assert "1 skipped" in rows[1] and "--only tartan" in rows[1] and rows[1].rstrip().endswith("0")
    assert [r["exit_code"] for r in store.run_records(target)] == [1, 0]


def test_training_progress_shows_as_a_bar_and_as_log_lines_one_per_interval() -> None:
    """A training's messages: every one moves the terminal's bar; a log gets the first, one per interval, the last."""

    terminal, log = io.StringIO(), io.StringIO()
    events = RunEvents([TerminalSink(Console(file=terminal, force_terminal=True, width=100)),
                        PlainSink(LogConsole(file=log))], interval=3600)  # fmt: skip
    for step in (1, 2, 3, 10):
        events.training(model="wave-abc", step=step, steps=10, loss=1.5e7, seconds=2.0 * step)
    events.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "training: wave-abc step 1/10, loss 1.5e+07" in lines[0]
    assert "step 10/10" in lines[1] and "ETA 0:00:00" in lines[1]
    assert "ETA 0:00:18" in lines[0]  # 2 s a step, 9 steps to go
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "training wave-abc" in drawn and "10/10" in drawn

"""``weft status``: the table, its exit code, and how it reports problems (also through the CLI)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from store_fixtures import FixtureJob, make_finished_store
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.console import LogConsole
from pipeline.errors import StoreError
from pipeline.deliver.status import runs_command, shorten, status_command
from pipeline.run.lock import RunLock
from pipeline.run.store import record_run


def _status(store: Path, width: int = 200) -> tuple[int, str]:
    buffer = io.StringIO()
    code = status_command(store, console=Console(file=buffer, width=width))
    return code, buffer.getvalue()


def test_all_done_exits_0_with_sizes_times_and_seams(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path)
    code, output = _status(store)
    assert code == 0
    assert "rose" in output and "tulip" in output and "8/8" in output
    assert "96x64" in output and "0.8x0.5" in output and "12.5" in output and "1.01 / 1.04" in output
    assert "2 done" in output


def test_a_failed_job_exits_1_and_shows_its_error(tmp_path: Path) -> None:
    error = "ImageError: styles/wave.jpg: cannot identify image file\nTraceback (most recent call last): ..."
    jobs = [FixtureJob("ok"), FixtureJob("wave", status="failed", written=0.5, error=error),
            FixtureJob("next", status="pending", written=0)]  # fmt: skip
    store = make_finished_store(tmp_path, jobs)
    code, output = _status(store)
    assert code == 1
    assert "failed wave: ImageError: styles/wave.jpg: cannot identify image file" in output
    assert "Traceback" not in output, "only the first line of an error"
    assert "5/8" in output and "2/8" in output and "1 done, 1 pending, 1 failed" in output
    code, narrow = _status(store, width=80)
    assert "cannot identify image file" in narrow, "errors stay readable in a narrow terminal"


def test_empty_locked_missing_and_non_weft_stores(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [])
    assert _status(store) == (0, f"no jobs in {store}\n")
    with RunLock(store, "weft run demo.toml"):
        code, output = _status(store)
    assert code == 0 and "locked" in output and "written by pid" in output
    with pytest.raises(StoreError, match="does not exist"):
        _status(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.txt").write_text("x")
    with pytest.raises(StoreError, match="not a weft store"):
        _status(tmp_path / "plain")


def test_error_text_is_not_rich_markup(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [FixtureJob("x", status="failed", error="[limits] bad [/] [bold]y")])
    code, output = _status(store)
    assert code == 1 and "x: [limits] bad [/] [bold]y" in output


def test_shorten() -> None:
    assert shorten(None) == "" and shorten("a\nb") == "a"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten("x" * 100 + "\nmore", None) == "x" * 100


def test_without_a_terminal_ids_and_errors_are_never_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    job_id = "spring-collection-customer-artwork-strawberry-field-colourway-3-rejected-scan"
    error = "/data/designs/studio-archive-2026-spring/customer-supplied-artwork.png: cannot decode (truncated?)"
    store = make_finished_store(tmp_path, [FixtureJob("ok"), FixtureJob(job_id, status="failed", error=error)])
    buffer = io.StringIO()
    assert status_command(store, console=LogConsole(file=buffer)) == 1  # a log file, as a scheduler writes
    output = buffer.getvalue()
    assert "…" not in output
    row = next(line for line in output.splitlines() if line.strip().startswith(job_id))
    assert error in row, "the table row keeps the whole first line of the error"
    assert f"failed {job_id}: {error}" in output.splitlines()
    _, terminal = _status(store, width=80)
    assert f"failed {job_id}: " in terminal.replace("\n", "")


def test_runs_lists_every_recorded_run(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path)
    buffer = io.StringIO()
    assert runs_command(store, console=Console(file=buffer, width=200)) == 0
    assert buffer.getvalue() == f"no runs recorded in {store}\n"
    record_run(store, {"started": "2026-03-01T21:00:00+00:00", "ended": "2026-03-01T23:10:00+00:00", "host": "gpu-3",
                       "pid": 4242, "command": "weft run nightly.toml --store cat.zarr", "exit_code": 1,
                       "counts": {"done": 18, "failed": 2, "skipped": 0}})  # fmt: skip
    record_run(store, {"started": "2026-03-02T21:00:00+00:00", "ended": "2026-03-02T21:05:00+00:00", "host": "gpu-1",
                       "command": "weft run nightly.toml --store cat.zarr", "exit_code": 0,
                       "counts": {"done": 2, "skipped": 18}})  # fmt: skip
    result = CliRunner().invoke(app, ["status", str(store), "--runs"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if "weft run nightly.toml" in line]
    assert len(rows) == 2
    assert rows[0][:3] == ["2026-03-01T21:00:00+00:00", "2026-03-01T23:10:00+00:00", "gpu-3"]
    assert " ".join(rows[0][3:]) == "weft run nightly.toml --store cat.zarr 18 done, 2 failed 1"
    assert " ".join(rows[1][2:]) == "gpu-1 weft run nightly.toml --store cat.zarr 2 done, 18 skipped 0"
    header = next(line for line in result.output.splitlines() if line.strip().startswith("started"))
    assert header.split() == ["started", "ended", "host", "command", "jobs", "exit"]


def test_cli_status_export_report(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [FixtureJob("ok"), FixtureJob("bad", status="failed", error="boom")])
    runner = CliRunner()
    result = runner.invoke(app, ["status", str(store)])
    assert result.exit_code == 1 and "boom" in result.output
    result = runner.invoke(app, ["export", str(store), "ok", "--out", str(tmp_path / "out"), "--preview", "2x2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ok-repeat-2x2.tif", "ok.tif"]
    result = runner.invoke(app, ["report", str(store), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0 and (tmp_path / "r.html").is_file()
    assert "(2 job(s)" in " ".join(result.output.split())
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="job-ok"' in html and 'id="job-bad"' in html and "boom" in html
    result = runner.invoke(app, ["status", str(tmp_path / "missing.zarr")])
    assert result.exit_code == 1 and "does not exist" in " ".join(result.output.split())  # rich wraps lines

"""``weft status``: the table, its exit code, and how it reports problems (also through the CLI)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from store_fixtures import FixtureJob, make_finished_store
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import StoreError
from pipeline.deliver.status import shorten, status_command
from pipeline.run.store import RunLock


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

"""The frame figure next to the other seam figures: run summary and HTML report (issue 14)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from store_fixtures import FixtureJob, make_finished_store

from pipeline.conventions import JobStatus
from pipeline.deliver.report import report_command
from pipeline.run.outcome import JobOutcome
from pipeline.run.summary import print_summary


def test_the_summary_shows_the_frame_figure() -> None:
    outcomes = {
        "framed": JobOutcome(None, status=JobStatus.DONE, seams={"repeat": 0.306, "frame": 11.19}),
        "old": JobOutcome(None, status=JobStatus.DONE, seams={"repeat": 1.0}),  # finished before the metric
    }
    buffer = io.StringIO()
    print_summary(outcomes, Console(file=buffer, width=200))
    header, *rows = [line for line in buffer.getvalue().splitlines() if "│" in line or "┃" in line]
    assert "frame" in header
    framed = next(row for row in rows if "framed" in row)
    assert "11.19" in framed and "0.306" in framed


def test_the_report_shows_the_frame_figure_coloured_by_its_threshold(tmp_path: Path) -> None:
    jobs = [
        FixtureJob("framed", seams={"repeat": 0.31, "internal_max": 1.0, "frame": 11.19}),
        FixtureJob("clean", seams={"repeat": 1.0, "internal_max": 1.0, "frame": 0.9}),
    ]
    out = tmp_path / "report.html"
    report_command(make_finished_store(tmp_path, jobs), out, Console(file=io.StringIO()))
    html = out.read_text(encoding="utf-8")
    assert '<span class="warn">11.19</span>' in html and '<span class="ok">0.90</span>' in html
    assert "Frame</th>" in html or ">Frame<" in html
    assert 'data-seam-frame="11.19"' in html  # the table sorts by it

"""The HTML contact sheet: self-contained, every job, decodable images, escaped data, real browser."""

from __future__ import annotations

import base64
import importlib.util
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console
from store_fixtures import FixtureJob, demo_jobs, make_finished_store

from pipeline.errors import StoreError, WeftError
from pipeline.deliver.report import report_command

ROOT = Path(__file__).resolve().parent.parent


class _Page(HTMLParser):
    """Collects what the tests look at: images, links, scripts, element ids, section order."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.sections: list[str] = []
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attributes)
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self.sections.append(attributes.get("data-status", ""))
        if "id" in attributes:
            self.ids.append(attributes["id"])
        for key in ("src", "href"):
            value = attributes.get(key, "")
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FixtureJob]]:
    tmp = tmp_path_factory.mktemp("report")
    jobs = demo_jobs()
    jobs[3].error = "boom <script>alert('x')</script> & more"
    store = make_finished_store(tmp, jobs, pyramid=True)
    out = tmp / "site" / "report.html"
    report_command(store, out, Console(file=io.StringIO()))
    return out, jobs


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_every_image_is_an_embedded_decodable_picture(report: tuple[Path, list[FixtureJob]]) -> None:
    path, jobs = report
    page = _parse(path)
    finished = [job for job in jobs if job.status == "done"]
    styles = sum(len(job.styles) for job in jobs)
    assert len(page.images) == len(jobs) + styles + 2 * len(finished)  # design, styles, result + preview
    for image in page.images:
        assert image["alt"], "every picture says what it shows"
        header, _, payload = image["src"].partition(",")
        assert header == "data:image/jpeg;base64"
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as picture:
            picture.load()
            assert picture.width > 0 and picture.height > 0
    assert page.external == [], "nothing is fetched: the page opens offline"


def test_every_job_appears_grouped_failed_first(report: tuple[Path, list[FixtureJob]]) -> None:
    path, jobs = report
    page = _parse(path)
    for job in jobs:
        assert f"job-{job.job_id}" in page.ids
    assert page.sections == ["failed", "running", "done"]
    html = path.read_text(encoding="utf-8")
    assert "3 × 3 half-drop repeat" in html and "3 × 3 brick repeat" in html
    assert "Public domain (CC0 1.0)" in html and "Musée d&#x27;Art, Zürich" in html
    assert "3.3 × 2.2 cm at 300 dpi" in html and "2 min 23 s" in html


def test_attribute_text_is_escaped_never_run(report: tuple[Path, list[FixtureJob]]) -> None:
    path, _ = report
    html = path.read_text(encoding="utf-8")
    assert "boom &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert _parse(path).scripts == 1, "only the report's own sorting script"


def test_preview_of_a_half_drop_job_is_3_by_3_tiles(report: tuple[Path, list[FixtureJob]]) -> None:
    path, _ = report
    page = _parse(path)
    (preview,) = [i for i in page.images if i["alt"] == "3 by 3 repeat preview of chintz-rose"]
    with Image.open(io.BytesIO(base64.b64decode(preview["src"].partition(",")[2]))) as picture:
        width, height = picture.size
    assert width == 3 * 150 and height % 6 == 0, "three whole tiles each way, drop on a whole pixel"


def test_empty_store_missing_store_and_unwritable_output(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [])
    out = report_command(store, tmp_path / "empty.html", Console(file=io.StringIO()))
    assert "0 job(s)" in out.read_text(encoding="utf-8")
    with pytest.raises(StoreError, match="does not exist"):
        report_command(tmp_path / "missing.zarr", tmp_path / "r.html", Console(file=io.StringIO()))
    (tmp_path / "file").write_text("x")
    with pytest.raises(WeftError, match=r"cannot write report .*file/r\.html"):
        report_command(store, tmp_path / "file" / "r.html", Console(file=io.StringIO()))


def test_report_reads_results_without_a_pyramid(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [FixtureJob("big", width=600, height=400, core=128)])
    out = report_command(store, tmp_path / "r.html", Console(file=io.StringIO()))
    results = [i for i in _parse(out).images if i["alt"] == "result of big"]
    with Image.open(io.BytesIO(base64.b64decode(results[0]["src"].partition(",")[2]))) as picture:
        assert picture.size == (256, 171)


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    _screenshot_module().chromium_binary() is None, reason="no chromium binary (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium_without_broken_images(
    report: tuple[Path, list[FixtureJob]], tmp_path: Path
) -> None:
    path, jobs = report
    shots = _screenshot_module()
    assert shots.broken_images(path) == 0
    # the check itself works: a page with a broken image is caught
    broken = tmp_path / "broken.html"
    page = path.read_text(encoding="utf-8")
    broken.write_text(page.replace("data:image/jpeg;base64,", "data:image/jpeg;base64,AA", 1))
    assert shots.broken_images(broken) == 1
    # sorting works in the browser: click "Time" twice (descending), read the table's order back
    clicker = (
        "<script>window.addEventListener('load',function(){var th=document.querySelector('th[data-key=seconds]');"
        "th.click();th.click();document.documentElement.dataset.order=Array.prototype.map.call("
        "document.querySelectorAll('#jobs tbody tr'),function(r){return r.dataset.job;}).join(',');});</script>"
    )
    sorted_page = tmp_path / "sorted.html"
    sorted_page.write_text(page.replace("</body>", clicker + "</body>"))
    dom = shots._run(["--virtual-time-budget=5000", "--dump-dom", sorted_page.as_uri()], 60).stdout
    by_time = sorted((j for j in jobs if j.status in ("done", "failed")), key=lambda j: -j.seconds)
    expected = [j.job_id for j in by_time] + [j.job_id for j in jobs if j.status == "running"]
    assert f'data-order="{",".join(expected)}"' in dom
    png = shots.screenshot(path, tmp_path / "shot.png", size=(1000, 800))
    with Image.open(png) as picture:
        assert picture.size == (1000, 800)

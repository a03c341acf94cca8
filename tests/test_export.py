"""Print files (TIFF/PNG with dpi, ICC, provenance), repeat previews, and export's failure paths."""

from __future__ import annotations

import importlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image
from rich.console import Console
from store_fixtures import FixtureJob, coordinate_pattern, make_finished_store

from pipeline.errors import StoreError, WeftError
from pipeline.deliver.export import export_command, export_job, srgb_icc
from pipeline.deliver.preview import parse_grid, repeat_preview

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    jobs = [
        FixtureJob("rose", width=96, height=64, dpi=300, coordinates=True),
        FixtureJob("tulip", repeat="half-drop", width=80, height=48, core=32, dpi=150, coordinates=True),
        FixtureJob("wip", status="running", written=0.5),
        FixtureJob("broken", status="failed", written=0.2, error="ImageError: bad"),
    ]
    return make_finished_store(tmp_path_factory.mktemp("export"), jobs)


def _run(store: Path, out: Path, *job_ids: str, **options) -> tuple[int, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    code = export_command(store, job_ids=job_ids, out_dir=out, console=console, **{"fmt": "tiff", **options})
    return code, buffer.getvalue()


# --- TIFF ------------------------------------------------------------------------------------------


def test_tiff_pixels_dpi_icc_and_provenance(store: Path, tmp_path: Path) -> None:
    code, output = _run(store, tmp_path, "rose")
    assert code == 0 and "rose.tif" in output and "96 x 64 px at 300 dpi = 0.8 x 0.5 cm" in output
    path = tmp_path / "rose.tif"
    expected = coordinate_pattern(64, 96)
    np.testing.assert_array_equal(tifffile.imread(path), expected)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.is_tiled and page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.tags["XResolution"].value == (300, 1) and page.tags["ResolutionUnit"].value == 2  # inch
        assert page.tags["InterColorProfile"].value == srgb_icc()
        assert page.tags[34675].value == srgb_icc()
        record = json.loads(page.tags["ImageDescription"].value)
        xmp = page.tags[700].value
        artist, rights = page.tags["Artist"].value, page.tags["Copyright"].value
    assert record["job_id"] == "rose" and record["repeat"] == "block" and record["seed"] == 7
    assert len(record["job_key"]) == 64 and len(record["settings_digest"]) == 64
    assert record["design"]["path"] == "designs/rose.png" and len(record["design"]["sha256"]) == 64
    style = record["styles"][0]
    assert style["license"] == "Public domain (CC0 1.0)" and style["attribution"].startswith("Indigo study")
    assert "Musée" in style["attribution"], "JSON keeps non-ASCII text (escaped)"
    assert "Public domain" in rights and "Indigo study" in artist
    # XMP is well-formed and carries the same story
    tree = ET.fromstring(bytes(xmp).split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    text = ET.tostring(tree, encoding="unicode")
    assert "Musée d'Art, Zürich" in text and record["job_key"] in text and "designs/rose.png" in text
    # Pillow agrees on size, dpi and profile
    with Image.open(path) as image:
        assert image.size == (96, 64) and image.mode == "RGB"
        assert image.info["dpi"] == pytest.approx((300, 300))
        assert image.info["icc_profile"] == srgb_icc()
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_dpi_override_changes_physical_size(store: Path, tmp_path: Path) -> None:
    code, output = _run(store, tmp_path, "rose", dpi=96)
    assert code == 0 and "at 96 dpi = 2.5 x 1.7 cm" in output
    with tifffile.TiffFile(tmp_path / "rose.tif") as tif:
        assert tif.pages[0].tags["XResolution"].value == (96, 1)
        assert json.loads(tif.pages[0].tags["ImageDescription"].value)["dpi"] == 96


def test_srgb_profile_is_a_valid_icc_profile() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc()))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


# --- PNG -------------------------------------------------------------------------------------------


def test_png_pixels_dpi_icc_and_text(store: Path, tmp_path: Path) -> None:
    code, _ = _run(store, tmp_path, "tulip", fmt="png")
    assert code == 0
    with Image.open(tmp_path / "tulip.png") as image:
        image.load()
        assert image.size == (80, 48) and image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), coordinate_pattern(48, 80))
        assert image.info["dpi"] == pytest.approx((150, 150), abs=0.05)  # pHYs stores whole pixels per metre
        assert image.info["icc_profile"] == srgb_icc()
        text = image.text
    record = json.loads(text["weft:provenance"])
    assert record["repeat"] == "half-drop" and record["dpi"] == 150
    assert text["Copyright"].endswith("Public domain (CC0 1.0)")
    assert "Zürich" in text["Author"], "non-Latin-1 text goes into iTXt, Latin-1 survives either way"
    assert "job key" in text["Description"] and text["Source"] == "designs/tulip.png"
    assert "XML:com.adobe.xmp" in text


def test_png_of_a_wide_image_streams_in_several_bands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.deliver.export as export

    monkeypatch.setattr(export, "BAND_BYTES", 3 * 50 * 7)  # 7 rows per band
    store = make_finished_store(tmp_path, [FixtureJob("wide", width=50, height=40, core=16, coordinates=True)])
    bands_read: list[tuple[int, int, tuple[int, ...]]] = []
    real_bands = export._bands

    def spy(raster, rows, segment=None):
        for y0, x0, block in real_bands(raster, rows, segment):
            bands_read.append((y0, x0, block.shape))
            yield y0, x0, block

    monkeypatch.setattr(export, "_bands", spy)
    (path,) = export_job(store, "wide", tmp_path, fmt="png")
    # 40 rows in bands of 7 (never more than BAND_BYTES), each the full width: 6 reads, 5 + 1 short
    assert bands_read == [(y0, 0, (min(7, 40 - y0), 50, 3)) for y0 in range(0, 40, 7)]
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), coordinate_pattern(40, 50))


# --- repeat previews --------------------------------------------------------------------------------


def _place_copies(tile: np.ndarray, repeat: str, rows: int, cols: int) -> np.ndarray:
    """Reference layout, written independently of pipeline/repeat/gather.py: paste whole copies at lattice offsets."""
    h, w = tile.shape[:2]
    canvas = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i in range(-2, rows + 2):
        for j in range(-2, cols + 2):
            y = i * h + (j * (h // 2) if repeat == "half-drop" else 0)
            x = j * w + (i * (w // 2) if repeat == "brick" else 0)
            y0, x0 = max(y, 0), max(x, 0)
            y1, x1 = min(y + h, rows * h), min(x + w, cols * w)
            if y0 < y1 and x0 < x1:
                canvas[y0:y1, x0:x1] = tile[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


@pytest.mark.parametrize("repeat", ["block", "half-drop", "brick"])
def test_repeat_preview_places_copies_pixel_exact(repeat: str) -> None:
    tile = coordinate_pattern(10, 14)
    preview = repeat_preview(tile, repeat, 3, 4)
    assert preview.shape == (30, 56, 3)
    np.testing.assert_array_equal(preview, _place_copies(tile, repeat, 3, 4))


def test_half_drop_columns_drop_by_half_the_height() -> None:
    tile = coordinate_pattern(10, 14)
    preview = repeat_preview(tile, "half-drop", 2, 3)
    np.testing.assert_array_equal(preview[0:10, 0:14], tile)  # column 0 starts at the top
    np.testing.assert_array_equal(preview[5:15, 14:28], tile)  # column 1 drops by H/2
    np.testing.assert_array_equal(preview[10:20, 28:42], tile)  # column 2 drops by H
    np.testing.assert_array_equal(preview[0:5, 14:28], tile[5:10])  # the dropped copy above, cut


def test_exported_half_drop_preview_matches_geometry(store: Path, tmp_path: Path) -> None:
    code, output = _run(store, tmp_path, "tulip", preview="2x3")
    assert code == 0 and "tulip-repeat-2x3.tif" in output
    tile = coordinate_pattern(48, 80)
    written = tifffile.imread(tmp_path / "tulip-repeat-2x3.tif")
    np.testing.assert_array_equal(written, _place_copies(tile, "half-drop", 2, 3))
    with tifffile.TiffFile(tmp_path / "tulip-repeat-2x3.tif") as tif:
        assert json.loads(tif.pages[0].tags["ImageDescription"].value)["preview"] == "2x3"


def test_parse_grid() -> None:
    assert parse_grid("3x2") == (3, 2) and parse_grid(" 2 X 2 ") == (2, 2)
    for bad in ("3", "0x2", "2x99", "axb", ""):
        with pytest.raises(WeftError, match="expected ROWSxCOLS"):
            parse_grid(bad)


# --- selection and failure paths ---------------------------------------------------------------------


def test_default_exports_every_finished_job_and_skips_the_rest(store: Path, tmp_path: Path) -> None:
    code, output = _run(store, tmp_path)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rose.tif", "tulip.tif"], "no temp files left behind"
    assert "skipped wip: not finished (status running" in output and "skipped broken" in output


def test_named_unfinished_or_unknown_job_exits_1(store: Path, tmp_path: Path) -> None:
    code, output = _run(store, tmp_path, "wip", "rose")
    assert code == 1 and "skipped wip" in output and (tmp_path / "rose.tif").exists()
    code, output = _run(store, tmp_path, "nope")
    assert code == 1 and "unknown job 'nope'" in output and "jobs: broken, rose, tulip, wip" in output
    assert "nothing to export" in output
    with pytest.raises(WeftError, match="'wip' is not finished"):
        export_job(store, "wip", tmp_path)


def test_missing_and_non_weft_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        _run(tmp_path / "missing.zarr", tmp_path / "out")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("x")
    with pytest.raises(StoreError, match="not a weft store"):
        _run(tmp_path / "plain", tmp_path / "out")


def test_unwritable_output_folder(store: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WeftError, match=r"cannot create output folder .*file/out"):
        _run(store, blocker / "out", "rose")


def test_bad_preview_and_format_are_usage_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(WeftError, match="--preview '9'"):
        _run(store, tmp_path, "rose", preview="9")
    with pytest.raises(WeftError, match="unknown format 'jpeg'"):
        _run(store, tmp_path, "rose", fmt="jpeg")
    assert not list(tmp_path.iterdir())


# --- memory ----------------------------------------------------------------------------------------


def test_bench_export_memory_stays_far_below_the_image_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small run of the benchmark's export section (the 8192 figure is in docs/benchmarks.md)."""
    monkeypatch.syspath_prepend(str(ROOT))  # scripts.bench is not installed: import it from the checkout
    bench = importlib.import_module("scripts.bench.export")
    result = bench.bench_export(tmp_path, size=2048, formats=("tiff",))
    figures = result["tiff"]
    assert figures["tracemalloc_peak"] < 1.5 * result["image_bytes"]
    assert figures["rss_delta"] < 3 * result["image_bytes"]


def test_xmp_escapes_xml_special_characters(tmp_path: Path) -> None:
    """Attributions like 'Morris & Co. <1883>' must stay well-formed XML in the XMP packet."""
    import xml.dom.minidom

    from pipeline.deliver.export import provenance_record, xmp_packet

    store = make_finished_store(tmp_path, [FixtureJob("amp")])
    root = zarr.open_group(str(store), mode="r+")
    attrs = dict(root["jobs"]["amp"].attrs)
    attrs["inputs"]["styles"][0]["attribution"] = "Morris & Co. <1883>"
    packet = xmp_packet(provenance_record(attrs, dpi=300)).decode()
    document = xml.dom.minidom.parseString(packet)
    assert "Morris & Co. <1883>" in {node.firstChild.data for node in document.getElementsByTagName("rdf:li")}

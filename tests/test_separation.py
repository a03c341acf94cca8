"""Spot-colour separation, the print set and colourways, on real stores and read back with Pillow and tifffile."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
import tifffile
import zarr
from helpers_repeat import lattice_periodic_design
from PIL import Image
from store_fixtures import FixtureJob, write_job
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.deliver import separate as separate_module
from pipeline.deliver.export import srgb_icc
from pipeline.deliver.print_set import write_print_set
from pipeline.deliver.separate import min_area_px, recolour, remove_specks, separate_image, small_specks
from pipeline.deliver.separation_store import colourway_image, load_separation, separate_job
from pipeline.errors import WeftError
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import repeat_seam_relative, step_profile

WAYS = [
    {"name": "indigo", "colors": ["#f2e8cf", "#9db4c0", "#5c6b73", "#253237", "#1b2a49"]},
    {"name": "rust", "colors": ["#fdf0d5", "#e9c46a", "#f4a261", "#e76f51", "#6b2d0f"]},
]


@dataclass
class SpeckledJob(FixtureJob):
    """A job whose result is a colourful design exactly periodic under its repeat, with specks scattered in."""

    def image(self) -> np.ndarray:
        design = lattice_periodic_design(Repeat(self.repeat), self.width, self.height, seed=5)
        rng = np.random.default_rng(1)
        ys, xs = rng.integers(0, self.height, 60), rng.integers(0, self.width, 60)
        design[ys, xs] = rng.integers(0, 256, (60, 3))  # one-pixel specks of any colour
        return design


def make_store(tmp_path: Path, repeat: str = "block", *, colors: int = 5, ways: list | None = None) -> Path:
    store = tmp_path / f"sep-{repeat.replace('/', '_')}.zarr"
    write_job(store, SpeckledJob("motif", repeat=repeat, width=96, height=96, core=48, dpi=150))
    group = zarr.open_group(str(store / "jobs" / "motif"), mode="r+")
    group.attrs["settings"] = {**group.attrs["settings"], "colors": colors, "palette": "", "min_area_mm2": 0.0}
    group.attrs["colourways"] = WAYS if ways is None else ways
    return store


@pytest.fixture(scope="module")
def block_store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("block"))


def read_back(folder: Path) -> tuple[Image.Image, np.ndarray, list[np.ndarray]]:
    indexed = Image.open(folder / "motif-indexed.tif")
    index = np.asarray(indexed)
    separations = [tifffile.imread(p) for p in sorted(folder.glob("motif-sep-*.tif"))]
    return indexed, index, separations


def test_separation_is_deterministic_and_uses_exactly_n_colours(block_store, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_print_set(block_store, "motif", a)
    other = make_store(tmp_path)  # a second store of the same result
    write_print_set(other, "motif", b)
    for name in ("motif-indexed.tif", "motif-sep-01-" + sorted(p.name for p in a.glob("motif-sep-01-*"))[0][13:]):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    _, index, separations = read_back(a)
    assert len(separations) == 5 and sorted(np.unique(index)) == [0, 1, 2, 3, 4]


def test_every_pixel_is_in_one_separation_and_they_add_up_to_the_indexed_image(block_store, tmp_path):
    write_print_set(block_store, "motif", tmp_path)
    _, index, separations = read_back(tmp_path)
    stack = np.stack(separations).astype(np.int64)
    assert stack.dtype == np.int64 and set(np.unique(stack)) == {0, 1}
    assert (stack.sum(axis=0) == 1).all()
    np.testing.assert_array_equal((stack * np.arange(5)[:, None, None]).sum(axis=0), index)


def test_the_indexed_tiff_opens_in_pillow_and_tifffile_with_palette_dpi_and_icc(block_store, tmp_path):
    write_print_set(block_store, "motif", tmp_path)
    record = json.loads((tmp_path / "motif-palette.json").read_text())
    inks = [tuple(int(p["hex"][i : i + 2], 16) for i in (1, 3, 5)) for p in record["palette"]]
    image = Image.open(tmp_path / "motif-indexed.tif")
    assert image.mode == "P" and image.size == (96, 96)
    assert [tuple(image.getpalette()[3 * k : 3 * k + 3]) for k in range(5)] == inks
    assert image.info["dpi"] == (150, 150) and image.info["icc_profile"] == srgb_icc()
    with tifffile.TiffFile(tmp_path / "motif-indexed.tif") as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.PALETTE
        assert [tuple(int(v) // 257 for v in page.colormap[:, k]) for k in range(5)] == inks
        assert page.tags["XResolution"].value == (150, 1) and page.tags[34675].value == srgb_icc()
        provenance = json.loads(page.description)
    assert provenance["job_id"] == "motif" and provenance["separation"]["palette"] == record["palette"]
    film = Image.open(next(tmp_path.glob("motif-sep-01-*.tif")))
    assert film.mode == "1" and film.info["dpi"] == (150, 150)
    assert [p["coverage"] for p in record["palette"]] == pytest.approx(  # rounded to 6 places
        [float((np.asarray(image) == k).mean()) for k in range(5)], abs=1e-6
    )


def test_the_palette_is_recorded_in_the_store_and_reused_while_the_settings_hold(block_store, monkeypatch):
    sep, record = separate_job(block_store, "motif")
    attrs = zarr.open_group(str(block_store / "jobs" / "motif"), mode="r").attrs
    assert attrs["separation"]["palette"] == record["palette"] and len(record["palette"]) == 5
    stored, stored_record = load_separation(block_store, "motif")
    np.testing.assert_array_equal(stored.index, sep.index)

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr("pipeline.deliver.separation_store.separate_image", refuse)
    assert separate_job(block_store, "motif")[1]["key"] == stored_record["key"]
    with pytest.raises(AssertionError, match="recomputed"):
        separate_job(block_store, "motif", colors=4)  # other settings, other key


def test_a_given_palette_is_snapped_to_and_the_design_can_give_the_palette(tmp_path):
    store = make_store(tmp_path, ways=[])
    sep, record = separate_job(store, "motif", palette="#ffffff,#000000,#c03020")
    assert [ink.hex for ink in sep.inks] == ["#ffffff", "#000000", "#c03020"] and record["palette_from"] == "given"
    design = tmp_path / "designs" / "motif.png"
    design.parent.mkdir()
    Image.fromarray(lattice_periodic_design(Repeat.BLOCK, 64, 64, seed=9)).save(design)
    group = zarr.open_group(str(store / "jobs" / "motif"), mode="r+")
    group.attrs["inputs"] = {**group.attrs["inputs"], "design": {"path": str(design)}}
    from_design, record = separate_job(store, "motif", colors=3, palette="design")
    assert record["palette_from"] == "design" and len(from_design.inks) == 3
    ink_set = {ink.rgb for ink in from_design.inks}
    assert set(map(tuple, recolour(from_design.index, [i.rgb for i in from_design.inks]).reshape(-1, 3))) <= ink_set


@pytest.mark.parametrize("repeat", ["block", "half-drop", "brick", "drop-1/3", "brick-1/3"])
def test_speck_removal_wraps_across_the_repeat_and_keeps_it_seamless(tmp_path, repeat):
    image = SpeckledJob("motif", repeat=repeat, width=96, height=96).image()
    clean = separate_image(image, repeat, 5, min_area_mm2=0.2, dpi=150)
    limit = min_area_px(0.2, 150)
    assert limit == 7 and clean.min_area_px == 7
    # no component (joined across the wrap) below the limit survives: counted on the plane itself,
    # 3 x 3 tiles of it, where a component that crosses an edge lies whole around the centre tile
    plane = gather_window(clean.index, repeat, -96, -96, 288, 288)
    for colour in range(5):
        labels, _ = ndimage.label(plane == colour)
        area = np.bincount(labels.ravel())
        assert (area[np.unique(labels[96:192, 96:192])[1:]] >= limit).all()
    assert all(small_specks(clean.index, c, repeat, limit)[0].size == 0 for c in range(5))  # its own count agrees
    # the clean-up commutes with lattice shifts: no edge is treated differently from the inside
    palette = ",".join(ink.hex for ink in clean.inks)
    shifted = separate_image(gather_window(image, repeat, 37, 53, 96, 96), repeat, 0, palette=palette,
                             min_area_mm2=0.2, dpi=150)  # fmt: skip
    np.testing.assert_array_equal(shifted.index, gather_window(clean.index, repeat, 37, 53, 96, 96))
    raw = separate_image(image, repeat, 5, dpi=150)
    assert (raw.index != clean.index).sum() >= 40  # the specks were there, and are gone
    # and the seam metric agrees: the cleaned repeat boundary steps exactly like the interior line it
    # is in the shifted frame (x = 96 - 53, y = 96 - 37 there), so the clean-up drew no line along the
    # edge. (The boundary is one straight plane line across a whole period only along the axis the
    # drop does not shear: x for drops, y for bricks, both for block.)
    painted = recolour(clean.index, [ink.rgb for ink in clean.inks])
    moved = recolour(shifted.index, [ink.rgb for ink in shifted.inks])
    straight = {"block": ("x", "y"), "drop": ("x",), "brick": ("y",)}[Repeat(repeat).kind]
    for axis, inside in (a for a in (("x", 96 - 53), ("y", 96 - 37)) if a[0] in straight):
        assert step_profile(painted, repeat, axis)[0] == pytest.approx(step_profile(moved, repeat, axis)[inside])
    assert repeat_seam_relative(painted, repeat)["overall"].compared == 96


def test_a_speck_across_the_edge_is_one_component_with_its_other_half():
    index = np.zeros((20, 20), np.uint8)
    index[5:8, 18:20] = 1  # 6 px at the right edge ...
    index[5:8, 0:2] = 1  # ... and 6 px across the wrap: one 12 px component under block
    assert (remove_specks(index.copy(), "block", 10) == index).all()
    assert (remove_specks(index.copy(), "block", 13) == 0).all()
    # under half-drop the right edge meets the left edge 10 px lower: two 6 px specks
    assert (remove_specks(index.copy(), "half-drop", 10) == 0).all()


def test_a_colourway_changes_only_the_colours(block_store, tmp_path):
    sep, record = separate_job(block_store, "motif")
    assert record["colourways"] == WAYS
    files = write_print_set(block_store, "motif", tmp_path, colourways=True)
    assert {p.name for p in files} >= {"motif-colourway-indigo.tif", "motif-colourway-rust.tif"}
    original = recolour(sep.index, [ink.rgb for ink in sep.inks])
    for way in WAYS:
        painted = tifffile.imread(tmp_path / f"motif-colourway-{way['name']}.tif")
        np.testing.assert_array_equal(painted, colourway_image(sep, way))
        # the same pixels share a colour before and after: only the colours changed
        pairs = {(tuple(a), tuple(b)) for a, b in zip(original.reshape(-1, 3), painted.reshape(-1, 3))}
        assert len(pairs) == 5 == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_separation_mistakes_are_clear_errors(tmp_path):
    store = make_store(tmp_path, colors=0, ways=[])
    with pytest.raises(WeftError, match="how many colours"):
        separate_job(store, "motif")
    with pytest.raises(WeftError, match="colourway 'indigo' has 5 colours; this separation has 3"):
        separate_job(make_store(tmp_path / "w", colors=3), "motif")
    with pytest.raises(WeftError, match="the palette has 2 colours but 3 were asked for"):
        separate_image(np.zeros((8, 8, 3), np.uint8), "block", 3, palette="#000000,#ffffff")
    with pytest.raises(WeftError, match="only 1 distinct colours"):
        separate_image(np.zeros((8, 8, 3), np.uint8), "block", 3)
    unfinished = tmp_path / "u.zarr"
    write_job(unfinished, FixtureJob("motif", status="running", written=0.5))
    with pytest.raises(WeftError, match="not finished"):
        separate_job(unfinished, "motif", colors=3)


def test_weft_separate_and_export_separations_write_the_print_set(block_store, tmp_path):
    runner = CliRunner()
    out = tmp_path / "set"
    result = runner.invoke(app, ["separate", str(block_store), "motif", "--out", str(out), "--colors", "4",
                                 "--min-area-mm2", "0.2"])  # fmt: skip
    assert result.exit_code == 1, result.output  # the stored colourways have 5 colours
    assert "colourway 'indigo' has 5 colours; this separation has 4" in result.output
    result = runner.invoke(app, ["separate", str(block_store), "--out", str(out), "--palette-from", "design",
                                 "--palette", "#000000,#ffffff"])  # fmt: skip
    assert result.exit_code == 1 and "--palette or --palette-from, not both" in result.output
    result = runner.invoke(app, ["separate", str(block_store), "nope", "--out", str(out)])
    assert result.exit_code == 1 and "unknown job 'nope'" in result.output
    exported = tmp_path / "export"
    result = runner.invoke(app, ["export", str(block_store), "--out", str(exported), "--separations", "--colourways"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in exported.iterdir())
    assert "motif.tif" in names and "motif-indexed.tif" in names and "motif-swatches.png" in names
    assert len([n for n in names if n.startswith("motif-sep-")]) == 5
    assert len([n for n in names if n.startswith("motif-colourway-")]) == 2
    sheet = np.asarray(Image.open(exported / "motif-swatches.png"))
    assert sheet.shape[1] > 400 and len(np.unique(sheet.reshape(-1, 3), axis=0)) >= 5 + 5 * 2


def test_the_module_keeps_its_clustering_seedless():
    """Clustering must not depend on a random state: the start is the most frequent colour, then farthest-weighted."""
    pixels = np.repeat(np.array([[250, 250, 250], [10, 10, 10], [200, 30, 30], [30, 30, 200]], np.uint8), [50, 30, 10, 10], 0)
    assert separate_module.cluster_inks(pixels, 4) == [(250, 250, 250), (200, 30, 30), (30, 30, 200), (10, 10, 10)]


def test_the_report_shows_the_separation_and_every_colourway_with_swatches(tmp_path):
    import base64
    import io
    import re

    from pipeline.deliver.report import report_command

    store = make_store(tmp_path)
    html_file = report_command(store, tmp_path / "report.html")
    assert "Separations and colourways" not in html_file.read_text()  # nothing separated yet: nothing shown
    _, record = separate_job(store, "motif")
    text = report_command(store, tmp_path / "report.html").read_text()
    section = text[text.index('<section class="separations">') :]
    for ink in record["palette"]:
        assert ink["hex"] in section and f"{100 * ink['coverage']:.1f} %" in section
    for way in WAYS:
        assert f"colourway {way['name']}" in section and all(c in section for c in way["colors"])
    pictures = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', section.split("</section>")[0])
    assert len(pictures) == 1 + len(WAYS)
    for picture in pictures:
        assert Image.open(io.BytesIO(base64.b64decode(picture))).size == (96, 96)

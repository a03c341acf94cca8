"""From a photographed cloth to an exact repeat tile (issue 14): lattice, rotation, light, crop, frame.

The photos are synthetic, built from a known tile (tests/helpers_photos.py): each repeat type
tiled about 4 x 4 times, rotated by 1.5 degrees, with a vignette, on a grey mount with a cream
selvedge. What the search must find is known exactly.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from helpers_manifest import job, load_one, manifest, only_error
from helpers_photos import MOUNT_GREY, SELVEDGE_CREAM, cloth_design, photograph
from pipeline.cli import app
from pipeline.manifest.load import validate_manifest
from pipeline.repeat import extract
from pipeline.repeat.cloth import NO_LIGHT_CORRECTION
from pipeline.repeat.cloth_crop import ClothCrop
from pipeline.repeat.extract import NoRepeat, cut_tile, search_tile
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import FRAME_VISIBLE_ABOVE, SEAMLESS, frame_ratio, repeat_seam_ratio
from pipeline.repeat.tile_choice import choose_tile
from pipeline.run.plan import job_key

ROTATION = 1.5


#: The lattices every photo case runs under (a mirror is not searched for: docs/photographs.md; a third
#: drop has its own test below, on a 40 x 60 cell).
PHOTO_REPEATS = (Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK)


@pytest.fixture(scope="module", params=PHOTO_REPEATS, ids=lambda r: r.value)
def photo_case(request: pytest.FixtureRequest) -> tuple[Repeat, np.ndarray, object]:
    """(repeat, photo, finding) for a rotated, vignetted, mounted photo of each repeat type."""
    repeat = request.param
    photo = photograph(cloth_design(repeat), rotation_deg=ROTATION, vignette=0.3, mount=24, selvedge=14)
    return repeat, photo, search_tile(photo)


def test_the_lattice_type_period_and_rotation_are_found(photo_case) -> None:
    repeat, _, finding = photo_case
    assert not isinstance(finding, NoRepeat), finding
    assert finding.found.repeat is repeat
    assert finding.found.width == pytest.approx(72, rel=0.01)
    assert finding.found.height == pytest.approx(60, rel=0.01)
    assert abs(finding.reading.rotation_deg - ROTATION) < 0.3
    # in drop form a brick's lattice drops by half too (a brick W x H is a half-drop W/2 x 2H)
    assert finding.reading.drop_fraction == pytest.approx(0.5 if repeat is Repeat.BRICK else float(repeat.fraction), abs=0.02)
    assert finding.trusted


def test_the_cut_tile_is_seamless_without_a_frame(photo_case) -> None:
    repeat, photo, finding = photo_case
    tile = cut_tile(photo, finding.recipe)
    assert tile.shape == (60, 72, 3)
    assert repeat_seam_ratio(tile, repeat) <= SEAMLESS
    assert frame_ratio(tile, repeat) < FRAME_VISIBLE_ABOVE
    assert (finding.seam, finding.frame) == (repeat_seam_ratio(tile, repeat), frame_ratio(tile, repeat))


def test_the_cloth_excludes_the_mount_and_the_selvedge(photo_case) -> None:
    _, photo, finding = photo_case
    height, width = photo.shape[:2]
    cloth = finding.cloth
    assert cloth.width * cloth.height < 0.95 * width * height
    tile = cut_tile(photo, finding.recipe)
    grey = np.all(np.abs(tile.astype(int) - MOUNT_GREY) < 3, axis=-1)
    cream = np.all(np.abs(tile.astype(int) - SELVEDGE_CREAM) < 6, axis=-1)
    assert grey.mean() < 0.01 and cream.mean() < 0.01


def test_the_light_is_flattened_without_changing_colours(photo_case) -> None:
    """The vignette darkens the photo's corners by up to 30 %: a light correction is found, one gain for all channels."""
    repeat, photo, finding = photo_case
    assert not finding.recipe.light.flat
    lit = cut_tile(photo, finding.recipe).astype(np.float64).mean(axis=(0, 1))
    unlit = cut_tile(photo, replace(finding.recipe, light=NO_LIGHT_CORRECTION)).astype(np.float64).mean(axis=(0, 1))
    # one gain for all channels: the hue of the mean colour is kept
    assert np.allclose(lit / lit.sum(), unlit / unlit.sum(), atol=0.01)


def test_the_search_is_deterministic(photo_case) -> None:
    _, photo, finding = photo_case
    again = search_tile(photo.copy())
    assert again.record() == finding.record()
    assert cut_tile(photo, again.recipe).tobytes() == cut_tile(photo, finding.recipe).tobytes()


def test_a_rotation_the_other_way_is_measured_too() -> None:
    photo = photograph(cloth_design(Repeat.BLOCK, seed=4), rotation_deg=-2.5, mount=16)
    finding = search_tile(photo)
    assert abs(finding.reading.rotation_deg + 2.5) < 0.3


def test_a_third_drop_is_read_as_drop_one_third_on_one_cell() -> None:
    """Each column drops by H/3: the type is drop-1/3 (issue 15's fractional drops) on one cell, not a block
    three columns wide, and the tile is exact under it; asked for as block, the tile is three columns."""
    design = replace(cloth_design(Repeat.BLOCK, width=40, height=60, seed=6, blobs=10), drop=1 / 3)
    photo = photograph(design, repeats=(7.3, 4.2), rotation_deg=1.0, mount=16)
    finding = search_tile(photo)
    assert finding.reading.drop_fraction == pytest.approx(1 / 3, abs=0.01)
    assert finding.found.repeat is Repeat.THIRD_DROP
    assert (finding.found.width, finding.found.height) == (pytest.approx(40, rel=0.01), pytest.approx(60, rel=0.01))
    tile = cut_tile(photo, finding.recipe)
    assert tile.shape[0] % 3 == 0
    assert repeat_seam_ratio(tile, Repeat.THIRD_DROP) <= SEAMLESS
    assert frame_ratio(tile, Repeat.THIRD_DROP) < FRAME_VISIBLE_ABOVE
    as_block = search_tile(photo, Repeat.BLOCK)
    assert as_block.recipe.size[0] == pytest.approx(120, abs=2)
    assert repeat_seam_ratio(cut_tile(photo, as_block.recipe), Repeat.BLOCK) <= SEAMLESS


def test_the_frame_metric_sees_a_strip_of_mount() -> None:
    tile = cloth_design(Repeat.BLOCK).tile()
    framed = np.pad(tile, ((4, 4), (4, 4), (0, 0)), constant_values=128)
    assert frame_ratio(tile, Repeat.BLOCK) < FRAME_VISIBLE_ABOVE <= frame_ratio(framed, Repeat.BLOCK)
    # the whole photo as a tile (what issue 14 printed): seamless-looking join, a wide frame
    photo = photograph(cloth_design(Repeat.BLOCK), mount=24)
    assert frame_ratio(photo[: photo.shape[0] // 2 * 2, : photo.shape[1] // 2 * 2], Repeat.BLOCK) > 2 * FRAME_VISIBLE_ABOVE


def _single_motif() -> np.ndarray:
    """One flower on woven cream cloth on a plain grey mount: no repeat."""
    yy, xx = np.mgrid[0:240, 0:280]
    photo = np.zeros((240, 280, 3)) + MOUNT_GREY
    weave = np.random.default_rng(3).normal(0, 10, (200, 240, 1))  # the cloth's texture, which repeats nowhere
    photo[20:220, 20:260] = np.array((226, 216, 190)) + weave
    petals = np.cos(5 * np.arctan2(yy - 120, xx - 140)) * 20 + 60 > np.hypot(yy - 120, xx - 140)
    photo[petals] = (180, 40, 60)
    return photo.astype(np.uint8)


def test_a_single_motif_falls_back_to_knitting_the_cloth_with_a_warning() -> None:
    """No repeat: the cloth without its grey mount is what gets knitted (no frame of mount in the print)."""
    photo = _single_motif()
    choice = choose_tile(photo, "auto", None)
    assert isinstance(choice.finding, ClothCrop) and choice.error is None
    assert choice.warning is not None and "no repeat" in choice.warning and "knitted" in choice.warning
    crop = cut_tile(photo, choice.finding.recipe)
    assert crop.shape[:2] == (200, 240)  # the cream cloth, 20 px of mount gone on every side
    assert np.all(np.abs(crop.astype(int) - MOUNT_GREY) < 3, axis=-1).mean() == 0.0
    assert np.array_equal(crop, photo[20:220, 20:260])  # a plain crop copies pixels, it does not resample them


def test_a_design_without_repeat_or_mount_is_used_whole() -> None:
    """A gradient has no cloth to cut away: the design is used exactly as before crop_to_repeat existed."""
    yy, xx = np.mgrid[0:90, 0:120]
    ramp = np.stack([xx * 2, yy * 2, (xx + yy) % 256], axis=-1).astype(np.uint8)
    choice = choose_tile(ramp, "auto", None)
    assert choice.finding is None and choice.error is None


def test_one_repeating_axis_is_cut_to_one_period() -> None:
    """A panel that repeats down but not across: one vertical period of cloth, knitted across."""
    design = cloth_design(Repeat.BLOCK, width=200, height=60, seed=5)
    photo = photograph(design, repeats=(1.0, 4.2), mount=20)
    choice = choose_tile(photo, "auto", None)
    assert isinstance(choice.finding, ClothCrop), choice
    px, py = choice.finding.periods
    assert px is None and py == pytest.approx(60, rel=0.01)
    assert choice.finding.recipe.size[1] == 60


def _write(folder: Path, name: str, pixels: np.ndarray) -> str:
    path = folder / "designs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return f"designs/{name}"


@pytest.fixture(scope="module")
def half_drop_photo() -> np.ndarray:
    return photograph(cloth_design(Repeat.HALF_DROP), rotation_deg=ROTATION, vignette=0.3, mount=24, selvedge=14)


def test_a_job_takes_the_repeat_and_size_from_the_photo(ws: Path, half_drop_photo: np.ndarray) -> None:
    design = _write(ws, "photo.png", half_drop_photo)
    spec = load_one(manifest(ws, job(design=design)))
    assert spec.repeat is Repeat.HALF_DROP
    assert spec.tile is not None and (spec.width, spec.height) == spec.tile.recipe.size == (72, 60)
    assert spec.settings.crop_to_repeat == "auto"
    record = spec.tile.record()
    assert record["lattice"]["type"] == "half-drop" and record["confidence"] >= extract.MIN_CONFIDENCE
    # validate judges the tile the job uses, not the photo (which has a mount at every edge)
    assert [p for p in validate_manifest(ws / "m.toml") if "seamless" in p.message] == []


def test_a_manifest_type_that_disagrees_is_warned_about(ws: Path, half_drop_photo: np.ndarray) -> None:
    design = _write(ws, "photo.png", half_drop_photo)
    path = manifest(ws, job('repeat = "block"', design=design))
    warnings = [p for p in validate_manifest(path) if p.severity == "warning" and p.field == "repeat"]
    assert len(warnings) == 1 and "half-drop" in warnings[0].message and warnings[0].job == "j"
    spec = load_one(path)
    assert spec.repeat is Repeat.BLOCK and spec.tile.recipe.size == (144, 60)  # two columns of the half-drop


def test_an_untrusted_lattice_fails_the_job_naming_file_job_and_field(
    ws: Path, half_drop_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = _write(ws, "photo.png", half_drop_photo)
    monkeypatch.setattr(extract, "MIN_CONFIDENCE", 1.01)  # the photo's real confidence is about 0.99
    path = manifest(ws, job("crop_to_repeat = true", design=design))
    problem = only_error(path, item="job 'j'", field="design", contains="confidence")
    assert "photo.png" in problem.message and "crop_to_repeat = true" in problem.message
    # under "auto" the same doubt knits the whole design instead, with a warning
    auto = manifest(ws, job(design=design), name="auto.toml")
    warnings = [p for p in validate_manifest(auto) if p.field == "design" and "confidence" in p.message]
    assert len(warnings) == 1 and isinstance(load_one(auto).tile, ClothCrop)  # knitted as a photo without repeat


def test_a_tile_showing_a_frame_fails_the_job(ws: Path, half_drop_photo: np.ndarray, monkeypatch) -> None:
    design = _write(ws, "photo.png", half_drop_photo)
    monkeypatch.setattr("pipeline.repeat.tile_choice.FRAME_VISIBLE_ABOVE", 0.0)
    path = manifest(ws, job("crop_to_repeat = true", design=design))
    only_error(path, item="job 'j'", field="design", contains="shows a frame")


def test_a_single_motif_job_is_knitted_with_a_warning(ws: Path) -> None:
    design = _write(ws, "motif.png", _single_motif())
    path = manifest(ws, job(design=design))
    warnings = [p for p in validate_manifest(path) if p.field == "design" and "knitted" in p.message]
    assert len(warnings) == 1 and warnings[0].job == "j" and warnings[0].file == str(path)
    assert "motif.png" in warnings[0].message and "crop_to_repeat" in warnings[0].message
    spec = load_one(path)
    assert isinstance(spec.tile, ClothCrop) and (spec.width, spec.height) == (240, 200)
    assert spec.tile.record()["lattice"] is None


def test_a_seamless_design_is_untouched_and_keeps_its_key(ws: Path) -> None:
    design = _write(ws, "tile.png", cloth_design(Repeat.BLOCK).tile())
    auto = load_one(manifest(ws, job(design=design)))
    off = load_one(manifest(ws, job("crop_to_repeat = false", design=design), name="off.toml"))
    assert auto.tile is None and not [p for p in validate_manifest(ws / "m.toml") if "crop_to_repeat" in p.message]
    assert job_key(auto, "d", ("s",), "w") == job_key(off, "d", ("s",), "w")


def test_the_tile_is_part_of_the_job_key(ws: Path, half_drop_photo: np.ndarray) -> None:
    """Same design bytes, same settings: a different cut (or none) is a different job."""
    design = _write(ws, "photo.png", half_drop_photo)
    cut = load_one(manifest(ws, job("size = [72, 60]", design=design)))
    recipe = cut.tile.recipe
    moved = replace(cut.tile, recipe=replace(recipe, origin=(recipe.origin[0] + 1, recipe.origin[1])))
    keys = {job_key(spec, "d", ("s",), "w") for spec in (cut, replace(cut, tile=None), replace(cut, tile=moved))}
    assert len(keys) == 3


def test_inspect_extract_writes_the_tile_and_the_overlay(tmp_path: Path, half_drop_photo: np.ndarray) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(half_drop_photo).save(photo)
    result = CliRunner().invoke(app, ["inspect", str(photo), "--extract", str(tmp_path / "tile.png")])
    assert result.exit_code == 0, result.output
    assert "lattice: half-drop" in result.output
    tile = np.asarray(Image.open(tmp_path / "tile.png"))
    overlay = np.asarray(Image.open(tmp_path / "tile.overlay.png"))
    assert tile.shape == (60, 72, 3) and overlay.shape == half_drop_photo.shape
    red = (overlay[..., 0] > 200) & (overlay[..., 1] < 60) & (overlay[..., 2] < 60)
    assert red.sum() > 2 * (72 + 60)  # the cut tile's outline is drawn


def test_inspect_extract_refuses_a_photo_without_repeat(tmp_path: Path) -> None:
    photo = tmp_path / "motif.png"
    Image.fromarray(_single_motif()).save(photo)
    result = CliRunner().invoke(app, ["inspect", str(photo), "--extract", str(tmp_path / "tile.png")])
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not (tmp_path / "tile.png").exists()


def test_the_shared_photographs_give_trusted_frameless_tiles(shared_data: Path) -> None:
    """Every shared photo either gives a trusted tile without a frame or says it holds no repeat."""
    found = 0
    for path in sorted((shared_data / "designs").glob("morris_*.jpg")):
        from pipeline.manifest.images import load_rgb

        finding = search_tile(load_rgb(path))
        if isinstance(finding, NoRepeat):
            assert "repeat" in finding.reason
            continue
        found += 1
        assert finding.trusted, (path.name, finding.confidence)
        assert finding.frame < FRAME_VISIBLE_ABOVE, (path.name, finding.frame)
        assert finding.seam <= 1.5, (path.name, finding.seam)
        assert math.isfinite(finding.reading.rotation_deg)
    assert found >= 5


def test_provenance_records_what_the_search_found(ws: Path, half_drop_photo: np.ndarray, tmp_path: Path) -> None:
    from pipeline.run.cluster import ClusterInfo
    from pipeline.run.plan import make_plan
    from pipeline.run.provenance import job_provenance

    design = _write(ws, "photo.png", half_drop_photo)
    plan = make_plan(manifest(ws, job(design=design) + job(job_id="k", design="designs/rose.png")), store=tmp_path / "s")
    info = ClusterInfo(dashboard=None, workers=1, gpu=False, device="cpu", threads=1, description="test")
    records = {j.id: job_provenance(j, info, plan)["design_tile"] for j in plan.jobs}
    found = records["j"]
    assert found["lattice"]["type"] == "half-drop" and found["lattice"]["drop_fraction"] == pytest.approx(0.5, abs=0.02)
    assert abs(found["rotation_deg"] - ROTATION) < 0.3 and found["recipe"]["size"] == [72, 60]
    assert found["confidence"] >= extract.MIN_CONFIDENCE and len(found["cloth"]) == 4
    assert records["k"] is None  # a design without a repeat and without a mount is used as it is


def test_workers_cut_the_tile_the_manifest_found(tmp_path: Path, half_drop_photo: np.ndarray) -> None:
    """The recipe travels in the JobContext; a worker cuts exactly the tile (no search, same bytes)."""
    from pipeline.run.tasks import JobContext, design_rgb
    from pipeline.settings import Settings

    path = tmp_path / "photo.png"
    Image.fromarray(half_drop_photo).save(path)
    finding = search_tile(half_drop_photo)
    ctx = JobContext(
        store_path=str(tmp_path / "s"), job_id="j", repeat=Repeat.HALF_DROP, width=72, height=60, seed=0,
        settings=Settings(), design_path=str(path), design_sha256="x", style_weights=(1.0,),
        max_input_pixels=10**8, device="cpu", threads=1, design_tile=finding.recipe,
    )  # fmt: skip
    assert design_rgb(ctx).tobytes() == cut_tile(half_drop_photo, finding.recipe).tobytes()


def test_stylize_applies_crop_to_repeat_and_refuses_an_untrusted_lattice(half_drop_photo, monkeypatch) -> None:
    from pipeline.errors import WeftError
    from pipeline.settings import Settings
    from pipeline.stylize_cli import _design_for_stylize

    quiet = Console(file=io.StringIO())
    tile = _design_for_stylize(half_drop_photo, Repeat.HALF_DROP, Settings(), quiet)
    assert tile.shape == (60, 72, 3)
    monkeypatch.setattr(extract, "MIN_CONFIDENCE", 1.01)
    with pytest.raises(WeftError, match="confidence"):
        _design_for_stylize(half_drop_photo, Repeat.HALF_DROP, Settings(crop_to_repeat=True), quiet)

"""``mask``, ``regions``, ``variants`` and ``style_span_cm`` in a manifest: what they build, every mistake,
and job keys that stay as they were for jobs that use none of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_manifest import errors, job, manifest, only_error

from pipeline.manifest.load import load_manifest
from pipeline.manifest.specs import MAX_VARIANTS
from pipeline.run.plan import job_key, make_plan

REGIONS = 'mask = "auto"\nregions = { ground = "keep", motif = "wave" }\n'


def region_job(extra: str = "", **kwargs: str) -> str:
    """A job with regions and no ``style`` (``job()`` writes one; drop its line)."""
    return job(REGIONS + extra, **kwargs).replace('style = "wave"\n', "")


@pytest.fixture
def label_mask(ws: Path, make_image) -> Path:
    """A 120 x 90 label image (the design's size): left half black, right half #ff0000."""
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[:, 60:] = (255, 0, 0)
    return make_image("designs/rose-mask.png", pixels=pixels)


def test_auto_regions_build_a_job_with_every_style_once(ws: Path) -> None:
    spec = load_manifest(manifest(ws, region_job())).jobs[0]
    assert spec.mask == "auto" and [r.label for r in spec.regions] == ["ground", "motif"]
    assert [u.style.id for u in spec.styles] == ["wave"]
    assert spec.region_blends() == ((), ((0, 1.0),))


def test_a_mask_file_names_regions_by_colour_and_grey_level(ws: Path, label_mask: Path) -> None:
    body = job('mask = "designs/rose-mask.png"\nregions = { "0" = [{style = "kiss", weight = 1}, {style = "wave", '
               'weight = 3}], "#FF0000" = "wave" }\n').replace('style = "wave"\n', "", 1)  # fmt: skip
    spec = load_manifest(manifest(ws, body)).jobs[0]
    assert [(r.label, r.colour) for r in spec.regions] == [("0", (0, 0, 0)), ("#ff0000", (255, 0, 0))]
    assert [u.style.id for u in spec.styles] == ["kiss", "wave"]
    assert spec.region_blends() == (((0, 0.25), (1, 0.75)), ((1, 1.0),))


@pytest.mark.parametrize(
    ("body", "field", "contains"),
    [
        (job('mask = "auto"'), "regions", "missing: mask needs regions"),
        (job('regions = { ground = "keep" }').replace('style = "wave"\n', ""), "mask", "missing: regions needs mask"),
        (job(REGIONS), "style", "give style or regions, not both"),
        (region_job().replace('motif = "wave"', 'motif = "wav"'), "regions.motif", "did you mean 'wave'"),
        (region_job().replace("ground =", "grund ="), "regions.grund", "no region 'grund' in the mask"),
        (region_job().replace(', motif = "wave"', ""), "regions", "region(s) motif have no style"),
        (region_job().replace('"wave" }', '"keep" }'), "regions", "every region is \"keep\""),
        (job('mask = "auto"\nregions = "wave"').replace('style = "wave"\n', ""), "regions", "must be a table"),
        (region_job('engine = "feedforward"'), "regions", "feed-forward engine cannot"),
        (job('style_span_cm = 20\nengine = "feedforward"'), "style_span_cm", "feed-forward engine does not take"),
        (job("style_span_cm = -2"), "style_span_cm", "greater than 0"),
        (job("variants = [1, 2]"), "variants", "must be a table of lists"),
        (job("variants = { style_wieght = [1, 3] }"), "variants.style_wieght", "did you mean 'style_weight'"),
        (job("variants = { seed = 3 }"), "variants.seed", "non-empty list"),
        (job("variants = { seed = [3, 3] }"), "variants.seed", "lists a value twice"),
        (job(f"variants = {{ seed = {list(range(MAX_VARIANTS + 1))} }}"), "variants", f"at most {MAX_VARIANTS}"),
    ],
)
def test_each_mistake_names_file_job_and_field(ws: Path, body: str, field: str, contains: str) -> None:
    only_error(manifest(ws, body), item="job 'j'", field=field, contains=contains)


def test_a_bad_variant_value_names_the_variant_job(ws: Path) -> None:
    found = errors(manifest(ws, job("variants = { iterations = [5, 0] }")))
    assert [(p.item, p.field, p.job) for p in found] == [("job 'j.iterations-0'", "iterations", "j.iterations-0")]


@pytest.mark.parametrize(
    ("pixels", "extra", "field", "contains"),
    [
        (np.zeros((90, 100, 3), np.uint8), "", "mask", "is 100x90 px but the design is 120x90"),
        (np.arange(90 * 120 * 3, dtype=np.uint32).reshape(90, 120, 3).astype(np.uint8), "", "mask", "distinct colours"),
        (np.zeros((90, 120, 3), np.uint8), "", "regions.#00ff00", "no region '#00ff00' in the mask"),
        (np.zeros((90, 120, 3), np.uint8), "", "regions.red", "written \"#rrggbb\" or a grey level"),
    ],
)
def test_mask_file_mistakes(ws: Path, make_image, pixels: np.ndarray, extra: str, field: str, contains: str) -> None:
    make_image("designs/m.png", pixels=pixels)
    key = {"regions.#00ff00": '"#00ff00"', "regions.red": "red"}.get(field, '"0"')
    body = job(f'mask = "designs/m.png"\nregions = {{ {key} = "wave" }}\n{extra}').replace('style = "wave"\n', "", 1)
    found = [p for p in errors(manifest(ws, body)) if p.field == field]
    assert found and contains in found[0].message and found[0].job == "j", "\n".join(map(str, errors(manifest(ws, body))))


def test_a_mask_file_is_refused_for_a_photo_that_is_cut_to_a_tile(ws: Path, make_image) -> None:
    import shutil

    root = Path(__file__).resolve().parent.parent / "manifests" / "designs"
    shutil.copy(root / "morris_strawberry_thief.jpg", ws / "designs" / "photo.jpg")
    make_image("designs/photo-mask.png", pixels=np.zeros((448, 512, 3), np.uint8))
    body = job('mask = "designs/photo-mask.png"\nregions = { "0" = "wave" }\nrepeat = "half-drop"\nsize = 128',
               design="designs/photo.jpg").replace('style = "wave"\n', "", 1)  # fmt: skip
    only_error(manifest(ws, body), item="job 'j'", field="mask", contains="crop_to_repeat cuts a tile")


def test_a_missing_mask_file_is_reported_at_mask(ws: Path) -> None:
    body = job('mask = "designs/none.png"\nregions = { "0" = "wave" }').replace('style = "wave"\n', "", 1)
    found = errors(manifest(ws, body))
    assert [(p.item, p.field) for p in found] == [("job 'j'", "mask")]


def test_variants_become_jobs_of_their_own_with_their_own_keys(ws: Path) -> None:
    path = manifest(ws, job("variants = { style_weight = [1, 3.5], seed = [1, 2] }"))
    jobs = load_manifest(path).jobs
    assert [j.id for j in jobs] == ["j.style_weight-1.seed-1", "j.style_weight-1.seed-2", "j.style_weight-3.5.seed-1",
                                    "j.style_weight-3.5.seed-2"]  # fmt: skip
    assert {j.variant_of for j in jobs} == {"j"}
    assert [(j.settings.style_weight, j.seed) for j in jobs] == [(1, 1), (1, 2), (3.5, 1), (3.5, 2)]
    plan = make_plan(path, store=ws / "none.zarr")
    assert len({p.key for p in plan.jobs}) == 4


def test_new_fields_leave_the_keys_of_jobs_without_them_alone(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that uses none of the new fields keys exactly as before they existed (main at d024064).

    Engine version 2 (zero padding inside the convolutions, issue 13) moved every key on purpose,
    and the default profile's tile_size became "auto": the job pins both to what they were then.
    """
    monkeypatch.setattr("pipeline.run.plan.ENGINE_VERSION", "1")
    path = manifest(ws, job("size = 64\ncrop_to_repeat = false\ntile_size = 512"))
    spec = load_manifest(path).jobs[0]
    assert job_key(spec, "d" * 64, ("s" * 64,), "w" * 64) == KEY_BEFORE_REGIONS
    # ... and each new field moves it
    with_span = load_manifest(manifest(ws, job("size = 64\ncrop_to_repeat = false\ntile_size = 512\n"
                                               "style_span_cm = 20"))).jobs[0]  # fmt: skip
    assert job_key(with_span, "d" * 64, ("s" * 64,), "w" * 64) != KEY_BEFORE_REGIONS
    regions = load_manifest(manifest(ws, region_job("size = 64\ncrop_to_repeat = false\ntile_size = 512"))).jobs[0]
    assert job_key(regions, "d" * 64, ("s" * 64,), "w" * 64) != KEY_BEFORE_REGIONS


#: job_key of test_new_fields_leave_the_keys_of_jobs_without_them_alone's job, computed before this change.
KEY_BEFORE_REGIONS = "fa24cc3a1a5fee1db6a766a109075043725d4bad37397db8bbaedf56facc7f97"


def test_span_dpi_is_keyed_and_plan_warns_when_the_cap_bites(ws: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from pipeline.run.plan import print_plan

    path = manifest(ws, job("size = 64\nstyle_span_cm = 20\ndpi = 300", job_id="a") + job("size = 64\nstyle_span_cm"
                                                                                             " = 20\ndpi = 600", job_id="b"))  # fmt: skip
    plan = make_plan(path, store=ws / "none.zarr")
    a, b = plan.jobs
    assert a.key != b.key  # the span is on the cloth: dpi decides the pixels
    assert a.style_long_side((8, 8)) == round(20 / 2.54 * 300 / 8)  # an eighth of the print size, of the span
    assert a.style_long_side((32, 32)) == 1024  # half of it: 1181 px, above style_max_size
    out = StringIO()
    print_plan(plan, Console(file=out, width=300))
    text = out.getvalue()
    assert "a: style_span_cm = 20 at 300 dpi asks for style targets 2362 px" in text
    assert "capped at style_max_size = 1024" in text


@pytest.mark.parametrize("field", ["mask", "regions", "variants"])
def test_the_new_fields_are_per_job_not_defaults(ws: Path, field: str) -> None:
    value = {"mask": '"auto"', "regions": '{ ground = "keep" }', "variants": "{ seed = [1, 2] }"}[field]
    only_error(manifest(ws, f"[defaults]\n{field} = {value}\n" + job()), item="[defaults]", field=field,
               contains="cannot be a default")  # fmt: skip


def test_weft_inspect_mask_writes_the_automatic_mask_at_the_designs_size(tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from pipeline.cli import app

    design = Path(__file__).resolve().parent.parent / "manifests" / "designs" / "royal_stewart_sett.png"
    out = tmp_path / "sett-mask.png"
    result = CliRunner().invoke(app, ["inspect", str(design), "--repeat", "block", "--mask", str(out)])
    assert result.exit_code == 0, result.output
    assert "ground" in result.output and "sett-mask.overlay.png" in result.output
    mask = np.asarray(Image.open(out))
    assert mask.shape == (424, 424, 3) and set(np.unique(mask)) == {0, 255}
    assert 0.25 < np.mean(mask[..., 0] == 0) < 0.75  # the red ground, black
    assert Image.open(tmp_path / "sett-mask.overlay.png").size == (424, 424)
    missing = CliRunner().invoke(app, ["inspect", str(tmp_path / "nope.png"), "--mask", str(out)])
    assert missing.exit_code == 1 and "nope.png" in missing.output

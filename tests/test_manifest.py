"""Manifests (TOML and CSV): what a valid one yields, and every kind of mistake, reported all at once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_manifest import STYLES, errors, job, load_one, manifest, only_error

from pipeline.cli import app
from pipeline.errors import ConfigError, ManifestError, Problem
from pipeline.manifest.images import load_rgb
from pipeline.manifest.load import load_manifest, read_manifest, validate_manifest
from pipeline.conventions import ALLOW_OUTSIDE_ROOT
from pipeline.manifest.specs import (
    JOB_FIELDS,
    STYLE_FIELDS,
    TOP_LEVEL_FIELDS,
    Limits,
    Manifest,
)
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import repeat_seam_ratio

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "manifests" / "demo.toml"


# --- the demo ------------------------------------------------------------------------------


def test_demo_manifest_loads():
    m = load_manifest(DEMO)
    assert isinstance(m, Manifest) and m.root == DEMO.parent and m.limits == Limits()
    jobs = {j.id: j for j in m.jobs}
    assert {j.repeat for j in m.jobs} == {Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK}
    assert all(256 <= max(j.width, j.height) <= 384 for j in m.jobs)
    assert all(j.settings.coarse_size == 128 for j in m.jobs)  # profile = "demo"
    blend = jobs["snakeshead-blend"].styles
    assert [(u.style.id, u.weight) for u in blend] == [("wave", 0.6), ("kiss", 0.4)]
    for style in m.styles.values():
        assert style.license and style.attribution and style.path.is_file()


def test_demo_files_are_small_and_credited():
    sources = (REPO / "manifests" / "SOURCES.md").read_text()
    m = load_manifest(DEMO)
    files = {j.design for j in m.jobs} | {s.path for s in m.styles.values()}
    for path in files:
        assert path.stat().st_size <= 160_000, path
        assert path.relative_to(DEMO.parent).as_posix() in sources


def test_demo_tartan_is_one_seamless_sett():
    tartan = next(j for j in load_manifest(DEMO).jobs if j.repeat is Repeat.BLOCK)
    assert repeat_seam_ratio(load_rgb(tartan.design), "block") < 1.05


def test_weft_validate_demo_prints_ok():
    result = CliRunner().invoke(app, ["validate", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "error" not in result.output


# --- what a valid manifest yields ----------------------------------------------------------


def test_defaults_and_job_fields(ws):
    path = manifest(
        ws,
        """
        [defaults]
        repeat = "half-drop"
        dpi = 150
        iterations = 77
        """
        + job("size = 200\nseed = 9")
        + job(job_id="k", design="designs/tall.png", style="[{style = \"wave\"}, {style = \"kiss\"}]"),
    )
    first, second = load_manifest(path).jobs
    assert (first.id, first.repeat, first.dpi, first.seed) == ("j", Repeat.HALF_DROP, 150, 9)
    assert first.settings.iterations == 77
    assert (first.width, first.height) == (200, 150)
    assert first.design == ws / "designs" / "rose.png"
    assert first.entry == {"id": "j", "design": "designs/rose.png", "style": "wave", "size": 200, "seed": 9}
    assert first.source == str(path)
    assert [(u.style.id, u.weight) for u in second.styles] == [("wave", 0.5), ("kiss", 0.5)]
    assert second.seed == 0  # default seed
    assert (second.width, second.height) == (90, 122)  # own size, height rounded up to even for half-drop


def test_plain_defaults(ws):
    j = load_one(manifest(ws, job()))
    assert (j.repeat, j.dpi, j.seed, j.width, j.height) == (Repeat.BLOCK, 300, 0, 120, 90)
    assert j.settings.iterations == 300  # the default profile


@pytest.mark.parametrize(
    ("extra", "size"),
    [
        ('repeat = "half-drop"\nsize = 101', (101, 76)),  # 75.75 -> even 76
        ('repeat = "brick"\nsize = [64, 33]', (64, 33)),  # exact pixels are kept
        ('repeat = "brick"\nsize = 100', (100, 75)),
        ("size_cm = [10, 5]\ndpi = 254", (1000, 500)),
        ('size_cm = [2.54, 1]\nrepeat = "half-drop"\ndpi = 300', (300, 118)),  # 118.1 -> even 118
        ("size_cm = 2.54\ndpi = 100", (100, 75)),  # long side in cm, aspect from the design
        ('size_cm = 2.54\ndpi = 101\nrepeat = "brick"', (102, 76)),  # derived sides rounded to honour brick
    ],
)
def test_output_sizes(ws, extra, size):
    j = load_one(manifest(ws, job(extra)))
    assert (j.width, j.height) == size


def test_portrait_long_side(ws):
    j = load_one(manifest(ws, job('size = 242\nrepeat = "brick"', design="designs/tall.png")))
    assert (j.width, j.height) == (180, 242)  # 179.9 -> even for brick


def test_job_size_replaces_default_size(ws):
    path = manifest(ws, "[defaults]\nsize = [64, 64]\n" + job("size_cm = 2.54\ndpi = 60") + job(job_id="k"))
    sizes = {j.id: (j.width, j.height) for j in load_manifest(path).jobs}
    assert sizes == {"j": (60, 45), "k": (64, 64)}


def test_paths_are_relative_to_the_manifest(ws, tmp_path, monkeypatch):
    sub = ws / "nested"
    sub.mkdir()
    path = manifest(sub, job(design="../designs/rose.png"), styles=False)
    path.write_text(path.read_text() + STYLES.replace('"styles/', '"../styles/'))
    monkeypatch.chdir(tmp_path.parent)
    assert load_one(path, allow_outside_root=True).design == ws / "designs" / "rose.png"


def test_blend_weights_are_normalised(ws):
    j = load_one(manifest(ws, job(style='[{style = "wave", weight = 3}, {style = "kiss", weight = 1}]')))
    assert [(u.style.id, u.weight) for u in j.styles] == [("wave", 0.75), ("kiss", 0.25)]
    assert math.isclose(sum(u.weight for u in j.styles), 1.0)


def test_zero_weight_is_left_out_with_a_warning(ws):
    path = manifest(ws, job(style='[{style = "wave", weight = 1}, {style = "kiss", weight = 0}]'))
    assert [u.style.id for u in load_one(path).styles] == ["wave"]
    warnings = [p for p in validate_manifest(path) if p.severity == "warning" and p.field == "style"]
    assert "weight 0" in warnings[0].message


# --- CSV catalogues ------------------------------------------------------------------------

CSV = """\
id,design,style,repeat,size,seed,iterations,style_layers,style_layer_weights
rose-1,designs/rose.png,wave,half-drop,200,3,,,
rose-2,designs/rose.png,wave:0.7;kiss:0.3,,64x48,,12,relu1_1;relu2_1,1;2

tall,designs/tall.png,kiss,brick,,,,,
"""


def test_csv_catalogue_with_styles_toml(ws):
    (ws / "styles.toml").write_text('profile = "demo"\n[defaults]\nrepeat = "block"\ndpi = 200\n' + STYLES)
    (ws / "jobs.csv").write_text(CSV)
    m = load_manifest(ws / "jobs.csv")
    jobs = {j.id: j for j in m.jobs}
    assert list(jobs) == ["rose-1", "rose-2", "tall"]
    assert (jobs["rose-1"].repeat, jobs["rose-1"].width, jobs["rose-1"].height, jobs["rose-1"].seed) == (
        Repeat.HALF_DROP, 200, 150, 3,
    )
    rose2 = jobs["rose-2"]
    assert [(u.style.id, round(u.weight, 6)) for u in rose2.styles] == [("wave", 0.7), ("kiss", 0.3)]
    assert (rose2.width, rose2.height, rose2.repeat, rose2.dpi) == (64, 48, Repeat.BLOCK, 200)
    assert rose2.settings.iterations == 12 and rose2.settings.style_layers == ("relu1_1", "relu2_1")
    assert rose2.settings.style_layer_weights == (1.0, 2.0)
    assert rose2.settings.coarse_size == 128  # styles.toml's profile
    assert rose2.entry["style"] == "wave:0.7;kiss:0.3" and "seed" not in rose2.entry
    assert rose2.source == f"{ws / 'jobs.csv'} row 3"
    assert jobs["tall"].source.endswith("row 5")  # the blank line keeps its number
    assert (jobs["tall"].width, jobs["tall"].height) == (90, 121)


def test_toml_manifest_naming_a_catalogue(ws, make_image):
    make_image("cat/designs/rose.png", (80, 60))
    (ws / "cat" / "jobs.csv").write_text("id,design,style\nfrom-csv,designs/rose.png,kiss\n")
    path = manifest(ws, 'catalogue = "cat/jobs.csv"\n' + job())
    jobs = load_manifest(path).jobs
    assert [j.id for j in jobs] == ["j", "from-csv"]
    assert jobs[1].design == ws / "cat" / "designs" / "rose.png"  # relative to the CSV


def test_csv_without_styles_toml(ws):
    (ws / "jobs.csv").write_text("id,design,style\na,designs/rose.png,wave\n")
    found = errors(ws / "jobs.csv")
    assert len(found) == 1
    assert found[0].file == str(ws / "styles.toml") and "beside it" in found[0].message


@pytest.mark.parametrize(
    ("text", "item", "field", "contains"),
    [
        ("id,design,style\na,designs/rose.png,wave,extra\n", "row 2", None, "has 4 cells but the header has 3"),
        ("id,design,style\na,designs/rose.png\n", "row 2", None, "has 2 cells"),
        ('id,design,style\na,"designs/rose.png,wave\n', "row 2", None, "malformed CSV"),
        ("id,design,style,size\na,designs/rose.png,wave,12y4\n", "row 2, job 'a'", "size", "'12y4' is not a whole"),
        ("id,design,style\na,designs/rose.png,wave:heavy\n", "row 2, job 'a'", "style", "weight 'heavy'"),
        ("id,design,style,sise\na,designs/rose.png,wave,10\n", "row 1 (header)", "sise", "did you mean 'size'"),
        ("id;design;style\na;designs/rose.png;wave\n", "row 1 (header)", None, "separated by ';'"),
        ("id,design,style\n", None, "jobs", "no jobs"),
        ("id,design,style\n\n\nb,designs/none.png,wave\n", "row 4, job 'b'", "design", "file not found"),
    ],
)
def test_csv_mistakes(ws, text, item, field, contains):
    (ws / "styles.toml").write_text(STYLES)
    (ws / "jobs.csv").write_text(text)
    found = [p for p in errors(ws / "jobs.csv") if p.item == item and p.field == field]
    assert found and contains in found[0].message, errors(ws / "jobs.csv")
    assert found[0].file == str(ws / "jobs.csv")


def test_csv_not_utf8(ws):
    (ws / "styles.toml").write_text(STYLES)
    (ws / "jobs.csv").write_bytes("id,design,style\nrosé,designs/rose.png,wave\n".encode("latin-1"))
    assert "not UTF-8 text (line 2)" in errors(ws / "jobs.csv")[0].message


def test_csv_with_bom_and_crlf(ws):
    (ws / "styles.toml").write_text(STYLES)
    (ws / "jobs.csv").write_bytes(b"\xef\xbb\xbfid,design,style\r\na,designs/rose.png,wave\r\n")
    assert load_one(ws / "jobs.csv").id == "a"


# --- every kind of mistake -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "item", "field", "contains"),
    [
        (job("sise = 10"), "job 'j'", "sise", "unknown key (did you mean 'size'?)"),
        (job("iteratoins = 10"), "job 'j'", "iteratoins", "did you mean 'iterations'"),
        ("[[job]]\nid = 'x'\n" + job(), None, "job", "did you mean 'jobs'"),
        ('[defaults]\nstyle = "wave"\n' + job(), "[defaults]", "style", "cannot be a default"),
        ('[defaults]\nrepat = "brick"\n' + job(), "[defaults]", "repat", "did you mean 'repeat'"),
        (job(design="designs/missing.png"), "job 'j'", "design", "'designs/missing.png': file not found"),
        (job(style='"wav"'), "job 'j'", "style", "style 'wav' is not declared in [[styles]] (did you mean 'wave'?)"),
        (job() + job(), "job 'j' (job #2)", "id", "duplicate job id 'j' (first used by job #1)"),
        ('[[jobs]]\ndesign = "designs/rose.png"\nstyle = "wave"\n', "job #1", "id", "missing"),
        (job(job_id="a b"), "job 'a b'", "id", "cannot be used as a folder name"),
        (job(job_id="../up"), "job '../up'", "id", "cannot be used as a folder name"),
        (job(job_id=".hidden"), "job '.hidden'", "id", "starting with a letter or digit"),
        (job('repeat = "halfdrop"'), "job 'j'", "repeat", "did you mean 'half-drop'"),
        (job('repeat = "half-drop"\nsize = [64, 33]'), "job 'j'", "size", "half-drop needs an even height"),
        (job('repeat = "brick"\nsize = [63, 32]'), "job 'j'", "size", "64x32 would"),
        (job('repeat = "brick"\nsize = 101'), "job 'j'", "size", "brick needs an even width"),
        (job("size = 0"), "job 'j'", "size", "between 1 and"),
        (job("size = [10, 20, 30]"), "job 'j'", "size", "got a list of 3"),
        (job("size = 64\nsize_cm = 5"), "job 'j'", "size_cm", "not both"),
        (job("size_cm = -2"), "job 'j'", "size_cm", "positive number"),
        (job("dpi = 0"), "job 'j'", "dpi", "between 1 and"),
        (job('seed = "7"'), "job 'j'", "seed", "whole number"),
        (job("seed = -1"), "job 'j'", "seed", "between 0 and"),
        (job(style='[{style = "wave", weight = -1}, {style = "kiss", weight = 2}]'), "job 'j'", "style", "negative"),
        (job(style='[{style = "wave", weight = 0}, {style = "kiss", weight = 0}]'), "job 'j'", "style", "sum to 0"),
        (job(style='[{style = "wave", weight = nan}]'), "job 'j'", "style", "is nan"),
        (job(style='[{style = "wave", weight = inf}]'), "job 'j'", "style", "finite"),
        (job(style='[{style = "wave", weight = "lots"}]'), "job 'j'", "style", "must be a number"),
        (job(style='[{style = "wave"}, {style = "wave"}]'), "job 'j'", "style", "listed twice"),
        (job(style='[{style = "wave", wieght = 1}]'), "job 'j'", "style", "did you mean 'weight'"),
        (job(style="[]"), "job 'j'", "style", "non-empty list"),
        (job(style="3"), "job 'j'", "style", "must be a style id"),
        (job("iterations = 0"), "job 'j'", "iterations", "greater than or equal to 1"),
        (job("halo = 8"), "job 'j'", "settings", "overlap (32) must not exceed halo (8)"),
        (job('optimizer = "sgd"'), "job 'j'", "optimizer", "'lbfgs' or 'adam'"),
        ('profile = "prnt"\n' + job(), None, "profile", "unknown profile 'prnt' (did you mean 'print'?)"),
        ("[limits]\nmax_output_pixels = 1000\n" + job(), "job 'j'", "size", "own 120x90 is used: output 120x90"),
        (job("size = [30000, 30000]"), "job 'j'", "size", "900 MP, above the limit of 400 MP"),
        ("[limits]\nmin_output_side = 100\n" + job(), "job 'j'", "size", "at least 100 px"),
        (job("size = [640, 32]"), "job 'j'", "size", "aspect ratio of 20.0:1"),
        ("[limits]\nmax_input_pixels = 5000\n" + job("size = 64"), "job 'j'", "design", "above the input limit"),
        ("[limits]\nmax_imput_pixels = 5\n" + job(), "[limits]", "max_imput_pixels", "did you mean 'max_input_pixels'"),
        ("[limits]\nmax_output_pixels = -5\n" + job(), "[limits]", "max_output_pixels", "between 1 and"),
        ("catalogue = \"nope.csv\"\n" + job(), None, None, "file not found"),
        ("", None, "jobs", "no jobs"),
    ],
)
def test_each_mistake(ws, body, item, field, contains):
    path = manifest(ws, body)
    found = [p for p in errors(path) if p.item == item and p.field == field]
    assert found, "\n".join(map(str, errors(path)))
    assert contains in found[0].message, str(found[0])
    with pytest.raises(ManifestError):
        load_manifest(path)


@pytest.mark.parametrize(
    ("style", "item", "field", "contains"),
    [
        ('id = "x"\npath = "styles/wave.png"\nattribution = "a"\n', "style 'x'", "license", "missing: every style"),
        ('id = "x"\npath = "styles/wave.png"\nlicense = " "\nattribution = "a"\n', "style 'x'", "license", "missing"),
        ('id = "x"\npath = "styles/wave.png"\nlicense = "CC0"\n', "style 'x'", "attribution", "missing"),
        ('id = "x"\npath = "styles/none.png"\nlicense = "CC0"\nattribution = "a"\n', "style 'x'", "path", "not found"),
        ('id = "x"\npath = "styles/wave.png"\nlicence = "CC0"\nlicense = "CC0"\nattribution = "a"\n', "style 'x'",
         "licence", "did you mean 'license'"),
        ('id = "wave"\npath = "styles/wave.png"\nlicense = "CC0"\nattribution = "a"\n', "style 'wave'", "id", "dupl"),
        ('path = "styles/wave.png"\nlicense = "CC0"\nattribution = "a"\n', "style #3", "id", "missing"),
        ('id = "x"\npath = "styles/wave.png"\nlicense = "CC0"\nattribution = "a"\nnotes = 5\n', "style 'x'", "notes", "st"),
    ],
)
def test_style_mistakes(ws, style, item, field, contains):
    path = manifest(ws, job())
    path.write_text(path.read_text() + "\n[[styles]]\n" + style)
    found = [p for p in errors(path) if p.item == item and p.field == field]
    assert found and contains in found[0].message, "\n".join(map(str, errors(path)))


def test_style_used_with_a_broken_declaration_is_not_reported_twice(ws):
    path = manifest(ws, job(style='"x"'))
    path.write_text(path.read_text() + '\n[[styles]]\nid = "x"\npath = "styles/wave.png"\nlicense = "CC0"\n')
    only_error(path, item="style 'x'", field="attribution", contains="missing")


def test_malformed_toml_names_line_and_column(ws):
    path = manifest(ws, '[[jobs]]\nid = "j"\ndesign = designs/rose.png\n', styles=False)
    problem = only_error(path, item=None, field=None, contains="invalid TOML")
    assert "line 3, column 10" in problem.message


def test_missing_manifest(tmp_path):
    only_error(tmp_path / "nope.toml", item=None, field=None, contains="file not found")


def test_not_an_image(ws):
    (ws / "designs" / "notes.png").write_text("hello")
    only_error(manifest(ws, job(design="designs/notes.png")), item="job 'j'", field="design", contains="not an image")


def test_setting_errors_in_defaults_are_reported_once(ws):
    path = manifest(ws, "[defaults]\niterations = -3\n" + job() + job(job_id="k") + job("iterations = 0", job_id="z"))
    found = errors(path)
    assert [(p.item, p.field) for p in found] == [("[defaults]", "iterations"), ("job 'z'", "iterations")]


def test_same_setting_error_in_two_jobs_is_reported_for_both(ws):
    path = manifest(ws, job("iterations = 0") + job("iterations = 0", job_id="k"))
    assert [p.item for p in errors(path)] == ["job 'j'", "job 'k'"]


def test_invalid_profile_values_name_the_profile_file(ws, tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text("[settings]\nscales = 0\n")
    found = errors(manifest(ws, job()), config=config)
    assert [(p.file, p.item, p.field) for p in found] == [(str(config), "[settings]", "scales")]


def test_unknown_profile_on_the_command_line(ws):
    with pytest.raises(ConfigError, match="known profiles: .*demo"):
        load_manifest(manifest(ws, job()), profile="dmeo")


def test_bad_cli_settings(ws):
    path = manifest(ws, job())
    with pytest.raises(ManifestError) as info:
        load_manifest(path, cli_settings={"iterations": 0, "scals": 2})
    found = {(p.item, p.field) for p in info.value.problems}
    assert found == {("command line", "iterations"), ("command line", "scals")}


def test_paths_outside_the_manifest_folder(ws, make_image, tmp_path):
    sub = ws / "inner"
    sub.mkdir()
    (sub / "designs").symlink_to(ws / "designs")  # a link that leads out of the folder
    path = manifest(sub, job(design="../designs/rose.png") + job(job_id="k", design="designs/rose.png"), styles=False)
    path.write_text(path.read_text() + STYLES.replace('"styles/', '"../styles/'))
    assert len(load_manifest(path, allow_outside_root=True).jobs) == 2  # allowed when asked
    found = errors(path)  # refused by default
    assert {(p.item, p.field) for p in found} == {
        ("job 'j'", "design"), ("job 'k'", "design"), ("style 'wave'", "path"), ("style 'kiss'", "path"),
    }
    assert all("outside the manifest folder" in p.message for p in found)


def test_check_images_false_reads_only_what_it_needs(ws):
    path = manifest(ws, job("size = [64, 64]", design="designs/gone.png") + job(job_id="k", design="designs/gone.png"))
    with pytest.raises(ManifestError) as info:
        load_manifest(path, check_images=False)
    # the first job's size is explicit, so its design is not opened; the second needs the design's size
    assert [(p.item, p.field) for p in info.value.problems] == [("job 'k'", "design")]


def test_a_dozen_mistakes_at_once(ws):
    (ws / "designs" / "text.png").write_text("not pixels")
    path = manifest(
        ws,
        """
        profile = "previw"
        [defaults]
        repeat = "block"
        dpi = 300
        [[styles]]
        id = "unlicensed"
        path = "styles/wave.png"
        attribution = "someone"
        """
        + job("sise = 100", job_id="typo")
        + job(job_id="missing", design="designs/missing.png")
        + job(job_id="text", design="designs/text.png")
        + job(job_id="typo")
        + job(job_id="undeclared", style='"waev"')
        + job('repeat = "half-drop"\nsize = [100, 51]', job_id="odd")
        + job(job_id="weights", style='[{style = "wave", weight = -1}, {style = "kiss", weight = nan}]')
        + job("iterations = 0", job_id="settings")
        + job(job_id="bad id!")
        + job("size = [100000, 100000]", job_id="huge")
        + job('repeat = "zigzag"', job_id="repeat"),
    )
    expected = [
        (None, "profile", "unknown profile"),
        ("style 'unlicensed'", "license", "missing"),
        ("job 'typo'", "sise", "did you mean 'size'"),
        ("job 'missing'", "design", "file not found"),
        ("job 'text'", "design", "not an image"),
        ("job 'typo' (job #4)", "id", "duplicate job id"),
        ("job 'undeclared'", "style", "did you mean 'wave'"),
        ("job 'odd'", "size", "even height"),
        ("job 'weights'", "style", "negative"),
        ("job 'settings'", "iterations", "greater than or equal to 1"),
        ("job 'bad id!'", "id", "folder name"),
        ("job 'huge'", "size", "above the limit"),
        ("job 'repeat'", "repeat", "unknown repeat"),
    ]
    found = errors(path)
    for item, field, text in expected:
        assert any(p.item == item and p.field == field and text in p.message for p in found), (item, field)
    assert len(found) == len(expected), "\n".join(map(str, found))
    assert "is NaN" in next(p.message for p in found if p.item == "job 'weights'").replace("nan", "NaN")

    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert f"{len(expected)} error(s)" in output
    for problem in found:
        assert " ".join(str(problem).split()) in output


# --- warnings (weft validate only) ---------------------------------------------------------


def test_unused_style_is_a_warning(ws):
    path = manifest(ws, job())
    problems = [p for p in validate_manifest(path) if p.item != "job 'j'"]  # (the gradient design is not seamless)
    assert [(p.severity, p.item, p.message) for p in problems] == [
        ("warning", "style 'kiss'", "declared but not used by any job")
    ]
    load_manifest(path)  # warnings do not stop a run


def test_unused_styles_are_reported_in_declaration_order(ws):
    path = manifest(ws, job())
    extra = "".join(f'\n[[styles]]\nid = "{s}"\npath = "styles/wave.png"\nlicense = "CC0"\nattribution = "a"\n' for s in "zyxw")
    path.write_text(path.read_text() + extra)
    unused = [p.item for p in validate_manifest(path) if p.message == "declared but not used by any job"]
    assert unused == ["style 'kiss'", "style 'z'", "style 'y'", "style 'x'", "style 'w'"]


def test_truncated_design_is_found_by_validate(ws, make_image):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    design = make_image("designs/cut.png", pixels=pixels)
    design.write_bytes(design.read_bytes()[:600])
    path = manifest(ws, job(design="designs/cut.png") + job(job_id="k", style='"kiss"'))
    load_manifest(path)  # the header is fine: a run would fail this job alone, validate finds it now
    found = errors(path)
    assert [(p.item, p.field) for p in found] == [("job 'j'", "design")]
    assert "truncated" in found[0].message


def test_warns_about_designs_that_are_not_seamless(ws, make_image):
    y, x = np.mgrid[0:64, 0:96]
    periodic = 128 + 100 * np.sin(2 * np.pi * x / 48) * np.cos(2 * np.pi * y / 32)
    make_image("designs/periodic.png", pixels=np.repeat(periodic[..., None], 3, 2).astype(np.uint8))
    ramp = np.repeat((x * 255 // 95)[..., None], 3, 2).astype(np.uint8)
    make_image("designs/ramp.png", pixels=ramp)
    path = manifest(ws, job(design="designs/periodic.png") + job(job_id="k", design="designs/ramp.png", style='"kiss"'))
    found = [p for p in validate_manifest(path) if p.severity == "warning"]
    warnings = [p for p in found if "crop_to_repeat" not in p.message]  # the ramp holds no repeat either (test_photos)
    assert [(p.item, p.field) for p in warnings] == [("job 'k'", "design")]
    assert "ramp.png is not a seamless block repeat (seam ratio" in warnings[0].message
    assert "job 'k'" in [p.item for p in found if "crop_to_repeat" in p.message]


def test_blend_reports_weights_and_undeclared_styles_together(ws):
    path = manifest(ws, job(style='[{style = "wave", weight = -1}, {style = "kis", weight = 1}]'))
    messages = [p.message for p in errors(path)]
    assert len(messages) == 2
    assert "negative" in messages[0] and "did you mean 'kiss'" in messages[1]


def test_duplicate_id_across_toml_and_csv(ws):
    (ws / "jobs.csv").write_text("id,design,style\nj,designs/rose.png,wave\n")
    found = errors(manifest(ws, 'catalogue = "jobs.csv"\n' + job()))
    assert [(p.item, p.field) for p in found] == [("row 2, job 'j'", "id")]
    assert "first used by job #1" in found[0].message


def test_manifest_reference_lists_every_field():
    reference = (REPO / "docs" / "manifest.md").read_text()
    names = {*JOB_FIELDS, *STYLE_FIELDS, *TOP_LEVEL_FIELDS, *Limits.__dataclass_fields__}
    spellings = ("`{}`", "`[{}]`", "`[[{}]]`")
    assert not [n for n in names if not any(form.format(n) in reference for form in spellings)]


def test_read_manifest_keeps_the_valid_jobs(ws):
    path = manifest(ws, job() + job(job_id="broken", design="designs/none.png") + job(job_id="k", style='"kiss"'))
    m, problems = read_manifest(path)
    assert [j.id for j in m.jobs] == ["j", "k"]
    assert [(p.item, p.field) for p in problems if p.severity == "error"] == [("job 'broken'", "design")]


# --- which job a problem belongs to: a field, not a reading of the text --------------------


def test_problems_carry_their_job_id_as_a_field(ws):
    from pipeline.run.plan import broken_jobs, job_of

    path = manifest(ws, job(job_id="it's") + job(job_id="k"))
    path.write_text(path.read_text() + '\n[[styles]]\nid = "job \'x\'"\npath = "styles/wave.png"\nlicense = "CC0"\n')
    _, problems = read_manifest(path)
    found = [p for p in problems if p.severity == "error"]
    assert [(p.item, p.field, p.job) for p in found] == [
        ("style 'job 'x''", "attribution", None),  # a style whose id reads like a job
        ("job 'it's'", "id", "it's"),  # a job id with an apostrophe
    ]
    assert [job_of(p) for p in found] == [None, "it's"]
    assert broken_jobs(problems) == {"it's": str(found[1])}
    # the text is for people only: what it says about jobs does not matter
    decoys = [
        Problem("m.toml", "like job 'x' above", item="[defaults]", field="job 'y'"),
        Problem("jobs.csv", "has 4 cells", item="row 3", job="it's"),
    ]
    assert [job_of(p) for p in decoys] == [None, "it's"]
    assert broken_jobs(decoys) == {"it's": "jobs.csv: row 3: has 4 cells"}


def test_csv_problems_carry_their_job_id(ws):
    (ws / "styles.toml").write_text(STYLES)
    (ws / "jobs.csv").write_text("id,design,style,size\n it's ,designs/rose.png,wave,12y4\n,designs/rose.png,wave,\n")
    found = errors(ws / "jobs.csv")
    assert [(p.item, p.field, p.job) for p in found] == [
        ("row 2, job 'it's'", "size", "it's"),
        ("row 2, job 'it's'", "id", "it's"),
        ("row 3", "id", None),  # no id: the problem is the manifest's, not a job's
    ]


# --- paths outside the manifest's folder: one default for validate, plan and run ----------


@pytest.fixture
def inner(ws: Path, make_image) -> Path:
    """ws/inner, a manifest folder with its own styles and design; ws/designs lies outside it."""
    make_image("inner/designs/rose.png", (120, 90))
    make_image("inner/styles/wave.png", (64, 64))
    make_image("inner/styles/kiss.png", (48, 64))
    return ws / "inner"


def test_one_default_for_paths_outside_the_manifest_folder():
    import inspect

    import typer.main

    from pipeline.run.execute import RunOptions
    from pipeline.run.plan import make_plan

    assert ALLOW_OUTSIDE_ROOT is False
    for function in (load_manifest, read_manifest, validate_manifest, make_plan):
        assert inspect.signature(function).parameters["allow_outside_root"].default is ALLOW_OUTSIDE_ROOT
    assert RunOptions(manifest=Path("m.toml"), store=Path("s.zarr")).allow_outside_root is ALLOW_OUTSIDE_ROOT
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in ("validate", "plan", "run"):
        [option] = [p for p in commands[name].params if p.name == "allow_outside_root"]
        assert option.default is ALLOW_OUTSIDE_ROOT, name


def test_weft_validate_refuses_a_design_outside_the_folder_by_default(inner):
    path = manifest(inner, job(design="../designs/rose.png"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    expected = f"{path}: job 'j': field 'design': '../designs/rose.png' points outside the manifest folder {inner}"
    assert expected in output
    assert "1 error(s)" in output
    allowed = CliRunner().invoke(app, ["validate", str(path), "--allow-outside-root"])
    assert allowed.exit_code == 0, allowed.output
    assert f"{path} is valid" in " ".join(allowed.output.split())


def test_weft_run_planning_refuses_a_design_outside_the_folder_by_default(inner, tmp_path):
    from pipeline.run.plan import make_plan

    path = manifest(inner, job(design="../designs/rose.png"))
    [problem] = errors(path)  # what `weft validate` reports
    assert (problem.item, problem.field, problem.job) == ("job 'j'", "design", "j")
    plan = make_plan(path, store=tmp_path / "out.zarr")  # what `weft run` plans: the job fails alone
    assert plan.jobs == () and plan.invalid == {"j": str(problem)}
    allowed = make_plan(path, store=tmp_path / "out.zarr", allow_outside_root=True)
    assert [job.id for job in allowed.jobs] == ["j"] and allowed.invalid == {}
    assert allowed.jobs[0].spec.design == inner.parent / "designs" / "rose.png"


def test_weft_plan_refuses_a_style_outside_the_folder_by_default(inner, tmp_path):
    path = manifest(inner, job(), styles=False)
    path.write_text(path.read_text() + STYLES.replace('"styles/wave', '"../styles/wave'))
    store = str(tmp_path / "out.zarr")
    result = CliRunner().invoke(app, ["plan", str(path), "--store", store])
    assert result.exit_code == 1, result.output  # not one job's problem: the whole run stops
    output = " ".join(result.output.split())
    assert f"{path}: style 'wave': field 'path': '../styles/wave.png' points outside the manifest folder" in output
    allowed = CliRunner().invoke(app, ["plan", str(path), "--store", store, "--allow-outside-root"])
    assert allowed.exit_code == 0, allowed.output
    assert "1 to run" in " ".join(allowed.output.split())

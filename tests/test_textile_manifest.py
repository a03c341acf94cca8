"""Textile fields of a job: fractional drops, screen and fabric rules, size_cm = "fit", colourways."""

from __future__ import annotations

import pytest
from helpers_manifest import errors, job, load_one, manifest, only_error

from pipeline.manifest.screens import dividing_sizes_cm, rule_problems
from pipeline.repeat.lattice import Repeat


def test_drop_turns_a_half_drop_into_a_third_drop_and_sizes_honour_it(ws):
    spec = load_one(manifest(ws, job('repeat = "half-drop"\ndrop = "1/3"\nsize = 100')))
    assert spec.repeat is Repeat.THIRD_DROP
    assert spec.height % 3 == 0 and (spec.width, spec.height) == (100, 75)  # 75 = 100 * 90/120, a multiple of 3
    brick = load_one(manifest(ws, job('repeat = "brick-2/5"\nsize = [120, 90]')))
    assert brick.repeat == "brick-2/5" and brick.width % 5 == 0


@pytest.mark.parametrize(
    ("extra", "field", "contains"),
    [
        ('repeat = "mirror"\ndrop = "1/3"', "drop", "a mirror repeat has no drop"),
        ('repeat = "half-drop"\ndrop = "4/3"', "drop", "strictly between 0 and 1"),
        ('repeat = "drop-1/3"\nsize = [120, 91]', "size", "drop-1/3 needs a height divisible by 3"),
        ('repeat = "diamond"', "repeat", "drop-P/Q"),
    ],
)
def test_drop_mistakes_name_the_field(ws, extra, field, contains):
    only_error(manifest(ws, job(extra)), item="job 'j'", field=field, contains=contains)


def test_the_screen_rule_says_which_sizes_would_divide(ws):
    path = manifest(ws, job("size_cm = [20, 30]\ndpi = 100\nscreen_circumference_cm = 64"))
    only_error(path, item="job 'j'", field="screen_circumference_cm",
               contains="height 30 cm does not divide the 64 cm screen: 32, 21.33 or 16 cm would")  # fmt: skip
    assert [round(v, 2) for v in dividing_sizes_cm(64, 30)] == [32.0, 21.33, 16.0]


def test_fabric_width_and_defaults_carry_the_rules(ws):
    body = "[defaults]\nfabric_width_cm = 140\ndpi = 100\n" + job("size_cm = [30, 32]\nscreen_circumference_cm = 64")
    only_error(manifest(ws, body), item="job 'j'", field="fabric_width_cm",
               contains="width 30 cm does not divide the 140 cm fabric width: 35, 28 or 23.33 cm would")  # fmt: skip


def test_a_mirror_repeat_prints_twice_its_tile(ws):
    third = "size_cm = [16, 21.3333]\ndpi = 100\nscreen_circumference_cm = 64"  # 64 / 3 cm
    assert load_one(manifest(ws, job(f'repeat = "block"\n{third}')))
    path = manifest(ws, job(f'repeat = "mirror"\n{third}'))
    only_error(path, item="job 'j'", field="screen_circumference_cm",
               contains="height 42.67 cm does not divide the 64 cm screen (a mirror repeat's printed unit is twice")  # fmt: skip


@pytest.mark.parametrize("repeat", ["block", "half-drop", "drop-1/3", "brick-1/3", "mirror"])
def test_size_cm_fit_satisfies_the_rules(ws, repeat):
    rules = "screen_circumference_cm = 64\nfabric_width_cm = 137\ndpi = 20"
    spec = load_one(manifest(ws, job(f'repeat = "{repeat}"\nsize_cm = "fit"\n{rules}')))
    assert rule_problems(spec.repeat, spec.width, spec.height, spec.dpi, 64, 137) == []
    # nearest to the 120 x 90 px design: at 20 dpi the screen is 503.9 px, 6 x 84 (mirror: 3 units of 2 x 84);
    # the fabric 1078.7 px, 9 x 120 (mirror: 4 units of 2 x 135)
    assert (spec.width, spec.height) == ((135, 84) if repeat == "mirror" else (120, 84))
    # one rule alone keeps the design's aspect on the other side
    alone = load_one(manifest(ws, job(f'repeat = "{repeat}"\nsize_cm = "fit"\nscreen_circumference_cm = 64\ndpi = 20')))
    assert alone.height == 84 and alone.width == pytest.approx(84 * 120 / 90, abs=3)


def test_fit_without_a_rule_is_an_error(ws):
    only_error(manifest(ws, job('size_cm = "fit"')), item="job 'j'", field="size_cm",
               contains="needs screen_circumference_cm or fabric_width_cm")  # fmt: skip


def test_colourways_are_named_palettes_of_the_separation(ws):
    ways = 'colourways = [{ name = "indigo", colors = ["#1b2a49", "f2e8cf"] }, { name = "rust", colors = ["#8a3b12", "#eeeeee"] }]'
    spec = load_one(manifest(ws, job(f"colors = 2\n{ways}")))
    assert [(w.name, w.colors) for w in spec.colourways] == [
        ("indigo", ("#1b2a49", "#f2e8cf")),
        ("rust", ("#8a3b12", "#eeeeee")),
    ]
    assert spec.settings.separation_colors == 2


@pytest.mark.parametrize(
    ("extra", "field", "contains"),
    [
        ('colourways = [{ name = "a", colors = ["#000000"] }]', "colourways", "set colors = N"),
        ('colors = 3\ncolourways = [{ name = "a", colors = ["#000000"] }]', "colourways", "has 1 colours; the separation has 3"),
        ('colors = 2\ncolourways = [{ name = "a", colors = ["#000000", "red"] }]', "colourways", "'red' is not a colour"),
        ('colors = 2\ncolourways = [{ name = "a", colours = [] }]', "colourways", "unknown key 'colours'"),
        ('colors = 2\ncolourways = [{ name = "a", colors = ["#0", "#1"] }, { name = "a", colors = [] }]', "colourways", "not a colour"),
        ('colors = 3\npalette = "#ff0000,#00ff00"', "palette", "palette has 2 colours but colors = 3"),
        ('palette = "design"', "palette", 'needs colors = N'),
        ("colors = 1", "colors", "2 or more"),
    ],
)
def test_colour_mistakes_name_the_field(ws, extra, field, contains):
    found = errors(manifest(ws, job(extra)))
    assert len(found) == 1 and contains in found[0].message, found
    assert found[0].item == "job 'j'" and found[0].field in (field, "settings"), found[0]


def test_colourways_are_per_job(ws):
    body = '[defaults]\ncolourways = [{ name = "a", colors = ["#000000", "#ffffff"] }]\n' + job("colors = 2")
    found = errors(manifest(ws, body))
    assert len(found) == 1 and found[0].field == "colourways", found

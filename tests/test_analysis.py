"""Input analysis: seam report per repeat type, repeat period by autocorrelation, crop, `weft inspect`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_repeat import smooth_repeat  # smooth textures, seamless under their repeat
from rich.console import Console
from typer.testing import CliRunner

from pipeline.repeat.analysis import (
    crop_to_repeat,
    design_seam_ratio,
    detect_period,
    find_period,
    inspect_command,
    period_seam_ratios,
    seam_report,
)
from pipeline.cli import app
from pipeline.repeat.lattice import Repeat
from pipeline.manifest.images import load_rgb
from pipeline.repeat.seams import VISIBLE_ABOVE

DESIGNS = Path(__file__).resolve().parent.parent / "manifests" / "designs"


@pytest.fixture(scope="module")
def tartan(shared_data: Path) -> np.ndarray:
    """The upstream render: 2 x 2 setts of 848 px, its repeat boundary on a stripe edge (shared data set)."""
    return load_rgb(shared_data / "designs" / "tartan_royal_stewart.png")


@pytest.fixture(scope="module")
def demo_render() -> np.ndarray:
    """The same render at half size, rebuilt from the demo's one sett (always in the repository).

    The demo sett is the upstream render's 848 px window at (144, 144), halved (manifests/SOURCES.md):
    tiled 2 x 2 and rolled back by 72 px, it is the halved render pixel for pixel.
    """
    sett = load_rgb(DESIGNS / "royal_stewart_sett.png")
    return np.roll(np.tile(sett, (2, 2, 1)), (72, 72), axis=(0, 1))


#: (fixture, period tolerance in px, least block seam ratio of the raw image): the demo sett,
#: always there, and the shared full-size render it was halved from.
SETTS = [("demo_render", 1, VISIBLE_ABOVE), ("tartan", 2, 2.0)]  # 1.68 at half size, 3.2 at full


@pytest.mark.parametrize(("name", "tolerance", "block_seam"), SETTS)
def test_sett_period_is_half_the_image(name: str, tolerance: int, block_seam: float, request) -> None:
    """2 x 2 setts: the known answer."""
    image = request.getfixturevalue(name)
    height, width = image.shape[:2]
    px, py = detect_period(image)
    assert abs(px - width / 2) <= tolerance and abs(py - height / 2) <= tolerance
    period = find_period(image)
    assert period.score_x > 0.99 and period.score_y > 0.99
    assert period.several and period.counts == pytest.approx((2.0, 2.0), abs=0.01)
    assert crop_to_repeat(image, period).shape == (height // 2, width // 2, 3)


@pytest.mark.parametrize(("name", "tolerance", "block_seam"), SETTS)
def test_sett_is_an_exact_repeat_even_with_a_stripe_edge_on_its_boundary(
    name: str, tolerance: int, block_seam: float, request
) -> None:
    """Its setts end on a stripe edge, so the local ratio is high; one period in, the same line matches."""
    image = request.getfixturevalue(name)
    period = find_period(image)
    for repeat in (Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK):  # the demo's 848 px is not a multiple of 3
        ref = period_seam_ratios(image, repeat, period)
        assert ref["vertical"] == pytest.approx(1.0) and ref["horizontal"] == pytest.approx(1.0)
        assert design_seam_ratio(image, repeat, period) == pytest.approx(1.0)
    assert seam_report(image)[Repeat.BLOCK] > block_seam


def test_demo_render_is_848_square(demo_render: np.ndarray) -> None:
    assert demo_render.shape[:2] == (848, 848)


def test_demo_sett_is_the_halved_window_of_the_shared_render(tartan: np.ndarray, demo_render: np.ndarray) -> None:
    """What manifests/SOURCES.md says the demo file is, checked against the shared data set."""
    halved = tartan.reshape(848, 2, 848, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(halved - demo_render).max() <= 0.5


@pytest.mark.parametrize(("repeats", "noise"), [((3, 2), 0.0), ((2, 3), 8.0)])
def test_period_of_a_tiled_texture(repeats: tuple[int, int], noise: float) -> None:
    tile = smooth_repeat(Repeat.BLOCK, 53, 70, seed=4, sigma=2.0)
    across, down = repeats
    img = np.tile(tile, (down, across, 1))
    img = img + np.random.default_rng(0).normal(0, noise, img.shape)  # scanner noise
    img += np.linspace(0, 40, img.shape[1])[None, :, None]  # uneven lighting
    px, py = detect_period(img)
    assert abs(px - 70) <= 1 and abs(py - 53) <= 1
    assert crop_to_repeat(img).shape == (53, 70, 3)


def test_no_period_in_a_single_repeat() -> None:
    img = smooth_repeat(Repeat.BLOCK, 120, 160, seed=7)
    period = find_period(img)
    assert (period.px, period.py) == (160.0, 120.0)
    assert not period.several and period.score_x == 0.0
    assert crop_to_repeat(img, period).shape == img.shape
    assert np.isnan(period_seam_ratios(img, "block", period)["vertical"])
    assert design_seam_ratio(img, "block", period) < 1.2


def test_seam_report_orders_the_repeat_types() -> None:
    img = smooth_repeat(Repeat.HALF_DROP, 64, 96, seed=2)
    report = seam_report(img)
    assert set(report) == set(Repeat)
    assert report[Repeat.HALF_DROP] < 1.15 < 1.5 < report[Repeat.BLOCK]
    odd = np.zeros((63, 95, 3), np.uint8)
    odd_report = seam_report(odd)
    assert np.isnan(odd_report[Repeat.HALF_DROP]) and np.isnan(odd_report[Repeat.BRICK])
    assert odd_report[Repeat.BLOCK] == 1.0


def test_inspect_prints_a_table(shared_data: Path) -> None:
    console = Console(record=True, width=120)
    inspect_command(shared_data / "designs" / "tartan_royal_stewart.png", None, console)
    text = console.export_text()
    for word in ("block", "half-drop", "brick", "seamless", "848.0 x 848.0 px", "2.00 x 2.00 repeats"):
        assert word in text


def test_inspect_prints_a_table_for_the_demo_render(demo_render: np.ndarray, make_image) -> None:  # type: ignore[no-untyped-def]
    console = Console(record=True, width=120)
    inspect_command(make_image("render.png", pixels=demo_render), None, console)
    text = console.export_text()
    for word in ("block", "half-drop", "brick", "seamless", "424.0 x 424.0 px", "2.00 x 2.00 repeats"):
        assert word in text


def test_weft_inspect_command(make_image) -> None:  # type: ignore[no-untyped-def]
    pixels = np.rint(np.tile(smooth_repeat(Repeat.BLOCK, 40, 50, seed=1), (2, 3, 1))).astype(np.uint8)
    path = make_image("scan.png", pixels=pixels)
    result = CliRunner().invoke(app, ["inspect", str(path), "--repeat", "brick"])
    assert result.exit_code == 0, result.output
    assert "brick" in result.output and "block" not in result.output
    assert "50.0 x 40.0 px" in result.output
    missing = CliRunner().invoke(app, ["inspect", str(path.with_name("nope.png"))])
    assert missing.exit_code == 1
    assert "nope.png: file not found" in " ".join(missing.output.split())

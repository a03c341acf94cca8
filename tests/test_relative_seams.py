"""Relative seam figures: a boundary against the image's own lines, so texture does not cry wolf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_repeat import smooth_repeat
from PIL import Image

from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import (
    boundary_seam_ratio,
    mean_step,
    repeat_seam_relative,
    seam_figures,
    step_profile,
    tile_boundary_lines,
    tile_seam_relative,
)
from pipeline.repeat.tiles import TileGrid

WAVE = Path(__file__).resolve().parent.parent / "manifests" / "styles" / "hokusai_great_wave.jpg"


@pytest.fixture(scope="module")
def brushwork() -> np.ndarray:
    """192 x 192 px of the Great Wave's woodblock texture: strong edges everywhere, no tile lines."""
    return np.asarray(Image.open(WAVE).convert("RGB"))[100:292, 200:392].astype(np.float64)


def stepped_tiles(img: np.ndarray, core: int) -> np.ndarray:
    """Every other tile of a ``core`` px checkerboard 4 % brighter: a brightness step at every tile line."""
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    brighter = ((ys // core + xs // core) % 2)[..., None]
    return np.clip(img * (1 + 0.04 * brighter), 0, 255)


@pytest.mark.parametrize("repeat", list(Repeat))
def test_texture_without_seams_reads_one_and_a_4_percent_step_reads_clearly_above(brushwork, repeat):
    grid = TileGrid(repeat, 192, 192, 32)
    clean = tile_seam_relative(brushwork, grid)["overall"]
    # the local ratio (lines against their 4 neighbours) calls this texture a seam: the false alarm
    local = max(boundary_seam_ratio(brushwork, tile_boundary_lines(grid), repeat=repeat).values())
    assert local > 1.15
    assert 0.9 < clean.ratio < 1.05 and clean.rank > 10 and clean.compared == 32
    step = tile_seam_relative(stepped_tiles(brushwork, 32), grid)["overall"]
    assert step.ratio > 1.15 and step.rank == 1


@pytest.mark.parametrize("repeat", list(Repeat))
def test_a_seamless_repeat_boundary_reads_about_one_and_a_cut_one_ranks_first(brushwork, repeat):
    seamless = repeat_seam_relative(smooth_repeat(repeat, 192, 192, seed=3, sigma=2.0), repeat)
    cut = repeat_seam_relative(brushwork, repeat)  # a crop of a larger picture does not meet itself
    if repeat.kind == "mirror":  # across a mirror edge the two pixels that meet are the same pixel
        assert seamless["overall"].ratio == cut["overall"].ratio == 0.0
        return
    assert 0.85 < seamless["vertical"].ratio < 1.15 and 0.85 < seamless["horizontal"].ratio < 1.15
    assert seamless["overall"].compared == 192 and seamless["overall"].rank > 5
    assert cut["overall"].ratio > 1.5 and cut["overall"].rank == 1


def test_the_step_profile_is_the_mean_step_of_each_line(brushwork):
    for repeat in ("drop-1/3", "mirror", "brick"):
        profile = step_profile(brushwork, repeat, "x")
        for p in (0, 1, 95, 191):
            assert profile[p] == pytest.approx(mean_step(brushwork, ("x", p), repeat=repeat), rel=1e-6)
        assert step_profile(brushwork, repeat, "y")[0] == pytest.approx(mean_step(brushwork, ("y", 0), repeat=repeat))


def test_seam_figures_hold_ratio_rank_and_the_local_ratios(brushwork):
    grid = TileGrid("half-drop", 192, 192, 32)
    figures = seam_figures(stepped_tiles(brushwork, 32), "half-drop", grid)
    assert set(figures) == {
        "repeat", "repeat_rank", "repeat_compared", "repeat_local",
        "internal_max", "internal_rank", "internal_compared", "internal_max_local",
    }  # fmt: skip
    assert figures["internal_rank"] == 1 and figures["internal_compared"] == 32
    assert set(seam_figures(brushwork, "block")) == {"repeat", "repeat_rank", "repeat_compared", "repeat_local"}
    one_tile = tile_seam_relative(brushwork, TileGrid("block", 192, 192, 256))
    assert np.isnan(one_tile["overall"].ratio)

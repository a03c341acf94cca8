"""Seam metrics on constructed images: periodic scores about 1, broken joins score far higher."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_repeat import smooth_repeat

from pipeline.repeat.lattice import Repeat

from pipeline.repeat.tiles import TileGrid
from pipeline.repeat.seams import (
    boundary_seam_ratio,
    mean_step,
    repeat_seam_ratio,
    repeat_seam_ratios,
    tile_boundary_lines,
    tile_seam_ratio,
)


@pytest.mark.parametrize("repeat", [r for r in Repeat if r.kind != "mirror"])
def test_periodic_images_score_about_one(repeat: Repeat) -> None:
    img = smooth_repeat(repeat, 126, 192)
    ratios = repeat_seam_ratios(img, repeat)
    assert set(ratios) == {"vertical", "horizontal", "overall"}
    assert 0.9 < ratios["overall"] < 1.1
    assert 0.8 < ratios["vertical"] < 1.2 and 0.8 < ratios["horizontal"] < 1.2  # one line each: noisier
    noise = np.random.default_rng(0).integers(0, 256, (66, 96, 3), dtype=np.uint8)
    assert 0.9 < repeat_seam_ratio(noise, repeat) < 1.1


def test_a_mirror_boundary_has_no_step_at_all() -> None:
    """Across a mirror edge the two pixels that meet are the same pixel: the step is zero by construction."""
    noise = np.random.default_rng(0).integers(0, 256, (66, 96, 3), dtype=np.uint8)
    assert repeat_seam_ratio(noise, "mirror") == 0.0
    assert repeat_seam_ratio(noise, "block") > 0.9


def test_image_glued_to_its_rotated_copy_scores_far_higher() -> None:
    half = smooth_repeat(Repeat.BLOCK, 128, 96)
    glued = np.concatenate([half, half[::-1, ::-1]], axis=1)
    ratios = repeat_seam_ratios(glued, "block")
    assert ratios["vertical"] > 3.0  # the right edge meets the left edge upside down
    assert ratios["horizontal"] < 1.15  # each half still joins top to bottom
    assert repeat_seam_ratio(glued, "block") > 1.5 > repeat_seam_ratio(smooth_repeat(Repeat.BLOCK), "block")
    # the same line inside the image is as visible as the wrap
    internal = boundary_seam_ratio(glued, [("x", 96), ("x", 48)])
    assert internal[("x", 96)] > 3.0
    assert 0.8 < internal[("x", 48)] < 1.2


def test_a_design_cut_from_a_bigger_texture_does_not_join() -> None:
    """What most scans are: a window of a bigger fabric, whose opposite edges do not match."""
    fabric = smooth_repeat(Repeat.BLOCK, 200, 300, seed=3)
    cut = fabric[30:158, 40:232]
    assert repeat_seam_ratio(cut, "block") > 3.0
    assert repeat_seam_ratio(fabric, "block") < 1.1


def test_the_offset_is_part_of_the_seam() -> None:
    """A half-drop design is seamless as half-drop, not as block; and the other way round."""
    half_drop = smooth_repeat(Repeat.HALF_DROP, seed=5)
    block = smooth_repeat(Repeat.BLOCK, seed=5)
    assert repeat_seam_ratios(half_drop, "half-drop")["vertical"] < 1.15
    assert repeat_seam_ratios(half_drop, "block")["vertical"] > 2.0
    assert repeat_seam_ratios(block, "half-drop")["vertical"] > 2.0
    assert repeat_seam_ratios(block, "brick")["horizontal"] > 2.0
    assert repeat_seam_ratios(block, "half-drop")["horizontal"] < 1.15  # the top/bottom join has no offset


def test_internal_tile_boundaries() -> None:
    """Tiles that were made independently show at their borders; lines inside a tile do not."""
    grid = TileGrid(Repeat.BLOCK, 192, 128, 64)
    assert tile_boundary_lines(grid) == [("x", 64), ("x", 128), ("y", 64)]
    assert tile_boundary_lines(grid, include_frame_edges=True) == [("x", 0), ("x", 64), ("x", 128), ("y", 0), ("y", 64)]
    patchwork = np.empty((128, 192, 3))
    for tile in grid.tiles():  # every tile its own seamless texture: smooth inside, steps at every border
        patchwork[tile.core] = smooth_repeat(Repeat.BLOCK, 64, 64, seed=10 + tile.row * 3 + tile.col)
    ratios = boundary_seam_ratio(patchwork, tile_boundary_lines(grid) + [("x", 32), ("y", 96)])
    assert all(ratios[line] > 2.0 for line in tile_boundary_lines(grid))
    assert 0.75 < ratios[("x", 32)] < 1.25 and 0.75 < ratios[("y", 96)] < 1.25
    assert tile_seam_ratio(patchwork, grid) > 2.0
    assert 0.9 < tile_seam_ratio(smooth_repeat(Repeat.BLOCK), grid) < 1.1
    assert np.isnan(tile_seam_ratio(patchwork, TileGrid(Repeat.BLOCK, 192, 128, 200)))


def test_dtypes_gray_and_flat_images() -> None:
    img = smooth_repeat(Repeat.BRICK)
    as_uint8 = np.rint(img).astype(np.uint8)
    as_float = as_uint8.astype(np.float32)
    assert repeat_seam_ratio(as_uint8, "brick") == pytest.approx(repeat_seam_ratio(as_float, "brick"))
    gray = as_uint8[..., 0]
    assert 0.85 < repeat_seam_ratio(gray, "brick") < 1.15
    flat = np.full((10, 12, 3), 9, np.uint8)
    assert repeat_seam_ratio(flat, "half-drop") == 1.0
    step = flat.copy()
    step[:, 6:] = 200
    assert repeat_seam_ratios(step, "block")["vertical"] == float("inf")
    assert mean_step(step, ("x", 6)) == 191.0
    with pytest.raises(ValueError, match="'x' or 'y'"):
        boundary_seam_ratio(step, [("z", 1)])  # type: ignore[list-item]

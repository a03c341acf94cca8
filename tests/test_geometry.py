"""Repeat lattices, gathers, wrap padding, frames, tile grids and wrapped overlaps.

The reference for "the plane tiled by an image" is built here from the lattice definition
with np.tile and np.roll only, independently of ``source_coords`` and ``gather_window``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_repeat import plane_3x3
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.nn import functional

from pipeline.errors import GeometryError
from pipeline.repeat.gather import gather_window, reframe, wrap_pad
from pipeline.repeat.lattice import (
    Repeat,
    check_size,
    lattice_translations,
    side_divisors,
    size_quantum,
    source_coords,
)
from pipeline.repeat.tiles import Rect, Tile, TileGrid, feather_weights, wrapped_overlaps

FAST = settings(max_examples=60, deadline=None)
SLOW = settings(max_examples=15, deadline=None)


def in_lattice(repeat: Repeat, width: int, height: int, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Is (dy, dx) a translation of the lattice? Straight from the table in repeat/lattice.py."""
    if repeat.kind == "mirror":
        return (dx % (2 * width) == 0) & (dy % (2 * height) == 0)
    if repeat.kind == "drop":
        drop = int(repeat.fraction * height)
        return (dx % width == 0) & ((dy - (dx // width) * drop) % height == 0)
    if repeat.kind == "brick":
        offset = int(repeat.fraction * width)
        return (dy % height == 0) & ((dx - (dy // height) * offset) % width == 0)
    return (dx % width == 0) & (dy % height == 0)


@st.composite
def lattices(draw: st.DrawFn, max_side: int = 12, min_side: int = 1) -> tuple[Repeat, int, int]:
    """(repeat, width, height) obeying the size rules (sides multiples of the drop's denominator)."""
    repeat = draw(st.sampled_from([*Repeat, Repeat("drop-2/5")]))
    dw, dh = side_divisors(repeat)
    width = draw(st.integers(min_side, max_side))
    height = draw(st.integers(min_side, max_side))
    return repeat, max(dw, width - width % dw), max(dh, height - height % dh)


@st.composite
def tiles_with_image(draw: st.DrawFn, max_side: int = 12, channels: int = 3) -> tuple[Repeat, np.ndarray]:
    repeat, width, height = draw(lattices(max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return repeat, rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def as_torch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]


def from_torch(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


# --- size rules -------------------------------------------------------------------------------


def test_size_rules_say_what_would_work() -> None:
    check_size("block", 7, 5)
    with pytest.raises(GeometryError, match="even height.*8x6 or 8x8"):
        check_size("half-drop", 8, 7)
    with pytest.raises(GeometryError, match="even width.*6x4 or 8x4"):
        check_size(Repeat.BRICK, 7, 4)
    with pytest.raises(GeometryError, match="unknown repeat"):
        check_size("diamond", 4, 4)
    assert size_quantum("block", 4) == (16, 16)
    assert size_quantum("half-drop", 4) == (16, 32)
    assert size_quantum("brick", 4) == (32, 16)
    with pytest.raises(GeometryError, match=r"drop-1/3 needs a height divisible by 3 \(the drop is H/3\); 8x10 does not work, 8x9 or 8x12"):
        check_size("drop-1/3", 8, 10)
    with pytest.raises(GeometryError, match=r"brick-2/5 needs a width divisible by 5 \(the offset is 2W/5\)"):
        check_size("brick-2/5", 8, 10)
    assert size_quantum("drop-1/3", 4) == (16, 48) and size_quantum("mirror", 4) == (16, 16)


def test_repeat_names_are_canonical_interned_and_survive_pickling() -> None:
    import pickle

    assert Repeat("Drop-1/2") is Repeat.HALF_DROP and Repeat("half-brick") is Repeat.BRICK
    assert Repeat.with_drop("half-drop", "1/3") is Repeat.THIRD_DROP == "drop-1/3"
    assert pickle.loads(pickle.dumps(Repeat("brick-2/5"))) is Repeat("brick-2/5")
    with pytest.raises(GeometryError, match="has no drop"):
        Repeat.with_drop("mirror", "1/3")
    with pytest.raises(GeometryError, match="strictly between 0 and 1"):
        Repeat.with_drop("brick", "3/2")


# --- gathers against the 3x3 plane -------------------------------------------------------------


@FAST
@given(tiles_with_image(), st.data())
def test_tile_with_halo_equals_window_of_3x3_plane(case: tuple[Repeat, np.ndarray], data: st.DataObject) -> None:
    repeat, img = case
    height, width = img.shape[:2]
    core = data.draw(st.integers(1, max(height, width)), label="core")
    grid = TileGrid(repeat, width, height, core)
    tile = grid.tile(data.draw(st.integers(0, grid.rows - 1)), data.draw(st.integers(0, grid.cols - 1)))
    halo = data.draw(st.integers(0, min(height, width)), label="halo")
    y0, x0, h, w = tile.window(halo)
    expected = plane_3x3(img, repeat)[height + y0 : height + y0 + h, width + x0 : width + x0 + w]
    np.testing.assert_array_equal(gather_window(img, repeat, y0, x0, h, w), expected)
    np.testing.assert_array_equal(grid.read(img, tile, halo), expected)
    np.testing.assert_array_equal(from_torch(gather_window(as_torch(img), repeat, y0, x0, h, w)), expected)
    window = gather_window(img, repeat, y0, x0, h, w)
    np.testing.assert_array_equal(window[tile.core_in_window(halo)], img[tile.core])


@FAST
@given(tiles_with_image(), st.data())
def test_any_window_and_source_coords_agree_with_3x3_plane(
    case: tuple[Repeat, np.ndarray], data: st.DataObject
) -> None:
    repeat, img = case
    height, width = img.shape[:2]
    plane = plane_3x3(img, repeat)
    y0 = data.draw(st.integers(-height, 2 * height))
    x0 = data.draw(st.integers(-width, 2 * width))
    h = data.draw(st.integers(0, 2 * height - y0))
    w = data.draw(st.integers(0, 2 * width - x0))
    expected = plane[height + y0 : height + y0 + h, width + x0 : width + x0 + w]
    got = gather_window(img, repeat, y0, x0, h, w)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    ys, xs = np.mgrid[-height : 2 * height, -width : 2 * width]
    sx, sy = source_coords(repeat, xs, ys, width, height)
    np.testing.assert_array_equal(img[sy, sx], plane)


@FAST
@given(tiles_with_image(), st.integers(-50, 50), st.integers(-9, 9), st.integers(-9, 9))
def test_window_is_lattice_periodic_far_from_the_tile(
    case: tuple[Repeat, np.ndarray], k: int, y0: int, x0: int
) -> None:
    """A window moved by any multiple of a lattice vector reads the same pixels."""
    repeat, img = case
    height, width = img.shape[:2]
    near = gather_window(img, repeat, y0, x0, height + 3, width + 2)
    for dy, dx in lattice_translations(repeat, width, height):
        np.testing.assert_array_equal(gather_window(img, repeat, y0 + k * dy, x0 + k * dx, height + 3, width + 2), near)


@FAST
@given(tiles_with_image(channels=2), st.integers(1, 2))
def test_wrap_pad_then_conv_equals_conv_of_periodic_extension(case: tuple[Repeat, np.ndarray], pad: int) -> None:
    from pipeline.repeat.gather import LatticePad2d

    repeat, img = case
    height, width = img.shape[:2]
    pad = min(pad, height, width)  # the 3x3 plane (and circular F.pad) reach one period out
    x = as_torch(img).double()
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 2 * pad + 1, 2 * pad + 1, dtype=torch.float64, generator=generator)
    ours = functional.conv2d(LatticePad2d(repeat, pad)(x), weight)
    plane = as_torch(plane_3x3(img, repeat)).double()
    reference = functional.conv2d(plane, weight)[..., height - pad : 2 * height - pad, width - pad : 2 * width - pad]
    assert ours.shape == (1, 3, height, width)
    torch.testing.assert_close(ours, reference)
    # the autograd path (torch.cat) gives the same numbers as the copy path
    leaf = x.clone().requires_grad_(True)
    torch.testing.assert_close(wrap_pad(leaf, repeat, pad), wrap_pad(x, repeat, pad), rtol=0, atol=0)


@pytest.mark.parametrize("repeat", list(Repeat))
def test_wrap_pad_gradient(repeat: Repeat) -> None:
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: wrap_pad(t, repeat, 3), (x,))


def test_torch_gather_keeps_channels_last_and_device() -> None:
    x = torch.randn(1, 3, 8, 10).contiguous(memory_format=torch.channels_last)
    out = wrap_pad(x, "half-drop", 2)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert out.device == x.device
    torch.testing.assert_close(out, wrap_pad(x.contiguous(), "half-drop", 2), rtol=0, atol=0)


def test_empty_and_negative_windows() -> None:
    img = np.zeros((4, 6, 3), np.uint8)
    assert gather_window(img, "brick", 3, -2, 0, 5).shape == (0, 5, 3)
    assert gather_window(as_torch(img), "half-drop", 3, -2, 2, 0).shape == (1, 3, 2, 0)
    with pytest.raises(GeometryError, match="negative"):
        gather_window(img, "block", 0, 0, -1, 2)


@SLOW
@given(tiles_with_image(max_side=16), st.data())
def test_numpy_torch_and_zarr_gather_alike(case: tuple[Repeat, np.ndarray], data: st.DataObject) -> None:
    import zarr

    repeat, img = case
    height, width = img.shape[:2]
    chunks = (data.draw(st.integers(1, height)), data.draw(st.integers(1, width)), 3)
    y0, x0 = data.draw(st.integers(-2 * height, 2 * height)), data.draw(st.integers(-2 * width, 2 * width))
    h, w = data.draw(st.integers(0, 3 * height)), data.draw(st.integers(0, 3 * width))
    with tempfile.TemporaryDirectory() as tmp:
        array = zarr.create_array(store=Path(tmp) / "level.zarr", shape=img.shape, chunks=chunks, dtype="uint8")
        array[...] = img
        from_zarr = gather_window(array, repeat, y0, x0, h, w)
    from_numpy = gather_window(img, repeat, y0, x0, h, w)
    assert isinstance(from_zarr, np.ndarray)
    np.testing.assert_array_equal(from_zarr, from_numpy)
    np.testing.assert_array_equal(from_torch(gather_window(as_torch(img), repeat, y0, x0, h, w)), from_numpy)


# --- frames and tile grids ----------------------------------------------------------------------


@FAST
@given(lattices(max_side=40), st.integers(1, 48), st.integers(-100, 100), st.integers(-100, 100))
def test_tile_cores_cover_every_pixel_once(
    lattice: tuple[Repeat, int, int], core: int, oy: int, ox: int
) -> None:
    repeat, width, height = lattice
    origin = (0, 0) if repeat.kind == "mirror" else (oy, ox)  # a mirror's frame cannot move (next tests)
    grid = TileGrid(repeat, width, height, core, origin=origin)
    count = np.zeros((height, width), np.int64)
    tiles = list(grid.tiles())
    for tile in tiles:
        count[tile.core] += 1
        assert tile.height >= 1 and tile.width >= 1
        assert grid.tile_at(tile.y0 + tile.height - 1, tile.x0) == tile
    assert (count == 1).all()
    assert len(tiles) == len(grid) == grid.rows * grid.cols
    assert [(t.row, t.col) for t in tiles] == sorted((t.row, t.col) for t in tiles)  # row-major
    assert grid.chunks == (min(core, height), min(core, width))


@FAST
@given(tiles_with_image(), st.integers(-30, 30), st.integers(-30, 30), st.integers(-30, 30), st.integers(-30, 30))
def test_frames_hold_the_whole_repeat(case: tuple[Repeat, np.ndarray], oy: int, ox: int, qy: int, qx: int) -> None:
    """A level stored in any frame reads the same plane: window at plane (y, x) = gather at (y-oy, x-ox)."""
    repeat, img = case
    assume(repeat.kind != "mirror")  # a mirrored plane's W x H windows are not whole repeats: see below
    height, width = img.shape[:2]
    frame = reframe(img, repeat, (0, 0), (oy, ox))
    np.testing.assert_array_equal(frame, gather_window(img, repeat, oy, ox, height, width))
    np.testing.assert_array_equal(
        gather_window(frame, repeat, qy - oy, qx - ox, 2 * height, 2 * width),
        gather_window(img, repeat, qy, qx, 2 * height, 2 * width),
    )
    np.testing.assert_array_equal(reframe(frame, repeat, (oy, ox), (0, 0)), img)


def test_mirror_frames_are_not_whole_repeats_so_grids_refuse_to_move() -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    shifted = gather_window(img, "mirror", 0, 2, 4, 6)
    assert not np.array_equal(reframe(shifted, "mirror", (0, 2), (0, 0)), img)  # columns 0-1 are lost
    with pytest.raises(GeometryError, match="mirror repeat's frame starts at"):
        TileGrid("mirror", 6, 4, 2, origin=(0, 2))


def test_grid_shape_and_small_last_tiles() -> None:
    grid = TileGrid("half-drop", 10, 8, 4, origin=(2, 2))
    assert grid.shape == (2, 3)
    # cores are in frame coordinates: (row, col, y0, x0, height, width), the last column 2 px wide
    assert grid.tile(0, 0) == Tile(0, 0, 0, 0, 4, 4)
    assert grid.tile(0, 1) == Tile(0, 1, 0, 4, 4, 4)
    assert grid.tile(1, 2) == Tile(1, 2, 4, 8, 4, 2)
    assert list(grid.tiles())[-1] == grid.tile(1, 2) and len(list(grid.tiles())) == 6
    last = grid.tile(1, 2)
    assert (last.y0, last.x0, last.height, last.width) == (4, 8, 4, 2)
    assert last.rect == Rect(4, 8, 4, 2)
    assert last.window(3) == Rect(1, 5, 10, 8)
    assert grid.with_origin((6, 1)).origin == (6, 1)
    assert grid.to_plane(*grid.from_plane(5, 7)) == (5, 7)
    with pytest.raises(IndexError, match=r"tile \(2, 0\) outside a 2x3 grid"):
        grid.tile(2, 0)
    with pytest.raises(GeometryError, match="brick needs an even width"):
        TileGrid("brick", 9, 8, 4)
    with pytest.raises(GeometryError, match="tile core must be at least 1 px, got 0"):
        TileGrid("block", 9, 8, 0)


# --- lattice vectors and wrapped overlaps -----------------------------------------------------------


@FAST
@given(lattices(max_side=10), st.integers(0, 3))
def test_lattice_translations_are_all_lattice_vectors_in_reach(lattice: tuple[Repeat, int, int], reach: int) -> None:
    repeat, width, height = lattice
    got = lattice_translations(repeat, width, height, reach)
    dy, dx = np.mgrid[-reach * height : reach * height + 1, -reach * width : reach * width + 1]
    mask = in_lattice(repeat, width, height, dy, dx)
    assert got == sorted(zip(dy[mask].tolist(), dx[mask].tolist()))
    assert (0, 0) in got


rects = st.tuples(st.integers(-9, 9), st.integers(-9, 9), st.integers(1, 9), st.integers(1, 9))


@FAST
@given(lattices(max_side=6), rects, rects)
def test_wrapped_overlaps_match_pixel_masks(lattice: tuple[Repeat, int, int], a: tuple, b: tuple) -> None:
    repeat, width, height = lattice
    ra, rb = Rect(*a), Rect(*b)
    # every pixel pair (p in b, q in a) whose difference is a lattice vector t
    qy, qx = (v.ravel() for v in np.mgrid[ra.y0 : ra.y1, ra.x0 : ra.x1])
    py, px = (v.ravel() for v in np.mgrid[rb.y0 : rb.y1, rb.x0 : rb.x1])
    dy, dx = py[:, None] - qy[None, :], px[:, None] - qx[None, :]
    bi, ai = np.nonzero(in_lattice(repeat, width, height, dy, dx))
    expected: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for i, j in zip(bi.tolist(), ai.tolist()):
        expected.setdefault((int(dy[i, j]), int(dx[i, j])), set()).add((int(py[i]), int(px[i])))
    got = wrapped_overlaps(repeat, width, height, a, b)
    assert sorted(t for t, _ in got) == sorted(expected)
    for t, part in got:
        ys, xs = np.mgrid[part.y0 : part.y1, part.x0 : part.x1]
        assert set(zip(ys.ravel().tolist(), xs.ravel().tolist())) == expected[t]


@FAST
@given(lattices(max_side=24, min_side=2), st.integers(2, 9), st.integers(0, 4), st.data())
def test_contributors_agree_with_wrapped_overlaps(
    lattice: tuple[Repeat, int, int], core: int, overlap: int, data: st.DataObject
) -> None:
    repeat, width, height = lattice
    grid = TileGrid(repeat, width, height, core)
    target = grid.tile(data.draw(st.integers(0, grid.rows - 1)), data.draw(st.integers(0, grid.cols - 1)))
    expected = sorted(
        (tile.row, tile.col, t, part)
        for tile in grid.tiles()
        for t, part in wrapped_overlaps(repeat, width, height, tile.window(overlap), target.rect)
    )
    got = sorted((tile.row, tile.col, t, part) for tile, t, part in grid.contributors(target.rect, overlap))
    assert got == expected


@FAST
@given(lattices(max_side=6, min_side=1), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.data())
def test_feather_weights_sum_to_one(
    lattice: tuple[Repeat, int, int], n: int, overlap: int, m: int, data: st.DataObject
) -> None:
    """Every pixel's contributions from all tiles (across the wrap) add up to 1 when cores >= 2*overlap."""
    repeat, _, _ = lattice
    core = max(1, 2 * overlap) + data.draw(st.integers(0, 3))
    width, height = core * n, core * m
    dw, dh = side_divisors(repeat)
    width, height = width * dw, height * dh
    grid = TileGrid(repeat, width, height, core)
    total = np.zeros((height, width))
    for tile in grid.tiles():
        y0, x0, h, w = tile.window(overlap)
        ys, xs = np.mgrid[y0 : y0 + h, x0 : x0 + w]
        sx, sy = source_coords(repeat, xs, ys, width, height)
        np.add.at(total, (sy, sx), feather_weights(tile, overlap))
    np.testing.assert_allclose(total, 1.0, atol=1e-6)

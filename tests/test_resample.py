"""Lattice-aware resampling: windows equal crops bit for bit, periodic in, periodic out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_repeat import plane_3x3  # the plane built from the lattice definition alone
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional

from pipeline.errors import GeometryError
from pipeline.repeat.gather import gather_window, reframe
from pipeline.repeat.lattice import Repeat, honoured_size
from pipeline.repeat.resample import resample_window, resize_periodic, resize_uint8

FAST = settings(max_examples=40, deadline=None)


def _fix(repeat: Repeat, width: int, height: int) -> tuple[int, int]:
    """Round a size up to one the repeat accepts (even H for half-drop, a multiple of 3 for drop-1/3 ...)."""
    return honoured_size(repeat, width, height)


@st.composite
def resize_cases(draw: st.DrawFn, min_side: int = 2, max_side: int = 14) -> tuple[Repeat, np.ndarray, tuple[int, int]]:
    """(repeat, src uint8 (H, W, 3), dst (H2, W2)) with dst between half and triple the source."""
    repeat = draw(st.sampled_from(list(Repeat)))
    width, height = _fix(repeat, draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
    w2 = draw(st.integers(max(1, width // 2), 3 * width))
    h2 = draw(st.integers(max(1, height // 2), 3 * height))
    w2, h2 = _fix(repeat, w2, h2)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return repeat, rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (h2, w2)


@FAST
@given(resize_cases(), st.sampled_from(["bicubic", "bilinear"]), st.booleans(), st.data())
def test_windows_are_exact_crops_of_the_resized_plane(
    case: tuple, mode: str, antialias: bool, data: st.DataObject
) -> None:
    """Any window, also across the wrap, equals the same window of the whole resized repeat, bit for bit."""
    repeat, img, (h2, w2) = case
    whole = resize_periodic(img, repeat, (h2, w2), mode=mode, antialias=antialias)
    assert whole.shape == (1, 3, h2, w2) and whole.dtype == torch.float32
    y0, x0 = data.draw(st.integers(-2 * h2, 2 * h2)), data.draw(st.integers(-2 * w2, 2 * w2))
    h, w = data.draw(st.integers(0, 2 * h2)), data.draw(st.integers(0, 2 * w2))
    window = resample_window(img, repeat, (h2, w2), y0, x0, h, w, mode=mode, antialias=antialias)
    assert torch.equal(window, gather_window(whole, repeat, y0, x0, h, w))


@FAST
@given(resize_cases(min_side=6), st.booleans())
def test_resampling_the_3x3_plane_and_cropping_equals_resampling_the_repeat(case: tuple, antialias: bool) -> None:
    """Periodic in, periodic out: the 3x3 plane resized as one big image, centre cropped, is the resized repeat."""
    repeat, img, (h2, w2) = case
    height, width = img.shape[:2]
    big = plane_3x3(img, repeat)  # built from the lattice definition; its own edges are never reached
    resized_big = resize_periodic(big, Repeat.BLOCK, (3 * h2, 3 * w2), antialias=antialias)
    centre = resized_big[..., h2 : 2 * h2, w2 : 2 * w2]
    assert torch.equal(centre, resize_periodic(img, repeat, (h2, w2), antialias=antialias))
    assert big.shape[:2] == (3 * height, 3 * width)


@FAST
@given(resize_cases(), st.integers(-20, 20), st.integers(-20, 20), st.integers(-20, 20), st.integers(-20, 20))
def test_frames_at_both_levels(case: tuple, oy: int, ox: int, qy: int, qx: int) -> None:
    """A tile's init read from the previous level in its frame equals the crop of the resized plane."""
    repeat, img, (h2, w2) = case
    if repeat.kind == "mirror":  # a mirror's levels are always framed at (0, 0) (repeat/tiles.py)
        oy = ox = qy = qx = 0
    height, width = img.shape[:2]
    src_frame = reframe(img, repeat, (0, 0), (oy, ox))
    whole = resize_periodic(img, repeat, (h2, w2))
    got = resample_window(src_frame, repeat, (h2, w2), 1, -2, h2, w2 + 3, src_origin=(oy, ox), dst_origin=(qy, qx))
    assert torch.equal(got, gather_window(whole, repeat, qy + 1, qx - 2, h2, w2 + 3))


def test_numpy_torch_and_zarr_sources_agree() -> None:
    import zarr

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    expected = resample_window(img, "half-drop", (40, 45), -7, 20, 19, 33)
    tensor = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    assert torch.equal(resample_window(tensor, "half-drop", (40, 45), -7, 20, 19, 33), expected)
    with tempfile.TemporaryDirectory() as tmp:
        array = zarr.create_array(store=Path(tmp) / "l.zarr", shape=img.shape, chunks=(8, 8, 3), dtype="uint8")
        array[...] = img
        assert torch.equal(resample_window(array, "half-drop", (40, 45), -7, 20, 19, 33), expected)


@pytest.mark.parametrize(
    ("src", "dst", "antialias"),
    [((40, 60), (100, 150), False), ((80, 120), (40, 60), True), ((80, 120), (40, 60), False)],
)
def test_block_matches_torch_interpolate_on_the_periodic_extension(
    src: tuple[int, int], dst: tuple[int, int], antialias: bool
) -> None:
    """Same kernels as F.interpolate(bicubic, align_corners=False): a circularly padded image, cropped."""
    img = np.random.default_rng(0).integers(0, 256, (*src, 3), dtype=np.uint8)
    pad = 20
    padded = functional.pad(torch.from_numpy(img).permute(2, 0, 1)[None].float(), (pad,) * 4, mode="circular")
    fy, fx = dst[0] / src[0], dst[1] / src[1]
    size = (round((src[0] + 2 * pad) * fy), round((src[1] + 2 * pad) * fx))
    reference = functional.interpolate(padded, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    oy, ox = round(pad * fy), round(pad * fx)
    ours = resize_periodic(img, "block", dst, antialias=antialias)
    torch.testing.assert_close(ours, reference[..., oy : oy + dst[0], ox : ox + dst[1]], atol=2e-3, rtol=0)


@pytest.mark.parametrize("repeat", list(Repeat))
@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_same_size_is_identity_and_uint8_round_trip(repeat: Repeat, mode: str) -> None:
    img = np.random.default_rng(2).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    out = resize_periodic(img, repeat, (12, 12), mode=mode)
    assert torch.equal(out, torch.from_numpy(img).permute(2, 0, 1)[None].float())
    assert np.array_equal(resize_uint8(img, repeat, (12, 12), mode=mode), img)
    assert resize_uint8(img, repeat, (24, 6)).shape == (24, 6, 3)


def test_constant_image_stays_constant_and_gray_images_work() -> None:
    flat = np.full((8, 8), 77, np.uint8)
    out = resize_periodic(flat, "brick", (13, 22))
    assert out.shape == (1, 1, 13, 22)
    torch.testing.assert_close(out, torch.full_like(out, 77.0))


def test_bad_sizes_and_modes_are_clear_errors() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(GeometryError, match="even height"):
        resize_periodic(img, "half-drop", (9, 8))
    with pytest.raises(GeometryError, match="unknown resampling mode"):
        resize_periodic(img, "block", (9, 8), mode="lanczos")  # type: ignore[arg-type]


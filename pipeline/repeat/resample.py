"""Lattice-aware resampling: resize a repeat, or any window of the resized plane, without a seam.

A resized repeat must still be a repeat: the pixels near the right edge interpolate from the
pixels across the wrap (for half-drop, shifted by H/2; for mirror, reflected), never from a
clamped border. So every read of the source goes through :func:`pipeline.repeat.gather.gather_window`,
and only the margin-padded source window a destination window needs is ever read (a tile's
initialisation at the next scale reads a few MB of a zarr level, not the whole level).

Pixel centres map as ``x' = (x + 0.5) * W / W2 - 0.5`` (``align_corners=False``). Weights are
separable (cubic convolution a = -0.75 as torch's ``bicubic``, or linear); downsampling widens
the kernel by the scale (antialiasing, a = -0.5 like torch's ``antialias=True``). Each output
pixel is computed from exact integer positions and the same fixed sequence of elementwise
multiply-adds wherever its window starts, so a window of the resized plane equals the same
crop of :func:`resize_periodic` bit for bit; that is what lets tiles start from crops of one
upsampled level and still agree where they overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from pipeline.errors import GeometryError
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat, as_repeat, check_size, is_torch, reflect_index, spatial_shape

Mode = Literal["bicubic", "bilinear"]

_SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel; zero for |x| >= 2."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _linear(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(x), 0.0, None)


@dataclass(frozen=True)
class _Taps:
    """Interpolation along one axis: out[i] = sum_k weights[i, k] * src[first + index[i, k]]."""

    first: int  # first source index read (frame coordinates of the source)
    length: int  # source indices first .. first + length - 1 are read
    index: np.ndarray  # (n, K) int64, relative to ``first``
    weights: np.ndarray  # (n, K) float32


def _axis_taps(
    start: int, count: int, src_len: int, dst_len: int, src_origin: int, mode: str, antialias: bool,
    fold: bool = False,
) -> _Taps:
    """Taps for destination plane pixels start .. start+count-1 of an axis scaled src_len -> dst_len.

    The source position u = ((2Y + 1) * src_len - dst_len) / (2 * dst_len) is split exactly into
    an integer part and a fraction t; weights depend on t only, so the same output pixel gets
    bit-identical weights whatever window it is computed in. ``fold`` (mirror) first reflects
    destination pixels into [0, dst_len), so a pixel across a mirror edge repeats its twin's bits.
    """
    ys = np.arange(start, start + count, dtype=np.int64)
    if fold:
        ys = reflect_index(ys, dst_len)
    num = (2 * ys + 1) * src_len - dst_len
    den = 2 * dst_len
    base = num // den  # floor(u)
    t = (num - base * den) / den  # in [0, 1), float64
    scale = src_len / dst_len
    stretch = scale if (antialias and scale > 1.0) else 1.0
    support = _SUPPORT[mode] * stretch
    taps = math.ceil(2 * support)
    offsets = np.floor(t - support).astype(np.int64)[:, None] + 1 + np.arange(taps, dtype=np.int64)[None, :]
    distance = (offsets - t[:, None]) / stretch
    if mode == "bicubic":
        weights = _cubic(distance, -0.5 if stretch > 1.0 else -0.75)
    else:
        weights = _linear(distance)
    if stretch > 1.0:  # a widened kernel's samples do not sum to 1 by themselves
        total = weights[:, 0].copy()
        for k in range(1, taps):  # fixed order, so every row is summed the same way
            total = total + weights[:, k]
        weights = weights / total[:, None]
    absolute = base[:, None] + offsets - src_origin
    first = int(absolute.min()) if count else 0
    length = int(absolute.max()) - first + 1 if count else 0
    return _Taps(first, length, absolute - first, weights.astype(np.float32))


def _apply_rows(window: torch.Tensor, taps: _Taps) -> torch.Tensor:
    """Interpolate (1, C, rows, cols) along its rows: out = ((g0*w0 + g1*w1) + g2*w2) + ...

    Whole rows are gathered (contiguous copies), and every element goes through the same
    separate multiplies and adds (no fused multiply-add), so results do not depend on the
    window's size or position. Buffers are reused: fresh 100 MB tensors cost page faults.
    """
    device = window.device
    index = torch.from_numpy(taps.index).to(device)
    weights = torch.from_numpy(taps.weights).to(device)
    out = torch.index_select(window, -2, index[:, 0]).mul_(weights[:, 0, None])
    term = torch.empty_like(out)
    for k in range(1, index.shape[1]):
        torch.index_select(window, -2, index[:, k], out=term)
        out.add_(term.mul_(weights[:, k, None]))
    return out


def _as_batch(window: Any, device: torch.device | str | None) -> torch.Tensor:
    """A gathered window (torch (..., h, w) or array (h, w[, C])) as float32 (1, C, h, w)."""
    if is_torch(window):
        tensor = window.to(device=device or window.device, dtype=torch.float32)
        while tensor.dim() < 4:
            tensor = tensor.unsqueeze(0)
        return tensor
    array = np.asarray(window)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device=device or "cpu", dtype=torch.float32)
    return tensor.permute(2, 0, 1).unsqueeze(0)


def resample_window(
    src: Any,
    repeat: Repeat | str,
    dst_size: tuple[int, int],
    y0: int,
    x0: int,
    height: int,
    width: int,
    *,
    mode: Mode = "bicubic",
    antialias: bool = True,
    src_origin: tuple[int, int] = (0, 0),
    dst_origin: tuple[int, int] = (0, 0),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Window [y0, y0+height) x [x0, x0+width) of the plane tiled by ``src``, resized to ``dst_size``.

    ``src`` is the repeat as numpy/zarr (H, W[, C]) or torch (..., C, H, W); ``dst_size`` is
    (H2, W2). Returns float32 (1, C, height, width) in the source's value range, unclamped
    (cubic overshoots a little), on ``src``'s device (or ``device``); not differentiable. Frames: when the source
    level is stored in the frame at ``src_origin`` and the window is given in the frame of the
    destination level at ``dst_origin`` (plane coordinates of each level), pass both.
    """
    repeat = as_repeat(repeat)
    if mode not in _SUPPORT:
        raise GeometryError(f"unknown resampling mode {mode!r}; choose one of {', '.join(_SUPPORT)}")
    src_h, src_w, _ = spatial_shape(src)
    dst_h, dst_w = int(dst_size[0]), int(dst_size[1])
    check_size(repeat, src_w, src_h)
    check_size(repeat, dst_w, dst_h)
    if height < 0 or width < 0:
        raise GeometryError(f"window size {width}x{height} is negative")
    fold = repeat.kind == "mirror"
    rows = _axis_taps(y0 + dst_origin[0], height, src_h, dst_h, src_origin[0], mode, antialias, fold)
    cols = _axis_taps(x0 + dst_origin[1], width, src_w, dst_w, src_origin[1], mode, antialias, fold)
    window = gather_window(src, repeat, rows.first, cols.first, rows.length, cols.length)
    with torch.no_grad():
        batch = _as_batch(window, device)
        # columns first, on the smaller source, with the axis moved to rows so gathers copy whole rows
        across = _apply_rows(batch.transpose(-1, -2).contiguous(), cols).transpose(-1, -2).contiguous()
        return _apply_rows(across, rows)


def resize_periodic(
    image: Any, repeat: Repeat | str, size: tuple[int, int], *, mode: Mode = "bicubic", antialias: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The whole repeat resized to ``size`` = (H2, W2) along its lattice: float32 (1, C, H2, W2).

    Still a repeat of the same type (sizes must obey its rules), and equal bit for bit to any
    window :func:`resample_window` cuts from the same resized plane.
    """
    return resample_window(
        image, repeat, size, 0, 0, int(size[0]), int(size[1]), mode=mode, antialias=antialias, device=device
    )


def resize_uint8(
    image: Any, repeat: Repeat | str, size: tuple[int, int], *, mode: Mode = "bicubic", antialias: bool = True
) -> np.ndarray:
    """:func:`resize_periodic` as an (H2, W2, C) uint8 array (round half to even, clamped): for images on disk."""
    return rgb_uint8(resize_periodic(image, repeat, size, mode=mode, antialias=antialias))


def rgb_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) float 0..255 -> (H, W, C) uint8: round half to even, clamp (the one conversion weft uses)."""
    return image.detach().round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous().cpu().numpy()

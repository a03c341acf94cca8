"""Repeat lattices: the one piece of geometry everything seamless in weft is built on.

A W x H repeat tile is a function on the plane, periodic under a lattice:

=========  ==========================================
block      (x, y) ~ (x + W, y) ~ (x, y + H)
half-drop  (x, y) ~ (x + W, y + H/2) ~ (x, y + H)
brick      (x, y) ~ (x + W/2, y + H) ~ (x + W, y)
=========  ==========================================

:func:`source_coords` maps any integer point of the plane to its pixel in the tile.
:func:`gather_window` reads any window of the plane from a tile stored as a numpy array,
a torch tensor (CPU or CUDA, differentiable) or a zarr array. It never loops over pixels:
a window is cut into the few rectangles where the lattice map is a plain translation, and
each rectangle is one slice. Padding inside the network, tile halos and resampling between
scales are all this one gather.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from pipeline.errors import GeometryError


class Repeat(str, Enum):
    """How copies of a tile are laid out on the fabric."""

    BLOCK = "block"
    HALF_DROP = "half-drop"
    BRICK = "brick"


def as_repeat(value: Repeat | str) -> Repeat:
    """Accept a :class:`Repeat` or its name."""
    try:
        return Repeat(value)
    except ValueError:
        names = ", ".join(r.value for r in Repeat)
        raise GeometryError(f"unknown repeat {value!r}; choose one of {names}") from None


def check_size(repeat: Repeat | str, width: int, height: int) -> None:
    """Raise :class:`GeometryError` when a W x H tile cannot carry this repeat; say what would work."""
    repeat = as_repeat(repeat)
    if width < 1 or height < 1:
        raise GeometryError(f"size {width}x{height} is empty")
    if repeat is Repeat.HALF_DROP and height % 2:
        raise GeometryError(
            f"half-drop needs an even height (the drop is H/2); {width}x{height} does not work, "
            f"{width}x{height - 1} or {width}x{height + 1} would"
        )
    if repeat is Repeat.BRICK and width % 2:
        raise GeometryError(
            f"brick needs an even width (the offset is W/2); {width}x{height} does not work, "
            f"{width - 1}x{height} or {width + 1}x{height} would"
        )


def size_quantum(repeat: Repeat | str, depth: int) -> tuple[int, int]:
    """(qx, qy): a whole-image size divisible by these stays exactly periodic through ``depth`` 2x poolings.

    Each pooling halves the lattice; half-drop also halves the H/2 drop, so H needs one more
    factor of two (brick likewise for W).
    """
    repeat = as_repeat(repeat)
    base = 2**depth
    qx = base * (2 if repeat is Repeat.BRICK else 1)
    qy = base * (2 if repeat is Repeat.HALF_DROP else 1)
    return qx, qy


def source_coords(repeat: Repeat | str, x: Any, y: Any, width: int, height: int) -> tuple[Any, Any]:
    """Map plane coordinates to tile pixel coordinates, elementwise (ints, numpy or torch arrays)."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    if repeat is Repeat.HALF_DROP:
        column = x // width
        return x - column * width, (y - column * (height // 2)) % height
    if repeat is Repeat.BRICK:
        row = y // height
        return (x - row * (width // 2)) % width, y - row * height
    return x % width, y % height


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Split a 1-D index array into maximal ascending unit-step runs: (position, start, stop)."""
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [indices.size]))
    return [(int(a), int(indices[a]), int(indices[b - 1]) + 1) for a, b in zip(starts, stops)]


def _spatial_shape(image: Any) -> tuple[int, int, bool]:
    """(height, width, channels_first) of a torch tensor (..., H, W) or an array (H, W, ...)."""
    if _is_torch(image):
        return int(image.shape[-2]), int(image.shape[-1]), True
    return int(image.shape[0]), int(image.shape[1]), False


def _is_torch(image: Any) -> bool:
    return type(image).__module__.startswith("torch")


def _concat(parts: list[Any], axis: int, torch_like: bool) -> Any:
    if len(parts) == 1:
        return parts[0]
    if torch_like:
        import torch

        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)


def _read_block(image: Any, rows: np.ndarray, cols: np.ndarray, channels_first: bool) -> Any:
    """Read image[rows][:, cols] as a handful of rectangular slices (works on zarr arrays too)."""
    row_axis, col_axis = (-2, -1) if channels_first else (0, 1)
    bands = []
    for _, r0, r1 in _runs(rows):
        pieces = []
        for _, c0, c1 in _runs(cols):
            if channels_first:
                pieces.append(image[..., r0:r1, c0:c1])
            else:
                pieces.append(np.asarray(image[r0:r1, c0:c1]))
        bands.append(_concat(pieces, col_axis, channels_first))
    return _concat(bands, row_axis, channels_first)


def gather_window(image: Any, repeat: Repeat | str, y0: int, x0: int, height: int, width: int) -> Any:
    """The window [y0, y0+height) x [x0, x0+width) of the plane tiled by ``image`` under ``repeat``.

    ``image`` is a torch tensor (..., H, W) or an array-like (H, W, ...) such as numpy or zarr;
    the result has the same kind (numpy for zarr). Torch results keep autograd.
    """
    repeat = as_repeat(repeat)
    tile_h, tile_w, channels_first = _spatial_shape(image)
    check_size(repeat, tile_w, tile_h)
    if height < 0 or width < 0:
        raise GeometryError(f"window size {width}x{height} is negative")
    xs = np.arange(x0, x0 + width, dtype=np.int64)
    ys = np.arange(y0, y0 + height, dtype=np.int64)
    row_axis, col_axis = (-2, -1) if channels_first else (0, 1)

    if repeat is Repeat.BLOCK:
        return _read_block(image, ys % tile_h, xs % tile_w, channels_first)
    if repeat is Repeat.HALF_DROP:
        # Split the window into columns of constant lattice column; in each the map is a translation.
        column = xs // tile_w
        parts = []
        for _, c0, c1 in _segments(column):
            k = int(column[c0])
            parts.append(
                _read_block(image, (ys - k * (tile_h // 2)) % tile_h, xs[c0:c1] - k * tile_w, channels_first)
            )
        return _concat(parts, col_axis, channels_first)
    # brick: rows of constant lattice row.
    row = ys // tile_h
    parts = []
    for _, r0, r1 in _segments(row):
        k = int(row[r0])
        parts.append(_read_block(image, ys[r0:r1] - k * tile_h, (xs - k * (tile_w // 2)) % tile_w, channels_first))
    return _concat(parts, row_axis, channels_first)


def _segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Split a sorted label array into runs of equal labels: (label_value, start, stop)."""
    if labels.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(labels) != 0) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [labels.size]))
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def wrap_pad(image: Any, repeat: Repeat | str, pad: int) -> Any:
    """Pad by ``pad`` pixels on every side with the image's own lattice neighbours."""
    tile_h, tile_w, _ = _spatial_shape(image)
    return gather_window(image, repeat, -pad, -pad, tile_h + 2 * pad, tile_w + 2 * pad)


def _lattice_pad_module() -> type:
    import torch
    from torch import nn
    from torch.nn import functional

    class LatticePad2d(nn.Module):
        """Pad a feature map (N, C, H, W) by its repeat lattice: the seamless stand-in for zero padding.

        For ``block`` this is circular padding (done by ``F.pad`` directly); half-drop and brick
        gather with the H/2 or W/2 shift of the current map's own size, so the shift is honoured
        at every level of the network. ``repeat=None`` gives plain zero padding.
        """

        def __init__(self, repeat: Repeat | str | None, pad: int = 1) -> None:
            super().__init__()
            self.repeat = as_repeat(repeat) if repeat is not None else None
            self.pad = pad

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            p = self.pad
            if self.repeat is None:
                return functional.pad(x, (p, p, p, p))
            if self.repeat is Repeat.BLOCK:
                return functional.pad(x, (p, p, p, p), mode="circular")
            return wrap_pad(x, self.repeat, p)

        def extra_repr(self) -> str:
            return f"repeat={self.repeat.value if self.repeat else 'zeros'}, pad={self.pad}"

    return LatticePad2d


def __getattr__(name: str) -> Any:
    # LatticePad2d needs torch; build it on first use so numpy-only users never import torch.
    if name == "LatticePad2d":
        cls = _lattice_pad_module()
        globals()["LatticePad2d"] = cls
        return cls
    raise AttributeError(name)

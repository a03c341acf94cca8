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

Frames and tile grids: any axis-aligned W x H window of the plane is a fundamental domain of
all three lattices, so a refinement level may be stored in a *frame* that starts at any
origin (oy, ox) of the plane and still hold the whole repeat. :class:`TileGrid` cuts a frame
into tile cores (one zarr chunk each); moving the origin between levels moves the grid, so
no tile boundary survives two passes. :func:`wrapped_overlaps` says which lattice copies of
one rectangle meet another: what the stitch step and the Dask dependencies need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

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


def even_sides(repeat: Repeat | str) -> tuple[bool, bool]:
    """(width, height) must be even: brick shifts rows by W/2, half-drop columns by H/2.

    The one home of the even-side rule; sizes, fitting and validation all ask it.
    """
    repeat = as_repeat(repeat)
    return repeat is Repeat.BRICK, repeat is Repeat.HALF_DROP


def check_size(repeat: Repeat | str, width: int, height: int) -> None:
    """Raise :class:`GeometryError` when a W x H tile cannot carry this repeat; say what would work."""
    repeat = as_repeat(repeat)
    if width < 1 or height < 1:
        raise GeometryError(f"size {width}x{height} is empty")
    even_w, even_h = even_sides(repeat)
    if even_h and height % 2:
        raise GeometryError(
            f"half-drop needs an even height (the drop is H/2); {width}x{height} does not work, "
            f"{width}x{height - 1} or {width}x{height + 1} would"
        )
    if even_w and width % 2:
        raise GeometryError(
            f"brick needs an even width (the offset is W/2); {width}x{height} does not work, "
            f"{width - 1}x{height} or {width + 1}x{height} would"
        )


def even_size(repeat: Repeat | str, width: int, height: int) -> tuple[int, int]:
    """Round a *derived* size up so the repeat can honour it (half-drop: even H, brick: even W)."""
    even_w, even_h = even_sides(repeat)
    return width + (even_w and width % 2), height + (even_h and height % 2)


def fit_to_repeat(image: Any, repeat: Repeat | str) -> Any:
    """Drop the last row (half-drop, odd H) or column (brick, odd W) so the image can carry the repeat.

    A design is used as its own repeat tile (content, knitting, seam checks); a scan 443 px
    high cannot drop by half its height. One pixel is invisible; refusing the design is not.
    """
    height, width, channels_first = _spatial_shape(image)
    even_w, even_h = even_sides(repeat)
    if even_h and height % 2:
        return image[..., : height - 1, :] if channels_first else image[: height - 1]
    if even_w and width % 2:
        return image[..., : width - 1] if channels_first else image[:, : width - 1]
    return image


def size_quantum(repeat: Repeat | str, depth: int) -> tuple[int, int]:
    """(qx, qy): a whole-image size divisible by these stays exactly periodic through ``depth`` 2x poolings.

    Each pooling halves the lattice; half-drop also halves the H/2 drop, so H needs one more
    factor of two (brick likewise for W).
    """
    even_w, even_h = even_sides(repeat)
    base = 2**depth
    return base * (1 + even_w), base * (1 + even_h)


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


# --- rectangles and lattice vectors -----------------------------------------------------------


class Rect(NamedTuple):
    """A pixel rectangle (y0, x0, height, width) of the plane or of a frame; plain 4-tuples work too."""

    y0: int
    x0: int
    height: int
    width: int

    @property
    def y1(self) -> int:
        return self.y0 + self.height

    @property
    def x1(self) -> int:
        return self.x0 + self.width

    @property
    def empty(self) -> bool:
        return self.height <= 0 or self.width <= 0

    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices, for indexing an array that starts at (0, 0) of these coordinates."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def shifted(self, dy: int, dx: int) -> Rect:
        return Rect(self.y0 + dy, self.x0 + dx, self.height, self.width)

    def relative_to(self, other: tuple[int, int, int, int]) -> Rect:
        """This rectangle in the coordinates of an array holding ``other`` (so it can be sliced out of it)."""
        return Rect(self.y0 - other[0], self.x0 - other[1], self.height, self.width)

    def intersection(self, other: tuple[int, int, int, int]) -> Rect | None:
        """The common part, or None when they do not meet."""
        o = Rect(*other)
        y0, x0 = max(self.y0, o.y0), max(self.x0, o.x0)
        y1, x1 = min(self.y1, o.y1), min(self.x1, o.x1)
        if y1 <= y0 or x1 <= x0:
            return None
        return Rect(y0, x0, y1 - y0, x1 - x0)


def _lattice_form(repeat: Repeat, width: int, height: int) -> tuple[bool, int]:
    """(outer_is_x, shear): every lattice is {k * outer step + m * inner step} with a sheared inner axis.

    block and half-drop: columns of width W; moving one column right shifts y by 0 or H/2.
    brick: rows of height H; moving one row down shifts x by W/2.
    """
    if repeat is Repeat.BRICK:
        return False, width // 2
    return True, height // 2 if repeat is Repeat.HALF_DROP else 0


def _lattice_points_in_box(
    repeat: Repeat | str, width: int, height: int, dy_range: tuple[int, int], dx_range: tuple[int, int]
) -> list[tuple[int, int]]:
    """Lattice vectors (dy, dx) with dy_range[0] <= dy <= dy_range[1] and likewise dx, sorted."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    outer_is_x, shear = _lattice_form(repeat, width, height)
    # name the axes (outer, inner) so one loop serves all three lattices
    (o_lo, o_hi), (i_lo, i_hi) = (dx_range, dy_range) if outer_is_x else (dy_range, dx_range)
    o_step, i_step = (width, height) if outer_is_x else (height, width)
    points = []
    for k in range(-(-o_lo // o_step), o_hi // o_step + 1):
        base = k * shear
        for m in range(-(-(i_lo - base) // i_step), (i_hi - base) // i_step + 1):
            outer, inner = k * o_step, base + m * i_step
            points.append((inner, outer) if outer_is_x else (outer, inner))
    return sorted(points)


def lattice_translations(repeat: Repeat | str, width: int, height: int, reach: int = 1) -> list[tuple[int, int]]:
    """Lattice vectors (dy, dx) with |dx| <= reach*W and |dy| <= reach*H, (0, 0) included; sorted."""
    box_y, box_x = (-reach * height, reach * height), (-reach * width, reach * width)
    return _lattice_points_in_box(repeat, width, height, box_y, box_x)


def wrapped_overlaps(
    repeat: Repeat | str, width: int, height: int, a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> list[tuple[tuple[int, int], Rect]]:
    """Every lattice translation t = (dy, dx) for which the copy ``a + t`` meets ``b``, with that intersection.

    The intersection is given in the coordinates ``b`` is given in; the same pixels in ``a``'s
    coordinates are the intersection shifted by -t. This is how a stitch finds which tiles'
    extended windows cover a chunk across the wrap (for half-drop the neighbour across the
    right edge comes shifted by H/2), so it is lattice-generic rather than a modulo.
    """
    ra, rb = Rect(*a), Rect(*b)
    if ra.empty or rb.empty:
        return []
    # a + t meets b  <=>  b.y0 - a.y1 < dy < b.y1 - a.y0, likewise dx
    candidates = _lattice_points_in_box(
        repeat, width, height, (rb.y0 - ra.y1 + 1, rb.y1 - ra.y0 - 1), (rb.x0 - ra.x1 + 1, rb.x1 - ra.x0 - 1)
    )
    result = []
    for dy, dx in candidates:
        common = ra.shifted(dy, dx).intersection(rb)
        if common is not None:
            result.append(((dy, dx), common))
    return result


# --- gathers --------------------------------------------------------------------------------


def _intervals(start: int, length: int, period: int) -> list[tuple[int, int, int, int]]:
    """Cut [start, start+length) at multiples of ``period``: (dst offset, src start, n, k), v = k*period + src."""
    out = []
    pos, end = start, start + length
    while pos < end:
        k, src = divmod(pos, period)
        n = min(period - src, end - pos)
        out.append((pos - start, src, n, k))
        pos += n
    return out


class _Piece(NamedTuple):
    """One rectangle of a gather: window[dy:dy+h, dx:dx+w] = tile[sy:sy+h, sx:sx+w]."""

    dy: int
    dx: int
    sy: int
    sx: int
    h: int
    w: int


def _gather_plan(
    repeat: Repeat, tile_h: int, tile_w: int, y0: int, x0: int, height: int, width: int
) -> tuple[bool, list[list[_Piece]]]:
    """(outer_is_x, strips): the window cut into strips along the outer axis, each cut into pieces.

    Within a piece the lattice map is one translation, so a piece is one slice of the tile.
    """
    outer_is_x, shear = _lattice_form(repeat, tile_w, tile_h)
    if outer_is_x:
        o_start, o_len, o_period, i_start, i_len, i_period = x0, width, tile_w, y0, height, tile_h
    else:
        o_start, o_len, o_period, i_start, i_len, i_period = y0, height, tile_h, x0, width, tile_w
    strips = []
    for od, os_, on, k in _intervals(o_start, o_len, o_period):
        strip = []
        for idst, isrc, inn, _ in _intervals(i_start - k * shear, i_len, i_period):
            if outer_is_x:
                strip.append(_Piece(idst, od, isrc, os_, inn, on))
            else:
                strip.append(_Piece(od, idst, os_, isrc, on, inn))
        strips.append(strip)
    return outer_is_x, strips


def _spatial_shape(image: Any) -> tuple[int, int, bool]:
    """(height, width, channels_first) of a torch tensor (..., H, W) or an array (H, W, ...)."""
    if _is_torch(image):
        return int(image.shape[-2]), int(image.shape[-1]), True
    return int(image.shape[0]), int(image.shape[1]), False


def _is_torch(image: Any) -> bool:
    return type(image).__module__.startswith("torch")


def _torch_layout(image: Any) -> Any:
    """channels_last for a 4-D tensor stored that way (the network's layout), else contiguous."""
    import torch

    if image.dim() == 4 and not image.is_contiguous() and image.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _torch_out(image: Any, height: int, width: int) -> Any:
    """An uninitialised torch result that keeps the input's layout, dtype and device."""
    import torch

    shape = (*image.shape[:-2], height, width)
    return torch.empty(shape, dtype=image.dtype, device=image.device, memory_format=_torch_layout(image))


def gather_window(image: Any, repeat: Repeat | str, y0: int, x0: int, height: int, width: int) -> Any:
    """The window [y0, y0+height) x [x0, x0+width) of the plane tiled by ``image`` under ``repeat``.

    ``image`` is a torch tensor (..., H, W) or an array-like (H, W, ...) such as numpy or zarr;
    the result has the same kind (numpy for zarr). Torch results keep autograd. A window that is
    one slice of a numpy or torch tile is returned as a view (copy it before writing into it);
    otherwise the result is written once into a fresh array, piece by piece.
    """
    repeat = as_repeat(repeat)
    tile_h, tile_w, channels_first = _spatial_shape(image)
    check_size(repeat, tile_w, tile_h)
    if height < 0 or width < 0:
        raise GeometryError(f"window size {width}x{height} is negative")
    outer_is_x, strips = _gather_plan(repeat, tile_h, tile_w, y0, x0, height, width)
    pieces = [piece for strip in strips for piece in strip]
    if channels_first:
        if len(pieces) == 1:
            p = pieces[0]
            return image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w]
        import torch

        if torch.is_grad_enabled() and image.requires_grad and pieces:
            return _lattice_gather()(image, tuple(pieces), (height, width))
        out = _torch_out(image, height, width)
        for p in pieces:
            out[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w] = image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w]
        return out
    if len(pieces) == 1 and isinstance(image, np.ndarray):
        p = pieces[0]
        return image[p.sy : p.sy + p.h, p.sx : p.sx + p.w]
    out = np.empty((height, width, *image.shape[2:]), dtype=image.dtype)
    for p in pieces:
        out[p.dy : p.dy + p.h, p.dx : p.dx + p.w] = image[p.sy : p.sy + p.h, p.sx : p.sx + p.w]
    return out


@lru_cache(maxsize=1)
def _lattice_gather() -> Any:
    """A differentiable gather whose backward adds each piece's gradient into one buffer in place.

    Slicing plus ``torch.cat`` (autograd's default) allocates a full-size zero gradient per
    piece; inside VGG-19 that made lattice padding cost as much as the convolutions. With this
    the padded network runs as fast as the zero-padded one.
    """
    import torch

    class LatticeGather(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, image: Any, pieces: tuple[_Piece, ...], size: tuple[int, int]) -> Any:
            out = _torch_out(image, *size)
            for p in pieces:
                out[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w] = image[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w]
            ctx.pieces = pieces
            ctx.meta = (tuple(image.shape), image.dtype, image.device, _torch_layout(image))
            return out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, None, None]:
            shape, dtype, device, layout = ctx.meta
            grad_in = torch.empty(shape, dtype=dtype, device=device, memory_format=layout).zero_()
            for p in ctx.pieces:
                grad_in[..., p.sy : p.sy + p.h, p.sx : p.sx + p.w] += grad[..., p.dy : p.dy + p.h, p.dx : p.dx + p.w]
            return grad_in, None, None

    return LatticeGather.apply


def wrap_pad(image: Any, repeat: Repeat | str, pad: int) -> Any:
    """Pad by ``pad`` pixels on every side with the image's own lattice neighbours."""
    tile_h, tile_w, _ = _spatial_shape(image)
    return gather_window(image, repeat, -pad, -pad, tile_h + 2 * pad, tile_w + 2 * pad)


def reframe(image: Any, repeat: Repeat | str, from_origin: tuple[int, int], to_origin: tuple[int, int]) -> Any:
    """A level stored in the frame at ``from_origin``, re-stored in the frame at ``to_origin``.

    ``reframe(level, repeat, origin, (0, 0))`` gives the repeat tile as designed (what is printed).
    """
    tile_h, tile_w, _ = _spatial_shape(image)
    return gather_window(image, repeat, to_origin[0] - from_origin[0], to_origin[1] - from_origin[1], tile_h, tile_w)


# --- tile grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One tile: its core is [y0, y0+height) x [x0, x0+width) in frame coordinates (one zarr chunk)."""

    row: int
    col: int
    y0: int
    x0: int
    height: int
    width: int

    @property
    def rect(self) -> Rect:
        return Rect(self.y0, self.x0, self.height, self.width)

    @property
    def core(self) -> tuple[slice, slice]:
        """Slices of the core in the frame array: where the tile's result is written back."""
        return self.rect.slices()

    def window(self, halo: int) -> Rect:
        """The core grown by ``halo`` on every side: (y0-h, x0-h, height+2h, width+2h); may cross the wrap."""
        return Rect(self.y0 - halo, self.x0 - halo, self.height + 2 * halo, self.width + 2 * halo)

    def core_in_window(self, halo: int) -> tuple[slice, slice]:
        """Slices of the core inside the array gathered for :meth:`window` (to keep only the core)."""
        return slice(halo, halo + self.height), slice(halo, halo + self.width)


class ChunkCount:
    """Rows and columns of ``core`` x ``core`` chunks over ``height`` x ``width``, the last ones smaller.

    The one count of chunks: tile grids, store layouts and the plan all inherit it.
    """

    height: int
    width: int
    core: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.core)

    @property
    def cols(self) -> int:
        return -(-self.width // self.core)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def __len__(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class TileGrid(ChunkCount):
    """Tile cores of ``core`` x ``core`` px that cover a W x H frame exactly once, row-major.

    The frame is the W x H window of the plane starting at ``origin`` = (oy, ox) in plane
    coordinates; tiles are in frame coordinates, so their cores are chunk-aligned in the
    level's array. The last row and column may be smaller (like zarr's edge chunks).
    """

    repeat: Repeat
    width: int
    height: int
    core: int
    origin: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeat", as_repeat(self.repeat))
        object.__setattr__(self, "origin", (int(self.origin[0]), int(self.origin[1])))
        check_size(self.repeat, self.width, self.height)
        if self.core < 1:
            raise GeometryError(f"tile core must be at least 1 px, got {self.core}")

    @property
    def chunks(self) -> tuple[int, int]:
        """zarr chunk shape (rows, cols) that makes every tile core exactly one chunk."""
        return min(self.core, self.height), min(self.core, self.width)

    def tile(self, row: int, col: int) -> Tile:
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise IndexError(f"tile ({row}, {col}) outside a {self.rows}x{self.cols} grid")
        y0, x0 = row * self.core, col * self.core
        return Tile(row, col, y0, x0, min(self.core, self.height - y0), min(self.core, self.width - x0))

    def tiles(self) -> Iterator[Tile]:
        """Every tile, row-major."""
        for row in range(self.rows):
            for col in range(self.cols):
                yield self.tile(row, col)

    def tile_at(self, y: int, x: int) -> Tile:
        """The tile whose core holds frame pixel (y, x) (any integers: wrapped by the lattice)."""
        sx, sy = source_coords(self.repeat, x, y, self.width, self.height)
        return self.tile(int(sy) // self.core, int(sx) // self.core)

    def to_plane(self, y: int, x: int) -> tuple[int, int]:
        return y + self.origin[0], x + self.origin[1]

    def from_plane(self, y: int, x: int) -> tuple[int, int]:
        return y - self.origin[0], x - self.origin[1]

    def with_origin(self, origin: tuple[int, int]) -> TileGrid:
        """The same grid with its frame at another origin (e.g. shifted by half a tile for the next pass)."""
        return TileGrid(self.repeat, self.width, self.height, self.core, origin)

    def read(self, frame_image: Any, tile: Tile, halo: int) -> Any:
        """The tile's core plus ``halo`` gathered from the level stored in this frame, across the wrap."""
        return gather_window(frame_image, self.repeat, *tile.window(halo))

    def contributors(self, rect: tuple[int, int, int, int], overlap: int) -> list[tuple[Tile, tuple[int, int], Rect]]:
        """Tiles whose extended windows (core ± ``overlap``) cover part of ``rect``, across the wrap.

        Returns (tile, t, part): the copy of the tile's window translated by lattice vector t
        covers ``part`` of ``rect`` (frame coordinates). Equivalent to :func:`wrapped_overlaps`
        over every tile, but only looks at tiles near ``rect``: a chunk's stitch dependencies.
        """
        target = Rect(*rect)
        if target.empty:
            return []
        grown = Rect(target.y0 - overlap, target.x0 - overlap, target.height + 2 * overlap, target.width + 2 * overlap)
        _, strips = _gather_plan(self.repeat, self.height, self.width, *grown)
        found: dict[tuple[int, int, int, int], tuple[Tile, tuple[int, int], Rect]] = {}
        for piece in (p for strip in strips for p in strip):
            # this piece of the grown rect is frame rect (sy, sx, h, w) translated by t
            t = (grown.y0 + piece.dy - piece.sy, grown.x0 + piece.dx - piece.sx)
            for row in range(piece.sy // self.core, (piece.sy + piece.h - 1) // self.core + 1):
                for col in range(piece.sx // self.core, (piece.sx + piece.w - 1) // self.core + 1):
                    tile = self.tile(row, col)
                    part = tile.window(overlap).shifted(*t).intersection(target)
                    if part is not None:
                        found[(row, col, *t)] = (tile, t, part)
        return [found[key] for key in sorted(found)]


def feather_weights(tile: Tile, overlap: int) -> np.ndarray:
    """Blend weights (h+2o, w+2o) float32 for a tile's extended window: linear ramps across each core edge.

    Each ramp rises from 0 to 1 over [edge - o, edge + o], and a neighbour's ramp is its
    complement, so where every core is at least 2*overlap wide the weights of all tiles
    covering a pixel sum to 1 (up to rounding). A stitch divides by the summed weight anyway,
    which keeps it exact for the small last row/column too.
    """
    if overlap <= 0:
        return np.ones((tile.height, tile.width), np.float32)

    def axis(n: int) -> np.ndarray:
        s = np.arange(n + 2 * overlap, dtype=np.float64) + 0.5  # pixel centres from the window start
        up = np.clip(s / (2 * overlap), 0.0, 1.0)
        down = np.clip((n + 2 * overlap - s) / (2 * overlap), 0.0, 1.0)
        return np.minimum(up, down)

    return np.outer(axis(tile.height), axis(tile.width)).astype(np.float32)


def _lattice_pad_module() -> type:
    import torch
    from torch import nn
    from torch.nn import functional

    class LatticePad2d(nn.Module):
        """Pad a feature map (N, C, H, W) by its repeat lattice: the seamless stand-in for zero padding.

        For ``block`` this equals circular padding; half-drop and brick gather with the H/2 or
        W/2 shift of the current map's own size, so the shift is honoured at every level of the
        network. All three use the in-place-backward gather, which is 2x faster than
        ``F.pad(mode="circular")`` inside VGG-19. ``repeat=None`` gives plain zero padding.
        """

        def __init__(self, repeat: Repeat | str | None, pad: int = 1) -> None:
            super().__init__()
            self.repeat = as_repeat(repeat) if repeat is not None else None
            self.pad = pad

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            p = self.pad
            if self.repeat is None:
                return functional.pad(x, (p, p, p, p))
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

"""Frames and tile grids: how a level of a job is cut into tiles that each cover one chunk.

Any axis-aligned W x H window of the plane is a fundamental domain of the block, drop and
brick lattices, so a refinement level may be stored in a *frame* that starts at any origin
(oy, ox) of the plane and still hold the whole repeat. A mirror repeat's W x H windows are
not (the plane's period is 2W x 2H), so its frames always start at (0, 0) and its tiles rely
on the feathered overlaps alone. :class:`TileGrid` cuts a frame into tile cores (one
zarr chunk each); moving the origin between levels moves the grid, so no tile boundary
survives two passes. :func:`wrapped_overlaps` says which lattice copies of one rectangle
meet another: what the stitch step and the Dask dependencies need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import GeometryError
from pipeline.repeat.gather import gather_plan, gather_window
from pipeline.repeat.lattice import Repeat, as_repeat, check_size, lattice_points_in_box, source_coords


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


def wrapped_overlaps(
    repeat: Repeat | str, width: int, height: int, a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> list[tuple[tuple[int, int], Rect]]:
    """Every lattice translation t = (dy, dx) for which the copy ``a + t`` meets ``b``, with that intersection.

    The intersection is given in the coordinates ``b`` is given in; the same pixels in ``a``'s
    coordinates are the intersection shifted by -t. This is how a stitch finds which tiles'
    extended windows cover a chunk across the wrap (for half-drop the neighbour across the
    right edge comes shifted by H/2), so it is lattice-generic rather than a modulo. Only
    translations count (for mirror they are steps of 2W and 2H, not the reflections).
    """
    ra, rb = Rect(*a), Rect(*b)
    if ra.empty or rb.empty:
        return []
    # a + t meets b  <=>  b.y0 - a.y1 < dy < b.y1 - a.y0, likewise dx
    candidates = lattice_points_in_box(
        repeat, width, height, (rb.y0 - ra.y1 + 1, rb.y1 - ra.y0 - 1), (rb.x0 - ra.x1 + 1, rb.x1 - ra.x0 - 1)
    )
    result = []
    for dy, dx in candidates:
        common = ra.shifted(dy, dx).intersection(rb)
        if common is not None:
            result.append(((dy, dx), common))
    return result


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
        if self.repeat.kind == "mirror" and self.origin != (0, 0):
            raise GeometryError(
                f"a mirror repeat's frame starts at (0, 0), not {self.origin}: a shifted W x H window of a "
                "mirrored plane is not one whole repeat"
            )
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
        Reflected copies (mirror) are not translations and are left out: across a mirror edge
        a chunk is its own tile's window, normalised by its weight.
        """
        target = Rect(*rect)
        if target.empty:
            return []
        grown = Rect(target.y0 - overlap, target.x0 - overlap, target.height + 2 * overlap, target.width + 2 * overlap)
        found: dict[tuple[int, int, int, int], tuple[Tile, tuple[int, int], Rect]] = {}
        for piece in self._pieces(grown):
            if piece.flipped:
                continue
            # this piece of the grown rect is frame rect (sy, sx, h, w) translated by t
            t = (grown.y0 + piece.dy - piece.sy, grown.x0 + piece.dx - piece.sx)
            for row in range(piece.sy // self.core, (piece.sy + piece.h - 1) // self.core + 1):
                for col in range(piece.sx // self.core, (piece.sx + piece.w - 1) // self.core + 1):
                    tile = self.tile(row, col)
                    part = tile.window(overlap).shifted(*t).intersection(target)
                    if part is not None:
                        found[(row, col, *t)] = (tile, t, part)
        return [found[key] for key in sorted(found)]

    def tiles_read(self, rect: tuple[int, int, int, int]) -> set[tuple[int, int]]:
        """(row, col) of every tile whose core holds a pixel of ``rect``, across the wrap and any reflection.

        What a window read from this level depends on (a tile's halo, a resampled chunk).
        """
        found = set()
        for piece in self._pieces(Rect(*rect)):
            for row in range(piece.sy // self.core, (piece.sy + piece.h - 1) // self.core + 1):
                for col in range(piece.sx // self.core, (piece.sx + piece.w - 1) // self.core + 1):
                    found.add((row, col))
        return found

    def _pieces(self, rect: Rect) -> list[Any]:
        """The gather pieces of a frame rectangle (each one slice of the frame)."""
        if rect.empty:
            return []
        _, strips = gather_plan(self.repeat, self.height, self.width, *rect)
        return [piece for strip in strips for piece in strip]


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

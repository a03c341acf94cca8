"""Seam metrics: is a boundary visible? Measured the same way at the repeat edge and between tiles.

The score of a boundary line is the mean absolute step between the two pixel rows (or
columns) that meet there, divided by the mean absolute step across the few parallel lines
just inside it (``inside`` on each side, 2 by default, so 4 lines). Normalising locally
rather than by the whole image's mean step keeps smooth but perfectly periodic designs at
about 1.0 instead of 1.07-1.15. About 1.0 is invisible; a zero-padded CNN scores about 1.7.

Lines are ``("x", p)``: the vertical line between columns p-1 and p, or ``("y", p)``: the
horizontal line between rows p-1 and p. Pixels on the far side of the image edge are read
through the repeat lattice, so the repeat boundaries are just the lines x = 0 and y = 0
(with the half-drop or brick offset applied) and an internal line near an edge still sees
its true neighbours. Works on (H, W) or (H, W, C) numpy arrays, uint8 or float.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.repeat.gather import gather_window

from pipeline.repeat.lattice import Repeat, as_repeat

from pipeline.repeat.tiles import TileGrid

Line = tuple[Literal["x", "y"], int]

# How seam ratios are read, everywhere (report colours, validate warnings, knitting, inspect):
#: A finished result's repeat boundary at or below this is invisible (the report shows it green).
RESULT_REPEAT_INVISIBLE = 1.05
#: At or below this a boundary is invisible in print: inputs count as seamless, tile lines pass.
SEAMLESS = 1.10
#: Above this an input design does not repeat by itself and is knitted before stylizing.
KNIT_ABOVE = 1.20
#: Above this `weft validate` warns that a design is not a seamless repeat.
WARN_ABOVE = 1.30
#: Above this a seam is plainly visible (`weft inspect` says so in red).
VISIBLE_ABOVE = 1.50


def _line_steps(img: Any, repeat: Repeat, line: Line, inside: int) -> tuple[float, float, int, int]:
    """(sum of steps across the line, sum across the 2*inside neighbouring lines, their counts)."""
    axis, position = line
    height, width = img.shape[0], img.shape[1]
    span = 2 * inside + 2  # pixels on both sides of the line, including the two that meet on it
    if axis == "x":
        band = gather_window(img, repeat, 0, position - inside - 1, height, span)
        diff_axis = 1
    elif axis == "y":
        band = gather_window(img, repeat, position - inside - 1, 0, span, width)
        diff_axis = 0
    else:
        raise ValueError(f"line axis must be 'x' or 'y', got {axis!r}")
    steps = np.abs(np.diff(np.asarray(band, dtype=np.float64), axis=diff_axis))
    across = np.take(steps, inside, axis=diff_axis)
    total = float(steps.sum())
    boundary = float(across.sum())
    return boundary, total - boundary, across.size, steps.size - across.size


def _ratio(boundary: float, reference: float) -> float:
    """Step ratio, with a flat neighbourhood scoring 1 when the boundary is flat too."""
    if reference == 0.0:
        return 1.0 if boundary == 0.0 else float("inf")
    return float(boundary / reference)


def _pooled(img: Any, repeat: Repeat, lines: Iterable[Line], inside: int) -> tuple[float, dict[Line, float]]:
    """Per-line ratios and the ratio pooled over all lines (every pixel pair counted once)."""
    per_line: dict[Line, float] = {}
    sums = np.zeros(4)
    for line in lines:
        b, r, nb, nr = _line_steps(img, repeat, line, inside)
        per_line[line] = _ratio(b / nb, r / nr)
        sums += (b, r, nb, nr)
    pooled = _ratio(sums[0] / sums[2], sums[1] / sums[3]) if sums[2] else float("nan")
    return pooled, per_line


def mean_step(img: Any, line: Line, *, repeat: Repeat | str = Repeat.BLOCK) -> float:
    """Mean absolute step across one line (no normalisation), read across the wrap by ``repeat``."""
    boundary, _, count, _ = _line_steps(img, as_repeat(repeat), line, 0)
    return boundary / count


def repeat_seam_ratios(img: Any, repeat: Repeat | str, *, inside: int = 2) -> dict[str, float]:
    """Seam ratio of the repeat boundaries: 'vertical' (right edge -> left edge), 'horizontal'
    (bottom -> top), each with the repeat's offset, and 'overall' pooled over both."""
    repeat = as_repeat(repeat)
    overall, per_line = _pooled(img, repeat, [("x", 0), ("y", 0)], inside)
    return {"vertical": per_line[("x", 0)], "horizontal": per_line[("y", 0)], "overall": overall}


def repeat_seam_ratio(img: Any, repeat: Repeat | str, *, inside: int = 2) -> float:
    """One number for the repeat boundaries: ~1.0 seamless, ~1.7 a zero-padded CNN, more a cut image."""
    return repeat_seam_ratios(img, repeat, inside=inside)["overall"]


def boundary_seam_ratio(
    img: Any, lines: Iterable[Line], *, repeat: Repeat | str = Repeat.BLOCK, inside: int = 2
) -> dict[Line, float]:
    """Seam ratio of each given line (internal tile boundaries), reading across the wrap by ``repeat``."""
    return _pooled(img, as_repeat(repeat), lines, inside)[1]


def tile_boundary_lines(grid: TileGrid, *, include_frame_edges: bool = False) -> list[Line]:
    """The lines between a grid's tile cores, in its frame coordinates.

    Measure them on the level as stored in that frame (``reframe`` a final image there first).
    The frame edges are tile boundaries too, but they are also where this level's frame wraps;
    include them to score every boundary the grid drew.
    """
    first = 0 if include_frame_edges else 1
    cols: list[Line] = [("x", c * grid.core) for c in range(first, grid.cols)]
    rows: list[Line] = [("y", r * grid.core) for r in range(first, grid.rows)]
    return cols + rows


def tile_seam_ratio(img: Any, grid: TileGrid, *, inside: int = 2, include_frame_edges: bool = False) -> float:
    """Seam ratio pooled over every internal tile boundary of ``grid`` (nan for a one-tile grid)."""
    lines = tile_boundary_lines(grid, include_frame_edges=include_frame_edges)
    return _pooled(img, grid.repeat, lines, inside)[0]


# --- the frame metric ---------------------------------------------------------------------------
#
# A boundary can be seamless and still show: a tile cut with a strip of grey mount along its
# edge joins its copies perfectly and prints a grey frame around every repeat. The frame metric
# compares the band along each repeat edge with the same band at shifted positions of the plane
# (the statistics a viewer sees: mean colour and amount of detail). Shifted bands show how much
# such bands vary across the design anyway; the edge band is scored in units of that spread.

#: At or above this the band along a repeat edge is unlike the rest of the tile: a printed frame.
FRAME_VISIBLE_ABOVE = 2.0
#: Width of the compared bands as a fraction of the tile's short side.
FRAME_BAND = 0.06
#: How many band positions across the tile (the edge and n - 1 shifted copies).
_FRAME_POSITIONS = 24
#: Floors of the spread of each statistic (colour in 0-255 levels; detail relative to its median).
_COLOUR_FLOOR, _DETAIL_FLOOR = 2.0, 0.05


def _band_statistics(band: np.ndarray) -> np.ndarray:
    """[mean R, mean G, mean B, mean luma gradient]: what makes a band look like a frame or not."""
    rgb = np.asarray(band, dtype=np.float64)
    rgb = rgb[..., None] if rgb.ndim == 2 else rgb[..., :3]
    luma = rgb.mean(axis=-1)
    gradient = (np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()) / 2
    colour = np.resize(rgb.reshape(-1, rgb.shape[-1]).mean(axis=0), 3)
    return np.array([*colour, gradient])


def _edge_score(edge: np.ndarray, shifted: np.ndarray) -> float:
    """The edge band's distance from the shifted bands' median, in units of the shifted bands' own distances.

    "Typical" is their 80th percentile: a design has a few unusual positions of its own, and an
    edge that happens to fall on one must not read as a frame (measured on exact tiles: at most
    1.5; a 3 px strip of mount around a 72 x 60 tile: 2.2 and more).
    """
    centre = np.median(shifted, axis=0)
    floors = np.array([_COLOUR_FLOOR] * 3 + [_DETAIL_FLOOR * max(centre[3], 1e-6)])
    spread = np.maximum(np.median(np.abs(shifted - centre), axis=0), floors)

    def distance(stats: np.ndarray) -> float:
        return float(np.sqrt(np.mean(((stats - centre) / spread) ** 2)))

    typical = max(float(np.percentile([distance(s) for s in shifted], 80)), 1.0)
    return distance(edge) / typical


def frame_ratios(img: Any, repeat: Repeat | str, *, band: float = FRAME_BAND) -> dict[str, float]:
    """Frame score of the 'vertical' (left/right) and 'horizontal' (top/bottom) repeat edges, and the worse.

    About 1 or less: the edge band looks like any other band of the design. A strip of mount or
    selvedge along an edge scores far above :data:`FRAME_VISIBLE_ABOVE`.
    """
    repeat = as_repeat(repeat)
    height, width = img.shape[0], img.shape[1]
    half = max(2, round(band * min(height, width) / 2))
    result = {}
    for name, length in (("vertical", width), ("horizontal", height)):
        bands = []
        for k in range(_FRAME_POSITIONS):
            at = round(k * length / _FRAME_POSITIONS)
            if name == "vertical":
                bands.append(_band_statistics(gather_window(img, repeat, 0, at - half, height, 2 * half)))
            else:
                bands.append(_band_statistics(gather_window(img, repeat, at - half, 0, 2 * half, width)))
        result[name] = _edge_score(bands[0], np.array(bands[1:]))
    result["overall"] = max(result["vertical"], result["horizontal"])
    return result


def frame_ratio(img: Any, repeat: Repeat | str) -> float:
    """One number for a tile's frame: the worse edge of :func:`frame_ratios`."""
    return frame_ratios(img, repeat)["overall"]


# --- relative seam figures: a boundary against the image's own lines --------------------------
#
# The local ratio above compares a line with its four neighbours, so a strongly textured image
# (brush strokes) scores 1.2-1.3 on lines that are no seam at all. The figures below compare a
# line with the image itself instead: the repeat boundary with every parallel interior line,
# a tile-line family (period T, offset o) with the same family at every other offset. A seamless
# textured image then reads about 1.0 whatever its texture, and a real step still stands out.


@dataclass(frozen=True)
class RelativeSeam:
    """A line (or family of lines) against the lines it is compared with."""

    ratio: float  # its mean step / the median mean step of the others (about 1.0: it looks like them)
    rank: int  # 1 = the steepest of all ``compared`` (itself included)
    compared: int

    def record(self, name: str) -> dict[str, float | int]:
        """The figures as the store keeps them: ``name``, ``name_rank``, ``name_compared``."""
        return {name: round(self.ratio, 4), f"{name}_rank": self.rank, f"{name}_compared": self.compared}


#: Pixels per band when the step profile is summed (keeps memory a few MB at any size).
_PROFILE_BAND = 256


def step_profile(img: Any, repeat: Repeat | str, axis: Literal["x", "y"]) -> np.ndarray:
    """Mean absolute step across every line of an axis: entry p is the line ("x", p) or ("y", p).

    Entry 0 is the repeat boundary, read across the wrap through the lattice. Summed in bands,
    so it runs on a large result without a float copy of the whole image.
    """
    repeat = as_repeat(repeat)
    height, width = img.shape[0], img.shape[1]
    along, across = (height, width) if axis == "x" else (width, height)
    total = np.zeros(across, np.float64)
    for start in range(0, along, _PROFILE_BAND):
        n = min(_PROFILE_BAND, along - start)
        if axis == "x":
            band = gather_window(img, repeat, start, -1, n, width + 1)
            steps = np.abs(np.diff(np.asarray(band, dtype=np.float32), axis=1))
            total += steps.reshape(n, width, -1).sum(axis=(0, 2), dtype=np.float64)
        else:
            band = gather_window(img, repeat, -1, start, height + 1, n)
            steps = np.abs(np.diff(np.asarray(band, dtype=np.float32), axis=0))
            total += steps.reshape(height, n, -1).sum(axis=(1, 2), dtype=np.float64)
    channels = int(np.prod(img.shape[2:])) if len(img.shape) > 2 else 1
    return total / (along * channels)


def _relative(score: float, others: np.ndarray) -> RelativeSeam:
    """``score`` against ``others``: ratio to their median, and its rank among all of them."""
    if others.size == 0:
        return RelativeSeam(float("nan"), 1, 1)
    reference = float(np.median(others))
    return RelativeSeam(_ratio(score, reference), 1 + int((others > score).sum()), 1 + others.size)


def _worse(per_axis: dict[str, RelativeSeam]) -> RelativeSeam:
    """The axis that stands out more (nan axes ignored)."""
    valid = [s for s in per_axis.values() if not np.isnan(s.ratio)]
    return max(valid, key=lambda s: s.ratio) if valid else RelativeSeam(float("nan"), 1, 1)


def repeat_seam_relative(img: Any, repeat: Repeat | str) -> dict[str, RelativeSeam]:
    """The repeat boundaries against every parallel interior line: 'vertical', 'horizontal', 'overall' (the worse).

    For ``mirror`` the two pixels that meet at a boundary are the same pixel: the ratio is 0.
    """
    per_axis = {}
    for name, axis in (("vertical", "x"), ("horizontal", "y")):
        profile = step_profile(img, repeat, axis)  # type: ignore[arg-type]
        per_axis[name] = _relative(float(profile[0]), profile[1:])
    return {**per_axis, "overall": _worse(per_axis)}


def _family_scores(profile: np.ndarray, period: int) -> np.ndarray:
    """Mean step of the lines p = o, o + T, o + 2T ... (p >= 1: line 0 is the repeat boundary), for every offset o."""
    lines = np.arange(1, profile.size)
    sums = np.bincount(lines % period, weights=profile[1:], minlength=period)
    counts = np.bincount(lines % period, minlength=period)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def tile_seam_relative(img: Any, grid: TileGrid) -> dict[str, RelativeSeam]:
    """The grid's tile lines (frame coordinates) against the same family of lines at every other offset.

    'vertical' (lines between tile columns), 'horizontal', and 'overall' (the worse); nan where
    the grid has one tile along that axis. Measure on the level as stored in the grid's frame.
    """
    per_axis = {}
    for name, axis, count in (("vertical", "x", grid.cols), ("horizontal", "y", grid.rows)):
        if count < 2:
            per_axis[name] = RelativeSeam(float("nan"), 1, 1)
            continue
        scores = _family_scores(step_profile(img, grid.repeat, axis), grid.core)  # type: ignore[arg-type]
        others = np.delete(scores, 0)
        per_axis[name] = _relative(float(scores[0]), others[~np.isnan(others)])
    return {**per_axis, "overall": _worse(per_axis)}


def seam_figures(img: Any, repeat: Repeat | str, grid: TileGrid | None = None) -> dict[str, float | int]:
    """What a finished job records and the summary shows: relative figures first, the local ratios beside them.

    ``repeat`` (with ``repeat_rank`` of ``repeat_compared`` lines) is the repeat boundary
    against every parallel interior line; ``internal_max`` (``internal_rank`` of
    ``internal_compared`` offsets) the worse axis of the final tile grid's lines against the
    same family at every other offset. ``repeat_local`` and ``internal_max_local`` are the
    neighbour-normalised ratios of the first section, kept for comparison.
    """
    figures: dict[str, float | int] = {
        **repeat_seam_relative(img, repeat)["overall"].record("repeat"),
        "repeat_local": round(float(repeat_seam_ratio(img, repeat)), 4),
    }
    if grid is not None:
        tile = tile_seam_relative(img, grid)["overall"]
        figures.update(internal_max=round(tile.ratio, 4), internal_rank=tile.rank, internal_compared=tile.compared)
        ratios = boundary_seam_ratio(img, tile_boundary_lines(grid), repeat=repeat)
        figures["internal_max_local"] = round(float(max(ratios.values())), 4) if ratios else 1.0
    return figures

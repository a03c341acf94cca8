"""When a photo holds no 2-D repeat: keep the cloth, drop the mount, and one period where one axis repeats.

A photo of a single motif, or of one repeat of a big design (a wallpaper panel on white paper
with the maker's label below), has no lattice to cut. Knitting the whole photo prints the mount
and the label as a frame, so the design that is knitted is the cloth alone
(:func:`pipeline.repeat.cloth.textured_box`). Where the cloth repeats along exactly one axis (a
mirrored panel two repeats tall, one wide), that axis is cut to one period
(:func:`pipeline.repeat.analysis.find_period`): knitting then has only the other axis left to do.
Periods along both axes without a 2-D lattice are not trusted (a linear ramp correlates with
itself at every lag), so then only the mount goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.repeat.analysis import MIN_PERIOD_CORRELATION, find_period
from pipeline.repeat.cloth import NO_LIGHT_CORRECTION, Box
from pipeline.repeat.extract import ANALYSIS_SIDE, TileRecipe, resized, tile_size
from pipeline.repeat.lattice import Repeat

#: An edge line is a strip (selvedge, label) when its mean colour lies this many median deviations out.
_STRIP_DEVIATIONS = 4.0
#: At most this fraction of the cloth is trimmed as strips from each side.
_STRIP_AT_MOST = 0.1
#: A crop that keeps this much of the photo's area or more changes nothing worth changing the job for.
_KEEP_AS_IS = 0.97


@dataclass(frozen=True)
class ClothCrop:
    """The cloth of a photo without a 2-D repeat, one period long along an axis that repeats; knitted."""

    recipe: TileRecipe
    cloth: Box
    periods: tuple[float | None, float | None]  # (x, y) period in photo pixels where that axis repeats
    reason: str  # why there is no 2-D tile

    def describe(self) -> str:
        """'612 x 572 px of cloth (one vertical period)' for messages."""
        axes = [name for name, period in zip(("horizontal", "vertical"), self.periods) if period is not None]
        periods = f" (one {' and one '.join(axes)} period)" if axes else ""
        return f"{self.recipe.size[0]} x {self.recipe.size[1]} px of cloth{periods}"

    def record(self) -> dict[str, Any]:
        """Provenance: the crop, the cloth, the 1-D periods and why no lattice was used."""
        return {
            "recipe": self.recipe.record(),
            "lattice": None,
            "cloth": self.cloth.record(),
            "periods": [None if p is None else round(p, 2) for p in self.periods],
            "note": self.reason,
        }


def cloth_crop(photo: np.ndarray, cloth: Box, repeat: Repeat, reason: str) -> ClothCrop | None:
    """The cloth box, cut to one period along an axis that repeats; ``None`` when that keeps almost everything."""
    height, width = photo.shape[:2]
    rows, cols = cloth.slices()
    region = np.asarray(photo)[rows, cols, :3]
    scale = min(1.0, ANALYSIS_SIDE / max(region.shape[:2]))
    period = find_period(resized(region, scale))
    px = period.px / scale if period.score_x >= MIN_PERIOD_CORRELATION else None
    py = period.py / scale if period.score_y >= MIN_PERIOD_CORRELATION else None
    if (px is None) == (py is None):
        # both axes "periodic" without a 2-D lattice is no repeat (ramps correlate at every lag); neither is none
        px = py = None
    if px is None:
        cloth = _without_strips(photo, cloth, axis=1)
    if py is None:
        cloth = _without_strips(photo, cloth, axis=0)
    span = (px or cloth.width, py or cloth.height)
    if span[0] * span[1] >= _KEEP_AS_IS * width * height:
        return None
    origin = (cloth.x0 + (cloth.width - span[0]) / 2, cloth.y0 + (cloth.height - span[1]) / 2)
    size = tile_size(repeat, span)
    # whole pixels where the crop is a plain crop: the cut then copies pixels instead of resampling them
    span = (span[0] if px else float(size[0]), span[1] if py else float(size[1]))
    origin = (origin[0] if px else float(round(origin[0])), origin[1] if py else float(round(origin[1])))
    recipe = TileRecipe(repeat, origin, 0.0, span, size, NO_LIGHT_CORRECTION)
    return ClothCrop(recipe, cloth, (px, py), reason)


def _without_strips(photo: np.ndarray, cloth: Box, axis: int) -> Box:
    """``cloth`` without edge strips (along ``axis``: 1 columns, 0 rows) whose mean colour stands out.

    A selvedge with the maker's name printed on it has detail, so the texture test keeps it; its
    colour, averaged along its length, is unlike any line of the design. Lines whose mean colour
    is more than 4 median deviations from the cloth's are trimmed from each edge, at most 10 %.
    """
    rows, cols = cloth.slices()
    region = np.asarray(photo, dtype=np.float64)[rows, cols, :3]
    means = region.mean(axis=1 - axis)  # one mean colour per column (axis 1) or row (axis 0)
    centre = np.median(means, axis=0)
    distance = np.abs(means - centre).max(axis=1)
    odd = distance > _STRIP_DEVIATIONS * max(float(np.median(distance)), 1.0)
    limit = int(_STRIP_AT_MOST * len(odd))
    start = next((i for i in range(limit) if not odd[i]), limit)
    stop = next((i for i in range(limit) if not odd[len(odd) - 1 - i]), limit)
    if axis == 1:
        return Box(cols.start + start, cloth.y0, cols.stop - stop, cloth.y1)
    return Box(cloth.x0, rows.start + start, cloth.x1, rows.stop - stop)

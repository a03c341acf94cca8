"""Where the cloth is in a photograph, and the light it was photographed in.

A museum photo or a scan shows a length of cloth on a plain mount or scanner bed, often with
a selvedge down one side. Neither is design: a tile cut across them prints a frame. Two tests
separate them, both on the photo's luma at analysis scale:

* **texture** (:func:`textured_box`): a mount or a plain selvedge has almost no detail; rows and
  columns at the photo's edges where few pixels have detail are trimmed;
* **repetition** (:func:`repeating_box`): once the lattice is known, the cloth looks like itself
  one lattice step away; a patterned selvedge or a printed label does not. Edge rows and
  columns that do not repeat are trimmed.

Light (:func:`illumination`): averaged over one repeat, a periodic design is the same
everywhere, so what varies in the period-averaged luma is light (vignetting, a lamp falling
off). A quadratic surface fitted to its logarithm over the cloth is the light; dividing by it
(one gain for all three channels, mean 1 over the cloth) flattens the light and keeps every
colour's hue and the cloth's mean brightness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipeline.repeat.lattice_fit import Lattice

#: A pixel has detail when its smoothed gradient exceeds this fraction of the cloth's median.
_DETAIL_FRACTION = 0.3
#: An edge row or column is trimmed while fewer than this fraction of its pixels qualify.
_KEEP_FRACTION = 0.5
#: A pixel repeats when its lattice mismatch is below this multiple of the cloth's median mismatch.
_MISMATCH_FACTOR = 2.5
#: A photo edge is plain when its pixels lie within this many levels of its median colour.
_PLAIN_LEVELS = 6.0
#: Light changes smaller than this (peak to peak, relative) are left alone.
_FLAT_ENOUGH = 0.01

LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Box:
    """A rectangle [x0, x1) x [y0, y1) of a photo, in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def scaled(self, factor: float) -> Box:
        return Box(self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor)

    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) of the whole pixels inside the box."""
        return slice(round(self.y0), round(self.y1)), slice(round(self.x0), round(self.x1))

    def record(self) -> list[float]:
        """[x0, y0, x1, y1] rounded to 0.1 px, for provenance."""
        return [round(v, 1) for v in (self.x0, self.y0, self.x1, self.y1)]


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma as float64."""
    return np.asarray(rgb, dtype=np.float64)[..., :3] @ LUMA


def _trim(good: np.ndarray, box: Box) -> Box:
    """Shrink ``box`` from each side while its outermost row/column has too few ``good`` pixels."""
    rows, cols = box.slices()
    region = good[rows, cols]
    if region.size == 0:
        return box
    row_ok = region.mean(axis=1) >= _KEEP_FRACTION
    col_ok = region.mean(axis=0) >= _KEEP_FRACTION
    if not row_ok.any() or not col_ok.any():
        return box
    top, bottom = int(np.argmax(row_ok)), len(row_ok) - int(np.argmax(row_ok[::-1]))
    left, right = int(np.argmax(col_ok)), len(col_ok) - int(np.argmax(col_ok[::-1]))
    return Box(cols.start + left, rows.start + top, cols.start + right, rows.start + bottom)


def detail(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude smoothed over 1/40 of the photo: high on the design (flat areas of a design
    borrow their neighbours' detail), near zero on a plain mount."""
    sigma = max(2.0, min(gray.shape) / 40)
    return ndimage.gaussian_filter(np.hypot(ndimage.sobel(gray, 0), ndimage.sobel(gray, 1)), sigma)


def mount(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the colour of a plain photo edge: for each side whose outermost rows (or columns) are one
    plain colour, the pixels within a few levels of it.

    The smoothed detail of :func:`detail` spills a few pixels from the cloth's edge onto the mount;
    the mount's colour does not. (Cloth of the mount's colour counts too, but a row is only trimmed
    when most of it qualifies.)
    """
    rgb = np.asarray(rgb, dtype=np.float64)[..., :3]
    found = np.zeros(rgb.shape[:2], dtype=bool)
    for edge in (rgb[:2], rgb[-2:], rgb[:, :2], rgb[:, -2:]):
        pixels = edge.reshape(-1, 3)
        colour = np.median(pixels, axis=0)
        if float(np.median(np.abs(pixels - colour).max(axis=1))) > _PLAIN_LEVELS:
            continue  # the cloth reaches this edge of the photo
        found |= np.abs(rgb - colour).max(axis=-1) <= 2 * _PLAIN_LEVELS
    return found


def textured_box(gray: np.ndarray, rgb: np.ndarray | None = None) -> Box:
    """The photo without the plain rows and columns at its edges (mount, scanner bed, plain selvedge).

    With ``rgb``, pixels of a plain edge's colour (:func:`mount`) never count as cloth.
    """
    height, width = gray.shape
    energy = detail(gray)
    centre = energy[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4]
    good = energy > _DETAIL_FRACTION * float(np.median(centre))
    if rgb is not None:
        good &= ~mount(rgb)
    box = Box(0, 0, width, height)
    for _ in range(3):  # trimming one side can make another side's edge row qualify
        trimmed = _trim(good, box)
        if trimmed == box:
            break
        box = trimmed
    return box


def mismatch(signal: np.ndarray, lattice: Lattice, smooth: float) -> np.ndarray:
    """How unlike itself one lattice step away each pixel is: the smallest step difference, smoothed.

    The steps are ±a, ±b, ±(a+b), ±(a-b); at the photo's edge only the steps that stay inside
    count, so the cloth's border repeats as well as its middle.
    """
    height, width = signal.shape
    steps = [lattice.a, lattice.b, (lattice.a[0] + lattice.b[0], lattice.a[1] + lattice.b[1])]
    steps.append((lattice.a[0] - lattice.b[0], lattice.a[1] - lattice.b[1]))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    best = np.full(signal.shape, np.inf)
    smoothed = ndimage.gaussian_filter(signal, 1.0)
    for dx, dy in steps:
        for sign in (1.0, -1.0):
            y, x = yy + sign * dy, xx + sign * dx
            inside = (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)
            shifted = ndimage.map_coordinates(smoothed, [y, x], order=1, mode="nearest")
            best = np.where(inside, np.minimum(best, np.abs(smoothed - shifted)), best)
    best[~np.isfinite(best)] = float(np.nanmax(np.where(np.isfinite(best), best, np.nan)))
    return ndimage.gaussian_filter(best, smooth)


def repeating_box(signal: np.ndarray, lattice: Lattice, box: Box) -> tuple[Box, np.ndarray]:
    """``box`` trimmed of edge rows/columns that do not repeat under ``lattice``, and the repeat mask."""
    period = min(np.hypot(*lattice.a), np.hypot(*lattice.b))
    error = mismatch(signal, lattice, smooth=max(2.0, period / 8))
    rows, cols = box.slices()
    reference = float(np.median(error[rows, cols]))
    repeats = error <= _MISMATCH_FACTOR * max(reference, 1e-9)
    trimmed = box
    for _ in range(3):
        again = _trim(repeats, trimmed)
        if again == trimmed:
            break
        trimmed = again
    return trimmed, repeats


@dataclass(frozen=True)
class Light:
    """A multiplicative light correction: gain(x, y) = exp(-(c . [1, x, y, x², xy, y²] - mean)).

    Coordinates are normalised to the photo (x / W, y / H), so the same coefficients serve the
    analysis copy and the full-resolution photo.
    """

    coefficients: tuple[float, ...]  # the fitted log-luma surface, without its constant
    offset: float  # the surface's mean over the cloth (the gain's mean is 1 there)

    @property
    def flat(self) -> bool:
        return not any(self.coefficients)

    def gain(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The gain at normalised photo coordinates (x, y) in [0, 1]."""
        if self.flat:
            return np.ones(np.broadcast(x, y).shape)
        c = self.coefficients
        surface = c[0] * x + c[1] * y + c[2] * x * x + c[3] * x * y + c[4] * y * y
        return np.exp(-(surface - self.offset))

    def record(self) -> dict[str, object]:
        """For provenance: the coefficients and the peak-to-peak correction it applies."""
        return {"log_luma_surface": [round(v, 6) for v in self.coefficients], "offset": round(self.offset, 6)}


NO_LIGHT_CORRECTION = Light((0.0,) * 5, 0.0)


def illumination(gray: np.ndarray, box: Box, cell: tuple[float, float]) -> Light:
    """The slow light over the cloth: a quadratic fitted to the log of the luma averaged over one repeat.

    ``cell`` is (width, height) of a region holding one repeat (any fundamental domain averages
    the design to the same value). Changes under 1 % peak to peak are left alone.
    """
    height, width = gray.shape
    size = (max(1, round(cell[1])), max(1, round(cell[0])))
    averaged = ndimage.uniform_filter(np.maximum(gray, 1.0), size=size, mode="nearest")
    rows, cols = box.slices()
    half_y, half_x = size[0] // 2, size[1] // 2
    inner = (slice(rows.start + half_y, rows.stop - half_y), slice(cols.start + half_x, cols.stop - half_x))
    values = np.log(averaged[inner])
    if values.size < 12:
        return NO_LIGHT_CORRECTION
    yy, xx = np.mgrid[inner]
    x, y = (xx.ravel() + 0.5) / width, (yy.ravel() + 0.5) / height
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    solution, *_ = np.linalg.lstsq(design, values.ravel(), rcond=None)
    surface = design[:, 1:] @ solution[1:]
    if float(np.exp(surface.max() - surface.min()) - 1.0) < _FLAT_ENOUGH:
        return NO_LIGHT_CORRECTION
    return Light(tuple(float(v) for v in solution[1:]), float(surface.mean()))

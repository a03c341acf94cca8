"""From a photographed length of cloth to one exact repeat tile.

:func:`search_tile` is the search, made once per job when the manifest is read: the cloth
(:mod:`pipeline.repeat.cloth`), its lattice and rotation (:mod:`pipeline.repeat.lattice_fit`),
the light, and the crop origin whose tile shows the least seam by the project's seam metric.
It returns a :class:`TileFinding`, whose :class:`TileRecipe` is all the geometry needed to cut
the tile again, or a :class:`NoRepeat` saying why there is no tile to cut. :func:`cut_tile`
applies a recipe: the workers cut the same tile from the same bytes without searching again.

The tile is sampled from the photo on the rotated lattice at sub-pixel positions (cubic spline
on the full-resolution photo), so a tile of 412.6 x 389.3 px becomes exactly one period of
``round`` pixels each way (even where the repeat needs it), and the light correction is
applied at the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.repeat.cloth import Box, Light, illumination, luma, repeating_box, textured_box
from pipeline.repeat.lattice import Repeat, as_repeat, honoured_size
from pipeline.repeat.lattice_fit import LatticeReading, TileForm, find_lattice, high_pass, read_lattice
from pipeline.repeat.seams import frame_ratio, repeat_seam_ratio

#: Long side (px) of the copy the search looks at; the tile itself is cut from the full photo.
ANALYSIS_SIDE = 768
#: Below this lattice correlation a found lattice is not trusted: the job fails rather than print a frame.
MIN_CONFIDENCE = 0.30
#: Candidate crop origins per lattice axis in the search for the least visible seam.
_ORIGIN_STEPS = 6
#: Fraction of a candidate tile's footprint that must be repeating cloth.
_CLEAN_FOOTPRINT = 0.98

Vector = tuple[float, float]


@dataclass(frozen=True)
class TileRecipe:
    """Where one repeat tile lies in a photo: everything :func:`cut_tile` needs, nothing searched."""

    repeat: Repeat
    origin: Vector  # the tile's top-left corner in photo pixels (x, y)
    rotation_deg: float
    period: tuple[float, float]  # (W, H) of one repeat in photo pixels, sub-pixel
    size: tuple[int, int]  # (width, height) of the cut tile in pixels
    light: Light

    def record(self) -> dict[str, Any]:
        """JSON data for provenance and the job key (rounded so it reads well and hashes stably)."""
        return {
            "repeat": self.repeat.value,
            "origin": [round(v, 2) for v in self.origin],
            "rotation_deg": round(self.rotation_deg, 3),
            "period": [round(v, 2) for v in self.period],
            "size": list(self.size),
            "light": self.light.record(),
        }


@dataclass(frozen=True)
class TileFinding:
    """What the search found in a photo: the recipe, the lattice, the cloth and how sure it is."""

    recipe: TileRecipe
    reading: LatticeReading  # in photo pixels
    found: TileForm  # the lattice's own type and tile (may differ from the recipe's, if one was asked for)
    cloth: Box  # photo pixels: the cloth that repeats under the lattice
    textured: Box  # the cloth by texture alone (what a fallback keeps when the lattice is doubted)
    confidence: float  # the lattice's correlation at its points over the cloth, 0..1
    seam: float  # the cut tile's repeat seam ratio
    frame: float  # the cut tile's frame metric

    @property
    def trusted(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE

    def record(self) -> dict[str, Any]:
        """Provenance: lattice vectors, type, drop fraction, rotation, cloth, crop, confidence, seam figures."""
        lattice = self.reading.lattice
        return {
            "recipe": self.recipe.record(),
            "lattice": {
                "a": [round(v, 2) for v in lattice.a],
                "b": [round(v, 2) for v in lattice.b],
                "type": self.found.repeat.value,
                "tile": [round(self.found.width, 2), round(self.found.height, 2)],
                "drop_fraction": round(self.reading.drop_fraction, 3),
            },
            "rotation_deg": round(self.reading.rotation_deg, 3),
            "cloth": self.cloth.record(),
            "confidence": round(self.confidence, 3),
            "tile_seam": round(self.seam, 3),
            "tile_frame": round(self.frame, 3),
        }


@dataclass(frozen=True)
class NoRepeat:
    """The photo shows no repeat to cut (a single motif, under 1.5 repeats, no vertical lattice vector)."""

    reason: str
    cloth: Box  # the cloth by texture alone (mount and plain selvedge gone), photo pixels


def tile_axes(rotation_deg: float) -> tuple[Vector, Vector]:
    """The tile's x and y axes as unit vectors in the photo."""
    theta = math.radians(rotation_deg)
    return (math.cos(theta), math.sin(theta)), (-math.sin(theta), math.cos(theta))


def _sample_points(recipe: TileRecipe, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Photo coordinates (x, y) of the tile's pixel centres, in a copy ``scale`` times the photo."""
    (ux, uy), (wx, wy) = tile_axes(recipe.rotation_deg)
    width, height = recipe.size
    tx = (np.arange(width) + 0.5) * recipe.period[0] / width
    ty = (np.arange(height) + 0.5) * recipe.period[1] / height
    ty, tx = np.meshgrid(ty, tx, indexing="ij")
    x = recipe.origin[0] + tx * ux + ty * wx
    y = recipe.origin[1] + tx * uy + ty * wy
    return x * scale, y * scale


def cut_tile(photo: np.ndarray, recipe: TileRecipe, *, order: int = 3) -> np.ndarray:
    """The recipe's tile from the photo: (height, width, 3) uint8, light flattened."""
    return _cut(np.asarray(photo), recipe, 1.0, order)


def _cut(photo: np.ndarray, recipe: TileRecipe, scale: float, order: int) -> np.ndarray:
    """The tile from a copy of the photo ``scale`` times its size (the search looks at a small copy)."""
    x, y = _sample_points(recipe, scale)
    height, width = photo.shape[:2]
    coords = np.stack([y - 0.5, x - 0.5])  # pixel k's centre is at k + 0.5
    gain = recipe.light.gain(x / width, y / height)
    channels = [
        ndimage.map_coordinates(photo[..., c].astype(np.float64), coords, order=order, mode="nearest")
        for c in range(3)
    ]
    return np.clip(np.round(np.stack(channels, axis=-1) * gain[..., None]), 0, 255).astype(np.uint8)


def resized(photo: np.ndarray, scale: float) -> np.ndarray:
    """The photo ``scale`` times its size (area averaging); itself at scale 1."""
    if scale >= 1.0:
        return photo
    height, width = photo.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(photo[..., :3]).resize(size, Image.Resampling.BOX))


def search_tile(photo: np.ndarray, repeat: Repeat | str | None = None) -> TileFinding | NoRepeat:
    """Find the cloth, its lattice, the light and the least visible crop; ``repeat`` forces a type.

    With ``repeat`` the tile is the smallest one of that type on the cloth's lattice (a
    half-drop cloth asked for as block gives a tile two columns wide); without, the lattice's
    own type. Deterministic: the same pixels give the same finding.
    """
    photo = np.asarray(photo)[..., :3]
    height, width = photo.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    small = resized(photo, scale)
    gray = luma(small)
    box = textured = textured_box(gray, small)
    signal = high_pass(gray, max(4.0, min(box.width, box.height) / 10))
    lattice = find_lattice(signal[box.slices()])
    if lattice is None:
        return NoRepeat("no repeat found: the cloth does not correlate with itself at any shift", textured.scaled(1 / scale))
    trimmed, repeats = repeating_box(signal, lattice, box)
    if trimmed.width * trimmed.height < 0.97 * box.width * box.height:
        lattice = find_lattice(signal[trimmed.slices()]) or lattice  # without the selvedge the lattice reads better
        box = trimmed
    reading = read_lattice(lattice)
    if reading is None:
        return NoRepeat("no repeat found: the lattice has no vertical vector within 12 degrees", textured.scaled(1 / scale))
    found = reading.best
    form = found if repeat is None else reading.form(as_repeat(repeat))
    if form is None:
        return NoRepeat(f"the cloth's lattice has no {as_repeat(repeat).value} tile in range", textured.scaled(1 / scale))
    light = illumination(gray, box, (reading.column_width, reading.column_height))
    recipe = _least_seam(small, box, repeats, reading, form, light)
    if recipe is None:
        return NoRepeat(
            f"no repeat to cut: less than one whole repeat of clean cloth: a {form.width / scale:.0f} x {form.height / scale:.0f} px "
            f"tile does not fit in the {box.width / scale:.0f} x {box.height / scale:.0f} px of cloth",
            textured.scaled(1 / scale),
        )
    full = _at_scale(recipe, 1 / scale)
    tile = cut_tile(photo, full)
    return TileFinding(
        recipe=full,
        reading=_reading_at_scale(reading, 1 / scale),
        found=TileForm(found.repeat, found.width / scale, found.height / scale),
        cloth=box.scaled(1 / scale),
        textured=textured.scaled(1 / scale),
        confidence=reading.lattice.score,
        seam=float(repeat_seam_ratio(tile, full.repeat)),
        frame=float(frame_ratio(tile, full.repeat)),
    )


def tile_size(repeat: Repeat, period: tuple[float, float]) -> tuple[int, int]:
    """Whole pixels for one period, even where the repeat needs it."""
    return honoured_size(repeat, max(2, round(period[0])), max(2, round(period[1])))


def _at_scale(recipe: TileRecipe, factor: float) -> TileRecipe:
    """The same tile in a photo ``factor`` times larger (the light is in normalised coordinates)."""
    period = (recipe.period[0] * factor, recipe.period[1] * factor)
    origin = (recipe.origin[0] * factor, recipe.origin[1] * factor)
    return TileRecipe(recipe.repeat, origin, recipe.rotation_deg, period, tile_size(recipe.repeat, period), recipe.light)


def _reading_at_scale(reading: LatticeReading, factor: float) -> LatticeReading:
    forms = tuple(TileForm(f.repeat, f.width * factor, f.height * factor) for f in reading.forms)
    return LatticeReading(
        reading.lattice.scaled(factor), reading.rotation_deg, reading.column_width * factor,
        reading.column_height * factor, reading.drop_fraction, forms,
    )  # fmt: skip


def tile_corners(origin: Vector, rotation_deg: float, period: tuple[float, float]) -> np.ndarray:
    """The four corners (x, y) of a tile placed at ``origin``."""
    (ux, uy), (wx, wy) = tile_axes(rotation_deg)
    corners = [(0, 0), (period[0], 0), (0, period[1]), period]
    return np.array([(origin[0] + a * ux + b * wx, origin[1] + a * uy + b * wy) for a, b in corners])


def _clean(corners: np.ndarray, box: Box, repeats: np.ndarray) -> bool:
    """Does the footprint lie inside the cloth box, on cloth that repeats?"""
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    if x0 < box.x0 or y0 < box.y0 or x1 > box.x1 or y1 > box.y1:
        return False
    window = repeats[int(y0) : int(math.ceil(y1)), int(x0) : int(math.ceil(x1))]
    return window.size > 0 and float(window.mean()) >= _CLEAN_FOOTPRINT


def _least_seam(
    small: np.ndarray, box: Box, repeats: np.ndarray, reading: LatticeReading, form: TileForm, light: Light
) -> TileRecipe | None:
    """Of a grid of origins over one lattice cell whose tile lies on clean cloth, the one with the least seam.

    Every origin of an exact repeat gives a seamless tile; on a real photo the tile's boundary
    also crosses the print's own edges and faults, and some origins hide them better. Ties go
    to the origin nearest the cloth's centre (best lit, least distorted).
    """
    period = (form.width, form.height)
    size = tile_size(form.repeat, period)
    (ux, uy), (wx, wy) = tile_axes(reading.rotation_deg)
    centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
    # the cell whose tile is centred on the cloth, then a grid of origins across one cell around it
    start = (centre[0] - (period[0] * ux + period[1] * wx) / 2, centre[1] - (period[0] * uy + period[1] * wy) / 2)
    best: tuple[float, float, TileRecipe] | None = None
    steps = [k / _ORIGIN_STEPS - 0.5 for k in range(_ORIGIN_STEPS)]
    for sy in steps:
        for sx in steps:
            a, b = sx * period[0], sy * period[1]
            origin = (start[0] + a * ux + b * wx, start[1] + a * uy + b * wy)
            if not _clean(tile_corners(origin, reading.rotation_deg, period), box, repeats):
                continue
            recipe = TileRecipe(form.repeat, origin, reading.rotation_deg, period, size, light)
            seam = float(repeat_seam_ratio(_cut(small, recipe, 1.0, 1), form.repeat))
            distance = math.hypot(origin[0] - start[0], origin[1] - start[1])
            if best is None or (round(seam, 3), distance) < (round(best[0], 3), best[1]):
                best = (seam, distance, recipe)
    if best is None:
        return _any_clean_origin(box, repeats, reading, form, light, size)
    return best[2]


def _any_clean_origin(
    box: Box, repeats: np.ndarray, reading: LatticeReading, form: TileForm, light: Light, size: tuple[int, int]
) -> TileRecipe | None:
    """When no origin near the centre is clean (little cloth to spare): the first clean one on a fine scan."""
    period = (form.width, form.height)
    for y in np.arange(box.y0, box.y1, max(1.0, period[1] / 8)):
        for x in np.arange(box.x0, box.x1, max(1.0, period[0] / 8)):
            origin = (float(x), float(y))
            if _clean(tile_corners(origin, reading.rotation_deg, period), box, repeats):
                return TileRecipe(form.repeat, origin, reading.rotation_deg, period, size, light)
    return None

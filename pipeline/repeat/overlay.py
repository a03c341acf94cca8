"""The lattice drawn on the photo, so that a person can check what the search found.

Yellow: the cloth (mount and selvedge outside it). Cyan: the tile's copies across the cloth
under its repeat type (a half-drop's columns visibly drop). Red: the tile that was cut (for a
:class:`~pipeline.repeat.cloth_crop.ClothCrop`, the cloth that is knitted).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from pipeline.repeat.cloth_crop import ClothCrop
from pipeline.repeat.extract import TileFinding, tile_axes, tile_corners
from pipeline.repeat.lattice import lattice_translations

#: Long side (px) of the overlay image.
OVERLAY_SIDE = 1024


def draw_overlay(photo: np.ndarray, finding: TileFinding | ClothCrop) -> np.ndarray:
    """The photo (at most :data:`OVERLAY_SIDE` px long) with the cloth, the lattice and the cut tile drawn on."""
    height, width = photo.shape[:2]
    scale = min(1.0, OVERLAY_SIDE / max(height, width))
    image = Image.fromarray(np.asarray(photo)[..., :3]).resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
    )
    draw = ImageDraw.Draw(image)
    line = max(1, round(2 * scale * max(height, width) / 1000))
    recipe = finding.recipe
    (ux, uy), (wx, wy) = tile_axes(recipe.rotation_deg)
    tile_w, tile_h = recipe.size
    sx, sy = recipe.period[0] / tile_w, recipe.period[1] / tile_h
    reach = math.ceil(math.hypot(width, height) / min(recipe.period)) + 1
    for dy, dx in lattice_translations(recipe.repeat, tile_w, tile_h, reach):
        shift = (dx * sx * ux + dy * sy * wx, dx * sx * uy + dy * sy * wy)
        origin = (recipe.origin[0] + shift[0], recipe.origin[1] + shift[1])
        corners = tile_corners(origin, recipe.rotation_deg, recipe.period)
        if corners[:, 0].max() < 0 or corners[:, 1].max() < 0 or corners[:, 0].min() > width or corners[:, 1].min() > height:
            continue
        draw.polygon(_outline(corners, scale), outline=(0, 230, 255), width=line)
    cloth = finding.cloth
    draw.rectangle([cloth.x0 * scale, cloth.y0 * scale, cloth.x1 * scale, cloth.y1 * scale], outline=(255, 220, 0), width=line)
    draw.polygon(_outline(tile_corners(recipe.origin, recipe.rotation_deg, recipe.period), scale), outline=(255, 30, 30), width=2 * line)
    return np.asarray(image)


def _outline(corners: np.ndarray, scale: float) -> list[tuple[float, float]]:
    """Corners (origin, +x, +y, +x+y) as a closed polygon in overlay pixels."""
    order = [0, 1, 3, 2]
    return [(float(corners[i, 0] * scale), float(corners[i, 1] * scale)) for i in order]


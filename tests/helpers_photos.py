"""Synthetic "photographs" of printed cloth built from a known tile, for the photo-to-tile tests.

The design is a sum of coloured elliptical blobs repeated under a lattice; it is evaluated at
any plane point, so a photo is rendered directly at sub-pixel positions: the cloth rotated by a
known angle, lit by a vignette, laid on a plain grey mount with a cream selvedge strip down one
side. What the extraction must find (type, tile size, rotation) is known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.repeat.lattice import Repeat, lattice_translations

MOUNT_GREY = (128, 128, 128)
SELVEDGE_CREAM = (236, 226, 200)


@dataclass(frozen=True)
class ClothDesign:
    """A repeat tile W x H of ``repeat`` made of ``blobs`` (x, y, rx, ry, angle, r, g, b) on ``ground``."""

    repeat: Repeat
    width: int
    height: int
    blobs: np.ndarray
    ground: tuple[int, int, int] = (40, 60, 110)
    drop: float | None = None  # a fractional drop (1/3: each column drops by H/3), overriding ``repeat``

    def reduce(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Plane points into the tile [0, W) x [0, H) under the lattice (float ``source_coords``)."""
        w, h = self.width, self.height
        if self.drop is not None:
            column = np.floor(x / w)
            return x - column * w, np.mod(y - column * h * self.drop, h)
        if self.repeat is Repeat.HALF_DROP:
            column = np.floor(x / w)
            return x - column * w, np.mod(y - column * h / 2, h)
        if self.repeat is Repeat.BRICK:
            row = np.floor(y / h)
            return np.mod(x - row * w / 2, w), y - row * h
        return np.mod(x, w), np.mod(y, h)

    def render(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """RGB float of the design at plane points ``x``, ``y`` (pixel centres)."""
        tx, ty = self.reduce(x, y)
        out = np.zeros((*x.shape, 3)) + np.array(self.ground, dtype=np.float64)
        if self.drop is not None:
            shifts = [(c * self.width, c * self.height * self.drop + r * self.height) for c in (-1, 0, 1) for r in (-2, -1, 0, 1)]
        else:
            shifts = [(dx, dy) for dy, dx in lattice_translations(self.repeat, self.width, self.height)]
        for bx, by, rx, ry, angle, *colour in self.blobs:
            c, s = math.cos(angle), math.sin(angle)
            weight = np.zeros(x.shape)
            for dx, dy in shifts:
                u, v = tx - (bx + dx), ty - (by + dy)
                a, b = (u * c + v * s) / rx, (-u * s + v * c) / ry
                weight = np.maximum(weight, np.exp(-0.5 * (a * a + b * b) ** 2))
            out = out * (1 - weight[..., None]) + np.array(colour) * weight[..., None]
        return out

    def tile(self) -> np.ndarray:
        """The exact W x H tile, uint8."""
        yy, xx = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64) + 0.5
        return np.clip(np.round(self.render(xx, yy)), 0, 255).astype(np.uint8)


def cloth_design(repeat: Repeat, width: int = 72, height: int = 60, *, seed: int = 1, blobs: int = 14) -> ClothDesign:
    """A seeded random design: blobs of 3-11 px radius in a few colours, nothing symmetric (a drop p/q: ``drop``)."""
    rng = np.random.default_rng(seed)
    rows = np.column_stack([
        rng.uniform(0, width, blobs), rng.uniform(0, height, blobs),
        rng.uniform(3, 11, blobs), rng.uniform(2, 6, blobs), rng.uniform(0, math.pi, blobs),
        rng.uniform(60, 250, (blobs, 3)),
    ])  # fmt: skip
    fractional = repeat.kind == "drop" and repeat is not Repeat.HALF_DROP
    return ClothDesign(repeat, width, height, rows, drop=float(repeat.fraction) if fractional else None)


def photograph(
    design: ClothDesign,
    *,
    repeats: tuple[float, float] = (4.3, 4.2),
    rotation_deg: float = 0.0,
    vignette: float = 0.0,
    mount: int = 0,
    selvedge: int = 0,
) -> np.ndarray:
    """A photo of a length of the cloth: ``repeats`` tiles across and down, rotated, lit, mounted.

    The cloth's x axis runs at ``rotation_deg`` in the photo (clockwise on screen, y down), about
    the photo's centre. ``vignette`` darkens the corners by that fraction. ``mount`` px of plain
    grey surround the cloth; ``selvedge`` px of cream cloth run down its left side.
    """
    cloth_w, cloth_h = repeats[0] * design.width, repeats[1] * design.height
    width, height = round(cloth_w + selvedge + 2 * mount), round(cloth_h + 2 * mount)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    cx, cy = width / 2, height / 2
    theta = math.radians(rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    # a photo point p shows the cloth point q with p = centre + q_x (c, s) + q_y (-s, c)
    qx = (xx - cx) * c + (yy - cy) * s
    qy = -(xx - cx) * s + (yy - cy) * c
    half_w, half_h = (cloth_w + selvedge) / 2, cloth_h / 2
    rgb = design.render(qx + 1000.0, qy + 1000.0)  # + an offset: no lattice point at the centre
    on_selvedge = (qx < -half_w + selvedge)[..., None]
    rgb = np.where(on_selvedge, _selvedge(qx + half_w), rgb)
    on_cloth = ((np.abs(qx) < half_w) & (np.abs(qy) < half_h))[..., None]
    rgb = np.where(on_cloth, rgb, np.array(MOUNT_GREY, dtype=np.float64))
    if vignette:
        radius = np.hypot((xx - cx) / cx, (yy - cy) / cy) / math.sqrt(2)
        rgb = rgb * (1 - vignette * radius**2)[..., None]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _selvedge(x: np.ndarray) -> np.ndarray:
    """Cream with two thin woven lines, as a selvedge looks: no repeat of the design."""
    line = (np.abs(x - 4) < 1) | (np.abs(x - 9) < 0.7)
    return np.where(line[..., None], np.array((120, 100, 80.0)), np.array(SELVEDGE_CREAM, dtype=np.float64))

"""Colour vocabulary shared by settings, the manifest and the deliverables: ``#rrggbb`` inks and CIELAB.

Spot colours are chosen and compared in CIELAB (D65, the sRGB white), where a distance is
roughly what a colourist sees; palettes are written and read as ``#rrggbb``. Conversions are
plain numpy with a fixed order of operations, so the same pixels give the same Lab on any
machine (clustering is then deterministic too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
#: D65 white of sRGB, for XYZ -> Lab.
_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


class ColourError(ValueError):
    """A colour that is not ``#rrggbb``; the message names it."""


def parse_hex(text: str) -> tuple[int, int, int]:
    """``"#1b2a49"`` (or without ``#``) -> (27, 42, 73)."""
    match = _HEX.match(str(text).strip())
    if not match:
        raise ColourError(f"{text!r} is not a colour: write #rrggbb, e.g. #1b2a49")
    value = match.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def parse_palette(text: str | Iterable[str]) -> list[tuple[int, int, int]]:
    """``"#aa0000, #00aa00"`` or a list of hex strings -> RGB triples (at least one)."""
    parts = [p for p in (text.split(",") if isinstance(text, str) else text) if str(p).strip()]
    if not parts:
        raise ColourError("the palette is empty: give #rrggbb colours separated by commas")
    return [parse_hex(p) for p in parts]


def to_hex(rgb: Iterable[int]) -> str:
    """(27, 42, 73) -> ``"#1b2a49"``."""
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB float32 (..., 3): L 0..100, a and b about -128..127."""
    c = np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
    linear = np.where(c <= 0.04045, c / np.float32(12.92), ((c + np.float32(0.055)) / np.float32(1.055)) ** 2.4)
    xyz = linear @ (_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)  # XYZ relative to the white
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29).astype(np.float32)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB uint8 (..., 3), clipped to the gamut (for cluster centres and swatches)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_RGB_TO_XYZ).T, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(c * 255), 0, 255).astype(np.uint8)

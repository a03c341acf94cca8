"""Repeat previews: a tile laid out R x C times the way the fabric will carry it.

A preview is nothing but a window of the plane tiled under the repeat's lattice, so it is
one :func:`pipeline.repeat.gather.gather_window` call starting at the origin: half-drop columns
drop by H/2 each, brick rows shift by W/2 each, and copies that cross the preview's edge are
cut exactly where the printed fabric would cut them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from pipeline.errors import WeftError
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat, as_repeat

MAX_GRID = 16


def parse_grid(text: str) -> tuple[int, int]:
    """``"3x2"`` -> (3 rows, 2 columns); a clear error for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    rows, cols = (int(match[1]), int(match[2])) if match else (0, 0)
    if not (1 <= rows <= MAX_GRID and 1 <= cols <= MAX_GRID):
        raise WeftError(f"--preview {text!r}: expected ROWSxCOLS such as 2x2 or 3x3 (1 to {MAX_GRID} each)")
    return rows, cols


def repeat_preview(tile: Any, repeat: Repeat | str, rows: int, cols: int) -> np.ndarray:
    """The tile repeated ``rows`` x ``cols`` under ``repeat``: shape (rows*H, cols*W, ...).

    ``tile`` may be numpy or zarr (H, W, 3); a zarr tile is read slice by slice.
    """
    height, width = int(tile.shape[0]), int(tile.shape[1])
    return np.asarray(gather_window(tile, as_repeat(repeat), 0, 0, rows * height, cols * width))


def preview_region(tile: Any, repeat: Repeat | str, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """One rectangle of a repeat preview, for writers that stream a large preview in bands."""
    return np.asarray(gather_window(tile, as_repeat(repeat), y0, x0, height, width))

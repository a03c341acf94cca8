"""``weft inspect DESIGN --extract TILE.png``: the tile, the overlay beside it, and what was found, in words.

For a person to check a photographed design before a run: the overlay shows the cloth, the
lattice and the cut tile on the photo; the lines printed say the type, periods, drop,
rotation, confidence and the tile's seam and frame figures, and whether a run would use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.errors import WeftError
from pipeline.repeat.extract import MIN_CONFIDENCE, NoRepeat, cut_tile, search_tile
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.overlay import draw_overlay
from pipeline.repeat.seams import FRAME_VISIBLE_ABOVE


def overlay_path(tile: Path) -> Path:
    """Where the overlay of ``TILE.png`` goes: ``TILE.overlay.png`` beside it."""
    return tile.with_name(f"{tile.stem}.overlay.png")


def write_extraction(photo: np.ndarray, repeat: Repeat | None, tile_path: Path, console: Any) -> None:
    """Search the photo, write the tile and its overlay, print the finding; no repeat is an error."""
    finding = search_tile(photo, repeat)
    if isinstance(finding, NoRepeat):
        raise WeftError(f"--extract: {finding.reason}; nothing written (a run knits the design instead, without its mount: docs/photographs.md)")
    tile_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(cut_tile(photo, finding.recipe)).save(tile_path)
    Image.fromarray(draw_overlay(photo, finding)).save(overlay_path(tile_path))
    found, recipe, reading = finding.found, finding.recipe, finding.reading
    console.print(
        f"lattice: {found.repeat.value}, {found.width:.1f} x {found.height:.1f} px, drop fraction "
        f"{reading.drop_fraction:.3f}, rotation {reading.rotation_deg:+.2f} deg; confidence {finding.confidence:.2f}",
        highlight=False,
    )
    console.print(
        f"tile: {recipe.repeat.value} {recipe.size[0]} x {recipe.size[1]} px at ({recipe.origin[0]:.1f}, "
        f"{recipe.origin[1]:.1f}); seam {finding.seam:.2f}, frame {finding.frame:.2f}; cloth {finding.cloth.record()}",
        highlight=False,
    )
    console.print(f"wrote {tile_path} and {overlay_path(tile_path)}", highlight=False)
    if not finding.trusted or finding.frame >= FRAME_VISIBLE_ABOVE:
        console.print(
            f"[red]a run would refuse this tile[/] (confidence below {MIN_CONFIDENCE} or frame >= "
            f"{FRAME_VISIBLE_ABOVE}): crop the design by hand or set crop_to_repeat = false",
            highlight=False,
        )

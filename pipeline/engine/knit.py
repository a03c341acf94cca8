"""Knitting a design that does not repeat: a seamless start and content target for the optimiser.

Most catalogue designs are photos or scans cut from a longer run of fabric: their right edge
does not continue into their left edge, so the design itself has a step at every seam. The
optimiser must not be asked to reproduce that step. Within a band around the seams the design
is cross-faded with a lattice-shifted copy of itself whose own seams lie far inside the tile
(a quarter or half tile away): at the seam the shifted copy is continuous, so the blend is too.
The content loss is also faded out in that band (:func:`pipeline.engine.losses.seam_fade_mask`), so
the style loss repaints the cross-fade in the painting's own texture.

Designs that already repeat (a tartan cut to one sett) are left untouched: a cross-fade would
only ghost a shifted copy into them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.repeat.lattice import Repeat, as_repeat, fit_to_repeat, honoured_size
from pipeline.repeat.seams import KNIT_ABOVE
from pipeline.engine.losses import seam_fade_mask
from pipeline.repeat.resample import resample_window, resize_uint8

def knit_shift(repeat: Repeat) -> tuple[float, float]:
    """The shifted copy's offset as fractions (of H, of W): its seams must stay clear of the design's.

    Half a tile both ways for block. Under a drop d the copy's horizontal seams fall at s and
    s + d in neighbouring columns, so s = (1 - d) / 2 keeps both away from 0 (a quarter for
    half-drop, a third for drop-1/3); bricks likewise across. Mirror designs never need knitting
    (a reflection is continuous), so their entry is only a default.
    """
    away = float((1 - repeat.fraction) / 2)
    if repeat.kind == "drop":
        return away, 0.5
    if repeat.kind == "brick":
        return 0.5, away
    return 0.5, 0.5


#: Long side at which seamlessness is judged (cheap, and stable against noise).
_PROBE_SIDE = 256


def probe_seam_ratio(design: np.ndarray, repeat: Repeat | str) -> float:
    """The design's own seam ratio (:func:`pipeline.repeat.analysis.design_seam_ratio`) on a copy of at most 256 px."""
    from pipeline.repeat.analysis import design_seam_ratio

    repeat = as_repeat(repeat)
    design = fit_to_repeat(design, repeat)
    height, width = design.shape[:2]
    scale = min(1.0, _PROBE_SIDE / max(height, width))
    h, w = max(8, round(height * scale)), max(8, round(width * scale))
    # both even (then a multiple of the drop's denominator): the probe's size does not depend on half-drop vs brick
    w, h = honoured_size(repeat, w + w % 2, h + h % 2)
    return float(design_seam_ratio(resize_uint8(design, repeat, (h, w)), repeat))


def needs_knit(design: np.ndarray, repeat: Repeat | str) -> bool:
    """True when the design does not repeat by itself."""
    return probe_seam_ratio(design, repeat) > KNIT_ABOVE


def content_window(
    design: Any,
    repeat: Repeat | str,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    *,
    origin: tuple[int, int] = (0, 0),
    band: float,
    knit: bool,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The design resized to ``size`` (H, W), window (y0, x0, h, w) of a level framed at ``origin``.

    RGB float (1, 3, h, w). With ``knit`` the seams are cross-faded with the shifted copy.
    """
    repeat = as_repeat(repeat)
    plain = resample_window(design, repeat, size, *window, dst_origin=origin, device=device)
    if not knit or band <= 0:
        return plain
    fy, fx = knit_shift(repeat)
    shift = (origin[0] + round(size[0] * fy), origin[1] + round(size[1] * fx))
    shifted = resample_window(design, repeat, size, *window, dst_origin=shift, device=device)
    weight = torch.from_numpy(seam_fade_mask(repeat, size, window, band, frame_origin=origin)).to(plain.device)
    return plain * weight + shifted * (1 - weight)

"""What ``crop_to_repeat`` does with one design: leave it, cut a tile from it, or say why not.

One decision, made in one place for the manifest (``weft plan``/``run``/``validate``) and for
``weft stylize``:

* ``false``: the design is used as it is (knitted if it does not repeat).
* ``"auto"`` (the default): a design that is already seamless under its repeat is left exactly
  as it is; any other is searched for a tile (:func:`pipeline.repeat.extract.search_tile`).
* ``true``: every design is searched.

A search that finds **no repeat** (a single motif, under 1.5 repeats of cloth) falls back to
knitting, with a warning: the cloth without its mount (one period long along an axis that does
repeat, :mod:`pipeline.repeat.cloth_crop`), or the whole design where that is nearly all of it. A search that finds a lattice it
does not trust (confidence under :data:`~pipeline.repeat.extract.MIN_CONFIDENCE`), or whose
tile would show a frame (:data:`~pipeline.repeat.seams.FRAME_VISIBLE_ABOVE`) or a plainly
visible seam (:data:`~pipeline.repeat.seams.VISIBLE_ABOVE`), never prints that tile: under
``true`` (a tile was asked for) the job **fails** with the reason; under ``"auto"`` (the
default, which also meets designs nobody photographed, such as gradients whose ramps
correlate) it is knitted as a design without repeat is, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.repeat.analysis import design_seam_ratio
from pipeline.repeat.cloth import Box
from pipeline.repeat.cloth_crop import ClothCrop, cloth_crop
from pipeline.repeat import extract
from pipeline.repeat.extract import NoRepeat, TileFinding, search_tile
from pipeline.repeat.lattice import Repeat, fit_to_repeat, honoured_size
from pipeline.repeat.seams import FRAME_VISIBLE_ABOVE, KNIT_ABOVE, VISIBLE_ABOVE, frame_ratio

#: Long side (px) of the copy on which "already seamless" is judged (as the engine's knitting probe).
_PROBE_SIDE = 256
#: A manifest type whose tile is this much bigger than the lattice's own disagrees with it.
_SAME_CELL = 1.05


@dataclass(frozen=True)
class TileChoice:
    """The outcome for one design: a tile to cut (or none), the repeat to use, and what to tell the user."""

    finding: TileFinding | ClothCrop | None  # None: the design is used as it is
    repeat: Repeat  # the job's repeat: the manifest's, else the lattice's, else the default
    warning: str | None = None
    error: str | None = None


def seamless_as_is(design: np.ndarray, repeat: Repeat) -> bool:
    """Does the design already repeat under ``repeat`` (judged on a copy of at most 256 px)?

    Its seams must be invisible *and* it must show no frame: a photo on a plain mount joins its
    copies perfectly (grey meets grey) and is still no repeat.
    """
    design = fit_to_repeat(np.asarray(design)[..., :3], repeat)
    height, width = design.shape[:2]
    scale = min(1.0, _PROBE_SIDE / max(height, width))
    w, h = max(8, round(width * scale)), max(8, round(height * scale))
    w, h = honoured_size(repeat, w + w % 2, h + h % 2)  # even, then what the drop's denominator needs
    probe = np.asarray(Image.fromarray(design).resize((w, h), Image.Resampling.BOX))
    return float(design_seam_ratio(probe, repeat)) <= KNIT_ABOVE and frame_ratio(probe, repeat) < FRAME_VISIBLE_ABOVE


def choose_tile(
    design: np.ndarray, mode: bool | str, repeat: Repeat | None, default: Repeat = Repeat.BLOCK
) -> TileChoice:
    """Apply ``crop_to_repeat = mode`` to a design whose manifest gives ``repeat`` (``None``: not given)."""
    used = repeat or default
    if mode is False or (mode == "auto" and seamless_as_is(design, used)):
        return TileChoice(None, used)
    finding = search_tile(design, repeat)
    if isinstance(finding, NoRepeat):
        return _knitted(design, used, finding.cloth, finding.reason)
    found = finding.found
    summary = (
        f"{found.repeat.value} lattice {found.width:.1f} x {found.height:.1f} px "
        f"(drop {finding.reading.drop_fraction:.2f}, rotation {finding.reading.rotation_deg:+.2f} deg)"
    )
    doubt = None
    if not finding.trusted:
        doubt = f"found a {summary} but its confidence {finding.confidence:.2f} is below {extract.MIN_CONFIDENCE}"
    elif finding.frame >= FRAME_VISIBLE_ABOVE:
        doubt = (
            f"found a {summary}, but the tile cut from it shows a frame "
            f"(frame metric {finding.frame:.2f} >= {FRAME_VISIBLE_ABOVE})"
        )
    elif finding.seam > VISIBLE_ABOVE:
        doubt = f"found a {summary}, but the tile cut from it has a visible seam ({finding.seam:.2f} > {VISIBLE_ABOVE})"
    if doubt and mode is True:
        return TileChoice(
            None, used, error=f"{doubt}: the tile would not be exact; crop the design to one repeat by hand, or set "
            'crop_to_repeat = "auto" or false to knit the whole design',
        )  # fmt: skip
    if doubt:
        return _knitted(design, used, finding.textured, f"{doubt}: no tile is cut")
    warning = None
    cut = finding.recipe
    if repeat is not None and finding.recipe.period[0] * finding.recipe.period[1] > _SAME_CELL * found.area:
        warning = (
            f"the photo's lattice is a {summary}, not {repeat.value}; as {repeat.value} the tile is "
            f"{cut.size[0]} x {cut.size[1]} px (several of the lattice's cells): leave 'repeat' out to use the "
            "lattice's own type"
        )
    return TileChoice(finding, cut.repeat, warning=warning)


def _knitted(design: np.ndarray, repeat: Repeat, cloth: Box, reason: str) -> TileChoice:
    """No tile to cut: the cloth without its mount is knitted (or the whole design, where that is nearly all)."""
    crop = cloth_crop(design, cloth, repeat, reason)
    if crop is None:
        return TileChoice(None, repeat, warning=f"{reason}; the whole design is used and knitted instead")
    return TileChoice(crop, repeat, warning=f"{reason}; {crop.describe()} is used and knitted instead")

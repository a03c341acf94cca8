"""``crop_to_repeat`` for one job: decode its design, let :mod:`pipeline.repeat.tile_choice` decide,
and turn the decision into the job's repeat, its design size and its problems.

Done when the manifest is read (not on the workers), because the tile decides what the job
is: the repeat type when the manifest leaves it out, the output size when it comes from the
design, and the job key. A design used by several jobs is decoded and searched once per load.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import ImageError
from pipeline.manifest.context import _Context
from pipeline.manifest.images import load_rgb
from pipeline.manifest.problems import _BAD, _Where
from pipeline.manifest.specs import DEFAULT_REPEAT
from pipeline.repeat.extract import TileFinding
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.tile_choice import TileChoice, choose_tile
from pipeline.settings import Settings


def _design_tile(ctx: _Context, where: _Where, design: Path, repeat: Repeat | None, settings: Settings) -> Any:
    """(settings, repeat, finding or None) for the job, or :data:`_BAD` after reporting.

    The settings stay as the layers resolved them; a design used as it is (finding ``None``) is
    keyed as ``crop_to_repeat = false`` (:func:`pipeline.run.plan.job_key`), so its job is the
    job it was before ``"auto"`` existed: same pixels, same key.
    """
    mode = settings.crop_to_repeat
    if mode is False or not ctx.check_images:  # without image checks no pixel is read: the setting stays as written
        return settings, repeat or DEFAULT_REPEAT, None
    key = (design, mode, repeat)
    choice = ctx.tile_choices.get(key)
    if choice is None:
        try:
            pixels = load_rgb(design, max_pixels=ctx.limits.max_input_pixels)
        except ImageError:
            # a file that does not decode is reported by `weft validate` and fails its job when the run
            # decodes it; here it is used as it is
            return settings, repeat or DEFAULT_REPEAT, None
        choice = ctx.tile_choices[key] = choose_tile(pixels, mode, repeat, DEFAULT_REPEAT)
    return _report(where, design, choice, settings)


def _report(where: _Where, design: Path, choice: TileChoice, settings: Settings) -> Any:
    """Warnings and errors of a choice against the job; the job's settings, repeat and finding."""
    if choice.error:
        where.error("design", f"crop_to_repeat = {_shown(settings.crop_to_repeat)}: {design.name}: {choice.error}")
        return _BAD
    if choice.warning:
        field_name = "repeat" if isinstance(choice.finding, TileFinding) else "design"
        where.warning(field_name, f"crop_to_repeat = {_shown(settings.crop_to_repeat)}: {design.name}: {choice.warning}")
    return settings, choice.repeat, choice.finding


def _shown(mode: bool | str) -> str:
    """The setting as a manifest writes it."""
    return f'"{mode}"' if isinstance(mode, str) else str(mode).lower()

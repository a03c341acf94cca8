"""A job's ``mask`` and ``regions``: which style goes where on the design (or ``keep``).

``mask`` is a label image with the design's size (one exact colour or grey level per region) or
``"auto"`` (the design split into ``ground`` and ``motif``: :mod:`pipeline.repeat.automask`).
``regions`` maps each label to a style id, a blend, or ``"keep"``. Labels of a mask file are
written ``"#rrggbb"`` or, for grey levels, ``"0"`` .. ``"255"``. Every label in the mask needs a
region and every region a label, so a typo cannot leave part of the cloth unstyled.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ImageError
from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _file_problem, _suggest, _Where
from pipeline.manifest.specs import KEEP, MAX_MASK_LABELS, RegionSpec, StyleRef, StyleUse
from pipeline.manifest.styles import _style_uses
from pipeline.repeat.automask import AUTO_LABELS

_HEX = re.compile(r"#([0-9a-fA-F]{6})")
AUTO = "auto"


def _colour_name(colour: tuple[int, int, int]) -> str:
    """How a label colour is written: its grey level when r = g = b, else #rrggbb."""
    r, g, b = colour
    return str(r) if r == g == b else f"#{r:02x}{g:02x}{b:02x}"


def _parse_label(key: str) -> tuple[int, int, int] | None:
    """The colour a region key names ("#rrggbb" or a grey level "0".."255"), or None."""
    key = key.strip()
    if match := _HEX.fullmatch(key):
        value = int(match.group(1), 16)
        return value >> 16, (value >> 8) & 255, value & 255
    if key.isdigit() and int(key) <= 255:
        return int(key), int(key), int(key)
    return None


def mask_colours(rgb: np.ndarray) -> list[tuple[int, int, int]]:
    """The distinct colours of a label image, sorted (a region's index is its colour's place here)."""
    flat = np.unique(rgb.reshape(-1, 3), axis=0)
    return [tuple(int(v) for v in row) for row in flat]  # type: ignore[misc]


def _file_labels(ctx: _Context, where: _Where, value: Any, base: Path, design: tuple[Path, Any], cut: bool) -> Any:
    """{label name: colour} of a mask file, or :data:`_BAD` after reporting."""
    from pipeline.manifest.images import load_rgb

    image = ctx.image(where, "mask", value, base, need_size=True)
    if image is _BAD:
        return _BAD
    path, size = image
    design_size = design[1] or ctx.headers.size(design[0])
    if size != design_size:
        where.error("mask", _file_problem(value, f"is {size[0]}x{size[1]} px but the design is "
                                                 f"{design_size[0]}x{design_size[1]}: a mask has the design's size"))  # fmt: skip
        return _BAD
    if cut:
        where.error("mask", "a mask file labels the design as it is, but crop_to_repeat cuts a tile from this "
                            "design: use mask = \"auto\", or crop_to_repeat = false")  # fmt: skip
        return _BAD
    try:
        colours = mask_colours(load_rgb(path, max_pixels=ctx.limits.max_input_pixels))
    except ImageError as error:
        where.error("mask", _file_problem(value, error.reason))
        return _BAD
    if len(colours) > MAX_MASK_LABELS:
        where.error("mask", _file_problem(value, f"has {len(colours)} distinct colours (at most {MAX_MASK_LABELS}): "
                                                 "a label mask has one exact colour per region (save it as PNG, "
                                                 "not JPEG)"))  # fmt: skip
        return _BAD
    return {_colour_name(c): c for c in colours}


def _region_key(where: _Where, key: Any, labels: Mapping[str, Any], auto: bool) -> str | None:
    """The label a ``regions`` key names (as the mask's own spelling), or None after reporting."""
    text = str(key).strip()
    name = text if auto else (_colour_name(colour) if (colour := _parse_label(text)) else None)
    if name is None:
        where.error(f"regions.{text}", "a label of a mask file is written \"#rrggbb\" or a grey level \"0\"..\"255\"")
        return None
    if name not in labels:
        found = ", ".join(labels) or "none"
        where.error(f"regions.{text}", f"no region '{text}' in the mask{_suggest(text, labels)} (its labels: {found})")
        return None
    return name


def _job_regions(
    ctx: _Context,
    where: _Where,
    entry: Mapping[str, Any],
    styles: Mapping[str, StyleRef | None],
    styles_known: bool,
    used: set[str],
    base: Path,
    design: tuple[Path, Any],
    cut: bool,
) -> Any:
    """(mask, regions, the styles they use) of a job, None without a mask, or :data:`_BAD` after reporting."""
    mask, regions = entry.get("mask"), entry.get("regions")
    if mask is None and regions is None:
        return None
    if mask is None or regions is None:
        missing, given = ("mask", "regions") if mask is None else ("regions", "mask")
        where.error(missing, f"missing: {given} needs {missing} (a label image or \"auto\", and what goes where)")
        return _BAD
    if "style" in entry:
        where.error("style", "give style or regions, not both: regions names the style of every region")
    if not isinstance(regions, dict) or not regions:
        where.error("regions", "must be a table: label = style id, blend or \"keep\", e.g. "
                               "regions = { ground = \"keep\", motif = \"wave\" }")  # fmt: skip
        return _BAD
    auto = mask == AUTO
    labels: Any = {name: None for name in AUTO_LABELS} if auto else _file_labels(ctx, where, mask, base, design, cut)
    if labels is _BAD:
        return _BAD
    chosen: dict[str, tuple[StyleUse, ...]] = {}
    bad = "style" in entry
    for key, value in regions.items():
        name = _region_key(where, key, labels, auto)
        uses = () if value == KEEP else _style_uses(where, value, styles, styles_known, used, f"regions.{key}")
        if name is None or uses is _BAD:
            bad = True
            continue
        chosen[name] = uses
    missing = [name for name in labels if name not in chosen]
    if missing and not bad:
        where.error("regions", f"the mask's region(s) {', '.join(missing)} have no style: give each a style, "
                               "a blend or \"keep\"")  # fmt: skip
    if bad or missing:
        return _BAD
    specs = tuple(RegionSpec(name, labels[name], chosen[name]) for name in labels)
    union = list(dict.fromkeys(use.style.id for spec in specs for use in spec.uses))
    if not union:
        where.error("regions", "every region is \"keep\": nothing would be stylized")
        return _BAD
    ref = {use.style.id: use.style for spec in specs for use in spec.uses}
    path = AUTO if auto else ctx.path(mask, base)
    return path, specs, tuple(StyleUse(ref[style_id], 1.0 / len(union)) for style_id in union)

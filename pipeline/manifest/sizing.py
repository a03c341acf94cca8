"""A job's output size in pixels: from ``size`` or ``size_cm`` and ``dpi``, or the design's own size.

Sides given in pixels are kept exactly (or refused when the repeat cannot carry them); sides
that are derived (from centimetres, from a long side and the design's aspect, or from the
design) are rounded to whole pixels, to multiples of the drop's denominator where the repeat
needs it (:func:`pipeline.repeat.lattice.side_divisors`). The result is then held against the manifest's
``[limits]``, since an absurd size is usually a typo.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipeline.conventions import DEFAULT_DPI
from pipeline.errors import GeometryError
from pipeline.manifest.problems import _BAD, _Where
from pipeline.manifest.specs import DEFAULT_REPEAT, Limits
from pipeline.manifest.screens import fit_size, rule_problems
from pipeline.manifest.values import _Size
from pipeline.repeat.lattice import Repeat, check_size, side_divisors


def _fit(value: float, divisor: int) -> int:
    """Round a derived side to the nearest multiple of ``divisor`` pixels (halves go up), at least one."""
    return max(divisor, divisor * math.floor(value / divisor + 0.5))


def _fit_sides(
    repeat: Repeat, width: float, height: float, explicit: tuple[bool, bool] = (False, False)
) -> tuple[int, int]:
    """W x H in whole pixels: ``explicit`` sides (given in pixels) rounded as they are, the others fitted."""
    div_w, div_h = side_divisors(repeat)
    final_w = round(width) if explicit[0] else _fit(width, div_w)
    final_h = round(height) if explicit[1] else _fit(height, div_h)
    return final_w, final_h


def _output_size(
    size: _Size | None, repeat: Repeat, dpi: int, design_size: tuple[int, int] | None
) -> tuple[int, int]:
    """Output W x H: sides given in pixels are kept (or refused); derived sides are rounded to fit.

    Raises :class:`GeometryError` when a given pixel size cannot carry the repeat.
    """
    scale = 1.0 if size is None or size.in_pixels else dpi / 2.54
    if size is not None and size.exact is not None:
        width, height = (v * scale for v in size.exact)
        explicit = (size.in_pixels, size.in_pixels)
    else:
        assert design_size is not None
        width, height = map(float, design_size)
        explicit = (False, False)
        if size is not None and size.long is not None:
            factor = size.long * scale / max(width, height)
            width, height = width * factor, height * factor
            explicit = (width >= height and size.in_pixels, height > width and size.in_pixels)
    final_w, final_h = _fit_sides(repeat, width, height, explicit)
    check_size(repeat, final_w, final_h)
    return final_w, final_h


def _limit_problems(width: int, height: int, limits: Limits) -> list[str]:
    """What is wrong with a W x H output under ``limits``: too many pixels, too small, too narrow."""
    problems = []
    if width * height > limits.max_output_pixels:
        problems.append(
            f"output {width}x{height} is {width * height / 1e6:.0f} MP, above the limit of "
            f"{limits.max_output_pixels / 1e6:.0f} MP (raise max_output_pixels in [limits] if this is intended)"
        )
    if min(width, height) < limits.min_output_side:
        problems.append(
            f"output {width}x{height} is too small: each side needs at least {limits.min_output_side} px "
            "(min_output_side in [limits])"
        )
    if max(width, height) / min(width, height) > limits.max_aspect_ratio:
        problems.append(
            f"output {width}x{height} has an aspect ratio of {max(width, height) / min(width, height):.1f}:1, "
            f"above max_aspect_ratio = {limits.max_aspect_ratio:g} in [limits]"
        )
    return problems


def _job_size(where: _Where, fields: Mapping[str, Any], design_size: Any, limits: Limits) -> Any:
    """(width, height) of a job, or :data:`_BAD` after reporting."""
    size: _Size | None = fields.get("size") or fields.get("size_cm")
    field_name = size.field if size else "size"
    prefix = "" if size else f"no size given, so the design's own {design_size[0]}x{design_size[1]} is used: "
    repeat, dpi = fields.get("repeat", DEFAULT_REPEAT), fields.get("dpi", DEFAULT_DPI)
    screen, fabric = fields.get("screen_circumference_cm"), fields.get("fabric_width_cm")
    if size is not None and size.fit:
        if screen is None and fabric is None:
            where.error(field_name, 'size_cm = "fit" needs screen_circumference_cm or fabric_width_cm to fit to')
            return _BAD
        width, height = fit_size(repeat, *design_size, dpi, screen, fabric)
    else:
        try:
            width, height = _output_size(size, repeat, dpi, design_size)
        except GeometryError as error:
            where.error(field_name, f"{prefix}{error}")
            return _BAD
    problems = _limit_problems(width, height, limits)
    for message in problems:
        where.error(field_name, f"{prefix}{message}")
    rules = rule_problems(repeat, width, height, dpi, screen, fabric)
    for rule_field, message in rules:
        where.error(rule_field, f"{prefix}{message}")
    return _BAD if problems or rules else (width, height)

"""Physical print rules: a rotary screen's circumference and a fabric's width must hold whole repeats.

A rotary screen prints its circumference (typically 64 cm) over and over, so the fabric's
vertical repeat must divide it exactly; an apparel repeat's width must divide the fabric
width. The vertical repeat is H for block, drops and bricks (a column repeats every H) and
2H for mirror (the printed unit is 2W x 2H); likewise across. Whole pixels rarely divide a
length in centimetres exactly, so a side divides when n copies of it land within the rounding
of n whole pixels (half a pixel each, times the side's divisor). ``size_cm = "fit"`` moves
the design's own size to the nearest sizes that divide.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.repeat.lattice import Repeat, side_divisors, translation_periods

CM_PER_INCH = 2.54


@dataclass(frozen=True)
class _Rule:
    """One physical length a side must divide: which side, how long, and what it is called."""

    field: str  # "screen_circumference_cm" or "fabric_width_cm"
    axis: str  # "height" or "width"
    length_cm: float
    what: str  # "screen" or "fabric width"


def _rules(screen_cm: float | None, fabric_cm: float | None) -> list[_Rule]:
    rules = []
    if screen_cm is not None:
        rules.append(_Rule("screen_circumference_cm", "height", screen_cm, "screen"))
    if fabric_cm is not None:
        rules.append(_Rule("fabric_width_cm", "width", fabric_cm, "fabric width"))
    return rules


def _cm(value: float) -> str:
    """32, 21.33, 16: centimetres as a printer writes them."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _unit_px(repeat: Repeat, axis: str, side_px: int) -> int:
    """The printed repeat along an axis: the side itself, or twice it for mirror."""
    width, height = translation_periods(repeat, side_px, side_px)
    return height if axis == "height" else width


def _divides(unit_px: int, length_px: float, divisor: int) -> bool:
    """Whether n copies of the unit fill the length within the rounding of whole pixels."""
    count = max(1, round(length_px / unit_px))
    return abs(count * unit_px - length_px) <= count * divisor / 2 + 0.5


def dividing_sizes_cm(length_cm: float, side_cm: float) -> list[float]:
    """The three sizes that divide ``length_cm`` nearest to ``side_cm``, largest first (64, 30 -> 32, 21.33, 16)."""
    first = max(1, math.floor(length_cm / side_cm))
    return [length_cm / n for n in (first, first + 1, first + 2)]


def rule_problems(
    repeat: Repeat, width: int, height: int, dpi: int, screen_cm: float | None, fabric_cm: float | None
) -> list[tuple[str, str]]:
    """(field, message) for each rule the W x H px repeat at ``dpi`` breaks, naming the sizes that would not."""
    problems = []
    divisors = dict(zip(("width", "height"), side_divisors(repeat), strict=True))
    for rule in _rules(screen_cm, fabric_cm):
        side_px = height if rule.axis == "height" else width
        unit_px = _unit_px(repeat, rule.axis, side_px)
        length_px = rule.length_cm * dpi / CM_PER_INCH
        if _divides(unit_px, length_px, divisors[rule.axis]):
            continue
        unit_cm = unit_px * CM_PER_INCH / dpi
        sizes = [_cm(v) for v in dividing_sizes_cm(rule.length_cm, unit_cm)]
        mirror = " (a mirror repeat's printed unit is twice the tile)" if repeat.kind == "mirror" else ""
        problems.append((
            rule.field,
            f"{rule.axis} {_cm(unit_cm)} cm does not divide the {_cm(rule.length_cm)} cm {rule.what}{mirror}: "
            f"{sizes[0]}, {sizes[1]} or {sizes[2]} cm would",
        ))  # fmt: skip
    return problems


def fit_size(
    repeat: Repeat, width: float, height: float, dpi: int, screen_cm: float | None, fabric_cm: float | None
) -> tuple[int, int]:
    """The W x H px nearest to ``width`` x ``height`` whose sides divide the screen and fabric (``size_cm = "fit"``).

    A side with a rule becomes the length divided by the nearest whole count, rounded to the
    repeat's divisor; a side without one keeps the aspect of the other.
    """
    divisors = dict(zip(("width", "height"), side_divisors(repeat), strict=True))
    sides = {"width": float(width), "height": float(height)}
    fitted: dict[str, int] = {}
    for rule in _rules(screen_cm, fabric_cm):
        factor = 2 if repeat.kind == "mirror" else 1
        length_px = rule.length_cm * dpi / CM_PER_INCH
        count = max(1, round(length_px / (factor * sides[rule.axis])))
        divisor = divisors[rule.axis]
        fitted[rule.axis] = max(divisor, divisor * round(length_px / (factor * count) / divisor))
    if len(fitted) == 1:
        (axis, value), = fitted.items()
        other = "width" if axis == "height" else "height"
        divisor = divisors[other]
        fitted[other] = max(divisor, divisor * round(sides[other] * value / sides[axis] / divisor))
    return fitted["width"], fitted["height"]

"""Repeat lattices: the one piece of geometry everything seamless in weft is built on.

A W x H repeat tile is a function on the plane, periodic under a lattice (d = the drop, a
fraction p/q of H or W; ``half-drop`` and ``brick`` are d = 1/2):

=============  ==================================================================
block          (x, y) ~ (x + W, y) ~ (x, y + H)
drop d         (x, y) ~ (x + W, y + d*H) ~ (x, y + H)   (``half-drop``, ``drop-1/3``)
brick d        (x, y) ~ (x + d*W, y + H) ~ (x + W, y)   (``brick``, ``brick-1/3``)
mirror         the tile reflected across both edges: the printed unit is 2W x 2H,
               (x, y) ~ (2W - 1 - x, y) ~ (x, 2H - 1 - y) (edge pixels repeat)
=============  ==================================================================

:func:`source_coords` maps any integer point of the plane to its pixel in the tile; the
size rules (which sides the drop's denominator must divide, which sizes stay periodic
through the network's poolings) live here too, each once.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, ClassVar, Iterator

from pipeline.errors import GeometryError

#: The four kinds of lattice; drops and bricks carry a fraction.
KINDS: tuple[str, ...] = ("block", "drop", "brick", "mirror")
_NAME = re.compile(r"^(drop|brick)[-\s:]?(\d+)\s*/\s*(\d+)$")


class _RepeatType(type):
    """Iterating :class:`Repeat` gives the named repeats (what `inspect`, tests and docs go through)."""

    def __iter__(cls) -> Iterator[Repeat]:
        return iter(cls.NAMED)  # type: ignore[attr-defined]


class Repeat(str, metaclass=_RepeatType):
    """How copies of a tile are laid out on the fabric: a kind and, for drops and bricks, a fraction.

    A string (``"block"``, ``"half-drop"``, ``"brick"``, ``"mirror"``, ``"drop-1/3"``,
    ``"brick-2/5"``) so it is hashed, stored and compared as its name; instances are interned,
    so ``repeat is Repeat.HALF_DROP`` works as it did when this was an Enum.
    """

    kind: str
    fraction: Fraction  # the drop (of H) or brick offset (of W); 0 for block and mirror
    BLOCK: ClassVar[Repeat]
    HALF_DROP: ClassVar[Repeat]
    BRICK: ClassVar[Repeat]
    MIRROR: ClassVar[Repeat]
    THIRD_DROP: ClassVar[Repeat]
    THIRD_BRICK: ClassVar[Repeat]
    NAMED: ClassVar[tuple[Repeat, ...]]
    _interned: ClassVar[dict[str, Repeat]] = {}

    def __new__(cls, value: Any) -> Repeat:
        if isinstance(value, Repeat):
            return value
        kind, fraction = _parse(value)
        name = _canonical(kind, fraction)
        if name not in cls._interned:
            made = super().__new__(cls, name)
            made.kind, made.fraction = kind, fraction
            cls._interned[name] = made
        return cls._interned[name]

    @property
    def value(self) -> str:
        """The canonical name (what manifests, the store and provenance hold)."""
        return str(self)

    @property
    def name(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Repeat({str(self)!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return Repeat, (str(self),)

    @classmethod
    def with_drop(cls, repeat: Repeat | str, drop: Fraction | str) -> Repeat:
        """``repeat`` with its drop (or brick offset) set to ``drop``; block and mirror have none."""
        repeat = as_repeat(repeat)
        if repeat.kind not in ("drop", "brick"):
            raise GeometryError(f"a {repeat} repeat has no drop; drop applies to half-drop and brick repeats")
        return as_repeat(f"{repeat.kind}-{as_drop(drop)}")


def as_drop(text: Fraction | str) -> Fraction:
    """A drop fraction strictly between 0 and 1 from "1/3", "0.25" or a Fraction."""
    try:
        value = Fraction(str(text).strip()) if not isinstance(text, Fraction) else text
    except (ValueError, ZeroDivisionError):
        raise GeometryError(f"drop {text!r} is not a fraction; write e.g. \"1/3\" or \"1/2\"") from None
    if not 0 < value < 1:
        raise GeometryError(f"drop {text!r} must lie strictly between 0 and 1 (e.g. \"1/3\")")
    return value


def _parse(value: Any) -> tuple[str, Fraction]:
    """(kind, fraction) of a repeat name; ValueError names the choices."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("block", "mirror"):
        return text, Fraction(0)
    if text in ("half-drop", "drop"):
        return "drop", Fraction(1, 2)
    if text in ("brick", "half-brick"):
        return "brick", Fraction(1, 2)
    match = _NAME.match(text or "")
    if match:
        try:
            return match.group(1), as_drop(f"{match.group(2)}/{match.group(3)}")
        except GeometryError as error:
            raise ValueError(str(error)) from None
    raise ValueError(
        f"unknown repeat {value!r}; choose one of block, half-drop, brick, mirror, or drop-P/Q / brick-P/Q "
        "(e.g. drop-1/3)"
    )


def _canonical(kind: str, fraction: Fraction) -> str:
    if kind in ("block", "mirror"):
        return kind
    if fraction == Fraction(1, 2):
        return "half-drop" if kind == "drop" else "brick"
    return f"{kind}-{fraction.numerator}/{fraction.denominator}"


Repeat.BLOCK = Repeat("block")
Repeat.HALF_DROP = Repeat("half-drop")
Repeat.BRICK = Repeat("brick")
Repeat.MIRROR = Repeat("mirror")
Repeat.THIRD_DROP = Repeat("drop-1/3")
Repeat.THIRD_BRICK = Repeat("brick-1/3")
Repeat.NAMED = (Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK, Repeat.MIRROR, Repeat.THIRD_DROP, Repeat.THIRD_BRICK)


def as_repeat(value: Repeat | str) -> Repeat:
    """Accept a :class:`Repeat` or its name."""
    try:
        return Repeat(value)
    except ValueError as error:
        raise GeometryError(str(error)) from None


def side_divisors(repeat: Repeat | str) -> tuple[int, int]:
    """(dw, dh): W must be a multiple of dw and H of dh, so the drop or offset is whole pixels.

    A drop p/q of H needs q | H (half-drop: even H); a brick p/q of W needs q | W. The one
    home of the divisible-side rule; sizes, fitting and validation all ask it.
    """
    repeat = as_repeat(repeat)
    q = repeat.fraction.denominator
    return (q if repeat.kind == "brick" else 1), (q if repeat.kind == "drop" else 1)


def shift(repeat: Repeat | str, width: int, height: int) -> int:
    """The drop (pixels down, per column) or brick offset (pixels across, per row); 0 otherwise."""
    repeat = as_repeat(repeat)
    side = height if repeat.kind == "drop" else width
    return int(repeat.fraction * side)


def _divisor_words(repeat: Repeat, q: int, axis: str) -> str:
    """Why a side must divide: "half-drop needs an even height (the drop is H/2)"."""
    side, what, letter = ("height", "drop", "H") if axis == "y" else ("width", "offset", "W")
    amount = f"{letter}/{q}" if repeat.fraction.numerator == 1 else f"{repeat.fraction.numerator}{letter}/{q}"
    need = f"an even {side}" if q == 2 else f"a {side} divisible by {q}"
    return f"{repeat} needs {need} (the {what} is {amount})"


def check_size(repeat: Repeat | str, width: int, height: int) -> None:
    """Raise :class:`GeometryError` when a W x H tile cannot carry this repeat; say what would work."""
    repeat = as_repeat(repeat)
    if width < 1 or height < 1:
        raise GeometryError(f"size {width}x{height} is empty")
    dw, dh = side_divisors(repeat)
    if height % dh:
        lower, upper = height - height % dh, height - height % dh + dh
        near = f"{width}x{lower} or {width}x{upper}" if lower else f"{width}x{upper}"
        raise GeometryError(f"{_divisor_words(repeat, dh, 'y')}; {width}x{height} does not work, {near} would")
    if width % dw:
        lower, upper = width - width % dw, width - width % dw + dw
        near = f"{lower}x{height} or {upper}x{height}" if lower else f"{upper}x{height}"
        raise GeometryError(f"{_divisor_words(repeat, dw, 'x')}; {width}x{height} does not work, {near} would")


def honoured_size(repeat: Repeat | str, width: int, height: int) -> tuple[int, int]:
    """Round a *derived* size up so the repeat can honour it (a multiple of :func:`side_divisors`)."""
    dw, dh = side_divisors(repeat)
    return width + (-width) % dw, height + (-height) % dh


def fit_to_repeat(image: Any, repeat: Repeat | str) -> Any:
    """Drop the last rows (drops) or columns (bricks) so the image's sides divide as the repeat needs.

    A design is used as its own repeat tile (content, knitting, seam checks); a scan 443 px
    high cannot drop by half its height. A pixel or two is invisible; refusing the design is not.
    """
    height, width, channels_first = spatial_shape(image)
    dw, dh = side_divisors(repeat)
    new_h, new_w = max(dh, height - height % dh), max(dw, width - width % dw)
    if (new_h, new_w) == (height, width):
        return image
    return image[..., :new_h, :new_w] if channels_first else image[:new_h, :new_w]


def size_quantum(repeat: Repeat | str, depth: int) -> tuple[int, int]:
    """(qx, qy): a whole-image size divisible by these stays exactly periodic through ``depth`` 2x poolings.

    Each pooling halves the lattice; a drop of H/q must stay whole pixels at every level, so H
    needs q more (half-drop: one more factor of two; brick likewise for W). A mirror stays a
    mirror under 2x pooling of an even side, like block.
    """
    dw, dh = side_divisors(repeat)
    base = 2**depth
    return base * dw, base * dh


def source_coords(repeat: Repeat | str, x: Any, y: Any, width: int, height: int) -> tuple[Any, Any]:
    """Map plane coordinates to tile pixel coordinates, elementwise (ints, numpy or torch arrays)."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    if repeat.kind == "drop":
        column = x // width
        return x - column * width, (y - column * shift(repeat, width, height)) % height
    if repeat.kind == "brick":
        row = y // height
        return (x - row * shift(repeat, width, height)) % width, y - row * height
    if repeat.kind == "mirror":
        return reflect_index(x, width), reflect_index(y, height)
    return x % width, y % height


def reflect_index(v: Any, n: int) -> Any:
    """Index into a side of n pixels reflected at both ends with the edge pixel repeated (period 2n).

    The mirror lattice along one axis; resampling folds destination pixels with it too, so a
    pixel across a mirror edge is the same bits as the pixel it reflects.
    """
    folded = v % (2 * n)
    return folded + (folded >= n) * (2 * n - 1 - 2 * folded)


def lattice_form(repeat: Repeat, width: int, height: int) -> tuple[bool, int]:
    """(outer_is_x, shear): every translation lattice is {k * outer step + m * inner step} with a sheared inner axis.

    block, drops and mirror: columns; moving one column right shifts y by 0 or the drop.
    bricks: rows; moving one row down shifts x by the offset. (Mirror's steps are 2W and 2H:
    :func:`translation_periods`.)
    """
    if repeat.kind == "brick":
        return False, shift(repeat, width, height)
    return True, shift(repeat, width, height) if repeat.kind == "drop" else 0


def translation_periods(repeat: Repeat, width: int, height: int) -> tuple[int, int]:
    """(x step, y step) of the translations that map the plane onto itself: (2W, 2H) for mirror."""
    factor = 2 if repeat.kind == "mirror" else 1
    return factor * width, factor * height


def lattice_points_in_box(
    repeat: Repeat | str, width: int, height: int, dy_range: tuple[int, int], dx_range: tuple[int, int]
) -> list[tuple[int, int]]:
    """Lattice vectors (dy, dx) with dy_range[0] <= dy <= dy_range[1] and likewise dx, sorted."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    outer_is_x, shear = lattice_form(repeat, width, height)
    step_x, step_y = translation_periods(repeat, width, height)
    # name the axes (outer, inner) so one loop serves every lattice
    (o_lo, o_hi), (i_lo, i_hi) = (dx_range, dy_range) if outer_is_x else (dy_range, dx_range)
    o_step, i_step = (step_x, step_y) if outer_is_x else (step_y, step_x)
    points = []
    for k in range(-(-o_lo // o_step), o_hi // o_step + 1):
        base = k * shear
        for m in range(-(-(i_lo - base) // i_step), (i_hi - base) // i_step + 1):
            outer, inner = k * o_step, base + m * i_step
            points.append((inner, outer) if outer_is_x else (outer, inner))
    return sorted(points)


def lattice_translations(repeat: Repeat | str, width: int, height: int, reach: int = 1) -> list[tuple[int, int]]:
    """Lattice vectors (dy, dx) with |dx| <= reach*W and |dy| <= reach*H, (0, 0) included; sorted."""
    box_y, box_x = (-reach * height, reach * height), (-reach * width, reach * width)
    return lattice_points_in_box(repeat, width, height, box_y, box_x)


def spatial_shape(image: Any) -> tuple[int, int, bool]:
    """(height, width, channels_first) of a torch tensor (..., H, W) or an array (H, W, ...)."""
    if is_torch(image):
        return int(image.shape[-2]), int(image.shape[-1]), True
    return int(image.shape[0]), int(image.shape[1]), False


def is_torch(image: Any) -> bool:
    """Whether ``image`` is a torch tensor (checked without importing torch)."""
    return type(image).__module__.startswith("torch")

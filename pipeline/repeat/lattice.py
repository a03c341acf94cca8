"""Repeat lattices: the one piece of geometry everything seamless in weft is built on.

A W x H repeat tile is a function on the plane, periodic under a lattice:

=========  ==========================================
block      (x, y) ~ (x + W, y) ~ (x, y + H)
half-drop  (x, y) ~ (x + W, y + H/2) ~ (x, y + H)
brick      (x, y) ~ (x + W/2, y + H) ~ (x + W, y)
=========  ==========================================

:func:`source_coords` maps any integer point of the plane to its pixel in the tile; the
size rules (which sides must be even, which sizes stay periodic through the network's
poolings) live here too, each once.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pipeline.errors import GeometryError


class Repeat(str, Enum):
    """How copies of a tile are laid out on the fabric."""

    BLOCK = "block"
    HALF_DROP = "half-drop"
    BRICK = "brick"


def as_repeat(value: Repeat | str) -> Repeat:
    """Accept a :class:`Repeat` or its name."""
    try:
        return Repeat(value)
    except ValueError:
        names = ", ".join(r.value for r in Repeat)
        raise GeometryError(f"unknown repeat {value!r}; choose one of {names}") from None


def even_sides(repeat: Repeat | str) -> tuple[bool, bool]:
    """(width, height) must be even: brick shifts rows by W/2, half-drop columns by H/2.

    The one home of the even-side rule; sizes, fitting and validation all ask it.
    """
    repeat = as_repeat(repeat)
    return repeat is Repeat.BRICK, repeat is Repeat.HALF_DROP


def check_size(repeat: Repeat | str, width: int, height: int) -> None:
    """Raise :class:`GeometryError` when a W x H tile cannot carry this repeat; say what would work."""
    repeat = as_repeat(repeat)
    if width < 1 or height < 1:
        raise GeometryError(f"size {width}x{height} is empty")
    even_w, even_h = even_sides(repeat)
    if even_h and height % 2:
        raise GeometryError(
            f"half-drop needs an even height (the drop is H/2); {width}x{height} does not work, "
            f"{width}x{height - 1} or {width}x{height + 1} would"
        )
    if even_w and width % 2:
        raise GeometryError(
            f"brick needs an even width (the offset is W/2); {width}x{height} does not work, "
            f"{width - 1}x{height} or {width + 1}x{height} would"
        )


def even_size(repeat: Repeat | str, width: int, height: int) -> tuple[int, int]:
    """Round a *derived* size up so the repeat can honour it (half-drop: even H, brick: even W)."""
    even_w, even_h = even_sides(repeat)
    return width + (even_w and width % 2), height + (even_h and height % 2)


def fit_to_repeat(image: Any, repeat: Repeat | str) -> Any:
    """Drop the last row (half-drop, odd H) or column (brick, odd W) so the image can carry the repeat.

    A design is used as its own repeat tile (content, knitting, seam checks); a scan 443 px
    high cannot drop by half its height. One pixel is invisible; refusing the design is not.
    """
    height, width, channels_first = spatial_shape(image)
    even_w, even_h = even_sides(repeat)
    if even_h and height % 2:
        return image[..., : height - 1, :] if channels_first else image[: height - 1]
    if even_w and width % 2:
        return image[..., : width - 1] if channels_first else image[:, : width - 1]
    return image


def size_quantum(repeat: Repeat | str, depth: int) -> tuple[int, int]:
    """(qx, qy): a whole-image size divisible by these stays exactly periodic through ``depth`` 2x poolings.

    Each pooling halves the lattice; half-drop also halves the H/2 drop, so H needs one more
    factor of two (brick likewise for W).
    """
    even_w, even_h = even_sides(repeat)
    base = 2**depth
    return base * (1 + even_w), base * (1 + even_h)


def source_coords(repeat: Repeat | str, x: Any, y: Any, width: int, height: int) -> tuple[Any, Any]:
    """Map plane coordinates to tile pixel coordinates, elementwise (ints, numpy or torch arrays)."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    if repeat is Repeat.HALF_DROP:
        column = x // width
        return x - column * width, (y - column * (height // 2)) % height
    if repeat is Repeat.BRICK:
        row = y // height
        return (x - row * (width // 2)) % width, y - row * height
    return x % width, y % height


def lattice_form(repeat: Repeat, width: int, height: int) -> tuple[bool, int]:
    """(outer_is_x, shear): every lattice is {k * outer step + m * inner step} with a sheared inner axis.

    block and half-drop: columns of width W; moving one column right shifts y by 0 or H/2.
    brick: rows of height H; moving one row down shifts x by W/2.
    """
    if repeat is Repeat.BRICK:
        return False, width // 2
    return True, height // 2 if repeat is Repeat.HALF_DROP else 0


def lattice_points_in_box(
    repeat: Repeat | str, width: int, height: int, dy_range: tuple[int, int], dx_range: tuple[int, int]
) -> list[tuple[int, int]]:
    """Lattice vectors (dy, dx) with dy_range[0] <= dy <= dy_range[1] and likewise dx, sorted."""
    repeat = as_repeat(repeat)
    check_size(repeat, width, height)
    outer_is_x, shear = lattice_form(repeat, width, height)
    # name the axes (outer, inner) so one loop serves all three lattices
    (o_lo, o_hi), (i_lo, i_hi) = (dx_range, dy_range) if outer_is_x else (dy_range, dx_range)
    o_step, i_step = (width, height) if outer_is_x else (height, width)
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

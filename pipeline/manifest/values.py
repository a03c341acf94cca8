"""Parsing and checking one value at a time: ids, numbers, repeats, sizes, blends, limits, CSV cells.

Each parser takes a value as written and returns it typed, or raises :class:`_Invalid` with a
message that says what would be right; :meth:`_Where.read` turns that into a problem. Keeping
them free of any knowledge of files or entries makes each rule (what a dpi, a seed or a job id
may be) one function, the same for TOML values, ``[defaults]`` and CSV cells.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.conventions import is_valid_job_id
from pipeline.manifest.problems import _BAD, _check_keys, _Invalid, _suggest, _Where
from pipeline.colour import ColourError, parse_hex, to_hex
from pipeline.manifest.specs import BLEND_FIELDS, COLOURWAY_FIELDS, MAX_DPI, MAX_SEED, Colourway, Limits
from pipeline.errors import GeometryError
from pipeline.repeat.lattice import Repeat, as_drop, as_repeat
from pipeline.settings import SETTING_NAMES, Settings, available_profiles

# --- plain values ----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """An int or float, but not a bool (TOML ``true`` is no number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_text(value: Any) -> str:
    """A required, non-blank string, stripped."""
    if value is None:
        raise _Invalid("missing (required)")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _as_optional_text(value: Any) -> str:
    """An optional string (may be blank), stripped."""
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {value!r}")
    return value.strip()


def _as_note(why: str) -> Callable[[Any], str]:
    """Parser of a required free-text field (licence, attribution): blank counts as missing."""

    def parse(value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _Invalid(f"missing: {why}")
        return _as_text(value)

    return parse


def _as_int(value: Any, low: int, high: int, what: str) -> int:
    """A whole number from ``low`` to ``high``; ``what`` names it in the message."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise _Invalid(f"{what} must be between {low} and {high}, got {value}")
    return value


def _as_positive(value: Any, what: str) -> float:
    """A finite number above 0, as a float; ``what`` names it in the message."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise _Invalid(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _as_dpi(value: Any) -> int:
    """A print resolution, 1 to :data:`MAX_DPI`."""
    return _as_int(value, 1, MAX_DPI, "dpi")


def _as_seed(value: Any) -> int:
    """A random seed, 0 to :data:`MAX_SEED`."""
    return _as_int(value, 0, MAX_SEED, "seed")


def _as_job_id(value: Any) -> str:
    """A job id that can name a store folder and an export file (:func:`is_valid_job_id`)."""
    text = _as_text(value)
    if not is_valid_job_id(text):
        raise _Invalid(
            f"job id {text!r} cannot be used as a folder name: use letters, digits, '-', '_' and '.' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return text


def _as_repeat(value: Any) -> Repeat:
    """A repeat type by name, in any case: block, half-drop, brick, mirror, drop-1/3, brick-2/5 ..."""
    names = [r.value for r in Repeat]
    if isinstance(value, str):
        try:
            return as_repeat(value)
        except GeometryError:
            pass
    hint = _suggest(value, names) if isinstance(value, str) else ""
    raise _Invalid(
        f"unknown repeat {value!r}{hint}; choose one of {', '.join(names[:4])}, or drop-P/Q or brick-P/Q "
        "(e.g. drop-1/3; or give drop = \"1/3\" beside repeat = \"half-drop\")"
    )


def _as_drop(value: Any) -> Any:
    """A drop fraction, ``"1/3"`` or a number between 0 and 1 (the drop of a drop, the offset of a brick)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(f"must be a fraction such as \"1/3\", got {value!r}")
    try:
        return as_drop(str(value))
    except GeometryError as error:
        raise _Invalid(str(error)) from None


def _with_drop(where: _Where, fields: dict[str, Any], default: Repeat) -> None:
    """Fold a ``drop`` field into ``repeat`` (``half-drop`` + ``drop = "1/3"`` is ``drop-1/3``), in place."""
    drop = fields.pop("drop", None)
    repeat = fields.get("repeat", default)
    if drop is None or drop is _BAD or repeat is _BAD:
        return
    try:
        fields["repeat"] = Repeat.with_drop(repeat, drop)
    except GeometryError as error:
        where.error("drop", str(error))
        fields["repeat"] = _BAD


def _as_profile(value: Any) -> str:
    """A settings profile by name (``configs/NAME.toml``), as a manifest names it."""
    known = available_profiles()
    if isinstance(value, str) and value.strip() in known:
        return value.strip()
    hint = _suggest(value, known) if isinstance(value, str) else ""
    raise _Invalid(f"unknown profile {value!r}{hint}; known profiles: {', '.join(known) or 'none'}")


# --- sizes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Size:
    """A requested output size: a long side or exact W x H, in pixels or centimetres."""

    field: str  # "size" or "size_cm"
    long: float | None = None
    exact: tuple[float, float] | None = None
    fit: bool = False  # size_cm = "fit": the design's size moved to the nearest one the physical rules allow

    @property
    def in_pixels(self) -> bool:
        """Whether the sides are pixels (``size``) rather than centimetres (``size_cm``)."""
        return self.field == "size"


def _as_size(field_name: str, unit: str, parse_side: Callable[[Any, str], float]) -> Callable[[Any], _Size]:
    """Parser of a size field: N (the long side) or [W, H], each side read by ``parse_side(value, what)``."""

    def parse(value: Any) -> _Size:
        if isinstance(value, list) and len(value) == 2:
            width, height = (parse_side(v, "each side") for v in value)
            return _Size(field_name, exact=(width, height))
        if isinstance(value, list):
            raise _Invalid(f"must be N (long side) or [W, H] in {unit}, got a list of {len(value)}")
        return _Size(field_name, long=parse_side(value, field_name))

    return parse


#: ``size``: pixels, whole numbers up to a million a side.
_as_size_px = _as_size("size", "pixels", lambda value, what: _as_int(value, 1, 10**6, what))
_as_size_cm_sides = _as_size("size_cm", "centimetres", _as_positive)


def _as_size_cm(value: Any) -> _Size:
    """``size_cm``: centimetres, any positive number; or ``"fit"``: the nearest size the screen and fabric rules allow."""
    if isinstance(value, str) and value.strip().lower() == "fit":
        return _Size("size_cm", fit=True)
    return _as_size_cm_sides(value)


def _as_length_cm(what: str) -> Callable[[Any], float]:
    """Parser of a physical length in centimetres (a screen's circumference, a fabric's width)."""
    return lambda value: _as_positive(value, what)


# --- blends ----------------------------------------------------------------------------------


def _blend_part(index: int, part: Any) -> tuple[tuple[str, float] | None, list[str]]:
    """One ``{style, weight}`` table of a blend: the (id, weight) pair and what is wrong with it."""
    if not isinstance(part, dict):
        return None, [f"entry {index} must be a {{style = ..., weight = ...}} table, got {part!r}"]
    issues = [f"entry {index}: unknown key '{k}'{_suggest(k, BLEND_FIELDS)}" for k in part if k not in BLEND_FIELDS]
    style_id, weight = part.get("style"), part.get("weight", 1.0)
    if not isinstance(style_id, str) or not style_id.strip():
        return None, [*issues, f"entry {index} needs style = \"<style id>\""]
    style_id = style_id.strip()
    if not _is_number(weight):
        issues.append(f"weight of '{style_id}' must be a number, got {weight!r}")
    elif math.isnan(weight) or math.isinf(weight):
        issues.append(f"weight of '{style_id}' is {weight} (must be a finite number)")
    elif weight < 0:
        issues.append(f"weight of '{style_id}' is negative ({weight})")
    return (style_id, float(weight) if _is_number(weight) else math.nan), issues


def _as_blend(value: Any) -> tuple[list[tuple[str, float]], list[str]]:
    """A style id, or a list of ``{style, weight}`` tables (weight defaults to 1): (id, weight) pairs,
    and what is wrong with the weights (kept apart so undeclared styles are still checked)."""
    if value is None:
        raise _Invalid("missing (required): a style id, or a list of {style, weight} tables for a blend")
    if isinstance(value, str):
        return [(_as_text(value), 1.0)], []
    if not isinstance(value, list) or not value:
        raise _Invalid(f"must be a style id or a non-empty list of {{style, weight}} tables, got {value!r}")
    pairs: list[tuple[str, float]] = []
    issues: list[str] = []
    for index, part in enumerate(value, 1):
        pair, part_issues = _blend_part(index, part)
        issues += part_issues
        if pair and any(pair[0] == seen for seen, _ in pairs):
            issues.append(f"style '{pair[0]}' is listed twice")
        elif pair:
            pairs.append(pair)
    if not issues and sum(weight for _, weight in pairs) <= 0:
        issues.append("the blend weights sum to 0")
    return pairs, issues


# --- colourways ------------------------------------------------------------------------------


def _as_colourway(index: int, entry: Any) -> Colourway:
    """One ``{name = "indigo", colors = ["#1b2a49", ...]}`` table."""
    if not isinstance(entry, dict):
        raise _Invalid(f"entry {index} must be a {{name = ..., colors = [...]}} table, got {entry!r}")
    unknown = [k for k in entry if k not in COLOURWAY_FIELDS]
    if unknown:
        raise _Invalid(f"entry {index}: unknown key '{unknown[0]}'{_suggest(unknown[0], COLOURWAY_FIELDS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not is_valid_job_id(name.strip()):
        raise _Invalid(f"entry {index} needs name = \"...\" (letters, digits, '-', '_', '.'), got {name!r}")
    colors = entry.get("colors")
    if not isinstance(colors, list) or not colors:
        raise _Invalid(f"colourway '{name.strip()}' needs colors = [\"#rrggbb\", ...], one per separated colour")
    try:
        return Colourway(name.strip(), tuple(to_hex(parse_hex(c)) for c in colors))
    except ColourError as error:
        raise _Invalid(f"colourway '{name.strip()}': {error}") from None


def _as_colourways(value: Any) -> tuple[Colourway, ...]:
    """A list of named palettes that recolour the separation."""
    if not isinstance(value, list):
        raise _Invalid(f"must be a list of {{name, colors}} tables, got {value!r}")
    ways = tuple(_as_colourway(i, entry) for i, entry in enumerate(value, 1))
    names = [w.name for w in ways]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _Invalid(f"colourway '{twice[0]}' is named twice")
    return ways


def _check_colourways(where: _Where, ways: Any, colors: int) -> Any:
    """Colourways need a separation, and one colour per separated colour; :data:`_BAD` after reporting."""
    if ways is _BAD or not ways:
        return ways
    if not colors:
        where.error("colourways", "colourways recolour the separation: set colors = N (or a palette) first")
        return _BAD
    wrong = [w for w in ways if len(w.colors) != colors]
    for way in wrong:
        where.error("colourways", f"colourway '{way.name}' has {len(way.colors)} colours; the separation has {colors}")
    return _BAD if wrong else ways


# --- job fields and limits -------------------------------------------------------------------

_FIELD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "repeat": _as_repeat,
    "drop": _as_drop,
    "screen_circumference_cm": _as_length_cm("screen_circumference_cm"),
    "fabric_width_cm": _as_length_cm("fabric_width_cm"),
    "size": _as_size_px,
    "size_cm": _as_size_cm,
    "dpi": _as_dpi,
    "seed": _as_seed,
}


def _job_fields(where: _Where, table: Mapping[str, Any]) -> dict[str, Any]:
    """repeat / drop / size / size_cm / dpi / seed / screen rules present in one layer (defaults or a job), parsed."""
    parsed = {name: where.read(name, parse, table[name]) for name, parse in _FIELD_PARSERS.items() if name in table}
    if "size" in table and "size_cm" in table:
        where.error("size_cm", "give size (pixels) or size_cm (centimetres), not both")
        parsed["size"] = _BAD
    return parsed


def _as_limit(name: str) -> Callable[[Any], Any]:
    """Parser of one ``[limits]`` value: a ratio of at least 1, or a positive whole number."""
    if name == "max_aspect_ratio":
        return lambda value: max(1.0, _as_positive(value, name))
    return lambda value: _as_int(value, 1, 10**12, name)


def _read_limits(where: _Where, table: Any) -> Limits:
    """The ``[limits]`` table over the defaults; bad values are reported and keep their default."""
    if not isinstance(table, dict):
        return Limits()
    names = Limits.__dataclass_fields__
    _check_keys(where, table, names)
    values = {name: where.read(name, _as_limit(name), table[name]) for name in names if name in table}
    return Limits(**{k: v for k, v in values.items() if v is not _BAD})


# --- CSV cells -> values ---------------------------------------------------------------------


def _int_from_text(text: str) -> int:
    """Whole numbers as spreadsheets write them ("7", "7.0")."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise _Invalid(f"{text!r} is not a whole number") from None
    if not number.is_integer():
        raise _Invalid(f"{text!r} is not a whole number")
    return int(number)


def _float_from_text(text: str) -> float:
    """A number written in a cell."""
    try:
        return float(text)
    except ValueError:
        raise _Invalid(f"{text!r} is not a number") from None


def _size_from_text(parse_side: Callable[[str], Any]) -> Callable[[str], Any]:
    """"1024" -> 1024 and "1024x768" -> [1024, 768] (x, X or ×)."""

    def parse(text: str) -> Any:
        sides = re.split(r"\s*[xX×]\s*", text.strip())
        if len(sides) > 2:
            raise _Invalid(f"{text!r}: write N (long side) or WxH, e.g. 1024 or 1024x768")
        values = [parse_side(side) for side in sides]
        return values if len(values) == 2 else values[0]

    return parse


def _blend_from_text(text: str) -> Any:
    """"wave" -> "wave"; "wave:0.7;kiss:0.3" -> [{style, weight}, ...]; "wave;kiss" blends equally."""
    if ":" not in text and ";" not in text:
        return text
    parts = []
    for chunk in filter(None, (c.strip() for c in text.split(";"))):
        name, _, weight = (s.strip() for s in chunk.partition(":"))
        if not weight:
            parts.append({"style": name})
            continue
        try:
            parts.append({"style": name, "weight": float(weight)})
        except ValueError:
            raise _Invalid(f"weight {weight!r} of '{name}' is not a number (write e.g. wave:0.7;kiss:0.3)") from None
    return parts


def _list_from_text(text: str) -> list[str]:
    """List-valued settings in a cell: "relu1_1;relu2_1"."""
    return [part.strip() for part in text.split(";") if part.strip()]


def _tuple_setting(name: str) -> bool:
    """Whether a setting holds a list (written ``a;b`` in a cell)."""
    return typing.get_origin(Settings.model_fields[name].annotation) is tuple


#: Cell text -> the value a TOML manifest would hold; columns not listed stay text.
_CELL_PARSERS: dict[str, Callable[[str], Any]] = {
    "style": _blend_from_text,
    "size": _size_from_text(_int_from_text),
    "size_cm": _size_from_text(_float_from_text),
    "dpi": _int_from_text,
    "seed": _int_from_text,
    "screen_circumference_cm": _float_from_text,
    "fabric_width_cm": _float_from_text,
    **{name: _list_from_text for name in SETTING_NAMES if _tuple_setting(name)},
}

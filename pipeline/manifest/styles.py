"""Styles: the ``[[styles]]`` a manifest declares, and the blends its jobs make of them.

A style is declared once, with the licence and attribution a print house will ask for, and
used by id from any number of jobs, alone or blended with weights. Declarations are checked
here, and a job's ``style`` is turned into normalised :class:`StyleUse` s against them, so an
undeclared or broken style is reported where it is used without repeating the declaration's
own problems.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _check_keys, _item, _suggest, _Where
from pipeline.manifest.specs import STYLE_FIELDS, StyleRef, StyleUse
from pipeline.manifest.values import _as_blend, _as_note, _as_optional_text, _as_text

_REQUIRED_NOTE = {
    "license": "every style needs its licence (e.g. 'Public domain (CC0)') so prints can be cleared",
    "attribution": "every style needs an attribution (creator, title, year, source)",
}


def _read_style(ctx: _Context, file: str, index: int, entry: Any) -> tuple[str | None, StyleRef | None]:
    """One ``[[styles]]`` entry: its id (if readable) and the style (if entirely valid)."""
    if not isinstance(entry, dict):
        ctx.where(f"style #{index}", file).error(None, "each [[styles]] entry must be a table")
        return None, None
    where = ctx.where(_item(f"style #{index}", entry.get("id"), kind="style"), file)
    _check_keys(where, entry, STYLE_FIELDS)
    style_id = where.read("id", _as_text, entry.get("id"))
    image = ctx.image(where, "path", entry.get("path"), ctx.root, need_size=False)
    license_ = where.read("license", _as_note(_REQUIRED_NOTE["license"]), entry.get("license"))
    attribution = where.read("attribution", _as_note(_REQUIRED_NOTE["attribution"]), entry.get("attribution"))
    notes = where.read("notes", _as_optional_text, entry.get("notes", ""))
    if any(v is _BAD for v in (style_id, image, license_, attribution, notes)):
        return (None if style_id is _BAD else style_id), None
    return style_id, StyleRef(style_id, image[0], license_, attribution, notes)


def _read_styles(ctx: _Context, file: str, value: Any) -> dict[str, StyleRef | None]:
    """Declared styles by id; ``None`` for a declared style that is invalid (already reported)."""
    if not isinstance(value, list):
        ctx.where(None, file).error("styles", "must be an array of tables: write [[styles]]")
        return {}
    styles: dict[str, StyleRef | None] = {}
    for index, entry in enumerate(value, 1):
        style_id, style = _read_style(ctx, file, index, entry)
        if style_id is None:
            continue
        if style_id in styles:
            ctx.where(f"style '{style_id}'", file).error("id", f"duplicate style id '{style_id}' (style #{index})")
            continue
        styles[style_id] = style
    return styles


def _style_uses(
    where: _Where, value: Any, styles: Mapping[str, StyleRef | None], styles_known: bool, used: set[str],
    field_name: str = "style",
) -> Any:
    """The job's blend (or a region's, reported at ``field_name``) as normalised :class:`StyleUse` s,
    or :data:`_BAD` after reporting."""
    parsed = where.read(field_name, _as_blend, value)
    if parsed is _BAD:
        return _BAD
    blend, issues = parsed
    if issues:
        where.error(field_name, "; ".join(issues))
    used.update(style_id for style_id, _ in blend)
    undeclared = [style_id for style_id, _ in blend if style_id not in styles]
    for style_id in undeclared if styles_known else ():
        where.error(field_name, f"style '{style_id}' is not declared in [[styles]]{_suggest(style_id, styles)}")
    if issues or undeclared or any(styles[style_id] is None for style_id, _ in blend):
        return _BAD
    for style_id, weight in blend:
        if weight == 0:
            where.warning(field_name, f"style '{style_id}' has weight 0 and is left out of the blend")
    total = sum(weight for _, weight in blend)
    return tuple(StyleUse(styles[s], w / total) for s, w in blend if w > 0)  # type: ignore[arg-type]

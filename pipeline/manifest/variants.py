"""A job's ``variants``: one entry that becomes several jobs, one per value (strength sweeps, seeds).

``variants = { style_weight = [1, 3, 10] }`` gives three jobs with the same inputs, each with its
own key, named ``<id>.style_weight-1`` and so on; several keys give every combination. Each variant
is then an ordinary job: its values are checked where settings are checked, it shares style targets
and any trained model with the jobs that match, and the report shows the variants of a job side by side.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any

from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _item, _named, _suggest
from pipeline.manifest.sources import _Row
from pipeline.manifest.specs import MAX_VARIANTS
from pipeline.settings import SETTING_NAMES

#: What a variant may set besides settings.
VARIANT_FIELDS: frozenset[str] = frozenset({"seed"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def variant_suffix(variant: tuple[tuple[str, Any], ...]) -> str:
    """``style_weight-3.seed-2``: what a variant's id adds to its job's id (a valid job id part)."""
    return ".".join(f"{name}-{_UNSAFE.sub('_', str(value))}" for name, value in variant)


def _variant_values(ctx: _Context, row: _Row, value: Any) -> list[tuple[tuple[str, Any], ...]] | None:
    """Every combination a ``variants`` table asks for, or None after reporting."""
    where = ctx.where(_item(row.label, row.entry.get("id")), row.file)
    where = replace(where, job=_named(row.entry.get("id")))
    if not isinstance(value, dict) or not value:
        where.error("variants", "must be a table of lists, e.g. variants = { style_weight = [1, 3, 10] }")
        return None
    allowed = SETTING_NAMES | VARIANT_FIELDS
    axes = []
    for name, values in value.items():
        if name not in allowed:
            where.error(f"variants.{name}", f"not a setting or seed{_suggest(name, allowed)}")
            return None
        if not isinstance(values, list) or not values:
            where.error(f"variants.{name}", f"must be a non-empty list of values, got {values!r}")
            return None
        if len({repr(v) for v in values}) != len(values):
            where.error(f"variants.{name}", f"lists a value twice: {values!r}")
            return None
        axes.append([(name, v) for v in values])
    combinations = list(itertools.product(*axes))
    if len(combinations) > MAX_VARIANTS:
        where.error("variants", f"asks for {len(combinations)} jobs (at most {MAX_VARIANTS})")
        return None
    return [tuple(c) for c in combinations]


def _expand_variants(ctx: _Context, rows: list[_Row]) -> list[_Row]:
    """Each row with ``variants`` replaced by one row per combination (rows without stay as they are)."""
    out: list[_Row] = []
    for row in rows:
        if "variants" not in row.entry:
            out.append(row)
            continue
        combinations = _variant_values(ctx, row, row.entry["variants"])
        raw_id = row.entry.get("id")
        if combinations is None or _named(raw_id) is None:  # an entry without an id is reported as it is
            out.append(replace(row, entry={k: v for k, v in row.entry.items() if k != "variants"}))
            continue
        base = {k: v for k, v in row.entry.items() if k != "variants"}
        for variant in combinations:
            entry = {**base, **dict(variant), "id": f"{raw_id.strip()}.{variant_suffix(variant)}"}
            out.append(replace(row, entry=entry, variant_of=raw_id.strip(), variant=variant))
    return out

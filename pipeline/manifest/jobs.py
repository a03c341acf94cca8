"""One job entry (a ``[[jobs]]`` table or a CSV row) into a :class:`JobSpec`, with every problem it has.

Each field of a job is checked by its own module (values, layering, styles, sizing, the
files through the context); this module puts them together for one entry, checks what spans
entries (duplicate ids, which styles are used), and builds the spec only when all of it is
valid. Every problem of an entry that names itself carries its id in ``Problem.job``, so a run
can fail that job alone.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.conventions import DEFAULT_DPI
from pipeline.manifest.context import _Context
from pipeline.manifest.layering import _merge_fields, _Profiles
from pipeline.manifest.policy import _allowed_uses
from pipeline.manifest.problems import _BAD, _check_keys, _item, _named, _Where
from pipeline.manifest.photos import _design_tile
from pipeline.manifest.sizing import _job_size
from pipeline.manifest.sources import _json_safe, _Row
from pipeline.manifest.specs import _JOB_KEYS, DEFAULT_REPEAT, DEFAULT_SEED, JobSpec, Policy, StyleRef
from pipeline.manifest.regions import _job_regions
from pipeline.manifest.styles import _style_uses
from pipeline.manifest.values import _as_colourways, _as_job_id, _check_colourways, _job_fields, _with_drop


@dataclass
class _Jobs:
    """Jobs being built, with what cross-job checks need."""

    styles: Mapping[str, StyleRef | None]
    styles_known: bool
    defaults: dict[str, Any]
    settings: _Profiles
    policy: Policy | None = None
    used_styles: set[str] = field(default_factory=set)
    first_seen: dict[str, str] = field(default_factory=dict)
    built: list[JobSpec] = field(default_factory=list)
    places: dict[str, _Where] = field(default_factory=dict)


def _build_job(ctx: _Context, jobs: _Jobs, row: _Row) -> None:
    """Validate one job entry; append a :class:`JobSpec` when all of it is valid."""
    raw_id = row.entry.get("id")
    first = jobs.first_seen.get(raw_id.strip()) if isinstance(raw_id, str) else None
    item = _item(row.label, raw_id)
    shown = f"{item} ({row.label})" if first and item.startswith("job") else item
    where = _Where(row.file, shown, ctx.sink, _named(raw_id))
    _check_keys(where, row.entry, _JOB_KEYS)
    job_id = where.read("id", _as_job_id, raw_id)
    if first and job_id is not _BAD:
        where.error("id", f"duplicate job id '{job_id}' (first used by {first})")
        job_id = _BAD
    elif job_id is not _BAD:
        jobs.first_seen[job_id] = row.source if row.label.startswith("row") else row.label
    fields = _merge_fields(jobs.defaults, _job_fields(where, row.entry))
    _with_drop(where, fields, DEFAULT_REPEAT)
    size = fields.get("size") or fields.get("size_cm")
    need_size = size is None or (size is not _BAD and (size.long is not None or size.fit))
    design = ctx.image(where, "design", row.entry.get("design"), row.base, need_size)
    by_region = "mask" in row.entry or "regions" in row.entry
    uses: Any = ()
    if not by_region or "style" in row.entry:
        uses = _style_uses(where, row.entry.get("style"), jobs.styles, jobs.styles_known, jobs.used_styles)
    uses = _allowed_uses(where, uses, jobs.policy)
    settings = jobs.settings.for_job(where, row.entry)
    ways = where.read("colourways", _as_colourways, row.entry.get("colourways", []))
    if settings is not _BAD:
        ways = _check_colourways(where, ways, settings.separation_colors)
    _engine_refusals(where, row.entry, settings)
    if design is _BAD or any(v is _BAD for v in fields.values()):
        return
    if settings is _BAD:  # no crop_to_repeat to apply; the size is still checked
        tile = (settings, fields.get("repeat", DEFAULT_REPEAT), None)
    else:
        tile = _design_tile(ctx, where, design[0], fields.get("repeat"), settings)
    if tile is _BAD:
        return
    settings, repeat, finding = tile
    regions = _job_regions(ctx, where, row.entry, jobs.styles, jobs.styles_known, jobs.used_styles, row.base,
                           design, finding is not None)  # fmt: skip
    if regions is not None and regions is not _BAD:
        uses = _allowed_uses(where, regions[2], jobs.policy)
    fields = {**fields, "repeat": repeat}
    dims = _job_size(where, fields, finding.recipe.size if finding else design[1], ctx.limits)
    if any(v is _BAD for v in (job_id, uses, settings, dims, ways, regions)):
        return
    mask, region_specs = (regions[0], regions[1]) if regions else (None, ())
    jobs.places[job_id] = where
    jobs.built.append(
        JobSpec(
            id=job_id,
            design=design[0],
            styles=uses,
            repeat=repeat,
            width=dims[0],
            height=dims[1],
            dpi=fields.get("dpi", DEFAULT_DPI),
            seed=fields.get("seed", DEFAULT_SEED),
            settings=settings,
            entry=_json_safe(row.written),
            source=row.source,
            tile=finding,
            colourways=tuple(ways),
            mask=mask,
            regions=region_specs,
            variant_of=row.variant_of,
            variant=row.variant,
        )
    )


def _engine_refusals(where: _Where, entry: dict[str, Any], settings: Any) -> None:
    """What the feed-forward engine cannot do yet: styles by region, a style span on the cloth."""
    if settings is _BAD or settings.engine != "feedforward":
        return
    if "regions" in entry or "mask" in entry:
        where.error("regions", "the feed-forward engine cannot put styles by region (one network per house style): "
                               "use engine = \"optimise\" for this job")  # fmt: skip
    if settings.style_span_cm is not None:
        where.error("style_span_cm", "the feed-forward engine does not take style_span_cm yet: use style_scale, or "
                                     "engine = \"optimise\"")  # fmt: skip

"""The manifest: which designs to stylize with which styles, at what size, repeat and settings.

A manifest is a TOML file (``profile``, ``catalogue``, ``[defaults]``, ``[limits]``,
``[policy]``, ``[[styles]]``, ``[[jobs]]``) or a CSV catalogue export (one job per row) whose
styles live in a ``styles.toml`` beside it. Paths are relative to the file that names them.
See ``docs/manifest.md`` for every field.

Loading never stops at the first mistake: every check records a :class:`Problem` naming the
file, the job or style (or CSV row) and the field, and :func:`load_manifest` raises one
:class:`ManifestError` carrying all of them, so a nightly run is fixed in one go. Nothing
downstream re-reads the manifest: a :class:`~pipeline.manifest.specs.JobSpec` holds everything
a job needs.

This module only puts the steps in order; each step is its own module of
:mod:`pipeline.manifest` (sources, values, layering, styles, jobs, sizing, checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ManifestError, Problem
from pipeline.manifest.checks import _inspect_images
from pipeline.manifest.context import _Context
from pipeline.manifest.jobs import _build_job, _Jobs
from pipeline.manifest.variants import _expand_variants
from pipeline.manifest.layering import _Profiles
from pipeline.manifest.policy import _read_policy
from pipeline.manifest.problems import _display, _Where
from pipeline.manifest.sources import _check_tables, _read_catalogue, _read_top, _toml_rows
from pipeline.conventions import ALLOW_OUTSIDE_ROOT
from pipeline.manifest.specs import Limits, Manifest
from pipeline.manifest.styles import _read_styles
from pipeline.manifest.training import read_training_designs
from pipeline.manifest.values import _job_fields, _read_limits


def load_manifest(
    path: Path | str,
    *,
    profile: str | None = None,
    config: Path | str | None = None,
    cli_settings: Mapping[str, Any] | None = None,
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT,
    check_images: bool = True,
) -> Manifest:
    """Read and validate a manifest (TOML or CSV) into jobs with resolved settings.

    ``profile``/``config`` (from the CLI) win over every ``profile`` the manifest names (top
    level, ``[defaults]``, a job's own); ``cli_settings`` win over everything. With
    ``check_images`` every image's header is read (exists, is an image, within
    ``max_input_pixels``); without it only designs whose size is needed are.
    Raises :class:`ManifestError` with every problem, or :class:`ConfigError` for a bad
    ``--profile``/``--config``.
    """
    manifest, problems = read_manifest(
        path, profile=profile, config=config, cli_settings=cli_settings,
        allow_outside_root=allow_outside_root, check_images=check_images,
    )  # fmt: skip
    if any(p.severity == "error" for p in problems):
        raise ManifestError(problems)
    return manifest


def read_manifest(
    path: Path | str,
    *,
    profile: str | None = None,
    config: Path | str | None = None,
    cli_settings: Mapping[str, Any] | None = None,
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT,
    check_images: bool = True,
) -> tuple[Manifest, list[Problem]]:
    """Like :func:`load_manifest`, but never raises for manifest problems: the jobs that are
    entirely valid, and every problem (errors and warnings) of the others.

    For runs that keep going past broken jobs: each error of a job names it (``Problem.job``).
    """
    loaded = _load(Path(path), profile, config, cli_settings, allow_outside_root, check_images)
    return loaded.manifest, loaded.problems


def validate_manifest(
    path: Path | str,
    *,
    profile: str | None = None,
    config: Path | str | None = None,
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT,
) -> list[Problem]:
    """Every problem (errors and warnings) of a manifest, without raising for them.

    Beyond :func:`load_manifest` it decodes each image (at most
    :data:`~pipeline.manifest.checks.INSPECT_SIDE` px) to find truncated files, and warns about
    designs that are not seamless under their repeat.
    """
    loaded = _load(Path(path), profile, config, None, allow_outside_root, True)
    return loaded.problems + _inspect_images(loaded.manifest, loaded.job_places, loaded.style_file)


@dataclass
class _Loaded:
    """A manifest with whatever was valid, every problem, and where each job and style was written."""

    manifest: Manifest
    problems: list[Problem]
    job_places: dict[str, _Where]
    style_file: str


def _load(
    path: Path,
    profile: str | None,
    config: Path | str | None,
    cli_settings: Mapping[str, Any] | None,
    allow_outside_root: bool,
    check_images: bool,
) -> _Loaded:
    """Every step, in the order its problems are reported: files, tables, limits, policy, styles, settings,
    jobs."""
    sink: list[Problem] = []
    ctx = _Context(str(path), path.parent.resolve(), allow_outside_root, check_images, Limits(), sink)
    top = _read_top(path, ctx)
    _check_tables(ctx, top)
    ctx.limits = _read_limits(ctx.where("[limits]", top.file), top.tables.get("limits", {}))
    policy = _read_policy(ctx.where("[policy]", top.file), top.tables.get("policy"))
    training = read_training_designs(ctx, ctx.where(None, top.file), top.tables.get("training_designs"))
    styles = _read_styles(ctx, top.file, top.tables.get("styles", []))
    jobs = _Jobs(
        styles=styles,
        styles_known=top.read,
        defaults=_job_fields(ctx.where("[defaults]", top.file), top.defaults),
        settings=_Profiles(ctx, top, cli_settings, profile, config),
        policy=policy,
    )
    rows = _toml_rows(ctx, top.tables.get("jobs", []))
    if top.catalogue is not None:
        display = str(path) if top.catalogue == path else _display(top.catalogue)
        rows += _read_catalogue(top.catalogue, display, sink)
    for row in _expand_variants(ctx, rows):
        _build_job(ctx, jobs, row)
    if not rows and top.read:
        ctx.where(None).error("jobs", "the manifest has no jobs: add [[jobs]] entries or a catalogue")
    for style_id in [s for s in styles if s not in jobs.used_styles]:  # in declaration order, run after run
        ctx.where(f"style '{style_id}'", top.file).warning(None, "declared but not used by any job")
    valid_styles = {k: v for k, v in styles.items() if v is not None}
    manifest = Manifest(path, ctx.root, valid_styles, tuple(jobs.built), ctx.limits, policy, training)
    return _Loaded(manifest, sink, jobs.places, top.file)

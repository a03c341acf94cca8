"""The layers a job's values come from: profile < manifest ``[defaults]`` < job < command line.

Settings are resolved by :func:`pipeline.settings.resolve_settings`; what this module adds is
the manifest's side of it: which profile applies (the CLI's ``--profile``/``--config`` or the
manifest's ``profile``), reporting each error of a shared layer (profile, defaults, CLI) once
and where it is written rather than once per job, and the same layering for the job fields
(repeat, size, dpi, seed) that ``[defaults]`` may give.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _display, _suggest, _Where
from pipeline.manifest.sources import _Top
from pipeline.settings import (
    SETTING_NAMES,
    available_profiles,
    describe_validation_error,
    load_profile,
    profile_path,
    resolve_settings,
)


@dataclass
class _SettingsStack:
    """Profile < manifest defaults < job < CLI, with each shared layer's errors reported once, where they are."""

    profile: dict[str, Any] | None  # None: the profile could not be read (already reported)
    defaults: dict[str, Any]
    cli: dict[str, Any]
    shared_errors: set[tuple[str, str]] = field(default_factory=set)  # from profile, defaults, CLI

    def check_shared(self, where: _Where, layer: Mapping[str, Any] | None = None) -> None:
        """Report errors that first appear when a shared layer is put on the profile."""
        layers = [layer] if layer is not None else []
        self.shared_errors |= self._resolve(where, layers, own=layer or {})[1]

    def for_job(self, where: _Where, job_layer: Mapping[str, Any]) -> Any:
        """The job's :class:`Settings`, or :data:`_BAD`.

        An error already reported for a shared layer is repeated only if the job sets that field itself.
        """
        return self._resolve(where, [self.defaults, job_layer, self.cli], own=job_layer)[0]

    def _resolve(
        self, where: _Where, layers: list[Mapping[str, Any]], own: Mapping[str, Any]
    ) -> tuple[Any, set[tuple[str, str]]]:
        """Resolve and report. Without a readable profile, check values on the model defaults instead,
        reporting only errors of fields this layer sets (others may be artefacts of the missing profile)."""
        try:
            settings = resolve_settings(self.profile or {}, *layers)
            return (settings if self.profile is not None else _BAD), set()
        except ValidationError as error:
            pairs = describe_validation_error(error)
        for pair in pairs:
            mine = pair[0].split(".")[0] in own
            if mine or (self.profile is not None and pair not in self.shared_errors):
                where.error(*pair)
        return _BAD, set(pairs)


def _settings_layer(table: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a table (``[defaults]`` or a job) sets, without values already found invalid."""
    return {k: v for k, v in table.items() if k in SETTING_NAMES and v is not _BAD}


def _profile_layer(
    where: _Where, profile: str | None, config: Path | str | None, named: Any
) -> tuple[dict[str, Any] | None, str]:
    """The profile's raw settings and its file, for messages.

    ``config`` or ``profile`` (CLI) win over ``named`` (the manifest's); a bad CLI choice raises
    :class:`ConfigError`, a bad manifest choice is reported (and checked even when the CLI wins).
    """
    known = available_profiles()
    if named is not None and (not isinstance(named, str) or named not in known):
        hint = _suggest(named, known) if isinstance(named, str) else ""
        where.error("profile", f"unknown profile {named!r}{hint}; known profiles: {', '.join(known) or 'none'}")
        named = _BAD
    if config is not None:
        return load_profile(config=Path(config)), _display(Path(config))
    if profile is not None:
        return load_profile(profile), _display(profile_path(profile))
    if named is _BAD:
        return None, ""
    try:
        return load_profile(named), _display(profile_path(named or "default"))
    except ConfigError as error:
        where.error("profile", str(error))
        return None, ""


def _settings_stack(
    ctx: _Context,
    top: _Top,
    cli_settings: Mapping[str, Any] | None,
    profile: str | None,
    config: Path | str | None,
) -> _SettingsStack:
    """The shared layers of every job's settings, each checked once against the profile."""
    layer, profile_file = _profile_layer(ctx.where(None, top.file), profile, config, top.tables.get("profile"))
    cli = dict(cli_settings or {})
    cli_where = ctx.where("command line")
    for key in [k for k in cli if k not in SETTING_NAMES]:
        cli_where.error(key, f"unknown setting{_suggest(key, SETTING_NAMES)}")
        del cli[key]
    stack = _SettingsStack(layer, _settings_layer(top.defaults), cli)
    if layer is not None:
        stack.check_shared(_Where(profile_file, "[settings]", ctx.sink))
    stack.check_shared(ctx.where("[defaults]", top.file), stack.defaults)
    stack.check_shared(cli_where, stack.cli)
    return stack


def _merge_fields(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A job's own fields over the defaults; a job's size or size_cm replaces both default sizes."""
    base = dict(defaults)
    if "size" in own or "size_cm" in own:
        base.pop("size", None)
        base.pop("size_cm", None)
    return {**base, **own}

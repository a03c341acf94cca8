"""The layers a job's values come from: profile < manifest ``[defaults]`` < job < command line.

Settings are resolved by :func:`pipeline.settings.resolve_settings`; what this module adds is
the manifest's side of it: which profile a job stands on, reporting each error of a shared
layer (profile, defaults, CLI) once and where it is written rather than once per job, and the
same layering for the job fields (repeat, size, dpi, seed) that ``[defaults]`` may give.

Which profile: the command line's ``--config``/``--profile`` (over everything a manifest
says), else the job's own ``profile``, else ``profile`` in ``[defaults]``, else the top-level
``profile``, else ``default``. A profile named in the manifest is checked even where the
command line overrides it.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import ConfigError, Problem
from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _display, _suggest, _Where
from pipeline.manifest.sources import _Top
from pipeline.manifest.values import _as_profile
from pipeline.settings import (
    DEFAULT_PROFILE,
    SETTING_NAMES,
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


class _Profiles:
    """Every job's :class:`Settings`: one :class:`_SettingsStack` per profile a job stands on.

    The stack of a profile is made when a job first needs it; the shared layers' errors it
    finds are reported once, however many profiles find them.
    """

    def __init__(
        self,
        ctx: _Context,
        top: _Top,
        cli_settings: Mapping[str, Any] | None,
        profile: str | None,
        config: Path | str | None,
    ) -> None:
        """Check every profile the manifest names, the CLI settings, and the stack most jobs use.

        A bad ``--profile``/``--config`` raises :class:`ConfigError`.
        """
        self._ctx = ctx
        self._defaults_where = ctx.where("[defaults]", top.file)
        self._cli_where = ctx.where("command line")
        self._stacks: dict[str | None, _SettingsStack] = {}
        self._files: dict[str, tuple[dict[str, Any], str] | ConfigError] = {}
        top_where = ctx.where(None, top.file)
        named = [  # the top level's, then [defaults]' (which wins)
            (where, where.read("profile", _as_profile, table["profile"]))
            for where, table in ((top_where, top.tables), (self._defaults_where, top.defaults))
            if "profile" in table
        ]
        cli = dict(cli_settings or {})
        for key in [k for k in cli if k not in SETTING_NAMES]:
            self._cli_where.error(key, f"unknown setting{_suggest(key, SETTING_NAMES)}")
            del cli[key]
        self.defaults, self.cli = _settings_layer(top.defaults), cli
        self._forced = config is not None or profile is not None  # the command line's, for every job
        if config is not None:
            self._base = self._stack(_display(Path(config)), load_profile(config=Path(config)))
        elif profile is not None:
            self._base = self._stack(_display(profile_path(profile)), load_profile(profile))
        else:
            where, name = named[-1] if named else (top_where, DEFAULT_PROFILE)
            self._base = self._named(where, name)

    def for_job(self, where: _Where, entry: Mapping[str, Any]) -> Any:
        """The job's :class:`Settings` on the profile it stands on, or :data:`_BAD` after reporting."""
        own = where.read("profile", _as_profile, entry["profile"]) if "profile" in entry else None
        stack = self._base if self._forced or own is None else self._named(where, own)
        return stack.for_job(where, _settings_layer(entry))

    def _named(self, where: _Where, name: Any) -> _SettingsStack:
        """The stack on the profile a manifest names (at ``where``); an unreadable one reports there."""
        if name is _BAD:
            return self._stack(None, None)
        if name not in self._files:
            try:
                self._files[name] = load_profile(name), _display(profile_path(name))
            except ConfigError as error:
                self._files[name] = error
        loaded = self._files[name]
        if isinstance(loaded, ConfigError):
            where.error("profile", str(loaded))
            return self._stack(None, None)
        return self._stack(loaded[1], loaded[0])

    def _stack(self, file: str | None, layer: dict[str, Any] | None) -> _SettingsStack:
        """The stack on the profile in ``file`` (``None``: unreadable), its shared layers checked once."""
        if file not in self._stacks:
            stack = _SettingsStack(layer, self.defaults, self.cli)
            found: list[Problem] = []
            if layer is not None:
                stack.check_shared(_Where(str(file), "[settings]", found))
            stack.check_shared(replace(self._defaults_where, sink=found), stack.defaults)
            stack.check_shared(replace(self._cli_where, sink=found), stack.cli)
            self._ctx.sink.extend(p for p in found if p not in self._ctx.sink)
            self._stacks[file] = stack
        return self._stacks[file]


def _merge_fields(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A job's own fields over the defaults; a job's size or size_cm replaces both default sizes."""
    base = dict(defaults)
    if "size" in own or "size_cm" in own:
        base.pop("size", None)
        base.pop("size_cm", None)
    return {**base, **own}

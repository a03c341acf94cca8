"""Collecting problems instead of raising them: the place a problem is reported against, and its wording.

Loading a manifest never stops at the first mistake, so checks do not raise to their caller:
a parser raises :class:`_Invalid`, a :class:`_Where` turns that into a :class:`Problem` naming
file, entry and field, and the value becomes :data:`_BAD` so later checks skip it quietly.
How entries are named ("job 'x'", "row 7, job 'x'"), the "did you mean" hints, unknown-key
checks and how paths are displayed live here so every message is worded the same way.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem


class _Invalid(Exception):
    """A value is wrong; the message says why (and what would be right)."""


class _Bad:
    """Marker for a value that was invalid and has already been reported."""

    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()


@dataclass(frozen=True)
class _Where:
    """A place in a file (a job, style, row or table) that problems are reported against.

    ``item`` names the place for people; ``job`` is the id of the job the place belongs to
    (as written, stripped), so a run can fail that job alone without parsing ``item``.
    """

    file: str
    item: str | None
    sink: list[Problem]
    job: str | None = None

    def error(self, field_name: str | None, message: str) -> None:
        """Record an error at this place."""
        self.sink.append(Problem(self.file, message, self.item, field_name, job=self.job))

    def warning(self, field_name: str | None, message: str) -> None:
        """Record a warning at this place."""
        self.sink.append(Problem(self.file, message, self.item, field_name, severity="warning", job=self.job))

    def read(self, field_name: str, parse: Callable[[Any], Any], value: Any) -> Any:
        """``parse(value)``, or :data:`_BAD` after reporting why it is invalid."""
        if value is _BAD:
            return _BAD
        try:
            return parse(value)
        except _Invalid as error:
            self.error(field_name, str(error))
            return _BAD


def _suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing when none is close."""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _check_keys(
    where: _Where, table: Mapping[str, Any], allowed: Iterable[str], refused: Mapping[str, str] | None = None
) -> None:
    """Report keys that are not allowed here: usually typos, so suggest the closest name."""
    allowed = frozenset(allowed)
    for key in table:
        if refused and key in refused:
            where.error(key, refused[key])
        elif key not in allowed:
            where.error(key, f"unknown key{_suggest(key, allowed)}")


def _file_problem(file: Any, reason: str) -> str:
    """What is wrong with a file a field names, naming the file as the manifest writes it."""
    return f"'{file}': {reason}"


def _display(path: Path) -> str:
    """A path as users recognise it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _named(raw_id: Any) -> str | None:
    """The id an entry gives itself (stripped), or ``None`` when it gives none."""
    if not isinstance(raw_id, str) or not raw_id.strip():
        return None
    return raw_id.strip()


def _item(label: str, raw_id: Any, kind: str = "job") -> str:
    """How problems name an entry: by id once it has one ("job 'x'", "row 7, job 'x'"), else by position."""
    name = _named(raw_id)
    if name is None:
        return label
    named = f"{kind} '{name}'"
    return f"{label}, {named}" if label.startswith("row") else named

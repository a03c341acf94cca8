"""Reading the files a manifest is made of: the TOML side and the CSV catalogue, into untyped rows.

A manifest's jobs come from ``[[jobs]]`` tables, from a CSV catalogue, or both; its styles,
defaults and limits come from a TOML file (the manifest, or the ``styles.toml`` beside a CSV).
This module only reads: syntax and encoding errors, CSV shape errors and unknown columns are
reported here, and every job entry leaves as a :class:`_Row` of values as a TOML manifest
would hold them, so validating a job does not care where it was written.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem
from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _check_keys, _item, _named, _suggest, _Where
from pipeline.manifest.specs import _DEFAULT_KEYS, _JOB_KEYS, CSV_STYLES_FILE, PER_JOB_FIELDS, TOP_LEVEL_FIELDS
from pipeline.manifest.values import _CELL_PARSERS

# --- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One job entry, from ``[[jobs]]`` or a CSV row, before validation."""

    entry: dict[str, Any]  # typed values (CSV cells converted; bad cells are _BAD, already reported)
    written: dict[str, Any]  # as written, for provenance
    file: str
    label: str  # "job #2" / "row 7": used until the id is known
    base: Path  # folder that relative paths are resolved against
    source: str
    variant_of: str | None = None  # the id as written, when this row is one of a job's variants
    variant: tuple[tuple[str, Any], ...] = ()


def _json_safe(table: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as written, as plain JSON data (TOML dates become strings)."""
    return json.loads(json.dumps(dict(table), default=str))


# --- TOML ------------------------------------------------------------------------------------


def _read_toml(path: Path, where: _Where) -> dict[str, Any] | None:
    """Parse a TOML file, or report why not (a syntax error names line and column)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        where.error(None, "file not found")
    except IsADirectoryError:
        where.error(None, "is a directory, not a TOML file")
    except OSError as error:
        where.error(None, f"cannot read: {error.strerror or error}")
    except UnicodeDecodeError as error:
        where.error(None, f"not UTF-8 text (byte {error.start})")
    except tomllib.TOMLDecodeError as error:
        where.error(None, f"invalid TOML: {error}")
    return None


@dataclass(frozen=True)
class _Top:
    """The TOML side of a manifest: the manifest itself, or the styles.toml beside a CSV catalogue."""

    tables: dict[str, Any]
    file: str  # as displayed in problems
    read: bool  # False when the file is missing or malformed (already reported)
    catalogue: Path | None  # CSV file the jobs come from, if any

    @property
    def defaults(self) -> dict[str, Any]:
        """The ``[defaults]`` table, or ``{}`` when it is missing or not a table (reported elsewhere)."""
        value = self.tables.get("defaults", {})
        return value if isinstance(value, dict) else {}


def _read_top(path: Path, ctx: _Context) -> _Top:
    """The TOML side of the manifest at ``path``: the file itself, or the styles.toml beside a CSV."""
    if path.suffix.lower() != ".csv":
        tables = _read_toml(path, ctx.where(None))
        catalogue = None
        if tables and "catalogue" in tables:
            catalogue = ctx.where(None).read("catalogue", lambda v: ctx.path(v, ctx.root), tables["catalogue"])
        return _Top(tables or {}, ctx.file, tables is not None, None if catalogue is _BAD else catalogue)
    styles_file = path.parent / CSV_STYLES_FILE
    where = ctx.where(None, str(styles_file))
    if not styles_file.is_file():
        where.error(
            None,
            f"file not found: a CSV catalogue takes its [[styles]] (and [defaults], [limits], [policy], profile) from "
            f"{CSV_STYLES_FILE} beside it",
        )
        return _Top({}, str(styles_file), False, path)
    tables = _read_toml(styles_file, where)
    if tables and "catalogue" in tables:
        where.error("catalogue", f"not allowed in the {CSV_STYLES_FILE} beside a CSV catalogue (the CSV is it)")
    return _Top(tables or {}, str(styles_file), tables is not None, path)


def _check_tables(ctx: _Context, top: _Top) -> None:
    """Top-level keys and the shapes of [defaults], [limits] and [policy]."""
    where = ctx.where(None, top.file)
    _check_keys(where, top.tables, TOP_LEVEL_FIELDS)
    for name in ("defaults", "limits", "policy"):
        if not isinstance(top.tables.get(name, {}), dict):
            where.error(name, f"must be a table: write [{name}]")
    refused = {k: "cannot be a default: give it on each job" for k in PER_JOB_FIELDS}
    _check_keys(ctx.where("[defaults]", top.file), top.defaults, _DEFAULT_KEYS, refused)


def _toml_rows(ctx: _Context, value: Any) -> list[_Row]:
    """The ``[[jobs]]`` entries of the manifest as rows."""
    if not isinstance(value, list):
        ctx.where(None).error("jobs", "must be an array of tables: write [[jobs]]")
        return []
    rows = []
    for index, entry in enumerate(value, 1):
        if not isinstance(entry, dict):
            ctx.where(f"job #{index}").error(None, "each [[jobs]] entry must be a table")
            continue
        rows.append(_Row(entry, entry, ctx.file, f"job #{index}", ctx.root, ctx.file))
    return rows


# --- CSV -------------------------------------------------------------------------------------


def _decode_csv(path: Path, where: _Where) -> str | None:
    """The catalogue's text (UTF-8, with or without a BOM), or ``None`` after reporting why not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        where.error(None, "file not found")
        return None
    except OSError as error:
        where.error(None, f"cannot read: {error.strerror or error}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        where.error(None, f"not UTF-8 text (line {line}); export the spreadsheet as 'CSV UTF-8'")
        return None


def _csv_header(header: list[str], where: _Where) -> list[str | None]:
    """Column names, ``None`` for columns that are reported and then ignored."""
    columns: list[str | None] = []
    for index, raw in enumerate(header, 1):
        name = raw.strip()
        if not name:
            where.error(None, f"column {index} has no name")
        elif name in columns:
            where.error(name, f"column {index} repeats the column name '{name}'")
        elif name not in _JOB_KEYS:
            where.error(name, f"unknown column{_suggest(name, _JOB_KEYS)}")
        columns.append(name if name and name in _JOB_KEYS and name not in columns else None)
    if len(header) == 1 and ";" in header[0]:
        where.error(None, "the columns seem to be separated by ';': export the catalogue with commas")
    return columns


def _csv_entry(columns: list[str | None], cells: list[str], where: _Where) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed entry and written entry of one row; empty cells are unset."""
    written = {name: cell.strip() for name, cell in zip(columns, cells) if name and cell.strip()}
    entry: dict[str, Any] = {}
    for name, text in written.items():
        parse = _CELL_PARSERS.get(name)
        entry[name] = where.read(name, parse, text) if parse else text
    return entry, written


def _read_catalogue(path: Path, display: str, sink: list[Problem]) -> list[_Row]:
    """Jobs of a CSV catalogue; rows are numbered as in a spreadsheet (header = row 1)."""
    text = _decode_csv(path, _Where(display, None, sink))
    if text is None:
        return []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[_Row] = []
    number = 0
    columns: list[str | None] | None = None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            message = f"malformed CSV ({error}); rows after it were not read"
            _Where(display, f"row {number + 1}", sink).error(None, message)
            break
        number += 1
        if columns is None:
            columns = _csv_header(cells, _Where(display, "row 1 (header)", sink))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        row_where = _Where(display, f"row {number}", sink)
        if len(cells) != len(columns):
            row_where.error(
                None, f"has {len(cells)} cells but the header has {len(columns)} (a stray or unquoted comma?)"
            )
            continue
        label = f"row {number}"
        job_id = cells[columns.index("id")] if "id" in columns else None
        entry, written = _csv_entry(columns, cells, _Where(display, _item(label, job_id), sink, _named(job_id)))
        rows.append(_Row(entry, written, display, label, path.parent, f"{display} row {number}"))
    if columns is None:
        _Where(display, None, sink).error(None, "the catalogue is empty (no header row)")
    return rows

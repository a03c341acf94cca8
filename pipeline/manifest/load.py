"""The manifest: which designs to stylize with which styles, at what size, repeat and settings.

A manifest is a TOML file (``profile``, ``catalogue``, ``[defaults]``, ``[limits]``,
``[[styles]]``, ``[[jobs]]``) or a CSV catalogue export (one job per row) whose styles live in
a ``styles.toml`` beside it. Paths are relative to the file that names them. See
``docs/manifest.md`` for every field.

Loading never stops at the first mistake: every check records a :class:`Problem` naming the
file, the job or style (or CSV row) and the field, and :func:`load_manifest` raises one
:class:`ManifestError` carrying all of them, so a nightly run is fixed in one go. Nothing
downstream re-reads the manifest: a :class:`JobSpec` holds everything a job needs.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.errors import ConfigError, GeometryError, ImageError, ManifestError, Problem
from pipeline.repeat.geometry import Repeat, check_size
from pipeline.manifest.images import DEFAULT_MAX_INPUT_PIXELS, image_size, load_rgb
from pipeline.settings import (
    SETTING_NAMES,
    Settings,
    available_profiles,
    describe_validation_error,
    load_profile,
    profile_path,
    resolve_settings,
)

#: Keys of a job besides settings overrides.
JOB_FIELDS: tuple[str, ...] = ("id", "design", "style", "repeat", "size", "size_cm", "dpi", "seed")
#: Job keys that only make sense per job, so ``[defaults]`` refuses them.
PER_JOB_FIELDS: frozenset[str] = frozenset({"id", "design", "style"})
STYLE_FIELDS: tuple[str, ...] = ("id", "path", "license", "attribution", "notes")
BLEND_FIELDS: tuple[str, ...] = ("style", "weight")
TOP_LEVEL_FIELDS: tuple[str, ...] = ("profile", "catalogue", "defaults", "limits", "styles", "jobs")

DEFAULT_REPEAT = Repeat.BLOCK
DEFAULT_DPI = 300
DEFAULT_SEED = 0
MAX_SEED = 2**63 - 1
MAX_DPI = 10_000
#: ``weft validate`` warns when a design's own seam ratio under its repeat is above this.
SEAM_WARNING_RATIO = 1.3
#: Long side (px) at which validation looks at a design's pixels (seam ratio, decodability).
INSPECT_SIDE = 1024
#: A CSV catalogue takes its styles (and defaults, limits, profile) from this file beside it.
CSV_STYLES_FILE = "styles.toml"

_JOB_KEYS = frozenset(JOB_FIELDS) | SETTING_NAMES
_DEFAULT_KEYS = (frozenset(JOB_FIELDS) - PER_JOB_FIELDS) | SETTING_NAMES
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


# --- public data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleRef:
    """A declared style image with the licence facts a print house will ask for."""

    id: str
    path: Path
    license: str
    attribution: str
    notes: str = ""


@dataclass(frozen=True)
class StyleUse:
    """One style of a job's blend; the weights of a job sum to 1."""

    style: StyleRef
    weight: float


@dataclass(frozen=True)
class JobSpec:
    """Everything one job needs, validated: nothing downstream re-reads the manifest."""

    id: str
    design: Path
    styles: tuple[StyleUse, ...]
    repeat: Repeat
    width: int
    height: int
    dpi: int
    seed: int
    settings: Settings
    entry: dict[str, Any]  # the job's entry as written (JSON-safe), for provenance
    source: str  # "manifests/demo.toml" or "manifests/jobs.csv row 7"


@dataclass(frozen=True)
class Limits:
    """Sanity bounds from the manifest's ``[limits]`` table (absurd sizes are usually typos)."""

    max_output_pixels: int = 400_000_000
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    min_output_side: int = 32
    max_aspect_ratio: float = 16.0


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``limits.max_input_pixels`` is what the pipeline passes to ``load_rgb``."""

    path: Path
    root: Path
    styles: dict[str, StyleRef]
    jobs: tuple[JobSpec, ...]
    limits: Limits = Limits()


def load_manifest(
    path: Path | str,
    *,
    profile: str | None = None,
    config: Path | str | None = None,
    cli_settings: Mapping[str, Any] | None = None,
    allow_outside_root: bool = True,
    check_images: bool = True,
) -> Manifest:
    """Read and validate a manifest (TOML or CSV) into jobs with resolved settings.

    ``profile``/``config`` (from the CLI) win over the manifest's ``profile``; ``cli_settings``
    win over everything. With ``check_images`` every image's header is read (exists, is an
    image, within ``max_input_pixels``); without it only designs whose size is needed are.
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
    allow_outside_root: bool = True,
    check_images: bool = True,
) -> tuple[Manifest, list[Problem]]:
    """Like :func:`load_manifest`, but never raises for manifest problems: the jobs that are
    entirely valid, and every problem (errors and warnings) of the others.

    For runs that keep going past broken jobs: each error names its job (``Problem.item``).
    """
    loaded = _load(Path(path), profile, config, cli_settings, allow_outside_root, check_images)
    return loaded.manifest, loaded.problems


def validate_manifest(
    path: Path | str,
    *,
    profile: str | None = None,
    config: Path | str | None = None,
    allow_outside_root: bool = True,
) -> list[Problem]:
    """Every problem (errors and warnings) of a manifest, without raising for them.

    Beyond :func:`load_manifest` it decodes each image (at most :data:`INSPECT_SIDE` px) to
    find truncated files, and warns about designs that are not seamless under their repeat.
    """
    loaded = _load(Path(path), profile, config, None, allow_outside_root, True)
    return loaded.problems + _inspect_images(loaded)


# --- problems -------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value is wrong; the message says why (and what would be right)."""


class _Bad:
    """Marker for a value that was invalid and has already been reported."""

    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()


@dataclass(frozen=True)
class _Where:
    """A place in a file (a job, style, row or table) that problems are reported against."""

    file: str
    item: str | None
    sink: list[Problem]

    def error(self, field_name: str | None, message: str) -> None:
        self.sink.append(Problem(self.file, message, self.item, field_name))

    def warning(self, field_name: str | None, message: str) -> None:
        self.sink.append(Problem(self.file, message, self.item, field_name, severity="warning"))

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


def _display(path: Path) -> str:
    """A path as users recognise it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _json_safe(table: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as written, as plain JSON data (TOML dates become strings)."""
    return json.loads(json.dumps(dict(table), default=str))


# --- value parsers (raise _Invalid) ---------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_text(value: Any) -> str:
    if value is None:
        raise _Invalid("missing (required)")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _as_int(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise _Invalid(f"{what} must be between {low} and {high}, got {value}")
    return value


def _as_dpi(value: Any) -> int:
    return _as_int(value, 1, MAX_DPI, "dpi")


def _as_seed(value: Any) -> int:
    return _as_int(value, 0, MAX_SEED, "seed")


def _as_job_id(value: Any) -> str:
    text = _as_text(value)
    if not _SAFE_ID.fullmatch(text):
        raise _Invalid(
            f"job id {text!r} cannot be used as a folder name: use letters, digits, '-', '_' and '.' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return text


def _as_repeat(value: Any) -> Repeat:
    names = [r.value for r in Repeat]
    if isinstance(value, str) and value.strip().lower() in names:
        return Repeat(value.strip().lower())
    hint = _suggest(value, names) if isinstance(value, str) else ""
    raise _Invalid(f"unknown repeat {value!r}{hint}; choose one of {', '.join(names)}")


@dataclass(frozen=True)
class _Size:
    """A requested output size: a long side or exact W x H, in pixels or centimetres."""

    field: str  # "size" or "size_cm"
    long: float | None = None
    exact: tuple[float, float] | None = None

    @property
    def in_pixels(self) -> bool:
        return self.field == "size"


def _as_size_px(value: Any) -> _Size:
    if isinstance(value, list) and len(value) == 2:
        width, height = (_as_int(v, 1, 10**6, "each side") for v in value)
        return _Size("size", exact=(width, height))
    if isinstance(value, list):
        raise _Invalid(f"must be N (long side) or [W, H] in pixels, got a list of {len(value)}")
    return _Size("size", long=_as_int(value, 1, 10**6, "size"))


def _as_positive(value: Any, what: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise _Invalid(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _as_size_cm(value: Any) -> _Size:
    if isinstance(value, list) and len(value) == 2:
        width, height = (_as_positive(v, "each side") for v in value)
        return _Size("size_cm", exact=(width, height))
    if isinstance(value, list):
        raise _Invalid(f"must be N (long side) or [W, H] in centimetres, got a list of {len(value)}")
    return _Size("size_cm", long=_as_positive(value, "size_cm"))


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
    pairs, issues = [], []
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


def _as_limit(name: str) -> Callable[[Any], Any]:
    if name == "max_aspect_ratio":
        return lambda value: max(1.0, _as_positive(value, name))
    return lambda value: _as_int(value, 1, 10**12, name)


# --- CSV cells -> typed values --------------------------------------------------------------


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
    return typing.get_origin(Settings.model_fields[name].annotation) is tuple


_CELL_PARSERS: dict[str, Callable[[str], Any]] = {
    "style": _blend_from_text,
    "size": _size_from_text(_int_from_text),
    "size_cm": _size_from_text(_float_from_text),
    "dpi": _int_from_text,
    "seed": _int_from_text,
    **{name: _list_from_text for name in SETTING_NAMES if _tuple_setting(name)},
}


# --- reading files --------------------------------------------------------------------------


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


def _item(label: str, raw_id: Any, kind: str = "job") -> str:
    """How problems name an entry: by id once it has one ("job 'x'", "row 7, job 'x'"), else by position."""
    if not isinstance(raw_id, str) or not raw_id.strip():
        return label
    named = f"{kind} '{raw_id.strip()}'"
    return f"{label}, {named}" if label.startswith("row") else named


@dataclass(frozen=True)
class _Row:
    """One job entry, from ``[[jobs]]`` or a CSV row, before validation."""

    entry: dict[str, Any]  # typed values (CSV cells converted; bad cells are _BAD, already reported)
    written: dict[str, Any]  # as written, for provenance
    file: str
    label: str  # "job #2" / "row 7": used until the id is known
    base: Path  # folder that relative paths are resolved against
    source: str


def _decode_csv(path: Path, where: _Where) -> str | None:
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
        entry, written = _csv_entry(columns, cells, _Where(display, _item(label, job_id), sink))
        rows.append(_Row(entry, written, display, label, path.parent, f"{display} row {number}"))
    if columns is None:
        _Where(display, None, sink).error(None, "the catalogue is empty (no header row)")
    return rows


# --- images ---------------------------------------------------------------------------------


class _Headers:
    """Image header sizes, read once per file; an unreadable file keeps its error."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._cache: dict[Path, tuple[int, int] | ImageError] = {}

    def size(self, path: Path) -> tuple[int, int]:
        if path not in self._cache:
            try:
                self._cache[path] = image_size(path, max_pixels=self.max_pixels)
            except ImageError as error:
                self._cache[path] = error
        result = self._cache[path]
        if isinstance(result, ImageError):
            raise result
        return result


@dataclass
class _Context:
    """What every check needs: where the manifest is, its limits, how strict to be."""

    file: str  # the manifest as displayed
    root: Path
    allow_outside_root: bool
    check_images: bool
    limits: Limits
    sink: list[Problem]
    _headers: _Headers | None = None

    @property
    def headers(self) -> _Headers:
        if self._headers is None or self._headers.max_pixels != self.limits.max_input_pixels:
            self._headers = _Headers(self.limits.max_input_pixels)
        return self._headers

    def where(self, item: str | None, file: str | None = None) -> _Where:
        return _Where(file or self.file, item, self.sink)

    def path(self, value: Any, base: Path) -> Path:
        """Resolve a path as written, relative to ``base``; refuse escapes when asked to."""
        text = _as_text(value)
        resolved = (base / text).resolve()
        if not self.allow_outside_root and not resolved.is_relative_to(self.root):
            raise _Invalid(
                f"'{text}' points outside the manifest folder {self.root}; move the file under it "
                "or pass --allow-outside-root"
            )
        return resolved

    def image(self, where: _Where, field_name: str, value: Any, base: Path, need_size: bool) -> Any:
        """(path, size or None) of an image field, or :data:`_BAD` after reporting."""
        path = where.read(field_name, lambda v: self.path(v, base), value)
        if path is _BAD or not (self.check_images or need_size):
            return _BAD if path is _BAD else (path, None)
        try:
            return path, self.headers.size(path)
        except ImageError as error:
            where.error(field_name, f"'{value}': {error.reason}")
            return _BAD


# --- styles ---------------------------------------------------------------------------------

_REQUIRED_NOTE = {
    "license": "every style needs its licence (e.g. 'Public domain (CC0)') so prints can be cleared",
    "attribution": "every style needs an attribution (creator, title, year, source)",
}


def _as_note(why: str) -> Callable[[Any], str]:
    """Parser of a required free-text field (licence, attribution): blank counts as missing."""

    def parse(value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _Invalid(f"missing: {why}")
        return _as_text(value)

    return parse


def _as_optional_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {value!r}")
    return value.strip()


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
    where: _Where, value: Any, styles: Mapping[str, StyleRef | None], styles_known: bool, used: set[str]
) -> Any:
    """The job's blend as normalised :class:`StyleUse` s, or :data:`_BAD` after reporting."""
    parsed = where.read("style", _as_blend, value)
    if parsed is _BAD:
        return _BAD
    blend, issues = parsed
    if issues:
        where.error("style", "; ".join(issues))
    used.update(style_id for style_id, _ in blend)
    undeclared = [style_id for style_id, _ in blend if style_id not in styles]
    for style_id in undeclared if styles_known else ():
        where.error("style", f"style '{style_id}' is not declared in [[styles]]{_suggest(style_id, styles)}")
    if issues or undeclared or any(styles[style_id] is None for style_id, _ in blend):
        return _BAD
    for style_id, weight in blend:
        if weight == 0:
            where.warning("style", f"style '{style_id}' has weight 0 and is left out of the blend")
    total = sum(weight for _, weight in blend)
    return tuple(StyleUse(styles[s], w / total) for s, w in blend if w > 0)  # type: ignore[arg-type]


# --- settings -------------------------------------------------------------------------------


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


# --- jobs -----------------------------------------------------------------------------------

_FIELD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "repeat": _as_repeat,
    "size": _as_size_px,
    "size_cm": _as_size_cm,
    "dpi": _as_dpi,
    "seed": _as_seed,
}


def _job_fields(where: _Where, table: Mapping[str, Any]) -> dict[str, Any]:
    """repeat / size / size_cm / dpi / seed present in one layer (defaults or a job), parsed."""
    parsed = {name: where.read(name, parse, table[name]) for name, parse in _FIELD_PARSERS.items() if name in table}
    if "size" in table and "size_cm" in table:
        where.error("size_cm", "give size (pixels) or size_cm (centimetres), not both")
        parsed["size"] = _BAD
    return parsed


def _merge_fields(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A job's own fields over the defaults; a job's size or size_cm replaces both default sizes."""
    base = dict(defaults)
    if "size" in own or "size_cm" in own:
        base.pop("size", None)
        base.pop("size_cm", None)
    return {**base, **own}


def _fit(value: float, even: bool) -> int:
    """Round a derived side to a whole pixel count, even when the repeat needs it (halves go up)."""
    if even:
        return max(2, 2 * math.floor(value / 2 + 0.5))
    return max(1, math.floor(value + 0.5))


def _output_size(
    size: _Size | None, repeat: Repeat, dpi: int, design_size: tuple[int, int] | None
) -> tuple[int, int]:
    """Output W x H: sides given in pixels are kept (or refused); derived sides are rounded to fit.

    Raises :class:`GeometryError` when a given pixel size cannot carry the repeat.
    """
    even_w, even_h = repeat is Repeat.BRICK, repeat is Repeat.HALF_DROP
    scale = 1.0 if size is None or size.in_pixels else dpi / 2.54
    if size is not None and size.exact is not None:
        width, height = (v * scale for v in size.exact)
        explicit = (size.in_pixels, size.in_pixels)
    else:
        assert design_size is not None
        width, height = map(float, design_size)
        explicit = (False, False)
        if size is not None and size.long is not None:
            factor = size.long * scale / max(width, height)
            width, height = width * factor, height * factor
            explicit = (width >= height and size.in_pixels, height > width and size.in_pixels)
    final_w = round(width) if explicit[0] else _fit(width, even_w)
    final_h = round(height) if explicit[1] else _fit(height, even_h)
    check_size(repeat, final_w, final_h)
    return final_w, final_h


def _limit_problems(width: int, height: int, limits: Limits) -> list[str]:
    problems = []
    if width * height > limits.max_output_pixels:
        problems.append(
            f"output {width}x{height} is {width * height / 1e6:.0f} MP, above the limit of "
            f"{limits.max_output_pixels / 1e6:.0f} MP (raise max_output_pixels in [limits] if this is intended)"
        )
    if min(width, height) < limits.min_output_side:
        problems.append(
            f"output {width}x{height} is too small: each side needs at least {limits.min_output_side} px "
            "(min_output_side in [limits])"
        )
    if max(width, height) / min(width, height) > limits.max_aspect_ratio:
        problems.append(
            f"output {width}x{height} has an aspect ratio of {max(width, height) / min(width, height):.1f}:1, "
            f"above max_aspect_ratio = {limits.max_aspect_ratio:g} in [limits]"
        )
    return problems


def _job_size(ctx: _Context, where: _Where, fields: Mapping[str, Any], design_size: Any) -> Any:
    """(width, height) of a job, or :data:`_BAD` after reporting."""
    size: _Size | None = fields.get("size") or fields.get("size_cm")
    field_name = size.field if size else "size"
    prefix = "" if size else f"no size given, so the design's own {design_size[0]}x{design_size[1]} is used: "
    try:
        repeat, dpi = fields.get("repeat", DEFAULT_REPEAT), fields.get("dpi", DEFAULT_DPI)
        width, height = _output_size(size, repeat, dpi, design_size)
    except GeometryError as error:
        where.error(field_name, f"{prefix}{error}")
        return _BAD
    problems = _limit_problems(width, height, ctx.limits)
    for message in problems:
        where.error(field_name, f"{prefix}{message}")
    return _BAD if problems else (width, height)


@dataclass
class _Jobs:
    """Jobs being built, with what cross-job checks need."""

    styles: Mapping[str, StyleRef | None]
    styles_known: bool
    defaults: dict[str, Any]
    settings: _SettingsStack
    used_styles: set[str] = field(default_factory=set)
    first_seen: dict[str, str] = field(default_factory=dict)
    built: list[JobSpec] = field(default_factory=list)
    places: dict[str, _Where] = field(default_factory=dict)


def _build_job(ctx: _Context, jobs: _Jobs, row: _Row) -> None:
    """Validate one job entry; append a :class:`JobSpec` when all of it is valid."""
    raw_id = row.entry.get("id")
    first = jobs.first_seen.get(raw_id.strip()) if isinstance(raw_id, str) else None
    item = _item(row.label, raw_id)
    where = _Where(row.file, f"{item} ({row.label})" if first and item.startswith("job") else item, ctx.sink)
    _check_keys(where, row.entry, _JOB_KEYS)
    job_id = where.read("id", _as_job_id, raw_id)
    if first and job_id is not _BAD:
        where.error("id", f"duplicate job id '{job_id}' (first used by {first})")
        job_id = _BAD
    elif job_id is not _BAD:
        jobs.first_seen[job_id] = row.source if row.label.startswith("row") else row.label
    fields = _merge_fields(jobs.defaults, _job_fields(where, row.entry))
    size = fields.get("size") or fields.get("size_cm")
    need_size = size is None or (size is not _BAD and size.long is not None)
    design = ctx.image(where, "design", row.entry.get("design"), row.base, need_size)
    uses = _style_uses(where, row.entry.get("style"), jobs.styles, jobs.styles_known, jobs.used_styles)
    settings = jobs.settings.for_job(where, _settings_layer(row.entry))
    if design is _BAD or any(v is _BAD for v in fields.values()):
        return
    dims = _job_size(ctx, where, fields, design[1])
    if any(v is _BAD for v in (job_id, uses, settings, dims)):
        return
    jobs.places[job_id] = where
    jobs.built.append(
        JobSpec(
            id=job_id,
            design=design[0],
            styles=uses,
            repeat=fields.get("repeat", DEFAULT_REPEAT),
            width=dims[0],
            height=dims[1],
            dpi=fields.get("dpi", DEFAULT_DPI),
            seed=fields.get("seed", DEFAULT_SEED),
            settings=settings,
            entry=_json_safe(row.written),
            source=row.source,
        )
    )


def _toml_rows(ctx: _Context, value: Any) -> list[_Row]:
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


# --- the whole manifest ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Top:
    """The TOML side of a manifest: the manifest itself, or the styles.toml beside a CSV catalogue."""

    tables: dict[str, Any]
    file: str  # as displayed in problems
    read: bool  # False when the file is missing or malformed (already reported)
    catalogue: Path | None  # CSV file the jobs come from, if any

    @property
    def defaults(self) -> dict[str, Any]:
        value = self.tables.get("defaults", {})
        return value if isinstance(value, dict) else {}


def _read_top(path: Path, ctx: _Context) -> _Top:
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
            f"file not found: a CSV catalogue takes its [[styles]] (and [defaults], [limits], profile) from "
            f"{CSV_STYLES_FILE} beside it",
        )
        return _Top({}, str(styles_file), False, path)
    tables = _read_toml(styles_file, where)
    if tables and "catalogue" in tables:
        where.error("catalogue", f"not allowed in the {CSV_STYLES_FILE} beside a CSV catalogue (the CSV is it)")
    return _Top(tables or {}, str(styles_file), tables is not None, path)


def _check_tables(ctx: _Context, top: _Top) -> None:
    """Top-level keys and the shapes of [defaults] and [limits]."""
    where = ctx.where(None, top.file)
    _check_keys(where, top.tables, TOP_LEVEL_FIELDS)
    for name in ("defaults", "limits"):
        if not isinstance(top.tables.get(name, {}), dict):
            where.error(name, f"must be a table: write [{name}]")
    refused = {k: "cannot be a default: give it on each job" for k in PER_JOB_FIELDS}
    _check_keys(ctx.where("[defaults]", top.file), top.defaults, _DEFAULT_KEYS, refused)


def _read_limits(where: _Where, table: Any) -> Limits:
    if not isinstance(table, dict):
        return Limits()
    names = Limits.__dataclass_fields__
    _check_keys(where, table, names)
    values = {name: where.read(name, _as_limit(name), table[name]) for name in names if name in table}
    return Limits(**{k: v for k, v in values.items() if v is not _BAD})


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
    sink: list[Problem] = []
    ctx = _Context(str(path), path.parent.resolve(), allow_outside_root, check_images, Limits(), sink)
    top = _read_top(path, ctx)
    _check_tables(ctx, top)
    ctx.limits = _read_limits(ctx.where("[limits]", top.file), top.tables.get("limits", {}))
    styles = _read_styles(ctx, top.file, top.tables.get("styles", []))
    jobs = _Jobs(
        styles=styles,
        styles_known=top.read,
        defaults=_job_fields(ctx.where("[defaults]", top.file), top.defaults),
        settings=_settings_stack(ctx, top, cli_settings, profile, config),
    )
    rows = _toml_rows(ctx, top.tables.get("jobs", []))
    if top.catalogue is not None:
        display = str(path) if top.catalogue == path else _display(top.catalogue)
        rows += _read_catalogue(top.catalogue, display, sink)
    for row in rows:
        _build_job(ctx, jobs, row)
    if not rows and top.read:
        ctx.where(None).error("jobs", "the manifest has no jobs: add [[jobs]] entries or a catalogue")
    for style_id in styles.keys() - jobs.used_styles:
        ctx.where(f"style '{style_id}'", top.file).warning(None, "declared but not used by any job")
    valid_styles = {k: v for k, v in styles.items() if v is not None}
    manifest = Manifest(path, ctx.root, valid_styles, tuple(jobs.built), ctx.limits)
    return _Loaded(manifest, sink, jobs.places, top.file)


# --- validation extras: pixels --------------------------------------------------------------


def _inspect_size(width: int, height: int, repeat: Repeat) -> tuple[int, int]:
    """The job's shape at most :data:`INSPECT_SIDE` px long, still honouring the repeat."""
    scale = min(1.0, INSPECT_SIDE / max(width, height))
    return _fit(width * scale, repeat is Repeat.BRICK), _fit(height * scale, repeat is Repeat.HALF_DROP)


def _seam_ratio(design: np.ndarray, job: JobSpec) -> float | None:
    """The design's seam ratio as the pipeline will see it (resized to the job's shape); None if unavailable."""
    try:
        from pipeline.repeat.analysis import design_seam_ratio
    except ImportError:
        return None
    from PIL import Image

    shape = _inspect_size(job.width, job.height, job.repeat)
    resized = np.asarray(Image.fromarray(design).resize(shape, Image.Resampling.LANCZOS))
    return float(design_seam_ratio(resized, job.repeat))


def _inspect_images(loaded: _Loaded) -> list[Problem]:
    """Decode every image once (reduced) to catch truncated files; warn about non-seamless designs."""
    sink: list[Problem] = []
    max_pixels = loaded.manifest.limits.max_input_pixels
    decoded: dict[Path, np.ndarray | ImageError] = {}

    def decode(path: Path) -> np.ndarray | ImageError:
        if path not in decoded:
            try:
                decoded[path] = load_rgb(path, max_pixels=max_pixels, max_side=INSPECT_SIDE)
            except ImageError as error:
                decoded[path] = error
        return decoded[path]

    for style_id, style in loaded.manifest.styles.items():
        if isinstance(result := decode(style.path), ImageError):
            _Where(loaded.style_file, f"style '{style_id}'", sink).error("path", result.reason)
    for job in loaded.manifest.jobs:
        where = _Where(loaded.job_places[job.id].file, loaded.job_places[job.id].item, sink)
        design = decode(job.design)
        if isinstance(design, ImageError):
            where.error("design", design.reason)
            continue
        ratio = _seam_ratio(design, job)
        if ratio is not None and ratio > SEAM_WARNING_RATIO:
            where.warning(
                "design",
                f"design {job.design.name} is not a seamless {job.repeat.value} repeat (seam ratio {ratio:.1f}); "
                "the output will be seamless, but motifs cut by the edge stay cut",
            )
    return sink

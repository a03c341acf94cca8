"""What every check of one manifest shares: its folder, its limits, how strict to be, and the files it names.

A manifest names files relative to itself and may be asked to stay inside its folder; every
path (designs, styles, the catalogue) is resolved here, by one rule, and every image header
is read here once per file under the manifest's ``max_input_pixels``. The checks elsewhere
receive a :class:`_Context` instead of a handful of loose arguments.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ImageError, Problem
from pipeline.manifest.images import image_size
from pipeline.manifest.problems import _BAD, _file_problem, _Invalid, _Where
from pipeline.manifest.specs import Limits
from pipeline.manifest.values import _as_text


class _Headers:
    """Image header sizes, read once per file; an unreadable file keeps its error."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._cache: dict[Path, tuple[int, int] | ImageError] = {}

    def size(self, path: Path) -> tuple[int, int]:
        """(width, height) from the header, or the file's :class:`ImageError` (raised again each time)."""
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
    #: crop_to_repeat decisions by (design, mode, repeat): a design several jobs use is searched once
    tile_choices: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @property
    def headers(self) -> _Headers:
        """The header cache for the current ``max_input_pixels`` (a new one once ``[limits]`` is read)."""
        if self._headers is None or self._headers.max_pixels != self.limits.max_input_pixels:
            self._headers = _Headers(self.limits.max_input_pixels)
        return self._headers

    def where(self, item: str | None, file: str | None = None) -> _Where:
        """A place in the manifest (or in ``file``) that belongs to no job."""
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
            where.error(field_name, _file_problem(value, error.reason))
            return _BAD

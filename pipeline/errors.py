"""Error types that carry enough context (file, job, field) for a clear one-line message.

Every error a user can cause derives from :class:`WeftError`; the CLI prints it without a
traceback and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class WeftError(Exception):
    """A problem the user can fix; its message is shown as is."""


@dataclass(frozen=True)
class Problem:
    """One finding of validation: where it is (file, job or style id, field) and what is wrong.

    ``item`` names the place for people and is only for display; ``job`` is the id of the job
    the problem belongs to (as written), for code that must know which job to fail.
    """

    file: str
    message: str
    item: str | None = None  # "job 'rose-1'" / "style 'wave'" / "row 7"
    field: str | None = None
    severity: str = "error"  # "error" or "warning"
    job: str | None = None  # "rose-1" when the problem is one job's, else None

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.item, self.field and f"field '{self.field}'") if part)
        return f"{where}: {self.message}"


class ManifestError(WeftError):
    """The manifest (or a file it names) is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if p.severity == "error"]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the manifest:\n{lines}")


class ImageError(WeftError):
    """An input image cannot be used; names the file and why."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class GeometryError(WeftError):
    """A size that a repeat type cannot honour; the message says which size would work."""


class ConfigError(WeftError):
    """A settings profile or config file is invalid or missing."""


class StoreError(WeftError):
    """The zarr store cannot be used as asked (locked, unwritable, not a weft store)."""


class ClusterError(WeftError):
    """Workers cannot be had: the batch system refused the jobs, or none arrived in time."""


class SubmissionError(ClusterError):
    """``sbatch``/``qsub`` refused (or never answered) a worker job; carries the batch system's own message."""

"""Small manifests for tests: two declared styles, a job entry, and the checks every manifest test makes.

Shared by the manifest, image, profile and policy tests; the ``ws`` folder they write into is a
fixture in ``conftest.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.errors import ManifestError, Problem
from pipeline.manifest.load import load_manifest, validate_manifest
from pipeline.manifest.specs import JobSpec

STYLES = """
[[styles]]
id = "wave"
path = "styles/wave.png"
license = "Public domain (CC0)"
attribution = "Katsushika Hokusai, The Great Wave"

[[styles]]
id = "kiss"
path = "styles/kiss.png"
license = "Public domain"
attribution = "Gustav Klimt, The Kiss"
"""


def manifest(folder: Path, body: str, *, styles: bool = True, name: str = "m.toml") -> Path:
    """Write a manifest: ``body`` first (top-level keys must precede tables), then the two styles."""
    path = folder / name
    path.write_text(textwrap.dedent(body) + (STYLES if styles else ""))
    return path


def job(extra: str = "", *, job_id: str = "j", design: str = "designs/rose.png", style: str = '"wave"') -> str:
    return f'\n[[jobs]]\nid = "{job_id}"\ndesign = "{design}"\nstyle = {style}\n{textwrap.dedent(extra)}\n'


def errors(path: Path, **kwargs) -> list[Problem]:
    return [p for p in validate_manifest(path, **kwargs) if p.severity == "error"]


def only_error(path: Path, *, item: str | None, field: str | None, contains: str, **kwargs) -> Problem:
    """The manifest has exactly one error, at this item and field, saying this."""
    found = errors(path, **kwargs)
    assert len(found) == 1, "\n".join(map(str, found))
    problem = found[0]
    assert (problem.item, problem.field) == (item, field), str(problem)
    assert contains in problem.message, str(problem)
    assert problem.file == str(path)
    with pytest.raises(ManifestError) as info:
        load_manifest(path, **kwargs)
    assert info.value.problems == found
    return problem


def load_one(path: Path, **kwargs) -> JobSpec:
    jobs = load_manifest(path, **kwargs).jobs
    assert len(jobs) == 1
    return jobs[0]

"""What importing a module pulls in, and how the test modules share their helpers.

Planning (``weft run --dry-run``, ``weft validate``) and the CLI's start-up must stay quick on a
login node: they must not import torch (seconds, gigabytes) or zarr. Each import is checked in a
fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HEAVY = ("torch", "zarr")


def imported_by(module: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after ``import module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("module", "forbidden"), [("pipeline.run.plan", HEAVY), ("pipeline.cli", ("torch",))])
def test_planning_and_the_cli_do_not_import_torch(module: str, forbidden: tuple[str, ...]) -> None:
    loaded = imported_by(module)
    assert "pipeline" in loaded  # the probe itself works: the module was imported
    assert sorted(set(forbidden) & loaded) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a module that does import torch and zarr is caught."""
    assert set(HEAVY) <= imported_by("pipeline.run.store") | imported_by("pipeline.engine.device")


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in conftest.py fixtures or helper modules, never in a ``test_*.py``."""
    tests = {path.stem for path in TESTS.glob("test_*.py")}
    found = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.name}:{node.lineno} imports {name}" for name in names if name.split(".")[0] in tests]
    assert found == []

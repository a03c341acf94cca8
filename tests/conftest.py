"""Shared fixtures: small, generic helpers to make real files in ``tmp_path``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ImageFactory = Callable[..., Path]

#: Where the project's shared data set is looked for: $WEFT_SHARED_DATA, else beside the checkout.
SHARED_DATA = [Path(os.environ["WEFT_SHARED_DATA"])] if os.environ.get("WEFT_SHARED_DATA") else []
SHARED_DATA.append(Path(__file__).resolve().parents[2] / "shared" / "data")


def in_ci() -> bool:
    """True where the environment says CI (``CI=true``, as GitHub Actions, GitLab and most runners set)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data set (``designs/``, ``styles/``, ``SOURCES.tsv``).

    Missing, the tests that need it are skipped with the reason (``pytest -ra`` lists them), except
    in CI, where it is always beside the checkout: there a missing data set fails them.
    """
    for folder in SHARED_DATA:
        if (folder / "designs").is_dir():
            return folder
    reason = f"shared data set not found (looked in {', '.join(map(str, SHARED_DATA))}; set WEFT_SHARED_DATA)"
    if in_ci():
        pytest.fail(f"{reason}: CI must have it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def make_image(tmp_path: Path) -> ImageFactory:
    """Write an image file and return its path.

    ``make_image("a.png", (w, h))`` writes a deterministic RGB gradient; pass ``pixels=``
    (an array) or ``color=`` for exact content and ``mode=`` to convert before saving.
    Extra keyword arguments go to ``Image.save`` (``quality=``, ``exif=``...).
    """

    def make(
        name: str,
        size: tuple[int, int] = (64, 48),
        *,
        pixels: np.ndarray | None = None,
        color: Any = None,
        mode: str | None = None,
        **save: Any,
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if pixels is not None:
            image = Image.fromarray(pixels)
        elif color is not None:
            image = Image.new(mode or "RGB", size, color)
        else:
            w, h = size
            x, y = np.meshgrid(np.arange(w), np.arange(h))
            rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
            image = Image.fromarray(rgb.astype(np.uint8))
        if mode is not None and image.mode != mode:
            image = image.convert(mode)
        image.save(path, **save)
        return path

    return make


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """(manifest, store, RunResult) of one uninterrupted ``weft run`` of pipeline_helpers.JOBS.

    Shared by every end-to-end test of the session (tests/test_pipeline.py, tests/test_reliability.py):
    runs that are killed, interrupted or starved of disk must end byte-identical to it. Read it, never
    write into it (copy the store first).
    """
    from pipeline_helpers import JOBS, run, write_manifest

    folder = tmp_path_factory.mktemp("baseline")
    manifest = write_manifest(folder, JOBS)
    store = folder / "out.zarr"
    return manifest, store, run(manifest, store)


@pytest.fixture
def ws(tmp_path: Path, make_image) -> Path:
    """A folder with a 120x90 design, a 90x121 portrait design and two styles."""
    make_image("designs/rose.png", (120, 90))
    make_image("designs/tall.png", (90, 121))
    make_image("styles/wave.png", (64, 64))
    make_image("styles/kiss.png", (48, 64))
    return tmp_path

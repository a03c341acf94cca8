"""The pixel checks only ``weft validate`` makes: decoding every image, and the designs' seams.

Loading a manifest reads image headers only, so a truncated file would fail its job in the
middle of a run. Validation decodes each image once, reduced to :data:`INSPECT_SIDE` px, to
find such files now, and warns about designs that are not seamless under their repeat (the
output will be seamless, but motifs cut by the design's edge stay cut).

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.errors import ImageError, Problem
from pipeline.manifest.images import load_rgb
from pipeline.manifest.problems import _file_problem, _Where
from pipeline.manifest.sizing import _fit_sides
from pipeline.manifest.specs import JobSpec, Manifest
from pipeline.repeat.analysis import design_seam_ratio
from pipeline.repeat.extract import TileFinding
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import WARN_ABOVE

#: Long side (px) at which validation looks at a design's pixels (seam ratio, decodability).
INSPECT_SIDE = 1024


def _inspect_size(width: int, height: int, repeat: Repeat) -> tuple[int, int]:
    """The job's shape at most :data:`INSPECT_SIDE` px long, still honouring the repeat."""
    scale = min(1.0, INSPECT_SIDE / max(width, height))
    return _fit_sides(repeat, width * scale, height * scale)


def _seam_ratio(design: np.ndarray, job: JobSpec) -> float:
    """The design's seam ratio as the pipeline will see it (resized to the job's shape)."""
    shape = _inspect_size(job.width, job.height, job.repeat)
    resized = np.asarray(Image.fromarray(design).resize(shape, Image.Resampling.LANCZOS))
    return float(design_seam_ratio(resized, job.repeat))


def _inspect_images(manifest: Manifest, job_places: Mapping[str, _Where], style_file: str) -> list[Problem]:
    """Decode every image once (reduced) to catch truncated files; warn about non-seamless designs.

    ``job_places`` says where each job was written and ``style_file`` where the styles were, so
    these problems name the same places as the loading ones.
    """
    sink: list[Problem] = []
    max_pixels = manifest.limits.max_input_pixels
    decoded: dict[Path, np.ndarray | ImageError] = {}

    def decode(path: Path) -> np.ndarray | ImageError:
        if path not in decoded:
            try:
                decoded[path] = load_rgb(path, max_pixels=max_pixels, max_side=INSPECT_SIDE)
            except ImageError as error:
                decoded[path] = error
        return decoded[path]

    for style_id, style in manifest.styles.items():
        if isinstance(result := decode(style.path), ImageError):
            shown = style.path.relative_to(manifest.root) if style.path.is_relative_to(manifest.root) else style.path
            _Where(style_file, f"style '{style_id}'", sink).error("path", _file_problem(shown, result.reason))
    for job in manifest.jobs:
        where = dataclasses.replace(job_places[job.id], sink=sink)
        design = decode(job.design)
        if isinstance(design, ImageError):
            where.error("design", _file_problem(job.entry.get("design", job.design), design.reason))
            continue
        if isinstance(job.tile, TileFinding):
            continue  # the job uses the tile cut on the photo's lattice, whose seam the search measured
        ratio = _seam_ratio(design, job)
        if ratio > WARN_ABOVE:
            where.warning(
                "design",
                f"design {job.design.name} is not a seamless {job.repeat.value} repeat (seam ratio {ratio:.1f}); "
                "the output will be seamless, but motifs cut by the edge stay cut",
            )
    return sink

"""What a job records about itself: its manifest entry, inputs with hashes, settings, versions, device.

Written into the job's attributes when it starts; export and the report read it back, so a
print file can say exactly what made it.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import ENGINE_VERSION, __version__
from pipeline.run.cluster import ClusterInfo
from pipeline.run.plan import JobPlan, Plan, layout_record
from pipeline.run.tile_sizing import job_budget


def job_provenance(job: JobPlan, info: ClusterInfo, plan: Plan) -> dict[str, Any]:
    """The job's attributes at start: entry, inputs and their hashes, settings, weights, versions, device,
    and the manifest's licence policy (``None`` without one; not part of the job key)."""
    import dask
    import torch
    import zarr

    spec = job.spec
    assert job.design is not None
    return {
        "manifest_entry": spec.entry,
        "manifest_source": spec.source,
        "settings": spec.settings.model_dump(mode="json"),
        "settings_digest": spec.settings.digest(),
        "repeat": spec.repeat.value,
        "width": spec.width,
        "height": spec.height,
        "dpi": spec.dpi,
        "seed": spec.seed,
        # what crop_to_repeat found in a photographed design: lattice, type, rotation, crop, confidence
        "design_tile": spec.tile.record() if spec.tile is not None else None,
        "inputs": {
            "design": {"path": job.design.path, "sha256": job.design.sha256},
            "styles": [
                {
                    "id": use.style.id,
                    "path": source.path,
                    "sha256": source.sha256,
                    "weight": use.weight,
                    "license": use.style.license,
                    "attribution": use.style.attribution,
                    "notes": use.style.notes,
                }
                for use, source in zip(spec.styles, job.styles)
            ],
        },
        "weights": {"source": spec.settings.weights, "sha256": job.weights_sha256},
        "engine_version": ENGINE_VERSION,
        "versions": {
            "weft": __version__,
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "dask": dask.__version__,
            "python": platform.python_version(),
        },
        "device": info.device,
        "policy": plan.manifest.policy.record() if plan.manifest.policy is not None else None,
        "engine": spec.settings.engine,
        "model": None if job.model is None else {"id": job.model.id, "key": job.model.key},
        "colourways": [{"name": way.name, "colors": list(way.colors)} for way in spec.colourways],
        "regions": _regions_record(job),
        "variant": None if spec.variant_of is None else {"of": spec.variant_of, "sets": dict(spec.variant)},
        "levels_plan": [
            {**layout, "iterations": lv.iterations, "feedforward": lv.inferred, "halo_overhead": lv.halo_overhead}
            for layout, lv in zip(layout_record(job.levels), job.levels)
        ],
        "tile_budget": str(job_budget(spec.settings, plan.worker_memory))
        if spec.settings.tile_size == "auto" else None,  # fmt: skip
    }


def _regions_record(job: JobPlan) -> dict[str, Any] | None:
    """Which style went where (styles by region), and the mask that says where; None for one style everywhere."""
    spec = job.spec
    if not spec.regions:
        return None
    return {
        "mask": "auto" if job.mask is None else job.mask.path,
        "mask_sha256": None if job.mask is None else job.mask.sha256,
        "regions": [
            {"label": region.label, "styles": "keep" if not region.uses else
             [{"id": use.style.id, "weight": use.weight} for use in region.uses]}
            for region in spec.regions
        ],  # fmt: skip
    }


def input_thumbnails(job: JobPlan, max_pixels: int) -> dict[str, np.ndarray]:
    """The design and each style as decoded, for the store's thumbnails (a broken file fails the job here)."""
    from pipeline.manifest.images import load_rgb

    images = {"design": load_rgb(Path(job.spec.design), max_pixels=max_pixels, job=job.id, field="design")}
    for index, use in enumerate(job.spec.styles):
        images[f"style-{index}"] = load_rgb(use.style.path, max_pixels=max_pixels, job=job.id, field="style")
    return images

"""A job's separation in the store: ``jobs/<id>/separation`` (the index map, its inks, its colourways).

The separation is keyed like a job (:func:`pipeline.deliver.separate.separation_key`: the
image's job key and the separation settings), so asking again with the same settings reuses
it and changed settings recompute it; the image itself is never touched. The palette and the
colourways are also written into the job's attributes (``separation``), so provenance and
every exported file carry them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.colour import parse_hex
from pipeline.conventions import DEFAULT_DPI
from pipeline.deliver.separate import Ink, Separation, recolour, separate_image, separation_key, separation_record
from pipeline.errors import WeftError
from pipeline.manifest.images import load_rgb
from pipeline.run.store import is_finished, job_group, job_info, open_store

GROUP = "separation"


def requested_settings(info: Mapping[str, Any], colors: int | None, palette: str | None,
                       min_area_mm2: float | None) -> dict[str, Any]:  # fmt: skip
    """The separation asked for: command-line values over the job's own settings (``colors``, ``palette``, ...)."""
    stored = info.get("settings") or {}
    chosen_palette = (palette if palette is not None else stored.get("palette") or "").strip()
    explicit = palette is not None and chosen_palette not in ("", "design")  # its length is the count
    chosen = {
        "colors": int(colors if colors is not None else 0 if explicit else stored.get("colors") or 0),
        "palette": chosen_palette,
        "min_area_mm2": float(min_area_mm2 if min_area_mm2 is not None else stored.get("min_area_mm2") or 0.0),
    }
    if not chosen["colors"] and chosen["palette"] in ("", "design"):
        raise WeftError(
            f"job {info.get('job_id')!r}: how many colours? Give --colors N (or --palette \"#hex,...\"), "
            "or set colors = N on the job"
        )
    return chosen


def stored_colourways(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The job's colourways as its provenance recorded them: [{name, colors: [hex ...]}]."""
    return [{"name": str(w["name"]), "colors": [str(c) for c in w["colors"]]} for w in info.get("colourways") or []]


def _design(info: Mapping[str, Any]) -> np.ndarray:
    """The job's design, from its recorded path (the colours to cluster for ``palette = "design"``)."""
    path = ((info.get("inputs") or {}).get("design") or {}).get("path")
    if not path or not Path(path).is_file():
        raise WeftError(f"job {info.get('job_id')!r}: its design {path!r} is not there to take a palette from")
    return load_rgb(Path(path))


def load_separation(store: Path, job_id: str) -> tuple[Separation, dict[str, Any]] | None:
    """The stored separation of a job and its record, or None."""
    group = job_group(open_store(store, "r"), job_id)
    if GROUP not in group:
        return None
    sep_group = group[GROUP]
    record = dict(sep_group.attrs.get("record") or {})
    inks = tuple(Ink(parse_hex(p["hex"]), float(p["coverage"])) for p in record.get("palette") or [])
    index = np.asarray(sep_group["index"][...])
    return Separation(index, inks, str(record.get("palette_from")), int(record.get("min_area_px") or 0)), record


def separate_job(
    store: Path, job_id: str, *, colors: int | None = None, palette: str | None = None,
    min_area_mm2: float | None = None,
) -> tuple[Separation, dict[str, Any]]:  # fmt: skip
    """The job's separation with these settings: reused from the store when its key matches, else made and stored."""
    root = open_store(store, "r")
    info = job_info(root, job_id)
    if not is_finished(info):
        raise WeftError(f"job {job_id!r} is not finished (status {info.get('status')}); nothing to separate")
    chosen = requested_settings(info, colors, palette, min_area_mm2)
    dpi = int(info.get("dpi") or DEFAULT_DPI)
    key = separation_key(str(info.get("job_key")), chosen["colors"], chosen["palette"], chosen["min_area_mm2"], dpi)
    stored = load_separation(store, job_id)
    if stored is not None and stored[1].get("key") == key:
        return stored
    image = job_group(root, job_id)["image"]
    design = _design(info) if chosen["palette"] == "design" else None
    sep = separate_image(image, info.get("repeat") or "block", chosen["colors"], palette=chosen["palette"],
                         design=design, min_area_mm2=chosen["min_area_mm2"], dpi=dpi)  # fmt: skip
    record = separation_record(sep, key, chosen)
    record["colourways"] = _checked_colourways(job_id, stored_colourways(info), len(sep.inks))
    _write(store, job_id, sep, record, chunks=tuple(image.chunks[:2]))
    return sep, record


def _checked_colourways(job_id: str, ways: list[dict[str, Any]], colors: int) -> list[dict[str, Any]]:
    """Colourways that fit this separation (one colour each); a mismatch is an error naming the job."""
    for way in ways:
        if len(way["colors"]) != colors:
            raise WeftError(
                f"job {job_id!r}: colourway '{way['name']}' has {len(way['colors'])} colours; "
                f"this separation has {colors}"
            )
    return ways


def _write(store: Path, job_id: str, sep: Separation, record: dict[str, Any], chunks: tuple[int, ...]) -> None:
    """Replace the job's separation group (index map, record) and note the record in the job's attributes."""
    group = job_group(open_store(store, "a"), job_id)
    if GROUP in group:
        del group[GROUP]
    sep_group = group.create_group(GROUP)
    array = sep_group.create_array("index", shape=sep.index.shape, chunks=chunks, dtype="uint8", fill_value=0,
                                   dimension_names=("y", "x"))  # fmt: skip
    for y0 in range(0, sep.index.shape[0], chunks[0]):  # a row of chunks at a time: zarr's buffers stay small
        array[y0 : y0 + chunks[0]] = sep.index[y0 : y0 + chunks[0]]
    sep_group.attrs["record"] = record
    group.attrs["separation"] = record


def colourway_image(sep: Separation, colourway: Mapping[str, Any]) -> np.ndarray:
    """The separation painted in a colourway's colours: (H, W, 3) uint8."""
    return recolour(sep.index, [parse_hex(c) for c in colourway["colors"]])

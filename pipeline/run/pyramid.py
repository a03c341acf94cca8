"""Downsampled pyramid of a finished job, with OME-NGFF 0.5 ``multiscales`` metadata.

``jobs/<id>/pyramid/`` holds levels ``0, 1, ...`` as (3, h, w) uint8 arrays (channel axis
first, as OME-NGFF orders axes: channel before space), each a 2x box (area) reduction of
the one before, until the long side is at most 256 px. Level 0 is the full-resolution tile
in that axis order, so standard viewers (napari-ome-zarr, ome-zarr-py) open the pyramid on
its own. Levels are written block by block from the previous level's chunks, so memory
stays at a few blocks whatever the image size; the metadata is written last, so a viewer
never sees a half-written pyramid as valid.

Physical units: one pixel of level 0 is ``2.54 / dpi`` cm, so viewers show real fabric size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from pipeline.conventions import DEFAULT_DPI
from pipeline.errors import StoreError
from pipeline.run.store import PathLike, job_group, job_info, open_store

MIN_SIDE = 256
CHUNK = 512


def box_reduce(block: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` box of an (h, w, c) uint8 block, rounded.

    Odd edges are padded by repeating the last row/column, so an edge box averages the
    pixels that exist (area resampling) instead of mixing in black.
    """
    if factor == 1:
        return block
    h, w = block.shape[:2]
    pad = ((0, -h % factor), (0, -w % factor)) + ((0, 0),) * (block.ndim - 2)
    padded = np.pad(block, pad, mode="edge") if any(p[1] for p in pad) else block
    hh, ww = padded.shape[0] // factor, padded.shape[1] // factor
    boxes = padded.reshape(hh, factor, ww, factor, *block.shape[2:]).astype(np.uint32)
    total = boxes.sum(axis=(1, 3))
    n = factor * factor
    return ((total + n // 2) // n).astype(np.uint8)


def reduce_array(array: Any, factor: int, *, channels_first: bool = False) -> np.ndarray:
    """Box-reduce a whole (zarr or numpy) image by an integer factor, reading it in row bands.

    Returns (h, w, 3). Bands are a whole number of chunks and of boxes tall, so each chunk is
    decoded once and only one band is held at a time.
    """
    height = array.shape[1] if channels_first else array.shape[0]
    chunk_rows = getattr(array, "chunks", (None, CHUNK))[1 if channels_first else 0] or CHUNK
    band = factor * max(1, math.ceil(chunk_rows / factor))
    parts = []
    for y0 in range(0, height, band):
        block = np.asarray(array[:, y0 : y0 + band] if channels_first else array[y0 : y0 + band])
        parts.append(box_reduce(block.transpose(1, 2, 0) if channels_first else block, factor))
    return np.concatenate(parts, axis=0)


def pyramid_shapes(height: int, width: int, min_side: int = MIN_SIDE) -> list[tuple[int, int]]:
    """(h, w) of every level: halving (rounding up) until the long side is <= ``min_side``."""
    shapes = [(height, width)]
    while max(shapes[-1]) > min_side:
        h, w = shapes[-1]
        shapes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return shapes


def ome_metadata(name: str, shapes: list[tuple[int, int]], pixel_cm: float) -> dict[str, Any]:
    """The ``ome`` attribute (OME-NGFF 0.5) of the pyramid group.

    Level k has scale ``pixel_cm * 2**k`` on y and x; its pixel centres sit half a box in,
    hence a translation of ``pixel_cm * (2**k - 1) / 2``. The channel axis has no unit.
    """
    datasets = []
    for k in range(len(shapes)):
        s = pixel_cm * 2**k
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [1.0, s, s]}]
        if k:
            t = pixel_cm * (2**k - 1) / 2
            transforms.append({"type": "translation", "translation": [0.0, t, t]})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    channel = [("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF")]
    return {
        "version": "0.5",
        "multiscales": [
            {
                "name": name,
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "centimeter"},
                    {"name": "x", "type": "space", "unit": "centimeter"},
                ],
                "datasets": datasets,
                "type": "mean",
                "metadata": {"description": "2x2 box (area) mean per level; odd edges replicate the last pixel"},
            }
        ],
        "omero": {
            "channels": [
                {"label": label, "color": color, "active": True,
                 "window": {"min": 0, "max": 255, "start": 0, "end": 255}}
                for label, color in channel
            ],  # fmt: skip
            "rdefs": {"model": "color"},
        },
    }


def _blocks(shape: tuple[int, int], chunk: int) -> list[tuple[int, int, int, int]]:
    h, w = shape
    return [(y, min(y + chunk, h), x, min(x + chunk, w)) for y in range(0, h, chunk) for x in range(0, w, chunk)]


def write_pyramid(
    store_path: PathLike, job_id: str, *, min_side: int = MIN_SIDE, chunk: int = CHUNK
) -> list[tuple[int, int]]:
    """(Re)write ``jobs/<job_id>/pyramid`` from the finished final image; returns the level shapes.

    Client-side, after the job's last chunk is stitched (it writes the job's attributes tree).
    """
    root = open_store(store_path, "a")
    info = job_info(root, job_id)
    if not info["progress"]["complete"]:
        raise StoreError(f"job {job_id!r} is not finished: its final image is incomplete, no pyramid written")
    group = job_group(root, job_id)
    image = group["image"]
    if "pyramid" in group:
        del group["pyramid"]
    pyramid = group.create_group("pyramid")
    shapes = pyramid_shapes(image.shape[0], image.shape[1], min_side)
    previous: zarr.Array | None = None
    for k, (h, w) in enumerate(shapes):
        level = pyramid.create_array(
            str(k), shape=(3, h, w), chunks=(3, min(chunk, h), min(chunk, w)), dtype="uint8", fill_value=0,
            compressors=[ZstdCodec(level=3)], dimension_names=("c", "y", "x"),
        )  # fmt: skip
        for y0, y1, x0, x1 in _blocks((h, w), chunk):
            if previous is None:
                block = np.asarray(image[y0:y1, x0:x1])
            else:
                source = np.asarray(previous[:, 2 * y0 : 2 * y1, 2 * x0 : 2 * x1]).transpose(1, 2, 0)
                block = box_reduce(source, 2)
            level[:, y0:y1, x0:x1] = block.transpose(2, 0, 1)
        previous = level
    dpi = info.get("dpi") or DEFAULT_DPI
    pyramid.attrs.update({"ome": ome_metadata(job_id, shapes, 2.54 / float(dpi))})
    return shapes


def has_pyramid(group: zarr.Group) -> bool:
    """True when a job group holds a complete pyramid (its metadata is written last)."""
    return "pyramid" in group and "ome" in group["pyramid"].attrs


def job_thumbnail(group: zarr.Group, long_side: int) -> np.ndarray:
    """A small (h, w, 3) view of a job's final image with long side about ``long_side`` (>=).

    Reads the smallest pyramid level that is still large enough when there is a pyramid,
    otherwise streams the full image through :func:`reduce_array`.
    """
    source, channels_first = group["image"], False
    if has_pyramid(group):
        for name in sorted(group["pyramid"].array_keys(), key=int):
            candidate = group[f"pyramid/{name}"]
            if max(candidate.shape[1:]) >= long_side:
                source, channels_first = candidate, True
    side = max(source.shape[1:] if channels_first else source.shape[:2])
    factor = max(1, side // long_side)
    return reduce_array(source, factor, channels_first=channels_first)

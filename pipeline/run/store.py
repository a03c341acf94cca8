"""The zarr v3 store: layout, provenance attributes and per-tile done maps (the run lock: :mod:`pipeline.run.lock`).

One store holds every job of a catalogue (``jobs/<job-id>/``). The run code prepares a job
on the client (:func:`prepare_job`), Dask workers in other processes write tiles and
stitched chunks through the path-based functions below (they open the store themselves,
nothing is pickled but a path), and ``weft status/export/report`` read the result.

Crash safety rests on two rules: every done flag is written strictly *after* the data it
vouches for, and no two tasks write the same chunk (hence done maps chunked (1, 1)).
zarr-python 3's ``LocalStore`` writes each chunk to a temporary file and renames it, so a
killed writer leaves the old chunk or the new one, never half of one. A job's ``job_key``
attribute is written last by :func:`prepare_job`, so a job whose preparation was
interrupted has no key and is recreated on the next run.

The layout is documented in ``docs/store.md``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import zarr
import zarr.errors
from zarr.codecs import ZstdCodec

from pipeline.conventions import STORED_STATUSES, JobStatus, is_valid_job_id
from pipeline.errors import StoreError
from pipeline.run.layout import LevelLayout

#: Version of the layout below; a store written by a newer weft is refused, not misread.
FORMAT = 1
#: Long side of the input thumbnails kept for the report.
THUMBNAIL_SIDE = 256

_IMAGE_CODEC = ZstdCodec(level=3)
_SCRATCH_CODEC = ZstdCodec(level=1)

PathLike = str | os.PathLike[str]


# --- layout ------------------------------------------------------------------------------




def _check_job_id(job_id: str) -> None:
    # Job ids become folder and file names: refuse anything that could escape them.
    if not is_valid_job_id(job_id):
        raise StoreError(
            f"invalid job id {job_id!r}: use letters, digits, '.', '_' and '-' (at most 128, not starting with . _ -)"
        )


# --- opening ----------------------------------------------------------------------------


def _read_root_meta(path: Path) -> dict[str, Any]:
    """The root zarr.json as data, or a StoreError saying why this is not a weft store."""
    if not path.is_dir():
        raise StoreError(f"{path} is not a weft store: it is a file, not a folder")
    meta_file = path / "zarr.json"
    if not meta_file.is_file():
        if (path / ".zgroup").exists() or (path / ".zarray").exists():
            raise StoreError(f"{path} is a zarr v2 store, not a weft store (weft writes zarr v3)")
        raise StoreError(f"{path} is not a weft store: it has no zarr.json")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise StoreError(f"cannot read store {path}: {error.strerror or error}") from None
    except ValueError:
        raise StoreError(f"{path} is not a weft store: its zarr.json is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("node_type") != "group" or meta.get("zarr_format") != 3:
        raise StoreError(f"{path} is not a weft store: its root is not a zarr v3 group")
    weft = (meta.get("attributes") or {}).get("weft")
    if not isinstance(weft, dict) or not isinstance(weft.get("format"), int):
        raise StoreError(f"{path} is a zarr store but not a weft store (no 'weft' attribute); choose another path")
    if weft["format"] > FORMAT:
        raise StoreError(
            f"{path} was written by a newer weft (store format {weft['format']}, this weft reads {FORMAT}); "
            "upgrade weft"
        )
    return meta


def open_store(path: PathLike, mode: str = "r") -> zarr.Group:
    """Open the root group of a weft store; ``mode="a"`` creates it (and its parents) if absent.

    Refuses (:class:`StoreError`) a missing store in ``"r"``, any folder that is not a weft store,
    and a location that cannot be written in ``"a"``, naming the path and the OS error.
    """
    if mode not in ("r", "a"):
        raise ValueError(f"mode must be 'r' or 'a', not {mode!r}")
    path = Path(path)
    if mode == "r":
        if not path.exists():
            raise StoreError(f"store {path} does not exist (`weft run MANIFEST --store {path}` creates it)")
        _read_root_meta(path)
        return _open_group(path, "r")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create store {path}: {error.strerror or error}") from None
    if any(path.iterdir()):  # an existing store, or a folder that must not be touched
        _read_root_meta(path)
        if not os.access(path, os.W_OK):
            read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
            reason = "its file system is mounted read-only" if read_only else "permission denied"
            raise StoreError(f"cannot write to store {path}: {reason}")
        return _open_group(path, "r+")
    try:
        return zarr.open_group(store=str(path), mode="w-", zarr_format=3, attributes={"weft": {"format": FORMAT}})
    except OSError as error:
        raise StoreError(f"cannot create store {path}: {error.strerror or error}") from None


def _open_group(path: Path, mode: str) -> zarr.Group:
    try:
        return zarr.open_group(store=str(path), mode=mode, zarr_format=3)
    except OSError as error:
        raise StoreError(f"cannot open store {path}: {error.strerror or error}") from None


def _as_root(root_or_path: zarr.Group | PathLike, mode: str = "r") -> zarr.Group:
    if isinstance(root_or_path, zarr.Group):
        return root_or_path
    return open_store(root_or_path, mode)


def _store_name(root: zarr.Group) -> str:
    return str(getattr(root.store, "root", root.store))


def job_group(root: zarr.Group | PathLike, job_id: str) -> zarr.Group:
    """The group of one job, or a StoreError naming the job and the jobs the store does hold."""
    root = _as_root(root)
    group = None
    if is_valid_job_id(job_id):
        try:
            group = root[f"jobs/{job_id}"]
        except KeyError:
            pass
    if not isinstance(group, zarr.Group):
        known = job_ids(root)
        listing = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") if known else "none"
        raise StoreError(f"unknown job {job_id!r} in store {_store_name(root)} (jobs: {listing})")
    return group


def job_ids(root: zarr.Group | PathLike) -> list[str]:
    """Ids of the jobs in the store, sorted."""
    root = _as_root(root)
    if "jobs" not in root:
        return []
    return sorted(name for name, _ in root["jobs"].groups())

















# --- attributes ----------------------------------------------------------------------------


def to_json(value: Any, where: str = "attrs") -> Any:
    """``value`` as plain JSON data (numpy scalars, paths, enums, datetimes converted; NaN -> None).

    Attributes are data, read back with ``json`` and never evaluated; anything else is refused.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return to_json(value.value, where)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (PurePath, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(items)]
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored as a JSON attribute")


# --- jobs ----------------------------------------------------------------------------------


def _create_uint8(group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], codec: Any,
                  dims: tuple[str, ...] | None = None, attributes: dict[str, Any] | None = None) -> zarr.Array:
    return group.create_array(
        name, shape=shape, chunks=chunks, dtype="uint8", fill_value=0,
        compressors=[codec] if codec is not None else None, dimension_names=dims, attributes=attributes or {},
    )  # fmt: skip


def _thumbnail(image: Any, name: str) -> np.ndarray:
    """An RGB uint8 array with long side <= THUMBNAIL_SIDE (shrunk with Pillow if larger)."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"thumbnail {name!r} must be uint8 (h, w, 3), got {array.dtype} {array.shape}")
    if max(array.shape[:2]) <= THUMBNAIL_SIDE:
        return array
    from PIL import Image

    picture = Image.fromarray(array)
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(picture)


def prepare_job(
    root: zarr.Group | PathLike,
    job_id: str,
    *,
    job_key: str,
    provenance: Mapping[str, Any],
    levels: list[LevelLayout],
    thumbnails: Mapping[str, Any],
    force: bool = False,
) -> bool:
    """Create (or keep, to resume) ``jobs/<job_id>``; True when it was (re)created empty.

    Same ``job_key`` and not ``force``: the job is left untouched (finished tiles are reused).
    A different key or ``force``: its arrays are deleted and recreated. The key is written
    last, so an interrupted preparation is redone rather than resumed. ``thumbnails`` maps
    ``"design"`` and ``"style-<i>"`` to RGB uint8 arrays (shrunk to 256 px if larger).
    The last of ``levels`` is the final ``image`` + ``done``.
    """
    _check_job_id(job_id)
    if not levels:
        raise ValueError("a job needs at least one level")
    indices = [level.index for level in levels]
    if indices != sorted(set(indices)):
        raise ValueError(f"level indices must be unique and increasing, got {indices}")
    for name in thumbnails:
        if name != "design" and not re.fullmatch(r"style-\d+", name):
            raise ValueError(f"thumbnail names are 'design' and 'style-<i>', not {name!r}")
    root = _as_root(root, "a")
    jobs = root.require_group("jobs")
    if job_id in jobs:
        if not force and jobs[job_id].attrs.get("job_key") == job_key:
            return False
        del jobs[job_id]
    group = jobs.create_group(job_id, attributes={"job_id": job_id, "job_key": None, "status": str(JobStatus.PENDING)})
    inputs = group.create_group("inputs")
    for name, image in thumbnails.items():
        thumb = _thumbnail(image, name)
        _create_uint8(inputs, name, thumb.shape, thumb.shape, None, ("y", "x", "c"))[...] = thumb
    final = levels[-1]
    for level in levels:
        folder = group.require_group("levels").require_group(str(level.index))
        if level.tiled:
            win = level.window
            _create_uint8(folder, "tiles", (level.rows, level.cols, win, win, 3), (1, 1, win, win, 3), _SCRATCH_CODEC,
                          ("row", "col", "y", "x", "c"))  # fmt: skip
            _create_uint8(folder, "tiles_done", (level.rows, level.cols), (1, 1), None, ("row", "col"))
        target = group if level is final else folder
        attrs = {"origin": list(level.origin), "scale": level.index}
        _create_uint8(target, "image", (level.height, level.width, 3), (level.core, level.core, 3), _IMAGE_CODEC,
                      ("y", "x", "c"), attrs)  # fmt: skip
        _create_uint8(target, "done", (level.rows, level.cols), (1, 1), None, ("row", "col"))
    attrs = to_json(dict(provenance), "provenance")
    attrs.update(
        job_id=job_id, status=str(JobStatus.PENDING), error=None, levels=[level.to_json() for level in levels],
        job_key=job_key,
    )
    group.attrs.update(attrs)
    return True


def set_job_status(
    root_or_path: zarr.Group | PathLike, job_id: str, status: JobStatus, *, error: str | None = None, **attrs: Any
) -> None:
    """Record a job's state (and any other provenance keys, e.g. ``timings``) in its attributes.

    Client-side only: attribute updates rewrite the job's zarr.json, which must have one writer.
    Each keyword replaces that key as a whole.
    """
    if status not in STORED_STATUSES:
        raise ValueError(f"status must be one of {', '.join(s for s in JobStatus if s.stored)}, not {status!r}")
    group = job_group(_as_root(root_or_path, "a"), job_id)
    group.attrs.update(to_json({**attrs, "status": str(status), "error": error}, f"job {job_id}"))


def record_failure(root_or_path: zarr.Group | PathLike, job_id: str, error: str, **attrs: Any) -> None:
    """Mark a job failed, creating an empty record when the store has never seen it.

    Used for jobs whose input is broken before any work starts: the store says why, and a job
    that finished in an earlier run keeps its arrays (nothing already done is lost).
    """
    _check_job_id(job_id)
    root = _as_root(root_or_path, "a")
    jobs = root.require_group("jobs")
    if job_id not in jobs:
        jobs.create_group(job_id, attributes=to_json({**attrs, "job_id": job_id, "job_key": None, "levels": []}))
    set_job_status(root, job_id, JobStatus.FAILED, error=error)


def job_layout(root_or_path: zarr.Group | PathLike, job_id: str) -> list[LevelLayout]:
    """The levels a job was prepared with."""
    group = job_group(root_or_path, job_id)
    return [LevelLayout.from_json(item) for item in group.attrs.get("levels", [])]


def job_info(root: zarr.Group | PathLike, job_id: str) -> dict[str, Any]:
    """Provenance attributes plus ``progress``: done/total per level and in all, and ``complete``.

    Progress counts tile windows on tiled levels and image chunks on whole-image levels;
    ``complete`` means every chunk of the final image is written.
    """
    group = job_group(root, job_id)
    info = dict(group.attrs)
    info["job_id"] = job_id  # the folder name is the truth
    layout = [LevelLayout.from_json(item) for item in info.get("levels", [])]
    per_level = []
    for position, level in enumerate(layout):
        final = position == len(layout) - 1
        folder = group[f"levels/{level.index}"]
        chunks = (group if final else folder)["done"][...]
        entry = {
            "index": level.index,
            "tiled": level.tiled,
            "chunks_done": int(np.count_nonzero(chunks)),
            "chunks_total": int(chunks.size),
        }
        if level.tiled:
            tiles = folder["tiles_done"][...]
            entry.update(tiles_done=int(np.count_nonzero(tiles)), tiles_total=int(tiles.size))
        else:
            entry.update(tiles_done=entry["chunks_done"], tiles_total=entry["chunks_total"])
        per_level.append(entry)
    last = per_level[-1] if per_level else {"chunks_done": 0, "chunks_total": 1}
    info["progress"] = {
        "levels": per_level,
        "tiles_done": sum(e["tiles_done"] for e in per_level),
        "tiles_total": sum(e["tiles_total"] for e in per_level),
        "complete": last["chunks_done"] == last["chunks_total"],
    }
    return info


def stored_jobs(path: PathLike) -> dict[str, dict[str, Any]]:
    """job id -> :func:`job_info` for every job already in the store (empty when there is no store yet)."""
    if not (Path(path) / "zarr.json").exists():
        return {}
    root = open_store(path, "r")
    return {job_id: job_info(root, job_id) for job_id in job_ids(root)}


def is_finished(info: Mapping[str, Any]) -> bool:
    """A job whose status is ``done`` and whose final image is fully written (exportable)."""
    return info.get("status") == JobStatus.DONE and bool(info.get("progress", {}).get("complete"))


# --- runs ----------------------------------------------------------------------------------

#: Run records kept in the root's ``runs`` attribute; beyond this the oldest are dropped (~3 years nightly).
MAX_RUNS = 1000


def record_run(root_or_path: zarr.Group | PathLike, record: Mapping[str, Any]) -> None:
    """Append one run's record (started, ended, host, command, counts, exit code) to the root's ``runs``.

    Client side, under the run lock: the root's zarr.json has one writer.
    """
    root = _as_root(root_or_path, "a")
    runs = [*run_records(root), to_json(dict(record), "run record")]
    root.attrs["runs"] = runs[-MAX_RUNS:]


def run_records(root_or_path: zarr.Group | PathLike) -> list[dict[str, Any]]:
    """The store's run records, oldest first (attributes are data: anything but a record is left out)."""
    runs = _as_root(root_or_path).attrs.get("runs")
    return [dict(run) for run in runs if isinstance(run, Mapping)] if isinstance(runs, list) else []


# --- tile and chunk I/O (called on workers: path in, nothing cached) ----------------------


def _array(store_path: PathLike, path: str, mode: str = "r") -> zarr.Array:
    try:
        return zarr.open_array(store=os.fspath(store_path), path=path, mode=mode, zarr_format=3)
    except zarr.errors.NodeNotFoundError:
        raise StoreError(f"store {store_path} has no array {path} (was the job prepared?)") from None


def _final_index(store_path: PathLike, job_id: str) -> int:
    group = zarr.open_group(store=os.fspath(store_path), path=f"jobs/{job_id}", mode="r", zarr_format=3)
    return int(group.attrs["levels"][-1]["index"])


def _image_path(store_path: PathLike, job_id: str, level: int | None, name: str) -> str:
    """Where a level's stitched ``image``/``done`` live: under ``levels/<k>/`` or, for the final level, the job."""
    if level is None or level == _final_index(store_path, job_id):
        return f"jobs/{job_id}/{name}"
    return f"jobs/{job_id}/levels/{level}/{name}"


def _check_shape(data: np.ndarray, expected: tuple[int, ...], what: str) -> np.ndarray:
    data = np.asarray(data)
    if data.shape != expected or data.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 {expected}, got {data.dtype} {data.shape}")
    return data


def write_tile_window(store_path: PathLike, job_id: str, level: int, row: int, col: int, window: np.ndarray) -> None:
    """Store one refined tile window (core +- overlap), then mark it done."""
    tiles = _array(store_path, f"jobs/{job_id}/levels/{level}/tiles", "r+")
    tiles[row, col] = _check_shape(window, tuple(tiles.shape[2:]), f"job {job_id} level {level} tile ({row}, {col})")
    _array(store_path, f"jobs/{job_id}/levels/{level}/tiles_done", "r+")[row, col] = 1


def read_tile_window(store_path: PathLike, job_id: str, level: int, row: int, col: int) -> np.ndarray:
    """One tile window as written by :func:`write_tile_window` (zeros if never written)."""
    return _array(store_path, f"jobs/{job_id}/levels/{level}/tiles")[row, col]


def tiles_done_map(store_path: PathLike, job_id: str, level: int) -> np.ndarray:
    """(rows, cols) bool map of the tile windows of a level that are fully written."""
    return _array(store_path, f"jobs/{job_id}/levels/{level}/tiles_done")[...].astype(bool)


def tile_done(store_path: PathLike, job_id: str, level: int, row: int, col: int) -> bool:
    return bool(_array(store_path, f"jobs/{job_id}/levels/{level}/tiles_done")[row, col])


def level_array(store_path: PathLike, job_id: str, level: int | None = None) -> zarr.Array:
    """The stitched image of a level (None: the final image), read-only; feed it to ``gather_window``."""
    return _array(store_path, _image_path(store_path, job_id, level, "image"))


def _write_chunk(image: zarr.Array, done: zarr.Array, row: int, col: int, data: np.ndarray, what: str) -> None:
    size = image.chunks[0]
    height, width = image.shape[:2]
    y0, x0 = row * size, col * size
    if not (0 <= y0 < height and 0 <= x0 < width):
        raise ValueError(f"{what}: chunk ({row}, {col}) is outside the {done.shape[0]} x {done.shape[1]} grid")
    y1, x1 = min(y0 + size, height), min(x0 + size, width)
    image[y0:y1, x0:x1] = _check_shape(data, (y1 - y0, x1 - x0, 3), f"{what} chunk ({row}, {col})")
    done[row, col] = 1


def write_chunk(store_path: PathLike, job_id: str, level: int, row: int, col: int, data: np.ndarray) -> None:
    """Store one stitched chunk of a level (the final ``image`` for the last level), then mark it done.

    ``data`` is the chunk's region, clipped at the right and bottom edges.
    """
    image = _array(store_path, _image_path(store_path, job_id, level, "image"), "r+")
    done = _array(store_path, _image_path(store_path, job_id, level, "done"), "r+")
    _write_chunk(image, done, row, col, data, f"job {job_id} level {level}")


def write_image(store_path: PathLike, job_id: str, level: int, data: np.ndarray) -> None:
    """Store a whole level (e.g. the coarse pass) chunk by chunk, each followed by its done flag."""
    image = _array(store_path, _image_path(store_path, job_id, level, "image"), "r+")
    done = _array(store_path, _image_path(store_path, job_id, level, "done"), "r+")
    data = _check_shape(data, tuple(image.shape), f"job {job_id} level {level} image")
    size = image.chunks[0]
    for row in range(done.shape[0]):
        for col in range(done.shape[1]):
            block = data[row * size : (row + 1) * size, col * size : (col + 1) * size]
            _write_chunk(image, done, row, col, block, f"job {job_id} level {level}")


def done_map(store_path: PathLike, job_id: str, level: int | None = None) -> np.ndarray:
    """(rows, cols) bool map of the written chunks of a level's image (None: the final image)."""
    return _array(store_path, _image_path(store_path, job_id, level, "done"))[...].astype(bool)


def chunk_done(store_path: PathLike, job_id: str, level: int | None, row: int, col: int) -> bool:
    return bool(_array(store_path, _image_path(store_path, job_id, level, "done"))[row, col])

"""What a Dask worker runs: style targets, the coarse pass, one tile, one stitched chunk; a training, a network pass.

Each task is a pure function of its arguments and the store's finished data: it reads what
it needs from the store by path, writes only its own chunks, then its done flag. So a task
gives the same bytes on any worker, in any order, resumed or not, and re-running a finished
task is a no-op. The model and decoded inputs are cached per worker process.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.run import store
from pipeline.repeat.extract import TileRecipe
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.tiles import Rect, TileGrid, feather_weights
from pipeline.engine.losses import StyleTargets, blend_targets
from pipeline.run.model_plan import ModelPlan
from pipeline.run.plan import LevelPlan
from pipeline.settings import Settings

#: The Dask event topic a training publishes its progress on (the client shows it: pipeline.run.execute).
TRAINING_TOPIC = "weft-training"
#: Seconds between two progress messages of one training (and one at every checkpoint and at the end).
TRAINING_PUBLISH_SECONDS = 2.0


@dataclass(frozen=True)
class JobContext:
    """What every task of one job needs; small and picklable (no pixels)."""

    store_path: str
    job_id: str
    repeat: Repeat
    width: int
    height: int
    seed: int
    settings: Settings
    design_path: str
    design_sha256: str
    style_weights: tuple[float, ...]
    max_input_pixels: int
    device: str
    threads: int
    design_tile: TileRecipe | None = None  # the tile cut from a photographed design (crop_to_repeat)
    mask: StyleSource | None = None  # the mask file of styles by region (None: none, or the automatic mask)
    region_colours: tuple[tuple[int, int, int] | None, ...] = ()  # per region: its colour in the mask file
    region_blends: tuple[tuple[tuple[int, float], ...], ...] = ()  # per region: (style index, weight); () = keep


@dataclass(frozen=True)
class StyleSource:
    """One style image by path and hash (the hash keys the worker cache and the shared targets)."""

    path: str
    sha256: str
    max_input_pixels: int


def targets_key(style: StyleSource, level_hw: tuple[int, int], settings: Settings, long_side: int | None = None) -> str:
    """Identity of a style's Gram targets at one output size: shared by every job that matches.

    ``long_side`` is the style's size under ``style_span_cm`` (it replaces ``style_scale``).
    """
    relevant: dict[str, Any] = {
        "style": style.sha256,
        "hw": list(level_hw),
        "layers": list(settings.style_layers),
        "style_scale": settings.style_scale,
        "style_max_size": settings.style_max_size,
        "precision": settings.precision,
        "weights": settings.weights,
        "pooling": settings.pooling,
        "threads": settings.tile_threads,
    }
    if long_side is not None:
        relevant = {**relevant, "style_scale": None, "long_side": long_side}
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
    return f"targets-{digest[:16]}"


# --- per-process state -------------------------------------------------------------------------

#: What this worker process has computed since it started, by task kind (skipped tasks not counted).
COMPUTED: Counter[str] = Counter()


def worker_stats() -> dict[str, Any]:
    """Run on each worker after a run: tasks computed, model loads and cache sizes (nothing grows per job)."""
    from pipeline.engine.vgg import get_model

    model = get_model.cache_info()
    return {
        "computed": dict(COMPUTED),
        "model_loads": model.misses,
        "models_cached": model.currsize,
        "inputs_cached": _rgb.cache_info().currsize,
    }


def peak_rss() -> int:
    """This process's peak resident memory in bytes (run on each worker)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prepare_torch(device: str, threads: int) -> Any:
    """Fix torch's thread count (results must not depend on the worker layout) and pick the device."""
    import torch

    from pipeline.engine.device import resolve_device

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return resolve_device(device)


@lru_cache(maxsize=8)
def _rgb(path: str, sha256: str, max_pixels: int) -> np.ndarray:
    """Decoded input image, cached per worker by content hash (sha256 makes a changed file a new entry)."""
    from pipeline.manifest.images import load_rgb

    image = load_rgb(Path(path), max_pixels=max_pixels)
    image.setflags(write=False)
    return image


def design_rgb(ctx: JobContext) -> np.ndarray:
    """The job's design as the engine sees it: the tile the manifest found in it, if any (cut, not searched)."""
    from pipeline.engine.whole import prepare_design

    if ctx.design_tile is None:
        design = _rgb(ctx.design_path, ctx.design_sha256, ctx.max_input_pixels)
        return prepare_design(design, ctx.repeat, ctx.settings)
    return _tile_rgb(ctx.design_path, ctx.design_sha256, ctx.max_input_pixels, ctx.design_tile)


@lru_cache(maxsize=4)
def _tile_rgb(path: str, sha256: str, max_pixels: int, tile: TileRecipe) -> np.ndarray:
    """A photographed design's tile, cut once per worker (every tile task of the job reads it)."""
    from pipeline.engine.whole import prepare_design
    from pipeline.settings import Settings

    design = prepare_design(_rgb(path, sha256, max_pixels), tile.repeat, Settings(), tile=tile)
    design.setflags(write=False)
    return design


def job_regions(ctx: JobContext) -> Any:
    """The job's regions as the engine takes them (:class:`pipeline.engine.regions.Regions`), or None."""
    if not ctx.region_blends:
        return None
    return _regions(ctx)


@lru_cache(maxsize=4)
def _regions(ctx: JobContext) -> Any:
    """Region planes at the design's resolution, built once per worker and job."""
    from pipeline.engine.regions import Regions, label_planes
    from pipeline.repeat.automask import auto_labels
    from pipeline.repeat.lattice import fit_to_repeat

    if ctx.mask is None:
        labels = auto_labels(design_rgb(ctx), ctx.repeat)
    else:
        rgb = fit_to_repeat(_rgb(ctx.mask.path, ctx.mask.sha256, ctx.mask.max_input_pixels), ctx.repeat)
        labels = np.full(rgb.shape[:2], -1, np.int64)
        for index, colour in enumerate(ctx.region_colours):
            labels[np.all(rgb == np.asarray(colour, np.uint8), axis=-1)] = index
    planes = label_planes(labels, len(ctx.region_blends))
    planes.setflags(write=False)
    return Regions(planes, ctx.region_blends)


def _model(ctx_settings: Settings, device: Any) -> Any:
    from pipeline.engine.vgg import get_model

    return get_model(ctx_settings.weights, str(device), pooling=ctx_settings.pooling)


# --- tasks -------------------------------------------------------------------------------------


def style_targets_task(
    style: StyleSource, level_hw: tuple[int, int], settings: Settings, device: str, long_side: int | None = None,
) -> StyleTargets:
    """Gram targets of one style for an output of ``level_hw``; computed once, used by every tile.

    ``long_side``: the style's size under ``style_span_cm`` (:meth:`pipeline.run.plan.JobPlan.style_long_side`).
    """
    from pipeline.engine.targets import compute_style_targets

    torch_device = prepare_torch(device, settings.tile_threads)  # many run side by side at the head of a graph
    rgb = _rgb(style.path, style.sha256, style.max_input_pixels)
    targets = compute_style_targets(_model(settings, torch_device), [(rgb, 1.0)], level_hw, settings, torch_device,
                                    long_side)  # fmt: skip
    COMPUTED["targets"] += 1
    return targets.to("cpu")


def coarse_task(
    ctx: JobContext, level: LevelPlan, targets: dict[tuple[int, int], list[StyleTargets]]
) -> dict[str, float]:
    """Level 0: the whole repeat, coarse to fine, lattice padding; written as the level's image."""
    from pipeline.engine.whole import stylize_image

    started = time.perf_counter()
    if bool(store.done_map(ctx.store_path, ctx.job_id, level.index).all()):
        return {"seconds": 0.0, "skipped": 1.0}
    device = prepare_torch(ctx.device, ctx.settings.coarse_threads)  # the serial head: the cores others leave idle
    regions = job_regions(ctx)
    blended = {} if regions else {hw: blend_targets(per_style, ctx.style_weights) for hw, per_style in targets.items()}
    image = stylize_image(
        design_rgb(ctx),
        [],
        repeat=ctx.repeat,
        width=level.width,
        height=level.height,
        settings=ctx.settings,
        seed=ctx.seed,
        device=device,
        scales=level.scales or None,
        targets=blended,
        regions=regions,
        style_targets=targets,
    )
    store.write_image(ctx.store_path, ctx.job_id, level.index, image)
    COMPUTED["coarse"] += 1
    return {"seconds": time.perf_counter() - started}


def tile_task(
    ctx: JobContext, level: LevelPlan, previous: LevelPlan, row: int, col: int, targets: list[StyleTargets],
    *after: Any,
) -> dict[str, float]:  # fmt: skip
    """Refine one tile: init from the previous level (upsampled, wrapped halo), content from the design.

    The optimisation itself is the engine's (:func:`pipeline.engine.window.refine_window`).
    """
    from pipeline.engine.optimise import derive_seed
    from pipeline.engine.window import refine_window
    from pipeline.repeat.resample import resample_window

    started = time.perf_counter()
    if store.tile_done(ctx.store_path, ctx.job_id, level.index, row, col):
        return {"seconds": 0.0, "skipped": 1.0}
    device = prepare_torch(ctx.device, ctx.settings.tile_threads)
    tile = level.tile_grid(ctx.repeat).tile(row, col)
    window = tile.window(level.halo)
    size = (level.height, level.width)
    source = store.level_array(ctx.store_path, ctx.job_id, previous.index)
    start = resample_window(source, ctx.repeat, size, *window, src_origin=previous.origin, dst_origin=level.origin)
    margin = level.halo - level.overlap
    kept_h, kept_w = tile.height + 2 * level.overlap, tile.width + 2 * level.overlap
    keep = slice(margin, margin + kept_h), slice(margin, margin + kept_w)
    regions = job_regions(ctx)
    rgb = refine_window(
        design_rgb(ctx), start, targets if regions else blend_targets(targets, ctx.style_weights), repeat=ctx.repeat,
        size=size, window=tuple(window), origin=level.origin, keep=keep, settings=ctx.settings,
        iterations=level.iterations, seed=derive_seed(ctx.seed, level.index, row, col), device=device, regions=regions,
    )  # fmt: skip
    side = level.core + 2 * level.overlap
    padded = np.zeros((side, side, 3), np.uint8)
    padded[: rgb.shape[0], : rgb.shape[1]] = rgb
    store.write_tile_window(ctx.store_path, ctx.job_id, level.index, row, col, padded)
    COMPUTED["tile"] += 1
    return {"seconds": time.perf_counter() - started}


def stitch_task(ctx: JobContext, level: LevelPlan, row: int, col: int, *after: Any) -> dict[str, float]:
    """One chunk of a level: every tile window covering it (across the wrap), feathered together."""
    started = time.perf_counter()
    if store.chunk_done(ctx.store_path, ctx.job_id, level.index, row, col):
        return {"seconds": 0.0, "skipped": 1.0}
    chunk = stitch_chunk(ctx.store_path, ctx.job_id, level.index, level.tile_grid(ctx.repeat), level.overlap, row, col)
    store.write_chunk(ctx.store_path, ctx.job_id, level.index, row, col, chunk)
    return {"seconds": time.perf_counter() - started}


def stitch_chunk(
    store_path: str, job_id: str, level: int, grid: TileGrid, overlap: int, row: int, col: int
) -> np.ndarray:
    """Blend the tile windows that cover chunk (row, col) with feather weights; uint8 (h, w, 3)."""
    target = grid.tile(row, col)
    total = np.zeros((target.height, target.width, 3), np.float64)
    weight_sum = np.zeros((target.height, target.width, 1), np.float64)
    for tile, (dy, dx), part in grid.contributors(tuple(target.rect), overlap):
        window = store.read_tile_window(store_path, job_id, level, tile.row, tile.col)
        weights = feather_weights(tile, overlap)
        # `part` (frame coords) is covered by the tile's window translated by (dy, dx)
        wy, wx = part.y0 - dy - (tile.y0 - overlap), part.x0 - dx - (tile.x0 - overlap)
        ty, tx = part.y0 - target.y0, part.x0 - target.x0
        sub_w = weights[wy : wy + part.height, wx : wx + part.width, None].astype(np.float64)
        total[ty : ty + part.height, tx : tx + part.width] += window[wy : wy + part.height, wx : wx + part.width] * sub_w
        weight_sum[ty : ty + part.height, tx : tx + part.width] += sub_w
    return np.clip(np.rint(total / weight_sum), 0, 255).astype(np.uint8)


def resample_task(ctx: JobContext, level: LevelPlan, previous: LevelPlan, row: int, col: int, *after: Any) -> dict:
    """A chunk of an untiled level (refine = false): the previous level resampled along the lattice."""
    from pipeline.repeat.resample import resample_window, rgb_uint8

    started = time.perf_counter()
    if store.chunk_done(ctx.store_path, ctx.job_id, level.index, row, col):
        return {"seconds": 0.0, "skipped": 1.0}
    tile = level.tile_grid(ctx.repeat).tile(row, col)
    source = store.level_array(ctx.store_path, ctx.job_id, previous.index)
    rgb = resample_window(source, ctx.repeat, (level.height, level.width), *tuple(tile.rect),
                          src_origin=previous.origin, dst_origin=level.origin)  # fmt: skip
    store.write_chunk(ctx.store_path, ctx.job_id, level.index, row, col, rgb_uint8(rgb))
    return {"seconds": time.perf_counter() - started}


def source_rect(level: LevelPlan, previous: LevelPlan, window: Rect, margin: int = 3) -> Rect:
    """The part of the previous level (its frame) that a window of this level reads when upsampled."""
    sy = previous.height / level.height
    sx = previous.width / level.width
    py = window.y0 + level.origin[0]
    px = window.x0 + level.origin[1]
    y0 = int(np.floor(py * sy)) - margin - previous.origin[0]
    x0 = int(np.floor(px * sx)) - margin - previous.origin[1]
    y1 = int(np.ceil((py + window.height) * sy)) + margin - previous.origin[0]
    x1 = int(np.ceil((px + window.width) * sx)) + margin - previous.origin[1]
    return Rect(y0, x0, y1 - y0, x1 - x0)


# --- feed-forward engine -------------------------------------------------------------------------


def _training_publisher(model: ModelPlan) -> Any:
    """A callback that sends a training's progress to the client, at most every couple of seconds."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker: nobody to tell
        return None
    last = [0.0]
    started = time.perf_counter()

    def publish(step: int, steps: int, losses: dict[str, float]) -> None:
        now = time.perf_counter()
        if now - last[0] < TRAINING_PUBLISH_SECONDS and step % model.settings.train_checkpoint_every and step < steps:
            return
        last[0] = now
        worker.log_event(TRAINING_TOPIC, {
            "model": model.id, "step": step, "steps": steps, "loss": losses["total"],
            "seconds": round(now - started, 1),
        })  # fmt: skip

    return publish


def train_task(store_path: str, model: ModelPlan, device: str, max_input_pixels: int) -> dict[str, Any]:
    """Train one house style's model into the store (or find it trained); shared by every job that uses it.

    Runs with ``train_threads`` torch threads whatever the worker has: the model's bytes depend on it.
    """
    from pipeline.run.training import train_into_store, trained_record

    started = time.perf_counter()
    torch_device = prepare_torch(device, model.settings.train_threads)
    trained_before = bool((record := trained_record(store_path, model)))
    if not trained_before:
        record = train_into_store(store_path, model, torch_device, max_input_pixels, _training_publisher(model))
        COMPUTED["train"] += 1
    return {"id": model.id, "sha256": record["sha256"], "seconds": time.perf_counter() - started,
            "trained": not trained_before}  # fmt: skip


def infer_task(
    ctx: JobContext, level: LevelPlan, row: int, col: int, model: dict[str, Any], *after: Any
) -> dict[str, float]:
    """One chunk of a feed-forward level: the network on the chunk plus its receptive-field halo."""
    from pipeline.engine.feedforward import stylize_window
    from pipeline.run.training import load_store_model

    started = time.perf_counter()
    if store.chunk_done(ctx.store_path, ctx.job_id, level.index, row, col):
        return {"seconds": 0.0, "skipped": 1.0}
    device = prepare_torch(ctx.device, ctx.threads)
    net = load_store_model(ctx.store_path, model["id"], str(device))
    tile = level.tile_grid(ctx.repeat).tile(row, col)
    rgb = stylize_window(net, design_rgb(ctx), ctx.repeat, (level.height, level.width), tuple(tile.window(level.halo)),
                         tile.core_in_window(level.halo), ctx.settings, device)  # fmt: skip
    store.write_chunk(ctx.store_path, ctx.job_id, level.index, row, col, rgb)
    COMPUTED["infer"] += 1
    return {"seconds": time.perf_counter() - started}

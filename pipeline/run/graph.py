"""The Dask graph of a run: shared style targets, coarse pass, tiles and stitches per level.

Dependencies are exact: a tile depends on the previous level's chunks its window reads
(across the wrap), a stitch on the tiles that cover its chunk. Finished tiles and chunks
are not submitted again, so a resumed run only computes what is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.run import store
from pipeline.run.cluster import ClusterInfo
from pipeline.run.plan import JobPlan, LevelPlan, Plan
from pipeline.run.tasks import (
    JobContext,
    StyleSource,
    coarse_task,
    infer_task,
    resample_task,
    source_rect,
    stitch_task,
    style_targets_task,
    targets_key,
    tile_task,
    train_task,
)

#: How often a failing task is retried (a lost worker does not count: Dask reschedules that).
RETRIES = 2
#: Tasks (by key prefix) that each compute one tile as the plan and the store count them (a tile window
#: of a tiled level, a chunk of a whole-image one, the coarse pass); stitches only blend them.
TILE_TASKS = frozenset({"coarse", "resample", "tile", "infer"})


def job_context(job: JobPlan, plan: Plan, info: ClusterInfo) -> JobContext:
    """What every task of ``job`` needs, small and picklable."""
    assert job.design is not None
    limit = plan.manifest.limits.max_input_pixels
    return JobContext(
        store_path=str(plan.store),
        job_id=job.id,
        repeat=job.spec.repeat,
        width=job.spec.width,
        height=job.spec.height,
        seed=job.spec.seed,
        settings=job.spec.settings,
        design_path=job.design.path,
        design_sha256=job.design.sha256,
        style_weights=tuple(use.weight for use in job.spec.styles),
        max_input_pixels=plan.manifest.limits.max_input_pixels,
        device=info.device,
        threads=info.threads,
        design_tile=job.spec.tile.recipe if job.spec.tile is not None else None,
        mask=StyleSource(job.mask.path, job.mask.sha256, limit) if job.mask is not None else None,
        region_colours=tuple(region.colour for region in job.spec.regions),
        region_blends=job.spec.region_blends(),
    )


class Graph:
    """Builds and tracks the futures of one run."""

    def __init__(self, client: Any, info: ClusterInfo, plan: Plan) -> None:
        self.client = client
        self.info = info
        self.plan = plan
        self.targets: dict[str, Any] = {}
        self.trainings: dict[str, Any] = {}  # model id -> its training's future, shared by the jobs using it
        self.job_of: dict[Any, str] = {}
        self.level_of: dict[Any, int] = {}
        self.futures: list[Any] = []
        self.resources = {"GPU": 1} if info.gpu else None

    def submit(self, job_id: str, level: int, fn: Any, *args: Any, key: str) -> Any:
        future = self.client.submit(fn, *args, key=key, retries=RETRIES, resources=self.resources, pure=False)
        self.job_of[future.key] = job_id
        self.level_of[future.key] = level
        self.futures.append(future)
        return future

    @staticmethod
    def computes_tile(key: Any) -> bool:
        """Whether the task ``key`` computes a tile (what progress counts; see :data:`TILE_TASKS`)."""
        return str(key).partition("-")[0] in TILE_TASKS

    def style_targets(self, job: JobPlan, hw: tuple[int, int]) -> list[Any]:
        """Futures of each style's targets at an output size, shared with every other job."""
        futures = []
        limit = self.plan.manifest.limits.max_input_pixels
        long_side = job.style_long_side(hw)
        for source in job.styles:
            style = StyleSource(source.path, source.sha256, limit)
            key = targets_key(style, hw, job.spec.settings, long_side)
            if key not in self.targets:
                self.targets[key] = self.client.submit(
                    style_targets_task, style, hw, job.spec.settings, self.info.device, long_side,
                    key=key, retries=RETRIES, resources=self.resources,
                )  # fmt: skip
            futures.append(self.targets[key])
        return futures

    def training(self, job: JobPlan) -> Any:
        """The future of the model ``job`` uses: one training per house style, submitted once per run."""
        model = job.model
        assert model is not None
        if model.id not in self.trainings:
            self.trainings[model.id] = self.client.submit(
                train_task, str(self.plan.store), model, self.info.device, self.plan.manifest.limits.max_input_pixels,
                key=f"train-{model.id}", retries=RETRIES, resources=self.resources, pure=False,
            )  # fmt: skip
        return self.trainings[model.id]

    def _add_inference(self, job: JobPlan, ctx: JobContext, level: LevelPlan) -> dict[tuple[int, int], Any]:
        """The network's pass over level 0, chunk by chunk, after the model's training."""
        done = store.done_map(str(self.plan.store), job.id, level.index)
        chunks: dict[tuple[int, int], Any] = {}
        for tile in level.tile_grid(job.spec.repeat).tiles():
            if done[tile.row, tile.col]:
                continue
            chunks[(tile.row, tile.col)] = self.submit(
                job.id, level.index, infer_task, ctx, level, tile.row, tile.col, self.training(job),
                key=f"infer-{job.id}-{level.index}-{tile.row}-{tile.col}",
            )  # fmt: skip
        return chunks

    def add_job(self, job: JobPlan) -> None:
        ctx = job_context(job, self.plan, self.info)
        path = str(self.plan.store)
        coarse = job.levels[0]
        previous_chunks: dict[tuple[int, int], Any] = {}
        if coarse.inferred:
            previous_chunks = self._add_inference(job, ctx, coarse)
        elif not store.done_map(path, job.id, coarse.index).all():
            targets = {hw: self.style_targets(job, hw) for hw in job.coarse_sizes}
            future = self.submit(job.id, coarse.index, coarse_task, ctx, coarse, targets, key=f"coarse-{job.id}")
            previous_chunks = {rc: future for rc in np.ndindex(*coarse.layout().shape)}
        previous = coarse
        for level in job.levels[1:]:
            previous_chunks = self._add_level(job, ctx, level, previous, previous_chunks)
            previous = level

    def _add_level(
        self, job: JobPlan, ctx: JobContext, level: LevelPlan, previous: LevelPlan, previous_chunks: dict
    ) -> dict[tuple[int, int], Any]:
        path = str(self.plan.store)
        grid = level.tile_grid(job.spec.repeat)
        previous_grid = previous.tile_grid(job.spec.repeat)
        chunks_done = store.done_map(path, job.id, level.index)
        chunk_futures: dict[tuple[int, int], Any] = {}
        if not level.tiled:
            for tile in grid.tiles():
                if chunks_done[tile.row, tile.col]:
                    continue
                needs = self._needs(level, previous, previous_grid, previous_chunks, tile.rect)
                chunk_futures[(tile.row, tile.col)] = self.submit(
                    job.id, level.index, resample_task, ctx, level, previous, tile.row, tile.col, *needs,
                    key=f"resample-{job.id}-{level.index}-{tile.row}-{tile.col}",
                )  # fmt: skip
            return chunk_futures
        tiles_done = store.tiles_done_map(path, job.id, level.index)
        tile_futures: dict[tuple[int, int], Any] = {}
        targets: list[Any] | None = None
        for tile in grid.tiles():
            if tiles_done[tile.row, tile.col]:
                continue
            if targets is None:
                targets = self.style_targets(job, (level.height, level.width))
            needs = self._needs(level, previous, previous_grid, previous_chunks, tile.window(level.halo))
            tile_futures[(tile.row, tile.col)] = self.submit(
                job.id, level.index, tile_task, ctx, level, previous, tile.row, tile.col, targets, *needs,
                key=f"tile-{job.id}-{level.index}-{tile.row}-{tile.col}",
            )  # fmt: skip
        for tile in grid.tiles():
            if chunks_done[tile.row, tile.col]:
                continue
            covering = {(t.row, t.col) for t, _, _ in grid.contributors(tuple(tile.rect), level.overlap)}
            needs = [tile_futures[rc] for rc in sorted(covering) if rc in tile_futures]
            chunk_futures[(tile.row, tile.col)] = self.submit(
                job.id, level.index, stitch_task, ctx, level, tile.row, tile.col, *needs,
                key=f"stitch-{job.id}-{level.index}-{tile.row}-{tile.col}",
            )  # fmt: skip
        return chunk_futures

    @staticmethod
    def _needs(level: LevelPlan, previous: LevelPlan, previous_grid: Any, previous_chunks: dict, window: Any) -> list:
        """Futures of the previous level's chunks that this window reads (across the wrap)."""
        if not previous_chunks:
            return []
        rect = source_rect(level, previous, window)
        wanted = previous_grid.tiles_read(tuple(rect))
        unique = {id(previous_chunks[rc]): previous_chunks[rc] for rc in sorted(wanted) if rc in previous_chunks}
        return list(unique.values())

"""From validated jobs to work: job keys, the scale schedule, tile grids, and what is already done.

A job's key is the sha256 of everything that decides its pixels: the bytes of the design and
of each style (with its weight), the output size, repeat and seed, the resolved settings, the
weights' sha256 and the engine version. The store keeps the key of what it holds; a job whose
key is unchanged and finished is skipped, a changed one is recomputed, an unfinished one resumes.

Schedule: level 0 is the whole-repeat coarse pass (itself ``settings.scales`` whole-image
scales, lattice padding, seamless by construction). Levels 1..n grow by ``scale_factor`` up to
the print size and are refined in tiles; the last level is the job's ``image``. Each tiled
level's grid is shifted by half a tile from the next one, so no tile boundary survives two passes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline import ENGINE_VERSION
from pipeline.conventions import JobStatus, PlanState
from pipeline.errors import ManifestError, Problem, WeftError
from pipeline.repeat.automask import AUTO_MASK_VERSION
from pipeline.repeat.lattice import Repeat, honoured_size
from pipeline.repeat.tiles import TileGrid
from pipeline.manifest.load import read_manifest
from pipeline.conventions import ALLOW_OUTSIDE_ROOT
from pipeline.manifest.specs import JobSpec, Manifest
from pipeline.settings import Settings
from pipeline.run.layout import LevelLayout
from pipeline.run.model_plan import ModelPlan, plan_models
from pipeline.run.tile_sizing import (
    WHOLE_CHUNK, Budget, auto_core, check_whole, even_core, fits_whole, job_budget,
)
from pipeline.engine.weight_files import file_sha256, weights_identity

#: Rough CPU cost of one optimiser step per megapixel (bf16, one core of this class of machine),
#: used only for the estimate `weft plan` prints; measured figures are in docs/benchmarks.md.
SECONDS_PER_MEGAPIXEL_STEP = 6.0


@dataclass(frozen=True)
class LevelPlan:
    """One scale of a job: its size, frame origin, and how it is computed."""

    index: int
    height: int
    width: int
    origin: tuple[int, int]
    tiled: bool
    core: int
    halo: int
    overlap: int
    iterations: int
    inferred: bool = False  # computed by the feed-forward network, chunk by chunk (halo = its receptive field)
    scales: int = 0  # level 0 of the optimisation engine: its whole-image scales (coarse pass + whole levels)

    def tile_grid(self, repeat: Repeat) -> TileGrid:
        """The tile cores (= zarr chunks) of this level's frame."""
        return TileGrid(repeat, self.width, self.height, self.core, self.origin)

    def layout(self) -> LevelLayout:
        """How the store lays this level out."""
        return LevelLayout(
            index=self.index,
            height=self.height,
            width=self.width,
            core=self.core,
            overlap=self.overlap if self.tiled else 0,
            origin=self.origin,
            tiled=self.tiled,
        )

    @property
    def chunks(self) -> int:
        return len(self.layout())

    @property
    def halo_overhead(self) -> float:
        """Pixels a tiled level optimises (cores plus halos) over its own pixels, less 1 (0: whole or untiled)."""
        if not self.tiled:
            return 0.0
        side = self.core + 2 * self.halo
        return self.chunks * side * side / (self.height * self.width) - 1

    @property
    def megapixel_steps(self) -> float:
        """Optimiser work: pixels optimised (with halos) times steps, in megapixels."""
        if not self.iterations:
            return 0.0
        if not self.tiled:
            return self.height * self.width * self.iterations / 1e6
        side = self.core + 2 * self.halo
        return self.chunks * side * side * self.iterations / 1e6


@dataclass(frozen=True)
class InputFile:
    """A file a job reads, with the hash that goes into its key."""

    path: str
    sha256: str


@dataclass(frozen=True)
class JobPlan:
    """A job, its key, its levels and its state against the store."""

    spec: JobSpec
    key: str
    levels: tuple[LevelPlan, ...]
    coarse_sizes: tuple[tuple[int, int], ...]  # (h, w) of each whole-image scale inside level 0
    design: InputFile | None
    styles: tuple[InputFile, ...]
    weights_sha256: str
    state: PlanState
    error: str | None = None
    tiles_done: int = 0
    model: ModelPlan | None = None  # the feed-forward model this job uses (engine = "feedforward")
    mask: InputFile | None = None  # the job's mask file (styles by region), when it has one

    def style_long_side(self, level_hw: tuple[int, int]) -> int | None:
        """The style targets' long side at a level under ``style_span_cm`` (None: ``style_scale`` decides)."""
        from pipeline.engine.schedule import span_long_side

        s = self.spec.settings
        if s.style_span_cm is None:
            return None
        print_hw = (self.spec.height, self.spec.width)
        return span_long_side(s.style_span_cm, self.spec.dpi, level_hw, print_hw, s.style_max_size)[0]

    def span_warning(self) -> str | None:
        """What `weft plan` says when ``style_span_cm`` asks for style targets larger than ``style_max_size``."""
        from pipeline.engine.schedule import span_pixels

        s = self.spec.settings
        if s.style_span_cm is None:
            return None
        wanted = span_pixels(s.style_span_cm, self.spec.dpi)
        if round(wanted) <= s.style_max_size:
            return None
        return (f"{self.id}: style_span_cm = {s.style_span_cm:g} at {self.spec.dpi} dpi asks for style targets "
                f"{round(wanted)} px long at print size; capped at style_max_size = {s.style_max_size}, so the "
                f"texture is {wanted / s.style_max_size:.1f}x finer than asked at the levels above the cap "
                f"(raise style_max_size where the workers have the memory: docs/regions.md)")  # fmt: skip

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def runs(self) -> bool:
        return self.state.runs

    @property
    def tiles_total(self) -> int:
        return sum(level.chunks for level in self.levels)

    @property
    def megapixel_steps(self) -> float:
        coarse = sum(
            h * w * (self.spec.settings.iterations if i == 0 else self.spec.settings.refine_iterations) / 1e6
            for i, (h, w) in enumerate(self.coarse_sizes)
        )
        return coarse + sum(level.megapixel_steps for level in self.levels[1:])


@dataclass(frozen=True)
class Plan:
    """Every job of a manifest with its state; what `weft run` will do."""

    manifest: Manifest
    store: Path
    jobs: tuple[JobPlan, ...]
    force: bool = False
    invalid: dict[str, str] = field(default_factory=dict)  # jobs whose manifest entry or files are broken
    worker_memory: Budget | None = None  # the cluster's worker memory, for tile_size = "auto"

    @property
    def models(self) -> tuple[ModelPlan, ...]:
        """The feed-forward models the jobs use, each once, in job order."""
        unique = {job.model.id: job.model for job in self.jobs if job.model is not None}
        return tuple(unique.values())

    @property
    def models_to_train(self) -> tuple[ModelPlan, ...]:
        """Models that a job which runs needs and that the store does not hold finished."""
        needed = {job.model.id for job in self.to_run if job.model is not None}
        return tuple(m for m in self.models if m.id in needed and not m.trained)

    @property
    def to_run(self) -> tuple[JobPlan, ...]:
        return tuple(job for job in self.jobs if job.runs)


# --- schedule --------------------------------------------------------------------------------


def schedule(
    spec: JobSpec, cluster_budget: Budget | None = None
) -> tuple[tuple[LevelPlan, ...], tuple[tuple[int, int], ...]]:
    """The levels of a job and the whole-image scales of its coarse pass.

    With ``tile_size = "auto"`` the levels that fit a worker's memory (``cluster_budget``, or the
    job's ``worker_memory``) join the coarse pass as further whole-image scales, and the others are
    tiled with the largest core that fits (:mod:`pipeline.run.tile_sizing`). A WeftError names the
    job when even that does not fit.
    """
    from pipeline.engine.schedule import whole_image_sizes

    s: Settings = spec.settings
    if s.engine == "feedforward":
        return feedforward_schedule(spec, cluster_budget), ()
    width, height, repeat = spec.width, spec.height, spec.repeat
    long_side = max(width, height)
    refinements = 0
    if long_side > s.coarse_size:
        refinements = math.ceil(math.log(long_side / s.coarse_size) / math.log(s.scale_factor) - 1e-9)
    sizes = []
    for j in range(refinements, -1, -1):  # level 0 first
        factor = s.scale_factor**j
        sizes.append(honoured_size(repeat, max(16, round(width / factor)), max(16, round(height / factor))))
    whole = 0  # refinement levels optimised whole, inside the coarse pass
    if s.tile_size == "auto":
        budget = job_budget(s, cluster_budget)
        if s.refine:
            while whole < refinements and fits_whole(s, sizes[whole + 1], budget):
                whole += 1
        check_whole(s, sizes[whole], budget, spec.id, "coarse pass")
        chunk = WHOLE_CHUNK
        core = auto_core(s, budget, spec.id) if whole < refinements and s.refine else chunk
    else:
        chunk = core = s.tile_size
    sizes = sizes[whole:]
    coarse_w, coarse_h = sizes[0]
    coarse_sizes = tuple(whole_image_sizes(coarse_w, coarse_h, repeat, s, scales=s.scales + whole))
    levels = [LevelPlan(0, coarse_h, coarse_w, (0, 0), False, chunk, 0, 0, s.iterations, scales=s.scales + whole)]
    last = len(sizes) - 1
    for index, (w, h) in enumerate(sizes[1:], start=1):
        level_core = even_core(core, (w, h)) if s.tile_size == "auto" else core
        # final level at (0, 0), the one before shifted by T/2, ...; a mirror's frames cannot move (repeat/tiles.py)
        shift = 0 if repeat.kind == "mirror" else (last - index) % 2 * (level_core // 2)
        tiled = s.refine
        levels.append(
            LevelPlan(
                index=index,
                height=h,
                width=w,
                origin=(shift % h, shift % w) if tiled else (0, 0),
                tiled=tiled,
                core=level_core,
                halo=s.halo if tiled else 0,
                overlap=s.overlap if tiled else 0,
                iterations=s.refine_iterations if tiled else 0,
            )
        )
    if not s.refine and len(levels) > 2:
        # without refinement the intermediate scales add nothing: resample level 0 straight to print size
        final = levels[-1]
        levels = [levels[0], LevelPlan(1, final.height, final.width, (0, 0), False, chunk, 0, 0, 0)]
    return tuple(levels), coarse_sizes


def feedforward_schedule(spec: JobSpec, cluster_budget: Budget | None = None) -> tuple[LevelPlan, ...]:
    """A feed-forward job: the network's pass in tiles, then polish in tiles, or a resample to the exact size.

    Level 0 runs at the print size rounded to the net's lattice quantum, in chunks of
    ``ff_tile_size`` with the receptive field as halo (equal to the whole image). With
    ``polish_iterations`` a tiled optimisation at the print size follows; otherwise, when the
    rounding changed the size, a resample to the print size.
    """
    from pipeline.engine.schedule import feedforward_size, receptive_radius

    s = spec.settings
    height, width = feedforward_size(spec.width, spec.height, spec.repeat)
    halo = receptive_radius(s.ff_blocks)
    levels = [LevelPlan(0, height, width, (0, 0), False, s.ff_tile_size, halo, 0, 0, inferred=True)]
    if s.polish_iterations:
        core = s.tile_size
        if s.tile_size == "auto":
            core = even_core(auto_core(s, job_budget(s, cluster_budget), spec.id), (spec.width, spec.height))
        levels.append(LevelPlan(1, spec.height, spec.width, (0, 0), True, core, s.halo, s.overlap,
                                s.polish_iterations))  # fmt: skip
    elif (height, width) != (spec.height, spec.width):
        levels.append(LevelPlan(1, spec.height, spec.width, (0, 0), False, s.ff_tile_size, 0, 0, 0))
    return tuple(levels)


# --- keys ------------------------------------------------------------------------------------


def keyed_settings(spec: JobSpec) -> Settings:
    """The settings as they decide the pixels: ``crop_to_repeat`` is what it did, not what was asked.

    A design that ``crop_to_repeat`` left as it is ("auto" on a seamless design, or no repeat
    found and nothing to cut) gives the pixels of ``false``, so it is keyed as ``false``: keys of
    jobs from before the setting existed do not change. A cut adds its recipe to the key instead.
    """
    if spec.tile is None and spec.settings.crop_to_repeat is not False:
        return spec.settings.model_copy(update={"crop_to_repeat": False})
    return spec.settings


def job_key(
    spec: JobSpec, design_sha: str, style_shas: tuple[str, ...], weights_sha: str, model_key: str | None = None,
    mask_sha: str | None = None, levels: tuple[LevelPlan, ...] = (),
) -> str:
    """sha256 of everything that decides the job's pixels (and nothing that does not, like dpi).

    A feed-forward job adds its model's key (which covers the other designs it was trained on).
    Under ``tile_size = "auto"`` the layout the budget gave (``levels``) is keyed, not the budget.
    """
    material: dict[str, Any] = {
        "engine": ENGINE_VERSION,
        "design": design_sha,
        "styles": [[sha, round(use.weight, 12)] for sha, use in zip(style_shas, spec.styles)],
        "repeat": spec.repeat.value,
        "size": [spec.width, spec.height],
        "seed": spec.seed,
        "settings": keyed_settings(spec).digest(),
        "weights": weights_sha,
    }
    if model_key is not None:
        material["model"] = model_key
    if spec.regions:  # styles by region: which style goes where, and the mask that says where
        index = {use.style.id: i for i, use in enumerate(spec.styles)}
        material["regions"] = [region.record(index) for region in spec.regions]
        material["mask"] = mask_sha or f"auto-{AUTO_MASK_VERSION}"
    if spec.settings.style_span_cm is not None:  # the span is on the cloth: dpi decides the pixels then
        material["dpi"] = spec.dpi
    if spec.tile is not None:  # a tile cut from a photo (crop_to_repeat): where it lies decides the pixels
        material["tile"] = spec.tile.recipe.record()
    if spec.settings.tile_size == "auto":  # the layout the memory budget chose decides the pixels
        material["layout"] = layout_record(levels)
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def layout_record(levels: tuple[LevelPlan, ...]) -> list[dict[str, Any]]:
    """Each level's size, whether it is tiled, its core, halo and whole-image scales: for the key and provenance."""
    return [{"index": lv.index, "size": [lv.width, lv.height], "tiled": lv.tiled, "core": lv.core, "halo": lv.halo,
             "scales": lv.scales} for lv in levels]  # fmt: skip


def _hash_input(path: Path, cache: dict[Path, str]) -> InputFile:
    if path not in cache:
        try:
            cache[path] = file_sha256(path)
        except OSError as error:
            raise WeftError(f"{path}: cannot read: {error.strerror}") from None
    return InputFile(str(path), cache[path])


# --- the plan --------------------------------------------------------------------------------


def make_plan(
    manifest_path: Path,
    *,
    store: Path,
    profile: str | None = None,
    config: Path | None = None,
    only: tuple[str, ...] = (),
    force: bool = False,
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT,
    cli_settings: Mapping[str, Any] | None = None,
    stored: Mapping[str, Mapping[str, Any]] | None = None,
    stored_models: Mapping[str, Mapping[str, Any]] | None = None,
    worker_memory: Budget | None = None,
) -> Plan:
    """Load the manifest, schedule every job, hash its inputs, and compare with what the store holds.

    ``worker_memory`` is what the cluster gives a worker, for ``tile_size = "auto"``
    (:func:`pipeline.run.cluster.planned_worker_memory`); None: the default budget.

    ``stored`` maps job id -> the store's record of that job (:func:`pipeline.run.store.stored_jobs`);
    the caller reads it, so planning never opens the store itself; ``stored_models`` likewise
    (:func:`pipeline.run.models.stored_models`).
    """
    manifest, problems = read_manifest(
        manifest_path,
        profile=profile,
        config=config,
        cli_settings=cli_settings,
        allow_outside_root=allow_outside_root,
        check_images=True,
    )
    broken = broken_jobs(problems)  # a job's own problems fail that job alone ...
    if any(p.severity == "error" and job_of(p) is None for p in problems):
        raise ManifestError(problems)  # ... anything else stops the run before it touches the store
    # a job with any problem of its own does not run, even where one entry of it was valid (a duplicate id)
    jobs = tuple(job for job in manifest.jobs if job.id not in broken)
    every_job = jobs  # a model is trained on all of its style's jobs, whatever --only picks
    if only:
        known = {job.id for job in jobs} | set(broken)
        unknown = [job_id for job_id in only if job_id not in known]
        if unknown:
            raise WeftError(f"--only: no job {', '.join(map(repr, unknown))} in {manifest_path}")
        jobs = tuple(job for job in jobs if job.id in only)
        broken = {job_id: reason for job_id, reason in broken.items() if job_id in only}
    stored = stored or {}
    hashes: dict[Path, str] = {}
    try:
        models = plan_models(
            every_job, manifest.training_designs, lambda p: _hash_input(p, hashes).sha256,
            lambda weights: weights_identity(weights)[1], stored_models or {}, _image_size,
        )  # fmt: skip
    except WeftError as error:  # a training input that cannot be read fails every feed-forward job
        broken.update({spec.id: str(error) for spec in jobs if spec.settings.engine == "feedforward"})
        jobs = tuple(spec for spec in jobs if spec.settings.engine != "feedforward")
        models = {}
    plans = [_plan_job(spec, stored.get(spec.id), hashes, force, models.get(spec.id), worker_memory) for spec in jobs]
    return Plan(manifest=manifest, store=store, jobs=tuple(plans), force=force, invalid=broken,
                worker_memory=worker_memory)  # fmt: skip


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image's header (the manifest checked it decodes)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def job_of(problem: Problem) -> str | None:
    """The job a manifest problem belongs to (its ``job`` field, filled by the manifest), if any."""
    return problem.job


def broken_jobs(problems: list[Problem]) -> dict[str, str]:
    """job id -> every error of that job, one per line."""
    reasons: dict[str, list[str]] = {}
    for problem in problems:
        job_id = job_of(problem)
        if job_id is not None and problem.severity == "error":
            reasons.setdefault(job_id, []).append(str(problem))
    return {job_id: "\n".join(lines) for job_id, lines in reasons.items()}


def _plan_job(
    spec: JobSpec, stored: Mapping[str, Any] | None, hashes: dict[Path, str], force: bool, model: ModelPlan | None,
    budget: Budget | None = None,
) -> JobPlan:
    try:
        levels, coarse_sizes = schedule(spec, budget)
    except WeftError as error:  # no layout fits the memory budget: this job fails, the others run
        return JobPlan(spec, "", (), (), None, (), "", PlanState.FAILED, str(error))
    try:
        weights_sha = weights_identity(spec.settings.weights)[1]
        design = _hash_input(spec.design, hashes)
        styles = tuple(_hash_input(use.style.path, hashes) for use in spec.styles)
        mask = _hash_input(spec.mask, hashes) if isinstance(spec.mask, Path) else None
    except WeftError as error:
        return JobPlan(spec, "", levels, coarse_sizes, None, (), "", PlanState.FAILED, str(error))
    key = job_key(spec, design.sha256, tuple(s.sha256 for s in styles), weights_sha, model.key if model else None,
                  mask.sha256 if mask else None, levels)  # fmt: skip
    state, done = PlanState.NEW, 0
    if stored is not None:
        done = int(stored.get("progress", {}).get("tiles_done", 0))
        if stored.get("job_key") != key:
            state, done = PlanState.CHANGED, 0
        elif stored.get("status") == JobStatus.DONE and stored.get("progress", {}).get("complete"):
            state = PlanState.DONE
        else:
            state = PlanState.RESUME
    if force:
        state, done = PlanState.FORCED, 0
    return JobPlan(spec, key, levels, coarse_sizes, design, styles, weights_sha, state, tiles_done=done, model=model,
                   mask=mask)  # fmt: skip


# --- printing ---------------------------------------------------------------------------------

_STATE_STYLE = {
    PlanState.NEW: "cyan",
    PlanState.CHANGED: "yellow",
    PlanState.RESUME: "magenta",
    PlanState.DONE: "green",
    PlanState.FORCED: "yellow",
    PlanState.FAILED: "red",
}


def describe_levels(job: JobPlan) -> str:
    """'128² ×1 → 256x256 (4 tiles) → ...' for humans."""
    parts = []
    for level in job.levels:
        if level.inferred:
            parts.append(f"feed-forward {level.width}x{level.height} ({level.chunks} tiles, halo {level.halo})")
        elif level.index == 0:
            scales = " → ".join(f"{w}x{h}" for h, w in job.coarse_sizes)
            whole = level.scales - job.spec.settings.scales
            fits = f" (up to {level.width}x{level.height} whole: it fits the budget)" if whole > 0 else ""
            parts.append(f"coarse {scales}{fits}")
        elif level.tiled:
            parts.append(f"{level.width}x{level.height} ({level.chunks} tiles of {level.core}, "
                         f"halo +{level.halo_overhead:.0%})")
        else:
            parts.append(f"{level.width}x{level.height} (resampled)")
    return " → ".join(parts)


def print_plan(plan: Plan, console: Console) -> None:
    """A table of jobs, states, scales and tiles, then the totals and a work estimate."""
    table = Table(title=f"plan for {plan.manifest.path} → {plan.store}", title_justify="left")
    for column in ("job", "state", "repeat", "size px", "scales and tiles", "tiles done", "work MP·steps"):
        justify = "right" if column in {"tiles done", "work MP·steps"} else "left"
        table.add_column(column, justify=justify, overflow="fold")  # a narrow terminal folds, never cuts
    for job in plan.jobs:
        colour = _STATE_STYLE.get(job.state, "white")
        table.add_row(
            job.id,
            f"[{colour}]{job.state}[/]",
            job.spec.repeat.value,
            f"{job.spec.width}x{job.spec.height}",
            describe_levels(job) if job.state is not PlanState.FAILED else f"[red]{escape(job.error or '')}[/]",
            f"{job.tiles_done}/{job.tiles_total}",
            f"{job.megapixel_steps:.1f}",
        )
    for job_id, reason in plan.invalid.items():
        table.add_row(job_id, "[red]invalid[/]", "", "", f"[red]{escape(reason)}[/]", "", "")
    console.print(table)
    budgets = {str(job_budget(job.spec.settings, plan.worker_memory)): None for job in plan.jobs
               if job.spec.settings.tile_size == "auto"}  # fmt: skip
    for budget in budgets:
        console.print(f"tile_size auto: levels and tiles sized to {escape(budget)}", highlight=False)
    for warning in filter(None, (job.span_warning() for job in plan.jobs)):
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if plan.models:
        print_models(plan, console)
    running = plan.to_run
    work = sum(job.megapixel_steps for job in running)
    skipped = [job for job in plan.jobs if job.state is PlanState.DONE]
    failed = [job for job in plan.jobs if job.state is PlanState.FAILED] + list(plan.invalid)
    console.print(
        f"{len(running)} to run, {len(skipped)} already done (skipped), {len(failed)} failing; "
        f"work ≈ {work:.1f} MP·steps ≈ {work * SECONDS_PER_MEGAPIXEL_STEP / 60:.1f} CPU-core minutes"
        + (f", training ≈ {training / 60:.1f} CPU minutes" if (training := _training_seconds(plan)) else "")
        + " (rough estimate; a GPU is far faster)",
        highlight=False,
    )


def _training_seconds(plan: Plan) -> float:
    return sum(model.estimate_seconds for model in plan.models_to_train)


def print_models(plan: Plan, console: Console) -> None:
    """The training stage: one row per house-style model, whether it is trained, and its estimate."""
    table = Table(title="training (feed-forward models, one per house style)", title_justify="left")
    for column in ("model", "styles", "jobs", "images", "steps", "state", "estimate"):
        table.add_column(column, justify="right" if column in {"images", "steps", "estimate"} else "left",
                         overflow="fold")  # fmt: skip
    needed = {model.id for model in plan.models_to_train}
    for model in plan.models:
        if model.trained:
            state, estimate = "[green]trained[/] (reused)", "-"
        else:
            state = f"[magenta]resume at step {model.steps_done}[/]" if model.steps_done else "[cyan]new[/]"
            estimate = f"{model.estimate_seconds / 60:.1f} min" if model.id in needed else "-"
        table.add_row(
            model.id, "+".join(model.style_ids), ", ".join(model.jobs), str(len(model.images)),
            str(model.settings.train_steps), state, estimate,
        )  # fmt: skip
    console.print(table)

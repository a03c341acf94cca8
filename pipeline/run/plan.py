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
from pipeline.repeat.lattice import Repeat, honoured_size
from pipeline.repeat.tiles import TileGrid
from pipeline.manifest.load import read_manifest
from pipeline.conventions import ALLOW_OUTSIDE_ROOT
from pipeline.manifest.specs import JobSpec, Manifest
from pipeline.settings import Settings
from pipeline.run.layout import LevelLayout
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


    @property
    def to_run(self) -> tuple[JobPlan, ...]:
        return tuple(job for job in self.jobs if job.runs)


# --- schedule --------------------------------------------------------------------------------


def schedule(spec: JobSpec) -> tuple[tuple[LevelPlan, ...], tuple[tuple[int, int], ...]]:
    """The levels of a job and the whole-image scales of its coarse pass."""
    from pipeline.engine.schedule import whole_image_sizes

    s: Settings = spec.settings
    width, height, repeat = spec.width, spec.height, spec.repeat
    long_side = max(width, height)
    refinements = 0
    if long_side > s.coarse_size:
        refinements = math.ceil(math.log(long_side / s.coarse_size) / math.log(s.scale_factor) - 1e-9)
    sizes = []
    for j in range(refinements, -1, -1):  # level 0 first
        factor = s.scale_factor**j
        sizes.append(honoured_size(repeat, max(16, round(width / factor)), max(16, round(height / factor))))
    coarse_w, coarse_h = sizes[0]
    coarse_sizes = tuple(whole_image_sizes(coarse_w, coarse_h, repeat, s))
    core = s.tile_size
    levels = [LevelPlan(0, coarse_h, coarse_w, (0, 0), False, core, 0, 0, s.iterations)]
    last = len(sizes) - 1
    for index, (w, h) in enumerate(sizes[1:], start=1):
        # final level at (0, 0), the one before shifted by T/2, ...; a mirror's frames cannot move (repeat/tiles.py)
        shift = 0 if repeat.kind == "mirror" else (last - index) % 2 * (core // 2)
        tiled = s.refine
        levels.append(
            LevelPlan(
                index=index,
                height=h,
                width=w,
                origin=(shift % h, shift % w) if tiled else (0, 0),
                tiled=tiled,
                core=core,
                halo=s.halo if tiled else 0,
                overlap=s.overlap if tiled else 0,
                iterations=s.refine_iterations if tiled else 0,
            )
        )
    if not s.refine and len(levels) > 2:
        # without refinement the intermediate scales add nothing: resample level 0 straight to print size
        final = levels[-1]
        levels = [levels[0], LevelPlan(1, final.height, final.width, (0, 0), False, core, 0, 0, 0)]
    return tuple(levels), coarse_sizes


# --- keys ------------------------------------------------------------------------------------


def job_key(spec: JobSpec, design_sha: str, style_shas: tuple[str, ...], weights_sha: str) -> str:
    """sha256 of everything that decides the job's pixels (and nothing that does not, like dpi)."""
    material = {
        "engine": ENGINE_VERSION,
        "design": design_sha,
        "styles": [[sha, round(use.weight, 12)] for sha, use in zip(style_shas, spec.styles)],
        "repeat": spec.repeat.value,
        "size": [spec.width, spec.height],
        "seed": spec.seed,
        "settings": spec.settings.digest(),
        "weights": weights_sha,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
) -> Plan:
    """Load the manifest, schedule every job, hash its inputs, and compare with what the store holds.

    ``stored`` maps job id -> the store's record of that job (:func:`pipeline.run.store.stored_jobs`);
    the caller reads it, so planning never opens the store itself.
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
    if only:
        known = {job.id for job in jobs} | set(broken)
        unknown = [job_id for job_id in only if job_id not in known]
        if unknown:
            raise WeftError(f"--only: no job {', '.join(map(repr, unknown))} in {manifest_path}")
        jobs = tuple(job for job in jobs if job.id in only)
        broken = {job_id: reason for job_id, reason in broken.items() if job_id in only}
    stored = stored or {}
    hashes: dict[Path, str] = {}
    plans = [_plan_job(spec, stored.get(spec.id), hashes, force) for spec in jobs]
    return Plan(manifest=manifest, store=store, jobs=tuple(plans), force=force, invalid=broken)


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


def _plan_job(spec: JobSpec, stored: Mapping[str, Any] | None, hashes: dict[Path, str], force: bool) -> JobPlan:
    levels, coarse_sizes = schedule(spec)
    try:
        weights_sha = weights_identity(spec.settings.weights)[1]
        design = _hash_input(spec.design, hashes)
        styles = tuple(_hash_input(use.style.path, hashes) for use in spec.styles)
    except WeftError as error:
        return JobPlan(spec, "", levels, coarse_sizes, None, (), "", PlanState.FAILED, str(error))
    key = job_key(spec, design.sha256, tuple(s.sha256 for s in styles), weights_sha)
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
    return JobPlan(spec, key, levels, coarse_sizes, design, styles, weights_sha, state, tiles_done=done)


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
        if level.index == 0:
            scales = " → ".join(f"{w}x{h}" for h, w in job.coarse_sizes)
            parts.append(f"coarse {scales}")
        elif level.tiled:
            parts.append(f"{level.width}x{level.height} ({level.chunks} tiles)")
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
    running = plan.to_run
    work = sum(job.megapixel_steps for job in running)
    skipped = [job for job in plan.jobs if job.state is PlanState.DONE]
    failed = [job for job in plan.jobs if job.state is PlanState.FAILED] + list(plan.invalid)
    console.print(
        f"{len(running)} to run, {len(skipped)} already done (skipped), {len(failed)} failing; "
        f"work ≈ {work:.1f} MP·steps ≈ {work * SECONDS_PER_MEGAPIXEL_STEP / 60:.1f} CPU-core minutes "
        f"(rough estimate; a GPU is far faster)",
        highlight=False,
    )

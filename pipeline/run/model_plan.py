"""Which feed-forward models a manifest needs, their keys, and how far the store has trained each.

One model per house style: the feed-forward jobs that share a style (or blend) and the same
training settings share one model, trained on all of their designs plus ``training_designs``.
Its key is the sha256 of the style bytes and weights, the training settings, the training
images' hashes (with the repeat each is cut under), the VGG weights and ``ENGINE_VERSION``:
change any of them and that model, and only that model, is trained again. No torch, no zarr.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import ENGINE_VERSION
from pipeline.conventions import PlanState
from pipeline.manifest.specs import JobSpec
from pipeline.run.models import model_id
from pipeline.settings import TRAINING_SETTINGS, Settings

#: Rough seconds of one training step per megapixel of crops (fp32, 2 cores of this class of CPU),
#: for `weft plan`'s estimate only; measured figures are in docs/benchmarks.md.
SECONDS_PER_TRAINING_MEGAPIXEL = 50.0


@dataclass(frozen=True)
class TrainingInput:
    """An image a model trains on; ``repeat`` None for an image that does not repeat."""

    path: str
    sha256: str
    repeat: str | None
    tile: Any = None  # the TileRecipe crop_to_repeat cut from a photographed design (its jobs use the same)


@dataclass(frozen=True)
class ModelPlan:
    """One model to train (or already trained) and the jobs that use it."""

    key: str
    id: str
    style_ids: tuple[str, ...]
    styles: tuple[tuple[str, str, float], ...]  # (path, sha256, weight) per style of the blend
    images: tuple[TrainingInput, ...]
    settings: Settings
    weights_sha256: str
    jobs: tuple[str, ...]
    scales: tuple[float, float]  # the crops' resize range (train_scales, resolved)
    state: PlanState = PlanState.NEW
    steps_done: int = 0

    @property
    def trained(self) -> bool:
        return self.state is PlanState.DONE

    @property
    def estimate_seconds(self) -> float:
        """A rough training time on a CPU (see :data:`SECONDS_PER_TRAINING_MEGAPIXEL`)."""
        s = self.settings
        steps = s.train_steps - self.steps_done
        return steps * s.train_batch * s.train_crop**2 / 1e6 * SECONDS_PER_TRAINING_MEGAPIXEL


def training_digest(settings: Settings) -> str:
    """sha256 of the settings a training depends on (and of no other)."""
    data = settings.model_dump(mode="json")
    relevant = {name: data[name] for name in TRAINING_SETTINGS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def model_key(
    styles: tuple[tuple[str, str, float], ...], settings: Settings, images: tuple[TrainingInput, ...], weights_sha: str,
    scales: tuple[float, float],
) -> str:
    """The identity of a model: what it was trained to, on what, at which scales, with which settings and engine."""
    material = {
        "engine": ENGINE_VERSION,
        "scales": [round(s, 6) for s in scales],
        "styles": [[sha, round(weight, 12)] for _, sha, weight in styles],
        "training": training_digest(settings),
        "images": [[image.sha256, image.repeat] + ([image.tile.record()] if image.tile is not None else [])
                   for image in images],
        "weights": weights_sha,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def model_state(ident: str, key: str, stored: Mapping[str, Mapping[str, Any]]) -> tuple[PlanState, int]:
    """(state, steps done) of a model against what the store holds for its id."""
    entry = stored.get(ident) or {}
    model = entry.get("model") or {}
    if model.get("key") == key and model.get("sha256"):
        return PlanState.DONE, int(model.get("steps", 0))
    checkpoint = entry.get("checkpoint") or {}
    if checkpoint.get("key") == key:
        return PlanState.RESUME, int(checkpoint.get("step", 0))
    return PlanState.NEW, 0


#: How far the automatic scale range reaches beyond the jobs' own enlargements, each way.
AUTO_SCALE_MARGIN = 1.5


def training_scales(settings: Settings, jobs: Sequence[JobSpec], design_size: Callable[[Path], tuple[int, int]]) -> tuple[float, float]:
    """``train_scales``, or for "auto" the enlargements the jobs ask for (print / design long side), widened.

    A network paints its strokes at the pixel scale it was trained at, on content as smooth as
    it saw: training at the jobs' own enlargement trains it for the prints it will make.
    """
    if settings.train_scales != "auto":
        return settings.train_scales
    factors = [max(spec.width, spec.height) / max(design_size(spec.design)) for spec in jobs]
    low, high = min(factors) / AUTO_SCALE_MARGIN, max(factors) * AUTO_SCALE_MARGIN
    return round(max(0.25, low), 4), round(min(64.0, high), 4)


def plan_models(
    specs: Sequence[JobSpec],
    training_designs: Sequence[Path],
    hash_file: Callable[[Path], str],
    weights_sha: Callable[[str], str],
    stored: Mapping[str, Mapping[str, Any]],
    design_size: Callable[[Path], tuple[int, int]],
) -> dict[str, ModelPlan]:
    """job id -> the model it uses, for every feed-forward job; jobs sharing a house style share one model.

    ``hash_file`` and ``weights_sha`` are the plan's own (cached) hashing; ``stored`` is
    :func:`pipeline.run.models.stored_models` of the store.
    """
    groups: dict[tuple[Any, ...], list[JobSpec]] = {}
    for spec in specs:
        if spec.settings.engine != "feedforward":
            continue
        blend = tuple((hash_file(use.style.path), round(use.weight, 12)) for use in spec.styles)
        identity = (blend, training_digest(spec.settings))
        groups.setdefault(identity, []).append(spec)
    extra = tuple(TrainingInput(str(path), hash_file(path), None) for path in training_designs)
    models: dict[str, ModelPlan] = {}
    for group in groups.values():
        first = group[0]
        designs: dict[tuple[str, str, str], TrainingInput] = {}
        for spec in group:
            sha = hash_file(spec.design)
            recipe = spec.tile.recipe if spec.tile is not None else None
            cut = json.dumps(recipe.record(), sort_keys=True) if recipe is not None else ""
            designs.setdefault((sha, spec.repeat.value, cut), TrainingInput(str(spec.design), sha, spec.repeat.value, recipe))
        images = tuple(designs[k] for k in sorted(designs)) + extra
        styles = tuple((str(use.style.path), hash_file(use.style.path), use.weight) for use in first.styles)
        weights = weights_sha(first.settings.weights)
        scales = training_scales(first.settings, group, design_size)
        key = model_key(styles, first.settings, images, weights, scales)
        style_ids = tuple(use.style.id for use in first.styles)
        ident = model_id(style_ids, key)
        state, steps = model_state(ident, key, stored)
        plan = ModelPlan(key, ident, style_ids, styles, images, first.settings, weights,
                         tuple(spec.id for spec in group), scales, state, steps)  # fmt: skip
        for spec in group:
            models[spec.id] = plan
    return models

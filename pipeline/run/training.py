"""Training one house style's model into the store, resuming from its last checkpoint.

Shared by ``weft train`` (in this process, with a progress bar) and the training task of
``weft run`` (on a worker, GPU when there is one). A model already trained under the same key
is not trained again; a checkpoint of the same key is resumed, and the result is the same
bytes as a training that never stopped (see :mod:`pipeline.engine.train`).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from pipeline.engine.model_files import ModelFileError, load_model, read_tensors, save_model, write_atomic
from pipeline.engine.train import TrainCallback, TrainingState, train_network, training_targets
from pipeline.engine.train_crops import TrainingImage
from pipeline.engine.transform_net import TransformNet
from pipeline.errors import WeftError
from pipeline.repeat.lattice import Repeat
from pipeline.run.model_plan import ModelPlan
from pipeline.run.models import (
    CHECKPOINT_FILE,
    CHECKPOINT_RECORD,
    MODEL_FILE,
    MODEL_RECORD,
    checkpoint_record,
    model_dir,
    model_record,
    write_json,
)
from pipeline.settings import TRAINING_SETTINGS


def _images(model: ModelPlan, max_pixels: int) -> list[TrainingImage]:
    """The model's training images, prepared as its jobs prepare their designs."""
    from pipeline.engine.whole import prepare_design
    from pipeline.manifest.images import load_rgb

    images = []
    for source in model.images:
        rgb = load_rgb(Path(source.path), max_pixels=max_pixels)
        if source.repeat is None:
            images.append(TrainingImage(rgb, None))
        else:
            repeat = Repeat(source.repeat)
            images.append(TrainingImage(prepare_design(rgb, repeat, model.settings, tile=source.tile), repeat))
    return images


def _resume(store_path: str, model: ModelPlan) -> tuple[TrainingState, dict[str, torch.Tensor]] | None:
    """The last checkpoint of this key, checked against its recorded sha256 (None: start from step 0)."""
    record = checkpoint_record(store_path, model.id)
    if not record or record.get("key") != model.key:
        return None
    path = model_dir(store_path, model.id) / CHECKPOINT_FILE
    try:
        tensors, _ = read_tensors(path, record.get("sha256"))
    except ModelFileError:
        return None  # a checkpoint that is not what its record says is worth nothing: start again
    state = TrainingState(int(record["step"]), [list(v) for v in record["curve"]], float(record["seconds"]))
    return state, tensors


def trained_record(store_path: str, model: ModelPlan) -> dict[str, Any] | None:
    """The stored record of ``model`` when it was trained under this key; None when it must be trained."""
    existing = model_record(store_path, model.id)
    return existing if existing and existing.get("key") == model.key else None


def train_into_store(
    store_path: str,
    model: ModelPlan,
    device: torch.device,
    max_input_pixels: int,
    callback: TrainCallback | None = None,
) -> dict[str, Any]:
    """Train ``model`` (or resume it) and store it; returns its record. A trained model is returned as is."""
    existing = trained_record(store_path, model)
    if existing:
        return existing
    from pipeline.manifest.images import load_rgb

    folder = model_dir(store_path, model.id)
    settings = model.settings
    styles = [(load_rgb(Path(path), max_pixels=max_input_pixels), weight) for path, _, weight in model.styles]
    targets = training_targets(styles, settings, device)
    resume = _resume(store_path, model)

    def checkpoint(state: TrainingState, tensors: dict[str, torch.Tensor]) -> None:
        sha = write_atomic(folder / CHECKPOINT_FILE, tensors, {"key": model.key, "step": str(state.step)})
        write_json(folder / CHECKPOINT_RECORD, {
            "key": model.key, "step": state.step, "curve": state.curve, "seconds": round(state.seconds, 3),
            "sha256": sha,
        })  # fmt: skip

    net, state = train_network(
        _images(model, max_input_pixels), targets, settings, device, scales=model.scales, resume=resume,
        on_checkpoint=checkpoint, callback=callback,
    )  # fmt: skip
    sha = save_model(folder / MODEL_FILE, net, {"key": model.key})
    record = _record(model, state, sha, device, resumed_from=resume[0].step if resume else 0)
    write_json(folder / MODEL_RECORD, record)
    for name in (CHECKPOINT_RECORD, CHECKPOINT_FILE):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    return record


def _record(model: ModelPlan, state: TrainingState, sha: str, device: torch.device, resumed_from: int) -> dict:
    """The model's provenance: what it was trained to, on what, how, how long, and its file's sha256."""
    data = model.settings.model_dump(mode="json")
    return {
        "key": model.key,
        "id": model.id,
        "file": MODEL_FILE,
        "sha256": sha,
        "styles": [
            {"id": ident, "path": path, "sha256": sha256, "weight": weight}
            for ident, (path, sha256, weight) in zip(model.style_ids, model.styles)
        ],
        "images": [{"path": i.path, "sha256": i.sha256, "repeat": i.repeat} for i in model.images],
        "settings": {name: data[name] for name in TRAINING_SETTINGS},
        "scales": list(model.scales),
        "weights_sha256": model.weights_sha256,
        "steps": state.step,
        "curve": state.curve,
        "seconds": round(state.seconds, 2),
        "resumed_from_step": resumed_from,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def load_store_model(store_path: str, ident: str, device: str) -> TransformNet:
    """A trained model of the store on ``device``, refused when its file is not the one recorded."""
    record = model_record(store_path, ident)
    if record is None:
        raise WeftError(f"{model_dir(store_path, ident)}: no trained model here ({MODEL_RECORD} is missing)")
    return _cached_model(str(model_dir(store_path, ident) / MODEL_FILE), str(record.get("sha256")), device)


@lru_cache(maxsize=4)
def _cached_model(path: str, sha256: str, device: str) -> TransformNet:
    """One copy per worker process of each model file (keyed by its sha256: a new file is a new entry)."""
    return load_model(Path(path), sha256, device)

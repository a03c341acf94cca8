"""Where trained feed-forward models live in a store, and the files that say how far each got.

``<store>/models/<model-id>/`` holds, for one house style:

- ``checkpoint.safetensors`` + ``checkpoint.json`` while it trains (the JSON, written after the
  tensors, vouches for them with their sha256: step, loss curve, seconds so far);
- ``model.safetensors`` + ``model.json`` once trained (the JSON, written last, is the model's
  provenance: key, styles, designs, settings, steps, loss curve, seconds, device, sha256).

Plain files beside the zarr tree: zarr never lists them, and planning reads the JSON without
torch or zarr. Every write goes through a temporary file and a rename, so a killed training
leaves the last complete checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError

#: The folder of a store that holds the models.
MODELS_DIR = "models"
MODEL_FILE = "model.safetensors"
MODEL_RECORD = "model.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_RECORD = "checkpoint.json"


def model_id(style_ids: tuple[str, ...], key: str) -> str:
    """A folder name a person can read: the styles, then the start of the key."""
    return f"{'+'.join(style_ids)}-{key[:12]}"


def model_dir(store_path: str | os.PathLike[str], ident: str) -> Path:
    return Path(store_path) / MODELS_DIR / ident


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """JSON through a temporary file and a rename (never half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A record, or None when absent; a damaged record is a StoreError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise StoreError(f"{path}: cannot read this model record ({error}); delete the folder to train again") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: not a model record; delete the folder to train again")
    return data


def model_record(store_path: str | os.PathLike[str], ident: str) -> dict[str, Any] | None:
    """The finished model's record (None while it is not trained)."""
    return read_json(model_dir(store_path, ident) / MODEL_RECORD)


def checkpoint_record(store_path: str | os.PathLike[str], ident: str) -> dict[str, Any] | None:
    """The last checkpoint's record (None when the training never reached one)."""
    return read_json(model_dir(store_path, ident) / CHECKPOINT_RECORD)


def stored_models(store_path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """model id -> {"model": record or None, "checkpoint": record or None} for every model folder."""
    root = Path(store_path) / MODELS_DIR
    if not root.is_dir():
        return {}
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found[folder.name] = {
            "model": read_json(folder / MODEL_RECORD),
            "checkpoint": read_json(folder / CHECKPOINT_RECORD),
        }
    return found


def finished_models(store_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of every trained model in the store, by id (what ``weft status`` lists)."""
    return [dict(entry["model"], id=ident) for ident, entry in stored_models(store_path).items() if entry["model"]]

"""Feed-forward model files: safetensors in, safetensors out, every file checked against its sha256.

A model file holds tensors and string metadata only (safetensors cannot carry code, unlike a
pickle), and the same state always gives the same bytes. Whoever records a model records the
file's sha256 too; loading with an expected sha256 refuses a file that changed since.
Checkpoints of a running training use the same format (network, Adam state, step).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipeline.engine.transform_net import TransformNet, build_network
from pipeline.engine.weight_files import file_sha256
from pipeline.errors import WeftError

#: Prefix of the optimiser's tensors inside a checkpoint (the network's are unprefixed).
_ADAM = "adam."
#: The one metadata key: safetensors writes several keys in a random order, one canonical JSON string is stable.
_META = "weft"


class ModelFileError(WeftError):
    """A model file is missing, unreadable or not the file that was recorded."""


def write_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """Write tensors to ``path`` through a temporary file and a rename; returns the file's sha256.

    A training killed mid-write leaves the previous file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    canonical = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"))
    save_file({k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}, str(tmp),
              metadata={_META: canonical})  # fmt: skip
    os.replace(tmp, path)
    return file_sha256(path)


def save_model(path: Path, net: TransformNet, metadata: dict[str, str]) -> str:
    """The trained network as safetensors with its architecture in the metadata; returns the sha256."""
    return write_atomic(path, dict(net.state_dict()), {**metadata, **net.architecture()})


def read_tensors(path: Path, sha256: str | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a file, after checking it is the file recorded as ``sha256`` (None: unchecked)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if sha256 is not None and (actual := file_sha256(path)) != sha256:
        raise ModelFileError(
            f"{path}: the file changed since it was recorded (sha256 {actual[:12]}…, recorded {sha256[:12]}…); "
            "refusing it. Delete the model's folder to train it again."
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {}).get(_META, "{}"))
        return load_file(str(path)), metadata
    except Exception as error:  # safetensors raises its own types for a damaged header; json a ValueError
        raise ModelFileError(f"{path}: not a readable safetensors model file ({error})") from None


def load_model(path: Path, sha256: str | None, device: torch.device | str = "cpu") -> TransformNet:
    """The network stored in ``path``, in eval mode on ``device``; refused when its sha256 is not ``sha256``."""
    tensors, metadata = read_tensors(path, sha256)
    try:
        net = build_network(metadata)
        net.load_state_dict(tensors)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path}: not a weft feed-forward model ({error})") from None
    return net.to(device=torch.device(device), memory_format=torch.channels_last).eval()


def checkpoint_tensors(net: TransformNet, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Network and Adam state as flat tensors (Adam's per-parameter moments and step counts)."""
    tensors = dict(net.state_dict())
    state = optimizer.state_dict()["state"]
    for index, entry in state.items():
        for name, value in entry.items():
            tensors[f"{_ADAM}{index}.{name}"] = torch.as_tensor(value)
    return tensors


def restore_checkpoint(net: TransformNet, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Put a checkpoint's network and Adam state back, bit for bit."""
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(_ADAM)})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(_ADAM):
            index, name = key.removeprefix(_ADAM).split(".", 1)
            state.setdefault(int(index), {})[name] = value
    saved = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


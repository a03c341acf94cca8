"""VGG-19 features with the repeat lattice as padding.

Zero padding gives a CNN a frame: every 3x3 convolution sees black beyond the edge, so a
stylized tile grows a visible border at every repeat. Here each convolution is preceded by
lattice padding (:class:`pipeline.repeat.gather.LatticePad2d`) of the current feature map, so the
network sees the tile as the infinite fabric it will be printed on. The same conv weights
serve every repeat type: padding is chosen per call, not baked into the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional

from pipeline.repeat.gather import LatticePad2d, printed_unit

from pipeline.repeat.lattice import Repeat
from pipeline.engine.schedule import deepest_layer
from pipeline.settings import LAYER_NAMES
from pipeline.engine.weights import CONV_NAMES, VGGWeights, load_weights

#: The padding a forward pass uses: a repeat type (lattice) or None (zeros, the classic behaviour).
Padding = Repeat | None






class VGGFeatures(nn.Module):
    """VGG-19 ``features`` up to the deepest layer needed, returning named ReLU outputs."""

    def __init__(self, weights: VGGWeights, last_layer: str = "relu5_1", pooling: str = "max") -> None:
        super().__init__()
        count = LAYER_NAMES.index(last_layer) + 1
        self.layer_names = LAYER_NAMES[:count]
        self.convs = nn.ModuleList()
        for (weight, bias), _name in zip(weights.convs[:count], CONV_NAMES):
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=0)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            conv.requires_grad_(False)
            self.convs.append(conv)
        self.pooling = pooling
        self.weights_sha256 = weights.sha256
        self.weights_source = weights.source
        self._pads: dict[Padding, nn.Module] = {}
        self.eval()

    def _pad(self, padding: Padding) -> nn.Module:
        if padding not in self._pads:
            self._pads[padding] = LatticePad2d(padding, 1)
        return self._pads[padding]

    def forward(self, image: torch.Tensor, layers: Sequence[str], padding: Padding) -> dict[str, torch.Tensor]:
        """Run the image (Caffe BGR, N x 3 x H x W) and return the requested ReLU outputs.

        ``mirror``: the network sees the printed unit, the tile and its three reflections
        (2W x 2H, gathered differentiably), with circular padding. Reflecting every layer's
        features instead is exact only for the first convolution (a reflected image's features
        are not reflected features) and leaves a line along the tile's edges.
        """
        wanted = set(layers)
        last = deepest_layer(wanted)
        image, padding = printed_unit(image, padding)
        pad = self._pad(padding)
        features: dict[str, torch.Tensor] = {}
        x = image
        for conv, name in zip(self.convs, self.layer_names):
            block, index = int(name[4]), int(name[6])
            if index == 1 and block > 1:
                x = functional.max_pool2d(x, 2) if self.pooling == "max" else functional.avg_pool2d(x, 2)
            # in place: conv's backward needs its input, not its output. Zero padding is the convolution's
            # own: no padded copy of every feature map (a 512 px tile's step 14% faster, docs/benchmarks.md)
            x = conv(pad(x)) if padding is not None else functional.conv2d(x, conv.weight, conv.bias, padding=1)
            x = torch.relu_(x)
            if name in wanted:
                features[name] = x
            if name == last:
                break
        return features


@lru_cache(maxsize=4)
def get_model(weights: str, device: str, last_layer: str = "relu5_1", pooling: str = "max") -> VGGFeatures:
    """The model for this process, built once and reused by every task (per weights/device/depth).

    channels_last is the fast layout for oneDNN (CPU) and cuDNN (tensor cores) convolutions.
    """
    model = VGGFeatures(load_weights(weights), last_layer=last_layer, pooling=pooling)
    return model.to(device=torch.device(device), memory_format=torch.channels_last)

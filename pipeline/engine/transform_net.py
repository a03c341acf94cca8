"""The feed-forward engine's network: Johnson's image transformation net, lattice-padded, tile-exact.

Johnson et al. 2016: a 9x9 convolution, two stride-2 convolutions down, residual blocks at a
quarter of the resolution, then two resize-convolutions up (nearest 2x, then a 3x3 convolution:
no checkerboard, Odena et al. 2016) and a 9x9 convolution out. Two changes make it a weft engine:

* **Lattice padding before every convolution** (:class:`pipeline.repeat.gather.LatticePad2d`),
  chosen per call like VGG-19's: a whole repeat run with ``padding=repeat`` sees the infinite
  fabric, so the result tiles seamlessly by construction.
* **Normalisation that does not depend on the tile.** Instance norm (Ulyanov 2016) normalises
  each image by its own statistics, so a tile and the whole repeat get different results. The
  default here is ``"none"``: each residual block ends in a learned per-channel scale that starts
  at zero (Fixup, Zhang et al. 2019), so the net starts as the identity plus a small branch and
  trains without any statistics. ``"batch"`` (statistics frozen after training) and
  ``"instance"`` exist for the measurement in docs/benchmarks.md that chose ``"none"``.

With no statistics, every output pixel depends only on the pixels within
:func:`pipeline.engine.schedule.receptive_radius`: a tile with that much halo, aligned to the total stride, equals the
whole image byte for byte (tests/test_feedforward.py).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional

from pipeline.repeat.gather import LatticePad2d, printed_unit
from pipeline.repeat.lattice import Repeat

#: How normalisation is done; only ``"none"`` and ``"batch"`` give tiles that equal the whole image.
Norm = Literal["none", "batch", "instance"]
#: Caffe pixel values are divided by this on the way in and multiplied on the way out (unit-scale activations).
PIXEL_SCALE = 128.0


class _Conv(nn.Module):
    """Lattice (or zero) padding, then a convolution: the unit every layer is built from."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor, padding: Repeat | None) -> torch.Tensor:
        return self.conv(_pad(padding, self.pad)(x))


_PADS: dict[tuple[Repeat | None, int], nn.Module] = {}


def _pad(padding: Repeat | None, size: int) -> nn.Module:
    """One padding module per (repeat, size), shared by every layer and network."""
    if (padding, size) not in _PADS:
        _PADS[(padding, size)] = LatticePad2d(padding, size)
    return _PADS[(padding, size)]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class _Residual(nn.Module):
    """Two 3x3 convolutions with a skip; the branch's learned scale starts at 0 (the block starts as identity)."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.first = _Conv(channels, channels, 3)
        self.second = _Conv(channels, channels, 3)
        self.norm1 = _norm(norm, channels)
        self.norm2 = _norm(norm, channels)
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, padding: Repeat | None) -> torch.Tensor:
        y = torch.relu(self.norm1(self.first(x, padding)))
        return x + self.scale * self.norm2(self.second(y, padding))


class TransformNet(nn.Module):
    """Caffe-space image (N, 3, H, W) in, Caffe-space image of the same size out.

    H and W must be multiples of :data:`STRIDE` (times 2 along a drop's axis for lattice padding,
    see :func:`pipeline.repeat.lattice.size_quantum`); the output adds the network's change to
    its input, so an untrained net returns the design.
    """

    def __init__(self, width: int = 16, blocks: int = 5, norm: Norm = "none") -> None:
        super().__init__()
        self.width, self.blocks, self.norm = width, blocks, norm
        self.down = nn.ModuleList([_Conv(3, width, 9), _Conv(width, 2 * width, 3, 2), _Conv(2 * width, 4 * width, 3, 2)])
        self.down_norms = nn.ModuleList([_norm(norm, c) for c in (width, 2 * width, 4 * width)])
        self.res = nn.ModuleList([_Residual(4 * width, norm) for _ in range(blocks)])
        self.up = nn.ModuleList([_Conv(4 * width, 2 * width, 3), _Conv(2 * width, width, 3)])
        self.up_norms = nn.ModuleList([_norm(norm, c) for c in (2 * width, width)])
        self.out = _Conv(width, 3, 9)
        nn.init.zeros_(self.out.conv.weight)  # start as the identity: training begins at the design
        nn.init.zeros_(self.out.conv.bias)

    def forward(self, image: torch.Tensor, padding: Repeat | None = None) -> torch.Tensor:
        """The stylized image; a whole ``mirror`` repeat runs on its printed unit and keeps the tile's corner."""
        height, width = image.shape[-2:]
        image, padding = printed_unit(image, padding)
        x = image / PIXEL_SCALE
        for conv, norm in zip(self.down, self.down_norms):
            x = torch.relu(norm(conv(x, padding)))
        for block in self.res:
            x = block(x, padding)
        for conv, norm in zip(self.up, self.up_norms):
            x = functional.interpolate(x, scale_factor=2, mode="nearest")
            x = torch.relu(norm(conv(x, padding)))
        return (image + PIXEL_SCALE * self.out(x, padding))[..., :height, :width]

    def architecture(self) -> dict[str, str]:
        """What rebuilds this network from a model file (kept in the file's metadata)."""
        return {"width": str(self.width), "blocks": str(self.blocks), "norm": self.norm}


def build_network(architecture: dict[str, str]) -> TransformNet:
    """The network a model file's metadata describes."""
    norm = architecture.get("norm", "none")
    if norm not in ("none", "batch", "instance"):
        raise ValueError(f"unknown normalisation {norm!r}")
    return TransformNet(int(architecture["width"]), int(architecture["blocks"]), norm)  # type: ignore[arg-type]

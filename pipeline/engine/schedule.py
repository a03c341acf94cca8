"""The whole-image sizes of a coarse-to-fine pass: a size rule, free of torch, that planning shares.

Sizes are multiples of the repeat's quantum through the network's poolings, so the lattice is
exact at every layer; `weft plan` computes them without loading the network.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.repeat.lattice import Repeat, size_quantum
from pipeline.settings import LAYER_NAMES, Settings


def whole_image_sizes(
    width: int, height: int, repeat: Repeat | str, settings: Settings, *, scales: int | None = None
) -> list[tuple[int, int]]:
    """(h, w) of each whole-image scale ending near W x H, every size exactly lattice-periodic in the net.

    Sizes are multiples of the repeat's quantum through the network's poolings (see
    :func:`pipeline.repeat.lattice.size_quantum`); the caller resamples the last one to W x H exactly.
    """
    qx, qy = size_quantum(repeat, pool_depth([settings.content_layer, *settings.style_layers]))
    count = scales or settings.scales
    sizes = []
    for index in range(count):
        factor = settings.scale_factor ** (count - 1 - index)
        w = max(qx, round(width / factor / qx) * qx)
        h = max(qy, round(height / factor / qy) * qy)
        if not sizes or sizes[-1] != (h, w):
            sizes.append((h, w))
    return sizes


def deepest_layer(layers: Iterable[str]) -> str:
    """The last layer (in network order) among ``layers``: the network is cut there."""
    return max(layers, key=LAYER_NAMES.index)


def pool_depth(layers: Iterable[str]) -> int:
    """How many 2x poolings lie before the deepest of ``layers`` (relu5_1 -> 4)."""
    return int(deepest_layer(layers)[4]) - 1

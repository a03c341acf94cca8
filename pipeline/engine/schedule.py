"""The sizes the engines work at: size rules, free of torch, that planning shares.

Whole-image sizes are multiples of the repeat's quantum through the network's poolings (or the
feed-forward net's strides), so the lattice is exact at every layer; `weft plan` computes them,
and the feed-forward tiles' halo, without loading a network.
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


#: Total stride of the feed-forward network's two downsamplings: tile origins are multiples of it.
STRIDE = 4
#: Stride-2 downsamplings in the feed-forward network.
FEEDFORWARD_DEPTH = 2


def feedforward_size(width: int, height: int, repeat: Repeat | str) -> tuple[int, int]:
    """(h, w) a feed-forward whole repeat runs at: the print size rounded to the net's lattice quantum.

    The result is resampled to W x H exactly when they differ (a few pixels at most).
    """
    qx, qy = size_quantum(repeat, FEEDFORWARD_DEPTH)
    return max(qy, round(height / qy) * qy), max(qx, round(width / qx) * qx)


def receptive_radius(blocks: int) -> int:
    """How far (px, full resolution) an output pixel sees: the halo a tile needs to equal the whole image.

    Walks the layers from the output back to the input: a k x k convolution at scale s adds
    (k // 2) * s, a stride-2 convolution reads one more pixel of its finer input, and a nearest
    2x upsampling can move a pixel by one step of the coarser grid. Rounded up to the stride.
    """
    radius = 4  # 9x9 out, full resolution
    radius += 1 + 1 * 2  # 3x3 at full res (second up-conv); nearest upsampling from 1/2 (one step of 2)
    radius += 1 * 2 + 1 * 4  # 3x3 at 1/2 (first up-conv); nearest upsampling from 1/4
    radius += blocks * 2 * 1 * 4  # two 3x3 per residual block at 1/4
    radius += 1 * 2 + 1  # stride-2 3x3 into 1/4 (reads 1 px of 1/2 beyond), stride-2 3x3 into 1/2
    radius += 4  # 9x9 in
    return -(-radius // STRIDE) * STRIDE


def span_pixels(span_cm: float, dpi: int) -> float:
    """Pixels on the printed cloth that ``span_cm`` covers at ``dpi``: the style's long side at print size."""
    return span_cm / 2.54 * dpi


def span_long_side(
    span_cm: float, dpi: int, level_hw: tuple[int, int], print_hw: tuple[int, int], max_size: int
) -> tuple[int, bool]:
    """(style long side in px for a level, whether ``max_size`` capped it) under ``style_span_cm``.

    A level of the coarse-to-fine schedule is the print scaled down by its long side's ratio, so the
    style is scaled down by the same ratio: its texture covers the same part of the cloth at every
    level. Enlarging the scan beyond its own size is allowed here (that is what a wide span asks for);
    only memory (``max_size``) caps it.
    """
    wanted = span_pixels(span_cm, dpi) * max(level_hw) / max(print_hw)
    return max(16, min(round(wanted), max_size)), round(wanted) > max_size

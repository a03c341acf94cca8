"""Feed-forward inference: a whole repeat with lattice padding, or one tile window with a halo.

Both give the same bytes for the same pixels. The whole repeat runs the network with lattice
padding before every convolution, i.e. on the infinite fabric; a tile gathers its window with
a halo of :func:`pipeline.engine.schedule.receptive_radius` across the wrap and runs with
zero padding, which only ever touches pixels of the halo that are thrown away. The window's
origin and the whole repeat's size are multiples of the network's stride, so both see the
same downsampling grid. The content is the optimisation engine's (knitted at the seams when
the design does not repeat), so the two engines start from the same picture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pipeline.engine.device import precision_context
from pipeline.engine.knit import content_window, needs_knit
from pipeline.engine.losses import seam_band
from pipeline.engine.pixels import preserve_colors, to_caffe, to_uint8
from pipeline.engine.schedule import STRIDE, receptive_radius
from pipeline.engine.transform_net import TransformNet
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.resample import rgb_uint8
from pipeline.settings import Settings


@torch.inference_mode()
def stylize_window(
    net: TransformNet,
    design: np.ndarray,
    repeat: Repeat,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    keep: tuple[slice, slice],
    settings: Settings,
    device: torch.device,
    *,
    padding: Repeat | None = None,
) -> np.ndarray:
    """The ``keep`` part of the network's output on ``window`` of the design at ``size``: (h, w, 3) uint8.

    ``padding=repeat`` (whole repeats only) pads with the lattice; tiles pass None and a halo.
    """
    if window[0] % STRIDE or window[1] % STRIDE:
        raise ValueError(f"window origin {window[:2]} is not a multiple of the network's stride {STRIDE}")
    content = content_window(design, repeat, size, window, band=seam_band(settings, size),
                             knit=needs_knit(design, repeat), device=device)  # fmt: skip
    with precision_context(settings.precision, device):
        output = net(to_caffe(content, device), padding)
    rgb = to_uint8(output.float())[keep]
    if settings.preserve_colors:
        rgb = preserve_colors(rgb, rgb_uint8(content)[keep])
    return rgb


def stylize_whole(
    net: TransformNet, design: np.ndarray, repeat: Repeat, size: tuple[int, int], settings: Settings,
    device: torch.device,
) -> np.ndarray:  # fmt: skip
    """A whole repeat of ``size`` (h, w) from :func:`pipeline.engine.schedule.feedforward_size`, lattice-padded."""
    h, w = size
    return stylize_window(net, design, repeat, size, (0, 0, h, w), (slice(None), slice(None)), settings, device,
                          padding=repeat)  # fmt: skip


def stylize_tiled(
    net: TransformNet, design: np.ndarray, repeat: Repeat, size: tuple[int, int], settings: Settings,
    device: torch.device, tile: int, callback: Callable[[int, int], None] | None = None,
) -> np.ndarray:  # fmt: skip
    """A whole repeat of ``size`` computed tile by tile (memory: the result plus one window), equal to :func:`stylize_whole`."""
    from pipeline.repeat.tiles import TileGrid

    height, width = size
    pad = receptive_radius(net.blocks)
    grid = TileGrid(repeat, width, height, tile, (0, 0))
    result = np.empty((height, width, 3), np.uint8)
    tiles = list(grid.tiles())
    for done, t in enumerate(tiles, 1):
        result[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] = stylize_window(
            net, design, repeat, size, tuple(t.window(pad)), t.core_in_window(pad), settings, device
        )
        if callback is not None:
            callback(done, len(tiles))
    return result

"""One tile window of a level, refined: the optimisation the pipeline's tile tasks run.

The network runs with zero padding here: the halo is real context gathered across the wrap
and only the kept part (core +- overlap) is returned, so the zero border never reaches
what is written. Content is the design at this level's size, same window, faded near the
repeat seams exactly as the whole-repeat pass fades it.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.engine.knit import content_window, needs_knit
from pipeline.engine.losses import StyleTargets, seam_band
from pipeline.engine.optimise import Problem, content_mask, optimise
from pipeline.engine.pixels import preserve_colors, to_caffe, to_uint8
from pipeline.engine.vgg import get_model
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.resample import rgb_uint8
from pipeline.settings import Settings

#: (y0, x0, height, width) of a window in frame coordinates.
Window = tuple[int, int, int, int]


def refine_window(
    design: np.ndarray,
    start: np.ndarray,
    targets: StyleTargets,
    *,
    repeat: Repeat,
    size: tuple[int, int],
    window: Window,
    origin: tuple[int, int],
    keep: tuple[slice, slice],
    settings: Settings,
    iterations: int,
    seed: int,
    device: torch.device,
) -> np.ndarray:
    """Optimise ``window`` of a level of ``size`` (h, w) from ``start`` (RGB float, window-sized).

    Returns the ``keep`` part of the result as (h, w, 3) uint8, colours preserved when asked.
    """
    model = get_model(settings.weights, str(device), pooling=settings.pooling)
    content = content_window(design, repeat, size, window, origin=origin, band=seam_band(settings, size),
                             knit=needs_knit(design, repeat))  # fmt: skip
    problem = Problem(
        content=to_caffe(content, device),
        targets=targets.to(device),
        content_mask=content_mask(settings, repeat, size, window, device, origin),
        padding=None,
        tv_repeat=None,
    )
    torch.manual_seed(seed)
    result, _ = optimise(model, problem, to_caffe(start, device), settings, iterations, device)
    rgb = to_uint8(result)[keep]
    if settings.preserve_colors:
        rgb = preserve_colors(rgb, rgb_uint8(content)[keep])
    return rgb

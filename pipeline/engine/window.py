"""One tile window of a level, refined: the optimisation the pipeline's tile tasks run.

The network runs with zero padding here: the halo is real context gathered across the wrap
and only the kept part (core +- overlap) is returned, so the zero border never reaches
what is written. Content is the design at this level's size, same window, faded near the
repeat seams exactly as the whole-repeat pass fades it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pipeline.engine.knit import content_window, needs_knit
from pipeline.engine.losses import StyleTargets, seam_band
from pipeline.engine.optimise import Problem, content_mask, optimise
from pipeline.engine.regions import RegionGuide, Regions
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
    targets: StyleTargets | Sequence[StyleTargets],
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
    regions: Regions | None = None,
) -> np.ndarray:
    """Optimise ``window`` of a level of ``size`` (h, w) from ``start`` (RGB float, window-sized).

    Returns the ``keep`` part of the result as (h, w, 3) uint8, colours preserved when asked.
    With ``regions``, ``targets`` is the job's per-style targets and each region gets its own.
    """
    model = get_model(settings.weights, str(device), pooling=settings.pooling)
    band, knit = seam_band(settings, size), needs_knit(design, repeat)
    content = content_window(design, repeat, size, window, origin=origin, band=band, knit=knit)
    if regions is not None:
        assert not isinstance(targets, StyleTargets), "styles by region need the per-style targets"
        guide: StyleTargets | RegionGuide = regions.guide(targets, repeat, size, window, origin=origin, band=band,
                                                          knit=knit, device=device)  # fmt: skip
    else:
        assert isinstance(targets, StyleTargets)
        guide = targets.to(device)
    problem = Problem(
        content=to_caffe(content, device),
        targets=guide,
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

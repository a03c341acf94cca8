"""A whole repeat, coarse to fine, with lattice padding: `weft stylize` and the pipeline's coarse pass.

Each scale starts from the previous result upsampled along the lattice, so the composition
is fixed at the coarse scale and the result tiles seamlessly by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from pipeline.engine.knit import content_window, needs_knit
from pipeline.engine.losses import StyleTargets, seam_band
from pipeline.engine.optimise import Problem, StepCallback, content_mask, derive_seed, optimise
from pipeline.engine.regions import RegionGuide, Regions
from pipeline.engine.pixels import caffe_to_rgb_float, preserve_colors, to_caffe, to_uint8
from pipeline.engine.schedule import whole_image_sizes
from pipeline.engine.targets import compute_style_targets
from pipeline.engine.vgg import get_model
from pipeline.repeat import resample
from pipeline.repeat.extract import TileRecipe
from pipeline.repeat.lattice import Repeat, as_repeat, fit_to_repeat
from pipeline.settings import Settings


def stylize_image(
    design: np.ndarray,
    styles: Sequence[tuple[np.ndarray, float]],
    *,
    repeat: Repeat | str,
    width: int,
    height: int,
    settings: Settings,
    seed: int = 0,
    device: str | torch.device = "cpu",
    scales: int | None = None,
    callback: StepCallback | None = None,
    scale_callback: Callable[[int, int, tuple[int, int]], None] | None = None,
    targets: Mapping[tuple[int, int], StyleTargets] | None = None,
    regions: Regions | None = None,
    style_targets: Mapping[tuple[int, int], Sequence[StyleTargets]] | None = None,
) -> np.ndarray:
    """Stylize a whole repeat coarse-to-fine; returns (height, width, 3) uint8 that tiles seamlessly.

    This is ``weft stylize`` and the pipeline's coarse pass. Each scale starts from the previous
    result upsampled along the lattice, so the composition is fixed at the coarse scale.
    ``targets`` maps a scale's (h, w) to precomputed style targets (the pipeline shares them
    between jobs); missing scales are computed here. With ``regions`` (styles by region),
    ``style_targets`` maps every scale's (h, w) to the job's per-style targets instead.
    """
    repeat = as_repeat(repeat)
    design = fit_to_repeat(design, repeat)
    device = torch.device(device) if not isinstance(device, torch.device) else device
    model = get_model(settings.weights, str(device), pooling=settings.pooling)
    knit = needs_knit(design, repeat)
    current: torch.Tensor | None = None
    sizes = whole_image_sizes(width, height, repeat, settings, scales=scales)
    for index, (h, w) in enumerate(sizes):
        if scale_callback is not None:
            scale_callback(index, len(sizes), (h, w))
        if regions is not None:
            assert style_targets is not None, "styles by region need the per-style targets of every scale"
            band = seam_band(settings, (h, w))
            scale_targets: StyleTargets | RegionGuide = regions.guide(
                style_targets[(h, w)], repeat, (h, w), (0, 0, h, w), band=band, knit=knit, device=device
            )
        else:
            scale_targets = (targets or {}).get((h, w)) or compute_style_targets(model, styles, (h, w), settings, device)
        problem = whole_problem(design, scale_targets, repeat, (h, w), settings, device, knit=knit)
        if current is None:
            start = initial_image(settings, problem.content, derive_seed(seed, "init", index), device)
            iterations = settings.iterations
        else:
            start = to_caffe(resample.resize_periodic(caffe_to_rgb_float(current), repeat, (h, w)), device)
            iterations = settings.refine_iterations
        current, _ = optimise(model, problem, start, settings, iterations, device, callback)
    assert current is not None
    if current.shape[-2:] != (height, width):
        current = to_caffe(resample.resize_periodic(caffe_to_rgb_float(current), repeat, (height, width)), device)
    result = to_uint8(current)
    if settings.preserve_colors:
        design_rgb = design_content(design, repeat, (height, width), settings, knit=knit)
        result = preserve_colors(result, resample.rgb_uint8(design_rgb))
    return result


def design_content(
    design: np.ndarray, repeat: Repeat, size: tuple[int, int], settings: Settings, *, knit: bool
) -> np.ndarray:
    """The design resized to a whole repeat of ``size`` (h, w), knitted when it does not repeat by itself."""
    h, w = size
    return content_window(design, repeat, size, (0, 0, h, w), band=seam_band(settings, size), knit=knit)


def whole_problem(
    design: np.ndarray,
    targets: StyleTargets | RegionGuide,
    repeat: Repeat,
    size: tuple[int, int],
    settings: Settings,
    device: torch.device,
    *,
    knit: bool,
) -> Problem:
    """The optimisation of a whole repeat at one scale: lattice padding, wrapped TV, faded seam content."""
    h, w = size
    padding = repeat if settings.padding == "lattice" else None
    return Problem(
        content=to_caffe(design_content(design, repeat, size, settings, knit=knit), device),
        targets=targets.to(device),
        content_mask=content_mask(settings, repeat, size, (0, 0, h, w), device),
        padding=padding,
        tv_repeat=padding,
    )


def prepare_design(
    design: np.ndarray, repeat: Repeat | str, settings: Settings, *, tile: TileRecipe | None = None
) -> np.ndarray:
    """The design as the engine uses it: the ``tile`` cut from it when one was found
    (:mod:`pipeline.repeat.tile_choice` decides, from ``crop_to_repeat``), fitted to the repeat."""
    if tile is not None:
        from pipeline.repeat.extract import cut_tile

        design = cut_tile(design, tile)
    return fit_to_repeat(design, repeat)


def initial_image(settings: Settings, content: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor:
    """Start image: the design itself, seeded noise, or a given image resized to the content."""
    if settings.init == "content":
        return content.clone()
    if settings.init == "noise":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(content.shape, generator=generator) * 32.0
        return noise.to(device).contiguous(memory_format=torch.channels_last)
    from pipeline.manifest.images import load_rgb

    rgb = load_rgb(settings.init)
    return to_caffe(resample.resize_periodic(rgb, Repeat.BLOCK, tuple(content.shape[-2:])), device)

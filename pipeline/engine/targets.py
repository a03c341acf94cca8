"""Style targets: the Gram matrices of a style image at the size that matches an output.

Computed once per (style, output size, style-relevant settings) and shared by every tile
and every job that matches; a blend is a weighted sum of per-style Grams.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pipeline.engine.device import precision_context
from pipeline.engine.losses import StyleTargets, blend_grams, gram
from pipeline.engine.pixels import to_caffe
from pipeline.engine.vgg import VGGFeatures
from pipeline.settings import Settings


def style_image_size(
    style_hw: tuple[int, int], output_hw: tuple[int, int], style_scale: float, max_size: int | None = None
) -> tuple[int, int]:
    """Style image size for Gram targets: ``style_scale`` x the output's long side, capped.

    The cap is ``max_size`` and the style's own long side: enlarging a painting beyond its
    scan adds no texture, only memory (VGG-19 on an 8k style image would need tens of GB), so
    at print sizes the style's detail is matched at the scan's own scale.
    """
    long_side = max(output_hw) * style_scale
    long_side = min(long_side, max(style_hw), max_size or long_side)
    factor = long_side / max(style_hw)
    return max(16, round(style_hw[0] * factor)), max(16, round(style_hw[1] * factor))


@torch.no_grad()
def compute_style_targets(
    model: VGGFeatures,
    styles: Sequence[tuple[np.ndarray, float]],
    output_hw: tuple[int, int],
    settings: Settings,
    device: torch.device,
    long_side: int | None = None,
) -> StyleTargets:
    """Blended Gram targets of ``styles`` [(rgb uint8, weight)] for an output of ``output_hw``.

    ``long_side`` (px) fixes the style image's size instead of ``style_scale`` (``style_span_cm``:
    :func:`pipeline.engine.schedule.span_long_side`).
    """
    from PIL import Image

    per_style = []
    for rgb, _weight in styles:
        if long_side is None:
            h, w = style_image_size(rgb.shape[:2], output_hw, settings.style_scale, settings.style_max_size)
        else:
            factor = long_side / max(rgb.shape[:2])
            h, w = max(16, round(rgb.shape[0] * factor)), max(16, round(rgb.shape[1] * factor))
        resized = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
        with precision_context(settings.precision, device):
            feats = model(to_caffe(resized, device), settings.style_layers, None)
        per_style.append([gram(feats[name]) for name in settings.style_layers])
    grams = blend_grams(per_style, [weight for _, weight in styles])
    return StyleTargets(tuple(settings.style_layers), tuple(g.contiguous() for g in grams))

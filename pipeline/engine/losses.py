"""Gatys losses: content (one deep layer), style (Gram matrices, blended), total variation.

Gram matrices are normalised by channels and positions (F Fᵀ / (C·H·W)), so a 512 px tile
and the 2048 px whole speak the same units and style targets computed once from the whole
style image serve every tile. Grams and every loss are computed in float32 even when the
network runs in bf16: the reductions are where low precision hurts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.repeat.lattice import Repeat, source_coords
from pipeline.settings import Settings


def gram(features: torch.Tensor) -> torch.Tensor:
    """F Fᵀ / (C·H·W) in float32, for a (1, C, H, W) map in any memory layout."""
    _, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().permute(0, 2, 3, 1).reshape(height * width, channels)
        return flat.t().mm(flat) / (channels * height * width)


@dataclass(frozen=True)
class StyleTargets:
    """Blended Gram targets, one per style layer, for one scale (computed once, reused by all tiles)."""

    layers: tuple[str, ...]
    grams: tuple[torch.Tensor, ...]

    def to(self, device: torch.device | str) -> StyleTargets:
        return StyleTargets(self.layers, tuple(g.to(device) for g in self.grams))


def blend_grams(per_style: Sequence[Sequence[torch.Tensor]], weights: Sequence[float]) -> tuple[torch.Tensor, ...]:
    """Weighted sum of each layer's Gram over styles (the neural-style blend)."""
    total = sum(weights)
    return tuple(
        sum(w / total * grams[i] for w, grams in zip(weights, per_style)) for i in range(len(per_style[0]))
    )


def blend_targets(targets: Sequence[StyleTargets], weights: Sequence[float]) -> StyleTargets:
    """One target from the per-style targets of a blend (same layers, same scale)."""
    if len(targets) == 1:
        return targets[0]
    return StyleTargets(targets[0].layers, blend_grams([t.grams for t in targets], weights))


def style_loss(
    features: dict[str, torch.Tensor], targets: StyleTargets, layer_weights: Sequence[float]
) -> torch.Tensor:
    """Σ_l w_l · mean((G_l − A_l)²)."""
    total = torch.zeros((), device=targets.grams[0].device)
    for name, target, weight in zip(targets.layers, targets.grams, layer_weights):
        total = total + weight * torch.mean((gram(features[name]) - target) ** 2)
    return total


def content_loss(feature: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean((F − F_c)²), optionally weighted by a spatial mask (1, 1, h, w) at the layer's resolution."""
    with torch.autocast(feature.device.type, enabled=False):
        diff = (feature.float() - target.float()) ** 2
        if mask is None:
            return diff.mean()
        return (diff * mask).mean()


def tv_loss(image: torch.Tensor, repeat: Repeat | None = None) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (across the wrap when a repeat is given)."""
    if repeat is not None:
        from pipeline.repeat.gather import wrap_pad

        image = wrap_pad(image, repeat, 1)[..., 1:, 1:]
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return (dx**2).mean() + (dy**2).mean()


def seam_fade_mask(
    repeat: Repeat,
    tile_size: tuple[int, int],
    window: tuple[int, int, int, int],
    band: float,
    frame_origin: tuple[int, int] = (0, 0),
    floor: float = 0.0,
) -> np.ndarray:
    """Weight per pixel of a window: ``floor`` on the repeat's seams, rising smoothly to 1 ``band`` px inside.

    Most scanned designs do not repeat exactly, so the content target itself has a step at the
    seam. Fading the content loss out there lets the style loss and lattice padding knit the edges.
    The window (y0, x0, h, w) is in the frame coordinates of a level whose frame starts at
    ``frame_origin``; the seams are where the design's own edges meet, wherever the window is.
    """
    height, width = tile_size
    y0, x0, h, w = window
    if band <= 0:
        return np.ones((h, w), np.float32)
    ys = np.arange(y0, y0 + h, dtype=np.int64)[:, None] + frame_origin[0]
    xs = np.arange(x0, x0 + w, dtype=np.int64)[None, :] + frame_origin[1]
    sx, sy = source_coords(repeat, xs, ys, width, height)
    # distance in pixels from the pixel centre to the nearest design edge
    dist = np.minimum(np.minimum(sx + 0.5, width - sx - 0.5), np.minimum(sy + 0.5, height - sy - 0.5))
    t = np.clip(dist / band, 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)  # smoothstep
    return (floor + (1.0 - floor) * ramp).astype(np.float32)


def seam_band(settings: Settings, size: tuple[int, int]) -> float:
    """Width in pixels of the band along the repeat seams where content is faded (and knitted).

    ``seam_fade`` is a fraction of the shorter side of the level, so the band covers the same
    part of the design at every scale.
    """
    return settings.seam_fade * min(size)

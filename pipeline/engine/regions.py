"""Styles by region: guided Gram matrices (Gatys et al. 2017, section 3) and ``keep`` regions.

A job's mask is a set of soft region planes (R, summing to one per pixel) with the design's own
repeat. Every window the engine optimises gets the same window of those planes, cut exactly as its
content is cut (:func:`pipeline.engine.knit.content_window`: lattice resampling, frames, halos,
knitting), so a region that crosses a repeat edge is continuous across it. Each styled region's
Grams are computed over its own features (the planes pooled to every VGG layer) against its own
targets; a ``keep`` region has no style term, and its pixels are put back to the design after each
optimisation (a soft composite along the planes' edges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from pipeline.engine.knit import content_window
from pipeline.engine.losses import StyleTargets
from pipeline.repeat.lattice import Repeat

#: A region whose share of a window's pixels is below this has no style term there.
MIN_SHARE = 1e-4


def label_planes(labels: np.ndarray, count: int) -> np.ndarray:
    """(H, W) region indices -> (H, W, count) float32 one-hot planes (the form every window is cut from)."""
    return (labels[..., None] == np.arange(count)[None, None, :]).astype(np.float32)


def planes_window(
    planes: np.ndarray,
    repeat: Repeat,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    *,
    origin: tuple[int, int] = (0, 0),
    band: float,
    knit: bool,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The planes at a level of ``size``, window (y0, x0, h, w), as (1, R, h, w) summing to one.

    The same call as the design's content window, so masks follow the lattice exactly as content
    does; cubic overshoot is clipped and the planes renormalised.
    """
    soft = content_window(planes, repeat, size, window, origin=origin, band=band, knit=knit, device=device)
    soft = soft.clamp_min(0)
    return soft / soft.sum(dim=1, keepdim=True).clamp_min(1e-6)


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(F·m)(F·m)ᵀ / (C·Σm²) in float32: the Gram of one region (equals :func:`gram` when m = 1)."""
    _, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        weighted = features.float() * mask.float()
        flat = weighted.permute(0, 2, 3, 1).reshape(height * width, channels)
        norm = channels * (mask.float() ** 2).sum().clamp_min(1e-6)
        return flat.t().mm(flat) / norm


@dataclass(frozen=True)
class RegionGuide:
    """The regions of one window: soft planes (1, R, h, w) and each region's targets (None: keep)."""

    planes: torch.Tensor
    targets: tuple[StyleTargets | None, ...]

    def to(self, device: torch.device | str) -> RegionGuide:
        return RegionGuide(self.planes.to(device), tuple(t.to(device) if t else None for t in self.targets))

    def style_loss(self, features: dict[str, torch.Tensor], layer_weights: Sequence[float]) -> torch.Tensor:
        """Σ_r share_r · Σ_l w_l · mean((G_rl − A_rl)²) over the styled regions present in the window."""
        shares = self.planes.float().mean(dim=(0, 2, 3))
        total = torch.zeros((), device=self.planes.device)
        pooled: dict[tuple[int, int], torch.Tensor] = {}
        for index, targets in enumerate(self.targets):
            if targets is None or float(shares[index]) < MIN_SHARE:
                continue
            for name, target, weight in zip(targets.layers, targets.grams, layer_weights):
                feature = features[name]
                hw = tuple(feature.shape[-2:])
                if hw not in pooled:
                    pooled[hw] = functional.adaptive_avg_pool2d(self.planes.float(), hw)
                g = guided_gram(feature, pooled[hw][:, index : index + 1])
                total = total + shares[index] * weight * torch.mean((g - target) ** 2)
        return total

    def keep_weight(self) -> torch.Tensor | None:
        """(1, 1, h, w) share of ``keep`` regions per pixel, or None when no region is kept."""
        kept = [index for index, targets in enumerate(self.targets) if targets is None]
        if not kept:
            return None
        return self.planes[:, kept].sum(dim=1, keepdim=True)

    def composite(self, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``image`` with the kept regions put back to ``content`` (both Caffe, same window)."""
        keep = self.keep_weight()
        if keep is None:
            return image
        keep = keep.to(image.dtype)
        return image * (1 - keep) + content * keep


@dataclass(frozen=True)
class Regions:
    """A job's regions as the engine takes them: the planes at the design's resolution and, per region,
    which of the job's styles it blends (empty: keep). Small enough to build once per task."""

    planes: np.ndarray  # (H, W, R) float32, the design's repeat
    blends: tuple[tuple[tuple[int, float], ...], ...]  # per region: (index into the job's styles, weight)

    def region_targets(self, per_style: Sequence[StyleTargets]) -> tuple[StyleTargets | None, ...]:
        """Each region's targets from the job's per-style targets (one scale); None for keep."""
        from pipeline.engine.losses import blend_targets

        return tuple(
            blend_targets([per_style[i] for i, _ in blend], [w for _, w in blend]) if blend else None
            for blend in self.blends
        )

    def guide(
        self,
        per_style: Sequence[StyleTargets],
        repeat: Repeat,
        size: tuple[int, int],
        window: tuple[int, int, int, int],
        *,
        origin: tuple[int, int] = (0, 0),
        band: float,
        knit: bool,
        device: torch.device | str,
    ) -> RegionGuide:
        """The :class:`RegionGuide` of one window of a level."""
        planes = planes_window(self.planes, repeat, size, window, origin=origin, band=band, knit=knit, device=device)
        return RegionGuide(planes, tuple(t.to(device) if t else None for t in self.region_targets(per_style)))

"""One optimisation: content + Gram style + TV from a start image, L-BFGS or Adam, bf16 network.

Every pass (a whole repeat, one tile window, a benchmark) builds a :class:`Problem` and calls
:func:`optimise`; the same call on the same machine gives the same bytes. :func:`score` measures
any image under a problem with the same loss terms, in fp32.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pipeline.engine.device import precision_context
from pipeline.engine.losses import StyleTargets, content_loss, seam_band, seam_fade_mask, style_loss, tv_loss
from pipeline.engine.regions import RegionGuide
from pipeline.engine.vgg import VGGFeatures
from pipeline.errors import WeftError
from pipeline.repeat.lattice import Repeat
from pipeline.settings import Settings

#: Called after every optimiser step with (step, total_steps, losses).
StepCallback = Callable[[int, int, dict[str, float]], None]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (job seed, scale, tile): stable across processes and machines."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def content_mask(
    settings: Settings,
    repeat: Repeat,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    device: torch.device,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor | None:
    """The content-loss weight map (1, 1, h, w) of a window, or None when the content is not faded."""
    if settings.seam_content >= 1.0 or settings.seam_fade <= 0 or repeat.kind == "mirror":  # a mirror has no seam
        return None
    band = seam_band(settings, size)
    mask = seam_fade_mask(repeat, size, window, band, frame_origin=origin, floor=settings.seam_content)
    return torch.from_numpy(mask).to(device)[None, None]


@dataclass(frozen=True)
class Problem:
    """Everything one optimisation needs besides its start image."""

    content: torch.Tensor  # (1, 3, h, w) Caffe, the design at this scale (window)
    targets: StyleTargets | RegionGuide  # one style (or blend) everywhere, or styles by region (guided Grams)
    content_mask: torch.Tensor | None  # (1, 1, h, w) pixel-level seam fade, or None
    padding: Repeat | None  # lattice padding in the network; None = zeros (tiles, or padding = "zeros")
    tv_repeat: Repeat | None  # wrap TV across the repeat (whole-image passes)


def _content_target(
    model: VGGFeatures, problem: Problem, settings: Settings, precision: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The content layer's features of ``problem.content`` and the content mask pooled to their size."""
    content_layer = settings.content_layer
    with torch.no_grad(), precision_context(precision, device):
        content_target = model(problem.content, [content_layer], problem.padding)[content_layer].detach()
    mask = None
    if problem.content_mask is not None:
        mask = torch.nn.functional.adaptive_avg_pool2d(problem.content_mask, content_target.shape[-2:])
    return content_target, mask


def _losses(
    model: VGGFeatures,
    problem: Problem,
    image: torch.Tensor,
    content_target: torch.Tensor,
    mask: torch.Tensor | None,
    settings: Settings,
    precision: str,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(content, style, total) of ``image``: total = weighted content + style, + TV when tv_weight > 0."""
    layers = list(dict.fromkeys([settings.content_layer, *settings.style_layers]))
    # The optimised pixels stay in plain NCHW (L-BFGS flattens them); the network sees channels_last.
    with precision_context(precision, device):
        feats = model(image.contiguous(memory_format=torch.channels_last), layers, problem.padding)
    c_loss = content_loss(feats[settings.content_layer], content_target, mask)
    if isinstance(problem.targets, RegionGuide):
        s_loss = problem.targets.style_loss(feats, settings.style_layer_weights)
    else:
        s_loss = style_loss(feats, problem.targets, settings.style_layer_weights)
    loss = settings.content_weight * c_loss + settings.style_weight * s_loss
    if settings.tv_weight > 0:
        loss = loss + settings.tv_weight * tv_loss(image, problem.tv_repeat)
    return c_loss, s_loss, loss


def optimise(
    model: VGGFeatures,
    problem: Problem,
    start: torch.Tensor,
    settings: Settings,
    iterations: int,
    device: torch.device,
    callback: StepCallback | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Minimise content + style + TV from ``start``; returns the image and its last losses.

    With styles by region, the ``keep`` regions of the result are the content's pixels.
    """
    content_target, mask = _content_target(model, problem, settings, settings.precision, device)
    image = start.detach().clone().contiguous().requires_grad_(True)
    last: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        c_loss, s_loss, loss = _losses(model, problem, image, content_target, mask, settings, settings.precision, device)
        loss.backward()
        last.update(content=c_loss.item(), style=s_loss.item(), total=loss.item())
        return loss

    if settings.optimizer == "lbfgs":
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [image], lr=settings.learning_rate, max_iter=1, history_size=50
        )
    else:
        optimizer = torch.optim.Adam([image], lr=settings.learning_rate)
    for step in range(iterations):
        optimizer.step(closure)
        if not all(math.isfinite(v) for v in last.values()):
            raise WeftError(f"the optimisation diverged at step {step + 1} (losses {last}); lower learning_rate")
        if callback is not None:
            callback(step + 1, iterations, dict(last))
    if isinstance(problem.targets, RegionGuide):  # kept regions are the design's own pixels
        return problem.targets.composite(image.detach(), problem.content), last
    return image.detach(), last


def score(model: VGGFeatures, problem: Problem, image: torch.Tensor, settings: Settings) -> dict[str, float]:
    """Content, style and total loss of ``image`` under ``problem``, fp32, no autocast: one yardstick for any result.

    The terms :func:`optimise` minimises (total includes TV when ``tv_weight`` > 0), evaluated
    once without gradients whatever ``settings.precision`` says. To compare results of
    different precisions, score them all under one problem whose targets were computed in fp32.
    (On CUDA, matmuls use TF32 as everywhere in the engine.)
    """
    device = image.device
    content_target, mask = _content_target(model, problem, settings, "fp32", device)
    with torch.no_grad():
        c_loss, s_loss, loss = _losses(model, problem, image, content_target, mask, settings, "fp32", device)
    return {"content": c_loss.item(), "style": s_loss.item(), "total": loss.item()}

"""The optimisation: one image (or one tile window) at one scale, and coarse-to-fine on a whole repeat.

Pixels live in Caffe space (BGR, 0..255, mean-subtracted) from loading to saving. Every
function here is a pure function of its inputs and seed: the same call on the same machine
gives the same bytes, which is what makes resumed and re-run jobs byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.repeat.geometry import Repeat, as_repeat, fit_to_repeat, size_quantum
from pipeline.engine.knit import content_window, needs_knit
from pipeline.engine.losses import (
    StyleTargets,
    blend_grams,
    content_loss,
    gram,
    seam_fade_mask,
    style_loss,
    tv_loss,
)
from pipeline.engine.vgg import VGGFeatures, get_model, pool_depth
from pipeline.repeat import resample
from pipeline.settings import Settings
from pipeline.engine.weights import CAFFE_MEAN_BGR

#: Called after every optimiser step with (step, total_steps, losses).
StepCallback = Callable[[int, int, dict[str, float]], None]


# --- pixels ---------------------------------------------------------------------------------


def to_caffe(rgb: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB (H, W, 3) uint8/float 0..255 -> (1, 3, H, W) float32 BGR mean-subtracted, channels_last."""
    tensor = torch.from_numpy(np.array(rgb)) if isinstance(rgb, np.ndarray) else rgb
    tensor = tensor.to(device=device, dtype=torch.float32)
    if tensor.ndim == 3:
        tensor = tensor.permute(2, 0, 1).unsqueeze(0)
    bgr = tensor.flip(1) - torch.tensor(CAFFE_MEAN_BGR, device=tensor.device).view(1, 3, 1, 1)
    return bgr.contiguous(memory_format=torch.channels_last)


def caffe_to_rgb_float(image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) Caffe -> (1, 3, H, W) RGB float 0..255 (unclamped)."""
    mean = torch.tensor(CAFFE_MEAN_BGR, device=image.device).view(1, 3, 1, 1)
    return (image.detach().float() + mean).flip(1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) Caffe -> (H, W, 3) uint8 RGB: round half to even, clamp; deterministic."""
    return resample.rgb_uint8(caffe_to_rgb_float(image))


def preserve_colors(stylized: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Luminance from the stylized image, chroma from the design (neural-style's original colours).

    Both (H, W, 3) uint8 of one size. Works per pixel, so it is safe on tiles and keeps seams seamless.
    """
    out_ycc = _rgb_to_ycbcr(stylized.astype(np.float32))
    design_ycc = _rgb_to_ycbcr(design.astype(np.float32))
    out_ycc[..., 1:] = design_ycc[..., 1:]
    return np.clip(np.rint(_ycbcr_to_rgb(out_ycc)), 0, 255).astype(np.uint8)


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCC_INV = np.linalg.inv(_YCC).astype(np.float32)


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _YCC.T


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return ycc @ _YCC_INV.T


# --- devices and precision --------------------------------------------------------------------


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a clear error.

    On CUDA, deterministic algorithms are switched on (same seed, same GPU: same bytes).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            from pipeline.errors import WeftError

            raise WeftError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS determinism
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return torch.device(device)


def effective_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware does it fast (CUDA, or a CPU with AVX-512 BF16/AMX), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast the network to bf16 when asked; TF32 matmuls on CUDA. Losses stay float32 (see losses)."""
    mode = effective_precision(precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if mode == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (job seed, scale, tile): stable across processes and machines."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# --- targets ----------------------------------------------------------------------------------


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
) -> StyleTargets:
    """Blended Gram targets of ``styles`` [(rgb uint8, weight)] for an output of ``output_hw``."""
    from PIL import Image

    per_style = []
    for rgb, _weight in styles:
        h, w = style_image_size(rgb.shape[:2], output_hw, settings.style_scale, settings.style_max_size)
        resized = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
        with precision_context(settings.precision, device):
            feats = model(to_caffe(resized, device), settings.style_layers, None)
        per_style.append([gram(feats[name]) for name in settings.style_layers])
    grams = blend_grams(per_style, [weight for _, weight in styles])
    return StyleTargets(tuple(settings.style_layers), tuple(g.contiguous() for g in grams))


# --- one optimisation -------------------------------------------------------------------------


def content_mask(
    settings: Settings,
    repeat: Repeat,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    device: torch.device,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor | None:
    """The content-loss weight map (1, 1, h, w) of a window, or None when the content is not faded."""
    if settings.seam_content >= 1.0 or settings.seam_fade <= 0:
        return None
    band = settings.seam_fade * min(size)
    mask = seam_fade_mask(repeat, size, window, band, frame_origin=origin, floor=settings.seam_content)
    return torch.from_numpy(mask).to(device)[None, None]



@dataclass(frozen=True)
class Problem:
    """Everything one optimisation needs besides its start image."""

    content: torch.Tensor  # (1, 3, h, w) Caffe, the design at this scale (window)
    targets: StyleTargets
    content_mask: torch.Tensor | None  # (1, 1, h, w) pixel-level seam fade, or None
    padding: Repeat | None  # lattice padding in the network; None = zeros (tiles, or padding = "zeros")
    tv_repeat: Repeat | None  # wrap TV across the repeat (whole-image passes)


def optimise(
    model: VGGFeatures,
    problem: Problem,
    start: torch.Tensor,
    settings: Settings,
    iterations: int,
    device: torch.device,
    callback: StepCallback | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Minimise content + style + TV from ``start``; returns the image and its last losses."""
    content_layer = settings.content_layer
    with torch.no_grad(), precision_context(settings.precision, device):
        content_target = model(problem.content, [content_layer], problem.padding)[content_layer].detach()
    mask = None
    if problem.content_mask is not None:
        mask = torch.nn.functional.adaptive_avg_pool2d(problem.content_mask, content_target.shape[-2:])
    layers = list(dict.fromkeys([content_layer, *settings.style_layers]))
    # The optimised pixels stay in plain NCHW (L-BFGS flattens them); the network sees channels_last.
    image = start.detach().clone().contiguous().requires_grad_(True)
    last: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision_context(settings.precision, device):
            feats = model(image.contiguous(memory_format=torch.channels_last), layers, problem.padding)
        c_loss = content_loss(feats[content_layer], content_target, mask)
        s_loss = style_loss(feats, problem.targets, settings.style_layer_weights)
        loss = settings.content_weight * c_loss + settings.style_weight * s_loss
        if settings.tv_weight > 0:
            loss = loss + settings.tv_weight * tv_loss(image, problem.tv_repeat)
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
            from pipeline.errors import WeftError

            raise WeftError(f"the optimisation diverged at step {step + 1} (losses {last}); lower learning_rate")
        if callback is not None:
            callback(step + 1, iterations, dict(last))
    return image.detach(), last


# --- whole image, coarse to fine --------------------------------------------------------------


def whole_image_sizes(
    width: int, height: int, repeat: Repeat | str, settings: Settings, *, scales: int | None = None
) -> list[tuple[int, int]]:
    """(h, w) of each whole-image scale ending near W x H, every size exactly lattice-periodic in the net.

    Sizes are multiples of the repeat's quantum through the network's poolings (see
    :func:`pipeline.repeat.geometry.size_quantum`); the caller resamples the last one to W x H exactly.
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
) -> np.ndarray:
    """Stylize a whole repeat coarse-to-fine; returns (height, width, 3) uint8 that tiles seamlessly.

    This is ``weft stylize`` and the pipeline's coarse pass. Each scale starts from the previous
    result upsampled along the lattice, so the composition is fixed at the coarse scale.
    ``targets`` maps a scale's (h, w) to precomputed style targets (the pipeline shares them
    between jobs); missing scales are computed here.
    """
    repeat = as_repeat(repeat)
    design = fit_to_repeat(design, repeat)
    device = torch.device(device) if not isinstance(device, torch.device) else device
    model = get_model(settings.weights, str(device), pooling=settings.pooling)
    padding = repeat if settings.padding == "lattice" else None
    sizes = whole_image_sizes(width, height, repeat, settings, scales=scales)
    knit = needs_knit(design, repeat)
    current: torch.Tensor | None = None
    for index, (h, w) in enumerate(sizes):
        if scale_callback is not None:
            scale_callback(index, len(sizes), (h, w))
        band = settings.seam_fade * min(h, w)
        content = to_caffe(content_window(design, repeat, (h, w), (0, 0, h, w), band=band, knit=knit), device)
        if current is None:
            start = initial_image(settings, content, derive_seed(seed, "init", index), device)
            iterations = settings.iterations
        else:
            start = to_caffe(resample.resize_periodic(caffe_to_rgb_float(current), repeat, (h, w)), device)
            iterations = settings.refine_iterations
        scale_targets = (targets or {}).get((h, w)) or compute_style_targets(model, styles, (h, w), settings, device)
        problem = Problem(
            content=content,
            targets=scale_targets.to(device),
            content_mask=content_mask(settings, repeat, (h, w), (0, 0, h, w), device),
            padding=padding,
            tv_repeat=padding,
        )
        current, _ = optimise(model, problem, start, settings, iterations, device, callback)
    assert current is not None
    if current.shape[-2:] != (height, width):
        current = to_caffe(resample.resize_periodic(caffe_to_rgb_float(current), repeat, (height, width)), device)
    result = to_uint8(current)
    if settings.preserve_colors:
        band = settings.seam_fade * min(height, width)
        design_rgb = content_window(design, repeat, (height, width), (0, 0, height, width), band=band, knit=knit)
        result = preserve_colors(result, resample.rgb_uint8(design_rgb))
    return result


def prepare_design(design: np.ndarray, repeat: Repeat | str, settings: Settings) -> np.ndarray:
    """The design as the engine uses it: cropped to one detected repeat when asked, fitted to the repeat."""
    if settings.crop_to_repeat:
        from pipeline.repeat.analysis import crop_to_repeat

        design = crop_to_repeat(design)
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

"""The pixel space VGG-19 works in (Caffe: BGR, 0..255, mean-subtracted) and the way back to RGB.

Pixels live in Caffe space from loading to saving; these are the only conversions, so a
stylized image round-trips the same way in a whole-image pass, a tile and a benchmark.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.engine.weights import CAFFE_MEAN_BGR
from pipeline.repeat import resample


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

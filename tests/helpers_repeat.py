"""Images with a known repeat, for the geometry, resampling, seam, analysis and engine tests.

Built from the lattice definition alone (np.tile, np.roll, plane waves of the dual lattice,
noise blurred with lattice padding), so a test can compare the pipeline against them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from pipeline.repeat.gather import wrap_pad

from pipeline.repeat.lattice import Repeat


def plane_3x3(img: np.ndarray, repeat: Repeat) -> np.ndarray:
    """The plane over [-H, 2H) x [-W, 2W) under ``repeat``, from the lattice definition alone."""
    height, width = img.shape[:2]
    extra = (1,) * (img.ndim - 2)
    if repeat.kind == "mirror":
        # copy k along an axis is the tile reflected when k is odd: [reflected, tile, reflected]
        row = np.concatenate([img[:, ::-1], img, img[:, ::-1]], axis=1)
        return np.concatenate([row[::-1], row, row[::-1]], axis=0)
    if repeat.kind == "drop":
        # lattice column k (x in [kW, (k+1)W)) holds the tile dropped by k * d * H
        column = np.tile(img, (3, 1) + extra)
        drop = int(repeat.fraction * height)
        return np.concatenate([np.roll(column, k * drop, axis=0) for k in (-1, 0, 1)], axis=1)
    if repeat.kind == "brick":
        # lattice row k holds the tile shifted right by k * d * W
        row = np.tile(img, (1, 3) + extra)
        offset = int(repeat.fraction * width)
        return np.concatenate([np.roll(row, k * offset, axis=1) for k in (-1, 0, 1)], axis=0)
    return np.tile(img, (3, 3) + extra)


def smooth_repeat(repeat: Repeat, height: int = 128, width: int = 192, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """Smooth random texture (H, W, 3) float 0..255, seamless under ``repeat``: noise blurred with lattice padding."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64)
    radius = int(3 * sigma)
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2) / (2 * sigma**2))
    kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(3, 1, -1, -1)
    y = functional.conv2d(wrap_pad(x, repeat, radius), kernel, groups=3)
    y = (y - y.min()) / (y.max() - y.min()) * 255
    return y[0].permute(1, 2, 0).numpy()


def lattice_periodic_design(repeat: Repeat, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A colourful design that repeats exactly under ``repeat``: plane waves of its dual lattice.

    cos(2π(a·x/W + n·y/H)) repeats under (W, s) and (0, H) when a·W/W + n·s/H is an integer:
    block a=m; a drop d (s = d·H) a = m - n·d; bricks are the same with x and y swapped.
    Mirror: products of cosines symmetric about the pixel edges x = -1/2 and x = W - 1/2.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    d = float(repeat.fraction)
    for _ in range(6):
        m, n = rng.integers(-3, 4, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        amplitude = rng.uniform(20, 50, size=3)
        if repeat.kind == "mirror":
            wave = np.cos(np.pi * m * (x + 0.5) / width) * np.cos(np.pi * n * (y + 0.5) / height)
            image += wave[..., None] * amplitude
            continue
        if repeat.kind == "brick":
            arg = (m - n * d) * y / height + n * x / width
        elif repeat.kind == "drop":
            arg = (m - n * d) * x / width + n * y / height
        else:
            arg = m * x / width + n * y / height
        image += np.cos(2 * np.pi * arg[..., None] + phase) * amplitude
    return np.clip(128 + image, 0, 255).astype(np.uint8)


def interior_seam_ratios(image: np.ndarray, repeat: Repeat, step: int = 16) -> np.ndarray:
    """The repeat seam ratio of the same image re-framed so that interior lines become its boundary.

    A W x H window of the plane tiled by ``image`` is itself a repeat tile under the same lattice;
    its boundary is the pair of plane lines x = dx, y = dy. Every (dy, dx) that is a multiple of
    ``step`` (16 px: one relu5_1 cell, so each line sits where the network's pooling grid puts the
    true boundary) is taken, except 0 and half a side: in half-drop and brick the lattice's own
    seams run there in the neighbouring copies. What the true boundary scores is then compared with
    what the image's own texture scores elsewhere, whatever the metric makes of that texture.
    """
    from pipeline.repeat.gather import gather_window
    from pipeline.repeat.seams import repeat_seam_ratio

    height, width = image.shape[:2]
    rows = [y for y in range(step, height, step) if y != height // 2]
    cols = [x for x in range(step, width, step) if x != width // 2]
    return np.array(
        [repeat_seam_ratio(gather_window(image, repeat, dy, dx, height, width), repeat) for dy in rows for dx in cols]
    )

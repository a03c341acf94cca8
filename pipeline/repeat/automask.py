"""``mask = "auto"``: a design split into its ground and its motif, seamless across the repeat.

The ground of a printed textile is the colour most of the cloth shows, so it is the largest
colour cluster in CIE Lab (k-means, seeded: the same design gives the same mask on every worker).
The cluster map is cleaned with a morphological opening and closing on the design padded by its
own lattice neighbours (:func:`pipeline.repeat.gather.wrap_pad`), so a motif that crosses the
repeat edge is cleaned as one shape, and the mask repeats exactly as the design does.
The mask is worked out on a copy of at most :data:`MASK_SIDE` px; the engine resamples its
planes along the lattice to every level, as it does the design.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import WeftError
from pipeline.repeat.gather import wrap_pad
from pipeline.repeat.lattice import Repeat, as_repeat, fit_to_repeat, honoured_size

#: Region labels of the automatic mask, by index.
AUTO_LABELS: tuple[str, ...] = ("ground", "motif")
#: Colour clusters the design is split into (the largest is the ground; the rest are motif).
CLUSTERS = 3
#: Blur (px at MASK_SIDE) before clustering.
SMOOTH_SIGMA = 1.5
#: Long side (px) the mask is computed at.
MASK_SIDE = 256
#: Version of the rule, part of the key of every job that uses ``mask = "auto"``.
AUTO_MASK_VERSION = 1


def _kmeans(points: np.ndarray, k: int, seed: int = 0, rounds: int = 25) -> np.ndarray:
    """Cluster index of each point: k-means++ start from a fixed seed, Lloyd steps in float64."""
    rng = np.random.default_rng(seed)
    sample = points[rng.choice(len(points), size=min(len(points), 4096), replace=False)]
    centres = [sample[0]]
    for _ in range(1, k):
        dist = np.min(((sample[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        if dist.sum() <= 0:
            break
        centres.append(sample[rng.choice(len(sample), p=dist / dist.sum())])
    centre_array = np.asarray(centres, np.float64)
    labels = np.zeros(len(points), np.int64)
    for _ in range(rounds):
        labels = np.argmin(((points[:, None, :] - centre_array[None]) ** 2).sum(-1), axis=1)
        moved = np.array([points[labels == i].mean(0) if np.any(labels == i) else centre_array[i]
                          for i in range(len(centre_array))])  # fmt: skip
        if np.allclose(moved, centre_array):
            break
        centre_array = moved
    return labels


def _mask_size(height: int, width: int, repeat: Repeat) -> tuple[int, int]:
    """(h, w) of the copy the mask is worked out on: at most MASK_SIDE, sides the repeat can carry."""
    scale = min(1.0, MASK_SIDE / max(height, width))
    h, w = max(8, round(height * scale)), max(8, round(width * scale))
    w, h = honoured_size(repeat, w, h)
    return h, w


def _wrapped(operation: object, mask: np.ndarray, repeat: Repeat, radius: int) -> np.ndarray:
    """A binary morphology ``operation`` (skimage) with the repeat's neighbours as its border."""
    from skimage.morphology import disk

    pad = 2 * radius + 1
    padded = np.ascontiguousarray(wrap_pad(mask, repeat, pad))
    out = operation(padded, disk(radius))  # type: ignore[operator]
    return np.ascontiguousarray(out[pad:-pad, pad:-pad])


def _wrapped_blur(image: np.ndarray, repeat: Repeat, sigma: float) -> np.ndarray:
    """A Gaussian blur (per channel) whose border is the repeat's neighbours: print texture and
    JPEG noise are not colours of their own."""
    from scipy.ndimage import gaussian_filter

    pad = int(np.ceil(4 * sigma)) + 1
    padded = gaussian_filter(np.ascontiguousarray(wrap_pad(image, repeat, pad)), sigma=(sigma, sigma, 0))
    return np.ascontiguousarray(padded[pad:-pad, pad:-pad])


def auto_labels(design: np.ndarray, repeat: Repeat | str) -> np.ndarray:
    """(h, w) uint8: 0 ground, 1 motif, at the mask size (a repeat of the same type as the design)."""
    from skimage.color import rgb2lab
    from skimage.morphology import closing, opening

    from pipeline.repeat.resample import resize_uint8

    repeat = as_repeat(repeat)
    design = fit_to_repeat(design, repeat)
    size = _mask_size(design.shape[0], design.shape[1], repeat)
    small = resize_uint8(design, repeat, size)
    lab = rgb2lab(small.astype(np.float64) / 255.0)
    lab = _wrapped_blur(lab, repeat, SMOOTH_SIGMA * max(size) / MASK_SIDE).reshape(-1, 3)
    clusters = _kmeans(lab, CLUSTERS).reshape(size)
    ground_cluster = int(np.bincount(clusters.ravel()).argmax())
    ground = clusters == ground_cluster
    radius = max(1, round(2 * max(size) / MASK_SIDE))
    ground = _wrapped(closing, ground, repeat, radius)  # specks of motif on the ground go
    ground = _wrapped(opening, ground, repeat, radius)  # specks of ground inside motifs go
    return np.where(ground, 0, 1).astype(np.uint8)


def mask_picture(labels: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The automatic mask as an RGB picture (ground black, motif white), nearest-resized to (h, w)."""
    from PIL import Image

    grey = np.where(labels == 0, 0, 255).astype(np.uint8)
    if size is not None and grey.shape != size:
        grey = np.asarray(Image.fromarray(grey).resize((size[1], size[0]), Image.Resampling.NEAREST))
    return np.repeat(grey[..., None], 3, axis=2)


def mask_overlay(design: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The design with its ground dimmed to a third: what `weft inspect --mask` shows a designer."""
    ground = mask_picture(labels, design.shape[:2])[..., 0] == 0
    out = design.copy()
    out[ground] = (out[ground].astype(np.uint16) // 3).astype(np.uint8)
    return out


def write_auto_mask(design_path: Path, repeat: Repeat | str, out: Path, console: Any) -> tuple[Path, Path]:
    """`weft inspect DESIGN --mask OUT.png`: the automatic mask at the design's size, and OUT.overlay.png."""
    from PIL import Image

    from pipeline.manifest.images import load_rgb

    design = fit_to_repeat(load_rgb(design_path), repeat)
    labels = auto_labels(design, repeat)
    overlay_path = out.with_suffix(".overlay.png")
    try:
        Image.fromarray(mask_picture(labels, design.shape[:2])).save(out)
        Image.fromarray(mask_overlay(design, labels)).save(overlay_path)
    except OSError as error:
        raise WeftError(f"{out}: cannot write the mask: {error.strerror or error}") from None
    share = float(np.mean(labels == 0))
    console.print(f"mask (auto, {as_repeat(repeat).value}): ground {share:.0%} (black), motif {1 - share:.0%} (white); "
                  f"regions = {{ ground = ..., motif = ... }}", highlight=False)  # fmt: skip
    console.print(f"wrote {out} and {overlay_path} (the ground dimmed)", highlight=False)
    return out, overlay_path

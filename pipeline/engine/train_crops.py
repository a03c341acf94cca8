"""What a house style is trained on: random crops, scales and positions of the studio's own designs.

A print enlarges a scan several times, so each crop is cut from a design resized by a random
factor in the model's scale range (log-uniform; ``train_scales``, by default the enlargements
its jobs ask for: :func:`pipeline.run.model_plan.training_scales`). Designs that repeat are cut across their wrap (the
lattice gather), so the network learns the seams it will be asked to cross; other images
(a ``training_designs`` folder) are cut inside. Every crop of step ``n`` comes from a generator
seeded by (``train_seed``, ``n``): a resumed training draws exactly the crops it would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pipeline.engine.optimise import derive_seed
from pipeline.engine.pixels import to_caffe
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat
from pipeline.settings import Settings

#: Smallest source square a crop is cut from (px): below this a crop is a blur of a few pixels.
_MIN_SOURCE = 8


@dataclass(frozen=True)
class TrainingImage:
    """One image to train on; ``repeat`` None for an image that does not repeat (cut inside only)."""

    rgb: np.ndarray
    repeat: Repeat | None


def crop_batch(
    images: list[TrainingImage], settings: Settings, step: int, device: torch.device, scales: tuple[float, float]
) -> torch.Tensor:
    """The ``train_batch`` crops of training step ``step``, resized by factors in ``scales``: Caffe (B, 3, C, C)."""
    rng = np.random.default_rng(derive_seed(settings.train_seed, "crops", step))
    crops = [_crop(images[int(rng.integers(len(images)))], settings, scales, rng) for _ in range(settings.train_batch)]
    return torch.cat([to_caffe(crop, device) for crop in crops]).contiguous(memory_format=torch.channels_last)


def _crop(image: TrainingImage, settings: Settings, scales: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    side = settings.train_crop
    low, high = scales
    factor = math.exp(rng.uniform(math.log(low), math.log(high)))
    height, width = image.rgb.shape[:2]
    source = max(_MIN_SOURCE, round(side / factor))
    if image.repeat is None:
        source = min(source, height, width)
        y0, x0 = int(rng.integers(height - source + 1)), int(rng.integers(width - source + 1))
        window = image.rgb[y0 : y0 + source, x0 : x0 + source]
    else:
        y0, x0 = int(rng.integers(height)), int(rng.integers(width))
        window = gather_window(image.rgb, image.repeat, y0, x0, source, source)
    resized = Image.fromarray(np.ascontiguousarray(window)).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(resized)

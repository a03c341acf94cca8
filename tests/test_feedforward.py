"""The feed-forward engine in one process: network, tiles = whole, seams, model files, training, resume.

Real parts at tiny sizes: the real VGG-19 weights for training, real safetensors files. The
cluster side (a training task shared by jobs, reuse, retraining, a killed `weft train`) is in
tests/test_feedforward_run.py.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

from helpers_repeat import lattice_periodic_design
from pipeline.conventions import ENGINES
from pipeline.engine.feedforward import stylize_tiled, stylize_whole
from pipeline.engine.model_files import ModelFileError, load_model, save_model
from pipeline.engine.schedule import feedforward_size, receptive_radius
from pipeline.engine.train import TrainingState, new_network, train_network, training_targets
from pipeline.engine.train_crops import TrainingImage, crop_batch
from pipeline.engine.transform_net import TransformNet
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import SEAMLESS, repeat_seam_ratio
from pipeline.settings import Settings

CPU = torch.device("cpu")
#: Sizes (h, w) each repeat can carry through the net's two downsamplings (a half-drop axis needs 8, a third 12).
SIZES = {repeat: feedforward_size(96, 64, repeat) for repeat in Repeat}
TINY = {"train_steps": 4, "train_crop": 32, "train_batch": 2, "train_checkpoint_every": 2, "style_max_size": 64,
        "ff_width": 4, "ff_blocks": 1, "train_scales": (0.5, 2.0)}  # fmt: skip


def busy_network(width: int = 6, blocks: int = 2, seed: int = 0) -> TransformNet:
    """A network far from the identity (random weights everywhere), so every pixel depends on its whole field."""
    torch.manual_seed(seed)
    net = TransformNet(width, blocks)
    with torch.no_grad():
        for block in net.res:
            block.scale.fill_(0.5)
        net.out.conv.weight.normal_(0.0, 0.05)
    return net.eval()


def test_engine_names_are_the_settings_choices() -> None:
    assert typing.get_args(Settings.model_fields["engine"].annotation) == ENGINES


def test_receptive_radius_covers_the_measured_field() -> None:
    """A pixel changed at the centre reaches no further than the halo the tiles use."""
    for blocks in (1, 3):
        net = busy_network(4, blocks)
        zero = torch.zeros(1, 3, 192, 192)
        reach = 0
        with torch.no_grad():
            base = net(zero)
            for dy in range(4):  # every phase of the stride
                for dx in range(4):
                    poked = zero.clone()
                    poked[..., 96 + dy, 96 + dx] = 100.0
                    ys, xs = torch.nonzero((net(poked) - base).abs().sum(1)[0] > 0, as_tuple=True)
                    reach = max(reach, int((ys - 96 - dy).abs().max()), int((xs - 96 - dx).abs().max()))
        assert reach <= receptive_radius(blocks)
        assert reach > receptive_radius(blocks) - 8  # and the bound is tight, not a guess far above


@pytest.mark.parametrize("repeat", list(Repeat))
def test_tiled_inference_equals_the_whole_repeat_byte_for_byte(repeat: Repeat) -> None:
    height, width = SIZES[repeat]
    design = lattice_periodic_design(repeat, width, height, seed=3)
    net = busy_network()
    settings = Settings(engine="feedforward")
    whole = stylize_whole(net, design, repeat, (height, width), settings, CPU)
    tiled = stylize_tiled(net, design, repeat, (height, width), settings, CPU, tile=32)
    assert np.array_equal(tiled, whole)
    assert len(np.unique(whole.reshape(-1, 3), axis=0)) > 100  # a real picture, not a flat field


@pytest.mark.parametrize("repeat", list(Repeat))
def test_whole_repeat_is_seamless_under_its_lattice(repeat: Repeat) -> None:
    height, width = SIZES[repeat]
    design = lattice_periodic_design(repeat, width, height, seed=5)
    net = busy_network(seed=2)
    seamless = stylize_whole(net, design, repeat, (height, width), Settings(engine="feedforward"), CPU)
    assert repeat_seam_ratio(seamless, repeat) < SEAMLESS
    if repeat is Repeat.MIRROR:
        return  # a reflection meets itself at the edge: no step to see, with or without lattice padding
    # the same network with zero padding draws a frame the metric sees
    framed = _zero_padded(net, design)
    assert repeat_seam_ratio(framed, repeat) > repeat_seam_ratio(seamless, repeat) + 0.1


def _zero_padded(net: TransformNet, design: np.ndarray) -> np.ndarray:
    from pipeline.engine.pixels import to_caffe, to_uint8

    with torch.no_grad():
        return to_uint8(net(to_caffe(design.astype(np.float32)), None))


def test_feedforward_size_keeps_the_lattice_exact_through_the_strides() -> None:
    assert feedforward_size(7559, 7559, Repeat.BLOCK) == (7560, 7560)
    h, w = feedforward_size(500, 301, Repeat.HALF_DROP)
    assert h % 8 == 0 and w % 4 == 0
    h, w = feedforward_size(301, 500, Repeat.BRICK)
    assert w % 8 == 0 and h % 4 == 0


def test_a_model_file_round_trips_and_a_changed_file_is_refused(tmp_path) -> None:
    net = busy_network(4, 1)
    path = tmp_path / "model.safetensors"
    sha = save_model(path, net, {"key": "k"})
    assert save_model(tmp_path / "again.safetensors", net, {"key": "k"}) == sha  # same state, same bytes
    loaded = load_model(path, sha)
    x = (torch.randn(1, 3, 32, 32) * 50).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # the engine runs every model channels_last
        assert torch.equal(loaded(x), net.to(memory_format=torch.channels_last)(x))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one weight changed on disk
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="changed since it was recorded"):
        load_model(path, sha)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.safetensors", sha)


def _images() -> list[TrainingImage]:
    return [
        TrainingImage(lattice_periodic_design(Repeat.HALF_DROP, 48, 64, seed=1), Repeat.HALF_DROP),
        TrainingImage(lattice_periodic_design(Repeat.BLOCK, 40, 40, seed=2), None),
    ]


def _style() -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), 1.0)]


def test_crops_are_drawn_from_the_seed_and_step_alone() -> None:
    settings = Settings(engine="feedforward", **TINY)
    first = crop_batch(_images(), settings, 3, CPU, (0.5, 2.0))
    assert first.shape == (2, 3, 32, 32)
    assert torch.equal(first, crop_batch(_images(), settings, 3, CPU, (0.5, 2.0)))
    assert not torch.equal(first, crop_batch(_images(), settings, 4, CPU, (0.5, 2.0)))
    other_seed = Settings(engine="feedforward", **{**TINY, "train_seed": 1})
    assert not torch.equal(first, crop_batch(_images(), other_seed, 3, CPU, (0.5, 2.0)))
    assert not torch.equal(first, crop_batch(_images(), settings, 3, CPU, (2.0, 4.0)))


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    settings = Settings(engine="feedforward", **{**TINY, "train_steps": 6, "train_lr": 1e-2})
    targets = training_targets(_style(), settings, CPU)
    net_a, state_a = train_network(_images(), targets, settings, CPU)
    net_b, state_b = train_network(_images(), targets, settings, CPU)
    assert state_a.curve == state_b.curve
    assert all(torch.equal(a, b) for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values()))
    crops = crop_batch(_images(), settings, 0, CPU, (0.5, 2.0))
    assert _style_of(net_a, crops, targets, settings) < _style_of(new_network(settings), crops, targets, settings)
    untrained = new_network(settings).state_dict()
    assert not all(torch.equal(a, b) for a, b in zip(untrained.values(), net_a.state_dict().values()))


def _style_of(net: TransformNet, crops: torch.Tensor, targets, settings: Settings) -> float:
    """The style loss of the net's output on fixed crops (per-step losses are of random crops, too noisy)."""
    from pipeline.engine.losses import style_loss
    from pipeline.engine.vgg import get_model

    vgg = get_model(settings.weights, "cpu")
    with torch.no_grad():
        feats = vgg(net.eval()(crops), settings.style_layers, None)
        return sum(float(style_loss({k: v[i : i + 1] for k, v in feats.items()}, targets, settings.style_layer_weights))
                   for i in range(crops.shape[0]))  # fmt: skip


def test_a_training_resumed_from_a_checkpoint_ends_bit_for_bit_equal(tmp_path) -> None:
    settings = Settings(engine="feedforward", **TINY)
    targets = training_targets(_style(), settings, CPU)
    saved: list[tuple[TrainingState, dict[str, torch.Tensor]]] = []

    def keep(state: TrainingState, tensors: dict[str, torch.Tensor]) -> None:
        saved.append((TrainingState(state.step, [list(v) for v in state.curve], state.seconds),
                      {k: v.clone() for k, v in tensors.items()}))  # fmt: skip

    straight, state = train_network(_images(), targets, settings, CPU, on_checkpoint=keep)
    assert [s.step for s, _ in saved] == [2, 4]
    resumed, resumed_state = train_network(_images(), targets, settings, CPU, resume=saved[0])
    assert resumed_state.curve == state.curve
    sha_straight = save_model(tmp_path / "a.safetensors", straight, {})
    assert save_model(tmp_path / "b.safetensors", resumed, {}) == sha_straight


def test_training_settings_leave_optimisation_keys_alone() -> None:
    """An optimisation job's key must not move when a feed-forward setting does (or was added)."""
    assert Settings().digest() == Settings(train_steps=7, ff_width=8).digest()
    assert Settings(engine="feedforward").digest() != Settings(engine="feedforward", train_steps=7).digest()


def test_auto_scales_follow_the_jobs_enlargements(tmp_path) -> None:
    """A 512 px design printed at 3072 px trains around 6x; an explicit range is taken as written."""
    from pathlib import Path

    from pipeline.manifest.specs import JobSpec
    from pipeline.run.model_plan import AUTO_SCALE_MARGIN, training_scales

    def job(size: int) -> JobSpec:
        return JobSpec("j", Path("d.png"), (), Repeat.BLOCK, size, size // 2, 300, 0, Settings(), {}, "test")

    low, high = training_scales(Settings(engine="feedforward"), [job(1024), job(3072)], lambda _: (512, 256))
    assert (low, high) == (round(2 / AUTO_SCALE_MARGIN, 4), 6 * AUTO_SCALE_MARGIN)
    explicit = Settings(engine="feedforward", train_scales=(1.0, 3.0))
    assert training_scales(explicit, [job(1024)], lambda _: (512, 256)) == (1.0, 3.0)


def test_training_designs_must_be_a_folder_of_images(tmp_path) -> None:
    """A missing or empty ``training_designs`` folder is an error on that field; a good one lists its images."""
    import shutil
    from pathlib import Path

    from pipeline.manifest.load import read_manifest

    root = Path(__file__).resolve().parent.parent / "manifests"
    shutil.copy(root / "designs" / "royal_stewart_sett.png", tmp_path / "tartan.png")
    shutil.copy(root / "styles" / "klimt_the_kiss.jpg", tmp_path / "kiss.jpg")
    body = ('[[styles]]\nid = "kiss"\npath = "kiss.jpg"\nlicense = "Public domain"\nattribution = "Klimt"\n\n'
            '[[jobs]]\nid = "j"\ndesign = "tartan.png"\nstyle = "kiss"\nsize = 64\nengine = "feedforward"\n')  # fmt: skip

    def problems(folder: str) -> tuple[list[str], object]:
        path = tmp_path / "m.toml"
        path.write_text(f'training_designs = "{folder}"\n{body}')
        manifest, found = read_manifest(path)
        return [f"{p.field}: {p}" for p in found if p.severity == "error"], manifest

    missing, _ = problems("extra")
    assert any(line.startswith("training_designs:") and "not a folder" in line for line in missing)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "notes.txt").write_text("no image here")
    empty, _ = problems("extra")
    assert any(line.startswith("training_designs:") and "holds no image" in line for line in empty)
    shutil.copy(tmp_path / "tartan.png", tmp_path / "extra" / "more.png")
    ok, manifest = problems("extra")
    assert ok == [] and [p.name for p in manifest.training_designs] == ["more.png"]  # type: ignore[attr-defined]

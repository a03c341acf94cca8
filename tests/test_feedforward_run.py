"""The feed-forward engine in `weft run` and `weft train`: a real LocalCluster, a real store, the real VGG-19.

One training per house style shared by its jobs; the run's tiles equal the whole-image rule;
a second run trains nothing; a changed training setting retrains that model only; a changed
model file is refused; a `weft train` killed with SIGKILL resumes to the same model bytes.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipeline_helpers import JOBS, WEFT, pixels, run, wait_for, write_manifest
from pipeline.engine.feedforward import stylize_whole
from pipeline.engine.knit import needs_knit
from pipeline.engine.whole import design_content, prepare_design
from pipeline.manifest.images import load_rgb
from pipeline.manifest.load import load_manifest
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.resample import rgb_uint8
from pipeline.repeat.seams import SEAMLESS, boundary_seam_ratio, repeat_seam_ratio, tile_boundary_lines
from pipeline.repeat.tiles import TileGrid
from pipeline.run.models import CHECKPOINT_RECORD, MODEL_FILE, MODEL_RECORD, stored_models
from pipeline.run.training import load_store_model
from pipeline.settings import Settings

pytestmark = pytest.mark.slow
#: Steps of the trainings `weft train` runs (and one is killed in): enough that the kill lands mid-way.
STEPS = 40

#: Tiny trainings: 32 px crops, a 4-channel net with one residual block, 48 px inference tiles.
TINY = {
    "train_crop": 32, "train_batch": 2, "train_checkpoint_every": 2, "ff_width": 4, "ff_blocks": 1,
    "ff_tile_size": 48, "style_max_size": 64,
}  # fmt: skip


def feedforward_manifest(folder: Path, steps: dict[str, int] | None = None) -> Path:
    """The three demo jobs at 128 px on the feed-forward engine; ``steps`` per job (default 4)."""
    steps = steps or {}
    lines = 'engine = "feedforward"\n' + "".join(f"{k} = {v}\n" for k, v in TINY.items())
    extra = {job: f"{lines}train_steps = {steps.get(job, 4)}\n" for job in JOBS}
    return write_manifest(folder, JOBS, extra)


def model_files(store: Path) -> dict[str, tuple[int, bytes]]:
    """(mtime_ns, bytes) of every model file: unchanged means not trained again."""
    return {
        str(p.relative_to(store)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in (store / "models").rglob("*") if p.is_file()
    }  # fmt: skip


def test_one_training_per_style_tiles_equal_the_whole_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    manifest = feedforward_manifest(tmp_path)
    store = tmp_path / "out.zarr"
    result = run(manifest, store)
    assert result.exit_code == 0, result.outcomes
    assert result.task_counts.get("train") == 2  # wave (two jobs) and kiss (one)
    computed = sum(stats["computed"].get("train", 0) for stats in result.worker_stats.values())
    assert computed == 2
    models = stored_models(store)
    assert sorted(m.split("-")[0] for m in models) == ["kiss", "wave"]
    wave = next(entry["model"] for ident, entry in models.items() if ident.startswith("wave"))
    assert {Path(i["path"]).name for i in wave["images"]} == {"morris_strawberry_thief.jpg", "morris_snakeshead.jpg"}
    assert wave["steps"] == 4 and len(wave["curve"]) == 4 and wave["seconds"] > 0 and wave["device"].startswith("cpu")

    root = zarr.open_group(str(store), mode="r")
    settings = Settings(engine="feedforward", train_steps=4, **TINY)
    found = {spec.id: spec.tile for spec in load_manifest(manifest).jobs}  # the tiles crop_to_repeat cut
    for job_id, (design_file, _, repeat_name) in JOBS.items():
        repeat = Repeat(repeat_name)
        attrs = dict(root[f"jobs/{job_id}"].attrs)
        model = attrs["model"]
        assert model["sha256"] == stored_models(store)[model["id"]]["model"]["sha256"]
        level0 = root[f"jobs/{job_id}/levels/0/image"][...] if "image" in root[f"jobs/{job_id}/levels/0"] \
            else root[f"jobs/{job_id}/image"][...]  # fmt: skip
        # the run's 48 px tiles with their halos equal the network on the whole repeat, byte for byte
        net = load_store_model(str(store), model["id"], "cpu")
        tile = found[job_id].recipe if found[job_id] is not None else None
        design = prepare_design(load_rgb(tmp_path / design_file), repeat, settings, tile=tile)
        whole = stylize_whole(net, design, repeat, level0.shape[:2], settings, torch.device("cpu"))
        assert np.array_equal(level0, whole), job_id
        # and the result is seamless at the repeat boundary and at the tile lines (on the textured Morris
        # designs: the tartan is flat colour, where the ratio of two tiny gradients means nothing)
        # (the network adds no seam: the result's is the knitted content's own, a museum photo's ~1.1 at 128 px)
        content = rgb_uint8(design_content(design, repeat, level0.shape[:2], settings, knit=needs_knit(design, repeat)))
        assert repeat_seam_ratio(level0, repeat) < max(SEAMLESS, 1.05 * repeat_seam_ratio(content, repeat)), job_id
        if job_id != "tartan":  # a tile line is no steeper than the design's own texture on that line
            lines = tile_boundary_lines(TileGrid(repeat, level0.shape[1], level0.shape[0], 48, (0, 0)))
            own = boundary_seam_ratio(content, lines, repeat=repeat)
            for line, ratio in boundary_seam_ratio(level0, lines, repeat=repeat).items():
                assert ratio < max(SEAMLESS, 1.1 * own[line]), (job_id, line)

    before_models, before_pixels = model_files(store), pixels(store)
    again = run(manifest, store)
    assert again.exit_code == 0
    assert "train" not in again.task_counts  # every job is done: nothing is submitted at all
    assert model_files(store) == before_models and pixels(store) == before_pixels
    # one job of a style, recomputed alone, still uses the model of all the style's jobs
    alone = run(manifest, store, only=("strawberry",), force=True)
    assert alone.exit_code == 0
    assert sum(stats["computed"].get("train", 0) for stats in alone.worker_stats.values()) == 0
    assert model_files(store) == before_models


def test_a_changed_training_setting_retrains_that_model_only_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    manifest = feedforward_manifest(tmp_path)
    store = tmp_path / "out.zarr"
    assert run(manifest, store).exit_code == 0
    kiss_before = {k: v for k, v in model_files(store).items() if k.startswith("models/kiss")}
    wave_before = {k: v for k, v in model_files(store).items() if k.startswith("models/wave")}

    feedforward_manifest(tmp_path, steps={"strawberry": 6, "snakeshead": 6})  # the wave style's jobs only
    result = run(manifest, store)
    assert result.exit_code == 0
    assert {k: v for k, v in model_files(store).items() if k.startswith("models/kiss")} == kiss_before
    models = stored_models(store)
    waves = sorted(ident for ident in models if ident.startswith("wave"))
    assert len(waves) == 2  # the old model is kept beside the new one
    new_wave = next(i for i in waves if f"models/{i}/{MODEL_FILE}" not in wave_before)
    assert models[new_wave]["model"]["steps"] == 6
    assert result.outcomes["tartan"].status == "skipped"

    # someone edits the kiss model's file: the next job that needs it is refused, by name
    kiss = next(ident for ident in models if ident.startswith("kiss"))
    path = store / "models" / kiss / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    refused = run(manifest, store, force=True, only=("tartan",))
    assert refused.exit_code == 1
    error = refused.outcomes["tartan"].error or ""
    assert "changed since it was recorded" in error and str(path) in error


def test_a_killed_weft_train_resumes_to_the_same_model_bytes(tmp_path: Path) -> None:
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight_dir, killed_dir):
        folder.mkdir()
        feedforward_manifest(folder, steps={job: STEPS for job in JOBS})
    command = ["--style", "wave", "--config", "tiny.toml", "--device", "cpu"]
    done = subprocess.run([str(WEFT), "train", "manifest.toml", "--store", "out.zarr", *command],
                          cwd=straight_dir, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "training: wave" in done.stdout and f"step {STEPS}/{STEPS}" in done.stdout  # progress, in a log file's words

    proc = subprocess.Popen([str(WEFT), "train", "manifest.toml", "--store", "out.zarr", *command],
                            cwd=killed_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: _checkpoint_step(killed_dir / "out.zarr") >= 4, timeout=300, what="a checkpoint")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _checkpoint_step(killed_dir / "out.zarr") < STEPS  # killed mid-way, with a checkpoint left
    resumed = subprocess.run([str(WEFT), "train", "manifest.toml", "--store", "out.zarr", *command],
                             cwd=killed_dir, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    straight, killed = (stored_models(d / "out.zarr") for d in (straight_dir, killed_dir))
    assert straight.keys() == killed.keys()
    for ident in straight:
        record = killed[ident]["model"]
        assert record["resumed_from_step"] >= 4
        assert record["sha256"] == straight[ident]["model"]["sha256"]
        assert record["curve"] == straight[ident]["model"]["curve"]
        files = [d / "out.zarr" / "models" / ident / MODEL_FILE for d in (straight_dir, killed_dir)]
        assert files[0].read_bytes() == files[1].read_bytes()


def _checkpoint_step(store: Path) -> int:
    steps = [0]
    for path in (store / "models").glob(f"*/{CHECKPOINT_RECORD}"):
        try:
            steps.append(int(json.loads(path.read_text())["step"]))
        except (OSError, ValueError, KeyError):
            pass
    for path in (store / "models").glob(f"*/{MODEL_RECORD}"):
        steps.append(10**6)  # finished before we looked: the test would be void, make it fail loudly
    return max(steps)

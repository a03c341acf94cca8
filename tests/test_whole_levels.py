"""tile_size = "auto" end to end: a level that fits runs whole, in the coarse task, with the cores others leave.

A real 2-worker LocalCluster and store. The whole-level job must be byte for byte what
`weft stylize`'s engine call (:func:`pipeline.engine.whole.stylize_image`) gives on the same
schedule with the same thread count, so its seams are the lattice padding's (tested in
tests/test_engine.py); a job whose budget holds only a tile is tiled, and its seams measured.
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from pipeline_helpers import run, write_manifest

from pipeline.manifest.load import load_manifest
from pipeline.repeat.seams import repeat_seam_ratio
from pipeline.run.tile_sizing import level_bytes

JOBS = {"whole": ("designs/royal_stewart_sett.png", "kiss", "block"),
        "tiled": ("designs/royal_stewart_sett.png", "kiss", "block")}  # fmt: skip


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("auto")
    manifest = write_manifest(folder, JOBS, {"whole": 'tile_size = "auto"\nworker_memory = "8 GiB"\n'})
    settings = load_manifest(manifest, config=folder / "tiny.toml").jobs[1].settings
    tile_budget = level_bytes(settings.model_copy(update={"tile_size": "auto"}), 100 * 100)  # a 64 px core, not 128
    manifest = write_manifest(folder, JOBS, {
        "whole": 'tile_size = "auto"\nworker_memory = "8 GiB"\n',
        "tiled": f'tile_size = "auto"\nworker_memory = "{tile_budget} B"\n',
    })  # fmt: skip
    store = folder / "out.zarr"
    return manifest, store, run(manifest, store)


def test_a_level_that_fits_runs_whole_in_one_task(auto_run):
    _, store, result = auto_run
    assert result.exit_code == 0
    root = zarr.open_group(str(store), mode="r")
    whole, tiled = root["jobs"]["whole"].attrs, root["jobs"]["tiled"].attrs
    assert [lv["tiled"] for lv in whole["levels_plan"]] == [False]  # the 128 px level joined the coarse pass
    assert whole["levels_plan"][0]["scales"] == 2 and "8.0 GiB" in whole["tile_budget"]
    assert [lv["tiled"] for lv in tiled["levels_plan"]] == [False, True]
    assert tiled["levels_plan"][1]["core"] == 64 and tiled["levels_plan"][1]["halo_overhead"] > 0
    assert result.task_counts["coarse"] == 2 and result.task_counts["tile"] == 4  # the tiled job's 4 tiles only


def test_the_whole_level_is_byte_for_byte_the_engines_own_schedule(auto_run):
    import torch

    from pipeline.engine.losses import blend_targets
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.engine.whole import prepare_design, stylize_image
    from pipeline.manifest.images import load_rgb
    from pipeline.run.plan import make_plan

    manifest, store, _ = auto_run
    plan = make_plan(manifest, store=store.parent / "unused.zarr", config=manifest.parent / "tiny.toml")
    job = next(j for j in plan.jobs if j.id == "whole")
    s, level = job.spec.settings, job.levels[0]
    device = torch.device("cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(s.tile_threads)  # the style-targets tasks' threads
        model = get_model(s.weights, "cpu", pooling=s.pooling)
        style = load_rgb(job.spec.styles[0].style.path)
        targets = {hw: blend_targets([compute_style_targets(model, [(style, 1.0)], hw, s, device)], (1.0,))
                   for hw in job.coarse_sizes}  # fmt: skip
        torch.set_num_threads(s.coarse_threads)  # the whole-image task's threads, as `weft stylize` sets them
        expected = stylize_image(
            prepare_design(load_rgb(job.spec.design), job.spec.repeat, s), [], repeat=job.spec.repeat,
            width=level.width, height=level.height, settings=s, seed=job.spec.seed, device=device,
            scales=level.scales, targets=targets,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    image = zarr.open_group(str(store), mode="r")["jobs"]["whole"]["image"][...]
    assert np.array_equal(image, expected)


def test_both_layouts_are_seamless_at_the_repeat_and_at_the_tile_lines(auto_run):
    _, store, _ = auto_run
    root = zarr.open_group(str(store), mode="r")
    for job_id in JOBS:
        image = root["jobs"][job_id]["image"][...]
        assert repeat_seam_ratio(image, "block") <= 1.10, job_id
    seams = root["jobs"]["tiled"].attrs["seams"]
    assert seams["internal_max"] <= 1.25, seams  # the 64 px tile lines of the last level: no visible line

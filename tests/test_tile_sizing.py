"""tile_size = "auto": levels that fit a worker's memory run whole, the others in the largest tile that fits.

Planning only (no torch): the layout per budget, the job key, the errors, and the budget a
cluster gives; tests/test_whole_levels.py runs such a plan end to end.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers_manifest import job, manifest
from pydantic import ValidationError

from pipeline.conventions import PlanState
from pipeline.engine.memory import (
    NETWORK_BYTES_PER_PIXEL,
    WORKER_BASELINE_BYTES,
    parse_bytes,
    task_bytes,
)
from pipeline.engine.schedule import whole_image_sizes
from pipeline.run.cluster import ClusterOptions, planned_worker_memory
from pipeline.run.plan import make_plan
from pipeline.run.tile_sizing import (
    QUANTUM,
    Budget,
    auto_core,
    even_core,
    job_budget,
    level_bytes,
)
from pipeline.settings import Settings


def plan_one(ws: Path, size: int, budget: str | None, extra: str = "coarse_size = 256\n",
             cluster: Budget | None = None, fails: bool = False):  # fmt: skip
    """The plan of one job of ``size`` px under ``tile_size = "auto"`` and a budget."""
    body = f'size = [{size}, {size}]\ntile_size = "auto"\n' + (f'worker_memory = "{budget}"\n' if budget else "")
    path = manifest(ws, job(body + extra))
    [planned] = make_plan(path, store=ws / "out.zarr", worker_memory=cluster).jobs
    assert (planned.state is PlanState.FAILED) == fails, planned.error
    return planned


def test_memory_sizes_parse_with_units_and_bad_ones_say_what_is_expected():
    assert parse_bytes("6 GiB") == 6 * 2**30
    assert parse_bytes("1500MiB") == 1500 * 2**20
    assert parse_bytes("2.5 GB") == 2_500_000_000
    assert parse_bytes("123 B") == 123
    assert parse_bytes("16G") == 16 * 10**9  # as dask-jobqueue reads a batch job's `memory`
    for bad in ("lots", "6 parsecs", "0 GiB", ""):
        with pytest.raises(ValueError, match="memory size"):
            parse_bytes(bad)


def test_settings_take_auto_and_reject_bad_tile_sizes_and_budgets():
    assert Settings(tile_size="auto").tile_size == "auto"
    with pytest.raises(ValidationError, match="64 to 4096"):
        Settings(tile_size=32)
    with pytest.raises(ValidationError, match="memory size"):
        Settings(tile_size="auto", worker_memory="plenty")
    # the budget decides a layout, and the layout is keyed; the budget itself is not in the digest
    assert Settings(worker_memory="3 GiB").digest() == Settings(worker_memory="4 GiB").digest()
    assert Settings(coarse_threads=1).digest() != Settings().digest()  # threads decide bytes: keyed


def test_a_level_that_fits_joins_the_coarse_pass_as_a_whole_image_scale(ws):
    planned = plan_one(ws, 768, "8 GiB", "coarse_size = 384\nscales = 1\n")
    assert len(planned.levels) == 1  # no tiled level: the 768 px level runs whole, as `weft stylize` does
    [level] = planned.levels
    assert (level.width, level.height, level.tiled, level.scales) == (768, 768, False, 2)
    assert planned.coarse_sizes == tuple(whole_image_sizes(768, 768, planned.spec.repeat, planned.spec.settings,
                                                           scales=2))  # fmt: skip
    assert planned.coarse_sizes == ((384, 384), (768, 768))


def test_levels_that_do_not_fit_are_tiled_with_the_largest_core_that_does(ws):
    budget = "3 GiB"
    planned = plan_one(ws, 2048, budget, "coarse_size = 512\nscales = 1\n")
    s = planned.spec.settings
    tiled = [level for level in planned.levels if level.tiled]
    assert tiled, "a 2048 px level does not fit 3 GiB whole: it must be tiled"
    assert max(planned.levels[-1].width, planned.levels[-1].height) == 2048
    largest = auto_core(s, job_budget(s, None), "j")
    for level in tiled:
        window = level.core + 2 * level.halo
        assert level.core % QUANTUM == 0 and level.core <= largest
        assert level_bytes(s, window * window) <= parse_bytes(budget)  # the tile fits ...
        assert level_bytes(s, (largest + QUANTUM + 2 * level.halo) ** 2) > parse_bytes(budget)  # (the largest that does)
        # ... in as few tiles a side as the largest core needs, evened out
        assert math.ceil(max(level.width, level.height) / level.core) == math.ceil(max(level.width, level.height) / largest)
        assert level_bytes(s, level.width * level.height) > parse_bytes(budget)  # and the level did not fit whole
        assert level.halo_overhead == pytest.approx(level.chunks * window**2 / (level.width * level.height) - 1)
    whole = planned.levels[0]
    assert level_bytes(s, whole.width * whole.height) <= parse_bytes(budget)


def test_the_layout_is_in_the_key_and_the_budget_only_through_it(ws):
    small, other_small = plan_one(ws, 1024, "2 GiB"), plan_one(ws, 1024, "2060 MiB")
    large = plan_one(ws, 1024, "16 GiB")
    assert [lv.core for lv in small.levels] == [lv.core for lv in other_small.levels]
    assert small.key == other_small.key  # a different budget, the same layout: the same pixels, the same key
    assert [lv.tiled for lv in large.levels] != [lv.tiled for lv in small.levels]
    assert large.key != small.key


def test_even_cores_keep_the_tile_count_and_shrink_the_halo_work():
    assert even_core(448, (1024, 1024)) == 384  # 3 tiles a side either way; 512² windows instead of 576²
    assert even_core(512, (2048, 2048)) == 512  # already even
    assert even_core(448, (768, 600)) == 384  # 2 tiles along the long side
    assert even_core(448, (300, 300)) == 320  # one tile: the level's side, rounded up to the quantum


def test_a_budget_that_holds_no_tile_fails_that_job_with_the_settings_to_change(ws):
    planned = plan_one(ws, 1024, "1100 MiB", fails=True)  # the worker's baseline alone is about 1 GiB
    assert planned.state is PlanState.FAILED
    assert "job 'j'" in planned.error and "worker_memory" in planned.error
    coarse = plan_one(ws, 1024, "1500 MiB", "coarse_size = 1024\n", fails=True)  # a tile would fit, the coarse pass not
    assert "coarse pass" in coarse.error and "coarse_size" in coarse.error


def test_without_a_setting_the_cluster_decides_the_budget(ws):
    roomy = plan_one(ws, 1024, None, cluster=Budget(16 * 2**30, "test cluster"))
    tight = plan_one(ws, 1024, None, cluster=Budget(2 * 2**30, "test cluster"))
    assert not any(lv.tiled for lv in roomy.levels) and any(lv.tiled for lv in tight.levels)


def test_the_local_cluster_shares_this_machines_memory_by_threads(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    one = planned_worker_memory(ClusterOptions(device="cpu", threads_per_worker=1))
    two = planned_worker_memory(ClusterOptions(device="cpu", threads_per_worker=2))
    assert one is not None and two is not None
    assert one.bytes == total // 4 and two.bytes == total // 2
    assert planned_worker_memory(ClusterOptions(scheduler_address="tcp://elsewhere:8786")) is None


def test_a_batch_cluster_gives_its_job_memory_over_its_processes(tmp_path, monkeypatch):
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "slurm.toml").write_text(
        '[cluster]\nqueue = "cpu"\ncores = 8\nmemory = "16GB"\nprocesses = 2\nwalltime = "01:00:00"\n'
    )
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path))
    budget = planned_worker_memory(ClusterOptions(kind="slurm"))
    assert budget is not None and budget.bytes == 8 * 10**9
    assert "slurm" in budget.source


def test_the_memory_model_adds_lbfgs_history_to_the_measured_network_bytes():
    pixels = 512 * 512
    lbfgs = task_bytes(pixels, precision="fp32", optimizer="lbfgs", iterations=300)
    adam = task_bytes(pixels, precision="fp32", optimizer="adam", iterations=300)
    assert lbfgs - adam == pixels * 2 * 50 * 3 * 4  # 50 pairs of image-sized float32 vectors
    assert adam == WORKER_BASELINE_BYTES + pixels * (NETWORK_BYTES_PER_PIXEL["fp32"] + 4 * 12)
    assert math.isclose(task_bytes(0, precision="bf16", optimizer="adam", iterations=1), WORKER_BASELINE_BYTES)

"""The zarr store layout, done maps, resume semantics, run lock, and the OME-NGFF pyramid."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import zarr
from store_fixtures import FixtureJob, make_finished_store

from pipeline.conventions import is_valid_job_id
from pipeline.errors import StoreError
from pipeline.run.pyramid import box_reduce, pyramid_shapes, write_pyramid
from pipeline.run.layout import LevelLayout
from pipeline.run.lock import LOCK_NAME, RunLock, break_lock, lock_info
from pipeline.run.store import chunk_done, done_map, is_finished, job_ids, job_info, level_array, open_store, prepare_job, read_tile_window, set_job_status, tile_done, tiles_done_map, write_chunk, write_tile_window

LEVELS = [LevelLayout(0, 20, 30, core=16, tiled=False), LevelLayout(1, 40, 60, core=16, overlap=4, origin=(8, 8))]
THUMBS = {"design": np.zeros((10, 12, 3), np.uint8), "style-0": np.full((300, 600, 3), 9, np.uint8)}


def _prepare(store: Path, job_id: str = "j", key: str = "k1", **kwargs) -> bool:
    return prepare_job(open_store(store, "a"), job_id, job_key=key, provenance={"repeat": "block", "dpi": 300},
                       levels=LEVELS, thumbnails=THUMBS, **kwargs)  # fmt: skip


# --- opening ---------------------------------------------------------------------------------


def test_open_creates_a_weft_root_and_reopens(tmp_path: Path) -> None:
    store = tmp_path / "deep" / "c.zarr"
    root = open_store(store, "a")
    assert root.attrs["weft"] == {"format": 1}
    assert open_store(store, "r").attrs["weft"]["format"] == 1
    # plain zarr sees the same thing
    assert zarr.open_group(str(store), mode="r").attrs["weft"]["format"] == 1


def test_open_missing_store_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nope\.zarr does not exist"):
        open_store(tmp_path / "nope.zarr", "r")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: (p / "notes.txt").write_text("x"), "not a weft store: .*has no zarr.json"),
        (lambda p: zarr.open_group(str(p), mode="w", zarr_format=3), "not a weft store"),
        (lambda p: zarr.open_group(str(p), mode="w", zarr_format=2), "zarr v2 store"),
        (lambda p: (p / "zarr.json").write_text("{nonsense"), "not valid JSON"),
        (lambda p: zarr.open_group(str(p), mode="w", zarr_format=3, attributes={"weft": {"format": 99}}), "newer weft"),
    ],
)
def test_open_refuses_non_weft_folders(tmp_path: Path, setup, message: str) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    setup(folder)
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match=message):
            open_store(folder, mode)


def test_open_refuses_a_file_and_an_uncreatable_path(tmp_path: Path) -> None:
    file = tmp_path / "file.zarr"
    file.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        open_store(file, "r")
    with pytest.raises(StoreError, match=r"cannot create store .*file\.zarr/sub"):
        open_store(file / "sub", "a")


# --- jobs: prepare, resume, recreate ------------------------------------------------------------


def test_prepare_job_layout(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    assert _prepare(store) is True
    job = zarr.open_group(str(store), path="jobs/j", mode="r")
    assert job.attrs["job_key"] == "k1" and job.attrs["status"] == "pending" and job.attrs["dpi"] == 300
    assert job["levels/0/image"].shape == (20, 30, 3) and job["levels/0/image"].chunks == (16, 16, 3)
    assert "tiles" not in job["levels/0"]
    assert job["levels/1/tiles"].shape == (3, 4, 24, 24, 3) and job["levels/1/tiles"].chunks == (1, 1, 24, 24, 3)
    assert job["levels/1/tiles_done"].chunks == (1, 1)
    assert "image" not in job["levels/1"], "the last level's image is the job's final image"
    assert job["image"].shape == (40, 60, 3) and job["image"].attrs["origin"] == [8, 8]
    assert job["done"].shape == (3, 4)
    assert job["inputs/design"].shape == (10, 12, 3)
    assert max(job["inputs/style-0"].shape[:2]) == 256, "large thumbnails are shrunk"
    assert job_ids(store) == ["j"]


def test_same_key_resumes_changed_key_or_force_recreates(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    write_chunk(store, "j", 1, 0, 0, np.full((16, 16, 3), 5, np.uint8))
    assert _prepare(store) is False
    assert done_map(store, "j")[0, 0] and level_array(store, "j")[0, 0, 0] == 5, "resume keeps finished chunks"
    assert _prepare(store, key="k2") is True
    assert not done_map(store, "j").any() and level_array(store, "j")[0, 0, 0] == 0
    write_chunk(store, "j", 1, 0, 0, np.full((16, 16, 3), 5, np.uint8))
    assert _prepare(store, key="k2", force=True) is True
    assert not done_map(store, "j").any()


def test_interrupted_preparation_is_redone(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    # as if killed before the key (written last) was stored
    zarr.open_group(str(store), path="jobs/j", mode="r+").attrs["job_key"] = None
    assert _prepare(store) is True


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_invalid_job_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StoreError, match="invalid job id"):
        _prepare(tmp_path / "s.zarr", job_id=bad)


@pytest.mark.parametrize("bad", ["ok\n", "it's"])
def test_the_store_refuses_the_ids_the_manifest_refuses(tmp_path: Path, bad: str) -> None:
    """One rule (pipeline.conventions) for both: a trailing newline once slipped past the store's own regex."""
    assert not is_valid_job_id(bad)
    with pytest.raises(StoreError, match="invalid job id"):
        _prepare(tmp_path / "s.zarr", job_id=bad)


def test_prepare_validates_levels_and_thumbnails(tmp_path: Path) -> None:
    root = open_store(tmp_path / "s.zarr", "a")
    with pytest.raises(ValueError, match="increasing"):
        prepare_job(root, "j", job_key="k", provenance={}, levels=LEVELS[::-1], thumbnails={})
    with pytest.raises(ValueError, match="thumbnail names"):
        prepare_job(root, "j", job_key="k", provenance={}, levels=LEVELS, thumbnails={"other": THUMBS["design"]})
    with pytest.raises(ValueError, match="uint8"):
        prepare_job(root, "j", job_key="k", provenance={}, levels=LEVELS, thumbnails={"design": np.zeros((4, 4))})


# --- tiles, chunks, done maps ---------------------------------------------------------------------


def test_tile_windows_and_done_flags(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    window = np.arange(24 * 24 * 3, dtype=np.uint32).reshape(24, 24, 3).astype(np.uint8)
    assert not tile_done(store, "j", 1, 2, 3)
    write_tile_window(store, "j", 1, 2, 3, window)
    assert tile_done(store, "j", 1, 2, 3)
    np.testing.assert_array_equal(read_tile_window(store, "j", 1, 2, 3), window)
    expected = np.zeros((3, 4), bool)
    expected[2, 3] = True
    np.testing.assert_array_equal(tiles_done_map(store, "j", 1), expected)


def test_a_rejected_write_sets_no_done_flag(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    with pytest.raises(ValueError, match="expected uint8"):
        write_tile_window(store, "j", 1, 0, 0, np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        write_chunk(store, "j", 1, 2, 3, np.zeros((16, 16, 3), np.uint8))  # edge chunk is 8 x 12
    with pytest.raises(ValueError, match="outside"):
        write_chunk(store, "j", 1, 3, 0, np.zeros((16, 16, 3), np.uint8))
    assert not tiles_done_map(store, "j", 1).any() and not done_map(store, "j").any()


def test_chunks_of_intermediate_and_final_levels(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    write_chunk(store, "j", 0, 1, 1, np.full((4, 14, 3), 3, np.uint8))  # clipped edge chunk of 20 x 30
    assert chunk_done(store, "j", 0, 1, 1) and not chunk_done(store, "j", 0, 0, 0)
    assert level_array(store, "j", 0)[19, 29, 0] == 3
    write_chunk(store, "j", 1, 2, 3, np.full((8, 12, 3), 7, np.uint8))
    assert chunk_done(store, "j", None, 2, 3) and chunk_done(store, "j", 1, 2, 3)
    assert zarr.open_array(str(store), path="jobs/j/image", mode="r")[39, 59, 2] == 7


def test_missing_arrays_name_the_path(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    with pytest.raises(StoreError, match="has no array jobs/j/levels/0/tiles"):
        write_tile_window(store, "j", 0, 0, 0, np.zeros((16, 16, 3), np.uint8))


def _write_tiles_in_worker(args: tuple[str, int, int]) -> int:
    store, row, col = args
    write_tile_window(store, "j", 1, row, col, np.full((24, 24, 3), row * 4 + col, np.uint8))
    return row * 4 + col


def test_workers_in_other_processes_write_by_path(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    cells = [(str(store), r, c) for r in range(3) for c in range(4)]
    with ProcessPoolExecutor(2) as pool:
        assert sorted(pool.map(_write_tiles_in_worker, cells)) == list(range(12))
    assert tiles_done_map(store, "j", 1).all()
    assert read_tile_window(store, "j", 1, 2, 1)[0, 0, 0] == 9


def test_job_info_status_and_progress(tmp_path: Path) -> None:
    jobs = [FixtureJob("a"), FixtureJob("b", status="failed", written=0.5, error="boom")]
    store = make_finished_store(tmp_path, jobs)
    done, failed = job_info(store, "a"), job_info(store, "b")
    assert is_finished(done) and not is_finished(failed)
    assert done["progress"]["tiles_done"] == done["progress"]["tiles_total"] == 2 + 6
    assert failed["progress"]["levels"][1] == {"index": 1, "tiled": True, "chunks_done": 3, "chunks_total": 6,
                                               "tiles_done": 3, "tiles_total": 6}  # fmt: skip
    assert failed["error"] == "boom" and failed["status"] == "failed"
    assert done["inputs"]["styles"][0]["license"].startswith("Public domain")


def test_set_job_status_stores_json_only(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _prepare(store)
    set_job_status(store, "j", "done", seams={"repeat": np.float32(1.5), "internal_max": float("nan")},
                   timings={"seconds": np.int64(3)}, where=Path("/x"))  # fmt: skip
    attrs = json.loads((store / "jobs" / "j" / "zarr.json").read_text())["attributes"]
    assert attrs["seams"] == {"repeat": 1.5, "internal_max": None}
    assert attrs["timings"] == {"seconds": 3} and attrs["where"] == "/x" and attrs["status"] == "done"
    with pytest.raises(TypeError, match="cannot be stored"):
        set_job_status(store, "j", "done", thing=object())
    with pytest.raises(ValueError, match="status must be one of"):
        set_job_status(store, "j", "finished")
    with pytest.raises(StoreError, match=r"unknown job 'zz'.*jobs: j"):
        set_job_status(store, "zz", "done")
    with pytest.raises(StoreError, match="unknown job"):
        job_info(store, "../j")


# --- the run lock ----------------------------------------------------------------------------------


def _write_lock(store: Path, **info) -> None:
    open_store(store, "a")
    (store / LOCK_NAME).write_text(json.dumps(info))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    with RunLock(store, "weft run demo.toml") as lock:
        assert lock.root is not None and (store / LOCK_NAME).exists()
        with pytest.raises(StoreError, match=r"is being written by pid \d+ on host .* since .*weft run demo\.toml"):
            with RunLock(store, "weft run other.toml"):
                pass
    assert not (store / LOCK_NAME).exists()
    with RunLock(store, "again"):
        pass


def test_lock_of_a_run_that_died_on_this_host_is_taken_over(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    pid = _dead_pid()
    _write_lock(store, pid=pid, host=socket.gethostname(), started="2026-01-01T00:00:00+00:00", command="weft run x")
    with RunLock(store, "weft run y") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == pid
        assert lock_info(store)["command"] == "weft run y"
    assert not (store / LOCK_NAME).exists()
    assert not list(store.glob(f"{LOCK_NAME}*")), "no stale copy is left behind"


def test_break_lock_removes_any_lock(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _write_lock(store, pid=1, host="node-17", started="2026-01-01T00:00:00+00:00", command="weft run x")
    assert break_lock(store)["host"] == "node-17"
    assert break_lock(store) is None
    with RunLock(store, "weft run y"):
        pass


def test_lock_from_another_host(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    now = datetime.now(UTC)
    _write_lock(store, pid=1, host="node-17", started=now.isoformat(), command="weft run x")
    with pytest.raises(StoreError, match=r"being written by pid 1 on host node-17.*node died.*weft unlock"):
        with RunLock(store, "y"):
            pass
    _write_lock(store, pid=1, host="node-17", started=(now - timedelta(hours=30)).isoformat(), command="weft run x")
    with pytest.raises(StoreError, match="stale lock: it was taken on another host 30 hours ago"):
        with RunLock(store, "y"):
            pass


def test_unreadable_lock_is_stale(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    open_store(store, "a")
    (store / LOCK_NAME).write_text("")
    with pytest.raises(StoreError, match="stale lock: its lock file is unreadable"):
        with RunLock(store, "y"):
            pass


def test_lock_refuses_non_weft_folders_and_keeps_foreign_locks(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1")
    with pytest.raises(StoreError, match="not a weft store"):
        with RunLock(other, "y"):
            pass
    with pytest.raises(StoreError, match="not a weft store"):
        break_lock(other)
    store = tmp_path / "s.zarr"
    with RunLock(store, "mine"):
        break_lock(store)  # someone broke our lock and a second run took it
        _write_lock(store, pid=1, host="elsewhere", started=datetime.now(UTC).isoformat(), command="theirs")
    assert json.loads((store / LOCK_NAME).read_text())["command"] == "theirs"


# --- pyramid ----------------------------------------------------------------------------------------


def test_pyramid_shapes_stop_at_256() -> None:
    assert pyramid_shapes(600, 1000) == [(600, 1000), (300, 500), (150, 250)]
    assert pyramid_shapes(100, 80) == [(100, 80)]
    assert pyramid_shapes(513, 300) == [(513, 300), (257, 150), (129, 75)]


def test_box_reduce_averages_and_handles_odd_edges() -> None:
    block = np.array([[0, 2, 9], [4, 6, 9], [1, 1, 1]], np.uint8)[..., None]
    np.testing.assert_array_equal(box_reduce(block, 2)[..., 0], [[3, 9], [1, 1]])


@pytest.fixture
def pyramid_store(tmp_path: Path) -> tuple[Path, FixtureJob]:
    job = FixtureJob("big", width=600, height=520, core=128, dpi=254)  # 254 dpi: 0.01 cm per pixel
    store = make_finished_store(tmp_path, [job])
    assert write_pyramid(store, "big", chunk=128) == [(520, 600), (260, 300), (130, 150)]
    return store, job


def test_pyramid_levels_are_2x_box_reductions(pyramid_store: tuple[Path, FixtureJob]) -> None:
    store, job = pyramid_store
    group = zarr.open_group(str(store), path="jobs/big/pyramid", mode="r")
    np.testing.assert_array_equal(group["0"][...], job.image().transpose(2, 0, 1))
    for k in (1, 2):
        previous = group[str(k - 1)][...].transpose(1, 2, 0)
        np.testing.assert_array_equal(group[str(k)][...], box_reduce(previous, 2).transpose(2, 0, 1))


def test_pyramid_metadata_has_the_fields_ome_ngff_0_5_requires(pyramid_store: tuple[Path, FixtureJob]) -> None:
    """Checked by hand against the 0.5 spec (image.schema): needs no OME package."""
    store, _ = pyramid_store
    group = zarr.open_group(str(store), path="jobs/big/pyramid", mode="r")
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5" and len(ome["multiscales"]) == 1
    (multiscale,) = ome["multiscales"]
    assert "version" not in multiscale, "0.5 moved the version up to the 'ome' key"
    axes = multiscale["axes"]
    assert [(a["name"], a["type"]) for a in axes] == [("c", "channel"), ("y", "space"), ("x", "space")]
    assert "unit" not in axes[0] and axes[1]["unit"] == axes[2]["unit"] == "centimeter"
    paths = [d["path"] for d in multiscale["datasets"]]
    assert paths == ["0", "1", "2"]  # largest first
    for k, dataset in enumerate(multiscale["datasets"]):
        array = group[dataset["path"]]
        assert array.ndim == len(axes) and array.metadata.dimension_names == ("c", "y", "x")
        transforms = dataset["coordinateTransformations"]
        assert transforms[0]["type"] == "scale" and len(transforms[0]["scale"]) == 3
        np.testing.assert_allclose(transforms[0]["scale"], [1, 0.01 * 2**k, 0.01 * 2**k])
        if k:  # optional translation, after the scale: pixel centres half a box in
            assert transforms[1]["type"] == "translation"
            np.testing.assert_allclose(transforms[1]["translation"], [0, 0.005 * (2**k - 1), 0.005 * (2**k - 1)])
        else:
            assert len(transforms) == 1


def test_pyramid_opens_with_ome_zarr_models_and_ome_zarr_py(pyramid_store: tuple[Path, FixtureJob]) -> None:
    """The spec-derived pydantic models and the reference reader accept it (when installed)."""
    models = pytest.importorskip("ome_zarr_models.v05.image")
    pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    store, _ = pyramid_store
    group = zarr.open_group(str(store), path="jobs/big/pyramid", mode="r")
    multiscale = models.Image.from_zarr(group).attributes.ome.multiscales[0]
    assert [axis.unit for axis in multiscale.axes] == [None, "centimeter", "centimeter"]
    node = next(iter(Reader(parse_url(str(store / "jobs" / "big" / "pyramid")))()))
    assert [tuple(level.shape) for level in node.data] == [(3, 520, 600), (3, 260, 300), (3, 130, 150)]
    np.testing.assert_array_equal(node.data[1].compute(scheduler="synchronous"), group["1"][...])  # not a left-over Client


def test_pyramid_is_rewritten_and_refused_for_unfinished_jobs(tmp_path: Path) -> None:
    store = make_finished_store(tmp_path, [FixtureJob("a"), FixtureJob("b", status="running", written=0.5)])
    write_pyramid(store, "a")
    assert write_pyramid(store, "a") == [(64, 96)]
    with pytest.raises(StoreError, match="'b' is not finished"):
        write_pyramid(store, "b")
    with pytest.raises(StoreError, match="unknown job 'c'"):
        write_pyramid(store, "c")


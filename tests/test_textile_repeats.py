"""The new repeat types through the tile path: halos across the wrap, the feathered stitch, the seam figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers_repeat import smooth_repeat
from store_fixtures import FixtureJob, write_job

from pipeline.deliver.preview import repeat_preview
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat
from pipeline.repeat.seams import repeat_seam_relative, tile_seam_relative
from pipeline.repeat.tiles import TileGrid
from pipeline.run import store
from pipeline.run.tasks import stitch_chunk

SIDE, CORE, OVERLAP = 96, 32, 8


@dataclass
class TexturedJob(FixtureJob):
    """A textured result exactly seamless under its repeat (noise blurred with lattice padding)."""

    def image(self) -> np.ndarray:
        return np.rint(smooth_repeat(Repeat(self.repeat), self.height, self.width, seed=4, sigma=2.0)).astype(np.uint8)


def stitch_all(path: Path, grid: TileGrid) -> np.ndarray:
    """The final level stitched chunk by chunk from the stored tile windows."""
    out = np.zeros((SIDE, SIDE, 3), np.uint8)
    for tile in grid.tiles():
        out[tile.core] = stitch_chunk(str(path), "t", 1, grid, OVERLAP, tile.row, tile.col)
    return out


@pytest.mark.parametrize("repeat", list(Repeat))
def test_every_repeat_type_stitches_back_and_stays_seamless_at_its_boundary_and_tile_lines(tmp_path, repeat):
    """Windows gathered across the wrap (reflected for mirror) and feathered give back every pixel; tiles
    that disagree by 8 % in brightness, feathered, show neither at the boundary nor at the tile lines."""
    path = tmp_path / "s.zarr"
    job = TexturedJob("t", repeat=repeat.value, width=SIDE, height=SIDE, core=CORE, overlap=OVERLAP)
    write_job(path, job)
    image, grid = job.image(), TileGrid(repeat, SIDE, SIDE, CORE)
    np.testing.assert_array_equal(stitch_all(path, grid), image)

    brightness = {(t.row, t.col): 0.96 if (t.row + t.col) % 2 else 1.04 for t in grid.tiles()}
    patchwork = image.astype(np.float64)
    for tile in grid.tiles():
        window = store.read_tile_window(str(path), "t", 1, tile.row, tile.col) * brightness[(tile.row, tile.col)]
        store.write_tile_window(str(path), "t", 1, tile.row, tile.col, np.clip(np.rint(window), 0, 255).astype(np.uint8))
        patchwork[tile.core] *= brightness[(tile.row, tile.col)]  # the same disagreement, unfeathered
    unblended = tile_seam_relative(patchwork, grid)["overall"]
    assert unblended.ratio > 1.2 and unblended.rank == 1
    out = stitch_all(path, grid)
    tiles = tile_seam_relative(out, grid)["overall"]
    assert tiles.ratio < 1.15, tiles
    boundary = repeat_seam_relative(out, repeat)["overall"]
    if repeat.kind == "mirror":
        assert boundary.ratio == 0.0  # the two pixels that meet across a mirror edge are one pixel
    else:
        assert 0.8 < boundary.ratio < 1.25 and boundary.rank > 3, boundary


def test_previews_lay_out_mirror_and_third_drop_as_the_fabric_carries_them():
    tile = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    unit = repeat_preview(tile, "mirror", 2, 2)
    np.testing.assert_array_equal(unit[:6, 4:], tile[:, ::-1])  # the printed unit: 2W x 2H of reflections
    np.testing.assert_array_equal(unit[6:, :4], tile[::-1])
    dropped = repeat_preview(tile, "drop-1/3", 1, 2)
    np.testing.assert_array_equal(dropped[:, 4:], gather_window(tile, "drop-1/3", 0, 4, 6, 4))
    np.testing.assert_array_equal(dropped[2:, 4:], tile[:4])  # the next column drops by H/3 = 2 px


@pytest.mark.slow
def test_weft_run_stylizes_mirror_and_third_drop_jobs_seamlessly_in_tiles(tmp_path):
    """The real path: a LocalCluster of worker processes, a coarse pass, then a level refined in tiles with halos."""
    import zarr
    from pipeline_helpers import run, write_manifest

    manifest = write_manifest(tmp_path, {"mirror": ("designs/royal_stewart_sett.png", "wave", "mirror"),
                                         "third": ("designs/royal_stewart_sett.png", "wave", "drop-1/3")})  # fmt: skip
    text = manifest.read_text().split("[[jobs]]")
    manifest.write_text("[[jobs]]".join([*text[:-1], text[-1].replace("size = [128, 128]", "size = [128, 129]")]))
    result = run(manifest, tmp_path / "out.zarr")
    assert result.exit_code == 0 and {o.status for o in result.outcomes.values()} == {"done"}
    root = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    for job_id, repeat, shape in (("mirror", "mirror", (128, 128, 3)), ("third", "drop-1/3", (129, 128, 3))):
        job = root["jobs"][job_id]
        image = job["image"][...]
        assert image.shape == shape and job.attrs["repeat"] == repeat
        seams = job.attrs["seams"]  # the final tile grid's lines against the same family at every other offset
        assert seams["internal_compared"] > 1 and seams["internal_max"] < 1.3, (job_id, seams)
        boundary = repeat_seam_relative(image, repeat)["overall"]
        assert seams["repeat"] == pytest.approx(boundary.ratio, abs=1e-3)
        if repeat == "mirror":
            assert boundary.ratio == 0.0
        else:
            assert boundary.ratio < 1.3 and boundary.rank > 1, (job_id, boundary)

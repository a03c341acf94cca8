"""``weft run`` with styles by region and variants: a real LocalCluster, real zarr, the demo images.

One run of four jobs (a half-drop job with one style, two variants of it with the automatic mask
and two styles, and a block job with a mask file and a kept ground) at the tests' tiny profile: tiled refinement
with halos across the wrap, so the masks go through every path content goes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from PIL import Image
from pipeline_helpers import run, write_manifest

from pipeline.repeat.automask import auto_labels, mask_picture
from pipeline.repeat.seams import SEAMLESS

JOBS = """
[[jobs]]
id = "strawberry"
design = "designs/morris_strawberry_thief.jpg"
repeat = "half-drop"
size = [128, 128]
seed = 3
style = "wave"
style_weight = 3

[[jobs]]
id = "strawberry-regions"
design = "designs/morris_strawberry_thief.jpg"
repeat = "half-drop"
size = [128, 128]
seed = 3
mask = "auto"
regions = { ground = "kiss", motif = "wave" }
variants = { style_weight = [3, 30] }

[[jobs]]
id = "tartan"
design = "designs/royal_stewart_sett.png"
repeat = "block"
size = [128, 128]
seed = 3
crop_to_repeat = false
mask = "designs/tartan-mask.png"
regions = { "0" = "keep", "255" = "wave" }
"""


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    from pipeline.manifest.images import load_rgb

    folder = tmp_path_factory.mktemp("regions")
    path = write_manifest(folder, {})
    sett = load_rgb(folder / "designs" / "royal_stewart_sett.png")
    Image.fromarray(mask_picture(auto_labels(sett, "block"), sett.shape[:2])).save(folder / "designs" / "tartan-mask.png")
    path.write_text(path.read_text() + JOBS)
    store = folder / "out.zarr"
    return path, store, run(path, store, workers=2)


def test_masked_jobs_and_variants_run_and_tiles_meet_without_seams(masked_run: tuple[Path, Path, Any]) -> None:
    _, store, result = masked_run
    assert result.exit_code == 0
    root = zarr.open_group(str(store), mode="r")
    masked = ["strawberry-regions.style_weight-3", "strawberry-regions.style_weight-30", "tartan"]
    assert sorted(root["jobs"]) == ["strawberry", *masked]
    # the same job without a mask, at this tiny profile (4 steps per tile), is the yardstick of tile lines
    plain = root["jobs"]["strawberry"].attrs["seams"]
    for job_id in masked:
        attrs = root["jobs"][job_id].attrs
        seams = attrs["seams"]
        # the tiled level meets the whole-image rule at the tile boundaries (the internal seam metric): a mask
        # adds no line of its own. Local ratio: within 5 % of the plain job's (or of SEAMLESS); relative figure
        # (the tile-line family against the same family at every other offset): not the steepest family
        assert seams["internal_max_local"] <= 1.05 * max(SEAMLESS, plain["internal_max_local"]), (job_id, seams)
        assert seams["internal_rank"] > 1 and seams["internal_max"] < 1.2, (job_id, seams)
        assert attrs["regions"]["regions"][0]["label"] in {"ground", "0"}
    low, high = (root["jobs"][f"strawberry-regions.style_weight-{w}"] for w in (3, 30))
    assert low.attrs["job_key"] != high.attrs["job_key"]
    assert low["image"][...].tobytes() != high["image"][...].tobytes()
    assert low.attrs["variant"] == {"of": "strawberry-regions", "sets": {"style_weight": 3}}


def test_variants_and_region_jobs_share_one_targets_task_per_style_and_size(masked_run: tuple[Path, Path, Any]) -> None:
    from pipeline.run.plan import make_plan

    path, store, result = masked_run
    plan = make_plan(path, store=store, config=path.parent / "tiny.toml")
    wanted = set()
    per_job = 0
    for job in plan.jobs:
        sizes = set(job.coarse_sizes) | {(lv.height, lv.width) for lv in job.levels if lv.tiled}
        wanted |= {(style.sha256, hw) for style in job.styles for hw in sizes}
        per_job += len(job.styles) * len(sizes)
    computed = sum(stats["computed"].get("targets", 0) for stats in result.worker_stats.values())
    assert computed == len(wanted) < per_job


def test_the_kept_ground_is_the_design_through_the_tiled_level(masked_run: tuple[Path, Path, Any]) -> None:
    from pipeline.engine.knit import content_window, needs_knit
    from pipeline.engine.losses import seam_band
    from pipeline.engine.regions import planes_window
    from pipeline.run.cluster import ClusterInfo
    from pipeline.run.graph import job_context
    from pipeline.run.plan import make_plan
    from pipeline.run.tasks import design_rgb, job_regions

    path, store, _ = masked_run
    plan = make_plan(path, store=store, config=path.parent / "tiny.toml")
    job = next(j for j in plan.jobs if j.id == "tartan")
    ctx = job_context(job, plan, ClusterInfo(dashboard=None, workers=1, gpu=False, device="cpu", threads=1, description=""))
    design, regions = design_rgb(ctx), job_regions(ctx)
    size = (job.spec.height, job.spec.width)
    band, knit = seam_band(ctx.settings, size), needs_knit(design, ctx.repeat)
    content = content_window(design, ctx.repeat, size, (0, 0, *size), band=band, knit=knit)[0].permute(1, 2, 0).numpy()
    planes = planes_window(regions.planes, ctx.repeat, size, (0, 0, *size), band=band, knit=knit)[0].numpy()
    image = zarr.open_group(str(store), mode="r")["jobs"][job.id]["image"][...].astype(np.float64)
    change = np.abs(image - content).mean(axis=-1)
    assert change[planes[0] > 0.99].mean() < 1.5
    assert change[planes[1] > 0.99].mean() > 10.0


def test_the_report_shows_the_variants_side_by_side(masked_run: tuple[Path, Path, Any], tmp_path: Path) -> None:
    from pipeline.deliver.report import report_command

    _, store, _ = masked_run
    page = report_command(store, tmp_path / "report.html").read_text()
    section = page[page.index('id="variants-strawberry-regions"') :]
    assert "2 variants" in section[:200]
    assert section.index("style_weight = 3<") < section.index("style_weight = 30<") < section.index("</article>")

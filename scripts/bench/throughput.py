"""Throughput: `weft run` against `weft stylize` on one job, and a 2048 px run under a memory budget (issue 13).

Part one runs the same 768 px job (Strawberry Thief x the Great Wave, block, one schedule: a
384 px coarse pass then the 768 px scale) three ways, one after the other in one run: `weft
stylize` (one process, the whole image, ``coarse_threads`` threads), `weft run` with
``tile_size = "auto"`` on a fresh local 2-worker cluster, and `weft run` with the habit this
issue replaces (256 px tiles, 64 px halo). Each is a whole command in a subprocess, so the
walls include start-up, and each result is scored by one fp32 VGG-19 evaluation of the whole
768 px repeat (:func:`pipeline.engine.optimise.score`) under the same targets.

Part two plans and runs a 2048 px job with ``tile_size = "auto"`` and a 3 GiB
``worker_memory``: the planner tiles the levels that do not fit, and each worker's peak
memory is read back from the run (``RunResult.worker_peak_rss``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scripts.bench import DESIGN, MIB, ROOT, STYLE
from scripts.bench.machine import LoadSampler, no_gpu_rows
from scripts.bench.render import Table

TITLE = "Throughput: weft run vs weft stylize on one job, and tiles sized by a memory budget (issue 13)"
SIDE = 768
SCHEDULE = {"coarse_size": 384, "scales": 1, "iterations": 24, "refine_iterations": 12, "crop_to_repeat": False}
HABIT = {"tile_size": 256, "halo": 64, "overlap": 32}
BUDGET = "3 GiB"
BIG = 2048
BIG_SCHEDULE = {"coarse_size": 512, "scales": 1, "iterations": 4, "refine_iterations": 3, "crop_to_repeat": False}
WEFT = Path(sys.executable).with_name("weft")


def _toml(settings: dict) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return f'"{v}"' if isinstance(v, str) else str(v)

    return "[settings]\n" + "".join(f"{k} = {value(v)}\n" for k, v in settings.items())


def _manifest(folder: Path, side: int) -> Path:
    """A one-job manifest in ``folder`` over copies of the design and the style (inputs live under a manifest)."""
    for source in (DESIGN, STYLE):
        shutil.copyfile(source, folder / source.name)
    path = folder / "manifest.toml"
    path.write_text(
        f'[[styles]]\nid = "wave"\npath = "{STYLE.name}"\nlicense = "Public domain"\nattribution = "Hokusai"\n\n'
        f'[[jobs]]\nid = "job"\ndesign = "{DESIGN.name}"\nstyle = "wave"\nrepeat = "block"\nsize = [{side}, {side}]\n'
    )
    return path


def _timed(command: list[str], log: Callable[[str], None]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    log(f"{Path(command[0]).name} {command[1]}: {seconds:.1f} s")
    return seconds


def score_style(images: dict[str, object], settings_update: dict) -> dict[str, dict[str, float]]:
    """Each image's content and style loss under one fp32 whole-repeat problem at SIDE px."""
    import torch

    from pipeline.engine.optimise import score
    from pipeline.engine.pixels import to_caffe
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.engine.whole import prepare_design, whole_problem
    from pipeline.manifest.images import load_rgb
    from pipeline.repeat.lattice import Repeat
    from pipeline.settings import Settings

    settings = Settings(**{**settings_update, "precision": "fp32"})
    device = torch.device("cpu")
    model = get_model(settings.weights, "cpu", pooling=settings.pooling)
    targets = compute_style_targets(model, [(load_rgb(STYLE), 1.0)], (SIDE, SIDE), settings, device)
    design = prepare_design(load_rgb(DESIGN), Repeat.BLOCK, settings)
    problem = whole_problem(design, targets, Repeat.BLOCK, (SIDE, SIDE), settings, device, knit=False)
    return {name: score(model, problem, to_caffe(image, device), settings) for name, image in images.items()}


def side_by_side(log: Callable[[str], None]) -> list[dict]:
    """Rows of part one: wall and scores of stylize, run (auto) and run (256 px tiles)."""
    import numpy as np
    import zarr
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="weft-throughput-") as tmp:
        folder = Path(tmp)
        manifest = _manifest(folder, SIDE)
        (folder / "auto.toml").write_text(_toml({**SCHEDULE, "tile_size": "auto"}))
        (folder / "habit.toml").write_text(_toml({**SCHEDULE, **HABIT}))
        out = folder / "stylize.png"
        walls = {
            "weft stylize (whole image, one process)": _timed(
                [str(WEFT), "stylize", str(DESIGN), str(STYLE), "-o", str(out), "--size", f"{SIDE}x{SIDE}",
                 "--repeat", "block", "--config", str(folder / "auto.toml"), "--scales", "2", "--device", "cpu"], log),
            'weft run, tile_size = "auto" (2 workers)': _timed(
                [str(WEFT), "run", str(manifest), "--store", str(folder / "auto.zarr"), "--config",
                 str(folder / "auto.toml"), "--workers", "2", "--device", "cpu"], log),
            "weft run, 256 px tiles, 64 px halo (2 workers)": _timed(
                [str(WEFT), "run", str(manifest), "--store", str(folder / "habit.zarr"), "--config",
                 str(folder / "habit.toml"), "--workers", "2", "--device", "cpu"], log),
        }  # fmt: skip
        images = {
            "weft stylize (whole image, one process)": np.asarray(Image.open(out).convert("RGB")),
            'weft run, tile_size = "auto" (2 workers)': zarr.open_group(str(folder / "auto.zarr"), mode="r")["jobs"]["job"]["image"][...],
            "weft run, 256 px tiles, 64 px halo (2 workers)": zarr.open_group(str(folder / "habit.zarr"), mode="r")["jobs"]["job"]["image"][...],
        }  # fmt: skip
        scores = score_style(images, SCHEDULE)
    base = next(iter(walls))
    return [{"part": "side", "path": name, "wall": wall, "wall_ratio": wall / walls[base],
             "style": scores[name]["style"], "style_ratio": scores[name]["style"] / scores[base]["style"],
             "content": scores[name]["content"], "content_ratio": scores[name]["content"] / scores[base]["content"]}
            for name, wall in walls.items()]  # fmt: skip


def under_budget(log: Callable[[str], None]) -> list[dict]:
    """Rows of part two: the 2048 px plan under BUDGET and each worker's peak memory in its run."""
    from rich.console import Console

    from pipeline.engine.memory import parse_bytes
    from pipeline.run.execute import RunOptions, execute

    with tempfile.TemporaryDirectory(prefix="weft-budget-") as tmp:
        folder = Path(tmp)
        manifest = _manifest(folder, BIG)
        config = folder / "budget.toml"
        config.write_text(_toml({**BIG_SCHEDULE, "tile_size": "auto", "worker_memory": BUDGET}))
        console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115 - closed with the process
        options = RunOptions(manifest=manifest, store=folder / "big.zarr", config=config, workers=2, device="cpu")
        started = time.perf_counter()
        result = execute(options, console)
        wall = time.perf_counter() - started
        from pipeline.run.execute import plan_run

        [job] = plan_run(RunOptions(manifest=manifest, store=folder / "unused.zarr", config=config)).jobs
    levels = "; ".join(
        f"{lv.width}x{lv.height} " + (f"{lv.chunks} tiles of {lv.core} (halo +{lv.halo_overhead:.0%})" if lv.tiled
                                      else f"whole ({lv.scales} scales)")
        for lv in job.levels
    )  # fmt: skip
    peaks = sorted(result.worker_peak_rss.values())
    log(f"{BIG} px under {BUDGET}: {levels}; worker peaks {[round(p / MIB) for p in peaks]} MiB; {wall:.0f} s")
    return [{"part": "budget", "size": BIG, "budget_mib": parse_bytes(BUDGET) / MIB, "levels": levels,
             "peaks_mib": [p / MIB for p in peaks], "wall": wall, "status": result.exit_code}]  # fmt: skip


def bench_throughput(log: Callable[[str], None] = print) -> list[dict]:
    with LoadSampler(5.0) as loads:
        # the budget run first: a worker's ru_maxrss starts from its parent's peak, so the parent stays small
        rows = under_budget(log) + side_by_side(log)
        for row in rows:
            row["load"] = loads.summary()
    return rows + no_gpu_rows("all", rows="the same rows on a GPU; a 4096 px job end to end with dask-cuda: MP/min, "
                                          "share of bf16 peak in the VGG pass, peak GPU memory")


def tables(rows: list[dict]) -> list[Table]:
    side = [r for r in rows if r["part"] == "side"]
    budget = [r for r in rows if r["part"] == "budget"]
    schedule = ", ".join(f"{k} = {v}" for k, v in SCHEDULE.items())
    return [
        (f"one {SIDE} px job, same schedule ({schedule}), fp32 on this CPU; scored by one fp32 VGG-19 evaluation",
         ["path", "wall s", "wall / stylize", "style loss", "style / stylize", "content / stylize", "load"],
         [[r["path"], f"{r['wall']:.1f}", f"**{r['wall_ratio']:.3f}x**", f"{r['style']:.4g}",
           f"**{r['style_ratio']:.3f}x**", f"{r['content_ratio']:.2f}x", r["load"]] for r in side]),
        (f"a {BIG} px job under worker_memory = {BUDGET} (2 workers x 1 thread)",
         ["size px", "budget MiB", "levels", "worker peak RSS MiB", "under budget", "wall s", "load"],
         [[str(r["size"]), f"{r['budget_mib']:.0f}", r["levels"], " / ".join(f"{p:.0f}" for p in r["peaks_mib"]),
           "yes" if max(r["peaks_mib"]) <= r["budget_mib"] else "**no**", f"{r['wall']:.0f}", r["load"]]
          for r in budget]),
    ]  # fmt: skip


def summary(rows: list[dict]) -> str:
    side = [r for r in rows if r["part"] == "side"]
    auto, habit = side[1], side[2]
    [big] = [r for r in rows if r["part"] == "budget"]
    return (f"On one {SIDE} px job `weft run` with tile_size = \"auto\" takes {auto['wall_ratio']:.3f}x the wall of "
            f"`weft stylize` (target <= 1.15x) at {auto['style_ratio']:.3f}x its style loss (target <= 1.1x); 256 px "
            f"tiles took {habit['wall_ratio']:.2f}x. At {BIG} px under {BUDGET} the planner tiles and the workers "
            f"peak at {max(big['peaks_mib']):.0f} MiB.")

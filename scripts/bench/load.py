"""Load: many tiny jobs sharing a few styles on ONE 2-worker cluster, in batches: worker memory
after every batch, so growth across jobs (leaked targets, models, decoded images) shows."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scripts.bench import MIB, ROOT
from scripts.bench.cluster import CC0, local_cluster, run_on, worker_memory, write_manifest
from scripts.bench.machine import LoadSampler
from scripts.bench.render import Table, fmt

TITLE = "Load: 200 small jobs sharing 5 styles (issue 7)"
#: the demo manifest's designs with their repeat types (snakeshead is 512 x 443: no half-drop)
DESIGNS = {"royal_stewart_sett.png": "block", "morris_strawberry_thief.jpg": "half-drop", "morris_snakeshead.jpg": "brick"}


def _style_variants(directory: Path, count: int) -> list[Path]:
    """``count`` distinct style images made from the bundled ones (crops, flips, colour turns)."""
    from PIL import Image, ImageOps

    from pipeline.manifest.images import load_rgb

    sources = sorted((ROOT / "manifests" / "styles").glob("*.jpg"))
    paths = []
    for index in range(count):
        rgb = load_rgb(sources[index % len(sources)])
        h = rgb.shape[0]
        k = index // len(sources)
        crop = rgb[: h - 16 * k, 16 * k :] if k else rgb
        image = Image.fromarray(np.ascontiguousarray(crop))
        if k % 2:
            image = ImageOps.mirror(image)
        if k >= 2:
            image = Image.fromarray(np.ascontiguousarray(np.asarray(image)[..., ::-1]))
        path = directory / f"style-{index}.png"
        image.save(path)
        paths.append(path)
    return paths


def bench_load(
    jobs: int = 200,
    *,
    styles: int = 5,
    size: int = 64,
    iterations: int = 5,
    batches: int = 4,
    workers: int = 2,
    quiet: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """``jobs`` jobs as ``batches`` runs of ``weft run --only`` into one store on the same workers;
    every worker's current and peak RSS after each batch."""
    from rich.console import Console

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="weft-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "inputs").mkdir()
        for name in DESIGNS:
            shutil.copy(ROOT / "manifests" / "designs" / name, tmp / "inputs" / name)
        design_list = list(DESIGNS)
        style_tables = [
            {"id": f"s{i}", "path": f"inputs/{p.name}", "license": CC0, "attribution": "bench variant"}
            for i, p in enumerate(_style_variants(tmp / "inputs", styles))
        ]
        job_tables = [
            {"id": f"j{i:03d}", "design": f"inputs/{design_list[i % 3]}", "style": f"s{i % styles}",
             "repeat": DESIGNS[design_list[i % 3]], "size": size, "seed": i}
            for i in range(jobs)
        ]  # fmt: skip
        manifest = write_manifest(
            tmp, job_tables, style_tables,
            defaults={"dpi": 300, "coarse_size": max(32, size), "scales": 1, "iterations": iterations,
                      "refine": False},
            profile="demo",
        )  # fmt: skip
        console = Console(quiet=quiet, width=120)
        ids = [j["id"] for j in job_tables]
        per_batch = -(-jobs // batches)
        started = time.perf_counter()
        with local_cluster(workers) as (cluster, client, _baseline):
            rows.append(_load_row(0, 0.0, client.run(worker_memory), "", 0))
            done = 0
            for b in range(batches):
                batch = tuple(ids[b * per_batch : (b + 1) * per_batch])
                if not batch:
                    break
                t0 = time.perf_counter()
                with LoadSampler(2.0) as loads:
                    result = run_on(cluster, manifest, tmp / "store.zarr", console, only=batch)
                seconds = time.perf_counter() - t0
                done += len(batch)
                errors = {o.job.id: o.error for o in result.outcomes.values() if o.status == "failed"}
                memory = client.run(worker_memory)
                rows.append(_load_row(done, seconds, memory, loads.summary(), len(errors), result.compute_seconds))
                rows[-1]["errors"] = errors
                rows[-1]["worker_stats"] = result.worker_stats
                for job_id, error in list(errors.items())[:3]:
                    log(f"load: job {job_id} failed: {error}")
                if len(errors) > 3:
                    log(f"load: ... and {len(errors) - 3} more failed jobs")
                r = rows[-1]
                log(f"load: {done} jobs, batch {seconds:.1f}s ({len(errors)} failed), worker RSS {r['rss_mib']} MiB, "
                    f"peak {r['peak_mib']} MiB; load {r['load']}")  # fmt: skip
        total = time.perf_counter() - started
    for row in rows:
        row.update(total_s=total, jobs_total=jobs, styles=styles, size=size, iterations=iterations)
    return rows


def _load_row(done: int, seconds: float, memory: dict, load: str, failed: int, compute: float = 0.0) -> dict:
    items = sorted(memory.items())
    return {
        "jobs_done": done, "batch_s": seconds, "batch_compute_s": compute, "failed": failed,
        "rss_mib": [round(m["rss"] / MIB) for _, m in items], "peak_mib": [round(m["peak"] / MIB) for _, m in items],
        "load": load,
    }  # fmt: skip


def _worker_stats_cell(row: dict) -> str:
    stats = row.get("worker_stats") or {}
    if not stats:
        return "-"
    return " / ".join(f"{v.get('model_loads', '?')}, {v.get('inputs_cached', '?')}" for _, v in sorted(stats.items()))


def tables(rows: list[dict]) -> list[Table]:
    return [("worker memory after every batch of jobs (same 2 worker processes throughout)",
             ["jobs done", "batch s", "batch task compute s", "failed", "worker RSS now MiB",
              "worker peak RSS (VmHWM) MiB", "model loads / inputs cached per worker", "load 1-min"],
             [[str(r["jobs_done"]), f"{r['batch_s']:.1f}" if r["jobs_done"] else "(after start-up)",
               f"{r['batch_compute_s']:.1f}" if r["jobs_done"] else "", str(r["failed"]) if r["jobs_done"] else "",
               fmt(r["rss_mib"]), fmt(r["peak_mib"]), _worker_stats_cell(r), r["load"]]
              for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    first = next(r for r in rows if r["jobs_done"])
    last = rows[-1]
    grow = max(b - a for a, b in zip(first["rss_mib"], last["rss_mib"]))
    return (f"{last['jobs_done']} jobs on the same two workers: worker RSS after {first['jobs_done']} jobs "
            f"{fmt(first['rss_mib'])} MiB, after {last['jobs_done']} {fmt(last['rss_mib'])} MiB (largest growth "
            f"{grow:+d} MiB); {last['total_s']:.0f} s in all.")

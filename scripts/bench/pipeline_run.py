"""Pipeline: ``weft run`` of one job per output size on a 2-worker LocalCluster: worker peak RSS,
wall vs task compute (overhead), throughput, and the style-targets task's memory alone."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench import DESIGN, MIB, STYLE
from scripts.bench.cluster import CC0, local_cluster, run_on, worker_memory, write_manifest
from scripts.bench.machine import LoadSampler, devices, in_fresh_process, load1, med, no_gpu_rows, proc_status_bytes
from scripts.bench.render import Table, fmt

TITLE = "Pipeline: worker memory vs output size, overhead, throughput (issue 5)"
PIPELINE_SETTINGS = {"tile_size": 256, "iterations": 10, "refine_iterations": 5}


def bench_pipeline(
    sizes: tuple[int, ...] = (1024, 2048),
    *,
    workers: int = 2,
    settings: dict[str, Any] | None = None,
    repeat: str = "half-drop",
    device: str = "all",
    keep: Path | None = None,
    quiet: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """One job per output size, profile ``demo`` with ``settings`` over it (default PIPELINE_SETTINGS,
    so every size uses the same tiles), each into a fresh store on a fresh cluster; then the
    style-targets task of each final level alone."""
    settings = {**PIPELINE_SETTINGS, **(settings or {})}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="weft-bench-pipeline-") as tmp_name:
        tmp = Path(keep) if keep else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        for dev in devices(device):
            for size in sizes:
                work = tmp / f"{dev}-{size}"
                (work / "inputs").mkdir(parents=True, exist_ok=True)
                shutil.copy(DESIGN, work / "inputs" / DESIGN.name)
                shutil.copy(STYLE, work / "inputs" / STYLE.name)
                manifest = write_manifest(
                    work,
                    jobs=[{"id": f"bench-{size}", "design": f"inputs/{DESIGN.name}", "style": "wave",
                           "repeat": repeat, "size": size}],
                    styles=[{"id": "wave", "path": f"inputs/{STYLE.name}", "license": CC0,
                             "attribution": "Hokusai, The Great Wave (The Met JP1847)"}],
                    defaults={"seed": 7, "dpi": 300, **settings},
                    profile="demo",
                )  # fmt: skip
                log(f"pipeline {dev} {size}px: running ...")
                run = _pipeline_run(manifest, work / "store.zarr", workers=workers, device=dev, quiet=quiet)
                rows.append(_pipeline_row(run, size, dev, settings, log))
    rows += no_gpu_rows(device, device="cuda", size=" / ".join(map(str, sizes)))
    finals = [tuple(int(v) for v in r["final_hw"]) for r in rows if "final_hw" in r]
    if finals:
        style_settings = {k: v for k, v in settings.items() if k not in PIPELINE_SETTINGS}
        targets = style_targets_memory(list(dict.fromkeys(finals)), style_settings)
        for r in targets:
            log(f"pipeline: style targets for a {r['output']} output alone: peak {r['peak_mib']:.0f} MiB "
                f"(model loaded: {r['before_mib']:.0f} MiB), {r['seconds']:.1f}s")
        rows += targets
    return rows


def _pipeline_run(manifest: Path, store: Path, *, workers: int, device: str, quiet: bool) -> dict:
    """One run on a fresh cluster; memory from the run result, timeline from the task stream."""
    from dask.distributed import get_task_stream
    from rich.console import Console

    from pipeline.run.execute import RunOptions, execute

    console = Console(quiet=quiet, width=120)
    loads = LoadSampler(2.0)
    if device == "cuda":  # weft's own LocalCUDACluster: one worker per GPU
        with loads:
            result = execute(RunOptions(manifest=manifest, store=store, device="cuda"), console)
        return {"result": result, "baseline": {}, "stream": None, "loads": loads}
    with local_cluster(workers) as (cluster, client, baseline):
        with loads, get_task_stream(client) as stream:
            result = run_on(cluster, manifest, store, console)
        records = list(stream.data)
        after = client.run(worker_memory)
    return {"result": result, "baseline": baseline, "stream": records, "loads": loads, "after": after}


def _task_stream_summary(records: list[dict], wall: float, workers: int) -> dict[str, Any]:
    """Per-prefix compute, worker busy fractions and the gaps, from Dask's task stream."""
    by_prefix: dict[str, list[float]] = defaultdict(list)
    busy: dict[str, float] = defaultdict(float)
    transfer = 0.0
    starts, stops = [], []
    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rec in records:
        key = rec.get("key", "")
        key = key if isinstance(key, str) else str(key)
        prefix = re.split(r"[-_]", key)[0]
        for ss in rec.get("startstops", ()):
            start, stop = ss["start"], ss["stop"]
            if ss["action"] == "compute":
                by_prefix[prefix].append(stop - start)
                busy[rec["worker"]] += stop - start
                intervals[rec["worker"]].append((start, stop))
                starts.append(start)
                stops.append(stop)
            elif ss["action"] == "transfer":
                transfer += stop - start
    span = (max(stops) - min(starts)) if starts else 0.0
    # time both workers were busy / one / none, inside the span
    events = sorted([(s, 1) for iv in intervals.values() for s, _ in iv] + [(e, -1) for iv in intervals.values() for _, e in iv])
    level, last_t = 0, events[0][0] if events else 0.0
    concurrency: dict[int, float] = defaultdict(float)
    for t, delta in events:
        concurrency[min(level, workers)] += t - last_t
        level, last_t = level + delta, t
    return {
        "tasks": {p: {"count": len(v), "seconds": sum(v), "median": med(v)} for p, v in sorted(by_prefix.items())},
        "dask_compute": sum(busy.values()),
        "span": span,
        "client_serial": wall - span,
        "transfer": transfer,
        "busy_fraction": {w: b / span if span else 0.0 for w, b in busy.items()},
        "seconds_with_n_busy": {n: round(v, 2) for n, v in sorted(concurrency.items())},
    }


def _pipeline_row(run: dict, size: int, dev: str, settings: dict, log: Callable[[str], None]) -> dict:
    result = run["result"]
    outcome = next(iter(result.outcomes.values()))
    job = outcome.job
    ideal = result.compute_seconds / max(1, result.workers)
    peaks = {addr: rss for addr, rss in sorted(result.worker_peak_rss.items())}
    row: dict[str, Any] = {
        "device": dev, "size": size, "status": outcome.status, "error": outcome.error,
        "levels": [f"{lv.width}x{lv.height}{' tiled ' + str(lv.chunks) if lv.tiled else ''}" for lv in job.levels],
        "tiles": sum(lv.chunks for lv in job.levels if lv.tiled), "workers": result.workers,
        "final_hw": [job.levels[-1].height, job.levels[-1].width],
        "wall_s": result.wall_seconds, "compute_s": result.compute_seconds, "ideal_s": ideal,
        "overhead": result.wall_seconds / ideal - 1 if ideal else float("nan"),
        "mpx_per_min": (job.levels[-1].height * job.levels[-1].width / 1e6 / (result.wall_seconds / 60)
                        if result.wall_seconds else float("nan")),
        "peak_rss_mib": [round(v / MIB) for v in peaks.values()],
        "peak_hwm_mib": [round(m["peak"] / MIB) for _, m in sorted(run.get("after", {}).items())],
        "baseline_rss_mib": [round(v / MIB) for _, v in sorted(run["baseline"].items())],
        "seams": outcome.seams, "settings": settings, "load": run["loads"].summary(),
    }  # fmt: skip
    if run["stream"] is not None:
        row["timeline"] = _task_stream_summary(run["stream"], result.wall_seconds, result.workers)
        # RunResult.compute_seconds leaves out the style-targets tasks; Dask's intervals cover every task
        all_compute = row["timeline"]["dask_compute"]
        row["dask_compute_s"] = all_compute
        row["overhead_dask"] = result.wall_seconds / (all_compute / max(1, result.workers)) - 1
    log(f"pipeline {dev} {size}px: {outcome.status}; wall {row['wall_s']:.1f}s, compute {row['compute_s']:.1f}s "
        f"on {row['workers']} workers (overhead {100 * row['overhead']:+.1f}%), peak RSS {row['peak_rss_mib']} MiB, "
        f"{row['mpx_per_min']:.2f} MPx/min; load {row['load']}")  # fmt: skip
    if "timeline" in row:
        t = row["timeline"]
        log(f"  timeline: span {t['span']:.1f}s, client-side serial {t['client_serial']:.1f}s, dask compute "
            f"{t['dask_compute']:.1f}s, busy {dict((k[-5:], round(v, 2)) for k, v in t['busy_fraction'].items())}, "
            f"seconds with n busy {t['seconds_with_n_busy']}, tasks {json.dumps(t['tasks'])}")  # fmt: skip
    return row


def targets_peak(style: str, height: str, width: str, settings_json: str) -> dict:
    """(in a fresh process) VmHWM after loading the model, and after ``compute_style_targets``."""
    import time

    import torch

    torch.set_num_threads(1)
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.manifest.images import load_rgb
    from pipeline.settings import Settings

    settings = Settings(**json.loads(settings_json))
    model = get_model(settings.weights, "cpu", pooling=settings.pooling)
    rgb = load_rgb(style)
    before = proc_status_bytes("VmHWM")
    start = time.perf_counter()
    compute_style_targets(model, [(rgb, 1.0)], (int(height), int(width)), settings, torch.device("cpu"))
    return {"before": before, "peak": proc_status_bytes("VmHWM"), "seconds": time.perf_counter() - start}


def style_targets_memory(output_sizes: list[tuple[int, int]], settings: dict[str, Any] | None = None) -> list[dict]:
    """Peak RSS of ``compute_style_targets`` (the pipeline's targets task) per output (h, w), each alone."""
    rows = []
    for h, w in output_sizes:
        r = in_fresh_process(targets_peak, str(STYLE), str(h), str(w), json.dumps(settings or {}))
        rows.append({"kind": "targets_memory", "output": f"{w}x{h}", "before_mib": r["before"] / MIB,
                     "peak_mib": r["peak"] / MIB, "seconds": r["seconds"], "load": f"{load1():.2f}"})  # fmt: skip
    return rows


def details(rows: list[dict]) -> list[str]:
    """The settings the runs used over ``demo``."""
    settings = next((r["settings"] for r in rows if "settings" in r), None)
    if not settings:
        return []
    return ["Settings over `demo`: " + ", ".join(f"`{k} = {v}`" for k, v in settings.items()), ""]


def _busy(row: dict, n: int) -> float:
    seconds = row["timeline"]["seconds_with_n_busy"]
    return float(seconds.get(n, seconds.get(str(n), 0.0)))


def tables(rows: list[dict]) -> list[Table]:
    runs = [r for r in rows if r.get("kind") != "targets_memory"]
    timeline = [r for r in runs if "timeline" in r]
    targets = [r for r in rows if r.get("kind") == "targets_memory"]
    out: list[Table] = [
        ("weft run, one job per size, fresh 2-worker LocalCluster and store each",
         ["device", "output px", "levels (tiled: tiles)", "status", "wall s", "task compute s (RunResult)",
          "ideal s", "overhead", "all tasks' compute s (Dask)", "overhead vs all tasks", "MPx/min",
          "worker peak RSS MiB (RunResult)", "worker VmHWM MiB", "after imports MiB", "load 1-min"],
         [[r["device"], f"{r['final_hw'][1]}x{r['final_hw'][0]}", ", ".join(r["levels"]), r["status"],
           f"{r['wall_s']:.1f}", f"{r['compute_s']:.1f}", f"{r['ideal_s']:.1f}",
           f"**{100 * r['overhead']:+.1f}%**",
           f"{r['dask_compute_s']:.1f}" if "dask_compute_s" in r else "-",
           f"**{100 * r['overhead_dask']:+.1f}%**" if "overhead_dask" in r else "-",
           f"{r['mpx_per_min']:.2f}", "**" + fmt(r["peak_rss_mib"]) + "**", fmt(r.get("peak_hwm_mib", [])),
           fmt(r["baseline_rss_mib"]), r["load"]]
          for r in runs]),
    ]  # fmt: skip
    if timeline:
        out.append(("where the wall time went (Dask task stream)",
                    ["output px", "task span s", "client-side before/after s", "Dask compute s",
                     "s with 0 / 1 / 2 workers busy", "tasks: count, s (median s)"],
                    [[f"{r['final_hw'][1]}x{r['final_hw'][0]}", f"{r['timeline']['span']:.1f}",
                      f"{r['timeline']['client_serial']:.1f}", f"{r['timeline']['dask_compute']:.1f}",
                      " / ".join(f"{_busy(r, n):.1f}" for n in range(3)),
                      "; ".join(f"{p} {v['count']}, {v['seconds']:.1f} ({v['median']:.2f})"
                                for p, v in r["timeline"]["tasks"].items())]
                     for r in timeline]))  # fmt: skip
    if targets:
        out.append(("the style-targets task alone (compute_style_targets for the final level, fresh process)",
                    ["output px", "model loaded MiB", "peak MiB", "growth MiB", "seconds", "load"],
                    [[r["output"], f"{r['before_mib']:.0f}", f"**{r['peak_mib']:.0f}**",
                      f"{r['peak_mib'] - r['before_mib']:.0f}", f"{r['seconds']:.1f}", r["load"]]
                     for r in targets]))  # fmt: skip
    return out


def summary(rows: list[dict]) -> str:
    runs = [r for r in rows if r.get("kind") != "targets_memory"]
    targets = [r for r in rows if r.get("kind") == "targets_memory"]
    peaks = {r["size"]: max(r["peak_rss_mib"]) for r in runs}
    over = ", ".join(
        f"{100 * r['overhead']:+.1f}% at {r['size']} px"
        + (f" ({100 * r['overhead_dask']:+.1f}% counting every task's compute)" if "overhead_dask" in r else "")
        for r in runs
    )
    sizes = sorted(peaks)
    growth = peaks[sizes[-1]] - peaks[sizes[0]]
    text = (f"Worker peak RSS is {peaks[sizes[0]]} MiB at {sizes[0]} px and {peaks[sizes[-1]]} MiB at "
            f"{sizes[-1]} px ({growth:+d} MiB for 4x the pixels: "
            f"{'flat' if abs(growth) < 0.1 * peaks[sizes[0]] else 'NOT flat'}); wall time vs task compute / "
            f"workers: {over} (target within +15%); "
            + ", ".join(f"{r['mpx_per_min']:.2f} MPx/min at {r['size']} px" for r in runs))  # fmt: skip
    if len(targets) > 1:
        lo, hi = targets[0], targets[-1]
        grows = hi["peak_mib"] - lo["peak_mib"] > 0.1 * lo["peak_mib"]
        text += (f". The style-targets task alone peaks at {lo['peak_mib']:.0f} MiB for a {lo['output']} output "
                 f"and {hi['peak_mib']:.0f} MiB for {hi['output']}"
                 + (": it runs VGG-19 on the whole style image resized to the output's size, so it grows with "
                    "the print size while the tiles stay flat" if grows else
                    " (the style image is capped, so it does not grow with the print size either)"))  # fmt: skip
    return text + "."

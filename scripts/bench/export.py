"""Export: peak memory of ``weft export`` of one large finished job, per format, each in a fresh
process (is the print file really streamed from the chunks?)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scripts.bench import MIB
from scripts.bench.machine import LoadSampler, in_fresh_process, proc_status_bytes
from scripts.bench.render import Table

TITLE = "Export: peak memory of an 8192 x 8192 export (issue 6)"
CHUNK = 512


def _chunk_pattern(y0: int, x0: int, height: int, width: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A periodic, textile-like chunk (smooth colour waves plus grain): compresses like real output."""
    y, x = np.mgrid[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
    u, v = 2 * np.pi * x / size, 2 * np.pi * y / size
    channels = [np.cos(3 * u + 2 * v), np.cos(5 * u - v + 1), np.sin(2 * u + 7 * v)]
    image = np.stack([127 + 90 * c for c in channels], axis=-1)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def make_bench_store(directory: Path, size: int) -> Path:
    """A store with one finished ``size`` x ``size`` job named ``bench``, written chunk by chunk."""
    from pipeline.run.layout import LevelLayout
    from pipeline.run.store import open_store, prepare_job, set_job_status, write_chunk

    store = directory / "bench.zarr"
    level = LevelLayout(0, size, size, core=CHUNK, tiled=False)
    provenance = {"repeat": "half-drop", "width": size, "height": size, "dpi": 300, "seed": 0}
    prepare_job(open_store(store, "a"), "bench", job_key="bench", provenance=provenance, levels=[level], thumbnails={})
    rng = np.random.default_rng(0)
    for row in range(level.rows):
        for col in range(level.cols):
            h, w = min(CHUNK, size - row * CHUNK), min(CHUNK, size - col * CHUNK)
            write_chunk(store, "bench", 0, row, col, _chunk_pattern(row * CHUNK, col * CHUNK, h, w, size, rng))
    set_job_status(store, "bench", "done")
    return store


def export_peak(store: str, out: str, fmt: str) -> dict:
    """(in a fresh process) own peak RSS (VmHWM) before and after exporting ``bench``, tracemalloc peak."""
    import tracemalloc

    from pipeline.deliver.export import export_job

    before = proc_status_bytes("VmHWM")
    tracemalloc.start()
    start = time.perf_counter()
    (path,) = export_job(Path(store), "bench", Path(out), fmt=fmt)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    after = proc_status_bytes("VmHWM")
    return {"rss_before": before, "rss_peak": after, "rss_delta": after - before, "tracemalloc_peak": traced,
            "seconds": seconds, "file_bytes": path.stat().st_size}  # fmt: skip


def bench_export(tmp_dir: Path, size: int = 8192, formats: tuple[str, ...] = ("tiff", "png")) -> dict:
    """Peak memory and time of exporting a ``size`` x ``size`` job, per format, in bytes and seconds."""
    tmp_dir = Path(tmp_dir)
    start = time.perf_counter()
    store = make_bench_store(tmp_dir, size)
    result: dict = {"size": size, "image_bytes": size * size * 3, "store_seconds": time.perf_counter() - start}
    for fmt in formats:
        out = tmp_dir / f"out-{fmt}"
        out.mkdir(exist_ok=True)
        figures = in_fresh_process(export_peak, str(store), str(out), fmt)
        figures["rss_delta_over_image"] = figures["rss_delta"] / result["image_bytes"]
        figures["rss_peak_over_image"] = figures["rss_peak"] / result["image_bytes"]
        result[fmt] = figures
    return result


def bench_export_rows(size: int = 8192, log: Callable[[str], None] = print) -> list[dict]:
    """:func:`bench_export` of TIFF and PNG as rows in MiB, each with the load."""
    with tempfile.TemporaryDirectory(prefix="weft-bench-export-") as tmp, LoadSampler(2.0) as loads:
        result = bench_export(Path(tmp), size)
    rows = []
    for fmt in ("tiff", "png"):
        r = result[fmt]
        rows.append({
            "size": size, "format": fmt, "image_mib": result["image_bytes"] / MIB,
            "rss_before_mib": r["rss_before"] / MIB, "rss_peak_mib": r["rss_peak"] / MIB,
            "rss_delta_mib": r["rss_delta"] / MIB, "delta_over_image": r["rss_delta_over_image"],
            "peak_over_image": r["rss_peak_over_image"], "tracemalloc_mib": r["tracemalloc_peak"] / MIB,
            "seconds": r["seconds"], "file_mib": r["file_bytes"] / MIB, "load": loads.summary(),
        })  # fmt: skip
        log(f"export {size}px {fmt}: peak {rows[-1]['rss_peak_mib']:.0f} MiB, +{rows[-1]['rss_delta_mib']:.0f} MiB "
            f"({rows[-1]['delta_over_image']:.2f}x image), {r['seconds']:.1f}s")  # fmt: skip
    return rows


def tables(rows: list[dict]) -> list[Table]:
    size = rows[0]["size"] if rows else "?"
    return [(f"weft export of one {size} x {size} job (fresh process per format)",
             ["format", "image MiB", "RSS after imports MiB", "peak RSS MiB", "export growth MiB",
              "growth / image", "peak / image", "tracemalloc MiB", "seconds", "file MiB", "load"],
             [[r["format"], f"{r['image_mib']:.0f}", f"{r['rss_before_mib']:.0f}", f"{r['rss_peak_mib']:.0f}",
               f"{r['rss_delta_mib']:.0f}", f"**{r['delta_over_image']:.2f}x**", f"{r['peak_over_image']:.2f}x",
               f"{r['tracemalloc_mib']:.0f}", f"{r['seconds']:.1f}", f"{r['file_mib']:.0f}", r["load"]]
              for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    worst = max(rows, key=lambda r: r["delta_over_image"])
    ratio = worst["delta_over_image"]
    verdict = ("far below the 3x bound: the file is streamed from chunks" if ratio < 1 else
               "below the 3x bound" if ratio < 3 else "ABOVE the 3x bound")  # fmt: skip
    return (f"Exporting a {worst['size']} x {worst['size']} job grows the process by at most {ratio:.2f}x the "
            f"image's size ({worst['format']}), {verdict}.")

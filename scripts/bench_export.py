#!/usr/bin/env python
"""Peak memory of ``weft export`` on a large job: is the print file really streamed from chunks?

    python scripts/bench_export.py              # 8192 x 8192, TIFF and PNG
    python scripts/bench_export.py --size 4096

Builds a store with one finished SIZE x SIZE job (written chunk by chunk, never whole), then
exports it once per format in a fresh subprocess that reports its own peak resident set
size (``VmHWM``; not ``ru_maxrss``, which inherits the parent's peak) before and after the
export, and the peak of Python/numpy allocations during it (``tracemalloc``). The figure that
matters is the export's own growth, ``rss_delta``, against the image's size: the issue asks
for well below 3x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.run.layout import LevelLayout

from pipeline.run.store import open_store, prepare_job, set_job_status, write_chunk  # noqa: E402

CHUNK = 512

CHILD = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
from pipeline.deliver.export import export_job

def peak_rss():
    # VmHWM: this process's own high-water mark. ru_maxrss is not: Linux carries the parent's
    # peak over fork + exec into it, so a child of a big process reported the parent's size.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

store, out, fmt = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
before = peak_rss()
tracemalloc.start()
start = time.perf_counter()
(path,) = export_job(store, "bench", out, fmt=fmt)
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1]
after = peak_rss()
print(json.dumps({"rss_before": before, "rss_peak": after, "rss_delta": after - before, "tracemalloc_peak": traced,
                  "seconds": seconds, "file_bytes": path.stat().st_size}))
"""


def _chunk_pattern(y0: int, x0: int, height: int, width: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A periodic, textile-like chunk (smooth colour waves plus grain): compresses like real output."""
    y, x = np.mgrid[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
    u, v = 2 * np.pi * x / size, 2 * np.pi * y / size
    channels = [np.cos(3 * u + 2 * v), np.cos(5 * u - v + 1), np.sin(2 * u + 7 * v)]
    image = np.stack([127 + 90 * c for c in channels], axis=-1)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return image.clip(0, 255).astype(np.uint8)


def make_bench_store(directory: Path, size: int) -> Path:
    """A store with one finished ``size`` x ``size`` job named ``bench``."""
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


def bench_export(tmp_dir: Path, size: int = 8192, formats: tuple[str, ...] = ("tiff", "png")) -> dict:
    """Peak memory and time of exporting a ``size`` x ``size`` job, per format (see module doc)."""
    tmp_dir = Path(tmp_dir)
    start = time.perf_counter()
    store = make_bench_store(tmp_dir, size)
    result: dict = {"size": size, "image_bytes": size * size * 3, "store_seconds": time.perf_counter() - start}
    for fmt in formats:
        out = tmp_dir / f"out-{fmt}"
        out.mkdir(exist_ok=True)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(store), str(out), fmt],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        figures["rss_delta_over_image"] = figures["rss_delta"] / result["image_bytes"]
        figures["rss_peak_over_image"] = figures["rss_peak"] / result["image_bytes"]
        result[fmt] = figures
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="weft-bench-") as work:
        result = bench_export(Path(work), args.size)
    mb = 2**20
    print(f"export of a {args.size} x {args.size} job ({result['image_bytes'] / mb:.0f} MiB of pixels)")
    for fmt in ("tiff", "png"):
        r = result[fmt]
        print(
            f"  {fmt:4}: peak RSS {r['rss_peak'] / mb:6.0f} MiB (imports {r['rss_before'] / mb:.0f} MiB, "
            f"export +{r['rss_delta'] / mb:.0f} MiB = {r['rss_delta_over_image']:.2f}x image), "
            f"tracemalloc peak {r['tracemalloc_peak'] / mb:.0f} MiB, {r['seconds']:.1f} s, "
            f"file {r['file_bytes'] / mb:.0f} MiB"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

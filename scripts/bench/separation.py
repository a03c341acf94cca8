"""Separation: peak memory of separating one large finished job into spot colours and writing its print set,
each variant in a fresh process (is only the index map whole, and the image streamed in bands?)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scripts.bench import MIB
from scripts.bench.export import make_bench_store
from scripts.bench.machine import LoadSampler, in_fresh_process, proc_status_bytes
from scripts.bench.render import Table

TITLE = "Separation: peak memory of separating an 8192 x 8192 result (issue 15)"
COLORS = 8
#: (label, min_area_mm2): without speck removal, and with it (0.1 mm² = 14 px at 300 dpi).
VARIANTS = (("no speck removal", 0.0), ("min_area_mm2 = 0.1", 0.1))


def separation_peak(store: str, out: str, min_area_mm2: str) -> dict:
    """(in a fresh process) own peak RSS before and after separating ``bench`` and writing its print set."""
    import tracemalloc

    from pipeline.deliver.print_set import write_print_set

    before = proc_status_bytes("VmHWM")
    tracemalloc.start()
    start = time.perf_counter()
    files = write_print_set(Path(store), "bench", Path(out), colors=COLORS, min_area_mm2=float(min_area_mm2))
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    after = proc_status_bytes("VmHWM")
    return {"rss_before": before, "rss_peak": after, "rss_delta": after - before, "tracemalloc_peak": traced,
            "seconds": seconds, "files": len(files)}  # fmt: skip


def bench_separation(size: int = 8192, log: Callable[[str], None] = print) -> list[dict]:
    """Rows: per variant, peak memory in MiB and against the image's bytes, and seconds."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="weft-bench-separation-") as tmp, LoadSampler(2.0) as loads:
        store = make_bench_store(Path(tmp), size)
        image_bytes = size * size * 3
        for label, min_area in VARIANTS:
            out = Path(tmp) / f"out-{min_area}"
            r = in_fresh_process(separation_peak, str(store), str(out), str(min_area))
            rows.append({
                "size": size, "variant": label, "colors": COLORS, "image_mib": image_bytes / MIB,
                "rss_before_mib": r["rss_before"] / MIB, "rss_peak_mib": r["rss_peak"] / MIB,
                "rss_delta_mib": r["rss_delta"] / MIB, "delta_over_image": r["rss_delta"] / image_bytes,
                "tracemalloc_mib": r["tracemalloc_peak"] / MIB, "seconds": r["seconds"], "files": r["files"],
            })  # fmt: skip
            log(f"separation {size}px {label}: +{rows[-1]['rss_delta_mib']:.0f} MiB "
                f"({rows[-1]['delta_over_image']:.2f}x image), {r['seconds']:.1f}s")  # fmt: skip
        for row in rows:
            row["load"] = loads.summary()
    return rows


def tables(rows: list[dict]) -> list[Table]:
    size = rows[0]["size"] if rows else "?"
    colors = rows[0]["colors"] if rows else "?"
    return [(f"weft separate of one {size} x {size} job into {colors} colours, with its print set (fresh process each)",
             ["variant", "image MiB", "RSS after imports MiB", "peak RSS MiB", "growth MiB", "growth / image",
              "tracemalloc MiB", "seconds", "files", "load"],
             [[r["variant"], f"{r['image_mib']:.0f}", f"{r['rss_before_mib']:.0f}", f"{r['rss_peak_mib']:.0f}",
               f"{r['rss_delta_mib']:.0f}", f"**{r['delta_over_image']:.2f}x**", f"{r['tracemalloc_mib']:.0f}",
               f"{r['seconds']:.1f}", str(r["files"]), r["load"]] for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    worst = max(rows, key=lambda r: r["delta_over_image"])
    ratio = worst["delta_over_image"]
    verdict = "below the 3x bound" if ratio < 3 else "ABOVE the 3x bound"
    return (f"Separating a {worst['size']} x {worst['size']} job and writing its print set grows the process by at "
            f"most {ratio:.2f}x the image's size ({worst['variant']}), {verdict}.")

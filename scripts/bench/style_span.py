"""Style span: what the style targets of a ``style_span_cm`` cost as the span grows (issue 16).

A span fixes the style image's pixel size (span / 2.54 x dpi). Its Gram targets come from one
VGG-19 pass over that image, so their memory grows with its pixels: this measures seconds and
peak memory per size, each in a fresh process, to say where ``style_max_size`` must cap it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scripts.bench import MIB
from scripts.bench.machine import LoadSampler, in_fresh_process, proc_status_bytes
from scripts.bench.render import Table

TITLE = "Style span: cost of the style targets by the size a span implies (issue 16)"
SIZES = (512, 1024, 2048)
DPI = 300
STYLE = "manifests/styles/hokusai_great_wave.jpg"


def targets_peak(long_side: str) -> dict:
    """(in a fresh process) seconds and peak RSS growth of the Great Wave's targets at ``long_side`` px."""
    import torch

    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.manifest.images import load_rgb
    from pipeline.settings import Settings

    torch.set_num_threads(2)
    settings = Settings()
    model = get_model(settings.weights, "cpu")
    rgb = load_rgb(STYLE)
    before = proc_status_bytes("VmHWM")
    start = time.perf_counter()
    compute_style_targets(model, [(rgb, 1.0)], (1, 1), settings, torch.device("cpu"), long_side=int(long_side))
    return {"seconds": time.perf_counter() - start, "peak_growth": proc_status_bytes("VmHWM") - before}


def bench_style_span(sizes: tuple[int, ...] = SIZES, log: Callable[[str], None] = print) -> list[dict]:
    """Rows: per style long side, the span it is at 300 dpi, seconds and peak memory growth."""
    rows = []
    with LoadSampler(2.0) as loads:
        for size in sizes:
            r = in_fresh_process(targets_peak, str(size))
            rows.append({"size": size, "span_cm": size / DPI * 2.54, "seconds": r["seconds"],
                         "peak_mib": r["peak_growth"] / MIB})  # fmt: skip
            log(f"style targets at {size} px: {r['seconds']:.1f} s, +{rows[-1]['peak_mib']:.0f} MiB")
        for row in rows:
            row["load"] = loads.summary()
    return rows


def tables(rows: list[dict]) -> list[Table]:
    return [("Gram targets of the Great Wave (all style layers, fp32, 2 threads), fresh process each",
             ["style long side px", f"span at {DPI} dpi", "seconds", "peak memory growth MiB", "load"],
             [[str(r["size"]), f"{r['span_cm']:.1f} cm", f"{r['seconds']:.1f}", f"{r['peak_mib']:.0f}", r["load"]]
              for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    first, last = rows[0], rows[-1]
    growth = last["peak_mib"] / max(first["peak_mib"], 1e-9)
    return (f"From {first['size']} to {last['size']} px the targets' peak memory grows {growth:.1f}x "
            f"({first['peak_mib']:.0f} to {last['peak_mib']:.0f} MiB) and their time "
            f"{last['seconds'] / max(first['seconds'], 1e-9):.1f}x: with the pixels, as one VGG-19 pass does.")

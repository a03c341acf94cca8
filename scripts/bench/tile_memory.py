"""Tile memory: the bytes per pixel that ``tile_size = "auto"`` sizes tiles by, measured (issue 13).

For each precision, a fresh process loads VGG-19, warms up on a small problem, then runs a
few L-BFGS steps of a tile problem (zero padding, Gram + content loss) at two sizes. The
slope of its peak memory between them, less the L-BFGS state of those steps, is the
network's bytes per pixel: the constant :data:`pipeline.engine.memory.NETWORK_BYTES_PER_PIXEL`
must be at least that. The process's peak after the warm-up is the worker baseline.
"""

from __future__ import annotations

from collections.abc import Callable

from scripts.bench import MIB, STYLE
from scripts.bench.machine import LoadSampler, in_fresh_process, proc_status_bytes
from scripts.bench.render import Table

TITLE = "Tile memory: bytes per pixel of an optimisation, per precision (issue 13)"
#: sizes per precision (bf16 is emulated on a CPU without AVX-512 BF16: slow, so smaller there)
SIZES = {"fp32": (256, 512), "bf16": (128, 256)}
STEPS = 3
#: the two problems a worker optimises: a tile window (zero padding) and a whole level (lattice padding)
KINDS = ("tile", "whole")


def optimise_peak(size: str, precision: str, kind: str) -> dict:
    """(in a fresh process) the peak memory of ``STEPS`` L-BFGS steps at ``size`` px after a warm-up.

    ``kind`` "tile": a tile window's problem (zero padding); "whole": a whole level's (block
    lattice padding, wrapped TV, seam-faded content), as the whole-image task optimises it.
    """
    import torch

    from pipeline.engine.optimise import Problem, optimise
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.engine.whole import whole_problem
    from pipeline.manifest.images import load_rgb
    from pipeline.repeat.lattice import Repeat
    from pipeline.settings import Settings

    torch.set_num_threads(2)
    settings = Settings(precision=precision)
    device = torch.device("cpu")
    model = get_model(settings.weights, "cpu")
    targets = compute_style_targets(model, [(load_rgb(STYLE), 1.0)], (64, 64), settings, device)

    def run(side: int) -> None:
        image = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0)) * 30
        if kind == "whole":
            design = (torch.rand(side, side, 3, generator=torch.Generator().manual_seed(1)) * 255).byte().numpy()
            problem = whole_problem(design, targets, Repeat.BLOCK, (side, side), settings, device, knit=False)
        else:
            problem = Problem(content=image.clone(), targets=targets, content_mask=None, padding=None, tv_repeat=None)
        optimise(model, problem, image, settings, STEPS, device)

    run(64)
    baseline = proc_status_bytes("VmHWM")
    run(int(size))
    return {"baseline": baseline, "peak": proc_status_bytes("VmHWM")}


def slope_row(precision: str, kind: str, sizes: tuple[int, int], log: Callable[[str], None]) -> dict:
    """One precision and problem: the peak at both sizes (fresh processes) and the slope between them."""
    from pipeline.engine.memory import (
        NETWORK_BYTES_PER_PIXEL,
        optimiser_bytes_per_pixel,
    )

    peaks = {}
    for size in sizes:
        peaks[size] = in_fresh_process(optimise_peak, str(size), precision, kind)
        log(f"{precision} {kind} {size} px: peak {peaks[size]['peak'] / MIB:.0f} MiB "
            f"(baseline {peaks[size]['baseline'] / MIB:.0f} MiB)")  # fmt: skip
    small, large = sizes
    slope = (peaks[large]["peak"] - peaks[small]["peak"]) / (large**2 - small**2)
    return {
        "precision": precision, "kind": kind, "sizes": list(sizes), "peaks_mib": [peaks[s]["peak"] / MIB for s in sizes],
        "baseline_mib": max(p["baseline"] for p in peaks.values()) / MIB, "slope": slope,
        "network": slope - optimiser_bytes_per_pixel("lbfgs", STEPS), "constant": NETWORK_BYTES_PER_PIXEL[precision],
    }  # fmt: skip


def bench_tile_memory(log: Callable[[str], None] = print) -> list[dict]:
    """Rows: per precision and problem, the peak at each size, the slope, and the constant the planner uses."""
    with LoadSampler(2.0) as loads:
        rows = [slope_row(precision, kind, sizes, log) for precision, sizes in SIZES.items() for kind in KINDS]
        for row in rows:
            row["load"] = loads.summary()
    return rows


def tables(rows: list[dict]) -> list[Table]:
    title = (f"Peak memory of {STEPS} L-BFGS steps of a tile problem (zero padding) and a whole-level problem "
             "(lattice padding), VGG-19 to relu5_1, 2 threads, a fresh process per size")
    header = ["precision", "problem", "sizes px", "peak MiB", "baseline MiB (after warm-up)", "slope B/px",
              "network B/px (slope - L-BFGS state)", "constant in pipeline/engine/memory.py", "load"]
    cells = [[r["precision"], r["kind"], " / ".join(map(str, r["sizes"])), " / ".join(f"{p:.0f}" for p in r["peaks_mib"]),
              f"{r['baseline_mib']:.0f}", f"{r['slope']:.0f}", f"{r['network']:.0f}", str(r["constant"]), r["load"]]
             for r in rows]  # fmt: skip
    return [(title, header, cells)]


def summary(rows: list[dict]) -> str:
    parts = [f"{r['precision']} {r['kind']} {r['network']:.0f} B/px (planner uses {r['constant']})" for r in rows]
    ok = all(r["constant"] >= r["network"] for r in rows)
    return (f"An optimisation holds {', '.join(parts)} of network memory per pixel, plus L-BFGS's history; "
            f"the planner's constants {'cover' if ok else 'do NOT cover'} the measured figures.")

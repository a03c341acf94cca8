"""Ceiling: how near an optimisation iteration runs to this machine's matmul peak, and where the rest goes (issue 13).

The ceiling is a large ``torch.matmul`` on the same threads (fp32 and bf16). An iteration's
FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one L-BFGS step (VGG-19
forward to relu5_1, Gram and content losses, backward to the image); achieved FLOP/s is that
over the step's median time. A ``torch.profiler`` trace of one step splits its time into the
convolutions and the rest (padding copies, Gram matrices, element-wise work, L-BFGS's own
vector arithmetic). Each problem is the engine's own: a whole image with lattice padding and
a tile window with zero padding.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scripts.bench import STYLE
from scripts.bench.machine import LoadSampler, med, no_gpu_rows, torch_threads
from scripts.bench.render import Table

TITLE = "Ceiling: achieved FLOP/s of an iteration vs the matmul peak, and the share outside the convolutions (issue 13)"
SIZES = (512, 1024)
#: side of the square matmul per dtype (bf16 is emulated, about 1 GFLOP/s, on a CPU without AVX-512 BF16)
MATMUL_SIDE = {"fp32": 2048, "bf16": 1024}
#: op name fragments -> the part of the iteration they are counted in (first match wins)
PARTS = (
    ("convolution", ("conv",)),
    ("padding copies", ("pad", "cat", "index", "gather", "copy_", "slice", "narrow")),
    ("Gram and loss matmuls", ("mm", "matmul", "bmm")),
    ("pooling", ("pool",)),
)


def matmul_ceiling(dtype_name: str, threads: int, reps: int = 3) -> float:
    """Median FLOP/s of a square matmul (:data:`MATMUL_SIDE`) in ``dtype_name`` on ``threads`` threads."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    side = MATMUL_SIDE[dtype_name]
    a = torch.randn(side, side).to(dtype)
    b = torch.randn(side, side).to(dtype)
    with torch_threads(threads):
        torch.matmul(a, b)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - start)
    return 2 * side**3 / med(times)


def _problem(kind: str, size: int, settings):
    """A whole-image (lattice padding) or a tile (zero padding) problem at ``size`` px, and a start image."""
    import numpy as np
    import torch

    from pipeline.engine.optimise import Problem
    from pipeline.engine.targets import compute_style_targets
    from pipeline.engine.vgg import get_model
    from pipeline.engine.whole import whole_problem
    from pipeline.manifest.images import load_rgb
    from pipeline.repeat.lattice import Repeat

    device = torch.device("cpu")
    model = get_model(settings.weights, "cpu")
    targets = compute_style_targets(model, [(load_rgb(STYLE), 1.0)], (size, size), settings, device)
    design = np.random.default_rng(1).integers(0, 256, (size, size, 3), dtype=np.uint8)
    whole = whole_problem(design, targets, Repeat.BLOCK, (size, size), settings, device, knit=False)
    if kind == "tile":
        whole = Problem(content=whole.content, targets=targets, content_mask=None, padding=None, tv_repeat=None)
    return model, whole


def iteration_rows(kind: str, size: int, threads: int, steps: int = 3) -> dict:
    """Seconds per L-BFGS step (median of ``steps`` after one), its FLOPs, and the profile's split of one step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.engine.optimise import optimise
    from pipeline.settings import Settings

    settings = Settings(precision="fp32")
    with torch_threads(threads):
        model, problem = _problem(kind, size, settings)
        start = problem.content.clone()
        counts = []
        for steps_counted in (1, 2):  # one step = the difference (the content target's forward runs once per call)
            with FlopCounterMode(display=False) as counter:
                optimise(model, problem, start, settings, steps_counted, torch.device("cpu"))
            counts.append(counter.get_total_flops())
        flops = counts[1] - counts[0]
        stamps: list[float] = []
        began = time.perf_counter()
        optimise(model, problem, start, settings, steps + 1, torch.device("cpu"),
                 lambda *_: stamps.append(time.perf_counter()))  # fmt: skip
        seconds = med([b - a for a, b in zip([began, *stamps][1:-1], stamps[1:])])
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            optimise(model, problem, start, settings, 2, torch.device("cpu"))
    split = profile_split(prof)
    return {"kind": kind, "size": size, "threads": threads, "seconds": seconds, "gflop": flops / 1e9,
            "achieved": flops / seconds, **split}  # fmt: skip


def batch_rows(threads: int, side: int = 256, count: int = 4, reps: int = 3) -> dict:
    """VGG-19 forward + backward of ``count`` tiles as one batch vs one by one (what batching Adam would save)."""
    import torch

    from pipeline.engine.vgg import get_model
    from pipeline.settings import Settings

    settings = Settings(precision="fp32")
    model = get_model(settings.weights, "cpu")
    layers = list(settings.style_layers)

    def step(batch: torch.Tensor) -> None:
        image = batch.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        feats = model(image, layers, None)
        sum(f.square().mean() for f in feats.values()).backward()

    tiles = torch.randn(count, 3, side, side, generator=torch.Generator().manual_seed(0)) * 30
    batched, single = [], []
    with torch_threads(threads):
        step(tiles[:1])
        for _ in range(reps):
            began = time.perf_counter()
            step(tiles)
            batched.append(time.perf_counter() - began)
            began = time.perf_counter()
            for index in range(count):
                step(tiles[index : index + 1])
            single.append(time.perf_counter() - began)
    return {"row": "batch", "threads": threads, "side": side, "count": count, "batched": med(batched),
            "single": med(single)}  # fmt: skip


def profile_split(prof) -> dict:
    """Self CPU time of a profile, by :data:`PARTS` (the rest is 'other'), as shares of the total."""
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        name = event.key[len("aten::"):]
        part = next((label for label, keys in PARTS if any(k in name for k in keys)), "other")
        totals[part] = totals.get(part, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {"shares": {label: totals.get(label, 0.0) / whole for label, _ in (*PARTS, ("other", ()))}}


def bench_ceiling(sizes: tuple[int, ...] = SIZES, threads: tuple[int, ...] = (2,), label: str = "",
                  log: Callable[[str], None] = print) -> list[dict]:  # fmt: skip
    """Rows: the matmul ceilings, then per problem, size and thread count the iteration's figures."""
    rows: list[dict] = []
    with LoadSampler(2.0) as loads:
        for t in threads:
            for dtype in ("fp32", "bf16"):
                ceiling = matmul_ceiling(dtype, t)
                rows.append({"row": "ceiling", "dtype": dtype, "threads": t, "flops": ceiling, "label": label,
                             "side": MATMUL_SIDE[dtype]})  # fmt: skip
                log(f"matmul {dtype} {t} thread(s): {ceiling / 1e9:.1f} GFLOP/s")
        for t in threads:
            ceiling = next(r["flops"] for r in rows if r.get("dtype") == "fp32" and r["threads"] == t)
            for size in sizes:
                for kind in ("whole", "tile"):
                    row = {"row": "iteration", "label": label, **iteration_rows(kind, size, t)}
                    row["of_ceiling"] = row["achieved"] / ceiling
                    rows.append(row)
                    log(f"{kind} {size} px {t} thread(s): {row['seconds']:.2f} s, {row['gflop']:.0f} GFLOP, "
                        f"{row['achieved'] / 1e9:.1f} GFLOP/s = {row['of_ceiling']:.0%} of fp32 matmul; "
                        f"outside convs {1 - row['shares']['convolution']:.0%}")  # fmt: skip
        for t in threads:
            rows.append({**batch_rows(t), "label": label})
            log(f"batch of 4 tiles vs one by one, {t} thread(s): {rows[-1]['batched']:.2f} s vs {rows[-1]['single']:.2f} s")
        for row in rows:
            row["load"] = loads.summary()
    return rows + no_gpu_rows("all", rows="bf16 matmul peak; iterations at 512 and 1024 px (share of bf16 peak)")


def tables(rows: list[dict]) -> list[Table]:
    ceilings = [r for r in rows if r["row"] == "ceiling"]
    iterations = [r for r in rows if r["row"] == "iteration"]
    parts = [label for label, _ in PARTS] + ["other"]
    return [
        ("matmul ceiling (square, median of 3)", ["code", "dtype", "side", "threads", "GFLOP/s", "load"],
         [[r["label"], r["dtype"], str(r["side"]), str(r["threads"]), f"{r['flops'] / 1e9:.1f}", r["load"]]
          for r in ceilings]),
        ("one L-BFGS iteration, fp32 (this CPU has no fast bf16): achieved vs the fp32 matmul ceiling",
         ["code", "problem", "size px", "threads", "s / iter", "GFLOP / iter", "GFLOP/s", "of ceiling",
          *[f"{p} %" for p in parts], "load"],
         [[r["label"], r["kind"], str(r["size"]), str(r["threads"]), f"{r['seconds']:.2f}", f"{r['gflop']:.0f}",
           f"{r['achieved'] / 1e9:.1f}", f"**{r['of_ceiling']:.0%}**",
           *[f"{100 * r['shares'][p]:.0f}" for p in parts], r["load"]] for r in iterations]),
        ("VGG-19 forward + backward of 4 tiles: one batch vs one by one (Adam could batch a level's tiles)",
         ["code", "threads", "tile px", "batch of 4 s", "4 one by one s", "batch saves", "load"],
         [[r["label"], str(r["threads"]), str(r["side"]), f"{r['batched']:.2f}", f"{r['single']:.2f}",
           f"{1 - r['batched'] / r['single']:.0%}", r["load"]] for r in rows if r["row"] == "batch"]),
    ]  # fmt: skip


def summary(rows: list[dict]) -> str:
    """Per code label (before / after), the range of the share of the ceiling and of the time outside the convs."""
    iterations = [r for r in rows if r["row"] == "iteration"]
    parts = []
    for label in dict.fromkeys(r["label"] for r in iterations):
        mine = [r for r in iterations if r["label"] == label]
        ceiling = [r["of_ceiling"] for r in mine]
        outside = [1 - r["shares"]["convolution"] for r in mine]
        parts.append(f"{label + ': ' if label else ''}{min(ceiling):.0%} to {max(ceiling):.0%} of the fp32 matmul "
                     f"ceiling, {min(outside):.0%} to {max(outside):.0%} of the time outside the convolutions")
    return "An fp32 iteration at 512 and 1024 px runs at " + "; ".join(parts) + "."

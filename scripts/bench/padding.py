"""Padding: VGG-19 forward + backward with zero vs lattice padding per repeat type (method: docs/benchmarks.md)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from scripts.bench.machine import devices, load1, med, no_gpu_rows, rotated, sync, torch_threads
from scripts.bench.render import Table

TITLE = "Lattice padding cost inside VGG-19"


def bench_padding(
    sizes: tuple[int, ...] = (256, 512),
    precisions: tuple[str, ...] = ("bf16", "fp32"),
    *,
    rounds: int = 5,
    threads: int = 2,
    device: str = "all",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Forward+backward of VGG-19 (to relu5_1, gradient to the image) per padding, alternated."""
    import torch

    from pipeline.engine.device import precision_context
    from pipeline.engine.vgg import get_model
    from pipeline.repeat.lattice import Repeat
    from pipeline.settings import Settings

    rows: list[dict] = []
    s = Settings()
    layers = list(dict.fromkeys([s.content_layer, *s.style_layers]))
    paddings: list[Repeat | None] = [None, Repeat.BLOCK, Repeat.HALF_DROP, Repeat.BRICK]
    for dev in devices(device):
        torch_device = torch.device(dev)
        model = get_model(s.weights, dev, pooling=s.pooling)
        with torch_threads(threads if dev == "cpu" else None):
            for size in sizes:
                gen = torch.Generator().manual_seed(size)
                base = (torch.rand((1, 3, size, size), generator=gen) * 255 - 120).to(torch_device)
                base = base.contiguous(memory_format=torch.channels_last)
                for precision in precisions:
                    def fwd_bwd(pad: Repeat | None) -> float:
                        image = base.clone().requires_grad_(True)
                        sync(dev)
                        t0 = time.perf_counter()
                        with precision_context(precision, torch_device):
                            feats = model(image, layers, pad)
                        loss = sum(f.float().square().mean() for f in feats.values())
                        loss.backward()
                        sync(dev)
                        return time.perf_counter() - t0

                    for pad in paddings:  # warm-up
                        fwd_bwd(pad)
                    times: dict[Repeat | None, list[float]] = defaultdict(list)
                    loads = []
                    for r in range(rounds):
                        for pad in rotated(paddings, r):
                            loads.append(load1())
                            times[pad].append(fwd_bwd(pad))
                    zeros = med(times[None])
                    for pad in paddings:
                        rows.append({
                            "device": dev, "size": size, "precision": precision,
                            "padding": "zeros" if pad is None else f"lattice {pad.value}",
                            "ms": 1e3 * med(times[pad]), "vs_zeros": med(times[pad]) / zeros,
                            "n": len(times[pad]), "threads": torch.get_num_threads() if dev == "cpu" else "-",
                            "load": f"{med(loads):.2f}",
                        })  # fmt: skip
                    log(f"padding {dev} {size}px {precision}: "
                        + ", ".join(f"{r['padding']} {r['ms']:.0f} ms" for r in rows[-4:]))  # fmt: skip
    return rows + no_gpu_rows(device, device="cuda", size="256 / 512", precision="bf16 / fp32", padding="all")


def tables(rows: list[dict]) -> list[Table]:
    return [("VGG-19 forward + backward to relu5_1 (gradient to the image), median ms",
             ["device", "size px", "precision", "padding", "ms", "vs zeros", "runs", "threads", "load"],
             [[r["device"], f"{r['size']}x{r['size']}", r["precision"], r["padding"], f"{r['ms']:.0f}",
               f"{r['vs_zeros']:.2f}", str(r["n"]), str(r["threads"]), r["load"]] for r in rows])]  # fmt: skip


def summary(rows: list[dict]) -> str:
    lattice = [r for r in rows if r["padding"] != "zeros"]
    worst = max(lattice, key=lambda r: r["vs_zeros"])
    best = min(lattice, key=lambda r: r["vs_zeros"])
    return (f"Lattice padding costs {100 * (best['vs_zeros'] - 1):+.0f}% to {100 * (worst['vs_zeros'] - 1):+.0f}% "
            f"of a zero-padded forward+backward (worst: {worst['padding']}, {worst['precision']}, "
            f"{worst['size']} px), so seamlessness is nearly free.")  # fmt: skip

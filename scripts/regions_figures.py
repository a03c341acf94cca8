"""The pictures of docs/regions.md, made by weft from the demo designs.

    python scripts/regions_figures.py [--store weft-out/regions.zarr]

Runs ``manifests/regions.toml`` (styles by region, two style spans; resumes like any run), then
draws the automatic masks of the three demo designs as the engine uses them (the tile cut from a
photo, fitted to its repeat) and puts the results side by side, into docs/images/regions/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "regions"
PANEL = 256
LABEL = 18


def _panel(image: np.ndarray, caption: str) -> Image.Image:
    """An image fitted into PANEL x PANEL with its caption under it."""
    picture = Image.fromarray(image)
    picture.thumbnail((PANEL, PANEL), Image.Resampling.LANCZOS)
    panel = Image.new("RGB", (PANEL, PANEL + LABEL), "white")
    panel.paste(picture, ((PANEL - picture.width) // 2, (PANEL - picture.height) // 2))
    ImageDraw.Draw(panel).text((4, PANEL + 3), caption, fill="black")
    return panel


def _row(panels: list[Image.Image]) -> Image.Image:
    row = Image.new("RGB", (sum(p.width for p in panels) + 6 * (len(panels) - 1), panels[0].height), "white")
    x = 0
    for panel in panels:
        row.paste(panel, (x, 0))
        x += panel.width + 6
    return row


def _save(image: Image.Image, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    image.save(path, quality=78, optimize=True)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")


def _engine_view(manifest: Path, store: Path, job_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(design as the engine uses it, its automatic labels) of one job of a manifest."""
    from pipeline.repeat.automask import auto_labels
    from pipeline.run.cluster import ClusterInfo
    from pipeline.run.graph import job_context
    from pipeline.run.plan import make_plan
    from pipeline.run.tasks import design_rgb

    plan = make_plan(manifest, store=store)
    job = next(j for j in plan.jobs if j.id == job_id)
    ctx = job_context(job, plan, ClusterInfo(None, 1, False, "cpu", 1, ""))
    design = design_rgb(ctx)
    return design, auto_labels(design, ctx.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "weft-out" / "regions.zarr")
    args = parser.parse_args()
    manifest = ROOT / "manifests" / "regions.toml"
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(manifest), "--store", str(args.store),
                    "--device", "cpu"], check=True, cwd=ROOT)  # fmt: skip
    from pipeline.repeat.automask import mask_overlay, mask_picture
    from pipeline.run.store import level_array

    demo = ROOT / "manifests" / "demo.toml"
    rows = []
    for job_id in ("tartan-kiss", "strawberry-wave", "snakeshead-blend"):
        design, labels = _engine_view(demo, args.store.with_name("demo-none.zarr"), job_id)
        rows.append(_row([_panel(design, f"{job_id}: design tile"),
                          _panel(mask_picture(labels, design.shape[:2]), "mask = \"auto\" (ground black)"),
                          _panel(mask_overlay(design, labels), "ground dimmed")]))  # fmt: skip
    _save(_stack(rows), "auto-masks.jpg")

    design, labels = _engine_view(manifest, args.store, "strawberry-motif-wave")
    result = {job: np.asarray(level_array(args.store, job)[...]) for job in
              ("strawberry-motif-wave", "strawberry-kiss-wave", "tartan-wave.style_span_cm-1.5",
               "tartan-wave.style_span_cm-6.0")}  # fmt: skip
    _save(_row([_panel(mask_overlay(design, labels), "design, ground dimmed"),
                _panel(result["strawberry-motif-wave"], "ground keep, motif wave"),
                _panel(result["strawberry-kiss-wave"], "ground kiss, motif wave")]), "strawberry-regions.jpg")  # fmt: skip
    from pipeline.manifest.images import load_rgb

    sett = load_rgb(ROOT / "manifests" / "designs" / "royal_stewart_sett.png")
    _save(_row([_panel(sett, "design (2.2 cm at 300 dpi)"),
                _panel(result["tartan-wave.style_span_cm-1.5"], "style_span_cm = 1.5"),
                _panel(result["tartan-wave.style_span_cm-6.0"], "style_span_cm = 6")]), "tartan-span.jpg")  # fmt: skip


def _stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 6 for r in rows) - 6), "white")
    y = 0
    for row in rows:
        out.paste(row, (0, y))
        y += row.height + 6
    return out


if __name__ == "__main__":
    main()

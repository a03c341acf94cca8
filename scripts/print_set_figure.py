"""The README's screen-print figure from a print set that `weft export --separations --colourways` wrote.

Rows: the result, the indexed image and each colourway; the film positives; the swatch sheet.
A person sees at a glance that the separations add up to the indexed image and that a
colourway moves only the colours.

    python scripts/print_set_figure.py weft-out/prints strawberry-wave docs/images/screen-print-set.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROW_HEIGHT = 240
GAP = 8


def _scaled(path: Path, height: int = ROW_HEIGHT) -> Image.Image:
    image = Image.open(path).convert("RGB")
    return image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)


def _row(images: list[Image.Image]) -> Image.Image:
    width = sum(i.width for i in images) + GAP * (len(images) - 1)
    row = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for image in images:
        row.paste(image, (x, 0))
        x += image.width + GAP
    return row


def print_set_figure(folder: Path, job: str, out: Path) -> Path:
    """Lay out the job's print set in ``folder`` (result and colourways; film positives; swatches) as a JPEG."""
    top = [folder / f"{job}.tif", folder / f"{job}-indexed.tif", *sorted(folder.glob(f"{job}-colourway-*.tif"))]
    rows = [
        _row([_scaled(p) for p in top]),
        _row([_scaled(p, ROW_HEIGHT // 2) for p in sorted(folder.glob(f"{job}-sep-*.tif"))]),
        _row([_scaled(folder / f"{job}-swatches.png")]),
    ]
    figure = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + GAP * 2), "white")
    y = 0
    for row in rows:
        figure.paste(row, (0, y))
        y += row.height + GAP
    figure.save(out, quality=85, optimize=True)
    return out


if __name__ == "__main__":
    print(print_set_figure(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))

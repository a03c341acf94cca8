"""The screen-print set of a separated job: what `weft separate` and `weft export --separations` write.

For each job, into the output folder:

- ``JOB-indexed.tif``: one 8-bit palette image at the job's dpi, sRGB ICC, provenance with the
  palette (what a printer's RIP or Photoshop's indexed mode opens);
- ``JOB-sep-NN-rrggbb.tif``: one 1-bit film positive per colour (black = ink), same dpi;
- ``JOB-swatches.png`` and ``JOB-palette.json``: every ink's hex, CIELAB and coverage;
- with colourways asked for, ``JOB-colourway-NAME.tif``: the design in each named palette (RGB,
  through the same writer as the print file).

Every pixel is in exactly one separation, so the separations add up to the indexed image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from pipeline.colour import parse_hex
from pipeline.conventions import DEFAULT_DPI
from pipeline.deliver.export import atomic_file, safe_name, image_raster, provenance_record, srgb_icc, write_tiff
from pipeline.deliver.separate import Separation
from pipeline.deliver.separation_store import colourway_image, separate_job
from pipeline.errors import WeftError
from pipeline.run.store import is_finished, job_info, open_store
from pipeline.run.store import job_ids as list_job_ids

TIFF_TILE = 256


def _tiff(path: Path, data: np.ndarray, dpi: int, description: str, **options: Any) -> None:
    """A tiled, deflate-compressed TIFF at ``dpi`` with the sRGB profile, written atomically."""
    import tifffile

    with atomic_file(path) as temp:
        tifffile.imwrite(
            temp, data, tile=(TIFF_TILE, TIFF_TILE), compression="zlib", resolution=(dpi, dpi), resolutionunit="inch",
            iccprofile=srgb_icc(), description=description, metadata=None, software="weft",
            maxworkers=1, buffersize=4 * 2**20,  # tifffile's default buffer would hold the whole image again
            **options,
        )  # fmt: skip


def write_indexed(path: Path, sep: Separation, dpi: int, record: Mapping[str, Any]) -> None:
    """The index map as an 8-bit palette TIFF (colour map = the inks)."""
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, : len(sep.inks)] = np.array([ink.rgb for ink in sep.inks], np.uint16).T * 257
    _tiff(path, sep.index, dpi, json.dumps(record, sort_keys=True), photometric="palette", colormap=colormap)


def write_separations(folder: Path, stem: str, sep: Separation, dpi: int) -> list[Path]:
    """One 1-bit TIFF per ink: 1 (black) where that ink prints."""
    paths = []
    for k, ink in enumerate(sep.inks):
        path = folder / f"{stem}-sep-{k + 1:02d}-{ink.hex[1:]}.tif"
        note = json.dumps({"ink": k + 1, "hex": ink.hex, "lab": list(ink.lab), "coverage": round(ink.coverage, 6)})
        _tiff(path, sep.index == k, dpi, note, photometric="miniswhite")
        paths.append(path)
    return paths


def swatch_sheet(sep: Separation, title: str, colourways: Sequence[Mapping[str, Any]] = ()) -> np.ndarray:
    """An RGB image: one row per ink (swatch, hex, Lab, coverage), and a column of swatches per colourway."""
    from PIL import Image, ImageDraw

    row, swatch, text_w = 34, 28, 330
    width = 10 + swatch + 10 + text_w + len(colourways) * (swatch + 60)
    height = 40 + row * len(sep.inks) + 10
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 10), title, fill="black")
    for n, way in enumerate(colourways):
        draw.text((10 + swatch + 10 + text_w + n * (swatch + 60), 24), str(way["name"])[:10], fill="black")
    for k, ink in enumerate(sep.inks):
        y = 40 + k * row
        draw.rectangle((10, y, 10 + swatch, y + swatch), fill=ink.rgb, outline="black")
        lab = ", ".join(f"{v:.1f}" for v in ink.lab)
        draw.text((10 + swatch + 10, y + 8), f"{k + 1:2d}  {ink.hex}  Lab {lab}  {100 * ink.coverage:5.1f} %", fill="black")
        for n, way in enumerate(colourways):
            x = 10 + swatch + 10 + text_w + n * (swatch + 60)
            draw.rectangle((x, y, x + swatch, y + swatch), fill=parse_hex(way["colors"][k]), outline="black")
    return np.asarray(sheet)


def write_print_set(
    store: Path, job_id: str, out_dir: Path, *, colors: int | None = None, palette: str | None = None,
    min_area_mm2: float | None = None, colourways: bool = False,
) -> list[Path]:  # fmt: skip
    """Separate one finished job (or reuse its stored separation) and write its print set; the files written."""
    from PIL import Image

    sep, record = separate_job(store, job_id, colors=colors, palette=palette, min_area_mm2=min_area_mm2)
    info = job_info(open_store(store, "r"), job_id)
    dpi = int(info.get("dpi") or DEFAULT_DPI)
    stem = safe_name(job_id)
    provenance = {**provenance_record(info, dpi=dpi), "separation": record}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}-indexed.tif"]
    write_indexed(written[0], sep, dpi, provenance)
    written += write_separations(out_dir, stem, sep, dpi)
    ways = record.get("colourways") or []
    sheet = out_dir / f"{stem}-swatches.png"
    title = f"{job_id}: {len(sep.inks)} colours ({record['palette_from']}), {dpi} dpi"
    Image.fromarray(swatch_sheet(sep, title, ways)).save(sheet, dpi=(dpi, dpi))
    palette_file = out_dir / f"{stem}-palette.json"
    palette_file.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    written += [sheet, palette_file]
    if colourways:
        for way in ways:
            path = out_dir / f"{stem}-colourway-{safe_name(way['name'])}.tif"
            write_tiff(path, image_raster(colourway_image(sep, way)), dpi=dpi,
                       record={**provenance, "colourway": way})  # fmt: skip
            written.append(path)
    return written


def separate_command(
    store: Path, job_ids: Sequence[str], out_dir: Path, *, colors: int | None = None, palette: str | None = None,
    palette_from: str | None = None, min_area_mm2: float | None = None, colourways: bool = False,
    console: Console | None = None,
) -> int:  # fmt: skip
    """``weft separate``: the print set of every named (default: every finished) job; exit code."""
    console = console or Console()
    if palette and palette_from:
        raise WeftError("give --palette or --palette-from, not both")
    if palette_from not in (None, "design"):
        raise WeftError(f"--palette-from takes 'design', not {palette_from!r}")
    root = open_store(store, "r")
    known = list_job_ids(root)
    missing = [j for j in job_ids if j not in known]
    if missing:
        raise WeftError(f"unknown job {missing[0]!r} in {store} (jobs: {', '.join(known[:10]) or 'none'})")
    wanted = list(job_ids) or [j for j in known if is_finished(job_info(root, j))]
    if not wanted:
        console.print(f"[red]nothing to separate[/] in {escape(str(store))}", highlight=False)
        return 1
    for job_id in wanted:
        files = write_print_set(store, job_id, out_dir, colors=colors, palette=palette or palette_from,
                                min_area_mm2=min_area_mm2, colourways=colourways)  # fmt: skip
        for path in files:
            console.print(f"[green]wrote[/] {escape(str(path))}", highlight=False)
    return 0


def export_with_separations(
    store: Path, job_ids: Sequence[str], out_dir: Path, *, fmt: str, dpi: int | None, preview: str | None,
    colors: int | None = None, colourways: bool = False, console: Console | None = None,
) -> int:  # fmt: skip
    """``weft export --separations``: the print files, then each job's screen-print set beside them."""
    from pipeline.deliver.export import export_command

    console = console or Console()
    code = export_command(store, job_ids, out_dir, fmt, dpi, preview, console)
    if code and not job_ids:
        return code
    return max(code, separate_command(store, job_ids, out_dir, colors=colors, colourways=colourways, console=console))

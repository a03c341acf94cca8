"""Print files from the store: TIFF (default) or PNG at the job's dpi, sRGB ICC, provenance inside.

A print house needs the tile at its exact repeat size, a resolution tag that makes the
physical size right, a colour profile, and (for the lawyer) where the design and style came
from. All of that goes into the file itself: TIFF ImageDescription (JSON), Artist,
Copyright and XMP tags; PNG pHYs, iCCP and text chunks (plus XMP).

Files are written from the zarr chunks in bands, never from the whole image: TIFF as
256 x 256 tiles streamed into tifffile (with a bounded encode buffer), PNG by a small
streaming encoder (Pillow's needs the whole image in memory). Peak memory is a few bands,
whatever the image size (``python -m scripts.bench --only export`` measures it). Files appear
atomically (written under a temporary name, then renamed), so a killed export leaves no
truncated file.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np
from rich.console import Console
from rich.markup import escape

from pipeline.conventions import DEFAULT_DPI, EXPORT_FORMATS
from pipeline.errors import WeftError
from pipeline.deliver.preview import parse_grid, preview_region
from pipeline.run.store import is_finished, job_group, job_info, open_store
from pipeline.run.store import job_ids as list_job_ids

TIFF_TILE = 256
#: Bytes of one band a writer holds at most (wide previews get shorter bands).
BAND_BYTES = 32 * 2**20


# --- what is written -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """The sRGB ICC profile embedded in every file (bundled; regenerated if the file is missing)."""
    try:
        return resources.files("pipeline.resources").joinpath("sRGB.icc").read_bytes()
    except (FileNotFoundError, ModuleNotFoundError):
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def provenance_record(attrs: Mapping[str, Any], *, dpi: int, preview: str | None = None) -> dict[str, Any]:
    """What a print file says about itself: sources, licences and the licence policy, settings digest,
    job key, seed, repeat."""
    inputs = attrs.get("inputs") or {}
    design = inputs.get("design") or {}
    styles = inputs.get("styles") or []
    versions = attrs.get("versions") or {}
    record = {
        "generator": f"weft {versions.get('weft', '')}".strip(),
        "job_id": attrs.get("job_id"),
        "job_key": attrs.get("job_key"),
        "settings_digest": attrs.get("settings_digest"),
        "seed": attrs.get("seed"),
        "repeat": attrs.get("repeat"),
        "width": attrs.get("width"),
        "height": attrs.get("height"),
        "dpi": dpi,
        "design": {"path": design.get("path"), "sha256": design.get("sha256")},
        "styles": [
            {k: style.get(k) for k in ("id", "path", "sha256", "weight", "license", "attribution")} for style in styles
        ],
        "weights": attrs.get("weights"),
        "engine_version": attrs.get("engine_version"),
        "finished": (attrs.get("timings") or {}).get("finished"),
        "seams": attrs.get("seams"),
        "policy": attrs.get("policy"),
        "separation": _palette_only(attrs.get("separation")),
    }
    if preview:
        record["preview"] = preview
    return record


def _palette_only(separation: Any) -> Any:
    """A stored separation's record without its key: the inks, their coverage and the colourways."""
    if not separation:
        return None
    return {k: v for k, v in separation.items() if k != "key"}


def _styles_text(record: Mapping[str, Any], key: str) -> str:
    return "; ".join(f"{s.get('id')}: {s.get(key) or 'unknown'}" for s in record["styles"])


def summary_text(record: Mapping[str, Any]) -> str:
    """One human sentence of provenance, for description fields that viewers display."""
    design = Path(str(record["design"].get("path") or "unknown design")).name
    styles = ", ".join(f"{s.get('id')} ({s.get('attribution') or 'no attribution'})" for s in record["styles"])
    what = f"repeated {record['preview']} as a preview" if record.get("preview") else "one repeat tile"
    return (
        f"weft job {record['job_id']}: {design} styled with {styles or 'no style'}; {record['repeat']} repeat, "
        f"{record['width']}x{record['height']} px at {record['dpi']} dpi, {what}; seed {record['seed']}; "
        f"job key {record['job_key']}; settings {record['settings_digest']}"
    )


def xmp_packet(record: Mapping[str, Any]) -> bytes:
    """An XMP packet (Dublin Core + weft fields) that Photoshop, exiftool and RIPs show."""

    def alt(text: str) -> str:
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{xml_escape(text)}</rdf:li></rdf:Alt>'

    contributors = "".join(
        f"<rdf:li>{xml_escape(str(s.get('attribution') or s.get('id')))}</rdf:li>" for s in record["styles"]
    )
    weft_fields = "".join(
        f"<weft:{name}>{xml_escape(str(record.get(key)))}</weft:{name}>"
        for name, key in (("jobId", "job_id"), ("jobKey", "job_key"), ("settingsDigest", "settings_digest"),
                          ("seed", "seed"), ("repeat", "repeat"), ("preview", "preview"))
        if record.get(key) is not None
    )  # fmt: skip
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:weft="urn:weft:xmp:1.0:">'
        f"<dc:title>{alt(str(record['job_id']))}</dc:title>"
        f"<dc:description>{alt(summary_text(record))}</dc:description>"
        f"<dc:source>{xml_escape(str(record['design'].get('path')))}</dc:source>"
        f"<dc:contributor><rdf:Bag>{contributors}</rdf:Bag></dc:contributor>"
        f"<dc:rights>{alt(_styles_text(record, 'license'))}</dc:rights>"
        f"<xmp:CreatorTool>{xml_escape(record['generator'])}</xmp:CreatorTool>"
        f"{weft_fields}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return body.encode("utf-8")


def _ascii(text: str) -> str:
    """TIFF ASCII tags cannot hold UTF-8: keep ASCII, escape the rest (full text is in XMP/JSON)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


# --- rasters: what is read -------------------------------------------------------------------


@dataclass(frozen=True)
class Raster:
    """An (height, width, 3) uint8 image read by rectangles: a zarr image or a repeat preview of one."""

    height: int
    width: int
    chunk: int  # rows that are cheap to read together (the store's chunk height)
    read: Callable[[int, int, int, int], np.ndarray]  # (y0, y1, x0, x1) -> (y1-y0, x1-x0, 3)


def image_raster(array: Any) -> Raster:
    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return np.asarray(array[y0:y1, x0:x1])

    return Raster(int(array.shape[0]), int(array.shape[1]), int(getattr(array, "chunks", array.shape)[0]), read)


def preview_raster(array: Any, repeat: str, rows: int, cols: int) -> Raster:
    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return preview_region(array, repeat, y0, x0, y1 - y0, x1 - x0)

    base = image_raster(array)
    return Raster(rows * base.height, cols * base.width, base.chunk, read)


def _bands(raster: Raster, rows: int, segment: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """(y0, x0, block) over the raster: bands ``rows`` tall, each read in segments ``segment`` wide."""
    segment = segment or raster.width
    for y0 in range(0, raster.height, rows):
        y1 = min(y0 + rows, raster.height)
        for x0 in range(0, raster.width, segment):
            yield y0, x0, raster.read(y0, y1, x0, min(x0 + segment, raster.width))


# --- writers ----------------------------------------------------------------------------------


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Write to a temporary name and rename on success, so no truncated file is ever left."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temp
        os.replace(temp, path)
    except OSError as error:
        raise WeftError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with suppress(OSError):
            temp.unlink(missing_ok=True)


def write_tiff(path: Path, raster: Raster, *, dpi: int, record: Mapping[str, Any]) -> None:
    """Tiled, deflate-compressed RGB TIFF with resolution in dpi, sRGB ICC, JSON description, XMP."""
    import tifffile

    segment = max(TIFF_TILE, (4096 // TIFF_TILE) * TIFF_TILE)

    def tiles() -> Iterator[np.ndarray]:
        # TIFF tiles go row by row; one band is one tile row, read in chunk-aligned segments.
        for _, _, block in _bands(raster, TIFF_TILE, segment):
            for tx in range(0, block.shape[1], TIFF_TILE):
                yield block[:, tx : tx + TIFF_TILE]

    finished = record.get("finished")
    stamp = None
    if finished:
        try:
            stamp = datetime.fromisoformat(str(finished)).strftime("%Y:%m:%d %H:%M:%S")
        except ValueError:
            stamp = None
    big = raster.height * raster.width * 3 > 2**32 - 2**26  # classic TIFF offsets are 32-bit
    with atomic_file(path) as temp, tifffile.TiffWriter(temp, bigtiff=big) as tif:
        tif.write(
            tiles(),
            shape=(raster.height, raster.width, 3),
            dtype=np.uint8,
            photometric="rgb",
            planarconfig="contig",
            tile=(TIFF_TILE, TIFF_TILE),
            compression="zlib",
            compressionargs={"level": 6},
            resolution=(dpi, dpi),
            resolutionunit="inch",
            iccprofile=srgb_icc(),
            description=json.dumps(record, ensure_ascii=True, sort_keys=True),
            software=_ascii(record["generator"]),
            datetime=stamp,
            metadata=None,
            # Encoding threads with a small buffer: tifffile's default buffer (512 MB) would
            # otherwise pull a whole large image into memory before compressing it.
            maxworkers=min(4, os.cpu_count() or 1),
            buffersize=4 * 2**20,
            extratags=[
                (315, "s", 0, _ascii(_styles_text(record, "attribution")), True),  # Artist
                (33432, "s", 0, _ascii(_styles_text(record, "license")), True),  # Copyright
                (700, "B", 0, xmp_packet(record), True),  # XMP
            ],
        )


def _png_chunk(handle: Any, kind: bytes, data: bytes) -> None:
    handle.write(struct.pack(">I", len(data)) + kind + data)
    handle.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_text(key: str, text: str) -> tuple[bytes, bytes]:
    """tEXt for Latin-1 text, iTXt (UTF-8) otherwise."""
    try:
        return b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError:
        return b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")


def write_png(path: Path, raster: Raster, *, dpi: int, record: Mapping[str, Any]) -> None:
    """RGB PNG streamed band by band (filter 'Up', zlib level 6) with pHYs, iCCP and text chunks."""
    width, height = raster.width, raster.height
    rows = max(1, min(raster.chunk, BAND_BYTES // (3 * width)))
    texts = {
        "Title": str(record["job_id"]),
        "Description": summary_text(record),
        "Source": str(record["design"].get("path")),
        "Author": _styles_text(record, "attribution"),
        "Copyright": _styles_text(record, "license"),
        "Software": record["generator"],
        "weft:provenance": json.dumps(record, ensure_ascii=False, sort_keys=True),
    }
    with atomic_file(path) as temp, open(temp, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        _png_chunk(handle, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        _png_chunk(handle, b"iCCP", b"sRGB\0\0" + zlib.compress(srgb_icc()))
        per_metre = round(dpi / 0.0254)
        _png_chunk(handle, b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
        for key, text in texts.items():
            _png_chunk(handle, *_png_text(key, text))
        _png_chunk(handle, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp_packet(record))
        compressor = zlib.compressobj(6)
        above = np.zeros((1, width, 3), np.uint8)
        pending = bytearray()
        for _, _, block in _bands(raster, rows):
            # 'Up' filter: each row minus the row above, modulo 256 (uint8 wraps), computed in place.
            filtered = np.empty((block.shape[0], 1 + 3 * width), np.uint8)
            filtered[:, 0] = 2
            body = filtered[:, 1:].reshape(block.shape)
            np.subtract(block[:1], above, out=body[:1])
            np.subtract(block[1:], block[:-1], out=body[1:])
            above = block[-1:].copy()
            del block, body
            pending += compressor.compress(filtered)
            if len(pending) >= 1 << 20:
                _png_chunk(handle, b"IDAT", bytes(pending))
                pending.clear()
        pending += compressor.flush()
        _png_chunk(handle, b"IDAT", bytes(pending))
        _png_chunk(handle, b"IEND", b"")


WRITERS = {"tiff": write_tiff, "png": write_png}


# --- the command ------------------------------------------------------------------------------


def safe_name(job_id: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in job_id).lstrip(".") or "job"


def export_job(
    store: Path, job_id: str, out_dir: Path, *, fmt: str = "tiff", dpi: int | None = None, preview: str | None = None
) -> list[Path]:
    """Write one finished job (and its preview) into ``out_dir``; returns the files written."""
    root = open_store(store, "r")
    info = job_info(root, job_id)
    if not is_finished(info):
        raise WeftError(f"job {job_id!r} is not finished (status {info.get('status')}); nothing exported")
    image = job_group(root, job_id)["image"]
    dpi = int(dpi or info.get("dpi") or DEFAULT_DPI)
    suffix = EXPORT_FORMATS[fmt]
    written = []
    path = out_dir / f"{safe_name(job_id)}{suffix}"
    WRITERS[fmt](path, image_raster(image), dpi=dpi, record=provenance_record(info, dpi=dpi))
    written.append(path)
    if preview:
        rows, cols = parse_grid(preview)
        grid = f"{rows}x{cols}"
        path = out_dir / f"{safe_name(job_id)}-repeat-{grid}{suffix}"
        raster = preview_raster(image, info.get("repeat") or "block", rows, cols)
        WRITERS[fmt](path, raster, dpi=dpi, record=provenance_record(info, dpi=dpi, preview=grid))
        written.append(path)
    return written


def _physical(width: int, height: int, dpi: int) -> str:
    return f"{width / dpi * 2.54:.1f} x {height / dpi * 2.54:.1f} cm"


def export_command(
    store: Path,
    job_ids: Sequence[str] = (),
    out_dir: Path = Path("weft-out/export"),
    fmt: str = "tiff",
    dpi: int | None = None,
    preview: str | None = None,
    console: Console | None = None,
) -> int:
    """``weft export``: every named (default: every finished) job as a print file; exit code.

    Unfinished jobs are skipped with a message; the exit code is 1 when a job that was asked
    for by name is unknown or unfinished, or when nothing could be exported.
    """
    console = console or Console()
    if fmt not in EXPORT_FORMATS:
        raise WeftError(f"unknown format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if preview:
        parse_grid(preview)  # a usage error before any work
    root = open_store(store, "r")
    known = set(list_job_ids(root))
    requested = list(dict.fromkeys(job_ids))
    code = 0
    for job_id in requested:
        if job_id not in known:
            listing = ", ".join(sorted(known)[:10]) or "none"
            console.print(f"[red]unknown job[/] {escape(f'{job_id!r} in {store} (jobs: {listing})')}", highlight=False)
            code = 1
    candidates = [j for j in requested if j in known] if requested else sorted(known)
    infos = {job_id: job_info(root, job_id) for job_id in candidates}
    ready = [job_id for job_id in candidates if is_finished(infos[job_id])]
    for job_id in candidates:
        if job_id not in ready:
            info = infos[job_id]
            progress = info["progress"]
            tiles = f"{progress['tiles_done']}/{progress['tiles_total']} tiles"
            why = f"{job_id}: not finished (status {info.get('status')}, {tiles})"
            console.print(f"[yellow]skipped[/] {escape(why)}", highlight=False)
            code = 1 if requested else code
    if not ready:
        console.print(f"[red]nothing to export[/] from {escape(str(store))}", highlight=False)
        return 1
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeftError(f"cannot create output folder {out_dir}: {error.strerror or error}") from None
    for job_id in ready:
        info = infos[job_id]
        job_dpi = int(dpi or info.get("dpi") or DEFAULT_DPI)
        for path in export_job(store, job_id, out_dir, fmt=fmt, dpi=dpi, preview=preview):
            console.print(f"[green]wrote[/] {escape(str(path))}", highlight=False)
        width, height = int(info.get("width") or 0), int(info.get("height") or 0)
        if width and height:
            console.print(f"      {width} x {height} px at {job_dpi} dpi = {_physical(width, height, job_dpi)}")
    return code

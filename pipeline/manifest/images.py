"""Decoding untrusted image files into RGB uint8 arrays, or a clear :class:`ImageError`.

Designs and styles come from a studio's file server, spreadsheets and scanners: files go
missing, get truncated, are renamed text files, carry EXIF rotations, are CMYK, 16-bit,
palette or transparent. Everything that reads an input image goes through this module so
each of those cases is handled once, the same way, and a bad file fails only its own job.

* :func:`image_size` reads only the header (validation must not decode big images).
* :func:`load_rgb` decodes to ``(H, W, 3) uint8`` in display orientation.

Conversions: EXIF orientation is applied; transparency is composited on white
(:data:`BACKGROUND`, paper colour); 16-bit greyscale is scaled (``round(v * 255 / 65535)``),
never clipped; 16-bit RGB is reduced by Pillow to its high byte; CMYK is converted with
Pillow's plain formula (no ICC colour management); palette and greyscale are expanded.
"""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from pipeline.errors import ImageError

#: Default input limit in pixels (Pillow's own decompression-bomb threshold, about 179 MP).
DEFAULT_MAX_INPUT_PIXELS = 178_956_970

#: Colour that transparent pixels are composited onto: white, the colour of unprinted fabric.
BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 degrees
_PILLOW_LIMIT_LOCK = threading.Lock()


def _error(path: Path, reason: str, job: str | None, field: str | None = None) -> ImageError:
    """An :class:`ImageError` whose message also names the job and its field, when there are ones."""
    context = ", ".join(part for part in (job and f"job '{job}'", field and f"field '{field}'") if part)
    error = ImageError(path, f"{reason} ({context})" if context else reason)
    error.job = job  # type: ignore[attr-defined]
    return error


def _describe_unidentified(path: Path) -> str:
    """Why Pillow could not identify a file, with a hint for the usual culprits."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(b"version https://git-lfs"):
        return "not an image but a Git LFS pointer file (run `git lfs pull`)"
    if head.isascii() and b"\0" not in head:
        return "not an image: the file contains text"
    return "not a recognised image file (unknown format or corrupt header)"


def _allow_in_pillow(max_pixels: int) -> None:
    """Make sure Pillow's own guard does not pre-empt ours with a vaguer message.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that. weft applies
    its own limit (per manifest) right after the header is read, so Pillow's global is raised
    to that limit when it is lower, never switched off: files far above it are still refused
    by Pillow before any of our code runs.
    """
    with _PILLOW_LIMIT_LOCK:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and max_pixels > current:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _open(path: Path, max_pixels: int, job: str | None, field: str | None = None) -> Image.Image:
    """Open lazily (header only) and refuse files whose declared size is above ``max_pixels``."""
    if not path.exists():
        raise _error(path, "file not found", job, field)
    if not path.is_file():
        raise _error(path, "not a file (a directory?)", job, field)
    try:
        if path.stat().st_size == 0:
            raise _error(path, "file is empty (0 bytes)", job, field)
        _allow_in_pillow(max_pixels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise _error(path, _describe_unidentified(path), job, field) from None
    except Image.DecompressionBombError:  # only above our limit: see _allow_in_pillow
        raise _error(path, _too_big(_declared_size(path), max_pixels), job, field) from None
    except OSError as error:
        raise _error(path, f"cannot read: {error.strerror or error}", job, field) from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise _error(path, f"declared size {width}x{height} is empty", job, field)
    if width * height > max_pixels:
        image.close()
        raise _error(path, _too_big((width, height), max_pixels), job, field)
    return image


def _declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a file Pillow refused as a bomb; ``None`` if unreadable.

    Pillow refuses such a file inside ``Image.open``, after its format plugin has parsed the
    header (and before anything is decoded); the plugin alone reads the size without the check.
    """
    Image.init()
    with path.open("rb") as handle:
        prefix = handle.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            verdict = accept(prefix) if accept else True
            if not verdict or isinstance(verdict, str):  # a string: the format, but a variant it cannot read
                continue
            handle.seek(0)
            try:
                with factory(handle, str(path)) as image:
                    return image.size
            except Exception:  # noqa: BLE001 - untrusted header: the next format may read it
                continue
    return None


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 100_000 else f"{pixels} pixels"


def _too_big(size: tuple[int, int] | None, max_pixels: int) -> str:
    """Why a file is refused for its declared size (W x H, when the header could be read)."""
    if size is None:
        pillows = _amount(2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        declared = f"the declared size (unreadable, but above Pillow's own limit of {pillows})"
    else:
        declared = f"declared size {size[0]}x{size[1]} px = {_amount(size[0] * size[1])}"
    return (
        f"{declared} is above the input limit of {_amount(max_pixels)} (max_input_pixels = {max_pixels} px); "
        "refused before decoding (a decompression bomb, or a very large scan). If you trust the file, raise "
        "max_input_pixels in the manifest's [limits] table"
    )


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1..8) from the header alone; 1 when absent or unreadable.

    PNG keeps EXIF in a chunk that may follow the pixel data; Pillow would decode the whole
    image to find it, so for PNG only a chunk already seen in the header counts.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block means "no rotation", as viewers treat it
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size(
    path: Path | str, *, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS, job: str | None = None
) -> tuple[int, int]:
    """(width, height) in display orientation, read from the header without decoding pixels.

    Raises :class:`ImageError` for missing, empty, unidentifiable or over-limit files.
    """
    path = Path(path)
    image = _open(path, max_pixels, job)
    with image:
        width, height = image.size
        if _orientation(image) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return width, height


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) greyscale scaled into 0..255 with rounding, not clipped."""
    values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any decoded mode to 8-bit RGB; transparency composited on :data:`BACKGROUND`."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if image.mode == "F":
        raise ValueError("32-bit floating-point images are not supported; save it as 8- or 16-bit")
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def _draft_for(image: Image.Image, max_side: int) -> None:
    """Ask JPEG to decode at a reduced scale (no-op for other formats), never below ``max_side``."""
    scale = max_side / max(image.size)
    if scale < 1:
        image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def load_rgb(
    path: Path | str,
    *,
    max_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
    job: str | None = None,
    field: str | None = None,
    max_side: int | None = None,
) -> np.ndarray:
    """Decode an image file to a ``(H, W, 3) uint8`` array in display orientation.

    ``max_pixels`` is checked against the declared size before any pixel is allocated.
    ``max_side`` (optional) returns a copy whose long side is at most that many pixels,
    decoding JPEGs at reduced scale (used by validation to look at big designs cheaply).
    Raises :class:`ImageError` naming the file (and ``job`` and its ``field``, the manifest
    field the file came from) for anything unusable.
    """
    path = Path(path)
    image = _open(path, max_pixels, job, field)
    with image:
        try:
            if max_side is not None:
                _draft_for(image, max_side)
            image.load()
            oriented = ImageOps.exif_transpose(image) if _orientation(image) != 1 else image
        except MemoryError:
            raise _error(path, "not enough memory to decode it", job, field) from None
        except Exception as error:  # untrusted input: any decoder failure fails this file only
            reason = str(error) or type(error).__name__
            raise _error(path, f"cannot decode (truncated or corrupt file?): {reason}", job, field) from None
        try:
            rgb = _to_rgb(oriented)
        except ValueError as error:
            raise _error(path, f"unsupported image mode {oriented.mode}: {error}", job, field) from None
    if max_side is not None:
        rgb = _shrink(rgb, max_side)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))

"""Untrusted image files: each case either decodes to the right pixels or fails with file, job and reason."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageError, WeftError
from pipeline.manifest.images import BACKGROUND, DEFAULT_MAX_INPUT_PIXELS, image_size, load_rgb



def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, pixels: np.ndarray, *, bit_depth: int, colour_type: int) -> Path:
    """A PNG written by hand, for what Pillow cannot write (16-bit RGB) or must not (bombs)."""
    height, width = pixels.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + pixels[y].astype(dtype).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def write_bomb(path: Path, width: int, height: int) -> Path:
    """A tiny PNG that declares a huge size: decoding it would allocate width * height * 3 bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    payload = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + payload)
    return path


def assert_fails(path: Path, *words: str, job: str | None = "rose-1", **kwargs: object) -> ImageError:
    """load_rgb fails with an ImageError (a WeftError) naming the file, the job and the reason."""
    with pytest.raises(ImageError) as info:
        load_rgb(path, job=job, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, WeftError)
    assert str(path) in message
    if job:
        assert f"job '{job}'" in message
    for word in words:
        assert word in message
    return info.value


# --- images that work ----------------------------------------------------------------------


def test_rgb_png_round_trips_exactly(make_image):
    pixels = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = load_rgb(make_image("a.png", pixels=pixels))
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, pixels)
    assert image_size(make_image("b.png", pixels=pixels)) == (23, 17)


def test_one_pixel_image(make_image):
    out = load_rgb(make_image("dot.png", (1, 1), color=(10, 20, 30)))
    np.testing.assert_array_equal(out, [[[10, 20, 30]]])


def test_extreme_aspect_ratio(make_image):
    pixels = np.zeros((1, 3000, 3), np.uint8)
    pixels[0, ::2] = 255
    out = load_rgb(make_image("strip.png", pixels=pixels))
    assert out.shape == (1, 3000, 3)
    np.testing.assert_array_equal(out, pixels)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(make_image):
    values = np.array([[0, 257 * 100, 1000, 65535]], dtype=np.uint16)
    path = make_image("g16.png", pixels=values)
    assert Image.open(path).mode.startswith("I")
    out = load_rgb(path)
    # clipping would turn 1000 and 25700 into 255
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 4, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_sixteen_bit_rgb(tmp_path):
    values = np.array([[[65535, 0, 32896], [1000, 257 * 100, 65535]]], dtype=np.uint16)
    out = load_rgb(write_png(tmp_path / "c16.png", values, bit_depth=16, colour_type=2))
    expected = np.round(values / 257)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_greyscale_is_replicated(make_image):
    grey = np.array([[0, 128, 255]], dtype=np.uint8)
    out = load_rgb(make_image("g.png", pixels=grey))
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [128, 128, 128], [255, 255, 255]])


def test_palette_image(make_image):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1])
    path = make_image("p.png", pixels=np.zeros((1, 1), np.uint8))
    image.save(path)
    np.testing.assert_array_equal(load_rgb(path)[0], [[255, 0, 0], [0, 0, 255]])


def test_cmyk_jpeg(make_image):
    path = make_image("c.jpg", (16, 16), color=(255, 0, 0, 0), mode="CMYK", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_rgb(path)
    assert np.abs(out.astype(int) - [0, 255, 255]).max() <= 3  # pure cyan


def test_transparency_is_composited_on_white(make_image):
    pixels = np.zeros((1, 3, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (0, 0, 0, 0)  # transparent
    pixels[0, 2] = (0, 0, 0, 128)  # half-transparent black
    out = load_rgb(make_image("a.png", pixels=pixels))
    assert BACKGROUND == (255, 255, 255)
    np.testing.assert_array_equal(out[0, :2], [[255, 0, 0], [255, 255, 255]])
    assert np.abs(out[0, 2].astype(int) - 127).max() <= 1


def test_grey_with_alpha_is_composited(make_image):
    pixels = np.array([[[0, 0], [0, 255]]], dtype=np.uint8)  # LA: transparent black, opaque black
    out = load_rgb(make_image("la.png", pixels=pixels))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 0, 0]])


def test_palette_with_transparent_index(make_image):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 128, 0, 9, 9, 9] + [0] * 762)
    image.putdata([0, 1])
    path = make_image("pt.png", pixels=np.zeros((1, 1), np.uint8))
    image.save(path, transparency=1)
    np.testing.assert_array_equal(load_rgb(path)[0], [[0, 128, 0], [255, 255, 255]])


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_exif_orientation_is_respected(make_image, fmt):
    # Stored 40x20: left half red, right half blue. Orientation 6 = rotate 90 degrees clockwise
    # for display, so the stored left edge ends up on top.
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = make_image(f"photo.{fmt}", pixels=pixels, exif=exif.tobytes(), **({"quality": 95} if fmt == "jpg" else {}))
    assert image_size(path) == (20, 40)
    out = load_rgb(path).astype(int)
    assert out.shape == (40, 20, 3)
    assert np.abs(out[5, 10] - [255, 0, 0]).max() < 10
    assert np.abs(out[35, 10] - [0, 0, 255]).max() < 10


def test_max_side_returns_a_reduced_copy(make_image):
    path = make_image("big.jpg", (1200, 600), quality=90)
    out = load_rgb(path, max_side=300)
    assert out.shape == (150, 300, 3)
    assert load_rgb(make_image("small.png", (40, 20)), max_side=300).shape == (20, 40, 3)


# --- files that fail -----------------------------------------------------------------------


def test_missing_file(tmp_path):
    error = assert_fails(tmp_path / "nope.png", "file not found")
    assert error.job == "rose-1"
    with pytest.raises(ImageError, match="file not found"):
        image_size(tmp_path / "nope.png")


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert_fails(tmp_path / "dir.png", "not a file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert_fails(tmp_path / "empty.jpg", "empty")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    assert_fails(tmp_path / "notes.png", "not an image", "text")
    with pytest.raises(ImageError, match="not an image"):
        image_size(tmp_path / "notes.png")


def test_git_lfs_pointer(tmp_path):
    (tmp_path / "lfs.jpg").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    assert_fails(tmp_path / "lfs.jpg", "Git LFS pointer")


def test_binary_garbage(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(bytes(range(256)) * 4)
    assert_fails(tmp_path / "noise.jpg", "not a recognised image")


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_truncated_file(make_image, fmt):
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = make_image(f"cut.{fmt}", pixels=pixels)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert image_size(path) == (64, 64)  # the header is intact: only decoding finds out
    assert_fails(path, "truncated")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # Just above our limit (Pillow itself would still open it), and far above (Pillow refuses too).
    for side, words in ((13_400, ("13400x13400 px", "179.6 MP")), (100_000, ("100000x100000 px = 10000.0 MP",))):
        path = write_bomb(tmp_path / f"bomb{side}.png", side, side)  # 13400^2 * 3 bytes = 540 MB
        error = assert_fails(path, *words, "above the input limit of 179.0 MP", "max_input_pixels")
        assert "decompression bomb" in error.reason and "DOS attack" not in error.reason  # not Pillow's sentence
        with pytest.raises(ImageError, match="max_input_pixels"):
            image_size(path)


def test_pixel_limit_is_configurable(make_image, tmp_path):
    path = make_image("a.png", (100, 100))
    assert_fails(path, "10000 pixels", "above the input limit of 5000 pixels", max_pixels=5_000)
    assert load_rgb(path, max_pixels=10_000).shape == (100, 100, 3)
    # Raising the limit above Pillow's own guard works too (the header is read, nothing decoded).
    bomb = write_bomb(tmp_path / "huge.png", 20_000, 20_000)
    assert 20_000 * 20_000 > 2 * DEFAULT_MAX_INPUT_PIXELS
    assert image_size(bomb, max_pixels=500_000_000) == (20_000, 20_000)
    with pytest.raises(ImageError, match="max_input_pixels"):
        image_size(bomb)


def test_message_without_job(tmp_path):
    error = assert_fails(tmp_path / "gone.png", "file not found", job=None)
    assert "(job" not in str(error)


def test_float_image_is_refused(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)
    assert_fails(path, "unsupported image mode F", "8- or 16-bit")


# Every EXIF orientation, on distinct pixels (lossless PNG): what a viewer shows is what weft loads.
_DISPLAYED = {
    1: lambda a: a,
    2: np.fliplr,  # mirrored left-right
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.transpose(1, 0, 2),  # transposed (mirrored along the main diagonal)
    6: lambda a: np.rot90(a, -1),  # rotated 90 degrees clockwise for display
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # transverse
    8: lambda a: np.rot90(a, 1),  # rotated 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(_DISPLAYED))
def test_every_exif_orientation_gives_the_displayed_pixels(make_image, orientation):
    y, x = np.mgrid[0:5, 0:7]
    stored = np.stack([x * 30, y * 50, (x + 7 * y) * 6], axis=-1).astype(np.uint8)  # every pixel distinct
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = make_image(f"o{orientation}.png", pixels=stored, exif=exif.tobytes())
    expected = _DISPLAYED[orientation](stored)
    np.testing.assert_array_equal(load_rgb(path), expected)
    assert image_size(path) == (expected.shape[1], expected.shape[0])


# --- every image error names its file, and the job and field it came from ------------------


def _cut_in_half(make_image, name: str) -> Path:
    """A real image file (Pillow-written) with the second half of its bytes gone."""
    pixels = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = make_image(name, pixels=pixels)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_file_names_file_job_and_field(make_image, fmt):
    path = _cut_in_half(make_image, f"cut.{fmt}")
    error = assert_fails(path, "cannot decode (truncated or corrupt file?)", field="design")
    assert str(error).startswith(f"{path}: ") and str(error).endswith("(job 'rose-1', field 'design')")


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_weft_validate_names_the_truncated_file(ws, make_image, fmt):
    from helpers_manifest import job, manifest
    from typer.testing import CliRunner

    from pipeline.cli import app

    _cut_in_half(make_image, f"designs/cut.{fmt}")
    _cut_in_half(make_image, f"styles/cut.{fmt}")
    path = manifest(ws, job(design=f"designs/cut.{fmt}") + job(job_id="k", style='"cut"'))
    path.write_text(path.read_text() + f'[[styles]]\nid = "cut"\npath = "styles/cut.{fmt}"\nlicense = "CC0"\n'
                    'attribution = "test"\n')  # fmt: skip
    result = CliRunner().invoke(app, ["validate", str(path)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    decode = "cannot decode (truncated or corrupt file?)"
    assert f"{path}: style 'cut': field 'path': 'styles/cut.{fmt}': {decode}" in output
    assert f"{path}: job 'j': field 'design': 'designs/cut.{fmt}': {decode}" in output
    assert "2 error(s)" in output


def test_a_bomb_that_pillow_refuses_says_its_declared_size(tmp_path):
    path = write_bomb(tmp_path / "bomb.png", 60_000, 60_000)
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own guard is what refuses it first
        Image.open(path)
    declared = "declared size 60000x60000 px = 3600.0 MP is above the input limit of 179.0 MP (max_input_pixels = "
    for read in (load_rgb, image_size):
        with pytest.raises(ImageError) as info:
            read(path, job="rose-1")
        assert str(info.value).startswith(f"{path}: {declared}{DEFAULT_MAX_INPUT_PIXELS} px); refused before decoding")
        assert "DOS attack" not in str(info.value) and "(job 'rose-1')" in str(info.value)


def test_weft_validate_says_a_bombs_declared_size(ws):
    from helpers_manifest import job, manifest
    from typer.testing import CliRunner

    from pipeline.cli import app

    write_bomb(ws / "designs" / "bomb.png", 60_000, 60_000)  # refused by Pillow's guard
    write_bomb(ws / "designs" / "big.png", 13_400, 13_400)  # refused by weft's own check
    path = manifest(ws, job(design="designs/bomb.png") + job(job_id="k", design="designs/big.png"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    expected = (("j", "bomb", "60000x60000 px = 3600.0 MP"), ("k", "big", "13400x13400 px = 179.6 MP"))
    for job_id, name, declared in expected:
        assert (f"{path}: job '{job_id}': field 'design': 'designs/{name}.png': declared size {declared} is above "
                "the input limit of 179.0 MP (max_input_pixels = 178956970 px)") in output  # fmt: skip


def test_a_bomb_whose_size_cannot_be_read_again_is_still_refused_with_the_limit(tmp_path, monkeypatch):
    path = write_bomb(tmp_path / "bomb.png", 60_000, 60_000)
    import pipeline.manifest.images as images

    monkeypatch.setattr(images, "_declared_size", lambda _: None)  # as if no plugin read the header again
    error = assert_fails(path, "the declared size (unreadable, but above Pillow's own limit of",
                         "is above the input limit of 179.0 MP (max_input_pixels = 178956970 px)")  # fmt: skip
    assert "DOS attack" not in str(error)

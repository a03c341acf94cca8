#!/usr/bin/env python
"""Render a weft HTML report in headless Chromium: screenshot it and count broken images.

    python scripts/screenshot_report.py                 # demo store -> docs/report.png
    python scripts/screenshot_report.py STORE --out shot.png

Without STORE a small synthetic catalogue (every job state) is built in a temporary folder
from ``tests/store_fixtures.py``. Needs Debian's ``chromium`` (``apt-get install chromium``).
Exits 1 if any image of the page fails to load.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium_binary() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("no chromium binary on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="weft-chromium-") as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


def broken_images(html_file: Path, timeout: float = 60) -> int:
    """How many <img> of the page did not load (the report's own load handler counts them)."""
    result = _run(["--virtual-time-budget=5000", "--dump-dom", html_file.resolve().as_uri()], timeout)
    match = re.search(r'data-broken-images="(\d+)"', result.stdout)
    if not match:
        raise RuntimeError(f"chromium did not render {html_file} (exit {result.returncode}): {result.stderr[-500:]}")
    return int(match[1])


def screenshot(html_file: Path, png: Path, size: tuple[int, int] = (1400, 1800), timeout: float = 60) -> Path:
    """A PNG of the page's first ``size`` pixels."""
    png.parent.mkdir(parents=True, exist_ok=True)
    result = _run(
        [f"--screenshot={png.resolve()}", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=5000",
         html_file.resolve().as_uri()],
        timeout,
    )  # fmt: skip
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-500:]}")
    return png


def compact_png(png: Path) -> Path:
    """Re-save with a 256-colour dithered palette: a third of the bytes, for a file kept in git."""
    from PIL import Image

    with Image.open(png) as picture:
        palette = picture.convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    palette.save(png, optimize=True)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", type=Path, help="weft store (default: a synthetic demo store)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png", help="screenshot PNG")
    parser.add_argument("--html", type=Path, help="also keep the report HTML here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from rich.console import Console

    from pipeline.deliver.report import report_command

    with tempfile.TemporaryDirectory(prefix="weft-report-") as work:
        store = args.store
        if store is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from store_fixtures import demo_jobs, make_finished_store

            store = make_finished_store(Path(work), demo_jobs(), name="demo-catalogue.zarr", pyramid=True)
        html_file = args.html or Path(work) / "report.html"
        report_command(store, html_file, Console(stderr=True))
        broken = broken_images(html_file)
        shot = compact_png(screenshot(html_file, args.out))
    print(f"{shot}: screenshot written; broken images: {broken}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

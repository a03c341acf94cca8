"""Input analysis: is a design already a seamless repeat, and how big is one repeat in a scan?

Most catalogue designs are scans or photos, not exact repeat tiles: some hold a single repeat
that does not quite join, some hold several repeats. :func:`seam_report` scores the join under
each repeat type (see :mod:`pipeline.repeat.seams`); :func:`find_period` finds the repeat period by
normalised autocorrelation, and :func:`crop_to_repeat` cuts one repeat out (the
``crop_to_repeat`` setting). ``weft inspect`` prints both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import GeometryError
from pipeline.repeat.lattice import Repeat, check_size
from pipeline.repeat.seams import SEAMLESS, VISIBLE_ABOVE, Line, mean_step, repeat_seam_ratio

#: Correlation (Pearson, 1 = exact) a lag needs to count as a repeat period.
MIN_PERIOD_CORRELATION = 0.3

_LUMA = np.array([0.299, 0.587, 0.114])


def seam_report(img: np.ndarray, repeats: tuple[Repeat, ...] = tuple(Repeat)) -> dict[Repeat, float]:
    """Seam ratio of ``img`` as a repeat tile under each repeat type; nan where its size cannot carry one."""
    height, width = img.shape[:2]
    report = {}
    for repeat in repeats:
        try:
            check_size(repeat, width, height)
        except GeometryError:
            report[repeat] = float("nan")
            continue
        report[repeat] = repeat_seam_ratio(img, repeat)
    return report


@dataclass(frozen=True)
class Period:
    """A detected repeat period of an image; a period equal to the image size means none was found."""

    px: float  # horizontal period in pixels (sub-pixel)
    py: float
    score_x: float  # correlation of the image with itself shifted by the period (1 = exact repeat)
    score_y: float
    width: int  # the analysed image's size
    height: int

    @property
    def counts(self) -> tuple[float, float]:
        """How many periods the image holds across and down."""
        return self.width / self.px, self.height / self.py

    @property
    def several(self) -> bool:
        """True when the image holds more than one repeat along either axis."""
        return max(self.counts) > 1.05

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of one repeat in whole pixels."""
        return min(self.width, round(self.px)), min(self.height, round(self.py))


def _detrended_gray(img: np.ndarray) -> np.ndarray:
    """Luma minus its best-fit plane: uneven scan lighting would otherwise favour small lags."""
    array = np.asarray(img, dtype=np.float64)
    if array.ndim == 2:
        gray = array
    elif array.shape[-1] >= 3:
        gray = array[..., :3] @ _LUMA
    else:
        gray = array.mean(axis=-1)
    height, width = gray.shape
    ys = (np.arange(height) - (height - 1) / 2)[:, None]
    xs = (np.arange(width) - (width - 1) / 2)[None, :]
    # the centred coordinates are orthogonal to the constant and to each other: the fit is three dot products
    slope_y = (gray * ys).sum() / max((ys**2).sum() * width, 1e-12)
    slope_x = (gray * xs).sum() / max((xs**2).sum() * height, 1e-12)
    return gray - gray.mean() - slope_y * ys - slope_x * xs


def lag_correlation(gray: np.ndarray) -> np.ndarray:
    """r[l]: Pearson correlation of the image with itself shifted by l pixels along axis 1, l = 0..W-1.

    All lags at once from one FFT per row (zero-padded, so lags do not wrap) and cumulative
    column sums for the means and variances of the overlapping parts.
    """
    height, width = gray.shape
    n = 1 << (2 * width - 1).bit_length()
    power = np.zeros(n // 2 + 1)
    for start in range(0, height, 256):  # bounded memory for big scans
        spectrum = np.fft.rfft(gray[start : start + 256], n=n, axis=1)
        power += (spectrum.real**2 + spectrum.imag**2).sum(axis=0)
    products = np.fft.irfft(power, n=n)[:width]
    cum = np.concatenate(([0.0], np.cumsum(gray.sum(axis=0))))
    cum2 = np.concatenate(([0.0], np.cumsum((gray * gray).sum(axis=0))))
    lags = np.arange(width)
    count = height * (width - lags)
    mean_a, mean_b = cum[width - lags] / count, (cum[width] - cum[lags]) / count
    var_a = cum2[width - lags] / count - mean_a**2
    var_b = (cum2[width] - cum2[lags]) / count - mean_b**2
    covariance = products / count - mean_a * mean_b
    return covariance / np.sqrt(np.maximum(var_a * var_b, 1e-12))


def _axis_period(gray: np.ndarray, min_correlation: float, max_fraction: float) -> tuple[float, float]:
    """(period, score) along axis 1: the strongest non-trivial correlation peak, or (W, 0) if none."""
    width = gray.shape[1]
    r = lag_correlation(gray)
    peaks = np.flatnonzero((r[1:-1] > r[:-2]) & (r[1:-1] >= r[2:])) + 1
    valleys = np.flatnonzero((r[1:-1] < r[:-2]) & (r[1:-1] <= r[2:])) + 1
    lobe = int(valleys[0]) if valleys.size else width  # the central peak: every small shift correlates
    peaks = peaks[(peaks > max(lobe, 2)) & (peaks <= max_fraction * width)]
    if peaks.size == 0 or r[peaks].max() < min_correlation:
        return float(width), 0.0
    best = r[peaks].max()
    # multiples of the period correlate about as well; take the first peak that is nearly the best
    lag = int(peaks[np.argmax(r[peaks] >= best - 0.05)])
    below, at, above = r[lag - 1], r[lag], r[min(lag + 1, width - 1)]
    curvature = below - 2 * at + above
    offset = 0.5 * (below - above) / curvature if curvature < 0 else 0.0
    return lag + float(np.clip(offset, -0.5, 0.5)), float(at)


def find_period(
    img: np.ndarray, *, min_correlation: float = MIN_PERIOD_CORRELATION, max_fraction: float = 2 / 3
) -> Period:
    """The repeat period along x and y by autocorrelation of the detrended luma.

    A period is looked for between the central correlation lobe and ``max_fraction`` of the
    image (so at least 1.5 repeats must be visible); an axis without a peak of correlation
    ``min_correlation`` gets the whole image as its period. Axes are independent, so a
    half-drop scan reports its block period (2 W for x when only the dropped copy repeats).
    """
    gray = _detrended_gray(img)
    px, sx = _axis_period(gray, min_correlation, max_fraction)
    py, sy = _axis_period(np.ascontiguousarray(gray.T), min_correlation, max_fraction)
    return Period(px, py, sx, sy, gray.shape[1], gray.shape[0])


def detect_period(img: np.ndarray) -> tuple[float, float]:
    """(px, py): the detected repeat period in pixels (the image size along an axis that does not repeat)."""
    period = find_period(img)
    return period.px, period.py


def crop_to_repeat(img: np.ndarray, period: Period | None = None) -> np.ndarray:
    """One detected repeat, cut from the top-left corner; the image itself when it holds just one."""
    period = period or find_period(img)
    width, height = period.size
    return img[:height, :width]


def period_seam_ratios(img: np.ndarray, repeat: Repeat | str, period: Period) -> dict[str, float]:
    """Repeat boundary steps divided by the step across the same line one period inside the image.

    The local seam ratio cannot tell a seam from a design edge that happens to lie on the
    boundary (the tartan's setts end on a stripe edge: 3.2 locally, yet exactly periodic).
    When the image holds several periods along an axis, the line one period in plays the same
    role inside the design, so an exact repeat scores 1.0 there. Only an axis whose length is a
    whole number (>= 2) of periods, within 2 px or 1 %, has such a line (elsewhere the boundary
    is not where a period ends); the others get nan.
    """
    lines: dict[str, tuple[Line, Line, bool]] = {
        "vertical": (("x", 0), ("x", round(period.px)), _whole_periods(period.width, period.px)),
        "horizontal": (("y", 0), ("y", round(period.py)), _whole_periods(period.height, period.py)),
    }
    result = {}
    for name, (boundary, reference, usable) in lines.items():
        if not usable:
            result[name] = float("nan")
            continue
        step, ref = mean_step(img, boundary, repeat=repeat), mean_step(img, reference, repeat=repeat)
        result[name] = (1.0 if step == 0.0 else float("inf")) if ref == 0.0 else step / ref
    return result


def design_seam_ratio(img: np.ndarray, repeat: Repeat | str, period: Period | None = None) -> float:
    """The worse repeat boundary's seam ratio, each the better of local and own-period comparison.

    What a verdict on an input design should use: a boundary is invisible if it looks like its
    neighbouring lines or exactly like a line the design already has one period inside (an
    exact multi-repeat scan such as the tartan scores 1.0 here, 3.2 on the local ratio alone).
    """
    from pipeline.repeat.seams import repeat_seam_ratios

    period = period or find_period(img)
    local = repeat_seam_ratios(img, repeat)
    ref = period_seam_ratios(img, repeat, period)
    return max(
        local[axis] if math.isnan(ref[axis]) else min(local[axis], ref[axis]) for axis in ("vertical", "horizontal")
    )


def _whole_periods(length: int, period: float) -> bool:
    """Does an axis of ``length`` px hold 2 or more whole periods (so its end is a period boundary)?"""
    count = round(length / period)
    return count >= 2 and abs(length - count * period) <= max(2.0, 0.01 * length)


def _load_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of an image file; the shared decoder when present (limits, EXIF, modes)."""
    try:
        from pipeline.manifest.images import load_rgb
    except ImportError:  # pragma: no cover - images.py is part of the package
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    return load_rgb(path)


def _verdict(ratio: float) -> str:
    if math.isnan(ratio):
        return "[dim]n/a (size)[/]"
    if ratio <= SEAMLESS:
        return "[green]seamless[/]"
    if ratio <= VISIBLE_ABOVE:
        return "[yellow]faint seam[/]"
    return "[red]visible seam[/]"


def _format(ratio: float) -> str:
    return "-" if math.isnan(ratio) else f"{ratio:.2f}"


def inspect_command(design: Path, repeat: str | None, console: Any, extract: Path | None = None) -> None:
    """``weft inspect``: seam ratios under each repeat type, and the repeat period found in the image.

    Columns: the pooled local seam ratio, the right/left and bottom/top boundaries alone, the
    comparison with the line one period inside (when the image holds whole periods), and a
    verdict from :func:`design_seam_ratio`.
    """
    from rich.table import Table

    from pipeline.repeat.seams import repeat_seam_ratios

    img = _load_image(Path(design))
    height, width = img.shape[:2]
    repeats = (Repeat(repeat),) if repeat else tuple(Repeat)
    period = find_period(img)
    table = Table(title=f"{Path(design).name}  ({width} x {height} px)")
    for name in ("repeat", "seam ratio", "right|left", "bottom|top", "vs period", "verdict"):
        table.add_column(name, justify="left" if name in ("repeat", "verdict") else "right", no_wrap=True)
    for kind in repeats:
        if math.isnan(seam_report(img, (kind,))[kind]):
            table.add_row(kind.value, "-", "-", "-", "-", _verdict(float("nan")))
            continue
        local = repeat_seam_ratios(img, kind)
        ref = period_seam_ratios(img, kind, period)
        table.add_row(
            kind.value,
            _format(local["overall"]),
            _format(local["vertical"]),
            _format(local["horizontal"]),
            "/".join(_format(ref[axis]) for axis in ("vertical", "horizontal")),
            _verdict(design_seam_ratio(img, kind, period)),
        )
    console.print(table)
    across, down = period.counts
    console.print(
        f"period: {period.px:.1f} x {period.py:.1f} px (correlation {period.score_x:.2f} / {period.score_y:.2f}); "
        f"the image holds {across:.2f} x {down:.2f} repeats",
        highlight=False,
    )
    if period.several:
        console.print(
            "several repeats: crop_to_repeat cuts one exact tile (--extract TILE.png shows it)", highlight=False
        )
    else:
        console.print("one repeat (no shorter period found)", highlight=False)
    if extract is not None:
        from pipeline.repeat.extract_report import write_extraction

        write_extraction(img, Repeat(repeat) if repeat else None, Path(extract), console)

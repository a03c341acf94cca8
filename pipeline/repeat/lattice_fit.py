"""The repeat lattice of a photographed cloth, in 2-D: two basis vectors from the autocorrelation.

A printed cloth is periodic under a lattice of translations. Looking for a period along x and
along y separately (:func:`pipeline.repeat.analysis.find_period`) misses drops (a half-drop's
columns repeat only every two tiles) and is thrown off by rotation. Here the normalised 2-D
autocorrelation of the high-passed luma is computed once; its peaks are lattice vectors. The
pair of peaks whose whole lattice correlates best (every integer combination, not just the two)
is the basis; it is refined by least squares over all the lattice points in range, which gives
sub-pixel periods and a rotation measured over several repeats.

Rotated back by the measured angle, the lattice is described in *tile form*: the smallest tile
W x H of each repeat type whose lattice is a sublattice of the cloth's (block needs a
rectangular lattice or a super-cell; a half-drop of W x H is the same lattice as a brick of
2W x H/2). The drop fraction (y offset of the next column, as a fraction of H) is reported
as measured, so drops other than 0 and 1/2 are visible even where no such type exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import ndimage

from pipeline.repeat.lattice import Repeat

Vector = tuple[float, float]  # (x, y) in pixels, y down

#: Correlation a lattice must reach at its points to count as a repeat at all.
NO_REPEAT_BELOW = 0.25
#: How far (degrees) from the axes a lattice vector may lie and still be read as vertical/horizontal.
_AXIS_TOLERANCE_DEG = 12.0
#: Pairs scoring at least this fraction of the best compete on cell size (the smallest wins).
_NEAR_BEST = 0.8
#: Integer combinations searched when reducing and describing a lattice.
_REACH = 6
#: Relative tolerance for "this vector is a lattice vector" (fraction of the shorter basis vector).
_MEMBER_TOLERANCE = 0.06
#: Largest denominator a drop (or brick offset) is read as: 1/2, 1/3, 1/4, 2/5 ... (printers use halves and thirds).
MAX_DROP_DENOMINATOR = 5


@dataclass(frozen=True)
class Lattice:
    """Two basis vectors (pixels, photo coordinates) and how well the cloth correlates on the lattice."""

    a: Vector
    b: Vector
    score: float  # mean normalised correlation at the lattice points in range (1 = exact repeat)

    @property
    def area(self) -> float:
        """Area of one primitive cell in pixels."""
        return abs(self.a[0] * self.b[1] - self.a[1] * self.b[0])

    def scaled(self, factor: float) -> Lattice:
        """The same lattice in an image ``factor`` times larger."""
        return Lattice(_mul(self.a, factor), _mul(self.b, factor), self.score)

    def points(self, reach: int = _REACH) -> list[tuple[int, int, Vector]]:
        """(m, n, m*a + n*b) for |m|, |n| <= reach, the origin left out."""
        return [
            (m, n, (m * self.a[0] + n * self.b[0], m * self.a[1] + n * self.b[1]))
            for m in range(-reach, reach + 1)
            for n in range(-reach, reach + 1)
            if (m, n) != (0, 0)
        ]


@dataclass(frozen=True)
class TileForm:
    """One repeat type's tile on a lattice: W x H (sub-pixel) after rotating the photo back."""

    repeat: Repeat
    width: float
    height: float

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True)
class LatticeReading:
    """What the lattice says about the cloth: rotation, drop fraction, the tile of each repeat type."""

    lattice: Lattice
    rotation_deg: float  # the cloth's x axis runs at this angle in the photo (clockwise on screen, y down)
    column_width: float  # x spacing of the lattice's columns, in the rotated-back frame
    column_height: float  # the shortest vertical lattice vector: one tile's height in drop form
    drop_fraction: float  # y offset of the next column / column_height, in [0, 1): 0 block, 0.5 half-drop
    forms: tuple[TileForm, ...]  # the smallest tile of each repeat type the lattice allows

    def form(self, repeat: Repeat) -> TileForm | None:
        """The tile of ``repeat`` on this lattice, or ``None`` when none is small enough to be found."""
        return next((form for form in self.forms if form.repeat is repeat), None)

    @property
    def best(self) -> TileForm:
        """The type the cloth is: the smallest tile; ties go to the squarer tile, then block, half-drop, brick, the rest."""
        order = {repeat: index for index, repeat in enumerate(Repeat)}

        def rank(form: TileForm) -> tuple[float, float, int]:
            squareness = max(form.width / form.height, form.height / form.width)
            return (round(form.area / self.lattice.area, 1), round(squareness, 2), order.get(form.repeat, len(order)))

        return min(self.forms, key=rank)


def _mul(v: Vector, factor: float) -> Vector:
    return (v[0] * factor, v[1] * factor)


def _norm(v: Vector) -> float:
    return math.hypot(v[0], v[1])


def high_pass(gray: np.ndarray, sigma: float) -> np.ndarray:
    """``gray`` minus a Gaussian blur of it: slow light falls away, the design's detail stays."""
    gray = np.asarray(gray, dtype=np.float64)
    return gray - ndimage.gaussian_filter(gray, sigma, mode="reflect")


def autocorrelation(signal: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalised autocorrelation r[dy, dx] of ``signal`` over ``mask``, lags centred in the result.

    r is the mean product of the signal with itself shifted by (dx, dy) over the pixels where
    both lie inside the mask, divided by the signal's variance: 1 at lag 0 and at every
    lattice vector of an exactly periodic signal. Lags whose overlap is under a third of the
    region are set to 0 (too few pixels to trust).
    """
    mask = np.ones(signal.shape, dtype=bool) if mask is None else mask.astype(bool)
    values = np.where(mask, signal - signal[mask].mean(), 0.0)
    weights = mask.astype(np.float64)
    shape = (2 * signal.shape[0], 2 * signal.shape[1])
    products = np.fft.irfft2(np.abs(np.fft.rfft2(values, shape)) ** 2, shape)
    overlap = np.fft.irfft2(np.abs(np.fft.rfft2(weights, shape)) ** 2, shape)
    variance = float((values**2).sum() / max(weights.sum(), 1.0))
    trusted = overlap > weights.sum() / 3
    r = np.where(trusted, products / np.maximum(overlap, 1.0) / max(variance, 1e-12), 0.0)
    return np.fft.fftshift(r)


def _value_at(r: np.ndarray, v: Vector) -> float:
    """r at lag ``v`` (bilinear), 0 outside the lags computed."""
    cy, cx = r.shape[0] // 2, r.shape[1] // 2
    y, x = cy + v[1], cx + v[0]
    if not (0 <= y <= r.shape[0] - 2 and 0 <= x <= r.shape[1] - 2):
        return 0.0
    return float(ndimage.map_coordinates(r, [[y], [x]], order=1)[0])


def _peak_near(r: np.ndarray, v: Vector, radius: int = 2) -> Vector | None:
    """The sub-pixel position of the highest r within ``radius`` of lag ``v`` (a parabola per axis)."""
    cy, cx = r.shape[0] // 2, r.shape[1] // 2
    y0, x0 = int(round(cy + v[1])), int(round(cx + v[0]))
    if not (radius + 1 <= y0 < r.shape[0] - radius - 1 and radius + 1 <= x0 < r.shape[1] - radius - 1):
        return None
    window = r[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    y, x = y0 - radius + int(iy), x0 - radius + int(ix)
    return (x + _vertex(r[y, x - 1 : x + 2]) - cx, y + _vertex(r[y - 1 : y + 2, x]) - cy)


def _vertex(three: np.ndarray) -> float:
    """Offset of a parabola's vertex through three samples (0 when they do not bend down)."""
    below, at, above = (float(v) for v in three)
    curvature = below - 2 * at + above
    return float(np.clip(0.5 * (below - above) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0


def _central_lobe(r: np.ndarray) -> float:
    """Radius of the peak at lag 0: where the ring-averaged correlation first falls below 0.2."""
    cy, cx = r.shape[0] // 2, r.shape[1] // 2
    yy, xx = np.indices(r.shape)
    radius = np.hypot(yy - cy, xx - cx).astype(int)
    limit = min(cy, cx)
    rings = np.bincount(radius.ravel(), r.ravel(), minlength=limit + 1)[: limit + 1]
    counts = np.bincount(radius.ravel(), minlength=limit + 1)[: limit + 1]
    profile = rings / np.maximum(counts, 1)
    below = np.flatnonzero(profile < 0.2)
    return float(below[0]) if below.size else float(limit)


def _candidate_peaks(r: np.ndarray, lobe: float, count: int = 14) -> list[Vector]:
    """The ``count`` strongest local maxima of r outside the central lobe, one per ±pair."""
    cy, cx = r.shape[0] // 2, r.shape[1] // 2
    peaks = (r == ndimage.maximum_filter(r, size=5)) & (r > NO_REPEAT_BELOW)
    ys, xs = np.nonzero(peaks)
    dy, dx = ys - cy, xs - cx
    keep = (np.hypot(dy, dx) > max(lobe, 3.0)) & ((dy > 0) | ((dy == 0) & (dx > 0)))
    order = np.argsort(-r[ys[keep], xs[keep]], kind="stable")[:count]
    found = [_peak_near(r, (float(dx[keep][i]), float(dy[keep][i])), radius=1) for i in order]
    return [v for v in found if v is not None]


def _lattice_score(r: np.ndarray, a: Vector, b: Vector) -> tuple[float, int]:
    """(mean r at the lattice points inside the computed lags, how many there were)."""
    values = [_value_at(r, p) for _, _, p in Lattice(a, b, 0.0).points(4) if _inside(r, p)]
    return (float(np.mean(values)), len(values)) if values else (0.0, 0)


def _inside(r: np.ndarray, v: Vector) -> bool:
    """Is lag ``v`` within the trusted lags (r was not zeroed there)?"""
    cy, cx = r.shape[0] // 2, r.shape[1] // 2
    y, x = int(round(cy + v[1])), int(round(cx + v[0]))
    return 0 <= y < r.shape[0] and 0 <= x < r.shape[1] and r[y, x] != 0.0


def _reduce(a: Vector, b: Vector) -> tuple[Vector, Vector]:
    """Lagrange-Gauss reduction: the two shortest vectors that span the same lattice."""
    if _norm(a) > _norm(b):
        a, b = b, a
    while True:
        k = round((a[0] * b[0] + a[1] * b[1]) / max(a[0] ** 2 + a[1] ** 2, 1e-12))
        b = (b[0] - k * a[0], b[1] - k * a[1])
        if _norm(b) >= _norm(a):
            return a, b
        a, b = b, a


def find_lattice(signal: np.ndarray, mask: np.ndarray | None = None) -> Lattice | None:
    """The cloth's lattice from the 2-D autocorrelation of ``signal`` (high-passed luma), or ``None``.

    Candidates are pairs of the strongest peaks; a pair is scored by the mean correlation at
    every lattice point it generates within range, so a pair that misses the true lattice (a
    sub-lattice: some of its points fall between repeats) scores low. Of the pairs within 20 %
    of the best score the one with the smallest cell wins: a super-lattice has fewer points in
    range and can score higher (the demo's Snakeshead: 0.53 for a two-column cell, 0.46 for the
    true one), a sub-lattice scores far lower. The winner is refined by least squares over every lattice point in range.
    """
    r = autocorrelation(signal, mask)
    peaks = _candidate_peaks(r, _central_lobe(r))
    pairs = []
    for i, a in enumerate(peaks):
        for b in peaks[i + 1 :]:
            cross = abs(a[0] * b[1] - a[1] * b[0])
            if cross < 0.25 * _norm(a) * _norm(b):  # nearly collinear: not a basis
                continue
            score, count = _lattice_score(r, a, b)
            if count >= 3:
                pairs.append((score, cross, a, b))
    if not pairs:
        return None
    best = max(score for score, *_ in pairs)
    if best < NO_REPEAT_BELOW:
        return None
    _, _, a, b = min((p for p in pairs if p[0] >= _NEAR_BEST * best), key=lambda p: (round(p[1], 3), -p[0]))
    a, b = _refine(r, *_reduce(a, b))
    score, _ = _lattice_score(r, a, b)
    return Lattice(a, b, score)


def _refine(r: np.ndarray, a: Vector, b: Vector) -> tuple[Vector, Vector]:
    """Least-squares basis through the sub-pixel peaks found near every lattice point in range."""
    rows, targets = [], []
    for m, n, p in Lattice(a, b, 0.0).points():
        if not _inside(r, p):
            continue
        peak = _peak_near(r, p)
        if peak is not None and _value_at(r, peak) > NO_REPEAT_BELOW:
            rows.append((m, n))
            targets.append(peak)
    if len(rows) < 2:
        return a, b
    solution, *_ = np.linalg.lstsq(np.array(rows, dtype=np.float64), np.array(targets), rcond=None)
    if np.linalg.matrix_rank(np.array(rows)) < 2:
        return a, b
    return (float(solution[0, 0]), float(solution[0, 1])), (float(solution[1, 0]), float(solution[1, 1]))


def _axis_vector(lattice: Lattice, vertical: bool) -> Vector | None:
    """The shortest lattice vector within the axis tolerance of the y (or x) axis, pointing +y (+x)."""
    best: Vector | None = None
    for _, _, p in lattice.points():
        along, across = (p[1], p[0]) if vertical else (p[0], p[1])
        if along <= 0 or abs(math.degrees(math.atan2(across, along))) > _AXIS_TOLERANCE_DEG:
            continue
        if best is None or _norm(p) < _norm(best) - 1e-9:
            best = p
    return best


def _rotate(v: Vector, theta: float) -> Vector:
    """``v`` in the frame whose x axis runs at angle ``theta`` (radians) in the photo."""
    c, s = math.cos(theta), math.sin(theta)
    return (v[0] * c + v[1] * s, -v[0] * s + v[1] * c)


def read_lattice(lattice: Lattice) -> LatticeReading | None:
    """Rotation, drop fraction and the tile of each repeat type; ``None`` without a vertical lattice vector
    (or when no lattice vector lies one column across, or no repeat type's tile is in range)."""
    vertical = _axis_vector(lattice, vertical=True)
    horizontal = _axis_vector(lattice, vertical=False)
    if vertical is None:
        return None
    angles = [math.atan2(-vertical[0], vertical[1])]
    weights = [_norm(vertical)]
    if horizontal is not None:
        angles.append(math.atan2(horizontal[1], horizontal[0]))
        weights.append(_norm(horizontal))
    theta = float(np.average(angles, weights=weights))
    points = [_rotate(p, theta) for _, _, p in lattice.points()]
    height = _norm(vertical)
    width = lattice.area / height
    columns = [p for p in points if abs(p[0] - width) < _MEMBER_TOLERANCE * height]
    if not columns:  # the two vectors do not make a lattice with whole columns: not a repeat
        return None
    column = min(columns, key=lambda p: abs(p[1]))
    drop = (column[1] / height) % 1.0
    forms = _tile_forms(points, lattice.area, min(_norm(lattice.a), _norm(lattice.b)))
    if not forms:
        return None
    return LatticeReading(lattice, math.degrees(theta), width, height, drop if drop < 0.995 else 0.0, forms)


def _fraction_near(ratio: float, side: float, tol: float) -> Fraction | None:
    """The drop p/q (0 < p/q < 1, q <= :data:`MAX_DROP_DENOMINATOR`) that ``ratio`` (offset / side) is, within ``tol`` px."""
    offset = ratio % 1.0
    fraction = Fraction(offset).limit_denominator(MAX_DROP_DENOMINATOR)
    if 0 < fraction < 1 and abs(offset - float(fraction)) * side < tol:
        return fraction
    return None


def _tile_forms(points: list[Vector], area: float, shortest: float) -> tuple[TileForm, ...]:
    """The smallest tile of block, of a drop and of a brick whose generators are all lattice vectors (rotated-back frame).

    A drop or brick is read as the fraction it is (half, third, quarter, ...): a cloth that drops
    by a third is ``drop-1/3`` on one cell, not a block three columns wide.
    """
    tol = _MEMBER_TOLERANCE * shortest
    horizontals = sorted(p[0] for p in points if p[0] > tol and abs(p[1]) < tol)
    verticals = sorted(p[1] for p in points if p[1] > tol and abs(p[0]) < tol)
    forms: list[TileForm] = []
    if horizontals and verticals:
        forms.append(TileForm(Repeat.BLOCK, horizontals[0], verticals[0]))
    # (tile, length of the lattice vector that makes the drop): the shortest such vector is the most exact one
    drops = [
        (TileForm(Repeat.with_drop(Repeat.HALF_DROP, f), p[0], h), _norm(p))
        for h in verticals
        for p in points
        if p[0] > tol and (f := _fraction_near(p[1] / h, h, tol)) is not None
    ]
    bricks = [
        (TileForm(Repeat.with_drop(Repeat.BRICK, f), w, p[1]), _norm(p))
        for w in horizontals
        for p in points
        if p[1] > tol and (f := _fraction_near(p[0] / w, w, tol)) is not None
    ]
    for candidates in (drops, bricks):
        if candidates:
            forms.append(min(candidates, key=lambda c: (round(c[0].area / area, 1), c[1]))[0])
    return tuple(forms)

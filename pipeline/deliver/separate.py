"""Spot-colour separation: a finished result reduced to N inks, one index per pixel, kept in the store.

Screen printing needs one screen per colour. The inks are found by k-means in CIELAB
(:mod:`pipeline.colour`) over the image's distinct colours weighted by how often they occur
(or over the design's, or taken from a given palette), with a fixed, seedless start: the most
frequent colour, then each next centre the colour of largest count x distance², so the same
pixels always give the same inks. Every pixel then takes its nearest ink. Specks smaller than
``min_area_mm2`` at the job's dpi are grown over by their neighbours; components are found
across the repeat's wrap (through the lattice), so a motif that crosses the edge is one
component and the clean-up stays seamless.

Memory stays flat: the image is read from zarr in bands, only the uint8 index map is whole,
and speck removal holds one band of labels (``python -m scripts.bench --only separation``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.colour import lab_to_srgb, parse_palette, srgb_to_lab, to_hex
from pipeline.errors import WeftError
from pipeline.repeat.gather import gather_window
from pipeline.repeat.lattice import Repeat, as_repeat, source_coords

#: Pixels converted to Lab at a time (a band of the image): a few tens of MB whatever its size.
BAND_PIXELS = 2**20
#: Pixels the clustering looks at, at most (an even grid over the image).
SAMPLE_PIXELS = 2**16
#: Low bits dropped from each channel before clustering (64 levels a channel: ample for <= 26 inks).
CLUSTER_SHIFT = 2
#: Above this many pixels every pixel is looked up in a table of all 2^24 colours (built once, 16 MB).
TABLE_ABOVE = 2**23
KMEANS_ROUNDS = 60
MM_PER_INCH = 25.4
#: Bump when the separation's algorithm changes what it produces (part of its key).
SEPARATION_VERSION = 1


@dataclass(frozen=True)
class Ink:
    """One separated colour: its sRGB value and how much of the tile it covers."""

    rgb: tuple[int, int, int]
    coverage: float  # fraction of the tile's pixels, 0..1

    @property
    def hex(self) -> str:
        return to_hex(self.rgb)

    @property
    def lab(self) -> tuple[float, float, float]:
        lab = srgb_to_lab(np.array(self.rgb, np.uint8))
        return (round(float(lab[0]), 2), round(float(lab[1]), 2), round(float(lab[2]), 2))

    def record(self) -> dict[str, Any]:
        return {"hex": self.hex, "lab": list(self.lab), "coverage": round(self.coverage, 6)}


@dataclass(frozen=True)
class Separation:
    """The index map (H, W) uint8 and its inks, in palette order (lightest first)."""

    index: np.ndarray
    inks: tuple[Ink, ...]
    source: str  # "result", "design" or "given"
    min_area_px: int


# --- the palette -------------------------------------------------------------------------------


def _colour_counts(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct RGB colours (n, 3) uint8 and how often each occurs, in packed-colour order."""
    flat = pixels.reshape(-1, 3).astype(np.uint32)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    rgb = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1).astype(np.uint8)
    return rgb, counts.astype(np.float64)


def cluster_inks(pixels: np.ndarray, colors: int) -> list[tuple[int, int, int]]:
    """``colors`` inks for these pixels: weighted k-means in CIELAB from a fixed start, lightest first."""
    distinct = len(_colour_counts(pixels)[0])
    if distinct < colors:
        raise WeftError(f"the image has only {distinct} distinct colours; it cannot be separated into {colors}")
    # cluster the centres of 4 x 4 x 4 colour cells: the same inks within a level or two, far fewer colours
    rgb, counts = _colour_counts(pixels >> CLUSTER_SHIFT << CLUSTER_SHIFT | (1 << CLUSTER_SHIFT) // 2)
    if len(rgb) < colors:
        rgb, counts = _colour_counts(pixels)  # a few flat colours: cluster them as they are
    if len(rgb) < colors:
        raise WeftError(f"the image has only {len(rgb)} distinct colours; it cannot be separated into {colors}")
    lab = srgb_to_lab(rgb).astype(np.float64)
    centres = [lab[int(np.argmax(counts))]]
    nearest = ((lab - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, colors):
        centres.append(lab[int(np.argmax(counts * nearest))])
        nearest = np.minimum(nearest, ((lab - centres[-1]) ** 2).sum(axis=1))
    centre = np.array(centres)
    previous = None
    for _ in range(KMEANS_ROUNDS):
        label = np.argmin(((lab[:, None, :] - centre[None]) ** 2).sum(axis=2), axis=1)
        if previous is not None and np.array_equal(label, previous):
            break
        previous = label
        centre = _weighted_means(lab, counts, label, centre)
    centre = _refine_on(pixels, centre)
    inks = sorted({tuple(int(v) for v in c) for c in lab_to_srgb(centre)}, key=_lightness_key)
    if len(inks) < colors:  # two centres rounded to one sRGB colour: keep the distinct ones apart
        raise WeftError(f"only {len(inks)} distinct inks were found for {colors} colours; ask for fewer")
    return inks


def _refine_on(pixels: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """One last k-means step on the pixels' own colours (not the cells'), so flat inks come out exact."""
    rgb, counts = _colour_counts(pixels)
    lab = srgb_to_lab(rgb).astype(np.float64)
    label = np.argmin(((lab[:, None, :] - centre[None]) ** 2).sum(axis=2), axis=1)
    return _weighted_means(lab, counts, label, centre)


def _weighted_means(lab: np.ndarray, counts: np.ndarray, label: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Each cluster's count-weighted mean colour (a cluster left empty keeps its centre)."""
    weight = np.bincount(label, weights=counts, minlength=len(centre))
    moved = np.stack([np.bincount(label, weights=counts * lab[:, c], minlength=len(centre)) for c in range(3)], 1)
    return np.where(weight[:, None] > 0, moved / np.maximum(weight, 1e-12)[:, None], centre)


def _lightness_key(rgb: tuple[int, int, int]) -> tuple[float, tuple[int, int, int]]:
    """Lightest first (the order screens are usually printed in); ties by the colour itself."""
    return (-float(srgb_to_lab(np.array(rgb, np.uint8))[0]), rgb)


def sample_pixels(image: Any, limit: int = SAMPLE_PIXELS) -> np.ndarray:
    """An even grid of at most ``limit`` pixels of an (H, W, 3) array or zarr array, read in bands."""
    height, width = image.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / limit))))
    rows = max(1, BAND_PIXELS // width) // step * step or step
    # copies, not views: a view of every band would keep the whole image alive
    parts = [np.asarray(image[y0 : min(height, y0 + rows)])[::step, ::step].copy() for y0 in range(0, height, rows)]
    return np.concatenate(parts).reshape(-1, 3)


# --- every pixel to its ink --------------------------------------------------------------------


def _nearest(rgb: np.ndarray, ink_lab: np.ndarray, out: np.ndarray) -> None:
    """Write the nearest ink (CIELAB distance; ties to the lower index) of each RGB pixel into ``out``."""
    lab = srgb_to_lab(rgb)
    best = np.full(lab.shape[:-1], np.inf, np.float32)
    for k, centre in enumerate(ink_lab):
        distance = ((lab - centre) ** 2).sum(axis=-1)
        closer = distance < best
        best[closer] = distance[closer]
        out[closer] = k


def _colour_table(ink_lab: np.ndarray) -> np.ndarray:
    """The nearest ink of every 24-bit colour, uint8 (2^24,), built a band of colours at a time."""
    table = np.empty(2**24, np.uint8)
    for start in range(0, 2**24, BAND_PIXELS):
        packed = np.arange(start, start + BAND_PIXELS, dtype=np.uint32)
        rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)
        _nearest(rgb, ink_lab, table[start : start + BAND_PIXELS])
    return table


def assign(image: Any, inks: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """The nearest ink (CIELAB distance; ties to the lower index) of every pixel: uint8 (H, W).

    Large images look every pixel up in a table of all colours (each colour converted once);
    small ones convert their own pixels. Either way the image is read in bands.
    """
    height, width = image.shape[:2]
    ink_lab = srgb_to_lab(np.array(inks, np.uint8))
    table = _colour_table(ink_lab) if height * width > TABLE_ABOVE else None
    index = np.empty((height, width), np.uint8)
    rows = max(1, BAND_PIXELS // width)
    for y0 in range(0, height, rows):
        band = np.asarray(image[y0 : y0 + rows])
        if table is None:
            _nearest(band, ink_lab, index[y0 : y0 + rows])
            continue
        packed = (band[..., 0].astype(np.uint32) << 16) | (band[..., 1].astype(np.uint32) << 8) | band[..., 2]
        index[y0 : y0 + rows] = table[packed]
    return index


# --- specks ------------------------------------------------------------------------------------


def min_area_px(min_area_mm2: float, dpi: int) -> int:
    """A physical area in whole pixels at ``dpi`` (0 when nothing is removed)."""
    return int(np.ceil(min_area_mm2 * (dpi / MM_PER_INCH) ** 2)) if min_area_mm2 > 0 else 0


def _band_labels(index: np.ndarray, colour: int, band: slice, offset: int) -> tuple[np.ndarray, int]:
    """4-connected components of one colour in one band of rows, numbered from ``offset + 1`` (0: other colours).

    Labelling is deterministic, so the second pass of :func:`small_specks` finds the same numbers.
    """
    from scipy import ndimage

    labels, found = ndimage.label(index[band] == colour)
    labels = labels.astype(np.int32, copy=False)
    labels[labels > 0] += offset
    return labels, int(found)


class _Edges:
    """The labels on the tile's four edges, so a neighbour across the wrap is looked up without the whole label map."""

    def __init__(self, height: int, width: int) -> None:
        self.left, self.right = np.zeros(height, np.int32), np.zeros(height, np.int32)
        self.top, self.bottom = np.zeros(width, np.int32), np.zeros(width, np.int32)

    def keep(self, labels: np.ndarray, band: slice, height: int) -> None:
        self.left[band], self.right[band] = labels[:, 0], labels[:, -1]
        if band.start == 0:
            self.top[:] = labels[0]
        if band.start + labels.shape[0] >= height:
            self.bottom[:] = labels[-1]

    def at(self, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
        """Labels of edge pixels (sx, sy) of the tile (every source of a point just outside it is one)."""
        out = np.where(sx == 0, self.left[sy], self.right[sy])
        out = np.where(sy == 0, self.top[sx], out)
        return np.where(sy == self.left.size - 1, self.bottom[sx], out)


def _wrap_pairs(edges: _Edges, repeat: Repeat) -> np.ndarray:
    """(2, n) label pairs that touch across the right edge (plane column x = W) and the bottom (row y = H)."""
    height, width = edges.left.size, edges.top.size
    ys, xs = np.arange(height), np.arange(width)
    across = edges.at(*source_coords(repeat, np.full(height, width), ys, width, height))
    below = edges.at(*source_coords(repeat, xs, np.full(width, height), width, height))
    return np.concatenate([np.stack([edges.right, across]), np.stack([edges.bottom, below])], axis=1)


def small_specks(index: np.ndarray, colour: int, repeat: Repeat | str, min_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) int32 of every pixel of ``colour`` whose component, joined across the wrap, is below ``min_px``.

    Labelled a band of rows at a time, twice: the first pass keeps only each component's size
    and the labels on band and tile edges (joined through the lattice into whole components);
    the second finds the small ones' pixels. The whole-tile label map is never held: memory is
    the index map, one band, and a few numbers per component.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    repeat = as_repeat(repeat)
    height, width = index.shape
    bands = _row_slices(index)
    edges, sizes, pairs, offsets = _Edges(height, width), [np.zeros(1, np.int64)], [], []
    count, above = 0, None
    for band in bands:
        offsets.append(count)
        labels, found = _band_labels(index, colour, band, count)
        sizes.append(np.bincount(labels[labels > 0] - count, minlength=found + 1)[1:])
        edges.keep(labels, band, height)
        if above is not None:
            pairs.append(np.stack([above, labels[0]]))
        above = labels[-1].copy()
        count += found
    pairs.append(_wrap_pairs(edges, repeat))
    joined = np.concatenate(pairs, axis=1)
    joined = joined[:, (joined[0] > 0) & (joined[1] > 0)]
    graph = coo_matrix((np.ones(joined.shape[1], np.int8), (joined[0], joined[1])), shape=(count + 1, count + 1))
    _, component = connected_components(graph, directed=False)
    area = np.bincount(component, weights=np.concatenate(sizes))
    small = area[component] < min_px
    small[0] = False
    found_ys, found_xs = [], []
    for band, offset in zip(bands, offsets):
        labels, _ = _band_labels(index, colour, band, offset)
        y, x = np.nonzero(small[labels])
        found_ys.append((y + band.start).astype(np.int32))
        found_xs.append(x.astype(np.int32))
    return np.concatenate(found_ys), np.concatenate(found_xs)


def remove_specks(index: np.ndarray, repeat: Repeat | str, min_px: int) -> np.ndarray:
    """Grow neighbouring colours over every component (across the wrap) smaller than ``min_px``, in place.

    Colours are cleaned one after another; growing only ever enlarges other colours' components,
    so no component below the limit survives. A speck takes its neighbours' colours by growing
    inwards one pixel per round, neighbours read through the lattice in a fixed order
    (above, left, below, right), so the result is deterministic and still a repeat. Memory: the
    index map, one band of labels (:func:`small_specks`), and the specks' pixels as lists.
    """
    repeat = as_repeat(repeat)
    if min_px <= 1:
        return index
    for colour in range(int(index.max()) + 1):
        ys, xs = small_specks(index, colour, repeat, min_px)
        if 0 < ys.size < index.size:  # a tile that is one small colour has nothing to grow from
            _grow_over(index, repeat, ys, xs)
    return index


def _grow_over(index: np.ndarray, repeat: Repeat, ys: np.ndarray, xs: np.ndarray) -> None:
    """Give the pixels (ys, xs) their neighbours' colours, growing inwards one pixel per round."""
    height, width = index.shape
    unknown = 255
    index[ys, xs] = unknown
    pending = np.ones(ys.size, bool)
    while pending.any():
        for dy, dx in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            open_ = np.flatnonzero(pending)
            sx, sy = source_coords(repeat, xs[open_] + dx, ys[open_] + dy, width, height)
            neighbour = index[sy, sx]  # read before any of this round's writes
            take = neighbour != unknown
            index[ys[open_[take]], xs[open_[take]]] = neighbour[take]
            pending[open_[take]] = False


# --- the whole separation ----------------------------------------------------------------------


def separation_key(job_key: str, colors: int, palette: str, min_area_mm2: float, dpi: int) -> str:
    """sha256 of what decides a separation: the image (its job key) and the separation's settings."""
    material = {"job_key": job_key, "colors": colors, "palette": palette, "min_area_mm2": min_area_mm2,
                "dpi": dpi, "version": SEPARATION_VERSION}  # fmt: skip
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def separate_image(
    image: Any,
    repeat: Repeat | str,
    colors: int,
    *,
    palette: str = "",
    design: np.ndarray | None = None,
    min_area_mm2: float = 0.0,
    dpi: int = 300,
) -> Separation:
    """Reduce an (H, W, 3) result (numpy or zarr) to ``colors`` inks; ``palette``: "", "design" or "#hex,...".

    With an explicit palette its length is the number of colours and ``colors`` may be 0.
    """
    if palette not in ("", "design"):
        inks, source = [tuple(rgb) for rgb in parse_palette(palette)], "given"
        if colors and colors != len(inks):
            raise WeftError(f"the palette has {len(inks)} colours but {colors} were asked for")
    elif palette == "design":
        if design is None:
            raise WeftError("palette from the design: the design image is not available")
        inks, source = cluster_inks(np.asarray(design)[..., :3], colors), "design"
    else:
        inks, source = cluster_inks(sample_pixels(image), colors), "result"
    if not 2 <= len(inks) <= 255:
        raise WeftError(f"a separation needs 2 to 255 colours, got {len(inks)}")
    index = assign(image, inks)
    limit = min_area_px(min_area_mm2, dpi)
    remove_specks(index, repeat, limit)
    coverage = ink_counts(index, len(inks)) / index.size
    return Separation(index, tuple(Ink(tuple(rgb), float(c)) for rgb, c in zip(inks, coverage)), source, limit)


def _row_slices(index: np.ndarray) -> list[slice]:
    """Bands of rows of about :data:`BAND_PIXELS`: numpy widens a uint8 index to int64 when it counts or
    looks up with it, so whole-map calls would cost eight times the map."""
    rows = max(1, BAND_PIXELS // max(1, index.shape[1]))
    return [slice(y0, y0 + rows) for y0 in range(0, index.shape[0], rows)]


def ink_counts(index: np.ndarray, inks: int) -> np.ndarray:
    """Pixels of each ink, counted a band at a time."""
    return sum((np.bincount(index[band].ravel(), minlength=inks) for band in _row_slices(index)), np.zeros(inks, np.int64))


def recolour(index: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """An index map painted with these colours (a colourway, or the inks themselves): uint8 (H, W, 3)."""
    palette = np.asarray(colors, np.uint8)
    out = np.empty((*index.shape, 3), np.uint8)
    for band in _row_slices(index):
        out[band] = palette[index[band]]
    return out


def separation_record(sep: Separation, key: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the store and every exported file say about a separation."""
    return {
        "key": key,
        "colors": len(sep.inks),
        "palette_from": sep.source,
        "palette": [ink.record() for ink in sep.inks],
        "min_area_mm2": settings.get("min_area_mm2", 0.0),
        "min_area_px": sep.min_area_px,
        "version": SEPARATION_VERSION,
    }

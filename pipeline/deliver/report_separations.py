"""The report's separations view: the result in its N inks with each ink's coverage, and every colourway beside it.

Read from the store only (``jobs/<id>/separation``, written by `weft separate` or
`weft export --separations`); a job without a separation shows nothing here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pipeline.colour import parse_hex

#: Long side (px) of the separation and colourway pictures.
SIDE = 200

STYLE = """
.separations{margin-top:14px;border-top:1px solid var(--line,#ddd);padding-top:10px}
.separations h4{margin:0 0 8px;font-size:14px}.separations .ways{display:flex;flex-wrap:wrap;gap:14px}
.separations figure{margin:0;width:210px}.separations img{width:200px;image-rendering:pixelated}
.swatches{list-style:none;margin:6px 0 0;padding:0;font:12px ui-monospace,Menlo,monospace}
.swatches li{display:flex;align-items:center;gap:6px;margin:2px 0}
.swatches i{display:inline-block;width:16px;height:16px;border:1px solid #0003}
"""


def _small(index: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Nearest-neighbour reduction of an index map (inks stay inks: no blending)."""
    step = max(1, int(np.ceil(max(index.shape) / side)))
    return index[::step, ::step]


def separation_pictures(group: Any, uri: Callable[[np.ndarray], str]) -> dict[str, Any] | None:
    """Data URIs of the separated result and of each colourway, or None without a separation."""
    if "separation" not in group:
        return None
    sep = group["separation"]
    record = dict(sep.attrs.get("record") or {})
    index = _small(np.asarray(sep["index"][...]))
    inks = [parse_hex(p["hex"]) for p in record.get("palette") or []]
    ways = record.get("colourways") or []
    return {
        "record": record,
        "inks": uri(np.asarray(inks, np.uint8)[index]),
        "colourways": [uri(np.asarray([parse_hex(c) for c in w["colors"]], np.uint8)[index]) for w in ways],
    }


def _swatches(colors: list[str], coverage: list[float]) -> str:
    items = "".join(
        f'<li><i style="background:{html.escape(c)}"></i>{html.escape(c)} <span>{100 * share:.1f} %</span></li>'
        for c, share in zip(colors, coverage)
    )
    return f'<ul class="swatches">{items}</ul>'


def separation_html(job_id: str, pictures: Mapping[str, Any] | None) -> str:
    """The separations view of one job's card (empty without a separation)."""
    if not pictures:
        return ""
    record = pictures["record"]
    palette = record.get("palette") or []
    coverage = [float(p.get("coverage") or 0.0) for p in palette]
    colors = [str(p.get("hex")) for p in palette]
    name = html.escape(job_id)
    lab = "; ".join(f"{p['hex']} Lab {', '.join(f'{v:.1f}' for v in p['lab'])}" for p in palette)
    figures = [
        f'<figure><img src="{pictures["inks"]}" alt="{name} in {len(colors)} spot colours" title="{html.escape(lab)}">'
        f"<figcaption><b>{len(colors)} spot colours</b> ({html.escape(str(record.get('palette_from')))})"
        f"{_swatches(colors, coverage)}</figcaption></figure>"
    ]
    for way, uri in zip(record.get("colourways") or [], pictures["colourways"]):
        figures.append(
            f'<figure><img src="{uri}" alt="{name}, colourway {html.escape(way["name"])}">'
            f"<figcaption><b>colourway {html.escape(way['name'])}</b>{_swatches(way['colors'], coverage)}"
            "</figcaption></figure>"
        )
    speck = f" · specks under {record.get('min_area_mm2')} mm² removed" if record.get("min_area_px") else ""
    return (
        f'<section class="separations"><h4>Separations and colourways{html.escape(speck)}</h4>'
        f'<div class="ways">{"".join(figures)}</div></section>'
    )

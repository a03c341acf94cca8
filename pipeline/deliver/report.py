"""``weft report STORE --out report.html``: a self-contained HTML contact sheet of every job.

One file that opens offline and can be mailed: every picture is an embedded JPEG data URI,
the styling and the few lines of sorting script are inline, nothing is fetched. Per job:
the design, each style with its attribution and licence, the result, a 3 x 3 repeat
preview drawn under the job's repeat type, seam figures, size in px and cm, time, status or
error, job key. The header says which licence policy the jobs ran under. Jobs are grouped by
status (failed first); clicking a column of the summary table sorts the table and the cards
of every group.

Attribute values are data written by other programs: everything is HTML-escaped, nothing is
evaluated, and no attribute becomes a link.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from pipeline.conventions import JobStatus
from pipeline.errors import WeftError
from pipeline.repeat.lattice import honoured_size
from pipeline.repeat.seams import FRAME_VISIBLE_ABOVE, RESULT_REPEAT_INVISIBLE, SEAMLESS
from pipeline.deliver.preview import repeat_preview
from pipeline.deliver.report_separations import STYLE as SEPARATION_STYLE
from pipeline.deliver.report_separations import separation_html, separation_pictures
from pipeline.run.pyramid import job_thumbnail
from pipeline.deliver.status import number, size_cm
from pipeline.run.store import is_finished, job_group, job_ids, job_info, open_store

GROUPS = (JobStatus.FAILED, JobStatus.RUNNING, JobStatus.PENDING, JobStatus.DONE)
RESULT_SIDE = 256
PREVIEW_TILE_SIDE = 150
PREVIEW_GRID = 3
#: Seam ratios at or below these are invisible (targets of the pipeline issue).
SEAM_OK = {"repeat": RESULT_REPEAT_INVISIBLE, "internal_max": SEAMLESS, "frame": FRAME_VISIBLE_ABOVE}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def data_uri(image: np.ndarray, quality: int = 88) -> str:
    """An RGB uint8 array as a ``data:image/jpeg;base64,...`` URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fit(image: np.ndarray, side: int, repeat: str | None = None) -> np.ndarray:
    """Resize to long side ``side``; keep the sides the repeat divides (even height for half-drop, a
    multiple of 3 for drop-1/3 ...), so the preview's drop or shift lands on whole pixels."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if repeat is not None:
        nw, nh = honoured_size(repeat, nw, nh)
    if (nh, nw) == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _figure(uri: str | None, caption: str, alt: str, css: str = "") -> str:
    picture = f'<img src="{uri}" alt="{_e(alt)}">' if uri else '<div class="missing">—</div>'
    return f'<figure class="{css}">{picture}<figcaption>{caption}</figcaption></figure>'


def _job_pictures(group: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    """Data URIs of the design, styles, result and 3 x 3 preview (None where there is nothing)."""
    inputs = group["inputs"] if "inputs" in group else None

    def input_uri(name: str) -> str | None:
        if inputs is None or name not in inputs:
            return None
        return data_uri(_fit(np.asarray(inputs[name][...]), RESULT_SIDE))

    styles = (info.get("inputs") or {}).get("styles") or []
    pictures: dict[str, Any] = {
        "design": input_uri("design"),
        "styles": [input_uri(f"style-{i}") for i in range(len(styles))],
        "result": None,
        "preview": None,
    }
    if is_finished(info):
        repeat = str(info.get("repeat") or "block")
        small = job_thumbnail(group, RESULT_SIDE)
        pictures["result"] = data_uri(_fit(small, RESULT_SIDE))
        tile = _fit(small, PREVIEW_TILE_SIDE, repeat)
        pictures["preview"] = data_uri(repeat_preview(tile, repeat, PREVIEW_GRID, PREVIEW_GRID))
        pictures["separation"] = separation_pictures(group, lambda image: data_uri(image, quality=95))
    return pictures


def _seam_cell(info: Mapping[str, Any], key: str) -> str:
    value = number((info.get("seams") or {}).get(key))
    if value is None:
        return '<span class="na">–</span>'
    css = "ok" if value <= SEAM_OK[key] else "warn"
    return f'<span class="{css}">{value:.2f}</span>'


def _sort_data(info: Mapping[str, Any]) -> str:
    """data-* attributes the inline script sorts by (the same on table rows and cards)."""
    seams = info.get("seams") or {}
    progress = info["progress"]
    values = {
        "job": info.get("job_id"),
        "status": info.get("status"),
        "seconds": number((info.get("timings") or {}).get("seconds")) or "",
        "seam-repeat": seams.get("repeat", ""),
        "seam-internal": seams.get("internal_max", ""),
        "seam-frame": seams.get("frame", ""),
        "pixels": (number(info.get("width")) or 0) * (number(info.get("height")) or 0),
        "area": (number(info.get("width")) or 0) * (number(info.get("height")) or 0)
        / max(1.0, number(info.get("dpi")) or 1.0) ** 2,
        "progress": progress["tiles_done"] / max(1, progress["tiles_total"]),
    }
    return " ".join(f'data-{k}="{_e(v)}"' for k, v in values.items())


def _card(info: Mapping[str, Any], pictures: Mapping[str, Any]) -> str:
    job_id, status = str(info.get("job_id")), str(info.get("status"))
    inputs = info.get("inputs") or {}
    design = inputs.get("design") or {}
    styles = inputs.get("styles") or []
    repeat = str(info.get("repeat") or "block")
    figures = [_figure(pictures["design"], f"<b>Design</b><span>{_e(Path(str(design.get('path', ''))).name)}</span>",
                       f"design of {job_id}")]  # fmt: skip
    for style, uri in zip(styles, pictures["styles"]):
        weight = f" · weight {style['weight']:g}" if isinstance(style.get("weight"), (int, float)) else ""
        caption = (
            f"<b>Style {_e(style.get('id'))}</b><span>{_e(style.get('attribution') or 'no attribution')}</span>"
            f'<span class="licence">{_e(style.get("license") or "licence unknown")}{weight}</span>'
        )
        figures.append(_figure(uri, caption, f"style {style.get('id')} of {job_id}"))
    result_note = "one repeat tile" if pictures["result"] else "not finished"
    figures.append(_figure(pictures["result"], f"<b>Result</b><span>{result_note}</span>", f"result of {job_id}",
                           "result"))  # fmt: skip
    progress = info["progress"]
    timings = info.get("timings") or {}
    dpi = info.get("dpi")
    facts = [
        ("Repeat", _e(repeat)),
        ("Size", f"{_e(info.get('width'))} × {_e(info.get('height'))} px"),
        ("Print size", f"{_e(size_cm(info, ' × '))} cm at {_e(dpi)} dpi" if size_cm(info) else "–"),
        ("Time", f"{_duration(number(timings.get('seconds')))}"
                 + (f" <small>(compute {_duration(number(timings.get('compute_seconds')))})</small>"
                    if number(timings.get("compute_seconds")) is not None else "")),
        ("Seams", f"{_seam_cell(info, 'repeat')} repeat · {_seam_cell(info, 'internal_max')} internal · "
                  f"{_seam_cell(info, 'frame')} frame"),
        ("Tiles", f"{progress['tiles_done']}/{progress['tiles_total']}"),
        ("Seed", _e(info.get("seed"))),
        ("Job key", f'<code title="{_e(info.get("job_key"))}">{_e(str(info.get("job_key") or "")[:16])}…</code>'),
        ("Settings", f'<code title="{_e(info.get("settings_digest"))}">'
                     f'{_e(str(info.get("settings_digest") or "")[:16])}…</code>'),
    ]  # fmt: skip
    facts_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    share = progress["tiles_done"] / max(1, progress["tiles_total"])
    bar = (
        f'<div class="bar" title="{progress["tiles_done"]}/{progress["tiles_total"]} tiles">'
        f'<div style="width:{share * 100:.0f}%"></div></div>'
        if status != JobStatus.DONE else ""
    )  # fmt: skip
    error = f'<pre class="error">{_e(info.get("error"))}</pre>' if info.get("error") else ""
    preview = ""
    if pictures["preview"]:  # unfinished jobs have no preview: no empty box either
        preview = _figure(
            pictures["preview"],
            f"<b>{PREVIEW_GRID} × {PREVIEW_GRID} {_e(repeat)} repeat</b><span>as the fabric will carry it</span>",
            f"{PREVIEW_GRID} by {PREVIEW_GRID} repeat preview of {job_id}",
            "preview",
        )
    return (
        f'<article class="card {_e(status)}" id="job-{_e(job_id)}" {_sort_data(info)}>'
        f'<header><h3>{_e(job_id)}</h3><span class="badge {_e(status)}">{_e(status)}</span></header>'
        f"{bar}{error}"
        f'<div class="body"><div class="left"><div class="figures">{"".join(figures)}</div>'
        f'<dl class="facts">{facts_html}</dl></div>{preview}</div>'
        f"{separation_html(job_id, pictures.get('separation'))}</article>"
    )


def _describe_policy(policy: Any) -> str:
    """One job's recorded licence policy in words."""
    if not isinstance(policy, Mapping):
        return "no licence policy"
    allowed = policy.get("allowed_licenses")
    licences = f"allowed {', '.join(map(str, allowed))}" if allowed else "any licence"
    attribution = "; attribution required" if policy.get("require_attribution") else ""
    return f"licence policy: {licences}{attribution}"


def _policy_line(infos: list[dict[str, Any]]) -> str:
    """The licence policies the jobs ran under, as one line; which jobs, where they differ.

    Jobs that never started (or were written before policies were recorded) have none and are left out.
    """
    jobs: dict[str, list[str]] = {}
    for info in infos:
        if "policy" in info:
            jobs.setdefault(_describe_policy(info["policy"]), []).append(str(info.get("job_id")))
    if len(jobs) <= 1:
        return next(iter(jobs), "no licence policy recorded")
    return " · ".join(f"{text} (jobs {', '.join(sorted(ids))})" for text, ids in jobs.items())


def _row(info: Mapping[str, Any]) -> str:
    job_id, status = str(info.get("job_id")), str(info.get("status"))
    progress = info["progress"]
    seconds = number((info.get("timings") or {}).get("seconds"))
    cells = [
        f'<a href="#job-{_e(job_id)}">{_e(job_id)}</a>',
        f'<span class="badge {_e(status)}">{_e(status)}</span>',
        f"{_e(info.get('width'))} × {_e(info.get('height'))}",
        _e(size_cm(info, " × ")),
        _e(_duration(seconds) if seconds is not None else "–"),
        _seam_cell(info, "repeat"),
        _seam_cell(info, "internal_max"),
        _seam_cell(info, "frame"),
        f"{progress['tiles_done']}/{progress['tiles_total']}",
    ]
    return f"<tr {_sort_data(info)}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


STYLE = """
:root{--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#f6f4ef;--card:#fff;--ok:#1a7f37;--warn:#bc4c00;
--fail:#cf222e;--run:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
main{max-width:1340px;margin:0 auto;padding:28px 28px 60px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}h2{font-size:18px;margin:34px 0 12px}
.sub{color:var(--muted);margin:0 0 18px}.sub code{font-size:12px}.sub.policy{margin-top:-12px}
.counts{display:flex;gap:8px;margin:0 0 18px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px;
overflow:hidden}
th,td{padding:7px 12px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}
th{background:#eef0f2;font-weight:600;cursor:pointer;user-select:none;font-size:12px;text-transform:uppercase;
letter-spacing:.04em;color:var(--muted)}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
tr:last-child td{border-bottom:0}td a{color:var(--ink);font-weight:600;text-decoration:none}
.hint{color:var(--muted);font-size:12px;margin:6px 0 0}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;
background:var(--muted)}
.badge.done{background:var(--ok)}.badge.failed{background:var(--fail)}.badge.running{background:var(--run)}
.badge.pending{background:#8c959f}
.ok{color:var(--ok);font-weight:600}.warn{color:var(--warn);font-weight:600}.na{color:var(--muted)}
.cards{display:flex;flex-direction:column;gap:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card.failed{border-left:5px solid var(--fail)}.card.running{border-left:5px solid var(--run)}
.card header{display:flex;align-items:center;gap:10px;margin-bottom:10px}.card h3{margin:0;font-size:17px}
.body{display:flex;gap:24px;align-items:flex-start}
.left{flex:1;min-width:0}.figures{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;display:flex;flex-direction:column;gap:6px;width:150px}
figure img{width:150px;height:150px;object-fit:contain;background:#f0eee9;border-radius:6px;border:1px solid var(--line)}
figure.result img{outline:2px solid #3b3f44;outline-offset:-2px}
figure.preview{width:auto}figure.preview img{width:380px;height:auto;max-height:420px;background:none}
figcaption{font-size:12px;color:var(--muted);display:flex;flex-direction:column;overflow-wrap:anywhere}
figcaption b{color:var(--ink);font-size:13px}.licence{font-style:italic}
.missing{width:150px;height:150px;display:flex;align-items:center;justify-content:center;color:var(--muted);
background:repeating-linear-gradient(45deg,#f3f1ec,#f3f1ec 8px,#ebe8e1 8px,#ebe8e1 16px);border-radius:6px;
border:1px dashed var(--line);font-size:12px}
.facts{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:4px 14px;margin:16px 0 0;
font-size:13px;padding-top:12px;border-top:1px solid var(--line)}
.facts dt{color:var(--muted)}.facts dd{margin:0}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.error{background:#fff1f0;color:#86181d;border:1px solid #ffcecb;border-radius:6px;padding:8px 10px;margin:0 0 12px;
white-space:pre-wrap;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
.bar{height:6px;background:#eaeef2;border-radius:3px;margin:0 0 12px;overflow:hidden}
.bar div{height:100%;background:var(--run)}.card.failed .bar div{background:var(--fail)}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"""

SCRIPT = """
(function(){
  var order={failed:0,running:1,pending:2,done:3};
  function value(el,key){var v=el.dataset[key]||'';if(key==='status')return v in order?order[v]:9;
    if(v==='')return null;var n=Number(v);return isNaN(n)?v.toLowerCase():n;}
  var current={key:null,dir:1};
  function compare(a,b,key){var x=value(a,key),y=value(b,key);  // missing values last, either way
    if(x===null||y===null)return (x===null)-(y===null);return (x<y?-1:x>y?1:0)*current.dir;}
  function sortChildren(parent,key){Array.prototype.slice.call(parent.children).sort(function(a,b){
    return compare(a,b,key);}).forEach(function(c){parent.appendChild(c);});}
  document.querySelectorAll('th[data-key]').forEach(function(th){th.addEventListener('click',function(){
    var key=th.dataset.key;current.dir=current.key===key?-current.dir:1;current.key=key;
    document.querySelectorAll('th[data-key]').forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',current.dir>0?'ascending':'descending');
    sortChildren(document.querySelector('#jobs tbody'),key);
    document.querySelectorAll('.cards').forEach(function(g){sortChildren(g,key);});});});
  window.addEventListener('load',function(){var broken=Array.prototype.filter.call(document.images,function(i){
    return !i.complete||i.naturalWidth===0;}).length;document.documentElement.dataset.brokenImages=String(broken);});
})();
"""

COLUMNS = [
    ("job", "Job"),
    ("status", "Status"),
    ("pixels", "Size px"),
    ("area", "Size cm"),
    ("seconds", "Time"),
    ("seamRepeat", "Seam repeat"),
    ("seamInternal", "Seam internal"),
    ("seamFrame", "Frame"),
    ("progress", "Tiles"),
]


def _variant_groups(infos: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Jobs that are variants of one manifest entry (``variants``), by that entry's id, in job-id order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for info in sorted(infos, key=lambda i: str(i.get("job_id"))):
        variant = info.get("variant")
        if isinstance(variant, dict) and variant.get("of"):
            groups.setdefault(str(variant["of"]), []).append(info)
    return groups


def _variants_section(infos: list[dict[str, Any]], pictures: Mapping[str, Mapping[str, Any]]) -> str:
    """The variants of each job side by side (same inputs, one setting swept), so a designer can pick one."""
    blocks = []
    for job_id, members in _variant_groups(infos).items():
        figures = []
        for info in members:
            sets = " · ".join(f"{_e(k)} = {_e(v)}" for k, v in (info["variant"].get("sets") or {}).items())
            member_id = str(info.get("job_id"))
            caption = f'<b><a href="#job-{_e(member_id)}">{sets or _e(member_id)}</a></b><span>{_e(member_id)}</span>'
            figures.append(_figure(pictures[member_id]["result"], caption, f"variant {member_id}", "result"))
        blocks.append(f'<article class="card variants" id="variants-{_e(job_id)}"><header><h3>{_e(job_id)}: '
                      f'{len(members)} variants</h3></header><div class="figures">{"".join(figures)}</div></article>')
    if not blocks:
        return ""
    return (f'<section class="group" data-status="variants"><h2>Variants ({len(blocks)})</h2>'
            f'<div class="variant-groups">{"".join(blocks)}</div></section>')  # fmt: skip


def render_report(store: Path, infos: list[dict[str, Any]], pictures: Mapping[str, Mapping[str, Any]]) -> str:
    """The whole HTML page as a string (no I/O), jobs grouped by status, failed first."""
    by_status = {status: [i for i in infos if i.get("status") == status] for status in GROUPS}
    others = [i for i in infos if i.get("status") not in GROUPS]
    if others:
        by_status["other"] = others
    rank = {status: n for n, status in enumerate(by_status)}
    ordered = sorted(infos, key=lambda i: (rank.get(str(i.get("status")), len(rank)), str(i.get("job_id"))))
    counts = "".join(
        f'<span class="badge {_e(s)}">{len(items)} {_e(s)}</span>' for s, items in by_status.items() if items
    )
    head = "".join(f'<th data-key="{key}">{label}</th>' for key, label in COLUMNS)
    rows = "".join(_row(info) for info in ordered)
    sections = []
    for status, items in by_status.items():
        if not items:
            continue
        cards = "".join(_card(info, pictures[str(info.get("job_id"))]) for info in items)
        sections.append(
            f'<section class="group" data-status="{_e(status)}"><h2>{_e(status.title())} ({len(items)})</h2>'
            f'<div class="cards">{cards}</div></section>'
        )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>weft report — {_e(store.name)}</title><style>{STYLE}{SEPARATION_STYLE}</style></head><body><main>"
        f'<h1>weft contact sheet</h1><p class="sub">Store <code>{_e(store)}</code> · {len(infos)} job(s) · '
        f"generated {generated}</p>"
        f'<p class="sub policy">{_e(_policy_line(infos))}</p>'
        f'<div class="counts">{counts}</div>'
        f'<table id="jobs"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        '<p class="hint">Click a column to sort the table and the cards within each group. Seam ratios near 1.00 '
        f"are invisible (repeat ≤ {RESULT_REPEAT_INVISIBLE:.2f}, internal ≤ {SEAMLESS:.2f} shown green); a frame "
        f"figure near 1 means the band along the repeat edge looks like the rest of the tile (≤ "
        f"{FRAME_VISIBLE_ABOVE:.2f} green).</p>"
        f"{_variants_section(infos, pictures)}{''.join(sections)}"
        "<footer>Written by <code>weft report</code>; the pictures are embedded, the page works offline.</footer>"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def report_command(store: Path, out_file: Path, console: Console | None = None) -> Path:
    """Write the contact sheet of ``store`` to ``out_file`` (atomically); returns its path."""
    console = console or Console()
    store, out_file = Path(store), Path(out_file)
    root = open_store(store, "r")
    infos = [job_info(root, job_id) for job_id in job_ids(root)]
    pictures = {str(info["job_id"]): _job_pictures(job_group(root, str(info["job_id"])), info) for info in infos}
    page = render_report(store, infos, pictures)
    temp = out_file.with_name(f".{out_file.name}.{os.getpid()}.tmp")
    try:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(page, encoding="utf-8")
        os.replace(temp, out_file)
    except OSError as error:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise WeftError(f"cannot write report {out_file}: {error.strerror or error}") from None
    size = f"{len(infos)} job(s), {len(page) / 1e6:.1f} MB"
    console.print(f"[green]wrote[/] {escape(str(out_file))} ({size})", highlight=False)
    return out_file

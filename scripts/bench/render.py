"""Tables of rows, printed (rich) or as the generated blocks of ``docs/benchmarks.md``.

Each section of that file is a hand-written heading, method and findings, followed by a block
between ``<!-- bench:NAME -->`` markers that ``--write`` replaces: the summary sentence, the
command, date and load, and the tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

Table = tuple[str, list[str], list[list[str]]]  # (title, header, rows of cells)


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return " / ".join(fmt(v, digits) for v in value)
    return str(value)


def all_tables(section: ModuleType, rows: list[dict]) -> list[Table]:
    """The section's tables of its measured rows, then one of its 'not measured' notes."""
    notes = [r for r in rows if "note" in r]
    out = section.tables([r for r in rows if "note" not in r])
    if notes:
        keys = [k for k in notes[0] if k != "note"]
        out.append(("GPU", [*keys, "result"], [[str(n.get(k, "")) for k in keys] + [n["note"]] for n in notes]))
    return out


def summary(section: ModuleType, rows: list[dict]) -> str:
    """The section's one sentence written from its figures."""
    data = [r for r in rows if "note" not in r]
    return section.summary(data) if data else "Not measured."


def print_tables(name: str, section: ModuleType, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(width=200)
    for title, header, cells in all_tables(section, rows):
        table = RichTable(title=f"[{name}] {title}", title_justify="left")
        for column in header:
            table.add_column(column)
        for line in cells:
            table.add_row(*[c.replace("**", "") for c in line])
        console.print(table)
    console.print(summary(section, rows), highlight=False)


def markdown_block(name: str, section: ModuleType, rows: list[dict], meta: dict) -> str:
    """The generated part of a section: summary, provenance, details, tables, between markers."""
    lines = [f"<!-- bench:{name} -->", f"**What it shows.** {summary(section, rows)}", ""]
    if "provenance_lines" in meta:  # re-rendered from saved rows: the original run's command and date
        lines += [*meta["provenance_lines"], ""]
    else:
        lines += [f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; load average 1-min during the section: "
                  f"{meta['load']}; section took {meta['seconds']:.0f} s; {meta['threads']}"
                  + (f"; weft at {meta['commit']}" if meta.get("commit") else "") + ".", ""]  # fmt: skip
    details = getattr(section, "details", None)
    if details:
        lines += details(rows)
    for title, header, cells in all_tables(section, rows):
        lines += [f"*{title}*", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells]
        lines.append("")
    lines.append(f"<!-- /bench:{name} -->")
    return "\n".join(lines)


def machine_block(info: dict) -> str:
    lines = ["<!-- bench:machine -->", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "<!-- /bench:machine -->"]
    return "\n".join(lines)


def _marked(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)


def write_markdown(path: Path, blocks: dict[str, str], info: dict, sections: dict[str, ModuleType]) -> None:
    """Replace each block of ``path`` (the machine's too), keeping everything outside the markers.

    A section the file does not have yet is added, under its ``TITLE``, before the first later
    section (in the order of ``sections``) or at the end.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    blocks = {"machine": machine_block(info), **blocks}
    order = ["machine", *sections]
    for name in order:
        if name not in blocks:
            continue
        if _marked(name).search(text):
            text = _marked(name).sub(lambda _m: blocks[name], text)
            continue
        new = blocks[name] if name == "machine" else f"## {sections[name].TITLE}\n\n{blocks[name]}"
        position = len(text)
        for other in order[order.index(name) + 1 :]:
            found = _marked(other).search(text)
            if found:  # before that section's heading
                heading = text.rfind("\n## ", 0, found.start())
                position = heading + 1 if heading >= 0 else found.start()
                break
        text = text[:position].rstrip("\n") + "\n\n" + new + "\n\n" + text[position:].lstrip("\n")
    path.write_text(text.rstrip("\n") + "\n")


def rerender(source: Path, target: Path, chosen: list[str], sections: dict[str, ModuleType]) -> None:
    """Rewrite the ``chosen`` blocks of ``target`` from the rows saved in ``source`` (``--json`` output).

    For a new summary or table layout without re-measuring. The command, date and load lines
    come from the JSON's meta, or else are kept from the block already in ``target``.
    """
    saved = json.loads(source.read_text())
    existing = target.read_text() if target.exists() else ""
    blocks = {}
    for name in chosen:
        rows = saved["results"].get(name)
        if rows is None:
            continue
        meta = (saved.get("meta") or {}).get(name)
        if meta is None:
            block = _marked(name).search(existing)
            found = re.search(r"^(Command: .*?)\n\n", block.group(0), re.S | re.M) if block else None
            if not found:
                raise SystemExit(f"{source} has no meta for {name} and {target} no block to take it from")
            meta = {"provenance_lines": found.group(1).splitlines()}
        blocks[name] = markdown_block(name, sections[name], rows, meta)
    write_markdown(target, blocks, saved["machine"], sections)

"""Regenerate the settings table in docs/settings.md from ``Settings.model_fields``.

``python scripts/settings_table.py`` rewrites the table in place; ``--check`` exits 1 when the
document is stale (the test suite runs the check, so a changed default cannot go unnoticed).
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pipeline.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
BEGIN, END = "<!-- settings-table:begin -->", "<!-- settings-table:end -->"


def _bounds(info: Any) -> str:
    marks = []
    for item in info.metadata:
        for name, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, name, None) is not None:
                marks.append(f"{symbol} {getattr(item, name)}")
    return f" ({', '.join(marks)})" if marks else ""


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(json.dumps(value) for value in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # bool | Literal["auto"]
        return " or ".join(_type(part) for part in typing.get_args(annotation))
    if annotation is type(None):  # float | None: unset
        return "null"
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


def table() -> str:
    """The markdown table, one row per setting, in declaration order."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = json.dumps(info.default)
        meaning = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `{default}` | {meaning} Type: `{_type(info.annotation)}`{_bounds(info)}. |")
    return "\n".join(rows)


def render(document: str) -> str:
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in argv:
        if current != wanted:
            print(f"{DOC} is stale: run python scripts/settings_table.py")
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

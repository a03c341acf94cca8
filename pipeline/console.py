"""Consoles for tables that a log file keeps whole, and errors printed in full below a table.

A rich :class:`~rich.console.Console` writing to anything but a terminal (a log file, a pipe,
a scheduler's capture) takes the width of whatever terminal the process still has, or 80
columns, and squeezes tables into it: job ids and errors end in "…". :class:`LogConsole`
keeps a terminal's own width and gives everything else :data:`LOG_WIDTH`, so a table is
as wide as its content and nothing is cut. Without a terminal rich writes no colours.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape

#: Width of a console that does not write to a terminal: wide enough that no row is ever cut.
LOG_WIDTH = 1 << 20


class LogConsole(Console):
    """A console that is a terminal's width in a terminal and :data:`LOG_WIDTH` wide anywhere else.

    An explicit ``width=`` is kept as given; ``$COLUMNS`` (often 80 under a scheduler) is not,
    without a terminal.
    """

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, width=width, **kwargs)
        self._asked_width = width

    def _log_size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self.is_terminal or self._asked_width is not None:
            return size
        return ConsoleDimensions(LOG_WIDTH, size.height)

    size = property(_log_size, Console.size.fset)  # type: ignore[assignment, attr-defined]


def print_errors(console: Console, errors: Iterable[tuple[str, str]], *, first_line: bool = False) -> None:
    """``failed ID: ERROR`` for each (job id, error), never cut: every line, or only the first one.

    Printed below a table, whose error column a narrow terminal squeezes.
    """
    for job_id, error in errors:
        lines = str(error).strip().splitlines() or [""]
        text = lines[0] if first_line else "\n  ".join(lines)
        console.print(f"[bold red]failed[/] {escape(f'{job_id}: {text}')}", highlight=False)

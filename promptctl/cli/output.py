"""Human and machine output in one place: rich tables (colour off when not a TTY or NO_COLOR), stable JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    out = console()
    t = Table(title=title, show_lines=False, header_style="bold", title_justify="left")
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*["" if cell is None else str(cell) for cell in row])
    out.print(t)


def say(message: str) -> None:
    console().print(message, markup=False, highlight=False)


def note(message: str) -> None:
    """A remark on stderr (progress, no-op explanations) that never pollutes --json stdout."""
    sys.stderr.write(message + "\n")

"""Human and machine output in one place: rich tables (colour off when not a TTY or NO_COLOR), stable JSON.

When stdout is not a terminal (piped, redirected, captured by CI) nothing is wrapped or truncated: a table is
as wide as its content, so ``promptctl list | grep`` sees whole lines. Text that comes from users (prompt
sources, messages) is never interpreted as rich markup or ``:emoji:`` codes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings
if TYPE_CHECKING:
    from typing import Any

PIPE_WIDTH = 1_000_000  # "unlimited": rich tables only take the width their content needs


def emit_json(data: Any) -> None:
    """``data`` as JSON on stdout. Small documents are indented; a long list puts one element per line
    (still valid JSON, still readable), because the C encoder is ~10x faster than the indenting one."""
    if isinstance(data, list) and len(data) > 50:
        encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        sys.stdout.write("[\n" + ",\n".join("  " + encode(item) for item in data) + "\n]\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n")


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        width=None if tty else PIPE_WIDTH,
        # NO_COLOR (https://no-color.org): rich alone drops colours but keeps bold/italic; no styles at all.
        **({"color_system": None} if os.environ.get("NO_COLOR") else {}),
    )


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    out = console()
    fold = out.is_terminal  # on a terminal, fold long cells to the screen; piped, keep every line whole
    t = Table(title=title, show_lines=False, header_style="bold", title_justify="left")
    for column in columns:
        t.add_column(column, overflow="fold" if fold else "ignore", no_wrap=not fold)
    for row in rows:
        t.add_row(*[_plain("" if cell is None else str(cell)) for cell in row])
    out.print(t)


def _plain(text: str):
    from rich.text import Text

    return Text(text)  # no markup parsing of user content


def say(message: str) -> None:
    """One plain line on stdout (no markup, no wrapping; does not even load rich)."""
    sys.stdout.write(message + "\n")


def heading(message: str) -> None:
    """A bold line (plain when colour is off); ``message`` is never parsed as markup."""
    from rich.text import Text

    console().print(Text(message, style="bold"))


def raw(text: str) -> None:
    """User content (a prompt's source, a diff) exactly as it is: no markup, no emoji, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def note(message: str) -> None:
    """A remark on stderr (progress, no-op explanations) that never pollutes --json stdout."""
    sys.stderr.write(message + "\n")

"""Run the hottest read commands without loading the CLI framework.

``promptctl list`` and ``promptctl log ID`` (with ``--json`` and ``--repo/-C DIR``) are what scripts and CI
call in loops. Importing typer costs more than everything these commands do, so when the arguments have one
of these plain shapes they are run directly; anything else (``--help``, an unknown option, a typo) falls
through to typer, which parses, documents and reports errors as usual. Both paths call the same functions
in ``registry_views``, so the output is identical. ``PROMPTCTL_NO_FASTPATH=1`` turns this off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def parse(args: Sequence[str]) -> tuple[str, dict] | None:
    """(command, keyword arguments) for a plain ``list`` / ``log`` invocation, else None."""
    if not args or args[0] not in ("list", "log"):
        return None
    json_out = False
    repo = "."
    positional: list[str] = []
    rest = list(args[1:])
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg == "--json":
            json_out = True
        elif arg in ("--repo", "-C"):
            if index + 1 >= len(rest):
                return None
            index += 1
            repo = rest[index]
        elif arg.startswith("--repo="):
            repo = arg.removeprefix("--repo=")
        elif arg == "--":
            positional.extend(rest[index + 1 :])
            break
        elif arg.startswith("-"):
            return None  # --help, -h, an unknown option: typer's business
        else:
            positional.append(arg)
        index += 1
    if args[0] == "list" and not positional:
        return "list", {"json_out": json_out, "repo": repo}
    if args[0] == "log" and len(positional) == 1:
        return "log", {"prompt_id": positional[0], "json_out": json_out, "repo": repo}
    return None


def run(args: Sequence[str]) -> bool:
    """Run ``args`` here when they have a plain shape; False means: hand them to typer."""
    if os.environ.get("PROMPTCTL_NO_FASTPATH"):
        return False
    parsed = parse(args)
    if parsed is None:
        return False
    from promptctl.cli import registry_views

    command, kwargs = parsed
    if command == "list":
        registry_views.list_prompts(**kwargs)
    else:
        registry_views.log_prompt(**kwargs)
    return True

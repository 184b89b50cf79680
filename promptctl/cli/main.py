"""Entry point: builds the typer app from the command modules and maps errors to exit codes in one place.

Command modules import only typer and the standard library at module level, so ``promptctl --help``
stays fast; each command imports the core (and rich, GitPython, DuckDB...) when it runs.
"""

from __future__ import annotations

import importlib
import sys

import typer

COMMAND_MODULES = (
    "promptctl.cli.registry_cmds",
    "promptctl.cli.provenance_cmds",
)

app = typer.Typer(
    name="promptctl",
    help="Prompts versioned like code in Git; every trace says which prompt produced it.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain click help: keeps `promptctl --help` fast (rich loads lazily)
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PromptctlError becomes one line on stderr and its exit code, never a traceback."""
    from promptctl.errors import PromptctlError

    try:
        app(args=argv, prog_name="promptctl", standalone_mode=False)
    except PromptctlError as exc:
        sys.stderr.write(f"promptctl: error: {exc.message}\n")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("promptctl: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # click's own usage errors and aborts
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.stderr.write("promptctl: aborted\n")
            sys.exit(130)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise
    sys.exit(0)


if __name__ == "__main__":
    main()

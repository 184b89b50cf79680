"""Entry point: builds the typer app from the command modules and maps errors to exit codes in one place.

Command modules import only typer and the standard library at module level, so ``promptctl --help``
stays fast; each command imports the core (and rich, GitPython, DuckDB...) when it runs. The app itself is
built on first use (``app`` below), so ``promptctl list`` / ``log`` can run without typer (``fastpath``).
"""

from __future__ import annotations

import importlib
import sys

COMMAND_MODULES = (
    "promptctl.cli.registry_cmds",
    "promptctl.cli.provenance_cmds",
    "promptctl.cli.channel_cmds",
    "promptctl.cli.eval_cmds",
    "promptctl.cli.runtime_cmds",
    "promptctl.cli.check_cmds",
    "promptctl.cli.fleet_cmds",
    "promptctl.cli.drift_cmds",
)

_app = None


def build_app():
    """The typer app with every command module registered (built once)."""
    global _app
    if _app is None:
        import typer

        app = typer.Typer(
            name="promptctl",
            help="Prompts versioned like code in Git; every trace says which prompt produced it.",
            no_args_is_help=True,
            rich_markup_mode=None,  # plain click help: keeps `promptctl --help` fast (rich loads lazily)
            add_completion=False,
            pretty_exceptions_enable=False,
            context_settings={"help_option_names": ["-h", "--help"]},
        )
        for module in COMMAND_MODULES:
            importlib.import_module(module).register(app)
        _app = app
    return _app


def __getattr__(name: str):
    if name == "app":  # `from promptctl.cli.main import app` keeps working
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error becomes one line on stderr and a documented exit code, never a traceback.

    PromptctlError carries its own code (docs/design.md); usage errors from the argument parser exit 2;
    anything unexpected is a bug: one line and exit 70 (``PROMPTCTL_DEBUG=1`` shows the traceback).
    """
    from promptctl.cli import fastpath

    args = sys.argv[1:] if argv is None else list(argv)
    code = 0
    try:
        if not fastpath.run(args):  # `list` / `log` in their plain forms run without importing typer
            from promptctl.cli import coercion

            coercion.install()  # plain parameters skip typer's pydantic coercion (hundreds of ms per run)
            # With standalone_mode=False click *returns* the code of a `raise typer.Exit(n)` instead of raising.
            code = build_app()(args=args, prog_name="promptctl", standalone_mode=False)
    except BaseException as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        sys.exit(_exit_code_for(exc))
    _flush_stdout()
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"promptctl: error: {message}\n")
    return code


def _exit_code_for(exc: BaseException) -> int:
    import os

    from promptctl.errors import PromptctlError

    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else _fail(str(exc.code), 1)
    if isinstance(exc, PromptctlError):
        _flush_stdout()
        return _fail(_one_line(exc.message), int(exc.exit_code))
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("promptctl: interrupted\n")
        return 130
    if isinstance(exc, BrokenPipeError):  # `promptctl list | head`: the reader went away, not an error of ours
        _silence_stdout()
        return 0
    import typer

    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        sys.stderr.write("promptctl: aborted\n")
        return 130
    usage = _usage_error(exc)
    if usage is not None:
        return usage
    if os.environ.get("PROMPTCTL_DEBUG"):
        raise exc
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return _fail(f"{where}{exc.strerror or exc}", 7)
    return _fail(
        f"internal error: {type(exc).__name__}: {_one_line(str(exc))} (a bug; PROMPTCTL_DEBUG=1 shows the traceback)",
        70,
    )


def _usage_error(exc: BaseException) -> int | None:
    """Argument parser errors (typer vendors click; older versions use click itself) as one line, exit 2."""
    message = getattr(exc, "format_message", None)
    code = getattr(exc, "exit_code", None)
    if not callable(message) or not isinstance(code, int):
        return None
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stdout.write(ctx.get_help() + "\n")  # `promptctl` alone: the help, like --help
        return 0
    text = _one_line(message())
    if ctx is not None and code == 2:
        text += f" (see '{ctx.command_path} --help')"
    return _fail(text, code)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip()) or "unknown error"


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()

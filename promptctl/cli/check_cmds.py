"""Check commands for CI and pre-commit: verify (integrity + render checks) and lint (hygiene).

Both print one line per problem (``<file>[:<line>]: <code> <message>``) and a summary, or ``--json``; exit 0
when clean, 1 when problems were found, 2 on a usage error.
"""

from __future__ import annotations

import typer

from promptctl.cli.registry_cmds import JSON_OPTION, REPO_OPTION

PROGRESS_MIN_ITEMS = 200  # runs shorter than this never show a progress bar

IDS_ARGUMENT = typer.Argument(None, metavar="[ID]...", help="Prompts to check (default: the whole registry).")
PROGRESS_OPTION = typer.Option(
    None,
    "--progress/--no-progress",
    help="Progress bar on stderr (default: only when stderr is a terminal and the run is long).",
    show_default=False,
)


class ProgressBar:
    """A rich progress bar on stderr, started lazily. By default only when stderr is a terminal and a phase
    has at least ``PROGRESS_MIN_ITEMS`` items; ``--progress`` always, ``--no-progress`` never. Never stdout."""

    def __init__(self, enabled: bool | None):
        import sys

        self.min_items = PROGRESS_MIN_ITEMS if enabled is None else 0  # --progress: whatever the size
        if enabled is None:
            try:
                enabled = sys.stderr.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self._bar = None
        self._tasks: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled or (self._bar is None and total < self.min_items):
            return
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from promptctl.cli.output import console

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console(stderr=True),
                transient=True,
            )
            self._bar.start()
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._bar.add_task(phase, total=total)
        self._bar.update(task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


_SINGULAR = {"prompts": "prompt", "versions": "version", "channels": "channel", "bodies": "body"}


def _counted(n: int, what: str) -> str:
    """``1 prompt``, ``6 versions``, ``1 body rendered`` from a ``checked`` key such as ``bodies_rendered``."""
    noun, _, rest = what.partition("_")
    if n == 1:
        noun = _SINGULAR.get(noun, noun)
    return " ".join(filter(None, (str(n), noun, rest.replace("_", " "))))


def _print_report(command: str, report, json_out: bool) -> None:
    from promptctl.cli.output import emit_json, say

    if json_out:
        emit_json(report.to_json())
        return
    for problem in report.problems:
        where = problem.location()
        say(f"{where}: {problem.code} {problem.message}" if where else f"{problem.code} {problem.message}")
    checked = report.checked
    scope = ", ".join(_counted(n, what) for what, n in checked.items() if what != "ignored_rules")
    if report.ok:
        say(f"{command}: ok ({scope})")
    else:
        counts = []
        if report.errors:
            counts.append(f"{report.errors} error{'s' if report.errors != 1 else ''}")
        if report.warnings:
            counts.append(f"{report.warnings} warning{'s' if report.warnings != 1 else ''}")
        say(f"{command}: {' and '.join(counts)} ({scope})")


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(
        prompt_ids: list[str] = IDS_ARGUMENT,
        all_versions: bool = typer.Option(
            False, "--all-versions", help="Also render-check every version, not only the working tree."
        ),
        progress: bool | None = PROGRESS_OPTION,
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Integrity (version tags, channels, audit log, signatures) and render checks; exit 1 on any problem."""
        from promptctl.registry import PromptRepo
        from promptctl.verify import verify as run_verify

        r = PromptRepo.open(repo)
        bar = ProgressBar(progress)
        try:
            report = run_verify(r, prompt_ids or None, all_versions=all_versions, progress=bar)
        finally:
            bar.close()
            r.close()
        _print_report("verify", report, json_out)
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    def lint(
        prompt_ids: list[str] = IDS_ARGUMENT,
        ignore: list[str] = typer.Option(
            [], "--ignore", help="Rule codes to skip, e.g. --ignore PC105,PC107 (adds to lint.ignore in promptctl.yaml)."
        ),
        rules: bool = typer.Option(False, "--rules", help="List every rule (verify and lint) and exit."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Style and hygiene of the working-tree prompts: unused or undeclared inputs, missing owner...; exit 1
        on any finding."""
        from promptctl.cli.output import emit_json, table
        from promptctl.lint import lint as run_lint
        from promptctl.registry import PromptRepo
        from promptctl.verify import RULES

        if rules:
            listed = sorted(RULES.values(), key=lambda rule: rule.code)
            if json_out:
                emit_json([{"code": x.code, "rule": x.name, "severity": x.severity, "summary": x.summary} for x in listed])
            else:
                table(None, ["code", "rule", "severity", "checked by", "what it finds"], [
                    (x.code, x.name, x.severity, "lint" if x.code.startswith("PC1") and x.code != "PC102" else
                     ("verify, lint" if x.code == "PC102" else "verify"), x.summary)
                    for x in listed
                ])
            return
        r = PromptRepo.open(repo)
        try:
            report = run_lint(r, prompt_ids or None, ignore=ignore)
        finally:
            r.close()
        _print_report("lint", report, json_out)
        if not report.ok:
            raise typer.Exit(1)

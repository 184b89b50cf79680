"""Runtime commands: export (no-git serving) and schema (the span attribute presets)."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        directory: str = typer.Argument(..., metavar="DIR", help="Directory to write (created when missing)."),
        channel: list[str] = typer.Option(
            ..., "--channel", "-c", help="Channel to export (repeatable; the first is the default one served)."
        ),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Write what channels serve, plus a manifest, for promptctl.Registry(DIR) to serve without Git."""
        from promptctl.cli.output import emit_json, say
        from promptctl.errors import NotAGitRepository
        from promptctl.gitstore import toplevel
        from promptctl.registry import PromptRepo
        from promptctl.runtime.exportsource import write_export
        from promptctl.spec import validate_channel

        channels = [validate_channel(c) for c in channel]
        try:
            root = toplevel(repo)
        except NotAGitRepository:
            raise
        PromptRepo.open(root)  # a registry must be there (NoRegistry otherwise)
        manifest = write_export(root, channels, directory)
        if json_out:
            emit_json(manifest)
            return
        for prompt_id, entry in sorted(manifest["prompts"].items()):
            for name, state in entry["channels"].items():
                serves = ",".join(
                    s["version"] if s["percent"] == 100 else f"{s['version']}:{s['percent']}" for s in state["serves"]
                )
                say(f"{prompt_id}@{name}  {serves}")
        say(f"exported {len(manifest['prompts'])} prompt(s) to {directory}")

    @app.command()
    def schema(
        preset: str | None = typer.Argument(None, metavar="[PRESET]", help="One preset (default: all)."),
        json_out: bool = JSON_OPTION,
    ) -> None:
        """The span attributes each schema preset writes (generated from the code)."""
        from promptctl.cli.output import emit_json, table
        from promptctl.errors import UsageError
        from promptctl.runtime.presets import PRESETS, schema_table

        names = list(PRESETS)
        if preset is not None:
            if preset not in PRESETS:
                raise UsageError(f"unknown schema preset {preset!r}: use one of {', '.join(PRESETS)}")
            names = [preset]
        if json_out:
            emit_json({name: schema_table(name) for name in names})
            return
        for name in names:
            rows = schema_table(name)
            table(
                f"preset {name}" + (" (default)" if name == "prompt" else ""),
                ["attribute", "type", "when", "description"],
                [(r["attribute"], r["type"], r["when"], r["description"]) for r in rows],
            )

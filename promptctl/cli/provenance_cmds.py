"""Provenance commands: which (hash -> versions), blame (a channel at a moment), conform (spans vs registry)."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)


def _open(repo: str):
    from promptctl.registry import PromptRepo

    return PromptRepo.open(repo)


def _date(iso: str | None) -> str:
    return iso[:19].replace("T", " ") + iso[19:].replace("+00:00", "Z") if iso else "-"


def _print_matches(matches, query: str, json_out: bool, ambiguous: bool) -> None:
    from promptctl.cli.output import console, emit_json, table

    if json_out:
        emit_json({"query": query, "ambiguous": ambiguous, "matches": [m.to_json() for m in matches]})
        return
    if ambiguous:
        table(
            f"{query} matches different contents",
            ["tag", "template hash", "date", "author"],
            [(m.version.tag, m.version.template_hash, _date(m.version.created_at), m.version.author) for m in matches],
        )
        return
    out = console()
    out.print(f"template hash {matches[0].version.template_hash}", markup=False)
    if len(matches) > 1:
        out.print(f"released {len(matches)} times: {', '.join(m.version.tag for m in matches)}", markup=False)
    for m in matches:
        v = m.version
        out.print(f"\n[bold]{v.tag}[/bold]")
        for label, value in (
            ("prompt", v.prompt_id),
            ("version", v.version),
            ("commit", v.commit),
            ("author", v.author),
            ("date", _date(v.created_at)),
            ("message", (v.message.splitlines() or [""])[0]),
        ):
            out.print(f"  {label:<8} {value}", markup=False)
        files = list(m.files) or ["-"]
        out.print(f"  {'files':<8} {files[0]}", markup=False)
        for name in files[1:]:
            out.print(f"  {'':<8} {name}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def which(
        template_hash: str = typer.Argument(..., metavar="HASH", help="A template hash: 8-64 hex digits (spans carry 12)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Which prompt versions recorded this template hash (id, version, tag, commit, author, date, files)."""
        from promptctl.errors import AmbiguousHash
        from promptctl.provenance.which import normalize_query
        from promptctl.provenance.which import which as find

        r = _open(repo)
        query = normalize_query(template_hash)
        try:
            matches = find(r, query)
        except AmbiguousHash as exc:
            _print_matches(exc.candidates, query, json_out, ambiguous=True)
            raise
        _print_matches(matches, query, json_out, ambiguous=False)

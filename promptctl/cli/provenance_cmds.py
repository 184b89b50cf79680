"""Provenance commands: which (hash -> versions), blame (a channel at a moment), conform (spans vs registry)."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)
MALFORMED_NAMED = 3  # malformed span lines named on stderr; the count covers the rest


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


def _move_line(entry) -> str:
    from promptctl.model import serves_text

    return f"{entry.action} {serves_text(entry.from_serves)} -> {serves_text(entry.serves)}"


def _print_blame(states) -> None:
    from promptctl.cli.output import console
    from promptctl.provenance.blame import format_moment

    out = console()
    for index, state in enumerate(states):
        if index:
            out.print()
        head = f"{state.prompt_id}@{state.channel} at {format_moment(state.at)}"
        first = state.first_move
        if state.move is None:
            out.print(f"[bold]{head}[/bold]: nothing yet", highlight=False)
            out.print(
                f"  the channel had not moved yet: its first move was at {first.at} "
                f"({_move_line(first)} by {first.author})",
                markup=False,
            )
            continue
        move = state.move
        out.print(f"[bold]{head}[/bold]", highlight=False)
        serves = ", ".join(
            f"{s.version} {s.percent}% ({s.template_hash[:12] or '-'})" for s in state.serves
        )
        lines = [
            ("serves", serves),
            ("since", f"{move.at}  {_move_line(move)}"),
            ("by", move.author),
            ("reason", move.reason or "-"),
            ("commit", move.commit),
            ("until", f"{state.next_move.at}  {_move_line(state.next_move)}" if state.next_move else "still in force"),
        ]
        for label, value in lines:
            out.print(f"  {label:<7} {value}", markup=False)


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

    @app.command()
    def blame(
        prompt_id: str = typer.Argument(..., metavar="ID"),
        at: str = typer.Option(
            "now",
            "--at",
            help="The moment: ISO 8601 with a zone (2026-11-20T14:05:00Z), '3 hours ago', 'yesterday', '@<unix>'.",
        ),
        channel: str | None = typer.Option(None, "--channel", "-c", help="One channel (default: every channel)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """What a channel served at a moment: version, rollout split, the move that set it, who and why."""
        from promptctl.cli.output import emit_json
        from promptctl.provenance.blame import blame as blame_at
        from promptctl.provenance.blame import parse_moment

        moment = parse_moment(at)
        r = _open(repo)
        states = blame_at(r, prompt_id, moment, channel)
        if json_out:
            emit_json([s.to_json() for s in states])
            return
        _print_blame(states)

    @app.command()
    def conform(
        paths: list[str] = typer.Argument(None, metavar="[FILE]...", help="Span files (OTLP/JSON lines)."),
        spans: list[str] = typer.Option([], "--spans", help="Span files; a shell glob may follow it (repeatable)."),
        grace: str | None = typer.Option(
            None, "--grace", help="How long after a move the previous version is still ok (default: the loader's TTL, 5s)."
        ),
        strict: bool = typer.Option(False, "--strict", help="Fail on the first malformed span line instead of skipping it."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Did each channel serve what the registry said, when it said it? Exit 1 on any finding."""
        from promptctl.cli.output import emit_json, note
        from promptctl.errors import UsageError
        from promptctl.provenance.conform import conform as run_conform
        from promptctl.provenance.conform import parse_duration

        files = list(dict.fromkeys([*spans, *(paths or [])]))  # globs are expanded by the span reader
        if not files:
            raise UsageError("no span files: give them with --spans FILE... (OTLP/JSON lines)")
        grace_seconds = parse_duration(grace) if grace is not None else None
        r = _open(repo)
        report = run_conform(r, files, grace_seconds=grace_seconds, strict=strict)
        if report.malformed:
            named = report.malformed_examples[:MALFORMED_NAMED]  # a few examples, not a screenful
            for line in named:
                note(f"promptctl: skipped malformed span line {line}")
            more = report.malformed - len(named)
            note(
                f"promptctl: skipped {report.malformed} malformed span line{'s' if report.malformed != 1 else ''}"
                + (f" ({more} not named)" if more > 0 else "")
                + "; --strict fails instead"
            )
        if not report.channels_moved:
            note("promptctl: no channel has moved yet in this repository: spans that name a channel cannot conform")
        if json_out:
            emit_json(report.to_json())
        else:
            _print_conform(report)
        if report.problems:
            raise typer.Exit(1)


def _span_label(ref) -> str:
    return f"span {ref.span_id} trace {ref.trace_id} at {ref.start_time} ({ref.file}:{ref.line})"


def _print_conform(report) -> None:
    from rich.text import Text

    from promptctl.cli.output import console, table
    from promptctl.provenance.conform import KINDS

    out = console()
    files = len(report.files)
    out.print(
        f"{report.spans} spans in {files} file{'s' if files != 1 else ''}, grace {report.grace_seconds:g}s",
        markup=False,
    )
    rows = sorted(report.rows, key=lambda r: (r.prompt_id, r.channel or "", r.version or ""))
    table(
        None,
        ["prompt", "channel", "version", "spans", *KINDS],
        [
            (r.prompt_id, r.channel or "-", r.version or "-", r.total, *(r.counts.get(k, 0) or "" for k in KINDS))
            for r in rows
        ],
    )
    if report.no_prompt:
        example = f" (e.g. {_span_label(report.no_prompt_examples[0])})" if report.no_prompt_examples else ""
        out.print(f"no prompt attributes: {report.no_prompt} span{'s' if report.no_prompt != 1 else ''}{example}", markup=False)
    for finding in report.findings:
        where = f"{finding.prompt_id}@{finding.channel}" if finding.channel else finding.prompt_id
        served = f" ({finding.template_hash})" if finding.template_hash else ""
        out.print()
        # prompt ids, versions and hashes come from span files: text, never rich markup
        out.print(
            Text(finding.kind.upper(), style="bold").append(
                f" {where} {finding.version or '-'}{served}: "
                f"{finding.count} span{'s' if finding.count != 1 else ''}, {finding.first_seen} .. {finding.last_seen}",
                style="",
            ),
            highlight=False,
        )
        out.print(f"  {finding.detail}", markup=False)
        if finding.loader_stale:
            out.print(
                f"  {finding.loader_stale} of them carried prompt.stale: the loader could not re-read the registry",
                markup=False,
            )
        for ref in finding.examples:
            out.print(f"  e.g. {_span_label(ref)}", markup=False)
    out.print()
    if report.problems:
        counts = ", ".join(f"{report.count(k)} {k}" for k in ("stale", "unregistered", "unserved") if report.count(k))
        out.print(Text("does not conform", style="bold").append(f": {counts}", style=""), highlight=False)
    else:
        out.print("conforms: every span with prompt attributes served what the registry said, when it said it", markup=False)

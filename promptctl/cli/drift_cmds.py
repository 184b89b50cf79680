"""drift: per-version score drift on exported spans (DuckDB) or otel_traces (ClickHouse), with a rollback gate."""

from __future__ import annotations

import typer

from promptctl.cli.registry_cmds import JSON_OPTION, REPO_OPTION


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _metadata_lookup(repo):
    """(prompt, version) -> prompt.yaml mapping; one batched read of all versions of a prompt on first use."""
    from promptctl.drift.gate import version_metadata

    loaded: dict[str, dict] = {}

    def lookup(prompt_id: str, version: str):
        if repo is None:
            return None
        if prompt_id not in loaded:
            try:
                versions = [v.version for v in repo.versions(prompt_id)]
            except Exception:  # an id the registry does not hold (or cannot read): defaults apply
                versions = []
            loaded[prompt_id] = {
                k[1]: v for k, v in version_metadata(repo, [(prompt_id, v) for v in versions]).items()
            }
        return loaded[prompt_id].get(version)

    return lookup


def register(app: typer.Typer) -> None:
    @app.command()
    def drift(
        paths: list[str] = typer.Argument(
            None, metavar="[SPANS]...", help="Span files or globs (OTLP/JSON lines).", show_default=False
        ),
        spans: list[str] = typer.Option(
            None,
            "--spans",
            help="Span files or globs; repeatable (the shell may expand a glob into more arguments).",
            show_default=False,
        ),
        window: str = typer.Option("1h", "--window", help="Rolling window: 30m, 1h, 1h30m, 1d."),
        baseline: str = typer.Option(
            "24h",
            "--baseline",
            help="The same version over this span before the window (24h), or 'previous[:24h]': the previous version over its last 24h.",
        ),
        by: str = typer.Option(
            "",
            "--by",
            help="Slice by these dimensions, comma-separated: tier, locale, channel, variant, fallback, service.",
        ),
        until: str = typer.Option(
            None,
            "--until",
            help="End of the window (ISO 8601 with a zone, or '3 hours ago'); default: the latest span.",
            show_default=False,
        ),
        prompt: list[str] = typer.Option(
            None, "--prompt", "-p", help="Only this prompt id; repeatable.", show_default=False
        ),
        drop: float = typer.Option(
            0.05,
            "--drop",
            help="Default alert threshold: a drop in mean score (prompt.yaml drift: overrides it per rubric).",
        ),
        min_samples: int = typer.Option(
            50, "--min-samples", help="Default minimum spans in the window and in the baseline."
        ),
        score_pattern: str = typer.Option(
            "eval.score.*",
            "--score-pattern",
            help="Numeric span attributes that are scores; the rubric is the rest of the name.",
        ),
        strict: bool = typer.Option(
            False,
            "--strict",
            help="Fail on the first malformed span line instead of skipping it (also checks the lines before the period).",
        ),
        plot: str = typer.Option(
            None,
            "--plot",
            help="Write a PNG: rolling mean per version, thresholds, channel moves.",
            show_default=False,
        ),
        clickhouse: str = typer.Option(
            None,
            "--clickhouse",
            help="Run the analysis in ClickHouse over HTTP, e.g. http://localhost:8123.",
            show_default=False,
        ),
        table_name: str = typer.Option(
            "otel_traces", "--table", help="ClickHouse table in the Collector exporter's schema."
        ),
        rollback: bool = typer.Option(
            False,
            "--rollback",
            help="Show which channel serves each drifting version and what rollback would do (dry run).",
        ),
        apply: bool = typer.Option(
            False,
            "--apply",
            help="With --rollback: perform the rollbacks (audited, like 'promptctl rollback').",
        ),
        reason: str = typer.Option(
            "", "--reason", "-r", help="Why (recorded in the audit log; required on protected channels)."
        ),
        sign: bool = typer.Option(
            None,
            "--sign/--no-sign",
            help="Sign the rollback state commits (default: the channel's rule).",
            show_default=False,
        ),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Per-version drift of eval scores: the rolling mean over --window against a baseline, per rubric and slice.

        Exit 1 when an alert fires. Thresholds come from each version's prompt.yaml (drift: {rubric: {drop,
        min_samples}}), else --drop / --min-samples. With --rollback, the channels serving a drifting version are
        shown; --apply --reason rolls them back through the audited path.
        """
        from promptctl.cli.output import emit_json, note, table
        from promptctl.drift.analysis import Baseline, DriftOptions, analyse, format_span, iso_us, parse_span
        from promptctl.errors import ExitCode, PromptctlError, UsageError

        files = [*(paths or []), *(spans or [])]
        if apply and not rollback:
            raise UsageError(
                "--apply performs the rollbacks of --rollback: use --rollback --apply --reason '...'"
            )
        if clickhouse and files:
            raise UsageError("give span files or --clickhouse URL, not both")
        if not clickhouse and not files:
            raise UsageError(
                "no spans: give span files (promptctl drift --spans 'traces/*.jsonl') or --clickhouse URL"
            )
        moment = None
        if until:
            from promptctl.provenance.blame import parse_moment

            moment = parse_moment(until)
        options = DriftOptions(
            window_s=parse_span(window, "--window"),
            baseline=Baseline.parse(baseline),
            by=tuple(d.strip() for d in by.split(",") if d.strip()),
            until=moment,
            prompt_ids=tuple(prompt or ()),
            default_drop=drop,
            default_min_samples=min_samples,
        )

        registry = None
        try:
            from promptctl.registry import PromptRepo

            registry = PromptRepo.open(repo)
        except PromptctlError as exc:
            if rollback:
                raise
            if not json_out:
                note(
                    f"note: no registry ({exc.message}); thresholds are the defaults (--drop {drop:g}, --min-samples {min_samples})"
                )

        if plot:  # matplotlib's imports overlap the load (DuckDB's queries and the HTTP calls release the GIL)
            import threading

            from promptctl.drift.plot import preload

            threading.Thread(target=preload, name="promptctl-plot-preload", daemon=True).start()

        load = None
        if clickhouse:
            from promptctl.drift.engines import ClickHouseEngine, http_transport

            engine = ClickHouseEngine(http_transport(clickhouse), table_name, score_pattern)
            source = {"clickhouse": clickhouse, "table": table_name}
        else:
            import duckdb

            from promptctl.drift.engines import load_for_drift

            con = duckdb.connect()
            load, engine = load_for_drift(
                con, files, options, score_pattern=score_pattern, strict=strict, whole_range=bool(plot)
            )
            source = load.to_json()

        report = analyse(engine, options, _metadata_lookup(registry))
        report.input = source

        plans = []
        if rollback and report.alerts:
            from promptctl.drift.gate import apply_rollbacks, plan_rollbacks

            plans = plan_rollbacks(registry, report.alerts)
            if apply:
                plans = apply_rollbacks(registry, plans, reason, sign)

        plotted = None
        if plot:
            from promptctl.drift.analysis import rolling_series
            from promptctl.drift.plot import draw

            moves = []
            if registry is not None:
                from promptctl.channels import ChannelStore

                store = ChannelStore(registry)
                for prompt_id in sorted({r.prompt_id for r in report.rows}):
                    try:
                        moves.extend(store.history(prompt_id))
                    except PromptctlError:
                        pass
            plotted = draw(plot, report, rolling_series(engine, report), moves)

        if json_out:
            data = report.to_json()
            if rollback:
                data["rollback"] = {"applied": apply, "plans": [p.to_json() for p in plans]}
            if plotted:
                data["plot"] = plotted
            emit_json(data)
        else:
            _print_report(report, load, note, table, format_span, iso_us)
            if rollback:
                _print_rollbacks(report, plans, apply, load, note, table)
            if plotted:
                note(f"wrote {plotted}")

        failed = [p for p in plans if p.error_code]
        if failed:
            raise typer.Exit(failed[0].error_code)
        if report.alerts:
            raise typer.Exit(int(ExitCode.PROBLEMS))


def _print_report(report, load, note, table, format_span, iso_us) -> None:
    options = report.options
    if load is not None:
        summary = (
            f"read {load.spans:,} spans from {len(load.files)} file{'s' if len(load.files) != 1 else ''}"
        )
        if load.since_ns is not None:
            summary += (
                f" (those after {iso_us(load.since_ns // 1000)}: the window and baseline; "
                f"{load.lines_parsed:,} of {load.lines:,} lines parsed)"
            )
        if load.spans_without_version:
            summary += f"; {load.spans_without_version:,} without prompt.version (not analysed)"
        note(summary)
        if load.malformed_lines:
            note(
                f"skipped {load.malformed_lines} malformed line{'s' if load.malformed_lines != 1 else ''} (use --strict to fail instead):"
            )
            for item in load.malformed[:5]:
                note(f"  {item}")
            if load.malformed_lines > 5:
                note(f"  ... and {load.malformed_lines - 5} more (--json lists {len(load.malformed)})")
    if report.now_us is None:
        note("no scored spans with prompt.id and prompt.version: nothing to analyse")
        return
    note(
        f"window {format_span(options.window_s)} up to {iso_us(report.now_us)}; "
        f"baseline {options.baseline.label()}{'; by ' + ','.join(options.by) if options.by else ''}"
    )
    rows = [
        (
            r.status.upper() if r.status == "alert" else r.status,
            r.prompt_id,
            r.version,
            r.slice_text(),
            r.rubric,
            f"{r.current_mean:.3f} ({r.current_n})",
            "-"
            if r.baseline_mean is None
            else f"{r.baseline_mean:.3f} ({r.baseline_n}, {r.baseline_version})",
            "-" if r.drop is None else f"{round(-r.drop, 3) + 0.0:+.3f}",  # + 0.0: no "-0.000"
            f"{r.threshold.drop:g} / n>={r.threshold.min_samples}"
            + ("" if r.threshold.source == "default" else " *"),
        )
        for r in report.rows
    ]
    table(
        None,
        [
            "status",
            "prompt",
            "version",
            "slice",
            "rubric",
            "window mean (n)",
            "baseline mean (n, version)",
            "change",
            "threshold",
        ],
        rows,
    )
    alerts = report.alerts
    if alerts:
        note(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}: " + "; ".join(
            f"{a.prompt_id} {a.version} {a.slice_text()} {a.rubric} fell {a.drop:.3f}" for a in alerts[:5]
        ) + (" ..." if len(alerts) > 5 else ""))  # fmt: skip
    else:
        note("no alert (* = threshold from the version's prompt.yaml)")


def _print_rollbacks(report, plans, apply, load, note, table) -> None:
    if not report.alerts:
        note("rollback: no alert, nothing to roll back")
        return
    if not plans:
        note("rollback: no channel serves a drifting version (nothing to roll back)")
        return
    rows = []
    for p in plans:
        if apply:
            if p.applied is not None:
                outcome = f"rolled back -> {p.target} (audit {p.applied.commit[:12]})"
            elif p.blocked:
                outcome = f"not rolled back: {p.blocked}"
            else:
                outcome = f"refused: {p.error}"
        else:
            outcome = f"would roll back to {p.target}" if p.target else f"cannot roll back: {p.blocked}"
        rules = (
            ", ".join(
                x for x in ("protected" if p.protected else "", "signed" if p.requires_signature else "") if x
            )
            or "-"
        )
        rows.append((f"{p.prompt_id}@{p.channel}", p.version, p.serves, rules, outcome))
    table(None, ["channel", "drifting", "serves now", "rules", "rollback"], rows)
    if not apply and not any(p.target for p in plans):
        note(
            "dry run: nothing changed; no channel can be rolled back automatically (see 'promptctl rollback --to')"
        )
        return
    if not apply:
        extra = ""
        if load is not None and load.partial:
            extra = f" (partial data: {load.malformed_lines} malformed lines were skipped)"
        note(f"dry run: nothing changed{extra}; to roll back: add --apply --reason '...'")

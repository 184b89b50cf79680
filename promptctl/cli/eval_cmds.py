"""Eval commands: ``eval run`` (replay an eval set through the runtime resolver, compare, gate) and
``eval show`` (the report of a results directory, or two against each other)."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", metavar="DIR", help="The Git repository holding the registry.", show_default=False)

eval_app = typer.Typer(
    name="eval",
    help="Replay an eval set through the production resolver; compare two versions; gate CI.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("run")
def run(
    eval_file: str = typer.Argument(..., metavar="EVAL_FILE", help="The eval set: a .yaml/.yml file, or .jsonl (see docs/eval.md)."),
    prompt: str = typer.Option(..., "--prompt", "-p", metavar="SPEC", help="The version under test: id@v24, id@<channel>, or id (latest)."),
    baseline: str = typer.Option(None, "--baseline", "-b", metavar="SPEC", help="The version to compare with, e.g. id@current."),
    target: str = typer.Option(..., "--target", "-t", metavar="MODULE:FUNCTION", help="Your function, module:function, called as f(prompt, item)."),
    target_path: list[str] = typer.Option(
        [], "--target-path", metavar="DIR", help="Directory to import --target (and custom rubrics) from; repeatable. Default: the current directory."
    ),
    rubric: list[str] = typer.Option(
        [], "--rubric", "-r", metavar="RUBRIC", help="[NAME=]KIND[:ARG], repeatable; replaces the file's rubrics (e.g. exact_match, short=length:..40)."
    ),
    rubrics_file: str = typer.Option(None, "--rubrics", metavar="FILE", help="A YAML file holding a rubrics list; replaces the file's rubrics."),
    concurrency: int = typer.Option(1, "--concurrency", "-j", min=1, metavar="N", help="Items run at the same time (threads)."),
    timeout: float = typer.Option(None, "--timeout", metavar="SECONDS", help="Seconds per item; a slower item is recorded as failed."),
    gate: float = typer.Option(
        None, "--gate", min=0.0, metavar="D", help="Exit 1 when, on any rubric, candidate mean - baseline mean < -D."
    ),
    out: str = typer.Option(None, "--out", "-o", metavar="DIR", help="Directory for results.jsonl (per item, written as it goes) and summary.json."),
    spans: str = typer.Option(None, "--spans", metavar="FILE", help="Write the run's spans to this file as OTLP JSON lines."),
    tag: list[str] = typer.Option([], "--tag", metavar="TAG", help="Only items carrying this tag; repeatable (any of them)."),
    limit: int = typer.Option(None, "--limit", min=1, metavar="N", help="Only the first N items."),
    resamples: int = typer.Option(2000, "--resamples", min=100, metavar="N", help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Bootstrap seed (same seed, same intervals)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (it is shown only on a terminal)."),
    as_json: bool = JSON_OPTION,
    repo: str = REPO_OPTION,
) -> None:
    """Run every item through the runtime resolver with the version pinned, score it, compare, gate."""
    import os
    import sys

    from promptctl.errors import UsageError
    from promptctl.eval.evalset import filter_items, load_evalset
    from promptctl.eval.runner import resolve_side
    from promptctl.eval.scorers import add_import_paths, build_scorers, load_function

    if gate is not None and baseline is None:
        raise UsageError("--gate needs --baseline (the version the candidate must not fall behind)")
    evalset = load_evalset(eval_file, rubric, rubrics_file)
    if tag or limit is not None:
        evalset = filter_items(evalset, tag, limit)
    sides = [resolve_side(repo, "candidate", prompt)]
    if baseline is not None:
        sides.append(resolve_side(repo, "baseline", baseline))
        if sides[1].prompt_id != sides[0].prompt_id:
            raise UsageError(f"--baseline names {sides[1].prompt_id} but --prompt names {sides[0].prompt_id}; compare one prompt")
    if evalset.prompt is not None and evalset.prompt != sides[0].prompt_id:
        raise UsageError(f"{evalset.path} is an eval set for {evalset.prompt}, not {sides[0].prompt_id}")

    add_import_paths(target_path or [os.getcwd()])
    target_function = load_function(target, what="--target")
    scorers = build_scorers(evalset.rubrics, evalset.base_dir)

    import promptctl

    registry = promptctl.Registry(repo, ttl=3600.0)
    provider = None
    if spans:
        provider = _span_provider(spans)
    writer = None
    if out:
        from promptctl.eval.results import ResultsWriter

        writer = ResultsWriter(out)
    try:
        outcome, report, verdict = _run(
            evalset, sides, target, target_function, scorers, registry, provider, writer,
            concurrency=concurrency, timeout=timeout, gate=gate, resamples=resamples, seed=seed,
            progress=not no_progress and sys.stderr.isatty(),
        )
    finally:
        if writer is not None:
            writer.close()
        if provider is not None:
            provider.shutdown()
        registry.close()

    from promptctl.cli.output import emit_json, note

    if outcome.interrupted:
        where = f"; results so far in {out}" if out else ""
        note(f"promptctl: interrupted after {len(outcome.rows)} of {outcome.total} item runs{where}")
        raise typer.Exit(130)
    if as_json:
        emit_json(report)
    else:
        _print_report(report, title=f"{evalset.path}: {len(evalset.items)} items, target {target}")
    for version in report["versions"]:
        if version["failed"]:
            first = version["first_error"]
            note(
                f"warning: {version['failed']} of {version['items']} items failed on {version['version']} "
                f"(scored 0); first: {first['item']}: {first['error']}"
            )
    if out and not as_json:
        from pathlib import Path

        folder = Path(out)
        note(f"results written to {folder / 'results.jsonl'} and {folder / 'summary.json'}")
    if verdict is not None and not verdict.passed:
        raise typer.Exit(1)


def _span_provider(path: str):
    """An SDK TracerProvider writing OTLP JSON lines to ``path``, instrumented, and made the global one
    (so spans the target's own instrumentation opens land in the same file, under the eval.item span)."""
    import os

    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import promptctl
    from promptctl.errors import NotWritable
    from promptctl.spans.otlp_json import OtlpJsonFileExporter

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise NotWritable(f"--spans {path}: cannot write: {exc.strerror or exc}") from None
    provider = TracerProvider(resource=Resource.create({"service.name": "promptctl-eval"}))
    # A queue far larger than the default 2,048: an eval is a burst, and a full queue drops spans.
    provider.add_span_processor(BatchSpanProcessor(OtlpJsonFileExporter(path), max_queue_size=1 << 20, max_export_batch_size=2048))
    promptctl.instrument(provider)
    trace.set_tracer_provider(provider)  # ignored (with OTel's warning) when the target already set one
    return provider


def _run(evalset, sides, target_spec, target, scorers, registry, provider, writer, *, concurrency, timeout, gate,
         resamples, seed, progress):
    from promptctl.eval.report import build_report
    from promptctl.eval.runner import EvalRunner, run_metadata

    runner = EvalRunner(
        evalset, sides, target, scorers, registry,
        concurrency=concurrency, timeout=timeout, tracer_provider=provider, writer=writer,
    )
    meta = run_metadata(
        evalset, sides, target_spec, run_id=runner.run_id, concurrency=concurrency, timeout=timeout, status="running"
    )
    if writer is not None:
        writer.write_summary(meta)
    bar = _progress_bar(f"{sides[0].pinned}" + (f" vs {sides[1].version}" if len(sides) > 1 else "")) if progress else None
    if bar is not None:
        runner.progress = bar.update
    try:
        outcome = runner.run()
    finally:
        if bar is not None:
            bar.close()
    by_role = {side.role: side for side in sides}
    baseline = by_role.get("baseline")
    report, _cells, verdict = build_report(
        outcome.rows_for("candidate"),
        outcome.rows_for("baseline") if baseline is not None else None,
        [s.name for s in scorers],
        candidate_info=by_role["candidate"].to_json(),
        baseline_info=baseline.to_json() if baseline is not None else None,
        gate_threshold=gate,
        resamples=resamples,
        seed=seed,
    )
    summary = {
        **meta,
        "status": "interrupted" if outcome.interrupted else "finished",
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "duration_s": outcome.duration_s,
        "item_runs": {"total": outcome.total, "done": len(outcome.rows)},
        **report,
    }
    if writer is not None:
        writer.write_summary(summary)
    return outcome, summary, verdict


class _ProgressBar:
    """A rich progress bar on stderr, driven from the runner's watching thread."""

    def __init__(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from promptctl.cli.output import console

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(label, total=None, failed=0)

    def update(self, done: int, failed: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total, failed=failed)

    def close(self) -> None:
        self._progress.stop()


def _progress_bar(label: str) -> _ProgressBar:
    return _ProgressBar(label)


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ci(cell: dict) -> str:
    ci = cell.get("ci95")
    return "-" if not ci else f"{ci[0]:+.3f}..{ci[1]:+.3f}"


def _table(title, columns, rows, right_from: int = 2) -> None:
    """A compact rich table on the shared console (never folded when stdout is not a terminal: CI logs).

    Cells are plain text: rubric names and slice values come from eval files and are never rich markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from promptctl.cli.output import console

    t = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left", pad_edge=False)
    for index, column in enumerate(columns):
        t.add_column(Text(str(column)), no_wrap=True, justify="right" if index >= right_from else "left")
    for row in rows:
        t.add_row(*[Text("" if cell is None else str(cell)) for cell in row])
    console().print(t)


def _print_report(report: dict, title: str) -> None:
    """Per-version, per-rubric table, then the per-slice table, then the gate verdict."""
    from promptctl.cli.output import say

    versions = {v["role"]: v for v in report["versions"]}
    cand = versions["candidate"]
    base = versions.get("baseline")
    say(title)
    for version in report["versions"]:
        where = version.get("spec") or version.get("version")
        label = f"{version['role']:<9} {where}"
        if version.get("spec") and version.get("version") and not str(where).endswith(f"@{version['version']}"):
            label += f" -> {version['version']}"
        say(
            f"  {label}  hash {version.get('template_hash') or '-'}  {version['items']} items, "
            f"{version['failed']} failed, {version['fallbacks']} served by a fallback body"
        )
    gate_info = report.get("gate")
    failing = {f["rubric"] for f in gate_info["failures"]} if gate_info else set()
    cells = report["cells"]
    overall = [c for c in cells if c["dimension"] == "all"]
    c_label = cand["version"] or "candidate"
    if base is None:
        _table(None, ["rubric", "n", c_label], [(c["rubric"], c["n_candidate"], _fmt(c["candidate"])) for c in overall], 1)
    else:
        b_label = base["version"] or "baseline"
        if b_label == c_label:
            b_label, c_label = f"{b_label} (base)", f"{c_label} (cand)"
        columns = ["rubric", "n", b_label, c_label, "diff", "95% CI"]
        if gate_info is not None:
            columns.append(f"gate {gate_info['threshold']:g}")
        rows = []
        for c in overall:
            row = [c["rubric"], c["n_paired"], _fmt(c["baseline"]), _fmt(c["candidate"]), _fmt(c["diff"], True), _ci(c)]
            if gate_info is not None:
                row.append("FAIL" if c["rubric"] in failing else "ok")
            rows.append(row)
        _table(None, columns, rows, 1)
    sliced = sorted((c for c in cells if c["dimension"] != "all"), key=lambda c: (c["dimension"], c["value"]))
    if sliced:
        if base is None:
            _table("by slice", ["slice", "rubric", "n", c_label],
                   [(c["slice"], c["rubric"], c["n_candidate"], _fmt(c["candidate"])) for c in sliced])
        else:
            _table(
                "by slice",
                ["slice", "rubric", "n", b_label, c_label, "diff", "95% CI"],
                [
                    (c["slice"], c["rubric"], c["n_paired"], _fmt(c["baseline"]), _fmt(c["candidate"]), _fmt(c["diff"], True), _ci(c))
                    for c in sliced
                ],
            )
    if gate_info is not None:
        if gate_info["passed"]:
            say(f"gate {gate_info['threshold']:g}: passed (no rubric fell by more than {gate_info['threshold']:g})")
        else:
            worst = ", ".join(f"{f['rubric']} {f['diff']:+.3f}" for f in gate_info["failures"])
            say(f"gate {gate_info['threshold']:g}: FAILED: {worst} (candidate {cand['version']} vs baseline {base['version']})")


@eval_app.command("show")
def show(
    results: str = typer.Argument(..., metavar="DIR", help="A results directory written by 'eval run --out'."),
    other: str = typer.Argument(
        None, metavar="OTHER_DIR", help="A second results directory: compare its candidate (as candidate) with the first's (as baseline)."
    ),
    gate: float = typer.Option(None, "--gate", min=0.0, metavar="D", help="Exit 1 when candidate - baseline < -D on any rubric."),
    resamples: int = typer.Option(2000, "--resamples", min=100, metavar="N", help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Bootstrap seed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the per-version, per-rubric, per-slice report of a results directory (recomputed from results.jsonl)."""
    from promptctl.cli.output import emit_json, note
    from promptctl.errors import UsageError
    from promptctl.eval.report import build_report
    from promptctl.eval.results import read_results

    first = read_results(results)
    if other is None:
        cand_rows = first.rows_for("candidate")
        base_rows = first.rows_for("baseline") or None
        cand_info, base_info = first.run_info("candidate"), first.run_info("baseline") if base_rows else None
        rubrics = first.rubrics
        title_source = results
        status = first.summary.get("status", "unknown")
    else:
        second = read_results(other)
        cand_rows, base_rows = second.rows_for("candidate"), first.rows_for("candidate")
        cand_info, base_info = {**second.run_info("candidate"), "role": "candidate"}, {**first.run_info("candidate"), "role": "baseline"}
        rubrics = [r for r in second.rubrics if r in set(first.rubrics)]
        if not rubrics:
            raise UsageError(f"{results} and {other} share no rubric; nothing to compare")
        title_source = f"{results} (baseline) vs {other} (candidate)"
        status = second.summary.get("status", "unknown")
    if not cand_rows:
        raise UsageError(f"{other or results}: no candidate results yet")
    if gate is not None and base_rows is None:
        raise UsageError("--gate needs a baseline: this run had none; pass a second results directory")
    report, _cells, verdict = build_report(
        cand_rows, base_rows, rubrics, candidate_info=cand_info, baseline_info=base_info,
        gate_threshold=gate, resamples=resamples, seed=seed,
    )
    if as_json:
        emit_json({"source": title_source, "status": status, **report})
    else:
        summary = first.summary if other is None else second.summary
        items = (summary.get("eval_set") or {}).get("path", "?")
        _print_report(report, title=f"{title_source}: eval set {items}, status {status}")
    for source in (first,) if other is None else (first, second):
        if source.skipped_lines:
            note(f"warning: {source.path}: skipped a torn last line (the run was stopped while writing it)")
    if verdict is not None and not verdict.passed:
        raise typer.Exit(1)

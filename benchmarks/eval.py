"""eval run on 10,000 items with a target that returns at once: promptctl's overhead per item.

Builds (under ``benchmarks/.work/eval/``, rebuilt each run: it takes a second) a real registry: the example
prompts released as v1 with promptctl's own commit, in a real Git repository; and 10,000 items spread over
3 locales x 2 tiers (so the resolver serves 6 bodies, with and without fallback), scored by the example
eval set's 4 rubrics (exact_match, contains, regex, length).

Measures, in one run, best of ``--repeat`` rounds, the rows interleaved in each round (each row runs the
same 10,000 items). Reports wall time and process CPU time (all threads, so the span exporter's work counts);
the overhead column is CPU time, which stays steady when other processes load the machine:

* direct: ``for item in items: target(prompt, item)`` with the prompt resolved once: the floor;
* direct + score: the same loop, plus the 4 rubrics on each output (what any harness must do);
* eval run: ``EvalRunner.run()``: per item ``Registry.get`` with the item's conditions, an ``eval.item`` span,
  ``prompt.use()``, the target, the 4 rubrics, score attributes; no tracer provider (OTel's no-op);
* + results.jsonl: the same, writing and flushing one line per item (``--out``);
* -j 8: 8 worker threads, results.jsonl, no spans;
* OTel floor: the direct loop plus what ``--spans`` records, done with the OTel SDK by hand: one span per
  item with the same attributes (eval ids, the prompt attributes, 4 scores), batch-exported by the same
  ``OtlpJsonFileExporter``: the strongest raw baseline for the ``--spans`` row;
* eval run + spans: an SDK TracerProvider, the prompt span processor and a BatchSpanProcessor into
  ``OtlpJsonFileExporter`` (``--spans``); the flush after the loop is timed separately;
* report: the comparison (means, 2,000-resample paired bootstrap per rubric and slice) of two 10,000-item
  runs.

    python benchmarks/eval.py [--items 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORK = HERE / ".work" / "eval"
PID = "support_intent_classifier"
IDENT = {
    "GIT_AUTHOR_NAME": "Bench User",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench User",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
MESSAGES = ("I want a refund", "Where is my parcel?", "cancel order 12", "Rechnung doppelt", "l'app plante", "hello")
LABELS = ("refund", "shipping_status", "cancel_order", "billing_question", "technical_issue", "other")


def build_repo() -> Path:
    from promptctl.registry import PromptRepo

    if WORK.exists():
        shutil.rmtree(WORK)
    repo = WORK / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, **IDENT}
    for args in (["init", "-q", "-b", "main"], ["config", "commit.gpgsign", "false"], ["config", "tag.gpgsign", "false"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)
    shutil.copy(ROOT / "example-prompts" / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(ROOT / "example-prompts" / "prompts", repo / "prompts")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "prompts"], cwd=repo, check=True, capture_output=True, env=env)
    os.environ.update(IDENT)
    registry = PromptRepo.open(repo)
    registry.commit(registry.prompt_ids(), "first release")
    registry.close()
    return repo


def build_items(count: int):
    from promptctl.eval.evalset import Conditions, EvalItem

    locales, tiers = ("de", "en", "fr"), ("free", "enterprise")
    items = []
    for index in range(count):
        k = index % len(MESSAGES)
        items.append(
            EvalItem(
                id=f"item-{index}",
                inputs={"message": MESSAGES[k]},
                conditions=Conditions(locale=locales[index % 3], tier=tiers[(index // 3) % 2]),
                expected=LABELS[k],
                has_expected=True,
            )
        )
    return tuple(items)


def instant_target(prompt, item):
    return "refund"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from dataclasses import replace

    from opentelemetry import context as otel_context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import set_span_in_context

    import promptctl
    from promptctl.eval.evalset import load_evalset
    from promptctl.eval.report import build_report
    from promptctl.eval.results import ResultsWriter
    from promptctl.eval.runner import EvalRunner, resolve_side
    from promptctl.eval.scorers import build_scorers, score_output
    from promptctl.spans.otlp_json import OtlpJsonFileExporter

    repo = build_repo()
    example = load_evalset(ROOT / "example-prompts" / "evals" / "support_intent.yaml")
    evalset = replace(example, items=build_items(args.items))
    scorers = build_scorers(evalset.rubrics)
    side = resolve_side(str(repo), "candidate", f"{PID}@v1")
    n = len(evalset.items)

    registry = promptctl.Registry(repo, ttl=3600)
    prompt = registry.get(side.pinned, locale="de")
    items = evalset.items

    def direct():
        target = instant_target
        for item in items:
            target(prompt, item)

    def direct_scored():
        target = instant_target
        for item in items:
            score_output(scorers, target(prompt, item), item)

    def runner(**kwargs):
        return EvalRunner(evalset, [side], instant_target, scorers, registry, **kwargs)

    def eval_plain():
        outcome = runner().run()
        assert len(outcome.rows) == n and not any(r["error"] for r in outcome.rows)

    def eval_out():
        writer = ResultsWriter(WORK / "out")
        runner(writer=writer).run()
        writer.close()

    def eval_threads():
        writer = ResultsWriter(WORK / "out-j8")
        outcome = runner(writer=writer, concurrency=8).run()
        writer.close()
        assert len(outcome.rows) == n

    def exporting_provider(name: str):
        provider = TracerProvider()
        exporter = OtlpJsonFileExporter(str(WORK / name))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=2 * n, max_export_batch_size=512))
        return provider

    prompt_attributes = dict(prompt.span_attributes())
    score_names = [f"eval.score.{s.name}" for s in scorers]
    flush_times: list[float] = []

    def sdk_floor():
        """The raw OTel cost of what --spans records: one SDK span per item with the same attributes, the same
        batch exporter; the target called directly."""
        provider = exporting_provider("floor.jsonl")
        tracer = provider.get_tracer("floor")
        target = instant_target
        for item in items:
            span = tracer.start_span(
                "eval.item", attributes={"eval.run.id": "0" * 16, "eval.set": "x.yaml", "eval.role": "candidate", "eval.item.id": item.id}
            )
            token = otel_context.attach(set_span_in_context(span))
            span.set_attributes(prompt_attributes)
            target(prompt, item)
            span.set_attributes(dict.fromkeys(score_names, 1.0))
            otel_context.detach(token)
            span.end()
        return provider

    def eval_spans():
        provider = exporting_provider("spans.jsonl")
        promptctl.instrument(provider)
        runner(tracer_provider=provider).run()
        return provider

    configs = [
        ("direct: target(prompt, item)", direct),
        ("direct + score (4 rubrics)", direct_scored),
        ("eval run (resolve, use, score)", eval_plain),
        ("  + results.jsonl (--out)", eval_out),
        ("  -j 8 threads + results.jsonl", eval_threads),
        ("OTel floor: SDK span + export per item", sdk_floor),
        ("eval run + spans (--spans)", eval_spans),
    ]
    eval_plain()  # warm: compile the 6 bodies, fill the resolver cache
    wall: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpu: dict[str, list[float]] = {name: [] for name, _ in configs}
    for _ in range(args.repeat):  # interleaved, so a busy moment on the machine hits every row alike
        for name, fn in configs:
            cpu_started, started = time.process_time(), time.perf_counter()
            provider = fn()
            wall[name].append(time.perf_counter() - started)  # to the end of the loop
            if provider is not None:  # the rest of the export, on the exporter's thread
                flush_started = time.perf_counter()
                provider.shutdown()
                if name.startswith("eval"):
                    flush_times.append(time.perf_counter() - flush_started)
            cpu[name].append(time.process_time() - cpu_started)  # every thread, export included
    rows = [(name, min(wall[name]), min(cpu[name])) for name, _ in configs]
    floor_cpu = rows[0][2]
    by_name = {name: (w, c) for name, w, c in rows}

    cand = runner().run().rows
    base = [dict(r, role="baseline", scores={**r["scores"], "exact_match": 1.0 - r["scores"]["exact_match"]}) for r in cand]
    names = [s.name for s in scorers]
    start = time.perf_counter()
    build_report(cand, base, names, candidate_info={}, baseline_info={}, gate_threshold=0.02)
    report_time = time.perf_counter() - start

    print(f"eval overhead: {n:,} items, target returns at once, {len(names)} rubrics, best of {args.repeat} interleaved rounds")
    print(f"{'path':<40} {'wall':>9} {'wall/item':>10} {'CPU/item':>10} {'overhead/item':>14}")
    for name, seconds, cpu_seconds in rows:
        print(
            f"{name:<40} {seconds * 1000:>7.1f}ms {seconds / n * 1e6:>8.2f}us {cpu_seconds / n * 1e6:>8.2f}us "
            f"{(cpu_seconds - floor_cpu) / n * 1e6:>12.2f}us"
        )
    beyond = (by_name["eval run + spans (--spans)"][1] - by_name["OTel floor: SDK span + export per item"][1]) / n * 1e6
    print(f"{'eval --spans beyond the OTel floor':<40} {'':>9} {'':>10} {'':>10} {beyond:>12.2f}us")
    print(f"{'span export flush after the loop':<40} {min(flush_times) * 1000:>7.1f}ms")
    print(f"{'report: 2 x ' + format(n, ',') + ' rows, bootstrap':<40} {report_time * 1000:>7.1f}ms")
    print("CPU = process CPU time, all threads (span export included): steady when the machine is busy;")
    print("overhead/item = CPU/item minus the direct loop's. wall = elapsed to the end of the item loop.")
    registry.close()


if __name__ == "__main__":
    main()

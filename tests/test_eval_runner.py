"""The eval runner in-process: resolution through the runtime loader, spans (real OTel SDK), failures,
timeouts, concurrency, Ctrl-C. The example registry in a real Git repository:
support_intent_classifier v1 (as shipped), v2 (asks for lower case: the example target answers the same),
v3 (asks for a sentence: exact_match regresses on the bodies that fall back to body.j2)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, GIT_IDENTITY, git, init_git_repo, instrumented_provider

import promptctl
from promptctl.eval.evalset import Conditions, EvalItem, load_evalset
from promptctl.eval.report import build_report
from promptctl.eval.results import ResultsWriter, read_results
from promptctl.eval.runner import EvalRunner, resolve_side
from promptctl.eval.scorers import add_import_paths, build_scorers
from promptctl.registry import PromptRepo

PID = "support_intent_classifier"
BODY_LINE = "Answer with the intent label only."


def build_eval_repo(repo: Path) -> Path:
    """A Git repository with the example registry (every prompt at v1), the example eval set and target;
    then support_intent_classifier v2 and v3. Built in-process (no CLI start-ups): shared per test module."""
    init_git_repo(repo)
    shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
    for name in ("prompts", "evals", "example_app"):
        shutil.copytree(EXAMPLES / name, repo / name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app with prompts")
    registry = PromptRepo.open(repo)
    registry.commit(registry.prompt_ids(), "first release")
    body = repo / "prompts" / PID / "body.j2"
    body.write_text(body.read_text().replace(BODY_LINE, "Answer with the intent label only, in lower case."))
    registry.commit([PID], "ask for lower-case labels")
    body.write_text(body.read_text().replace("Answer with the intent label only, in lower case.", "Answer in one short sentence."))
    registry.commit([PID], "answer in a sentence")
    registry.close()
    return repo


@pytest.fixture(scope="module")
def eval_repo(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in GIT_IDENTITY.items():
            patch.setenv(key, value)
        return build_eval_repo(tmp_path_factory.mktemp("eval") / "repo")


@pytest.fixture
def spans():
    provider, exporter = instrumented_provider()
    return provider, exporter


@pytest.fixture
def toy_model():
    add_import_paths([EXAMPLES])
    from example_app.targets import toy_model

    return toy_model


def runner_for(repo, evalset, target, *, candidate="@v3", baseline="@v2", provider=None, **kwargs) -> EvalRunner:
    sides = [resolve_side(repo, "candidate", PID + candidate)]
    if baseline:
        sides.append(resolve_side(repo, "baseline", PID + baseline))
    registry = promptctl.Registry(repo)
    return EvalRunner(evalset, sides, target, build_scorers(evalset.rubrics), registry, tracer_provider=provider, **kwargs)


def test_each_item_runs_through_the_resolver_inside_a_span_with_prompt_attributes_and_scores(eval_repo, spans, toy_model):
    provider, exporter = spans
    tracer = provider.get_tracer("app")

    def target(prompt, item):
        text = prompt.render(**item.inputs)
        with tracer.start_as_current_span("chat"):  # what an instrumented LLM client would open
            return toy_model(text)

    evalset = load_evalset(eval_repo / "evals" / "support_intent.yaml")
    outcome = runner_for(eval_repo, evalset, target, provider=provider).run()
    assert not outcome.interrupted and len(outcome.rows) == 2 * len(evalset.items)

    repo = PromptRepo.open(eval_repo)
    hashes = {v.version: v.template_hash[:12] for v in repo.versions(PID)}
    repo.close()
    finished = exporter.get_finished_spans()
    items = [s for s in finished if s.name == "eval.item"]
    chats = {s.parent.span_id: s for s in finished if s.name == "chat"}
    assert len(items) == 2 * len(evalset.items)
    by_key = {(s.attributes["eval.item.id"], s.attributes["eval.role"]): s for s in items}
    de_ent = by_key[("de-ent-contract", "candidate")].attributes
    assert de_ent["prompt.id"] == PID and de_ent["prompt.version"] == "v3"
    assert de_ent["prompt.template_hash"] == hashes["v3"]
    assert (de_ent["prompt.locale"], de_ent["prompt.tier"], de_ent["prompt.condition.fallback"]) == ("de", "enterprise", False)
    assert de_ent["eval.score.exact_match"] == 1.0 and de_ent["eval.score.short"] == 1.0
    fr_free = by_key[("fr-free-refund", "candidate")].attributes
    assert fr_free["prompt.condition.fallback"] is True and fr_free["eval.score.exact_match"] == 0.0
    assert fr_free["eval.score.contains_label"] == 1.0
    base = by_key[("fr-free-refund", "baseline")].attributes
    assert base["prompt.version"] == "v2" and base["prompt.template_hash"] == hashes["v2"] and base["eval.score.exact_match"] == 1.0
    # the span the target opened inside prompt.use() is a child of eval.item and carries the prompt attributes
    chat = chats[by_key[("fr-free-refund", "candidate")].context.span_id]
    assert chat.attributes["prompt.version"] == "v3" and chat.attributes["prompt.template_hash"] == hashes["v3"]

    row = next(r for r in outcome.rows if r["item"] == "fr-free-refund" and r["role"] == "candidate")
    assert row["output"] == "The intent of this message is refund." and row["fallback"] is True and row["body"] == "body.j2"
    assert row["template_hash"] == hashes["v3"] and row["version"] == "v3" and row["error"] is None

    report, _cells, verdict = build_report(
        outcome.rows_for("candidate"), outcome.rows_for("baseline"), [r.name for r in evalset.rubrics],
        candidate_info={"version": "v3"}, baseline_info={"version": "v2"}, gate_threshold=0.02,
    )
    assert report["means"]["exact_match"]["diff"] == -0.25 and report["means"]["contains_label"]["diff"] == 0.0
    assert not verdict.passed and {f["rubric"] for f in report["gate"]["failures"]} == {"exact_match", "is_label", "short"}


def small_set(tmp_path: Path, count: int = 6) -> Path:
    lines = ["rubrics: [exact_match]", "items:"]
    for index in range(count):
        lines.append(f"  - {{id: i{index}, inputs: {{message: 'refund {index}'}}, conditions: {{locale: en}}, expected: refund}}")
    path = tmp_path / "small.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_failing_or_slow_target_is_a_failed_item_not_a_crashed_run(eval_repo, spans, tmp_path):
    provider, exporter = spans
    release = threading.Event()

    def target(prompt, item):
        prompt.render(**item.inputs)
        if item.id == "i1":
            raise RuntimeError("model overloaded")
        if item.id == "i2":
            release.wait(5)  # far longer than the timeout
        return "refund"

    evalset = load_evalset(small_set(tmp_path))
    started = time.perf_counter()
    runner = runner_for(eval_repo, evalset, target, baseline=None, provider=provider, concurrency=3, timeout=0.3)
    outcome = runner.run()
    release.set()
    assert time.perf_counter() - started < 3
    rows = {r["item"]: r for r in outcome.rows}
    assert set(rows) == {f"i{i}" for i in range(6)}
    assert rows["i1"]["error"] == "RuntimeError: model overloaded" and rows["i1"]["scores"] == {"exact_match": 0.0}
    assert rows["i2"]["error"] == "timed out after 0.3s" and rows["i2"]["scores"] == {"exact_match": 0.0}
    assert all(rows[i]["error"] is None and rows[i]["scores"]["exact_match"] == 1.0 for i in ("i0", "i3", "i4", "i5"))
    assert outcome.counts == {"candidate": {"done": 6, "failed": 2}}
    failed = next(s for s in exporter.get_finished_spans() if s.attributes.get("eval.item.id") == "i1")
    assert failed.status.status_code.name == "ERROR" and failed.attributes["eval.score.exact_match"] == 0.0
    assert failed.attributes["eval.error"] == "RuntimeError: model overloaded"


def test_render_errors_are_recorded_per_item(eval_repo, tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "no-message", "inputs": {}, "expected": "refund"}\n{"id": "ok", "inputs": {"message": "x"}, "expected": "x"}\n')
    evalset = load_evalset(path, ["exact_match"])
    outcome = runner_for(eval_repo, evalset, lambda prompt, item: prompt.render(**item.inputs), baseline=None).run()
    rows = {r["item"]: r for r in outcome.rows}
    assert "missing required variable 'message'" in rows["no-message"]["error"]
    assert rows["ok"]["error"] is None


def test_ctrl_c_stops_the_run_and_leaves_a_readable_results_file(eval_repo, tmp_path):
    def target(prompt, item):
        if item.id == "i3":
            raise KeyboardInterrupt
        return "refund"

    evalset = load_evalset(small_set(tmp_path))
    writer = ResultsWriter(tmp_path / "out")
    outcome = runner_for(eval_repo, evalset, target, candidate="@v1", baseline="@v2", writer=writer).run()
    writer.close()
    assert outcome.interrupted and len(outcome.rows) == 6  # i0..i2, both versions
    back = read_results(tmp_path / "out")
    assert [(r["item"], r["role"]) for r in back.rows][:2] == [("i0", "candidate"), ("i0", "baseline")]
    assert len(back.rows) == 6 and back.skipped_lines == 0


def test_async_targets_and_the_python_api_without_a_tracer_provider(eval_repo, tmp_path):
    async def target(prompt, item):
        await asyncio.sleep(0)
        return "refund" if prompt.version == "v1" else "other"

    evalset = load_evalset(small_set(tmp_path, 3))
    outcome = runner_for(eval_repo, evalset, target, candidate="@v1", baseline="@v2", concurrency=2).run()
    scores = {(r["item"], r["version"]): r["scores"]["exact_match"] for r in outcome.rows}
    assert scores == {**{(f"i{i}", "v1"): 1.0 for i in range(3)}, **{(f"i{i}", "v2"): 0.0 for i in range(3)}}


def test_eval_items_are_plain_data_for_the_target():
    item = EvalItem(id="x", inputs={"message": "m"}, conditions=Conditions(locale="de", tier="free"))
    assert (item.locale, item.tier, item.variant, item.key) == ("de", "free", None, None)

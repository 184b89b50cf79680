"""`promptctl eval run` / `eval show` through the real CLI on the example registry, offline.

v1 -> v2 asks for lower-case labels (the example target answers the same: the gate passes); v2 -> v3 asks for
a sentence (exact_match falls on every item served by body.j2: the gate fails).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GIT_IDENTITY, run_cli
from test_eval_runner import PID, build_eval_repo

from promptctl.cli.main import main

TARGET = "example_app.targets:classify"
EVALS = "evals/support_intent.yaml"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in GIT_IDENTITY.items():
            patch.setenv(key, value)
        return build_eval_repo(tmp_path_factory.mktemp("evalcli") / "repo")


def eval_run(repo: Path, candidate: str, baseline: str | None, *extra: str) -> subprocess.CompletedProcess:
    args = ["eval", "run", EVALS, "--prompt", f"{PID}@{candidate}", "--target", TARGET]
    if baseline:
        args += ["--baseline", f"{PID}@{baseline}"]
    return run_cli(repo, *args, *extra)


def test_gate_passes_when_the_candidate_answers_as_well(repo, tmp_path):
    out = tmp_path / "v2"
    proc = eval_run(repo, "v2", "v1", "--gate", "0.02", "--out", str(out) + "/")  # a trailing slash, as shells complete it
    assert proc.returncode == 0, proc.stderr
    assert f"results written to {out / 'results.jsonl'} and {out / 'summary.json'}" in proc.stderr
    assert "gate 0.02: passed" in proc.stdout
    assert f"{PID}@v2" in proc.stdout and "exact_match" in proc.stdout and "locale=fr" in proc.stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 96 and {r["version"] for r in rows} == {"v1", "v2"}
    assert set(rows[0]) >= {"item", "version", "template_hash", "variant", "fallback", "output", "scores", "error", "duration_ms"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["gate"]["passed"] is True
    assert [r["name"] for r in summary["rubrics"]] == ["exact_match", "contains_label", "is_label", "short"]

    shown = run_cli(repo, "eval", "show", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["means"] == summary["means"]


def test_gate_fails_when_the_candidate_regresses_and_spans_carry_prompt_and_scores(repo, tmp_path):
    spans = tmp_path / "spans.jsonl"
    proc = eval_run(repo, "v3", "v2", "--gate", "0.02", "--json", "--spans", str(spans), "--concurrency", "4")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["gate"]["passed"] is False
    assert {f["rubric"] for f in report["gate"]["failures"]} == {"exact_match", "is_label", "short"}
    assert report["means"]["exact_match"]["diff"] == -0.25
    low, high = report["means"]["exact_match"]["ci95"]
    assert low < -0.02 and high < 0
    german = next(c for c in report["cells"] if c["rubric"] == "exact_match" and c["slice"] == "locale=de")
    assert german["diff"] == 0.0  # the German bodies did not change

    # read back by the one span reader (what promptctl drift uses)
    import duckdb

    from promptctl.spans.reader import load_spans

    con = duckdb.connect()
    load = load_spans(con, [str(spans)])
    counts = dict(con.sql(f"SELECT name, count(prompt_version) FROM {load.table} GROUP BY name").fetchall())
    assert counts == {"eval.item": 96, "chat toy-model": 96}  # the target's own span carries the prompt too
    means = {
        (version, rubric): mean
        for version, rubric, mean in con.sql(
            f"SELECT prompt_version, rubric, avg(score) FROM {load.scores} GROUP BY ALL"
        ).fetchall()
    }
    assert means[("v3", "exact_match")] == pytest.approx(report["means"]["exact_match"]["candidate"], abs=1e-6)
    assert means[("v2", "exact_match")] == pytest.approx(report["means"]["exact_match"]["baseline"], abs=1e-6)
    versions = dict(
        con.sql(f"SELECT prompt_version, any_value(prompt_template_hash) FROM {load.table} GROUP BY ALL").fetchall()
    )
    assert versions == {r["version"]: r["template_hash"] for r in report["runs"]}


def test_baseline_on_a_channel_is_resolved_to_its_version(repo, tmp_path):
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    registry = PromptRepo.open(repo)
    if not ChannelStore(registry).all_states():
        ChannelStore(registry).promote(PID, "v2")
    registry.close()
    proc = eval_run(repo, "v3", "current", "--json", "--tag", "contract")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    baseline = next(r for r in report["runs"] if r["role"] == "baseline")
    assert (baseline["version"], baseline["channel"], baseline["spec"]) == ("v2", "current", f"{PID}@current")
    assert report["item_runs"] == {"total": 12, "done": 12}


def test_show_compares_two_result_directories(repo, tmp_path):
    for version in ("v2", "v3"):
        proc = eval_run(repo, version, None, "--out", str(tmp_path / version), "--no-progress")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli(repo, "eval", "show", str(tmp_path / "v2"), str(tmp_path / "v3"), "--gate", "0.1")
    assert proc.returncode == 1, proc.stderr
    assert "gate 0.1: FAILED: exact_match -0.250" in proc.stdout
    alone = run_cli(repo, "eval", "show", str(tmp_path / "v3"))
    assert alone.returncode == 0 and "0.583" in alone.stdout


def test_ctrl_c_leaves_readable_results(repo, tmp_path):
    (tmp_path / "slowapp.py").write_text(
        "import time\n\ndef classify(prompt, item):\n    time.sleep(0.05)\n    return prompt.render(**item.inputs)[:5]\n"
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptctl.cli.main", "eval", "run", EVALS, "--prompt", f"{PID}@v1", "--baseline",
         f"{PID}@v2", "--target", "slowapp:classify", "--target-path", str(tmp_path), "--out", str(out)],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not results.exists() or results.read_text().count("\n") < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "results so far in" in stderr and "Traceback" not in stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert 4 <= len(rows) < 96
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["item_runs"]["done"] == len(rows)
    shown = run_cli(repo, "eval", "show", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "interrupted"


# -- errors: one line on stderr, a documented exit code, nothing written ----------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--prompt", f"{PID}@v9"], 3, f"{PID} has no version v9"),
        (["--prompt", "no_such_prompt@v1"], 3, "unknown prompt 'no_such_prompt'"),
        (["--baseline", f"{PID}@nochannel"], 3, "nochannel"),
        (["--gate", "0.02"], 2, "--gate needs --baseline"),
        (["--target", "example_app.targets"], 2, "use module:function"),
        (["--target", "nowhere.app:classify"], 3, "no module named 'nowhere'"),
        (["--target", "example_app.targets:missing"], 3, "has no attribute 'missing'"),
        (["--rubric", "levenshtein"], 2, "unknown rubric 'levenshtein'"),
        (["--baseline", "ticket_summarizer@v1"], 2, "compare one prompt"),
        (["--prompt", "ticket_summarizer@v1"], 2, f"is an eval set for {PID}, not ticket_summarizer"),
        (["--concurrency", "0"], 2, "--concurrency"),
    ],
)
def test_usage_errors_are_one_line_with_an_exit_code_and_write_nothing(repo, tmp_path, monkeypatch, capsys, args, code, message):
    monkeypatch.chdir(repo)
    out = tmp_path / "out"
    base = {"--prompt": f"{PID}@v2", "--target": TARGET}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["eval", "run", EVALS, *[x for pair in base.items() for x in pair], "--out", str(out)]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == code, err
    assert err.startswith("promptctl: error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_bad_eval_file_names_its_line(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n    conditions: {locale: en, tier: Gold}\n")
    with pytest.raises(SystemExit) as exited:
        main(["eval", "run", str(bad), "--prompt", f"{PID}@v1", "--target", TARGET])
    err = capsys.readouterr().err
    assert exited.value.code == 4 and err == f"promptctl: error: {bad}:5: item 'a': tier 'Gold' must match [a-z][a-z0-9_]{{0,39}}\n"
    with pytest.raises(SystemExit) as exited:
        main(["eval", "show", str(tmp_path / "nothing-here")])
    assert exited.value.code == 3 and "no such results directory" in capsys.readouterr().err


def test_an_unwritable_out_directory_is_an_environment_error(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(SystemExit) as exited:
        main(["eval", "run", EVALS, "--prompt", f"{PID}@v1", "--target", TARGET, "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert exited.value.code == 7 and err.startswith("promptctl: error: --out ") and err.count("\n") == 1, err
    assert blocker.read_text() == "not a directory\n"


def test_slice_values_from_the_eval_file_are_printed_as_written_never_as_markup(repo, tmp_path):
    evals = tmp_path / "odd.yaml"
    evals.write_text(
        "rubrics: [exact_match]\n"
        "items:\n"
        "  - {id: a, inputs: {message: 'I want my money back'}, expected: refund, conditions: {variant: '[red]'}}\n"
        "  - {id: b, inputs: {message: 'hello'}, expected: other, conditions: {variant: '[/]'}}\n"
    )
    proc = run_cli(repo, "eval", "run", str(evals), "--prompt", f"{PID}@v2", "--baseline", f"{PID}@v1", "--target", TARGET)
    assert proc.returncode == 0, proc.stderr
    assert "variant=[red]" in proc.stdout and "variant=[/]" in proc.stdout and "\x1b[" not in proc.stdout

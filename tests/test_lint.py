"""promptctl lint: hygiene rules with stable codes, ignores, output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, git, run_cli

from promptctl.verify import RULES

SLOPPY_YAML = """\
description: ""
type: text
model:
  temperature: 0.2
inputs:
  message: {type: string, required: true, example: "hi"}
  unused: {type: string, required: false, example: "x"}
  count: {type: integer, required: true, default: 3, example: "three"}
  tone: {type: string, requried: true}
"""


def lint_json(repo: Path, *ids: str, ignore: tuple[str, ...] = ()) -> dict:
    """``promptctl lint --json`` in-process (the CLI path is covered by the run_cli tests)."""
    from promptctl.lint import lint
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        return json.loads(json.dumps(lint(r, list(ids) or None, ignore=ignore).to_json()))
    finally:
        r.close()


def add_prompt(repo: Path, name: str, meta: str, bodies: dict[str, str]) -> None:
    directory = repo / "prompts" / name
    directory.mkdir()
    (directory / "prompt.yaml").write_text(meta)
    for file, text in bodies.items():
        (directory / file).write_text(text)


def test_example_registry_is_clean(example_repo):
    proc = run_cli(example_repo, "lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "lint: ok (3 prompts)"


def test_every_rule_fires_with_its_code_file_and_line(example_repo):
    add_prompt(
        example_repo,
        "sloppy",
        SLOPPY_YAML,
        {"body.locale-de.j2": "{{ message }} {{ count }} {{ tone }} {{ customer }}\n"},
    )
    add_prompt(
        example_repo,
        "chatty",
        "description: d\nowner: o@example.com\ntype: chat\nmodel: {name: m}\n",
        {"body.j2": "system:\nYou are terse.\n"},
    )
    (example_repo / "prompts/_partials/forgotten.j2").write_text("Nobody includes me.\n")
    report = lint_json(example_repo)
    found = {(p["code"], p["prompt"], p["file"], p["line"]) for p in report["problems"]}
    meta = "prompts/sloppy/prompt.yaml"
    expected = {
        ("PC101", "sloppy", meta, 7),  # unused
        ("PC102", "sloppy", "prompts/sloppy/body.locale-de.j2", 1),  # customer
        ("PC103", "sloppy", meta, None),
        ("PC104", "sloppy", meta, None),
        ("PC105", "sloppy", meta, 9),  # tone has no example
        ("PC106", "sloppy", meta, 8),  # count: required with a default
        ("PC107", "sloppy", meta, 3),
        ("PC108", "sloppy", meta, 8),  # count's example is not an integer
        ("PC109", "sloppy", meta, 9),  # requried
        ("PC110", "sloppy", "prompts/sloppy", None),
        ("PC111", "chatty", "prompts/chatty/body.j2", None),
        ("PC112", None, "prompts/_partials/forgotten.j2", None),
    }
    assert expected <= found, sorted(found - expected)
    assert not {p["prompt"] for p in report["problems"]} - {"sloppy", "chatty", None}  # the examples stay clean
    severities = {p["code"]: p["severity"] for p in report["problems"]}
    assert severities["PC102"] == "error" and severities["PC101"] == "warning"
    assert report["errors"] == 1 and report["warnings"] == len(report["problems"]) - 1


def test_text_output_and_exit_code(example_repo):
    add_prompt(example_repo, "sloppy", SLOPPY_YAML, {"body.j2": "{{ message }} {{ count }} {{ tone }}\n"})
    before = git(example_repo, "status", "--porcelain")
    proc = run_cli(example_repo, "lint", "sloppy")
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert "prompts/sloppy/prompt.yaml:7: PC101 input 'unused' is declared but no body or partial uses it" in lines
    assert lines[-1].startswith("lint: ") and "warnings" in lines[-1]
    assert git(example_repo, "status", "--porcelain") == before
    data = json.loads(run_cli(example_repo, "lint", "sloppy", "--json").stdout)
    assert set(data) == {"ok", "errors", "warnings", "checked", "problems"}
    assert set(data["problems"][0]) == {"code", "rule", "severity", "prompt", "version", "channel", "file", "line", "message"}


def test_ignore_from_the_command_line_and_the_config(example_repo):
    add_prompt(
        example_repo,
        "terse",
        "description: d\ninputs:\n  message: {type: string}\n",
        {"body.j2": "{{ message }}\n"},
    )
    assert {p["code"] for p in lint_json(example_repo, "terse")["problems"]} == {"PC103", "PC105", "PC107"}
    assert {p["code"] for p in lint_json(example_repo, "terse", ignore=("pc103,PC105",))["problems"]} == {"PC107"}
    config = example_repo / "promptctl.yaml"
    config.write_text(config.read_text() + "lint:\n  ignore: [PC107]\n")
    proc = run_cli(example_repo, "lint", "terse", "--ignore", "PC103", "--ignore", "PC105")
    assert proc.returncode == 0, proc.stdout
    assert "lint: ok" in proc.stdout


def test_unknown_rule_is_a_usage_error(example_repo):
    proc = run_cli(example_repo, "lint", "--ignore", "PC999")
    assert proc.returncode == 2
    assert proc.stderr.startswith("promptctl: error: --ignore: unknown rule 'PC999'")
    assert proc.stdout == ""
    config = example_repo / "promptctl.yaml"
    config.write_text(config.read_text() + "lint:\n  ignore: [nope]\n")
    proc = run_cli(example_repo, "lint")
    assert proc.returncode == 2 and "lint.ignore: unknown rule 'NOPE'" in proc.stderr


def test_unknown_prompt_and_broken_prompt(example_repo):
    proc = run_cli(example_repo, "lint", "no_such_prompt")
    assert proc.returncode == 3 and "unknown prompt 'no_such_prompt'" in proc.stderr
    (example_repo / "prompts/ticket_summarizer/prompt.yaml").write_text("description: [\n")
    report = lint_json(example_repo)
    assert [(p["code"], p["file"]) for p in report["problems"]] == [("PC030", "prompts/ticket_summarizer/prompt.yaml")]


def test_rules_are_listed_and_documented():
    proc = run_cli(ROOT, "lint", "--rules", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert [r["code"] for r in listed] == sorted(RULES)
    docs = (ROOT / "docs/ci.md").read_text()
    for code, rule in RULES.items():
        assert f"| {code} " in docs, f"{code} is not documented in docs/ci.md"
        assert rule.name in docs


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_codes_are_stable(code):
    assert code.startswith("PC") and len(code) == 5 and code[2:].isdigit()

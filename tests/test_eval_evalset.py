"""The eval set format: YAML and JSONL items, rubric specs, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES

from promptctl.errors import ExitCode, InvalidContent, NotFound, UsageError
from promptctl.eval.evalset import filter_items, load_evalset, parse_rubric_arg

GOOD_YAML = """\
prompt: support_intent_classifier
description: a small set
rubrics:
  - exact_match
  - {name: label, type: contains, ignore_case: true}
  - short=length:..40
items:
  - id: one
    inputs: {message: "I want a refund"}
    conditions: {locale: de, tier: enterprise, variant: treatment, key: user-1}
    expected: refund
    tags: [refund]
  - id: 2
    inputs: {message: "where is it"}
    expected: shipping_status
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_eval_set_items_conditions_and_rubrics(tmp_path):
    evalset = load_evalset(write(tmp_path, "set.yaml", GOOD_YAML))
    assert evalset.prompt == "support_intent_classifier" and evalset.description == "a small set"
    first, second = evalset.items
    assert (first.id, first.line, first.inputs, first.expected, first.tags) == ("one", 8, {"message": "I want a refund"}, "refund", ("refund",))
    assert (first.locale, first.tier, first.variant, first.key) == ("de", "enterprise", "treatment", "user-1")
    assert second.id == "2" and second.locale is None and second.line == 13
    assert [(r.name, r.kind) for r in evalset.rubrics] == [("exact_match", "exact_match"), ("label", "contains"), ("short", "length")]
    assert evalset.rubrics[2].params == {"max": 40}
    assert len(evalset.sha256) == 64 and evalset.rubrics_from.endswith("set.yaml")


def test_the_example_eval_set_is_valid_and_covers_locales_and_tiers():
    evalset = load_evalset(EXAMPLES / "evals" / "support_intent.yaml")
    assert 30 <= len(evalset.items) <= 60
    assert {i.locale for i in evalset.items} == {"de", "en", "fr"}
    assert {i.tier for i in evalset.items} == {"free", "enterprise"}


def test_jsonl_items_with_a_sidecar_rubrics_file_and_cli_rubrics_replace_them(tmp_path):
    lines = [
        {"id": "a", "inputs": {"message": "hi"}, "conditions": {"locale": "fr"}, "expected": "other"},
        {"id": "b", "inputs": {"message": "refund"}, "expected": "refund", "tags": ["x"]},
    ]
    path = write(tmp_path, "set.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    with pytest.raises(UsageError, match="no rubrics"):
        load_evalset(path)
    write(tmp_path, "set.rubrics.yaml", "rubrics:\n  - exact_match\n  - {type: json_valid}\n")
    evalset = load_evalset(path)
    assert [r.name for r in evalset.rubrics] == ["exact_match", "json_valid"]
    assert evalset.items[1].line == 2 and evalset.items[0].locale == "fr"
    replaced = load_evalset(path, ["fmt=regex:^[a-z_]+$", "myjudges.polite:score"])
    assert [(r.name, r.kind) for r in replaced.rubrics] == [("fmt", "regex"), ("score", "custom")]
    assert replaced.rubrics_from == "--rubric"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n    conditions: {tier: Gold}\n", 5, "tier 'Gold'"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n  - id: a\n    expected: y\n", 5, "used twice (first on line 3)"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expectd: x\n", 4, "unknown key 'expectd'"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    inputs: {message: hi}\n", 3, "has no expected value"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n    conditions:\n      locale: en\n      colour: red\n", 7, "unknown condition 'colour'"),
        ("rubrics:\n  - exact_match\n  - {type: levenshtein}\nitems: []\n", 3, "unknown rubric type 'levenshtein'"),
        ("rubrics:\n  - {type: regex, pattern: '('}\nitems: []\n", 2, "invalid regular expression"),
        ("rubrics:\n  - {type: length, min: 5, max: 2}\nitems: []\n", 2, "min 5 is greater than max 2"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n    tags: {a: 1}\n", 5, "tags must be a list"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: x\n    expected: y\n", 5, "given twice"),
        ("rubrics: [exact_match]\nitems:\n  - id: a\n    expected: [x\n", 5, "YAML syntax error"),
        ("rubrics: [exact_match]\nitmes: []\n", 2, "unknown key 'itmes'"),
    ],
)
def test_a_bad_yaml_eval_set_names_the_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(InvalidContent) as caught:
        load_evalset(path)
    assert caught.value.exit_code == ExitCode.INVALID_CONTENT
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_yaml_anchors_and_merge_keys_for_shared_conditions(tmp_path):
    text = """\
rubrics: [exact_match]
x-enterprise-de: &de {conditions: {locale: de, tier: enterprise}, expected: refund}
items:
  - <<: *de
    id: a
  - <<: *de
    id: b
    expected: cancel_order
"""
    first, second = load_evalset(write(tmp_path, "set.yaml", text)).items
    assert (first.id, first.locale, first.tier, first.expected) == ("a", "de", "enterprise", "refund")
    assert (second.id, second.expected, second.line) == ("b", "cancel_order", 6)


def test_a_bad_jsonl_line_names_its_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"id": "a", "expected": "x"}\n\n{"id": "b", "expected": \n')
    with pytest.raises(InvalidContent, match=r"bad\.jsonl:3: invalid JSON"):
        load_evalset(path, ["exact_match"])
    write(tmp_path, "bad.jsonl", '{"id": "a", "expected": "x"}\n["not", "an", "object"]\n')
    with pytest.raises(InvalidContent, match=r"bad\.jsonl:2: each line must be a JSON object"):
        load_evalset(path, ["exact_match"])
    write(tmp_path, "bad.jsonl", '{"id": "a", "expected": "x", "conditions": {"locale": "x1"}}\n')
    with pytest.raises(InvalidContent, match=r"bad\.jsonl:1: item 'a': locale 'x1'"):
        load_evalset(path, ["exact_match"])


def test_missing_file_unknown_format_and_bad_rubric_args(tmp_path):
    with pytest.raises(NotFound, match="no such eval set file"):
        load_evalset(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match="unknown eval set format '.csv'"):
        load_evalset(write(tmp_path, "set.csv", "id\n"))
    path = write(tmp_path, "set.yaml", GOOD_YAML)
    for arg, message in [
        ("levenshtein", "unknown rubric 'levenshtein'"),
        ("length:abc", "MIN..MAX"),
        ("regex:(", "invalid regular expression"),
        ("Bad-Name=exact_match", "unknown rubric"),
        ("json_valid:x", "takes no argument"),
    ]:
        with pytest.raises(UsageError, match=message):
            load_evalset(path, [arg])
    with pytest.raises(UsageError, match="used twice"):
        load_evalset(path, ["exact_match", "exact_match"])


def test_rubric_arg_grammar():
    assert parse_rubric_arg("exact_match").params == {}
    assert parse_rubric_arg("contains:refund").params == {"value": "refund"}
    assert parse_rubric_arg("len=length:1..").params == {"min": 1}
    assert parse_rubric_arg("json_schema:schema.json").params == {"schema_file": "schema.json"}
    judge = parse_rubric_arg("quality=custom:myapp.judges:score")
    assert (judge.name, judge.kind, judge.params) == ("quality", "custom", {"function": "myapp.judges:score"})


def test_filter_by_tag_and_limit(tmp_path):
    evalset = load_evalset(write(tmp_path, "set.yaml", GOOD_YAML))
    assert [i.id for i in filter_items(evalset, ["refund"]).items] == ["one"]
    assert [i.id for i in filter_items(evalset, limit=1).items] == ["one"]
    with pytest.raises(UsageError, match="no items left"):
        filter_items(evalset, ["nothing"])

"""Rubrics: each built-in on the outputs a target really returns, and custom scorers' range check."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from promptctl.errors import InvalidContent, NotFound, UsageError
from promptctl.eval.evalset import Conditions, EvalItem, RubricSpec, parse_rubric_arg
from promptctl.eval.scorers import build_scorers, load_function, score_output

ITEM = EvalItem(
    id="a", inputs={"message": "hi"}, conditions=Conditions(locale="de"), expected="refund",
    references={"keywords": ["refund", "order"], "answer": {"label": "refund"}}, has_expected=True,
)


def score(spec: str | RubricSpec, output, item: EvalItem = ITEM, base_dir=".") -> float:
    rubric = parse_rubric_arg(spec) if isinstance(spec, str) else spec
    [scorer] = build_scorers([rubric], base_dir)
    return scorer(output, item)


def rubric(kind: str, **params) -> RubricSpec:
    return RubricSpec(name=kind, kind=kind, params=params, where="test")


def test_exact_match_strips_and_optionally_ignores_case():
    assert score("exact_match", " refund\n") == 1.0
    assert score("exact_match", "Refund") == 0.0
    assert score(rubric("exact_match", ignore_case=True), "Refund") == 1.0
    assert score(rubric("exact_match", strip=False), " refund") == 0.0
    assert score(rubric("exact_match", reference="answer"), '{"label": "refund"}') == 1.0
    assert score(rubric("exact_match", reference="answer"), {"label": "refund"}) == 1.0
    assert score(rubric("exact_match", reference="answer"), '{"label": "cancel"}') == 0.0


def test_contains_scores_the_share_of_needles_found():
    assert score("contains", "The intent is refund.") == 1.0
    assert score(rubric("contains", reference="keywords"), "refund please") == 0.5
    assert score(rubric("contains", value=["REFUND"], ignore_case=True), "refund") == 1.0
    assert score("contains:order", "no") == 0.0


def test_regex_search_and_fullmatch():
    assert score("regex:[a-z_]+", "The intent is refund.") == 1.0
    assert score(rubric("regex", pattern="[a-z_]+", fullmatch=True), "The intent is refund.") == 0.0
    assert score(rubric("regex", pattern="REFUND", ignore_case=True), "refund") == 1.0


def test_json_valid_and_json_schema(tmp_path):
    assert score("json_valid", '{"a": 1}') == 1.0
    assert score("json_valid", "{a: 1}") == 0.0
    assert score("json_valid", {"a": 1}) == 1.0
    assert score("json_valid", None) == 0.0
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["refund", "other"]}}}
    inline = rubric("json_schema", schema=schema)
    assert score(inline, '{"label": "refund"}') == 1.0
    assert score(inline, '{"label": "nope"}') == 0.0
    assert score(inline, "not json") == 0.0
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    assert score(rubric("json_schema", schema_file="schema.json"), {"label": "other"}, base_dir=tmp_path) == 1.0
    with pytest.raises(NotFound, match="schema file"):
        score(rubric("json_schema", schema_file="missing.json"), "{}", base_dir=tmp_path)
    with pytest.raises(InvalidContent, match="invalid JSON Schema"):
        score(rubric("json_schema", schema={"type": 12}), "{}")


def test_length_bounds_in_chars_words_and_lines():
    assert score("length:..6", "refund") == 1.0
    assert score("length:..5", "refund") == 0.0
    assert score("length:2..", "r") == 0.0
    assert score(rubric("length", max=2, unit="words"), "one two three") == 0.0
    assert score(rubric("length", min=2, unit="lines"), "a\nb") == 1.0


@pytest.fixture
def judges(tmp_path, monkeypatch):
    (tmp_path / "judges_mod.py").write_text(textwrap.dedent("""
        def good(output, item, bonus=0.0):
            return 0.5 + bonus if item.locale == "de" else 0.0
        def too_big(output, item):
            return 1.5
        def not_a_number(output, item):
            return "high"
        def boom(output, item):
            raise RuntimeError("judge unavailable")
        def yes(output, item):
            return True
        value = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("judges_mod", None)


def test_custom_scorer_gets_output_item_and_params(judges):
    assert score(RubricSpec("g", "custom", {"function": "judges_mod:good", "params": {"bonus": 0.25}}), "x") == 0.75
    assert score("judges_mod:yes", "x") == 1.0


def test_custom_scorer_out_of_range_or_failing_scores_zero_with_an_error(judges):
    scorers = build_scorers([parse_rubric_arg(s) for s in ("judges_mod:too_big", "judges_mod:not_a_number", "judges_mod:boom", "exact_match")])
    scores, errors = score_output(scorers, "refund", ITEM)
    assert scores == {"too_big": 0.0, "not_a_number": 0.0, "boom": 0.0, "exact_match": 1.0}
    assert errors == [
        "rubric too_big: returned 1.5, outside [0, 1]",
        "rubric not_a_number: returned str, not a number in [0, 1]",
        "rubric boom: RuntimeError: judge unavailable",
    ]


def test_load_function_errors(judges):
    with pytest.raises(UsageError, match="use module:function"):
        load_function("judges_mod.good")
    with pytest.raises(NotFound, match="no module named 'nope_mod'"):
        load_function("nope_mod:f")
    with pytest.raises(NotFound, match="has no attribute 'missing'"):
        load_function("judges_mod:missing")
    with pytest.raises(UsageError, match="not callable"):
        load_function("judges_mod:value")

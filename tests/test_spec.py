"""Prompt ids, version specs and tag names: what may reach git as part of a ref name."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptctl.errors import ExitCode, InvalidId, InvalidVersionSpec
from promptctl.spec import (
    VersionSpec,
    channel_ref,
    duration_seconds,
    parse_spec,
    parse_tag_name,
    parse_version,
    tag_name,
    tag_ref,
    validate_id,
)


@pytest.mark.parametrize("good", ["a", "support_intent_classifier", "v2-reply", "0day", "a" * 100, "x_y-z9"])
def test_valid_ids(good):
    assert validate_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "a\\b",
        "..",
        "../x",
        "x/..",
        ".hidden",
        "-leading-dash",
        "_private",
        "has space",
        "Upper",
        "camelCase",
        "a" * 101,
        "tab\there",
        "new\nline",
        "nul\0",
        "émoji",
        "a@v1",
        "a:b",
        "a~1",
        "a^",
        "a.lock",
    ],
)
def test_invalid_ids_are_usage_errors(bad):
    with pytest.raises(InvalidId) as info:
        validate_id(bad)
    assert info.value.exit_code == ExitCode.USAGE
    assert "invalid prompt id" in str(info.value)
    assert "\n" not in str(info.value).replace(repr(bad), "")


def test_long_invalid_id_message_stays_short():
    with pytest.raises(InvalidId) as info:
        validate_id("A" * 5000)
    assert len(str(info.value)) < 400


def test_parse_spec_forms():
    assert parse_spec("greet") == VersionSpec("greet")
    assert parse_spec("greet@v3") == VersionSpec("greet", number=3)
    assert parse_spec("greet@production") == VersionSpec("greet", channel="production")
    assert parse_spec("greet", "v2") == VersionSpec("greet", number=2)
    assert parse_spec("greet", "staging") == VersionSpec("greet", channel="staging")
    assert str(parse_spec("greet@v3")) == "greet@v3"
    assert str(parse_spec("greet@staging")) == "greet@staging"
    assert str(parse_spec("greet")) == "greet"


@pytest.mark.parametrize("bad", ["", "greet@", "greet@v0", "greet@v01", "greet@V1", "greet@Prod", "Greet@v1", "greet@v1@v2", "../x@v1"])
def test_invalid_specs(bad):
    with pytest.raises((InvalidVersionSpec, InvalidId)) as info:
        parse_spec(bad)
    assert info.value.exit_code == ExitCode.USAGE


def test_spec_with_version_twice_is_refused():
    with pytest.raises(InvalidVersionSpec):
        parse_spec("greet@v1", "v2")


def test_versions():
    assert parse_version("v1") == 1
    assert parse_version("v23") == 23
    for bad in ("1", "v", "v0", "v-1", "vv1", "v1.0", ""):
        with pytest.raises(InvalidVersionSpec):
            parse_version(bad)


def test_tag_names_round_trip():
    assert tag_name("greet", 3) == "greet/v3"
    assert tag_ref("greet", 3) == "refs/tags/greet/v3"
    assert channel_ref("greet", "production") == "refs/promptctl/channels/greet/production"
    assert parse_tag_name("greet/v3") == ("greet", 3)
    for other in ("v1.0.0", "greet/latest", "greet/v0", "Greet/v1", "a/b/v1", "greet/v1/x", "release-1"):
        assert parse_tag_name(other) is None
    with pytest.raises(InvalidId):
        tag_ref("../x", 1)


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,99}", fullmatch=True), st.integers(min_value=1, max_value=10**6))
def test_every_valid_id_makes_a_parseable_tag(prompt_id, number):
    assert parse_tag_name(tag_name(prompt_id, number)) == (prompt_id, number)
    assert parse_spec(f"{prompt_id}@v{number}") == VersionSpec(prompt_id, number=number)


@given(st.text(max_size=120))
def test_validate_id_never_lets_a_path_through(text):
    try:
        validate_id(text)
    except InvalidId:
        return
    assert "/" not in text and "\\" not in text and ".." not in text and not text.startswith("-")
    assert text == text.lower() and " " not in text and 1 <= len(text) <= 100


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("500ms", 0.5), ("1h30m", 5400), ("7d", 604800), ("2 minutes", 120), ("1w", 604800), ("1.5s", 1.5)],
)
def test_duration_seconds_reads_units_and_compounds(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "1x", "1h junk", "soon"])
def test_duration_seconds_refuses_what_is_not_a_duration(text):
    assert duration_seconds(text) is None
    assert duration_seconds(text, bare_seconds=True) is None


def test_bare_numbers_are_seconds_only_when_allowed():
    assert duration_seconds("30") is None
    assert duration_seconds("30", bare_seconds=True) == 30

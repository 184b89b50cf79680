"""The prompt directory format: metadata, bodies, partials, fallback order, chat messages, content errors."""

import pytest

from promptctl.errors import (
    ExitCode,
    IncludeOutsideRegistry,
    InvalidContent,
    NotFound,
    NotUtf8,
    TemplateSyntaxError,
    YamlError,
)
from promptctl.promptfile import (
    body_file_name,
    fallback_chain,
    load_prompt,
    split_chat_source,
)

META = b"""\
description: Greets people.
owner: team@example.com
type: text
model: {name: gpt-4o-mini, temperature: 0}
inputs:
  name: {type: string, required: true, example: Ada}
tags: [demo]
"""

PARTIALS = {"_partials/tone.j2": b"Be kind.\n", "_partials/outer.j2": b'{% include "_partials/tone.j2" %} Always.\n'}


def read_partial(path):
    return PARTIALS.get(path)


def load(files, partials=read_partial):
    return load_prompt("greet", {"prompt.yaml": META, **files}, partials, where="prompts/greet")


def test_bodies_partials_and_hash():
    d = load({"body.j2": b'Hi {{ name }}.\n{% include "_partials/outer.j2" %}\n', "body.locale-de.j2": b"Hallo {{ name }}\n"})
    assert d.type == "text"
    assert d.model == {"name": "gpt-4o-mini", "temperature": 0}
    assert set(d.bodies) == {"body.j2", "body.locale-de.j2"}
    assert set(d.partials) == {"_partials/outer.j2", "_partials/tone.j2"}  # transitively
    assert set(d.files) == set(d.bodies) | set(d.partials)
    assert len(d.template_hash) == 64


def test_files_other_than_bodies_are_ignored():
    base = load({"body.j2": b"Hi {{ name }}\n"})
    more = load({"body.j2": b"Hi {{ name }}\n", "README.md": b"notes", "cases.jsonl": b"{}"})
    assert more.template_hash == base.template_hash


@pytest.mark.parametrize(
    ("locale", "tier", "expected"),
    [
        (None, None, [(None, None)]),
        ("de", None, [("de", None), (None, None)]),
        (None, "enterprise", [(None, "enterprise"), (None, None)]),
        ("de", "enterprise", [("de", "enterprise"), ("de", None), (None, "enterprise"), (None, None)]),
    ],
)
def test_fallback_chain_is_the_documented_order(locale, tier, expected):
    assert fallback_chain(locale, tier) == expected


def test_body_selection_and_fallback_flag():
    d = load(
        {
            "body.j2": b"default\n",
            "body.locale-de.j2": b"de\n",
            "body.tier-enterprise.j2": b"ent\n",
            "body.locale-de.tier-enterprise.j2": b"de ent\n",
        }
    )
    assert d.select_body() == d.select_body(None, None)
    assert (d.select_body().file, d.select_body().fallback) == ("body.j2", False)
    assert (d.select_body("de", "enterprise").file, d.select_body("de", "enterprise").fallback) == (
        "body.locale-de.tier-enterprise.j2",
        False,
    )
    pick = d.select_body("de", "free")
    assert (pick.file, pick.locale, pick.tier, pick.fallback) == ("body.locale-de.j2", "de", None, True)
    pick = d.select_body("fr", "enterprise")
    assert (pick.file, pick.locale, pick.tier, pick.fallback) == ("body.tier-enterprise.j2", None, "enterprise", True)
    pick = d.select_body("fr", "free")
    assert (pick.file, pick.fallback) == ("body.j2", True)
    assert body_file_name("de", "enterprise") == "body.locale-de.tier-enterprise.j2"


def test_no_default_body_is_not_found_when_nothing_matches():
    d = load({"body.locale-de.j2": b"de\n"})
    assert d.select_body("de").file == "body.locale-de.j2"
    with pytest.raises(NotFound):
        d.select_body("fr")


def test_chat_source_is_split_at_role_lines():
    source = "system:\nYou help.\n{% if x %}\nwith x\n{% endif %}\n\nuser:\n{{ q }}\nassistant:  \nOK\n"
    assert split_chat_source(source) == [
        ("system", "\nYou help.\n{% if x %}\nwith x\n{% endif %}\n\n"),
        ("user", "\n{{ q }}\n"),
        ("assistant", "\nOK\n"),
    ]
    assert split_chat_source("Just text {{ q }}\n") == [("system", "Just text {{ q }}\n")]
    # "user: hello" on one line is text, not a role marker (Prompty's convention: the marker is alone on its line)
    assert split_chat_source("system:\nsay user: hello\n") == [("system", "\nsay user: hello\n")]


# -- hash stability ---------------------------------------------------------------------------------------------


def test_hash_ignores_yaml_key_order_formatting_and_line_endings():
    base = load({"body.j2": b"Hi {{ name }}.\nBye.\n"})
    reordered = (
        b"inputs:\r\n  name:\r\n    example: Ada\r\n    required: true\r\n    type: string\r\n"
        b"model:\r\n  temperature: 0\r\n  name: gpt-4o-mini\r\ntype: text\r\ndescription: Greets people.\r\n"
    )
    other = load_prompt("greet", {"prompt.yaml": reordered, "body.j2": b"Hi {{ name }}.\r\nBye.  \r\n\r\n"}, read_partial)
    assert other.template_hash == base.template_hash


@pytest.mark.parametrize(
    "meta_change",
    [
        (b"description: Greets people.", b"description: Says hello to people."),
        (b"owner: team@example.com", b"owner: other@example.com"),
        (b"tags: [demo]", b"tags: [demo, new]"),
    ],
)
def test_hash_ignores_documentation_metadata(meta_change):
    base = load({"body.j2": b"Hi {{ name }}\n"})
    meta = META.replace(*meta_change)
    assert meta != META
    changed = load_prompt("greet", {"prompt.yaml": meta, "body.j2": b"Hi {{ name }}\n"}, read_partial)
    assert changed.template_hash == base.template_hash


@pytest.mark.parametrize(
    "meta_change",
    [
        (b"temperature: 0", b"temperature: 0.2"),
        (b"gpt-4o-mini", b"gpt-4o"),
        (b"required: true", b"required: false"),
        (b"type: text", b"type: chat"),
    ],
)
def test_hash_changes_with_output_metadata(meta_change):
    base = load({"body.j2": b"Hi {{ name }}\n"})
    changed = load_prompt("greet", {"prompt.yaml": META.replace(*meta_change), "body.j2": b"Hi {{ name }}\n"}, read_partial)
    assert changed.template_hash != base.template_hash


def test_hash_changes_with_a_body_or_an_included_partial():
    files = {"body.j2": b'Hi {{ name }}\n{% include "_partials/tone.j2" %}\n'}
    base = load(files)
    assert load({"body.j2": b'Hello {{ name }}\n{% include "_partials/tone.j2" %}\n'}).template_hash != base.template_hash
    assert load(files, {"_partials/tone.j2": b"Be terse.\n"}.get).template_hash != base.template_hash
    assert load({**files, "body.tier-pro.j2": b"pro\n"}).template_hash != base.template_hash


def test_unincluded_partial_does_not_matter():
    base = load({"body.j2": b"Hi\n"})
    assert load({"body.j2": b"Hi\n"}, {"_partials/tone.j2": b"changed\n"}.get).template_hash == base.template_hash


# -- content errors ---------------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line():
    bad = b"description: x\ninputs:\n  name: {type: string\nmodel: {}\n"
    with pytest.raises(YamlError) as info:
        load_prompt("greet", {"prompt.yaml": bad, "body.j2": b"x"}, read_partial, where="prompts/greet")
    message = str(info.value)
    assert info.value.exit_code == ExitCode.INVALID_CONTENT
    assert message.startswith("prompts/greet/prompt.yaml:4:") and "YAML syntax error" in message
    assert "\n" not in message


def test_jinja_syntax_error_names_file_and_line():
    with pytest.raises(TemplateSyntaxError) as info:
        load({"body.j2": b"line 1\nline 2\n{% if name %}\nnever closed\n"})
    assert info.value.exit_code == ExitCode.INVALID_CONTENT
    assert str(info.value).startswith("prompts/greet/body.j2:")
    assert "template syntax error" in str(info.value)
    with pytest.raises(TemplateSyntaxError) as info:
        load({"body.j2": b"one\ntwo {{ name }\nthree\n"})
    assert str(info.value).startswith("prompts/greet/body.j2:2:")


def test_jinja_syntax_error_in_a_partial_names_the_partial():
    with pytest.raises(TemplateSyntaxError) as info:
        load({"body.j2": b'{% include "_partials/bad.j2" %}\n'}, {"_partials/bad.j2": b"ok\n{% for x in %}\n"}.get)
    assert "_partials/bad.j2:2:" in str(info.value)


@pytest.mark.parametrize(
    "include",
    ["../secret.txt", "../../etc/passwd", "/etc/passwd", "_partials/../../x.j2", "..\\\\x.j2"],
)
def test_include_outside_the_registry_is_refused(include):
    body = ('{% include "' + include + '" %}\n').encode()
    with pytest.raises(IncludeOutsideRegistry) as info:
        load({"body.j2": body}, lambda path: pytest.fail(f"read {path!r}"))
    assert info.value.exit_code == ExitCode.INVALID_CONTENT
    assert "outside the registry" in str(info.value)


def test_dynamic_include_is_refused():
    with pytest.raises(InvalidContent) as info:
        load({"body.j2": b"{% include name %}\n"})
    assert "literal" in str(info.value)


def test_missing_partial_is_reported():
    with pytest.raises(NotFound) as info:
        load({"body.j2": b'{% include "_partials/nope.j2" %}\n'})
    assert "_partials/nope.j2" in str(info.value)


def test_non_utf8_body_is_refused():
    with pytest.raises(NotUtf8) as info:
        load({"body.j2": "café".encode("latin-1")})
    assert info.value.exit_code == ExitCode.INVALID_CONTENT
    assert str(info.value).startswith("prompts/greet/body.j2")


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"body.j2": b"x"}, None),
        ({}, "no body file"),
        ({"body.j2": b"x", "body.locale-de.tier-.j2": b"x"}, "unknown body file name"),
        ({"body.j2": b"x", "bodyguard.j2": b"x"}, "unknown body file name"),
    ],
)
def test_body_file_names(files, fragment):
    if fragment is None:
        load(files)
        return
    with pytest.raises(InvalidContent) as info:
        load(files)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        (b"- a list\n", "must be a mapping"),
        (b"type: completion\n", "type must be one of"),
        (b"model: gpt-4o\n", "model must be a mapping"),
        (b"inputs: [a]\n", "inputs must be a mapping"),
        (b"inputs:\n  bad-name: {type: string}\n", "not a valid template variable name"),
        (b"inputs:\n  a: {type: decimal}\n", "has type 'decimal'"),
        (b"tags: support\n", "tags must be a list"),
    ],
)
def test_invalid_metadata(meta, fragment):
    with pytest.raises(InvalidContent) as info:
        load_prompt("greet", {"prompt.yaml": meta, "body.j2": b"x"}, read_partial)
    assert fragment in str(info.value)
    assert info.value.exit_code == ExitCode.INVALID_CONTENT


def test_missing_metadata_file():
    with pytest.raises(InvalidContent) as info:
        load_prompt("greet", {"body.j2": b"x"}, read_partial, where="prompts/greet")
    assert "prompt.yaml" in str(info.value)

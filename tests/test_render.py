"""Rendering in Jinja2's sandbox: inputs, defaults, types, chat messages, partials."""

import pytest

from promptctl.errors import ExitCode, InputTypeError, MissingVariable, RenderError
from promptctl.promptfile import load_prompt
from promptctl.render import CompiledPrompt, check_inputs

TEXT_META = b"""\
type: text
inputs:
  name: {type: string, required: true}
  count: {type: integer, required: false, default: 3}
  items: {type: list, required: false}
"""

CHAT_META = TEXT_META.replace(b"type: text", b"type: chat")
PARTIALS = {"_partials/tone.j2": b"Be kind.\n"}


def compiled(meta, body, extra=None):
    files = {"prompt.yaml": meta, "body.j2": body, **(extra or {})}
    return CompiledPrompt(load_prompt("greet", files, PARTIALS.get))


def test_text_render_with_defaults_and_partials():
    prompt = compiled(TEXT_META, b'Hi {{ name }} x{{ count }}{% if items %} {{ items|join(",") }}{% endif %}\n{% include "_partials/tone.j2" %}\n')
    assert prompt.render("body.j2", {"name": "Ada"}) == "Hi Ada x3\nBe kind."
    assert prompt.render("body.j2", {"name": "Ada", "count": 5, "items": ["a", "b"]}) == "Hi Ada x5 a,b\nBe kind."
    assert prompt.messages("body.j2", {"name": "Ada"}) == [{"role": "user", "content": "Hi Ada x3\nBe kind."}]


def test_missing_required_variable():
    prompt = compiled(TEXT_META, b"Hi {{ name }}\n")
    with pytest.raises(MissingVariable) as info:
        prompt.render("body.j2", {})
    assert info.value.exit_code == ExitCode.USAGE
    assert str(info.value) == "greet: missing required variable 'name'"


def test_undeclared_undefined_variable_is_strict():
    prompt = compiled(TEXT_META, b"Hi {{ name }} {{ surname }}\n")
    with pytest.raises(MissingVariable) as info:
        prompt.render("body.j2", {"name": "Ada"})
    assert "surname" in str(info.value)


def test_wrong_input_type():
    prompt = compiled(TEXT_META, b"{{ name }} {{ count }}\n")
    with pytest.raises(InputTypeError) as info:
        prompt.render("body.j2", {"name": "Ada", "count": "3"})
    assert "should be integer" in str(info.value)
    with pytest.raises(InputTypeError):
        prompt.render("body.j2", {"name": "Ada", "count": True})  # a bool is not an integer


def test_check_inputs_passes_extras_through():
    assert check_inputs("p", {"a": {"required": False, "default": 1}}, {"b": 2}) == {"a": 1, "b": 2}
    assert check_inputs("p", {"a": None}, {}) == {"a": None}


def test_sandbox_blocks_unsafe_attribute_access():
    prompt = compiled(TEXT_META, b"{{ name.__class__.__mro__ }}\n")
    with pytest.raises(RenderError):
        prompt.render("body.j2", {"name": "Ada"})


def test_output_is_not_html_escaped():
    prompt = compiled(TEXT_META, b"{{ name }}\n")
    assert prompt.render("body.j2", {"name": "<b>&</b>"}) == "<b>&</b>"


def test_chat_messages_are_rendered_per_role():
    body = b"""\
system:
You help {{ name }}.
{% include "_partials/tone.j2" %}

user:
{% for item in items or [] %}- {{ item }}
{% endfor %}
Count: {{ count }}

assistant:
Sure.
"""
    prompt = compiled(CHAT_META, body)
    messages = prompt.messages("body.j2", {"name": "Ada", "items": ["x", "y"]})
    assert messages == [
        {"role": "system", "content": "You help Ada.\nBe kind."},
        {"role": "user", "content": "- x\n- y\n\nCount: 3"},
        {"role": "assistant", "content": "Sure."},
    ]
    text = prompt.render("body.j2", {"name": "Ada", "items": ["x", "y"]})
    assert text.startswith("system:\nYou help Ada.") and "\n\nuser:\n- x" in text


def test_locale_and_tier_bodies_render_their_own_text():
    prompt = compiled(TEXT_META, b"Hi {{ name }}\n", {"body.locale-de.j2": b"Hallo {{ name }}\n"})
    assert prompt.render("body.locale-de.j2", {"name": "Ada"}) == "Hallo Ada"
    prompt.precompile()

"""promptctl.yaml: the PyYAML-free fast reader never disagrees with PyYAML, and config errors read well."""

import yaml
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from promptctl.config import DEFAULT_CONFIG_TEXT, _parse_simple, parse_config

SAFE = ["prompts", "production", "staging", "a-b", "x_y", "dir/sub", "v1", "treatment"]
TRICKY = ["on", "off", "yes", "No", "null", "True", "1", "2.5", "~", "", "'q'", "\"q\"", "é", "a:b", "-x", ".inf",
          "[a]", "{}", "[]", "#c", "a #c", "key:"]
# Mostly words the fast reader accepts (so it really answers), sometimes one that must send it to PyYAML.
WORDS = st.one_of(st.sampled_from(SAFE), st.sampled_from(SAFE), st.sampled_from(SAFE), st.sampled_from(TRICKY))


@st.composite
def documents(draw):
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(WORDS)
        shape = draw(st.integers(0, 4))
        if shape == 0:
            lines.append(f"{key}: {draw(WORDS)}")
        elif shape == 1:
            lines.append(f"{key}: [{', '.join(draw(st.lists(WORDS, max_size=3)))}]")
        elif shape == 2:
            lines.append(f"{key}:")
            for _ in range(draw(st.integers(0, 3))):
                lines.append(f"{draw(st.sampled_from(['  ', '  ', '    ', ' ', chr(9)]))}{draw(WORDS)}: {draw(WORDS)}")
        elif shape == 3:
            lines.append(f"# {draw(WORDS)}")
        else:
            lines.append(f"{key}: {{}}   # {draw(WORDS)}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n", "\r\n", "\n\n"]))


def _pyyaml(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return "error"


@settings(max_examples=400, deadline=None)
@given(documents())
def test_fast_reader_agrees_with_pyyaml_or_steps_aside(text):
    fast = _parse_simple(text.encode())
    if fast is not None:
        assert fast == _pyyaml(text)


def test_the_file_promptctl_init_writes_is_read_without_pyyaml():
    text = DEFAULT_CONFIG_TEXT.format(registry="prompts")
    fast = _parse_simple(text.encode())
    assert fast is not None and fast == yaml.safe_load(text)
    assert parse_config(fast).protected == ("production",)


def test_broken_config_yaml_is_reported_with_file_and_line(versioned_repo):
    config = versioned_repo / "promptctl.yaml"
    config.write_text(config.read_text() + "channels: [unclosed\n")
    proc = run_cli(versioned_repo, "log", "support_intent_classifier")
    assert proc.returncode == 4
    assert proc.stderr.startswith("promptctl: error: promptctl.yaml:") and len(proc.stderr.splitlines()) == 1

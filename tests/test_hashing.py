"""The template hash: its canonical form, recomputed here from the documented recipe alone."""

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptctl.errors import ExitCode, NotUtf8
from promptctl.hashing import HASH_FORMAT, canonical_document, normalize_text, short_hash, template_hash

META = {"type": "text", "model": {"name": "gpt-4o-mini", "temperature": 0}, "inputs": {"message": {"type": "string"}}}
FILES = {"body.j2": "Hello {{ message }}\n", "_partials/tone.j2": "Be kind.\n"}


def recipe(meta, files):
    """docs/design.md, 'Template hash': written from the text, not from promptctl's code."""
    doc = {
        "format": "promptctl-template/1",
        "meta": {"type": meta.get("type", "text"), "model": meta.get("model") or {}, "inputs": meta.get("inputs") or {}},
        "files": files,
    }
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def test_hash_matches_the_documented_recipe():
    assert HASH_FORMAT == "promptctl-template/1"
    assert template_hash(META, FILES) == recipe(META, FILES)
    digest = template_hash(META, FILES)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert short_hash(digest) == digest[:12]


def test_non_ascii_text_is_hashed_as_utf8_not_escaped():
    files = {"body.j2": "Grüße, {{ name }} — 你好\n"}
    assert b"\\u" not in canonical_document({}, files)
    assert template_hash({}, files) == recipe({}, files)


def test_only_output_relevant_metadata_is_hashed():
    base = template_hash(META, FILES)
    assert template_hash({**META, "description": "other", "owner": "x@y", "tags": ["a"], "drift": {}}, FILES) == base
    assert template_hash({**META, "model": {"name": "gpt-4o-mini", "temperature": 0.1}}, FILES) != base
    assert template_hash({**META, "inputs": {}}, FILES) != base
    assert template_hash({**META, "type": "chat"}, FILES) != base
    assert template_hash(META, {**FILES, "_partials/tone.j2": "Be terse.\n"}) != base
    assert template_hash(META, {**FILES, "body.locale-de.j2": "Hallo\n"}) != base


def test_defaults_equal_missing_sections():
    assert template_hash({}, FILES) == template_hash({"type": "text", "model": None, "inputs": {}}, FILES)


def test_key_order_does_not_matter():
    reordered = {"inputs": META["inputs"], "model": {"temperature": 0, "name": "gpt-4o-mini"}, "type": "text"}
    assert template_hash(reordered, dict(reversed(list(FILES.items())))) == template_hash(META, FILES)


@pytest.mark.parametrize(
    "variant",
    [
        b"line one\nline two\n",
        b"line one\r\nline two\r\n",
        b"line one\rline two\r",
        b"line one\nline two",
        b"line one\nline two\n\n\n",
        b"line one\nline two \t \n  \n",
        b"\xef\xbb\xbfline one\r\nline two",
    ],
)
def test_normalisation_variants_agree(variant):
    assert normalize_text(variant) == "line one\nline two\n"


def test_leading_and_inner_whitespace_is_kept():
    assert normalize_text(b"  indented\n\n\nkept  \nend") == "  indented\n\n\nkept  \nend\n"


def test_non_utf8_is_an_invalid_content_error_naming_the_file_and_line():
    with pytest.raises(NotUtf8) as info:
        normalize_text(b"ok\ncaf\xe9\n", "prompts/x/body.j2")
    assert info.value.exit_code == ExitCode.INVALID_CONTENT
    assert str(info.value) == "prompts/x/body.j2:2: not valid UTF-8 (byte 0xe9 at offset 6)"


def test_only_ascii_whitespace_is_trailing_whitespace():
    assert normalize_text(b"x \t\f\v\r\n") == "x\n"
    assert normalize_text("x\u00a0\u3000".encode()) == "x\u00a0\u3000\n"  # Unicode spaces are content


text_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\ufeff"), max_size=20), max_size=8)
trailing = st.text(alphabet=" \t\n\r\f\v", max_size=6)


@settings(max_examples=150, deadline=None)
@given(text_lines, st.sampled_from(["\n", "\r\n", "\r"]), trailing, st.booleans())
def test_normalisation_property(lines, newline, trailing, bom):
    """Line endings, a BOM and whitespace at the end of the file never change the normalised text; it is
    idempotent and always ends with exactly one newline."""
    reference = normalize_text("\n".join(lines).encode())
    variant = ("\ufeff" if bom else "") + newline.join(lines) + trailing
    assert normalize_text(variant.encode()) == reference
    assert normalize_text(reference.encode()) == reference
    assert reference.endswith("\n") and not reference.endswith("\n\n") or reference == "\n"
    assert "\r" not in reference


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans()), max_size=5))
def test_meta_hash_is_independent_of_insertion_order(model):
    shuffled = dict(reversed(list(model.items())))
    assert template_hash({"model": model}, FILES) == template_hash({"model": shuffled}, FILES)


def _python_blocks(markdown: str) -> list[str]:
    return [block.split("```", 1)[0] for block in markdown.split("```python\n")[1:]]


def test_documented_recipes_recompute_the_hash_without_promptctl(tmp_path):
    """The README and docs/format.md snippets, run as a user would, agree with promptctl."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from promptctl.promptfile import load_prompt

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "example-prompts" / "prompts", tmp_path / "prompts")
    prompt_dir = tmp_path / "prompts" / "ticket_summarizer"
    files = {p.name: p.read_bytes() for p in prompt_dir.iterdir()}
    expected = load_prompt("ticket_summarizer", files, lambda p: (tmp_path / "prompts" / p).read_bytes()).template_hash
    snippets = [
        code
        for doc in (root / "README.md", root / "docs" / "format.md")
        for code in _python_blocks(doc.read_text(encoding="utf-8"))
        if "promptctl-template/1" in code
    ]
    assert len(snippets) >= 2
    for code in snippets:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected

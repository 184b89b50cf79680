"""The registry configuration file, ``promptctl.yaml`` at the Git top level."""

from __future__ import annotations

import posixpath
from pathlib import Path

from .errors import InvalidContent, NoRegistry
from .records import Factory, Record
from .spec import validate_channel

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings
if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "promptctl.yaml"
DEFAULT_REGISTRY_DIR = "prompts"
SCHEMA_PRESETS = ("prompt", "openinference", "langfuse", "genai")

DEFAULT_CONFIG_TEXT = """\
# promptctl registry configuration (see docs/format.md)
registry: {registry}          # directory holding one sub-directory per prompt
channels:
  protected: [production]     # promote/rollback on these channels needs --reason
  require_signed: []          # channels whose moves must be signed (git commit -S)
variants: {{}}                  # variant label -> channel, e.g. {{treatment: experiment-b}}
schema: prompt                # span attribute preset: prompt | openinference | langfuse | genai
"""


class Config(Record):
    registry: str = DEFAULT_REGISTRY_DIR
    protected: tuple[str, ...] = ()
    require_signed: tuple[str, ...] = ()
    variants: dict[str, str] = Factory(dict)
    schema: str = "prompt"
    raw: dict[str, Any] = Factory(dict)


def registry_dir_ok(registry: Any) -> bool:
    """A relative directory strictly inside the repository (``prompts``, ``app/prompts``), not ``.git``."""
    if not isinstance(registry, str) or not registry.strip() or "\\" in registry or "\0" in registry:
        return False
    normalised = posixpath.normpath(registry)
    parts = normalised.split("/")
    return not registry.startswith("/") and normalised not in (".", "..") and parts[0] != ".." and ".git" not in parts


def parse_config(data: Any, where: str = CONFIG_FILE) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidContent(f"{where}: must be a mapping")
    registry = data.get("registry", DEFAULT_REGISTRY_DIR)
    if not registry_dir_ok(registry):
        raise InvalidContent(f"{where}: registry must be a relative directory inside the repository, not {registry!r}")
    channels = data.get("channels") or {}
    if not isinstance(channels, dict):
        raise InvalidContent(f"{where}: channels must be a mapping")
    protected = tuple(validate_channel(c) for c in channels.get("protected") or [])
    require_signed = tuple(validate_channel(c) for c in channels.get("require_signed") or [])
    variants = data.get("variants") or {}
    if not isinstance(variants, dict):
        raise InvalidContent(f"{where}: variants must be a mapping of variant label -> channel")
    variants = {str(k): validate_channel(v) for k, v in variants.items()}
    schema = data.get("schema", "prompt")
    if schema not in SCHEMA_PRESETS:
        raise InvalidContent(f"{where}: schema must be one of {', '.join(SCHEMA_PRESETS)}")
    return Config(posixpath.normpath(registry), protected, require_signed, variants, schema, data)


def load_config(root: Path) -> Config:
    path = root / CONFIG_FILE
    if not path.is_file():
        raise NoRegistry(f"no promptctl registry in {root} (no {CONFIG_FILE}); run 'promptctl init' first")
    data = path.read_bytes()
    simple = _parse_simple(data)
    if simple is None:
        from .promptfile import load_yaml

        return parse_config(load_yaml(data, CONFIG_FILE))
    return parse_config(simple)


# A config file in the shape ``promptctl init`` writes (comments, ``key: word``, ``key: [a, b]``, ``key: {}``,
# one level of ``key:`` + indented ``sub: ...``) is read here without importing PyYAML (~13 ms of every
# command's start-up). The grammar is deliberately narrow: a scalar is a word that YAML reads as a string;
# anything else (numbers, booleans, quotes, tabs, non-ASCII, block lists, deeper nesting, duplicate keys...)
# returns None and the file goes through PyYAML, so the result is always what PyYAML would return.
_WORD = r"[A-Za-z_][A-Za-z0-9_./-]*"
_NOT_STRINGS = frozenset("y n yes no true false on off null".split())


def _parse_simple(data: bytes) -> dict[str, Any] | None:
    import re

    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "\r" in text or "\t" in text or "\f" in text or "\v" in text:
        return None
    line_re = re.compile(rf"( *)({_WORD}):(?: +(\S.*?))?(?: +#.*)?")
    value_re = re.compile(rf"{_WORD}|\[ *(?:{_WORD} *(?:, *{_WORD} *)*)?\]|\{{ *\}}")
    result: dict[str, Any] = {}
    parent: dict[str, Any] | None = None  # the mapping of the open ``key:`` block, if any
    indent = ""
    for line in text.split("\n"):
        stripped = line.strip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        match = line_re.fullmatch(line.rstrip(" "))
        if match is None:
            return None
        spaces, key, value = match.groups()
        if key.lower() in _NOT_STRINGS:
            return None
        if spaces:
            if parent is None or (indent and spaces != indent):
                return None
            indent = spaces
            target = parent
        else:
            if parent is not None and not parent:
                return None  # ``key:`` with no indented lines: null, left to PyYAML
            parent, indent = None, ""
            target = result
        if key in target:
            return None
        if value is None:
            if spaces:
                return None  # deeper nesting
            parent = target[key] = {}
            continue
        if not value_re.fullmatch(value):
            return None
        if value.startswith("["):
            items = [item.strip(" ") for item in value[1:-1].split(",")] if value[1:-1].strip(" ") else []
            if any(item.lower() in _NOT_STRINGS for item in items):
                return None
            target[key] = items
        elif value.startswith("{"):
            target[key] = {}
        elif value.lower() in _NOT_STRINGS:
            return None
        else:
            target[key] = value
    if parent is not None and not parent:
        return None
    return result or None

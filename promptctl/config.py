"""The registry configuration file, ``promptctl.yaml`` at the Git top level."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidContent, NoRegistry
from .spec import validate_channel

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


@dataclass(frozen=True)
class Config:
    registry: str = DEFAULT_REGISTRY_DIR
    protected: tuple[str, ...] = ()
    require_signed: tuple[str, ...] = ()
    variants: dict[str, str] = field(default_factory=dict)
    schema: str = "prompt"
    raw: dict[str, Any] = field(default_factory=dict)


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
    from .promptfile import load_yaml

    path = root / CONFIG_FILE
    if not path.is_file():
        raise NoRegistry(f"no promptctl registry in {root} (no {CONFIG_FILE}); run 'promptctl init' first")
    return parse_config(load_yaml(path.read_bytes(), CONFIG_FILE))

"""Span attribute schema presets: which attribute names a resolved prompt is written under.

The names of other projects are copied from their own definitions, never guessed (the tests check them
against the installed packages):

* ``openinference``: ``openinference.semconv.trace.SpanAttributes`` (PROMPT_ID, PROMPT_VENDOR,
  LLM_PROMPT_TEMPLATE, LLM_PROMPT_TEMPLATE_VERSION, LLM_PROMPT_TEMPLATE_VARIABLES).
* ``langfuse``: ``LangfuseOtelSpanAttributes.OBSERVATION_PROMPT_NAME`` / ``OBSERVATION_PROMPT_VERSION``
  (langfuse Python SDK ``langfuse/_client/attributes.py``; Langfuse's OpenTelemetry property mapping maps them
  to the observation's promptName / promptVersion, the version being the integer prompt version).
* ``genai``: ``gen_ai.prompt.name`` (``GEN_AI_PROMPT_NAME`` in opentelemetry-semantic-conventions
  ``_incubating/attributes/gen_ai_attributes.py``). That package defines no ``gen_ai.prompt.version``, so
  none is emitted.

Every preset also writes promptctl's identity (``prompt.id``, ``prompt.version``, ``prompt.template_hash``,
``prompt.stale``): the analyses (drift, provenance, ``promptctl which``) join on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# When an attribute is written.
ALWAYS = "always"
WHEN_SET = "when set"  # omitted when the value is None (OTel attributes cannot be None)
WHEN_TRUE = "when true"
WITH_TEMPLATE = "include_template=True"
WITH_VARIABLES = "include_variables=True"

VENDOR = "promptctl"


class AttributeSpec:
    """One attribute of a preset: its name, where its value comes from, and when it is written."""

    __slots__ = ("name", "field", "type", "when", "description")

    def __init__(self, name: str, field: str, type_: str, when: str, description: str):
        self.name = name
        self.field = field  # a ResolvedPrompt field, or "vendor" / "version_number" / "template" / "variables"
        self.type = type_
        self.when = when
        self.description = description

    def __repr__(self) -> str:
        return f"<AttributeSpec {self.name} ({self.when})>"


_spec = AttributeSpec


ID = _spec("prompt.id", "id", "string", ALWAYS, "prompt id (its directory name)")
VERSION = _spec("prompt.version", "version", "string", WHEN_SET, "version served, e.g. v23 (absent for an in-code fallback)")
HASH = _spec("prompt.template_hash", "template_hash", "string", ALWAYS, "template hash, 12-hex short form")
STALE = _spec("prompt.stale", "stale", "boolean", WHEN_TRUE, "the registry could not be re-read: the last good version is served")
IDENTITY = (ID, VERSION, HASH, STALE)

PRESETS: dict[str, tuple[AttributeSpec, ...]] = {
    "prompt": (
        ID,
        VERSION,
        HASH,
        _spec("prompt.variant", "variant", "string", WHEN_SET, "variant label passed to get()"),
        _spec("prompt.locale", "locale", "string", WHEN_SET, "locale asked for"),
        _spec("prompt.tier", "tier", "string", WHEN_SET, "tier asked for"),
        _spec(
            "prompt.condition.fallback",
            "fallback",
            "boolean",
            ALWAYS,
            "the exact locale/tier body was missing (a fallback body served), or the in-code fallback served",
        ),
        _spec("prompt.channel", "channel", "string", WHEN_SET, "channel that chose the version (absent when pinned)"),
        _spec(
            "prompt.published_at",
            "published_at",
            "string",
            WHEN_SET,
            "publication time of the manifest served (registries read over HTTP: promptctl publish)",
        ),
        STALE,
        _spec("prompt.template", "template", "string", WITH_TEMPLATE, "the body source served (Jinja2)"),
        _spec("prompt.variables", "variables", "string (JSON object)", WITH_VARIABLES, "the variables of the last render"),
    ),
    "openinference": (
        ID,
        _spec("prompt.vendor", "vendor", "string", ALWAYS, 'origin of the prompt: "promptctl"'),
        _spec("llm.prompt_template.version", "version", "string", WHEN_SET, "version served, e.g. v23"),
        _spec("llm.prompt_template.template", "template", "string", WITH_TEMPLATE, "the body source served (Jinja2)"),
        _spec(
            "llm.prompt_template.variables", "variables", "string (JSON object)", WITH_VARIABLES, "the variables of the last render"
        ),
        VERSION,
        HASH,
        STALE,
    ),
    "langfuse": (
        _spec("langfuse.observation.prompt.name", "id", "string", ALWAYS, "Langfuse prompt name (= prompt id)"),
        _spec(
            "langfuse.observation.prompt.version", "version_number", "int", WHEN_SET, "Langfuse prompt version (23 for v23)"
        ),
        *IDENTITY,
    ),
    "genai": (
        _spec("gen_ai.prompt.name", "id", "string", ALWAYS, "GenAI semantic conventions prompt name (= prompt id)"),
        *IDENTITY,
    ),
}
DEFAULT_PRESET = "prompt"


def resolve_schema(schema: str | Iterable[str] | None) -> tuple[AttributeSpec, ...]:
    """The attribute specs of one preset or several (``"prompt,langfuse"`` or a list), names de-duplicated."""
    if schema is None:
        schema = DEFAULT_PRESET
    names = [s.strip() for s in schema.split(",")] if isinstance(schema, str) else list(schema)
    specs: dict[str, AttributeSpec] = {}
    for name in names:
        preset = PRESETS.get(name)
        if preset is None:
            from ..errors import UsageError

            raise UsageError(f"unknown attribute schema {name!r}: use one of {', '.join(PRESETS)}")
        for spec in preset:
            specs.setdefault(spec.name, spec)
    return tuple(specs.values())


def value_of(field: str, prompt: Any) -> Any:
    if field == "vendor":
        return VENDOR
    if field == "version_number":
        version = prompt.version
        return int(version[1:]) if version else None
    if field == "template":
        return prompt.template_source
    return getattr(prompt, field)


def build_attributes(prompt: Any, specs: Sequence[AttributeSpec], include_template: bool) -> dict[str, Any]:
    """The attributes of a resolved prompt (without variables, which are only known at render time)."""
    attributes: dict[str, Any] = {}
    for spec in specs:
        when = spec.when
        if when == WITH_VARIABLES or (when == WITH_TEMPLATE and not include_template):
            continue
        value = value_of(spec.field, prompt)
        if when == WHEN_TRUE and not value:
            continue
        if value is None:
            continue
        attributes[spec.name] = value
    return attributes


def variable_names(specs: Sequence[AttributeSpec]) -> tuple[str, ...]:
    return tuple(spec.name for spec in specs if spec.when == WITH_VARIABLES)


def variables_json(variables: Mapping[str, Any]) -> str:
    import json

    return json.dumps(variables, ensure_ascii=False, sort_keys=True, default=str)


def schema_table(name: str) -> list[dict[str, str]]:
    """One preset's attributes as rows (for ``promptctl schema`` and the docs), generated from the specs."""
    return [
        {"attribute": s.name, "type": s.type, "when": s.when, "description": s.description} for s in PRESETS[name]
    ]

"""The prompt directory format: metadata, body files, partials and the body fallback order.

Works on bytes handed in by a caller (the working tree, a Git version, or an export), so the CLI and the
runtime loader share one parser. Jinja2 and YAML are imported only when a prompt is actually parsed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import IncludeOutsideRegistry, InvalidContent, NotFound, TemplateSyntaxError, YamlError
from .hashing import normalize_text, template_hash

METADATA_FILE = "prompt.yaml"
PARTIALS_DIR = "_partials"
LOCALE_RE = r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*"
TIER_RE = r"[a-z][a-z0-9_]{0,39}"
BODY_FILE = re.compile(rf"body(?:\.locale-(?P<locale>{LOCALE_RE}))?(?:\.tier-(?P<tier>{TIER_RE}))?\.j2")
INPUT_TYPES = {"string", "integer", "number", "boolean", "list", "object"}
PROMPT_TYPES = {"text", "chat"}
CHAT_ROLES = ("system", "user", "assistant", "tool")
ROLE_LINE = re.compile(r"^(system|user|assistant|tool):[ \t]*$", re.MULTILINE)

PartialReader = Callable[[str], "bytes | None"]


def body_file_name(locale: str | None = None, tier: str | None = None) -> str:
    name = "body"
    if locale:
        name += f".locale-{locale}"
    if tier:
        name += f".tier-{tier}"
    return name + ".j2"


def fallback_chain(locale: str | None, tier: str | None) -> list[tuple[str | None, str | None]]:
    """The documented order: locale+tier, locale, tier, default (skipping combinations not asked for)."""
    chain: list[tuple[str | None, str | None]] = []
    for candidate in ((locale, tier), (locale, None), (None, tier), (None, None)):
        if (candidate[0] is None or locale) and (candidate[1] is None or tier) and candidate not in chain:
            chain.append(candidate)
    return chain


@dataclass(frozen=True)
class BodySelection:
    file: str
    locale: str | None
    tier: str | None
    fallback: bool


@dataclass
class PromptDefinition:
    """One prompt at one state (working tree or a version): parsed, validated and hashed."""

    prompt_id: str
    meta: dict[str, Any]
    bodies: dict[str, str]  # body file name -> normalised source
    partials: dict[str, str]  # registry-relative path -> normalised source (transitively included)
    template_hash: str
    files: dict[str, str] = field(default_factory=dict)  # every hashed file, as in the canonical document

    @property
    def type(self) -> str:
        return self.meta.get("type", "text")

    @property
    def inputs(self) -> dict[str, Any]:
        return self.meta.get("inputs") or {}

    @property
    def model(self) -> dict[str, Any]:
        return self.meta.get("model") or {}

    def select_body(self, locale: str | None = None, tier: str | None = None) -> BodySelection:
        chain = fallback_chain(locale or None, tier or None)
        for index, (loc, tr) in enumerate(chain):
            name = body_file_name(loc, tr)
            if name in self.bodies:
                return BodySelection(name, loc, tr, fallback=index > 0)
        raise NotFound(f"{self.prompt_id}: no body for locale={locale!r} tier={tier!r} and no default body.j2")

    def template_source(self, name: str) -> str | None:
        """Source for a Jinja2 template name: a body of this prompt or a registry-relative partial."""
        if name in self.bodies:
            return self.bodies[name]
        return self.partials.get(name)


def load_yaml(data: bytes, where: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(normalize_text(data, where), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(f"{where}{line}: YAML syntax error: {problem}") from None


def validate_meta(meta: Any, where: str) -> dict[str, Any]:
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InvalidContent(f"{where}: the metadata must be a mapping, not {type(meta).__name__}")
    kind = meta.get("type", "text")
    if kind not in PROMPT_TYPES:
        raise InvalidContent(f"{where}: type must be one of {sorted(PROMPT_TYPES)}, not {kind!r}")
    model = meta.get("model")
    if model is not None and not isinstance(model, dict):
        raise InvalidContent(f"{where}: model must be a mapping (name, temperature, ...)")
    inputs = meta.get("inputs")
    if inputs is not None:
        if not isinstance(inputs, dict):
            raise InvalidContent(f"{where}: inputs must be a mapping of name -> {{type, required, example}}")
        for name, spec in inputs.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise InvalidContent(f"{where}: input name {name!r} is not a valid template variable name")
            if spec is None:
                inputs[name] = spec = {}
            if not isinstance(spec, dict):
                raise InvalidContent(f"{where}: input {name!r} must be a mapping (type, required, example)")
            if spec.get("type", "string") not in INPUT_TYPES:
                raise InvalidContent(
                    f"{where}: input {name!r} has type {spec.get('type')!r}; use one of {sorted(INPUT_TYPES)}"
                )
    tags = meta.get("tags")
    if tags is not None and not isinstance(tags, list):
        raise InvalidContent(f"{where}: tags must be a list")
    return meta


def _jinja_env():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment()


def _parse(env, source: str, where: str):
    import jinja2

    try:
        return env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None


def resolve_include(name: Any, where: str) -> str:
    """A registry-relative include name, normalised; refuses anything that leaves the registry."""
    if not isinstance(name, str):
        raise InvalidContent(f"{where}: only literal include names are allowed (e.g. \"_partials/tone.j2\")")
    normalised = posixpath.normpath(name)
    if name.startswith("/") or normalised == ".." or normalised.startswith("../") or "\\" in name or "\0" in name:
        raise IncludeOutsideRegistry(f"{where}: include {name!r} points outside the registry")
    return normalised


def referenced_templates(env, source: str, where: str) -> list[str]:
    from jinja2 import meta as jmeta

    ast = _parse(env, source, where)
    names = []
    for name in jmeta.find_referenced_templates(ast):
        names.append(resolve_include(name, where))
    return names


def load_prompt(
    prompt_id: str,
    files: Mapping[str, bytes],
    read_partial: PartialReader,
    where: str = "",
) -> PromptDefinition:
    """Parse a prompt directory's files (name -> bytes) and the partials they include; compute its hash.

    ``read_partial(path)`` returns the bytes of a registry-relative path, or None when it does not exist.
    ``where`` prefixes error messages (e.g. ``prompts/support_intent_classifier``).
    """
    where = where or prompt_id
    if METADATA_FILE not in files:
        raise InvalidContent(f"{where}: missing {METADATA_FILE}")
    meta = validate_meta(load_yaml(files[METADATA_FILE], f"{where}/{METADATA_FILE}"), f"{where}/{METADATA_FILE}")
    bodies: dict[str, str] = {}
    for name, data in files.items():
        if name == METADATA_FILE or not name.startswith("body") or not name.endswith(".j2"):
            continue
        if not BODY_FILE.fullmatch(name):
            raise InvalidContent(
                f"{where}/{name}: unknown body file name; use body.j2, body.locale-<locale>.j2, "
                "body.tier-<tier>.j2 or body.locale-<locale>.tier-<tier>.j2"
            )
        bodies[name] = normalize_text(data, f"{where}/{name}")
    if not bodies:
        raise InvalidContent(f"{where}: no body file (expected at least body.j2)")

    env = _jinja_env()
    partials: dict[str, str] = {}
    pending = [(name, f"{where}/{name}", src) for name, src in sorted(bodies.items())]
    while pending:
        _name, location, source = pending.pop()
        for include in referenced_templates(env, source, location):
            if include in partials or include in bodies:
                continue
            data = read_partial(include)
            if data is None:
                raise NotFound(f"{location}: included template {include!r} does not exist in the registry")
            partials[include] = normalize_text(data, include)
            pending.append((include, include, partials[include]))

    hashed = {**bodies, **partials}
    return PromptDefinition(
        prompt_id=prompt_id,
        meta=meta,
        bodies=bodies,
        partials=partials,
        template_hash=template_hash(meta, hashed),
        files=hashed,
    )


def split_chat_source(source: str) -> list[tuple[str, str]]:
    """Split a chat body into (role, template source) before rendering (Prompty's role-marker lines)."""
    parts = ROLE_LINE.split(source)
    messages: list[tuple[str, str]] = []
    preamble = parts[0].strip()
    if preamble:
        messages.append(("system", parts[0]))
    for index in range(1, len(parts), 2):
        messages.append((parts[index], parts[index + 1]))
    return messages

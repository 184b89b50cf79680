"""The prompt directory format: metadata, body files, partials and the body fallback order.

Works on bytes handed in by a caller (the working tree, a Git version, or an export), so the CLI and the
runtime loader share one parser. Jinja2 and YAML are imported only when a prompt is actually parsed.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import IncludeOutsideRegistry, InvalidContent, NotFound, TemplateSyntaxError, YamlError
from .hashing import canonical_meta, normalize_text, template_hash

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


class _NotPlain(Exception):
    """A YAML node the fast constructor leaves to PyYAML's own (aliases, merge keys, custom tags...)."""


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str": "construct_yaml_str",
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
    "tag:yaml.org,2002:null": "construct_yaml_null",
    "tag:yaml.org,2002:timestamp": "construct_yaml_timestamp",
}


def _construct_plain(node, constructor, seen: set[int]) -> Any:
    """Python data for a composed node, as ``yaml.safe_load`` builds it, for the plain subset (mappings,
    sequences, core scalars, no aliases or merge keys). SafeConstructor's generator machinery costs three
    times the parse itself; this direct walk reuses its scalar constructors so values come out identical."""
    import yaml

    if id(node) in seen:  # an alias: shared (maybe recursive) structure, leave it to PyYAML
        raise _NotPlain
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        method = _SCALAR_TAGS.get(node.tag)
        if method is None:
            raise _NotPlain
        return getattr(constructor, method)(node)
    if isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
        result = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _NotPlain
            key = _construct_plain(key_node, constructor, seen)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise _NotPlain
            result[key] = _construct_plain(value_node, constructor, seen)
        return result
    if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
        return [_construct_plain(item, constructor, seen) for item in node.value]
    raise _NotPlain


@functools.lru_cache(maxsize=1)
def _safe_constructor():
    import yaml

    return yaml.constructor.SafeConstructor()


def _load_text(text: str) -> Any:
    """``yaml.safe_load`` (libyaml when available), with the fast constructor for plain documents."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    node = yaml.compose(text, Loader=loader)
    if node is None:
        return None
    try:
        return _construct_plain(node, _safe_constructor(), set())
    except _NotPlain:
        return yaml.load(text, Loader=loader)


def load_yaml(data: bytes, where: str) -> Any:
    import yaml

    try:
        return _load_text(normalize_text(data, where))
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


@functools.lru_cache(maxsize=1)
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


_OPENER = re.compile(r"\{[{%#]")
_CLOSERS = ("}}", "%}", "#}")
_PAIRS = {")": "(", "]": "[", "}": "{"}
_NESTING = re.compile(r"[\"'()\[\]{}]")
DATA_MARK = "\x00"
_CACHE_LIMIT = 20_000
_references: dict[tuple[str, str], tuple[str, ...]] = {}
_metas: dict[bytes, bytes] = {}
_shapes: dict[str, tuple[str | None]] = {}
_meta_jsons: dict[bytes, str] = {}


def template_shape(source: str) -> str | None:
    """The source with the literal text between tags replaced by one marker each, or None when unsure.

    Jinja2 decides syntax, includes, variables and control flow from the tags alone; literal text only
    becomes output. So two sources with the same shape parse alike and reference the same templates, and
    per-shape results can be memoised (many versions differ only in their wording). The scan mirrors
    Jinja2's lexer (strings, bracket balancing, first closer at depth 0); whenever a text segment still
    holds a delimiter or a tag does not close cleanly it returns None and callers use the exact source.
    """
    parts: list[str] = []
    pos = 0
    end = len(source)
    while True:
        match = _OPENER.search(source, pos)
        start = match.start() if match else end
        if start > pos:
            text = source[pos:start]
            if "}}" in text or "%}" in text or "#}" in text:
                return None
            parts.append(DATA_MARK)
        if match is None:
            return "".join(parts)
        kind = source[start + 1]
        if kind == "#":
            close = source.find("#}", start + 2)
            if close < 0:
                return None
            parts.append("{##}")  # a comment's text never matters
            pos = close + 2
            continue
        closer = "}}" if kind == "{" else "%}"
        close = source.find(closer, start + 2)
        if close >= 0 and not _NESTING.search(source, start + 2, close):
            parts.append(source[start : close + 2])  # no string, no bracket: the first closer ends the tag
            pos = close + 2
            continue
        i = start + 2
        stack: list[str] = []
        while True:
            if i >= end:
                return None
            char = source[i]
            if char == '"' or char == "'":
                j = i + 1
                while j < end and source[j] != char:
                    j += 2 if source[j] == "\\" else 1
                if j >= end:
                    return None
                i = j + 1
                continue
            if not stack and source.startswith(closer, i):
                break
            if char in "([{":
                stack.append(char)
            elif char in ")]}":
                if not stack or stack.pop() != _PAIRS[char]:
                    return None
            i += 1
        parts.append(source[start : i + 2])
        pos = i + 2


def shape_of(source: str) -> str | None:
    """``template_shape(source)``, memoised by the exact text."""
    cached = _shapes.get(source)
    if cached is None:
        cached = _shapes[source] = (template_shape(source),)
        if len(_shapes) > _CACHE_LIMIT:
            _shapes.clear()
    return cached[0]


def _memo_put(cache: dict, key, value) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def referenced_templates(env, source: str, where: str) -> list[str]:
    """Registry-relative names a template includes (or imports), checked; TemplateSyntaxError when it does
    not parse. Memoised per template shape: errors are never memoised, so their messages stay exact."""
    cached = _references.get(("text", source))
    if cached is not None:
        return list(cached)
    shape = shape_of(source)
    key = ("shape", shape) if shape is not None else ("text", source)
    cached = _references.get(key)
    if cached is None:
        from jinja2 import meta as jmeta

        ast = _parse(env, source, where)
        cached = tuple(resolve_include(name, where) for name in jmeta.find_referenced_templates(ast))
        _memo_put(_references, key, cached)
    _memo_put(_references, ("text", source), cached)
    return list(cached)


_INCLUDE_HINT = re.compile(rb"""\{%[-+]?\s*(?:include|import|from|extends)\s+["']([^"'\\\n]+)["']""")


def body_includes(files: Mapping[str, bytes]) -> set[str]:
    """Names the bodies among ``files`` seem to include directly (literal names only, found by a pattern):
    a hint for batching partial reads before ``load_prompt``, which stays the authority."""
    names: set[str] = set()
    for name, data in files.items():
        if name.startswith("body") and name.endswith(".j2") and b"{%" in data:
            for found in _INCLUDE_HINT.findall(data):
                try:
                    names.add(resolve_include(found.decode("utf-8"), name))
                except (InvalidContent, UnicodeDecodeError):
                    continue
    return names


_SECTION_START = re.compile(r"^[^\s#]", re.MULTILINE)
_sections: dict[str, bytes] = {}


def _load_by_sections(text: str) -> dict[str, Any] | None:
    """A top-level block mapping parsed one top-level key at a time, each section memoised by its text.

    Versions of a prompt usually change one or two keys (a temperature, a description), so most sections
    were parsed before. Returns None (parse the whole document) unless every section starts at column 0 with
    a plain key and parses on its own to a one-key mapping, and nothing can tie sections together (anchors,
    aliases, directives, document markers). Keys merge in order, as PyYAML does (a repeated key: last wins).
    """
    import pickle

    if "&" in text or "*" in text:
        return None
    starts = [m.start() for m in _SECTION_START.finditer(text)]
    if not starts or any(
        line.strip() and not line.lstrip().startswith("#") for line in text[: starts[0]].splitlines()
    ):
        return None
    result: dict[str, Any] = {}
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        section = text[begin:end]
        if section.startswith(("-", "?", "%", ":", "<<", "---", "...", "[", "{", "|", ">", "'", '"')):
            return None
        cached = _sections.get(section)
        if cached is None:
            import yaml

            try:
                value = _load_text(section)
            except yaml.YAMLError:
                return None
            if not isinstance(value, dict) or len(value) != 1:
                return None
            try:
                cached = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - unpicklable: parse the whole document instead
                return None
            _memo_put(_sections, section, cached)
        result.update(pickle.loads(cached))
    return result


def _meta_json(data: bytes, meta: dict[str, Any]) -> str:
    """``hashing.canonical_meta`` of the metadata parsed from ``data``, memoised by those bytes."""
    cached = _meta_jsons.get(data)
    if cached is None:
        cached = canonical_meta(meta)
        _memo_put(_meta_jsons, data, cached)
    return cached


def load_meta(data: bytes, where: str) -> dict[str, Any]:
    """Parsed and validated ``prompt.yaml``; memoised by content (a fresh copy each call, callers may mutate)."""
    import pickle

    cached = _metas.get(data)
    if cached is not None:
        return pickle.loads(cached)
    parsed = None
    try:
        parsed = _load_by_sections(normalize_text(data, where))
    except InvalidContent:
        parsed = None
    meta = validate_meta(parsed if parsed is not None else load_yaml(data, where), where)
    try:
        _memo_put(_metas, data, pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - an unpicklable YAML value is simply not memoised
        pass
    return meta


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
    meta_data = files[METADATA_FILE]
    meta = load_meta(meta_data, f"{where}/{METADATA_FILE}")
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
        template_hash=template_hash(meta, hashed, _meta_json(meta_data, meta)),
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

"""``promptctl verify``: is the registry intact and does every prompt render? (CI's gate; lint is in lint.py)

Integrity: every version tag is an annotated tag whose recorded ``Promptctl-Template-Hash`` equals the hash
recomputed from the tagged files; versions are numbered without gaps; every channel serves existing versions
with the hashes its audit log recorded; the audit log is one unbroken chain of state commits; moves are signed
where ``channels.require_signed`` asks for it.
Render checks: every body of the working tree (and with ``all_versions`` every version) parses, its includes
resolve inside the registry, it uses only declared inputs and renders under StrictUndefined with the inputs'
``example`` values.

Each finding is a ``Problem`` with a stable rule code (``RULES``, documented in docs/ci.md). Versions are read
in a few batched ``cat-file`` round trips (``PromptRepo.version_definitions_lenient``) and per-template
results are memoised by template shape (``promptfile.template_shape``): thousands of versions that differ
only in wording are checked once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import gitstore
from .errors import (
    IncludeOutsideRegistry,
    InvalidContent,
    NotFound,
    NotUtf8,
    PromptctlError,
    TemplateSyntaxError,
    UnknownPrompt,
    YamlError,
)
from .hashing import short_hash
from .promptfile import (
    METADATA_FILE,
    PARTIALS_DIR,
    PromptDefinition,
    _jinja_env,
    shape_of,
    split_chat_source,
)
from .spec import ID_PATTERN, TAG_PREFIX, parse_tag_name, validate_id

ERROR = "error"
WARNING = "warning"
HASH_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 2000  # versions loaded per batch (bounds memory, paces the progress bar)
LOADERS = 2  # chunks loading at once, each with its own git cat-file

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    summary: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        # integrity of versions
        Rule("PC001", "hash-mismatch", ERROR, "a version's recorded template hash differs from the hash of its tagged files"),
        Rule("PC002", "missing-hash", ERROR, "a version tag has no (or a malformed) Promptctl-Template-Hash trailer"),
        Rule("PC003", "lightweight-tag", ERROR, "a lightweight tag sits in the version namespace <id>/v<N>"),
        Rule("PC004", "prompt-missing-at-tag", ERROR, "the tagged commit has no directory for the prompt"),
        Rule("PC005", "tag-names-other-version", ERROR, "the tag object or its trailers name another prompt or version"),
        Rule("PC006", "version-gap", ERROR, "a version number is missing (versions are never deleted)"),
        Rule("PC007", "version-unreadable", ERROR, "a version's files cannot be loaded, so its hash cannot be recomputed"),
        Rule("PC008", "tag-not-commit", ERROR, "a version tag points at something other than a commit"),
        Rule("PC009", "hash-differs-from-audit", ERROR, "a version's hash differs from the hash the audit log recorded when it was served"),
        # channels
        Rule("PC020", "channel-unknown-version", ERROR, "a channel serves a version that does not exist"),
        Rule("PC021", "channel-hash-mismatch", ERROR, "a channel's Promptctl-Serves-Hash differs from the version's template hash"),
        Rule("PC022", "audit-log-broken", ERROR, "a channel ref and its audit log disagree (foreign commit, broken chain, wrong names)"),
        Rule("PC023", "unsigned-move", ERROR, "a move of a channel in channels.require_signed is not signed by a trusted key"),
        Rule("PC024", "channel-ref-invalid", ERROR, "a ref under refs/promptctl/channels/ is not a promptctl channel state"),
        # render checks
        Rule("PC030", "invalid-prompt", ERROR, "prompt.yaml does not parse or the prompt directory is malformed"),
        Rule("PC031", "template-syntax", ERROR, "a body or partial is not valid Jinja2"),
        Rule("PC032", "include-missing", ERROR, "an included template does not exist in the registry"),
        Rule("PC033", "include-outside-registry", ERROR, "an include points outside the registry"),
        Rule("PC034", "render-failed", ERROR, "a body does not render with the inputs' example values (StrictUndefined)"),
        Rule("PC035", "not-utf8", ERROR, "a file is not valid UTF-8"),
        Rule("PC036", "not-a-prompt", ERROR, "a directory in the registry is not a prompt (no prompt.yaml, or an invalid id)"),
        # lint (promptctl lint); PC102 is an error that verify reports too
        Rule("PC101", "unused-input", WARNING, "a declared input is never used by any body or partial"),
        Rule("PC102", "undeclared-variable", ERROR, "a template uses a variable that prompt.yaml does not declare"),
        Rule("PC103", "missing-owner", WARNING, "prompt.yaml has no owner"),
        Rule("PC104", "missing-description", WARNING, "prompt.yaml has no description"),
        Rule("PC105", "input-without-example", WARNING, "an input has no example value (render checks use a placeholder)"),
        Rule("PC106", "required-with-default", WARNING, "a required input also has a default, which is never used"),
        Rule("PC107", "model-without-name", WARNING, "prompt.yaml has no model, or a model without a name"),
        Rule("PC108", "value-type-mismatch", WARNING, "an input's example or default does not match its declared type"),
        Rule("PC109", "unknown-input-key", WARNING, "an input has a key other than type, required, default, example, description"),
        Rule("PC110", "no-default-body", WARNING, "no body.j2: requests without a matching locale or tier find no body"),
        Rule("PC111", "chat-without-user", WARNING, "a chat prompt's body has no user message"),
        Rule("PC112", "unused-partial", WARNING, "a partial that no prompt includes"),
    )
}


@dataclass(frozen=True)
class Problem:
    """One finding. ``version`` is ``v<N>`` (None: the working tree); ``file`` is relative to the Git top level."""

    code: str
    message: str
    prompt: str | None = None
    version: str | None = None
    channel: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def rule(self) -> Rule:
        return RULES[self.code]

    @property
    def severity(self) -> str:
        return self.rule.severity

    def location(self) -> str:
        """``prompts/x/body.j2:3``, ``x/v2:prompts/x/body.j2`` (git's rev:path), ``x@production`` or ``x/v2``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
            if self.version:
                where = f"{self.prompt}/{self.version}:{where}"
        elif self.prompt and self.channel:
            where = f"{self.prompt}@{self.channel}"
        elif self.prompt and self.version:
            where = f"{self.prompt}/{self.version}"
        elif self.prompt:
            where = self.prompt
        return where

    def sort_key(self) -> tuple:
        number = int(self.version[1:]) if self.version and self.version[1:].isdigit() else 0
        return (self.prompt or "", self.version is not None, number, self.channel or "", self.file or "", self.line or 0, self.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule.name,
            "severity": self.severity,
            "prompt": self.prompt,
            "version": self.version,
            "channel": self.channel,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclass
class Report:
    """What a check run found, and how much it looked at."""

    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == WARNING)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sort(self) -> Report:
        unique = {(p.code, p.prompt, p.version, p.channel, p.file, p.line, p.message): p for p in self.problems}
        self.problems = sorted(unique.values(), key=Problem.sort_key)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "checked": self.checked,
            "problems": [p.to_json() for p in self.problems],
        }


# -- errors from the core -> problems ------------------------------------------------------------------------

_LOCATED = re.compile(r"(?P<file>[^\s:]+?)(?::(?P<line>\d+))?: (?P<message>.+)", re.DOTALL)


def problem_from_error(
    exc: BaseException, prompt: str | None, version: str | None, registry: str, prefix: str = ""
) -> Problem:
    """A core error (``<file>[:<line>]: message``, as promptfile raises them) as a located Problem."""
    if isinstance(exc, YamlError):
        code = "PC030"
    elif isinstance(exc, TemplateSyntaxError):
        code = "PC031"
    elif isinstance(exc, IncludeOutsideRegistry):
        code = "PC033"
    elif isinstance(exc, NotUtf8):
        code = "PC035"
    elif isinstance(exc, NotFound) and "included template" in str(exc):
        code = "PC032"
    else:
        code = "PC030"
    text = str(exc)
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    match = _LOCATED.fullmatch(text)
    if not match or "/" not in match.group("file") and not match.group("file").endswith((".j2", ".yaml")):
        return Problem(code, text, prompt, version)
    file = match.group("file")
    if not file.startswith(registry + "/"):
        file = f"{registry}/{file}"  # partials are named relative to the registry
    line = int(match.group("line")) if match.group("line") else None
    return Problem(code, match.group("message"), prompt, version, file=file, line=line)


# -- template analysis, memoised by shape ------------------------------------------------------------------

_UNSAFE_FOR_SHAPE = re.compile(r"\{%[-+]?\s*(?:filter|call|macro|block|extends|import|from)\b")
_BLOCK_SET = re.compile(r"\{%[-+]?\s*set\b[^=]*?[-+]?%\}")
_analyses: dict[tuple[str, str], TemplateFacts] = {}
_keys: dict[str, tuple[str, str]] = {}
_chat_keys: dict[str, tuple] = {}
_verdicts: dict[tuple, tuple[tuple[str, str, str], ...]] = {}
_MEMO_LIMIT = 20_000


@dataclass(frozen=True)
class TemplateFacts:
    """What one template source looks up from the context and what it assigns itself."""

    looked_up: frozenset[str]
    assigned: frozenset[str]


def _memo_key(source: str) -> tuple[str, str]:
    """A key under which sources behave alike when rendered: the template shape when literal text can only
    ever be output (no block set / filter / call / macro / block / import), else the exact text."""
    key = _keys.get(source)
    if key is None:
        shape = shape_of(source)
        if shape is None or _UNSAFE_FOR_SHAPE.search(shape) or _BLOCK_SET.search(shape):
            key = ("text", source)
        else:
            key = ("shape", shape)
        if len(_keys) >= _MEMO_LIMIT:
            _keys.clear()
        _keys[source] = key
    return key


def _env():
    return _jinja_env()


def template_facts(source: str, where: str = "template") -> TemplateFacts:
    """Variables a template looks up (``jinja2.meta.find_undeclared_variables``) and names it assigns
    (set / for / with targets, macro parameters). Raises TemplateSyntaxError."""
    key = _memo_key(source)
    facts = _analyses.get(key)
    if facts is None:
        import jinja2
        from jinja2 import meta as jmeta
        from jinja2 import nodes

        try:
            ast = _env().parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateSyntaxError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None
        looked_up = frozenset(jmeta.find_undeclared_variables(ast))
        assigned = frozenset(n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param"))
        facts = TemplateFacts(looked_up, assigned)
        if len(_analyses) >= _MEMO_LIMIT:
            _analyses.clear()
        _analyses[key] = facts
    return facts


def first_use_line(source: str, name: str) -> int | None:
    """The line where ``name`` is first looked up in ``source`` (for messages; exact parse, not memoised)."""
    from jinja2 import nodes

    try:
        ast = _env().parse(source)
    except Exception:  # noqa: BLE001 - a syntax error is reported elsewhere
        return None
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
    return min(lines) if lines else None


def reachable_partials(definition: PromptDefinition, source: str) -> list[str]:
    """Partials a template includes, transitively (names as in ``definition.partials``)."""
    from .promptfile import referenced_templates

    seen: list[str] = []
    pending = [source]
    while pending:
        current = pending.pop()
        try:
            names = referenced_templates(_env(), current, "template")
        except PromptctlError:
            continue
        for name in names:
            if name not in seen and name in definition.partials:
                seen.append(name)
                pending.append(definition.partials[name])
    return seen


JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop", "self", "varargs", "kwargs", "caller"})


def undeclared_variables(definition: PromptDefinition) -> dict[str, list[tuple[str, str]]]:
    """Variable -> [(body, file it is used in)] for every variable a body (or a partial it includes) looks up
    that prompt.yaml does not declare and no template assigns."""
    declared = set(definition.inputs)
    found: dict[str, list[tuple[str, str]]] = {}
    for body, source in sorted(definition.bodies.items()):
        chain = [(body, source)] + [(p, definition.partials[p]) for p in reachable_partials(definition, source)]
        facts = [(name, template_facts(text, name)) for name, text in chain]
        assigned = set().union(*(f.assigned for _, f in facts))
        for name, fact in facts:
            for variable in sorted(fact.looked_up - declared - assigned - JINJA_GLOBALS):
                found.setdefault(variable, []).append((body, name))
    return found


def used_variables(definition: PromptDefinition) -> set[str]:
    """Every name any body of the definition (or a partial it includes) looks up from the context."""
    used: set[str] = set()
    for source in definition.bodies.values():
        used |= template_facts(source).looked_up
    for source in definition.partials.values():
        used |= template_facts(source).looked_up
    return used


PLACEHOLDERS: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "list": [], "object": {}}


def example_variables(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The values render checks use: each input's ``example``; a placeholder of its type for a required input
    without one; nothing for an optional one (its ``default`` applies)."""
    values: dict[str, Any] = {}
    for name, spec in inputs.items():
        spec = spec or {}
        if "example" in spec:
            values[name] = spec["example"]
        elif spec.get("required", False):
            values[name] = PLACEHOLDERS.get(spec.get("type", "string"), "example")
    return values


def _chat_key(source: str) -> tuple:
    """The memo key of a chat body: its roles and each message's memo key (messages render separately)."""
    key = _chat_keys.get(source)
    if key is None:
        key = tuple((role, _memo_key(text)) for role, text in split_chat_source(source))
        if len(_chat_keys) >= _MEMO_LIMIT:
            _chat_keys.clear()
        _chat_keys[source] = key
    return key


def definition_key(definition: PromptDefinition) -> tuple:
    """A key under which definitions pass or fail the render checks alike: type, inputs (with examples) and
    the memo keys of every body (per chat message) and partial."""
    body_key = _chat_key if definition.type == "chat" else _memo_key
    bodies = tuple([(name, body_key(source)) for name, source in sorted(definition.bodies.items())])
    partials = tuple([(name, _memo_key(text)) for name, text in sorted(definition.partials.items())])
    # plain YAML values: equal reprs are equal values of equal types
    return (definition.type, repr(definition.inputs), bodies, partials)


def render_failures(definition: PromptDefinition) -> list[tuple[str, str]]:
    """(body, why) for each body that does not render with the example values."""
    from .render import CompiledPrompt

    compiled = CompiledPrompt(definition)
    variables = example_variables(definition.inputs)
    failures = []
    for body in sorted(definition.bodies):
        prefixes = (f"{definition.prompt_id}/{body}: ", f"{definition.prompt_id}: ")
        try:
            compiled.messages(body, variables)
        except PromptctlError as exc:
            text = exc.message
            for prefix in prefixes:
                text = text.removeprefix(prefix)
            failures.append((body, text))
        except Exception as exc:  # noqa: BLE001 - any failure of a template at render time is the finding
            failures.append((body, f"{type(exc).__name__}: {exc}"))
    return failures


def render_verdict(definition: PromptDefinition) -> tuple[tuple[str, str, str], ...]:
    """The render checks' findings as (code, subject, file name): ("PC102", variable, file of its first use)
    or ("PC034", why, body). Memoised per ``definition_key``: versions that differ only in wording, or in
    model settings, are rendered once. Raises PromptctlError when a template does not parse on its own."""
    key = definition_key(definition)
    verdict = _verdicts.get(key)
    if verdict is None:
        undeclared = undeclared_variables(definition)
        if undeclared:  # rendering would only repeat "is undefined"
            verdict = tuple(("PC102", variable, uses[0][1]) for variable, uses in sorted(undeclared.items()))
        else:
            verdict = tuple(("PC034", why, body) for body, why in render_failures(definition))
        if len(_verdicts) >= _MEMO_LIMIT:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


def check_definition(definition: PromptDefinition, registry: str, version: str | None = None) -> list[Problem]:
    """Render checks of one loaded prompt: undeclared variables (PC102), rendering with examples (PC034)."""
    pid = definition.prompt_id
    try:
        verdict = render_verdict(definition)
    except PromptctlError as exc:  # a partial that does not parse on its own
        return [problem_from_error(exc, pid, version, registry)]
    problems = []
    for code, subject, name in verdict:
        file = f"{registry}/{pid}/{name}" if name in definition.bodies else f"{registry}/{name}"
        if code == "PC102":
            line = first_use_line(definition.template_source(name) or "", subject)
            message = f"variable {subject!r} is used but not declared in {METADATA_FILE} inputs"
            problems.append(Problem(code, message, pid, version, file=file, line=line))
        else:
            problems.append(Problem(code, f"does not render with the example inputs: {subject}", pid, version, file=file))
    return problems


# -- version tags -------------------------------------------------------------------------------------------

TAG_CHECK_FIELDS = ("objecttype", "*objecttype", "tag")


@dataclass
class TagCheck:
    """One ref in the version namespace, with what for-each-ref says of it."""

    prompt_id: str
    number: int
    refname: str
    objecttype: str
    target_type: str
    tag_header: str
    row: list[str]

    @property
    def version(self) -> str:
        return f"v{self.number}"

    @property
    def tag(self) -> str:
        return f"{self.prompt_id}/v{self.number}"


def _version_refs(repo, prompt_ids: Sequence[str] | None) -> list[TagCheck]:
    from .registry import TAG_FIELDS

    patterns = [f"{TAG_PREFIX}{pid}/" for pid in prompt_ids] if prompt_ids else [TAG_PREFIX]
    rows = gitstore.for_each_ref(repo.root, patterns, (*TAG_FIELDS, *TAG_CHECK_FIELDS))
    found = []
    wanted = set(prompt_ids or ())
    for row in rows:
        parsed = parse_tag_name(row[0].removeprefix(TAG_PREFIX))
        if parsed is None or (wanted and parsed[0] not in wanted):
            continue
        extra = row[len(TAG_FIELDS) :]
        found.append(TagCheck(parsed[0], parsed[1], row[0], extra[0], extra[1], extra[2], row[: len(TAG_FIELDS)]))
    return found


def _ours(checks: list[TagCheck], working: set[str]) -> list[TagCheck]:
    """Tags in the version namespace of registry prompts: the prompt exists in the working tree, or one of
    its tags carries promptctl trailers (an application's own ``release/v1`` tags are left alone)."""
    from .registry import TRAILER_HASH

    promptctl_ids = {c.prompt_id for c in checks if c.objecttype == "tag" and TRAILER_HASH in c.row[-1]}
    return [c for c in checks if c.prompt_id in working or c.prompt_id in promptctl_ids]


def check_tags(checks: list[TagCheck]) -> tuple[list[Problem], list]:
    """Problems visible from the refs alone, and the VersionInfo of each annotated version tag to load."""
    from .registry import _SIGNATURE_START, TRAILER_HASH, _version_from_row

    problems: list[Problem] = []
    versions = []
    numbers: dict[str, set[int]] = {}
    for c in checks:
        numbers.setdefault(c.prompt_id, set()).add(c.number)
        if c.objecttype != "tag":
            problems.append(
                Problem(
                    "PC003",
                    f"a lightweight tag (it points straight at a {c.objecttype}); versions are annotated tags made by 'promptctl commit'",
                    c.prompt_id,
                    c.version,
                )
            )
            continue
        if c.target_type != "commit":
            problems.append(Problem("PC008", f"the tag points at a {c.target_type or 'missing object'}, not a commit", c.prompt_id, c.version))
            continue
        if c.tag_header != c.tag:  # its trailers then name the version it was copied from: one finding
            problems.append(
                Problem("PC005", f"the tag object is named {c.tag_header!r} but stored as {c.tag}: a tag copied to another name", c.prompt_id, c.version)
            )
        contents = c.row[-1]
        if "-----BEGIN " in contents:  # a signed tag: %(contents) ends in the signature, not the trailers
            for marker in _SIGNATURE_START:
                contents = contents.split(marker, 1)[0]
        info = _version_from_row([*c.row[:-1], contents])
        if c.tag_header == c.tag and (
            f"Promptctl-Prompt: {c.prompt_id}\n" not in contents or f"Promptctl-Version: {c.version}\n" not in contents
        ):
            trailers = gitstore.parse_trailers(contents)
            named_prompt, named_version = trailers.get("Promptctl-Prompt"), trailers.get("Promptctl-Version")
            if (named_prompt and named_prompt != c.prompt_id) or (named_version and named_version != c.version):
                problems.append(
                    Problem(
                        "PC005",
                        f"its trailers name {named_prompt or '?'} {named_version or '?'}: the message was copied from another version",
                        c.prompt_id,
                        c.version,
                    )
                )
        recorded = info.template_hash if info is not None else ""
        if not HASH_RE.fullmatch(recorded):
            what = f"a malformed {TRAILER_HASH} ({recorded!r})" if recorded else f"no {TRAILER_HASH} trailer"
            problems.append(Problem("PC002", f"the tag has {what}; it was not made by 'promptctl commit'", c.prompt_id, c.version))
            continue
        versions.append(info)
    for pid, have in sorted(numbers.items()):
        for missing in sorted(set(range(1, max(have) + 1)) - have):
            problems.append(
                Problem("PC006", f"no tag for this version, but v{max(have)} exists: version tags are never deleted", pid, f"v{missing}")
            )
    return problems, versions


def check_versions(
    repo, versions: list, *, render: bool, progress: Progress | None = None
) -> tuple[list[Problem], dict[tuple[str, str], str], int]:
    """Recompute every version's hash from Git (batched) and, with ``render``, run the render checks.

    Returns problems, {(prompt, version): recomputed hash} and how many bodies were render-checked.
    """
    reg = repo.config.registry
    problems: list[Problem] = []
    hashes: dict[tuple[str, str], str] = {}
    bodies = 0
    total = len(versions)
    chunks = [versions[start : start + CHUNK] for start in range(0, total, CHUNK)]
    done = 0
    for chunk, definitions in zip(chunks, _loaded_ahead(repo, chunks), strict=True):
        for version, loaded in zip(chunk, definitions, strict=True):
            pid, v = version.prompt_id, version.version
            if isinstance(loaded, Exception):
                text = str(loaded)
                if isinstance(loaded, InvalidContent) and text.endswith(f"is missing from commit {version.commit[:12]}"):
                    problems.append(
                        Problem("PC004", f"{reg}/{pid} does not exist in the tagged commit {version.commit[:12]}", pid, v)
                    )
                    continue
                located = problem_from_error(loaded, pid, v, reg, prefix=f"{version.tag}:")
                problems.append(
                    Problem(
                        "PC007",
                        f"cannot recompute the template hash: {located.message} [{located.code}]",
                        pid,
                        v,
                        file=located.file,
                        line=located.line,
                    )
                )
                continue
            hashes[(pid, v)] = loaded.template_hash
            if loaded.template_hash != version.template_hash:
                problems.append(
                    Problem(
                        "PC001",
                        f"the tag records {short_hash(version.template_hash)} but the tagged files hash to "
                        f"{short_hash(loaded.template_hash)}: the tag was re-created or moved onto other content",
                        pid,
                        v,
                        file=f"{reg}/{pid}",
                    )
                )
            if render:
                bodies += len(loaded.bodies)
                problems.extend(check_definition(loaded, reg, v))
        done += len(chunk)
        if progress:
            progress("versions", done, total)
    return problems, hashes, bodies


def _loaded_ahead(repo, chunks: list[list], workers: int | None = None) -> Iterable[list]:
    """``version_definitions_lenient`` of each chunk, in order, with up to ``workers`` chunks loading at once
    in threads, each with its own ``git cat-file`` process: while one thread parses and hashes (Python), another
    waits for git to resolve its objects (git's own process), so their work overlaps instead of adding up."""
    workers = LOADERS if workers is None else workers
    if len(chunks) < 2 or workers < 2:
        yield from (repo.version_definitions_lenient(chunk) for chunk in chunks)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .registry import PromptRepo

    readers = [repo] + [PromptRepo(repo.root, repo.config) for _ in range(workers - 1)]
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptctl-verify") as pool:
            pending: deque = deque()
            for index, chunk in enumerate(chunks):
                if len(pending) == workers:
                    yield pending.popleft().result()
                pending.append(pool.submit(readers[index % workers].version_definitions_lenient, chunk))
            while pending:
                yield pending.popleft().result()
    finally:
        for extra in readers[1:]:
            extra.close()


# -- channels -----------------------------------------------------------------------------------------------


def check_channels(repo, prompt_ids: Sequence[str] | None, recorded: Mapping[tuple[str, str], str]) -> tuple[list[Problem], int]:
    """Channels serve existing versions with matching hashes; ref, trailers and audit chain agree; signatures.

    ``recorded`` maps (prompt, version) to the hash its tag records.
    """
    try:
        from . import channels as channel_mod
    except ImportError:  # a build without channels
        return [], 0
    from .spec import CHANNEL_PREFIX

    problems: list[Problem] = []
    patterns = [f"{CHANNEL_PREFIX}{pid}/" for pid in prompt_ids] if prompt_ids else [CHANNEL_PREFIX]
    rows = gitstore.for_each_ref(repo.root, patterns, ("refname", "objectname", "objecttype"))
    heads: dict[tuple[str, str], str] = {}
    for refname, oid, kind in rows:
        names = channel_mod._split_channel_ref(refname)
        if names is None:
            problems.append(Problem("PC024", f"{refname} is not a channel ref (refs/promptctl/channels/<id>/<channel>)"))
        elif kind != "commit":
            problems.append(Problem("PC024", f"{refname} points at a {kind}, not a state commit", names[0], channel=names[1]))
        else:
            heads[names] = oid
    # One rev-list and one cat-file batch for every chain; each chain is then walked by first parents.
    chain_oids = gitstore.rev_list_first_parent(repo.root, list(dict.fromkeys(heads.values())))
    objects = dict(zip(chain_oids, repo.reader.read_many(chain_oids), strict=True))
    for (pid, channel), head in sorted(heads.items()):
        problems.extend(_check_chain(channel_mod, pid, channel, head, objects, recorded))
    states = {(s.prompt_id, s.channel) for s in channel_mod.ChannelStore(repo).all_states()}
    for key in sorted(set(heads) - states):
        if not any(p.code == "PC022" and (p.prompt, p.channel) == key for p in problems):
            problems.append(Problem("PC024", "the channel ref does not point at a promptctl state commit", key[0], channel=key[1]))
    problems.extend(_check_signatures(channel_mod, repo, prompt_ids))
    return problems, len(heads)


def _check_chain(channel_mod, pid: str, channel: str, head: str, objects, recorded) -> list[Problem]:
    problems: list[Problem] = []

    def report(code: str, message: str) -> None:
        problems.append(Problem(code, message, pid, channel=channel))

    entries = []  # newest first
    oid: str | None = head
    while oid:
        obj = objects.get(oid)
        if obj is None or obj.type != "commit":
            report("PC022", f"audit log commit {oid[:12]} is missing or not a commit")
            break
        headers, _ = gitstore.parse_commit_or_tag(obj.data)
        parsed = channel_mod.parse_state_commit(oid, obj.data)
        if parsed is None:
            if oid == head:
                report("PC022", f"the channel ref points at commit {oid[:12]}, which is not a promptctl state commit")
            else:
                report("PC022", f"the audit log reaches commit {oid[:12]}, which is not a state commit: the chain was rewritten")
            break
        entry, parent = parsed
        if headers.get("tree") != gitstore.EMPTY_TREE:
            report("PC022", f"state commit {oid[:12]} has files; state commits have the empty tree")
        if entry.prompt_id != pid or entry.channel != channel:
            report(
                "PC022",
                f"state commit {oid[:12]} records {entry.prompt_id or '?'}@{entry.channel or '?'}: "
                "a state copied from another channel",
            )
        entries.append(entry)
        oid = parent
    if not entries:
        return problems
    # Each move starts from what the move before it left.
    for newer, older in zip(entries, entries[1:], strict=False):
        if _served(newer.from_serves) != _served(older.serves):
            report(
                "PC022",
                f"move {newer.commit[:12]} starts from {_text(newer.from_serves)} but the channel served "
                f"{_text(older.serves)} after {older.commit[:12]}",
            )
    if entries[-1].from_serves:
        report("PC022", f"the oldest move {entries[-1].commit[:12]} starts from {_text(entries[-1].from_serves)}, not '-': history was cut")
    current = entries[0]
    for serving in current.serves:
        if (pid, serving.version) not in recorded:
            report("PC020", f"serves {pid}/{serving.version}, which is not a version (no annotated tag)")
        elif not serving.template_hash:
            report("PC021", f"serves {serving.version} without a recorded Promptctl-Serves-Hash")
        elif serving.template_hash != recorded[(pid, serving.version)]:
            report(
                "PC021",
                f"serves {serving.version} with hash {short_hash(serving.template_hash)} but the tag records "
                f"{short_hash(recorded[(pid, serving.version)])}",
            )
    reported = set()
    for entry in entries[1:]:
        for serving in entry.serves:
            tag_hash = recorded.get((pid, serving.version))
            if tag_hash and serving.template_hash and serving.template_hash != tag_hash and serving.version not in reported:
                reported.add(serving.version)
                problems.append(
                    Problem(
                        "PC009",
                        f"{channel} served it as {short_hash(serving.template_hash)} (move {entry.commit[:12]}) but the tag "
                        f"now records {short_hash(tag_hash)}: the tag was re-created",
                        pid,
                        serving.version,
                    )
                )
    return problems


def _served(serves) -> tuple:
    return tuple((s.version, s.percent) for s in serves)


def _text(serves) -> str:
    from .model import serves_text

    return serves_text(tuple(serves))


def _check_signatures(channel_mod, repo, prompt_ids: Sequence[str] | None) -> list[Problem]:
    if not repo.config.require_signed:
        return []
    checks = []
    for pid in prompt_ids or [None]:
        checks.extend(channel_mod.verify_signatures(repo, pid))
    return [
        Problem(
            "PC023",
            f"move {c.commit[:12]} ({c.action} to {c.serves} by {c.author}) "
            + ("is not signed" if c.status == "unsigned" else f"has a signature that does not pass ({c.status}: {c.detail})")
            + "; channels.require_signed lists this channel",
            c.prompt_id,
            channel=c.channel,
        )
        for c in checks
        if not c.ok
    ]


# -- the working tree -----------------------------------------------------------------------------------------


def working_tree_dirs(repo) -> tuple[list[str], list[Problem]]:
    """Prompt ids in the registry directory, and problems with entries that look like prompts but are not."""
    import os

    reg = repo.config.registry
    ids: list[str] = []
    problems: list[Problem] = []
    for entry in sorted(os.scandir(repo.registry_dir), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith((".", "_")):
            continue
        has_meta = os.path.isfile(os.path.join(entry.path, METADATA_FILE))
        if not ID_PATTERN.fullmatch(entry.name):
            problems.append(
                Problem("PC036", f"{entry.name!r} is not a valid prompt id (a-z, 0-9, '_' and '-')", file=f"{reg}/{entry.name}")
            )
        elif not has_meta:
            if any(name.endswith(".j2") for name in os.listdir(entry.path)):
                problems.append(Problem("PC036", f"has bodies but no {METADATA_FILE}", entry.name, file=f"{reg}/{entry.name}"))
        else:
            ids.append(entry.name)
    return ids, problems


def load_working(repo, prompt_id: str) -> tuple[PromptDefinition | None, list[Problem]]:
    """The working-tree definition of a prompt, or the problem that stops it from loading."""
    reg = repo.config.registry
    try:
        return repo.working_definition(prompt_id), []
    except PromptctlError as exc:
        if isinstance(exc, UnknownPrompt):
            raise
        return None, [problem_from_error(exc, prompt_id, None, reg)]


def partial_files(repo) -> dict[str, str]:
    """Registry-relative path -> repo-relative path of every ``*.j2`` under the partials directory."""
    base = repo.registry_dir / PARTIALS_DIR
    if not base.is_dir():
        return {}
    reg = repo.config.registry
    found = {}
    for path in sorted(base.rglob("*.j2")):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(repo.registry_dir).as_posix()
            found[rel] = f"{reg}/{rel}"
    return found


def check_partials(repo) -> list[Problem]:
    """Every partial parses, included or not."""
    from .hashing import normalize_text

    problems = []
    for rel, shown in partial_files(repo).items():
        try:
            source = normalize_text((repo.registry_dir / rel).read_bytes(), shown)
            template_facts(source, shown)
        except PromptctlError as exc:
            problems.append(problem_from_error(exc, None, None, repo.config.registry))
    return problems


def resolve_prompt_ids(repo, prompt_ids: Iterable[str] | None) -> list[str] | None:
    """Validated ids (UnknownPrompt for one that is neither in the working tree nor tagged); None for all."""
    if not prompt_ids:
        return None
    ids = list(dict.fromkeys(validate_id(pid) for pid in prompt_ids))
    for pid in ids:
        if not repo.known_prompt(pid):
            raise UnknownPrompt(f"unknown prompt {pid!r}: no {repo.config.registry}/{pid}/ and no version tags")
    return ids


# -- the whole run ------------------------------------------------------------------------------------------


def verify(
    repo,
    prompt_ids: Iterable[str] | None = None,
    *,
    all_versions: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Integrity of every version and channel, render checks of the working tree (and of every version with
    ``all_versions``). Raises UnknownPrompt for an id that does not exist; everything else is a Problem."""
    ids = resolve_prompt_ids(repo, prompt_ids)
    report = Report()
    reg = repo.config.registry

    # The working tree.
    if ids is None:
        working, dir_problems = working_tree_dirs(repo)
        report.problems.extend(dir_problems)
        report.problems.extend(check_partials(repo))
    else:
        working = [pid for pid in ids if (repo.prompt_dir(pid) / METADATA_FILE).is_file()]
    bodies = 0
    for done, pid in enumerate(working, 1):
        definition, problems = load_working(repo, pid)
        report.problems.extend(problems)
        if definition is not None:
            bodies += len(definition.bodies)
            report.problems.extend(check_definition(definition, reg))
        if progress:
            progress("working tree", done, len(working))

    # Version tags.
    checks = _ours(_version_refs(repo, ids), set(working) | set(ids or ()))
    tag_problems, versions = check_tags(checks)
    report.problems.extend(tag_problems)
    version_problems, _, rendered = check_versions(repo, versions, render=all_versions, progress=progress)
    report.problems.extend(version_problems)
    bodies += rendered

    # Channels, against the hashes the tags record.
    recorded = {(v.prompt_id, v.version): v.template_hash for v in versions}
    channel_problems, channel_count = check_channels(repo, ids, recorded)
    report.problems.extend(channel_problems)

    report.checked = {
        "prompts": len(set(working) | {v.prompt_id for v in versions}),
        "versions": len(versions),
        "channels": channel_count,
        "bodies_rendered": bodies,
    }
    return report.sort()


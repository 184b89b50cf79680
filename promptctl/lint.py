"""``promptctl lint``: style and hygiene of the working-tree prompts (rules PC101-PC112, docs/ci.md).

Lint never fails a prompt for how it renders (that is ``verify``); it points at metadata a reviewer would ask
about: inputs nobody uses or nobody declared, a missing owner or description, inputs without examples... A
prompt that does not load at all is reported with the verify rule that explains why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InputTypeError, UsageError
from .promptfile import METADATA_FILE, PromptDefinition, split_chat_source
from .verify import (
    RULES,
    Problem,
    Report,
    first_use_line,
    load_working,
    partial_files,
    resolve_prompt_ids,
    undeclared_variables,
    used_variables,
    working_tree_dirs,
)

INPUT_KEYS = frozenset({"type", "required", "default", "example", "description"})
LINT_CODES = tuple(code for code in RULES if code.startswith("PC1"))


def parse_codes(values: Iterable[str], what: str = "--ignore") -> set[str]:
    """``PC101,PC105`` style lists (repeatable) -> validated codes; UsageError for an unknown code."""
    codes: set[str] = set()
    for value in values:
        for code in filter(None, (c.strip().upper() for c in str(value).split(","))):
            if code not in RULES:
                raise UsageError(f"{what}: unknown rule {code!r}; rules are {', '.join(sorted(RULES))} (see docs/ci.md)")
            codes.add(code)
    return codes


def configured_ignores(repo) -> set[str]:
    """``lint: {ignore: [PC105, ...]}`` in promptctl.yaml."""
    section = (repo.config.raw or {}).get("lint") or {}
    if not isinstance(section, Mapping):
        raise UsageError("promptctl.yaml: lint must be a mapping, e.g. lint: {ignore: [PC105]}")
    ignore = section.get("ignore") or []
    if isinstance(ignore, str):
        ignore = [ignore]
    return parse_codes(ignore, "promptctl.yaml lint.ignore")


def _input_line(yaml_text: str, name: str) -> int | None:
    """The line of input ``name`` in prompt.yaml (first indented ``name:`` after ``inputs:``)."""
    inputs = re.search(r"^inputs\s*:", yaml_text, re.MULTILINE)
    if not inputs:
        return None
    match = re.compile(rf"^[ \t]+{re.escape(name)}[ \t]*:", re.MULTILINE).search(yaml_text, inputs.end())
    return yaml_text.count("\n", 0, match.start()) + 1 if match else None


def _key_line(yaml_text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}[ \t]*:", yaml_text, re.MULTILINE)
    return yaml_text.count("\n", 0, match.start()) + 1 if match else None


def _type_ok(prompt_id: str, name: str, spec: Mapping[str, Any], value: Any) -> bool:
    from .render import check_inputs

    try:
        check_inputs(prompt_id, {name: spec}, {name: value})
    except InputTypeError:
        return False
    return True


def lint_definition(definition: PromptDefinition, registry: str, yaml_text: str = "") -> list[Problem]:
    """Lint rules for one loaded prompt."""
    pid = definition.prompt_id
    meta_file = f"{registry}/{pid}/{METADATA_FILE}"
    problems: list[Problem] = []

    def at_input(code: str, name: str, message: str) -> None:
        problems.append(Problem(code, message, pid, file=meta_file, line=_input_line(yaml_text, name)))

    meta = definition.meta
    if not str(meta.get("owner") or "").strip():
        problems.append(Problem("PC103", "no owner: who answers for this prompt? (owner: team@example.com)", pid, file=meta_file))
    if not str(meta.get("description") or "").strip():
        problems.append(Problem("PC104", "no description: say what the prompt does", pid, file=meta_file))
    model = meta.get("model")
    if not model or not str(model.get("name") or "").strip():
        problems.append(
            Problem("PC107", "no model name (model: {name: gpt-4o-mini, ...})", pid, file=meta_file, line=_key_line(yaml_text, "model"))
        )

    used = used_variables(definition)
    for name, spec in definition.inputs.items():
        spec = spec or {}
        if name not in used:
            at_input("PC101", name, f"input {name!r} is declared but no body or partial uses it")
        if "example" not in spec:
            at_input("PC105", name, f"input {name!r} has no example (render checks use a placeholder)")
        elif not _type_ok(pid, name, spec, spec["example"]):
            at_input("PC108", name, f"the example of input {name!r} is not a {spec.get('type', 'string')}")
        if spec.get("required", False) and "default" in spec:
            at_input("PC106", name, f"input {name!r} is required and has a default, which is never used")
        elif "default" in spec and spec["default"] is not None and not _type_ok(pid, name, spec, spec["default"]):
            at_input("PC108", name, f"the default of input {name!r} is not a {spec.get('type', 'string')}")
        unknown = sorted(set(spec) - INPUT_KEYS)
        if unknown:
            at_input("PC109", name, f"input {name!r} has unknown key(s) {', '.join(map(repr, unknown))}; use {', '.join(sorted(INPUT_KEYS))}")

    for variable, uses in sorted(undeclared_variables(definition).items()):
        first = uses[0][1]
        file = f"{registry}/{pid}/{first}" if first in definition.bodies else f"{registry}/{first}"
        line = first_use_line(definition.template_source(first) or "", variable)
        problems.append(Problem("PC102", f"variable {variable!r} is used but not declared in {METADATA_FILE} inputs", pid, file=file, line=line))

    if "body.j2" not in definition.bodies:
        problems.append(Problem("PC110", "no default body.j2: a request without a matching locale or tier finds no body", pid, file=f"{registry}/{pid}"))
    if definition.type == "chat":
        for body, source in sorted(definition.bodies.items()):
            if "user" not in {role for role, _ in split_chat_source(source)}:
                problems.append(Problem("PC111", "chat body has no 'user:' message", pid, file=f"{registry}/{pid}/{body}"))
    return problems


def lint(repo, prompt_ids: Iterable[str] | None = None, *, ignore: Iterable[str] = (), progress=None) -> Report:
    """Lint the working tree (all prompts, or those named). ``ignore`` adds to ``lint.ignore`` in promptctl.yaml."""
    ids = resolve_prompt_ids(repo, prompt_ids)
    skip = configured_ignores(repo) | parse_codes(ignore)
    reg = repo.config.registry
    report = Report()
    if ids is None:
        ids, problems = working_tree_dirs(repo)
        report.problems.extend(problems)
        whole = True
    else:
        ids = [pid for pid in ids if (repo.prompt_dir(pid) / METADATA_FILE).is_file()]
        whole = False
    included: set[str] = set()
    all_loaded = True
    for done, pid in enumerate(ids, 1):
        definition, problems = load_working(repo, pid)
        report.problems.extend(problems)
        if definition is None:
            all_loaded = False
        else:
            included.update(definition.partials)
            try:
                yaml_text = (repo.prompt_dir(pid) / METADATA_FILE).read_text(encoding="utf-8", errors="replace")
            except OSError:
                yaml_text = ""
            report.problems.extend(lint_definition(definition, reg, yaml_text))
        if progress:
            progress("lint", done, len(ids))
    if whole and all_loaded:
        for rel, shown in partial_files(repo).items():
            if rel not in included:
                report.problems.append(Problem("PC112", "no prompt includes this partial", file=shown))
    report.problems = [p for p in report.problems if p.code not in skip]
    report.checked = {"prompts": len(ids), "ignored_rules": len(skip)}
    return report.sort()

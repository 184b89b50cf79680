"""The eval set file format (YAML or JSONL): parsing and validation with line numbers.

A YAML eval set is a mapping with ``prompt`` (optional), ``description`` (optional), ``rubrics`` and
``items``; a JSONL eval set holds one item object per line and takes its rubrics from a sidecar
``<name>.rubrics.yaml`` or from ``--rubric``. The format is documented in docs/eval.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidContent, NotFound, UsageError
from ..promptfile import LOCALE_RE, TIER_RE
from ..spec import ID_PATTERN

ITEM_KEYS = ("id", "inputs", "conditions", "expected", "references", "tags")
CONDITION_KEYS = ("locale", "tier", "variant", "key")
TOP_KEYS = ("prompt", "description", "rubrics", "items")
RUBRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCALE = re.compile(LOCALE_RE)
_TIER = re.compile(TIER_RE)
SIDECAR_SUFFIX = ".rubrics.yaml"


@dataclass(frozen=True)
class Conditions:
    """What the resolver is asked for, as production would ask: locale, tier, variant, rollout key."""

    locale: str | None = None
    tier: str | None = None
    variant: str | None = None
    key: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"locale": self.locale, "tier": self.tier, "variant": self.variant, "key": self.key}


@dataclass(frozen=True)
class EvalItem:
    """One eval case. ``inputs`` are the template variables; ``expected``/``references`` feed the rubrics."""

    id: str
    inputs: Mapping[str, Any]
    conditions: Conditions = Conditions()
    expected: Any = None
    references: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    line: int = 0
    has_expected: bool = False

    @property
    def locale(self) -> str | None:
        return self.conditions.locale

    @property
    def tier(self) -> str | None:
        return self.conditions.tier

    @property
    def variant(self) -> str | None:
        return self.conditions.variant

    @property
    def key(self) -> str | None:
        return self.conditions.key


@dataclass(frozen=True)
class RubricSpec:
    """A rubric as written: ``name`` (the score's name), ``kind`` (a built-in or ``custom``), parameters."""

    name: str
    kind: str
    params: Mapping[str, Any]
    where: str = ""  # "file:line" or "--rubric", for error messages

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, **{k: v for k, v in self.params.items()}}


@dataclass(frozen=True)
class EvalSet:
    path: str
    items: tuple[EvalItem, ...]
    rubrics: tuple[RubricSpec, ...]
    prompt: str | None = None
    description: str = ""
    sha256: str = ""
    rubrics_from: str = ""  # where the rubrics came from: the file, a sidecar, or the command line

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent


# -- rubric specs: parsing and per-kind validation -------------------------------------------------------
# kind -> (allowed parameters, required parameters); "reference" names the item value a rubric compares to.
RUBRIC_KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "exact_match": (frozenset({"reference", "value", "ignore_case", "strip"}), frozenset()),
    "contains": (frozenset({"reference", "value", "ignore_case"}), frozenset()),
    "regex": (frozenset({"pattern", "fullmatch", "ignore_case"}), frozenset({"pattern"})),
    "json_valid": (frozenset(), frozenset()),
    "json_schema": (frozenset({"schema", "schema_file"}), frozenset()),
    "length": (frozenset({"min", "max", "unit"}), frozenset()),
    "custom": (frozenset({"function", "params"}), frozenset({"function"})),
}
LENGTH_UNITS = ("chars", "words", "lines")
NEEDS_REFERENCE = ("exact_match", "contains")  # unless a fixed ``value`` is given


def parse_rubric_arg(text: str, where: str = "--rubric") -> RubricSpec:
    """``[NAME=]KIND[:ARG]`` (the ``--rubric`` syntax, also allowed as a string entry in a rubrics list).

    ARG per kind: regex -> pattern; contains -> a fixed substring; length -> ``MIN..MAX``;
    json_schema -> a schema file; custom -> ``module:function``. ``module:function`` alone is a custom rubric.
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: empty rubric; use [NAME=]KIND[:ARG], e.g. exact_match or short=length:..40")
    text = text.strip()
    name = None
    head, eq, rest = text.partition("=")
    if eq and RUBRIC_NAME.fullmatch(head):
        name, text = head, rest
    kind, colon, arg = text.partition(":")
    params: dict[str, Any] = {}
    if kind not in RUBRIC_KINDS:
        if colon and ("." in kind or VARIABLE_NAME.fullmatch(kind)) and VARIABLE_NAME.fullmatch(arg or "-"):
            # `myapp.judges:polite` -> a custom rubric named after the function
            params = {"function": text}
            return _checked_rubric(name or arg.lower(), "custom", params, where)
        raise UsageError(
            f"{where}: unknown rubric {kind!r}; use one of {', '.join(RUBRIC_KINDS)} or module:function"
        )
    if colon:
        if kind == "regex":
            params["pattern"] = arg
        elif kind == "contains":
            params["value"] = arg
        elif kind == "exact_match":
            params["value"] = arg
        elif kind == "json_schema":
            params["schema_file"] = arg
        elif kind == "custom":
            params["function"] = arg
        elif kind == "length":
            low, dots, high = arg.partition("..")
            try:
                if not dots:
                    raise ValueError
                if low.strip():
                    params["min"] = int(low)
                if high.strip():
                    params["max"] = int(high)
            except ValueError:
                raise UsageError(f"{where}: length bounds look like MIN..MAX, ..MAX or MIN.. (got {arg!r})") from None
        else:
            raise UsageError(f"{where}: rubric {kind} takes no argument (got {arg!r})")
    if name is None:
        name = kind if kind != "custom" else params.get("function", "custom").rpartition(":")[2].lower()
    return _checked_rubric(name, kind, params, where)


def _checked_rubric(name: Any, kind: Any, params: Mapping[str, Any], where: str, error=UsageError) -> RubricSpec:
    if not isinstance(name, str) or not RUBRIC_NAME.fullmatch(name):
        raise error(f"{where}: rubric name {name!r} must match [a-z][a-z0-9_]{{0,39}} (it becomes eval.score.<name>)")
    if kind not in RUBRIC_KINDS:
        raise error(f"{where}: unknown rubric type {kind!r}; use one of {', '.join(RUBRIC_KINDS)}")
    allowed, required = RUBRIC_KINDS[kind]
    unknown = sorted(set(params) - allowed)
    if unknown:
        hint = f"; {kind} takes {', '.join(sorted(allowed))}" if allowed else f"; {kind} takes no parameters"
        raise error(f"{where}: rubric {name}: unknown parameter {unknown[0]!r}{hint}")
    missing = sorted(required - set(params))
    if missing:
        raise error(f"{where}: rubric {name}: {kind} needs {missing[0]!r}")
    for flag in ("ignore_case", "strip", "fullmatch"):
        if flag in params and not isinstance(params[flag], bool):
            raise error(f"{where}: rubric {name}: {flag} must be true or false")
    if "reference" in params and not (isinstance(params["reference"], str) and params["reference"]):
        raise error(f"{where}: rubric {name}: reference names an item value: expected, or a key of references")
    if "value" in params and not isinstance(params["value"], (str, list)) and kind == "contains":
        raise error(f"{where}: rubric {name}: value must be a string or a list of strings")
    if kind == "regex":
        if not isinstance(params["pattern"], str):
            raise error(f"{where}: rubric {name}: pattern must be a string")
        try:
            re.compile(params["pattern"])
        except re.error as exc:
            raise error(f"{where}: rubric {name}: invalid regular expression: {exc}") from None
    if kind == "length":
        if "min" not in params and "max" not in params:
            raise error(f"{where}: rubric {name}: length needs min, max or both")
        for bound in ("min", "max"):
            value = params.get(bound)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise error(f"{where}: rubric {name}: {bound} must be a non-negative integer")
        if params.get("min") is not None and params.get("max") is not None and params["min"] > params["max"]:
            raise error(f"{where}: rubric {name}: min {params['min']} is greater than max {params['max']}")
        if params.get("unit", "chars") not in LENGTH_UNITS:
            raise error(f"{where}: rubric {name}: unit must be one of {', '.join(LENGTH_UNITS)}")
    if kind == "json_schema":
        if ("schema" in params) == ("schema_file" in params):
            raise error(f"{where}: rubric {name}: json_schema needs exactly one of schema (inline) or schema_file")
        if "schema" in params and not isinstance(params["schema"], (dict, bool)):
            raise error(f"{where}: rubric {name}: schema must be a mapping (a JSON Schema)")
    if kind == "custom":
        function = params["function"]
        if not isinstance(function, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", function):
            raise error(f"{where}: rubric {name}: function must look like module:function (got {function!r})")
        if "params" in params and not isinstance(params["params"], dict):
            raise error(f"{where}: rubric {name}: params must be a mapping (passed as keyword arguments)")
    return RubricSpec(name=name, kind=kind, params=dict(params), where=where)


def check_rubric_names(rubrics: Sequence[RubricSpec], error=UsageError) -> None:
    seen: dict[str, str] = {}
    for rubric in rubrics:
        if rubric.name in seen:
            raise error(f"{rubric.where}: rubric name {rubric.name!r} is used twice (also at {seen[rubric.name]})")
        seen[rubric.name] = rubric.where


# -- YAML with node marks ----------------------------------------------------------------------------------
def _yaml_root(text: str, where: str):
    """(data, node): the constructed document and its node tree (for line numbers)."""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, where)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidContent(f"{where}{line}: YAML syntax error: {problem}") from None
    finally:
        loader.dispose()
    return data, node


def _refuse_duplicate_keys(root, where: str) -> None:
    """A key given twice in one mapping is an error (YAML would silently keep the last). Checked on the
    composed nodes, before construction flattens ``<<`` merge keys into the mapping."""
    import yaml

    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                stack.append(value_node)
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in lines:
                    raise InvalidContent(f"{where}:{line}: key {key_node.value!r} given twice (first on line {lines[key_node.value]})")
                lines[key_node.value] = line
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _key_lines(node, where: str) -> dict[str, int]:
    """Mapping node -> {key: line} (a key merged in with ``<<`` and then given again: the later line)."""
    lines: dict[str, int] = {}
    for key_node, _value in getattr(node, "value", ()):
        lines[key_node.value] = key_node.start_mark.line + 1
    return lines


def _value_node(node, key: str):
    for key_node, value in node.value:
        if key_node.value == key:
            return value
    return None


def load_evalset(
    path: str | os.PathLike[str],
    rubric_args: Sequence[str] = (),
    rubrics_file: str | None = None,
) -> EvalSet:
    """Read and validate an eval set. ``rubric_args`` (``--rubric``) or ``rubrics_file`` replace the file's rubrics.

    Raises NotFound for a missing file, InvalidContent (with ``file:line``) for a bad one,
    UsageError for a bad ``--rubric``.
    """
    shown = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{shown}: no such eval set file") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory; name an eval set file (.yaml, .yml or .jsonl)") from None
    except OSError as exc:
        raise NotFound(f"{shown}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidContent(f"{shown}: not valid UTF-8 (byte {exc.start})") from None

    suffix = Path(shown).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        prompt, description, items, rubrics = None, "", _parse_jsonl(text, shown), None
        rubrics_from = ""
        sidecar = _sidecar_path(shown)
        if sidecar is not None and os.path.isfile(sidecar):
            rubrics = _load_rubrics_yaml(sidecar)
            rubrics_from = sidecar
    elif suffix in (".yaml", ".yml"):
        prompt, description, items, rubrics = _parse_yaml(text, shown)
        rubrics_from = shown if rubrics is not None else ""
    else:
        raise UsageError(f"{shown}: unknown eval set format {suffix or '(no extension)'!r}; use .yaml, .yml or .jsonl")

    if rubrics_file:
        rubrics = _load_rubrics_yaml(rubrics_file)
        rubrics_from = rubrics_file
    if rubric_args:
        rubrics = [parse_rubric_arg(arg) for arg in rubric_args]
        rubrics_from = "--rubric"
    if not rubrics:
        raise UsageError(
            f"{shown}: no rubrics: add a 'rubrics:' list to the YAML file, a {Path(shown).stem}{SIDECAR_SUFFIX} "
            "sidecar next to a JSONL file, or pass --rubric (e.g. --rubric exact_match)"
        )
    check_rubric_names(rubrics, UsageError if rubrics_from == "--rubric" else InvalidContent)
    if not items:
        raise InvalidContent(f"{shown}: no items")
    _check_references(items, rubrics, shown)
    return EvalSet(
        path=shown,
        items=tuple(items),
        rubrics=tuple(rubrics),
        prompt=prompt,
        description=description,
        sha256=digest,
        rubrics_from=rubrics_from,
    )


def _sidecar_path(path: str) -> str | None:
    base, ext = os.path.splitext(path)
    return base + SIDECAR_SUFFIX if ext else None


def _parse_yaml(text: str, where: str):
    data, node = _yaml_root(text, where)
    if data is None:
        raise InvalidContent(f"{where}: the file is empty")
    if isinstance(data, list):  # a bare list of items; rubrics come from --rubric
        return None, "", _items_from_nodes(data, node, where), None
    if not isinstance(data, dict):
        raise InvalidContent(f"{where}:1: an eval set is a mapping with 'rubrics' and 'items' (or a list of items)")
    lines = _key_lines(node, where)
    for key in data:
        if key not in TOP_KEYS and not (isinstance(key, str) and key.startswith(("x-", "_"))):
            raise InvalidContent(
                f"{where}:{lines.get(key, 1)}: unknown key {key!r}; use {', '.join(TOP_KEYS)} "
                "(or an x- key for YAML anchors)"
            )
    prompt = data.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or not ID_PATTERN.fullmatch(prompt)):
        raise InvalidContent(f"{where}:{lines['prompt']}: prompt must be a prompt id (e.g. support_intent_classifier)")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise InvalidContent(f"{where}:{lines['description']}: description must be a string")
    rubrics = None
    if "rubrics" in data:
        rubrics = _rubrics_from_nodes(data["rubrics"], _value_node(node, "rubrics"), where, lines["rubrics"])
    if "items" not in data:
        raise InvalidContent(f"{where}: no 'items:' list")
    items_node = _value_node(node, "items")
    if not isinstance(data["items"], list):
        raise InvalidContent(f"{where}:{lines['items']}: items must be a list")
    return prompt, description, _items_from_nodes(data["items"], items_node, where), rubrics


def _rubrics_from_nodes(values: Any, node, where: str, line: int) -> list[RubricSpec]:
    if not isinstance(values, list):
        raise InvalidContent(f"{where}:{line}: rubrics must be a list")
    rubrics = []
    for value, child in zip(values, node.value, strict=True):
        at = f"{where}:{child.start_mark.line + 1}"
        if isinstance(value, str):
            try:
                rubrics.append(parse_rubric_arg(value, at))
            except UsageError as exc:
                raise InvalidContent(exc.message) from None
            continue
        if not isinstance(value, dict):
            raise InvalidContent(f"{at}: a rubric is a name (exact_match) or a mapping with type and parameters")
        params = {k: v for k, v in value.items() if k not in ("name", "type")}
        kind = value.get("type")
        if kind is None:
            raise InvalidContent(f"{at}: rubric needs a type ({', '.join(RUBRIC_KINDS)})")
        name = value.get("name", kind)
        if kind == "custom" and "name" not in value and isinstance(value.get("function"), str):
            name = value["function"].rpartition(":")[2].lower()
        rubrics.append(_checked_rubric(name, kind, params, at, error=InvalidContent))
    return rubrics


def _load_rubrics_yaml(path: str) -> list[RubricSpec]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such rubrics file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidContent(f"{path}: cannot read: {exc}") from None
    data, node = _yaml_root(text, path)
    if isinstance(data, dict) and set(data) == {"rubrics"}:
        return _rubrics_from_nodes(data["rubrics"], _value_node(node, "rubrics"), path, _key_lines(node, path)["rubrics"])
    if isinstance(data, list):
        return _rubrics_from_nodes(data, node, path, 1)
    raise InvalidContent(f"{path}:1: a rubrics file holds 'rubrics:' and a list (or just the list)")


def _items_from_nodes(values: list, node, where: str) -> list[EvalItem]:
    items = []
    seen: dict[str, int] = {}
    for value, child in zip(values, node.value, strict=True):
        line = child.start_mark.line + 1
        if not isinstance(value, dict):
            raise InvalidContent(f"{where}:{line}: an item is a mapping with id, inputs, conditions, expected, tags")
        key_lines = _key_lines(child, where)
        conditions_node = _value_node(child, "conditions")
        condition_lines = _key_lines(conditions_node, where) if getattr(conditions_node, "value", None) and isinstance(
            conditions_node.value, list
        ) else {}
        item = _build_item(value, where, line, key_lines, condition_lines)
        if item.id in seen:
            raise InvalidContent(f"{where}:{key_lines.get('id', line)}: item id {item.id!r} is used twice (first on line {seen[item.id]})")
        seen[item.id] = line
        items.append(item)
    return items


def _parse_jsonl(text: str, where: str) -> list[EvalItem]:
    items = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidContent(f"{where}:{number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise InvalidContent(f"{where}:{number}: each line must be a JSON object (an item)")
        item = _build_item(value, where, number, {}, {})
        if item.id in seen:
            raise InvalidContent(f"{where}:{number}: item id {item.id!r} is used twice (first on line {seen[item.id]})")
        seen[item.id] = number
        items.append(item)
    return items


def _build_item(value: dict, where: str, line: int, key_lines: dict[str, int], condition_lines: dict[str, int]) -> EvalItem:
    def at(key: str | None = None, sub: str | None = None) -> str:
        if sub is not None and sub in condition_lines:
            return f"{where}:{condition_lines[sub]}"
        return f"{where}:{key_lines.get(key, line) if key else line}"

    item_id = value.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        raise InvalidContent(f"{at('id')}: item needs an id (a non-empty string)")
    label = f"item {item_id!r}"
    for key in value:
        if key not in ITEM_KEYS:
            raise InvalidContent(f"{at(key)}: {label}: unknown key {key!r}; use {', '.join(ITEM_KEYS)}")
    inputs = value.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InvalidContent(f"{at('inputs')}: {label}: inputs must be a mapping of template variables")
    for name in inputs:
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            raise InvalidContent(f"{at('inputs')}: {label}: input name {name!r} is not a template variable name")
    raw_conditions = value.get("conditions") or {}
    if not isinstance(raw_conditions, dict):
        raise InvalidContent(f"{at('conditions')}: {label}: conditions must be a mapping (locale, tier, variant, key)")
    for key in raw_conditions:
        if key not in CONDITION_KEYS:
            raise InvalidContent(
                f"{at('conditions', key)}: {label}: unknown condition {key!r}; use {', '.join(CONDITION_KEYS)}"
            )
    checked: dict[str, str | None] = {}
    for key in CONDITION_KEYS:
        cond = raw_conditions.get(key)
        if cond is None or cond == "":
            checked[key] = None
            continue
        if key == "key" and isinstance(cond, int) and not isinstance(cond, bool):
            cond = str(cond)
        if not isinstance(cond, str):
            raise InvalidContent(f"{at('conditions', key)}: {label}: condition {key} must be a string")
        if key == "locale" and not _LOCALE.fullmatch(cond):
            raise InvalidContent(f"{at('conditions', key)}: {label}: locale {cond!r} is not a locale (e.g. de, en, pt-BR)")
        if key == "tier" and not _TIER.fullmatch(cond):
            raise InvalidContent(f"{at('conditions', key)}: {label}: tier {cond!r} must match [a-z][a-z0-9_]{{0,39}}")
        if key in ("variant", "key") and len(cond) > 200:
            raise InvalidContent(f"{at('conditions', key)}: {label}: {key} is longer than 200 characters")
        checked[key] = cond
    references = value.get("references") or {}
    if not isinstance(references, dict) or not all(isinstance(k, str) for k in references):
        raise InvalidContent(f"{at('references')}: {label}: references must be a mapping of name -> value")
    tags = value.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidContent(f"{at('tags')}: {label}: tags must be a list of strings")
    return EvalItem(
        id=item_id,
        inputs=inputs,
        conditions=Conditions(**checked),
        expected=value.get("expected"),
        references=references,
        tags=tuple(tags),
        line=line,
        has_expected="expected" in value,
    )


def _check_references(items: Sequence[EvalItem], rubrics: Sequence[RubricSpec], where: str) -> None:
    """Every rubric that compares to an item value finds that value in every item, before anything runs."""
    for rubric in rubrics:
        if rubric.kind not in NEEDS_REFERENCE or "value" in rubric.params:
            continue
        reference = rubric.params.get("reference", "expected")
        for item in items:
            present = item.has_expected if reference == "expected" else reference in item.references
            if not present:
                need = "expected value" if reference == "expected" else f"references.{reference} value"
                raise InvalidContent(f"{where}:{item.line}: item {item.id!r} has no {need}, which rubric {rubric.name} compares to")


def reference_value(item: EvalItem, reference: str) -> Any:
    return item.expected if reference == "expected" else item.references.get(reference)


def filter_items(evalset: EvalSet, tags: Sequence[str] = (), limit: int | None = None) -> EvalSet:
    """Items carrying any of ``tags`` (all when empty), at most ``limit`` of them, in file order."""
    items = [i for i in evalset.items if not tags or set(tags) & set(i.tags)]
    if limit is not None:
        items = items[: max(limit, 0)]
    if not items:
        raise UsageError(f"{evalset.path}: no items left after --tag/--limit")
    from dataclasses import replace

    return replace(evalset, items=tuple(items))

"""Rubrics: turn a target's output for one item into a score in [0, 1].

Built-ins: exact_match, contains, regex, json_valid, json_schema, length. ``custom`` calls the user's
``module:function(output, item, **params)``; an LLM-as-judge is just a custom scorer.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import EnvironmentProblem, InvalidContent, NotFound, UsageError
from .evalset import EvalItem, RubricSpec, reference_value


class ScorerError(Exception):
    """A scorer could not score one item (bad custom return value, the custom function raised)."""


def as_text(output: Any) -> str:
    """The text a text rubric looks at: strings as they are, None as "", anything else as compact JSON."""
    if isinstance(output, str):
        return output
    if output is None:
        return ""
    try:
        return json.dumps(output, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(output)


def _as_json(output: Any) -> tuple[bool, Any]:
    """(parsed?, value): a string is parsed as JSON; dicts, lists, numbers and booleans already are JSON."""
    if isinstance(output, str):
        try:
            return True, json.loads(output)
        except ValueError:
            return False, None
    if output is None:
        return False, None
    if isinstance(output, (dict, list, int, float, bool)):
        return True, output
    return False, None


def load_function(spec: str, what: str = "function") -> Callable[..., Any]:
    """Import ``module:function``. UsageError for a malformed spec, NotFound when it cannot be imported."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or not re.fullmatch(r"[A-Za-z_][\w.]*", module_name) or not attr.isidentifier():
        raise UsageError(f"{what} {spec!r}: use module:function, e.g. myapp.llm:classify")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise NotFound(
                f"{what} {spec!r}: no module named {exc.name!r} (is its directory on --target-path or the current directory?)"
            ) from None
        raise UsageError(f"{what} {spec!r}: importing {module_name} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed at import: one line, not a traceback
        raise UsageError(f"{what} {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    function = getattr(module, attr, None)
    if function is None:
        raise NotFound(f"{what} {spec!r}: module {module_name} has no attribute {attr!r}")
    if not callable(function):
        raise UsageError(f"{what} {spec!r}: {attr} is not callable")
    return function


def add_import_paths(paths: Sequence[str | Path]) -> None:
    """Put the user's project directories first on sys.path (so ``myapp.llm:classify`` imports)."""
    for path in reversed([str(Path(p).resolve()) for p in paths]):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


class Scorer:
    """One compiled rubric: ``scorer(output, item) -> float`` in [0, 1]."""

    __slots__ = ("name", "kind", "spec", "_score")

    def __init__(self, spec: RubricSpec, base_dir: Path):
        self.name = spec.name
        self.kind = spec.kind
        self.spec = spec
        self._score = _BUILDERS[spec.kind](spec, dict(spec.params), base_dir)

    def __call__(self, output: Any, item: EvalItem) -> float:
        return self._score(output, item)

    def __repr__(self) -> str:
        return f"Scorer({self.name}={self.kind})"


def build_scorers(rubrics: Sequence[RubricSpec], base_dir: str | Path = ".") -> list[Scorer]:
    """Compile every rubric once (regexes, schemas, custom imports) before the first item runs."""
    return [Scorer(spec, Path(base_dir)) for spec in rubrics]


def _reference_getter(params: Mapping[str, Any]) -> Callable[[EvalItem], Any]:
    if "value" in params:
        fixed = params["value"]
        return lambda item: fixed
    reference = params.get("reference", "expected")
    return lambda item: reference_value(item, reference)


def _exact_match(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    get = _reference_getter(params)
    strip = params.get("strip", True)
    fold = params.get("ignore_case", False)

    def norm(text: str) -> str:
        if strip:
            text = text.strip()
        return text.casefold() if fold else text

    def score(output: Any, item: EvalItem) -> float:
        reference = get(item)
        if isinstance(reference, str):
            if not isinstance(output, str):
                output = as_text(output)
            return 1.0 if norm(output) == norm(reference) else 0.0
        if output == reference:
            return 1.0
        parsed, value = _as_json(output) if isinstance(output, str) else (False, None)
        return 1.0 if parsed and value == reference else 0.0

    return score


def _contains(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    get = _reference_getter(params)
    fold = params.get("ignore_case", False)

    def score(output: Any, item: EvalItem) -> float:
        needles = get(item)
        if needles is None:
            return 0.0
        if not isinstance(needles, (list, tuple)):
            needles = [needles]
        if not needles:
            return 1.0
        text = as_text(output)
        if fold:
            text = text.casefold()
            return sum(1 for n in needles if str(n).casefold() in text) / len(needles)
        return sum(1 for n in needles if str(n) in text) / len(needles)

    return score


def _regex(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    flags = re.IGNORECASE if params.get("ignore_case") else 0
    pattern = re.compile(params["pattern"], flags)
    match = pattern.fullmatch if params.get("fullmatch") else pattern.search

    def score(output: Any, item: EvalItem) -> float:
        return 1.0 if match(as_text(output)) else 0.0

    return score


def _json_valid(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    def score(output: Any, item: EvalItem) -> float:
        return 1.0 if _as_json(output)[0] else 0.0

    return score


def _json_schema(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    where = spec.where
    try:
        import jsonschema
    except ImportError:
        raise EnvironmentProblem(
            f"{where}: rubric {spec.name}: json_schema needs the jsonschema package: pip install 'promptctl[jsonschema]'"
        ) from None

    if "schema_file" in params:
        schema_path = base_dir / str(params["schema_file"])
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"{where}: rubric {spec.name}: schema file {schema_path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise InvalidContent(f"{where}: rubric {spec.name}: cannot read schema file {schema_path}: {exc}") from None
    else:
        schema = params["schema"]
    validator_cls = jsonschema.validators.validator_for(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidContent(f"{where}: rubric {spec.name}: invalid JSON Schema: {exc.message}") from None
    validator = validator_cls(schema)

    def score(output: Any, item: EvalItem) -> float:
        parsed, value = _as_json(output)
        return 1.0 if parsed and validator.is_valid(value) else 0.0

    return score


def _length(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    low = params.get("min")
    high = params.get("max")
    unit = params.get("unit", "chars")
    measure: Callable[[str], int] = {
        "chars": len,
        "words": lambda text: len(text.split()),
        "lines": lambda text: len(text.splitlines()),
    }[unit]

    def score(output: Any, item: EvalItem) -> float:
        size = measure(as_text(output))
        if low is not None and size < low:
            return 0.0
        if high is not None and size > high:
            return 0.0
        return 1.0

    return score


def _custom(spec: RubricSpec, params: dict, base_dir: Path) -> Callable[[Any, EvalItem], float]:
    function = load_function(params["function"], what=f"rubric {spec.name}")
    extra = dict(params.get("params") or {})

    def score(output: Any, item: EvalItem) -> float:
        try:
            value = function(output, item, **extra)
        except Exception as exc:  # noqa: BLE001 - a failing judge fails this item's score, not the run
            raise ScorerError(f"rubric {spec.name}: {type(exc).__name__}: {exc}") from None
        return check_score(spec.name, value)

    return score


def check_score(name: str, value: Any) -> float:
    """A custom scorer's return value as a float in [0, 1], or ScorerError."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, (int, float)):
        raise ScorerError(f"rubric {name}: returned {type(value).__name__}, not a number in [0, 1]")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ScorerError(f"rubric {name}: returned {value!r}, outside [0, 1]")
    return value


_BUILDERS: dict[str, Callable[[RubricSpec, dict, Path], Callable[[Any, EvalItem], float]]] = {
    "exact_match": _exact_match,
    "contains": _contains,
    "regex": _regex,
    "json_valid": _json_valid,
    "json_schema": _json_schema,
    "length": _length,
    "custom": _custom,
}


def score_output(scorers: Sequence[Scorer], output: Any, item: EvalItem) -> tuple[dict[str, float], list[str]]:
    """Every rubric's score for one output; a scorer that fails gives 0 and an error message."""
    scores: dict[str, float] = {}
    errors: list[str] = []
    for scorer in scorers:
        try:
            scores[scorer.name] = scorer._score(output, item)
        except ScorerError as exc:
            scores[scorer.name] = 0.0
            errors.append(str(exc))
    return scores, errors

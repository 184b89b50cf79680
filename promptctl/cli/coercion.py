"""Fast argument coercion for plain parameter types.

Recent typer versions coerce every command parameter through a pydantic ``TypeAdapter``: importing pydantic
and building one adapter per parameter costs several hundred milliseconds on each command run, more than
all of ``promptctl list`` on 20,000 tags. For the plain types promptctl's commands use (``str``, ``bool``,
``int``, ``float``, ``list[str]`` and their optional forms) the value click parsed needs at most an
``int()`` / ``float()``; those parameters get this small coercion, and every other type (paths, enums,
files...) still goes through typer's own. On a typer without this machinery ``install`` does nothing.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

_PLAIN = (str, bool, int, float)


def _plain_kind(annotation: Any) -> tuple[type, bool] | None:
    """(element type, is_list) for str / bool / int / float, ``X | None`` and ``list[X]``; else None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        return _plain_kind(args[0])
    if origin is list:
        args = typing.get_args(annotation)
        if len(args) == 1 and args[0] in _PLAIN:
            return args[0], True
        return None
    if annotation in _PLAIN:
        return annotation, False
    return None


def install() -> bool:
    """Give typer parameters of plain types a pydantic-free coercion; True when installed."""
    try:
        from typer import BadParameter
        from typer import core as typer_core
        from typer._coercion import RuntimeParam
    except ImportError:
        return False
    param_class = getattr(typer_core, "_TyperParameter", None)
    original = getattr(param_class, "get_runtime_param", None)
    if original is None or getattr(original, "_promptctl_plain", False):
        return False

    def convert(kind: type, value: Any, param: Any, ctx: Any) -> Any:
        if kind is str or kind is bool or isinstance(value, kind) and not isinstance(value, bool):
            return value
        try:
            return kind(value)
        except (TypeError, ValueError):
            name = "integer" if kind is int else "number"
            raise BadParameter(f"{value!r} is not a valid {name}.", ctx=ctx, param=param) from None

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        kind: type = str
        is_list: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.is_list:
                return [convert(self.kind, item, param, ctx) for item in value]
            return convert(self.kind, value, param, ctx)

    def get_runtime_param(self):
        if getattr(self, "_runtime_param", None) is None:
            descriptor = getattr(self, "type_descriptor", None)
            plain = _plain_kind(getattr(descriptor, "annotation", None))
            info = getattr(descriptor, "parameter_info", None)
            if (
                plain is not None
                and getattr(descriptor, "file_annotation", None) is None
                and getattr(info, "parser", None) is None
                and getattr(info, "click_type", None) is None
                and getattr(info, "min", None) is None  # ranges are checked by typer's own coercion
                and getattr(info, "max", None) is None
            ):
                self._runtime_param = PlainRuntimeParam(
                    parameter_info=info, annotation=descriptor.annotation, kind=plain[0], is_list=plain[1]
                )
        return original(self)

    get_runtime_param._promptctl_plain = True  # type: ignore[attr-defined]
    param_class.get_runtime_param = get_runtime_param
    return True

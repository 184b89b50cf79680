"""Compile and render a prompt definition in Jinja2's sandbox with StrictUndefined.

Shared by the CLI (``promptctl render``) and the runtime loader, so both render identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InputTypeError, MissingVariable, RenderError
from .promptfile import PromptDefinition, resolve_include, split_chat_source

_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, (list, tuple)),
    "object": lambda v: isinstance(v, Mapping),
}


def input_checker(prompt_id: str, declared: Mapping[str, Any]):
    """A function checking variables against declared inputs, with the declarations digested once.

    The function raises MissingVariable / InputTypeError, and returns the variables to render with: absent
    optional inputs get their ``default`` (or None); undeclared extras are passed through.
    """
    rules = []
    for name, spec in declared.items():
        spec = spec or {}
        kind = spec.get("type", "string")
        rules.append((name, bool(spec.get("required", False)), spec.get("default"), _TYPE_CHECKS.get(kind), kind))
    frozen = tuple(rules)

    def check(variables: Mapping[str, Any]) -> Mapping[str, Any]:
        missing_optional = None
        for name, required, default, test, kind in frozen:
            if name in variables:
                if test is not None and not test(variables[name]):
                    raise InputTypeError(
                        f"{prompt_id}: variable {name!r} should be {kind}, got {type(variables[name]).__name__}"
                    )
            elif required:
                raise MissingVariable(f"{prompt_id}: missing required variable {name!r}")
            else:
                if missing_optional is None:
                    missing_optional = {}
                missing_optional[name] = default
        return {**missing_optional, **variables} if missing_optional else variables

    return check


def check_inputs(prompt_id: str, declared: Mapping[str, Any], variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """Required inputs present, declared types respected; absent optional inputs get their ``default``
    (or None). Undeclared extras are passed through. Returns the variables to render with."""
    return input_checker(prompt_id, declared)(variables)


class CompiledPrompt:
    """All bodies of one prompt definition, compiled once; rendering is then a cheap call."""

    def __init__(self, definition: PromptDefinition):
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self.definition = definition

        def load(name: str):
            source = definition.template_source(resolve_include(name, definition.prompt_id))
            if source is None:
                return None
            return source, None, lambda: True

        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined, autoescape=False, auto_reload=False
        )
        self._templates: dict[str, Any] = {}
        self._chat: dict[str, list[tuple[str, Any]]] = {}
        # Digested once: render() is on the application's hot path (the runtime loader calls it per request).
        self._check = input_checker(definition.prompt_id, definition.inputs)
        self._is_chat = definition.type == "chat"
        self._undefined_error = jinja2.UndefinedError
        self._template_error = jinja2.TemplateError

    def _template(self, body: str):
        template = self._templates.get(body)
        if template is None:
            template = self._templates[body] = self._env.get_template(body)
        return template

    def _chat_templates(self, body: str) -> list[tuple[str, Any]]:
        parts = self._chat.get(body)
        if parts is None:
            source = self.definition.bodies[body]
            parts = [(role, self._env.from_string(text)) for role, text in split_chat_source(source)]
            self._chat[body] = parts
        return parts

    def precompile(self) -> None:
        for body in self.definition.bodies:
            if self.definition.type == "chat":
                self._chat_templates(body)
            else:
                self._template(body)

    def render(self, body: str, variables: Mapping[str, Any]) -> str:
        variables = self._check(variables)
        try:
            if self._is_chat:
                return "\n\n".join(f"{role}:\n{text}" for role, text in self._render_chat(body, variables))
            template = self._templates.get(body)
            if template is None:
                template = self._template(body)
            return template.render(variables)
        except self._undefined_error as exc:
            raise MissingVariable(f"{self.definition.prompt_id}: {exc.message}") from None
        except self._template_error as exc:
            raise RenderError(f"{self.definition.prompt_id}/{body}: {exc}") from None

    def _render_chat(self, body: str, variables: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(role, template.render(variables).strip("\n")) for role, template in self._chat_templates(body)]

    def messages(self, body: str, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        variables = self._check(variables)
        try:
            if not self._is_chat:
                return [{"role": "user", "content": self._template(body).render(variables)}]
            return [{"role": role, "content": text} for role, text in self._render_chat(body, variables)]
        except self._undefined_error as exc:
            raise MissingVariable(f"{self.definition.prompt_id}: {exc.message}") from None
        except self._template_error as exc:
            raise RenderError(f"{self.definition.prompt_id}/{body}: {exc}") from None

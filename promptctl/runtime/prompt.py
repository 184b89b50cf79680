"""``ResolvedPrompt``: one prompt at one version, ready to render, and the context that tags spans.

``prompt.use()`` puts the prompt into the OpenTelemetry context (a contextvar underneath, so it follows
threads' own contexts and asyncio tasks); the span processor reads it from there. Span attributes are
computed once per resolved prompt and reused, so tagging a span is one ``set_attributes`` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace import get_current_span

from . import presets

if TYPE_CHECKING:
    from ..promptfile import PromptDefinition
    from ..render import CompiledPrompt

PROMPT_KEY = otel_context.create_key("promptctl-prompt")
BAGGAGE_KEYS = ("prompt.id", "prompt.version", "prompt.template_hash")


class Options:
    """What ``instrument()`` chose; ``generation`` changes on every change so cached attributes rebuild."""

    __slots__ = ("schema", "specs", "include_template", "include_variables", "baggage", "generation")

    def __init__(self) -> None:
        self.schema: Any = None  # None: each registry's own `schema:` (promptctl.yaml), else "prompt"
        self.specs: tuple[presets.AttributeSpec, ...] | None = None
        self.include_template = False
        self.include_variables = False
        self.baggage = False
        self.generation = object()

    def configure(self, schema: Any, include_template: bool, include_variables: bool, baggage: bool) -> None:
        self.specs = presets.resolve_schema(schema) if schema is not None else None
        self.schema = schema
        self.include_template = bool(include_template)
        self.include_variables = bool(include_variables)
        self.baggage = bool(baggage)
        self.generation = object()


OPTIONS = Options()


def set_missing_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` on ``span`` except those it already has (never overwrite)."""
    existing = getattr(span, "attributes", None)
    if existing:
        # Iterate the span's names once; `name in existing` would raise and catch a KeyError per miss.
        present = attributes.keys() & existing
        if present:
            attributes = {k: v for k, v in attributes.items() if k not in present}
            if not attributes:
                return
    span.set_attributes(attributes)


class ActivePrompt:
    """The value stored in the context by ``use()``: the prompt, and the variables of its last render."""

    __slots__ = ("prompt", "variables")

    def __init__(self, prompt: ResolvedPrompt):
        self.prompt = prompt
        self.variables: dict[str, str] | None = None

    def attributes(self) -> Mapping[str, Any]:
        attributes = self.prompt.span_attributes()
        if self.variables:
            return {**attributes, **self.variables}
        return attributes


class _Use:
    __slots__ = ("active", "token")

    def __init__(self, prompt: ResolvedPrompt):
        self.active = ActivePrompt(prompt)

    def __enter__(self) -> ResolvedPrompt:
        ctx = otel_context.set_value(PROMPT_KEY, self.active)
        if OPTIONS.baggage:
            from opentelemetry import baggage

            prompt = self.active.prompt
            for name, value in zip(BAGGAGE_KEYS, (prompt.id, prompt.version, prompt.template_hash), strict=True):
                if value:
                    ctx = baggage.set_baggage(name, value, ctx)
        self.token = otel_context.attach(ctx)
        return self.active.prompt

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self.token)


class ResolvedPrompt:
    """A prompt resolved to one version and one body. Immutable; safe to share between threads and tasks.

    ``id``, ``version`` ("v23"; None for an in-code fallback), ``template_hash`` (12 hex) and
    ``template_hash_full``, ``variant``, ``fallback`` (the exact locale/tier body was missing, or the in-code
    fallback served), ``code_fallback``, ``locale``, ``tier``, ``channel`` (None when pinned), ``model``
    (the model name), ``model_config`` (the whole ``model:`` mapping), ``stale`` (the registry could not be
    re-read; this is the last good version), ``body`` (the body file served), ``type`` ("text" | "chat").
    """

    __slots__ = (
        "id",
        "version",
        "template_hash",
        "template_hash_full",
        "variant",
        "fallback",
        "code_fallback",
        "locale",
        "tier",
        "channel",
        "model",
        "model_config",
        "stale",
        "published_at",
        "body",
        "type",
        "definition",
        "_compiled",
        "_default_specs",
        "_attributes",
        "_generation",
    )

    def __init__(
        self,
        definition: PromptDefinition,
        compiled: CompiledPrompt,
        *,
        version: str | None,
        body: str,
        fallback: bool,
        locale: str | None = None,
        tier: str | None = None,
        variant: str | None = None,
        channel: str | None = None,
        stale: bool = False,
        code_fallback: bool = False,
        default_specs: tuple[presets.AttributeSpec, ...] = (),
        published_at: str | None = None,
    ):
        self.id = definition.prompt_id
        self.version = version
        self.template_hash_full = definition.template_hash
        self.template_hash = definition.template_hash[:12]
        self.variant = variant
        self.fallback = fallback
        self.code_fallback = code_fallback
        self.locale = locale
        self.tier = tier
        self.channel = channel
        model = definition.model
        self.model = model.get("name")
        self.model_config = MappingProxyType(dict(model))
        self.stale = stale
        self.published_at = published_at  # publication time of the manifest served (HTTP registries), else None
        self.body = body
        self.type = definition.type
        self.definition = definition
        self._compiled = compiled
        self._default_specs = default_specs or presets.resolve_schema(None)
        self._generation: object = None
        self._attributes: dict[str, Any] = {}

    def __repr__(self) -> str:
        where = f"@{self.channel}" if self.channel else ""
        flags = "".join(f" {name}" for name in ("fallback", "stale") if getattr(self, name))
        return f"<ResolvedPrompt {self.id} {self.version or 'in-code fallback'}{where} {self.template_hash} {self.body}{flags}>"

    @property
    def template_source(self) -> str:
        """The source of the body served (Jinja2; role markers included for chat prompts)."""
        return self.definition.bodies[self.body]

    def span_attributes(self) -> dict[str, Any]:
        """The attributes this prompt writes on spans under the chosen schema (computed once, shared)."""
        if self._generation is not OPTIONS.generation:
            generation = OPTIONS.generation
            self._attributes = presets.build_attributes(self, OPTIONS.specs or self._default_specs, OPTIONS.include_template)
            self._generation = generation
        return self._attributes

    # -- use, render ------------------------------------------------------------------------------------
    def use(self) -> _Use:
        """Context manager: every span started inside carries this prompt's attributes (needs ``instrument()``)."""
        return _Use(self)

    def render(self, **variables: Any) -> str:
        """Render the body with ``variables`` (declared inputs checked; a missing required one raises).

        Chat prompts render as ``role:\\n text`` blocks; use ``messages()`` to get role/content dicts.
        """
        text = self._compiled.render(self.body, variables)
        if OPTIONS.include_variables:
            self._record_variables(variables)
        return text

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages ``[{"role": ..., "content": ...}]`` (a text prompt is one user message)."""
        messages = self._compiled.messages(self.body, variables)
        if OPTIONS.include_variables:
            self._record_variables(variables)
        return messages

    def _record_variables(self, variables: Mapping[str, Any]) -> None:
        names = presets.variable_names(OPTIONS.specs or self._default_specs)
        if not names:
            return
        value = presets.variables_json(variables)
        recorded = dict.fromkeys(names, value)
        active = otel_context.get_value(PROMPT_KEY)
        if isinstance(active, ActivePrompt) and active.prompt is self:
            active.variables = recorded
        span = get_current_span()
        if span.is_recording():
            set_missing_attributes(span, recorded)

"""The span processor that tags every span started inside ``prompt.use()``, and ``instrument()``.

Instrumentation libraries start their spans in many ways; opentelemetry-instrumentation-openai-v2 passes no
context at all, so ``on_start`` gets ``parent_context=None``. The prompt is therefore read from
``parent_context`` when it carries one, else from the current context.
"""

from __future__ import annotations

import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor

from ..errors import UsageError
from .prompt import BAGGAGE_KEYS, OPTIONS, PROMPT_KEY, ActivePrompt, set_missing_attributes


class PromptSpanProcessor(SpanProcessor):
    """Adds the active prompt's attributes to each span at start; never overwrites what a span has."""

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        active = parent_context.get(PROMPT_KEY) if parent_context is not None else None
        if active is None:
            active = otel_context.get_value(PROMPT_KEY)
        if isinstance(active, ActivePrompt):
            set_missing_attributes(span, active.attributes())
        elif OPTIONS.baggage:
            self._from_baggage(span, parent_context)

    @staticmethod
    def _from_baggage(span: Any, parent_context: otel_context.Context | None) -> None:
        """No prompt in this process: the ids another process put in the baggage, when opted in."""
        from opentelemetry import baggage

        found = baggage.get_all(parent_context) or baggage.get_all()
        attributes = {name: str(found[name]) for name in BAGGAGE_KEYS if name in found}
        if attributes:
            set_missing_attributes(span, attributes)

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_INSTALLED: weakref.WeakKeyDictionary[Any, PromptSpanProcessor] = weakref.WeakKeyDictionary()


def instrument(
    tracer_provider: Any = None,
    schema: Any = None,
    include_template: bool = False,
    include_variables: bool = False,
    baggage: bool = False,
) -> PromptSpanProcessor:
    """Install the prompt span processor on ``tracer_provider`` (the global one when None) and set options.

    ``schema``: a preset name (``prompt``, ``openinference``, ``langfuse``, ``genai``), several joined by
    commas or in a list, or None for each registry's ``schema:`` in promptctl.yaml (default ``prompt``).
    ``include_template`` / ``include_variables``: put the body source / the render variables on spans
    (they can carry user data: off by default). ``baggage``: carry the prompt ids (never bodies) in OTel
    baggage across process boundaries, and read them back in processes with no prompt of their own.
    Calling it again changes the options; the processor is installed once per provider.
    """
    if tracer_provider is None:
        from opentelemetry import trace

        tracer_provider = trace.get_tracer_provider()
    if not hasattr(tracer_provider, "add_span_processor"):
        raise UsageError(
            f"instrument() needs an OpenTelemetry SDK TracerProvider, not {type(tracer_provider).__name__} "
            "(set one with opentelemetry.trace.set_tracer_provider first)"
        )
    OPTIONS.configure(schema, include_template, include_variables, baggage)
    installed = _INSTALLED.get(tracer_provider)
    if installed is not None:
        return installed
    processor = PromptSpanProcessor()
    tracer_provider.add_span_processor(processor)
    _INSTALLED[tracer_provider] = processor
    return processor

"""The runtime loader: ``Registry`` resolves and renders prompts, ``instrument()`` tags every span.

Importing this package costs ``opentelemetry.trace`` and the standard library; Jinja2 and PyYAML load on the
first ``get()``, the OpenTelemetry SDK on ``instrument()``.
"""

from __future__ import annotations

from typing import Any

from .loader import Registry
from .prompt import ResolvedPrompt

__all__ = ["Registry", "ResolvedPrompt", "instrument"]


def instrument(
    tracer_provider: Any = None,
    schema: Any = None,
    include_template: bool = False,
    include_variables: bool = False,
    baggage: bool = False,
):
    """Install the prompt span processor (see ``promptctl.runtime.processor.instrument``)."""
    from .processor import instrument as _instrument

    return _instrument(tracer_provider, schema, include_template, include_variables, baggage)

"""Span files in, analytic tables out: the one reader shared by drift and provenance, and an OTLP/JSON writer.

``promptctl.spans.otlp_json`` needs only the OpenTelemetry SDK; ``promptctl.spans.reader`` needs DuckDB.
Names are imported on first use so neither drags the other in.
"""

from __future__ import annotations

_LAZY = {
    "OtlpJsonFileExporter": "promptctl.spans.otlp_json",
    "encode_spans": "promptctl.spans.otlp_json",
    "load_spans": "promptctl.spans.reader",
    "SpanLoad": "promptctl.spans.reader",
    "MalformedLine": "promptctl.spans.reader",
    "MalformedSpanFile": "promptctl.spans.reader",
    "NoSpanFiles": "promptctl.spans.reader",
    "SPAN_COLUMNS": "promptctl.spans.reader",
    "DEFAULT_SCORE_PATTERN": "promptctl.spans.reader",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'promptctl.spans' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

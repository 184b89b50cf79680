"""OTLP/JSON span files: the OpenTelemetry Collector file exporter's format, written by the Python SDK.

Each ``export`` call appends one line holding one ``ExportTraceServiceRequest`` (``TracesData``) encoded as
the OTLP JSON Protobuf encoding asks: lowerCamelCase keys, trace and span ids as lowercase hex, 64-bit
integers (timestamps, ``intValue``) as decimal strings, enums (``kind``, ``status.code``) as integers,
empty fields omitted. The same reader (``promptctl.spans.reader``) reads these files and the Collector's.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["OtlpJsonFileExporter", "encode_spans", "encode_value"]


def encode_value(value: Any) -> dict[str, Any]:
    """One attribute value as an OTLP ``AnyValue``."""
    if value is None:
        return {}
    if isinstance(value, bool):  # before int: bool is an int
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [encode_value(v) for v in value]}}
    return {"stringValue": str(value)}


def encode_attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    return [{"key": str(key), "value": encode_value(value)} for key, value in attributes.items()]


def _trace_id(value: int) -> str:
    return format(value, "032x")


def _span_id(value: int) -> str:
    return format(value, "016x")


def _span_flags(parent: Any) -> int:
    # As the SDK's OTLP protobuf encoder: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus IS_REMOTE when it is.
    return 0x300 if parent is not None and parent.is_remote else 0x100


def _put_attributes(out: dict[str, Any], attributes: Any, dropped: int) -> None:
    """``attributes`` and ``droppedAttributesCount`` of a span, event or link, each only when there is one."""
    encoded = encode_attributes(attributes)
    if encoded:
        out["attributes"] = encoded
    if dropped:
        out["droppedAttributesCount"] = dropped


def _encode_span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    out: dict[str, Any] = {"traceId": _trace_id(ctx.trace_id), "spanId": _span_id(ctx.span_id)}
    if ctx.trace_state:
        out["traceState"] = ctx.trace_state.to_header()
    if span.parent is not None and span.parent.span_id:
        out["parentSpanId"] = _span_id(span.parent.span_id)
    out["flags"] = _span_flags(span.parent)
    out["name"] = span.name
    out["kind"] = span.kind.value + 1  # SDK INTERNAL=0..CONSUMER=4; OTLP SPAN_KIND_INTERNAL=1..CONSUMER=5
    if span.start_time is not None:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time is not None:
        out["endTimeUnixNano"] = str(span.end_time)
    _put_attributes(out, span.attributes, span.dropped_attributes)
    if span.events:
        events = []
        for event in span.events:
            encoded: dict[str, Any] = {"timeUnixNano": str(event.timestamp), "name": event.name}
            _put_attributes(encoded, event.attributes, event.dropped_attributes)
            events.append(encoded)
        out["events"] = events
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        links = []
        for link in span.links:
            encoded = {"traceId": _trace_id(link.context.trace_id), "spanId": _span_id(link.context.span_id)}
            _put_attributes(encoded, link.attributes, link.dropped_attributes)
            encoded["flags"] = _span_flags(link.context)
            links.append(encoded)
        out["links"] = links
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.status_code.value:  # UNSET=0, OK=1, ERROR=2 in both the SDK and OTLP
        status["code"] = span.status.status_code.value
    if span.status.description:
        status["message"] = span.status.description
    out["status"] = status
    return out


def encode_spans(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` as a JSON-ready dict, spans grouped by resource, then scope."""
    grouped: dict[Any, dict[Any, list[dict[str, Any]]]] = {}
    for span in spans:
        scopes = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_encode_span(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            scope_out: dict[str, Any] = {}
            if scope is not None and scope.name:
                scope_out["name"] = scope.name
            if scope is not None and scope.version:
                scope_out["version"] = scope.version
            scope_attributes = encode_attributes(getattr(scope, "attributes", None))
            if scope_attributes:
                scope_out["attributes"] = scope_attributes
            item: dict[str, Any] = {"scope": scope_out, "spans": encoded}
            if scope is not None and scope.schema_url:
                item["schemaUrl"] = scope.schema_url
            scope_spans.append(item)
        resource_out: dict[str, Any] = {"resource": {"attributes": encode_attributes(resource.attributes)}}
        resource_out["scopeSpans"] = scope_spans
        if resource.schema_url:
            resource_out["schemaUrl"] = resource.schema_url
        resource_spans.append(resource_out)
    return {"resourceSpans": resource_spans}


class OtlpJsonFileExporter(SpanExporter):
    """Appends one OTLP/JSON ``ExportTraceServiceRequest`` line per ``export`` call to ``path``.

    Safe to share between threads (one lock) and between processes appending to the same file (each line
    is written with a single ``write`` on an ``O_APPEND`` descriptor). The parent directory is created.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._shutdown = False
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(encode_spans(spans), ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shutdown = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

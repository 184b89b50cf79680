"""The OTLP/JSON span file writer and the shared span reader, on real SDK spans and real files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from promptctl.spans.otlp_json import OtlpJsonFileExporter, encode_spans

PROMPT_ATTRS = {
    "prompt.id": "support_intent_classifier",
    "prompt.version": "v2",
    "prompt.template_hash": "0123456789ab",
    "prompt.channel": "production",
    "prompt.locale": "de",
    "prompt.tier": "enterprise",
    "prompt.condition.fallback": False,
}


def _provider(*exporters) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _emit(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("promptctl.eval", "0.1.0")
    with tracer.start_as_current_span("eval.item", kind=SpanKind.CLIENT) as outer:
        outer.set_attributes({**PROMPT_ATTRS, "eval.score.exact_match": 1.0, "eval.score.cited": 0.5})
        outer.set_attribute("tokens", 12)
        outer.set_attribute("labels", ["a", "b"])
        outer.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span(
            "inner", links=[Link(outer.get_span_context(), {"why": "x"})]
        ) as inner:
            inner.set_status(Status(StatusCode.ERROR, "boom"))


# -- writer ----------------------------------------------------------------------------------------------


def test_exporter_writes_one_otlp_json_request_per_export(tmp_path: Path):
    path = tmp_path / "out" / "spans.jsonl"
    provider = _provider(OtlpJsonFileExporter(path))
    _emit(provider)
    provider.shutdown()

    lines = path.read_text().splitlines()
    assert len(lines) == 2  # SimpleSpanProcessor: one export per span, one line per export
    inner, outer = (json.loads(line)["resourceSpans"][0] for line in lines)
    assert {"key": "service.name", "value": {"stringValue": "svc"}} in outer["resource"]["attributes"]
    scope = outer["scopeSpans"][0]["scope"]
    assert scope == {"name": "promptctl.eval", "version": "0.1.0"}
    span = outer["scopeSpans"][0]["spans"][0]
    child = inner["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    assert len(span["spanId"]) == 16 and int(span["spanId"], 16)
    assert "parentSpanId" not in span and child["parentSpanId"] == span["spanId"]
    assert span["kind"] == 3  # SPAN_KIND_CLIENT
    assert isinstance(span["startTimeUnixNano"], str) and int(span["endTimeUnixNano"]) >= int(
        span["startTimeUnixNano"]
    )
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["prompt.version"] == {"stringValue": "v2"}
    assert attrs["prompt.condition.fallback"] == {"boolValue": False}
    assert attrs["eval.score.exact_match"] == {"doubleValue": 1.0}
    assert attrs["tokens"] == {"intValue": "12"}
    assert attrs["labels"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert child["status"] == {"code": 2, "message": "boom"}


def test_exporter_matches_the_sdk_protobuf_encoder(tmp_path: Path):
    """Our JSON, parsed back as protobuf, equals what the SDK's own OTLP encoder produces."""
    trace_encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")
    json_format = pytest.importorskip("google.protobuf.json_format")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    memory = InMemorySpanExporter()
    provider = _provider(memory)
    _emit(provider)
    spans = memory.get_finished_spans()

    ours = encode_spans(spans)

    def hex_to_b64(node):  # protobuf's JSON mapping spells bytes as base64, OTLP/JSON as hex
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId")
                else hex_to_b64(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hex_to_b64(v) for v in node]
        return node

    parsed = json_format.ParseDict(hex_to_b64(ours), ExportTraceServiceRequest())
    assert parsed == trace_encoder.encode_spans(spans)


def test_exporter_appends_and_reports_failure_after_shutdown(tmp_path: Path):
    path = tmp_path / "spans.jsonl"
    for _ in range(2):
        provider = _provider(OtlpJsonFileExporter(path))
        _emit(provider)
        provider.shutdown()
    assert len(path.read_text().splitlines()) == 4
    exporter = OtlpJsonFileExporter(path)
    exporter.shutdown()
    from opentelemetry.sdk.trace.export import SpanExportResult

    memory = InMemorySpanExporter()
    provider = _provider(memory)
    _emit(provider)
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    assert len(path.read_text().splitlines()) == 4

# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""A real client: the openai SDK, instrumented by opentelemetry-instrumentation-openai-v2, against a stub server.

The instrumentation starts its chat span with no explicit context (the processor's ``on_start`` gets
``parent_context=None``); the prompt attributes must still land on that span, for a plain call, a streamed
call and an ``AsyncOpenAI`` call in an asyncio task, and must not land on a call outside ``use()``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import instrumented_provider, run_cli
from opentelemetry.trace import SpanKind
from test_runtime_support import runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl

openai = pytest.importorskip("openai")
openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")

SIC = "support_intent_classifier"


class _ChatCompletions(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        base = {"id": "chatcmpl-stub", "created": 1700000000, "model": request["model"]}
        if request.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for delta, finish in (({"role": "assistant", "content": "ref"}, None), ({"content": "und"}, "stop")):
                chunk = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        body = json.dumps(
            {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "refund"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def instrumented():
    provider, exporter = instrumented_provider()
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()


def chat_spans(exporter) -> list:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CLIENT and (s.attributes or {}).get("gen_ai.operation.name") == "chat"
    ]


def test_the_sdks_own_chat_span_carries_the_prompt(runtime_repo, stub_server, instrumented):
    exporter = instrumented
    shown = json.loads(run_cli(runtime_repo, "show", f"{SIC}@current", "--json").stdout)
    registry = promptctl.Registry(runtime_repo)
    client = openai.OpenAI(base_url=stub_server, api_key="test", max_retries=0)
    async_client = openai.AsyncOpenAI(base_url=stub_server, api_key="test", max_retries=0)
    prompt = registry.get(SIC)

    with prompt.use():
        plain = client.chat.completions.create(model=prompt.model, messages=prompt.messages(message="refund please"))
        streamed = client.chat.completions.create(
            model=prompt.model, messages=prompt.messages(message="refund please"), stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)

        async def in_a_task():
            async def call():
                response = await async_client.chat.completions.create(
                    model=prompt.model, messages=prompt.messages(message="refund please")
                )
                return response.choices[0].message.content

            return await asyncio.create_task(call())

        from_task = asyncio.run(in_a_task())
    assert plain.choices[0].message.content == "refund" and text == "refund" and from_task == "refund"
    inside = chat_spans(exporter)
    assert len(inside) == 3
    for span in inside:
        assert span.attributes["prompt.version"] == shown["version"] == "v1"
        assert span.attributes["prompt.template_hash"] == shown["template_hash"][:12]
        assert span.attributes["prompt.id"] == SIC
        assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"  # the instrumentation's own attributes stay

    exporter.clear()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "no prompt"}])
    (outside,) = chat_spans(exporter)
    assert not any(name.startswith("prompt.") for name in outside.attributes)

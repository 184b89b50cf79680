# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""Span attributes: at resolve time, on every span inside ``use()``, presets, opt-ins, threads and asyncio."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from conftest import instrumented_provider, run_cli
from opentelemetry import baggage, context
from test_runtime_support import runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl
from promptctl.runtime.presets import PRESETS

SIC = "support_intent_classifier"


@pytest.fixture
def traced():
    provider, exporter = instrumented_provider()
    return provider, provider.get_tracer("test"), exporter


def by_name(exporter) -> dict:
    return {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}


def test_resolve_tags_the_current_span_and_use_tags_every_span_inside(runtime_repo, traced):
    _, tracer, exporter = traced
    registry = promptctl.Registry(runtime_repo)
    with tracer.start_as_current_span("request"):
        prompt = registry.get(SIC, locale="de", tier="free", variant="control")
        with prompt.use():
            with tracer.start_as_current_span("llm"):
                with tracer.start_as_current_span("http"):
                    pass
            no_context = tracer.start_span("started-without-context")  # on_start gets parent_context=None
            no_context.end()
        with tracer.start_as_current_span("after"):
            pass
    spans = by_name(exporter)
    expected = {
        "prompt.id": SIC,
        "prompt.version": "v1",
        "prompt.template_hash": prompt.template_hash,
        "prompt.variant": "control",
        "prompt.locale": "de",
        "prompt.tier": "free",
        "prompt.condition.fallback": True,
        "prompt.channel": "current",
    }
    for name in ("request", "llm", "http", "started-without-context"):
        assert spans[name] == expected, name
    assert spans["after"] == {}


def test_existing_attributes_are_never_overwritten(runtime_repo, traced):
    _, tracer, exporter = traced
    registry = promptctl.Registry(runtime_repo)
    prompt = registry.get(SIC)
    with prompt.use():
        with tracer.start_as_current_span("mine", attributes={"prompt.version": "custom", "x": 1}):
            pass
    with tracer.start_as_current_span("request", attributes={"prompt.id": "other"}):
        registry.get(SIC)
    spans = by_name(exporter)
    assert spans["mine"]["prompt.version"] == "custom" and spans["mine"]["prompt.id"] == SIC
    assert spans["request"]["prompt.id"] == "other" and spans["request"]["prompt.version"] == "v1"


def test_explicit_parent_context_carries_the_prompt(runtime_repo, traced):
    _, tracer, exporter = traced
    prompt = promptctl.Registry(runtime_repo).get(SIC)
    with prompt.use():
        captured = context.get_current()
    span = tracer.start_span("later", context=captured)  # outside use(), but started from a context inside it
    span.end()
    assert by_name(exporter)["later"]["prompt.version"] == "v1"


def test_nested_use_inner_prompt_wins(runtime_repo, traced):
    _, tracer, exporter = traced
    registry = promptctl.Registry(runtime_repo)
    outer, inner = registry.get(SIC), registry.get("ticket_summarizer")
    with outer.use():
        with inner.use():
            tracer.start_span("inner").end()
        tracer.start_span("outer").end()
    spans = by_name(exporter)
    assert spans["inner"]["prompt.id"] == "ticket_summarizer" and spans["outer"]["prompt.id"] == SIC


def test_threads_each_have_their_own_prompt(runtime_repo, traced):
    _, tracer, exporter = traced
    registry = promptctl.Registry(runtime_repo)
    barrier = threading.Barrier(2)

    def work(prompt_id: str):
        with registry.get(prompt_id).use():
            barrier.wait()  # both inside use() at once
            tracer.start_span(f"span-{prompt_id}").end()
            barrier.wait()

    threads = [threading.Thread(target=work, args=(p,)) for p in (SIC, "ticket_summarizer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = by_name(exporter)
    assert spans[f"span-{SIC}"]["prompt.id"] == SIC
    assert spans["span-ticket_summarizer"]["prompt.id"] == "ticket_summarizer"


def test_asyncio_tasks_keep_their_prompt(runtime_repo, traced):
    _, tracer, exporter = traced
    registry = promptctl.Registry(runtime_repo)

    async def call(prompt_id: str):
        with registry.get(prompt_id).use():
            await asyncio.sleep(0.01)  # the other task runs meanwhile
            tracer.start_span(f"task-{prompt_id}").end()

    async def main():
        await asyncio.gather(call(SIC), call("ticket_summarizer"))
        with registry.get(SIC).use():
            task = asyncio.create_task(asyncio.sleep(0))  # a task made inside use() inherits the context
            tracer.start_span("parent").end()
            await task

    asyncio.run(main())
    spans = by_name(exporter)
    assert spans[f"task-{SIC}"]["prompt.id"] == SIC
    assert spans["task-ticket_summarizer"]["prompt.id"] == "ticket_summarizer"


# -- presets, with names proved against the packages that define them -----------------------------------------


def test_openinference_preset_uses_the_packages_names(runtime_repo, traced):
    from openinference.semconv.trace import SpanAttributes

    provider, tracer, exporter = traced
    promptctl.instrument(provider, schema="openinference", include_template=True, include_variables=True)
    prompt = promptctl.Registry(runtime_repo).get(SIC)
    with prompt.use():
        prompt.render(message="refund please")
        tracer.start_span("llm").end()
    attrs = by_name(exporter)["llm"]
    assert attrs[SpanAttributes.PROMPT_ID] == SIC
    assert attrs[SpanAttributes.PROMPT_VENDOR] == "promptctl"
    assert attrs[SpanAttributes.LLM_PROMPT_TEMPLATE_VERSION] == "v1"
    assert attrs[SpanAttributes.LLM_PROMPT_TEMPLATE] == prompt.template_source
    assert json.loads(attrs[SpanAttributes.LLM_PROMPT_TEMPLATE_VARIABLES]) == {"message": "refund please"}
    assert attrs["prompt.template_hash"] == prompt.template_hash  # promptctl's identity rides along
    assert "prompt.locale" not in attrs


def test_langfuse_preset_uses_the_sdks_names(runtime_repo, traced):
    attributes = pytest.importorskip("langfuse._client.attributes")  # in the test extras
    names = attributes.LangfuseOtelSpanAttributes
    provider, tracer, exporter = traced
    promptctl.instrument(provider, schema="langfuse")
    with promptctl.Registry(runtime_repo).get(f"{SIC}@v2").use():
        tracer.start_span("generation").end()
    attrs = by_name(exporter)["generation"]
    assert attrs[names.OBSERVATION_PROMPT_NAME] == SIC
    assert attrs[names.OBSERVATION_PROMPT_VERSION] == 2  # Langfuse versions are integers


def test_langfuse_preset_names_are_the_documented_ones():
    names = [spec.name for spec in PRESETS["langfuse"]]
    assert names[:2] == ["langfuse.observation.prompt.name", "langfuse.observation.prompt.version"]


def test_genai_preset_emits_only_what_semconv_defines(runtime_repo, traced):
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes

    provider, tracer, exporter = traced
    promptctl.instrument(provider, schema="genai")
    with promptctl.Registry(runtime_repo).get(SIC).use():
        tracer.start_span("chat").end()
    attrs = by_name(exporter)["chat"]
    assert attrs[gen_ai_attributes.GEN_AI_PROMPT_NAME] == SIC
    emitted = {name for name in attrs if name.startswith("gen_ai.")}
    defined = {value for name, value in vars(gen_ai_attributes).items() if name.startswith("GEN_AI_")}
    assert emitted <= defined  # nothing invented under gen_ai.*
    if not hasattr(gen_ai_attributes, "GEN_AI_PROMPT_VERSION"):
        assert "gen_ai.prompt.version" not in attrs


def test_presets_combine_and_unknown_is_a_usage_error(runtime_repo, traced):
    from promptctl.errors import UsageError

    provider, tracer, exporter = traced
    promptctl.instrument(provider, schema="prompt,langfuse")
    with promptctl.Registry(runtime_repo).get(SIC).use():
        tracer.start_span("both").end()
    attrs = by_name(exporter)["both"]
    assert attrs["prompt.channel"] == "current" and attrs["langfuse.observation.prompt.version"] == 1
    with pytest.raises(UsageError, match="unknown attribute schema 'phoenix'"):
        promptctl.instrument(provider, schema="phoenix")


def test_registry_config_chooses_the_schema_when_instrument_does_not(runtime_repo, traced):
    from conftest import git

    config = runtime_repo / "promptctl.yaml"
    config.write_text(config.read_text().replace("schema: prompt", "schema: genai"))
    git(runtime_repo, "commit", "-q", "-am", "genai schema")
    _, tracer, exporter = traced
    with promptctl.Registry(runtime_repo).get(SIC).use():
        tracer.start_span("s").end()
    assert by_name(exporter)["s"]["gen_ai.prompt.name"] == SIC


def test_template_and_variables_only_when_asked(runtime_repo, traced):
    provider, tracer, exporter = traced
    prompt = promptctl.Registry(runtime_repo).get(SIC)
    with prompt.use():
        prompt.render(message="my card number is 4242")
        tracer.start_span("default").end()
    assert not any("4242" in str(v) or "label" in str(v) for v in by_name(exporter)["default"].values())
    promptctl.instrument(provider, include_variables=True, include_template=True)
    with tracer.start_as_current_span("request"):
        with prompt.use():
            prompt.render(message="opt in")
            tracer.start_span("opted").end()
    spans = by_name(exporter)
    assert json.loads(spans["opted"]["prompt.variables"]) == {"message": "opt in"}
    assert spans["opted"]["prompt.template"] == prompt.template_source
    assert json.loads(spans["request"]["prompt.variables"]) == {"message": "opt in"}


def test_baggage_is_opt_in_and_carries_ids_only(runtime_repo, traced):
    provider, tracer, exporter = traced
    prompt = promptctl.Registry(runtime_repo).get(SIC)
    with prompt.use():
        assert baggage.get_all() == {}
    promptctl.instrument(provider, baggage=True)
    with prompt.use():
        carried = dict(baggage.get_all())
    assert carried == {"prompt.id": SIC, "prompt.version": "v1", "prompt.template_hash": prompt.template_hash}
    # Another process: no prompt of its own, the baggage extracted from the incoming request.
    incoming = context.get_current()
    for name, value in carried.items():
        incoming = baggage.set_baggage(name, value, incoming)
    token = context.attach(incoming)
    try:
        tracer.start_span("downstream").end()
    finally:
        context.detach(token)
    assert by_name(exporter)["downstream"] == carried


def test_instrument_needs_an_sdk_provider_and_installs_once(traced):
    from opentelemetry.trace import NoOpTracerProvider

    from promptctl.errors import UsageError

    provider = traced[0]
    assert promptctl.instrument(provider) is promptctl.instrument(provider)
    with pytest.raises(UsageError, match="SDK TracerProvider"):
        promptctl.instrument(NoOpTracerProvider())


# -- promptctl schema ------------------------------------------------------------------------------------------


def test_schema_cli_is_generated_from_the_presets(tmp_path):
    proc = run_cli(tmp_path, "schema", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == list(PRESETS)
    assert [row["attribute"] for row in data["prompt"]] == [spec.name for spec in PRESETS["prompt"]]
    text = run_cli(tmp_path, "schema", "langfuse")
    assert "langfuse.observation.prompt.version" in text.stdout and "prompt.locale" not in text.stdout


def test_schema_cli_unknown_preset(tmp_path):
    proc = run_cli(tmp_path, "schema", "phoenix")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "promptctl: error: unknown schema preset 'phoenix': use one of prompt, openinference, langfuse, genai"

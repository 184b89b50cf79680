# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""No-git mode: ``promptctl export`` writes a manifest and content-addressed objects; Registry(DIR) serves them."""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest
from conftest import run_cli
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_runtime_support import promote, runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl
from promptctl.errors import InvalidContent, UnknownChannel, UnknownPrompt, UnknownVersion

SIC = "support_intent_classifier"


def export(repo, directory, *channels: str):
    args = ["export", str(directory), "--json"]
    for channel in channels:
        args += ["--channel", channel]
    return run_cli(repo, *args)


def test_export_layout_manifest_and_content_addressed_objects(runtime_repo, tmp_path):
    promote(runtime_repo, SIC, "production", "v1:90,v2:10", reason="canary for the new wording")
    out = tmp_path / "export"
    proc = export(runtime_repo, out, "production")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert json.loads(proc.stdout) == manifest
    assert manifest["format"] == "promptctl-export/1" and manifest["default_channel"] == "production"
    assert manifest["config"]["variants"] == {"treatment": "experiment-b"}
    entry = manifest["prompts"][SIC]
    production = entry["channels"]["production"]
    assert [(s["version"], s["percent"]) for s in production["serves"]] == [("v1", 90), ("v2", 10)]
    assert production["last_move"]["reason"] == "canary for the new wording"
    assert production["last_move"]["author"].startswith("Test Author")
    assert entry["channels"]["experiment-b"]["serves"][0]["version"] == "v2"  # the variant's channel comes along
    assert set(manifest["prompts"]) == {SIC}  # the other prompts have no production channel
    shown = json.loads(run_cli(runtime_repo, "show", f"{SIC}@v2", "--json").stdout)
    assert entry["versions"]["v2"] == shown["template_hash"]
    for digest in entry["versions"].values():
        data = (out / "objects" / f"{digest}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest  # the name is the content's hash
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "objects"]


def test_export_serves_like_git_with_the_same_span_attributes(runtime_repo, tmp_path):
    promote(runtime_repo, SIC, "production", "v1:50,v2:50")
    out = tmp_path / "export"
    assert export(runtime_repo, out, "production").returncode == 0
    copied = tmp_path / "image"  # a container image: the export alone, no repository anywhere
    shutil.copytree(out, copied)
    shutil.rmtree(runtime_repo / ".git")

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    promptctl.instrument(provider)
    tracer = provider.get_tracer("t")
    served = promptctl.Registry(copied)
    results = {}
    for key in ("alice", "bob", "carol", "dave", "erin", "frank"):
        prompt = served.get(SIC, locale="de", key=key)
        with prompt.use():
            tracer.start_span(key).end()
        results[key] = prompt.version
        assert prompt.channel == "production"
        assert prompt.render(message="m").startswith("Du ordnest")
    from promptctl.runtime.split import bucket

    assert results == {k: "v2" if bucket(SIC, "production", k) < 5000 else "v1" for k in results}
    span = {s.name: dict(s.attributes) for s in exporter.get_finished_spans()}["alice"]
    assert span == served.get(SIC, locale="de", key="alice").span_attributes()
    assert set(span) == {
        "prompt.id", "prompt.version", "prompt.template_hash", "prompt.locale",
        "prompt.condition.fallback", "prompt.channel",
    }
    assert served.get(SIC, variant="treatment").version == "v2"
    assert served.get(f"{SIC}@v1").version == "v1"
    with pytest.raises(UnknownVersion):
        served.get(f"{SIC}@v7")
    with pytest.raises(UnknownPrompt):
        served.get("ticket_summarizer")
    with pytest.raises(UnknownChannel):
        served.get(SIC, channel="current")


def test_same_content_as_the_git_registry(runtime_repo, tmp_path):
    out = tmp_path / "export"
    assert export(runtime_repo, out, "current").returncode == 0
    from_git, from_export = promptctl.Registry(runtime_repo), promptctl.Registry(out)
    for prompt_id in ("support_intent_classifier", "ticket_summarizer"):
        for locale, tier in ((None, None), ("de", "enterprise")):
            a, b = from_git.get(prompt_id, locale=locale, tier=tier), from_export.get(prompt_id, locale=locale, tier=tier)
            assert (a.version, a.template_hash_full, a.body, a.fallback) == (b.version, b.template_hash_full, b.body, b.fallback)
            variables = {"message": "m", "thread": "t"}
            declared = {k: v for k, v in variables.items() if k in a.definition.inputs}
            assert a.render(**declared) == b.render(**declared)
    reply = {"customer_name": "A", "intent": "refund", "message": "m"}
    assert from_git.get("support_reply").messages(**reply) == from_export.get("support_reply").messages(**reply)


def test_reexport_is_picked_up_within_the_ttl(runtime_repo, tmp_path):
    out = tmp_path / "export"
    assert export(runtime_repo, out, "production").returncode == 0
    registry = promptctl.Registry(out, ttl=0.2)
    assert registry.get(SIC).version == "v1"
    promote(runtime_repo, SIC, "production", "v2")
    assert export(runtime_repo, out, "production").returncode == 0
    time.sleep(0.25)
    assert registry.get(SIC).version == "v2"


def test_corrupt_object_is_a_typed_error_then_stale(runtime_repo, tmp_path):
    out = tmp_path / "export"
    assert export(runtime_repo, out, "production").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    digest = manifest["prompts"][SIC]["versions"]["v1"]
    good = (out / "objects" / f"{digest}.json").read_bytes()
    (out / "objects" / f"{digest}.json").write_bytes(good.replace(b"label", b"LABEL"))
    with pytest.raises(InvalidContent, match="corrupt"):
        promptctl.Registry(out).get(SIC)
    (out / "objects" / f"{digest}.json").write_bytes(good)
    registry = promptctl.Registry(out, ttl=0)
    assert registry.get(SIC).version == "v1"
    (out / "manifest.json").write_text("{not json")
    prompt = registry.get(SIC)
    assert prompt.stale and prompt.version == "v1"


# -- errors: exit code, one line, nothing changed -----------------------------------------------------------------


def test_export_unknown_channel(runtime_repo, tmp_path):
    out = tmp_path / "export"
    proc = export(runtime_repo, out, "staging")
    assert proc.returncode == 3
    assert proc.stderr == "promptctl: error: no prompt has channel 'staging'; nothing exported\n"
    assert not out.exists()


def test_export_invalid_channel_name(runtime_repo, tmp_path):
    out = tmp_path / "export"
    proc = export(runtime_repo, out, "Prod!")
    assert proc.returncode == 2
    assert proc.stderr.startswith("promptctl: error: invalid channel name 'Prod!'") and proc.stderr.count("\n") == 1
    assert not out.exists()


def test_export_destination_not_writable(runtime_repo, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    proc = export(runtime_repo, blocker, "production")
    assert proc.returncode == 7
    assert proc.stderr.startswith(f"promptctl: error: cannot write the export to {blocker}") and proc.stderr.count("\n") == 1
    assert blocker.read_text() == "not a directory\n"


def test_export_outside_a_registry(tmp_path):
    proc = export(tmp_path, tmp_path / "out", "production")
    assert proc.returncode == 3
    assert proc.stderr.startswith("promptctl: error: ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()

# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""The remote loader: promptctl.Registry(URL) against a real http.server on 127.0.0.1 serving a published dir."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest
from fleet_support import Origin, age
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_runtime_support import runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl
from promptctl.channels import ChannelStore
from promptctl.errors import InvalidContent, NoRegistry, RegistryUnavailable, Unreachable
from promptctl.publish import publish
from promptctl.registry import PromptRepo
from promptctl.runtime.httpsource import HttpSource, Poller, registry_url

SIC = "support_intent_classifier"


def move(repo, version: str, channel: str = "production"):
    ChannelStore(PromptRepo.open(repo)).promote(SIC, version, channel, reason="test")


def published_site(repo, tmp_path, aged: bool = True):
    site = tmp_path / "site"
    publish(repo, ["production"], site / "production")
    if aged:
        age(site / "production" / "manifest.json")
    return site


def wait_until(check, timeout: float = 5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def site(runtime_repo, tmp_path):
    return published_site(runtime_repo, tmp_path)


@pytest.fixture
def origin(site):
    server = Origin(site)
    yield server
    server.stop()


def test_registry_url_normalisation():
    assert registry_url("http://h:1/production") == "http://h:1/production/"
    assert registry_url("https://h/production/manifest.json") == "https://h/production/"
    assert registry_url("http://h") == "http://h/"


def test_same_api_and_attributes_as_a_repository_plus_published_at(runtime_repo, origin, tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    promptctl.instrument(provider)
    manifest = json.loads((origin.directory / "production" / "manifest.json").read_text())
    local = promptctl.Registry(runtime_repo, channel="production")
    with promptctl.Registry(origin.url + "production", ttl=5.0) as remote:
        tracer = provider.get_tracer("t")
        for registry in (local, remote):
            with tracer.start_as_current_span("req"):
                prompt = registry.get(SIC, locale="de")
                with prompt.use(), tracer.start_as_current_span("child"):
                    pass
        assert remote.get(SIC).render(message="hi") == local.get(SIC).render(message="hi")
    child_local, span_local, child_remote, span_remote = [dict(s.attributes) for s in exporter.get_finished_spans()]
    assert span_remote.pop("prompt.published_at") == manifest["published_at"]
    assert child_remote.pop("prompt.published_at") == manifest["published_at"]
    assert span_remote == span_local and child_remote == child_local
    assert span_local["prompt.version"] == "v1" and span_local["prompt.channel"] == "production"


def test_polls_are_conditional_and_unchanged_costs_a_304(origin):
    with promptctl.Registry(origin.url + "production/", ttl=0.2) as registry:
        registry.get(SIC)
        wait_until(lambda: len(origin.paths("manifest.json")) >= 4)
    manifests = origin.paths("manifest.json")
    assert manifests[0] == ("/production/manifest.json", 200, False)
    assert all(status == 304 and conditional for _, status, conditional in manifests[1:])


def test_etag_origin_gets_if_none_match(site):
    server = Origin(site, etags=True, keep_alive=True)
    try:
        source = HttpSource(server.url + "production/", ttl=60)
        assert source.poll() is True
        assert source.poll() is False
        assert source.poll() is False
        assert server.paths("manifest") == [
            ("/production/manifest.json", 200, False),
            ("/production/manifest.json", 304, True),
            ("/production/manifest.json", 304, True),
        ]
        source.close()
    finally:
        server.stop()


def test_a_manifest_replaced_within_the_same_second_is_not_missed(runtime_repo, tmp_path):
    """http.server's Last-Modified has 1 s resolution: a fresh one is not used as a validator."""
    site = published_site(runtime_repo, tmp_path, aged=False)
    manifest = site / "production" / "manifest.json"
    server = Origin(site)
    try:
        source = HttpSource(server.url + "production/", ttl=60)
        source.poll()
        stamp = manifest.stat().st_mtime
        move(runtime_repo, "v2")
        publish(runtime_repo, ["production"], site / "production")
        import os

        os.utime(manifest, (stamp, stamp))  # same second, same Last-Modified
        assert source.poll() is True
        assert source.channel_state(SIC, "production").serves[0].version == "v2"
        source.close()
    finally:
        server.stop()


def test_promotion_is_served_after_the_ttl_and_only_missing_objects_are_fetched(runtime_repo, origin):
    with promptctl.Registry(origin.url + "production/", ttl=0.2) as registry:
        assert registry.get(SIC).version == "v1"
        move(runtime_repo, "v2")
        publish(runtime_repo, ["production"], origin.directory / "production")
        wait_until(lambda: registry.get(SIC).version == "v2")
        move(runtime_repo, "v1")  # a rollback, published: v1's object is not fetched again
        publish(runtime_repo, ["production"], origin.directory / "production")
        wait_until(lambda: registry.get(SIC).version == "v1")
        objects = [path for path, status, _ in origin.paths("/objects/")]
    assert len(objects) == len(set(objects)) == 2


def test_jitter_spreads_polls():
    poller = Poller("x", lambda: None, 5.0)
    delays = [poller.delay() for _ in range(200)]
    assert all(4.0 <= d <= 5.0 for d in delays) and max(delays) - min(delays) > 0.5
    poller.failures = 3
    assert all(d <= 20.0 for d in (poller.delay() for _ in range(50)))  # backing off, capped
    poller.failures = 30
    assert all(d <= 40.0 for d in (poller.delay() for _ in range(50)))


def test_tampered_object_is_never_served_and_reported_once(runtime_repo, origin, caplog):
    caplog.set_level(logging.WARNING, logger="promptctl")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with promptctl.Registry(origin.url + "production/", ttl=0.1) as registry:
        assert registry.get(SIC).version == "v1"
        move(runtime_repo, "v2")
        publish(runtime_repo, ["production"], origin.directory / "production")
        manifest = json.loads((origin.directory / "production" / "manifest.json").read_text())
        v2 = origin.directory / "production" / "objects" / f"{manifest['prompts'][SIC]['versions']['v2']}.json"
        v2.write_bytes(v2.read_bytes().replace(b"VERSION TWO", b"VERSION EVIL"))
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            with tracer.start_as_current_span("req"):
                prompt = registry.get(SIC)
            assert prompt.version == "v1" and "EVIL" not in prompt.template_source
            time.sleep(0.02)
        assert exporter.get_finished_spans()[-1].attributes["prompt.stale"] is True
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and "never served" in r.getMessage()]
        assert len(errors) == 1 and v2.name in errors[0].getMessage()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "hashes to" in warnings[0].getMessage()
        publish(runtime_repo, ["production"], origin.directory / "production")  # repairs the object store
        assert hashlib.sha256(v2.read_bytes()).hexdigest() in v2.name
        wait_until(lambda: registry.get(SIC).version == "v2", timeout=6.0)
        assert registry.get(SIC).stale is False


@pytest.mark.parametrize("trouble", ["500", "down", "truncated"])
def test_origin_trouble_keeps_the_last_good_version_stale_with_one_warning(runtime_repo, origin, caplog, trouble):
    caplog.set_level(logging.INFO, logger="promptctl")
    manifest = origin.directory / "production" / "manifest.json"
    good = manifest.read_bytes()
    with promptctl.Registry(origin.url + "production/", ttl=0.1) as registry:
        assert registry.get(SIC).stale is False
        if trouble == "500":
            origin.mode = "500"
        elif trouble == "down":
            origin.stop()
        else:
            manifest.write_bytes(good[: len(good) // 2])
        wait_until(lambda: registry.get(SIC).stale)
        for _ in range(20):
            prompt = registry.get(SIC)
            assert prompt.version == "v1" and prompt.stale
            time.sleep(0.02)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        cause = {"500": "HTTP 500", "down": "Connection refused", "truncated": "truncated or not valid JSON"}[trouble]
        assert cause in warnings[0] and "serving the last good version v1" in warnings[0]
        origin.mode = "ok"
        if trouble == "down":
            origin.start()
        manifest.write_bytes(good)
        wait_until(lambda: not registry.get(SIC).stale, timeout=6.0)
        assert any("readable again" in r.getMessage() for r in caplog.records)


def test_cold_start_with_the_origin_down(runtime_repo, tmp_path):
    site = published_site(runtime_repo, tmp_path)
    server = Origin(site)
    url = server.url + "production/"
    server.stop()
    with pytest.raises(Unreachable, match="Connection refused"):
        promptctl.Registry(url).get(SIC)
    fallback = promptctl.Registry(url).get(SIC, fallback="Label: {{ message }}")
    assert fallback.code_fallback and fallback.render(message="x") == "Label: x"
    # a bundled export as a second source: served at once, and the origin takes over when it is back
    with promptctl.Registry(url, ttl=0.1, fallback_source=site / "production") as registry:
        first = registry.get(SIC)
        assert first.version == "v1" and first.published_at is None
        server.start()
        wait_until(lambda: registry.get(SIC).published_at is not None, timeout=6.0)
    server.stop()


def test_not_a_published_registry_and_unknown_format(runtime_repo, site, origin):
    with pytest.raises(NoRegistry, match="not a published promptctl registry"):
        promptctl.Registry(origin.url + "elsewhere/").get(SIC)
    (site / "html").mkdir()
    (site / "html" / "manifest.json").write_text("<html>hello</html>")
    with pytest.raises(NoRegistry, match="not JSON"):
        promptctl.Registry(origin.url + "html/").get(SIC)
    (site / "future").mkdir()
    (site / "future" / "manifest.json").write_text(json.dumps({"format": "promptctl-export/2", "prompts": {}}))
    with pytest.raises(InvalidContent, match="cannot read"):
        promptctl.Registry(origin.url + "future/").get(SIC)
    for obj in (site / "production" / "objects").iterdir():
        obj.unlink()  # a manifest naming an object the host lost
    with pytest.raises(RegistryUnavailable, match="HTTP 404"):
        HttpSource(origin.url + "production/").load(SIC, "v1")


def test_published_cli_reads_urls_and_verifies_objects(runtime_repo, site, origin):
    from conftest import run_cli

    proc = run_cli(runtime_repo, "published", origin.url + "production", "--json", "--verify")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["prompts"][SIC]["channels"]["production"]["serves"][0]["version"] == "v1"
    assert report["objects_checked"] == report["objects"] >= 1 and report["bad_objects"] == []
    obj = next((site / "production" / "objects").iterdir())
    obj.write_bytes(obj.read_bytes() + b" ")
    proc = run_cli(runtime_repo, "published", origin.url + "production", "--verify")
    assert proc.returncode == 1 and obj.stem in proc.stdout
    proc = run_cli(runtime_repo, "published", origin.url + "nothing/")
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "not a published promptctl registry" in proc.stderr
    (site / "future").mkdir()
    (site / "future" / "manifest.json").write_text(json.dumps({"format": "promptctl-export/9", "prompts": {}}))
    proc = run_cli(runtime_repo, "published", origin.url + "future/")
    assert proc.returncode == 4 and proc.stderr.count("\n") == 1 and "promptctl-export/9" in proc.stderr
    port = origin.port
    origin.stop()
    proc = run_cli(runtime_repo, "published", f"http://127.0.0.1:{port}/production/")
    assert proc.returncode == 7 and proc.stderr.count("\n") == 1 and "Connection refused" in proc.stderr


def test_close_then_use_again_keeps_following(runtime_repo, origin):
    registry = promptctl.Registry(origin.url + "production/", ttl=0.1)
    assert registry.get(SIC).version == "v1"
    registry.close()  # stops the poller thread; using the registry again starts a new one
    move(runtime_repo, "v2")
    publish(runtime_repo, ["production"], origin.directory / "production")
    wait_until(lambda: registry.get(SIC).version == "v2")
    registry.close()

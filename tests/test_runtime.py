# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""The runtime loader: resolution, rendering, TTL, consistency, never going down, errors.

Real Git repositories (``runtime_repo``: v1 everywhere, support_intent_classifier also at v2; channels
current=v1, production=v1, experiment-b=v2), real subprocesses, real OpenTelemetry SDK.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import instrumented_provider, run_cli
from test_runtime_support import promote, promote_in_subprocess, runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl
from promptctl.errors import (
    InputTypeError,
    InvalidVersionSpec,
    MissingVariable,
    RegistryUnavailable,
    UnknownChannel,
    UnknownPrompt,
    UnknownVersion,
)
from promptctl.hashing import template_hash

SIC = "support_intent_classifier"


@pytest.fixture
def spans():
    provider, exporter = instrumented_provider()
    return provider.get_tracer("test"), exporter


def shown(repo, spec: str) -> dict:
    proc = run_cli(repo, "show", spec, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- resolution and rendering ----------------------------------------------------------------------------------


def test_channel_decides_the_version_and_hash_matches_show(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    prompt = registry.get(SIC)
    expected = shown(runtime_repo, f"{SIC}@v1")
    assert (prompt.id, prompt.version, prompt.channel) == (SIC, "v1", "current")
    assert prompt.template_hash_full == expected["template_hash"]
    assert prompt.template_hash == expected["template_hash"][:12]
    assert prompt.model == "gpt-4o-mini" and prompt.model_config["max_tokens"] == 8
    assert not prompt.fallback and not prompt.stale and prompt.variant is None
    assert registry.get(f"{SIC}@experiment-b").version == "v2"
    assert promptctl.Registry(runtime_repo, channel="experiment-b").get(SIC).version == "v2"
    assert registry.get(SIC, channel="production").channel == "production"


def test_render_is_identical_to_the_cli(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    for locale, tier in ((None, None), ("de", "enterprise")):
        prompt = registry.get(SIC, locale=locale, tier=tier)
        args = ["render", f"{SIC}@v1", "--var", "message=Ich will mein Geld zurück", "--json"]
        args += ["--locale", locale] if locale else []
        args += ["--tier", tier] if tier else []
        cli = json.loads(run_cli(runtime_repo, *args).stdout)
        assert prompt.render(message="Ich will mein Geld zurück") == cli["text"]
        assert prompt.body == cli["body"]
    chat = registry.get("support_reply")
    variables = {"customer_name": "Ada", "intent": "refund", "message": "charged twice", "order_facts": ["paid twice"]}
    cli = run_cli(runtime_repo, "render", "support_reply@v1", "--vars-json", _write_json(runtime_repo, variables), "--json")
    assert chat.messages(**variables) == json.loads(cli.stdout)["messages"]
    assert chat.type == "chat" and chat.messages(**variables)[0]["role"] == "system"


def _write_json(repo, data) -> str:
    path = repo.parent / "vars.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_locale_tier_fallback_chain(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    cases = {
        ("de", "enterprise"): ("body.locale-de.tier-enterprise.j2", False),
        ("de", None): ("body.locale-de.j2", False),
        ("de", "free"): ("body.locale-de.j2", True),
        ("fr", "enterprise"): ("body.tier-enterprise.j2", True),
        ("fr", None): ("body.j2", True),
        (None, None): ("body.j2", False),
    }
    for (locale, tier), (body, fallback) in cases.items():
        prompt = registry.get(SIC, locale=locale, tier=tier)
        assert (prompt.body, prompt.fallback, prompt.locale, prompt.tier) == (body, fallback, locale, tier)


def test_pinned_version_ignores_channels(runtime_repo):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    prompt = registry.get(f"{SIC}@v2")
    assert (prompt.version, prompt.channel) == ("v2", None)
    assert "VERSION TWO" in prompt.render(message="x")
    promote(runtime_repo, SIC, "current", "v2")
    assert registry.get(f"{SIC}@v1").version == "v1"


def test_optional_input_gets_its_default(runtime_repo):
    prompt = promptctl.Registry(runtime_repo).get("ticket_summarizer")
    assert "at most 3 bullet points" in prompt.render(thread="late parcel")
    assert "at most 5 bullet points" in prompt.render(thread="late parcel", max_bullets=5)


# -- errors, and the cache is not poisoned ------------------------------------------------------------------------


def test_typed_errors_and_no_poisoned_cache(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    with pytest.raises(UnknownPrompt, match="unknown prompt 'nope'"):
        registry.get("nope")
    with pytest.raises(UnknownVersion, match="no version v9"):
        registry.get(f"{SIC}@v9")
    with pytest.raises(UnknownChannel, match="no channel 'staging'"):
        registry.get(SIC, channel="staging")
    with pytest.raises(InvalidVersionSpec):
        registry.get(f"{SIC}@")
    prompt = registry.get(SIC)
    with pytest.raises(MissingVariable, match="message"):
        prompt.render()
    with pytest.raises(InputTypeError, match="should be string, got int"):
        prompt.render(message=42)
    with pytest.raises(InputTypeError, match="should be integer"):
        registry.get("ticket_summarizer").render(thread="t", max_bullets="three")
    assert "Message: fine" in prompt.render(message="fine")
    # Once the missing things exist, the same registry serves them: no negative caching.
    promote(runtime_repo, SIC, "staging", "v2")
    assert registry.get(SIC, channel="staging").version == "v2"


def test_missing_registry_is_a_typed_error_or_the_code_fallback(tmp_path, caplog):
    registry = promptctl.Registry(tmp_path / "nowhere")
    with pytest.raises(RegistryUnavailable, match="no registry at"):
        registry.get(SIC)
    with caplog.at_level(logging.WARNING, logger="promptctl"):
        prompts = [registry.get(SIC, fallback="Classify: {{ message }}") for _ in range(5)]
    prompt = prompts[0]
    assert prompt.code_fallback and prompt.fallback and prompt.version is None
    assert prompt.render(message="hi") == "Classify: hi"
    assert prompt.template_hash_full == template_hash({"type": "text"}, {"body.j2": "Classify: {{ message }}\n"})
    assert prompt.span_attributes()["prompt.condition.fallback"] is True
    assert "prompt.version" not in prompt.span_attributes()
    assert len([r for r in caplog.records if "in-code fallback" in r.getMessage()]) == 1
    chat = registry.get(SIC, fallback=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ m }}"}])
    assert chat.messages(m="hi") == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_no_registry_configured_is_a_usage_error(monkeypatch):
    from promptctl.errors import UsageError

    with pytest.raises(UsageError, match="PROMPTCTL_REPO"):
        promptctl.Registry()


def test_promptctl_repo_environment_variable(runtime_repo, monkeypatch):
    monkeypatch.setenv("PROMPTCTL_REPO", str(runtime_repo))
    assert promptctl.Registry().get(SIC).version == "v1"


# -- TTL: a promotion elsewhere is seen without a restart ---------------------------------------------------------


def test_promotion_in_a_subprocess_is_seen_within_the_ttl(runtime_repo):
    ttl = 0.5
    registry = promptctl.Registry(runtime_repo, ttl=ttl)
    cached = promptctl.Registry(runtime_repo, ttl=3600)
    assert registry.get(SIC).version == cached.get(SIC).version == "v1"
    moved = run_cli(runtime_repo, "promote", SIC, "v2", "--channel", "current")  # the real CLI, another process
    assert moved.returncode == 0, moved.stderr
    moved_at = time.monotonic()
    while registry.get(SIC).version != "v2":
        assert time.monotonic() - moved_at < ttl + 1.0, "promotion not seen within the TTL"
        time.sleep(0.02)
    assert "VERSION TWO" in registry.get(SIC).render(message="m")
    assert cached.get(SIC).version == "v1"  # within its (long) TTL the cache answers
    promote_in_subprocess(runtime_repo, SIC, "current", "v1:50,v2:50")  # a split, written by the format helper
    time.sleep(ttl)
    assert {registry.get(SIC, key=k).version for k in ("a", "b", "c", "d", "e", "f")} == {"v1", "v2"}


def test_packed_refs_are_read_too(runtime_repo):
    from conftest import git

    git(runtime_repo, "pack-refs", "--all")
    assert not (runtime_repo / ".git/refs/promptctl/channels" / SIC / "current").exists()
    registry = promptctl.Registry(runtime_repo, ttl=0)
    assert registry.get(SIC).version == "v1"
    promote(runtime_repo, SIC, "current", "v2")  # a loose ref again, shadowing the packed one
    assert registry.get(SIC).version == "v2"


def test_rollout_split_is_deterministic_by_key_across_processes(runtime_repo):
    promote(runtime_repo, SIC, "current", "v1:70,v2:30")
    registry = promptctl.Registry(runtime_repo)
    keys = [f"user-{i}" for i in range(400)]
    here = {k: registry.get(SIC, key=k).version for k in keys}
    assert here == {k: registry.get(SIC, key=k).version for k in keys}  # same key, same version
    share = sum(v == "v2" for v in here.values()) / len(keys)
    assert 0.2 < share < 0.4
    code = (
        "import json, sys, promptctl\n"
        f"r = promptctl.Registry({str(runtime_repo)!r})\n"
        f"print(json.dumps({{k: r.get({SIC!r}, key=k).version for k in {keys!r}}}))\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(other.stdout) == here
    from promptctl.runtime.split import bucket

    for key, version in list(here.items())[:50]:  # the documented bucket formula
        assert version == ("v2" if bucket(SIC, "current", key) < 3000 else "v1")
    assert {registry.get(SIC).version for _ in range(200)} == {"v1", "v2"}  # no key: random per call


def test_variant_maps_to_a_channel_from_the_config(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    treated = registry.get(SIC, variant="treatment")
    assert (treated.version, treated.channel, treated.variant) == ("v2", "experiment-b", "treatment")
    control = registry.get(SIC, variant="control")  # not mapped: the usual channel, label recorded
    assert (control.version, control.channel, control.variant) == ("v1", "current", "control")
    other = registry.get("ticket_summarizer", variant="treatment")  # no experiment-b channel: the usual one
    assert (other.version, other.channel, other.variant) == ("v1", "current", "treatment")
    assert treated.span_attributes()["prompt.variant"] == "treatment"


# -- consistency: content always from objects at the resolved version ----------------------------------------------


def test_served_body_always_hashes_to_the_reported_hash_under_concurrent_moves(runtime_repo):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def mover():
        i = 0
        try:
            while not stop.is_set():
                promote(runtime_repo, SIC, "current", ("v2", "v1", "v1:50,v2:50")[i % 3])
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def editor():  # the working tree changes all the time; it must never be served
        body = runtime_repo / "prompts" / SIC / "body.j2"
        while not stop.is_set():
            body.write_text("WORKING TREE {{ message }}\n")
            time.sleep(0.001)

    threads = [threading.Thread(target=mover), threading.Thread(target=editor)]
    for thread in threads:
        thread.start()
    process = subprocess.Popen(
        [sys.executable, "-c", _MOVER_LOOP.format(repo=str(runtime_repo), sic=SIC)], cwd=os.path.dirname(__file__)
    )
    seen = set()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            prompt = registry.get(SIC, key=str(time.monotonic()))
            d = prompt.definition
            assert template_hash(d.meta, d.files) == prompt.template_hash_full
            text = prompt.render(message="m")
            assert ("VERSION TWO" in text) == (prompt.version == "v2")
            assert "WORKING TREE" not in text
            seen.add(prompt.version)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        process.kill()
        process.wait()
    assert not errors or all(type(e).__name__ == "Conflict" for e in errors)
    assert seen == {"v1", "v2"}


_MOVER_LOOP = """
import sys
sys.path.insert(0, ".")
from pathlib import Path
from test_runtime_support import promote
from promptctl.errors import Conflict
i = 0
while True:
    try:
        promote(Path({repo!r}), {sic!r}, "current", ("v1", "v2")[i % 2])
    except Conflict:
        pass
    i += 1
"""


# -- never take the application down ---------------------------------------------------------------------------


def test_garbage_ref_keeps_serving_last_good_with_one_warning(runtime_repo, spans, caplog):
    tracer, exporter = spans
    registry = promptctl.Registry(runtime_repo, ttl=0)
    assert registry.get(SIC).version == "v1"
    ref = runtime_repo / ".git/refs/promptctl/channels" / SIC / "current"
    good = ref.read_text()
    ref.write_text("this is not an object id\n")
    with caplog.at_level(logging.WARNING, logger="promptctl"):
        for _ in range(20):
            with tracer.start_as_current_span("request"):
                prompt = registry.get(SIC)
        assert (prompt.version, prompt.stale) == ("v1", True)
        assert prompt.render(message="still works")
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], input=b"junk", cwd=runtime_repo, capture_output=True
        ).stdout.decode().strip()
        ref.write_text(blob + "\n")  # a real object, but not a state commit
        for _ in range(5):
            assert registry.get(SIC).stale
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "last good version v1" in warnings[0].getMessage()
    assert exporter.get_finished_spans()[-1].attributes["prompt.stale"] is True
    ref.write_text(good)
    prompt = registry.get(SIC)
    assert not prompt.stale and "prompt.stale" not in prompt.span_attributes()


def test_unreadable_repository_keeps_serving(runtime_repo, caplog):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    assert registry.get(SIC, locale="de").version == "v1"
    os.rename(runtime_repo / ".git", runtime_repo / ".git-moved")
    try:
        with caplog.at_level(logging.WARNING, logger="promptctl"):
            prompts = [registry.get(SIC, locale="de") for _ in range(10)]
        assert all(p.stale and p.version == "v1" for p in prompts)
        assert prompts[-1].render(message="m").startswith("Du ordnest")
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    finally:
        os.rename(runtime_repo / ".git-moved", runtime_repo / ".git")
    assert not registry.get(SIC, locale="de").stale


def test_promotion_to_a_version_whose_hash_does_not_match_is_refused(runtime_repo):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    assert registry.get(SIC).version == "v1"
    from promptctl import gitstore
    from promptctl.spec import channel_ref

    ref = channel_ref(SIC, "current")
    old = gitstore.rev_parse(runtime_repo, ref)
    message = (
        "promote x\n\nPromptctl-Action: promote\nPromptctl-Prompt: support_intent_classifier\n"
        "Promptctl-Channel: current\nPromptctl-From: v1\nPromptctl-To: v2\nPromptctl-Serves: v2:100\n"
        f"Promptctl-Serves-Hash: v2={'0' * 64}\n"
    )
    commit = gitstore.commit_tree(runtime_repo, gitstore.EMPTY_TREE, [old], message)
    gitstore.update_ref(runtime_repo, ref, commit, old, "bad move")
    prompt = registry.get(SIC)
    assert (prompt.version, prompt.stale) == ("v1", True)


def test_threads_share_one_registry(runtime_repo):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    results: list[str] = []

    def work():
        for _ in range(50):
            prompt = registry.get(SIC, locale="de")
            results.append(prompt.render(message="m"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200 and len(set(results)) == 1


def test_close_then_use_again(runtime_repo):
    with promptctl.Registry(runtime_repo, ttl=0) as registry:
        assert registry.get(SIC).version == "v1"
    promote(runtime_repo, SIC, "current", "v2")
    assert registry.get(SIC).version == "v2"  # the cat-file process restarts on demand
    registry.close()


# -- import cost -------------------------------------------------------------------------------------------------


def test_import_is_light_and_jinja2_loads_on_first_compile(runtime_repo):
    code = (
        "import sys, promptctl\n"
        "heavy = ('typer', 'rich', 'git', 'duckdb', 'jinja2', 'yaml', 'opentelemetry.sdk')\n"
        "import json\n"
        "a = [m for m in heavy if m in sys.modules]\n"
        "r = promptctl.Registry(sys.argv[1])\n"
        "b = [m for m in heavy if m in sys.modules]\n"
        "p = r.get('support_intent_classifier')\n"
        "c = [m for m in heavy if m in sys.modules]\n"
        "print(json.dumps([a, b, c]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(runtime_repo)], capture_output=True, text=True, check=True)
    after_import, after_registry, after_get = json.loads(proc.stdout)
    assert after_import == [] and after_registry == []
    assert "jinja2" in after_get and not {"typer", "rich", "git", "duckdb"} & set(after_get)


def test_a_forked_child_gets_its_own_object_reader(runtime_repo):
    registry = promptctl.Registry(runtime_repo)
    assert registry.get(SIC).version == "v1"  # the cat-file process is running now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child (gunicorn --preload style): loads through its own reader
        try:
            os.write(write_end, registry.get(f"{SIC}@v2").render(message="child").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parent_text = registry.get(f"{SIC}@v2").render(message="parent")
    with os.fdopen(read_end) as reader:
        child_text = reader.read()
    os.waitpid(pid, 0)
    assert "VERSION TWO" in parent_text and "VERSION TWO" in child_text and "child" in child_text


def test_variant_without_its_channel_with_ttl_zero(runtime_repo):
    registry = promptctl.Registry(runtime_repo, ttl=0)
    for _ in range(3):
        prompt = registry.get("ticket_summarizer", variant="treatment")
        assert (prompt.version, prompt.channel) == ("v1", "current")
    promote(runtime_repo, "ticket_summarizer", "experiment-b", "v1")  # the experiment starts: seen at once
    assert registry.get("ticket_summarizer", variant="treatment").channel == "experiment-b"


def test_deleted_channel_ref_keeps_serving_stale(runtime_repo):
    from conftest import git

    registry = promptctl.Registry(runtime_repo, ttl=0)
    assert registry.get(SIC, channel="production").version == "v1"
    git(runtime_repo, "update-ref", "-d", f"refs/promptctl/channels/{SIC}/production")
    prompt = registry.get(SIC, channel="production")
    assert (prompt.version, prompt.stale) == ("v1", True)
    with pytest.raises(UnknownChannel):  # a registry that never served it gets the typed error
        promptctl.Registry(runtime_repo).get(SIC, channel="production")

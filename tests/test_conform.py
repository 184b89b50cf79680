"""promptctl conform: spans written by the real OpenTelemetry SDK (through promptctl's runtime loader and the
OTLP/JSON file exporter, with controlled start times) checked against real repositories' audit logs."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import EXAMPLES, GIT_IDENTITY, git, init_git_repo, run_cli
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import promptctl
from promptctl.channels import ChannelStore
from promptctl.provenance.conform import conform, parse_duration
from promptctl.registry import PromptRepo
from promptctl.spans.otlp_json import OtlpJsonFileExporter

PID = "support_intent_classifier"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)  # production: v1
T1 = T0 + timedelta(hours=1)  # production: v2 (scenario A) / v1:90,v2:10 (scenario B)
T2 = T0 + timedelta(hours=2)  # scenario B: v2
T3 = T0 + timedelta(hours=3)  # scenario B: rollback to v1


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


class SpanWriter:
    """A process's tracing: an SDK TracerProvider with promptctl's processor and the OTLP/JSON file exporter."""

    def __init__(self, path: Path, service: str = "support-api"):
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        promptctl.instrument(self.provider)
        self.provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(path)))
        self.tracer = self.provider.get_tracer("support-api")

    def _span(self, at: datetime, attributes: dict | None = None) -> str:
        span = self.tracer.start_span("chat gpt-4o-mini", start_time=ns(at), attributes=attributes)
        span.end(end_time=ns(at) + 250_000_000)
        return format(span.get_span_context().span_id, "016x")

    def served(self, prompt, at: datetime) -> str:
        """A span started while ``prompt`` is in use (the runtime tags it); returns its span id."""
        with prompt.use():
            return self._span(at)

    def raw(self, at: datetime, **attributes) -> str:
        """A span whose prompt attributes a process set by hand (a hand-patched container)."""
        return self._span(at, {f"prompt.{k}": v for k, v in attributes.items()})

    def close(self) -> None:
        self.provider.shutdown()


def _fresh_repo(base: Path) -> Path:
    """The example registry at v1 with a v2 of PID: what ``versioned_repo`` + one release gives, built once."""
    repo = init_git_repo(base / "repo")
    shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add prompts")
    assert run_cli(repo, "commit", "--all", "-m", "first release").returncode == 0
    _release(repo, "If unsure, answer other.", "unsure -> other")
    return repo


@pytest.fixture(scope="module")
def module_env():
    """Git identity for in-process moves in module-scoped fixtures (the autouse fixture is per test)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_IDENTITY.items():
            mp.setenv(key, value)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield mp


def _move_at(monkeypatch, moment: datetime) -> None:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setenv("GIT_AUTHOR_DATE", stamp)
    monkeypatch.setenv("GIT_COMMITTER_DATE", stamp)


def _release(repo: Path, line: str, message: str) -> None:
    body = repo / "prompts" / PID / "body.j2"
    body.write_text(body.read_text() + f"\n{line}\n")
    proc = run_cli(repo, "commit", PID, "-m", message)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def two_versions(versioned_repo):
    _release(versioned_repo, "If unsure, answer other.", "unsure -> other")
    return versioned_repo


@pytest.fixture(scope="module")
def scenario_a(tmp_path_factory, module_env):
    """production: v1 at T0, v2 at T1. A refreshing process and one whose cache never refreshes.

    Built once for the module: tests read it and never change the repository or the span file."""
    monkeypatch = module_env
    tmp_path = tmp_path_factory.mktemp("scenario_a")
    repo = _fresh_repo(tmp_path)
    store = ChannelStore(PromptRepo.open(repo))
    _move_at(monkeypatch, T0)
    store.promote(PID, "v1", channel="production", reason="first release")
    spans = tmp_path / "traces" / "app.jsonl"
    out = SpanWriter(spans)
    fresh = promptctl.Registry(repo, ttl=0)
    forever = promptctl.Registry(repo, ttl=10**9)  # the cache that never refreshes
    ids: dict[str, object] = {}
    v1 = fresh.get(PID, channel="production")
    assert v1.version == "v1" and forever.get(PID, channel="production").version == "v1"
    ids["ok_v1"] = out.served(v1, T0 + timedelta(minutes=10))
    ids["unserved_early"] = out.served(v1, T0 - timedelta(hours=1))  # before production's first move

    _move_at(monkeypatch, T1)
    store.promote(PID, "v2", channel="production", reason="unsure -> other")
    v2 = fresh.get(PID, channel="production")
    old = forever.get(PID, channel="production")
    assert v2.version == "v2" and old.version == "v1"
    ids["ok_v2"] = out.served(v2, T1 + timedelta(seconds=1))
    ids["grace_inside"] = out.served(old, T1 + timedelta(seconds=4))
    ids["grace_edge"] = out.served(old, T1 + timedelta(seconds=5))
    ids["grace_outside"] = out.served(old, T1 + timedelta(seconds=5, milliseconds=1))
    ids["stale_late"] = out.served(old, T1 + timedelta(minutes=30))
    ids["pinned"] = out.served(fresh.get(f"{PID}@v1"), T1 + timedelta(minutes=10))
    ids["patched"] = out.raw(T1 + timedelta(minutes=11), id=PID, version="v2", template_hash="0123456789ab", channel="production")
    ids["no_prompt"] = out._span(T1 + timedelta(minutes=12), {"http.route": "/classify"})
    out.close()
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    return repo, spans, ids, (v1.template_hash, v2.template_hash)


def _conform_json(repo: Path, *args: str) -> tuple[int, dict]:
    proc = run_cli(repo, "conform", *args, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _finding(data: dict, kind: str, version: str | None = None) -> dict:
    [found] = [f for f in data["findings"] if f["kind"] == kind and (version is None or f["version"] == version)]
    return found


def test_every_finding_kind_once(scenario_a):
    repo, spans, ids, (h1, h2) = scenario_a
    code, data = _conform_json(repo, "--spans", str(spans))
    assert code == 1
    assert data["spans"] == 10 and data["grace_seconds"] == 5.0
    assert data["counts"] == {"ok": 5, "stale": 2, "unregistered": 1, "unserved": 1, "no_prompt": 1}
    rows = {(r["channel"], r["version"]): r for r in data["rows"]}
    assert rows[("production", "v1")] | {} == {
        "id": PID, "channel": "production", "version": "v1", "spans": 6, "ok": 3, "stale": 2, "unregistered": 0, "unserved": 1,
    }  # fmt: skip
    assert rows[("production", "v2")]["ok"] == 1 and rows[("production", "v2")]["unregistered"] == 1
    assert rows[(None, "v1")]["ok"] == 1  # pinned in code: only its content is checked

    stale = _finding(data, "stale")
    assert stale["version"] == "v1" and stale["template_hash"] == h1 and stale["count"] == 2
    assert [e["span_id"] for e in stale["examples"]] == [ids["grace_outside"], ids["stale_late"]]
    assert "promote v1 -> v2 at 2026-11-20T11:00:00+00:00 by Test Author <author@example.com>: unsure -> other" in stale["detail"]
    assert stale["examples"][0]["start_time"] == "2026-11-20T11:00:05.001000Z"
    assert stale["examples"][0]["file"] == str(spans) and stale["examples"][0]["line"] >= 1

    patched = _finding(data, "unregistered")
    assert patched["version"] == "v2" and patched["template_hash"] == "0123456789ab"
    assert [e["span_id"] for e in patched["examples"]] == [ids["patched"]]
    assert f"{PID}/v2 records {h2}, the span served 0123456789ab" in patched["detail"]

    early = _finding(data, "unserved")
    assert [e["span_id"] for e in early["examples"]] == [ids["unserved_early"]]
    assert "did not serve v1 yet" in early["detail"]
    assert data["no_prompt"]["count"] == 1 and data["no_prompt"]["examples"][0]["span_id"] == ids["no_prompt"]


def test_table_output_names_each_finding_with_example_spans(scenario_a):
    repo, spans, ids, _ = scenario_a
    proc = run_cli(repo, "conform", "--spans", str(spans))
    assert proc.returncode == 1
    out = proc.stdout
    assert "10 spans in 1 file, grace 5s" in out
    for word in ("STALE", "UNREGISTERED", "UNSERVED", "no prompt attributes: 1 span"):
        assert word in out
    for key in ("grace_outside", "stale_late", "patched", "unserved_early", "no_prompt"):
        assert ids[key] in out
    assert "does not conform: 2 stale, 1 unregistered, 1 unserved" in out


def test_grace_window_edges(scenario_a):
    repo, spans, ids, _ = scenario_a
    r = PromptRepo.open(repo)

    def stale_ids(grace: float) -> set[str]:
        report = conform(r, [str(spans)], grace_seconds=grace)
        return {e.span_id for f in report.findings if f.kind == "stale" for e in f.examples}

    # default 5s: 4s and exactly 5s after the move are ok, 5.001s is stale
    assert stale_ids(5.0) == {ids["grace_outside"], ids["stale_late"]}
    assert stale_ids(4.0) == {ids["grace_edge"], ids["grace_outside"], ids["stale_late"]}
    # no grace: the old version is stale from the move on (up to three examples per finding, oldest first)
    assert stale_ids(0.0) == {ids["grace_inside"], ids["grace_edge"], ids["grace_outside"]}
    assert conform(r, [str(spans)], grace_seconds=0.0).count("stale") == 4
    assert stale_ids(3600.0) == set()  # the 30-minute straggler is within an hour's grace
    code, data = _conform_json(repo, str(spans), "--grace", "5001ms")
    assert data["counts"]["stale"] == 1 and code == 1


def test_a_conforming_file_exits_0(two_versions, tmp_path, monkeypatch):
    store = ChannelStore(PromptRepo.open(two_versions))
    _move_at(monkeypatch, T0)
    store.promote(PID, "v1", channel="production", reason="first release")
    spans = tmp_path / "ok.jsonl"
    out = SpanWriter(spans)
    reg = promptctl.Registry(two_versions, ttl=0)
    for minute in range(3):
        out.served(reg.get(PID, channel="production"), T0 + timedelta(minutes=minute))
    out._span(T0, {"http.route": "/health"})
    out.close()
    proc = run_cli(two_versions, "conform", "--spans", str(spans))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conforms" in proc.stdout and "no prompt attributes: 1 span" in proc.stdout


@pytest.fixture(scope="module")
def scenario_b(tmp_path_factory, module_env):
    """production: v1 at T0, canary v1:90,v2:10 at T1, v2 at T2, rollback to v1 at T3 (built once, read only)."""
    monkeypatch = module_env
    tmp_path = tmp_path_factory.mktemp("scenario_b")
    repo = _fresh_repo(tmp_path)
    store = ChannelStore(PromptRepo.open(repo))
    spans = tmp_path / "rollout.jsonl"
    out = SpanWriter(spans)
    fresh = promptctl.Registry(repo, ttl=0)
    ids: dict[str, str] = {}
    _move_at(monkeypatch, T0)
    store.promote(PID, "v1", channel="production", reason="first release")
    ids["v1_before_canary"] = out.served(fresh.get(PID, channel="production"), T0 + timedelta(minutes=5))

    _move_at(monkeypatch, T1)
    store.promote(PID, "v2", channel="production", percent=10, reason="canary")
    sides: dict[str, object] = {}
    for n in range(400):
        prompt = fresh.get(PID, channel="production", key=f"user-{n}")
        sides.setdefault(prompt.version, prompt)
        if len(sides) == 2:
            break
    assert set(sides) == {"v1", "v2"}
    ids["canary_base"] = out.served(sides["v1"], T1 + timedelta(minutes=10))
    ids["canary_new"] = out.served(sides["v2"], T1 + timedelta(minutes=10))

    _move_at(monkeypatch, T2)
    store.promote(PID, "v2", channel="production", reason="canary healthy")
    v2_cached = promptctl.Registry(repo, ttl=10**9)
    v2 = v2_cached.get(PID, channel="production")
    assert v2.version == "v2"
    ids["v2_full"] = out.served(v2, T2 + timedelta(minutes=10))
    ids["v1_after_full"] = out.served(sides["v1"], T2 + timedelta(minutes=10))  # stale

    _move_at(monkeypatch, T3)
    store.rollback(PID, channel="production", reason="v2 misroutes refunds")
    back = fresh.get(PID, channel="production")
    assert back.version == "v1"
    ids["v1_after_rollback"] = out.served(back, T3 + timedelta(minutes=10))
    ids["v2_in_grace"] = out.served(v2_cached.get(PID, channel="production"), T3 + timedelta(seconds=2))
    ids["v2_after_rollback"] = out.served(v2_cached.get(PID, channel="production"), T3 + timedelta(minutes=10))
    out.close()
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    return repo, spans, ids


def test_rollout_either_side_is_ok_and_rollback_makes_the_old_version_ok_again(scenario_b):
    repo, spans, ids = scenario_b
    report = conform(PromptRepo.open(repo), [str(spans)])
    stale = {f.version: {e.span_id for e in f.examples} for f in report.findings if f.kind == "stale"}
    assert stale == {"v1": {ids["v1_after_full"]}, "v2": {ids["v2_after_rollback"]}}
    assert {f.kind for f in report.findings} == {"stale"}
    rows = {r.version: r.counts for r in report.rows}
    assert rows["v1"] == {"ok": 3, "stale": 1}  # before the canary, its base, and after the rollback
    assert rows["v2"] == {"ok": 3, "stale": 1}  # the canary side, in full, and in the rollback's grace
    details = {f.version: f.detail for f in report.findings}
    assert "promote v1:90,v2:10 -> v2 at 2026-11-20T12:00:00+00:00" in details["v1"]
    assert "rollback v2 -> v1 at 2026-11-20T13:00:00+00:00" in details["v2"] and "v2 misroutes refunds" in details["v2"]


def test_fresh_clone_after_push_and_pull_gives_the_same_answers(scenario_b, tmp_path):
    original, spans, _ = scenario_b
    repo = tmp_path / "origin-repo"
    shutil.copytree(original, repo)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    assert run_cli(repo, "push").returncode == 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    before = _conform_json(clone, "--spans", str(spans))
    assert before[1]["counts"]["ok"] == 0  # the clone has no tags or channels before pull
    pulled = run_cli(clone, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert _conform_json(clone, "--spans", str(spans)) == _conform_json(repo, "--spans", str(spans))


def test_repo_where_no_channel_moved_says_so_and_flags_channel_spans(two_versions, tmp_path):
    spans = tmp_path / "s.jsonl"
    out = SpanWriter(spans)
    reg = promptctl.Registry(two_versions, ttl=0)
    out.served(reg.get(f"{PID}@v1"), T0)  # pinned: fine without channels
    out.raw(T0, id=PID, version="v1", template_hash=reg.get(f"{PID}@v1").template_hash, channel="production")
    out.close()
    proc = run_cli(two_versions, "conform", str(spans), "--json")
    assert proc.returncode == 1
    assert "no channel has moved yet in this repository" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["counts"]["ok"] == 1 and data["counts"]["unserved"] == 1 and data["channels_moved"] is False
    assert "has never moved" in _finding(data, "unserved")["detail"]


def test_unknown_version_and_unknown_prompt_are_unregistered(scenario_a, tmp_path):
    repo, _, _, (h1, _) = scenario_a
    spans = tmp_path / "odd.jsonl"
    out = SpanWriter(spans)
    out.raw(T1, id=PID, version="v9", template_hash=h1, channel="production")
    out.raw(T1, id="ghost_prompt", version="v1", template_hash="aaaaaaaaaaaa", channel="production")
    out.raw(T1, id=PID, version="v1", channel="production")  # no hash at all
    out.close()
    code, data = _conform_json(repo, str(spans))
    assert code == 1 and data["counts"]["unregistered"] == 3
    details = {(f["id"], f["version"]): f["detail"] for f in data["findings"]}
    assert details[(PID, "v9")] == f"{PID} has no version v9 (that content is {PID}/v1)"
    assert details[("ghost_prompt", "v1")] == "the registry has no released prompt 'ghost_prompt'"
    assert details[(PID, "v1")] == "the span carries no prompt.template_hash"


def test_parse_duration():
    assert parse_duration("5s") == 5 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("1h") == 3600 and parse_duration("30") == 30 and parse_duration("1.5s") == 1.5


def test_bad_arguments_exit_2_and_change_nothing(scenario_a):
    repo, spans, _, _ = scenario_a
    before = git(repo, "for-each-ref")
    bad = run_cli(repo, "conform", str(spans), "--grace", "soon")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "promptctl: error: invalid duration 'soon': use seconds or a unit, e.g. 5s, 500ms, 2m, 1h\n"
    none = run_cli(repo, "conform")
    assert none.returncode == 2 and "no span files" in none.stderr and len(none.stderr.splitlines()) == 1
    assert git(repo, "for-each-ref") == before


def test_malformed_lines_are_named_counted_and_skipped_or_fail_with_strict(scenario_a, tmp_path):
    repo, original, _, _ = scenario_a
    spans = tmp_path / "app.jsonl"
    shutil.copy(original, spans)
    good_lines = spans.read_text().count("\n")
    with spans.open("a") as handle:
        handle.write("{not json\n")
        handle.write('{"hello": "world"}\n')
    code, data = _conform_json(repo, "--spans", str(spans))
    assert code == 1 and data["spans"] == 10 and data["malformed_lines"] == 2
    assert [(m["line"], m["reason"]) for m in data["malformed"]] == [
        (good_lines + 1, "not valid JSON"),
        (good_lines + 2, "not an OTLP trace export request (no resourceSpans array)"),
    ]
    proc = run_cli(repo, "conform", "--spans", str(spans))
    assert f"skipped malformed span line {spans}:{good_lines + 1}: not valid JSON" in proc.stderr
    assert "skipped 2 malformed span lines; --strict fails instead" in proc.stderr

    strict = run_cli(repo, "conform", "--spans", str(spans), "--strict")
    assert strict.returncode == 4 and strict.stdout == ""
    assert strict.stderr == f"promptctl: error: {spans}:{good_lines + 1}: not valid JSON (1 more malformed line)\n"


def test_globs_and_several_files(scenario_a, tmp_path):
    repo, original, _, _ = scenario_a
    spans = tmp_path / "traces" / "app.jsonl"
    spans.parent.mkdir()
    shutil.copy(original, spans)
    second = spans.parent / "more.jsonl"
    out = SpanWriter(second)
    out._span(T1, {"http.route": "/healthz"})
    out.close()
    quoted = _conform_json(repo, "--spans", str(spans.parent / "*.jsonl"))[1]  # a glob promptctl expands
    listed = _conform_json(repo, "--spans", str(spans), str(second))[1]  # a glob the shell expanded
    assert quoted["spans"] == listed["spans"] == 11 and quoted["counts"] == listed["counts"]
    assert sorted(quoted["files"]) == sorted([str(spans), str(second)])


def test_missing_span_file_exits_3(scenario_a, tmp_path):
    repo, _, _, _ = scenario_a
    proc = run_cli(repo, "conform", "--spans", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr == f"promptctl: error: span file not found: {tmp_path / 'nope.jsonl'}\n"


def test_stale_spans_the_loader_flagged_are_counted(scenario_a, tmp_path):
    repo, _, _, (h1, _) = scenario_a
    spans = tmp_path / "flagged.jsonl"
    out = SpanWriter(spans)
    out.raw(T1 + timedelta(hours=1), id=PID, version="v1", template_hash=h1, channel="production", stale=True)
    out.raw(T1 + timedelta(hours=2), id=PID, version="v1", template_hash=h1, channel="production")
    out.close()
    [finding] = conform(PromptRepo.open(repo), [str(spans)]).findings
    assert finding.kind == "stale" and finding.count == 2 and finding.loader_stale == 1
    proc = run_cli(repo, "conform", str(spans))
    assert "1 of them carried prompt.stale" in proc.stdout


def test_a_file_with_no_readable_span_is_an_error_not_a_pass(scenario_a, tmp_path):
    """The wrong file (or format) given to a CI job must fail it, not report "conforms" over zero spans."""
    repo, _, _, _ = scenario_a
    before = git(repo, "for-each-ref") + git(repo, "status", "--porcelain")
    wrong = tmp_path / "passwd"
    wrong.write_text("".join(f"user{i}:x:{i}:{i}::/home/user{i}:/bin/sh\n" for i in range(30)))
    proc = run_cli(repo, "conform", "--spans", str(wrong))
    assert proc.returncode == 4 and proc.stdout == ""
    assert proc.stderr == (
        f"promptctl: error: no span could be read from {wrong}: all 30 lines are malformed "
        f"(first: {wrong}:1: not valid JSON); conform reads OTLP/JSON lines (the Collector's file exporter)\n"
    )
    one = tmp_path / "one.jsonl"
    one.write_text('{"hello": "world"}\n')
    proc = run_cli(repo, "conform", str(one), "--json")
    assert proc.returncode == 4 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "its only line is malformed" in proc.stderr
    assert git(repo, "for-each-ref") + git(repo, "status", "--porcelain") == before


def test_many_malformed_lines_name_a_few_and_count_the_rest(scenario_a, tmp_path):
    repo, original, _, _ = scenario_a
    spans = tmp_path / "app.jsonl"
    shutil.copy(original, spans)
    with spans.open("a") as handle:
        handle.write("{not json\n" * 25)
    proc = run_cli(repo, "conform", "--spans", str(spans))
    assert proc.returncode == 1
    notes = proc.stderr.splitlines()
    assert len(notes) == 4 and all(n.startswith("promptctl: skipped malformed span line ") for n in notes[:3])
    assert notes[3] == "promptctl: skipped 25 malformed span lines (22 not named); --strict fails instead"


def test_span_attribute_text_is_never_read_as_markup(two_versions, tmp_path):
    spans = tmp_path / "odd.jsonl"
    out = SpanWriter(spans)
    out._span(T1, {"prompt.id": "[red]x[/red]", "prompt.version": "[bold]v1", "prompt.template_hash": "[/]"})
    out.close()
    proc = run_cli(two_versions, "conform", str(spans))
    assert proc.returncode == 1, proc.stderr
    assert "UNREGISTERED [red]x[/red] [bold]v1 ([/])" in proc.stdout

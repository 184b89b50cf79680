"""promptctl blame --at: a channel's state at a moment, from the audit log, through the real CLI."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from conftest import EXAMPLES, GIT_IDENTITY, git, init_git_repo, run_cli

from promptctl.channels import ChannelStore
from promptctl.errors import UsageError
from promptctl.provenance.blame import blame, parse_moment
from promptctl.registry import PromptRepo

PID = "support_intent_classifier"


def _at(monkeypatch, when: str) -> None:
    """Make the next channel move happen at ``when`` (Git author date of its state commit)."""
    monkeypatch.setenv("GIT_AUTHOR_DATE", when)
    monkeypatch.setenv("GIT_COMMITTER_DATE", when)


def _second_version(repo) -> None:
    body = repo / "prompts" / PID / "body.j2"
    body.write_text(body.read_text() + "\nIf unsure, answer other.\n")
    proc = run_cli(repo, "commit", PID, "-m", "unsure -> other")
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def moved_repo(tmp_path_factory):
    """production: v1 at 10:00, v2 canary 10% at 11:00, v2 in full at 12:00, rolled back to v1 at 13:00;
    current: v1 at 10:30. Built once for the module; tests only read it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in GIT_IDENTITY.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        repo = init_git_repo(tmp_path_factory.mktemp("blame") / "repo")
        shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
        shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "add prompts")
        assert run_cli(repo, "commit", "--all", "-m", "first release").returncode == 0
        _make_moves(repo, monkeypatch)
    return repo


def _make_moves(repo, monkeypatch) -> None:
    versioned_repo = repo
    _second_version(versioned_repo)
    store = ChannelStore(PromptRepo.open(versioned_repo))
    _at(monkeypatch, "2026-11-20T10:00:00Z")
    store.promote(PID, "v1", channel="production", reason="first release")
    _at(monkeypatch, "2026-11-20T10:30:00Z")
    store.promote(PID, "v1")
    _at(monkeypatch, "2026-11-20T11:00:00Z")
    store.promote(PID, "v2", channel="production", percent=10, reason="canary")
    _at(monkeypatch, "2026-11-20T12:00:00Z")
    store.promote(PID, "v2", channel="production", reason="canary healthy")
    _at(monkeypatch, "2026-11-20T13:00:00Z")
    store.rollback(PID, channel="production", reason="v2 misroutes refunds")
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")


def _blame_json(repo, *args):
    proc = run_cli(repo, "blame", PID, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_during_a_rollout_shows_the_split_the_move_its_author_and_reason(moved_repo):
    [state] = _blame_json(moved_repo, "--at", "2026-11-20T11:30:00Z", "--channel", "production")
    assert state["state"] == "serving" and state["channel"] == "production"
    assert [(s["version"], s["percent"]) for s in state["serves"]] == [("v1", 90), ("v2", 10)]
    assert state["serves_text"] == "v1:90,v2:10"
    move = state["move"]
    assert move["action"] == "promote" and move["from"] == "v1" and move["to"] == "v1:90,v2:10"
    assert move["reason"] == "canary" and move["author"] == "Test Author <author@example.com>"
    assert move["at"] == "2026-11-20T11:00:00+00:00"
    assert state["until"] == "2026-11-20T12:00:00+00:00"
    assert all(len(s["template_hash"]) == 64 for s in state["serves"])


def test_a_move_is_in_force_from_its_own_second(moved_repo):
    repo = PromptRepo.open(moved_repo)
    just_before = blame(repo, PID, parse_moment("2026-11-20T11:59:59.999Z"), "production")[0]
    on_time = blame(repo, PID, parse_moment("2026-11-20T12:00:00Z"), "production")[0]
    assert [s.version for s in just_before.serves] == ["v1", "v2"]
    assert [(s.version, s.percent) for s in on_time.serves] == [("v2", 100)]
    assert on_time.move.reason == "canary healthy"


def test_after_a_rollback_and_with_a_zone_offset(moved_repo):
    # 14:30+01:00 is 13:30Z: after the rollback
    [state] = _blame_json(moved_repo, "--at", "2026-11-20T14:30:00+01:00", "--channel", "production")
    assert state["at"] == "2026-11-20T13:30:00Z"
    assert state["serves_text"] == "v1" and state["move"]["action"] == "rollback"
    assert state["move"]["reason"] == "v2 misroutes refunds" and state["until"] is None
    text = run_cli(moved_repo, "blame", PID, "--at", "2026-11-20T14:30:00+01:00", "--channel", "production")
    assert text.returncode == 0
    assert "rollback v2 -> v1" in text.stdout and "v2 misroutes refunds" in text.stdout and "still in force" in text.stdout


def test_without_channel_every_channel_of_the_prompt(moved_repo):
    states = _blame_json(moved_repo, "--at", "2026-11-20T10:45:00Z")
    assert [(s["channel"], s["serves_text"]) for s in states] == [("current", "v1"), ("production", "v1")]


def test_before_the_first_move_says_so(moved_repo):
    states = _blame_json(moved_repo, "--at", "2026-11-20T10:15:00Z")
    by_channel = {s["channel"]: s for s in states}
    assert by_channel["current"]["state"] == "before_first_move"
    assert by_channel["current"]["serves"] == [] and by_channel["current"]["move"] is None
    assert by_channel["current"]["first_move_at"] == "2026-11-20T10:30:00+00:00"
    assert by_channel["production"]["state"] == "serving"
    text = run_cli(moved_repo, "blame", PID, "--at", "2026-11-20T09:00:00Z", "--channel", "production")
    assert text.returncode == 0
    assert "had not moved yet" in text.stdout and "first move was at 2026-11-20T10:00:00+00:00" in text.stdout


def test_relative_moments(versioned_repo, monkeypatch):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store = ChannelStore(PromptRepo.open(versioned_repo))
    _at(monkeypatch, (now - timedelta(hours=5)).isoformat())
    store.promote(PID, "v1", channel="production", reason="five hours ago")
    _second_version(versioned_repo)
    _at(monkeypatch, (now - timedelta(hours=1)).isoformat())
    store.promote(PID, "v2", channel="production", reason="an hour ago")
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    repo = PromptRepo.open(versioned_repo)
    for moment, version in (("3 hours ago", "v1"), ("3h ago", "v1"), ("30 minutes ago", "v2"), ("now", "v2"),
                            ("yesterday", None), ("2 days ago", None)):  # fmt: skip
        [state] = blame(repo, PID, parse_moment(moment), "production")
        assert state.to_json()["serves_text"] == version, moment
    [state] = _blame_json(versioned_repo, "--at", "3 hours ago", "--channel", "production")
    assert state["serves_text"] == "v1" and state["move"]["reason"] == "five hours ago"


def test_parse_moment_forms():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    assert parse_moment("2026-11-20T14:05:00Z") == datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)
    assert parse_moment("2026-11-20 15:05:00 +0100") == datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)
    assert parse_moment("2026-11-20T14:05:00.250Z").microsecond == 250000
    assert parse_moment("3 hours ago", now) == now - timedelta(hours=3)
    assert parse_moment("an hour ago", now) == now - timedelta(hours=1)
    assert parse_moment("2 Days  Ago", now) == now - timedelta(days=2)
    assert parse_moment("1w ago", now) == now - timedelta(weeks=1)
    assert parse_moment("yesterday", now) == now - timedelta(days=1)
    assert parse_moment("@1763640000") == datetime(2025, 11, 20, 12, 0, tzinfo=timezone.utc)
    for bad in ("soon", "", "3 fortnights ago", "2026-11-20T14:05:00", "2026-11-20", "2026-13-40T00:00:00Z", "-3 hours ago"):
        with pytest.raises(UsageError):
            parse_moment(bad, now)


def _refs(repo) -> str:
    return git(repo, "for-each-ref")


def test_unparsable_at_lists_the_accepted_forms_exit_2(moved_repo):
    before = _refs(moved_repo)
    proc = run_cli(moved_repo, "blame", PID, "--at", "last tuesday-ish")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("promptctl: error: cannot read the moment 'last tuesday-ish': use ISO 8601 with a zone")
    assert "3 hours ago" in proc.stderr and "@<unix seconds>" in proc.stderr
    no_zone = run_cli(moved_repo, "blame", PID, "--at", "2026-11-20T14:05:00")
    assert no_zone.returncode == 2 and "it has no zone: add Z or +HH:MM" in no_zone.stderr
    assert _refs(moved_repo) == before


def test_repo_where_no_channel_moved_says_so(versioned_repo):
    before = _refs(versioned_repo)
    proc = run_cli(versioned_repo, "blame", PID, "--at", "now")
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.startswith("promptctl: error: no channel has moved yet in this repository")
    assert len(proc.stderr.splitlines()) == 1
    assert _refs(versioned_repo) == before


def test_unknown_channel_and_unknown_prompt_exit_3(moved_repo):
    before = _refs(moved_repo)
    canary = run_cli(moved_repo, "blame", PID, "--channel", "canary")
    assert canary.returncode == 3
    assert "channel 'canary' of support_intent_classifier has never moved (channels with moves: current, production)" in canary.stderr
    other = run_cli(moved_repo, "blame", "ticket_summarizer")
    assert other.returncode == 3 and "no channel of ticket_summarizer has moved yet" in other.stderr
    unknown = run_cli(moved_repo, "blame", "no_such_prompt")
    assert unknown.returncode == 3 and "unknown prompt 'no_such_prompt'" in unknown.stderr
    bad = run_cli(moved_repo, "blame", "Bad Id")
    assert bad.returncode == 2
    assert _refs(moved_repo) == before


def test_fresh_clone_after_push_and_pull_gives_the_same_answers(moved_repo, tmp_path):
    moved_repo = shutil.copytree(moved_repo, tmp_path / "origin-repo")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(moved_repo, "remote", "add", "origin", str(remote))
    git(moved_repo, "push", "-q", "origin", "main")
    pushed = run_cli(moved_repo, "push")
    assert pushed.returncode == 0, pushed.stderr
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    pulled = run_cli(clone, "pull")
    assert pulled.returncode == 0, pulled.stderr
    for moment in ("2026-11-20T09:00:00Z", "2026-11-20T11:30:00Z", "2026-11-20T12:30:00Z", "2026-11-20T13:30:00Z"):
        assert _blame_json(clone, "--at", moment) == _blame_json(moved_repo, "--at", moment), moment

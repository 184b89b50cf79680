"""Channels through the real CLI: promote, rollouts, rollback, channels, history, errors, concurrent promotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GIT_IDENTITY, git, run_cli
from test_channels import PID, add_versions, refs_snapshot

from promptctl.channels import ChannelStore
from promptctl.registry import PromptRepo

REF = f"refs/promptctl/channels/{PID}/current"


@pytest.fixture
def repo(versioned_repo: Path) -> Path:
    """support_intent_classifier at v1, v2, v3; no channel moved yet."""
    add_versions(versioned_repo, 2)
    return versioned_repo


def promote_in_process(repo: Path, *moves: tuple) -> None:
    """Set up channel moves without a CLI start-up each: (version, percent) pairs on current."""
    store = ChannelStore(PromptRepo.open(repo))
    for version, percent in moves:
        store.promote(PID, version, percent=percent)
    store.repo.close()


def ok(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_cli(repo, *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def ok_json(repo: Path, *args: str):
    return json.loads(ok(repo, *args, "--json").stdout)


def test_promote_then_show_channels_and_history(repo):
    out = ok(repo, "promote", PID, "v2", "--reason", "fixes refund intent").stdout
    assert out.startswith(f"promote {PID}@current: - -> v2  (audit ")
    shown = ok_json(repo, "show", f"{PID}@current")
    assert shown["version"] == "v2" and shown["channels"] == ["current"]

    [channel] = ok_json(repo, "channels", PID)
    assert channel["channel"] == "current" and channel["split"] is False
    assert [s["version"] for s in channel["serves"]] == ["v2"]
    assert channel["by"] == "Test Author <author@example.com>" and channel["reason"] == "fixes refund intent"
    assert channel["since"] and channel["commit"] == git(repo, "rev-parse", REF).strip()

    [entry] = ok_json(repo, "history", PID)
    assert (entry["action"], entry["from"], entry["to"], entry["reason"]) == ("promote", "-", "v2", "fixes refund intent")
    assert entry["author"] == "Test Author <author@example.com>" and entry["commit"] == channel["commit"]

    listed = {p["id"]: p for p in ok_json(repo, "list")}
    assert [s["version"] for s in listed[PID]["channels"]["current"]] == ["v2"]
    log = {v["version"]: v["channels"] for v in ok_json(repo, "log", PID)}
    assert log == {"v3": [], "v2": ["current"], "v1": []}
    table = ok(repo, "channels", PID).stdout
    assert "current" in table and "v2" in table and "Test Author" in table


def test_promoting_what_is_served_is_a_no_op_that_says_so(repo):
    promote_in_process(repo, ("v1", 100))
    before = refs_snapshot(repo)
    proc = ok(repo, "promote", PID, "v1", "--reason", "again")
    assert proc.stdout.strip() == f"{PID}@current already serves v1; nothing to do"
    assert ok_json(repo, "promote", PID, "v1")["changed"] is False
    assert refs_snapshot(repo) == before
    assert len(ok_json(repo, "history", PID)) == 1


def test_gradual_rollout_is_stored_and_audited(repo):
    promote_in_process(repo, ("v1", 100))
    moved = ok_json(repo, "promote", PID, "v2", "--percent", "5", "--reason", "canary")
    assert moved["changed"] is True and moved["to"] == "v1:95,v2:5"
    raw = git(repo, "cat-file", "commit", REF)
    assert "\ncanary\n\nPromptctl-Action: promote\n" in raw
    assert "Promptctl-From: v1\nPromptctl-To: v1:95,v2:5\nPromptctl-Serves: v1:95,v2:5\n" in raw
    [channel] = ok_json(repo, "channels", PID)
    assert channel["split"] is True and [(s["version"], s["percent"]) for s in channel["serves"]] == [("v1", 95), ("v2", 5)]
    assert ok_json(repo, "show", f"{PID}@current")["version"] == "v1"  # the rollout base stays primary

    assert ok_json(repo, "promote", PID, "v2", "--percent", "50")["to"] == "v1:50,v2:50"
    assert ok_json(repo, "promote", PID, "v2", "--percent", "100", "--reason", "rollout done")["to"] == "v2"
    assert [e["to"] for e in ok_json(repo, "history", PID)] == ["v2", "v1:50,v2:50", "v1:95,v2:5", "v1"]
    assert ok_json(repo, "show", f"{PID}@current")["version"] == "v2"


def test_another_version_during_a_rollout_replaces_the_canary(repo):
    promote_in_process(repo, ("v1", 100), ("v2", 20))
    assert ok_json(repo, "promote", PID, "v3", "--percent", "10")["to"] == "v1:90,v3:10"
    proc = run_cli(repo, "promote", PID, "v1", "--percent", "50")
    assert proc.returncode == 5 and "rollout base" in proc.stderr


def test_rollback_aborts_a_rollout_then_goes_back_and_is_audited(repo):
    promote_in_process(repo, ("v1", 100), ("v2", 100), ("v3", 5))
    aborted = ok_json(repo, "rollback", PID, "--reason", "drift on citation rubric")
    assert (aborted["action"], aborted["from"], aborted["to"]) == ("rollback", "v2:95,v3:5", "v2")
    back = ok_json(repo, "rollback", PID)
    assert (back["from"], back["to"]) == ("v2", "v1")
    assert ok_json(repo, "rollback", PID, "--to", "v3")["to"] == "v3"
    history = ok_json(repo, "history", PID, "--channel", "current")
    assert [(e["action"], e["to"]) for e in history][:3] == [("rollback", "v3"), ("rollback", "v1"), ("rollback", "v2")]
    assert history[2]["reason"] == "drift on citation rubric"
    assert "rollback" in ok(repo, "history", PID).stdout


def test_protected_channel_with_a_reason(repo):
    moved = ok_json(repo, "promote", PID, "v1", "--channel", "production", "--reason", "release 1")
    assert moved["channel"] == "production"
    assert ok_json(repo, "show", f"{PID}@production")["version"] == "v1"
    assert [e["channel"] for e in ok_json(repo, "history", PID, "--channel", "production")] == ["production"]


def _set_config(repo: Path, old: str, new: str) -> None:
    config = repo / "promptctl.yaml"
    config.write_text(config.read_text().replace(old, new))


def run_many(repo: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Run CLI commands at the same time (they are all expected to change nothing)."""
    env = {**os.environ, **GIT_IDENTITY, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "promptctl.cli.main", *args], cwd=repo, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    results = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


ERRORS = [
    (["promote", PID, "v9"], 3, f"{PID} has no version v9 (latest is v3)"),
    (["promote", "no_such_prompt", "v1"], 3, "unknown prompt 'no_such_prompt'"),
    (["promote", PID, "latest"], 2, "invalid version 'latest'"),
    (["promote", PID, "v2", "--channel", "Prod!"], 2, "invalid channel name 'Prod!'"),
    (["promote", PID, "v2", "--percent", "0"], 2, "invalid --percent 0: use 1..100"),
    (["promote", PID, "v2", "--percent", "101"], 2, "invalid --percent 101: use 1..100"),
    (["promote", PID, "v2", "--channel", "production"], 5, "is a protected channel (channels.protected)"),
    (["rollback", PID, "--channel", "production"], 5, "is a protected channel (channels.protected)"),
    (["rollback", PID], 5, "has no earlier version to roll back to"),
    (["rollback", PID, "--channel", "staging"], 3, "channel 'staging' has never been promoted"),
    (["rollback", PID, "--to", "v1"], 5, "already serves v1"),
    (["history", PID, "--channel", "staging"], 3, "channel 'staging' has never been promoted"),
    (["show", f"{PID}@staging"], 3, "channel 'staging' has never been promoted"),
    (["channels", "no_such_prompt"], 3, "unknown prompt"),
    (["push", "nowhere"], 3, "unknown remote 'nowhere'"),
    (["pull"], 3, "unknown remote 'origin'"),
    # typos a new user makes: the id@version / id@channel spelling, missing or doubled arguments
    (["promote", PID], 2, f"name the version to serve: 'promptctl promote {PID} vN'"),
    (["promote", f"{PID}@staging"], 2, f"'promptctl promote {PID} vN --channel staging'"),
    (["promote", f"{PID}@v2", "v3"], 2, f"'{PID}@v2' already names version v2; do not also pass 'v3'"),
    (["promote", f"{PID}@staging", "v2", "-c", "production"], 2, "names channel 'staging'; do not also pass --channel production"),
    (["promote", f"{PID}@v0"], 2, "invalid version 'v0'"),
    (["promote", f"{PID}@V2"], 2, "invalid version spec"),
    (["promote", f"{PID}@prod uction", "v2"], 2, "invalid version spec"),
    (["rollback", f"{PID}@v1"], 2, f"use 'promptctl rollback {PID} --to v1'"),
    (["channels", PID, "--channel", "staging"], 3, "channel 'staging' has never been promoted"),
    (["channels", f"{PID}@staging"], 3, "channel 'staging' has never been promoted"),
    (["history", PID, "--limit", "0"], 2, "--limit"),
]
SIGNING_ERRORS = [
    (["promote", PID, "v2", "--channel", "production", "--reason", "r"], 5, "could not sign the move"),
    (["promote", PID, "v2", "--channel", "production", "--reason", "r", "--no-sign"], 5, "requires signed moves"),
    (["rollback", PID, "--channel", "production", "--reason", "r", "--to", "v2"], 5, "could not sign the move"),
]


def _check_errors(repo: Path, cases) -> None:
    before = refs_snapshot(repo)
    for (args, code, message), proc in zip(cases, run_many(repo, [c[0] for c in cases]), strict=True):
        shown = f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr!r}"
        assert proc.returncode == code, shown
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("promptctl: error: "), shown
        assert message in proc.stderr and "Traceback" not in proc.stderr, shown
        assert proc.stdout == "", shown
    assert refs_snapshot(repo) == before


def test_errors_are_one_line_with_their_exit_code_and_change_nothing(repo):
    promote_in_process(repo, ("v1", 100))
    _check_errors(repo, ERRORS)


def test_unsigned_moves_where_signing_is_required_are_refused(repo):
    ChannelStore(PromptRepo.open(repo)).promote(PID, "v1", channel="production", reason="before the rule")
    _set_config(repo, "require_signed: []", "require_signed: [production]")
    git(repo, "config", "gpg.format", "ssh")  # and no user.signingkey: signing cannot work
    _check_errors(repo, SIGNING_ERRORS)


def test_a_held_ref_lock_fails_with_conflict_after_retries(repo):
    promote_in_process(repo, ("v1", 100))
    lock = repo / ".git" / (REF + ".lock")
    lock.write_text("")  # another process is in the middle of updating this channel
    before = refs_snapshot(repo)
    proc = run_cli(repo, "promote", PID, "v2")
    lock.unlink()
    assert proc.returncode == 6 and proc.stderr.count("\n") == 1
    assert "kept moving" in proc.stderr and "changed nothing" in proc.stderr
    assert refs_snapshot(repo) == before


def test_twenty_concurrent_promotes_agree_with_the_audit_log(repo):
    """Every promote that succeeds is in the log exactly once; none is lost; the ref is the newest entry."""
    promote_in_process(repo, ("v1", 100))
    env = {**os.environ, **GIT_IDENTITY, "NO_COLOR": "1"}
    procs = {
        percent: subprocess.Popen(
            [sys.executable, "-m", "promptctl.cli.main", "promote", PID, "v2", "--percent", str(percent),
             "--reason", f"race {percent}", "--json"],
            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for percent in range(1, 21)
    }
    landed, lost = {}, []
    for percent, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            landed[percent] = json.loads(out)
        else:
            assert proc.returncode == 6 and err.startswith("promptctl: error: ") and err.count("\n") == 1, err
            lost.append(percent)
    assert landed, "no promote landed"
    history = ok_json(repo, "history", PID, "--channel", "current")
    commits = [e["commit"] for e in history]
    assert len(commits) == len(set(commits)) == 1 + len(landed)  # nothing lost, nothing twice
    for percent, moved in landed.items():
        assert moved["changed"] is True and commits.count(moved["commit"]) == 1
        assert moved["to"] == f"v1:{100 - percent},v2:{percent}"
    assert sorted(e["reason"] for e in history[:-1]) == sorted(f"race {p}" for p in landed)
    # each move's From is the state its predecessor in the log left behind: one unbroken chain
    for newer, older in zip(history, history[1:], strict=False):
        assert newer["from"] == older["to"]
    assert git(repo, "rev-parse", REF).strip() == history[0]["commit"]
    [state] = ok_json(repo, "channels", PID)
    assert state["serves"] == history[0]["serves"] and state["commit"] == history[0]["commit"]


def test_id_at_version_and_id_at_channel_name_what_the_arguments_do(repo):
    """Prompts are named ID@vN / ID@CHANNEL everywhere else, so the channel commands take those spellings too."""
    assert ok(repo, "promote", f"{PID}@v2").stdout.startswith(f"promote {PID}@current: - -> v2  (audit ")
    out = ok(repo, "promote", f"{PID}@staging", "v3").stdout
    assert out.startswith(f"promote {PID}@staging: - -> v3  (audit ")
    ok(repo, "promote", f"{PID}@staging", "v1")
    assert ok(repo, "rollback", f"{PID}@staging").stdout.startswith(f"rollback {PID}@staging: v1 -> v3  (audit ")
    [staging] = ok_json(repo, "channels", f"{PID}@staging")
    assert staging["channel"] == "staging" and [s["version"] for s in staging["serves"]] == ["v3"]
    [history] = ok_json(repo, "history", f"{PID}@staging", "-n", "1")
    assert (history["channel"], history["action"], history["to"]) == ("staging", "rollback", "v3")


def test_channels_filter_history_limit_and_json_keys_agree(repo):
    promote_in_process(repo, ("v1", 100), ("v2", 100), ("v3", 100))
    ok(repo, "promote", PID, "v2", "--channel", "staging")
    everything = ok_json(repo, "channels", PID)
    assert [c["channel"] for c in everything] == ["current", "staging"]
    [only] = ok_json(repo, "channels", PID, "-c", "staging")
    assert only == everything[1]
    table = ok(repo, "channels", PID, "--channel", "staging").stdout
    assert "staging" in table and "current" not in table
    # the names history and promote use, beside the older by/since
    assert only["author"] == only["by"] == "Test Author <author@example.com>" and only["at"] == only["since"]
    noop = ok_json(repo, "promote", PID, "v2", "-c", "staging")
    assert noop["changed"] is False and noop["author"] == only["author"] and noop["at"] == only["at"]
    newest = ok_json(repo, "history", PID, "--limit", "2")
    assert newest == ok_json(repo, "history", PID)[:2]
    assert len(ok(repo, "history", PID, "-n", "1").stdout.splitlines()) < len(ok(repo, "history", PID).stdout.splitlines())

"""push / pull of version tags, channels and their audit logs, against a real bare repository and two clones."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import git, run_cli
from test_channels import PID, add_versions, refs_snapshot

from promptctl import channels, errors
from promptctl.channels import ChannelStore
from promptctl.registry import PromptRepo

REF = f"refs/promptctl/channels/{PID}/current"


@pytest.fixture
def clones(versioned_repo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(here, there, remote): ``here`` has PID at v1..v3; ``there`` is a clone of the code branch only."""
    add_versions(versioned_repo, 2)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(versioned_repo, "remote", "add", "origin", str(remote))
    git(versioned_repo, "push", "-q", "origin", "main")  # the code branch travels the usual way
    there = tmp_path / "there"
    git(tmp_path, "clone", "-q", str(remote), str(there))
    git(there, "config", "user.name", "Other Author")
    git(there, "config", "user.email", "other@example.com")
    return versioned_repo, there, remote


def store(repo: Path) -> ChannelStore:
    return ChannelStore(PromptRepo.open(repo))


def cli_json(repo: Path, *args: str):
    proc = run_cli(repo, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def remote_refs(remote: Path) -> str:
    return git(remote, "for-each-ref", "--format=%(refname) %(objectname)")


def test_promote_push_pull_then_show_in_the_other_clone(clones):
    here, there, remote = clones
    add_versions(here, 1)  # v4: its commit is on no pushed branch, it travels with its tag
    moved = cli_json(here, "promote", PID, "v4", "--reason", "fixes refund intent")
    pushed = cli_json(here, "push")
    assert pushed["version_tags"] == 6  # v1..v4 of PID, v1 of the two other prompts
    assert [(c["name"], c["kind"]) for c in pushed["channels"]] == [(f"{PID}@current", "new-channel")]
    assert git(remote, "rev-parse", REF).strip() == moved["commit"]

    pulled = cli_json(there, "pull", "origin")
    assert pulled["version_tags"] == 6 and [c["kind"] for c in pulled["channels"]] == ["new-channel"]
    shown = cli_json(there, "show", f"{PID}@current")
    assert shown["version"] == "v4" and shown["template_hash"] == moved["serves"][0]["template_hash"]
    assert "revision 0" in shown["files"]["body.j2"]  # the content came along
    history = cli_json(there, "history", PID)
    assert [(e["commit"], e["reason"], e["author"]) for e in history] == [
        (moved["commit"], "fixes refund intent", "Test Author <author@example.com>")
    ]
    assert git(there, "status", "--porcelain") == ""  # pull never touches the working tree

    assert run_cli(there, "pull").stdout.strip() == "already up to date with origin"
    assert run_cli(here, "push").stdout.strip() == "origin: already up to date"


def test_second_push_is_refused_and_pull_says_how_to_reconcile(clones):
    here, there, remote = clones
    store(here).promote(PID, "v1")
    channels.push(PromptRepo.open(here))
    channels.pull(PromptRepo.open(there))

    store(here).promote(PID, "v3", reason="from here")
    assert run_cli(here, "push").returncode == 0
    store(there).promote(PID, "v2", reason="from there")  # concurrently, in the other clone

    on_remote, in_there = remote_refs(remote), refs_snapshot(there)
    refused = run_cli(there, "push")
    assert refused.returncode == 6 and refused.stderr.count("\n") == 1, refused.stderr
    assert "nothing was pushed" in refused.stderr and "promptctl pull origin" in refused.stderr
    assert f"{PID}@current moved both here and on origin" in refused.stderr
    assert remote_refs(remote) == on_remote

    diverged = run_cli(there, "pull")
    assert diverged.returncode == 6 and diverged.stderr.count("\n") == 1, diverged.stderr
    assert "here it serves v2, on origin v3" in diverged.stderr and "--discard-local-moves" in diverged.stderr
    assert refs_snapshot(there) == in_there

    taken = cli_json(there, "pull", "--discard-local-moves")
    assert [(c["name"], c["kind"]) for c in taken["channels"]] == [(f"{PID}@current", "reset")]
    assert any("dropped the local moves" in n for n in taken["notes"])
    assert store(there).state(PID).primary.version == "v3"
    cli_json(there, "promote", PID, "v2", "--reason", "redo from there")
    assert cli_json(there, "push")["channels"][0]["kind"] == "fast-forward"

    assert cli_json(here, "pull")["channels"][0]["kind"] == "fast-forward"
    assert cli_json(here, "show", f"{PID}@current")["version"] == "v2"
    assert [e["reason"] for e in cli_json(here, "history", PID)] == ["redo from there", "from here", ""]


def test_push_skips_a_channel_that_is_only_behind(clones):
    here, there, remote = clones
    store(here).promote(PID, "v1")
    channels.push(PromptRepo.open(here))
    channels.pull(PromptRepo.open(there))
    store(here).promote(PID, "v2")
    channels.push(PromptRepo.open(here))
    add_versions(there, 1)  # there: a new version v4, and a channel that is behind origin

    proc = run_cli(there, "push", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["tags"] == [f"{PID}/v4"] and report["channels"] == []
    assert f"origin is ahead on {PID}@current" in proc.stderr
    assert git(remote, "rev-parse", REF).strip() == git(here, "rev-parse", REF).strip()
    assert git(remote, "rev-parse", f"refs/tags/{PID}/v4").strip() == git(there, "rev-parse", f"refs/tags/{PID}/v4").strip()

    ahead = store(there)
    channels.pull(ahead.repo)
    ahead.promote(PID, "v4")
    report = channels.pull(ahead.repo)  # a channel only ahead here: left alone, with a note
    assert report.changes == [] and "push origin" in report.notes[0]


def test_a_version_made_on_both_sides_refuses_push_and_pull(clones):
    here, there, remote = clones
    channels.push(PromptRepo.open(here))
    channels.pull(PromptRepo.open(there))
    add_versions(here, 1)
    channels.push(PromptRepo.open(here))
    body = there / "prompts" / PID / "body.j2"
    body.write_text(body.read_text() + "\nsomething else\n")
    PromptRepo.open(there).commit([PID], "a different v4")
    before_remote, before_there = remote_refs(remote), refs_snapshot(there)
    for command in ("push", "pull"):
        proc = run_cli(there, command)
        assert proc.returncode == 6 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"version tag {PID}/v4 differs" in proc.stderr
    assert remote_refs(remote) == before_remote and refs_snapshot(there) == before_there


def test_push_is_atomic_when_the_remote_moves_during_the_push(clones):
    """The remote's channel moves after push planned (a pre-push hook): nothing lands, not even the new tag."""
    here, there, remote = clones
    store(here).promote(PID, "v1")
    channels.push(PromptRepo.open(here))
    channels.pull(PromptRepo.open(there))
    store(there).promote(PID, "v2")
    channels.push(PromptRepo.open(there))  # origin now has a move "here" has not seen
    moved_there = git(there, "rev-parse", REF).strip()
    git(remote, "update-ref", REF, git(here, "rev-parse", REF).strip())  # ...not yet: push plans a fast-forward
    add_versions(here, 1)
    store(here).promote(PID, "v3")
    hook = here / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ngit --git-dir='{remote}' update-ref {REF} {moved_there}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    before = remote_refs(remote)
    with pytest.raises(errors.Conflict, match="nothing was pushed"):
        channels.push(PromptRepo.open(here))
    after = remote_refs(remote)
    assert f"refs/tags/{PID}/v4" not in after
    assert after == before.replace(git(here, "rev-parse", f"{REF}~1").strip(), moved_there)


def test_unknown_remote_and_unreachable_remote(clones, tmp_path):
    here, _, _ = clones
    before = refs_snapshot(here)
    with pytest.raises(errors.NotFound, match="unknown remote 'upstream'"):
        channels.push(PromptRepo.open(here), "upstream")
    missing = tmp_path / "no-such-remote.git"
    proc = run_cli(here, "pull", str(missing))
    assert proc.returncode == 7 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"cannot read remote '{missing}'" in proc.stderr
    assert refs_snapshot(here) == before
    assert not os.path.exists(missing)


def test_a_large_first_push_sends_tags_as_one_pattern_per_prompt(clones, monkeypatch):
    here, _, remote = clones
    monkeypatch.setattr(channels, "MAX_TAG_REFSPEC_BYTES", 0)  # as if there were 20,000 tags to send
    report = channels.push(PromptRepo.open(here))
    assert len(report.tags) == 5
    sent = git(remote, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/")
    assert sent == git(here, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/")

# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""Git-remote mode: clones that fetch only the registry's refs from a bare repository, in the loader or a sidecar."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import GIT_IDENTITY, git, run_cli, stop_with_sigint
from fleet_support import Replica, hold_for, wait_for
from test_runtime_support import runtime_repo, runtime_template  # noqa: F401 - fixtures

import promptctl
from promptctl.channels import ChannelStore, push
from promptctl.registry import PromptRepo
from promptctl.runtime.gitremote import sync

SIC = "support_intent_classifier"
TTL = 0.3
PROPAGATION = TTL + TTL + 3.0  # the loader's TTL plus one fetch interval, plus slack for git on a busy machine


def refs(repo, *patterns):
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)", *patterns)


@pytest.fixture
def remote_setup(runtime_repo, tmp_path):
    """(admin repository, bare origin, [replica clones]): the clones have the registry refs once synced."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    git(runtime_repo, "remote", "add", "origin", str(bare))
    git(runtime_repo, "push", "-q", "origin", "main")
    push(PromptRepo.open(runtime_repo), "origin")
    clones = []
    for i in range(3):
        clone = tmp_path / f"replica{i}"
        git(tmp_path, "clone", "-q", str(bare), str(clone))
        sync(clone)  # a replica image: clone, then one sync (a plain clone has no channel refs)
        (clone / "local-notes.txt").write_text("uncommitted work in the replica's tree\n")
        clones.append(clone)
    return runtime_repo, bare, clones


def test_sync_fetches_only_registry_refs_fast_forward_without_touching_the_tree(remote_setup):
    admin, bare, clones = remote_setup
    clone = clones[0]
    head, branches = git(clone, "rev-parse", "HEAD"), refs(clone, "refs/heads/", "refs/remotes/")
    status = git(clone, "status", "--porcelain")
    git(admin, "commit", "-q", "--allow-empty", "-m", "unrelated work on main")
    git(admin, "push", "-q", "origin", "main")
    ChannelStore(PromptRepo.open(admin)).promote(SIC, "v2", "production", reason="ship")
    push(PromptRepo.open(admin), "origin")
    report = sync(clone)
    assert [(c.label, c.kind) for c in report.changes] == [(f"{SIC}@production", "fast-forward")]
    assert refs(clone, f"refs/promptctl/channels/{SIC}/production") == refs(admin, f"refs/promptctl/channels/{SIC}/production")
    assert git(clone, "rev-parse", "HEAD") == head and refs(clone, "refs/heads/", "refs/remotes/") == branches
    assert git(clone, "status", "--porcelain") == status and (clone / "local-notes.txt").exists()
    assert sync(clone).changes == []  # nothing new: nothing fetched


def test_sync_cli_errors_are_one_line_and_change_nothing(remote_setup):
    admin, bare, clones = remote_setup
    clone = clones[0]
    proc = run_cli(clone, "sync", "--watch", "--interval", "-1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--interval" in proc.stderr
    proc = run_cli(clone, "sync", "--remote", "nowhere")
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "unknown remote 'nowhere'" in proc.stderr
    # a channel moved inside the replica's clone and on the origin: not fast-forwardable
    before = refs(clone, "refs/promptctl/")
    ChannelStore(PromptRepo.open(clone)).promote(SIC, "v2", "production", reason="local hack")
    ChannelStore(PromptRepo.open(admin)).promote(SIC, "v2", "production", reason="ship")
    push(PromptRepo.open(admin), "origin")
    moved = refs(clone, "refs/promptctl/")
    assert moved != before
    proc = run_cli(clone, "sync")
    assert proc.returncode == 6 and proc.stderr.count("\n") == 1 and "moved both here and on origin" in proc.stderr
    assert refs(clone, "refs/promptctl/") == moved  # nothing changed
    shutil.move(bare, bare.with_suffix(".gone"))
    proc = run_cli(clones[1], "sync", "--json")
    assert proc.returncode == 7 and proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_replicas_follow_the_remote_and_ride_out_an_outage(remote_setup):
    admin, bare, clones = remote_setup
    replicas = [Replica(str(c), TTL, SIC, remote="origin", channel="production") for c in clones]
    try:
        wait_for(replicas, lambda s: s["version"] == "v1" and not s["stale"], timeout=30)
        store = ChannelStore(PromptRepo.open(admin))
        store.promote(SIC, "v2", "production", reason="ship v2")
        push(PromptRepo.open(admin), "origin")
        took = wait_for(replicas, lambda s: s["version"] == "v2" and not s["stale"], timeout=PROPAGATION)
        store.rollback(SIC, "production", reason="v2 misbehaves")
        push(PromptRepo.open(admin), "origin")
        took_back = wait_for(replicas, lambda s: s["version"] == "v1", timeout=PROPAGATION)
        assert took < PROPAGATION and took_back < PROPAGATION
        warned = [r.latest["warnings"] for r in replicas]
        gone = bare.with_suffix(".gone")
        shutil.move(bare, gone)  # the origin is unreachable
        wait_for(replicas, lambda s: s["stale"] and s["version"] == "v1", timeout=8.0)
        hold_for(replicas, lambda s: s["version"] == "v1" and s["error"] is None, 0.6)
        assert [r.latest["warnings"] for r in replicas] == [w + 1 for w in warned]  # one warning per episode
        shutil.move(gone, bare)
        wait_for(replicas, lambda s: not s["stale"] and s["version"] == "v1", timeout=15.0)
        for clone in clones:
            assert (clone / "local-notes.txt").exists() and "local-notes.txt" in git(clone, "status", "--porcelain")
    finally:
        for replica in replicas:
            replica.stop()


def test_sidecar_sync_watch_moves_refs_for_a_plain_registry(remote_setup):
    admin, bare, clones = remote_setup
    clone = clones[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptctl.cli.main", "sync", "--watch", "--interval", "0.2", "--json"],
        cwd=clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **GIT_IDENTITY},
    )
    try:
        with promptctl.Registry(clone, ttl=0.1, channel="production") as registry:
            assert registry.get(SIC).version == "v1"
            ChannelStore(PromptRepo.open(admin)).promote(SIC, "v2", "production", reason="ship v2")
            push(PromptRepo.open(admin), "origin")
            line = json.loads(proc.stdout.readline())  # the sidecar reports the move it fetched
            assert line["channels"][0]["name"] == f"{SIC}@production" and line["channels"][0]["kind"] == "fast-forward"
            deadline = time.monotonic() + 5
            while registry.get(SIC).version != "v2":
                assert time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        code = stop_with_sigint(proc)
    assert code == 0, proc.stderr.read()

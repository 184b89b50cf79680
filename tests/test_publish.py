# ruff: noqa: F811 - pytest fixtures imported from test_runtime_support are parameters here
"""promptctl publish: manifest + content-addressed objects, objects first, idempotent, --watch."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

from conftest import GIT_IDENTITY, git, run_cli, stop_with_sigint
from test_runtime_support import promote, runtime_repo, runtime_template  # noqa: F401 - fixtures

from promptctl.publish import publish

SIC = "support_intent_classifier"


def snapshot(directory):
    """Every file under ``directory`` with its inode and mtime: a write of any kind changes it."""
    found = {}
    for path in sorted(directory.rglob("*")):
        st = path.stat()
        found[str(path.relative_to(directory))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


def test_publish_writes_the_manifest_and_content_addressed_objects(runtime_repo, tmp_path):
    promote(runtime_repo, SIC, "production", "v1:90,v2:10", reason="canary")
    out = tmp_path / "site" / "production"
    proc = run_cli(runtime_repo, "publish", "--channel", "production", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["changed"] is True and result["published_at"] == manifest["published_at"]
    assert result["prompts"][SIC]["production"] == [{"version": "v1", "percent": 90}, {"version": "v2", "percent": 10}]
    assert manifest["format"] == "promptctl-export/1" and manifest["default_channel"] == "production"
    production = manifest["prompts"][SIC]["channels"]["production"]
    assert [(s["version"], s["percent"]) for s in production["serves"]] == [("v1", 90), ("v2", 10)]
    assert production["last_move"]["reason"] == "canary" and production["last_move"]["action"] == "promote"
    shown = json.loads(run_cli(runtime_repo, "show", f"{SIC}@v2", "--json").stdout)
    assert manifest["prompts"][SIC]["versions"]["v2"] == shown["template_hash"] == production["serves"][1]["template_hash"]
    for digest in manifest["prompts"][SIC]["versions"].values():
        assert hashlib.sha256((out / "objects" / f"{digest}.json").read_bytes()).hexdigest() == digest
    assert result["objects_written"] == 2


def test_publishing_twice_with_nothing_changed_writes_nothing(runtime_repo, tmp_path):
    out = tmp_path / "production"
    first = publish(runtime_repo, ["production"], out)
    before = snapshot(out)
    time.sleep(0.01)
    again = publish(runtime_repo, ["production"], out)
    assert again.changed is False and again.objects_written == 0 and again.published_at == first.published_at
    assert snapshot(out) == before  # not even the manifest was rewritten
    proc = run_cli(runtime_repo, "publish", "--channel", "production", str(out))
    assert proc.returncode == 0 and "up to date" in proc.stdout and "nothing written" in proc.stdout
    assert snapshot(out) == before
    promote(runtime_repo, SIC, "production", "v2")
    fresh = run_cli(runtime_repo, "publish", "--channel", "production", str(tmp_path / "fresh"))
    assert fresh.returncode == 0 and " (s)" not in fresh.stdout and "(s)" not in fresh.stdout
    assert "published 1 prompt to" in fresh.stdout and "(1 new object)" in fresh.stdout
    moved = publish(runtime_repo, ["production"], out)
    # v2's object is there already (the variant channel experiment-b serves it): only the manifest changes
    assert moved.changed is True and moved.objects_written == 0 and moved.published_at > first.published_at
    unchanged = {name: value for name, value in snapshot(out).items() if name != "manifest.json" and name in before}
    assert unchanged == {name: value for name, value in before.items() if name != "manifest.json"}  # objects kept


def test_a_damaged_object_is_repaired_without_touching_the_manifest(runtime_repo, tmp_path):
    out = tmp_path / "production"
    publish(runtime_repo, ["production"], out)
    manifest_stat = (out / "manifest.json").stat()
    obj = next((out / "objects").iterdir())
    obj.write_text("tampered")
    result = publish(runtime_repo, ["production"], out)
    assert result.changed is False and result.objects_written == 1
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == obj.stem
    assert (out / "manifest.json").stat().st_mtime_ns == manifest_stat.st_mtime_ns


def test_a_reader_never_sees_a_manifest_naming_a_missing_object(runtime_repo, tmp_path):
    out = tmp_path / "production"
    manifest_path = out / "manifest.json"
    publish(runtime_repo, ["production"], out)
    stop = threading.Event()
    problems: list[str] = []
    checks = 0

    def identity():
        try:
            st = manifest_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def reader():
        nonlocal checks
        while not stop.wait(0.001):
            before = identity()
            try:
                manifest = json.loads(manifest_path.read_bytes())
            except FileNotFoundError:
                continue  # the test removed it (below), publish writes it again
            except ValueError as exc:
                problems.append(f"torn manifest: {exc}")
                continue
            missing = [d for d in manifest["prompts"][SIC]["versions"].values() if not (out / "objects" / f"{d}.json").is_file()]
            if identity() == before and before is not None:  # the same manifest the whole time
                checks += 1
                problems.extend(f"missing {d}" for d in missing)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(12):
            if i % 3 == 0:  # start from nothing now and then: every object must be written before the manifest
                manifest_path.unlink()
                for obj in (out / "objects").iterdir():
                    obj.unlink()
            promote(runtime_repo, SIC, "production", ("v2", "v1", "v1:50,v2:50")[i % 3])
            publish(runtime_repo, ["production"], out)
    finally:
        stop.set()
        thread.join()
    assert problems == [] and checks > 10


def test_destination_not_writable_is_one_line_exit_7_and_nothing_written(runtime_repo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = run_cli(runtime_repo, "publish", "--channel", "production", str(blocker / "site"))
    assert proc.returncode == 7
    assert proc.stderr.count("\n") == 1 and "is not a directory" in proc.stderr and proc.stdout == ""
    assert blocker.read_text() == "not a directory"
    out = tmp_path / "site"
    out.mkdir()
    (out / "objects").write_text("a file where the objects go")
    proc = run_cli(runtime_repo, "publish", "--channel", "production", str(out))
    assert proc.returncode == 7 and proc.stderr.count("\n") == 1 and "objects" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["objects"]  # no manifest, nothing else


def test_a_destination_the_os_refuses_says_publish_not_export(runtime_repo):
    before = git(runtime_repo, "for-each-ref")
    proc = run_cli(runtime_repo, "publish", "--channel", "production", "/proc/promptctl-test/site")
    assert proc.returncode == 7 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("promptctl: error: cannot publish to /proc/promptctl-test")
    assert git(runtime_repo, "for-each-ref") == before


def test_unknown_channel_and_bad_interval(runtime_repo, tmp_path):
    proc = run_cli(runtime_repo, "publish", "--channel", "nowhere", str(tmp_path / "out"))
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "nowhere" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_cli(runtime_repo, "publish", "--channel", "production", str(tmp_path / "out"), "--watch", "--interval", "0")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
    proc = run_cli(runtime_repo, "publish", "--channel", "production", "s3://bucket/production")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "your own sync" in proc.stderr
    assert not (runtime_repo / "s3:").exists()


def test_watch_republishes_when_a_channel_moves_and_stops_on_ctrl_c(runtime_repo, tmp_path):
    out = tmp_path / "production"
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptctl.cli.main", "publish", "--channel", "production", str(out), "--watch",
         "--interval", "0.1", "--json"],
        cwd=runtime_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **GIT_IDENTITY},
    )
    try:
        first = json.loads(proc.stdout.readline())
        assert first["changed"] is True and first["prompts"][SIC]["production"][0]["version"] == "v1"
        promote(runtime_repo, SIC, "production", "v2")
        second = json.loads(proc.stdout.readline())  # the move was noticed and published
        assert second["changed"] is True and second["prompts"][SIC]["production"][0]["version"] == "v2"
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["prompts"][SIC]["channels"]["production"]["serves"][0]["version"] == "v2"
        promote(runtime_repo, SIC, "production", "v1")
        third = json.loads(proc.stdout.readline())
        assert third["prompts"][SIC]["production"][0]["version"] == "v1"
    finally:
        code = stop_with_sigint(proc)
    assert code == 0, proc.stderr.read()


def test_published_cli_on_a_directory(runtime_repo, tmp_path):
    out = tmp_path / "production"
    publish(runtime_repo, ["production"], out)
    proc = run_cli(runtime_repo, "published", str(out), "--verify")
    assert proc.returncode == 0, proc.stderr
    assert SIC in proc.stdout and "production" in proc.stdout and "0 bad" in proc.stdout
    proc = run_cli(runtime_repo, "published", str(tmp_path))
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "not a published promptctl registry" in proc.stderr

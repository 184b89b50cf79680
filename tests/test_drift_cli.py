"""`promptctl drift` end to end: a real registry (versions, audited channel moves), real span files, the real CLI."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import git, run_cli
from test_drift import PID, T0, write_spans

pytest.importorskip("duckdb")


def _at(hours: float) -> dict:
    stamp = (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def _ok(proc, code: int = 0):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def drift_repo(tmp_path_factory) -> tuple[Path, Path]:
    """The example registry: v1 and v2 of the classifier, production moved v1 -> v2 (canary at T0+20h, full at 22h)."""
    import shutil

    from conftest import EXAMPLES, init_git_repo

    repo = init_git_repo(tmp_path_factory.mktemp("drift-repo") / "repo")
    shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add prompts")
    _ok(run_cli(repo, "commit", "--all", "-m", "first release"))
    body = repo / "prompts" / PID / "body.j2"
    body.write_text(body.read_text() + "\nAnswer with the label only.\n")
    _ok(run_cli(repo, "commit", PID, "-m", "shorter answers"))
    _ok(run_cli(repo, "promote", PID, "v1", "--channel", "production", "--reason", "launch", env=_at(-1)))
    _ok(
        run_cli(
            repo,
            "promote",
            PID,
            "v2",
            "--channel",
            "production",
            "--percent",
            "10",
            "--reason",
            "canary",
            env=_at(20),
        )
    )
    _ok(
        run_cli(repo, "promote", PID, "v2", "--channel", "production", "--reason", "all traffic", env=_at(22))
    )
    spans = write_spans(tmp_path_factory.mktemp("drift-spans") / "traces.jsonl")
    return repo, spans


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "refs/promptctl/")


def test_drift_alert_names_version_slice_and_rubric(drift_repo):
    repo, spans = drift_repo
    proc = _ok(run_cli(repo, "drift", "--spans", str(spans), "--window", "1h", "--by", "tier,locale"), 1)
    alert_lines = [line for line in proc.stdout.splitlines() if "ALERT" in line]
    assert len(alert_lines) == 1
    for part in (
        PID,
        "v2",
        "tier=enterprise,locale=de",
        "exact_match",
        "0.800 (40)",
        "-0.100",
        "0.05 / n>=30 *",
    ):
        assert part in alert_lines[0]
    # only lines reaching into the window and baseline (and one window of slack) are parsed
    assert (
        "spans from 1 file (those after 2026-11-19T23:58:30.000001Z: the window and baseline; "
        "33 of 33 lines parsed)" in proc.stderr
    )
    assert "without prompt.version (not analysed)" in proc.stderr
    assert (
        "1 alert: support_intent_classifier v2 tier=enterprise,locale=de exact_match fell 0.100"
        in proc.stderr
    )


def test_drift_json_and_no_alert_exit_0(drift_repo):
    repo, spans = drift_repo
    data = json.loads(_ok(run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--json"), 1).stdout)
    assert data["alerts"] == 1 and data["engine"] == "duckdb" and data["input"]["spans_without_version"] > 0
    assert data["input"]["lines"] == len(spans.read_text().splitlines()) >= data["input"]["lines_parsed"] > 0
    alert = data["rows"][0]
    assert alert["threshold"] == {"drop": 0.05, "min_samples": 30, "source": "prompt.yaml at v2"}
    label = next(r for r in data["rows"] if r["slice"] == alert["slice"] and r["rubric"] == "contains_label")
    assert label["status"] == "ok" and label["threshold"]["drop"] == 0.2
    # the global mean hides the slice: no alert, exit 0
    quiet = _ok(run_cli(repo, "drift", str(spans), "--json"))
    assert json.loads(quiet.stdout)["alerts"] == 0


def test_rollback_dry_run_changes_nothing(drift_repo):
    repo, spans = drift_repo
    before = _refs(repo)
    proc = _ok(
        run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--baseline", "previous", "--rollback"), 1
    )
    line = next(x for x in proc.stdout.splitlines() if f"{PID}@production" in x)
    assert "v2" in line and "protected" in line and "would roll back to v1" in line
    assert "dry run: nothing changed" in proc.stderr
    data = json.loads(
        _ok(run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--rollback", "--json"), 1).stdout
    )
    plan = data["rollback"]["plans"][0]
    assert data["rollback"]["applied"] is False
    assert (plan["channel"], plan["serves"], plan["rollback_to"], plan["applied"]) == (
        "production",
        "v2",
        "v1",
        None,
    )
    assert _refs(repo) == before


def test_rollback_apply_needs_a_reason_on_a_protected_channel(drift_repo):
    repo, spans = drift_repo
    before = _refs(repo)
    proc = _ok(run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--rollback", "--apply"), 5)
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("promptctl: error: support_intent_classifier@production is a protected channel")
    )
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert _refs(repo) == before


def test_errors_are_one_line_with_their_exit_code(drift_repo, tmp_path):
    repo, spans = drift_repo
    bad = tmp_path / "bad.jsonl"
    bad.write_text(spans.read_text().split("\n", 1)[0] + "\n{not json\n")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    cases = [
        ((), 2, "no spans: give span files"),
        ((str(tmp_path / "none-*.jsonl"),), 3, "no span file matches"),
        ((str(bad), "--strict"), 4, f"{bad}:2: not valid JSON"),
        ((str(spans), "--window", "soon"), 2, "invalid --window 'soon'"),
        ((str(spans), "--baseline", "last week"), 2, "invalid --baseline"),
        ((str(spans), "--by", "colour"), 2, "invalid --by colour"),
        ((str(spans), "--until", "whenever"), 2, "whenever"),
        ((str(spans), "--apply"), 2, "--apply performs the rollbacks of --rollback"),
        ((str(spans), "--clickhouse", "http://localhost:8123"), 2, "not both"),
        (
            ("--clickhouse", f"http://127.0.0.1:{port}"),
            7,
            f"ClickHouse at http://127.0.0.1:{port}/ is unreachable",
        ),
    ]
    before = _refs(repo)
    for args, code, message in cases:
        proc = run_cli(repo, "drift", *args)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("promptctl: error: ") and message in lines[0], (
            args,
            lines,
        )
        assert proc.stdout == ""
    assert _refs(repo) == before


def test_malformed_lines_are_named_and_skipped(drift_repo, tmp_path):
    repo, spans = drift_repo
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n" + spans.read_text())
    proc = _ok(run_cli(repo, "drift", str(bad), "--by", "tier,locale", "--rollback"), 1)
    assert "skipped 1 malformed line (use --strict to fail instead):" in proc.stderr
    assert f"  {bad}:1: not valid JSON" in proc.stderr
    assert "partial data: 1 malformed lines were skipped" in proc.stderr


def test_a_line_that_is_not_utf8_is_named_and_skipped(drift_repo, tmp_path):
    repo, spans = drift_repo
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(spans.read_bytes() + b"garbage caf\xe9\n")
    last = len(spans.read_text().splitlines()) + 1
    proc = _ok(run_cli(repo, "drift", str(bad), "--by", "tier,locale"), 1)  # the alert still fires
    assert "skipped 1 malformed line (use --strict to fail instead):" in proc.stderr
    assert f"  {bad}:{last}: not valid UTF-8" in proc.stderr
    strict = run_cli(repo, "drift", str(bad), "--by", "tier,locale", "--strict")
    assert strict.returncode == 4 and strict.stderr == f"promptctl: error: {bad}:{last}: not valid UTF-8\n"


def test_lines_before_the_period_are_not_read_unless_strict(drift_repo, tmp_path):
    repo, spans = drift_repo
    lines = spans.read_text().splitlines()
    broken = lines[1].replace('"name":', '"name"', 1)  # an early line, broken inside, still {...}
    assert broken != lines[1] and broken.startswith("{") and broken.endswith("}")
    bad = tmp_path / "early.jsonl"
    bad.write_text("\n".join([lines[0], broken, *lines[2:]]) + "\n")
    args = ("drift", str(bad), "--window", "1h", "--baseline", "2h", "--by", "tier,locale")
    proc = _ok(run_cli(repo, *args), 1)  # the alert, from the last hours; line 2 is never parsed
    assert "malformed" not in proc.stderr and "partial data" not in proc.stderr
    before = _refs(repo)
    proc = run_cli(repo, *args, "--strict", "--rollback", "--apply", "--reason", "x")
    assert proc.returncode == 4 and proc.stderr == f"promptctl: error: {bad}:2: not valid JSON\n"
    assert _refs(repo) == before


def test_without_a_registry_defaults_apply(drift_repo, tmp_path):
    _, spans = drift_repo
    proc = _ok(run_cli(tmp_path, "drift", str(spans), "--by", "tier,locale", "--min-samples", "30"), 1)
    assert "thresholds are the defaults (--drop 0.05, --min-samples 30)" in proc.stderr
    assert (
        sum("ALERT" in line for line in proc.stdout.splitlines()) == 2
    )  # contains_label falls 0.1 > 0.05 too
    proc = run_cli(tmp_path, "drift", str(spans), "--rollback")
    assert proc.returncode == 3 and proc.stderr.startswith("promptctl: error: ")


def test_plot_and_rollback_apply(drift_repo, tmp_path):
    repo, spans = drift_repo
    png = tmp_path / "drift.png"
    proc = _ok(run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--plot", str(png)), 1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in proc.stderr
    unwritable = _ok(run_cli(repo, "drift", str(spans), "--plot", str(tmp_path / "no-dir" / "x.png")), 7)
    assert "cannot write the plot" in unwritable.stderr

    proc = _ok(
        run_cli(
            repo,
            "drift",
            str(spans),
            "--by",
            "tier,locale",
            "--rollback",
            "--apply",
            "--reason",
            "exact_match drift on enterprise/de",
        ),
        1,
    )
    assert "rolled back -> v1" in proc.stdout
    channels = json.loads(_ok(run_cli(repo, "channels", PID, "--json")).stdout)
    production = next(c for c in channels if c["channel"] == "production")
    assert [s["version"] for s in production["serves"]] == ["v1"]
    assert production["action"] == "rollback" and production["reason"] == "exact_match drift on enterprise/de"
    # v2 no longer served anywhere: the gate has nothing left to move
    again = _ok(run_cli(repo, "drift", str(spans), "--by", "tier,locale", "--rollback"), 1)
    assert "no channel serves a drifting version" in again.stderr

"""Channels in-process: the state commit format, rollout and rollback rules, the audit log, signing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git
from hypothesis import given
from hypothesis import strategies as st

from promptctl import errors
from promptctl.channels import (
    ChannelStore,
    format_serves,
    parse_serves,
    parse_state_commit,
    plan_promote,
    rollback_target,
    state_message,
    verify_signatures,
)
from promptctl.model import AuditEntry, Serving
from promptctl.registry import PromptRepo

PID = "support_intent_classifier"
H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def add_versions(repo: Path, count: int, prompt_id: str = PID) -> None:
    """Commit ``count`` more versions of a prompt (in-process: fast)."""
    registry = PromptRepo.open(repo)
    body = repo / "prompts" / prompt_id / "body.j2"
    for index in range(count):
        body.write_text(body.read_text() + f"\nrevision {index}\n")
        registry.commit([prompt_id], f"revision {index}")
    registry.close()


def refs_snapshot(repo: Path) -> str:
    """Every ref and what it points at: an error must leave this unchanged."""
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.fixture
def store(versioned_repo: Path) -> ChannelStore:
    """support_intent_classifier at v1, v2, v3; no channel moved yet."""
    add_versions(versioned_repo, 2)
    repo = PromptRepo.open(versioned_repo)
    yield ChannelStore(repo)
    repo.close()


# -- the message format (the runtime loader and verify read it) --------------------------------------------


def test_state_message_is_exactly_the_documented_format():
    message = state_message(
        "promote", PID, "current", (Serving("v22", 100, H1),), (Serving("v22", 95, H1), Serving("v23", 5, H2)), "canary\r\n"
    )
    assert message == (
        f"promote {PID}@current: v22 -> v22:95,v23:5\n"
        "\n"
        "canary\n"
        "\n"
        "Promptctl-Action: promote\n"
        f"Promptctl-Prompt: {PID}\n"
        "Promptctl-Channel: current\n"
        "Promptctl-From: v22\n"
        "Promptctl-To: v22:95,v23:5\n"
        "Promptctl-Serves: v22:95,v23:5\n"
        f"Promptctl-Serves-Hash: v22={H1},v23={H2}\n"
    )
    first = state_message("promote", PID, "production", (), (Serving("v1", 100, H1),))
    assert first.splitlines()[0] == f"promote {PID}@production: - -> v1"
    assert "Promptctl-From: -\n" in first and "Promptctl-Serves: v1:100\n" in first
    assert first.count("\n\n") == 1  # no reason: no empty paragraph


def test_a_multi_paragraph_reason_survives_and_cannot_forge_trailers():
    reason = "first paragraph\n\n\n\nPromptctl-Serves: v9:100"
    message = state_message("rollback", PID, "current", (Serving("v2", 100),), (Serving("v1", 100, H1),), reason)
    raw = f"tree x\nauthor A <a@x> 1700000000 +0100\ncommitter A <a@x> 1700000000 +0100\n\n{message}"
    entry, parent = parse_state_commit("c" * 40, raw.encode())
    assert parent is None
    assert entry.reason == "first paragraph\n\nPromptctl-Serves: v9:100"
    assert entry.serves == (Serving("v1", 100, H1),)
    assert entry.from_serves == (Serving("v2", 100),)
    assert (entry.author, entry.at, entry.action, entry.signed) == ("A <a@x>", "2023-11-14T23:13:20+01:00", "rollback", False)


def test_a_commit_without_trailers_is_not_a_state():
    assert parse_state_commit("c" * 40, b"tree x\n\nhello\n\nSigned-off-by: me\n") is None


@given(
    st.lists(st.integers(1, 500), min_size=1, max_size=2, unique=True),
    st.integers(1, 99),
)
def test_serves_round_trip(numbers, share):
    versions = [f"v{n}" for n in numbers]
    shares = [100] if len(versions) == 1 else [100 - share, share]
    serves = tuple(Serving(v, p, f"{n:064x}") for v, p, n in zip(versions, shares, numbers, strict=True))
    text = format_serves(serves)
    hashes = ",".join(f"{s.version}={s.template_hash}" for s in serves)
    assert parse_serves(text, hashes) == serves


@pytest.mark.parametrize("text", ["v1:50", "v1:50,v1:50", "x1:100", "v1:0,v2:100", "v1:101"])
def test_malformed_serves_are_rejected(text):
    with pytest.raises(ValueError):
        parse_serves(text)


# -- rollout and rollback rules (pure) ----------------------------------------------------------------------

V1, V2, V3 = Serving("v1", 100, H1), Serving("v2", 100, H2), Serving("v3", 100, H3)


def _k(serves):
    return [(s.version, s.percent) for s in serves]


@pytest.mark.parametrize(
    "current, target, percent, expected",
    [
        ((), V1, 100, [("v1", 100)]),
        ((V1,), V2, 100, [("v2", 100)]),
        ((V1,), V2, 5, [("v1", 95), ("v2", 5)]),
        ((V1,), V1, 5, [("v1", 100)]),  # already served in full: no-op
        ((Serving("v1", 95), Serving("v2", 5)), V2, 50, [("v1", 50), ("v2", 50)]),
        ((Serving("v1", 50), Serving("v2", 50)), V2, 10, [("v1", 90), ("v2", 10)]),  # ramp down is allowed
        ((Serving("v1", 95), Serving("v2", 5)), V2, 5, [("v1", 95), ("v2", 5)]),  # no-op
        ((Serving("v1", 95), Serving("v2", 5)), V2, 100, [("v2", 100)]),  # completes the rollout
        ((Serving("v1", 95), Serving("v2", 5)), V3, 10, [("v1", 90), ("v3", 10)]),  # replaces the canary
        ((Serving("v1", 95), Serving("v2", 5)), V3, 100, [("v3", 100)]),
        ((Serving("v1", 95), Serving("v2", 5)), V1, 100, [("v1", 100)]),  # ends the rollout on its base
    ],
)
def test_plan_promote(current, target, percent, expected):
    assert _k(plan_promote(current, target, percent)) == expected


def test_plan_promote_refusals():
    with pytest.raises(errors.Refused, match="no base to split with"):
        plan_promote((), V1, 5)
    with pytest.raises(errors.Refused, match="rollout base"):
        plan_promote((Serving("v1", 95), Serving("v2", 5)), V1, 50)
    with pytest.raises(errors.UsageError):
        plan_promote((V1,), V2, 0)


def _entry(action, *serves):
    return AuditEntry(PID, "current", action, (), tuple(Serving(v, p) for v, p in serves), "", "", "", "c")


def _newest_first(*entries):
    return list(reversed(entries))


def test_rollback_target_is_the_version_before_the_last_move():
    log = _newest_first(_entry("promote", ("v1", 100)), _entry("promote", ("v2", 100)), _entry("promote", ("v3", 100)))
    assert rollback_target(log, (Serving("v3", 100),)) == "v2"
    # promoting an older version again: rollback returns to what was served just before
    log = _newest_first(_entry("promote", ("v1", 100)), _entry("promote", ("v2", 100)), _entry("promote", ("v1", 100)))
    assert rollback_target(log, (Serving("v1", 100),)) == "v2"


def test_repeated_rollbacks_keep_going_back_and_never_return_forward():
    log = [_entry("promote", ("v1", 100)), _entry("promote", ("v2", 100)), _entry("promote", ("v3", 100))]
    log.append(_entry("rollback", ("v2", 100)))
    assert rollback_target(list(reversed(log)), (Serving("v2", 100),)) == "v1"
    log.append(_entry("rollback", ("v1", 100)))
    with pytest.raises(errors.NoEarlierVersion, match=r"v1 is the first version it served; .*\(v2, v3\)"):
        rollback_target(list(reversed(log)), (Serving("v1", 100),))


def test_rollback_after_a_completed_rollout_returns_to_its_base():
    log = _newest_first(
        _entry("promote", ("v1", 100)),
        _entry("promote", ("v1", 95), ("v2", 5)),
        _entry("promote", ("v1", 50), ("v2", 50)),
        _entry("promote", ("v2", 100)),
    )
    assert rollback_target(log, (Serving("v2", 100),)) == "v1"
    # during a rollout: its base, whatever the log says
    assert rollback_target(log[1:], (Serving("v1", 50), Serving("v2", 50))) == "v1"


def test_rollback_with_only_one_version_served():
    with pytest.raises(errors.NoEarlierVersion, match="v1 is the first version it served"):
        rollback_target([_entry("promote", ("v1", 100))], (Serving("v1", 100),))


# -- the store on a real repository -------------------------------------------------------------------------


def test_promote_writes_a_state_commit_on_the_channel_ref(store):
    entry = store.promote(PID, "v2", reason="fixes refund intent")
    assert entry.serves[0].version == "v2" and len(entry.serves[0].template_hash) == 64
    assert entry.author == "Test Author <author@example.com>" and entry.reason == "fixes refund intent"
    ref = f"refs/promptctl/channels/{PID}/current"
    assert git(store.root, "rev-parse", ref).strip() == entry.commit
    assert git(store.root, "cat-file", "-p", f"{entry.commit}^{{tree}}") == ""  # the empty tree
    state = store.state(PID)
    assert state.primary.version == "v2" and state.ref_oid == entry.commit and state.last_move == entry
    assert store.repo.resolve(f"{PID}@current").version == "v2"
    assert store.promote(PID, "v2") is None  # already served: no-op, no new commit
    assert git(store.root, "rev-parse", ref).strip() == entry.commit


def test_history_is_newest_first_with_hashes_of_both_sides(store):
    store.promote(PID, "v1")
    store.promote(PID, "v2", channel="staging")
    store.promote(PID, "v2", percent=10, reason="canary")
    store.promote(PID, "v2")
    log = store.history(PID, "current")
    assert [e.serves[-1].version for e in log] == ["v2", "v2", "v1"]
    assert [(s.version, s.percent) for s in log[1].serves] == [("v1", 90), ("v2", 10)]
    assert [(s.version, s.percent) for s in log[0].from_serves] == [("v1", 90), ("v2", 10)]
    assert all(s.template_hash for s in log[0].from_serves)  # filled from the parent's Serves-Hash
    assert [e.channel for e in store.history(PID)].count("staging") == 1
    assert len(store.history(PID)) == 4
    states = store.all_states()
    assert [(s.prompt_id, s.channel) for s in states] == [(PID, "current"), (PID, "staging")]
    assert store.states("ticket_summarizer") == []


def test_rollback_is_an_audited_move(store):
    store.promote(PID, "v1")
    store.promote(PID, "v3", reason="new")
    entry = store.rollback(PID, reason="drift on citation rubric")
    assert entry.action == "rollback" and entry.serves[0].version == "v1" and entry.from_serves[0].version == "v3"
    assert store.history(PID)[0] == entry
    assert store.rollback(PID, to="v2").serves[0].version == "v2"
    with pytest.raises(errors.NothingChanged):
        store.rollback(PID, to="v2")


def test_errors_change_nothing(store):
    store.promote(PID, "v1")
    before = refs_snapshot(store.root)
    cases = [
        (lambda: store.promote(PID, "v9"), errors.UnknownVersion),
        (lambda: store.promote("nope", "v1"), errors.UnknownPrompt),
        (lambda: store.promote(PID, "v2", channel="Prod"), errors.InvalidChannelName),
        (lambda: store.promote(PID, "v2", percent=101), errors.UsageError),
        (lambda: store.promote(PID, "v2", channel="production"), errors.ReasonRequired),
        (lambda: store.rollback(PID), errors.NoEarlierVersion),
        (lambda: store.rollback(PID, channel="staging"), errors.UnknownChannel),
        (lambda: store.state(PID, "staging"), errors.UnknownChannel),
        (lambda: store.history(PID, "staging"), errors.UnknownChannel),
    ]
    for call, kind in cases:
        with pytest.raises(kind):
            call()
    assert refs_snapshot(store.root) == before


# -- signing ------------------------------------------------------------------------------------------------

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


def _require_signed(repo: Path, channel: str) -> None:
    config = repo / "promptctl.yaml"
    config.write_text(config.read_text().replace("require_signed: []", f"require_signed: [{channel}]"))


@needs_ssh_keygen
def test_signed_promotion_with_an_ssh_key(versioned_repo, tmp_path):
    key = tmp_path / "keys" / "signer"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", str(key)], check=True)
    allowed = tmp_path / "keys" / "allowed_signers"
    allowed.write_text(f'author@example.com namespaces="git" {key.with_suffix(".pub").read_text().strip()}\n')
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", str(key)), ("gpg.ssh.allowedSignersFile", str(allowed))):
        git(versioned_repo, "config", name, value)
    _require_signed(versioned_repo, "production")
    store = ChannelStore(PromptRepo.open(versioned_repo))

    signed = store.promote(PID, "v1", channel="production", reason="release")
    assert signed.signed
    assert "gpgsig" in git(versioned_repo, "cat-file", "commit", signed.commit)
    with pytest.raises(errors.SignatureRequired):
        store.promote(PID, "v1", channel="production", reason="x", sign=False)
    unsigned = store.promote(PID, "v1", channel="staging")  # not required, commit.gpgsign false: unsigned
    assert not unsigned.signed

    checks = verify_signatures(store.repo)
    assert [(c.channel, c.status, c.ok) for c in checks] == [("production", "good", True)]
    assert checks[0].key.startswith("SHA256:")
    staging = store.verify_signatures(PID, channels=["staging"])
    assert [(c.status, c.ok) for c in staging] == [("unsigned", False)]

    # a key the allowed-signers file does not know: the signature does not verify
    other = tmp_path / "keys" / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "other", "-f", str(other)], check=True)
    git(versioned_repo, "config", "user.signingkey", str(other))
    add_versions(versioned_repo, 1)
    store.promote(PID, "v2", channel="production", reason="second")
    checks = store.verify_signatures(PID)
    assert [c.ok for c in checks] == [False, True]
    assert checks[0].status == "untrusted-key"  # validly signed, but not by an allowed signer
    assert [c.ok for c in store.verify_signatures(PID, latest_only=True)] == [False]


def test_unsigned_promotion_where_signing_is_required_is_refused(versioned_repo, tmp_path):
    _require_signed(versioned_repo, "production")
    git(versioned_repo, "config", "gpg.format", "ssh")  # and no user.signingkey: signing cannot work
    store = ChannelStore(PromptRepo.open(versioned_repo))
    before = refs_snapshot(versioned_repo)
    with pytest.raises(errors.SignatureRequired, match="could not sign"):
        store.promote(PID, "v1", channel="production", reason="release")
    assert refs_snapshot(versioned_repo) == before

"""promptctl which: a hash seen on a span back to the versions that recorded it, through the real CLI."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import pytest
from conftest import EXAMPLES, GIT_IDENTITY, git, init_git_repo, run_cli

from promptctl.errors import UsageError
from promptctl.provenance.which import normalize_query, which
from promptctl.registry import PromptRepo


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The example registry with every prompt at v1, built once; tests only read it."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_IDENTITY.items():
            mp.setenv(key, value)
        repo = init_git_repo(tmp_path_factory.mktemp("which") / "repo")
        shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
        shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "add prompts")
        assert run_cli(repo, "commit", "--all", "-m", "first release").returncode == 0
    return repo


def _hash(repo, prompt_id: str) -> str:
    proc = run_cli(repo, "hash", prompt_id, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]["template_hash"]


def _which(repo, *args):
    return run_cli(repo, "which", *args)


def _refs_and_status(repo) -> tuple[str, str]:
    return git(repo, "for-each-ref"), git(repo, "status", "--porcelain")


def test_span_short_hash_names_prompt_version_tag_commit_author_date_and_files(released):
    full = _hash(released, "support_reply")
    proc = _which(released, full[:12], "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["query"] == full[:12] and data["ambiguous"] is False
    [match] = data["matches"]
    assert match["id"] == "support_reply" and match["version"] == "v1" and match["tag"] == "support_reply/v1"
    assert match["template_hash"] == full
    assert match["commit"] == git(released, "rev-parse", "support_reply/v1^{commit}").strip()
    assert match["author"] == "Test Author <author@example.com>"
    assert datetime.fromisoformat(match["created_at"]).tzinfo is not None
    # the files the hash covers: metadata, the body, and the partial it includes
    assert match["files"] == [
        "prompts/support_reply/prompt.yaml",
        "prompts/support_reply/body.j2",
        "prompts/_partials/tone.j2",
    ]
    text = _which(released, full[:12])
    assert text.returncode == 0
    assert "support_reply/v1" in text.stdout and full in text.stdout and "prompts/_partials/tone.j2" in text.stdout


def test_full_digest_eight_digits_and_upper_case_all_find_it(released):
    full = _hash(released, "ticket_summarizer")
    repo = PromptRepo.open(released)
    for query in (full, full[:8], full[:12].upper()):
        assert [m.version.tag for m in which(repo, query)] == ["ticket_summarizer/v1"], query
    proc = _which(released, full[:8].upper(), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["matches"][0]["tag"] == "ticket_summarizer/v1"


def test_content_that_came_back_in_a_later_version_lists_every_version(versioned_repo):
    body = versioned_repo / "prompts/ticket_summarizer/body.j2"
    original = body.read_text()
    body.write_text(original + "\nBe brief.\n")
    assert run_cli(versioned_repo, "commit", "ticket_summarizer", "-m", "brief").returncode == 0
    body.write_text(original)
    assert run_cli(versioned_repo, "commit", "ticket_summarizer", "-m", "back to v1").returncode == 0
    full = _hash(versioned_repo, "ticket_summarizer")
    proc = _which(versioned_repo, full[:12], "--json")
    assert proc.returncode == 0, proc.stderr
    assert [m["tag"] for m in json.loads(proc.stdout)["matches"]] == ["ticket_summarizer/v1", "ticket_summarizer/v3"]
    text = _which(versioned_repo, full[:12])
    assert "released 2 times: ticket_summarizer/v1, ticket_summarizer/v3" in text.stdout


def test_same_content_under_two_prompts_lists_both(versioned_repo):
    shutil.copytree(versioned_repo / "prompts/ticket_summarizer", versioned_repo / "prompts/ticket_summarizer_eu")
    git(versioned_repo, "add", "-A")
    git(versioned_repo, "commit", "-q", "-m", "copy")
    assert run_cli(versioned_repo, "commit", "ticket_summarizer_eu", "-m", "eu copy").returncode == 0
    full = _hash(versioned_repo, "ticket_summarizer")
    data = json.loads(_which(versioned_repo, full[:12], "--json").stdout)
    assert sorted(m["tag"] for m in data["matches"]) == ["ticket_summarizer/v1", "ticket_summarizer_eu/v1"]


def test_unknown_hash_exits_3_with_one_line_and_changes_nothing(released):
    before = _refs_and_status(released)
    proc = _which(released, "0123456789ab")
    assert proc.returncode == 3
    assert proc.stderr == "promptctl: error: no version has template hash 0123456789ab (searched 3 versions of 3 prompts)\n"
    assert proc.stdout == ""
    assert _refs_and_status(released) == before


def test_unknown_hash_of_an_uncommitted_edit_says_where_it_lives(versioned_repo):
    body = versioned_repo / "prompts/support_reply/body.j2"
    body.write_text(body.read_text() + "\nPS: hand-patched.\n")
    edited = _hash(versioned_repo, "support_reply")
    before = _refs_and_status(versioned_repo)
    proc = _which(versioned_repo, edited[:12])
    assert proc.returncode == 3
    assert "uncommitted working tree of prompts/support_reply" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert _refs_and_status(versioned_repo) == before


def test_invalid_hash_is_a_usage_error(released):
    before = _refs_and_status(released)
    for bad in ("abc123", "not-a-hash", "g" * 12, "a" * 65, ""):
        with pytest.raises(UsageError, match="8 to 64 hex digits"):
            normalize_query(bad)
    proc = _which(released, "abc123")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "promptctl: error: invalid template hash 'abc123': give 8 to 64 hex digits "
        "(the 12-digit prompt.template_hash of a span, or a full digest)\n"
    )
    assert _refs_and_status(released) == before


def test_ambiguous_prefix_lists_candidates_and_exits_2(versioned_repo):
    full = _hash(versioned_repo, "support_reply")
    # A second version whose recorded hash shares the first 10 digits (a collision nobody can make by editing,
    # so the tag is written by hand, as a foreign tool or a forged tag would).
    twin = full[:10] + ("0" if full[10] != "0" else "1") + full[11:]
    commit = git(versioned_repo, "rev-parse", "HEAD").strip()
    message = f"twin\n\nPromptctl-Prompt: support_reply\nPromptctl-Version: v2\nPromptctl-Template-Hash: {twin}\n"
    git(versioned_repo, "tag", "-a", "support_reply/v2", commit, "-m", message)
    before = _refs_and_status(versioned_repo)

    proc = _which(versioned_repo, full[:10], "--json")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ambiguous"] is True
    assert sorted(m["template_hash"] for m in data["matches"]) == sorted([full, twin])
    assert proc.stderr.startswith(f"promptctl: error: template hash prefix {full[:10]} is ambiguous: 2 different contents")
    assert len(proc.stderr.splitlines()) == 1
    text = _which(versioned_repo, full[:10])
    assert text.returncode == 2 and "support_reply/v1" in text.stdout and "support_reply/v2" in text.stdout
    # one more digit settles it
    settled = _which(versioned_repo, full[:12], "--json")
    assert settled.returncode == 0
    assert [m["tag"] for m in json.loads(settled.stdout)["matches"]] == ["support_reply/v1"]
    assert _refs_and_status(versioned_repo) == before


def test_no_versions_yet_is_unknown(example_repo):
    proc = _which(example_repo, "deadbeefdead")
    assert proc.returncode == 3
    assert "searched 0 versions of 0 prompts" in proc.stderr

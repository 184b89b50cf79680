"""Helpers for the runtime tests: channel moves written in the documented state-commit format.

``promote()`` writes a state commit exactly as docs/design.md describes (through gitstore, compare-and-swap),
so the loader is tested against the format rather than against another module's code. Runnable as a script
so a test can move a channel from another process:
``python tests/test_runtime_support.py REPO ID CHANNEL v2[:95,v3:5]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptctl import gitstore  # noqa: E402
from promptctl.spec import channel_ref  # noqa: E402


def version_hashes(repo: Path, prompt_id: str) -> dict[str, str]:
    rows = gitstore.for_each_ref(repo, [f"refs/tags/{prompt_id}/"], ["refname", "contents"])
    hashes = {}
    for refname, contents in rows:
        trailers = gitstore.parse_trailers(contents)
        hashes[refname.rsplit("/", 1)[1]] = trailers["Promptctl-Template-Hash"]
    return hashes


def promote(repo: Path, prompt_id: str, channel: str, serves: str, reason: str = "test move") -> str:
    """Point ``channel`` at a new state commit serving ``serves`` ("v2" or "v1:90,v2:10"); returns its id."""
    ref = channel_ref(prompt_id, channel)
    old = gitstore.rev_parse(repo, ref)
    parts = [p.split(":") for p in serves.split(",")]
    serves_text = ",".join(f"{p[0]}:{p[1] if len(p) > 1 else 100}" for p in parts)
    hashes = version_hashes(repo, prompt_id)
    serves_hash = ",".join(f"{p[0]}={hashes[p[0]]}" for p in parts)
    from_text = "-"
    if old:
        obj = gitstore.output(["cat-file", "commit", old], repo)
        from_text = gitstore.parse_trailers(obj.split("\n\n", 1)[1]).get("Promptctl-To", "-")
    message = (
        f"promote {prompt_id}@{channel}: {from_text} -> {serves}\n\n{reason}\n\n"
        f"Promptctl-Action: promote\nPromptctl-Prompt: {prompt_id}\nPromptctl-Channel: {channel}\n"
        f"Promptctl-From: {from_text}\nPromptctl-To: {serves}\nPromptctl-Serves: {serves_text}\n"
        f"Promptctl-Serves-Hash: {serves_hash}\n"
    )
    commit = gitstore.commit_tree(repo, gitstore.EMPTY_TREE, [old] if old else [], message)
    gitstore.update_ref(repo, ref, commit, old, f"promptctl: promote {prompt_id}@{channel}")
    return commit


def promote_in_subprocess(repo: Path, prompt_id: str, channel: str, serves: str) -> None:
    proc = subprocess.run(
        [sys.executable, __file__, str(repo), prompt_id, channel, serves], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def new_version(repo: Path, prompt_id: str, body: str, message: str = "change") -> None:
    """Edit a prompt's body.j2 and make the next version through the real CLI."""
    from conftest import run_cli

    (repo / "prompts" / prompt_id / "body.j2").write_text(body)
    proc = run_cli(repo, "commit", prompt_id, "-m", message)
    assert proc.returncode == 0, proc.stderr


V2_BODY = """You label customer support messages (VERSION TWO).
{% include "_partials/intents.j2" %}
Answer with the intent label only.

Message: {{ message }}
Intent:
"""


@pytest.fixture(scope="session")
def runtime_template(tmp_path_factory) -> Path:
    """Built once: the example registry at v1, support_intent_classifier also at v2, and some channels."""
    import os

    from conftest import EXAMPLES, GIT_IDENTITY, git, init_git_repo, run_cli

    os.environ.update(GIT_IDENTITY)  # session scope: the per-test identity fixture has not run yet
    repo = init_git_repo(tmp_path_factory.mktemp("runtime") / "repo")
    shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add prompts")
    proc = run_cli(repo, "commit", "--all", "-m", "first release")
    assert proc.returncode == 0, proc.stderr
    new_version(repo, "support_intent_classifier", V2_BODY, "v2")
    for prompt_id in ("support_intent_classifier", "ticket_summarizer", "support_reply"):
        promote(repo, prompt_id, "current", "v1")
    promote(repo, "support_intent_classifier", "production", "v1")
    promote(repo, "support_intent_classifier", "experiment-b", "v2")
    return repo


@pytest.fixture
def runtime_repo(runtime_template, tmp_path) -> Path:
    """A private copy of the runtime template repository (tests move its channels freely)."""
    target = tmp_path / "rt"
    shutil.copytree(runtime_template, target, symlinks=True)
    return target


def test_promote_writes_the_documented_trailers(versioned_repo):
    promote(versioned_repo, "ticket_summarizer", "production", "v1")
    message = gitstore.output(["log", "-1", "--format=%B", channel_ref("ticket_summarizer", "production")], versioned_repo)
    trailers = gitstore.parse_trailers(message)
    assert trailers["Promptctl-Serves"] == "v1:100"
    assert trailers["Promptctl-Serves-Hash"] == f"v1={version_hashes(versioned_repo, 'ticket_summarizer')['v1']}"


if __name__ == "__main__":
    promote(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])

"""The published pre-commit hooks, run by the real ``pre-commit`` tool against a scratch application repository.

pre-commit clones this repository (a Git repository made from the current tree), builds a virtualenv and
``pip install``s promptctl into it (PyPI or the machine's configured index), once per test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, GIT_IDENTITY, ROOT, git, init_git_repo, run_cli

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
SOURCE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml")

pytestmark = pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is not installed in this environment")


@pytest.fixture(scope="session")
def hooks_repo(tmp_path_factory) -> tuple[Path, str]:
    """A Git repository holding the current tree's promptctl (package, pyproject, hooks manifest); its sha."""
    source = tmp_path_factory.mktemp("promptctl-hooks") / "promptctl"
    source.mkdir()
    for name in SOURCE_FILES:
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "promptctl", source / "promptctl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "promptctl"]):
        subprocess.run(["git", *args], cwd=source, check=True, capture_output=True, env=env)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, check=True, capture_output=True, text=True, env=env)
    return source, sha.stdout.strip()


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def run_pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **GIT_IDENTITY,
        "PRE_COMMIT_HOME": str(home),
        "PRE_COMMIT_COLOR": "never",
        "NO_COLOR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(PRE_COMMIT), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def app_repo(tmp_path, hooks_repo) -> Path:
    """An application repository with the example registry at v1 and the hooks configured from a local path."""
    source, sha = hooks_repo
    repo = init_git_repo(tmp_path / "app")
    shutil.copy(EXAMPLES / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(EXAMPLES / "prompts", repo / "prompts")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n"
        f"  - repo: {source}\n"
        f"    rev: {sha}\n"
        f"    hooks:\n"
        f"      - id: promptctl-verify\n"
        f"      - id: promptctl-lint\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app with prompts")
    proc = run_cli(repo, "commit", "--all", "-m", "first release")
    assert proc.returncode == 0, proc.stderr
    return repo


def test_hooks_pass_on_a_clean_registry_and_block_a_broken_template(app_repo, pre_commit_home):
    passed = run_pre_commit(app_repo, pre_commit_home, "run", "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "promptctl verify" in passed.stdout and "promptctl lint" in passed.stdout
    assert "Failed" not in passed.stdout

    installed = run_pre_commit(app_repo, pre_commit_home, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    head = git(app_repo, "rev-parse", "HEAD")
    body = app_repo / "prompts/ticket_summarizer/body.j2"
    body.write_text("Summarise {{ thread }\n{{ max_bullets }}\n")
    git(app_repo, "add", "prompts/ticket_summarizer/body.j2")
    env = {**os.environ, **GIT_IDENTITY, "PRE_COMMIT_HOME": str(pre_commit_home), "PRE_COMMIT_COLOR": "never"}
    refused = subprocess.run(
        ["git", "commit", "-m", "broken template"], cwd=app_repo, capture_output=True, text=True, env=env, timeout=600
    )
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "promptctl verify" in output and "Failed" in output
    assert "prompts/ticket_summarizer/body.j2:1: PC031 template syntax error" in output
    assert git(app_repo, "rev-parse", "HEAD") == head  # nothing was committed

    body.write_text("Summarise {{ thread }} in at most {{ max_bullets }} bullet points.\n")
    git(app_repo, "add", "prompts/ticket_summarizer/body.j2")
    fixed = subprocess.run(["git", "commit", "-m", "fixed"], cwd=app_repo, capture_output=True, text=True, env=env, timeout=600)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr

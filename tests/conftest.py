"""Shared fixtures: real Git repositories in temp dirs and a real subprocess runner for the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example-prompts"

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch):
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("PROMPTCTL_REPO", raising=False)


@pytest.fixture(autouse=True)
def _reset_span_options():
    """``promptctl.instrument()`` sets process-wide span options; every test starts from the defaults."""
    yield
    prompt_module = sys.modules.get("promptctl.runtime.prompt")
    if prompt_module is not None:
        prompt_module.OPTIONS.configure(None, False, False, False)


def instrumented_provider():
    """A real OpenTelemetry SDK provider with promptctl's span processor and an in-memory exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import promptctl

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    promptctl.instrument(provider)
    return provider, exporter


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_IDENTITY})
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def run_cli(cwd: Path, *args: str, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real ``promptctl`` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "promptctl.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **GIT_IDENTITY, "NO_COLOR": "1", **(env or {})},
    )


def init_git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Author")
    git(path, "config", "user.email", "author@example.com")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty Git repository with one commit on main."""
    repo = init_git_repo(tmp_path / "repo")
    (repo / "README.md").write_text("app\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def example_repo(git_repo: Path) -> Path:
    """A Git repository holding a copy of example-prompts/, committed but not yet versioned."""
    shutil.copy(EXAMPLES / "promptctl.yaml", git_repo / "promptctl.yaml")
    shutil.copytree(EXAMPLES / "prompts", git_repo / "prompts")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "add prompts")
    return git_repo


@pytest.fixture
def versioned_repo(example_repo: Path) -> Path:
    """The example registry with every prompt at v1 (committed in-process: one CLI start-up less per test;
    the CLI's own commit is tested in test_cli_registry.py)."""
    from promptctl.registry import PromptRepo

    repo = PromptRepo.open(example_repo)
    repo.commit(repo.prompt_ids(), "first release")
    repo.close()
    return example_repo


def stop_with_sigint(proc: subprocess.Popen, timeout: float = 10) -> int:
    """Stop a ``--watch`` style subprocess as Ctrl-C would; its exit code (killed and re-raised on a hang)."""
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise

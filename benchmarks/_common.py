"""Helpers the benchmark scripts share: a Git identity, a scratch repository, best-of-N timing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

IDENT = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def scratch_repo(repo: Path) -> tuple[Callable[..., None], Callable[..., None]]:
    """``git init`` a new repository at ``repo``; returns ``git(*args)`` and ``cli(*args)`` runners for it
    (``cli`` runs the real promptctl CLI and stops the benchmark with its error when it fails)."""
    repo.mkdir(parents=True)
    env = {**os.environ, **IDENT}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    def cli(*args: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "promptctl.cli.main", *args], cwd=repo, env=env, capture_output=True, text=True
        )
        if proc.returncode:
            raise SystemExit(f"promptctl {' '.join(args)} failed: {proc.stderr}")

    git("init", "-q", "-b", "main")
    git("config", "commit.gpgsign", "false")
    return git, cli


def best_of(repeat: int, fn: Callable, *args):
    """(fastest wall time in seconds over ``repeat`` calls, the last call's result)."""
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - began)
    return min(times), result

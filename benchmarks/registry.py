"""Registry speed at scale: 1,000 prompts x 20 versions (20,000 version tags), side by side with raw git.

Every figure is the wall time of a whole process (Python start-up included), the median of several runs,
with the runs of the different commands interleaved so a busy machine slows them all alike:

* ``promptctl list --json`` and ``promptctl log <id> --json`` against the raw ``git for-each-ref`` that lists
  the same tags with the same fields (targets: within 2x);
* ``promptctl commit <id> -m ...`` of one changed prompt (target: under 0.5 s), next to the plain-git steps
  a careful user would type for the same result (add, commit, annotated tag);
* ``promptctl --help`` (target: under 150 ms) next to ``python -c pass``.

    .venv/bin/python benchmarks/registry.py [--runs 9] [--commits 5] [--prompts 1000] [--versions 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from scale_registry import WORK, build_scale_registry, prompt_id  # noqa: E402

TAG_FORMAT = "%(refname)%00%(objectname)%00%(*objectname)%00%(taggername)%00%(taggeremail)%00%(taggerdate:iso-strict)%00%(contents)%00"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed promptctl runs from byte-code, as users run it
    env.update(
        NO_COLOR="1",
        GIT_AUTHOR_NAME="Bench User",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench User",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    return env


def promptctl_command() -> list[str]:
    script = Path(sys.executable).parent / "promptctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "promptctl.cli.main"]


CPU: dict[str, list[float]] = {}  # command -> CPU seconds (user + sys, git children included) per run


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True, key: str | None = None) -> tuple[float, bytes]:
    cpu = child_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if key is not None:
        CPU.setdefault(key, []).append(child_cpu() - cpu)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return elapsed, proc.stdout


def measure(commands: dict[str, list[str]], cwd: Path, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Round-robin runs of every command (after one warm-up each); seconds per run."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():
        timed(cmd, cwd, env)
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, cwd, env, key=name)[0])
    return times


def measure_commits(repo: Path, env: dict[str, str], commits: int, promptctl: list[str]) -> tuple[list[float], list[float]]:
    """``promptctl commit`` of one changed prompt, and the same by hand with plain git (add, commit, tag -a)."""
    ours: list[float] = []
    by_hand: list[float] = []
    for round_ in range(commits):
        for index, sink in ((round_ * 2, ours), (round_ * 2 + 1, by_hand)):
            pid = prompt_id(index)
            body = repo / "prompts" / pid / "body.j2"
            with body.open("a", encoding="utf-8") as handle:
                handle.write(f"Benchmark change {round_}.\n")
            if sink is ours:
                sink.append(timed([*promptctl, "commit", pid, "-m", f"bench change {round_}"], repo, env, key="commit")[0])
                continue
            cpu = child_cpu()
            start = time.perf_counter()
            for cmd in (
                ["git", "add", "--", f"prompts/{pid}"],
                ["git", "commit", "-q", "-m", f"bench change {round_}", "--", f"prompts/{pid}"],
                ["git", "tag", "-a", "-m", f"bench change {round_}", f"{pid}/v21"],
            ):
                subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
            sink.append(time.perf_counter() - start)
            CPU.setdefault("by-hand", []).append(child_cpu() - cpu)
    return ours, by_hand


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    repo = build_scale_registry(WORK / "registry-bench", args.prompts, args.versions)
    built = time.perf_counter() - start
    env = child_env()
    promptctl = promptctl_command()
    target = prompt_id(args.prompts // 2)
    tags = args.prompts * args.versions

    # Outputs agree before anything is timed.
    listed = json.loads(timed([*promptctl, "list", "--json"], repo, env)[1])
    logged = json.loads(timed([*promptctl, "log", target, "--json"], repo, env)[1])
    raw_all = timed(["git", "for-each-ref", f"--format={TAG_FORMAT}", "refs/tags/"], repo, env)[1]
    assert len(listed) == args.prompts and all(e["versions"] == args.versions for e in listed), "list disagrees"
    assert [e["version"] for e in logged] == [f"v{n}" for n in range(args.versions, 0, -1)], "log disagrees"
    assert raw_all.count(b"\0\n") == tags, "git lists a different number of tags"

    def python_git(pattern: str) -> list[str]:
        """The same for-each-ref run from a bare Python script: the floor for any Python CLI (start-up included)."""
        code = (
            "import subprocess, sys; "
            f"sys.stdout.buffer.write(subprocess.run(['git', 'for-each-ref', {('--format=' + TAG_FORMAT)!r}, "
            f"{pattern!r}], capture_output=True, check=True).stdout)"
        )
        return [sys.executable, "-c", code]

    one = f"refs/tags/{target}/"
    commands = {
        "git-all": ["git", "for-each-ref", f"--format={TAG_FORMAT}", "refs/tags/"],
        "py-git-all": python_git("refs/tags/"),
        "list": [*promptctl, "list", "--json"],
        "git-one": ["git", "for-each-ref", f"--format={TAG_FORMAT}", one],
        "py-git-one": python_git(one),
        "log": [*promptctl, "log", target, "--json"],
        "python": [sys.executable, "-c", "pass"],
        "help": [*promptctl, "--help"],
    }
    times = measure(commands, repo, env, args.runs)
    commit_times, by_hand = measure_commits(repo, env, args.commits, promptctl)
    med = {name: statistics.median(values) for name, values in times.items()}
    med["commit"] = statistics.median(commit_times)
    med["by-hand"] = statistics.median(by_hand)
    best = {name: min(values) for name, values in times.items()} | {"commit": min(commit_times), "by-hand": min(by_hand)}

    def ratio(a: str, b: str) -> str:
        return f"{med[a] / med[b]:.2f}x"

    rows = [
        ("git for-each-ref refs/tags/ (20,000 tags, same fields)", "git-all", "", "", None),
        ("python -c 'run that for-each-ref' (start-up included)", "py-git-all", ratio("py-git-all", "git-all"), "", None),
        ("promptctl list --json", "list", f"{ratio('list', 'git-all')} / {ratio('list', 'py-git-all')}", "<= 2x", med["list"] <= 2 * med["git-all"]),
        (f"git for-each-ref {one} (20 tags)", "git-one", "", "", None),
        ("python -c 'run that for-each-ref' (start-up included)", "py-git-one", ratio("py-git-one", "git-one"), "", None),
        (f"promptctl log {target} --json", "log", f"{ratio('log', 'git-one')} / {ratio('log', 'py-git-one')}", "<= 2x", med["log"] <= 2 * med["py-git-one"]),
        ("git add + git commit + git tag -a (by hand)", "by-hand", "", "", None),
        ("promptctl commit <id> -m (one changed prompt)", "commit", ratio("commit", "by-hand"), "< 500 ms", med["commit"] < 0.5),
        ("python -c pass", "python", "", "", None),
        ("promptctl --help", "help", ratio("help", "python"), "< 150 ms", med["help"] < 0.15),
    ]
    print(f"registry: {repo} ({args.prompts} prompts x {args.versions} versions = {tags} tags; ready in {built:.1f} s)")
    print(
        f"median of {args.runs} runs (commit: {args.commits}), whole processes incl. Python start-up; "
        f"min = fastest run; cpu = median user+sys of the process and its git children; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'command':<{width}}  {'median ms':>9}  {'min ms':>8}  {'cpu ms':>8}  {'ratio (vs git / vs python+git)':<30}  {'target':<8}  met")
    for label, key, shown, goal, ok in rows:
        flag = "" if ok is None else ("yes" if ok else "NO")
        cpu = ms(statistics.median(CPU[key])) if CPU.get(key) else ""
        print(f"{label:<{width}}  {ms(med[key]):>9}  {ms(best[key]):>8}  {cpu:>8}  {shown:<30}  {goal:<8}  {flag}")
    print("list: 2x of the bare git figure; log: 2x of the python+git figure (no Python CLI can start in 2x of a 3 ms git call).")
    shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()

"""promptctl promote vs the bare ``git update-ref`` it wraps, on the 20,000-tag registry.

    .venv/bin/python benchmarks/promote.py [--runs N] [--prompts 1000] [--versions 20]

Builds (or copies from the cache) the registry of ``benchmarks/scale_registry.py`` under benchmarks/.work/,
then times, interleaved round by round so machine noise hits every line alike:

* ``promptctl promote <id> v19|v20`` (the CLI in a subprocess, alternating versions so every run is a real
  audited move: tag lookup, state read, state commit, compare-and-swap);
* ``git update-ref <ref> <new> <old>``: the compare-and-swap alone, alternating two ready-made commits;
* ``python -c`` start-up + the same ``git update-ref`` (the floor for any Python CLI doing it);
* ``promptctl --help`` (the CLI's own start-up, no git) and the in-process ``ChannelStore.promote`` (no start-up).

Then it lists the git commands one promote runs (GIT_TRACE), to show that no call lists all 20,000 tags.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scale_registry import WORK, build_scale_registry, prompt_id  # noqa: E402

TARGET_S = 0.5


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "promptctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "promptctl.cli.main"]


def _env() -> dict[str, str]:
    return {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1", "LC_ALL": "C"}


CPU: dict[str, list[float]] = {}  # CPU seconds (user + sys) of the child processes, per line


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], cwd: Path, line: str = "") -> float:
    cpu = _cpu_children()
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, env=_env())
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    CPU.setdefault(line, []).append(_cpu_children() - cpu)
    return elapsed


def _git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, input=input, env=_env()).stdout.decode().strip()


def _traced_git_calls(repo: Path, pid: str, version: str) -> list[str]:
    trace = repo.parent / "promote-trace.txt"
    trace.unlink(missing_ok=True)
    subprocess.run(
        [*_cli(), "promote", pid, version, "--channel", "traced", "--reason", "trace"],
        cwd=repo, check=True, capture_output=True, env={**_env(), "GIT_TRACE": str(trace)},
    )
    calls = [line.split("trace: built-in: ", 1)[1] for line in trace.read_text().splitlines() if "trace: built-in: " in line]
    trace.unlink()
    return calls


def _row(label: str, samples: list[float], base: float, cpu: list[float]) -> str:
    med = statistics.median(samples)
    p90 = sorted(samples)[max(0, int(len(samples) * 0.9) - 1)]
    return (
        f"| {label:<52} | {med * 1000:>9.1f} | {p90 * 1000:>8.1f} | {min(samples) * 1000:>8.1f} "
        f"| {statistics.median(cpu) * 1000:>8.1f} | {med / base:>6.1f}x |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per line (median reported)")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    repo = build_scale_registry(WORK / "promote-bench", args.prompts, args.versions)
    tags = len(_git(repo, "for-each-ref", "--format=x", "refs/tags/").splitlines())
    print(f"registry: {repo} ({tags} version tags, ready in {time.perf_counter() - start:.1f} s)")

    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    pid = prompt_id(args.prompts // 2)
    versions = [f"v{args.versions - 1}", f"v{args.versions}"]
    store = ChannelStore(PromptRepo.open(repo))
    store.promote(pid, versions[1], reason="benchmark start")  # so the first timed run is a move, not a first move

    # The raw baseline: CAS a ref between two state commits, exactly the update the promote ends with.
    raw_ref = f"refs/promptctl/channels/{pid}/bench-raw"
    commits = [
        _git(repo, "commit-tree", "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "-m", f"raw {i}") for i in range(2)
    ]
    _git(repo, "update-ref", raw_ref, commits[1])
    python_cas = (
        "import subprocess,sys; subprocess.run(['git','update-ref',sys.argv[1],sys.argv[2],sys.argv[3]],check=True)"
    )

    samples: dict[str, list[float]] = {k: [] for k in ("promote", "raw", "python_raw", "help", "inproc")}
    for run in range(args.runs):
        new, old = commits  # raw moves the ref to new, python_raw moves it back: each round ends where it began
        samples["promote"].append(_timed([*_cli(), "promote", pid, versions[run % 2], "--reason", "bench"], repo, "promote"))
        samples["raw"].append(_timed(["git", "update-ref", raw_ref, new, old], repo, "raw"))
        samples["python_raw"].append(_timed([sys.executable, "-c", python_cas, raw_ref, old, new], repo, "python_raw"))
        samples["help"].append(_timed([*_cli(), "--help"], repo, "help"))
        cpu, t0 = time.process_time(), time.perf_counter()
        store.promote(pid, versions[run % 2], channel="bench-inproc")
        samples["inproc"].append(time.perf_counter() - t0)
        CPU.setdefault("inproc", []).append(time.process_time() - cpu + 0.0)
    history = store.history(pid, "current")
    assert len(history) == args.runs + 1, "every timed promote is a real, audited move"
    base = statistics.median(samples["raw"])

    cpus = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\npromote on {tags} tags, {args.runs} runs per line, interleaved; {cpus} CPUs, load average {load:.1f}\n")
    print(f"| {'command':<52} | {'median ms':>9} | {'p90 ms':>8} | {'min ms':>8} | {'CPU ms':>8} | {'vs raw':>7} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    lines = (
        ("raw", "git update-ref <ref> <new> <old>  (raw CAS)"),
        ("python_raw", "python start-up + git update-ref"),
        ("promote", "promptctl promote <id> v19|v20  (CLI, audited move)"),
        ("help", "  of which: promptctl --help (CLI start-up, no git)"),
        ("inproc", "  of which: ChannelStore.promote in-process"),
    )
    for key, label in lines:
        print(_row(label, samples[key], base, CPU[key]))
    med = statistics.median(samples["promote"])
    verdict = "meets" if med < TARGET_S else "MISSES"
    print(f"\npromote median {med * 1000:.0f} ms wall: {verdict} the target of {TARGET_S * 1000:.0f} ms per promote")
    print("(CPU ms = user + sys CPU time of the process: steadier than wall time when the machine is busy;")
    print(" the in-process line counts only this process, its git children are in the wall time)")

    calls = _traced_git_calls(repo, pid, versions[0])
    print(f"\ngit commands run by one promote ({len(calls)}; none lists all {tags} tags):")
    for call in calls:
        print(f"  {call[:110]}")
    store.repo.close()


if __name__ == "__main__":
    main()

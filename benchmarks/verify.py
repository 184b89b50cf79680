"""promptctl verify --all-versions on the 20,000-version registry, beside the raw Git read of the same objects.

    .venv/bin/python benchmarks/verify.py [--runs N] [--prompts 1000] [--versions 20] [--channels 50]

Builds (or copies from the cache) the registry of ``benchmarks/scale_registry.py`` under benchmarks/.work/,
moves ``--channels`` channels (two audited promotes each, so the channel checks have audit logs to walk), then
times, interleaved round by round so machine noise hits every line alike, each in a fresh process:

* raw: ``python`` start-up, one ``git for-each-ref`` listing the version tags with their commits, then one
  ``git cat-file --batch`` reading every version's prompt tree, every blob in those trees, and every partial
  the bodies include (the same objects verify reads), piped in batches, nothing parsed beyond tree entries;
* ``promptctl verify --all-versions``: integrity of all versions and channels + render checks of every version;
* ``promptctl verify``: integrity of all versions and channels + render checks of the working tree.

Target: verify --all-versions within 3x of the raw read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scale_registry import REGISTRY, WORK, build_scale_registry, prompt_id  # noqa: E402

TARGET = 3.0

RAW_READ = r'''
import re, subprocess, sys, threading
root, reg = sys.argv[1], sys.argv[2]
INCLUDE = re.compile(rb"""\{%-?\s*include\s+["']([^"']+)["']""")

def cat_file(proc, specs):
    """Pipe specs into one cat-file --batch (a writer thread, so the pipes never deadlock); [(type, data)]."""
    def write():
        proc.stdin.write(("\n".join(specs) + "\n").encode())
        proc.stdin.flush()
    writer = threading.Thread(target=write)
    writer.start()
    out = []
    for _ in specs:
        header = proc.stdout.readline().split()
        if header[1] == b"missing":
            out.append((b"missing", b""))
            continue
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)
        out.append((header[1], data))
    writer.join()
    return out

refs = subprocess.run(["git", "for-each-ref", "--format=%(*objectname) %(refname:strip=2)", "refs/tags/"],
                      cwd=root, capture_output=True, check=True).stdout.decode().split("\n")
versions = [line.split(" ", 1) for line in refs if line]
proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
trees = cat_file(proc, [f"{commit}:{reg}/{name.rsplit('/', 1)[0]}" for commit, name in versions])
blob_ids, per_version = {}, []
for _kind, data in trees:
    ids, pos = [], 0
    while pos < len(data):
        nul = data.index(b"\0", pos)
        ids.append(data[nul + 1 : nul + 21].hex())
        pos = nul + 21
    per_version.append(ids)
    blob_ids.update(dict.fromkeys(ids))
blobs = dict(zip(blob_ids, (data for _kind, data in cat_file(proc, list(blob_ids)))))
partials = {}
for (commit, _name), ids in zip(versions, per_version):
    for oid in ids:
        for include in INCLUDE.findall(blobs[oid]):
            partials[f"{commit}:{reg}/{include.decode()}"] = None
read = cat_file(proc, list(partials))
proc.stdin.close()
proc.wait()
print(len(versions), len(trees) + len(blobs) + len(read))
'''


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "promptctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "promptctl.cli.main"]


def _env() -> dict[str, str]:
    return {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1", "LC_ALL": "C"}


def _timed(args: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, env=_env())
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, proc.stdout.decode(errors="replace")


def _add_channels(repo: Path, count: int, versions: int) -> None:
    """Two audited promotes on ``count`` prompts' current channel (v<versions-1> then v<versions>)."""
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        store = ChannelStore(r)
        for index in range(count):
            for version in (versions - 1, versions):
                store.promote(prompt_id(index), f"v{max(version, 1)}")
    finally:
        r.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per line (median reported)")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--channels", type=int, default=50, help="prompts whose current channel is moved twice")
    args = parser.parse_args(argv)

    repo = build_scale_registry(WORK / "verify-bench", args.prompts, args.versions)
    os.environ.setdefault("GIT_AUTHOR_NAME", "Bench User")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "Bench User")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    _add_channels(repo, min(args.channels, args.prompts), args.versions)

    lines = {
        "raw: for-each-ref + cat-file --batch (python start-up)": ([sys.executable, "-c", RAW_READ, str(repo), REGISTRY], (0,)),
        "promptctl verify --all-versions": ([*_cli(), "verify", "--all-versions"], (0,)),
        "promptctl verify": ([*_cli(), "verify"], (0,)),
    }
    samples: dict[str, list[float]] = {label: [] for label in lines}
    outputs: dict[str, str] = {}
    for label, (command, codes) in lines.items():  # warm-up: page cache, pyc files
        outputs[label] = _timed(command, repo, codes)[1]
    for _ in range(args.runs):
        for label, (command, codes) in lines.items():
            samples[label].append(_timed(command, repo, codes)[0])

    versions, objects = outputs["raw: for-each-ref + cat-file --batch (python start-up)"].split()
    summary = outputs["promptctl verify --all-versions"].strip().splitlines()[-1]
    base = statistics.median(samples["raw: for-each-ref + cat-file --batch (python start-up)"])
    print(f"registry: {args.prompts} prompts x {args.versions} versions = {versions} version tags, "
          f"{min(args.channels, args.prompts)} channels; raw read = {objects} objects; {summary}")
    print(f"runs: {args.runs} per line, interleaved; load average {os.getloadavg()[0]:.1f} at the end\n")
    print(f"| {'what':<58} | {'median s':>8} | {'best s':>8} | {'vs raw':>7} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for label, values in samples.items():
        median = statistics.median(values)
        print(f"| {label:<58} | {median:>8.2f} | {min(values):>8.2f} | {median / base:>6.2f}x |")
    ratio = statistics.median(samples["promptctl verify --all-versions"]) / base
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"\nverify --all-versions is {ratio:.2f}x the raw read ({verdict} the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()

"""Build a large promptctl registry fast: 1,000 prompts x 20 versions = 20,000 annotated version tags.

The repository is a real Git repository exactly as repeated ``promptctl commit <id>...`` calls would leave it:
one commit per call holding only the named prompts' files (10 prompts per call by default), and one annotated
tag ``<id>/v<N>`` per prompt and version whose
message carries the ``Promptctl-*`` trailers (docs/design.md) and the template hash computed by
``promptctl.promptfile.load_prompt``. Everything is written in one ``git fast-import`` stream (seconds, not
the hours 20,000 CLI calls would take), then the refs are packed (as after a clone) and the working tree is
checked out at the tip.

A built copy is cached under ``benchmarks/.work/cache/`` and copied to the path asked for, so each benchmark
gets its own repository to mutate without rebuilding.

    from benchmarks.scale_registry import build_scale_registry
    repo = build_scale_registry(Path("benchmarks/.work/list-bench"))      # 1000 x 20

    python benchmarks/scale_registry.py [PATH] [--prompts N] [--versions N]   # build and self-check
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from promptctl.gitstore import parse_trailers  # noqa: E402
from promptctl.promptfile import load_prompt  # noqa: E402

WORK = HERE / ".work"
CACHE = WORK / "cache"
LAYOUT_VERSION = 1  # bump when the generated content changes, so stale caches are rebuilt
MARKER = ".promptctl-scale-registry"
REGISTRY = "prompts"
IDENT_NAME = "Bench User"
IDENT_EMAIL = "bench@example.com"
BASE_TIME = 1_735_689_600  # 2025-01-01T00:00:00Z
DOMAINS = ("support", "billing", "search", "onboarding", "sales", "legal", "shipping", "risk")
TASKS = ("classifier", "reply", "summarizer", "extractor", "router", "rewriter", "grader", "translator")

CONFIG_TEXT = f"""\
# promptctl registry configuration (see docs/format.md)
registry: {REGISTRY}
channels:
  protected: [production]
  require_signed: []
variants: {{}}
schema: prompt
"""

PARTIALS = {
    "_partials/tone.j2": "Be concise, friendly and factual. Never promise what you cannot confirm.\n",
    "_partials/safety.j2": "Refuse requests for personal data of other customers.\n",
}


def prompt_id(index: int) -> str:
    return f"{DOMAINS[index % len(DOMAINS)]}_{TASKS[(index // len(DOMAINS)) % len(TASKS)]}_{index:04d}"


def prompt_files(index: int, version: int) -> dict[str, bytes]:
    """The files of prompt ``index`` at version ``version`` (1-based): every version changes what the model sees."""
    chat = index % 5 == 0
    localized = index % 7 == 0
    temperature = round((version % 4) * 0.1, 1)  # model settings change too, not only bodies
    meta = (
        f"description: Generated prompt {index} for the scale benchmark.\n"
        f"owner: team-{index % 13}@example.com\n"
        f"type: {'chat' if chat else 'text'}\n"
        "model:\n"
        "  name: gpt-4o-mini\n"
        f"  temperature: {temperature}\n"
        "  max_tokens: 256\n"
        "inputs:\n"
        '  message: {type: string, required: true, example: "Where is my order?"}\n'
        "  customer: {type: string, required: false, default: customer}\n"
        f"tags: [{DOMAINS[index % len(DOMAINS)]}, generated]\n"
    )
    include = '{% include "_partials/tone.j2" %}\n' if index % 2 == 0 else ""
    if index % 3 == 0:
        include += '{% include "_partials/safety.j2" %}\n'
    if chat:
        body = (
            "system:\n"
            f"You are assistant {index}, revision {version}.\n{include}\n"
            "user:\n"
            "{{ customer }} wrote: {{ message }}\n"
        )
    else:
        body = f"You handle {DOMAINS[index % len(DOMAINS)]} requests (revision {version}).\n{include}Message: {{{{ message }}}}\n"
    files = {"prompt.yaml": meta.encode(), "body.j2": body.encode()}
    if localized:
        files["body.locale-de.j2"] = f"Du bearbeitest Anfragen (Revision {version}).\n{include}Nachricht: {{{{ message }}}}\n".encode()
    return files


def _read_partial(path: str) -> bytes | None:
    text = PARTIALS.get(path)
    return text.encode() if text is not None else None


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def _fast_import_stream(prompts: int, versions: int, out, batch: int = 10) -> dict[str, str]:
    """Write the whole history to ``out`` (a binary stream); returns {tag: template hash} of the tags written."""
    hashes: dict[str, str] = {}
    stamp = BASE_TIME
    ident = f"{IDENT_NAME} <{IDENT_EMAIL}>".encode()

    def who(kind: bytes, when: int) -> bytes:
        return kind + b" " + ident + b" %d +0000\n" % when

    # The initial commit: an app with the registry set up (promptctl init) and its partials.
    out.write(b"commit refs/heads/main\nmark :1\n")
    out.write(who(b"author", stamp) + who(b"committer", stamp))
    out.write(_data(b"app skeleton with a promptctl registry\n"))
    initial = {"README.md": "scale benchmark app\n", "promptctl.yaml": CONFIG_TEXT, f"{REGISTRY}/_partials/.gitkeep": ""}
    initial.update({f"{REGISTRY}/{name}": text for name, text in PARTIALS.items()})
    for path, text in initial.items():
        out.write(b"M 100644 inline " + path.encode() + b"\n" + _data(text.encode()))
    mark = 1
    for version in range(1, versions + 1):
        for start in range(0, prompts, batch):
            # One `promptctl commit id1 id2 ... -m message`: one commit, one tag per prompt.
            group = [prompt_id(index) for index in range(start, min(start + batch, prompts))]
            stamp += 60
            mark += 1
            message = f"revision {version} of {group[0]}" + (f" and {len(group) - 1} more" if len(group) > 1 else "")
            names = ", ".join(f"{pid}/v{version}" for pid in group)
            out.write(b"commit refs/heads/main\nmark :%d\n" % mark)
            out.write(who(b"author", stamp) + who(b"committer", stamp))
            out.write(_data(f"{message}\n\nprompts: {names}\n".encode()))
            tags = []
            for offset, pid in enumerate(group):
                files = prompt_files(start + offset, version)
                definition = load_prompt(pid, files, _read_partial, where=f"{REGISTRY}/{pid}")
                for name, data in files.items():
                    out.write(b"M 100644 inline " + f"{REGISTRY}/{pid}/{name}".encode() + b"\n" + _data(data))
                tags.append((pid, definition.template_hash))
            for pid, digest in tags:
                tag = f"{pid}/v{version}"
                tag_message = (
                    f"{message}\n\nPromptctl-Prompt: {pid}\nPromptctl-Version: v{version}\n"
                    f"Promptctl-Template-Hash: {digest}\n"
                )
                out.write(b"tag " + tag.encode() + b"\nfrom :%d\n" % mark)
                out.write(who(b"tagger", stamp))
                out.write(_data(tag_message.encode()))
                hashes[tag] = digest
    out.write(b"done\n")
    return hashes


def _git(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env, **kwargs)


def _build(target: Path, prompts: int, versions: int, batch: int) -> None:
    target.mkdir(parents=True)
    _git(target, "init", "-q", "-b", "main")
    for key, value in (
        ("user.name", IDENT_NAME),
        ("user.email", IDENT_EMAIL),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
        ("gc.auto", "0"),
    ):
        _git(target, "config", key, value)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=target, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None
    with proc.stdin:
        _fast_import_stream(prompts, versions, proc.stdin, batch)
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise RuntimeError(f"git fast-import failed: {stderr.decode(errors='replace')}")
    _git(target, "pack-refs", "--all")
    _git(target, "reset", "-q", "--hard", "main")
    (target / ".git" / MARKER).write_text(f"{LAYOUT_VERSION} {prompts} {versions} {batch}\n")


def cached_registry(prompts: int = 1000, versions: int = 20, batch: int = 10) -> Path:
    """The shared, never-mutated cached copy (built on first use). Copy it before changing anything."""
    cache = CACHE / f"scale-{prompts}x{versions}b{batch}-l{LAYOUT_VERSION}"
    if (cache / ".git" / MARKER).is_file():
        return cache
    CACHE.mkdir(parents=True, exist_ok=True)
    # Build on tmpfs when there is one: fast-import writes 20,000 loose refs before pack-refs packs them.
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="promptctl-scale-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else CACHE))
    staged = Path(tempfile.mkdtemp(prefix="staged-", dir=CACHE))
    try:
        _build(scratch / "repo", prompts, versions, batch)
        shutil.copytree(scratch / "repo", staged / "repo", symlinks=True)
        try:
            os.rename(staged / "repo", cache)
        except OSError:  # another process finished first: use its copy
            if not (cache / ".git" / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staged, ignore_errors=True)
    return cache


def build_scale_registry(path: Path, prompts: int = 1000, versions: int = 20, *, batch: int = 10) -> Path:
    """A fresh repository at ``path`` (replaced if it exists) holding ``prompts`` x ``versions`` version tags.

    Each commit is one ``promptctl commit`` of ``batch`` prompts (batch=1: one commit per version; slower
    to build because Git rewrites the 1,000-entry registry tree for every commit).

    Built once into the cache under benchmarks/.work/cache/, then copied (a pack, packed refs and the
    checked-out tree), so the caller may commit, tag and move channels in it freely.
    """
    path = Path(path).resolve()
    cache = cached_registry(prompts, versions, batch)
    if path == cache.resolve():
        return path
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cache, path, symlinks=True)
    return path


def check_registry(path: Path, sample: int = 25) -> int:
    """Verify-like self-check: load sampled versions from Git and compare with their tags' hashes.

    Returns the number of tags checked; raises AssertionError on the first mismatch.
    """
    from promptctl.registry import PromptRepo

    repo = PromptRepo.open(path)
    try:
        versions = repo.versions()
        step = max(1, len(versions) // sample)
        chosen = versions[::step] + versions[-1:]
        for version, definition in zip(chosen, repo.version_definitions(chosen), strict=True):
            assert definition.template_hash == version.template_hash, f"{version.tag}: hash mismatch"
        raw = _git(path, "cat-file", "tag", chosen[0].tag).stdout.decode()
        trailers = parse_trailers(raw.partition("\n\n")[2])
        assert trailers["Promptctl-Prompt"] == chosen[0].prompt_id, raw
        assert trailers["Promptctl-Version"] == chosen[0].version, raw
        # The working tree is the tip: every prompt's latest version is unchanged.
        for state in repo.status([v.prompt_id for v in chosen]):
            assert state.state == "unchanged", state
        return len(chosen)
    finally:
        repo.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=WORK / "scale-registry")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--batch", type=int, default=10, help="prompts per commit (default 10)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    repo = build_scale_registry(args.path, args.prompts, args.versions, batch=args.batch)
    built = time.perf_counter() - start
    tags = len(_git(repo, "for-each-ref", "refs/tags").stdout.splitlines())
    checked = check_registry(repo)
    print(f"{repo}: {tags} version tags ready in {built:.1f} s; {checked} sampled versions verified")


if __name__ == "__main__":
    main()

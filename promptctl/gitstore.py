"""The only module that runs git: thin, batched plumbing with typed results.

User values reach git only as validated ref names (see ``spec``) or after ``--``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import Conflict, GitFailed, GitMissing, NotAGitRepository
from .records import Record

ZERO_OID = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <args>`` in ``cwd``; raise GitFailed (with git's own first error line) when check fails."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=input, capture_output=True, env=_git_env(env), check=False
        )
    except FileNotFoundError:
        raise GitMissing("git is not installed or not on PATH; install git and try again") from None
    if check and proc.returncode != 0:
        raise GitFailed(f"git {args[0]} failed: {first_error_line(proc.stderr)}")
    return proc


def first_error_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return "unknown error"


def output(args: Sequence[str], cwd: str | os.PathLike[str], **kwargs) -> str:
    return run(args, cwd, **kwargs).stdout.decode("utf-8", "replace")


def toplevel(path: str | os.PathLike[str] = ".") -> Path:
    """The work tree's top level; NotAGitRepository when ``path`` is not inside one."""
    path = Path(path)
    if not path.is_dir():
        raise NotAGitRepository(f"{path}: no such directory")
    proc = run(["rev-parse", "--show-toplevel"], path, check=False)
    if proc.returncode != 0:
        raise NotAGitRepository(f"{path.resolve()} is not inside a Git repository (run 'git init' first)")
    return Path(proc.stdout.decode().strip())


def git_dir(root: str | os.PathLike[str]) -> Path:
    return Path(output(["rev-parse", "--absolute-git-dir"], root).strip())


def rev_parse(root: str | os.PathLike[str], rev: str) -> str | None:
    proc = run(["rev-parse", "-q", "--verify", "--end-of-options", rev], root, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def for_each_ref(root: str | os.PathLike[str], patterns: Iterable[str], fields: Sequence[str]) -> list[list[str]]:
    """One ``git for-each-ref`` call; each row holds the requested ``%(field)`` values in order."""
    fmt = "%00".join(f"%({field})" for field in fields) + "%00"
    out = run(["for-each-ref", f"--format={fmt}", "--", *patterns], root).stdout.decode("utf-8", "replace")
    rows = []
    for record in out.split("\0\n"):
        if record:
            rows.append(record.split("\0"))
    return rows


def ref_listing(root: str | os.PathLike[str], patterns: Iterable[str]) -> bytes:
    """``<refname>\\0<oid>\\n`` per ref under ``patterns``: one ``for-each-ref`` that reads no object (names and
    ids come from the ref store alone), for callers that parse thousands of refs in bulk."""
    return run(["for-each-ref", "--format=%(refname)%00%(objectname)", "--", *patterns], root).stdout


def parse_ident(ident: str) -> tuple[str, str]:
    """``Name <email> 1700000000 +0100`` -> ("Name <email>", "2023-11-14T23:13:20+01:00"), the ISO 8601 form
    ``for-each-ref``'s ``:iso-strict`` prints; ("...", "") when the time is unreadable."""
    from datetime import datetime, timedelta, timezone

    who, _, rest = ident.rpartition(">")
    who = (who + ">").strip() if who else ident.strip()
    parts = rest.split()
    try:
        stamp, zone = int(parts[0]), parts[1]
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * (-1 if zone.startswith("-") else 1)
        return who, datetime.fromtimestamp(stamp, timezone(offset)).isoformat()
    except (IndexError, ValueError, OverflowError, OSError):
        return who, ""


class GitObject(Record):
    oid: str
    type: str
    data: bytes


class ObjectReader:
    """A long-lived ``git cat-file --batch``: one process answers any number of object reads.

    Thread-safe; ``read_many`` pipelines requests so a whole batch costs one round trip.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = str(root)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    ["git", "cat-file", "--batch"],
                    cwd=self.root,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=_git_env(),
                )
            except FileNotFoundError:
                raise GitMissing("git is not installed or not on PATH; install git and try again") from None
        return self._proc

    def _read_one(self, stdout) -> GitObject | None:
        header = stdout.readline()
        if not header:
            raise GitFailed("git cat-file --batch ended unexpectedly")
        parts = header.split()
        if len(parts) == 2 and parts[1] in (b"missing", b"ambiguous"):
            return None
        oid, kind, size = parts[0].decode(), parts[1].decode(), int(parts[2])
        data = stdout.read(size)
        stdout.read(1)  # the LF after the content
        return GitObject(oid, kind, data)

    def read(self, spec: str) -> GitObject | None:
        return self.read_many([spec])[0]

    def read_many(self, specs: Sequence[str]) -> list[GitObject | None]:
        if not specs:
            return []
        for spec in specs:
            if "\n" in spec:
                raise ValueError("object spec contains a newline")
        payload = ("\n".join(specs) + "\n").encode()
        with self._lock:
            proc = self._process()
            assert proc.stdin is not None and proc.stdout is not None
            writer = threading.Thread(target=self._write, args=(proc, payload), daemon=True)
            writer.start()
            results = [self._read_one(proc.stdout) for _ in specs]
            writer.join()
            return results

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], payload: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.flush()

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                if self._proc.stdin:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
                if self._proc.stdout:
                    self._proc.stdout.close()
                self._proc = None

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TreeEntry(Record):
    mode: str
    name: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == "40000"


def parse_tree(data: bytes) -> list[TreeEntry]:
    """Parse a raw tree object (``<mode> <name>\\0<20-byte oid>`` entries)."""
    entries = []
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        mode = data[pos:space].decode()
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        oid = data[nul + 1 : nul + 21].hex()
        entries.append(TreeEntry(mode, name, oid))
        pos = nul + 21
    return entries


def parse_commit_or_tag(data: bytes) -> tuple[dict[str, str], str]:
    """Headers (first occurrence of each) and the message of a raw commit or tag object."""
    head, _, message = data.decode("utf-8", "replace").partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if line.startswith(" "):
            continue
        key, _, value = line.partition(" ")
        headers.setdefault(key, value)
    return headers, message


def parse_trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines of the last paragraph of a message."""
    trailers: dict[str, str] = {}
    paragraph = message.strip().split("\n\n")[-1]
    for line in paragraph.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            trailers[key] = value.strip()
    return trailers


def update_ref(root: str | os.PathLike[str], ref: str, new: str, old: str | None, message: str) -> None:
    """Compare-and-swap ``ref`` from ``old`` (None or ZERO_OID: must not exist) to ``new``."""
    proc = run(
        ["update-ref", "-m", message, ref, new, old or ZERO_OID], root, check=False
    )
    if proc.returncode != 0:
        raise Conflict(
            f"{ref} changed while this command ran ({first_error_line(proc.stderr)}); nothing was changed, try again"
        )


def ident(root: str | os.PathLike[str], which: str = "GIT_COMMITTER_IDENT") -> str:
    """``Name <email> <unix time> <tz>`` from Git's own configuration."""
    proc = run(["var", which], root, check=False)
    if proc.returncode != 0:
        raise GitFailed(
            "no Git identity: set one with git config user.name 'Your Name' and git config user.email you@example.com"
        )
    return proc.stdout.decode().strip()


def hash_object(root: str | os.PathLike[str], kind: str, data: bytes) -> str:
    return output(["hash-object", "-t", kind, "-w", "--stdin"], root, input=data).strip()


def tag_object(root: str | os.PathLike[str], name: str, commit: str, message: str, tagger: str | None = None) -> str:
    """Write an annotated tag object for ``commit`` (no ref is created); returns its oid.

    ``tagger`` is ``Name <email> <time> <tz>`` (default: Git's committer identity now).
    """
    tagger = tagger or ident(root)
    body = f"object {commit}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message.rstrip()}\n"
    return output(["mktag"], root, input=body.encode()).strip()


def create_tag(root: str | os.PathLike[str], name: str, commit: str, message: str) -> str:
    """Create annotated tag ``refs/tags/<name>`` at ``commit``; never moves an existing tag."""
    oid = tag_object(root, name, commit, message)
    update_ref(root, f"refs/tags/{name}", oid, None, f"promptctl: tag {name}")
    return oid


def commit_tree(
    root: str | os.PathLike[str],
    tree: str,
    parents: Sequence[str],
    message: str,
    *,
    sign: bool = False,
) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    if sign:
        args.append("-S")
    args += ["-F", "-"]
    return output(args, root, input=message.encode()).strip()


# -- channels, audit log and remotes (channels issue) ------------------------------------------------------


def commit_empty_tree(
    root: str | os.PathLike[str],
    parents: Sequence[str],
    message: str,
    *,
    sign: bool | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """A commit of the empty tree (a channel state commit).

    ``sign``: True signs (``-S``, the user's Git signing config: GPG, SSH or X.509), False never signs,
    None follows the user's ``commit.gpgSign``. Raises GitFailed with git's own reason when signing fails.
    """
    args = ["commit-tree", EMPTY_TREE]
    for parent in parents:
        args += ["-p", parent]
    if sign is True:
        args.append("-S")
    elif sign is False:
        args.append("--no-gpg-sign")
    args += ["-F", "-"]
    return output(args, root, input=message.encode(), env=env).strip()


def rev_list_first_parent(root: str | os.PathLike[str], revs: Sequence[str]) -> list[str]:
    """Commits reachable from ``revs`` by first parents, newest first (each chain in order); one call."""
    if not revs:
        return []
    return output(["rev-list", "--first-parent", *revs, "--"], root).split()


def update_refs(root: str | os.PathLike[str], updates: Sequence[tuple[str, str, str | None]], message: str) -> None:
    """Apply ``(ref, new, old)`` updates in one atomic transaction; each ``old`` is checked (None: must not exist).

    All or nothing: raises Conflict (and changes nothing) when any ref moved meanwhile.
    """
    if not updates:
        return
    lines = []
    for ref, new, old in updates:
        if any(c in ref for c in " \n\0"):
            raise ValueError(f"invalid ref name {ref!r}")
        lines.append(f"update {ref} {new} {old or ZERO_OID}\n")
    proc = run(["update-ref", "-m", message, "--stdin"], root, input="".join(lines).encode(), check=False)
    if proc.returncode != 0:
        raise Conflict(f"refs changed while this command ran ({first_error_line(proc.stderr)}); nothing was changed, try again")


def is_ancestor(root: str | os.PathLike[str], ancestor: str, descendant: str) -> bool:
    proc = run(["merge-base", "--is-ancestor", ancestor, descendant], root, check=False)
    if proc.returncode not in (0, 1):
        raise GitFailed(f"git merge-base failed: {first_error_line(proc.stderr)}")
    return proc.returncode == 0


def existing_objects(root: str | os.PathLike[str], oids: Iterable[str]) -> set[str]:
    """The subset of ``oids`` present in the local object store; one ``cat-file --batch-check`` call."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return set()
    out = output(["cat-file", "--batch-check=%(objectname)"], root, input=("\n".join(wanted) + "\n").encode())
    return {line.strip() for line in out.splitlines() if line and not line.endswith(" missing")}


def remote_names(root: str | os.PathLike[str]) -> list[str]:
    return output(["remote"], root).split()


def _check_remote_arg(remote: str) -> str:
    if not remote or remote.startswith("-") or "\n" in remote or "\0" in remote:
        raise ValueError(f"invalid remote {remote!r}")
    return remote


def ls_remote(root: str | os.PathLike[str], remote: str) -> dict[str, str]:
    """``{ref: oid}`` of every ref on ``remote`` (peeled ``^{}`` lines left out). Unreachable on failure."""
    from .errors import Unreachable

    proc = run(["ls-remote", "--refs", "--", _check_remote_arg(remote)], root, check=False)
    if proc.returncode != 0:
        raise Unreachable(f"cannot read remote {remote!r}: {first_error_line(proc.stderr)}")
    refs = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        oid, _, ref = line.partition("\t")
        if ref:
            refs[ref] = oid
    return refs


def fetch_objects(root: str | os.PathLike[str], remote: str, refs: Sequence[str]) -> None:
    """Fetch the objects of ``refs`` from ``remote`` without creating or moving any local ref."""
    from .errors import Unreachable

    if not refs:
        return
    proc = run(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--stdin", "--", _check_remote_arg(remote)],
        root,
        input=("\n".join(refs) + "\n").encode(),
        check=False,
    )
    if proc.returncode != 0:
        raise Unreachable(f"fetch from {remote!r} failed: {first_error_line(proc.stderr)}")


class PushResult(Record):
    ok: bool
    refs: list[tuple[str, str, str]]  # (flag, "src:dst", summary) from ``git push --porcelain``
    error: str


def push_refs(root: str | os.PathLike[str], remote: str, refspecs: Sequence[str]) -> PushResult:
    """``git push --atomic --porcelain`` of explicit, non-forced refspecs: all of them land or none does."""
    for spec in refspecs:
        if spec.startswith(("+", "-")) or ":" not in spec:
            raise ValueError(f"refusing refspec {spec!r}: only explicit, non-forced src:dst refspecs are pushed")
    proc = run(["push", "--atomic", "--porcelain", "--", _check_remote_arg(remote), *refspecs], root, check=False)
    rows = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[0]) == 1:
            rows.append((parts[0], parts[1], parts[2]))
    return PushResult(proc.returncode == 0, rows, "" if proc.returncode == 0 else first_error_line(proc.stderr))


def signature_status(
    root: str | os.PathLike[str], revs: Sequence[str], *, no_walk: bool = False
) -> list[tuple[str, str, str, str, str]]:
    """``(commit, %G?, signer, key, git's verification message)`` for first-parent commits of ``revs``
    (only ``revs`` themselves with ``no_walk``).

    One ``git log`` call; git verifies each signature with the user's own config (gpg, gpg.ssh.allowedSignersFile).
    """
    if not revs:
        return []
    fmt = "%H%x00%G?%x00%GS%x00%GK%x00%GG%x00%x01"
    walk = ["--no-walk"] if no_walk else ["--first-parent"]
    out = output(["log", *walk, f"--format={fmt}", *revs, "--"], root)
    rows = []
    for record in out.split("\x01"):
        record = record.strip("\n")
        if not record:
            continue
        fields = record.split("\0")
        if len(fields) >= 5:
            rows.append((fields[0], fields[1], fields[2], fields[3], fields[4].strip()))
    return rows

"""Prompt directories <-> versions (Git tags), on top of ``gitstore``.

``PromptRepo`` is what the CLI and the analyses use. The runtime loader has its own lighter reader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from . import gitstore
from .config import CONFIG_FILE, DEFAULT_CONFIG_TEXT, Config, load_config
from .errors import (
    BadHead,
    IncludeOutsideRegistry,
    InvalidContent,
    NoRegistry,
    NothingChanged,
    UnknownPrompt,
    UnknownVersion,
)
from .model import VersionInfo
from .records import Record
from .spec import TAG_PREFIX, VersionSpec, parse_spec, parse_tag_name, tag_name, validate_id

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings

if TYPE_CHECKING:
    from .promptfile import PromptDefinition

# promptfile (and the hashing it pulls in) is imported inside the methods that use it: ``log`` of a prompt
# with versions reads refs only and never loads it.

TAG_FIELDS = ("refname", "objectname", "*objectname", "taggername", "taggeremail", "taggerdate:iso-strict", "contents")
TRAILER_HASH = "Promptctl-Template-Hash"


class PromptStatus(Record):
    prompt_id: str
    state: str  # new | modified | unchanged | invalid
    template_hash: str | None
    latest: VersionInfo | None
    error: str | None = None


_SIGNATURE_START = ("-----BEGIN PGP SIGNATURE-----", "-----BEGIN SSH SIGNATURE-----", "-----BEGIN SIGNED MESSAGE-----")


def _make_version(prompt_id: str, number: int, tag_oid: str, commit: str, author: str, created_at: str, contents: str) -> VersionInfo:
    for marker in _SIGNATURE_START:  # the contents of a signed tag end in its signature: not part of the message
        contents = contents.split(marker, 1)[0]
    trailers = gitstore.parse_trailers(contents)
    message = contents.strip()
    if "\n\n" in message and TRAILER_HASH in trailers:
        message = message.rsplit("\n\n", 1)[0].strip()
    return VersionInfo(
        prompt_id=prompt_id,
        number=number,
        tag_oid=tag_oid,
        commit=commit,
        template_hash=trailers.get(TRAILER_HASH, ""),
        created_at=created_at,
        author=author,
        message=message,
    )


def _version_from_row(row: list[str]) -> VersionInfo | None:
    refname, tag_oid, commit, name, email, date, contents = row
    parsed = parse_tag_name(refname.removeprefix(TAG_PREFIX))
    if parsed is None or not commit:  # not a version tag, or a lightweight tag
        return None
    return _make_version(parsed[0], parsed[1], tag_oid, commit, f"{name} {email}".strip(), date, contents)


def _version_from_tag_object(prompt_id: str, number: int, tag_oid: str, data: bytes) -> VersionInfo | None:
    """A version from a raw annotated tag object (None for anything else, e.g. a lightweight tag's commit)."""
    headers, contents = gitstore.parse_commit_or_tag(data)
    if headers.get("type") != "commit" or "object" not in headers:
        return None
    author, created_at = gitstore.parse_ident(headers.get("tagger", ""))
    return _make_version(prompt_id, number, tag_oid, headers["object"], author, created_at, contents)


_VERSION_REF = re.compile(rb"^refs/tags/([a-z0-9][a-z0-9_-]{0,99})/v([1-9][0-9]{0,8})\0([0-9a-f]{40,64})$", re.MULTILINE)


class PromptRepo:
    """A Git repository holding a promptctl registry."""

    def __init__(self, root: Path, config: Config):
        self.root = root
        self.config = config
        self.registry_dir = root / config.registry

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".") -> PromptRepo:
        root = gitstore.toplevel(path)
        config = load_config(root)
        repo = cls(root, config)
        if not repo.registry_dir.is_dir():
            raise NoRegistry(f"registry directory {config.registry}/ is missing; run 'promptctl init' to create it")
        return repo

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".", registry: str = "prompts") -> tuple[PromptRepo, bool]:
        """Create promptctl.yaml and the registry directory; returns (repo, created)."""
        import re

        from .config import registry_dir_ok
        from .errors import UsageError
        from .promptfile import PARTIALS_DIR

        if not registry_dir_ok(registry) or not re.fullmatch(r"[A-Za-z0-9._/-]+", registry):
            raise UsageError(
                f"invalid registry directory {registry!r}: use a relative path inside the repository "
                "made of letters, digits, '.', '_', '-' and '/'"
            )
        root = gitstore.toplevel(path)
        config_path = root / CONFIG_FILE
        created = False
        if not config_path.exists():
            config_path.write_text(DEFAULT_CONFIG_TEXT.format(registry=registry))
            created = True
        config = load_config(root)
        partials = root / config.registry / PARTIALS_DIR
        if not partials.is_dir():
            partials.mkdir(parents=True)
            (partials / ".gitkeep").write_text("")
            created = True
        return cls(root, config), created

    @cached_property
    def reader(self) -> gitstore.ObjectReader:
        return gitstore.ObjectReader(self.root)

    def close(self) -> None:
        if "reader" in self.__dict__:
            self.reader.close()

    # -- the working tree -----------------------------------------------------------------------------
    def prompt_dir(self, prompt_id: str) -> Path:
        return self.registry_dir / validate_id(prompt_id)

    def prompt_ids(self) -> list[str]:
        """Ids of the prompt directories in the working tree (sorted; ``_*`` and ``.*`` are not prompts).

        A symlinked directory is listed too, so that reading it reports why it is refused.
        """
        from .promptfile import METADATA_FILE

        ids = []
        for entry in sorted(os.scandir(self.registry_dir), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith((".", "_")) and os.path.isfile(
                os.path.join(entry.path, METADATA_FILE)
            ):
                ids.append(entry.name)
        return ids

    def _read_working_partial(self, relpath: str) -> bytes | None:
        """A registry-relative file's bytes, or None when it does not exist. Symlinks are never followed:
        Git would store the link, not the text, so the hash of a version would differ from the working tree's."""
        base = self.registry_dir.resolve()
        lexical = Path(os.path.normpath(base / relpath))
        if not lexical.is_relative_to(base):
            raise IncludeOutsideRegistry(f"include {relpath!r} resolves outside the registry")
        if lexical.resolve() != lexical:
            raise IncludeOutsideRegistry(
                f"{self.config.registry}/{relpath}: is (or is inside) a symbolic link; "
                "promptctl does not follow symlinks in the registry"
            )
        return lexical.read_bytes() if lexical.is_file() else None

    def working_files(self, prompt_id: str) -> dict[str, bytes]:
        """The regular files of a prompt's directory (name -> bytes). Refuses symlinks instead of following them."""
        from .promptfile import METADATA_FILE

        directory = self.prompt_dir(prompt_id)
        where = f"{self.config.registry}/{prompt_id}"
        if not (directory / METADATA_FILE).is_file():
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}: no {where}/{METADATA_FILE}")
        if directory.is_symlink():
            raise InvalidContent(f"{where}: is a symbolic link; promptctl does not follow symlinks in the registry")
        files = {}
        for entry in os.scandir(directory):
            if entry.is_symlink():
                raise InvalidContent(
                    f"{where}/{entry.name}: is a symbolic link; promptctl does not follow symlinks in the registry"
                )
            if entry.is_file():
                files[entry.name] = Path(entry.path).read_bytes()
        return files

    def working_definition(self, prompt_id: str) -> PromptDefinition:
        from .promptfile import load_prompt

        return load_prompt(
            prompt_id,
            self.working_files(prompt_id),
            self._read_working_partial,
            where=f"{self.config.registry}/{prompt_id}",
        )

    # -- versions ---------------------------------------------------------------------------------------
    def versions(self, prompt_id: str | None = None) -> list[VersionInfo]:
        """Version tags, oldest first per prompt (all prompts, or one); one ``for-each-ref`` call."""
        if prompt_id:
            return self.versions_of([prompt_id])
        rows = gitstore.for_each_ref(self.root, ["refs/tags/"], TAG_FIELDS)
        found = [v for v in map(_version_from_row, rows) if v is not None]
        found.sort(key=lambda v: (v.prompt_id, v.number))
        return found

    def versions_by_prompt(self) -> dict[str, list[VersionInfo]]:
        grouped: dict[str, list[VersionInfo]] = {}
        for version in self.versions():
            grouped.setdefault(version.prompt_id, []).append(version)
        return grouped

    def version_refs(self, prompt_ids: Iterable[str] | None = None) -> dict[str, list[tuple[int, str]]]:
        """prompt id -> [(version number, tag object id)], ascending, from the ref store alone (no object is
        read: cheap for 20,000 tags). Lightweight tags are filtered out later, by ``load_versions``."""
        wanted = None if prompt_ids is None else {validate_id(p) for p in prompt_ids}
        if wanted is not None and not wanted:
            return {}
        patterns = [f"refs/tags/{p}/" for p in sorted(wanted)] if wanted is not None and len(wanted) <= 200 else ["refs/tags/"]
        refs: dict[str, list[tuple[int, str]]] = {}
        for prompt_id, number, oid in _VERSION_REF.findall(gitstore.ref_listing(self.root, patterns)):
            pid = prompt_id.decode()
            if wanted is None or pid in wanted:
                refs.setdefault(pid, []).append((int(number), oid.decode()))
        for found in refs.values():
            found.sort()
        return dict(sorted(refs.items()))

    def load_versions(self, refs: Sequence[tuple[str, int, str]]) -> list[VersionInfo]:
        """Versions from (prompt id, number, tag object id) triples: one ``cat-file --batch`` round trip,
        only for the tags asked for. Refs that are not annotated tags of a commit are left out."""
        found = []
        for (pid, number, oid), obj in zip(refs, self.reader.read_many([oid for _, _, oid in refs]), strict=True):
            if obj is not None and obj.type == "tag":
                version = _version_from_tag_object(pid, number, oid, obj.data)
                if version is not None:
                    found.append(version)
        return found

    def latest_versions(
        self, prompt_ids: Iterable[str] | None = None, refs: dict[str, list[tuple[int, str]]] | None = None
    ) -> dict[str, VersionInfo]:
        """The latest version of each of these prompts (default: every prompt) that has one; reads one tag
        object per prompt, not every version. ``refs``: a ``version_refs`` result already at hand."""
        if refs is None:
            refs = self.version_refs(prompt_ids)
        latest: dict[str, VersionInfo] = {}
        pending = {pid: list(found) for pid, found in refs.items()}
        while pending:  # the newest ref of a prompt may be a lightweight tag: fall back to the one before
            batch = [(pid, *found.pop()) for pid, found in pending.items()]
            for version in self.load_versions(batch):
                latest[version.prompt_id] = version
            pending = {pid: found for pid, found in pending.items() if pid not in latest and found}
        return dict(sorted(latest.items()))

    def known_prompt(self, prompt_id: str) -> bool:
        from .promptfile import METADATA_FILE

        validate_id(prompt_id)
        return (self.prompt_dir(prompt_id) / METADATA_FILE).is_file() or bool(self.versions(prompt_id))

    def resolve(self, spec: VersionSpec | str) -> VersionInfo:
        """The version a spec names: latest, ``@v<N>`` or ``@<channel>`` (the channel's primary version)."""
        if isinstance(spec, str):
            spec = parse_spec(spec)
        if spec.channel is not None:
            from .channels import ChannelStore

            state = ChannelStore(self).state(spec.prompt_id, spec.channel)
            spec = parse_spec(f"{spec.prompt_id}@{state.primary.version}")
        versions = self.versions(spec.prompt_id)
        if not versions:
            if self.known_prompt(spec.prompt_id):
                raise UnknownVersion(f"{spec.prompt_id} has no versions yet; run 'promptctl commit {spec.prompt_id}'")
            raise UnknownPrompt(f"unknown prompt {spec.prompt_id!r}")
        if spec.number is None:
            return versions[-1]
        for version in versions:
            if version.number == spec.number:
                return version
        raise UnknownVersion(f"{spec.prompt_id} has no version v{spec.number} (latest is {versions[-1].version})")

    def version_definition(self, version: VersionInfo) -> PromptDefinition:
        return self.version_definitions([version])[0]

    def version_definitions(self, versions: Sequence[VersionInfo]) -> list[PromptDefinition]:
        """Load many versions from Git objects in a few batched ``cat-file`` round trips."""
        return [d for d in self.version_definitions_lenient(versions) if not isinstance(d, Exception) or _raise(d)]

    def version_definitions_lenient(self, versions: Sequence[VersionInfo]) -> list[PromptDefinition | Exception]:
        """Like ``version_definitions`` but returns the error in place of a version that fails to load."""
        from .promptfile import body_includes, load_prompt

        reg = self.config.registry
        trees = self.reader.read_many([f"{v.commit}:{reg}/{v.prompt_id}" for v in versions])
        blob_ids: dict[int, dict[str, str]] = {}
        wanted: list[str] = []
        for index, tree in enumerate(trees):
            if tree is None or tree.type != "tree":
                continue
            entries = {e.name: e.oid for e in gitstore.parse_tree(tree.data) if not e.is_tree}
            blob_ids[index] = entries
            wanted.extend(entries.values())
        blobs = {}
        unique = list(dict.fromkeys(wanted))
        for obj in self.reader.read_many(unique):
            if obj is not None:
                blobs[obj.oid] = obj.data
        # Partials are read in batches, one round per include depth: each round loads every pending version
        # with the partials known so far, collects the (commit, path) pairs it lacked, and reads them all
        # in one ``cat-file`` round trip (a version that lacked any is loaded again in the next round).
        partials: dict[tuple[str, str], bytes | None] = {}
        results: list[PromptDefinition | Exception | None] = [None] * len(versions)
        pending = []
        lacking: dict[tuple[str, str], None] = {}  # first-level includes, read before the first round
        for index, version in enumerate(versions):
            if index in blob_ids:
                pending.append(index)
                files = {name: blobs[oid] for name, oid in blob_ids[index].items() if oid in blobs}
                lacking.update(dict.fromkeys((version.commit, path) for path in body_includes(files)))
            else:
                results[index] = InvalidContent(
                    f"{version.tag}: {reg}/{version.prompt_id} is missing from commit {version.commit[:12]}"
                )
        while pending:
            if lacking:
                keys = list(lacking)
                for key, obj in zip(keys, self.reader.read_many([f"{c}:{reg}/{p}" for c, p in keys]), strict=True):
                    partials[key] = obj.data if obj is not None and obj.type == "blob" else None
                lacking = {}
            retry = []
            for index in pending:
                version = versions[index]
                files = {name: blobs[oid] for name, oid in blob_ids[index].items() if oid in blobs}
                absent: list[tuple[str, str]] = []

                def read_partial(path: str, commit: str = version.commit, absent: list = absent) -> bytes | None:
                    key = (commit, path)
                    if key in partials:
                        return partials[key]
                    absent.append(key)
                    return b""  # a stand-in: this attempt is discarded once the partial has been read

                try:
                    loaded: PromptDefinition | Exception = load_prompt(
                        version.prompt_id, files, read_partial, where=f"{version.tag}:{reg}/{version.prompt_id}"
                    )
                except Exception as exc:  # noqa: BLE001 - returned to the caller, which reports it
                    loaded = exc
                if absent:
                    lacking.update(dict.fromkeys(absent))
                    retry.append(index)
                else:
                    results[index] = loaded
            pending = retry
        return results  # type: ignore[return-value]

    # -- status and commit ---------------------------------------------------------------------------------
    def status(self, prompt_ids: Iterable[str] | None = None) -> list[PromptStatus]:
        ids = list(prompt_ids) if prompt_ids is not None else self.prompt_ids()
        latest = self.latest_versions(ids)
        result = []
        for prompt_id in ids:
            last = latest.get(prompt_id)
            try:
                definition = self.working_definition(prompt_id)
            except UnknownPrompt:
                raise
            except Exception as exc:  # invalid content is reported per prompt, not fatal for status
                if not hasattr(exc, "exit_code"):
                    raise
                result.append(PromptStatus(prompt_id, "invalid", None, last, str(exc)))
                continue
            if last is None:
                state = "new"
            elif last.template_hash != definition.template_hash:
                state = "modified"
            else:
                state = "unchanged"
            result.append(PromptStatus(prompt_id, state, definition.template_hash, last))
        return result

    def _check_head(self) -> tuple[str, str]:
        """(branch ref, its commit); BadHead when HEAD is detached or the branch has no commit yet."""
        proc = gitstore.run(["symbolic-ref", "-q", "HEAD"], self.root, check=False)
        if proc.returncode != 0:
            raise BadHead("HEAD is detached: check out a branch before 'promptctl commit'")
        branch = proc.stdout.decode().strip()
        head = self.reader.read(branch)  # the running cat-file answers: no extra rev-parse process
        if head is None or head.type != "commit":
            raise BadHead(
                f"branch {branch.removeprefix('refs/heads/')} has no commits yet: make a first commit, then run promptctl commit"
            )
        return branch, head.oid

    def commit(self, prompt_ids: Sequence[str], message: str) -> list[VersionInfo]:
        """Commit only these prompts' files (and the partials they include), then tag one version each.

        Other staged or unstaged work is left exactly as it was. Refuses when nothing changed.
        """
        return self.commit_prompts(prompt_ids, message).versions

    def commit_prompts(self, prompt_ids: Sequence[str], message: str) -> CommitResult:
        """``commit`` with details: the versions made, the commit, and the partials this commit changed.

        The branch update and every new tag land in one atomic ref transaction (all or nothing; existing
        tags are never moved). When HEAD already holds exactly these files, the tags point at HEAD and no
        empty commit is made. About ten git processes whatever the size of the registry.
        """
        from .errors import UsageError
        from .promptfile import METADATA_FILE

        if not message or not message.strip():
            raise UsageError("a version message is required (-m 'what changed')")
        ids = list(dict.fromkeys(validate_id(p) for p in prompt_ids))
        if not ids:
            raise UsageError("name the prompts to commit, or use --all")
        branch, head = self._check_head()
        definitions = {pid: self.working_definition(pid) for pid in ids}
        latest = self.latest_versions(ids)
        unchanged = [pid for pid, d in definitions.items() if pid in latest and latest[pid].template_hash == d.template_hash]
        if unchanged:
            raise NothingChanged(
                f"nothing changed in {', '.join(unchanged)} since {', '.join(latest[p].tag for p in unchanged)}; no version made"
            )
        reg = self.config.registry
        paths = {f"{reg}/{pid}" for pid in ids}
        partials = sorted({p for d in definitions.values() for p in d.partials})
        paths.update(f"{reg}/{p}" for p in partials)
        # One batched read answers: HEAD's tree, whether the registry config is tracked yet, and the partials
        # as HEAD has them (to tell the user which shared partials this version changes).
        head_commit, config_blob, *head_partials = self.reader.read_many(
            [head, f"{head}:{CONFIG_FILE}", *(f"{head}:{reg}/{p}" for p in partials)]
        )
        head_tree = gitstore.parse_commit_or_tag(head_commit.data)[0].get("tree") if head_commit else None
        if config_blob is None:  # the registry's own config travels with its first version: a clone just works
            paths.add(CONFIG_FILE)
        pathspec = sorted(paths)

        import tempfile

        with tempfile.TemporaryDirectory(prefix="promptctl-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            gitstore.run(["read-tree", head], self.root, env=env)
            gitstore.run(["add", "-A", "--", *pathspec], self.root, env=env)
            # every file the template hash covers goes in, even one a .gitignore matches: the tag must hold what
            # its hash says (other ignored files in the prompt's directory, editor leftovers, stay out)
            hashed = [f"{reg}/{pid}/{METADATA_FILE}" for pid in ids]
            hashed += [f"{reg}/{pid}/{body}" for pid, d in definitions.items() for body in d.bodies]
            hashed += [f"{reg}/{p}" for p in partials]
            if config_blob is None:
                hashed.append(CONFIG_FILE)
            gitstore.run(["add", "-f", "--", *sorted(set(hashed))], self.root, env=env)
            tree = gitstore.output(["write-tree"], self.root, env=env).strip()
        numbers = {pid: latest[pid].number + 1 if pid in latest else 1 for pid in ids}
        names = ", ".join(f"{pid}/v{numbers[pid]}" for pid in ids)
        if tree == head_tree:
            commit = head
            changed: list[str] = []
        else:
            commit = gitstore.commit_tree(self.root, tree, [head], f"{message.strip()}\n\nprompts: {names}\n")
            changed = [
                p
                for p, before in zip(partials, head_partials, strict=True)
                if before is None or before.data != self._read_working_partial(p)
            ]

        tagger = gitstore.ident(self.root)
        author, created_at = gitstore.parse_ident(tagger)
        updates: list[tuple[str, str, str | None]] = [] if commit == head else [(branch, commit, head)]
        made = []
        for pid, definition in definitions.items():
            name = tag_name(pid, numbers[pid])
            text = (
                f"{message.strip()}\n\nPromptctl-Prompt: {pid}\nPromptctl-Version: v{numbers[pid]}\n"
                f"{TRAILER_HASH}: {definition.template_hash}\n"
            )
            oid = gitstore.tag_object(self.root, name, commit, text, tagger)
            updates.append((TAG_PREFIX + name, oid, None))
            made.append(_make_version(pid, numbers[pid], oid, commit, author, created_at, text))
        gitstore.update_refs(self.root, updates, f"promptctl commit: {names}")
        if commit != head:
            # The committed paths now match HEAD: drop any staged state for them so `git status` is clean there.
            gitstore.run(["reset", "-q", "HEAD", "--", *pathspec], self.root, check=False)
        return CommitResult(versions=made, commit=commit, changed_partials=changed)

    def versions_of(self, prompt_ids: Sequence[str]) -> list[VersionInfo]:
        """Version tags of these prompts only, oldest first per prompt; one ``for-each-ref`` call."""
        wanted = {validate_id(p) for p in prompt_ids}
        if not wanted:
            return []
        patterns = [f"refs/tags/{p}/" for p in sorted(wanted)] if len(wanted) <= 200 else ["refs/tags/"]
        rows = gitstore.for_each_ref(self.root, patterns, TAG_FIELDS)
        found = [v for v in map(_version_from_row, rows) if v is not None and v.prompt_id in wanted]
        found.sort(key=lambda v: (v.prompt_id, v.number))
        return found

    def prompts_including(self, partials: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        """Prompts in the working tree whose files name one of these registry-relative partials (a text scan:
        cheap at any scale; used for a heads-up, not for hashing)."""
        needles = [p.encode() for p in partials]
        skip = set(exclude)
        users = []
        if not needles:
            return users
        for prompt_id in self.prompt_ids():
            if prompt_id in skip:
                continue
            directory = self.registry_dir / prompt_id
            for entry in os.scandir(directory):
                if entry.name.endswith(".j2") and entry.is_file(follow_symlinks=False):
                    data = Path(entry.path).read_bytes()
                    if any(n in data for n in needles):
                        users.append(prompt_id)
                        break
        return users


class CommitResult(Record):
    versions: list[VersionInfo]
    commit: str
    changed_partials: list[str]  # registry-relative partials whose content this commit changed


def _raise(exc: Exception) -> bool:
    raise exc

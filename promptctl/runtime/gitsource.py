"""Serve prompts from a Git repository: channel refs read as files, content from Git objects.

The TTL check is the hot part: it reads the channel ref straight from ``.git`` (the loose ref file, then
``packed-refs``), a stat and a small read, no subprocess. Everything else (state commits, version tags, trees,
blobs) goes through one persistent ``git cat-file --batch`` (``gitstore.ObjectReader``), so content always
comes from the objects at the resolved version, never from the working tree.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .. import gitstore
from ..config import CONFIG_FILE, Config, parse_config
from ..errors import (
    InvalidContent,
    NotAGitRepository,
    PromptctlError,
    RegistryUnavailable,
    UnknownChannel,
    UnknownPrompt,
    UnknownVersion,
)
from ..model import VersionInfo
from ..promptfile import PromptDefinition
from ..spec import CHANNEL_PREFIX, channel_ref, parse_version, tag_ref
from .source import ChannelSnapshot

HEX = frozenset("0123456789abcdef")
TRAILER_HASH = "Promptctl-Template-Hash"


def discover(path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(work tree or bare repo root, git dir, common dir) of the repository holding ``path``.

    Plain file reads (``.git`` directory or ``gitdir:`` file, ``commondir``), so opening costs no subprocess.
    """
    start = Path(os.path.abspath(path))
    if not start.is_dir():
        raise NotAGitRepository(f"{start}: no such directory")
    current = start
    while True:
        dotgit = current / ".git"
        if dotgit.is_dir():
            root, git_dir = current, dotgit
            break
        if dotgit.is_file():
            text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
            if not text.startswith("gitdir:"):
                raise NotAGitRepository(f"{dotgit}: not a gitdir file")
            root, git_dir = current, (current / text[len("gitdir:") :].strip()).resolve()
            break
        if (current / "HEAD").is_file() and (current / "objects").is_dir() and (current / "refs").is_dir():
            root = git_dir = current  # a bare repository
            break
        if current.parent == current:
            raise NotAGitRepository(f"{start} is not inside a Git repository")
        current = current.parent
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    return root, git_dir, common


class RefReader:
    """Read refs the way git stores them: a loose file under the common dir, else a ``packed-refs`` line.

    ``packed-refs`` is parsed once per change (keyed by its stat). Repositories using the reftable backend
    are read through ``git rev-parse`` instead (a subprocess per check).
    """

    def __init__(self, root: Path, common_dir: Path):
        self.root = root
        self.common = str(common_dir)
        self._packed_path = os.path.join(self.common, "packed-refs")
        self._packed_stat: tuple[int, int, int] | None = None
        self._packed: dict[str, str] = {}
        self._lock = threading.Lock()
        self.reftable = os.path.isdir(os.path.join(self.common, "reftable"))

    def read(self, ref: str) -> str | None:
        """The object id ``ref`` points at (symbolic refs followed), None when it does not exist.

        Raises RegistryUnavailable when the repository itself is gone or the ref file holds garbage.
        """
        if self.reftable:
            return gitstore.rev_parse(self.root, ref)
        for _ in range(5):  # symbolic ref depth
            try:  # os.open/os.read: no buffered file object, this runs on every TTL check
                fd = os.open(os.path.join(self.common, ref), os.O_RDONLY)
            except (FileNotFoundError, NotADirectoryError):
                return self._read_packed(ref)
            except OSError as exc:
                raise RegistryUnavailable(f"cannot read {ref} in {self.common}: {exc.strerror}") from None
            try:
                data = os.read(fd, 512)
            except OSError as exc:  # e.g. a directory where the ref file should be
                raise RegistryUnavailable(f"cannot read {ref} in {self.common}: {exc.strerror}") from None
            finally:
                os.close(fd)
            text = data.decode("ascii", "replace").strip()
            if text.startswith("ref: "):
                ref = text[5:].strip()
                continue
            if len(text) in (40, 64) and HEX.issuperset(text):
                return text
            raise RegistryUnavailable(f"{ref} holds no object id (the ref file is damaged)")
        raise RegistryUnavailable(f"{ref}: symbolic refs nested too deeply")

    def _read_packed(self, ref: str) -> str | None:
        try:
            st = os.stat(self._packed_path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise RegistryUnavailable(f"cannot read {self._packed_path}: {exc.strerror}") from None
        if st is None:
            if not os.path.isdir(os.path.join(self.common, "objects")):
                raise RegistryUnavailable(f"the Git repository at {self.common} is gone or unreadable")
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._packed_stat:
            with self._lock:
                if key != self._packed_stat:
                    self._packed = self._parse_packed()
                    self._packed_stat = key
        return self._packed.get(ref)

    def _parse_packed(self) -> dict[str, str]:
        refs: dict[str, str] = {}
        try:
            with open(self._packed_path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise RegistryUnavailable(f"cannot read {self._packed_path}: {exc.strerror}") from None
        for line in data.decode("utf-8", "replace").splitlines():
            if not line or line[0] in "#^":
                continue
            oid, _, name = line.partition(" ")
            refs[name.strip()] = oid
        return refs


class GitSource:
    """A Git repository as a runtime source. Opened lazily: constructing one never touches the disk."""

    def __init__(self, path: str | os.PathLike[str]):
        self.description = str(path)
        self._path = path
        self._lock = threading.Lock()
        self._opened = False
        self._config: Config | None = None
        self._refs: dict[tuple[str, str], str] = {}  # validated channel ref names

    # -- opening ----------------------------------------------------------------------------------------
    def _open(self) -> None:
        if self._opened:
            return
        with self._lock:
            if self._opened:
                return
            try:
                self.root, self.git_dir, self.common_dir = discover(self._path)
            except NotAGitRepository as exc:
                raise RegistryUnavailable(f"no registry at {self.description}: {exc}") from None
            except OSError as exc:
                raise RegistryUnavailable(f"no registry at {self.description}: {exc.strerror}") from None
            self.refs = RefReader(self.root, self.common_dir)
            self._reader = gitstore.ObjectReader(self.root)
            self._pid = os.getpid()
            self._opened = True

    @property
    def reader(self) -> gitstore.ObjectReader:
        """The cat-file process; a forked child (gunicorn --preload...) gets its own instead of sharing pipes."""
        if self._pid != os.getpid():
            self._reader = gitstore.ObjectReader(self.root)
            self._pid = os.getpid()
        return self._reader

    def config(self) -> Config:
        """promptctl.yaml as committed at HEAD (the working-tree file when HEAD has none, else defaults)."""
        if self._config is None:
            self._open()
            from ..promptfile import load_yaml

            obj = self.reader.read(f"HEAD:{CONFIG_FILE}")
            if obj is not None and obj.type == "blob":
                data: bytes | None = obj.data
            else:
                path = self.root / CONFIG_FILE
                data = path.read_bytes() if path.is_file() else None
            self._config = parse_config(load_yaml(data, CONFIG_FILE) if data is not None else {})
        return self._config

    def default_channel(self) -> str | None:
        return None

    # -- channels ---------------------------------------------------------------------------------------
    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        self._open()
        ref = self._refs.get((prompt_id, channel))
        if ref is None:
            ref = self._refs[(prompt_id, channel)] = channel_ref(prompt_id, channel)  # validates both names
        oid = self.refs.read(ref)
        if previous is not None and oid == previous.token:
            return previous  # nothing moved: one small file read, no subprocess
        if oid is None:
            if self._has_versions(prompt_id):
                raise UnknownChannel(
                    f"{prompt_id} has no channel {channel!r} (promote a version first: "
                    f"promptctl promote {prompt_id} v<N> --channel {channel})"
                )
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}: no versions in {self.description}")
        obj = self.reader.read(oid)
        if obj is None or obj.type != "commit":
            raise RegistryUnavailable(f"{ref} points at {oid[:12]}, which is not a commit in {self.description}")
        from ..channels import parse_state_commit

        parsed = parse_state_commit(oid, obj.data)
        if parsed is None or parsed[0].prompt_id != prompt_id or parsed[0].channel != channel:
            raise RegistryUnavailable(f"{ref} points at {oid[:12]}, which is not a state commit of {prompt_id}@{channel}")
        entry = parsed[0]
        return ChannelSnapshot(prompt_id, channel, oid, entry.serves, entry)

    def channel_names(self) -> dict[str, list[str]]:
        """Every prompt's channels (one ``for-each-ref``; used by ``promptctl export``, not the hot path)."""
        self._open()
        rows = gitstore.for_each_ref(self.root, [CHANNEL_PREFIX], ["refname"])
        found: dict[str, list[str]] = {}
        for (refname,) in rows:
            prompt_id, _, channel = refname.removeprefix(CHANNEL_PREFIX).rpartition("/")
            if prompt_id:
                found.setdefault(prompt_id, []).append(channel)
        return found

    def _has_versions(self, prompt_id: str) -> bool:
        # Versions start at v1 and tags are never deleted, so v1 exists iff the prompt has any version.
        return self.reader.read(tag_ref(prompt_id, 1)) is not None

    # -- content ----------------------------------------------------------------------------------------
    def version_info(self, prompt_id: str, version: str) -> VersionInfo:
        self._open()
        number = parse_version(version)
        ref = tag_ref(prompt_id, number)
        tag = self.reader.read(ref)
        if tag is None:
            if self._has_versions(prompt_id):
                raise UnknownVersion(f"{prompt_id} has no version {version}")
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}: no versions in {self.description}")
        if tag.type == "tag":
            headers, message = gitstore.parse_commit_or_tag(tag.data)
            commit, expected = headers.get("object", ""), gitstore.parse_trailers(message).get(TRAILER_HASH, "")
        elif tag.type == "commit":
            commit, expected = tag.oid, ""
        else:
            raise InvalidContent(f"{ref} points at a {tag.type}, not a version")
        return VersionInfo(prompt_id, number, tag.oid, commit, expected, "", "", "")

    def load(self, prompt_id: str, version: str, template_hash: str | None = None) -> PromptDefinition:
        from ..registry import PromptRepo

        info = self.version_info(prompt_id, version)
        repo = PromptRepo(self.root, self.config())
        repo.reader = self.reader  # share the one cat-file process
        definition = repo.version_definitions_lenient([info])[0]
        if isinstance(definition, Exception):
            if isinstance(definition, PromptctlError):
                raise definition
            raise InvalidContent(f"{info.tag}: {definition}")
        for expected, what in ((info.template_hash, f"its tag {info.tag}"), (template_hash, "the channel state")):
            if expected and definition.template_hash != expected:
                raise InvalidContent(
                    f"{info.tag}: content hashes to {definition.template_hash[:12]} but {what} records {expected[:12]}"
                )
        return definition

    def close(self) -> None:
        if self._opened and self._pid == os.getpid():
            self._reader.close()

"""No-git mode: a directory written by ``promptctl export``, served with the same API.

Layout (docs/design.md, "Export layout"), made to be published as-is over HTTP:

    DIR/manifest.json              what each exported channel serves (versions, splits, hashes, last move)
    DIR/objects/<template hash>.json   one prompt version: its canonical template document, byte for byte

An object's name is the sha256 of its bytes (the template hash), so objects are immutable and verifiable;
the writer puts every object in place first and then replaces ``manifest.json`` atomically (``os.replace``),
so a reader sees either the old or the new export, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import Config, parse_config
from ..errors import (
    InvalidContent,
    NotWritable,
    RegistryUnavailable,
    UnknownChannel,
    UnknownPrompt,
    UnknownVersion,
)
from ..hashing import canonical_document
from ..model import AuditEntry, Serving
from ..promptfile import BODY_FILE, PromptDefinition, validate_meta
from .source import ChannelSnapshot

MANIFEST = "manifest.json"
OBJECTS = "objects"
FORMAT = "promptctl-export/1"


def is_export(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


def definition_from_document(prompt_id: str, data: bytes, template_hash: str) -> PromptDefinition:
    """Rebuild a prompt definition from its canonical template document; the bytes must hash to the name."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != template_hash:
        raise InvalidContent(f"object {template_hash[:12]} is corrupt: its content hashes to {actual[:12]}")
    try:
        doc = json.loads(data)
        meta = validate_meta(dict(doc["meta"]), f"object {template_hash[:12]}")
        files: dict[str, str] = dict(doc["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidContent(f"object {template_hash[:12]} is not a template document: {exc}") from None
    bodies = {name: text for name, text in files.items() if "/" not in name and BODY_FILE.fullmatch(name)}
    if not bodies:
        raise InvalidContent(f"object {template_hash[:12]} holds no body")
    partials = {name: text for name, text in files.items() if name not in bodies}
    return PromptDefinition(prompt_id, meta, bodies, partials, template_hash, files)


def _serving_json(serves: Iterable[Serving]) -> list[dict[str, Any]]:
    return [{"version": s.version, "percent": s.percent, "template_hash": s.template_hash} for s in serves]


class ExportSource:
    """An export directory as a runtime source. The TTL check is one ``stat`` of manifest.json."""

    def __init__(self, path: str | os.PathLike[str]):
        self.description = str(path)
        self.path = Path(path)
        self._manifest_path = str(self.path / MANIFEST)
        self._stat: tuple[int, int, int] | None = None
        self._manifest: dict[str, Any] = {}
        self._config: Config | None = None
        self._lock = threading.Lock()

    def _current(self) -> dict[str, Any]:
        try:
            st = os.stat(self._manifest_path)
        except OSError as exc:
            raise RegistryUnavailable(f"cannot read {self._manifest_path}: {exc.strerror}") from None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._stat:
            with self._lock:
                if key != self._stat:
                    self._manifest = self._read_manifest()
                    self._stat = key
        return self._manifest

    def _read_manifest(self) -> dict[str, Any]:
        try:
            with open(self._manifest_path, "rb") as handle:
                manifest = json.loads(handle.read())
        except OSError as exc:
            raise RegistryUnavailable(f"cannot read {self._manifest_path}: {exc.strerror}") from None
        except ValueError as exc:
            raise RegistryUnavailable(f"{self._manifest_path} is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("prompts"), dict):
            raise RegistryUnavailable(f"{self._manifest_path} is not a {FORMAT} manifest")
        return manifest

    def config(self) -> Config:
        if self._config is None:
            self._config = parse_config(self._current().get("config") or {}, f"{self._manifest_path} config")
        return self._config

    def default_channel(self) -> str | None:
        return self._current().get("default_channel")

    def _prompt(self, prompt_id: str) -> dict[str, Any]:
        entry = self._current()["prompts"].get(prompt_id)
        if entry is None:
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}: not in the export {self.description}")
        return entry

    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        state = self._prompt(prompt_id).get("channels", {}).get(channel)
        if state is None:
            raise UnknownChannel(f"{prompt_id} has no channel {channel!r} in the export {self.description}")
        try:
            serves = tuple(Serving(s["version"], int(s["percent"]), s["template_hash"]) for s in state["serves"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryUnavailable(f"{self._manifest_path}: bad serves for {prompt_id}@{channel}: {exc}") from None
        if not serves:
            raise RegistryUnavailable(f"{self._manifest_path}: {prompt_id}@{channel} serves nothing")
        token = state.get("state_commit") or ",".join(f"{s.version}:{s.percent}:{s.template_hash}" for s in serves)
        if previous is not None and previous.token == token and previous.serves == serves:
            return previous
        return ChannelSnapshot(prompt_id, channel, token, serves, _audit_from_json(state.get("last_move")))

    def load(self, prompt_id: str, version: str, template_hash: str | None = None) -> PromptDefinition:
        known = self._prompt(prompt_id).get("versions", {}).get(version)
        if known is None:
            raise UnknownVersion(f"{prompt_id} {version} is not in the export {self.description}")
        if template_hash and template_hash != known:
            raise InvalidContent(f"{prompt_id} {version}: the manifest records two hashes ({known[:12]}, {template_hash[:12]})")
        return definition_from_document(prompt_id, self._object_bytes(known), known)

    def _object_bytes(self, template_hash: str) -> bytes:
        """The bytes of ``objects/<template_hash>.json`` (the HTTP source fetches them instead)."""
        path = self.path / OBJECTS / f"{template_hash}.json"
        try:
            return path.read_bytes()
        except OSError as exc:
            raise RegistryUnavailable(f"cannot read {path}: {exc.strerror}") from None

    def close(self) -> None:
        pass


def _audit_from_json(data: Mapping[str, Any] | None) -> AuditEntry | None:
    if not data:
        return None
    serves = tuple(Serving(s["version"], int(s["percent"]), s.get("template_hash", "")) for s in data.get("serves", []))
    return AuditEntry(
        prompt_id=data.get("id", ""),
        channel=data.get("channel", ""),
        action=data.get("action", ""),
        from_serves=(),
        serves=serves,
        reason=data.get("reason", ""),
        author=data.get("author", ""),
        at=data.get("at", ""),
        commit=data.get("commit", ""),
    )


# -- writing ----------------------------------------------------------------------------------------------


def write_export(repo_path: str | os.PathLike[str], channels: list[str], directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Export what ``channels`` serve (plus the channels ``variants:`` maps to) into ``directory``.

    Objects are written first, then the manifest replaces the old one atomically. Returns the manifest.
    Raises UnknownChannel when no prompt has any of ``channels``, NotWritable when ``directory`` is not.
    """
    manifest, objects = build_export(repo_path, channels)
    write_files(Path(directory), objects, manifest)
    return manifest


def build_export(repo_path: str | os.PathLike[str], channels: list[str]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the objects (``{template hash: canonical document}``) of an export, written nowhere.

    ``promptctl publish`` compares them with what a directory already holds before writing anything.
    """
    from datetime import datetime, timezone

    from .gitsource import GitSource

    source = GitSource(repo_path)
    try:
        config = source.config()
        by_prompt = source.channel_names()
        wanted = list(dict.fromkeys([*channels, *config.variants.values()]))
        prompts: dict[str, Any] = {}
        objects: dict[str, bytes] = {}
        for prompt_id in sorted(by_prompt):
            for channel in wanted:
                if channel not in by_prompt[prompt_id]:
                    continue
                snapshot = source.channel_state(prompt_id, channel)
                entry = prompts.setdefault(prompt_id, {"channels": {}, "versions": {}})
                for serving in snapshot.serves:
                    definition = source.load(prompt_id, serving.version, serving.template_hash or None)
                    objects[definition.template_hash] = canonical_document(definition.meta, definition.files)
                    entry["versions"][serving.version] = definition.template_hash
                serves = [Serving(s.version, s.percent, entry["versions"][s.version]) for s in snapshot.serves]
                entry["channels"][channel] = {
                    "serves": _serving_json(serves),
                    "state_commit": snapshot.token,
                    "last_move": snapshot.last_move.to_json() if snapshot.last_move else None,
                }
        missing = [c for c in channels if not any(c in p["channels"] for p in prompts.values())]
        if missing:
            raise UnknownChannel(f"no prompt has channel {missing[0]!r}; nothing exported")
        head = source.reader.read("HEAD")
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": {"repository": str(source.root), "head": head.oid if head is not None else None},
            "default_channel": channels[0],
            "channels": wanted,
            "config": {"variants": dict(config.variants), "schema": config.schema},
            "prompts": prompts,
        }
    finally:
        source.close()
    return manifest, objects


def write_files(directory: Path, objects: Mapping[str, bytes], manifest: Mapping[str, Any]) -> int:
    """Objects first, then the manifest (atomically); returns how many objects had to be written."""
    written = write_objects(directory, objects)
    try:
        _atomic_write(directory / MANIFEST, manifest_bytes(manifest))
    except OSError as exc:
        raise NotWritable(f"cannot write the export to {directory}: {exc.strerror or exc}") from None
    return written


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()


def write_objects(directory: Path, objects: Mapping[str, bytes]) -> int:
    """Put every object in place (skipping intact ones); returns how many were written."""
    objects_dir = directory / OBJECTS
    written = 0
    try:
        objects_dir.mkdir(parents=True, exist_ok=True)
        for digest, data in objects.items():
            target = objects_dir / f"{digest}.json"
            if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
                continue  # content-addressed: an existing, intact object is already right
            _atomic_write(target, data)
            written += 1
    except OSError as exc:
        raise NotWritable(f"cannot write the export to {directory}: {exc.strerror or exc}") from None
    return written


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

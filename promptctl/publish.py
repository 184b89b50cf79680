"""``promptctl publish``: what channels serve, as static files any web server or object store can host.

The layout is the export's (``runtime/exportsource``): ``manifest.json`` (per prompt and channel: the
versions served, the rollout split, each version's template hash, the audit entry of the last move) plus
``published_at``, and ``objects/<template hash>.json``, immutable and content-addressed. Objects are written
first and the manifest is replaced atomically, so a reader never sees a manifest naming a missing object.

Publishing is idempotent: when the manifest would say the same thing (everything but ``created_at``,
``published_at`` and ``source``) and every object is in place, nothing is written, not even the manifest, so
web servers keep their validators (ETag, Last-Modified) and replicas keep getting ``304 Not Modified``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import gitstore
from .errors import NotWritable, PromptctlError
from .runtime.exportsource import MANIFEST, OBJECTS, build_export, write_files, write_objects
from .spec import CHANNEL_PREFIX

VOLATILE = ("created_at", "published_at", "source")  # differences here alone are not worth a publish
WATCHED_REFS = (CHANNEL_PREFIX, "refs/heads/")  # channel moves, and commits (promptctl.yaml's variants)


@dataclass(frozen=True)
class PublishResult:
    directory: str
    changed: bool  # the manifest was (re)written
    published_at: str | None  # of the manifest the directory holds now
    objects_written: int
    manifest: dict[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "changed": self.changed,
            "published_at": self.published_at,
            "objects_written": self.objects_written,
            "prompts": {
                prompt_id: {
                    channel: [{"version": s["version"], "percent": s["percent"]} for s in state["serves"]]
                    for channel, state in entry["channels"].items()
                }
                for prompt_id, entry in sorted(self.manifest.get("prompts", {}).items())
            },
        }


def _comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key not in VOLATILE}


def _read_existing(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None  # none yet, or damaged: publish writes a good one
    return data if isinstance(data, dict) else None


def _intact(path: Path, digest: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except OSError:
        return False


def _check_writable(directory: Path) -> None:
    """Refuse early (nothing written) when the destination cannot take files."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotWritable(f"cannot publish to {directory}: {probe} is not a directory")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise NotWritable(f"cannot publish to {directory}: {probe} is not writable")
    objects = directory / OBJECTS
    if objects.exists() and (not objects.is_dir() or not os.access(objects, os.W_OK | os.X_OK)):
        raise NotWritable(f"cannot publish to {directory}: {objects} is not a writable directory")


def _publishing(target: Path, write: Callable[..., int], *args: Any) -> int:
    """Run an export writer, naming the failure as a publish (the writers' messages say "export")."""
    try:
        return write(target, *args)
    except NotWritable as exc:
        reason = str(exc).partition(": ")[2] or str(exc)
        raise NotWritable(f"cannot publish to {target}: {reason}") from None


def publish(repo_root: str | os.PathLike[str], channels: Sequence[str], directory: str | os.PathLike[str]) -> PublishResult:
    """Publish what ``channels`` serve (plus the channels ``variants:`` maps to) into ``directory``.

    Writes nothing when nothing changed. Raises UnknownChannel (no prompt has the channel), NotWritable.
    """
    if "://" in os.fspath(directory):
        from .errors import UsageError

        raise UsageError(
            f"{os.fspath(directory)}: publish writes a local directory; copy it to a web server or object store "
            "with your own sync (objects first, then manifest.json: see docs/fleet.md)"
        )
    target = Path(directory)
    _check_writable(target)
    manifest, objects = build_export(repo_root, list(channels))
    existing = _read_existing(target)
    if existing is not None and _comparable(existing) == _comparable(manifest):
        missing = {d: data for d, data in objects.items() if not _intact(target / OBJECTS / f"{d}.json", d)}
        written = _publishing(target, write_objects, missing) if missing else 0  # repair a damaged object store only
        return PublishResult(str(target), False, existing.get("published_at"), written, existing)
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    manifest = {"format": manifest["format"], "published_at": now, **manifest}
    written = _publishing(target, write_files, objects, manifest)
    return PublishResult(str(target), True, now, written, manifest)


def refs_fingerprint(repo_root: str | os.PathLike[str]) -> tuple[tuple[str, ...], ...]:
    """What a publish depends on, cheaply: channel refs and branch heads (one ``for-each-ref``)."""
    return tuple(tuple(row) for row in gitstore.for_each_ref(repo_root, WATCHED_REFS, ("refname", "objectname")))


def watch(
    repo_root: str | os.PathLike[str],
    channels: Sequence[str],
    directory: str | os.PathLike[str],
    interval: float,
    on_publish: Callable[[PublishResult], None],
    on_error: Callable[[PromptctlError], None],
    stop: threading.Event,
) -> None:
    """Publish now, then again whenever a channel ref (or a branch) moves, checking every ``interval`` s.

    The first publish raises its error; later ones report it through ``on_error`` and retry at the next
    check. Returns when ``stop`` is set.
    """
    seen = refs_fingerprint(repo_root)
    on_publish(publish(repo_root, channels, directory))
    while not stop.wait(interval):
        try:
            current = refs_fingerprint(repo_root)
            if current == seen:
                continue
            result = publish(repo_root, channels, directory)
        except PromptctlError as exc:
            on_error(exc)  # `seen` stays: the next check tries again
            continue
        seen = current
        on_publish(result)


def inspect_published(location: str, verify: bool = False) -> dict[str, Any]:
    """What the published registry at ``location`` (a URL or a directory) serves; with ``verify``, every object
    is fetched and checked against its name. Raises NoRegistry (not a published registry), InvalidContent
    (unknown format version), Unreachable / RegistryUnavailable (the origin cannot be read)."""
    from .errors import NoRegistry
    from .runtime.httpsource import HttpClient, is_url, parse_manifest, registry_url

    if is_url(location):
        from urllib.parse import urljoin

        base = registry_url(location)
        client = HttpClient(timeout=10.0)

        def read(name: str) -> bytes:
            url = urljoin(base, name)
            response = client.get(url)
            if response.status in (404, 410) and name == MANIFEST:
                raise NoRegistry(f"{base} is not a published promptctl registry: {url} answered HTTP {response.status}")
            if response.status != 200 and name != MANIFEST:
                return f"HTTP {response.status}".encode()  # a missing object: counted as bad
            if response.status != 200:
                from .errors import RegistryUnavailable

                raise RegistryUnavailable(f"{url} answered HTTP {response.status} {response.reason}".rstrip())
            return response.body

        where = base
    else:
        folder = Path(location)
        client = None

        def read(name: str) -> bytes:
            try:
                return (folder / name).read_bytes()
            except OSError as exc:
                if name == MANIFEST:
                    raise NoRegistry(f"{location} is not a published promptctl registry (no {MANIFEST})") from None
                return f"unreadable: {exc.strerror}".encode()

        where = str(folder)
    try:
        manifest = parse_manifest(read(MANIFEST), f"{where.rstrip('/')}/{MANIFEST}")
        digests = sorted({d for entry in manifest["prompts"].values() for d in (entry.get("versions") or {}).values()})
        bad = []
        if verify:
            for digest in digests:
                if hashlib.sha256(read(f"{OBJECTS}/{digest}.json")).hexdigest() != digest:
                    bad.append(digest)
    finally:
        if client is not None:
            client.close()
    return {
        "location": where,
        "format": manifest["format"],
        "published_at": manifest.get("published_at") or manifest.get("created_at"),
        "default_channel": manifest.get("default_channel"),
        "channels": manifest.get("channels", []),
        "prompts": manifest["prompts"],
        "objects": len(digests),
        "objects_checked": len(digests) if verify else 0,
        "bad_objects": bad,
    }

"""``Registry``: resolve a prompt (channel, split, pin, locale, tier), cache it, keep serving when Git breaks.

The hot path of ``get()`` is dictionary lookups and one monotonic clock read; when the TTL has run out it
re-reads the channel ref (a small file read) and only loads and compiles when the ref actually moved.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import get_current_span

from . import presets
from .prompt import ResolvedPrompt, set_missing_attributes

# Imported on first use (a load, an error), so `import promptctl.runtime` stays close to `import opentelemetry.trace`:
# ..errors, .cache (ChannelEntry, VersionEntry, and .split through it), .source.
if TYPE_CHECKING:
    from ..errors import PromptctlError
    from .cache import ChannelEntry, VersionEntry
    from .source import Source

logger = logging.getLogger("promptctl")

MAX_SPECS = 4096
_DEFAULT_CHANNEL = "current"  # spec.DEFAULT_CHANNEL, without importing spec (and dataclasses) at import
_NO_SUCH_VARIANT_CHANNEL: Any = object()


def open_source(
    path_or_url: str | os.PathLike[str],
    *,
    ttl: float = 5.0,
    fallback_source: str | os.PathLike[str] | None = None,
    remote: str | None = None,
) -> Source:
    """The source for a path (a Git repository or an export directory) or URL.

    An http(s) URL (a published registry), ``remote`` (Git-remote mode) and ``fallback_source`` (a second
    source) are fleet delivery: ``httpsource.open_fleet_source``, docs/fleet.md.
    """
    text = os.fspath(path_or_url)
    if text.startswith(("http://", "https://")) or fallback_source is not None or remote is not None:
        from .httpsource import open_fleet_source

        return open_fleet_source(text, ttl=ttl, fallback_source=fallback_source, remote=remote)
    if os.path.isfile(os.path.join(text, "manifest.json")):  # the export layout (exportsource.MANIFEST)
        from .exportsource import ExportSource

        return ExportSource(text)
    from .gitsource import GitSource

    return GitSource(text)


def _chat_source(messages: Sequence[Mapping[str, str]]) -> str:
    return "\n\n".join(f"{m['role']}:\n{m['content']}" for m in messages)


class Registry:
    """Prompts served from a Git repository or an export directory, cached per process.

    ``path_or_url``: a Git repository (any directory inside it) or a ``promptctl export`` directory; None
    reads ``PROMPTCTL_REPO``. ``ttl``: seconds before a channel ref is checked again. ``channel``: the
    channel served when ``get()`` names none (None: ``current``, or the exported channel of an export).
    Constructing a Registry never touches Git; the first ``get()`` opens it.

    Fleet delivery (docs/fleet.md): ``path_or_url`` may be the http(s) URL of a ``promptctl publish``
    directory; ``remote`` makes a clone fetch the registry's refs from that remote every ``ttl`` (Git-remote
    mode); ``fallback_source`` is an export directory served when the registry cannot be read at a cold start.
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str] | None = None,
        ttl: float = 5.0,
        channel: str | None = None,
        *,
        fallback_source: str | os.PathLike[str] | None = None,
        remote: str | None = None,
    ):
        if path_or_url is None:
            path_or_url = os.environ.get("PROMPTCTL_REPO")
            if not path_or_url:
                from ..errors import UsageError

                raise UsageError("no registry: pass promptctl.Registry(path) or set PROMPTCTL_REPO")
        try:
            self.ttl = float(ttl)
        except (TypeError, ValueError):
            from ..errors import UsageError

            raise UsageError(f"ttl must be a number of seconds, not {ttl!r}") from None
        if self.ttl < 0:
            from ..errors import UsageError

            raise UsageError("ttl must not be negative")
        if channel is not None:
            from ..spec import validate_channel

            validate_channel(channel)
        self._channel = channel
        self._source = open_source(path_or_url, ttl=self.ttl, fallback_source=fallback_source, remote=remote)
        self.location = self._source.description
        self._lock = threading.RLock()
        self._specs: dict[str, tuple[str, int | None, str | None]] = {}
        self._channels: dict[tuple[str, str], ChannelEntry] = {}
        self._versions: dict[tuple[str, str], VersionEntry] = {}
        self._variants: dict[str, str] | None = None
        self._specs_default: tuple[presets.AttributeSpec, ...] = presets.resolve_schema(None)
        self._missing_variant: dict[tuple[str, str], float] = {}
        self._failures: dict[tuple[str, str | None], float] = {}
        self._fallbacks: dict[tuple[str, str], VersionEntry] = {}
        self._warned: set[tuple[str, str | None]] = set()

    def __repr__(self) -> str:
        return f"<promptctl.Registry {self.location} ttl={self.ttl}>"

    # -- the hot path -----------------------------------------------------------------------------------
    def get(
        self,
        prompt: str,
        locale: str | None = None,
        tier: str | None = None,
        variant: str | None = None,
        key: Any = None,
        channel: str | None = None,
        fallback: str | Sequence[Mapping[str, str]] | None = None,
    ) -> ResolvedPrompt:
        """Resolve ``prompt`` (``id``, ``id@v3`` or ``id@channel``) to a version and a body.

        The version comes from the pin, else the channel: the one a ``variant`` maps to in promptctl.yaml,
        else ``channel``, else the registry's. A split channel picks by ``key`` (stable across processes;
        a random pick without one). ``locale``/``tier`` choose the body by the fallback order. ``fallback``
        (a template string, or chat messages) is served when nothing could ever be loaded.
        """
        spec = self._specs.get(prompt)
        if spec is None:
            spec = self._parse(prompt)
        prompt_id, number, channel_name = spec
        if number is not None:
            entry = self._versions.get((prompt_id, f"v{number}"))
            if entry is None:
                entry = self._load_pinned(prompt_id, number, fallback)
                if entry is None:
                    return self._serve_fallback(prompt_id, None, fallback, locale, tier, variant)
            stale = False
        else:
            via_variant = False
            if channel_name is None:
                if variant is not None and self._variant_channel(prompt_id, variant):
                    channel_name = self._variants[variant]  # type: ignore[index]
                    via_variant = True
                else:
                    channel_name = channel or self._channel or self._default_channel()
            centry = self._channels.get((prompt_id, channel_name))
            if centry is None or monotonic() >= centry.deadline:
                centry = self._refresh(prompt_id, channel_name, centry, fallback is not None, via_variant)
                if centry is _NO_SUCH_VARIANT_CHANNEL:  # the variant's channel is not there: serve the usual one
                    channel_name = channel or self._channel or self._default_channel()
                    centry = self._channels.get((prompt_id, channel_name))
                    if centry is None or monotonic() >= centry.deadline:
                        centry = self._refresh(prompt_id, channel_name, centry, fallback is not None)
                if centry is None:
                    return self._serve_fallback(prompt_id, channel_name, fallback, locale, tier, variant)
            entry = centry.single
            if entry is None:
                entry = centry.pick(prompt_id, channel_name, key)
            stale = centry.stale
        resolved = entry.resolved.get((locale, tier, variant, channel_name, stale))
        if resolved is None:
            published = None if number is not None else centry.snapshot.published_at  # fleet: manifest time
            resolved = self._resolve(entry, locale, tier, variant, channel_name, stale, published)
        span = get_current_span()
        if span.is_recording():
            set_missing_attributes(span, resolved.span_attributes())
        return resolved

    # -- the slow paths -----------------------------------------------------------------------------------
    def _parse(self, prompt: str) -> tuple[str, int | None, str | None]:
        from ..spec import parse_spec

        parsed = parse_spec(prompt)
        spec = (parsed.prompt_id, parsed.number, parsed.channel)
        if len(self._specs) < MAX_SPECS:
            self._specs[prompt] = spec
        return spec

    def _config(self) -> None:
        if self._variants is None:
            with self._lock:
                if self._variants is None:
                    config = self._source.config()
                    self._specs_default = presets.resolve_schema(config.schema)
                    self._variants = dict(config.variants)

    def _default_channel(self) -> str:
        from ..errors import PromptctlError

        if self._channel is None:
            try:
                self._channel = self._source.default_channel() or _DEFAULT_CHANNEL
            except PromptctlError:
                return _DEFAULT_CHANNEL  # unreadable now; the load that follows reports it
        return self._channel

    def _variant_channel(self, prompt_id: str, variant: str) -> bool:
        """Whether ``variant`` maps to a channel this prompt has (checked again after the TTL)."""
        from ..errors import PromptctlError

        if self._variants is None:
            try:
                self._config()
            except PromptctlError:
                return False
        target = self._variants.get(variant)  # type: ignore[union-attr]
        if target is None:
            return False
        until = self._missing_variant.get((prompt_id, target))
        return until is None or monotonic() >= until

    def _version_entry(self, prompt_id: str, version: str, template_hash: str | None) -> VersionEntry:
        from .cache import VersionEntry

        entry = self._versions.get((prompt_id, version))
        if entry is not None:
            if template_hash and entry.definition.template_hash != template_hash:
                from ..errors import RegistryUnavailable

                raise RegistryUnavailable(
                    f"{prompt_id} {version}: the channel records hash {template_hash[:12]} but the version hashes to "
                    f"{entry.definition.template_hash[:12]}"
                )
            return entry
        from ..render import CompiledPrompt

        definition = self._source.load(prompt_id, version, template_hash)
        entry = VersionEntry(prompt_id, version, definition, CompiledPrompt(definition))
        self._versions[(prompt_id, version)] = entry
        return entry

    def _load_pinned(self, prompt_id: str, number: int, fallback: Any) -> VersionEntry | None:
        if fallback is not None and monotonic() < self._failures.get((prompt_id, None), 0.0):
            return None  # failed recently: serve the fallback without hammering a broken source
        with self._lock:
            try:
                self._config()
                return self._version_entry(prompt_id, f"v{number}", None)
            except Exception as exc:  # noqa: BLE001 - typed below, or the in-code fallback
                if fallback is None:
                    raise _typed(exc, self.location) from None
                self._note_failure(prompt_id, None, exc)
                return None

    def _refresh(
        self, prompt_id: str, channel: str, old: ChannelEntry | None, has_fallback: bool, via_variant: bool = False
    ) -> ChannelEntry | None:
        """Re-read a channel after its TTL (or for the first time). Never raises once something was served."""
        key = (prompt_id, channel)
        if old is not None:
            if not self._lock.acquire(blocking=False):
                return old  # another thread is refreshing this registry: serve what we have meanwhile
        else:
            self._lock.acquire()
            if has_fallback and monotonic() < self._failures.get(key, 0.0):
                self._lock.release()
                return None  # failed recently: serve the fallback without hammering a broken source
        try:
            current = self._channels.get(key)
            if current is not old and current is not None and monotonic() < current.deadline:
                return current  # refreshed by another thread while we waited
            old = current or old
            try:
                self._config()
                snapshot = self._source.channel_state(prompt_id, channel, old.snapshot if old else None)
                if old is not None and snapshot is old.snapshot and not old.stale:
                    old.deadline = monotonic() + self.ttl
                    return old  # the common TTL check: nothing moved (no import, no allocation below this line)
                from .cache import ChannelEntry, VersionEntry

                versions = [self._version_entry(prompt_id, s.version, s.template_hash or None) for s in snapshot.serves]
                if snapshot.published_at is not None:  # fleet: fresh resolved caches carry this manifest's time
                    versions = [VersionEntry(v.prompt_id, v.version, v.definition, v.compiled) for v in versions]
                entry = ChannelEntry(snapshot, monotonic() + self.ttl, versions)
                if old is not None and old.stale:
                    self._warned.discard(key)
                    logger.info("promptctl: %s@%s readable again in %s", prompt_id, channel, self.location)
            except Exception as exc:  # noqa: BLE001 - never take the application down once something was served
                if old is None:
                    from ..errors import UnknownChannel

                    if via_variant and isinstance(exc, UnknownChannel):
                        self._missing_variant[key] = monotonic() + self.ttl
                        return _NO_SUCH_VARIANT_CHANNEL
                    if not has_fallback:
                        raise _typed(exc, self.location) from None
                    self._note_failure(prompt_id, channel, exc)
                    return None
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning(
                        "promptctl: cannot re-read %s@%s in %s (%s); serving the last good version %s until it recovers",
                        prompt_id,
                        channel,
                        self.location,
                        exc,
                        ",".join(s.version for s in old.snapshot.serves),
                    )
                entry = old.marked_stale(monotonic() + self.ttl)
            self._channels[key] = entry
            return entry
        finally:
            self._lock.release()

    def _note_failure(self, prompt_id: str, channel: str | None, exc: BaseException) -> None:
        key = (prompt_id, channel)
        self._failures[key] = monotonic() + self.ttl
        if key not in self._warned:
            self._warned.add(key)
            where = f"{prompt_id}@{channel}" if channel else prompt_id
            logger.warning("promptctl: cannot load %s from %s (%s); serving the in-code fallback", where, self.location, exc)

    def _resolve(
        self,
        entry: VersionEntry,
        locale: str | None,
        tier: str | None,
        variant: str | None,
        channel: str | None,
        stale: bool,
        published_at: str | None = None,
    ) -> ResolvedPrompt:
        selection = entry.definition.select_body(locale, tier)
        resolved = ResolvedPrompt(
            entry.definition,
            entry.compiled,
            version=entry.version,
            body=selection.file,
            fallback=selection.fallback,
            locale=locale,
            tier=tier,
            variant=variant,
            channel=channel,
            stale=stale,
            code_fallback=entry.version is None,
            default_specs=self._specs_default,
            published_at=published_at,
        )
        return entry.remember((locale, tier, variant, channel, stale), resolved)

    def _serve_fallback(
        self,
        prompt_id: str,
        channel: str | None,
        fallback: str | Sequence[Mapping[str, str]] | None,
        locale: str | None,
        tier: str | None,
        variant: str | None,
    ) -> ResolvedPrompt:
        from .cache import VersionEntry

        if fallback is None:  # defensive: the callers only get here with a fallback
            from ..errors import RegistryUnavailable

            raise RegistryUnavailable(f"nothing loaded for {prompt_id} from {self.location}")
        source = fallback if isinstance(fallback, str) else _chat_source(fallback)
        key = (prompt_id, source)
        entry = self._fallbacks.get(key)
        if entry is None:
            from ..hashing import normalize_text, template_hash
            from ..promptfile import PromptDefinition
            from ..render import CompiledPrompt

            meta = {"type": "text" if isinstance(fallback, str) else "chat"}
            files = {"body.j2": normalize_text(source.encode(), "fallback")}
            definition = PromptDefinition(prompt_id, meta, dict(files), {}, template_hash(meta, files), files)
            entry = VersionEntry(prompt_id, None, definition, CompiledPrompt(definition))
            if len(self._fallbacks) < MAX_SPECS:
                self._fallbacks[key] = entry
        resolved = entry.resolved.get((locale, tier, variant, channel, False))
        if resolved is None:
            resolved = ResolvedPrompt(
                entry.definition,
                entry.compiled,
                version=None,
                body="body.j2",
                fallback=True,
                locale=locale,
                tier=tier,
                variant=variant,
                channel=channel,
                code_fallback=True,
                default_specs=self._specs_default,
            )
            entry.remember((locale, tier, variant, channel, False), resolved)
        span = get_current_span()
        if span.is_recording():
            set_missing_attributes(span, resolved.span_attributes())
        return resolved

    # -- housekeeping ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the background ``git cat-file`` process (the registry reopens it if used again)."""
        self._source.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _typed(exc: BaseException, location: str) -> PromptctlError:
    """A typed error for the caller: the registry's own errors as they are, anything else as unavailable."""
    from ..errors import PromptctlError, RegistryUnavailable

    if isinstance(exc, PromptctlError):
        return exc
    if isinstance(exc, OSError):
        return RegistryUnavailable(f"cannot read the registry at {location}: {exc.strerror or exc}")
    return RegistryUnavailable(f"cannot read the registry at {location}: {exc}")

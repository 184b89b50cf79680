"""Fleet delivery over HTTP: serve a published registry (``promptctl publish``) from any static web server.

``HttpSource`` reads the export layout (``manifest.json`` + ``objects/<template hash>.json``, see
``exportsource``) from a URL. It is an ``ExportSource`` whose two reads go over the network:

* the manifest is polled by a background thread every TTL, less a random jitter (so a fleet started together
  drifts apart instead of polling in lockstep), with a conditional request (``If-None-Match`` /
  ``If-Modified-Since``): an unchanged manifest costs one small request and a ``304`` with no body. The
  loader's TTL check then only reads memory, so ``get()`` never waits on the network after the cold start;
* an object is fetched once, when a channel first serves it, and its bytes must hash to its name (the
  template hash) before anything is made of them: a tampered object is never served and is reported once.

When a poll fails (origin unreachable, 5xx, a truncated manifest...), the failure is remembered until a poll
succeeds: ``channel_state`` raises it, so the loader keeps serving the last good version, marks spans stale
and warns once per episode; polls back off (exponentially, with jitter) until the origin answers again.

``FallbackSource`` puts a second source (a bundled export) behind the first, for a cold start while the first
cannot be read. ``Poller`` is the background loop, shared with the Git-remote mode (``gitremote``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import (
    InvalidContent,
    NoRegistry,
    PromptctlError,
    RegistryUnavailable,
    UnknownChannel,
    UnknownPrompt,
    UnknownVersion,
    Unreachable,
    UsageError,
)
from .exportsource import FORMAT, MANIFEST, OBJECTS, ExportSource
from .source import ChannelSnapshot

if TYPE_CHECKING:
    from ..config import Config
    from ..promptfile import PromptDefinition
    from .source import Source

logger = logging.getLogger("promptctl")

JITTER = 0.2  # each poll interval is the TTL less up to 20%
MAX_BACKOFF = 60.0  # seconds between polls of a failing origin, at most (never less than the TTL)
MAX_REDIRECTS = 5
FORMAT_FAMILY = FORMAT.rsplit("/", 1)[0] + "/"  # "promptctl-export/"
REDIRECTS = (301, 302, 303, 307, 308)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def registry_url(url: str) -> str:
    """The base URL of a published registry, ending in ``/`` (``.../production`` and ``.../manifest.json`` too)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{url!r} is not an http(s) URL")
    path = parts.path or "/"
    if path.endswith("/" + MANIFEST):
        path = path[: -len(MANIFEST)]
    elif not path.endswith("/"):
        path += "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


# -- polling ----------------------------------------------------------------------------------------------


class Poller:
    """Calls ``poll`` in a daemon thread every ``interval`` seconds (less a random ``jitter`` share).

    A failing poll makes an *episode*: ``error`` holds the failure until a poll succeeds, and the delay backs
    off (doubling, with jitter, up to ``max_backoff``). ``attempt()`` polls right now (the cold start does).
    After ``os.fork()`` the thread is started again in the child on the next ``start()``. The thread holds
    the poller only weakly: a source nobody uses any more is collected and its thread ends.
    """

    def __init__(
        self,
        what: str,
        poll: Callable[[], None],
        interval: float,
        jitter: float = JITTER,
        max_backoff: float | None = None,
    ):
        self.what = what
        self._poll = poll
        self.interval = max(float(interval), 0.1)  # ttl=0 must not mean a busy loop
        self.jitter = min(max(float(jitter), 0.0), 0.9)
        cap = MAX_BACKOFF if max_backoff is None else float(max_backoff)
        self.max_backoff = max(self.interval, min(self.interval * 8, cap))  # TTL 5 s: 40 s; TTL 0.3 s: 2.4 s
        self.error: PromptctlError | None = None
        self.failures = 0
        self.polls = 0
        self._next = 0.0  # monotonic time the next attempt is due
        self._attempt_lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()

    def delay(self) -> float:
        """Seconds until the next poll: the interval less jitter, or the backoff of a failing episode."""
        if self.failures:
            backoff = min(self.max_backoff, self.interval * 2 ** (self.failures - 1))
            return backoff * random.uniform(0.5, 1.0)
        return self.interval * (1.0 - self.jitter * random.random())

    def due(self) -> bool:
        return monotonic() >= self._next

    def attempt(self) -> None:
        """Poll now (one attempt at a time); raises the failure as a PromptctlError."""
        with self._attempt_lock:
            self.polls += 1
            try:
                self._poll()
            except Exception as exc:  # noqa: BLE001 - any failure is an episode, typed for the loader
                error = exc if isinstance(exc, PromptctlError) else RegistryUnavailable(f"{self.what}: {exc}")
                self.failures += 1
                if self.error is None:
                    logger.debug("promptctl: polling %s failed: %s", self.what, error)
                self.error = error
                self._next = monotonic() + self.delay()
                raise error from None
            if self.error is not None:
                logger.debug("promptctl: polling %s works again", self.what)
            self.error = None
            self.failures = 0
            self._next = monotonic() + self.delay()

    def start(self) -> None:
        """Start the background thread (again, in a forked child); cheap when it runs already."""
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        self._stop = threading.Event()
        self._attempt_lock = threading.Lock()  # a fork may have copied it held
        thread = threading.Thread(target=_poll_loop, args=(weakref.ref(self), self._stop), daemon=True)
        thread.name = f"promptctl-poll {self.what}"
        thread.start()

    def stop(self) -> None:
        """End the thread; a later ``start()`` (the source used again after ``close()``) starts a new one."""
        self._stop.set()
        self._pid = None


def _poll_loop(ref: weakref.ReferenceType[Poller], stop: threading.Event) -> None:
    while True:
        poller = ref()
        if poller is None:
            return
        wait = max(0.0, poller._next - monotonic())
        del poller
        if stop.wait(wait):
            return
        poller = ref()
        if poller is None:
            return
        if poller.due():
            try:
                poller.attempt()
            except PromptctlError:
                pass  # remembered in poller.error; the loader reports it once per episode
        del poller


# -- HTTP -------------------------------------------------------------------------------------------------


class Response:
    __slots__ = ("status", "reason", "headers", "body", "url")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes, url: str):
        self.status, self.reason, self.headers, self.body, self.url = status, reason, headers, body, url


class HttpClient:
    """GET over persistent connections (one per host; keep-alive when the server allows), redirects followed.

    Network failures become ``Unreachable``; a broken response (truncated body, garbage) ``RegistryUnavailable``.
    Thread-safe (one request at a time).
    """

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        from .. import __version__

        self._agent = f"promptctl/{__version__}"

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._connections = {}
                self._pid = os.getpid()
            for _ in range(MAX_REDIRECTS + 1):
                response = self._request(url, headers or {})
                location = response.headers.get("location")
                if response.status in REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                return response
        raise RegistryUnavailable(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": self._agent, "Accept-Encoding": "gzip", **headers}
        for attempt in (0, 1):
            connection = self._connections.get(key)
            reused = connection is not None
            if connection is None:
                factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                connection = factory(parts.netloc, timeout=self.timeout)
                self._connections[key] = connection
            try:
                connection.request("GET", target, headers=sent)
                raw = connection.getresponse()
                body = raw.read()
                reply = {name.lower(): value for name, value in raw.getheaders()}
                if raw.will_close:
                    self._drop(key)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop(key)
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: once more on a new one
                raise Unreachable(f"cannot read {url}: {exc or type(exc).__name__}") from None
            except http.client.IncompleteRead as exc:
                self._drop(key)
                raise RegistryUnavailable(
                    f"{url}: truncated response ({len(exc.partial)} bytes of {len(exc.partial) + (exc.expected or 0)})"
                ) from None
            except http.client.HTTPException as exc:
                self._drop(key)
                raise RegistryUnavailable(f"{url}: bad HTTP response ({type(exc).__name__}: {exc})") from None
            except OSError as exc:
                self._drop(key)
                raise Unreachable(f"cannot reach {url}: {exc.strerror or exc}") from None
            if reply.get("content-encoding", "").lower() == "gzip":
                import gzip
                import zlib

                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError, zlib.error) as exc:
                    raise RegistryUnavailable(f"{url}: truncated or corrupt gzip body ({exc})") from None
            return Response(raw.status, raw.reason, reply, body, url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop(self, key: tuple[str, str]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        with self._lock:
            for key in list(self._connections):
                self._drop(key)


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A published manifest, checked: NoRegistry when it is not one at all, InvalidContent for an unknown
    format version, RegistryUnavailable when it is broken (truncated JSON, missing prompts)."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        if data.lstrip()[:1] == b"{":
            raise RegistryUnavailable(f"{where} is truncated or not valid JSON ({exc})") from None
        raise NoRegistry(f"{where} is not the manifest of a published promptctl registry (not JSON)") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if not isinstance(found, str) or not found.startswith(FORMAT_FAMILY):
        raise NoRegistry(f"{where} is not the manifest of a published promptctl registry (no {FORMAT} format)")
    if found != FORMAT:
        raise InvalidContent(f"{where} has format {found!r}, which this promptctl cannot read ({FORMAT}): upgrade promptctl")
    if not isinstance(manifest.get("prompts"), dict):
        raise RegistryUnavailable(f"{where} is damaged: it has no prompts mapping")
    return manifest


# -- the source ---------------------------------------------------------------------------------------------


class HttpSource(ExportSource):
    """A published registry at an http(s) URL as a runtime source (see the module docstring).

    ``ttl``: seconds between manifest polls (less up to ``jitter``). ``timeout``: seconds per request
    (default: the TTL, between 1 and 10). Constructing one does no I/O; the first read fetches the
    manifest synchronously (a cold start) and starts the poller.
    """

    def __init__(self, url: str, ttl: float = 5.0, *, jitter: float = JITTER, timeout: float | None = None):
        base = registry_url(url)
        super().__init__(base)
        self.description = base
        self.url = base
        self.manifest_url = urljoin(base, MANIFEST)
        self._manifest_path = self.manifest_url  # ExportSource's messages name the manifest
        timeout = min(max(float(ttl), 1.0), 10.0) if timeout is None else float(timeout)
        self._manifest_client = HttpClient(timeout)
        self._object_client = HttpClient(timeout)
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._digest: str | None = None
        self._loaded = False
        self._cold_lock = threading.Lock()
        self._poller = Poller(self.url, self.poll, ttl, jitter)
        self._bad_objects: dict[str, float] = {}  # template hash -> monotonic time to try it again
        self._reported: set[str] = set()
        self.published_at: str | None = None
        self.manifest_changes = 0  # manifests that differed from the one before (for benchmarks and tests)

    # -- polling ------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """One conditional request for the manifest; True when it changed. Raises a PromptctlError."""
        headers = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        response = self._manifest_client.get(self.manifest_url, headers)
        if response.status == 304 and self._loaded:
            return False
        if response.status in (404, 410):
            raise NoRegistry(
                f"{self.url} is not a published promptctl registry: {self.manifest_url} answered HTTP {response.status}"
            )
        if response.status != 200:
            raise RegistryUnavailable(f"{self.manifest_url} answered HTTP {response.status} {response.reason}".rstrip())
        digest = hashlib.sha256(response.body).hexdigest()
        changed = digest != self._digest
        if changed:
            manifest = parse_manifest(response.body, self.manifest_url)
            with self._lock:
                self._manifest = manifest
                self._config = None
                self._digest = digest
                self.published_at = manifest.get("published_at") or manifest.get("created_at")
                self.manifest_changes += 1
        self._etag = response.headers.get("etag")
        self._last_modified = _safe_last_modified(response.headers)
        self._loaded = True
        return changed

    def _current(self) -> dict[str, Any]:
        if self._loaded:
            self._poller.start()  # no-op unless this process forked since
            return self._manifest
        with self._cold_lock:
            if not self._loaded:
                if not self._poller.due() and self._poller.error is not None:
                    raise _copy(self._poller.error)  # failed moments ago: do not hammer the origin
                self._poller.attempt()
                self._poller.start()
        return self._manifest

    @property
    def error(self) -> PromptctlError | None:
        """The failure of the current episode (None while polls succeed)."""
        return self._poller.error

    # -- Source (ExportSource reads the manifest through _current and objects through _object_bytes) ----------
    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        self._current()
        error = self._poller.error
        if error is not None and previous is not None:
            raise _copy(error)  # the loader keeps serving `previous`, marks spans stale, warns once per episode
        snapshot = super().channel_state(prompt_id, channel, previous)
        published_at = self.published_at
        if snapshot.published_at == published_at:
            return snapshot  # `previous` itself when nothing moved and no newer manifest came
        return ChannelSnapshot(
            snapshot.prompt_id, snapshot.channel, snapshot.token, snapshot.serves, snapshot.last_move, published_at
        )

    def _object_bytes(self, template_hash: str) -> bytes:
        """Fetch ``objects/<hash>.json``; its bytes must hash to the name or they are never served."""
        url = urljoin(self.url, f"{OBJECTS}/{template_hash}.json")
        retry_at = self._bad_objects.get(template_hash)
        if retry_at is not None and monotonic() < retry_at:
            raise InvalidContent(f"{url} failed its hash check; not served (checked again later)")
        response = self._object_client.get(url)
        if response.status != 200:
            raise RegistryUnavailable(f"{url} answered HTTP {response.status} {response.reason}".rstrip())
        actual = hashlib.sha256(response.body).hexdigest()
        if actual != template_hash:
            self._bad_objects[template_hash] = monotonic() + self._poller.max_backoff * random.uniform(0.5, 1.0)
            if template_hash not in self._reported:
                self._reported.add(template_hash)
                logger.error(
                    "promptctl: %s is not the object it names: its content hashes to %s; it is never served",
                    url,
                    actual[:12],
                )
            raise InvalidContent(f"{url} content hashes to {actual[:12]}, not {template_hash[:12]}: not served")
        self._bad_objects.pop(template_hash, None)
        return response.body

    def close(self) -> None:
        self._poller.stop()
        self._manifest_client.close()
        self._object_client.close()


def _safe_last_modified(headers: Mapping[str, str]) -> str | None:
    """``Last-Modified`` when it can serve as a validator: not within 2 s of the response's ``Date``.

    Servers store modification times in whole seconds (http.server, nginx): a manifest replaced twice in the
    same second keeps its Last-Modified, so validating against a fresh one could hide the second publish.
    """
    modified = headers.get("last-modified")
    if not modified:
        return None
    try:
        when = parsedate_to_datetime(modified)
        date = parsedate_to_datetime(headers["date"]) if "date" in headers else None
    except (TypeError, ValueError, IndexError):
        return None
    if date is None or (date - when).total_seconds() < 2:
        return None
    return modified


def _copy(error: PromptctlError) -> PromptctlError:
    """A fresh exception with the same type and message (one object raised in many threads tangles tracebacks)."""
    try:
        return type(error)(error.message)
    except TypeError:
        return RegistryUnavailable(error.message)


# -- a second source ----------------------------------------------------------------------------------------

_ANSWERS = (UnknownPrompt, UnknownChannel, UnknownVersion)  # the primary answered: the thing does not exist


class FallbackSource:
    """``primary``, and ``secondary`` (a bundled export) for what the primary cannot answer at a cold start.

    A channel first read while the primary is down is served from the secondary; later checks go to the
    primary again, so its failures mark spans stale until it answers, and then the primary's state wins.
    Content (``load``) comes from the primary, else from the secondary, both checked against the hash.
    """

    def __init__(self, primary: Source, secondary: Source):
        self.primary = primary
        self.secondary = secondary
        self.description = primary.description
        self._warned = False

    def _note(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "promptctl: cannot read %s (%s); serving the fallback source %s meanwhile",
                self.primary.description,
                exc,
                self.secondary.description,
            )

    def config(self) -> Config:
        try:
            return self.primary.config()
        except _ANSWERS:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the primary: the second source answers
            self._note(exc)
            return self.secondary.config()

    def default_channel(self) -> str | None:
        try:
            return self.primary.default_channel()
        except Exception as exc:  # noqa: BLE001
            self._note(exc)
            return self.secondary.default_channel()

    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        try:
            return self.primary.channel_state(prompt_id, channel, previous)
        except _ANSWERS:
            raise
        except Exception as exc:
            if previous is not None:
                raise  # something is served already: the loader keeps it and marks spans stale
            self._note(exc)
            return self.secondary.channel_state(prompt_id, channel, None)

    def load(self, prompt_id: str, version: str, template_hash: str | None = None) -> PromptDefinition:
        try:
            return self.primary.load(prompt_id, version, template_hash)
        except Exception as exc:
            if not template_hash:
                raise
            try:
                return self.secondary.load(prompt_id, version, template_hash)
            except Exception:  # noqa: BLE001 - the primary's failure is the one to report
                raise exc from None

    def close(self) -> None:
        self.primary.close()
        self.secondary.close()


def open_fleet_source(
    path_or_url: str,
    *,
    ttl: float = 5.0,
    fallback_source: str | os.PathLike[str] | None = None,
    remote: str | None = None,
) -> Source:
    """The source for ``promptctl.Registry(path_or_url, fallback_source=..., remote=...)``.

    An http(s) URL: a published registry (``HttpSource``). ``remote``: Git-remote mode on a local clone
    (``gitremote.GitRemoteSource``). ``fallback_source``: a second source (an export directory) behind it.
    """
    from .loader import open_source

    if is_url(path_or_url):
        if remote is not None:
            raise UsageError("remote= is for a Git clone; a URL is a published registry (no remote to fetch from)")
        primary: Source = HttpSource(path_or_url, ttl)
    elif remote is not None:
        from .gitremote import GitRemoteSource

        primary = GitRemoteSource(path_or_url, remote, interval=ttl)
    else:
        primary = open_source(path_or_url)
    if fallback_source is None:
        return primary
    fallback = os.fspath(fallback_source)
    if is_url(fallback):
        raise UsageError("fallback_source must be a local export directory (written by 'promptctl export' or 'publish')")
    return FallbackSource(primary, open_source(fallback))

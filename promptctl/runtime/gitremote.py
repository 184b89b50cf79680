"""Git-remote mode: a host that keeps a clone follows the registry by fetching its refs from a remote.

Every interval (less a random jitter) the clone fetches the registry's refs from the remote, exactly the ones
``promptctl pull`` moves (``channels.pull``: version tags and channel refs, whose first-parent chains are the
audit logs), fast-forward only, in one atomic ref update. Nothing else moves: no branch, no ``HEAD``, no
working-tree file, no remote-tracking ref. The runtime loader reads the channel refs from the clone as
usual (``GitSource``), so a promotion pushed to the remote is served after one fetch plus the loader's TTL.

Two ways to run it:

* in the application: ``promptctl.Registry(clone, ttl=5.0, remote="origin")`` (``GitRemoteSource``): a
  background thread fetches; while fetching fails, spans are marked stale and one warning per episode is
  logged (the loader keeps serving what the clone has);
* as a sidecar beside the application: ``promptctl sync --watch --remote origin --interval 5``
  (``sync_watch``), the application reading the clone with a plain ``promptctl.Registry(clone)``.

A channel moved on both sides (someone promoted inside the replica's clone) is not fast-forwardable: the
fetch is refused (``Conflict``) and reported, and nothing is changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import Conflict, GitFailed, PromptctlError, Unreachable
from .gitsource import GitSource, discover
from .httpsource import JITTER, Poller, _copy
from .source import ChannelSnapshot

if TYPE_CHECKING:
    from ..channels import SyncReport

logger = logging.getLogger("promptctl")

# Failures a watching sync rides out (the remote is down, moved on both sides, git hiccups): reported, retried.
TRANSIENT = (Unreachable, Conflict, GitFailed)


def sync(path: str | os.PathLike[str], remote: str | None = None) -> SyncReport:
    """Fetch the registry's refs from ``remote`` (default ``origin``) into the clone holding ``path``.

    Fast-forward only, never the working tree or another branch (``channels.pull``). Works in bare clones.
    Raises Unreachable (remote down), Conflict (a channel moved on both sides: nothing changed), NotFound.
    """
    from ..channels import pull
    from ..config import parse_config
    from ..registry import PromptRepo

    try:
        root, _, _ = discover(path)
    except OSError as exc:
        from ..errors import NotAGitRepository

        raise NotAGitRepository(f"{path}: {exc.strerror or exc}") from None
    repo = PromptRepo(root, parse_config({}))  # pull needs the root and an object reader, not the registry files
    try:
        return pull(repo, remote)
    finally:
        if "reader" in repo.__dict__:
            repo.reader.close()


class GitRemoteSource(GitSource):
    """A clone that fetches the registry's refs from ``remote`` every ``interval`` seconds (in a thread).

    The first read starts the fetching (the first fetch at once, in the background): a cold start serves what
    the clone already has. While fetches fail, ``channel_state`` raises the failure so the loader keeps the
    last good version and marks spans stale; fetches back off until the remote answers again.
    """

    def __init__(self, path: str | os.PathLike[str], remote: str = "origin", interval: float = 5.0, jitter: float = JITTER):
        super().__init__(path)
        self.remote = remote
        self.description = f"{path} (following {remote})"
        self.last_report: SyncReport | None = None
        self._poller = Poller(f"{remote} for {path}", self._fetch, interval, jitter)

    def _fetch(self) -> None:
        self.last_report = sync(self._path, self.remote)

    @property
    def error(self) -> PromptctlError | None:
        """The failure of the current episode (None while fetches succeed)."""
        return self._poller.error

    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        self._poller.start()
        error = self._poller.error
        if error is not None and previous is not None:
            raise _copy(error)  # the loader keeps serving `previous`, marks spans stale, warns once per episode
        return super().channel_state(prompt_id, channel, previous)

    def close(self) -> None:
        self._poller.stop()
        super().close()


def sync_watch(
    path: str | os.PathLike[str],
    remote: str | None,
    interval: float,
    on_sync: Callable[[SyncReport], None],
    on_error: Callable[[PromptctlError, bool], None],
    stop: threading.Event,
) -> None:
    """The sidecar loop: sync every ``interval`` (less jitter; backing off while it fails) until ``stop``.

    ``on_sync`` gets every report with changes; ``on_error(error, recovered)`` is called once when an
    episode starts (``recovered`` False) and once when it ends (True). A first failure that retrying cannot
    fix (not a clone, unknown remote) is raised.
    """
    poller = Poller(f"{remote or 'origin'} for {path}", lambda: None, interval)
    first = True
    while True:
        try:
            report = sync(path, remote)
        except PromptctlError as exc:
            if first and not isinstance(exc, TRANSIENT):
                raise
            poller.failures += 1
            if poller.error is None:
                on_error(exc, False)
            poller.error = exc
        else:
            if poller.error is not None:
                on_error(poller.error, True)
            poller.error, poller.failures = None, 0
            if report.changes or report.notes:
                on_sync(report)
        first = False
        if stop.wait(poller.delay()):
            return

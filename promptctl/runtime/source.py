"""Where the runtime loader reads prompts from: the Source interface and what a source answers.

Two sources exist today: ``GitSource`` (a Git repository: refs and objects, never the working tree) and
``ExportSource`` (a directory written by ``promptctl export``). A later HTTP source serves the same export
layout over the network; the loader only ever talks to this interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..model import AuditEntry, Serving
    from ..promptfile import PromptDefinition


class ChannelSnapshot:
    """What one channel of one prompt serves at one moment.

    ``token`` changes whenever what is served may have changed (the state commit id, or the export's
    serves); the loader compares tokens to skip any work when nothing moved.
    """

    __slots__ = ("prompt_id", "channel", "token", "serves", "last_move", "published_at")

    def __init__(
        self,
        prompt_id: str,
        channel: str,
        token: str,
        serves: tuple[Serving, ...],
        last_move: AuditEntry | None = None,
        published_at: str | None = None,  # a published registry's manifest time (span prompt.published_at)
    ):
        self.prompt_id = prompt_id
        self.channel = channel
        self.token = token
        self.serves = serves
        self.last_move = last_move
        self.published_at = published_at

    def __repr__(self) -> str:
        return f"<ChannelSnapshot {self.prompt_id}@{self.channel} {self.token[:12]} {self.serves}>"


class Source(Protocol):
    """A read-only view of a registry. Every method may raise a ``PromptctlError``:

    * ``UnknownPrompt`` / ``UnknownChannel`` / ``UnknownVersion``: the thing asked for does not exist;
    * ``RegistryUnavailable`` / ``InvalidContent`` / ``EnvironmentProblem``: the source is unreadable or broken.
    """

    description: str  # for messages: a path or URL

    def config(self) -> Config:
        """Registry settings (variants -> channels, schema preset)."""
        ...

    def default_channel(self) -> str | None:
        """The channel to serve when the caller names none (None: "current")."""
        ...

    def channel_state(self, prompt_id: str, channel: str, previous: ChannelSnapshot | None = None) -> ChannelSnapshot:
        """What ``channel`` serves now. Returns ``previous`` itself when nothing moved (the cheap path)."""
        ...

    def load(self, prompt_id: str, version: str, template_hash: str | None = None) -> PromptDefinition:
        """The prompt's content at ``version``. When ``template_hash`` is given the content must hash to it."""
        ...

    def close(self) -> None: ...

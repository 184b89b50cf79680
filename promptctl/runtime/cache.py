"""The loader's per-process cache: loaded versions (compiled once) and channel entries with a TTL deadline.

Entries are replaced, never mutated in a way a reader could see half-done (only the deadline of a channel
entry moves forward in place), so readers on the hot path take no lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .split import bucket, random_bucket, thresholds

if TYPE_CHECKING:
    from ..promptfile import PromptDefinition
    from ..render import CompiledPrompt
    from .prompt import ResolvedPrompt
    from .source import ChannelSnapshot

MAX_RESOLVED = 512  # resolved combinations (locale, tier, variant, channel, stale) cached per version


class VersionEntry:
    """One version of one prompt: its definition, compiled templates, and the ResolvedPrompts made of it."""

    __slots__ = ("prompt_id", "version", "definition", "compiled", "resolved")

    def __init__(self, prompt_id: str, version: str | None, definition: PromptDefinition, compiled: CompiledPrompt):
        self.prompt_id = prompt_id
        self.version = version
        self.definition = definition
        self.compiled = compiled
        self.resolved: dict[tuple[Any, ...], ResolvedPrompt] = {}

    def remember(self, key: tuple[Any, ...], prompt: ResolvedPrompt) -> ResolvedPrompt:
        if len(self.resolved) < MAX_RESOLVED:  # unbounded labels (random locales...) must not grow memory
            self.resolved[key] = prompt
        return prompt


class ChannelEntry:
    """What one channel serves, as loaded versions: ``single`` when not split, else ``choices`` by bucket."""

    __slots__ = ("snapshot", "deadline", "single", "choices", "stale")

    def __init__(
        self,
        snapshot: ChannelSnapshot,
        deadline: float,
        versions: list[VersionEntry],
        stale: bool = False,
    ):
        self.snapshot = snapshot
        self.deadline = deadline
        self.stale = stale
        if len(versions) == 1:
            self.single: VersionEntry | None = versions[0]
            self.choices: tuple[tuple[int, VersionEntry], ...] = ((10000, versions[0]),)
        else:
            self.single = None
            bounds = thresholds([s.percent for s in snapshot.serves])
            self.choices = tuple(zip(bounds, reversed(versions), strict=True))

    def pick(self, prompt_id: str, channel: str, key: Any) -> VersionEntry:
        """The version a split serves to ``key`` (the documented bucket; a random one without a key)."""
        value = random_bucket() if key is None else bucket(prompt_id, channel, key)
        for bound, entry in self.choices:
            if value < bound:
                return entry
        return self.choices[-1][1]

    def marked_stale(self, deadline: float) -> ChannelEntry:
        entry = ChannelEntry.__new__(ChannelEntry)
        entry.snapshot, entry.single, entry.choices = self.snapshot, self.single, self.choices
        entry.deadline, entry.stale = deadline, True
        return entry

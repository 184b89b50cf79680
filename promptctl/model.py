"""Frozen data types that cross module boundaries. JSON forms come from ``to_json`` so keys stay stable."""

from __future__ import annotations

from .hashing import short_hash
from .records import Factory, Record

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings
if TYPE_CHECKING:
    from typing import Any


class VersionInfo(Record):
    """One released version: an annotated tag ``<id>/v<N>``."""

    prompt_id: str
    number: int
    tag_oid: str
    commit: str
    template_hash: str
    created_at: str  # ISO 8601 with zone (the tagger date)
    author: str  # "Name <email>"
    message: str

    @property
    def version(self) -> str:
        return f"v{self.number}"

    @property
    def tag(self) -> str:
        return f"{self.prompt_id}/v{self.number}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "version": self.version,
            "tag": self.tag,
            "template_hash": self.template_hash,
            "template_hash_short": short_hash(self.template_hash),
            "commit": self.commit,
            "created_at": self.created_at,
            "author": self.author,
            "message": self.message,
        }


class Serving(Record):
    """One version a channel serves and the share of traffic it gets (percent, 1..100)."""

    version: str
    percent: int
    template_hash: str = ""


class AuditEntry(Record):
    """One channel move: a state commit on the channel ref."""

    prompt_id: str
    channel: str
    action: str  # promote | rollback
    from_serves: tuple[Serving, ...]
    serves: tuple[Serving, ...]
    reason: str
    author: str
    at: str  # ISO 8601 with zone
    commit: str
    signed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "channel": self.channel,
            "action": self.action,
            "from": serves_text(self.from_serves),
            "to": serves_text(self.serves),
            "serves": [{"version": s.version, "percent": s.percent, "template_hash": s.template_hash} for s in self.serves],
            "reason": self.reason,
            "author": self.author,
            "at": self.at,
            "commit": self.commit,
        }


class ChannelState(Record):
    prompt_id: str
    channel: str
    serves: tuple[Serving, ...]
    last_move: AuditEntry | None = None
    ref_oid: str = ""
    extra: dict[str, Any] = Factory(dict)

    @property
    def primary(self) -> Serving:
        """The version serving the most traffic (the rollout base during a split)."""
        return self.serves[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "channel": self.channel,
            "serves": [{"version": s.version, "percent": s.percent, "template_hash": s.template_hash} for s in self.serves],
            "since": self.last_move.at if self.last_move else None,
            "by": self.last_move.author if self.last_move else None,
            "reason": self.last_move.reason if self.last_move else None,
        }


def serves_text(serves: tuple[Serving, ...]) -> str:
    """``v23`` for a single version, ``v22:95,v23:5`` for a split, ``-`` for nothing."""
    if not serves:
        return "-"
    if len(serves) == 1 and serves[0].percent == 100:
        return serves[0].version
    return ",".join(f"{s.version}:{s.percent}" for s in serves)

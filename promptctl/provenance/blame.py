"""``blame --at``: what a channel served at a moment, read from the audit log that travels with the repo.

Moments are ISO 8601 with a zone, a few relative forms ("3 hours ago", "yesterday", "now") or ``@<unix
seconds>``; ``parse_moment`` is a small parser with no dependency, and its error names every accepted form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import UnknownChannel, UnknownPrompt, UsageError
from ..model import AuditEntry, Serving, serves_text
from ..registry import PromptRepo
from ..spec import validate_channel, validate_id

ACCEPTED_FORMS = (
    "ISO 8601 with a zone (2026-11-20T14:05:00Z, 2026-11-20T15:05:00+01:00, 2026-11-20 14:05:00.250Z), "
    "a relative form (now, yesterday, 45 seconds ago, 90 minutes ago, 3 hours ago, an hour ago, 2 days ago, "
    "1 week ago; also 3h ago, 2d ago), or @<unix seconds>"
)
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_RELATIVE = re.compile(r"(\d{1,9}(?:\.\d+)?)\s*([a-z]+)\s+ago")
_EPOCH = re.compile(r"@(\d{1,12}(?:\.\d{1,9})?)")
_ISO_ZONE_HHMM = re.compile(r"([+-]\d{2})(\d{2})$")


def _bad_moment(text: str, why: str = "") -> UsageError:
    return UsageError(f"cannot read the moment {text!r}{why}: use {ACCEPTED_FORMS}")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 timestamp that must carry a zone; returned in UTC. ValueError otherwise."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    value = _ISO_ZONE_HHMM.sub(r"\1:\2", value)  # +0100 -> +01:00 (git's own iso format)
    # Python 3.10's fromisoformat takes 3 or 6 fractional digits only: pad or cut to 6.
    match = re.match(r"(.*T?\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", value)
    if match:
        value = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no zone")
    return parsed.astimezone(timezone.utc)


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """A moment as a UTC datetime; UsageError (exit 2) naming the accepted forms when it cannot be read."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    raw = text if isinstance(text, str) else ""
    value = " ".join(raw.strip().lower().split())
    if value == "now":
        return now
    if value == "yesterday":
        return now - timedelta(days=1)
    value = re.sub(r"^an? ", "1 ", value)  # "an hour ago", "a week ago"
    match = _RELATIVE.fullmatch(value)
    if match:
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise _bad_moment(raw, f" (unknown unit {match.group(2)!r})")
        try:
            return now - timedelta(seconds=float(match.group(1)) * unit)
        except OverflowError:
            raise _bad_moment(raw, " (too far back)") from None
    match = _EPOCH.fullmatch(value)
    if match:
        try:
            return datetime.fromtimestamp(float(match.group(1)), timezone.utc)
        except (OverflowError, ValueError, OSError):
            raise _bad_moment(raw, " (out of range)") from None
    if re.match(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return parse_iso(raw)
        except ValueError as exc:
            why = " (it has no zone: add Z or +HH:MM)" if str(exc) == "no zone" else ""
            raise _bad_moment(raw, why) from None
    raise _bad_moment(raw)


def format_moment(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, whole seconds unless the moment has a fraction."""
    utc = moment.astimezone(timezone.utc)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def entry_time(entry: AuditEntry) -> datetime:
    return parse_iso(entry.at)


@dataclass(frozen=True)
class ChannelAt:
    """A channel at a moment: the move in force then (None before its first move) and the moves around it."""

    prompt_id: str
    channel: str
    at: datetime
    move: AuditEntry | None  # the latest move at or before ``at``
    next_move: AuditEntry | None  # the first move after ``at`` (None: still in force)
    first_move: AuditEntry  # the channel's first move ever

    @property
    def serves(self) -> tuple[Serving, ...]:
        return self.move.serves if self.move else ()

    @property
    def before_first_move(self) -> bool:
        return self.move is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "channel": self.channel,
            "at": format_moment(self.at),
            "state": "before_first_move" if self.move is None else "serving",
            "serves": [{"version": s.version, "percent": s.percent, "template_hash": s.template_hash} for s in self.serves],
            "serves_text": serves_text(self.serves) if self.move else None,
            "move": self.move.to_json() if self.move else None,
            "until": self.next_move.at if self.next_move else None,
            "next_move": self.next_move.to_json() if self.next_move else None,
            "first_move_at": self.first_move.at,
        }


def timeline(entries_newest_first: list[AuditEntry]) -> list[tuple[datetime, AuditEntry]]:
    """One channel's moves oldest first, each with the moment it took effect.

    The order is the audit log's own (the first-parent chain), not the clock's: a move whose recorded time is
    earlier than the move before it (a skewed clock) takes effect at that earlier move's time.
    """
    out: list[tuple[datetime, AuditEntry]] = []
    for entry in reversed(entries_newest_first):
        moment = entry_time(entry)
        if out and moment < out[-1][0]:
            moment = out[-1][0]
        out.append((moment, entry))
    return out


def channel_histories(repo: PromptRepo, prompt_id: str | None = None) -> dict[tuple[str, str], list[AuditEntry]]:
    """Every channel's moves, newest first as in the log, keyed by (prompt id, channel). Empty: nothing moved."""
    from ..channels import ChannelStore

    store = ChannelStore(repo)
    ids = [prompt_id] if prompt_id else sorted({s.prompt_id for s in store.all_states()})
    grouped: dict[tuple[str, str], list[AuditEntry]] = {}
    for pid in ids:
        for entry in store.history(pid):
            grouped.setdefault((entry.prompt_id, entry.channel), []).append(entry)
    return grouped


def blame(repo: PromptRepo, prompt_id: str, at: datetime, channel: str | None = None) -> list[ChannelAt]:
    """The state of one channel (or every channel of the prompt) at ``at``.

    Raises UnknownChannel when no channel of the repository (or of this prompt, or this channel) has moved,
    and UnknownPrompt for a prompt the registry does not know.
    """
    from ..channels import ChannelStore

    validate_id(prompt_id)
    if channel is not None:
        validate_channel(channel)
    store = ChannelStore(repo)
    history = store.history(prompt_id)
    if not history:
        if not repo.known_prompt(prompt_id):
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}")
        if not store.all_states():
            raise UnknownChannel(
                "no channel has moved yet in this repository: nothing to blame "
                f"(the audit log starts with the first 'promptctl promote {prompt_id} vN')"
            )
        raise UnknownChannel(f"no channel of {prompt_id} has moved yet: nothing to blame")
    by_channel: dict[str, list[AuditEntry]] = {}
    for entry in history:
        by_channel.setdefault(entry.channel, []).append(entry)
    if channel is not None and channel not in by_channel:
        raise UnknownChannel(
            f"channel {channel!r} of {prompt_id} has never moved (channels with moves: {', '.join(sorted(by_channel))})"
        )
    results = []
    for name in [channel] if channel else sorted(by_channel):
        moves = timeline(by_channel[name])
        move = next_move = None
        for moment, entry in moves:
            if moment <= at:
                move = entry
            else:
                next_move = entry
                break
        results.append(ChannelAt(prompt_id, name, at, move, next_move, moves[0][1]))
    return results

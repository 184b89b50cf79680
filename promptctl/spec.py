"""Prompt ids, version specs and channel names: parsing and validation, pure.

Every value that reaches git as part of a ref name passes through here first.
"""

from __future__ import annotations

import re

from .errors import InvalidChannelName, InvalidId, InvalidVersionSpec
from .records import Record

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
CHANNEL_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,39}")
VERSION_PATTERN = re.compile(r"v([1-9][0-9]{0,8})")
DEFAULT_CHANNEL = "current"
TAG_PREFIX = "refs/tags/"
CHANNEL_PREFIX = "refs/promptctl/channels/"


def validate_id(prompt_id: str) -> str:
    if not isinstance(prompt_id, str) or not ID_PATTERN.fullmatch(prompt_id):
        shown = prompt_id if isinstance(prompt_id, str) and len(prompt_id) <= 120 else repr(prompt_id)[:120]
        raise InvalidId(
            f"invalid prompt id {shown!r}: use 1-100 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return prompt_id


def validate_channel(name: str) -> str:
    if not isinstance(name, str) or not CHANNEL_PATTERN.fullmatch(name):
        raise InvalidChannelName(
            f"invalid channel name {name!r}: use [a-z][a-z0-9-]{{0,39}} (for example current, staging, production)"
        )
    return name


def parse_version(text: str) -> int:
    """'v12' -> 12. Raises InvalidVersionSpec for anything else."""
    match = VERSION_PATTERN.fullmatch(text or "")
    if not match:
        raise InvalidVersionSpec(f"invalid version {text!r}: versions look like v1, v2, v23")
    return int(match.group(1))


def format_version(number: int) -> str:
    return f"v{number}"


class VersionSpec(Record):
    """What a user named: a prompt and, optionally, a version number or a channel.

    ``number`` and ``channel`` are never both set; neither set means "the latest version".
    """

    prompt_id: str
    number: int | None = None
    channel: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.prompt_id}@v{self.number}"
        if self.channel is not None:
            return f"{self.prompt_id}@{self.channel}"
        return self.prompt_id


def parse_spec(text: str, version: str | None = None) -> VersionSpec:
    """Parse ``<id>``, ``<id>@v<N>`` or ``<id>@<channel>``.

    ``version`` is an optional separate argument (``promptctl diff id v1 v2`` style); it may be
    ``v<N>`` or a channel name, and must not be combined with an ``@`` in ``text``.
    """
    if not isinstance(text, str) or not text:
        raise InvalidVersionSpec("empty prompt spec: name a prompt, e.g. support_intent_classifier@v2")
    prompt_id, sep, selector = text.partition("@")
    validate_id(prompt_id)
    if sep and version is not None:
        raise InvalidVersionSpec(f"{text!r} already names a version; do not also pass {version!r}")
    if version is not None:
        selector, sep = version, "@"
    if not sep:
        return VersionSpec(prompt_id)
    if selector.startswith("v") and selector[1:2].isdigit():
        return VersionSpec(prompt_id, number=parse_version(selector))
    if not selector:
        raise InvalidVersionSpec(f"invalid spec {text!r}: nothing after '@'")
    try:
        return VersionSpec(prompt_id, channel=validate_channel(selector))
    except InvalidChannelName:
        raise InvalidVersionSpec(
            f"invalid version spec {text if not version else version!r}: use v<N> (e.g. v3) or a channel name"
        ) from None


def tag_name(prompt_id: str, number: int) -> str:
    """Short tag name, e.g. ``support_intent_classifier/v3``."""
    return f"{validate_id(prompt_id)}/v{number}"


def tag_ref(prompt_id: str, number: int) -> str:
    return TAG_PREFIX + tag_name(prompt_id, number)


def channel_ref(prompt_id: str, channel: str) -> str:
    return f"{CHANNEL_PREFIX}{validate_id(prompt_id)}/{validate_channel(channel)}"


def parse_tag_name(name: str) -> tuple[str, int] | None:
    """``id/v3`` -> ("id", 3); anything that is not a version tag -> None."""
    prompt_id, sep, version = name.rpartition("/")
    if not sep or not ID_PATTERN.fullmatch(prompt_id):
        return None
    match = VERSION_PATTERN.fullmatch(version)
    return (prompt_id, int(match.group(1))) if match else None


_DURATION_UNITS = {
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "week", "weeks"), 604800.0),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def duration_seconds(text: str, *, bare_seconds: bool = False) -> float | None:
    """``90s``, ``500ms``, ``1h30m``, ``7d``, ``2 minutes`` -> seconds; a bare number only when
    ``bare_seconds``. None when ``text`` is not such a duration (callers word their own error)."""
    value = (text or "").strip().lower().replace(" ", "")
    if not value:
        return None
    if _BARE_NUMBER.fullmatch(value):
        return float(value) if bare_seconds else None
    parts = _DURATION_PART.findall(value)
    if "".join(n + u for n, u in parts) != value or any(u not in _DURATION_UNITS for _, u in parts):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)

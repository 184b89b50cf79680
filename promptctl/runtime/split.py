"""Rollout splits: a request key -> a bucket -> the version that serves it (docs/design.md, pure).

``bucket(id, channel, key)`` is ``int(sha256("<id>\\0<channel>\\0<key>").hexdigest()[:8], 16) % 10000``, so the
same key gets the same version in every process on every machine. Versions are listed oldest rollout base
first; the newest (last) serves buckets ``[0, p_last * 100)``, the one before it the next ``p * 100`` buckets,
and the base the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BUCKETS = 10000

_sha256: Any = None  # hashlib and random load on the first split, not at import
_randrange: Any = None


def bucket(prompt_id: str, channel: str, key: object) -> int:
    """The bucket (0..9999) of a request key; a non-str key is formatted with ``str()`` first."""
    global _sha256
    if _sha256 is None:
        from hashlib import sha256 as _sha256
    return int(_sha256(f"{prompt_id}\0{channel}\0{key}".encode()).hexdigest()[:8], 16) % BUCKETS


def random_bucket() -> int:
    """No key: a random bucket per call."""
    global _randrange
    if _randrange is None:
        import random

        _randrange = random.Random().randrange
    return _randrange(BUCKETS)


def thresholds(percents: Sequence[int]) -> tuple[int, ...]:
    """Upper bucket bounds, newest first: ``[95, 5]`` -> ``(500, 10000)`` for the versions ``[v23, v22]``.

    The result is aligned with ``reversed(percents)``; the last bound is always ``BUCKETS`` so every bucket is
    served even when the percentages do not add up to exactly 100.
    """
    bounds = []
    total = 0
    for percent in reversed(percents):
        total += percent * 100
        bounds.append(min(total, BUCKETS))
    if bounds:
        bounds[-1] = BUCKETS
    return tuple(bounds)

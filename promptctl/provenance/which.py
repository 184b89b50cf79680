"""``which``: a template hash (or a prefix of one, as spans carry it) back to every version that recorded it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import AmbiguousHash, UnknownHash, UsageError
from ..model import VersionInfo
from ..promptfile import METADATA_FILE
from ..registry import PromptRepo

MIN_PREFIX = 8
HASH_QUERY = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class HashMatch:
    """One version whose recorded template hash starts with the query, and the files that hash covers."""

    version: VersionInfo
    files: tuple[str, ...]  # repository-relative paths: prompt.yaml, the bodies, the partials included

    def to_json(self) -> dict[str, Any]:
        return {**self.version.to_json(), "files": list(self.files)}


def normalize_query(text: str) -> str:
    """Lower-case hex of 8..64 digits; anything else is a usage error naming the accepted form."""
    query = (text or "").strip().lower()
    if not HASH_QUERY.fullmatch(query):
        raise UsageError(
            f"invalid template hash {text!r}: give {MIN_PREFIX} to 64 hex digits "
            "(the 12-digit prompt.template_hash of a span, or a full digest)"
        )
    return query


def _files_of(repo: PromptRepo, versions: list[VersionInfo]) -> list[tuple[str, ...]]:
    reg = repo.config.registry
    out = []
    for version, definition in zip(versions, repo.version_definitions_lenient(versions), strict=True):
        if isinstance(definition, Exception):  # a version that no longer loads still has a tag worth showing
            out.append(())
            continue
        names = [f"{reg}/{version.prompt_id}/{METADATA_FILE}"]
        names += [f"{reg}/{version.prompt_id}/{name}" for name in sorted(definition.bodies)]
        names += [f"{reg}/{path}" for path in sorted(definition.partials)]
        out.append(tuple(names))
    return out


def _working_tree_hint(repo: PromptRepo, query: str) -> str:
    """Name an uncommitted working-tree prompt with this hash: the usual source of an unregistered span."""
    for prompt_id in repo.prompt_ids():
        try:
            current = repo.working_definition(prompt_id).template_hash
        except Exception:  # noqa: BLE001 - an invalid working copy is simply not a match
            continue
        if current.startswith(query):
            return (
                f"; it is the uncommitted working tree of {repo.config.registry}/{prompt_id} "
                f"(never released: 'promptctl commit {prompt_id}' would make it a version)"
            )
    return ""


def which(repo: PromptRepo, text: str) -> list[HashMatch]:
    """Every version of every prompt whose recorded template hash starts with ``text``, oldest first.

    Several versions can share one hash (content that came back in a later version): they are all returned.
    Raises UnknownHash when none matches and AmbiguousHash (with every candidate) when the prefix matches
    more than one distinct content.
    """
    query = normalize_query(text)
    versions = repo.versions()
    found = [v for v in versions if v.template_hash and v.template_hash.startswith(query)]
    if not found:
        prompts = len({v.prompt_id for v in versions})
        raise UnknownHash(
            f"no version has template hash {query} (searched {len(versions)} versions of {prompts} prompts)"
            + _working_tree_hint(repo, query)
        )
    found.sort(key=lambda v: (v.template_hash, v.created_at, v.prompt_id, v.number))
    matches = [HashMatch(v, files) for v, files in zip(found, _files_of(repo, found), strict=True)]
    distinct = sorted({m.version.template_hash for m in matches})
    if len(distinct) > 1:
        shown = ", ".join(
            f"{h[: max(len(query) + 4, 12)]} ({', '.join(m.version.tag for m in matches if m.version.template_hash == h)})"
            for h in distinct
        )
        raise AmbiguousHash(
            f"template hash prefix {query} is ambiguous: {len(distinct)} different contents match: {shown}; "
            "give more hex digits",
            matches,
        )
    return matches


__all__ = ["HashMatch", "MIN_PREFIX", "normalize_query", "which"]

"""The registry side of drift: thresholds from each version's prompt.yaml, and the rollback gate.

A rollback is never done here by hand: ``apply_rollbacks`` calls ``ChannelStore.rollback``, the same audited
compare-and-swap path as ``promptctl rollback``, so protected channels keep their rules (a reason, a
signature) and the move lands in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import PromptctlError, ReasonRequired
from ..model import AuditEntry, serves_text
from .analysis import DriftRow


def version_metadata(repo: Any, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """prompt.yaml of each (prompt id, version) that exists in the registry, read from the version's commit."""
    wanted: dict[str, set[str]] = {}
    for prompt_id, version in pairs:
        wanted.setdefault(prompt_id, set()).add(version)
    found = []
    for prompt_id, versions in sorted(wanted.items()):
        try:
            known = repo.versions(prompt_id)
        except PromptctlError:
            continue  # spans may name prompts this registry does not hold: they get the defaults
        found.extend(v for v in known if v.version in versions)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for info, definition in zip(found, repo.version_definitions_lenient(found), strict=True):
        if not isinstance(definition, Exception):
            out[(info.prompt_id, info.version)] = dict(definition.meta)
    return out


@dataclass(frozen=True)
class RollbackPlan:
    """One channel serving a drifting version, and what ``rollback`` would do to it."""

    prompt_id: str
    channel: str
    version: str  # the drifting version
    serves: str  # what the channel serves now, e.g. v5 or v4:90,v5:10
    target: str | None  # the version rollback returns to; None when it cannot
    protected: bool
    requires_signature: bool
    blocked: str | None = None  # why rollback would refuse (no earlier version...)
    applied: AuditEntry | None = None
    error: str | None = None  # why the applied rollback failed
    error_code: int | None = None  # and its exit code

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt_id,
            "channel": self.channel,
            "drifting_version": self.version,
            "serves": self.serves,
            "rollback_to": self.target,
            "protected": self.protected,
            "requires_signature": self.requires_signature,
            "blocked": self.blocked,
            "applied": None
            if self.applied is None
            else {**self.applied.to_json(), "signed": self.applied.signed},
            "error": self.error,
        }


def plan_rollbacks(repo: Any, alerts: Sequence[DriftRow]) -> list[RollbackPlan]:
    """For each alerting (prompt, version): every channel that serves that version now, and its rollback target."""
    from ..channels import ChannelStore, rollback_target

    store = ChannelStore(repo)
    plans: list[RollbackPlan] = []
    seen: set[tuple[str, str]] = set()
    for row in alerts:
        key = (row.prompt_id, row.version)
        if key in seen:
            continue
        seen.add(key)
        try:
            states = store.states(row.prompt_id)
        except PromptctlError:
            continue
        for state in states:
            if row.version not in {s.version for s in state.serves}:
                continue
            where = f"{state.prompt_id}@{state.channel}"
            target, blocked = None, None
            try:
                target = rollback_target(store.history(state.prompt_id, state.channel), state.serves, where)
            except PromptctlError as exc:
                blocked = exc.message
            plans.append(
                RollbackPlan(
                    prompt_id=state.prompt_id,
                    channel=state.channel,
                    version=row.version,
                    serves=serves_text(state.serves),
                    target=target,
                    protected=state.channel in repo.config.protected,
                    requires_signature=state.channel in repo.config.require_signed,
                    blocked=blocked,
                )
            )
    return plans


def apply_rollbacks(
    repo: Any, plans: Sequence[RollbackPlan], reason: str, sign: bool | None = None
) -> list[RollbackPlan]:
    """Roll each planned channel back through ``ChannelStore.rollback``; a refusal is recorded, not hidden.

    A protected channel without a reason is refused before any channel moves (``ReasonRequired``), so a
    missing ``--reason`` changes nothing at all.
    """
    from ..channels import ChannelStore

    missing = [p for p in plans if not p.blocked and p.protected and not (reason or "").strip()]
    if missing:
        names = ", ".join(f"{p.prompt_id}@{p.channel}" for p in missing)
        raise ReasonRequired(f"{names} {'is a protected channel' if len(missing) == 1 else 'are protected channels'} "
                             "(channels.protected): say why with --reason '...'; nothing was rolled back")  # fmt: skip
    store = ChannelStore(repo)
    done: list[RollbackPlan] = []
    for plan in plans:
        if plan.blocked:
            done.append(plan)
            continue
        try:
            entry = store.rollback(plan.prompt_id, channel=plan.channel, reason=reason, sign=sign)
        except PromptctlError as exc:
            done.append(replace(plan, error=exc.message, error_code=int(exc.exit_code)))
            continue
        done.append(replace(plan, applied=entry, target=serves_text(entry.serves)))
    return done

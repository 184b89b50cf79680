"""Channels: Git refs moved by audited compare-and-swap promote / rollback, and push / pull of the registry.

A channel is the ref ``refs/promptctl/channels/<id>/<channel>``. It points at a *state commit* (empty tree)
whose message trailers say what the channel serves; the commit's first-parent chain is the channel's audit
log. One ``git update-ref <ref> <new> <old>`` moves state and log together, so a concurrent move can never be
lost silently: the loser re-reads the state and tries again, or fails with ``Conflict``. The exact message
format is the contract in docs/design.md ("Channels and the audit log"); the runtime loader reads it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from . import gitstore
from .errors import (
    Conflict,
    GitFailed,
    InvalidContent,
    NoEarlierVersion,
    NotFound,
    NothingChanged,
    ReasonRequired,
    Refused,
    SignatureRequired,
    UnknownChannel,
    UnknownPrompt,
    UnknownVersion,
    UsageError,
)
from .model import AuditEntry, ChannelState, Serving, serves_text
from .records import Factory, Record
from .spec import (
    CHANNEL_PATTERN,
    CHANNEL_PREFIX,
    DEFAULT_CHANNEL,
    ID_PATTERN,
    TAG_PREFIX,
    VersionSpec,
    channel_ref,
    format_version,
    parse_tag_name,
    parse_version,
    tag_ref,
    validate_channel,
    validate_id,
)

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings
if TYPE_CHECKING:
    from typing import Any

ACTIONS = ("promote", "rollback")
T_ACTION = "Promptctl-Action"
T_PROMPT = "Promptctl-Prompt"
T_CHANNEL = "Promptctl-Channel"
T_FROM = "Promptctl-From"
T_TO = "Promptctl-To"
T_SERVES = "Promptctl-Serves"
T_SERVES_HASH = "Promptctl-Serves-Hash"
NOTHING = "-"  # From: of a channel's first move

MAX_ATTEMPTS = 8  # compare-and-swap attempts before a promote / rollback gives up with Conflict
STATE_FIELDS = ("refname", "objectname", "raw")

# ``git log %G?`` codes -> what verify reports. Only G passes: U is a valid signature by a key that is not
# trusted (GPG) or not in gpg.ssh.allowedSignersFile (SSH), which anyone could have made.
SIGNATURE_STATUS = {
    "G": "good",
    "U": "untrusted-key",
    "X": "expired-signature",
    "Y": "expired-key",
    "R": "revoked-key",
    "E": "unverifiable",
    "B": "bad",
    "N": "unsigned",
}


# -- the state commit message: pure ------------------------------------------------------------------------


def format_serves(serves: Sequence[Serving]) -> str:
    """The ``Promptctl-Serves`` value: ``v23:100`` or ``v22:95,v23:5`` (rollout base first)."""
    return ",".join(f"{s.version}:{s.percent}" for s in serves)


def format_serves_hash(serves: Sequence[Serving]) -> str:
    return ",".join(f"{s.version}={s.template_hash}" for s in serves)


def parse_serves(text: str, hashes: str = "") -> tuple[Serving, ...]:
    """``v22:95,v23:5`` (with ``Serves-Hash`` ``v22=<hex>,v23=<hex>``) or ``-`` -> Servings.

    Also accepts the ``From``/``To`` short form where a lone version means 100%. Raises ValueError.
    """
    text = (text or "").strip()
    if text in ("", NOTHING):
        return ()
    by_version = {}
    for item in filter(None, (hashes or "").split(",")):
        version, _, digest = item.partition("=")
        by_version[version.strip()] = digest.strip()
    result = []
    for item in text.split(","):
        version, sep, percent = item.strip().partition(":")
        parse_version(version)
        share = int(percent) if sep else 100
        if not 1 <= share <= 100:
            raise ValueError(f"share out of range in {text!r}")
        result.append(Serving(version, share, by_version.get(version, "")))
    if sum(s.percent for s in result) != 100 or len({s.version for s in result}) != len(result):
        raise ValueError(f"shares of {text!r} do not add up to 100")
    return tuple(result)


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")
    lines = [line.rstrip() for line in text.strip().split("\n")]
    out: list[str] = []
    for line in lines:  # at most one blank line in a row: paragraphs stay paragraphs
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def state_message(
    action: str,
    prompt_id: str,
    channel: str,
    from_serves: Sequence[Serving],
    serves: Sequence[Serving],
    reason: str = "",
) -> str:
    """The state commit's message, exactly as docs/design.md specifies."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    before, after = serves_text(tuple(from_serves)), serves_text(tuple(serves))
    parts = [f"{action} {prompt_id}@{channel}: {before} -> {after}"]
    reason = _clean_reason(reason)
    if reason:
        parts.append(reason)
    parts.append(
        "\n".join(
            (
                f"{T_ACTION}: {action}",
                f"{T_PROMPT}: {prompt_id}",
                f"{T_CHANNEL}: {channel}",
                f"{T_FROM}: {before}",
                f"{T_TO}: {after}",
                f"{T_SERVES}: {format_serves(serves)}",
                f"{T_SERVES_HASH}: {format_serves_hash(serves)}",
            )
        )
    )
    return "\n\n".join(parts) + "\n"


def parse_state_commit(oid: str, raw: bytes | str) -> tuple[AuditEntry, str | None] | None:
    """A raw state commit -> (its AuditEntry, first parent or None); None when it is not a state commit."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    headers, message = gitstore.parse_commit_or_tag(data)
    trailers = gitstore.parse_trailers(message)
    action = trailers.get(T_ACTION)
    if action not in ACTIONS or T_SERVES not in trailers:
        return None
    try:
        serves = parse_serves(trailers[T_SERVES], trailers.get(T_SERVES_HASH, ""))
        from_serves = parse_serves(trailers.get(T_FROM, NOTHING))
    except ValueError:
        return None
    if not serves:
        return None
    paragraphs = message.strip().split("\n\n")
    reason = "\n\n".join(paragraphs[1:-1]).strip()
    author, at = gitstore.parse_ident(headers.get("author", ""))
    entry = AuditEntry(
        prompt_id=trailers.get(T_PROMPT, ""),
        channel=trailers.get(T_CHANNEL, ""),
        action=action,
        from_serves=from_serves,
        serves=serves,
        reason=reason,
        author=author,
        at=at,
        commit=oid,
        signed="gpgsig" in headers or "gpgsig-sha256" in headers,
    )
    return entry, headers.get("parent")


# -- what a move does: pure --------------------------------------------------------------------------------


def _key(serves: Sequence[Serving]) -> tuple[tuple[str, int], ...]:
    return tuple((s.version, s.percent) for s in serves)


def plan_promote(current: Sequence[Serving], target: Serving, percent: int, where: str = "channel") -> tuple[Serving, ...]:
    """What a channel serves after promoting ``target`` at ``percent``; equal to ``current`` for a no-op.

    * nothing served yet: the version at 100% (a rollout needs a base, so ``percent`` < 100 is refused);
    * ``vA`` served: 100 -> ``vB``; P -> ``vA:(100-P),vB:P`` (the base keeps the rest);
    * during a rollout ``vA:a,vB:b``: ``vB`` at P moves the split (100 completes it); another version ``vC``
      replaces the canary against the same base (``vA:(100-P),vC:P``, or ``vC`` alone at 100); the base ``vA``
      at 100 ends the rollout on the base (like a rollback, recorded as a promote); the base at P < 100 is refused.
    """
    current = tuple(current)
    if not 1 <= percent <= 100:
        raise UsageError(f"invalid --percent {percent}: use 1..100")
    version = target.version
    if not current:
        if percent < 100:
            raise Refused(
                f"{where} serves nothing yet, so there is no base to split with: promote a version to 100% first"
            )
        return (Serving(version, 100, target.template_hash),)
    base = current[0]
    if len(current) == 1 and base.version == version:
        return current  # already served in full: a no-op whatever the percent
    if len(current) > 1 and version == base.version:
        if percent == 100:
            return (Serving(base.version, 100, base.template_hash),)
        canary = current[-1].version
        raise Refused(
            f"{version} is the rollout base on {where} ({serves_text(current)}): change the split with "
            f"'promote {canary} --percent N', finish it with 'promote {canary}', or abort it with 'rollback'"
        )
    if percent == 100:
        return (Serving(version, 100, target.template_hash),)
    if len(current) > 1 and version == current[-1].version and current[-1].percent == percent:
        return current
    return (Serving(base.version, 100 - percent, base.template_hash), Serving(version, percent, target.template_hash))


def rollback_target(history_newest_first: Sequence[AuditEntry], current: Sequence[Serving], where: str = "channel") -> str:
    """The version ``rollback`` (without ``--to``) returns to.

    During a rollout: its base (the rollout is aborted). Otherwise the audit log is replayed as a stack of the
    versions the channel served in full: a promote pushes its version, a rollback pops back to its version.
    The target is the version below the one served now: the version served before the last move, and
    repeated rollbacks keep going back instead of returning to a version that was rolled back.
    """
    current = tuple(current)
    if not current:
        raise NoEarlierVersion(f"{where} serves nothing yet; nothing to roll back")
    if len(current) > 1:
        return current[0].version
    stack: list[str] = []
    left: list[str] = []  # versions a rollback went back from
    for entry in reversed(history_newest_first):
        if len(entry.serves) != 1:
            continue  # a rollout step: its base is already on the stack
        version = entry.serves[0].version
        if entry.action == "rollback" and version in stack:
            cut = len(stack) - stack[::-1].index(version)
            left.extend(stack[cut:])
            del stack[cut:]
        elif not stack or stack[-1] != version:
            stack.append(version)
    now = current[0].version
    while stack and stack[-1] == now:
        stack.pop()
    if not stack:
        message = f"{where} has no earlier version to roll back to ({now} is the first version it served"
        undone = sorted(set(left) - {now}, key=lambda v: int(v[1:]))
        if undone:
            message += f"; rollback never returns to a version it went back from ({', '.join(undone)}): promote it again instead"
        raise NoEarlierVersion(message + "); or name one with --to vN")
    return stack[-1]


# -- signatures ---------------------------------------------------------------------------------------------


class SignatureCheck(Record):
    """One channel move and what ``git`` says of its signature."""

    prompt_id: str
    channel: str
    commit: str
    action: str
    serves: str
    author: str
    at: str
    code: str  # git's %G?: G U X Y R E B N
    signer: str
    key: str
    detail: str

    @property
    def status(self) -> str:
        return SIGNATURE_STATUS.get(self.code, "unverifiable")

    @property
    def ok(self) -> bool:
        return self.code == "G"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "channel": self.channel,
            "commit": self.commit,
            "action": self.action,
            "serves": self.serves,
            "author": self.author,
            "at": self.at,
            "status": self.status,
            "ok": self.ok,
            "signer": self.signer,
            "key": self.key,
            "detail": self.detail,
        }


# -- the store ----------------------------------------------------------------------------------------------


def _split_channel_ref(refname: str) -> tuple[str, str] | None:
    rest = refname.removeprefix(CHANNEL_PREFIX)
    if rest == refname:
        return None
    prompt_id, sep, channel = rest.partition("/")
    if not sep or not ID_PATTERN.fullmatch(prompt_id) or not CHANNEL_PATTERN.fullmatch(channel):
        return None
    return prompt_id, channel


def _channel_order(state: ChannelState) -> tuple:
    return (state.prompt_id, state.channel != DEFAULT_CHANNEL, state.channel)


class ChannelStore:
    """Channel states, moves and the audit log of one registry (a ``PromptRepo``)."""

    def __init__(self, repo):
        self.repo = repo
        self.root = repo.root
        self.config = repo.config

    # -- reading ----------------------------------------------------------------------------------------
    def _states_from_rows(self, rows: list[list[str]]) -> list[ChannelState]:
        states = []
        for refname, oid, raw in rows:
            names = _split_channel_ref(refname)
            parsed = parse_state_commit(oid, raw) if names else None
            if parsed is None:
                continue  # not a promptctl state: `verify` reports such refs
            entry = parsed[0]
            states.append(ChannelState(names[0], names[1], entry.serves, entry, oid))
        states.sort(key=_channel_order)
        return states

    def all_states(self) -> list[ChannelState]:
        """Every channel of every prompt, from one ``for-each-ref`` call."""
        return self._states_from_rows(gitstore.for_each_ref(self.root, [CHANNEL_PREFIX], STATE_FIELDS))

    def states(self, prompt_id: str) -> list[ChannelState]:
        """Every channel of one prompt (``current`` first, then by name)."""
        prefix = f"{CHANNEL_PREFIX}{validate_id(prompt_id)}/"
        return self._states_from_rows(gitstore.for_each_ref(self.root, [prefix], STATE_FIELDS))

    def _head(self, prompt_id: str, channel: str) -> ChannelState | None:
        ref = channel_ref(prompt_id, channel)
        rows = [row for row in gitstore.for_each_ref(self.root, [ref], STATE_FIELDS) if row[0] == ref]
        if not rows:
            return None
        states = self._states_from_rows(rows)
        if not states:
            raise InvalidContent(f"{ref} does not point at a promptctl channel state commit ({rows[0][1][:12]})")
        return states[0]

    def _unknown_channel(self, prompt_id: str, channel: str) -> NotFound:
        if not self.repo.known_prompt(prompt_id):
            return UnknownPrompt(f"unknown prompt {prompt_id!r}")
        others = [s.channel for s in self.states(prompt_id)]
        known = f"its channels: {', '.join(others)}" if others else "no channel of it has moved yet"
        return UnknownChannel(
            f"{prompt_id}@{channel}: channel {channel!r} has never been promoted ({known}); "
            f"start it with 'promptctl promote {prompt_id} vN --channel {channel}'"
        )

    def state(self, prompt_id: str, channel: str = DEFAULT_CHANNEL) -> ChannelState:
        """What one channel serves now; UnknownChannel when it never moved."""
        head = self._head(validate_id(prompt_id), validate_channel(channel))
        if head is None:
            raise self._unknown_channel(prompt_id, channel)
        return head

    def history(self, prompt_id: str, channel: str | None = None) -> list[AuditEntry]:
        """The audit log, newest first: one channel, or every channel of the prompt (interleaved by time)."""
        validate_id(prompt_id)
        if channel is not None:
            refs = [self.state(prompt_id, channel).ref_oid]
        else:
            refs = [s.ref_oid for s in self.states(prompt_id)]
            if not refs and not self.repo.known_prompt(prompt_id):
                raise UnknownPrompt(f"unknown prompt {prompt_id!r}")
        return self._log(refs)

    def _log(self, revs: Sequence[str]) -> list[AuditEntry]:
        oids = gitstore.rev_list_first_parent(self.root, list(revs))
        objects = self.repo.reader.read_many(oids)
        parsed: list[tuple[AuditEntry, str | None]] = []
        for oid, obj in zip(oids, objects, strict=True):
            if obj is None or obj.type != "commit":
                continue
            item = parse_state_commit(oid, obj.data)
            if item is not None:
                parsed.append(item)
        # From: names versions only; the parent's Serves-Hash gives their hashes.
        by_oid = {entry.commit: entry for entry, _ in parsed}
        entries = []
        for entry, parent in parsed:
            before = by_oid.get(parent or "")
            if before is not None and entry.from_serves:
                hashes = {s.version: s.template_hash for s in before.serves}
                filled = tuple(Serving(s.version, s.percent, hashes.get(s.version, "")) for s in entry.from_serves)
                entry = AuditEntry(**{**entry.__dict__, "from_serves": filled})
            entries.append(entry)
        return entries

    # -- moving -----------------------------------------------------------------------------------------
    def _target(self, prompt_id: str, version: str | int) -> Serving:
        """The version named, with its template hash, from one ``for-each-ref`` on its tag only."""
        number = version if isinstance(version, int) else parse_version(str(version).strip())
        ref = tag_ref(prompt_id, number)
        from .registry import TAG_FIELDS, _version_from_row

        for row in gitstore.for_each_ref(self.root, [ref], TAG_FIELDS):
            if row[0] == ref:
                found = _version_from_row(row)
                if found is not None:
                    return Serving(found.version, 100, found.template_hash)
        self.repo.resolve(VersionSpec(prompt_id, number=number))  # raises UnknownPrompt / UnknownVersion
        raise UnknownVersion(f"{prompt_id}: {format_version(number)} is not an annotated version tag")

    def _check_rules(self, prompt_id: str, channel: str, reason: str, sign: bool | None) -> bool | None:
        """Enforce the registry's rules for this channel; returns how to sign."""
        where = f"{prompt_id}@{channel}"
        if channel in self.config.protected and not _clean_reason(reason):
            raise ReasonRequired(f"{where} is a protected channel (channels.protected): say why with --reason '...'")
        if channel in self.config.require_signed:
            if sign is False:
                raise SignatureRequired(f"{where} requires signed moves (channels.require_signed); do not pass --no-sign")
            return True
        return sign

    def _move(
        self,
        prompt_id: str,
        channel: str,
        action: str,
        reason: str,
        sign: bool | None,
        plan: Callable[[ChannelState | None], tuple[Serving, ...]],
    ) -> AuditEntry | None:
        """Read, plan, write a state commit, compare-and-swap; re-read and re-plan when another move won."""
        ref = channel_ref(prompt_id, channel)
        where = f"{prompt_id}@{channel}"
        for attempt in range(MAX_ATTEMPTS):
            head = self._head(prompt_id, channel)
            current = head.serves if head else ()
            serves = plan(head)
            if head is not None and _key(serves) == _key(current):
                return None
            message = state_message(action, prompt_id, channel, current, serves, reason)
            parents = [head.ref_oid] if head else []
            try:
                commit = gitstore.commit_empty_tree(self.root, parents, message, sign=sign)
            except GitFailed as exc:
                if sign:
                    raise SignatureRequired(
                        f"could not sign the move of {where}: {exc.message.removeprefix('git commit-tree failed: ')}; "
                        "set up Git signing (git config user.signingkey KEY; for an SSH key also gpg.format ssh)"
                    ) from None
                raise
            try:
                gitstore.update_ref(self.root, ref, commit, head.ref_oid if head else None, f"promptctl {action} {where}")
            except Conflict:
                if attempt + 1 < MAX_ATTEMPTS:
                    import random  # only on a lost race: keeps the common path's imports small

                    time.sleep(random.uniform(0.005, 0.02 * 2 ** min(attempt, 4)))
                continue
            raw = gitstore.run(["cat-file", "commit", commit], self.root).stdout
            parsed = parse_state_commit(commit, raw)
            assert parsed is not None
            return AuditEntry(**{**parsed[0].__dict__, "from_serves": tuple(current)})  # with the hashes
        raise Conflict(
            f"{where} kept moving under this {action} ({MAX_ATTEMPTS} compare-and-swap attempts lost to other "
            f"moves or a held ref lock); this {action} changed nothing: check 'promptctl channels {prompt_id}' and run it again"
        )

    def promote(
        self,
        prompt_id: str,
        version: str,
        channel: str = DEFAULT_CHANNEL,
        percent: int = 100,
        reason: str = "",
        sign: bool | None = None,
    ) -> AuditEntry | None:
        """Move ``channel`` to ``version`` (or a ``percent`` rollout of it); None when it already serves that."""
        validate_id(prompt_id)
        validate_channel(channel)
        number = version if isinstance(version, int) else parse_version(str(version).strip())
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise UsageError(f"invalid --percent {percent}: use 1..100")
        sign = self._check_rules(prompt_id, channel, reason, sign)
        target = self._target(prompt_id, number)
        where = f"{prompt_id}@{channel}"
        return self._move(
            prompt_id, channel, "promote", reason, sign, lambda head: plan_promote(head.serves if head else (), target, percent, where)
        )

    def rollback(
        self,
        prompt_id: str,
        channel: str = DEFAULT_CHANNEL,
        to: str | None = None,
        reason: str = "",
        sign: bool | None = None,
    ) -> AuditEntry:
        """Move ``channel`` back (see ``rollback_target``), or to ``to``; an audited move like a promote.

        Raises UnknownChannel (never moved), NoEarlierVersion, NothingChanged (``to`` is already served).
        """
        validate_id(prompt_id)
        validate_channel(channel)
        number = None if to is None else parse_version(str(to).strip())
        sign = self._check_rules(prompt_id, channel, reason, sign)
        where = f"{prompt_id}@{channel}"
        if self._head(prompt_id, channel) is None:
            raise self._unknown_channel(prompt_id, channel)
        fixed = self._target(prompt_id, number) if number is not None else None
        targets: dict[str, Serving] = {}

        def plan(head: ChannelState | None) -> tuple[Serving, ...]:
            if head is None:
                raise self._unknown_channel(prompt_id, channel)
            if fixed is not None:
                target = fixed
            else:
                version = rollback_target(self._log([head.ref_oid]), head.serves, where)
                if version not in targets:
                    targets[version] = self._target(prompt_id, version)
                target = targets[version]
            serves = (Serving(target.version, 100, target.template_hash),)
            if _key(serves) == _key(head.serves):
                raise NothingChanged(f"{where} already serves {target.version}; nothing to roll back, nothing changed")
            return serves

        entry = self._move(prompt_id, channel, "rollback", reason, sign, plan)
        assert entry is not None  # plan never returns the current state
        return entry

    # -- signatures -------------------------------------------------------------------------------------
    def verify_signatures(
        self,
        prompt_id: str | None = None,
        channels: Sequence[str] | None = None,
        *,
        latest_only: bool = False,
    ) -> list[SignatureCheck]:
        """Check the signatures of channel moves with the user's Git config (GPG keyring or
        ``gpg.ssh.allowedSignersFile``).

        Checks the channels named, or by default those in ``channels.require_signed``; every move in their audit
        logs, or only the move in effect with ``latest_only``. One result per move, newest first per channel;
        ``ok`` only for a good signature by a trusted key (GPG) or an allowed signer (SSH, ``gpg.ssh.allowedSignersFile``):
        unsigned, bad, untrusted, expired, revoked and unverifiable signatures are not ok.
        """
        wanted = set(channels if channels is not None else self.config.require_signed)
        states = self.states(prompt_id) if prompt_id else self.all_states()
        states = [s for s in states if s.channel in wanted]
        if not states:
            return []
        entries = {e.commit: e for e in self._log([s.ref_oid for s in states])} if not latest_only else {
            s.ref_oid: s.last_move for s in states if s.last_move
        }
        heads = [s.ref_oid for s in states]
        rows = gitstore.signature_status(self.root, heads, no_walk=latest_only)
        checks = []
        for commit, code, signer, key, detail in rows:
            entry = entries.get(commit)
            if entry is None:
                continue
            checks.append(
                SignatureCheck(
                    entry.prompt_id, entry.channel, commit, entry.action, serves_text(entry.serves),
                    entry.author, entry.at, code or "E", signer, key, detail.replace("\n", " ").strip(),
                )
            )
        checks.sort(key=lambda c: (c.prompt_id, c.channel != DEFAULT_CHANNEL, c.channel))
        return checks


def verify_signatures(
    repo, prompt_id: str | None = None, channels: Sequence[str] | None = None, *, latest_only: bool = False
) -> list[SignatureCheck]:
    """``ChannelStore(repo).verify_signatures(...)``, for the verify command."""
    return ChannelStore(repo).verify_signatures(prompt_id, channels, latest_only=latest_only)


# -- push and pull -------------------------------------------------------------------------------------------

DEFAULT_REMOTE = "origin"
MAX_TAG_REFSPEC_BYTES = 100_000  # explicit tag refspecs up to this size; beyond, one pattern per prompt


class RefChange(Record):
    ref: str
    old: str | None
    new: str
    kind: str  # new-tag | new-channel | fast-forward | reset

    @property
    def label(self) -> str:
        names = _split_channel_ref(self.ref)
        if names:
            return f"{names[0]}@{names[1]}"
        return self.ref.removeprefix(TAG_PREFIX)

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "name": self.label, "old": self.old, "new": self.new, "kind": self.kind}


class SyncReport(Record):
    """What push or pull did (``changes``) and what it left alone on purpose (``notes``)."""

    remote: str
    direction: str  # push | pull
    changes: list[RefChange] = Factory(list)
    notes: list[str] = Factory(list)

    @property
    def tags(self) -> list[RefChange]:
        return [c for c in self.changes if c.ref.startswith(TAG_PREFIX)]

    @property
    def channels(self) -> list[RefChange]:
        return [c for c in self.changes if c.ref.startswith(CHANNEL_PREFIX)]

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "direction": self.direction,
            "version_tags": len(self.tags),
            "channels": [c.to_json() for c in self.channels],
            "tags": [c.label for c in self.tags],
            "notes": list(self.notes),
        }


def _resolve_remote(repo, remote: str | None) -> str:
    name = remote or DEFAULT_REMOTE
    if name.startswith("-") or any(c in name for c in "\n\0"):
        raise UsageError(f"invalid remote {name!r}")
    names = gitstore.remote_names(repo.root)
    if name in names:
        return name
    if "/" in name or ":" in name or name.startswith("."):
        return name  # a URL or a path: git reports it if it is not a repository
    known = f"configured remotes: {', '.join(names)}" if names else "no remote is configured"
    raise NotFound(f"unknown remote {name!r} ({known}); add it with 'git remote add {name} URL'")


def _registry_refs(refs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``{ref: oid}`` into version tags and channel refs; anything else is not ours."""
    tags, channels = {}, {}
    for ref, oid in refs.items():
        if ref.startswith(TAG_PREFIX) and parse_tag_name(ref.removeprefix(TAG_PREFIX)):
            tags[ref] = oid
        elif _split_channel_ref(ref):
            channels[ref] = oid
    return tags, channels


def _local_registry_refs(repo) -> tuple[dict[str, str], dict[str, str]]:
    rows = gitstore.for_each_ref(repo.root, [TAG_PREFIX, CHANNEL_PREFIX], ("refname", "objectname"))
    return _registry_refs({row[0]: row[1] for row in rows})


def _serves_at(repo, oid: str) -> str:
    obj = repo.reader.read(oid)
    parsed = parse_state_commit(oid, obj.data) if obj is not None and obj.type == "commit" else None
    return serves_text(parsed[0].serves) if parsed else oid[:12]


def push(repo, remote: str | None = None) -> SyncReport:
    """Send version tags and channel refs (with their audit logs) to ``remote``: one atomic, non-forced push.

    Raises Conflict (nothing pushed) when the remote has moves or versions this repository does not have.
    """
    name = _resolve_remote(repo, remote)
    theirs_tags, theirs_channels = _registry_refs(gitstore.ls_remote(repo.root, name))
    ours_tags, ours_channels = _local_registry_refs(repo)
    changes: list[RefChange] = []
    notes: list[str] = []
    problems: list[str] = []
    tag_prompts: set[str] = set()
    for ref, oid in sorted(ours_tags.items()):
        if ref not in theirs_tags:
            changes.append(RefChange(ref, None, oid, "new-tag"))
            tag_prompts.add(parse_tag_name(ref.removeprefix(TAG_PREFIX))[0])
        elif theirs_tags[ref] != oid:
            problems.append(f"version tag {ref.removeprefix(TAG_PREFIX)} differs on {name} (both sides made it)")
    differing = [r for r, oid in ours_channels.items() if r in theirs_channels and theirs_channels[r] != oid]
    present = gitstore.existing_objects(repo.root, [theirs_channels[r] for r in differing])
    unknown = [r for r in differing if theirs_channels[r] not in present]
    if unknown:  # the remote moved these channels: fetch their logs (objects only) to tell behind from diverged
        gitstore.fetch_objects(repo.root, name, unknown)
        present = gitstore.existing_objects(repo.root, [theirs_channels[r] for r in differing])
    channel_specs = []
    for ref, oid in sorted(ours_channels.items()):
        theirs = theirs_channels.get(ref)
        label = RefChange(ref, None, oid, "").label
        if theirs == oid:
            continue
        if theirs is None:
            changes.append(RefChange(ref, None, oid, "new-channel"))
        elif theirs in present and gitstore.is_ancestor(repo.root, theirs, oid):
            changes.append(RefChange(ref, theirs, oid, "fast-forward"))
        elif theirs in present and gitstore.is_ancestor(repo.root, oid, theirs):
            notes.append(f"{name} is ahead on {label}: run 'promptctl pull {name}' to get its moves")
            continue
        else:
            problems.append(f"{label} moved both here and on {name} (its audit logs diverged)")
            continue
        channel_specs.append(f"{ref}:{ref}")
    if problems:
        raise Conflict(
            f"push to {name} refused, nothing was pushed: {'; '.join(problems)}. "
            f"Run 'promptctl pull {name}' (it says how to reconcile a channel moved on both sides), then push again"
        )
    if not changes:
        return SyncReport(name, "push", [], notes)
    tag_specs = [f"{c.ref}:{c.ref}" for c in changes if c.kind == "new-tag"]
    if sum(len(spec) + 1 for spec in tag_specs) > MAX_TAG_REFSPEC_BYTES:
        # Too many for one command line (a first push of 20,000 versions): one pattern per prompt instead.
        tag_specs = [f"{TAG_PREFIX}{pid}/v*:{TAG_PREFIX}{pid}/v*" for pid in sorted(tag_prompts)]
    specs = tag_specs + channel_specs
    result = gitstore.push_refs(repo.root, name, specs)
    if not result.ok:
        rejected = [f"{spec.split(':')[-1].removeprefix(TAG_PREFIX).removeprefix(CHANNEL_PREFIX)} {summary}"
                    for flag, spec, summary in result.refs if flag == "!" and "atomic push failed" not in summary]
        why = "; ".join(rejected) or result.error
        if result.refs or "rejected" in result.error or "atomic" in result.error:
            raise Conflict(
                f"push to {name} refused, nothing was pushed: {why}. {name} moved on meanwhile: "
                f"run 'promptctl pull {name}', then push again"
            )
        from .errors import Unreachable

        raise Unreachable(f"push to {name} failed: {why}")
    return SyncReport(name, "push", changes, notes)


def pull(repo, remote: str | None = None, *, discard_local_moves: bool = False) -> SyncReport:
    """Fetch version tags and channel refs from ``remote``, fast-forward only, in one atomic ref update.

    A channel moved on both sides refuses (Conflict, nothing changed) unless ``discard_local_moves``, which
    resets such channels to the remote's log (the local moves are listed so they can be promoted again).
    """
    name = _resolve_remote(repo, remote)
    theirs_tags, theirs_channels = _registry_refs(gitstore.ls_remote(repo.root, name))
    ours_tags, ours_channels = _local_registry_refs(repo)
    problems: list[str] = []
    wanted = []
    for ref, oid in sorted(theirs_tags.items()):
        if ref not in ours_tags:
            wanted.append(ref)
        elif ours_tags[ref] != oid:
            problems.append(
                f"version tag {ref.removeprefix(TAG_PREFIX)} differs between here and {name} (both sides made it; "
                "keep the published one: delete the local tag if it was never pushed and commit the change again)"
            )
    wanted += [ref for ref, oid in sorted(theirs_channels.items()) if ours_channels.get(ref) != oid]
    if problems:
        raise Conflict(f"pull from {name} refused, nothing was changed: {'; '.join(problems)}")
    if not wanted:
        return SyncReport(name, "pull", [], [])
    gitstore.fetch_objects(repo.root, name, wanted)
    expected = [theirs_tags.get(ref) or theirs_channels[ref] for ref in wanted]
    if set(expected) - gitstore.existing_objects(repo.root, expected):
        raise Conflict(f"{name} changed while pulling; nothing was changed, run 'promptctl pull {name}' again")
    changes: list[RefChange] = []
    notes: list[str] = []
    diverged: list[RefChange] = []
    for ref in wanted:
        if ref in theirs_tags:
            changes.append(RefChange(ref, None, theirs_tags[ref], "new-tag"))
            continue
        theirs, ours = theirs_channels[ref], ours_channels.get(ref)
        if ours is None:
            changes.append(RefChange(ref, None, theirs, "new-channel"))
        elif gitstore.is_ancestor(repo.root, ours, theirs):
            changes.append(RefChange(ref, ours, theirs, "fast-forward"))
        elif gitstore.is_ancestor(repo.root, theirs, ours):
            notes.append(f"{RefChange(ref, ours, theirs, '').label} has moves not yet on {name}: 'promptctl push {name}' sends them")
        else:
            diverged.append(RefChange(ref, ours, theirs, "reset"))
    if diverged and not discard_local_moves:
        detail = "; ".join(
            f"{c.label} (here it serves {_serves_at(repo, c.old or '')}, on {name} {_serves_at(repo, c.new)})" for c in diverged
        )
        raise Conflict(
            f"pull from {name} refused, nothing was changed: channel moved both here and on {name}: {detail}. "
            f"To reconcile, take {name}'s audit log and redo your move on top: "
            f"'promptctl pull {name} --discard-local-moves', then promote again and push"
        )
    for change in diverged:
        notes.append(
            f"{change.label}: dropped the local moves not on {name} (it served {_serves_at(repo, change.old or '')}, "
            f"old state {change.old[:12] if change.old else '-'}); promote again if still wanted"
        )
    changes += diverged
    gitstore.update_refs(
        repo.root, [(c.ref, c.new, c.old) for c in changes], f"promptctl pull {name}"
    )
    return SyncReport(name, "pull", changes, notes)

"""The read commands ``list`` and ``log``, and the helpers the registry commands share.

No typer here (stdlib only at module level): ``promptctl.cli.fastpath`` runs these two commands without
loading the CLI framework, and ``registry_cmds`` wraps the very same functions as typer commands, so both
paths print identical output.
"""

from __future__ import annotations

VERSION_KEYS = ("id", "version", "tag", "template_hash", "template_hash_short", "commit", "created_at", "author", "message")


def open_repo(repo: str):
    from promptctl.registry import PromptRepo

    return PromptRepo.open(repo)


def short(full: str | None) -> str:
    from promptctl.hashing import short_hash

    return short_hash(full) if full else "-"


def date(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else "-"


def channel_states(repo, prompt_id: str | None = None) -> dict[str, list]:
    """Channel states grouped by prompt (one prompt's, or every prompt's), when channels exist in this build."""
    try:
        from promptctl.channels import ChannelStore
    except ImportError:
        return {}
    store = ChannelStore(repo)
    states = store.states(prompt_id) if prompt_id is not None else store.all_states()
    grouped: dict[str, list] = {}
    for state in states:
        grouped.setdefault(state.prompt_id, []).append(state)
    return grouped


def channel_labels(states) -> str:
    from promptctl.model import serves_text

    return ", ".join(f"{s.channel}={serves_text(s.serves)}" for s in states) or "-"


def unversioned_json(prompt_id: str) -> dict:
    """The --json shape of a prompt with no version yet: the same keys as a version, set to null."""
    return {key: None for key in VERSION_KEYS} | {"id": prompt_id}


def list_prompts(json_out: bool, repo: str) -> None:
    """``promptctl list``: every prompt with its latest version, hash, date and channels."""
    from promptctl.cli.output import emit_json, table

    r = open_repo(repo)
    refs = r.version_refs()
    latest = r.latest_versions(refs=refs)
    ids = sorted(set(refs) | set(r.prompt_ids()))
    channels = channel_states(r)
    if json_out:
        out = []
        for pid in ids:
            entry = latest[pid].to_json() if pid in latest else unversioned_json(pid)
            entry["versions"] = len(refs.get(pid, []))
            entry["channels"] = {s.channel: s.to_json()["serves"] for s in channels.get(pid, [])}
            out.append(entry)
        emit_json(out)
        return
    rows = []
    for pid in ids:
        v = latest.get(pid)
        rows.append(
            (
                pid,
                v.version if v else "-",
                short(v.template_hash) if v else "-",
                date(v.created_at) if v else "-",
                channel_labels(channels.get(pid, [])),
            )
        )
    table(None, ["prompt", "latest", "hash", "date", "channels"], rows)


def log_prompt(prompt_id: str, json_out: bool, repo: str) -> None:
    """``promptctl log ID``: a prompt's versions, newest first, with the channels serving each."""
    from promptctl.cli.output import emit_json, table
    from promptctl.errors import UnknownPrompt
    from promptctl.spec import validate_id

    validate_id(prompt_id)
    r = open_repo(repo)
    versions = list(reversed(r.versions(prompt_id)))
    if not versions and not r.known_prompt(prompt_id):
        raise UnknownPrompt(f"unknown prompt {prompt_id!r}")
    serving: dict[str, list[str]] = {}
    for state in channel_states(r, prompt_id).get(prompt_id, []) if versions else []:
        for s in state.serves:
            serving.setdefault(s.version, []).append(state.channel if s.percent == 100 else f"{state.channel}({s.percent}%)")
    if json_out:
        emit_json([{**v.to_json(), "channels": serving.get(v.version, [])} for v in versions])
        return
    table(
        prompt_id,
        ["version", "hash", "date", "author", "channels", "message"],
        [
            (
                v.version,
                short(v.template_hash),
                date(v.created_at),
                v.author,
                ", ".join(serving.get(v.version, [])),
                v.message.splitlines()[0] if v.message else "",
            )
            for v in versions
        ],
    )

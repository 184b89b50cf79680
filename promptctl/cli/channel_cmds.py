"""Channel commands: promote, rollback, channels, history, push, pull."""

from __future__ import annotations

import typer

from promptctl.cli.registry_cmds import JSON_OPTION, REPO_OPTION

CHANNEL_OPTION = typer.Option(
    None,
    "--channel",
    "-c",
    help="Channel name: current (default) or [a-z][a-z0-9-]{0,39}; ID@CHANNEL says the same.",
    show_default=False,
)
REASON_OPTION = typer.Option("", "--reason", "-r", help="Why (recorded in the audit log; required on protected channels).")
SIGN_OPTION = typer.Option(
    None,
    "--sign/--no-sign",
    help="Sign the state commit with your Git signing config (default: when the channel requires it, else commit.gpgSign).",
    show_default=False,
)


def _target(text: str, channel: str | None, version: str | None = None, *, command: str) -> tuple[str, str, str | None]:
    """``ID``, ``ID@vN`` or ``ID@CHANNEL`` (the way prompts are named everywhere else) -> (id, channel, version).

    ``ID@vN`` stands for the VERSION argument (promote only); ``ID@CHANNEL`` for ``--channel``. Saying the
    same thing twice differently is a usage error, never a silent choice.
    """
    from promptctl.errors import UsageError
    from promptctl.spec import parse_spec

    if "@" not in text:
        return text, channel or "current", version
    spec = parse_spec(text)
    if spec.number is not None:
        named = f"v{spec.number}"
        if command != "promote":
            raise UsageError(
                f"{command} takes a prompt id and a channel, not a version ({text!r}): "
                f"use 'promptctl {command} {spec.prompt_id}" + (f" --to {named}'" if command == "rollback" else "'")
            )
        if version is not None and version != named:
            raise UsageError(f"{text!r} already names version {named}; do not also pass {version!r}")
        return spec.prompt_id, channel or "current", named
    if channel is not None and channel != spec.channel:
        raise UsageError(f"{text!r} names channel {spec.channel!r}; do not also pass --channel {channel}")
    return spec.prompt_id, spec.channel or "current", version


def _store(repo: str):
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    return ChannelStore(PromptRepo.open(repo))


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def _name(author: str) -> str:
    """``Name <email>`` -> ``Name`` for tables (the e-mail is in --json)."""
    return author.split(" <")[0] or author


def _split(serves) -> str:
    return "yes" if len(serves) > 1 else "no"


def _state_json(state) -> dict:
    """A channel's state; ``author``/``at`` repeat ``by``/``since`` under the names history and moves use."""
    move = state.last_move
    return {
        **state.to_json(),
        "author": move.author if move else None,
        "at": move.at if move else None,
        "split": len(state.serves) > 1,
        "action": move.action if move else None,
        "commit": state.ref_oid,
        "signed": move.signed if move else False,
    }


def _entry_json(entry) -> dict:
    return {**entry.to_json(), "signed": entry.signed}


def _plain(line: str) -> None:
    """One plain line on stdout: a move is a hot path, and importing rich for one line costs ~0.1 s."""
    import sys

    sys.stdout.write(line + "\n")


def _say_move(entry) -> None:
    from promptctl.model import serves_text

    _plain(
        f"{entry.action} {entry.prompt_id}@{entry.channel}: {serves_text(entry.from_serves)} -> "
        f"{serves_text(entry.serves)}  (audit {entry.commit[:12]}{', signed' if entry.signed else ''})"
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def promote(
        prompt_id: str = typer.Argument(..., metavar="ID", help="The prompt (ID@vN or ID@CHANNEL also work)."),
        version: str | None = typer.Argument(None, metavar="VERSION", help="An existing version, e.g. v23.", show_default=False),
        channel: str | None = CHANNEL_OPTION,
        percent: int = typer.Option(100, "--percent", "-p", help="Rollout: serve VERSION to this share (1..100) of requests."),
        reason: str = REASON_OPTION,
        sign: bool | None = SIGN_OPTION,
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Move a channel to a version (or start / move / finish a rollout with --percent); audited."""
        from promptctl.cli.output import emit_json
        from promptctl.errors import UsageError
        from promptctl.model import serves_text

        prompt_id, channel, version = _target(prompt_id, channel, version, command="promote")
        if version is None:
            where = "" if channel == "current" else f" --channel {channel}"
            raise UsageError(
                f"name the version to serve: 'promptctl promote {prompt_id} vN{where}' (see 'promptctl log {prompt_id}')"
            )
        store = _store(repo)
        entry = store.promote(prompt_id, version, channel=channel, percent=percent, reason=reason, sign=sign)
        if entry is None:
            state = store.state(prompt_id, channel)
            if json_out:
                emit_json({"changed": False, **_state_json(state)})
            else:
                _plain(f"{prompt_id}@{channel} already serves {serves_text(state.serves)}; nothing to do")
            return
        if json_out:
            emit_json({"changed": True, **_entry_json(entry)})
        else:
            _say_move(entry)

    @app.command()
    def rollback(
        prompt_id: str = typer.Argument(..., metavar="ID", help="The prompt (ID@CHANNEL also works)."),
        channel: str | None = CHANNEL_OPTION,
        to: str | None = typer.Option(None, "--to", help="Go to this version instead of the one served before."),
        reason: str = REASON_OPTION,
        sign: bool | None = SIGN_OPTION,
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Move a channel back to what it served before its last move (aborts a rollout); audited."""
        from promptctl.cli.output import emit_json

        prompt_id, channel, _ = _target(prompt_id, channel, command="rollback")
        entry = _store(repo).rollback(prompt_id, channel=channel, to=to, reason=reason, sign=sign)
        if json_out:
            emit_json({"changed": True, **_entry_json(entry)})
        else:
            _say_move(entry)

    @app.command()
    def channels(
        prompt_id: str = typer.Argument(..., metavar="ID"),
        channel: str | None = typer.Option(None, "--channel", "-c", help="Only this channel (default: every channel)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Every channel of a prompt: version(s), split, since when, moved by whom and why."""
        from promptctl.cli.output import emit_json, note, table
        from promptctl.errors import UnknownPrompt
        from promptctl.model import serves_text
        from promptctl.spec import validate_id

        explicit = channel is not None or "@" in prompt_id
        prompt_id, channel, _ = _target(prompt_id, channel, command="channels")
        store = _store(repo)
        if explicit:
            states = [store.state(prompt_id, channel)]
        else:
            states = store.states(validate_id(prompt_id))
        if not states and not store.repo.known_prompt(prompt_id):
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}")
        if json_out:
            emit_json([_state_json(s) for s in states])
            return
        if not states:
            note(f"no channel of {prompt_id} has moved yet; start with 'promptctl promote {prompt_id} vN'")
            return
        table(
            prompt_id,
            ["channel", "serves", "split", "since", "by", "last move", "reason"],
            [
                (
                    s.channel,
                    serves_text(s.serves),
                    _split(s.serves),
                    _when(s.last_move.at if s.last_move else None),
                    _name(s.last_move.author) if s.last_move else "-",
                    s.last_move.action if s.last_move else "-",
                    (s.last_move.reason.splitlines() or [""])[0] if s.last_move else "",
                )
                for s in states
            ],
        )

    @app.command()
    def history(
        prompt_id: str = typer.Argument(..., metavar="ID"),
        channel: str | None = typer.Option(None, "--channel", "-c", help="Only this channel (default: all, interleaved)."),
        limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="Only the newest N moves."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """The audit log of a prompt's channels, newest first: who moved what, when, from what to what, why."""
        from promptctl.cli.output import emit_json, note, table
        from promptctl.model import serves_text

        if "@" in prompt_id:
            prompt_id, channel, _ = _target(prompt_id, channel, command="history")
        entries = _store(repo).history(prompt_id, channel)
        if limit is not None:
            entries = entries[:limit]
        if json_out:
            emit_json([_entry_json(e) for e in entries])
            return
        if not entries:
            note(f"no channel of {prompt_id} has moved yet")
            return
        table(
            f"{prompt_id} audit log (newest first; --json for e-mails and commits)",
            ["when", "channel", "action", "move", "by", "reason"],
            [
                (
                    _when(e.at),
                    e.channel,
                    e.action + (" (signed)" if e.signed else ""),
                    f"{serves_text(e.from_serves)} -> {serves_text(e.serves)}",
                    _name(e.author),
                    (e.reason.splitlines() or [""])[0],
                )
                for e in entries
            ],
        )

    def _report(report, json_out: bool) -> None:
        from promptctl.cli.output import emit_json, note, say

        if json_out:
            emit_json(report.to_json())
        else:
            verb = "pushed to" if report.direction == "push" else "pulled from"
            if not report.changes:
                say(f"{report.remote}: already up to date" if report.direction == "push" else f"already up to date with {report.remote}")
            else:
                tags, moved = len(report.tags), len(report.channels)
                say(f"{verb} {report.remote}: {tags} version tag{'s' if tags != 1 else ''}, {moved} channel{'s' if moved != 1 else ''}")
                for change in report.channels:
                    say(f"  {change.label}  {change.kind}  {(change.old or '-')[:12]} -> {change.new[:12]}")
        for line in report.notes:
            note(line)

    @app.command()
    def push(
        remote: str | None = typer.Argument(None, metavar="[REMOTE]", help="Remote name, URL or path (default: origin)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Send version tags, channels and their audit logs to a remote: atomic, never forced."""
        from promptctl.channels import push as push_registry
        from promptctl.registry import PromptRepo

        _report(push_registry(PromptRepo.open(repo), remote), json_out)

    @app.command()
    def pull(
        remote: str | None = typer.Argument(None, metavar="[REMOTE]", help="Remote name, URL or path (default: origin)."),
        discard_local_moves: bool = typer.Option(
            False,
            "--discard-local-moves",
            help="For channels moved both here and on the remote: take the remote's log, dropping the local moves.",
        ),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Fetch version tags, channels and their audit logs from a remote: fast-forward only, atomic."""
        from promptctl.channels import pull as pull_registry
        from promptctl.registry import PromptRepo

        _report(pull_registry(PromptRepo.open(repo), remote, discard_local_moves=discard_local_moves), json_out)

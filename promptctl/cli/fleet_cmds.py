"""Fleet delivery commands: publish (static files for remote loaders), sync (Git-remote mode), published."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)


def _stop_on_signals():
    """An Event set by Ctrl-C or SIGTERM (docker stop), so a watch loop ends cleanly with exit code 0."""
    import signal
    import threading

    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _serves(serves) -> str:
    return ",".join(s["version"] if s["percent"] == 100 else f"{s['version']}:{s['percent']}" for s in serves)


def register(app: typer.Typer) -> None:
    @app.command()
    def publish(
        directory: str = typer.Argument(..., metavar="DIR", help="Directory to publish into (created when missing)."),
        channel: list[str] = typer.Option(
            ..., "--channel", "-c", help="Channel to publish (repeatable; the first is the default one served)."
        ),
        watch: bool = typer.Option(False, "--watch", help="Keep running: publish again whenever a channel moves."),
        interval: float = typer.Option(1.0, "--interval", help="With --watch: seconds between checks of the refs."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Publish what channels serve as static files (manifest + content-addressed objects) for remote loaders."""
        import sys

        from promptctl.cli.output import emit_json, note, say
        from promptctl.errors import UsageError
        from promptctl.publish import publish as publish_registry
        from promptctl.publish import watch as watch_registry
        from promptctl.registry import PromptRepo
        from promptctl.spec import validate_channel

        channels = [validate_channel(c) for c in channel]
        if not interval > 0:
            raise UsageError(f"invalid --interval {interval}: use a number of seconds above 0")
        root = PromptRepo.open(repo).root  # a registry must be there (NoRegistry otherwise)

        def report(result) -> None:
            if json_out:
                if watch:  # one JSON document per line, one line per publish
                    import json

                    sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
                else:
                    emit_json(result.to_json())
            elif result.changed:
                for prompt_id, entry in sorted(result.manifest["prompts"].items()):
                    for name, state in entry["channels"].items():
                        say(f"{prompt_id}@{name}  {_serves(state['serves'])}")
                say(
                    f"published {_count(len(result.manifest['prompts']), 'prompt')} to {result.directory} "
                    f"at {result.published_at} ({_count(result.objects_written, 'new object')})"
                )
            else:
                say(f"{result.directory} is up to date (published at {result.published_at}); nothing written")
            sys.stdout.flush()

        if not watch:
            report(publish_registry(root, channels, directory))
            return
        stop = _stop_on_signals()
        watch_registry(root, channels, directory, interval, report, lambda exc: note(f"publish failed: {exc}"), stop)
        if not json_out:
            say("stopped watching")

    @app.command()
    def sync(
        remote: str | None = typer.Option(None, "--remote", help="Remote name, URL or path (default: origin)."),
        watch: bool = typer.Option(False, "--watch", help="Keep running as a sidecar: sync every --interval seconds."),
        interval: float = typer.Option(5.0, "--interval", help="With --watch: seconds between fetches (less jitter)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Git-remote mode: fetch only the registry's refs from a remote, fast-forward only, never the work tree."""
        import json
        import sys

        from promptctl.cli.output import emit_json, note, say
        from promptctl.errors import UsageError
        from promptctl.runtime.gitremote import sync as sync_clone
        from promptctl.runtime.gitremote import sync_watch

        if not interval > 0:
            raise UsageError(f"invalid --interval {interval}: use a number of seconds above 0")

        def report(result) -> None:
            if json_out:
                if watch:
                    sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
                else:
                    emit_json(result.to_json())
            elif not result.changes:
                say(f"already up to date with {result.remote}")
            else:
                tags = len(result.tags)
                say(f"synced from {result.remote}: {tags} version tag{'s' if tags != 1 else ''}, {_count(len(result.channels), 'channel')}")
                for change in result.channels:
                    say(f"  {change.label}  {change.kind}  {(change.old or '-')[:12]} -> {change.new[:12]}")
            if not json_out:
                for line in result.notes:
                    note(line)
            sys.stdout.flush()

        if not watch:
            report(sync_clone(repo, remote))
            return

        def trouble(exc, recovered: bool) -> None:
            note(f"sync from {remote or 'origin'} works again" if recovered else f"sync failed, retrying with backoff: {exc}")

        stop = _stop_on_signals()
        sync_watch(repo, remote, interval, report, trouble, stop)
        if not json_out:
            say("stopped syncing")

    @app.command()
    def published(
        location: str = typer.Argument(..., metavar="URL|DIR", help="A published registry: its URL or directory."),
        verify: bool = typer.Option(False, "--verify", help="Fetch every object and check it against its hash."),
        json_out: bool = JSON_OPTION,
    ) -> None:
        """What a published registry serves: prompts, channels, versions, last move, publication time."""
        from promptctl.cli.output import emit_json, say, table
        from promptctl.publish import inspect_published

        report = inspect_published(location, verify=verify)
        if json_out:
            emit_json(report)
        else:
            rows = []
            for prompt_id, entry in sorted(report["prompts"].items()):
                for name, state in entry["channels"].items():
                    move = state.get("last_move") or {}
                    rows.append((prompt_id, name, _serves(state["serves"]), move.get("action", ""), move.get("at", "")))
            table(
                f"{report['location']} (published at {report['published_at']})",
                ["prompt", "channel", "serves", "last move", "at"],
                rows,
            )
            if verify:
                bad = report["bad_objects"]
                say(f"{_count(report['objects_checked'], 'object')} checked, {len(bad)} bad" + (": " + ", ".join(bad) if bad else ""))
        if verify and report["bad_objects"]:
            raise typer.Exit(1)

"""Registry commands: init, new, status, commit, list, log, show, diff, render, hash."""

from __future__ import annotations

import typer

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)


def _open(repo: str):
    from promptctl.registry import PromptRepo

    return PromptRepo.open(repo)


def _short(full: str | None) -> str:
    from promptctl.hashing import short_hash

    return short_hash(full) if full else "-"


def _channels_by_prompt(repo) -> dict[str, list]:
    """Channel states grouped by prompt, when the channel module is available in this build."""
    try:
        from promptctl.channels import ChannelStore
    except ImportError:
        return {}
    grouped: dict[str, list] = {}
    for state in ChannelStore(repo).all_states():
        grouped.setdefault(state.prompt_id, []).append(state)
    return grouped


def _channel_labels(states) -> str:
    from promptctl.model import serves_text

    return ", ".join(f"{s.channel}={serves_text(s.serves)}" for s in states) or "-"


def _parse_vars(pairs: list[str], vars_json: str | None) -> dict:
    import json

    from promptctl.errors import UsageError

    variables: dict = {}
    if vars_json:
        try:
            with open(vars_json, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except OSError as exc:
            raise UsageError(f"--vars-json {vars_json}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"--vars-json {vars_json}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--vars-json {vars_json}: must hold a JSON object")
        variables.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: use --var name=value")
        variables[name] = value
    return variables


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        registry: str = typer.Option("prompts", "--registry", help="Registry directory, relative to the Git top level."),
        repo: str = REPO_OPTION,
    ) -> None:
        """Create the registry (promptctl.yaml and the prompts directory) in this Git repository."""
        from promptctl.cli.output import say
        from promptctl.registry import PromptRepo

        created_repo, created = PromptRepo.init(repo, registry)
        where = created_repo.config.registry
        say(f"initialised registry in {where}/" if created else f"registry already initialised in {where}/")

    @app.command()
    def new(
        prompt_id: str = typer.Argument(..., metavar="ID", help="Prompt id: a-z, 0-9, '_' and '-'."),
        chat: bool = typer.Option(False, "--chat", help="Scaffold a chat prompt (role messages)."),
        repo: str = REPO_OPTION,
    ) -> None:
        """Scaffold a new prompt directory with prompt.yaml and body.j2."""
        from promptctl.cli.output import say
        from promptctl.errors import UsageError
        from promptctl.scaffold import scaffold_prompt

        r = _open(repo)
        try:
            path = scaffold_prompt(r, prompt_id, chat=chat)
        except FileExistsError:
            raise UsageError(f"prompt {prompt_id!r} already exists in {r.config.registry}/") from None
        say(f"created {path.relative_to(r.root)}/ (edit prompt.yaml and body.j2, then 'promptctl commit {prompt_id}')")

    @app.command()
    def status(
        check: bool = typer.Option(False, "--check", help="Exit 1 when any prompt changed since its last version."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Which prompts changed since their last version."""
        from promptctl.cli.output import emit_json, table

        r = _open(repo)
        rows = r.status()
        if json_out:
            emit_json(
                [
                    {
                        "id": s.prompt_id,
                        "state": s.state,
                        "template_hash": s.template_hash,
                        "template_hash_short": _short(s.template_hash) if s.template_hash else None,
                        "version": s.latest.version if s.latest else None,
                        "error": s.error,
                    }
                    for s in rows
                ]
            )
        else:
            table(
                None,
                ["prompt", "state", "hash", "last version", "problem"],
                [
                    (s.prompt_id, s.state, _short(s.template_hash), s.latest.version if s.latest else "-", s.error or "")
                    for s in rows
                ],
            )
        if check and any(s.state != "unchanged" for s in rows):
            raise typer.Exit(1)

    @app.command()
    def commit(
        prompt_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Prompts to version."),
        all_changed: bool = typer.Option(False, "--all", "-a", help="Every new or changed prompt."),
        message: str = typer.Option(..., "--message", "-m", help="What changed (stored in the version tag)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Commit prompts' files and tag one new version per prompt (<id>/v<N>)."""
        from promptctl.cli.output import emit_json, say
        from promptctl.errors import NothingChanged, UsageError
        from promptctl.spec import validate_id

        r = _open(repo)
        ids = [validate_id(p) for p in prompt_ids or []]
        if all_changed and ids:
            raise UsageError("give prompt ids or --all, not both")
        if all_changed:
            states = r.status()
            invalid = [s for s in states if s.state == "invalid"]
            if invalid:
                from promptctl.errors import InvalidContent

                raise InvalidContent(invalid[0].error or f"{invalid[0].prompt_id} is invalid")
            ids = [s.prompt_id for s in states if s.state in ("new", "modified")]
            if not ids:
                raise NothingChanged("nothing changed since the last versions; no version made")
        if not ids:
            raise UsageError("name the prompts to commit, or use --all")
        made = r.commit(ids, message)
        if json_out:
            emit_json([v.to_json() for v in made])
        else:
            for v in made:
                say(f"{v.tag}  {_short(v.template_hash)}  {v.commit[:12]}")

    @app.command("list")
    def list_(json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """Every prompt: latest version, hash, date, channels."""
        from promptctl.cli.output import emit_json, table

        r = _open(repo)
        by_prompt = r.versions_by_prompt()
        ids = sorted(set(by_prompt) | set(r.prompt_ids()))
        channels = _channels_by_prompt(r)
        if json_out:
            out = []
            for pid in ids:
                latest = by_prompt.get(pid, [None])[-1]
                entry = latest.to_json() if latest else {"id": pid, "version": None, "template_hash": None}
                entry["versions"] = len(by_prompt.get(pid, []))
                entry["channels"] = {s.channel: s.to_json()["serves"] for s in channels.get(pid, [])}
                out.append(entry)
            emit_json(out)
            return
        rows = []
        for pid in ids:
            latest = by_prompt.get(pid, [None])[-1]
            rows.append(
                (
                    pid,
                    latest.version if latest else "-",
                    _short(latest.template_hash) if latest else "-",
                    latest.created_at[:19].replace("T", " ") if latest else "-",
                    _channel_labels(channels.get(pid, [])),
                )
            )
        table(None, ["prompt", "latest", "hash", "date", "channels"], rows)

    @app.command()
    def log(prompt_id: str = typer.Argument(..., metavar="ID"), json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """A prompt's versions, newest first."""
        from promptctl.cli.output import emit_json, table
        from promptctl.errors import UnknownPrompt
        from promptctl.spec import validate_id

        r = _open(repo)
        versions = list(reversed(r.versions(validate_id(prompt_id))))
        if not versions and not r.known_prompt(prompt_id):
            raise UnknownPrompt(f"unknown prompt {prompt_id!r}")
        serving: dict[str, list[str]] = {}
        for state in _channels_by_prompt(r).get(prompt_id, []):
            for s in state.serves:
                serving.setdefault(s.version, []).append(state.channel if s.percent == 100 else f"{state.channel}({s.percent}%)")
        if json_out:
            emit_json([{**v.to_json(), "channels": serving.get(v.version, [])} for v in versions])
            return
        table(
            prompt_id,
            ["version", "hash", "date", "author", "channels", "message"],
            [
                (v.version, _short(v.template_hash), v.created_at[:19].replace("T", " "), v.author, ", ".join(serving.get(v.version, [])), v.message.splitlines()[0] if v.message else "")
                for v in versions
            ],
        )

    @app.command()
    def show(spec: str = typer.Argument(..., metavar="ID[@VERSION|@CHANNEL]"), json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """A version's metadata, hash and source."""
        from promptctl.cli.output import console, emit_json

        r = _open(repo)
        version = r.resolve(spec)
        definition = r.version_definition(version)
        states = _channels_by_prompt(r).get(version.prompt_id, [])
        channels = [s.channel for s in states if any(x.version == version.version for x in s.serves)]
        if json_out:
            emit_json(
                {
                    **version.to_json(),
                    "channels": channels,
                    "type": definition.type,
                    "metadata": definition.meta,
                    "files": definition.files,
                }
            )
            return
        out = console()
        out.print(f"[bold]{version.tag}[/bold]  hash {_short(version.template_hash)}  ({version.template_hash})")
        out.print(f"commit {version.commit}  {version.created_at}  {version.author}", markup=False)
        out.print(f"channels: {', '.join(channels) or '-'}", markup=False)
        out.print(f"message: {version.message}", markup=False)
        import yaml

        out.print("\n[bold]prompt.yaml[/bold]")
        out.print(yaml.safe_dump(definition.meta, sort_keys=False, allow_unicode=True).rstrip(), markup=False)
        for name, text in sorted(definition.files.items()):
            out.print(f"\n[bold]{name}[/bold]")
            out.print(text.rstrip("\n"), markup=False)

    @app.command()
    def diff(
        prompt_id: str = typer.Argument(..., metavar="ID"),
        old: str = typer.Argument(..., metavar="OLD", help="v<N> or a channel."),
        new: str | None = typer.Argument(None, metavar="[NEW]", help="v<N> or a channel (default: the working tree)."),
        repo: str = REPO_OPTION,
    ) -> None:
        """Unified diff of two versions' files (or a version against the working tree)."""
        import difflib

        import yaml

        from promptctl.spec import parse_spec

        r = _open(repo)

        def snapshot(selector: str | None):
            if selector is None:
                d = r.working_definition(prompt_id)
                label = "working tree"
            else:
                v = r.resolve(parse_spec(prompt_id, selector))
                d = r.version_definition(v)
                label = v.tag
            files = dict(d.files)
            files["prompt.yaml"] = yaml.safe_dump(d.meta, sort_keys=True, allow_unicode=True)
            return label, files

        old_label, old_files = snapshot(old)
        new_label, new_files = snapshot(new)
        lines = []
        for name in sorted(set(old_files) | set(new_files)):
            a = old_files.get(name, "").splitlines(keepends=True)
            b = new_files.get(name, "").splitlines(keepends=True)
            lines.extend(difflib.unified_diff(a, b, f"{old_label}/{name}", f"{new_label}/{name}"))
        import sys

        sys.stdout.write("".join(lines) if lines else f"no differences between {old_label} and {new_label}\n")

    @app.command()
    def render(
        spec: str = typer.Argument(..., metavar="ID[@VERSION|@CHANNEL]"),
        var: list[str] = typer.Option([], "--var", help="A template variable, name=value (repeatable)."),
        vars_json: str | None = typer.Option(None, "--vars-json", help="A JSON file of variables."),
        locale: str | None = typer.Option(None, "--locale"),
        tier: str | None = typer.Option(None, "--tier"),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Render a version with variables, choosing the body by locale and tier."""
        import sys

        from promptctl.cli.output import emit_json
        from promptctl.render import CompiledPrompt

        r = _open(repo)
        version = r.resolve(spec)
        definition = r.version_definition(version)
        selection = definition.select_body(locale, tier)
        compiled = CompiledPrompt(definition)
        variables = _parse_vars(var, vars_json)
        if json_out:
            payload = {
                **version.to_json(),
                "body": selection.file,
                "locale": selection.locale,
                "tier": selection.tier,
                "fallback": selection.fallback,
            }
            if definition.type == "chat":
                payload["messages"] = compiled.messages(selection.file, variables)
            else:
                payload["text"] = compiled.render(selection.file, variables)
            emit_json(payload)
            return
        sys.stdout.write(compiled.render(selection.file, variables) + "\n")
        note = f"{version.tag} {_short(version.template_hash)} body={selection.file}"
        if selection.fallback:
            note += " (fallback)"
        sys.stderr.write(note + "\n")

    @app.command("hash")
    def hash_(
        prompt_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Prompts (default: all)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """The template hash of the working-tree state of prompts."""
        from promptctl.cli.output import emit_json, say
        from promptctl.hashing import short_hash

        r = _open(repo)
        ids = prompt_ids or r.prompt_ids()
        results = [(pid, r.working_definition(pid).template_hash) for pid in ids]
        if json_out:
            emit_json([{"id": pid, "template_hash": h, "template_hash_short": short_hash(h)} for pid, h in results])
        else:
            for pid, h in results:
                say(f"{short_hash(h)}  {h}  {pid}")

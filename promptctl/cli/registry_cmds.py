"""Registry commands: init, new, status, commit, list, log, show, diff, render, hash."""

from __future__ import annotations

import typer

# Shared with the typer-free fast path (promptctl.cli.fastpath): a stdlib-only module, cheap to import.
from promptctl.cli.registry_views import channel_states as _channels_by_prompt
from promptctl.cli.registry_views import open_repo as _open
from promptctl.cli.registry_views import short as _short

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output with stable keys.")
REPO_OPTION = typer.Option(".", "--repo", "-C", help="Run as if started in this directory.", show_default=False)
YAML_WIDTH = 1_000_000  # never fold long YAML lines in show/diff output

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(prompt_id: str, name: str, value: str, declared: dict) -> object:
    """A ``--var name=value`` string as the type the prompt declares for ``name`` (undeclared: a string)."""
    import json

    from promptctl.errors import UsageError

    kind = (declared.get(name) or {}).get("type", "string")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        if kind == "boolean":
            if value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise ValueError(value)
        if kind in ("list", "object"):
            parsed = json.loads(value)
            if not isinstance(parsed, list if kind == "list" else dict):
                raise ValueError(value)
            return parsed
    except ValueError:
        example = {"integer": "3", "number": "0.5", "boolean": "true", "list": '["a", "b"]', "object": '{"k": "v"}'}[kind]
        raise UsageError(
            f"--var {name}={value!r}: {prompt_id} declares {name!r} as {kind}; pass e.g. --var {name}={example}"
        ) from None
    return value


def _parse_vars(pairs: list[str], vars_json: str | None, prompt_id: str = "", declared: dict | None = None) -> dict:
    """Variables from ``--vars-json FILE`` then ``--var name=value`` (converted to the declared input types)."""
    import json

    from promptctl.errors import UsageError

    declared = declared or {}
    variables: dict = {}
    if vars_json:
        try:
            with open(vars_json, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except OSError as exc:
            raise UsageError(f"--vars-json {vars_json}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"--vars-json {vars_json}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--vars-json {vars_json}: not valid UTF-8") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--vars-json {vars_json}: must hold a JSON object")
        variables.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: use --var name=value")
        variables[name] = _coerce(prompt_id, name, value, declared)
    return variables


def _check_condition(option: str, value: str | None) -> str | None:
    import re

    from promptctl.errors import UsageError
    from promptctl.promptfile import LOCALE_RE, TIER_RE

    if value is None or value == "":
        return None
    pattern = LOCALE_RE if option == "--locale" else TIER_RE
    if not re.fullmatch(pattern, value):
        raise UsageError(f"{option} {value!r}: does not match {pattern}")
    return value


def _selector(prompt_id: str, text: str) -> str:
    """``v2``, ``@v2``, ``<id>@v2`` or a channel name -> the selector part (``v2`` / the channel)."""
    from promptctl.errors import InvalidVersionSpec

    if "@" in text:
        named, _, selector = text.partition("@")
        if named and named != prompt_id:
            raise InvalidVersionSpec(f"{text!r} names another prompt than {prompt_id!r}")
        return selector
    return text


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
        from promptctl import gitstore

        if gitstore.rev_parse(created_repo.root, "HEAD") is None:
            # promptctl commit needs a branch with a commit to build on; say so now rather than at the first commit.
            say(f"next: make a first commit (git add promptctl.yaml {where} && git commit -m 'prompt registry'), "
                "then 'promptctl new ID'")

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
        from promptctl.spec import validate_id

        validate_id(prompt_id)  # before anything is opened or created
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
        """Which prompts changed since their last version (new, modified, unchanged, invalid).

        Every prompt is reported; when any is invalid, its problem is also printed on stderr and the exit
        code is 4. With --check, exit 1 when any prompt is new or modified.
        """
        from promptctl.cli.output import emit_json, note, table
        from promptctl.errors import ExitCode

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
                        "version_hash": s.latest.template_hash if s.latest else None,
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
        invalid = [s for s in rows if s.state == "invalid"]
        for s in invalid:
            note(f"promptctl: error: {s.error}")
        if invalid:
            raise typer.Exit(int(ExitCode.INVALID_CONTENT))
        if check and any(s.state != "unchanged" for s in rows):
            raise typer.Exit(int(ExitCode.PROBLEMS))

    @app.command()
    def commit(
        prompt_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Prompts to version."),
        all_changed: bool = typer.Option(False, "--all", "-a", help="Every new or changed prompt."),
        message: str = typer.Option(..., "--message", "-m", help="What changed (stored in the version tag)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Commit prompts' files and tag one new version per prompt (<id>/v<N>).

        The commit holds only these prompts' files and the partials they include; other staged or unstaged
        work is left as it was.
        """
        from promptctl.cli.output import emit_json, note, say
        from promptctl.errors import InvalidContent, NothingChanged, UsageError
        from promptctl.spec import validate_id

        ids = [validate_id(p) for p in prompt_ids or []]
        if all_changed and ids:
            raise UsageError("give prompt ids or --all, not both")
        if not all_changed and not ids:
            raise UsageError("name the prompts to commit, or use --all")
        r = _open(repo)
        if all_changed:
            states = r.status()
            invalid = [s for s in states if s.state == "invalid"]
            if invalid:
                raise InvalidContent(invalid[0].error or f"{invalid[0].prompt_id} is invalid")
            ids = [s.prompt_id for s in states if s.state in ("new", "modified")]
            if not ids:
                raise NothingChanged("nothing changed since the last versions; no version made")
        result = r.commit_prompts(ids, message)
        if json_out:
            emit_json([v.to_json() for v in result.versions])
        else:
            for v in result.versions:
                say(f"{v.tag}  {_short(v.template_hash)}  {v.commit[:12]}")
        if result.changed_partials:
            others = r.prompts_including(result.changed_partials, exclude=ids)
            if others:
                shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
                note(
                    f"note: {', '.join(result.changed_partials)} changed; also included by {shown} "
                    "(their next version picks it up; see 'promptctl status')"
                )

    @app.command("list")
    def list_(json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """Every prompt: latest version, hash, date, channels."""
        from promptctl.cli.registry_views import list_prompts

        list_prompts(json_out, repo)

    @app.command()
    def log(prompt_id: str = typer.Argument(..., metavar="ID"), json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """A prompt's versions, newest first."""
        from promptctl.cli.registry_views import log_prompt

        log_prompt(prompt_id, json_out, repo)

    @app.command()
    def show(spec: str = typer.Argument(..., metavar="ID[@VERSION|@CHANNEL]"), json_out: bool = JSON_OPTION, repo: str = REPO_OPTION) -> None:
        """A version's metadata, hash and source (every body and the partials they include)."""
        from promptctl.cli.output import emit_json, heading, raw
        from promptctl.promptfile import split_chat_source

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
                    "bodies": sorted(definition.bodies),
                    "partials": sorted(definition.partials),
                    "files": definition.files,
                }
            )
            return
        import yaml

        heading(f"{version.tag}  hash {_short(version.template_hash)}  ({version.template_hash})")
        raw(f"commit {version.commit}  {version.created_at}  {version.author}")
        raw(f"channels: {', '.join(channels) or '-'}")
        raw(f"message: {version.message}")
        raw(f"type: {definition.type}")
        raw("")
        heading("prompt.yaml")
        raw(yaml.safe_dump(definition.meta, sort_keys=False, allow_unicode=True, width=YAML_WIDTH))
        for name in sorted(definition.files):
            text = definition.files[name]
            label = name
            if definition.type == "chat" and name in definition.bodies:
                label += f"  (chat: {', '.join(role for role, _ in split_chat_source(text)) or 'no messages'})"
            raw("")
            heading(label if name in definition.bodies else f"{label}  (partial)")
            raw(text)

    @app.command()
    def diff(
        prompt_id: str = typer.Argument(..., metavar="ID[@OLD]"),
        old: str | None = typer.Argument(None, metavar="[OLD]", help="v<N> or a channel (default: the latest version)."),
        new: str | None = typer.Argument(None, metavar="[NEW]", help="v<N> or a channel (default: the working tree)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Unified diff of two versions' files, or of a version against the working tree.

        promptctl diff ID v1 v2 / ID v1 (v1 -> working tree) / ID production staging / ID (latest -> working tree)
        """
        import difflib

        import yaml

        from promptctl.cli.output import raw
        from promptctl.errors import UsageError
        from promptctl.spec import parse_spec, validate_id

        selectors = []
        if "@" in prompt_id:
            prompt_id, _, first = prompt_id.partition("@")
            selectors.append(first)
        validate_id(prompt_id)
        selectors += [_selector(prompt_id, s) for s in (old, new) if s is not None]
        if len(selectors) > 2:
            raise UsageError("diff takes at most two versions: ID OLD [NEW]")
        r = _open(repo)

        def snapshot(selector: str | None):
            if selector is None:
                d = r.working_definition(prompt_id)
                label, side = "working tree", {"version": None, "channel": None, "template_hash": d.template_hash}
            else:
                spec = parse_spec(prompt_id, selector) if selector else parse_spec(prompt_id)
                v = r.resolve(spec)
                d = r.version_definition(v)
                label = v.tag if spec.channel is None else f"{v.tag} ({spec.channel})"
                side = {"version": v.version, "channel": spec.channel, "template_hash": v.template_hash}
            files = dict(d.files)
            files["prompt.yaml"] = yaml.safe_dump(d.meta, sort_keys=True, allow_unicode=True, width=YAML_WIDTH)
            return label, files, {"label": label, **side}

        old_label, old_files, old_side = snapshot(selectors[0] if selectors else "")
        new_label, new_files, new_side = snapshot(selectors[1] if len(selectors) > 1 else None)
        lines = []
        changed = []
        for name in sorted(set(old_files) | set(new_files)):
            a = old_files.get(name, "").splitlines(keepends=True)
            b = new_files.get(name, "").splitlines(keepends=True)
            hunk = list(difflib.unified_diff(a, b, f"{old_label}/{name}", f"{new_label}/{name}"))
            if hunk:
                status = "added" if name not in old_files else "removed" if name not in new_files else "modified"
                changed.append({"file": name, "status": status, "diff": "".join(hunk)})
            lines.extend(hunk)
        if json_out:
            from promptctl.cli.output import emit_json

            emit_json({"id": prompt_id, "old": old_side, "new": new_side, "identical": not changed, "files": changed})
            return
        raw("".join(lines) if lines else f"no differences between {old_label} and {new_label}\n")

    @app.command()
    def render(
        spec: str = typer.Argument(..., metavar="ID[@VERSION|@CHANNEL]"),
        var: list[str] = typer.Option([], "--var", help="A template variable, name=value (repeatable; converted to the declared input type)."),
        vars_json: str | None = typer.Option(None, "--vars-json", help="A JSON file holding an object of variables."),
        locale: str | None = typer.Option(None, "--locale", help="Pick the body for this locale (falls back: locale+tier, locale, tier, default)."),
        tier: str | None = typer.Option(None, "--tier", help="Pick the body for this tier."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """Render a version with variables, choosing the body by locale and tier.

        The text goes to stdout; which version, hash and body were used goes to stderr (or into --json).
        """
        import sys

        from promptctl.cli.output import emit_json, note
        from promptctl.render import CompiledPrompt

        locale = _check_condition("--locale", locale)
        tier = _check_condition("--tier", tier)
        r = _open(repo)
        version = r.resolve(spec)
        definition = r.version_definition(version)
        selection = definition.select_body(locale, tier)
        compiled = CompiledPrompt(definition)
        variables = _parse_vars(var, vars_json, version.prompt_id, definition.inputs)
        text = compiled.render(selection.file, variables)
        if json_out:
            emit_json(
                {
                    **version.to_json(),
                    "type": definition.type,
                    "body": selection.file,
                    "locale": selection.locale,
                    "tier": selection.tier,
                    "requested": {"locale": locale, "tier": tier},
                    "fallback": selection.fallback,
                    "model": definition.model,
                    "text": text,
                    "messages": compiled.messages(selection.file, variables),
                }
            )
            return
        sys.stdout.write(text + "\n")
        line = f"{version.tag} {_short(version.template_hash)} body={selection.file}"
        if selection.fallback:
            line += f" (fallback: asked locale={locale or '-'} tier={tier or '-'})"
        note(line)

    @app.command("hash")
    def hash_(
        prompt_ids: list[str] = typer.Argument(None, metavar="[ID]...", help="Prompts (default: all)."),
        json_out: bool = JSON_OPTION,
        repo: str = REPO_OPTION,
    ) -> None:
        """The template hash of the working-tree state of prompts (what 'commit' would record)."""
        from promptctl.cli.output import emit_json, say
        from promptctl.hashing import short_hash
        from promptctl.spec import validate_id

        ids = [validate_id(p) for p in prompt_ids or []]
        r = _open(repo)
        ids = ids or r.prompt_ids()
        results = [(pid, r.working_definition(pid).template_hash) for pid in ids]
        if json_out:
            emit_json([{"id": pid, "template_hash": h, "template_hash_short": short_hash(h)} for pid, h in results])
        else:
            for pid, h in results:
                say(f"{short_hash(h)}  {h}  {pid}")

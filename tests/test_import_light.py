"""`import promptctl` stays light: the runtime loader lives behind it, the CLI's heavy tools do not."""

import json
import subprocess
import sys

HEAVY = ("typer", "rich", "git", "duckdb", "jinja2", "yaml", "pydantic")


def loaded_after(code: str) -> set[str]:
    probe = f"""
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_import_promptctl_loads_no_heavy_dependency():
    assert heavy_in(loaded_after("import promptctl")) == []


def test_core_modules_import_their_dependencies_lazily():
    # Parsing specs, hashing and reading Git need none of them either; jinja2 and yaml load on first parse.
    modules = loaded_after(
        "import promptctl, promptctl.errors, promptctl.spec, promptctl.hashing, promptctl.model, "
        "promptctl.gitstore, promptctl.promptfile, promptctl.registry, promptctl.render, promptctl.config"
    )
    assert heavy_in(modules) == []


def test_the_cli_entry_point_loads_nothing_heavy_until_a_command_runs():
    modules = loaded_after("import promptctl.cli.main")
    assert heavy_in(modules) == []  # the typer app is built on first use


def test_building_the_app_loads_typer_but_not_the_core():
    modules = loaded_after("import promptctl.cli.main as m; m.app")
    assert "typer" in modules
    for name in ("rich", "git", "duckdb", "jinja2", "yaml", "pydantic"):
        assert not any(m == name or m.startswith(name + ".") for m in modules), name


def test_the_log_and_list_fast_paths_load_only_what_they_use(versioned_repo):
    """``promptctl log ID --json`` is measured against a bare ``git for-each-ref`` started from Python: it
    loads no CLI framework and not ``dataclasses`` (about 15 ms on a small machine; its types are records).
    ``list`` loads no CLI framework either."""
    for command in ("log support_intent_classifier --json", "list --json"):
        probe = (
            "import sys, runpy, json\n"
            f"sys.argv = ['promptctl', *{command.split()!r}, '-C', {str(versioned_repo)!r}]\n"
            "try:\n"
            "    runpy.run_module('promptctl.cli.main', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        )
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        json.loads(proc.stdout)  # the command ran and printed its JSON
        modules = set(json.loads(proc.stderr.splitlines()[-1]))
        assert heavy_in(modules) == [], command
        if command.startswith("log"):  # list reads the working tree too (promptfile): within 2x of git anyway
            assert {"dataclasses", "inspect", "typing"} & modules == set(), command

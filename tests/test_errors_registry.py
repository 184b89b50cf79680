"""Every error of the registry commands: documented exit code, one line on stderr, no traceback, nothing changed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import git, init_git_repo, run_cli

CLASSIFIER = "support_intent_classifier"


def raw_git(path: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, check=False).stdout


def repo_state(path: Path) -> tuple:
    """Everything a command could change: refs, HEAD, index and working tree status, untracked files."""
    if not (path / ".git").exists():
        return tuple(sorted(p.name for p in path.iterdir()))
    return tuple(
        raw_git(path, *args)
        for args in (
            ("for-each-ref", "--format=%(refname) %(objectname)"),
            ("symbolic-ref", "-q", "HEAD"),
            ("rev-parse", "-q", "--verify", "HEAD"),
            ("status", "--porcelain", "--untracked-files=all", "--ignored"),
            ("diff", "--cached", "--binary"),
            ("diff", "--binary"),
        )
    )


def fails(cwd: Path, code: int, *args: str, contains: str = "", env: dict | None = None):
    """Run the CLI, expect exit ``code`` and exactly one ``promptctl: error:`` line; the repo must not change."""
    before = repo_state(cwd)
    proc = run_cli(cwd, *args, env=env)
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("promptctl: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert contains in lines[0], lines[0]
    assert repo_state(cwd) == before
    return lines[0]


def test_not_inside_a_git_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (("list",), ("init",), ("status",), ("new", "hello"), ("commit", "x", "-m", "m"), ("log", "x")):
        fails(plain, 3, *args, contains="not inside a Git repository")


def test_no_registry_yet(git_repo):
    for args in (("list",), ("status",), ("new", "hello"), ("show", "x"), ("hash",), ("render", "x")):
        fails(git_repo, 3, *args, contains="promptctl init")


def test_registry_directory_missing(example_repo):
    shutil.rmtree(example_repo / "prompts")
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-q", "-m", "no prompts")
    fails(example_repo, 3, "list", contains="registry directory prompts/ is missing")


def test_unknown_prompt(versioned_repo):
    for args in (("show", "nope"), ("log", "nope"), ("render", "nope"), ("diff", "nope", "v1"), ("hash", "nope"), ("commit", "nope", "-m", "m")):
        fails(versioned_repo, 3, *args, contains="unknown prompt 'nope'")


def test_unknown_version(versioned_repo):
    for args in (("show", f"{CLASSIFIER}@v9"), ("render", f"{CLASSIFIER}@v9"), ("diff", CLASSIFIER, "v1", "v9")):
        fails(versioned_repo, 3, *args, contains="has no version v9 (latest is v1)")


def test_prompt_without_versions(versioned_repo):
    (versioned_repo / "prompts" / "draft").mkdir()
    (versioned_repo / "prompts" / "draft" / "prompt.yaml").write_text("type: text\n")
    (versioned_repo / "prompts" / "draft" / "body.j2").write_text("hi\n")
    fails(versioned_repo, 3, "show", "draft", contains="no versions yet")


INVALID_IDS = ["a/b", "..", "../escape", "-leading", "has space", "Upper", "x" * 101, "a\\b"]


def test_invalid_id_for_new_creates_nothing(versioned_repo):
    for bad in INVALID_IDS:
        fails(versioned_repo, 2, "new", "--", bad, contains="invalid prompt id")


def test_invalid_id_everywhere(versioned_repo):
    for command, bad in (("show", "../escape"), ("log", "Upper"), ("render", "a b"), ("hash", "a/b"), ("diff", "-x")):
        fails(versioned_repo, 2, command, "--", bad, contains="invalid prompt id")
    fails(versioned_repo, 2, "commit", "-m", "m", "--", "..", contains="invalid prompt id")


def test_invalid_version_spec_and_option_like_ids(versioned_repo):
    fails(versioned_repo, 2, "show", "-x", contains="No such option")
    fails(versioned_repo, 2, "show", f"{CLASSIFIER}@", contains="nothing after '@'")
    fails(versioned_repo, 2, "show", f"{CLASSIFIER}@v0", contains="invalid")
    fails(versioned_repo, 2, "show", f"{CLASSIFIER}@Prod", contains="invalid")


def test_usage_errors_are_one_line(versioned_repo):
    fails(versioned_repo, 2, "commit", CLASSIFIER, contains="Missing option '--message'")
    fails(versioned_repo, 2, "commit", "-m", "m", contains="name the prompts to commit, or use --all")
    fails(versioned_repo, 2, "commit", "--all", CLASSIFIER, "-m", "m", contains="not both")
    fails(versioned_repo, 2, "commit", CLASSIFIER, "-m", "  ", contains="message is required")
    fails(versioned_repo, 2, "nosuchcommand", contains="No such command")
    fails(versioned_repo, 2, "render", CLASSIFIER, "--var", "novalue", contains="use --var name=value")
    fails(versioned_repo, 2, "render", CLASSIFIER, contains="missing required variable 'message'")
    fails(versioned_repo, 2, "render", "ticket_summarizer", "--var", "thread=t", "--var", "max_bullets=many", contains="as integer")
    fails(versioned_repo, 2, "render", CLASSIFIER, "--var", "message=m", "--locale", "../x", contains="--locale")
    fails(versioned_repo, 2, "new", CLASSIFIER, contains="already exists")
    fails(versioned_repo, 2, "init", "--registry", "../outside", contains="invalid registry directory")


def test_yaml_syntax_error_with_file_and_line(versioned_repo):
    meta = versioned_repo / "prompts" / CLASSIFIER / "prompt.yaml"
    meta.write_text(meta.read_text().replace("  temperature: 0\n", "  temperature: [0\n"))
    for args in (("hash", CLASSIFIER), ("commit", CLASSIFIER, "-m", "m"), ("commit", "--all", "-m", "m"), ("diff", CLASSIFIER, "v1")):
        line = fails(versioned_repo, 4, *args, contains=f"prompts/{CLASSIFIER}/prompt.yaml:")
        assert "YAML syntax error" in line
        assert line.split("prompt.yaml:")[1].split(":")[0].isdigit()


def test_jinja_syntax_error_with_file_and_line(versioned_repo):
    body = versioned_repo / "prompts" / CLASSIFIER / "body.locale-de.j2"
    body.write_text("Zeile 1\nZeile 2\n{% if message %}\nnie geschlossen\n")
    for args in (("hash", CLASSIFIER), ("commit", CLASSIFIER, "-m", "m")):
        line = fails(versioned_repo, 4, *args, contains=f"prompts/{CLASSIFIER}/body.locale-de.j2:")
        assert "template syntax error" in line


def test_include_outside_the_registry(versioned_repo):
    (versioned_repo / "secret.txt").write_text("secret\n")
    git(versioned_repo, "add", "secret.txt")
    git(versioned_repo, "commit", "-q", "-m", "a file outside the registry")
    body = versioned_repo / "prompts" / "ticket_summarizer" / "body.j2"
    body.write_text('{% include "../secret.txt" %}\n{{ thread }}\n')
    fails(versioned_repo, 4, "commit", "ticket_summarizer", "-m", "m", contains="points outside the registry")
    fails(versioned_repo, 4, "hash", "ticket_summarizer", contains="points outside the registry")


def test_symlink_pointing_outside_is_not_followed(versioned_repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    tone = versioned_repo / "prompts" / "_partials" / "tone.j2"
    tone.unlink()
    tone.symlink_to(secret)
    fails(versioned_repo, 4, "commit", "support_reply", "-m", "m", contains="symbolic link")
    body = versioned_repo / "prompts" / CLASSIFIER / "body.j2"
    body.unlink()
    body.symlink_to(secret)
    fails(versioned_repo, 4, "commit", CLASSIFIER, "-m", "m", contains="symbolic link")


def test_body_that_is_not_utf8(versioned_repo):
    (versioned_repo / "prompts" / CLASSIFIER / "body.j2").write_bytes("Kategorie für {{ message }}\n".encode("latin-1"))
    fails(versioned_repo, 4, "commit", CLASSIFIER, "-m", "m", contains=f"prompts/{CLASSIFIER}/body.j2:1: not valid UTF-8 (byte 0xfc")


def test_status_reports_invalid_prompts_and_exits_4(versioned_repo):
    (versioned_repo / "prompts" / "ticket_summarizer" / "body.j2").write_text("{% for %}\n")
    before = repo_state(versioned_repo)
    proc = run_cli(versioned_repo, "status")
    assert proc.returncode == 4
    assert "ticket_summarizer" in proc.stdout and "invalid" in proc.stdout and CLASSIFIER in proc.stdout
    assert proc.stderr.splitlines() == [line for line in proc.stderr.splitlines() if line.startswith("promptctl: error: prompts/ticket_summarizer/body.j2:1:")]
    assert len(proc.stderr.splitlines()) == 1
    assert repo_state(versioned_repo) == before


def test_nothing_changed(versioned_repo):
    fails(versioned_repo, 5, "commit", CLASSIFIER, "-m", "again", contains=f"nothing changed in {CLASSIFIER} since {CLASSIFIER}/v1")
    fails(versioned_repo, 5, "commit", "--all", "-m", "again", contains="nothing changed")


def test_detached_head(versioned_repo):
    (versioned_repo / "prompts" / CLASSIFIER / "body.j2").write_text("changed {{ message }}\n")
    git(versioned_repo, "checkout", "-q", "--detach")
    fails(versioned_repo, 5, "commit", CLASSIFIER, "-m", "m", contains="HEAD is detached")


def test_unborn_branch(tmp_path):
    repo = init_git_repo(tmp_path / "fresh")
    assert run_cli(repo, "init").returncode == 0
    assert run_cli(repo, "new", "hello").returncode == 0
    fails(repo, 5, "commit", "hello", "-m", "m", contains="has no commits yet")


def test_git_missing_from_path(versioned_repo, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": str(bin_dir)}
    assert shutil.which("git", path=str(bin_dir)) is None
    before = repo_state(versioned_repo)
    for args in (("list",), ("commit", CLASSIFIER, "-m", "m"), ("status",)):
        proc = run_cli(versioned_repo, *args, env=env)
        assert proc.returncode == 7, proc.stderr
        assert proc.stderr == "promptctl: error: git is not installed or not on PATH; install git and try again\n"
    assert repo_state(versioned_repo) == before


def test_bad_vars_json(versioned_repo):
    env = {"PROMPTCTL_DEBUG": ""}
    proc = run_cli(versioned_repo, "render", CLASSIFIER, "--var", "message=x", "--vars-json", os.devnull, env=env)
    assert proc.returncode == 2 and "invalid JSON" in proc.stderr and len(proc.stderr.splitlines()) == 1

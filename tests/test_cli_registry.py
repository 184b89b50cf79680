"""Every registry command through the real CLI: init, new, status, commit, list, log, show, diff, render, hash."""

import json

from conftest import git, run_cli

CLASSIFIER = "support_intent_classifier"


VERSION_KEYS = {"id", "version", "tag", "template_hash", "template_hash_short", "commit", "created_at", "author", "message"}


def ok(cwd, *args, **kwargs):
    proc = run_cli(cwd, *args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def as_json(cwd, *args):
    return json.loads(ok(cwd, *args, "--json").stdout)


def edit(path, text="\nOne more line.\n"):
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def assert_version_json(entry, prompt_id, version):
    assert VERSION_KEYS <= set(entry)
    assert (entry["id"], entry["version"], entry["tag"]) == (prompt_id, version, f"{prompt_id}/{version}")
    assert len(entry["template_hash"]) == 64 and entry["template_hash_short"] == entry["template_hash"][:12]
    assert len(entry["commit"]) == 40
    assert entry["created_at"][10] == "T"
    assert entry["author"] == "Test Author <author@example.com>"


def test_init_new_commit_from_scratch(git_repo):
    assert "initialised registry in prompts/" in ok(git_repo, "init").stdout
    assert "already initialised" in ok(git_repo, "init").stdout
    assert "created prompts/hello/" in ok(git_repo, "new", "hello").stdout
    ok(git_repo, "new", "chatter", "--chat")
    assert (git_repo / "prompts" / "hello" / "prompt.yaml").is_file()
    assert "system:" in (git_repo / "prompts" / "chatter" / "body.j2").read_text()
    states = {s["id"]: s["state"] for s in as_json(git_repo, "status")}
    assert states == {"chatter": "new", "hello": "new"}
    made = as_json(git_repo, "commit", "hello", "-m", "first hello")
    assert_version_json(made[0], "hello", "v1")
    assert made[0]["message"] == "first hello"
    assert git(git_repo, "tag", "--list").split() == ["hello/v1"]


def test_init_with_a_custom_registry_dir(git_repo):
    ok(git_repo, "init", "--registry", "config/prompts")
    assert (git_repo / "config" / "prompts" / "_partials").is_dir()
    ok(git_repo, "new", "hello")
    assert (git_repo / "config" / "prompts" / "hello" / "body.j2").is_file()
    sub = git_repo / "config"
    assert as_json(sub, "hash", "hello")[0]["id"] == "hello"  # works from a subdirectory too


def test_status_states_and_check(versioned_repo):
    assert {s["state"] for s in as_json(versioned_repo, "status")} == {"unchanged"}
    ok(versioned_repo, "status", "--check")
    edit(versioned_repo / "prompts" / CLASSIFIER / "body.j2")
    entries = {s["id"]: s for s in as_json(versioned_repo, "status")}
    assert entries[CLASSIFIER]["state"] == "modified" and entries[CLASSIFIER]["version"] == "v1"
    assert entries[CLASSIFIER]["template_hash"] != entries[CLASSIFIER]["version_hash"]
    assert set(entries["support_reply"]) >= {"id", "state", "template_hash", "template_hash_short", "version", "error"}
    checked = run_cli(versioned_repo, "status", "--check")
    assert checked.returncode == 1 and checked.stderr == ""
    table = ok(versioned_repo, "status").stdout
    assert CLASSIFIER in table and "modified" in table


def test_commit_all_and_commit_json(example_repo):
    made = as_json(example_repo, "commit", "--all", "-m", "first release")
    assert [m["tag"] for m in made] == [f"{CLASSIFIER}/v1", "support_reply/v1", "ticket_summarizer/v1"]
    for entry in made:
        assert_version_json(entry, entry["id"], "v1")
    edit(example_repo / "prompts" / "support_reply" / "body.j2")
    made = as_json(example_repo, "commit", "--all", "-m", "reply only")
    assert [m["tag"] for m in made] == ["support_reply/v2"]
    human = run_cli(example_repo, "commit", "--all", "-m", "nothing")
    assert human.returncode == 5 and human.stderr.startswith("promptctl: error: nothing changed")


def test_commit_human_output_and_shared_partial_note(versioned_repo):
    edit(versioned_repo / "prompts" / "_partials" / "tone.j2", "Never use jargon.\n")
    proc = ok(versioned_repo, "commit", "support_reply", "-m", "tone")
    assert proc.stdout.startswith("support_reply/v2  ")
    assert "_partials/tone.j2 changed; also included by ticket_summarizer" in proc.stderr


def test_list_json_and_table(versioned_repo):
    ok(versioned_repo, "new", "draft")
    entries = as_json(versioned_repo, "list")
    assert [e["id"] for e in entries] == ["draft", CLASSIFIER, "support_reply", "ticket_summarizer"]
    assert_version_json(entries[1], CLASSIFIER, "v1")
    assert entries[1]["versions"] == 1 and entries[1]["channels"] == {}
    draft = entries[0]
    assert VERSION_KEYS <= set(draft) and draft["version"] is None and draft["template_hash"] is None
    table = ok(versioned_repo, "list").stdout
    assert CLASSIFIER in table and "v1" in table


def test_list_table_is_not_wrapped_when_piped(versioned_repo):
    long_id = "a_prompt_with_a_really_long_identifier_that_would_not_fit_an_eighty_column_terminal_at_all"
    ok(versioned_repo, "new", long_id)
    lines = ok(versioned_repo, "list", env={"COLUMNS": "40"}).stdout.splitlines()
    assert any(long_id in line for line in lines)
    assert all("\x1b[" not in line for line in lines)  # no colour when not a TTY


def test_log_newest_first(versioned_repo):
    body = versioned_repo / "prompts" / CLASSIFIER / "body.j2"
    for n in (2, 3):
        edit(body, f"\nrevision {n}\n")
        ok(versioned_repo, "commit", CLASSIFIER, "-m", f"revision {n}\n\nwith a longer body")
    entries = as_json(versioned_repo, "log", CLASSIFIER)
    assert [e["version"] for e in entries] == ["v3", "v2", "v1"]
    assert entries[0]["message"] == "revision 3\n\nwith a longer body"
    for entry in entries:
        assert_version_json(entry, CLASSIFIER, entry["version"])
        assert entry["channels"] == []
    table = ok(versioned_repo, "log", CLASSIFIER).stdout
    assert table.index("v3") < table.index("v1") and "revision 3" in table and "longer body" not in table


def test_show_text_and_chat(versioned_repo):
    data = as_json(versioned_repo, "show", f"{CLASSIFIER}@v1")
    assert_version_json(data, CLASSIFIER, "v1")
    assert data["type"] == "text" and data["metadata"]["model"]["name"] == "gpt-4o-mini"
    assert "body.locale-de.j2" in data["bodies"] and data["partials"] == ["_partials/intents.j2"]
    assert set(data["files"]) == set(data["bodies"]) | set(data["partials"])
    chat = as_json(versioned_repo, "show", "support_reply")
    assert chat["type"] == "chat" and chat["files"]["body.j2"].startswith("system:\n")
    human = ok(versioned_repo, "show", "support_reply").stdout
    assert "support_reply/v1" in human and "type: chat" in human and "(chat: system, user)" in human
    assert "{{ customer_name }}" in human  # the source verbatim


def test_show_prints_sources_verbatim(versioned_repo):
    body = versioned_repo / "prompts" / "ticket_summarizer" / "body.j2"
    edit(body, "[bold]not markup[/bold] :thumbs_up: " + "long " * 60 + "\n")
    ok(versioned_repo, "commit", "ticket_summarizer", "-m", "markup-looking text")
    out = ok(versioned_repo, "show", "ticket_summarizer").stdout
    assert "[bold]not markup[/bold] :thumbs_up: " + "long " * 59 + "long\n" in out


def test_diff_versions_working_tree_and_channel(versioned_repo):
    body = versioned_repo / "prompts" / CLASSIFIER / "body.j2"
    edit(body, "\nBe strict.\n")
    ok(versioned_repo, "commit", CLASSIFIER, "-m", "strict")
    out = ok(versioned_repo, "diff", CLASSIFIER, "v1", "v2").stdout
    assert f"--- {CLASSIFIER}/v1/body.j2" in out and f"+++ {CLASSIFIER}/v2/body.j2" in out and "+Be strict." in out
    assert ok(versioned_repo, "diff", f"{CLASSIFIER}@v1", "v2").stdout == out
    assert "no differences between" in ok(versioned_repo, "diff", CLASSIFIER).stdout
    edit(body, "\nWorking tree only.\n")
    out = ok(versioned_repo, "diff", CLASSIFIER, "v2").stdout
    assert "+Working tree only." in out and "working tree/body.j2" in out
    meta = versioned_repo / "prompts" / CLASSIFIER / "prompt.yaml"
    meta.write_text(meta.read_text().replace("temperature: 0", "temperature: 0.5"))
    assert "+  temperature: 0.5" in ok(versioned_repo, "diff", CLASSIFIER).stdout
    promoted = run_cli(versioned_repo, "promote", CLASSIFIER, "v1", "--channel", "staging")
    if promoted.returncode == 0:  # the channels issue provides promote
        out = ok(versioned_repo, "diff", CLASSIFIER, "staging", "v2").stdout
        assert f"--- {CLASSIFIER}/v1 (staging)/body.j2" in out and "+Be strict." in out


def test_render_text_with_locale_tier_and_fallback(versioned_repo):
    proc = ok(versioned_repo, "render", CLASSIFIER, "--var", "message=Doppelt belastet", "--locale", "de", "--tier", "enterprise")
    assert "Enterprise-Kunden" in proc.stdout and "Nachricht: Doppelt belastet" in proc.stdout
    assert f"{CLASSIFIER}/v1" in proc.stderr and "body.locale-de.tier-enterprise.j2" in proc.stderr
    assert "fallback" not in proc.stderr
    data = as_json(versioned_repo, "render", f"{CLASSIFIER}@v1", "--var", "message=hi", "--locale", "de", "--tier", "free")
    assert_version_json(data, CLASSIFIER, "v1")
    assert (data["body"], data["locale"], data["tier"], data["fallback"]) == ("body.locale-de.j2", "de", None, True)
    assert data["requested"] == {"locale": "de", "tier": "free"}
    assert data["text"].startswith("Du ordnest") and data["messages"] == [{"role": "user", "content": data["text"]}]
    data = as_json(versioned_repo, "render", CLASSIFIER, "--var", "message=hi", "--locale", "fr")
    assert (data["body"], data["fallback"]) == ("body.j2", True)
    proc = ok(versioned_repo, "render", CLASSIFIER, "--var", "message=hi", "--locale", "fr")
    assert "(fallback" in proc.stderr


def test_render_typed_vars_and_vars_json(versioned_repo, tmp_path):
    proc = ok(versioned_repo, "render", "ticket_summarizer", "--var", "thread=Late parcel", "--var", "max_bullets=5")
    assert "at most 5 bullet points" in proc.stdout
    default = ok(versioned_repo, "render", "ticket_summarizer", "--var", "thread=Late parcel")
    assert "at most 3 bullet points" in default.stdout
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"customer_name": "Ada", "intent": "refund", "message": "charged twice", "order_facts": ["paid twice"]}))
    data = as_json(versioned_repo, "render", "support_reply", "--vars-json", str(variables))
    assert [m["role"] for m in data["messages"]] == ["system", "user"]
    assert "- paid twice" in data["messages"][1]["content"] and data["type"] == "chat"
    assert data["text"].startswith("system:\n")
    listed = ok(versioned_repo, "render", "support_reply", "--vars-json", str(variables), "--var", 'order_facts=["a", "b"]')
    assert "- a\n- b" in listed.stdout


def test_hash_matches_status_and_commit(versioned_repo):
    hashes = {h["id"]: h for h in as_json(versioned_repo, "hash")}
    assert set(hashes) == {CLASSIFIER, "support_reply", "ticket_summarizer"}
    assert hashes[CLASSIFIER]["template_hash_short"] == hashes[CLASSIFIER]["template_hash"][:12]
    shown = as_json(versioned_repo, "show", CLASSIFIER)
    assert shown["template_hash"] == hashes[CLASSIFIER]["template_hash"]
    line = ok(versioned_repo, "hash", CLASSIFIER).stdout.strip()
    assert line == f"{shown['template_hash_short']}  {shown['template_hash']}  {CLASSIFIER}"


def test_repo_option_runs_elsewhere(versioned_repo, tmp_path):
    assert [e["id"] for e in as_json(tmp_path, "list", "--repo", str(versioned_repo))][0] == CLASSIFIER


def test_no_arguments_prints_help(tmp_path):
    proc = ok(tmp_path)
    assert "Usage: promptctl" in proc.stdout and "commit" in proc.stdout


def test_list_and_log_fast_path_prints_what_typer_prints(versioned_repo):
    from promptctl.cli.fastpath import parse

    assert parse(["log", "x", "--json", "-C", "dir"]) == ("log", {"prompt_id": "x", "json_out": True, "repo": "dir"})
    assert parse(["list", "--repo=dir"]) == ("list", {"json_out": False, "repo": "dir"})
    for other in (["list", "--help"], ["log"], ["log", "a", "b"], ["list", "x"], ["log", "-x"], ["show", "x"], []):
        assert parse(other) is None
    for args in (("list", "--json"), ("list",), ("log", CLASSIFIER, "--json"), ("log", CLASSIFIER)):
        fast = ok(versioned_repo, *args)
        slow = ok(versioned_repo, *args, env={"PROMPTCTL_NO_FASTPATH": "1"})
        assert (fast.stdout, fast.stderr) == (slow.stdout, slow.stderr)
    fast = run_cli(versioned_repo, "log", "nope")
    slow = run_cli(versioned_repo, "log", "nope", env={"PROMPTCTL_NO_FASTPATH": "1"})
    assert (fast.returncode, fast.stderr) == (slow.returncode, slow.stderr) == (3, "promptctl: error: unknown prompt 'nope'\n")


def test_no_color_on_a_terminal_prints_no_escape_codes(versioned_repo):
    """NO_COLOR=1 keeps a table free of ANSI styles even when stdout is a terminal (pty)."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "promptctl.cli.main", "list"],
        cwd=versioned_repo,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    out = b"".join(chunks).decode()
    assert proc.returncode == 0, proc.stderr
    assert "support_intent_classifier" in out
    assert "\x1b[" not in out


def test_init_in_a_repository_with_no_commit_says_to_make_one(tmp_path):
    from conftest import init_git_repo

    repo = init_git_repo(tmp_path / "fresh")
    proc = run_cli(repo, "init")
    assert proc.returncode == 0, proc.stderr
    assert "make a first commit" in proc.stdout
    # ... and the advice works: after that commit, versions can be made.
    assert run_cli(repo, "new", "greeter").returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "prompt registry")
    made = run_cli(repo, "commit", "greeter", "-m", "first")
    assert made.returncode == 0, made.stderr


def test_diff_json_names_both_sides_and_each_changed_file(versioned_repo):
    body = versioned_repo / "prompts" / "support_intent_classifier" / "body.j2"
    body.write_text(body.read_text().replace("Intent:", "Label:"))
    assert run_cli(versioned_repo, "commit", "support_intent_classifier", "-m", "v2").returncode == 0
    proc = run_cli(versioned_repo, "diff", "support_intent_classifier", "v1", "v2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["old"]["version"] == "v1" and data["new"]["version"] == "v2"
    assert data["old"]["template_hash"] != data["new"]["template_hash"]
    assert [f["file"] for f in data["files"]] == ["body.j2"] and data["files"][0]["status"] == "modified"
    assert "+Label:" in data["files"][0]["diff"] and data["identical"] is False
    same = json.loads(run_cli(versioned_repo, "diff", "support_intent_classifier", "--json").stdout)
    assert same["identical"] is True and same["new"]["label"] == "working tree"

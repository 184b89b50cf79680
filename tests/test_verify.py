"""promptctl verify: integrity of versions and channels, render checks, output and exit codes (real Git, real CLI)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GIT_IDENTITY, git, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from promptctl import gitstore
from promptctl.channels import state_message
from promptctl.model import Serving

PROMPT = "ticket_summarizer"


def verify_json(repo: Path, *args: str) -> tuple[int, dict]:
    """``promptctl verify --json [args]`` in-process (the CLI's own path is covered by the run_cli tests)."""
    from promptctl.registry import PromptRepo
    from promptctl.verify import verify

    r = PromptRepo.open(repo)
    try:
        report = verify(r, [a for a in args if not a.startswith("--")], all_versions="--all-versions" in args)
    finally:
        r.close()
    data = json.loads(json.dumps(report.to_json()))
    return (0 if report.ok else 1), data


def codes(report: dict) -> set[tuple[str, str | None, str | None]]:
    return {(p["code"], p["prompt"], p["version"]) for p in report["problems"]}


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def tag_message(repo: Path, tag: str) -> str:
    return git(repo, "tag", "-l", "--format=%(contents)", tag)


def retag(repo: Path, tag: str, target: str, message: str) -> None:
    """Delete a tag and make it again by hand (what promptctl never does)."""
    git(repo, "tag", "-d", tag)
    git(repo, "tag", "-a", tag, "-m", message, target)


def edit_and_commit(repo: Path, path: str, text: str, message: str = "edit") -> str:
    (repo / path).write_text(text)
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD").strip()


def commit_version(repo: Path, prompt: str, message: str) -> None:
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        r.commit([prompt], message)
    finally:
        r.close()


# -- a clean registry ------------------------------------------------------------------------------------------


def test_clean_registry_passes_and_changes_nothing(versioned_repo):
    before = refs(versioned_repo)
    text = run_cli(versioned_repo, "verify")
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.strip().splitlines()[-1].startswith("verify: ok (3 prompts, 3 versions")
    assert text.stderr == ""  # no progress bar when stderr is not a terminal
    code, report = verify_json(versioned_repo, "--all-versions")
    assert code == 0
    assert report["ok"] is True and report["problems"] == []
    assert report["checked"]["versions"] == 3 and report["checked"]["prompts"] == 3
    assert report["checked"]["bodies_rendered"] == 12  # 6 working-tree bodies + 6 versioned ones
    assert refs(versioned_repo) == before


def test_other_tags_of_the_application_are_left_alone(versioned_repo):
    git(versioned_repo, "tag", "v1.0")
    git(versioned_repo, "tag", "release/v1")  # "<name>/v<N>" but release is not a prompt
    git(versioned_repo, "tag", "-a", "deploy/v3", "-m", "deployed")
    code, report = verify_json(versioned_repo)
    assert code == 0, report


# -- integrity of versions ----------------------------------------------------------------------------------------


def test_tag_recreated_on_other_content_is_caught_and_named(versioned_repo):
    message = tag_message(versioned_repo, f"{PROMPT}/v1")
    other = edit_and_commit(versioned_repo, f"prompts/{PROMPT}/body.j2", "Summarise {{ thread }} in {{ max_bullets }} bullets.\n")
    retag(versioned_repo, f"{PROMPT}/v1", other, message)
    proc = run_cli(versioned_repo, "verify")
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if "PC001" in x)
    assert line.startswith(f"{PROMPT}/v1:prompts/{PROMPT}: PC001 ")
    assert "re-created or moved onto other content" in line
    code, report = verify_json(versioned_repo)
    assert codes(report) == {("PC001", PROMPT, "v1")}
    assert report["problems"][0]["severity"] == "error" and report["problems"][0]["rule"] == "hash-mismatch"


def test_tag_remade_by_hand_with_a_wrong_hash_is_caught(versioned_repo):
    commit = git(versioned_repo, "rev-parse", f"{PROMPT}/v1^{{commit}}").strip()
    forged = f"release\n\nPromptctl-Prompt: {PROMPT}\nPromptctl-Version: v1\nPromptctl-Template-Hash: {'ab' * 32}\n"
    retag(versioned_repo, f"{PROMPT}/v1", commit, forged)
    _, report = verify_json(versioned_repo)
    assert codes(report) == {("PC001", PROMPT, "v1")}
    assert "abababababab" in report["problems"][0]["message"]


def test_tag_without_the_prompt_directory_is_caught(versioned_repo):
    initial = git(versioned_repo, "rev-list", "--max-parents=0", "HEAD").strip()
    message = tag_message(versioned_repo, f"{PROMPT}/v1")
    retag(versioned_repo, f"{PROMPT}/v1", initial, message)
    _, report = verify_json(versioned_repo)
    assert codes(report) == {("PC004", PROMPT, "v1")}
    assert initial[:12] in report["problems"][0]["message"]


def test_lightweight_tag_in_the_version_namespace_is_caught(versioned_repo):
    git(versioned_repo, "tag", f"{PROMPT}/v2")
    proc = run_cli(versioned_repo, "verify")
    assert proc.returncode == 1
    assert f"{PROMPT}/v2: PC003 a lightweight tag" in proc.stdout


def test_missing_hash_trailer_gap_and_copied_tag_are_caught(versioned_repo):
    # v2 made by hand without trailers, v4 copied from v1's tag object: v3 is missing.
    git(versioned_repo, "tag", "-a", f"{PROMPT}/v2", "-m", "hand made")
    v1_object = git(versioned_repo, "rev-parse", f"{PROMPT}/v1").strip()
    git(versioned_repo, "update-ref", f"refs/tags/{PROMPT}/v4", v1_object)
    _, report = verify_json(versioned_repo)
    found = codes(report)
    assert ("PC002", PROMPT, "v2") in found
    assert ("PC006", PROMPT, "v3") in found
    assert ("PC005", PROMPT, "v4") in found
    messages = {p["code"]: p["message"] for p in report["problems"]}
    assert f"named '{PROMPT}/v1'" in messages["PC005"]


def test_version_that_no_longer_loads_is_reported_with_its_file_and_line(versioned_repo):
    message = tag_message(versioned_repo, f"{PROMPT}/v1")
    broken = edit_and_commit(versioned_repo, f"prompts/{PROMPT}/prompt.yaml", "description: [unclosed\nowner: x\n")
    retag(versioned_repo, f"{PROMPT}/v1", broken, message)
    _, report = verify_json(versioned_repo)
    problem = next(p for p in report["problems"] if p["code"] == "PC007")
    assert (problem["prompt"], problem["version"], problem["file"]) == (PROMPT, "v1", f"prompts/{PROMPT}/prompt.yaml")
    assert problem["line"] is not None and "YAML syntax error" in problem["message"]


# -- channels ---------------------------------------------------------------------------------------------------


def promote(repo: Path, version: str, channel: str = "current", reason: str = "") -> None:
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        assert ChannelStore(r).promote(PROMPT, version, channel=channel, reason=reason) is not None
    finally:
        r.close()


@pytest.fixture
def promoted_repo(versioned_repo):
    """ticket_summarizer at v1 and v2; current moved v1 -> v2; production at v1."""
    edit_and_commit(versioned_repo, f"prompts/{PROMPT}/body.j2", "Summarise: {{ thread }} ({{ max_bullets }} bullets)\n")
    commit_version(versioned_repo, PROMPT, "second")
    promote(versioned_repo, "v1")
    promote(versioned_repo, "v2")
    promote(versioned_repo, "v1", "production", "first release")
    code, report = verify_json(versioned_repo)
    assert code == 0 and report["checked"]["channels"] == 2, report
    return versioned_repo


def forge_version(repo: Path, number: int, body: str) -> None:
    """Re-create <PROMPT>/v<number> on other content with a self-consistent hash (a careful forger)."""
    other = edit_and_commit(repo, f"prompts/{PROMPT}/body.j2", body)
    from promptctl.registry import PromptRepo

    hashed = PromptRepo.open(repo).working_definition(PROMPT).template_hash
    message = f"forged\n\nPromptctl-Prompt: {PROMPT}\nPromptctl-Version: v{number}\nPromptctl-Template-Hash: {hashed}\n"
    retag(repo, f"{PROMPT}/v{number}", other, message)


def test_recreated_tag_with_a_consistent_hash_is_caught_by_the_channels(promoted_repo):
    forge_version(promoted_repo, 1, "Forged {{ thread }} {{ max_bullets }}\n")
    _, report = verify_json(promoted_repo)
    found = {(p["code"], p["channel"], p["version"]) for p in report["problems"]}
    # production serves v1 now (PC021); current served v1 before it moved to v2 (PC009).
    assert ("PC021", "production", None) in found
    assert ("PC009", None, "v1") in found
    assert not any(p["code"] == "PC001" for p in report["problems"])  # the forged tag itself is consistent


def test_channel_serving_a_missing_version_and_a_broken_chain_are_caught(promoted_repo):
    ref = f"refs/promptctl/channels/{PROMPT}/current"
    head = git(promoted_repo, "rev-parse", ref).strip()
    # A hand-made move to v9 that claims to start from v1 although the channel served v2.
    message = state_message("promote", PROMPT, "current", (Serving("v1", 100),), (Serving("v9", 100, "cd" * 32),))
    forged = gitstore.commit_empty_tree(promoted_repo, [head], message, sign=False)
    git(promoted_repo, "update-ref", ref, forged, head)
    _, report = verify_json(promoted_repo)
    found = {(p["code"], p["channel"]) for p in report["problems"]}
    assert ("PC020", "current") in found
    assert ("PC022", "current") in found
    chain = next(p for p in report["problems"] if p["code"] == "PC022")
    assert "starts from v1 but the channel served v2" in chain["message"]


def test_channel_ref_that_is_not_a_state_commit_is_caught(promoted_repo):
    git(promoted_repo, "update-ref", f"refs/promptctl/channels/{PROMPT}/staging", "HEAD")
    blob = gitstore.hash_object(promoted_repo, "blob", b"x")
    git(promoted_repo, "update-ref", f"refs/promptctl/channels/{PROMPT}/canary", blob)
    git(promoted_repo, "update-ref", "refs/promptctl/channels/Not_An_Id", "HEAD")
    proc = run_cli(promoted_repo, "verify")
    assert proc.returncode == 1
    assert f"{PROMPT}@staging: PC022 the channel ref points at commit" in proc.stdout
    assert f"{PROMPT}@canary: PC024" in proc.stdout
    assert "PC024 refs/promptctl/channels/Not_An_Id is not a channel ref" in proc.stdout


def test_state_copied_from_another_channel_is_caught(promoted_repo):
    production = git(promoted_repo, "rev-parse", f"refs/promptctl/channels/{PROMPT}/production").strip()
    git(promoted_repo, "update-ref", f"refs/promptctl/channels/{PROMPT}/staging", production)
    _, report = verify_json(promoted_repo)
    assert any(
        p["code"] == "PC022" and p["channel"] == "staging" and f"records {PROMPT}@production" in p["message"]
        for p in report["problems"]
    )


def test_unsigned_moves_fail_where_the_config_requires_signatures(promoted_repo):
    config = promoted_repo / "promptctl.yaml"
    config.write_text(config.read_text().replace("require_signed: []", "require_signed: [production]"))
    proc = run_cli(promoted_repo, "verify")
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if "PC023" in x)
    assert line.startswith(f"{PROMPT}@production: PC023 move ")
    assert "is not signed; channels.require_signed lists this channel" in line
    assert "@current" not in proc.stdout  # only the channels the config names


def ssh_signing(repo: Path, keys: Path, trusted: bool = True) -> None:
    keys.mkdir(exist_ok=True)
    key = keys / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", str(key)], check=True)
    allowed = keys / "allowed_signers"
    allowed.write_text(f'author@example.com namespaces="git" {key.with_suffix(".pub").read_text().strip()}\n' if trusted else "")
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", str(key)), ("gpg.ssh.allowedSignersFile", str(allowed))):
        git(repo, "config", name, value)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
def test_signed_moves_and_signed_tags_pass_and_untrusted_keys_fail(versioned_repo, tmp_path):
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    ssh_signing(versioned_repo, tmp_path / "keys")
    config = versioned_repo / "promptctl.yaml"
    config.write_text(config.read_text().replace("require_signed: []", "require_signed: [production]"))
    ChannelStore(PromptRepo.open(versioned_repo)).promote(PROMPT, "v1", channel="production", reason="release")
    # The same tag, re-made signed (same commit, same message): %(contents) now ends in a signature.
    commit = git(versioned_repo, "rev-parse", f"{PROMPT}/v1^{{commit}}").strip()
    message = tag_message(versioned_repo, f"{PROMPT}/v1")
    git(versioned_repo, "tag", "-d", f"{PROMPT}/v1")
    git(versioned_repo, "tag", "-s", f"{PROMPT}/v1", "-m", message, commit)
    code, report = verify_json(versioned_repo)
    assert code == 0, report
    (tmp_path / "keys" / "allowed_signers").write_text("")  # nobody is trusted any more
    code, report = verify_json(versioned_repo)
    assert [(p["code"], p["channel"]) for p in report["problems"]] == [("PC023", "production")]
    assert "has a signature that does not pass (untrusted-key" in report["problems"][0]["message"]


# -- render checks ------------------------------------------------------------------------------------------------


def test_undeclared_variable_is_an_error_with_file_and_line(versioned_repo):
    (versioned_repo / f"prompts/{PROMPT}/body.j2").write_text("Summarise.\n\n{{ thread }} for {{ customer_tier }}\n{{ max_bullets }}\n")
    proc = run_cli(versioned_repo, "verify", PROMPT)
    assert proc.returncode == 1
    assert f"prompts/{PROMPT}/body.j2:3: PC102 variable 'customer_tier' is used but not declared" in proc.stdout


def test_undeclared_variable_in_a_partial_is_reported_in_the_partial(versioned_repo):
    (versioned_repo / "prompts/_partials/tone.j2").write_text("Be kind.\nSign as {{ agent_name }}.\n")
    _, report = verify_json(versioned_repo)
    found = {(p["prompt"], p["file"], p["line"]) for p in report["problems"] if p["code"] == "PC102"}
    assert (PROMPT, "prompts/_partials/tone.j2", 2) in found
    assert ("support_reply", "prompts/_partials/tone.j2", 2) in found


def test_loop_variables_and_sets_are_not_undeclared(versioned_repo):
    (versioned_repo / "prompts/_partials/item.j2").write_text("- {{ item }} ({{ label }})\n")
    (versioned_repo / f"prompts/{PROMPT}/body.j2").write_text(
        '{% set label = "x" %}{% for item in thread.split() %}{% include "_partials/item.j2" %}{% endfor %}'
        "{{ max_bullets }} {{ range(3) | list }}\n"
    )
    code, report = verify_json(versioned_repo, PROMPT)
    assert code == 0, report


@pytest.mark.parametrize(
    ("body", "code", "line", "words"),
    [
        ("Hello {{ thread }\n{{ max_bullets }}\n", "PC031", 1, "template syntax error"),
        ("{{ thread }}\n{{ max_bullets }}\n{% for %}\n", "PC031", 3, "template syntax error"),
        ('{% include "_partials/nope.j2" %}{{ thread }}{{ max_bullets }}\n', "PC032", None, "does not exist"),
        ('{% include "../../etc/passwd" %}{{ thread }}{{ max_bullets }}\n', "PC033", None, "outside the registry"),
        ("{{ thread.nope }} {{ max_bullets }}\n", "PC034", None, "has no attribute 'nope'"),
        ("{{ thread }} {{ max_bullets + 'x' }}\n", "PC034", None, "TypeError"),
    ],
)
def test_bodies_that_do_not_parse_resolve_or_render(versioned_repo, body, code, line, words):
    (versioned_repo / f"prompts/{PROMPT}/body.j2").write_text(body)
    rc, report = verify_json(versioned_repo, PROMPT)
    assert rc == 1
    problem = next(p for p in report["problems"] if p["code"] == code)
    assert problem["file"] == f"prompts/{PROMPT}/body.j2" and problem["version"] is None
    assert problem["line"] == line
    assert words in problem["message"]


def test_metadata_errors_are_located(versioned_repo):
    (versioned_repo / f"prompts/{PROMPT}/prompt.yaml").write_text("description: x\ninputs:\n  thread: {type: string\n")
    (versioned_repo / "prompts/support_reply/body.j2").write_bytes(b"caf\xe9 {{ message }}\n")
    _, report = verify_json(versioned_repo)
    by_code = {p["code"]: p for p in report["problems"]}
    assert by_code["PC030"]["file"] == f"prompts/{PROMPT}/prompt.yaml" and by_code["PC030"]["line"] == 4
    assert by_code["PC035"]["file"] == "prompts/support_reply/body.j2"


def test_registry_entries_that_are_not_prompts_and_unparsable_partials(versioned_repo):
    (versioned_repo / "prompts/Bad Name").mkdir()
    (versioned_repo / "prompts/orphan").mkdir()
    (versioned_repo / "prompts/orphan/body.j2").write_text("hi\n")
    (versioned_repo / "prompts/_partials/broken.j2").write_text("ok\n{% for x in %}\n")
    _, report = verify_json(versioned_repo)
    found = {(p["code"], p["file"], p["line"]) for p in report["problems"]}
    assert ("PC036", "prompts/Bad Name", None) in found
    assert ("PC036", "prompts/orphan", None) in found
    assert ("PC031", "prompts/_partials/broken.j2", 2) in found


def test_chat_prompt_examples_render_per_message(versioned_repo):
    body = versioned_repo / "prompts/support_reply/body.j2"
    body.write_text(body.read_text() + "\nassistant:\n{{ order_facts[3] }}\n")
    _, report = verify_json(versioned_repo, "support_reply")
    assert [p["code"] for p in report["problems"]] == ["PC034"]
    assert "order_facts" not in report["problems"][0]["message"] or "undefined" in report["problems"][0]["message"]


def test_all_versions_render_checks_every_version(versioned_repo):
    body = versioned_repo / f"prompts/{PROMPT}/body.j2"
    good = body.read_text()
    body.write_text("{{ thread.nope }} {{ max_bullets }}\n")  # parses, so commit accepts it; does not render
    commit_version(versioned_repo, PROMPT, "oops")
    body.write_text(good)
    commit_version(versioned_repo, PROMPT, "fixed")
    code, _ = verify_json(versioned_repo)
    assert code == 0  # the working tree and every hash are fine
    code, report = verify_json(versioned_repo, "--all-versions")
    assert code == 1
    assert codes(report) == {("PC034", PROMPT, "v2")}
    assert report["problems"][0]["file"] == f"prompts/{PROMPT}/body.j2"
    proc = run_cli(versioned_repo, "verify", "--all-versions")
    assert f"{PROMPT}/v2:prompts/{PROMPT}/body.j2: PC034 does not render" in proc.stdout


def test_shared_shape_still_reports_each_versions_own_line(versioned_repo):
    """Versions whose templates differ only in wording share one memoised verdict, not one line number."""
    body = versioned_repo / f"prompts/{PROMPT}/body.j2"
    body.write_text("{{ thread }} {{ max_bullets }} {{ extra }}\n")
    commit_version(versioned_repo, PROMPT, "one line")
    body.write_text("Intro line.\nSecond line.\n{{ thread }} {{ max_bullets }} {{ extra }}\n")
    commit_version(versioned_repo, PROMPT, "three lines")
    _, report = verify_json(versioned_repo, "--all-versions", PROMPT)
    lines = {(p["version"], p["line"]) for p in report["problems"] if p["code"] == "PC102"}
    assert lines == {("v2", 1), ("v3", 3), (None, 3)}


# -- scope, usage errors, progress ------------------------------------------------------------------------------


def test_scope_to_named_prompts(versioned_repo):
    (versioned_repo / "prompts/support_reply/body.j2").write_text("{{ nope }}\n")
    code, report = verify_json(versioned_repo, PROMPT)
    assert code == 0 and report["checked"]["prompts"] == 1 and report["checked"]["versions"] == 1
    code, report = verify_json(versioned_repo, "support_reply", PROMPT)
    assert code == 1 and {p["prompt"] for p in report["problems"]} == {"support_reply"}


@pytest.mark.parametrize(
    ("args", "exit_code", "words"),
    [
        (["no_such_prompt"], 3, "unknown prompt 'no_such_prompt'"),
        (["Bad Id"], 2, "invalid prompt id"),
        (["--no-such-option"], 2, "No such option"),
    ],
)
def test_usage_errors(versioned_repo, args, exit_code, words):
    before = refs(versioned_repo)
    proc = run_cli(versioned_repo, "verify", *args)
    assert proc.returncode == exit_code
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert refs(versioned_repo) == before


def test_outside_a_repository(tmp_path):
    proc = run_cli(tmp_path, "verify")
    assert proc.returncode == 3
    assert proc.stderr.startswith("promptctl: error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_progress_bar_goes_to_a_terminal_on_stderr_only(versioned_repo):
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "promptctl.cli.main", "verify", "--json", "--progress"],
            cwd=versioned_repo,
            stdout=subprocess.PIPE,
            stderr=secondary,
            env={**os.environ, **GIT_IDENTITY, "TERM": "xterm"},
            timeout=60,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(main)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["ok"] is True  # stdout stays clean JSON
    assert b"working tree" in shown or b"versions" in shown


# -- status --check (owned by the registry commands; CI on main relies on it) ---------------------------------------


def test_status_check_fails_when_a_prompt_changed_since_its_version(versioned_repo):
    assert run_cli(versioned_repo, "status", "--check").returncode == 0
    body = versioned_repo / f"prompts/{PROMPT}/body.j2"
    body.write_text(body.read_text() + "One more line.\n")
    proc = run_cli(versioned_repo, "status", "--check")
    assert proc.returncode == 1
    assert PROMPT in proc.stdout and "modified" in proc.stdout
    commit_version(versioned_repo, PROMPT, "more")
    assert run_cli(versioned_repo, "status", "--check").returncode == 0
    (versioned_repo / "prompts/fresh_prompt").mkdir()
    (versioned_repo / "prompts/fresh_prompt/prompt.yaml").write_text("description: new\n")
    (versioned_repo / "prompts/fresh_prompt/body.j2").write_text("hello\n")
    proc = run_cli(versioned_repo, "status", "--check", "--json")
    assert proc.returncode == 1
    assert {s["id"]: s["state"] for s in json.loads(proc.stdout)}["fresh_prompt"] == "new"


# -- the memo behind the speed: exact, never approximate -----------------------------------------------------------

FRAGMENTS = st.sampled_from(
    ["{{", "}}", "{%", "%}", "{#", "#}", "'", '"', "\\", "{", "}", "(", ")", "[", "]", " x ", " if ", " endif ",
     " include ", '"_p/a.j2"', "'b'", "-", " for i in y ", " endfor ", " set z = ", "|upper", ",", " raw ",
     " endraw ", "{'a': {'b': 1}}", " y.z ", "1", "{{ x }}", "{% if y %}", "{% endif %}", '{% include "p.j2" %}']
)
TEXTS = st.sampled_from(["", "", "words", "\n", "two\nlines ", "}", "{", "it's", '"', "#", "%", "-"])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_templates_with_the_same_shape_parse_alike(data):
    """Rewording (other text between the tags) never changes whether a template parses, what it includes or
    which variables it uses: the exactness the shape memo of verify and load_prompt relies on."""
    import jinja2
    from jinja2 import meta
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from promptctl.promptfile import template_shape

    env = ImmutableSandboxedEnvironment()

    def outcome(source):
        try:
            ast = env.parse(source)
        except jinja2.TemplateSyntaxError:
            return "error"
        return (tuple(meta.find_referenced_templates(ast)), frozenset(meta.find_undeclared_variables(ast)))

    tags = data.draw(st.lists(FRAGMENTS, min_size=1, max_size=10))
    first = data.draw(st.lists(TEXTS, min_size=len(tags) + 1, max_size=len(tags) + 1))
    second = data.draw(st.lists(TEXTS, min_size=len(tags) + 1, max_size=len(tags) + 1))

    def build(texts):
        return "".join(text + tag for text, tag in zip(texts, tags, strict=False)) + texts[-1]

    one, two = build(first), build(second)
    shape = template_shape(one)
    if shape is not None and template_shape(two) == shape:
        assert outcome(one) == outcome(two), (one, two)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "a", "1", "true", "null", "key two", "<<", "~"]),
            st.sampled_from([" 1", " x", " [1, 2]", " {p: 1}", "", " |\n  line\n  two", "\n  - 1\n  - 2",
                             "\n  k: v\n  k2: [a,\n    b]", " 'it''s'", " x # c", " yes", " 0x1f", " !!str 5",
                             " {a: 1,\n  b: 2}", " [a,\nb]", ' "multi\n  line"', " plain\ncontinued", " a: b", " *x", " &x 1"]),
            st.sampled_from(["", "# comment\n", "\n"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_metadata_parsed_by_sections_equals_the_whole_document(entries):
    import yaml

    from promptctl.promptfile import _load_by_sections

    text = "".join(f"{extra}{key}:{value}\n" for key, value, extra in entries)
    got = _load_by_sections(text)
    if got is None:
        return  # the whole document is parsed instead
    assert repr(got) == repr(yaml.safe_load(text))


JSON_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(JSON_TEXT, JSON_TEXT, max_size=4),
    st.dictionaries(st.sampled_from(["type", "model", "inputs", "owner"]), st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | JSON_TEXT,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(JSON_TEXT, children, max_size=3),
        max_leaves=8,
    )),
)
def test_canonical_document_assembled_from_parts_is_the_documented_json(files, meta):
    """The hash recipe of docs/design.md is json.dumps of the whole document; the fast path must match it."""
    from promptctl.hashing import HASH_FORMAT, canonical_document

    doc = {
        "format": HASH_FORMAT,
        "meta": {"type": meta.get("type", "text"), "model": meta.get("model") or {}, "inputs": meta.get("inputs") or {}},
        "files": files,
    }
    expected = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    assert canonical_document(meta, files) == expected


def test_loading_in_parallel_chunks_finds_the_same_problems(versioned_repo, monkeypatch):
    import promptctl.verify as verify_module

    for number in (2, 3, 4):
        edit_and_commit(versioned_repo, f"prompts/{PROMPT}/body.j2", f"Revision {number}: {{{{ thread }}}} {{{{ max_bullets }}}}\n")
        commit_version(versioned_repo, PROMPT, f"revision {number}")
    message = tag_message(versioned_repo, f"{PROMPT}/v2")
    retag(versioned_repo, f"{PROMPT}/v2", f"{PROMPT}/v3^{{commit}}", message)
    _, whole = verify_json(versioned_repo, "--all-versions")
    monkeypatch.setattr(verify_module, "CHUNK", 1)  # 6 chunks, two loader threads
    _, chunked = verify_json(versioned_repo, "--all-versions")
    assert chunked == whole
    assert codes(whole) == {("PC001", PROMPT, "v2")}

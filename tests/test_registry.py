"""PromptRepo on real Git repositories: versions as tags, commits that touch nothing else, hash stability."""

import os
import shutil
from pathlib import Path

import pytest
from conftest import git, init_git_repo

from promptctl.errors import (
    BadHead,
    Conflict,
    IncludeOutsideRegistry,
    InvalidContent,
    NoRegistry,
    NotAGitRepository,
    NothingChanged,
    UnknownPrompt,
    UnknownVersion,
)
from promptctl.registry import PromptRepo

CLASSIFIER = "support_intent_classifier"


def open_repo(path: Path) -> PromptRepo:
    return PromptRepo.open(path)


def refs(path: Path) -> dict[str, str]:
    out = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines())


def edit(path: Path, text: str = "\nOne more line.\n") -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_commit_tags_versions_one_two_three_per_prompt(example_repo):
    repo = open_repo(example_repo)
    first = repo.commit([CLASSIFIER, "support_reply"], "first release")
    assert [v.tag for v in first] == [f"{CLASSIFIER}/v1", "support_reply/v1"]
    assert first[0].commit == first[1].commit == git(example_repo, "rev-parse", "HEAD").strip()
    body = example_repo / "prompts" / CLASSIFIER / "body.j2"
    for expected in (2, 3):
        edit(body, f"\nrevision {expected}\n")
        (made,) = repo.commit([CLASSIFIER], f"revision {expected}")
        assert made.number == expected and made.version == f"v{expected}"
    edit(example_repo / "prompts" / "support_reply" / "body.j2")
    (reply,) = repo.commit(["support_reply"], "reply v2")
    assert reply.tag == "support_reply/v2"
    assert [v.number for v in repo.versions(CLASSIFIER)] == [1, 2, 3]
    assert [v.number for v in repo.versions("support_reply")] == [1, 2]
    latest = repo.resolve(CLASSIFIER)
    assert latest.number == 3 and latest.message == "revision 3"
    assert repo.resolve(f"{CLASSIFIER}@v1").message == "first release"


def test_versions_returned_by_commit_equal_what_git_reads_back(versioned_repo):
    repo = open_repo(versioned_repo)
    edit(versioned_repo / "prompts" / CLASSIFIER / "body.j2")
    edit(versioned_repo / "prompts" / "support_reply" / "body.j2")
    made = repo.commit([CLASSIFIER, "support_reply"], "two at once\n\nwith a body")
    assert made == [repo.resolve(f"{CLASSIFIER}@v2"), repo.resolve("support_reply@v2")]
    assert made[0].message == "two at once\n\nwith a body"
    latest = repo.latest_versions()
    assert latest[CLASSIFIER] == made[0] and latest["ticket_summarizer"].number == 1
    assert repo.version_refs([CLASSIFIER]) == {CLASSIFIER: [(1, repo.resolve(f"{CLASSIFIER}@v1").tag_oid), (2, made[0].tag_oid)]}


def test_tag_message_carries_the_documented_trailers(versioned_repo):
    repo = open_repo(versioned_repo)
    version = repo.resolve(CLASSIFIER)
    raw = git(versioned_repo, "cat-file", "tag", f"{CLASSIFIER}/v1")
    assert f"tag {CLASSIFIER}/v1\n" in raw
    assert raw.endswith(
        f"first release\n\nPromptctl-Prompt: {CLASSIFIER}\nPromptctl-Version: v1\n"
        f"Promptctl-Template-Hash: {version.template_hash}\n"
    )
    assert version.template_hash == repo.working_definition(CLASSIFIER).template_hash
    assert version.author == "Test Author <author@example.com>"
    assert version.created_at[4] == "-" and version.created_at[10] == "T"


def test_version_loaded_from_git_has_the_tagged_hash(versioned_repo):
    repo = open_repo(versioned_repo)
    versions = repo.versions()
    definitions = repo.version_definitions(versions)
    assert [d.template_hash for d in definitions] == [v.template_hash for v in versions]
    assert "_partials/intents.j2" in definitions[0].partials


def test_nothing_changed_is_refused_and_changes_nothing(versioned_repo):
    before = refs(versioned_repo)
    with pytest.raises(NothingChanged) as info:
        open_repo(versioned_repo).commit([CLASSIFIER], "again")
    assert f"{CLASSIFIER}/v1" in str(info.value)
    assert refs(versioned_repo) == before


def test_description_only_change_is_nothing_changed(versioned_repo):
    meta = versioned_repo / "prompts" / CLASSIFIER / "prompt.yaml"
    meta.write_text(meta.read_text().replace("Classify a customer", "Sort a customer"))
    with pytest.raises(NothingChanged):
        open_repo(versioned_repo).commit([CLASSIFIER], "docs")


def test_commit_leaves_unrelated_work_untouched(versioned_repo):
    root = versioned_repo
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('v1')\n")
    git(root, "add", "src/app.py")
    git(root, "commit", "-q", "-m", "app")
    # staged, unstaged and untracked work elsewhere, and in another prompt
    (root / "README.md").write_text("staged readme change\n")
    git(root, "add", "README.md")
    (root / "src" / "app.py").write_text("print('unstaged')\n")
    (root / "notes.txt").write_text("untracked\n")
    edit(root / "prompts" / "support_reply" / "body.j2", "\nstaged reply change\n")
    git(root, "add", "prompts/support_reply/body.j2")
    edit(root / "prompts" / "support_reply" / "body.j2", "\nand an unstaged one on top\n")
    edit(root / "prompts" / "ticket_summarizer" / "body.j2", "\nunstaged summarizer change\n")
    staged_before = git(root, "diff", "--cached")
    unstaged_before = git(root, "diff")
    # the change we version
    edit(root / "prompts" / CLASSIFIER / "body.j2", "\nnew rule\n")
    head_before = git(root, "rev-parse", "HEAD").strip()

    (made,) = open_repo(root).commit([CLASSIFIER], "new rule")

    assert git(root, "rev-parse", "HEAD").strip() == made.commit
    assert git(root, "rev-parse", "HEAD~1").strip() == head_before
    changed = git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD").split()
    assert changed == [f"prompts/{CLASSIFIER}/body.j2"]
    assert git(root, "diff", "--cached") == staged_before
    assert git(root, "diff") == unstaged_before
    status = git(root, "status", "--porcelain")
    assert "?? notes.txt" in status and f"prompts/{CLASSIFIER}" not in status
    assert (root / "notes.txt").read_text() == "untracked\n"
    assert "unstaged" in (root / "src" / "app.py").read_text()


def test_staged_state_of_the_committed_prompt_is_cleared(versioned_repo):
    body = versioned_repo / "prompts" / CLASSIFIER / "body.j2"
    edit(body, "\nfirst edit\n")
    git(versioned_repo, "add", str(body))
    edit(body, "\nsecond edit\n")
    (made,) = open_repo(versioned_repo).commit([CLASSIFIER], "both edits")
    assert "second edit" in git(versioned_repo, "show", f"{made.commit}:prompts/{CLASSIFIER}/body.j2")
    assert git(versioned_repo, "status", "--porcelain") == ""


def test_existing_tags_never_move(versioned_repo):
    before = {ref: oid for ref, oid in refs(versioned_repo).items() if ref.startswith("refs/tags/")}
    repo = open_repo(versioned_repo)
    for round_ in range(2):
        edit(versioned_repo / "prompts" / "_partials" / "intents.j2", f"\nround {round_}\n")
        edit(versioned_repo / "prompts" / "ticket_summarizer" / "body.j2", f"\nround {round_}\n")
        repo.commit([CLASSIFIER, "ticket_summarizer"], f"round {round_}")
    after = refs(versioned_repo)
    for ref, oid in before.items():
        assert after[ref] == oid
    assert f"refs/tags/{CLASSIFIER}/v3" in after and "refs/tags/support_reply/v2" not in after


def test_a_conflicting_tag_fails_the_whole_commit_atomically(versioned_repo):
    # Someone made a lightweight tag with the name our next version needs: nothing may land, not even the commit.
    git(versioned_repo, "tag", f"{CLASSIFIER}/v2")
    edit(versioned_repo / "prompts" / CLASSIFIER / "body.j2")
    edit(versioned_repo / "prompts" / "ticket_summarizer" / "body.j2")
    before = refs(versioned_repo)
    with pytest.raises(Conflict):
        open_repo(versioned_repo).commit(["ticket_summarizer", CLASSIFIER], "clash")
    assert refs(versioned_repo) == before


def test_first_commit_brings_the_registry_config_along(git_repo):
    PromptRepo.init(git_repo)
    repo = open_repo(git_repo)
    from promptctl.scaffold import scaffold_prompt

    scaffold_prompt(repo, "hello")
    (made,) = repo.commit(["hello"], "first")
    tracked = git(git_repo, "ls-tree", "-r", "--name-only", made.commit).split()
    assert "promptctl.yaml" in tracked and "prompts/hello/prompt.yaml" in tracked and "prompts/hello/body.j2" in tracked
    clone = git_repo.parent / "clone"
    git(git_repo.parent, "clone", "-q", str(git_repo), str(clone))
    assert open_repo(clone).resolve("hello").template_hash == made.template_hash


def test_commit_tags_head_when_the_user_already_committed_the_files(versioned_repo):
    edit(versioned_repo / "prompts" / CLASSIFIER / "body.j2")
    git(versioned_repo, "commit", "-q", "-am", "edited by hand")
    head = git(versioned_repo, "rev-parse", "HEAD").strip()
    (made,) = open_repo(versioned_repo).commit([CLASSIFIER], "v2")
    assert made.commit == head == git(versioned_repo, "rev-parse", "HEAD").strip()


def test_shared_partial_commit_reports_the_other_users(versioned_repo):
    edit(versioned_repo / "prompts" / "_partials" / "tone.j2", "Never use jargon.\n")
    repo = open_repo(versioned_repo)
    assert {s.prompt_id: s.state for s in repo.status()} == {
        CLASSIFIER: "unchanged",
        "support_reply": "modified",
        "ticket_summarizer": "modified",
    }
    result = repo.commit_prompts(["support_reply"], "tone")
    assert result.changed_partials == ["_partials/tone.j2"]
    assert repo.prompts_including(result.changed_partials, exclude=["support_reply"]) == ["ticket_summarizer"]
    # the other prompt's released version is untouched; its working state now differs from it
    states = {s.prompt_id: s.state for s in repo.status()}
    assert states == {CLASSIFIER: "unchanged", "support_reply": "unchanged", "ticket_summarizer": "modified"}
    v1 = repo.resolve("ticket_summarizer@v1")
    assert "jargon" not in repo.version_definition(v1).partials["_partials/tone.j2"]
    (made,) = repo.commit(["ticket_summarizer"], "pick up tone")
    assert made.number == 2 and "jargon" in repo.version_definition(made).partials["_partials/tone.j2"]


def test_commit_all_with_a_shared_partial_commits_it_once(versioned_repo):
    edit(versioned_repo / "prompts" / "_partials" / "tone.j2", "Never use jargon.\n")
    made = open_repo(versioned_repo).commit(["support_reply", "ticket_summarizer"], "tone for both")
    assert [v.tag for v in made] == ["support_reply/v2", "ticket_summarizer/v2"]
    assert made[0].commit == made[1].commit
    assert git(versioned_repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD").split() == ["prompts/_partials/tone.j2"]


def test_detached_head_and_unborn_branch_are_refused(versioned_repo, tmp_path):
    edit(versioned_repo / "prompts" / CLASSIFIER / "body.j2")
    git(versioned_repo, "checkout", "-q", "--detach")
    before = refs(versioned_repo)
    with pytest.raises(BadHead, match="detached"):
        open_repo(versioned_repo).commit([CLASSIFIER], "x")
    assert refs(versioned_repo) == before

    unborn = init_git_repo(tmp_path / "unborn")
    PromptRepo.init(unborn)
    from promptctl.scaffold import scaffold_prompt

    scaffold_prompt(open_repo(unborn), "hello")
    with pytest.raises(BadHead, match="no commits yet"):
        open_repo(unborn).commit(["hello"], "x")
    assert refs(unborn) == {}


def test_two_clones_and_line_endings_give_the_same_hash(versioned_repo, tmp_path):
    expected = {v.prompt_id: v.template_hash for v in open_repo(versioned_repo).versions()}
    plain = tmp_path / "plain"
    crlf = tmp_path / "crlf"
    git(tmp_path, "clone", "-q", str(versioned_repo), str(plain))
    git(tmp_path, "clone", "-q", "-c", "core.autocrlf=true", str(versioned_repo), str(crlf))
    assert b"\r\n" in (crlf / "prompts" / CLASSIFIER / "body.j2").read_bytes()
    for clone in (plain, crlf):
        repo = open_repo(clone)
        assert {pid: repo.working_definition(pid).template_hash for pid in repo.prompt_ids()} == expected
        assert {s.state for s in repo.status()} == {"unchanged"}


def test_mtimes_and_trailing_whitespace_do_not_change_the_hash(versioned_repo):
    repo = open_repo(versioned_repo)
    before = repo.working_definition(CLASSIFIER).template_hash
    body = versioned_repo / "prompts" / CLASSIFIER / "body.j2"
    os.utime(body, (1, 1))
    body.write_bytes(body.read_bytes() + b"\n\n   \n")
    meta = versioned_repo / "prompts" / CLASSIFIER / "prompt.yaml"
    meta.write_text("# a comment\n" + meta.read_text())
    assert repo.working_definition(CLASSIFIER).template_hash == before
    with pytest.raises(NothingChanged):
        repo.commit([CLASSIFIER], "whitespace only")


def test_status_reports_invalid_prompts_without_failing(versioned_repo):
    (versioned_repo / "prompts" / "ticket_summarizer" / "prompt.yaml").write_text("model: [\n")
    states = {s.prompt_id: s for s in open_repo(versioned_repo).status()}
    assert states["ticket_summarizer"].state == "invalid"
    assert "prompt.yaml:" in states["ticket_summarizer"].error
    assert states[CLASSIFIER].state == "unchanged"


def test_symlinks_in_the_registry_are_never_followed(versioned_repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    prompts = versioned_repo / "prompts"
    body = prompts / CLASSIFIER / "body.j2"
    body.unlink()
    body.symlink_to(secret)
    repo = open_repo(versioned_repo)
    with pytest.raises(InvalidContent, match="symbolic link"):
        repo.working_definition(CLASSIFIER)
    # a partial that is a symlink to a file outside the registry
    tone = prompts / "_partials" / "tone.j2"
    tone.unlink()
    tone.symlink_to(secret)
    with pytest.raises(IncludeOutsideRegistry):
        repo.working_definition("support_reply")
    # a whole prompt directory that is a symlink
    outside = tmp_path / "outside_prompt"
    shutil.copytree(prompts / "ticket_summarizer", outside)
    (prompts / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidContent, match="symbolic link"):
        repo.working_definition("linked")
    states = {s.prompt_id: s.state for s in repo.status()}
    assert states["linked"] == states[CLASSIFIER] == states["support_reply"] == "invalid"


def test_lookups_and_their_errors(versioned_repo, tmp_path):
    repo = open_repo(versioned_repo)
    with pytest.raises(UnknownPrompt):
        repo.resolve("nope")
    with pytest.raises(UnknownVersion, match="latest is v1"):
        repo.resolve(f"{CLASSIFIER}@v7")
    from promptctl.scaffold import scaffold_prompt

    scaffold_prompt(repo, "draft")
    with pytest.raises(UnknownVersion, match="no versions yet"):
        repo.resolve("draft")
    with pytest.raises(NotAGitRepository):
        PromptRepo.open(tmp_path)
    bare = init_git_repo(tmp_path / "plain")
    with pytest.raises(NoRegistry):
        PromptRepo.open(bare)


def test_init_is_idempotent_and_validates_the_directory(git_repo):
    repo, created = PromptRepo.init(git_repo)
    assert created and (git_repo / "promptctl.yaml").is_file() and (git_repo / "prompts" / "_partials").is_dir()
    _, again = PromptRepo.init(git_repo)
    assert not again
    from promptctl.errors import UsageError

    other = git_repo.parent / "other"
    init_git_repo(other)
    for bad in ("../outside", "/abs", ".git", "a b", "x: y"):
        with pytest.raises(UsageError):
            PromptRepo.init(other, bad)
    assert not (other / "promptctl.yaml").exists()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
def test_a_version_tag_signed_by_hand_keeps_its_hash_and_message(versioned_repo, tmp_path):
    """Teams that sign release tags re-create them with `git tag -s`: every way of listing versions still reads
    the hash trailer (the signature follows the message in the tag object)."""
    import subprocess

    repo = open_repo(versioned_repo)
    before = repo.resolve(f"{CLASSIFIER}@v1")
    key = tmp_path / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", str(key)], check=True)
    git(versioned_repo, "config", "gpg.format", "ssh")
    git(versioned_repo, "config", "user.signingkey", str(key))
    message = tmp_path / "message"
    raw = git(versioned_repo, "cat-file", "tag", f"{CLASSIFIER}/v1")
    message.write_text(raw.split("\n\n", 1)[1])
    git(versioned_repo, "tag", "-f", "-s", "-F", str(message), f"{CLASSIFIER}/v1", before.commit)
    assert "-----BEGIN SSH SIGNATURE-----" in git(versioned_repo, "cat-file", "tag", f"{CLASSIFIER}/v1")

    repo = open_repo(versioned_repo)
    listed = [v for v in repo.versions() if v.prompt_id == CLASSIFIER and v.number == 1][0]
    for version in (listed, repo.resolve(f"{CLASSIFIER}@v1"), repo.versions(CLASSIFIER)[0]):
        assert (version.template_hash, version.message) == (before.template_hash, "first release")
        assert version.tag_oid != before.tag_oid


def test_a_body_file_matched_by_gitignore_is_still_committed_with_its_version(versioned_repo):
    """The tag must hold what its hash says: a hashed file a .gitignore matches goes into the commit anyway;
    an ignored file the hash does not cover (an editor's leftover) stays out."""
    from promptctl.hashing import short_hash
    from promptctl.runtime import Registry
    from promptctl.verify import verify

    (versioned_repo / ".gitignore").write_text("*.locale-it.j2\n*.swp\n")
    git(versioned_repo, "add", ".gitignore")
    git(versioned_repo, "commit", "-q", "-m", "ignore rules")
    folder = versioned_repo / "prompts" / CLASSIFIER
    (folder / "body.locale-it.j2").write_text("Classifica il messaggio: {{ message }}\n")
    (folder / ".body.j2.swp").write_text("editor state")
    repo = open_repo(versioned_repo)
    (made,) = repo.commit([CLASSIFIER], "italian")
    files = git(versioned_repo, "ls-tree", "-r", "--name-only", made.tag).split()
    assert f"prompts/{CLASSIFIER}/body.locale-it.j2" in files
    assert f"prompts/{CLASSIFIER}/.body.j2.swp" not in files
    report = verify(repo, all_versions=True)
    assert report.ok, report.to_json()
    served = Registry(versioned_repo).get(f"{CLASSIFIER}@{made.version}", locale="it")
    assert served.template_hash == short_hash(made.template_hash) and not served.fallback
    assert served.render(message="ciao").startswith("Classifica il messaggio: ciao")

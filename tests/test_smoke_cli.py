"""End-to-end smoke test of the registry workflow through the real CLI."""

import json

from conftest import run_cli


def test_commit_then_show_reports_the_tagged_hash(versioned_repo):
    shown = run_cli(versioned_repo, "show", "support_intent_classifier@v1", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    hashed = run_cli(versioned_repo, "hash", "support_intent_classifier", "--json")
    assert json.loads(hashed.stdout)[0]["template_hash"] == data["template_hash"]
    assert data["tag"] == "support_intent_classifier/v1"

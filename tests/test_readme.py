"""README.md stays true: its schema tables are what `promptctl schema` prints, its exit codes what errors.py defines."""

import json
import re

from conftest import ROOT, run_cli

from promptctl.errors import ExitCode


def test_readme_schema_tables_match_promptctl_schema(tmp_path):
    proc = run_cli(tmp_path, "schema", "--json")
    assert proc.returncode == 0, proc.stderr
    readme = (ROOT / "README.md").read_text()
    for preset, rows in json.loads(proc.stdout).items():
        section = readme.split(f"**`{preset}`**", 1)
        assert len(section) == 2, f"README lacks the {preset} preset table"
        table = section[1].split("\n\n", 2)[1]
        documented = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|", table, re.M)
        assert [(a, t.strip(), w.strip()) for a, t, w in documented] == [
            (r["attribute"], r["type"], r["when"]) for r in rows
        ]


def test_readme_documents_every_exit_code():
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", readme, re.M), f"exit code {int(code)} missing from README"

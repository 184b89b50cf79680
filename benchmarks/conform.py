"""conform on 1,000,000 spans: its time beside DuckDB's raw scan of the same file.

Builds (once, cached under ``benchmarks/.work/conform/``):

* a real registry: the example prompts, ``support_intent_classifier`` released as v1..v5 with ``promptctl``'s
  own commit (real template hashes);
* the drift benchmark's span file (``benchmarks/gen_spans.py``) generated with those hashes: a week of
  production traffic, each version a 10% canary for two hours and then all traffic;
* production's audit log matching that traffic: ``promote`` moves (canary, then full) made by the channel
  store at the generator's timeline (Git author dates);
* a small file of planted findings written by the OpenTelemetry SDK through ``OtlpJsonFileExporter``: stale
  spans (v1 served days after v2 took over) and unregistered ones (v5 with a hash no version has).

Then measures, in one run, best of ``--repeat``:

* raw scan: DuckDB reads the same files and unnests every span (count of spans and of prompt spans), two
  ways: ``read_json`` with its schema auto-detection, and text lines + ``from_json`` with a minimal explicit
  schema; the faster of the two is the baseline (the floor for any analysis that looks at every span);
  reading the lines without parsing them is shown as a reference;
* shared reader: ``promptctl.spans.load_spans`` alone (what drift and conform both pay);
* conform: ``promptctl.provenance.conform.conform`` end to end (reader + registry + audit-log intervals +
  classification + findings), checked against the planted counts.

    python benchmarks/conform.py [--spans 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import gen_spans  # noqa: E402
from _common import best_of  # noqa: E402

WORK = HERE / ".work" / "conform"
PID = "support_intent_classifier"
CHANNEL = "production"
VERSIONS = 5
STALE = 7
UNREGISTERED = 3
IDENT = {
    "GIT_AUTHOR_NAME": "Bench User",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench User",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **IDENT})


def build_repo(repo: Path) -> dict[str, str]:
    """The example registry with PID at v1..v5; returns {version: 12-hex hash}."""
    from promptctl.registry import PromptRepo

    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Bench User"), ("user.email", "bench@example.com"), ("commit.gpgsign", "false"),
                       ("tag.gpgsign", "false")):  # fmt: skip
        _git(repo, "config", key, value)
    shutil.copy(ROOT / "example-prompts" / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(ROOT / "example-prompts" / "prompts", repo / "prompts")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "prompts")
    os.environ.update(IDENT)
    r = PromptRepo.open(repo)
    body = repo / "prompts" / PID / "body.j2"
    for n in range(1, VERSIONS + 1):
        if n > 1:
            body.write_text(body.read_text() + f"\nRevision {n}: be precise.\n")
        r.commit([PID], f"release {n}")
    hashes = {v.version: v.template_hash[:12] for v in r.versions(PID)}
    r.close()
    return hashes


def record_moves(repo: Path, timeline: list[gen_spans.Release]) -> int:
    """Production's audit log as the generated traffic implies it; returns the number of moves."""
    from promptctl.channels import ChannelStore
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    store = ChannelStore(r)
    moves = []
    for k, release in enumerate(timeline):
        if k == 0:
            moves.append((release.released_at, release.version, 100, "first release"))
        else:
            moves.append((release.released_at, release.version, 10, "canary 10%"))
            moves.append((release.full_at, release.version, 100, "canary healthy"))
    saved = {k: os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    try:
        for at, version, percent, reason in moves:
            stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            os.environ["GIT_AUTHOR_DATE"] = os.environ["GIT_COMMITTER_DATE"] = stamp
            store.promote(PID, version, channel=CHANNEL, percent=percent, reason=reason)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    r.close()
    return len(moves)


def plant(path: Path, info: gen_spans.SpanFile) -> None:
    """STALE spans of v1 long after v2 took over, UNREGISTERED spans of the newest version with a foreign hash."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from promptctl.spans.otlp_json import OtlpJsonFileExporter

    if path.exists():
        path.unlink()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-api", "service.instance.id": "pod-old"}))
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(path)))
    tracer = provider.get_tracer("planted")
    v1 = info.template_hashes["v1"]
    newest = info.timeline[-1]
    stale_from = info.timeline[1].full_at + timedelta(hours=6)
    for n in range(STALE):
        at = stale_from + timedelta(minutes=17 * n)
        _span(tracer, at, {"prompt.id": PID, "prompt.version": "v1", "prompt.template_hash": v1, "prompt.channel": CHANNEL})
    for n in range(UNREGISTERED):
        at = newest.full_at + timedelta(minutes=5 + n)
        _span(tracer, at, {"prompt.id": PID, "prompt.version": newest.version, "prompt.template_hash": "0ddba11c0ffe",
                           "prompt.channel": CHANNEL})  # fmt: skip
    provider.shutdown()


def _span(tracer, at: datetime, attributes: dict) -> None:
    start = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
    span = tracer.start_span("chat gpt-4o-mini", start_time=start, attributes=attributes)
    span.end(end_time=start + 300_000_000)


RAW_SCAN = """
SELECT count(*) AS spans,
       count(*) FILTER (WHERE list_contains(list_transform(s.attributes, lambda a: a.key), 'prompt.id')) AS prompt_spans
FROM (
    SELECT unnest(ss.spans) AS s
    FROM (
        SELECT unnest(rs.scopeSpans) AS ss
        FROM (SELECT unnest(resourceSpans) AS rs FROM read_json($files, format = 'newline_delimited', union_by_name = true))
    )
)
"""


_LINES = (
    "read_csv($files, columns={'text': 'VARCHAR'}, header=false, delim='\\0', quote='', escape='', "
    "auto_detect=false, max_line_size=268435456, buffer_size=536870912)"
)
# The same scan with an explicit, minimal schema: only span ids and attribute keys are built.
TYPED_SCAN = f"""
SELECT count(*) AS spans,
       count(*) FILTER (WHERE list_contains(list_transform(s.attributes, lambda a: a.key), 'prompt.id')) AS prompt_spans
FROM (
    SELECT unnest(ss.spans) AS s
    FROM (
        SELECT unnest(rs.scopeSpans) AS ss
        FROM (
            SELECT unnest(from_json(text, '{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"spanId":"VARCHAR",
                "startTimeUnixNano":"VARCHAR","attributes":[{{"key":"VARCHAR"}}]}}]}}]}}]}}').resourceSpans) AS rs
            FROM {_LINES}
        )
    )
)
"""
LINES_ONLY = f"SELECT count(*), sum(length(text)) FROM {_LINES}"


def raw_scan(files: list[str], sql: str = RAW_SCAN) -> tuple[int, int]:
    import duckdb

    con = duckdb.connect()
    return con.execute(sql, {"files": files}).fetchone()


def reader_only(files: list[str]) -> int:
    import duckdb

    from promptctl.provenance.conform import _load_spans

    con = duckdb.connect()
    _load_spans(con, files, strict=False)
    return con.execute("SELECT count(*) FROM conform_spans").fetchone()[0]


def run_conform(repo: Path, files: list[str]):
    from promptctl.provenance.conform import conform
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        return conform(r, files)
    finally:
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    repo = WORK / "repo"
    began = time.perf_counter()
    hashes = build_repo(repo)
    info = gen_spans.generate(spans=args.spans, versions=VERSIONS, prompt_id=PID, channel=CHANNEL, template_hashes=hashes)
    moves = record_moves(repo, info.timeline)
    planted = WORK / "planted.jsonl"
    plant(planted, info)
    files = [str(info.path), str(planted)]
    size = sum(Path(f).stat().st_size for f in files) / 1e6
    print(f"setup {time.perf_counter() - began:.1f}s: {info.spans + STALE + UNREGISTERED:,} spans ({size:,.0f} MB), "
          f"{VERSIONS} versions, {moves} production moves, planted {STALE} stale + {UNREGISTERED} unregistered")  # fmt: skip

    lines_t, _ = best_of(args.repeat, raw_scan, files, LINES_ONLY)
    auto_t, auto_counts = best_of(args.repeat, raw_scan, files, RAW_SCAN)
    typed_t, (spans, prompt_spans) = best_of(args.repeat, raw_scan, files, TYPED_SCAN)
    assert auto_counts == (spans, prompt_spans), (auto_counts, spans, prompt_spans)
    raw_t = min(auto_t, typed_t)  # the strongest raw scan is the baseline
    read_t, loaded = best_of(args.repeat, reader_only, files)
    conform_t, report = best_of(args.repeat, run_conform, repo, files)

    expected = {"stale": STALE, "unregistered": UNREGISTERED, "unserved": 0}
    got = {k: report.count(k) for k in expected}
    assert spans == loaded == report.spans, (spans, loaded, report.spans)
    assert got == expected, got
    assert report.count("ok") == prompt_spans - STALE - UNREGISTERED, (report.count("ok"), prompt_spans)

    rows = [
        ("DuckDB: read the lines only (no JSON parsing; a floor)", lines_t),
        ("DuckDB raw scan: read_json (schema auto-detected) + unnest", auto_t),
        ("DuckDB raw scan: lines + from_json (minimal schema) + unnest", typed_t),
        ("shared span reader only (promptctl.spans)", read_t),
        ("promptctl conform (reader + registry + audit log + classify)", conform_t),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n{'':{width}}  {'seconds':>8}  {'vs raw':>7}   (raw = the faster raw scan)")
    for name, seconds in rows:
        print(f"{name:{width}}  {seconds:8.2f}  {seconds / raw_t:6.2f}x")
    print(f"\n{report.spans:,} spans: ok {report.count('ok'):,}, stale {got['stale']}, unregistered "
          f"{got['unregistered']}, unserved {got['unserved']}, no prompt {report.count('no_prompt'):,} "
          f"(best of {args.repeat}; target: conform within 3x of the raw scan)")  # fmt: skip


if __name__ == "__main__":
    main()

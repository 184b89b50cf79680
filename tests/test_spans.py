"""The OTLP/JSON span file writer and the shared span reader, on real SDK spans and real files."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from promptctl.errors import UsageError
from promptctl.spans.otlp_json import OtlpJsonFileExporter, encode_spans

PROMPT_ATTRS = {
    "prompt.id": "support_intent_classifier",
    "prompt.version": "v2",
    "prompt.template_hash": "0123456789ab",
    "prompt.channel": "production",
    "prompt.locale": "de",
    "prompt.tier": "enterprise",
    "prompt.condition.fallback": False,
}


def _provider(*exporters) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _emit(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("promptctl.eval", "0.1.0")
    with tracer.start_as_current_span("eval.item", kind=SpanKind.CLIENT) as outer:
        outer.set_attributes({**PROMPT_ATTRS, "eval.score.exact_match": 1.0, "eval.score.cited": 0.5})
        outer.set_attribute("tokens", 12)
        outer.set_attribute("labels", ["a", "b"])
        outer.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span(
            "inner", links=[Link(outer.get_span_context(), {"why": "x"})]
        ) as inner:
            inner.set_status(Status(StatusCode.ERROR, "boom"))


# -- writer ----------------------------------------------------------------------------------------------


def test_exporter_writes_one_otlp_json_request_per_export(tmp_path: Path):
    path = tmp_path / "out" / "spans.jsonl"
    provider = _provider(OtlpJsonFileExporter(path))
    _emit(provider)
    provider.shutdown()

    lines = path.read_text().splitlines()
    assert len(lines) == 2  # SimpleSpanProcessor: one export per span, one line per export
    inner, outer = (json.loads(line)["resourceSpans"][0] for line in lines)
    assert {"key": "service.name", "value": {"stringValue": "svc"}} in outer["resource"]["attributes"]
    scope = outer["scopeSpans"][0]["scope"]
    assert scope == {"name": "promptctl.eval", "version": "0.1.0"}
    span = outer["scopeSpans"][0]["spans"][0]
    child = inner["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    assert len(span["spanId"]) == 16 and int(span["spanId"], 16)
    assert "parentSpanId" not in span and child["parentSpanId"] == span["spanId"]
    assert span["kind"] == 3  # SPAN_KIND_CLIENT
    assert isinstance(span["startTimeUnixNano"], str) and int(span["endTimeUnixNano"]) >= int(
        span["startTimeUnixNano"]
    )
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["prompt.version"] == {"stringValue": "v2"}
    assert attrs["prompt.condition.fallback"] == {"boolValue": False}
    assert attrs["eval.score.exact_match"] == {"doubleValue": 1.0}
    assert attrs["tokens"] == {"intValue": "12"}
    assert attrs["labels"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert child["status"] == {"code": 2, "message": "boom"}


def test_exporter_matches_the_sdk_protobuf_encoder(tmp_path: Path):
    """Our JSON, parsed back as protobuf, equals what the SDK's own OTLP encoder produces."""
    trace_encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")
    json_format = pytest.importorskip("google.protobuf.json_format")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    memory = InMemorySpanExporter()
    provider = _provider(memory)
    _emit(provider)
    spans = memory.get_finished_spans()

    ours = encode_spans(spans)

    def hex_to_b64(node):  # protobuf's JSON mapping spells bytes as base64, OTLP/JSON as hex
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId")
                else hex_to_b64(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hex_to_b64(v) for v in node]
        return node

    parsed = json_format.ParseDict(hex_to_b64(ours), ExportTraceServiceRequest())
    assert parsed == trace_encoder.encode_spans(spans)


def test_exporter_appends_and_reports_failure_after_shutdown(tmp_path: Path):
    path = tmp_path / "spans.jsonl"
    for _ in range(2):
        provider = _provider(OtlpJsonFileExporter(path))
        _emit(provider)
        provider.shutdown()
    assert len(path.read_text().splitlines()) == 4
    exporter = OtlpJsonFileExporter(path)
    exporter.shutdown()
    from opentelemetry.sdk.trace.export import SpanExportResult

    memory = InMemorySpanExporter()
    provider = _provider(memory)
    _emit(provider)
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    assert len(path.read_text().splitlines()) == 4


# -- reader ----------------------------------------------------------------------------------------------

duckdb = pytest.importorskip("duckdb")

from promptctl.spans.reader import (  # noqa: E402
    MalformedSpanFile,
    NoSpanFiles,
    load_spans,
)


def _exported(path: Path, n: int = 3, **extra) -> Path:
    """``n`` eval-like spans (v1..vn) plus one HTTP span without prompt attributes, via the real exporter."""
    provider = _provider(OtlpJsonFileExporter(path))
    tracer = provider.get_tracer("promptctl.eval")
    with tracer.start_as_current_span("POST /classify"):
        for i in range(n):
            with tracer.start_as_current_span("eval.item") as span:
                span.set_attributes({**PROMPT_ATTRS, "prompt.version": f"v{i + 1}", **extra})
                span.set_attribute("eval.score.exact_match", float(i % 2))
                span.set_attribute("eval.score.cited", 1)  # an int score counts too
                span.set_attribute("eval.note", "not a score")
    provider.shutdown()
    return path


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_reader_loads_exported_spans_with_prompt_columns_and_scores(tmp_path: Path):
    path = _exported(tmp_path / "spans.jsonl", stale=None)
    con = duckdb.connect()
    load = load_spans(con, [path])
    assert (load.spans, load.spans_without_version, load.malformed_lines) == (4, 1, 0)
    rows = _rows(con, f"SELECT * FROM {load.table} WHERE prompt_version IS NOT NULL ORDER BY prompt_version")
    first = rows[0]
    assert first["file"] == str(path) and first["line"] == 1
    assert first["prompt_id"] == "support_intent_classifier" and first["prompt_version"] == "v1"
    assert first["prompt_template_hash"] == "0123456789ab"
    assert (first["prompt_channel"], first["prompt_locale"], first["prompt_tier"]) == (
        "production",
        "de",
        "enterprise",
    )
    assert first["prompt_fallback"] is False and first["prompt_stale"] is None
    assert len(first["trace_id"]) == 32 and len(first["span_id"]) == 16 and len(first["parent_span_id"]) == 16
    assert first["start_time"] <= first["end_time"] and first["start_unix_nano"] > 0
    assert first["service_name"] == "svc"
    assert sorted((s["rubric"], s["score"]) for s in first["scores"]) == [
        ("cited", 1.0),
        ("exact_match", 0.0),
    ]
    root = _rows(con, f"SELECT * FROM {load.table} WHERE prompt_version IS NULL")[0]
    assert root["parent_span_id"] is None and root["name"] == "POST /classify" and root["scores"] == []
    scores = _rows(con, f"SELECT prompt_version, rubric, score FROM {load.scores} ORDER BY ALL")
    assert len(scores) == 6 and scores[0] == {"prompt_version": "v1", "rubric": "cited", "score": 1.0}


def test_reader_names_malformed_lines_and_skips_them(tmp_path: Path):
    good = _exported(tmp_path / "a.jsonl", n=2)
    lines = good.read_text().splitlines()
    bad = tmp_path / "b.jsonl"
    bad.write_text(
        "\n".join(
            [
                lines[0],  # 1 good
                "",  # 2 blank: skipped silently
                '{"resourceSpans": [',  # 3 truncated
                '{"hello": "world"}',  # 4 not an export request
                '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","startTimeUnixNano":"1"}]}]}]}',  # 5 no ids
                lines[1].replace('"startTimeUnixNano":"', '"startTimeUnixNano":"x'),  # 6 bad time
                "   ",  # 7 whitespace only: blank
                lines[2],  # 8 good
            ]
        )
        + "\n"
    )
    con = duckdb.connect()
    load = load_spans(con, [str(tmp_path / "*.jsonl")])
    assert load.files == (str(good), str(bad))
    assert [(m.file, m.line) for m in load.malformed] == [
        (str(bad), 3),
        (str(bad), 4),
        (str(bad), 5),
        (str(bad), 6),
    ]
    assert load.malformed_lines == 4 and load.partial
    assert "not valid JSON" in str(load.malformed[0]) and str(load.malformed[0]).startswith(f"{bad}:3: ")
    assert "startTimeUnixNano" in load.malformed[3].reason
    # a.jsonl: 3 spans; b.jsonl: lines 1 and 8 (its line 6 is skipped whole)
    assert load.spans == 5
    assert _rows(con, f"SELECT DISTINCT line FROM {load.table} WHERE file = '{bad}' ORDER BY line") == [
        {"line": 1},
        {"line": 8},
    ]


def test_reader_strict_fails_on_the_first_malformed_line_and_leaves_no_table(tmp_path: Path):
    path = _exported(tmp_path / "spans.jsonl", n=1)
    with path.open("a") as out:
        out.write("not json\n{}\n")
    con = duckdb.connect()
    with pytest.raises(MalformedSpanFile) as info:
        load_spans(con, [path], strict=True, table="strict_spans")
    assert str(info.value) == f"{path}:3: not valid JSON (1 more malformed line)"
    assert info.value.exit_code == 4
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'strict_spans%'"
    ).fetchall() == [(0,)]


def test_reader_errors_for_missing_files(tmp_path: Path):
    con = duckdb.connect()
    with pytest.raises(NoSpanFiles, match=r"no span file matches .*\*\.jsonl"):
        load_spans(con, [str(tmp_path / "*.jsonl")])
    with pytest.raises(NoSpanFiles, match="span file not found: .*missing.jsonl"):
        load_spans(con, [tmp_path / "missing.jsonl"])


def test_reader_score_pattern_time_range_and_base64_ids(tmp_path: Path):
    path = _exported(tmp_path / "spans.jsonl", n=2)
    text = path.read_text()
    request = json.loads(text.splitlines()[0])
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    hex_trace = span["traceId"]
    span["traceId"] = base64.b64encode(bytes.fromhex(hex_trace)).decode()  # protobuf-style JSON ids
    span["attributes"].append({"key": "quality.relevance", "value": {"doubleValue": 0.25}})
    path.write_text(json.dumps(request, indent=None, separators=(", ", ": ")) + "\n" + text.split("\n", 1)[1])
    con = duckdb.connect()
    load = load_spans(con, [path], score_pattern="quality.*")
    assert _rows(con, f"SELECT rubric, score FROM {load.scores}") == [{"rubric": "relevance", "score": 0.25}]
    assert _rows(con, f"SELECT trace_id FROM {load.table} WHERE line = 1") == [{"trace_id": hex_trace}]
    start = _rows(con, f"SELECT min(start_unix_nano) AS s FROM {load.table}")[0]["s"]
    later = load_spans(con, [path], table="later", since=start + 1)
    assert later.spans == load.spans - 1


def test_reader_long_lines_and_column_selection(tmp_path: Path):
    path = tmp_path / "big.jsonl"
    provider = _provider(OtlpJsonFileExporter(path))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("huge") as span:  # one 9 MB line: over the reader's first line limit
        span.set_attributes({**PROMPT_ATTRS, "blob": "x" * 9_000_000, "eval.score.ok": 0.5})
    provider.shutdown()
    _exported(path, n=2)
    con = duckdb.connect()
    load = load_spans(con, [path], columns=["prompt_version", "scores"])
    assert load.spans == 4 and load.malformed_lines == 0
    names = [d[0] for d in con.execute(f"SELECT * FROM {load.table}").description]
    assert names == ["file", "line", "start_time", "start_unix_nano", "prompt_version", "scores"]
    assert _rows(con, f"SELECT line, rubric, score FROM {load.scores} WHERE rubric = 'ok'") == [
        {"line": 1, "rubric": "ok", "score": 0.5}
    ]
    with pytest.raises(UsageError, match="unknown span column"):
        load_spans(con, [path], columns=["colour"])
    with pytest.raises(UsageError, match="reserved"):
        load_spans(con, [path], table="select")


def test_line_times_and_skipping_lines_before_a_floor(tmp_path: Path):
    from promptctl.spans.reader import scan_line_times

    path = _exported(
        tmp_path / "spans.jsonl", n=3
    )  # 4 lines, one span each (the root, started first, is last)
    with path.open("a") as out:
        out.write("not json\n")
    con = duckdb.connect()
    times = scan_line_times(con, [path])
    rows = _rows(con, f"SELECT line, min_ns, max_ns FROM {times.table} ORDER BY line")
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5] and rows[4]["max_ns"] is None
    assert times.max_ns == max(r["max_ns"] for r in rows[:4])
    since = rows[1]["min_ns"]  # the second eval span: lines 2 and 3 reach it, 1 and 4 (the root) do not
    pruned = load_spans(con, [path], table="pruned", since=since, skip_lines_before=since)
    plain = load_spans(con, [path], table="plain", since=since)
    assert pruned.spans == plain.spans == 2
    assert _rows(con, "SELECT line FROM pruned ORDER BY line") == [{"line": 2}, {"line": 3}]
    assert [(m.line, m.reason) for m in pruned.malformed] == [(5, "not valid JSON")]  # never skipped
    assert pruned.lines_max_ns == times.max_ns


def _request_line(number: int, start_ns: int, padding: int = 0) -> str:
    span = {
        "traceId": f"{number:032x}",
        "spanId": f"{number:016x}",
        "name": f"line {number}",
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + 1000),
        "attributes": [
            {"key": "prompt.version", "value": {"stringValue": f"v{number}"}},
            {"key": "eval.score.ok", "value": {"doubleValue": number / 10_000}},
            {"key": "pad", "value": {"stringValue": "x" * padding}},
        ],
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})


def test_line_numbers_hold_when_the_file_is_scanned_in_parallel_chunks(tmp_path: Path, monkeypatch):
    """Lines are parsed by every core at once; the line each span is reported on is still its line."""
    import promptctl.spans.reader as reader

    # small scan buffers: a 3 MB file is read as ~50 chunks, shared between the threads
    monkeypatch.setattr(reader, "FAST_LINE_BYTES", 32 * 1024)
    path = tmp_path / "many.jsonl"
    base = 1_764_000_000_000_000_000
    written: list[str] = []
    for number in range(1, 6001):
        if number % 1000 == 0:
            written.append("")  # a blank line still counts as a line
        elif number == 5999:
            written.append('{"resourceSpans": [')  # truncated
        else:
            written.append(_request_line(number, base + number * 1_000_000_000, padding=(number * 37) % 700))
    path.write_text("\n".join(written) + "\n")
    con = duckdb.connect()
    con.execute("SET threads = 4").fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    load = load_spans(con, [path])
    assert load.spans == 6000 - 6 - 1
    assert [(m.line, m.reason) for m in load.malformed] == [(5999, "not valid JSON")]
    mismatched = con.execute(
        f"SELECT count(*) FROM {load.table} WHERE name <> 'line ' || line OR prompt_version <> 'v' || line"
    ).fetchall()
    assert mismatched == [(0,)]
    # the caller's setting is left as it was
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]
    # skipping lines before a floor keeps the numbering too
    later = load_spans(
        con,
        [path],
        table="later",
        since=base + 4500 * 1_000_000_000,
        skip_lines_before=base + 4500 * 1_000_000_000,
    )
    assert con.execute("SELECT min(line), count(*) FROM later WHERE name = 'line ' || line").fetchall() == [
        (4500, 1498)  # 4500..6000 but two blank lines and the truncated one
    ]
    assert later.spans == 1498 and later.lines_max_ns == base + 5998 * 1_000_000_000
    assert [m.line for m in later.malformed] == [5999]


def test_skipped_lines_are_not_parsed_but_strict_still_names_a_broken_one(tmp_path: Path):
    path = tmp_path / "spans.jsonl"
    base = 1_764_000_000_000_000_000
    lines = [_request_line(n, base + n * 1_000_000_000) for n in range(1, 11)]
    lines[1] = lines[1].replace(
        '"name": ', '"name" '
    )  # line 2: broken inside, still {...}, an early start time
    path.write_text("\n".join(lines) + "\n")
    floor = base + 8 * 1_000_000_000
    con = duckdb.connect()
    load = load_spans(con, [path], since=floor, skip_lines_before=floor)
    assert load.spans == 3 and load.malformed_lines == 0  # line 2 ends before the floor: never read
    with pytest.raises(MalformedSpanFile, match=rf"^{re.escape(str(path))}:2: not valid JSON$"):
        load_spans(con, [path], table="strict", since=floor, skip_lines_before=floor, strict=True)
    everything = load_spans(con, [path], table="everything")
    assert [m.line for m in everything.malformed] == [2]


def test_compressed_files_are_read_with_their_line_numbers(tmp_path: Path):
    """``.gz`` (several gzip members, as appending writers make) and ``.zst`` (the Collector file exporter's
    ``compression: zstd``, one frame per write): the extension says how; line numbers are the lines'."""
    import gzip
    import shutil
    import subprocess

    base = 1_764_000_000_000_000_000
    lines = [_request_line(n, base + n * 1_000_000_000) for n in range(1, 21)]
    lines[11] = "not json"  # line 12
    first, second = "\n".join(lines[:10]) + "\n", "\n".join(lines[10:]) + "\n"
    paths = [tmp_path / "spans.jsonl.gz"]
    paths[0].write_bytes(gzip.compress(first.encode()) + gzip.compress(second.encode()))
    if shutil.which("zstd"):
        frames = b""
        for part in (first, second):
            frames += subprocess.run(
                ["zstd", "-q", "-c"], input=part.encode(), capture_output=True, check=True
            ).stdout
        paths.append(tmp_path / "spans.jsonl.zst")
        paths[1].write_bytes(frames)
    for path in paths:
        con = duckdb.connect()
        load = load_spans(con, [path])
        assert load.spans == 19 and [(m.line, m.reason) for m in load.malformed] == [
            (12, "not valid JSON")
        ], path
        mismatched = con.execute(
            f"SELECT count(*) FROM {load.table} WHERE name <> 'line ' || line"
        ).fetchall()
        assert mismatched == [(0,)], path


def test_the_start_time_regular_expressions_never_miss_a_line_in_the_period():
    """The line tests that decide what is parsed: every start time at/after the floor (before the ceiling)
    matches, in each JSON spelling; a 19-digit one on the other side does not (so those lines are skipped)."""
    import random

    from promptctl.spans.reader import _at_or_after_regex, _before_regex

    rng = random.Random(7)
    for _ in range(200):
        bound = rng.randrange(10**18, 10**19)
        after = re.compile(_at_or_after_regex(bound).replace("\\d", "[0-9]"))
        before = re.compile(_before_regex(bound).replace("\\d", "[0-9]"))
        values = [bound - 1, bound, bound + 1, rng.randrange(10**18, bound), rng.randrange(bound, 10**19)]
        values += [rng.randrange(0, 10**18), 10**19 + rng.randrange(10**6)]
        for value in values:
            for spelling in (
                '"startTimeUnixNano":"%d"',
                '"startTimeUnixNano": %d,',
                '"startTimeUnixNano" : "%d"',
            ):
                text = spelling % value
                assert bool(after.search(text)) is (value >= bound), text
                if value < bound:
                    assert before.search(text), text
                elif len(str(value)) == 19:
                    assert not before.search(text), text


def test_lines_that_are_not_utf8_are_named_and_skipped_and_the_others_keep_their_numbers(tmp_path: Path):
    from promptctl.spans.reader import scan_line_times

    base = 1_764_000_000_000_000_000
    rows: list[bytes] = []
    for number in range(1, 13):
        if number in (4, 9):
            rows.append(b'{"resourceSpans": "caf\xe9 \xff"}')  # latin-1 bytes: not UTF-8
        elif number == 6:
            rows.append(b"")
        else:
            rows.append(_request_line(number, base + number * 1_000_000_000).encode())
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    con = duckdb.connect()
    load = load_spans(con, [path])
    assert [(m.line, m.reason) for m in load.malformed] == [(4, "not valid UTF-8"), (9, "not valid UTF-8")]
    assert (load.spans, load.malformed_lines, load.lines) == (9, 2, 12)
    assert con.execute(f"SELECT count(*) FROM {load.table} WHERE name <> 'line ' || line").fetchall() == [
        (0,)
    ]
    times = scan_line_times(con, [path])
    assert [r[0] for r in con.execute(f"SELECT line FROM {times.table} ORDER BY line").fetchall()] == [
        1, 2, 3, 5, 6, 7, 8, 10, 11, 12
    ]  # fmt: skip
    with pytest.raises(
        MalformedSpanFile, match=rf"^{re.escape(str(path))}:4: not valid UTF-8 \(1 more malformed line\)$"
    ):
        load_spans(con, [path], table="strict", strict=True)
    floor = base + 10 * 1_000_000_000
    later = load_spans(con, [path], table="later", since=floor, skip_lines_before=floor)
    assert later.spans == 3 and [m.line for m in later.malformed] == [4, 9]
    assert [r[0] for r in con.execute("SELECT line FROM later ORDER BY line").fetchall()] == [10, 11, 12]

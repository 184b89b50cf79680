"""Drift analysis on real span files (written by the real SDK and exporter), on DuckDB and on ClickHouse (chDB)."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import set_span_in_context

from promptctl.drift.analysis import (
    Baseline,
    DriftOptions,
    analyse,
    parse_span,
    rolling_series,
    thresholds_from_meta,
)
from promptctl.drift.engines import ClickHouseEngine, DuckDBEngine, chdb_transport, http_transport
from promptctl.errors import InvalidContent, NotFound, Unreachable, UsageError
from promptctl.spans.otlp_json import OtlpJsonFileExporter
from promptctl.spans.reader import load_spans

duckdb = pytest.importorskip("duckdb")

PID = "support_intent_classifier"
T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
SLICES = [("enterprise", "de"), ("enterprise", "en"), ("free", "de"), ("free", "en")]
META = {
    "drift": {
        "exact_match": {"drop": 0.05, "min_samples": 30},
        "contains_label": {"drop": 0.2, "min_samples": 30},
    }
}


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def write_spans(path: Path, *, drift: float = 0.1, label_drift: float = 0.1) -> Path:
    """A day of v1, then v2 from T0+20h (canary) / T0+22h (all traffic) to T0+26h; 40 spans per slice-hour.

    In v2's last hour, slice enterprise/de loses ``drift`` on exact_match and ``label_drift`` on
    contains_label. Each trace is an HTTP root span (no prompt attributes) with the scored LLM span below.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "support-api"}))
    # a queue that holds every span: the default (2048) drops spans when the exporter thread falls behind
    provider.add_span_processor(
        BatchSpanProcessor(OtlpJsonFileExporter(path), max_queue_size=20_000, max_export_batch_size=256)
    )
    tracer = provider.get_tracer("promptctl.test")
    counters: dict[tuple, int] = {}
    for hour in range(26):
        for k in range(40):
            at = T0 + timedelta(hours=hour, seconds=k * 90)
            for tier, locale in SLICES:
                if hour >= 22 or (hour >= 20 and k % 4 == 0):
                    version = "v2"
                elif hour < 24:
                    version = "v1"
                else:
                    continue
                exact, label = 0.9, 0.8
                if version == "v2" and hour == 25 and (tier, locale) == ("enterprise", "de"):
                    exact, label = exact - drift, label - label_drift
                n = counters[(version, tier, locale)] = counters.get((version, tier, locale), -1) + 1
                root = tracer.start_span("POST /classify", start_time=_ns(at))
                ctx = set_span_in_context(root)
                span = tracer.start_span("chat", context=ctx, start_time=_ns(at) + 1000)
                span.set_attributes(
                    {
                        "prompt.id": PID,
                        "prompt.version": version,
                        "prompt.template_hash": "0123456789ab",
                        "prompt.channel": "production",
                        "prompt.tier": tier,
                        "prompt.locale": locale,
                        "prompt.condition.fallback": False,
                        # deterministic scores with the wanted means over every block of 10 spans
                        "eval.score.exact_match": 1.0 if (n % 10) < round(exact * 10) else 0.0,
                        "eval.score.contains_label": 1.0 if (n % 10) < round(label * 10) else 0.0,
                    }
                )
                span.end(end_time=_ns(at) + 2_000_000)
                root.end(end_time=_ns(at) + 3_000_000)
    provider.shutdown()
    return path


@pytest.fixture(scope="module")
def span_file(tmp_path_factory) -> Path:
    return write_spans(tmp_path_factory.mktemp("drift") / "spans.jsonl")


@pytest.fixture(scope="module")
def duck(span_file):
    con = duckdb.connect()
    load = load_spans(con, [span_file])
    return DuckDBEngine(con, load.scores)


def _meta(prompt_id, version):
    return META if prompt_id == PID else None


def _key(row):
    return (row.version, row.slice, row.rubric)


def _rounded(rows):
    """Rows as JSON with floats rounded: DuckDB and ClickHouse sum in different orders."""

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return round(node, 9) if isinstance(node, float) else node

    return [walk(r.to_json()) for r in rows]


# -- durations, baselines, thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("90s", 90), ("1h30m", 5400), ("7d", 604800), ("24h", 86400)]
)
def test_parse_span(text, seconds):
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "0m", "1x", "1h junk"])
def test_parse_span_rejects(text):
    with pytest.raises(UsageError, match="--window"):
        parse_span(text)


def test_baseline_forms():
    assert Baseline.parse("24h") == Baseline("duration", 86400)
    assert Baseline.parse("previous") == Baseline("previous", 86400)
    assert Baseline.parse("previous:6h") == Baseline("previous", 21600)
    with pytest.raises(UsageError, match="--baseline"):
        Baseline.parse("yesterday")


def test_thresholds_from_meta_validates():
    assert thresholds_from_meta(META, "x") == {"exact_match": (0.05, 30), "contains_label": (0.2, 30)}
    assert thresholds_from_meta({}, "x") == {}
    for bad in ({"drift": [1]}, {"drift": {"a": 1}}, {"drift": {"a": {"drop": -1}}}, {"drift": {"a": {"min_samples": 0}}},
                {"drift": {"a": {"drop": "x"}}}, {"drift": {"a": {"dorp": 0.1}}}):  # fmt: skip
        with pytest.raises(InvalidContent, match="x: drift"):
            thresholds_from_meta(bad, "x")


def test_options_reject_unknown_slices():
    with pytest.raises(UsageError, match="invalid --by colour"):
        DriftOptions(by=("colour",))


# -- the analysis ----------------------------------------------------------------------------------------


def test_slice_drift_alerts_with_thresholds_from_the_version_metadata(duck):
    report = analyse(duck, DriftOptions(window_s=3600, by=("tier", "locale")), _meta)
    assert report.now_us is not None
    alerts = report.alerts
    assert [_key(a) for a in alerts] == [("v2", (("tier", "enterprise"), ("locale", "de")), "exact_match")]
    alert = alerts[0]
    # the window is v2's last hour; the baseline its 24h before: 2 canary hours (10 spans each), then 3 full hours
    assert (alert.current_n, alert.baseline_n, alert.baseline_version) == (40, 2 * 10 + 3 * 40, "v2")
    assert round(alert.current_mean, 3) == 0.8 and round(alert.drop, 3) == 0.1
    assert alert.threshold.source == "prompt.yaml at v2" and alert.threshold.min_samples == 30
    label = next(r for r in report.rows if r.slice == alert.slice and r.rubric == "contains_label")
    assert label.status == "ok" and round(label.drop, 3) == 0.1  # under that rubric's 0.2
    # with the defaults (no metadata), the 0.1 drop on contains_label alerts too
    defaults = analyse(duck, DriftOptions(window_s=3600, by=("tier", "locale"), default_min_samples=30))
    assert sorted(a.rubric for a in defaults.alerts) == ["contains_label", "exact_match"]


def test_the_global_mean_hides_the_slice(duck):
    report = analyse(duck, DriftOptions(window_s=3600), _meta)
    exact = next(r for r in report.rows if r.rubric == "exact_match")
    assert exact.slice == () and exact.status == "ok" and round(exact.drop, 3) == 0.025  # 0.1 / 4 slices
    assert report.alerts == []


def test_previous_version_baseline(duck):
    report = analyse(
        duck, DriftOptions(window_s=3600, baseline=Baseline("previous", 86400), by=("tier", "locale")), _meta
    )
    alert = report.alerts[0]
    assert _key(alert) == ("v2", (("tier", "enterprise"), ("locale", "de")), "exact_match")
    assert (
        alert.baseline_version == "v1" and alert.baseline_n == 20 * 40 + 2 * 30
    )  # v1's last day: to the end of the canary
    assert round(alert.baseline_mean, 3) == 0.9


def test_min_samples_and_until(duck):
    report = analyse(duck, DriftOptions(window_s=3600, by=("tier", "locale"), default_min_samples=41))
    assert report.alerts == [] and {r.status for r in report.rows} == {"insufficient"}
    earlier = analyse(
        duck,
        DriftOptions(window_s=3600, by=("tier", "locale"), until=T0 + timedelta(hours=24, minutes=59)),
        _meta,
    )
    assert earlier.alerts == [] and {r.version for r in earlier.rows} == {"v2"}


def test_rolling_series(duck):
    report = analyse(duck, DriftOptions(window_s=3600, by=("tier", "locale")), _meta)
    series = rolling_series(duck, report)
    overall = {(s.version, s.rubric): s for s in series if not s.slice}
    assert set(overall) == {(v, r) for v in ("v1", "v2") for r in ("exact_match", "contains_label")}
    v2 = overall[("v2", "exact_match")]
    assert v2.t_us == tuple(sorted(v2.t_us)) and abs(v2.mean[0] - 0.9) < 0.11
    sliced = [s for s in series if s.slice]
    assert {(s.version, s.rubric) for s in sliced} == {("v2", "exact_match"), ("v2", "contains_label")}
    assert round(next(s for s in sliced if s.rubric == "exact_match").mean[-1], 3) == 0.8


# -- ClickHouse: the same SQL on a real engine, in process (chDB) ----------------------------------------------

OTEL_TRACES_DDL = """
CREATE TABLE {name} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (Timestamp DateTime64(9), Name LowCardinality(String), Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    Links Nested (TraceId String, SpanId String, TraceState String, Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
"""


def fill_otel_traces(session, con, load, parquet: Path, name: str = "otel_traces") -> None:
    """Copy the loaded spans into an otel_traces table, attribute values as strings like the exporter writes."""
    con.execute(
        f"""COPY (
        SELECT make_timestamp_ns(start_unix_nano) AS Timestamp, trace_id AS TraceId, span_id AS SpanId,
               coalesce(parent_span_id, '') AS ParentSpanId, name AS SpanName, coalesce(service_name, '') AS ServiceName,
               map_from_entries(list_filter(
                 [{{'k': 'prompt.id', 'v': prompt_id}}, {{'k': 'prompt.version', 'v': prompt_version}},
                  {{'k': 'prompt.tier', 'v': prompt_tier}}, {{'k': 'prompt.locale', 'v': prompt_locale}},
                  {{'k': 'prompt.channel', 'v': prompt_channel}},
                  {{'k': 'prompt.condition.fallback', 'v': CAST(prompt_fallback AS VARCHAR)}}]
                 || [{{'k': 'eval.score.' || s.rubric, 'v': CAST(s.score AS VARCHAR)}} FOR s IN scores],
                 lambda e: e.v IS NOT NULL)) AS SpanAttributes
        FROM {load.table}) TO '{parquet}' (FORMAT parquet)"""
    ).fetchall()
    session.query(OTEL_TRACES_DDL.format(name=name))
    session.query(
        f"INSERT INTO {name} (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, ServiceName, SpanAttributes) "
        f"SELECT * FROM file('{parquet}', Parquet)"
    )


@pytest.fixture(scope="module")
def clickhouse(span_file, tmp_path_factory):
    chdb_session = pytest.importorskip("chdb.session")
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    con = duckdb.connect()
    load = load_spans(con, [span_file])
    fill_otel_traces(session, con, load, tmp_path_factory.mktemp("pq") / "spans.parquet")
    yield session
    session.close()


@pytest.mark.parametrize("baseline", ["24h", "previous"])
def test_clickhouse_pushdown_gives_the_same_answer(duck, clickhouse, baseline):
    options = DriftOptions(
        window_s=3600, baseline=Baseline.parse(baseline), by=("tier", "locale", "fallback")
    )
    engine = ClickHouseEngine(chdb_transport(clickhouse), "otel_traces")
    ours, theirs = analyse(duck, options, _meta), analyse(engine, options, _meta)
    assert theirs.now_us == ours.now_us
    assert _rounded(theirs.rows) == _rounded(ours.rows)
    assert len(theirs.alerts) == 1
    flat = [m for s in rolling_series(engine, theirs) for m in s.mean]
    assert flat == pytest.approx([m for s in rolling_series(duck, ours) for m in s.mean])


def test_clickhouse_missing_table_is_not_found(clickhouse):
    engine = ClickHouseEngine(chdb_transport(clickhouse), "no_such_table")
    with pytest.raises(NotFound, match="no_such_table"):
        analyse(engine, DriftOptions())


class _ChdbOverHttp(http.server.BaseHTTPRequestHandler):
    """ClickHouse's HTTP interface in miniature: POST a query, get JSONCompact (or an error) back."""

    session = None

    def do_POST(self):  # noqa: N802
        sql = self.rfile.read(int(self.headers["Content-Length"])).decode()
        sql = sql.removesuffix("\nFORMAT JSONCompact")
        try:
            body, status = bytes(self.session.query(sql, "JSONCompact").bytes()), 200
        except Exception as exc:
            body, status = f"Code: 60. DB::Exception: {exc}".encode(), 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_clickhouse_over_http(duck, clickhouse):
    handler = type("Handler", (_ChdbOverHttp,), {"session": clickhouse})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        engine = ClickHouseEngine(http_transport(url), "otel_traces")
        options = DriftOptions(window_s=3600, by=("tier", "locale"))
        assert _rounded(analyse(engine, options, _meta).rows) == _rounded(analyse(duck, options, _meta).rows)
    finally:
        server.shutdown()
        server.server_close()


def test_clickhouse_unreachable_is_one_clear_error():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = ClickHouseEngine(http_transport(f"http://127.0.0.1:{port}", timeout=5), "otel_traces")
    with pytest.raises(
        Unreachable, match=rf"^ClickHouse at http://127.0.0.1:{port}/ is unreachable: "
    ) as info:
        analyse(engine, DriftOptions())
    assert info.value.exit_code == 7 and "\n" not in str(info.value)


def test_clickhouse_table_name_is_validated():
    with pytest.raises(UsageError, match="--table"):
        ClickHouseEngine(lambda sql: {}, "otel_traces; DROP TABLE x")
    with pytest.raises(UsageError, match="--clickhouse"):
        http_transport("localhost:8123")


def test_json_form_is_stable(duck):
    report = analyse(duck, DriftOptions(window_s=3600, by=("tier", "locale")), _meta)
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"engine", "until", "window", "baseline", "by", "input", "alerts", "rows"}
    row = data["rows"][0]
    assert set(row) == {
        "prompt",
        "version",
        "slice",
        "rubric",
        "window",
        "baseline",
        "drop",
        "threshold",
        "status",
    }
    assert row["status"] == "alert" and row["slice"] == {"tier": "enterprise", "locale": "de"}


def test_load_for_drift_parses_only_the_period_and_falls_back_when_needed(span_file, tmp_path):
    from promptctl.drift.engines import load_for_drift

    options = DriftOptions(window_s=3600, baseline=Baseline("duration", 6 * 3600), by=("tier", "locale"))
    con = duckdb.connect()
    load, engine = load_for_drift(con, [str(span_file)], options)  # 8 of the 26 hours (1h of slack)
    assert load.since_ns is not None and load.spans < 8320
    assert _rounded(analyse(engine, options, _meta).rows) == _rounded(
        analyse(
            DuckDBEngine(con, load_spans(con, [span_file], table="everything").scores), options, _meta
        ).rows
    )
    # a late span without scores moves the end of the files, not the analysis: the load starts over, whole
    later = tmp_path / "later.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OtlpJsonFileExporter(later)))
    provider.get_tracer("t").start_span("late", start_time=_ns(T0 + timedelta(days=5))).end(
        end_time=_ns(T0 + timedelta(days=5)) + 1
    )
    provider.shutdown()
    load, engine = load_for_drift(con, [str(span_file), str(later)], options)
    assert load.since_ns is None and load.spans == 8321
    assert len(analyse(engine, options, _meta).alerts) == 1


def test_one_pass_load_matches_the_whole_load_on_unordered_files_and_names_broken_lines(span_file, tmp_path):
    """The one-pass period guess falls back when the file's tail is not its latest part, and a truncated line
    is still named as malformed."""
    from promptctl.drift.engines import load_for_drift

    options = DriftOptions(window_s=3600, baseline=Baseline("duration", 6 * 3600), by=("tier", "locale"))
    lines = span_file.read_text().splitlines()
    reversed_file = tmp_path / "reversed.jsonl"
    reversed_file.write_text("\n".join(reversed(lines)) + "\n" + lines[0][: len(lines[0]) // 2] + "\n")
    con = duckdb.connect()
    load, engine = load_for_drift(con, [str(reversed_file)], options)
    assert load.malformed_lines == 1 and load.malformed[0].line == len(lines) + 1
    whole = DuckDBEngine(con, load_spans(con, [span_file], table="everything").scores)
    assert _rounded(analyse(engine, options, _meta).rows) == _rounded(analyse(whole, options, _meta).rows)


@pytest.mark.parametrize("hours", [21.5, 23, 25.99, 40])
def test_until_reads_only_its_period_and_matches_the_whole_load(span_file, hours):
    """--until before the files' end: the period ends there and the lines wholly after it are not parsed;
    after the end: the files' end decides. Either way the rows are those of the whole load."""
    from promptctl.drift.engines import load_for_drift

    until = T0 + timedelta(hours=hours)
    options = DriftOptions(
        window_s=3600, baseline=Baseline("duration", 2 * 3600), by=("tier", "locale"), until=until
    )
    con = duckdb.connect()
    load, engine = load_for_drift(con, [str(span_file)], options)
    whole = DuckDBEngine(con, load_spans(con, [span_file], table="everything").scores)
    assert _rounded(analyse(engine, options, _meta).rows) == _rounded(analyse(whole, options, _meta).rows)
    assert load.since_ns is not None and load.spans < 8320 * 5 // 26
    if hours < 26:
        assert (
            con.execute(f"SELECT max(start_unix_nano) FROM {load.table}").fetchall()[0][0]
            <= _ns(until) + 1000
        )
    # a line holds under an hour of spans: the lines parsed are those of the period and at most two more
    in_period = con.execute(
        f"SELECT count(DISTINCT line) FROM {load.table} WHERE start_unix_nano >= {load.since_ns}"
    ).fetchall()[0][0]
    assert in_period <= load.lines_parsed <= in_period + 2 < load.lines

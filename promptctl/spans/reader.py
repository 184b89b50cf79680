"""The one reader of span files: OTLP/JSON lines (the Collector's file exporter, ``OtlpJsonFileExporter``,
``promptctl eval run --spans``) into a DuckDB table, parsed inside DuckDB.

Each file is read as text lines (DuckDB's CSV scanner with no delimiter or quoting: one column, the line),
each line parsed with ``from_json`` against an explicit OTLP structure (no type auto-detection) and its spans
turned into a list of rows with list functions (attributes picked by key), all in DuckDB's parallel scan of
the file; the rows are inserted in the file's order, so a row's id gives its line number. A second, cheap
query unnests the lists into the span table. No Python loop over lines or spans.

A line that is not UTF-8, not JSON, not an ``ExportTraceServiceRequest``, or holds a span without ids or start
time is *malformed*: it is skipped whole and named (file, line, reason), or, with ``strict=True``, fails the
load. Compressed files (``.gz``, ``.zst``) are read as they are.

    con = duckdb.connect()
    load = load_spans(con, ["traces/*.jsonl"], table="spans")
    con.sql(f"SELECT prompt_version, count(*) FROM {load.table} GROUP BY ALL")
    con.sql(f"SELECT rubric, avg(score) FROM {load.scores} GROUP BY ALL")
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidContent, NotFound, UsageError

__all__ = [
    "DEFAULT_SCORE_PATTERN",
    "SPAN_COLUMNS",
    "MalformedLine",
    "MalformedSpanFile",
    "NoSpanFiles",
    "SpanLoad",
    "expand_paths",
    "load_spans",
    "LineTimes",
    "scan_line_times",
]

DEFAULT_SCORE_PATTERN = "eval.score.*"
FAST_LINE_BYTES = 8 * 1024 * 1024  # first try: small scan buffers, so every core gets a share of the file
MAX_LINE_BYTES = 256 * 1024 * 1024  # then: a Collector batch of thousands of large spans fits comfortably

# The public columns of the span table, in order (name, SQL type, what it holds).
SPAN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("file", "VARCHAR", "the span file, as given (after glob expansion)"),
    ("line", "BIGINT", "1-based line number in that file"),
    ("trace_id", "VARCHAR", "32 lowercase hex"),
    ("span_id", "VARCHAR", "16 lowercase hex"),
    ("parent_span_id", "VARCHAR", "16 lowercase hex, NULL for a root span"),
    ("name", "VARCHAR", "span name"),
    ("kind", "INTEGER", "OTLP SpanKind (1 internal .. 5 consumer)"),
    ("start_time", "TIMESTAMP", "UTC, microseconds"),
    ("end_time", "TIMESTAMP", "UTC, microseconds"),
    ("start_unix_nano", "BIGINT", "exact start, nanoseconds since the epoch"),
    ("service_name", "VARCHAR", "resource attribute service.name"),
    ("service_instance_id", "VARCHAR", "resource attribute service.instance.id"),
    ("prompt_id", "VARCHAR", "prompt.id"),
    ("prompt_version", "VARCHAR", "prompt.version, e.g. v23"),
    ("prompt_variant", "VARCHAR", "prompt.variant"),
    ("prompt_template_hash", "VARCHAR", "prompt.template_hash (12 hex)"),
    ("prompt_channel", "VARCHAR", "prompt.channel"),
    ("prompt_locale", "VARCHAR", "prompt.locale"),
    ("prompt_tier", "VARCHAR", "prompt.tier"),
    ("prompt_fallback", "BOOLEAN", "prompt.condition.fallback"),
    ("prompt_stale", "BOOLEAN", "prompt.stale (NULL when absent, i.e. not stale)"),
    ("prompt_published_at", "VARCHAR", "prompt.published_at, as recorded"),
    ("scores", "STRUCT(rubric VARCHAR, score DOUBLE)[]", "numeric attributes matching the score pattern"),
)

_STRING_ATTRS = {
    "prompt_id": "prompt.id",
    "prompt_version": "prompt.version",
    "prompt_variant": "prompt.variant",
    "prompt_template_hash": "prompt.template_hash",
    "prompt_channel": "prompt.channel",
    "prompt_locale": "prompt.locale",
    "prompt_tier": "prompt.tier",
    "prompt_published_at": "prompt.published_at",
}
_BOOL_ATTRS = {"prompt_fallback": "prompt.condition.fallback", "prompt_stale": "prompt.stale"}
_ATTRIBUTE_COLUMNS = {*_STRING_ATTRS, *_BOOL_ATTRS, "scores"}
_RESOURCE_COLUMNS = {"service_name", "service_instance_id"}
_OPTIONAL_SPAN_FIELDS = {
    "trace_id": "traceId VARCHAR",
    "span_id": "spanId VARCHAR",
    "parent_span_id": "parentSpanId VARCHAR",
    "name": "name VARCHAR",
    "kind": "kind INTEGER",
    "end_time": "endTimeUnixNano VARCHAR",
}
ALWAYS_COLUMNS = ("file", "line", "start_time", "start_unix_nano")

# Only the fields read are named: from_json skips the rest of each object without building it.
_VALUE = "STRUCT(stringValue VARCHAR, intValue VARCHAR, doubleValue DOUBLE, boolValue BOOLEAN)"
_ATTRS = f"STRUCT(key VARCHAR, value {_VALUE})[]"
_SPAN = (
    "STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, name VARCHAR, kind INTEGER, "
    f"startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes {_ATTRS})"
)


class MalformedSpanFile(InvalidContent):
    """A span file line that cannot be read (``strict=True``), or a file that cannot be read at all."""


class NoSpanFiles(NotFound):
    """A path or glob matched no file."""


@dataclass(frozen=True)
class MalformedLine:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class SpanLoad:
    """What ``load_spans`` made: the table (and scores view) names, and what it counted on the way."""

    table: str  # one row per span, columns SPAN_COLUMNS
    scores: str  # view: one row per (span, rubric): the span columns but scores, plus rubric and score ("" if
    # the scores column was not asked for)
    files: tuple[str, ...]
    spans: int  # spans loaded (malformed lines excluded)
    spans_without_version: int  # loaded spans with no prompt.version attribute
    malformed_lines: int
    malformed: tuple[MalformedLine, ...] = field(default=())  # the first ``max_reported`` of them
    score_pattern: str = DEFAULT_SCORE_PATTERN
    since_ns: int | None = None  # the time filter the load applied, if any
    until_ns: int | None = None
    lines_max_ns: int | None = None  # with ``skip_lines_before``: the latest start time on the lines parsed
    lines: int = 0  # lines in the files (blank ones included)
    lines_parsed: int = 0  # lines parsed as JSON: all but the blank ones, unless lines were skipped by time

    @property
    def partial(self) -> bool:
        """True when lines were skipped: an analysis of this load saw only part of the data."""
        return self.malformed_lines > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "spans": self.spans,
            "spans_without_version": self.spans_without_version,
            "malformed_lines": self.malformed_lines,
            "malformed": [m.to_json() for m in self.malformed],
            "since_unix_nano": self.since_ns,
            "until_unix_nano": self.until_ns,
            "lines": self.lines,
            "lines_parsed": self.lines_parsed,
        }


def expand_paths(patterns: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand globs (``traces/*.jsonl``, ``**`` recursive) in order; each pattern must match a file."""
    files: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        text = os.fspath(pattern)
        if glob.has_magic(text):
            matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        else:
            matches = [text] if os.path.isfile(text) else []
        if not matches:
            what = "no span file matches" if glob.has_magic(text) else "span file not found:"
            raise NoSpanFiles(f"{what} {text}")
        for match in matches:
            if match not in seen:
                seen.add(match)
                files.append(match)
    if not files:
        raise NoSpanFiles("no span files given")
    return files


def score_glob(pattern: str) -> tuple[str, str]:
    """``eval.score.*`` -> (GLOB pattern, literal prefix stripped to name the rubric)."""
    if not pattern or not pattern.strip():
        raise UsageError("the score pattern is empty; the default is eval.score.*")
    pattern = pattern.strip()
    if "*" not in pattern and "?" not in pattern and "[" not in pattern:
        pattern = pattern + "*"
    prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return pattern, prefix


def _quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise UsageError(f"invalid table name {name!r}")
    return name


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attr_index(key: str) -> str:
    return f"list_position(keys, {_sql_literal(key)})"


def _at_or_after_regex(floor: int) -> str:
    """A regular expression matching a ``startTimeUnixNano`` field whose value is at or after ``floor``
    (a superset: the 19-digit decimal strings at or after it, and any longer run of digits)."""
    digits = str(floor)
    if floor < 0 or len(digits) != 19:
        return '"startTimeUnixNano"'  # every line holding a start time
    alternatives = [digits]
    for i, char in enumerate(digits):
        if char != "9":
            rest = 18 - i
            alternatives.append(digits[:i] + f"[{int(char) + 1}-9]" + (f"\\d{{{rest}}}" if rest else ""))
    return '"startTimeUnixNano"\\s*:\\s*"?(?:\\d{20}|' + "|".join(alternatives) + ")"


def _before_regex(ceiling: int) -> str:
    """A regular expression matching a ``startTimeUnixNano`` field whose value is before ``ceiling`` (a
    superset: the 19-digit decimal strings below it, any shorter run of digits, and some longer ones)."""
    digits = str(ceiling)
    if ceiling < 0 or len(digits) != 19:
        return '"startTimeUnixNano"'  # every line holding a start time
    alternatives = ["\\d{1,18}(?:[^0-9]|$)"]
    for i, char in enumerate(digits):
        if char != "0":
            rest = 18 - i
            alternatives.append(digits[:i] + f"[0-{int(char) - 1}]" + (f"\\d{{{rest}}}" if rest else ""))
    return '"startTimeUnixNano"\\s*:\\s*"?(?:' + "|".join(alternatives) + ")"


_MORE_READ_OPTIONS = "/*promptctl: more read_csv options*/"


def _read_lines(max_line: int) -> str:
    """One span file as text lines: DuckDB's CSV scanner with no delimiter, quoting or escaping (one column,
    the line; a blank line is NULL). Parallel; with ``preserve_insertion_order`` the rows keep the file's order.
    ``_insert_lines`` puts options at the marker when a line cannot be read (not UTF-8)."""
    return (
        "read_csv($file, columns={'text': 'VARCHAR'}, header=false, delim='\\0', quote='', escape='', "
        f"auto_detect=false, strict_mode=false, max_line_size={max_line}, buffer_size={2 * max_line}"
        f"{_MORE_READ_OPTIONS})"
    )


def _to_ns(expr: str) -> str:
    return f"TRY_CAST({expr} AS BIGINT)"


def _hex_id(expr: str, hex_len: int) -> str:
    # OTLP/JSON ids are hex; protobuf's generic JSON mapping (some exporters) writes base64: accept both.
    b64_len = {32: 24, 16: 12}[hex_len]
    return f"CASE WHEN length({expr}) = {b64_len} THEN lower(hex(TRY(from_base64({expr})))) ELSE lower({expr}) END"


def _score_filter(glob_pattern: str, prefix: str) -> str:
    if glob_pattern == prefix + "*" and not re.search(r"[*?\[]", prefix):
        return f"starts_with(a.key, {_sql_literal(prefix)})"  # the common case: cheaper than GLOB
    return f"a.key GLOB {_sql_literal(glob_pattern)}"


def _request_structure(columns: set[str]) -> str:
    """The from_json structure: only the fields the requested columns need are built (the rest is skipped)."""
    span = ["startTimeUnixNano VARCHAR"]
    for column, field_sql in _OPTIONAL_SPAN_FIELDS.items():
        if column in columns:
            span.append(field_sql)
    if columns & _ATTRIBUTE_COLUMNS:
        span.append(f"attributes {_ATTRS}")
    request: dict[str, Any] = {"scopeSpans": [{"spans": f"STRUCT({', '.join(span)})[]"}]}
    if columns & _RESOURCE_COLUMNS:
        request["resource"] = {"attributes": _ATTRS}
    return json.dumps({"resourceSpans": [request]})


def _span_struct(columns: set[str], glob_pattern: str, prefix: str) -> str:
    """The struct built for one span ``s``, inside the lambdas over a line's requests (``rs``, its resource).
    An attribute is found with ``list_filter`` on its key: cheaper here than a list of keys built per span."""

    def attribute(of: str, key: str) -> str:
        return f"list_filter({of}.attributes, lambda a: a.key = {_sql_literal(key)})[1].value"

    def value(key: str) -> str:
        return attribute("s", key)

    start = _to_ns("s.startTimeUnixNano")
    ids = [f"s.{f} IS NULL" for c, f in (("trace_id", "traceId"), ("span_id", "spanId")) if c in columns]
    missing_ids = " OR ".join(ids) if ids else "FALSE"
    fields = [
        f"""'_problem': CASE
    WHEN {missing_ids} THEN 'a span without traceId or spanId'
    WHEN {start} IS NULL THEN 'a span whose startTimeUnixNano is not an integer' END""",
        f"'start_unix_nano': {start}",
    ]
    optional = {
        "trace_id": _hex_id("s.traceId", 32),
        "span_id": _hex_id("s.spanId", 16),
        "parent_span_id": f"nullif({_hex_id('s.parentSpanId', 16)}, '')",
        "name": "s.name",
        "kind": "s.kind",
        "end_time": f"make_timestamp({_to_ns('s.endTimeUnixNano')} // 1000)",
        "service_name": f"{attribute('rs.resource', 'service.name')}.stringValue",
        "service_instance_id": f"{attribute('rs.resource', 'service.instance.id')}.stringValue",
    }
    # CASE runs the cast only for integer-valued attributes; the filter only asks that some number is there
    numeric = "CASE WHEN a.value.doubleValue IS NOT NULL THEN a.value.doubleValue ELSE TRY_CAST(a.value.intValue AS DOUBLE) END"
    for column, _, _ in SPAN_COLUMNS:
        if column not in columns or column in ("file", "line", "start_time", "start_unix_nano"):
            continue
        if column in optional:
            fields.append(f"'{column}': {optional[column]}")
        elif column in _STRING_ATTRS:
            fields.append(f"'{column}': {value(_STRING_ATTRS[column])}.stringValue")
        elif column in _BOOL_ATTRS:
            key = _BOOL_ATTRS[column]
            fields.append(
                f"'{column}': coalesce({value(key)}.boolValue, lower({value(key)}.stringValue) = 'true')"
            )
        elif column == "scores":
            fields.append(
                f"""'scores': CASE WHEN s.attributes IS NULL THEN [] ELSE
    [{{'rubric': a.key[{len(prefix) + 1}:], 'score': {numeric}}}
     FOR a IN s.attributes IF {_score_filter(glob_pattern, prefix)}
       AND (a.value.doubleValue IS NOT NULL OR TRY_CAST(a.value.intValue AS DOUBLE) IS NOT NULL)] END"""
            )
    return "{" + ",\n    ".join(fields) + "}"


def _line_sql(
    lines_table: str,
    file_index: int,
    columns: set[str],
    glob_pattern: str,
    prefix: str,
    since_ns: int | None,
    until_ns: int | None,
    max_line: int,
    line_floor: int | None,
    validate_skipped: bool = False,
    line_ceiling: int | None = None,
) -> str:
    """Phase one of a load, for one file: one row per line (its problem, and the list of its spans' wanted
    columns), inserted in the file's order so that the row id gives the line number.

    All the work (JSON parsing, picking attributes, the time filter) happens here, in DuckDB's parallel scan
    of the file; the lists of spans are unnested afterwards (``load_spans``). With ``line_floor`` a regular
    expression on the raw line (no JSON parsing: about the cost of reading the line) finds the lines that hold
    a start time at or after the floor; only those are parsed, and the lines that hold no start time or do
    not look like one JSON object (so that they are named as malformed). A kept line that does not parse
    carries its latest start time (read with json_extract_string), so the load can report the latest start
    time on the lines kept. ``line_ceiling`` likewise keeps only the lines that also hold a start time before
    it. ``validate_skipped`` (strict loads) also parses, to name them, the lines that would be skipped but are
    not valid JSON (``json_valid``: a parse without building anything)."""
    keep, skipped, line_max = "TRUE", "", "NULL"
    doc = f"TRY(from_json(text, {_sql_literal(_request_structure(columns))}))"
    if line_floor is not None or line_ceiling is not None:
        in_period = []
        if line_floor is not None:
            in_period.append(f"regexp_matches(text, {_sql_literal(_at_or_after_regex(int(line_floor)))})")
        if line_ceiling is not None:
            in_period.append(f"regexp_matches(text, {_sql_literal(_before_regex(int(line_ceiling)))})")
        keep = (
            f"(({' AND '.join(in_period)}) "
            """OR NOT regexp_matches(text, '"startTimeUnixNano"') """
            "OR NOT (starts_with(text, '{') AND ends_with(text, '}'))"
            + (" OR NOT json_valid(text))" if validate_skipped else ")")
        )
        doc = f"CASE WHEN _keep THEN {doc} END"
        skipped = "WHEN NOT _keep THEN 'skipped'\n         "
        line_max = f"CASE WHEN doc IS NULL AND _keep THEN {_line_times_sql('list_max')} END"
    spans = f"""flatten(list_transform(doc.resourceSpans, lambda rs: flatten(list_transform(rs.scopeSpans,
  lambda ss: list_transform(ss.spans, lambda s: {_span_struct(columns, glob_pattern, prefix)})))))"""
    conditions = []
    if since_ns is not None:
        conditions.append(f"x.start_unix_nano >= {int(since_ns)}")
    if until_ns is not None:
        conditions.append(f"x.start_unix_nano < {int(until_ns)}")
    if conditions:  # spans out of the range are dropped; a broken span is kept, to name its line
        spans = f"list_filter({spans}, lambda x: x._problem IS NOT NULL OR ({' AND '.join(conditions)}))"
    # A CASE, not a filter, decides what is parsed (DuckDB would repeat a filter's test); trim() runs only on
    # the lines that failed to parse.
    return f"""
INSERT INTO {lines_table}
SELECT {int(file_index)} AS fi, problem, line_max, CASE WHEN problem IS NULL THEN {spans} END AS spans
FROM (
  SELECT doc, {line_max} AS line_max,
    CASE {skipped}WHEN doc IS NULL THEN (CASE WHEN text IS NULL OR trim(text) = '' THEN 'blank' ELSE 'not valid JSON' END)
         WHEN doc.resourceSpans IS NULL THEN 'not an OTLP trace export request (no resourceSpans array)'
    END AS problem
  FROM (SELECT text, {keep} AS _keep, {doc} AS doc FROM {_read_lines(max_line)})
)"""


def _numbered(table: str, columns: str, unread: str | None = None) -> str:
    """Rows of a phase-one table with their line numbers (``fi, line, <columns>``): rows were inserted per file
    in the file's order, so the k-th row of a file is its line k, but for the lines that could not be read
    (``unread``: a table of ``fi, adj``, see ``_unread_table``), which hold no row."""
    ranked = f"SELECT fi, rowid - min(rowid) OVER (PARTITION BY fi) + 1 AS k, {columns} FROM {table}"
    if unread is None:
        return f"(SELECT fi, k AS line, {columns} FROM ({ranked}))"
    shift = f"coalesce((SELECT count(*) FROM {unread} u WHERE u.fi = q.fi AND u.adj <= q.k), 0)"
    return f"(SELECT fi, k + {shift} AS line, {columns} FROM ({ranked}) q)"


def _unread_table(con: Any, name: str, unread: dict[int, list[tuple[int, str]]]) -> str | None:
    """A table of the lines that could not be read, for ``_numbered``: the k-th row read of a file is the k-th
    line number not among them, that is k plus the count of unread lines i (0-based, ascending) with
    ``line_i - i <= k``."""
    if not unread:
        return None
    values = [(fi, line - i) for fi, lines in unread.items() for i, (line, _) in enumerate(sorted(lines))]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (fi INTEGER, adj BIGINT)").fetchall()
    con.executemany(f"INSERT INTO {name} VALUES (?, ?)", values)
    return name


_UNREADABLE = {"INVALID ENCODING": "not valid UTF-8"}


def _insert_rejecting(con: Any, sql: str, path: str, table: str) -> list[tuple[int, str]]:
    """Run a phase-one INSERT again, DuckDB's CSV reader skipping the lines it cannot read and recording
    them; the (line, reason) of each (none when that did not help)."""
    import duckdb

    rejects, scans = _quote_ident(f"{table}__rejects"), _quote_ident(f"{table}__reject_scans")
    options = f", ignore_errors=true, store_rejects=true, rejects_table='{rejects}', rejects_scan='{scans}'"
    try:
        con.execute(sql.replace(_MORE_READ_OPTIONS, options), {"file": path}).fetchall()
        rows = con.execute(f"SELECT DISTINCT line, error_type FROM {rejects} ORDER BY line").fetchall()
    except duckdb.Error:
        return []
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}").fetchall()
        con.execute(f"DROP TABLE IF EXISTS {scans}").fetchall()
    reasons: dict[int, str] = {}
    for line, kind in rows:
        reasons.setdefault(int(line), _UNREADABLE.get(kind, f"unreadable line ({str(kind).lower()})"))
    return sorted(reasons.items())


@contextmanager
def _insertion_order(con: Any, keep: bool) -> Iterator[None]:
    """``preserve_insertion_order`` set for the queries inside, the connection's own setting back after."""
    (before,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0]
    con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}").fetchall()
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}").fetchall()


def _insert_lines(
    con: Any, files: Sequence[str], build: Callable[[int, int], str], table: str
) -> dict[int, list[tuple[int, str]]]:
    """Run ``build(file_index, max_line)`` (an INSERT over one file's lines) for each file, in the files'
    order with insertion order kept, first with small scan buffers, then with the large line limit. A file
    holding lines DuckDB cannot read (not UTF-8) is read again skipping them: returns file index -> those
    lines as (line number, reason)."""
    import duckdb

    unread: dict[int, list[tuple[int, str]]] = {}
    # A modest line limit keeps the scan's buffers small, so even a 100 MB file is read by every core; a
    # file with longer lines (a Collector batch of thousands of spans) is read again with the large limit.
    with _insertion_order(con, True):
        for index, path in enumerate(files):
            for max_line in (FAST_LINE_BYTES, MAX_LINE_BYTES):
                try:
                    sql = build(index, max_line)
                    con.execute(sql, {"file": path}).fetchall()
                    break
                except duckdb.IOException as exc:
                    raise MalformedSpanFile(f"cannot read span files: {_first_line(exc)}") from None
                except duckdb.Error as exc:  # a line longer than the limit, an undecodable file
                    text = str(exc)
                    if "maximum line size" in text.lower():
                        if max_line < MAX_LINE_BYTES:
                            continue
                        number = re.search(r"Error on Line: (\d+)", text)
                        raise MalformedSpanFile(
                            f"{path}:{number.group(1) if number else '?'}: "
                            f"a line longer than {MAX_LINE_BYTES // (1024 * 1024)} MB"
                        ) from None
                    if "CSV Error" in text:  # a line that is not UTF-8: read again, skipping such lines
                        found = _insert_rejecting(con, build(index, MAX_LINE_BYTES), path, table)
                        if found:
                            unread[index] = found
                            break
                    raise MalformedSpanFile(f"{path}: cannot read: {_first_line(exc)}") from None
    return unread


@dataclass(frozen=True)
class LineTimes:
    """The start-time range of the spans on each line, read without building any structure."""

    table: str  # temp table (file, line, min_ns, max_ns); NULL bounds for a line that is not JSON
    files: tuple[str, ...]
    min_ns: int | None  # over every span of every file
    max_ns: int | None


_START_TIMES_PATH = "$.resourceSpans[*].scopeSpans[*].spans[*].startTimeUnixNano"


def _start_times_sql() -> str:
    """A line's span start times as a list of BIGINT, read without building any structure."""
    return f"list_transform(TRY(json_extract_string(text, '{_START_TIMES_PATH}')), lambda x: TRY_CAST(x AS BIGINT))"


def _line_times_sql(agg: str) -> str:
    """``agg`` (list_min, list_max) of a line's span start times."""
    return f"{agg}({_start_times_sql()})"


def scan_line_times(con: Any, paths: Sequence[str | os.PathLike[str]], *, table: str = "spans") -> LineTimes:
    """One pass over the files that reads only the spans' start times (``json_extract_string`` of one path:
    no structure is built), per line: the exact time range of the files, e.g. to choose a ``since`` for
    ``load_spans(..., skip_lines_before=)`` when the files are not in time order."""
    files = expand_paths(paths)
    name = _quote_ident(f"{table}__lines")
    staging = _quote_ident(f"{table}__line_rows")
    unread_name = _quote_ident(f"{table}__unread")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {staging} (fi INTEGER, min_ns BIGINT, max_ns BIGINT)"
    ).fetchall()
    try:
        unread = _insert_lines(
            con,
            files,
            lambda index, max_line: (
                f"""
INSERT INTO {staging}
SELECT {int(index)}, list_min(ts), list_max(ts) FROM (
  SELECT {_start_times_sql()} AS ts
  FROM {_read_lines(max_line)})"""
            ),
            table,
        )
        skipped = _unread_table(con, unread_name, unread)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT $files[fi + 1] AS file, line, min_ns, max_ns "
            f"FROM {_numbered(staging, 'min_ns, max_ns', skipped)}",
            {"files": files},
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {staging}").fetchall()
        con.execute(f"DROP TABLE IF EXISTS {unread_name}").fetchall()
    lo, hi = con.execute(f"SELECT min(min_ns), max(max_ns) FROM {name}").fetchall()[0]
    return LineTimes(name, tuple(files), None if lo is None else int(lo), None if hi is None else int(hi))


def _nanos(moment: datetime | int | None) -> int | None:
    if moment is None or isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


def load_spans(
    con: Any,
    paths: Sequence[str | os.PathLike[str]],
    *,
    table: str = "spans",
    strict: bool = False,
    score_pattern: str = DEFAULT_SCORE_PATTERN,
    since: datetime | int | None = None,
    until: datetime | int | None = None,
    columns: Iterable[str] | None = None,
    skip_lines_before: int | None = None,
    skip_lines_from: int | None = None,
    max_reported: int = 20,
) -> SpanLoad:
    """Read span files (paths or globs) into the DuckDB temp table ``table`` on ``con``.

    Also creates the view ``<table>_scores`` (one row per span and rubric). ``since``/``until`` (UTC
    datetimes or Unix nanoseconds) keep only spans starting in ``[since, until)``; the filter runs inside the
    scan. Malformed lines are skipped and counted (the first ``max_reported`` named in
    ``SpanLoad.malformed``); with ``strict=True`` the first one raises ``MalformedSpanFile`` and no table is
    left behind. Raises ``NoSpanFiles`` when a path or glob matches nothing.

    ``columns`` (default: all of ``SPAN_COLUMNS``) names the columns to build; ``file``, ``line``,
    ``trace_id``, ``span_id``, ``start_time`` and ``start_unix_nano`` are always there. Asking for fewer
    (``parent_span_id``, ``name``, ``kind``, ``end_time``, the ``service_*`` resource columns) makes the
    JSON parse cheaper: drift reads only what it aggregates.

    ``skip_lines_before`` (Unix nanoseconds) parses only the lines holding a span that starts at or after it
    (and the lines that are not JSON, to name them), found with a regular expression on the raw line in the
    same scan. ``SpanLoad.lines_max_ns`` is then the latest start time on the lines parsed (what
    ``scan_line_times`` would give as ``max_ns`` when it is at or after the floor). A line skipped so is
    not checked: one that looks like a whole JSON object (``{...}``) but is broken inside, holding only
    earlier start times, is not named, unless ``strict=True``, which checks every skipped line with
    ``json_valid`` (about 0.4 s per GB on two cores). ``skip_lines_from`` likewise parses only the lines
    holding a span that starts before it (with ``skip_lines_before``: a start on each side of both bounds,
    which a line holding a start in the period has).
    """

    known = [c for c, _, _ in SPAN_COLUMNS]
    wanted = set(known) if columns is None else {*ALWAYS_COLUMNS, *columns}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UsageError(f"unknown span column(s): {', '.join(unknown)}; known: {', '.join(known)}")
    name = _quote_ident(table)
    reserved = con.execute(
        "SELECT count(*) FROM duckdb_keywords() WHERE keyword_category = 'reserved' AND keyword_name = lower(?)",
        [name],
    ).fetchall()[0][0]
    if reserved:
        raise UsageError(f"invalid table name {table!r}: a reserved SQL word")
    raw = _quote_ident(f"{table}__raw")
    lines = _quote_ident(f"{table}__line_rows")
    scores_view = _quote_ident(f"{table}_scores")
    glob_pattern, prefix = score_glob(score_pattern)
    files = expand_paths(paths)
    since_ns, until_ns = _nanos(since), _nanos(until)
    present = [col for col in known if col in wanted]
    span_type = ", ".join(  # the order _span_struct builds them in
        f"{col} {sql_type}" for col, sql_type, _ in SPAN_COLUMNS
        if col in wanted and col not in ("file", "line", "start_time", "start_unix_nano")
    )  # fmt: skip
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {lines} (fi INTEGER, problem VARCHAR, line_max BIGINT, "
        f"spans STRUCT(_problem VARCHAR, start_unix_nano BIGINT, {span_type})[])"
    ).fetchall()
    unread_name = _quote_ident(f"{table}__unread")
    try:
        unread = _insert_lines(
            con,
            files,
            lambda index, max_line: _line_sql(
                lines,
                index,
                wanted,
                glob_pattern,
                prefix,
                since_ns,
                until_ns,
                max_line,
                skip_lines_before,
                strict,
                skip_lines_from,
            ),
            table,
        )
        skipped = _unread_table(con, unread_name, unread)
        span_cols = [
            "make_timestamp(x.start_unix_nano // 1000) AS start_time" if col == "start_time" else f"x.{col} AS {col}"
            for col in present if col not in ("file", "line")
        ]  # fmt: skip
        # the table keeps file and line: phase two need not keep the rows' order (faster, less memory)
        with _insertion_order(con, False):
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {raw} AS
SELECT $files[fi + 1] AS file, line, x._problem AS _problem, {", ".join(span_cols)}
FROM (SELECT fi, line, UNNEST(spans) AS x FROM {_numbered(lines, "spans", skipped)} WHERE spans IS NOT NULL)""",
                {"files": files},
            ).fetchall()

        lines_max = None
        if skip_lines_before is not None:
            (lines_max,) = con.execute(
                f"SELECT greatest((SELECT max(line_max) FROM {lines}), (SELECT max(start_unix_nano) FROM {raw}))"
            ).fetchall()[0]
        unread_rows = [(fi, line, reason) for fi, found in unread.items() for line, reason in found]
        line_count, parsed = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE problem IS NULL OR problem NOT IN ('blank', 'skipped')) "
            f"FROM {lines}"
        ).fetchall()[0]
        rows = con.execute(
            f"""SELECT fi, line, min(problem) FROM (
  SELECT fi, line, problem FROM {_numbered(lines, "problem", skipped)}
  WHERE problem IS NOT NULL AND problem NOT IN ('blank', 'skipped')
  UNION ALL
  SELECT list_position($files, file) - 1, line, _problem FROM {raw} WHERE _problem IS NOT NULL)
GROUP BY fi, line ORDER BY fi, line""",
            {"files": files},
        ).fetchall()
        rows = sorted(rows + unread_rows)  # an unread line holds no row of the table: never both
        line_count += len(unread_rows)
    except BaseException:
        con.execute(f"DROP TABLE IF EXISTS {raw}").fetchall()
        raise
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines}").fetchall()
        con.execute(f"DROP TABLE IF EXISTS {unread_name}").fetchall()
    bad_count = len(rows)
    malformed = [MalformedLine(files[fi], int(n), reason) for fi, n, reason in rows[:max_reported]]
    if rows:
        if strict:
            con.execute(f"DROP TABLE IF EXISTS {raw}").fetchall()
            more = (
                f" ({bad_count - 1} more malformed line{'s' if bad_count > 2 else ''})"
                if bad_count > 1
                else ""
            )
            raise MalformedSpanFile(f"{malformed[0]}{more}")
        con.execute(
            f"DELETE FROM {raw} WHERE (file, line) IN (SELECT DISTINCT file, line FROM {raw} WHERE _problem IS NOT NULL)"
        ).fetchall()

    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(present)} FROM {raw}").fetchall()
    if "scores" in wanted:
        span_cols_view = ", ".join(col for col in present if col != "scores")
        # UNNEST in the select list: a span without scores gives no row (2.5x faster than a lateral join)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {scores_view} AS "
            f"SELECT {span_cols_view}, sc.rubric AS rubric, sc.score AS score "
            f"FROM (SELECT {span_cols_view}, UNNEST(scores) AS sc FROM {raw})"
        ).fetchall()
    without = "count(*) FILTER (WHERE prompt_version IS NULL)" if "prompt_version" in wanted else "0"
    spans, without_version = con.execute(f"SELECT count(*), {without} FROM {raw}").fetchall()[0]
    return SpanLoad(
        table=name,
        scores=scores_view if "scores" in wanted else "",
        files=tuple(files),
        spans=int(spans),
        spans_without_version=int(without_version),
        malformed_lines=bad_count,
        malformed=tuple(malformed),
        score_pattern=score_pattern,
        since_ns=since_ns,
        until_ns=until_ns,
        lines_max_ns=None if lines_max is None else int(lines_max),
        lines=int(line_count),
        lines_parsed=int(parsed),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""Where the drift SQL runs: DuckDB over span files, or ClickHouse over the Collector's ``otel_traces``.

Both engines expose the same *source* relation to ``promptctl.drift.analysis`` (columns ``prompt_id, version,
t_us, rubric, score`` and one per ``--by`` dimension), so the analysis is one piece of SQL for both.

ClickHouse is reached over its HTTP interface (``urllib``, no driver); the table is the one the OpenTelemetry
Collector's ClickHouse exporter creates (``Timestamp DateTime64(9)``, ``SpanAttributes Map(LowCardinality(String),
String)``, ``ServiceName``...), where every attribute value is a string.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import EnvironmentProblem, NotFound, Unreachable, UsageError
from ..spans.reader import score_glob
from .analysis import SLICES

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class DuckDBEngine:
    """The scores view that ``promptctl.spans.load_spans`` made, on a DuckDB connection.

    On first use the view is flattened once into a temp table holding just the analysis' columns (the
    prompt spans with a score, one row per rubric), so each of the analysis' queries is a plain scan.
    """

    name = "duckdb"

    def __init__(self, con: Any, scores_view: str):
        self.con = con
        self.scores_view = scores_view
        self._flat: str | None = None
        self._dims: set[str] = set()

    def literal(self, text: str) -> str:
        return "'" + str(text).replace("'", "''") + "'"

    def _flatten(self) -> str:
        if self._flat is None:
            present = {row[0] for row in self.con.execute(f"DESCRIBE {self.scores_view}").fetchall()}
            cols = [
                "prompt_id",
                "prompt_version AS version",
                "start_unix_nano // 1000 AS t_us",
                "rubric",
                "score",
            ]
            for dim, (_, column) in SLICES.items():
                if column not in present:
                    continue
                self._dims.add(dim)
                if dim == "fallback":
                    cols.append(
                        f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN 'true' ELSE 'false' END AS {dim}"
                    )
                else:
                    cols.append(f"{column} AS {dim}")
            self._flat = f"{self.scores_view}__flat"
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {self._flat} AS SELECT {', '.join(cols)} FROM {self.scores_view} "
                "WHERE prompt_id IS NOT NULL AND prompt_version IS NOT NULL AND score IS NOT NULL"
            ).fetchall()
        return self._flat

    def source(
        self, lo_us: int | None, hi_us: int | None, dims: Sequence[str], prompt_ids: Sequence[str]
    ) -> str:
        flat = self._flatten()
        missing = [d for d in dims if d not in self._dims]
        if missing:
            raise UsageError(f"the loaded spans have no column for --by {','.join(missing)}")
        where = ["TRUE"]
        if lo_us is not None:
            where.append(f"t_us >= {int(lo_us)}")
        if hi_us is not None:
            where.append(f"t_us <= {int(hi_us)}")
        if prompt_ids:
            where.append(f"prompt_id IN ({', '.join(self.literal(p) for p in prompt_ids)})")
        cols = ", ".join(["prompt_id", "version", "t_us", "rubric", "score", *dims])
        return f"SELECT {cols} FROM {flat} WHERE {' AND '.join(where)}"

    def query(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()


def _like_from_glob(pattern: str) -> str:
    out = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


class ClickHouseEngine:
    """SQL pushed down to ClickHouse over an ``otel_traces`` table; ``transport(sql) -> JSONCompact dict``."""

    name = "clickhouse"

    def __init__(
        self,
        transport: Callable[[str], dict],
        table: str = "otel_traces",
        score_pattern: str = "eval.score.*",
    ):
        if not _TABLE.fullmatch(table or ""):
            raise UsageError(f"invalid --table {table!r}: use a table name or database.table")
        self.transport = transport
        self.table = table
        self.glob, self.prefix = score_glob(score_pattern)

    def literal(self, text: str) -> str:
        return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"

    def _attr(self, key: str) -> str:
        return f"nullIf(SpanAttributes[{self.literal(key)}], '')"

    def source(
        self, lo_us: int | None, hi_us: int | None, dims: Sequence[str], prompt_ids: Sequence[str]
    ) -> str:
        cols = [
            f"{self._attr('prompt.id')} AS prompt_id",
            f"{self._attr('prompt.version')} AS version",
            "toUnixTimestamp64Micro(Timestamp) AS t_us",
            f"substring(score_key, {len(self.prefix) + 1}) AS rubric",
            "toFloat64OrNull(SpanAttributes[score_key]) AS score",
        ]
        for dim in dims:
            if dim == "service":
                cols.append(f"nullIf(ServiceName, '') AS {dim}")
            else:
                cols.append(f"{self._attr(SLICES[dim][0])} AS {dim}")
        where = ["prompt_id IS NOT NULL", "version IS NOT NULL", "score IS NOT NULL"]
        if lo_us is not None:
            where.append(f"Timestamp >= fromUnixTimestamp64Micro(toInt64({int(lo_us)}))")
        if hi_us is not None:
            where.append(f"Timestamp < fromUnixTimestamp64Micro(toInt64({int(hi_us) + 1}))")
        if prompt_ids:
            where.append(f"prompt_id IN ({', '.join(self.literal(p) for p in prompt_ids)})")
        like = self.literal(_like_from_glob(self.glob))
        return (
            f"SELECT {', '.join(cols)} FROM {self.table} "
            f"ARRAY JOIN arrayFilter(k -> k LIKE {like}, mapKeys(SpanAttributes)) AS score_key "
            f"WHERE {' AND '.join(where)}"
        )

    def query(self, sql: str) -> list[tuple]:
        result = self.transport(sql)
        return [tuple(row) for row in result.get("data", [])]


class ClickHouseError(EnvironmentProblem):
    """ClickHouse answered with an error (other than a missing table, which is NotFound)."""


def _raise_for_clickhouse(text: str, where: str) -> None:
    first = next((line.strip() for line in text.strip().splitlines() if line.strip()), "no message")
    first = re.sub(r"\s*\(version [^)]*\)\s*$", "", first)[:400]
    code = re.search(r"Code:\s*(\d+)", first)
    if code and code.group(1) in ("60", "81"):  # UNKNOWN_TABLE, UNKNOWN_DATABASE
        raise NotFound(f"ClickHouse at {where}: {first}")
    raise ClickHouseError(f"ClickHouse at {where} failed: {first}")


def http_transport(url: str, timeout: float = 60.0) -> Callable[[str], dict]:
    """POST each query to ClickHouse's HTTP interface; user:password in the URL become ClickHouse headers."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"invalid --clickhouse {url!r}: use http://host:8123 (or https://...)")
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if parsed.username:
        headers["X-ClickHouse-User"] = urllib.parse.unquote(parsed.username)
        headers["X-ClickHouse-Key"] = urllib.parse.unquote(parsed.password or "")
    netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
    where = urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path or "/", "", ""))
    query = urllib.parse.parse_qs(parsed.query)
    query.update(
        {"output_format_json_quote_64bit_integers": ["0"], "output_format_json_quote_denormals": ["1"]}
    )
    endpoint = where + "?" + urllib.parse.urlencode(query, doseq=True)

    def transport(sql: str) -> dict:
        request = urllib.request.Request(
            endpoint, data=(sql + "\nFORMAT JSONCompact").encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            _raise_for_clickhouse(exc.read().decode("utf-8", "replace"), where)
            raise  # unreachable: _raise_for_clickhouse always raises
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"ClickHouse at {where} is unreachable: {reason}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise ClickHouseError(f"ClickHouse at {where} sent an answer that is not JSON") from None

    return transport


def chdb_transport(session: Any) -> Callable[[str], dict]:
    """Run the queries on an in-process ClickHouse (a ``chdb.session.Session``): tests and local tables."""

    def transport(sql: str) -> dict:
        try:
            result = session.query(sql, "JSONCompact")
        except Exception as exc:  # chdb raises a plain RuntimeError carrying ClickHouse's message
            _raise_for_clickhouse(str(exc), "chdb")
            raise
        data = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return json.loads(data) if data.strip() else {"data": []}

    return transport


_START_TIME = re.compile(rb'"startTimeUnixNano"\s*:\s*"?(\d{1,19})')
_TAIL_BYTES = 1024 * 1024


def _tail_start_ns(files: Sequence[str]) -> int | None:
    """The latest start time written in the last megabyte of the files: a guess at the latest span (files are
    appended in time order), checked against what the load then reads."""
    latest = None
    for path in files:
        try:
            with open(path, "rb") as handle:
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - _TAIL_BYTES))
                tail = handle.read()
        except OSError:
            return None
        for match in _START_TIME.finditer(tail):
            value = int(match.group(1))
            latest = value if latest is None else max(latest, value)
    return latest


def load_for_drift(
    con: Any,
    files: Sequence[str],
    options: Any,
    *,
    score_pattern: str = "eval.score.*",
    strict: bool = False,
    whole_range: bool = False,
) -> tuple[Any, DuckDBEngine]:
    """Load span files for a drift run, parsing only what the analysis can use.

    With a duration baseline the analysis looks at ``(now - window - baseline, now]`` only, so only the lines
    that reach into that period are parsed: a regular expression on each raw line, in the same parallel scan
    that reads it, tells whether the line holds a start time at or after the period's start (the time
    filter pushed into the scan). ``whole_range`` (the plot, the ``previous`` baseline) loads everything.
    Returns the ``SpanLoad`` and the engine.

    The period's end is first guessed from the files' tails (the Collector appends in time order). When the
    latest start time on the lines parsed is the guess, it was the files' latest (every line skipped ends
    before it): the load is exact. With ``--until`` before the guess, the period ends at ``--until`` and the
    lines wholly after it are skipped as well. Otherwise a first pass reads every line's start times
    (``scan_line_times``) for the true end, and the load runs again from it.
    """
    from promptctl.spans.reader import expand_paths, load_spans, scan_line_times

    from .analysis import SLICES, US, latest_us, to_us

    files = expand_paths(files)  # globbed once: each load below reads the same list
    columns = ["prompt_id", "prompt_version", "scores", *(SLICES[d][1] for d in options.by)]

    def full():
        load = load_spans(
            con, files, table="drift_spans", strict=strict, score_pattern=score_pattern, columns=columns
        )
        return load, DuckDBEngine(con, load.scores)

    if whole_range or options.baseline.mode != "duration":
        return full()
    span_us = int((options.window_s + options.baseline.seconds) * US)
    # one window of slack: the last span is often an unscored one (an HTTP root) a little after the last score
    slack_us = int(options.window_s * US)
    until_ns = None if options.until is None else (to_us(options.until) + 1) * 1000

    def load_period(end_us: int, *, exact_end: bool):
        """Parse the lines reaching into the period ending at ``end_us``: when that end is known
        (``exact_end``), the lines wholly after --until are skipped too."""
        since_ns = (end_us - span_us - slack_us) * 1000
        load = load_spans(con, files, table="drift_spans", strict=strict, score_pattern=score_pattern,
                          columns=columns, since=since_ns, until=until_ns, skip_lines_before=since_ns,
                          skip_lines_from=until_ns if exact_end else None)  # fmt: skip
        return load, DuckDBEngine(con, load.scores), since_ns // 1000

    def checked(load, engine, since_us):
        now = latest_us(engine, options)
        if now is None or now - span_us < since_us:
            return full()  # the last scored span is older than the last span: the period starts earlier
        return load, engine

    guess = _tail_start_ns(files)
    if guess is not None:
        if until_ns is not None and guess >= until_ns:
            # the files reach past --until (their tail does): the period ends there, whatever their true end
            return checked(*load_period(to_us(options.until), exact_end=True))
        load, engine, since_us = load_period(guess // 1000, exact_end=False)
        if load.lines_max_ns == guess:
            return checked(load, engine, since_us)
    times = scan_line_times(con, files, table="drift_spans")
    if times.max_ns is None:
        return full()
    end_us = times.max_ns // 1000 if options.until is None else min(times.max_ns // 1000, to_us(options.until))
    return checked(*load_period(end_us, exact_end=True))

"""Generate big, realistic OTLP/JSON span files (the Collector file exporter's format) with DuckDB.

Production-like traffic for one prompt over ``days`` days: ``versions`` released one after another, each
starting as a 10% canary for ``canary_hours`` and then taking all traffic; 6 slices (tier x locale); three
eval rubrics as ``eval.score.<rubric>`` attributes; one span in 25 is an HTTP span with no prompt
attributes. One drift is planted: on the newest version, slice enterprise/de, rubric ``cited`` drops by
``drift_drop`` over the last ``drift_hours``. Spans are batched ``spans_per_line`` per export request
(one line), like the Collector's batch processor. Everything is derived from hashes of the span number,
so a file is reproducible from its parameters; files are cached under ``benchmarks/.work/``.

    python benchmarks/gen_spans.py --spans 1000000          # prints the cached file's path

Reused by the provenance benchmark: ``generate(...)`` returns a ``SpanFile`` whose ``timeline`` says what
production served when, and ``template_hashes`` can be the real hashes of a real repository's versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"
START = datetime(2026, 11, 14, tzinfo=timezone.utc)
TIERS = ("free", "pro", "enterprise")
LOCALES = ("en", "de")
RUBRICS = ("exact_match", "cited", "tone")
# mean score per rubric for v1..vN (index clipped to the last entry)
MEANS = {
    "exact_match": (0.90, 0.91, 0.92, 0.92, 0.93),
    "cited": (0.80, 0.82, 0.83, 0.85, 0.85),
    "tone": (0.70, 0.72, 0.72, 0.74, 0.75),
}


@dataclass(frozen=True)
class Release:
    version: str
    released_at: datetime  # canary starts (10% of traffic)
    full_at: datetime  # 100% of traffic


@dataclass
class SpanFile:
    path: Path
    spans: int
    prompt_spans: int
    lines: int
    start: datetime
    end: datetime
    prompt_id: str
    channel: str
    timeline: list[Release]
    template_hashes: dict[str, str]
    drift: dict = field(default_factory=dict)


def _default_hash(prompt_id: str, version: str) -> str:
    return hashlib.sha256(f"{prompt_id}\0{version}".encode()).hexdigest()[:12]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def generate(
    path: str | os.PathLike[str] | None = None,
    *,
    spans: int = 1_000_000,
    days: float = 7.0,
    versions: int = 5,
    prompt_id: str = "support_intent_classifier",
    channel: str = "production",
    template_hashes: dict[str, str] | None = None,
    spans_per_line: int = 512,
    canary_hours: float = 2.0,
    drift_drop: float = 0.15,
    drift_hours: float = 12.0,
    seed: int = 7,
    force: bool = False,
) -> SpanFile:
    """Write (or reuse) the span file and describe what is in it."""
    names = [f"v{n}" for n in range(1, versions + 1)]
    hashes = {v: (template_hashes or {}).get(v) or _default_hash(prompt_id, v) for v in names}
    params = dict(spans=spans, days=days, versions=versions, prompt_id=prompt_id, channel=channel,
                  hashes=hashes, spans_per_line=spans_per_line, canary_hours=canary_hours,
                  drift_drop=drift_drop, drift_hours=drift_hours, seed=seed, format=3)  # fmt: skip
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    if path is None:
        path = WORK / f"spans-{spans}-{key}.jsonl"
    path = Path(path)

    span_ns = int(days * 86400e9) // spans
    start_ns = int(START.timestamp()) * 10**9
    release_ns = [int(k * days * 86400e9 / versions) for k in range(versions)]
    canary_ns = int(canary_hours * 3600e9)
    timeline = [
        Release(
            v,
            START + timedelta(microseconds=r / 1000),
            START + timedelta(microseconds=(r + canary_ns) / 1000),
        )
        for v, r in zip(names, release_ns, strict=True)
    ]
    end = START + timedelta(microseconds=spans * span_ns / 1000)
    drift_from_ns = spans * span_ns - int(drift_hours * 3600e9)
    info = SpanFile(path=path, spans=spans, prompt_spans=spans - spans // 25, lines=-(-spans // spans_per_line),
                    start=START, end=end, prompt_id=prompt_id, channel=channel, timeline=timeline,
                    template_hashes=hashes,
                    drift=dict(version=names[-1], tier="enterprise", locale="de", rubric="cited",
                               drop=drift_drop, since=START + timedelta(microseconds=drift_from_ns / 1000)))  # fmt: skip
    if path.exists() and not force:
        return info

    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    # version served at offset t: the newest released version whose canary covers the bucket, else the one before
    version_case = "CASE " + " ".join(
        f"WHEN t >= {r + canary_ns} OR (t >= {r} AND bucket < 10) THEN {k + 1}"
        for k, r in reversed(list(enumerate(release_ns)))
    ) + " ELSE 1 END"  # fmt: skip
    versions_list = "[" + ", ".join(_sql_str(v) for v in names) + "]"
    hashes_list = "[" + ", ".join(_sql_str(hashes[v]) for v in names) + "]"

    def means(rubric: str) -> str:
        values = [MEANS[rubric][min(k, len(MEANS[rubric]) - 1)] for k in range(versions)]
        return "[" + ", ".join(repr(v) for v in values) + "]"

    def u(tag: str) -> str:  # a uniform number in [0, 1) from the span number
        return f"(hash(i, {seed}, '{tag}') % 1000000) / 1000000.0"

    def attr(key: str, kind: str, value: str) -> str:
        # JSON built as text: every value here is a number, a bool or a string without quotes or escapes
        if kind in ("stringValue", "intValue"):
            value = f"""'"' || {value} || '"'"""
        elif kind == "boolValue":
            value = f"CASE WHEN {value} THEN 'true' ELSE 'false' END"
        else:
            value = f"CAST({value} AS VARCHAR)"
        return f"""'{{"key":"{key}","value":{{"{kind}":' || {value} || '}}}}'"""

    def attrs(items: list[str]) -> str:
        return " || ',' || ".join(items)

    score = {
        "exact_match": f"CASE WHEN {u('em')} < p_em THEN 1.0 ELSE 0.0 END",
        "cited": f"round(greatest(0.0, least(1.0, p_cited + ({u('ci')} - 0.5) * 0.5)), 3)",
        "tone": f"round(greatest(0.0, least(1.0, p_tone + ({u('to')} - 0.5) * 0.4)) * 4) / 4",
    }
    prompt_attrs = attrs(
        [
            attr("prompt.id", "stringValue", _sql_str(prompt_id)),
            attr("prompt.version", "stringValue", "version"),
            attr("prompt.template_hash", "stringValue", "template_hash"),
            attr("prompt.channel", "stringValue", _sql_str(channel)),
            attr("prompt.locale", "stringValue", "locale"),
            attr("prompt.tier", "stringValue", "tier"),
            attr("prompt.condition.fallback", "boolValue", "locale = 'de' AND tier = 'free'"),
            attr("gen_ai.request.model", "stringValue", "'gpt-4o-mini'"),
            attr("gen_ai.usage.input_tokens", "intValue", "CAST(200 + hash(i, 'tok') % 800 AS VARCHAR)"),
            *(attr(f"eval.score.{r}", "doubleValue", score[r]) for r in RUBRICS),
        ]
    )
    http_attrs = attrs(
        [
            attr("http.request.method", "stringValue", "'POST'"),
            attr("http.route", "stringValue", "'/classify'"),
            attr("http.response.status_code", "intValue", "'200'"),
        ]  # fmt: skip
    )
    resource_attrs = attrs(
        [
            attr("service.name", "stringValue", "'support-api'"),
            attr("service.instance.id", "stringValue", "'pod-' || CAST(line % 7 AS VARCHAR)"),
            attr("telemetry.sdk.language", "stringValue", "'python'"),
            attr("telemetry.sdk.name", "stringValue", "'opentelemetry'"),
            attr("telemetry.sdk.version", "stringValue", "'1.45.2'"),
        ]  # fmt: skip
    )
    query = f"""
      WITH base AS (
        SELECT i, i // {spans_per_line} AS line, i * {span_ns} + hash(i, 'j') % {span_ns} AS t,
               hash(i, {seed}, 'bucket') % 100 AS bucket, i % 25 = 24 AS is_http,
               ['free', 'pro', 'enterprise'][1 + (hash(i, {seed}, 'tier') % 3)::BIGINT] AS tier,
               ['en', 'de'][1 + (hash(i, {seed}, 'locale') % 2)::BIGINT] AS locale
        FROM range($lo, $hi) r(i)
      ), versioned AS (
        SELECT *, {version_case} AS vn FROM base
      ), scored AS (
        SELECT *, {versions_list}[vn] AS version, {hashes_list}[vn] AS template_hash,
               {means("exact_match")}[vn] AS p_em,
               {means("cited")}[vn] - CASE WHEN vn = {versions} AND tier = 'enterprise' AND locale = 'de'
                                             AND t >= {drift_from_ns} THEN {drift_drop} ELSE 0 END AS p_cited,
               {means("tone")}[vn] AS p_tone
        FROM versioned
      ), spans AS (
        SELECT line, i,
          '{{"traceId":"' || md5(concat('t', i // 2, {seed})) ||
          '","spanId":"' || substr(md5(concat('s', i, {seed})), 1, 16) ||
          '","name":"' || CASE WHEN is_http THEN 'POST /classify' ELSE 'chat gpt-4o-mini' END ||
          '","kind":' || CASE WHEN is_http THEN '2' ELSE '3' END ||
          ',"startTimeUnixNano":"' || CAST({start_ns} + t AS VARCHAR) ||
          '","endTimeUnixNano":"' || CAST({start_ns} + t + 150000000 + hash(i, 'd') % 900000000 AS VARCHAR) ||
          '","attributes":[' || CASE WHEN is_http THEN {http_attrs} ELSE {prompt_attrs} END ||
          '],"status":{{}}}}' AS span
        FROM scored
      )
      SELECT line, '{{"resourceSpans":[{{"resource":{{"attributes":[' || {resource_attrs} ||
             ']}},"scopeSpans":[{{"scope":{{"name":"promptctl","version":"0.1.0"}},"spans":[' ||
             string_agg(span, ',' ORDER BY i) || ']}}]}}]}}' AS text
      FROM spans GROUP BY line ORDER BY line
    """
    tmp = Path(str(path) + ".tmp")
    chunk = spans_per_line * max(1, 100_000 // spans_per_line)
    with open(tmp, "w", encoding="utf-8") as out:
        for lo in range(0, spans, chunk):
            rows = con.execute(query, {"lo": lo, "hi": min(spans, lo + chunk)}).fetchall()
            out.write("".join(text + "\n" for _, text in rows))
    os.replace(tmp, path)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--spans-per-line", type=int, default=512)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    info = generate(args.out, spans=args.spans, days=args.days, versions=args.versions,
                    spans_per_line=args.spans_per_line, force=args.force)  # fmt: skip
    took = time.perf_counter() - began
    size = info.path.stat().st_size / 1e6
    print(f"{info.path}  {info.spans:,} spans, {info.lines:,} lines, {size:,.0f} MB  ({took:.1f} s)")
    print(
        json.dumps({k: v for k, v in asdict(info).items() if k in ("drift", "template_hashes")}, default=str)
    )


if __name__ == "__main__":
    main()

"""``conform``: did each channel serve what the registry said, when it said it?

Every span with ``prompt.*`` attributes is put in exactly one kind:

* **ok**: its ``(prompt.version, prompt.template_hash)`` pair is a released version, and the span's channel
  served that version at the span's start time, or stopped serving it no more than ``grace`` earlier;
* **stale**: a released version the channel had moved away from more than ``grace`` before the span started;
* **unregistered**: the version's recorded hash differs from the span's, the version or prompt does not exist,
  or the span carries no hash: content the registry never released;
* **unserved**: a released version the channel had not served by then (a span before the channel's first
  move, or ahead of the promote that made it serve that version);
* **no_prompt**: a span with no ``prompt.id`` (counted and reported, never dropped).

Spans are read by the shared reader (``promptctl.spans``) into DuckDB. The registry's versions and the audit
log are two small tables (versions, and service windows per prompt, channel and version); one query over the
spans classifies and aggregates them: no Python loop over spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import UsageError
from ..model import AuditEntry, serves_text
from ..registry import PromptRepo
from ..spec import duration_seconds
from .blame import channel_histories, format_moment, timeline

KINDS = ("ok", "stale", "unregistered", "unserved")
PROBLEM_KINDS = ("stale", "unregistered", "unserved")
EXAMPLES = 3
NS = 1_000_000_000
FOREVER = 2**63 - 1


def default_grace() -> float:
    """The runtime loader's default TTL: how long a well-behaved process may keep serving after a move."""
    try:
        import inspect

        from ..runtime.loader import Registry

        return float(inspect.signature(Registry.__init__).parameters["ttl"].default)
    except (ImportError, KeyError, TypeError, ValueError):
        return 5.0


def parse_duration(text: str) -> float:
    """'30s', '500ms', '2m', '1h', '1.5s' or plain seconds ('30') -> seconds. UsageError otherwise."""
    seconds = duration_seconds(text, bare_seconds=True)
    if seconds is None:
        raise UsageError(f"invalid duration {text!r}: use seconds or a unit, e.g. 5s, 500ms, 2m, 1h")
    return seconds


# -- the audit log as service windows ---------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """A period in which a channel served a version, and the move that ended it (None: still serving)."""

    prompt_id: str
    channel: str
    version: str
    start_ns: int
    end_ns: int | None
    started_by: AuditEntry
    ended_by: AuditEntry | None


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def service_windows(histories: dict[tuple[str, str], list[AuditEntry]], grace_ns: int) -> list[Window]:
    """Per prompt, channel and version, the periods it was served, merged when the gap between two periods
    is within the grace (so the ok windows ``[start, end + grace]`` of one version never overlap)."""
    windows: list[Window] = []
    for (prompt_id, channel), entries in sorted(histories.items()):
        moves = timeline(entries)
        open_windows: dict[str, Window] = {}
        for moment, entry in moves:
            now = _ns(moment)
            serving = {s.version for s in entry.serves}
            for version in list(open_windows):
                if version not in serving:
                    done = open_windows.pop(version)
                    windows.append(Window(prompt_id, channel, version, done.start_ns, now, done.started_by, entry))
            for version in sorted(serving):
                if version not in open_windows:
                    open_windows[version] = Window(prompt_id, channel, version, now, None, entry, None)
        windows.extend(open_windows.values())
    windows.sort(key=lambda w: (w.prompt_id, w.channel, w.version, w.start_ns))
    merged: list[Window] = []
    for window in windows:
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last.prompt_id, last.channel, last.version) == (window.prompt_id, window.channel, window.version)
            and last.end_ns is not None
            and window.start_ns <= last.end_ns + grace_ns
        ):
            merged[-1] = Window(
                last.prompt_id, last.channel, last.version, last.start_ns, window.end_ns, last.started_by, window.ended_by
            )
        else:
            merged.append(window)
    return merged


# -- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpanRef:
    trace_id: str
    span_id: str
    start_time: str
    file: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "start_time": self.start_time,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class Finding:
    """Spans of one kind for one prompt, channel, version and served hash, with a few examples."""

    kind: str
    prompt_id: str
    channel: str | None
    version: str | None
    template_hash: str | None
    count: int
    first_seen: str
    last_seen: str
    examples: tuple[SpanRef, ...]
    detail: str
    loader_stale: int = 0  # spans that carried prompt.stale: the loader knew it could not re-read the registry

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.prompt_id,
            "channel": self.channel,
            "version": self.version,
            "template_hash": self.template_hash,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "detail": self.detail,
            "loader_stale": self.loader_stale,
            "examples": [e.to_json() for e in self.examples],
        }


@dataclass(frozen=True)
class Row:
    """Counts for one prompt, channel and version (as the spans named them)."""

    prompt_id: str
    channel: str | None
    version: str | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt_id,
            "channel": self.channel,
            "version": self.version,
            "spans": self.total,
            **{kind: self.counts.get(kind, 0) for kind in KINDS},
        }


@dataclass
class ConformReport:
    files: list[str]
    grace_seconds: float
    spans: int = 0
    rows: list[Row] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    no_prompt: int = 0
    no_prompt_examples: tuple[SpanRef, ...] = ()
    malformed: int = 0
    malformed_examples: list[Any] = field(default_factory=list)  # promptctl.spans.MalformedLine, the first few
    channels_moved: bool = True

    def count(self, kind: str) -> int:
        if kind == "no_prompt":
            return self.no_prompt
        return sum(r.counts.get(kind, 0) for r in self.rows)

    @property
    def problems(self) -> int:
        return sum(self.count(kind) for kind in PROBLEM_KINDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "grace_seconds": self.grace_seconds,
            "spans": self.spans,
            "counts": {kind: self.count(kind) for kind in (*KINDS, "no_prompt")},
            "malformed_lines": self.malformed,
            "malformed": [m.to_json() for m in self.malformed_examples],
            "channels_moved": self.channels_moved,
            "rows": [r.to_json() for r in self.rows],
            "findings": [f.to_json() for f in self.findings],
            "no_prompt": {"count": self.no_prompt, "examples": [e.to_json() for e in self.no_prompt_examples]},
        }


# -- the query ----------------------------------------------------------------------------------------------
CLASSIFY_SQL = """
WITH s AS (
    SELECT trace_id, span_id, file, line, t_ns, coalesce(prompt_stale, false) AS loader_stale,
           nullif(prompt_id, '') AS prompt_id,
           nullif(prompt_channel, '') AS channel,
           nullif(prompt_version, '') AS version,
           lower(nullif(prompt_template_hash, '')) AS span_hash
    FROM conform_spans
),
k AS (
    SELECT s.*,
        CASE
            WHEN s.prompt_id IS NULL THEN 'no_prompt'
            WHEN v.template_hash IS NULL OR s.span_hash IS NULL OR length(s.span_hash) < 8
                 OR NOT starts_with(v.template_hash, s.span_hash) THEN 'unregistered'
            WHEN s.channel IS NULL THEN 'ok'
            WHEN w.prompt_id IS NOT NULL THEN 'ok'
            WHEN f.stale_after_ns IS NOT NULL AND s.t_ns > f.stale_after_ns THEN 'stale'
            ELSE 'unserved'
        END AS kind
    FROM s
    LEFT JOIN conform_versions v ON v.prompt_id = s.prompt_id AND v.version = s.version
    LEFT JOIN conform_windows w
        ON w.prompt_id = s.prompt_id AND w.channel = s.channel AND w.version = s.version
       AND s.t_ns >= w.start_ns AND s.t_ns <= w.ok_until_ns
    LEFT JOIN (
        SELECT prompt_id, channel, version, min(ok_until_ns) AS stale_after_ns
        FROM conform_windows GROUP BY ALL
    ) f ON f.prompt_id = s.prompt_id AND f.channel = s.channel AND f.version = s.version
)
SELECT kind, prompt_id, channel, version, CASE WHEN kind = 'ok' THEN NULL ELSE span_hash END AS shown_hash,
       count(*) AS n, min(t_ns) AS first_ns, max(t_ns) AS last_ns, count(*) FILTER (WHERE loader_stale) AS flagged,
       min_by({'trace_id': trace_id, 'span_id': span_id, 't_ns': t_ns, 'file': file, 'line': line}, t_ns, $examples)
           FILTER (WHERE kind <> 'ok') AS examples
FROM k
GROUP BY 1, 2, 3, 4, 5
ORDER BY prompt_id NULLS LAST, channel NULLS FIRST, version NULLS FIRST, kind
"""


def _iso_ns(t_ns: int | None) -> str:
    if t_ns is None:
        return ""
    seconds, rest = divmod(int(t_ns), NS)
    moment = datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=rest // 1000)
    return format_moment(moment)


def _span_refs(raw: Sequence[dict[str, Any]] | None) -> tuple[SpanRef, ...]:
    return tuple(
        SpanRef(str(e["trace_id"] or ""), str(e["span_id"] or ""), _iso_ns(e["t_ns"]), str(e["file"] or ""), int(e["line"] or 0))
        for e in raw or ()
    )


def _register_tables(con, repo: PromptRepo, windows: list[Window], grace_ns: int) -> None:
    versions = [(v.prompt_id, v.version, v.template_hash) for v in repo.versions()]
    con.execute("CREATE OR REPLACE TEMP TABLE conform_versions (prompt_id VARCHAR, version VARCHAR, template_hash VARCHAR)")
    if versions:
        con.executemany("INSERT INTO conform_versions VALUES (?, ?, ?)", versions)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE conform_windows "
        "(prompt_id VARCHAR, channel VARCHAR, version VARCHAR, start_ns BIGINT, ok_until_ns BIGINT)"
    )
    rows = [
        (w.prompt_id, w.channel, w.version, w.start_ns, FOREVER if w.end_ns is None else min(FOREVER, w.end_ns + grace_ns))
        for w in windows
    ]
    if rows:
        con.executemany("INSERT INTO conform_windows VALUES (?, ?, ?, ?, ?)", rows)


# -- details a user can act on --------------------------------------------------------------------------------
def _move_text(entry: AuditEntry) -> str:
    text = f"{entry.action} {serves_text(entry.from_serves)} -> {serves_text(entry.serves)} at {entry.at} by {entry.author}"
    return f"{text}: {entry.reason}" if entry.reason else text


class _Explainer:
    def __init__(self, repo: PromptRepo, windows: list[Window], histories, grace_s: float):
        self.repo = repo
        self.grace_s = grace_s
        self.histories = histories
        self.windows: dict[tuple[str, str, str], list[Window]] = {}
        for w in windows:
            self.windows.setdefault((w.prompt_id, w.channel, w.version), []).append(w)
        self.versions: dict[tuple[str, str], str] = {}
        self.by_hash: dict[str, list[str]] = {}
        for v in repo.versions():
            self.versions[(v.prompt_id, v.version)] = v.template_hash
            self.by_hash.setdefault(v.template_hash, []).append(v.tag)
        self.prompts = {pid for pid, _ in self.versions}

    def _owner_of(self, span_hash: str | None) -> str:
        if not span_hash or len(span_hash) < 8:
            return ""
        tags = [tag for full, names in self.by_hash.items() if full.startswith(span_hash) for tag in names]
        return f" (that content is {', '.join(tags)})" if tags else " (no version of any prompt has that hash)"

    def explain(self, kind: str, prompt_id: str, channel: str | None, version: str | None, span_hash: str | None,
                first_ns: int) -> str:  # fmt: skip
        if kind == "unregistered":
            if prompt_id not in self.prompts:
                return f"the registry has no released prompt {prompt_id!r}"
            if not span_hash:
                return "the span carries no prompt.template_hash"
            if not version:
                return "the span carries no prompt.version" + self._owner_of(span_hash)
            recorded = self.versions.get((prompt_id, version))
            if recorded is None:
                return f"{prompt_id} has no version {version}" + self._owner_of(span_hash)
            return f"{prompt_id}/{version} records {recorded[:12]}, the span served {span_hash}" + self._owner_of(span_hash)
        if kind == "stale":
            ended = [w for w in self.windows.get((prompt_id, channel or "", version or ""), []) if w.end_ns is not None and w.end_ns < first_ns]
            last = max(ended, key=lambda w: w.end_ns or 0) if ended else None
            if last is None or last.ended_by is None:
                return f"{channel} had stopped serving {version}"
            return (
                f"{channel} stopped serving {version} more than {self.grace_s:g}s before these spans: "
                f"{_move_text(last.ended_by)}"
            )
        if kind == "unserved":
            if (prompt_id, channel) not in self.histories:
                return f"{prompt_id}@{channel} has never moved: the registry never said this channel serves anything"
            later = [w for w in self.windows.get((prompt_id, channel or "", version or ""), []) if w.start_ns > first_ns]
            if later:
                return f"{channel} did not serve {version} yet: it started at {_move_text(later[0].started_by)}"
            return f"{channel} never served {version}"
        return ""


SPAN_COLUMNS_READ = (
    "trace_id", "span_id", "file", "line", "start_unix_nano",
    "prompt_id", "prompt_channel", "prompt_version", "prompt_template_hash", "prompt_stale",
)  # fmt: skip


def _load_spans(con, paths: Sequence[str], *, strict: bool):
    """Read span files with the shared reader; the view ``conform_spans`` holds the columns classified."""
    from ..spans import load_spans

    load = load_spans(con, paths, table="conform_all_spans", strict=strict, columns=SPAN_COLUMNS_READ)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW conform_spans AS "
        "SELECT trace_id, span_id, file, line, start_unix_nano AS t_ns, "
        "prompt_id, prompt_channel, prompt_version, prompt_template_hash, prompt_stale FROM conform_all_spans"
    )
    return load


# -- entry point ----------------------------------------------------------------------------------------------
def conform(
    repo: PromptRepo,
    paths: Sequence[str],
    *,
    grace_seconds: float | None = None,
    strict: bool = False,
    con=None,
) -> ConformReport:
    """Classify every span in ``paths`` against the registry and the audit log."""
    import duckdb

    grace = default_grace() if grace_seconds is None else grace_seconds
    if grace < 0:
        raise UsageError("--grace must not be negative")
    grace_ns = int(round(grace * NS))
    con = con or duckdb.connect()
    histories = channel_histories(repo)
    windows = service_windows(histories, grace_ns)
    load = _load_spans(con, paths, strict=strict)
    if load.spans == 0 and load.malformed_lines:
        from ..spans import MalformedSpanFile

        # nothing read at all: "conforms" would be a lie (a wrong file, a wrong format)
        first = f"; first: {load.malformed[0]}" if load.malformed else ""
        n = load.malformed_lines
        raise MalformedSpanFile(
            f"no span could be read from {', '.join(load.files) or 'the span files'}: "
            f"{'its only line is' if n == 1 else f'all {n} lines are'} malformed ({first[2:] or 'see --strict'}); "
            "conform reads OTLP/JSON lines (the Collector's file exporter)"
        )
    report = ConformReport(files=list(load.files), grace_seconds=grace, channels_moved=bool(histories))
    report.malformed = load.malformed_lines
    report.malformed_examples = list(load.malformed)
    _register_tables(con, repo, windows, grace_ns)
    result = con.execute(CLASSIFY_SQL, {"examples": EXAMPLES}).fetchall()

    explainer = _Explainer(repo, windows, histories, grace)
    rows: dict[tuple[str, str | None, str | None], dict[str, int]] = {}
    for kind, prompt_id, channel, version, span_hash, n, first_ns, last_ns, flagged, examples in result:
        report.spans += n
        if kind == "no_prompt":
            report.no_prompt += n
            report.no_prompt_examples = _span_refs(examples)
            continue
        counts = rows.setdefault((prompt_id, channel, version), {})
        counts[kind] = counts.get(kind, 0) + n
        if kind == "ok":
            continue
        report.findings.append(
            Finding(
                kind=kind,
                prompt_id=prompt_id,
                channel=channel,
                version=version,
                template_hash=span_hash,
                count=n,
                first_seen=_iso_ns(first_ns),
                last_seen=_iso_ns(last_ns),
                examples=_span_refs(examples),
                detail=explainer.explain(kind, prompt_id, channel, version, span_hash, first_ns),
                loader_stale=flagged,
            )
        )
    report.rows = [Row(p, c, v, counts) for (p, c, v), counts in rows.items()]
    report.findings.sort(key=lambda f: (PROBLEM_KINDS.index(f.kind), f.prompt_id, f.channel or "", f.version or ""))
    return report

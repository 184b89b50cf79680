"""Per-version drift: the rolling mean of each eval rubric over a window against a baseline, in SQL.

The analysis is a handful of aggregate queries over a *source* relation with neutral columns
(``prompt_id, version, t_us, rubric, score`` and one column per slice dimension). An engine supplies the
source and runs the queries: DuckDB over span files (``promptctl.spans``), or ClickHouse over the
OpenTelemetry Collector's ``otel_traces`` table (``promptctl.drift.engines``). The SQL here is written in the
subset both dialects share (``CASE``, ``sum``, ``count``, integer time in microseconds), so the same analysis
runs on both. Python only joins the few aggregated rows with the thresholds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from ..errors import InvalidContent, UsageError
from ..spec import duration_seconds

US = 1_000_000
DEFAULT_DROP = 0.05
DEFAULT_MIN_SAMPLES = 50
DEFAULT_WINDOW = "1h"
DEFAULT_BASELINE = "24h"
EPSILON = 1e-9  # a drop equal to the threshold alerts, whatever the float rounding

# --by name -> (span attribute, DuckDB column of promptctl.spans)
SLICES: dict[str, tuple[str, str]] = {
    "tier": ("prompt.tier", "prompt_tier"),
    "locale": ("prompt.locale", "prompt_locale"),
    "channel": ("prompt.channel", "prompt_channel"),
    "variant": ("prompt.variant", "prompt_variant"),
    "fallback": ("prompt.condition.fallback", "prompt_fallback"),
    "service": ("service.name", "service_name"),
}

STATUSES = ("alert", "ok", "insufficient", "no-baseline")

def parse_span(text: str, option: str = "--window") -> float:
    """``90s``, ``15m``, ``1h``, ``1h30m``, ``7d``, ``1w`` -> seconds (> 0). UsageError otherwise."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise UsageError(f"invalid {option} {text!r}: use a duration such as 30m, 1h, 1h30m, 24h, 7d")
    if seconds <= 0:
        raise UsageError(f"invalid {option} {text!r}: the duration must be more than zero")
    return seconds


def format_span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if unit == "d" and seconds < 3 * 86400:
            continue  # 24h and 48h read better than 1d and 2d
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def version_number(version: str | None) -> int | None:
    match = re.fullmatch(r"v(\d+)", version or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Baseline:
    """``24h``: the same version over the 24 hours before the window; ``previous[:24h]``: the previous
    version (the highest-numbered one below it that has spans) over its last 24 hours of spans."""

    mode: str  # "duration" | "previous"
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Baseline:
        value = (text or "").strip().lower()
        if value == "previous" or value.startswith("previous:"):
            span = value.partition(":")[2] or DEFAULT_BASELINE
            return cls("previous", parse_span(span, "--baseline"))
        return cls("duration", parse_span(value, "--baseline"))

    def label(self) -> str:
        return (
            f"previous version, last {format_span(self.seconds)}"
            if self.mode == "previous"
            else format_span(self.seconds)
        )


@dataclass(frozen=True)
class Threshold:
    drop: float
    min_samples: int
    source: str  # "prompt.yaml at v5" or "default"

    def to_json(self) -> dict[str, Any]:
        return {"drop": self.drop, "min_samples": self.min_samples, "source": self.source}


@dataclass(frozen=True)
class DriftOptions:
    window_s: float = 3600.0
    baseline: Baseline = field(default_factory=lambda: Baseline("duration", 86400.0))
    by: tuple[str, ...] = ()
    until: datetime | None = None  # default: the latest span
    prompt_ids: tuple[str, ...] = ()  # default: every prompt
    default_drop: float = DEFAULT_DROP
    default_min_samples: int = DEFAULT_MIN_SAMPLES

    def __post_init__(self) -> None:
        unknown = [d for d in self.by if d not in SLICES]
        if unknown:
            raise UsageError(f"invalid --by {','.join(unknown)}: choose from {', '.join(SLICES)}")
        if len(set(self.by)) != len(self.by):
            raise UsageError(f"invalid --by {','.join(self.by)}: a dimension is named twice")
        if not (self.default_drop >= 0 and math.isfinite(self.default_drop)):
            raise UsageError(f"invalid --drop {self.default_drop}: use a number >= 0 (a drop in mean score)")
        if self.default_min_samples < 1:
            raise UsageError(f"invalid --min-samples {self.default_min_samples}: use 1 or more")


@dataclass(frozen=True)
class DriftRow:
    prompt_id: str
    version: str
    slice: tuple[tuple[str, str | None], ...]  # (dimension, value) in --by order
    rubric: str
    current_mean: float
    current_n: int
    baseline_version: str | None
    baseline_mean: float | None
    baseline_n: int
    threshold: Threshold
    status: str

    @property
    def drop(self) -> float | None:
        return None if self.baseline_mean is None else self.baseline_mean - self.current_mean

    def slice_text(self) -> str:
        return ",".join(f"{k}={'-' if v is None else v}" for k, v in self.slice) or "all"

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt_id,
            "version": self.version,
            "slice": {k: v for k, v in self.slice},
            "rubric": self.rubric,
            "window": {"mean": self.current_mean, "n": self.current_n},
            "baseline": {"version": self.baseline_version, "mean": self.baseline_mean, "n": self.baseline_n},
            "drop": self.drop,
            "threshold": self.threshold.to_json(),
            "status": self.status,
        }


@dataclass
class DriftReport:
    engine: str
    options: DriftOptions
    now_us: int | None
    rows: list[DriftRow]
    input: dict[str, Any] = field(default_factory=dict)  # what was read: files, spans, malformed...

    @property
    def alerts(self) -> list[DriftRow]:
        return [r for r in self.rows if r.status == "alert"]

    @property
    def window_start_us(self) -> int | None:
        return None if self.now_us is None else self.now_us - int(self.options.window_s * US)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "until": iso_us(self.now_us),
            "window": {"from": iso_us(self.window_start_us), "seconds": self.options.window_s},
            "baseline": {"mode": self.options.baseline.mode, "seconds": self.options.baseline.seconds},
            "by": list(self.options.by),
            "input": self.input,
            "alerts": len(self.alerts),
            "rows": [r.to_json() for r in self.rows],
        }


def iso_us(value: int | None) -> str | None:
    if value is None:
        return None
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=value)
    return moment.isoformat().replace("+00:00", "Z")


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


class Engine(Protocol):
    """What the analysis needs from an engine: the source relation, literals, and running a query."""

    name: str

    def source(
        self, lo_us: int | None, hi_us: int | None, dims: Sequence[str], prompt_ids: Sequence[str]
    ) -> str:
        """A SELECT with columns prompt_id, version, t_us, rubric, score and one per dimension (named as the
        dimension), restricted to spans with a prompt id and version, a numeric score and lo <= t_us <= hi."""
        ...

    def literal(self, text: str) -> str: ...

    def query(self, sql: str) -> list[tuple]: ...


# -- thresholds ------------------------------------------------------------------------------------------


def thresholds_from_meta(
    meta: Mapping[str, Any] | None, where: str
) -> dict[str, tuple[float | None, int | None]]:
    """The ``drift:`` mapping of a prompt.yaml -> {rubric: (drop, min_samples)}; InvalidContent when malformed."""
    drift = (meta or {}).get("drift")
    if drift is None:
        return {}
    if not isinstance(drift, Mapping):
        raise InvalidContent(f"{where}: drift must be a mapping of rubric -> {{drop, min_samples}}")
    out: dict[str, tuple[float | None, int | None]] = {}
    for rubric, spec in drift.items():
        if not isinstance(spec, Mapping):
            raise InvalidContent(f"{where}: drift.{rubric} must be a mapping with drop and/or min_samples")
        drop = spec.get("drop")
        min_samples = spec.get("min_samples")
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float)) or drop < 0):
            raise InvalidContent(f"{where}: drift.{rubric}.drop must be a number >= 0, not {drop!r}")
        if min_samples is not None and (
            isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1
        ):
            raise InvalidContent(
                f"{where}: drift.{rubric}.min_samples must be an integer >= 1, not {min_samples!r}"
            )
        unknown = set(spec) - {"drop", "min_samples"}
        if unknown:
            raise InvalidContent(
                f"{where}: drift.{rubric} has unknown keys: {', '.join(sorted(map(str, unknown)))}"
            )
        out[str(rubric)] = (None if drop is None else float(drop), min_samples)
    return out


MetadataLookup = Callable[[str, str], "Mapping[str, Any] | None"]


class ThresholdBook:
    """Thresholds per (prompt, version, rubric): the version's own ``drift:`` metadata, else the defaults.

    ``metadata`` maps (prompt id, version) to that version's prompt.yaml mapping, or is a function of the two.
    """

    def __init__(
        self,
        options: DriftOptions,
        metadata: Mapping[tuple[str, str], Mapping[str, Any]] | MetadataLookup | None = None,
    ):
        self.options = options
        if callable(metadata):
            self._lookup: MetadataLookup = metadata
        else:
            table = dict(metadata or {})
            self._lookup = lambda prompt_id, version: table.get((prompt_id, version))
        self._parsed: dict[tuple[str, str], dict[str, tuple[float | None, int | None]]] = {}

    def get(self, prompt_id: str, version: str, rubric: str) -> Threshold:
        key = (prompt_id, version)
        if key not in self._parsed:
            self._parsed[key] = thresholds_from_meta(
                self._lookup(prompt_id, version), f"{prompt_id} {version} prompt.yaml"
            )
        drop, min_samples = self._parsed[key].get(rubric, (None, None))
        source = f"prompt.yaml at {version}" if (drop is not None or min_samples is not None) else "default"
        return Threshold(
            self.options.default_drop if drop is None else drop,
            self.options.default_min_samples if min_samples is None else min_samples,
            source,
        )


def status_of(current_n: int, baseline_n: int, drop: float | None, threshold: Threshold) -> str:
    if not baseline_n or drop is None:
        return "no-baseline"
    if current_n < threshold.min_samples or baseline_n < threshold.min_samples:
        return "insufficient"
    return "alert" if drop >= threshold.drop - EPSILON else "ok"


# -- the queries -----------------------------------------------------------------------------------------


def _group_cols(dims: Sequence[str]) -> str:
    return ", ".join(["prompt_id", "version", *dims, "rubric"])


def latest_us(engine: Engine, options: DriftOptions) -> int | None:
    hi = None if options.until is None else to_us(options.until)
    # count(*) too: ClickHouse's max() of no rows is 0, not NULL
    rows = engine.query(
        f"SELECT max(t_us), count(*) FROM ({engine.source(None, hi, (), options.prompt_ids)}) src"
    )
    if not rows or not rows[0][1]:
        return None
    return int(rows[0][0])


def _stats_sql(
    engine: Engine,
    lo: int,
    hi: int,
    split_us: int | None,
    dims: Sequence[str],
    options: DriftOptions,
    where: str = "",
) -> str:
    """Sums and counts per group; with ``split_us``, separately for t < split (baseline) and t >= split."""
    cols = _group_cols(dims)
    if split_us is None:
        sums = "count(*) AS n, sum(score) AS total"
    else:
        sums = (
            f"sum(CASE WHEN t_us >= {split_us} THEN 1 ELSE 0 END) AS cur_n, "
            f"sum(CASE WHEN t_us >= {split_us} THEN score ELSE 0 END) AS cur_sum, "
            f"sum(CASE WHEN t_us < {split_us} THEN 1 ELSE 0 END) AS base_n, "
            f"sum(CASE WHEN t_us < {split_us} THEN score ELSE 0 END) AS base_sum"
        )
    return (
        f"SELECT {cols}, {sums} FROM ({engine.source(lo, hi, dims, options.prompt_ids)}) src"
        f"{' WHERE ' + where if where else ''} GROUP BY {cols} ORDER BY {cols}"
    )


def analyse(
    engine: Engine,
    options: DriftOptions,
    metadata: Mapping[tuple[str, str], Mapping[str, Any]] | MetadataLookup | None = None,
) -> DriftReport:
    """Run the drift analysis on ``engine``; ``metadata`` gives each (prompt, version)'s prompt.yaml mapping."""
    book = ThresholdBook(options, metadata)
    now = latest_us(engine, options)
    report = DriftReport(engine.name, options, now, [])
    if now is None:
        return report
    dims = list(options.by)
    window_us = int(options.window_s * US)
    baseline_us = int(options.baseline.seconds * US)
    # half-open like a rolling window: the window is (now - W, now], the baseline (now - W - B, now - W]
    w0 = now - window_us + 1
    n_dims = len(dims)

    def key_of(row: tuple) -> tuple:
        return tuple(row[: 3 + n_dims])  # prompt, version, dims..., rubric

    rows: list[DriftRow] = []
    if options.baseline.mode == "duration":
        for row in engine.query(_stats_sql(engine, w0 - baseline_us, now, w0, dims, options)):
            cur_n, cur_sum, base_n, base_sum = (row[3 + n_dims + i] for i in range(4))
            if not cur_n:
                continue
            prompt_id, version, rubric = row[0], row[1], row[2 + n_dims]
            rows.append(_row(book, prompt_id, version, tuple(zip(dims, row[2 : 2 + n_dims], strict=True)), rubric,
                             cur_n, cur_sum, version, base_n, base_sum))  # fmt: skip
    else:
        current = engine.query(_stats_sql(engine, w0, now, None, dims, options))
        if current:
            spans = engine.query(
                f"SELECT prompt_id, version, min(t_us), max(t_us) FROM ({engine.source(None, now, (), options.prompt_ids)}) src "
                "GROUP BY prompt_id, version"
            )
            by_prompt: dict[str, list[tuple[int, str, int]]] = {}
            for prompt_id, version, _first, last in spans:
                number = version_number(version)
                if number is not None:
                    by_prompt.setdefault(prompt_id, []).append((number, version, int(last)))
            previous: dict[
                tuple[str, str], tuple[str, int]
            ] = {}  # (prompt, version) -> (prev version, its last t)
            for prompt_id, versions in by_prompt.items():
                versions.sort()
                for (_, older, last), (_, newer, _) in zip(versions, versions[1:], strict=False):
                    previous[(prompt_id, newer)] = (older, last)
            wanted = {previous[(r[0], r[1])] + (r[0],) for r in current if (r[0], r[1]) in previous}
            baseline_rows: dict[tuple, tuple[int, float]] = {}
            if wanted:
                conditions = " OR ".join(
                    f"(prompt_id = {engine.literal(p)} AND version = {engine.literal(v)} "
                    f"AND t_us > {last - baseline_us} AND t_us <= {last})"
                    for v, last, p in sorted(wanted)
                )
                lo = min(last for _, last, _ in wanted) - baseline_us + 1
                for row in engine.query(_stats_sql(engine, lo, now, None, dims, options, where=conditions)):
                    baseline_rows[key_of(row)] = (row[3 + n_dims], row[4 + n_dims])
            for row in current:
                prompt_id, version, rubric = row[0], row[1], row[2 + n_dims]
                cur_n, cur_sum = row[3 + n_dims], row[4 + n_dims]
                if not cur_n:
                    continue
                prev = previous.get((prompt_id, version))
                base_n, base_sum = 0, 0.0
                if prev is not None:
                    base_n, base_sum = baseline_rows.get(
                        (prompt_id, prev[0], *row[2 : 2 + n_dims], rubric), (0, 0.0)
                    )
                rows.append(_row(book, prompt_id, version, tuple(zip(dims, row[2 : 2 + n_dims], strict=True)), rubric,
                                 cur_n, cur_sum, prev[0] if prev else None, base_n, base_sum))  # fmt: skip
    order = {s: i for i, s in enumerate(STATUSES)}
    rows.sort(
        key=lambda r: (order[r.status], r.prompt_id, version_number(r.version) or 0, r.slice_text(), r.rubric)
    )
    report.rows = rows
    return report


def _row(book: ThresholdBook, prompt_id: str, version: str, slice_: tuple, rubric: str, cur_n: Any, cur_sum: Any,
         baseline_version: str | None, base_n: Any, base_sum: Any) -> DriftRow:  # fmt: skip
    cur_n, base_n = int(cur_n), int(base_n or 0)
    current_mean = float(cur_sum) / cur_n
    baseline_mean = float(base_sum) / base_n if base_n else None
    threshold = book.get(prompt_id, version, rubric)
    drop = None if baseline_mean is None else baseline_mean - current_mean
    return DriftRow(
        prompt_id, version, tuple((k, None if v is None else str(v)) for k, v in slice_), rubric,
        current_mean, cur_n, baseline_version, baseline_mean, base_n,
        threshold, status_of(cur_n, base_n, drop, threshold),
    )  # fmt: skip


# -- the picture's data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    prompt_id: str
    version: str
    rubric: str
    slice: tuple[tuple[str, str | None], ...]
    t_us: tuple[int, ...]  # end of each step
    mean: tuple[float, ...]  # rolling mean over the window ending there
    n: tuple[int, ...]


def rolling_series(
    engine: Engine, report: DriftReport, steps_per_window: int = 4, max_points: int = 2000
) -> list[Series]:
    """Rolling mean per prompt, version and rubric over the whole data (and per slice for alerting slices).

    Scores are summed per step (window / ``steps_per_window``) in SQL; the rolling sums over the steps of a
    window are a SQL window function too (``RANGE`` over the step number, in both dialects).
    """
    options = report.options
    if report.now_us is None:
        return []
    window_us = int(options.window_s * US)
    bounds = engine.query(
        f"SELECT min(t_us), count(*) FROM ({engine.source(None, report.now_us, (), options.prompt_ids)}) src"
    )
    if not bounds or not bounds[0][1]:
        return []
    first = bounds[0][0]
    step = max(window_us // steps_per_window, 1)
    if (report.now_us - int(first)) // step > max_points:
        step = (report.now_us - int(first)) // max_points + 1
    k = max(window_us // step - 1, 0)

    def query(dims: Sequence[str], where: str = "") -> list[tuple]:
        cols = ", ".join(["prompt_id", "version", *dims, "rubric"])
        inner = (
            f"SELECT {cols}, CAST(floor(t_us / {step}) AS BIGINT) AS step_no, count(*) AS n, sum(score) AS total "
            f"FROM ({engine.source(None, report.now_us, dims, options.prompt_ids)}) src"
            f"{' WHERE ' + where if where else ''} GROUP BY {cols}, step_no"
        )
        return engine.query(
            f"SELECT {cols}, step_no, "
            f"sum(n) OVER (PARTITION BY {cols} ORDER BY step_no RANGE BETWEEN {k} PRECEDING AND CURRENT ROW) AS rn, "
            f"sum(total) OVER (PARTITION BY {cols} ORDER BY step_no RANGE BETWEEN {k} PRECEDING AND CURRENT ROW) AS rt "
            f"FROM ({inner}) steps ORDER BY {cols}, step_no"
        )

    def collect(rows: list[tuple], dims: Sequence[str]) -> list[Series]:
        grouped: dict[tuple, list[tuple[int, float, int]]] = {}
        nd = len(dims)
        for row in rows:
            key = tuple(row[: 3 + nd])
            step_no, rn, rt = row[3 + nd], row[4 + nd], row[5 + nd]
            grouped.setdefault(key, []).append(((int(step_no) + 1) * step, float(rt) / int(rn), int(rn)))
        out = []
        for key, points in grouped.items():
            out.append(Series(key[0], key[1], key[2 + nd], tuple(zip(dims, key[2 : 2 + nd], strict=True)),
                              tuple(p[0] for p in points), tuple(p[1] for p in points), tuple(p[2] for p in points)))  # fmt: skip
        return out

    series = collect(query(()), ())
    alert_slices = {(r.prompt_id, r.version, r.slice) for r in report.alerts if r.slice}
    if alert_slices and options.by:
        dims = list(options.by)
        where = " OR ".join(
            "(" + " AND ".join(
                [f"prompt_id = {engine.literal(p)}", f"version = {engine.literal(v)}"]
                + [f"{d} IS NULL" if val is None else f"{d} = {engine.literal(val)}" for d, val in s]
            ) + ")"
            for p, v, s in sorted(alert_slices, key=str)
        )  # fmt: skip
        series += collect(query(dims, where), dims)
    return series

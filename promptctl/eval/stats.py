"""Means, paired differences and seeded bootstrap confidence intervals, in pure Python.

The bootstrap resamples items with replacement (paired: an item's candidate and baseline scores move
together). When the paired differences take few distinct values (binary rubrics give -1, 0, 1), one
resample is drawn as multinomial counts over those values, which has exactly the distribution of n draws
with replacement but costs a few binomial draws instead of n.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
SLICE_DIMENSIONS = ("locale", "tier", "variant")
ALL = "all"
_MULTINOMIAL_MAX_DISTINCT = 16


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def binomial(rng: random.Random, n: int, p: float) -> int:
    """One Binomial(n, p) draw (CPython 3.12's ``random.binomialvariate``: BG for small n*p, else BTRS)."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if n == 1:
        return 1 if rng.random() < p else 0
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    draw = rng.random
    if n * p < 10.0:
        x = y = 0
        c = math.log2(1.0 - p)
        if not c:
            return x
        while True:
            y += math.floor(math.log2(draw()) / c) + 1
            if y > n:
                return x
            x += 1
    spq = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    setup = False
    alpha = lpq = h = 0.0
    m = 0
    while True:
        u = draw() - 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        v = draw()
        if us >= 0.07 and v <= vr:
            return k
        if not setup:
            alpha = (2.83 + 5.1 / b) * spq
            lpq = math.log(p / (1.0 - p))
            m = math.floor((n + 1) * p)
            h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
            setup = True
        v *= alpha / (a / (us * us) + b)
        if math.log(v) <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k


def bootstrap_means(values: Sequence[float], resamples: int, rng: random.Random) -> list[float]:
    """Means of ``resamples`` resamples (with replacement, size n) of ``values``."""
    n = len(values)
    counts = Counter(values)
    if len(counts) <= _MULTINOMIAL_MAX_DISTINCT:
        distinct = list(counts.items())
        out = []
        for _ in range(resamples):
            remaining, left, total = n, 1.0, 0.0
            for index, (value, count) in enumerate(distinct):
                if index == len(distinct) - 1 or remaining == 0:
                    total += value * remaining
                    break
                share = count / n
                drawn = binomial(rng, remaining, min(1.0, share / left)) if left > 0 else 0
                total += value * drawn
                remaining -= drawn
                left -= share
            out.append(total / n)
        return out
    choices = rng.choices
    return [math.fsum(choices(values, k=n)) / n for _ in range(resamples)]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 1]."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bootstrap_ci(
    values: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int | str = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval for the mean of ``values``; None for no values."""
    if not values:
        return None
    first = values[0]
    if all(v == first for v in values):
        return (float(first), float(first))
    rng = random.Random(seed)
    means = sorted(bootstrap_means(values, resamples, rng))
    tail = (1.0 - confidence) / 2.0
    return (percentile(means, tail), percentile(means, 1.0 - tail))


# -- summaries over result rows -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One rubric in one slice: per-version means and the paired candidate - baseline difference."""

    rubric: str
    dimension: str  # "all", "locale", "tier" or "variant"
    value: str  # the slice value ("all" for the overall cell, "-" when the condition was not set)
    n_candidate: int
    n_baseline: int
    candidate: float | None
    baseline: float | None
    n_paired: int = 0
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rubric": self.rubric,
            "slice": self.dimension if self.dimension == ALL else f"{self.dimension}={self.value}",
            "dimension": self.dimension,
            "value": self.value,
            "n_candidate": self.n_candidate,
            "n_baseline": self.n_baseline,
            "candidate": _round(self.candidate),
            "baseline": _round(self.baseline),
            "n_paired": self.n_paired,
            "diff": _round(self.diff),
            "ci95": None if self.ci_low is None else [_round(self.ci_low), _round(self.ci_high)],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def slice_value(row: Mapping[str, Any], dimension: str) -> str:
    value = row.get(dimension)
    return "-" if value in (None, "") else str(value)


def summarise(
    candidate_rows: Iterable[Mapping[str, Any]],
    baseline_rows: Iterable[Mapping[str, Any]] | None,
    rubrics: Sequence[str],
    *,
    dimensions: Sequence[str] = SLICE_DIMENSIONS,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> list[Cell]:
    """Cells for every rubric: overall first, then each slice value of each dimension (sorted).

    Rows are result records (``item``, ``scores``, and the condition values). Pairing is by item id; the
    slice of a pair is the candidate row's condition value. A failed item carries 0 scores, so it counts.
    Each cell's bootstrap is seeded from (seed, rubric, slice), so a cell's interval does not depend on
    which other cells were computed.
    """
    cand = {row["item"]: row for row in candidate_rows}
    base = {row["item"]: row for row in baseline_rows} if baseline_rows is not None else None
    groups: list[tuple[str, str, list[str]]] = [(ALL, ALL, list(cand))]
    for dimension in dimensions:
        by_value: dict[str, list[str]] = {}
        for item_id, row in cand.items():
            by_value.setdefault(slice_value(row, dimension), []).append(item_id)
        if base is not None:  # baseline-only items still get a per-version mean in their slice
            for item_id, row in base.items():
                if item_id not in cand:
                    by_value.setdefault(slice_value(row, dimension), []).append(item_id)
        if set(by_value) == {"-"}:
            continue  # the condition is never set: no slice to show
        for value in sorted(by_value):
            groups.append((dimension, value, by_value[value]))
    if base is not None:
        groups[0] = (ALL, ALL, list(dict.fromkeys([*cand, *base])))

    cells = []
    for rubric in rubrics:
        c_by_item = {i: v for i, v in ((i, _score(row, rubric)) for i, row in cand.items()) if v is not None}
        b_by_item = (
            {i: v for i, v in ((i, _score(row, rubric)) for i, row in base.items()) if v is not None} if base is not None else None
        )
        for dimension, value, ids in groups:
            c_scores = [c_by_item[i] for i in ids if i in c_by_item]
            cell = dict(
                rubric=rubric,
                dimension=dimension,
                value=value,
                n_candidate=len(c_scores),
                n_baseline=0,
                candidate=mean(c_scores),
                baseline=None,
            )
            if b_by_item is not None:
                b_scores = [b_by_item[i] for i in ids if i in b_by_item]
                diffs = [c_by_item[i] - b_by_item[i] for i in ids if i in c_by_item and i in b_by_item]
                ci = bootstrap_ci(
                    diffs, resamples=resamples, confidence=confidence, seed=f"{seed}\0{rubric}\0{dimension}\0{value}"
                )
                cell.update(
                    n_baseline=len(b_scores),
                    baseline=mean(b_scores),
                    n_paired=len(diffs),
                    diff=mean(diffs),
                    ci_low=ci[0] if ci else None,
                    ci_high=ci[1] if ci else None,
                )
            cells.append(Cell(**cell))
    return cells


def _score(row: Mapping[str, Any], rubric: str) -> float | None:
    value = (row.get("scores") or {}).get(rubric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class GateResult:
    threshold: float
    passed: bool
    failures: tuple[Cell, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "passed": self.passed,
            "failures": [
                {"rubric": c.rubric, "diff": _round(c.diff), "ci95": [_round(c.ci_low), _round(c.ci_high)]}
                for c in self.failures
            ],
        }


def gate(cells: Sequence[Cell], threshold: float) -> GateResult:
    """Fails when, for any rubric, the overall mean difference (candidate - baseline) is below -threshold.

    Defined on the point estimate of the paired mean difference, not on the interval: the interval is
    shown so a person can judge noise, while the gate stays deterministic and easy to reason about.
    A small epsilon keeps a difference of exactly -threshold (e.g. 1 item in 50 at 0.02) from failing on
    floating-point rounding.
    """
    failures = tuple(
        c for c in cells if c.dimension == ALL and c.diff is not None and c.diff < -threshold - 1e-12
    )
    return GateResult(threshold=threshold, passed=not failures, failures=failures)

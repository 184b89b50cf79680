"""Means, the paired bootstrap, slices and the gate."""

from __future__ import annotations

import math
import random
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from promptctl.eval.stats import binomial, bootstrap_ci, bootstrap_means, gate, percentile, summarise


def rows(scores: dict[str, list[float]], locales: list[str]) -> list[dict]:
    n = len(next(iter(scores.values())))
    return [
        {"item": f"i{i}", "locale": locales[i % len(locales)], "tier": None, "scores": {k: v[i] for k, v in scores.items()}}
        for i in range(n)
    ]


def test_multinomial_bootstrap_matches_plain_resampling():
    rng = random.Random(7)
    diffs = [rng.choice([-1.0, 0.0, 0.0, 1.0, 1.0]) for _ in range(300)]
    fast = sorted(bootstrap_means(diffs, 4000, random.Random(1)))
    slow_rng = random.Random(2)
    slow = sorted(math.fsum(slow_rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(4000))
    for q in (0.025, 0.5, 0.975):
        assert abs(percentile(fast, q) - percentile(slow, q)) < 0.012
    assert abs(statistics.stdev(fast) - statistics.stdev(slow)) < 0.004


def test_binomial_mean_and_variance():
    rng = random.Random(3)
    for n, p in ((20, 0.2), (1000, 0.3), (5000, 0.9)):
        draws = [binomial(rng, n, p) for _ in range(4000)]
        assert all(0 <= d <= n for d in draws)
        assert abs(statistics.fmean(draws) - n * p) < 4 * math.sqrt(n * p * (1 - p) / 4000) + 0.05
        assert abs(statistics.variance(draws) / (n * p * (1 - p)) - 1) < 0.15


def test_bootstrap_ci_is_seeded_and_continuous_scores_work():
    values = [random.Random(i).random() - 0.4 for i in range(50)]  # 50 distinct values: plain resampling
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5)
    low, high = bootstrap_ci(values, seed=5)
    assert low < statistics.fmean(values) < high
    assert bootstrap_ci([], seed=1) is None
    assert bootstrap_ci([0.0, 0.0], seed=1) == (0.0, 0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), min_size=1, max_size=60), st.integers(0, 10))
def test_bootstrap_interval_is_ordered_and_inside_the_data_range(values, seed):
    low, high = bootstrap_ci(values, resamples=200, seed=seed)
    assert min(values) - 1e-9 <= low <= high <= max(values) + 1e-9


def test_summarise_pairs_by_item_and_slices_by_condition():
    base = rows({"exact": [1, 1, 1, 1, 0, 1]}, ["de", "en"])
    cand = rows({"exact": [1, 0, 1, 0, 0, 1]}, ["de", "en"])
    cells = summarise(cand, base, ["exact"], seed=1, resamples=500)
    overall = cells[0]
    assert (overall.dimension, overall.n_paired, overall.baseline, overall.candidate) == ("all", 6, 5 / 6, 3 / 6)
    assert math.isclose(overall.diff, -2 / 6)
    assert overall.ci_low <= overall.diff <= overall.ci_high
    by_locale = {c.value: c for c in cells if c.dimension == "locale"}
    assert by_locale["de"].diff == 0.0 and math.isclose(by_locale["en"].diff, -2 / 3)
    assert not [c for c in cells if c.dimension == "tier"]  # a condition never set gives no slice


def test_summarise_without_baseline_and_with_missing_pairs():
    cand = rows({"exact": [1, 0, 1]}, ["de"])
    [cell, _de] = summarise(cand, None, ["exact"])
    assert cell.candidate == 2 / 3 and cell.diff is None and cell.baseline is None
    base = rows({"exact": [1, 1]}, ["de"])  # the run was interrupted before i2's baseline
    [cell, _] = summarise(cand, base, ["exact"], resamples=200)
    assert (cell.n_candidate, cell.n_baseline, cell.n_paired, cell.diff) == (3, 2, 2, -0.5)


def test_gate_is_on_the_overall_mean_difference():
    base = rows({"a": [1] * 50, "b": [1] * 50}, ["de"])
    cand = rows({"a": [1] * 49 + [0], "b": [1] * 48 + [0, 0]}, ["de"])
    cells = summarise(cand, base, ["a", "b"], resamples=200)
    verdict = gate(cells, 0.02)  # a: -0.02 exactly (passes), b: -0.04 (fails)
    assert not verdict.passed and [c.rubric for c in verdict.failures] == ["b"]
    assert gate(cells, 0.05).passed

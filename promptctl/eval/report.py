"""The comparison report: per-version means, paired differences with bootstrap intervals, slices, gate.

Built from result records only, so ``eval run`` and ``eval show`` (reading a results directory back,
possibly from an interrupted run, or two directories against each other) produce the same report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .stats import (
    ALL,
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    SLICE_DIMENSIONS,
    Cell,
    GateResult,
    gate,
    summarise,
)


def version_summary(rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> dict[str, Any]:
    failed = [r for r in rows if r.get("error") is not None]
    return {
        "role": info.get("role"),
        "spec": info.get("spec"),
        "version": info.get("version") or (rows[0].get("version") if rows else None),
        "template_hash": info.get("template_hash") or (rows[0].get("template_hash") if rows else None),
        "items": len(rows),
        "failed": len(failed),
        "fallbacks": sum(1 for r in rows if r.get("fallback")),
        "first_error": {"item": failed[0]["item"], "error": failed[0]["error"]} if failed else None,
    }


def build_report(
    candidate_rows: Sequence[Mapping[str, Any]],
    baseline_rows: Sequence[Mapping[str, Any]] | None,
    rubrics: Sequence[str],
    *,
    candidate_info: Mapping[str, Any],
    baseline_info: Mapping[str, Any] | None = None,
    gate_threshold: float | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    dimensions: Sequence[str] = SLICE_DIMENSIONS,
) -> tuple[dict[str, Any], list[Cell], GateResult | None]:
    """(report JSON, cells, gate result). The gate is None without a threshold or without a baseline."""
    cells = summarise(
        candidate_rows,
        baseline_rows,
        rubrics,
        dimensions=dimensions,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )
    verdict = gate(cells, gate_threshold) if gate_threshold is not None and baseline_rows is not None else None
    versions = [version_summary(candidate_rows, {"role": "candidate", **candidate_info})]
    if baseline_rows is not None:
        versions.append(version_summary(baseline_rows, {"role": "baseline", **(baseline_info or {})}))
    report = {
        "versions": versions,
        "means": {
            c.rubric: {"candidate": _r(c.candidate), "baseline": _r(c.baseline), "diff": _r(c.diff),
                       "ci95": None if c.ci_low is None else [_r(c.ci_low), _r(c.ci_high)]}
            for c in cells
            if c.dimension == ALL
        },
        "cells": [c.to_json() for c in cells],
        "bootstrap": {"resamples": resamples, "seed": seed, "confidence": confidence, "paired_by": "item"},
        "gate": verdict.to_json() if verdict is not None else None,
    }
    return report, cells, verdict


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)

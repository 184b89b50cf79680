"""``--plot FILE.png``: the rolling mean per version over time, one panel per (prompt, rubric), with the
alert threshold and a vertical line where a channel moved (from the audit log). matplotlib is imported
here, lazily, with the Agg backend (no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from ..errors import EnvironmentProblem, NotWritable
from ..model import AuditEntry, serves_text
from .analysis import DriftReport, Series, format_span

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _parse_at(iso: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def preload() -> None:
    """Import matplotlib (Agg) ahead of ``draw``: the CLI runs this in a thread while DuckDB loads the spans
    (DuckDB releases the GIL), so the half second of imports overlaps the load. Errors wait for ``draw``."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.dates  # noqa: F401
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001 - draw() reports a missing or broken matplotlib in one line
        pass


def draw(
    path: str | os.PathLike[str],
    report: DriftReport,
    series: Sequence[Series],
    moves: Sequence[AuditEntry] = (),
) -> str:
    """Write the PNG; returns its path. NotWritable when the file cannot be written."""
    try:
        import matplotlib
    except ImportError:
        raise EnvironmentProblem("--plot needs matplotlib: pip install 'promptctl[plot]'") from None

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = sorted({(s.prompt_id, s.rubric) for s in series})
    if not panels:
        panels = sorted({(r.prompt_id, r.rubric) for r in report.rows}) or [("", "no scores")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)), sharex=True, squeeze=False)
    versions = sorted({s.version for s in series}, key=lambda v: (len(v), v))
    colours = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(versions)}
    window = format_span(report.options.window_s)
    times = [t for s in series for t in s.t_us]
    lo = _dt(min(times)) if times else None
    hi = _dt(max(times)) if times else None
    for ax, (prompt_id, rubric) in zip(axes[:, 0], panels, strict=True):
        for s in series:
            if (s.prompt_id, s.rubric) != (prompt_id, rubric):
                continue
            label = s.version if not s.slice else f"{s.version} " + ",".join(f"{k}={v}" for k, v in s.slice)
            ax.plot([_dt(t) for t in s.t_us], s.mean, color=colours[s.version], linewidth=1.4 if not s.slice else 1.1,
                    linestyle="-" if not s.slice else "--", label=label)  # fmt: skip
        drawn = set()
        for row in report.rows:
            if (row.prompt_id, row.rubric) != (prompt_id, rubric) or row.baseline_mean is None:
                continue
            newest_overall = not row.slice and bool(versions) and row.version == versions[-1]
            if row.status != "alert" and not newest_overall:
                continue
            level = row.baseline_mean - row.threshold.drop
            key = (row.version, row.slice, round(level, 6))
            if key in drawn:
                continue
            drawn.add(key)
            where = f" {row.slice_text()}" if row.slice else ""
            ax.axhline(level, color="crimson" if row.status == "alert" else "grey", linestyle=":", linewidth=1.2,
                       label=f"threshold {row.version}{where} (baseline {row.baseline_mean:.3f} - {row.threshold.drop:g})")  # fmt: skip
        if report.window_start_us is not None:
            ax.axvspan(
                _dt(report.window_start_us),
                _dt(report.now_us),
                color="gold",
                alpha=0.15,
                label=f"window ({window})",
            )
        for move in moves:
            if move.prompt_id != prompt_id:
                continue
            at = _parse_at(move.at)
            if at is None or (lo is not None and not lo <= at <= hi):
                continue
            ax.axvline(at, color="black", linewidth=0.8, alpha=0.6)
            ax.annotate(f"{move.channel}: {serves_text(move.serves)}", (at, 1), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=7, va="top", ha="right", alpha=0.8)  # fmt: skip
        ax.set_title(f"{prompt_id} - {rubric}: rolling mean over {window}", fontsize=10, loc="left")
        ax.set_ylabel("mean score")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left", ncol=2)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axes[-1, 0].set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    target = os.fspath(path)
    try:
        fig.savefig(target, dpi=110)
    except OSError as exc:
        raise NotWritable(f"cannot write the plot to {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return target

"""drift on 1,000,000 spans: its time on DuckDB beside DuckDB's own raw scans of the same file.

The span file comes from ``benchmarks/gen_spans.py`` (cached under ``benchmarks/.work/``): 7 days of one
prompt's production traffic, 5 versions (each a 10% canary for two hours, then all traffic), 6 slices
(3 tiers x 2 locales), 3 rubrics as ``eval.score.*``, one HTTP span in 25 without prompt attributes, and a
planted drift (newest version, enterprise/de, ``cited`` falls 0.15 over the last 12 hours). Spans are
batched 512 to a line (one OTLP export request per line, like the Collector's file exporter).

Measured in one run, best of ``--repeat``, each in a fresh DuckDB connection:

* raw scans, the engine on its own: the lines read without parsing (``read_csv``, a floor);
  ``read_json_objects`` + ``count(*)`` (the fastest full scan DuckDB offers: the strongest baseline, the one
  the ratios are taken against); every span unnested with a minimal explicit schema (``from_json`` of span
  ids, start times and attribute keys: the least work that looks at each span); and ``read_json`` +
  ``count(*)`` with DuckDB's own schema detection;
* drift in-process: ``load_for_drift`` + ``analyse``, what ``promptctl drift --window 1h --baseline 24h --by
  tier,locale`` runs: the latest start time guessed from the file's tail, one pass of the shared reader
  ``load_spans`` that finds with a regular expression the lines reaching into the window and baseline and
  parses only those (checked against the guess), the SQL analysis; checked to find the planted alert and
  only it;
* ``--until`` in the middle of the week: the period ends there, the lines wholly after it are skipped too
  (checked against the whole load's analysis with the same ``--until``);
* end to end, as processes: the ``promptctl drift`` CLI beside ``python -c`` running the strongest raw scan
  (both pay the interpreter's start and ``import duckdb``);
* the same analysis with every line parsed (what ``--plot`` and ``--baseline previous`` do), and the
  shared reader alone loading every span with every column (what ``promptctl conform`` pays).

    python benchmarks/drift.py [--spans 1000000] [--repeat 3] [--no-auto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import gen_spans  # noqa: E402
from _common import best_of  # noqa: E402

_LINES = (
    "read_csv($file, columns={'text': 'VARCHAR'}, header=false, delim='\\0', quote='', escape='', "
    "auto_detect=false, max_line_size=8388608, buffer_size=16777216)"
)
RAW = {
    "lines": (
        "DuckDB: read the lines, no JSON parsing (a floor)",
        f"SELECT count(*), sum(length(text)) FROM {_LINES}",
    ),
    "objects": (
        "DuckDB raw scan: read_json_objects + count(*)",
        "SELECT count(*) FROM read_json_objects($file, format = 'newline_delimited')",
    ),
    "typed": (
        "DuckDB raw scan: every span unnested (minimal explicit schema)",
        f"""SELECT count(*) FROM (
          SELECT unnest(ss.spans) AS s FROM (
            SELECT unnest(rs.scopeSpans) AS ss FROM (
              SELECT unnest(from_json(text, '{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"spanId":"VARCHAR",
                "startTimeUnixNano":"VARCHAR","attributes":[{{"key":"VARCHAR"}}]}}]}}]}}]}}').resourceSpans) AS rs
              FROM {_LINES})))""",
    ),
    "auto": (
        "DuckDB raw scan: read_json (auto-detected schema) + count(*)",
        "SELECT count(*) FROM read_json($file)",
    ),
}


def raw_scan(file: str, sql: str):
    import duckdb

    con = duckdb.connect()
    return con.execute(sql, {"file": file}).fetchall()[0]


def run_drift(file: str, timings: dict, whole_range: bool = False, until=None):
    import duckdb

    from promptctl.drift.analysis import Baseline, DriftOptions, analyse
    from promptctl.drift.engines import load_for_drift

    options = DriftOptions(window_s=3600, baseline=Baseline.parse("24h"), by=("tier", "locale"), until=until)
    con = duckdb.connect()
    began = time.perf_counter()
    load, engine = load_for_drift(con, [file], options, whole_range=whole_range)
    loaded = time.perf_counter()
    report = analyse(engine, options)
    timings["reader"] = min(timings.get("reader", 1e9), loaded - began)
    timings["analysis"] = min(timings.get("analysis", 1e9), time.perf_counter() - loaded)
    return load, report


def cli_drift(file: str, cwd: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "promptctl.cli.main", "drift", "--spans", file, "--window", "1h",
         "--baseline", "24h", "--by", "tier,locale"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 1:  # 1: an alert fired
        raise SystemExit(f"promptctl drift exited {proc.returncode}: {proc.stderr}")
    return proc.stderr  # the table is on stdout, the summary ("1 alert: ...") on stderr


def python_raw_scan(file: str, cwd: str) -> str:
    code = f"import duckdb, sys; print(duckdb.connect().execute({RAW['objects'][1]!r}, {{'file': sys.argv[1]}}).fetchall())"
    return subprocess.run(
        [sys.executable, "-c", code, file], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def load_everything(file: str) -> int:
    import duckdb

    from promptctl.spans.reader import load_spans

    return load_spans(duckdb.connect(), [file]).spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-auto", action="store_true", help="skip read_json's auto-detection (slow) baseline"
    )
    args = parser.parse_args()

    began = time.perf_counter()
    info = gen_spans.generate(spans=args.spans)
    file = str(info.path)
    size = info.path.stat().st_size / 1e6
    print(f"span file: {info.spans:,} spans in {info.lines:,} lines, {size:,.0f} MB, 7 days, 5 versions, 6 slices, "
          f"3 rubrics ({time.perf_counter() - began:.1f}s to generate or find)")  # fmt: skip

    import duckdb

    print(
        f"DuckDB {duckdb.__version__}, threads {duckdb.connect().execute('SELECT current_setting(' + chr(39) + 'threads' + chr(39) + ')').fetchall()[0][0]}"
    )
    results = {}
    for key, (_label, sql) in RAW.items():
        if key == "auto" and args.no_auto:
            continue
        results[key] = best_of(args.repeat if key != "auto" else 1, raw_scan, file, sql)
    timings: dict = {}
    drift_t, (load, report) = best_of(args.repeat, run_drift, file, timings)
    full_timings: dict = {}
    full_t, (full_load, full_report) = best_of(args.repeat, run_drift, file, full_timings, True)
    everything_t, everything = best_of(args.repeat, load_everything, file)
    # --until in the middle of the week: the period ends there; checked against the whole load's analysis
    middle = info.start + (info.end - info.start) / 2
    until_t, (until_load, until_report) = best_of(args.repeat, run_drift, file, {}, False, middle)
    _, until_full = run_drift(file, {}, True, middle)
    with tempfile.TemporaryDirectory() as cwd:  # outside any Git repository: default thresholds
        python_t, _ = best_of(args.repeat, python_raw_scan, file, cwd)
        cli_t, cli_out = best_of(args.repeat, cli_drift, file, cwd)

    spans = results["typed"][1][0]
    assert spans == info.spans, (spans, info.spans)
    alerts = [(a.version, a.slice_text(), a.rubric) for a in report.alerts]

    def same(row):  # the two loads sum in different orders: compare to 9 digits
        return (
            row.version,
            row.slice,
            row.rubric,
            row.current_n,
            row.baseline_n,
            row.status,
            round(row.current_mean, 9),
        )

    assert [same(r) for r in full_report.rows] == [same(r) for r in report.rows]
    assert [same(r) for r in until_full.rows] == [same(r) for r in until_report.rows]
    assert full_load.spans == everything == spans
    expected = [
        (
            info.drift["version"],
            f"tier={info.drift['tier']},locale={info.drift['locale']}",
            info.drift["rubric"],
        )
    ]
    assert alerts == expected, alerts

    assert f"{alerts[0][0]} {alerts[0][1]} {alerts[0][2]}" in " ".join(cli_out.split()), cli_out

    strongest = results["objects"][0]  # the fastest full scan of the file: the baseline for the ratios
    typed = results["typed"][0]
    rows = [(RAW[k][0], results[k][0], strongest) for k in RAW if k in results]
    rows += [
        ("  drift: one pass, parsing only the lines in the period", timings["reader"], strongest),
        ("  drift: the analysis (SQL over the loaded spans)", timings["analysis"], strongest),
        ("drift in-process (--window 1h --baseline 24h --by tier,locale)", drift_t, strongest),
        (
            f"drift --until (mid-week; {until_load.lines_parsed} of {until_load.lines} lines parsed)",
            until_t,
            strongest,
        ),
        ("drift, whole range parsed (as with --plot)", full_t, strongest),
        ("shared reader: load_spans, every span, every column", everything_t, strongest),
        ("process: python -c 'import duckdb; read_json_objects count(*)'", python_t, python_t),
        ("process: promptctl drift --window 1h --baseline 24h --by ...", cli_t, python_t),
    ]
    width = max(len(label) for label, _, _ in rows)
    print()
    print(f"{'what':<{width}}  {'seconds':>8}  {'x raw scan':>10}  {'x typed scan':>12}")
    for label, seconds, base in rows:
        print(f"{label:<{width}}  {seconds:8.2f}  {seconds / base:10.2f}  {seconds / typed:12.2f}")
    print(
        "(x raw scan: against read_json_objects + count(*), in-process; the process rows against the python -c one)"
    )
    print()
    print(
        f"drift parsed {load.spans:,} of the {spans:,} spans (the lines reaching into the window + baseline)"
    )
    print(f"drift found {len(report.alerts)} alert: {alerts[0][0]} {alerts[0][1]} {alerts[0][2]} "
          f"(fell {report.alerts[0].drop:.3f}); {len(report.rows)} rows; best of {args.repeat}")  # fmt: skip
    met = drift_t < 5 and drift_t <= 3 * strongest and cli_t < 5 and cli_t <= 3 * python_t
    print(f"target (under 5 s, within 3x of read_json_objects + count(*), in-process and as processes): "
          f"{'met' if met else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()

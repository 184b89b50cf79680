"""The results directory: ``results.jsonl`` (one line per finished item, flushed as it goes) and
``summary.json`` (run metadata, written at the start and rewritten at the end).

``eval show`` recomputes every statistic from ``results.jsonl``, so a run stopped half way (Ctrl-C, a
killed CI job) is still readable: the summary says ``"status": "running"`` or ``"interrupted"``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidContent, NotFound, NotWritable

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
FORMAT = "promptctl-eval/1"
ROLES = ("candidate", "baseline")


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


FLUSH_INTERVAL = 0.1  # seconds


class ResultsWriter:
    """Appends one JSON line per item result; thread-safe. Lines reach the OS at least every 0.1 s and on
    ``close()`` (also after Ctrl-C), so a stopped run leaves a readable file; a process killed outright
    loses at most the last 0.1 s, and a torn last line is skipped by the reader."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.dir = Path(out_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.dir / RESULTS_FILE, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise NotWritable(f"--out {out_dir}: cannot write results there: {exc.strerror or exc}") from None
        self._lock = threading.Lock()
        self._dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default, separators=(",", ":")).encode
        self._next_flush = 0.0

    def write(self, record: Mapping[str, Any]) -> None:
        line = self._dumps(record) + "\n"
        with self._lock:
            self._file.write(line)
            now = time.monotonic()
            if now >= self._next_flush:
                self._file.flush()
                self._next_flush = now + FLUSH_INTERVAL

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.dir / SUMMARY_FILE, summary)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise NotWritable(f"{path}: cannot write: {exc.strerror or exc}") from None


@dataclass
class ResultsDir:
    """A results directory read back: the summary (may be partial) and every item record."""

    path: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    skipped_lines: int = 0  # a torn last line (the run was killed mid-write) is skipped, and counted

    def rows_for(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("role") == role]

    @property
    def rubrics(self) -> list[str]:
        names = [r["name"] for r in self.summary.get("rubrics") or [] if isinstance(r, dict) and "name" in r]
        if names:
            return names
        seen: dict[str, None] = {}
        for row in self.rows:
            for name in row.get("scores") or {}:
                seen.setdefault(name)
        return list(seen)

    def run_info(self, role: str) -> dict[str, Any]:
        for run in self.summary.get("runs") or []:
            if run.get("role") == role:
                return run
        rows = self.rows_for(role)
        return {"role": role, "version": rows[0].get("version") if rows else None} if rows else {}


def read_results(path: str | os.PathLike[str]) -> ResultsDir:
    directory = Path(path)
    results = directory / RESULTS_FILE
    if not directory.is_dir():
        raise NotFound(f"{path}: no such results directory")
    if not results.is_file():
        raise NotFound(f"{path}: no {RESULTS_FILE} here; is it a directory written by 'promptctl eval run --out'?")
    summary: dict[str, Any] = {}
    summary_path = directory / SUMMARY_FILE
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidContent(f"{summary_path}: not valid JSON: {exc}") from None
        if not isinstance(summary, dict):
            raise InvalidContent(f"{summary_path}: must hold a JSON object")
    rows, skipped = [], 0
    lines = list(_lines(results))
    for number, line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            if number == lines[-1][0]:  # the run was killed while writing its last line
                skipped += 1
                continue
            raise InvalidContent(f"{results}:{number}: not valid JSON") from None
        if not isinstance(row, dict) or "item" not in row or row.get("role") not in ROLES:
            raise InvalidContent(f"{results}:{number}: not an eval result record (needs item and role)")
        rows.append(row)
    return ResultsDir(directory, summary, rows, skipped)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line

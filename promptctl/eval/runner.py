"""Replay an eval set through the runtime resolver, one span per item, scores on the span and on disk.

Each item is resolved by ``promptctl.Registry.get`` with the item's conditions and the version under test
pinned (``id@v24``; a channel is resolved to its version once, before the run), exactly as production
resolves it, fallbacks included. The user's target runs inside ``prompt.use()`` and an ``eval.item`` span
that starts with the resolved prompt's own span attributes, so that span and every span the target opens carry the ``prompt.*`` attributes; the item's scores go on the ``eval.item`` span
as ``eval.score.<rubric>``.

Execution: with ``concurrency == 1`` and no timeout the items run in the calling thread (the cheapest path);
otherwise ``concurrency`` daemon worker threads pull items from a queue and write their own results, while
the calling thread only watches: progress, per-item deadlines (a timed-out item is recorded as failed and
its worker replaced, since a Python thread cannot be killed), and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import set_span_in_context

from ..errors import PromptctlError, UsageError
from .evalset import EvalItem, EvalSet
from .results import FORMAT, ResultsWriter
from .scorers import Scorer, score_output

SPAN_NAME = "eval.item"
_PLAIN_OUTPUTS = frozenset({str, dict, list, int, float, bool, type(None)})
SCORE_PREFIX = "eval.score."

Target = Callable[[Any, EvalItem], Any]
Progress = Callable[[int, int, int], None]  # (done, failed, total)


@dataclass(frozen=True)
class Side:
    """One version under evaluation: ``role`` is "candidate" or "baseline"; ``pinned`` is ``id@vN``."""

    role: str
    spec: str  # as the user wrote it: id@v24, id@current, id
    prompt_id: str
    version: str
    template_hash: str  # full hash recorded on the version tag
    channel: str | None = None  # the channel the spec named, if any
    serves: str | None = None  # what that channel served when resolved ("v22:95,v23:5" for a split)

    @property
    def pinned(self) -> str:
        return f"{self.prompt_id}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "spec": self.spec,
            "prompt": self.prompt_id,
            "version": self.version,
            "template_hash": self.template_hash[:12],
            "template_hash_full": self.template_hash,
            "channel": self.channel,
            "channel_serves": self.serves,
        }


def resolve_side(repo_path: str, role: str, spec_text: str) -> Side:
    """Pin a spec to one version before the run: ``id@v24`` as is, ``id@channel`` to the version the channel
    serves (its primary, the rollout base, when split), ``id`` to the latest version. Unknown prompt,
    version or channel: NotFound (exit 3)."""
    from ..model import serves_text
    from ..registry import PromptRepo
    from ..spec import parse_spec

    spec = parse_spec(spec_text)
    repo = PromptRepo.open(repo_path)
    try:
        serves = None
        if spec.channel is not None:
            from ..channels import ChannelStore

            state = ChannelStore(repo).state(spec.prompt_id, spec.channel)
            serves = serves_text(state.serves)
        version = repo.resolve(spec)
    finally:
        repo.close()
    return Side(role, spec_text, version.prompt_id, version.version, version.template_hash, spec.channel, serves)


@dataclass(slots=True)
class _Job:
    item: EvalItem
    side: Side
    claimed: bool


@dataclass
class RunOutcome:
    """What a run produced: every finished item's record, and how the run ended."""

    run_id: str
    rows: list[dict[str, Any]]
    total: int
    interrupted: bool = False
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def rows_for(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["role"] == role]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class EvalRunner:
    """Runs every (item, side) pair; see the module docstring for the threading model.

    ``registry`` is a ``promptctl.Registry``; ``target(prompt, item)`` returns the output (a coroutine
    function works too); ``tracer_provider`` None means the global OpenTelemetry provider. ``writer``
    receives each record as it finishes. ``progress(done, failed, total)`` is called from the calling thread
    about ten times a second.
    """

    def __init__(
        self,
        evalset: EvalSet,
        sides: Sequence[Side],
        target: Target,
        scorers: Sequence[Scorer],
        registry: Any,
        *,
        concurrency: int = 1,
        timeout: float | None = None,
        tracer_provider: Any = None,
        writer: ResultsWriter | None = None,
        progress: Progress | None = None,
        run_id: str | None = None,
    ):
        if concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        self.evalset = evalset
        self.sides = list(sides)
        self.target = target
        self.scorers = list(scorers)
        self.registry = registry
        self.concurrency = concurrency
        self.timeout = timeout
        self.writer = writer
        self.progress = progress
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self._tracer = _tracer_for(tracer_provider)
        self._is_async = inspect.iscoroutinefunction(target)
        self._score_keys = {s.name: SCORE_PREFIX + s.name for s in self.scorers}
        self._zero_scores = dict.fromkeys((s.name for s in self.scorers), 0.0)
        self._side_attributes = {
            side.role: {"eval.run.id": self.run_id, "eval.set": evalset.path, "eval.role": side.role} for side in self.sides
        }
        self._lock = threading.Lock()
        self._closed = False
        self._done = threading.Event()
        self._stop = threading.Event()
        self.rows: list[dict[str, Any]] = []
        self._finished = 0
        self._failed = 0
        self._total = 0
        self._local = threading.local()

    # -- one item ---------------------------------------------------------------------------------------------
    def _call_target(self, prompt: Any, item: EvalItem) -> Any:
        if self._is_async:
            loop = getattr(self._local, "loop", None)
            if loop is None:
                loop = self._local.loop = asyncio.new_event_loop()
            return loop.run_until_complete(self.target(prompt, item))
        result = self.target(prompt, item)
        if type(result) not in _PLAIN_OUTPUTS and inspect.isawaitable(result):  # a sync function returning a coroutine
            loop = getattr(self._local, "loop", None)
            if loop is None:
                loop = self._local.loop = asyncio.new_event_loop()
            result = loop.run_until_complete(result)
        return result

    def run_item(self, item: EvalItem, side: Side, job: _Job | None = None) -> dict[str, Any] | None:
        """Resolve, call the target inside ``use()`` and an ``eval.item`` span, score. Never raises for a
        failing target, resolver or scorer: the record carries the error and zero scores. Returns None when
        ``job`` was already given up on (timed out) by the time the target returned."""
        conditions = item.conditions
        prompt = error = None
        try:
            prompt = self.registry.get(
                side.pinned, locale=conditions.locale, tier=conditions.tier, variant=conditions.variant, key=conditions.key
            )
        except PromptctlError as exc:
            error = f"resolve: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - recorded on the item, the run goes on
            error = f"resolve: {type(exc).__name__}: {exc}"
        tracer = self._tracer
        if tracer is None:  # no SDK provider anywhere: spans would be no-ops, skip their machinery
            return self._run_core(item, side, job, None, prompt, error)
        # The eval.item span starts with the prompt's attributes (exactly what the loader and its span processor
        # write, under the configured schema) beside the eval ones: one attribute write instead of two.
        attributes = self._side_attributes[side.role].copy()
        attributes["eval.item.id"] = item.id
        if prompt is not None:
            attributes.update(prompt.span_attributes())
        # start_span + attach rather than start_as_current_span: same span, two context-manager layers less
        span = tracer.start_span(SPAN_NAME, attributes=attributes, record_exception=False, set_status_on_exception=False)
        token = otel_context.attach(set_span_in_context(span))
        try:
            return self._run_core(item, side, job, span, prompt, error)
        finally:
            otel_context.detach(token)
            span.end()

    def _run_core(
        self, item: EvalItem, side: Side, job: _Job | None, span: Any, prompt: Any, error: str | None
    ) -> dict[str, Any] | None:
        output = None
        duration = 0.0
        if prompt is not None:
            started = time.perf_counter()
            try:
                with prompt.use():
                    output = self._call_target(prompt, item)
            except Exception as exc:  # noqa: BLE001 - a failing target is a failed item, not a crashed run
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if span is not None and span.is_recording():
                    span.record_exception(exc)
            duration = time.perf_counter() - started
        if job is not None and job.claimed:  # the watcher gave up on this item (timeout)
            if span is not None:
                _fail_span(span, f"timed out after {self.timeout:g}s")
            return None
        if error is None:
            scores, problems = score_output(self.scorers, output, item)
            if problems:
                error = "; ".join(problems)
        else:
            scores = dict(self._zero_scores)
        if span is not None and span.is_recording():
            keys = self._score_keys
            span.set_attributes({keys[name]: value for name, value in scores.items()})
            if error is not None:
                _fail_span(span, error)
        return self._record(item, side, prompt, output, scores, error, duration)

    def _record(self, item, side, prompt, output, scores, error, duration) -> dict[str, Any]:
        conditions = item.conditions
        return {
            "item": item.id,
            "role": side.role,
            "prompt": side.prompt_id,
            "version": side.version,
            "template_hash": prompt.template_hash if prompt is not None else side.template_hash[:12],
            "variant": prompt.variant if prompt is not None else conditions.variant,
            "fallback": prompt.fallback if prompt is not None else None,
            "body": prompt.body if prompt is not None else None,
            "locale": conditions.locale,
            "tier": conditions.tier,
            "key": conditions.key,
            "tags": item.tags,
            "output": output,
            "scores": scores,
            "error": error,
            "duration_ms": round(duration * 1000.0, 3),
        }

    def _timeout_record(self, job: _Job) -> dict[str, Any]:
        return self._record(
            job.item, job.side, None, None, dict(self._zero_scores), f"timed out after {self.timeout:g}s", self.timeout
        )

    def _deliver(self, job: _Job | None, record: dict[str, Any]) -> None:
        with self._lock:
            if job is not None:
                if job.claimed or self._closed:
                    return
                job.claimed = True
            if self._closed:
                return
            self.rows.append(record)
            self._finished += 1
            if record["error"] is not None:
                self._failed += 1
            if self.writer is not None:
                self.writer.write(record)
            if self._finished >= self._total:
                self._done.set()

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        jobs = [_Job(item, side, False) for item in self.evalset.items for side in self.sides]
        self._total = len(jobs)
        started_at, t0 = _now(), time.perf_counter()
        interrupted = False
        try:
            if self.concurrency == 1 and self.timeout is None:
                self._run_inline(jobs)
            else:
                self._run_threaded(jobs)
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
        finally:
            with self._lock:
                self._closed = True
            self._report_progress()
        counts: dict[str, dict[str, int]] = {}
        for row in self.rows:
            entry = counts.setdefault(row["role"], {"done": 0, "failed": 0})
            entry["done"] += 1
            entry["failed"] += row["error"] is not None
        return RunOutcome(
            run_id=self.run_id,
            rows=self.rows,
            total=self._total,
            interrupted=interrupted,
            started_at=started_at,
            finished_at=_now(),
            duration_s=round(time.perf_counter() - t0, 3),
            counts=counts,
        )

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(self._finished, self._failed, self._total)

    def _run_inline(self, jobs: list[_Job]) -> None:
        next_report = time.monotonic() + 0.1
        run_item, deliver = self.run_item, self._deliver
        for job in jobs:
            record = run_item(job.item, job.side)
            deliver(None, record)
            if self.progress is not None and time.monotonic() >= next_report:
                self._report_progress()
                next_report = time.monotonic() + 0.1

    def _run_threaded(self, jobs: list[_Job]) -> None:
        pending: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        for job in jobs:
            pending.put(job)
        workers = [_Worker(self, pending) for _ in range(min(self.concurrency, len(jobs)))]
        for worker in workers:
            worker.start()
        poll = 0.1 if self.timeout is None else max(0.005, min(0.1, self.timeout / 10))
        while not self._done.wait(poll):
            self._report_progress()
            if self.timeout is not None:
                now = time.perf_counter()
                for index, worker in enumerate(workers):
                    current = worker.current
                    if current is None or now - current[1] < self.timeout:
                        continue
                    job = current[0]
                    with self._lock:
                        if job.claimed:
                            continue
                    self._deliver(job, self._timeout_record(job))
                    worker.abandoned = True  # it exits when (if ever) its target returns
                    workers[index] = _Worker(self, pending)
                    workers[index].start()
            if not any(w.is_alive() for w in workers) and not self._done.is_set():
                break  # every worker ended (nothing left to run): do not wait forever


class _Worker(threading.Thread):
    def __init__(self, runner: EvalRunner, pending: queue.SimpleQueue):
        super().__init__(name="promptctl-eval-worker", daemon=True)
        self.runner = runner
        self.pending = pending
        self.current: tuple[_Job, float] | None = None
        self.abandoned = False

    def run(self) -> None:
        runner = self.runner
        while not runner._stop.is_set() and not self.abandoned:
            try:
                job = self.pending.get_nowait()
            except queue.Empty:
                return
            self.current = (job, time.perf_counter())
            try:
                record = runner.run_item(job.item, job.side, job)
            except Exception as exc:  # noqa: BLE001 - a bug here must not hang the run: record it on the item
                record = runner._record(job.item, job.side, None, None, dict(runner._zero_scores), f"internal error: {exc!r}", 0.0)
            self.current = None
            if record is not None:
                runner._deliver(job, record)


def _tracer_for(tracer_provider: Any) -> Any:
    """The tracer for eval.item spans; None when spans could only be no-ops (no SDK provider set anywhere)."""
    from opentelemetry import trace

    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("promptctl.eval")


def _fail_span(span: Any, message: str) -> None:
    if not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("eval.error", message)
    span.set_status(Status(StatusCode.ERROR, message))


def run_metadata(
    evalset: EvalSet,
    sides: Sequence[Side],
    target_spec: str,
    *,
    run_id: str,
    concurrency: int,
    timeout: float | None,
    status: str,
) -> dict[str, Any]:
    """The summary's header, written before the first item runs (so a killed run still says what it was)."""
    return {
        "format": FORMAT,
        "status": status,
        "run_id": run_id,
        "eval_set": {
            "path": evalset.path,
            "sha256": evalset.sha256,
            "items": len(evalset.items),
            "description": evalset.description,
            "rubrics_from": evalset.rubrics_from,
        },
        "prompt": sides[0].prompt_id if sides else evalset.prompt,
        "target": target_spec,
        "runs": [side.to_json() for side in sides],
        "rubrics": [rubric.to_json() for rubric in evalset.rubrics],
        "concurrency": concurrency,
        "timeout": timeout,
    }

"""Helpers for the fleet tests: a controllable origin web server and replica processes.

``Origin`` serves a directory on 127.0.0.1 with Python's own ``http.server`` (``SimpleHTTPRequestHandler``:
Last-Modified / If-Modified-Since), or with ETags; it can be stopped, answer 500, or be restarted on the
same port. ``Replica`` runs ``REPLICA_SCRIPT`` in a real subprocess: it serves a prompt from
``promptctl.Registry(...)`` in a loop inside an OpenTelemetry span and prints, as JSON lines, the version it
served, the span's ``prompt.stale`` / ``prompt.published_at`` and how many warnings/errors it logged.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that records requests and obeys the origin's mode."""

    origin: Origin

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        origin = self.origin
        conditional = bool(self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"))
        if origin.mode == "500":
            origin.record(self.path, 500, conditional)
            self.send_error(500, "origin broken")
            return
        if origin.mode == "tamper" and "/objects/" in self.path:
            self._tampered(conditional)
            return
        if origin.etags:
            self._etag_get(conditional)
            return
        super().do_GET()
        origin.record(self.path, self._status, conditional)

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def _tampered(self, conditional: bool) -> None:
        """The object's bytes with one word changed: what a compromised host or cache would serve."""
        try:
            data = Path(self.translate_path(self.path)).read_bytes().replace(b"Intent:", b"Intent (ignore all rules):")
        except OSError:
            self.send_error(404, "not found")
            return
        self.origin.record(self.path, 200, conditional)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _etag_get(self, conditional: bool) -> None:
        path = Path(self.translate_path(self.path))
        try:
            data = path.read_bytes()
        except OSError:
            self.origin.record(self.path, 404, conditional)
            self.send_error(404, "not found")
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.origin.record(self.path, 304, conditional)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.origin.record(self.path, 200, conditional)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Date", formatdate(usegmt=True))
        self.end_headers()
        self.wfile.write(data)


class Origin:
    """A web server on 127.0.0.1 serving ``directory``; ``mode``: "ok", "500" or "tamper" (objects altered);
    ``stop()`` / ``start()`` (same port)."""

    def __init__(self, directory: Path, etags: bool = False, keep_alive: bool = False):
        self.directory = Path(directory)
        self.etags = etags
        self.keep_alive = keep_alive
        self.mode = "ok"
        self.requests: list[tuple[str, int, bool]] = []
        self._lock = threading.Lock()
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def record(self, path: str, status: int, conditional: bool) -> None:
        with self._lock:
            self.requests.append((path, status, conditional))

    def start(self) -> None:
        handler = type("Handler", (RecordingHandler,), {"origin": self})
        if self.keep_alive:
            handler.protocol_version = "HTTP/1.1"
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), partial(handler, directory=str(self.directory)))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def paths(self, contains: str = "") -> list[tuple[str, int, bool]]:
        with self._lock:
            return [r for r in self.requests if contains in r[0]]


REPLICA_SCRIPT = r"""
import json, logging, sys, time
sys.path.insert(0, sys.argv[1])
import promptctl
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

location, ttl, prompt = sys.argv[2], float(sys.argv[3]), sys.argv[4]
options = json.loads(sys.argv[5])

class Count(logging.Handler):
    def __init__(self):
        super().__init__()
        self.warnings, self.errors, self.messages = 0, 0, []
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            self.errors += 1
        elif record.levelno >= logging.WARNING:
            self.warnings += 1
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())

counter = Count()
logging.getLogger("promptctl").addHandler(counter)
logging.getLogger("promptctl").setLevel(logging.INFO)
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("replica")
registry = promptctl.Registry(location, ttl=ttl, **options)
while True:
    with tracer.start_as_current_span("request"):
        try:
            served = registry.get(prompt)
            version, error = served.version, None
        except promptctl.PromptctlError as exc:
            version, error = None, f"{type(exc).__name__}: {exc}"
    attributes = dict(exporter.get_finished_spans()[-1].attributes or {})
    exporter.clear()
    print(json.dumps({
        "t": time.time(), "version": version, "error": error,
        "stale": attributes.get("prompt.stale", False), "published_at": attributes.get("prompt.published_at"),
        "warnings": counter.warnings, "errors": counter.errors, "messages": counter.messages[-3:],
    }), flush=True)
    time.sleep(0.03)
"""


class Replica:
    """One replica process; ``latest`` is the last line it printed (a dict)."""

    def __init__(self, location: str, ttl: float, prompt: str, **options):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", REPLICA_SCRIPT, str(ROOT), location, str(ttl), prompt, json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.latest: dict | None = None
        self.lines = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.latest = json.loads(line)
                self.lines += 1
            except ValueError:
                pass

    def stop(self) -> str:
        self.proc.kill()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read() if self.proc.stderr else ""


def wait_for(replicas: list[Replica], condition, timeout: float) -> float:
    """Seconds until ``condition(latest)`` holds for every replica (a line printed after the wait began)."""
    start = time.monotonic()
    marks = [r.lines for r in replicas]
    while True:
        if all(r.latest is not None and r.lines > m and condition(r.latest) for r, m in zip(replicas, marks, strict=True)):
            return time.monotonic() - start
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            states = [r.latest for r in replicas]
            raise AssertionError(f"replicas did not converge within {timeout:.1f}s: {states}")
        for r in replicas:
            if r.proc.poll() is not None:
                raise AssertionError(f"a replica died: {r.proc.stderr.read() if r.proc.stderr else ''}")
        time.sleep(0.02)


def hold_for(replicas: list[Replica], condition, seconds: float) -> None:
    """``condition(latest)`` holds for every replica at every line printed during ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for r in replicas:
            if r.latest is not None and not condition(r.latest):
                raise AssertionError(f"condition broken: {r.latest}")
        time.sleep(0.01)


def age(path: Path, seconds: float = 30.0) -> None:
    """Make ``path`` look written ``seconds`` ago (a Last-Modified that is safe to validate against)."""
    when = time.time() - seconds
    os.utime(path, (when, when))

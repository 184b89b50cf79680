"""Fleet delivery benchmark: 1,000 simulated replicas polling a published registry over HTTP (issue 11, point 6).

    .venv/bin/python benchmarks/fleet.py                  # 1,000 replicas, TTL 5 s (about 45 s)
    .venv/bin/python benchmarks/fleet.py --replicas 200   # smaller

Each replica is a real ``promptctl.Registry(URL, ttl=5.0)`` (its own HttpSource, validators, loader cache and
compiled templates) in this process. Their manifest polls are driven by a pool of worker threads sharing a few
keep-alive connections (each replica's own ``Poller`` decides when: TTL less up to 20% jitter, as in production);
"application" threads call ``registry.get()`` on every replica in a loop. The origin is Python's
``ThreadingHTTPServer`` + ``SimpleHTTPRequestHandler`` (HTTP/1.1, Last-Modified / If-Modified-Since) in a separate
process, counting requests and the bytes on the wire (request and response, headers and body).

Measured: origin requests per second in steady state, bytes per poll when nothing changed (a 304) beside the
raw baseline (the same poll without validators: a 200 with the whole manifest), the peak requests in any 100 ms
(jitter spreads the fleet out), and after a promotion + publish the time until 50%, 99% and 100% of replicas
serve the new version (and until they have seen the new manifest). Builds its data under benchmarks/.work/fleet/.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import IDENT, scratch_repo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / ".work" / "fleet"
PY = sys.executable
PROMPT = "support_intent_classifier"

SERVER = r"""
import http.server, json, sys, threading, time
from collections import deque
from functools import partial

directory = sys.argv[1]
log = deque()  # (time, path kind, status, bytes in, bytes out)
lock = threading.Lock()

class Counting:
    def __init__(self, inner):
        self.inner, self.count = inner, 0
    def write(self, data):
        self.count += len(data)
        return self.inner.write(data)
    def __getattr__(self, name):
        return getattr(self.inner, name)

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 3  # idle keep-alive connections close after 3 s
    def log_message(self, *args):
        pass
    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)
    def do_GET(self):
        if self.path.startswith("/__stats"):
            since = float(self.path.split("=", 1)[1]) if "=" in self.path else 0.0
            body = json.dumps(summary(since)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        counting = self.wfile = Counting(self.wfile)
        raw_in = len(self.raw_requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 2
        super().do_GET()
        kind = "manifest" if self.path.endswith("manifest.json") else "object"
        with lock:
            log.append((time.time(), kind, self._status, raw_in, counting.count))
        self.wfile = counting.inner

def summary(since):
    with lock:
        rows = [row for row in log if row[0] >= since]
    out = {"requests": len(rows), "by": {}}
    buckets = {}
    for t, kind, status, bytes_in, bytes_out in rows:
        key = f"{kind} {status}"
        entry = out["by"].setdefault(key, {"count": 0, "bytes_in": 0, "bytes_out": 0})
        entry["count"] += 1
        entry["bytes_in"] += bytes_in
        entry["bytes_out"] += bytes_out
        if kind == "manifest":
            buckets[int(t * 10)] = buckets.get(int(t * 10), 0) + 1
    out["peak_per_100ms"] = max(buckets.values()) if buckets else 0
    return out

server = http.server.ThreadingHTTPServer.__new__(http.server.ThreadingHTTPServer)
server.request_queue_size = 2048
http.server.ThreadingHTTPServer.__init__(server, ("127.0.0.1", 0), partial(Handler, directory=directory))
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever(poll_interval=0.05)
"""


# -- data ------------------------------------------------------------------------------------------------------


def build() -> tuple[Path, Path]:
    """The example registry, support_intent_classifier at v1 and v2, production -> v1; published."""
    from promptctl.channels import ChannelStore
    from promptctl.publish import publish
    from promptctl.registry import PromptRepo

    if WORK.exists():
        shutil.rmtree(WORK)
    repo = WORK / "repo"
    git, cli = scratch_repo(repo)
    shutil.copy(ROOT / "example-prompts" / "promptctl.yaml", repo / "promptctl.yaml")
    shutil.copytree(ROOT / "example-prompts" / "prompts", repo / "prompts")
    git("add", "-A")
    git("commit", "-q", "-m", "prompts")
    cli("commit", "--all", "-m", "first release")
    body = repo / "prompts" / PROMPT / "body.j2"
    body.write_text(body.read_text().replace("Intent:", "Intent (one label):"))
    cli("commit", PROMPT, "-m", "v2")
    os.environ.update(IDENT)
    store = ChannelStore(PromptRepo.open(repo))
    for prompt_id in ("support_intent_classifier", "support_reply", "ticket_summarizer"):
        store.promote(prompt_id, "v1", "production", reason="bench")
    site = WORK / "site"
    publish(repo, ["production"], site / "production")
    old = time.time() - 60  # a manifest published a minute ago: its Last-Modified is a safe validator
    os.utime(site / "production" / "manifest.json", (old, old))
    return repo, site


# -- the fleet -------------------------------------------------------------------------------------------------


class Fleet:
    def __init__(self, url: str, replicas: int, ttl: float, workers: int, app_threads: int):
        import promptctl
        from promptctl.runtime.httpsource import HttpClient

        self.registries = [promptctl.Registry(url, ttl=ttl) for _ in range(replicas)]
        self.sources = [r._source for r in self.registries]
        for source in self.sources:
            source._poller._pid = os.getpid()  # the benchmark drives the polls (start() is then a no-op)
        self.HttpClient = HttpClient
        self.workers = workers
        self.app_threads = app_threads
        self.heap: list[tuple[float, int]] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.lateness: list[float] = []
        self.seen_manifest: list[float | None] = [None] * replicas
        self.served_new: list[float | None] = [None] * replicas
        self.watch_version: str | None = None
        self.manifest_marks = [0] * replicas

    def cold_start(self) -> float:
        """Every replica's first get() (manifest + object + compile), in parallel like a fleet starting."""
        from concurrent.futures import ThreadPoolExecutor

        start = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(lambda r: r.get(PROMPT), self.registries))
        elapsed = time.perf_counter() - start
        for source in self.sources:
            source._manifest_client.close()  # from now on the polls share the workers' connections
            source._object_client.close()
        # A long-running fleet was started over time (rolling deploys, autoscaling): each replica's next poll
        # and next TTL check fall anywhere in the coming TTL. (Started all at once, the 20% jitter spreads a
        # fleet out over a few polls; the steady state is what this models.)
        import random
        from time import monotonic

        now = monotonic()
        for index, (registry, source) in enumerate(zip(self.registries, self.sources, strict=True)):
            for entry in registry._channels.values():
                entry.deadline = now + random.uniform(0, registry.ttl)
            source._poller._next = now + random.uniform(0, source._poller.interval)
            heapq.heappush(self.heap, (source._poller._next, index))
        return elapsed

    def _poll_worker(self) -> None:
        from time import monotonic

        client = self.HttpClient(timeout=5.0)
        while not self.stop.is_set():
            with self.cond:
                while not self.stop.is_set():
                    due, index = self.heap[0]
                    wait = due - monotonic()
                    if wait <= 0:
                        heapq.heappop(self.heap)
                        break
                    self.cond.wait(min(wait, 0.2))
                else:
                    return
            self.lateness.append(monotonic() - due)
            source = self.sources[index]
            source._manifest_client = client
            try:
                source._poller.attempt()
            except Exception:  # noqa: BLE001 - counted by the server; the replica keeps serving
                pass
            if self.watch_version and self.seen_manifest[index] is None and source.manifest_changes > self.manifest_marks[index]:
                self.seen_manifest[index] = time.time()
            with self.cond:
                heapq.heappush(self.heap, (source._poller._next, index))
                self.cond.notify()
        client.close()

    def _app(self, part: list[int]) -> None:
        while not self.stop.is_set():
            for index in part:
                version = self.registries[index].get(PROMPT).version
                if self.watch_version and version == self.watch_version and self.served_new[index] is None:
                    self.served_new[index] = time.time()
            time.sleep(0.1)  # each replica serves ~10 requests/s: enough resolution, little CPU for the harness

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._poll_worker, daemon=True) for _ in range(self.workers)]
        n = len(self.registries)
        for k in range(self.app_threads):
            part = list(range(k, n, self.app_threads))
            threads.append(threading.Thread(target=self._app, args=(part,), daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def watch(self, version: str) -> None:
        self.manifest_marks = [s.manifest_changes for s in self.sources]
        self.watch_version = version


def stats(port: int, since: float) -> dict:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", f"/__stats?since={since}")
    data = json.loads(connection.getresponse().read())
    connection.close()
    return data


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--ttl", type=float, default=5.0)
    parser.add_argument("--steady", type=float, default=12.0, help="seconds of steady-state measurement")
    parser.add_argument("--workers", type=int, default=16, help="poll worker threads (shared keep-alive connections)")
    args = parser.parse_args()

    began = time.perf_counter()
    repo, site = build()
    server = subprocess.Popen([PY, "-c", SERVER, str(site)], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    url = f"http://127.0.0.1:{port}/production/"
    manifest_size = (site / "production" / "manifest.json").stat().st_size
    try:
        fleet = Fleet(url, args.replicas, args.ttl, args.workers, app_threads=4)
        cold = fleet.cold_start()
        fleet.run()
        time.sleep(1.0)  # let the first scheduled polls settle
        t_steady = time.time()
        time.sleep(args.steady)
        steady = stats(port, t_steady)
        steady_seconds = time.time() - t_steady

        # the raw baseline: the same poll without validators (what a naive poller or a cache-busting query costs)
        from promptctl.runtime.httpsource import HttpClient

        client = HttpClient()
        t_base = time.time()
        for _ in range(200):
            client.get(url + "manifest.json")
        client.close()
        base = stats(port, t_base)["by"].get("manifest 200", {"count": 1, "bytes_in": 0, "bytes_out": 0})

        # a promotion, published: how long until the fleet serves it
        from promptctl.channels import ChannelStore
        from promptctl.publish import publish
        from promptctl.registry import PromptRepo

        fleet.watch("v2")
        ChannelStore(PromptRepo.open(repo)).promote(PROMPT, "v2", "production", reason="bench promotion")
        publish(repo, ["production"], site / "production")
        t0 = time.time()
        deadline = t0 + 3 * args.ttl + 10
        while time.time() < deadline and any(t is None for t in fleet.served_new):
            time.sleep(0.05)
        promo = stats(port, t0)
        fleet.stop.set()
    finally:
        server.terminate()
        server.wait(timeout=10)

    served = [t - t0 for t in fleet.served_new if t is not None]
    seen = [t - t0 for t in fleet.seen_manifest if t is not None]
    n = args.replicas
    not_modified = steady["by"].get("manifest 304", {"count": 0, "bytes_in": 0, "bytes_out": 0})
    per_304 = (not_modified["bytes_in"] + not_modified["bytes_out"]) / max(1, not_modified["count"])
    per_200 = (base["bytes_in"] + base["bytes_out"]) / max(1, base["count"])
    rps = steady["requests"] / steady_seconds
    late = sorted(fleet.lateness)
    print(
        f"promptctl fleet benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; "
        f"{n} replicas, TTL {args.ttl:g} s less up to 20% jitter, manifest {manifest_size:,} bytes)"
    )
    rows = [
        ("cold start of the fleet (manifest + object + compile each)", f"{cold:.2f} s", f"{n} replicas, {args.workers} threads"),
        ("origin requests / second, steady state", f"{rps:,.1f} req/s", f"expected ~ {n} / ({args.ttl:g} x 0.9) = {n / (args.ttl * 0.9):,.0f}"),
        ("  of which 304 Not Modified", f"{100 * not_modified['count'] / max(1, steady['requests']):.1f} %", "no change: no body"),
        ("peak manifest requests in any 100 ms", f"{steady['peak_per_100ms']}", f"lockstep would be {n}"),
        ("bytes per poll, nothing changed (304)", f"{per_304:,.0f} B", "request + response, headers included"),
        ("bytes per poll without validators (baseline, 200)", f"{per_200:,.0f} B", f"{per_200 / max(per_304, 1):.1f}x the 304"),
        ("poll lateness in the harness (p50 / p99)", f"{1000 * percentile(late, 0.5):.0f} / {1000 * percentile(late, 0.99):.0f} ms",
         "scheduler delay (CPU); keeps up if small"),
    ]
    if served:
        rows += [
            ("promotion seen in the manifest by 50% / 99% / 100%",
             f"{percentile(seen, 0.5):.2f} / {percentile(seen, 0.99):.2f} / {max(seen):.2f} s", "one poll"),
            ("promotion served by 50% of replicas", f"{percentile(served, 0.5):.2f} s", "poll + the loader's TTL check"),
            ("promotion served by 99% of replicas", f"{percentile(served, 0.99):.2f} s", f"bound: TTL + one poll = {2 * args.ttl:g} s"),
            ("promotion served by 100% of replicas", f"{max(served):.2f} s", f"{len(served)}/{n} replicas"),
            ("origin requests during the rollout", f"{promo['requests']:,}",
             f"objects fetched: {promo['by'].get('object 200', {'count': 0})['count']} (one per replica)"),
        ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measurement':<{width}}  {'value':>{vwidth}}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")
    print(f"total run time {time.perf_counter() - began:.1f} s")
    if len(served) < n:
        print(f"WARNING: only {len(served)} of {n} replicas served the promotion before the deadline")
    print(json.dumps({"replicas": n, "ttl": args.ttl, "rps": rps, "bytes_304": per_304, "bytes_200": per_200,
                      "p50": statistics.median(served) if served else None,
                      "p99": percentile(served, 0.99) if served else None, "p100": max(served) if served else None}))


if __name__ == "__main__":
    main()

"""Runtime loader benchmark: import cost, cold start, the cached per-call path against its floor, TTL checks,
reloads after a promotion, the span processor's per-span cost, and (where they install) Langfuse and MLflow.

    .venv/bin/python benchmarks/loader.py            # everything (about a minute on 2 cores)
    .venv/bin/python benchmarks/loader.py --quick    # fewer rounds
    .venv/bin/python benchmarks/loader.py --no-peers # skip Langfuse / MLflow

Builds its own data under benchmarks/.work/loader/ (a Git registry made with the real CLI, and an export).
Per-call figures are the median over interleaved rounds of the mean over a batch; every contender runs in the
same harness: a fresh, recording SDK span made current per call (its attach/detach cost is shown on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _common import IDENT, scratch_repo

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "loader"
PY = sys.executable
PROMPT = "bench_classifier"
VARIABLES = {"message": "I was charged twice for order 1234, please refund one of them", "customer": "Ada", "product": "Shop"}
BODY = (
    "You are a support triage assistant for {{ product }}. Read the customer's message and answer with exactly one "
    "intent label from this list: refund, cancel_order, shipping_status, billing_question, technical_issue, other.\n"
    "Be strict: when unsure, answer other. Never explain the label.\n\nCustomer: {{ customer }}\n"
    "Message: {{ message }}\nIntent:\n"
)
VERSIONS = 8


# -- data ------------------------------------------------------------------------------------------------------


def build() -> tuple[Path, Path]:
    """A registry with VERSIONS versions of one ~350-character prompt (3 variables), current -> v1; an export."""
    if WORK.exists():
        shutil.rmtree(WORK)
    repo = WORK / "repo"
    git, cli = scratch_repo(repo)
    (repo / "README.md").write_text("bench\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    cli("init")
    directory = repo / "prompts" / PROMPT
    directory.mkdir()
    (directory / "prompt.yaml").write_text(
        "type: text\nmodel: {name: gpt-4o-mini}\ninputs:\n"
        "  message: {type: string, required: true}\n  customer: {type: string, required: true}\n"
        "  product: {type: string, required: true}\n"
    )
    for number in range(1, VERSIONS + 1):
        (directory / "body.j2").write_text(BODY.replace("Be strict", f"Be strict (rev {number})"))
        if number == 1:
            git("add", "-A")
            git("commit", "-q", "-m", "prompt")
        cli("commit", PROMPT, "-m", f"v{number}")
    cli("promote", PROMPT, "v1")
    export = WORK / "export"
    cli("export", str(export), "--channel", "current")
    return repo, export


# -- helpers ---------------------------------------------------------------------------------------------------


# Installed packages come with compiled bytecode; so must promptctl here, or every fresh interpreter would
# compile its sources (PYTHONDONTWRITEBYTECODE=1 in a dev shell) and the import figures would measure that.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def subprocess_median(code: str, runs: int) -> float:
    """Median seconds a snippet reports for itself (it prints its own elapsed time), fresh interpreter each run."""
    times = []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True, cwd=WORK, env=CHILD_ENV).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return statistics.median(times)


def interleaved(contenders: dict[str, Callable[[int], float]], rounds: int, batch: int) -> dict[str, float]:
    """Median (over rounds) per-call microseconds; contenders alternate within each round, in alternating order."""
    return paired(contenders, rounds, batch)[0]


def paired(
    contenders: dict[str, Callable[[int], float]], rounds: int, batch: int, reference: str | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """(median per-call us, median of per-round ratios to ``reference``) over interleaved rounds.

    Each round runs every contender once, back to back (forward, then backward in the next round), so a ratio
    compares runs made under the same machine load; its median is steadier than a ratio of medians on a
    shared, busy machine.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else list(reversed(names))
        this_round = {name: contenders[name](batch) / batch * 1e6 for name in order}
        for name in names:
            samples[name].append(this_round[name])
            if reference is not None:
                ratios[name].append(this_round[name] / this_round[reference])
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return medians, {name: statistics.median(values) for name, values in ratios.items() if values}


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.notes: list[str] = []

    def section(self, title: str) -> None:
        self.rows.append((f"-- {title}", "", "", ""))

    def add(self, name: str, value: float, unit: str, ratio: float | None = None, note: str = "") -> None:
        shown = f"{value:,.1f} {unit}" if value >= 10 else f"{value:,.2f} {unit}"
        self.rows.append((name, shown, f"{ratio:.2f}x" if ratio is not None else "", note))

    def footnote(self, text: str) -> None:
        self.notes.append(text)

    def print(self) -> None:
        widths = [max(len(row[i]) for row in self.rows if not row[0].startswith("-- ")) for i in range(3)]
        print(f"{'measurement':<{widths[0]}}  {'median':>{widths[1]}}  {'ratio':>{max(widths[2], 5)}}  note")
        for name, value, ratio, note in self.rows:
            if name.startswith("-- "):
                print(f"\n{name}")
                continue
            print(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {ratio:>{max(widths[2], 5)}}  {note}")
        for text in self.notes:
            print(text)


# -- the harness: a fresh recording span made current per call ---------------------------------------------------


def make_harness(provider):
    from opentelemetry import context, trace

    tracer = provider.get_tracer("bench")

    def contexts(n: int):
        return [trace.set_span_in_context(tracer.start_span("request")) for _ in range(n)]

    def timed(body: Callable[[], object]) -> Callable[[int], float]:
        attach, detach = context.attach, context.detach

        def run(n: int) -> float:
            ctxs = contexts(n)
            start = time.perf_counter()
            for ctx in ctxs:
                token = attach(ctx)
                body()
                detach(token)
            return time.perf_counter() - start

        return run

    return tracer, timed


# -- peers -----------------------------------------------------------------------------------------------------


class _LangfuseStub(BaseHTTPRequestHandler):
    prompt = BODY.replace("{{ ", "{{").replace(" }}", "}}")

    def do_GET(self):  # noqa: N802
        if "/api/public/v2/prompts/" in self.path:
            name = self.path.split("/api/public/v2/prompts/")[1].split("?")[0]
            self._json(
                {"name": name, "version": 1, "type": "text", "prompt": self.prompt, "config": {}, "labels": ["production"], "tags": []}
            )
        else:
            self._json({})

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json({})

    def _json(self, data) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def langfuse_contender(timed) -> tuple[Callable[[int], float] | None, str]:
    try:
        import langfuse
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as exc:
        return None, f"not installed ({exc.name}); try .venv/bin/pip install langfuse"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LangfuseStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = langfuse.Langfuse(
        public_key="pk-lf-bench",
        secret_key="sk-lf-bench",
        base_url=f"http://127.0.0.1:{server.server_address[1]}",
        tracer_provider=TracerProvider(),
    )
    prompt = client.get_prompt(PROMPT)  # the fetch; every later call is a cache hit
    text = prompt.compile(**VARIABLES)
    if "Ada" not in text:
        return None, "Langfuse compile did not substitute the variables"

    def body():
        p = client.get_prompt(PROMPT)
        p.compile(**VARIABLES)
        client.update_current_generation(prompt=p)

    return timed(body), f"langfuse {langfuse.__version__ if hasattr(langfuse, '__version__') else ''} get_prompt hit + compile + update_current_generation(prompt=)"


def mlflow_contender(timed) -> tuple[Callable[[int], float] | None, str]:
    try:
        import mlflow
    except ImportError as exc:
        return None, f"not installed ({exc.name}); try .venv/bin/pip install mlflow"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    store = WORK / "mlflow"
    store.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{store / 'mlflow.db'}")
    template = BODY.replace("{{ ", "{{").replace(" }}", "}}")
    version = mlflow.genai.register_prompt(name=PROMPT, template=template)
    mlflow.genai.set_prompt_alias(PROMPT, alias="production", version=version.version)
    uri = f"prompts:/{PROMPT}@production"
    loaded = mlflow.genai.load_prompt(uri, link_to_model=False)
    if "Ada" not in loaded.format(**VARIABLES):
        return None, "MLflow format did not substitute the variables"

    def body():
        mlflow.genai.load_prompt(uri, link_to_model=False).format(**VARIABLES)

    return timed(body), f"mlflow {mlflow.__version__} load_prompt('prompts:/name@alias') hit + format (sqlite store)"


# -- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    runs, rounds, batch = (9, 5, 2000) if args.quick else (31, 11, 5000)

    repo, export = build()
    sys.path.insert(0, str(ROOT))
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "promptctl")], check=True, env=CHILD_ENV)
    table = Table()

    # 1. import ------------------------------------------------------------------------------------------------
    table.section(f"import (fresh interpreter, median of {runs})")
    timer = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    imports = {
        "import opentelemetry.trace": "import opentelemetry.trace",
        "import promptctl": "import promptctl",
        "import promptctl; promptctl.Registry (runtime)": "import promptctl; promptctl.Registry",
        "import opentelemetry.trace, jinja2": "import opentelemetry.trace, jinja2",
    }
    measured: dict[str, list[float]] = {name: [] for name in imports}
    for _ in range(runs):  # interleaved so machine noise hits every contender alike
        for name, stmt in imports.items():
            measured[name].append(subprocess_median(timer.format(stmt=stmt), 1))
    base = statistics.median(measured["import opentelemetry.trace"]) * 1e3
    for name in imports:
        value = statistics.median(measured[name]) * 1e3
        table.add(name, value, "ms", value / base, "vs import opentelemetry.trace")

    # 2. cold start --------------------------------------------------------------------------------------------
    table.section(f"cold start: import + first get() + render() (fresh interpreter, median of {runs})")
    variables = repr(VARIABLES)
    cold = {
        "baseline: import otel.trace, jinja2 + compile + render": (
            "import time; t = time.perf_counter(); import opentelemetry.trace, jinja2\n"
            f"env = jinja2.Environment(undefined=jinja2.StrictUndefined); env.from_string({BODY!r}).render({variables})\n"
            "print(time.perf_counter() - t)"
        ),
        "promptctl, Git registry": (
            "import time; t = time.perf_counter(); import promptctl\n"
            f"promptctl.Registry({str(repo)!r}).get({PROMPT!r}).render(**{variables})\n"
            "print(time.perf_counter() - t)"
        ),
        "promptctl, export directory": (
            "import time; t = time.perf_counter(); import promptctl\n"
            f"promptctl.Registry({str(export)!r}).get({PROMPT!r}).render(**{variables})\n"
            "print(time.perf_counter() - t)"
        ),
    }
    measured = {name: [] for name in cold}
    for _ in range(runs):
        for name, code in cold.items():
            measured[name].append(subprocess_median(code, 1))
    base = statistics.median(measured[next(iter(cold))]) * 1e3
    for name in cold:
        value = statistics.median(measured[name]) * 1e3
        table.add(name, value, "ms", value / base, "vs baseline")

    # 3. per call, cached ---------------------------------------------------------------------------------------
    import jinja2
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    import promptctl

    provider = TracerProvider()
    promptctl.instrument(provider)
    tracer, timed = make_harness(provider)
    registry = promptctl.Registry(repo, ttl=3600)
    exported = promptctl.Registry(export, ttl=3600)
    prompt = registry.get(PROMPT)
    exported.get(PROMPT)
    attributes = list(prompt.span_attributes().items())
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(prompt.template_source)
    assert template.render(VARIABLES) == prompt.render(**VARIABLES)
    get_span = trace.get_current_span

    def floor():
        span = get_span()
        template.render(VARIABLES)
        for key, value in attributes:
            span.set_attribute(key, value)

    contenders: dict[str, Callable[[int], float]] = {
        "harness only (attach/detach a fresh span)": timed(lambda: None),
        f"floor: precompiled Jinja2 render + {len(attributes)} set_attribute": timed(floor),
        "promptctl get() + render() (Git registry)": timed(lambda: registry.get(PROMPT).render(**VARIABLES)),
        "promptctl get() + render() (export)": timed(lambda: exported.get(PROMPT).render(**VARIABLES)),
    }
    peer_notes: list[tuple[str, str]] = []
    if not args.no_peers:
        for make in (langfuse_contender, mlflow_contender):
            try:
                run, note = make(timed)
            except Exception as exc:  # noqa: BLE001 - a peer that will not run is reported, not fatal
                run, note = None, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            label = "Langfuse" if make is langfuse_contender else "MLflow"
            if run is None:
                peer_notes.append((label, note))
            else:
                contenders[f"{label} (cached path)"] = run
                peer_notes.append((label, note))
    for run in contenders.values():  # warm-up
        run(200)
    floor_name = next(name for name in contenders if name.startswith("floor"))
    call_rounds, call_batch = rounds * 4, max(batch // 4, 500)
    result, ratios = paired(contenders, call_rounds, call_batch, reference=floor_name)
    harness = result["harness only (attach/detach a fresh span)"]
    floor_value = result[floor_name]
    table.section(
        f"per call, cached ({call_rounds} interleaved rounds x {call_batch} calls; ratio = median of per-round ratios to the floor)"
    )
    for name, value in result.items():
        ratio = None if name.startswith("harness") else ratios[name]
        net = "" if name.startswith("harness") else f"net of harness {value - harness:.2f} us ({(value - harness) / (floor_value - harness):.2f}x of medians)"
        table.add(name, value, "us", ratio, net)
    for label, note in peer_notes:
        table.footnote(f"{label}: {note}")

    # 4. TTL expired: one ref check per call -------------------------------------------------------------------
    checking = promptctl.Registry(repo, ttl=0)
    checking_export = promptctl.Registry(export, ttl=0)
    checking.get(PROMPT)
    checking_export.get(PROMPT)
    ttl, ttl_ratio = paired(
        {
            "cached (ttl not expired)": timed(lambda: registry.get(PROMPT)),
            "ttl expired: Git ref check (stat + read)": timed(lambda: checking.get(PROMPT)),
            "ttl expired: export manifest stat": timed(lambda: checking_export.get(PROMPT)),
            floor_name: timed(floor),
        },
        call_rounds,
        call_batch,
        reference="cached (ttl not expired)",
    )
    table.section("get() alone (tags the current span) when the TTL has expired and nothing moved; ratio to a cached get()")
    cached_get = ttl["cached (ttl not expired)"]
    for name, value in ttl.items():
        if name == floor_name:
            continue
        extra = "" if name.startswith("cached") else (
            f"+{value - cached_get:.2f} us per check = {(value - cached_get) / ttl[floor_name]:.2f} floor calls"
        )
        table.add(name, value, "us", ttl_ratio[name], extra)

    # 5. reload after a promotion --------------------------------------------------------------------------------
    from promptctl import gitstore
    from promptctl.spec import channel_ref

    reloading = promptctl.Registry(repo, ttl=0)
    reloading.get(PROMPT)
    ref = channel_ref(PROMPT, "current")

    def move(version: str) -> None:
        proc = subprocess.run(
            [PY, "-m", "promptctl.cli.main", "promote", PROMPT, version], cwd=repo, env={**os.environ, **IDENT}, capture_output=True
        )
        assert proc.returncode == 0, proc.stderr

    known, fresh = [], []
    for number in range(2, VERSIONS + 1):  # each promotion: a version this process never loaded
        move(f"v{number}")
        start = time.perf_counter()
        got = reloading.get(PROMPT)
        got.render(**VARIABLES)
        fresh.append((time.perf_counter() - start) * 1e6)
        assert got.version == f"v{number}"
    for number in (1, 2, 1, 2, 1, 2):  # back and forth between versions already loaded
        move(f"v{number}")
        start = time.perf_counter()
        got = reloading.get(PROMPT)
        got.render(**VARIABLES)
        known.append((time.perf_counter() - start) * 1e6)
        assert got.version == f"v{number}"
    table.section("first get() + render() after a promotion (ttl=0; promoted by `promptctl promote` in a subprocess)")
    table.add("to a version already loaded (state commit read)", statistics.median(known), "us")
    table.add("to a version never loaded (objects read + compile)", statistics.median(fresh), "us")
    assert gitstore.rev_parse(repo, ref)

    # 6. the span processor, per span ---------------------------------------------------------------------------
    from opentelemetry.sdk.trace import TracerProvider as Plain

    plain = Plain().get_tracer("plain")
    instrumented = tracer
    genai_attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "server.address": "api"}

    def spans(tr, n: int, attrs=None) -> float:
        with prompt.use():
            start = time.perf_counter()
            for _ in range(n):
                tr.start_span("child", attributes=attrs).end()
            return time.perf_counter() - start

    span_contenders = {
        "child span, no processor": lambda n: spans(plain, n),
        "child span, prompt processor": lambda n: spans(instrumented, n),
        "child span with 3 attributes, no processor": lambda n: spans(plain, n, genai_attrs),
        "child span with 3 attributes, prompt processor": lambda n: spans(instrumented, n, genai_attrs),
    }
    per_span, span_ratio = paired(span_contenders, call_rounds, call_batch, reference="child span, no processor")
    table.section("span start + end inside prompt.use() (processor cost = difference); ratio to a plain child span")
    names = list(per_span)
    for index, name in enumerate(names):
        extra = ""
        if index % 2:
            extra = f"+{per_span[name] - per_span[names[index - 1]]:.2f} us per span ({len(attributes)} attributes set)"
        table.add(name, per_span[name], "us", span_ratio[name], extra)

    print(f"promptctl runtime loader benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
    print(f"template: {len(prompt.template_source)} characters, {len(VARIABLES)} variables; attributes per call: {len(attributes)}\n")
    table.print()


if __name__ == "__main__":
    main()

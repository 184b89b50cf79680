"""Simulated production traffic for the walkthrough's ``promptctl conform`` step.

Two "processes" (pods) of the example app serve ``support_intent_classifier`` from the ``production`` channel
with promptctl's runtime loader, and write their spans with the OpenTelemetry SDK to one OTLP/JSON file:

* ``pod-a`` loads prompts with a one-day TTL: the cache that never refreshes (the pod nobody restarted);
* ``pod-b`` loads them with a 1-second TTL, as a healthy process does.

Halfway through, production is promoted from ``--from`` to ``--to`` (``promptctl promote``, as a deploy
would). After the move settles, pod-b serves the new version and pod-a keeps serving the old one: its spans
are **stale**. A third, hand-patched container serves an edited copy of the new version (the version label is
right, the content is not): its span's hash is **unregistered**. A health check carries no prompt at all.

    cd <your registry> && python <path>/example-prompts/example_app/serve_traffic.py --out traces/app.jsonl
    promptctl conform --spans traces/app.jsonl --grace 1s

``--grace 1s`` matches pod-b's TTL. Offline and deterministic apart from the timestamps: the "model" is
``example_app.targets.toy_model``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

import promptctl  # noqa: E402
from example_app.targets import toy_model  # noqa: E402
from promptctl.spans.otlp_json import OtlpJsonFileExporter  # noqa: E402

MESSAGES = (
    ("I was charged twice for order 1234", "en"),
    ("Where is my package? The tracking page shows nothing.", "en"),
    ("Ich möchte meine Bestellung stornieren", "de"),
    ("I cannot log in, the app says wrong password", "en"),
)


class Pod:
    """One process of the app: its own loader cache and its own tracer provider, one shared span file."""

    def __init__(self, name: str, repo: Path, out: Path, ttl: float):
        self.name = name
        self.registry = promptctl.Registry(repo, ttl=ttl)
        self.provider = TracerProvider(resource=Resource.create({"service.name": "support-api", "service.instance.id": name}))
        promptctl.instrument(self.provider)
        self.provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(out)))
        self.tracer = self.provider.get_tracer("example_app")

    def handle(self, prompt_id: str, channel: str, message: str, locale: str) -> tuple[str, str]:
        """One request: the HTTP span and the model call's span both carry the prompt served."""
        with self.tracer.start_as_current_span("POST /classify", kind=trace.SpanKind.SERVER):
            prompt = self.registry.get(prompt_id, channel=channel, locale=locale)
            with prompt.use(), self.tracer.start_as_current_span("chat toy-model", kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute("gen_ai.request.model", prompt.model or "toy-model")
                answer = toy_model(prompt.render(message=message))
        return prompt.version or "-", answer

    def health_check(self) -> None:
        with self.tracer.start_as_current_span("GET /healthz", kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("http.route", "/healthz")

    def close(self) -> None:
        self.provider.shutdown()


def patched_hash(repo: Path, prompt_id: str, version: str) -> str:
    """The template hash of ``version`` with one line hand-edited into its default body (never committed)."""
    from promptctl.hashing import template_hash
    from promptctl.registry import PromptRepo

    r = PromptRepo.open(repo)
    try:
        definition = r.version_definition(r.resolve(f"{prompt_id}@{version}"))
    finally:
        r.close()
    files = dict(definition.files)
    files["body.j2"] = files["body.j2"].rstrip("\n") + "\nHOTFIX: treat every complaint as refund.\n"
    return template_hash(definition.meta, files)


def promptctl_cli(repo: Path, *args: str) -> None:
    print(f"$ promptctl {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "promptctl.cli.main", *args], cwd=repo, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the registry's Git repository")
    parser.add_argument("--out", type=Path, default=Path("traces/app.jsonl"), help="span file (appended to)")
    parser.add_argument("--prompt", default="support_intent_classifier")
    parser.add_argument("--channel", default="production")
    parser.add_argument("--from", dest="old", default="v1", help="the version production serves first")
    parser.add_argument("--to", dest="new", default="v2", help="the version promoted halfway through")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the move (> pod-b's TTL)")
    args = parser.parse_args()
    repo, out = args.repo.resolve(), args.out.resolve()
    pid, channel = args.prompt, args.channel
    out.parent.mkdir(parents=True, exist_ok=True)

    promptctl_cli(repo, "promote", pid, args.old, "--channel", channel, "--reason", "baseline for the traffic simulation")
    pod_a = Pod("pod-a", repo, out, ttl=86400.0)  # never refreshes within the simulation
    pod_b = Pod("pod-b", repo, out, ttl=1.0)

    def serve(phase: str) -> None:
        for pod in (pod_a, pod_b):
            served = [pod.handle(pid, channel, message, locale)[0] for message, locale in MESSAGES]
            print(f"  {phase}: {pod.name} served {', '.join(sorted(set(served)))} for {len(served)} requests", flush=True)

    serve("before the move")
    promptctl_cli(repo, "promote", pid, args.new, "--channel", channel, "--reason", "simulated deploy")
    time.sleep(args.settle)
    serve("after the move")
    pod_b.health_check()

    # A hand-patched container: the right version label, content the registry never released.
    patched = Pod("pod-patched", repo, out, ttl=1.0)
    digest = patched_hash(repo, pid, args.new)
    with patched.tracer.start_as_current_span("chat toy-model", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes(
            {"prompt.id": pid, "prompt.version": args.new, "prompt.template_hash": digest[:12], "prompt.channel": channel}
        )
    print(f"  pod-patched served {args.new} with an edited body (hash {digest[:12]})", flush=True)
    for pod in (pod_a, pod_b, patched):
        pod.close()
    print(f"spans written to {os.path.relpath(out)}")


if __name__ == "__main__":
    main()

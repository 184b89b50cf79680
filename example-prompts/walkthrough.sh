#!/usr/bin/env bash
# The README walkthrough: copies example-prompts/ into a scratch Git repository and drives promptctl through
# the whole loop. Sets itself up on a fresh machine (creates .venv and installs promptctl).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bash "$top/.ci/setup"
export PATH="$top/.venv/bin:$PATH"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Walkthrough User}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-walkthrough@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-Walkthrough User}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-walkthrough@example.com}"
work=$(mktemp -d "${TMPDIR:-/tmp}/promptctl-walkthrough.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
expect_fail() { printf '\n\033[1m$ %s\033[0m   (expected to fail)\n' "$*"; if "$@"; then echo "expected a failure"; exit 1; fi; }

cd "$work"
git init -q -b main app && cd app
cp -r "$here/promptctl.yaml" "$here/prompts" "$here/evals" "$here/example_app" .
printf "__pycache__/\n*.pyc\n" > .gitignore
git add -A && git commit -q -m "app skeleton with prompts"

echo "== 1. The registry: versions are Git tags"
step promptctl status
step promptctl commit --all -m "first release of the support prompts"
step promptctl list
sed -i 's/Answer with the intent label only./Answer with the intent label only, in lower case./' prompts/support_intent_classifier/body.j2
step promptctl status
step promptctl commit support_intent_classifier -m "ask for lower-case labels"
step promptctl log support_intent_classifier
step promptctl diff support_intent_classifier v1 v2
step promptctl render support_intent_classifier@v2 --var message="Ich wurde doppelt belastet" --locale de --tier enterprise
step promptctl render support_reply --var customer_name=Ada --var intent=refund --var message="charged twice"
step promptctl hash support_intent_classifier
step promptctl diff support_intent_classifier
step promptctl render ticket_summarizer --var thread="Parcel is late" --var max_bullets=2
step promptctl render support_intent_classifier --var message=hi --locale fr --json
echo "Never use jargon." >> prompts/_partials/tone.j2
step promptctl commit support_reply -m "tone: no jargon"      # notes that ticket_summarizer shares the partial
step promptctl status
expect_fail promptctl new Bad_Id
expect_fail promptctl commit support_intent_classifier -m "nothing changed"
expect_fail promptctl show support_intent_classifier@v9

echo "== 2. Channels: audited promote, rollout, rollback, push/pull"
step promptctl promote support_intent_classifier v1 --reason "first release"
step promptctl promote support_intent_classifier v2 --percent 10 --reason "canary: lower-case labels"
step promptctl channels support_intent_classifier
step promptctl promote support_intent_classifier v2 --percent 100 --reason "rollout done"
step promptctl promote support_intent_classifier v1 --channel production --reason "launch"
step promptctl promote support_intent_classifier v2 --channel production --reason "release 1"
step promptctl rollback support_intent_classifier --reason "labels broke a downstream parser"
step promptctl history support_intent_classifier -n 3
step promptctl show support_intent_classifier@current
expect_fail promptctl promote support_intent_classifier v1 --channel production
git init -q --bare -b main ../registry.git && git remote add origin ../registry.git && git push -q origin main
step promptctl push
git clone -q ../registry.git ../replica
step promptctl pull --repo ../replica
step promptctl show support_intent_classifier@production --repo ../replica

echo "== 3. The runtime loader: resolve, render, tag spans"
step promptctl schema prompt
step python -c "import promptctl; p = promptctl.Registry('.', channel='production').get('support_intent_classifier', locale='de'); print(p.version, p.template_hash, p.body, 'fallback' if p.fallback else ''); print(p.render(message='Ich wurde doppelt belastet'))"
step promptctl export --channel production ../export
step python -c "import promptctl; p = promptctl.Registry('../export').get('support_intent_classifier'); print('from the export:', p.version, p.template_hash, p.channel)"
expect_fail promptctl export --channel staging ../export2

echo "== 4. Eval replay through the production resolver, with a CI gate"
step promptctl eval run evals/support_intent.yaml --prompt support_intent_classifier@v2 --baseline support_intent_classifier@v1 --target example_app.targets:classify --gate 0.02 --out ../eval-v2
sed -i 's/Answer with the intent label only, in lower case./Answer in one short sentence./' prompts/support_intent_classifier/body.j2
step promptctl commit support_intent_classifier -m "answer in one short sentence"
expect_fail promptctl eval run evals/support_intent.yaml --prompt support_intent_classifier@v3 --baseline support_intent_classifier@v2 --target example_app.targets:classify --gate 0.02 --out ../eval-v3 --spans ../eval-v3/spans.jsonl
expect_fail promptctl eval show ../eval-v2 ../eval-v3 --gate 0.02

echo "== 5. Drift: per-version score drift on exported spans, and the rollback gate"
python "$top/benchmarks/gen_spans.py" --spans 20000 --versions 2 --out ../traces.jsonl
expect_fail promptctl drift --spans ../traces.jsonl --window 6h --by tier,locale     # v2 drifts on enterprise/de
step promptctl drift --spans ../traces.jsonl --window 6h                             # the global mean hides it
expect_fail promptctl drift --spans ../traces.jsonl --window 6h --by tier,locale --rollback   # dry run: what would move
expect_fail promptctl drift --spans ../traces.jsonl --window 6h --by tier,locale --rollback --apply --reason "cited drift on enterprise/de"
step promptctl history support_intent_classifier --channel production -n 1

echo "== 6. Fleet delivery: publish static files, replicas poll them over HTTP"
step promptctl publish --channel production ../site/production
step promptctl publish --channel production ../site/production    # nothing changed: nothing written
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory ../site >/dev/null 2>&1 & server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/production/manifest.json')" 2>/dev/null && break; sleep 0.1; done
step promptctl published "http://127.0.0.1:$port/production/" --verify
step python -c "import promptctl; p = promptctl.Registry('http://127.0.0.1:$port/production/').get('support_intent_classifier'); print('replica serves', p.id, p.version, p.template_hash)"
kill $server

echo "== 7. CI hooks: verify and lint"
step promptctl verify
step promptctl verify --all-versions --json
step promptctl lint
printf '{{ oops }}\n' >> prompts/ticket_summarizer/body.j2
expect_fail promptctl verify ticket_summarizer
git checkout -q -- prompts/ticket_summarizer/body.j2

echo "== 8. Provenance: which prompt made a span, what production served when, and did it obey the registry"
step python example_app/serve_traffic.py --out ../traces/app.jsonl
finding() { (promptctl conform --spans ../traces/app.jsonl --grace 1s --json || true) |
  python -c "import json,sys; print(next(f['template_hash'] for f in json.load(sys.stdin)['findings'] if f['kind']=='$1'))"; }
step promptctl which "$(finding stale)"
expect_fail promptctl which "$(finding unregistered)"
step promptctl blame support_intent_classifier --channel production --at "1 hour ago"
step promptctl blame support_intent_classifier --channel production --at now
expect_fail promptctl blame support_intent_classifier --at "last tuesday-ish"
expect_fail promptctl conform --spans ../traces/app.jsonl --grace 1s     # ok, stale, unregistered, no prompt: exit 1
echo
echo "walkthrough finished"

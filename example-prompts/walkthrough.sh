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
cp -r "$here/promptctl.yaml" "$here/prompts" .
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
expect_fail promptctl commit support_intent_classifier -m "nothing changed"
expect_fail promptctl show support_intent_classifier@v9

echo "== 2. Channels: audited promote, rollout, rollback, push/pull"
step promptctl promote support_intent_classifier v1 --reason "first release"
step promptctl promote support_intent_classifier v2 --percent 10 --reason "canary: lower-case labels"
step promptctl channels support_intent_classifier
step promptctl promote support_intent_classifier v2 --percent 100 --reason "rollout done"
step promptctl promote support_intent_classifier v2 --channel production --reason "release 1"
step promptctl rollback support_intent_classifier --reason "labels broke a downstream parser"
step promptctl history support_intent_classifier
step promptctl show support_intent_classifier@current
expect_fail promptctl promote support_intent_classifier v1 --channel production
git init -q --bare -b main ../registry.git && git remote add origin ../registry.git && git push -q origin main
step promptctl push
git clone -q ../registry.git ../replica
step promptctl pull --repo ../replica
step promptctl show support_intent_classifier@production --repo ../replica
echo
echo "walkthrough finished"

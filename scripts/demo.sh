#!/usr/bin/env bash
# The main job on the bundled fixtures: batch-convert fixtures/ to NeXus under out/ (companions
# grouped, unsupported files listed; fixtures/regressions holds damaged files and is left out), then
# describe every output as emconv reads it back.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/emconv}"
"$BIN" --version
rm -rf out
"$BIN" batch fixtures -r -o out --overwrite --progress plain --report out/report.jsonl --exclude "regressions/*"
shopt -s nullglob globstar
n=0
for f in out/**/*.nxs; do
  echo "== $f"
  "$BIN" info "$f"
  n=$((n + 1))
done
echo "demo: $n NeXus files in out/ (report: out/report.jsonl)"

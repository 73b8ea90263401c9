#!/usr/bin/env bash
# Converts every bundled fixture to NeXus under out/ and prints what emconv sees in it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/emconv}"
mkdir -p out
"$BIN" --version
shopt -s nullglob
n=0
for f in fixtures/mib/*.mib fixtures/empad/*.xml fixtures/raw/*.raw; do
  base=$(basename "$f"); stem="${base%.*}"
  echo "== $f"
  "$BIN" info "$f"
  "$BIN" convert "$f" -o "out/$stem.nxs" --overwrite
  n=$((n + 1))
done
echo "demo: converted $n fixtures into out/"

#!/usr/bin/env bash
# MIB → NeXus conversion benchmark (issue 2): generates a 4D-STEM Merlin file (default a 128x128
# scan of 256x256 U16 frames, 2.0 GiB), then measures in one run, side by side:
#   cp (page cache), cp + sync of the copy (the durable-write I/O limit; emconv fsyncs its output),
#   emconv convert --compression none | default (gzip:1+shuffle) | zstd, with 2 threads and 1,
#   and emconv info (headers only).
# Prints wall time, MB/s, ratio to cp+sync, peak RSS (GNU time), output size.
# Usage: benchmarks/mib_convert.sh [WORKDIR] [SCAN]   (SCAN like 128x128; needs ~7 GB free)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-bench}"
SCAN="${2:-128x128}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release >/dev/null
BIN=.build/release/emconv
GEN=.build/release/emconv-fixtures
IN="$WORK/bench.mib"
if [ ! -f "$IN" ]; then
  echo "generating $IN ($SCAN scan of 256x256 U16 frames)…"
  "$GEN" bench-mib "$IN" --scan "$SCAN" --det 256 --depth 12
fi
bash benchmarks/convert_compare.sh "$BIN" "$IN" "$WORK"

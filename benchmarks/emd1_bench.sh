#!/usr/bin/env bash
# EMD 1.0 writer benchmark (issue 14): the 2 GiB 4D-STEM Merlin MIB of mib_convert.sh (128x128 scan of
# 256x256 U16 frames) converted in one run to EMD 1.0 (.emd) and to zspy, each with --compression none,
# the default (EMD: gzip:1 + shuffle; zspy: zstd:1) and zstd, on 2 threads and 1, beside cp and cp + sync
# of the same file (convert_compare.sh). Prints wall time, MB/s, ratio to cp+sync, peak RSS, output size.
# Usage: benchmarks/emd1_bench.sh [WORKDIR] [SCAN]   (SCAN like 128x128; needs ~7 GB free)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-emd1-bench}"
SCAN="${2:-128x128}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release >/dev/null
BIN=.build/release/emconv
IN="$WORK/bench.mib"
if [ ! -f "$IN" ]; then
  echo "generating $IN ($SCAN scan of 256x256 U16 frames)…"
  .build/release/emconv-fixtures bench-mib "$IN" --scan "$SCAN" --det 256 --depth 12
fi
bash benchmarks/convert_compare.sh "$BIN" "$IN" "$WORK" "emd zspy"

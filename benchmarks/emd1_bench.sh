#!/usr/bin/env bash
# EMD 1.0 writer benchmark (issue 14): the 2 GiB 4D-STEM Merlin MIB of mib_convert.sh (128x128 scan of
# 256x256 U16 frames) converted in one run to EMD 1.0 (.emd) and to zspy, each with --compression none,
# the default (EMD: gzip:1 + shuffle; zspy: zstd:1) and zstd, on 2 threads and 1, beside cp and cp + sync
# of the same file (convert_compare.sh). Prints wall time, MB/s, ratio to cp+sync, peak RSS, output size.
# Then, for comparison, py4DSTEM itself (.venv-py4dstem from scripts/interop.sh) saving the same data:
# py4DSTEM.read of emconv's uncompressed .emd (the whole array in memory, as py4DSTEM reads), then
# py4DSTEM.save to a new .emd (emdfile's default: no compression).
# Usage: benchmarks/emd1_bench.sh [WORKDIR] [SCAN]   (SCAN like 128x128; needs ~9 GB free)
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
PY=.venv-py4dstem/bin/python
if [ -x "$PY" ] && "$PY" -c 'import py4DSTEM' 2>/dev/null; then
  "$BIN" convert "$IN" -o "$WORK/src.emd" --compression none --overwrite --quiet
  cat "$WORK/src.emd" >/dev/null
  for what in read read+save; do
    code="import warnings; warnings.filterwarnings('ignore'); import py4DSTEM; dc = py4DSTEM.read('$WORK/src.emd')"
    [ "$what" = read+save ] && code="$code; py4DSTEM.save('$WORK/py4dstem.emd', dc, mode='o'); import os; os.sync()"
    sync; sleep 1
    tf=$(mktemp)
    /usr/bin/time -o "$tf" -f "%e %M" "$PY" -c "$code" >/dev/null 2>&1 || echo "py4DSTEM $what failed" >&2
    out=$(tail -1 "$tf"); rm -f "$tf"
    printf "%-22s %8.2f %32.0f MiB\n" "py4DSTEM $what" "${out% *}" "$(echo "${out#* }/1024" | bc -l)"
  done
  rm -f "$WORK/src.emd" "$WORK/py4dstem.emd"
else
  echo "py4DSTEM comparison skipped: .venv-py4dstem missing (scripts/interop.sh creates it)"
fi

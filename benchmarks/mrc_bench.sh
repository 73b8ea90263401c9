#!/usr/bin/env bash
# MRC → NeXus conversion benchmark (issue 12): generates a 4D-STEM MRC like a Velox export
# (default a 128x128 scan of 256x256 uint16 frames, mode 6, one FEI2 record giving the scan
# size: 2.0 GiB), then measures in one run, side by side with the MIB benchmark's cases:
#   cp (page cache), cp + sync of the copy (the durable-write I/O limit; emconv fsyncs its output),
#   emconv convert --compression none | default (gzip:1+shuffle) | zstd, with 2 threads and 1,
#   and emconv info (headers only).
# Prints wall time, MB/s, ratio to cp+sync, peak RSS (GNU time), output size.
# Usage: benchmarks/mrc_bench.sh [WORKDIR] [SCAN]   (SCAN like 128x128; needs ~7 GB free)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-bench-mrc}"
SCAN="${2:-128x128}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release >/dev/null
BIN=.build/release/emconv
GEN=.build/release/emconv-fixtures
IN="$WORK/bench_4dstem.mrc"
if [ ! -f "$IN" ]; then
  echo "generating $IN ($SCAN scan of 256x256 uint16 frames)…"
  "$GEN" bench-mrc "$IN" --scan "$SCAN" --det 256
fi
SIZE=$(stat -c %s "$IN")
cat "$IN" > /dev/null  # warm the page cache: every run below reads from memory

declare -A T R
measure() { # name, command…
  local name=$1; shift
  sync; sleep 1
  local out tf
  tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %M" "$@" >/dev/null 2>&1 || { echo "$name failed" >&2; }
  out=$(tail -1 "$tf"); rm -f "$tf"
  T[$name]=${out% *}; R[$name]=${out#* }
}
measure cp cp "$IN" "$WORK/copy.mrc"; rm -f "$WORK/copy.mrc"
measure cp+sync sh -c "cp '$IN' '$WORK/copy.mrc' && sync '$WORK/copy.mrc'"; rm -f "$WORK/copy.mrc"
SIZES=()
for c in none default zstd; do
  for th in 2 1; do
    name="emconv $c -j$th"
    opt=(); [ "$c" != default ] && opt=(--compression "$c")
    measure "$name" "$BIN" convert "$IN" -o "$WORK/out.nxs" --overwrite --quiet --threads "$th" "${opt[@]}"
    SIZES+=("$name=$(stat -c %s "$WORK/out.nxs")")
    rm -f "$WORK/out.nxs"
  done
done
measure "emconv info" "$BIN" info "$IN"

base=${T[cp+sync]}
printf "\ninput: %s (%.2f GiB), %s cores, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$($BIN --version)"
printf "%-22s %8s %10s %9s %10s %12s\n" case "wall s" "MB/s" "x cp+sync" "peak RSS" "output"
for name in cp cp+sync "emconv none -j2" "emconv none -j1" "emconv default -j2" "emconv default -j1" "emconv zstd -j2" "emconv zstd -j1" "emconv info"; do
  t=${T[$name]}; r=${R[$name]}
  mbs=$(echo "$SIZE/1000000/($t+0.0001)" | bc -l)
  ratio=$(echo "$t/$base" | bc -l)
  osz=""; for s in "${SIZES[@]}"; do [ "${s%%=*}" = "$name" ] && osz=$(echo "${s#*=}/1048576" | bc)" MiB"; done
  [ "$name" = "emconv info" ] && mbs=0
  printf "%-22s %8.2f %10.0f %9.2f %8.0f MiB %12s\n" "$name" "$t" "$mbs" "$ratio" "$(echo "$r/1024" | bc -l)" "$osz"
done

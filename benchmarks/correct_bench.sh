#!/usr/bin/env bash
# Corrections and derived views benchmark (issue 16): a generated 2 GiB Merlin MIB (128x128 scan of
# 256x256 U16 frames) → NeXus (default gzip:1 + shuffle, 2 threads), in one run, side by side:
#   cp + sync (the durable-write I/O limit), plain conversion, --bin det_y=2,det_x=2, --chunks balanced,
#   --dark FILE --gain FILE (raw kept beside: two datasets written; corrected frames in bands of 128 rows,
#   gzip-coded against the previous frame), the same with --drop-raw and with --chunks frame (whole frames), and
#   --vbf/--vadf/--sum-pattern/--max-pattern; then plain and dark+gain with zstd:1, and dark+gain
#   uncompressed (the corrected float32 values barely compress: the codec, not the arithmetic, is the cost); wall time, ratio to cp+sync and to the plain conversion,
#   peak RSS (GNU time), output size. The dark (a 10-frame stack) and the gain map (float32) are raw
#   files with JSON descriptors, generated with NumPy.
# Usage: benchmarks/correct_bench.sh [WORKDIR]   (needs ~6 GB free and the interop venv .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-correct-bench}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release --product emconv >/dev/null && swift build -c release --product emconv-fixtures >/dev/null
BIN=${EMCONV_BIN:-.build/release/emconv}  # EMCONV_BIN: another build (before/after in one session)
GEN=.build/release/emconv-fixtures
IN="$WORK/bench.mib"
[ -f "$IN" ] || "$GEN" bench-mib "$IN" --scan 128x128 --det 256 --depth 12
.venv/bin/python - "$WORK" <<'EOF'
import json, sys, numpy as np
w = sys.argv[1]
rng = np.random.default_rng(1)
for name, a in [("dark.raw", rng.integers(0, 20, (10, 256, 256)).astype("<u2")),
                ("gain.raw", (0.9 + 0.2 * rng.random((256, 256))).astype("<f4"))]:
    a.tofile(f"{w}/{name}")
    json.dump({"dtype": a.dtype.str, "shape": list(a.shape), "signal_rank": 2}, open(f"{w}/{name}.json", "w"))
EOF
SIZE=$(stat -L -c %s "$IN")
cat "$IN" > /dev/null

declare -A T R O
measure() { # name, output, command…
  local name=$1 out=$2; shift 2
  sync; sleep 1
  local tf; tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %M" "$@" >/dev/null 2>&1 || echo "$name failed" >&2
  local line; line=$(tail -1 "$tf"); rm -f "$tf"
  T[$name]=${line% *}; R[$name]=${line#* }
  O[$name]=$([ -e "$out" ] && du -sm "$out" | cut -f1 || echo 0)
  rm -rf "$out"
}
run() { local name=$1 out="$WORK/$2"; shift 2; measure "$name" "$out" "$BIN" convert "$IN" -o "$out" --overwrite --quiet --threads 2 "$@"; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
measure "cp+sync" "$WORK/copy.mib" sh -c "cp '$IN' '$WORK/copy.mib' && sync '$WORK/copy.mib'"
run "plain" plain.nxs
run "bin 2x2 det" bin.nxs --bin det_y=2,det_x=2
run "chunks balanced" balanced.nxs --chunks balanced
run "dark+gain" corr.nxs --dark "$WORK/dark.raw" --gain "$WORK/gain.raw"
run "dark+gain drop-raw" corrdrop.nxs --dark "$WORK/dark.raw" --gain "$WORK/gain.raw" --drop-raw
run "dark+gain chunks frame" corrframe.nxs --dark "$WORK/dark.raw" --gain "$WORK/gain.raw" --chunks frame
run "plain zstd:1" plainz.nxs --compression zstd:1
run "dark+gain zstd:1" corrz.nxs --dark "$WORK/dark.raw" --gain "$WORK/gain.raw" --compression zstd:1
run "dark+gain drop-raw none" corrnone.nxs --dark "$WORK/dark.raw" --gain "$WORK/gain.raw" --drop-raw --compression none
run "views vbf+vadf+sum+max" views.nxs --vbf 40 --vadf 60:120 --sum-pattern --max-pattern

base=${T[cp+sync]}; plain=${T[plain]}
printf "\ninput: %s (%.2f GiB), %s cores, load average before %s, after %s, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$($BIN --version)"
printf "| %-24s | %7s | %9s | %8s | %9s | %7s |\n" case "wall s" "x cp+sync" "x plain" "peak RSS" "output"
printf "|---|---|---|---|---|---|\n"
for name in "cp+sync" "plain" "bin 2x2 det" "chunks balanced" "dark+gain" "dark+gain drop-raw" "dark+gain chunks frame" "plain zstd:1" "dark+gain zstd:1" "dark+gain drop-raw none" "views vbf+vadf+sum+max"; do
  printf "| %-24s | %7.2f | %9.2f | %8.2f | %5.0f MiB | %4s MiB |\n" "$name" "${T[$name]}" "$(echo "${T[$name]}/$base" | bc -l)" \
    "$(echo "${T[$name]}/$plain" | bc -l)" "$(echo "${R[$name]}/1024" | bc -l)" "${O[$name]}"
done

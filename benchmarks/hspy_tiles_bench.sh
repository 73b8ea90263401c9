#!/usr/bin/env bash
# HyperSpy lazy saves in tiles that cut frames (issue 14 follow-up): a SCAN scan of 256x256 uint16
# Poisson counts saved by HyperSpy in 26x26x26x26 chunks, .hspy (RosettaSciIO's default gzip +
# shuffle) and .zspy (Blosc zstd:1), measured in one run, side by side:
#   cp + sync of each file (the durable-write I/O limit; emconv fsyncs its output),
#   HyperSpy loading it (hs.load, not lazy: every chunk decoded once),
#   emconv converting it to NeXus zstd:1 (BEFORE=path/to/older/emconv adds the older binary,
#   stopped after LIMIT seconds).
# Prints wall time, ratio to cp+sync, peak RSS (GNU time).
# Usage: benchmarks/hspy_tiles_bench.sh [WORKDIR] [SCAN] [THREADS]   (env BEFORE, LIMIT=240)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-hspy-tiles}"
SCAN="${2:-64x64}"
TH="${3:-2}"
LIMIT="${LIMIT:-240}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release --product emconv >/dev/null
BIN=.build/release/emconv
PY=.venv/bin/python
BASE="$WORK/t${SCAN}"
if [ ! -e "$BASE.hspy" ] || [ ! -e "$BASE.zspy" ]; then
  echo "generating $BASE.hspy and .zspy ($SCAN scan of 256x256 uint16, 26^4 tiles)…"
  "$PY" - "$BASE" "${SCAN%x*}" "${SCAN#*x}" <<'PY'
import sys, logging, warnings
warnings.filterwarnings("ignore"); logging.getLogger("hyperspy").setLevel(logging.ERROR)
import numpy as np, dask.array as da, hyperspy.api as hs
out, ny, nx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = da.random.RandomState(1).poisson(3.0, size=(ny, nx, 256, 256), chunks=(26, 26, 26, 26)).astype(np.uint16)
s = hs.signals.Signal2D(d).as_lazy()
for ext in ("hspy", "zspy"):
    s.save(f"{out}.{ext}", overwrite=True, chunks=(26, 26, 26, 26), show_progressbar=False)
PY
fi
cat > "$WORK/hs_load.py" <<'PY'
import sys, logging, warnings
warnings.filterwarnings("ignore"); logging.getLogger("hyperspy").setLevel(logging.ERROR)
import hyperspy.api as hs
s = hs.load(sys.argv[1])
print(s.data.shape, s.data.dtype)
PY
declare -A T R
CASES=()
measure() { # name, command… (stopped after LIMIT s)
  local name=$1; shift
  sync; sleep 1
  if ! timeout "$LIMIT" /usr/bin/time -o "$WORK/.time" -f "%e %M" "$@" >/dev/null 2>"$WORK/.stderr"; then
    if [ "$(tail -1 "$WORK/.time" 2>/dev/null | cut -c1-7)" = "Command" ] || [ ! -s "$WORK/.time" ]; then
      echo "$name: stopped after $LIMIT s or failed" >&2; tail -2 "$WORK/.stderr" >&2
    fi
  fi
  local res; res=$(tail -1 "$WORK/.time" 2>/dev/null || true)
  T[$name]=${res% *}; R[$name]=${res#* }
  CASES+=("$name")
  rm -f "$WORK/.time"
}
for ext in hspy zspy; do
  IN="$BASE.$ext"
  cat $(find "$IN" -type f) > /dev/null  # page cache warm
  measure "cp+sync .$ext" sh -c "cp -r '$IN' '$WORK/copy.$ext' && sync"
  rm -rf "$WORK/copy.$ext"
  measure "HyperSpy hs.load .$ext" "$PY" "$WORK/hs_load.py" "$IN"
  measure "emconv .$ext -> NeXus zstd:1" "$BIN" convert "$IN" -o "$WORK/o.nxs" --quiet --overwrite --threads "$TH" --compression zstd:1
  if [ -n "${BEFORE:-}" ]; then
    measure "emconv before .$ext -> NeXus zstd:1" "$BEFORE" convert "$IN" -o "$WORK/o.nxs" --quiet --overwrite --threads "$TH" --compression zstd:1
  fi
  rm -f "$WORK/o.nxs"
done
printf "%-40s %10s %8s %10s\n" case "wall s" "x cp+sync" "peak RSS"
for c in "${CASES[@]}"; do
  ext=${c##*.}; ext=${ext%% *}
  base=${T["cp+sync .$ext"]:-1}
  printf "%-40s %10s %8s %7s MiB\n" "$c" "${T[$c]:-stopped}" "$(awk -v a="${T[$c]:-0}" -v b="$base" 'BEGIN{printf "%.1f", a/b}')" "$(( ${R[$c]:-0} / 1024 ))"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

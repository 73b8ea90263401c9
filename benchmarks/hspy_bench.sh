#!/usr/bin/env bash
# HyperSpy formats benchmark (issue 14): a 2 GiB 4D-STEM Merlin MIB (128x128 scan of 256x256 U16
# frames, generated as mib_convert.sh does) measured in one run, side by side:
#   cp and cp + sync of the copy (the durable-write I/O limit; emconv fsyncs its output),
#   emconv convert to .hspy (default gzip:1 + shuffle, and zstd:1), to .zspy (default zstd:1) and to EMD 1.0
#   (default gzip:1 + shuffle),
#   HyperSpy saving the same data (hs.load of emconv's uncompressed NeXus output, use_default=True,
#   lazy) to .hspy (RosettaSciIO's default gzip) and to .zspy (Blosc zstd:1),
#   and emconv reading those HyperSpy files back (→ NeXus zstd:1).
# Prints wall time, ratio to cp+sync, peak RSS (GNU time) and output size.
# Usage: benchmarks/hspy_bench.sh [WORKDIR] [SCAN] [THREADS]
#   (needs ~10 GB free, GNU time and .venv from scripts/interop.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-hspy-bench}"
SCAN="${2:-128x128}"
TH="${3:-2}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release --product emconv >/dev/null
swift build -c release --product emconv-fixtures >/dev/null
BIN=.build/release/emconv
PY=.venv/bin/python
IN="$WORK/bench.mib"
if [ ! -f "$IN" ]; then
  echo "generating $IN ($SCAN scan of 256x256 U16 frames)…"
  .build/release/emconv-fixtures bench-mib "$IN" --scan "$SCAN" --det 256 --depth 12
fi
SIZE=$(stat -c %s "$IN")
cat "$IN" > /dev/null  # page cache warm: every run reads from memory

declare -A T R S
CASES=()
measure() { # name, output (for its size), command…
  local name=$1 out=$2; shift 2
  rm -rf "$out"; sync; sleep 1
  /usr/bin/time -o "$WORK/.time" -f "%e %M" "$@" >/dev/null 2>"$WORK/.stderr" || { echo "failed: $name" >&2; tail -3 "$WORK/.stderr" >&2; }
  local res; res=$(tail -1 "$WORK/.time")
  T[$name]=${res% *}; R[$name]=${res#* }
  S[$name]=$(du -sb "$out" 2>/dev/null | cut -f1 || echo 0)
  CASES+=("$name")
}
measure cp "$WORK/copy.mib" cp "$IN" "$WORK/copy.mib"
measure cp+sync "$WORK/copy.mib" sh -c "cp '$IN' '$WORK/copy.mib' && sync '$WORK/copy.mib'"
rm -f "$WORK/copy.mib"
measure "emconv hspy gzip:1" "$WORK/o.hspy" "$BIN" convert "$IN" -o "$WORK/o.hspy" --quiet --threads "$TH"
measure "emconv hspy zstd:1" "$WORK/oz.hspy" "$BIN" convert "$IN" -o "$WORK/oz.hspy" --quiet --threads "$TH" --compression zstd:1
measure "emconv zspy zstd:1" "$WORK/o.zspy" "$BIN" convert "$IN" -o "$WORK/o.zspy" --quiet --threads "$TH"
measure "emconv emd gzip:1" "$WORK/o.emd" "$BIN" convert "$IN" -o "$WORK/o.emd" --quiet --threads "$TH"
rm -rf "$WORK/o.hspy" "$WORK/oz.hspy" "$WORK/o.zspy" "$WORK/o.emd"
# HyperSpy saves the same data: a lazy signal over emconv's uncompressed NeXus output.
"$BIN" convert "$IN" -o "$WORK/src.nxs" --quiet --compression none --no-preview --overwrite
cat > "$WORK/hs_save.py" <<'PY'
import sys, logging, warnings
warnings.filterwarnings("ignore"); logging.getLogger("hyperspy").setLevel(logging.ERROR)
import hyperspy.api as hs
s = hs.load(sys.argv[1], lazy=True, use_default=True)
s.save(sys.argv[2], overwrite=True, show_progressbar=False)
PY
measure "hyperspy save hspy" "$WORK/hs.hspy" "$PY" "$WORK/hs_save.py" "$WORK/src.nxs" "$WORK/hs.hspy"
measure "hyperspy save zspy" "$WORK/hs.zspy" "$PY" "$WORK/hs_save.py" "$WORK/src.nxs" "$WORK/hs.zspy"
rm -f "$WORK/src.nxs"
# emconv reads HyperSpy's files (gzip HDF5 chunks; Blosc zarr chunks) and writes NeXus zstd:1.
measure "emconv hs.hspy→nxs" "$WORK/r1.nxs" "$BIN" convert "$WORK/hs.hspy" -o "$WORK/r1.nxs" --quiet --threads "$TH" --compression zstd:1 --no-preview
measure "emconv hs.zspy→nxs" "$WORK/r2.nxs" "$BIN" convert "$WORK/hs.zspy" -o "$WORK/r2.nxs" --quiet --threads "$TH" --compression zstd:1 --no-preview
rm -rf "$WORK/hs.hspy" "$WORK/hs.zspy" "$WORK/r1.nxs" "$WORK/r2.nxs"

base=${T[cp+sync]}
printf "\ninput: %s (%.2f GiB), %s cores, --threads %s, %s, load average %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$TH" "$($BIN --version)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-22s %8s %10s %10s %10s\n" case "wall s" "x cp+sync" "peak RSS" "output"
for name in "${CASES[@]}"; do
  t=${T[$name]}; r=${R[$name]}; s=${S[$name]:-0}
  printf "%-22s %8.2f %10.2f %6.0f MiB %6.0f MiB\n" "$name" "$t" "$(echo "$t/$base" | bc -l)" "$(echo "$r/1024" | bc -l)" "$(echo "$s/1048576" | bc -l)"
done

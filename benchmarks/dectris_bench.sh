#!/usr/bin/env bash
# bitshuffle-LZ4 benchmark (issue 13), two parts in one run:
# 1. Writing: the 2 GiB Merlin MIB of mib_convert.sh (128x128 scan of 256x256 U16, sparse
#    counting pattern) → NeXus, side by side: cp + sync (the durable-write limit), emconv
#    --compression none, zstd:1, zstd:3, bitshuffle-lz4 and bitshuffle-zstd (level 1), on 2 threads and 1. Wall time, ratio
#    to cp+sync, peak RSS (GNU time), output size, and the 1-minute load average before each run
#    (the machine is shared).
# 2. Reading: an ARINA-style acquisition (benchmarks/make_arina.py: 320x320 scan of 192x192 uint32
#    frames, bitshuffle-LZ4, >= 1 GiB of data files): emconv convert (to bitshuffle-lz4) vs
#    h5py + hdf5plugin reading every frame, in frames/s, on 2 cores and on 1 (taskset -c 0).
# Usage: [PARTS="1 2"] benchmarks/dectris_bench.sh [WORKDIR]   (needs ~15 GB free and the .venv of interop.sh;
#        PARTS=1 runs the writing part only, and needs no ARINA-style acquisition)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-bench}"
PARTS="${PARTS:-1 2}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
PY=.venv/bin/python
"$PY" -c 'import h5py, hdf5plugin' 2>/dev/null || { echo "needs .venv with h5py + hdf5plugin (bash scripts/interop.sh)"; exit 1; }
swift build -c release --product emconv >/dev/null && swift build -c release --product emconv-fixtures >/dev/null
BIN=.build/release/emconv
GEN=.build/release/emconv-fixtures
IN="$WORK/bench.mib"
[ -f "$IN" ] || "$GEN" bench-mib "$IN" --scan 128x128 --det 256 --depth 12
SIZE=$(stat -c %s "$IN")
ARINA="$WORK/arina"
if [[ " $PARTS " == *" 2 "* ]]; then
  [ -f "$ARINA/arina_master.h5" ] || "$PY" benchmarks/make_arina.py "$ARINA" 320x320
  ASIZE=$(cat "$ARINA"/arina_data_*.h5 | wc -c)
fi
uptime

declare -A T R O L
measure() { # name, command…
  local name=$1; shift
  sync; sleep 1
  L[$name]=$(cut -d' ' -f1 /proc/loadavg)
  local tf out
  tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %M" "$@" >/dev/null 2>&1 || echo "$name failed" >&2
  out=$(tail -1 "$tf"); rm -f "$tf"
  T[$name]=${out% *}; R[$name]=${out#* }
}

# Part 1: writing.
cat "$IN" > /dev/null
measure cp+sync sh -c "cp '$IN' '$WORK/copy.mib' && sync '$WORK/copy.mib'"; O[cp+sync]=$SIZE; rm -f "$WORK/copy.mib"
W=(cp+sync)
for c in none zstd:1 zstd:3 bitshuffle-lz4 bitshuffle-zstd:1; do
  for th in 2 1; do
    name="emconv $c -j$th"
    measure "$name" "$BIN" convert "$IN" -o "$WORK/out.nxs" --overwrite --quiet --threads "$th" --compression "$c"
    O[$name]=$(stat -c %s "$WORK/out.nxs"); rm -f "$WORK/out.nxs"
    W+=("$name")
  done
done

RD=()
if [[ " $PARTS " == *" 2 "* ]]; then
  # Part 2: reading the ARINA-style acquisition (data files in the page cache).
  cat "$ARINA"/*.h5 > /dev/null
  FRAMES=$("$PY" -c "import h5py,sys; f=h5py.File('$ARINA/arina_master.h5','r'); print(sum(f['entry/data'][k].shape[0] for k in f['entry/data']))")
  cat > "$WORK/h5read.py" <<'PY'
import sys, h5py, hdf5plugin
f = h5py.File(sys.argv[1], "r")
n = 0
for k in sorted(f["entry/data"]):
    d = f["entry/data"][k]
    for i in range(0, d.shape[0], 256):
        n += d[i:i + 256].shape[0]
print(n)
PY
  measure "emconv convert, 2 cores" "$BIN" convert "$ARINA/arina_master.h5" -o "$WORK/arina.nxs" --overwrite --quiet --threads 2 --compression bitshuffle-lz4
  O["emconv convert, 2 cores"]=$(stat -c %s "$WORK/arina.nxs"); rm -f "$WORK/arina.nxs"
  measure "emconv convert, 1 core" taskset -c 0 "$BIN" convert "$ARINA/arina_master.h5" -o "$WORK/arina.nxs" --overwrite --quiet --threads 1 --compression bitshuffle-lz4
  O["emconv convert, 1 core"]=$(stat -c %s "$WORK/arina.nxs"); rm -f "$WORK/arina.nxs"
  measure "h5py+hdf5plugin read, 2 cores" "$PY" "$WORK/h5read.py" "$ARINA/arina_master.h5"
  measure "h5py+hdf5plugin read, 1 core" taskset -c 0 env OMP_NUM_THREADS=1 "$PY" "$WORK/h5read.py" "$ARINA/arina_master.h5"
  RD=("emconv convert, 2 cores" "emconv convert, 1 core" "h5py+hdf5plugin read, 2 cores" "h5py+hdf5plugin read, 1 core")
fi

base=${T[cp+sync]}
printf "\nwriting: %s (%.2f GiB), %s cores, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$($BIN --version)"
printf "%-28s %8s %10s %9s %10s %12s %8s %6s\n" case "wall s" "MB/s" "x cp+sync" "peak RSS" "output" "ratio" "load"
for name in "${W[@]}"; do
  t=${T[$name]}; r=${R[$name]}; o=${O[$name]}
  printf "%-28s %8.2f %10.0f %9.2f %6.0f MiB %8.1f MiB %7.1fx %6s\n" "$name" "$t" "$(echo "$SIZE/1000000/($t+0.0001)" | bc -l)" \
    "$(echo "$t/$base" | bc -l)" "$(echo "$r/1024" | bc -l)" "$(echo "$o/1048576" | bc -l)" "$(echo "$SIZE/$o" | bc -l)" "${L[$name]}"
done
if [ ${#RD[@]} -gt 0 ]; then
  printf "\nreading: %s frames of 192x192 uint32 (%.2f GiB of bitshuffle-LZ4 data files, %.2f GiB decoded)\n" "$FRAMES" \
    "$(echo "$ASIZE/1073741824" | bc -l)" "$(echo "$FRAMES*192*192*4/1073741824" | bc -l)"
  printf "%-32s %8s %10s %10s %6s\n" case "wall s" "frames/s" "peak RSS" "load"
  for name in "${RD[@]}"; do
    t=${T[$name]}; r=${R[$name]}
    printf "%-32s %8.2f %10.0f %6.0f MiB %6s\n" "$name" "$t" "$(echo "$FRAMES/($t+0.0001)" | bc -l)" "$(echo "$r/1024" | bc -l)" "${L[$name]}"
  done
fi
printf "\nbitshuffle-LZ4 codec on one core (GB/s of uncompressed data):\n"
"$GEN" bench-bitshuffle 1
uptime

#!/usr/bin/env bash
# Writers benchmark (issue 7): a 2 GiB 4D-STEM Merlin MIB (128x128 scan of 256x256 U16 frames)
# converted to NeXus zstd, zspy (zstd:1 + shuffle), zspy.zip and TIFF (--stack, deflate), each
# with 1 and 2 threads; wall time as a ratio to `cp` of the same file (page cache warm), peak RSS
# (GNU time), output size; and HyperSpy/RosettaSciIO saving the same data to .zspy in the same
# run (lazy load of emconv's own uncompressed zspy, then s.save(...zspy) with its default Blosc
# zstd:1 compressor), for comparison.
# Usage: benchmarks/writers_bench.sh [WORKDIR] [SCAN]   (needs ~8 GB free and .venv from scripts/interop.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-writers-bench}"
SCAN="${2:-128x128}"
NY=${SCAN%x*}; NX=${SCAN#*x}
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release >/dev/null
BIN=.build/release/emconv
PY=.venv/bin/python
IN="$WORK/bench.mib"
if [ ! -f "$IN" ]; then
  echo "generating $IN ($SCAN scan of 256x256 U16 frames)…"
  .build/release/emconv-fixtures bench-mib "$IN" --scan "$SCAN" --det 256 --depth 12 >/dev/null 2>&1 || true
  if [ ! -s "$IN" ]; then
    # Synthetic counting data: 384-byte ASCII header padded with NUL, then 256x256 big-endian U16.
    python3 - "$IN" "$NY" "$NX" <<'PY'
import sys, numpy as np
path, ny, nx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:256, 0:256]
disk = np.exp(-((yy - 128) ** 2 + (xx - 128) ** 2) / (2 * 30.0 ** 2))
with open(path, "wb") as f:
    for i in range(ny * nx):
        h = (f"MQ1,{i + 1:06d},00384,01,0256,0256,U16,   1x1,01,2021-04-15 15:01:38.996867,0.001000,0,0,0,"
             "2.000000E+0,5.110000E+2,0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0,"
             "3RX,011,511,000,000,000,000,000,000,175,010,200,125,100,100,093,100,099,030,128,004,255,140,128,191,179,511,511,"
             f"MQ1A,2021-04-15T14:01:38.{i:06d}000Z,1000000ns,12,").encode()
        f.write(h.ljust(384, b"\0"))
        lam = disk * (50 + 20 * np.sin(i / 50.0)) + 0.2
        f.write(rng.poisson(lam).astype(">u2").tobytes())
PY
  fi
fi
SIZE=$(stat -c %s "$IN")
cat "$IN" > /dev/null

declare -A T R S
measure() { # name, output (for size), command…
  local name=$1 out=$2; shift 2
  rm -rf "$out"; sync; sleep 1
  local res
  /usr/bin/time -o "$WORK/.time" -f "%e %M" "$@" >/dev/null 2>"$WORK/.stderr" || { echo "failed: $name" >&2; tail -3 "$WORK/.stderr" >&2; }
  res=$(tail -1 "$WORK/.time")
  T[$name]=${res% *}; R[$name]=${res#* }
  S[$name]=$(du -sb "$out" 2>/dev/null | cut -f1 || echo 0)
}
SS=(--scan-shape "$NY,$NX")
measure cp "$WORK/copy.mib" cp "$IN" "$WORK/copy.mib"; rm -f "$WORK/copy.mib"
CASES=("cp")
for th in 1 2; do
  measure "nexus zstd -j$th" "$WORK/o.nxs" "$BIN" convert "$IN" -o "$WORK/o.nxs" --quiet "${SS[@]}" --compression zstd:1 --threads $th --no-preview
  measure "zspy -j$th" "$WORK/o.zspy" "$BIN" convert "$IN" -o "$WORK/o.zspy" --quiet "${SS[@]}" --threads $th
  measure "zspy.zip -j$th" "$WORK/o.zspy.zip" "$BIN" convert "$IN" -o "$WORK/o.zspy.zip" --quiet "${SS[@]}" --threads $th
  measure "tiff deflate -j$th" "$WORK/o.tif" "$BIN" convert "$IN" -o "$WORK/o.tif" --quiet "${SS[@]}" --stack --threads $th
  CASES+=("nexus zstd -j$th" "zspy -j$th" "zspy.zip -j$th" "tiff deflate -j$th")
done
rm -rf "$WORK/o.nxs" "$WORK/o.zspy.zip" "$WORK/o.tif"
# HyperSpy: lazily read an uncompressed emconv zspy of the same data, save with RosettaSciIO's default.
"$BIN" convert "$IN" -o "$WORK/src.zspy" --quiet "${SS[@]}" --compression none --overwrite
cat > "$WORK/hs_save.py" <<'PY'
import sys, logging, warnings
warnings.filterwarnings("ignore"); logging.getLogger("hyperspy").setLevel(logging.ERROR)
import hyperspy.api as hs
s = hs.load(sys.argv[1], lazy=True)
s.save(sys.argv[2], overwrite=True, show_progressbar=False)
PY
measure "hyperspy zspy save" "$WORK/hs.zspy" "$PY" "$WORK/hs_save.py" "$WORK/src.zspy" "$WORK/hs.zspy"
measure "hyperspy load+sum" "$WORK/none" "$PY" -c "import hyperspy.api as hs; print(float(hs.load('$WORK/o.zspy', lazy=True).data.sum().compute()))"
CASES+=("hyperspy zspy save" "hyperspy load+sum")
rm -rf "$WORK/src.zspy" "$WORK/hs.zspy" "$WORK/o.zspy"

base=${T[cp]}; [ "$(echo "$base < 0.01" | bc)" = 1 ] && base=0.01
printf "\ninput: %s (%.2f GiB), %s cores, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$($BIN --version)"
printf "%-22s %8s %9s %10s %12s\n" case "wall s" "x cp" "peak RSS" "output"
for name in "${CASES[@]}"; do
  t=${T[$name]}; r=${R[$name]}; s=${S[$name]:-0}
  printf "%-22s %8.2f %9.2f %6.0f MiB %8.0f MiB\n" "$name" "$t" "$(echo "$t/$base" | bc -l)" "$(echo "$r/1024" | bc -l)" "$(echo "$s/1048576" | bc -l)"
done
printf "speed-up 2 vs 1 thread: nexus zstd %.2fx, zspy %.2fx, zspy.zip %.2fx, tiff %.2fx\n" \
  "$(echo "${T[nexus zstd -j1]}/${T[nexus zstd -j2]}" | bc -l)" "$(echo "${T[zspy -j1]}/${T[zspy -j2]}" | bc -l)" \
  "$(echo "${T[zspy.zip -j1]}/${T[zspy.zip -j2]}" | bc -l)" "$(echo "${T[tiff deflate -j1]}/${T[tiff deflate -j2]}" | bc -l)"

#!/usr/bin/env bash
# Processing options benchmark (issue 16): a generated 2 GiB Merlin MIB (128x128 scan of 256x256 U16
# frames) → NeXus (default gzip:1 + shuffle, 2 threads), in one run, side by side:
#   cp + sync (the durable-write I/O limit), plain conversion, --bin det_y=2,det_x=2, --crop scan_x=0:127,
#   --chunks balanced; wall time, ratio to cp+sync and to the plain conversion, peak RSS, output size.
# Then the access patterns with h5py on the frame- and balanced-chunked outputs: one frame, and one
# detector pixel over the whole scan (a virtual detector image), best of 3 reads each.
# Usage: benchmarks/shape_bench.sh [WORKDIR]   (needs ~5 GB free and the interop venv .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-shape-bench}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
swift build -c release --product emconv >/dev/null && swift build -c release --product emconv-fixtures >/dev/null
BIN=.build/release/emconv
GEN=.build/release/emconv-fixtures
IN="$WORK/bench.mib"
[ -f "$IN" ] || "$GEN" bench-mib "$IN" --scan 128x128 --det 256 --depth 12
SIZE=$(stat -c %s "$IN")
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
}
measure "cp+sync" "$WORK/copy.mib" sh -c "cp '$IN' '$WORK/copy.mib' && sync '$WORK/copy.mib'"; rm -f "$WORK/copy.mib"
measure "plain" "$WORK/plain.nxs" "$BIN" convert "$IN" -o "$WORK/plain.nxs" --overwrite --quiet --threads 2
measure "bin 2x2 det" "$WORK/bin.nxs" "$BIN" convert "$IN" -o "$WORK/bin.nxs" --overwrite --quiet --threads 2 --bin det_y=2,det_x=2
measure "crop scan_x 0:127" "$WORK/crop.nxs" "$BIN" convert "$IN" -o "$WORK/crop.nxs" --overwrite --quiet --threads 2 --crop scan_x=0:127
measure "chunks balanced" "$WORK/balanced.nxs" "$BIN" convert "$IN" -o "$WORK/balanced.nxs" --overwrite --quiet --threads 2 --chunks balanced

base=${T[cp+sync]}; plain=${T[plain]}
printf "\ninput: %s (%.2f GiB), %s cores, load average %s, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$($BIN --version)"
printf "| %-18s | %7s | %9s | %8s | %9s | %7s |\n" case "wall s" "x cp+sync" "x plain" "peak RSS" "output"
printf "|---|---|---|---|---|---|\n"
for name in "cp+sync" "plain" "bin 2x2 det" "crop scan_x 0:127" "chunks balanced"; do
  printf "| %-18s | %7.2f | %9.2f | %8.2f | %5.0f MiB | %3s MiB |\n" "$name" "${T[$name]}" "$(echo "${T[$name]}/$base" | bc -l)" \
    "$(echo "${T[$name]}/$plain" | bc -l)" "$(echo "${R[$name]}/1024" | bc -l)" "${O[$name]}"
done

.venv/bin/python - "$WORK/plain.nxs" "$WORK/balanced.nxs" <<'EOF'
import sys, time
import h5py, numpy as np
print("\n| output | chunks | one frame s | one pixel over the scan s |\n|---|---|---|---|")
for path in sys.argv[1:]:
    with h5py.File(path, "r") as h:
        d = h["entry1/measurement/event1/image1/image_4d/real"]
        def best(f):
            t = []
            for _ in range(3):
                t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
            return min(t)
        frame = best(lambda: d[64, 64])
        pixel = best(lambda: d[:, :, 128, 128])
        assert np.array_equal(d[:, :, 128, 128], h5py.File(sys.argv[1], "r")["entry1/measurement/event1/image1/image_4d/real"][:, :, 128, 128])
        print(f"| {path.split('/')[-1]} | {d.chunks} | {frame:.4f} | {pixel:.3f} |")
EOF
rm -f "$WORK"/*.nxs

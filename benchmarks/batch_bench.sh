#!/usr/bin/env bash
# Batch throughput (issue 6): many small files and a few large files, -j 1 vs -j 2 (this machine's
# cores), each against `cp -r` of the same tree in the same run. Prints wall time, MB/s, speed-up.
# Usage: benchmarks/batch_bench.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/emconv-batch-bench}"
swift build -c release >/dev/null
BIN=$PWD/.build/release/emconv
GEN=$PWD/.build/release/emconv-fixtures
rm -rf "$WORK"; mkdir -p "$WORK/small" "$WORK/large"
# Many small: 200 MIB files of a 4x4 scan (16 frames of 256x256 U16, ~2 MiB each).
"$GEN" bench-mib "$WORK/small/seed.mib" --scan 4x4 --det 256 --depth 12 >/dev/null
for i in $(seq -w 1 200); do cp "$WORK/small/seed.mib" "$WORK/small/s$i.mib"; cp "$WORK/small/seed.hdr" "$WORK/small/s$i.hdr"; done
rm "$WORK/small/seed.mib" "$WORK/small/seed.hdr"
# A few large: 4 files of a 64x64 scan (4096 frames, ~540 MB each).
"$GEN" bench-mib "$WORK/large/seed.mib" --scan 64x64 --det 256 --depth 12 >/dev/null
for i in 1 2 3 4; do cp "$WORK/large/seed.mib" "$WORK/large/l$i.mib"; cp "$WORK/large/seed.hdr" "$WORK/large/l$i.hdr"; done
rm "$WORK/large/seed.mib" "$WORK/large/seed.hdr"
cat "$WORK"/small/* "$WORK"/large/* > /dev/null
t() { local s e; sync; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
printf "%-8s %6s %10s %10s %10s %10s %9s\n" set files "MB" "cp -r s" "-j1 s" "-j2 s" "speed-up"
for set in small large; do
  n=$(ls "$WORK/$set"/*.mib | wc -l); mb=$(du -sm "$WORK/$set" | cut -f1)
  tc=$(t cp -r "$WORK/$set" "$WORK/copy"); rm -rf "$WORK/copy"
  t1=$(t "$BIN" batch "$WORK/$set" -o "$WORK/out1" -j 1 --progress none); rm -rf "$WORK/out1"
  t2=$(t "$BIN" batch "$WORK/$set" -o "$WORK/out2" -j 2 --progress none); rm -rf "$WORK/out2"
  printf "%-8s %6d %10d %10.2f %10.2f %10.2f %8.2fx\n" "$set" "$n" "$mb" "$tc" "$t1" "$t2" "$(echo "$t1/$t2" | bc -l)"
done

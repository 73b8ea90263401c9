#!/usr/bin/env bash
# LZ4 high-compression and block sizes for bitshuffle chunks against zstd:1 (issue 13): sizes and
# one-core encode/decode speed (MB/s of uncompressed data) per codec, on bslz4_sizes.py's data
# sets (64 frames each) and frames of the benchmark MIB.
# Usage: benchmarks/bslz4_hc.sh [BENCH.mib] [WORKDIR]   (needs cc, liblz4-dev, libzstd-dev, the .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-/tmp/emconv-correct-bench/bench.mib}"
WORK="${2:-/tmp/emconv-bslz4-hc}"
mkdir -p "$WORK"
cc -O2 -march=native -o "$WORK/bslz4_hc" benchmarks/bslz4_hc.c Sources/CBitshuffle/bitshuffle.c \
  -I Sources/CBitshuffle/include -llz4 -lzstd -lm
.venv/bin/python - "$WORK" "$MIB" <<'PY'
import os, sys
sys.path.insert(0, "benchmarks")
from bslz4_sizes import poisson_frames, arina_like, mib_frames
work, mib = sys.argv[1], sys.argv[2]
sets = [("poisson-0.01-u16", poisson_frames(0.01, 64)), ("poisson-0.1-u16", poisson_frames(0.1, 64)),
        ("poisson-0.5-u16", poisson_frames(0.5, 64)), ("poisson-1-u16", poisson_frames(1.0, 64)),
        ("arina-like-u32", arina_like(64))]
if os.path.exists(mib):
    sets.append(("bench-mib-u16", mib_frames(mib, 64)))
with open(os.path.join(work, "sets.txt"), "w") as f:
    for name, d in sets:
        d.astype(d.dtype.newbyteorder("<")).tofile(os.path.join(work, name + ".raw"))
        f.write(f"{name} {d.itemsize} {d[0].nbytes}\n")
PY
uptime
printf "%-34s %-36s %10s %8s %9s %9s %9s\n" data codec stored ratio "vs zstd:1" "enc MB/s" "dec MB/s"
while read -r name e fb; do
  taskset -c 0 "$WORK/bslz4_hc" "$WORK/$name.raw" "$e" "$fb" "$name"
done < "$WORK/sets.txt"
uptime

#!/usr/bin/env bash
# Velox spectrum-stream decoding benchmark: events/s single- and multi-threaded, peak RSS,
# and RosettaSciIO on the same generated file when a venv with rosettasciio is available.
#
# usage: benchmarks/emd_stream_bench.sh [HEIGHT WIDTH FRAMES COUNTS_PER_PIXEL]   (default 256 256 20 30)
# env:   PYTHON (python with h5py+numpy[+rosettasciio]; default .venv/bin/python, then /work/main/.venv/bin/python)
#        BENCH_DIR (scratch folder; default /tmp/emconv-emd-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
H=${1:-256}; W=${2:-256}; F=${3:-20}; CPP=${4:-30}
PY=${PYTHON:-}
for p in .venv/bin/python /work/main/.venv/bin/python; do
    if [ -z "$PY" ] && [ -x "$p" ] && "$p" -c "import h5py, numpy" 2>/dev/null; then PY=$p; fi
done
[ -n "$PY" ] || { echo "need a python with h5py and numpy (set PYTHON)"; exit 1; }
DIR=${BENCH_DIR:-/tmp/emconv-emd-bench}
mkdir -p "$DIR"
FILE="$DIR/stream_${H}x${W}x${F}_${CPP}.emd"
[ -f "$FILE" ] || "$PY" benchmarks/make_velox_stream.py "$FILE" "$H" "$W" "$F" "$CPP"
ls -l "$FILE"
swift build -c release --product emconv-fixtures >/dev/null
BIN=$(swift build -c release --show-bin-path)/emconv-fixtures
NCPU=$(nproc)
rss() { grep "Maximum resident" "$1" | awk '{printf "%.1f MiB", $6/1024}'; }
for t in 1 "$NCPU"; do
    /usr/bin/time -v "$BIN" bench-emd-stream "$FILE" "$t" 2>"$DIR/time_$t.txt" | tee "$DIR/out_$t.txt"
    echo "  emconv threads=$t peak RSS $(rss "$DIR/time_$t.txt")"
done
if "$PY" -c "import rsciio, sparse" 2>/dev/null; then
    cat > "$DIR/rsciio_bench.py" <<'PYEOF'
import sys, time, hashlib, numpy as np, h5py
from rsciio.emd import file_reader
path = sys.argv[1]
with h5py.File(path, "r") as f:
    g = f["Data/SpectrumStream"]; events = sum(g[k]["Data"].shape[0] for k in g)
t0 = time.time()
sigs = file_reader(path)
dt = time.time() - t0
eds = [s for s in sigs if s["data"].ndim == 3][0]["data"]
sha = hashlib.sha256(np.ascontiguousarray(eds).astype(eds.dtype.newbyteorder("<")).tobytes()).hexdigest()
print(f"rsciio {__import__('rsciio').__version__} events={events} seconds={dt:.3f} events_per_s={events/dt:.3e} shape={list(eds.shape)} dtype={eds.dtype} sha256={sha}")
PYEOF
    /usr/bin/time -v "$PY" "$DIR/rsciio_bench.py" "$FILE" 2>"$DIR/time_rsciio.txt" | tee "$DIR/out_rsciio.txt"
    echo "  rsciio peak RSS $(rss "$DIR/time_rsciio.txt")"
    a=$(sed -n 's/.*sha256=\([0-9a-f]*\).*/\1/p' "$DIR/out_1.txt"); b=$(sed -n 's/.*sha256=\([0-9a-f]*\).*/\1/p' "$DIR/out_rsciio.txt")
    [ "$a" = "$b" ] && echo "  decoded cubes identical (sha256 $a)" || echo "  decoded cubes differ (dtype may differ: emconv widens to uint32 when counts could overflow uint16)"
else
    echo "rosettasciio not available in $PY: comparison skipped (pip install rosettasciio sparse into .venv)"
fi

#!/usr/bin/env bash
# Loopback throughput of `emconv record` (issue 15) against a plain receiver in the same run.
# A Python server replays one Merlin acquisition (N copies of a shared 256x256 12-bit frame, U16,
# as MPX messages) per connection as fast as loopback goes; first a Python client reads it into
# /dev/null (the ceiling), then `emconv record` records it (compression none, then zstd).
# Prints MB/s, frames/s, the ratio to the ceiling, and record's peak RSS (/usr/bin/time).
# Usage: benchmarks/record_bench.sh [FRAMES]   (default 4096 = 537 MB; needs 2x that free on /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-4096}"
BIN="${EMCONV_BIN:-.build/release/emconv}"
[ -x "$BIN" ] || swift build -c release --product emconv >/dev/null
SRC=../shared/testdata/mib/Single_1_Frame_CounterDepth_12_Rows_256
[ -f "$SRC.mib" ] || { echo "record_bench: skipped: $SRC.mib absent"; exit 0; }
W=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$W"' EXIT
python3 - "$SRC" "$N" "$W" <<'PY' &
import socket, sys
src, n, w = sys.argv[1], int(sys.argv[2]), sys.argv[3]
frame = open(src + ".mib", "rb").read()
hdr = open(src + ".hdr", "rb").read().replace(b"Frames in Acquisition (Number):\t1", b"Frames in Acquisition (Number):\t%d" % n)
msg = lambda b: b"MPX,%010d," % (len(b) + 1) + b
fm = msg(frame)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(1)
open(w + "/port", "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    try:
        c.sendall(msg(hdr))
        for _ in range(n):
            c.sendall(fm)
    except OSError:
        pass
    c.close()
PY
SERVER=$!
for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
PORT=$(cat "$W/port")
BYTES=$(python3 -c "import os; print(os.path.getsize('$SRC.mib') * $N)")
echo "record_bench: $N frames of 256x256 U16 ($((BYTES / 1000000)) MB) on 127.0.0.1:$PORT"
t0=$(date +%s.%N)
python3 -c "
import socket
c = socket.create_connection(('127.0.0.1', $PORT)); b = bytearray(1 << 20); v = memoryview(b)
with open('/dev/null', 'wb') as f:
    while True:
        k = c.recv_into(v)
        if not k: break
        f.write(v[:k])
"
t1=$(date +%s.%N)
BASE=$(echo "$t1 - $t0" | bc -l)
printf "  %-26s %8.1f MB/s %8.0f frames/s\n" "python recv -> /dev/null" "$(echo "$BYTES / $BASE / 1000000" | bc -l)" "$(echo "$N / $BASE" | bc -l)"
for comp in none zstd; do
  rm -f "$W/out.nxs"
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$W/rss" "$BIN" record "merlin://127.0.0.1:$PORT" -o "$W/out.nxs" --compression "$comp" \
    --scan-shape 64,$((N / 64)) --progress none -q --json > "$W/rec.json"
  t1=$(date +%s.%N)
  T=$(echo "$t1 - $t0" | bc -l)
  RECV=$(python3 -c "import json; print(json.load(open('$W/rec.json'))['receive_seconds'])")
  printf "  %-26s %8.1f MB/s %8.0f frames/s  end to end %.2f s (%.2fx the ceiling); receive+spool %.2f s = %.1f MB/s; peak RSS %d MiB\n" \
    "emconv record ($comp)" "$(echo "$BYTES / $T / 1000000" | bc -l)" "$(echo "$N / $T" | bc -l)" "$T" \
    "$(echo "$BASE / $T" | bc -l)" "$RECV" "$(echo "$BYTES / $RECV / 1000000" | bc -l)" \
    "$(( $(cat "$W/rss") / 1024 ))"
done

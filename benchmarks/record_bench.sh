#!/usr/bin/env bash
# Loopback throughput of `emconv record` (issue 15) against a plain receiver in the same run.
# The peer is LiberTEM-live's Merlin simulator (`libertem-live-mib-sim` from .venv-live, made by
# scripts/interop.sh) replaying an acquisition of N copies of the shared 256x256 12-bit single-chip
# frame (U16; sequence numbers 1..N), cached in memory (`--cached mem`) so it sends at full speed;
# without the simulator a small Python server replays the same bytes (the script says which).
# In one run: a warm-up pass (fills the simulator's cache), then `nc` (else a Python client)
# reading one acquisition into /dev/null (the ceiling), then `emconv record` with
# `--compression none` and `zstd`. Prints MB/s, frames/s, the ratio to the ceiling and record's
# peak RSS (/usr/bin/time).
# Usage: benchmarks/record_bench.sh [FRAMES]   (default 4096 = 538 MB; needs 2x that free on /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-4096}"
BIN="${EMCONV_BIN:-.build/release/emconv}"
[ -x "$BIN" ] || swift build -c release --product emconv >/dev/null
SRC="${RECORD_BENCH_SRC:-../shared/testdata/mib/Single_1_Frame_CounterDepth_12_Rows_256}"
[ -f "$SRC.mib" ] || { echo "record_bench: skipped: $SRC.mib absent"; exit 0; }
SIM=.venv-live/bin/libertem-live-mib-sim
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT

# The acquisition as files (for the simulator) and the byte count of its stream.
python3 - "$SRC" "$N" "$W" <<'PY'
import re, sys
src, n, w = sys.argv[1], int(sys.argv[2]), sys.argv[3]
frame = open(src + ".mib", "rb").read()
hdr = open(src + ".hdr", "rb").read().replace(b"Frames in Acquisition (Number):\t1", b"Frames in Acquisition (Number):\t%d" % n)
with open(w + "/bench.mib", "wb") as f:
    for i in range(n):
        f.write(re.sub(rb"^MQ1,\d{6},", b"MQ1,%06d," % (i + 1), frame, count=1))
open(w + "/bench.hdr", "wb").write(hdr)
open(w + "/stream_bytes", "w").write(str(15 + len(hdr) + n * (15 + len(frame))))
PY
BYTES=$(cat "$W/stream_bytes")
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
if [ -x "$SIM" ]; then
  PEER="libertem-live-mib-sim (LiberTEM-live, --cached mem)"
  "$SIM" "$W/bench.hdr" --host 127.0.0.1 --data-port "$PORT" --control-port $((PORT + 1)) --trigger-port $((PORT + 2)) \
    --nav-shape 64 $((N / 64)) --cached mem >"$W/sim.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q "DataSocketServer listening" "$W/sim.log" 2>/dev/null && break; sleep 0.2; done
else
  PEER="python replay server (libertem-live not installed)"
  python3 - "$W" "$PORT" <<'PY' &
import socket, sys
w, port = sys.argv[1], int(sys.argv[2])
hdr = open(w + "/bench.hdr", "rb").read()
data = open(w + "/bench.mib", "rb").read()
frame = len(data) // int(hdr.split(b"Frames in Acquisition (Number):\t")[1].split(b"\r")[0].split(b"\n")[0])
msg = lambda b: b"MPX,%010d," % (len(b) + 1) + b
stream = msg(hdr) + b"".join(msg(data[i:i + frame]) for i in range(0, len(data), frame))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", port)); s.listen(1)
while True:
    c, _ = s.accept()
    try:
        while True:
            c.sendall(stream)
    except OSError:
        pass
    c.close()
PY
  PIDS+=($!)
  sleep 1
fi
# Two plain receivers into /dev/null; the faster one is the ceiling. `nc | head` copies every byte
# through a pipe twice; the Python client reads straight into one 1 MiB buffer.
py_receive() { python3 -c "
import socket
c = socket.create_connection(('127.0.0.1', $PORT)); b = bytearray(1 << 20); v = memoryview(b); left = $BYTES
while left > 0:
    k = c.recv_into(v, min(len(b), left))
    if not k: raise SystemExit('record_bench: the peer closed early')
    left -= k
"; }
# head stops after one acquisition and nc then dies of SIGPIPE: count the bytes instead of
# trusting the pipeline's status.
nc_receive() {
  local got
  got=$( (nc -d 127.0.0.1 "$PORT" || true) | head -c "$BYTES" | wc -c)
  [ "$got" -eq "$BYTES" ] || { echo "record_bench: nc received $got of $BYTES bytes" >&2; exit 1; }
}
now() { date +%s.%N; }
echo "record_bench: $N frames like $(basename "$SRC").mib ($((BYTES / 1000000)) MB per acquisition) from $PEER on 127.0.0.1:$PORT; $(uptime)"
t0=$(now); py_receive; t1=$(now)
printf "  %-34s %6.2f s (fills the peer's cache; not counted)\n" "warm-up: python recv" "$(echo "$t1 - $t0" | bc -l)"
BASE=
for r in py nc; do
  [ "$r" = nc ] && ! command -v nc >/dev/null && continue
  t0=$(now); ${r}_receive; t1=$(now)
  T=$(echo "$t1 - $t0" | bc -l)
  NAME="python recv_into > /dev/null"; [ "$r" = nc ] && NAME="nc | head -c BYTES > /dev/null"
  printf "  %-34s %6.2f s %8.1f MB/s %8.0f frames/s\n" "$NAME" "$T" "$(echo "$BYTES / $T / 1000000" | bc -l)" "$(echo "$N / $T" | bc -l)"
  if [ -z "$BASE" ] || [ "$(echo "$T < $BASE" | bc -l)" = 1 ]; then BASE=$T; fi
done
echo "  ceiling: the faster plain receiver, $(printf %.2f "$BASE") s"
for comp in none zstd; do
  rm -f "$W/out.nxs"
  /usr/bin/time -f "%e %M" -o "$W/time" "$BIN" record "merlin://127.0.0.1:$PORT" -o "$W/out.nxs" --compression "$comp" \
    --scan-shape 64,$((N / 64)) --progress none -q --json > "$W/rec.json"
  read -r T RSS < "$W/time"
  read -r DROPPED HELD RECV < <(python3 -c "import json; d = json.load(open('$W/rec.json')); print(d['frames_dropped'], d['held_back_seconds'], d['receive_seconds'])")
  printf "  %-34s %6.2f s %8.1f MB/s %8.0f frames/s  %.2fx the ceiling; last frame in after %.2f s; peak RSS %d MiB; dropped %s; held back %s s; output %.1f MB\n" \
    "emconv record --compression $comp" "$T" "$(echo "$BYTES / $T / 1000000" | bc -l)" "$(echo "$N / $T" | bc -l)" \
    "$(echo "$BASE / $T" | bc -l)" "$RECV" "$((RSS / 1024))" "$DROPPED" "$HELD" "$(echo "$(stat -c %s "$W/out.nxs") / 1000000" | bc -l)"
done

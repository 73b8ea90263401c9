#!/usr/bin/env bash
# The measuring part shared by the conversion benchmarks (mib_convert.sh, mrc_bench.sh): given an
# input, measures in one run cp, cp + sync of the copy (the durable-write I/O limit; emconv fsyncs its
# output), emconv convert --compression none | default | zstd on 2 threads and 1, and emconv info, and
# prints wall time, MB/s, ratio to cp+sync, peak RSS (GNU time) and output size.
# Usage: benchmarks/convert_compare.sh BIN INPUT WORKDIR [EXTS]
#   EXTS: output extensions measured in the same run (default "nxs"; e.g. "emd zspy"); with more than
#   one, each case is named after its extension ("emd default -j2").
set -euo pipefail
BIN=$1; IN=$2; WORK=$3; EXTS=${4:-nxs}
SIZE=$(stat -c %s "$IN")
cat "$IN" > /dev/null  # warm the page cache: every run below reads from memory

declare -A T R
measure() { # name, command…
  local name=$1; shift
  sync; sleep 1
  local out tf
  tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %M" "$@" >/dev/null 2>&1 || { echo "$name failed" >&2; }
  out=$(tail -1 "$tf"); rm -f "$tf"
  T[$name]=${out% *}; R[$name]=${out#* }
}
measure cp cp "$IN" "$WORK/copy.in"; rm -f "$WORK/copy.in"
measure cp+sync sh -c "cp '$IN' '$WORK/copy.in' && sync '$WORK/copy.in'"; rm -f "$WORK/copy.in"
SIZES=()
CASES=()
for ext in $EXTS; do
  prefix=emconv; [ "$EXTS" != nxs ] && prefix=$ext
  for c in none default zstd; do
    for th in 2 1; do
      name="$prefix $c -j$th"
      CASES+=("$name")
      opt=(); [ "$c" != default ] && opt=(--compression "$c")
      measure "$name" "$BIN" convert "$IN" -o "$WORK/out.$ext" --overwrite --quiet --threads "$th" "${opt[@]}"
      SIZES+=("$name=$(du -sb "$WORK/out.$ext" | cut -f1)")
      rm -rf "$WORK/out.$ext"
    done
  done
done
measure "emconv info" "$BIN" info "$IN"

base=${T[cp+sync]}
printf "\ninput: %s (%.2f GiB), %s cores, %s\n" "$IN" "$(echo "$SIZE/1073741824" | bc -l)" "$(nproc)" "$($BIN --version)"
printf "%-22s %8s %10s %9s %10s %12s\n" case "wall s" "MB/s" "x cp+sync" "peak RSS" "output"
for name in cp cp+sync "${CASES[@]}" "emconv info"; do
  t=${T[$name]}; r=${R[$name]}
  mbs=$(echo "$SIZE/1000000/($t+0.0001)" | bc -l)
  ratio=$(echo "$t/$base" | bc -l)
  osz=""; for s in "${SIZES[@]}"; do [ "${s%%=*}" = "$name" ] && osz=$(echo "${s#*=}/1048576" | bc)" MiB"; done
  [ "$name" = "emconv info" ] && mbs=0
  printf "%-22s %8.2f %10.0f %9.2f %8.0f MiB %12s\n" "$name" "$t" "$mbs" "$ratio" "$(echo "$r/1024" | bc -l)" "$osz"
done

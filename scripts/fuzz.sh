#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader and the metadata sidecar (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     build, seed, run each target SECONDS (default 300)
#   FUZZ_RUNS=N scripts/fuzz.sh [TARGET...]    build, seed, run each target for N executions (-runs=N,
#                                              no time limit: `make fuzz FUZZ_RUNS=1000000`)
#   scripts/fuzz.sh build                      only build the instrumented library and the harnesses
#   scripts/fuzz.sh seeds                      only (re)fill the corpora from fixtures and generated files
#   scripts/fuzz.sh repro TARGET FILE...       run a target once on saved inputs (a finding, a regression)
#
# Targets: mib empad dm emd nexus raw sidecar hspy zspy mrc tia tiff dectris (harnesses in fuzz/targets/). The library is built
# with -sanitize=fuzzer,address into .build-fuzz; each harness is linked by swiftc against its
# objects (SwiftPM cannot link a libFuzzer executable). Corpora grow in .build-fuzz/corpus/<target>,
# findings land in .build-fuzz/findings/<target>/ and the script exits 1 on any finding (crash,
# timeout > 10 s, RSS > 2 GiB, one allocation > 1 GiB). Every finding must become a regression file
# under fixtures/regressions/ (replayed by the unit tests).
# Environment: FUZZ_CONFIG=release|debug (default release), FUZZ_JOBS (parallel targets, default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ALL_TARGETS="mib empad dm emd nexus raw sidecar hspy zspy mrc tia tiff dectris deflate"
CONFIG="${FUZZ_CONFIG:-release}"
OUT=.build-fuzz
BIN="$OUT/bin"
CORPUS="$OUT/corpus"
FINDINGS="$OUT/findings"
export SWIFT_BACKTRACE=enable=no
export EMCONV_ROOT="$ROOT"
# Leaks are not findings here (Foundation's XML errors leak a few bytes by design); HDF5's own
# out-of-bounds reads on damaged files are suppressed (see fuzz/asan.supp).
export ASAN_OPTIONS="detect_leaks=0:suppressions=$ROOT/fuzz/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# Largest input per target (bytes): keeps executions fast while covering the seeds' headers.
max_len() {
  case "$1" in
    sidecar|raw) echo 4096 ;;
    mrc|tia|tiff) echo 32768 ;;
    emd) echo 360000 ;;
    empad) echo 300000 ;;
    mib) echo 70000 ;;
    dm) echo 120000 ;;
    *) echo 320000 ;;
  esac
}

build() {
  mkdir -p "$OUT"
  echo "fuzz: building the instrumented library ($CONFIG)…"
  local t0=$SECONDS
  if ! swift build -c "$CONFIG" --build-path "$OUT" --target EMConvTestSupport -Xswiftc -sanitize=fuzzer,address >"$OUT/build.log" 2>&1; then
    tail -30 "$OUT/build.log" >&2; echo "fuzz: library build failed (log: $OUT/build.log)" >&2; exit 2
  fi
  mkdir -p "$BIN"
  # Objects of every library module EMConvTestSupport pulls in (not executables, tests, plug-ins).
  local objs=() d opt=-O
  for d in "$OUT/$CONFIG/"*.build; do
    case "$(basename "$d")" in *-tool.build|*Tests.build|*PackageTests.build|*PackageDiscoveredTests.build|ArgumentParser*|generate_*) continue ;; esac
    [ -e "$d/main.swift.o" ] && continue
    # C targets (CBitshuffle): their objects as they are.
    if [ ! -f "$d/output-file-map.json" ]; then
      for o in "$d"/*.c.o; do [ -f "$o" ] && objs+=("$o"); done
      continue
    fi
    # Only the objects of the module's current sources (a moved file leaves its old object behind).
    while IFS= read -r o; do objs+=("$o"); done < <(python3 -c '
import json, os, sys
for src, out in json.load(open(sys.argv[1])).items():
    if src and os.path.exists(out.get("object", "")): print(out["object"])' "$d/output-file-map.json")
  done
  [ "$CONFIG" = debug ] && opt=-Onone
  # Every system-library module map (Sources/C*) and C target's headers (Sources/C*/include), so a
  # new one needs no edit here.
  local cmods=() c
  for c in Sources/C*/; do cmods+=(-I "${c%/}"); [ -d "${c}include" ] && cmods+=(-I "${c}include"); done
  for t in $ALL_TARGETS; do
    local exe="$BIN/fuzz-$t"
    if [ -x "$exe" ] && [ -z "$(find "${objs[@]}" fuzz/support fuzz/targets/$t.swift -newer "$exe" 2>/dev/null | head -1)" ]; then continue; fi
    if ! swiftc $opt -sanitize=fuzzer,address -parse-as-library -module-name "fuzz_$t" \
        -I "$OUT/$CONFIG/Modules" "${cmods[@]}" \
        -Xcc -I/usr/include/hdf5/serial fuzz/support/*.swift "fuzz/targets/$t.swift" "${objs[@]}" \
        -lhdf5_serial -lzstd -ldeflate -lcrypto -ltiff -llz4 -lblosc -o "$exe" 2>&1 | grep -v "Cannot export local symbol" >&2; then :; fi
    [ -x "$exe" ] || { echo "fuzz: linking $exe failed" >&2; exit 2; }
  done
  echo "fuzz: built in $((SECONDS - t0)) s"
}

# Seeds: committed fixtures, files the test-support writers generate and emconv's own outputs;
# never ../shared/testdata (a finding is committed under fixtures/regressions, and the shared files
# must not reach the repository, not even as mutants).
add() { local dir="$CORPUS/$1"; shift; mkdir -p "$dir"; for f in "$@"; do [ -f "$f" ] && cp -f "$f" "$dir/seed-$(basename "$f" | tr ' ' _)"; done; }
small() { find "$@" -type f -size -"$2" 2>/dev/null; }
seeds() {
  local emconv=.build/debug/emconv dmgen=.build/debug/emconv-dmgen fixgen=.build/debug/emconv-fixtures gen="$OUT/generated"
  if [ ! -x "$emconv" ] || [ ! -x "$dmgen" ] || [ ! -x "$fixgen" ]; then
    swift build --product emconv >/dev/null && swift build --product emconv-dmgen >/dev/null \
      && swift build --product emconv-fixtures >/dev/null || { echo "fuzz: swift build failed" >&2; exit 2; }
  fi
  rm -rf "$gen"; mkdir -p "$gen"
  add mib fixtures/mib/*.mib
  add sidecar fuzz/seeds/sidecar/*
  add raw fixtures/raw/*.json
  # EMPAD: first byte 0 = xml beside a fixed raw, 1 = raw beside a fixed xml (see fuzz/targets/empad.swift).
  mkdir -p "$CORPUS/empad"
  for x in fixtures/empad/*.xml; do
    [ -f "$x" ] && { printf '\0'; cat "$x"; } >"$CORPUS/empad/seed-xml-$(basename "$x")"
  done
  { printf '\1'; cat fixtures/empad/scan_x2_y2.raw; } >"$CORPUS/empad/seed-raw-2x2"
  # DM: generated 4D files in both layouts and byte orders, a tag-heavy file.
  "$dmgen" "$gen/c.dm4" 4d --layout contiguous --scan 2,3 --det 8,8 >/dev/null
  "$dmgen" "$gen/t.dm4" 4d --layout transposed --scan 3,2 --det 8,8 --big-endian >/dev/null
  "$dmgen" "$gen/tags.dm4" tags --groups 5 >/dev/null
  add dm "$gen"/*.dm4
  # NeXus: emconv's own outputs of small fixtures.
  local i=0
  for f in fixtures/raw/stack_u16.raw fixtures/raw/frames_f4be.raw fixtures/mib/single_r64_1bit.mib fixtures/mib/single_u08_6bit.mib "$gen/c.dm4"; do
    i=$((i + 1)); "$emconv" convert "$f" -o "$gen/out$i.nxs" --overwrite >/dev/null 2>&1 || echo "fuzz: could not convert $f for a NeXus seed" >&2
  done
  "$emconv" convert fixtures/empad/map_2x2.xml -o "$gen/empad.nxs" --overwrite >/dev/null 2>&1
  add nexus $(find "$gen" -name '*.nxs' -size -320k)
  add emd "$gen/out1.nxs"
  # HyperSpy: emconv's own .hspy and zip-store .zspy outputs of the same small fixtures.
  for f in fixtures/raw/stack_u16.raw fixtures/mib/single_u08_6bit.mib "$gen/c.dm4"; do
    i=$((i + 1))
    "$emconv" convert "$f" -o "$gen/hs$i.hspy" --overwrite >/dev/null 2>&1 || echo "fuzz: could not convert $f for a .hspy seed" >&2
    "$emconv" convert "$f" -o "$gen/zs$i.zspy" --format zspy-zip --compression gzip --overwrite >/dev/null 2>&1 || echo "fuzz: could not convert $f for a .zspy seed" >&2
  done
  add hspy $(find "$gen" -name '*.hspy' -size -320k)
  add zspy $(find "$gen" -name 'zs*.zspy' -size -320k)
  # EMD 1.0 as emconv writes it (DataCube with calibration, vendor metadata; Array of a raw stack).
  "$emconv" convert "$gen/c.dm4" -o "$gen/cube.emd" --overwrite >/dev/null 2>&1 || echo "fuzz: could not write an EMD 1.0 seed" >&2
  "$emconv" convert fixtures/raw/stack_u16.raw -o "$gen/stack.emd" --overwrite >/dev/null 2>&1 || echo "fuzz: could not write an EMD 1.0 seed" >&2
  add emd $(find "$gen" -name '*.emd' -size -320k)
  # MRC, TIA, TIFF, Dectris, EMD (Velox, Berkeley): files the test-support writers generate
  # (emconv-fixtures fuzz-seeds),
  # and emconv's own TIFF outputs.
  local t
  for t in mrc tia tiff dectris emd deflate; do
    mkdir -p "$gen/seeds-$t"
    "$fixgen" fuzz-seeds "$t" "$gen/seeds-$t" || echo "fuzz: could not generate the $t seeds" >&2
    add "$t" "$gen/seeds-$t"/*
  done
  "$emconv" convert fixtures/raw/stack_u16.raw -o "$gen/stack.tif" --overwrite >/dev/null 2>&1
  "$emconv" convert fixtures/mib/single_u08_6bit.mib -o "$gen/mib.tif" --overwrite >/dev/null 2>&1
  add tiff "$gen"/*.tif
  for t in $ALL_TARGETS; do echo "fuzz: $t: $(ls "$CORPUS/$t" | wc -l) corpus files"; done
}

# HDF5 targets run in fork mode: libhdf5 1.10.8 itself faults, loops or allocates what a damaged
# variable-length attribute declares, and a run must go on past those to reach emconv's code.
fork_flags() {
  case "$1" in
    emd|nexus|hspy|dectris) echo "-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1" ;;
    # Foundation's XMLParser leaks the error objects it makes for libxml2's errors (about 50
    # allocations, 3.7 KB, per malformed xml): one process reached the 2 GiB RSS limit after
    # 227,904 executions (2026-11-27). Fork mode runs jobs in fresh processes; a crash, timeout
    # or OOM of a job still ends the run as a finding.
    empad) echo "-fork=1" ;;
  esac
}

# Sorts a target's artifacts: the first frame of the report that is neither sanitizer, libFuzzer,
# libc nor Swift runtime says whose the fault is. Faults whose first such frame is in libhdf5 go
# to findings/hdf5-library/ (emconv contains them in production: fault handler, watchdog; they
# are listed, not failed); every other artifact is an emconv finding. Prints the emconv count.
triage() {
  local t=$1 n=0 f log first
  mkdir -p "$FINDINGS/hdf5-library"
  for f in "$FINDINGS/$t"/*; do
    [ -f "$f" ] || continue
    case "$f" in *.report|*.unreproduced) continue ;; esac
    log="$f.report"
    timeout -k 5 120 "$BIN/fuzz-$t" -runs=1 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -detect_leaks=0 "$f" >"$log" 2>&1
    first=$(grep -E '^ *#[0-9]+ 0x' "$log" | grep -vE 'sanitizer|compiler-rt|fuzzer::|__asan|libc\.so|sysdeps|libswiftCore|swift_|_swift|libFuzzer|crtstuff' | head -1)
    if ! grep -qE 'ERROR|SUMMARY|Fatal error|deadly signal' "$log"; then
      echo "fuzz: $t: $f did not reproduce on its own (kept, not counted)" >&2; mv "$f" "$f.unreproduced"
    elif [[ "$first" == *libhdf5* ]] || { grep -q 'libFuzzer: out-of-memory' "$log" && [[ -z "$first" || "$first" == *"/bin/fuzz-$t+"* ]]; }; then
      # (An out-of-memory report without a usable allocation stack: libhdf5's allocations, which have
      # no frame pointers; emconv's own show Swift frames. The CLI's memory ceiling contains them.)
      mv "$f" "$FINDINGS/hdf5-library/$t-$(basename "$f")"; mv "$log" "$FINDINGS/hdf5-library/$t-$(basename "$f").report"
      echo "fuzz: $t: inside libhdf5 (contained by emconv; see $FINDINGS/hdf5-library): ${first##* in }" >&2
    else
      n=$((n + 1)); echo "fuzz: $t: FINDING $f: ${first##* in }" >&2
    fi
  done
  echo "$n"
}

# Runs one target for $2 seconds, or for FUZZ_RUNS executions when set (no time limit then);
# prints "target execs seconds execs/s cpu-seconds execs/cpu-second status".
run_one() {
  local t=$1 secs=$2
  local log="$OUT/logs/$t.log"
  mkdir -p "$OUT/logs" "$FINDINGS/$t" "$CORPUS/$t"
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/emconv-fuzz-run.XXXXXX")
  local t0=$SECONDS
  local limit=(-max_total_time="$secs") guard=$((secs + 120))
  if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS" -max_total_time=0); guard=$((366 * 86400)); fi
  # CPU seconds of the target and its fork-mode children (/usr/bin/time), for a rate independent of load.
  local timer=() cpu_file="$OUT/logs/$t.cpu"
  rm -f "$cpu_file"
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -q -f "%U %S" -o "$cpu_file")
  # HDF5 targets: no ASan quarantine and no allocation stacks (libhdf5 is not instrumented, and a
  # report's own stack is kept): about 25% less CPU per execution, measured on the emd corpus.
  local asan="$ASAN_OPTIONS"
  case "$t" in emd|nexus|hspy|dectris) asan="$asan:quarantine_size_mb=0:malloc_context_size=0" ;; esac
  ASAN_OPTIONS="$asan" TMPDIR="$tmp" "${timer[@]}" timeout -k 10 "$guard" "$BIN/fuzz-$t" "${limit[@]}" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len="$(max_len "$t")" -print_final_stats=1 -detect_leaks=0 \
    $(fork_flags "$t") ${FUZZ_FLAGS:-} -artifact_prefix="$FINDINGS/$t/" "$CORPUS/$t" >"$log" 2>&1
  local rc=$?
  rm -rf "$tmp"
  local execs; execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+:' "$log" | tail -1 | tr -d '#:')
  local found; found=$(triage "$t")
  local lib; lib=$(ls "$FINDINGS/hdf5-library" 2>/dev/null | grep -c "^$t-.*[^t]$")
  local status=ok
  [ "$found" = 0 ] || status="FINDING ($found, see $FINDINGS/$t and $log)"
  [ "$found" = 0 ] && [ "$rc" != 0 ] && [ "$lib" = 0 ] && status="FAILED (exit $rc, see $log)"
  local el=$((SECONDS - t0))
  local cpu; cpu=$(awk '/^[0-9.]+ [0-9.]+$/ { printf "%.2f", $1 + $2 }' "$cpu_file" 2>/dev/null)
  local per_cpu; per_cpu=$(awk -v e="${execs:-0}" -v c="${cpu:-0}" 'BEGIN { if (c > 0 && e > 0) printf "%.0f", e / c; else print "?" }')
  printf '%-8s %10s execs %6d s %8s execs/s %7s cpu-s %8s execs/cpu-s  %s%s\n' "$t" "${execs:-?}" "$el" \
    "$( [ -n "$execs" ] && [ "$el" -gt 0 ] && echo $((execs / el)) || echo '?')" "${cpu:-?}" "$per_cpu" "$status" \
    "$([ "$lib" != 0 ] && echo "  ($lib inside libhdf5 so far)")"
  [ "$status" = ok ]
}

case "${1:-}" in
  build) build; exit 0 ;;
  seeds) seeds; exit 0 ;;
  repro)
    shift; t=$1; shift; build >/dev/null
    "$BIN/fuzz-$t" -runs=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "$@"; exit $? ;;
esac
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then SECS=$1; shift; else SECS="${FUZZ_SECONDS:-300}"; fi
TARGETS="${*:-$ALL_TARGETS}"
build
seeds
if [ -n "${FUZZ_RUNS:-}" ]; then echo "fuzz: ${FUZZ_RUNS} executions per target: $TARGETS"; else echo "fuzz: ${SECS} s per target: $TARGETS"; fi
failed=0
JOBS="${FUZZ_JOBS:-1}"
if [ "$JOBS" -gt 1 ]; then
  export -f run_one max_len fork_flags triage; export OUT BIN CORPUS FINDINGS
  printf '%s\n' $TARGETS | xargs -P "$JOBS" -I{} bash -c "run_one {} $SECS" || failed=1
else
  for t in $TARGETS; do run_one "$t" "$SECS" || failed=1; done
fi
if [ "$failed" = 1 ]; then
  echo "fuzz: FINDINGS: reproduce with scripts/fuzz.sh repro TARGET $FINDINGS/TARGET/crash-…; add the input under fixtures/regressions/" >&2
  exit 1
fi
echo "fuzz: no finding"

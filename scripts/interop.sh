#!/usr/bin/env bash
# Interop check: files written by emconv, read by independent readers (h5py + hdf5plugin) from
# PyPI in a project-local virtualenv (.venv). In CI (CI=true) it must run; elsewhere it skips
# with a message when PyPI is unreachable.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
bash scripts/venv.sh
case $? in 0) ;; 3) exit 0 ;; *) exit 1 ;; esac  # 3: skipped (no PyPI outside CI)
BIN="${EMCONV_BIN:-.build/debug/emconv}"
[ -x "$BIN" ] || swift build >/dev/null
DMGEN="${EMCONV_DMGEN:-.build/debug/emconv-dmgen}"
[ -x "$DMGEN" ] || swift build >/dev/null
status=0
passed=0
failed=0
# Each check prints a closing 'N passed, M failed' line; the totals close this script.
run() {
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || status=1
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
  elif [ "$rc" != 0 ]; then
    failed=$((failed + 1))
  fi
  rm -f "$log"
}
run "$VENV/bin/python" tests/interop/check_nexus.py --emconv "$BIN" --testdata ../shared/testdata --fixtures fixtures
# hs.load of the NeXus output: the first / default signal is the measured data, split and calibrated.
run "$VENV/bin/python" tests/interop/check_hyperspy.py --emconv "$BIN" --testdata ../shared/testdata
# .hspy: emconv's output against HyperSpy's own save of the same data.
run "$VENV/bin/python" tests/interop/check_hspy.py --emconv "$BIN" --testdata ../shared/testdata
# Differential check of 'emconv validate --profile nxem' against pynxtools (NXem).
run "$VENV/bin/python" tests/interop/check_validate.py --emconv "$BIN" --testdata ../shared/testdata
# Crop, bin and dataset selection against NumPy's own answer (issue 16).
run "$VENV/bin/python" tests/interop/check_processing.py --emconv "$BIN"
# Dark/gain/flat-field/mask corrections bit for bit against NumPy's float32, derived views, validate's proof (issue 16).
run "$VENV/bin/python" tests/interop/check_corrections.py --emconv "$BIN" --testdata ../shared/testdata
run "$VENV/bin/python" tests/interop/check_writers.py --emconv "$BIN" --testdata ../shared/testdata --fixtures fixtures
# The default gzip:1 output (emconv's own deflate encoder) read by h5py without hdf5plugin or any plugin path.
run "$VENV/bin/python" tests/interop/check_plain_deflate.py --emconv "$BIN" --testdata ../shared/testdata --fixtures fixtures
# TIA (SER/EMI) and TIFF cases: NeXus and zspy outputs loaded in HyperSpy against the references.
run "$VENV/bin/python" tests/interop/check_tia_tiff.py --emconv "$BIN" --testdata ../shared/testdata
# MRC cases (issue 12): NeXus and zspy outputs loaded by HyperSpy against the references.
run "$VENV/bin/python" tests/interop/check_mrc.py --emconv "$BIN" --testdata ../shared/testdata
# Dectris acquisitions written by h5py + hdf5plugin; bitshuffle-lz4 output read back by hdf5plugin.
run "$VENV/bin/python" tests/interop/check_dectris.py --emconv "$BIN" --testdata ../shared/testdata --fixtures fixtures
# LiberTEM opens the bitshuffle-lz4 NeXus output and reads every frame as hdf5plugin does.
run env PYTHONWARNINGS=ignore "$VENV/bin/python" tests/interop/check_libertem.py --emconv "$BIN" --testdata ../shared/testdata --fixtures fixtures
# emconv record against LiberTEM-live's Merlin simulator (issue 15), in its own venv (it pins numba
# and numpy versions the readers above need not share) and under a time limit.
LIVE_VENV=.venv-live
if [ ! -x "$LIVE_VENV/bin/libertem-live-mib-sim" ]; then
  python3 -m venv "$LIVE_VENV" >/dev/null 2>&1 || true
  timeout 900 "$LIVE_VENV/bin/pip" install -q --disable-pip-version-check "libertem-live==0.3.0" >/tmp/emconv-pip-live.log 2>&1 || true
fi
if [ -x "$LIVE_VENV/bin/libertem-live-mib-sim" ]; then
  run timeout 900 "$VENV/bin/python" tests/interop/check_record.py --emconv "$BIN" --sim "$LIVE_VENV/bin/libertem-live-mib-sim" --testdata ../shared/testdata
elif [ "${CI:-}" = "true" ]; then
  echo "interop: libertem-live did not install in CI (see /tmp/emconv-pip-live.log)" >&2; status=1
else
  echo "interop: record check skipped: libertem-live could not be installed (see /tmp/emconv-pip-live.log)"
fi
# EMD 1.0 outputs read by py4DSTEM (issue 14), in its own venv: py4DSTEM 0.14.18 pins numpy<2, while the
# readers above run on numpy 2 (HyperSpy, RosettaSciIO); about 1.5 min to install, 740 MB.
P4_VENV=.venv-py4dstem
P4_PKGS="py4dstem==0.14.18"
if [ ! -x "$P4_VENV/bin/python" ] || ! "$P4_VENV/bin/python" -c 'import py4DSTEM, emdfile, h5py, hdf5plugin' >/dev/null 2>&1; then
  python3 -m venv "$P4_VENV" >/dev/null 2>&1 || true
  timeout 900 "$P4_VENV/bin/pip" install -q --disable-pip-version-check $P4_PKGS >/tmp/emconv-pip-py4dstem.log 2>&1 || true
fi
if "$P4_VENV/bin/python" -c 'import py4DSTEM, emdfile, h5py, hdf5plugin' >/dev/null 2>&1; then
  run "$P4_VENV/bin/python" tests/interop/check_py4dstem.py --emconv "$BIN" --testdata ../shared/testdata
elif [ "${CI:-}" = "true" ]; then
  echo "interop: $P4_PKGS did not install in CI (see /tmp/emconv-pip-py4dstem.log)" >&2; status=1
else
  echo "interop: py4DSTEM check skipped: $P4_PKGS could not be installed (see /tmp/emconv-pip-py4dstem.log)"
fi
# DM files written by the test-support DMWriter must read correctly in RosettaSciIO.
DMDIR=$(mktemp -d)
"$DMGEN" "$DMDIR" interop >/dev/null
run "$VENV/bin/python" tests/interop/dm_rsciio_check.py "$DMDIR"
rm -rf "$DMDIR"
echo "interop: $passed passed, $failed failed"
exit $status

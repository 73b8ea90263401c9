#!/usr/bin/env bash
# The interop virtualenv (.venv): independent readers and peers from PyPI. Made once, checked by
# importing them. Exit 0: ready; 1: the install failed in CI (CI=true); 3: it failed elsewhere
# (no PyPI), said so, and the interop checks skip. Called by `make test` before `swift test` (whose HyperSpy-saves tests use it)
# and by scripts/interop.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
# libertem: reads bitshuffle-LZ4 output back (issue 13); about 75 s to install here (numba, distributed, scikit-image).
PKGS="h5py hdf5plugin numpy rosettasciio hyperspy zarr<3 tifffile imagecodecs pynxtools==0.16.0 libertem==0.16.0"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import h5py, hdf5plugin, numpy, rsciio, hyperspy, zarr, tifffile, imagecodecs, pynxtools, libertem' >/dev/null 2>&1; then
  python3 -m venv "$VENV" >/dev/null 2>&1 || true
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check $PKGS >/tmp/emconv-pip.log 2>&1; then
    if [ "${CI:-}" = "true" ]; then echo "interop: pip install failed in CI" >&2; tail -5 /tmp/emconv-pip.log >&2; exit 1; fi
    echo "interop: skipped: could not install $PKGS from PyPI (see /tmp/emconv-pip.log)"
    exit 3
  fi
fi

#!/usr/bin/env bash
# Installs the system libraries emconv links (Debian 12) when they are missing. Idempotent.
set -euo pipefail
pkgs=(libhdf5-dev libzstd-dev libdeflate-dev libssl-dev libtiff-dev liblz4-dev libblosc-dev pkg-config hdf5-tools python3-venv time bc)
need=0
if ! command -v pkg-config >/dev/null 2>&1; then need=1
elif ! pkg-config --exists hdf5-serial libzstd libdeflate libcrypto libtiff-4 liblz4 blosc; then need=1
fi
for b in h5ls bc /usr/bin/time; do command -v "$b" >/dev/null 2>&1 || need=1; done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need=1
if [ "$need" = 1 ]; then
  echo "setup: installing ${pkgs[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: Swift 6 toolchain not found on PATH (install from swift.org)" >&2; exit 1; }

"""emconv's .hspy output against HyperSpy's own .hspy save of the same data (RosettaSciIO from PyPI).

For every shared-testdata case with a reference (MIB and EMPAD 4D-STEM; DM and EMD files with one
dataset), converts to .hspy and to .zspy, then:
  - hs.load(out.hspy): data bit-exact with the reference (MIB, EMPAD) or equal to the zspy signal;
  - HyperSpy saves the zspy signal as its own .hspy; hs.load of that and of emconv's .hspy agree in
    signal class, data (dtype and values), every axis (name, size, scale, offset, units, navigate) and
    the mapped metadata keys (General.title, Signal.signal_type, Acquisition_instrument.*);
  - emconv's original_metadata equals the zspy's (the full vendor tree);
  - the layout reads with h5py alone: root file_format, axis-N navigate as numpy.bool_, data chunks
    of whole frames, gzip (no plugin).
Prints 'N passed, M failed'.
"""
import argparse, glob, json, logging, os, tempfile

import h5py
import numpy as np
import hyperspy.api as hs

from common import Tally, run, sha_le

logging.getLogger("hyperspy").setLevel(logging.ERROR)
check = Tally()
MAPPED = ["General.title", "Signal.signal_type", "Acquisition_instrument.TEM.beam_energy",
          "Acquisition_instrument.TEM.camera_length", "Acquisition_instrument.TEM.magnification",
          "Acquisition_instrument.TEM.convergence_angle", "Acquisition_instrument.TEM.beam_current",
          "Acquisition_instrument.TEM.microscope", "Acquisition_instrument.TEM.Detector.Camera.name",
          "Acquisition_instrument.TEM.Detector.Camera.exposure", "Acquisition_instrument.dwell_time"]


def deq(a, b):
    """Deep equality of metadata trees (h5py gives numpy arrays where zarr gives lists)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(deq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and any(isinstance(x, dict) for x in list(a) + list(b)):
        return len(a) == len(b) and all(deq(x, y) for x, y in zip(a, b))
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        try:
            return np.array_equal(np.asarray(a), np.asarray(b))
        except Exception:  # noqa: BLE001
            return False
    return a == b


def same_axes(tag, a, b):
    aa = sorted(a.axes_manager._axes, key=lambda x: x.index_in_array)
    bb = sorted(b.axes_manager._axes, key=lambda x: x.index_in_array)
    check(len(aa) == len(bb), f"{tag}: rank")
    for x, y in zip(aa, bb):
        ok = (x.name == y.name and x.size == y.size and x.units == y.units and x.navigate == y.navigate
              and type(x).__name__ == type(y).__name__ and np.allclose(x.axis, y.axis, rtol=0, atol=0))
        check(ok, f"{tag}: axis {x.name} {x.size} {x.units} nav={x.navigate} {type(x).__name__} vs "
                  f"{y.name} {y.size} {y.units} nav={y.navigate} {type(y).__name__}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    refdir = os.path.join(a.testdata, "reference")
    if not os.path.isdir(refdir):
        print("interop: skipped: ../shared/testdata not found")
        print(check.summary())
        return
    tmp = tempfile.mkdtemp(prefix="emconv-hspy-")
    n = 0
    for p in sorted(glob.glob(os.path.join(refdir, "*.json"))):
        ref = json.load(open(p))
        fmt = ref.get("format")
        if fmt not in ("MIB", "EMPAD", "DM3", "DM4", "EMD (Velox)", "EMD (Berkeley/NCEM)") or ref.get("ref_suffix") or ref.get("xml_only"):
            continue
        src = os.path.join(a.testdata, ref["id"])
        if not os.path.exists(src):
            continue
        extra = ["--mib-flip-rows"] if fmt == "MIB" else []
        ref_hash = None
        if fmt in ("MIB", "EMPAD"):
            ref_hash = ref["signals"][0].get("data_sha256") if ref.get("signals") else None
            if ref_hash is None and ref.get("alt_reference"):
                alt = ref["alt_reference"]
                ref_hash = alt.get("data_sha256_rows_flipped") or alt["signals"][0].get("data_sha256_rows_flipped")
        else:
            info = run(a.emconv, ["info", src, "--json"])
            if info.returncode != 0 or len(json.loads(info.stdout)["files"][0]["datasets"]) != 1:
                continue
        n += 1
        tag = os.path.basename(src)
        out, z, own = (os.path.join(tmp, f"{n}{e}") for e in (".hspy", ".zspy", "-hyperspy.hspy"))
        ok = run(a.emconv, ["convert", src, "-o", out, "--quiet"] + extra).returncode == 0
        ok = ok and run(a.emconv, ["convert", src, "-o", z, "--quiet"] + extra).returncode == 0
        check(ok, f"convert {src} -> hspy, zspy")
        if not ok:
            continue
        try:
            s = hs.load(out)
            sz = hs.load(z)
            sz.save(own, overwrite=True)
            so = hs.load(own)
        except Exception as e:  # noqa: BLE001
            check(False, f"{tag}: hs.load/save failed: {e}")
            continue
        if ref_hash is not None:
            check(sha_le(s.data) == ref_hash, f"{tag}: hspy data bit-exact with the reference")
        check(type(s).__name__ == type(so).__name__, f"{tag}: class {type(s).__name__} == {type(so).__name__}")
        check(s.data.dtype == so.data.dtype and s.data.shape == so.data.shape and np.array_equal(s.data, so.data),
              f"{tag}: data equal to HyperSpy's own save ({s.data.dtype}{s.data.shape} vs {so.data.dtype}{so.data.shape})")
        same_axes(tag, s, so)
        for k in MAPPED:
            has, has_o = s.metadata.has_item(k), so.metadata.has_item(k)
            v, vo = s.metadata.get_item(k), so.metadata.get_item(k)
            check(has == has_o and v == vo, f"{tag}: metadata {k}: {v!r} vs {vo!r}")
        check(deq(s.original_metadata.as_dictionary(), sz.original_metadata.as_dictionary()), f"{tag}: original_metadata equal to the zspy's")
        with h5py.File(out, "r") as h5:
            check(h5.attrs["file_format"] == "HyperSpy", f"{tag}: root file_format")
            g = h5["Experiments"][list(h5["Experiments"])[0]]
            d = g["data"]
            check(isinstance(g["axis-0"].attrs["navigate"], np.bool_), f"{tag}: axis-0 navigate is numpy.bool_")
            sig = [i for i in range(d.ndim) if not g[f"axis-{i}"].attrs["navigate"]]
            check(all(d.chunks[i] == d.shape[i] for i in sig), f"{tag}: chunks {d.chunks} hold whole frames of {d.shape}")
            check(d.compression == "gzip", f"{tag}: gzip ({d.compression})")
    print(f"{n} files")
    print(check.summary())


if __name__ == "__main__":
    main()

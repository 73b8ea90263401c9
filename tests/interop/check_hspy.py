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
HyperSpy's own saves as inputs (issue 14.2/14.4): the .hspy above, the same signal saved as .zspy
(Blosc, HyperSpy's default) and as a zip-store .zspy, and synthetic signals of several classes and
dtypes, each converted by emconv to NeXus: hs.load(out.nxs, use_default=True) gives data equal
(dtype, values) to HyperSpy's signal and the same axes (size, scale, offset, units, navigate), and
`emconv info` reports HyperSpy's axis names.
Prints 'N passed, M failed'.
"""
import argparse, glob, json, logging, os, tempfile

import h5py
import numpy as np
import hyperspy.api as hs

from common import Tally, flipped_rows_hash, reference_cases, run, sha_le, scratch_dir

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
    tmp = scratch_dir("emconv-hspy-")
    if not os.path.isdir(refdir):
        print("interop: shared-testdata cases skipped: ../shared/testdata not found")
        for path, s in synthetic(tmp):
            hyperspy_input(a.emconv, path, s, f"synthetic {os.path.basename(path)}")
        print(check.summary())
        return
    n = 0
    for ref, src in reference_cases(a.testdata, ("MIB", "EMPAD", "DM3", "DM4", "EMD (Velox)", "EMD (Berkeley/NCEM)")):
        fmt = ref.get("format")
        if ref.get("ref_suffix") or ref.get("xml_only"):
            continue
        extra = ["--mib-flip-rows"] if fmt == "MIB" else []
        ref_hash = None
        if fmt in ("MIB", "EMPAD"):
            ref_hash = flipped_rows_hash(ref)
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
        saved = [own]
        for suffix, kw in (("-hyperspy.zspy", {}), ("-hyperspy-zip.zspy", {"store_type": "zip"})):
            try:
                so.save(os.path.join(tmp, f"{n}{suffix}"), overwrite=True, **kw)
                saved.append(os.path.join(tmp, f"{n}{suffix}"))
            except Exception as e:  # noqa: BLE001
                check(False, f"{tag}: HyperSpy save {suffix}: {e}")
        for path in saved:
            hyperspy_input(a.emconv, path, so, f"{tag} HyperSpy {os.path.basename(path)}")
    for path, s in synthetic(tmp):
        hyperspy_input(a.emconv, path, s, f"synthetic {os.path.basename(path)}")
    print(f"{n} files")
    print(check.summary())


def hyperspy_input(emconv, path, s, tag):
    """A file HyperSpy saved (signal `s`) converted by emconv to NeXus: data and axes survive."""
    nxs = path + ".nxs"
    if run(emconv, ["convert", path, "-o", nxs, "--quiet", "--overwrite"]).returncode != 0:
        check(False, f"{tag}: convert to NeXus")
        return
    info = run(emconv, ["info", path, "--json"])
    axes = json.loads(info.stdout)["files"][0]["datasets"][0]["axes"] if info.returncode == 0 else []
    want = sorted(s.axes_manager._axes, key=lambda x: x.index_in_array)
    # An unnamed HyperSpy axis (traits Undefined, stored as _None_) gets emconv's default name.
    names = [x["name"] for x in axes]
    check(len(names) == len(want) and all(str(w.name) in ("<undefined>", g) for w, g in zip(want, names)),
          f"{tag}: emconv info axis names {names} == {[str(x.name) for x in want]}")
    t = hs.load(nxs, use_default=True)
    t = t[0] if isinstance(t, list) else t
    d = t.data
    if np.iscomplexobj(s.data):  # NXem keeps complex data as `real` + `imag` fields
        with h5py.File(nxs, "r") as h5:
            g = h5["entry1/data"]
            d = g[g.attrs["signal"]][()] + 1j * g["imag"][()]
        check(d.astype(s.data.dtype).dtype == s.data.dtype and np.array_equal(d, s.data), f"{tag}: complex data equal")
    elif s.data.dtype.names:  # RGB(A): NXem stores uint8 with a trailing channel axis
        from numpy.lib.recfunctions import structured_to_unstructured
        check(d.dtype == np.uint8 and np.array_equal(d, structured_to_unstructured(s.data)), f"{tag}: RGB data equal as uint8 channels")
    elif s.data.dtype == bool:  # NXem stores booleans as uint8 0/1 (emconv/element_type = bool)
        check(d.dtype == np.uint8 and np.array_equal(d.astype(bool), s.data) and d.max(initial=0) <= 1, f"{tag}: bool data equal as uint8 0/1")
    else:
        check(d.dtype == s.data.dtype and d.shape == s.data.shape and np.array_equal(d, s.data),
              f"{tag}: data equal ({d.dtype}{d.shape} vs {s.data.dtype}{s.data.shape})")
        got = sorted(t.axes_manager._axes, key=lambda x: x.index_in_array)
        check(len(got) == len(want), f"{tag}: rank")
        for x, y in zip(got, want):
            ok = (x.size == y.size and (x.units or "") == (y.units or "") and x.navigate == y.navigate
                  and (x.size < 2 or (np.isclose(x.scale, y.scale, rtol=1e-12) and np.isclose(x.offset, y.offset, rtol=1e-12))))
            check(ok, f"{tag}: axis {y.name}: {x.size} {x.scale} {x.offset} '{x.units}' nav={x.navigate} vs "
                      f"{y.size} {y.scale} {y.offset} '{y.units}' nav={y.navigate}")


def synthetic(tmp):
    """HyperSpy signals of several classes and dtypes, each saved as .hspy, .zspy and zip .zspy."""
    rng = np.random.default_rng(14)
    cases = [
        ("s2d4-u16", hs.signals.Signal2D, rng.integers(0, 65535, (3, 4, 16, 12), dtype=np.uint16)),
        ("s1d3-f32", hs.signals.Signal1D, rng.random((5, 4, 64), dtype=np.float32)),
        ("s2d2-i32", hs.signals.Signal2D, rng.integers(-9999, 9999, (20, 17), dtype=np.int32)),
        ("s2d3-f64", hs.signals.Signal2D, rng.random((2, 8, 9))),
        ("s1d2-u8", hs.signals.Signal1D, rng.integers(0, 255, (6, 100), dtype=np.uint8)),
        ("s2d3-c64", hs.signals.ComplexSignal2D, (rng.random((2, 6, 5)) + 1j * rng.random((2, 6, 5))).astype(np.complex64)),
    ]
    out = []
    for name, cls, data in cases:
        s = cls(data)
        for i, ax in enumerate(s.axes_manager._axes):
            ax.name, ax.units, ax.scale, ax.offset = f"a{i}", ["nm", "1/nm", "eV", "mrad"][i % 4], 0.25 * (i + 1), -1.5 * i
        s.metadata.General.title = name
        for ext, kw in ((".hspy", {}), (".zspy", {}), ("-zip.zspy", {"store_type": "zip"})):
            p = os.path.join(tmp, name + ext)
            s.save(p, overwrite=True, **kw)
            out.append((p, s))
    return out


if __name__ == "__main__":
    main()

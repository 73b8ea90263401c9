"""emconv's NeXus output as HyperSpy opens it (RosettaSciIO's NeXus reader, from PyPI).

For every shared-testdata case with a reference (MIB and EMPAD 4D-STEM, DM and Velox/Berkeley EMD
images, spectra and spectrum images), converts to .nxs (default options) and checks:
  - hs.load(out.nxs): the FIRST signal is the first measured dataset: signal class (Signal2D for
    frames, Signal1D for spectra), shape, navigation/signal split, axis names (the NXem field
    names, the only names NeXus gives HyperSpy), scales, offsets, units, data equal;
  - hs.load(out.nxs, use_default=True) is exactly that one signal;
  - every measured dataset's view (hs.load(out.nxs, dataset_path="/entry1/hyperspy/imageN")) loads
    with the same checks.
Data are compared with the reference hash (MIB, EMPAD) or with the NXem field read by h5py.
Prints 'N passed, M failed'.
"""
import argparse, glob, json, logging, os, tempfile

import h5py
import numpy as np
import hyperspy.api as hs

from common import Tally, flipped_rows_hash, reference_cases, run, sha_le, scratch_dir

logging.getLogger("hyperspy").setLevel(logging.ERROR)
logging.getLogger("rsciio").setLevel(logging.ERROR)
check = Tally()


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def expected_class(frame_rank, element_type):
    """NXem stores complex data as `real` + `imag` fields and RGB as uint8 with a channel axis:
    HyperSpy sees the real part (a real signal) and, for RGB, no split (BaseSignal)."""
    if element_type in ("rgb8", "rgba8"):
        return None
    return {1: "Signal1D", 2: "Signal2D"}.get(frame_rank)


def own(nxd, key):
    """emconv's fact `key` from the NXdata's `emconv` NXcollection (None when absent)."""
    if "emconv" in nxd and key in nxd["emconv"]:
        v = nxd["emconv"][key][()]
        return v.decode() if isinstance(v, bytes) else v
    return None


def check_signal(tag, s, nxd, axes, frame_rank, ref_hash=None):
    """s: the HyperSpy signal; nxd: the h5py NXdata group it came from; axes: emconv info axes."""
    want = expected_class(frame_rank, own(nxd, "element_type"))
    if want is not None:
        check(type(s).__name__ == want, f"{tag}: class {type(s).__name__} == {want}")
        check(s.axes_manager.signal_dimension == frame_rank, f"{tag}: signal dimension {s.axes_manager.signal_dimension} == {frame_rank}")
    d = nxd[nxd.attrs["signal"]][()]
    check(s.data.shape == d.shape, f"{tag}: shape {s.data.shape} == {d.shape}")
    if ref_hash is not None:
        check(sha_le(s.data) == ref_hash, f"{tag}: data bit-exact with the reference")
    else:
        check(s.data.dtype == d.dtype and np.array_equal(s.data, d), f"{tag}: data equal to the NXem field")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in nxd.attrs["axes"]]
    got = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)
    if len(axes) != len(got):  # RGB: NeXus adds a channel axis emconv's model has not
        check(own(nxd, "element_type") in ("rgb8", "rgba8"), f"{tag}: rank {len(got)} == {len(axes)}")
        return
    nav = len(axes) - frame_rank
    for k, (g, e) in enumerate(zip(got, axes)):
        ok = g.name == names[k] and g.size == e["size"] and (g.units or "") == e["units"]
        if want is not None and e["size"] > 1:
            ok = ok and g.navigate == (k < nav)
        if "scale" in e and e["size"] > 1:
            ok = ok and close(g.scale, e["scale"]) and close(g.offset, e["offset"])
        check(ok, f"{tag}: axis {k} {e['name']}: got {g.name} size {g.size} scale {g.scale} offset {g.offset} "
                  f"'{g.units}' nav={g.navigate}; want {names[k]} {e} nav={k < nav}")


def measured(h5):
    """Paths of the measured NXdata in emconv's NXem layout, in dataset order (previews excluded)."""
    ev = h5["entry1/measurement/event1"]
    out = []
    for name in ev:
        g = ev[name]
        if g.attrs.get("NX_class") not in ("NXimage", "NXspectrum"):
            continue
        nxd = g[g.attrs["default"]]
        if own(nxd, "derived") is not None:
            continue
        out.append(nxd.name)
    return sorted(out, key=lambda p: (p.split("/")[-2].rstrip("0123456789"), int(p.split("/")[-2].lstrip("imagespectrum") or 0)))


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
    tmp = scratch_dir("emconv-hyperspy-")
    n = 0
    for ref, src in reference_cases(a.testdata, ("MIB", "EMPAD", "DM3", "DM4", "EMD (Velox)", "EMD (Berkeley/NCEM)")):
        fmt = ref.get("format")
        if ref.get("ref_suffix") or ref.get("xml_only"):
            continue
        extra = ["--mib-flip-rows"] if fmt == "MIB" else []
        ref_hash = None
        if fmt in ("MIB", "EMPAD"):
            ref_hash = flipped_rows_hash(ref)
        info = run(a.emconv, ["info", src, "--json"] + extra)
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        doc = json.loads(info.stdout)
        datasets = (doc["files"][0] if "files" in doc else doc)["datasets"]
        n += 1
        out = os.path.join(tmp, f"{n}.nxs")
        if run(a.emconv, ["convert", src, "-o", out, "--quiet"] + extra).returncode != 0:
            check(False, f"convert {src}")
            continue
        tag = os.path.basename(src)
        with h5py.File(out, "r") as h5:
            paths = measured(h5)
            check(len(paths) == len(datasets), f"{tag}: {len(paths)} measured NXdata == {len(datasets)} datasets")
            first = hs.load(out)
            first = first[0] if isinstance(first, list) else first
            check_signal(f"{tag} hs.load()[0]", first, h5[paths[0]], datasets[0]["axes"], datasets[0]["frame_rank"], ref_hash)
            one = hs.load(out, use_default=True)
            check(not isinstance(one, list), f"{tag}: use_default=True gives one signal, not {len(one) if isinstance(one, list) else 1}")
            if isinstance(one, list):
                one = one[0]
            check_signal(f"{tag} use_default", one, h5[paths[0]], datasets[0]["axes"], datasets[0]["frame_rank"], ref_hash)
            # Every measured dataset has its HyperSpy view (entry1/hyperspy/<imageN|spectrumN>, an
            # NXdata in an NXcollection linking the measured fields, with @interpretation).
            for path, ds in zip(paths, datasets):
                view = "/entry1/hyperspy/" + path.split("/")[-2]
                s = hs.load(out, dataset_path=view)
                s = s[0] if isinstance(s, list) else s
                check_signal(f"{tag} {view}", s, h5[path], ds["axes"], ds["frame_rank"])
    print(f"{n} files")
    print(check.summary())


if __name__ == "__main__":
    main()

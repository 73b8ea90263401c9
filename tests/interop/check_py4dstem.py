"""Independent check of emconv's EMD 1.0 output with py4DSTEM (PyPI) and h5py.

Every shared 4D-STEM case (MIB, EMPAD, ARINA, the py4DSTEM-written file), a spectrum image and
images are converted with the emconv binary to .emd; then `py4DSTEM.read` must give a DataCube
(4D, two detector axes) or an Array, of the right shape, with data bit-identical to the reference
hash (MIB/EMPAD, rows flipped like RosettaSciIO with --mib-flip-rows) or to emconv's NeXus output of
the same source, and the calibration of the source's axes as `emconv info --json` reports them
(R/Q pixel size and units in py4DSTEM's units; Array dims: names, units, offset and scale).
h5py opens the file as well; a zstd output reads after `import hdf5plugin`.
Prints 'N passed, M failed'.
"""
import argparse, json, os, sys, tempfile, warnings

warnings.filterwarnings("ignore")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from common import Tally, reference_cases, run, sha_le, scratch_dir  # noqa: E402

check = Tally()

# emconv detector units → (py4DSTEM Q units, factor); R length units → py4DSTEM spelling.
Q_UNITS = {"1/angstrom": ("A^-1", 1.0), "1/nm": ("A^-1", 0.1), "1/pm": ("A^-1", 100.0), "1/um": ("A^-1", 1e-4),
           "1/m": ("A^-1", 1e-10), "mrad": ("mrad", 1.0), "rad": ("mrad", 1000.0), "urad": ("mrad", 1e-3)}
R_UNITS = {"angstrom": "A", "nm": "nm", "pm": "pm", "um": "um", "m": "m"}
# Spectrum image and image cases (besides every 4D-STEM case).
# fei_emd_si.emd holds a HAADF stack and an EDS spectrum image: two trees in one file.
EXTRA = ["dm/real/EELS_SI.dm4", "dm/real/test_STEM_image.dm3", "dm/real/test_diffraction_pattern.dm3",
         "emd_velox/fei_emd_image.emd", "emd_velox/fei_emd_si.emd"]


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def nexus_signal(path):
    """The measured data of an emconv NeXus file: the @default chain down to the NXdata @signal."""
    with h5py.File(path, "r") as f:
        g = f
        while "default" in g.attrs and g.attrs["default"] in g:
            d = g.attrs["default"]
            g = g[d.decode() if isinstance(d, bytes) else d]
        s = g.attrs["signal"]
        return g[s.decode() if isinstance(s, bytes) else s][()]


def nexus_datasets(path):
    """Every measured dataset of an emconv NeXus file by emconv's dataset name (NXdata whose emconv
    collection names it; the derived preview has none)."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and "signal" in obj.attrs and "emconv" in obj and "dataset_name" in obj["emconv"]:
                n = obj["emconv"]["dataset_name"][()]
                s = obj.attrs["signal"]
                out[n.decode() if isinstance(n, bytes) else n] = obj[s.decode() if isinstance(s, bytes) else s][()]
        f.visititems(visit)
    return out


def check_node(node, ds, want_hash, want_data, label):
    axes = ds["axes"]
    shape = tuple(a["size"] for a in axes)
    cube = len(axes) == 4 and ds["frame_rank"] == 2
    cls = type(node).__name__
    check(cls == ("DataCube" if cube else "Array"), f"{label}: py4DSTEM class {cls}")
    print(f"  {label}: {cls} {shape} {ds['dtype']}")
    data = np.asarray(node.data)
    check(data.shape == shape, f"{label}: shape {data.shape} == {shape}")
    if want_hash is not None:
        d = data
        if d.dtype.itemsize > np.dtype(want_hash[1]).itemsize and d.max() <= np.iinfo(np.dtype(want_hash[1])).max:
            d = d.astype(want_hash[1])  # the reference reader narrows (ARINA uint32 → uint16): compare values
        check(sha_le(d) == want_hash[0], f"{label}: data bit-exact with the reference")
    if want_data is not None:
        check(data.dtype == want_data.dtype and np.array_equal(data, want_data.reshape(data.shape), equal_nan=True),
              f"{label}: data bit-exact with emconv's NeXus output ({data.dtype} vs {want_data.dtype})")
    if cube:
        cal = node.calibration
        rx, qx = axes[1], axes[3]
        ru = R_UNITS.get(rx["units"])
        if ru:
            check(close(cal.get_R_pixel_size(), rx["scale"]) and cal.get_R_pixel_units() == ru,
                  f"{label}: R {cal.get_R_pixel_size()} {cal.get_R_pixel_units()} == {rx['scale']} {ru}")
        else:
            check(cal.get_R_pixel_units() == "pixels", f"{label}: uncalibrated R in pixels")
        q = Q_UNITS.get(qx["units"])
        if q:
            check(close(cal.get_Q_pixel_size(), qx["scale"] * q[1]) and cal.get_Q_pixel_units() == q[0],
                  f"{label}: Q {cal.get_Q_pixel_size()} {cal.get_Q_pixel_units()} == {qx['scale'] * q[1]} {q[0]}")
        else:
            check(cal.get_Q_pixel_units() == "pixels", f"{label}: uncalibrated Q in pixels")
        # py4DSTEM's runtime dims follow the calibration (R from 0).
        check(close(float(node.dims[1][1] - node.dims[1][0]), cal.get_R_pixel_size()), f"{label}: Ry dim step")
    else:
        for i, a in enumerate(axes):
            dim = np.asarray(node.dims[i])
            ok = (node.dim_names[i] == a["name"] and node.dim_units[i] == (a["units"] or "pixels")
                  and close(float(dim[0]), a["offset"]) and close(float(dim[1] - dim[0]), a["scale"]))
            check(ok, f"{label}: dim{i} {node.dim_names[i]} {node.dim_units[i]} {dim[:2]} vs {a}")
    md = node.metadata
    check("emconv" in md and md["emconv"]["signal_kind"] == ds["signal_kind"], f"{label}: emconv metadata")
    root_md = node.root.metadata
    check("provenance" in root_md and len(root_md["provenance"]["source_sha256"]) >= 1, f"{label}: provenance")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    import py4DSTEM
    tmp = scratch_dir("emconv-py4dstem-")
    cases = []
    for ref, src in reference_cases(a.testdata, what="py4DSTEM shared cases"):
        if ref.get("xml_only") or ref.get("ref_suffix"):
            continue
        fmt = ref.get("format", "")
        sig = (ref.get("signals") or [{}])[0]
        if fmt in ("MIB", "EMPAD") or "arina" in ref["id"] or "py4DSTEM" in ref["id"] or ref["id"] in EXTRA:
            h = None
            if fmt in ("MIB", "EMPAD"):
                h = sig.get("data_sha256")
                if h is None and ref.get("alt_reference"):
                    h = ref["alt_reference"].get("data_sha256_rows_flipped")
                h = (h, sig.get("dtype", "<u2").replace(">", "<")) if h else None
            cases.append((src, fmt, h, []))
            if "9_Frames" in src:  # the same frames as a 3x3 scan: a DataCube from a MIB
                cases.append((src, fmt, h, ["--scan-shape", "3,3"]))
    n4d = 0
    for i, (src, fmt, h, args) in enumerate(cases):
        extra = (["--mib-flip-rows"] if fmt == "MIB" else []) + args
        info = run(a.emconv, ["info", src, "--json"] + extra)
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        dss = json.loads(info.stdout)["files"][0]["datasets"]
        out = os.path.join(tmp, f"{i}.emd")
        nxs = os.path.join(tmp, f"{i}.nxs")
        r = run(a.emconv, ["convert", src, "-o", out, "--quiet"] + extra)
        check(r.returncode == 0, f"convert {src} -> emd")
        if r.returncode != 0:
            continue
        want, wanted = None, {}
        if h is None:
            r = run(a.emconv, ["convert", src, "-o", nxs, "--quiet", "--compression", "none"] + extra)
            if r.returncode == 0:
                want = nexus_signal(nxs) if len(dss) == 1 else None
                wanted = nexus_datasets(nxs) if len(dss) > 1 else {}
        try:
            node = py4DSTEM.read(out)
        except Exception as e:  # noqa: BLE001
            check(False, f"{src}: py4DSTEM.read failed: {e}")
            continue
        label = " ".join([os.path.relpath(src, a.testdata)] + args)
        if len(dss) == 1:
            check_node(node, dss[0], h, want, label)
        else:
            check(isinstance(node, list) and len(node) == len(dss), f"{label}: one tree per dataset ({node})")
            for name in node:
                sub = py4DSTEM.read(out, datapath=name)
                ds = next((d for d in dss if d["name"] + "_root" == name), None)
                check(ds is not None, f"{label}: tree {name} names a dataset")
                if ds:
                    check(ds["name"] in wanted, f"{label}: {ds['name']} in the NeXus output")
                    check_node(sub, ds, None, wanted.get(ds["name"]), f"{label}:{name}")
        n4d += sum(1 for d in dss if len(d["axes"]) == 4 and d["frame_rank"] == 2)
        with h5py.File(out, "r") as f:
            check(f.attrs["emd_group_type"] == "file" and int(f.attrs["version_major"]) == 1, f"{label}: h5py opens it")
    # zstd output: py4DSTEM reads it once hdf5plugin is imported.
    if cases:
        src, fmt, h, _ = cases[0]
        extra = ["--mib-flip-rows"] if fmt == "MIB" else []
        out = os.path.join(tmp, "zstd.emd")
        r = run(a.emconv, ["convert", src, "-o", out, "--quiet", "--compression", "zstd"] + extra)
        import hdf5plugin  # noqa: F401
        node = py4DSTEM.read(out)
        gz = py4DSTEM.read(os.path.join(tmp, "0.emd"))
        check(r.returncode == 0 and np.array_equal(np.asarray(node.data), np.asarray(gz.data)), f"{src}: zstd output equals gzip output")
    print(f"interop py4DSTEM {py4DSTEM.__version__}: {len(cases)} inputs ({n4d} 4D-STEM datasets) -> emd")
    print(check.summary())
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""emconv's default compression (gzip:1 + shuffle) needs no HDF5 plugin.

h5py is imported with HDF5_PLUGIN_PATH pointing at an empty folder and without hdf5plugin. Every
shared MIB/EMPAD case and every MIB fixture is converted to .nxs, .hspy and .emd with the default
compression and with --compression none (and, for the fixtures, with a dark and gain correction,
whose float32 result has noise planes stored and the exponent plane run-length coded); every
dataset of the default output must be deflate level 1 when chunked and bit-exact with the
uncompressed output. The MIB/EMPAD NeXus data also match the reference hash.
Prints 'N passed, M failed'.
"""
import argparse, glob, json, os, sys

import numpy as np

from common import Tally, reference_cases, run, scratch_dir, sha_le

os.environ["HDF5_PLUGIN_PATH"] = scratch_dir("emconv-noplugins-")  # empty: no filter plugin to find
import h5py  # noqa: E402

check = Tally()


def datasets(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o) if isinstance(o, h5py.Dataset) else None)
    return out


def compare(gz, plain, ref_hash=None):
    with h5py.File(gz, "r") as a, h5py.File(plain, "r") as b:
        da, db = datasets(a), datasets(b)
        check(set(da) == set(db), f"{gz}: same datasets as the uncompressed output")
        biggest = None
        for name in sorted(set(da) & set(db)):
            x, y = da[name], db[name]
            if x.chunks is not None and x.size > 0 and x.dtype.kind in "uif":
                check(x.compression == "gzip" and x.compression_opts == 1, f"{gz}:{name}: deflate level 1 ({x.compression} {x.compression_opts})")
                check(x.shuffle == (x.dtype.itemsize > 1), f"{gz}:{name}: shuffle for multi-byte types")
                if biggest is None or x.size > da[biggest].size:
                    biggest = name
            try:
                va, vb = x[()], y[()]
            except OSError as e:  # a filter this h5py cannot apply
                check(False, f"{gz}:{name}: read without plugins: {e}")
                continue
            va, vb = np.asarray(va), np.asarray(vb)
            if va.dtype.kind in "uifc":  # numbers (strings hold dates and the command line)
                same = va.dtype == vb.dtype and va.shape == vb.shape and va.tobytes() == vb.tobytes()
                check(same, f"{gz}:{name}: bit-exact with the uncompressed output")
        if ref_hash and gz.endswith(".nxs") and biggest is not None:
            check(sha_le(da[biggest][()]) == ref_hash, f"{gz}:{biggest}: data bit-exact with the reference")
        return biggest is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    check("hdf5plugin" not in sys.modules, "hdf5plugin not imported")
    tmp = scratch_dir("emconv-plain-deflate-")
    cases = []
    for ref, src in reference_cases(a.testdata, formats=("MIB", "EMPAD")):
        if ref.get("ref_suffix") or ref.get("xml_only"):
            continue
        h = (ref.get("generic_raw") or {}).get("frames_sha256_le")
        if h is None and ref.get("alt_reference"):
            h = ref["alt_reference"]["signals"][0]["data_sha256"]
        cases.append((src, h, []))
    fixtures = sorted(glob.glob(os.path.join(a.fixtures, "**", "*.mib"), recursive=True))
    for src in fixtures:
        cases.append((src, None, []))
    # Dark and gain for the first fixture whose frames info reports: float32 corrected output.
    for src in fixtures:
        r = run(a.emconv, ["info", src, "--json"])
        if r.returncode != 0:
            continue
        info = json.loads(r.stdout)
        dsets = [d for f in info.get("files", []) for d in f.get("datasets", [])]
        shape = next((d["shape"] for d in dsets if len(d.get("shape", [])) >= 3), None)
        if shape is None:
            continue
        det = shape[-2:]
        rng = np.random.default_rng(16)
        dark, gain = os.path.join(tmp, "dark.raw"), os.path.join(tmp, "gain.raw")
        rng.integers(0, 3, det).astype("<u2").tofile(dark)
        (0.9 + 0.2 * rng.random(det)).astype("<f4").tofile(gain)
        for p, dt in ((dark, "<u2"), (gain, "<f4")):
            json.dump({"dtype": dt, "shape": det, "signal_rank": 2}, open(p + ".json", "w"))
        cases.append((src, None, ["--dark", dark, "--gain", gain]))
        break
    compressed = 0
    for i, (src, h, extra) in enumerate(cases):
        for ext in ("nxs", "hspy", "emd"):
            if extra and ext != "nxs":
                continue
            gz, plain = os.path.join(tmp, f"{i}.{ext}"), os.path.join(tmp, f"{i}-none.{ext}")
            ok = run(a.emconv, ["convert", src, "-o", gz, "--quiet"] + extra).returncode == 0
            ok = run(a.emconv, ["convert", src, "-o", plain, "--quiet", "--compression", "none"] + extra).returncode == 0 and ok
            check(ok, f"convert {src} to .{ext} {' '.join(extra)}")
            if ok:
                compressed += compare(gz, plain, h)
    check(compressed > 0, "some output had a compressed dataset")
    print(f"interop: {len(cases)} inputs read by h5py without plugins ({compressed} outputs with deflate datasets)")
    print(check.summary())
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

"""Independent check of emconv's detector corrections and derived views (issue 16).

Generated inputs (random uint16 4-D data; dark stack, gain, flat field and pixel mask as raw files
with JSON descriptors) and the shared ARINA and MIB acquisitions are converted with the emconv
binary; h5py reads the NeXus outputs and NumPy computes the right answer on its own, in float32
one operation at a time, as the README documents: v = float32(raw); v -= dark; v *= gain;
v *= flat; masked pixels 0 / NaN / the float32 mean of their unmasked 4-neighbours. Corrected
frames must match bit for bit; the virtual images and the sum/max patterns are checked against
NumPy; the NXprocess record, the maps and their SHA-256; `emconv validate` proves a good output
and fails (exit 3, naming the frame and pixel) on one value changed in the data or in a map.
Prints 'N passed, M failed'.
"""
import argparse, hashlib, json, os, shutil, subprocess, tempfile

import h5py
import hdf5plugin  # noqa: F401  (the ARINA frames are bitshuffle-LZ4)
import numpy as np
import warnings

from common import Tally, run

warnings.filterwarnings("ignore", "All-NaN slice")
check = Tally()
EVENT = "entry1/measurement/event1"
DET = "entry1/measurement/instrument/detector1"


def write_raw(folder, name, a, signal_rank=2):
    path = os.path.join(folder, name)
    a = np.ascontiguousarray(a)
    a.astype(a.dtype.newbyteorder("<")).tofile(path)
    with open(path + ".json", "w") as f:
        json.dump({"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape), "signal_rank": signal_rank}, f)
    return path


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def signals(h5):
    """emconv's dataset name -> (NXdata group, signal field), derived views included."""
    out = {}
    for g in h5[EVENT].values():
        if not isinstance(g, h5py.Group):
            continue
        for d in g.values():
            if isinstance(d, h5py.Group) and d.attrs.get("NX_class") in (b"NXdata", "NXdata") and "emconv/dataset_name" in d:
                name = d["emconv/dataset_name"][()]
                name = name.decode() if isinstance(name, bytes) else name
                sig = d.attrs["signal"]
                out[name] = (d, d[sig.decode() if isinstance(sig, bytes) else sig])
    return out


def record(h5, step):
    """The parameters JSON of the first processingK record whose step is `step`."""
    for g in h5[EVENT].values():
        if not isinstance(g, h5py.Group):
            continue
        for k in g:
            if k.startswith("processing"):
                text = g[k]["parameters/data"][()]
                j = json.loads(text.decode() if isinstance(text, bytes) else text)
                if j["step"] == step:
                    return g[k], j["parameters"]
    return None, None


def correct(raw, dark=None, gain=None, flat=None, mask=None, fill="zero"):
    """The documented arithmetic, in NumPy float32."""
    v = raw.astype(np.float32)
    if dark is not None:
        v = v - dark
    if gain is not None:
        v = v * gain
    if flat is not None:
        v = v * flat
    if mask is None:
        return v
    m = mask != 0
    rows, cols = m.shape
    out = v.copy()
    if fill == "zero":
        out[..., m] = np.float32(0)
    elif fill == "nan":
        out[..., m] = np.float32(np.nan)
    else:
        flat_v = v.reshape(-1, rows, cols)
        flat_o = out.reshape(-1, rows, cols)
        for y, x in zip(*np.nonzero(m)):
            nb = [(yy, xx) for yy, xx in ((y - 1, x), (y, x - 1), (y, x + 1), (y + 1, x))
                  if 0 <= yy < rows and 0 <= xx < cols and not m[yy, xx]]
            for f in range(flat_v.shape[0]):
                s = np.float32(0)
                for yy, xx in nb:
                    s = np.float32(s + flat_v[f, yy, xx])
                flat_o[f, y, x] = np.float32(s / np.float32(len(nb))) if nb else np.float32(0)
    return out


def same_bits(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def validate(emconv, out, *extra):
    return subprocess.run([emconv, "validate", out, "--profile", "em"] + list(extra), capture_output=True, text=True)


def generated(emconv, tmp):
    rng = np.random.default_rng(16)
    data = rng.integers(0, 4000, size=(4, 5, 16, 12), dtype=np.uint16)
    darks = rng.integers(0, 30, size=(3, 16, 12), dtype=np.uint16)
    gain = (0.75 + rng.random((16, 12)) * 0.5).astype(np.float32)
    flat = (0.9 + rng.random((16, 12)) * 0.2).astype(np.float32)
    mask = np.zeros((16, 12), np.uint8)
    for y, x in [(0, 0), (3, 4), (3, 5), (15, 11), (8, 0), (9, 6)]:
        mask[y, x] = 1
    src = write_raw(tmp, "scan.raw", data)
    dark_p = write_raw(tmp, "dark.raw", darks)
    gain_p = write_raw(tmp, "gain.raw", gain)
    flat_p = write_raw(tmp, "flat.raw", flat)
    mask_p = write_raw(tmp, "mask.raw", mask)
    # The dark stack's mean: float64 sum in frame order / 3, once rounded to float32.
    dark = ((darks[0].astype(np.float64) + darks[1]) + darks[2]) / 3.0
    dark = dark.astype(np.float32)

    for fill in ["interpolate", "nan", "zero"]:
        out = os.path.join(tmp, f"c-{fill}.nxs")
        r = run(emconv, ["convert", src, "-o", out, "--dark", dark_p, "--gain", gain_p, "--flat-field", flat_p,
                         "--pixel-mask", mask_p, "--mask-fill", fill, "--vbf", "3", "--vadf", "3:6", "--centre", "5.5,7",
                         "--sum-pattern", "--max-pattern"])
        check(r.returncode == 0, f"convert with corrections ({fill})")
        if r.returncode != 0:
            continue
        want = correct(data, dark, gain, flat, mask, fill)
        with h5py.File(out, "r") as h5:
            s = signals(h5)
            got = s["data"][1][()]
            check(got.dtype == np.float32, f"{fill}: corrected data are float32 ({got.dtype})")
            check(same_bits(got, want), f"{fill}: corrected frames equal NumPy's float32 arithmetic bit for bit")
            check(np.array_equal(s["data_raw"][1][()], data) and s["data_raw"][1].dtype == np.uint16, f"{fill}: raw data kept unchanged")
            det = h5[DET]
            check(same_bits(det["correction_dark"][()], dark), f"{fill}: stored dark = the stack's mean")
            check(same_bits(det["correction_gain"][()], gain) and same_bits(det["correction_flatfield"][()], flat), f"{fill}: stored gain and flat field")
            check(np.array_equal(det["correction_pixel_mask"][()], mask), f"{fill}: stored mask")
            for f in ["correction_dark", "correction_gain", "correction_flatfield"]:
                sha = hashlib.sha256(det[f][()].astype("<f4").tobytes()).hexdigest()
                a = det[f].attrs["sha256"]
                check((a.decode() if isinstance(a, bytes) else a) == sha, f"{fill}: {f}/@sha256 is the SHA-256 of its values")
            proc, p = record(h5, "correct")
            check(p is not None and p["mask_fill"] == fill and p["raw_dataset"] == "data_raw", f"{fill}: NXprocess correct record")
            if p is not None:
                check(p["maps"]["correction_gain"]["origin"]["file_sha256"] == sha_file(gain_p), f"{fill}: record names the gain file's SHA-256")
                check(p["maps"]["correction_dark"]["origin"]["frames_averaged"] == 3, f"{fill}: record says the dark is a mean of 3 frames")
                inp = proc["input/checksum"][()]
                check((inp.decode() if isinstance(inp, bytes) else inp) == sha_file(src), f"{fill}: record's input checksum is the source's")
                ver = proc["version"][()]
                check(proc["program"][()] in (b"emconv", "emconv") and len(ver) > 0, f"{fill}: record names program and version")
            # Derived views of the corrected data (float64, NaN left out).
            yy, xx = np.mgrid[0:16, 0:12]
            d = np.sqrt((xx - 5.5) ** 2 + (yy - 7.0) ** 2)
            w64 = want.astype(np.float64)
            vbf = np.nansum(np.where(d <= 3, w64, 0), axis=(2, 3))
            vadf = np.nansum(np.where((d > 3) & (d <= 6), w64, 0), axis=(2, 3))
            check(np.allclose(s["data_vbf"][1][()], vbf, rtol=1e-12, atol=0), f"{fill}: virtual bright field")
            check(np.allclose(s["data_vadf"][1][()], vadf, rtol=1e-12, atol=0), f"{fill}: virtual annular dark field")
            check(np.allclose(s["data_sum_pattern"][1][()], np.nansum(w64, axis=(0, 1)), rtol=1e-12, atol=0), f"{fill}: sum pattern")
            check(np.array_equal(s["data_max_pattern"][1][()], np.nanmax(w64, axis=(0, 1)), equal_nan=True), f"{fill}: max pattern")
            check("derived" in s["data_vbf"][0]["emconv"], f"{fill}: the virtual image is marked derived")
        v = validate(emconv, out, "--source", src)
        check(v.returncode == 0 and "re-derived bit for bit" in v.stdout, f"{fill}: validate --source proves the output: {v.stdout.strip()[-300:]}")

    # Tampering: one value of the data, then one value of a map.
    out = os.path.join(tmp, "c-interpolate.nxs")
    bad = os.path.join(tmp, "bad-data.nxs")
    shutil.copy(out, bad)
    with h5py.File(bad, "r+") as h5:
        ds = signals(h5)["data"][1]
        ds[1, 2, 3, 4] = ds[1, 2, 3, 4] + np.float32(1)
    v = validate(emconv, bad)
    check(v.returncode == 3 and "frame 7 (index 1,2) pixel (row 3, column 4)" in v.stdout, f"tampered data fail validation naming the pixel: {v.stdout.strip()[:400]}")
    bad = os.path.join(tmp, "bad-map.nxs")
    shutil.copy(out, bad)
    with h5py.File(bad, "r+") as h5:
        g = h5[DET]["correction_gain"]
        g[2, 2] = g[2, 2] * np.float32(1.5)
    v = validate(emconv, bad, "--source", src)
    check(v.returncode == 3 and "correction_gain map changed" in v.stdout, f"tampered map fails validation: {v.stdout.strip()[:400]}")

    # Derived views of integer data: exact.
    out = os.path.join(tmp, "views.nxs")
    r = run(emconv, ["convert", src, "-o", out, "--vbf", "4", "--vadf", "4:7", "--sum-pattern", "--max-pattern", "--chunks", "balanced"])
    check(r.returncode == 0, "convert with views and balanced chunks")
    if r.returncode == 0:
        with h5py.File(out, "r") as h5:
            s = signals(h5)
            yy, xx = np.mgrid[0:16, 0:12]
            d = np.sqrt((xx - 5.5) ** 2 + (yy - 7.5) ** 2)
            i64 = data.astype(np.int64)
            check(np.array_equal(s["data_vbf"][1][()], (i64 * (d <= 4)).sum(axis=(2, 3))), "integer VBF exact (detector centre)")
            check(np.array_equal(s["data_vadf"][1][()], (i64 * ((d > 4) & (d <= 7))).sum(axis=(2, 3))), "integer VADF exact")
            check(np.array_equal(s["data_sum_pattern"][1][()], i64.sum(axis=(0, 1))), "integer sum pattern exact")
            check(np.array_equal(s["data_max_pattern"][1][()], data.max(axis=(0, 1))), "max pattern exact")
            check(np.array_equal(s["data"][1][()], data), "the data themselves unchanged beside the views")


def arina(emconv, tmp, testdata):
    master = os.path.join(testdata, "arina", "test_00_master.h5")
    if not os.path.exists(master):
        print("skipped: ARINA test data not found")
        return
    with h5py.File(master, "r") as m:
        ds = m["entry/instrument/detector/detectorSpecific"]
        flat = ds["flatfield"][()].astype(np.float32)
        mask = ds["pixel_mask"][()]
    out = os.path.join(tmp, "arina.nxs")
    r = run(emconv, ["convert", master, "-o", out, "--flat-field", "from-file", "--pixel-mask", "from-file", "--mask-fill", "interpolate"])
    check(r.returncode == 0, "ARINA: convert with the file's flat field and mask")
    if r.returncode != 0:
        return
    with h5py.File(out, "r") as h5:
        s = signals(h5)
        name = [k for k in s if not k.endswith("_raw")][0]
        raw = s[name + "_raw"][1][()]
        got = s[name][1][()]
        check(same_bits(h5[DET]["correction_flatfield"][()], flat), "ARINA: stored flat field = the master's")
        check(np.array_equal(h5[DET]["correction_pixel_mask"][()], (mask != 0).astype(np.uint8)), "ARINA: stored mask = the master's (non-zero = bad)")
        check(same_bits(got, correct(raw, flat=flat, mask=mask, fill="interpolate")), f"ARINA: corrected frames bit for bit ({int((mask != 0).sum())} masked pixels)")
    v = validate(emconv, out, "--source", master)
    check(v.returncode == 0 and "the raw data equal the source" in v.stdout, f"ARINA: validate --source: {v.stdout.strip()[-300:]}")


def mib(emconv, tmp, testdata):
    src = os.path.join(testdata, "mib", "Single_9_Frames_CounterDepth_12_Rows_256.mib")
    if not os.path.exists(src):
        print("skipped: MIB test data not found")
        return
    out = os.path.join(tmp, "mib.nxs")
    r = run(emconv, ["convert", src, "-o", out, "--scan-shape", "3,3", "--dark", "first:2", "--vbf", "30"])
    check(r.returncode == 0, "MIB: convert with --dark first:2")
    if r.returncode != 0:
        return
    with h5py.File(out, "r") as h5:
        s = signals(h5)
        name = [k for k in s if k.endswith("_raw")][0][:-4]
        raw = s[name + "_raw"][1][()]
        frames = raw.reshape(-1, *raw.shape[-2:])
        dark = ((frames[0].astype(np.float64) + frames[1]) / 2.0).astype(np.float32)
        check(same_bits(h5[DET]["correction_dark"][()], dark), "MIB: dark = mean of the first 2 frames")
        check(same_bits(s[name][1][()], correct(raw, dark=dark)), "MIB: corrected frames bit for bit")
        # Corrected 256x256 frames: chunks of the scan row's 3 frames cut into 2 bands of 128 rows,
        # gzip (h5py's built-in deflate reads them; no plugin) coded against the previous frame.
        check(s[name][1].chunks == (1, 3, 128, 256) and s[name][1].compression == "gzip",
              f"MIB: corrected data in frame bands, gzip: {s[name][1].chunks} {s[name][1].compression}")
        yy, xx = np.mgrid[0:raw.shape[-2], 0:raw.shape[-1]]
        d = np.sqrt((xx - (raw.shape[-1] - 1) / 2) ** 2 + (yy - (raw.shape[-2] - 1) / 2) ** 2)
        vbf = np.where(d <= 30, correct(raw, dark=dark).astype(np.float64), 0).sum(axis=(2, 3))
        check(np.allclose(s[name + "_vbf"][1][()], vbf, rtol=1e-12, atol=1e-9), "MIB: VBF of the corrected data")
    v = validate(emconv, out, "--source", src, "--scan-shape", "3,3")
    check(v.returncode == 0 and "the raw data equal the source" in v.stdout, f"MIB: validate --source: {v.stdout.strip()[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", default="../shared/testdata")
    a = ap.parse_args()
    emconv = os.path.abspath(a.emconv)
    with tempfile.TemporaryDirectory() as tmp:
        generated(emconv, tmp)
        arina(emconv, tmp, a.testdata)
        mib(emconv, tmp, a.testdata)
    print(check.summary())
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Independent check of emconv's processing options (issue 16): --crop, --bin, --bin-mode, --dataset.

Generated 4-D raw inputs (random uint16 and float32, calibrated axes in a JSON descriptor) are
converted with the emconv binary; h5py (NeXus) and HyperSpy (zspy) read the outputs back and NumPy
computes the right answer on its own (slicing, reshape + sum/mean): values, dtypes, axis
coordinates and the NXprocess records. Prints 'N passed, M failed'.
"""
import argparse, json, os, subprocess, tempfile, warnings

import h5py
import numpy as np
import hyperspy.api as hs

from common import Tally, run, scratch_dir

warnings.filterwarnings("ignore")
import logging  # noqa: E402
logging.getLogger("hyperspy").setLevel(logging.ERROR)
check = Tally()

NAMES = ["scan_y", "scan_x", "det_y", "det_x"]
OFFSETS = [10.0, -5.0, -3.0, -4.0]
SCALES = [2.0, 0.5, 0.1, 0.125]


def make_raw(folder, data):
    path = os.path.join(folder, "scan.raw")
    data.astype(data.dtype.newbyteorder("<")).tofile(path)
    desc = {"dtype": data.dtype.newbyteorder("<").str, "shape": list(data.shape), "signal_rank": 2,
            "axes": [{"name": n, "units": "nm", "offset": o, "scale": s} for n, o, s in zip(NAMES, OFFSETS, SCALES)]}
    with open(path + ".json", "w") as f:
        json.dump(desc, f)
    return path


def expected(data, crop, factors, mode):
    """Crop (index ranges per axis), then bin by reshaping each axis into (n, f) and reducing."""
    sl = tuple(slice(*crop.get(i, (0, data.shape[i]))) for i in range(data.ndim))
    a = data[sl]
    if not factors:
        return a
    shape = []
    trim = []
    for i, n in enumerate(a.shape):
        f = factors.get(i, 1)
        trim.append(slice(0, (n // f) * f))
        shape += [n // f, f]
    a = a[tuple(trim)].reshape(shape)
    axes = tuple(range(1, 2 * data.ndim, 2))
    if mode == "mean":
        return a.astype(np.float64).mean(axis=axes).astype(np.float32)
    if data.dtype.kind == "f":
        return a.astype(np.float64).sum(axis=axes)
    return a.astype(np.int64).sum(axis=axes)


def expected_axis(i, crop, factors, n):
    lo = crop.get(i, (0, 0))[0]
    f = factors.get(i, 1)
    coords = OFFSETS[i] + SCALES[i] * (lo + np.arange(n * f))
    return coords.reshape(n, f).mean(axis=1)


def nxs_data(path):
    with h5py.File(path, "r") as h:
        g = h["entry1/measurement/event1/image1"]
        nxdata = g[g.attrs["default"]]
        signal = nxdata.attrs["signal"]
        axes = list(nxdata.attrs["axes"])
        coords = [nxdata[a][()] for a in axes]
        steps = []
        for k in sorted(n for n in g if n.startswith("processing")):
            p = g[k]
            steps.append({"class": p.attrs["NX_class"], "index": int(p["sequence_index"][()]),
                          "program": p["program"][()].decode(), "version": p["version"][()].decode(),
                          "params": json.loads(p["parameters/data"][()].decode())})
        return nxdata[signal][()], coords, steps


def case(tmp, emconv, data, crop, factors, mode, label):
    folder = tempfile.mkdtemp(dir=tmp)
    raw = make_raw(folder, data)
    args = []
    if crop:
        args += ["--crop", ",".join(f"{NAMES[i]}={a}:{b}" for i, (a, b) in crop.items())]
    if factors:
        args += ["--bin", ",".join(f"{NAMES[i]}={f}" for i, f in factors.items()), "--bin-mode", mode]
    want = expected(data, crop, factors, mode)
    nxs = os.path.join(folder, "o.nxs")
    r = run(emconv, ["convert", raw, "-o", nxs, "--quiet"] + args)
    check(r.returncode == 0, f"{label}: convert to NeXus")
    if r.returncode != 0:
        return
    got, coords, steps = nxs_data(nxs)
    check(got.shape == want.shape, f"{label}: shape {got.shape} == {want.shape}")
    if not factors:
        ok = got.dtype == data.dtype
    elif mode == "mean":
        ok = got.dtype == np.float32
    elif data.dtype.kind == "f":
        ok = got.dtype == np.float64
    else:
        ok = got.dtype.kind in "iu" and got.dtype.itemsize >= 4
    check(ok, f"{label}: dtype {got.dtype} for {data.dtype}, bins {factors}, {mode}")
    check(got.shape == want.shape and np.array_equal(got.astype(want.dtype), want), f"{label}: values equal NumPy's")
    if got.dtype.kind in "iu" and factors:
        # The stored type holds the largest possible sum of the input type.
        k = int(np.prod(list(factors.values())))
        check(np.iinfo(got.dtype).max >= np.iinfo(data.dtype).max * k, f"{label}: {got.dtype} holds {k} x max {data.dtype}")
    for i, c in enumerate(coords):
        check(np.allclose(c, expected_axis(i, crop, factors, want.shape[i])), f"{label}: axis {NAMES[i]} coordinates")
    names = [s["params"]["step"] for s in steps]
    check(names == (["crop"] if crop else []) + (["bin"] if factors else []), f"{label}: NXprocess steps {names}")
    check(all(s["class"] == "NXprocess" and s["index"] == n + 1 and s["program"] == "emconv" for n, s in enumerate(steps)),
          f"{label}: NXprocess sequence_index / program")
    # zspy: the same values through HyperSpy, the steps in the provenance.
    zspy = os.path.join(folder, "o.zspy")
    r = run(emconv, ["convert", raw, "-o", zspy, "--quiet"] + args)
    check(r.returncode == 0, f"{label}: convert to zspy")
    if r.returncode == 0:
        s = hs.load(zspy)
        check(s.data.shape == want.shape and np.array_equal(np.asarray(s.data).astype(want.dtype), want), f"{label}: zspy values")
        with open(os.path.join(zspy, ".zattrs")) as f:
            prov = json.load(f)["emconv"]
        check(len(prov.get("processing", {}).get("data", [])) == len(names), f"{label}: zspy provenance lists the steps")
    # No options: a bit-exact copy, no processing record.
    if not crop and not factors:
        check(steps == [], f"{label}: no NXprocess step without options")


def cast_case(tmp, emconv):
    """--cast int16 of floats: NumPy's round-half-even, clamped, NaN to 0; the warning names the first change."""
    folder = tempfile.mkdtemp(dir=tmp)
    data = np.array([[0, 1.5, 2.5, -3.7], [40000, -1e9, np.nan, 7]], dtype=np.float32).reshape(1, 1, 2, 4)
    raw = make_raw(folder, data)
    nxs = os.path.join(folder, "c.nxs")
    r = run(emconv, ["convert", raw, "-o", nxs, "--cast", "int16"])
    check(r.returncode == 0, "cast: convert")
    want = np.clip(np.rint(np.nan_to_num(data, nan=0.0)), -32768, 32767).astype(np.int16)
    got, _, steps = nxs_data(nxs)
    check(got.dtype == np.int16 and np.array_equal(got, want), f"cast: values {got.ravel()} == {want.ravel()}")
    check("the first, 1.5 at (0, 1), is stored as 2" in r.stderr, f"cast: warning names the first change ({r.stderr.strip()})")
    check([s["params"]["step"] for s in steps] == ["cast"], "cast: NXprocess step")
    r = subprocess.run([emconv, "convert", raw, "-o", os.path.join(folder, "e.nxs"), "--cast", "int16", "--cast-exact"],
                       capture_output=True, text=True)  # expected to fail
    check(r.returncode == 65 and not os.path.exists(os.path.join(folder, "e.nxs")), "cast-exact: exit 65, nothing written")


def chunks_case(tmp, emconv):
    """--chunks balanced / explicit: the same values as frame chunks, the chunk shape as asked."""
    folder = tempfile.mkdtemp(dir=tmp)
    rng = np.random.default_rng(4)
    data = rng.integers(0, 4096, size=(13, 17, 24, 20), dtype=np.uint16)  # edges not multiples of the chunks
    raw = make_raw(folder, data)
    for choice, want_chunks in [("frame", (1, 17, 24, 20)), ("balanced", None), ("4,8,16,5", (4, 8, 16, 5))]:
        out = os.path.join(folder, f"{choice.replace(',', '_')}.nxs")
        r = run(emconv, ["convert", raw, "-o", out, "--quiet", "--chunks", choice])
        check(r.returncode == 0, f"chunks {choice}: convert")
        if r.returncode != 0:
            continue
        with h5py.File(out, "r") as h:
            g = h["entry1/measurement/event1/image1"]
            d = g[g.attrs["default"]]["real"]
            check(np.array_equal(d[()], data), f"chunks {choice}: values bit-exact")
            if want_chunks:
                check(d.chunks == want_chunks, f"chunks {choice}: chunk shape {d.chunks} == {want_chunks}")
            else:
                check(d.chunks[0] < 13 or d.chunks[1] < 17, f"chunks balanced: navigation axes cut ({d.chunks})")
            check(np.array_equal(d[:, :, 5, 7], data[:, :, 5, 7]), f"chunks {choice}: one detector pixel over the scan")
            p = h["entry1/measurement/event1/image2/image_2d/real"][()]
            check(np.array_equal(p, data.sum(axis=(2, 3), dtype=np.float64)), f"chunks {choice}: preview sums")
        z = os.path.join(folder, f"{choice.replace(',', '_')}.zspy")
        r = run(emconv, ["convert", raw, "-o", z, "--quiet", "--chunks", choice])
        if r.returncode == 0:
            s = hs.load(z)
            check(np.array_equal(np.asarray(s.data), data), f"chunks {choice}: zspy values")
            if want_chunks:
                with open(os.path.join(z, "Experiments", os.listdir(os.path.join(z, "Experiments"))[0], "data", ".zarray")) as f:
                    check(tuple(json.load(f)["chunks"]) == want_chunks, f"chunks {choice}: zspy chunk shape")
        else:
            check(False, f"chunks {choice}: convert to zspy")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(16)
    tmp = scratch_dir("emconv-processing-")
    u16 = rng.integers(0, 65536, size=(6, 7, 10, 12), dtype=np.uint16)
    f32 = rng.normal(size=(5, 6, 8, 9)).astype(np.float32)
    case(tmp, a.emconv, u16, {}, {}, "sum", "u16 plain")
    case(tmp, a.emconv, u16, {1: (0, 6)}, {}, "sum", "u16 flyback crop")
    case(tmp, a.emconv, u16, {}, {2: 2, 3: 2}, "sum", "u16 detector 2x2 sum")
    case(tmp, a.emconv, u16, {1: (1, 7), 2: (1, 10)}, {0: 4, 2: 3, 3: 5}, "sum", "u16 crop + uneven bins sum")
    case(tmp, a.emconv, u16, {}, {0: 2, 1: 2, 2: 2, 3: 2}, "mean", "u16 4-axis mean")
    case(tmp, a.emconv, f32, {3: (2, 9)}, {1: 3, 3: 2}, "sum", "f32 crop + sum")
    cast_case(tmp, a.emconv)
    chunks_case(tmp, a.emconv)
    print(check.summary())
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

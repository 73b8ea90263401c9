"""Independent check of emconv's zspy, zspy.zip and TIFF outputs.

Every shared-testdata MIB/EMPAD case (and every fixture) is converted with the emconv binary to
.zspy (directory), .zspy.zip (ZIP store), .nxs → .zspy (any-to-any through the NeXus reader) and
TIFF (--stack), then read back with RosettaSciIO/HyperSpy (hs.load, zarr<3) and tifffile:
data bit-exact with the reference hashes (rows flipped like RosettaSciIO, --mib-flip-rows),
axes equal to those `emconv info --json` reports, TIFF pixel size in the ImageJ description and
in X/YResolution, with ImageJ's unit names (`micron`), which HyperSpy reads back as µm.
Prints 'N passed, M failed'.
"""
import argparse, glob, json, os, sys, tempfile, warnings

import numpy as np
import tifffile
import hyperspy.api as hs

from common import Tally, emconv_detail, reference_cases, run, sha_le, scratch_dir

warnings.filterwarnings("ignore")
import logging  # noqa: E402
logging.getLogger("hyperspy").setLevel(logging.ERROR)
check = Tally()


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check_zspy(path, ref_hash, axes, kw):
    s = hs.load(path, **kw)
    check(sha_le(s.data) == ref_hash, f"{path}: data bit-exact with the reference")
    got = [s.axes_manager[i] for i in range(len(s.axes_manager._axes))]
    got = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)
    check(len(got) == len(axes), f"{path}: rank {len(got)} == {len(axes)}")
    for g, e in zip(got, axes):
        ok = (g.name == e["name"] and g.size == e["size"] and g.navigate == (e["role"] == "navigation")
              and (g.units or "") == e["units"] and close(g.scale, e["scale"]) and close(g.offset, e["offset"]))
        check(ok, f"{path}: axis {e['name']} (got {g.name} {g.size} {g.scale} {g.offset} {g.units} nav={g.navigate})")


def check_zspy_axes(path, s, axes, kind):
    got = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)
    check(len(got) == len(axes), f"{path}: rank {len(got)} == {len(axes)}")
    for g, e in zip(got, axes):
        ok = (g.size == e["size"] and g.navigate == (e["role"] == "navigation") and (g.units or "") == e["units"]
              and ("coordinates" in e or (close(g.scale, e["scale"]) and close(g.offset, e["offset"]))))
        check(ok, f"{path}: axis {e['name']} (got {g.name} {g.size} {g.scale} {g.offset} {g.units} nav={g.navigate})")


def ij_unit(u):
    """The ImageJ name of a length unit, as ImageJ (and RosettaSciIO's writer) write it."""
    if u.startswith("1/"):
        return "1/" + ij_unit(u[2:])
    return {"um": "micron", "\u00b5m": "micron", "\u03bcm": "micron", "\u00c5": "angstrom"}.get(u, u)


def check_tiff_units_in_hyperspy(path, x, y):
    """HyperSpy (RosettaSciIO's tiff reader) maps ImageJ's `micron` back to µm; other ImageJ
    units it leaves empty, so only the pixel size can be checked for them."""
    s = hs.load(path)
    sig = s.axes_manager.signal_axes
    gx, gy = sig[0], sig[1]
    # X/YResolution are rationals of 32-bit integers: the pixel size comes back to ~1e-7.
    near = lambda a, b: abs(a - b) <= 1e-6 * abs(b)  # noqa: E731
    check(near(gx.scale, x["scale"]) and near(gy.scale, y["scale"]), f"{path}: HyperSpy pixel size {gx.scale}, {gy.scale}")
    if ij_unit(x["units"]) == "micron":
        check(gx.units == "\u00b5m" and gy.units == "\u00b5m", f"{path}: HyperSpy units {gx.units!r}, {gy.units!r} == 'µm'")


def check_tiff(path, ref_hash, axes):
    with tifffile.TiffFile(path) as t:
        d = t.asarray()
        check(t.is_imagej, f"{path}: ImageJ TIFF")
        check(sha_le(d.reshape([a["size"] for a in axes])) == ref_hash, f"{path}: data bit-exact with the reference")
        ij = t.imagej_metadata or {}
        p = t.pages[0]
        x, y = axes[-1], axes[-2]
        calibrated = not (x["units"] == "" and y["units"] == "" and x["scale"] == 1 and y["scale"] == 1)
        if calibrated:
            xr = p.tags["XResolution"].value
            yr = p.tags["YResolution"].value
            check(abs(xr[0] / xr[1] - 1 / x["scale"]) <= 1e-6 / x["scale"], f"{path}: XResolution = 1/pixel size")
            check(abs(yr[0] / yr[1] - 1 / y["scale"]) <= 1e-6 / y["scale"], f"{path}: YResolution = 1/pixel size")
            check(ij.get("unit") == ij_unit(x["units"]), f"{path}: ImageJ unit {ij.get('unit')} == {ij_unit(x['units'])}")
        else:
            check("XResolution" not in p.tags or p.tags["XResolution"].value == (1, 1), f"{path}: no calibration claimed")
        nav = [a["size"] for a in axes[:-2]]
        if nav:
            check(ij.get("images") == int(np.prod(nav)), f"{path}: ImageJ images={ij.get('images')}")
        if len(nav) == 2:
            check(ij.get("frames") == nav[0] and ij.get("slices") == nav[1] and ij.get("hyperstack"), f"{path}: hyperstack frames/slices")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    tmp = scratch_dir("emconv-writers-")
    cases = []
    for ref, src in reference_cases(a.testdata, ("MIB", "EMPAD")):
        if ref.get("xml_only"):
            continue
        flip = ref.get("format") == "MIB"
        h = ref["signals"][0].get("data_sha256") if ref.get("signals") else None
        if h is None and ref.get("alt_reference"):
            h = ref["alt_reference"].get("data_sha256_rows_flipped") or ref["alt_reference"]["signals"][0].get("data_sha256_rows_flipped")
        if h is None:
            continue
        cases.append((src, h, flip))
    for i, (src, h, flip) in enumerate(cases):
        extra = ["--mib-flip-rows"] if flip else []
        info = run(a.emconv, ["info", src, "--json"] + extra)
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        doc = json.loads(info.stdout)
        f0 = doc["files"][0] if "files" in doc else doc
        axes = f0["datasets"][0]["axes"]
        outs = {
            "zspy": os.path.join(tmp, f"{i}.zspy"),
            "zip": os.path.join(tmp, f"{i}.zspy.zip"),
            "nxs": os.path.join(tmp, f"{i}.nxs"),
            "nxzspy": os.path.join(tmp, f"{i}-from-nxs.zspy"),
            "tif": os.path.join(tmp, f"{i}.tif"),
        }
        for key, args in [("zspy", []), ("zip", []), ("nxs", ["--compression", "zstd"]), ("tif", ["--stack"])]:
            r = run(a.emconv, ["convert", src, "-o", outs[key], "--quiet"] + extra + args)
            check(r.returncode == 0, f"convert {src} -> {key}")
        r = run(a.emconv, ["convert", outs["nxs"], "-o", outs["nxzspy"], "--quiet"])
        check(r.returncode == 0, f"convert {outs['nxs']} -> zspy")
        for key, kw in [("zspy", {}), ("zip", {"file_format": "zspy"}), ("nxzspy", {})]:
            if os.path.exists(outs[key]):
                try:
                    check_zspy(outs[key], h, axes, kw)
                except Exception as e:  # noqa: BLE001
                    check(False, f"{outs[key]}: hs.load failed: {e}")
        if os.path.exists(outs["tif"]):
            try:
                check_tiff(outs["tif"], h, axes)
            except Exception as e:  # noqa: BLE001
                check(False, f"{outs['tif']}: tifffile failed: {e}")
    # DM and EMD cases with one dataset: the zspy that HyperSpy loads holds exactly the data of the
    # NeXus output (whose equality with the independent references the Swift tests establish).
    others = 0
    tiffs = 0
    import h5py
    import hdf5plugin  # noqa: F401
    for ref, src in reference_cases(a.testdata, ("DM3", "DM4", "EMD (Velox)", "EMD (Berkeley/NCEM)")):
        if ref.get("ref_suffix"):
            continue
        info = run(a.emconv, ["info", src, "--json"])
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        ds = json.loads(info.stdout)["files"][0]["datasets"]
        if len(ds) != 1:
            continue
        others += 1
        z = os.path.join(tmp, f"o{others}.zspy")
        n = os.path.join(tmp, f"o{others}.nxs")
        ok = run(a.emconv, ["convert", src, "-o", z, "--quiet"]).returncode == 0
        ok = ok and run(a.emconv, ["convert", src, "-o", n, "--quiet", "--no-preview"]).returncode == 0
        check(ok, f"convert {src} -> zspy, nxs")
        if not ok:
            continue
        with h5py.File(n, "r") as f:
            g = f["entry1/measurement/event1"]
            g = g[g.attrs["default"]]
            g = g[g.attrs["default"]]
            d = g[g.attrs["signal"]][()]
            if emconv_detail(g, "complex") == "real+imag":
                d = d + 1j * g["imag"][()]
                d = d.astype(np.complex64 if g["imag"].dtype == np.float32 else np.complex128)
            kind = emconv_detail(g, "element_type")
        try:
            sz = hs.load(z)
            zd = sz.data
            if kind in ("rgb8", "rgba8"):
                zd = np.ascontiguousarray(zd).view(np.uint8).reshape(d.shape)
            elif kind == "bool":
                zd = zd.astype(np.uint8)
            check(zd.shape == d.shape and zd.dtype == d.dtype and np.array_equal(zd, d),
                  f"{src}: zspy data equal to the NeXus data ({zd.shape} {zd.dtype} vs {d.shape} {d.dtype})")
            check_zspy_axes(z, sz, ds[0]["axes"], kind)
        except Exception as e:  # noqa: BLE001
            check(False, f"{z}: hs.load failed: {e}")
        # 2-D images (the Fiji case): TIFF data equal to the NeXus data, pixel size in ImageJ
        # metadata and in the resolution tags.
        axes = ds[0]["axes"]
        if len(axes) == 2 and ds[0]["dtype"] not in ("complex64", "complex128") and all("scale" in x for x in axes):
            t = os.path.join(tmp, f"o{others}.tif")
            if run(a.emconv, ["convert", src, "-o", t, "--quiet"]).returncode != 0:
                check(False, f"convert {src} -> tiff")
                continue
            with tifffile.TiffFile(t) as tf:
                td = tf.asarray()
                if kind in ("rgb8", "rgba8"):
                    td = td.reshape(d.shape)
                elif kind == "bool":
                    td = td.astype(np.uint8)
                check(td.shape == d.shape and np.array_equal(td, d), f"{t}: TIFF data equal to the NeXus data")
                x = axes[-1]
                if x["units"]:
                    xr = tf.pages[0].tags["XResolution"].value
                    check(abs(xr[0] / xr[1] - 1 / x["scale"]) <= 1e-6 / x["scale"], f"{t}: XResolution = 1/pixel size")
                    check((tf.imagej_metadata or {}).get("unit") == ij_unit(x["units"]), f"{t}: ImageJ unit {ij_unit(x['units'])}")
            if x["units"]:
                try:
                    check_tiff_units_in_hyperspy(t, x, axes[-2])
                except Exception as e:  # noqa: BLE001
                    check(False, f"{t}: hs.load failed: {e}")
            tiffs += 1
    print(f"interop writers: {len(cases)} MIB/EMPAD inputs x (zspy, zspy.zip, nxs->zspy, tiff); {others} DM/EMD inputs -> zspy, {tiffs} of them also -> TIFF")
    print(check.summary())
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

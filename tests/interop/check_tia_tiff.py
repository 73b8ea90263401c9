"""Interop check of the TIA (SER/EMI) and TIFF readers through HyperSpy.

Every shared-testdata case of format SER/EMI or TIFF is converted with the emconv binary to NeXus
(.nxs) and zspy, and both are loaded with HyperSpy (hs.load):
- data bit-exact with the reference (RosettaSciIO's reading, `data_sha256`);
- zspy axes equal to those `emconv info --json` reports (name, size, units, scale, offset);
- every axis against the reference: same size and units, same |scale|; offsets may differ by the
  documented conventions (`emconv_tia_calibration`, `emconv_orientation`: emconv converts offsets
  to nm and applies CalibrationElement; its flipped TIA image rows make y run downwards);
- NeXus axes as HyperSpy's NeXus reader reports them: it turns coordinate arrays into ascending
  uniform axes, so offset = the smallest coordinate and scale = |step| (a single coordinate has no step).
Prints 'N passed, M failed'.
"""
import argparse, glob, json, os, re, sys, tempfile, warnings

import numpy as np
import hyperspy.api as hs

from common import Tally, reference_cases, run, sha_le, scratch_dir

warnings.filterwarnings("ignore")
import logging  # noqa: E402
logging.getLogger("hyperspy").setLevel(logging.ERROR)
logging.getLogger("rsciio").setLevel(logging.ERROR)
check = Tally()


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def units(u):
    """Unit text compared across tools: spaces dropped, micro sign as 'u' (emconv writes ASCII units)."""
    return (u or "").replace(" ", "").replace("\u00b5", "u").replace("\u03bc", "u")


def signals(loaded, nexus=False):
    """The signals that stand for emconv's datasets, in dataset order. HyperSpy's NeXus reader also
    returns the axis coordinate arrays as 1-D signals (titles `entry1_…`), the entry's default link
    (`data`) and the measured NXdata without a navigation/signal split; the views emconv writes for
    HyperSpy (`entry1/hyperspy/imageN|spectrumN`, numbered in dataset order per kind; a TIA/TIFF
    file holds one kind) are what a user works with."""
    lst = loaded if isinstance(loaded, list) else [loaded]
    lst = [s for s in lst if not str(s.metadata.General.title).startswith("entry1_")]
    if not nexus:
        return lst
    views = [s for s in lst if re.fullmatch(r"(image|spectrum)\d+", str(s.metadata.General.title))]
    return sorted(views, key=lambda s: int(re.sub(r"\D", "", str(s.metadata.General.title))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    cases = reference_cases(a.testdata, ("SER/EMI", "TIFF"), "TIA/TIFF cases")
    if not cases:
        print(check.summary())
        return 0
    tmp = scratch_dir("emconv-tia-tiff-")
    n = 0
    for ref, src in cases:
        n += 1
        info = run(a.emconv, ["info", src, "--json"])
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        dss = json.loads(info.stdout)["files"][0]["datasets"]
        check(len(dss) == len(ref["signals"]), f"{src}: {len(dss)} datasets == {len(ref['signals'])} reference signals")
        outs = {"nxs": os.path.join(tmp, f"{n}.nxs"), "zspy": os.path.join(tmp, f"{n}.zspy")}
        for key, out in outs.items():
            r = run(a.emconv, ["convert", src, "-o", out, "--quiet", "--overwrite"])
            check(r.returncode == 0, f"convert {src} -> {key}")
            if r.returncode != 0:
                continue
            try:
                sigs = signals(hs.load(out), nexus=(key == "nxs"))
            except Exception as e:  # noqa: BLE001
                check(False, f"{out}: hs.load failed: {e}")
                continue
            check(len(sigs) == len(dss), f"{out} ({src}): {len(sigs)} signals == {len(dss)}")
            for s, ds, rs in zip(sigs, dss, ref["signals"]):
                what = f"{key} {src} {ds['name']}"
                d = s.data
                if ds["dtype"] in ("rgb8", "rgba8") and d.dtype.names is None:
                    d = np.ascontiguousarray(d)
                check(list(d.shape) == rs["shape"] and sha_le(d) == rs["data_sha256"],
                      f"{what}: data bit-exact with the reference ({list(d.shape)} {d.dtype})")
                got = sorted(s.axes_manager._axes, key=lambda x: x.index_in_array)
                check(len(got) == len(ds["axes"]) == len(rs["axes"]), f"{what}: rank")
                for g, e, r0 in zip(got, ds["axes"], rs["axes"]):
                    ok_ref = g.size == r0["size"] and units(g.units) == units(r0["units"]) and (close(abs(g.scale), abs(r0["scale"])) or (key == "nxs" and g.size == 1))
                    check(ok_ref, f"{what}: axis {e['name']} vs reference (got {g.size} {g.scale} {g.units}; ref {r0['size']} {r0['scale']} {r0['units']})")
                    if key == "zspy":
                        ok = (g.name == e["name"] and g.size == e["size"] and (g.units or "") == e["units"]
                              and close(g.scale, e["scale"], 1e-12) and close(g.offset, e["offset"], 1e-12))
                        check(ok, f"{what}: axis {e['name']} as emconv reports it (got {g.name} {g.scale} {g.offset})")
                    else:
                        lo = min(e["offset"], e["offset"] + (e["size"] - 1) * e["scale"])
                        check(close(g.offset, lo, 1e-6) or abs(g.offset - lo) < 1e-9 * abs(e["scale"]),
                              f"{what}: NeXus axis {e['name']} starts at {lo} (got {g.offset})")
    print(f"TIA/TIFF interop: {n} cases")
    print(check.summary())
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())

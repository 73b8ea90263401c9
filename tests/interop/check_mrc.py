"""Interop check of MRC conversions (issue 12).

Every shared-testdata `mrc/` case is converted with the emconv binary to NeXus (.nxs) and zspy,
and both outputs are loaded with HyperSpy (hs.load): the data must be bit-exact with the
reference (`signals[0].data_sha256`, the RosettaSciIO read) and the axes equal to the
reference's (size, scale, offset, units; navigate on the zspy, see compare_axes). One documented difference is accepted:
for Direct Electron movies RosettaSciIO 0.15 sets every axis scale to 1 while emconv calibrates
the scan axes from the _info.txt 'Specimen Pixel Size (nanometers)' and leaves the detector in
pixels; there the axes must equal what `emconv info --json` reports and the NeXus data must carry
the `emconv_de_calibration` convention attribute. Prints 'N passed, M failed'.
"""
import argparse, glob, json, logging, os, tempfile, warnings

import h5py
import hyperspy.api as hs

from common import Tally, reference_cases, run, sha_le, scratch_dir

warnings.filterwarnings("ignore")
logging.getLogger("hyperspy").setLevel(logging.ERROR)
logging.getLogger("rsciio").setLevel(logging.ERROR)
check = Tally()


def close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def nexus_conventions(path):
    """The reader conventions recorded for the NXdata the NeXus default path leads to: fields
    `convention_KEY` of its `emconv` NXcollection (older files: @emconv_* on the signal)."""
    with h5py.File(path, "r") as f:
        g = f
        while "default" in g.attrs:
            g = g[g.attrs["default"]]
        d = g[g.attrs["signal"]]
        if "target" in d.attrs:
            # The default is emconv's HyperSpy view, whose fields link the measured NXdata's.
            t = d.attrs["target"]
            t = t.decode() if isinstance(t, bytes) else str(t)
            d = f[t]
            g = f[t.rsplit("/", 1)[0]]
        out = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in d.attrs.items() if k.startswith("emconv_")}
        c = g.get("emconv")
        if c is not None:
            for k in c:
                if k.startswith("convention_"):
                    v = c[k][()]
                    out[k[len("convention_"):]] = v.decode() if isinstance(v, bytes) else str(v)
        return out


def compare_axes(label, s, expected, navigate=True):
    got = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)
    check(len(got) == len(expected), f"{label}: rank {len(got)} == {len(expected)}")
    for g, e in zip(got, expected):
        ok = (g.size == e["size"] and (not navigate or g.navigate == e["navigate"]) and (g.units or "") == (e["units"] or "")
              and close(g.scale, e["scale"]) and close(g.offset, e["offset"]))
        check(ok, f"{label}: axis {e['name']} expected {e['size']} {e['scale']} {e['offset']} {e['units']} nav={e['navigate']}, "
                  f"got {g.name} {g.size} {g.scale} {g.offset} {g.units} nav={g.navigate}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    cases = reference_cases(a.testdata, ("MRC",), "MRC cases")
    if not cases:
        print(check.summary())
        return 0
    tmp = scratch_dir("emconv-mrc-")
    n = 0
    for ref, src in cases:
        n += 1
        sig = ref["signals"][0]
        info = run(a.emconv, ["info", src, "--json"])
        if info.returncode != 0:
            check(False, f"info {src}")
            continue
        ds = json.loads(info.stdout)["files"][0]["datasets"][0]
        de = "emconv_de_calibration" in ds.get("conventions", {})
        if de:
            expected = [{"name": x["name"], "size": x["size"], "navigate": x["role"] == "navigation", "units": x["units"],
                         "scale": x["scale"], "offset": x["offset"]} for x in ds["axes"]]
        else:
            expected = [{"name": x["name"], "size": x["size"], "navigate": x["navigate"], "units": x.get("units") or "",
                         "scale": x.get("scale", 1.0), "offset": x.get("offset", 0.0)} for x in sig["axes"]]
        for ext in ("nxs", "zspy"):
            out = os.path.join(tmp, f"{n}.{ext}")
            r = run(a.emconv, ["convert", src, "-o", out, "--quiet"])
            check(r.returncode == 0, f"convert {src} -> {ext}")
            if r.returncode != 0:
                continue
            label = f"{ref['id']} -> {ext}"
            try:
                s = hs.load(out)
                if isinstance(s, list):
                    s = s[0]
                check(sha_le(s.data) == sig["data_sha256"], f"{label}: data bit-exact with the reference")
                check(list(s.data.shape) == sig["shape"], f"{label}: shape {list(s.data.shape)} == {sig['shape']}")
                # The first signal of the NeXus output is emconv's HyperSpy view (@interpretation),
                # so the navigation/signal split is checked for both outputs.
                compare_axes(label, s, expected, navigate=True)
            except Exception as e:  # noqa: BLE001
                check(False, f"{label}: hs.load failed: {e}")
            if ext == "nxs" and de:
                conv = nexus_conventions(out)
                check("RosettaSciIO" in conv.get("emconv_de_calibration", ""), f"{label}: DE calibration convention recorded ({sorted(conv)})")
    check(n > 0, "at least one MRC case")
    print(check.summary())
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

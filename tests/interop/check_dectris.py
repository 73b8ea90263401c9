"""Independent check of the Dectris reader and of bitshuffle-LZ4 output.

1. Acquisitions written by h5py + hdf5plugin (make_dectris.py) convert to NeXus with the frames
   bit-exact and in their stored dtype (uint8/16/32, several data files, odd frame sizes, chunks
   of two frames, gzip, non-default block size); a missing data file exits 66 naming it; a
   truncated one keeps its complete frames with a warning.
2. The shared ARINA acquisition converts with data equal to its reference values (the file
   stores uint32; RosettaSciIO returns uint16) and the flat field and pixel mask in the output.
   Their `--compression bitshuffle-lz4` outputs are byte-identical, chunk by chunk, to hdf5plugin
   encoding the same values (the layout, the transposition and the trailing elements verified, not
   only the read-back).
3. Every input above, every fixture and the shared MIB/DM files converted with
   `--compression bitshuffle-lz4` read back bit-exactly in h5py + hdf5plugin (filter 32008
   decoded by hdf5plugin's bitshuffle, not by emconv), equal to the `--compression none` output.
4. bitshuffle + zstd: acquisitions whose chunks hdf5plugin's Bitshuffle(cname='zstd') wrote
   convert bit-exactly (emconv decodes them); `--compression bitshuffle-zstd[:LEVEL]` outputs
   (.nxs and .hspy) declare hdf5plugin's cd_values (0, 4, E, 65536/E, 3, LEVEL) and read back
   bit-exactly in h5py + hdf5plugin; a NeXus file with such chunks converts through HDF5's path.
Prints 'N passed, M failed'.
"""
import argparse, glob, json, os, sys, tempfile

import h5py
import hdf5plugin  # noqa: F401  (registers filter 32008 with h5py)
import numpy as np

from common import Tally, run, sha_le
import make_dectris

check = Tally()


def signal(path):
    """The first image/spectrum signal of an emconv NeXus file and its filter ids."""
    with h5py.File(path, "r") as f:
        ev = f["entry1/measurement/event1"]
        g = ev["image1"]
        data = g[g.attrs["default"]]
        ds = data[data.attrs["signal"]]
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        return ds[()], filters


def same_chunks_as_hdf5plugin(path):
    """(identical, total) stored chunks of emconv's bitshuffle-lz4 signal against hdf5plugin
    encoding the same values with the same chunk shape (default block size)."""
    with h5py.File(path, "r") as f:
        g = f["entry1/measurement/event1/image1"]
        data = g[g.attrs["default"]]
        ds = data[data.attrs["signal"]]
        values = ds[()]
        with h5py.File("ref.h5", "w", driver="core", backing_store=False) as m:
            ref = m.create_dataset("d", data=values, chunks=ds.chunks, **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
            same = total = 0
            for i in range(ds.id.get_num_chunks()):
                off = ds.id.get_chunk_info(i).chunk_offset
                total += 1
                same += ds.id.read_direct_chunk(off)[1] == ref.id.read_direct_chunk(off)[1]
    return same, total


def check_cases(emconv, tmp):
    gen = os.path.join(tmp, "gen")
    make_dectris.main(gen)
    for case in ["u8", "u16", "u32", "chunk2", "gzip", "blosc-lz4-bit", "blosc-zstd-byte", "blosc-blosclz-none",
                 "blosc-lz4hc-byte", "blosc-chunk3", "bszstd-u8", "bszstd-u16", "bszstd-chunk2"]:
        master = os.path.join(gen, case, f"{case}_master.h5")
        expected = np.load(os.path.join(gen, case, "expected.npy"))
        out = os.path.join(tmp, f"{case}.nxs")
        r = run(emconv, ["convert", master, "-o", out, "--compression", "none"])
        check(r.returncode == 0, f"{case}: converts")
        if r.returncode != 0:
            continue
        got, _ = signal(out)
        check(got.dtype == expected.dtype, f"{case}: stored dtype {expected.dtype} kept (got {got.dtype})")
        check(np.array_equal(got.reshape(expected.shape), expected), f"{case}: frames bit-exact")
        if case == "u16":
            check(got.shape == (4, 5, 64, 48), f"{case}: ntrigger x nimages scan shape (got {got.shape})")
        with h5py.File(out, "r") as f:
            det = f["entry1/measurement/instrument/detector1"]
            check("flatfield" in det and det["flatfield"].shape == expected.shape[1:], f"{case}: flat field kept")
            check("pixel_mask" in det and det["pixel_mask"][0, 0] == 1, f"{case}: pixel mask kept")
        bs = os.path.join(tmp, f"{case}.bslz4.nxs")
        r = run(emconv, ["convert", master, "-o", bs, "--compression", "bitshuffle-lz4"])
        if r.returncode == 0:
            got, filters = signal(bs)
            check(filters == [32008], f"{case}: bitshuffle-lz4 output declares filter 32008 (got {filters})")
            check(np.array_equal(got.reshape(expected.shape), expected), f"{case}: bitshuffle-lz4 output bit-exact in hdf5plugin")
            same, total = same_chunks_as_hdf5plugin(bs)
            check(same == total, f"{case}: {same} of {total} bitshuffle-lz4 chunks byte-identical to hdf5plugin's encoding "
                                 "(header, block sizes, transposition, unshuffled tail)")
        else:
            check(False, f"{case}: converts to bitshuffle-lz4")
        if case in ("u8", "u16", "chunk2", "bszstd-u16"):
            check_bszstd_output(emconv, master, expected, case, tmp)

    r = run(emconv, ["convert", os.path.join(gen, "missing", "missing_master.h5"), "-o", os.path.join(tmp, "m.nxs")])
    check(r.returncode == 66 and "missing_data_000002.h5" in r.stderr, f"missing data file: exit 66 naming it (got {r.returncode}: {r.stderr.strip()})")
    check(not os.path.exists(os.path.join(tmp, "m.nxs")), "missing data file: no output left")

    out = os.path.join(tmp, "trunc.nxs")
    r = run(emconv, ["convert", os.path.join(gen, "trunc", "trunc_master.h5"), "-o", out, "--compression", "none"])
    check(r.returncode == 0 and "kept" in r.stderr, f"truncated data file: converts with a warning ({r.stderr.strip()})")
    if r.returncode == 0:
        expected = np.load(os.path.join(gen, "trunc", "expected.npy"))
        got, _ = signal(out)
        got = got.reshape((-1,) + expected.shape[1:])
        check(4 <= got.shape[0] < expected.shape[0] and np.array_equal(got, expected[:got.shape[0]]),
              f"truncated data file: the {got.shape[0]} complete frames bit-exact")


def filter_of(path, hspy=False):
    """(values, (filter id, cd_values)) of the signal of an emconv .nxs or .hspy file."""
    with h5py.File(path, "r") as f:
        if hspy:
            ds = f["Experiments"][list(f["Experiments"])[0]]["data"]
        else:
            g = f["entry1/measurement/event1/image1"]
            data = g[g.attrs["default"]]
            ds = data[data.attrs["signal"]]
        flt = ds.id.get_create_plist().get_filter(0)
        return ds[()], (flt[0], tuple(flt[2]))


def check_bszstd_output(emconv, master, expected, case, tmp):
    """`--compression bitshuffle-zstd[:LEVEL]` read back by hdf5plugin (not emconv) bit-exactly."""
    e = expected.dtype.itemsize
    for comp, level, ext in [("bitshuffle-zstd", 1, "nxs"), ("bitshuffle-zstd:4", 4, "nxs"), ("bitshuffle-zstd:2", 2, "hspy")]:
        out = os.path.join(tmp, f"{case}.bszstd{level}.{ext}")
        r = run(emconv, ["convert", master, "-o", out, "--compression", comp])
        check(r.returncode == 0, f"{case}: converts to {comp} .{ext} ({r.stderr.strip()})")
        if r.returncode != 0:
            continue
        got, flt = filter_of(out, hspy=ext == "hspy")
        block = 65536 // e  # emconv's 64 KiB zstd blocks, as hdf5plugin's Bitshuffle(nelems=block, cname='zstd') declares them
        check(flt == (32008, (0, 4, e, block, 3, level)), f"{case}: {comp} .{ext} declares filter 32008 cd_values (0, 4, {e}, {block}, 3, {level}) (got {flt})")
        check(got.dtype == expected.dtype and np.array_equal(got.reshape(expected.shape), expected),
              f"{case}: {comp} .{ext} output bit-exact in h5py + hdf5plugin")


def check_bszstd_generic(emconv, tmp):
    """A NeXus file whose signal hdf5plugin wrote with bitshuffle + zstd converts through HDF5's
    own reading path (emconv's registered 32008 filter), values bit-exact."""
    a = np.random.default_rng(16).poisson(0.3, (3, 4, 21, 19)).astype(np.uint32)
    src = os.path.join(tmp, "bszstd-in.nxs")
    nexus_with(src, a, **hdf5plugin.Bitshuffle(nelems=64, cname="zstd", clevel=7))
    out = os.path.join(tmp, "bszstd-in.out.nxs")
    r = run(emconv, ["convert", src, "-o", out, "--compression", "none"])
    check(r.returncode == 0, f"NeXus with bitshuffle-zstd chunks: converts ({r.stderr.strip()})")
    if r.returncode == 0:
        got, _ = signal(out)
        check(np.array_equal(got.reshape(a.shape), a), "NeXus with bitshuffle-zstd chunks: values bit-exact")


def check_arina(emconv, testdata, tmp):
    master = os.path.join(testdata, "arina", "test_00_master.h5")
    if not os.path.exists(master):
        print("skipped: shared ARINA acquisition not present")
        return
    ref = json.load(open(os.path.join(testdata, "reference", "arina__test_00_master.h5.json")))["signals"][0]
    out = os.path.join(tmp, "arina.nxs")
    r = run(emconv, ["convert", master, "-o", out, "--compression", "bitshuffle-lz4"])
    check(r.returncode == 0, "arina: converts")
    if r.returncode != 0:
        return
    got, _ = signal(out)
    check(got.dtype == np.uint32, f"arina: stored uint32 kept (got {got.dtype})")
    check(list(got.shape) == ref["shape"], f"arina: shape {ref['shape']} (got {list(got.shape)})")
    check(sha_le(got.astype(ref["dtype"])) == ref["data_sha256"], "arina: values equal the reference (as its uint16)")
    with h5py.File(out, "r") as f:
        det = f["entry1/measurement/instrument/detector1"]
        check(det["flatfield"].shape == (192, 192) and det["pixel_mask"].shape == (192, 192), "arina: flat field and pixel mask kept")
        ev = f["entry1/measurement/event1/instrument/detector1"]
        check(abs(ev["count_time"][()] - 9.95e-05) < 1e-12, "arina: count_time mapped")


def nexus_with(path, data, **filters):
    """A minimal NeXus file (entry/data NXdata, signal 'data') whose signal uses `filters`."""
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        e.attrs["default"] = "data"
        d = e.create_group("data")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        d.create_dataset("data", data=data, chunks=(1,) + data.shape[1:], **filters)


def check_blosc_generic(emconv, tmp):
    """Blosc (32001) through HDF5's own reading path (emconv registers a decoder), and a filter
    emconv does not have: a one-line error naming it."""
    a = (np.random.default_rng(5).poisson(2.0, (3, 4, 20, 24))).astype(np.uint16)
    B = hdf5plugin.Blosc
    for cname, shuffle in [("lz4", B.BITSHUFFLE), ("zstd", B.SHUFFLE), ("blosclz", B.NOSHUFFLE), ("zlib", B.SHUFFLE)]:
        src = os.path.join(tmp, f"blosc-{cname}.nxs")
        nexus_with(src, a, **B(cname=cname, clevel=5, shuffle=shuffle))
        out = os.path.join(tmp, f"blosc-{cname}.out.nxs")
        r = run(emconv, ["convert", src, "-o", out, "--compression", "none"])
        check(r.returncode == 0, f"NeXus with Blosc {cname}: converts")
        if r.returncode == 0:
            got, _ = signal(out)
            check(np.array_equal(got.reshape(a.shape), a), f"NeXus with Blosc {cname}: values bit-exact")
    src = os.path.join(tmp, "bzip2.nxs")
    nexus_with(src, a, **hdf5plugin.BZip2())
    r = run(emconv, ["convert", src, "-o", os.path.join(tmp, "bzip2.out.nxs")])
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 65 and len(lines) == 1 and "307" in lines[0],
          f"unavailable filter 307 (bzip2): exit 65 with one line naming it (got {r.returncode}: {r.stderr.strip()})")


def check_bslz4_any(emconv, testdata, fixtures, tmp):
    inputs = sorted(glob.glob(os.path.join(fixtures, "mib", "*.mib")))[:6]
    inputs += sorted(glob.glob(os.path.join(testdata, "mib", "**", "*.mib"), recursive=True))[:3]
    inputs += sorted(glob.glob(os.path.join(testdata, "dm", "dtypes", "*", "*.dm4")))[:12]
    for i, p in enumerate(inputs):
        a, b = os.path.join(tmp, f"any{i}.none.nxs"), os.path.join(tmp, f"any{i}.bs.nxs")
        r1 = run(emconv, ["convert", p, "-o", a, "--compression", "none"])
        r2 = run(emconv, ["convert", p, "-o", b, "--compression", "bitshuffle-lz4"])
        if r1.returncode != 0:
            continue  # inputs emconv does not read are other checks' business
        check(r2.returncode == 0, f"{p}: converts to bitshuffle-lz4")
        if r2.returncode == 0:
            x, _ = signal(a)
            y, filters = signal(b)
            check(x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"),
                  f"{p}: bitshuffle-lz4 output equal to the uncompressed one in hdf5plugin (filters {filters})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", default="../shared/testdata")
    ap.add_argument("--fixtures", default="fixtures")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        check_cases(a.emconv, tmp)
        check_arina(a.emconv, a.testdata, tmp)
        check_blosc_generic(a.emconv, tmp)
        check_bszstd_generic(a.emconv, tmp)
        check_bslz4_any(a.emconv, a.testdata, a.fixtures, tmp)
    print(check.summary())
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

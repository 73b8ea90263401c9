"""LiberTEM reads emconv's bitshuffle-LZ4 (and bitshuffle-zstd) NeXus output (issue 13).

Each input (fixture MIB files of every pixel type, generated Dectris acquisitions of uint8/16/32,
the shared ARINA and MIB files when present) is converted with `--compression bitshuffle-lz4`;
LiberTEM 0.16 opens the NeXus file as an HDF5 data set (its `hdf5` loader, the signal's dataset
path given) and a UDF copies every frame out in the stored dtype. The frames must equal those
h5py + hdf5plugin read from the same file, bit for bit. The generated uint16 and chunk2 acquisitions
are also converted with `--compression bitshuffle-zstd` and read the same way.
py4DSTEM reads Dectris masters and its own files, not NeXus: it has nothing to check here.
Prints 'N passed, M failed'.
"""
import argparse, glob, os, sys, tempfile

import h5py
import hdf5plugin  # noqa: F401  (filter 32008 for h5py, and for LiberTEM in this process)
import numpy as np
from libertem.api import Context
from libertem.udf import UDF

from common import Tally, run
import make_dectris

check = Tally()


class Frames(UDF):
    """Every frame, in the dataset's own dtype (UDFs get float32 unless they ask)."""

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE

    def get_result_buffers(self):
        return {"frames": self.buffer(kind="nav", extra_shape=tuple(self.meta.dataset_shape.sig), dtype=self.meta.input_dtype)}

    def process_frame(self, frame):
        self.results.frames[:] = frame


def signal_path(path):
    """Dataset path and filter ids of the first signal of an emconv NeXus file."""
    with h5py.File(path, "r") as f:
        g = f["entry1/measurement/event1/image1"]
        data = g[g.attrs["default"]]
        ds = data[data.attrs["signal"]]
        plist = ds.id.get_create_plist()
        return ds.name, [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]


def check_one(ctx, emconv, name, src, tmp, compression="bitshuffle-lz4"):
    name = name if compression == "bitshuffle-lz4" else f"{name} ({compression})"
    out = os.path.join(tmp, name.replace(" ", "_") + ".nxs")
    r = run(emconv, ["convert", src, "-o", out, "--compression", compression])
    check(r.returncode == 0, f"{name}: converts to {compression}")
    if r.returncode != 0:
        return
    ds_path, filters = signal_path(out)
    check(filters == [32008], f"{name}: filter 32008 on {ds_path} (got {filters})")
    with h5py.File(out, "r") as f:
        expected = f[ds_path][()]
    if expected.ndim < 3:
        check(False, f"{name}: a frame stack or 4D data set (got shape {expected.shape})")
        return
    try:
        ds = ctx.load("hdf5", path=out, ds_path=ds_path, sig_dims=2)
        got = ctx.run_udf(dataset=ds, udf=Frames())["frames"].data
    except Exception as e:  # LiberTEM's own refusal is the finding
        check(False, f"{name}: LiberTEM opens {ds_path}: {type(e).__name__}: {e}")
        return
    check(got.dtype == expected.dtype, f"{name}: LiberTEM reads dtype {expected.dtype} (got {got.dtype})")
    check(got.shape == expected.shape, f"{name}: LiberTEM shape {expected.shape} (got {got.shape})")
    check(got.shape == expected.shape and np.array_equal(got, expected), f"{name}: LiberTEM frames bit-exact vs h5py + hdf5plugin")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", default="../shared/testdata")
    ap.add_argument("--fixtures", default="fixtures")
    a = ap.parse_args()
    ctx = Context.make_with("inline")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [(os.path.splitext(os.path.basename(p))[0], p) for p in
                  [os.path.join(a.fixtures, "mib", n) for n in
                   ("single_u08_6bit.mib", "single_r64_12bit.mib", "single_u32_24bit.mib", "quad_u16_4x4.mib", "flyback_3x4.mib")]]
        gen = os.path.join(tmp, "gen")
        make_dectris.main(gen)
        inputs += [(f"dectris-{c}", os.path.join(gen, c, f"{c}_master.h5")) for c in ("u8", "u16", "u32", "chunk2")]
        arina = os.path.join(a.testdata, "arina", "test_00_master.h5")
        if os.path.exists(arina):
            inputs.append(("shared-arina", arina))
        else:
            print("skipped: shared ARINA acquisition not present")
        mibs = sorted(glob.glob(os.path.join(a.testdata, "mib", "**", "*.mib"), recursive=True))[:1]
        inputs += [("shared-mib-" + os.path.basename(p), p) for p in mibs]
        for name, src in inputs:
            check_one(ctx, a.emconv, name, src, tmp)
            if name in ("dectris-u16", "dectris-chunk2"):
                check_one(ctx, a.emconv, name, src, tmp, compression="bitshuffle-zstd")
    print(check.summary())
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

"""Writes a large ARINA-style acquisition for dectris_bench.sh: NAME_master.h5 linking
NAME_data_NNNNNN.h5 files of 192x192 uint32 frames (as the ARINA test file stores them),
bitshuffle-LZ4 chunks of one frame written by hdf5plugin.

Frames: sparse counts (mean 0.3) with a bright disc (mean 10) whose centre moves with the scan
position, drawn from a pool of 512 distinct frames (each chunk is compressed on its own, so
reusing frames does not help any codec); the pool is compressed once by hdf5plugin and its
chunks are written with write_direct_chunk, so generation is I/O bound.
Usage: make_arina.py OUTDIR [SCAN]   (SCAN like 320x320, the default: 1.1 GB of data files)
"""
import os
import sys

import h5py
import hdf5plugin
import numpy as np


def main(out, scan="320x320", per_file=20480):
    sy, sx = (int(v) for v in scan.split("x"))
    n = sy * sx
    det = 192
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2024)
    yy, xx = np.mgrid[0:det, 0:det]
    pool = np.empty((512, det, det), np.uint32)
    for i in range(512):
        cy, cx = 96 + 6 * np.sin(i / 40), 96 + 6 * np.cos(i / 57)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 30 ** 2
        lam = np.where(disc, 10.0, 0.3)
        pool[i] = rng.poisson(lam)
    tmp = os.path.join(out, "pool.h5")
    with h5py.File(tmp, "w") as f:
        d = f.create_dataset("p", data=pool, chunks=(1, det, det), **hdf5plugin.Bitshuffle(cname="lz4"))
        chunks = [d.id.read_direct_chunk((i, 0, 0))[1] for i in range(512)]
    os.remove(tmp)
    name = "arina"
    files = []
    start = 0
    k = 0
    while start < n:
        m = min(per_file, n - start)
        k += 1
        fname = f"{name}_data_{k:06d}.h5"
        with h5py.File(os.path.join(out, fname), "w") as f:
            g = f.create_group("entry/data")
            d = g.create_dataset("data", shape=(m, det, det), maxshape=(None, det, det), dtype=np.uint32,
                                 chunks=(1, det, det), **hdf5plugin.Bitshuffle(cname="lz4"))
            for i in range(m):
                d.id.write_direct_chunk((i, 0, 0), chunks[(start + i) % 512])
            d.attrs["image_nr_low"] = np.uint64(start + 1)
            d.attrs["image_nr_high"] = np.uint64(start + m)
        files.append(fname)
        start += m
    with h5py.File(os.path.join(out, f"{name}_master.h5"), "w") as f:
        data = f.create_group("entry/data")
        for i, fname in enumerate(files):
            data[f"data_{i + 1:06d}"] = h5py.ExternalLink(fname, "/entry/data/data")
        det_g = f.create_group("entry/instrument/detector")
        det_g["description"] = np.bytes_("Dectris ARINA (synthetic)")
        det_g["count_time"] = 9.95e-05
        det_g["bit_depth_image"] = np.uint16(32)
        s = det_g.create_group("detectorSpecific")
        s["ntrigger"] = np.uint64(sy)
        s["nimages"] = np.uint64(sx)
        s["flatfield"] = np.ones((det, det), np.float32)
        s["pixel_mask"] = np.zeros((det, det), np.uint32)
    print(n, "frames in", len(files), "data files")


if __name__ == "__main__":
    main(sys.argv[1], *(sys.argv[2:3]))

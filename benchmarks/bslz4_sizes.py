"""Compressed sizes of sparse counting data under bitshuffle-LZ4 (several block sizes) and zstd:1
(issue 13): why bitshuffle-LZ4 can be bigger than zstd:1, and on which data.

Every codec is hdf5plugin's (the same byte formats emconv writes), applied to the same frames in
the same chunks; sizes are the sums of the stored chunks. Data sets, generated (seeded):
  - poisson-0.01 / 0.1 / 0.5 / 1: uint16 256x256 frames of Poisson counts with that mean everywhere
    (low-dose 4D-STEM on a Merlin/ARINA-class counting detector);
  - arina-like: uint32 192x192, a disc (radius 30) of mean 10 over a background of mean 0.3, as
    benchmarks/make_arina.py writes;
  - bench-mib: frames of the 2 GiB benchmark MIB (emconv-fixtures bench-mib: a disc of 12-bit counts
    around 30-70 with noise in every low bit, 1 % of the background at 1-3), read from --mib;
  - the shared ARINA acquisition (--arina), when present.
With --emconv BIN, each set is also converted by emconv (`--compression bitshuffle-zstd:1` and
`zstd:1`, one-frame chunks) and the stored chunks of its NeXus output summed: emconv's own encoder,
linked to the system libzstd (hdf5plugin bundles its own zstd build).
LZ4 high compression (no hdf5plugin codec writes it) is measured by bslz4_hc.sh.
Usage: bslz4_sizes.py [--mib FILE.mib] [--arina DATA.h5] [--frames 64] [--emconv BIN]
"""
import argparse
import os
import subprocess
import tempfile

import h5py
import hdf5plugin
import numpy as np


def poisson_frames(lam, n, det=256, dtype=np.uint16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.poisson(lam, size=(n, det, det)).astype(dtype)


def arina_like(n, det=192, seed=2024):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:det, 0:det]
    out = np.empty((n, det, det), np.uint32)
    for i in range(n):
        cy, cx = 96 + 6 * np.sin(i / 40), 96 + 6 * np.cos(i / 57)
        lam = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < 30 ** 2, 10.0, 0.3)
        out[i] = rng.poisson(lam)
    return out


def mib_frames(path, n):
    """First n frames of a Merlin MIB (header size from the first header, big-endian pixels)."""
    with open(path, "rb") as f:
        head = f.read(512).split(b",")
    hb = int(head[2])
    det_x, det_y = int(head[4]), int(head[5])
    dt = {b"U08": ">u1", b"U16": ">u2", b"U32": ">u4"}[head[6].strip()]
    fb = det_x * det_y * np.dtype(dt).itemsize
    mm = np.memmap(path, np.uint8, "r")
    frames = [np.frombuffer(mm[i * (hb + fb) + hb: (i + 1) * (hb + fb)], dt).reshape(det_y, det_x) for i in range(n)]
    return np.array(frames).astype(np.dtype(dt).newbyteorder("<"))


def stored(data, chunks, **filters):
    """Total bytes of the stored chunks of `data` written with `filters` (in memory)."""
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        d = f.create_dataset("d", data=data, chunks=chunks, **filters)
        return sum(d.id.get_chunk_info(i).size for i in range(d.id.get_num_chunks()))


def codecs(itemsize):
    default = max(128, 8192 // itemsize // 8 * 8)
    yield f"bitshuffle-lz4 block {default} (default)", dict(**hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
    for b in (8192, 16384, 65536):
        if b != default:
            yield f"bitshuffle-lz4 block {b}", dict(**hdf5plugin.Bitshuffle(nelems=b, cname="lz4"))
    yield "bitshuffle-zstd:1 (default block)", dict(**hdf5plugin.Bitshuffle(nelems=0, cname="zstd", clevel=1))
    yield "bitshuffle-zstd:3 (default block)", dict(**hdf5plugin.Bitshuffle(nelems=0, cname="zstd", clevel=3))
    yield "bitshuffle-zstd:1 block 65536", dict(**hdf5plugin.Bitshuffle(nelems=65536, cname="zstd", clevel=1))
    yield "shuffle + zstd:1 (emconv zstd:1)", dict(shuffle=True, **hdf5plugin.Zstd(clevel=1))
    yield "zstd:1 alone", dict(**hdf5plugin.Zstd(clevel=1))


def emconv_stored(emconv, data, compression):
    """Total stored chunk bytes of emconv's NeXus output of `data` (a raw file, one-frame chunks)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "d.raw"), os.path.join(tmp, "d.nxs")
        data.astype(data.dtype.newbyteorder("<")).tofile(raw)
        shape = ",".join(map(str, data.shape))
        subprocess.run([emconv, "convert", raw, "-o", out, "--quiet", "--raw-dtype", data.dtype.newbyteorder("<").str,
                        "--raw-shape", shape, "--compression", compression,
                        "--chunks", ",".join(map(str, (1,) + data.shape[1:]))], check=True)
        with h5py.File(out, "r") as f:
            g = f["entry1/measurement/event1/image1"]
            grp = g[g.attrs["default"]]
            d = grp[grp.attrs["signal"]]
            assert d.chunks[0] == 1 and (d[()] == data).all()
            return sum(d.id.get_chunk_info(i).size for i in range(d.id.get_num_chunks()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib")
    ap.add_argument("--arina")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--emconv")
    a = ap.parse_args()
    n = a.frames
    sets = [
        ("poisson-0.01 u16 256x256", poisson_frames(0.01, n)),
        ("poisson-0.1 u16 256x256", poisson_frames(0.1, n)),
        ("poisson-0.5 u16 256x256", poisson_frames(0.5, n)),
        ("poisson-1 u16 256x256", poisson_frames(1.0, n)),
        ("arina-like u32 192x192", arina_like(n)),
    ]
    if a.mib and os.path.exists(a.mib):
        sets.append(("bench-mib u16 256x256", mib_frames(a.mib, n)))
    if a.arina and os.path.exists(a.arina):
        with h5py.File(a.arina, "r") as f:
            sets.append(("shared ARINA test_00 u32 192x192", f["entry/data/data"][()]))
    print(f"{'data':34} {'codec':36} {'chunk':>8} {'stored':>12} {'ratio':>8} {'vs zstd:1':>9}")
    for name, data in sets:
        nz = np.count_nonzero(data) / data.size
        print(f"# {name}: {data.shape[0]} frames, mean {data.mean():.3f}, max {data.max()}, nonzero {100 * nz:.1f} %")
        for per_chunk in (1, 16):
            chunks = (min(per_chunk, data.shape[0]),) + data.shape[1:]
            rows = [(c, stored(data, chunks, **flt)) for c, flt in codecs(data.itemsize)]
            z = dict(rows)["shuffle + zstd:1 (emconv zstd:1)"]
            if a.emconv and per_chunk == 1:
                rows += [(f"emconv {c} (its own encoder)", emconv_stored(a.emconv, data, c)) for c in ("bitshuffle-zstd:1", "zstd:1")]
            for c, s in rows:
                print(f"{name:34} {c:36} {per_chunk:>5} fr {s:>12} {data.nbytes / s:>7.1f}x {s / z:>8.2f}x")


if __name__ == "__main__":
    main()

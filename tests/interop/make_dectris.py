"""Writes Dectris-style acquisitions with h5py + hdf5plugin (the bitshuffle-LZ4 encoder Dectris
tools and users have), for check_dectris.py: a master with detectorSpecific metadata, flat field
and pixel mask, whose entry/data/data_NNNNNN external links point into data files.

Cases (in OUT/):
  u8/     uint8, 13x11 frames (143 elements: not a multiple of 8), 2 data files
  u16/    uint16, 64x48, 3 data files (8 + 8 + 4 frames), ntrigger 4 x nimages 5, block size 256
  u32/    uint32, 96x96, 1 data file, counts up to 2**31
  chunk2/ uint32, 7 frames in chunks of 2 frames (the last chunk half empty)
  gzip/   uint16, gzip chunks (read through HDF5)
  blosc-lz4-bit/ blosc-zstd-byte/ blosc-blosclz-none/ blosc-lz4hc-byte/
          Blosc (filter 32001) chunks: codec and shuffle (bit, byte, none) as named; uint16,
          uint32, uint8 and uint16 (decoded by emconv itself, like bitshuffle-LZ4)
  blosc-chunk3/ uint16 Blosc (lz4, byte shuffle) chunks of 3 frames (the last one partial)
  bszstd-u8/ bszstd-u16/ bszstd-chunk2/
          bitshuffle + zstd chunks (filter 32008, cd_values[4] = 3; hdf5plugin's Bitshuffle(cname='zstd')):
          uint8 13x11 level 1; uint16 64x48 level 5, block 256, 2 data files; uint32 chunks of 2 frames
  missing/ uint16, the second data file deleted
  trunc/  uint16, the last data file cut inside its last chunks (keep the complete frames)
Each case also gets expected.npy: the frames as h5py + hdf5plugin read them (before truncation).
"""
import os
import sys

import h5py
import hdf5plugin
import numpy as np


def write_case(out, name, dtype, frame_shape, per_file, ntrigger=None, nimages=None, chunk_frames=1,
               compression="bslz4", nelems=0, seed=0):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = sum(per_file)
    hi = np.iinfo(dtype).max
    frames = rng.poisson(0.7, (total,) + frame_shape).astype(np.uint64)
    # A few large values (all bits exercised) and a saturated pixel per frame.
    frames.reshape(total, -1)[:, 3] = rng.integers(0, hi, total, dtype=np.uint64, endpoint=True)
    frames.reshape(total, -1)[:, -1] = hi
    frames = frames.astype(dtype)
    np.save(os.path.join(d, "expected.npy"), frames)
    if compression == "bslz4":
        comp = hdf5plugin.Bitshuffle(nelems=nelems, cname="lz4")
    elif compression.startswith("bszstd"):
        comp = hdf5plugin.Bitshuffle(nelems=nelems, cname="zstd", clevel=int(compression.split(":")[1]))
    elif compression.startswith("blosc-"):
        _, cname, shuffle = compression.split("-")
        mode = {"bit": hdf5plugin.Blosc.BITSHUFFLE, "byte": hdf5plugin.Blosc.SHUFFLE, "none": hdf5plugin.Blosc.NOSHUFFLE}[shuffle]
        comp = hdf5plugin.Blosc(cname=cname, clevel=5, shuffle=mode)
    else:
        comp = {"compression": "gzip", "compression_opts": 4}
    start = 0
    links = []
    for i, n in enumerate(per_file):
        fname = f"{name}_data_{i + 1:06d}.h5"
        with h5py.File(os.path.join(d, fname), "w") as f:
            e = f.create_group("entry")
            e.attrs["NX_class"] = "NXentry"
            g = e.create_group("data")
            g.attrs["NX_class"] = "NXdata"
            ds = g.create_dataset("data", data=frames[start:start + n], maxshape=(None,) + frame_shape,
                                  chunks=(chunk_frames,) + frame_shape, **comp)
            ds.attrs["image_nr_low"] = np.uint64(start + 1)
            ds.attrs["image_nr_high"] = np.uint64(start + n)
        links.append(fname)
        start += n
    with h5py.File(os.path.join(d, f"{name}_master.h5"), "w") as f:
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        data = e.create_group("data")
        for i, fname in enumerate(links):
            data[f"data_{i + 1:06d}"] = h5py.ExternalLink(fname, "/entry/data/data")
        det = e.create_group("instrument/detector")
        def q(g, k, v, units=None):
            g[k] = v
            if units:
                g[k].attrs["units"] = units
        q(det, "description", np.bytes_("Dectris QUADRO Si"))
        q(det, "detector_number", np.bytes_("Q-01-0042"))
        q(det, "count_time", 0.001, "s")
        q(det, "frame_time", 0.0011, "s")
        q(det, "x_pixel_size", 7.5e-05, "m")
        q(det, "y_pixel_size", 7.5e-05, "m")
        q(det, "detector_distance", 0.12, "m")
        q(det, "beam_center_x", 6.5, "pixel")
        q(det, "beam_center_y", 5.5, "pixel")
        q(det, "threshold_energy", 4000.0, "eV")
        q(det, "sensor_material", np.bytes_("Si"))
        q(det, "sensor_thickness", 0.00045, "m")
        q(det, "saturation_value", np.int64(hi))
        q(det, "bit_depth_image", np.uint16(8 * np.dtype(dtype).itemsize))
        q(det, "flatfield_correction_applied", np.int8(0))
        q(det, "pixel_mask_applied", np.int8(0))
        s = det.create_group("detectorSpecific")
        q(s, "software_version", np.bytes_("1.8.0"))
        q(s, "data_collection_date", np.bytes_("2025-01-02T03:04:05.600+01:00"))
        q(s, "photon_energy", 200000.0, "eV")
        q(s, "ntrigger", np.uint64(ntrigger or 1))
        q(s, "nimages", np.uint64(nimages or total))
        q(s, "trigger_mode", np.bytes_("exts"))
        s["flatfield"] = (1 + rng.random(frame_shape) / 10).astype(np.float32)
        mask = np.zeros(frame_shape, np.uint32)
        mask[0, 0] = 1
        s["pixel_mask"] = mask
        s["countrate_correction_lookup_table"] = np.arange(256, dtype=np.uint32)
    return d


def main(out):
    os.makedirs(out, exist_ok=True)
    write_case(out, "u8", np.uint8, (13, 11), [5, 4], seed=1)
    write_case(out, "u16", np.uint16, (64, 48), [8, 8, 4], ntrigger=4, nimages=5, nelems=256, seed=2)
    write_case(out, "u32", np.uint32, (96, 96), [6], seed=3)
    write_case(out, "chunk2", np.uint32, (16, 24), [7], chunk_frames=2, seed=4)
    write_case(out, "gzip", np.uint16, (32, 32), [4, 3], compression="gzip", seed=5)
    write_case(out, "blosc-lz4-bit", np.uint16, (64, 48), [5, 4], compression="blosc-lz4-bit", seed=8)
    write_case(out, "blosc-zstd-byte", np.uint32, (40, 40), [6], compression="blosc-zstd-byte", seed=9)
    write_case(out, "blosc-blosclz-none", np.uint8, (13, 11), [5], compression="blosc-blosclz-none", seed=10)
    write_case(out, "blosc-lz4hc-byte", np.uint16, (32, 32), [4], compression="blosc-lz4hc-byte", seed=11)
    write_case(out, "blosc-chunk3", np.uint16, (24, 20), [8], chunk_frames=3, compression="blosc-lz4-byte", seed=12)
    write_case(out, "bszstd-u8", np.uint8, (13, 11), [5], compression="bszstd:1", seed=13)
    write_case(out, "bszstd-u16", np.uint16, (64, 48), [4, 3], compression="bszstd:5", nelems=256, seed=14)
    write_case(out, "bszstd-chunk2", np.uint32, (16, 24), [7], chunk_frames=2, compression="bszstd:3", seed=15)
    d = write_case(out, "missing", np.uint16, (8, 8), [3, 3], seed=6)
    os.remove(os.path.join(d, "missing_data_000002.h5"))
    d = write_case(out, "trunc", np.uint16, (64, 64), [4, 6], seed=7)
    p = os.path.join(d, "trunc_data_000002.h5")
    with h5py.File(p, "r") as f:
        ds = f["entry/data/data"]
        infos = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
    last = max(infos, key=lambda c: c.byte_offset)
    # Cut inside the chunk that ends last (metadata written before it stays).
    with open(p, "r+b") as fh:
        fh.truncate(last.byte_offset + last.size // 2)


if __name__ == "__main__":
    main(sys.argv[1])

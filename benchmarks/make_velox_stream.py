#!/usr/bin/env python3
"""Writes a synthetic Velox EMD file (version 11 layout) with one EDS spectrum stream.

usage: make_velox_stream.py OUT.emd HEIGHT WIDTH FRAMES COUNTS_PER_PIXEL [CHANNELS]
Values are random (seeded); the layout follows real Velox files (see docs/formats-emd.md).
"""
import json, sys
import h5py, numpy as np

out, h, w, frames, cpp = sys.argv[1], *map(int, sys.argv[2:6])
channels = int(sys.argv[6]) if len(sys.argv) > 6 else 4096
rng = np.random.default_rng(1)

def meta_column(d):
    b = json.dumps(d).encode()
    a = np.zeros(60000, np.uint8); a[:len(b)] = np.frombuffer(b, np.uint8)
    return a

md = {
    "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}},
    "Scan": {"FrameTime": "0.5", "DwellTime": "1e-5"},
    "Optics": {"AccelerationVoltage": "200000"},
    "BinaryResult": {"Detector": "SuperXG21", "DetectorIndex": "1", "PixelSize": {"width": "1e-9", "height": "1e-9"},
                     "PixelUnitX": "m", "PixelUnitY": "m", "Offset": {"x": "0", "y": "0"}},
    "Detectors": {"Detector-0": {"DetectorName": "HAADF"},
                  "Detector-1": {"DetectorName": "SuperXG21", "Dispersion": "10", "OffsetEnergy": "-100"}},
}
with h5py.File(out, "w") as f:
    f.create_dataset("Version", data=[json.dumps({"version": "11", "format": "Velox"})], dtype=h5py.string_dtype())
    f.create_group("Displays/ImageDisplay")
    img = f.create_group("Data/Image/0123456789abcdef0123456789abcdef")
    img.create_dataset("Data", data=rng.integers(0, 60000, (h, w, frames), dtype=np.uint16), chunks=(h, w, 1), maxshape=(h, w, None))
    imd = dict(md); imd["BinaryResult"] = dict(md["BinaryResult"], Detector="HAADF", DetectorIndex="0")
    img.create_dataset("Metadata", data=np.stack([meta_column(imd)] * frames, axis=1), maxshape=(60000, None))
    si = f.create_group("Data/SpectrumImage/abcdef0123456789abcdef0123456789")
    si.create_dataset("SpectrumImageSettings", data=[json.dumps({"startFramePosition": "1", "endFramePosition": str(frames)})], dtype=h5py.string_dtype())
    si.create_dataset("Metadata", data=meta_column(md)[:, None])
    st = f.create_group("Data/SpectrumStream/fedcba9876543210fedcba9876543210")
    st.create_dataset("AcquisitionSettings", data=[json.dumps({"encoding": "uint16", "bincount": str(channels), "StreamEncoding": "uint16",
                      "RasterScanDefinition": {"Width": str(w), "Height": str(h)}})], dtype=h5py.string_dtype())
    st.create_dataset("Metadata", data=np.stack([meta_column(md)] * frames, axis=1), maxshape=(60000, None))
    npix = h * w * frames
    # Each pixel: Poisson(cpp) counts with random channels, then the 65535 marker.
    counts = rng.poisson(cpp, npix)
    total = int(counts.sum()) + npix
    ds = st.create_dataset("Data", shape=(total, 1), dtype=np.uint16, chunks=(1 << 20, 1), maxshape=(None, 1))
    pos, block = 0, 1 << 16
    for p0 in range(0, npix, block):
        c = counts[p0:p0 + block]
        n = int(c.sum()) + len(c)
        vals = rng.integers(0, channels, n, dtype=np.uint16)
        ends = np.cumsum(c + 1) - 1          # marker positions within the block
        vals[ends] = 65535
        ds[pos:pos + n, 0] = vals
        pos += n
    print(f"{out}: raster {h}x{w}, {frames} frames, {channels} channels, {total} stream values ({total - npix} counts)")

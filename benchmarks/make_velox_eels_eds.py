#!/usr/bin/env python3
"""Writes a synthetic Velox EMD file (version 11 layout) holding an EELS spectrum image and an
EDS spectrum stream acquired on a different raster (issue 11, defect 9).

usage: make_velox_eels_eds.py OUT.emd [EELS_H EELS_W CHANNELS EDS_H EDS_W COUNTS_PER_PIXEL]
defaults: 16 20 2048 128 128 40  (two EELS cubes, float32, gzip-chunked; about 6.7 MB)

Layout as Velox writes it (see formats.md, Velox):
- each EelsSpectrumImage/<id>/Data is stored (x, energy, y) = (EELS_W, CHANNELS, EELS_H); its own
  Metadata column gives the scan raster (Scan.ScanSize x Scan.ScanArea) and the pixel size,
  AcquisitionMetadata gives Data.offset / Data.dispersion (eV);
- the HAADF image acquired with the EELS SI is (EELS_H, EELS_W, 1);
- the EDS stream's own Metadata gives its raster (EDS_H x EDS_W, full scan area).
Value of EELS cube k at (y, x, e): 1000*k + 100*y + x + e/10000 (float32), so a reader can check
where every value lands. The EDS stream puts, at pixel (y, x), one count in channel (y + x) % bincount
and COUNTS_PER_PIXEL - 1 counts in random channels.
"""
import json, os, sys
import h5py, numpy as np

args = sys.argv[1:]
if not args:
    sys.exit(__doc__)
out = args[0]
given = list(map(int, args[1:7]))
eh, ew, ne, sh, sw, cpp = given + [16, 20, 2048, 128, 128, 40][len(given):]
channels = 4096
whole_chunk = os.environ.get("EELS_CHUNK", "whole") == "whole"   # one chunk per cube (larger than the 1 MiB chunk cache)
rng = np.random.default_rng(7)


def meta_column(d):
    b = json.dumps(d).encode()
    a = np.zeros(60000, np.uint8)
    a[:len(b)] = np.frombuffer(b, np.uint8)
    return a[:, None]


def scan(h, w, full=512):
    # A sub-area of a full x full scan that gives an h x w raster (as Velox records it).
    return {"ScanSize": {"width": str(full), "height": str(full)}, "FrameTime": "2.5", "DwellTime": "0.01",
            "ScanArea": {"left": "0.25", "top": "0.25", "right": str(0.25 + w / full), "bottom": str(0.25 + h / full)}}


base = {
    "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}},
    "Optics": {"AccelerationVoltage": "300000"},
    "Instrument": {"Manufacturer": "FEI Company", "InstrumentClass": "Titan"},
}
eels_br = {"Detector": "EELS", "PixelSize": {"width": "2e-10", "height": "3e-10"}, "PixelUnitX": "m", "PixelUnitY": "m",
           "Offset": {"x": "-1e-9", "y": "-2e-9"}}
eds_br = {"Detector": "SuperXG21", "DetectorIndex": "1", "PixelSize": {"width": "5e-9", "height": "5e-9"},
          "PixelUnitX": "m", "PixelUnitY": "m", "Offset": {"x": "0", "y": "0"}}
detectors = {"Detector-0": {"DetectorName": "HAADF"},
             "Detector-1": {"DetectorName": "SuperXG21", "Dispersion": "5", "OffsetEnergy": "-480"}}

with h5py.File(out, "w") as f:
    f.create_dataset("Version", data=[json.dumps({"version": "11", "format": "Velox"})], dtype=h5py.string_dtype())
    f.create_group("Displays/ImageDisplay")
    # HAADF acquired with the EELS spectrum image.
    img = f.create_group("Data/Image/00000000000000000000000000000001")
    img.create_dataset("Data", data=rng.integers(0, 60000, (eh, ew, 1), dtype=np.uint16), chunks=(eh, ew, 1), maxshape=(eh, ew, None))
    img.create_dataset("Metadata", data=meta_column(dict(base, Scan=scan(eh, ew), Detectors=detectors,
                       BinaryResult=dict(eels_br, Detector="HAADF", DetectorIndex="0"))), maxshape=(60000, None))
    # EELS: two cubes (low loss, core loss), stored (x, energy, y).
    y, x, e = np.meshgrid(np.arange(eh), np.arange(ew), np.arange(ne), indexing="ij")
    for k, (off, disp) in enumerate([(-20.0, 0.25), (400.0, 0.5)]):
        g = f.create_group(f"Data/EelsSpectrumImage/{k + 2:032x}")
        cube = (1000 * k + 100 * y + x + e / 10000).astype(np.float32)          # (y, x, energy)
        g.create_dataset("Data", data=np.ascontiguousarray(cube.transpose(1, 2, 0)),  # (x, energy, y)
                         chunks=(ew, ne, eh) if whole_chunk else (ew, min(ne, 512), eh), compression="gzip", compression_opts=1)
        md = dict(base, Scan=scan(eh, ew), BinaryResult=eels_br,
                  CustomProperties={"EnergyFilter.CollectionAngleRange.Begin": {"type": "double", "value": "0"}})
        g.create_dataset("Metadata", data=meta_column(md), maxshape=(60000, None))
        g.create_dataset("AcquisitionMetadata", data=meta_column({"Data": {"offset": str(off), "dispersion": str(disp)}}))
    # EDS stream on its own raster (full 128 x 128 scan).
    si = f.create_group("Data/SpectrumImage/00000000000000000000000000000009")
    si.create_dataset("SpectrumImageSettings", data=[json.dumps({"startFramePosition": "1", "endFramePosition": "1"})], dtype=h5py.string_dtype())
    eds_scan = {"ScanSize": {"width": str(sw), "height": str(sh)}, "FrameTime": "16", "DwellTime": "0.001",
                "ScanArea": {"left": "0", "top": "0", "right": "1", "bottom": "1"}}
    si.create_dataset("Metadata", data=meta_column(dict(base, Scan=eds_scan, Detectors=detectors, BinaryResult=eds_br)))
    st = f.create_group("Data/SpectrumStream/0000000000000000000000000000000a")
    st.create_dataset("AcquisitionSettings", data=[json.dumps({"encoding": "uint16", "bincount": str(channels), "StreamEncoding": "uint16",
                      "RasterScanDefinition": {"Width": str(sw), "Height": str(sh)}})], dtype=h5py.string_dtype())
    st.create_dataset("Metadata", data=meta_column(dict(base, Scan=eds_scan, Detectors=detectors, BinaryResult=eds_br)), maxshape=(60000, None))
    st.create_dataset("FrameLocationTable", data=np.zeros((1, 1), np.uint64), maxshape=(None, 1))
    vals = []
    for py in range(sh):
        for px in range(sw):
            vals.append((py + px) % channels)
            vals.extend(rng.integers(0, channels, cpp - 1).tolist())
            vals.append(65535)
    st.create_dataset("Data", data=np.array(vals, np.uint16)[:, None], chunks=(8192, 1), maxshape=(None, 1))
print(f"{out}: EELS 2 x ({eh}x{ew} scan, {ne} channels, stored ({ew}, {ne}, {eh})), EDS stream {sh}x{sw}, {channels} channels")

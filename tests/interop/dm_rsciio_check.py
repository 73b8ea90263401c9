#!/usr/bin/env python3
"""Interop check: DM files written by emconv's test-support DMWriter read correctly in RosettaSciIO.

Usage: swift run emconv-dmgen /tmp/dm-interop interop && python3 tests/interop/dm_rsciio_check.py /tmp/dm-interop
Needs `rosettasciio` (pip). Compares RosettaSciIO's data (shape, sha256 of the C-order little-endian
values, the reference convention) with expect.json written by the generator. Exit 1 on mismatch.
RosettaSciIO 0.15 ignores the byte-order flag for pixel data, so big-endian files are expected to
differ there; they are reported, not counted as failures (emconv reads them correctly).
"""
import hashlib, json, sys
import numpy as np
from rsciio.digitalmicrograph import file_reader

folder = sys.argv[1]
expect = json.load(open(folder + "/expect.json"))
ok = bad = big_mismatch = 0
for name, e in expect.items():
    try:
        sigs = file_reader(folder + "/" + name)
    except Exception as ex:  # noqa: BLE001
        print(f"FAIL {name}: rsciio cannot read it: {ex!r}")
        bad += 1
        continue
    d = sigs[0]["data"]
    h = hashlib.sha256(np.ascontiguousarray(d).astype(d.dtype.newbyteorder("<")).tobytes()).hexdigest()
    same = list(d.shape) == e["shape"] and h == e["sha256"]
    if same:
        ok += 1
    elif e["byte_order"] == "big":
        big_mismatch += 1
        print(f"note {name}: rsciio misreads big-endian pixel data (shape {d.shape})")
    else:
        bad += 1
        print(f"FAIL {name}: shape {list(d.shape)} vs {e['shape']}, sha256 {h[:12]} vs {e['sha256'][:12]}")
print(f"rsciio interop: {ok} identical, {bad} failed, {big_mismatch} big-endian files misread by rsciio")
print(f"{ok} passed, {bad} failed")
sys.exit(1 if bad else 0)

"""Shared pieces of the interop checks: a pass/fail tally, the reference data hash, running emconv."""
import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np


class Tally:
    """Counts checks; prints each failure; `summary()` is the closing 'N passed, M failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what)

    def summary(self):
        return f"{self.passed} passed, {self.failed} failed"


def scratch_dir(prefix):
    """A temporary folder for one check script, removed when the script exits; kept (and its path
    printed) when EMCONV_KEEP_TMP is set, to look at the outputs of a failing check."""
    path = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("EMCONV_KEEP_TMP"):
        print(f"outputs kept in {path}")
    else:
        atexit.register(shutil.rmtree, path, True)
    return path


def sha_le(a):
    """sha256 of an array in C order, little-endian, in its own dtype (the reference convention)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def run(emconv, args):
    """Runs the emconv binary; prints its error when it fails."""
    r = subprocess.run([emconv] + args, capture_output=True, text=True)
    if r.returncode != 0:
        print("emconv failed:", " ".join(args), r.stderr.strip())
    return r


def emconv_detail(group, name):
    """emconv's own fact `name` about an NXdata: a field of its `emconv` NXcollection (files
    written before that: the attribute @emconv_NAME); None when absent."""
    c = group.get("emconv")
    if c is not None and name in c:
        v = c[name][()]
        return v.decode() if isinstance(v, bytes) else v
    v = group.attrs.get("emconv_" + name)
    return v.decode() if isinstance(v, bytes) else v


def reference_cases(testdata, formats=None, what="shared cases"):
    """(reference, source path) for each reference JSON of ../shared/testdata whose source exists,
    in name order, keeping the formats named (all when None). Returns [] and says so when the
    testdata folder is absent."""
    import glob
    import json
    import os
    refdir = os.path.join(testdata, "reference")
    if not os.path.isdir(refdir):
        print(f"interop: skipped {what}: ../shared/testdata not found")
        return []
    cases = []
    for p in sorted(glob.glob(os.path.join(refdir, "*.json"))):
        with open(p) as f:
            ref = json.load(f)
        src = os.path.join(testdata, ref["id"])
        if (formats is None or ref.get("format") in formats) and os.path.exists(src):
            cases.append((ref, src))
    return cases


def flipped_rows_hash(ref):
    """A MIB/EMPAD reference's data hash in emconv's row order (MIB with --mib-flip-rows): the
    signal's own hash, else the alternative reader's rows-flipped one; None when neither exists."""
    h = ref["signals"][0].get("data_sha256") if ref.get("signals") else None
    if h is None and ref.get("alt_reference"):
        alt = ref["alt_reference"]
        h = alt.get("data_sha256_rows_flipped") or alt["signals"][0].get("data_sha256_rows_flipped")
    return h

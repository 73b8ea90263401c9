"""Interop check of `emconv record` against a peer nobody here wrote: LiberTEM-live's Merlin
simulator (`libertem-live-mib-sim`, PyPI libertem-live) replays shared MIB acquisitions on
loopback (single chip, quad, raw); the recorded NeXus must equal `emconv convert` of the same
.mib in data (bit-exact, read with h5py) and axes. The simulator repeats the acquisition forever,
so this also pins that record stops at the end of one; `--control` talks to the simulator's
command port. Prints 'N passed, M failed'.
"""
import argparse, os, socket, subprocess, sys, tempfile, time

import h5py
import numpy as np

from common import Tally, run as run_emconv, scratch_dir

check = Tally()

CASES = [  # (stem, nav shape Y X)
    ("Single_9_Frames_CounterDepth_12_Rows_256", (3, 3)),
    ("Single_9_Frames_CounterDepth_6_Rows_256", (3, 3)),
    ("Quad_1_Frame_CounterDepth_12_Rows_256", (1, 1)),
    ("Quad_9_Frames_CounterDepth_1_Rows_256RAW", (3, 3)),
    ("Single_1_Frame_CounterDepth_1_Rows_256RAW", (1, 1)),
]


def free_port_block():
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p < 65000:
            ok = True
            for q in (p + 1, p + 2):
                t = socket.socket()
                try:
                    t.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
                t.close()
            if ok:
                return p
    raise RuntimeError("no free ports")


def nxdata(path):
    with h5py.File(path, "r") as f:
        g = f
        for _ in range(10):
            if g.attrs.get("NX_class") == "NXdata":
                break
            g = g[g.attrs["default"]]
        sig = g.attrs["signal"]
        axes = [str(a) for a in g.attrs["axes"]]
        return g[sig][()], axes, [g[a][()].tolist() for a in axes]


def start_sim(sim, hdr, nav, port, log):
    cmd = [sim, hdr, "--host", "127.0.0.1", "--data-port", str(port), "--control-port", str(port + 1),
           "--trigger-port", str(port + 2), "--nav-shape", str(nav[0]), str(nav[1])]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        with open(log.name) as f:
            if "DataSocketServer listening" in f.read():
                return p
        if p.poll() is not None:
            break
    p.kill()
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--testdata", required=True)
    a = ap.parse_args()
    mibdir = os.path.join(a.testdata, "mib")
    if not os.path.isdir(mibdir):
        print(f"record interop: skipped: {mibdir} absent")
        print(check.summary())
        return 0
    tmp = scratch_dir("emconv-record-")
    for stem, nav in CASES:
        hdr = os.path.join(mibdir, stem + ".hdr")
        if not os.path.exists(hdr):
            continue
        port = free_port_block()
        log = open(os.path.join(tmp, stem + ".sim.log"), "w")
        sim = start_sim(a.sim, hdr, nav, port, log)
        check(sim is not None, f"{stem}: simulator started")
        if sim is None:
            continue
        try:
            rec = os.path.join(tmp, stem + ".rec.nxs")
            t0 = time.time()
            r = subprocess.run([a.emconv, "record", f"merlin://127.0.0.1:{port}", "-o", rec, "--timeout", "20",
                                "--progress", "none", "--scan-shape", f"{nav[0]},{nav[1]}",
                                "--control", f"127.0.0.1:{port + 1}"],
                               capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, f"{stem}: record exit 0 (got {r.returncode}: {r.stderr.strip()[-300:]})")
            check(time.time() - t0 < 30, f"{stem}: record stopped after one acquisition")
            log.flush()
            with open(log.name) as f:
                text = f.read()
            n = nav[0] * nav[1]
            check(f"b'SET,NUMFRAMESTOACQUIRE,{n}'" in text and "b'CMD,STARTACQUISITION'" in text,
                  f"{stem}: --control sent NUMFRAMESTOACQUIRE and STARTACQUISITION to the simulator's command port")
        finally:
            sim.kill()
            sim.wait()
        ref = os.path.join(tmp, stem + ".ref.nxs")
        cr = run_emconv(a.emconv, ["convert", os.path.join(mibdir, stem + ".mib"), "-o", ref, "-q",
                                   "--scan-shape", f"{nav[0]},{nav[1]}"])
        if r.returncode != 0 or cr.returncode != 0:
            continue
        d1, ax1, v1 = nxdata(rec)
        d2, ax2, v2 = nxdata(ref)
        check(d1.dtype == d2.dtype and d1.shape == d2.shape, f"{stem}: shape/dtype {d1.shape} {d1.dtype} == {d2.shape} {d2.dtype}")
        check(d1.shape == d2.shape and np.array_equal(d1, d2), f"{stem}: data bit-exact with emconv convert")
        check(ax1 == ax2 and v1 == v2, f"{stem}: axes {ax1} == {ax2}")
    print(check.summary())
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Hostile-input campaign: mutants of real instrument files through `emconv info` and `convert`.

For every family of ../shared/testdata (dm, emd_velox, emd_berkeley, mib, empad, mrc, tia, tiff,
dectris, and NeXus files emconv converts from them) it makes --per-family mutants (truncations at many offsets, byte flips,
inserted runs of random bytes, huge values in length fields at known header offsets), copies the
companions a format needs, and runs

    emconv info IN            and            emconv convert IN -o out.nxs --compression none

in a fresh temporary folder each (--timeout seconds per run, default 10). Per family it prints:
tried, crash (signal, exit 134/139 or 'Fatal error'), hang (killed at the timeout), rss (peak
resident memory above --rss-mib, default 512), silent (a truncated input converted with exit 0 and
no warning), clean (refused with one 'emconv: error:' line and a documented exit code), messy (a
refusal in any other form), ok (exit 0), leftovers (files emconv left beside the input: outputs or
temporaries of a failed run, temporaries of a successful one) and foreign (the bytes of a canary
file outside the input found in an output). Exit status 1 when any of crash, hang, rss, silent,
messy, leftovers or foreign is non-zero.

Python 3 standard library only. Example:
    python3 benchmarks/hostile_inputs.py --emconv .build/release/emconv --per-family 300
"""
import argparse
import concurrent.futures
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DOCUMENTED_EXITS = {1, 2, 3, 64, 65, 66, 73, 74}
FAMILIES = ["dm", "emd_velox", "emd_berkeley", "mib", "empad", "mrc", "tia", "tiff", "dectris", "nexus"]
# Share of a family's mutants that change a companion instead of the primary file.
COMPANION_SHARE = {"mib": 0.1, "empad": 0.4, "tia": 0.5, "dectris": 0.5, "mrc": 0.2}
HDF5_FAMILIES = ("emd_velox", "emd_berkeley", "nexus", "dectris")
COLUMNS = ["tried", "crash", "hang", "rss", "silent", "clean", "messy", "ok", "leftovers", "foreign"]
BAD = ["crash", "hang", "rss", "silent", "messy", "leftovers", "foreign"]


# ---------------------------------------------------------------------------------------------
# Base files: (primary path, [companion paths], which file mutants change)

def base_files(testdata, work, emconv, max_bytes):
    """Small real files of each family (primary, companions); NeXus bases are converted here."""
    def small(folder, exts):
        out = []
        for dirpath, _, names in os.walk(os.path.join(testdata, folder)):
            for n in sorted(names):
                p = os.path.join(dirpath, n)
                if os.path.splitext(n)[1].lower() in exts and os.path.getsize(p) <= max_bytes:
                    out.append(p)
        return sorted(out)

    bases = {f: [] for f in FAMILIES}
    bases["dm"] = [(p, []) for p in small("dm", {".dm3", ".dm4"})]
    bases["emd_velox"] = [(p, []) for p in small("emd_velox", {".emd"})]
    bases["emd_berkeley"] = [(p, []) for p in small("emd_berkeley", {".emd", ".h5"})]
    for p in small("mib", {".mib"}):
        hdr = os.path.splitext(p)[0] + ".hdr"
        bases["mib"].append((p, [hdr] if os.path.exists(hdr) else []))
    for x in small("empad", {".xml"}):
        m = re.search(rb'raw_file filename="([^"]+)"', open(x, "rb").read())
        raw = os.path.join(os.path.dirname(x), m.group(1).decode()) if m else None
        if raw and os.path.exists(raw):
            bases["empad"].append((x, [raw]))
    # MRC: a Direct Electron movie reads its NAME_info.txt beside it.
    for p in small("mrc", {".mrc"}):
        d, n = os.path.split(p)
        infos = [os.path.join(d, t) for t in os.listdir(d) if t.endswith("_info.txt") and n.startswith(t[:-len("_info.txt")])]
        bases["mrc"].append((p, infos))
    # TIA: an .emi with its NAME_N.ser series.
    for e in small("tia", {".emi"}):
        stem = os.path.splitext(e)[0]
        sers = sorted(os.path.join(os.path.dirname(e), n) for n in os.listdir(os.path.dirname(e))
                      if n.lower().endswith(".ser") and os.path.join(os.path.dirname(e), n).startswith(stem + "_"))
        if sers and all(os.path.getsize(x) <= max_bytes for x in sers):
            bases["tia"].append((e, sers))
    bases["tiff"] = [(p, []) for p in small("tiff", {".tif", ".tiff"})]
    # Dectris: a master with the data files it links (NAME_data_NNNNNN.h5).
    for m in small("arina", {".h5"}):
        if m.endswith("_master.h5"):
            stem = m[:-len("_master.h5")]
            data = sorted(os.path.join(os.path.dirname(m), n) for n in os.listdir(os.path.dirname(m))
                          if os.path.join(os.path.dirname(m), n).startswith(stem + "_data_"))
            bases["dectris"].append((m, data))
    # NeXus: emconv's own outputs of one small file of every other family.
    nx = os.path.join(work, "nexus-bases")
    os.makedirs(nx, exist_ok=True)
    for fam in ["dm", "emd_velox", "emd_berkeley", "mib", "empad", "mrc", "tia", "tiff", "dectris"]:
        for i, (p, _) in enumerate(bases[fam][:3]):
            out = os.path.join(nx, f"{fam}-{i}.nxs")
            r = subprocess.run([emconv, "convert", p, "-o", out, "--overwrite"], capture_output=True, timeout=120)
            if r.returncode == 0 and os.path.getsize(out) <= max_bytes:
                bases["nexus"].append((out, []))
    return bases


# ---------------------------------------------------------------------------------------------
# Mutations

HUGE = [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 1 << 40, 1 << 31, 1 << 33]
HDF5_SIGS = [b"OHDR", b"TREE", b"HEAP", b"GCOL", b"SNOD", b"FRHP", b"FHDB", b"BTHD", b"BTLF", b"FSHD"]


def length_offsets(family, data):
    """Offsets of fields that declare sizes or counts, by what each format stores there."""
    offs = []
    if family == "dm":
        offs += [4, 8, 12]                              # file size / version fields
        offs += [m.start() + 4 for m in re.finditer(rb"%%%%", data[:1 << 20])][:400]   # tag info counts
        offs += [m.start() + 8 for m in re.finditer(rb"%%%%", data[:1 << 20])][:400]
    elif family == "mrc":
        offs += [0, 4, 8, 12, 28, 32, 36, 92, 104, 208]          # nx ny nz mode, mx my mz, nsymbt, exttyp, map
    elif family == "tia":
        offs += [6, 10, 14, 18, 22, 26, 30, 34]                  # SER: type ids, element counts, offset array, dims
        offs += [m.start() + 8 for m in re.finditer(rb"\x60\x00\x00\x01", data[:1 << 20])][:200]   # EMI string lengths
    elif family == "tiff":
        offs += [4, 8]                                           # first IFD offset (classic / BigTIFF)
        offs += [m.start() + k for m in re.finditer(rb"(\x11\x01|\x01\x11|\x17\x01|\x01\x17|\x00\x01|\x01\x00)[\x03\x04]\x00", data[:1 << 16]) for k in (4, 8)][:400]
    elif family in HDF5_FAMILIES:
        offs += list(range(8, 96, 4))                   # superblock: sizes, addresses, EOF
        for sig in HDF5_SIGS:
            for m in re.finditer(re.escape(sig), data):
                offs += [m.start() + k for k in (4, 6, 8, 12, 16, 24)]
    return [o for o in offs if o + 8 <= len(data)]


def ascii_numbers(data):
    """Positions of decimal numbers in text parts (MIB headers, .hdr, EMPAD xml, Velox JSON)."""
    return [(m.start(), m.end()) for m in re.finditer(rb"(?<=[,>\":= ])[0-9]{1,12}(?=[,<\"\r\n ])", data[:1 << 20])]


def mutate(family, data, rng):
    """Returns (kind, mutated bytes)."""
    n = len(data)
    kind = rng.choices(["truncate", "flip", "insert", "huge"], weights=[3, 3, 2, 3])[0]
    if kind == "truncate":
        region = rng.random()
        if region < 0.35:
            cut = rng.randrange(0, min(n, 8192))        # inside the headers
        elif region < 0.7:
            cut = rng.randrange(0, n)
        else:
            cut = n - 1 - rng.randrange(0, max(1, n // 10))   # near the end: last frames, trailing tags
        return kind, data[:max(0, cut)]
    b = bytearray(data)
    if kind == "flip":
        for _ in range(rng.choice([1, 1, 2, 8, 64])):
            i = rng.randrange(0, n) if rng.random() < 0.5 else rng.randrange(0, min(n, 65536))
            b[i] ^= rng.randrange(1, 256)
        return kind, bytes(b)
    if kind == "insert":
        at = rng.randrange(0, n + 1) if rng.random() < 0.5 else rng.randrange(0, min(n, 65536) + 1)
        run = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 512, 4096])))
        return kind, bytes(b[:at]) + run + bytes(b[at:])
    # huge: a size/count field set to a huge value (binary or ASCII).
    nums = ascii_numbers(data)
    offs = length_offsets(family, data)
    if nums and (not offs or rng.random() < 0.5):
        s, e = rng.choice(nums)
        val = str(rng.choice([2147483647, 4294967295, 99999999999, 1 << 40, 0, 999999])).encode()
        return kind, bytes(b[:s]) + val + bytes(b[e:])
    if not offs:
        offs = [rng.randrange(0, max(1, n - 8))]
    o = rng.choice(offs)
    width = rng.choice([4, 8])
    val = rng.choice(HUGE) & ((1 << (8 * width)) - 1)
    order = rng.choice(["little", "big"])
    b[o:o + width] = val.to_bytes(width, order)
    return kind, bytes(b[:n])


# ---------------------------------------------------------------------------------------------
# Running emconv

TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(cmd, cwd, timeout, log):
    """Runs cmd; returns (exit code or -signal, killed by timeout, peak RSS KiB, stdout, stderr).

    Peak RSS comes from /usr/bin/time when present: a child's ru_maxrss also counts the memory of
    the process that forked it, so it is measured from the small `time` process, not from Python.
    """
    rss_file = log + ".rss"
    full = ([TIME, "-q", "-f", "%M", "-o", rss_file] if TIME else []) + cmd
    with open(log + ".out", "wb") as out, open(log + ".err", "wb") as err:
        p = subprocess.Popen(full, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, SWIFT_BACKTRACE="enable=no"), start_new_session=True)
        killed = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            killed = True
            p.wait()
    code = p.returncode
    rss = 0
    if TIME and os.path.exists(rss_file):
        text = open(rss_file).read()
        m = re.search(r"(\d+)\s*$", text)
        rss = int(m.group(1)) if m else 0
        s = re.search(r"terminated by signal (\d+)", text)
        if s:
            code = -int(s.group(1))
    with open(log + ".out", "rb") as f:
        so = f.read()
    with open(log + ".err", "rb") as f:
        se = f.read().decode("utf-8", "replace")
    return code, killed, rss, so, se


def classify(code, killed, se):
    if killed:
        return "hang"
    if code < 0 or code in (134, 139) or "Fatal error" in se:
        return "crash"
    if code == 0:
        return "ok"
    lines = [l for l in se.splitlines() if l.strip() and not l.startswith("emconv: warning:")]
    if code in DOCUMENTED_EXITS and len(lines) == 1 and lines[0].startswith("emconv: error: "):
        return "clean"
    return "messy"


def one_mutant(args, family, index, base, companions, mutate_companion, seed, work):
    rng = random.Random(seed)
    original = open(mutate_companion or base, "rb").read()
    kind, payload = mutate(family, original, rng)
    # A cut that removes only padding (spaces, NULs, line ends: a Merlin .hdr after 'End', DM's
    # closing zeros) loses nothing: it is not a truncation for the 'silent' column.
    if kind == "truncate" and not original[len(payload):].strip(b" \t\r\n\x00"):
        kind = "truncate-padding"
    canary = b"EMCONV-CANARY-" + bytes(rng.randrange(65, 91) for _ in range(48))
    d = tempfile.mkdtemp(prefix=f"{family}-{index}-", dir=work)
    inner = os.path.join(d, "in")
    logs = os.path.join(d, "logs")
    os.makedirs(inner)
    os.makedirs(logs)
    # A canary beside the input folder: its bytes must never appear in an output.
    with open(os.path.join(d, "canary.bin"), "wb") as f:
        f.write(canary)
    name = os.path.basename(base).replace(" ", "_")
    inputs = {name}
    if mutate_companion is None:
        open(os.path.join(inner, name), "wb").write(payload)
    else:
        shutil.copyfile(base, os.path.join(inner, name))
    for c in companions:
        cn = os.path.basename(c)
        stem = os.path.splitext(os.path.basename(base))[0]
        if family == "mib":     # the .hdr follows the renamed .mib
            cn = os.path.splitext(name)[0] + ".hdr"
        elif cn.startswith(stem):   # NAME_1.ser, NAME_data_000001.h5 follow the renamed primary
            cn = os.path.splitext(name)[0] + cn[len(stem):]
        inputs.add(cn)
        if mutate_companion == c:
            open(os.path.join(inner, cn), "wb").write(payload)
        else:
            shutil.copyfile(c, os.path.join(inner, cn))
    res = {"family": family, "kind": kind, "file": os.path.basename(base), "classes": set(), "rss": 0, "notes": []}
    for cmd in (["info", name], ["convert", name, "-o", "out.nxs", "--compression", "none"]):
        code, killed, rss, so, se = run([args.emconv] + cmd, inner, args.timeout, os.path.join(logs, cmd[0]))
        c = classify(code, killed, se)
        res["classes"].add(c)
        res["rss"] = max(res["rss"], rss)
        if c in ("crash", "hang", "messy"):
            res["notes"].append(f"{cmd[0]}: {c} (exit {code}): {se.strip().splitlines()[-1][:160] if se.strip() else ''}")
        if rss > args.rss_mib * 1024:
            res["classes"].add("rss")
            res["notes"].append(f"{cmd[0]}: peak RSS {rss // 1024} MiB")
        if cmd[0] == "convert":
            if kind == "truncate" and code == 0 and "warning" not in se.lower():
                res["classes"].add("silent")
                res["notes"].append("convert: truncated input converted with exit 0 and no warning")
            extra = sorted(set(os.listdir(inner)) - inputs - ({"out.nxs"} if code == 0 else set()))
            if extra:
                res["classes"].add("leftovers")
                res["notes"].append(f"convert (exit {code}) left {extra}")
            if code == 0 and os.path.exists(os.path.join(inner, "out.nxs")):
                if canary in open(os.path.join(inner, "out.nxs"), "rb").read():
                    res["classes"].add("foreign")
                    res["notes"].append("canary bytes in out.nxs")
        if canary in so:
            res["classes"].add("foreign")
            res["notes"].append(f"canary bytes in {cmd[0]} output")
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emconv", required=True, help="the built CLI binary")
    ap.add_argument("--testdata", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "testdata"))
    ap.add_argument("--per-family", type=int, default=300)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--rss-mib", type=int, default=512)
    ap.add_argument("--max-bytes", type=int, default=2_200_000, help="largest base file used")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", action="store_true", help="keep every mutant's folder (else only the table)")
    ap.add_argument("--details", type=int, default=5, help="problem mutants listed per family")
    args = ap.parse_args()
    args.emconv = os.path.abspath(args.emconv)
    if not os.path.isdir(os.path.join(args.testdata, "mib")):
        print(f"hostile_inputs: skipped: {args.testdata} not found", file=sys.stderr)
        return 0
    work = tempfile.mkdtemp(prefix="emconv-hostile-")
    try:
        return campaign(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"mutants kept in {work}")


def campaign(args, work):
    rng = random.Random(args.seed)
    t0 = time.time()
    bases = base_files(args.testdata, work, args.emconv, args.max_bytes)
    families = [f for f in args.families.split(",") if f]
    jobs = []
    for fam in families:
        if not bases[fam]:
            print(f"hostile_inputs: {fam}: no base file", file=sys.stderr)
            continue
        for i in range(args.per_family):
            base, comps = bases[fam][i % len(bases[fam])]
            mutate_companion = None
            # Some mutants change a companion (.hdr, .raw, .ser, data file, info.txt) instead.
            if comps and rng.random() < COMPANION_SHARE.get(fam, 0.4):
                mutate_companion = rng.choice(comps)
            jobs.append((args, fam, i, base, comps, mutate_companion, rng.randrange(1 << 62), work))
    results = []
    with concurrent.futures.ThreadPoolExecutor(args.workers) as ex:
        for r in ex.map(lambda j: one_mutant(*j), jobs):
            results.append(r)
            if len(results) % 100 == 0:
                print(f"hostile_inputs: {len(results)}/{len(jobs)} mutants, {time.time() - t0:.0f} s", file=sys.stderr)
    elapsed = time.time() - t0

    print(f"emconv hostile-input campaign: {args.emconv}, {args.per_family} mutants per family, seed {args.seed}, "
          f"timeout {args.timeout:g} s, RSS limit {args.rss_mib} MiB, {elapsed:.0f} s")
    print(f"{'family':<13}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'max RSS MiB':>13}")
    total = {c: 0 for c in COLUMNS}
    for fam in families:
        rs = [r for r in results if r["family"] == fam]
        if not rs:
            continue
        row = {c: 0 for c in COLUMNS}
        row["tried"] = len(rs)
        for r in rs:
            for c in COLUMNS[1:]:
                if c in r["classes"]:
                    row[c] += 1
        for c in COLUMNS:
            total[c] += row[c]
        print(f"{fam:<13}" + "".join(f"{row[c]:>10}" for c in COLUMNS) + f"{max(r['rss'] for r in rs) // 1024:>13}")
    print(f"{'total':<13}" + "".join(f"{total[c]:>10}" for c in COLUMNS))
    print("(a mutant is counted once per column; 'clean'/'ok' may both count when info reads and convert refuses)")
    problems = [r for r in results if r["classes"] & set(BAD)]
    problems.sort(key=lambda r: min(BAD.index(c) for c in r["classes"] & set(BAD)))
    for fam in families:
        shown = [r for r in problems if r["family"] == fam][:args.details]
        for r in shown:
            print(f"  {fam} {r['kind']} of {r['file']}: " + "; ".join(r["notes"]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Differential check of `emconv validate --profile nxem` against pynxtools (independent NXem validator).

For every shared-testdata case the emconv binary converts (MIB, EMPAD, Velox/Berkeley EMD, and a
synthetic raw file), converts it twice: without a sidecar and with a sidecar giving the sample (and
the instrument identity / modes that vendor files lack). Then runs
    pynxtools.dataconverter.validation.validate_hdf_group_against("NXem", h5["entry1"], filename, False)
(pynxtools 0.16.0; the `pynx validate` CLI always exits 0, so the function is called directly) and
    emconv validate --profile nxem --json
and asserts they AGREE:
  - with the sidecar both say valid;
  - without it both say invalid and both name the missing sample.
The agreement is judged on NXem violations (pynxtools' MissingDocumentation findings aside). In
addition, every output converted with the sidecar must be VALID for pynxtools in its default mode
(ignore_undocumented=False, what `pynx validate` / `validate_nexus` run), where any attribute or field
NXem does not document counts: emconv keeps its own details in NXcollection groups and NXem's
`profiling`, so none may appear. The number of such outputs is printed.
Prints 'N passed, M failed'.
"""
import argparse, json, os, subprocess, sys, tempfile

import h5py
import hdf5plugin  # noqa: F401  (zstd filter)
from pynxtools.dataconverter.helpers import collector
from pynxtools.dataconverter.validation import validate_hdf_group_against

from common import Tally, scratch_dir


SIDECAR = """\
sample:
  name: interop test sample
  atom_types: [Si, O]
  preparation_date: 2024-05-01T10:00:00+02:00
  is_simulation: false
  physical_form: thin_film
users:
  - name: Interop Tester
    orcid: 0000-0002-1825-0097
instrument:
  name: test instrument
  vendor: Test Vendor
  model: Test Model
  emitter_type: schottky
detector:
  operation_mode: counting
scan:
  schema: raster
start_time: 2024-05-02T09:00:00+02:00
"""


check = Tally()


def pynx(path):
    """(valid, problems, undocumented, default_verdict) from pynxtools; problems exclude
    MissingDocumentation; default_verdict is the function's own result with ignore_undocumented=False."""
    collector.clear()
    collector.logging = False
    with h5py.File(path, "r") as h5:
        verdict = validate_hdf_group_against("NXem", h5["entry1"], path, False)
    msgs = sorted(collector.get())
    undoc = [m for m in msgs if "ValidationProblem.MissingDocumentation" in m]
    probs = [m for m in msgs if "ValidationProblem.MissingDocumentation" not in m]
    return len(probs) == 0, probs, undoc, bool(verdict)


def emconv_validate(binary, path):
    r = subprocess.run([binary, "validate", "--profile", "nxem", "--json", path], capture_output=True, text=True)
    doc = json.loads(r.stdout)
    return r.returncode, doc


def cases(testdata):
    out = []
    for sub, exts in (("mib", (".mib",)), ("empad", (".xml",)), ("emd_velox", (".emd",)), ("emd_berkeley", (".emd", ".h5")),
                      ("dm/real", (".dm3", ".dm4")), ("dm/dtypes/1D", (".dm3", ".dm4")), ("dm/dtypes/2D", (".dm3", ".dm4")),
                      ("dm/dtypes/3D", (".dm3", ".dm4"))):
        d = os.path.join(testdata, sub)
        if not os.path.isdir(d):
            continue
        for n in sorted(os.listdir(d)):
            if n.endswith(exts):
                out.append(os.path.join(d, n))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emconv", required=True)
    ap.add_argument("--testdata", default="../shared/testdata")
    a = ap.parse_args()
    tmp = scratch_dir("emconv-validate-")
    side = os.path.join(tmp, "meta.yaml")
    with open(side, "w") as f:
        f.write(SIDECAR)
    raw = os.path.join(tmp, "synthetic.raw")
    with open(raw, "wb") as f:
        f.write(bytes(range(256)) * (2 * 3 * 8 * 8 * 2 // 256 + 1))
    inputs = [(raw, ["--raw-dtype", "<u2", "--raw-shape", "2,3,8,8"])]
    if os.path.isdir(a.testdata):
        inputs += [(p, []) for p in cases(a.testdata)]
    else:
        print("check_validate: ../shared/testdata not found: synthetic input only")
    converted = 0
    default_valid = 0
    for src, extra in inputs:
        name = os.path.basename(src)
        for with_sidecar in (False, True):
            out = os.path.join(tmp, f"{name}.{'side' if with_sidecar else 'bare'}.nxs")
            cmd = [a.emconv, "convert", src, "-o", out, "--quiet", "--overwrite"] + extra
            if with_sidecar:
                cmd += ["--metadata", side]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                if not with_sidecar:
                    print(f"skip {name}: emconv cannot convert it ({r.stderr.strip()[:120]})")
                break
            converted += with_sidecar
            pv, probs, undoc, verdict = pynx(out)
            rc, doc = emconv_validate(a.emconv, out)
            ev = doc["valid"]
            errs = [f for f in doc["findings"] if f["severity"] == "error"]
            tag = f"{name} ({'with' if with_sidecar else 'without'} sidecar)"
            print(f"{tag}: pynxtools {'VALID' if pv else 'INVALID'} ({len(probs)} problems, {len(undoc)} undocumented), "
                  f"emconv {'VALID' if ev else 'INVALID'} ({len(errs)} errors)")
            check(pv == ev, f"{tag}: verdicts disagree; pynxtools: {probs[:6]}; emconv: {[e['path'] + ' ' + e['message'] for e in errs[:6]]}")
            check(rc == (0 if ev else 3), f"{tag}: exit status {rc} matches valid={ev}")
            if with_sidecar:
                # pynxtools as users run it: undocumented concepts count too.
                default_valid += verdict and not undoc
                check(verdict and not undoc, f"{tag}: pynxtools default mode (ignore_undocumented=False) says NOT valid: {(undoc + probs)[:6]}")
                # Not a disagreement when both say invalid: an output defect both validators see.
                check(pv and ev, f"{tag}: output not NXem-valid even with the sidecar (output defect, both validators agree={pv == ev}); "
                                 f"pynxtools: {probs[:6]}; emconv: {[e['path'] + ' ' + e['message'] for e in errs[:6]]}")
            else:
                p_sample = any("sample" in m for m in probs)
                e_sample = any(e["path"].startswith("/entry1/sample") for e in errs)
                check(p_sample and e_sample, f"{tag}: both report the missing sample (pynxtools {p_sample}, emconv {e_sample})")
    check(converted > 0, "at least one input converted")
    print(f"pynxtools default mode (ignore_undocumented=False): {default_valid}/{converted} outputs converted with the sidecar VALID")
    print(check.summary())
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

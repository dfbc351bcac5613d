#!/usr/bin/env python3
"""Calibrates ``symbolic.discover.estimate_cost``: what ``attnflow discover`` takes, known
before it starts, so that sizes far beyond what a run can finish are refused up front.

Runs ``attnflow discover`` as a user would (a fresh process per setting, imports included) at
small sizes, measures each run's CPU seconds and peak memory (``wait4``: that child only),
then fits ``SECONDS_PER`` and ``BYTES_PER`` — per unit of each entry of ``Cost.counts`` and
``Cost.footprint`` — by non-negative least squares on the relative error, and prints the
coefficients and each run's estimates against its measurements.

    python3 benchmarks/bench_discover_cost.py [--quick | --validate] [--out runs.json]
    python3 benchmarks/bench_discover_cost.py --fit-only runs.json [more.json …]

``--validate`` measures runs held out of the fit, near the default limit (1–4 minutes),
against the current tables. Runs cover the paper's model, the self-attention family and a
model read from a file (``docs/examples/linear_attention.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# discover runs its SVD on one BLAS thread; so is the SVD timed here (read as NumPy loads)
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from scipy.optimize import nnls  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbolic.discover import BYTES_PER, SECONDS_PER, estimate_cost  # noqa: E402

TC, FC, ALL = "embeddings,keys,classifier", "embeddings,keys", "embeddings,keys,query,classifier"
HEADS = "head_query,head_key,head_value,head_output"
MH = "--model multi-head"
SA = "--model self-attention"
LINEAR = str(ROOT / "docs" / "examples" / "linear_attention.py")
#: (discover's arguments, closed forms)
RUNS = [
    (f"--trainable {TC}", True),
    (f"--trainable {TC}", False),
    (f"--trainable {TC} --size words=5,d=2,d_key=2,classes=2,hidden=2,max_len=3", True),
    (f"--trainable {TC} --size words=3,d=2,d_key=2,classes=2,hidden=2,max_len=4", True),
    (f"--trainable {ALL} --size words=4,d=3,d_key=3,classes=3,max_len=3", True),
    (f"--trainable {ALL} --size words=4,d=3,d_key=3,classes=3,max_len=3", False),
    (f"--trainable {ALL} --size words=5,d=4,d_key=3,classes=3,max_len=3", False),
    (f"--trainable {TC} --size words=6,classes=4,max_len=4", False),
    (f"--classifier mlp --trainable {TC}", True),
    (f"--classifier mlp --trainable {TC} --size hidden=3", False),
    ("--loss any --trainable embeddings,keys,query", True),
    ("--loss any --trainable embeddings,keys,query --size d=3,words=4", True),
    (f"{MH}", True),
    (f"{MH}", False),
    (f"{MH} --trainable {HEADS} --size heads=2,d_head=2,d=3,C=2", False),
    (f"{MH} --trainable {HEADS} --size heads=2,d_head=2,d=3,C=2", True),
    (f"{MH} --loss any --trainable {HEADS} --size heads=2,d_head=2,d=3,C=3,words=4", True),
    (f"{MH} --loss any --trainable {HEADS} --size heads=2,d_head=2,d=3,C=3,words=4,max_len=3",
     False),
    (f"{MH} --loss squared-error --size heads=2,d_head=1,d=2,C=2", True),
    (f"{MH} --size heads=2,d_head=1,d=3,C=3,words=4", True),
    (f"{MH} --size heads=2,d_head=1,d=2,C=2,max_len=3", True),
    (f"{MH} --trainable {HEADS} --size heads=3,d_head=1,d=2,C=2", False),
    (f"{SA} --size d_head=2,d=3,C=3,words=4", True),
    (f"{SA} --loss any --trainable {HEADS} --size d_head=3,d=4,C=4,words=5", False),
    (f"--model {LINEAR} --size r=1,d=2,C=2", True),
    (f"--model {LINEAR} --size r=2,d=3,C=2,words=4", True),
]
QUICK = [0, 1, 12, 13, 18, 24]
#: Held out of the fit, at sizes whose estimate is 1–4 minutes (near the default limit).
VALIDATION = [
    (f"--trainable {TC} --size words=4,d=3,d_key=3,classes=3,max_len=5", True),
    (f"{MH} --size heads=2,d_head=2,d=3,C=3,words=4", True),
    (f"{MH} --loss any --trainable {HEADS} --size heads=3,d_head=2,d=3,C=3,words=4", True),
    (f"{SA} --size d_head=3,d=4,C=3,words=5", True),
]


def setting_of(arguments: str):
    from attnflow.cli import build_parser
    from attnflow.commands.discover import build_setting

    return build_setting(build_parser().parse_args(["discover", *arguments.split()]))


def measure(arguments: str, closed: bool) -> dict:
    """One fresh ``attnflow discover`` process: its CPU seconds and peak memory."""
    args = [sys.executable, "-m", "attnflow", "discover", *arguments.split(),
            "--max-seconds", "1e9"]
    args += [] if closed else ["--no-closed-forms"]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    _, status, usage = os.wait4(proc.pid, 0)
    return {"arguments": arguments, "closed_forms": closed,
            "exit": os.waitstatus_to_exitcode(status),
            "cpu": usage.ru_utime + usage.ru_stime, "wall": time.perf_counter() - start,
            "peak_bytes": usage.ru_maxrss * 1024}


def cost(run: dict):
    return estimate_cost(setting_of(run["arguments"]), run["closed_forms"])


def svd_seconds() -> float:
    """CPU seconds of LAPACK's SVD per row × column² (one thread), timed here: the ansatz's
    SVD is a small part of the calibration runs, so the fit alone would not see its growth."""
    rng = np.random.default_rng(0)
    rows, cols = 8000, 1000
    matrix = rng.random((rows, cols))
    start = time.process_time()
    np.linalg.svd(matrix, full_matrices=False)
    return (time.process_time() - start) / (rows * cols ** 2)


def fit(runs: list[dict], table: dict, part: str, measured: str, known=None) -> dict:
    """Non-negative coefficients of ``table``'s entries of ``Cost.<part>`` fitting
    ``run[measured]`` with the least relative error; ``known`` coefficients are taken as
    given and their share subtracted first."""
    runs = [r for r in runs if r["exit"] in (0, 1)]  # ran to the end (1: not all declared)
    known = known or {}
    names = [k for k in table if k not in known]
    parts = [getattr(cost(r), part) for r in runs]
    x = np.array([[p[k] for k in names] for p in parts])
    y = np.array([r[measured] for r in runs])
    rest = y - np.array([sum(c * p[k] for k, c in known.items()) for p in parts])
    coef, _ = nnls(x / y[:, None], rest / y)
    return {k: known.get(k, dict(zip(names, coef)).get(k)) for k in table}


def report(runs: list[dict], seconds_per: dict, bytes_per: dict) -> None:
    print("SECONDS_PER = {" + ", ".join(f'"{k}": {v:.3g}' for k, v in seconds_per.items())
          + "}")
    print("BYTES_PER = {" + ", ".join(f'"{k}": {v:.3g}' for k, v in bytes_per.items()) + "}")
    print(f"{'run':100s} {'CPU s':>7s} {'est. s':>7s} {'ratio':>6s} {'peak MB':>8s} "
          f"{'est. MB':>8s} {'ratio':>6s}")
    times, memories = [], []
    for r in runs:
        c = cost(r)
        seconds = sum(seconds_per[k] * c.counts[k] for k in seconds_per)
        memory = sum(bytes_per[k] * c.footprint[k] for k in bytes_per)
        times.append(seconds / r["cpu"])
        memories.append(memory / r["peak_bytes"])
        label = (r["arguments"].replace(str(ROOT) + "/", "")[:90]
                 + ("" if r["closed_forms"] else " (count only)"))
        print(f"{label:100s} {r['cpu']:7.1f} {seconds:7.1f} {times[-1]:6.2f} "
              f"{r['peak_bytes'] / 1e6:8.0f} {memory / 1e6:8.0f} {memories[-1]:6.2f}")
    print(f"estimate / measured: time {min(times):.2f} … {max(times):.2f} (median "
          f"{np.median(times):.2f}), memory {min(memories):.2f} … {max(memories):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="six runs only (no fit)")
    parser.add_argument("--validate", action="store_true",
                        help="the held-out runs near the limit, against the tables (no fit)")
    parser.add_argument("--out", type=Path, help="save the measured runs as JSON")
    parser.add_argument("--fit-only", type=Path, nargs="+",
                        help="fit runs saved by earlier --out (failed ones are measured again)")
    args = parser.parse_args()
    if args.fit_only:
        runs = []
        for path in args.fit_only:
            saved = json.loads(path.read_text())
            for k, r in enumerate(saved):  # a run that failed measures nothing: again
                if r["exit"] not in (0, 1):
                    saved[k] = measure(r["arguments"], r["closed_forms"])
                    print(json.dumps(saved[k]), flush=True)
                    path.write_text(json.dumps(saved, indent=1))
            runs += saved
    else:
        chosen = (VALIDATION if args.validate else [RUNS[i] for i in QUICK] if args.quick
                  else RUNS)
        runs = []
        for spec in chosen:
            runs.append(measure(*spec))
            print(json.dumps(runs[-1]), flush=True)
            if args.out:
                args.out.write_text(json.dumps(runs, indent=1))
    if args.quick or args.validate:
        report(runs, SECONDS_PER, BYTES_PER)
    else:
        report(runs, fit(runs, SECONDS_PER, "counts", "cpu", {"ansatz SVD": svd_seconds()}),
               fit(runs, BYTES_PER, "footprint", "peak_bytes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

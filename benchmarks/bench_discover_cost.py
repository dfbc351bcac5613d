#!/usr/bin/env python3
"""Calibrates ``symbolic.discover.estimate_cost``: what ``attnflow discover`` takes, known
before it starts, so that sizes far beyond what a run can finish are refused up front.

Runs ``attnflow discover`` as a user would (a fresh process per setting, imports included) at
small sizes, measures each run's CPU seconds and peak memory (``wait4``: that child only),
then fits ``SECONDS_PER`` — CPU seconds per unit of each count of ``Cost.counts`` — by
non-negative least squares on the relative error, and prints the coefficients, each run's
estimate against its measurement, and the estimated memory against the peak.

    python3 benchmarks/bench_discover_cost.py [--quick | --validate] [--out runs.json]
    python3 benchmarks/bench_discover_cost.py --fit-only runs.json

Each run takes 2–60 s of CPU; the whole calibration about 15 minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbolic.discover import SECONDS_PER, Setting, estimate_cost  # noqa: E402

TC, FC, ALL = "embeddings,keys,classifier", "embeddings,keys", "embeddings,keys,query,classifier"
#: (classifier, loss, trainable, sizes, closed forms)
RUNS = [
    ("linear", "cross-entropy", TC, "", True),
    ("linear", "cross-entropy", TC, "", False),
    ("linear", "cross-entropy", TC, "words=2", True),
    ("linear", "cross-entropy", TC, "words=4", True),
    ("linear", "cross-entropy", TC, "words=5", False),
    ("linear", "cross-entropy", TC, "d=3", True),
    ("linear", "cross-entropy", TC, "d=4", False),
    ("linear", "cross-entropy", TC, "d_key=3", True),
    ("linear", "cross-entropy", TC, "classes=3", True),
    ("linear", "cross-entropy", TC, "classes=4", False),
    ("linear", "cross-entropy", TC, "max_len=2", True),
    ("linear", "cross-entropy", TC, "max_len=4", True),
    ("linear", "cross-entropy", TC, "max_len=5", False),
    ("linear", "cross-entropy", TC, "words=4,d=3,classes=3", True),
    ("linear", "cross-entropy", TC, "words=2,d=3,d_key=3,max_len=4", True),
    ("linear", "cross-entropy", FC, "", True),
    ("linear", "cross-entropy", ALL, "", True),
    ("linear", "cross-entropy", "keys", "words=4", True),
    ("mlp", "cross-entropy", TC, "", True),
    ("mlp", "cross-entropy", TC, "", False),
    ("mlp", "cross-entropy", TC, "hidden=1", True),
    ("mlp", "cross-entropy", TC, "hidden=3", False),
    ("mlp", "cross-entropy", TC, "words=2", True),
    ("mlp", "cross-entropy", TC, "max_len=2", True),
    ("mlp", "cross-entropy", "embeddings,hidden_weight", "", True),
    ("linear", "any", "embeddings,keys,query", "", True),
    ("linear", "any", "embeddings,keys,query", "d=3", True),
    ("linear", "any", "embeddings,keys,query", "words=4", False),
    ("linear", "any", "embeddings,keys,query", "max_len=4", True),
]
QUICK = [0, 1, 3, 10, 18, 25]
#: Held out of the fit, at sizes whose estimate is 1–4 minutes (near the default limit).
VALIDATION = [
    ("linear", "cross-entropy", TC, "words=4,classes=3,max_len=5", True),
    ("linear", "cross-entropy", TC, "d=5,d_key=3,classes=4", True),
    ("linear", "cross-entropy", TC, "words=4,d=4,d_key=3,classes=4", True),
    ("mlp", "cross-entropy", TC, "words=4,d=3,d_key=3", True),
    ("linear", "cross-entropy", TC, "words=5,d=5,d_key=3,classes=3", True),
    ("linear", "cross-entropy", TC, "words=6,classes=4,max_len=4", True),
]


def setting_of(classifier, loss, trainable, sizes) -> Setting:
    from attnflow.commands.discover import parse_sizes

    return Setting(classifier, loss.replace("-", "_"), tuple(trainable.split(",")),
                   **(parse_sizes(sizes) if sizes else {}))


def measure(classifier, loss, trainable, sizes, closed) -> dict:
    """One fresh ``attnflow discover`` process: its CPU seconds and peak memory."""
    args = [sys.executable, "-m", "attnflow", "discover", "--classifier", classifier,
            "--loss", loss, "--trainable", trainable, "--max-seconds", "1e9"]
    args += ["--size", sizes] if sizes else []
    args += [] if closed else ["--no-closed-forms"]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    _, status, usage = os.wait4(proc.pid, 0)
    return {"classifier": classifier, "loss": loss, "trainable": trainable, "sizes": sizes,
            "closed_forms": closed, "exit": os.waitstatus_to_exitcode(status),
            "cpu": usage.ru_utime + usage.ru_stime, "wall": time.perf_counter() - start,
            "peak_bytes": usage.ru_maxrss * 1024}


def columns(run: dict) -> dict:
    """The fit's regressors of one run: 1 (fixed), the topic indicator, the counts."""
    setting = setting_of(run["classifier"], run["loss"], run["trainable"], run["sizes"])
    cost = estimate_cost(setting, run["closed_forms"])
    topic = "query" not in setting.trained and {"embeddings", "keys"} <= set(setting.trained)
    return {"fixed": 1.0, "topic": float(topic),
            **{k: cost.counts.get(k, 0.0) for k in SECONDS_PER if k not in ("fixed", "topic")}}


def fit(runs: list[dict]) -> dict:
    runs = [r for r in runs if r["exit"] == 0]
    names = list(SECONDS_PER)
    x = np.array([[columns(r)[k] for k in names] for r in runs])
    y = np.array([r["cpu"] for r in runs])
    coef, _ = nnls(x / y[:, None], np.ones(len(y)))    # relative error, non-negative
    return dict(zip(names, coef))


def report(runs: list[dict], coef: dict) -> None:
    print("SECONDS_PER = {" + ", ".join(f'"{k}": {v:.3g}' for k, v in coef.items()) + "}")
    print(f"{'run':60s} {'CPU s':>7s} {'est. s':>7s} {'ratio':>6s} {'peak MB':>8s} "
          f"{'est. MB':>8s}")
    ratios = []
    for r in runs:
        est = sum(coef[k] * v for k, v in columns(r).items())
        memory = estimate_cost(setting_of(r["classifier"], r["loss"], r["trainable"],
                                          r["sizes"]), r["closed_forms"]).bytes
        ratios.append(est / r["cpu"])
        label = (f"{r['classifier']} {r['loss']} [{r['trainable']}] {r['sizes'] or 'default'}"
                 + ("" if r["closed_forms"] else " count only"))
        print(f"{label:60s} {r['cpu']:7.1f} {est:7.1f} {est / r['cpu']:6.2f} "
              f"{r['peak_bytes'] / 1e6:8.0f} {memory / 1e6:8.0f}")
    print(f"estimate / measured: {min(ratios):.2f} … {max(ratios):.2f} "
          f"(median {np.median(ratios):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="six runs only (no fit)")
    parser.add_argument("--validate", action="store_true",
                        help="the held-out runs near the limit, against SECONDS_PER (no fit)")
    parser.add_argument("--out", type=Path, help="save the measured runs as JSON")
    parser.add_argument("--fit-only", type=Path, help="fit runs saved by an earlier --out")
    args = parser.parse_args()
    if args.fit_only:
        runs = json.loads(args.fit_only.read_text())
        for k, r in enumerate(runs):  # a run that failed measures nothing: measure it again
            if r["exit"] != 0:
                runs[k] = measure(r["classifier"], r["loss"], r["trainable"], r["sizes"],
                                  r["closed_forms"])
                print(json.dumps(runs[k]), flush=True)
                args.fit_only.write_text(json.dumps(runs, indent=1))
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
        report(runs, SECONDS_PER)
    else:
        report(runs, fit(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

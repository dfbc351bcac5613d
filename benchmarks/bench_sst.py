#!/usr/bin/env python3
"""Milliseconds per gradient and epochs per second on SST-2 and SST-5 shapes.

For each task's training split: the data's shape (sentences, longest sentence, real tokens,
words), then for Attn-FC (width 200) and Attn-TC (width 100), both with ``d_key = 10`` as in
``attnflow reproduce sst2/sst5``:

- ms per call of ``numeric.value_and_gradient(params, train, spec, wrt=spec.trained)``
  (input validation included), minimum and median wall time and minimum CPU time of
  ``--repeats`` calls after ``--warmup`` (the minima are the figures robust to other
  processes on the machine);
- epochs per second of the full training loop of ``reproduce``: gradient descent at
  learning rate 0.1 with the early-stopping callback (validation every 10 epochs), over
  ``--epochs`` epochs, without figures (the loop validates its start only).

    python3 benchmarks/bench_sst.py [--data DIR] [--threads 1] [--repeats 30] [--epochs 100]

The SST files are not part of the project: ``--data`` names the folder holding
``stsa.binary.*`` and ``stsa.fine.*`` (default: the folder the environment variable
``ATTNFLOW_SST`` names, as for ``attnflow reproduce``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get("ATTNFLOW_SST")
    parser.add_argument("--data", type=Path, default=Path(env) if env else None,
                        help="folder with the SST files (default: $ATTNFLOW_SST)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for OpenBLAS/OpenMP (default 1: one model per core, as "
                             "reproduce runs them)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per figure")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--epochs", type=int, default=100,
                        help="epochs of the training loop timed per model (0: skip)")
    parser.add_argument("--tasks", nargs="+", choices=("sst2", "sst5"),
                        default=["sst2", "sst5"])
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0 or args.epochs < 0:
        parser.error("--threads and --repeats must be positive, --warmup and --epochs "
                     "non-negative")
    if args.data is None:
        parser.error("give the folder of the SST files: --data DIR, or set ATTNFLOW_SST=DIR")
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (the SST files are not shipped)")
    return args


ARGS = parse_args()
# Thread pools read these when they load, so they are set before NumPy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import numeric  # noqa: E402
from numeric import experiments as ex  # noqa: E402
from numeric.data import load_sst  # noqa: E402


def ms_per_gradient(params, data, spec) -> tuple[float, float, float]:
    """Minimum and median wall ms, and minimum CPU ms, of one ``value_and_gradient`` over
    ``ARGS.repeats`` calls (CPU time leaves out the time other processes held the core)."""
    for _ in range(ARGS.warmup):
        numeric.value_and_gradient(params, data, spec, wrt=spec.trained)
    wall, cpu = [], []
    for _ in range(ARGS.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        numeric.value_and_gradient(params, data, spec, wrt=spec.trained)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1e3 * min(wall), 1e3 * float(np.median(wall)), 1e3 * min(cpu)


def epochs_per_second(params, splits, spec) -> float:
    """``ARGS.epochs`` epochs of reproduce's loop (gradient descent + early-stopping callback)."""
    purity = ex.label_purity(splits.train)
    stop = ex.EarlyStopping(splits.valid, spec, splits.train, purity, ex.SST_EVAL_EVERY,
                            patience=10**9, last=ARGS.epochs)
    start = time.perf_counter()
    numeric.gradient_descent(params, splits.train, spec, ex.LR, ARGS.epochs, callback=stop)
    return ARGS.epochs / (time.perf_counter() - start)


def main() -> int:
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {ARGS.threads} "
          f"thread(s), {os.cpu_count()} cores; load average (1 min) at start "
          f"{os.getloadavg()[0]:.2f}")
    cases = []
    for task in ARGS.tasks:
        splits = load_sst(ARGS.data, task)
        train = splits.train
        print(f"{task}: {len(train)} sentences, longest {train.tokens.shape[1]} tokens, "
              f"{train.flat_tokens.size} real tokens (of {train.tokens.size} padded "
              f"positions), {train.n_words} words, {train.n_classes} classes")
        for name, width in ex.SST_WIDTH.items():
            spec = ex.model_spec(name, d=width)
            # past the start: keys and embeddings of a trained model's size, not ~0
            params = numeric.init_params(spec, train, seed=0, key_scale=0.1,
                                         embedding_scale=0.1)
            cases.append((task, name, width, splits, spec, params))
    print("ms per gradient (wall min, wall median, CPU min) and epochs per second of the loop")
    print(f"{'task':5s} {'model':8s} {'width':>5s} | {'min':>6s} {'median':>6s} {'cpu':>6s} | "
          f"{'epochs/s':>8s}")
    for task, name, width, splits, spec, params in cases:
        best, median, cpu = ms_per_gradient(params, splits.train, spec)
        rate = epochs_per_second(params, splits, spec) if ARGS.epochs else np.nan
        print(f"{task:5s} {name:8s} {width:5d} | {best:6.1f} {median:6.1f} {cpu:6.1f} | "
              f"{rate:8.1f}", flush=True)
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}; above about 0.5 per core "
          f"in use, other processes shared the cores and the medians are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

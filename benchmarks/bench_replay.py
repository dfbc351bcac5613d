#!/usr/bin/env python3
"""Replay + attribution of the paper's runs (``attnflow laws FILE --lr 0.1``).

Trains Attn-FC / Attn-TC / Attn-TL on the paper's synthetic data (lr 0.1, full batch, keys
0, embeddings N(0, 1e-6²), query N(0, 0.3²) fixed) with a checkpoint every ``--every``
epochs, saves the trajectory file, then times ``numeric.replay.explain`` on it and prints,
per law and topic word, the measured drift, its derived parts and what is unexplained.

    python3 benchmarks/bench_replay.py [--epochs 5000] [--every 100] [--models Attn-FC ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeric  # noqa: E402
from numeric.data import synthetic_topic_data  # noqa: E402
from numeric.experiments import LR, MODELS, model_spec  # noqa: E402
from numeric.integrate import gradient_descent  # noqa: E402
from numeric.replay import PAPER_LAWS, Optimizer, explain  # noqa: E402
from numeric.trajectory import Trajectory  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the replay's workers)."""
    import resource
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--jobs", type=int, default=2, help="replay processes (default 2)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    data = synthetic_topic_data(0).train
    for name in args.models:
        path = args.dir / f"{name.lower()}_{args.epochs}_{args.every}.npz"
        if not path.exists():
            spec = model_spec(name)
            p = numeric.init_params(spec, data, seed=0, query_scale=0.3, key_scale=0.0,
                                    embedding_scale=1e-6)
            start = time.perf_counter()
            gradient_descent(p, data, spec, LR, args.epochs,
                             record_every=args.every).save(path)
            print(f"{name}: trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
        traj = Trajectory.load(path)
        start, usage = time.perf_counter(), _cpu()
        # the laws `attnflow laws FILE --lr` attributes on these runs (none is violated)
        replay, atts, skipped = explain(traj, Optimizer(LR), laws=PAPER_LAWS, jobs=args.jobs,
                                        max_seconds=None)
        wall, cpu = time.perf_counter() - start, _cpu() - usage
        print(f"\n{name}: replay + attribution of {replay.steps.sum()} steps, "
              f"{len(traj)} checkpoints, {args.jobs} process(es): {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU "
              f"(load {os.getloadavg()[0]:.1f}); replay consistent: {replay.consistent} "
              f"(worst distance/floor {replay.worst[2]:.2g})")
        for a in atts:
            n = a.norms()
            print(f"  {a.law}: {'explained' if a.explained else 'NOT explained'} "
                  f"(accuracy {a.accuracy:.2g})")
            for k, label in enumerate(a.labels):
                meas = n["measured"][k]
                shares = "  ".join(f"{p} {n[p][k] / meas:9.2e}" if meas else f"{p} -"
                                   for p in ("assumptions", "discretisation", "unexplained"))
                signed = (f"ΔQ {a.measured[k]:+.4e}" if a.measured.ndim == 1
                          else f"‖ΔQ‖ {meas:.4e}")
                print(f"    {label:>14}: {signed}  {shares}")
        for law, why in skipped.items():
            print(f"  {law}: skipped — {why}")


if __name__ == "__main__":
    main()

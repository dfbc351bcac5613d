#!/usr/bin/env python3
"""Speed of the randomized law campaign (``attnflow check``).

Prints: the cost of one gradient evaluation on a small random configuration; seconds per
adaptive trajectory with its law checks (median and 90th percentile over the campaign's
configurations); and trajectories per minute of ``run_campaign`` on 1 and on all cores.

    python3 benchmarks/bench_campaign.py [--configs N] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeric  # noqa: E402
from numeric.campaign import build, config_seed, random_config, run_campaign, run_trajectory  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=40,
                        help="configurations timed one by one (default 40)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds per run_campaign measurement (default 20)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    s = build(random_config(config_seed(0, 0)))
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        numeric.value_and_gradient(s.params, s.data, s.spec, wrt=s.spec.trained)
    print(f"value_and_gradient on {s.data!r}: "
          f"{1e6 * (time.perf_counter() - start) / n:.0f} µs per call")

    results = [run_trajectory(random_config(config_seed(1, i))) for i in range(args.configs)]
    seconds = [r.seconds for r in results]
    steps = [r.n_steps for r in results if r.status == "ok"]
    print(f"one adaptive trajectory with its law checks, {args.configs} configurations: "
          f"median {np.median(seconds):.2f} s, 90th percentile {np.percentile(seconds, 90):.2f}"
          f" s, median {np.median(steps):.0f} accepted steps, "
          f"{sum(r.status == 'stalled' for r in results)} stalled")

    for workers in sorted({1, os.cpu_count() or 1}):
        r = run_campaign(args.budget, seed=0, progress=False, workers=workers)
        print(f"run_campaign on {workers} worker(s): {r.trajectories} trajectories in "
              f"{r.seconds:.1f} s = {60 * r.trajectories / r.seconds:.0f} per minute "
              f"({r.stalled} stalled), ok={r.ok}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Speed of the law campaign (``attnflow check``): trajectories per minute of the Hypothesis
search (targeted, and plain sampling) beside the old NumPy sampler, measured in alternation
so that all three see the same machine load.

Prints the cost of one gradient evaluation, then for each round and each sampler the
trajectories finished in ``--budget`` seconds on ``--workers`` processes, and the median per
minute. The old sampler is the loop ``attnflow check`` ran before the Hypothesis search:
``numeric.campaign.random_config`` with seeds from ``SeedSequence([seed, i])``, two
configurations in flight per worker.

    python3 benchmarks/bench_campaign.py [--budget SECONDS] [--rounds N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numeric  # noqa: E402
from numeric.campaign import build, random_config, run_campaign, run_trajectory  # noqa: E402


def old_sampler(budget: float, seed: int, workers: int) -> tuple[int, float]:
    """(trajectories, seconds) of the pre-Hypothesis campaign loop."""
    start, done, i = time.perf_counter(), 0, 0
    with ProcessPoolExecutor(workers) as pool:
        pending = set()
        while pending or time.perf_counter() - start < budget:
            while len(pending) < 2 * workers and time.perf_counter() - start < budget:
                s = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
                pending.add(pool.submit(run_trajectory, random_config(s)))
                i += 1
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            done += sum(f.result().status == "ok" for f in finished)
    return done, time.perf_counter() - start


def hypothesis_search(budget: float, seed: int, workers: int, targeted: bool):
    r = run_campaign(budget, seed=seed, progress=False, workers=workers, targeted=targeted)
    return r.trajectories, r.seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per measurement (default 60)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of (old, targeted, plain) in alternation (default 1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (default: all cores)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    s = build(random_config(0))
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        numeric.value_and_gradient(s.params, s.data, s.spec, wrt=s.spec.trained)
    print(f"value_and_gradient on {s.data!r}: "
          f"{1e6 * (time.perf_counter() - start) / n:.0f} µs per call")

    samplers = {"old NumPy sampler": lambda seed: old_sampler(args.budget, seed, args.workers),
                "Hypothesis, targeted": lambda seed: hypothesis_search(
                    args.budget, seed, args.workers, True),
                "Hypothesis, plain": lambda seed: hypothesis_search(
                    args.budget, seed, args.workers, False)}
    rates = {name: [] for name in samplers}
    for round_ in range(args.rounds):
        for name, measure in samplers.items():
            n_done, seconds = measure(round_)
            rates[name].append(60 * n_done / seconds)
            print(f"round {round_}, {name}: {n_done} trajectories in {seconds:.1f} s = "
                  f"{rates[name][-1]:.0f} per minute on {args.workers} worker(s) "
                  f"(load {os.getloadavg()[0]:.1f})")
    for name, r in rates.items():
        print(f"{name}: median {statistics.median(r):.0f} trajectories per minute")


if __name__ == "__main__":
    main()

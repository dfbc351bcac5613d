#!/usr/bin/env python3
"""The target for ``attnflow conjecture``: a one-line candidate proved or refuted in
≤ 20 s, and a refutation's printed command rerunning its counterexample bit for bit.

Runs each candidate as a user would (a fresh ``python -m attnflow conjecture`` process, so
imports count), ``--rounds`` times, and prints per candidate the exit status, the median wall
and CPU seconds (CPU of the child process: the fair figure on a shared machine) and the load
average around it; for a refutation it also runs the printed rerun command and checks that
its drift figures are the same bytes, and that every round found the same counterexample
(the search is seeded and capped by a count of trajectories, not by time).

    python3 benchmarks/bench_conjecture.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 20.0
ALL = "embeddings,keys,query,classifier"
SEN = "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/m)/QQ"
CASES = [  # (label, expected exit status, arguments after `attnflow conjecture`)
    ("balance, wrong sign", 1,
     ["q[r]*q[t] + Sum(K[w,r]*K[w,t],(w,0,W-1))", "--trainable", ALL]),
    ("SEN with e^{s-c}/(m+1)", 1, [SEN.replace("/m)", "/(m+1))"), "--assume", "A1,A2,A3"]),
    ("key-across-query, query trained", 1, ["q[r]*K[w,t] - q[t]*K[w,r]", "--trainable", ALL]),
    ("relu-unit, wrong sign (MLP)", 1,
     ["Sum(W2[e,n]**2,(e,0,C-1)) + Sum(W1[n,k]**2,(k,0,d-1)) - b1[n]**2",
      "--classifier", "mlp"]),
    ("SEN under A1-A3", 0, [SEN, "--assume", "A1,A2,A3"]),
    ("balance, query trained", 0,
     ["q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))", "--trainable", ALL]),
]


def timed(args: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """(process, wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "attnflow", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu


def figures(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines()
            if x.strip().startswith(("trajectory:", "worst component"))]


def case_text(out: str) -> str:
    """The counterexample's case text (its line also holds the search's time, which varies)."""
    return next((x.split("): ", 1)[1] for x in out.splitlines()
                 if x.startswith("counterexample (")), "")


def rerun_matches(out: str) -> bool:
    """The printed rerun command, run in a fresh process, prints the same drift figures."""
    command = next(x for x in out.splitlines() if "rerun: " in x).split("rerun: ")[1]
    done, _, _ = timed(shlex.split(command)[1:])  # "conjecture EXPR …" without "attnflow"
    return done.returncode == 1 and figures(done.stdout) == figures(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}")
    print(f"{'candidate':36s} {'exit':>4s} {'wall s':>7s} {'CPU s':>6s} {'load':>5s}  rerun")
    met = True
    for label, expected, case in CASES:
        walls, cpus, loads, codes, found, rerun = [], [], [], set(), set(), ""
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            done, wall, cpu = timed(["conjecture", *case])
            walls.append(wall)
            cpus.append(cpu)
            codes.add(done.returncode)
            found.add((case_text(done.stdout), tuple(figures(done.stdout))))
        if expected == 1 and codes == {1}:
            same = rerun_matches(done.stdout) and len(found) == 1
            rerun = "same bytes" if same else "DIFFERENT"
            met = met and same
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        met = met and codes == {expected} and wall <= TARGET
        print(f"{label:36s} {'/'.join(map(str, sorted(codes))):>4s} {wall:7.1f} {cpu:6.1f} "
              f"{statistics.mean(loads):5.1f}  {rerun}")
    print(f"target (≤ {TARGET:.0f} s wall per candidate, expected verdicts, reruns identical): "
          f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How ``attnflow discover`` grows with the number of trained coordinates.

Each row is one fresh ``attnflow discover`` process (imports and derivation included), its CPU
seconds measured by ``wait4``: the count alone (``--no-closed-forms``) and the whole run (the
count, the closed forms of degree ≤ 2, the declared laws checked and the completeness
statement), for the paper's linear model with everything trained and for two self-attention
heads (heads only, and everything trained). Targets: the whole run within 60 s and the count
within 10 s on 2 cores up to 48 trained coordinates.

The anchor, beside it: Marcotte, Gribonval & Peyré's code (sibyllema/Conservation_laws,
``main.ipynb``, SageMath with ``SAGE_NUM_THREADS=64``) reports 41.3 s per architecture for
q-layer linear networks (depth 2–4, widths 2–5) and 135.8 s per architecture for ReLU
networks (widths 2–9), each the dimension of the Lie algebra's trace by symbolic brackets of
polynomial fields and a float rank.

    python3 benchmarks/bench_discover.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL = "embeddings,keys,query,classifier"
HEADS = "head_query,head_key,head_value,head_output"
#: (label, discover's arguments): growing trained coordinates, per family.
SERIES = [
    ("paper, everything", f"--trainable {ALL} --size words=2,d=2,d_key=2,classes=2,max_len=3"),
    ("paper, everything", f"--trainable {ALL}"),
    ("paper, everything", f"--trainable {ALL} --size words=4,d=2,d_key=2,classes=2,max_len=3"),
    ("paper, everything", f"--trainable {ALL} --size words=4,d=3,d_key=3,classes=3,max_len=3"),
    ("paper, everything", f"--trainable {ALL} --size words=4,d=4,d_key=3,classes=3,max_len=3"),
    ("paper, everything", f"--trainable {ALL} --size words=5,d=4,d_key=3,classes=3,max_len=3"),
    ("two heads, heads", f"--model multi-head --loss any --trainable {HEADS} "
                         f"--size heads=2,d_head=1,d=2,C=2"),
    ("two heads, heads", f"--model multi-head --loss any --trainable {HEADS} "
                         f"--size heads=2,d_head=1,d=3,C=3,words=4"),
    ("two heads, heads", f"--model multi-head --loss any --trainable {HEADS} "
                         f"--size heads=2,d_head=2,d=2,C=2"),
    ("two heads, heads", f"--model multi-head --loss any --trainable {HEADS} "
                         f"--size heads=2,d_head=2,d=3,C=3,words=4"),
    ("two heads, everything", "--model multi-head --size heads=2,d_head=1,d=2,C=2"),
    ("two heads, everything", "--model multi-head --size heads=2,d_head=1,d=3,C=3,words=4"),
    ("two heads, everything", "--model multi-head --size heads=2,d_head=2,d=2,C=2"),
]
QUICK = [1, 3, 7, 9]
ANCHOR = ("anchor (SageMath, 64 threads): 41.3 s per linear architecture, 135.8 s per ReLU "
          "architecture")


def run(arguments: str, count_only: bool) -> dict:
    """One fresh process: its CPU seconds, and the count from its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        args = [sys.executable, "-m", "attnflow", "discover", *arguments.split(),
                "--max-seconds", "1e9", "--json", str(report)]
        args += ["--no-closed-forms"] if count_only else []
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        data = json.loads(report.read_text()) if report.exists() else {}
    count = data.get("count") or {}
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall,
            "exit": os.waitstatus_to_exitcode(status),
            "coordinates": count.get("coordinates"), "laws": count.get("laws"),
            "statement": data.get("statement")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four rows only")
    parser.add_argument("--json", type=Path, help="save the rows as JSON")
    args = parser.parse_args()
    rows = [SERIES[k] for k in QUICK] if args.quick else SERIES
    out = []
    print(f"{'family':24s} {'coords':>6s} {'laws':>5s} {'count s':>8s} {'whole s':>8s}  "
          f"complete?")
    for label, arguments in rows:
        count = run(arguments, True)
        whole = run(arguments, False)
        out.append({"family": label, "arguments": arguments, "count": count, "whole": whole})
        complete = whole["statement"] or ("(paper: every law proved)" if whole["exit"] == 0
                                          else f"exit {whole['exit']}")
        print(f"{label:24s} {count['coordinates'] or 0:6d} {count['laws'] or 0:5d} "
              f"{count['cpu']:8.1f} {whole['cpu']:8.1f}  {complete[:70]}", flush=True)
    print(ANCHOR)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

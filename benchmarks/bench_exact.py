#!/usr/bin/env python3
"""CPU time of the exact check (``proofs.exact.check_law``) of every declared law, each in a
fresh process (cold: its explicit data set built and differentiated from nothing), and of all
of them in one process in report order (warm: the laws sharing a data set share its
derivatives, as in ``attnflow audit``).

    python3 benchmarks/bench_exact.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_ONE = """
import time
from proofs import exact
from symbolic import laws as SL
law = SL.law({name!r})
start = time.process_time()
ok = exact.check_law(law).ok
print(ok, time.process_time() - start)
"""


def cold(name: str) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", _ONE.format(name=name)], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout.split()
    return out[0] == "True", float(out[1])


def main() -> int:
    from proofs import exact
    from symbolic import laws as SL

    print(f"{'law':32s} {'cold (s CPU)':>13s} {'warm (s CPU)':>13s}")
    total_cold = total_warm = 0.0
    for law in SL.every_law():
        ok_cold, seconds_cold = cold(law.name)
        start = time.process_time()
        ok_warm = exact.check_law(law).ok
        seconds_warm = time.process_time() - start
        total_cold, total_warm = total_cold + seconds_cold, total_warm + seconds_warm
        verdict = "" if ok_cold and ok_warm else "  NOT PASSED"
        print(f"{law.name:32s} {seconds_cold:13.2f} {seconds_warm:13.2f}{verdict}")
    print(f"{'total':32s} {total_cold:13.2f} {total_warm:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

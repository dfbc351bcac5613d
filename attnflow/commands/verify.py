"""``attnflow verify``: the main job — every check the toolkit has, one summary table."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from attnflow.options import nonnegative_int, positive_finite_float


@dataclass
class Row:
    check: str
    ok: bool | None  # None: nothing could be checked (no evidence either way)
    detail: str
    seconds: float

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT CHECKED"}[self.ok]


def add_parser(sub):
    p = sub.add_parser("verify", help="derive --check, finite differences, audit, randomized "
                                      "check; one summary table",
                       description="Run every check attnflow has; exit 0 only if all hold.")
    p.add_argument("--budget", type=positive_finite_float, default=20.0,
                   help="seconds for the randomized campaign (default 20)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the random configurations")
    p.set_defaults(func=run)


def _timed(check, fn) -> Row:
    start = time.perf_counter()
    ok, detail = fn()
    return Row(check, ok, detail, time.perf_counter() - start)


def derive_check():
    from symbolic.generate import check_generated

    diffs = check_generated()
    return not diffs, ("generated code matches a fresh derivation" if not diffs else
                       f"{len(diffs)} stale file(s): run `attnflow derive`")


def finite_differences(seed: int, count: int = 12, tolerance: float = 1e-6):
    from numeric.checks import fd_check, nan_worst, random_problem

    subsets = [("keys", "embeddings", "classifier"), ("query", "keys"), ("embeddings",),
               ("query", "classifier")]
    results = []
    for n in range(count):
        classifier = ("linear", "mlp")[n % 2]
        params, data, spec = random_problem(seed + n, classifier, subsets[n % len(subsets)])
        results.append(fd_check(params, data, spec, seed=seed + n))
    # a NaN error is the worst of all (and fails the NaN-safe comparison below)
    worst = nan_worst(results, key=lambda r: r.worst)
    return worst.worst < tolerance, (f"{count} random configurations, worst relative error "
                                     f"{worst.worst:.1e} at {worst.where} "
                                     f"({worst.spec.classifier}); tolerance {tolerance:g}")


def audit():
    from proofs.audit import run_audit
    from proofs.kernel import CITED

    # verify runs derive --check itself, just before; a line per theorem as it is checked
    report = run_audit(sync=False, on_theorem=_theorem_done)
    statuses = [s.status for o in report.outcomes for s in o.steps]
    cited = statuses.count(CITED)  # trusted, with their source: not re-checked
    detail = (f"{len(report.outcomes)} theorems, {len(statuses) - cited} steps re-checked, "
              f"{cited} cited (trusted)")
    return report.ok, detail if report.ok else f"{detail}; failed: {report.failures[0]}"


def _theorem_done(outcome) -> None:
    print(f"{INDENT}{outcome.theorem.name}: {'holds' if outcome.ok else 'FAILS'} "
          f"({outcome.seconds:.1f} s)", flush=True)


def campaign(budget: float, seed: int):
    from numeric.campaign import run_campaign

    # the campaign's progress bar (on stderr) only where someone watches it
    result = run_campaign(budget, seed=seed, progress=sys.stderr.isatty())
    if result.interrupted and result.verdict != "violated":
        # the campaign caught Ctrl-C to report what it did; part of it is not a PASS
        raise KeyboardInterrupt
    return {"holds": True, "violated": False, "not checked": None}[result.verdict], \
        result.headline()


#: Indentation of the lines a stage prints while it runs, under its heading.
INDENT = "      "


def stages(args) -> list[tuple[str, Callable]]:
    """The checks of ``verify``, in the order they run."""
    return [("derive --check", derive_check),
            ("gradient vs finite differences", lambda: finite_differences(args.seed)),
            ("audit of every proof", audit),
            ("laws along random trajectories", lambda: campaign(args.budget, args.seed))]


def run(args) -> int:
    checks = stages(args)
    rows = []
    for k, (name, fn) in enumerate(checks, 1):
        print(f"[{k}/{len(checks)}] {name} ...", flush=True)
        rows.append(_timed(name, fn))
        print(f"{INDENT}{rows[-1].result} in {rows[-1].seconds:.1f} s", flush=True)
    width = max(len(r.check) for r in rows)
    print(f"\n{'check'.ljust(width)}  {'result':11s}  time     detail")
    for r in rows:
        print(f"{r.check.ljust(width)}  {r.result:11s}  {r.seconds:6.1f}s  {r.detail}")
    if any(r.ok is False for r in rows):
        print("\nattnflow verify: FAILED")
        return 1
    if any(r.ok is None for r in rows):
        print("\nattnflow verify: NOTHING CHECKED by "
              + ", ".join(r.check for r in rows if r.ok is None) + "; the rest holds")
        return 3
    print("\nattnflow verify: all checks hold")
    return 0

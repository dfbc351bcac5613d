"""``attnflow check``: the law campaign as a Hypothesis search — targeted towards the cases
closest to failing, a violation shrunk to its smallest configuration, shards on local
processes or a Dask cluster, one merged report (``numeric.campaign``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnflow.options import (
    nonnegative_int,
    output_file,
    output_folder,
    positive_finite_float,
    positive_int,
)


def _case(text: str):
    """A case text (``seed=…,d=…``) or, from reports before the Hypothesis search, the bare
    seed of a NumPy-sampled configuration."""
    from numeric.campaign import Config, random_config

    try:
        config = (random_config(int(text)) if text.isascii() and text.isdigit()
                  else Config.from_text(text))
        config.check_cost()  # before build() allocates its data and parameters
    except ValueError as why:
        raise argparse.ArgumentTypeError(str(why)) from None
    return config


def _fault(text: str):
    from numeric.campaign import WrongSign

    try:
        return WrongSign.from_text(text)
    except ValueError as why:
        raise argparse.ArgumentTypeError(str(why)) from None


def add_parser(sub):
    p = sub.add_parser(
        "check", help="law campaign: a targeted, shrinking Hypothesis search over "
                      "configurations, every applicable law checked along each trajectory",
        description="Search configurations with Hypothesis (targeted towards the laws' "
                    "largest usage of their allowance), integrate each adaptively (DOP853) "
                    "and check every applicable law; a violation is shrunk to the smallest "
                    "configuration. Exit 0 only if every applicable law holds.")
    p.add_argument("--budget", type=positive_finite_float, default=60.0,
                   help="wall-clock seconds across all shards (default 60)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="campaign seed: shard k runs Hypothesis with a seed derived from "
                        "(seed, k) (default 0)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local processes, or LocalCluster workers (default: all cores)")
    p.add_argument("--examples", type=positive_int, default=None,
                   help="examples per shard (default 40)")
    p.add_argument("--shards", type=positive_int, default=None,
                   help="stop after this many shards (default: until the budget is spent)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run shards on a Dask distributed cluster: a scheduler address "
                        "(tcp://host:8786), or 'local' to start a LocalCluster")
    p.add_argument("--out", type=output_folder, default=Path("attnflow-check"),
                   help="output folder: report.json and the example database examples/ "
                        "(default attnflow-check)")
    p.add_argument("--json", metavar="FILE", type=output_file,
                   help="also write the report as JSON to FILE")
    p.add_argument("--plain", action="store_true",
                   help="plain sampling: no hypothesis.target() climbing")
    p.add_argument("--compare", action="store_true",
                   help="after the targeted search, run plain sampling with the same budget "
                        "and seed and print how far targeting moved each law's worst case")
    p.add_argument("--trajectory", type=_case, metavar="CASE",
                   help="rerun one case exactly and print its laws: the case text from a "
                        "report (seed=…,d=…) or an old report's configuration seed")
    p.add_argument("--negative-control", type=_fault, metavar="PARAM[:I,J]",
                   help="FOR TESTING THE CHECKER ONLY: patch the engine so that the gradient "
                        "of PARAM (or its entry I,J) has the wrong sign; the report says so")
    p.add_argument("--model", type=_checked_model, default="paper", metavar="NAME",
                   help="the model whose configurations are drawn: paper (default), "
                        "self-attention or multi-head (see `attnflow models`)")
    p.set_defaults(func=run)


def _checked_model(text: str) -> str:
    """A catalogue model the engine runs (a researcher's file declares no laws to check)."""
    from numeric.model import ARCHITECTURES

    if text in ARCHITECTURES:
        return text
    if text.endswith(".py"):
        raise argparse.ArgumentTypeError(
            f"{text}: a researcher's model has no declared laws for check to test; "
            f"`attnflow discover --model {text}` finds its conservation laws")
    raise argparse.ArgumentTypeError(f"unknown model {text!r}; expected one of "
                                     f"{', '.join(ARCHITECTURES)}")


def run(args) -> int:
    if args.trajectory is not None:
        if args.model != "paper" and args.trajectory.architecture != args.model:
            print(f"attnflow check: --model {args.model}, but the case is of the "
                  f"{args.trajectory.architecture} architecture (its text says which)",
                  file=sys.stderr)
            return 2
        if args.negative_control is not None:
            try:
                args.negative_control.check_reaches(args.trajectory)
            except ValueError as why:
                print(f"attnflow check: {why}", file=sys.stderr)
                return 2
        return rerun(args.trajectory, args.negative_control)
    from numeric.campaign import EXAMPLES_PER_SHARD, run_campaign
    from numeric.outputs import check_writable, write_json

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as why:
        print(f"attnflow check: cannot create the output folder {args.out}: {why.strerror}",
              file=sys.stderr)
        return 2
    check_writable(args.out)  # before the budget is spent, not when the report is written
    options = dict(workers=args.workers, scheduler=args.scheduler,
                   examples=args.examples or EXAMPLES_PER_SHARD, max_shards=args.shards,
                   fault=args.negative_control,
                   limits=None if args.model == "paper" else {"model": args.model})
    try:
        result = run_campaign(args.budget, args.seed, targeted=not args.plain,
                              database=args.out / "examples",
                              **options)
        plain = None
        if args.compare and not result.interrupted:
            print("plain sampling with the same budget, for comparison:")
            plain = run_campaign(args.budget, args.seed, targeted=False, database=None,
                                 **options)
    except ValueError as why:  # e.g. an unreachable scheduler, dask not installed
        print(f"attnflow check: {why}", file=sys.stderr)
        return 2
    print(format_summary(result))
    if plain is not None:
        print(format_comparison(result, plain))
        if plain.verdict == "violated" or plain.interrupted:
            # the comparison run is a campaign too: its violation or Ctrl-C is the verdict
            print("plain sampling:\n" + format_summary(plain))
    report = result.to_dict()
    if plain is not None:
        report["plain_sampling"] = plain.to_dict()
    for path in [args.out / "report.json"] + ([args.json] if args.json else []):
        print(f"wrote {write_json(path, report)}")
    if result.fault is not None and result.trajectories and not result.reached:
        print(f"attnflow check: --negative-control {result.fault.parameter}: the patch reached "
              f"none of the {len(result.results)} trajectories (a parameter they do not "
              f"train, or an entry outside or held fixed in all of them): nothing was "
              f"patched", file=sys.stderr)
        return 2
    return exit_status([result] + ([plain] if plain is not None else []))


def exit_status(results) -> int:
    """1 if any run found a violation, else 130 if one was stopped by Ctrl-C (the shell's
    code), else 3 if the first (the one asked for) checked nothing, else 0."""
    if any(r.verdict == "violated" for r in results):
        return 1
    if any(r.interrupted for r in results):
        return 130
    return 3 if results[0].verdict == "not checked" else 0


def rerun(config, fault=None) -> int:
    """One case, its laws; exit 1 if one is violated, 3 if none could be checked."""
    import contextlib

    from numeric.campaign import run_case

    with fault.applied() if fault else contextlib.nullcontext():
        r = run_case(config)
    if fault:
        print(f"NEGATIVE CONTROL (testing only): {fault}")
    print(r.config.describe())
    print(f"status {r.status}, {r.n_steps} adaptive steps, score growth "
          f"{r.score_growth:.3g}, relative accuracy {r.tolerance:.2e}")
    for rep in r.reports:
        print(f"  {rep.law:{LAW}s} {rep.verdict:15s} relative drift {rep.drift:.2e}, "
              f"allowed {rep.allowed:.2e}, usage {rep.usage:.2e} ({rep.worst})")
    verdicts = {rep.verdict for rep in r.reports}
    if "violated" in verdicts:
        return 1
    if "holds" not in verdicts:
        print("attnflow check: NOTHING CHECKED: no law was applicable with its terms moving")
        return 3
    return 0


#: Width of the law column: the longest declared name (embedding-across-classifier).
LAW = 27


def format_summary(result) -> str:
    mode = "targeted search" if result.targeted else "plain sampling"
    lines = [f"\n{result.trajectories} trajectories in {result.seconds:.1f} s ({mode}, seed "
             f"{result.seed}, {len(result.shards)} shards of up to {result.examples} "
             f"examples); {result.stalled} stalled adaptive runs skipped"]
    if result.fault is not None:
        lines.append(f"NEGATIVE CONTROL (testing only): engine patched, {result.fault} "
                     f"(it changed the flow of {result.reached} of {len(result.results)} "
                     f"trajectories)")
    if result.interrupted:
        lines.append("INTERRUPTED (Ctrl-C or SIGTERM): the report covers the trajectories "
                     "finished")
    lines.append(f"{'law':{LAW}s} {'runs':>5s} {'applic.':>7s} {'violated':>8s} {'usage':>8s} "
                 f"{'drift':>9s} {'allowed':>9s}  shard  worst case (rerun: attnflow check "
                 f"--trajectory CASE)")
    for row in result.rows:
        w = row.worst
        figures = (f"{w.usage:8.1e} {w.drift:9.2e} {w.allowed:9.2e}" if w
                   else f"{'-':>8s} {'-':>9s} {'-':>9s}")
        shard = f"{row.worst_shard:5d}" if row.worst_shard is not None else f"{'-':>5s}"
        worst = row.worst_config.to_text() if row.worst_config else "-"
        lines.append(f"{row.law:{LAW}s} {row.trajectories:5d} {row.applicable:7d} "
                     f"{row.violated:8d} {figures}  {shard}  {worst}")
    lines.append("(worst case = largest usage of the allowance; drift relative to the "
                 "movement of the law's terms; allowed = accuracy + (accuracy × sensitivity "
                 "+ atol floor) / movement; laws whose preconditions fail are counted in "
                 "runs, not checked)")
    for v in sorted(result.violations, key=lambda v: not v.shrunk):
        state = ("shrunk" if v.shrunk else "NOT fully shrunk (the budget, Ctrl-C or another "
                 "shard's shrunk violation stopped it; smallest seen so far)")
        lines += [f"VIOLATION of {', '.join(v.laws)} (shard {v.shard}, Hypothesis seed "
                  f"{v.shard_seed}), {state}: found after {v.find_seconds:.1f} s, shrinking "
                  f"took {v.shrink_seconds:.1f} s",
                  f"  smallest case: {v.config.describe()}",
                  f"  rerun exactly: attnflow check --trajectory {v.config.to_text()}"]
    lines.append("attnflow check: " + {
        "holds": "every applicable law holds",
        "violated": "FAILED",
        "not checked": "NOTHING CHECKED: no trajectory gave an applicable law whose terms "
                       "moved (a longer --budget runs more)"}[result.verdict])
    return "\n".join(lines)


def format_comparison(targeted, plain) -> str:
    from numeric.campaign import compare_worst

    lines = [f"\nworst usage of the allowance, same budget and seed: targeted search "
             f"({targeted.trajectories} trajectories) vs plain sampling "
             f"({plain.trajectories})",
             f"{'law':{LAW}s} {'targeted':>9s} {'plain':>9s} {'ratio':>7s}"]
    for law, t, p in compare_worst(targeted, plain):
        ratio = f"{t / p:7.2f}" if t is not None and p else f"{'-':>7s}"
        lines.append(f"{law:{LAW}s} {_fmt(t):>9s} {_fmt(p):>9s} {ratio}")
    return "\n".join(lines)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2e}"

"""``attnflow check``: randomized campaign — random configurations and trajectories, every
applicable law checked, the worst case reported with the seed that reproduces it."""

from __future__ import annotations

from attnflow.options import nonnegative_int, output_file, positive_finite_float, positive_int


def add_parser(sub):
    p = sub.add_parser("check", help="randomized campaign: random configurations and "
                                     "trajectories, every applicable law checked",
                       description="Integrate random configurations adaptively (DOP853) for "
                                   "a time budget and check every applicable law; exit 0 "
                                   "only if all hold.")
    p.add_argument("--budget", type=positive_finite_float, default=60.0,
                   help="wall-clock seconds to spend (default 60)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="campaign seed (default 0)")
    p.add_argument("--json", metavar="FILE", type=output_file,
                   help="write the result as JSON to FILE")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes (default: all cores)")
    p.add_argument("--trajectory", type=nonnegative_int, metavar="SEED",
                   help="rerun the single configuration with this seed (from a report) "
                        "and print its laws")
    p.set_defaults(func=run)


def run(args) -> int:
    from numeric.campaign import random_config, run_campaign, run_trajectory

    if args.trajectory is not None:
        r = run_trajectory(random_config(args.trajectory))
        print(r.config.describe())
        print(f"status {r.status}, {r.n_steps} adaptive steps, score growth "
              f"{r.score_growth:.3g}, relative accuracy {r.tolerance:.2e}")
        for rep in r.reports:
            print(f"  {rep.law:22s} {rep.verdict:15s} relative drift {rep.drift:.2e}, "
                  f"allowed {rep.allowed:.2e} ({rep.worst})")
        return 0 if all(rep.verdict != "violated" for rep in r.reports) else 1
    result = run_campaign(args.budget, args.seed, progress=True, workers=args.workers)
    print(format_summary(result))
    if args.json:
        from numeric.outputs import write_json
        write_json(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0 if result.ok else 1


def format_summary(result) -> str:
    lines = [f"\n{result.trajectories} trajectories in {result.seconds:.1f} s (seed "
             f"{result.seed}); {result.stalled} stalled adaptive runs skipped",
             f"{'law':22s} {'runs':>5s} {'applic.':>7s} {'violated':>8s} "
             f"{'usage':>8s} {'drift':>9s} {'allowed':>9s}  worst case (rerun: attnflow "
             f"check --trajectory SEED)"]
    for row in result.rows:
        w = row.worst
        figures = (f"{w.usage:8.1e} {w.drift:9.2e} {w.allowed:9.2e}" if w
                   else f"{'-':>8s} {'-':>9s} {'-':>9s}")
        worst = row.worst_config.describe() if row.worst_config else "-"
        lines.append(f"{row.law:22s} {row.trajectories:5d} {row.applicable:7d} "
                     f"{row.violated:8d} {figures}  {worst}")
    lines.append("(worst case = largest usage of the allowance; drift relative to the "
                 "movement of the law's terms; allowed = accuracy + accuracy × sensitivity "
                 "/ movement; laws whose preconditions fail are counted in runs, not checked)")
    lines.append("attnflow check: " + ("every applicable law holds" if result.ok
                                       else "FAILED"))
    return "\n".join(lines)

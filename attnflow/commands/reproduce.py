"""``attnflow reproduce {synthetic,ablation,sst2,sst5}``: the paper's experiments."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from attnflow.options import nonnegative_int, output_folder, positive_int

EXPERIMENTS = ("synthetic", "ablation", "sst2", "sst5")
#: Environment variable naming the folder of the SST files when ``--data`` is not given.
SST_ENV = "ATTNFLOW_SST"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="run one of the paper's experiments (figures and results.json)",
        description="Run one of the paper's experiments with its settings and write PNG/PDF "
                    "figures and results.json into --out.")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--out", type=output_folder, default=None,
                   help="output folder (default: results/EXPERIMENT)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (default: the paper's: synthetic 5000, ablation 6000; "
                        "sst2/sst5: at most 3000, early stopping on the validation loss)")
    p.add_argument("--data", type=Path, default=None,
                   help=f"folder holding the SST files stsa.binary.* / stsa.fine.* "
                        f"(sst2/sst5 only; default: the folder ${SST_ENV} names)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of data and initialisation")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="worker processes for the experiment's independent models (default: "
                        "one per core, or one per model when sharing the cores finishes "
                        "sooner, as for the synthetic set's three models on two cores); any "
                        "N gives the same results.json")
    p.set_defaults(func=run)


def run(args) -> int:
    from numeric import experiments  # imported here so that `attnflow --help` stays fast

    sst = args.experiment in ("sst2", "sst5")
    data_dir, source = sst_folder(args.data)
    if sst and data_dir is None:
        print(f"attnflow reproduce {args.experiment}: --data DIR is required (the folder "
              f"with the SST text files), or set {SST_ENV}=DIR", file=sys.stderr)
        return 2
    if not sst and args.data is not None:
        print(f"attnflow reproduce {args.experiment}: --data applies to sst2/sst5 only",
              file=sys.stderr)
        return 2
    out = args.out or Path("results") / args.experiment
    kwargs = {"seed": args.seed, "jobs": args.jobs or experiments.AUTO}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    start = time.perf_counter()
    try:
        if args.experiment == "synthetic":
            results = experiments.run_synthetic(out, **kwargs)
        elif args.experiment == "ablation":
            results = experiments.run_ablation(out, **kwargs)
        else:
            from numeric.data import load_sst

            # read (or refuse) the data before the output folder's previous run is cleared
            try:
                data = load_sst(data_dir, args.experiment)
            except OSError as err:  # unreadable input: bad usage (2), not a failed check
                raise ValueError(f"cannot read the SST data ({source}): {err}") from None
            except ValueError as err:
                raise ValueError(f"{err} ({source})") from None
            results = experiments.run_sst(out, data_dir, args.experiment, data=data, **kwargs)
    except ValueError as err:
        print(f"attnflow reproduce {args.experiment}: {err}", file=sys.stderr)
        return 2
    print(summary(results, experiments.read_timings(out)["wall_time_s"]))
    print(f"wall time {time.perf_counter() - start:.1f} s; figures and results.json in {out}")
    return 0


def sst_folder(data: Path | None) -> tuple[Path | None, str]:
    """The SST folder, from ``--data`` or else the environment, and where it came from."""
    if data is not None:
        return data, f"--data {data}"
    env = os.environ.get(SST_ENV)
    return (Path(env), f"{SST_ENV}={env}") if env else (None, "")


def summary(results: dict, seconds: dict | None = None) -> str:
    """A plain-text table of the headline numbers of a results dict, with the wall time of
    each run when ``seconds`` (run → seconds, from ``timings.json``) is given."""
    seconds = seconds or {}

    def took(name: str) -> str:
        return f"{seconds[name]:.1f}" if name in seconds else "n/a"
    if results["experiment"] == "ablation":
        rows = [("run", f"epochs to loss < {results['loss_threshold']}", "final loss",
                 "test acc", "time (s)", DRIFT_HEADER)]
        for name, r in results["runs"].items():
            reached = r["epochs_to_threshold"]
            rows.append((name, "not reached" if reached is None else str(reached),
                         f"{r['final_train_loss']:.4g}", f"{r['test_accuracy']:.4f}",
                         took(name), drift_cell(r.get("sen_drift"))))
    elif results["experiment"] == "synthetic":
        start = next(iter(results["models"].values()))["sen"]["from_epoch"]
        rows = [("model", "test acc", "final loss", f"SEN max rel. dist. (epoch >= {start})",
                 "SEN orthogonal dist. (all epochs)", "time (s)", DRIFT_HEADER)]
        for name, r in results["models"].items():
            dist = r["sen"]["max_rel_distance"]
            rows.append((name, f"{r['test_accuracy']:.4f}", f"{r['final_train_loss']:.4g}",
                         "n/a" if dist is None else f"{dist:.4%}",
                         f"{r['sen']['max_orthogonal_rel_distance']:.4%}",
                         took(name), drift_cell(r.get("sen_drift"))))
    else:
        rows = [("model", "test acc", "best epoch", "epochs run",
                 "SEN rel. dist. top words (median / max)", "picked purity (first -> last)",
                 "time (s)")]
        for name, r in results["models"].items():
            purity = r["picked_purity"]["values"]
            rows.append((name, f"{r['test_accuracy']:.4f}", str(r["best_epoch"]),
                         str(r["epochs_run"]), f"{r['sen_rel_distance_median']:.3f} / "
                         f"{r['sen_rel_distance_max']:.3f}",
                         f"{purity[0]:.3f} -> {purity[-1]:.3f}", took(name)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


DRIFT_HEADER = "SEN drift ΔQ (largest word) = assumptions + discretisation; unexplained"


def drift_cell(drift: dict | None) -> str:
    """The topic word with the largest measured SEN drift, split into its derived parts."""
    if not drift:
        return "n/a"
    if not drift["attributed"]:
        return f"not attributed ({drift['reason']})"
    w = max(drift["per_word"], key=lambda x: abs(x["measured"]))
    return (f"{w['measured']:+.3e} = {w['assumptions']:+.2e} + {w['discretisation']:+.2e}; "
            f"{drift['max_unexplained_share']:.1e} of it unexplained ({drift['verdict']})")


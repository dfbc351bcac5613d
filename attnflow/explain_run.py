"""``attnflow laws FILE --lr η [--weight-decay λ] [--momentum β]``: replay the run and
explain each law's drift (numeric.replay). The options and the report; ``laws.py`` calls
``add_arguments`` and ``explain``."""

from __future__ import annotations

from attnflow.options import (
    fraction_below_one,
    nonnegative_finite_float,
    positive_finite_float,
    positive_int,
)

PARTS = ("assumptions", "weight_decay", "momentum", "discretisation")


def _cores() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def add_arguments(p) -> None:
    g = p.add_argument_group("explaining a run (replay + attribution)")
    g.add_argument("--lr", type=positive_finite_float,
                   help="learning rate of the recorded gradient-descent run: replay it from "
                        "every checkpoint and split each law's drift into its derived parts")
    g.add_argument("--weight-decay", type=nonnegative_finite_float, default=0.0,
                   help="L2 weight decay λ of the run (penalty λ/2‖θ‖² on trained arrays)")
    g.add_argument("--decoupled", action="store_true",
                   help="the weight decay was decoupled (θ ← (1 − lr·λ)θ outside momentum)")
    g.add_argument("--momentum", type=fraction_below_one, default=0.0,
                   help="heavy-ball momentum β of the run (PyTorch SGD convention)")
    g.add_argument("--jobs", type=positive_int, default=None,
                   help="processes replaying groups of checkpoint intervals (default: the "
                        "cores available; the replay is sequential with momentum)")
    g.add_argument("--checkpoints-only", action="store_true",
                   help="no replay on the data: a documented approximation from the "
                        "checkpoints alone (discretisation and weight decay estimated; "
                        "never a verdict)")


def option_problem(args) -> str:
    """One line when the explaining options do not go together (checked before reading)."""
    if args.lr is None and (args.weight_decay or args.momentum or args.decoupled
                            or args.checkpoints_only):
        return ("attnflow laws: --weight-decay, --momentum, --decoupled and "
                "--checkpoints-only need --lr")
    if args.decoupled and not args.weight_decay:
        return "attnflow laws: --decoupled needs --weight-decay"
    return ""


def explain(args, traj, violated=()) -> tuple[dict | None, str, int]:
    """``(report, text, status)``: status 0 when the replay matches and every law's drift is
    explained, 1 otherwise, 2 for options that do not fit the file (text says why).
    ``violated``: the laws the snapshots violate; one the replay does not attribute leaves
    the run not explained."""
    if option_problem(args):
        return None, option_problem(args), 2
    if args.lr is None:
        return None, "", 0
    from numeric.replay import Optimizer, estimate_from_checkpoints
    from numeric.replay import explain as replay_and_explain

    try:
        opt = Optimizer(args.lr, args.weight_decay, args.momentum, args.decoupled)
        if args.checkpoints_only:
            atts, skipped = estimate_from_checkpoints(traj, opt)
            replay = None
        else:
            replay, atts, skipped = replay_and_explain(traj, opt, jobs=args.jobs or _cores())
    except ValueError as e:
        return None, f"attnflow laws: {e}", 2
    unattributed = sorted(set(violated) - {a.law for a in atts})
    ok = (replay is not None and replay.consistent and not unattributed
          and all(a.explained for a in atts) and bool(atts))
    report = {"method": "checkpoints only (approximation)" if replay is None else "replay",
              "optimizer": {"lr": opt.lr, "weight_decay": opt.weight_decay,
                            "decoupled": opt.decoupled, "momentum": opt.momentum},
              "verdict": "estimate" if replay is None else
              ("explained" if ok else "not explained"),
              "replay": replay.to_dict() if replay else None,
              "attribution": [a.to_dict() for a in atts], "skipped": skipped,
              "violated_unattributed": unattributed}
    return report, format_explanation(report), 0 if ok or replay is None else 1


def _share(entry, key):
    share = entry.get(f"{key}_share")
    if share is None:
        return ""
    return f" ({share:.1%})" if share >= 1e-3 or share == 0 else f" ({share:.1e} of it)"


def format_explanation(report: dict) -> str:
    o = report["optimizer"]
    lines = [f"\nExplaining the run ({report['method']}): lr {o['lr']:g}, weight decay "
             f"{o['weight_decay']:g}{' (decoupled)' if o['decoupled'] else ''}, momentum "
             f"{o['momentum']:g}"]
    r = report["replay"]
    if r is not None:
        mode = "continuously from the first checkpoint (momentum buffer not stored)" \
            if r["continuous"] else "from every checkpoint"
        lines.append(f"  replay: {r['steps']} steps over {r['intervals']} intervals, {mode}, "
                     f"{r['dtype']} checkpoints (accuracy {r['floor']:.1e} relative); "
                     + ("CONSISTENT" if r["consistent"] else
                        f"MISMATCH at {r['worst']['parameter']} (interval "
                        f"{r['worst']['interval']}): {r['worst']['distance_over_floor']:.3g}× "
                        f"the replay's accuracy"))
        lines.append(f"    {'parameter':<14} {'max rel. distance':>18} {'of movement':>12} "
                     f"{'recorded/replayed movement':>27}")
        for name, p in r["parameters"].items():
            lines.append(f"    {name:<14} {p['max_relative_distance']:>18.2e} "
                         f"{p['max_distance_of_movement']:>12.2e} {p['movement_ratio']:>27.4f}")
    else:
        lines.append("  no replay: a checkpoint-only approximation (steps within an interval "
                     "taken equal; assumption violations and momentum not separated)")
    for a in report["attribution"]:
        lines.append(f"\n  {a['law']}: {a['verdict'].upper()} (replay accuracy "
                     f"{a['accuracy']:.1e}); notes: {'; '.join(a['notes']) or 'none'}")
        unused = {"weight_decay"} if not o["weight_decay"] else set()
        unused |= {"momentum"} if not o["momentum"] else set()
        parts = [k for k in (*PARTS, "first_order_rest", "unexplained")
                 if k in a["components"][0] and k not in unused] if a["components"] else []
        lines.append(f"    {'component':<16} {'|ΔQ| measured':>13}  " + "  ".join(parts))
        for c in a["components"]:
            cells = "  ".join(f"{c[k]:.2e}{_share(c, k)}" for k in parts)
            lines.append(f"    {c['component']:<16} {c['measured']:>13.3e}  {cells}")
    for law, why in report["skipped"].items():
        lines.append(f"\n  {law}: not attributed — {why}")
    for law in report["violated_unattributed"]:
        lines.append(f"\n  {law}: VIOLATED and not attributed — the replay derives the "
                     f"drift of {', '.join(a['law'] for a in report['attribution'])} only")
    lines.append(f"\nattnflow laws: the run's drift is {report['verdict'].upper()}")
    return "\n".join(lines)

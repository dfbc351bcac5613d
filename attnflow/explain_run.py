"""``attnflow laws FILE --lr η [--weight-decay λ] [--momentum β]``: replay the run and
explain each law's drift (numeric.replay). The options and the report; ``laws.py`` calls
``add_arguments`` and ``explain``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnflow.options import (
    fraction_below_one,
    nonnegative_finite_float,
    positive_finite_float,
    positive_int,
)

if TYPE_CHECKING:
    from numeric.replay import Cost, Optimizer

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
    g.add_argument("--max-replay-seconds", type=positive_finite_float, default=None,
                   metavar="S", help="refuse a replay estimated to take more than S CPU "
                                     "seconds (default 3600; the estimate times one step)")


def option_problem(args) -> str:
    """One line when the explaining options do not go together (checked before reading)."""
    if args.lr is None and (args.weight_decay or args.momentum or args.decoupled
                            or args.checkpoints_only):
        return ("attnflow laws: --weight-decay, --momentum, --decoupled and "
                "--checkpoints-only need --lr")
    if args.decoupled and not args.weight_decay:
        return "attnflow laws: --decoupled needs --weight-decay"
    if args.max_replay_seconds is not None and (args.lr is None or args.checkpoints_only):
        return "attnflow laws: --max-replay-seconds needs --lr and a replay"
    return ""


@dataclass(frozen=True)
class Plan:
    """A replay checked against the file before any of it runs: the optimizer, the laws to
    attribute, and (for a replay) its step count and estimated CPU time."""

    optimizer: Optimizer
    laws: tuple[str, ...]
    cost: Cost | None


def plan(args, traj, violated=()) -> tuple[Plan | None, str]:
    """``(plan, "")``, or ``(None, one line)`` when the options do not fit the file: the
    checkpoint times are not multiples of ``lr``, a step count is not a count, or the replay
    is estimated to take longer than the limit. ``violated``: the laws the snapshots
    violate (attributed beside the paper's)."""
    from numeric.replay import (
        MAX_REPLAY_SECONDS,
        Optimizer,
        always_attributed,
        replay_cost,
        step_counts,
    )

    problem = option_problem(args)
    if problem:
        return None, problem
    always = always_attributed(traj.spec)
    chosen = always + tuple(x for x in violated if x not in always)
    try:
        opt = Optimizer(args.lr, args.weight_decay, args.momentum, args.decoupled)
        if args.checkpoints_only:
            step_counts(traj.time, opt.lr)
            return Plan(opt, chosen, None), ""
        cost = replay_cost(traj, opt, laws=chosen)
    except ValueError as e:
        return None, f"attnflow laws: {e}"
    limit = args.max_replay_seconds or MAX_REPLAY_SECONDS
    refusal = cost.refusal(opt.lr, limit)
    if refusal:
        flag = " (--max-replay-seconds)" if args.max_replay_seconds else \
            " (raise it with --max-replay-seconds)"
        return None, f"attnflow laws: {refusal}{flag}"
    return Plan(opt, chosen, cost), ""


def explain(traj, todo: Plan, violated=(), jobs=None) -> tuple[dict, str, int]:
    """``(report, text, status)`` of the planned replay (``plan``): status 0 when the replay
    matches and every law's drift is explained, 1 otherwise (a checkpoint-only estimate:
    0, never a verdict). ``violated``: the laws the snapshots violate; one the replay does
    not attribute leaves the run not explained."""
    from numeric.replay import estimate_from_checkpoints
    from numeric.replay import explain as replay_and_explain

    opt = todo.optimizer
    if todo.cost is None:
        atts, skipped = estimate_from_checkpoints(traj, opt, laws=todo.laws)
        replay = None
    else:
        replay, atts, skipped = replay_and_explain(traj, opt, laws=todo.laws,
                                                   jobs=jobs or _cores(), max_seconds=None)
    unattributed = sorted(set(violated) - {a.law for a in atts})
    ok = (replay is not None and replay.consistent and not unattributed
          and all(a.explained for a in atts) and bool(atts))
    report = {"method": "checkpoints only (approximation)" if replay is None else "replay",
              "precision": traj.precision.to_dict(),
              "optimizer": {"lr": opt.lr, "weight_decay": opt.weight_decay,
                            "decoupled": opt.decoupled, "momentum": opt.momentum},
              "verdict": "estimate" if replay is None else
              ("explained" if ok else "not explained"),
              "replay": replay.to_dict() if replay else None,
              "estimate": None if todo.cost is None else {
                  "steps": todo.cost.steps, "cpu_seconds": todo.cost.seconds},
              "attribution": [a.to_dict() for a in atts], "skipped": skipped,
              "violated_unattributed": unattributed}
    return report, format_explanation(report), 0 if ok or replay is None else 1


def _signed_cell(value: float, share) -> str:
    """A signed part and its signed share of the measured drift."""
    if share is None:
        return f"{value:+.2e}"
    share += 0.0        # a zero part of a negative drift: +0.0%, not -0.0%
    return f"{value:+.2e} ({share:+.1%})" if abs(share) >= 1e-3 or share == 0 \
        else f"{value:+.2e} ({share:+.1e})"


def _number(x, spec: str) -> str:
    """A report number, or "n/a" where it is not a finite number (null in the JSON)."""
    return "n/a" if x is None else format(x, spec)


#: At most this many components per law in the text table (a per-word law has thousands).
MAX_ROWS = 10


def _rows(attribution: dict) -> list[dict]:
    """The components the table shows, in their order: all, or the largest measured drifts
    and the component with the worst unexplained part."""
    comps = attribution["components"]
    if len(comps) <= MAX_ROWS:
        return comps
    by_drift = sorted(range(len(comps)), key=lambda k: -comps[k]["measured"])
    keep = set(by_drift[:MAX_ROWS - 1]) | {
        k for k, c in enumerate(comps) if c["component"] == attribution["worst_component"]}
    return [c for k, c in enumerate(comps) if k in keep]


def _table(a: dict, optimizer: dict) -> list[str]:
    """The law's signed parts per component, in columns, with the header saying how they
    add up (values for scalar components, lengths along ΔQ for arrays)."""
    unused = {"weight_decay"} if not optimizer["weight_decay"] else set()
    unused |= {"momentum"} if not optimizer["momentum"] else set()
    parts = [k for k in (*PARTS, "first_order_rest", "unexplained")
             if a["components"] and k in a["components"][0]["signed"] and k not in unused]
    along = a["signed"] != "values"
    lines = ["    signed parts " + ("along ΔQ (⟨part, ΔQ⟩/‖ΔQ‖), adding up to ‖ΔQ‖"
                                   if along else "adding up to the measured ΔQ")
             + "; in parentheses their share of it"
             + ("; ‖unexplained‖ is what is compared with the accuracy"
                if along and "unexplained" in parts else "")]
    head = ["component", "‖ΔQ‖ measured" if along else "ΔQ measured", *parts]
    rows = []
    for c in _rows(a):
        sign = c["signed"]
        rows.append([c["component"], f"{sign['measured']:{'' if along else '+'}.3e}"]
                    + [_signed_cell(sign[k], c["signed_share"][k]) for k in parts])
        if along and "unexplained" in parts:
            rows[-1].append(f"{c['unexplained']:.2e}")
    if along and "unexplained" in parts:
        head.append("‖unexplained‖")
    widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
    for r in [head, *rows]:
        lines.append("    " + r[0].ljust(widths[0]) + "  "
                     + "  ".join(x.rjust(w) for x, w in zip(r[1:], widths[1:])))
    return lines


def format_explanation(report: dict) -> str:
    o = report["optimizer"]
    lines = [f"\nExplaining the run ({report['method']}): lr {o['lr']:g}, weight decay "
             f"{o['weight_decay']:g}{' (decoupled)' if o['decoupled'] else ''}, momentum "
             f"{o['momentum']:g}"]
    r = report["replay"]
    if r is not None:
        mode = "continuously from the first checkpoint (momentum buffer not stored)" \
            if r["continuous"] else "from every checkpoint"
        note = report["precision"]["note"]
        lines.append(f"  replay: {r['steps']} steps over {r['intervals']} intervals, {mode}, "
                     f"{r['dtype']} checkpoints{f' ({note})' if note else ''} (accuracy "
                     f"{r['floor']:.1e} relative); "
                     + ("CONSISTENT" if r["consistent"] else
                        f"MISMATCH at {r['worst']['parameter']} (interval "
                        f"{r['worst']['interval']}): "
                        f"{_number(r['worst']['distance_over_floor'], '.3g')}× "
                        f"the replay's accuracy"))
        lines.append(f"    {'parameter':<14} {'max rel. distance':>18} {'of movement':>12} "
                     f"{'recorded/replayed movement':>27}")
        for name, p in r["parameters"].items():
            lines.append(f"    {name:<14} {_number(p['max_relative_distance'], '.2e'):>18} "
                         f"{_number(p['max_distance_of_movement'], '.2e'):>12} "
                         f"{_number(p['movement_ratio'], '.4f'):>27}")
    else:
        lines.append("  no replay: a checkpoint-only approximation (steps within an interval "
                     "taken equal; assumption violations and momentum not separated)")
    for a in report["attribution"]:
        lines.append(f"\n  {a['law']}: {a['verdict'].upper()} (replay accuracy "
                     f"{a['accuracy']:.1e}); notes: {'; '.join(a['notes']) or 'none'}")
        lines.extend(_table(a, o))
        shown = len(_rows(a))
        if shown < len(a["components"]):
            lines.append(f"    ({shown} of {len(a['components'])} components: the "
                         f"largest drifts and the worst unexplained; all in --json)")
    for law, why in report["skipped"].items():
        lines.append(f"\n  {law}: not attributed — {why}")
    for law in report["violated_unattributed"]:
        lines.append(f"\n  {law}: VIOLATED and not attributed — the replay derives the "
                     f"drift of {', '.join(a['law'] for a in report['attribution'])} only")
    lines.append(f"\nattnflow laws: the run's drift is {report['verdict'].upper()}")
    return "\n".join(lines)

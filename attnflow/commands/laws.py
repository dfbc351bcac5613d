"""``attnflow laws FILE.npz``: the conservation laws on a saved trajectory (e.g. checkpoints
of a PyTorch run), with each law's preconditions measured on the run."""

from __future__ import annotations

import json
import sys

from attnflow.explain_run import add_arguments as add_explain_arguments
from attnflow.explain_run import explain, option_problem

#: Default relative drift accepted: gradient descent drifts by O(learning rate).
DEFAULT_TOLERANCE = 1e-2


def add_parser(sub):
    p = sub.add_parser("laws", help="check the laws on a saved trajectory (.npz)",
                       description="Check every law on the snapshots of a trajectory file "
                                   "(format in the README); per law: preconditions, relative "
                                   "drift, verdict. Exit 1 if an applicable law is violated.")
    p.add_argument("file", metavar="FILE.npz", help="trajectory file")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"relative drift accepted (default {DEFAULT_TOLERANCE:g}; gradient "
                        f"descent drifts in proportion to its learning rate)")
    add_explain_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from numeric.laws import check_laws
    from numeric.trajectory import Trajectory

    if option_problem(args):
        print(option_problem(args), file=sys.stderr)
        return 2
    try:
        traj = Trajectory.load(args.file)
    except (ValueError, OSError) as e:
        print(f"attnflow laws: cannot read {args.file}: {e}")
        return 2
    reports = check_laws(traj, args.tolerance)
    report = {"file": str(args.file), "snapshots": len(traj),
              "time": [float(traj.time[0]), float(traj.time[-1])],
              "classifier": traj.spec.classifier, "trainable": list(traj.spec.trained),
              "trainable_inferred": traj.trainable_inferred, "tolerance": args.tolerance,
              "ok": all(r.verdict != "violated" for r in reports),
              "laws": [r.to_dict() for r in reports]}
    print(format_report(report))
    explanation, text, status = explain(args, traj)
    if status == 2:
        print(text, file=sys.stderr)
        return 2
    if text:
        print(text)
    if explanation is not None:
        report["explanation"] = explanation
        report["ok"] = status == 0
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    if explanation is not None:
        return status
    return 0 if report["ok"] else 1


def format_report(report: dict) -> str:
    inferred = " (inferred: the parameters that move)" if report["trainable_inferred"] else ""
    lines = [f"{report['file']}: {report['snapshots']} snapshots, τ from {report['time'][0]:g} "
             f"to {report['time'][1]:g}; {report['classifier']} classifier; trainable "
             f"{report['trainable']}{inferred}"]
    for law in report["laws"]:
        drift = law["relative_drift"]
        drift = "undefined" if drift is None else f"{drift:.2e}"
        allowed = "n/a" if law["allowed"] is None else f"{law['allowed']:.2e}"
        lines.append(f"\n{law['law']}: {law['verdict'].upper()} — relative drift {drift}, "
                     f"allowed {allowed} (tolerance {law['tolerance']:g} + rounding floor) "
                     f"at {law['worst_component']}")
        lines.append(f"  {law['statement']}")
        for c in law["conditions"]:
            measured = "n/a" if c["measured"] is None else f"{c['measured']:.2e}"
            lines.append(f"  [{'ok' if c['holds'] else 'FAILS'}] {c['name']}: {c['statement']}"
                         f" — measured {measured}" + (f" ({c['detail']})" if c["detail"] else ""))
    lines.append("\nattnflow laws: " + ("no applicable law is violated" if report["ok"]
                                        else "an applicable law is VIOLATED"))
    return "\n".join(lines)

"""``attnflow laws FILE.npz``: the conservation laws on a saved trajectory (e.g. checkpoints
of a PyTorch run), with each law's preconditions measured on the run."""

from __future__ import annotations

import sys

from attnflow.explain_run import add_arguments as add_explain_arguments
from attnflow.explain_run import explain, option_problem, plan
from attnflow.options import nonnegative_finite_float, output_file

#: Default relative drift accepted: gradient descent drifts by O(learning rate).
DEFAULT_TOLERANCE = 1e-2


def add_parser(sub):
    p = sub.add_parser("laws", help="check the laws on a saved trajectory (.npz)",
                       description="Check every law on the snapshots of a trajectory file "
                                   "(format in the docs); per law: preconditions, relative "
                                   "drift, verdict. Exit status 0 if some law was checked and "
                                   "none is violated, 1 if an applicable law is violated, 2 if "
                                   "the file is unreadable, 3 if no law could be checked (one "
                                   "snapshot, nothing moved, preconditions fail).")
    p.add_argument("file", metavar="FILE.npz", help="trajectory file")
    p.add_argument("--json", metavar="FILE", type=output_file,
                   help="write the report as JSON to FILE (never the input file)")
    p.add_argument("--tolerance", type=nonnegative_finite_float, default=DEFAULT_TOLERANCE,
                   help=f"relative drift accepted, a finite number >= 0 (default "
                        f"{DEFAULT_TOLERANCE:g}; gradient descent drifts in proportion to "
                        f"its learning rate)")
    add_explain_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from numeric.laws import check_laws
    from numeric.outputs import OutputError, check_output_file, write_json
    from numeric.trajectory import Trajectory

    if option_problem(args):
        print(option_problem(args), file=sys.stderr)
        return 2
    if args.json is not None:
        try:
            check_output_file(args.json, inputs=[args.file])
        except OutputError as e:
            print(f"attnflow laws: --json: {e}", file=sys.stderr)
            return 2
    try:
        traj = Trajectory.load(args.file)
    except (ValueError, OSError) as e:
        print(f"attnflow laws: cannot read {args.file}: {e}", file=sys.stderr)
        return 2
    reports = check_laws(traj, args.tolerance)
    violated = [r.law for r in reports if r.verdict == "violated"]
    todo = None
    # one snapshot: no interval to replay, and nothing to explain
    if args.lr is not None and len(traj) > 1:
        # every option against the file (step counts, the replay's estimated time) before
        # anything is printed or replayed
        todo, problem = plan(args, traj, violated)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    report = laws_report(args.file, traj, reports, args.tolerance)
    print(format_report(report))
    if todo is not None:
        explanation, text, status = explain(traj, todo, violated, args.jobs)
        print(text)
        # with the optimizer stated, the verdict is whether every drift is explained; a run
        # whose laws could not be checked is never "explained" (a replay that moves while
        # the snapshots stand still is a real mismatch: status 1); a checkpoint-only
        # estimate is no verdict, so the laws' own verdict stands
        report["explanation"] = explanation
        if explanation["verdict"] == "estimate" or (report["verdict"] == "not checked"
                                                    and status == 0):
            status = EXIT_STATUS[report["verdict"]]
        report["ok"] = status == 0
    else:
        status = EXIT_STATUS[report["verdict"]]
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return status


#: Exit status per overall verdict (README, "Exit statuses").
EXIT_STATUS = {"holds": 0, "violated": 1, "not checked": 3}


def laws_report(file, traj, reports, tolerance: float) -> dict:
    """The JSON report: ``verdict`` "violated" if any law is, else "holds" if some law was
    checked and holds, else "not checked" (with the ``reason``); ``ok`` = "holds"."""
    verdicts = [r.verdict for r in reports]
    if "violated" in verdicts:
        verdict, reason = "violated", None
    elif "holds" in verdicts:
        verdict, reason = "holds", None
    else:
        verdict = "not checked"
        reason = "no law could be checked: " + "; ".join(
            f"{r.law} {r.verdict} ({r.reason})" for r in reports)
    return {"file": str(file), "snapshots": len(traj),
            "time": [float(traj.time[0]), float(traj.time[-1])],
            "architecture": traj.spec.architecture,
            "classifier": traj.spec.classifier if traj.spec.architecture == "paper" else None,
            "model": _model_text(traj.spec), "trainable": list(traj.spec.trained),
            "trainable_inferred": traj.trainable_inferred,
            "precision": traj.precision.to_dict(), "tolerance": tolerance,
            "ok": verdict == "holds", "verdict": verdict, "reason": reason,
            "laws": [r.to_dict() for r in reports]}


def _model_text(spec) -> str:
    """The model in the report's header: the paper's classifier, or the architecture."""
    if spec.architecture == "paper":
        return f"{spec.classifier} classifier"
    heads = f", {spec.heads} head{'s' if spec.heads > 1 else ''}"
    return (f"{spec.architecture}{heads}, d = {spec.d}, d_head = {spec.d_head}, "
            f"τ = {spec.temperature:g}, {spec.loss}")


def format_report(report: dict) -> str:
    inferred = " (inferred: the parameters that move)" if report["trainable_inferred"] else ""
    note = report["precision"]["note"]
    stored = f"; {note}" if note else ""
    lines = [f"{report['file']}: {report['snapshots']} snapshots, τ from {report['time'][0]:g} "
             f"to {report['time'][1]:g}; {report['model']}; trainable "
             f"{report['trainable']}{inferred}{stored}"]
    for law in report["laws"]:
        if law["verdict"] == "not checked":
            lines.append(f"\n{law['law']}: NOT CHECKED — {law['reason']}")
            lines.append(f"  {law['statement']}")
            continue
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
    lines.append("\nattnflow laws: " + {
        "holds": "every law checked holds (none is violated)",
        "violated": "an applicable law is VIOLATED",
        "not checked": "NOTHING CHECKED — no law could be checked on this trajectory"}[
            report["verdict"]])
    return "\n".join(lines)

"""``attnflow conjecture EXPR``: is this quantity conserved along the derived gradient flow?"""

from __future__ import annotations

import argparse
import sys

from attnflow.options import output_file, positive_int


def add_parser(sub):
    p = sub.add_parser(
        "conjecture", help="prove or refute a candidate conserved quantity",
        description="Declare EXPR (SymPy syntax over the model's names, see the docs) as a "
                    "law, differentiate it along the derived flow and either prove it (exit 0) "
                    "or refute it with a trajectory on which it drifts beyond the integrator's "
                    "accuracy, shrunk by Hypothesis (exit 1). Exit 2: bad usage; 3: not "
                    "proved and no trajectory drifted.")
    p.add_argument("expression", metavar="EXPR")
    p.add_argument("--classifier", choices=("linear", "mlp"), default="linear")
    p.add_argument("--trainable", default="embeddings,keys,classifier",
                   help="comma-separated: embeddings, keys, query, classifier")
    p.add_argument("--assume", default="", help="comma-separated subset of A1,A2,A3")
    p.add_argument("--render", choices=("text", "md", "tex"), default="text",
                   help="how the proof steps and the residual are printed")
    p.add_argument("--max-examples", type=positive_int, default=40,
                   help="Hypothesis examples (trajectories) for the counterexample search "
                        "(default 40)")
    p.add_argument("--certificate", metavar="FILE", type=output_file,
                   help="when the audit's kernel proves it, write its audit certificate (JSON)")
    p.add_argument("--trajectory", metavar="CASE", type=_case,
                   help="rerun one counterexample trajectory (the case text a refutation "
                        "prints) and print its drift figures; no proof is attempted")
    p.set_defaults(func=run)


def _case(text: str):
    from numeric.campaign import Config

    try:
        return Config.from_text(text)
    except ValueError as why:
        raise argparse.ArgumentTypeError(str(why)) from None


def _split(text):
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _math(expr, fmt):
    import sympy as sp
    if fmt == "text":
        return str(expr)
    return f"$${sp.latex(expr)}$$" if fmt == "md" else f"\\[{sp.latex(expr)}\\]"


def run(args) -> int:
    from proofs.conjecture import declared, prove

    trainable, assume = _split(args.trainable), _split(args.assume)
    try:
        if args.trajectory is not None:
            law, expanded = declared(args.expression, args.classifier, trainable, assume)
            _check_case(args.trajectory, args.classifier, trainable)
        else:
            verdict = prove(args.expression, args.classifier, trainable, assume,
                            max_examples=args.max_examples)
            law, expanded = verdict.law, verdict.trainable
    except ValueError as exc:
        print(f"attnflow conjecture: {exc}", file=sys.stderr)
        return 2
    print(f"candidate: Q = {args.expression}")
    print(f"model: {args.classifier} classifier, cross-entropy; trained: "
          f"{', '.join(expanded)}; assumptions used: "
          f"{', '.join(x.name for x in law.assumptions)}")
    if args.trajectory is not None:
        return rerun(law, args, assume)
    for what, expr in verdict.steps:
        print(f"- {what}:\n    {_math(expr, args.render)}")
    how = f", by the {verdict.method}" if verdict.proved else ""
    print(f"verdict: {verdict.status}{how} ({verdict.seconds:.1f} s)")
    if args.certificate:
        if verdict.kernel is None:
            print("no certificate: only a conjecture the audit's kernel proves gets one")
        else:
            from proofs.conjecture import write_certificate
            print(f"audit certificate: {write_certificate(verdict, args.certificate)}")
    if verdict.proved:
        pass  # the proof above; a search that found nothing adds nothing to it
    elif verdict.search is not None:
        print(_search_report(verdict.search, args, trainable, assume))
    elif verdict.not_searched:
        print(f"no counterexample search: {verdict.not_searched}")
    return verdict.exit_code


def _check_case(config, classifier, trainable):
    """The case must be a configuration of the candidate's model (its classifier and
    trainable set), or its drift says nothing about the candidate."""
    from proofs.counterexample import config_trainable

    if config.classifier != classifier:
        raise ValueError(f"--trajectory has classifier={config.classifier}, the candidate "
                         f"--classifier {classifier}")
    if tuple(config.trainable) != config_trainable(trainable):
        raise ValueError(f"--trajectory trains {'+'.join(config.trainable) or 'none'}, the "
                         f"candidate --trainable {','.join(trainable)}")


def _search_report(search, args, trainable, assume) -> str:
    n = search.trajectories
    how = (f"Hypothesis, {n} {'trajectory' if n == 1 else 'trajectories'} ({search.stalled} "
           f"stalled, {search.judged} judged) in {search.seconds:.1f} s")
    if search.found is None and not search.judged:
        return (f"no trajectory could judge the candidate ({how}, {search.max_examples} "
                f"examples: each stalled, failed an assumed precondition or stood still); "
                f"nothing was compared")
    if search.found is None:
        return (f"none of the {search.judged} judged trajectories drifted beyond the "
                f"integrator's accuracy ({how}, {search.max_examples} examples); the "
                f"residual above may still vanish by an identity the canonical form does "
                f"not know")
    state = "shrunk" if search.shrunk else "not fully shrunk: the trajectory cap stopped it"
    lines = [f"counterexample ({how}; {state}): {search.config.to_text()}"]
    lines += [f"  {x}" for x in search.found.figures()]
    lines.append("  so Q drifts beyond the integrator's accuracy there; rerun: "
                 + search.command(args.expression, args.classifier, trainable, assume))
    return "\n".join(lines)


def rerun(law, args, assume) -> int:
    """One trajectory: its figures; 1 if Q drifts beyond the accuracy there, else 3 (one
    trajectory within the accuracy decides nothing)."""
    from proofs.counterexample import rerun as drift

    d = drift(law, args.classifier, assume, args.trajectory)
    print(f"case: {args.trajectory.to_text()}")
    print("\n".join(d.figures()))
    print(f"verdict on this trajectory: {d.verdict()}")
    return 1 if d.drifts else 3

"""``attnflow conjecture EXPR``: is this quantity conserved along the derived gradient flow?"""

from __future__ import annotations

from attnflow.options import output_file, positive_int


def add_parser(sub):
    p = sub.add_parser(
        "conjecture", help="prove or refute a candidate conserved quantity",
        description="Declare EXPR (SymPy syntax over the model's names, see the README) as a "
                    "law, differentiate it along the derived flow and either prove it (exit 0) "
                    "or refute it with a shrunk counterexample (exit 1). Exit 2: bad usage; "
                    "3: not proved and no counterexample found.")
    p.add_argument("expression", metavar="EXPR")
    p.add_argument("--classifier", choices=("linear", "mlp"), default="linear")
    p.add_argument("--trainable", default="embeddings,keys,classifier",
                   help="comma-separated: embeddings, keys, query, classifier")
    p.add_argument("--assume", default="", help="comma-separated subset of A1,A2,A3")
    p.add_argument("--render", choices=("text", "md", "tex"), default="text",
                   help="how the proof steps and the residual are printed")
    p.add_argument("--max-examples", type=positive_int, default=40,
                   help="Hypothesis examples for the counterexample search (default 40)")
    p.add_argument("--certificate", metavar="FILE", type=output_file,
                   help="when the audit's kernel proves it, write its audit certificate (JSON)")
    p.add_argument("--at", metavar="SPEC",
                   help="rerun one counterexample (as printed by a refutation)")
    p.set_defaults(func=run)


def _split(text):
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _math(expr, fmt):
    import sympy as sp
    if fmt == "text":
        return str(expr)
    return f"$${sp.latex(expr)}$$" if fmt == "md" else f"\\[{sp.latex(expr)}\\]"


def run(args) -> int:
    from proofs.conjecture import DRIFT, Example, drift_rate, prove

    trainable, assume = _split(args.trainable), _split(args.assume)
    try:
        at = Example.parse(args.at) if args.at else None
        verdict = prove(args.expression, args.classifier, trainable, assume,
                        search=at is None, max_examples=args.max_examples)
    except ValueError as exc:
        print(f"attnflow conjecture: {exc}")
        return 2
    print(f"candidate: Q = {args.expression}")
    print(f"model: {args.classifier} classifier, cross-entropy; trained: "
          f"{', '.join(verdict.trainable)}; assumptions used: "
          f"{', '.join(x.name for x in verdict.law.assumptions)}")
    for what, expr in verdict.steps:
        print(f"- {what}:\n    {_math(expr, args.render)}")
    if at is not None:
        rate = drift_rate(verdict.law, args.classifier, verdict.trainable, at)
        print(f"at {args.at}: |dQ/dτ| / (‖∇Q‖‖θ̇‖) = {rate:.3e} (exact jets, 50 digits)")
        return 1 if rate > DRIFT else 0
    how = f", by the {verdict.method}" if verdict.proved else ""
    print(f"verdict: {verdict.status}{how} ({verdict.seconds:.1f} s)")
    if args.certificate:
        if verdict.kernel is None:
            print("no certificate: only a conjecture the audit's kernel proves gets one")
        else:
            from proofs.conjecture import write_certificate
            print(f"audit certificate: {write_certificate(verdict, args.certificate)}")
    if verdict.counterexample:
        ex = verdict.counterexample["example"]
        print(f"counterexample (shrunk by Hypothesis): {ex}\n  dQ/dτ ≠ 0 there: relative rate "
              f"{verdict.counterexample['relative_rate']:.3e}, so Q drifts\n  rerun: "
              + ex.command(args.expression, args.classifier, trainable, assume))
    elif not verdict.proved:
        print("no counterexample found at the sizes searched; the residual above may still "
              "vanish by an identity the canonical form does not know")
    return verdict.exit_code

"""``attnflow conjecture EXPR``: is this quantity conserved along the derived gradient flow?"""

from __future__ import annotations

import argparse
import sys

from attnflow.options import output_file, positive_int

SYNTAX = """\
EXPR is read by attnflow's own grammar (nothing is evaluated), at word level:
  arrays     V[w,k] embedding of word w, K[w,r] its key, s[w] its score, q[r] the query,
             U[e,k] the linear classifier; W1[n,k], b1[n], W2[e,n], b2[e] the MLP
             (each index a letter of its axis's kind; a fixed entry such as U[0,k] is not)
  indices    w, w_x, w_y (word), k, l (embedding), r, t (key), e (class), n (hidden)
  sizes      W (words), d, d_key, C, H, L
  constants  QQ = ||q||^2, c (common non-topic score, needs --assume A1,A2,A3),
             m (non-topic words per sentence, needs --assume A3)
  numbers    2, 0.5, 1/3 (exact); exponents are integers from -8 to 8
  operators  + - * / ^ (or **), parentheses, Sum(f, (k,0,d-1)) over an index's full
             range, exp(f), log(f)
Free indices are the law's components. Quote EXPR for the shell; if it starts with
'-', put -- before it.

examples:
  attnflow conjecture 'q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))' --trainable query,keys
  attnflow conjecture 'Sum(U[e,k],(e,0,C-1))'
  attnflow conjecture 'Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/m)/QQ' \\
      --assume A1,A2,A3
"""


def add_parser(sub):
    p = sub.add_parser(
        "conjecture", help="prove or refute a candidate conserved quantity",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SYNTAX,
        description="Declare EXPR (syntax below) as a law, differentiate it along the derived\n"
                    "flow and either prove it (exit 0) or refute it with a trajectory on which\n"
                    "it drifts beyond the integrator's accuracy, shrunk by Hypothesis (exit 1).\n"
                    "Exit 2: bad usage (EXPR outside the syntax, or a constant). Exit 3: not\n"
                    "proved and no trajectory drifted; TRIVIAL (nothing EXPR reads trains);\n"
                    "or proved without the --certificate asked for.")
    p.add_argument("expression", metavar="EXPR", help="the candidate quantity (syntax below)")
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
                   help="write the audit certificate of the proof (JSON); a proof the audit's "
                        "kernel did not re-check has none (exit 3, saying why)")
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
    from proofs.conjecture import candidate_text, declared, no_certificate, prove

    trainable, assume = _split(args.trainable), _split(args.assume)
    try:
        if args.trajectory is not None:
            law, expanded = declared(args.expression, args.classifier, trainable, assume)
            _check_case(args.trajectory, args.classifier, trainable)
            text = candidate_text(law)
        else:
            verdict = prove(args.expression, args.classifier, trainable, assume,
                            max_examples=args.max_examples)
            law, expanded, text = verdict.law, verdict.trainable, verdict.expression
    except ValueError as exc:
        print(f"attnflow conjecture: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(f"candidate: Q = {text}")
    print(f"model: {args.classifier} classifier, cross-entropy; trained: "
          f"{', '.join(expanded) or 'nothing'}; assumptions used: "
          f"{', '.join(x.name for x in law.assumptions)}")
    for x in law.assumptions:
        print(f"  {x.name}: {x.statement}")
    if args.trajectory is not None:
        return rerun(law, args, assume)
    for what, expr in verdict.steps:
        print(f"- {what}:\n    {_math(expr, args.render)}")
    how = f", by the {verdict.method}" if verdict.proved else ""
    print(f"verdict: {verdict.status}{how} ({verdict.seconds:.1f} s)")
    if verdict.trivial:
        print(f"trivial: {verdict.trivial}")
    if args.certificate:
        why = no_certificate(verdict)
        if why:
            print(f"attnflow conjecture: no certificate written to {args.certificate}: {why}",
                  file=sys.stderr)
            if verdict.proved:
                return 3
        else:
            from proofs.conjecture import write_certificate
            print(f"audit certificate: {write_certificate(verdict, args.certificate)}")
    if verdict.proved:
        pass  # the proof above; a search that found nothing adds nothing to it
    elif verdict.search is not None:
        print(_search_report(verdict.search, text, args, trainable, assume))
    elif verdict.not_searched:
        print(f"no counterexample search: {verdict.not_searched}")
    return verdict.exit_code


def _one_line(exc) -> str:
    """An error as one line (SymPy's messages may span several)."""
    return " ".join(str(exc).split())


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


def _search_report(search, text, args, trainable, assume) -> str:
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
                 + search.command(text, args.classifier, trainable, assume))
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

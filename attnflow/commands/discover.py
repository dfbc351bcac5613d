"""``attnflow discover``: how many conservation laws, and which, for every data set."""

from __future__ import annotations

import math
import re
import sys

from attnflow.options import positive_finite_float

#: CPU seconds a run may be estimated to take before it is refused (``--max-seconds``).
MAX_SECONDS = 300.0


def add_parser(sub):
    p = sub.add_parser(
        "discover", help="count and find the conservation laws of a configuration",
        description="Count the independent conservation laws for every data set (Marcotte et "
                    "al.'s Lie-algebra criterion on the derived per-sentence gradients at small "
                    "explicit sizes, two random points) and find them among polynomials of "
                    "degree ≤ 2; with the query fixed, also the topic-structure (A1–A3) laws.")
    p.add_argument("--classifier", choices=("linear", "mlp"), default="linear")
    p.add_argument("--trainable", default="embeddings,keys,classifier")
    p.add_argument("--loss", choices=("cross-entropy", "any"), default="cross-entropy")
    p.add_argument("--size", default="words=3,d=2,d_key=2,classes=2,hidden=2,max_len=3",
                   help="explicit sizes (default: %(default)s)")
    p.add_argument("--no-closed-forms", action="store_true",
                   help="only count (skip the degree-2 ansatz)")
    p.add_argument("--max-seconds", type=positive_finite_float, default=MAX_SECONDS,
                   help="refuse sizes whose run is estimated to take longer than this many "
                        "CPU seconds (default %(default)g); sizes whose memory estimate "
                        "exceeds half of the machine's memory are always refused")
    p.set_defaults(func=run)


def parse_sizes(text: str) -> dict[str, int]:
    """``NAME=N,…`` into ``{NAME: N}``; ValueError names the item that is not one (a name
    given twice too: which value is meant cannot be guessed)."""
    sizes = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not re.fullmatch(r"[0-9]+", value.strip()):
            raise ValueError(f"--size: bad item {item.strip()!r}: expected NAME=N (N a "
                             f"whole number)")
        if name.strip() in sizes:
            raise ValueError(f"--size: {name.strip()} is given twice")
        sizes[name.strip()] = int(value)
    return sizes


def check_cost(setting, closed_forms: bool, max_seconds: float) -> None:
    """Refuse (``TooLarge``) sizes whose estimated run exceeds ``max_seconds`` of CPU or the
    memory limit, before anything is allocated."""
    from numeric.limits import TooLarge, bytes_text, count_text, memory_limit, seconds_text
    from symbolic.discover import estimate_cost

    cost = estimate_cost(setting, closed_forms)
    memory = memory_limit()
    if cost.seconds <= max_seconds and cost.bytes <= memory:
        return
    counts = cost.counts

    def bound(x):  # a lower bound where the sentence lengths were too many to sum
        return "at least " if cost.at_least and math.isfinite(x) else ""
    raise TooLarge(
        f"--size too large: {count_text(counts['trained coordinates'])} trained coordinates "
        f"and {count_text(counts['fields'])} per-sentence fields are estimated to take "
        f"{bound(cost.seconds)}{seconds_text(cost.seconds)} of CPU and "
        f"{bound(cost.bytes)}{bytes_text(cost.bytes)} of memory; the limits are "
        f"{seconds_text(max_seconds)} (--max-seconds) and {bytes_text(memory)} (half of this "
        f"machine's memory)")


def run(args) -> int:
    import os
    import time

    if "numpy" not in sys.modules:
        # The ansatz's SVD is a few thousand rows by a few hundred columns: a second BLAS
        # thread gains little there, and on a loaded 2-core machine it made the SVD 15× slower.
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
    from symbolic.discover import Setting, count_laws

    try:
        sizes = parse_sizes(args.size)
        trainable = tuple(x.strip() for x in args.trainable.split(",") if x.strip())
        setting = Setting(args.classifier, args.loss.replace("-", "_"), trainable, **sizes)
        check_cost(setting, not args.no_closed_forms, args.max_seconds)
    except (ValueError, TypeError) as exc:
        print(f"attnflow discover: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    print(setting.describe())
    try:
        count = count_laws(setting)
    except (ValueError, RuntimeError) as exc:
        print(f"attnflow discover: {exc}", file=sys.stderr)
        return 3
    print(count.summary())
    ok = True
    if not args.no_closed_forms:
        ok = _closed_forms(setting, count)
    if "query" not in setting.trained and {"embeddings", "keys"} <= set(setting.trained):
        ok = _topic(setting) and ok
    print(f"({time.perf_counter() - start:.1f} s wall, {time.process_time():.1f} s CPU)")
    return 0 if ok else 1


def _closed_forms(setting, count) -> bool:
    from proofs.conjecture import explain
    from symbolic.discover import polynomial_laws
    from symbolic.laws import LAWS

    found = polynomial_laws(setting)
    if setting.loss == "any":
        print(f"{count.laws} independent laws at generic points; {found.independent} found in "
              f"closed form (degree ≤ 2, each verified at fresh points to "
              f"{found.worst_residual:.0e}), not proved (conjectures are proved for the "
              f"cross-entropy models):")
        for law in found.laws:
            print(f"  {law}")
        return _rejected(found) and found.independent == count.laws
    why = explain(setting, found)
    proved = _independent(found, why.explained)
    print(f"{count.laws} independent laws at generic points; {found.independent} found in "
          f"closed form (degree ≤ 2, each verified at fresh points to "
          f"{found.worst_residual:.0e}), {proved} proved: each lies in the span of the "
          f"instances of these declarations, each proved along the derived flow:")
    declared = {law.name for law in LAWS}
    for name, expression, _ in why.proved:
        tag = "" if name in declared else "   [not in the project's law table before]"
        print(f"  {name}: {expression}{tag}")
    for law in why.unexplained:
        print(f"  found, verified at fresh points, but not proved (no declaration explains "
              f"it): {law}")
    verified = _rejected(found)
    if found.independent < count.laws:
        print(f"  the other {count.laws - found.independent} were not found as polynomials "
              f"of degree ≤ 2")
    elif found.independent > count.laws:
        print(f"  {found.independent} found against {count.laws} counted: the closed forms "
              f"and the count disagree")
    return verified and found.independent == count.laws and not why.unexplained


def _rejected(found) -> bool:
    """Print the proposals that failed at fresh points; True when there were none."""
    for law, residual in found.rejected:
        print(f"  proposed but NOT verified at fresh points (residual {residual:.0e}; its "
              f"rational coefficients were likely mis-read): {law}")
    return not found.rejected


def _topic(setting) -> bool:
    import sympy as sp

    from proofs.conjecture import prove
    from symbolic.discover import E_T, N_T, S_T, topic_laws

    topic = topic_laws()
    print("topic structure (A1–A3; reduced per-topic-word system; ansatz: degree ≤ 2 in "
          "N = ‖v_t‖², s = s_t, E = e^{s_t−c}):")
    ok = True
    for law in topic.laws:
        word = law.xreplace({N_T: sp.Symbol("NN"), S_T: sp.Symbol("SS"), E_T: sp.Symbol("EE")})
        text = (str(word).replace("NN", "Sum(V[w,k]**2,(k,0,d-1))").replace("SS", "s[w]")
                .replace("EE", "exp(s[w] - c)").replace("\\|q\\|^{2}", "QQ"))
        clf_trainable = ("classifier",) if "classifier" in setting.trainable else ()
        verdict = prove(text, setting.classifier, ("embeddings", "keys") + clf_trainable,
                        ("A1", "A2", "A3"), search=False)
        ok = ok and verdict.proved
        shown = str(law).replace("\\|q\\|^{2}", "‖q‖²")
        print(f"  {shown}  — as a law: {text}: {verdict.status} under A1, A2, A3")
    return ok


def _independent(found, laws) -> int:
    from symbolic.discover import _functional_rank
    return _functional_rank(laws, found.symbols, _Points(found.symbols)) if laws else 0


class _Points:
    """Random rational points for the Jacobian rank of a subset of the found laws."""

    def __init__(self, symbols):
        self.n = len(symbols)

    def point(self, seed):
        import random
        from fractions import Fraction
        rng = random.Random(seed)
        return [Fraction(rng.choice([n for n in range(-96, 97) if n]), 97)
                for _ in range(self.n)]

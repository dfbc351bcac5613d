"""``attnflow discover``: how many conservation laws, and which, for every data set."""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

from attnflow.options import positive_finite_float

#: CPU seconds a run may be estimated to take before it is refused (``--max-seconds``).
MAX_SECONDS = 300.0
#: The paper's sizes when ``--size`` is not given.
PAPER_SIZES = "words=3,d=2,d_key=2,classes=2,hidden=2,max_len=3"
#: Every other model: each of its sizes 2 (its catalogue entry's fixed sizes kept), a
#: vocabulary of 3 words, sentences of one or two tokens.
MODEL_WORDS, MODEL_MAX_LEN, MODEL_SIZE = 3, 2, 2


def add_parser(sub):
    p = sub.add_parser(
        "discover", help="count and find the conservation laws of a configuration",
        description="Count the independent conservation laws for every data set (Marcotte et "
                    "al.'s Lie-algebra criterion on the derived per-sentence gradients at small "
                    "explicit sizes, two random points), find them among polynomials of "
                    "degree ≤ 2, check them against the declared laws and say whether those "
                    "are all; for the paper's model with the query fixed, also the "
                    "topic-structure (A1–A3) laws.")
    p.add_argument("--model", default="paper",
                   help="a model of the catalogue (attnflow models) or FILE.py exposing "
                        "MODEL (default: %(default)s)")
    p.add_argument("--classifier", choices=("linear", "mlp"), default=None,
                   help="the paper's classifier (default linear)")
    p.add_argument("--trainable", default=None,
                   help="parameter names that train (default: the paper's embeddings, keys, "
                        "classifier; every parameter of another model)")
    p.add_argument("--loss", choices=("cross-entropy", "squared-error", "any"), default=None,
                   help="the loss (default: the model's first); any = every loss of the last "
                        "node (its upstream gradient one field per coordinate)")
    p.add_argument("--size", default=None,
                   help=f"explicit sizes NAME=N,… in the model's own size names, plus words "
                        f"and max_len (default: the paper's {PAPER_SIZES}; another model's "
                        f"sizes {MODEL_SIZE} each, words={MODEL_WORDS}, "
                        f"max_len={MODEL_MAX_LEN})")
    p.add_argument("--constants", default=None,
                   help="values of the model's constants NAME=P/Q,… (positive rationals; "
                        "default 1 each, e.g. the temperature tau)")
    p.add_argument("--no-closed-forms", action="store_true",
                   help="only count (skip the degree-2 ansatz and the declared laws)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the result as JSON (strict: no NaN or Infinity)")
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


def parse_constants(text: str) -> dict[str, Fraction]:
    """``NAME=P/Q,…`` into ``{NAME: Fraction}`` (positive rationals, read digit by digit)."""
    out = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        match = re.fullmatch(r"([0-9]+)(?:/([0-9]+))?", value.strip())
        if not sep or not match or (match.group(2) is not None and int(match.group(2)) == 0):
            raise ValueError(f"--constants: bad item {item.strip()!r}: expected NAME=P or "
                             f"NAME=P/Q (whole numbers, Q > 0)")
        if name.strip() in out:
            raise ValueError(f"--constants: {name.strip()} is given twice")
        value = Fraction(int(match.group(1)), int(match.group(2) or 1))
        if value <= 0:
            raise ValueError(f"--constants: {name.strip()} must be positive, not {value}")
        out[name.strip()] = value
    return out


def build_setting(args):
    """The setting the options describe (ValueError names what is wrong)."""
    from symbolic.discover import DATA_SIZES, SIZE_ALIASES, ModelSetting, Setting
    from symbolic.models import load

    trainable = (None if args.trainable is None else
                 tuple(x.strip() for x in args.trainable.split(",") if x.strip()))
    if args.model == "paper":
        if args.loss == "squared-error":
            raise ValueError("model paper has no loss 'squared-error'; expected cross-entropy "
                             "or any")
        if args.constants:
            raise ValueError("--constants: model paper has no constants")
        sizes = parse_sizes(args.size or PAPER_SIZES)
        inverse = {v: k for k, v in SIZE_ALIASES.items()}
        sizes = {inverse.get(k, k): v for k, v in sizes.items()}
        known = ("words", "d", "d_key", "classes", "hidden", "max_len")
        unknown = sorted(set(sizes) - set(known))
        if unknown:
            raise ValueError(f"--size: unknown size(s) {unknown} for model paper; expected "
                             f"some of {', '.join(known)}")
        options = {}
        if trainable is not None:
            options["trainable"] = trainable
        return Setting(args.classifier or "linear",
                       (args.loss or "cross-entropy").replace("-", "_"), **options, **sizes)
    if args.classifier is not None:
        raise ValueError(f"--classifier is the paper's option; model {args.model} has its own "
                         f"parameters")
    entry = load(args.model)
    loss = args.loss or entry.losses[0]
    if loss == "any":
        model = entry.model("abstract")
        if model.loss != "abstract":
            raise ValueError(f"model {entry.name} has no abstract loss (any); its losses: "
                             f"{', '.join(entry.losses)}")
    else:
        model = entry.model(loss)
    names = [n for n in model.sizes if n != "L"]
    sizes = {n: MODEL_SIZE for n in names}
    sizes.update(words=MODEL_WORDS, max_len=MODEL_MAX_LEN)
    sizes.update(entry.fixed)
    if args.size:
        for name, value in parse_sizes(args.size).items():
            name = SIZE_ALIASES.get(name, name)
            if name not in sizes:
                raise ValueError(f"--size: unknown size {name!r} for model {entry.name}; "
                                 f"expected some of {', '.join(names + list(DATA_SIZES))}")
            if name in entry.fixed and value != entry.fixed[name]:
                raise ValueError(f"--size: model {entry.name} fixes {name}="
                                 f"{entry.fixed[name]}")
            sizes[name] = value
    constants = {str(c): Fraction(1) for c in model.constants}
    if args.constants:
        for name, value in parse_constants(args.constants).items():
            if name not in constants:
                raise ValueError(f"--constants: unknown constant {name!r} for model "
                                 f"{entry.name}; its constants: "
                                 f"{', '.join(constants) or 'none'}")
            constants[name] = value
    trainable = tuple(p.name for p in model.params) if trainable is None else trainable
    words, max_len = sizes.pop("words"), sizes.pop("max_len")
    return ModelSetting(model, trainable, tuple((n, sizes[n]) for n in names), words, max_len,
                        tuple(sorted(constants.items())), entry.name)


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
    from symbolic.discover import count_laws

    start, cpu = time.perf_counter(), time.process_time()
    try:
        if args.json is not None:
            from numeric.outputs import check_output_file
            check_output_file(args.json)
        setting = build_setting(args)
        check_cost(setting, not args.no_closed_forms, args.max_seconds)
    except (ValueError, TypeError) as exc:
        print(f"attnflow discover: {exc}", file=sys.stderr)
        return 2
    report = _header(setting)
    print(setting.describe())
    try:
        count = count_laws(setting)
    except (ValueError, RuntimeError) as exc:
        print(f"attnflow discover: {exc}", file=sys.stderr)
        report.update(count=None, reason=str(exc))
        return _finish(args, report, 3, start, cpu)
    print(count.summary())
    report["count"] = _count_report(count)
    ok = True
    if not args.no_closed_forms:
        if setting.model_name == "paper":
            ok = _closed_forms(setting, count, report)
        else:
            ok = _declared(setting, count, report)
    if setting.model_name == "paper" and "query" not in setting.trained and \
            {"embeddings", "keys"} <= set(setting.trained):
        ok = _topic(setting, report) and ok
    print(f"({time.perf_counter() - start:.1f} s wall, {time.process_time():.1f} s CPU)")
    return _finish(args, report, 0 if ok else 1, start, cpu)


def _header(setting) -> dict:
    return {"model": setting.model_name,
            "loss": {"cross_entropy": "cross-entropy"}.get(setting.loss, setting.loss),
            "trained": list(setting.trained), "sizes": setting.sizes_text,
            "constants": {str(n): str(v) for n, v in setting.constant_values().items()},
            "setting": setting.describe()}


def _count_report(count) -> dict:
    return {"laws": count.laws, "coordinates": count.dimension, "rank": count.rank,
            "directions": count.directions, "frozen": count.frozen,
            "gap_decades": round(float(count.gap_decades), 1),
            "depth": max(r.depth for r in count.ranks.values()),
            "points": sorted(count.ranks), "route": sorted({r.route
                                                            for r in count.ranks.values()}),
            "lower_rank_at": {str(k): v for k, v in count.lower.items()}}


def _finish(args, report: dict, status: int, start: float, cpu: float) -> int:
    import time
    report.update(exit=status, seconds=round(time.perf_counter() - start, 2),
                  cpu_seconds=round(time.process_time() - cpu, 2))
    if args.json is not None:
        from numeric.outputs import OutputError, write_json
        try:
            print(f"wrote {write_json(args.json, report)}")
        except OutputError as exc:
            print(f"attnflow discover: {exc}", file=sys.stderr)
            return 2
    return status


def _law_entry(name, law, proof, declared) -> dict:
    return {"name": name, "closed_form": str(law), "proof": proof, "declared": declared}


def _statement(count_laws: int, k: int, source: str) -> tuple[str, bool]:
    if k == count_laws == 0:
        return f"no law holds at these sizes, and none is declared ({source})", True
    if k == count_laws == 1:
        return f"this declared law is the only law at these sizes ({source})", True
    if k == count_laws:
        return (f"these {k} declared laws are all the laws at these sizes ({source})", True)
    if k < count_laws:
        return (f"{count_laws - k} of the {count_laws} laws are not among the declared ones "
                f"({k} declared, {source})", False)
    return (f"the declared laws give {k} independent conserved quantities against {count_laws} "
            f"counted: the count and the declarations disagree", False)


def _closed_forms(setting, count, report) -> bool:
    from proofs.conjecture import explain
    from symbolic.discover import polynomial_laws
    from symbolic.laws import LAWS

    found = polynomial_laws(setting)
    report["closed_forms"] = _found_report(found)
    if setting.loss == "any":
        print(f"{count.laws} independent laws at generic points; {found.independent} found in "
              f"closed form (degree ≤ 2, each verified at fresh points to "
              f"{found.worst_residual:.0e}), not proved (conjectures are proved for the "
              f"cross-entropy models):")
        for law in found.laws:
            print(f"  {law}")
        report["laws"] = [_law_entry(None, law, "verified at fresh points", False)
                          for law in found.laws]
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
    verified = _against_count(found, count)
    names = _paper_names(setting, found, why)
    report["laws"] = ([_law_entry(names[k], law, "PROVED", True)
                       for k, law in enumerate(why.explained)]
                      + [_law_entry(None, law, "verified at fresh points", False)
                         for law in why.unexplained])
    report["declared"] = [{"name": n, "quantity": e, "status": "PROVED", "holds": True}
                          for n, e, _ in why.proved]
    return verified and found.independent == count.laws and not why.unexplained


def _paper_names(setting, found, why) -> list:
    """For each explained law, the proved declaration whose instances alone span it (None:
    a combination of several)."""
    from proofs import conjecture as PC
    from symbolic import laws as SL
    from symbolic.discover import fields_at

    fields, _ = fields_at(setting, 1)
    across = SL.EMBEDDING_ACROSS_CLASSIFIER
    spans = {}
    for name, _, verdict in why.proved:
        if name == across.name:
            spans[name] = PC._across_instances(across, setting, fields,
                                               PC._directions_across(setting, fields))
        else:
            spans[name] = PC._instances(verdict.law, setting, fields)
    return _names(found, why.explained, spans)


def _names(found, laws, spans: dict) -> list:
    """Per law, the first declaration whose instances span it with the products of every
    linear instance (a quadratic law plus products of linear ones keeps its name)."""
    from symbolic.discover import _in_span, products

    linear = products([p for inst in spans.values() for p in inst
                       if all(len(m) == 1 for m in p)])
    out = []
    for law in laws:
        cf = found.coefficients[found.laws.index(law)]
        out.append(next((name for name, inst in spans.items()
                         if _in_span(cf, inst + linear)), None))
    return out


def _found_report(found) -> dict:
    return {"found": found.independent, "worst_residual": float(found.worst_residual),
            "singular_gap_decades": round(float(found.singular_gap), 1),
            "not_verified": [{"closed_form": str(law), "residual": float(r)}
                             for law, r in found.rejected]}


def _declared(setting, count, report) -> bool:
    """Any model but the paper's: closed forms, the declared laws checked, and whether they
    are all the laws."""
    from proofs.discovered import match
    from symbolic.discover import fields_at, polynomial_laws

    found = polynomial_laws(setting)
    report["closed_forms"] = _found_report(found)
    fields, _ = fields_at(setting, 1)
    matched = match(setting, found, fields.frozen_values, fields)
    print(f"{count.laws} independent laws at generic points; {found.independent} found in "
          f"closed form (degree ≤ 2, each verified at fresh points to "
          f"{found.worst_residual:.0e}, singular-value gap {found.singular_gap:.0f} decades)")
    print(f"declared laws ({matched.source}):")
    for law in matched.declared:
        print(f"  {law.name}: {law.text} — {law.status}")
    if not matched.declared:
        print("  none")
    for law in matched.unexplained:
        print(f"  found, verified at fresh points, not among the declared ones: {law}")
    verified = _against_count(found, count)
    statement, complete = _statement(count.laws, matched.declared_rank, matched.source)
    print(statement)
    names = _names(found, matched.explained,
                   {law.name: law.instances for law in matched.declared if law.holds})
    report["declared"] = [{"name": x.name, "quantity": x.text, "status": x.status,
                           "holds": x.holds, "exact_check": x.exact} for x in matched.declared]
    report["laws"] = ([_law_entry(names[k], law, "exact (declared laws checked exactly)",
                                  True) for k, law in enumerate(matched.explained)]
                      + [_law_entry(None, law, "verified at fresh points", False)
                         for law in matched.unexplained])
    report.update(declared_independent=matched.declared_rank, complete=complete,
                  statement=statement)
    return (verified and complete and not matched.unexplained
            and found.independent == count.laws)


def _against_count(found, count) -> bool:
    """Print the rejected proposals and how the closed forms found compare with the count;
    True when no proposal was rejected."""
    verified = _rejected(found)
    if found.independent < count.laws:
        print(f"  the other {count.laws - found.independent} were not found as polynomials "
              f"of degree ≤ 2")
    elif found.independent > count.laws:
        print(f"  {found.independent} found against {count.laws} counted: the closed forms "
              f"and the count disagree")
    return verified


def _rejected(found) -> bool:
    """Print the proposals that failed at fresh points; True when there were none."""
    for law, residual in found.rejected:
        print(f"  proposed but NOT verified at fresh points (residual {residual:.0e}; its "
              f"rational coefficients were likely mis-read): {law}")
    return not found.rejected


def _topic(setting, report) -> bool:
    import sympy as sp

    from proofs.conjecture import prove
    from symbolic.discover import E_T, N_T, S_T, topic_laws

    topic = topic_laws()
    print("topic structure (A1–A3; reduced per-topic-word system; ansatz: degree ≤ 2 in "
          "N = ‖v_t‖², s = s_t, E = e^{s_t−c}):")
    ok = True
    out = []
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
        out.append({"law": shown, "as_written": text, "proof": verdict.status})
    report["topic"] = out
    return ok


def _independent(found, laws) -> int:
    from symbolic.discover import functional_rank
    return functional_rank(laws, found.symbols) if laws else 0

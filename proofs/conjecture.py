"""A researcher's candidate law: declared through ``symbolic.laws``, proved or refuted.

The candidate ``Q`` (SymPy syntax over the model's names, word level) becomes a
:class:`symbolic.laws.Law`; its per-sentence rate ``dQ/dτ`` along ``symbolic.derive.flow`` is
rewritten under each stated assumption's cases, the nodes ``h`` and ``u`` written by their
definitions and ``max(x, 0) = H(x)·x`` applied, and put in canonical index form. If every case
reduces to exactly 0 the law is PROVED. Otherwise the residual is printed and a counterexample
is searched (``proofs.counterexample``): a configuration of the campaign's strategies whose
adaptive trajectory makes ``Q`` drift beyond the integrator's accuracy, found and shrunk by
Hypothesis and printed as a command that reruns it bit for bit (its ``Config`` text).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from proofs import exact
from symbolic import grammar as G
from symbolic import laws as LW
from symbolic.derive import flow
from symbolic.indexform import IExpr, fresh, kind_of
from symbolic.model import FOLDS, Model

ASSUMPTIONS = {"A1": (LW.A1,), "A2": (LW.A2,), "A3": (LW.A3,)}
PARAMS = ("embeddings", "keys", "query", "classifier")


@dataclass
class Verdict:
    expression: str  # the candidate as read, written in the syntax (never the raw text)
    law: LW.Law
    model: Model
    trainable: tuple
    assumptions: tuple
    proved: bool
    steps: list = field(default_factory=list)  # (what was done, SymPy expression)
    residual: sp.Expr | None = None
    search: object = None  # the proofs.counterexample.Search run on the residual, if any
    not_searched: str = ""  # why no search ran although the residual is not 0
    seconds: float = 0.0
    kernel: object = None  # the TheoremOutcome when the audit's kernel proved it
    method: str = ""  # how it was proved: "audit kernel" or "conjecture reduction"
    trivial: str = ""  # why the candidate is constant whatever the flow (nothing it reads moves)
    exact: object = None  # the proofs.exact.ExactCheck every PROVED must pass

    @property
    def counterexample(self):
        """The search, when it found a trajectory on which Q drifts beyond the integrator's
        accuracy (its ``found``), else None."""
        return self.search if self.search is not None and self.search.found else None

    @property
    def status(self) -> str:
        if self.proved:
            return "PROVED"
        if self.trivial:
            return "TRIVIAL"
        return "REFUTED" if self.counterexample else "NOT PROVED"

    @property
    def exit_code(self) -> int:
        return {"PROVED": 0, "REFUTED": 1, "NOT PROVED": 3, "TRIVIAL": 3}[self.status]


def candidate_law(expression: str, classifier: str, trainable, assume=()) -> LW.Law:
    """Declare ``expression`` (text in the syntax of ``symbolic.grammar``, read over the
    model's names, never evaluated) as a law ``Q = expression − 0``; ValueError names an
    unknown symbol or assumption, or a candidate that is constant whatever the flow."""
    unknown_asm = [a for a in assume if a not in ASSUMPTIONS]
    if unknown_asm:
        raise ValueError(f"unknown assumption(s) {unknown_asm}; expected some of "
                         f"{sorted(ASSUMPTIONS)}")
    model = Model(classifier)
    names = G.namespace(model)
    quantity = G.parse(expression, names)
    if "A2" in assume and "A3" not in assume:
        raise ValueError("A2 is stated with A3 (its attention closed form needs L = m + 1)")
    _check_constants(quantity, assume)
    _check_one_topic_word(quantity, assume)
    text = G.text(quantity, names)
    law = LW.declare("conjecture", f"{text} is constant", quantity, 0, models=(model,),
                     classifiers=(classifier,), assumptions=(LW.trains(*trainable),))
    _check_not_constant(law, text)
    assumptions = [training(model, trainable, law.parameters())] + [
        x for a in assume for x in ASSUMPTIONS[a]]
    return dataclasses.replace(law, assumptions=tuple(assumptions))


def candidate_text(law: LW.Law) -> str:
    """The candidate ``Q`` of ``law`` written in the syntax (what reports and rerun commands
    carry)."""
    return G.text(law.quantity, G.namespace(law.models[0]))


def training(model: Model, trainable, read) -> LW.LawAssumption:
    """``T``: the flow trains exactly ``trainable``; a parameter ``Q`` reads that is not
    among them stays frozen (the proof takes its velocity 0); a parameter ``Q`` does not read
    never enters ``dQ/dτ = Σ_θ ∂Q/∂θ·θ̇`` (and its training does not change the velocities
    of the others at a given state), so it may train or not."""
    moving = [n for n in read if n in trainable]
    frozen = tuple(n for n in read if n not in trainable)
    parts = ([f"trains {', '.join(moving)}"] if moving else []) + (
        [f"holds {', '.join(frozen)} frozen"] if frozen else [])
    text = f"a flow that {' and '.join(parts)} (the parameters Q reads)"
    others = [p.name for p in model.params if p.name not in read]
    if others:
        text += f"; {', '.join(others)}, which Q does not read, may train or not"
    return LW.LawAssumption("T", text, trained=tuple(trainable), frozen=frozen)


def _check_not_constant(law: LW.Law, text: str):
    """A candidate that reads no parameter, or whose every derivative ``∂Q/∂θ`` vanishes in
    canonical form (``V[w,k] − V[w,k]``, ``W``, ``1``), is constant whatever the flow: there
    is nothing to prove, and calling it proved would be vacuous."""
    model = law.models[0]
    read = law.parameters()
    if not read:
        raise ValueError(f"the candidate {text} reads no parameter of the model: it is a "
                         "constant, conserved by any flow, so there is nothing to prove; "
                         "write a quantity of the parameters (e.g. Sum(K[w,r],(w,0,W-1)))")
    for prm in model.params:
        if prm.name not in read:
            continue
        ref = prm.base[tuple(fresh(LW.WORD if prm.per_token and n == 0 else kind_of(x))
                             for n, x in enumerate(prm.indices))]
        try:
            slope = IExpr.from_sympy(LW.derivative(law.quantity, ref, model), FOLDS)
        except ValueError as why:
            raise ValueError(
                f"the candidate {text} is outside the index form the proofs work in: a Sum "
                "may appear to the first or second power, not higher, nor in a denominator "
                "or a log (its derivative would hold such a power); write a higher power of "
                "a sum as a product of sums over distinct indices, e.g. "
                "Sum(K[w,r],(w,0,W-1))*Sum(K[w_x,r],(w_x,0,W-1)) [" + str(why) + "]") from None
        if not slope.is_zero():
            return
    raise ValueError(f"the candidate {text} does not depend on the parameters it names "
                     "(every derivative ∂Q/∂θ is 0 in canonical form): it is a constant, so "
                     "there is nothing to prove")


def _check_one_topic_word(quantity, assume):
    """A2 and A3 describe one topic word ``w`` (where it sits, what the other words are). A
    candidate with a second free word index ``w_x`` would need the cases "holds w, not w_x",
    "holds w_x, not w", … which these rewrites do not make (they would take ``w_x = w``), so
    such a candidate is refused under A2/A3 rather than proved for the wrong sentences."""
    topic = [a for a in ("A2", "A3") if a in assume]
    words = sorted((x for x in LW._free_indices(quantity) if kind_of(x) is LW.WORD), key=str)
    if not topic or len(words) < 2:
        return
    main = LW.w if LW.w in words else words[0]  # the word the rewrites would place
    extra = ", ".join(str(x) for x in words if x != main)
    verb = "speak" if len(topic) > 1 else "speaks"
    raise ValueError(f"{' and '.join(topic)} {verb} of one topic word, but the candidate has "
                     f"the free word indices {', '.join(map(str, words))}: the extra word "
                     f"index {extra} would silently be taken equal to {main}; state the "
                     f"candidate for one word, or drop --assume {','.join(topic)}")


#: The constants a candidate may read, and the assumption that defines each.
CONSTANTS = {LW.c: ("A2", "the common non-topic score"),
             LW.m: ("A3", "the number of non-topic words per sentence")}


def _check_constants(quantity, assume):
    """``c`` is defined only under A2 and ``m`` only under A3: elsewhere there is no such
    number to evaluate (nor to hold fixed in the proof)."""
    for sym, (needs, what) in CONSTANTS.items():
        if quantity.has(sym) and needs not in assume:
            raise ValueError(f"the candidate uses {sym} ({what}), which is defined only "
                             f"under {needs}: add --assume {'A1,A2,A3' if needs == 'A2' else 'A3'}")


def _expand_nodes(expr, model: Model, names=("h", "u")):
    """Write the named nodes by their definitions, later nodes first (``u`` reads ``h``)."""
    for node in reversed(model.nodes):
        if node.name in names:
            expr = expr.replace(
                lambda x, nd=node: isinstance(x, sp.Indexed) and x.base == nd.base,
                lambda x, nd=node: nd.definition.xreplace(dict(zip(nd.indices, x.indices))))
    return expr


def sums_to_one(expr: IExpr, used: set | None = None) -> IExpr:
    """``Σ_i a_i = 1``, ``Σ_c P_c = 1`` (softmax outputs), ``Σ_c Y_c = 1`` (one-hot label) and
    ``Σ_r q_r² = ‖q‖²``: a summed index that occurs only in one such factor is summed away.
    ``used`` collects ``"softmax"`` and ``"one-hot"`` when those identities were applied (the
    one-hot label is an assumption; the softmax sums follow from the model)."""
    from symbolic.indexform import Term, canonical
    from symbolic.model import P, Y, a, q
    used = set() if used is None else used
    terms = []
    for tm in expr.terms:
        body, summed = tm.body, list(tm.summed)
        for idx in list(summed):
            uses = [f for f in sp.Mul.make_args(body) if idx in f.free_symbols]
            if (len(uses) == 1 and isinstance(uses[0], sp.Indexed)
                    and uses[0].base in (a, P, Y) and uses[0].indices == (idx,)):
                used.add("one-hot" if uses[0].base == Y else "softmax")
                body = body.xreplace({uses[0]: 1})
                summed.remove(idx)
            elif len(uses) == 1 and uses[0] == q[idx] ** 2:  # Σ_r q_r² = ‖q‖²
                body = body.xreplace({uses[0]: LW.QQ})
                summed.remove(idx)
        terms.append(Term(tm.coeff, body, tuple(summed)))
    return canonical(terms, FOLDS)


def _attention_closed(expr, model: Model):
    """The model's attention node with A2's scores and L = m + 1 (SEN's lemma attention)."""
    from symbolic.model import a
    closed = LW.attention_closed_form(model, LW.exp_scores_a2, LW.m + 1)
    (x,) = next(nd for nd in model.nodes if nd.base == a).indices
    return expr.replace(lambda y: isinstance(y, sp.Indexed) and y.base == a,
                        lambda y: closed.xreplace({x: y.indices[0]}))


def _cases(law: LW.Law):
    """Every combination of the assumptions' cases, in the declared order."""
    lists = [list(a.cases.items()) for a in law.assumptions if a.cases]
    return list(itertools.product(*lists)) or [()]


def declared(expression: str, classifier: str, trainable, assume=()):
    """``(law, trainable)``: the candidate declared, with the classifier's trainable names
    expanded (``classifier`` of the MLP is its four arrays); ValueError on bad usage."""
    from proofs.counterexample import config_trainable
    config_trainable(trainable)  # names the campaign cannot train are an error, here
    trainable = tuple(_expand_trainable(trainable, classifier))
    if "A1" in assume and "query" in trainable:
        raise ValueError("A1 (query fixed) contradicts --trainable query")
    return candidate_law(expression, classifier, trainable, assume), trainable


def prove(expression: str, classifier: str = "linear", trainable=("embeddings", "keys",
          "classifier"), assume=(), search=True, max_examples=40, kernel=True) -> Verdict:
    """PROVED / REFUTED (with a shrunk trajectory on which Q drifts beyond the integrator's
    accuracy) / NOT PROVED / TRIVIAL (every parameter Q reads is frozen). The conjecture
    reduction runs first (fast); a residual that does not reduce to 0 is searched for such a
    trajectory (``search``, ``max_examples`` Hypothesis examples), which refutes it.
    Otherwise ``kernel`` tries the audit's generic conservation theorem (slower; preferred as
    the proof: it gives an audit certificate); ``decide`` says which proves it."""
    start = time.perf_counter()
    names = tuple(trainable)  # as given: what a Config trains (the MLP's arrays as one)
    law, trainable = declared(expression, classifier, names, assume)
    model = law.models[0]
    verdict = Verdict(candidate_text(law), law, model, trainable, tuple(assume), False,
                      trivial=_frozen(law, trainable))
    if not verdict.trivial:
        steps, residuals, used = reduction(law, model, classifier, trainable, assume)
        verdict.law = law = _with_used(law, used)
        verdict.steps, verdict.residual = steps, residuals[0] if residuals else None
        if residuals and search:
            _search(verdict, classifier, names, max_examples)
        outcome = kernel_proof(law, classifier, assume, used) \
            if kernel and verdict.counterexample is None else None
        decide(verdict, outcome, residuals)
    verdict.seconds = time.perf_counter() - start
    return verdict


def decide(verdict: Verdict, outcome, residuals, trained=None) -> None:
    """The one place a conjecture is PROVED: by the audit kernel (``outcome``, every step of
    the generic conservation theorem re-checked), else by the conjecture reduction when every
    case reduced to exactly 0 (``residuals`` empty) — and then only if the exact check on the
    explicit model passes too (along ``trained`` when given: the exact trained arrays)."""
    if outcome is not None:
        verdict.steps = [(f"{o.step.name} [{o.step.kind}, {o.status}]: {o.step.claim}",
                          o.detail) for o in outcome.steps]
        verdict.proved, verdict.kernel, verdict.method = True, outcome, "audit kernel"
        verdict.residual = None
    elif not residuals:
        verdict.proved, verdict.method = True, "conjecture reduction"
    if verdict.proved:
        exact.confirm(verdict, trained)


def _frozen(law: LW.Law, trainable) -> str:
    """Why ``Q`` is constant along any flow of ``trainable`` (every parameter it reads is
    frozen), or "" when something it reads trains."""
    read = law.parameters()
    if set(read) & set(trainable):
        return ""
    return (f"every parameter Q reads ({', '.join(read)}) is frozen, so Q is constant "
            "because nothing it reads moves; nothing is proved about the dynamics (train one "
            "of them with --trainable)")


def _with_used(law: LW.Law, used) -> LW.Law:
    """``law`` with the one-hot label among its assumptions when the reduction used it."""
    if "one-hot" not in used or any(x.name == LW.ONE_HOT.name for x in law.assumptions):
        return law
    return dataclasses.replace(law, assumptions=law.assumptions + (LW.ONE_HOT,))


def prove_along(expression: str, classifier: str, trained, assume=()) -> Verdict:
    """The conjecture reduction alone, along ``flow(model, trained)`` with ``trained`` the
    model's own parameter names exactly as they train (the MLP's arrays one by one, as a
    ``discover`` setting trains them; ``prove`` only knows the campaign's names, where
    ``classifier`` is all four arrays). PROVED when every case of the assumptions reduces
    ``dQ/dτ`` to 0, TRIVIAL when nothing Q reads trains, else NOT PROVED (no search, no
    kernel); ValueError on bad usage."""
    start = time.perf_counter()
    model = Model(classifier)
    names = {prm.name for prm in model.params}
    unknown = [n for n in trained if n not in names]
    if unknown:
        raise ValueError(f"unknown trained parameter(s) {unknown} of the {classifier} model; "
                         f"expected some of {sorted(names)}")
    if "A1" in assume and "query" in trained:
        raise ValueError("A1 (query fixed) contradicts a trained query")
    trained = tuple(trained)
    law = candidate_law(expression, classifier, trained, assume)
    verdict = Verdict(candidate_text(law), law, law.models[0], trained, tuple(assume), False,
                      trivial=_frozen(law, trained))
    if not verdict.trivial:
        steps, residuals, used = reduction(law, law.models[0], classifier, trained, assume)
        verdict.law = _with_used(law, used)
        verdict.steps, verdict.residual = steps, residuals[0] if residuals else None
        decide(verdict, None, residuals, trained)
    verdict.seconds = time.perf_counter() - start
    return verdict


def reduction(law: LW.Law, model: Model, classifier: str, trainable, assume):
    """``(steps, residuals, used)``: the rate along the derived flow, then per case of the
    assumptions the reduced rate; the nonzero ones are the residuals; ``used`` names the
    identities of :func:`sums_to_one` applied (``"one-hot"``: the label assumption)."""
    rate = LW.sentence_rate(law, model, flow(model, trainable))
    steps = [("dQ/dτ per sentence along the derived flow (chain rule on the declaration)",
              rate.to_sympy())]
    residuals, used = [], set()
    for case in _cases(law):
        expr = rate.to_sympy()
        for _label, rewrite in case:
            expr = IExpr.from_sympy(rewrite(expr, model), FOLDS).to_sympy()
        if "A2" in assume:  # lemma attention: a_x in closed form under A2 and A3
            expr = IExpr.from_sympy(_attention_closed(expr, model), FOLDS).to_sympy()
        if classifier == "mlp":  # lemma relu: o_n = H(u_n) u_n
            expr = LW.LEMMAS["relu"].rewrite(expr, model, None)
        expr = IExpr.from_sympy(_expand_nodes(expr, model), FOLDS)
        expr = sums_to_one(expr, used)
        reduced = expr.to_sympy()
        if not expr.is_zero() and "A2" in assume:
            # A2 also says the topic token's score is s_t (e^{−s_p} included): s_p = s_t.
            from symbolic.model import s as score
            reduced = sp.cancel(sp.together(sp.powsimp(
                reduced.xreplace({score[LW.p]: LW.s_t}), combine="exp")))
        label = ", ".join(x for x, _ in case) or "no case split"
        steps.append((f"case [{label}]: assumptions applied, h and u written by their "
                      f"definitions, Σ_i a_i = Σ_c P_c = Σ_c Y_c = 1, Σ_r q_r² = ‖q‖², "
                      f"canonical form",
                      reduced))
        if reduced != 0:
            residuals.append(reduced)
    return steps, residuals, used


# --- the counterexample search on a residual ---------------------------------------------------

def _search(verdict: Verdict, classifier: str, names, max_examples: int):
    """A trajectory on which the candidate drifts beyond the integrator's accuracy
    (``proofs.counterexample``), kept in ``verdict.search``; a candidate the law printer
    cannot evaluate is not searched (``verdict.not_searched`` says why)."""
    from proofs.counterexample import NotEvaluable, search
    try:
        verdict.search = search(verdict.law, classifier, names, verdict.assumptions,
                                max_examples=max_examples)
    except NotEvaluable as why:
        verdict.not_searched = str(why)


def no_certificate(verdict: Verdict) -> str:
    """Why ``verdict`` has no audit certificate, or "" when it has one."""
    if verdict.kernel is not None:
        return ""
    if verdict.proved:
        return ("proved by the conjecture reduction only: the audit kernel did not re-check "
                "its conservation theorem, and only a kernel-checked theorem is certified")
    return f"the candidate is {verdict.status}, and only a proved conjecture is certified"


def write_certificate(verdict: Verdict, path):
    """The audit certificate (``attnflow-audit-certificate/1``) of a conjecture the audit's
    kernel proved: its theorem (statement and assumptions: the trainable set, the parameters
    held frozen, the label assumption when used) and steps, with ``derive --check`` and the
    derivation hash. ValueError says why there is none."""
    from datetime import datetime, timezone

    from proofs import audit
    why = no_certificate(verdict)
    if why:
        raise ValueError(f"no certificate: {why}")
    report = audit.AuditReport((verdict.kernel,), audit.check_sync(), audit.derivation_hash(),
                               audit.versions(), verdict.kernel.seconds,
                               datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return audit.write_certificate(report, path)


def kernel_law(law: LW.Law, classifier: str, assume, used=()) -> LW.Law:
    """The candidate with what the audit's generic theorem needs: the lemmas (attention under
    A2, relu for the MLP), the nodes written by their definitions, and the normaliser that
    knows the softmax sums when the reduction needed them or the one-hot label (``used``)."""
    lemmas = (("attention",) if "A2" in assume else ()) + (
        ("relu",) if classifier == "mlp" else ())
    expand = ("u", "h") if classifier == "mlp" else ("h",)
    order = {"A1": 0, "T": 1, "A3": 2, "A2": 3}  # the order the SEN declaration applies them
    return dataclasses.replace(
        law, a=_split_exp(law.a), b=_split_exp(law.b),
        assumptions=tuple(sorted(law.assumptions, key=lambda x: order.get(x.name, 9))),
        lemmas=lemmas, expand=expand if "A2" not in assume else (),
        normaliser="canonical-cancel" if "A2" in assume else
        "canonical-softmax-sums" if set(used) & {"softmax", "one-hot"} else "canonical")


def _split_exp(expr):
    """``e^{x + y} = e^x e^y`` (so ``e^{s_w − c}`` meets A2's rewriting of ``e^{s_w}``)."""
    return expr.replace(sp.exp, lambda x: sp.Mul(*[sp.exp(t) for t in sp.Add.make_args(x)]))


def kernel_proof(law: LW.Law, classifier: str, assume, used=()):
    """``proofs.conservation.conservation_theorem`` of the candidate, re-checked by the
    audit's kernel; its outcome if every step passes, else None."""
    from proofs.conservation import conservation_theorem
    from proofs.kernel import check_theorem
    try:
        theorem = conservation_theorem(kernel_law(law, classifier, assume, used),
                                       name=f"conjecture-{_slug(law.statement)}")
        outcome = check_theorem(theorem)
    except (ValueError, KeyError, TypeError, NotImplementedError):
        return None
    return outcome if outcome.ok else None


def _slug(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _expand_trainable(trainable, classifier):
    mlp = ("hidden_weight", "hidden_bias", "output_weight", "output_bias")
    for name in trainable:
        if name == "classifier" and classifier == "mlp":
            yield from mlp
        else:
            yield name


# --- explicit sizes (the instances discover compares with) -----------------------------------

@dataclass(frozen=True)
class Example:
    """Explicit sizes (and, for callers that need one, a data set and a seed)."""

    words: int
    d: int
    d_key: int
    classes: int
    hidden: int
    sentences: tuple  # ((word ids), label), …
    seed: int


def instance(law: LW.Law, ex: Example, component: dict):
    """``Q`` at explicit sizes over the coordinate symbols of ``symbolic.discover``."""
    from symbolic import model as M
    from symbolic.discover import coordinate_symbol
    sizes = {LW.n_words: ex.words, M.d: ex.d, M.d_key: ex.d_key, M.C: ex.classes,
             M.H: ex.hidden}
    expr = LW.unfold_norms(law.quantity).xreplace(component).xreplace(sizes)
    score = next(iter(LW.word_nodes(law.models[0]).values()))
    expr = expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == score.base,
                        lambda x: score.definition.xreplace({score.indices[0]: x.indices[0]}))
    expr = expr.xreplace(sizes).doit()
    names = {M.q: "query", M.K: "keys", M.V: "embeddings", M.U: "classifier",
             M.W1: "hidden_weight", M.b1: "hidden_bias", M.W2: "output_weight",
             M.b2: "output_bias"}
    return expr.replace(lambda x: isinstance(x, sp.Indexed),
                        lambda x: coordinate_symbol(names[x.base],
                                                    tuple(int(i) for i in x.indices)))


def _components(law, ex):
    """Every assignment of the law's component indices at the example's sizes."""
    from symbolic import model as M
    sizes = {LW.n_words: ex.words, M.d: ex.d, M.d_key: ex.d_key, M.C: ex.classes,
             M.H: ex.hidden}
    ranges = [range(int(sp.sympify(kind_of(idx).size).xreplace(sizes)))
              for idx in law.components]
    return [dict(zip(law.components, at)) for at in itertools.product(*ranges)]


# --- discovered laws explained by proved generic declarations ---------------------------------

#: Generic candidates (name, expression, classifier or None, needs the query fixed). Those that
#: ``prove`` proves for a configuration are instantiated at its explicit sizes; every law the
#: ansatz finds must lie in their span.
GENERIC = (
    ("query-key", "q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))", None, False),
    ("key-sum", "Sum(K[w,r],(w,0,W-1))", None, False),
    ("key-across-query", "q[r]*K[w,t] - q[t]*K[w,r]", None, True),
    ("classifier-embedding", "Sum(U[e,k]*U[e,l],(e,0,C-1)) - Sum(V[w,k]*V[w,l],(w,0,W-1))",
     "linear", False),
    ("classifier-sum", "Sum(U[e,k],(e,0,C-1))", "linear", False),
    ("hidden-embedding", "Sum(W1[n,k]*W1[n,l],(n,0,H-1)) - Sum(V[w,k]*V[w,l],(w,0,W-1))",
     "mlp", False),
    ("relu-unit", "Sum(W2[e,n]**2,(e,0,C-1)) - Sum(W1[n,k]**2,(k,0,d-1)) - b1[n]**2", "mlp",
     False),
    ("output-weight-sum", "Sum(W2[e,n],(e,0,C-1))", "mlp", False),
    ("output-bias-sum", "Sum(b2[e],(e,0,C-1))", "mlp", False),
)


@dataclass
class Explanation:
    proved: list  # (name, expression, Verdict) of generic laws proved for the configuration
    explained: list  # found laws in the span of the proved laws' instances
    unexplained: list  # found laws outside it


def explain(setting, found) -> Explanation:
    """Prove the generic candidates for ``setting`` and check every law in ``found`` (a
    :class:`symbolic.discover.PolynomialLaws`) against the span of their explicit instances
    (and products of linear ones), exactly over ℚ."""
    from symbolic.discover import _in_span, fields_at, products

    fields, _ = fields_at(setting, 1)
    # proved along the flow of exactly the setting's trained arrays: mapping any trained MLP
    # array to "classifier" proved relu-unit with all four training, while a frozen b1
    # breaks it (audit B, finding 2)
    names = setting.trained
    assume = () if "query" in names else ("A1",)
    proved, span = [], []
    for name, expression, classifier, fixed_query in GENERIC:
        if (classifier not in (None, setting.classifier)) or (fixed_query and not assume):
            continue
        law = candidate_law(expression, setting.classifier, names)
        if not set(law.parameters()) & set(names):
            continue  # every parameter it reads is frozen: trivially constant
        try:
            verdict = prove_along(expression, setting.classifier, names,
                                  assume if fixed_query else ())
        except ValueError:
            continue
        if verdict.proved:
            proved.append((name, expression, verdict))
            span += _instances(verdict.law, setting, fields)
    across = _across_classifier(setting, fields)
    if across is not None:
        proved.append(across[0])
        span += across[1]
    linear = [p for p in span if all(len(m) == 1 for m in p)]
    span = span + products(linear)
    explained, unexplained = [], []
    symbols = found.symbols
    for law in found.laws:
        (explained if _in_span(_as_dict(law, symbols), span) else unexplained).append(law)
    return Explanation(proved, explained, unexplained)


def _instances(law, setting, fields) -> list[dict]:
    """Every component of ``law`` at the setting's sizes, frozen coordinates substituted,
    constants dropped, as ``{monomial index tuple: Fraction}``."""
    from symbolic.discover import coordinate_symbol
    ex = Example(setting.words, setting.d, setting.d_key, setting.classes, setting.hidden,
                 (), 0)
    trained = [coordinate_symbol(*c) for c in setting.coordinates[:fields.n]]
    frozen = {coordinate_symbol(*c): sp.Rational(v.numerator, v.denominator)
              for c, v in fields.frozen_values.items()
              if c in setting.coordinates[fields.n:]}
    out = []
    for component in _components(law, ex):
        poly = sp.expand(instance(law, ex, component).xreplace(frozen))
        as_dict = _as_dict(poly, trained)
        if as_dict:
            out.append(as_dict)
    return out


def _as_dict(poly, symbols) -> dict:
    out = {}
    for exps, cf in sp.Poly(poly, *symbols).as_dict().items():
        mono = tuple(i for i, e in enumerate(exps) for _ in range(e))
        if mono:
            out[mono] = Fraction(int(sp.fraction(cf)[0]), int(sp.fraction(cf)[1]))
    return out


# --- declared laws over a constant array of the run: embedding-across-classifier -------------

def _across_classifier(setting, fields):
    """``((name, text, outcome), instances)`` of the declared law embedding-across-classifier
    where it applies (linear classifier, frozen, cross-entropy, embeddings trained), else None.

    Its quantity reads a constant array Π (rows meeting every class row of the fixed U
    equally), which no conjecture over the model's names can state, so it is proved by its
    own audit theorem (the generic conservation theorem, at symbolic sizes, for any number of
    classes) and instantiated here with Π's rows an exact basis over ℚ of the directions
    orthogonal to every U_c − U_0 at the frozen values of U."""
    from symbolic import laws as SL
    law = SL.EMBEDDING_ACROSS_CLASSIFIER
    trained = set(setting.trained)
    if (setting.classifier != "linear" or setting.loss != "cross_entropy"
            or "embeddings" not in trained or "classifier" in trained):
        return None
    outcome = _across_theorem()
    if not outcome.ok:
        return None
    directions = _directions_across(setting, fields)
    text = (f"{sp.sstr(law.a)} for every row of Pi orthogonal to every U[c] − U[e] "
            f"({len(directions)} per word at these sizes" + (": " + ", ".join(
                str(tuple(n)) for n in directions) if directions else "") + ")")
    return (law.name, text, outcome), _across_instances(law, setting, fields, directions)


def _across_theorem():
    """The audit theorem conservation-embedding-across-classifier, checked by the kernel (the
    same for every setting: its sizes are symbolic). Re-checked on every call (under a second
    of CPU), never cached: a derivation changed since must not leave a stale "proved"."""
    from proofs.conservation import conservation_theorem
    from proofs.kernel import check_theorem
    from symbolic import laws as SL
    return check_theorem(conservation_theorem(SL.EMBEDDING_ACROSS_CLASSIFIER))


def _directions_across(setting, fields) -> list:
    """An exact basis (over ℚ) of ``{n : n·(U_c − U_0) = 0 for every class c}`` at the frozen
    values of U (the rows of Π at these sizes)."""
    values = fields.frozen_values
    rows = [[sp.Rational(values[("classifier", (c, k))].numerator,
                         values[("classifier", (c, k))].denominator)
             for k in range(setting.d)] for c in range(setting.classes)]
    differences = sp.Matrix([[x - y for x, y in zip(row, rows[0])] for row in rows[1:]])
    return [list(n) for n in differences.nullspace()]


def _across_instances(law, setting, fields, directions) -> list[dict]:
    """``Σ_k Π[l,k] V[w,k]`` read from the declaration at the setting's sizes, for every
    direction (as row ``l`` of Π) and every word, over the trained coordinates."""
    from symbolic import laws as SL
    from symbolic import model as M
    from symbolic.discover import coordinate_symbol
    (l_index,) = [x for x in law.components if x is not SL.w]
    trained = [coordinate_symbol(*c) for c in setting.coordinates[:fields.n]]
    out = []
    for n in directions:
        for word in range(setting.words):
            expr = law.quantity.xreplace({SL.w: word, l_index: 0, M.d: setting.d}).doit()
            expr = expr.replace(
                lambda x: isinstance(x, sp.Indexed) and x.base in (SL.Pi, M.V),
                lambda x, n=n: n[int(x.indices[1])] if x.base == SL.Pi
                else coordinate_symbol("embeddings", tuple(int(i) for i in x.indices)))
            as_dict = _as_dict(sp.expand(expr), trained)
            if as_dict:
                out.append(as_dict)
    return out

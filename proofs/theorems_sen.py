"""The persisting score–embedding-norm (SEN) identity of the paper, and the curve it implies.

Every step is SymPy working on the derivation of ``symbolic`` (the flows the engine runs), at
general sizes: tokens ``L``, embedding width ``d``, key width ``d_key``, classes, hidden width.
"""

from __future__ import annotations

import sympy as sp

from proofs import derivations as D
from proofs.conservation import _late, conservation_theorem
from proofs.derivations import QQ, G, a, c, k, l, m, p, s_t, v
from proofs.exact import statement
from proofs.kernel import Assumption, Citation, Step, Theorem, check_theorem
from proofs.normalisers import normalised
from symbolic import laws as SL

# --- the identity: the conservation theorem of the declared law ``sen`` ----------------------

#: The statement of the SEN identity: what its theorem checks, built from the declaration.
SEN_IDENTITY = statement(SL.SEN)


def sen_identity() -> Theorem:
    """Built generically from the declaration ``symbolic.laws.SEN`` (proofs/conservation.py)."""
    return conservation_theorem(SL.SEN, "sen-identity")


def sen_quantity(vv=v, score=s_t, shift=c, law: SL.Law = SL.SEN) -> sp.Expr:
    """The declared ``Q`` of one topic word written with its embedding ``vv``, its score
    ``score`` and the common non-topic score ``shift`` (read from the declaration)."""
    expr = law.quantity.xreplace({SL.s[SL.w]: score, SL.c: shift})
    expr = expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == D.V,
                        lambda x: vv[x.indices[1]])
    return expr.xreplace({k: l})


# --- assumptions of the paper for the theorems about SEN that are not conservation theorems ---
# (where SEN breaks, convergence), with content read from the declarations of symbolic/laws.py

GF = Assumption(
    "GF", "training follows the gradient flow dθ/dτ = −∇L(θ) of L = (1/|D|) Σ_χ ℓ_χ; a word's "
    "embedding and key receive, from each sentence χ, −∂ℓ_χ/∂(the copy gathered at each token "
    "where the word occurs), as the engine scatters them",
    content=_late("flow"), derivations=(D.ABSTRACT,) + D.CLASSIFIERS)
ANY_LOSS = Assumption(
    "ANY", "ℓ_χ is any differentiable function of the context h(χ); G_χ = ∂ℓ_χ/∂h is left "
    "symbolic (the abstract loss of the derivation; any classifier, trained or not)",
    content={"model": D.ABSTRACT, "classifiers": D.CLASSIFIERS})
A1 = Assumption("A1", SL.A1.statement, content={"frozen": SL.A1.frozen})
A2 = Assumption("A2", SL.A2.statement, content=dict(SL.A2.values))
A3 = Assumption(
    "A3", "every sentence holds exactly one topic word and exactly m non-topic words: "
    "L = m + 1 tokens, the topic word t at exactly one token p",
    content=dict(SL.A3.values, at_topic=SL.A3.cases["sentence holding w"]))
DEF_Q = Assumption(
    "Q", "definition (the declared law sen): Q(v_t, s_t) = ½‖v_t‖² − (s_t + e^{s_t − c}/m)/‖q‖²",
    content={"law": SL.SEN, "quantity": lambda: sen_quantity()})


def flow_embedding(scope):
    """Per sentence, the flow of the embedding at the topic token p is −a_p G_k."""
    frozen = scope.assumption("A1")["frozen"]
    trainable = tuple(x for x in ("embeddings", "keys", "query") if x not in frozen)
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"], trainable)
    return D.index_claim(D.at_topic(flows["embeddings"]), -a[p] * G[k])


def attention_from(scores_assumption: str):
    """The step: a_x = (δ_xp e^{s_t} + (1 − δ_xp) e^c) / (e^{s_t} + m e^c) for every token x,
    from the model's attention node and the scores of ``scores_assumption``, and A3."""
    def attention_closed_form(scope):
        scores = scope.assumption(scores_assumption)["scores"]
        derived = SL.attention_closed_form(D.ABSTRACT, scores, scope.assumption("A3")["tokens"])
        (x,) = D.attention_definition()[1]
        return normalised(sp.Eq(derived, D.attention_a2_a3(x), evaluate=False), "expand")
    return attention_closed_form


# --- corollary: the SEN curve ----------------------------------------------------------------

_v0 = sp.IndexedBase("v^{0}", real=True)
_s = sp.Symbol("s", real=True)
_norm_v = sp.Symbol(r"\|v_t\|^{2}", nonnegative=True)

SEN = Assumption("SEN", "the SEN identity, imported from theorem sen-identity (re-checked in "
                 "step imported): the declared quantity Q(v_t, s_t) = ½‖v_t‖² − "
                 "(s_t + e^{s_t − c}/m)/‖q‖² is constant along the flow",
                 content={"theorem": sen_identity, "quantity": sen_quantity})
START = Assumption("I0", "keys start at 0, so c = 0 and s_t(0) = 0; the topic embedding starts "
                   "at v_t(0) = v⁰ (the paper's curve: v⁰ = 0)",
                   content={"shift": 0, "score": 0, "embedding": _v0})


def _g(x):
    return x + (sp.exp(x) - 1) / m


def imported(scope):
    """The SEN identity holds: its theorem, built from the same declaration, re-checked."""
    outcome = check_theorem(scope.assumption("SEN")["theorem"]())
    if not outcome.ok:
        raise ValueError(f"theorem {outcome.theorem.name} does not hold: {outcome.failures[0]}")
    failed = sp.Symbol("failed steps of sen-identity")
    return sp.Eq(failed, 0, evaluate=False).subs(failed, len(outcome.failures))


def initial_value(scope):
    start = scope.assumption("I0")
    value = scope.assumption("SEN")["quantity"](start["embedding"], start["score"],
                                                start["shift"])
    return sp.Eq(value, sp.Rational(1, 2) * D.norm2(_v0, l) - 1 / (m * QQ), evaluate=False)


def level_set(scope):
    """2‖q‖² (Q(v_t, s_t) − Q(v⁰, 0)) = ‖q‖²‖v_t‖² − 2 g(s_t) − ‖q‖²‖v⁰‖²."""
    quantity, start = scope.assumption("SEN"), scope.assumption("I0")
    lhs = 2 * QQ * (quantity["quantity"](v, s_t, start["shift"]) - scope.step("initial").rhs)
    rhs = QQ * D.norm2(v, l) - 2 * _g(s_t) - QQ * D.norm2(_v0, l)
    return sp.Eq(lhs, rhs, evaluate=False)


def g_increasing(scope):
    return sp.Gt(sp.diff(_g(_s), _s), 0, evaluate=False)


def g_zero(scope):
    return sp.Eq(sp.Subs(_g(_s), _s, 0), 0, evaluate=False)


def curve(scope):
    """With v⁰ = 0, solve Q(v_t, s_t) = Q(0, 0) for ‖v_t‖² and take ‖q‖ times its root."""
    on_level = scope.step("level-set").rhs.xreplace({D.norm2(_v0, l): 0})
    (solution,) = sp.solve(on_level.xreplace({D.norm2(v, l): _norm_v}), _norm_v)
    return sp.Eq(sp.sqrt(QQ * solution), sp.sqrt(2 * (s_t + (sp.exp(s_t) - 1) / m)),
                 evaluate=False)


def negative_below_zero(scope):
    """g(−log(1 + w)) = −log(1 + w) − w/(m (1 + w)) < 0 for w > 0."""
    w = sp.Symbol("w", positive=True)
    return sp.Lt(_g(-sp.log(1 + w)), 0, evaluate=False)


MVT = Citation(
    "If f is a real continuous function on [a, b] which is differentiable in (a, b), then "
    "there is a point x ∈ (a, b) at which f(b) − f(a) = (b − a) f′(x).",
    "W. Rudin, Principles of Mathematical Analysis, 3rd ed. (1976), Theorem 5.10 "
    "(mean value theorem)")


def sen_curve() -> Theorem:
    steps = (
        Step("imported", "theorem sen-identity holds (re-checked now, from the declaration of "
             "the law sen that Q below is read from)", "symbolic", imported, uses=("SEN",)),
        Step("initial", "at the start Q(v⁰, 0) = ½‖v⁰‖² − 1/(m ‖q‖²) (c = 0)", "symbolic",
             initial_value, uses=("SEN", "I0")),
        Step("level-set", "2‖q‖² (Q(v_t, s_t) − Q(v⁰, 0)) = ‖q‖²‖v_t‖² − 2 g(s_t) − "
             "‖q‖²‖v⁰‖² with g(s) = s + (e^s − 1)/m; by SEN the left side stays 0",
             "symbolic", level_set, uses=("SEN", "I0", "initial", "imported")),
        Step("g-increasing", "g′(s) = 1 + e^s/m > 0 for every real s", "symbolic",
             g_increasing),
        Step("g-zero", "g(0) = 0", "symbolic", g_zero),
        Step("sign", "g(s) < 0 for every s < 0 (written s = −log(1 + w), w > 0), so "
             "‖q‖²‖v_t‖² = 2 g(s_t) ≥ 0 forces s_t ≥ 0 along the flow when v⁰ = 0",
             "symbolic", negative_below_zero),
        Step("curve", "with v⁰ = 0: ‖q‖·‖v_t‖ = sqrt(2 (s_t + (e^{s_t} − 1)/m)), the "
             "non-negative root", "symbolic", curve, uses=("SEN", "level-set")),
    )
    return Theorem(
        "sen-curve", "Corollary: the SEN curve",
        "Under the assumptions of the SEN identity, with keys starting at 0 (c = 0, "
        "s_t(0) = 0) and the topic embedding at v⁰: ‖q‖²‖v_t‖² = 2 (s_t + (e^{s_t} − 1)/m) + "
        "‖q‖²‖v⁰‖² for all τ. For v⁰ = 0 (the paper's plot), s_t ≥ 0 and "
        "‖q‖·‖v_t‖ = sqrt(2 (s_t + (e^{s_t} − 1)/m)).",
        (SEN, START), steps)


def theorems() -> tuple[Theorem, ...]:
    return (sen_identity(), sen_curve())

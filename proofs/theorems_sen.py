"""The persisting score–embedding-norm (SEN) identity of PAPER.md, and the curve it implies.

Every step is SymPy working on the derivation of ``symbolic`` (the flows the engine runs), at
general sizes: tokens ``L``, embedding width ``d``, key width ``d_key``, classes, hidden width.
"""

from __future__ import annotations

import sympy as sp

from proofs import derivations as D
from proofs.derivations import QQ, G, a, c, k, l, m, p, q, r, s_t, v
from proofs.kernel import Assumption, Citation, Normalised, Step, Theorem
from proofs.rewritings import rewriting, substitution, within_sums

# --- assumptions (shared with the other theorems about the SEN quantity) --------------------

GF = Assumption(
    "GF", "training follows the gradient flow dθ/dτ = −∇L(θ) of L = (1/|D|) Σ_χ ℓ_χ; a word's "
    "embedding and key receive, from each sentence χ, −∂ℓ_χ/∂(the copy gathered at each token "
    "where the word occurs), as the engine scatters them",
    content=D.flow)
ANY_LOSS = Assumption(
    "ANY", "ℓ_χ is any differentiable function of the context h(χ); G_χ = ∂ℓ_χ/∂h is left "
    "symbolic (the abstract loss of the derivation; any classifier, trained or not)",
    content={"model": D.ABSTRACT, "classifiers": D.CLASSIFIERS},
    derivations=(D.ABSTRACT, *D.CLASSIFIERS))
A1 = Assumption("A1", "the query q is fixed (not trained)", content={"frozen": ("query",)})
A2 = Assumption(
    "A2", "non-topic words do not contribute: every non-topic score equals a common constant c "
    "and every non-topic embedding is 0 (so in a sentence holding the topic word t at token p, "
    "V_x = δ_xp v_t and e^{s_x} = δ_xp e^{s_t} + (1 − δ_xp) e^c)",
    content={"embeddings": D.embeddings_only_topic, "scores": D.exp_scores_a2})
A3 = Assumption(
    "A3", "every sentence holds exactly one topic word and exactly m non-topic words: "
    "L = m + 1 tokens, the topic word t at exactly one token p",
    content={"tokens": m + 1})


def sen_quantity(vv=v, score=s_t, shift=c) -> sp.Expr:
    """``Q(v_t, s_t) = ½‖v_t‖² − (s_t + e^{s_t − c}/m) / ‖q‖²``."""
    return sp.Rational(1, 2) * D.norm2(vv, l) - (score + sp.exp(score - shift) / m) / QQ


DEF_Q = Assumption(
    "Q", "definition (the SEN quantity): Q(v_t, s_t) = ½‖v_t‖² − (s_t + e^{s_t − c}/m)/‖q‖²",
    content=sen_quantity)


def _trainable(scope, extra=()) -> tuple[str, ...]:
    frozen = scope.assumption("A1")["frozen"]
    return tuple(n for n in ("embeddings", "keys", "query") if n not in frozen) + tuple(extra)


# --- steps ----------------------------------------------------------------------------------

def any_classifier(scope):
    """Concrete classifiers give the abstract-loss gradients with G = g_h = ∂ℓ/∂h."""
    loss = scope.assumption("ANY")
    abstract = D.derive(loss["model"])
    lhs, rhs = [], []
    for model in loss["classifiers"]:
        der = D.derive(model)
        g_h = der.symbols["h"]
        for name in ("embeddings", "keys"):
            lhs.append(D.inline_except(der, name, keep=("h",)).to_sympy())
            rhs.append(abstract.inlined(name).to_sympy().xreplace({G: g_h}))
    return D.index_claim(sp.Matrix(lhs), sp.Matrix(rhs))


def flow_embedding(scope):
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"], _trainable(scope))
    return D.index_claim(D.at_topic(flows["embeddings"]), -a[p] * G[k])


def flow_key(scope):
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"], _trainable(scope))
    derived = scope.assumption("A2")["embeddings"](D.at_topic(flows["keys"]))
    claimed = -q[r] * a[p] * (1 - a[p]) * D.dot(G[k], v[k], k)
    return D.index_claim(derived, claimed)


def flow_score(scope):
    """ṡ_t per sentence = q·κ̇_t + κ_t·q̇, and q̇ = 0 under A1."""
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"], _trainable(scope))
    key_rate = scope.step("flow-k").claim.rhs
    query_rate = flows["query"].to_sympy()
    derived = D.dot(q[r], key_rate, r) + D.dot(D.K[p, r], query_rate, r)
    return D.index_claim(derived, -QQ * a[p] * (1 - a[p]) * D.dot(G[k], v[k], k))


def attention_from(scores_assumption: str):
    """The step: a_x = (δ_xp e^{s_t} + (1 − δ_xp) e^c) / (e^{s_t} + m e^c) for every token x,
    from the model's attention node and the scores of ``scores_assumption``, and A3."""
    def attention_closed_form(scope):
        definition, (x,) = D.attention_definition()
        scores = scope.assumption(scores_assumption)["scores"]
        numerator, denominator = sp.fraction(definition)
        total = D.canonical(scores(denominator)).subs(D.L, scope.assumption("A3")["tokens"])
        derived = scores(numerator) / total
        return Normalised(sp.Eq(derived, D.attention_a2_a3(x), evaluate=False), sp.expand,
                          "expanding")
    return attention_closed_form


def _topic_attention(scope) -> sp.Expr:
    claim = scope.step("attention").claim
    x = D.attention_definition()[1][0]
    return claim.rhs.xreplace({x: p})


def sen_rate(scope):
    """Per sentence: ∇_v Q · (flow of v_t) + ∂Q/∂s_t · (flow of s_t) = 0."""
    quantity = scope.assumption("Q")()
    gradient_v = D.canonical(sp.diff(quantity, v[k]))
    rate = (sp.Sum(gradient_v * scope.step("flow-v").claim.rhs, (k, 0, D.d - 1))
            + sp.diff(quantity, s_t) * scope.step("flow-s").claim.rhs)
    at = {a[p]: _topic_attention(scope)}
    return Normalised(sp.Eq(rate, 0, evaluate=False),
                      rewriting(D.CANONICAL).then(substitution("attention", at),
                                                  rewriting("cancel")),
                      "the canonical index form, a_p replaced by its closed form (step "
                      "attention), and cancelling")


_sentence = sp.Symbol("chi", integer=True, nonnegative=True)
_n_t, _n_data = sp.symbols("n_t N", integer=True, positive=True)
_G_chi = sp.IndexedBase("G")


def dataset_rate(scope):
    """dQ/dτ = (1/|D|) Σ_{χ∋t} (per-sentence rate with G = G_χ): a sum of zeros."""
    per_sentence = scope.step("sen-rate").claim.lhs
    in_chi = per_sentence.replace(lambda x: isinstance(x, sp.Indexed) and x.base == G,
                                  lambda x: _G_chi[_sentence, x.indices[0]])
    total = sp.Sum(in_chi, (_sentence, 0, _n_t - 1)) / _n_data
    at = {a[p]: _topic_attention(scope)}
    each_term = within_sums(_sentence, rewriting(D.CANONICAL).then(
        substitution("attention", at), rewriting("cancel")))
    return Normalised(sp.Eq(total, 0, evaluate=False), each_term,
                      "reducing each sentence's term as in step sen-rate")


SEN_IDENTITY = (
    "Under A1–A3 and the gradient flow, for every topic word t and any differentiable "
    "per-sentence loss ℓ (G_χ = ∂ℓ_χ/∂h; so for any classifier, trained or not): "
    "d/dτ [ ½‖v_t‖² − (s_t + e^{s_t − c}/m) / ‖q‖² ] = 0. Each sentence χ holding t "
    "contributes −a_t G_χ/|D| to dv_t/dτ and −‖q‖² a_t (1 − a_t) v_t·G_χ/|D| to ds_t/dτ, "
    "where a_t = e^{s_t} / (e^{s_t} + m e^c) is the same in every sentence that holds t.")


def sen_identity() -> Theorem:
    steps = (
        Step("any-classifier", "for the linear and the two-layer classifier with cross-entropy, "
             "∂ℓ/∂V and ∂ℓ/∂K are the abstract-loss ones with G = ∂ℓ/∂h: the identity below, "
             "proved for an arbitrary G, covers every classifier", "symbolic", any_classifier,
             uses=("ANY",)),
        Step("flow-v", "per sentence, the flow of the embedding at the topic token p is "
             "−a_p G_k", "symbolic", flow_embedding, uses=("GF", "ANY", "A1")),
        Step("flow-k", "per sentence, under A2 the flow of the key at the topic token is "
             "−q_r a_p (1 − a_p) Σ_k G_k v_k", "symbolic", flow_key,
             uses=("GF", "ANY", "A1", "A2")),
        Step("flow-s", "per sentence, the flow of the score s_t = q·κ_t is q·κ̇_t + κ_t·q̇ "
             "= −‖q‖² a_p (1 − a_p) Σ_k G_k v_k, since q̇ = 0 (A1)", "symbolic", flow_score,
             uses=("GF", "ANY", "A1", "flow-k")),
        Step("attention", "under A2 and A3 the attention of token x is "
             "(δ_xp e^{s_t} + (1 − δ_xp) e^c) / (e^{s_t} + m e^c); in particular "
             "a_p = e^{s_t} / (e^{s_t} + m e^c) depends on s_t alone, the same in every "
             "sentence holding t", "symbolic", attention_from("A2"), uses=("A2", "A3")),
        Step("sen-rate", "per sentence, ∇_v Q · v̇ + (∂Q/∂s_t) ṡ = 0 for Q = ½‖v_t‖² − "
             "(s_t + e^{s_t − c}/m)/‖q‖², whatever G_χ", "symbolic", sen_rate,
             uses=("Q", "flow-v", "flow-s", "attention")),
        Step("dataset", "over the data set dQ/dτ = (1/|D|) Σ_{χ∋t} (the per-sentence rate with "
             "G = G_χ) = 0", "symbolic", dataset_rate, uses=("GF", "sen-rate", "attention")),
    )
    return Theorem("sen-identity", "The SEN identity", SEN_IDENTITY,
                   (GF, ANY_LOSS, A1, A2, A3, DEF_Q), steps)


# --- corollary: the SEN curve ----------------------------------------------------------------

_v0 = sp.IndexedBase("v^{0}", real=True)
_s = sp.Symbol("s", real=True)
_norm_v = sp.Symbol(r"\|v_t\|^{2}", nonnegative=True)

SEN = Assumption("SEN", "the SEN identity (theorem sen-identity): Q(v_t, s_t) = ½‖v_t‖² − "
                 "(s_t + e^{s_t − c}/m)/‖q‖² is constant along the flow", content=sen_quantity)
START = Assumption("I0", "keys start at 0, so c = 0 and s_t(0) = 0; the topic embedding starts "
                   "at v_t(0) = v⁰ (the paper's curve: v⁰ = 0)",
                   content={"shift": 0, "score": 0, "embedding": _v0})


def _g(x):
    return x + (sp.exp(x) - 1) / m


def initial_value(scope):
    start = scope.assumption("I0")
    value = scope.assumption("SEN")(start["embedding"], start["score"], start["shift"])
    return sp.Eq(value, sp.Rational(1, 2) * D.norm2(_v0, l) - 1 / (m * QQ), evaluate=False)


def level_set(scope):
    """2‖q‖² (Q(v_t, s_t) − Q(v⁰, 0)) = ‖q‖²‖v_t‖² − 2 g(s_t) − ‖q‖²‖v⁰‖²."""
    quantity, start = scope.assumption("SEN"), scope.assumption("I0")
    lhs = 2 * QQ * (quantity(v, s_t, start["shift"]) - scope.step("initial").rhs)
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
        Step("initial", "at the start Q(v⁰, 0) = ½‖v⁰‖² − 1/(m ‖q‖²) (c = 0)", "symbolic",
             initial_value, uses=("SEN", "I0")),
        Step("level-set", "2‖q‖² (Q(v_t, s_t) − Q(v⁰, 0)) = ‖q‖²‖v_t‖² − 2 g(s_t) − "
             "‖q‖²‖v⁰‖² with g(s) = s + (e^s − 1)/m; by SEN the left side stays 0",
             "symbolic", level_set, uses=("SEN", "I0", "initial")),
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

"""Where the SEN identity breaks: the exact extra term in dQ/dτ outside A1–A2.

Two derived deviations, so a user can see what a measured drift of the SEN quantity is made
of: non-topic words that carry embeddings (A2 fails on embeddings), and a trained query (A1
fails). Every step is SymPy on the derivation of ``symbolic``, at general sizes, except the
explicit example showing each extra term is not identically 0.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from proofs import derivations as D
from proofs.derivations import QQ, G, V, a, c, j, k, m, p, q, r, s_t, v
from proofs.kernel import Assumption, Step, Theorem, check_theorem
from proofs.normalisers import normalised
from proofs.theorems_sen import (
    A3,
    ANY_LOSS,
    DEF_Q,
    GF,
    SEN_IDENTITY,
    attention_from,
    flow_embedding,
    sen_identity,
    sen_quantity,
)
from symbolic import laws as SL

#: Non-topic embeddings of the sentence's tokens (arbitrary; read at non-topic tokens only).
w = sp.IndexedBase("w", real=True)


def _embeddings_topic_and_others(expr):
    """V_x = δ_xp v_t + (1 − δ_xp) w_x: the topic embedding at p, anything elsewhere."""
    def value(x):
        delta = sp.KroneckerDelta(x.indices[0], p)
        return delta * v[x.indices[1]] + (1 - delta) * w[x.indices]
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == V, value)


A1 = Assumption("A1", "the query q is fixed (not trained)", content={"frozen": ("query",)})
SCORES_ONLY = Assumption(
    "A2s", "the score half of A2 only: every non-topic score equals c (e^{s_x} = δ_xp e^{s_t} + "
    "(1 − δ_xp) e^c), while non-topic embeddings w_x are arbitrary: V_x = δ_xp v_t + "
    "(1 − δ_xp) w_x",
    content={"embeddings": _embeddings_topic_and_others, "scores": D.exp_scores_a2})


def _g_dot(x):
    return D.dot(G[k], x[k] if x is v else x[j, k], k)


def flow_key_others(scope):
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"], ("embeddings", "keys"))
    derived = scope.assumption("A2s")["embeddings"](D.at_topic(flows["keys"]))
    others = sp.Sum((1 - sp.KroneckerDelta(j, p)) * a[j] * _g_dot(w), (j, 0, D.L - 1))
    claimed = -q[r] * a[p] * ((1 - a[p]) * _g_dot(v) - others)
    return D.index_claim(derived, claimed)


def flow_score_others(scope):
    scope.assumption("A1")
    key_rate = scope.step("flow-k").claim.rhs
    derived = D.dot(q[r], key_rate, r)
    others = sp.Sum((1 - sp.KroneckerDelta(j, p)) * a[j] * _g_dot(w), (j, 0, D.L - 1))
    return D.index_claim(derived, -QQ * a[p] * ((1 - a[p]) * _g_dot(v) - others))


def _attention_values(scope) -> dict:
    closed = scope.step("attention").claim.rhs
    x = D.attention_definition()[1][0]
    return {a[p]: closed.xreplace({x: p}), a[j]: closed.xreplace({x: j})}


def deviation_embeddings(scope):
    """The declared law's rate along the flow (the chain rule on Q, symbolic.laws), in a
    sentence holding t (A3), with A2's scores and arbitrary non-topic embeddings (A2s) and
    a_x by step attention: −(a_t/m) Σ_{j≠p} G·w_j."""
    law, model = scope.assumption("Q")["law"], scope.assumption("ANY")["model"]
    frozen = scope.assumption("A1")["frozen"]
    flows = scope.assumption("GF")(model, tuple(x for x in ("embeddings", "keys", "query")
                                                if x not in frozen))
    rate = SL.sentence_rate(law, model, flows).to_sympy()
    rate = scope.assumption("A3")["at_topic"](rate, model)
    a2s = scope.assumption("A2s")
    rate = a2s["scores"](a2s["embeddings"](rate))
    values = _attention_values(scope)
    (x,) = D.attention_definition()[1]
    closed = scope.step("attention").claim.rhs
    rate = rate.replace(lambda y: isinstance(y, sp.Indexed) and y.base == a,
                        lambda y: closed.xreplace({x: y.indices[0]}))
    mean_others = sp.Sum((1 - sp.KroneckerDelta(j, p)) * _g_dot(w), (j, 0, D.L - 1)) / m
    claimed = (-a[p] * mean_others).xreplace({a[p]: values[a[p]]})
    return normalised(sp.Eq(rate, claimed, evaluate=False), "canonical-cancel-deltas")


def example_embeddings(scope):
    """d = 1, m = 1 (L = 2), s_t = c = 0, G = 1, v_t = 0, w = 1: the deviation is −1/2."""
    deviation = scope.step("deviation").claim.rhs
    example = deviation.subs({D.d: 1, D.L: 2, m: 1, s_t: 0, c: 0, p: 0}).doit()
    example = example.replace(lambda x: isinstance(x, sp.Indexed) and x.base in (G, w),
                              lambda x: 1)
    return {"d = 1, L = 2, m = 1, s_t = c = 0, G = w = 1":
            sp.Eq(example, -sp.Rational(1, 2), evaluate=False)}


def breaks_embeddings() -> Theorem:
    steps = (
        Step("flow-v", "per sentence, the flow of the embedding at the topic token p is "
             "−a_p G_k (as for SEN)", "symbolic", flow_embedding, uses=("GF", "ANY", "A1")),
        Step("flow-k", "per sentence, the flow of the topic key is −q_r a_p ((1 − a_p) G·v_t − "
             "Σ_{j≠p} a_j G·w_j)", "symbolic", flow_key_others, uses=("GF", "ANY", "A2s")),
        Step("flow-s", "per sentence, ṡ_t = −‖q‖² a_p ((1 − a_p) G·v_t − Σ_{j≠p} a_j G·w_j) "
             "(q̇ = 0)", "symbolic", flow_score_others, uses=("A1", "flow-k")),
        Step("attention", "the scores are as under A2, so a_x = (δ_xp e^{s_t} + (1 − δ_xp) e^c)"
             " / (e^{s_t} + m e^c)", "symbolic", attention_from("A2s"),
             uses=("A2s", "A3")),
        Step("deviation", "per sentence, ∇_v Q · v̇ + (∂Q/∂s_t) ṡ = −a_t G_χ · w̄_χ, where "
             "w̄_χ = (1/m) Σ_{j≠p} w_j is the mean non-topic embedding of the sentence",
             "symbolic", deviation_embeddings,
             uses=("GF", "ANY", "A1", "A2s", "A3", "Q", "flow-v", "flow-s", "attention")),
        Step("example", "the extra term is not identically 0: on the explicit case d = 1, "
             "m = 1, s_t = c = 0, G = w = 1 it is −1/2", "instance", example_embeddings,
             uses=("deviation",)),
    )
    return Theorem(
        "sen-breaks-embeddings", "Where SEN breaks: non-topic embeddings",
        "Under A1, A3 and the score half of A2, with non-topic embeddings w_x not 0: "
        "dQ/dτ = −(a_t/|D|) Σ_{χ∋t} G_χ · w̄_χ, where Q = ½‖v_t‖² − (s_t + e^{s_t − c}/m)/‖q‖², "
        "a_t = e^{s_t}/(e^{s_t} + m e^c) and w̄_χ is the mean embedding of the non-topic words "
        "of sentence χ. It vanishes when they do (A2), and is not identically 0 otherwise.",
        (GF, ANY_LOSS, A1, SCORES_ONLY, A3, DEF_Q), steps)


# --- a trained query ------------------------------------------------------------------------

kappa_t = sp.IndexedBase("kappa_t", real=True)   # key of the word t whose Q is tracked
kappa = D.kappa                                  # key of the topic word of the sentence
_q_dot = sp.IndexedBase("qdot", real=True)
_n2, _s = QQ, s_t                                # ‖q‖² and s_t = q·κ_t, as functions of q

TRAINED_QUERY = Assumption("TQ", "the query q trains (A1 fails)", content={"trains": ("query",)})
A2_KEYS = Assumption(
    "A2k", "A2 with non-topic keys at 0 (so c = 0 stays 0 as q moves) and non-topic "
    "embeddings 0: in a sentence whose topic word (key κ, embedding v) sits at token p, "
    "K_x = δ_xp κ and V_x = δ_xp v",
    content={"keys": D.keys_only_topic, "embeddings": D.embeddings_only_topic})
DEF_Q0 = Assumption(
    "Q", "definition (the SEN quantity with c = 0, as a function of q): "
    "Q = ½‖v_t‖² − (s_t + e^{s_t}/m)/‖q‖² with s_t = q·κ_t",
    content={"law": SL.SEN, "quantity": lambda: sen_quantity(v, s_t, 0)})
SEN_RATE = Assumption(
    "SENR", "imported from theorem sen-identity (re-checked in step sen-identity): "
    + SEN_IDENTITY + " Its rate is linear in the flows, so the parts through v_t and κ_t are "
    "the same whatever the query does (step same-flows)", content=sen_identity)


def imported_identity(scope):
    """Theorem sen-identity, re-checked: what SENR states is what it proves."""
    outcome = check_theorem(scope.assumption("SENR")())
    if not outcome.ok:
        raise ValueError(f"theorem {outcome.theorem.name} does not hold: {outcome.failures[0]}")
    failed = sp.Symbol("failed steps of sen-identity")
    return sp.Eq(failed, 0, evaluate=False).subs(failed, len(outcome.failures))


def query_gradient(scope):
    """∂Q/∂q_r of the declared quantity (c = 0), by ``symbolic.laws.derivative`` (the chain
    rule through the score node s_w = Σ q κ_w and ‖q‖²), read with s_w = s_t, κ_w = κ_t."""
    law = scope.assumption("Q")["law"]
    model = scope.assumption("ANY")["model"]
    slope = SL.derivative(law.quantity.xreplace({SL.c: 0}), q[r], model)
    slope = D.canonical(slope).xreplace({SL.s[SL.w]: _s})
    derived = slope.replace(lambda x: isinstance(x, sp.Indexed) and x.base == D.K
                            and x.indices[0] == SL.w, lambda x: kappa_t[x.indices[1]])
    claimed = (-(1 + sp.exp(_s) / m) * kappa_t[r] / _n2
               + 2 * (_s + sp.exp(_s) / m) * q[r] / _n2 ** 2)
    return normalised(sp.Eq(derived, claimed, evaluate=False), "canonical-cancel")


def query_flow(scope):
    flows = scope.assumption("GF")(scope.assumption("ANY")["model"],
                                   ("embeddings", "keys") + scope.assumption("TQ")["trains"])
    a2 = scope.assumption("A2k")
    derived = a2["embeddings"](a2["keys"](flows["query"].to_sympy()))
    return D.index_claim(derived, -kappa[r] * a[p] * (1 - a[p]) * _g_dot(v))


def same_flows(scope):
    """The embedding and key flows are the same whether the query trains or not."""
    flow, model = scope.assumption("GF"), scope.assumption("ANY")["model"]
    with_query = flow(model, ("embeddings", "keys") + scope.assumption("TQ")["trains"])
    without = flow(model, ("embeddings", "keys"))
    names = ("embeddings", "keys")
    return D.index_claim(sp.Matrix([with_query[n].to_sympy() for n in names]),
                         sp.Matrix([without[n].to_sympy() for n in names]))


def deviation_query(scope):
    """The v and κ terms are the SEN rate (0); what is left is ∇_q Q · q̇."""
    scope.step("sen-identity")
    scope.step("same-flows")
    gradient = scope.step("q-gradient").claim.rhs
    extra = sp.Sum(gradient * _q_dot[r], (r, 0, D.d_key - 1))
    claimed = (2 * (_s + sp.exp(_s) / m) / _n2 ** 2 * D.dot(q[r], _q_dot[r], r)
               - (1 + sp.exp(_s) / m) / _n2 * D.dot(kappa_t[r], _q_dot[r], r))
    return normalised(sp.Eq(extra, claimed, evaluate=False), "factor-sums")


def deviation_per_sentence(scope):
    """Sentence χ adds q̇ = −κ_χ a_χ(1 − a_χ) G_χ·v_χ / |D| to the query flow."""
    per_sentence_rate = scope.step("q-flow").claim.rhs / D.n_data
    extra = scope.step("deviation").claim.rhs.replace(
        lambda x: isinstance(x, sp.Indexed) and x.base == _q_dot,
        lambda x: per_sentence_rate.xreplace({r: x.indices[0]}))
    g_v = a[p] * (1 - a[p]) * _g_dot(v)
    claimed = -g_v / D.n_data * (2 * (_s + sp.exp(_s) / m) / _n2 ** 2 * D.dot(q[r], kappa[r], r)
                                 - (1 + sp.exp(_s) / m) / _n2 * D.dot(kappa_t[r], kappa[r], r))
    return normalised(sp.Eq(extra, claimed, evaluate=False), "factor-sums-cancel")


def example_query(scope):
    """One sentence, d_key = d = 1, q = κ_t = κ = 1 (so ‖q‖² = s_t = 1), m = 1, a = 1/2,
    G = 4, v = 1 (so a (1 − a) G·v = 1): the extra term is −(1 + e)."""
    per_sentence = scope.step("per-sentence").claim.rhs
    example = per_sentence.subs({D.d_key: 1, D.d: 1, _n2: 1, _s: 1, m: 1, D.n_data: 1}).doit()
    ones = (q, kappa, kappa_t, v)
    example = example.replace(lambda x: isinstance(x, sp.Indexed) and x.base in ones + (G,),
                              lambda x: 1 if x.base in ones else 4)
    example = example.xreplace({a[p]: sp.Rational(1, 2)})
    return {"d_key = d = 1, q = κ_t = κ = 1, m = 1, |D| = 1, a = 1/2, G = 4, v = 1":
            sp.Eq(example, -(1 + sp.E), evaluate=False)}


def breaks_query() -> Theorem:
    steps = (
        Step("q-gradient", "∂Q/∂q_r = −(1 + e^{s_t}/m) κ_t,r/‖q‖² + 2 (s_t + e^{s_t}/m) "
             "q_r/‖q‖⁴ (chain rule through s_t = q·κ_t and ‖q‖²)", "symbolic",
             query_gradient, uses=("Q", "ANY")),
        Step("same-flows", "the flows of the embeddings and keys are the same whether the "
             "query trains or not", "symbolic", same_flows, uses=("GF", "ANY", "TQ")),
        Step("sen-identity", "theorem sen-identity holds (re-checked now)", "symbolic",
             imported_identity, uses=("SENR",)),
        Step("deviation", "dQ/dτ = ∇_v Q·v̇ + ∇_κ Q·κ̇_t + ∇_q Q·q̇; the first two are the SEN "
             "rate, 0 (step sen-identity, unchanged by step same-flows), so "
             "dQ/dτ = 2 (s_t + e^{s_t}/m) q·q̇/‖q‖⁴ − (1 + e^{s_t}/m) κ_t·q̇/‖q‖²",
             "symbolic", deviation_query, uses=("q-gradient", "sen-identity", "same-flows")),
        Step("q-flow", "per sentence, under A2k the query flow is −κ a_p (1 − a_p) G·v, "
             "with κ, v the key and embedding of the sentence's topic word", "symbolic",
             query_flow, uses=("GF", "ANY", "TQ", "A2k")),
        Step("per-sentence", "so each sentence χ (of any topic word) adds "
             "−(a_χ (1 − a_χ) G_χ·v_χ / |D|) (2 (s_t + e^{s_t}/m) s_χ/‖q‖⁴ − "
             "(1 + e^{s_t}/m) κ_t·κ_χ/‖q‖²) to dQ/dτ, where s_χ = q·κ_χ", "symbolic",
             deviation_per_sentence, uses=("deviation", "q-flow")),
        Step("example", "the extra term is not identically 0: one sentence with d_key = 1, "
             "q = κ_t = κ = 1, m = 1, a = 1/2, G·v = 4 gives −(1 + e)", "instance",
             example_query, uses=("per-sentence",)),
    )
    return Theorem(
        "sen-breaks-query", "Where SEN breaks: a trained query",
        "Under A2 with non-topic keys at 0 (c = 0) and A3, when the query trains: "
        "dQ/dτ = −(1/|D|) Σ_χ a_χ (1 − a_χ) (G_χ·v_χ) [2 (s_t + e^{s_t}/m) s_χ/‖q‖⁴ − "
        "(1 + e^{s_t}/m) κ_t·κ_χ/‖q‖²], summed over every sentence χ (a_χ, v_χ, κ_χ, s_χ of "
        "its topic word); it is not identically 0.",
        (GF, ANY_LOSS, TRAINED_QUERY, A2_KEYS, dataclasses.replace(A3, kind="prose"), DEF_Q0,
         SEN_RATE), steps)


def theorems() -> tuple[Theorem, ...]:
    return (breaks_embeddings(), breaks_query())

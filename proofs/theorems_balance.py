"""Balance laws of the bilinear layers: quantities the gradient flow leaves constant.

No A2 or A3: they hold for any data set and any loss, because each pair of parameters enters
the model only through a product. Every step is SymPy on the derivation of ``symbolic`` (the
per-sentence gradients, with the upstream gradient ``g_Y = ∂ℓ/∂Y`` kept as a symbol, so the
claim holds whatever the loss downstream), at general sizes.
"""

from __future__ import annotations

import sympy as sp

from proofs import derivations as D
from proofs.derivations import K, V, c_, i, k, l, n_, q, r, t
from proofs.kernel import Assumption, Normalised, Step, Theorem
from proofs.rewritings import definition as definition_of
from proofs.rewritings import each_sentence, rewriting
from symbolic.model import W1, W2, U, b1, h, o, u

SHARED = (q, U, W1, W2, b1)

GRADIENT_FLOW = Assumption(
    "GF", "training follows the gradient flow dθ/dτ = −∇L(θ) of L = (1/|D|) Σ_χ ℓ_χ; a word's "
    "embedding and key receive, from each sentence, the flow of the copies gathered at its "
    "tokens (so Σ_w f(θ_w, θ̇_w) over words, for f linear in θ̇_w, is (1/|D|) Σ_χ Σ_i "
    "f(θ at token i, per-sentence flow at token i))",
    content=lambda model, name, keep: -D.inline_except(D.derive(model), name, keep))
ANY_LOSS = Assumption(
    "ANY", "the loss downstream is arbitrary: the upstream gradient g_Y = ∂ℓ/∂Y of the node "
    "after the pair (g_s for query and keys, g_z for the classifier, g_u for the hidden layer) "
    "is left a symbol", content={"abstract": D.ABSTRACT, "linear": D.CLASSIFIERS[0],
                                 "mlp": D.CLASSIFIERS[1]},
    derivations=(D.ABSTRACT, *D.CLASSIFIERS))


def _trains(names: str) -> Assumption:
    return Assumption("T", f"{names} are trained (any other parameters trained or not)",
                      content=True, kind="prose")


def _rate(scope, model_name: str, name: str, keep: tuple[str, ...]) -> sp.Expr:
    scope.assumption("T")
    model = scope.assumption("ANY")[model_name]
    return scope.assumption("GF")(model, name, keep).to_sympy()


def _dataset(scope):
    per_sentence = scope.step("law").claim.lhs
    reduce = scope.step("law").normalise
    return Normalised(sp.Eq(D.mean_over_sentences(per_sentence, SHARED), 0, evaluate=False),
                      each_sentence(_as_rewriting(reduce).then(rewriting("cancel"))),
                      "reducing each sentence's term as in step law")


def _as_rewriting(normaliser):
    """A registered function (e.g. ``D.canonical``) as its registered rewriting."""
    from proofs.rewritings import _FUNCTIONS, REGISTRY
    named = [n for n, fn in _FUNCTIONS.items() if fn is normaliser]
    return REGISTRY[named[0]] if named else normaliser


_DATASET = ("over the data set, the rate is (1/|D|) Σ_χ of the per-sentence rate "
            "(regrouping the sum over words by tokens, GF): a sum of zeros")


# --- q qᵀ − Σ_w κ_w κ_wᵀ -----------------------------------------------------------------

def qk_rates(scope):
    lhs, rhs = [], []
    for model in ("abstract", "linear", "mlp"):
        g_s = D.derive(scope.assumption("ANY")[model]).symbols["s"]
        lhs += [_rate(scope, model, "query", ("s",)), _rate(scope, model, "keys", ("s",))]
        rhs += [-sp.Sum(K[i, r] * g_s[i], (i, 0, D.L - 1)), -q[r] * g_s[i]]
    return D.index_claim(sp.Matrix(lhs), sp.Matrix(rhs))


def qk_law(scope):
    rate_q, rate_k = scope.step("rates").claim.rhs[:2]
    q_dot = {x: rate_q.xreplace({r: x}) for x in (r, t)}
    k_dot = {x: rate_k.xreplace({r: x}) for x in (r, t)}
    per_sentence = (q_dot[r] * q[t] + q[r] * q_dot[t]
                    - sp.Sum(k_dot[r] * K[i, t] + K[i, r] * k_dot[t], (i, 0, D.L - 1)))
    return Normalised(sp.Eq(per_sentence, 0, evaluate=False), D.canonical, D.CANONICAL)


def balance_query_keys() -> Theorem:
    steps = (
        Step("rates", "per sentence, for every model: q̇_r = −Σ_i K_ir g_s,i and "
             "κ̇_ir = −q_r g_s,i (g_s = ∂ℓ/∂s)", "symbolic", qk_rates, uses=("GF", "ANY", "T")),
        Step("law", "per sentence, d/dτ (q_r q_t − Σ_i K_ir K_it) = q̇_r q_t + q_r q̇_t − "
             "Σ_i (κ̇_ir K_it + K_ir κ̇_it) = 0", "symbolic", qk_law, uses=("rates",)),
        Step("dataset", _DATASET, "symbolic", _dataset, uses=("GF", "law")),
    )
    return Theorem("balance-query-keys", "Balance law of query and keys",
                   "When the query and the keys train (any classifier and loss, trained or "
                   "not, any data set): q qᵀ − Σ_w κ_w κ_wᵀ is constant along the gradient flow.",
                   (GRADIENT_FLOW, ANY_LOSS, _trains("the query and the keys")), steps)


# --- UᵀU − Σ_w v_w v_wᵀ and W1ᵀW1 − Σ_w v_w v_wᵀ -----------------------------------------

def _layer_rates(model: str, weight: str, base, upstream: str, hidden_index):
    def check(scope):
        g = D.derive(scope.assumption("ANY")[model]).symbols[upstream]
        lhs = [_rate(scope, model, weight, (upstream,)), _rate(scope, model, "embeddings",
                                                              (upstream,))]
        rhs = [-g[hidden_index] * h[k],
               -sp.Sum(D.a[i] * base[hidden_index, k] * g[hidden_index],
                       (hidden_index, 0, _size(hidden_index) - 1))]
        return D.index_claim(sp.Matrix(lhs), sp.Matrix(rhs))
    return check


def _size(index):
    return {c_: D.C, n_: D.H}[index]


def _layer_law(model: str, base, hidden_index):
    def check(scope):
        rate_w, rate_v = scope.step("rates").claim.rhs
        w_dot = {x: rate_w.xreplace({k: x}) for x in (k, l)}
        v_dot = {x: rate_v.xreplace({k: x}) for x in (k, l)}
        per_sentence = (
            sp.Sum(w_dot[k] * base[hidden_index, l] + base[hidden_index, k] * w_dot[l],
                   (hidden_index, 0, _size(hidden_index) - 1))
            - sp.Sum(v_dot[k] * V[i, l] + V[i, k] * v_dot[l], (i, 0, D.L - 1)))
        definition = scope.assumption("ANY")[model]
        return Normalised(sp.Eq(per_sentence, 0, evaluate=False),
                          definition_of(definition, h).then(rewriting(D.CANONICAL)),
                          "writing the context h by its definition Σ_i a_i V_i, then "
                          + D.CANONICAL)
    return check


def balance_classifier_embeddings() -> Theorem:
    steps = (
        Step("rates", "per sentence: U̇_ck = −g_z,c h_k and V̇_ik = −a_i Σ_c U_ck g_z,c "
             "(g_z = ∂ℓ/∂z)", "symbolic", _layer_rates("linear", "classifier", U, "z", c_),
             uses=("GF", "ANY", "T")),
        Step("law", "per sentence, d/dτ (Σ_c U_ck U_cl − Σ_i V_ik V_il) = 0, with "
             "h_k = Σ_i a_i V_ik", "symbolic", _layer_law("linear", U, c_),
             uses=("ANY", "rates")),
        Step("dataset", _DATASET, "symbolic", _dataset, uses=("GF", "law")),
    )
    return Theorem("balance-classifier-embeddings", "Balance law of a trained linear classifier",
                   "With logits U h, when U and the embeddings train (keys and query trained "
                   "or not, any loss of the logits, any data set): UᵀU − Σ_w v_w v_wᵀ is "
                   "constant along the gradient flow.",
                   (GRADIENT_FLOW, ANY_LOSS, _trains("the classifier U and the embeddings")),
                   steps)


def balance_hidden_embeddings() -> Theorem:
    steps = (
        Step("rates", "per sentence: Ẇ1_nk = −g_u,n h_k and V̇_ik = −a_i Σ_n W1_nk g_u,n "
             "(g_u = ∂ℓ/∂u)", "symbolic", _layer_rates("mlp", "hidden_weight", W1, "u", n_),
             uses=("GF", "ANY", "T")),
        Step("law", "per sentence, d/dτ (Σ_n W1_nk W1_nl − Σ_i V_ik V_il) = 0, with "
             "h_k = Σ_i a_i V_ik", "symbolic", _layer_law("mlp", W1, n_),
             uses=("ANY", "rates")),
        Step("dataset", _DATASET, "symbolic", _dataset, uses=("GF", "law")),
    )
    return Theorem("balance-hidden-embeddings", "Balance law of the two-layer classifier's "
                   "first layer",
                   "With logits W2 relu(W1 h + b1) + b2, when W1 and the embeddings train "
                   "(anything else trained or not, any loss, any data set): W1ᵀW1 − "
                   "Σ_w v_w v_wᵀ is constant along the gradient flow.",
                   (GRADIENT_FLOW, ANY_LOSS, _trains("the hidden weight W1 and the embeddings")),
                   steps)


# --- per hidden unit: ‖W2[:, n]‖² − ‖W1[n, :]‖² − b1_n² ------------------------------------

_x_pos = sp.Symbol("x", positive=True)
_x_neg = sp.Symbol("x", negative=True)


def relu_homogeneous(scope):
    """max(x, 0) = H(x) x, by the three cases x > 0, x < 0, x = 0 (H(0)·0 = 0 whatever H(0))."""
    cases = (_x_pos, _x_neg, sp.S.Zero)
    relu = sp.Matrix([sp.Max(x, 0, evaluate=False) for x in cases])
    gated = sp.Matrix([sp.Mul(sp.Heaviside(x, evaluate=False), x, evaluate=False)
                       for x in cases])
    return sp.Eq(relu, gated, evaluate=False)


def unit_rates(scope):
    g_z = D.derive(scope.assumption("ANY")["mlp"]).symbols["z"]
    back = sp.Sum(W2[c_, n_] * g_z[c_], (c_, 0, D.C - 1))
    lhs = [_rate(scope, "mlp", name, ("z",))
           for name in ("output_weight", "hidden_weight", "hidden_bias")]
    rhs = [-g_z[c_] * o[n_], -sp.Heaviside(u[n_]) * back * h[k], -sp.Heaviside(u[n_]) * back]
    return D.index_claim(sp.Matrix(lhs), sp.Matrix(rhs))


def unit_law(scope):
    w2_dot, w1_dot, b1_dot = scope.step("rates").claim.rhs
    per_sentence = (2 * sp.Sum(W2[c_, n_] * w2_dot, (c_, 0, D.C - 1))
                    - 2 * sp.Sum(W1[n_, k] * w1_dot, (k, 0, D.d - 1))
                    - 2 * b1[n_] * b1_dot)
    mlp = scope.assumption("ANY")["mlp"]
    pre_activation = next(nd for nd in mlp.nodes if nd.base == u).definition
    # o = max(u, 0) (the node's definition) = H(u) u (step relu), then u by its definition.
    scope.step("relu")
    del pre_activation  # u_n is written by its definition below
    normalise = definition_of(mlp, o).then(rewriting("relu as gate"), definition_of(mlp, u),
                                           rewriting(D.CANONICAL))
    return Normalised(sp.Eq(per_sentence, 0, evaluate=False), normalise,
                      "writing o_n = max(u_n, 0) as H(u_n) u_n (step relu) and u_n by its "
                      "definition Σ_k W1_nk h_k + b1_n, then " + D.CANONICAL)


def balance_relu_unit() -> Theorem:
    steps = (
        Step("relu", "max(x, 0) = H(x)·x for every real x (cases x > 0, x < 0, x = 0)",
             "symbolic", relu_homogeneous),
        Step("rates", "per sentence: Ẇ2_cn = −g_z,c o_n, Ẇ1_nk = −H(u_n) (Σ_c W2_cn g_z,c) h_k, "
             "ḃ1_n = −H(u_n) Σ_c W2_cn g_z,c", "symbolic", unit_rates,
             uses=("GF", "ANY", "T")),
        Step("law", "per sentence, d/dτ (Σ_c W2_cn² − Σ_k W1_nk² − b1_n²) = 0", "symbolic",
             unit_law, uses=("ANY", "rates", "relu")),
        Step("dataset", _DATASET, "symbolic", _dataset, uses=("GF", "law")),
    )
    return Theorem("balance-relu-unit", "Balance law of each hidden ReLU unit",
                   "With logits W2 relu(W1 h + b1) + b2, when W1, b1 and W2 train (anything "
                   "else trained or not, any loss, any data set): for every hidden unit n, "
                   "‖W2[:, n]‖² − ‖W1[n, :]‖² − b1_n² is constant along the gradient flow.",
                   (GRADIENT_FLOW, ANY_LOSS, _trains("W1, b1 and W2")), steps)


def theorems() -> tuple[Theorem, ...]:
    return (balance_query_keys(), balance_classifier_embeddings(), balance_hidden_embeddings(),
            balance_relu_unit())

"""Convergence with a fixed linear classifier (PAPER.md's second result), stated precisely.

Under A1–A3 with logits U h (U fixed) and cross-entropy, each topic word t (class y) evolves
on its own in (v_t, s_t). The loss of its sentences tends to 0 exactly when the row u_y of U is
not in the convex hull of the other rows; then ‖v_t‖ → ∞, s_t → ∞ and a_t → 1. The algebra is
SymPy on the derivation of ``symbolic``; the analysis that SymPy cannot carry (limits of
trajectories) is cited, and the whole statement is corroborated numerically on trajectories of
the derived system.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from proofs import derivations as D
from proofs.derivations import QQ, a, c, c_, k, l, m, p, q, r, s_t, v
from proofs.kernel import Assumption, Citation, Measured, Normalised, Step, Theorem
from proofs.theorems_sen import A1, A2, A3, GF, attention_from
from symbolic.model import P, U, Y, h, z

y = sp.Symbol("y", integer=True, nonnegative=True)       # the class of the topic word t
alpha = sp.Symbol("alpha", positive=True)                # n_t / |D|: share of t's sentences
_grad_v = sp.IndexedBase(r"\partial_{v}\ell", real=True)
_grad_s = sp.Symbol(r"\partial_{s}\ell", real=True)
_w = sp.IndexedBase("w", real=True)                      # a direction in embedding space

FIXED = Assumption("U", "the classifier is linear and fixed: logits z = U h with U (C × d) not "
                   "trained; the loss is the cross-entropy", content=D.CLASSIFIERS[0],
                   derivations=(D.CLASSIFIERS[0],))
LABEL = Assumption("Y", "every sentence holding t is labelled y, the class of t: Y_c = δ_cy",
                   content={Y: lambda x: sp.KroneckerDelta(x.indices[0], y)})
SOFTMAX = Assumption("SM", "P = softmax(z) sums to 1: Σ_c P_c = 1 (theorem softmax-jacobian, "
                     "step norm)", content={sp.Sum(P[c_], (c_, 0, D.C - 1)): 1})
CURVE = Assumption("CV", "keys and embeddings start at 0, so c = 0 and, by theorem sen-curve, "
                   "s_t ≥ 0 and ‖q‖²‖v_t‖² = 2 (s_t + (e^{s_t} − 1)/m) along the flow",
                   content={c: 0})
SEPARABLE = Assumption(
    "C", "case (C): u_y is not in the convex hull of {u_c : c ≠ y}; equivalently (step "
    "gordan) some w has (u_y − u_c)·w ≥ γ > 0 for every c ≠ y")
NOT_SEPARABLE = Assumption(
    "notC", "case not (C): u_y = Σ_{c≠y} λ_c u_c with λ_c ≥ 0, Σ_{c≠y} λ_c = 1")


def _label(expr, scope):
    rule = scope.assumption("Y")
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base in rule,
                        lambda x: rule[x.base](x))


def context_under_a2(scope):
    model = scope.assumption("U")
    node = next(nd for nd in model.nodes if nd.base == h)
    derived = scope.assumption("A2")["embeddings"](node.definition)
    return D.index_claim(derived, a[p] * v[k])


def attention_derivative(scope):
    x = D.attention_definition()[1][0]
    closed = scope.step("attention").claim.rhs.xreplace({x: p})
    return sp.Eq(sp.diff(closed, s_t), closed * (1 - closed), evaluate=False)


def _flows_at_topic(scope):
    scope.assumption("A1")
    flows = scope.assumption("GF")(scope.assumption("U"), ("keys", "embeddings"))
    a2 = scope.assumption("A2")["embeddings"]
    embedding = _label(a2(D.at_topic(flows["embeddings"])), scope)
    key = _label(a2(D.at_topic(flows["keys"])), scope)
    return embedding, D.dot(q[r], key, r)


def _residual(x=k):
    return sp.Sum(U[c_, x] * (P[c_] - sp.KroneckerDelta(c_, y)), (c_, 0, D.C - 1))


def system(scope):
    """Each of t's n_t = α|D| sentences has the same h = a_p v_t, hence the same P."""
    embedding, score = _flows_at_topic(scope)
    lhs = sp.Matrix([alpha * embedding, alpha * score])
    rhs = sp.Matrix([-alpha * a[p] * _residual(),
                     -alpha * QQ * a[p] * (1 - a[p]) * sp.Sum(v[k] * _residual(), (k, 0, D.d - 1))])
    return D.index_claim(lhs, rhs)


def gradient_system(scope):
    """ℓ_t(v, s) = CE(z = a(s) U v, y): its gradient by the chain rule through z."""
    model = scope.assumption("U")
    g_z = _label(D.derive(model).grads["z"].to_sympy(), scope)       # ∂ℓ/∂z_c = P_c − Y_c
    logits = next(nd for nd in model.nodes if nd.base == z)
    a_of_s = sp.Function("a")(s_t)
    z_c = logits.definition.xreplace({h[k]: a_of_s * v[k]})            # z_c = a(s) Σ_k U_ck v_k
    d_v = sp.Sum(g_z * sp.diff(z_c, v[l]), (c_, 0, D.C - 1))
    d_s = sp.Sum(g_z * sp.diff(z_c, s_t), (c_, 0, D.C - 1))
    flow_v, flow_s = scope.step("system").claim.rhs
    scope.step("da")                      # a′(s) = a (1 − a) for the closed form of a_p
    lhs = sp.Matrix([flow_v.xreplace({k: l}), flow_s])
    rhs = sp.Matrix([-alpha * d_v, -alpha * QQ * d_s])
    values = {sp.Derivative(a_of_s, s_t): a[p] * (1 - a[p]), a_of_s: a[p]}

    def normalise(e):
        return D.canonical(e.subs(values))
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), normalise,
                      "a(s) and a′(s) written a_p and a_p (1 − a_p) (steps attention, da), then "
                      + D.CANONICAL)


def descent(scope):
    scope.step("gradient-system")
    rate = (sp.Sum(_grad_v[k] * (-alpha * _grad_v[k]), (k, 0, D.d - 1))
            + _grad_s * (-alpha * QQ * _grad_s))
    return sp.Le(D.factor_sums(rate), 0, evaluate=False)


_xi = sp.Symbol("xi", nonnegative=True)


def loss_is_minus_log_p(scope):
    model = scope.assumption("U")
    loss = _label(model.nodes[-1].definition, scope).doit()
    p_y = sp.exp(z[y]) / sp.Sum(sp.exp(z[D.e_]), (D.e_, 0, D.C - 1))
    return Normalised(sp.Eq(loss, -sp.log(p_y), evaluate=False),
                      lambda e: sp.expand_log(e.replace(
                          lambda u: isinstance(u, sp.Piecewise), lambda u: u.args[0][0]),
                          force=True),
                      "summing δ_cy z_c over c (y is a class) and expanding logarithms")


def nonnegative_loss(scope):
    scope.step("minus-log")
    return sp.Ge(-sp.log(1 / (1 + _xi)), 0, evaluate=False)


MONOTONE = Citation("Suppose {s_n} is monotonic. Then {s_n} converges if and only if it is "
                    "bounded.", "W. Rudin, Principles of Mathematical Analysis, 3rd ed. (1976), "
                    "Theorem 3.14")
GORDAN = Citation(
    "For each given matrix A, either (I) Ax > 0 has a solution x, or (II) A′y = 0, y ≥ 0, "
    "y ≠ 0 has a solution y, but never both.",
    "P. Gordan (1873), Math. Ann. 6, 23–28; as stated in O. L. Mangasarian, Nonlinear "
    "Programming (1969), Chapter 2, Gordan's theorem")
CAUCHY_SCHWARZ = Citation(
    "If a_1, …, a_n and b_1, …, b_n are complex numbers, then "
    "|Σ_{j=1}^n a_j b̄_j|² ≤ Σ_{j=1}^n |a_j|² Σ_{j=1}^n |b_j|².",
    "W. Rudin, Principles of Mathematical Analysis, 3rd ed. (1976), Theorem 1.35")
BOUNDED = Citation(
    "If f is a continuous mapping of a compact metric space X into R^k, then f(X) is closed "
    "and bounded. Thus, f is bounded.",
    "W. Rudin, Principles of Mathematical Analysis, 3rd ed. (1976), Theorem 4.15")


def margin(scope):
    """−Σ_c (P_c − δ_cy)(Uw)_c = Σ_c P_c ((Uw)_y − (Uw)_c), because Σ_c P_c = 1."""
    uw = {x: sp.Sum(U[x, k] * _w[k], (k, 0, D.d - 1)) for x in (c_, y)}
    lhs = -sp.Sum((P[c_] - sp.KroneckerDelta(c_, y)) * uw[c_], (c_, 0, D.C - 1))
    rhs = sp.Sum(P[c_] * (uw[y] - uw[c_]), (c_, 0, D.C - 1))
    total = scope.assumption("SM")

    def normalise(e):
        e = D.factor_sums(sp.expand(e.doit()))
        e = e.replace(lambda u: isinstance(u, sp.Piecewise), lambda u: u.args[0][0])
        return sp.expand(D.factor_sums(e).xreplace(total))
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), normalise,
                      "summing the δ over classes, factoring independent sums and "
                      "Σ_c P_c = 1 (SM)")


def push(scope):
    """−∇_v ℓ_t · w = a Σ_c P_c ((Uw)_y − (Uw)_c) (gradient from step gradient-system)."""
    flow_v = scope.step("system").claim.rhs[0]
    gradient = -flow_v / alpha                                   # ∇_v ℓ_t = −v̇ / α
    lhs = -sp.Sum(gradient * _w[k], (k, 0, D.d - 1))
    rhs = a[p] * scope.step("margin").claim.rhs
    total = scope.assumption("SM")

    def normalise(e):
        e = D.canonical(e)
        e = D.factor_sums(sp.expand(e.doit()))
        e = e.replace(lambda u: isinstance(u, sp.Piecewise), lambda u: u.args[0][0])
        return sp.expand(D.factor_sums(e).xreplace(total))
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), normalise,
                      "the canonical index form, summing the δ over classes and Σ_c P_c = 1")


_co = sp.Symbol("C_o", integer=True, positive=True)               # the C − 1 other classes
_p_other = sp.IndexedBase("P", positive=True)
_mu = sp.IndexedBase("mu", nonnegative=True)
_gamma = sp.Symbol("gamma", positive=True)


def push_split(scope):
    """With margins (u_y − u_c)·w = γ + μ_c (μ_c ≥ 0) over the other classes c."""
    scope.assumption("C")
    lhs = sp.Sum(_p_other[c_] * (_gamma + _mu[c_]), (c_, 0, _co - 1))
    rhs = _gamma * sp.Sum(_p_other[c_], (c_, 0, _co - 1)) + sp.Sum(_p_other[c_] * _mu[c_],
                                                                    (c_, 0, _co - 1))
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), lambda e: D.factor_sums(sp.expand(e)),
                      "expanding and splitting the sum")


def push_bound(scope):
    scope.step("push-split")
    return sp.Ge(sp.Sum(_p_other[c_] * _mu[c_], (c_, 0, _co - 1)), 0, evaluate=False)


_y = sp.Symbol("y_s", nonnegative=True)


def attention_floor(scope):
    """For s_t ≥ 0 (written s_t = log(1 + y_s), y_s ≥ 0) and c = 0: a_t ≥ 1/(1 + m)."""
    x = D.attention_definition()[1][0]
    closed = scope.step("attention").claim.rhs.xreplace({x: p}).subs(scope.assumption("CV"))
    return sp.Ge(closed.subs(s_t, sp.log(1 + _y)), 1 / (1 + m), evaluate=False)


def half(scope):
    """Not (C): z_y = Σ λ_c z_c ≤ max_{c≠y} z_c = z_y + log(1 + ξ); the rest of the
    normaliser is ρ ≥ 0: P_y = 1/(2 + ξ + ρ) ≤ 1/2."""
    scope.assumption("notC")
    return sp.Le(1 / (2 + _xi + _rho), sp.Rational(1, 2), evaluate=False)


_rho = sp.Symbol("rho", nonnegative=True)
_eta = sp.Symbol("eta", nonnegative=True)


def hull_linear(scope):
    scope.assumption("notC")
    lam = sp.IndexedBase("lambda", nonnegative=True)
    u_y = sp.Sum(lam[c_] * U[c_, k], (c_, 0, D.C - 1))            # u_y = Σ λ_c u_c
    z_y = a[p] * sp.Sum(u_y * v[k], (k, 0, D.d - 1))
    z_c = a[p] * sp.Sum(U[c_, k] * v[k], (k, 0, D.d - 1))
    return Normalised(sp.Eq(z_y, sp.Sum(lam[c_] * z_c, (c_, 0, D.C - 1)), evaluate=False),
                      D.canonical, D.CANONICAL)


def log_two(scope):
    """ℓ_t − log 2 = −log(2 P_y) with P_y = 1/(2(1 + η)), η = (ξ + ρ)/2 ≥ 0."""
    scope.step("half")
    return sp.Ge(-sp.log(2 / (2 * (1 + _eta))), 0, evaluate=False)


def margins_ratio(scope):
    """log(P_y/P_c) = z_y − z_c: the classes' margins are log-ratios of probabilities."""
    scope.assumption("SM")
    total = sp.Sum(sp.exp(z[D.e_]), (D.e_, 0, D.C - 1))
    ratio = (sp.exp(z[y]) / total) / (sp.exp(z[c_]) / total)
    return Normalised(sp.Eq(sp.log(ratio), z[y] - z[c_], evaluate=False),
                      lambda e: sp.expand_log(sp.simplify(e), force=True), "simplifying")


def g_unbounded(scope):
    scope.assumption("CV")
    g = s_t + (sp.exp(s_t) - 1) / m
    return sp.Eq(sp.Limit(g, s_t, sp.oo), sp.oo, evaluate=False)


def attention_to_one(scope):
    x = D.attention_definition()[1][0]
    closed = scope.step("attention").claim.rhs.xreplace({x: p}).subs(scope.assumption("CV"))
    return sp.Eq(sp.Limit(closed, s_t, sp.oo), 1, evaluate=False)


# --- numeric corroboration on trajectories of the derived system ----------------------------

def _derived_system(scope, n_classes: int, width: int):
    """The right-hand side of step system as NumPy, for explicit sizes (lambdified)."""
    flow_v, flow_s = scope.step("system").claim.rhs
    x = D.attention_definition()[1][0]
    closed = scope.step("attention").claim.rhs.xreplace({x: p}).subs(scope.assumption("CV"))
    u_sym = sp.Matrix(n_classes, width, lambda i_, j_: sp.Symbol(f"U{i_}_{j_}"))
    v_sym = [sp.Symbol(f"v{j_}") for j_ in range(width)]
    zs = [closed * sum(u_sym[i_, j_] * v_sym[j_] for j_ in range(width))
          for i_ in range(n_classes)]
    probs = [sp.exp(zc) / sum(sp.exp(ze) for ze in zs) for zc in zs]

    def explicit(e, k_value=None):
        e = e.subs({D.C: n_classes, D.d: width, y: 0})
        if k_value is not None:
            e = e.xreplace({k: k_value})
        e = e.doit()
        e = e.replace(lambda u_: isinstance(u_, sp.Indexed) and u_.base == U,
                      lambda u_: u_sym[int(u_.indices[0]), int(u_.indices[1])])
        e = e.replace(lambda u_: isinstance(u_, sp.Indexed) and u_.base == P,
                      lambda u_: probs[int(u_.indices[0])])
        e = e.replace(lambda u_: isinstance(u_, sp.Indexed) and u_.base == v,
                      lambda u_: v_sym[int(u_.indices[0])])
        return e.xreplace({a[p]: closed})
    rhs = [explicit(flow_v, j_) for j_ in range(width)] + [explicit(flow_s)]
    loss = -sp.log(probs[0])
    args = (v_sym, s_t, list(u_sym), alpha, QQ, m)
    return (sp.lambdify(args, rhs, "numpy"), sp.lambdify(args, loss, "numpy"),
            sp.lambdify((s_t, m), closed, "numpy"))


def trajectories(scope):
    """Random U with u_0 a vertex (rows 1.. standard normal, u_0 = their mean + 2w for a
    random unit w, so (C) holds); integrate from v = 0, s = 0 with DOP853 (rtol 1e-10).

    The tolerance 1e-6 is 10⁴ × rtol: the loss and the curve's terms stay below ~10², and
    the local relative errors of 400 time units of steps add up at most to that."""
    n_classes, width, m_value, q2 = 3, 3, 20, 0.5
    rhs, loss, attention = _derived_system(scope, n_classes, width)
    rng = np.random.default_rng(0)
    worst_increase, worst_curve, finals = 0.0, 0.0, []
    for _ in range(3):
        u = rng.standard_normal((n_classes, width))
        w = rng.standard_normal(width)
        u[0] = u[1:].mean(axis=0) + 2.0 * w / np.linalg.norm(w)
        params = (list(u.ravel()), 1.0, q2, m_value)

        def field(_, state, params=params):
            return np.asarray(rhs(list(state[:width]), state[width], *params), dtype=float)
        sol = solve_ivp(field, (0.0, 400.0), np.zeros(width + 1), method="DOP853",
                        rtol=1e-10, atol=1e-12, dense_output=False,
                        t_eval=np.linspace(0.0, 400.0, 401))
        losses = np.array([loss(list(x[:width]), x[width], *params) for x in sol.y.T])
        worst_increase = max(worst_increase, float(np.max(np.diff(losses))))
        curve = q2 * np.sum(sol.y[:width] ** 2, axis=0) - 2 * (
            sol.y[width] + np.expm1(sol.y[width]) / m_value)
        worst_curve = max(worst_curve, float(np.max(np.abs(curve))))
        finals.append((losses[0], losses[-1], float(attention(sol.y[width, -1], m_value))))
    detail = "; ".join(f"loss {l0:.3f} → {l1:.2e}, a_t → {at:.4f}" for l0, l1, at in finals)
    return Measured(max(worst_increase, worst_curve), 1e-6,
                    f"largest loss increase between samples and largest SEN-curve residual "
                    f"over 3 random U with (C), C = d = 3, m = 20, ‖q‖² = 0.5, τ ≤ 400: {detail}")


STATEMENT = (
    "Under A1–A3 and the gradient flow, with a fixed linear classifier (logits U h, "
    "cross-entropy), keys and embeddings starting at 0: for each topic word t of class y, the "
    "pair (v_t, s_t) follows the decoupled system v̇_t = −α a_t Uᵀ(P − e_y), "
    "ṡ_t = −α ‖q‖² a_t (1 − a_t) v_tᵀUᵀ(P − e_y), with α = n_t/|D|, "
    "a_t = e^{s_t}/(e^{s_t} + m), P = softmax(a_t U v_t): the gradient flow of α ℓ_t with the "
    "metric diag(I, ‖q‖²). Its loss ℓ_t is non-increasing. ℓ_t → 0 if and only if (C): u_y "
    "is not in the convex hull of the other rows of U (the topic's class can be made the "
    "strict winner); then ‖v_t‖ → ∞, s_t → ∞ and a_t → 1. Otherwise ℓ_t ≥ log 2 throughout.")


def convergence() -> Theorem:
    steps = (
        Step("context", "under A2 the context of a sentence holding t is h = a_p v_t",
             "symbolic", context_under_a2, uses=("U", "A2")),
        Step("attention", "a_p = e^{s_t}/(e^{s_t} + m e^c), the same in all of t's sentences",
             "symbolic", attention_from("A2"), uses=("A2", "A3")),
        Step("da", "da_p/ds_t = a_p (1 − a_p)", "symbolic", attention_derivative,
             uses=("attention",)),
        Step("system", "the decoupled system: v̇_t = −α a_p Σ_c U_ck (P_c − δ_cy), "
             "ṡ_t = −α ‖q‖² a_p (1 − a_p) Σ_k v_k Σ_c U_ck (P_c − δ_cy), from the derived flows "
             "of the embedding and key at the topic token", "symbolic", system,
             uses=("GF", "A1", "U", "A2", "Y", "context")),
        Step("gradient-system", "it is the gradient flow of α ℓ_t(v, s), ℓ_t the cross-entropy "
             "of z = a(s) U v: v̇ = −α ∂ℓ_t/∂v, ṡ = −α ‖q‖² ∂ℓ_t/∂s", "symbolic",
             gradient_system, uses=("U", "Y", "da", "system")),
        Step("descent", "so dℓ_t/dτ = −α (‖∂ℓ_t/∂v‖² + ‖q‖² (∂ℓ_t/∂s)²) ≤ 0", "symbolic",
             descent, uses=("gradient-system",)),
        Step("minus-log", "ℓ_t = −log P_y", "symbolic", loss_is_minus_log_p, uses=("U", "Y")),
        Step("nonnegative", "ℓ_t ≥ 0, since P_y = 1/(1 + ξ) with ξ = Σ_{c≠y} e^{z_c − z_y} ≥ 0",
             "symbolic", nonnegative_loss, uses=("minus-log",)),
        Step("converges", "a non-increasing loss bounded below converges: ℓ_t → ℓ* ≥ 0 "
             "(along any τ_n ↑ ∞, and so as τ → ∞ by monotonicity)", "cited",
             citation=MONOTONE, uses=("descent", "nonnegative")),
        Step("gordan", "(C) holds if and only if some w has (u_y − u_c)·w > 0 for every c ≠ y "
             "(take A with rows u_y − u_c)", "cited", citation=GORDAN, uses=("C",)),
        Step("margin", "for every w: −Σ_c (P_c − δ_cy)(Uw)_c = Σ_c P_c ((Uw)_y − (Uw)_c)",
             "symbolic", margin, uses=("SM",)),
        Step("push", "−∇_v ℓ_t · w = a_p Σ_c P_c ((Uw)_y − (Uw)_c)", "symbolic", push,
             uses=("SM", "system", "margin")),
        Step("push-split", "with margins (u_y − u_c)·w = γ + μ_c, μ_c ≥ 0, over the other "
             "classes: Σ_{c≠y} P_c (γ + μ_c) = γ (1 − P_y) + Σ_{c≠y} P_c μ_c", "symbolic",
             push_split, uses=("C", "gordan")),
        Step("push-bound", "Σ_{c≠y} P_c μ_c ≥ 0, so −∇_v ℓ_t · w ≥ a_p γ (1 − P_y)",
             "symbolic", push_bound, uses=("push-split", "push")),
        Step("attention-floor", "with s_t ≥ 0 (CV) and c = 0: a_p ≥ 1/(1 + m)", "symbolic",
             attention_floor, uses=("attention", "CV")),
        Step("loss-to-zero", "if ℓ* > 0 then P_y ≤ e^{−ℓ*} < 1 throughout, so by Cauchy–Schwarz "
             "‖∇_v ℓ_t‖ ≥ γ (1 − e^{−ℓ*}) / ((1 + m)‖w‖) and dℓ_t/dτ ≤ −α times its square, a "
             "negative constant: ℓ_t would fall below 0. Hence ℓ* = 0", "cited",
             citation=CAUCHY_SCHWARZ,
             uses=("converges", "descent", "push-bound", "attention-floor", "nonnegative")),
        Step("ratios", "log(P_y/P_c) = z_y − z_c", "symbolic", margins_ratio, uses=("SM",)),
        Step("norm-diverges", "ℓ_t → 0 gives P_y → 1, so z_y − z_c = log(P_y/P_c) → ∞ for every "
             "c ≠ y; as |z_y − z_c| = a_p |(u_y − u_c)·v_t| ≤ ‖u_y − u_c‖ ‖v_t‖ (a_p ≤ 1, "
             "Cauchy–Schwarz), ‖v_t‖ → ∞", "cited", citation=CAUCHY_SCHWARZ,
             uses=("loss-to-zero", "ratios", "context")),
        Step("g-unbounded", "g(s) = s + (e^s − 1)/m → ∞ as s → ∞", "symbolic", g_unbounded,
             uses=("CV",)),
        Step("score-diverges", "by the SEN curve 2 g(s_t) = ‖q‖²‖v_t‖² → ∞; g is continuous, "
             "hence bounded on every [0, S], so s_t → ∞", "cited", citation=BOUNDED,
             uses=("CV", "norm-diverges", "g-unbounded")),
        Step("attention-to-one", "a_t = e^{s_t}/(e^{s_t} + m) → 1 as s_t → ∞", "symbolic",
             attention_to_one, uses=("attention", "CV")),
        Step("hull", "case not (C): u_y = Σ λ_c u_c gives z_y = Σ λ_c z_c ≤ max_{c≠y} z_c",
             "symbolic", hull_linear, uses=("notC", "context")),
        Step("half", "so P_y = 1/(2 + ξ + ρ) ≤ 1/2 (ξ, ρ ≥ 0)", "symbolic", half,
             uses=("notC", "hull")),
        Step("log-two", "and ℓ_t − log 2 = −log(2 P_y) ≥ 0: the loss stays ≥ log 2 and "
             "does not tend to 0, so (C) is necessary", "symbolic", log_two,
             uses=("half", "minus-log")),
        Step("trajectories", "corroboration: along trajectories of the derived system from "
             "v = 0, s = 0 with (C), the loss never increases and the SEN curve holds",
             "numeric", trajectories, uses=("system", "attention", "CV", "C")),
    )
    return Theorem("convergence-fixed-classifier", "Convergence with a fixed linear classifier",
                   STATEMENT, (GF, A1, FIXED, A2, A3, LABEL, SOFTMAX, CURVE, SEPARABLE,
                               NOT_SEPARABLE), steps)


def theorems() -> tuple[Theorem, ...]:
    return (convergence(),)

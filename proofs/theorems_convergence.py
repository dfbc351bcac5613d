"""Convergence with a fixed linear classifier (the paper's second result), stated precisely.

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
from proofs.rewritings import rewriting, substitution
from proofs.theorems_sen import A1, A2, A3, GF, MVT, attention_from
from proofs.theorems_softmax import CANONICAL_SUMS
from symbolic.model import P, U, Y, h, z

#: The topic's class y; with C = C_o + 1 classes (C ≥ 2: C_o ≥ 1 other classes) the steps
#: that split the classes number them so that y = C_o, the last (relabelling loses nothing).
y = sp.Symbol("y", integer=True, nonnegative=True)
_co = sp.Symbol("C_o", integer=True, positive=True)
alpha = sp.Symbol("alpha", positive=True)                # n_t / |D|: share of t's sentences
_w = sp.IndexedBase("w", real=True)                      # a direction in embedding space
_z = sp.IndexedBase("z", real=True)                      # the logits (real numbers)
_gamma = sp.Symbol("gamma", positive=True)
_mu = sp.IndexedBase("mu", nonnegative=True)
_lam = sp.IndexedBase("lambda", nonnegative=True)
_v0 = sp.Symbol(r"\|v^{0}\|^{2}", nonnegative=True)     # ‖v⁰‖², any start of the embedding
_norm_v = sp.Symbol(r"\|v_t\|^{2}", nonnegative=True)

FIXED = Assumption("U", "the classifier is linear and fixed: logits z = U h with U (C × d) not "
                   "trained; the loss is the cross-entropy", content=D.CLASSIFIERS[0],
                   derivations=(D.CLASSIFIERS[0],))
CLASSES = Assumption("C2", "there are C ≥ 2 classes: C = C_o + 1 with C_o ≥ 1 (with one class "
                     "(C) holds vacuously while v_t stays 0 and ℓ_t = 0 throughout)",
                     content={D.C: _co + 1, y: _co})
LABEL = Assumption("Y", "every sentence holding t is labelled y, the class of t: Y_c = δ_cy; "
                   "the classes are numbered so that y = C_o, the last",
                   content={Y: lambda x: sp.KroneckerDelta(x.indices[0], y)})
SOFTMAX = Assumption("SM", "P = softmax(z) sums to 1: Σ_{c=0}^{C−1} P_c = 1, i.e. "
                     "Σ_{c=0}^{C_o} P_c = 1 (theorem softmax-jacobian, step norm)",
                     content={sp.Sum(P[c_], (c_, 0, D.C - 1)): 1,
                              sp.Sum(P[c_], (c_, 0, _co)): 1})
CURVE = Assumption(
    "CV", "keys start at 0 (so c = 0 and s_t(0) = 0) and the topic embedding at any v⁰; by "
    "theorem sen-curve, 2 g(s_t) = ‖q‖² (‖v_t‖² − ‖v⁰‖²) along the flow, g(s) = s + (e^s − 1)/m",
    content={c: 0, "level": lambda s_, nv: QQ * (nv - _v0) - 2 * (s_ + (sp.exp(s_) - 1) / m)})
EXISTS = Assumption(
    "GE", "the solution of the decoupled system exists for all τ ≥ 0: its right-hand side is "
    "smooth, and |v̇_t| ≤ 2 α ‖U‖ (|a_t| ≤ 1, |P − e_y| ≤ 2) so v_t grows at most linearly, and "
    "then so does g(s_t) by the SEN curve: no blow-up in finite time", kind="prose")


def _uw(x):
    return sp.Sum(U[x, k] * _w[k], (k, 0, D.d - 1))


def _vertex(rng, n_classes: int, width: int):
    """U whose last row u_y is a vertex: the mean of the other rows plus 2w, |w| = 1, w
    random (so (u_y − u_c)·w > 0 on average; redrawn until it holds for every c)."""
    while True:
        u = rng.standard_normal((n_classes, width))
        w = rng.standard_normal(width)
        w /= np.linalg.norm(w)
        u[-1] = u[:-1].mean(axis=0) + 2.0 * w
        if np.all((u[-1] - u[:-1]) @ w > 0):
            return u


def _inside_hull(rng, n_classes: int, width: int):
    """U whose last row u_y = Σ_{c<C_o} λ_c u_c with random convex weights λ."""
    u = rng.standard_normal((n_classes, width))
    weights = rng.dirichlet(np.ones(n_classes - 1))
    u[-1] = weights @ u[:-1]
    return u


SEPARABLE = Assumption(
    "C", "case (C): u_y is not in the convex hull of {u_c : c ≠ y}; equivalently (step gordan) "
    "some w has margins (u_y − u_c)·w = γ + μ_c with γ > 0, μ_c ≥ 0 for every c ≠ y",
    content={"sample": _vertex,
             _uw(_co) - _uw(c_): _gamma + _mu[c_]})              # (u_y − u_c)·w, y = C_o
NOT_SEPARABLE = Assumption(
    "notC", "case not (C): u_y = Σ_{c≠y} λ_c u_c with λ_c ≥ 0, Σ_{c≠y} λ_c = 1",
    content={"weights": _lam, "sample": _inside_hull,
             sp.Sum(_lam[c_], (c_, 0, _co - 1)): 1})


def _classes(expr, scope):
    """The expression with C = C_o + 1 classes (assumption C2)."""
    return expr.xreplace(scope.assumption("C2"))


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
    frozen = scope.assumption("A1")["frozen"]
    trained = tuple(n for n in ("keys", "embeddings") if n not in frozen)
    flows = scope.assumption("GF")(scope.assumption("U"), trained)
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
    """ℓ_t(v, s) = CE(z = a(s) U v, y): its gradient by the chain rule through z, with
    a′(s) = a (1 − a) as step da established."""
    model = scope.assumption("U")
    g_z = _label(D.derive(model).grads["z"].to_sympy(), scope)       # ∂ℓ/∂z_c = P_c − Y_c
    logits = next(nd for nd in model.nodes if nd.base == z)
    a_of_s = sp.Function("a")(s_t)
    z_c = logits.definition.xreplace({h[k]: a_of_s * v[k]})            # z_c = a(s) Σ_k U_ck v_k
    d_v = sp.Sum(g_z * sp.diff(z_c, v[l]), (c_, 0, D.C - 1))
    d_s = sp.Sum(g_z * sp.diff(z_c, s_t), (c_, 0, D.C - 1))
    x = D.attention_definition()[1][0]
    closed = scope.step("attention").claim.rhs.xreplace({x: p})
    slope = scope.step("da").rhs.subs(closed, a[p])                    # a′(s) from step da
    d_v, d_s = (e.subs({sp.Derivative(a_of_s, s_t): slope}).xreplace({a_of_s: a[p]})
                for e in (d_v, d_s))
    flow_v, flow_s = scope.step("system").claim.rhs
    lhs = sp.Matrix([flow_v.xreplace({k: l}), flow_s])
    rhs = sp.Matrix([-alpha * d_v, -alpha * QQ * d_s])
    return D.index_claim(lhs, rhs)


def descent(scope):
    """dℓ_t/dτ = ∇ℓ_t · (v̇, ṡ) with (v̇, ṡ) = −α diag(I, ‖q‖²) ∇ℓ_t (step gradient-system):
    a negative quadratic form in the real gradient entries g_l = ∂ℓ_t/∂v_l, g_s = ∂ℓ_t/∂s."""
    flow_v, flow_s = scope.step("gradient-system").claim.rhs
    d_v, d_s = flow_v / (-alpha), flow_s / (-alpha * QQ)              # the derived gradient
    g_v, g_s = sp.IndexedBase("g", real=True), sp.Symbol("g_s", real=True)
    named = {d_v: g_v[l], d_s: g_s}
    rate = (sp.Sum(d_v * flow_v, (l, 0, D.d - 1)) + d_s * flow_s).xreplace(named)
    return sp.Le(D.factor_sums(rate), 0, evaluate=False)


def loss_is_minus_log_p(scope):
    """ℓ = log Σ_e e^{z_e} − Σ_c Y_c z_c with Y_c = δ_cy is −log(e^{z_y} / Σ_e e^{z_e}), for
    real logits z (so e^{z_c} > 0 and log(a b) = log a + log b holds for these arguments)."""
    model = scope.assumption("U")
    # the model's logits z = U h are real; SymPy expands the logarithms only when it knows so
    loss = _classes(_label(model.nodes[-1].definition, scope), scope).xreplace({z: _z})
    p_y = sp.exp(_z[_co]) / sp.Sum(sp.exp(_z[D.e_]), (D.e_, 0, _co))
    return Normalised(sp.Eq(loss, -sp.log(p_y), evaluate=False),
                      rewriting("doit", "expand logarithms"))


def _p_y(scope):
    """P_y as step minus-log wrote it, with real logits."""
    (log_p,) = scope.step("minus-log").claim.rhs.atoms(sp.log)
    return log_p.args[0].xreplace({z: _z})


def p_y_closed(scope):
    """P_y = e^{z_y}/Σ_c e^{z_c} = 1/(1 + ξ) with ξ = Σ_{c≠y} e^{z_c − z_y}."""
    xi = sp.Sum(sp.exp(_z[c_] - _z[_co]), (c_, 0, _co - 1))
    scope.assumption("C2")
    return Normalised(sp.Eq(_p_y(scope), 1 / (1 + xi), evaluate=False),
                      rewriting("peel last term", "expand", "factored sums",
                                "cancel").then(CANONICAL_SUMS))


def nonnegative_loss(scope):
    """ℓ_t = −log P_y = log(1 + ξ) ≥ 0, ξ a sum of exponentials of real logits."""
    return sp.Ge(-sp.log(scope.step("p-y").claim.rhs), 0, evaluate=False)


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
INTERMEDIATE = Citation(
    "Let f be a continuous real function on the interval [a, b]. If f(a) < f(b) and if c is "
    "a number such that f(a) < c < f(b), then there exists a point x ∈ (a, b) such that "
    "f(x) = c.", "W. Rudin, Principles of Mathematical Analysis, 3rd ed. (1976), Theorem 4.23")

def margin(scope):
    """−Σ_c (P_c − δ_cy)(Uw)_c = Σ_c P_c ((Uw)_y − (Uw)_c), because Σ_c P_c = 1."""
    lhs = -sp.Sum((P[c_] - sp.KroneckerDelta(c_, y)) * _uw(c_), (c_, 0, D.C - 1))
    rhs = sp.Sum(P[c_] * (_uw(y) - _uw(c_)), (c_, 0, D.C - 1))
    total = scope.assumption("SM")
    return Normalised(sp.Eq(lhs, rhs, evaluate=False),
                      rewriting("expand", "in-range deltas", "factored sums").then(
                          substitution("SM", _general(total)), rewriting("expand")))


def _general(total):
    """The statement Σ_{c=0}^{C−1} P_c = 1 of assumption SM."""
    return {key: value for key, value in total.items() if key.has(D.C)}


def push(scope):
    """−∇_v ℓ_t · w = a Σ_c P_c ((Uw)_y − (Uw)_c) (gradient from step system)."""
    flow_v = scope.step("system").claim.rhs[0]
    gradient = -flow_v / alpha                                   # ∇_v ℓ_t = −v̇ / α
    lhs = -sp.Sum(gradient * _w[k], (k, 0, D.d - 1))
    rhs = a[p] * scope.step("margin").claim.rhs
    total = scope.assumption("SM")
    return Normalised(sp.Eq(lhs, rhs, evaluate=False),
                      rewriting(D.CANONICAL, "expand", "in-range deltas", "factored sums").then(
                          substitution("SM", _general(total)), rewriting("expand")))


def others(scope):
    """1 − P_y = Σ_{c≠y} P_c (Σ_c P_c = 1 with the last class y taken out)."""
    total = scope.assumption("SM")
    split = {key: value for key, value in total.items() if key.has(_co)}
    return Normalised(sp.Eq(sp.Sum(P[c_], (c_, 0, _co - 1)), 1 - P[_co], evaluate=False),
                      rewriting("complete last term").then(substitution("SM", split)))


def push_split(scope):
    """Σ_c P_c ((Uw)_y − (Uw)_c) with the margins of (C): = γ (1 − P_y) + Σ_{c≠y} P_c μ_c."""
    lhs = _classes(scope.step("margin").claim.rhs, scope)
    margins = _statements(scope.assumption("C"))
    rhs = _gamma * (1 - P[_co]) + sp.Sum(P[c_] * _mu[c_], (c_, 0, _co - 1))
    other = scope.step("others").claim
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), rewriting("peel last term").then(
        substitution("C", margins), rewriting("expand", "factored sums"),
        substitution("others", {other.lhs: other.rhs}), rewriting("expand")))


def push_bound(scope):
    """Σ_{c≠y} P_c μ_c ≥ 0 with the model's P_c = e^{z_c}/Σ_e e^{z_e} (real z) and μ_c ≥ 0."""
    p_y = _p_y(scope)
    split = scope.step("push-split").claim.rhs
    (rest,) = [t for t in sp.Add.make_args(split) if isinstance(t, sp.Sum)]
    softmax = {P[c_]: p_y.xreplace({_z[_co]: _z[c_]})}
    return sp.Ge(rest.xreplace(softmax), 0, evaluate=False)


# --- the attention stays bounded below, for any start v⁰ -------------------------------------

_sigma = sp.Symbol("sigma", real=True)        # the floor of s_t the level set gives
_wpos = sp.Symbol("w_0", nonnegative=True)


def _g(x):
    return x + (sp.exp(x) - 1) / m


def _closed_attention(scope):
    x = D.attention_definition()[1][0]
    return scope.step("attention").claim.rhs.xreplace({x: p}).xreplace(
        {c: scope.assumption("CV")[c]})


def g_increasing(scope):
    return sp.Gt(sp.diff(_g(_sigma), _sigma), 0, evaluate=False)


def g_below(scope):
    return sp.Eq(sp.Limit(_g(_sigma), _sigma, -sp.oo), -sp.oo, evaluate=False)


def level_bound(scope):
    """On the SEN level set (CV: level = 0), 2 g(s_t) = 2 g(s_t) + level =
    ‖q‖²(‖v_t‖² − ‖v⁰‖²) ≥ −‖q‖²‖v⁰‖², as ‖v_t‖² ≥ 0."""
    level = scope.assumption("CV")["level"](s_t, _norm_v)
    return sp.Ge(2 * _g(s_t) + level, -QQ * _v0, evaluate=False)


def attention_floor(scope):
    """a(s) = e^s/(e^s + m) is increasing: for s_t = σ + log(1 + w), w ≥ 0, a_t ≥ a(σ) > 0."""
    closed = _closed_attention(scope)
    at_floor = closed.xreplace({s_t: _sigma})
    return sp.Ge(closed.xreplace({s_t: _sigma + sp.log(1 + _wpos)}), at_floor, evaluate=False)


# --- (C) ⇒ ℓ_t → 0, step by step ------------------------------------------------------------

_ell_star = sp.Symbol(r"\ell^{*}", positive=True)
_beta = sp.Symbol("beta", positive=True)             # 1 − e^{−ℓ*}
_a_min = sp.Symbol("a_min", positive=True)           # a(σ)
_kappa = sp.Symbol("kappa", positive=True)           # a_min γ β / ‖w‖
_slack = sp.symbols("x_1:4", nonnegative=True)
_tau = sp.Symbol("tau", positive=True)
_ell0 = sp.Symbol(r"\ell_{0}", nonnegative=True)


def gap(scope):
    """If ℓ* > 0: ℓ_t = ℓ* + η (η ≥ 0, e^{−η} = 1/(1 + w)), so 1 − P_y = 1 − e^{−ℓ_t} ≥
    1 − e^{−ℓ*} (P_y = e^{−ℓ_t} by step minus-log)."""
    scope.step("minus-log")
    scope.step("converges")
    one_minus_p = 1 - sp.exp(-_ell_star) / (1 + _wpos)
    return sp.Ge(one_minus_p, 1 - sp.exp(-_ell_star), evaluate=False)


def gap_positive(scope):
    """β = 1 − e^{−ℓ*} > 0 for ℓ* > 0 (ℓ* = log(1 + u), u > 0)."""
    u_pos = sp.Symbol("u", positive=True)
    return sp.Gt(1 - sp.exp(-sp.log(1 + u_pos)), 0, evaluate=False)


def push_floor(scope):
    """a_p γ (1 − P_y) + Σ P_c μ_c ≥ a_min γ β when a_p = a_min + x₁, 1 − P_y = β + x₂ and
    Σ P_c μ_c = x₃, x ≥ 0 (steps attention-floor, gap, push-bound)."""
    for name in ("push", "push-bound", "attention-floor", "gap"):
        scope.step(name)
    x1, x2, x3 = _slack
    return sp.Ge((_a_min + x1) * _gamma * (_beta + x2) + x3, _a_min * _gamma * _beta,
                 evaluate=False)


def rate_floor(scope):
    """dℓ_t/dτ = −α(‖g‖² + ‖q‖² g_s²) ≤ −α κ² when ‖g‖² = κ² + x₁ (step gradient-floor)."""
    scope.step("descent")
    scope.step("gradient-floor")
    g_s = sp.Symbol("g_s", real=True)
    return sp.Le(-alpha * (_kappa ** 2 + _slack[0] + QQ * g_s ** 2), -alpha * _kappa ** 2,
                 evaluate=False)


def contradiction(scope):
    """ℓ_τ ≤ ℓ_0 − α κ² τ (step decrease) is negative at τ₁ = ℓ_0/(α κ²) + 1, against
    ℓ_t ≥ 0 (step nonnegative): so ℓ* > 0 is impossible and ℓ* = 0."""
    scope.step("decrease")
    scope.step("nonnegative")
    tau_1 = _ell0 / (alpha * _kappa ** 2) + 1
    return sp.Lt(_ell0 - alpha * _kappa ** 2 * tau_1, 0, evaluate=False)


def margins_ratio(scope):
    """log(P_y/P_c) = z_y − z_c: the classes' margins are log-ratios of probabilities."""
    p_y = _p_y(scope)
    p_c = p_y.xreplace({_z[_co]: _z[c_]})
    return Normalised(sp.Eq(sp.log(p_y / p_c), _z[_co] - _z[c_], evaluate=False),
                      rewriting("simplify", "expand logarithms"))


def g_unbounded(scope):
    scope.assumption("CV")
    return sp.Eq(sp.Limit(_g(s_t), s_t, sp.oo), sp.oo, evaluate=False)


def attention_to_one(scope):
    return sp.Eq(sp.Limit(_closed_attention(scope), s_t, sp.oo), 1, evaluate=False)


# --- not (C) ⇒ ℓ_t ≥ log 2 ------------------------------------------------------------------

_max_z = sp.Symbol("M", real=True)                    # max_{c≠y} z_c
_below_max = sp.IndexedBase("delta", nonnegative=True)  # M − z_c ≥ 0
_zeta, _rho = sp.symbols("zeta rho", nonnegative=True)


def hull_linear(scope):
    """u_y = Σ_{c≠y} λ_c u_c gives z_y = Σ_{c≠y} λ_c z_c for the logits z = U h, h = a_p v."""
    lam = scope.assumption("notC")["weights"]
    model = scope.assumption("U")
    logits = next(nd for nd in model.nodes if nd.base == z)
    h_topic = scope.step("context").claim.rhs                       # h_k = a_p v_k
    z_of = {x: logits.definition.xreplace({c_: x}).xreplace({h[k]: h_topic})
            for x in (c_,)}
    u_y = sp.Sum(lam[D.e_] * U[D.e_, k], (D.e_, 0, D.C - 1))      # λ_y = 0: the other rows
    z_y = logits.definition.xreplace({U[c_, k]: u_y}).xreplace({h[k]: h_topic})
    return D.index_claim(z_y, sp.Sum(lam[c_] * z_of[c_], (c_, 0, D.C - 1)))


def hull_bound(scope):
    """Σ_{c≠y} λ_c z_c ≤ max_{c≠y} z_c =: M, for λ_c ≥ 0 with Σ λ_c = 1 (z_c = M − δ_c,
    δ_c ≥ 0): the bound the step claims, not only linearity."""
    scope.step("hull-linear")
    notc = scope.assumption("notC")
    lam = notc["weights"]
    combination = sp.Sum(lam[c_] * (_max_z - _below_max[c_]), (c_, 0, _co - 1))
    return Normalised(sp.Le(combination, _max_z, evaluate=False),
                      rewriting("expand", "factored sums").then(
                          substitution("notC", _statements(notc))))


def _statements(content):
    """The equalities an assumption's content states (its SymPy keys)."""
    return {key: value for key, value in content.items() if isinstance(key, sp.Basic)}


def half(scope):
    """P_y = 1/(1 + ξ) (step p-y) where ξ holds the term e^{M − z_y} = 1 + ζ, ζ ≥ 0 (z_y ≤ M,
    step hull), and ρ ≥ 0 (the other terms): P_y = 1/(2 + ζ + ρ) ≤ 1/2."""
    scope.step("hull")
    p_y = scope.step("p-y").claim.rhs
    (xi,) = p_y.atoms(sp.Sum)
    return sp.Le(p_y.xreplace({xi: 1 + _zeta + _rho}), sp.Rational(1, 2), evaluate=False)


def log_two(scope):
    """ℓ_t − log 2 = −log P_y − log 2 = −log(2 P_y) ≥ 0 with P_y from step half."""
    scope.step("minus-log")
    p_y = scope.step("half").lhs
    excess = sp.expand(1 / (2 * p_y) - 1)                  # 2 P_y = 1/(1 + excess), excess ≥ 0
    return sp.Ge(-sp.log(1 / (1 + excess)), 0, evaluate=False)


# --- numeric corroboration on trajectories of the derived system ----------------------------

def _derived_system(scope, n_classes: int, width: int):
    """The right-hand side of step system as NumPy, for explicit sizes (lambdified)."""
    flow_v, flow_s = scope.step("system").claim.rhs
    closed = _closed_attention(scope)
    u_sym = sp.Matrix(n_classes, width, lambda i_, j_: sp.Symbol(f"U{i_}_{j_}"))
    v_sym = [sp.Symbol(f"v{j_}") for j_ in range(width)]
    zs = [closed * sum(u_sym[i_, j_] * v_sym[j_] for j_ in range(width))
          for i_ in range(n_classes)]
    probs = [sp.exp(zc) / sum(sp.exp(ze) for ze in zs) for zc in zs]

    def explicit(e, k_value=None):
        e = e.subs({D.C: n_classes, y: n_classes - 1, D.d: width})
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
    loss = -sp.log(probs[-1])                                    # y = C_o, the last class
    args = (v_sym, s_t, list(u_sym), alpha, QQ, m)
    return (sp.lambdify(args, rhs, "numpy"), sp.lambdify(args, loss, "numpy"),
            sp.lambdify((s_t, m), closed, "numpy"))


_SIZES = {"classes": 3, "width": 3, "m": 20, "q2": 0.5, "horizon": 600.0}


def _runs(scope, sample, seed: int):
    """Three trajectories of the derived system from s = 0 and a random small v⁰ (the
    paper's start), for U drawn by ``sample``: (losses, attentions, curve residuals)."""
    n, width, m_value, q2 = (_SIZES[x] for x in ("classes", "width", "m", "q2"))
    rhs, loss, attention = _derived_system(scope, n, width)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        params = (list(sample(rng, n, width).ravel()), 1.0, q2, m_value)
        start = np.append(1e-3 * rng.standard_normal(width), 0.0)

        def field(_, state, params=params):
            return np.asarray(rhs(list(state[:width]), state[width], *params), dtype=float)
        times = np.linspace(0.0, _SIZES["horizon"], 601)
        sol = solve_ivp(field, (0.0, times[-1]), start, method="DOP853", rtol=1e-10,
                        atol=1e-12, t_eval=times)
        vs, ss = sol.y[:width], sol.y[width]
        losses = np.array([loss(list(x[:width]), x[width], *params) for x in sol.y.T])
        norms = np.sum(vs ** 2, axis=0)
        curve = q2 * (norms - norms[0]) - 2 * (ss + np.expm1(ss) / m_value)
        out.append((losses, attention(ss, m_value), curve))
    return out


def trajectories(scope):
    """(C) (U drawn by assumption C): along every trajectory the loss never increases and the
    SEN level set holds (≤ 1e-6: 10⁴ × rtol over 600 time units), ℓ → 0 (final ℓ ≤ 1% of
    the initial) and a_t → 1 (a_t non-decreasing, final a_t ≥ 0.7, from 1/21 at the start).
    The error is the worst criterion divided by its bound (≤ 1 when all hold)."""
    worst, finals = 0.0, []
    for losses, att, curve in _runs(scope, scope.assumption("C")["sample"], seed=0):
        criteria = (float(np.max(np.diff(losses))) / 1e-6, float(np.max(np.abs(curve))) / 1e-6,
                    losses[-1] / (0.01 * losses[0]), (1 - att[-1]) / 0.3,
                    -float(np.min(np.diff(att))) / 1e-9)
        worst = max(worst, *criteria)
        finals.append(f"ℓ {losses[0]:.3f} → {losses[-1]:.1e}, a_t → {att[-1]:.3f}")
    return Measured(worst, 1.0, "worst of (loss increase, curve residual)/1e-6, final ℓ/(1% "
                    "of initial), (1 − final a_t)/0.3, a_t decrease/1e-9, over 3 random U "
                    "with (C), C = d = 3, m = 20, ‖q‖² = 0.5, τ ≤ 600: " + "; ".join(finals))


def control(scope):
    """Not (C) (U drawn by assumption notC, u_y inside the hull): the loss stays ≥ log 2 and
    never increases along every trajectory. The error is the worst criterion over its bound."""
    worst, finals = 0.0, []
    for losses, _, _ in _runs(scope, scope.assumption("notC")["sample"], seed=1):
        criteria = (float(np.max(np.diff(losses))) / 1e-6,
                    (np.log(2.0) - float(np.min(losses))) / 1e-9)
        worst = max(worst, *criteria)
        finals.append(f"ℓ {losses[0]:.3f} → {losses[-1]:.3f}")
    return Measured(worst, 1.0, "worst of loss increase/1e-6 and (log 2 − min ℓ)/1e-9 over 3 "
                    "random U with u_y in the hull: " + "; ".join(finals))


STATEMENT = (
    "Under A1–A3 and the gradient flow, with a fixed linear classifier (logits U h, "
    "cross-entropy) and C ≥ 2 classes, keys starting at 0 and the topic embedding at any v⁰: "
    "for each topic word t of class y, the pair (v_t, s_t) follows the decoupled system "
    "v̇_t = −α a_t Uᵀ(P − e_y), ṡ_t = −α ‖q‖² a_t (1 − a_t) v_tᵀUᵀ(P − e_y), with "
    "α = n_t/|D|, a_t = e^{s_t}/(e^{s_t} + m), P = softmax(a_t U v_t): the gradient flow of "
    "α ℓ_t for the inverse metric diag(I, ‖q‖²) (the metric diag(I, 1/‖q‖²)), whose solution "
    "exists for all τ ≥ 0. Its loss ℓ_t is non-increasing. ℓ_t → 0 if and only if (C): u_y is "
    "not in the convex hull of the other rows of U (the topic's class can be made the strict "
    "winner); then ‖v_t‖ → ∞, s_t → ∞ and a_t → 1. Otherwise ℓ_t ≥ log 2 throughout.")


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
             "of the embedding and key at the topic token (C = C_o + 1 classes)", "symbolic",
             system, uses=("GF", "A1", "U", "A2", "Y", "context")),
        Step("gradient-system", "it is the gradient flow of α ℓ_t(v, s), ℓ_t the cross-entropy "
             "of z = a(s) U v, for the inverse metric diag(I, ‖q‖²): v̇ = −α ∂ℓ_t/∂v, "
             "ṡ = −α ‖q‖² ∂ℓ_t/∂s, with a′(s) from step da", "symbolic", gradient_system,
             uses=("U", "Y", "attention", "da", "system")),
        Step("descent", "so dℓ_t/dτ = −α (‖∂ℓ_t/∂v‖² + ‖q‖² (∂ℓ_t/∂s)²) ≤ 0, with the "
             "derived gradient entries named g_l, g_s (real)", "symbolic", descent,
             uses=("gradient-system",)),
        Step("minus-log", "ℓ_t = −log P_y, P_y = e^{z_y}/Σ_c e^{z_c} (the model's loss with "
             "Y_c = δ_cy; real logits)", "symbolic", loss_is_minus_log_p, uses=("U", "Y", "C2")),
        Step("p-y", "P_y = 1/(1 + ξ) with ξ = Σ_{c≠y} e^{z_c − z_y} (the model's P_y, real "
             "logits)", "symbolic", p_y_closed, uses=("minus-log", "C2")),
        Step("nonnegative", "ℓ_t = −log P_y = log(1 + ξ) ≥ 0", "symbolic", nonnegative_loss,
             uses=("p-y",)),
        Step("converges", "a non-increasing loss bounded below converges: ℓ_t → ℓ* ≥ 0 "
             "(along any τ_n ↑ ∞, and so as τ → ∞ by monotonicity)", "cited",
             citation=MONOTONE, uses=("GE", "descent", "nonnegative")),
        Step("gordan", "(C) holds if and only if some w has (u_y − u_c)·w > 0 for every c ≠ y "
             "(take A with rows u_y − u_c); γ = min_c (u_y − u_c)·w > 0 and μ_c ≥ 0 the rest",
             "cited", citation=GORDAN, uses=("C",)),
        Step("margin", "for every w: −Σ_c (P_c − δ_cy)(Uw)_c = Σ_c P_c ((Uw)_y − (Uw)_c)",
             "symbolic", margin, uses=("SM",)),
        Step("push", "−∇_v ℓ_t · w = a_p Σ_c P_c ((Uw)_y − (Uw)_c)", "symbolic", push,
             uses=("SM", "system", "margin")),
        Step("others", "1 − P_y = Σ_{c≠y} P_c", "symbolic", others, uses=("SM",)),
        Step("push-split", "with the margins of (C): Σ_c P_c ((Uw)_y − (Uw)_c) = "
             "γ (1 − P_y) + Σ_{c≠y} P_c μ_c", "symbolic", push_split,
             uses=("C", "C2", "gordan", "margin", "others")),
        Step("push-bound", "Σ_{c≠y} P_c μ_c ≥ 0 for the model's P_c = e^{z_c}/Σ_e e^{z_e}, so "
             "−∇_v ℓ_t · w ≥ a_p γ (1 − P_y)", "symbolic", push_bound,
             uses=("push-split", "minus-log")),
        Step("g-increasing", "g(s) = s + (e^s − 1)/m has g′(s) = 1 + e^s/m > 0", "symbolic",
             g_increasing),
        Step("g-below", "g(s) → −∞ as s → −∞", "symbolic", g_below),
        Step("level-bound", "on the SEN level set 2 g(s_t) = ‖q‖²(‖v_t‖² − ‖v⁰‖²) ≥ "
             "−‖q‖²‖v⁰‖², for any start v⁰", "symbolic", level_bound, uses=("CV",)),
        Step("score-floor", "so s_t ≥ σ for all τ, σ the solution of 2 g(σ) = −‖q‖²‖v⁰‖² (it "
             "exists by the intermediate value theorem, g continuous with g(−∞) = −∞ and "
             "g(0) = 0; g increasing gives s_t ≥ σ)", "cited", citation=INTERMEDIATE,
             uses=("g-increasing", "g-below", "level-bound")),
        Step("attention-floor", "a_p = a(s_t) ≥ a(σ) =: a_min > 0, a increasing (c = 0, "
             "s_t = σ + log(1 + w), w ≥ 0)", "symbolic", attention_floor,
             uses=("attention", "CV", "score-floor")),
        Step("gap", "if ℓ* > 0: P_y = e^{−ℓ_t} ≤ e^{−ℓ*}, so 1 − P_y ≥ β := 1 − e^{−ℓ*}",
             "symbolic", gap, uses=("minus-log", "converges")),
        Step("gap-positive", "β = 1 − e^{−ℓ*} > 0 for ℓ* > 0", "symbolic", gap_positive),
        Step("push-floor", "so −∇_v ℓ_t · w ≥ a_min γ β throughout", "symbolic", push_floor,
             uses=("push", "push-bound", "attention-floor", "gap")),
        Step("gradient-floor", "by Cauchy–Schwarz ‖∇_v ℓ_t‖ ‖w‖ ≥ −∇_v ℓ_t · w ≥ a_min γ β, so "
             "‖∇_v ℓ_t‖ ≥ κ := a_min γ β / ‖w‖ > 0", "cited", citation=CAUCHY_SCHWARZ,
             uses=("push-floor", "gap-positive")),
        Step("rate-floor", "so dℓ_t/dτ ≤ −α κ² throughout", "symbolic", rate_floor,
             uses=("descent", "gradient-floor")),
        Step("decrease", "by the mean value theorem ℓ_τ − ℓ_0 = τ dℓ/dτ(ξ) ≤ −α κ² τ",
             "cited", citation=MVT, uses=("rate-floor", "GE")),
        Step("loss-to-zero", "then ℓ_τ < 0 at τ = ℓ_0/(α κ²) + 1, against ℓ_t ≥ 0: so ℓ* = 0",
             "symbolic", contradiction, uses=("decrease", "nonnegative")),
        Step("ratios", "log(P_y/P_c) = z_y − z_c", "symbolic", margins_ratio,
             uses=("minus-log",)),
        Step("norm-diverges", "ℓ_t → 0 gives P_y → 1, so z_y − z_c = log(P_y/P_c) → ∞ for every "
             "c ≠ y; as |z_y − z_c| = a_p |(u_y − u_c)·v_t| ≤ ‖u_y − u_c‖ ‖v_t‖ (a_p ≤ 1, "
             "Cauchy–Schwarz), ‖v_t‖ → ∞", "cited", citation=CAUCHY_SCHWARZ,
             uses=("loss-to-zero", "ratios", "context")),
        Step("g-unbounded", "g(s) = s + (e^s − 1)/m → ∞ as s → ∞", "symbolic", g_unbounded,
             uses=("CV",)),
        Step("score-diverges", "by the SEN curve 2 g(s_t) = ‖q‖²(‖v_t‖² − ‖v⁰‖²) → ∞; g is "
             "continuous, hence bounded on every [σ, S], so s_t → ∞", "cited", citation=BOUNDED,
             uses=("CV", "norm-diverges", "g-unbounded")),
        Step("attention-to-one", "a_t = e^{s_t}/(e^{s_t} + m) → 1 as s_t → ∞", "symbolic",
             attention_to_one, uses=("attention", "CV")),
        Step("hull-linear", "case not (C): u_y = Σ_{c≠y} λ_c u_c gives z_y = Σ_{c≠y} λ_c z_c "
             "for the model's logits z = a_p U v", "symbolic", hull_linear,
             uses=("notC", "U", "context")),
        Step("hull", "and z_y = Σ_{c≠y} λ_c z_c ≤ max_{c≠y} z_c (λ_c ≥ 0, Σ λ_c = 1)",
             "symbolic", hull_bound, uses=("notC", "hull-linear")),
        Step("half", "so P_y = 1/(1 + ξ) with ξ ≥ e^{max_c z_c − z_y} ≥ 1: P_y ≤ 1/2",
             "symbolic", half, uses=("hull", "p-y")),
        Step("log-two", "and ℓ_t − log 2 = −log(2 P_y) ≥ 0: the loss stays ≥ log 2 and "
             "does not tend to 0, so (C) is necessary", "symbolic", log_two,
             uses=("half", "minus-log")),
        Step("trajectories", "corroboration with (C): along trajectories of the derived system "
             "from s = 0 and a small random v⁰, the loss never increases, the SEN level set "
             "holds, ℓ → 0 and a_t → 1", "numeric", trajectories,
             uses=("system", "attention", "CV", "C")),
        Step("control", "corroboration without (C): with u_y inside the hull the loss stays "
             "≥ log 2 along the trajectories", "numeric", control,
             uses=("system", "attention", "CV", "notC")),
    )
    return Theorem("convergence-fixed-classifier", "Convergence with a fixed linear classifier",
                   STATEMENT, (GF, A1, FIXED, A2, A3, CLASSES, LABEL, SOFTMAX, CURVE, EXISTS,
                               SEPARABLE, NOT_SEPARABLE), steps)


def theorems() -> tuple[Theorem, ...]:
    return (convergence(),)

"""The named, tested set of exact rewritings a claim may be decided after.

A :class:`proofs.kernel.Normalised` claim is decided after a rewriting of both sides. A wrong
rewriting (``e → 0``) would make any claim pass, so the theorems built on declared laws take
their normalisers only from :data:`NORMALISERS`, by name (:func:`normalised`), and the audit
re-checks, in theorem ``normalisers-exact``, that each one leaves the value of a battery of
expressions unchanged at explicit sizes and exact random values.
"""

from __future__ import annotations

import functools
import itertools
import random

import sympy as sp

from proofs import derivations as D
from proofs.kernel import Normalised, Step, Theorem
from symbolic import laws as SL
from symbolic.indexform import IExpr, Term, canonical, kind_of
from symbolic.model import (
    CLASS,
    FOLDS,
    HIDDEN,
    TOKEN,
    VU,
    W1,
    W2,
    H,
    P,
    U,
    Y,
    Z_s,
    Z_z,
    a,
    b1,
    b2,
    h,
    o,
    s,
    u,
    z,
)
from symbolic.models import attention as MH


def _canonical_cancel(expr):
    return sp.cancel(D.canonical(expr))


def idempotent_deltas(expr):
    """δ^n = δ for n ≥ 1 (a Kronecker delta is 0 or 1)."""
    return expr.replace(lambda x: x.is_Pow and isinstance(x.base, sp.KroneckerDelta)
                        and x.exp.is_Integer and x.exp > 0, lambda x: x.base)


def _canonical_cancel_deltas(expr):
    return sp.cancel(D.canonical(idempotent_deltas(sp.expand(expr))))


def _factor_sums_cancel(expr):
    return sp.cancel(D.factor_sums(expr))


#: Softmax outputs of the model and the index kind each sums to 1 over: the attention
#: ``Σ_i a_i = 1`` (over the L tokens) and the class probabilities ``Σ_c P_c = 1``.
SOFTMAX_OUTPUTS = {a: TOKEN, P: CLASS}


def softmax_sums(expr):
    """``Σ_i a_i = 1`` and ``Σ_c P_c = 1``: in each term of the index form, a summed index
    read by exactly one factor, that factor ``a_i`` (token range) or ``P_c`` (class range),
    is summed away. Exact where ``a`` and ``P`` are the model's softmax nodes."""
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(softmax_sums)
    terms = []
    for tm in IExpr.from_sympy(expr, FOLDS).terms:
        body, summed = tm.body, list(tm.summed)
        for idx in list(summed):
            uses = [f for f in sp.Mul.make_args(body) if idx in f.free_symbols]
            if (len(uses) == 1 and isinstance(uses[0], sp.Indexed)
                    and SOFTMAX_OUTPUTS.get(uses[0].base) is kind_of(idx)
                    and uses[0].indices == (idx,)):
                body = body.xreplace({uses[0]: 1})
                summed.remove(idx)
        terms.append(Term(tm.coeff, body, tuple(summed)))
    return canonical(terms, FOLDS).to_sympy()


def _canonical_softmax_sums(expr):
    return D.canonical(softmax_sums(D.canonical(expr)))


#: name → (rewriting, what it does). Every entry is exact: it preserves the value.
NORMALISERS = {
    "canonical": (D.canonical, D.CANONICAL_MEANING),
    "canonical-cancel": (_canonical_cancel, D.CANONICAL_MEANING + ", then cancelled"),
    "canonical-cancel-deltas": (_canonical_cancel_deltas, "expanding, δ² = δ, then "
                                + D.CANONICAL_MEANING + ", then cancelled"),
    "expand": (sp.expand, "expanding products and powers"),
    "factor-sums": (D.factor_sums, "splitting sums over independent factors"),
    "factor-sums-cancel": (_factor_sums_cancel,
                           "splitting sums over independent factors, then cancelling"),
    "canonical-softmax-sums": (_canonical_softmax_sums, D.CANONICAL_MEANING + ", then Σ_i a_i "
                               "= 1 and Σ_c P_c = 1 (the softmax outputs) summed away"),
}


def normalised(claim, name: str) -> Normalised:
    """``claim`` decided after the registered normaliser ``name`` (KeyError if unknown)."""
    if name not in NORMALISERS:
        raise KeyError(f"normaliser {name!r} is not in the named set {sorted(NORMALISERS)}")
    rewrite, meaning = NORMALISERS[name]
    return Normalised(claim, rewrite, f"{name} ({meaning})")


# --- the self-test the audit runs -------------------------------------------------------------

_i, _j, _k, _l, _r, _t = D.i, D.j, D.k, D.l, D.r, D.t
_c, _e = CLASS.index(0), CLASS.index(1)
_n, _w = HIDDEN.index(0), SL.w
#: The explicit sizes of the battery (and the topic token p = 1, the label class y = 1).
SIZES = {D.L: 3, D.d: 2, D.d_key: 2, D.p: 1, D.C: 2, H: 2, SL.n_words: 3, D.n_data: 2,
         MH.heads: 2, MH.d_head: 2}
#: Arrays of the theorems' claims besides the model's: the gradient symbol of the context, the
#: tracked key and the query's velocity (sen-breaks-query), convex weights (convergence).
g_h, kappa_t, qdot, lam = (sp.IndexedBase(x) for x in ("g_h", "kappa_t", "qdot", "lambda"))
alpha, y, w_ = sp.Symbol("alpha", positive=True), sp.Symbol("y", integer=True), sp.Symbol("w")


#: Values of the indices a battery expression leaves free (the label class y, a component).
INDEX_VALUES = {y: 1, _w: 0, _l: 0, _c: 1}


def _sum(body, *indices):
    return sp.Sum(body, *((x, 0, kind_of(x).size - 1) for x in indices))


def battery() -> dict[str, sp.Expr]:
    """Expressions exercising what the normalisers rewrite — deltas, sums over independent
    factors, ``Σ_r q_r²`` and ``‖q‖²`` in numerators and denominators, exponentials, softmax
    outputs written out and summed — over every array, symbol and function the theorems'
    claims hold (the kernel refuses a normaliser on a claim holding anything else): the
    paper's model, then the self-attention family's."""
    return {**paper_battery(), **attention_battery()}


def paper_battery() -> dict[str, sp.Expr]:
    """The battery over the paper's model and the theorems about it."""
    G, V, K, q, v = D.G, D.V, D.K, D.q, D.v
    qq = D.norm2(q, _r)
    return {
        "deltas": _sum(sp.KroneckerDelta(_i, D.p) * V[_i, _k] * G[_k], _i, _k)
        + _sum(sp.KroneckerDelta(_i, D.p) ** 2 * V[_i, _k] * G[_k], _i, _k),
        "independent sums": _sum(q[_r] ** 2 * G[_k] * v[_k], _r, _k)
        - D.QQ * _sum(G[_k], _k),
        "norm in a fraction": (1 + sp.exp(D.s_t) / D.m) * qq / D.QQ
        - _sum(K[D.p, _r] * q[_r], _r) / (D.m * D.QQ),
        "rational": (sp.exp(D.s_t) + D.m * sp.exp(D.c)) / (sp.exp(D.s_t) * D.QQ) - 1 / D.m,
        "softmax sums": _sum(a[_i] * a[_j] * V[_j, _k] * G[_k], _i, _j, _k)
        - _sum(a[_i] * V[_i, _k] * G[_k], _i, _k) + _sum(P[_c] * G[_k] * v[_k], _c, _k)
        + _sum(a[_i] ** 2 * G[_k], _i, _k),
        "softmax written out": _sum(sp.exp(s[_i]) * V[_i, _k] * G[_k], _i, _k) / Z_s
        - _sum(a[_i] * V[_i, _k] * G[_k], _i, _k)
        + _sum(sp.exp(z[_c]) * U[_c, _k] * h[_k], _c, _k) / Z_z,
        "classifier and label": _sum(U[_c, _k] * h[_k] * (P[_c] - Y[_c]), _c, _k)
        + _sum(sp.KroneckerDelta(_c, y) * P[_c] * VU[_i, _c] * a[_i], _c, _i)
        + _sum(Y[_c], _c) * _sum(z[_e] * P[_e], _e),
        "two layers": _sum(W2[_c, _n] * sp.Heaviside(u[_n]) * u[_n] * (P[_c] - Y[_c]), _c, _n)
        + _sum(W1[_n, _k] * h[_k] * b1[_n] * o[_n], _n, _k) - _sum(b2[_c] * P[_c], _c),
        "words and directions": _sum(SL.omega[_i, _w] * K[_i, _r] * q[_r], _i, _w, _r)
        + _sum(SL.Pi[_l, _k] * U[_c, _k] - SL.beta[_l], _l, _k, _c)
        + _sum(SL.Pi[_l, _k] * _sum(a[_i] * V[_i, _k], _i), _l, _k),
        "tracked quantities": _sum(g_h[_k] * G[_k] * alpha, _k) / D.n_data
        + _sum(SL.kappa[_r] * kappa_t[_r] * qdot[_r], _r)
        + _sum(lam[_c] * z[_c], _c) * w_ / (1 + w_ ** 2),
    }


# the self-attention family (symbolic.models.attention): per head h, matrices Q, K, V, O over
# (head dim x, embedding k); token vectors E; nodes xq, xk, xv, s, a, ho, y, ybar, z
_h, _f = MH.HEAD.index(0), MH.HEAD.index(1)
_x, _y = MH.HEAD_DIM.index(0), MH.HEAD_DIM.index(1)
#: ∂ℓ/∂z kept as a symbol (the any-loss step) and the attention's normaliser Σ_j e^{s[h,i,j]}.
g_z, Z_heads = sp.IndexedBase("g_z"), sp.IndexedBase("Z_s")


def attention_battery() -> dict[str, sp.Expr]:
    """The battery over the self-attention family: projections, scores with the
    temperature, attention per head written out and summed, head outputs through O and U,
    the pooled output, logits, class probabilities and the label; deltas between heads."""
    E, Q, K, V, O, U, G = MH.E, MH.Q, MH.K, MH.V, MH.O, MH.U, MH.G  # noqa: E741
    xq, xk, xv, ho, yy, ybar, z_ = MH.xq, MH.xk, MH.xv, MH.ho, MH.y, MH.ybar, MH.z
    tau, L = MH.tau, D.L
    return {
        "heads: projections": _sum(Q[_h, _x, _k] * E[_i, _k] * xk[_h, _i, _x], _h, _i, _x, _k)
        / tau - _sum(sp.KroneckerDelta(_h, _f) * Q[_f, _x, _k] * K[_h, _x, _k], _h, _f, _x, _k)
        + _sum(K[_h, _x, _k] * E[_i, _l], _h, _x, _k, _i, _l)
        - _sum(xq[_h, _i, _x] * xv[_h, _i, _y] * V[_h, _y, _k], _h, _i, _x, _y, _k) / tau,
        "heads: attention": _sum((sp.exp(s[_h, _i, _j]) * Z_heads[_h, _i] ** -1
                                  - a[_h, _i, _j] ** 2) * s[_h, _i, _j], _h, _i, _j)
        - _sum(a[_h, _i, _j] * xv[_h, _j, _x] * ho[_h, _i, _x], _h, _i, _j, _x) / L,
        "heads: outputs": _sum(ho[_h, _i, _x] * O[_h, _x, _k] * g_z[_k], _h, _i, _x, _k) / L
        - _sum(yy[_i, _k] * U[_c, _k] * G[_c], _i, _k, _c) / L
        + _sum(ybar[_k] * U[_c, _k] * (P[_c] - Y[_c]) * z_[_c], _k, _c)
        + _sum(Y[_c], _c) * _sum(P[_e] * ybar[_k] * O[_h, _x, _k], _e, _k, _h, _x),
    }


def elements(expr) -> set[str]:
    """What an expression is made of, as a normaliser meets it: its arrays (indexed bases),
    its free symbols other than typed indices, and the functions it applies."""
    claims = list(expr.args) if isinstance(expr, sp.core.relational.Relational) else [expr]
    out: set[str] = set()
    for claim in claims:
        if isinstance(claim, sp.MatrixBase):
            claims.extend(claim)
            continue
        if not isinstance(claim, sp.Basic):
            continue
        out |= {str(x.base.label) for x in claim.atoms(sp.Indexed)}
        labels = {x.base.label for x in claim.atoms(sp.Indexed)}
        out |= {str(x) for x in claim.free_symbols
                if isinstance(x, sp.Symbol) and x not in labels and kind_of(x) is None
                and x != D.chi}
        out |= {type(f).__name__ for f in claim.atoms(sp.Function)}
    return out


def covered(name: str) -> set[str]:
    """Every element the battery exercises (the same battery tests every named normaliser)."""
    return set(_battery_elements())


@functools.cache
def _battery_elements() -> frozenset:
    # the battery is fixed code: what it is made of is read once per process
    return frozenset().union(*(elements(e) for e in battery().values()))


def _value(expr, values: dict) -> sp.Expr:
    """``expr`` at the explicit sizes and the given values of every entry (by array name and
    index) and scalar (by name)."""
    expr = _unrolled(expr.xreplace(SIZES)).xreplace(INDEX_VALUES)
    entries = {x: values[(str(x.base.label), tuple(int(n) for n in x.indices))]
               for x in expr.atoms(sp.Indexed)}
    expr = expr.xreplace(entries)
    return expr.xreplace({x: values[str(x)] for x in expr.free_symbols})


def _unrolled(expr):
    """Every sum over explicit bounds written out term by term (SymPy's own evaluation of
    sums of Kronecker deltas recurses without end on some)."""
    def unroll(total):
        body = total.function
        for x, lo, hi in reversed(total.limits):
            body = sp.Add(*(body.xreplace({x: n}) for n in range(int(lo), int(hi) + 1)))
        return body
    return expr.replace(lambda x: isinstance(x, sp.Sum), unroll)


#: Array name → shape at :data:`SIZES` (L = 3 tokens, d = d_key = C = H = 2, 3 words).
SHAPES = {"G": (2,), "V": (3, 2), "K": (3, 2), "q": (2,), "v": (2,), "U": (2, 2),
          "W1": (2, 2), "b1": (2,), "W2": (2, 2), "b2": (2,), "h": (2,), "u": (2,), "o": (2,),
          "VU": (3, 2), "omega": (3, 3), "Pi": (2, 2), "beta": (2,), "g_h": (2,),
          "kappa": (2,), "kappa_t": (2,), "qdot": (2,), "lambda": (2,)}
#: The self-attention family's arrays at heads = d_head = 2 (G, U, z, P, Y as above): an
#: array of several shapes has the values of each (entries are keyed by name and index).
ATTENTION_SHAPES = {"E": (3, 2), "Q": (2, 2, 2), "K": (2, 2, 2), "V": (2, 2, 2),
                    "O": (2, 2, 2), "xq": (2, 3, 2), "xk": (2, 3, 2), "xv": (2, 3, 2),
                    "ho": (2, 3, 2), "y": (3, 2), "ybar": (2,), "g_z": (2,)}


def _values(seed: int) -> dict:
    """Exact random values of every entry and scalar, where the normalisers' facts hold: the
    attention and the class probabilities are the softmax of the scores and logits (so they
    sum to 1), the one-hot label sums to 1, ‖q‖² = Σ_r q_r²."""
    rng = random.Random(seed)
    out = {}
    for name, shape in SHAPES.items():
        for at in _entries(shape):
            out[(name, at)] = sp.Rational(rng.randint(-9, 9), rng.randint(1, 5))
    for name, softmax, size in (("s", "a", 3), ("z", "P", 2)):
        logits = [sp.Integer(rng.randint(0, 1)) for _ in range(size)]
        total = sum(sp.exp(x) for x in logits)
        out[str(Z_s if name == "s" else Z_z)] = total
        for x in range(size):
            out[(name, (x,))], out[(softmax, (x,))] = logits[x], sp.exp(logits[x]) / total
    label = rng.randrange(2)
    for x in range(2):
        out[("Y", (x,))] = sp.Integer(x == label)
    out.update({str(D.s_t): sp.Rational(rng.randint(-5, 5), 3), str(D.c): sp.Rational(1, 2),
                str(D.m): 2, str(alpha): sp.Rational(rng.randint(1, 9), 4),
                str(w_): sp.Rational(rng.randint(-9, 9), 2)})
    out[str(D.QQ)] = sum(out[("q", (x,))] ** 2 for x in range(2))
    _attention_values(out, rng)
    return out


def _attention_values(out: dict, rng: random.Random) -> None:
    """The self-attention family's entries (drawn after the paper's, which stay as they
    were): the attention of each head and token the softmax of its scores, ``Z_s[h, i]``
    their normaliser, τ positive. Scores are logarithms of 1…4, so the attention is rational
    (cheap to evaluate) and still the softmax of the scores."""
    for name, shape in ATTENTION_SHAPES.items():
        for at in _entries(shape):
            out[(name, at)] = sp.Rational(rng.randint(-9, 9), rng.randint(1, 5))
    for head in range(2):
        for i in range(3):
            scores = [sp.log(rng.randint(1, 4)) for _ in range(3)]
            total = sum(sp.exp(x) for x in scores)
            out[("Z_s", (head, i))] = total
            for j, x in enumerate(scores):
                out[("s", (head, i, j))], out[("a", (head, i, j))] = x, sp.exp(x) / total
    out[str(MH.tau)] = sp.Rational(rng.randint(1, 9), rng.randint(1, 4))


def _entries(shape):
    return list(itertools.product(*map(range, shape)))


def _exact(name: str):
    def check(scope):
        rewrite = NORMALISERS[name][0]
        values = _values(seed=sum(map(ord, name)))
        out = {}
        for label, expr in battery().items():
            before, after = _value(expr, values), _value(rewrite(expr), values)
            out[label] = sp.Eq(after, before, evaluate=False)
        return out
    return check


def theorems() -> tuple[Theorem, ...]:
    steps = tuple(Step(name, f"the normaliser {name!r} ({meaning}) preserves the value of "
                       "every battery expression at L = 3, d = d_key = heads = d_head = 2 and "
                       "exact random values", "instance", _exact(name))
                  for name, (_, meaning) in NORMALISERS.items())
    return (Theorem("normalisers-exact", "The named normalisers are exact",
                    "Every rewriting a declared law's proof decides a claim after preserves "
                    "values (checked on explicit instances).", (), steps),)

"""The bridge from the symbolic derivation to the theorems' claims.

The theorems reason about the expressions ``symbolic`` derives (and prints into the engine):
the per-sentence flows ``−∂ℓ/∂θ`` of :func:`symbolic.derive.flow` and the gradients of
:func:`symbolic.derive.derive`. This module names the paper's objects in that index form
(the topic token ``p``, its embedding ``v`` and score ``s_t``, the common non-topic score ``c``)
and gives the exact rewritings the proofs decide claims after (:func:`index_claim`).
"""

from __future__ import annotations

import sympy as sp

from proofs.kernel import Normalised
from symbolic.derive import derive, flow
from symbolic.indexform import IExpr
from symbolic.model import (
    CLASS,
    EMBED,
    FOLDS,
    HIDDEN,
    KEY,
    TOKEN,
    C,
    G,
    H,
    K,
    L,
    Model,
    V,
    a,
    attention_nodes,
    d,
    d_key,
    q,
    s,
)

# Indices: tokens i, j; the topic token p; embedding k, l; key r, t; class c; hidden n.
i, j, p = TOKEN.index(0), TOKEN.index(1), TOKEN.index(2)
k, l = EMBED.index(0), EMBED.index(1)  # noqa: E741 (the model's own index names)
r, t = KEY.index(0), KEY.index(1)
c_, e_ = CLASS.index(0), CLASS.index(1)
n_ = HIDDEN.index(0)

#: The topic word's embedding ``v_t`` (a vector over embedding indices) and key ``κ_t``.
v = sp.IndexedBase("v", real=True)
kappa = sp.IndexedBase("kappa", real=True)
#: Topic score, common non-topic score, non-topic tokens per sentence.
s_t = sp.Symbol("s_t", real=True)
c = sp.Symbol("c", real=True)
m = sp.Symbol("m", integer=True, positive=True)

#: ``‖q‖²``, the abbreviation the proofs use for ``Σ_r q_r²`` (it is folded back by
#: :func:`canonical`, so a claim may be written with either).
QQ = sp.Symbol(r"\|q\|^{2}", positive=True)

ABSTRACT = Model("linear", "abstract")
CLASSIFIERS = (Model("linear"), Model("mlp"))

#: The exact rewriting most index-form claims are decided after (explained in the report).
CANONICAL = "the canonical index form"
CANONICAL_MEANING = (
    "Kronecker deltas eliminated over typed index ranges, exp(s_i)/Σ_j exp(s_j) folded back "
    "to a_i (softmax normalisers likewise), summed indices renamed canonically so that sums "
    "differing only in their dummy's name are equal, sums over independent indices factored, "
    "Σ_r q_r² written ‖q‖², then rational functions cancelled (symbolic.indexform)")


def norm2(base, idx) -> sp.Expr:
    """``Σ_idx base[idx]²`` over idx's full range (``‖q‖²``, ``‖v‖²``)."""
    kind = {t: KEY, l: EMBED, k: EMBED, r: KEY}[idx]
    return sp.Sum(base[idx] ** 2, (idx, 0, kind.size - 1))


def dot(x, y, idx) -> sp.Expr:
    kind = {k: EMBED, l: EMBED, r: KEY, t: KEY}[idx]
    return sp.Sum(x * y, (idx, 0, kind.size - 1))


def factor_sums(expr) -> sp.Expr:
    """``Σ_{x,y} f(x) g(y) = (Σ_x f(x)) (Σ_y g(y))``: split each sum into sums over groups of
    factors that share no summed index (factors free of them move outside)."""
    def split(total: sp.Sum):
        limits = {lim[0] for lim in total.limits}
        groups: list[tuple[set, list]] = []
        outside = []
        for factor in sp.Mul.make_args(total.function):
            mine = factor.free_symbols & limits
            if not mine:
                outside.append(factor)
                continue
            joined = [g for g in groups if g[0] & mine]
            groups = [g for g in groups if not g[0] & mine]
            groups.append((mine.union(*(g[0] for g in joined)),
                           [f for g in joined for f in g[1]] + [factor]))
        out = sp.Mul(*outside)
        used = set()
        for indices, factors in groups:
            used |= indices
            out *= sp.Sum(sp.Mul(*factors), *(lim for lim in total.limits if lim[0] in indices))
        for x, lo, hi in total.limits:
            if x not in used:
                out *= hi - lo + 1
        return out
    return sp.expand(expr).replace(lambda x: isinstance(x, sp.Sum), split)


def canonical(expr) -> sp.Expr:
    """The index-form canonical form (``IExpr``) of ``expr``, then independent sums factored.
    Quantities outside index form (``s_t``, ``c``, ``m``) pass through as coefficients."""
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(canonical)
    # ‖q‖² in a numerator is written as its sum (so it meets Σ_r q_r² of a derivation); in a
    # denominator it stays a positive symbol (index form has no sums in denominators).
    inverse = sp.Dummy("inverse_norm_q", positive=True)
    expr = expr.replace(lambda x: x.is_Pow and x.base == QQ and x.exp.is_negative,
                        lambda x: inverse ** (-x.exp))
    expr = expr.xreplace({QQ: norm2(q, r)}).xreplace({inverse: 1 / QQ})
    return fold_norm_q(factor_sums(IExpr.from_sympy(expr, FOLDS).to_sympy()))


def fold_norm_q(expr) -> sp.Expr:
    """Write ``Σ_x q_x²`` (over the full key range, any dummy name) as ``‖q‖²``."""
    def is_norm_q(x):
        return (isinstance(x, sp.Sum) and len(x.limits) == 1 and x.function.is_Pow
                and x.function.exp == 2 and isinstance(x.function.base, sp.Indexed)
                and x.function.base.base == q
                and x.function.base.indices == (x.limits[0][0],)
                and x.limits[0][1] == 0 and x.limits[0][2] == d_key - 1)
    return expr.replace(is_norm_q, lambda x: QQ)


def index_claim(lhs, rhs, how: str = CANONICAL) -> Normalised:
    """``lhs = rhs`` decided after both sides are put in canonical index form."""
    return Normalised(sp.Eq(lhs, rhs, evaluate=False), canonical, how)


def at_topic(expr: IExpr, index=i) -> sp.Expr:
    """An index-form expression with free token index ``index`` read at the topic token p."""
    return expr.xreplace({index: p}, FOLDS).to_sympy()


def embeddings_only_topic(expr) -> sp.Expr:
    """A2 on embeddings: the embedding at token x is ``δ_xp v`` (non-topic embeddings 0)."""
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == V,
                        lambda x: sp.KroneckerDelta(x.indices[0], p) * v[x.indices[1]])


def keys_only_topic(expr) -> sp.Expr:
    """Non-topic keys 0 (so c = 0): the key at token x is ``δ_xp κ_t``."""
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == K,
                        lambda x: sp.KroneckerDelta(x.indices[0], p) * kappa[x.indices[1]])


def exp_scores_a2(expr) -> sp.Expr:
    """A2 on scores: ``e^{s_x} = δ_xp e^{s_t} + (1 − δ_xp) e^c`` (every non-topic score is c)."""
    def value(x):
        delta = sp.KroneckerDelta(x.args[0].indices[0], p)
        return delta * sp.exp(s_t) + (1 - delta) * sp.exp(c)
    return expr.replace(lambda x: isinstance(x, sp.exp) and isinstance(x.args[0], sp.Indexed)
                        and x.args[0].base == s, value)


def attention_definition() -> tuple[sp.Expr, tuple]:
    """The model's attention node ``a[i] = exp(s[i]) / Σ_j exp(s[j])`` and its indices."""
    node = next(n for n in attention_nodes() if n.base == a)
    return node.definition, node.indices


def attention_a2_a3(token=p) -> sp.Expr:
    """The closed form the ``attention`` steps establish for ``a_token`` under A2 and A3."""
    delta = sp.KroneckerDelta(token, p)
    return (delta * sp.exp(s_t) + (1 - delta) * sp.exp(c)) / (sp.exp(s_t) + m * sp.exp(c))


__all__ = ["ABSTRACT", "CLASSIFIERS", "C", "G", "H", "K", "L", "QQ", "V", "a", "c", "d",
           "d_key", "derive", "flow", "kappa", "m", "q", "s", "s_t", "v"]


def expand_node(expr, model: Model, base) -> sp.Expr:
    """Replace every ``base[x]`` by the model's definition of that node read at ``x`` (SymPy's
    sums bind their own indices, so the substitution captures nothing)."""
    node = next(nd for nd in model.nodes if nd.base == base)
    return expr.replace(
        lambda x: isinstance(x, sp.Indexed) and x.base == base,
        lambda x: node.definition.xreplace(dict(zip(node.indices, x.indices))))


#: Sentence index and data-set size for the data-set-level steps.
chi = sp.Symbol("chi", integer=True, nonnegative=True)
n_data = sp.Symbol("N", integer=True, positive=True)


def in_sentence(expr, shared) -> sp.Expr:
    """Tag every per-sentence quantity ``X[x]`` (all but the ``shared`` parameters) as
    ``X[χ, x]``: the same expression, evaluated in sentence χ."""
    return expr.replace(
        lambda x: isinstance(x, sp.Indexed) and x.base not in shared,
        lambda x: x.base[(chi,) + tuple(x.indices)])


def mean_over_sentences(per_sentence, shared, count=n_data) -> sp.Expr:
    """``(1/N) Σ_χ`` of a per-sentence rate (χ ranging over ``count`` sentences)."""
    return sp.Sum(in_sentence(per_sentence, shared), (chi, 0, count - 1)) / n_data


def reduce_each_sentence(reduce):
    """A normaliser applying ``reduce`` to the body of each sum over sentences: the body is the
    per-sentence expression with sentence χ's quantities, so it reduces as that one does."""
    def untag(body):
        return body.replace(
            lambda x: isinstance(x, sp.Indexed) and x.indices and x.indices[0] == chi,
            lambda x: x.base[x.indices[1:]])

    def normalise(expr):
        return expr.replace(
            lambda x: isinstance(x, sp.Sum) and x.limits[0][0] == chi,
            lambda x: sp.Sum(reduce(untag(x.function)), *x.limits))
    return normalise

"""The named, tested set of exact rewritings a claim may be decided after.

A :class:`proofs.kernel.Normalised` claim is decided after a rewriting of both sides. A wrong
rewriting (``e → 0``) would make any claim pass, so the theorems built on declared laws take
their normalisers only from :data:`NORMALISERS`, by name (:func:`normalised`), and the audit
re-checks, in theorem ``normalisers-exact``, that each one leaves the value of a battery of
expressions unchanged at explicit sizes and exact random values.
"""

from __future__ import annotations

import random

import sympy as sp

from proofs import derivations as D
from proofs.kernel import Normalised, Step, Theorem


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
}


def normalised(claim, name: str) -> Normalised:
    """``claim`` decided after the registered normaliser ``name`` (KeyError if unknown)."""
    if name not in NORMALISERS:
        raise KeyError(f"normaliser {name!r} is not in the named set {sorted(NORMALISERS)}")
    rewrite, meaning = NORMALISERS[name]
    return Normalised(claim, rewrite, f"{name} ({meaning})")


# --- the self-test the audit runs -------------------------------------------------------------

_i, _j, _k, _r = D.i, D.j, D.k, D.r
SIZES = {D.L: 3, D.d: 2, D.d_key: 2, D.p: 1}


def battery() -> dict[str, sp.Expr]:
    """Expressions exercising what the normalisers rewrite: deltas, sums over independent
    factors, ``Σ_r q_r²`` and ``‖q‖²`` in numerators and denominators, exponentials."""
    G, V, K, q, v = D.G, D.V, D.K, D.q, D.v
    qq = D.norm2(q, _r)
    return {
        "deltas": sp.Sum(sp.KroneckerDelta(_i, D.p) * V[_i, _k] * G[_k], (_i, 0, D.L - 1),
                         (_k, 0, D.d - 1))
        + sp.Sum(sp.KroneckerDelta(_i, D.p) ** 2 * V[_i, _k] * G[_k], (_i, 0, D.L - 1),
                 (_k, 0, D.d - 1)),
        "independent sums": sp.Sum(q[_r] ** 2 * G[_k] * v[_k], (_r, 0, D.d_key - 1),
                                   (_k, 0, D.d - 1)) - D.QQ * sp.Sum(G[_k], (_k, 0, D.d - 1)),
        "norm in a fraction": (1 + sp.exp(D.s_t) / D.m) * qq / D.QQ
        - sp.Sum(K[D.p, _r] * q[_r], (_r, 0, D.d_key - 1)) / (D.m * D.QQ),
        "rational": (sp.exp(D.s_t) + D.m * sp.exp(D.c)) / (sp.exp(D.s_t) * D.QQ) - 1 / D.m,
    }


def _value(expr, values: dict) -> sp.Expr:
    """``expr`` at the explicit sizes and the given values of every entry and scalar."""
    expr = expr.xreplace(SIZES).doit()
    expr = expr.replace(lambda x: isinstance(x, sp.Indexed),
                        lambda x: values[(x.base, tuple(int(n) for n in x.indices))])
    return expr.xreplace(values)


def _values(seed: int) -> dict:
    rng = random.Random(seed)
    out = {}
    for base, shape in ((D.G, (2,)), (D.V, (3, 2)), (D.K, (3, 2)), (D.q, (2,)), (D.v, (2,))):
        for at in _entries(shape):
            out[(base, at)] = sp.Rational(rng.randint(-9, 9), rng.randint(1, 5))
    out[D.s_t], out[D.c], out[D.m] = sp.Rational(rng.randint(-5, 5), 3), sp.Rational(1, 2), 2
    out[D.QQ] = sum(out[(D.q, (x,))] ** 2 for x in range(2))
    return out


def _entries(shape):
    if len(shape) == 1:
        return [(x,) for x in range(shape[0])]
    return [(x, y) for x in range(shape[0]) for y in range(shape[1])]


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
                       "every battery expression at L = 3, d = d_key = 2 and exact random "
                       "values", "instance", _exact(name))
                  for name, (_, meaning) in NORMALISERS.items())
    return (Theorem("normalisers-exact", "The named normalisers are exact",
                    "Every rewriting a declared law's proof decides a claim after preserves "
                    "values (checked on explicit instances).", (), steps),)

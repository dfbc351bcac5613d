"""Broken conservation laws: what one finite step, weight decay and momentum do to a law.

For a declared law's quantity ``Q`` (``symbolic.laws``) and any step ``Δθ`` (Taylor, exact):

    Q(θ + Δθ) − Q(θ) = ∇Q·Δθ + R(θ, Δθ).

Gradient descent takes ``Δθ = −η(∇L + λθ) + β(θ_k − θ_{k−1})``; the first-order part is linear
in ``Δθ``, so it splits exactly into ``−η∇Q·∇L = η·dQ/dτ`` (0 wherever the law holds along the
flow: otherwise the assumption violations), ``−ηλ∇Q·θ`` (weight decay) and ``β∇Q·Δθ_{k−1}``
(momentum); ``R`` is the discretisation. Both are derived here from the declaration — every
parameter read ``X[…]`` steps to ``X[…] + ε·dX[…]``, the word-level score ``s[w]`` to
``s[w] + ε·ds[w]`` and the common non-topic score ``c`` (constant along the flow, not in a
real run) to ``c + ε·dc`` — and printed as NumPy (``numeric/_generated/broken.py``).

Closed forms of ``R``, term by term of ``Q`` (each checked against the raw Taylor remainder
``Q(θ+Δθ) − Q(θ) − ∇Q·Δθ`` by SymPy):

- a polynomial term of degree ≤ 2: ``R = ½ d²/dε² T(θ + εΔθ) = ½ΔθᵀH_TΔθ`` (no third
  derivative), so a quadratic law has ``R = Q(Δθ)``;
- ``C·e^{h(θ)}`` with ``h`` linear: ``R = C·e^{h(θ)}·φ(h(Δθ))``, ``φ(x) = e^x − 1 − x``. For
  SEN: ``R = ½‖Δv‖² − e^{s−c}φ(Δs − Δc)/(m‖q‖²)`` (the query fixed, A1: ``‖q‖²`` constant).
  ``c = log mean_n e^{s_n}`` has its own remainder ``R_c = log Σ_n w_n e^{Δs_n} − Σ_n w_n Δs_n``
  (``w = softmax``; identity checked on explicit entries), which enters through ``∂Q/∂c``.

Weight decay along the flow: ``∇Q·θ = kQ`` (Euler, checked) for a law homogeneous of degree
``k`` gives ``dQ/dτ = −kλQ``: a quadratic law decays like ``e^{−2λτ}``, a linear one (the sum
laws, embedding-across-classifier) like ``e^{−λτ}`` and, with ``R = 0``, exactly
``Q_{k+1} = (1 − ηλ)Q_k`` per gradient step; SEN is not homogeneous and gains ``−λ∇Q·θ`` (the
printed first-order part with ``Δθ = θ``). Heavy-ball momentum on a quadratic law: with ``P_k =
½∇Q(θ_k)·Δθ_{k−1}`` and ``K_k = Q(Δθ_k) = R_k``, exactly ``Q_{k+1} = Q_k + 2βP_k + K_k`` and
``P_{k+1} = βP_k + K_k``, ``P_0 = 0`` (the discrete form of Kunin et al.'s damped evolution,
ICLR 2021). For SEN no closed recursion exists (``∇Q`` is not linear in θ): its per-step
momentum part ``β∇Q(θ_k)·Δθ_{k−1}`` is the printed first-order part instead.
"""

from __future__ import annotations

import sympy as sp

from symbolic.laws import LAWS, QQ, Law, c, word_nodes

EPS = sp.Symbol("epsilon")


class phi(sp.Function):  # noqa: N801  (a mathematical function name)
    """``φ(x) = e^x − 1 − x``, printed as the cancellation-free ``expm1(x) − x``."""

    @classmethod
    def eval(cls, x):
        if x == 0:
            return sp.Integer(0)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.exp(x) - 1 - x


def step_base(base: sp.IndexedBase) -> sp.IndexedBase:
    return sp.IndexedBase(f"d{base}", real=True)


DC = sp.Symbol("dc", real=True)


def _bases(law: Law) -> set:
    """The bases that move in a step: the model's parameters and word-level nodes (``s``)."""
    model = law.models[0]
    return {prm.base for prm in model.params} | set(word_nodes(model))


def moved(law: Law, expr: sp.Expr, scale=EPS, radial: bool = False) -> sp.Expr:
    """``expr`` at ``θ + scale·Δθ`` (``c`` moves too; ``‖q‖²`` is fixed, A1); ``radial``:
    the step is ``Δθ = θ`` itself (weight decay's direction)."""
    bases = _bases(law)
    shift = {x: x + scale * (x if radial else step_base(x.base)[x.indices])
             for x in expr.atoms(sp.Indexed) if x.base in bases}
    shift[c] = c + scale * (c if radial else DC)
    return expr.xreplace(shift)


def _terms(law: Law):
    """``Q`` as terms ``(coefficient, summand, limits)`` (limits ``()`` for a bare term)."""
    out = []
    for term in sp.Add.make_args(sp.expand(law.quantity)):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) > 1:
            raise ValueError(f"law {law.name}: a term holds two sums: {term}")
        if sums:
            out.append((term / sums[0], sums[0].function, sums[0].limits))
        else:
            out.append((sp.Integer(1), term, ()))
    return out


def _wrap(coeff, f, limits):
    return coeff * (sp.Sum(f, *limits) if limits else f)


def _first(law: Law, f: sp.Expr) -> sp.Expr:
    return sp.expand(sp.diff(moved(law, f), EPS).subs(EPS, 0))


def first_order(law: Law) -> sp.Expr:
    """``∇Q·Δθ = d/dε Q(θ + εΔθ)|_{ε=0}``, term by term."""
    return sp.Add(*(_wrap(k, _first(law, f), lim) for k, f, lim in _terms(law)))


def _closed_remainder(law: Law, f: sp.Expr) -> sp.Expr:
    """The closed form of one summand's remainder (see the module docstring)."""
    path = moved(law, f)
    if sp.simplify(sp.diff(path, EPS, 3)) == 0:
        return sp.expand(sp.diff(path, EPS, 2).subs(EPS, 0) / 2)
    f = sp.powsimp(sp.factor_terms(f))   # e^s/(a e^c + b e^c) is one exponential: e^{s−c}/(a+b)
    exps = [x for x in sp.Mul.make_args(f) if isinstance(x, sp.exp)]
    coeff = (sp.Mul(*(x for x in sp.Mul.make_args(f) if x is not exps[0]))
             if len(exps) == 1 else None)
    if coeff is None or moved(law, coeff) != coeff:
        raise ArithmeticError(f"law {law.name}: no closed remainder for the term {f}")
    h = exps[0].args[0]
    if sp.simplify(sp.diff(moved(law, h), EPS, 2)) != 0:
        raise ArithmeticError(f"law {law.name}: the exponent {h} is not linear in θ")
    return coeff * sp.exp(h) * phi(_first(law, h))


def check_remainder(law: Law, f: sp.Expr, closed: sp.Expr) -> None:
    """``ArithmeticError`` unless ``closed`` equals ``f(θ+Δθ) − f(θ) − ∇f·Δθ``."""
    raw = moved(law, f, 1) - f - _first(law, f)
    if sp.simplify(sp.expand((closed.rewrite(sp.exp) - raw).rewrite(sp.exp))) != 0:
        raise ArithmeticError(f"law {law.name}: claimed remainder {closed} of {f} differs "
                              f"from the Taylor remainder {sp.simplify(raw)}")


def remainder(law: Law, checked: bool = True) -> sp.Expr:
    """``R`` in closed form, every term checked against its Taylor remainder (``checked``;
    the audit's step does the check itself)."""
    out = []
    for k, f, lim in _terms(law):
        closed = _closed_remainder(law, f)
        if checked:
            check_remainder(law, f, closed)
        out.append(_wrap(k, closed, lim))
    return sp.Add(*out)


def homogeneity_degree(law: Law) -> int | None:
    """``k`` with ``∇Q·θ = kQ`` (Euler) term by term, or ``None``; with weight decay λ the
    flow then gives ``dQ/dτ = −kλQ``, ``Q = Q₀e^{−kλτ}``."""
    degrees = set()
    for _, f, _ in _terms(law):
        radial = sp.diff(moved(law, f, radial=True), EPS).subs(EPS, 0)
        ratio = sp.simplify(radial / f)
        if not ratio.is_number:
            return None
        degrees.add(int(ratio))
    return degrees.pop() if len(degrees) == 1 else None


def lme_remainder_identity(n: int = 3) -> bool:
    """``LME(s + Δ) − LME(s) = log Σ_n w_n e^{Δ_n}``, ``w = softmax(s)``, on ``n`` explicit
    entries (the printed ``R_c`` uses the right side)."""
    s = sp.symbols(f"s0:{n}", real=True)
    d = sp.symbols(f"d0:{n}", real=True)

    def lme(x):
        return sp.log(sum(sp.exp(xi) for xi in x) / n)

    z = sum(sp.exp(si) for si in s)
    rhs = sp.log(sum(sp.exp(si) / z * sp.exp(di) for si, di in zip(s, d)))
    diff = sp.expand_log(lme([si + di for si, di in zip(s, d)]) - lme(s) - rhs, force=True)
    return sp.simplify(sp.exp(diff)) == 1


__all__ = ["LAWS", "QQ", "first_order", "remainder", "homogeneity_degree", "phi",
           "check_remainder", "lme_remainder_identity", "moved", "step_base"]

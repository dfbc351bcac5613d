"""Broken conservation laws: what one finite step, weight decay and momentum do to a law.

For a law's quantity ``Q`` and any step ``Δθ`` (Taylor's theorem, exact):

    Q(θ + Δθ) − Q(θ) = ∇Q·Δθ + R(θ, Δθ).

Gradient descent takes ``Δθ = −η(∇L + λθ) + β(θ_k − θ_{k−1})``; the first-order part is
linear in ``Δθ``, so it splits exactly into ``−η∇Q·∇L = η·dQ/dτ`` (0 wherever the law holds
along the flow: otherwise the assumption violations), ``−ηλ∇Q·θ`` (weight decay) and
``β∇Q·Δθ_{k−1}`` (momentum); ``R`` is the discretisation. This module derives ``∇Q·Δθ`` and
``R`` with SymPy from each law's quantity, checks each closed form against the raw Taylor
remainder, and prints them as NumPy (``numeric/_generated/broken.py``).

A quantity is a sum of *parts*, each a SymPy expression over per-component symbols:

- ``scalar``: symbols are per-component scalars (arrays of shape ``(K,)``);
- ``sum``: a summand over the last axis (entry symbols stand for ``x[..., k]``);
- ``gram``: a summand ``x_i y_j`` over rows ``w`` (``Σ_w x[w, i] y[w, j]``, a matrix).

Closed forms: a quadratic ``Q`` has ``R = ½ d²/dε² Q(θ + εΔθ) = ½ΔθᵀH_QΔθ`` (no third
derivative); SEN has ``R = ½‖Δv‖² − e^{s−c} φ(Δs − Δc)/(m‖q‖²)`` with ``φ(x) = e^x − 1 − x``
(for a fixed query, A1; ``c``'s own remainder is ``R_c = log Σ_n w_n e^{Δs_n} − Σ_n w_n Δs_n``,
``w = softmax`` of the non-topic scores). Weight decay along the flow: a quadratic law
(homogeneous of degree 2, ``∇Q·θ = 2Q``) obeys ``dQ/dτ = −2λQ``, so ``Q = Q₀e^{−2λτ}``; a law
linear in θ would decay like ``e^{−λτ}`` (none is declared); SEN gains ``−λ∇Q·θ``
(printed). Heavy-ball momentum on a quadratic law: with ``P_k = ½∇Q(θ_k)·Δθ_{k−1}`` and
``K_k = Q(Δθ_k)`` (= ``R_k``), exactly ``Q_{k+1} = Q_k + 2βP_k + K_k`` and ``P_{k+1} = βP_k +
K_k`` (the discrete form of Kunin et al.'s damped evolution). For SEN under momentum no closed
recursion exists (``∇Q`` is not linear in θ): its per-step split ``β∇Q(θ_k)·Δθ_{k−1}`` is
printed instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

EPS = sp.Symbol("epsilon")


class phi(sp.Function):  # noqa: N801  (a mathematical function name)
    """``φ(x) = e^x − 1 − x``, printed as the cancellation-free ``expm1(x) − x``."""

    @classmethod
    def eval(cls, x):
        if x == 0:
            return sp.Integer(0)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.exp(x) - 1 - x


@dataclass(frozen=True)
class Part:
    """``expr`` over ``variables`` (each steps by ``d<name>``) and ``constants``; ``kind``:
    ``scalar``, ``sum`` or ``gram`` (see the module docstring). For ``gram`` the variables
    come in pairs ``(x_i, x_j)`` standing for two columns of one array."""

    kind: str
    expr: sp.Expr
    variables: tuple[sp.Symbol, ...]
    #: argument name of each variable's array (gram: both columns share one array)
    arrays: tuple[str, ...]


@dataclass(frozen=True)
class StepLaw:
    """A law's quantity as parts, its printed arguments and the claimed closed form of the
    remainder (``None``: quadratic, closed form ``½ d²/dε²``)."""

    name: str
    function: str
    parts: tuple[Part, ...]
    constants: tuple[str, ...]
    claimed_remainder: tuple[sp.Expr | None, ...]


def _gram(sign, name):
    i, j = sp.symbols(f"{name}_i {name}_j", real=True)
    return Part("gram", sign * i * j, (i, j), (name, name))


def _sen() -> StepLaw:
    v = sp.Symbol("v", real=True)
    s, c, m, q2 = sp.symbols("s c m q2", real=True)
    dv, ds, dc = sp.symbols("dv ds dc", real=True)
    score = -(s + sp.exp(s - c) / m) / q2
    return StepLaw(
        "SEN", "sen",
        (Part("sum", v ** 2 / 2, (v,), ("v",)), Part("scalar", score, (s, c), ("s", "c"))),
        ("m", "q2"),
        (dv ** 2 / 2, -sp.exp(s - c) * phi(ds - dc) / (m * q2)))


def _relu_unit() -> StepLaw:
    w2, w1, b1 = sp.symbols("w2 w1 b1", real=True)
    return StepLaw("relu-unit", "relu_unit",
                   (Part("sum", w2 ** 2, (w2,), ("w2",)), Part("sum", -w1 ** 2, (w1,), ("w1",)),
                    Part("scalar", -b1 ** 2, (b1,), ("b1",))), (), (None, None, None))


#: Every law of ``numeric.laws`` with its quantity over the arrays the printed code receives:
#: SEN per topic word (``v`` (K, d), ``s`` (K,), ``c``), the balance laws as Gram matrices
#: (``query`` as a (1, d_key) array), relu-unit per hidden unit (``w2 = W2ᵀ``).
STEP_LAWS = (
    _sen(),
    StepLaw("query-key", "query_key", (_gram(1, "query"), _gram(-1, "keys")), (),
            (None, None)),
    StepLaw("classifier-embedding", "classifier_embedding",
            (_gram(1, "classifier"), _gram(-1, "embeddings")), (), (None, None)),
    StepLaw("hidden-embedding", "hidden_embedding",
            (_gram(1, "hidden_weight"), _gram(-1, "embeddings")), (), (None, None)),
    _relu_unit(),
)


def step_symbol(x: sp.Symbol) -> sp.Symbol:
    return sp.Symbol(f"d{x.name}", real=True)


def moved(part: Part, scale=EPS) -> sp.Expr:
    """``Q_part(x + scale·Δx)``."""
    return part.expr.xreplace({x: x + scale * step_symbol(x) for x in part.variables})


def first_order(part: Part) -> sp.Expr:
    """``∇Q·Δx = d/dε Q(x + εΔx) |_{ε=0}``."""
    return sp.expand(sp.diff(moved(part), EPS).subs(EPS, 0))


def raw_remainder(part: Part) -> sp.Expr:
    """``R = Q(x + Δx) − Q(x) − ∇Q·Δx``, unsimplified."""
    return moved(part, 1) - part.expr - first_order(part)


def remainder(part: Part, claimed: sp.Expr | None) -> sp.Expr:
    """The closed form of ``R``, checked against the raw Taylor remainder: ``½ d²/dε²`` for a
    quadratic part (verified: no third derivative), else the claimed form (verified equal).
    Raises ``ArithmeticError`` when the check fails."""
    raw = raw_remainder(part)
    if claimed is None:
        third = sp.diff(moved(part), EPS, 3)
        if sp.simplify(third) != 0:
            raise ArithmeticError(f"{part.expr} is not quadratic: give R in closed form")
        closed = sp.expand(sp.diff(moved(part), EPS, 2).subs(EPS, 0) / 2)
    else:
        closed = claimed
    if sp.simplify(sp.expand((closed.rewrite(sp.exp) - raw).rewrite(sp.exp))) != 0:
        raise ArithmeticError(f"claimed remainder {closed} of {part.expr} differs from the "
                              f"Taylor remainder {sp.simplify(raw)}")
    return closed


def homogeneity_degree(law: StepLaw) -> int | None:
    """``k`` with ``∇Q·θ = kQ`` (Euler) for every part, or ``None``: then weight decay gives
    ``dQ/dτ = −kλQ`` along the flow, ``Q = Q₀e^{−kλτ}``."""
    degrees = set()
    for part in law.parts:
        radial = first_order(part).xreplace({step_symbol(x): x for x in part.variables})
        ratio = sp.simplify(radial / part.expr)
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

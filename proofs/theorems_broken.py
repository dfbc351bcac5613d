"""Broken laws: what one finite step, weight decay and momentum do to each declared law.

Per declared law of every model (``symbolic.laws.every_law``), SymPy checks at general
sizes, on the expressions ``symbolic.broken`` derives from the declaration and prints into
the engine:

- ``<law>-step``: ``Q(θ + Δθ) − Q(θ) = ∇Q·Δθ + R`` with ``R`` the printed closed form
  (term by term of ``Q``; sums over the same range compared summand by summand);
- quadratic laws, ``<law>-decay``: Euler ``∇Q·θ = 2Q``, so with weight decay λ (flow
  ``−∇L − λθ``) and ``∇Q·∇L = 0`` (the law's conservation theorem) ``dQ/dτ = −2λQ``;
- quadratic laws, ``<law>-momentum``: ``½∇Q(θ+Δθ)·Δθ = ½∇Q(θ)·Δθ + R(Δθ)``, which with
  ``Δθ_k = βΔθ_{k−1} − η∇L`` gives the exact recursion ``P_{k+1} = βP_k + K_k`` beside
  ``Q_{k+1} = Q_k + 2βP_k + K_k`` (``P_k = ½∇Q(θ_k)·Δθ_{k−1}``, ``K_k = R(Δθ_k)``).
"""

from __future__ import annotations

import sympy as sp

from proofs.kernel import Assumption, Normalised, Step, Theorem
from proofs.rewritings import rewriting
from symbolic import broken
from symbolic.laws import every_law

DECLARED = Assumption(
    "DECL", "the law's quantity Q is its declaration in symbolic/laws.py; the step moves every "
    "parameter read X[…] to X[…] + ΔX[…], the score s[w] to s[w] + Δs[w] and the common "
    "non-topic score c to c + Δc; ‖q‖² and m are held fixed (A1, A3)",
    content={law.name: law for law in every_law()})


def _taylor(name):
    def check(scope):
        law = scope.assumption("DECL")[name]
        # one entry per term of Q: a summand's identity is its sum's (same range)
        residuals = [broken.moved(law, f, 1) - f - broken._first(law, f)
                     - broken._closed_remainder(law, f) for _, f, _ in broken._terms(law)]
        return Normalised(sp.Matrix(residuals), rewriting("open sums"),
                          "φ(x) = e^x − 1 − x, term by term of Q (summands)")
    return check


def _euler(name):
    def check(scope):
        law = scope.assumption("DECL")[name]
        radial = sp.diff(broken.moved(law, law.quantity, radial=True), broken.EPS).subs(
            broken.EPS, 0)
        return Normalised(radial - 2 * law.quantity, rewriting("open sums"),
                          "opening sums over one range")
    return check


def _momentum(name):
    def check(scope):
        law = scope.assumption("DECL")[name]
        first = broken.first_order(law)
        # ∇Q at θ + Δθ: the values (not the steps d…) move by their steps
        at_next = first.xreplace({x: x + broken.step_base(x.base)[x.indices]
                                  for x in first.atoms(sp.Indexed)
                                  if not str(x.base).startswith("d")})
        return Normalised(at_next / 2 - first / 2 - broken.remainder(law, checked=False),
                          rewriting("open sums"), "opening sums over one range")
    return check


def discrete_step() -> Theorem:
    steps = []
    for law in every_law():
        steps.append(Step(f"{law.name}-step", f"{law.name}: Q(θ + Δθ) − Q(θ) = ∇Q·Δθ + R, "
                          f"R = {broken.remainder(law, checked=False)}", "symbolic",
                          _taylor(law.name), uses=("DECL",)))
        if broken.homogeneity_degree(law) == 2:
            steps.append(Step(f"{law.name}-decay", f"{law.name}: ∇Q·θ = 2Q, so weight decay "
                              f"gives dQ/dτ = −2λQ and Q = Q₀e^{{−2λτ}}", "symbolic",
                              _euler(law.name), uses=("DECL",)))
            steps.append(Step(f"{law.name}-momentum", f"{law.name}: ½∇Q(θ + Δθ)·Δθ = "
                              f"½∇Q(θ)·Δθ + R(Δθ): heavy ball gives P_{{k+1}} = βP_k + K_k, "
                              f"Q_{{k+1}} = Q_k + 2βP_k + K_k", "symbolic",
                              _momentum(law.name), uses=("DECL",)))
    return Theorem("discrete-step", "Broken laws: one gradient-descent step, weight decay, "
                   "momentum", "For every declared law, one finite step changes Q by ∇Q·Δθ "
                   "(0 along −η∇L where the law holds) plus the printed remainder R; "
                   "quadratic laws decay like e^{−2λτ} under weight decay and follow an "
                   "exact two-term recursion under heavy-ball momentum.", (DECLARED,),
                   tuple(steps))


def theorems() -> tuple[Theorem, ...]:
    return (discrete_step(),)

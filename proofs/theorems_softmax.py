"""Lemma: the Jacobian of softmax attention, at general sentence length.

For scores ``s_0, …, s_{n−1}`` and ``a_i = e^{s_i} / Z`` with ``Z = Σ_j e^{s_j}``:
``∂a_i/∂s_p = a_i (δ_ip − a_p)``; the Jacobian is symmetric, its rows sum to 0, and
``Σ_i a_i = 1``. Every general-size step is SymPy differentiating the definition; one step
re-checks the Jacobian exactly on explicit lengths.
"""

from __future__ import annotations

import sympy as sp

from proofs.kernel import Assumption, Normalised, Step, Theorem
from proofs.rewritings import register, rewriting, substitution

_s = sp.IndexedBase("s")
_i, _p, _j = sp.symbols("i p j", integer=True, nonnegative=True)
_n = sp.Symbol("n", integer=True, positive=True)
# p ≤ n − 1 written as n = p + k + 1 with k ≥ 0, so SymPy can discharge range guards.
_k = sp.Symbol("k", integer=True, nonnegative=True)
_dummy = sp.Symbol("u", integer=True, nonnegative=True)


def _partition(n):
    return sp.Sum(sp.exp(_s[_j]), (_j, 0, n - 1))


def _attention(index, n):
    return sp.exp(_s[index]) / _partition(n)


DEFINITION = Assumption(
    "D", "a_i = e^{s_i} / Z with Z = Σ_{j=0}^{n−1} e^{s_j}, for n ≥ 1 scores s_0, …, s_{n−1}",
    content={"s": _s, "n": _n, "Z": _partition, "a": _attention})
IN_RANGE = Assumption(
    "R", "the indices i and p lie in 0, …, n−1 (written n = p + k + 1 with an integer k ≥ 0)",
    content={_n: _p + _k + 1})


def _canonical_sums(expr):
    """Pull factors free of the summation index out of each sum and give every sum the same
    dummy name, so that sums differing only in their dummy compare equal."""
    def canon(total):
        (x, lo, hi), = total.limits
        body = total.function.subs(x, _dummy)
        free, bound = sp.S.One, sp.S.One
        for factor in sp.Mul.make_args(body):
            if _dummy in factor.free_symbols:
                bound *= factor
            else:
                free *= factor
        return free * sp.Sum(bound, (_dummy, lo, hi))
    return sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), canon)


def _derivative_of_partition(scope):
    d = scope.assumption("D")
    derived = sp.diff(d["Z"](d["n"]), d["s"][_p]).doit().subs(scope.assumption("R"))
    return sp.Eq(derived, sp.exp(d["s"][_p]), evaluate=False)


def _jacobian(scope):
    d = scope.assumption("D")
    n, s = d["n"], d["s"]
    dZ = sp.diff(d["Z"](n), s[_p])
    derived = sp.diff(d["a"](_i, n), s[_p]).subs(dZ, scope.step("dZ").rhs)
    claimed = d["a"](_i, n) * (sp.KroneckerDelta(_i, _p) - d["a"](_p, n))
    return sp.Eq(derived, claimed, evaluate=False)


def _delta_rule(expr):
    """δ_ip f(i) = δ_ip f(p): in every term carrying δ_ip, write i as p."""
    delta = sp.KroneckerDelta(_i, _p)
    return sp.Add(*(delta * (term / delta).subs(_i, _p) if term.has(delta) else term
                    for term in sp.Add.make_args(sp.expand(expr))))


CANONICAL_SUMS = register(
    "canonical sums", "pulling factors free of the summation index out of each sum and "
    "naming all summation indices alike", _canonical_sums,
    examples=(sp.Sum(_s[_j] ** 2 * sp.exp(_s[_i]), (_j, 0, 3)) - sp.Sum(_s[_i] ** 2, (_i, 0, 3)),))
DELTA_RULE = register(
    "delta rule", "δ_ip f(i) = δ_ip f(p)", _delta_rule,
    examples=(sp.KroneckerDelta(_i, _p) * sp.exp(_s[_i]) + _s[_i],))


def _symmetric(scope):
    jac = scope.step("J").rhs
    swapped = jac.subs({_i: _p, _p: _i}, simultaneous=True)
    return Normalised(sp.Eq(jac, swapped, evaluate=False), DELTA_RULE)


def _normalised(scope):
    d = scope.assumption("D")
    total = sp.Sum(d["a"](_i, d["n"]), (_i, 0, d["n"] - 1))
    return Normalised(sp.Eq(total, 1, evaluate=False), CANONICAL_SUMS)


def _rows_sum_to_zero(scope):
    in_range = scope.assumption("R")
    total = sp.Sum(sp.expand(scope.step("J").rhs), (_i, 0, _n - 1))
    collapse = rewriting("expand", "doit").then(substitution("R", in_range), CANONICAL_SUMS)
    return Normalised(sp.Eq(total, 0, evaluate=False), collapse,
                      "summing the Kronecker delta over i in range (assumption R), pulling "
                      "constant factors out of sums and naming summation indices alike")


def _explicit_jacobians(scope):
    d = scope.assumption("D")
    checks = {}
    for n in (1, 2, 3, 4):
        scores = [d["s"][q] for q in range(n)]
        a = [d["a"](q, n).doit() for q in range(n)]
        derived = sp.Matrix([[sp.diff(a[r], scores[c]) for c in range(n)] for r in range(n)])
        claimed = sp.diag(*a) - sp.Matrix(a) * sp.Matrix(a).T
        checks[f"n = {n}"] = sp.Eq(derived, claimed, evaluate=False)
    return checks


def theorems() -> tuple[Theorem, ...]:
    steps = (
        Step("dZ", "∂Z/∂s_p = e^{s_p} for every index p of the sentence", "symbolic",
             _derivative_of_partition, uses=("D", "R")),
        Step("J", "∂a_i/∂s_p = a_i (δ_ip − a_p): the quotient rule with ∂Z/∂s_p from step dZ",
             "symbolic", _jacobian, uses=("D", "dZ")),
        Step("J-explicit", "the same Jacobian, diag(a) − a aᵀ, holds exactly for n = 1, 2, 3, 4, "
             "differentiating the explicitly written softmax", "instance",
             _explicit_jacobians, uses=("D",)),
        Step("sym", "the Jacobian is symmetric: ∂a_i/∂s_p = ∂a_p/∂s_i", "symbolic",
             _symmetric, uses=("J",)),
        Step("norm", "Σ_i a_i = 1", "symbolic", _normalised, uses=("D",)),
        Step("rows", "Σ_i ∂a_i/∂s_p = 0: adding a constant to every score leaves a unchanged "
             "to first order", "symbolic", _rows_sum_to_zero, uses=("J", "R")),
    )
    return (Theorem(
        "softmax-jacobian", "Jacobian of softmax attention (lemma)",
        "For n ≥ 1 scores and a_i = e^{s_i} / Σ_j e^{s_j}: ∂a_i/∂s_p = a_i (δ_ip − a_p) "
        "for all i, p in 0, …, n−1; this Jacobian is symmetric, each of its rows sums to 0, "
        "and Σ_i a_i = 1.",
        (DEFINITION, IN_RANGE), steps),)

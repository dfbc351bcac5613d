"""Exact first derivatives in several directions at once: multilinear jets (nested dual numbers).

A jet is ``Σ_S x_S ε^S`` over subsets ``S`` of infinitesimals with ``ε_i² = 0``; evaluating a
program on ``x + ε_i v`` gives its value and, as the ``ε_i`` coefficient, its derivative in
direction ``v`` — exactly, up to the rounding of the scalars (mpmath at a chosen precision).
Nesting fresh infinitesimals gives the mixed derivatives that iterated Lie brackets need.
The scalars may be NumPy arrays (float or object): one jet then carries a whole batch of
evaluations, each array entry its own.
"""

from __future__ import annotations

import math

import mpmath


class Jet:
    """``Σ_S parts[S] ε^S`` with ``S`` a bit mask of infinitesimals."""

    __slots__ = ("parts",)
    #: ``array ∘ jet`` must reach the jet's reflected operator, not broadcast over it.
    __array_ufunc__ = None

    def __init__(self, parts: dict):
        self.parts = parts

    @staticmethod
    def lift(x) -> Jet:
        return x if isinstance(x, Jet) else Jet({0: x})

    def part(self, bit: int):
        """The coefficient of ``ε_bit`` (a jet in the other infinitesimals)."""
        mask = 1 << bit
        out = {s & ~mask: v for s, v in self.parts.items() if s & mask}
        return _simplify(out)

    def __add__(self, other):
        other = Jet.lift(other)
        out = dict(self.parts)
        for s, v in other.parts.items():
            out[s] = out[s] + v if s in out else v
        return Jet(out)

    __radd__ = __add__

    def __neg__(self):
        return Jet({s: -v for s, v in self.parts.items()})

    def __sub__(self, other):
        return self + (-Jet.lift(other))

    def __rsub__(self, other):
        return Jet.lift(other) + (-self)

    def __mul__(self, other):
        if not isinstance(other, Jet):
            return Jet({s: v * other for s, v in self.parts.items()})
        out: dict = {}
        for s, v in self.parts.items():
            for t, w in other.parts.items():
                if s & t:
                    continue
                out[s | t] = out[s | t] + v * w if (s | t) in out else v * w
        return Jet(out)

    __rmul__ = __mul__

    def _nilpotent(self):
        return Jet({s: v for s, v in self.parts.items() if s}), self.parts.get(0, 0)

    def _series(self, coefficients):
        """``Σ_n coefficients[n] · N^n`` with ``N`` the nilpotent part (terminates)."""
        nil, _ = self._nilpotent()
        order = len(_bits(self.parts))  # N^(order+1) = 0: each ε_i appears at most once
        result, power = Jet({0: coefficients[0]}), Jet({0: 1})
        for n in range(1, order + 1):
            power = power * nil
            result = result + power * coefficients[n]
        return result

    def reciprocal(self):
        x0 = self.parts.get(0, 0)
        n = len(_bits(self.parts))
        return self._series([(-1) ** j / x0 ** (j + 1) for j in range(n + 1)])

    def __truediv__(self, other):
        return self * (other.reciprocal() if isinstance(other, Jet) else 1 / other)

    def __rtruediv__(self, other):
        return self.reciprocal() * other

    def __pow__(self, n):
        if not isinstance(n, int) and not (hasattr(n, "is_integer") and float(n).is_integer()):
            raise ValueError(f"jets support integer powers only, not {n!r}")
        n = int(n)
        base = self if n >= 0 else self.reciprocal()
        out = Jet({0: 1})
        for _ in range(abs(n)):
            out = out * base
        return out


def _bits(parts) -> set[int]:
    bits = set()
    for s in parts:
        b = 0
        while s >> b:
            if (s >> b) & 1:
                bits.add(b)
            b += 1
    return bits


def _simplify(parts):
    if set(parts) <= {0}:
        return parts.get(0, 0)
    return Jet(parts)


def jexp(x):
    """``exp`` of a number or a jet: ``e^{x₀} Σ N^n/n!`` (exact: ``N`` is nilpotent)."""
    if not isinstance(x, Jet):
        return mpmath.exp(x)
    x0 = x.parts.get(0, 0)
    e0 = mpmath.exp(x0)
    n = len(_bits(x.parts))
    return x._series([e0 / math.factorial(j) for j in range(n + 1)])


def value(x):
    """The real (infinitesimal-free) part."""
    return x.parts.get(0, 0) if isinstance(x, Jet) else x

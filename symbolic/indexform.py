"""Index-form expressions: sums of terms ``coeff · Π factors`` with named summed indices.

SymPy differentiates; this module puts the results in a canonical form that SymPy alone does
not reach: ``KroneckerDelta`` eliminated by substitution (indices are typed, so a delta
between two indices of one kind is a substitution within one range), definitions folded
back into intermediate names (``exp(s_i)/Z → a_i``), summed indices renamed canonically (so
``Σ_i f(i) − Σ_j f(j)`` cancels) and constants pulled out of sums.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class IndexKind:
    """A range of indices ``0 … size−1`` and the letters its index symbols are named with."""

    name: str
    size: sp.Symbol
    letters: tuple[str, ...]

    def index(self, n: int = 0) -> sp.Symbol:
        """The ``n``-th canonical index symbol of this kind (letters first, then numbered)."""
        if n < len(self.letters):
            return _index_symbol(self.letters[n], self)
        return _index_symbol(f"{self.letters[0]}{n}", self)


_KIND_OF: dict[sp.Symbol, IndexKind] = {}


def _index_symbol(name: str, kind: IndexKind) -> sp.Symbol:
    sym = sp.Symbol(name, integer=True, nonnegative=True)
    _KIND_OF.setdefault(sym, kind)
    if _KIND_OF[sym] != kind:
        raise ValueError(f"index name {name!r} is used by two index kinds")
    return sym


def kind_of(sym) -> IndexKind | None:
    return _KIND_OF.get(sym)


def is_index(sym) -> bool:
    return sym in _KIND_OF


_fresh = itertools.count()


def fresh(kind: IndexKind) -> sp.Symbol:
    """A new index of ``kind`` that clashes with nothing written so far (for differentiation)."""
    return _index_symbol(f"{kind.letters[0]}_{next(_fresh)}", kind)


def indices_in(expr) -> set[sp.Symbol]:
    return {s for s in expr.free_symbols if s in _KIND_OF}


@dataclass(frozen=True)
class Term:
    """``coeff · body`` summed over ``summed``; ``coeff`` holds no index, ``body`` only indexed
    factors."""

    coeff: sp.Expr
    body: sp.Expr
    summed: tuple[sp.Symbol, ...]

    def to_sympy(self) -> sp.Expr:
        expr = self.body
        for idx in sorted(self.summed, key=str, reverse=True):
            expr = sp.Sum(expr, (idx, 0, kind_of(idx).size - 1))
        return self.coeff * expr


class IExpr:
    """A sum of canonical terms, compared and hashed by value."""

    def __init__(self, terms=()):
        self.terms = tuple(terms)

    @classmethod
    def from_sympy(cls, expr, folds=()) -> IExpr:
        return canonical(_terms(sp.sympify(expr)), folds)

    def to_sympy(self) -> sp.Expr:
        return sp.Add(*(t.to_sympy() for t in self.terms))

    def __add__(self, other):
        return canonical(self.terms + other.terms)

    def __neg__(self):
        return IExpr(Term(-t.coeff, t.body, t.summed) for t in self.terms)

    def __sub__(self, other):
        return self + (-other)

    def scale(self, c) -> IExpr:
        return canonical(Term(c * t.coeff, t.body, t.summed) for t in self.terms)

    def times(self, other: IExpr) -> IExpr:
        return canonical(_product(self.terms, _renamed_apart(other.terms)))

    def xreplace(self, mapping, folds=()) -> IExpr:
        """Substitute into every term (e.g. a definition or an assumption), then canonicalise.

        Summed indices are renamed apart first, so a substituted index is never captured."""
        return canonical(_terms(IExpr(_renamed_apart(self.terms)).to_sympy().xreplace(mapping)),
                         folds)

    def is_zero(self) -> bool:
        return not self.terms

    def free_indices(self) -> set[sp.Symbol]:
        return set().union(*(indices_in(t.body) - set(t.summed) for t in self.terms))

    def __eq__(self, other):
        return isinstance(other, IExpr) and self.terms == other.terms

    def __hash__(self):
        return hash(self.terms)

    def __repr__(self):
        return f"IExpr({self.to_sympy()})"


# --- from SymPy to terms -------------------------------------------------------------------

def _expand(expr):
    # exp(x + y) must stay one factor (it is a definition to fold back), so no power_exp.
    return sp.expand(expr, power_exp=False, power_base=False, log=False)


def _terms(expr) -> list[Term]:
    expr = _expand(expr)
    if expr.is_Add:
        return [t for arg in expr.args for t in _terms(arg)]
    if expr.is_Mul:
        out = [Term(sp.S.One, sp.S.One, ())]
        for arg in expr.args:
            out = _product(out, _terms(arg))
        return out
    if isinstance(expr, sp.Sum):
        inner = expr.function
        summed = []
        for idx, lo, hi in expr.limits:
            kind = kind_of(idx)
            if kind is None or lo != 0 or sp.simplify(hi - (kind.size - 1)) != 0:
                raise ValueError(f"sum over {idx} from {lo} to {hi} is not a full typed range")
            new = fresh(kind)
            inner = inner.xreplace({idx: new})
            summed.append(new)
        return [Term(t.coeff, t.body, t.summed + tuple(summed)) for t in _terms(inner)]
    if expr.is_Pow and isinstance(expr.base, sp.Sum):
        raise ValueError(f"unfolded normaliser {expr}: name it before canonicalising")
    if indices_in(expr) or expr.has(sp.Indexed):
        return [Term(sp.S.One, expr, ())]
    return [Term(expr, sp.S.One, ())]


def _renamed_apart(terms) -> list[Term]:
    out = []
    for t in terms:
        new = {i: fresh(kind_of(i)) for i in t.summed}
        out.append(Term(t.coeff, t.body.xreplace(new), tuple(new.values())))
    return out


def _product(left, right) -> list[Term]:
    return [Term(a.coeff * b.coeff, a.body * b.body, a.summed + b.summed)
            for a in left for b in right]


# --- canonical form ------------------------------------------------------------------------

@dataclass(frozen=True)
class Fold:
    """Folds ``exp(x[i]) / Z`` back into ``y[i]``: the softmax ``y = exp(x)/Σ exp(x)`` named."""

    exp_of: sp.IndexedBase
    name: sp.IndexedBase
    normaliser: sp.Symbol | sp.IndexedBase

    def apply(self, t: Term) -> Term:
        if isinstance(self.normaliser, sp.IndexedBase):
            return self._apply_indexed(t)
        coeff, factors = t.coeff, []
        for f in sp.Mul.make_args(t.body):
            power = -_normaliser_power(coeff, self.normaliser)
            times, at = self._match(f)
            fold = min(times, power)
            if fold > 0:
                f = sp.exp((times - fold) * self.exp_of[at]) * self.name[at] ** fold
                coeff = coeff * self.normaliser ** fold
            factors.append(f)
        return Term(coeff, sp.Mul(*factors), t.summed)

    def _apply_indexed(self, t: Term) -> Term:
        """The softmax over the last index of ``x[…, j]``: its normaliser ``Z[…]`` is indexed
        by the leading indices and stands in the body as ``Z[…]^(−n)``."""
        factors = list(sp.Mul.make_args(t.body))
        powers = {}
        for f in factors:
            base, power = f.as_base_exp()
            if isinstance(base, sp.Indexed) and base.base == self.normaliser and power < 0:
                powers[base.indices] = powers.get(base.indices, 0) - int(power)
        if not powers:
            return t
        out = []
        for f in factors:
            times, at = self._match(f)
            lead = at[:-1]
            fold = min(times, powers.get(lead, 0))
            if fold > 0:
                f = sp.exp((times - fold) * self.exp_of[at]) * self.name[at] ** fold
                powers[lead] -= fold
            base = f.as_base_exp()[0]
            if not (isinstance(base, sp.Indexed) and base.base == self.normaliser):
                out.append(f)
        out += [self.normaliser[at] ** -n for at, n in powers.items() if n]
        return Term(t.coeff, sp.Mul(*out), t.summed)

    def _match(self, factor) -> tuple[int, tuple]:
        """``(n, idx)`` if ``factor = exp(n · x[idx])`` with ``n`` a positive integer."""
        if not isinstance(factor, sp.exp):
            return 0, ()
        n, x = factor.args[0].as_coeff_Mul()
        if isinstance(x, sp.Indexed) and x.base == self.exp_of and n.is_Integer and n > 0:
            return int(n), x.indices
        return 0, ()


def _normaliser_power(coeff, z) -> int:
    return sum(e for b, e in (f.as_base_exp() for f in sp.Mul.make_args(coeff)) if b == z)


def _eliminate_deltas(t: Term) -> Term | None:
    body, summed = t.body, list(t.summed)
    while True:
        deltas = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.KroneckerDelta)]
        for delta in deltas:
            x, y = delta.args
            if x in summed or y in summed:
                gone, keep = (x, y) if x in summed else (y, x)
                if kind_of(gone) != kind_of(keep) and is_index(keep):
                    raise ValueError(f"{delta} relates indices of different kinds")
                summed.remove(gone)
                body = (body / delta).xreplace({gone: keep})
                break
            if x.is_Integer and y.is_Integer:
                return None if x != y else Term(t.coeff, body / delta, tuple(summed))
        else:
            break
    if body == 0:
        return None
    coeff = t.coeff
    for idx in list(summed):
        if idx not in body.free_symbols:
            summed.remove(idx)
            coeff = coeff * kind_of(idx).size
    return Term(coeff, body, tuple(summed))


def _rename_canonically(t: Term) -> Term:
    free = indices_in(t.body) - set(t.summed)
    by_kind: dict[IndexKind, list] = {}
    for idx in t.summed:
        by_kind.setdefault(kind_of(idx), []).append(idx)
    options = []
    for kind, dummies in by_kind.items():
        names = [kind.index(n) for n in range(len(dummies) + len(free) + 1)]
        names = [n for n in names if n not in free][:len(dummies)]
        options.append([dict(zip(dummies, perm)) for perm in itertools.permutations(names)])
    best = None
    for choice in itertools.product(*options):
        mapping = {k: v for part in choice for k, v in part.items()}
        body = t.body.xreplace(mapping)
        key = sp.default_sort_key(body)
        if best is None or key < best[0]:
            best = (key, body, tuple(sorted(mapping.values(), key=str)))
    if best is None:
        return t
    return Term(t.coeff, best[1], best[2])


def canonical(terms, folds=()) -> IExpr:
    """Eliminate deltas, fold definitions, rename dummies, collect equal terms."""
    collected: dict[tuple, sp.Expr] = {}
    for t in terms:
        t = _eliminate_deltas(t)
        if t is None:
            continue
        for fold in folds:
            t = fold.apply(t)
        t = _rename_canonically(t)
        key = (t.body, t.summed)
        collected[key] = collected.get(key, sp.S.Zero) + t.coeff
    out = []
    for (body, summed), coeff in collected.items():
        coeff = sp.factor_terms(sp.expand(coeff))
        if coeff != 0:
            out.append(Term(coeff, body, summed))
    out.sort(key=lambda t: (len(t.summed), sp.default_sort_key(t.body),
                            sp.default_sort_key(t.coeff)))
    return IExpr(out)

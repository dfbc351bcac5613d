"""The named, exact rewritings a claim may be decided after (the normalisers of ``Normalised``).

A step that cannot show ``lhs = rhs`` by plain SymPy reduction may rewrite both sides first, but
only with a rewriting from :data:`REGISTRY` — each one names a rewriting that preserves the
value of every expression it applies to (``tests/test_rewritings.py`` checks every entry on its
examples at random points) — or a chain of them (:meth:`Rewriting.then`), or a substitution of
equalities the step read through its scope (:func:`substitution`: an assumption's content or an
earlier step's claim, which the kernel compares with what the step really read). An arbitrary
function (``e ↦ 0``) is refused by the kernel, naming the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp


@dataclass(frozen=True)
class Rewriting:
    """A rewriting of SymPy expressions, described by data (never by a free function):

    - ``registered``: the function registered under ``name`` in :data:`REGISTRY`;
    - ``chain``: ``parts`` applied in order;
    - ``within-sums``: ``parts[0]`` applied to the body of every sum over ``index``;
    - ``substitution``: each ``old`` replaced by ``new`` (``pairs``), where ``old = new`` is
      stated by ``source`` (checked by the kernel against what the step read);
    - ``definition``: every ``base[x]`` replaced by the definition of that node of ``model``.
    """

    name: str
    meaning: str
    kind: str = "registered"
    parts: tuple = ()
    index: Any = None
    source: str | None = None
    pairs: tuple = ()
    model: Any = None

    def __call__(self, expr):
        if self.kind == "registered":
            return _FUNCTIONS[self.name](expr)
        if self.kind == "chain":
            for part in self.parts:
                expr = part(expr)
            return expr
        if self.kind == "within-sums":
            inner = self.parts[0]
            return expr.replace(lambda x: isinstance(x, sp.Sum) and x.limits[0][0] == self.index,
                                lambda x: sp.Sum(inner(x.function), *x.limits))
        if self.kind == "substitution":
            return expr.xreplace(dict(self.pairs))
        if self.kind == "per-sentence":
            from proofs.derivations import reduce_each_sentence
            return reduce_each_sentence(self.parts[0])(expr)
        if self.kind == "definition":
            from proofs.derivations import expand_node
            return expand_node(expr, self.model, self.index)
        raise ValueError(f"unknown kind of rewriting {self.kind!r}")

    def then(self, *others: Rewriting) -> Rewriting:
        """This rewriting, then each of ``others`` in turn."""
        chain = tuple(leaf for part in (self,) + others
                      for leaf in (part.parts if part.kind == "chain" else (part,)))
        return Rewriting(", then ".join(p.name for p in chain),
                         "; then ".join(p.meaning for p in chain), "chain", parts=chain)


#: Every registered rewriting by name, its function, and the examples its test evaluates.
REGISTRY: dict[str, Rewriting] = {}
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {}
EXAMPLES: dict[str, tuple] = {}


def register(name: str, meaning: str, function: Callable[[Any], Any],
             examples: tuple = ()) -> Rewriting:
    """Enter ``function`` in the registry as the exact rewriting ``name``; ``examples`` are
    expressions (finite sums, symbols) on which its test compares values before and after."""
    if name in REGISTRY:
        raise ValueError(f"rewriting {name!r} is registered twice")
    if not examples:
        raise ValueError(f"rewriting {name!r} needs examples for its test")
    REGISTRY[name] = Rewriting(name, meaning)
    _FUNCTIONS[name] = function
    EXAMPLES[name] = tuple(examples)
    return REGISTRY[name]


def rewriting(*names: str) -> Rewriting:
    """The registered rewriting ``names[0]``, then ``names[1]``, …"""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise KeyError(f"no registered rewriting named {unknown or names}; registered: "
                       f"{sorted(REGISTRY)}")
    first = REGISTRY[names[0]]
    return first.then(*(REGISTRY[n] for n in names[1:])) if len(names) > 1 else first


def substitution(source: str, mapping: Mapping) -> Rewriting:
    """Replace each ``old`` by ``new``; exact because ``old = new`` is what ``source`` (an
    assumption's content, or an earlier step's claim, possibly at other indices) states."""
    pairs = tuple(mapping.items())
    shown = ", ".join(f"{sp.sstr(o)} → {sp.sstr(n)}"[:120] for o, n in pairs)
    return Rewriting(f"substituting {source}", f"substituting {shown} (as {source} states)",
                     "substitution", source=source, pairs=pairs)


def definition(model, base) -> Rewriting:
    """Every ``base[x]`` written as the model's definition of node ``base`` at ``x``."""
    return Rewriting(f"the definition of {base}", f"writing {base} by its definition in the "
                     f"model", "definition", index=base, model=model)


def within_sums(index, inner) -> Rewriting:
    """``inner`` applied to the body of every sum over ``index`` (exact as ``inner`` is)."""
    return Rewriting(f"within each sum over {index}: {_name(inner)}",
                     f"within each sum over {index}: {_meaning(inner)}", "within-sums",
                     parts=(inner,), index=index)


def each_sentence(inner) -> Rewriting:
    """``inner`` (a rewriting, or a registered function) applied to each sentence's term of a
    sum over sentences χ, read as the per-sentence expression (``X[χ, x]`` as ``X[x]``): exact
    as ``inner`` is, since the term of sentence χ is the per-sentence expression at that
    sentence's quantities."""
    return Rewriting(f"each sentence's term: {_name(inner)}",
                     f"each sentence's term as one sentence's: {_meaning(inner)}",
                     "per-sentence", parts=(inner,))


def _name(rewrite) -> str:
    return getattr(rewrite, "name", None) or getattr(rewrite, "__name__", "a rewriting")


def _meaning(rewrite) -> str:
    return getattr(rewrite, "meaning", None) or _name(rewrite)


# --- validation (called by the kernel on the rewritings a step's claims use) ----------------

def problems(normaliser, reads: Mapping[str, Any], earlier: Mapping[str, Any] | None = None
             ) -> list[str]:
    """Why ``normaliser`` is not an allowed rewriting, given what the step read (name →
    value returned by its scope; ``earlier``: those that are earlier steps' results): empty
    when it is built from registered rewritings, node definitions of models it read,
    substitutions of equalities it read, and rewritings of earlier steps' claims (checked
    when those steps ran — never one found in an assumption's content, which nothing
    checked)."""
    if normaliser in _reused(earlier or {}):
        return []                       # reused from an earlier step, checked there
    if not isinstance(normaliser, Rewriting):
        if any(fn is normaliser for fn in _FUNCTIONS.values()):
            return []                   # the registered function itself (e.g. D.canonical)
        if any(fn is normaliser for fn in _named_normalisers().values()):
            return []                   # a normaliser of proofs.normalisers, tested there
        name = getattr(normaliser, "__name__", type(normaliser).__name__)
        return [f"its normaliser {name!r} is not a registered rewriting "
                f"(proofs.rewritings.REGISTRY)"]
    if normaliser.kind in ("within-sums", "per-sentence") and sufficient(normaliser):
        # R(e) = 0 ⇒ e = 0 for the whole claim, not for each summand: Σ_χ R(t_χ) = 0 does
        # not make every R(t_χ), hence every t_χ, vanish
        return [f"it applies a sufficient condition ({normaliser.name!r}) inside a sum's "
                f"terms, where only value-preserving rewritings are exact"]
    if normaliser.kind in ("chain", "within-sums", "per-sentence"):
        return [p for part in normaliser.parts for p in problems(part, reads, earlier)]
    if normaliser.kind == "substitution":
        return _substitution_problems(normaliser, reads)
    if normaliser.kind == "definition":
        if any(_holds_model(v, normaliser.model) for v in reads.values()):
            return []
        return [f"it writes {normaliser.index} by the definition of a model it did not read"]
    if normaliser.kind == "registered" and REGISTRY.get(normaliser.name) == normaliser:
        return []
    return [f"its normaliser {normaliser.name!r} is not a registered rewriting"]


def named_normalisers_in(normaliser) -> list[str]:
    """The names of the laws' named normalisers (``proofs.normalisers``) a rewriting applies
    (itself, or among its parts)."""
    named = _named_normalisers()
    if isinstance(normaliser, Rewriting):
        return [n for part in normaliser.parts for n in named_normalisers_in(part)]
    return [name for name, fn in named.items() if fn is normaliser]


def coverage_problems(normaliser, claim) -> list[str]:
    """A named normaliser is tested (theorem ``normalisers-exact``) on a battery of
    expressions; it may decide a claim only when every array, symbol and function of the
    claim is one its battery exercises — a normaliser wrong only on what the battery never
    shows would otherwise decide claims unchecked."""
    names = named_normalisers_in(normaliser)
    if not names:
        return []
    from proofs import normalisers
    met = normalisers.elements(claim)
    out = []
    for name in names:
        missing = sorted(met - normalisers.covered(name))
        if missing:
            out.append(f"the named normaliser {name!r} meets {', '.join(missing)}, which its "
                       f"battery in theorem normalisers-exact does not exercise")
    return out


def sufficient(normaliser) -> bool:
    """Whether ``normaliser`` is, or contains, a rewriting of :data:`SUFFICIENT` (a sufficient
    condition R(e) = 0 ⇒ e = 0, not value-preserving): the kernel then applies it to a
    claim's lhs − rhs, never to each side."""
    if isinstance(normaliser, Rewriting):
        if normaliser.kind == "registered":
            return normaliser.name in SUFFICIENT
        return any(sufficient(part) for part in normaliser.parts)
    return any(_FUNCTIONS.get(name) is normaliser for name in SUFFICIENT)


def _named_normalisers() -> dict:
    """name → function of the laws' named normalisers (``proofs.normalisers``, whose own
    theorem ``normalisers-exact`` the audit checks), where that module exists."""
    try:
        from proofs import normalisers
    except ImportError:
        return {}
    return {name: entry[0] for name, entry in normalisers.NORMALISERS.items()}


def _reused(reads) -> list:
    """The rewritings (and their parts) of the claims the step read: checked when the step
    that established them ran."""
    out: list = []

    def collect(r):
        out.append(r)
        for part in getattr(r, "parts", ()):
            collect(part)
    for value in reads.values():
        normaliser = getattr(value, "normalise", None)
        if isinstance(normaliser, Rewriting):
            collect(normaliser)
    return out


def _holds_model(value, model) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_model(v, model) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_holds_model(v, model) for v in value)
    return value == model if type(value) is type(model) else False


def _substitution_problems(leaf: Rewriting, reads) -> list[str]:
    if leaf.source not in reads:
        return [f"it substitutes from {leaf.source!r}, which it did not read through its scope"]
    value = reads[leaf.source]
    missing = [f"{sp.sstr(o)} → {sp.sstr(n)}"[:160] for o, n in leaf.pairs
               if not _states(value, o, n)]
    return [f"it substitutes {m}, which {leaf.source!r} does not state" for m in missing]


def _states(value, old, new) -> bool:
    """Whether ``value`` (a mapping, or a claim ``lhs = rhs``) states ``old = new``: as an
    item, as the claim itself, or as the claim read at ``old``'s indices: a claim
    g[i₁…iₖ] = r(i₁…iₖ), established for every index, states g[j₁…jₖ] = r(j₁…jₖ) (the
    same base g on the left, each jₙ within the range iₙ is declared over)."""
    if isinstance(value, Mapping):
        return value.get(old, None) == new
    claim = getattr(value, "claim", value)
    if not isinstance(claim, sp.Equality):
        return False
    if (claim.lhs, claim.rhs) == (old, new):
        return True
    renaming = _reindexing(claim.lhs, old)
    return renaming is not None and claim.rhs.xreplace(renaming) == new


def _reindexing(lhs, old) -> dict | None:
    """{iₙ: jₙ} taking ``lhs`` = g[i₁…iₖ] to ``old`` = g[j₁…jₖ], or None: the left side must
    be the quantity replaced, its indices distinct symbols (so the claim holds at every
    index, not on a diagonal), and each jₙ must satisfy iₙ's assumptions (its range)."""
    if not (isinstance(lhs, sp.Indexed) and isinstance(old, sp.Indexed)
            and lhs.base == old.base and len(lhs.indices) == len(old.indices)):
        return None
    indices = lhs.indices
    if not all(isinstance(x, sp.Symbol) for x in indices) or len(set(indices)) != len(indices):
        return None
    renaming = dict(zip(indices, old.indices))
    if not all(_within(target, index) for index, target in renaming.items()):
        return None
    return renaming if lhs.xreplace(renaming) == old else None


def _within(target, index) -> bool:
    """Whether ``target`` has every property SymPy's assumptions give the symbol ``index``
    (integer, nonnegative, …): a claim made for all such ``index`` then holds at it."""
    return all(getattr(target, f"is_{fact}") is truth
               for fact, truth in index.assumptions0.items())


# --- the registry -----------------------------------------------------------------------------

_x, _y = sp.symbols("x y", positive=True)
_i, _j, _n = sp.symbols("i j n", integer=True, nonnegative=True)
_f = sp.IndexedBase("f")


def _in_range_branch(expr):
    """Σ_c δ_cy f(c) evaluated: SymPy returns Piecewise((f(y), 0 ≤ y ≤ C − 1), …); keep the
    first branch (the index is a class: in range)."""
    return expr.replace(lambda u: isinstance(u, sp.Piecewise), lambda u: u.args[0][0])


register("expand", "expanding products and powers (sympy.expand)", sp.expand,
         examples=((_x + _y) ** 2, (_x + 1) * (_y - 2)))
register("cancel", "cancelling rational functions (sympy.cancel)", sp.cancel,
         examples=((_x ** 2 - _y ** 2) / (_x + _y), _x / (_x * _y + _x)))
register("simplify", "SymPy's simplify (value-preserving)", sp.simplify,
         examples=(sp.sin(_x) ** 2 + sp.cos(_x) ** 2, sp.log(sp.exp(_x) * _y)))
# Without force: SymPy splits log(x y) only where the symbols' assumptions make x, y positive
# (log(ab) = log a + log b + 2πi for negative a, b), so the rewriting stays exact.
register("expand logarithms", "log(x y) = log x + log y and log(xⁿ) = n log x, only where "
         "SymPy shows the arguments positive from the symbols' assumptions",
         lambda e: sp.expand_log(e),
         examples=(sp.log(sp.exp(_x) / (sp.exp(_x) + sp.exp(_y))), sp.log(_x ** 3 * _y)))
register("doit", "evaluating sums with explicit or Kronecker-delta bodies (Expr.doit)",
         lambda e: e.doit(),
         examples=(sp.Sum(_f[_i] * sp.KroneckerDelta(_i, 1), (_i, 0, 3)),
                   sp.Sum(_i * _x, (_i, 0, 4))))
register("idempotent deltas", "δ² = δ (a Kronecker delta is 0 or 1)",
         lambda e: e.replace(lambda x: x.is_Pow and isinstance(x.base, sp.KroneckerDelta)
                             and x.exp.is_Integer and x.exp > 0, lambda x: x.base),
         examples=(sp.KroneckerDelta(_i, 2) ** 2 * _f[_i] + sp.KroneckerDelta(_i, _j) ** 3,))
register("relu as gate", "max(x, 0) = H(x)·x for every real x (whatever H(0))",
         lambda e: e.replace(lambda x: isinstance(x, sp.Max) and len(x.args) == 2
                             and 0 in x.args,
                             lambda x: sp.Heaviside(x.args[0] if x.args[1] == 0 else x.args[1])
                             * (x.args[0] if x.args[1] == 0 else x.args[1])),
         examples=(sp.Max(_x - _y, 0) + sp.Max(_y - 2 * _x, 0),))
def _peel(expr):
    """Σ_{x=lo}^{N} f(x) = Σ_{x=lo}^{N−1} f(x) + f(N), for sums up to a symbol N ≥ lo."""
    def peel(total):
        (x, lo, hi), = total.limits
        return sp.Sum(total.function, (x, lo, hi - 1)) + total.function.xreplace({x: hi})
    return expr.replace(lambda u: isinstance(u, sp.Sum) and len(u.limits) == 1
                        and u.limits[0][2].is_Symbol
                        and (u.limits[0][2] - u.limits[0][1]).is_nonnegative, peel)


def _complete(expr):
    """Σ_{x=lo}^{N−1} f(x) = Σ_{x=lo}^{N} f(x) − f(N), for sums up to N − 1 (N a symbol ≥ lo)."""
    def complete(total):
        (x, lo, hi), = total.limits
        return sp.Sum(total.function, (x, lo, hi + 1)) - total.function.xreplace({x: hi + 1})
    return expr.replace(lambda u: isinstance(u, sp.Sum) and len(u.limits) == 1
                        and (u.limits[0][2] + 1).is_Symbol
                        and (u.limits[0][2] + 1 - u.limits[0][1]).is_nonnegative, complete)


_N = sp.Symbol("N_", integer=True, positive=True)
register("peel last term", "Σ_{x=0}^{N} f(x) = Σ_{x=0}^{N−1} f(x) + f(N) (N a size ≥ 0)", _peel,
         examples=(sp.Sum(_f[_i] * _x, (_i, 0, _N)),))
register("complete last term", "Σ_{x=0}^{N−1} f(x) = Σ_{x=0}^{N} f(x) − f(N) (N a size ≥ 1)",
         _complete, examples=(sp.Sum(_f[_i] ** 2, (_i, 0, _N - 1)),))
def _open_sums(expr):
    """Sums opened summand by summand — a *sufficient* condition for ``expr = 0``, not a
    value-preserving rewriting: applied only when every term of the expanded expression is a
    sum over the same ranges (with the same dummies) times a factor free of them, where
    Σ_x f(x) − Σ_x g(x) = Σ_x (f − g)(x) vanishes if f − g does; otherwise ``expr`` is left
    as it is (so the claim is decided unopened). Exponential functions written with exp."""
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(_open_sums)
    terms = sp.Add.make_args(sp.expand(expr))
    limits = {_sum_limits(t) for t in terms}
    if len(limits) != 1 or None in limits:
        return sp.expand(expr.rewrite(sp.exp))          # nothing opened: exact
    bodies = [t.replace(lambda x: isinstance(x, sp.Sum), lambda x: x.function) for t in terms]
    return sp.expand(sp.Add(*bodies).rewrite(sp.exp))


def _sum_limits(term):
    """The limits of the one sum a term holds (times factors free of its dummies), or None."""
    sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
    if len(sums) != 1:
        return None
    dummies = {lim[0] for lim in sums[0].limits}
    rest = [f for f in sp.Mul.make_args(term) if f is not sums[0]]
    if any(f.free_symbols & dummies for f in rest):
        return None
    return sums[0].limits


#: Rewritings that are sufficient conditions for ``claim = 0`` (not value-preserving): their
#: test checks that they leave alone what they may not open; the kernel applies them only to
#: a whole claim (an expression, or an equality's lhs − rhs), never to one side or one term.
SUFFICIENT = {"open sums": "a sum of sums over the same ranges is 0 if its summand is 0 "
              "(sums opened summand by summand only when every term is such a sum)"}


register("in-range deltas", "Σ_c δ_cy f(c) = f(y): a Kronecker delta summed over a range its "
         "index lies in (the in-range branch of SymPy's Piecewise; y is a class)",
         lambda e: _in_range_branch(e.doit()),
         examples=(sp.Sum(_f[_i] * sp.KroneckerDelta(_i, 2), (_i, 0, 4)),))


REGISTRY["open sums"] = Rewriting("open sums", SUFFICIENT["open sums"])
_FUNCTIONS["open sums"] = _open_sums


# --- the index-form rewritings of proofs.derivations (registered here: it imports the kernel) --

def _register_index_forms():
    from proofs import derivations as D
    from symbolic.model import K, q
    r, t = D.r, D.t
    score = sp.Sum(q[r] * K[D.i, r], (r, 0, D.d_key - 1))
    register(D.CANONICAL, D.CANONICAL_MEANING, D.canonical,
             examples=(sp.Sum(score * sp.KroneckerDelta(D.i, D.p), (D.i, 0, D.L - 1)),
                       sp.Sum(q[t] ** 2, (t, 0, D.d_key - 1)) * score))
    register("factored sums", "Σ_{x,y} f(x) g(y) = (Σ_x f(x))(Σ_y g(y)): each sum split into "
             "sums over groups of factors sharing no summed index",
             D.factor_sums,
             examples=(sp.Sum(q[r] * K[D.i, t], (r, 0, D.d_key - 1), (t, 0, D.d_key - 1)),))


_register_index_forms()

"""Reverse-mode derivation of the per-sentence gradient, node by node, with SymPy's ``diff``.

For a node or parameter ``X`` with consumers ``Y``:  ``∂ℓ/∂X[p] = Σ_Y Σ_y g_Y[y] ∂Y[y]/∂X[p]``,
where ``g_Y = ∂ℓ/∂Y`` stays a named symbol (``g_s``, ``g_h``, …) so each result is the compact
textbook form; :meth:`Derivation.inlined` substitutes them away when a closed form is wanted.
"""

from __future__ import annotations

import contextlib
import itertools
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, cached_property

import sympy as sp

from symbolic.description import Model, Node, Param
from symbolic.indexform import IExpr, Term, _renamed_apart, _terms, canonical, fresh, kind_of


class DerivationAccessError(Exception):
    """A computation reached the derivation of a model it was not granted."""


#: The models whose derivation may be read now (``None``: no restriction). The proof kernel
#: sets it while a step's check runs, to the models granted by the assumptions the step uses.
_GRANTED: ContextVar[frozenset | None] = ContextVar("derivations_granted", default=None)
#: Models whose derivation was read while the current grant was active (recorded per step).
_REACHED: ContextVar[set | None] = ContextVar("derivations_reached", default=None)


@contextlib.contextmanager
def derivations_granted(models, reached: set | None = None):
    """Within the block, only the derivations of ``models`` may be read; each model read is
    added to ``reached`` (so a caller can tell which derivations a computation used)."""
    token = _GRANTED.set(frozenset(models))
    token_reached = _REACHED.set(reached)
    try:
        yield
    finally:
        _GRANTED.reset(token)
        _REACHED.reset(token_reached)


def _require_granted(model) -> None:
    granted = _GRANTED.get()
    if granted is None:
        return
    if model not in granted:
        allowed = ", ".join(sorted(_describe(m) for m in granted)) or "none"
        raise DerivationAccessError(f"reads the derivation of {_describe(model)}, which no "
                                    f"assumption it uses grants (granted: {allowed})")
    reached = _REACHED.get()
    if reached is not None:
        reached.add(model)


def _describe(model) -> str:
    if model.name != "paper":
        return f"Model({model.name!r})"
    opts = model.options
    order = "" if opts["contraction"] == "context" else f", contraction={opts['contraction']!r}"
    return f"Model({opts['classifier']!r}, {opts['loss']!r}{order})"


def grad_symbol(x: Node | Param):
    """``g_X``: the symbol standing for ``∂ℓ/∂X``."""
    name = f"g_{x.name if isinstance(x, Node) else x.base}"
    return sp.IndexedBase(name) if x.indices else sp.Symbol(name)


def _contribution(consumer: Node, target_ref, upstream) -> sp.Expr:
    """``Σ_y upstream[y] · ∂consumer[y]/∂target`` with every index of the consumer fresh."""
    renamed = {idx: fresh(kind_of(idx)) for idx in consumer.indices}
    definition = consumer.definition.xreplace(renamed)
    normalisers = {k.xreplace(renamed): v.xreplace(renamed)
                   for k, v in consumer.normalisers.items()}
    derivative = sp.diff(definition, target_ref).xreplace(normalisers)
    if consumer.indices:
        upstream = upstream[tuple(renamed[x] for x in consumer.indices)]
    expr = upstream * derivative
    for new in renamed.values():
        expr = sp.Sum(expr, (new, 0, kind_of(new).size - 1))
    return expr


def _gradient(x: Node | Param, consumers: list[Node], upstream: dict, folds) -> IExpr:
    target = {idx: fresh(kind_of(idx)) for idx in x.indices}
    ref = x.base[tuple(target.values())] if x.indices else x.base
    total = sp.Add(*(_contribution(y, ref, upstream[y.name]) for y in consumers))
    back = {v: k for k, v in target.items()}
    # Every summed index is fresh after _terms, so naming the target back cannot capture one.
    terms = [Term(t.coeff, t.body.xreplace(back), t.summed) for t in _terms(total)]
    return canonical(terms, folds)


@dataclass(frozen=True)
class Derivation:
    """Every ``∂ℓ/∂X`` of one model, in terms of the upstream symbols ``g_Y`` of its consumers."""

    model: Model
    grads: dict  # name -> IExpr over the node's/parameter's own indices
    order: tuple  # names in the order the backward pass computes them

    @cached_property
    def symbols(self) -> dict:
        items = list(self.model.nodes) + list(self.model.params)
        return {x.name: grad_symbol(x) for x in items if x.name in self.grads}

    def param(self, name: str) -> Param:
        return next(p for p in self.model.params if p.name == name)

    def node(self, name: str) -> Node:
        return next(n for n in self.model.nodes if n.name == name)

    def inlined(self, name: str, keep: tuple[str, ...] = ()) -> IExpr:
        """``∂ℓ/∂X`` with every upstream symbol substituted: forward quantities only (except
        the upstream symbols ``g_Y`` of the nodes named in ``keep``, left as symbols)."""
        _require_granted(self.model)
        # a closed form depends on the derivation alone: substituted once per process (the
        # proofs, the flow and discovery ask for the same ones hundreds of times)
        key = (name, tuple(keep))
        if key not in self._closed_forms:
            self._closed_forms[key] = self._substituted(name, key[1])
        return self._closed_forms[key]

    @cached_property
    def _closed_forms(self) -> dict:
        return {}

    def _substituted(self, name: str, keep: tuple[str, ...]) -> IExpr:
        expr = self.grads[name]
        for _ in range(len(self.grads) + 1):
            hits = {nm: sym for nm, sym in self.symbols.items()
                    if nm != name and nm not in keep and expr.to_sympy().has(sym)}
            if not hits:
                return expr
            for nm, sym in hits.items():
                expr = substitute(expr, sym, self._indices(nm), self.grads[nm],
                                  self.model.folds)
        raise RuntimeError(f"upstream symbols of {name} do not resolve")

    def _indices(self, name):
        x = next(x for x in list(self.model.nodes) + list(self.model.params) if x.name == name)
        return x.indices


def substitute(expr: IExpr, sym, own: tuple, value: IExpr, folds) -> IExpr:
    """Replace ``sym[x]`` by ``value`` at indices ``x`` (value's dummies renamed apart first),
    then canonicalise with the model's ``folds``."""
    def build(ref):
        at = ref.indices if own else ()
        terms = _renamed_apart(value.terms)
        return IExpr(terms).to_sympy().xreplace(dict(zip(own, at)))
    if own:
        new = expr.to_sympy().replace(lambda x: isinstance(x, sp.Indexed) and x.base == sym,
                                      build)
    else:
        new = expr.to_sympy().xreplace({sym: build(None)})
    return IExpr.from_sympy(new, folds)


def derive(model: Model) -> Derivation:
    """Backpropagate through the model's nodes: seed ``∂ℓ/∂ℓ = 1`` or, for the abstract loss,
    ``∂ℓ/∂X = G`` at the last node ``X``
    (computed once per model; reading it is subject to :func:`derivations_granted`)."""
    _require_granted(model)
    return _derive(model)


@cache
def _derive(model: Model) -> Derivation:
    nodes = model.nodes
    upstream, grads, order = {}, {}, []
    if model.loss == "abstract":
        last = nodes[-1]
        upstream[last.name] = model.upstream
        grads[last.name] = IExpr.from_sympy(
            model.upstream[last.indices] if last.indices else model.upstream)
        inner = nodes[:-1]
    else:
        upstream[nodes[-1].name] = sp.S.One
        inner = nodes[:-1]
    for x in itertools.chain(reversed(inner), model.params):
        consumers = [y for y in nodes if y.name in upstream and y.definition.has(x.base)]
        if not consumers:
            continue
        grads[x.name] = _gradient(x, consumers, upstream, model.folds)
        upstream[x.name] = grad_symbol(x)
        order.append(x.name)
    return Derivation(model, grads, tuple(order))


def flow(model: Model, trainable) -> dict[str, IExpr]:
    """The gradient flow ``dθ/dτ``: ``−∂ℓ/∂θ`` on trainable parameters, ``0`` on frozen ones."""
    names = {p.name for p in model.params}
    unknown = set(trainable) - names
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; expected {sorted(names)}")
    der = derive(model)
    return {p.name: (-der.inlined(p.name) if p.name in trainable else IExpr())
            for p in model.params}

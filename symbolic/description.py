"""A model as a value: index kinds with symbolic sizes, parameters, data, named nodes, a loss.

Every layer of attnflow reads a model through this description: the derivation differentiates
its nodes (``symbolic.derive``), the printers turn them into NumPy, the explicit writing
expands them at small sizes, the laws and discovery read its parameters. A model is one
sentence ``χ`` of ``L`` tokens; parameters are either gathered per token by word id
(``per_token``: ``E[i, k]`` is row ``w_i`` of the embedding table) or shared by every sentence.
Nodes are named intermediates in index form, ``base[indices] = definition``, listed in the
order the forward pass computes them; the last one is the per-sentence loss ``ℓ`` (or, for
the abstract loss of the proofs, the node whose upstream gradient ``G`` stays a symbol).

Build nodes with :func:`node`, :func:`softmax`, :func:`cross_entropy`, :func:`squared_error`;
gather them with :func:`model`, which validates the whole before anything is derived
(every index a node reads is declared, every base read is a parameter, data or an earlier
node, every parameter is used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sympy as sp

from symbolic.indexform import Fold, IndexKind, indices_in, kind_of

#: What a node computes, for the printers (the derivation reads only ``definition``).
OPS = ("sum", "softmax", "cross-entropy", "squared-error", "relu")
LOSSES = ("cross-entropy", "squared-error", "abstract")


def size(name: str) -> sp.Symbol:
    """A symbolic size: a positive integer."""
    return sp.Symbol(name, integer=True, positive=True)


def kind(name: str, size_symbol: sp.Symbol, letters: tuple[str, ...]) -> IndexKind:
    """An index kind ``0 … size−1`` whose index symbols are named by ``letters``."""
    if not letters or any(not x.isidentifier() for x in letters):
        raise ValueError(f"index kind {name!r}: letters must be identifiers, got {letters!r}")
    return IndexKind(name, size_symbol, tuple(letters))


# The kinds every model of a sentence shares (a model may declare more, with other letters):
# tokens of the sentence, the embedding width, the classes.
L, d, C = size("L"), size("d"), size("C")
TOKEN = IndexKind("token", L, ("i", "j", "p"))
EMBED = IndexKind("embedding", d, ("k", "l"))
CLASS = IndexKind("class", C, ("c", "e"))


@dataclass(frozen=True)
class Param:
    """A parameter as it appears in one sentence: ``per_token`` ones are gathered by word id
    (their first index is a token), shared ones are read as they are."""

    name: str
    base: sp.IndexedBase
    indices: tuple
    per_token: bool
    meaning: str

    @property
    def ref(self):
        return self.base[self.indices]


@dataclass(frozen=True)
class Data:
    """An input of the sentence that no flow moves (e.g. the one-hot label ``Y[c]``)."""

    name: str
    base: sp.IndexedBase
    indices: tuple
    meaning: str


@dataclass(frozen=True, eq=False)
class Node:
    """``base[indices] = definition``; ``normalisers`` name the sums folded after ``diff``
    (a softmax's ``Σ_j exp(x_j)``); ``op`` tells the printers what the node computes."""

    base: object
    indices: tuple
    definition: sp.Expr
    meaning: str
    normalisers: Mapping = field(default_factory=dict)
    op: str = "sum"

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"node {self.name}: unknown op {self.op!r}; expected one of {OPS}")
        object.__setattr__(self, "normalisers", MappingProxyType(dict(self.normalisers)))

    @property
    def name(self) -> str:
        return str(self.base)

    @property
    def ref(self):
        return self.base[self.indices] if self.indices else self.base


def total(expr, *indices) -> sp.Expr:
    """``Σ_{i₁} Σ_{i₂} … expr``, each index over its kind's whole range ``0 … size − 1``."""
    for idx in indices:
        expr = sp.Sum(expr, (idx, 0, kind_of(idx).size - 1))
    return expr


def node(name: str, indices, definition, meaning: str, op: str = "sum") -> Node:
    """``name[indices] = definition`` (a scalar node when ``indices`` is empty)."""
    indices = tuple(indices)
    if not isinstance(definition, (sp.Basic, int, float)):
        # text would be parsed by sympify, which evaluates it: a definition is built with
        # SymPy objects (the kinds' indices and the parameters' IndexedBase)
        raise ValueError(f"node {name!r}: the definition is a {type(definition).__name__}, "
                         "not a SymPy expression (build it from the parameters and indices)")
    base = sp.IndexedBase(name) if indices else sp.Symbol(name)
    return Node(base, indices, sp.sympify(definition), meaning, op=op)


def _softmax_sum(x, at: tuple, over):
    """``Σ_over exp(x[at with over])``."""
    return sp.Sum(sp.exp(x[at]), (over, 0, kind_of(over).size - 1))


def _unused_index(k: IndexKind, taken) -> sp.Symbol:
    """The first index symbol of kind ``k`` not in ``taken``."""
    n = 0
    while k.index(n) in taken:
        n += 1
    return k.index(n)


def softmax(name: str, of: sp.IndexedBase, indices, over, meaning: str,
            normaliser=None) -> tuple[Node, Fold]:
    """``name[…, j] = exp(of[…, j]) / Σ_j' exp(of[…, j'])`` over the last index, and the fold
    that writes ``exp(of[…]) / Z[…]`` back as ``name[…]`` after differentiation.

    ``normaliser``: the name of ``Z`` (a symbol when the softmax has one index, indexed by the
    leading indices otherwise)."""
    indices = tuple(indices)
    if not indices or indices[-1] != over:
        raise ValueError(f"softmax {name}{list(indices)}: the last index must be {over}, the "
                         f"index it normalises over")
    lead = indices[:-1]
    base = sp.IndexedBase(name)
    z_name = normaliser or f"Z_{of}"
    z = (sp.IndexedBase(z_name) if lead else sp.Symbol(z_name, positive=True))
    dummy = _unused_index(kind_of(over), indices)
    total = _softmax_sum(of, lead + (dummy,), dummy)
    definition = sp.exp(of[indices]) / total
    n = Node(base, indices, definition, meaning, {total: z[lead] if lead else z}, op="softmax")
    return n, Fold(of, base, z)


def cross_entropy(logits: sp.IndexedBase, labels: sp.IndexedBase, cls, other,
                  name: str = "ell", probabilities: str = "P") -> tuple[Node, Fold]:
    """``ℓ = log Σ_e exp(z_e) − Σ_c Y_c z_c`` (``Y`` one-hot) and the fold of ``exp(z)/Z`` into
    the class probabilities ``P``."""
    total = _softmax_sum(logits, (other,), other)
    z = sp.Symbol(f"Z_{logits}", positive=True)
    definition = sp.log(total) - sp.Sum(labels[cls] * logits[cls], (cls, 0, kind_of(cls).size - 1))
    n = Node(sp.Symbol(name), (), definition, "cross-entropy", {total: z}, op="cross-entropy")
    return n, Fold(logits, sp.IndexedBase(probabilities), z)


def squared_error(logits: sp.IndexedBase, labels: sp.IndexedBase, cls,
                  name: str = "ell") -> Node:
    """``ℓ = ½ Σ_c (z_c − Y_c)²`` against the one-hot label ``Y``."""
    definition = sp.Rational(1, 2) * sp.Sum((logits[cls] - labels[cls]) ** 2,
                                            (cls, 0, kind_of(cls).size - 1))
    return Node(sp.Symbol(name), (), definition, "squared error", op="squared-error")


@dataclass(frozen=True, eq=False)
class Model:
    """A model description: compared by identity (build each once; the catalogue caches)."""

    name: str
    title: str
    kinds: tuple[IndexKind, ...]
    params: tuple[Param, ...]
    nodes: tuple[Node, ...]
    loss: str
    data: tuple[Data, ...] = ()
    folds: tuple[Fold, ...] = ()
    constants: tuple[sp.Symbol, ...] = ()
    upstream: object = None
    options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    # the paper's family is described by three options; generic code never reads them
    @property
    def classifier(self) -> str | None:
        return self.options.get("classifier")

    @property
    def contraction(self) -> str:
        return self.options.get("contraction", "context")

    @property
    def label(self) -> str:
        """Short name of the configuration in reports (``linear/cross_entropy`` for the paper's
        family, ``NAME/LOSS`` otherwise)."""
        if self.name == "paper":
            return f"{self.options['classifier']}/{self.options['loss']}"
        return f"{self.name}/{self.loss}"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(f"model {self.name!r} has no parameter {name!r}; its parameters: "
                         f"{[p.name for p in self.params]}")

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ValueError(f"model {self.name!r} has no node {name!r}")

    @property
    def sizes(self) -> dict[str, sp.Symbol]:
        """Size name → symbol (``L``, ``d``, …), in the order of the kinds."""
        out = {}
        for k in self.kinds:
            out.setdefault(str(k.size), k.size)
        return out

    @property
    def token_kind(self) -> IndexKind:
        return next(k for k in self.kinds if k.name == "token")

    def __repr__(self):
        return f"<model {self.name}: {self.title}>"


def model(name: str, title: str, *, kinds, params, nodes, loss: str, data=(), folds=(),
          constants=(), upstream=None, options=None) -> Model:
    """A validated :class:`Model` (ValueError names the first problem found)."""
    m = Model(name, title, tuple(kinds), tuple(params), tuple(nodes), loss, tuple(data),
              tuple(folds), tuple(constants), upstream, dict(options or {}))
    validate(m)
    return m


def validate(m: Model) -> None:
    """Every index read is declared, every base read is known, every parameter is used."""
    if not m.name or not all(ch.isalnum() or ch in "-_" for ch in m.name):
        raise ValueError(f"model name must be letters, digits, '-' or '_', got {m.name!r}")
    if m.loss not in LOSSES:
        raise ValueError(f"model {m.name}: unknown loss {m.loss!r}; expected one of {LOSSES}")
    if not any(k.name == "token" for k in m.kinds):
        raise ValueError(f"model {m.name}: no index kind named 'token' (the sentence's tokens)")
    if not m.nodes:
        raise ValueError(f"model {m.name}: no nodes")
    _unique(m, "parameter", [p.name for p in m.params])
    _unique(m, "node", [n.name for n in m.nodes])
    kinds = set(m.kinds)
    for p in m.params:
        _declared_indices(m, f"parameter {p.name}", p.indices, kinds)
        if p.per_token and (not p.indices or kind_of(p.indices[0]).name != "token"):
            raise ValueError(f"model {m.name}: parameter {p.name} is gathered per token, so its "
                             f"first index must be a token index, got {p.indices}")
    known = {p.base for p in m.params} | {x.base for x in m.data}
    allowed = set(m.constants) | {k.size for k in m.kinds}
    for n in m.nodes:
        _declared_indices(m, f"node {n.name}", n.indices, kinds)
        read = {x.base for x in n.definition.atoms(sp.Indexed)}
        unknown = sorted(str(b) for b in read - known)
        if unknown:
            raise ValueError(f"model {m.name}: node {n.name} reads {', '.join(unknown)}, which "
                             f"is neither a parameter, data, nor an earlier node")
        for idx in indices_in(n.definition):
            if kind_of(idx) not in kinds:
                raise ValueError(f"model {m.name}: node {n.name} reads index {idx} of kind "
                                 f"{kind_of(idx).name!r}, which the model does not declare")
        bound = {x[0] for s in n.definition.atoms(sp.Sum) for x in s.limits}
        free = indices_in(n.definition) - bound
        if not free <= set(n.indices):
            raise ValueError(f"model {m.name}: node {n.name}{list(n.indices)} has free "
                             f"index(es) {sorted(map(str, free - set(n.indices)))} in its "
                             f"definition")
        stray = (n.definition.free_symbols - indices_in(n.definition) - allowed
                 - {x.label for x in n.definition.atoms(sp.IndexedBase)}
                 - {x for x in n.definition.free_symbols if isinstance(x, sp.Indexed)})
        if stray:
            raise ValueError(f"model {m.name}: node {n.name} reads undeclared symbol(s) "
                             f"{sorted(map(str, stray))}; declare them as constants or sizes")
        known.add(n.base)
    used = set().union(*({x.base for x in n.definition.atoms(sp.Indexed)} for n in m.nodes))
    unused = [p.name for p in m.params if p.base not in used]
    if unused:
        raise ValueError(f"model {m.name}: parameter(s) {unused} are read by no node")
    if m.loss == "abstract" and m.upstream is None:
        raise ValueError(f"model {m.name}: the abstract loss needs the symbol of ∂ℓ/∂(last "
                         f"node) as upstream")
    if m.loss != "abstract" and m.nodes[-1].indices:
        raise ValueError(f"model {m.name}: the last node ({m.nodes[-1].name}) is the loss and "
                         f"must be a scalar")


def _unique(m: Model, what: str, names: list[str]) -> None:
    seen = set()
    for x in names:
        if x in seen:
            raise ValueError(f"model {m.name}: {what} name {x!r} is used twice")
        seen.add(x)


def _declared_indices(m: Model, where: str, indices, kinds) -> None:
    for idx in indices:
        if kind_of(idx) is None or kind_of(idx) not in kinds:
            raise ValueError(f"model {m.name}: {where} is indexed by {idx}, which is not an "
                             f"index of a declared kind")
    if len(set(indices)) != len(indices):
        raise ValueError(f"model {m.name}: {where} repeats an index in {indices}")

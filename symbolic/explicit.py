"""Cross-validation: the index-form gradients against ``sympy.diff`` of the explicit loss.

For explicit sizes the loss is written out with one plain symbol per parameter entry and
differentiated directly; each index-form gradient is expanded at the same sizes, its
intermediates (``a``, ``h``, ``P``, …) read as the explicit expressions they name, and the
difference is shown to be exactly 0 (every distinct ``exp(·)`` and ``Heaviside(·)`` becomes a
positive symbol first, so ``cancel`` works on rational functions).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import sympy as sp

from symbolic.derive import derive
from symbolic.indexform import kind_of
from symbolic.model import C, H, L, Model, d, d_key


@dataclass(frozen=True)
class Sizes:
    tokens: int
    d: int
    d_key: int
    classes: int
    hidden: int = 1

    def subs(self) -> dict:
        return {L: self.tokens, d: self.d, d_key: self.d_key, C: self.classes, H: self.hidden}

    def __str__(self):
        return (f"L={self.tokens}, d={self.d}, d_key={self.d_key}, C={self.classes}, "
                f"H={self.hidden}")


class ExplicitModel:
    """The loss of one sentence written out entry by entry (independent of ``symbolic.model``)."""

    def __init__(self, classifier: str, n: Sizes):
        self.n = n
        sym = self._symbols
        self.q = sym("q", n.d_key)
        self.K = sym("K", n.tokens, n.d_key)
        self.V = sym("V", n.tokens, n.d)
        self.Y = sym("Y", n.classes)
        self.s = [sum(self.q[r] * self.K[i][r] for r in range(n.d_key)) for i in range(n.tokens)]
        total = sum(sp.exp(x) for x in self.s)
        self.a = [sp.exp(x) / total for x in self.s]
        self.h = [sum(self.a[i] * self.V[i][k] for i in range(n.tokens)) for k in range(n.d)]
        self.params = {"embeddings": self.V, "keys": self.K, "query": self.q}
        if classifier == "linear":
            self.U = sym("U", n.classes, n.d)
            self.params["classifier"] = self.U
            self.z = [sum(self.U[c][k] * self.h[k] for k in range(n.d)) for c in range(n.classes)]
        else:
            W1, b1 = sym("W1", n.hidden, n.d), sym("b1", n.hidden)
            W2, b2 = sym("W2", n.classes, n.hidden), sym("b2", n.classes)
            self.params.update(hidden_weight=W1, hidden_bias=b1, output_weight=W2,
                               output_bias=b2)
            self.u = [sum(W1[j][k] * self.h[k] for k in range(n.d)) + b1[j]
                      for j in range(n.hidden)]
            self.o = [sp.Max(x, 0) for x in self.u]
            self.z = [sum(W2[c][j] * self.o[j] for j in range(n.hidden)) + b2[c]
                      for c in range(n.classes)]
        zsum = sum(sp.exp(x) for x in self.z)
        self.P = [sp.exp(x) / zsum for x in self.z]
        self.loss = sp.log(zsum) - sum(self.Y[c] * self.z[c] for c in range(n.classes))

    @staticmethod
    def _symbols(name, *shape):
        if len(shape) == 1:
            return [sp.Symbol(f"{name}_{i}", real=True) for i in range(shape[0])]
        return [[sp.Symbol(f"{name}_{i}_{j}", real=True) for j in range(shape[1])]
                for i in range(shape[0])]

    def entry(self, name: str, at: tuple):
        x = self.params[name] if name in self.params else getattr(self, name)
        for i in at:
            x = x[i]
        return x


def _read_explicitly(expr, ex: ExplicitModel, sizes: Sizes):
    """Expand sums at the sizes, then map every ``X[i, …]`` to the explicit entry it names."""
    names = {"q": "query", "K": "keys", "V": "embeddings", "U": "classifier",
             "W1": "hidden_weight", "b1": "hidden_bias", "W2": "output_weight",
             "b2": "output_bias"}
    expr = expr.xreplace(sizes.subs()).doit()

    def entry(x):
        base = str(x.base)
        return ex.entry(names.get(base, base), tuple(int(i) for i in x.indices))
    return expr.replace(lambda x: isinstance(x, sp.Indexed), entry)


class _Opaque:
    """Replaces each distinct ``exp(·)``/``Heaviside(·)`` by one positive symbol (memoised)."""

    def __init__(self):
        self.memo: dict = {}

    def __call__(self, expr):
        atoms = sorted(expr.atoms(sp.exp, sp.Heaviside), key=sp.default_sort_key)
        mapping = {}
        for atom in atoms:
            # exp(2x) and exp(x)·exp(x) must meet: one symbol for exp(x), raised to 2.
            times, arg = sp.factor_terms(sp.expand(atom.args[0])).as_coeff_Mul()
            if not (isinstance(atom, sp.exp) and times.is_Integer):
                times, arg = sp.S.One, sp.expand(atom.args[0])
            key = atom.func(arg)
            if key not in self.memo:
                self.memo[key] = sp.Symbol(f"E{len(self.memo)}", positive=True)
            mapping[atom] = self.memo[key] ** times
        return expr.xreplace(mapping)


@dataclass(frozen=True)
class Mismatch:
    classifier: str
    param: str
    sizes: Sizes
    at: tuple
    difference: sp.Expr

    def __str__(self):
        return (f"{self.classifier}: ∂ℓ/∂{self.param}{list(self.at)} at {self.sizes} differs "
                f"from sympy.diff of the explicit loss by {self.difference}")


def compare(classifier: str, sizes: Sizes, grads=None) -> list[Mismatch]:
    """Every entry of every parameter gradient, index form vs explicit; mismatches listed.

    ``grads`` (name → SymPy expression over the parameter's indices) defaults to the
    derivation; tests pass a deliberately wrong one to see it caught.
    """
    model = Model(classifier)
    der = derive(model)
    ex = ExplicitModel(classifier, sizes)
    opaque = _Opaque()
    out = []
    for param in model.params:
        expr = grads[param.name] if grads else der.inlined(param.name).to_sympy()
        ranges = [range(int(kind_size.xreplace(sizes.subs()))) for kind_size in
                  (kind_of(i).size for i in param.indices)]
        for at in itertools.product(*ranges):
            index_form = _read_explicitly(expr.xreplace(dict(zip(param.indices, at))), ex, sizes)
            explicit = sp.diff(ex.loss, ex.entry(param.name, at))
            diff = opaque(index_form) - opaque(explicit)
            diff = sp.cancel(sp.together(diff))
            if diff != 0:
                out.append(Mismatch(classifier, param.name, sizes, at, diff))
    return out


def grid(thorough: bool) -> list[Sizes]:
    """Sizes to check: a small grid by default, the issue's full grid when thorough."""
    if thorough:
        return [Sizes(t, dd, dk, c, hh) for t in (2, 3, 4) for dd in (1, 2, 3)
                for dk in (1, 2) for c in (2, 3) for hh in (1, 2)]
    return [Sizes(2, 1, 1, 2, 1), Sizes(3, 2, 1, 2, 2), Sizes(2, 2, 2, 3, 1)]


# --- any model of the catalogue, or a researcher's own ---------------------------------------
#
# Entries are supplied by ``value(name, at)`` (a parameter's name, or ``"Y"`` for the label and
# ``"G"`` for the abstract loss's upstream gradient): plain real symbols by default, so a
# comparison holds for every parameter value; numbers (plus ε along a direction) for the
# exact comparison at a point, which stays cheap at larger sizes.

def symbols(name: str, at: tuple):
    """The default entry: the real symbol ``name_i_j…``."""
    return sp.Symbol("_".join([name, *map(str, at)]), real=True)


def _at(array, at: tuple):
    for n in at:
        array = array[n]
    return array


def _shape(indices, sizes: dict) -> tuple[int, ...]:
    return tuple(int(kind_of(x).size.xreplace(sizes)) for x in indices)


def _fill(shape: tuple, value):
    """Nested lists of ``value(at)`` over ``shape``."""
    if not shape:
        return value(())
    return [_fill(shape[1:], lambda rest, n=n: value((n,) + rest)) for n in range(shape[0])]


class Expansion:
    """A description written out at explicit ``sizes`` by expanding each node's definition in
    order (sums done, every ``X[i, …]`` replaced by the entry already written): the loss of one
    sentence, with no derivation involved. ``values`` maps each base (params, data, nodes and
    the folds' names, e.g. the class probabilities ``P``) to its entries."""

    def __init__(self, model, sizes: dict, value=symbols):
        self.model, self.sizes = model, dict(sizes)
        self.params = {p.name: _fill(_shape(p.indices, sizes), lambda at, p=p: value(p.name, at))
                       for p in model.params}
        self.values = {p.base: self.params[p.name] for p in model.params}
        for x in model.data:
            self.values[x.base] = _fill(_shape(x.indices, sizes), lambda at: value("Y", at))
        for n in model.nodes:
            self.values[n.base] = _fill(_shape(n.indices, sizes),
                                        lambda at, n=n: self._entry(n, at))
        for fold in model.folds:
            self.values.setdefault(fold.name, self._softmax_of(fold))
        if model.loss == "abstract":
            last = model.nodes[-1]
            shape = _shape(last.indices, sizes)
            g = _fill(shape, lambda at: value("G", at))
            self.values[model.upstream] = g
            self.loss = sum(_at(g, at) * _at(self.values[last.base], at)
                            for at in itertools.product(*map(range, shape)))
        else:
            self.loss = self.values[model.nodes[-1].base]

    def _entry(self, n, at):
        expr = n.definition.xreplace(dict(zip(n.indices, at))).xreplace(self.sizes).doit()
        return self.read(expr)

    def read(self, expr):
        """``expr`` (sums already done) with every ``X[i, …]`` replaced by its entry."""
        return expr.replace(lambda e: isinstance(e, sp.Indexed),
                            lambda e: _at(self.values[e.base], tuple(int(i) for i in e.indices)))

    def _softmax_of(self, fold):
        """The entries of ``fold.name``: the softmax of ``fold.exp_of`` over its last index."""
        def rows(v):
            if isinstance(v[0], list):
                return [rows(w) for w in v]
            total = sum(sp.exp(w) for w in v)
            return [sp.exp(w) / total for w in v]
        x = self.values[fold.exp_of]
        return rows(x) if isinstance(x, list) else x

    def entry(self, name: str, at: tuple):
        return _at(self.params[name], at)


def read_index_form(expr, explicit: Expansion):
    """An index-form expression at the explicit sizes: sums expanded, every ``X[i, …]`` read
    as the explicit entry it names (parameters, data, intermediates, fold names)."""
    return explicit.read(expr.xreplace(explicit.sizes).doit())


def backward_explicitly(model, reader: Expansion) -> dict:
    """The derivation's backward pass read at explicit sizes, node by node: each ``g_X``'s
    index form evaluated with the entries of the ``g_Y`` computed before it (no symbolic
    inlining). Returns parameter name → nested entries of ``∂ℓ/∂θ``."""
    der = derive(model)
    params = {p.name for p in model.params}
    out = {}
    for name in der.order:
        x = der.param(name) if name in params else der.node(name)
        expr = der.grads[name].to_sympy()
        entries = _fill(_shape(x.indices, reader.sizes), lambda at, e=expr, x=x: read_index_form(
            e.xreplace(dict(zip(x.indices, at))), reader))
        if name in params:
            out[name] = entries
        else:
            reader.values[der.symbols[name]] = entries
    return out


#: Independent writings of catalogue models, by model name: ``cls(sizes, loss, value)``.
WRITTEN_BY_HAND: dict = {}


def compare_model(model, sizes: dict, grads=None, point=None, by_hand=True) -> list[Mismatch]:
    """Every parameter gradient of ``model``: the derivation's backward pass vs ``sympy.diff``
    of the explicit loss at ``sizes``; mismatches listed. The explicit loss is the model's
    writing by hand (:data:`WRITTEN_BY_HAND`) when there is one and ``by_hand``, else the
    :class:`Expansion` of its description. ``grads`` (name → SymPy expression over the
    parameter's indices, upstream gradients inlined) replaces the backward pass (tests pass a
    wrong one). ``point`` (a seed): compare exactly at one random rational point, along one
    random direction per parameter (:func:`difference_at_point`), instead of for every
    parameter value."""
    writer = WRITTEN_BY_HAND.get(model.name) if by_hand else None
    if point is None:
        return _compare_symbolically(model, sizes, grads, writer)
    return _compare_at_point(model, sizes, grads, writer, point)


def _write(model, sizes, writer, value):
    if writer is None:
        return Expansion(model, sizes, value)
    return writer(sizes, model.loss, value)


def _computed(model, reader, grads):
    if grads is None:
        return backward_explicitly(model, reader)
    return {p.name: _fill(_shape(p.indices, reader.sizes), lambda at, p=p: read_index_form(
        grads[p.name].xreplace(dict(zip(p.indices, at))), reader)) for p in model.params
        if p.name in grads}


def _compare_symbolically(model, sizes, grads, writer) -> list[Mismatch]:
    reader = Expansion(model, sizes)
    explicit = _write(model, sizes, writer, symbols)
    computed = _computed(model, reader, grads)
    opaque = _Opaque()
    out = []
    for param in model.params:
        for at in itertools.product(*map(range, _shape(param.indices, sizes))):
            exact = sp.diff(explicit.loss, explicit.entry(param.name, at))
            diff = sp.cancel(sp.together(opaque(_at(computed[param.name], at)) - opaque(exact)))
            if diff != 0:
                out.append(Mismatch(model.label, param.name, _label(sizes), at, diff))
    return out


def _compare_at_point(model, sizes, grads, writer, seed) -> list[Mismatch]:
    return [Mismatch(model.label, name, _label(sizes), ("direction",), diff)
            for name, diff in _differences_at_point(model, sizes, grads, writer, seed).items()
            if diff != 0]


def differences_at_point(model, sizes: dict, grads: dict, seed: int) -> dict:
    """For each parameter named in ``grads`` (name → SymPy expression over its indices, the
    claimed ``∂ℓ/∂θ`` with upstream gradients inlined), the difference between its derivative
    along a random direction and ``sympy.diff`` of the model's loss written by hand
    (:data:`WRITTEN_BY_HAND`, else the :class:`Expansion`) along the same direction, at an
    exact random rational point (:func:`difference_at_point`: 0 means equal there)."""
    return _differences_at_point(model, sizes, grads, WRITTEN_BY_HAND.get(model.name), seed)


def _differences_at_point(model, sizes, grads, writer, seed) -> dict:
    import random
    rng = random.Random(seed)
    point, direction = {}, {}

    def draw(table, name, at, low, high):
        key = (name, at)
        if key not in table:
            table[key] = sp.Rational(rng.randint(low, high), 4)
        return table[key]

    def at_point(name, at):
        return draw(point, name, at, -8, 8)
    constants = {c: sp.Rational(rng.randint(2, 8), 4) for c in model.constants}
    reader = Expansion(model, {**sizes, **constants}, at_point)
    computed = _computed(model, reader, grads)
    eps = sp.Symbol("epsilon")
    out = {}
    for param in model.params:
        if param.name not in computed:
            continue

        def moved(name, at, param=param):
            step = draw(direction, name, at, -4, 4) if name == param.name else 0
            return at_point(name, at) + eps * step
        explicit = _write(model, sizes, writer, moved)
        exact = sp.diff(explicit.loss.xreplace(constants), eps).xreplace({eps: 0})
        entries = itertools.product(*map(range, _shape(param.indices, sizes)))
        along = sum(_at(computed[param.name], at) * direction[(param.name, at)]
                    for at in entries)
        out[param.name] = difference_at_point(along, exact)
    return out


def _label(sizes) -> str:
    return ", ".join(f"{s}={v}" for s, v in sizes.items())


def difference_at_point(left, right):
    """``left − right`` for numbers built from rationals with + − × ÷ and ``exp``, as a rational
    function of stand-ins for the exponentials, cancelled: 0 means the two are equal.

    Innermost first, every ``exp(p/q)`` becomes ``t^(pN/q)`` with ``t = e^(1/N)`` (``N`` the
    common denominator), and every other ``exp(A)`` (``A`` a function of the stand-ins so far,
    cancelled to a canonical form) a symbol of its own. A zero result is a proof of equality
    whatever the stand-ins are worth; a nonzero one may in principle come from a relation
    between exponentials that the stand-ins do not know, and is reported as a mismatch."""
    diff = sp.sympify(left) - sp.sympify(right)
    if diff.free_symbols:
        raise ValueError(f"not a number: reads {sorted(map(str, diff.free_symbols))}")
    rational = [a for a in diff.atoms(sp.exp) if a.args[0].is_Rational]
    denominator = math.lcm(*(int(a.args[0].q) for a in rational)) if rational else 1
    t = sp.Symbol("t", positive=True)
    memo: dict = {}

    def stand_in(expr):
        if isinstance(expr, sp.exp):
            arg = stand_in(expr.args[0])
            if arg.is_Rational:
                return t ** (arg * denominator)
            key = sp.cancel(sp.together(arg))
            if key not in memo:
                memo[key] = sp.Symbol(f"E{len(memo)}", positive=True)
            return memo[key]
        if not expr.args:
            return expr
        return expr.func(*(stand_in(x) for x in expr.args))
    return sp.cancel(sp.together(stand_in(diff)))


class ExplicitAttention:
    """The multi-head self-attention classifier written out entry by entry, by hand
    (independent of the description in ``symbolic.models.attention``): ``X`` the token
    vectors, per head ``softmax(X Qᵀ K Xᵀ / τ) X Vᵀ O``, mean over tokens, ``z = U ȳ``."""

    def __init__(self, sizes: dict, loss: str = "cross-entropy", value=symbols, exp=sp.exp,
                 log=sp.log, tau=None):
        """``value(name, at)`` gives each entry (symbols by default); ``exp``, ``log`` and
        ``tau`` may be numeric (``cmath.exp``, a number) to evaluate the loss at a point,
        e.g. with complex entries for the complex-step derivative."""
        if tau is None:
            from symbolic.models.attention import tau
        n = {str(k): int(v) for k, v in sizes.items() if str(k) != "tau"}
        tokens, width, dh, nh, classes = n["L"], n["d"], n["d_head"], n["heads"], n["C"]
        shapes = {"embeddings": (tokens, width), "head_query": (nh, dh, width),
                  "head_key": (nh, dh, width), "head_value": (nh, dh, width),
                  "head_output": (nh, dh, width), "classifier": (classes, width)}
        self.params = {name: _fill(shape, lambda at, name=name: value(name, at))
                       for name, shape in shapes.items()}
        X, Qh, Kh, Vh, Oh, Uc = self.params.values()

        def project(M, head, t, row):
            return sum(M[head][row][col] * X[t][col] for col in range(width))
        y = [[0] * width for _ in range(tokens)]
        for head in range(nh):
            values = [[project(Vh, head, u, r) for r in range(dh)] for u in range(tokens)]
            keys = [[project(Kh, head, u, r) for r in range(dh)] for u in range(tokens)]
            for t in range(tokens):
                query = [project(Qh, head, t, r) for r in range(dh)]
                scores = [sum(a * b for a, b in zip(query, keys[u])) / tau
                          for u in range(tokens)]
                total = sum(exp(v) for v in scores)
                for u in range(tokens):
                    weight = exp(scores[u]) / total
                    for col in range(width):
                        y[t][col] += weight * sum(Oh[head][r][col] * values[u][r]
                                                  for r in range(dh))
        pooled = [sum(y[t][col] for t in range(tokens)) / tokens for col in range(width)]
        z = [sum(Uc[cl][col] * pooled[col] for col in range(width)) for cl in range(classes)]
        Y = [value("Y", (cl,)) for cl in range(classes)]
        if loss == "cross-entropy":
            self.loss = log(sum(exp(v) for v in z)) - sum(a * b for a, b in zip(Y, z))
        elif loss == "squared-error":
            self.loss = sum((a - b) ** 2 for a, b in zip(z, Y)) / 2
        else:
            self.loss = sum(value("G", (cl,)) * v for cl, v in enumerate(z))

    def entry(self, name: str, at: tuple):
        return _at(self.params[name], at)


WRITTEN_BY_HAND["multi-head"] = ExplicitAttention


# --- a data set of concrete sentences, over word-level parameters ----------------------------

@dataclass(frozen=True)
class Sentence:
    """One sentence of a concrete data set: the word id at each token, and its target — the
    one-hot label ``Y`` (cross-entropy) or ``G = ∂ℓ/∂h`` (any loss of the context)."""

    words: tuple
    target: tuple


class _SentenceModel(ExplicitModel):
    """:class:`ExplicitModel` of one sentence built directly over word-level symbols: token
    ``i`` reads the rows of the word it holds, ``Y`` is the sentence's label (no substitution
    afterwards, which would rebuild every ``max(·, 0)``)."""

    def __init__(self, classifier: str, n: Sizes, rows: dict, shared: dict, label):
        self._rows, self._shared, self._label = rows, shared, label
        super().__init__(classifier, n)

    def _symbols(self, name, *shape):
        if name in self._rows:
            return self._rows[name]
        if name == "Y":
            return list(self._label)
        if name not in self._shared:
            self._shared[name] = ExplicitModel._symbols(name, *shape)
        return self._shared[name]


class ExplicitDataset:
    """``L(θ) = (1/|D|) Σ_χ ℓ_χ`` of concrete sentences written out entry by entry, over one
    plain symbol per entry of each *word's* embedding and key (a word at several tokens, or
    in several sentences, is one set of symbols) and of the shared parameters.

    ``loss="cross_entropy"``: ``ℓ_χ`` of :class:`ExplicitModel` with ``Y`` the sentence's
    one-hot label; ``loss="any"``: ``ℓ_χ = Σ_k G_k h_k`` with ``G`` the target (a loss of the
    context whose ``∂ℓ/∂h`` is ``G``). ``sizes.tokens`` is not read (each sentence has its own
    length)."""

    def __init__(self, classifier: str, loss: str, sizes: Sizes, words: int, sentences):
        if loss not in ("cross_entropy", "any"):
            raise ValueError(f"unknown loss {loss!r}; expected 'cross_entropy' or 'any'")
        self.classifier, self.loss_kind, self.n = classifier, loss, sizes
        self.sentences = tuple(sentences)
        if not self.sentences:
            raise ValueError("a data set needs at least one sentence")
        self.words = words
        word = ExplicitModel._symbols
        self.params = {"embeddings": word("Vw", words, sizes.d),
                       "keys": word("Kw", words, sizes.d_key)}
        self._shared: dict = {}
        self.models = [self._model(x) for x in self.sentences]
        ex = self.models[0]
        self.params["query"] = ex.q
        if loss == "cross_entropy":
            self.params.update({name: table for name, table in ex.params.items()
                                if name not in ("embeddings", "keys", "query")})
        self.losses = [self._sentence_loss(x, ex) for x, ex in zip(self.sentences, self.models)]
        self.loss = sp.Add(*self.losses) / len(self.losses)
        self._gradients: dict = {}

    def _model(self, sentence: Sentence) -> ExplicitModel:
        n = self.n
        width = n.classes if self.loss_kind == "cross_entropy" else n.d
        if len(sentence.target) != width or not sentence.words or not all(
                0 <= w < self.words for w in sentence.words):
            raise ValueError(f"sentence {sentence} does not fit {self.words} words and "
                             f"targets of length {width}")
        rows = {"V": [self.params["embeddings"][w] for w in sentence.words],
                "K": [self.params["keys"][w] for w in sentence.words]}
        label = sentence.target if self.loss_kind == "cross_entropy" else (0,) * n.classes
        return _SentenceModel(self.classifier, Sizes(len(sentence.words), n.d, n.d_key,
                                                     n.classes, n.hidden),
                              rows, self._shared, label)

    def _sentence_loss(self, sentence: Sentence, ex: ExplicitModel):
        if self.loss_kind == "any":
            return sp.Add(*(g * x for g, x in zip(sentence.target, ex.h)))
        return ex.loss

    def gradient(self, sentence: int, x):
        """``∂ℓ_χ/∂x`` of sentence ``sentence`` (``sympy.diff``; each computed once)."""
        key = (sentence, x)
        if key not in self._gradients:
            self._gradients[key] = sp.diff(self.losses[sentence], x)
        return self._gradients[key]

    def score(self, word: int):
        """``s_w = Σ_r q_r κ_{w,r}``: the explicit model's score of a token holding ``word``."""
        ex = _SentenceModel("linear", Sizes(1, self.n.d, self.n.d_key, self.n.classes),
                            {"V": [self.params["embeddings"][word]],
                             "K": [self.params["keys"][word]]}, dict(self._shared),
                            (0,) * self.n.classes)
        return ex.s[0]

    def entries(self, name: str) -> list:
        """Every ``(index, symbol)`` of the parameter ``name``."""
        table = self.params[name]
        if table and isinstance(table[0], list):
            return [((i, j), x) for i, row in enumerate(table) for j, x in enumerate(row)]
        return [((i,), x) for i, x in enumerate(table)]


class ExplicitAttentionDataset:
    """``L(θ) = (1/|D|) Σ_χ ℓ_χ`` of the self-attention family over concrete sentences, each
    sentence's loss written by hand (:class:`ExplicitAttention`): one plain symbol per entry of
    each *word's* embedding (a word at several tokens, or in several sentences, is one row of
    symbols) and of the shared head matrices and classifier; the temperature ``τ`` stays the
    symbol of the model (a value of the point).

    ``sizes``: ``d``, ``d_head``, ``heads``, ``C`` (each sentence has its own ``L``);
    ``loss``: ``"cross-entropy"`` or ``"squared-error"`` against the sentence's one-hot label,
    or ``"abstract"``: ``ℓ_χ = Σ_c G_c z_c`` with ``G`` the target (a loss of the logits whose
    ``∂ℓ/∂z`` is ``G``)."""

    SHARED = ("head_query", "head_key", "head_value", "head_output", "classifier")

    def __init__(self, sizes: dict, loss: str, words: int, sentences):
        from symbolic.models.attention import tau
        n = {str(k): int(v) for k, v in sizes.items()}
        if loss not in ("cross-entropy", "squared-error", "abstract"):
            raise ValueError(f"unknown loss {loss!r}")
        self.n, self.loss_kind, self.words = n, loss, words
        self.sentences = tuple(sentences)
        if not self.sentences:
            raise ValueError("a data set needs at least one sentence")
        self.tau = tau
        self.params = {"embeddings": [[symbols("Ew", (w, k)) for k in range(n["d"])]
                                      for w in range(words)]}
        self._shared: dict = {}
        self.losses = [self._loss(x) for x in self.sentences]
        self.params.update({name: self._shared[name] for name in self.SHARED})
        self.loss = sp.Add(*self.losses) / len(self.losses)
        self._gradients: dict = {}

    def _loss(self, sentence: Sentence):
        n = self.n
        if (len(sentence.target) != n["C"] or not sentence.words
                or not all(0 <= w < self.words for w in sentence.words)):
            raise ValueError(f"sentence {sentence} does not fit {self.words} words and "
                             f"{n['C']} classes")

        def value(name, at):
            if name == "embeddings":
                return self.params["embeddings"][sentence.words[at[0]]][at[1]]
            if name in ("Y", "G"):
                return sp.sympify(sentence.target[at[0]])
            return symbols(name, at)
        sizes = {"L": len(sentence.words), **n}
        written = ExplicitAttention(sizes, self.loss_kind, value)
        for name in self.SHARED:
            self._shared.setdefault(name, written.params[name])
        return written.loss

    def gradient(self, sentence: int, x):
        """``∂ℓ_χ/∂x`` of sentence ``sentence`` (``sympy.diff``; each computed once)."""
        key = (sentence, x)
        if key not in self._gradients:
            self._gradients[key] = sp.diff(self.losses[sentence], x)
        return self._gradients[key]

    def entries(self, name: str) -> list:
        """Every ``(index, symbol)`` of the parameter ``name``."""
        out = []

        def walk(table, at):
            if isinstance(table, list):
                for i, x in enumerate(table):
                    walk(x, at + (i,))
            else:
                out.append((at, table))
        walk(self.params[name], ())
        return out

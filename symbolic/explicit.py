"""Cross-validation: the index-form gradients against ``sympy.diff`` of the explicit loss.

For explicit sizes the loss is written out with one plain symbol per parameter entry and
differentiated directly; each index-form gradient is expanded at the same sizes, its
intermediates (``a``, ``h``, ``P``, …) read as the explicit expressions they name, and the
difference is shown to be exactly 0 (every distinct ``exp(·)`` and ``Heaviside(·)`` becomes a
positive symbol first, so ``cancel`` works on rational functions).
"""

from __future__ import annotations

import itertools
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

"""How many conservation laws the gradient flow has for every data set, and which they are.

Marcotte, Gribonval & Peyré ("Abide by the law and follow the flow", NeurIPS 2023): a function
``Q(θ)`` is conserved along the gradient flow of every data set iff ``∇Q ⟂ X`` for every
per-sample gradient field ``X``, iff ``∇Q ⟂ Lie(X)``; near a generic point the number of
functionally independent such ``Q`` is ``D − dim Lie(X)(θ)``.

Here the per-sample fields are the DERIVED gradients of ``symbolic.derive`` (their index forms
read at explicit small sizes: a vocabulary of ``words`` words, sentences of up to ``max_len``
tokens, every label; for the ``any`` loss one field per coordinate of ``G = ∂ℓ/∂h``; for the
ReLU MLP every activation pattern, since across sentences each unit is on for some and off for
others). Brackets ``[X, Y] = DY·X − DX·Y`` are evaluated exactly with multilinear jets
(:mod:`symbolic.jets`) in mpmath at ``DPS`` digits; a vector is independent when its residual
after projection on the current basis exceeds ``10^(−DPS/2)`` of its norm. Zero residuals
come out near ``10^(−DPS)``, non-zero ones far above the threshold; every count reports both
sides of that gap and refuses to decide when it is narrower than ``MIN_GAP`` decades.
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from dataclasses import dataclass, field
from functools import cache, cached_property

import mpmath
import sympy as sp
from sympy.printing.pycode import MpmathPrinter

from symbolic.derive import derive
from symbolic.jets import Jet, jexp
from symbolic.model import FOLDS, G, Model, Y, d, d_key
from symbolic.model import C as C_SIZE
from symbolic.model import H as H_SIZE
from symbolic.model import L as L_SIZE

DPS = 50
THRESHOLD = mpmath.mpf(10) ** (-DPS // 2)
MIN_GAP = 12  # decades between the largest rejected and the smallest accepted residual

CLASSIFIER_PARAMS = {"linear": ("classifier",),
                     "mlp": ("hidden_weight", "hidden_bias", "output_weight", "output_bias")}
LOSSES = ("cross_entropy", "any")


# --- the configuration and its coordinates --------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A configuration at explicit sizes: which model, what trains, how big."""

    classifier: str = "linear"
    loss: str = "cross_entropy"
    trainable: tuple = ("embeddings", "keys", "classifier")
    words: int = 3
    d: int = 2
    d_key: int = 2
    classes: int = 2
    hidden: int = 2
    max_len: int = 3

    def __post_init__(self):
        if self.classifier not in CLASSIFIER_PARAMS:
            raise ValueError(f"unknown classifier {self.classifier!r}; expected 'linear' or "
                             f"'mlp'")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected 'cross_entropy' or 'any'")
        names = set(self.param_names) | {"classifier"}
        unknown = set(self.trainable) - names
        if unknown:
            raise ValueError(f"unknown trainable name(s) {sorted(unknown)}; expected some of "
                             f"{sorted(names)}")
        for name in ("words", "d", "d_key", "classes", "hidden", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")

    @property
    def model(self) -> Model:
        return Model(self.classifier, "abstract" if self.loss == "any" else "cross_entropy")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.model.params)

    @property
    def trained(self) -> tuple[str, ...]:
        """Trainable parameter names, ``classifier`` expanded to the MLP arrays."""
        out = []
        for name in self.param_names:
            if name in self.trainable or (name in CLASSIFIER_PARAMS[self.classifier]
                                          and "classifier" in self.trainable):
                out.append(name)
        return tuple(out)

    def shape(self, name: str) -> tuple[int, ...]:
        return {"embeddings": (self.words, self.d), "keys": (self.words, self.d_key),
                "query": (self.d_key,), "classifier": (self.classes, self.d),
                "hidden_weight": (self.hidden, self.d), "hidden_bias": (self.hidden,),
                "output_weight": (self.classes, self.hidden),
                "output_bias": (self.classes,)}[name]

    @cached_property
    def coordinates(self) -> tuple[tuple[str, tuple], ...]:
        """Every parameter entry ``(name, index)``, trained ones first."""
        order = self.trained + tuple(n for n in self.param_names if n not in self.trained)
        return tuple((n, at) for n in order
                     for at in itertools.product(*map(range, self.shape(n))))

    @property
    def n_trained(self) -> int:
        return sum(1 for n, _ in self.coordinates if n in self.trained)

    def sizes(self, tokens: int) -> dict:
        return {L_SIZE: tokens, d: self.d, d_key: self.d_key, C_SIZE: self.classes,
                H_SIZE: self.hidden}

    def describe(self) -> str:
        loss = "any loss of the context" if self.loss == "any" else "cross-entropy"
        clf = "" if self.loss == "any" else f"{self.classifier} classifier, "
        return (f"{clf}{loss}; trained: {', '.join(self.trained) or 'nothing'}; sizes: "
                f"{self.words} words, d={self.d}, d_key={self.d_key}"
                + ("" if self.loss == "any" else f", {self.classes} classes")
                + (f", {self.hidden} hidden" if self.classifier == "mlp"
                   and self.loss != "any" else "")
                + f", sentences of 1–{self.max_len} tokens")


def coordinate_symbol(name: str, at: tuple) -> sp.Symbol:
    """The plain symbol of one parameter entry, e.g. ``keys[1, 0]`` → ``κ_1_0``."""
    short = {"embeddings": "v", "keys": "κ", "query": "q", "classifier": "U",
             "hidden_weight": "W1", "hidden_bias": "b1", "output_weight": "W2",
             "output_bias": "b2"}[name]
    return sp.Symbol("_".join([short, *map(str, at)]), real=True)


# --- the derived per-sentence gradient as a program at explicit sizes -----------------------

@dataclass(frozen=True)
class TokenProgram:
    """``∂ℓ/∂θ`` of one sentence of ``tokens`` tokens, from the derivation, as Python code.

    Inputs (in order): every parameter entry as seen from the sentence (per-token copies of
    embeddings and keys), then the label ``Y`` (or ``G`` for the any loss), then the activation
    pattern ``δ`` (MLP). Output: the gradient entries in the same parameter order.
    """

    inputs: tuple
    outputs: tuple  # ((param name, token-level index), …)
    source: str

    @cached_property
    def exact(self):
        return _compile(self.source, {"jexp": jexp, "mpmath": mpmath})

    @cached_property
    def fast(self):
        import math
        return _compile(self.source.replace("mpmath.mpf", "float"), {"jexp": math.exp,
                                                                      "mpmath": math})


def _compile(source: str, namespace: dict):
    ns = dict(namespace)
    exec(compile(source, "<derived gradient>", "exec"), ns)  # noqa: S102 - our own printout
    return ns["program"]


def _entry_symbol(base, at) -> sp.Symbol:
    return sp.Symbol("_".join([str(base), *map(str, at)]))


@cache
def token_program(setting: Setting, tokens: int) -> TokenProgram:
    """Print the derived per-sentence gradient (all parameters) for ``tokens`` tokens."""
    model, der = setting.model, derive(setting.model)
    sizes = setting.sizes(tokens)
    pattern = sp.IndexedBase("δ")
    ranges = {}
    for x in list(model.params) + list(model.nodes):
        ranges[str(x.base)] = [range(int(sp.sympify(_kind_size(i)).xreplace(sizes)))
                               for i in x.indices]
    inputs = []
    for p in model.params:
        inputs += [_entry_symbol(p.base, at) for at in itertools.product(*ranges[str(p.base)])]
    extra = G if setting.loss == "any" else Y
    n_extra = setting.d if setting.loss == "any" else setting.classes
    inputs += [_entry_symbol(extra, (c,)) for c in range(n_extra)]
    if setting.classifier == "mlp" and setting.loss != "any":
        inputs += [_entry_symbol(pattern, (n,)) for n in range(setting.hidden)]

    def read(expr):
        expr = expr.replace(lambda x: isinstance(x, sp.Max),
                            lambda x: pattern[x.args[0].indices] * x.args[0]
                            if x.args[1] == 0 else x)
        expr = expr.replace(sp.Heaviside, lambda x, *rest: pattern[x.indices])
        expr = expr.xreplace(sizes).doit()
        expr = expr.replace(lambda x: isinstance(x, sp.Indexed),
                            lambda x: _entry_symbol(x.base, tuple(int(i) for i in x.indices)))
        # exp of an earlier entry is computed once, on its own line (jets make exp costly).
        return expr.replace(lambda x: isinstance(x, sp.exp) and x.args[0].is_Symbol,
                            lambda x: exps.setdefault(x.args[0], sp.Symbol(f"exp_{x.args[0]}")))

    lines, exps = [], {}

    def emit(lhs, rhs):
        for arg, name in exps.items():
            if name not in done:
                lines.append((name, JExp(arg)))
                done.add(name)
        lines.append((lhs, rhs))

    done: set = set()
    for node in model.nodes:
        if str(node.base) == "ell":
            continue
        for at in itertools.product(*ranges[str(node.base)]):
            value = node.definition.xreplace(dict(zip(node.indices, at)))
            emit(_entry_symbol(node.base, at), read(value))
        for lhs, rhs in _fold_lines(node, ranges, read):
            emit(lhs, rhs)
    outputs, exprs = [], []
    for p in model.params:
        grad = der.inlined(p.name).to_sympy()
        for at in itertools.product(*ranges[str(p.base)]):
            outputs.append((p.name, at))
            exprs.append(read(grad.xreplace(dict(zip(p.indices, at)))))
    printer = _Printer({"fully_qualified_modules": True})
    body = [f"    {printer.doprint(lhs)} = {printer.doprint(rhs)}" for lhs, rhs in lines]
    body.append("    return (" + ", ".join(printer.doprint(x) for x in exprs) + ",)")
    args = ", ".join(printer.doprint(x) for x in inputs)
    source = f"def program({args}):\n" + "\n".join(body) + "\n"
    return TokenProgram(tuple(inputs), tuple(outputs), source)


class JExp(sp.Function):
    """``exp`` left unevaluated, printed as a call of :func:`symbolic.jets.jexp`."""

    nargs = 1


class _Printer(MpmathPrinter):
    def _print_JExp(self, expr):
        return f"jexp({self._print(expr.args[0])})"


def _kind_size(index):
    from symbolic.indexform import kind_of
    return kind_of(index).size


def _fold_lines(node, ranges, read):
    """After the last logit, ``P[c] = exp(z[c]) / Σ_e exp(z[e])`` (the fold the gradients use)."""
    out = []
    for fold in FOLDS:
        if fold.exp_of == node.base and fold.name != node.base and str(fold.name) != "a":
            (size,) = ranges[str(node.base)]
            for c in size:
                total = sp.Add(*(sp.exp(node.base[e]) for e in size))
                out.append((_entry_symbol(fold.name, (c,)), read(sp.exp(node.base[c]) / total)))
    return out


# --- the per-sentence fields on the vocabulary's coordinates --------------------------------

@dataclass(frozen=True)
class Generator:
    """One per-sample field: a sentence (word ids), its label / ``G`` coordinate, a pattern."""

    words: tuple
    target: int
    pattern: tuple = ()

    def __str__(self):
        pat = f", ReLU pattern {''.join(map(str, self.pattern))}" if self.pattern else ""
        return f"sentence {list(self.words)} → {self.target}{pat}"


def sentences(words: int, max_len: int) -> list[tuple]:
    """Every multiset of word ids of size 1 … ``max_len`` (a sentence is a bag of words)."""
    return [s for n in range(1, max_len + 1)
            for s in itertools.combinations_with_replacement(range(words), n)]


class Fields:
    """The per-sentence gradient fields of a setting, on its trained coordinates.

    A point gives values to every coordinate; frozen ones stay as given (their flow is 0).
    """

    def __init__(self, setting: Setting, frozen_values: dict | None = None):
        self.setting = setting
        self.coords = setting.coordinates
        self.n = setting.n_trained
        self.index = {c: k for k, c in enumerate(self.coords)}
        targets = setting.d if setting.loss == "any" else setting.classes
        patterns = ([()] if setting.classifier != "mlp" or setting.loss == "any"
                    else list(itertools.product((0, 1), repeat=setting.hidden)))
        self.generators = [Generator(s, t, p) for s in sentences(setting.words, setting.max_len)
                           for t in range(targets) for p in patterns]
        self.frozen_values = frozen_values or {}

    def full_point(self, x):
        """Trained coordinates from ``x``, frozen ones from ``frozen_values``."""
        return list(x) + [self.frozen_values[c] for c in self.coords[self.n:]]

    def __call__(self, g: Generator, x, fast=False) -> list:
        """``−∂ℓ_g/∂θ`` (the flow of one sentence) on the trained coordinates at ``x``."""
        point = self.full_point(x)
        program = token_program(self.setting, len(g.words))
        args = []
        for name, at in (_split(sym) for sym in program.inputs):
            args.append(self._input(name, at, g, point))
        out = (program.fast if fast else program.exact)(*args)
        flow = [0] * self.n
        for (name, at), value in zip(program.outputs, out):
            if name not in self.setting.trained:
                continue
            if name in ("embeddings", "keys"):
                at = (g.words[at[0]],) + at[1:]
            flow[self.index[(name, at)]] -= value
        return flow

    def _input(self, base, at, g, point):
        names = {"q": "query", "K": "keys", "V": "embeddings", "U": "classifier",
                 "W1": "hidden_weight", "b1": "hidden_bias", "W2": "output_weight",
                 "b2": "output_bias"}
        if base in ("Y", "G"):
            return 1 if at[0] == g.target else 0
        if base == "δ":
            return g.pattern[at[0]]
        name = names[base]
        if name in ("embeddings", "keys"):
            at = (g.words[at[0]],) + at[1:]
        return point[self.index[(name, at)]]


def _split(sym) -> tuple[str, tuple]:
    base, *at = str(sym).split("_")
    return base, tuple(int(x) for x in at)


# --- rank with a stated gap -------------------------------------------------------------------

@dataclass
class Basis:
    """An orthonormal basis grown by Gram–Schmidt; residual ratios kept on both sides."""

    vectors: list = field(default_factory=list)
    smallest_accepted: mpmath.mpf | None = None
    largest_rejected: mpmath.mpf | None = None

    def offer(self, v) -> bool:
        """Add ``v`` if its residual exceeds ``THRESHOLD`` of its norm; say whether it did."""
        norm = mpmath.sqrt(sum(x * x for x in v))
        if norm == 0:
            return False
        w = [x / norm for x in v]
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            for b in self.vectors:
                dot = sum(x * y for x, y in zip(w, b))
                w = [x - dot * y for x, y in zip(w, b)]
        ratio = mpmath.sqrt(sum(x * x for x in w))
        if ratio > THRESHOLD:
            self.vectors.append([x / ratio for x in w])
            self.smallest_accepted = (ratio if self.smallest_accepted is None
                                      else min(ratio, self.smallest_accepted))
            return True
        self.largest_rejected = (ratio if self.largest_rejected is None
                                 else max(ratio, self.largest_rejected))
        return False

    @property
    def rank(self) -> int:
        return len(self.vectors)

    @property
    def gap_decades(self) -> float:
        """``log10(smallest accepted / largest rejected)`` residual ratio."""
        hi = self.smallest_accepted if self.smallest_accepted is not None else mpmath.mpf(1)
        lo = self.largest_rejected if self.largest_rejected is not None \
            else mpmath.mpf(10) ** (-DPS)
        return float(mpmath.log10(hi / lo))


# --- the Lie algebra generated by the fields at a point --------------------------------------

def _evaluate(fields: Fields, element, x, level: int):
    """The field ``element`` (a generator or a pair (A, B) = [A, B]) at ``x`` (jets below
    ``level``): ``[A, B](x) = DB(x)·A(x) − DA(x)·B(x)``, each derivative as an ε_level part."""
    if isinstance(element, Generator):
        return fields(element, x)
    left, right = element
    a = _evaluate(fields, left, x, level)
    eps = Jet({1 << level: mpmath.mpf(1)})
    b_full = _evaluate(fields, right, [xi + eps * ai for xi, ai in zip(x, a)], level + 1)
    b = [_real_in(y, level) for y in b_full]
    a_full = _evaluate(fields, left, [xi + eps * bi for xi, bi in zip(x, b)], level + 1)
    return [_part(yb, level) - _part(ya, level) for yb, ya in zip(b_full, a_full)]


def _part(y, level):
    return y.part(level) if isinstance(y, Jet) else 0


def _real_in(y, level):
    """Drop every term carrying ε_level."""
    if not isinstance(y, Jet):
        return y
    mask = 1 << level
    parts = {s: v for s, v in y.parts.items() if not s & mask}
    return Jet(parts) if set(parts) - {0} else parts.get(0, 0)


@dataclass
class LieRank:
    rank: int
    dimension: int
    depth: int  # bracket depth at which the rank stopped growing
    gap_decades: float
    basis: list  # the elements (generators / nested pairs) whose values are independent
    seconds: float = 0.0


def lie_rank(fields: Fields, x, max_depth: int = 6) -> LieRank:
    """``dim Lie(fields)(x)``: grow a basis of values, bracket every new element with the
    basis until nothing new is independent (valid at regular points: the rank is locally
    constant there, so brackets of a local basis span the brackets of every field)."""
    import time

    start = time.perf_counter()
    with mpmath.workdps(DPS):
        x = [to_mp(v) for v in x]
        basis, elements = Basis(), []
        for g in fields.generators:
            if basis.offer(fields(g, x)):
                elements.append(g)
            if basis.rank == fields.n:
                break
        new, depth = list(elements), 0
        tried = set()
        while new and basis.rank < fields.n and depth < max_depth:
            depth += 1
            fresh = []
            for a_el, b_el in itertools.product(list(elements), new):
                key = frozenset((id(a_el), id(b_el)))
                if a_el is b_el or key in tried:
                    continue
                tried.add(key)
                if basis.offer(_evaluate(fields, (a_el, b_el), x, 0)):
                    elements.append((a_el, b_el))
                    fresh.append((a_el, b_el))
                if basis.rank == fields.n:
                    break
            new = fresh
        if new and basis.rank < fields.n:
            raise RuntimeError(f"the Lie algebra still grew at bracket depth {max_depth}")
    return LieRank(basis.rank, fields.n, depth, basis.gap_decades, elements,
                   time.perf_counter() - start)


def linear_rank(fields: Fields, points) -> Basis:
    """``dim span{X(θ)}`` over every field and the given points: the directions ever moved."""
    basis = Basis()
    with mpmath.workdps(DPS):
        for x in points:
            x = [to_mp(v) for v in x]
            for g in fields.generators:
                basis.offer(fields(g, x))
                if basis.rank == fields.n:
                    return basis
    return basis


def random_point(setting: Setting, seed: int) -> dict:
    """Every coordinate a random non-zero rational ``n/16`` in [−1, 1] (exact, reproducible)."""
    rng = random.Random(seed)
    return {c: Fraction(rng.choice([n for n in range(-16, 17) if n]), 16)
            for c in setting.coordinates}


def to_mp(x) -> mpmath.mpf:
    """A rational (``Fraction``) as an mpmath number at the working precision."""
    x = Fraction(x)
    return mpmath.mpf(x.numerator) / x.denominator

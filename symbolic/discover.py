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
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
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

    @cached_property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.model.params)

    @cached_property
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
    def entries(self) -> tuple[tuple[str, tuple], ...]:
        """``(base, index)`` of each input, read once: printing the symbols' names on every
        field evaluation cost about a tenth of ``discover``."""
        return tuple(_split(sym) for sym in self.inputs)

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
        expr = expr.replace(lambda x: isinstance(x, sp.Max), _gated)
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


def _gated(relu):
    """``max(u_n, 0)`` under the activation pattern: ``δ_n u_n`` (δ_n ∈ {0, 1} per field)."""
    args = set(relu.args)
    if sp.S.Zero not in args or len(args) != 2:
        raise ValueError(f"only max(x, 0) is supported, not {relu}")
    (inner,) = args - {sp.S.Zero}
    return sp.IndexedBase("δ")[inner.indices] * inner


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

    def point(self, seed: int) -> list:
        """Random rational trained coordinates (frozen ones stay as given)."""
        point = random_point(self.setting, seed)
        return [point[c] for c in self.coords[:self.n]]

    def full_point(self, x, fast=False):
        """Trained coordinates from ``x``, frozen ones (rationals) from ``frozen_values``."""
        convert = float if fast else to_mp
        return list(x) + [convert(self.frozen_values[c]) for c in self.coords[self.n:]]

    def __call__(self, g: Generator, x, fast=False) -> list:
        """``−∂ℓ_g/∂θ`` (the flow of one sentence) on the trained coordinates at ``x``."""
        point = self.full_point(x, fast)
        program = token_program(self.setting, len(g.words))
        args = [self._input(name, at, g, point) for name, at in program.entries]
        out = (program.fast if fast else program.exact)(*args)
        flow = [0] * self.n
        trained = self.setting.trained
        for (name, at), value in zip(program.outputs, out):
            if name not in trained:
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


# --- what a run costs, known before it starts -------------------------------------------------

#: Arithmetic operations in the printed gradient of one sentence of ``L`` tokens, per model
#: kind: ``Σ coefficient · Π size^power`` (non-negative least squares on the programs printed
#: at every L ≤ 4, d, d_key ≤ 3, classes ≤ 3, hidden ≤ 3; within 25 % (linear), 50 % (MLP)
#: there; non-negative terms, so it grows with every size).
PROGRAM_OPERATIONS = {
    "linear": ((5.39, {}), (5.32, {"d_key": 1}), (3.3, {"d": 1, "C": 1}),
               (4.95, {"L": 1, "d": 1, "C": 1}), (0.5, {"L": 1, "d": 1, "C": 2}),
               (4.34, {"L": 1, "d": 1, "d_key": 1}), (19.54, {"L": 1, "d": 1, "d_key": 1, "C": 1}),
               (0.59, {"L": 2, "d": 1}), (6.36, {"L": 2, "d": 1, "d_key": 1})),
    "mlp": ((14.63, {}), (14.94, {"C": 1}), (31.87, {"d_key": 1}),
            (0.05, {"d": 1, "C": 2, "H": 2}), (0.9, {"d": 1, "d_key": 1, "C": 2, "H": 2}),
            (13.68, {"L": 1, "d": 1, "H": 1}), (1.21, {"L": 1, "d": 1, "C": 2, "H": 2}),
            (17.29, {"L": 1, "d": 1, "d_key": 1, "H": 1}),
            (4.58, {"L": 1, "d": 1, "d_key": 1, "C": 1, "H": 2}),
            (0.29, {"L": 1, "d": 1, "d_key": 1, "C": 2, "H": 1}),
            (4.61, {"L": 2, "d": 1, "d_key": 1, "H": 1}),
            (0.36, {"L": 2, "d": 1, "d_key": 1, "C": 1, "H": 1})),
    "any": ((5.7, {"d_key": 1}), (0.6, {"L": 1}), (6.61, {"L": 1, "d_key": 1}),
            (0.34, {"L": 1, "d": 1}), (6.33, {"L": 1, "d": 1, "d_key": 1}), (0.49, {"L": 2}),
            (0.91, {"L": 2, "d": 1}), (2.41, {"L": 2, "d": 1, "d_key": 1})),
}

#: CPU seconds per unit of each ``Cost.counts`` entry (``fixed``: imports and the derivation;
#: ``topic``: the topic structure's proofs), and bytes per unit of each ``Cost.footprint``
#: entry: non-negative least squares on the relative error of 35 measured runs of 2–194 s
#: and 0.1–3.2 GB, the ansatz's SVD timed on its own (``benchmarks/bench_discover_cost.py``,
#: which prints these and each run's estimate; within 0.58–1.30 of the measured time and
#: 0.77–1.12 of the peak memory). The six runs nearest the limit, held out of a first fit
#: on the other 29, came within 0.86–2.05 of it.
SECONDS_PER = {"fixed": 1.75, "topic": 4.34, "printed operations": 0.000141,
               "field operations": 1.76e-05, "Gram-Schmidt": 3.41e-05, "brackets": 3.44e-06,
               "bracket Gram-Schmidt": 2.33e-07, "ansatz field operations": 4.2e-07,
               "ansatz SVD": 2.4e-10, "proofs": 3.15e-09}
BYTES_PER = {"fixed": 1.01e+08, "fields": 0, "field values": 154, "printed operations": 2140,
             "ansatz matrix": 41.4, "law products": 127}
#: Sentence lengths summed one by one; beyond, the cost is bounded below by this many.
_LENGTHS_SUMMED = 1_000


@dataclass(frozen=True)
class Cost:
    """What ``count_laws`` (and with ``closed_forms`` the degree-2 ansatz and its proofs)
    is expected to take at a setting's sizes: ``seconds`` of CPU and peak ``bytes``, from the
    ``counts`` and ``footprint`` that drive them (a lower bound, ``at_least``, when the
    sentence lengths are too many to sum one by one)."""

    seconds: float
    bytes: float
    counts: dict  # what drives the time (× ``SECONDS_PER``)
    footprint: dict  # what drives the memory (× ``BYTES_PER``)
    at_least: bool = False


def _real(size: int) -> float:
    """A size as a float (sizes past 1e300 are priced as 1e300: far beyond any limit)."""
    return float(min(size, 10 ** 300))


def _log_multisets(words: int, length: int) -> float:
    """``log C(words + length − 1, length)``: how many bags of ``length`` words there are."""
    words = _real(words)
    if words > 1e12:  # words + length would lose length's digits: words ≫ length
        return length * math.log(words) - math.lgamma(length + 1)
    return math.lgamma(words + length) - math.lgamma(length + 1) - math.lgamma(words)


def _power(x: float, p: int) -> float:
    """``x**p``, infinite where it overflows (an infinite cost is refused like any other)."""
    try:
        return x ** p
    except OverflowError:
        return math.inf


def _operations(kind: str, sizes: dict) -> float:
    return sum(c * math.prod(_power(_real(sizes[k]), p) for k, p in powers.items())
               for c, powers in PROGRAM_OPERATIONS[kind])


def _trained_coordinates(setting: Setting) -> float:
    return sum(math.prod(_real(x) for x in setting.shape(name)) for name in setting.trained)


def estimate_cost(setting: Setting, closed_forms: bool = True) -> Cost:
    """The CPU time and memory a ``discover`` run at ``setting`` is expected to take, from
    the counts that drive it, before anything is allocated: ``n`` trained coordinates, ``G``
    per-sentence fields (bags of 1…max_len words × labels × ReLU patterns), ``P(L)``
    operations per field evaluation. Gram–Schmidt costs ``G·n²`` per point, brackets
    ``n²`` jet evaluations, the ansatz ``~2n`` points of ``G`` fields and an SVD of
    ``M = n(n+3)/2`` monomials."""
    kind = "any" if setting.loss == "any" else setting.classifier
    targets = setting.d if setting.loss == "any" else setting.classes
    patterns = 2.0 ** min(setting.hidden, 1000) if kind == "mlp" else 1.0
    n = _trained_coordinates(setting)
    sizes = {"d": setting.d, "d_key": setting.d_key, "C": setting.classes, "H": setting.hidden}
    lengths = min(setting.max_len, _LENGTHS_SUMMED)
    printed = fields = evaluations = 0.0
    for length in range(1, lengths + 1):
        ops = _operations(kind, dict(sizes, L=length))
        count = math.exp(min(_log_multisets(setting.words, length), 700.0)) * targets * patterns
        printed += ops
        fields += count
        evaluations += count * ops
    per_field = evaluations / fields
    points = 2 * n + 16
    monomials = n * (n + 3) / 2
    rows = points * fields
    closed = 1.0 if closed_forms else 0.0
    counts = {"fixed": 1.0,
              "topic": float("query" not in setting.trained
                             and {"embeddings", "keys"} <= set(setting.trained)),
              "trained coordinates": n, "fields": fields,
              "printed operations": printed, "field operations": evaluations,
              "Gram-Schmidt": fields * n * n, "brackets": n * n * per_field,
              "bracket Gram-Schmidt": _power(n, 4),
              "ansatz field operations": closed * points * evaluations,
              "ansatz SVD": closed * max(rows, monomials) * _power(monomials, 2),
              "proofs": closed * _power(n, 6)}
    footprint = {"fixed": 1.0, "fields": fields, "field values": fields * n,
                 "printed operations": printed,
                 "ansatz matrix": closed * max(rows, monomials) * monomials,
                 "law products": closed * _power(n, 4)}
    seconds = sum(SECONDS_PER[k] * counts[k] for k in SECONDS_PER)
    memory = sum(BYTES_PER[k] * footprint[k] for k in BYTES_PER)
    # a NaN (0 · ∞ at absurd sizes) must not compare as within a limit
    seconds, memory = (math.inf if math.isnan(x) else x for x in (seconds, memory))
    return Cost(seconds, memory, counts, footprint, at_least=lengths < setting.max_len)


# --- rank with a stated gap -------------------------------------------------------------------

@dataclass
class Basis:
    """An orthonormal basis grown by Gram–Schmidt; residual ratios kept on both sides.

    A vector's residual is measured against ``max(its norm, scale)``, ``scale`` the largest
    generator value at the point: a bracket that is exactly 0 comes out as rounding noise
    (about ``10^(−DPS)`` of the scale) and must not be normalised up into a direction.
    """

    scale: mpmath.mpf = mpmath.mpf(1)
    vectors: list = field(default_factory=list)
    smallest_accepted: mpmath.mpf | None = None
    largest_rejected: mpmath.mpf | None = None

    def offer(self, v) -> bool:
        """Add ``v`` if its residual exceeds ``THRESHOLD`` of its size; say whether it did."""
        size = max(mpmath.sqrt(sum(x * x for x in v)), self.scale)
        w = [x / size for x in v]
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
        return float(mpmath.log10(hi / max(lo, mpmath.mpf(10) ** (-2 * DPS))))


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
        values = [fields(g, x) for g in fields.generators]
        basis, elements = Basis(moving_scale(values)), []
        for g, value in zip(fields.generators, values):
            if basis.offer(value):
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
    with mpmath.workdps(DPS):
        for k, x in enumerate(points):
            x = [to_mp(v) for v in x]
            values = [fields(g, x) for g in fields.generators]
            if k == 0:
                basis = Basis(moving_scale(values))
            for value in values:
                basis.offer(value)
                if basis.rank == fields.n:
                    return basis
    return basis


def scale_of(values) -> mpmath.mpf:
    """The largest norm among field values (the scale residuals are measured against)."""
    return max(mpmath.sqrt(sum(x * x for x in v)) for v in values) or mpmath.mpf(1)


class NothingMoves(RuntimeError):
    """Every field vanishes at the working precision: there is no rank to count (not
    checked, exit 3), only rounding noise that Gram–Schmidt would take as directions."""


#: Fields below this norm are rounding noise at ``DPS`` digits, not motion: coordinates are
#: rationals in (−1, 1), so a field that moves is far above ``10^(−DPS/2)``.
NOISE_FLOOR = mpmath.mpf(10) ** (-(DPS // 2))


def moving_scale(values) -> mpmath.mpf:
    """``scale_of(values)``, or NothingMoves when every value is below ``NOISE_FLOOR``
    (then ``‖X(θ)‖ ≈ 10^(−DPS)``: the rank of noise is not the Lie algebra's)."""
    largest = max((mpmath.sqrt(sum(x * x for x in v)) for v in values), default=0)
    if largest < NOISE_FLOOR:
        raise NothingMoves(f"nothing moves at this sample: every per-sentence field is "
                           f"below 1e-{DPS // 2} (largest "
                           f"{mpmath.nstr(largest, 3)}), so no rank can be counted; not "
                           f"checked")
    return largest  # what scale_of gives when it is not 0


def random_point(setting: Setting, seed: int) -> dict:
    """Every coordinate a random non-zero rational ``n/97`` in (−1, 1) (exact, reproducible)."""
    rng = random.Random(seed)
    return {c: Fraction(rng.choice([n for n in range(-96, 97) if n]), 97)
            for c in setting.coordinates}


def to_mp(x) -> mpmath.mpf:
    """A rational (``Fraction``) as an mpmath number at the working precision."""
    x = Fraction(x)
    return mpmath.mpf(x.numerator) / x.denominator


# --- counting -------------------------------------------------------------------------------

@dataclass
class Count:
    """``laws = dimension − rank`` at each point; ``directions`` of them say a direction
    never moves (``dimension − dim span{X(θ)}`` over many points: linear laws)."""

    setting: Setting
    dimension: int
    frozen: int
    ranks: dict  # seed -> LieRank
    linear_rank: int
    linear_gap: float
    lower: dict = field(default_factory=dict)  # seed -> a lower rank seen at a special point

    @property
    def rank(self) -> int:
        values = {r.rank for r in self.ranks.values()}
        if len(values) != 1:
            raise RuntimeError(f"the rank differs between points: "
                               f"{ {s: r.rank for s, r in self.ranks.items()} }")
        return values.pop()

    @property
    def laws(self) -> int:
        return self.dimension - self.rank

    @property
    def directions(self) -> int:
        return self.dimension - self.linear_rank

    @property
    def gap_decades(self) -> float:
        return min([r.gap_decades for r in self.ranks.values()] + [self.linear_gap])

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.ranks.values())

    def summary(self) -> str:
        return (f"{self.laws} independent laws at generic points on {self.dimension} trained "
                f"coordinates (Lie algebra rank {self.rank} at points "
                f"{sorted(self.ranks)}, bracket depth {max(r.depth for r in self.ranks.values())}"
                f", gap ≥ {self.gap_decades:.0f} decades"
                + (f"; lower rank at special points {self.lower}" if self.lower else "")
                + f"); {self.directions} of them say a direction never moves; {self.frozen} "
                f"frozen coordinates are constant besides")


def fields_at(setting: Setting, seed: int) -> tuple[Fields, list]:
    """The fields with frozen coordinates at random values ``n/8`` (small denominators keep
    the laws' rational coefficients small, e.g. ``q₁κ_w0 − q₀κ_w1``), and a random point."""
    point = random_point(setting, seed)
    rng = random.Random(-seed)
    for _ in range(FROZEN_DRAWS):
        frozen = _draw_frozen(setting, rng)
        if _classes_distinct(setting, frozen):
            break
    else:  # e.g. more classes than the 16 values n/8 of a one-wide last layer
        raise ValueError(f"no draw of the frozen last layer in {FROZEN_DRAWS} gave distinct "
                         f"class rows; use fewer classes or a wider layer")
    fields = Fields(setting, frozen)
    return fields, [point[c] for c in setting.coordinates[:fields.n]]


#: Draws of the frozen values tried for one whose class rows are distinct (a non-generic
#: draw happens with probability about rows² / 16^cols).
FROZEN_DRAWS = 100


def _draw_frozen(setting: Setting, rng) -> dict:
    return {c: Fraction(rng.choice([n for n in range(-8, 9) if n]), 8)
            for c in setting.coordinates}


#: The fixed last layer whose rows are the classes' logit weights, per classifier.
LAST_LAYER = {"linear": "classifier", "mlp": "output_weight"}


def _classes_distinct(setting: Setting, frozen: dict) -> bool:
    """Whether a frozen last layer (``U`` or ``W2``) has pairwise distinct rows. Rows
    ``c ≠ c'`` equal make the logits ``z_c − z_{c'}`` constant: with two classes ``P`` never
    moves and every field ``∝ W2ᵀ(P − Y) = 0`` (one seed drew ``W2 ≡ −1`` and counted
    rounding noise as 0 laws); with more, the count is that of a special point."""
    name = LAST_LAYER[setting.classifier]
    if name in setting.trained or setting.loss == "any":
        return True
    rows, cols = setting.shape(name)
    table = {tuple(frozen[(name, (r, k))] for k in range(cols)) for r in range(rows)}
    return len(table) == rows


def count_laws(setting: Setting, seeds=(1, 2), max_points: int = 5) -> Count:
    """Count at random points until two agree on the largest rank seen (the rank at a special
    point can only be lower than the generic one); frozen coordinates held at point 1."""
    if setting.n_trained == 0:
        raise ValueError("nothing trains: every coordinate is trivially constant")
    fields, _ = fields_at(setting, seeds[0])
    ranks = {seed: lie_rank(fields, fields.point(seed)) for seed in seeds}
    extra = max(seeds) + 1
    while not _confirmed(ranks):
        if len(ranks) >= max_points:
            raise RuntimeError(f"no two of {len(ranks)} points agree on the largest rank: "
                               f"{ {s: r.rank for s, r in ranks.items()} }")
        ranks[extra] = lie_rank(fields, fields.point(extra))
        extra += 1
    top = max(r.rank for r in ranks.values())
    span = linear_rank(fields, _points(setting, fields, seeds[0]))
    count = Count(setting, fields.n, len(setting.coordinates) - fields.n,
                  {s: r for s, r in ranks.items() if r.rank == top}, span.rank,
                  span.gap_decades)
    count.lower = {s: r.rank for s, r in ranks.items() if r.rank != top}
    if count.gap_decades < MIN_GAP:
        raise RuntimeError(f"rank undecided: the gap between kept and dropped residuals is "
                           f"only {count.gap_decades:.1f} decades")
    return count


def _confirmed(ranks) -> bool:
    top = max(r.rank for r in ranks.values())
    return sum(r.rank == top for r in ranks.values()) >= 2


def _points(setting, fields, seed, n=6):
    """Random trained coordinates (the frozen ones stay) for the span of field values."""
    return [fields.point(1000 * seed + k) for k in range(n)]


# --- closed forms: polynomial laws of degree ≤ 2 ---------------------------------------------

@dataclass
class PolynomialLaws:
    """The conserved polynomials of degree ≤ 2 (no term in frozen coordinates only), as a
    reduced-echelon basis with rational coefficients, each verified at fresh points."""

    symbols: tuple  # the trained coordinates' symbols
    laws: list  # SymPy polynomials, each verified (residual ≤ VERIFIED)
    independent: int  # functionally independent among them (Jacobian rank)
    singular_gap: float  # decades between the kept and the dropped singular values
    worst_residual: float  # largest |dQ/dτ| / scale over fresh points and fields (mpmath)
    #: proposals that failed the check at fresh points, with their residual (their rational
    #: coefficients were mis-read: large denominators)
    rejected: list = field(default_factory=list)


#: A law's residual at fresh points above this is no law: the fields of an exact one cancel to
#: about ``10^(−DPS)`` of the largest field there.
VERIFIED = float(NOISE_FLOOR)


def monomials(n: int) -> list[tuple]:
    """Degree 1 and 2 monomials in ``n`` trained coordinates, as index tuples ``(i,)``,
    ``(i, j)`` with ``i ≤ j`` (frozen coordinates are constants)."""
    return [(i,) for i in range(n)] + [(i, j) for i in range(n) for j in range(i, n)]


def _monomial_gradients(monos, x):
    """``∇m(x)`` for every monomial (rows), exactly as the product rule gives it."""
    import numpy as np

    out = np.zeros((len(monos), len(x)))
    for row, mono in enumerate(monos):
        if len(mono) == 1:
            out[row, mono[0]] = 1.0
        else:
            i, j = mono
            out[row, i] += x[j]
            out[row, j] += x[i]
    return out


def polynomial_laws(setting: Setting, seed: int = 7, max_denominator: int = 10 ** 4):
    """Solve ``∇Q·X = 0`` for every per-sentence field at random points, ``Q`` in the ansatz;
    frozen coordinates are held at the rational values of random point 1. Products of linear
    laws are conserved too and are dropped (they add nothing independent)."""

    fields, _ = fields_at(setting, 1)
    symbols = tuple(coordinate_symbol(*c) for c in setting.coordinates[:fields.n])
    return conserved_polynomials(fields, symbols, seed, max_denominator)


def conserved_polynomials(fields, symbols, seed: int = 7, max_denominator: int = 10 ** 4):
    """The ansatz solve for any field family (``fields.point(seed)`` gives rational points).

    Float64 proposes (SVD nullspace, singular values below ``1e-9`` of the largest, the gap
    reported), rationals are read off a reduced echelon basis, and every law is then checked
    at fresh points in mpmath (``worst_residual``)."""
    import numpy as np

    monos = monomials(fields.n)
    rng = np.random.default_rng(seed)
    rows, n_points, k = [], 1, 0
    while k < n_points:  # each point gives at most rank{X_g(x)} independent equations
        x = rng.uniform(-1, 1, fields.n)
        values = np.array([fields(g, x, fast=True) for g in fields.generators], dtype=float)
        if k == 0:
            n_points = 2 * len(monos) // max(1, np.linalg.matrix_rank(values)) + 10
        rows += list(values @ _monomial_gradients(monos, x).T)
        k += 1
    matrix = np.array(rows)
    scales = np.linalg.norm(matrix, axis=0) + 1e-300
    scaled = matrix / scales
    if scaled.shape[0] < scaled.shape[1]:  # keep vt square: pad with zero rows
        scaled = np.vstack([scaled, np.zeros((scaled.shape[1] - scaled.shape[0],
                                              scaled.shape[1]))])
    _, sing, vt = np.linalg.svd(scaled, full_matrices=False)
    tol = 1e-9 * sing[0]
    kept, dropped = sing[sing > tol], sing[sing <= tol]
    gap = float(np.log10(kept.min() / max(dropped.max(), 1e-300))) if len(dropped) else 99.0
    null = _only_linear_if_rest_are_products(vt[sing <= tol] / scales, monos, max_denominator)
    coefficients = _drop_products(_rational_echelon(null, monos, max_denominator))
    # sign convention: the first monomial (in coordinate order) enters with a + sign
    coefficients = [{m: -c if q[min(q)] < 0 else c for m, c in q.items()}
                    for q in coefficients]
    proposed = [_as_polynomial(cf, symbols) for cf in coefficients]
    residuals = _residuals(fields, symbols, proposed)
    laws = [q for q, r in zip(proposed, residuals) if r <= VERIFIED]
    rejected = [(q, r) for q, r in zip(proposed, residuals) if not r <= VERIFIED]
    return PolynomialLaws(symbols, laws, _functional_rank(laws, symbols, fields), gap,
                          max((r for r in residuals if r <= VERIFIED), default=0.0), rejected)


def _as_polynomial(coefficients: dict, symbols) -> sp.Expr:
    return sp.Add(*(sp.Rational(cf.numerator, cf.denominator)
                    * sp.Mul(*(symbols[i] for i in mono))
                    for mono, cf in sorted(coefficients.items())))


def products(linear: list[dict]) -> list[dict]:
    """Every product ``x·y`` of two linear laws (``x`` before or equal to ``y``), as quadratics."""
    out = []
    for i, x in enumerate(linear):
        for y in linear[i:]:
            prod: dict = {}
            for (a,), ca in x.items():
                for (b,), cb in y.items():
                    key = (min(a, b), max(a, b))
                    prod[key] = prod.get(key, 0) + ca * cb
            out.append(prod)
    return out


def _drop_products(laws: list[dict]) -> list[dict]:
    """Keep linear laws, and quadratic ones outside the span of products of linear laws."""
    linear = [q for q in laws if all(len(m) == 1 for m in q)]
    keep, span = list(linear), products(linear)
    for q in laws:
        if q in linear:
            continue
        if not _in_span(q, span):
            keep.append(q)
            span.append(q)
    return keep


def _in_span(q: dict, span: list[dict]) -> bool:
    """Whether ``q`` is a rational combination of ``span`` (exact rank over ℚ)."""
    from sympy.polys.domains import QQ as RATIONALS
    from sympy.polys.matrices import DomainMatrix

    if not span:
        return not any(q.values())
    monos = sorted({m for p in span + [q] for m in p})
    rows = [[RATIONALS(p.get(m, 0).numerator, p.get(m, 0).denominator)
             if p.get(m, 0) else RATIONALS(0) for m in monos] for p in span + [q]]
    def rank(r):
        return DomainMatrix(r, (len(r), len(monos)), RATIONALS).rank()
    return rank(rows) == rank(rows[:-1])


def _only_linear_if_rest_are_products(null, monos, max_denominator, tol=1e-9):
    """The linear laws of the float nullspace alone when every vector of it is a combination
    of them and their products, else the nullspace unchanged.

    Products of linear laws are conserved and dropped (``_drop_products``), but only after
    rounding, exactly; a product's coefficients have the squared denominators of its factors,
    which rounding to ``max_denominator`` can miss, leaving a rounded product that is no law
    (it then verifies to ~1e-8 instead of ~1e-50). So the products are recognised before
    rounding: the linear laws (nullspace vectors without quadratic part) are rounded, their
    products formed exactly, and the nullspace is replaced by the linear laws when its rank
    does not grow over theirs and their products' — rank decided, as for the nullspace itself,
    by singular values above ``tol`` of the largest (unit rows)."""
    import numpy as np

    quad = [n for n, m in enumerate(monos) if len(m) == 2]
    if len(null) == 0 or not quad:
        return null
    u, sing, _ = np.linalg.svd(null[:, quad])
    small = [n for n in range(len(null)) if n >= len(sing) or sing[n] <= tol * sing.max()]
    if not small or len(small) == len(null):
        return null
    linear = u[:, small].T @ null                 # combinations without quadratic part
    exact = _rational_echelon(linear, monos, max_denominator)
    span = [[float(q.get(m, 0)) for m in monos] for q in exact + products(exact)]

    def rank(rows):
        rows = np.array(rows, dtype=float)
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        values = np.linalg.svd(rows, compute_uv=False)
        return int((values > tol * values.max()).sum())
    if rank(span + list(null)) > rank(span):
        return null                               # a law beyond the products: keep all
    return linear


def _rational_echelon(null, monos, max_denominator) -> list[dict]:
    """Rows spanning the nullspace, reduced to echelon form on pivot columns and rounded to
    rationals (exactness is then checked, not assumed)."""
    import numpy as np
    from scipy.linalg import qr

    if len(null) == 0:
        return []
    _, _, piv = qr(null, pivoting=True)
    pivots = sorted(piv[:len(null)])
    reduced = np.linalg.solve(null[:, pivots], null)
    return [{m: Fraction(float(cf)).limit_denominator(max_denominator)
             for cf, m in zip(row, monos)
             if Fraction(float(cf)).limit_denominator(max_denominator)} for row in reduced]


def _residuals(fields, symbols, laws, seeds=(11, 12)) -> list[float]:
    """Per law, ``max |∇Q·X_g| / (‖∇Q‖ max_g ‖X_g‖)`` over fresh rational points and every
    field (mpmath). Against the largest field, as the rank's basis is: a field that vanishes
    there is rounding noise, which its own norm would blow up to order 1."""
    if not laws:
        return []
    grads = sp.lambdify(symbols, [[sp.diff(q, x) for x in symbols] for q in laws], "mpmath")
    worst = [mpmath.mpf(0)] * len(laws)
    with mpmath.workdps(DPS):
        for seed in seeds:
            x = [to_mp(v) for v in fields.point(seed)]
            values = [fields(g, x) for g in fields.generators]
            scale = max(mpmath.sqrt(sum(y * y for y in val)) for val in values) or 1
            for k, gv in enumerate(grads(*x)):
                gnorm = mpmath.sqrt(sum(y * y for y in gv)) or 1
                for val in values:
                    worst[k] = max(worst[k], abs(sum(a * b for a, b in zip(gv, val)))
                                   / (gnorm * scale))
    return [float(w) for w in worst]


def _functional_rank(laws, symbols, fields) -> int:
    """How many of the laws are functionally independent: rank of their Jacobian in the
    trained coordinates at a random point (exact, rational)."""
    if not laws:
        return 0
    subs = {x: sp.Rational(v.numerator, v.denominator)
            for x, v in zip(symbols, fields.point(99))}
    jac = sp.Matrix([[sp.diff(q, x).xreplace(subs) for x in symbols] for q in laws])
    return jac.rank()


# --- closed forms in the topic structure (A1–A3): functions of ‖v_t‖², s_t, e^{s_t − c} ------

N_T, S_T, E_T = sp.symbols("N s E", positive=True)  # ‖v_t‖², s_t, e^{s_t − c}


@dataclass
class TopicLaws:
    """Laws of the reduced per-topic-word system among ``Σ c_j f_j(N, s, E)``."""

    features: list  # the ansatz functions f_j
    rates: dict  # {"N": dN/dτ, "s": ds/dτ} per sentence, as derived
    laws: list  # independent solutions, in N, s, E (m, ‖q‖² symbolic)


def topic_rates() -> dict:
    """``dN/dτ`` and ``ds/dτ`` of one sentence holding topic word ``w``, from the derived flow
    under the SEN declaration's assumptions A1–A3 (its case rewrites, applied in order)."""
    from symbolic.derive import flow
    from symbolic.indexform import IExpr
    from symbolic.laws import (
        ABSTRACT,
        SEN,
        _k,
        attention_closed_form,
        exp_scores_a2,
        m,
        sentence_rate,
        w,
    )
    from symbolic.model import V, a, s

    flows = flow(ABSTRACT, SEN.trainable(ABSTRACT))

    def reduced(quantity):
        expr = sentence_rate(SEN, ABSTRACT, flows, quantity).to_sympy()
        for assumption in SEN.assumptions:
            for label, rewrite in assumption.cases.items():
                if label != "sentence without w":
                    expr = IExpr.from_sympy(rewrite(expr, ABSTRACT), FOLDS).to_sympy()
        # SEN's lemma attention: the model's attention node with A2's scores, L = m + 1
        closed = attention_closed_form(ABSTRACT, exp_scores_a2, m + 1)
        (x,) = next(nd for nd in ABSTRACT.nodes if nd.base == a).indices
        expr = expr.replace(lambda y: isinstance(y, sp.Indexed) and y.base == a,
                            lambda y: closed.xreplace({x: y.indices[0]}))
        return IExpr.from_sympy(expr, FOLDS).to_sympy()
    return {"N": reduced(sp.Sum(V[w, _k] ** 2, (_k, 0, d - 1))), "s": reduced(s[w])}


def _in_features(expr):
    """Write a reduced rate over ``X = v·G``, ``‖q‖²`` and ``E = e^{s_t − c}``."""
    from symbolic.laws import QQ, c, s_t
    from symbolic.model import q
    X = sp.Symbol("X")

    def fold(total):
        body = total.function
        if total.has(q):
            body = body / (q[total.limits[0][0]] ** 2)
        k = total.limits[-1][0]
        if sp.simplify(body - G[k] * sp.IndexedBase("v", real=True)[k]) != 0:
            raise ValueError(f"unexpected sum in a reduced rate: {total}")
        return X * (QQ if total.has(q) else 1)
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), fold)
    expr = expr.xreplace({sp.exp(s_t): E_T * sp.exp(c), sp.exp(2 * s_t): E_T ** 2
                          * sp.exp(2 * c)})
    return sp.cancel(sp.together(expr)), X


def topic_laws(degree: int = 2) -> TopicLaws:
    """Solve ``dQ/dτ = 0`` identically for ``Q = Σ c_j f_j``, ``f_j`` the monomials of degree
    1…``degree`` in ``N = ‖v_t‖², s_t, E = e^{s_t − c}`` (coefficients over ``m``, ``‖q‖²``):
    ``N, s, E`` and ``v·G`` are algebraically independent, so every coefficient of the
    numerator must vanish."""
    rates = topic_rates()
    n_dot, x_sym = _in_features(rates["N"])
    s_dot, _ = _in_features(rates["s"])
    feats = [N_T, S_T, E_T]
    basis = [sp.Mul(*mono) for k in range(1, degree + 1)
             for mono in itertools.combinations_with_replacement(feats, k)]
    coeffs = sp.symbols(f"c0:{len(basis)}")
    quantity = sum(cf * f for cf, f in zip(coeffs, basis))
    rate = (sp.diff(quantity, N_T) * n_dot + sp.diff(quantity, S_T) * s_dot
            + sp.diff(quantity, E_T) * E_T * s_dot)
    numerator = sp.numer(sp.together(rate))
    equations = sp.Poly(sp.expand(numerator), N_T, S_T, E_T, x_sym).coeffs()
    system = sp.Matrix([[sp.expand(eq).coeff(cf) for cf in coeffs] for eq in equations])
    null = system.nullspace(simplify=True)
    solutions = [sp.factor(sum(cf * f for cf, f in zip(vec, basis))) for vec in null]
    return TopicLaws(basis, rates, [_normalised(x) for x in _independent_topic(solutions)])


def _normalised(law):
    """Scale so that ``N = ‖v_t‖²`` enters with coefficient ½ (as PAPER.md writes SEN)."""
    lead = sp.expand(law).coeff(N_T, 1).subs({S_T: 0, E_T: 0})
    return sp.expand(law / (2 * lead)) if lead != 0 else law


def _independent_topic(solutions) -> list:
    """Drop solutions that are polynomials in earlier ones (Q² is conserved when Q is)."""
    keep = []
    for sol in sorted(solutions, key=lambda e: sp.Poly(e, N_T, S_T, E_T).total_degree()):
        if not keep:
            keep.append(sol)
            continue
        jac = sp.Matrix([[sp.diff(e, x) for x in (N_T, S_T, E_T)] for e in keep + [sol]])
        if jac.rank(simplify=True) > len(keep):
            keep.append(sol)
    return keep


# --- any family of fields written in SymPy (toy models with known answers) -----------------

class SymbolicFields:
    """Per-sample fields given as SymPy vectors over ``symbols`` (the controls' toy models)."""

    def __init__(self, symbols, vectors):
        self.symbols = tuple(symbols)
        self.n = len(self.symbols)
        self.generators = list(range(len(vectors)))
        body = [[sp.sympify(e).replace(sp.exp, JExp) for e in vec] for vec in vectors]
        printer = _Printer({"fully_qualified_modules": True})
        args = ", ".join(map(str, self.symbols))
        lines = [f"def program({args}):", "    return ["
                 + ", ".join("[" + ", ".join(printer.doprint(e) for e in vec) + "]"
                             for vec in body) + "]"]
        self._source = "\n".join(lines) + "\n"
        self._exact = _compile(self._source, {"jexp": jexp, "mpmath": mpmath})
        import math
        self._fast = _compile(self._source.replace("mpmath.mpf", "float"),
                              {"jexp": math.exp, "mpmath": math})

    def __call__(self, g, x, fast=False):
        return (self._fast if fast else self._exact)(*x)[g]

    def point(self, seed: int) -> list:
        rng = random.Random(seed)
        return [Fraction(rng.choice([n for n in range(-96, 97) if n]), 97)
                for _ in range(self.n)]


def count_symbolic(fields: SymbolicFields, seeds=(1, 2)) -> dict:
    """``{seed: n − rank}`` for a symbolic family at each point."""
    return {seed: fields.n - lie_rank(fields, fields.point(seed)).rank for seed in seeds}

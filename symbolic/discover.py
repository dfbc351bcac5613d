"""How many conservation laws the gradient flow has for every data set, and which they are.

Marcotte, Gribonval & Peyré ("Abide by the law and follow the flow", NeurIPS 2023): a function
``Q(θ)`` is conserved along the gradient flow of every data set iff ``∇Q ⟂ X`` for every
per-sample gradient field ``X``, iff ``∇Q ⟂ Lie(X)``; near a generic point the number of
functionally independent such ``Q`` is ``D − dim Lie(X)(θ)``.

Here the per-sample fields are the DERIVED gradients of ``symbolic.derive`` for any model
description, read at explicit small sizes (:mod:`symbolic.fields`: a vocabulary of ``words``
words, every bag of 1 … ``max_len`` of them, every one-hot label; for the abstract loss one
field per coordinate of the upstream ``G``; for a ReLU every activation pattern, since across
sentences each unit is on for some and off for others). Brackets ``[X, Y] = DY·X − DX·Y`` are
evaluated with multilinear jets (:mod:`symbolic.jets`), exact derivatives whose only error is
the rounding of the scalars.

The rank at a point is found in two passes. Floats (NumPy, every bracket of a depth in one
batch) propose a basis of left-normed brackets ``[X_{g₁}, [X_{g₂}, …]]`` and the depth where
nothing new appears. ``DIGITS``-digit decimals then confirm it: the proposed elements are
independent (each residual after projection on the others above ``10^(−DIGITS/2)`` of its
size), every field lies in their span, and so does ``[A, B]`` for ``A`` a random combination
of the basis's fields and ``B`` of its elements — zero projections come out near
``10^(−DIGITS)``. (With the span ``S`` of the basis containing every field and closed under
``ad X_g`` for each basis field, ``S`` contains the Lie algebra near a regular point; a random
combination leaves ``S`` whenever one of the brackets does, except on a set of measure zero.)
When the confirmation fails the rank is found again by the decimals alone. Every count
reports both sides of the gap between kept and dropped residuals and refuses to decide when
it is narrower than ``MIN_GAP`` decades.
"""

from __future__ import annotations

import decimal
import itertools
import math
import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import MpmathPrinter

from symbolic.fields import (
    DECIMAL,
    DIGITS,
    FLOAT,
    Generator,
    as_state,
    context,
    gather,
    program,
    relu_entries,
    scatter_subtract,
    sentences,
    target_entries,
    to_decimal,
)
from symbolic.jets import Jet, jexp
from symbolic.model import FOLDS, G, Model, d, d_key
from symbolic.model import C as C_SIZE
from symbolic.model import H as H_SIZE

DPS = DIGITS
THRESHOLD = mpmath.mpf(10) ** (-DPS // 2)
MIN_GAP = 12  # decades between the largest rejected and the smallest accepted residual

CLASSIFIER_PARAMS = {"linear": ("classifier",),
                     "mlp": ("hidden_weight", "hidden_bias", "output_weight", "output_bias")}
LOSSES = ("cross_entropy", "any")


# --- the configuration and its coordinates --------------------------------------------------

class Configuration:
    """What every setting gives the counting: a model description read at explicit sizes.

    Subclasses define ``model`` (the description), ``trained`` (parameter names that move),
    ``words``, ``max_len``, :meth:`size_values` and :meth:`constant_values`."""

    @cached_property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.model.params)

    def shape(self, name: str) -> tuple[int, ...]:
        """A parameter's table: one row per word of the vocabulary when gathered per token."""
        p = self.model.param(name)
        sizes = self.size_values()
        rest = p.indices[1:] if p.per_token else p.indices
        dims = tuple(int(_kind_size(i).xreplace(sizes)) for i in rest)
        return ((self.words,) + dims) if p.per_token else dims

    @cached_property
    def coordinates(self) -> tuple[tuple[str, tuple], ...]:
        """Every parameter entry ``(name, index)``, trained ones first."""
        order = self.trained + tuple(n for n in self.param_names if n not in self.trained)
        return tuple((n, at) for n in order
                     for at in itertools.product(*map(range, self.shape(n))))

    @property
    def n_trained(self) -> int:
        return sum(1 for n, _ in self.coordinates if n in self.trained)

    @cached_property
    def program_sizes(self) -> tuple:
        """``((symbol, value), …)``: every size but the sentence length, and the constants."""
        values = {**self.size_values(), **{k: sp.Rational(v.numerator, v.denominator)
                                           for k, v in self.constant_values().items()}}
        return tuple(sorted(values.items(), key=lambda kv: str(kv[0])))

    def program(self, tokens: int):
        """The derived gradient of one sentence of ``tokens`` tokens, printed."""
        return program(self.model, self.program_sizes, tokens)

    @cached_property
    def n_targets(self) -> int:
        return len(target_entries(self.model, dict(self.program_sizes)))

    @cached_property
    def patterns(self) -> list[tuple]:
        relus = len(relu_entries(self.model, dict(self.program_sizes)))
        return list(itertools.product((0, 1), repeat=relus)) if relus else [()]

    def symbol(self, coordinate) -> sp.Symbol:
        """The plain symbol of one parameter entry (``E_1_0``, the paper's ``κ_1_0``)."""
        name, at = coordinate
        if self.model.name == "paper":
            return coordinate_symbol(name, at)
        return sp.Symbol("_".join([str(self.model.param(name).base), *map(str, at)]),
                         real=True)

    def size_values(self) -> dict:
        raise NotImplementedError

    def constant_values(self) -> dict:
        return {}


def _kind_size(index):
    from symbolic.indexform import kind_of
    return kind_of(index).size


@dataclass(frozen=True)
class Setting(Configuration):
    """The paper's model at explicit sizes: which classifier, what trains, how big."""

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
    def trained(self) -> tuple[str, ...]:
        """Trainable parameter names, ``classifier`` expanded to the MLP arrays."""
        out = []
        for name in self.param_names:
            if name in self.trainable or (name in CLASSIFIER_PARAMS[self.classifier]
                                          and "classifier" in self.trainable):
                out.append(name)
        return tuple(out)

    def size_values(self) -> dict:
        return {d: self.d, d_key: self.d_key, C_SIZE: self.classes, H_SIZE: self.hidden}

    @property
    def model_name(self) -> str:
        return "paper"

    @property
    def sizes_text(self) -> dict:
        return {"words": self.words, "d": self.d, "d_key": self.d_key, "classes": self.classes,
                "hidden": self.hidden, "max_len": self.max_len}

    def describe(self) -> str:
        loss = "any loss of the context" if self.loss == "any" else "cross-entropy"
        clf = "" if self.loss == "any" else f"{self.classifier} classifier, "
        return (f"{clf}{loss}; trained: {', '.join(self.trained) or 'nothing'}; sizes: "
                f"{self.words} words, d={self.d}, d_key={self.d_key}"
                + ("" if self.loss == "any" else f", {self.classes} classes")
                + (f", {self.hidden} hidden" if self.classifier == "mlp"
                   and self.loss != "any" else "")
                + f", sentences of 1–{self.max_len} tokens")


#: ``--size`` names read as the model's size symbols (the paper's words for ``C`` and ``H``).
SIZE_ALIASES = {"classes": "C", "hidden": "H"}
#: Sizes of the vocabulary and the sentences, which every model has.
DATA_SIZES = ("words", "max_len")


@dataclass(frozen=True)
class ModelSetting(Configuration):
    """Any model description at explicit sizes: ``sizes`` gives every size the model declares
    but the sentence length (``((name, value), …)``), ``constants`` a value to each constant
    (``τ``); ``words`` words, sentences of 1 … ``max_len`` tokens."""

    model: object
    trainable: tuple
    sizes: tuple
    words: int = 3
    max_len: int = 2
    constants: tuple = ()
    #: the catalogue's name for it (``self-attention`` is ``multi-head`` with one head)
    entry: str = ""

    def __post_init__(self):
        names = set(self.param_names)
        unknown = set(self.trainable) - names
        if unknown:
            raise ValueError(f"unknown trainable name(s) {sorted(unknown)} for model "
                             f"{self.model.name}; expected some of {sorted(names)}")
        declared = {n for n in self.model.sizes if n != "L"}
        given = dict(self.sizes)
        if set(given) != declared:
            missing, extra = declared - set(given), set(given) - declared
            raise ValueError(f"model {self.model.name}: "
                             + (f"size(s) {sorted(missing)} missing" if missing else "")
                             + ("; " if missing and extra else "")
                             + (f"unknown size(s) {sorted(extra)}" if extra else ""))
        for name, value in list(given.items()) + [("words", self.words),
                                                  ("max_len", self.max_len)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number at least 1, not {value!r}")
        known = {str(c) for c in self.model.constants}
        if {n for n, _ in self.constants} != known:
            raise ValueError(f"model {self.model.name}: constants {sorted(known)} need values, "
                             f"got {sorted(n for n, _ in self.constants)}")
        for name, value in self.constants:
            if not (isinstance(value, Fraction) and value > 0):
                raise ValueError(f"constant {name} must be a positive rational, not {value!r}")

    @cached_property
    def trained(self) -> tuple[str, ...]:
        return tuple(n for n in self.param_names if n in self.trainable)

    def size_values(self) -> dict:
        symbols = self.model.sizes
        return {symbols[name]: value for name, value in self.sizes}

    def constant_values(self) -> dict:
        symbols = {str(c): c for c in self.model.constants}
        return {symbols[name]: value for name, value in self.constants}

    @property
    def model_name(self) -> str:
        return self.entry or self.model.name

    @property
    def loss(self) -> str:
        return "any" if self.model.loss == "abstract" else self.model.loss

    @property
    def sizes_text(self) -> dict:
        return {"words": self.words, **dict(self.sizes), "max_len": self.max_len}

    def describe(self) -> str:
        loss = {"abstract": "any loss of the last node", "cross-entropy": "cross-entropy",
                "squared-error": "squared error"}[self.model.loss]
        sizes = ", ".join(f"{n}={v}" for n, v in self.sizes)
        consts = "".join(f", {n}={v}" for n, v in self.constants)
        return (f"{self.model_name}, {loss}; trained: {', '.join(self.trained) or 'nothing'}; "
                f"sizes: {self.words} words, {sizes}{consts}, sentences of 1–{self.max_len} "
                f"tokens")


def coordinate_symbol(name: str, at: tuple) -> sp.Symbol:
    """The plain symbol of one entry of the paper's parameters, e.g. ``keys[1, 0]`` →
    ``κ_1_0``."""
    short = {"embeddings": "v", "keys": "κ", "query": "q", "classifier": "U",
             "hidden_weight": "W1", "hidden_bias": "b1", "output_weight": "W2",
             "output_bias": "b2"}[name]
    return sp.Symbol("_".join([short, *map(str, at)]), real=True)


# --- the per-sentence fields on the vocabulary's coordinates --------------------------------

class Fields:
    """The per-sentence gradient fields of a setting, on its trained coordinates.

    A point gives values to every coordinate; frozen ones stay as given (their flow is 0).
    :meth:`batch` evaluates many fields at many states at once (one row each).
    """

    def __init__(self, setting, frozen_values: dict | None = None):
        self.setting = setting
        self.coords = setting.coordinates
        self.n = setting.n_trained
        self.index = {c: k for k, c in enumerate(self.coords)}
        self.generators = [Generator(s, t, p) for s in sentences(setting.words, setting.max_len)
                           for t in range(setting.n_targets) for p in setting.patterns]
        self.frozen_values = frozen_values or {}
        self.tables = {}
        for name in setting.param_names:
            table = np.zeros(setting.shape(name), dtype=np.int64)
            for at in itertools.product(*map(range, setting.shape(name))):
                table[at] = self.index[(name, at)]
            self.tables[name] = table
        self.per_token = {p.name for p in setting.model.params if p.per_token}

    def point(self, seed: int) -> list:
        """Random rational trained coordinates (frozen ones stay as given)."""
        point = random_point(self.setting, seed)
        return [point[c] for c in self.coords[:self.n]]

    def full_point(self, x, fast=False):
        """Trained coordinates from ``x``, frozen ones (rationals) from ``frozen_values``."""
        convert = float if fast else to_mp
        return list(x) + [convert(self.frozen_values[c]) for c in self.coords[self.n:]]

    def state(self, points, arithmetic) -> np.ndarray:
        """Rows of full coordinates (trained from each point, frozen as given)."""
        frozen = [arithmetic.number(self.frozen_values[c]) for c in self.coords[self.n:]]
        rows = [[arithmetic.number(v) for v in x] + frozen for x in points]
        return np.array(rows, dtype=float if arithmetic is FLOAT else object)

    def pad(self, trained_values):
        """Trained-coordinate rows (array or jet) padded with zeros for the frozen ones."""
        def one(v):
            extra = len(self.coords) - self.n
            return np.concatenate([v, np.zeros((v.shape[0], extra), dtype=v.dtype)], axis=1)
        if isinstance(trained_values, Jet):
            return Jet({m: one(v) for m, v in trained_values.parts.items()})
        return one(trained_values)

    def batch(self, generators, state, arithmetic):
        """``−∂ℓ_g/∂θ`` (the flow of one sentence) on the trained coordinates, one row per
        generator ``g`` at the matching row of ``state`` (an array or a jet of arrays)."""
        rows_total = len(generators)
        exact = arithmetic is not FLOAT

        def zero():
            if exact:
                return np.full((rows_total, self.n), to_decimal(0), dtype=object)
            return np.zeros((rows_total, self.n))
        out: dict = {}
        by_length: dict = {}
        for row, g in enumerate(generators):
            by_length.setdefault(len(g.words), []).append(row)
        trained = set(self.setting.trained)
        for length, rows in sorted(by_length.items()):
            prog = self.setting.program(length)
            fn = prog.compiled(arithmetic)
            rows = np.array(rows)
            words = np.array([generators[r].words for r in rows], dtype=np.int64)
            targets = np.array([generators[r].target for r in rows])
            patterns = np.array([generators[r].pattern for r in rows], dtype=np.int64)
            args = []
            for e in prog.inputs:
                if e.kind == "param":
                    args.append(gather(state, rows, self._columns(e.name, e.at, words)))
                elif e.kind == "target":
                    args.append(_indicator(targets == e.at[0], exact))
                else:
                    args.append(_indicator(patterns[:, e.at[0]] == 1, exact))
            for (name, at), value in zip(prog.outputs, fn(*args)):
                if name in trained:
                    scatter_subtract(out, rows, self._columns(name, at, words), value, zero)
        return as_state(out) if out else zero()

    def _columns(self, name, at, words):
        table = self.tables[name]
        if name in self.per_token:
            return table[(words[:, at[0]],) + tuple(at[1:])]
        return np.full(len(words), table[at], dtype=np.int64)

    def values(self, x, fast=False):
        """Every field at ``x`` (trained coordinates): rows of floats, or of decimals."""
        arithmetic = FLOAT if fast else DECIMAL
        state = self.state([x], arithmetic)
        with decimal.localcontext(context()):
            return self.batch(self.generators, np.repeat(state, len(self.generators), axis=0),
                              arithmetic)

    def __call__(self, g: Generator, x, fast=False) -> list:
        """``−∂ℓ_g/∂θ`` at ``x``: floats, or decimals at ``DIGITS`` digits."""
        arithmetic = FLOAT if fast else DECIMAL
        with decimal.localcontext(context()):
            x = [v if fast or isinstance(v, decimal.Decimal) else to_decimal(v) for v in x]
            state = np.array([list(x) + [arithmetic.number(self.frozen_values[c])
                                         for c in self.coords[self.n:]]],
                             dtype=float if fast else object)
            return list(self.batch([g], state, arithmetic)[0])


def _indicator(mask, exact):
    """A 0/1 column: Python ints among decimals (NumPy's ints do not mix with them)."""
    if exact:
        return np.array([int(v) for v in mask], dtype=object)
    return mask.astype(float)
# --- what a run costs, known before it starts -------------------------------------------------

#: CPU seconds per unit of each ``Cost.counts`` entry, and bytes per unit of each
#: ``Cost.footprint`` entry: non-negative least squares on the relative error of measured runs
#: (``benchmarks/bench_discover_cost.py``, which prints these and each run's estimate).
SECONDS_PER = {"fixed": 1.5, "derivation terms": 0.004, "topic": 4.3,
               "printed operations": 0.0004, "field operations": 2e-06,
               "bracket operations": 2e-06, "Gram-Schmidt": 2e-06,
               "ansatz field operations": 2e-08, "ansatz SVD": 2.4e-10, "proofs": 3e-09,
               "declared checks": 1e-04}
BYTES_PER = {"fixed": 1.2e+08, "field values": 800, "batch values": 120,
             "ansatz matrix": 41.4, "law products": 127}
#: Sentence lengths summed one by one; beyond, the cost is bounded below by this many.
_LENGTHS_SUMMED = 1_000
#: The estimate reads at most this many sentence lengths' programs from the description.
_LENGTHS_READ = 8


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


def _real(size) -> float:
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


def _trained_coordinates(setting) -> float:
    return sum(math.prod(_real(x) for x in _shape_unbuilt(setting, name))
               for name in setting.trained)


def _shape_unbuilt(setting, name) -> tuple:
    """A parameter's table shape, as numbers that may be huge (nothing is allocated)."""
    p = setting.model.param(name)
    sizes = {k: _real(v) for k, v in setting.size_values().items()}
    rest = p.indices[1:] if p.per_token else p.indices
    dims = tuple(float(_kind_size(i).xreplace(sizes)) for i in rest)
    return ((_real(setting.words),) + dims) if p.per_token else dims


def _fields_per_bag(setting, sizes: dict) -> float:
    """Targets × ReLU patterns of one sentence (from the description's shapes)."""
    model = setting.model
    if model.loss == "abstract":
        shape = model.nodes[-1].indices
    else:
        shape = model.data[0].indices if model.data else ()
    targets = math.prod(float(_kind_size(i).xreplace(sizes)) for i in shape)
    relus = sum(math.prod(float(_kind_size(i).xreplace(sizes)) for i in node.indices)
                for node in model.nodes if node.op == "relu")
    return targets * _power(2.0, int(min(relus, 10 ** 4)))


def estimate_cost(setting, closed_forms: bool = True) -> Cost:
    """The CPU time and memory a ``discover`` run at ``setting`` is expected to take, from
    the counts that drive it, before anything is allocated: ``n`` trained coordinates, ``G``
    per-sentence fields (bags of 1…max_len words × targets × ReLU patterns), ``P(L)``
    operations per field evaluation (:func:`estimated_operations`). Every field is evaluated
    at a few points, brackets cost ``n²`` jet evaluations in floats and ``n`` in decimals,
    Gram–Schmidt ``G·n²``, the ansatz ``~2M`` rows of ``M = n(n+3)/2`` monomials and an SVD
    of them; the declared laws' exact checks run at sizes capped at 2."""
    from symbolic.derive import derive

    sizes = {k: _real(v) for k, v in setting.size_values().items()}
    sizes.update({k: float(v) for k, v in setting.constant_values().items()})
    n = _trained_coordinates(setting)
    per_bag = _fields_per_bag(setting, sizes)
    lengths = min(setting.max_len, _LENGTHS_SUMMED)
    printed = fields = evaluations = 0.0
    ops_read = [estimated_operations(setting.model, sizes, length)
                for length in range(1, min(lengths, _LENGTHS_READ) + 1)]
    for length in range(1, lengths + 1):
        if length <= len(ops_read):
            ops = ops_read[length - 1]
        else:  # programs grow like L² (every token attends to every token)
            ops = ops_read[-1] * (length / len(ops_read)) ** 2
        count = math.exp(min(_log_multisets(setting.words, length), 700.0)) * per_bag
        printed += ops
        fields += count
        evaluations += count * ops
    per_field = evaluations / fields
    monomials = n * (n + 3) / 2
    rows = 2 * monomials + 10 * n
    closed = 1.0 if closed_forms else 0.0
    terms = sum(len(g.terms) for g in derive(setting.model).grads.values())
    paper = setting.model_name == "paper"
    counts = {"fixed": 1.0, "derivation terms": float(terms),
              "topic": float(paper and "query" not in setting.trained
                             and {"embeddings", "keys"} <= set(setting.trained)),
              "trained coordinates": n, "fields": fields,
              "printed operations": printed, "field operations": evaluations,
              "bracket operations": n * n * per_field,
              "Gram-Schmidt": fields * n * n,
              "ansatz field operations": closed * (n + 12) * evaluations,
              "ansatz SVD": closed * max(rows, monomials) * _power(monomials, 2),
              "proofs": closed * float(paper) * _power(n, 6),
              "declared checks": closed * float(not paper) * _capped_work(setting)}
    footprint = {"fixed": 1.0, "field values": fields * n,
                 "batch values": printed * n * n,
                 "ansatz matrix": closed * max(rows, monomials) * monomials,
                 "law products": closed * _power(n, 4)}
    seconds = sum(SECONDS_PER[k] * counts[k] for k in SECONDS_PER)
    memory = sum(BYTES_PER[k] * footprint[k] for k in BYTES_PER)
    # a NaN (0 · ∞ at absurd sizes) must not compare as within a limit
    seconds, memory = (math.inf if math.isnan(x) else x for x in (seconds, memory))
    return Cost(seconds, memory, counts, footprint, at_least=lengths < setting.max_len)


def _capped_work(setting) -> float:
    """What the declared laws' exact checks cost: their model at sizes capped at 2 (two
    words, sentences of one or two tokens), every field's gradient entry by entry."""
    sizes = {k: min(_real(v), 2.0) for k, v in setting.size_values().items()}
    sizes.update({k: float(v) for k, v in setting.constant_values().items()})
    n = sum(math.prod(min(x, 2.0) if k else min(x, 2.0) for k, x in
                      enumerate(_shape_unbuilt(setting, name))) for name in setting.trained)
    ops = sum(estimated_operations(setting.model, sizes, length) for length in (1, 2))
    return n * ops * 5 * _fields_per_bag(setting, sizes)


# --- rank with a stated gap, in decimals ------------------------------------------------------

def _dsqrt(x):
    return x.sqrt() if isinstance(x, decimal.Decimal) else decimal.Decimal(x).sqrt()


class ExactBasis:
    """An orthonormal basis grown by Gram–Schmidt in ``DIGITS``-digit decimals; residual
    ratios kept on both sides. A vector's residual is measured against ``max(its norm,
    scale)``, ``scale`` the largest field value at the point: a bracket that is exactly 0 comes
    out as rounding noise (about ``10^(−DIGITS)`` of the scale) and must not be normalised up
    into a direction. Call within ``decimal.localcontext(context())``."""

    def __init__(self, scale, n: int):
        self.scale = scale
        self.rows = np.zeros((0, n), dtype=object)
        self.threshold = decimal.Decimal(10) ** (-(DIGITS // 2))
        self.smallest_accepted = None
        self.largest_rejected = None

    def residual(self, v):
        """``(ratio, w)``: the residual of ``v`` after projection, over its size."""
        v = np.asarray(v, dtype=object)
        size = max(_dsqrt(sum(x * x for x in v)), self.scale)
        w = v / size
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            if len(self.rows):
                w = w - (self.rows @ w) @ self.rows
        return _dsqrt(sum(x * x for x in w)), w

    def offer(self, v) -> bool:
        """Add ``v`` if its residual exceeds ``10^(−DIGITS/2)`` of its size; say whether it
        did."""
        ratio, w = self.residual(v)
        if ratio > self.threshold:
            self.rows = np.vstack([self.rows, (w / ratio)[None, :]])
            self.smallest_accepted = (ratio if self.smallest_accepted is None
                                      else min(ratio, self.smallest_accepted))
            return True
        self._rejected(ratio)
        return False

    def within(self, v) -> bool:
        """Whether ``v`` lies in the span (its residual is recorded either way)."""
        ratio, _ = self.residual(v)
        if ratio > self.threshold:
            self.smallest_accepted = (ratio if self.smallest_accepted is None
                                      else min(ratio, self.smallest_accepted))
            return False
        self._rejected(ratio)
        return True

    def _rejected(self, ratio):
        self.largest_rejected = (ratio if self.largest_rejected is None
                                 else max(ratio, self.largest_rejected))

    @property
    def rank(self) -> int:
        return len(self.rows)

    @property
    def gap_decades(self) -> float:
        """``log10(smallest accepted / largest rejected)`` residual ratio."""
        one = decimal.Decimal(1)
        hi = self.smallest_accepted if self.smallest_accepted is not None else one
        floor = decimal.Decimal(10) ** (-2 * DIGITS)
        lo = self.largest_rejected if self.largest_rejected is not None \
            else decimal.Decimal(10) ** (-DIGITS)
        return float((hi / max(lo, floor)).log10())


# --- the Lie algebra generated by the fields at a point --------------------------------------

def _part(y, level):
    """The coefficient of ``ε_level`` (0 when there is none)."""
    return y.part(level) if isinstance(y, Jet) else 0


def _real_in(y, level):
    """Drop every term carrying ε_level."""
    if not isinstance(y, Jet):
        return y
    mask = 1 << level
    parts = {s: v for s, v in y.parts.items() if not s & mask}
    return Jet(parts) if set(parts) - {0} else parts.get(0, 0)


def _elements(fields: Fields, words, state, level: int, arithmetic, magnitudes=None):
    """Left-normed brackets ``[X_{g₁}, [X_{g₂}, … X_{g_k}]]`` at the rows of ``state``, one
    per word ``(g₁, …, g_k)`` of generator indices (all words of one length): with
    ``E = [X_{g₂}, …]``, ``[X_{g₁}, E](x) = DE(x)·X_{g₁}(x) − DX_{g₁}(x)·E(x)``, each
    derivative the ``ε_level`` part of a jet evaluation (``magnitudes``: a list that gets
    the larger norm of the two terms of each row, at the top level)."""
    first = [fields.generators[w[0]] for w in words]
    if len(words[0]) == 1:
        return fields.batch(first, state, arithmetic)
    one = 1 if arithmetic is FLOAT else to_decimal(1)
    eps = Jet({1 << level: one})
    a = fields.batch(first, state, arithmetic)
    inner = _elements(fields, [w[1:] for w in words], state + eps * fields.pad(a), level + 1,
                      arithmetic)
    b = _real_in(inner, level)
    a_moved = fields.batch(first, state + eps * fields.pad(b), arithmetic)
    along_a, along_b = _part(inner, level), _part(a_moved, level)
    if magnitudes is not None:  # floats: what cancelled, to tell a zero from a direction
        magnitudes.append(np.maximum(_row_norms(along_a), _row_norms(along_b)))
    return along_a - along_b


def _row_norms(values):
    return np.linalg.norm(np.broadcast_to(np.asarray(values, dtype=float),
                                          np.shape(values) or (1,)), axis=-1)


def _element_values(fields, words, state_row, level, arithmetic) -> dict:
    """``{word: value}`` for words of any lengths, each length in one batch."""
    out = {}
    for length in sorted({len(w) for w in words}):
        group = [w for w in words if len(w) == length]
        state = _rows(state_row, len(group))
        values = _elements(fields, group, state, level, arithmetic)
        for w, v in zip(group, _row_list(values, len(group))):
            out[w] = v
    return out


def _rows(state_row, n):
    """A one-row state repeated ``n`` times (a jet's parts alike)."""
    if isinstance(state_row, Jet):
        return Jet({m: np.repeat(v, n, axis=0) for m, v in state_row.parts.items()})
    return np.repeat(state_row, n, axis=0)


def _row_list(values, n):
    """Rows of a batch result (an array, a jet of arrays, or a scalar 0)."""
    if isinstance(values, Jet):
        return [Jet({m: v[k] for m, v in values.parts.items()}) for k in range(n)]
    if np.ndim(values) == 0:
        return [values] * n
    return list(values)


@dataclass
class LieRank:
    rank: int
    dimension: int
    depth: int  # bracket depth at which the rank stopped growing
    gap_decades: float
    basis: list  # the elements (words of generator indices) whose values are independent
    seconds: float = 0.0
    route: str = "floats proposed, decimals confirmed"


class _Unconfirmed(Exception):
    """The decimals did not confirm the floats' proposal."""


class _StillGrowing(Exception):
    """The floats' basis still grew at the deepest bracket tried (rounding noise taken for
    directions, or a deep algebra): the decimals decide."""


#: A float residual above this share of a vector's size is proposed as a new direction.
FLOAT_TOLERANCE = 1e-8


def lie_rank(fields, x, max_depth: int = 6) -> LieRank:
    """``dim Lie(fields)(x)``: grow a basis of values, bracket the basis's fields with every
    new element until nothing new is independent (valid at regular points: the rank is
    locally constant there, so brackets of a local basis span the brackets of every field)."""
    if not isinstance(fields, Fields):
        return _scalar_lie_rank(fields, x, max_depth)
    start = time.perf_counter()
    with decimal.localcontext(context()):
        state = fields.state([x], DECIMAL)
        values = fields.batch(fields.generators, _rows(state, len(fields.generators)), DECIMAL)
        scale = _moving_scale_decimal(values)
        try:
            words, depth = _propose(fields, x, max_depth)
            basis = _confirm(fields, state, values, scale, words, x)
            route = LieRank.route
        except (_Unconfirmed, _StillGrowing):
            basis, words, depth = _exact_greedy(fields, state, values, scale, max_depth)
            route = "decimals alone (the floats' proposal was not confirmed)"
    return LieRank(basis.rank, fields.n, depth, basis.gap_decades, words,
                   time.perf_counter() - start, route)


def _moving_scale_decimal(values):
    largest = max((_dsqrt(sum(v * v for v in row)) for row in values),
                  default=decimal.Decimal(0))
    if largest < decimal.Decimal(10) ** (-(DIGITS // 2)):
        raise NothingMoves(f"nothing moves at this sample: every per-sentence field is "
                           f"below 1e-{DIGITS // 2} (largest {float(largest):.3g}), so no rank "
                           f"can be counted; not checked")
    return largest


def _select(basis: np.ndarray, candidates: np.ndarray, scale: float, tol: float,
            magnitudes=None):
    """Greedy pivoted Gram–Schmidt in floats: the candidates that add a direction, in the
    order picked, and the grown orthonormal rows. A residual counts against the largest of
    the candidate's norm, ``scale`` and its ``magnitudes`` (the terms that cancelled in it:
    a bracket that is 0 comes out as their rounding noise)."""
    if len(candidates) == 0:
        return [], basis
    sizes = np.maximum(np.linalg.norm(candidates, axis=1), scale)
    if magnitudes is not None:
        sizes = np.maximum(sizes, magnitudes)
    rest = candidates / sizes[:, None]
    for _ in range(2):
        if len(basis):
            rest = rest - (rest @ basis.T) @ basis
    picked = []
    while len(basis) < candidates.shape[1]:
        norms = np.linalg.norm(rest, axis=1)
        k = int(np.argmax(norms))
        if norms[k] <= tol:
            break
        new = rest[k] / norms[k]
        for _ in range(2):
            if len(basis):
                new = new - (basis @ new) @ basis
            new = new / np.linalg.norm(new)
        basis = np.vstack([basis, new[None, :]])
        rest = rest - np.outer(rest @ new, new)
        rest[k] = 0
        picked.append(k)
    return picked, basis


def _propose(fields: Fields, x, max_depth: int):
    """Floats: a basis of left-normed brackets of generators (words of generator indices)
    and the depth where nothing new appeared."""
    state = fields.state([x], FLOAT)
    every = list(range(len(fields.generators)))
    values = fields.batch(fields.generators, _rows(state, len(every)), FLOAT)
    scale = float(np.linalg.norm(values, axis=1).max())
    picked, basis = _select(np.zeros((0, fields.n)), values, scale, FLOAT_TOLERANCE)
    frame = [every[k] for k in picked]
    words = [(g,) for g in frame]
    new, depth = list(words), 0
    while new and len(basis) < fields.n and depth < max_depth:
        depth += 1
        candidates = [(g,) + w for w in new for g in frame
                      if not (len(w) == 1 and frame.index(g) >= frame.index(w[0]))]
        if not candidates:
            break
        magnitudes: list = []
        values = _elements(fields, candidates, _rows(state, len(candidates)), 0, FLOAT,
                           magnitudes)
        picked, basis = _select(basis, np.asarray(values), scale, FLOAT_TOLERANCE,
                                magnitudes[-1])
        new = [candidates[k] for k in picked]
        words += new
    if new and len(basis) < fields.n:
        raise _StillGrowing
    return words, depth


def _confirm(fields: Fields, state, values, scale, words, x) -> ExactBasis:
    """Decimals: the proposed elements are independent, every field is in their span, and so
    is ``[A, B]`` (``A`` a random combination of the basis's generators, ``B`` of its
    elements); else :class:`_Unconfirmed`."""
    exact = _element_values(fields, words, state, 0, DECIMAL)
    basis = ExactBasis(scale, fields.n)
    for w in words:
        if not basis.offer(exact[w]):
            raise _Unconfirmed
    for row in values:
        if not basis.within(row):
            raise _Unconfirmed
    if basis.rank == fields.n:
        return basis
    frame = [w for w in words if len(w) == 1]
    rng = random.Random(hash(tuple(x)) & 0xFFFF)

    def coefficient():
        return to_decimal(Fraction(rng.choice((-1, 1)) * rng.randint(1, 10 ** 6), 10 ** 6))
    a = {w: coefficient() for w in frame}
    b = {w: coefficient() for w in words}
    one = to_decimal(1)
    along_a = sum(a[w] * exact[w] for w in frame)
    along_b = sum(b[w] * exact[w] for w in words)
    moved = state + Jet({1: one}) * fields.pad(np.array([along_a], dtype=object))
    derivative_b = _element_values(fields, words, moved, 1, DECIMAL)
    moved = state + Jet({1: one}) * fields.pad(np.array([along_b], dtype=object))
    derivative_a = _element_values(fields, frame, moved, 1, DECIMAL)
    bracket = (sum(b[w] * _part(derivative_b[w], 0) for w in words)
               - sum(a[w] * _part(derivative_a[w], 0) for w in frame))
    if not basis.within(bracket):
        raise _Unconfirmed
    return basis


def _exact_greedy(fields: Fields, state, values, scale, max_depth: int):
    """Decimals alone: every bracket of a basis generator with a new element, depth by
    depth, offered to the basis."""
    basis = ExactBasis(scale, fields.n)
    frame = [k for k, row in enumerate(values) if basis.rank < fields.n and basis.offer(row)]
    words = [(g,) for g in frame]
    new, depth = list(words), 0
    while new and basis.rank < fields.n and depth < max_depth:
        depth += 1
        candidates = [(g,) + w for w in new for g in frame
                      if not (len(w) == 1 and frame.index(g) >= frame.index(w[0]))]
        found = _element_values(fields, candidates, state, 0, DECIMAL)
        new = [w for w in candidates if basis.rank < fields.n and basis.offer(found[w])]
        words += new
    if new and basis.rank < fields.n:
        raise RuntimeError(f"the Lie algebra still grew at bracket depth {max_depth}")
    return basis, words, depth


def linear_rank(fields, points):
    """``dim span{X(θ)}`` over every field and the given points: the directions ever moved
    (floats pick the independent values, decimals confirm every one of them)."""
    if not isinstance(fields, Fields):
        return _scalar_linear_rank(fields, points)
    rows = len(fields.generators)
    every = [g for _ in points for g in fields.generators]
    floats = fields.batch(every, fields.state([p for p in points for _ in range(rows)], FLOAT),
                          FLOAT)
    scale = float(np.linalg.norm(floats, axis=1).max())
    picked, _ = _select(np.zeros((0, fields.n)), floats, scale, FLOAT_TOLERANCE)
    with decimal.localcontext(context()):
        state = fields.state([p for p in points for _ in range(rows)], DECIMAL)
        exact = fields.batch(every, state, DECIMAL)
        scale = _moving_scale_decimal(exact[:rows])
        basis = ExactBasis(scale, fields.n)
        if all(basis.offer(exact[k]) for k in picked) and all(
                basis.within(row) for k, row in enumerate(exact) if k not in set(picked)):
            return basis
        basis = ExactBasis(scale, fields.n)
        for row in exact:
            basis.offer(row)
            if basis.rank == fields.n:
                break
        return basis


# --- the same, one field at a time in mpmath (fields given as SymPy vectors) ------------------

@dataclass
class Basis:
    """An orthonormal basis grown by Gram–Schmidt in mpmath; residual ratios kept on both
    sides (see :class:`ExactBasis`)."""

    scale: mpmath.mpf
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


def _evaluate(fields, element, x, level: int):
    """The field ``element`` (a generator or a pair (A, B) = [A, B]) at ``x`` (jets below
    ``level``): ``[A, B](x) = DB(x)·A(x) − DA(x)·B(x)``, each derivative as an ε_level part."""
    if not isinstance(element, tuple):
        return fields(element, x)
    left, right = element
    a = _evaluate(fields, left, x, level)
    eps = Jet({1 << level: mpmath.mpf(1)})
    b_full = _evaluate(fields, right, [xi + eps * ai for xi, ai in zip(x, a)], level + 1)
    b = [_real_in(y, level) for y in b_full]
    a_full = _evaluate(fields, left, [xi + eps * bi for xi, bi in zip(x, b)], level + 1)
    return [_part(yb, level) - _part(ya, level) for yb, ya in zip(b_full, a_full)]


def _scalar_lie_rank(fields, x, max_depth: int = 6) -> LieRank:
    """:func:`lie_rank` one field at a time in mpmath."""
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
                   time.perf_counter() - start, "mpmath, one field at a time")


def _scalar_linear_rank(fields, points) -> Basis:
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


def random_point(setting, seed: int) -> dict:
    """Every coordinate a random non-zero rational ``n/97`` in (−1, 1) (exact, reproducible)."""
    rng = random.Random(seed)
    return {c: Fraction(rng.choice([n for n in range(-96, 97) if n]), 97)
            for c in setting.coordinates}


def to_mp(x) -> mpmath.mpf:
    """A rational (``Fraction``) as an mpmath number at the working precision."""
    if isinstance(x, mpmath.mpf):
        return x
    x = Fraction(x)
    return mpmath.mpf(x.numerator) / x.denominator
# --- counting -------------------------------------------------------------------------------

@dataclass
class Count:
    """``laws = dimension − rank`` at each point; ``directions`` of them say a direction
    never moves (``dimension − dim span{X(θ)}`` over many points: linear laws)."""

    setting: object
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


def fields_at(setting, seed: int) -> tuple[Fields, list]:
    """The fields with frozen coordinates at random values ``n/8`` (small denominators keep
    the laws' rational coefficients small, e.g. ``q₁κ_w0 − q₀κ_w1``), and a random point."""
    point = random_point(setting, seed)
    rng = random.Random(-seed)
    for _ in range(FROZEN_DRAWS):
        frozen = _draw_frozen(setting, rng)
        if _classes_distinct(setting, frozen):
            break
    else:  # e.g. more classes than the 16 values n/8 of a one-wide last layer
        raise ValueError(f"no draw of the frozen parameters in {FROZEN_DRAWS} gave distinct "
                         f"rows to every class and every word; use fewer classes or words, "
                         f"or a wider layer")
    fields = Fields(setting, frozen)
    return fields, [point[c] for c in setting.coordinates[:fields.n]]


#: Draws of the frozen values tried for one whose class rows are distinct (a non-generic
#: draw happens with probability about rows² / 16^cols).
FROZEN_DRAWS = 100


def _draw_frozen(setting, rng) -> dict:
    return {c: Fraction(rng.choice([n for n in range(-8, 9) if n]), 8)
            for c in setting.coordinates}


#: The fixed last layer whose rows are the classes' logit weights, per classifier.
LAST_LAYER = {"linear": "classifier", "mlp": "output_weight"}


def _class_rows(setting) -> list[str]:
    """The parameters whose rows must differ: the classes' logit weights (the paper's last
    layer, or any parameter of another model whose first index is a class) and every word's
    row of a per-token parameter (two words alike are one word: seed 1 drew the four frozen
    embeddings of a two-word vocabulary all −1, a special point of rank 1)."""
    per_token = [p.name for p in setting.model.params if p.per_token]
    if isinstance(setting, Setting):
        return ([] if setting.loss == "any" else [LAST_LAYER[setting.classifier]]) + per_token
    return [p.name for p in setting.model.params
            if p.indices and _kind_name(p.indices[0]) == "class"] + per_token


def _kind_name(index):
    from symbolic.indexform import kind_of
    return kind_of(index).name


def _classes_distinct(setting, frozen: dict) -> bool:
    """Whether a frozen last layer (``U`` or ``W2``) has pairwise distinct rows. Rows
    ``c ≠ c'`` equal make the logits ``z_c − z_{c'}`` constant: with two classes ``P`` never
    moves and every field ``∝ W2ᵀ(P − Y) = 0`` (one seed drew ``W2 ≡ −1`` and counted
    rounding noise as 0 laws); with more, the count is that of a special point."""
    for name in _class_rows(setting):
        if name in setting.trained:
            continue
        shape = setting.shape(name)
        rest = list(itertools.product(*map(range, shape[1:])))
        table = {tuple(frozen[(name, (r,) + k)] for k in rest) for r in range(shape[0])}
        if len(table) != shape[0]:
            return False
    return True


def count_laws(setting, seeds=(1, 2), max_points: int = 5) -> Count:
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
    #: each law's coefficients ``{monomial: Fraction}`` (monomials as index tuples)
    coefficients: list = field(default_factory=list)


#: A law's residual at fresh points above this is no law: the fields of an exact one cancel to
#: about ``10^(−DPS)`` of the largest field there.
VERIFIED = float(NOISE_FLOOR)


def monomials(n: int) -> list[tuple]:
    """Degree 1 and 2 monomials in ``n`` trained coordinates, as index tuples ``(i,)``,
    ``(i, j)`` with ``i ≤ j`` (frozen coordinates are constants)."""
    return [(i,) for i in range(n)] + [(i, j) for i in range(n) for j in range(i, n)]


def _monomial_gradients(monos, x):
    """``∇m(x)`` for every monomial (rows), exactly as the product rule gives it."""
    out = np.zeros((len(monos), len(x)))
    for row, mono in enumerate(monos):
        if len(mono) == 1:
            out[row, mono[0]] = 1.0
        else:
            i, j = mono
            out[row, i] += x[j]
            out[row, j] += x[i]
    return out


def polynomial_laws(setting, seed: int = 7, max_denominator: int = 10 ** 4):
    """Solve ``∇Q·X = 0`` for every per-sentence field at random points, ``Q`` in the ansatz;
    frozen coordinates are held at the rational values of random point 1. Products of linear
    laws are conserved too and are dropped (they add nothing independent)."""

    fields, _ = fields_at(setting, 1)
    symbols = tuple(setting.symbol(c) for c in setting.coordinates[:fields.n])
    return conserved_polynomials(fields, symbols, seed, max_denominator)


def _field_rows(fields, points) -> list:
    """Every field at each point, in floats (one batch for :class:`Fields`)."""
    if isinstance(fields, Fields):
        rows = len(fields.generators)
        every = [g for _ in points for g in fields.generators]
        values = fields.batch(every, fields.state([p for p in points for _ in range(rows)],
                                                  FLOAT), FLOAT)
        return [values[k * rows:(k + 1) * rows] for k in range(len(points))]
    return [np.array([fields(g, x, fast=True) for g in fields.generators], dtype=float)
            for x in points]


def conserved_polynomials(fields, symbols, seed: int = 7, max_denominator: int = 10 ** 4):
    """The ansatz solve for any field family (``fields.point(seed)`` gives rational points).

    Float64 proposes (SVD nullspace, singular values below ``1e-9`` of the largest, the gap
    reported), rationals are read off a reduced echelon basis, and every law is then checked
    at fresh points in ``DIGITS``-digit arithmetic (``worst_residual``). Each point adds the
    equations ``∇Q(x) ⟂ span{X_g(x)}``: as many as that span's dimension, read off an SVD of
    the fields' values (the same nullspace as one equation per field, in fewer rows)."""
    monos = monomials(fields.n)
    rng = np.random.default_rng(seed)
    first = rng.uniform(-1, 1, fields.n)
    (at_first,) = _field_rows(fields, [first])
    rank = max(1, np.linalg.matrix_rank(at_first))
    n_points = 2 * len(monos) // rank + 10
    points = [first] + [rng.uniform(-1, 1, fields.n) for _ in range(n_points - 1)]
    rows = []
    for x, values in zip(points, [at_first] + _field_rows(fields, points[1:])):
        rows.append(_row_space(values) @ _monomial_gradients(monos, x).T)
    matrix = np.vstack(rows)
    scales = np.linalg.norm(matrix, axis=0)
    scales[scales == 0] = 1.0  # a monomial no field moves: its column stays 0
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
    residuals = _residuals(fields, coefficients)
    laws = [q for q, r in zip(proposed, residuals) if r <= VERIFIED]
    kept_coefficients = [c for c, r in zip(coefficients, residuals) if r <= VERIFIED]
    rejected = [(q, r) for q, r in zip(proposed, residuals) if not r <= VERIFIED]
    return PolynomialLaws(symbols, laws, _functional_rank(kept_coefficients, fields), gap,
                          max((r for r in residuals if r <= VERIFIED), default=0.0), rejected,
                          kept_coefficients)


def _row_space(values: np.ndarray) -> np.ndarray:
    """Rows ``VΣ`` spanning the fields' values at a point (``UΣVᵀ`` their SVD, singular values
    above ``1e-12`` of the largest): the values' own equations, rotated, their Gram matrix kept."""
    if not values.any():
        return np.zeros((0, values.shape[1]))
    _, sing, vt = np.linalg.svd(values, full_matrices=False)
    keep = sing > 1e-12 * sing[0]
    return vt[keep] * sing[keep, None]


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


def _gradient_at(coefficients: dict, point: list, n: int) -> list:
    """``∇Q`` at a rational point, exactly (``Q = Σ c_m m`` over degree-1 and -2 monomials)."""
    out = [Fraction(0)] * n
    for mono, cf in coefficients.items():
        if len(mono) == 1:
            out[mono[0]] += cf
        else:
            i, j = mono
            out[i] += cf * point[j]
            out[j] += cf * point[i]
    return out


def _residuals(fields, laws: list, seeds=(11, 12)) -> list[float]:
    """Per law (coefficients ``{monomial: Fraction}``), ``max |∇Q·X_g| / (‖∇Q‖ max_g ‖X_g‖)``
    over fresh rational points and every field, in ``DIGITS``-digit arithmetic. Against the
    largest field, as the rank's basis is: a field that vanishes there is rounding noise,
    which its own norm would blow up to order 1."""
    if not laws:
        return []
    worst = [0.0] * len(laws)
    exact = isinstance(fields, Fields)
    with decimal.localcontext(context()), mpmath.workdps(DPS):
        for seed in seeds:
            x = fields.point(seed)
            if exact:
                values = fields.values(x)
                convert, sqrt = to_decimal, _dsqrt
            else:
                values = [fields(g, [to_mp(v) for v in x]) for g in fields.generators]
                convert, sqrt = to_mp, mpmath.sqrt
            scale = max(sqrt(sum(y * y for y in row)) for row in values) or 1
            for k, law in enumerate(laws):
                gv = [convert(v) for v in _gradient_at(law, x, fields.n)]
                gnorm = sqrt(sum(y * y for y in gv)) or 1
                for row in values:
                    r = abs(sum(a * b for a, b in zip(gv, row))) / (gnorm * scale)
                    worst[k] = max(worst[k], float(r))
    return worst


def functional_rank(laws: list, symbols, seed: int = 99) -> int:
    """How many SymPy polynomials are functionally independent: the exact rank of their
    Jacobian at a random rational point."""
    from sympy.polys.domains import QQ as RATIONALS
    from sympy.polys.matrices import DomainMatrix

    rng = random.Random(seed)
    point = {x: sp.Rational(rng.choice([n for n in range(-96, 97) if n]), 97) for x in symbols}
    rows = [[RATIONALS.from_sympy(sp.diff(q, x).xreplace(point)) for x in symbols]
            for q in laws]
    return DomainMatrix(rows, (len(rows), len(symbols)), RATIONALS).rank() if rows else 0


def _functional_rank(laws: list, fields) -> int:
    """How many of the laws (coefficients ``{monomial: Fraction}``) are functionally
    independent: rank of their Jacobian in the trained coordinates at a random point
    (exact, rational)."""
    from sympy.polys.domains import QQ as RATIONALS
    from sympy.polys.matrices import DomainMatrix

    if not laws:
        return 0
    point = fields.point(99)
    rows = [[RATIONALS(v.numerator, v.denominator) for v in _gradient_at(law, point, fields.n)]
            for law in laws]
    return DomainMatrix(rows, (len(rows), fields.n), RATIONALS).rank()


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
    """Scale so that ``N = ‖v_t‖²`` enters with coefficient ½ (as the paper writes SEN)."""
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

class JExp(sp.Function):
    """``exp`` left unevaluated, printed as a call of :func:`symbolic.jets.jexp`."""

    nargs = 1


class _Printer(MpmathPrinter):
    def _print_JExp(self, expr):
        return f"jexp({self._print(expr.args[0])})"


def _compile(source: str, namespace: dict):
    ns = dict(namespace)
    exec(compile(source, "<fields>", "exec"), ns)  # noqa: S102 - our own printout
    return ns["program"]


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


# --- operations of a printed program, estimated from the description -----------------------

def _expression_cost(expr, sizes: dict) -> float:
    """Arithmetic operations of ``expr`` written out at ``sizes`` (sums expanded), counted
    on the tree without expanding anything: ``Σ_{i<n} f`` costs ``n·(cost f + 1)``."""
    if isinstance(expr, sp.Sum):
        total = _expression_cost(expr.function, sizes) + 1.0
        for _, low, high in expr.limits:
            total *= max(float(sp.sympify(high - low + 1).xreplace(sizes)), 0.0)
        return total
    if not expr.args or isinstance(expr, sp.Indexed):
        return 0.0
    own = len(expr.args) - 1 if (expr.is_Add or expr.is_Mul) else 1.0
    return own + sum(_expression_cost(a, sizes) for a in expr.args)


def estimated_operations(model, sizes: dict, tokens: int) -> float:
    """Operations of the gradient program of one sentence of ``tokens`` tokens, from the
    description and its derivation (no program is printed): every node entry and every
    backward entry at its cost."""
    from symbolic.derive import derive
    from symbolic.description import L

    sizes = {**{k: float(v) for k, v in sizes.items()}, L: float(tokens)}

    def entries(indices):
        return math.prod(float(_kind_size(i).xreplace(sizes)) for i in indices)
    der = derive(model)
    total = 0.0
    for node in model.nodes[:-1] if model.loss != "abstract" else model.nodes:
        total += entries(node.indices) * _expression_cost(node.definition, sizes)
    for name in der.order:
        x = der.param(name) if name in {p.name for p in model.params} else der.node(name)
        total += entries(x.indices) * _expression_cost(der.grads[name].to_sympy(), sizes)
    return total

"""The per-sentence gradient fields of any model description, at explicit sizes, as programs.

For a sentence of ``L`` tokens the derivation's backward pass (:mod:`symbolic.derive`, node by
node, upstream symbols kept) is read at explicit sizes and printed as one straight-line Python
function: inputs are the parameter entries the sentence sees (one row per token of a per-token
parameter), the sentence's target (the one-hot label, or the one-hot upstream ``G`` of the
abstract loss) and the activation pattern of its ReLUs; outputs are ``∂ℓ/∂θ`` entry by entry.
The same text runs on any number type with ``+ − × ÷`` and an ``exp``:

- floats in NumPy arrays, one row per (sentence, target, point): the fast proposals;
- ``decimal.Decimal`` at ``DIGITS`` significant digits in NumPy object arrays: the confirming
  arithmetic (correctly rounded, several times cheaper than mpmath's pure-Python numbers);
- either of them inside multilinear jets (:mod:`symbolic.jets`), for exact directional
  derivatives: the Lie brackets of the fields.

A *state* is one row of coordinate values per field evaluated: an array (or a jet of arrays)
of shape ``(rows, coordinates)``, trained coordinates first, frozen ones after them.
"""

from __future__ import annotations

import decimal
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, cached_property

import numpy as np
import sympy as sp

from symbolic.derive import derive
from symbolic.indexform import kind_of
from symbolic.jets import Jet

#: Significant digits of the confirming arithmetic.
DIGITS = 50


def context() -> decimal.Context:
    """The decimal context of every confirming computation (``DIGITS`` digits, wide range)."""
    return decimal.Context(prec=DIGITS, Emax=10 ** 6, Emin=-10 ** 6)


def to_decimal(x) -> decimal.Decimal:
    """A rational (``Fraction``, int) as a Decimal at ``DIGITS`` digits."""
    x = Fraction(x)
    with decimal.localcontext(context()):
        return decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)


# --- the number types the programs run on ----------------------------------------------------

_dexp = np.frompyfunc(lambda v: v.exp(), 1, 1)


def _exp_float(x):
    return np.exp(x)


def _exp_decimal(x):
    if isinstance(x, np.ndarray):
        return _dexp(x)
    if isinstance(x, int):
        x = decimal.Decimal(x)
    return x.exp()


def _jet_exp(exp):
    """``exp`` of a number or a jet: ``e^{x₀} Σ N^n/n!`` (``N`` nilpotent: the sum ends)."""
    def jexp(x):
        if not isinstance(x, Jet):
            return exp(x)
        e0 = exp(x.parts.get(0, 0))
        n = len(_bits(x.parts))
        return x._series([e0 / math.factorial(j) for j in range(n + 1)])
    return jexp


def _bits(parts):
    out = 0
    for s in parts:
        out |= s
    return [b for b in range(out.bit_length()) if out >> b & 1]


@dataclass(frozen=True)
class Arithmetic:
    """A number type: how a rational is made one, and ``exp``."""

    name: str
    number: object  # Fraction -> number
    exp: object

    @cached_property
    def jexp(self):
        return _jet_exp(self.exp)


FLOAT = Arithmetic("float", float, _exp_float)
DECIMAL = Arithmetic("decimal", to_decimal, _exp_decimal)


# --- the program of one sentence length -------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One input of a program: ``("param", name, index)``, ``("target", k)`` (the k-th entry
    of the one-hot label or upstream ``G``) or ``("pattern", k)`` (the k-th ReLU's state)."""

    kind: str
    name: str
    at: tuple


@dataclass(frozen=True)
class Program:
    """``∂ℓ/∂θ`` of one sentence of ``tokens`` tokens: ``inputs`` → ``outputs`` (parameter
    name, index as the sentence sees it: a per-token parameter's first index is a token)."""

    tokens: int
    inputs: tuple
    outputs: tuple
    source: str
    constants: tuple  # Fractions, printed as R[k]

    def compiled(self, arithmetic: Arithmetic):
        return _compile(self.source, arithmetic.name, self.constants, arithmetic)


_COMPILED: dict = {}


def _compile(source, name, constants, arithmetic):
    key = (source, name)
    if key not in _COMPILED:
        ns = {"jexp": arithmetic.jexp, "R": tuple(arithmetic.number(c) for c in constants)}
        exec(compile(source, "<derived gradient>", "exec"), ns)  # noqa: S102 - our own printout
        _COMPILED[key] = ns["program"]
    return _COMPILED[key]


class _Writer:
    """Straight-line code: each line ``vN = expression`` over earlier variables."""

    def __init__(self):
        self.lines: list[str] = []
        self.names: dict = {}        # (base, at) -> variable name
        self.constants: dict = {}    # Fraction -> index in R
        self.exps: dict = {}         # printed argument -> variable name
        self.common: dict = {}       # printed compound expression -> variable name

    def variable(self, key) -> str:
        if key not in self.names:
            self.names[key] = f"v{len(self.names)}"
        return self.names[key]

    def assign(self, key, expr: sp.Expr, symbols: dict) -> str:
        text = self.print(expr, symbols)
        name = self.variable(key)
        self.lines.append(f"    {name} = {text}")
        return name

    def print(self, expr, symbols: dict) -> str:
        """``expr`` over ``symbols`` (SymPy atom → variable name) as Python text."""
        if expr.is_Symbol or isinstance(expr, sp.Indexed):
            if expr not in symbols:
                raise ValueError(f"the derived gradient reads {expr}, which the program has "
                                 f"not computed")
            return symbols[expr]
        if expr.is_Integer:
            return f"({int(expr)})"
        if expr.is_Rational:
            frac = Fraction(int(expr.p), int(expr.q))
            k = self.constants.setdefault(frac, len(self.constants))
            return f"R[{k}]"
        if isinstance(expr, sp.exp):
            arg = self.print(expr.args[0], symbols)
            if arg not in self.exps:
                name = f"e{len(self.exps)}"
                self.lines.append(f"    {name} = jexp({arg})")
                self.exps[arg] = name
            return self.exps[arg]
        if expr.is_Add:
            parts = [self.print(a, symbols) for a in expr.args]
            return self._shared("(" + " + ".join(parts) + ")")
        if expr.is_Mul:
            num, den = [], []
            for f in expr.args:
                base, power = f.as_base_exp()
                if power.is_Integer and power < 0:
                    den.append(self._power(base, -int(power), symbols))
                else:
                    num.append(self.print(f, symbols))
            if num[:1] == ["(-1)"] and len(num) > 1:  # a negation, not a product
                return self._shared("(-" + "*".join(num[1:]) + "".join(f"/{d}" for d in den)
                                    + ")")
            text = "(" + ("*".join(num) if num else "1") + ")"
            return self._shared(text + "".join(f"/{d}" for d in den))
        if expr.is_Pow and expr.exp.is_Integer:
            n = int(expr.exp)
            if n > 0:
                return self._power(expr.base, n, symbols)
            return f"(1/{self._power(expr.base, -n, symbols)})"
        raise ValueError(f"cannot print {expr} (of type {type(expr).__name__}) into a "
                         f"gradient program")

    def _power(self, base, n, symbols) -> str:
        text = self.print(base, symbols)
        if n == 1:
            return text
        return self._shared("(" + "*".join([text] * n) + ")")

    def _shared(self, text: str) -> str:
        """A compound expression computed once: the same text again reads its variable
        (the softmax's normaliser, a sum every attention entry reads)."""
        if text not in self.common:
            name = f"t{len(self.common)}"
            self.lines.append(f"    {name} = {text}")
            self.common[text] = name
        return self.common[text]


def _shape(indices, sizes: dict) -> tuple[int, ...]:
    return tuple(int(kind_of(x).size.xreplace(sizes)) for x in indices)


def _entries(indices, sizes):
    return itertools.product(*map(range, _shape(indices, sizes)))


@cache
def program(model, sizes: tuple, tokens: int) -> Program:
    """The derived per-sentence gradient of ``model`` at ``sizes`` (``((symbol, value), …)``,
    constants included) for a sentence of ``tokens`` tokens."""
    from symbolic.description import L

    subs = dict(sizes)
    subs[L] = tokens
    der = derive(model)
    w = _Writer()
    symbols: dict = {}
    inputs = []
    for p in model.params:
        for at in _entries(p.indices, subs):
            ref = p.base[at]
            symbols[ref] = w.variable(("param", p.name, at))
            inputs.append(Entry("param", p.name, at))
    target = target_entries(model, subs)
    for k, ref in enumerate(target):
        symbols[ref] = w.variable(("target", k))
        inputs.append(Entry("target", "", (k,)))
    relus = relu_entries(model, subs)
    pattern = {}
    for k, ref in enumerate(relus):
        pattern[ref] = sp.Symbol(f"_pattern_{k}")
        symbols[pattern[ref]] = w.variable(("pattern", k))
        inputs.append(Entry("pattern", "", (k,)))

    def read(expr):
        expr = expr.xreplace(subs).doit()
        expr = expr.replace(lambda e: isinstance(e, sp.Max), lambda e: _gated(e, pattern))
        expr = expr.replace(lambda e: isinstance(e, sp.Heaviside),
                            lambda e: _pattern_of(e.args[0], pattern))
        return _normalisers(expr, model, subs, symbols, w)

    folds = {f.exp_of: f for f in model.folds}
    node_bases = {n.base for n in model.nodes}
    last = len(model.nodes) - 1
    for position, node in enumerate(model.nodes):
        if position == last and model.loss != "abstract":
            continue  # the loss's value: no gradient reads it
        for at in _entries(node.indices, subs):
            ref = node.base[at] if node.indices else node.base
            value = node.definition.xreplace(dict(zip(node.indices, at)))
            symbols[ref] = w.assign(("node", node.name, at), read(value), symbols)
        fold = folds.get(node.base)
        if fold is not None and fold.name not in node_bases:
            _softmax_lines(fold, node, subs, symbols, w)
    outputs = []
    out_names = []
    for name in der.order:
        x = der.param(name) if name in {p.name for p in model.params} else der.node(name)
        grad = der.grads[name].to_sympy()
        gsym = der.symbols[name]
        for at in _entries(x.indices, subs):
            value = read(grad.xreplace(dict(zip(x.indices, at))))
            ref = gsym[at] if x.indices else gsym
            symbols[ref] = w.assign(("grad", name, at), value, symbols)
            if name in {p.name for p in model.params}:
                outputs.append((name, at))
                out_names.append(symbols[ref])
    args = ", ".join(w.names[("param", e.name, e.at)] if e.kind == "param"
                     else w.names[(e.kind, e.at[0])] for e in inputs)
    source = (f"def program({args}):\n" + "\n".join(w.lines)
              + "\n    return (" + "".join(f"{n}, " for n in out_names) + ")\n")
    constants = tuple(sorted(w.constants, key=w.constants.get))
    return Program(tokens, tuple(inputs), tuple(outputs), source, constants)


def target_entries(model, subs) -> list:
    """What one field's target sets: the upstream ``G`` (abstract loss) or the data's
    entries (the one-hot label)."""
    if model.loss == "abstract":
        last = model.nodes[-1]
        if not last.indices:
            return [model.upstream]
        return [model.upstream[at] for at in _entries(last.indices, subs)]
    if len(model.data) > 1:
        raise ValueError(f"model {model.name}: discover reads one data input (a one-hot "
                         f"label), not {len(model.data)}")
    if not model.data:
        return []
    x = model.data[0]
    return [x.base[at] for at in _entries(x.indices, subs)]


def relu_entries(model, subs) -> list:
    """The entries of every ReLU node: each is on or off in a field (its pattern)."""
    out = []
    for node in model.nodes:
        if node.op == "relu":
            for at in _entries(node.indices, subs):
                inner = _relu_argument(node.definition).xreplace(dict(zip(node.indices, at)))
                out.append(inner)
    return out


def _relu_argument(definition):
    (relu,) = definition.atoms(sp.Max)
    args = set(relu.args)
    if sp.S.Zero not in args or len(args) != 2:
        raise ValueError(f"only max(x, 0) is supported, not {relu}")
    (inner,) = args - {sp.S.Zero}
    return inner


def _gated(relu, pattern):
    """``max(u, 0)`` under the activation pattern: ``δ u`` (δ ∈ {0, 1} per field)."""
    args = set(relu.args)
    if sp.S.Zero not in args or len(args) != 2:
        raise ValueError(f"only max(x, 0) is supported, not {relu}")
    (inner,) = args - {sp.S.Zero}
    return _pattern_of(inner, pattern) * inner


def _pattern_of(inner, pattern):
    if inner not in pattern:
        raise ValueError(f"a ReLU of {inner}, which is no ReLU node's argument")
    return pattern[inner]


def _softmax_lines(fold, node, subs, symbols, w):
    """``fold.name[…, c] = exp(x[…, c]) / Σ_e exp(x[…, e])`` (the class probabilities ``P``)."""
    shape = _shape(node.indices, subs)
    for lead in itertools.product(*map(range, shape[:-1])):
        row = [node.base[lead + (c,)] for c in range(shape[-1])]
        total = sp.Add(*(sp.exp(x) for x in row))
        for c, x in enumerate(row):
            symbols[fold.name[lead + (c,)]] = w.assign(("fold", str(fold.name), lead + (c,)),
                                                       sp.exp(x) / total, symbols)


def _normalisers(expr, model, subs, symbols, w):
    """Normalisers left in a gradient (``Z[…] = Σ_j exp(x[…, j])``) written as lines once."""
    for fold in model.folds:
        z = fold.normaliser
        hits = ([e for e in expr.atoms(sp.Indexed) if e.base == z]
                if isinstance(z, sp.IndexedBase) else ([z] if expr.has(z) else []))
        for ref in hits:
            if ref in symbols:
                continue
            lead = ref.indices if isinstance(ref, sp.Indexed) else ()
            node = next(n for n in model.nodes if n.base == fold.exp_of)
            last = _shape(node.indices, subs)[-1]
            total = sp.Add(*(sp.exp(node.base[tuple(lead) + (j,)]) for j in range(last)))
            symbols[ref] = w.assign(("normaliser", str(z), tuple(lead)), total, symbols)
    return expr


# --- the fields: every (sentence, target, pattern) on the trained coordinates ----------------

@dataclass(frozen=True)
class Generator:
    """One per-sample field: a sentence (word ids), its target (label or ``G`` coordinate) and
    the activation pattern of its ReLUs."""

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


def gather(state, rows, columns):
    """Entries ``state[rows[n], columns[n]]`` of a state (array or jet of arrays)."""
    if isinstance(state, Jet):
        return Jet({m: v[rows, columns] for m, v in state.parts.items()})
    return state[rows, columns]


def scatter_subtract(out: dict, rows, columns, value, zero):
    """``out[rows, columns] −= value`` part by part (``out``: mask → array)."""
    parts = value.parts if isinstance(value, Jet) else {0: value}
    for m, v in parts.items():
        if m not in out:
            out[m] = zero()
        np.subtract.at(out[m], (rows, columns), v)


def as_state(parts: dict):
    """A jet of arrays, or the array itself when there is no infinitesimal."""
    parts = {m: v for m, v in parts.items()}
    if set(parts) <= {0}:
        return parts.get(0)
    return Jet(parts)

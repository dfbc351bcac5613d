"""Behaviours of ``symbolic.fields`` (the printed per-sentence gradient programs ``discover``
runs) that no other test pinned down: each test fails under a realistic one-line bug
(``tests/mutation.py``) and passes on the code. Models are small (a few dozen coordinates):
each test runs in well under a second once the model's derivation is cached."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

from symbolic.description import L
from symbolic.explicit import Expansion
from symbolic.fields import FLOAT, program, target_entries


def _explicit_gradient(model, sizes: tuple, tokens: int, seed: int):
    """The printed program's ``∂ℓ/∂θ`` and the derivative of the description's explicit loss
    (:class:`symbolic.explicit.Expansion`, no derivation involved) at one random point, by
    the complex step ``Im ℓ(θ + i h e_k) / h`` (exact to rounding for an analytic loss)."""
    prog = program(model, sizes, tokens)
    subs = {**dict(sizes), L: tokens}
    rng = random.Random(seed)
    refs = target_entries(model, subs)
    base = model.upstream if model.loss == "abstract" else (
        model.data[0].base if model.data else None)
    hot = rng.randrange(len(refs)) if refs else None
    point, symbol = {}, {}

    def value(name, at):
        if name in ("Y", "G"):
            key = ("target", (refs.index(base[tuple(at)] if at else base),))
        else:
            key = (name, tuple(at))
        if key not in symbol:
            symbol[key] = sp.Symbol(f"x{len(symbol)}")
            point[key] = (float(key[1][0] == hot) if name == "Y" else rng.uniform(-1, 1))
        return symbol[key]

    loss = Expansion(model, subs, value).loss.xreplace(subs)
    keys = list(symbol)
    f = sp.lambdify([symbol[k] for k in keys], loss, "numpy")
    x = np.array([point[k] for k in keys], dtype=complex)

    def derivative(key):
        step = np.zeros(len(keys), dtype=complex)
        step[keys.index(key)] = 1e-30j
        return float(np.imag(f(*(x + step))) / 1e-30)
    args = [point.get((e.name, e.at) if e.kind == "param" else (e.kind, e.at), 0.0)
            for e in prog.inputs]
    computed = dict(zip(prog.outputs, prog.compiled(FLOAT)(*args)))
    expected = {at: derivative(at) if at in symbol else 0.0 for at in prog.outputs}
    return computed, expected


def _multi_head(loss):
    from symbolic.models.attention import multi_head
    return multi_head(loss)


def _sizes(model, **sizes) -> tuple:
    """``program``'s sizes: every declared size, and τ = 1/2 when the model has it."""
    from symbolic.discover import ModelSetting
    constants = tuple((str(c), Fraction(1, 2)) for c in model.constants)
    return ModelSetting(model, (), tuple(sizes.items()), 1, 1, constants).program_sizes


@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error", "abstract"])
def test_the_printed_gradient_is_the_derivative_of_the_explicit_loss(loss):
    """One head, a sentence of two tokens, three classes: every printed ``∂ℓ/∂θ`` entry
    equals the derivative of the loss written out entry by entry (the attention rows, their
    normalisers and the class probabilities each over their own last index; heads, tokens
    and classes differ, so an index read in the wrong place lands on another entry)."""
    model = _multi_head(loss)
    computed, expected = _explicit_gradient(model, _sizes(model, C=3, d=2, d_head=1, heads=1),
                                            2, seed=5)
    assert len(computed) == 2 * 2 + 4 * 1 * 1 * 2 + 3 * 2
    for at, value in expected.items():
        assert computed[at] == pytest.approx(value, rel=1e-9, abs=1e-12), at


def _run(writer, text, **values):
    """The value of ``text`` after the writer's lines, at ``values``."""
    ns = {"jexp": math.exp, "R": tuple(float(c) for c in writer.constants), **values}
    exec("\n".join(line.strip() for line in writer.lines), ns)  # noqa: S102 - test's own text
    return eval(text, ns)  # noqa: S307 - the writer's printout of a test expression


def _entries(base, *shape):
    """Variable names and distinct values of every entry of ``base`` at ``shape``."""
    import itertools
    symbols = {base[at]: f"{base}{''.join(map(str, at))}"
               for at in itertools.product(*map(range, shape))}
    values = {name: 0.3 * k - 0.01 * k * k for k, name in enumerate(symbols.values())}
    return symbols, values


def test_a_softmax_over_a_per_head_node_normalises_each_row_over_its_last_index():
    """A fold ``P[h, i, c] = e^{s[h, i, c]} / Σ_e e^{s[h, i, e]}`` of a 2 × 3 × 4 node that is
    not itself a node (a description may fold a softmax it never names): every row of
    four sums to one over its own entries."""
    from symbolic.description import CLASS, TOKEN
    from symbolic.fields import _softmax_lines, _Writer
    from symbolic.models.attention import HEAD, heads
    s, P = sp.IndexedBase("s"), sp.IndexedBase("P")
    node = SimpleNamespace(base=s, indices=(HEAD.index(0), TOKEN.index(0), CLASS.index(0)))
    symbols, values = _entries(s, 2, 3, 4)
    w = _Writer()
    _softmax_lines(SimpleNamespace(name=P), node, {heads: 2, L: 3, CLASS.size: 4}, symbols, w)
    for h in range(2):
        for i in range(3):
            row = [math.exp(values[f"s{h}{i}{c}"]) for c in range(4)]
            for c in range(4):
                assert _run(w, symbols[P[h, i, c]], **values) == pytest.approx(
                    row[c] / sum(row))


@pytest.mark.parametrize("expr", ["sqrt", "log"])
def test_a_function_without_a_straight_line_program_is_refused_by_name(expr):
    """``√x`` and ``log x`` have no straight-line ``+ − × ÷ exp`` program: refused with the
    expression named, never printed as something else."""
    from symbolic.fields import _Writer
    x = sp.Symbol("x", positive=True)
    with pytest.raises(ValueError, match="cannot print"):
        _Writer().print(getattr(sp, expr)(x), {x: "x"})


def test_a_normaliser_of_a_per_head_node_sums_the_exponentials_of_its_own_row():
    """A gradient holding ``Z[1, 2]`` of a 2 × 3 × 4 node ``s[h, i, c]``: the line
    ``Z[1, 2] = Σ_c e^{s[1, 2, c]}`` (that row, over the last index only)."""
    from symbolic.description import CLASS, TOKEN
    from symbolic.fields import _normalisers, _Writer
    from symbolic.models.attention import HEAD, heads
    s, Z = sp.IndexedBase("s"), sp.IndexedBase("Z")
    model = SimpleNamespace(folds=[SimpleNamespace(normaliser=Z, exp_of=s)],
                            nodes=[SimpleNamespace(base=s, indices=(
                                HEAD.index(0), TOKEN.index(0), CLASS.index(0)))])
    symbols, values = _entries(s, 2, 3, 4)
    w = _Writer()
    assert _normalisers(2 / Z[1, 2], model, {heads: 2, L: 3, CLASS.size: 4}, symbols,
                        w) == 2 / Z[1, 2]
    assert Z[0, 2] not in symbols
    assert _run(w, symbols[Z[1, 2]], **values) == pytest.approx(
        sum(math.exp(values[f"s12{c}"]) for c in range(4)))


def test_powers_are_printed_as_products_and_reciprocals():
    """``x³``, ``1/x`` and ``x⁻²`` standing alone (not inside a product)."""
    from symbolic.fields import _Writer
    x = sp.Symbol("x")
    w = _Writer()
    assert [_run(w, w.print(e, {x: "x"}), x=2.0) for e in (x ** 3, 1 / x, x ** -2)] == [
        8.0, 0.5, 0.25]


def test_the_confirming_arithmetic_holds_exponentials_of_scores_in_the_millions():
    """``e^{±2·10⁶}`` (about 10^{±868589}) neither overflows nor flushes to 0 at ``DIGITS``
    digits: a flushed value would be a false zero, the one wrong answer the confirming
    arithmetic must never give."""
    import decimal

    from symbolic.fields import DECIMAL, context
    with decimal.localcontext(context()):
        up, down = (DECIMAL.exp(decimal.Decimal(x)) for x in (2 * 10 ** 6, -2 * 10 ** 6))
        assert down != 0 and up.adjusted() == 868588 and down.adjusted() == -868589
        assert abs(up * down - 1) < decimal.Decimal("1e-45")


def test_the_sentences_are_every_bag_of_one_to_max_len_words():
    from symbolic.fields import sentences
    assert sentences(2, 2) == [(0,), (1,), (0, 0), (0, 1), (1, 1)]

"""An independent count of conservation laws: brute force over every bracket, by another route.

Test oracle only. It shares with ``symbolic.discover`` nothing but the sizes and the frozen
values: the per-sample gradients come from the explicit writing of the loss
(``symbolic.explicit``: by hand where one exists, else the description expanded entry by
entry — never the derivation, the printed programs or the jets), differentiated by
``sympy.diff`` and evaluated in mpmath; brackets are nested central differences at 100
digits (step 1e-20: truncation about 1e-40, rounding about 1e-20 at depth three); and the rank
is read off the singular values of every bracket up to the depth where the rank stops
growing: every pair of fields, then every field with the part of the previous depth that
adds to the span (no basis of fields chosen first, no random combination).
"""

from __future__ import annotations

import itertools

import mpmath
import sympy as sp

from symbolic.explicit import WRITTEN_BY_HAND, Expansion
from symbolic.fields import sentences, target_entries

DPS = 80
STEP = mpmath.mpf(10) ** -20


class ExplicitFields:
    """``−∂ℓ_g/∂θ`` on the trained coordinates, one per (sentence, target), from
    ``sympy.diff`` of the explicit loss (frozen coordinates at their values)."""

    def __init__(self, setting, frozen_values: dict):
        from symbolic.description import L
        n = setting.n_trained
        self.n = n
        trained = [setting.symbol(c) for c in setting.coordinates[:n]]
        frozen = {setting.symbol(c): sp.Rational(v.numerator, v.denominator)
                  for c, v in frozen_values.items() if c in setting.coordinates[n:]}
        model = setting.model
        per_token = {p.name for p in model.params if p.per_token}
        self.functions = []
        for bag in sentences(setting.words, setting.max_len):
            sizes = {**dict(setting.program_sizes), L: len(bag)}
            targets = [sp.Symbol(f"t{k}") for k in range(len(target_entries(model, sizes)))]
            entries = target_entries(model, sizes)

            def value(name, at, bag=bag, targets=targets, entries=entries):
                if name == "Y" and model.loss == "abstract":
                    return 0  # the hand-written loss reads no label then
                if name in ("Y", "G"):
                    base = model.upstream if name == "G" else model.data[0].base
                    return targets[entries.index(base[tuple(at)] if at else base)]
                if name in per_token:
                    at = (bag[at[0]],) + tuple(at[1:])
                return setting.symbol((name, tuple(at)))
            writer = WRITTEN_BY_HAND.get(model.name)
            written = (writer(sizes, model.loss, value) if writer is not None
                       else Expansion(model, sizes, value))
            constants = {k: v for k, v in sizes.items() if k in set(model.constants)}
            loss = written.loss.xreplace(constants).xreplace(frozen)
            grads = [-sp.diff(loss, x) for x in trained]
            for t in range(len(targets)):
                onehot = {y: int(j == t) for j, y in enumerate(targets)}
                self.functions.append(sp.lambdify(trained, [g.xreplace(onehot) for g in grads],
                                                  "mpmath", cse=True))

    def __call__(self, k: int, x) -> list:
        return list(self.functions[k](*x))


def _bracket(fields, word, x):
    """The left-normed bracket ``[X_{w₁}, [X_{w₂}, …]]`` at ``x``, derivatives by central
    differences."""
    if len(word) == 1:
        return fields(word[0], x)
    inner = word[1:]
    a = fields(word[0], x)
    b = _bracket(fields, inner, x)

    def along(f, v):
        plus = f([xi + STEP * vi for xi, vi in zip(x, v)])
        minus = f([xi - STEP * vi for xi, vi in zip(x, v)])
        return [(p - m) / (2 * STEP) for p, m in zip(plus, minus)]
    db_a = along(lambda y: _bracket(fields, inner, y), a)
    da_b = along(lambda y: fields(word[0], y), b)
    return [p - q for p, q in zip(db_a, da_b)]


def _rank(rows) -> tuple[int, float]:
    """The rank of the rows by their singular values (the largest relative gap below
    1e-10), and that gap in decades."""
    if not rows:
        return 0, 0.0
    values = sorted((abs(s) for s in mpmath.svd_r(mpmath.matrix(rows), compute_uv=False)),
                    reverse=True)
    top = values[0]
    if top == 0:
        return 0, 0.0
    kept = [s for s in values if s > top * mpmath.mpf(10) ** -10]
    dropped = [s for s in values if s <= top * mpmath.mpf(10) ** -10]
    gap = float(mpmath.log10(kept[-1] / max(dropped[0], mpmath.mpf(10) ** -DPS))) \
        if dropped else float(DPS)
    return len(kept), gap


def independent_count(setting, frozen_values: dict, point, max_depth: int = 4) -> dict:
    """``{"laws", "rank", "depth", "gap"}`` at ``point`` (rationals): every bracket of every
    generator with every element of the previous depth, until the rank stops growing."""
    with mpmath.workdps(DPS):
        fields = ExplicitFields(setting, frozen_values)
        x = [mpmath.mpf(v.numerator) / v.denominator for v in point]
        generators = range(len(fields.functions))
        rows = [fields(g, x) for g in generators]
        rank, gap = _rank(rows)
        layer = [(g,) for g in generators]
        depth = 0
        while rank < fields.n and depth < max_depth:
            depth += 1
            if depth == 1:
                layer = [(a, b) for a, b in itertools.combinations(generators, 2)]
            else:
                layer = [(g,) + w for g in generators for w in layer]
            rows += [_bracket(fields, w, x) for w in layer]
            new, gap = _rank(rows)
            if new == rank:
                break
            rank = new
            layer = _independent_part(rows, layer)
        return {"laws": fields.n - rank, "rank": rank, "depth": depth, "gap": gap}


def _independent_part(rows, layer):
    """The newest layer's words whose brackets add to the span of the rows before them
    (Gram–Schmidt, residuals above 1e-10 of the largest row)."""
    first = len(rows) - len(layer)
    scale = max(mpmath.sqrt(mpmath.fsum(p * p for p in r)) for r in rows)
    basis, keep = [], []
    for k, row in enumerate(rows):
        w = list(row)
        for _ in range(2):
            for b in basis:
                dot = mpmath.fsum(p * q for p, q in zip(w, b))
                w = [p - dot * q for p, q in zip(w, b)]
        size = mpmath.sqrt(mpmath.fsum(p * p for p in w))
        if size > scale * mpmath.mpf(10) ** -10:
            basis.append([p / size for p in w])
            if k >= first:
                keep.append(layer[k - first])
    return keep

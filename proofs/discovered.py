"""The laws ``discover`` finds, matched against the declared ones and checked exactly.

For the paper's model the conjecture machinery proves the generic declarations along the
derived flow (:func:`proofs.conjecture.explain`). For any other description:

- the declared laws of the model (``symbolic.laws``, and for the self-attention family
  ``symbolic.laws_attention``) are written out at discover's explicit sizes, one polynomial
  per component, in the trained coordinates (frozen ones at the values the count used);
- each component is checked exactly on the explicit model (:class:`ExactRates`): the loss of
  every sentence written out entry by entry (by hand where ``symbolic.explicit`` has a
  writing, else from the description, never from the derivation), differentiated by
  ``sympy.diff``, and ``R = Σ_θ ∂Q/∂θ · ∂ℓ/∂θ`` evaluated at a rational point in
  ``ℚ(E, Z₁, …)`` for every sentence and target (:class:`proofs.exact._Field`: exact both
  ways for the exponentials of rational scores, never a false zero);
- every found law must lie in the span of the components that hold (and products of linear
  ones), exactly over ℚ; the completeness statement compares the count with the number of
  functionally independent declared components.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from proofs.exact import ExactError, _Field, _Kink, _Restart
from symbolic import laws as SL
from symbolic.explicit import WRITTEN_BY_HAND, Expansion
from symbolic.fields import sentences, target_entries
from symbolic.indexform import kind_of

#: Magnitudes of the exact check's coordinates, each drawn with either sign: small whole
#: numbers (scores stay in a small lattice, so ``e^s`` is a low power of ``E``), never 0
#: (a zero coordinate makes every product through it vanish, whatever the law).
VALUES = (1, 2, 3)


# --- declared laws at explicit sizes -------------------------------------------------------

def declared_laws(setting) -> tuple[list, str]:
    """The laws declared for the setting's model that hold for its loss (an abstract loss:
    those proved for every loss), and where they come from."""
    name, loss = setting.model.name, setting.model.loss
    laws = [law for law in SL.every_law() if law.family == name and _holds_for(law, loss)]
    if not laws:
        return [], f"none is declared for model {name}"
    where = "symbolic/laws.py" if name == "paper" else "symbolic/laws_attention.py"
    return laws, f"declared in {where}"


def _holds_for(law, loss: str) -> bool:
    if law.family == "paper":
        return True
    if loss == "abstract":
        return any(m.loss == "abstract" for m in law.models)
    return loss in law.losses


def _theorem(law) -> str:
    from proofs.conservation import theorem_name
    return theorem_name(law)


def applies(law, setting) -> bool:
    """Whether the setting trains everything the law's proof needs (and nothing it says must
    stay frozen)."""
    needed = set(law.trained)
    return needed <= set(setting.trained) and not set(law.frozen) & set(setting.trained)


def components(law, setting) -> list[dict]:
    """Every assignment of the law's component indices at the setting's sizes."""
    import itertools
    sizes = _sizes(setting)
    ranges = [range(int(sp.sympify(kind_of(i).size).xreplace(sizes))) for i in law.components]
    return [dict(zip(law.components, at)) for at in itertools.product(*ranges)]


def _sizes(setting) -> dict:
    return {**setting.size_values(), SL.n_words: setting.words}


def instance(law, setting, component: dict) -> sp.Expr:
    """``Q`` at the setting's sizes over its coordinate symbols (a per-token parameter at a
    word index reads that word's row)."""
    sizes = _sizes(setting)
    expr = law.quantity.xreplace(component).xreplace(sizes).doit()
    bases = {p.base: p.name for p in setting.model.params}

    def entry(x):
        if x.base not in bases:
            raise ValueError(f"law {law.name} reads {x.base}, which is no parameter of "
                             f"{setting.model.name}")
        return setting.symbol((bases[x.base], tuple(int(i) for i in x.indices)))
    return expr.replace(lambda x: isinstance(x, sp.Indexed), entry)


def as_coefficients(poly, setting, frozen_values: dict) -> dict:
    """``Q`` with frozen coordinates at their values, as ``{monomial: Fraction}`` over the
    trained coordinates (constants dropped)."""
    n = setting.n_trained
    symbols = [setting.symbol(c) for c in setting.coordinates[:n]]
    frozen = {setting.symbol(c): sp.Rational(v.numerator, v.denominator)
              for c, v in frozen_values.items() if c in setting.coordinates[n:]}
    poly = sp.expand(sp.sympify(poly).xreplace(frozen))
    out = {}
    for exps, cf in sp.Poly(poly, *symbols).as_dict().items():
        mono = tuple(i for i, e in enumerate(exps) for _ in range(e))
        if mono:
            num, den = sp.fraction(cf)
            out[mono] = Fraction(int(num), int(den))
    return out


# --- the exact check on the explicit model -------------------------------------------------

class ExactRates:
    """``∂ℓ/∂θ`` of every (sentence, target) at one rational point, in ``ℚ(E, Z…)``, each
    entry differentiated and evaluated when a law first reads it."""

    def __init__(self, setting, frozen_values: dict | None, seed: int = 1):
        self.setting = setting
        n = setting.n_trained
        rng = random.Random(seed)
        self.point = [Fraction(rng.choice(VALUES) * rng.choice((-1, 1))) for _ in range(n)]
        self.symbols = [setting.symbol(c) for c in setting.coordinates]
        values = {s: sp.Rational(v.numerator, v.denominator)
                  for s, v in zip(self.symbols, self.point)}
        if frozen_values is None:  # the law's own check: any point will do
            frozen_values = {c: Fraction(rng.choice(VALUES) * rng.choice((-1, 1)))
                             for c in setting.coordinates[n:]}
        values.update({setting.symbol(c): sp.Rational(v.numerator, v.denominator)
                       for c, v in frozen_values.items() if c in setting.coordinates[n:]})
        subs = dict(setting.program_sizes)
        self.sentences = []   # (loss, {k: ∂ℓ/∂θ_k}, [_Sample per target])
        for bag in sentences(setting.words, setting.max_len):
            loss, targets = self._loss(bag, subs)
            samples = []
            for t in range(len(targets)):
                point = dict(values)
                point.update({y: sp.Integer(int(j == t)) for j, y in enumerate(targets)})
                samples.append(_Sample(point, len(setting.model.data)))
            self.sentences.append((loss, {}, samples))

    def _loss(self, bag, subs):
        """The explicit loss of one sentence (its target entries left as symbols)."""
        from symbolic.description import L
        setting = self.setting
        model = setting.model
        sizes = {**subs, L: len(bag)}
        per_token = {p.name for p in model.params if p.per_token}
        targets = [sp.Symbol(f"target_{k}", real=True)
                   for k in range(len(target_entries(model, sizes)))]

        def value(name, at):
            if name == "Y" and model.loss == "abstract":
                return sp.S.Zero  # the hand-written loss reads no label then
            if name in ("Y", "G"):
                return targets[_flat(at, model, sizes)]
            if name in per_token:
                at = (bag[at[0]],) + tuple(at[1:])
            return setting.symbol((name, tuple(at)))
        constants = {k: v for k, v in sizes.items() if k in set(model.constants)}
        writer = WRITTEN_BY_HAND.get(model.name)
        if writer is not None:
            written = writer(sizes, model.loss, value)
        else:
            written = Expansion(model, sizes, value)
        return written.loss.xreplace(constants), targets

    def rates(self, coefficients: dict) -> list:
        """``R = Σ_θ ∂Q/∂θ · ∂ℓ/∂θ`` of every (sentence, target), in its own field."""
        from symbolic.discover import _gradient_at
        gradient = _gradient_at(coefficients, self.point, len(self.point))
        reads = [k for k, g in enumerate(gradient) if g]
        out = []
        for loss, grads, samples in self.sentences:
            for k in reads:
                if k not in grads:
                    grads[k] = (sp.diff(loss, self.symbols[k])
                                if self.symbols[k] in loss.free_symbols else sp.S.Zero)
            for sample in samples:
                out.append(sample.rate({k: gradient[k] for k in reads}, grads))
        return out

    def conserved(self, coefficients: dict) -> bool:
        """Whether every field's ``R`` is the zero element (so ``dQ/dτ = 0`` at the point for
        every data set of these sentences)."""
        return all(rate == 0 for rate in self.rates(coefficients))


#: Rebuilds of one sample's field (a finer ``E``, more generators) before the check gives up.
RESTARTS = 12


class _Sample:
    """One (sentence, target): its field, rebuilt with a finer ``E`` or more generators when
    an entry asks (every value is then computed again)."""

    def __init__(self, point, data):
        self.point, self.denominator = point, 1
        self.generators = 2 * (data + 1)  # a first guess: a field short of them asks for more
        self.field, self.values = _Field(point, 1, self.generators), {}

    def rate(self, slope: dict, grads: dict):
        import math
        for _ in range(RESTARTS + 1):  # the first field, then each one rebuilt
            try:
                total = self.field.zero
                for k, g in slope.items():
                    if k not in self.values:
                        self.values[k] = self.field(grads[k])
                    total += self.field.K(sp.QQ(g.numerator, g.denominator)) * self.values[k]
                return total
            except _Restart as need:
                self.denominator = math.lcm(self.denominator, need.denominator)
                self.generators = max(self.generators, need.generators)
                self.field = _Field(self.point, self.denominator, self.generators)
                self.values = {}
        raise ExactError(f"the exact check needed more than {RESTARTS} restarts")


def _flat(at, model, sizes) -> int:
    """The position of a target entry among :func:`symbolic.fields.target_entries`."""
    base = model.upstream if model.loss == "abstract" else model.data[0].base
    entries = target_entries(model, sizes)
    ref = base[tuple(at)] if at else base
    return entries.index(ref)


# --- matching the found laws -----------------------------------------------------------------

#: The explicit model a declared law is checked on: every size of the setting capped here
#: (words and sentence length too): a law declared at symbolic sizes is checked where the
#: exact arithmetic stays cheap, its instances at the counted sizes at fresh points.
CHECK_SIZE = 2


@dataclass
class DeclaredLaw:
    name: str
    text: str
    status: str          # what was checked, in words
    holds: bool
    instances: list = field(default_factory=list)   # coefficient dicts at the counted sizes
    exact: str = ""      # the explicit model the exact check ran on


@dataclass
class Matching:
    source: str
    declared: list       # DeclaredLaw
    explained: list      # found laws (SymPy) in the span of the declared components that hold
    unexplained: list    # found laws outside it (each verified at fresh points)
    declared_rank: int   # functionally independent declared components that hold
    seconds: float = 0.0


def small(setting, model):
    """The setting's configuration on ``model`` with every size capped at ``CHECK_SIZE``."""
    from symbolic.discover import ModelSetting
    sizes = tuple((n, min(v, CHECK_SIZE)) for n, v in setting.sizes)
    return ModelSetting(model, setting.trained, sizes, min(setting.words, CHECK_SIZE),
                        min(setting.max_len, CHECK_SIZE), setting.constants)


def exact_check(law, setting, cache: dict | None = None) -> tuple[bool, str]:
    """The exact check of every component of ``law`` on each of its models, with the
    setting's trained parameters, at capped sizes; ``(passed, where)`` (``cache``: the
    explicit models already built, by model)."""
    cache = {} if cache is None else cache
    where = []
    for model in law.models:
        check = small(setting, model)
        if model not in cache:
            cache[model] = ExactRates(check, None)
        rates = cache[model]
        inst = [as_coefficients(instance(law, check, c), check, {})
                for c in components(law, check)]
        inst = [q for q in inst if q]
        if not inst or not all(rates.conserved(q) for q in inst):
            return False, check.describe()
        where.append(check.describe())
    return True, "; ".join(where)


def match(setting, found, frozen_values: dict, fields) -> Matching:
    """Check each declared law exactly (:func:`exact_check`) and its instances at the
    counted sizes at fresh points, then every found law against their span (exactly over
    ℚ)."""
    from symbolic.discover import (
        VERIFIED,
        _functional_rank,
        _in_span,
        _residuals,
        products,
    )

    start = time.perf_counter()
    laws, source = declared_laws(setting)
    declared, span, built = [], [], {}
    for law in laws:
        text = sp.sstr(law.quantity)
        if not applies(law, setting):
            declared.append(DeclaredLaw(law.name, text, "not applicable (it needs "
                                        f"{', '.join(law.trained)} trained)", False))
            continue
        inst = [as_coefficients(instance(law, setting, c), setting, frozen_values)
                for c in components(law, setting)]
        inst = [q for q in inst if q]
        if not inst:
            declared.append(DeclaredLaw(law.name, text, "constant here (it reads no trained "
                                        "coordinate)", False))
            continue
        try:
            exact, where = exact_check(law, setting, built)
        except (ExactError, _Kink) as err:
            exact, where = False, f"not checked: {err}"
        worst = max(_residuals(fields, inst), default=0.0)
        fresh = worst <= VERIFIED
        ok = exact and fresh
        status = (f"proved at every size by `attnflow audit` ({_theorem(law)}); exact on "
                  f"the explicit model here, its {len(inst)} components verified at fresh "
                  f"points to {worst:.0e}" if ok else
                  f"NOT conserved: the exact check failed ({where})" if not exact else
                  f"NOT conserved here: residual {worst:.0e} at fresh points")
        declared.append(DeclaredLaw(law.name, text, status, ok, inst if ok else [], where))
        if ok:
            span += inst
    linear = [p for p in span if all(len(m) == 1 for m in p)]
    full = span + products(linear)
    explained, unexplained = [], []
    for law, cf in zip(found.laws, found.coefficients):
        (explained if _in_span(cf, full) else unexplained).append(law)
    rank = _functional_rank(span, fields) if span else 0
    return Matching(source, declared, explained, unexplained, rank,
                    time.perf_counter() - start)

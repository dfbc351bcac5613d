"""An exact check of a conservation statement on the model written out at small sizes.

For a statement "``Q`` is constant along the gradient flow of ``L``, with these parameters
trained (every parameter not named frozen), under these assumptions", at explicit sizes
(``d = d_key = C = H = 2``, three sentences, two topic words where the law speaks of them):

- the data set is concrete sentences (word ids and one-hot labels, or ``G = ∂ℓ/∂h`` for any
  loss of the context), the assumptions made concrete as data (:data:`SEMANTICS`), and
  ``L(θ) = (1/|D|) Σ_χ ℓ_χ`` an explicit SymPy expression in one plain symbol per parameter
  entry (:class:`symbolic.explicit.ExplicitDataset`);
- ``Q`` is written from the law's declaration at those sizes (``V[w, k]`` becomes the entry of
  word ``w``'s row, ``s[w]`` the explicit score ``Σ_r q_r κ_{w,r}``, sums expanded);
- the flow is ``θ̇ = −∂L/∂θ`` by ``sympy.diff`` on the trained entries (0 on frozen ones);
- at an exact random rational point, ``dQ/dτ = Σ_θ ∂Q/∂θ · θ̇`` must be exactly 0 for every
  component, and some parameter entry ``Q`` reads must move (``θ̇ ≠ 0``), so a law over
  parameters that do not train is no theorem.

Nothing here reads the index form, the derivation, a normaliser, an assumption's case
function or the conjecture reduction: only the law's quantity, its component indices, its
constants and the names (and frozen / trained parameters) of its assumptions.

How "exactly 0" is decided (:class:`_Field`). At a rational point every score is rational, so
``e^s`` is a power of ``E = e^{1/D}`` (``D`` the common denominator of every rational exponent
met); ``E`` is transcendental (Lindemann), so a rational function of ``E`` with rational
coefficients vanishes at ``E`` only if it is identically 0: this part of the decision is exact
both ways. An exponential of a non-rational value (the logits ``e^{z_c}``, whose ``z_c``
depend on the attention) and a logarithm are each replaced by a new positive generator ``Z``
(one per distinct value); every value is computed bottom-up as an element of the rational
function field ``ℚ(E, Z₁, …)`` (canonical: numerator and denominator cancelled). A result
that is the zero element is 0 at the true values of ``Z`` too, since they are a substitution
into an identity; a non-zero element is only "not shown 0", so taking the ``Z`` as
independent can fail a true statement but never pass a false one. Each sentence's part
``R_χ = Σ_θ ∂Q/∂θ·∂ℓ_χ/∂θ`` is computed in a field of its own logits; ``dQ/dτ =
−(1/|D|) Σ_χ R_χ`` is 0 when every ``R_χ`` is the zero element (else its enclosure at the
true values is reported, certified non-zero where it excludes 0). A ReLU ``max(u, 0)`` and
its derivative ``H(u)`` are decided by the sign of ``u``, certified by interval arithmetic
(``mpmath.iv``); so is "θ̇ ≠ 0" (a point at a ReLU kink is redrawn).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
from dataclasses import dataclass

import sympy as sp
from mpmath import iv
from sympy.polys.domains import QQ
from sympy.polys.fields import field as rational_field

from symbolic import laws as SL
from symbolic.explicit import ExplicitAttentionDataset, ExplicitDataset, Sentence, Sizes
from symbolic.indexform import kind_of
from symbolic.model import CLASS, EMBED, HIDDEN, KEY, C, H, L, Model, d, d_key

#: Explicit sizes (tokens is not read: each sentence has its own length).
SIZES = Sizes(3, 2, 2, 2, 2)
#: Values of the random point: the query and the keys (they set the scores, whose
#: exponentials are powers of E) ± these, so every score is in ¹⁄₁₆ℤ and |s| ≤ 2; every other
#: entry ± k/8 for k = 1…16 (no entry 0, few coincidences such as two equal entries).
SCORE_VALUES = tuple(sp.Rational(n, 4) for n in (1, 2, 3, 4))
VALUES = tuple(sp.Rational(n, 8) for n in range(1, 17))
#: Points tried before giving up (a point is redrawn when a ReLU sits at its kink).
ATTEMPTS = 4
#: Decimal digits of the interval enclosures that certify signs.
DIGITS = 40

#: Word ids and labels without the topic structure: every word in some sentence, a word at
#: two tokens of one sentence, sentences of two lengths.
SENTENCES = (((0, 1), 0), ((2, 0, 2), 1), ((1, 2), 1))
WORDS = 3
#: Under A3: topic words 0 and 1, non-topic words 2 and 3, m = 2 non-topic tokens per
#: sentence; every sentence holds exactly one topic word, at each position once.
TOPIC_WORDS, NON_TOPIC_WORDS, M = (0, 1), (2, 3), 2
TOPIC_SENTENCES = (((0, 2, 3), 0), ((3, 1, 2), 1), ((2, 2, 0), 1))
#: G = ∂ℓ/∂h of each sentence, for any loss of the context: no two sentences holding the
#: same topic word cancel (their a_p is the same under A2).
G_VALUES = tuple(tuple(sp.Rational(x, 2) for x in g) for g in ((1, -3), (2, 1), (3, 2)))

#: What each assumption a law may name states (in the theorem's statement), and what it is
#: made into, as data of the check. Assumptions that only freeze or train parameters state
#: it through the statement's trained and frozen lists.
MEANING = {
    "A3": "every sentence holds the topic word w at most once and exactly m non-topic words "
          "(L = m + 1 tokens)",
    "A2": "every non-topic embedding is 0 and every non-topic score equals a common constant "
          "c, which does not move",
    "Y": "every label is one-hot",
    "N": "Π is a constant matrix whose rows meet every class row of U equally at the start "
         "(Σ_k Π[l,k] U[c,k] = β_l for every class c)",
}
SEMANTICS = {
    "T": "the parameters it names train (as every parameter not named frozen does)",
    "A1": "the query is frozen",
    "FC": "the classifier is frozen",
    "A3": f"sentences of m = {M} non-topic words and exactly one topic word (topic words "
          f"{', '.join(map(str, TOPIC_WORDS))}; the law's word ranges over them)",
    "A2": "every non-topic embedding is 0 and every non-topic key gives the same score c",
    "Y": "labels are one-hot (a class per sentence)",
    "N": "Π's rows are random rational combinations of the directions orthogonal to every "
         "U_c − U_0 (so each meets every class row equally); U must not move",
}


class ExactError(ValueError):
    """The statement cannot be checked exactly as given (an unknown assumption, a symbol with
    no value at the explicit sizes, an unsupported function)."""


class _Kink(Exception):
    """A ReLU's input is 0 at this point, or its sign is not certified: draw another."""


# --- what one check found ----------------------------------------------------------------

@dataclass(frozen=True)
class Instance:
    """The exact check on one explicit model: per component, ``dQ/dτ`` as an element of
    ``ℚ(E, Z…)`` and the parameter entry read by ``Q`` that moves (or None)."""

    label: str
    rates: tuple            # (component label, ((R_χ per sentence), what their sum is))
    moving: tuple           # (component label, "name[index]" or None)
    persists: tuple = ()    # (relation label, (R_χ…)): relations stated at the start
    values: str = ""        # the point, briefly


@dataclass(frozen=True)
class ExactCheck:
    """Everything an exact check computed, and the statement it checked."""

    statement: str
    instances: tuple = ()
    problems: tuple = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return judge(self)[0]


def judge(result: ExactCheck) -> tuple[bool, str]:
    """Whether every ``dQ/dτ`` is the zero element, every relation stated at the start does
    not move, and every component that reads a parameter reads one that moves."""
    if result.problems:
        return False, "; ".join(result.problems)
    if not result.instances:
        return False, "no explicit model was checked"
    for inst in result.instances:
        for label, (rates, total) in inst.rates:
            if any(rate != 0 for rate in rates):
                return False, (f"{inst.label}: at component {label}, {total} "
                               f"({inst.values})")
        for label, (rates, _) in inst.persists:
            if any(rate != 0 for rate in rates):
                return False, (f"{inst.label}: {label} moves along the flow, so the assumption "
                               f"stated at the start does not hold at every τ")
        if not inst.rates:
            return False, f"{inst.label}: Q reads no parameter in any component"
        still = [label for label, entry in inst.moving if entry is None]
        if still:
            return False, (f"{inst.label}: no parameter entry Q reads moves at component(s) "
                           f"{', '.join(still)} — a law over parameters that do not move is "
                           f"no theorem")
    counts = ", ".join(f"{inst.label}: {len(inst.rates)} component(s)"
                       for inst in result.instances)
    return True, (f"dQ/dτ = Σ ∂Q/∂θ·(−∂L/∂θ) is exactly 0 and a parameter Q reads moves, on "
                  f"the explicit model at exact rational points ({counts})")


# --- the statement, from the content that is checked ---------------------------------------

def trained_names(law: SL.Law, model: Model, trained=None) -> tuple[str, ...]:
    """The parameters that train: ``trained`` exactly (the MLP's ``classifier`` standing for
    its four arrays) when given, else every parameter of ``model`` not named frozen."""
    names = [p.name for p in model.params]
    if trained is not None:
        wanted = set(_expand(trained, model))
        return tuple(n for n in names if n in wanted)
    frozen = set(_expand(law.frozen, model))
    return tuple(n for n in names if n not in frozen)


def _expand(names, model: Model):
    arrays = [p.name for p in model.params
              if p.name in ("hidden_weight", "hidden_bias", "output_weight", "output_bias")]
    for name in names:
        if name == "classifier" and arrays:
            yield from arrays
        else:
            yield name


def statement(law: SL.Law, trained=None) -> str:
    """What the exact check (and the theorem) states, built from the declaration it reads:
    the quantity, the models, which parameters train and which are frozen, the assumptions
    it makes data (in its own words, :data:`MEANING`, not the declaration's prose)."""
    parts = []
    for model in law.models:
        names = trained_names(law, model, trained)
        frozen = [p.name for p in model.params if p.name not in names]
        parts.append(f"{_where(model)}: trained {', '.join(names) or 'nothing'}; frozen "
                     f"{', '.join(frozen) or 'nothing'}")
    assumptions = [f"{x.name} ({MEANING[x.name]})" for x in law.assumptions
                   if x.name in MEANING and (x.cases or x.values)]
    quantity = sp.sstr(law.a) + (f" − ({sp.sstr(law.b)})" if law.b != 0 else "")
    text = (f"Q = {quantity} is constant along the gradient flow "
            f"dθ/dτ = −∇L(θ), L = (1/|D|) Σ_χ ℓ_χ, on " + "; on ".join(parts))
    if assumptions:
        text += (", at every state where " + "; ".join(assumptions)
                 + (" hold" if len(assumptions) > 1 else " holds"))
    return text.replace(str(SL.QQ), "‖q‖²") + "."


def _where(model: Model) -> str:
    """The model and loss a statement speaks of."""
    if model.name == "paper":
        return ("any loss of the context h (G = ∂ℓ/∂h arbitrary per sentence)"
                if model.loss == "abstract" else
                f"the {model.classifier} classifier with cross-entropy and one-hot labels")
    last = model.nodes[-1].name
    return {"abstract": f"the {model.name} model with any loss of {last} (G = ∂ℓ/∂{last} "
                        f"arbitrary per sentence)",
            "cross-entropy": f"the {model.name} model with cross-entropy and one-hot labels",
            "squared-error": f"the {model.name} model with squared error against one-hot "
                             f"labels"}[model.loss]


# --- the check ---------------------------------------------------------------------------

def confirm(verdict, trained=None) -> None:
    """Keep a conjecture's PROVED only if the exact check of its law passes (the kernel's own
    step ``exact`` when the audit kernel proved it; else the check along ``trained``, or the
    law's trainable set): the outcome goes in ``verdict.exact`` and its steps."""
    kernel = getattr(verdict, "kernel", None)
    ran = [s.value for s in getattr(kernel, "steps", ()) if s.step.kind == "exact"]
    result = ran[0] if ran and trained is None else check_law(verdict.law, trained)
    ok, detail = judge(result)
    verdict.exact = result
    verdict.steps.append((f"exact check on the explicit model [{'passed' if ok else 'failed'}]"
                          f": {result.statement}", detail))
    if not ok:
        verdict.proved, verdict.method, verdict.kernel = False, "", None

def check_law(law: SL.Law, trained=None, seed: int = 1) -> ExactCheck:
    """The exact check of ``law`` on each of its models (``trained``: the exact trainable set;
    default every parameter not named frozen)."""
    import time
    start = time.perf_counter()
    text = statement(law, trained)
    try:
        instances = tuple(_check_model(law, model, trained, seed) for model in law.models)
    except ExactError as exc:
        return ExactCheck(text, (), (str(exc),), time.perf_counter() - start)
    return ExactCheck(text, instances, (), time.perf_counter() - start)


def _check_model(law: SL.Law, model: Model, trained, seed: int) -> Instance:
    names = _assumption_names(law)
    if "A2" in names and "A3" not in names:
        raise ExactError("A2 (non-topic words) is stated without A3 (which words are topic "
                         "words): nothing to make concrete")
    # E = e^{1/16} and one generator per logit of each sentence suffice for the data sets
    # here; a finer E or more generators start the point over
    denominator = 16
    generators = 0 if model.loss == "abstract" else SIZES.classes
    at_point = _at_point if model.name == "paper" else _at_point_described
    still = None
    for attempt in range(ATTEMPTS):
        while True:
            try:
                found = at_point(law, model, trained, seed + 7919 * attempt, names,
                                 denominator, generators)
            except _Restart as need:
                denominator = math.lcm(denominator, need.denominator)
                generators = max(generators, need.generators)
                continue
            except _Kink:
                break
            # a point where dQ/dτ ≠ 0 decides; one where nothing Q reads moves (every ReLU
            # of the sentences holding a word off, say) is tried again elsewhere
            if judge(ExactCheck("", (found,)))[0] or not _stands_still(found):
                return found
            still = found
            break
    if still is not None:
        return still
    raise ExactError(f"every one of {ATTEMPTS} points put a ReLU at its kink")


def _stands_still(found: Instance) -> bool:
    """Every rate is the zero element but some component reads nothing that moves."""
    return (all(rate == 0 for _, (rates, _) in found.rates + found.persists for rate in rates)
            and any(entry is None for _, entry in found.moving))


def _assumption_names(law: SL.Law) -> set[str]:
    names = set()
    for x in law.assumptions:
        if (x.cases or x.values) and (x.name not in SEMANTICS or x.name in ("T", "A1", "FC")):
            raise ExactError(f"assumption {x.name} has content the exact check cannot make "
                                 f"concrete as data (known: {', '.join(sorted(SEMANTICS))})")
        names.add(x.name)
    return names


def _data(model: Model, topic: bool) -> ExplicitDataset:
    """The explicit data set of ``model`` (with or without the topic structure of A3); built
    once per process: it is a function of these constants only."""
    if model.loss == "abstract":
        return _dataset("linear", "any", topic)
    return _dataset(model.classifier, "cross_entropy", topic)


@functools.cache
def _dataset(classifier: str, loss: str, topic: bool) -> ExplicitDataset:
    sentences, words = (TOPIC_SENTENCES, len(TOPIC_WORDS) + len(NON_TOPIC_WORDS)) if topic \
        else (SENTENCES, WORDS)
    if loss == "any":
        data = [Sentence(ws, g) for (ws, _), g in zip(sentences, G_VALUES)]
    else:
        data = [Sentence(ws, tuple(int(c == y) for c in range(SIZES.classes)))
                for ws, y in sentences]
    return ExplicitDataset(classifier, loss, SIZES, words, data)


def _draw(rng: random.Random, values=VALUES) -> sp.Rational:
    return rng.choice(values) * rng.choice((-1, 1))


def _point(data: ExplicitDataset, rng: random.Random) -> dict:
    """A random rational point: query entries of distinct sizes (q_r = ±q_t would make some
    false laws vanish there), scores from :data:`SCORE_VALUES`, hidden biases positive (most
    hidden units on: a point where none is moves nothing)."""
    point = {}
    for name in data.params:
        values = SCORE_VALUES if name in ("query", "keys") else VALUES
        for _, x in data.entries(name):
            point[x] = _draw(rng, values)
    query = [x for _, x in data.entries("query")]
    sizes = rng.sample(SCORE_VALUES, len(query))
    for x, size in zip(query, sizes):
        point[x] = size * rng.choice((-1, 1))
    for _, x in data.entries("hidden_bias") if "hidden_bias" in data.params else ():
        point[x] = abs(point[x])
    return point


def _at_point(law: SL.Law, model: Model, trained, seed: int, names: set,
              denominator: int, generators: int) -> Instance:
    rng = random.Random(seed)
    topic = "A3" in names
    data = _data(model, topic)
    point = _point(data, rng)
    constants = _assumptions_as_data(law, data, point, names, rng)
    train = trained_names(law, model, trained)
    trainable = {x for name in train if name in data.params for _, x in data.entries(name)}
    components = _component_values(law, data, topic)
    quantities = [(text, _explicit(law, data, at, constants)) for text, at in components]
    quantities = [(text, q) for text, q in quantities if q.free_symbols]
    relations = _persisting(law, data, constants, names)
    needed = set().union(set(), *(q.free_symbols for _, q in quantities + relations))
    needed &= trainable
    fields, slopes = _slopes(data, point, denominator, generators, needed)
    names_of = {x: f"{name}{list(at)}" for name in data.params for at, x in data.entries(name)}
    rates = tuple((text, _rates(q, fields, slopes)) for text, q in quantities)
    kept = tuple((text, _rates(rel, fields, slopes)) for text, rel in relations)
    moving = tuple((text, _moving(q, fields, slopes, names_of)) for text, q in quantities)
    return Instance(f"{_model_label(model)}, {_sizes_label(data, topic)}", rates, moving, kept,
                    f"seed {seed}, E = e^(1/{fields[0].denominator})")


#: Per data set and point: the sentences' fields and ∂ℓ_χ/∂θ in them (laws checked at the
#: same point share them; a few points are kept).
_AT_POINT: dict = {}


def _kept_fields(key, data, point: dict, denominator: int, generators: int):
    """The fields and slopes of ``data``'s sentences kept for ``key`` (the last eight
    points; ``data`` is kept beside them so that its ``id`` in the key stays its own)."""
    if key not in _AT_POINT:
        if len(_AT_POINT) >= 8:
            _AT_POINT.pop(next(iter(_AT_POINT)))
        _AT_POINT[key] = ([_Field(point, denominator, generators) for _ in data.losses],
                          [{} for _ in data.losses], data)
    fields, slopes, _ = _AT_POINT[key]
    return fields, slopes


def _slopes(data: ExplicitDataset, point: dict, denominator: int, generators: int, needed):
    """One field per sentence (its rate ``R_χ = Σ_θ ∂Q/∂θ·∂ℓ_χ/∂θ`` reads only its own
    logits, and ``dQ/dτ = −(1/|D|) Σ_χ R_χ`` is 0 when every ``R_χ`` is the zero element),
    and ``∂ℓ_χ/∂θ`` (``sympy.diff``) at the point in it for every needed entry ``θ``."""
    key = (id(data), tuple(sorted(point.items(), key=lambda kv: kv[0].name)), denominator,
           generators)
    fields, slopes = _kept_fields(key, data, point, denominator, generators)
    for chi, (f, loss) in enumerate(zip(fields, data.losses)):
        for x in sorted(needed & loss.free_symbols, key=sp.default_sort_key):
            if x not in slopes[chi]:
                slopes[chi][x] = f(data.gradient(chi, x))
    return fields, [{x: v for x, v in slope.items() if x in needed} for slope in slopes]


def _rates(q, fields, slopes) -> tuple:
    """``R_χ = Σ_θ ∂Q/∂θ · ∂ℓ_χ/∂θ`` per sentence, over the trained entries ``Q`` reads, and
    (when one is not the zero element) ``dQ/dτ = −(1/|D|) Σ_χ R_χ`` enclosed at the true
    values."""
    parts = []
    for f, slope in zip(fields, slopes):
        rate = f.zero
        for x, value in slope.items():
            if x in q.free_symbols:
                rate += f(sp.diff(q, x)) * value
        parts.append(rate)
    if all(rate == 0 for rate in parts):
        return tuple(parts), ""
    with _precision():
        total = -sum((f.enclose(rate) for f, rate in zip(fields, parts)), iv.mpf(0)) \
            / len(parts)
        mid = float(total.a)
        certain = total.a > 0 or total.b < 0
    return tuple(parts), (f"dQ/dτ = {mid:.3g}, certified ≠ 0" if certain else
                          "dQ/dτ is not shown 0 (enclosure contains 0)")


def _moving(q, fields, slopes, names_of) -> str | None:
    """An entry ``Q`` reads whose velocity ``θ̇ = −(1/|D|) Σ_χ ∂ℓ_χ/∂θ`` is certified
    non-zero (interval arithmetic at the true values), named; or None."""
    for x in sorted(q.free_symbols, key=sp.default_sort_key):
        parts = [(f, slope[x]) for f, slope in zip(fields, slopes) if x in slope]
        if parts and _certified_nonzero(parts):
            return names_of[x]
    return None


def _certified_nonzero(parts) -> bool:
    """Whether ``Σ`` of field elements (each in its own field) is certified non-zero."""
    if all(value == 0 for _, value in parts):
        return False
    with _precision():
        total = iv.mpf(0)
        for f, value in parts:
            total += f.enclose(value)
        return bool(total.a > 0 or total.b < 0)


def _model_label(model: Model) -> str:
    if model.name != "paper":
        last = model.nodes[-1].name
        return {"abstract": f"{model.name}, any loss of {last}",
                "cross-entropy": f"{model.name}, cross-entropy",
                "squared-error": f"{model.name}, squared error"}[model.loss]
    return ("any loss of the context" if model.loss == "abstract"
            else f"{model.classifier} classifier, cross-entropy")


def _sizes_label(data: ExplicitDataset, topic: bool) -> str:
    n = data.n
    text = (f"{data.words} words, {len(data.sentences)} sentences, d = {n.d}, "
            f"d_key = {n.d_key}")
    if data.loss_kind == "cross_entropy":
        text += f", C = {n.classes}" + (f", H = {n.hidden}" if "hidden_weight" in data.params
                                        else "")
    return text + (f", m = {M}" if topic else "")


# --- a model of the catalogue written by hand: the self-attention family --------------------
#
# The multi-head model (``symbolic.explicit.ExplicitAttention``, written by hand, not from its
# description) over two sentences of two lengths, a word twice in one of them, every size the
# laws read at 2. The entries that set the scores (embeddings, query and key matrices) are
# ±1/2 or ±1 and τ = 2, so every score lies in ¹⁄₃₂ℤ with a small numerator (E = e^{1/32}
# stays of low degree); every other entry ±k/8 as for the paper's model.

#: Sizes of the written-out multi-head model (each sentence has its own length L).
ATTENTION_SIZES = {"d": 2, "d_head": 2, "heads": 2, "C": 2}
ATTENTION_WORDS = 3
#: Word ids and labels of the sentences; and G = ∂ℓ/∂z of each for any loss of the logits.
ATTENTION_SENTENCES = (((0, 1), 0), ((2, 0, 2), 1))
ATTENTION_G = tuple(tuple(sp.Rational(x, 2) for x in g) for g in ((1, -3), (2, 1)))
#: The parameters whose entries set the scores, and the values they take at the point.
SCORE_PARAMS = ("embeddings", "head_query", "head_key")
SCORE_ENTRIES = (sp.Rational(1, 2), sp.Integer(1))
TEMPERATURE = sp.Integer(2)
#: The assumptions a law of the self-attention family may state: what trains, one-hot labels.
ATTENTION_ASSUMPTIONS = ("T", "Y")


@functools.cache
def _attention_dataset(loss: str) -> ExplicitAttentionDataset:
    if loss == "abstract":
        data = [Sentence(ws, g) for (ws, _), g in zip(ATTENTION_SENTENCES, ATTENTION_G)]
    else:
        data = [Sentence(ws, tuple(int(c == y) for c in range(ATTENTION_SIZES["C"])))
                for ws, y in ATTENTION_SENTENCES]
    return ExplicitAttentionDataset(ATTENTION_SIZES, loss, ATTENTION_WORDS, data)


def _described_data(law: SL.Law, model: Model, names: set) -> ExplicitAttentionDataset:
    """The explicit data set of a model other than the paper's: only the self-attention
    family is written by hand; a law of it may state only what trains and one-hot labels."""
    if model.name != "multi-head":
        raise ExactError(f"the {model.name} model has no writing by hand for the exact check "
                         f"(the paper's model and multi-head have)")
    other = sorted(names - set(ATTENTION_ASSUMPTIONS))
    if other:
        raise ExactError(f"assumption(s) {', '.join(other)} speak of the paper's model; a law "
                         f"of {model.name} may state {', '.join(ATTENTION_ASSUMPTIONS)}")
    if law.constants:
        raise ExactError(f"law {law.name} reads constants of the run "
                         f"({', '.join(map(str, law.constants))}), which the exact check of "
                         f"{model.name} does not make concrete")
    return _attention_dataset(model.loss)


def _attention_point(data: ExplicitAttentionDataset, rng: random.Random) -> dict:
    point = {data.tau: TEMPERATURE}
    for name in data.params:
        values = SCORE_ENTRIES if name in SCORE_PARAMS else VALUES
        for _, x in data.entries(name):
            point[x] = _draw(rng, values)
    return point


def _described_sizes(data: ExplicitAttentionDataset) -> dict:
    """Size symbol → value (``L`` has none: each sentence has its own length)."""
    from symbolic.models.attention import d_head, heads
    n = data.n
    return {d: sp.Integer(n["d"]), d_head: sp.Integer(n["d_head"]),
            heads: sp.Integer(n["heads"]), C: sp.Integer(n["C"]),
            SL.n_words: sp.Integer(data.words)}


def _described_components(law: SL.Law, data) -> list:
    sizes = _described_sizes(data)
    ranges = []
    for index in law.components:
        kind = kind_of(index)
        size = kind.size.xreplace(sizes)
        if not size.is_Integer:
            raise ExactError(f"component index {index} ranges over {kind.size}, which has no "
                             f"value at the explicit sizes")
        ranges.append(tuple(range(int(size))))
    return [(", ".join(f"{i}={v}" for i, v in zip(law.components, at)) or "Q",
             dict(zip(law.components, at))) for at in itertools.product(*ranges)]


def _described_explicit(law: SL.Law, model: Model, data, component: dict):
    """``Q`` at one component, sums expanded, every entry the data set's symbol (a per-token
    parameter read at a word is that word's row)."""
    expr = law.quantity.xreplace(component).xreplace(_described_sizes(data)).doit()
    params = {p.base: p.name for p in model.params}

    def entry(ref):
        if ref.base not in params:
            raise ExactError(f"Q reads {ref}, which is no parameter of {model.name}")
        if not all(x.is_Integer for x in ref.indices):
            raise ExactError(f"Q reads {ref} at an index that is not a number after "
                             f"expanding sums")
        return _lookup(data.params[params[ref.base]], tuple(int(x) for x in ref.indices), ref)
    expr = expr.replace(lambda x: isinstance(x, sp.Indexed), entry)
    known = {x for name in data.params for _, x in data.entries(name)}
    undefined = expr.free_symbols - known
    if undefined:
        raise ExactError(f"Q reads {', '.join(sorted(map(str, undefined)))}, which has no "
                         f"value in the explicit model")
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ExactError(f"Q is undefined at the explicit sizes ({sp.sstr(expr)[:80]})")
    return expr


def _described_slopes(data, point: dict, denominator: int, generators: int, needed):
    """One field per sentence and ``∂ℓ_χ/∂θ`` at the point in it for every needed entry θ:
    ``sympy.diff`` by θ of the sentence's loss with every other entry at its value (the
    same partial derivative, on an expression of one variable)."""
    key = ("described", id(data), tuple(sorted(point.items(), key=lambda kv: kv[0].name)),
           denominator, generators)
    fields, slopes = _kept_fields(key, data, point, denominator, generators)
    for chi, (f, loss) in enumerate(zip(fields, data.losses)):
        todo = sorted(needed & loss.free_symbols - set(slopes[chi]), key=sp.default_sort_key)
        if not todo:
            continue
        # the entries not differentiated here at their values once, then the others but x
        rest = loss.xreplace({y: v for y, v in point.items() if y not in todo})
        for x in todo:
            alone = rest.xreplace({y: point[y] for y in todo if y != x})
            slopes[chi][x] = f(sp.diff(alone, x))
    return fields, [{x: v for x, v in slope.items() if x in needed} for slope in slopes]


def _at_point_described(law: SL.Law, model: Model, trained, seed: int, names: set,
                        denominator: int, generators: int) -> Instance:
    data = _described_data(law, model, names)
    denominator = math.lcm(denominator, 32)
    if model.loss == "cross-entropy":
        generators = max(generators, ATTENTION_SIZES["C"] + 1)
    rng = random.Random(seed)
    point = _attention_point(data, rng)
    train = trained_names(law, model, trained)
    trainable = {x for name in train for _, x in data.entries(name)}
    quantities = [(text, _described_explicit(law, model, data, at))
                  for text, at in _described_components(law, data)]
    quantities = [(text, q) for text, q in quantities if q.free_symbols]
    needed = set().union(set(), *(q.free_symbols for _, q in quantities)) & trainable
    fields, slopes = _described_slopes(data, point, denominator, generators, needed)
    names_of = {x: f"{name}{list(at)}" for name in data.params for at, x in data.entries(name)}
    rates = tuple((text, _rates(q, fields, slopes)) for text, q in quantities)
    moving = tuple((text, _moving(q, fields, slopes, names_of)) for text, q in quantities)
    lengths = " and ".join(str(len(ws)) for ws, _ in ATTENTION_SENTENCES)
    sizes = ", ".join(f"{k} = {v}" for k, v in data.n.items())
    return Instance(f"{_model_label(model)}, {data.words} words, {len(data.sentences)} "
                    f"sentences of {lengths} tokens, {sizes}, τ = {TEMPERATURE}", rates,
                    moving, (), f"seed {seed}, E = e^(1/{fields[0].denominator})")


# --- the assumptions as data -----------------------------------------------------------------

def _assumptions_as_data(law, data: ExplicitDataset, point: dict, names: set, rng) -> dict:
    """Change the point (in place) so the assumptions hold, and return the constants they
    define: ``m`` (A3), ``c`` (A2), ``Π`` (N)."""
    constants: dict = {}
    if "A3" in names:
        constants[SL.m] = sp.Integer(M)
    if "A2" in names:
        c = sum(_draw(rng, SCORE_VALUES) * _draw(rng, SCORE_VALUES) for _ in range(2))
        q = data.params["query"]
        for w in NON_TOPIC_WORDS:
            for x in data.params["embeddings"][w]:
                point[x] = sp.S.Zero
            keys = data.params["keys"][w]
            partial = sum(point[qr] * point[kr] for qr, kr in zip(q[:-1], keys[:-1]))
            point[keys[-1]] = (c - partial) / point[q[-1]]
        constants[SL.c] = c
    if "N" in names:
        constants[SL.Pi] = _directions(data, point, rng)
    return constants


def _directions(data: ExplicitDataset, point: dict, rng) -> list:
    """Π (d × d): each row a random rational combination of the directions orthogonal to
    every ``U_c − U_0`` at the point's ``U`` (``N``: each row meets every class row
    equally)."""
    if "classifier" not in data.params:
        raise ExactError("N speaks of the linear classifier U, which this model does not have")
    rows = [[point[x] for x in row] for row in data.params["classifier"]]
    null = sp.Matrix([[a - b for a, b in zip(row, rows[0])] for row in rows[1:]]).nullspace()
    if not null:
        raise ExactError("no direction meets every class row equally at these sizes")
    rows = []
    for _ in range(data.n.d):
        weights = [_draw(rng) for _ in null]
        rows.append([sum(w * n[k] for w, n in zip(weights, null)) for k in range(data.n.d)])
    return rows


def _persisting(law, data, constants, names) -> list:
    """Relations an assumption states at the start (N: ``Σ_k Π[l,k] U[c,k]``, the same for
    every class) with the entries they read: along the flow they must not move."""
    if "N" not in names:
        return []
    pi, table = constants[SL.Pi], data.params["classifier"]
    return [(f"Σ_k Π[{row},k] U[{c},k]",
             sum(pi[row][k] * table[c][k] for k in range(data.n.d)))
            for row in range(data.n.d) for c in range(data.n.classes)]


# --- Q written out at the explicit sizes -------------------------------------------------------

_BASES = {"V": "embeddings", "K": "keys", "q": "query", "U": "classifier",
          "W1": "hidden_weight", "b1": "hidden_bias", "W2": "output_weight",
          "b2": "output_bias"}


def _component_values(law: SL.Law, data: ExplicitDataset, topic: bool) -> list:
    """Every assignment of the law's component indices at the explicit sizes."""
    ranges = []
    for index in law.components:
        kind = kind_of(index)
        if kind is SL.WORD:
            ranges.append(TOPIC_WORDS if topic else tuple(range(data.words)))
        elif kind in (EMBED, KEY, CLASS, HIDDEN):
            ranges.append(tuple(range(int(kind.size.xreplace(_size_values(data))))))
        else:
            raise ExactError(f"component index {index} is not a word, embedding, key, class "
                             f"or hidden index")
    return [(", ".join(f"{i}={v}" for i, v in zip(law.components, at)) or "Q",
             dict(zip(law.components, at))) for at in itertools.product(*ranges)]


def _size_values(data: ExplicitDataset) -> dict:
    n = data.n
    return {size: sp.Integer(value) for size, value in
            ((d, n.d), (d_key, n.d_key), (C, n.classes), (H, n.hidden), (SL.n_words, data.words))}


def _explicit(law: SL.Law, data: ExplicitDataset, component: dict, constants: dict):
    """``Q`` at one component, every sum expanded and every entry a plain symbol of ``data``."""
    expr = law.quantity.xreplace(component)
    expr = expr.xreplace({SL.QQ: sum(x ** 2 for x in data.params["query"])})
    sizes = _size_values(data)
    if SL.m in constants:
        sizes[L] = constants[SL.m] + 1
    expr = expr.xreplace(sizes).xreplace({k: v for k, v in constants.items()
                                          if isinstance(k, sp.Symbol)}).doit()
    expr = expr.replace(lambda x: isinstance(x, sp.Indexed), lambda x: _entry(x, data, constants))
    undefined = expr.atoms(sp.Symbol) - {x for name in data.params
                                         for _, x in data.entries(name)}
    if undefined:
        raise ExactError(f"Q reads {', '.join(sorted(map(str, undefined)))}, which has no "
                         f"value in the explicit model under the law's assumptions")
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ExactError(f"Q is undefined at the explicit sizes ({sp.sstr(expr)[:80]})")
    return expr


def _entry(ref, data: ExplicitDataset, constants: dict):
    """One entry of an array ``Q`` reads: a parameter's symbol, the explicit score of a word,
    or a constant's value."""
    at = ref.indices
    if not all(x.is_Integer for x in at):
        raise ExactError(f"Q reads {ref} at an index that is not a number after expanding sums")
    at = tuple(int(x) for x in at)
    base = str(ref.base)
    if ref.base in constants:
        return _lookup(constants[ref.base], at, ref)
    if base == "s" and len(at) == 1 and at[0] < data.words:
        return data.score(at[0])
    if base in _BASES and _BASES[base] in data.params:
        return _lookup(data.params[_BASES[base]], at, ref)
    raise ExactError(f"Q reads {ref}, which the explicit model does not have")


def _lookup(table, at, ref):
    try:
        for i in at:
            if i < 0:
                raise IndexError(i)
            table = table[i]
    except (IndexError, TypeError):
        raise ExactError(f"Q reads {ref}, outside the explicit sizes") from None
    if isinstance(table, list):
        raise ExactError(f"Q reads {ref} with too few indices")
    return table


# --- exact arithmetic at the point -------------------------------------------------------------

class _Restart(Exception):
    """Start over with a finer ``E`` (a rational exponent's denominator does not divide
    ``E``'s) or more generators ``Z`` (more transcendental values than foreseen)."""

    def __init__(self, denominator: int = 1, generators: int = 0):
        self.denominator, self.generators = denominator, generators


class _Field:
    """Values at the point in ``ℚ(E, Z₁, …)``: ``e^r = E^{rD}`` for rational ``r``
    (``E = e^{1/D}``), a new generator ``Z`` per distinct non-rational exponential or
    logarithm (see the module docstring for why this is sound). Values are computed
    bottom-up over the expression's DAG, each once."""

    def __init__(self, point: dict, denominator: int, generators: int):
        self.point = point
        self.denominator = denominator
        names = ",".join(["E"] + [f"Z{k}" for k in range(generators)])
        self.K, self.E, *self.Z = rational_field(names, QQ)
        self.zero = self.K(0)
        self.memo: dict = {}
        self.generators: list = []           # (generator, kind, key element)
        self.keys: dict = {}
        self.values = {x: self.K(QQ(int(v.p), int(v.q))) for x, v in self.point.items()}

    def __call__(self, expr):
        return self._value(sp.sympify(expr))

    def _value(self, x):
        known = self.memo.get(x)
        if known is not None:
            return known
        if x.is_Symbol:
            if x not in self.values:
                raise ExactError(f"{x} has no value at the point")
            out = self.values[x]
        elif x.is_Rational:
            out = self.K(QQ(int(x.p), int(x.q)))
        elif x.is_Add:
            out = self.zero
            for term in x.args:
                out = out + self._value(term)
        elif x.is_Mul:
            out = self.K(1)
            for term in x.args:
                out = out * self._value(term)
        elif x.is_Pow and x.exp.is_Integer:
            out = self._value(x.base) ** int(x.exp)
        elif isinstance(x, sp.exp):
            out = self._exp(self._value(x.args[0]))
        elif isinstance(x, sp.log):
            out = self._generator("log", self._value(x.args[0]))
        elif isinstance(x, sp.Max) and len(x.args) == 2 and 0 in x.args:
            (u,) = [a for a in x.args if a != 0]
            value = self._value(u)
            out = value if self._sign(value) > 0 else self.zero
        elif isinstance(x, sp.Heaviside):
            out = self.K(1) if self._sign(self._value(x.args[0])) > 0 else self.zero
        else:
            raise ExactError(f"the exact check does not evaluate {type(x).__name__} "
                             f"({sp.sstr(x)[:60]})")
        self.memo[x] = out
        return out

    def _exp(self, value):
        if value.numer.is_ground and value.denom.is_ground:
            r = QQ.to_sympy(value.numer.LC) / QQ.to_sympy(value.denom.LC)
            times = r * self.denominator
            if not times.is_Integer:
                raise _Restart(denominator=int(sp.Rational(r).q))
            return self.E ** int(times)
        return self._generator("exp", value)

    def _generator(self, kind: str, key):
        if (kind, key) not in self.keys:
            if len(self.generators) == len(self.Z):
                raise _Restart(generators=2 * len(self.Z) + 1)
            if kind == "log" and not self._sign(key) > 0:
                raise ExactError("a logarithm of a value not shown positive")
            self.keys[(kind, key)] = self.Z[len(self.generators)]
            self.generators.append((self.Z[len(self.generators)], kind, key))
        return self.keys[(kind, key)]

    # certified signs, by interval arithmetic at the true values of E and the Z

    def _enclosures(self) -> list:
        with _precision():
            values = [iv.exp(iv.mpf(1) / self.denominator)]
            for _, kind, key in self.generators:
                inner = self._enclose(key, values)
                values.append(iv.exp(inner) if kind == "exp" else iv.log(inner))
        return values

    def _enclose(self, element, values):
        with _precision():
            return _poly_iv(element.numer, values) / _poly_iv(element.denom, values)

    def enclose(self, element):
        """An interval holding ``element`` at the true values of ``E`` and the ``Z``."""
        return self._enclose(element, self._enclosures())

    def _sign(self, element) -> int:
        if element == 0:
            raise _Kink()
        with _precision():
            box = self._enclose(element, self._enclosures())
            if box.a > 0:
                return 1
            if box.b < 0:
                return -1
        raise _Kink()



@contextlib.contextmanager
def _precision():
    """``DIGITS`` decimal digits for ``mpmath.iv`` within the block (its context is global)."""
    saved = iv.prec
    iv.dps = DIGITS
    try:
        yield
    finally:
        iv.prec = saved


def _poly_iv(poly, values):
    """A polynomial of ``ℚ[E, Z…]`` evaluated on intervals (generators as ``values``)."""
    total = iv.mpf(0)
    for monomial, coeff in poly.terms():
        term = iv.mpf(QQ.to_sympy(coeff).p) / QQ.to_sympy(coeff).q
        for k, power in enumerate(monomial):
            if power:
                term *= values[k] ** power
        total += term
    return total

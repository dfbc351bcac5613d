"""The assumptions' case functions are exact where their hypotheses hold.

A law's assumption applies its hypothesis to the rate through a case function (Python: A3's
``ω[i, w] = δ_ip`` or ``0``, A2's non-topic embeddings and scores, the one-hot label's
``Σ_c Y_c = 1``, N's ``Σ_k Π[l,k] U[c,k] = β_l``). Theorem ``cases-exact`` evaluates every
battery expression before and after each case function at explicit sizes and exact random
values *where its hypothesis holds*, and requires the values to agree. The battery holds
every array, symbol and function of :func:`proofs.normalisers.battery` (what the rates are
made of) and the case's own reads; ``proofs/conservation.py`` refuses a case function that
has no battery here, and one applied to a rate holding anything its battery does not show.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from proofs import derivations as D
from proofs import normalisers as N
from proofs.kernel import Step, Theorem
from symbolic import laws as SL
from symbolic import laws_attention as LA
from symbolic.model import P, U, Y, Z_s, a, s

_i, _k, _l, _r = D.i, D.k, D.l, D.r
_c, _w = N._c, SL.w
#: The token holding the topic word (the battery's p), and its word id (the battery's w).
TOPIC_TOKEN, TOPIC_WORD = 1, 0


@dataclass(frozen=True)
class Case:
    """One case function of a declared assumption, the values where its hypothesis holds and
    the expressions it is tested on besides the common battery."""

    step: str
    assumption: SL.LawAssumption
    label: str
    hypothesis: Callable[[dict, random.Random], None]
    extra: Callable[[], dict]
    #: the model the case function is applied with (it canonicalises with the model's folds)
    model: object = SL.LINEAR

    @property
    def name(self) -> str:
        return f"{self.assumption.name}: {self.label}"

    @property
    def function(self):
        return self.assumption.cases[self.label]


# --- values where each hypothesis holds ------------------------------------------------------

def _words_at_tokens(values: dict, holding: bool, rng) -> None:
    """ω[i, x] = 1 for the one word x at token i; the topic word (id 0) at token p = 1 when
    the sentence holds it, nowhere otherwise."""
    tokens, words = N.SHAPES["omega"]
    for i in range(tokens):
        word = TOPIC_WORD if holding and i == TOPIC_TOKEN else rng.randrange(1, words)
        for x in range(words):
            values[("omega", (i, x))] = sp.Integer(x == word)


def _holding(values, rng):
    _words_at_tokens(values, True, rng)


def _without(values, rng):
    _words_at_tokens(values, False, rng)


def _non_topic_words(values, rng):
    """A2: the embedding at token x is δ_xp v, the score s_p = s_t and every other score c
    (the attention is the softmax of these scores)."""
    tokens, width = N.SHAPES["V"]
    for i in range(tokens):
        for k in range(width):
            values[("V", (i, k))] = values[("v", (k,))] if i == TOPIC_TOKEN else sp.S.Zero
    scores = [values[str(D.s_t)] if i == TOPIC_TOKEN else values[str(D.c)]
              for i in range(tokens)]
    total = sum(sp.exp(x) for x in scores)
    values[str(Z_s)] = total
    for i, x in enumerate(scores):
        values[("s", (i,))], values[("a", (i,))] = x, sp.exp(x) / total


def _one_hot(values, rng):
    """The battery's label is one-hot already (Σ_c Y_c = 1)."""


def _rows_meet_directions(values, rng):
    """N: each row of Π a multiple of a direction n ⟂ U_1 − U_0, β_l = Σ_k Π[l,k] U[0,k]."""
    classes, width = N.SHAPES["U"]
    rows = [[values[("U", (c, k))] for k in range(width)] for c in range(classes)]
    (n,) = sp.Matrix([[x - y for x, y in zip(rows[1], rows[0])]]).nullspace()
    for row in range(width):
        weight = sp.Rational(rng.randint(1, 9), rng.randint(1, 4))
        for k in range(width):
            values[("Pi", (row, k))] = weight * n[k]
        values[("beta", (row,))] = sum(values[("Pi", (row, k))] * rows[0][k]
                                       for k in range(width))


# --- what each case reads besides the common battery -------------------------------------------

def _topic_word_reads() -> dict:
    G, V, K, q = D.G, D.V, D.K, D.q
    return {"topic word": N._sum(SL.omega[_i, _w] * (K[_i, _r] * q[_r] * a[_i]
                                                      + V[_i, _k] * G[_k] * sp.exp(s[_i])
                                                      / Z_s), _i, _r, _k)}


def _non_topic_reads() -> dict:
    G, V = D.G, D.V
    return {"non-topic words": N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s
            + s[D.p] - D.s_t + sp.exp(s[D.p] - D.c)}


def _direction_reads() -> dict:
    return {"directions": N._sum(SL.Pi[_l, _k] * U[_c, _k], _k) - SL.beta[_l]
            + N._sum(SL.Pi[_l, _k] * U[N._e, _k] * (P[N._e] - Y[N._e]), _k, N._e)}


def _none() -> dict:
    return {}


#: Every case function of the declared assumptions, with its hypothesis as values.
CASES = (
    Case("A3-holding", SL.A3, "sentence holding w", _holding, _none),
    Case("A3-without", SL.A3, "sentence without w", _without, _none),
    Case("A2", SL.A2, "A2", _non_topic_words, _non_topic_reads),
    Case("Y-one-hot", SL.ONE_HOT, "one-hot label", _one_hot, _none),
    Case("N-rows", SL.ACROSS, "Π U_c = β", _rows_meet_directions, _none),
    Case("Y-one-hot-attention", SL.ONE_HOT, "one-hot label", _one_hot, N.attention_battery,
         LA.CROSS_ENTROPY),
)

#: Common battery expressions a case function is tested on: all but the one reading ω at a
#: summed word (a case reads ω only at the law's component word, as "topic word" does), with
#: the topic word and the directions Π read as the laws read them.
_COMMON = tuple(label for label in N.paper_battery() if label != "words and directions")


def battery(case: Case) -> dict:
    """The common battery and the case's own reads; for a case applied with a model other
    than the paper's, its own reads only (that model's rates hold none of the paper's)."""
    if case.model.name != "paper":
        return case.extra()
    common = N.battery()
    return {**{label: common[label] for label in _COMMON}, **_topic_word_reads(),
            **_direction_reads(), **case.extra()}


def covered(function, model=None) -> set[str] | None:
    """What the battery of the case function ``function`` exercises when applied with
    ``model`` (with the same folds as the model of its case; default the paper's), or None
    when it has no battery there (not one of :data:`CASES`, as declared now)."""
    folds = SL.LINEAR.folds if model is None else model.folds
    found = [k for k, case in enumerate(CASES)
             if case.assumption.cases.get(case.label) is function and case.model.folds == folds]
    if not found:
        return None
    return set().union(*(_battery_elements(k) for k in found))


@functools.cache
def _battery_elements(k: int) -> frozenset:
    # the batteries are fixed code: what each is made of is read once per process
    return frozenset().union(*(N.elements(e) for e in battery(CASES[k]).values()))


def _exact(case: Case):
    def check(scope):
        function = case.function
        values = N._values(seed=sum(map(ord, case.name)))
        case.hypothesis(values, random.Random(len(case.name)))
        out = {}
        for label, expr in battery(case).items():
            before, after = N._value(expr, values), N._value(function(expr, case.model), values)
            out[label] = sp.Eq(after, before, evaluate=False)
        return out
    return check


def theorems() -> tuple[Theorem, ...]:
    steps = tuple(Step(case.step, f"the case {case.label!r} of assumption "
                       f"{case.assumption.name} preserves the value of every battery "
                       f"expression where its hypothesis holds (explicit sizes, exact random "
                       f"values)", "instance", _exact(case))
                  for case in CASES)
    return (Theorem("cases-exact", "The assumptions' case functions are exact",
                    "Every case function a declared law's assumption applies to a rate "
                    "preserves values where its hypothesis holds (checked on explicit "
                    "instances).", (), steps),)

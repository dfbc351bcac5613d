"""Hypothesis strategies for configurations of the attention classifier: the one set used by
the tests, by ``attnflow check`` (``numeric.campaign``) and by the conjecture search.

Every strategy draws a ``numeric.campaign.Config``. Sizes shrink towards the smallest problem
(2 classes, 1 topic word per class, 1 non-topic word, 2 sentences, d = d_key = 1, 1 hidden
unit), the trainable subset towards nothing, scales towards 1 (embeddings towards 0.1) and the
horizon towards 100, so a counterexample prints as a short ``Config``. The config's ``seed``
fixes the data and the initial parameters, so a drawn case reruns outside Hypothesis from its
text (``Config.to_text``; ``attnflow check --case TEXT``).
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from numeric.campaign import TRAINABLE, TRAINABLE_BY, Config

seeds = st.integers(0, 2 ** 32 - 1)
#: The smallest value each size takes (what a size shrinks to).
SMALLEST = dict(n_classes=2, topics_per_class=1, m=1, n_nontopic=1, n_sentences=2, d=1,
                d_key=1, hidden=1, heads=1, d_head=1)


def _size(name: str, high: int):
    return st.integers(SMALLEST[name], high)


def log_uniform(low: float, high: float, shrink_to: float | None = None):
    """``10**x``, x uniform-ish in [log10 low, log10 high]; shrinks towards ``shrink_to``
    (default ``low``)."""
    lo, hi = math.log10(low), math.log10(high)
    start = lo if shrink_to is None else math.log10(shrink_to)
    return st.floats(lo - start, hi - start).map(lambda x: 10 ** (x + start))


@st.composite
def configurations(draw, *, classifier=None, sen=None, trainable=None, ragged=None, a2=None,
                   max_sentences=60, max_m=25, max_dim=8):
    """Any configuration. ``sen=True``: the paper's setting (A1–A3 hold, embeddings and keys
    trained, query fixed); otherwise anything allowed. Keyword arguments fix a field
    (``classifier``, ``trainable``, ``ragged``, ``a2``) or bound a size."""
    if trainable is None:
        trainable = tuple(n for n in TRAINABLE if draw(st.booleans()))
        if sen:
            trainable = tuple(n for n in TRAINABLE if n in {"keys", "embeddings"}
                              or (n == "classifier" and "classifier" in trainable))
    sizes = dict(
        n_classes=draw(_size("n_classes", 5)),
        topics_per_class=draw(_size("topics_per_class", 3)),
        m=draw(_size("m", max_m)),
        n_nontopic=draw(_size("n_nontopic", 15)),
        n_sentences=draw(_size("n_sentences", max_sentences)),
        d=draw(_size("d", max_dim)),
        d_key=draw(_size("d_key", max_dim)),
        classifier=classifier or draw(st.sampled_from(["linear", "mlp"])),
        hidden=draw(_size("hidden", 5)),
        trainable=tuple(trainable),
        a2=(True if sen else draw(st.booleans())) if a2 is None else a2,
        ragged=(False if sen else draw(st.booleans())) if ragged is None else ragged,
        query_scale=draw(log_uniform(0.3, 3.0, shrink_to=1.0)),
        key_scale=draw(st.sampled_from([0.0, 0.01, 0.1, 1.0])),
        embedding_scale=draw(log_uniform(1e-6, 1.0, shrink_to=0.1)),
        horizon=draw(log_uniform(100.0, 10000.0)),
    )
    # the seed is drawn last: Hypothesis shrinks earlier choices first, so the sizes reach
    # their minimum and the seed (data and initial values) adapts to them
    return Config(seed=draw(seeds), **sizes)


def sen_configurations(**kwargs):
    """The paper's setting, where the SEN identity applies."""
    return configurations(sen=True, **kwargs)


@st.composite
def attention_configurations(draw, architecture="multi-head", *, loss=None, trainable=None,
                             max_sentences=12, max_m=6, max_dim=4, max_heads=3):
    """Any configuration of the self-attention family: the same topic sentences, ``heads``
    heads (1 for ``self-attention``) of width ``d_head``, cross-entropy or squared error, any
    subset of its parameters trained. Sizes shrink to one head of width 1."""
    if trainable is None:
        # every parameter half the time: each law needs two or more of them training
        every = draw(st.booleans())
        trainable = tuple(n for n in TRAINABLE_BY[architecture]
                          if every or draw(st.booleans()))
    heads = 1 if architecture == "self-attention" else draw(st.integers(1, max_heads))
    sizes = dict(
        n_classes=draw(_size("n_classes", 4)),
        topics_per_class=draw(_size("topics_per_class", 2)),
        m=draw(_size("m", max_m)),
        n_nontopic=draw(_size("n_nontopic", 6)),
        n_sentences=draw(_size("n_sentences", max_sentences)),
        d=draw(_size("d", max_dim)), heads=heads, d_head=draw(_size("d_head", max_dim)),
        loss=loss or draw(st.sampled_from(["cross-entropy", "squared-error"])),
        trainable=tuple(trainable), a2=False, ragged=draw(st.booleans()),
        embedding_scale=draw(log_uniform(0.1, 1.0, shrink_to=0.5)),
        horizon=draw(log_uniform(10.0, 1000.0)),
    )
    return Config(seed=draw(seeds), architecture=architecture, **sizes)


def campaign_configurations(model: str = "paper", **kwargs):
    """What ``attnflow check`` searches. The paper's model: its setting or anything else,
    about half each (without the first branch SEN would apply in about 1 draw in 32); the
    self-attention family: any configuration of it."""
    if model != "paper":
        return attention_configurations(model, **kwargs)
    return st.one_of(sen_configurations(**kwargs), configurations(**kwargs))


def order_configurations(classifier="linear"):
    """Small, tame configurations for order-of-convergence tests (fixed-step methods need a
    step well inside their stability region, and a drift well above rounding)."""
    return configurations(classifier=classifier, sen=True, max_sentences=12, max_m=6,
                          max_dim=3)

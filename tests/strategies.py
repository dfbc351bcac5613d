"""Hypothesis strategies for random configurations of the attention classifier.

Every strategy draws a ``numeric.campaign.Config``: sizes shrink towards the smallest
problem (2 classes, 1 topic word per class, 1 non-topic word per sentence, d = d_key = 1),
scales towards 1, so a counterexample prints as a short ``Config(...)``; the config's own
``seed`` fixes the data and the initial parameters, so it reproduces outside Hypothesis
(``attnflow check --trajectory SEED`` for the campaign's configurations).
"""

from __future__ import annotations

from hypothesis import strategies as st

from numeric.campaign import TRAINABLE, Config

seeds = st.integers(0, 2 ** 32 - 1)


def log_uniform(low: float, high: float, zero_at: float | None = None):
    """``10**x`` for x in [log10 low, log10 high]; shrinks towards ``zero_at`` (a power)."""
    import math

    lo, hi = math.log10(low), math.log10(high)
    start = lo if zero_at is None else math.log10(zero_at)
    return st.floats(lo - start, hi - start).map(lambda x: 10 ** (x + start))


@st.composite
def configs(draw, *, classifier=None, sen=None, trainable=None, ragged=None, max_sentences=60,
            max_m=25, max_dim=8):
    """Any configuration. ``sen=True``: the paper's setting (A1–A3 hold, embeddings and keys
    trained, query fixed); ``sen=False``: anything else allowed."""
    if trainable is None:
        trainable = tuple(n for n in TRAINABLE if draw(st.booleans()))
        if sen:
            trainable = tuple(n for n in TRAINABLE if n in {"keys", "embeddings"}
                              or (n == "classifier" and "classifier" in trainable))
    return Config(
        seed=draw(seeds),
        n_classes=draw(st.integers(2, 5)),
        topics_per_class=draw(st.integers(1, 3)),
        m=draw(st.integers(1, max_m)),
        n_nontopic=draw(st.integers(1, 15)),
        n_sentences=draw(st.integers(2, max_sentences)),
        d=draw(st.integers(1, max_dim)),
        d_key=draw(st.integers(1, max_dim)),
        classifier=classifier or draw(st.sampled_from(["linear", "mlp"])),
        hidden=draw(st.integers(1, 5)),
        trainable=trainable,
        a2=True if sen else draw(st.booleans()),
        ragged=(False if sen else draw(st.booleans())) if ragged is None else ragged,
        query_scale=draw(log_uniform(0.3, 3.0, zero_at=1.0)),
        key_scale=draw(st.sampled_from([0.0, 0.01, 0.1, 1.0])),
        embedding_scale=draw(log_uniform(1e-6, 1.0, zero_at=0.1)),
        horizon=draw(log_uniform(100.0, 10000.0)),
    )


def sen_configs(**kwargs):
    """The paper's setting, where the SEN identity applies."""
    return configs(sen=True, **kwargs)


def order_configs(classifier="linear"):
    """Small, tame configurations for the order-of-convergence tests (fixed-step methods
    need a step well inside their stability region, and a drift well above rounding)."""
    return configs(classifier=classifier, sen=True, max_sentences=12, max_m=6, max_dim=3)

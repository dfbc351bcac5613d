"""Finite-difference checks of the engine: ``∂L/∂θ`` against central differences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numeric.engine import gradient, loss
from numeric.model import Dataset, ModelSpec, init_params


def nan_worst(items, key=float):
    """The item of largest ``key``, a NaN counting as the largest of all: a verdict reads the
    worst case, and ``max`` alone keeps or drops a NaN by its position (``nan > x`` is false)."""
    return max(items, key=lambda item: (math.isnan(key(item)), key(item)))


@dataclass(frozen=True)
class FDResult:
    """Worst relative error ``|g − g_fd| / max(|g_fd|, scale)`` over the probed entries."""

    spec: ModelSpec
    worst: float
    where: str


def central_difference(params, data, spec, name, index, step):
    """``(L(θ + h e) − L(θ − h e)) / 2h`` along one entry of one parameter."""
    plus = {k: v.copy() for k, v in params.items()}
    minus = {k: v.copy() for k, v in params.items()}
    plus[name][index] += step
    minus[name][index] -= step
    return (loss(plus, data, spec) - loss(minus, data, spec)) / (2 * step)


def fd_check(params, data: Dataset, spec: ModelSpec, *, probes: int = 6, seed: int = 0,
             step: float = 1e-5) -> FDResult:
    """Compare the engine with central differences on ``probes`` random entries per parameter.

    The central difference has error ``O(h² L''')`` + roundoff ``O(ε L / h)``; with
    ``h = 1e-5`` both are below ``1e-9`` for the O(1) losses used here.
    """
    rng = np.random.default_rng(seed)
    grads = gradient(params, data, spec)
    scale = np.nanmax([1e-8, *(float(np.abs(g).max()) for g in grads.values())])
    errors = {}
    for name, g in grads.items():
        for flat in rng.choice(g.size, size=min(probes, g.size), replace=False):
            index = np.unravel_index(flat, g.shape)
            fd = central_difference(params, data, spec, name, index, step)
            errors[f"{name}{list(map(int, index))}"] = float(abs(g[index] - fd)
                                                           / max(abs(fd), scale))
    where = nan_worst(errors, key=errors.get)  # a NaN gradient or difference is the worst
    return FDResult(spec, errors[where], where)


def random_problem(seed: int, classifier: str, trainable=("keys", "embeddings", "classifier")):
    """A small random data set (with padding) and parameters of order 1, for checks."""
    rng = np.random.default_rng(seed)
    n_words, n_classes = int(rng.integers(5, 20)), int(rng.integers(2, 5))
    tokens = rng.integers(0, n_words, size=(int(rng.integers(3, 12)), int(rng.integers(2, 7))))
    tokens[0, 1:] = -1  # a one-token sentence, and padding to mask
    labels = rng.integers(0, n_classes, size=tokens.shape[0])
    data = Dataset(tokens, labels, n_words, n_classes)
    spec = ModelSpec(d=int(rng.integers(1, 5)), d_key=int(rng.integers(1, 4)),
                     classifier=classifier, hidden=int(rng.integers(1, 5)), trainable=trainable)
    params = init_params(spec, data, seed=seed, query_scale=1.0, key_scale=1.0,
                         embedding_scale=1.0)
    if classifier == "mlp":
        # biases away from 0 so that no ReLU sits exactly at its kink
        params["hidden_bias"] = rng.standard_normal(spec.hidden)
    return params, data, spec

"""A random smooth classifier for the SEN identity: one tanh hidden layer on the attention.

The engine has linear and ReLU-MLP classifiers; the paper's identity holds for any
differentiable per-sentence loss (``G_χ = ∂ℓ_χ/∂h`` abstract). This test-only flow takes the
attention and context from the engine (``numeric.attention``, ``numeric.context``) and
back-propagates cross-entropy through ``z = W2 tanh(W1 h + b1) + b2`` by hand, then through
the attention with the textbook formulas ``∂ℓ/∂v_w = a_w G``, ``∂ℓ/∂s_w = a_w (v_w − h)·G``.
The query is fixed; rows listed in ``frozen`` (non-topic words) are held fixed.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import numeric

NAMES = ("embeddings", "keys", "hidden_weight", "hidden_bias", "output_weight", "output_bias")


def tanh_classifier(rng, d: int, hidden: int, n_classes: int) -> dict:
    return {"hidden_weight": rng.standard_normal((hidden, d)) / np.sqrt(d),
            "hidden_bias": rng.standard_normal(hidden),
            "output_weight": rng.standard_normal((n_classes, hidden)) / np.sqrt(hidden),
            "output_bias": np.zeros(n_classes)}


def tanh_gradient(p: dict, data) -> dict:
    """``∇L`` for the mean cross-entropy of the tanh classifier on the attention context."""
    a, h = numeric.attention(p, data), numeric.context(p, data)
    r = np.tanh(h @ p["hidden_weight"].T + p["hidden_bias"])
    z = r @ p["output_weight"].T + p["output_bias"]
    gz = np.exp(z - z.max(axis=1, keepdims=True))
    gz /= gz.sum(axis=1, keepdims=True)
    gz[np.arange(len(gz)), data.labels] -= 1.0
    gz /= len(data)
    gu = (gz @ p["output_weight"]) * (1 - r ** 2)
    G = gu @ p["hidden_weight"]                                  # (S, d), mean-loss scaled
    V = p["embeddings"][data.safe_tokens]
    gs = a * (np.einsum("sld,sd->sl", V, G) - (h * G).sum(axis=1)[:, None])
    gv = (a[:, :, None] * G[:, None, :]).reshape(-1, G.shape[1])
    return {"embeddings": data.scatter() @ gv,
            "keys": np.outer(data.scatter() @ gs.ravel(), p["query"]),
            "hidden_weight": gu.T @ h, "hidden_bias": gu.sum(axis=0),
            "output_weight": gz.T @ r, "output_bias": gz.sum(axis=0)}


def tanh_flow(p0: dict, data, t_end: float, frozen: np.ndarray, rtol=1e-10, atol=1e-12):
    """Snapshots ``{name: (T, …)}`` of the gradient flow (DOP853) on ``NAMES``."""
    shapes = [p0[n].shape for n in NAMES]
    split = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def unflatten(y):
        return dict(p0, **{n: x.reshape(s) for n, s, x in zip(NAMES, shapes, np.split(y, split))})

    def rhs(t, y):
        g = tanh_gradient(unflatten(y), data)
        g["embeddings"][frozen] = 0.0
        g["keys"][frozen] = 0.0
        return -np.concatenate([g[n].ravel() for n in NAMES])

    y0 = np.concatenate([p0[n].ravel() for n in NAMES])
    sol = solve_ivp(rhs, (0.0, t_end), y0, method="DOP853", rtol=rtol, atol=atol)
    assert sol.success, sol.message
    snaps = [unflatten(sol.y[:, i]) for i in range(len(sol.t))]
    return sol.t, {n: np.stack([s[n] for s in snaps]) for n in p0}

"""An independent, hand-written NumPy implementation of the model and its gradient.

Test oracle only: it shares no code with the derivation or the generated engine, so agreement
between the two is evidence that both are right.
"""

import numpy as np


def _forward(p, data, classifier):
    tok, mask = data.safe_tokens, data.mask
    V, K = p["embeddings"][tok], p["keys"][tok]
    s = np.where(mask, K @ p["query"], -np.inf)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    a = e / e.sum(axis=1, keepdims=True)
    h = np.einsum("bi,bik->bk", a, V)
    if classifier == "linear":
        z, cache = h @ p["classifier"].T, None
    else:
        u = h @ p["hidden_weight"].T + p["hidden_bias"]
        r = np.maximum(u, 0)
        z, cache = r @ p["output_weight"].T + p["output_bias"], (u, r)
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    ell = lse - z[np.arange(len(z)), data.labels]
    return V, K, a, h, z, cache, ell


def reference_loss(p, data, spec):
    return float(_forward(p, data, spec.classifier)[-1].mean())


def reference_gradient(p, data, spec):
    V, K, a, h, z, cache, _ = _forward(p, data, spec.classifier)
    S = len(data)
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    gz = P.copy()
    gz[np.arange(S), data.labels] -= 1
    gz /= S
    g = {}
    if spec.classifier == "linear":
        g["classifier"] = gz.T @ h
        G = gz @ p["classifier"]
    else:
        u, r = cache
        g["output_weight"] = gz.T @ r
        g["output_bias"] = gz.sum(axis=0)
        gu = (gz @ p["output_weight"]) * (u > 0)
        g["hidden_weight"] = gu.T @ h
        g["hidden_bias"] = gu.sum(axis=0)
        G = gu @ p["hidden_weight"]
    gV = a[:, :, None] * G[:, None, :]
    gs = a * (np.einsum("bik,bk->bi", V, G) - np.einsum("bk,bk->b", h, G)[:, None])
    gs = np.where(data.mask, gs, 0.0)
    gK = gs[:, :, None] * p["query"]
    g["query"] = np.einsum("bi,bir->r", gs, K)
    W = data.n_words
    flat = data.tokens.ravel()
    keep = flat >= 0
    emb = np.zeros_like(p["embeddings"])
    keys = np.zeros_like(p["keys"])
    np.add.at(emb, flat[keep], gV.reshape(-1, gV.shape[-1])[keep])
    np.add.at(keys, flat[keep], gK.reshape(-1, gK.shape[-1])[keep])
    g["embeddings"], g["keys"] = emb, keys
    assert emb.shape[0] == W
    return g

"""A researcher's model for the calibration runs: linear attention, written with the public
description API only (``attnflow discover --model benchmarks/linear_attention_model.py``)."""

import sympy as sp

from symbolic import description as D

r = D.size("r_lin")
RANK = D.kind("rank", r, ("m_r", "n_r"))
i, j = D.TOKEN.index(0), D.TOKEN.index(1)
k, x, c, e = D.EMBED.index(0), RANK.index(0), D.CLASS.index(0), D.CLASS.index(1)
E, Q, K, V, U, Y = (sp.IndexedBase(n) for n in ("E", "Q", "K", "V", "U", "Y"))
q, key, v, s, y, pooled, z = (sp.IndexedBase(n) for n in
                              ("q", "key", "v", "s", "y", "pooled", "z"))


def total(expr, idx, size):
    return sp.Sum(expr, (idx, 0, size - 1))


ce, fold = D.cross_entropy(z, Y, c, e)
MODEL = D.model(
    "linear-attention", "linear attention (no softmax), one head, cross-entropy",
    kinds=(D.TOKEN, D.EMBED, RANK, D.CLASS),
    params=[D.Param("embeddings", E, (i, k), True, "token vector"),
            D.Param("query_map", Q, (x, k), False, "Q"),
            D.Param("key_map", K, (x, k), False, "K"),
            D.Param("value_map", V, (x, k), False, "V"),
            D.Param("classifier", U, (c, x), False, "U")],
    nodes=[D.node("q", (i, x), total(Q[x, k] * E[i, k], k, D.d), "query"),
           D.node("key", (i, x), total(K[x, k] * E[i, k], k, D.d), "key"),
           D.node("v", (i, x), total(V[x, k] * E[i, k], k, D.d), "value"),
           D.node("s", (i, j), total(q[i, x] * key[j, x], x, r) / D.L, "linear attention"),
           D.node("y", (i, x), total(s[i, j] * v[j, x], j, D.L), "output"),
           D.node("pooled", (x,), total(y[i, x], i, D.L) / D.L, "pooled"),
           D.node("z", (c,), total(U[c, x] * pooled[x], x, r), "logits"),
           ce],
    loss="cross-entropy", data=(D.Data("labels", Y, (c,), "label"),), folds=(fold,))

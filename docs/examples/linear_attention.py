"""Linear attention, written with attnflow's model-description API only.

One head without softmax: ``a_ij = s_ij / L`` with ``s_ij = (Q x_i)·(K x_j)``, the output
``y_i = Σ_j a_ij V x_j`` in ℝ^r, pooled over the tokens, logits ``z = U ȳ``, cross-entropy.
"""

import sympy as sp

from symbolic import description as D

r = D.size("r")                                    # the width of the attention space
RANK = D.kind("rank", r, ("m_r", "n_r"))           # its index letters (unused elsewhere)
i, j = D.TOKEN.index(0), D.TOKEN.index(1)          # tokens of the sentence
k, x = D.EMBED.index(0), RANK.index(0)
c, e = D.CLASS.index(0), D.CLASS.index(1)

E, Q, K, V, U, Y = (sp.IndexedBase(n) for n in ("E", "Q", "K", "V", "U", "Y"))
q, key, v, s, y, pooled, z = (sp.IndexedBase(n) for n in
                              ("q", "key", "v", "s", "y", "pooled", "z"))


def total(expr, index, size):
    return sp.Sum(expr, (index, 0, size - 1))


loss, probabilities = D.cross_entropy(z, Y, c, e)
MODEL = D.model(
    "linear-attention", "linear attention (no softmax), one head, cross-entropy",
    kinds=(D.TOKEN, D.EMBED, RANK, D.CLASS),
    params=[D.Param("embeddings", E, (i, k), True, "token vector of the word at token i"),
            D.Param("query_map", Q, (x, k), False, "query map Q"),
            D.Param("key_map", K, (x, k), False, "key map K"),
            D.Param("value_map", V, (x, k), False, "value map V"),
            D.Param("classifier", U, (c, x), False, "linear classifier U")],
    nodes=[D.node("q", (i, x), total(Q[x, k] * E[i, k], k, D.d), "query of token i"),
           D.node("key", (i, x), total(K[x, k] * E[i, k], k, D.d), "key of token i"),
           D.node("v", (i, x), total(V[x, k] * E[i, k], k, D.d), "value of token i"),
           D.node("s", (i, j), total(q[i, x] * key[j, x], x, r) / D.L, "linear attention"),
           D.node("y", (i, x), total(s[i, j] * v[j, x], j, D.L), "output at token i"),
           D.node("pooled", (x,), total(y[i, x], i, D.L) / D.L, "output pooled"),
           D.node("z", (c,), total(U[c, x] * pooled[x], x, r), "logits"),
           loss],
    loss="cross-entropy", data=[D.Data("labels", Y, (c,), "one-hot label")],
    folds=[probabilities])

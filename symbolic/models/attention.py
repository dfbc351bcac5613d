"""Self-attention with several heads, pooled and classified, in index form for one sentence.

Token vectors ``x_i = E[w_i] ∈ ℝ^d`` are gathered from the embedding table. Per head ``h``,
``Q_h, K_h, V_h, O_h ∈ ℝ^{d_head × d}``; named intermediates::

    xq[h, i, x] = Σ_k Q[h, x, k] E[i, k]                   query of token i
    xk[h, j, x] = Σ_k K[h, x, k] E[j, k]                   key of token j
    xv[h, j, x] = Σ_k V[h, x, k] E[j, k]                   value of token j
    s[h, i, j]  = Σ_x xq[h, i, x] xk[h, j, x] / τ          score
    a[h, i, j]  = exp(s[h, i, j]) / Σ_j' exp(s[h, i, j'])   attention of token i to token j
    ho[h, i, x] = Σ_j a[h, i, j] xv[h, j, x]               head output
    y[i, k]     = Σ_h Σ_x O[h, x, k] ho[h, i, x]           y_i = Σ_h Σ_j a^h_ij O_hᵀ V_h x_j
    ybar[k]     = (1/L) Σ_i y[i, k]                        pooled over the tokens
    z[c]        = Σ_k U[c, k] ybar[k]                      logits
    ℓ = log Σ_e exp(z_e) − Σ_c Y_c z_c   or   ℓ = ½ Σ_c (z_c − Y_c)²

(Marcotte, Gribonval & Peyré's ``softmax(X Qᵀ K Xᵀ) X Vᵀ O`` per head, summed over heads.)
The temperature ``τ`` is a fixed positive number (√d_head by default in the engine).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symbolic.description import (
    CLASS,
    EMBED,
    TOKEN,
    Data,
    L,
    Param,
    cross_entropy,
    kind,
    model,
    node,
    size,
    softmax,
    squared_error,
    total,
)

d_head, heads = size("d_head"), size("heads")
HEAD_DIM = kind("head_dim", d_head, ("x", "y_"))
HEAD = kind("head", heads, ("h", "f"))
KINDS = (TOKEN, EMBED, HEAD_DIM, HEAD, CLASS)
#: The temperature τ of the scores: a fixed positive number.
tau = sp.Symbol("tau", positive=True)

i, j = TOKEN.index(0), TOKEN.index(1)
k = EMBED.index(0)
x = HEAD_DIM.index(0)
h = HEAD.index(0)
c, e = CLASS.index(0), CLASS.index(1)

E, Q, K, V, O, U, Y = (sp.IndexedBase(n) for n in ("E", "Q", "K", "V", "O", "U", "Y"))  # noqa: E741
xq, xk, xv, s, ho, y, ybar, z = (sp.IndexedBase(n) for n in
                                 ("xq", "xk", "xv", "s", "ho", "y", "ybar", "z"))
#: ``∂ℓ/∂z``, left symbolic by the abstract loss (any differentiable loss of the logits).
G = sp.IndexedBase("G")

PARAMS = (
    Param("embeddings", E, (i, k), True, "embedding x_i of the word at token i"),
    Param("head_query", Q, (h, x, k), False, "query matrix Q_h of head h"),
    Param("head_key", K, (h, x, k), False, "key matrix K_h of head h"),
    Param("head_value", V, (h, x, k), False, "value matrix V_h of head h"),
    Param("head_output", O, (h, x, k), False, "output matrix O_h of head h"),
    Param("classifier", U, (c, k), False, "linear classifier U"),
)
LABELS = Data("labels", Y, (c,), "one-hot label of the sentence")
LOSSES = ("cross-entropy", "squared-error", "abstract")



def layer_nodes():
    """Projections, scores, attention, head outputs, output, pooling and logits, and the
    attention's fold."""
    attention, fold = softmax("a", s, (h, i, j), j, "attention of token i to token j",
                              normaliser="Z_s")
    a = attention.base
    nodes = [
        node("xq", (h, i, x), total(Q[h, x, k] * E[i, k], k), "query of token i in head h"),
        node("xk", (h, i, x), total(K[h, x, k] * E[i, k], k), "key of token i in head h"),
        node("xv", (h, i, x), total(V[h, x, k] * E[i, k], k), "value of token i in head h"),
        node("s", (h, i, j), total(xq[h, i, x] * xk[h, j, x], x) / tau, "score"),
        attention,
        node("ho", (h, i, x), total(a[h, i, j] * xv[h, j, x], j), "output of head h at token i"),
        node("y", (i, k), total(O[h, x, k] * ho[h, i, x], x, h), "output at token i"),
        node("ybar", (k,), total(y[i, k], i) / L, "output pooled over the tokens"),
        node("z", (c,), total(U[c, k] * ybar[k], k), "logits"),
    ]
    return nodes, fold


@cache
def multi_head(loss: str = "cross-entropy"):
    """The multi-head self-attention classifier (``heads`` heads) with ``loss``:
    ``"cross-entropy"``, ``"squared-error"`` or ``"abstract"`` (∂ℓ/∂z = G left symbolic)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    nodes, attention_fold = layer_nodes()
    folds = [attention_fold]
    if loss == "cross-entropy":
        last, fold = cross_entropy(z, Y, c, e)
        nodes.append(last)
        folds.append(fold)
    elif loss == "squared-error":
        nodes.append(squared_error(z, Y, c))
    what = {"cross-entropy": "cross-entropy", "squared-error": "squared error",
            "abstract": "any differentiable loss of the logits"}[loss]
    return model("multi-head", f"multi-head self-attention, mean-pooled, linear classifier, "
                 f"{what}", kinds=KINDS, params=PARAMS, nodes=nodes, loss=loss,
                 data=() if loss == "abstract" else (LABELS,), folds=tuple(folds),
                 constants=(tau,), upstream=G if loss == "abstract" else None,
                 options={"loss": loss})

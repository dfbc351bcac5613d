"""Declared laws of the self-attention family (``symbolic.models.attention``), each written once.

Parameters per head ``h``: ``Q_h, K_h, V_h, O_h ∈ ℝ^{d_head × d}`` (``Q[h, x, k]``, …), the
classifier ``U ∈ ℝ^{C × d}`` and the embedding table ``E`` (``E[w, k]``: word ``w``'s token
vector; ``Σ_w`` over the vocabulary). Each law is a symmetry of the model made infinitesimal:

- ``head-query-key``: ``s^h_ij = (Q_h x_i)·(K_h x_j)/τ`` is unchanged by ``Q_h → A Q_h``,
  ``K_h → A^{-T} K_h`` for any invertible ``A``, so ``Q_h Q_hᵀ − K_h K_hᵀ`` is conserved;
- ``head-value-output``: ``O_hᵀ V_h`` is unchanged by ``V_h → A V_h``, ``O_h → A^{-T} O_h``;
- ``classifier-output``: ``z = U Σ_h O_hᵀ ho_h`` is unchanged by ``O_h → O_h B`` (every
  head), ``U → U B^{-T}``;
- ``embedding-projections``: every projection ``Q_h x_i`` (and ``K_h``, ``V_h``) is unchanged
  by ``E → E B``, ``Q_h, K_h, V_h → ·B^{-T}``;
- ``attention-classifier-sum``: with cross-entropy, adding one vector to every row of ``U``
  adds the same number to every logit, which the softmax does not see (with a one-hot label):
  ``Σ_c U[c, :]`` is conserved. Squared error sees it: not a law there.

The first four hold for any differentiable loss of the logits (proved on the abstract loss,
``∂ℓ/∂z = G`` symbolic), the last only with cross-entropy (proved on that model).
"""

from __future__ import annotations

import sympy as sp

from symbolic.description import CLASS, EMBED, C, total
from symbolic.laws import ONE_HOT, Law, n_words, trains, w
from symbolic.models.attention import (
    HEAD,
    HEAD_DIM,
    E,
    K,
    O,
    Q,
    U,
    V,
    d_head,
    heads,
    multi_head,
)

#: The models the laws are proved on: any loss of the logits, and cross-entropy.
ABSTRACT = multi_head("abstract")
CROSS_ENTROPY = multi_head("cross-entropy")
#: The losses a run of the family trains with.
ANY_LOSS = ("cross-entropy", "squared-error")

_h, _f = HEAD.index(0), HEAD.index(1)
_x, _y = HEAD_DIM.index(0), HEAD_DIM.index(1)
_k, _l = EMBED.index(0), EMBED.index(1)
_c = CLASS.index(0)


def rows_gram(M) -> sp.Expr:
    """``(M_h M_hᵀ)[x, y] = Σ_k M[h, x, k] M[h, y, k]`` (free ``h``, ``x``, ``y_``)."""
    return total(M[_h, _x, _k] * M[_h, _y, _k], _k)


def columns_gram(M) -> sp.Expr:
    """``(Σ_h M_hᵀ M_h)[k, l] = Σ_f Σ_x M[f, x, k] M[f, x, l]`` (free ``k``, ``l``)."""
    return total(M[_f, _x, _k] * M[_f, _x, _l], _x, _f)


HEAD_QUERY_KEY = Law(
    "head-query-key", "Q_h Q_hᵀ − K_h K_hᵀ is constant for every head h (any loss of the "
    "logits; query and key matrices trained)", rows_gram(Q), rows_gram(K),
    components=(_h, _x, _y), component="head", models=(ABSTRACT,), classifiers=(),
    assumptions=(trains("head_query", "head_key"),), expand=("xq", "xk"), losses=ANY_LOSS)
HEAD_VALUE_OUTPUT = Law(
    "head-value-output", "V_h V_hᵀ − O_h O_hᵀ is constant for every head h (any loss of the "
    "logits; value and output matrices trained)", rows_gram(V), rows_gram(O),
    components=(_h, _x, _y), component="head", models=(ABSTRACT,), classifiers=(),
    assumptions=(trains("head_value", "head_output"),), expand=("ho", "xv"),
    losses=ANY_LOSS)
CLASSIFIER_OUTPUT = Law(
    "classifier-output", "UᵀU − Σ_h O_hᵀ O_h is constant (any loss of the logits; classifier "
    "and output matrices trained)", total(U[_c, _k] * U[_c, _l], _c), columns_gram(O),
    components=(_k, _l), component="matrix", models=(ABSTRACT,), classifiers=(),
    assumptions=(trains("classifier", "head_output"),), expand=("ybar", "y"),
    losses=ANY_LOSS)
EMBEDDING_PROJECTIONS = Law(
    "embedding-projections", "Σ_w E_w E_wᵀ − Σ_h (Q_hᵀQ_h + K_hᵀK_h + V_hᵀV_h) is constant "
    "(any loss of the logits; embeddings and the query, key and value matrices trained)",
    sp.Sum(E[w, _k] * E[w, _l], (w, 0, n_words - 1)),
    columns_gram(Q) + columns_gram(K) + columns_gram(V), components=(_k, _l),
    component="matrix", models=(ABSTRACT,), classifiers=(),
    assumptions=(trains("embeddings", "head_query", "head_key", "head_value"),),
    losses=ANY_LOSS)
CLASSIFIER_SUM = Law(
    "attention-classifier-sum", "Σ_c U[c, :] is constant under cross-entropy with one-hot "
    "labels (classifier trained; not under squared error)", total(U[_c, _k], _c), sp.S.Zero,
    components=(_k,), component="vector", models=(CROSS_ENTROPY,), classifiers=(),
    assumptions=(trains("classifier"), ONE_HOT), normaliser="canonical-softmax-sums",
    losses=("cross-entropy",))

#: Every declared law of the self-attention family, in report order.
LAWS = (HEAD_QUERY_KEY, HEAD_VALUE_OUTPUT, CLASSIFIER_OUTPUT, EMBEDDING_PROJECTIONS,
        CLASSIFIER_SUM)

__all__ = ["ABSTRACT", "ANY_LOSS", "CROSS_ENTROPY", "LAWS", "C", "d_head", "heads"]

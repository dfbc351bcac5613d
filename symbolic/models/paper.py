"""The paper's attention classifier (Lu, Mao & Nayak 2021) in index form, with symbolic sizes.

Tokens ``i < L`` of the sentence carry gathered parameters: embedding ``V[i, k]`` (``k < d``)
and key ``K[i, r]`` (``r < d_key``); the query ``q[r]`` is shared. Named intermediates::

    s[i] = Σ_r q[r] K[i, r]                      score
    a[i] = exp(s[i]) / Σ_j exp(s[j])             attention
    h[k] = Σ_i a[i] V[i, k]                      context
    z[c] = Σ_k U[c, k] h[k]                      logits (linear)
    VU[i, c] = Σ_k V[i, k] U[c, k];  z[c] = Σ_i a[i] VU[i, c]     the same logits, contracted
                                                 through the classes (``contraction="classes"``)
    u[n] = Σ_k W1[n, k] h[k] + b1[n];  o[n] = max(u[n], 0);  z[c] = Σ_n W2[c, n] o[n] + b2[c]
    ℓ    = log Σ_c exp(z[c]) − Σ_c Y[c] z[c]      cross-entropy (Y one-hot label)
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symbolic.description import CLASS, EMBED, TOKEN, C, Data, L, Node, Param, d, model
from symbolic.indexform import Fold, IndexKind, kind_of

# Sizes (symbolic) and index kinds: tokens, embedding width and classes are shared by every
# model; the key width and the hidden width are the paper's own.
d_key, H = sp.symbols("d_key H", integer=True, positive=True)
KEY = IndexKind("key", d_key, ("r", "t"))
HIDDEN = IndexKind("hidden", H, ("n", "o_"))
KINDS = (TOKEN, EMBED, KEY, CLASS, HIDDEN)
SIZES = {kind.name: kind.size for kind in KINDS}

i, j = TOKEN.index(0), TOKEN.index(1)
k = EMBED.index(0)
r = KEY.index(0)
c, e = CLASS.index(0), CLASS.index(1)
n = HIDDEN.index(0)

# Parameters (per-sentence views) and data.
q, K, V = sp.IndexedBase("q"), sp.IndexedBase("K"), sp.IndexedBase("V")
U = sp.IndexedBase("U")
W1, b1, W2, b2 = (sp.IndexedBase(x) for x in ("W1", "b1", "W2", "b2"))
Y = sp.IndexedBase("Y")
# Intermediates, the normalisers folded back into them, and the abstract upstream gradient.
s, a, h, z = (sp.IndexedBase(x) for x in ("s", "a", "h", "z"))
VU = sp.IndexedBase("VU")
u, o, P = sp.IndexedBase("u"), sp.IndexedBase("o"), sp.IndexedBase("P")
Z_s, Z_z = sp.symbols("Z_s Z_z", positive=True)
G = sp.IndexedBase("G")
ell = sp.Symbol("ell")

FOLDS = (Fold(s, a, Z_s), Fold(z, P, Z_z))


def _softmax_sum(x, idx):
    return sp.Sum(sp.exp(x[idx]), (idx, 0, kind_of(idx).size - 1))


ATTENTION_PARAMS = (
    Param("embeddings", V, (i, k), True, "embedding v_w of the word at token i"),
    Param("keys", K, (i, r), True, "key κ_w of the word at token i"),
    Param("query", q, (r,), False, "query q"),
)
CLASSIFIER_PARAMS = {
    "linear": (Param("classifier", U, (c, k), False, "linear classifier U"),),
    "mlp": (Param("hidden_weight", W1, (n, k), False, "hidden weight W1"),
            Param("hidden_bias", b1, (n,), False, "hidden bias b1"),
            Param("output_weight", W2, (c, n), False, "output weight W2"),
            Param("output_bias", b2, (c,), False, "output bias b2")),
}


def attention_nodes() -> list[Node]:
    """Score, attention and context: the part every classifier shares."""
    return [
        Node(s, (i,), sp.Sum(q[r] * K[i, r], (r, 0, d_key - 1)), "score"),
        Node(a, (i,), sp.exp(s[i]) / _softmax_sum(s, j), "attention",
             {_softmax_sum(s, j): Z_s}, op="softmax"),
        Node(h, (k,), sp.Sum(a[i] * V[i, k], (i, 0, L - 1)), "context"),
    ]


def classifier_nodes(classifier: str) -> list[Node]:
    if classifier == "linear":
        return [Node(z, (c,), sp.Sum(U[c, k] * h[k], (k, 0, d - 1)), "logits")]
    if classifier == "mlp":
        return [
            Node(u, (n,), sp.Sum(W1[n, k] * h[k], (k, 0, d - 1)) + b1[n], "hidden pre-activation"),
            Node(o, (n,), sp.Max(u[n], 0), "hidden activation (ReLU)", op="relu"),
            Node(z, (c,), sp.Sum(W2[c, n] * o[n], (n, 0, H - 1)) + b2[c], "logits"),
        ]
    raise ValueError(f"unknown classifier {classifier!r}; expected 'linear' or 'mlp'")


def class_space_nodes() -> list[Node]:
    """The linear logits reassociated, ``Σ_k U[c, k] Σ_i a[i] V[i, k] = Σ_i a[i] VU[i, c]``:
    each word's embedding seen through the classifier first, so a sentence reads ``C``
    numbers per token instead of ``d`` (cheaper when there are fewer classes than the
    width); tests/test_engine.py checks that both orders give the same logits."""
    return [Node(VU, (i, c), sp.Sum(V[i, k] * U[c, k], (k, 0, d - 1)),
                 "embedding through the classifier"),
            Node(z, (c,), sp.Sum(a[i] * VU[i, c], (i, 0, L - 1)), "logits")]


def loss_node() -> Node:
    total = _softmax_sum(z, e)
    return Node(ell, (), sp.log(total) - sp.Sum(Y[c] * z[c], (c, 0, C - 1)),
                "cross-entropy", {total: Z_z}, op="cross-entropy")




LABELS = Data("labels", Y, (c,), "one-hot label of the sentence")
OPTIONS = {"classifier": ("linear", "mlp"), "loss": ("cross_entropy", "abstract"),
           "contraction": ("context", "classes")}


@cache
def paper(classifier: str = "linear", loss: str = "cross_entropy",
          contraction: str = "context"):
    """The paper's model with a ``linear`` or ``mlp`` classifier, as a description.

    ``loss="abstract"`` stops at the context ``h`` with ``∂ℓ/∂h = G`` left symbolic (any
    differentiable loss of the context, any classifier: the proofs' model).
    ``contraction="classes"`` (linear classifier, cross-entropy) computes the same logits
    through ``VU`` instead of ``h`` (``class_space_nodes``): the printer's cheaper order
    when there are fewer classes than the width; the proofs reason about the default.
    """
    for name, value in (("classifier", classifier), ("loss", loss),
                        ("contraction", contraction)):
        if value not in OPTIONS[name]:
            expected = " or ".join(repr(x) for x in OPTIONS[name])
            raise ValueError(f"unknown {name} {value!r}; expected {expected}")
    if contraction == "classes" and (classifier, loss) != ("linear", "cross_entropy"):
        raise ValueError(f"contraction='classes' needs the linear classifier with "
                         f"cross-entropy, got {classifier!r} with {loss!r}")
    options = {"classifier": classifier, "loss": loss, "contraction": contraction}
    if loss == "abstract":
        return model("paper", "the paper's attention layer, any differentiable loss of the "
                     "context h (∂ℓ/∂h = G left symbolic)", kinds=KINDS,
                     params=ATTENTION_PARAMS, nodes=attention_nodes(), loss="abstract",
                     folds=FOLDS, upstream=G, options=options)
    if contraction == "classes":
        nodes = attention_nodes()[:2] + class_space_nodes() + [loss_node()]
    else:
        nodes = attention_nodes() + classifier_nodes(classifier) + [loss_node()]
    return model("paper", f"the paper's attention classifier with a {classifier} classifier, "
                 f"cross-entropy", kinds=KINDS,
                 params=ATTENTION_PARAMS + CLASSIFIER_PARAMS[classifier], nodes=nodes,
                 loss="cross-entropy", data=(LABELS,), folds=FOLDS, options=options)

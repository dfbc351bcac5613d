"""The attention classifier of PAPER.md in index form, for one sentence, with symbolic sizes.

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

from dataclasses import dataclass, field

import sympy as sp

from symbolic.indexform import Fold, IndexKind, kind_of

# Sizes (symbolic) and index kinds.
L, d, d_key, C, H = sp.symbols("L d d_key C H", integer=True, positive=True)
TOKEN = IndexKind("token", L, ("i", "j", "p"))
EMBED = IndexKind("embedding", d, ("k", "l"))
KEY = IndexKind("key", d_key, ("r", "t"))
CLASS = IndexKind("class", C, ("c", "e"))
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


@dataclass(frozen=True)
class Node:
    """``base[indices] = definition``; ``normalisers`` name the sums folded after ``diff``."""

    base: object
    indices: tuple
    definition: sp.Expr
    meaning: str
    normalisers: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.base)

    @property
    def ref(self):
        return self.base[self.indices] if self.indices else self.base


@dataclass(frozen=True)
class Param:
    """A parameter as it appears in one sentence: ``per_token`` ones are gathered by word id."""

    name: str
    base: sp.IndexedBase
    indices: tuple
    per_token: bool
    meaning: str

    @property
    def ref(self):
        return self.base[self.indices]


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
             {_softmax_sum(s, j): Z_s}),
        Node(h, (k,), sp.Sum(a[i] * V[i, k], (i, 0, L - 1)), "context"),
    ]


def classifier_nodes(classifier: str) -> list[Node]:
    if classifier == "linear":
        return [Node(z, (c,), sp.Sum(U[c, k] * h[k], (k, 0, d - 1)), "logits")]
    if classifier == "mlp":
        return [
            Node(u, (n,), sp.Sum(W1[n, k] * h[k], (k, 0, d - 1)) + b1[n], "hidden pre-activation"),
            Node(o, (n,), sp.Max(u[n], 0), "hidden activation (ReLU)"),
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
                "cross-entropy", {total: Z_z})


@dataclass(frozen=True)
class Model:
    """The computation graph of one configuration: parameters, nodes in order, loss node.

    ``loss="abstract"`` stops at the context ``h`` with ``∂ℓ/∂h = G`` left symbolic.
    ``contraction="classes"`` (linear classifier, cross-entropy) computes the same logits
    through ``VU`` instead of ``h`` (``class_space_nodes``): the printer's cheaper order
    when there are fewer classes than the width; the proofs reason about the default.
    """

    classifier: str
    loss: str = "cross_entropy"
    contraction: str = "context"

    def __post_init__(self):
        if self.loss not in ("cross_entropy", "abstract"):
            raise ValueError(f"unknown loss {self.loss!r}; expected 'cross_entropy' or "
                             f"'abstract'")
        if self.loss == "cross_entropy" and self.classifier not in CLASSIFIER_PARAMS:
            raise ValueError(f"unknown classifier {self.classifier!r}")
        if self.contraction not in ("context", "classes"):
            raise ValueError(f"unknown contraction {self.contraction!r}; expected 'context' "
                             f"or 'classes'")
        if self.contraction == "classes" and (self.classifier, self.loss) != (
                "linear", "cross_entropy"):
            raise ValueError(f"contraction='classes' needs the linear classifier with "
                             f"cross-entropy, got {self.classifier!r} with {self.loss!r}")

    @property
    def params(self) -> tuple[Param, ...]:
        if self.loss == "abstract":
            return ATTENTION_PARAMS
        return ATTENTION_PARAMS + CLASSIFIER_PARAMS[self.classifier]

    @property
    def nodes(self) -> list[Node]:
        if self.loss == "abstract":
            return attention_nodes()
        if self.contraction == "classes":
            return attention_nodes()[:2] + class_space_nodes() + [loss_node()]
        return attention_nodes() + classifier_nodes(self.classifier) + [loss_node()]

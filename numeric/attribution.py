"""Each law's drift over one optimizer step, split by the derived formulas of
``numeric/_generated/broken.py`` (from ``symbolic/broken.py``):

    Q(θ_{k+1}) − Q(θ_k) = ∇Q·Δθ_data + ∇Q·Δθ_decay + ∇Q·Δθ_momentum + R(θ_k, Δθ_k),

with ``Δθ_data = −η∇L`` (its part ``η·dQ/dτ`` is 0 wherever the law's assumptions hold, so it
measures their violation), ``Δθ_decay = −ηλθ`` and ``Δθ_momentum = ηβ·b_{k−1}``. An adapter
maps the parameters to the arrays the printed functions take (per component: topic word,
hidden unit, or one matrix). SEN needs a fixed query (A1): its remainder is derived for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numeric import laws
from numeric._generated import broken
from numeric.laws import NotComputable
from numeric.trajectory import Trajectory

#: The parts of a step, in report order.
STEP_PARTS = ("assumptions", "weight_decay", "momentum")


@dataclass
class Adapter:
    """A law's arguments for the printed first-order part and remainder."""

    name: str
    labels: list[str]

    def first_order(self, p, d) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def remainder(self, p, d) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class GramAdapter(Adapter):
    """``Q = Σ ± XᵀX`` over named arrays (the balance laws); one matrix component."""

    def __init__(self, name, function, arrays, labels=("matrix",)):
        super().__init__(name, list(labels))
        self._first = getattr(broken, f"{function}_first_order")
        self._rest = getattr(broken, f"{function}_remainder")
        self.arrays = arrays

    def _args(self, p, d):
        def mat(x, n):
            return x[None] if n == "query" else x
        return ([mat(p[n], n) for n in self.arrays] + [mat(d[n], n) for n in self.arrays])

    def first_order(self, p, d):
        return self._first(*self._args(p, d))[None]

    def remainder(self, p, d):
        return self._rest(*self._args(p, d))[None]


class ReluUnitAdapter(Adapter):
    """``Q_j = ‖W2[:, j]‖² − ‖W1[j]‖² − b1_j²`` per hidden unit."""

    def _args(self, p, d):
        return (p["output_weight"].T, p["hidden_weight"], p["hidden_bias"],
                d["output_weight"].T, d["hidden_weight"], d["hidden_bias"])

    def first_order(self, p, d):
        return broken.relu_unit_first_order(*self._args(p, d))

    def remainder(self, p, d):
        return broken.relu_unit_remainder(*self._args(p, d))


class SenAdapter(Adapter):
    """SEN per topic word with ``c = log mean_n e^{s_n}``: ``dc`` in the first-order part is
    ``Σ_n w_n Δs_n``; ``c``'s own remainder ``R_c`` enters the discretisation through
    ``∂Q/∂c·R_c`` (the printed first-order part with only ``Δc = R_c``). Query fixed (A1)."""

    def __init__(self, traj: Trajectory):
        topic_tok, nontopic_tok, topics, nontopics = laws._topic_structure(traj)
        m = laws._sentence_sizes(traj, topics, topic_tok, nontopic_tok)
        if (m == 0).any():
            raise NotComputable("a topic word occurs only without non-topic words (m = 0)")
        if "query" in traj.spec.trained:
            raise NotComputable("the query is trained (A1 fails): the SEN remainder is "
                                "derived for a fixed query")
        super().__init__("SEN", [f"topic word {t}" for t in topics])
        self.topics, self.nontopics, self.m = topics, nontopics, m

    def _state(self, p):
        q = p["query"]
        s = p["keys"] @ q
        c = laws._common_score(s[None], self.nontopics)[0]
        sn = s[self.nontopics]
        w = np.exp(sn - sn.max())
        return q, s, c, w / w.sum(), float(q @ q)

    def _steps(self, p, d):
        q, s, c, w, q2 = self._state(p)
        ds = d["keys"] @ q
        return (p["embeddings"][self.topics], s[self.topics], c, d["embeddings"][self.topics],
                ds[self.topics], w @ ds[self.nontopics], self.m, q2), (w, ds[self.nontopics])

    def first_order(self, p, d):
        return broken.sen_first_order(*self._steps(p, d)[0])

    def remainder(self, p, d):
        (v, s, c, dv, ds, dc, m, q2), (w, dsn) = self._steps(p, d)
        rc = broken.lme_remainder(w, dsn)
        through_c = broken.sen_first_order(v, s, c, 0 * dv, 0 * ds, rc, m, q2)
        return broken.sen_remainder(v, s, c, dv, ds, dc + rc, m, q2) + through_c


def adapters(traj: Trajectory) -> tuple[dict[str, Adapter], dict[str, str]]:
    """The adapters of the laws defined for this run, and why the others are not."""
    out, skipped = {}, {}
    classifier = traj.spec.classifier
    try:
        out["SEN"] = SenAdapter(traj)
    except NotComputable as why:
        skipped["SEN"] = str(why)
    out["query-key"] = GramAdapter("query-key", "query_key", ("query", "keys"))
    if classifier == "linear":
        out["classifier-embedding"] = GramAdapter("classifier-embedding",
                                                  "classifier_embedding",
                                                  ("classifier", "embeddings"))
    else:
        out["hidden-embedding"] = GramAdapter("hidden-embedding", "hidden_embedding",
                                              ("hidden_weight", "embeddings"))
        h = traj.params["hidden_weight"].shape[1]
        out["relu-unit"] = ReluUnitAdapter("relu-unit", [f"hidden unit {j}" for j in range(h)])
    return out, skipped


#: law name → ``numeric.laws`` terms function (the measured ``Q = A − B``).
TERMS = {"SEN": laws.sen_terms, "query-key": laws.query_key_terms,
         "classifier-embedding": laws.classifier_embedding_terms,
         "hidden-embedding": laws.hidden_embedding_terms, "relu-unit": laws.relu_unit_terms}


def measured_quantity(name: str, traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """``Q = A − B`` per snapshot and component, and the law's sensitivity ``σ``."""
    a, b, sens, _ = TERMS[name](traj)
    return a - b, sens

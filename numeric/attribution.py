"""Each law's drift over one optimizer step, split by the derived formulas of
``numeric/_generated/broken.py`` (from ``symbolic/broken.py``):

    Q(θ_{k+1}) − Q(θ_k) = ∇Q·Δθ_data + ∇Q·Δθ_decay + ∇Q·Δθ_momentum + R(θ_k, Δθ_k),

with ``Δθ_data = −η∇L`` (its part ``η·dQ/dτ`` is 0 wherever the law's assumptions hold, so it
measures their violation), ``Δθ_decay = −ηλθ`` and ``Δθ_momentum = ηβ·b_{k−1}``. An adapter
maps the parameters to the arrays the printed functions take (per component: topic word,
hidden unit, or one matrix). SEN needs a fixed query (A1): its remainder is derived for it.
"""

from __future__ import annotations

import numpy as np

from numeric import laws
from numeric._generated import broken
from numeric.laws import NotComputable
from numeric.trajectory import Trajectory

#: The parts of a step, in report order.
STEP_PARTS = ("assumptions", "weight_decay", "momentum")


#: Base names of the declarations (symbolic.laws) → numeric parameter names, for the paper's
#: model and for the self-attention family (whose ``K`` and ``V`` are other arrays).
BASES = {"V": "embeddings", "K": "keys", "q": "query", "U": "classifier",
         "W1": "hidden_weight", "b1": "hidden_bias", "W2": "output_weight",
         "b2": "output_bias"}
ATTENTION_BASES = {"E": "embeddings", "Q": "head_query", "K": "head_key", "V": "head_value",
                   "O": "head_output", "U": "classifier"}


def bases_of(spec) -> dict[str, str]:
    """The declarations' base names of ``spec``'s architecture → its parameter names."""
    return BASES if spec.architecture == "paper" else ATTENTION_BASES


class Adapter:
    """A declared law's printed ``∇Q·Δθ`` and ``R``, called with the arrays they name
    (``broken.ARGUMENTS``): the parameters, their steps ``d<base>`` and the law's constant
    arrays (Π); results are laid out as ``numeric.laws`` lays out the law's components
    (``shape``, one label per leading entry)."""

    def __init__(self, name: str, function: str, labels: list[str], shape: tuple,
                 constants: dict | None = None, bases: dict | None = None):
        self.name, self.labels, self.shape = name, labels, tuple(shape)
        self.constants = constants or {}
        self.bases = BASES if bases is None else bases
        self._first = getattr(broken, f"{function}_first_order")
        self._rest = getattr(broken, f"{function}_remainder")
        self._first_args = broken.ARGUMENTS[f"{function}_first_order"]
        self._rest_args = broken.ARGUMENTS[f"{function}_remainder"]

    def arrays(self, p, d) -> dict:
        out = {b: p[n] for b, n in self.bases.items() if n in p}
        out.update({f"d{b}": d[n] for b, n in self.bases.items() if n in d})
        out.update(self.constants)
        return out

    def first_order(self, p, d) -> np.ndarray:
        env = self.arrays(p, d)
        return self._shape(self._first(**{a: env[a] for a in self._first_args}))

    def remainder(self, p, d) -> np.ndarray:
        env = self.arrays(p, d)
        return self._shape(self._rest(**{a: env[a] for a in self._rest_args}))

    def _shape(self, x):
        """Components first, as ``numeric.laws`` lays them out (a linear law's remainder,
        the number 0, fills them)."""
        x = np.asarray(x, dtype=np.float64)
        return np.zeros(self.shape) + x if x.ndim == 0 else x.reshape(self.shape)


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
        super().__init__("SEN", "sen", [f"topic word {t}" for t in topics], (len(topics),))
        self.topics, self.nontopics, self.m = topics, nontopics, m

    def _state(self, p) -> tuple[dict, np.ndarray]:
        """Values at θ and the softmax weights of the non-topic scores (cached per θ)."""
        at = (p["keys"], p["embeddings"], p["query"])   # held, so identity is safe
        if getattr(self, "_at", None) is None or any(x is not y for x, y in zip(at, self._at)):
            q = p["query"]
            s = p["keys"] @ q
            sn = s[self.nontopics]
            top = sn.max()
            e = np.exp(sn - top)
            c = top + np.log(e.mean())   # laws._common_score, from the same exponentials
            self._at, self._cache = at, (
                {"V": p["embeddings"][self.topics], "s": s[self.topics], "c": c, "m": self.m,
                 "q2": float(q @ q)}, e / e.sum())
        return self._cache

    def arrays(self, p, d) -> dict:
        return self._arrays(p, d["keys"] @ p["query"], d["embeddings"][self.topics])

    def _arrays(self, p, ds, dV) -> dict:
        """The printed functions' arguments at θ for the step ``Δs = ΔK q`` and the topic
        rows ``dV`` of ``ΔV``."""
        values, w = self._state(p)
        self._c_parts = (w, ds[self.nontopics])
        return {**values, "dV": dV, "ds": ds[self.topics], "dc": w @ self._c_parts[1]}

    def step_parts(self, p, new):
        """``(first_order, remainder)`` of the step ``θ → θ_new`` from one set of arrays,
        differencing only the keys and the topic rows of the embeddings (the (W, d)
        embedding step is never formed)."""
        dV = new["embeddings"][self.topics] - p["embeddings"][self.topics]
        buffer = getattr(self, "_dK", None)
        if buffer is None or buffer.shape != p["keys"].shape:
            buffer = self._dK = np.empty_like(p["keys"], dtype=np.float64)
        # into one buffer kept across steps: a fresh (W, d_key) array each step cost more
        # in page faults than the subtraction itself
        dK = np.subtract(new["keys"], p["keys"], out=buffer)
        return self._parts(self._arrays(p, dK @ p["query"], dV))

    def _parts(self, env):
        first = self._shape(self._first(**{a: env[a] for a in self._first_args}))
        return first, self._remainder_of(env)

    def remainder(self, p, d):
        return self._remainder_of(self.arrays(p, d))

    def _remainder_of(self, env):
        rc = broken.lme_remainder(*self._c_parts)
        through_c = broken.sen_first_order(**{**{a: env[a] for a in self._first_args},
                                              "dV": 0 * env["dV"], "ds": 0 * env["ds"],
                                              "dc": rc})
        env["dc"] = env["dc"] + rc
        return broken.sen_remainder(**{a: env[a] for a in self._rest_args}) + through_c


def adapters(traj: Trajectory) -> tuple[dict[str, Adapter], dict[str, str]]:
    """The adapters of every law defined for this run's model (by numeric name), and why
    the others are not."""
    out, skipped = {}, {}
    for law in laws.laws_for(traj.spec):
        try:
            out[law.name] = SenAdapter(traj) if law.name == "SEN" else _adapter(law, traj)
        except NotComputable as why:
            skipped[law.name] = str(why)
    return out, skipped


def _adapter(law: laws.Law, traj: Trajectory) -> Adapter:
    """The printed step functions of ``law``, laid out like its measured components (read
    from its terms at the first snapshot)."""
    first = Trajectory(traj.data, traj.spec, traj.time[:1],
                       {n: x[:1] for n, x in traj.params.items()})
    a, b, _, labels = law.terms(first)
    constants = ({"Pi": laws.across_projector(traj.params["classifier"][0].astype(float))[0]}
                 if "Pi" in broken.ARGUMENTS[f"{laws.stem(law.name)}_first_order"] else {})
    return Adapter(law.name, laws.stem(law.name), labels, np.shape(a)[1:], constants,
                   bases_of(traj.spec))


def measured_quantity(name: str, traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """``Q = A − B`` per snapshot and component, and the law's sensitivity ``σ`` (the terms
    ``numeric.laws`` checks)."""
    law = next(x for x in laws.LAWS + laws.ATTENTION_LAWS if x.name == name)
    a, b, sens, _ = law.terms(traj)
    return a - b, sens

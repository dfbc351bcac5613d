"""Conservation laws of the gradient flow, each with its preconditions checked on the run.

Every law has the form ``Q = A − B`` with ``Q`` constant along ``dθ/dτ = −∇L(θ)`` when its
preconditions hold. Along a trajectory, per component (topic word, hidden unit, or the whole
matrix; Frobenius norms):

- **relative drift** ``max_τ ‖Q(τ) − Q(0)‖ / (max_τ ‖A(τ) − A(0)‖ + max_τ ‖B(τ) − B(0)‖)``:
  the share of the movement of the two terms that the law does not explain (0: exact
  cancellation; about 1: no relation);
- **sensitivity** ``σ = max_τ Σ_i |∂Q/∂θ_i|·|θ_i|``: how much ``Q`` changes when every
  parameter is perturbed by a relative ``δ`` (at most ``δ·σ``); bounded per law below;
- **floor** ``accuracy·σ / movement``: the drift that parameters known only to a relative
  ``accuracy`` (rounding; an integrator's global error) can produce by themselves, plus, for
  an integrator's run, what an absolute ``resolution`` in every entry (its accumulated
  ``atol``) can: ``resolution·Σ|∂Q/∂θ_i|``.

A law holds when ``‖ΔQ‖ ≤ tolerance·movement + accuracy·σ``, i.e. relative drift ≤
tolerance + floor. Preconditions are measured on the data and the snapshots (not taken from
the configuration alone); a law whose preconditions fail is reported "not applicable" with
its measured drift, never as holding. A law holds only on evidence: at least two snapshots
and terms that move by more than the accuracy floor ``accuracy·σ`` in some component;
otherwise it is "not checked", with the reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

import numeric
from numeric._generated import laws as printed
from numeric.model import attention_module
from numeric.trajectory import PARAM_FIELDS, ROW_FROZEN, Trajectory

#: A precondition measured as a relative deviation holds when it is at most this.
PRECONDITION_TOL = 1e-10


class NotComputable(Exception):
    """The law's quantity is undefined on this run (e.g. topic words unknown)."""


@dataclass(frozen=True)
class Condition:
    """A precondition, its measured deviation and whether it holds."""

    name: str
    statement: str
    holds: bool
    measured: float
    detail: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "statement": self.statement, "holds": bool(self.holds),
                "measured": _num(self.measured), "detail": self.detail}


@dataclass(frozen=True)
class LawReport:
    """One law on one trajectory, at its worst component: preconditions, relative drift,
    floor, and the share ``usage`` of the allowance ``tolerance·movement + accuracy·σ``
    that the drift uses (≤ 1: holds)."""

    law: str
    statement: str
    conditions: tuple[Condition, ...]
    drift: float
    floor: float
    usage: float
    absolute_drift: float
    worst: str
    tolerance: float
    accuracy: float
    #: why the run holds no evidence for or against the law ("" when it does)
    unchecked: str = ""

    @property
    def applicable(self) -> bool:
        return all(c.holds for c in self.conditions)

    @property
    def allowed(self) -> float:
        """The relative drift accepted at the worst component: tolerance + floor."""
        return self.tolerance + self.floor

    @property
    def verdict(self) -> str:
        """``"holds"``, ``"violated"``, ``"not applicable"`` (preconditions fail) or
        ``"not checked"`` (no evidence: one snapshot, or nothing moved above the floor)."""
        if not self.applicable:
            return "not applicable"
        if self.usage > 1.0:
            return "violated"
        # NaN-safe: a usage that is not a number is never "holds"
        return "holds" if self.usage <= 1.0 and not self.unchecked else "not checked"

    @property
    def reason(self) -> str | None:
        """Why the verdict is neither "holds" nor "violated" (``None`` when it is one)."""
        if not self.applicable:
            failed = [c for c in self.conditions if not c.holds]
            return "; ".join(f"{c.name} fails" + (f" ({c.detail})" if c.detail else "")
                             for c in failed)
        if self.verdict == "not checked":
            return self.unchecked or "the drift is not a number"
        return None

    def to_dict(self) -> dict:
        return {"law": self.law, "statement": self.statement, "verdict": self.verdict,
                "reason": self.reason,
                "applicable": self.applicable, "relative_drift": _num(self.drift),
                "floor": _num(self.floor), "allowed": _num(self.allowed),
                "usage": _num(self.usage), "absolute_drift": _num(self.absolute_drift),
                "worst_component": self.worst, "tolerance": _num(self.tolerance),
                "accuracy": _num(self.accuracy),
                "conditions": [c.to_dict() for c in self.conditions]}


#: ``(A, B, sensitivity, component labels)``
Terms = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]


@dataclass(frozen=True)
class Law:
    """``Q = A − B`` conserved under ``conditions``; ``terms(traj)`` gives ``A``, ``B`` with
    shape ``(T, K, …)`` (snapshots × components), the sensitivity ``(T, K)`` and the K
    component labels."""

    name: str
    statement: str
    classifiers: tuple[str, ...]
    terms: Callable[[Trajectory], Terms]
    conditions: Callable[[Trajectory], list[Condition]]
    #: Per component, the movement the drift is measured against, when ``max ‖ΔA‖ +
    #: max ‖ΔB‖`` is not it: for a sum law (``B = 0``, ``A`` conserved) ``‖ΔA‖`` is the drift
    #: itself, so the movement is that of its summands.
    movement: Callable[[Trajectory], np.ndarray] | None = None
    #: The architectures (``numeric.ModelSpec.architecture``) whose runs the law speaks of;
    #: on the paper's, only those with a classifier of :attr:`classifiers`.
    architectures: tuple[str, ...] = ("paper",)

    def applies(self, spec) -> bool:
        """Whether the law speaks of runs of ``spec`` (its architecture and classifier)."""
        return spec.architecture in self.architectures and (
            spec.architecture != "paper" or spec.classifier in self.classifiers)

    def check(self, traj: Trajectory, tolerance: float,
              accuracy: float | None = None, resolution: float = 0.0) -> LawReport:
        """``accuracy``: relative accuracy of the snapshots (default 64·ε of their dtype,
        rounding only); ``resolution``: absolute accuracy of every parameter entry on top of
        it (an integrator's accumulated ``atol``), which entries near 0 are known to no
        better than."""
        if accuracy is None:
            accuracy = 64 * float(np.finfo(traj.spec.float).eps)
        tolerance, accuracy = _allowance("tolerance", tolerance), _allowance("accuracy",
                                                                             accuracy)
        conditions = tuple(self.conditions(traj)) + claims_hold(traj, reads(self.name))
        try:
            a, b, sens, labels = self.terms(traj)
        except NotComputable as why:
            missing = Condition("defined", "the law's quantity is defined on this run", False,
                                float("nan"), str(why))
            nan = float("nan")
            return LawReport(self.name, self.statement, conditions + (missing,), nan, nan,
                             nan, nan, "", tolerance, accuracy)
        unresolved = self._unresolved(traj, _allowance("resolution", resolution), sens)
        with np.errstate(invalid="ignore"):  # overflowing terms: handled below
            absolute, movement, sens = drift_measures(a, b, sens)
        if self.movement is not None:
            movement = self.movement(traj)
        floor = accuracy * sens + unresolved
        budget = tolerance * movement + floor
        usage = _ratio(absolute, budget)
        # A component whose terms overflow (inf - inf) has no drift to compare; it must
        # neither be the reported worst nor hide a finite component that is violated.
        finite = np.isfinite(absolute) & np.isfinite(movement) & np.isfinite(sens)
        k = int(np.argmax(np.where(finite, usage, -np.inf)))
        if finite.all() or usage[k] > 1.0:
            unchecked = no_evidence(len(traj), movement[finite], floor[finite])
        else:
            k = int(np.argmin(finite))
            unchecked = (f"the law's terms are not finite at {labels[k]} (they overflow): "
                         f"its drift there cannot be measured")
        return LawReport(self.name, self.statement, conditions,
                         float(_ratio(absolute, movement)[k]),
                         float(_ratio(floor, movement)[k]), float(usage[k]),
                         float(absolute[k]), labels[k], tolerance, accuracy, unchecked)

    def _unresolved(self, traj: Trajectory, resolution: float,
                    sens: np.ndarray) -> np.ndarray | float:
        """Per component, how far an error of ``resolution`` in every entry can move ``Q``:
        ``max_τ S(θ + r·sign θ) − S(θ)`` for the sensitivity ``S = Σ|∂Q/∂θ|·|θ|`` (``sens``,
        per snapshot), which is ``r·Σ|∂Q/∂θ|`` (exactly, for a law linear in θ)."""
        if resolution == 0:
            return 0.0
        pushed = {n: v + resolution * np.where(v < 0, -1.0, 1.0)
                  for n, v in traj.params.items()}
        with np.errstate(invalid="ignore", over="ignore"):
            grown = self.terms(replace(traj, params=pushed))[2] - sens
        return np.maximum(grown, 0.0).max(axis=0)


def stem(name: str) -> str:
    """The stem of the declared law ``name``'s printed functions (``SEN`` → ``sen``)."""
    return name.lower().replace("-", "_")


def reads(name: str) -> tuple[str, ...]:
    """The parameters the declared law ``name`` reads: the arguments of its printed terms
    (Π is made from the classifier); none for a law that was not declared."""
    terms = getattr(printed, f"{stem(name)}_terms", None)
    if terms is None:
        return ()
    args = inspect.signature(terms).parameters
    names = PARAM_FIELDS + tuple(attention_module().PARAMETERS)
    return tuple(dict.fromkeys("classifier" if a == "Pi" else a for a in args
                               if a == "Pi" or a in names))


def claims_hold(traj: Trajectory, names: tuple[str, ...]) -> tuple[Condition, ...]:
    """A failed condition when the file lists a parameter among ``names`` as trainable while
    it never moves (``Trajectory.claimed_still``); nothing otherwise."""
    still = [n for n in traj.claimed_still() if n in names] if names else []
    if not still:
        return ()
    return (Condition("claims", "every parameter the file lists as trainable moves (the "
                      "law's preconditions rest on which parameters train)", False,
                      float(len(still)), f"{', '.join(still)} listed as trainable but "
                      f"identical in every snapshot: the file's claim is contradicted"),)


def no_evidence(snapshots: int, movement: np.ndarray, floor: np.ndarray) -> str:
    """Why snapshots give no evidence for a law (``""`` if they do): a law can only hold when
    some component's terms moved by more than the accuracy floor ``accuracy·σ`` — below it,
    conservation cannot be told from standing still."""
    if snapshots < 2:
        return "the trajectory has a single snapshot: nothing to compare"
    if not (movement > floor).any():
        return (f"the law's terms did not move beyond the accuracy floor (movement "
                f"{float(movement.max()):.1e}, floor {float(floor.max()):.1e}): "
                f"standing still cannot be told from conservation")
    return ""


def _allowance(name: str, x) -> float:
    """A tolerance or accuracy: a finite number ≥ 0 (a negative one would pass any drift)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer,
                                                              np.floating)):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return float(x)


def drift_measures(a: np.ndarray, b: np.ndarray, sensitivity: np.ndarray):
    """Per component: ``max_τ ‖Q(τ) − Q(0)‖``, the movement ``max_τ ‖ΔA‖ + max_τ ‖ΔB‖`` and
    ``max_τ σ``."""
    axes = tuple(range(2, a.ndim))

    def moved(x):
        d = x - x[:1]
        return (np.sqrt((d ** 2).sum(axis=axes)) if axes else np.abs(d)).max(axis=0)

    return moved(a - b), moved(a) + moved(b), sensitivity.max(axis=0)


def relative_drift(a: np.ndarray, b: np.ndarray, sensitivity: np.ndarray,
                   accuracy: float) -> np.ndarray:
    """Per component: ``‖ΔQ‖ / (movement + accuracy·σ)`` — the relative drift, with the part
    that an ``accuracy``-limited state can explain moved into the denominator."""
    absolute, movement, sens = drift_measures(a, b, sensitivity)
    return _ratio(absolute, movement + accuracy * sens)


def _ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x / y`` with ``0/0 = 0`` and ``x/0 = ∞``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x / y)


def laws_for(spec) -> tuple[Law, ...]:
    """The laws that speak of runs of ``spec``: the paper's laws of its classifier, or the
    self-attention family's laws."""
    return tuple(law for law in LAWS + ATTENTION_LAWS if law.applies(spec))


def check_laws(traj: Trajectory, tolerance: float, accuracy: float | None = None,
               resolution: float = 0.0) -> list[LawReport]:
    """Every law that speaks of the run's architecture (and, for the paper's model, its
    classifier), checked on ``traj``; each law's preconditions are measured on the run."""
    return [law.check(traj, tolerance, accuracy, resolution) for law in laws_for(traj.spec)]


# --- shared measurements ------------------------------------------------------------------

def scores(traj: Trajectory) -> np.ndarray:
    """``s_w(τ) = q(τ)·κ_w(τ)``, shape (T, W)."""
    return np.einsum("twk,tk->tw", traj.params["keys"], traj.params["query"])


def _relative_movement(x: np.ndarray) -> float:
    top = np.abs(x).max()
    return float(np.abs(x - x[:1]).max() / top) if top > 0 else 0.0


def _frozen_parts_vanish(traj: Trajectory, names: tuple[str, ...]) -> Condition:
    """Frozen arrays (and frozen rows of trained ones) among ``names`` are zero."""
    worst, where = 0.0, ""
    for name in names:
        x = traj.params[name]
        if name not in traj.spec.trained:
            part = x
        elif name in ROW_FROZEN and traj.frozen_rows.get(name) is not None:
            part = x[:, traj.frozen_rows[name]]
        else:
            continue
        top = np.abs(x).max()
        dev = float(np.abs(part).max() / top) if part.size and top > 0 else 0.0
        if dev > worst:
            worst, where = dev, name
    return Condition("F", f"every frozen part of {', '.join(names)} is zero (a frozen non-zero "
                     "factor breaks the balance)", worst <= PRECONDITION_TOL, worst,
                     f"largest frozen entry relative to its array: {where}" if where else "")


# --- SEN: the persisting identity ---------------------------------------------------------

def _topic_structure(traj: Trajectory):
    data = traj.data
    if data.topic_class is None:
        raise NotComputable("topic_class is unknown, so topic words cannot be told apart")
    is_topic = data.topic_class >= 0
    topic_tok = np.where(data.mask, is_topic[data.safe_tokens], False)
    nontopic_tok = data.mask & ~topic_tok
    present = np.zeros(data.n_words, bool)
    present[data.tokens[data.mask]] = True
    topics = np.flatnonzero(is_topic & present)
    nontopics = np.flatnonzero(~is_topic & present)
    if topics.size == 0 or nontopics.size == 0:
        raise NotComputable(f"the data hold {topics.size} topic and {nontopics.size} "
                            f"non-topic words; the identity needs both")
    return topic_tok, nontopic_tok, topics, nontopics


def _common_score(s: np.ndarray, nontopics: np.ndarray) -> np.ndarray:
    """``c(τ) = log mean_n e^{s_n}`` over non-topic words: the common score under A2."""
    x = s[:, nontopics]
    top = x.max(axis=1)
    return top + np.log(np.exp(x - top[:, None]).mean(axis=1))


def _sentence_sizes(traj: Trajectory, topics, topic_tok, nontopic_tok) -> np.ndarray:
    """``m_t``: mean number of non-topic tokens in the sentences that hold topic word t."""
    tok = traj.data.tokens
    m = np.empty(topics.size)
    n_nontopic = nontopic_tok.sum(axis=1)
    for i, t in enumerate(topics):
        m[i] = n_nontopic[(tok == t).any(axis=1)].mean()
    return m


def _args(traj: Trajectory, names) -> dict:
    return {n: traj.params[n] for n in names}


def sen_terms(traj: Trajectory):
    """``A_t``, ``B_t`` of the declared law ``sen`` per topic word t, and its sensitivity,
    all from the printed evaluators (``numeric/_generated/laws.py``).

    The run supplies the law's constants: ``c``, the common non-topic score (log-mean-exp of
    the non-topic scores, exact under A2), and ``m_t``, the mean number of non-topic words of
    the sentences holding t (= m under A3). A perturbation of ``c`` counts with
    ``|∂Q/∂c| · δc``, ``δc ≤ max_n 2‖q‖‖κ_n‖`` (c moves with the non-topic scores).
    """
    topic_tok, nontopic_tok, topics, nontopics = _topic_structure(traj)
    m = _sentence_sizes(traj, topics, topic_tok, nontopic_tok)
    if (m == 0).any():
        raise NotComputable(f"topic word {topics[np.argmax(m == 0)]} only occurs in "
                            f"sentences without non-topic words (m = 0)")
    q2 = (traj.params["query"] ** 2).sum(axis=1)
    if (q2 == 0).any():
        raise NotComputable("the query is zero in some snapshot (‖q‖ = 0)")
    c = _common_score(scores(traj), nontopics)
    m_words = np.ones((len(traj.time), traj.data.n_words))
    m_words[:, topics] = m
    args = dict(_args(traj, ("embeddings", "keys", "query")), c=c, m=m_words)
    a, b = (x[:, topics] for x in printed.sen_terms(**args))
    kn = np.linalg.norm(traj.params["keys"], axis=2)
    dc = 2 * np.sqrt(q2)[:, None] * kn[:, nontopics].max(axis=1, keepdims=True)
    sens = (printed.sen_sensitivity(**args) + printed.sen_slopes(**args)["c"] * dc)[:, topics]
    return a, b, sens, [f"topic word {t}" for t in topics]


def sen_conditions(traj: Trajectory) -> list[Condition]:
    """A1, A2 (embeddings zero; scores equal and fixed), A3, and v_t, κ_t both following the
    flow — each measured on the run."""
    out = [Condition("A1", "the query q is fixed", _relative_movement(traj.params["query"])
                     <= PRECONDITION_TOL, _relative_movement(traj.params["query"]),
                     "relative movement max_τ ‖q(τ) − q(0)‖∞ / max ‖q‖∞")]
    try:
        topic_tok, nontopic_tok, topics, nontopics = _topic_structure(traj)
    except NotComputable:
        return out
    emb = traj.params["embeddings"]
    top = np.abs(emb[:, topics]).max()
    v_n = np.abs(emb[:, nontopics]).max()
    dev = float(v_n / top) if top > 0 else float(v_n)
    out.append(Condition("A2-embeddings", "non-topic embeddings are zero",
                         dev <= PRECONDITION_TOL, dev,
                         "max |v_n| relative to max |v_t| (absolute if all v_t = 0)"))
    s = scores(traj)
    c = _common_score(s, nontopics)
    sn = s[:, nontopics]
    dev = float((sn.max(axis=1) - sn.min(axis=1)).max() + np.abs(c - c[0]).max())
    out.append(Condition("A2-scores", "non-topic scores are equal to a common c that does not "
                         "move", dev <= PRECONDITION_TOL, dev,
                         "max_τ (max_n s_n − min_n s_n) + max_τ |c(τ) − c(0)|"))
    n_topic = topic_tok.sum(axis=1)
    n_nontopic = nontopic_tok.sum(axis=1)
    bad = (n_topic != 1) | (n_nontopic != n_nontopic[0])
    out.append(Condition("A3", "every sentence holds exactly one topic word and the same "
                         "number m of non-topic words", not bad.any(), float(bad.mean()),
                         f"fraction of sentences violating; topic tokens per sentence "
                         f"{sorted(set(n_topic.tolist()))}, non-topic tokens per sentence "
                         f"{sorted(set(n_nontopic.tolist()))}"))
    frozen = [n for n in ("embeddings", "keys") if n not in traj.spec.trained
              or np.isin(topics, traj.frozen_rows.get(n, [])).any()]
    out.append(Condition("flow", "topic words' embeddings and keys both follow the flow",
                         not frozen, float(len(frozen)),
                         f"frozen for topic words: {frozen}" if frozen else ""))
    return out


def context_gradient(params, data, spec) -> np.ndarray:
    """``G_χ = ∂ℓ_χ/∂h(χ)`` per sentence, (S, d): the printed backward pass down to ``h``."""
    fw = numeric.forward(params, data, spec)
    return getattr(printed, f"context_gradient_{spec.classifier}")(fw, data.labels, **params)


def sen_deviation_rate(params, data, spec, frozen_rows=None) -> np.ndarray:
    """``dQ_t/dτ`` per topic word (in the order of ``sen_terms``) when A1 or A2's zero
    embeddings fail: the printed rate of the declared law ``sen`` (the chain rule on its
    quantity, ``numeric/_generated/laws.py``) along the engine's flow ``−∇L`` (frozen arrays
    and rows at 0), with ``c`` the measured common non-topic score held fixed. It vanishes
    under A1–A3; theorems sen-breaks-embeddings and sen-breaks-query give its closed forms.
    """
    from numeric.integrate import trained_flow

    traj = Trajectory(data, spec, [0.0], {n: x[None] for n, x in params.items()})
    topic_tok, nontopic_tok, topics, nontopics = _topic_structure(traj)
    m_words = np.ones((1, data.n_words))
    m_words[0, topics] = _sentence_sizes(traj, topics, topic_tok, nontopic_tok)
    c = _common_score(scores(traj), nontopics)
    velocity = trained_flow(params, data, spec, frozen_rows)[1]
    names = ("embeddings", "keys", "query")
    args = {n: traj.params[n] for n in names}
    args.update({f"d_{n}": np.asarray(velocity.get(n, np.zeros_like(params[n])))[None]
                 for n in names})
    return printed.sen_rate(**args, c=c, m=m_words)[0, topics]


# --- balance laws -------------------------------------------------------------------------

def _matrix_terms(traj: Trajectory, name: str, params) -> Terms:
    """A balance between matrices, printed: ``A``, ``B`` as one component ``(T, 1, k, k)``;
    its sensitivity the Frobenius norm of the per-entry bounds (``‖δQ‖_F ≤ δ‖σ‖_F``)."""
    fn = stem(name)
    args = _args(traj, params)
    a, b = getattr(printed, f"{fn}_terms")(**args)
    entries = getattr(printed, f"{fn}_sensitivity")(**args)
    sens = np.sqrt((entries ** 2).sum(axis=(1, 2)))[:, None]
    return a[:, None], b[:, None], sens, ["matrix"]


def query_key_terms(traj: Trajectory):
    """``A = q qᵀ``, ``B = Σ_w κ_w κ_wᵀ`` (declared law query-key)."""
    return _matrix_terms(traj, "query-key", ("keys", "query"))


def classifier_embedding_terms(traj: Trajectory):
    """``A = UᵀU``, ``B = Σ_w v_w v_wᵀ`` (declared law classifier-embedding)."""
    return _matrix_terms(traj, "classifier-embedding", ("embeddings", "classifier"))


def hidden_embedding_terms(traj: Trajectory):
    """``A = W1ᵀW1``, ``B = Σ_w v_w v_wᵀ`` (declared law hidden-embedding)."""
    return _matrix_terms(traj, "hidden-embedding", ("embeddings", "hidden_weight"))


def relu_unit_terms(traj: Trajectory):
    """Per hidden unit j: ``A_j = ‖W2[:, j]‖²``, ``B_j = ‖W1[j, :]‖² + b1_j²`` (declared law
    relu-unit), with the printed sensitivity."""
    args = _args(traj, ("hidden_weight", "hidden_bias", "output_weight"))
    a, b = printed.relu_unit_terms(**args)
    return a, b, printed.relu_unit_sensitivity(**args), [f"hidden unit {j}"
                                                         for j in range(a.shape[1])]


def _vanish(*names):
    return lambda traj: [_frozen_parts_vanish(traj, names)]


# --- the laws discovery found: printed terms, measured preconditions ------------

def _printed_terms(name: str, params: tuple[str, ...], label: str,
                   per_word: bool = False) -> Callable:
    """``A``, ``B`` and the sensitivity of the declared law ``name`` from its printed
    evaluators; components after the snapshot axis are flattened (one label each), or, with
    ``per_word``, one component per word holding its matrix (Frobenius norms; the
    sensitivity the Frobenius norm of the per-entry bounds, as for the balance matrices)."""
    fn = stem(name)

    def terms(traj: Trajectory) -> Terms:
        args = _args(traj, params)
        a, b = getattr(printed, f"{fn}_terms")(**args)
        sens = getattr(printed, f"{fn}_sensitivity")(**args)
        n, shape = len(traj.time), np.shape(a)[1:]
        if per_word:
            a, b, sens = (np.asarray(x, dtype=float).reshape(n, shape[0], -1)
                          for x in (a, b, sens))
            sens = np.sqrt((sens ** 2).sum(axis=2))
            return a, b, sens, [f"{label} {x}" for x in range(shape[0])]
        a, b, sens = (np.asarray(x, dtype=float).reshape(n, -1) for x in (a, b, sens))
        labels = [f"{label} {tuple(map(int, at)) if len(at) > 1 else int(at[0])}"
                  for at in np.ndindex(*shape)] if shape else [label]
        return a, b, sens, labels
    return terms


def _summands_movement(name: str, params: tuple[str, ...]) -> Callable:
    """``max_τ Σ_idx |∂Q/∂θ_idx|·|θ_idx(τ) − θ_idx(0)|`` per component: the printed
    sensitivity of a law linear in ``θ`` evaluated at the displacement — how far its summands
    moved, which their sum should not."""
    fn = stem(name)

    def movement(traj: Trajectory) -> np.ndarray:
        moved = {n: traj.params[n] - traj.params[n][:1] for n in params}
        sens = getattr(printed, f"{fn}_sensitivity")(**moved)
        return np.asarray(sens, dtype=float).reshape(len(traj.time), -1).max(axis=0)
    return movement


def _moves(traj: Trajectory, name: str) -> Condition:
    """``name`` is trained, no row of it is frozen, and it moves on the run (a frozen array
    makes a law about it trivially constant: not evidence)."""
    rows = traj.frozen_rows.get(name)
    trained = name in traj.spec.trained and (rows is None or rows.size == 0)
    moved = _relative_movement(traj.params[name])
    return Condition(f"trains-{name}", f"every entry of {name} follows the flow, and it moves",
                     trained and moved > PRECONDITION_TOL, moved,
                     "relative movement max_τ ‖θ(τ) − θ(0)‖∞ / max ‖θ‖∞"
                     + ("" if trained else f"; {name} is frozen (entirely or some rows)"))


def _query_fixed(traj: Trajectory) -> Condition:
    moved = _relative_movement(traj.params["query"])
    return Condition("A1", "the query q is fixed", moved <= PRECONDITION_TOL, moved,
                     "relative movement max_τ ‖q(τ) − q(0)‖∞ / max ‖q‖∞")


def _needs(*names, query_fixed=False):
    def conditions(traj: Trajectory) -> list[Condition]:
        out = [_query_fixed(traj)] if query_fixed else []
        return out + [_moves(traj, n) for n in names]
    return conditions


# --- embeddings across a fixed classifier -----------------------------------------------

def across_projector(classifier: np.ndarray) -> tuple[np.ndarray, int]:
    """``Π = I − B Bᵀ``, ``B`` an orthonormal basis of span{U_c − U_0} (SVD, rank by NumPy's
    ``matrix_rank`` threshold), and that rank: Π's rows meet every class row of ``U`` equally
    (assumption N of the declared law), and ``‖Π v‖`` is the length of ``v``'s part that the
    flow of a fixed ``U`` never moves (``d − rank`` directions)."""
    differences = classifier[1:] - classifier[:1]
    d = classifier.shape[1]
    if not differences.size or not np.abs(differences).max() > 0:
        return np.eye(d), 0
    _, sv, vt = np.linalg.svd(differences)
    rank = int((sv > sv.max() * max(differences.shape) * np.finfo(float).eps).sum())
    basis = vt[:rank]
    return np.eye(d) - basis.T @ basis, rank


def _across_args(traj: Trajectory) -> dict:
    """The embeddings and Π from the classifier at the first snapshot, held fixed along the run
    (the law is about a fixed U; condition FC checks that it is)."""
    pi, _ = across_projector(traj.params["classifier"][0].astype(float))
    return {"embeddings": traj.params["embeddings"],
            "Pi": np.broadcast_to(pi, (len(traj.time),) + pi.shape)}


def _per_word(x: np.ndarray) -> np.ndarray:
    """``(T, W, d)`` per-entry bounds → ``(T, W)`` Frobenius norms per word."""
    return np.sqrt((np.asarray(x, dtype=float) ** 2).sum(axis=2))


def across_terms(traj: Trajectory) -> Terms:
    """Per word ``w``: ``A_w = Π v_w`` (declared law embedding-across-classifier, printed),
    ``B = 0``; the sensitivity the Frobenius norm of the per-entry bounds."""
    args = _across_args(traj)
    a, b = printed.embedding_across_classifier_terms(**args)
    sens = _per_word(printed.embedding_across_classifier_sensitivity(**args))
    return a, b, sens, [f"word {x}" for x in range(a.shape[1])]


def across_movement(traj: Trajectory) -> np.ndarray:
    """Per word: ``max_τ ‖Σ_k |Π_lk|·|v_wk(τ) − v_wk(0)|‖`` — how far the embedding moved
    (the printed sensitivity at the displacement), which its part Π v_w should not."""
    args = _across_args(traj)
    args["embeddings"] = args["embeddings"] - args["embeddings"][:1]
    return _per_word(printed.embedding_across_classifier_sensitivity(**args)).max(axis=0)


def across_conditions(traj: Trajectory) -> list[Condition]:
    """FC the classifier does not move; the embeddings are trained (frozen rows are
    trivially constant, so they may be; a run where they did not move is "not checked" by the
    evidence rule, not passed); some direction meets every class row equally
    (rank{U_c − U_0} < d) — each measured on the run."""
    clf, emb = traj.params["classifier"], traj.params["embeddings"]
    moved_u = _relative_movement(clf)
    _, rank = across_projector(clf[0].astype(float))
    trained = "embeddings" in traj.spec.trained
    return [
        Condition("FC", "the linear classifier U is fixed (Π is computed from U at the first "
                  "snapshot)", moved_u <= PRECONDITION_TOL, moved_u,
                  "relative movement max_τ ‖U(τ) − U(0)‖∞ / max ‖U‖∞"),
        Condition("trains-embeddings", "the embeddings follow the flow (frozen rows allowed: "
                  "their part is trivially constant)", trained,
                  _relative_movement(emb), "relative movement max_τ ‖v(τ) − v(0)‖∞ / max ‖v‖∞"
                  + ("" if trained else "; the embeddings are frozen (trivially constant)")),
        Condition("N", "some direction meets every class row of U equally (d − rank{U_c − U_0}"
                  " ≥ 1)", rank < emb.shape[2], float(emb.shape[2] - rank),
                  f"conserved directions per word: d − rank = {emb.shape[2]} − {rank}"),
    ]


LAWS = (
    Law("SEN", "½‖v_t‖² − (s_t + e^{s_t−c}/m)/‖q‖² is constant for every topic word t",
        ("linear", "mlp"), sen_terms, sen_conditions),
    Law("query-key", "q qᵀ − Σ_w κ_w κ_wᵀ is constant", ("linear", "mlp"), query_key_terms,
        _vanish("query", "keys")),
    Law("classifier-embedding", "UᵀU − Σ_w v_w v_wᵀ is constant", ("linear",),
        classifier_embedding_terms, _vanish("classifier", "embeddings")),
    Law("hidden-embedding", "W1ᵀW1 − Σ_w v_w v_wᵀ is constant", ("mlp",),
        hidden_embedding_terms, _vanish("hidden_weight", "embeddings")),
    Law("relu-unit", "‖W2[:, j]‖² − ‖W1[j, :]‖² − b1_j² is constant for every hidden unit j",
        ("mlp",), relu_unit_terms, _vanish("output_weight", "hidden_weight", "hidden_bias")),
    Law("key-sum", "Σ_w κ_w is constant", ("linear", "mlp"),
        _printed_terms("key-sum", ("keys",), "key entry"), _needs("keys"),
        _summands_movement("key-sum", ("keys",))),
    Law("key-across-query", "q_r κ_{w,t} − q_t κ_{w,r} is constant for every word w when the "
        "query is fixed", ("linear", "mlp"),
        _printed_terms("key-across-query", ("keys", "query"), "word", per_word=True),
        _needs("keys", query_fixed=True)),
    Law("classifier-sum", "Σ_c U[c, :] is constant (cross-entropy)", ("linear",),
        _printed_terms("classifier-sum", ("classifier",), "embedding entry"),
        _needs("classifier"), _summands_movement("classifier-sum", ("classifier",))),
    Law("output-weight-sum", "Σ_c W2[c, :] is constant (cross-entropy)", ("mlp",),
        _printed_terms("output-weight-sum", ("output_weight",), "hidden unit"),
        _needs("output_weight"), _summands_movement("output-weight-sum", ("output_weight",))),
    Law("output-bias-sum", "Σ_c b2_c is constant (cross-entropy)", ("mlp",),
        _printed_terms("output-bias-sum", ("output_bias",), "sum"), _needs("output_bias"),
        _summands_movement("output-bias-sum", ("output_bias",))),
    Law("embedding-across-classifier", "Π v_w is constant for every word w, Π the projector "
        "onto the directions every class row of the fixed classifier U meets equally "
        "(cross-entropy)", ("linear",), across_terms, across_conditions, across_movement),
)


# --- the self-attention family (symbolic/laws_attention.py) --------------------------------

ATTENTION_ARCHITECTURES = ("self-attention", "multi-head")


def _cross_entropy(traj: Trajectory) -> Condition:
    """The translation law's loss: cross-entropy (its labels one-hot, as every label is)."""
    loss = traj.spec.loss
    return Condition("Y", "the loss is cross-entropy against one-hot labels (squared error "
                     "sees a shift common to every logit, so the sum is not conserved there)",
                     loss == "cross-entropy", float(loss != "cross-entropy"),
                     f"the run's loss is {loss}")


def _attention_matrix(name: str, params: tuple[str, ...]) -> Callable:
    return lambda traj: _matrix_terms(traj, name, params)


def _trains_with_cross_entropy(traj: Trajectory) -> list[Condition]:
    return [_cross_entropy(traj), _moves(traj, "classifier")]


ATTENTION_LAWS = (
    Law("head-query-key", "Q_h Q_hᵀ − K_h K_hᵀ is constant for every head h", (),
        _printed_terms("head-query-key", ("head_query", "head_key"), "head", per_word=True),
        _needs("head_query", "head_key"), architectures=ATTENTION_ARCHITECTURES),
    Law("head-value-output", "V_h V_hᵀ − O_h O_hᵀ is constant for every head h", (),
        _printed_terms("head-value-output", ("head_value", "head_output"), "head",
                       per_word=True),
        _needs("head_value", "head_output"), architectures=ATTENTION_ARCHITECTURES),
    Law("classifier-output", "UᵀU − Σ_h O_hᵀ O_h is constant", (),
        _attention_matrix("classifier-output", ("head_output", "classifier")),
        _needs("classifier", "head_output"), architectures=ATTENTION_ARCHITECTURES),
    Law("embedding-projections", "Σ_w E_w E_wᵀ − Σ_h (Q_hᵀQ_h + K_hᵀK_h + V_hᵀV_h) is "
        "constant", (),
        _attention_matrix("embedding-projections",
                          ("embeddings", "head_query", "head_key", "head_value")),
        _needs("embeddings", "head_query", "head_key", "head_value"),
        architectures=ATTENTION_ARCHITECTURES),
    Law("attention-classifier-sum", "Σ_c U[c, :] is constant (cross-entropy)", (),
        _printed_terms("attention-classifier-sum", ("classifier",), "embedding entry"),
        _trains_with_cross_entropy, _summands_movement("attention-classifier-sum",
                                                       ("classifier",)),
        architectures=ATTENTION_ARCHITECTURES),
)


def _num(x: float):
    """JSON-safe number (NaN becomes None)."""
    return None if x is None or not np.isfinite(x) else float(x)

"""Replay a recorded run and explain each law's drift.

**Replay.** From each checkpoint ``θ(t_i)`` of a trajectory file the stated optimizer
(learning rate ``η``, weight decay ``λ``, heavy-ball momentum ``β``; ``numeric.integrate``'s
conventions) runs ``n_i = (t_{i+1} − t_i)/η`` steps in float64; per parameter the report gives
the recorded checkpoint's distance from the replayed one, relative to the parameter's norm and
to its movement over the interval, and the ratio of the recorded to the replayed movement
(0.9: the run took 0.9× the stated steps, e.g. lr 0.09 instead of 0.1). With momentum the
buffer is not stored in checkpoints, so the replay runs continuously from the first
checkpoint (buffer 0, as at the start of training) and compares at every checkpoint.

**Accuracy.** Checkpoints hold ``ε`` rounding (``ε`` of the file's dtype) and the recorded run
made ``n_i`` rounded steps per interval, so a faithful replay lands within ``ACCURACY_ULPS ·
(n_i + 1)·ε`` of the recorded checkpoint, relative to the parameter's norm. float32 files are
judged against float32 rounding, not float64.

**Bounds.** Step counts beyond 2⁵³ are refused, and a replay is estimated before it starts
(``replay_cost``: its steps × one step timed at the first checkpoint) and refused over a CPU
time limit (``MAX_REPLAY_SECONDS`` by default).

**Attribution.** Along the replay, every step's law change is split by the derived, printed
formulas (``numeric.attribution``): assumption violations ``−η∇Q·∇L``, weight decay,
momentum, and discretisation ``R``. Summed over the run and compared with the drift measured
on the recorded checkpoints, what they miss is *unexplained*: the replay mismatch plus any
error in the derived terms. The drift is *explained* when the unexplained part is within the
replay's accuracy ``acc = ACCURACY_ULPS · Σ_i (n_i + 1)·ε · max_τ σ`` (``σ`` the law's
sensitivity, ``numeric.laws``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import numeric
from numeric.attribution import STEP_PARTS, adapters, measured_quantity
from numeric.checks import nan_worst
from numeric.integrate import _momentum, _non_negative, _positive, _unfrozen
from numeric.trajectory import Trajectory

#: A faithful replay lands within this many roundings per step of the recorded checkpoint.
ACCURACY_ULPS = 8.0
#: Checkpoint times must be multiples of lr to this relative precision.
STEP_COUNT_TOL = 1e-6
#: Step counts beyond this (2^53) are not integers in float64: no replay is that long.
MAX_STEP_COUNT = 2.0 ** 53
#: A replay estimated to take more CPU time than this is refused before it starts (seconds;
#: ``attnflow laws --max-replay-seconds``).
MAX_REPLAY_SECONDS = 3600.0
#: The laws ``attnflow laws --lr`` always attributes: the paper's, whose drift (which
#: assumption breaks, how much the finite step adds) is what a run is explained by. Any other
#: declared law is attributed when the snapshots violate it (e.g. a sum law under weight
#: decay); one that holds needs no explaining, and per-word laws cost a (W, d, d) array per
#: step.
PAPER_LAWS = ("SEN", "query-key", "classifier-embedding", "hidden-embedding", "relu-unit")


def always_attributed(spec) -> tuple[str, ...]:
    """The laws ``attnflow laws --lr`` attributes on a run of ``spec``: the paper's
    (``PAPER_LAWS``), or every law of the self-attention family (none is per word)."""
    from numeric.laws import laws_for
    if spec.architecture == "paper":
        return PAPER_LAWS
    return tuple(law.name for law in laws_for(spec))


@dataclass(frozen=True)
class Optimizer:
    """Full-batch gradient descent with L2 (or decoupled) weight decay and momentum."""

    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0
    decoupled: bool = False

    def __post_init__(self):
        object.__setattr__(self, "lr", _positive("lr", self.lr))
        object.__setattr__(self, "weight_decay",
                           _non_negative("weight_decay", self.weight_decay))
        object.__setattr__(self, "momentum", _momentum(self.momentum))
        if not isinstance(self.decoupled, (bool, np.bool_)):
            raise ValueError(f"decoupled must be True or False, got {self.decoupled!r}")


@dataclass
class Replay:
    """Per interval and parameter: distance of the recorded from the replayed checkpoint."""

    steps: np.ndarray                  # (I,) steps per interval
    relative: dict[str, np.ndarray]    # (I,) ‖rec − rep‖ / ‖rep‖
    of_movement: dict[str, np.ndarray]  # (I,) ‖rec − rep‖ / ‖rep − start‖
    movement_ratio: dict[str, float]   # ⟨rec − start, rep − start⟩ / ‖rep − start‖², all
    floor: np.ndarray                  # (I,) relative accuracy of a faithful replay
    dtype: str
    continuous: bool
    seconds: float = 0.0

    @property
    def worst(self) -> tuple[str, int, float]:
        """``(parameter, interval, distance / floor)`` at the largest ratio."""
        candidates = [("", -1, 0.0)]
        for n, r in self.relative.items():
            ratio = r / self.floor
            if ratio.size:
                i = int(np.argmax(ratio))     # the first NaN, if there is one
                candidates.append((n, i, float(ratio[i])))
        # a NaN distance is the worst (and fails consistent's NaN-safe test)
        return nan_worst(candidates, key=lambda c: c[2])

    @property
    def consistent(self) -> bool:
        return self.worst[2] <= 1.0

    def to_dict(self) -> dict:
        """JSON-safe: a ratio that is not a finite number (nothing moved in the replay, a
        distance from a zero parameter) is null."""
        name, i, ratio = self.worst
        return {"consistent": self.consistent, "dtype": self.dtype,
                "continuous": self.continuous, "intervals": int(self.steps.size),
                "steps": int(self.steps.sum()),
                "worst": {"parameter": name, "interval": i,
                          "distance_over_floor": _finite(ratio)},
                "parameters": {n: {"max_relative_distance": _finite(r.max(initial=0.0)),
                                   "max_distance_of_movement":
                                       _finite(np.nanmax(self.of_movement[n], initial=0.0)),
                                   "movement_ratio": _finite(self.movement_ratio[n])}
                               for n, r in self.relative.items()},
                "floor": float(self.floor.max(initial=0.0)), "seconds": self.seconds}


def _finite(x) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass
class Attribution:
    """One law: measured drift ``Q(end) − Q(start)`` per component and its derived parts."""

    law: str
    labels: list[str]
    measured: np.ndarray
    parts: dict[str, np.ndarray]       # assumptions, weight_decay, momentum, discretisation
    accuracy: float
    notes: list[str] = field(default_factory=list)
    #: a checkpoint-only estimate: never "explained"
    estimate: bool = False

    @property
    def unexplained(self) -> np.ndarray:
        return self.measured - sum(self.parts.values())

    def norms(self) -> dict[str, np.ndarray]:
        """Per component: |·| (Frobenius for matrices) of measured, each part, unexplained."""
        def size(x):
            x = np.asarray(x)
            return np.sqrt((x ** 2).reshape(x.shape[0], -1).sum(axis=1))
        out = {"measured": size(self.measured)}
        out.update({k: size(v) for k, v in self.parts.items()})
        out["unexplained"] = size(self.unexplained)
        return out

    def signed(self) -> dict[str, np.ndarray]:
        """Per component, signed parts that add up to the measured drift: the values of a
        scalar component (they sum to ``ΔQ``), else each part's length along ``ΔQ``,
        ``⟨part, ΔQ⟩/‖ΔQ‖`` (they sum to ``‖ΔQ‖``; 0 where ``ΔQ = 0``)."""
        rest = {} if self.estimate else {"unexplained": self.unexplained}
        items = {"measured": self.measured, **self.parts, **rest}
        if self.measured.ndim == 1:
            return {k: np.asarray(v, dtype=float) for k, v in items.items()}
        flat = {k: np.asarray(v, dtype=float).reshape(len(self.labels), -1)
                for k, v in items.items()}
        length = np.sqrt((flat["measured"] ** 2).sum(axis=1))
        unit = flat["measured"] / np.where(length > 0, length, 1.0)[:, None]
        return {k: (v * unit).sum(axis=1) for k, v in flat.items()}

    @property
    def explained(self) -> bool:
        return not self.estimate and bool((self.norms()["unexplained"] <= self.accuracy).all())

    @property
    def verdict(self) -> str:
        if self.estimate:
            return "estimate"
        return "explained" if self.explained else "unexplained"

    def to_dict(self) -> dict:
        n, signed = self.norms(), self.signed()
        if self.estimate:       # the rest is first_order_rest by construction: no residual
            n.pop("unexplained")
        comps = []
        for k, label in enumerate(self.labels):
            scale = n["measured"][k]
            entry = {"component": label}
            for key, v in n.items():
                entry[key] = float(v[k])
                if key != "measured":
                    entry[f"{key}_share"] = float(v[k] / scale) if scale > 0 else None
            entry["signed"] = {key: float(v[k]) for key, v in signed.items()}
            total = signed["measured"][k]
            entry["signed_share"] = {key: float(v[k] / total) if total != 0 else None
                                     for key, v in signed.items() if key != "measured"}
            comps.append(entry)
        worst = int(np.argmax(n.get("unexplained", n["measured"]))) if self.labels else 0
        return {"law": self.law, "verdict": self.verdict,
                "accuracy": self.accuracy, "worst_component": self.labels[worst]
                if self.labels else "", "notes": self.notes,
                "signed": "values" if self.measured.ndim == 1 else "along the drift",
                "components": comps}


def step_counts(time: np.ndarray, lr: float) -> np.ndarray:
    """``n_i = (t_{i+1} − t_i)/lr``, integers; ``ValueError`` if the times are not multiples
    of the learning rate or a count is too large to be a step count at all."""
    with np.errstate(over="ignore"):
        n = np.diff(time) / lr
    if n.size and not n.max() <= MAX_STEP_COUNT:
        i = int(np.argmax(np.where(np.isfinite(n), n, np.inf)))
        raise ValueError(f"lr = {lr:g} makes {n[i]:.3g} steps from t = {time[i]:g} to "
                         f"{time[i + 1]:g}: more than any replay can take (2^53)")
    k = np.rint(n)
    bad = np.flatnonzero((np.abs(n - k) > STEP_COUNT_TOL * np.maximum(1.0, n)) | (k < 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"checkpoint times are not multiples of lr = {lr:g}: from "
                         f"t = {time[i]:g} to {time[i + 1]:g} is {n[i]:.6g} steps")
    return k.astype(np.int64)


@dataclass(frozen=True)
class Cost:
    """What a replay takes: its steps and the CPU seconds of one (timed at the first
    checkpoint: a gradient and the chosen laws' parts)."""

    steps: int
    per_step: float

    @property
    def seconds(self) -> float:
        """Estimated CPU seconds of the whole replay."""
        return self.steps * self.per_step

    def refusal(self, lr: float, limit: float) -> str:
        """Why a replay over ``limit`` CPU seconds is not started ("" when it is not)."""
        if self.seconds <= limit:
            return ""
        return (f"lr = {lr:g} means {self.steps:.3g} replay steps, estimated {self.seconds:.3g} "
                f"CPU seconds ({self.per_step * 1e3:.3g} ms per step); the limit is "
                f"{limit:g} s")


def replay_cost(traj: Trajectory, opt: Optimizer, *, laws=None) -> Cost:
    """The replay's step count (``step_counts``: ``ValueError`` for times that do not fit
    ``lr``) and its CPU time, from the quicker of two steps timed at the first checkpoint."""
    return _cost(traj, opt, step_counts(traj.time, opt.lr), _chosen(adapters(traj), laws)[0])


def _cost(traj, opt, steps, ads) -> Cost:
    import time as clock

    spec = dataclasses.replace(traj.spec, dtype="float64")
    p, buffer, sums = _f64(traj.snapshot(0)), None, _sums(traj, ads, 1)
    best = np.inf
    for _ in range(2):
        start = clock.process_time()
        p, buffer = _step(p, buffer, opt, traj.data, spec, traj.frozen_rows, ads, sums, 0)
        best = min(best, clock.process_time() - start)
    return Cost(int(steps.sum()), best)


def explain(traj: Trajectory, opt: Optimizer, *, laws=None, jobs: int = 1,
            max_seconds: float | None = MAX_REPLAY_SECONDS
            ) -> tuple[Replay, list[Attribution], dict[str, str]]:
    """Replay ``traj`` with ``opt`` and attribute every defined law's drift (``laws``: a
    subset of names). Returns the replay, the attributions and the laws skipped (why).
    ``jobs > 1`` replays groups of intervals in that many forked processes (each interval
    starts from its own checkpoint, so they are independent; not with momentum). A replay
    estimated (``replay_cost``) to take more than ``max_seconds`` CPU seconds raises
    ``ValueError`` before it starts (``None``: no limit)."""
    import time as clock

    start = clock.perf_counter()
    if not isinstance(jobs, (int, np.integer)) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if len(traj) < 2:
        raise ValueError("a trajectory of one snapshot has no interval to replay")
    steps = step_counts(traj.time, opt.lr)
    ads, skipped = _chosen(adapters(traj), laws)
    if max_seconds is not None:
        refusal = _cost(traj, opt, steps, ads).refusal(opt.lr, max_seconds)
        if refusal:
            raise ValueError(refusal)
    continuous = opt.momentum > 0
    groups = np.array_split(np.arange(len(steps)), 1 if continuous else min(jobs, len(steps)))
    if len(groups) == 1:
        parts = [_replay_intervals(traj, opt, ads, steps, groups[0], continuous)]
    else:
        parts = _in_processes(traj, opt, ads, steps, groups)
    out = {key: _concat([x[key] for x in parts]) for key in ("sums", "relative", "of_movement")}
    names = traj.spec.trained
    dots = np.sum([x["dots"] for x in parts], axis=0)
    ratio = {n: (dots[k, 0] / dots[k, 1] if dots[k, 1] > 0 else float("nan"))
             for k, n in enumerate(names)}
    eps = float(np.finfo(traj.spec.float).eps)
    floor = ACCURACY_ULPS * (steps + 1) * eps
    if continuous:
        floor = np.cumsum(floor)
    replay = Replay(steps, out["relative"], out["of_movement"], ratio, floor, traj.spec.dtype,
                    continuous)
    attributions = []
    for law, a in ads.items():
        q, sens = measured_quantity(law, traj)
        acc = float(ACCURACY_ULPS * ((steps + 1) * eps).sum() * sens.max())
        attributions.append(Attribution(law, a.labels, q[-1] - q[0],
                                        {k: v.sum(axis=0) for k, v in out["sums"][law].items()},
                                        acc))
    replay.seconds = clock.perf_counter() - start
    return replay, attributions, skipped


def _chosen(found, laws):
    """The adapters and skipped laws among ``laws`` (``None``: every law)."""
    if laws is None:
        return found
    return tuple({k: v for k, v in x.items() if k in laws} for x in found)


def _concat(items):
    """Join per-group results along the interval axis (dicts recursively)."""
    if isinstance(items[0], dict):
        return {k: _concat([x[k] for x in items]) for k in items[0]}
    return np.concatenate(items)


def _replay_intervals(traj, opt, ads, steps, intervals, continuous) -> dict:
    """Replay ``intervals`` (consecutive), each from its checkpoint (or continuing, with
    momentum): per interval the parts' sums per law, the distances, and movement dots."""
    spec = dataclasses.replace(traj.spec, dtype="float64")
    names, rows = spec.trained, traj.frozen_rows
    sums = _sums(traj, ads, len(intervals))
    relative = {n: np.zeros(len(intervals)) for n in names}
    of_movement = {n: np.zeros(len(intervals)) for n in names}
    dots = np.zeros((len(names), 2))
    p = _f64(traj.snapshot(int(intervals[0])))
    buffer = None
    for j, i in enumerate(intervals):
        if not continuous:
            p = _f64(traj.snapshot(int(i)))
        begin = p
        for _ in range(int(steps[i])):
            p, buffer = _step(p, buffer, opt, traj.data, spec, rows, ads, sums, j)
        recorded = _f64(traj.snapshot(int(i) + 1))
        for k, n in enumerate(names):
            gap = recorded[n] - p[n]
            moved = p[n] - begin[n]
            relative[n][j] = _ratio(np.linalg.norm(gap), np.linalg.norm(p[n]))
            of_movement[n][j] = _ratio(np.linalg.norm(gap), np.linalg.norm(moved))
            dots[k] += (float(np.vdot(recorded[n] - begin[n], moved)),
                        float(np.vdot(moved, moved)))
    return {"sums": sums, "relative": relative, "of_movement": of_movement, "dots": dots}


def _sums(traj, ads, intervals: int) -> dict:
    """Zeroed per-interval sums of every law's parts, shaped like its components."""
    zero, first = _zero(traj.snapshot(0)), _f64(traj.snapshot(0))
    return {k: {p: np.zeros((intervals,) + np.shape(a.first_order(first, zero)))
                for p in STEP_PARTS + ("discretisation",)} for k, a in ads.items()}


def _step(p, buffer, opt, data, spec, rows, ads, sums, j):
    """One step of ``opt`` from ``p`` (float64, ``spec`` float64): every law's parts are
    added to ``sums[law][part][j]``; returns the next parameters and momentum buffer."""
    names = spec.trained
    g = numeric.gradient(p, data, spec, wrt=names)
    d = _parts(p, g, buffer, opt, rows)
    total = _sum_parts(d, names)
    for law, a in ads.items():
        for part in STEP_PARTS:
            if part == "assumptions" or getattr(opt, part):
                sums[law][part][j] += a.first_order(p, d[part])
        sums[law]["discretisation"][j] += a.remainder(p, total)
    if opt.momentum > 0:
        buffer = {n: (total[n] - d["weight_decay"][n] * opt.decoupled) / opt.lr
                  for n in names}
    return {n: p[n] + total[n] if n in names else p[n] for n in p}, buffer


#: What forked workers read (set just before the pool forks; never pickled).
_SHARED: tuple = ()


def _worker(group):
    return _replay_intervals(*_SHARED[:4], group, False)


def _in_processes(traj, opt, ads, steps, groups) -> list[dict]:
    """Groups of intervals in forked processes (the trajectory is inherited, not pickled)."""
    import multiprocessing

    global _SHARED
    _SHARED = (traj, opt, ads, steps)
    try:
        with multiprocessing.get_context("fork").Pool(len(groups)) as pool:
            return pool.map(_worker, groups)
    finally:
        _SHARED = ()


def _parts(p, g, buffer, opt: Optimizer, rows) -> dict[str, dict[str, np.ndarray]]:
    """The step ``Δθ`` split into ``−η∇L``, ``−ηλθ`` and ``ηβ·b_{k−1}`` (flow-signed buffer),
    zero on frozen arrays and rows, matching ``numeric.integrate.gradient_descent``."""
    lr, lam, beta = opt.lr, opt.weight_decay, opt.momentum
    data = {n: _unfrozen(-lr * gn, n, rows) for n, gn in g.items()}
    decay = {n: _unfrozen(-lr * lam * p[n], n, rows) for n in g} if lam else {}
    mom = ({n: lr * beta * buffer[n] for n in g} if beta and buffer is not None else {})
    return {"assumptions": _full(data, p), "weight_decay": _full(decay, p),
            "momentum": _full(mom, p)}


def _full(part, p):
    """A step part on every parameter (frozen ones: 0, shared so never written to)."""
    return {n: part[n] if n in part else _zeros(p[n]) for n in p}


_ZEROS: dict = {}


def _zeros(x):
    key = (x.shape, x.dtype)
    if key not in _ZEROS:
        _ZEROS[key] = np.zeros_like(x)
        _ZEROS[key].setflags(write=False)
    return _ZEROS[key]


def _sum_parts(d, names):
    total = dict(d["assumptions"])
    for part in ("weight_decay", "momentum"):
        for n in names:
            if d[part][n] is not _ZEROS.get((d[part][n].shape, d[part][n].dtype)):
                total[n] = total[n] + d[part][n]
    return total


def _f64(params):
    return {n: np.asarray(x, dtype=np.float64) for n, x in params.items()}


def _zero(params):
    return {n: np.zeros_like(x, dtype=np.float64) for n, x in params.items()}


def _ratio(a, b):
    return float(a / b) if b > 0 else (0.0 if a == 0 else float("inf"))


def estimate_from_checkpoints(traj: Trajectory, opt: Optimizer, *, laws=None):
    """Checkpoint-only approximation (no replay on the data): the ``n_i`` steps of interval
    ``i`` are taken equal, ``δ_i = (θ_{i+1} − θ_i)/n_i``, so discretisation ``≈ n_i·½(R(θ_i,
    δ_i) + R(θ_{i+1}, δ_i))`` and weight decay ``≈ −ηλ n_i·½(∇Q·θ|_i + ∇Q·θ|_{i+1})``
    (trapezoid). Assumption violations and momentum are not separable without the data:
    what the estimates leave is reported as ``first_order_rest``, and nothing is called
    explained. ``Σ R_k ≥ n R(mean step)`` for a quadratic ``R``, so the discretisation is
    underestimated where the steps change within an interval (early training)."""
    steps = step_counts(traj.time, opt.lr)
    ads, skipped = _chosen(adapters(traj), laws)
    snaps = [_f64(traj.snapshot(i)) for i in range(len(traj))]
    trained = traj.spec.trained
    out = []
    for law, a in ads.items():
        q, sens = measured_quantity(law, traj)
        disc = np.zeros_like(np.asarray(a.remainder(snaps[0], _zero(snaps[0]))))
        decay = np.zeros_like(disc)
        for i, n in enumerate(steps):
            delta = {k: (snaps[i + 1][k] - snaps[i][k]) / n for k in snaps[i]}
            disc = disc + n * 0.5 * (a.remainder(snaps[i], delta)
                                     + a.remainder(snaps[i + 1], delta))
            if opt.weight_decay:
                radial = [{k: _unfrozen(-opt.lr * opt.weight_decay * x[k], k,
                                           traj.frozen_rows) if k in trained
                           else np.zeros_like(x[k]) for k in x} for x in snaps[i:i + 2]]
                decay = decay + n * 0.5 * (a.first_order(snaps[i], radial[0])
                                           + a.first_order(snaps[i + 1], radial[1]))
        measured = q[-1] - q[0]
        parts = {"discretisation": disc, "weight_decay": decay,
                 "first_order_rest": measured - disc - decay}
        acc = float(ACCURACY_ULPS * ((steps + 1) * float(np.finfo(traj.spec.float).eps)
                                     ).sum() * sens.max())
        out.append(Attribution(law, a.labels, measured, parts, acc, notes=[
            "checkpoint-only approximation: steps within an interval taken equal; "
            "assumption violations and momentum not separated (first_order_rest); "
            "not a verdict"], estimate=True))
    return out, skipped


class StepDrift:
    """Training callback: the SEN drift of every topic word attributed step by step while
    gradient descent runs (plain GD: each recorded step ``Δθ_k = θ_{k+1} − θ_k`` is
    ``−η∇L``, so ``∇Q·Δθ_k`` is the assumptions' part and ``R(θ_k, Δθ_k)`` the
    discretisation, both from the printed formulas); ``result()`` compares their sums with
    ``Q(end) − Q(start)``. Use only for plain gradient descent."""

    def __init__(self, params, data, spec):
        one = Trajectory(data, spec, [0.0], {n: np.asarray(x)[None] for n, x in params.items()})
        self.data, self.spec = data, spec
        try:
            self.adapter = adapters(one)[0]["SEN"]
            self.why = ""
        except KeyError:
            self.adapter, self.why = None, adapters(one)[1].get("SEN", "SEN not defined")
        self.first = self.prev = None
        self.sums = {"assumptions": 0.0, "discretisation": 0.0}
        self.steps = 0

    def __call__(self, step, params, loss):
        if self.adapter is None:
            return None
        p = _f64(params)
        if self.prev is not None:
            first, rest = self.adapter.step_parts(self.prev, p)
            self.sums["assumptions"] = self.sums["assumptions"] + first
            self.sums["discretisation"] = self.sums["discretisation"] + rest
            self.steps += 1
        else:
            self.first = p
        self.prev = p
        return None

    def result(self) -> Attribution | None:
        """The SEN attribution (``None`` when SEN is not defined on the run: ``why``)."""
        if self.adapter is None or self.first is None:
            return None
        ends = {n: np.stack([self.first[n], self.prev[n]]) for n in self.first}
        traj = Trajectory(self.data, dataclasses.replace(self.spec, dtype="float64"),
                          [0.0, 1.0], ends)
        q, sens = measured_quantity("SEN", traj)
        eps = float(np.finfo(self.spec.float).eps)
        acc = float(ACCURACY_ULPS * (self.steps + 1) * eps * sens.max())
        return Attribution("SEN", self.adapter.labels, q[-1] - q[0],
                           {k: np.asarray(v) for k, v in self.sums.items()}, acc)


def sen_drift_summary(att: Attribution | None, why: str = "") -> dict:
    """Per topic word: measured SEN drift ``Q(end) − Q(start)``, its assumptions' and
    discretisation parts and the unexplained rest, with shares of the measured drift."""
    if att is None:
        return {"attributed": False, "reason": why}
    out = att.to_dict()
    # no share: a word whose drift measured 0 (share 0), or a NaN rest (shown as NaN)
    worst = nan_worst(float("nan") if np.isnan(c["unexplained"]) else c["unexplained_share"]
                      or 0.0 for c in out["components"])
    return {"attributed": True, "verdict": out["verdict"],
            "max_unexplained_share": worst,
            "per_word": [{"word": c["component"], **c["signed"]} for c in out["components"]]}

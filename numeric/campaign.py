"""Randomized campaign: random configurations, adaptive trajectories, every law checked.

A configuration (``Config``) is reproducible from its seed alone (``random_config(seed)``);
a campaign with seed N checks configurations with seeds derived from (N, 0), (N, 1), … until
its time budget is spent. Along each trajectory (DOP853, ``RTOL``/``ATOL``) every applicable
law must hold to ``adaptive_tolerance``.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

import numeric
from numeric.integrate import integrate_flow
from numeric.laws import LAWS, LawReport, check_laws
from numeric.model import Dataset, ModelSpec, init_params

RTOL, ATOL = 1e-10, 1e-12
#: Gradient evaluations after which an adaptive run counts as stalled (ReLU kink).
MAX_EVALUATIONS = 6_000
#: Runs stop once some score has moved by this many units (or at the horizon).
SCORE_GROWTH = 4.0
#: ReLU runs stop once a pre-activation comes this close to 0 (the kink).
KINK_MARGIN = 1e-3
TRAINABLE = ("query", "keys", "embeddings", "classifier")


def adaptive_tolerance(n_steps: int, rtol: float = RTOL) -> float:
    """Relative accuracy of the parameters after ``n_steps`` accepted adaptive steps.

    Each step commits a local error of at most ``rtol`` relative to the state (``atol`` lies
    far below the magnitudes that move); local errors add up at most linearly over the
    steps: ``n·rtol``, times 10 for error growth along the flow. A law then holds if its
    drift is within this accuracy times its sensitivity (``numeric.laws``), plus the same
    share of the movement of its terms.
    """
    return 10 * max(n_steps, 1) * rtol


@dataclass(frozen=True)
class Config:
    """One random configuration: data sizes, model, what trains, initial scales, horizon.

    ``a2``: non-topic words have zero embeddings, equal keys and are held fixed (the paper's
    A2); ``ragged``: sentences hold between 1 and ``m`` non-topic words (breaks A3).
    Runs last until some score has moved by ``SCORE_GROWTH`` units, at most ``horizon``;
    ReLU runs also end where a pre-activation reaches its kink.
    """

    seed: int
    n_classes: int = 2
    topics_per_class: int = 1
    m: int = 2
    n_nontopic: int = 3
    n_sentences: int = 4
    d: int = 2
    d_key: int = 2
    classifier: str = "linear"
    hidden: int = 2
    trainable: tuple[str, ...] = ("keys", "embeddings")
    a2: bool = True
    ragged: bool = False
    query_scale: float = 1.0
    key_scale: float = 0.0
    embedding_scale: float = 0.1
    horizon: float = 200.0

    def describe(self) -> str:
        """Only the fields that differ from the defaults, for short readable reports."""
        default = Config(seed=self.seed)
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                 for k, v in asdict(self).items() if k == "seed" or v != getattr(default, k)]
        return f"Config({', '.join(parts)})"


@dataclass
class Setup:
    data: Dataset
    spec: ModelSpec
    params: dict
    frozen_rows: dict


def build(config: Config) -> Setup:
    """Data, model and initial parameters of ``config`` (deterministic in ``config.seed``)."""
    rng = np.random.default_rng(config.seed)
    n_topic = config.n_classes * config.topics_per_class
    n_words = n_topic + config.n_nontopic
    topic_class = np.concatenate([np.repeat(np.arange(config.n_classes),
                                            config.topics_per_class),
                                  -np.ones(config.n_nontopic, int)])
    topic = rng.integers(0, n_topic, config.n_sentences)
    nontopic = rng.integers(n_topic, n_words, (config.n_sentences, config.m))
    if config.ragged:
        lengths = rng.integers(1, config.m + 1, config.n_sentences)
        nontopic[np.arange(config.m) >= lengths[:, None]] = -1
    tokens = np.column_stack([topic, nontopic])
    data = Dataset(tokens, topic_class[topic], n_words, config.n_classes, topic_class)
    spec = ModelSpec(d=config.d, d_key=config.d_key, classifier=config.classifier,
                     hidden=config.hidden, trainable=config.trainable)
    params = init_params(spec, data, seed=config.seed, query_scale=config.query_scale,
                         key_scale=config.key_scale, embedding_scale=config.embedding_scale)
    if config.classifier == "mlp":
        # Biases away from 0 keep units off their kink for a while (the flow is smooth there).
        sign = rng.choice([-1.0, 1.0], config.hidden)
        params["hidden_bias"] = sign * rng.uniform(0.5, 2.0, config.hidden)
    frozen = {}
    if config.a2:
        rows = np.arange(n_topic, n_words)
        params["embeddings"][rows] = 0.0
        params["keys"][rows] = params["keys"][rows[0]]
        frozen = {n: rows for n in ("embeddings", "keys") if n in spec.trained}
    return Setup(data, spec, params, frozen)


def random_config(seed: int) -> Config:
    """A configuration drawn from the campaign's distribution, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    subset = tuple(n for n in TRAINABLE if rng.random() < 0.5)
    if rng.random() < 0.5:  # half the runs in the SEN setting, where the identity applies
        subset = tuple(sorted({"keys", "embeddings"} | set(subset) - {"query"}))
    return Config(
        seed=int(seed), n_classes=int(rng.integers(2, 6)),
        topics_per_class=int(rng.integers(1, 4)), m=int(rng.integers(1, 26)),
        n_nontopic=int(rng.integers(1, 16)), n_sentences=int(rng.integers(2, 61)),
        d=int(rng.integers(1, 9)), d_key=int(rng.integers(1, 9)),
        classifier=str(rng.choice(["linear", "mlp"])), hidden=int(rng.integers(1, 6)),
        trainable=subset, a2=bool(rng.random() < 0.8), ragged=bool(rng.random() < 0.15),
        query_scale=float(10 ** rng.uniform(-0.5, 0.5)),
        key_scale=float(rng.choice([0.0, 10 ** rng.uniform(-2, 0)])),
        embedding_scale=float(10 ** rng.uniform(-6, 0)),
        horizon=float(10 ** rng.uniform(2, 4)))


@dataclass
class TrajectoryResult:
    """The laws on one adaptive trajectory of ``config``; ``status`` "stalled" when the
    adaptive solver could not finish (no laws checked)."""

    config: Config
    status: str
    reports: list[LawReport] = field(default_factory=list)
    n_steps: int = 0
    tolerance: float = float("nan")
    score_growth: float = float("nan")
    seconds: float = 0.0


def run_trajectory(config: Config, rtol: float = RTOL, atol: float = ATOL) -> TrajectoryResult:
    """Integrate ``config`` adaptively to its horizon and check every law on the snapshots."""
    start = time.perf_counter()
    s = build(config)
    s0 = s.params["keys"] @ s.params["query"]

    def stop(p):
        grown = np.abs(p["keys"] @ p["query"] - s0).max() - SCORE_GROWTH
        if config.classifier == "linear":
            return grown
        # ReLU runs end before a unit reaches its kink: the flow is not smooth there
        u = numeric.context(p, s.data) @ p["hidden_weight"].T + p["hidden_bias"]
        return max(grown, KINK_MARGIN - np.abs(u).min())

    try:
        traj = integrate_flow(s.params, s.data, s.spec, config.horizon, rtol=rtol, atol=atol,
                              frozen_rows=s.frozen_rows, max_evaluations=MAX_EVALUATIONS,
                              stop_when=stop)
    except RuntimeError:  # StalledIntegration, or solve_ivp giving up on a stiff stretch
        return TrajectoryResult(config, "stalled", seconds=time.perf_counter() - start)
    accuracy = adaptive_tolerance(len(traj) - 1, rtol)
    sc = np.einsum("twk,tk->tw", traj.params["keys"], traj.params["query"])
    growth = float(np.abs(sc - sc[:1]).max())
    return TrajectoryResult(config, "ok", check_laws(traj, accuracy, accuracy), len(traj) - 1,
                            accuracy, growth, time.perf_counter() - start)


@dataclass
class LawRow:
    """Summary of one law over a campaign; ``worst``: the applicable report that used the
    largest share of its allowance."""

    law: str
    trajectories: int = 0
    applicable: int = 0
    violated: int = 0
    worst: LawReport | None = None
    worst_config: Config | None = None
    worst_not_applicable: float = 0.0

    def to_dict(self) -> dict:
        w = self.worst
        return {"law": self.law, "trajectories": self.trajectories,
                "applicable": self.applicable, "violated": self.violated,
                "worst_usage": None if w is None else w.usage,
                "worst_relative_drift": None if w is None else w.drift,
                "allowed_at_worst": None if w is None else w.allowed,
                "worst_config": None if self.worst_config is None
                else asdict(self.worst_config),
                "worst_not_applicable_drift": self.worst_not_applicable}


@dataclass
class CampaignResult:
    seed: int
    budget: float
    seconds: float
    results: list[TrajectoryResult]
    rows: list[LawRow]

    @property
    def trajectories(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def stalled(self) -> int:
        return sum(r.status == "stalled" for r in self.results)

    @property
    def ok(self) -> bool:
        """Every applicable law held on every trajectory, and at least one trajectory ran."""
        return self.trajectories > 0 and all(row.violated == 0 for row in self.rows)

    def headline(self) -> str:
        """One line for a summary table (``attnflow verify``)."""
        checked = [row for row in self.rows if row.worst is not None]
        worst = max(checked, key=lambda row: row.worst.usage, default=None)
        violated = sum(row.violated for row in self.rows)
        text = (f"{self.trajectories} random trajectories (seed {self.seed}), "
                f"{sum(row.applicable for row in self.rows)} applicable law checks, "
                f"{violated} violated")
        if worst is not None:
            text += (f"; worst: {worst.law} drift {worst.worst.drift:.1e} "
                     f"(allowed {worst.worst.allowed:.1e}, config seed "
                     f"{worst.worst_config.seed})")
        return text

    def to_dict(self) -> dict:
        return {"ok": self.ok, "seed": self.seed, "budget_seconds": self.budget,
                "seconds": self.seconds, "trajectories": self.trajectories,
                "stalled": self.stalled, "rtol": RTOL, "atol": ATOL,
                "laws": [row.to_dict() for row in self.rows],
                "violations": [{"law": rep.law, "relative_drift": rep.drift,
                                "allowed": rep.allowed, "config": asdict(r.config)}
                               for r in self.results for rep in r.reports
                               if rep.verdict == "violated"]}


def summarize(results: list[TrajectoryResult]) -> list[LawRow]:
    rows = {law.name: LawRow(law.name) for law in LAWS}
    for r in results:
        for rep in r.reports:
            row = rows[rep.law]
            row.trajectories += 1
            if not rep.applicable:
                if np.isfinite(rep.drift):
                    row.worst_not_applicable = max(row.worst_not_applicable, rep.drift)
                continue
            row.applicable += 1
            row.violated += rep.verdict == "violated"
            if row.worst is None or rep.usage > row.worst.usage:
                row.worst, row.worst_config = rep, r.config
    return list(rows.values())


def config_seed(campaign_seed: int, i: int) -> int:
    """Seed of the i-th configuration of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, i]).generate_state(1)[0])


def run_campaign(budget: float, seed: int = 0, progress: bool = True,
                 workers: int | None = None) -> CampaignResult:
    """Check random configurations for ``budget`` seconds of wall time on ``workers``
    processes (default: all cores); trajectories already started are finished."""
    if not np.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget must be a positive number of seconds, got {budget}")
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    results: list[TrajectoryResult] = []
    bar = tqdm(total=round(budget), disable=not progress, desc="attnflow check", unit="s")

    def tick(r: TrajectoryResult):
        results.append(r)
        bar.update(max(0, min(round(time.perf_counter() - start), bar.total) - bar.n))
        bar.set_postfix(trajectories=sum(x.status == "ok" for x in results), refresh=False)

    i = 0
    if workers == 1:
        while time.perf_counter() - start < budget:
            tick(run_trajectory(random_config(config_seed(seed, i))))
            i += 1
    else:
        with ProcessPoolExecutor(workers) as pool:
            pending = set()
            while pending or time.perf_counter() - start < budget:
                while len(pending) < 2 * workers and time.perf_counter() - start < budget:
                    pending.add(pool.submit(run_trajectory,
                                            random_config(config_seed(seed, i))))
                    i += 1
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for f in done:
                    tick(f.result())
    bar.close()
    return CampaignResult(seed, budget, time.perf_counter() - start, results,
                          summarize(results))

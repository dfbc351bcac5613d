"""Law campaign: a Hypothesis search over configurations, every applicable law checked along
an adaptive trajectory of each.

A configuration (``Config``) reruns exactly from its text (``Config.to_text`` /
``Config.from_text``; ``run_case``). A campaign with seed N runs shards: shard k is one
Hypothesis run of ``examples`` examples with seed ``shard_seed(N, k)``, drawing from
``numeric.strategies.campaign_configurations``; each example integrates its configuration
(DOP853, ``RTOL``/``ATOL``), checks every applicable law to ``adaptive_tolerance`` and calls
``hypothesis.target`` with each law's usage of its allowance and its relative drift, so the
search climbs towards the cases closest to failing. A violated law fails the example, and
Hypothesis shrinks it to the smallest configuration it can. Shards run on local processes or
a Dask cluster (``numeric.executors``) and merge into one ``CampaignResult``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

import numeric
from numeric.integrate import SOLVER_GAVE_UP, integrate_flow
from numeric.laws import ATTENTION_LAWS, LAWS, LawReport, check_laws
from numeric.model import ARCHITECTURES, CLASSIFIER_PARAMS, LOSSES, Dataset, ModelSpec, init_params
from numeric.trajectory import HEAD_PARAMS, Trajectory

RTOL, ATOL = 1e-10, 1e-12
#: Gradient evaluations after which an adaptive run counts as stalled (ReLU kink).
MAX_EVALUATIONS = 6_000
#: Runs stop once some score has moved by this many units (or at the horizon).
SCORE_GROWTH = 4.0
#: ReLU runs stop once a pre-activation comes this close to 0 (the kink).
KINK_MARGIN = 1e-3
TRAINABLE = ("query", "keys", "embeddings", "classifier")
#: What a configuration may train, by architecture.
TRAINABLE_BY = {"paper": TRAINABLE, "self-attention": HEAD_PARAMS, "multi-head": HEAD_PARAMS}
#: Fields of the paper's model (a self-attention configuration leaves them at their defaults).
PAPER_FIELDS = ("d_key", "classifier", "hidden", "a2", "query_scale", "key_scale")


def adaptive_tolerance(n_steps: int, rtol: float = RTOL) -> float:
    """Relative accuracy of the parameters after ``n_steps`` accepted adaptive steps.

    Each step commits a local error of at most ``atol + rtol·|θ|``; local errors add up at
    most linearly over the steps: ``n·rtol`` relative, times 10 for error growth along the
    flow (and the same of ``atol`` absolute: the resolution of entries near 0). A law then
    holds if its drift is within this accuracy times its sensitivity (``numeric.laws``),
    plus the same share of the movement of its terms.
    """
    return 10 * max(n_steps, 1) * rtol


@dataclass(frozen=True)
class Config:
    """One random configuration: data sizes, model, what trains, initial scales, horizon.

    ``a2``: non-topic words have zero embeddings, equal keys and are held fixed (the paper's
    A2); ``ragged``: sentences hold between 1 and ``m`` non-topic words (breaks A3).
    Runs last until some score has moved by ``SCORE_GROWTH`` units, at most ``horizon``;
    ReLU runs also end where a pre-activation reaches its kink.

    ``architecture="self-attention"`` or ``"multi-head"``: the same sentences through
    ``heads`` heads of width ``d_head`` and ``loss``; the paper's own fields (``d_key``,
    ``classifier``, ``hidden``, ``a2``, the query and key scales) stay at their defaults but
    ``a2``, which is off; runs last until some parameter entry has moved by ``SCORE_GROWTH``.
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
    architecture: str = "paper"
    heads: int = 1
    d_head: int = 1
    loss: str = "cross-entropy"

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"Config.architecture must be one of {', '.join(ARCHITECTURES)}, "
                             f"got {self.architecture!r}")
        if self.loss not in LOSSES[self.architecture]:
            raise ValueError(f"Config.loss must be one of "
                             f"{', '.join(LOSSES[self.architecture])} for the "
                             f"{self.architecture} architecture, got {self.loss!r}")
        for name, low in SIZE_MINIMUM.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < low:
                raise ValueError(f"Config.{name} must be an integer >= {low}, got {value!r}")
        self._check_fields_of_the_architecture()
        if self.classifier not in ("linear", "mlp"):
            raise ValueError(f"Config.classifier must be 'linear' or 'mlp', got "
                             f"{self.classifier!r}")
        names = TRAINABLE_BY[self.architecture]
        unknown = set(self.trainable) - set(names)
        if unknown or len(set(self.trainable)) != len(self.trainable):
            raise ValueError(f"Config.trainable must be distinct names among {names}, "
                             f"got {self.trainable!r}")
        for name, positive in [("query_scale", True), ("key_scale", False),
                               ("embedding_scale", True), ("horizon", True)]:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and (value > 0 if positive else value >= 0)):
                raise ValueError(f"Config.{name} must be a finite number "
                                 f"{'> 0' if positive else '>= 0'}, got {value!r}")

    def _check_fields_of_the_architecture(self):
        """A self-attention configuration leaves the paper's fields alone (``a2`` off), and
        the paper's leaves ``heads``, ``d_head`` at 1."""
        defaults = {f.name: f.default for f in fields(Config)}
        if self.architecture == "paper":
            moved = [n for n in ("heads", "d_head") if getattr(self, n) != defaults[n]]
            if moved:
                raise ValueError(f"Config.{moved[0]} belongs to the self-attention "
                                 f"architectures; set architecture=self-attention or multi-head")
            return
        if self.a2:
            raise ValueError("Config.a2 (the paper's non-topic words held at zero) does not "
                             "apply to the self-attention architectures: give a2=no")
        moved = [n for n in PAPER_FIELDS if n != "a2" and getattr(self, n) != defaults[n]]
        if moved:
            raise ValueError(f"Config.{moved[0]} belongs to the paper's model, not to the "
                             f"{self.architecture} architecture")
        if self.architecture == "self-attention" and self.heads != 1:
            raise ValueError(f"Config.heads must be 1 for self-attention, got {self.heads}")

    def has_size(self, name: str) -> bool:
        """Whether the size field ``name`` belongs to this configuration's architecture."""
        if self.architecture == "paper":
            return name not in ("heads", "d_head")
        return name not in PAPER_FIELDS

    @property
    def n_words(self) -> int:
        return self.n_classes * self.topics_per_class + self.n_nontopic

    @property
    def spec(self) -> ModelSpec:
        if self.architecture != "paper":
            return ModelSpec(architecture=self.architecture, d=self.d, d_head=self.d_head,
                             heads=self.heads, loss=self.loss, trainable=self.trainable)
        return ModelSpec(d=self.d, d_key=self.d_key, classifier=self.classifier,
                         hidden=self.hidden, trainable=self.trainable)

    def cost(self) -> tuple[float, float]:
        """``(seconds, bytes)`` a run of this configuration may take at most: ``
        MAX_EVALUATIONS`` gradient evaluations, each ``EVALUATION_SECONDS`` per unit of its
        sizes, and the adaptive solver's dense output, ``BYTES_PER_PARAMETER`` per entry,
        beside the data's and the engine's arrays (floats: sizes are not bounded)."""
        s, tokens = _real(self.n_sentences), _real(self.n_sentences) * _real(self.m + 1)
        if self.architecture != "paper":
            return self._attention_cost(s, tokens)
        d, d_key, c = _real(self.d), _real(self.d_key), _real(self.n_classes)
        h = _real(self.hidden) if self.classifier == "mlp" else 0.0
        words = _real(self.n_words)
        parameters = words * (d + d_key) + d_key + (h * (d + c + 1) + c if h else c * d)
        widths = s * (d + d_key + c + h)
        products = s * (c * d + h * (d + c))
        per = EVALUATION_SECONDS
        seconds = MAX_EVALUATIONS * (per["fixed"] + per["tokens"] * tokens
                                     + per["widths"] * widths + per["products"] * products
                                     + per["parameters"] * parameters)
        memory = (BYTES_PER_TOKEN * tokens + BYTES_PER_WIDTH * widths
                  + BYTES_PER_PARAMETER * parameters)
        return seconds, memory

    def check_cost(self, max_seconds: float = None, max_bytes: float | None = None) -> None:
        """``TooLarge`` when ``cost()`` exceeds ``max_seconds`` (default
        ``MAX_CASE_SECONDS``) or ``max_bytes`` (default the memory limit), before anything
        is allocated."""
        from numeric.limits import TooLarge, bytes_text, count_text, memory_limit, seconds_text

        max_seconds = MAX_CASE_SECONDS if max_seconds is None else max_seconds
        max_bytes = memory_limit() if max_bytes is None else max_bytes
        seconds, memory = self.cost()
        if seconds > max_seconds or memory > max_bytes:
            n = count_text
            raise TooLarge(f"case too large: {n(self.n_sentences)} sentences of "
                           f"{n(self.m + 1)} tokens over {n(self.n_words)} words "
                           f"(d={n(self.d)}, d_key={n(self.d_key)}) may take up to "
                           f"{seconds_text(seconds)} and {bytes_text(memory)}; the limits are "
                           f"{seconds_text(max_seconds)} "
                           f"and {bytes_text(max_bytes)} (half of this machine's memory)")

    def describe(self) -> str:
        """Only the fields that differ from the defaults, for short readable reports."""
        default = Config(seed=self.seed)
        parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                 for k, v in asdict(self).items() if k == "seed" or v != getattr(default, k)]
        return f"Config({', '.join(parts)})"

    def to_text(self) -> str:
        """``seed=…,field=value,…`` (fields that differ from the defaults; floats exact), safe
        to paste unquoted into a shell; ``Config.from_text`` gives back this config."""
        default = Config(seed=self.seed)
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value == getattr(default, f.name):
                continue
            if f.name == "trainable":
                text = "+".join(value) or "none"
            elif isinstance(value, bool):
                text = "yes" if value else "no"
            else:
                text = repr(value) if isinstance(value, float) else str(value)
            parts.append(f"{f.name}={text}")
        return ",".join(parts)

    def _attention_cost(self, s: float, tokens: float) -> tuple[float, float]:
        """The self-attention engine: per evaluation, products of token × head width × d
        (projections) and token pairs × head width (scores, attention), about ten of each, and
        four times the paper engine's fixed cost; beside the data and the dense output, eight
        float64 buffers per token of a score row per head, the head width and d."""
        d, c, heads = _real(self.d), _real(self.n_classes), _real(self.heads)
        width = heads * _real(self.d_head)
        length = _real(self.m + 1)
        parameters = _real(self.n_words) * d + 4 * width * d + c * d
        products = 10 * (tokens * width * d + tokens * length * width)
        per = EVALUATION_SECONDS
        seconds = MAX_EVALUATIONS * (4 * per["fixed"] + per["products"] * products
                                     + per["parameters"] * parameters)
        memory = (BYTES_PER_TOKEN * tokens + 8 * 8 * tokens * (length * heads + width + d)
                  + BYTES_PER_PARAMETER * parameters)
        return seconds, memory

    @classmethod
    def from_text(cls, text: str) -> Config:
        """The config written by ``to_text``; ValueError names a malformed or unknown field."""
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for part in text.split(","):
            name, sep, raw = part.strip().partition("=")
            if not sep or name not in kinds:
                raise ValueError(f"bad case field {part.strip()!r}: expected NAME=VALUE with "
                                 f"NAME among {', '.join(kinds)}")
            if name in values:
                raise ValueError(f"case field {name} is given twice")
            values[name] = _parse_field(name, kinds[name], raw.strip())
        if "seed" not in values:
            raise ValueError("a case needs its seed (seed=N)")
        return cls(**values)


#: Seconds of one gradient evaluation: fixed, per token, per sentence × width (d, d_key,
#: classes, hidden), per sentence × product of two widths, per parameter entry (measured
#: on one core with value_and_gradient at 12 to 210 000 tokens, up to 2·10⁶ parameters;
#: rounded up).
EVALUATION_SECONDS = {"fixed": 6e-4, "tokens": 1e-7, "widths": 3e-8, "products": 1e-9,
                      "parameters": 2e-8}
#: Bytes the data and the engine hold per token and per sentence × width, and the adaptive
#: run per parameter entry: snapshots and DOP853's dense output (8 values per entry per step,
#: at most ``MAX_EVALUATIONS / 12`` steps).
BYTES_PER_TOKEN, BYTES_PER_WIDTH, BYTES_PER_PARAMETER = 128, 64, 8 * 8 * (MAX_EVALUATIONS // 12)
#: A rerun of one case (``check --trajectory``) estimated beyond this many seconds is refused.
MAX_CASE_SECONDS = 600.0

#: Smallest value of each size field.
SIZE_MINIMUM = {"seed": 0, "n_classes": 2, "topics_per_class": 1, "m": 1, "n_nontopic": 1,
                "n_sentences": 1, "d": 1, "d_key": 1, "hidden": 1, "heads": 1, "d_head": 1}


def _real(size: int) -> float:
    """A size as a float (past 1e300 priced as 1e300: far beyond any limit)."""
    return float(min(size, 10 ** 300))


def plain_number(text: str) -> bool:
    """Whether ``text`` is written the plain way: int() and float() also read ``1_0`` as 10
    and other scripts' digits (``٣`` as 3), which no case text or option means."""
    return text.isascii() and "_" not in text


def _parse_field(name: str, kind: str, raw: str):
    """One ``NAME=VALUE`` of a case text, by the field's annotated type."""
    try:
        if kind in ("int", "float") and not plain_number(raw):
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return {"yes": True, "no": False, "true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise ValueError(f"bad case field {name}={raw!r}: expected a {kind}") from None
    if name == "trainable":
        return () if raw == "none" else tuple(raw.split("+"))
    return raw


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
    n_words = config.n_words
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
    spec = config.spec
    if config.architecture != "paper":
        params = init_params(spec, data, seed=config.seed,
                             embedding_scale=config.embedding_scale)
        return Setup(data, spec, params, {})
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
    """The NumPy-sampled configuration with this seed: what ``attnflow check`` drew before
    it became a Hypothesis search (kept so that old reports' configuration seeds rerun, and as
    the benchmark's "before")."""
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


def integrate_case(config: Config, rtol: float = RTOL, atol: float = ATOL,
                   deadline: float | None = None, stopped=None) -> Trajectory:
    """The adaptive trajectory of ``config`` (DOP853 at ``rtol``/``atol``) to its horizon, or
    until some score has moved by ``SCORE_GROWTH`` (ReLU runs: or a unit nears its kink).
    RuntimeError when the solver stalls; past wall-clock ``deadline`` (``time.time()``), or
    once ``stopped()`` says so: ``OutOfBudget``. Its parameters are known to
    ``adaptive_tolerance(len(traj) - 1)``."""
    s = build(config)
    s0 = _growth_measure(s.params, config)

    def stop(p):
        if (deadline is not None and time.time() > deadline
                or stopped is not None and stopped()):
            raise OutOfBudget  # a BaseException: solve_ivp lets it through
        grown = np.abs(_growth_measure(p, config) - s0).max() - SCORE_GROWTH
        if config.classifier == "linear":
            return grown
        # ReLU runs end before a unit reaches its kink: the flow is not smooth there
        u = numeric.context(p, s.data) @ p["hidden_weight"].T + p["hidden_bias"]
        return max(grown, KINK_MARGIN - np.abs(u).min())

    return integrate_flow(s.params, s.data, s.spec, config.horizon, rtol=rtol, atol=atol,
                          frozen_rows=s.frozen_rows, max_evaluations=MAX_EVALUATIONS,
                          stop_when=stop)


def _growth_measure(params: dict, config: Config) -> np.ndarray:
    """What a run's growth is measured on: the scores ``κ_w·q`` of the paper's model, every
    parameter entry of the self-attention family."""
    if config.architecture == "paper":
        return params["keys"] @ params["query"]
    return np.concatenate([np.ravel(params[n]) for n in sorted(params)])


def run_trajectory(config: Config, rtol: float = RTOL, atol: float = ATOL,
                   deadline: float | None = None, stopped=None) -> TrajectoryResult:
    """Integrate ``config`` adaptively to its horizon and check every law on the snapshots.
    Past wall-clock ``deadline`` (``time.time()``), or once ``stopped()`` says so, the run is
    abandoned: ``OutOfBudget``."""
    start = time.perf_counter()
    try:
        traj = integrate_case(config, rtol, atol, deadline, stopped)
    except SOLVER_GAVE_UP:  # stalled, or solve_ivp giving up on a stiff stretch
        return TrajectoryResult(config, "stalled", seconds=time.perf_counter() - start)
    accuracy = adaptive_tolerance(len(traj) - 1, rtol)
    first = _growth_measure(traj.snapshot(0), config)
    growth = float(max(np.abs(_growth_measure(traj.snapshot(i), config) - first).max()
                       for i in range(len(traj))))
    # entries near 0 are known only to the accumulated atol: laws whose terms stay that
    # small are not evidence (nor violated by the integrator's absolute error)
    resolution = adaptive_tolerance(len(traj) - 1, atol)
    return TrajectoryResult(config, "ok", check_laws(traj, accuracy, accuracy, resolution),
                            len(traj) - 1, accuracy, growth, time.perf_counter() - start)


def run_case(case: str | Config) -> TrajectoryResult:
    """Rerun one case exactly, from its text (``Config.to_text``) or its ``Config``."""
    return run_trajectory(Config.from_text(case) if isinstance(case, str) else case)


# --- negative control -----------------------------------------------------------------------

#: Every model parameter and its number of axes (without the snapshot axis).
PARAMETER_NDIM = {name: len(shape) for spec in [ModelSpec(classifier=c)
                                                 for c in CLASSIFIER_PARAMS]
                  + [ModelSpec(architecture="multi-head")]
                  for name, shape in spec.shapes(1, 2).items()}


@dataclass(frozen=True)
class WrongSign:
    """FOR TESTING THE CHECKER ONLY: while ``applied()``, the engine returns the gradient of
    ``parameter`` — or only its entry ``index`` — with the wrong sign (a negative control:
    the campaign must find and shrink the violation). Entries outside the array are left
    alone."""

    parameter: str
    index: tuple[int, ...] | None = None

    @classmethod
    def from_text(cls, text: str) -> WrongSign:
        """``NAME`` or ``NAME:I,J,…`` (e.g. ``keys:0,0``)."""
        name, _, index = text.partition(":")
        if name not in PARAMETER_NDIM:
            # a name no model has would patch nothing, yet the report says it was applied
            raise ValueError(f"bad parameter name in {text!r}: expected one of "
                             f"{', '.join(PARAMETER_NDIM)} (NAME or NAME:I,J)")
        try:
            idx = tuple(int(i) for i in index.split(",")) if index else None
        except ValueError:
            raise ValueError(f"bad index in {text!r}: expected integers, e.g. keys:0,0") \
                from None
        if idx is not None and (len(idx) != PARAMETER_NDIM[name] or min(idx) < 0):
            raise ValueError(f"bad index in {text!r}: {name} has {PARAMETER_NDIM[name]} "
                             f"axes, so give {PARAMETER_NDIM[name]} entries >= 0")
        return cls(name, idx)

    def __str__(self) -> str:
        where = "" if self.index is None else "[" + ",".join(map(str, self.index)) + "]"
        return f"wrong sign in the gradient of {self.parameter}{where}"

    def reaches(self, config: Config) -> bool:
        """Whether the patch changes the flow of ``config`` (``check_reaches``)."""
        try:
            self.check_reaches(config)
        except ValueError:
            return False
        return True

    def check_reaches(self, config: Config) -> None:
        """ValueError unless the patch changes the flow of ``config``: its parameter is one
        the configuration trains, and its entry lies inside that array (else the run is
        the unpatched one, reported as a negative control)."""
        spec = config.spec
        shapes = spec.shapes(config.n_words, config.n_classes)
        if self.parameter not in spec.trained:
            raise ValueError(f"--negative-control {self.parameter}: this case does not train "
                             f"{self.parameter} (trained: {', '.join(spec.trained) or 'none'}), "
                             f"so nothing would be patched")
        shape = shapes[self.parameter]
        if self.index is not None and any(i >= n for i, n in zip(self.index, shape)):
            raise ValueError(f"--negative-control {self.parameter}:"
                             f"{','.join(map(str, self.index))} lies outside {self.parameter}, "
                             f"which has shape {shape} in this case, so nothing would be "
                             f"patched")
        n_topic = config.n_words - config.n_nontopic
        if (self.index is not None and config.a2 and self.parameter in ("embeddings", "keys")
                and self.index[0] >= n_topic):
            raise ValueError(f"--negative-control {self.parameter}:"
                             f"{','.join(map(str, self.index))}: word {self.index[0]} is a "
                             f"non-topic word, held fixed in this case (a2), so nothing would "
                             f"be patched")

    @contextlib.contextmanager
    def applied(self):
        """Patch ``numeric.value_and_gradient`` in this process: what the adaptive flow and
        RK4 call (the campaign's integrator). ``gradient_descent`` calls the engine's
        unchecked entry point on its own iterates, so it is not patched."""
        import numeric

        engine = numeric.value_and_gradient

        def wrong(params, data, spec, wrt=None):
            loss, grad = engine(params, data, spec, wrt=wrt)
            if self.parameter not in grad:
                return loss, grad
            g = np.array(grad[self.parameter])
            if self.index is None:
                g = -g
            elif len(self.index) == g.ndim and all(0 <= i < n
                                                   for i, n in zip(self.index, g.shape)):
                g[self.index] = -g[self.index]
            return loss, dict(grad, **{self.parameter: g})

        numeric.value_and_gradient = wrong
        try:
            yield
        finally:
            numeric.value_and_gradient = engine


# --- shards: one Hypothesis run each ----------------------------------------------------------

#: Key of the campaign's examples in a Hypothesis example database (fixed, so the client can
#: hand stored examples to a shard on another machine and store what it returns).
DATABASE_KEY = b"attnflow-check"
DATABASE_KEYS = (DATABASE_KEY, DATABASE_KEY + b".secondary", DATABASE_KEY + b".pareto")


class OutOfBudget(BaseException):  # noqa: N818  (a stop signal, not an error)
    """The campaign's wall-time budget is spent or it was interrupted: the shard stops at the
    next example (a BaseException, so Hypothesis propagates it instead of shrinking it)."""


class LawViolated(AssertionError):
    """An applicable law failed on an example: Hypothesis shrinks the example."""


def shard_seed(campaign_seed: int, index: int) -> int:
    """Hypothesis seed of shard ``index`` of a campaign."""
    return int(np.random.SeedSequence([campaign_seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of the campaign with ``campaign_seed``: a Hypothesis run of at most
    ``examples`` examples, stopped at wall-clock ``deadline`` (``time.time()``); ``stored``:
    example-database entries replayed first; ``limits``: size bounds for
    ``campaign_configurations`` (e.g. ``(("max_sentences", 6),)``)."""

    campaign_seed: int
    index: int
    examples: int
    deadline: float
    targeted: bool = True
    stored: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()
    fault: WrongSign | None = None
    limits: tuple[tuple[str, int], ...] = ()

    @property
    def seed(self) -> int:
        return shard_seed(self.campaign_seed, self.index)


@dataclass
class ShardResult:
    """What a shard did: every distinct trajectory it ran (in order), the shrunk violation if
    any, the example-database operations to store, and its timing."""

    index: int
    seed: int
    results: list[TrajectoryResult] = field(default_factory=list)
    violation: TrajectoryResult | None = None
    shrunk: bool = False
    stopped: bool = False
    database_log: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    started: float = 0.0
    #: trajectories whose flow the negative control changed (``WrongSign.reaches``)
    reached: int = 0
    found_at: float | None = None
    finished: float = 0.0


def _recording_database(stored):
    """An in-memory Hypothesis example database holding ``stored`` that logs every save and
    delete (the client applies the log to the database under the output folder)."""
    from hypothesis.database import InMemoryExampleDatabase

    class Recording(InMemoryExampleDatabase):
        def __init__(self):
            super().__init__()
            self.log = []
            for key, values in stored:
                self.data[key] = set(values)

        def save(self, key, value):
            self.log.append(("save", key, value))
            super().save(key, value)

        def delete(self, key, value):
            self.log.append(("delete", key, value))
            super().delete(key, value)

    return Recording()


def targets(reports: list) -> dict[str, float]:
    """What the search maximises, per applicable law: log10 of its usage of the allowance and
    of its relative drift (logs, so that 1e-12 → 1e-10 counts as much as 1e-3 → 1e-1)."""
    out = {}
    for rep in reports:
        if rep.applicable:
            for what, x in (("usage", rep.usage), ("drift", rep.drift)):
                if np.isfinite(x):
                    out[f"{rep.law} {what}"] = math.log10(max(x, 1e-300))
    return out


def run_shard(shard: Shard, channel=None) -> ShardResult:
    """Run one shard. ``channel`` (optional, local processes): ``.put(item)`` receives
    ``(laws checked, worst usage)`` per trajectory and ``.stopped()`` asks the shard to stop."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings, target
    from hypothesis.errors import HypothesisDeprecationWarning, Unsatisfiable

    from numeric.strategies import campaign_configurations

    out = ShardResult(shard.index, shard.seed, started=time.time())
    seen: dict[Config, TrajectoryResult] = {}
    stopped = None if channel is None else _polled(channel.stopped)

    def checked(config) -> TrajectoryResult:
        """The trajectory of ``config`` (each distinct one run once, reported as it ends)."""
        if time.time() > shard.deadline or (channel is not None and channel.stopped()):
            raise OutOfBudget
        r = seen.get(config)
        if r is None:
            r = seen[config] = run_trajectory(config, deadline=shard.deadline,
                                              stopped=stopped)
            out.results.append(r)
            out.reached += shard.fault is not None and shard.fault.reaches(config)
            if channel is not None:
                usage = [rep.usage for rep in r.reports if rep.applicable]
                channel.put((len(usage), max(usage, default=float("nan"))))
        return r

    def example(config):
        r = checked(config)
        if shard.targeted:
            for label, value in targets(r.reports).items():
                target(value, label=label)
        if violated_laws(r):
            out.violation = r
            out.found_at = out.found_at or time.time()
            raise LawViolated(f"{', '.join(violated_laws(r))} violated on {config.to_text()}")

    # no explain phase: it would spend trajectories on commentary the report does not print
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
    phases += [Phase.target] if shard.targeted else []
    database = _recording_database(shard.stored)
    # settings outside seed(): seed() alone switches the example database off
    search = given(campaign_configurations(**dict(shard.limits)))(example)
    test = settings(max_examples=shard.examples, database=database, deadline=None,
                    derandomize=False, phases=phases, report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                    print_blob=False)(seed(shard.seed)(search))
    # a fixed key (as hypothesis.find sets it), so stored examples move between machines
    test._hypothesis_internal_database_key = DATABASE_KEY
    fault = shard.fault.applied() if shard.fault else contextlib.nullcontext()
    try:
        with fault, warnings.catch_warnings():
            # a Dask worker's own threads use the global `random` while Hypothesis draws;
            # the examples never do (their data come from the config's seed)
            warnings.simplefilter("ignore", HypothesisDeprecationWarning)
            try:
                test()
            except LawViolated:  # re-raised after Hypothesis's last shrink: out.violation
                out.shrunk = True
                _to_smallest_sizes(out, checked)
    except OutOfBudget:
        out.stopped = True  # a violation found so far is the smallest seen, not fully shrunk
    except Unsatisfiable:
        pass  # every example stalled: nothing was checked, and the report says so
    out.database_log = database.log
    out.finished = time.time()
    return out


#: Seconds between two looks at a shard's stop flag while a trajectory runs (a look is a
#: round trip to the manager process or the Dask scheduler).
POLL_SECONDS = 0.25


def _polled(flag):
    """``flag()``, asked at most every ``POLL_SECONDS`` (False in between): a stopped
    campaign abandons the running trajectory within that time, under any load."""
    last = [time.monotonic()]

    def stopped() -> bool:
        now = time.monotonic()
        if now - last[0] < POLL_SECONDS:
            return False
        last[0] = now
        return flag()
    return stopped


def violated_laws(r: TrajectoryResult) -> list[str]:
    return [rep.law for rep in r.reports if rep.verdict == "violated"]


#: Data seeds tried per size when ``_to_smallest_sizes`` sets that size to its minimum.
SEEDS_PER_SIZE = 8


def _to_smallest_sizes(out: ShardResult, checked):
    """After Hypothesis's shrink: each size still above the strategies' minimum is set to the
    minimum with the first of ``SEEDS_PER_SIZE`` data seeds that still fails. (Hypothesis
    shrinks one choice at a time, so a size the violation does not need can stay above its
    minimum when the data seed drawn with it only fails at that size.)"""
    from numeric.strategies import SMALLEST

    for name, low in SMALLEST.items():
        config = out.violation.config
        if getattr(config, name) <= low or not config.has_size(name):
            continue
        for s in range(SEEDS_PER_SIZE):
            r = checked(replace(config, **{name: low, "seed": s}))
            if violated_laws(r):
                out.violation = r
                break


# --- merged report ----------------------------------------------------------------------------

@dataclass
class LawRow:
    """One law over a campaign; ``worst``: the applicable report that used the largest share
    of its allowance, on ``worst_config``, found by shard ``worst_shard`` (seed
    ``worst_shard_seed``)."""

    law: str
    trajectories: int = 0
    applicable: int = 0
    violated: int = 0
    worst: LawReport | None = None
    worst_config: Config | None = None
    worst_shard: int | None = None
    worst_shard_seed: int | None = None
    worst_not_applicable: float = 0.0

    def to_dict(self) -> dict:
        w = self.worst
        return {"law": self.law, "trajectories": self.trajectories,
                "applicable": self.applicable, "violated": self.violated,
                "worst_usage": None if w is None else _finite(w.usage),
                "worst_relative_drift": None if w is None else _finite(w.drift),
                # infinite when the worst case's terms did not move (its floor is ∞): null,
                # with the law report's reason beside it
                "allowed_at_worst": None if w is None else _finite(w.allowed),
                "worst_reason": None if w is None else w.reason,
                "worst_config": None if self.worst_config is None
                else asdict(self.worst_config),
                "worst_case": None if self.worst_config is None
                else self.worst_config.to_text(),
                "worst_shard": self.worst_shard, "worst_shard_seed": self.worst_shard_seed,
                "worst_not_applicable_drift": self.worst_not_applicable}


@dataclass
class Violation:
    """The smallest violating case a shard reached: ``shrunk`` when Hypothesis finished
    shrinking (False: the budget ran out first, it is the smallest seen so far)."""

    laws: list[str]
    config: Config
    shard: int
    shard_seed: int
    shrunk: bool
    find_seconds: float
    shrink_seconds: float

    def to_dict(self) -> dict:
        return {"laws": self.laws, "case": self.config.to_text(),
                "config": asdict(self.config), "shard": self.shard,
                "shard_seed": self.shard_seed, "shrunk": self.shrunk,
                "find_seconds": self.find_seconds, "shrink_seconds": self.shrink_seconds,
                "rerun": f"attnflow check --trajectory {self.config.to_text()}"}


@dataclass
class CampaignResult:
    seed: int
    budget: float
    seconds: float
    shards: list[ShardResult]
    rows: list[LawRow]
    targeted: bool = True
    examples: int = 0
    interrupted: bool = False
    fault: WrongSign | None = None
    violations: list[Violation] = field(default_factory=list)

    @property
    def results(self) -> list[TrajectoryResult]:
        return [r for s in self.shards for r in s.results]

    @property
    def trajectories(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def stalled(self) -> int:
        return sum(r.status == "stalled" for r in self.results)

    @property
    def reached(self) -> int:
        """Trajectories whose flow the negative control changed."""
        return sum(s.reached for s in self.shards)

    @property
    def checked(self) -> int:
        """Law checks with evidence: applicable, and their terms moved above the floor."""
        return sum(row.applicable for row in self.rows)

    @property
    def verdict(self) -> str:
        """"violated", "not checked" (no law could be checked: no evidence either way) or
        "holds"."""
        if any(row.violated for row in self.rows):
            return "violated"
        return "holds" if self.checked else "not checked"

    @property
    def ok(self) -> bool:
        """Every applicable law held on every trajectory, and at least one law was checked."""
        return self.verdict == "holds"

    def headline(self) -> str:
        """One line for a summary table (``attnflow verify``)."""
        checked = [row for row in self.rows if row.worst is not None]
        worst = max(checked, key=lambda row: row.worst.usage, default=None)
        violated = sum(row.violated for row in self.rows)
        text = (f"{self.trajectories} trajectories (seed {self.seed}, {len(self.shards)} "
                f"shards), {sum(row.applicable for row in self.rows)} applicable law checks, "
                f"{violated} violated")
        if worst is not None:
            text += (f"; worst: {worst.law} drift {worst.worst.drift:.1e} "
                     f"(allowed {worst.worst.allowed:.1e}, shard {worst.worst_shard})")
        return text

    def to_dict(self) -> dict:
        return {"ok": self.ok, "verdict": self.verdict, "seed": self.seed,
                "budget_seconds": self.budget,
                "seconds": self.seconds, "targeted": self.targeted,
                "examples_per_shard": self.examples, "shards": len(self.shards),
                "interrupted": self.interrupted,
                "negative_control": None if self.fault is None else str(self.fault),
                "trajectories": self.trajectories, "stalled": self.stalled,
                "rtol": RTOL, "atol": ATOL,
                "laws": [row.to_dict() for row in self.rows],
                "violations": [v.to_dict() for v in self.violations]}


def summarize(shards: list[ShardResult], laws=None) -> list[LawRow]:
    """Per-law rows over the shards' trajectories, in shard order (ties: the first wins)."""
    rows = {law.name: LawRow(law.name) for law in (LAWS if laws is None else laws)}
    for shard in sorted(shards, key=lambda s: s.index):
        for r in shard.results:
            for rep in r.reports:
                row = rows.setdefault(rep.law, LawRow(rep.law))
                row.trajectories += 1
                # a law that was not checked (nothing moved above the floor) is no evidence
                if not rep.applicable or rep.verdict == "not checked":
                    if np.isfinite(rep.drift):
                        row.worst_not_applicable = max(row.worst_not_applicable, rep.drift)
                    continue
                row.applicable += 1
                row.violated += rep.verdict == "violated"
                if row.worst is None or rep.usage > row.worst.usage:
                    row.worst, row.worst_config = rep, r.config
                    row.worst_shard, row.worst_shard_seed = shard.index, shard.seed
    return list(rows.values())


def violations(shards: list[ShardResult], start: float) -> list[Violation]:
    """The violating case of each shard that found one, in shard order."""
    out = []
    for s in sorted(shards, key=lambda s: s.index):
        if s.violation is not None:
            out.append(Violation(violated_laws(s.violation), s.violation.config, s.index,
                                 s.seed, s.shrunk, s.found_at - start,
                                 s.finished - s.found_at))
    return out


def compare_worst(targeted: CampaignResult, plain: CampaignResult) -> list[tuple]:
    """Per law: (law, worst usage with targeting, worst usage by plain sampling); None where
    the law was never applicable."""
    plain_rows = {row.law: row for row in plain.rows}

    def usage(row):
        return None if row is None or row.worst is None else row.worst.usage

    return [(row.law, usage(row), usage(plain_rows.get(row.law))) for row in targeted.rows]


# --- the campaign -----------------------------------------------------------------------------

#: Examples per shard: enough for Hypothesis to spend half of them hill-climbing its targets.
EXAMPLES_PER_SHARD = 40


def run_campaign(budget: float, seed: int = 0, progress: bool = True,
                 workers: int | None = None, *, scheduler: str | None = None,
                 examples: int = EXAMPLES_PER_SHARD, max_shards: int | None = None,
                 targeted: bool = True, database=None, fault: WrongSign | None = None,
                 limits: dict | None = None, stop_at_violation: bool = True
                 ) -> CampaignResult:
    """Run shards 0, 1, … of the campaign with ``seed`` until ``budget`` seconds of wall time
    are spent (shards running then stop at their next example) or ``max_shards`` are done.

    ``scheduler``: None for ``workers`` local processes (default: all cores), ``"local"`` for
    a Dask ``LocalCluster``, else a Dask scheduler address. ``database``: a folder or a
    Hypothesis example database; shard 0 replays its entries first, and every shard's saves
    and deletes are applied to it. ``fault``: a negative control (testing only).
    ``limits``: size bounds of the configurations (``max_sentences``, ``max_m``,
    ``max_dim``; default the strategies' own). After a violation no new shard starts, and
    once one is shrunk the running shards stop (``stop_at_violation``).
    Ctrl-C stops the shards and returns what was done (``interrupted``).
    """
    from numeric.executors import DaskCluster, LocalProcesses

    _check_campaign_arguments(budget, seed, workers, examples, max_shards)
    if isinstance(database, (str, os.PathLike)):
        from hypothesis.database import DirectoryBasedExampleDatabase

        database = DirectoryBasedExampleDatabase(database)
    start = time.time()
    stored = tuple((k, tuple(database.fetch(k))) for k in DATABASE_KEYS) \
        if database is not None else ()
    executor = LocalProcesses(workers) if scheduler is None else DaskCluster(scheduler, workers)
    bar = _ProgressBar(budget, progress, streamed=isinstance(executor, LocalProcesses))
    done: list[ShardResult] = []
    interrupted = False
    try:
        pending, next_index = set(), 0
        while True:
            open_for_more = (time.time() - start < budget
                             and not (stop_at_violation and any(s.violation for s in done)))
            while open_for_more and len(pending) < executor.workers \
                    and (max_shards is None or next_index < max_shards):
                shard = Shard(seed, next_index, examples, start + budget, targeted,
                              stored if next_index == 0 else (), fault,
                              tuple(sorted((limits or {}).items())))
                pending.add(executor.submit(shard))
                next_index += 1
            if not pending:
                break
            finished, pending = executor.wait(pending, timeout=0.5)
            for f in finished:
                done.append(executor.result(f))
                bar.shard(done[-1])
                if stop_at_violation and done[-1].violation and done[-1].shrunk:
                    executor.stop()  # the others would only find and shrink it again
            bar.trajectories(executor.progress(), time.time() - start)
    except KeyboardInterrupt:
        interrupted = True
        executor.stop()  # running shards stop at their next example; collect what they did
        finished, _ = _drain(executor, pending)
        done.extend(finished)
    finally:
        bar.close()
        executor.close()
    if database is not None:
        _store(database, done)
    done.sort(key=lambda s: s.index)
    model = (limits or {}).get("model", "paper")
    model_laws = LAWS if model == "paper" else ATTENTION_LAWS
    return CampaignResult(seed, budget, time.time() - start, done,
                          summarize(done, model_laws), targeted,
                          examples, interrupted, fault, violations(done, start))


#: Seconds to wait, after Ctrl-C, for running shards to hand in what they did.
DRAIN_SECONDS = 30.0


def _drain(executor, pending):
    """Results of the shards still running after a stop (they end within one trajectory);
    shards whose worker died with the interrupt, or that do not answer within
    ``DRAIN_SECONDS``, are left out."""
    finished, give_up = [], time.time() + DRAIN_SECONDS
    while pending and time.time() < give_up:
        done, pending = executor.wait(pending, timeout=1.0)
        for f in done:
            with contextlib.suppress(Exception):
                finished.append(executor.result(f))
    return finished, pending


def _store(database, shards: list[ShardResult]):
    """Apply the shards' example-database saves and deletes, in shard order."""
    for s in sorted(shards, key=lambda s: s.index):
        for op, key, value in s.database_log:
            (database.save if op == "save" else database.delete)(key, value)


#: Memory of one shard worker (a fresh interpreter with NumPy, SciPy and Hypothesis loaded,
#: running a shard: 95 MB measured; rounded up).
WORKER_BYTES = 128e6


def _check_campaign_arguments(budget, seed, workers, examples, max_shards):
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive number of seconds, got {budget!r}")
    for name, value, low in [("seed", seed, 0), ("workers", workers, 1),
                             ("examples", examples, 1), ("max_shards", max_shards, 1)]:
        if value is None and name in ("workers", "max_shards"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if workers is not None:
        from numeric.limits import TooLarge, bytes_text, count_text, memory_limit

        need, limit = _real(workers) * WORKER_BYTES, memory_limit()
        if need > limit:
            # past 1e300 workers the price is of 1e300 of them: a lower bound, said as one
            bound = "about" if workers < 10 ** 300 else "more than"
            raise TooLarge(f"workers = {count_text(int(workers))}: that many worker processes "
                           f"would take {bound} {bytes_text(need)}; the limit is "
                           f"{bytes_text(limit)} (half of this machine's memory)")


class _ProgressBar:
    """tqdm over the budget's seconds, showing trajectories done, laws checked and the worst
    usage so far (per trajectory on local processes, per shard on Dask)."""

    def __init__(self, budget: float, enabled: bool, streamed: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=round(budget), disable=not enabled, desc="attnflow check",
                        unit="s")
        self.streamed = streamed
        self.n = self.laws = 0
        self.worst = float("nan")

    def _add(self, laws: int, usage: float):
        self.n += 1
        self.laws += laws
        if not usage <= self.worst:  # NaN-safe max
            self.worst = usage if np.isfinite(usage) else self.worst

    def trajectories(self, items, elapsed: float):
        for laws, usage in items:
            self._add(laws, usage)
        self.bar.update(max(0, min(round(elapsed), self.bar.total) - self.bar.n))
        self.bar.set_postfix(trajectories=self.n, laws=self.laws,
                             worst_usage=f"{self.worst:.1e}", refresh=False)

    def shard(self, s: ShardResult):
        if self.streamed:
            return  # already counted trajectory by trajectory
        for r in s.results:
            usage = [rep.usage for rep in r.reports if rep.applicable]
            self._add(len(usage), max(usage, default=float("nan")))

    def close(self):
        self.bar.close()


def _finite(x: float) -> float | None:
    """A JSON-safe number: ``None`` for NaN or ±∞ (strict JSON has neither)."""
    return float(x) if np.isfinite(x) else None

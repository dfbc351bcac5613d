"""The paper's experiments: synthetic topic task, ablation, SST-2/SST-5 (PAPER.md).

Each ``run_*`` trains with ``numeric.integrate.gradient_descent`` (full batch, one step per
epoch), writes its figures (PNG and PDF) and ``results.json`` into ``out`` and returns the
results as a dict; wall times go to ``timings.json`` beside it. The same seed gives the same
``results.json``, byte for byte, however the runs are scheduled: the independent models of
an experiment run one after the other in this process (``jobs=None``) or in ``jobs`` worker
processes with one combined progress bar (``run_jobs``; ``jobs="auto"``: ``worker_count``).

The SEN curve (persisting identity, keys starting at 0 and embeddings near 0):
``‖q‖‖v_t‖ = sqrt(2 (s_t + (e^{s_t} − 1)/m))``.
"""

from __future__ import annotations

import functools
import inspect
import json
import multiprocessing
import os
import queue as queues
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

import numeric
from numeric import outputs, plots
from numeric.data import Splits, load_sst, synthetic_topic_data
from numeric.integrate import gradient_descent
from numeric.model import Dataset, ModelSpec
from numeric.processes import end_pool, start_worker
from numeric.replay import StepDrift, sen_drift_summary

#: name → (classifier, classifier trained?) as in the paper.
MODELS = {"Attn-FC": ("linear", False), "Attn-TC": ("linear", True),
          "Attn-TL": ("mlp", True)}
LR = 0.1
SYNTHETIC_EPOCHS, ABLATION_EPOCHS = 5000, 6000
#: Gradient descent lags the flow by one step at the start: relative distance ≈ 1/(2k) at
#: epoch k while the topic words leave the origin, so the SEN distance is measured from
#: epoch 50 on (lag ≤ 1 %); the figure over all epochs is reported alongside.
SEN_FROM_EPOCH = 50
SEN_TOLERANCE = 0.02
#: The ablation reports the first epoch at which the training loss falls below this.
LOSS_THRESHOLD = 0.1
ABLATION_VARIANTS = {"both trained": ("keys", "embeddings"), "keys frozen": ("embeddings",),
                     "embeddings frozen": ("keys",)}
#: Relative time of an ablation epoch by variant: keys frozen reuses the attention of its
#: start (measured 1.3-1.9 ms per epoch against 2.4-3.7 ms), so that the runs balance.
VARIANT_COST = {"both trained": 1.0, "keys frozen": 0.6, "embeddings frozen": 1.0}
SST_WIDTH = {"Attn-FC": 200, "Attn-TC": 100}
#: Relative time of a synthetic epoch by classifier (measured: Attn-TL 3.3-3.7 ms against
#: 2.3-2.5 ms for Attn-FC and Attn-TC on one core, callbacks included), so that Attn-TL
#: starts first; and of one model's figures, SEN summary and start-up (about 3 s).
EPOCH_COST = {"linear": 1.0, "mlp": 1.45}
SYNTHETIC_FIXED_COST = 1300
SST_EPOCHS, SST_EVAL_EVERY, SST_PATIENCE, SST_TOP_WORDS = 3000, 10, 20, 100


def model_spec(name: str, *, d: int = 10, d_key: int = 10,
               trainable: tuple[str, ...] = ("keys", "embeddings")) -> ModelSpec:
    """The spec of ``Attn-FC``/``Attn-TC``/``Attn-TL``; TC and TL also train the classifier."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    classifier, trained = MODELS[name]
    return ModelSpec(d=d, d_key=d_key, classifier=classifier, hidden=10,
                     trainable=tuple(trainable) + (("classifier",) if trained else ()))


def sen_curve(s, m):
    """The theoretical ``‖q‖‖v‖ = sqrt(2 (s + (e^s − 1)/m))`` for ``s ≥ 0``; NaN below 0."""
    s = np.asarray(s, dtype=np.float64)
    inner = 2.0 * (s + np.expm1(s) / m)
    return np.sqrt(np.where(s >= 0, inner, np.nan))


def sen_distance(s, y, m):
    """Relative distance ``|y − f(s)| / max(y, f(s))`` of points from the SEN curve ``f``.

    Lies in [0, 1]; a point with a negative score lies off the curve (which starts at
    ``s = 0``) and counts as 1.
    """
    f = sen_curve(s, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(y - f) / np.maximum(y, f)
    return np.where(np.isfinite(rel), rel, np.where((s == 0) & (y == 0), 0.0, 1.0))


def sen_curve_inverse(y, m):
    """The score ``s ≥ 0`` with ``f(s) = y`` on the SEN curve (bisection; ``f`` increases)."""
    target = np.square(np.asarray(y, dtype=np.float64)) / 2.0
    lo, hi = np.zeros_like(target), target.copy()  # s + (e^s − 1)/m ≥ s, so s ≤ y²/2
    for _ in range(64):
        mid = (lo + hi) / 2.0
        above = mid + np.expm1(mid) / m > target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return (lo + hi) / 2.0


def sen_orthogonal_distance(s, y, m, samples: int = 256):
    """Euclidean distance of ``(s, y)`` from the nearest point of the SEN curve, relative to
    the point's distance from the origin.

    The nearest point of an increasing curve lies between the vertical projection
    ``(s, f(s))`` and the horizontal one ``(f⁻¹(y), y)``; that interval is searched densely.
    Unlike :func:`sen_distance`, this does not blow up near the origin, where the curve is
    vertical and a small lag in ``s`` reads as a large relative gap in ``‖q‖‖v‖``.
    """
    s, y = np.broadcast_arrays(np.asarray(s, np.float64), np.asarray(y, np.float64))
    m = np.broadcast_to(np.asarray(m, np.float64), s.shape)
    a, b = np.maximum(s, 0.0), sen_curve_inverse(y, m)
    grid = np.linspace(0.0, 1.0, samples)
    gap = np.empty(s.shape)
    flat = [x.reshape(-1) for x in (a, b, s, y, m, gap)]
    # a block of points at a time: the (points, samples) temporaries stay in cache instead
    # of 80 MB arrays for a synthetic run's 5001 × 8 points (same values, ~1 s less)
    block = max(1, 2**16 // samples)
    for start in range(0, s.size, block):
        a_, b_, s_, y_, m_, gap_ = (x[start:start + block] for x in flat)
        foot = np.minimum(a_, b_)[:, None] + np.abs(b_ - a_)[:, None] * grid
        gap_[:] = np.hypot(foot - s_[:, None],
                           sen_curve(foot, m_[:, None]) - y_[:, None]).min(axis=-1)
    norm = np.hypot(s, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, gap / norm, 0.0)


def accuracy(params, data: Dataset, spec: ModelSpec) -> float:
    """Fraction of sentences whose largest logit is their label."""
    return float(np.mean(numeric.logits(params, data, spec).argmax(axis=1) == data.labels))


class WordTrace:
    """Training callback recording scores ``s_w`` and ``‖q‖‖v_w‖`` of ``words`` every epoch."""

    def __init__(self, words):
        self.words = np.asarray(words)
        self._s, self._y = [], []

    def __call__(self, step, params, loss):
        q = params["query"]
        self._s.append(params["keys"][self.words] @ q)
        self._y.append(np.linalg.norm(q) * np.linalg.norm(params["embeddings"][self.words],
                                                          axis=1))

    @property
    def scores(self) -> np.ndarray:
        """``(epochs + 1, len(words))``."""
        return np.array(self._s)

    @property
    def sen_norms(self) -> np.ndarray:
        """``‖q‖‖v_w‖``, ``(epochs + 1, len(words))``."""
        return np.array(self._y)


@dataclass
class Run:
    """One training run: final parameters, loss per epoch, topic-word trace, wall time."""

    name: str
    spec: ModelSpec
    params: dict
    loss: np.ndarray
    trace: WordTrace
    seconds: float
    #: the measured SEN drift per topic word beside its derived attribution
    sen_drift: dict | None = None


def train_topic_model(name, spec, data: Splits, epochs, *, seed, embedding_scale,
                      progress=True) -> Run:
    """Gradient descent on the synthetic training set, tracing the topic words each epoch.

    ``progress``: a bar of its own when true, or a reporter ``progress(epoch)`` (``run_jobs``).
    """
    train = data.train
    params = numeric.init_params(spec, train, seed=seed, query_scale=0.3, key_scale=0.0,
                                 embedding_scale=embedding_scale)
    trace = WordTrace(np.flatnonzero(train.topic_class >= 0))
    drift = StepDrift(params, train, spec)      # SEN drift attributed on the fly (issue 13)

    def both(step, p, loss):
        drift(step, p, loss)
        return trace(step, p, loss)

    bar, callback = _progress_and_callback(progress, both)
    start = time.perf_counter()
    traj = gradient_descent(params, train, spec, LR, epochs, callback=callback,
                            progress=bar, desc=name)
    return Run(name, spec, traj.final, traj.loss, trace, time.perf_counter() - start,
               sen_drift_summary(drift.result(), drift.why))


def _progress_and_callback(progress, callback):
    """``gradient_descent``'s ``(progress, callback)`` for a bool or a reporter ``f(epoch)``."""
    if not callable(progress):
        return bool(progress), callback

    def report_then_call(step, params, loss):
        progress(step)
        return callback(step, params, loss)
    return False, report_then_call


# --- independent runs, one after the other or in worker processes --------------------------

#: Thread pools read these when NumPy loads: each worker process uses one core.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: glibc reads this at a worker's start (other C libraries ignore it). Fixed thresholds keep
#: freed blocks of up to 32 MiB in the heap: with the dynamic defaults, a run whose
#: temporaries never raise the threshold (an ablation run with the embeddings frozen) gave
#: its heap top back and faulted it in again every epoch: 2.1 million page faults and 3.5 s
#: of system time in 11.2 s, against 2.7 thousand faults and 7.3 s with them fixed.
_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"


def worker_environment() -> dict[str, str]:
    """The variables a worker process starts with on top of this one's: one thread per
    pool, and malloc's thresholds (unless ``GLIBC_TUNABLES`` is already set: the user's)."""
    variables = dict.fromkeys(_THREAD_VARIABLES, "1")
    if "GLIBC_TUNABLES" not in os.environ:
        variables["GLIBC_TUNABLES"] = _MALLOC_TUNABLES
    return variables


@dataclass(frozen=True)
class Job:
    """One independent run: ``task(**kwargs, progress=…)``, at most ``epochs`` epochs long.

    ``task`` is a module-level function (worker processes import it by name). ``cost``: its
    expected run time in any unit shared by the jobs of one call (default: ``epochs``);
    worker processes start the costliest first, so that no long run starts last."""

    label: str
    epochs: int
    task: Callable
    kwargs: dict = field(default_factory=dict)
    cost: float | None = None

    @property
    def expected_cost(self) -> float:
        return float(self.epochs if self.cost is None else self.cost)


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: ``jobs="auto"``: the worker count ``worker_count`` picks for the cores available.
AUTO = "auto"


def check_jobs(jobs) -> int | str | None:
    """``None`` (this process), ``"auto"`` or a positive integer number of worker processes."""
    if jobs is None or (isinstance(jobs, str) and jobs == AUTO):
        return jobs
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (worker processes), {AUTO!r} or "
                         f"None, got {jobs!r}")
    return int(jobs)


def worker_count(jobs: list[Job], cores: int) -> int:
    """Worker processes for ``jobs`` on ``cores`` cores: one per core, taking the costliest
    job first, or one per job sharing the cores, whichever is expected to finish sooner
    (``makespan``). Shared, the cheap jobs no longer queue behind each other, but the
    costliest one only gets its share of a core until they finish."""
    costs = [job.expected_cost for job in jobs]
    workers = max(1, min(cores, len(costs)))
    queued, shared = makespan(costs, cores, workers), makespan(costs, cores, len(costs))
    # sharing costs a little (cache, switches, one more start-up): only for a clear gain
    return len(costs) if shared < 0.95 * queued else workers


def makespan(costs, cores: int, workers: int) -> float:
    """When ``workers`` processes, each taking the costliest waiting job when it is free,
    finish ``costs`` on ``cores`` cores shared equally among the running processes."""
    waiting, running, now = sorted(costs), [], 0.0
    while waiting or running:
        while waiting and len(running) < workers:
            running.append(waiting.pop())
        rate = min(1.0, cores / len(running))       # of a core, for each running job
        step = min(running) / rate
        now += step
        running = [left - step * rate for left in running if left - step * rate > 1e-12]
    return now


def _workers(jobs, job_list: list[Job]) -> int | None:
    """``check_jobs(jobs)`` with ``"auto"`` resolved for this machine's cores."""
    jobs = check_jobs(jobs)
    return worker_count(job_list, available_cores()) if jobs == AUTO else jobs


def run_jobs(jobs: list[Job], n_jobs: int | None = None, *, progress=True,
             desc: str = "") -> list:
    """``[job.task(**job.kwargs) for job in jobs]``, in order.

    ``n_jobs=None``: one after the other in this process, each with its own progress bar.
    ``n_jobs="auto"``: as many as ``worker_count`` picks for the cores available.
    ``n_jobs=N``: in ``min(N, len(jobs))`` fresh worker processes (spawned with
    ``worker_environment()``: one BLAS thread each, so the numbers do not depend on ``N``,
    and malloc's fixed thresholds) with one combined progress bar; a worker's
    exception is raised here. Jobs start costliest first (``Job.cost``; longest-processing-
    time order: with three runs on two cores the longest then never waits for a free core).
    """
    n_jobs = _workers(n_jobs, jobs)
    if n_jobs is None:
        return [job.task(**job.kwargs, progress=progress) for job in jobs]
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    variables = worker_environment()
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)  # inherited at spawn
    try:
        with ProcessPoolExecutor(min(n_jobs, len(jobs)), mp_context=context,
                                 initializer=_start_worker, initargs=(reports,)) as pool:
            try:
                order = sorted(range(len(jobs)), key=lambda n: -jobs[n].expected_cost)
                started = {n: pool.submit(_run_job, n, jobs[n]) for n in order}  # stable
                futures = [started[n] for n in range(len(jobs))]
                _follow(futures, reports, jobs, progress, desc)
                return [future.result() for future in futures]
            except BaseException:
                # Ctrl-C, SIGTERM or a failed job: the other workers would go on writing
                # figures into a folder this run is about to release
                end_pool(pool)
                raise
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_REPORTS = None


def _start_worker(reports):
    global _REPORTS
    start_worker()
    _REPORTS = reports


class _Reporter:
    """``reporter(epoch)`` sends the job's progress to the parent at most every 0.2 s."""

    def __init__(self, index: int):
        self.index, self.sent = index, 0.0

    def __call__(self, epoch: int):
        now = time.monotonic()
        if now - self.sent >= 0.2:
            _REPORTS.put((self.index, epoch))
            self.sent = now


def _run_job(index: int, job: Job):
    out = job.task(**job.kwargs, progress=_Reporter(index))
    _REPORTS.put((index, job.epochs))  # finished (an early stop skips the rest)
    return out


def _follow(futures, reports, jobs, progress, desc):
    """One bar over the epochs of every job until all have finished."""
    done = [0] * len(jobs)
    with tqdm(total=sum(job.epochs for job in jobs), disable=not progress, desc=desc,
              unit="epoch") as bar:
        while True:
            finished = sum(future.done() for future in futures)
            try:
                index, epoch = reports.get(timeout=0.2)
            except queues.Empty:
                if finished == len(futures):
                    break
                continue
            epoch = min(epoch, jobs[index].epochs)
            if epoch > done[index]:
                bar.update(epoch - done[index])
                done[index] = epoch
            bar.set_postfix_str(f"{finished}/{len(jobs)} runs finished", refresh=False)


def sen_summary(run: Run, m: int) -> dict:
    """Largest relative distance of the topic words' points from the SEN curve from epoch
    ``SEN_FROM_EPOCH`` on, and the first epoch from which every point stays within
    ``SEN_TOLERANCE``."""
    dist = sen_distance(run.trace.scores, run.trace.sen_norms, m)
    late = dist[SEN_FROM_EPOCH:]
    outside = np.flatnonzero(dist.max(axis=1) > SEN_TOLERANCE)
    settled = 0 if not outside.size else int(outside[-1]) + 1
    out = {"m": m, "from_epoch": SEN_FROM_EPOCH, "tolerance": SEN_TOLERANCE,
           "max_rel_distance": None, "worst_epoch": None, "worst_word": None,
           "per_word_max_rel_distance": None, "within_tolerance": None,
           "within_tolerance_from_epoch": settled if settled < len(dist) else None,
           # before that epoch the points sit near the origin: how far, in ‖q‖‖v‖ units
           "start_up_max_abs_distance": float(np.max(np.abs(
               run.trace.sen_norms[:settled] - np.nan_to_num(sen_curve(
                   run.trace.scores[:settled], m))), initial=0.0)),
           # over the whole run: distance to the nearest curve point / distance from origin
           "max_orthogonal_rel_distance": float(sen_orthogonal_distance(
               run.trace.scores, run.trace.sen_norms, m).max())}
    if late.size:
        epoch, word = np.unravel_index(np.argmax(late), late.shape)
        out.update(max_rel_distance=float(late.max()), worst_epoch=int(epoch) + SEN_FROM_EPOCH,
                   worst_word=int(run.trace.words[word]),
                   per_word_max_rel_distance=late.max(axis=0).tolist(),
                   within_tolerance=bool(late.max() <= SEN_TOLERANCE))
    return out


def word_statistics(params, topic: np.ndarray) -> dict:
    """Scores and embedding norms of topic and non-topic words at the end of training."""
    s = numeric.score(params)
    n = np.linalg.norm(params["embeddings"], axis=1)
    return {"topic_scores": s[topic].tolist(), "topic_norms": n[topic].tolist(),
            "nontopic_score_abs_max": float(np.abs(s[~topic]).max()),
            "nontopic_norm_max": float(n[~topic].max()),
            "nontopic_score_mean": float(s[~topic].mean()),
            "nontopic_norm_mean": float(n[~topic].mean())}


#: Bytes one run keeps per epoch: its loss and, per traced topic word, its score and norm
#: (measured 160–490 bytes per epoch with the synthetic set's 8 topic words; rounded up).
BYTES_PER_EPOCH = 1000


def check_epochs(epochs, runs: int) -> None:
    """``TooLarge`` when ``runs`` runs of ``epochs`` epochs would keep more per-epoch records
    than the memory limit allows (checked before the output folder is touched)."""
    from numeric.limits import TooLarge, bytes_text, count_text, memory_limit

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        return  # the run itself names a bad type
    need, limit = float(min(epochs, 10 ** 300)) * runs * BYTES_PER_EPOCH, memory_limit()
    if need > limit:
        raise TooLarge(f"epochs = {count_text(int(epochs))}: {runs} runs would keep "
                       f"{bytes_text(need)} of per-epoch records; the limit is "
                       f"{bytes_text(limit)} (half of this machine's memory)")


def _claims_output(runs):
    """Run ``run(out, …)`` holding ``out`` (``outputs.claim_folder``): a second concurrent run
    into the same folder is refused, and the previous run's results.json and figures are
    removed first, so the folder never mixes two runs. ``runs(kwargs)``: how many runs the
    call trains (its epochs are checked against the memory limit first)."""
    def claims(run):
        @functools.wraps(run)
        def claimed(out, *args, **kwargs):
            epochs = kwargs.get("epochs", inspect.signature(run).parameters["epochs"].default)
            check_epochs(epochs, runs(kwargs))
            with outputs.claim_folder(out) as folder:
                return run(folder, *args, **kwargs)
        return claimed
    return claims


@_claims_output(lambda kwargs: len(kwargs.get("models", MODELS)))
def run_synthetic(out, *, epochs: int = SYNTHETIC_EPOCHS, seed: int = 0,
                  data: Splits | None = None, models=tuple(MODELS), progress=True,
                  jobs: int | str | None = None) -> dict:
    """Attn-FC, Attn-TC and Attn-TL on the synthetic data with the paper's settings.

    Per model: SEN figure, loss curve, final distributions; ``results.json`` with test
    accuracy and the largest relative distance from the SEN curve. ``jobs``: see
    ``run_jobs`` (the models are independent).
    """
    out = _folder(out)
    check_jobs(jobs)
    data = data or synthetic_topic_data(seed)
    results = {"experiment": "synthetic", "seed": seed, "epochs": epochs, "lr": LR,
               "data": _describe(data), "models": {}}
    tasks = [Job(name, epochs, synthetic_model, dict(
        name=name, data=data, epochs=epochs, seed=seed, out=out),
        cost=epochs * EPOCH_COST[MODELS[name][0]] + SYNTHETIC_FIXED_COST) for name in models]
    jobs = _workers(jobs, tasks)
    runs = run_jobs(tasks, jobs, progress=progress, desc="synthetic")
    results["models"] = {name: entry for name, (entry, _) in zip(models, runs)}
    _write_timings(out, jobs, {name: seconds for name, (_, seconds) in zip(models, runs)})
    return _write(out, results)


def synthetic_model(name, data: Splits, epochs, seed, out, progress) -> tuple[dict, float]:
    """One model of ``run_synthetic``: its figures and ``results.json`` entry, wall time."""
    topic = data.train.topic_class >= 0
    m = data.train.tokens.shape[1] - 1
    run = train_topic_model(name, model_spec(name), data, epochs, seed=seed,
                            embedding_scale=1e-6, progress=progress)
    tag = name.lower()
    names = [f"word {w} (class {data.train.topic_class[w]})" for w in run.trace.words]
    files = [*plots.sen_figure(run.trace.scores, run.trace.sen_norms, m, sen_curve,
                               sen_distance, out / f"{tag}_sen", title=name,
                               from_epoch=SEN_FROM_EPOCH, tolerance=SEN_TOLERANCE, names=names),
             *plots.loss_figure({"train": run.loss}, out / f"{tag}_loss", title=name),
             *plots.distribution_figure(numeric.score(run.params),
                                        np.linalg.norm(run.params["embeddings"], axis=1),
                                        topic, out / f"{tag}_distributions", title=name)]
    return {"trainable": list(run.spec.trained),
            "final_train_loss": float(run.loss[-1]),
            "train_accuracy": accuracy(run.params, data.train, run.spec),
            "test_accuracy": accuracy(run.params, data.test, run.spec),
            "sen": sen_summary(run, m), "sen_drift": run.sen_drift,
            "final": word_statistics(run.params, topic),
            "figures": [p.name for p in files]}, run.seconds


def epochs_to_threshold(loss: np.ndarray, threshold: float = LOSS_THRESHOLD) -> int | None:
    """First epoch whose training loss is below ``threshold`` (``None``: never)."""
    below = np.flatnonzero(np.asarray(loss) < threshold)
    return int(below[0]) if below.size else None


@_claims_output(lambda kwargs: 2 * len(ABLATION_VARIANTS))
def run_ablation(out, *, epochs: int = ABLATION_EPOCHS, seed: int = 0,
                 data: Splits | None = None, threshold: float = LOSS_THRESHOLD,
                 progress=True, jobs: int | str | None = None) -> dict:
    """Attn-FC and Attn-TC with keys frozen, embeddings frozen, or both trained.

    Embeddings start at N(0, 0.1²). Loss, mean topic score and mean topic ‖v‖ on shared
    axes; ``results.json`` with, per run, the first epoch of loss below ``threshold``.
    ``jobs``: see ``run_jobs`` (the six runs are independent).
    """
    out = _folder(out)
    check_jobs(jobs)
    data = data or synthetic_topic_data(seed)
    results = {"experiment": "ablation", "seed": seed, "epochs": epochs, "lr": LR,
               "embedding_scale": 0.1, "loss_threshold": threshold,
               "data": _describe(data), "runs": {}}
    keys = [(name, variant) for name in ("Attn-FC", "Attn-TC") for variant in ABLATION_VARIANTS]
    tasks = [Job(f"{name}, {variant}", epochs, ablation_run, dict(
        name=name, variant=variant, data=data, epochs=epochs, seed=seed, threshold=threshold),
        cost=epochs * VARIANT_COST[variant]) for name, variant in keys]
    jobs = _workers(jobs, tasks)
    runs = run_jobs(tasks, jobs, progress=progress, desc="ablation")
    curves = {}
    for key, (entry, curve, _) in zip(keys, runs):
        results["runs"][", ".join(key)] = entry
        curves[key] = curve
    _write_timings(out, jobs, {", ".join(key): seconds for key, (*_, seconds) in zip(keys, runs)})
    files = plots.ablation_figure(curves, threshold, out / "ablation")
    results["figures"] = [p.name for p in files]
    return _write(out, results)


def ablation_run(name, variant, data: Splits, epochs, seed, threshold,
                 progress) -> tuple[dict, dict, float]:
    """One run of ``run_ablation``: its ``results.json`` entry, curves, wall time."""
    spec = model_spec(name, trainable=ABLATION_VARIANTS[variant])
    run = train_topic_model(f"{name}, {variant}", spec, data, epochs, seed=seed,
                            embedding_scale=0.1, progress=progress)
    q = np.linalg.norm(run.params["query"])
    curve = {"loss": run.loss, "score": run.trace.scores.mean(axis=1),
             "norm": run.trace.sen_norms.mean(axis=1) / q}
    return {"model": name, "variant": variant, "trainable": list(spec.trained),
            "epochs_to_threshold": epochs_to_threshold(run.loss, threshold),
            "final_train_loss": float(run.loss[-1]),
            "test_accuracy": accuracy(run.params, data.test, spec),
            "final_mean_topic_score": float(run.trace.scores[-1].mean()),
            "sen_drift": run.sen_drift}, curve, run.seconds


def word_sentence_incidence(data: Dataset) -> sp.csr_matrix:
    """``(W, S)`` 0/1 matrix: whether word ``w`` occurs in sentence ``χ``."""
    sentence = np.broadcast_to(np.arange(len(data))[:, None], data.tokens.shape)
    rows, cols = data.tokens[data.mask], sentence[data.mask]
    holds = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(data.n_words, len(data)))
    holds.data[:] = 1.0  # a word repeated in a sentence counts once
    return holds


def label_purity(data: Dataset) -> np.ndarray:
    """Per word: the share of the sentences holding it that carry its majority label.

    Words in no sentence (e.g. ``<unk>`` in training) get NaN.
    """
    counts = word_sentence_incidence(data) @ np.eye(data.n_classes)[data.labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts.max(axis=1) / counts.sum(axis=1)


def picked_purity(attention: np.ndarray, data: Dataset, purity: np.ndarray) -> float:
    """Mean over sentences of the label purity of the word attention picks (ties share).

    ``attention`` may be any array that is largest where attention is, e.g. ``word_scores``.
    """
    top = data.mask & (attention == attention.max(axis=1, keepdims=True))
    values = np.where(top, purity[data.safe_tokens], 0.0)
    return float(np.mean(values.sum(axis=1) / top.sum(axis=1)))


def mean_sentence_length(data: Dataset) -> np.ndarray:
    """Per word: the average length of the sentences holding it (NaN if none)."""
    holds = word_sentence_incidence(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (holds @ data.lengths) / np.asarray(holds.sum(axis=1)).ravel()


class EarlyStopping:
    """Callback: at every ``every``-th epoch and at the last one (``last``), validation loss
    and picked-word purity; stops when the validation loss has not improved for
    ``patience`` evaluations; keeps the parameters of the best evaluation (the model the
    results report). An evaluation costs one forward pass on the validation set and one
    score lookup on the training set, against ``every`` gradients on the training set."""

    def __init__(self, valid, spec, train, purity, every, patience, last=None):
        self.valid, self.spec, self.train, self.purity = valid, spec, train, purity
        self.every, self.patience, self.last = every, patience, last
        self.epochs, self.valid_loss, self.picked_purity = [], [], []
        self.best, self.best_epoch, self.best_loss = None, None, np.inf

    def __call__(self, step, params, loss):
        if step % self.every and step != self.last:
            return False
        val = numeric.loss(params, self.valid, self.spec)
        self.epochs.append(step)
        self.valid_loss.append(val)
        self.picked_purity.append(picked_purity(word_scores(params, self.train), self.train,
                                                self.purity))
        if val < self.best_loss:
            # the integrator never modifies arrays it handed out, so keeping them is safe
            self.best, self.best_epoch, self.best_loss = params, step, val
        return len(self.epochs) - 1 - self.epochs.index(self.best_epoch) >= self.patience


def word_scores(params, data: Dataset) -> np.ndarray:
    """``s_w = q·κ_w`` at every position (``-inf`` at padding): attention is the softmax of
    these per sentence, so it is largest exactly where they are (``picked_purity``)."""
    return np.where(data.mask, numeric.score(params)[data.safe_tokens], -np.inf)


@_claims_output(lambda kwargs: len(SST_WIDTH))
def run_sst(out, data_dir, task: str = "sst2", *, epochs: int = SST_EPOCHS, seed: int = 0,
            data: Splits | None = None, eval_every: int = SST_EVAL_EVERY,
            patience: int = SST_PATIENCE, progress=True, jobs: int | str | None = None) -> dict:
    """Attn-FC (width 200) and Attn-TC (width 100) on SST-2 or SST-5, early stopping.

    Per model: SEN figure of the ``SST_TOP_WORDS`` words with the largest scores (``m`` per
    word = average length − 1 of the training sentences holding it), label purity over
    training of the word attention picks, test accuracy at the best validation loss.
    ``jobs``: see ``run_jobs`` (the two models are independent).
    """
    out = _folder(out)
    check_jobs(jobs)
    for name, value in (("eval_every", eval_every), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    data = data or load_sst(data_dir, task)
    purity = label_purity(data.train)
    uniform = float(np.nanmean(np.where(data.train.mask, purity[data.train.safe_tokens],
                                        np.nan), axis=1).mean())
    results = {"experiment": task, "seed": seed, "max_epochs": epochs, "lr": LR,
               "eval_every": eval_every, "patience": patience, "data": _describe(data),
               "uniform_pick_purity": uniform, "models": {}}
    tasks = [Job(f"{task} {name}", epochs, sst_model, dict(
        name=name, width=width, task=task, data=data, epochs=epochs, seed=seed,
        eval_every=eval_every, patience=patience, uniform=uniform, out=out))
        for name, width in SST_WIDTH.items()]
    jobs = _workers(jobs, tasks)
    runs = run_jobs(tasks, jobs, progress=progress, desc=task)
    for name, (entry, _) in zip(SST_WIDTH, runs):
        results["models"][name] = entry
    _write_timings(out, jobs, {name: seconds for name, (_, seconds) in zip(SST_WIDTH, runs)})
    return _write(out, results)


def sst_model(name, width, task, data: Splits, epochs, seed, eval_every, patience, uniform,
              out, progress) -> tuple[dict, float]:
    """One model of ``run_sst``: trained with early stopping; its figures and
    ``results.json`` entry, all measured on the selected (best-validation) parameters."""
    purity = label_purity(data.train)
    m_word = mean_sentence_length(data.train) - 1.0
    spec = model_spec(name, d=width)
    params = numeric.init_params(spec, data.train, seed=seed, query_scale=0.3,
                                 key_scale=0.0, embedding_scale=1e-6)
    stop = EarlyStopping(data.valid, spec, data.train, purity, eval_every, patience,
                         last=epochs)
    bar, callback = _progress_and_callback(progress, stop)
    start = time.perf_counter()
    traj = gradient_descent(params, data.train, spec, LR, epochs, callback=callback,
                            progress=bar, desc=f"{task} {name}")
    seconds = time.perf_counter() - start
    best = stop.best
    s = numeric.score(best)
    y = np.linalg.norm(best["query"]) * np.linalg.norm(best["embeddings"], axis=1)
    seen = np.flatnonzero(np.isfinite(m_word))  # words of the training sentences
    top = seen[np.argsort(-s[seen], kind="stable")[:SST_TOP_WORDS]]
    dist = sen_distance(s[top], y[top], m_word[top])
    tag = f"{task}_{name.lower()}"
    title = f"{task.upper()} {name}"
    files = [*plots.sst_sen_figure(s[top], y[top], m_word[top], sen_curve,
                                   out / f"{tag}_sen", title=title,
                                   words=[data.words[w] for w in top] if data.words else None),
             *plots.purity_figure(stop.epochs, stop.picked_purity, uniform,
                                  out / f"{tag}_purity", title=title),
             *plots.loss_figure({"train": traj.loss}, out / f"{tag}_loss", title=title,
                                extra={"validation": (stop.epochs, stop.valid_loss)})]
    return {"width": width, "trainable": list(spec.trained), "epochs_run": len(traj.loss) - 1,
            "best_epoch": stop.best_epoch, "best_valid_loss": float(stop.best_loss),
            "validated_epochs": len(stop.epochs),
            "stopped_early": len(traj.loss) - 1 < epochs,
            "train_accuracy": accuracy(best, data.train, spec),
            "test_accuracy": accuracy(best, data.test, spec),
            "picked_purity": {"epochs": stop.epochs, "values": stop.picked_purity},
            "top_words": [{"word": data.words[w] if data.words else int(w), "score": float(s[w]),
                           "qv_norm": float(y[w]), "m": float(m_word[w]),
                           "rel_distance": float(d)} for w, d in zip(top, dist)],
            "sen_rel_distance_median": float(np.median(dist)),
            "sen_rel_distance_max": float(dist.max()),
            "figures": [p.name for p in files]}, seconds


def _describe(data: Splits) -> dict:
    return {"train": len(data.train), "valid": len(data.valid), "test": len(data.test),
            "n_words": data.train.n_words, "n_classes": data.train.n_classes,
            "max_length": int(data.train.tokens.shape[1])}


def _folder(out) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_timings(out: Path, jobs: int | None, seconds: dict) -> None:
    """``timings.json``: wall time per run (kept out of ``results.json``, which depends only
    on the seed and settings)."""
    # three significant digits: a tiny run of a few milliseconds must not read as 0
    timings = {"jobs": jobs,
               "wall_time_s": {name: float(f"{s:.3g}") for name, s in seconds.items()}}
    outputs.write_json(out / "timings.json", timings)


def read_timings(out) -> dict:
    """``timings.json`` of a finished run: ``{"jobs": …, "wall_time_s": {run: seconds}}``."""
    return json.loads((Path(out) / "timings.json").read_text(encoding="utf-8"))


def _write(out: Path, results: dict) -> dict:
    """results.json last and atomically: once it exists, the run and its figures are whole."""
    outputs.write_json(out / outputs.RESULTS_NAME, results)
    return results

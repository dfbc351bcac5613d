"""The paper's experiments: synthetic topic task, ablation, SST-2/SST-5 (PAPER.md).

Each ``run_*`` trains with ``numeric.integrate.gradient_descent`` (full batch, one step per
epoch), writes its figures (PNG and PDF) and ``results.json`` into ``out`` and returns the
results as a dict. The same seed gives the same numbers (wall times aside).

The SEN curve (persisting identity, keys starting at 0 and embeddings near 0):
``‖q‖‖v_t‖ = sqrt(2 (s_t + (e^{s_t} − 1)/m))``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import numeric
from numeric import plots
from numeric.data import Splits, load_sst, synthetic_topic_data
from numeric.integrate import gradient_descent
from numeric.model import Dataset, ModelSpec
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
SST_WIDTH = {"Attn-FC": 200, "Attn-TC": 100}
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
    m = np.broadcast_to(np.asarray(m, np.float64), s.shape)[..., None]
    a, b = np.maximum(s, 0.0), sen_curve_inverse(y, m[..., 0])
    grid = np.linspace(0.0, 1.0, samples)
    foot = np.minimum(a, b)[..., None] + np.abs(b - a)[..., None] * grid
    gap = np.hypot(foot - s[..., None], sen_curve(foot, m) - y[..., None]).min(axis=-1)
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
    """Gradient descent on the synthetic training set, tracing the topic words each epoch."""
    train = data.train
    params = numeric.init_params(spec, train, seed=seed, query_scale=0.3, key_scale=0.0,
                                 embedding_scale=embedding_scale)
    trace = WordTrace(np.flatnonzero(train.topic_class >= 0))
    drift = StepDrift(params, train, spec)      # SEN drift attributed on the fly (issue 13)

    def both(step, p, loss):
        drift(step, p, loss)
        return trace(step, p, loss)

    start = time.perf_counter()
    traj = gradient_descent(params, train, spec, LR, epochs, callback=both,
                            progress=progress, desc=name)
    return Run(name, spec, traj.final, traj.loss, trace, time.perf_counter() - start,
               sen_drift_summary(drift.result(), drift.why))


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


def run_synthetic(out, *, epochs: int = SYNTHETIC_EPOCHS, seed: int = 0,
                  data: Splits | None = None, models=tuple(MODELS), progress=True) -> dict:
    """Attn-FC, Attn-TC and Attn-TL on the synthetic data with the paper's settings.

    Per model: SEN figure, loss curve, final distributions; ``results.json`` with test
    accuracy and the largest relative distance from the SEN curve.
    """
    out = _folder(out)
    data = data or synthetic_topic_data(seed)
    topic = data.train.topic_class >= 0
    m = data.train.tokens.shape[1] - 1
    results = {"experiment": "synthetic", "seed": seed, "epochs": epochs, "lr": LR,
               "data": _describe(data), "models": {}}
    for name in models:
        run = train_topic_model(name, model_spec(name), data, epochs, seed=seed,
                                embedding_scale=1e-6, progress=progress)
        tag = name.lower()
        files = [*plots.sen_figure(run.trace.scores, run.trace.sen_norms, m, sen_curve,
                                   sen_distance, out / f"{tag}_sen", title=name,
                                   from_epoch=SEN_FROM_EPOCH, tolerance=SEN_TOLERANCE),
                 *plots.loss_figure({name: run.loss}, out / f"{tag}_loss", title=name),
                 *plots.distribution_figure(numeric.score(run.params),
                                            np.linalg.norm(run.params["embeddings"], axis=1),
                                            topic, out / f"{tag}_distributions", title=name)]
        results["models"][name] = {
            "trainable": list(run.spec.trained), "wall_time_s": round(run.seconds, 2),
            "final_train_loss": float(run.loss[-1]),
            "train_accuracy": accuracy(run.params, data.train, run.spec),
            "test_accuracy": accuracy(run.params, data.test, run.spec),
            "sen": sen_summary(run, m), "sen_drift": run.sen_drift,
            "final": word_statistics(run.params, topic),
            "figures": [p.name for p in files]}
    return _write(out, results)


def epochs_to_threshold(loss: np.ndarray, threshold: float = LOSS_THRESHOLD) -> int | None:
    """First epoch whose training loss is below ``threshold`` (``None``: never)."""
    below = np.flatnonzero(np.asarray(loss) < threshold)
    return int(below[0]) if below.size else None


def run_ablation(out, *, epochs: int = ABLATION_EPOCHS, seed: int = 0,
                 data: Splits | None = None, threshold: float = LOSS_THRESHOLD,
                 progress=True) -> dict:
    """Attn-FC and Attn-TC with keys frozen, embeddings frozen, or both trained.

    Embeddings start at N(0, 0.1²). Loss, mean topic score and mean topic ‖v‖ on shared
    axes; ``results.json`` with, per run, the first epoch of loss below ``threshold``.
    """
    out = _folder(out)
    data = data or synthetic_topic_data(seed)
    results = {"experiment": "ablation", "seed": seed, "epochs": epochs, "lr": LR,
               "embedding_scale": 0.1, "loss_threshold": threshold,
               "data": _describe(data), "runs": {}}
    curves = {}
    for name in ("Attn-FC", "Attn-TC"):
        for variant, trainable in ABLATION_VARIANTS.items():
            spec = model_spec(name, trainable=trainable)
            run = train_topic_model(f"{name}, {variant}", spec, data, epochs, seed=seed,
                                    embedding_scale=0.1, progress=progress)
            q = np.linalg.norm(run.params["query"])
            curves[(name, variant)] = {"loss": run.loss,
                                       "score": run.trace.scores.mean(axis=1),
                                       "norm": run.trace.sen_norms.mean(axis=1) / q}
            results["runs"][f"{name}, {variant}"] = {
                "model": name, "variant": variant, "trainable": list(spec.trained),
                "epochs_to_threshold": epochs_to_threshold(run.loss, threshold),
                "final_train_loss": float(run.loss[-1]),
                "test_accuracy": accuracy(run.params, data.test, spec),
                "final_mean_topic_score": float(run.trace.scores[-1].mean()),
                "sen_drift": run.sen_drift,
                "wall_time_s": round(run.seconds, 2)}
    files = plots.ablation_figure(curves, threshold, out / "ablation")
    results["figures"] = [p.name for p in files]
    return _write(out, results)


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
    """Mean over sentences of the label purity of the word attention picks (ties share)."""
    top = data.mask & (attention == attention.max(axis=1, keepdims=True))
    values = np.where(top, purity[data.safe_tokens], 0.0)
    return float(np.mean(values.sum(axis=1) / top.sum(axis=1)))


def mean_sentence_length(data: Dataset) -> np.ndarray:
    """Per word: the average length of the sentences holding it (NaN if none)."""
    holds = word_sentence_incidence(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (holds @ data.lengths) / np.asarray(holds.sum(axis=1)).ravel()


class EarlyStopping:
    """Callback: every ``every`` epochs, validation loss and picked-word purity; stops when
    the validation loss has not improved for ``patience`` evaluations; keeps the best."""

    def __init__(self, valid, spec, train, purity, every, patience):
        self.valid, self.spec, self.train, self.purity = valid, spec, train, purity
        self.every, self.patience = every, patience
        self.epochs, self.valid_loss, self.picked_purity = [], [], []
        self.best, self.best_epoch, self.best_loss = None, None, np.inf

    def __call__(self, step, params, loss):
        if step % self.every:
            return False
        val = numeric.loss(params, self.valid, self.spec)
        self.epochs.append(step)
        self.valid_loss.append(val)
        self.picked_purity.append(picked_purity(numeric.attention(params, self.train, self.spec),
                                                self.train, self.purity))
        if val < self.best_loss:
            # the integrator never modifies arrays it handed out, so keeping them is safe
            self.best, self.best_epoch, self.best_loss = params, step, val
        return len(self.epochs) - 1 - self.epochs.index(self.best_epoch) >= self.patience


def run_sst(out, data_dir, task: str = "sst2", *, epochs: int = SST_EPOCHS, seed: int = 0,
            data: Splits | None = None, eval_every: int = SST_EVAL_EVERY,
            patience: int = SST_PATIENCE, progress=True) -> dict:
    """Attn-FC (width 200) and Attn-TC (width 100) on SST-2 or SST-5, early stopping.

    Per model: SEN figure of the ``SST_TOP_WORDS`` words with the largest scores (``m`` per
    word = average length − 1 of the training sentences holding it), label purity over
    training of the word attention picks, test accuracy at the best validation loss.
    """
    out = _folder(out)
    data = data or load_sst(data_dir, task)
    purity = label_purity(data.train)
    m_word = mean_sentence_length(data.train) - 1.0
    uniform = float(np.nanmean(np.where(data.train.mask, purity[data.train.safe_tokens],
                                        np.nan), axis=1).mean())
    results = {"experiment": task, "seed": seed, "max_epochs": epochs, "lr": LR,
               "eval_every": eval_every, "patience": patience, "data": _describe(data),
               "uniform_pick_purity": uniform, "models": {}}
    for name, width in SST_WIDTH.items():
        spec = model_spec(name, d=width)
        params = numeric.init_params(spec, data.train, seed=seed, query_scale=0.3,
                                     key_scale=0.0, embedding_scale=1e-6)
        stop = EarlyStopping(data.valid, spec, data.train, purity, eval_every, patience)
        start = time.perf_counter()
        traj = gradient_descent(params, data.train, spec, LR, epochs, callback=stop,
                                progress=progress, desc=f"{task} {name}")
        seconds = time.perf_counter() - start
        best = stop.best
        s = numeric.score(best)
        y = np.linalg.norm(best["query"]) * np.linalg.norm(best["embeddings"], axis=1)
        seen = np.flatnonzero(np.isfinite(m_word))  # words of the training sentences
        top = seen[np.argsort(-s[seen], kind="stable")[:SST_TOP_WORDS]]
        dist = sen_distance(s[top], y[top], m_word[top])
        tag = f"{task}_{name.lower()}"
        files = [*plots.sst_sen_figure(s[top], y[top], m_word[top], sen_curve,
                                       out / f"{tag}_sen", title=f"{task.upper()} {name}"),
                 *plots.purity_figure(stop.epochs, stop.picked_purity, uniform,
                                      out / f"{tag}_purity", title=f"{task.upper()} {name}"),
                 *plots.loss_figure({"train": traj.loss}, out / f"{tag}_loss",
                                    title=f"{task.upper()} {name}",
                                    extra={"validation": (stop.epochs, stop.valid_loss)})]
        results["models"][name] = {
            "width": width, "trainable": list(spec.trained), "epochs_run": len(traj.loss) - 1,
            "best_epoch": stop.best_epoch, "best_valid_loss": float(stop.best_loss),
            "stopped_early": len(traj.loss) - 1 < epochs, "wall_time_s": round(seconds, 2),
            "train_accuracy": accuracy(best, data.train, spec),
            "test_accuracy": accuracy(best, data.test, spec),
            "picked_purity": {"epochs": stop.epochs, "values": stop.picked_purity},
            "top_words": [{"word": data.words[w] if data.words else int(w), "score": float(s[w]),
                           "qv_norm": float(y[w]), "m": float(m_word[w]),
                           "rel_distance": float(d)} for w, d in zip(top, dist)],
            "sen_rel_distance_median": float(np.median(dist)),
            "sen_rel_distance_max": float(dist.max()),
            "figures": [p.name for p in files]}
    return _write(out, results)


def _describe(data: Splits) -> dict:
    return {"train": len(data.train), "valid": len(data.valid), "test": len(data.test),
            "n_words": data.train.n_words, "n_classes": data.train.n_classes,
            "max_length": int(data.train.tokens.shape[1])}


def _folder(out) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write(out: Path, results: dict) -> dict:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results

"""Experiment bugs the suite used to miss (issue 9), each seen to fail with its bug applied.

Test accuracy measured on the training set, the SST ``m`` per word off by one, the last
model reported instead of the best, and the settled epoch taken from the wrong excursion.
``tests/mutation.py --named`` applies each bug.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import numeric
from numeric import experiments as ex
from numeric.data import Splits
from numeric.integrate import gradient_descent

pytestmark = pytest.mark.usefixtures("figures_skipped")  # numbers, not figures, are checked

# --- experiments: what each reported number is measured on ------------------------------------

def _flipped(data: numeric.Dataset) -> numeric.Dataset:
    """The same sentences with every label moved to the next class."""
    return numeric.Dataset(data.tokens, (data.labels + 1) % data.n_classes, data.n_words,
                           data.n_classes, data.topic_class)


def _tiny_topic_splits(seed=0, **kw):
    from numeric.data import synthetic_topic_data
    knobs = dict(n_classes=2, topics_per_class=1, n_nontopic=30, m=3, n_sentences=80,
                 n_train=60, n_valid=10)
    knobs.update(kw)
    return synthetic_topic_data(seed, **knobs)


def test_synthetic_test_accuracy_is_measured_on_the_test_set(tmp_path):
    """Test sentences = training sentences with the other label: a test accuracy taken on
    the training set would equal the training accuracy instead of its complement."""
    d = _tiny_topic_splits()
    splits = Splits(d.train, d.valid, _flipped(d.train))
    r = ex.run_synthetic(tmp_path, epochs=150, data=splits, models=("Attn-TC",),
                         progress=False)["models"]["Attn-TC"]
    assert r["train_accuracy"] == 1.0 and r["test_accuracy"] == 0.0
    assert r["sen"]["m"] == 3


def test_ablation_test_accuracy_is_measured_on_the_test_set(tmp_path):
    d = _tiny_topic_splits()
    splits = Splits(d.train, d.valid, _flipped(d.train))
    r = ex.run_ablation(tmp_path, epochs=150, data=splits, threshold=0.5, progress=False)
    both = r["runs"]["Attn-TC, both trained"]
    assert both["test_accuracy"] == 0.0 and both["final_train_loss"] < 0.5
    assert both["epochs_to_threshold"] is not None
    assert r["runs"]["Attn-FC, keys frozen"]["final_mean_topic_score"] == 0.0


def _sst_like(valid_flipped: bool):
    """A tiny SST-like split: words 1–2 decide the label, 3–8 are filler, lengths vary."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(40):
        label = i % 2
        filler = rng.integers(3, 9, size=int(rng.integers(1, 5))).tolist()
        rows.append([1 + label] + filler)
        labels.append(label)
    width = max(map(len, rows))
    tokens = np.array([r + [-1] * (width - len(r)) for r in rows])
    train = numeric.Dataset(tokens, labels, 9, 2)
    valid = _flipped(train) if valid_flipped else train
    return Splits(train, valid, _flipped(train), tuple(f"w{i}" for i in range(9)))


@pytest.fixture(scope="module")
def sst_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("sst")
    kw = dict(epochs=60, eval_every=10, patience=20, progress=False)
    with pytest.MonkeyPatch.context() as patch:   # as figures_skipped, for the module
        patch.setattr(ex.plots, "save", lambda fig, stem: [])
        return (ex.run_sst(out / "a", None, "sst2", data=_sst_like(True), **kw),
                ex.run_sst(out / "b", None, "sst2", data=_sst_like(False), **kw))


def test_sst_reports_the_best_model_not_the_last(sst_runs):
    """Validation labels opposite to training: the validation loss only rises, so the best
    model is the untrained one (epoch 0), whose scores are all exactly 0 (keys start at 0)
    and whose test accuracy (test = flipped training) is 1 − its training accuracy."""
    rising, falling = sst_runs
    for m in rising["models"].values():
        assert m["best_epoch"] == 0 and m["epochs_run"] == 60 and not m["stopped_early"]
        assert all(w["score"] == 0.0 for w in m["top_words"])
        assert m["test_accuracy"] == pytest.approx(1 - m["train_accuracy"])
    for m in falling["models"].values():
        assert m["best_epoch"] == 60 or m["best_epoch"] == 50
        assert m["train_accuracy"] == 1.0 and m["test_accuracy"] == 0.0
        assert max(w["score"] for w in m["top_words"]) > 0


def test_sst_m_per_word_is_the_mean_length_minus_one(sst_runs):
    data = _sst_like(False).train
    for m in sst_runs[1]["models"].values():
        for w in m["top_words"]:
            word = int(w["word"][1:])
            holding = (data.tokens == word).any(axis=1)
            assert w["m"] == pytest.approx(data.lengths[holding].mean() - 1, rel=1e-12)


def test_early_stopping_stops_after_patience_evaluations_without_improvement():
    d = _sst_like(True)
    spec = ex.model_spec("Attn-TC", d=4)
    params = numeric.init_params(spec, d.train, seed=0)
    stop = ex.EarlyStopping(d.valid, spec, d.train, ex.label_purity(d.train), every=5,
                            patience=3)
    traj = gradient_descent(params, d.train, spec, ex.LR, 500, callback=stop)
    assert stop.epochs == [0, 5, 10, 15] and stop.best_epoch == 0
    assert len(traj.loss) - 1 == 15
    assert stop.best_loss == min(stop.valid_loss) == stop.valid_loss[0]
    assert all(np.array_equal(stop.best[n], params[n]) for n in params)


def _fake_run(distance_per_epoch, m=4):
    """A run whose single topic word sits ``distance`` (relative) above the SEN curve."""
    dist = np.asarray(distance_per_epoch, dtype=float)
    s = np.linspace(0.5, 3.0, len(dist))
    y = ex.sen_curve(s, m) / (1 - dist)          # |y − f| / max(y, f) = dist for y ≥ f
    trace = SimpleNamespace(scores=s[:, None], sen_norms=y[:, None], words=np.array([7]))
    return SimpleNamespace(trace=trace)


def test_settled_epoch_is_after_the_last_excursion_not_the_first():
    dist = np.zeros(120)
    dist[[0, 1, 2]] = 0.05        # start-up
    dist[[70, 71]] = [0.03, 0.04]  # a late excursion: settled only from epoch 72
    out = ex.sen_summary(_fake_run(dist), 4)
    assert out["within_tolerance_from_epoch"] == 72
    assert out["max_rel_distance"] == pytest.approx(0.04)
    assert out["worst_epoch"] == 71 and out["worst_word"] == 7
    assert out["within_tolerance"] is False
    dist[[70, 71]] = [0.019, 0.0]
    out = ex.sen_summary(_fake_run(dist), 4)
    assert out["within_tolerance_from_epoch"] == 3 and out["within_tolerance"] is True
    assert out["max_rel_distance"] == pytest.approx(0.019)
    dist[-1] = 0.5                 # never settles
    assert ex.sen_summary(_fake_run(dist), 4)["within_tolerance_from_epoch"] is None


def test_settled_epoch_boundary_and_start_up_distance():
    dist = np.zeros(60)
    dist[10] = ex.SEN_TOLERANCE * 1.001
    out = ex.sen_summary(_fake_run(dist), 4)
    assert out["within_tolerance_from_epoch"] == 11
    run = _fake_run(dist)
    y, s = run.trace.sen_norms[:11, 0], run.trace.scores[:11, 0]
    expected = np.abs(y - ex.sen_curve(s, 4)).max()
    assert out["start_up_max_abs_distance"] == pytest.approx(expected)
    dist[10] = ex.SEN_TOLERANCE * 0.999
    assert ex.sen_summary(_fake_run(dist), 4)["within_tolerance_from_epoch"] == 0


def test_accuracy_counts_the_largest_logit():
    data = numeric.Dataset([[0], [1], [2]], [0, 1, 1], 3, 2)
    spec = numeric.ModelSpec(d=2, d_key=1)
    params = {"query": np.ones(1), "keys": np.zeros((3, 1)),
              "embeddings": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
              "classifier": np.eye(2)}
    assert ex.accuracy(params, data, spec) == pytest.approx(2 / 3)


def test_word_statistics_split_topic_and_nontopic_words():
    params = {"query": np.array([1.0]), "keys": np.array([[3.0], [-2.0], [1.0]]),
              "embeddings": np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 3.0]])}
    out = ex.word_statistics(params, np.array([True, False, False]))
    assert out["topic_scores"] == [3.0] and out["topic_norms"] == [5.0]
    assert out["nontopic_score_abs_max"] == 2.0 and out["nontopic_norm_max"] == 3.0
    assert out["nontopic_score_mean"] == -0.5 and out["nontopic_norm_mean"] == 2.0


def test_orthogonal_distance_of_the_origin_is_zero():
    assert ex.sen_orthogonal_distance(0.0, 0.0, 20) == 0.0
    assert ex.sen_orthogonal_distance(1.0, ex.sen_curve(1.0, 20), 20) < 1e-6


def test_experiments_use_the_papers_settings(monkeypatch, tmp_path):
    """Synthetic: embeddings N(0, (1e-6)²); ablation: N(0, 0.1²); both q ~ N(0, 0.3²), keys 0,
    learning rate 0.1, every epoch; the final loss reported is the last epoch's."""
    calls, real_init, real_gd = [], numeric.init_params, ex.gradient_descent

    def init(spec, data, seed=0, **kw):
        calls.append(("init", kw))
        return real_init(spec, data, seed, **kw)

    def gd(params, data, spec, lr, steps, **kw):
        calls.append(("gd", lr, steps))
        return real_gd(params, data, spec, lr, steps, **kw)

    monkeypatch.setattr(numeric, "init_params", init)
    monkeypatch.setattr(ex, "gradient_descent", gd)
    d = _tiny_topic_splits()
    syn = ex.run_synthetic(tmp_path / "s", epochs=3, data=d, models=("Attn-FC",),
                           progress=False)
    paper = dict(query_scale=0.3, key_scale=0.0, embedding_scale=1e-6)
    assert calls == [("init", paper), ("gd", 0.1, 3)]
    calls.clear()
    abl = ex.run_ablation(tmp_path / "a", epochs=3, data=d, progress=False)
    assert calls == [("init", dict(paper, embedding_scale=0.1)), ("gd", 0.1, 3)] * 6
    calls.clear()
    sst = ex.run_sst(tmp_path / "t", None, data=_sst_like(False), epochs=3, progress=False)
    assert calls == [("init", paper), ("gd", 0.1, 3)] * 2
    # the reported final loss is the last epoch's (loss falls from the first epoch on)
    run = ex.train_topic_model("Attn-FC", ex.model_spec("Attn-FC"), d, 3, seed=0,
                               embedding_scale=1e-6, progress=False)
    assert syn["models"]["Attn-FC"]["final_train_loss"] == run.loss[-1] != run.loss[1]
    assert abl["runs"]["Attn-FC, both trained"]["final_train_loss"] == ex.train_topic_model(
        "x", ex.model_spec("Attn-FC", trainable=("keys", "embeddings")), d, 3, seed=0,
        embedding_scale=0.1, progress=False).loss[-1]
    assert sst["models"]["Attn-FC"]["epochs_run"] == 3

"""Tests aimed at real bugs the suite used to miss (issue 9), each checked against the bug.

Every test here was seen to fail with its named bug applied (by hand or as a mutant of
``tests/mutation.py``): an unstable softmax or log-sum-exp, padding in the row maximum, a
loosened campaign tolerance, thresholds moved by 10×, test accuracy measured on the training
set, the SST ``m`` off by one, the last model reported instead of the best, the settled epoch
taken from the wrong excursion, bad ids and dtypes reaching deep errors, and a sensitivity
``σ`` that does not bound what it claims to.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import numeric
from numeric import experiments as ex
from numeric.campaign import (
    Config,
    adaptive_tolerance,
    build,
    config_seed,
    random_config,
    run_trajectory,
)
from numeric.data import Splits
from numeric.integrate import gradient_descent, integrate_flow, rk4, trained_flow
from numeric.laws import LAWS, PRECONDITION_TOL, LawReport, check_laws
from numeric.trajectory import Trajectory

STRICT = dict(all="raise")


def by_law(reports):
    return {r.law: r for r in reports}


# --- stable softmax and log-sum-exp ----------------------------------------------------------

def _scored_problem(dtype, word_scores, logit, n_classes=3, tokens=((1, 2, 3), (2, 3, -1))):
    """Scores ``s_w = word_scores[w]`` (d_key = 1, q = 1), every embedding the same ``v``, and
    classifier rows all equal, so that every logit is ``logit`` and every sentence's tokens
    share one score: the exact results are then known and nothing underflows."""
    n_words = len(word_scores)
    tokens = np.array(tokens)
    data = numeric.Dataset(tokens, np.arange(len(tokens)) % n_classes, n_words, n_classes)
    spec = numeric.ModelSpec(d=2, d_key=1, dtype=dtype)
    f = np.dtype(dtype).type
    params = {"query": np.ones(1, dtype),
              "keys": np.array(word_scores, dtype).reshape(-1, 1),
              "embeddings": np.tile(np.array([1.0, 0.0], dtype), (n_words, 1)),
              "classifier": np.tile(np.array([f(logit), 0.0], dtype), (n_classes, 1))}
    return params, data, spec


# float32's exp overflows above 88.7, float64's above 709.8: scores beyond both
@pytest.mark.parametrize("dtype,scale", [("float64", 1000.0), ("float32", 1000.0),
                                         ("float32", 100.0)])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_softmax_and_log_sum_exp_subtract_the_row_maximum(dtype, scale, sign):
    """Scores and logits of ±1000 (float32: also ±100) under ``errstate(all="raise")``:
    without the row maximum subtracted, exp overflows (+) or underflows to 0/0 (−)."""
    params, data, spec = _scored_problem(dtype, [sign * scale] * 4, sign * scale)
    with np.errstate(**STRICT):
        value, grads = numeric.value_and_gradient(params, data, spec)
        a = numeric.attention(params, data, spec)
    np.testing.assert_allclose(a, [[1 / 3] * 3, [0.5, 0.5, 0.0]], rtol=1e-6)
    # all logits equal: log C (float32 keeps log C only to its ulp at 1000, 6e-5)
    assert value == pytest.approx(np.log(3), rel=1e-6 if dtype == "float64" else 1e-4)
    assert all(g.dtype == np.dtype(dtype) and np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("dtype,scale", [("float64", 1000.0), ("float32", 100.0)])
def test_extreme_scores_and_logits_give_the_exact_limits(dtype, scale):
    """Scores +S and −S in one sentence, logits S and −S: attention one-hot, loss 0 or 2S,
    no overflow and no invalid operation (underflow to 0 is the right answer here)."""
    data = numeric.Dataset([[0, 1], [0, 1]], [0, 1], 2, 2)
    spec = numeric.ModelSpec(d=2, d_key=1, dtype=dtype)
    params = {"query": np.ones(1, dtype), "keys": np.array([[scale], [-scale]], dtype),
              "embeddings": np.array([[1.0, 0.0], [0.0, 1.0]], dtype),
              "classifier": np.array([[scale, 0.0], [-scale, 0.0]], dtype)}
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        fw = numeric.engine.forward(params, data, spec)
        grads = numeric.gradient(params, data, spec)
    np.testing.assert_array_equal(fw["a"], [[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(fw["ell"], [0.0, 2 * scale], rtol=1e-6)
    np.testing.assert_allclose(fw["P"], [[1.0, 0.0], [1.0, 0.0]])
    assert all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_padding_is_not_part_of_the_row_maximum(dtype):
    """Padding gathers word 0; with s_0 = +1000 and the real tokens at 0, a maximum taken
    over the padding too makes every exp underflow and the attention 0/0."""
    scores = [1000.0, 0.0, 0.0, 0.0]
    padded = _scored_problem(dtype, scores, 2.0, tokens=((1, 2, -1), (3, -1, -1)))
    params, data, spec = padded
    with np.errstate(**STRICT):
        value, grads = numeric.value_and_gradient(params, data, spec)
        a = numeric.attention(params, data, spec)
    np.testing.assert_allclose(a, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert value == pytest.approx(np.log(3), rel=1e-6)
    assert all(np.isfinite(g).all() for g in grads.values())


# --- the campaign: small perturbations must be caught ---------------------------------------

def _scaled_gradient(monkeypatch, name, factor):
    """The engine with ``∂L/∂name`` scaled by ``factor`` (one gradient slightly wrong)."""
    engine = numeric.value_and_gradient

    def scaled(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        return loss, {n: g * factor if n == name else g for n, g in grad.items()}

    monkeypatch.setattr(numeric, "value_and_gradient", scaled)


#: (configuration, gradient to scale, law that must catch a relative error of 1e-4 in it)
PERTURBED = [
    (Config(seed=0, n_sentences=6), "keys", "SEN"),
    (Config(seed=0, n_sentences=6), "embeddings", "SEN"),
    (Config(seed=1, a2=False, key_scale=0.5, trainable=("query", "keys")), "query",
     "query-key"),
    (Config(seed=2, a2=False, trainable=("embeddings", "classifier")), "classifier",
     "classifier-embedding"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "hidden_weight", "hidden-embedding"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "output_weight", "relu-unit"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "hidden_bias", "relu-unit"),
]


@pytest.mark.parametrize("config,name,law", PERTURBED,
                         ids=[f"{law}-{name}" for _, name, law in PERTURBED])
def test_campaign_catches_one_gradient_off_by_one_part_in_ten_thousand(monkeypatch, config,
                                                                      name, law):
    """Each law holds along the exact flow and is violated when one gradient is scaled by
    1 + 1e-4 (a campaign tolerance loosened 1000× lets this through)."""
    good = by_law(run_trajectory(config).reports)[law]
    assert good.verdict == "holds", good
    _scaled_gradient(monkeypatch, name, 1 + 1e-4)
    bad = by_law(run_trajectory(config).reports)[law]
    assert bad.applicable and bad.verdict == "violated", bad
    assert bad.drift > 10 * bad.allowed  # caught with a margin, not by luck


def test_adaptive_tolerance_is_ten_times_the_summed_local_errors():
    assert adaptive_tolerance(100, 1e-10) == pytest.approx(1e-7, rel=1e-12)
    assert adaptive_tolerance(0, 1e-10) == pytest.approx(1e-9, rel=1e-12)  # at least 1 step
    r = run_trajectory(Config(seed=0, n_sentences=6))
    assert r.tolerance == pytest.approx(10 * r.n_steps * 1e-10, rel=1e-12)
    assert all(rep.tolerance == rep.accuracy == r.tolerance for rep in r.reports)


def test_random_configurations_follow_the_documented_distribution():
    """README: 2–5 classes, 1–3 topic words per class, 1–25 non-topic words per sentence,
    2–60 sentences, d and d_key 1–8, A2 in 80 %, ragged in 15 %, query scale 0.3–3, key
    scale 0 or 0.01–1, embedding scale 1e-6–1, horizon 100–1e4."""
    cs = [random_config(config_seed(0, i)) for i in range(1500)]

    def span(field):
        values = [getattr(c, field) for c in cs]
        return min(values), max(values)

    assert span("n_classes") == (2, 5) and span("topics_per_class") == (1, 3)
    assert span("m") == (1, 25) and span("n_sentences") == (2, 60)
    assert span("d") == (1, 8) and span("d_key") == (1, 8) and span("hidden") == (1, 5)
    assert span("n_nontopic") == (1, 15)
    assert 0.75 < np.mean([c.a2 for c in cs]) < 0.85
    assert 0.11 < np.mean([c.ragged for c in cs]) < 0.19
    assert 0.45 < np.mean([c.classifier == "linear" for c in cs]) < 0.55
    lo, hi = span("query_scale")
    assert 10 ** -0.5 <= lo < 0.33 and 2.9 < hi <= 10 ** 0.5
    keys = np.array([c.key_scale for c in cs])
    assert 0.4 < np.mean(keys == 0) < 0.6
    assert 0.01 <= keys[keys > 0].min() < 0.012 and 0.9 < keys.max() <= 1.0
    lo, hi = span("embedding_scale")
    assert 1e-6 <= lo < 2e-6 and 0.8 < hi <= 1.0
    lo, hi = span("horizon")
    assert 100 <= lo < 110 and 9000 < hi <= 1e4
    # half the runs get the SEN setting: keys and embeddings trained, the query frozen
    sen = [set(c.trainable) >= {"keys", "embeddings"} and "query" not in c.trainable
           for c in cs]
    assert 0.5 < np.mean(sen) < 0.7


def test_a2_configuration_freezes_equal_zero_nontopic_words():
    s = build(Config(seed=6, n_classes=2, topics_per_class=2, n_nontopic=3, key_scale=0.5,
                     embedding_scale=0.5))
    rows = np.arange(4, 7)
    assert s.frozen_rows["embeddings"].tolist() == rows.tolist()
    assert s.frozen_rows["keys"].tolist() == rows.tolist()
    assert (s.params["embeddings"][rows] == 0).all()
    assert (s.params["keys"][rows] == s.params["keys"][4]).all()
    assert (s.params["embeddings"][:4] != 0).all() and (s.params["keys"][:4] != 0).any()
    tc = s.data.topic_class
    assert tc.tolist() == [0, 0, 1, 1, -1, -1, -1]
    # one topic word first in every sentence, deciding the label
    assert (tc[s.data.tokens[:, 0]] == s.data.labels).all()
    assert (tc[s.data.tokens[:, 1:]] == -1).all() and s.data.tokens.shape[1] == 3


def test_ragged_configuration_breaks_a3_and_mlp_biases_stay_off_the_kink():
    s = build(Config(seed=2, m=6, n_sentences=40, ragged=True))
    lengths = s.data.lengths - 1
    assert lengths.min() >= 1 and lengths.max() <= 6 and len(set(lengths.tolist())) > 2
    s = build(Config(seed=2, classifier="mlp", hidden=8))
    b = np.abs(s.params["hidden_bias"])
    assert (b >= 0.5).all() and (b <= 2.0).all()


# --- thresholds at their boundary ---------------------------------------------------------

@pytest.fixture(scope="module")
def sen_run():
    s = build(Config(seed=4, n_classes=2, m=4, n_sentences=10,
                     trainable=("keys", "embeddings", "classifier")))
    return s, integrate_flow(s.params, s.data, s.spec, 30.0, frozen_rows=s.frozen_rows)


def _with(traj, **params):
    return Trajectory(traj.data, traj.spec, traj.time, dict(traj.params, **params),
                      frozen_rows=traj.frozen_rows)


def _condition(traj, law, name):
    return {c.name: c for c in by_law(check_laws(traj, 1e-6))[law].conditions}[name]


@pytest.mark.parametrize("factor,holds", [(5.0, False), (0.5, True)])
def test_precondition_tolerance_at_its_boundary(sen_run, factor, holds):
    """A deviation of 5× ``PRECONDITION_TOL`` fails each measured precondition and 0.5×
    passes (a threshold moved by 10× either way breaks one side)."""
    s, traj = sen_run
    assert PRECONDITION_TOL == 1e-10
    dev = factor * PRECONDITION_TOL
    t = traj.time / traj.time[-1]
    query = traj.params["query"] * (1 + dev * t)[:, None]
    a1 = _condition(_with(traj, query=query), "SEN", "A1")
    assert a1.holds is holds and a1.measured == pytest.approx(dev, rel=1e-3)
    nontopic = s.frozen_rows["embeddings"]
    emb = traj.params["embeddings"].copy()
    emb[:, nontopic[0], 0] = dev * np.abs(emb[:, :2]).max()
    a2 = _condition(_with(traj, embeddings=emb), "SEN", "A2-embeddings")
    assert a2.holds is holds and a2.measured == pytest.approx(dev, rel=1e-3)
    # A2-scores is absolute: the spread of non-topic scores plus the motion of c
    keys = traj.params["keys"].copy()
    q = traj.params["query"][0]
    keys[:, nontopic[0]] += dev * q / (q @ q)          # raises one non-topic score by dev
    a2s = _condition(_with(traj, keys=keys), "SEN", "A2-scores")
    assert a2s.holds is holds and a2s.measured == pytest.approx(dev, rel=1e-2)
    # F: frozen rows of a trained array that are not quite zero (classifier-embedding)
    f = _condition(_with(traj, embeddings=emb), "classifier-embedding", "F")
    assert f.holds is holds and f.measured == pytest.approx(dev, rel=1e-6)


def test_a3_and_flow_preconditions_are_measured():
    s = build(Config(seed=2, m=6, n_sentences=40, ragged=True))
    traj = integrate_flow(s.params, s.data, s.spec, 1.0, frozen_rows=s.frozen_rows)
    a3 = _condition(traj, "SEN", "A3")
    share = np.mean(s.data.lengths != s.data.lengths[0])
    assert not a3.holds and a3.measured == pytest.approx(share)
    s = build(Config(seed=2, m=3, n_sentences=8, trainable=("embeddings",)))
    traj = integrate_flow(s.params, s.data, s.spec, 1.0, frozen_rows=s.frozen_rows)
    flow = _condition(traj, "SEN", "flow")
    assert not flow.holds and flow.measured == 1 and "keys" in flow.detail


@pytest.mark.parametrize("factor,verdict", [(2.0, "holds"), (1.0, "holds"), (0.5, "violated")])
def test_verdict_threshold_at_its_boundary(sen_run, factor, verdict):
    """With the tolerance set to ``factor`` × the measured relative drift (no floor) the law
    holds for factor ≥ 1 and is violated below."""
    _, traj = sen_run
    keys = traj.params["keys"].copy()
    keys[:, 0] *= 1 + 1e-4 * traj.time[:, None] / traj.time[-1]
    bent = _with(traj, keys=keys)
    drift = by_law(check_laws(bent, 1.0, 0.0))["SEN"].drift
    assert 1e-6 < drift < 1e-2
    rep = by_law(check_laws(bent, factor * drift, 0.0))["SEN"]
    assert rep.verdict == verdict
    assert rep.usage == pytest.approx(1 / factor, rel=1e-9)
    assert rep.allowed == pytest.approx(factor * drift, rel=1e-12)


@pytest.mark.parametrize("factor,verdict", [(2.0, "holds"), (0.5, "violated")])
def test_accuracy_floor_at_its_boundary(sen_run, factor, verdict):
    """With no tolerance, the law holds exactly when the drift is within ``accuracy·σ``."""
    _, traj = sen_run
    keys = traj.params["keys"].copy()
    keys[:, 0] *= 1 + 1e-8 * traj.time[:, None] / traj.time[-1]
    bent = _with(traj, keys=keys)
    unit = by_law(check_laws(bent, 0.0, 1.0))["SEN"]            # floor per unit accuracy
    critical = unit.drift / unit.floor
    rep = by_law(check_laws(bent, 0.0, factor * critical))["SEN"]
    assert rep.verdict == verdict and rep.worst == "topic word 0"
    assert rep.floor == pytest.approx(factor * critical * unit.floor, rel=1e-9)


@pytest.mark.parametrize("dtype,eps", [("float64", np.finfo(np.float64).eps),
                                       ("float32", np.finfo(np.float32).eps)])
def test_default_accuracy_is_64_epsilon_of_the_dtype(sen_run, dtype, eps):
    _, traj = sen_run
    spec = numeric.ModelSpec(d=traj.spec.d, d_key=traj.spec.d_key, dtype=dtype,
                             trainable=traj.spec.trainable)
    params = {n: x.astype(dtype) for n, x in traj.params.items()}
    t = Trajectory(traj.data, spec, traj.time, params, frozen_rows=traj.frozen_rows)
    assert all(r.accuracy == 64 * eps for r in check_laws(t, 1e-3))


def test_law_report_verdict_and_json():
    report = LawReport("x", "", (), drift=0.1, floor=0.2, usage=1.0, absolute_drift=3.0,
                       worst="matrix", tolerance=0.5, accuracy=0.0)
    assert report.verdict == "holds" and report.allowed == pytest.approx(0.7)
    assert LawReport("x", "", (), 0.1, 0.2, np.nextafter(1.0, 2), 3.0, "m", 0.5,
                     0.0).verdict == "violated"
    d = report.to_dict()
    assert (d["relative_drift"], d["floor"], d["allowed"], d["usage"]) == (0.1, 0.2, 0.7, 1.0)
    nan = LawReport("x", "", (), float("nan"), 0.0, float("inf"), 1.0, "", 0.1, 0.0)
    assert nan.to_dict()["relative_drift"] is None and nan.to_dict()["usage"] is None


# --- the sensitivity bounds what it claims -----------------------------------------------------

SIGMA_CASES = {
    "SEN": Config(seed=8, n_classes=2, m=3, n_nontopic=3, n_sentences=6, d=2, d_key=2,
                  key_scale=0.5, embedding_scale=0.5),
    "query-key": Config(seed=9, a2=False, d=1, d_key=1, key_scale=0.7,
                        trainable=("query", "keys")),
    "classifier-embedding": Config(seed=10, a2=False, d=1, d_key=1,
                                   trainable=("embeddings", "classifier")),
    "hidden-embedding": Config(seed=11, a2=False, d=1, classifier="mlp", hidden=3,
                               trainable=("embeddings", "classifier")),
    "relu-unit": Config(seed=12, a2=False, d=2, classifier="mlp", hidden=2,
                        trainable=("embeddings", "classifier")),
}


def _law_q(law, data, spec, params):
    traj = Trajectory(data, spec, [0.0], {n: x[None].copy() for n, x in params.items()})
    a, b, sens, _ = law.terms(traj)
    return (a - b)[0].reshape(a.shape[1], -1), sens[0]


@pytest.mark.parametrize("name", list(SIGMA_CASES))
def test_sensitivity_bounds_the_change_under_relative_perturbations(name):
    """Perturbing every parameter by a relative δ in the worst direction changes each
    component of Q by at most δ·σ, and by at least δ·σ/4 (σ is a bound, not a wild one)."""
    law = next(x for x in LAWS if x.name == name)
    s = build(SIGMA_CASES[name])
    params = {n: x.astype(np.float64) for n, x in s.params.items()}
    q0, sigma = _law_q(law, s.data, s.spec, params)
    assert q0.shape[1] == 1, "scalar components, so the worst direction is a sign pattern"
    # c_i = θ_i ∂Q/∂θ_i per component, by central differences (Q is a polynomial or smooth)
    h = 1e-6
    coeffs = {n: np.zeros((q0.shape[0],) + x.shape) for n, x in params.items()}
    for n, x in params.items():
        for idx in np.ndindex(x.shape):
            if x[idx] == 0:
                continue
            plus, minus = dict(params), dict(params)
            plus[n], minus[n] = x.copy(), x.copy()
            plus[n][idx] *= 1 + h
            minus[n][idx] *= 1 - h
            diff = _law_q(law, s.data, s.spec, plus)[0] - _law_q(law, s.data, s.spec, minus)[0]
            coeffs[n][(slice(None),) + idx] = diff[:, 0] / (2 * h)
    delta = 1e-7
    for k in range(q0.shape[0]):
        worst = {n: x * (1 + delta * np.sign(coeffs[n][k])) for n, x in params.items()}
        change = abs(_law_q(law, s.data, s.spec, worst)[0][k, 0] - q0[k, 0])
        total = sum(np.abs(c[k]).sum() for c in coeffs.values())
        assert total > 0
        assert change <= delta * sigma[k] * (1 + 1e-6), (k, change, delta * sigma[k])
        assert change >= delta * sigma[k] / 4, (k, change / (delta * sigma[k]))


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


# --- bad ids and dtypes are ValueErrors naming the field ------------------------------------

@pytest.fixture
def small():
    return build(Config(seed=1, n_classes=2, m=2, n_sentences=4,
                        trainable=("keys", "embeddings", "classifier")))


def test_word_id_equal_to_n_words_is_named(small):
    d = small.data
    tokens = d.tokens.copy()
    tokens[1, 2] = d.n_words
    with pytest.raises(ValueError, match=rf"tokens\[1, 2\] = {d.n_words} is out of range"):
        numeric.Dataset(tokens, d.labels, d.n_words, d.n_classes)
    tokens[1, 2] = d.n_words - 1                       # the largest valid id is fine
    numeric.Dataset(tokens, d.labels, d.n_words, d.n_classes)
    with pytest.raises(ValueError, match=r"labels\[0\] = 2 is out of range"):
        numeric.Dataset(d.tokens, np.r_[2, d.labels[1:]], d.n_words, 2)
    with pytest.raises(ValueError, match="topic_class"):
        numeric.Dataset(d.tokens, d.labels, d.n_words, 2, np.r_[d.topic_class[:-1], 2])


def test_float32_parameter_under_a_float64_spec_is_named(small):
    p = dict(small.params, keys=small.params["keys"].astype(np.float32))
    for call in (lambda: numeric.gradient(p, small.data, small.spec),
                 lambda: numeric.loss(p, small.data, small.spec),
                 lambda: gradient_descent(p, small.data, small.spec, 0.1, 1),
                 lambda: integrate_flow(p, small.data, small.spec, 0.1)):
        with pytest.raises(ValueError, match="parameter 'keys' has dtype float32 but the "
                                             "spec asks for float64"):
            call()


@pytest.mark.parametrize("call", ["gd", "rk4", "flow", "trained_flow", "trajectory"])
@pytest.mark.parametrize("row,ok", [(-1, False), (0, True), ("last", True), ("n", False)])
def test_frozen_row_outside_the_vocabulary_is_named(small, call, row, ok):
    s = small
    n = s.data.n_words
    row = {"last": n - 1, "n": n}.get(row, row)
    rows = {"embeddings": np.array([row])}
    run = {"gd": lambda: gradient_descent(s.params, s.data, s.spec, 0.1, 1, frozen_rows=rows),
           "rk4": lambda: rk4(s.params, s.data, s.spec, 0.1, 1, frozen_rows=rows),
           "flow": lambda: integrate_flow(s.params, s.data, s.spec, 0.01, frozen_rows=rows),
           "trained_flow": lambda: trained_flow(s.params, s.data, s.spec, rows),
           "trajectory": lambda: Trajectory(s.data, s.spec, [0.0],
                                            {k: v[None] for k, v in s.params.items()},
                                            frozen_rows=rows)}[call]
    if ok:
        run()
    else:
        with pytest.raises(ValueError, match="frozen_rows.*embeddings"):
            run()

"""Engine bugs the suite used to miss, each seen to fail with its bug applied.

An unstable softmax or log-sum-exp (scores and logits of ±1000 in float64, ±100 and ±1000 in
float32, under ``np.errstate(all="raise")``), padding left in the row maximum, and a word id,
a dtype or a frozen row outside what the spec allows reaching a deep error instead of a
``ValueError`` that names the field. ``tests/mutation.py --named`` applies each bug.
"""

import numpy as np
import pytest

import numeric
from numeric.campaign import Config, build
from numeric.integrate import gradient_descent, integrate_flow, rk4, trained_flow
from numeric.trajectory import Trajectory

STRICT = dict(all="raise")


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


def test_adaptive_snapshots_at_requested_times_and_bad_times_are_named(small):
    s = small
    traj = integrate_flow(s.params, s.data, s.spec, 1.0, t_eval=[0.0, 0.25, 1.0])
    assert traj.time.tolist() == [0.0, 0.25, 1.0]
    for bad in ([[0.0, 0.5]], [-0.1, 0.5], [0.0, 1.5]):
        with pytest.raises(ValueError, match="t_eval"):
            integrate_flow(s.params, s.data, s.spec, 1.0, t_eval=bad)
    free = integrate_flow(s.params, s.data, s.spec, 1.0)
    assert free.time[0] == 0.0 and free.time[-1] == 1.0


LEAST = dict(n_classes=2, topics_per_class=1, n_nontopic=1, m=0, n_train=1, n_valid=1)


@pytest.mark.parametrize("knob", list(LEAST))
def test_synthetic_knobs_at_their_least_value(knob):
    """Each knob works at its least allowed value and is refused one below it."""
    from numeric.data import synthetic_topic_data
    small = dict(n_classes=2, topics_per_class=1, n_nontopic=2, m=1, n_sentences=6,
                 n_train=3, n_valid=1)
    d = synthetic_topic_data(0, **dict(small, **{knob: LEAST[knob]}))
    assert len(d.train) == (LEAST[knob] if knob == "n_train" else 3)
    with pytest.raises(ValueError, match=knob):
        synthetic_topic_data(0, **dict(small, **{knob: LEAST[knob] - 1}))


def test_datasets_are_read_only(small):
    d = small.data
    for a in (d.tokens, d.labels, d.topic_class):
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 0


def test_non_finite_value_in_a_later_snapshot_is_named(small):
    s = small
    params = {k: np.stack([v, v]) for k, v in s.params.items()}
    params["keys"][1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="keys holds a non-finite value in snapshot 1"):
        Trajectory(s.data, s.spec, [0.0, 1.0], params)


@pytest.mark.parametrize("name,bad", [("keys", lambda x: x[:1]), ("query", lambda x: x[:, 0]),
                                      ("classifier", lambda x: x[0])])
def test_file_without_a_snapshot_axis_is_named(small, name, bad):
    s = small
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 2, record_every=1)
    fields = {"tokens": s.data.tokens, "labels": s.data.labels, "n_classes": np.int64(2),
              "time": traj.time, **traj.params}
    fields[name] = bad(fields[name])
    with pytest.raises(ValueError, match=f"{name} has shape .*: expected a leading snapshot "
                                         f"axis of length 3"):
        Trajectory.from_fields(fields)


@pytest.mark.parametrize("classifier", ["linear", "mlp"])
def test_gradient_never_forms_a_sentences_by_tokens_by_width_array(classifier):
    """README: "No (S, L, d) array is formed" — the printer contracts the attention through
    a sparse (S, W) matrix and scores words before gathering them. A gathered (S, L, d)
    embedding or (S, L, d_key) key array would take S·L·64·8 bytes here."""
    import tracemalloc
    rng = np.random.default_rng(0)
    n, length, d = 1000, 40, 64
    data = numeric.Dataset(rng.integers(0, 50, (n, length)), rng.integers(0, 3, n), 50, 3)
    spec = numeric.ModelSpec(d=d, d_key=d, classifier=classifier, hidden=4)
    params = numeric.init_params(spec, data, seed=0, key_scale=0.1)
    data.scatter(np.float64)                                  # built once per data set
    tracemalloc.start()
    try:
        numeric.value_and_gradient(params, data, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < n * length * d * 8 / 4, peak


def test_mlp_trajectory_file_round_trip_and_bad_hidden_weight(tmp_path):
    s = build(Config(seed=2, classifier="mlp", hidden=3,
                     trainable=("keys", "embeddings", "classifier")))
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 3, record_every=1,
                            frozen_rows=s.frozen_rows)
    traj.save(tmp_path / "mlp.npz")
    back = Trajectory.load(tmp_path / "mlp.npz")
    assert back.spec.classifier == "mlp" and back.spec.hidden == 3
    for name in s.spec.param_names:
        np.testing.assert_array_equal(back.params[name], traj.params[name])
    fields = dict(np.load(tmp_path / "mlp.npz"))
    fields["hidden_weight"] = fields["hidden_weight"][..., 0]
    with pytest.raises(ValueError, match=r"hidden_weight must be \(T, H, d\)"):
        Trajectory.from_fields(fields)

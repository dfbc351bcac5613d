"""Integrators and the trajectory file: semantics, agreement, bad input."""

import numpy as np
import pytest

import numeric
from numeric.campaign import Config, build
from numeric.integrate import StalledIntegration, gradient_descent, integrate_flow, rk4
from numeric.trajectory import Trajectory

SMALL = Config(seed=1, n_classes=3, m=3, n_sentences=8, d=2, d_key=2,
               trainable=("keys", "embeddings", "classifier"))


@pytest.fixture
def setup():
    return build(SMALL)


def test_gd_step_is_minus_lr_gradient(setup):
    s = setup
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 1)
    g = numeric.gradient(s.params, s.data, s.spec)
    for name in s.spec.param_names:
        expected = s.params[name] - (0.05 * g[name] if name in s.spec.trained else 0)
        np.testing.assert_allclose(traj.final[name], expected, rtol=1e-14, atol=1e-15)
    assert traj.time.tolist() == [0.0, 0.05]


def test_gd_records_loss_every_step_and_snapshots(setup):
    s = setup
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 25, record_every=10)
    assert len(traj.loss) == 26
    np.testing.assert_allclose(traj.loss_time, 0.1 * np.arange(26))
    np.testing.assert_allclose(traj.time, [0.0, 1.0, 2.0, 2.5])
    for i, t in enumerate(traj.time):
        k = int(round(t / 0.1))
        assert traj.loss[k] == pytest.approx(numeric.loss(traj.snapshot(i), s.data, s.spec),
                                             rel=1e-12)
    assert traj.loss[-1] < traj.loss[0]


def test_gd_callback_stops_early_and_sees_every_iterate(setup):
    s = setup
    seen = []

    def callback(step, params, loss):
        seen.append((step, params, loss))
        return step == 7

    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 100, callback=callback)
    assert [k for k, _, _ in seen] == list(range(8))
    assert len(traj.loss) == 8 and traj.time[-1] == pytest.approx(0.7)
    np.testing.assert_array_equal(traj.final["keys"], seen[-1][1]["keys"])
    # the callback may keep the arrays: later updates must not modify them
    assert not np.array_equal(seen[0][1]["keys"], seen[-1][1]["keys"])


def test_frozen_parameters_and_rows_do_not_move(setup):
    s = setup
    traj = rk4(s.params, s.data, s.spec, 0.1, 30, frozen_rows=s.frozen_rows)
    np.testing.assert_array_equal(traj.final["query"], s.params["query"])
    rows = s.frozen_rows["embeddings"]
    np.testing.assert_array_equal(traj.final["embeddings"][rows], s.params["embeddings"][rows])
    assert not np.array_equal(traj.final["embeddings"], s.params["embeddings"])


def test_integrators_agree_and_dense_output_interpolates(setup):
    s = setup
    flow = integrate_flow(s.params, s.data, s.spec, 5.0, rtol=1e-11, atol=1e-13,
                          t_eval=np.linspace(0, 5, 6))
    fixed = rk4(s.params, s.data, s.spec, 0.01, 500)
    for name in s.spec.trained:
        np.testing.assert_allclose(fixed.final[name], flow.final[name], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(flow.at(2.0)[name], flow.snapshot(2)[name], rtol=1e-8,
                                   atol=1e-10)
    assert np.all(np.diff(flow.loss) < 0)  # the loss decreases along a gradient flow


def test_stop_when_and_stall_guard(setup):
    s = setup
    traj = integrate_flow(s.params, s.data, s.spec, 100.0,
                          stop_when=lambda p: numeric.loss(p, s.data, s.spec) * -1 + 0.5)
    assert traj.time[-1] < 100 and traj.loss[-1] == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(StalledIntegration):
        integrate_flow(s.params, s.data, s.spec, 100.0, max_evaluations=20)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(steps=-1), "steps"),
    (dict(record_every=0), "record_every"),
    (dict(frozen_rows={"query": np.array([0])}), "frozen_rows"),
    (dict(frozen_rows={"keys": np.array([99])}), "outside"),
])
def test_gd_rejects_bad_input(setup, kwargs, message):
    s = setup
    args = dict(lr=0.1, steps=3) | kwargs
    with pytest.raises(ValueError, match=message):
        gradient_descent(s.params, s.data, s.spec, args.pop("lr"), args.pop("steps"), **args)


# NumPy warns on the way to the non-finite loss that the loop turns into the error
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_gd_divergence_is_reported(setup):
    s = setup
    p = dict(s.params, classifier=s.params["classifier"] * 1e3)
    with pytest.raises(FloatingPointError, match="step size"):
        gradient_descent(p, s.data, s.spec, 1e6, 50)


def test_trajectory_roundtrip(setup, tmp_path):
    s = setup
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 20, record_every=5,
                            frozen_rows=s.frozen_rows)
    traj.save(tmp_path / "t.npz")
    back = Trajectory.load(tmp_path / "t.npz")
    for attr in ("d", "d_key", "classifier", "trained", "dtype"):
        assert getattr(back.spec, attr) == getattr(traj.spec, attr)
    assert not back.trainable_inferred
    np.testing.assert_array_equal(back.time, traj.time)
    np.testing.assert_array_equal(back.loss, traj.loss)
    np.testing.assert_array_equal(back.data.tokens, s.data.tokens)
    np.testing.assert_array_equal(back.frozen_rows["keys"], s.frozen_rows["keys"])
    for name in s.spec.param_names:
        np.testing.assert_array_equal(back.params[name], traj.params[name])


def _fields(setup):
    s = setup
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 4, record_every=2)
    f = {"tokens": s.data.tokens, "labels": s.data.labels, "n_classes": np.int64(3),
         "time": traj.time}
    f.update(traj.params)
    return f


@pytest.mark.parametrize("change, message", [
    (lambda f: f.pop("time"), r"missing field\(s\) \['time'\]"),
    (lambda f: f.pop("keys"), r"missing field\(s\) \['keys'\]"),
    (lambda f: f.update(extra=np.zeros(2)), "unknown field.*extra"),
    (lambda f: f.update(query=f["query"][:2]), "query has shape"),
    (lambda f: f.update(time=f["time"][::-1].copy()), "strictly increasing"),
    (lambda f: f.update(keys=f["keys"][:, :, :1]), "keys"),
    (lambda f: f.update(hidden_bias=np.zeros((3, 2))), "exactly one classifier"),
    (lambda f: f.update(n_classes=np.float64(3)), "n_classes"),
    (lambda f: f.update(labels=f["labels"] + 5), "labels"),
    (lambda f: f.update(embeddings=f["embeddings"].astype(np.float32)), "float64 or all"),
])
def test_load_names_the_bad_field(setup, tmp_path, change, message):
    f = _fields(setup)
    change(f)
    np.savez(tmp_path / "bad.npz", **f)
    with pytest.raises(ValueError, match=message):
        Trajectory.load(tmp_path / "bad.npz")


def test_load_refuses_pickled_objects(setup, tmp_path):
    f = _fields(setup)
    f["trainable"] = np.array(["keys", None], dtype=object)
    np.savez(tmp_path / "obj.npz", **f)
    with pytest.raises(ValueError):
        Trajectory.load(tmp_path / "obj.npz")


def test_load_infers_trainable_from_motion(setup, tmp_path):
    np.savez(tmp_path / "t.npz", **_fields(setup))
    back = Trajectory.load(tmp_path / "t.npz")
    assert back.trainable_inferred
    assert set(back.spec.trained) == {"keys", "embeddings", "classifier"}


def test_gradient_descent_step_is_bitwise_theta_plus_lr_times_flow():
    """The in-place update equals ``θ + lr·(−∇L)`` byte for byte, keeps frozen rows, and
    never writes into the arrays of the previous iterate."""
    from numeric.checks import random_problem
    from numeric.integrate import trained_flow

    params, data, spec = random_problem(9, "mlp")
    rows = {"embeddings": np.array([0, 2])}
    before = {n: x.copy() for n, x in params.items()}
    traj = gradient_descent(params, data, spec, 0.05, 1, record_every=1, frozen_rows=rows)
    _, flow = trained_flow(params, data, spec, rows)
    for name in spec.param_names:
        want = params[name] + 0.05 * flow[name] if name in flow else params[name]
        assert traj.params[name][-1].tobytes() == want.tobytes(), name
        assert params[name].tobytes() == before[name].tobytes(), name


@pytest.mark.parametrize("classifier", ["linear", "mlp"])
@pytest.mark.parametrize("trainable", [("embeddings", "classifier"), ("embeddings",),
                                       ("keys", "embeddings"), ("query", "embeddings")])
def test_attention_computed_once_only_while_keys_and_query_stay(classifier, trainable):
    """A run that trains neither keys nor query reuses the attention of its start; every
    iterate is still θ + lr·(−∇L) byte for byte. Training either one makes the attention
    move, so a reused one would be caught here by the steps after the first."""
    from numeric.checks import random_problem
    from numeric.engine import fixed_attention

    params, data, spec = random_problem(4, classifier, trainable=trainable)
    frozen = not {"keys", "query"} & set(trainable)
    assert (fixed_attention(params, data, spec) is not None) == frozen
    traj = gradient_descent(params, data, spec, 0.5, 4, record_every=1)
    p = {n: np.array(x) for n, x in params.items()}
    for k in range(1, 5):
        grads = numeric.gradient(p, data, spec, wrt=spec.trained)
        p = {n: p[n] + 0.5 * -grads[n] if n in grads else p[n] for n in p}
        for name in spec.param_names:
            assert traj.params[name][k].tobytes() == p[name].tobytes(), (k, name)

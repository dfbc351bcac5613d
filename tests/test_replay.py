"""Replay of a recorded run and the attribution of each law's drift."""

import dataclasses

import numpy as np
import pytest

from numeric.attribution import measured_quantity
from numeric.campaign import Config, build
from numeric.integrate import gradient_descent
from numeric.replay import Optimizer, explain, step_counts
from numeric.trajectory import Trajectory

#: Topic setting where non-topic words train too (A2 fails a little, as in the paper's runs).
RUN = Config(seed=7, n_classes=2, topics_per_class=2, m=3, n_nontopic=6, n_sentences=16,
             d=3, d_key=3, trainable=("keys", "embeddings", "classifier"), a2=False,
             embedding_scale=0.05, query_scale=1.0)


def _run(lr=0.05, steps=60, every=20, dtype="float64", claimed_lr=None, config=RUN, **kw):
    s = build(config)
    spec = dataclasses.replace(s.spec, dtype=dtype)
    params = {n: x.astype(spec.float) for n, x in s.params.items()}
    traj = gradient_descent(params, s.data, spec, lr, steps, record_every=every, **kw)
    if claimed_lr is not None:      # the file states another learning rate than was used
        traj = Trajectory(traj.data, traj.spec, traj.time * claimed_lr / lr, traj.params)
    return traj


def test_faithful_run_is_consistent_and_every_law_explained():
    traj = _run()
    replay, atts, skipped = explain(traj, Optimizer(0.05))
    assert replay.consistent and not skipped
    assert replay.steps.tolist() == [20, 20, 20]
    for a in atts:
        assert a.explained, a.to_dict()
    sen = next(a for a in atts if a.law == "SEN").to_dict()
    for comp in sen["components"]:       # both effects are there and they add up
        assert comp["discretisation"] > 0 and comp["assumptions"] > 0
        assert comp["unexplained_share"] < 1e-9


def test_wrong_learning_rate_is_flagged_with_its_size():
    """The file claims lr 0.1 (its times are k·0.1) but was trained at 0.09."""
    traj = _run(lr=0.09, claimed_lr=0.1, every=5)   # short intervals: ratio ≈ 0.09/0.1
    replay, atts, _ = explain(traj, Optimizer(0.1))
    assert not replay.consistent
    report = replay.to_dict()
    for name in ("embeddings", "keys", "classifier"):
        assert report["parameters"][name]["movement_ratio"] == pytest.approx(0.9, abs=0.02)
        assert report["parameters"][name]["max_distance_of_movement"] > 0.05
    assert not all(a.explained for a in atts)


def test_weight_decay_left_out_is_flagged():
    traj = _run()                                   # trained without decay
    replay, _, _ = explain(traj, Optimizer(0.05, weight_decay=0.2))
    assert not replay.consistent
    assert replay.worst[2] > 1e3


@pytest.mark.parametrize("kw", [dict(weight_decay=0.2), dict(momentum=0.8),
                                dict(weight_decay=0.1, momentum=0.5, decoupled=True)])
def test_decay_and_momentum_runs_are_replayed_and_explained(kw):
    traj = _run(**kw)
    replay, atts, _ = explain(traj, Optimizer(0.05, **kw))
    assert replay.consistent, replay.to_dict()
    for a in atts:
        assert a.explained, a.to_dict()
    part = "weight_decay" if "weight_decay" in kw else "momentum"
    assert all(np.abs(a.parts[part]).max() > 0 for a in atts)
    plain, _, _ = explain(traj, Optimizer(0.05))
    assert not plain.consistent                    # the optimizer matters


def test_float32_checkpoints_are_judged_against_float32_rounding():
    traj = _run(dtype="float32")
    replay, atts, _ = explain(traj, Optimizer(0.05))
    assert replay.dtype == "float32" and replay.consistent, replay.to_dict()
    assert replay.worst[2] > 1e-6                  # not float64-exact, yet within float32
    for a in atts:
        assert a.explained, a.to_dict()


def test_times_must_be_multiples_of_lr():
    with pytest.raises(ValueError, match="not multiples of lr"):
        step_counts(np.array([0.0, 1.0, 2.05]), 0.1)
    assert step_counts(np.array([0.0, 0.1 * 3, 0.1 * 7]), 0.1).tolist() == [3, 4]


@pytest.mark.parametrize("kw, message", [(dict(lr=0.0), "lr"), (dict(lr=0.1, momentum=1.0),
                                                                  "momentum"),
                                         (dict(lr=0.1, weight_decay=-1), "weight_decay"),
                                         (dict(lr=0.1, decoupled="yes"), "decoupled")])
def test_optimizer_rejects_bad_options(kw, message):
    with pytest.raises(ValueError, match=message):
        Optimizer(**kw)


def test_on_the_fly_sen_drift_matches_the_replay():
    """StepDrift (used by `reproduce`) attributes the same drift as the replay."""
    from attnflow.commands.reproduce import drift_cell
    from numeric.replay import StepDrift, sen_drift_summary

    s = build(RUN)
    drift = StepDrift(s.params, s.data, s.spec)
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 60, record_every=20,
                            callback=drift)
    att = drift.result()
    _, atts, _ = explain(traj, Optimizer(0.05))
    ref = next(a for a in atts if a.law == "SEN")
    assert att.explained
    for part in ("assumptions", "discretisation"):
        np.testing.assert_allclose(att.parts[part], ref.parts[part], rtol=1e-9, atol=1e-15)
    summary = sen_drift_summary(att)
    assert summary["max_unexplained_share"] < 1e-9 and len(summary["per_word"]) == 4
    assert "explained" in drift_cell(summary)
    assert drift_cell(sen_drift_summary(None, "why")) == "not attributed (why)"


def test_parallel_replay_gives_the_same_report():
    traj = _run(every=10)
    one, atts1, _ = explain(traj, Optimizer(0.05))
    two, atts2, _ = explain(traj, Optimizer(0.05), jobs=2)
    assert one.steps.tolist() == two.steps.tolist()
    for n in one.relative:
        np.testing.assert_array_equal(one.relative[n], two.relative[n])
        assert one.movement_ratio[n] == pytest.approx(two.movement_ratio[n], rel=1e-12)
    for a, b in zip(atts1, atts2):
        for part in a.parts:
            np.testing.assert_allclose(a.parts[part], b.parts[part], rtol=1e-12, atol=1e-18)
    with pytest.raises(ValueError, match="jobs"):
        explain(traj, Optimizer(0.05), jobs=0)


def test_a_nan_distance_makes_the_replay_inconsistent():
    """``ratio > best`` once dropped a NaN distance: a replay that went non-finite in one
    parameter read CONSISTENT on the others."""
    from numeric.replay import Replay

    def replay(*distances):
        names = [f"p{k}" for k in range(len(distances))]
        one = np.ones(2)
        return Replay(np.array([1, 1]), dict(zip(names, map(np.array, distances))),
                      dict.fromkeys(names, one), dict.fromkeys(names, 1.0), one * 1e-3,
                      "float64", False)
    assert replay([1e-4, 2e-4], [5e-4, 1e-4]).consistent                 # the control
    bad = replay([1e-4, 2e-4], [np.nan, 1e-4], [3e-4, 1e-4])
    assert not bad.consistent and bad.worst[:2] == ("p1", 0)


def test_the_sen_drift_summary_shows_a_nan_share_and_no_explained_verdict():
    """The reproduce table's "x of it unexplained (verdict)": max once dropped a NaN share."""
    from numeric.replay import Attribution, sen_drift_summary

    parts = {"assumptions": np.array([1.0, 1.0]), "discretisation": np.array([0.0, 0.0])}
    att = Attribution("SEN", ["w0", "w1"], np.array([1.0, np.nan]), parts, accuracy=1e-9)
    summary = sen_drift_summary(att)
    assert np.isnan(summary["max_unexplained_share"]) and summary["verdict"] == "unexplained"
    fine = sen_drift_summary(Attribution("SEN", ["w0", "w1"], np.array([1.0, 1.0]), parts,
                                         accuracy=1e-9))
    assert fine["max_unexplained_share"] == 0.0 and fine["verdict"] == "explained"


#: The declared laws linear in θ that RUN defines (remainder R = 0).
LINEAR = ("key-sum", "classifier-sum", "embedding-across-classifier")


@pytest.mark.parametrize("kw", [dict(weight_decay=0.2), dict(weight_decay=0.2, decoupled=True),
                                dict(momentum=0.8), dict(weight_decay=0.1, momentum=0.5),
                                dict(weight_decay=0.1, momentum=0.5, decoupled=True)],
                         ids=["l2", "decoupled", "momentum", "l2-momentum",
                              "decoupled-momentum"])
def test_linear_laws_are_attributed_exactly_under_decay_and_momentum(kw):
    """ΔQ = ∇Q·Δθ exactly for a linear law, so its weight-decay and momentum parts are its
    whole drift where the flow conserves it (the data part is 0): unexplained is rounding."""
    traj = _run(config=dataclasses.replace(RUN, key_scale=0.5), **kw)
    replay, atts, skipped = explain(traj, Optimizer(0.05, **kw), laws=LINEAR)
    by = {a.law: a for a in atts}
    assert replay.consistent and set(by) == set(LINEAR) and not skipped
    for a in by.values():
        assert a.explained, a.to_dict()
        assert not np.abs(a.parts["discretisation"]).any()
    for law in ("key-sum", "classifier-sum"):      # conserved by the flow: no data part
        a = by[law]
        scale = np.abs(measured_quantity(law, traj)[0]).max()
        # momentum alone keeps them: Q(b_k) stays 0 when Q(∇L) = 0
        assert np.abs(a.measured).max() > (1e-3 if "weight_decay" in kw else 0) * scale
        assert np.abs(a.parts["assumptions"]).max() <= 1e-12 * scale
        assert np.abs(a.unexplained).max() <= 1e-12 * scale


def test_a_linear_law_obeys_its_decay_and_momentum_recursions():
    """Linear Q conserved by the flow (Q(∇L) = 0), heavy ball β: with L2 decay λ,
    Q_{k+1} = (1 − ηλ)Q_k + β(Q_k − Q_{k−1}), Q_1 = (1 − ηλ)Q_0 (buffer 0); with decoupled
    decay the buffer never carries Q (Q(b_k) = 0), so Q_{k+1} = (1 − ηλ)Q_k. Without the β
    term the coupled prediction fails (control)."""
    lr, lam, beta = 0.05, 0.2, 0.5
    shrink = 1 - lr * lam
    coupled = _run(steps=30, every=1, weight_decay=lam, momentum=beta)
    q, _ = measured_quantity("classifier-sum", coupled)
    scale = np.abs(q).max()
    np.testing.assert_allclose(q[1], shrink * q[0], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(q[2:], shrink * q[1:-1] + beta * (q[1:-1] - q[:-2]), rtol=0,
                               atol=1e-12 * scale)
    assert np.abs(q[2:] - shrink * q[1:-1]).max() > 1e-4 * scale
    decoupled = _run(steps=30, every=1, weight_decay=lam, momentum=beta, decoupled=True)
    q, _ = measured_quantity("classifier-sum", decoupled)
    np.testing.assert_allclose(q[1:], shrink * q[:-1], rtol=0, atol=1e-12 * scale)

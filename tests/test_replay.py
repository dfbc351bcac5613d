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
    traj = gradient_descent(params, s.data, spec, lr, steps, record_every=every,
                            frozen_rows=s.frozen_rows or None, **kw)
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


# --- the replay's thresholds and counts, each pinned down -------------------------------------

EPS64 = np.finfo(np.float64).eps


def test_the_replay_is_consistent_up_to_exactly_its_accuracy():
    """Consistent when the recorded checkpoint lies within the floor (distance/floor ≤ 1),
    at the boundary included; just beyond it, or twice it, is a mismatch."""
    from numeric.replay import Replay

    def at(distance):
        return Replay(np.array([3]), {"p": np.array([distance])}, {"p": np.array([0.0])},
                      {"p": 1.0}, np.array([0.5]), "float64", False)
    assert at(0.25).consistent and at(0.5).consistent and at(0.5).worst[2] == 1.0
    assert not at(0.5 * (1 + 1e-12)).consistent and not at(1.0).consistent


def test_an_interval_shorter_than_half_a_step_is_refused_not_replayed_as_zero_steps():
    """1e-8 of a step rounds to 0 steps within the multiples' tolerance: still refused."""
    with pytest.raises(ValueError, match="is 1e-08 steps"):
        step_counts(np.array([0.0, 0.1, 0.1 + 1e-9]), 0.1)
    assert step_counts(np.array([0.0, 0.1, 0.2]), 0.1).tolist() == [1, 1]


def test_the_floor_is_per_interval_and_accumulates_over_a_momentum_replay():
    """From every checkpoint each interval's floor is 8(n_i + 1)ε; with momentum the replay
    runs on from the first checkpoint, so its errors (and the floor) add up."""
    plain, _, _ = explain(_run(), Optimizer(0.05), laws=())
    np.testing.assert_array_equal(plain.floor, 8 * 21 * EPS64 * np.ones(3))
    heavy, _, _ = explain(_run(momentum=0.8), Optimizer(0.05, momentum=0.8), laws=())
    np.testing.assert_allclose(heavy.floor, 8 * 21 * EPS64 * np.array([1, 2, 3]), rtol=1e-15)
    assert heavy.continuous and heavy.to_dict()["floor"] == heavy.floor[-1]


def test_the_attribution_accuracy_takes_the_largest_sensitivity_over_the_run():
    """accuracy = 8·Σ_i(n_i + 1)·ε·max_τ σ: the sensitivity at its largest over time and
    components. σ grows along the run; with the snapshots reordered its largest value
    sits in the middle, so neither the first nor the last snapshot's σ gives it (the
    replay of a reordered file mismatches; its accuracy is still this)."""
    from numeric.replay import estimate_from_checkpoints

    run = _run()
    traj = Trajectory(run.data, run.spec, run.time,
                      {n: x[[0, 3, 1, 2]] for n, x in run.params.items()})
    _, atts, _ = explain(traj, Optimizer(0.05), laws=("SEN", "query-key"))
    estimates, _ = estimate_from_checkpoints(traj, Optimizer(0.05), laws=("SEN",))
    for a in atts + estimates:
        sens = measured_quantity(a.law, traj)[1].reshape(len(traj), -1)
        assert a.accuracy == pytest.approx(8 * 3 * 21 * EPS64 * sens.max(), rel=1e-12, abs=0)
        top = sens.max(axis=1)
        assert top[0] < top.max() and top[-1] < top.max()


def test_the_checkpoint_only_estimate_counts_each_intervals_steps():
    """Parameters that move by the same step every step (linear in time): the estimate is
    exact, Σ_i n_i R(δ_i) with δ_i = Δθ_i/n_i — for query-key (query fixed)
    −Σ_w δκ_w δκ_wᵀ per step, n = 5 and 10 steps — and the decay of the linear
    classifier-sum −ηλ Σ_i n_i (Q_i + Q_{i+1})/2 (trapezoid)."""
    from numeric.replay import estimate_from_checkpoints

    s = build(RUN)
    rng = np.random.default_rng(0)
    velocity = {n: rng.standard_normal(x.shape) if n in s.spec.trained else 0 * x
                for n, x in s.params.items()}
    time = np.array([0.0, 0.5, 1.5])
    params = {n: np.stack([x + t * velocity[n] for t in time]) for n, x in s.params.items()}
    traj = Trajectory(s.data, s.spec, time, params)
    atts, _ = estimate_from_checkpoints(traj, Optimizer(0.1, weight_decay=0.3),
                                        laws=("query-key", "classifier-sum"))
    by = {a.law: a for a in atts}
    step = 0.1 * velocity["keys"]                      # every step: lr × velocity
    np.testing.assert_allclose(by["query-key"].parts["discretisation"][0],
                               -15 * step.T @ step, rtol=1e-12)
    q = measured_quantity("classifier-sum", traj)[0]
    decay = -0.1 * 0.3 * (5 * (q[0] + q[1]) + 10 * (q[1] + q[2])) / 2
    np.testing.assert_allclose(by["classifier-sum"].parts["weight_decay"], decay, rtol=1e-12)


def test_the_on_the_fly_accuracy_takes_the_larger_sensitivity_of_its_ends():
    """StepDrift: accuracy = 8·(steps + 1)·ε·max σ over its first and last iterate."""
    from numeric.replay import StepDrift

    s = build(RUN)
    drift = StepDrift(s.params, s.data, s.spec)
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 30, callback=drift)
    ends = Trajectory(traj.data, traj.spec, traj.time[[0, -1]],
                      {n: x[[0, -1]] for n, x in traj.params.items()})
    sens = measured_quantity("SEN", ends)[1]
    assert sens[0].max() < sens.max()
    assert drift.result().accuracy == pytest.approx(8 * 31 * EPS64 * sens.max(), rel=1e-12,
                                                    abs=0)


def test_frozen_rows_do_not_decay_in_the_replay():
    """A2's non-topic rows are held fixed while the rest trains with weight decay: the
    replay must not shrink them either (their common key is not zero)."""
    config = dataclasses.replace(RUN, a2=True, key_scale=0.5)
    traj = _run(config=config, weight_decay=0.2)
    rows = traj.frozen_rows["keys"]
    assert np.abs(traj.params["keys"][:, rows]).min() > 0
    replay, atts, _ = explain(traj, Optimizer(0.05, weight_decay=0.2), laws=("SEN",))
    assert replay.consistent, replay.to_dict()
    assert atts[0].explained


def test_a_recorded_parameter_the_replay_keeps_at_zero_is_a_mismatch():
    """Embeddings and classifier at 0 have zero gradient: the replay keeps them at 0. A file
    whose classifier nevertheless moves is infinitely far, relative to the replayed norm 0,
    from the replay — a mismatch, never "consistent"."""
    s = build(RUN)
    params = {**s.params, "embeddings": 0 * s.params["embeddings"],
              "classifier": 0 * s.params["classifier"]}
    traj = gradient_descent(params, s.data, s.spec, 0.05, 2, record_every=1)
    assert not np.abs(traj.params["classifier"]).any()      # the flow does not move it
    moved = dict(traj.params, classifier=traj.params["classifier"].copy())
    moved["classifier"][1:] = 1e-3
    tampered = Trajectory(traj.data, traj.spec, traj.time, moved)
    replay, _, _ = explain(tampered, Optimizer(0.05), laws=())
    assert not replay.consistent and replay.worst[:2] == ("classifier", 0)
    assert replay.to_dict()["worst"]["distance_over_floor"] is None     # infinite

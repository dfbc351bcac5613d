"""Property-based verification of the laws along random trajectories.

Tolerances (see ``numeric.campaign.adaptive_tolerance`` and ``numeric.laws``):
- adaptive DOP853 runs (rtol 1e-10, atol 1e-12) with N accepted steps know the parameters to
  a relative δ = 10·N·rtol (local errors ≤ rtol per step add up at most linearly, ×10 for
  error growth along the flow); a law holds if its drift ‖ΔQ‖ ≤ δ·(movement + σ), σ the
  law's sensitivity to a relative perturbation of the parameters;
- gradient descent: drift = C·lr·(1 + a·lr + …), so halving lr from 0.02 to 0.01 divides it
  by 2·(1 + a·lr/2 + …): band [1.8, 2.2] (|a|·lr ≤ 0.2; ReLU runs whose iterates cross a
  kink at slightly different steps come closest to its edges); order 2 would give 4;
- RK4: drift = C·dt⁴ + O(dt⁵), so halving dt from 0.4 to 0.2 divides it by 16 within
  [10, 24] (observed order 3.3–4.6, room for the O(dt⁵) term at dt = 0.4; orders 3 and 5
  would give 8 and 32). Order tests only use laws whose drift lies 1000× above
  their rounding floor (64ε·σ / movement).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, find, given, note, reject, settings
from hypothesis import strategies as st
from scipy.integrate import quad_vec

import numeric
from numeric.campaign import Config, adaptive_tolerance, build, run_trajectory
from numeric.integrate import gradient_descent, integrate_flow, rk4, trained_flow
from numeric.laws import check_laws, drift_measures, relative_drift, sen_deviation_rate, sen_terms
from numeric.trajectory import Trajectory
from tests import tanh_flow
from tests.conftest import thorough
from tests.strategies import configs, order_configs, sen_configs

#: Order tests and controls integrate several runs per example: fewer examples outside the
#: thorough profile.
FEW = settings(max_examples=100 if thorough() else 6)


def applicable_drifts(traj) -> dict[str, tuple[float, float]]:
    """Relative drift and rounding floor of every applicable law."""
    return {r.law: (r.drift, r.floor) for r in check_laws(traj, 1.0) if r.applicable}


def resolved(drifts: dict) -> list[str]:
    """Laws whose drift lies far (1000×) above the rounding floor: their order is visible."""
    return [law for law, (d, floor) in drifts.items() if d > 1000 * floor and d > 0]


# --- conservation along adaptive trajectories ---------------------------------------------

@given(configs())
def test_adaptive_runs_conserve_every_applicable_law(config):
    r = run_trajectory(config)
    assume(r.status == "ok")
    note(f"{r.n_steps} steps, score growth {r.score_growth:.3g}, accuracy {r.tolerance:.2e}")
    for rep in r.reports:
        note(f"{rep.law}: {rep.verdict}, drift {rep.drift:.3e}, allowed {rep.allowed:.3e} "
             f"({rep.worst})")
        if rep.applicable:
            # "not checked": the law's terms stood still (e.g. only the query trains while
            # every key is 0, so nothing moves) — no evidence, never a vacuous "holds"
            assert rep.verdict == "holds" or (rep.verdict == "not checked" and rep.drift == 0
                                              and "did not move" in rep.reason), rep.law
        else:
            assert rep.verdict == "not applicable"


@given(sen_configs())
def test_sen_identity_holds_in_the_papers_setting(config):
    r = run_trajectory(config)
    assume(r.status == "ok")
    sen = next(rep for rep in r.reports if rep.law == "SEN")
    note(f"score growth {r.score_growth:.3g}; {[(c.name, c.measured) for c in sen.conditions]}")
    if sen.verdict == "not checked":  # e.g. a dead ReLU unit: nothing moves, no evidence
        assert r.score_growth == 0 and "did not move" in sen.reason
        reject()
    assert sen.verdict == "holds"


# --- order of convergence of fixed-step methods ------------------------------------------

class UnitSwitch:
    """GD callback: stops the run once a hidden ReLU pre-activation changes sign in some
    sentence (never for the linear classifier)."""

    def __init__(self, setup):
        self.setup, self.signs, self.happened = setup, None, False

    def __call__(self, step, params, loss):
        if self.setup.spec.classifier != "mlp":
            return False
        u = (numeric.context(params, self.setup.data) @ params["hidden_weight"].T
             + params["hidden_bias"])
        if self.signs is None:
            self.signs = u > 0
        self.happened = bool(((u > 0) != self.signs).any())
        return self.happened


@FEW
@given(st.sampled_from(["linear", "mlp"]).flatmap(order_configs))
def test_gradient_descent_drift_halves_with_the_learning_rate(config):
    s = build(config)
    drifts = []
    for lr in (0.02, 0.01):
        switched = UnitSwitch(s)
        traj = gradient_descent(s.params, s.data, s.spec, lr, round(10 / lr),
                                record_every=round(1 / lr), frozen_rows=s.frozen_rows,
                                callback=switched)
        # where a ReLU unit switches, the flow is not smooth and GD need not follow it at
        # order 1 (an iterate can jump across a sliding surface)
        assume(not switched.happened)
        drifts.append(applicable_drifts(traj))
    checked = resolved(drifts[1])
    assume(checked)  # e.g. a single dead ReLU unit: nothing moves
    for law in checked:
        note(f"{law}: {drifts[0][law]} → {drifts[1][law]}")
        assert 1.8 <= drifts[0][law][0] / drifts[1][law][0] <= 2.2, law


@FEW
@given(order_configs(classifier="linear"))
def test_rk4_drift_shrinks_like_the_fourth_power_of_the_step(config):
    s = build(config)
    try:
        drifts = [applicable_drifts(rk4(s.params, s.data, s.spec, dt, round(10 / dt),
                                        record_every=round(1 / dt), frozen_rows=s.frozen_rows))
                  for dt in (0.4, 0.2)]
    except FloatingPointError:
        assume(False)  # step outside RK4's stability region for this configuration
    checked = resolved(drifts[1])
    assume(checked)
    for law in checked:
        note(f"{law}: {drifts[0][law]} → {drifts[1][law]}")
        assert 10 <= drifts[0][law][0] / drifts[1][law][0] <= 24, law


# --- negative controls: broken assumptions are detected and explained ---------------------

def _sen_drift_and_explained(s, frozen_rows, t_end=20.0):
    """SEN report, and max over topic words of |ΔQ − ∫ deviation rate| relative to the
    movement of the terms."""
    traj = integrate_flow(s.params, s.data, s.spec, t_end, frozen_rows=frozen_rows)
    report = next(r for r in check_laws(traj, 1e-6) if r.law == "SEN")
    a, b, _, _ = sen_terms(traj)
    moved = np.abs(a - a[0]).max(axis=0) + np.abs(b - b[0]).max(axis=0)
    integral, _ = quad_vec(lambda t: sen_deviation_rate(traj.at(t), s.data, s.spec,
                                                        frozen_rows), 0.0, t_end, epsrel=1e-10)
    unexplained = np.abs((a - b)[-1] - (a - b)[0] - integral) / moved
    return report, float(unexplained.max())


@FEW
@given(sen_configs(classifier="linear", max_sentences=20, max_m=8, max_dim=4),
       st.floats(0.05, 1.0))
def test_nonzero_moving_nontopic_embeddings_break_sen_as_derived(config, scale):
    s = build(config)
    nontopic = s.frozen_rows["embeddings"]
    s.params["embeddings"][nontopic] = scale * np.random.default_rng(config.seed).standard_normal(
        (len(nontopic), config.d))
    report, unexplained = _sen_drift_and_explained(s, {"keys": nontopic})
    assert not report.applicable
    assert not next(c for c in report.conditions if c.name == "A2-embeddings").holds
    assert report.drift > 1e-4            # detected, far above the adaptive tolerance
    assert unexplained < 1e-6             # and equal to the derived deviation term


@FEW
@given(sen_configs(classifier="linear", max_sentences=20, max_m=8, max_dim=4))
def test_trained_query_breaks_sen_as_derived(config):
    config = Config(**{**config.__dict__, "key_scale": 0.0,   # c = 0 stays fixed
                       "trainable": config.trainable + ("query",)})
    s = build(config)
    report, unexplained = _sen_drift_and_explained(s, s.frozen_rows)
    assert not report.applicable
    assert not next(c for c in report.conditions if c.name == "A1").holds
    assert report.drift > 1e-4
    assert unexplained < 1e-6


def test_ragged_sentences_make_sen_not_applicable_with_its_deviation():
    r = run_trajectory(Config(seed=3, n_classes=3, m=6, n_sentences=20, ragged=True,
                              trainable=("keys", "embeddings", "classifier")))
    sen = next(rep for rep in r.reports if rep.law == "SEN")
    assert sen.verdict == "not applicable"
    assert not next(c for c in sen.conditions if c.name == "A3").holds
    assert sen.drift > 1e-3


# --- a smooth random classifier (tanh) ---------------------------------------------------

@pytest.fixture(scope="module")
def tanh_setup():
    config = Config(seed=11, n_classes=3, topics_per_class=2, m=4, n_sentences=16, d=3,
                    d_key=2, key_scale=0.3, query_scale=1.5)
    s = build(config)
    p = {n: s.params[n] for n in ("embeddings", "keys", "query")}
    p.update(tanh_flow.tanh_classifier(np.random.default_rng(0), config.d, 4, 3))
    return s, p


def test_tanh_gradient_matches_finite_differences(tanh_setup):
    s, p = tanh_setup
    p = dict(p, embeddings=p["embeddings"] + 0.3)   # non-zero everywhere

    def loss(q):
        r = np.tanh(numeric.context(q, s.data) @ q["hidden_weight"].T + q["hidden_bias"])
        z = r @ q["output_weight"].T + q["output_bias"]
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
        return float((lse - z[np.arange(len(z)), s.data.labels]).mean())

    g = tanh_flow.tanh_gradient(p, s.data)
    rng = np.random.default_rng(0)
    for name in tanh_flow.NAMES:
        i = tuple(rng.integers(0, n) for n in p[name].shape)
        up, down = ({**p, name: p[name].copy()} for _ in range(2))
        up[name][i] += 1e-6
        down[name][i] -= 1e-6
        assert g[name][i] == pytest.approx((loss(up) - loss(down)) / 2e-6, rel=1e-6, abs=1e-9)


def usage(a, b, sensitivity, accuracy) -> float:
    """Share of the allowance ``accuracy·(movement + σ)`` that the drift uses (≤ 1: holds)."""
    absolute, movement, sens = drift_measures(a, b, sensitivity)
    return float((absolute / (accuracy * (movement + sens))).max())


def tanh_drifts(s, p, t_end):
    """Along the tanh flow: usage of the adaptive allowance by SEN and W1ᵀW1 − Σ v vᵀ, the
    per-unit law's relative drift, and the largest score movement."""
    t, snaps = tanh_flow.tanh_flow(p, s.data, t_end, s.frozen_rows["keys"])
    accuracy = adaptive_tolerance(len(t) - 1)
    # SEN only reads embeddings, keys and query: the classifier slot is a placeholder
    snaps_linear = {n: snaps[n] for n in ("embeddings", "keys", "query")}
    snaps_linear["classifier"] = np.zeros((len(t), s.data.n_classes, s.spec.d))
    spec = numeric.ModelSpec(d=s.spec.d, d_key=s.spec.d_key, trainable=("keys", "embeddings"))
    sen = usage(*sen_terms(Trajectory(s.data, spec, t, snaps_linear))[:3], accuracy)
    w1, v = snaps["hidden_weight"], snaps["embeddings"]
    gram_a = np.einsum("thi,thj->tij", w1, w1)[:, None]
    gram_b = np.einsum("twi,twj->tij", v, v)[:, None]
    hidden = usage(gram_a, gram_b, 2 * (np.trace(gram_a, axis1=2, axis2=3)
                                        + np.trace(gram_b, axis1=2, axis2=3)), accuracy)
    unit_a = (snaps["output_weight"] ** 2).sum(axis=1)
    unit_b = (w1 ** 2).sum(axis=2) + snaps["hidden_bias"] ** 2
    unit = relative_drift(unit_a, unit_b, np.zeros_like(unit_a), 0.0).max()
    sc = np.einsum("twk,tk->tw", snaps["keys"], snaps["query"])
    return sen, hidden, unit, np.abs(sc - sc[0]).max()


def test_sen_and_hidden_balance_hold_for_a_tanh_classifier(tanh_setup):
    sen, hidden, unit, moved = tanh_drifts(*tanh_setup, 60.0)
    assert moved > 1.0                  # the scores did move
    assert sen <= 1 and hidden <= 1
    assert unit > 1e-3                  # the per-unit law needs ReLU's homogeneity


@FEW
@given(sen_configs(max_sentences=20, max_m=8, max_dim=4), st.integers(1, 5),
       st.integers(0, 2 ** 32 - 1))
def test_sen_holds_for_random_tanh_classifiers(config, hidden, seed):
    s = build(config)
    p = {n: s.params[n] for n in ("embeddings", "keys", "query")}
    p.update(tanh_flow.tanh_classifier(np.random.default_rng(seed), config.d, hidden,
                                       config.n_classes))
    sen, hidden_usage, _, moved = tanh_drifts(s, p, 30.0)
    note(f"score movement {moved:.3g}, usage SEN {sen:.2e}, hidden {hidden_usage:.2e}")
    assert sen <= 1 and hidden_usage <= 1


# --- a wrong sign anywhere in the engine's gradient is caught -----------------------------

def dissipation_defect(traj, frozen_rows) -> float:
    """|L(T) − L(0) + ∫‖θ̇‖² dτ| relative to ∫‖θ̇‖²: zero exactly when θ̇ = −∇L."""
    def power(t):
        _, f = trained_flow(traj.at(t), traj.data, traj.spec, frozen_rows)
        return sum(float((x ** 2).sum()) for x in f.values())

    dissipated, _ = quad_vec(power, traj.time[0], traj.time[-1], epsrel=1e-10)
    return abs(traj.loss[-1] - traj.loss[0] + dissipated) / dissipated


def failing_properties(config: Config, t_end: float = 3.0) -> list[str]:
    """Properties that fail along an adaptive run of ``config``: applicable laws beyond
    tolerance, and the gradient-flow energy identity ``dL/dτ = −‖θ̇‖²``."""
    s = build(config)
    traj = integrate_flow(s.params, s.data, s.spec, t_end, frozen_rows=s.frozen_rows)
    accuracy = adaptive_tolerance(len(traj) - 1)
    failed = [r.law for r in check_laws(traj, accuracy, accuracy) if r.verdict == "violated"]
    if dissipation_defect(traj, s.frozen_rows) > 1e-6:
        failed.append("dissipation")
    return failed


WRONG_SIGN_CASES = {
    "embeddings": Config(seed=2, n_classes=3, trainable=("keys", "embeddings", "classifier")),
    "keys": Config(seed=2, n_classes=3, trainable=("keys", "embeddings")),
    "query": Config(seed=2, n_classes=3, a2=False, key_scale=0.5,
                    trainable=("query", "keys")),
    "classifier": Config(seed=2, n_classes=3, trainable=("embeddings", "classifier")),
    **{name: Config(seed=2, n_classes=3, classifier="mlp", hidden=3, embedding_scale=0.5,
                    trainable=("keys", "embeddings", "classifier"))
       for name in ("hidden_weight", "hidden_bias", "output_weight", "output_bias")},
}


def flip_sign(monkeypatch, name, index=None):
    """Patch the engine so that the gradient of ``name`` (or one entry) has the wrong sign."""
    engine = numeric.value_and_gradient

    def wrong(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        if name in grad:
            g = np.array(grad[name])
            if index is None:
                g = -g
            else:
                g[index] = -g[index]
            grad = dict(grad, **{name: g})
        return loss, grad

    monkeypatch.setattr(numeric, "value_and_gradient", wrong)


@pytest.mark.parametrize("name", sorted(WRONG_SIGN_CASES))
def test_a_wrong_sign_in_the_gradient_fails_a_property(monkeypatch, name):
    config = WRONG_SIGN_CASES[name]
    assert failing_properties(config) == []          # the correct engine passes
    flip_sign(monkeypatch, name)
    assert failing_properties(config) != []          # the broken one is caught


def test_a_wrong_sign_in_one_entry_is_found_and_shrunk(monkeypatch):
    """Property-based search finds a configuration exposing a sign error in a single key
    component, and shrinks it to a small readable counterexample."""
    flip_sign(monkeypatch, "keys", index=(0, 0))
    found = find(sen_configs(classifier="linear"),
                 lambda c: "SEN" in failing_properties(c, t_end=2.0),
                 settings=settings(max_examples=30, database=None, derandomize=True,
                                   suppress_health_check=list(HealthCheck)))
    assert found.n_classes == 2 and found.n_sentences <= 4 and found.d <= 2

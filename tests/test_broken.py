"""Broken conservation laws: the derived step split ``ΔQ = ∇Q·Δθ + R`` (symbolic.broken,
printed into numeric/_generated/broken.py) against real gradient-descent trajectories."""

import numpy as np
import pytest
import sympy as sp

from numeric.attribution import adapters, measured_quantity
from numeric.campaign import Config, build
from numeric.integrate import gradient_descent, integrate_flow
from numeric.trajectory import Trajectory
from symbolic import broken

#: SEN setting (A1–A3 hold exactly: non-topic words held fixed with zero embeddings).
SEN = Config(seed=3, n_classes=2, topics_per_class=2, m=3, n_nontopic=4, n_sentences=12,
             d=3, d_key=2, trainable=("keys", "embeddings"), embedding_scale=0.1)
#: Every balance law applies (all of their arrays trained, nothing frozen).
BALANCE = Config(seed=4, n_classes=3, m=2, n_nontopic=3, n_sentences=10, d=2, d_key=2,
                 trainable=("keys", "embeddings", "classifier", "query"), a2=False,
                 embedding_scale=0.3, key_scale=0.3)
MLP = Config(seed=10, n_classes=2, m=2, n_nontopic=3, n_sentences=8, d=2, d_key=2,
             classifier="mlp", hidden=3, a2=False, embedding_scale=0.3, key_scale=0.3,
             trainable=("keys", "embeddings", "classifier", "query"))


# --- symbolic ------------------------------------------------------------------------------

SEN_LAW = next(law for law in broken.LAWS if law.name == "sen")


@pytest.mark.parametrize("law", broken.LAWS, ids=lambda law: law.name)
def test_every_declared_law_has_a_checked_closed_remainder(law):
    """remainder() checks each term's closed form against Q(θ+Δθ) − Q(θ) − ∇Q·Δθ."""
    assert broken.remainder(law) != 0
    assert broken.first_order(law) != 0


def test_sen_remainder_closed_form():
    """R = ½‖Δv‖² − e^{s−c}φ(Δs − Δc)/(m‖q‖²), read off the derivation."""
    rest = broken.remainder(SEN_LAW)
    text = str(rest)
    assert "Sum(dV[w, k]**2, (k, 0, d - 1))/2" in text
    assert "phi(-dc + ds[w])" in text and "exp(-c + s[w])" in text


def _sen_exp_term():
    from symbolic.laws import QQ, c, m, w
    from symbolic.model import s
    return -sp.exp(s[w] - c) / (m * QQ), (s, c, m, QQ, w)


@pytest.mark.parametrize("wrong", ["factor 2", "dropped exponential", "dropped linear"])
def test_a_wrong_claimed_remainder_is_rejected(wrong):
    """Negative control: the closed-form check catches a factor 2 or a dropped term."""
    f, (s, c, m, qq, w) = _sen_exp_term()
    u = broken.step_base(s)[w] - broken.DC
    e = sp.exp(s[w] - c) / (m * qq)
    claimed = {"factor 2": -2 * e * broken.phi(u), "dropped exponential": e * u,
               "dropped linear": -e * (sp.exp(u) - 1)}[wrong]
    broken.check_remainder(SEN_LAW, f, -e * broken.phi(u))      # the right one passes
    with pytest.raises(ArithmeticError, match="differs"):
        broken.check_remainder(SEN_LAW, f, claimed)


def test_a_term_without_closed_form_is_refused():
    from symbolic.laws import declare
    law = declare("cubic", "a cubic quantity", "Sum(V[w,k]**3, (k,0,d-1))", "0",
                  components=None)
    with pytest.raises(ArithmeticError, match="no closed remainder"):
        broken.remainder(law)


def test_homogeneity_gives_the_weight_decay_rate():
    degrees = {law.name: broken.homogeneity_degree(law) for law in broken.LAWS}
    assert degrees == {"sen": None, "query-key": 2, "classifier-embedding": 2,
                       "hidden-embedding": 2, "relu-unit": 2, "key-sum": 1,
                       "key-across-query": 2, "classifier-sum": 1, "output-weight-sum": 1,
                       "output-bias-sum": 1, "embedding-across-classifier": 1}


def test_log_mean_exp_remainder_identity():
    assert broken.lme_remainder_identity()


def test_printed_module_is_the_derivation():
    from pathlib import Path

    from numeric._generated import broken as printed
    from symbolic.print_broken import module_source
    assert module_source() == Path(printed.__file__).read_text()


def test_a_linear_law_has_a_zero_remainder_that_can_be_called():
    """ΔQ = ∇Q·Δθ exactly for a linear law: its printed remainder is 0 (it printed an einsum
    over no operand, which raised when called)."""
    from numeric._generated import broken as printed
    linear = [law for law in broken.LAWS if broken.remainder(law).doit() == 0]
    assert {law.name for law in linear} >= {"key-sum", "classifier-sum", "output-bias-sum"}
    for law in linear:
        name = f"{law.name.replace('-', '_')}_remainder"
        assert printed.ARGUMENTS[name] == () and getattr(printed, name)() == 0


# --- along trajectories --------------------------------------------------------------------

def _every_step(config, lr, steps, **kw):
    s = build(config)
    traj = gradient_descent(s.params, s.data, s.spec, lr, steps, record_every=1,
                            frozen_rows=s.frozen_rows, **kw)
    return traj


def _split(traj, law):
    """Per step j: ``(∇Q·Δθ_j, R_j)`` from the printed formulas, ``Δθ_j = θ_{j+1} − θ_j``."""
    ad = adapters(traj)[0][law]
    first, rest = [], []
    for j in range(len(traj) - 1):
        p, p1 = traj.snapshot(j), traj.snapshot(j + 1)
        d = {n: p1[n] - p[n] for n in p}
        first.append(ad.first_order(p, d))
        rest.append(ad.remainder(p, d))
    return np.array(first), np.array(rest)


def _corrected(traj, law, scale_r=1.0, with_first=False):
    q, sens = measured_quantity(law, traj)
    first, rest = _split(traj, law)
    correction = scale_r * rest + (first if with_first else 0.0)
    cum = np.concatenate([np.zeros_like(correction[:1]), np.cumsum(correction, axis=0)])
    return q - cum, q, sens


def _drift(x):
    d = x - x[:1]
    return np.abs(d.reshape(len(d), -1)).max()


LAWS = [(SEN, "SEN"), (BALANCE, "query-key"), (BALANCE, "classifier-embedding"),
        (MLP, "hidden-embedding"), (MLP, "relu-unit")]


@pytest.mark.parametrize("config, law", LAWS, ids=[law for _, law in LAWS])
def test_corrected_law_is_constant_to_rounding(config, law):
    traj = _every_step(config, 0.05, 60)
    corrected, q, sens = _corrected(traj, law)
    raw = _drift(q)
    assert raw > 1e-6                                   # the raw law drifts visibly
    assert _drift(corrected) <= 1e-12 * sens.max()      # Q_k − Σ R_j: rounding only
    # negative controls: a factor 2 in R, or R left out, is caught
    assert _drift(_corrected(traj, law, 2.0)[0]) > 1e3 * 1e-12 * sens.max()
    assert _drift(_corrected(traj, law, 0.0)[0]) > 1e3 * 1e-12 * sens.max()


@pytest.mark.parametrize("config, law", [(SEN, "SEN"), (BALANCE, "classifier-embedding")],
                         ids=["SEN", "classifier-embedding"])
def test_raw_drift_is_first_order_in_lr_and_corrected_vanishes(config, law):
    drifts, corrected = [], []
    for lr, steps in ((0.04, 25), (0.02, 50), (0.01, 100)):
        c, q, sens = _corrected(_every_step(config, lr, steps), law)
        drifts.append(_drift(q))
        corrected.append(_drift(c) / sens.max())
    ratios = np.array(drifts[:-1]) / np.array(drifts[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.1)   # O(lr) at fixed flow time τ = 1
    assert max(corrected) < 1e-12


def test_sen_remainder_exponential_part_matters():
    """Negative control: R with only ½‖Δv‖² (the exponential part dropped) misses the drift."""
    traj = _every_step(SEN, 0.05, 60)
    ad = adapters(traj)[0]["SEN"]
    q, sens = measured_quantity("SEN", traj)
    half_v = []
    for j in range(len(traj) - 1):
        p, p1 = traj.snapshot(j), traj.snapshot(j + 1)
        dv = (p1["embeddings"] - p["embeddings"])[ad.topics]
        half_v.append(0.5 * (dv ** 2).sum(axis=1))
    cum = np.concatenate([[np.zeros(len(ad.topics))], np.cumsum(half_v, axis=0)])
    assert _drift(q - cum) > 1e3 * 1e-12 * sens.max()


def test_weight_decay_along_the_flow_is_exponential():
    """Quadratic law, L2 weight decay λ: Q(τ) = Q(0)e^{−2λτ} (to the integrator's accuracy)."""
    s = build(BALANCE)
    lam = 0.3
    traj = integrate_flow(s.params, s.data, s.spec, 2.0, weight_decay=lam,
                          t_eval=np.linspace(0, 2, 5), rtol=1e-12, atol=1e-14)
    for law in ("query-key", "classifier-embedding"):
        q, _ = measured_quantity(law, traj)
        expected = q[0] * np.exp(-2 * lam * traj.time)[:, None, None, None]
        np.testing.assert_allclose(q, expected, rtol=1e-8, atol=1e-10 * np.abs(q).max())
        assert np.abs(q[-1] - q[0]).max() > 0.1 * np.abs(q[0]).max()   # it did decay


def test_weight_decay_gradient_descent_recursion():
    """GD with L2 decay: Q_{k+1} = (1 − ηλ)² Q_k + η² Q(∇L_k) exactly; the split's parts
    (assumptions 0, decay −2ηλQ_k, R) reproduce it to rounding."""
    lr, lam = 0.05, 0.4
    traj = _every_step(BALANCE, lr, 40, weight_decay=lam)
    law = "classifier-embedding"
    q, sens = measured_quantity(law, traj)
    first, rest = _split(traj, law)
    pred = q[:-1] + first + rest
    assert np.abs(pred - q[1:]).max() <= 1e-12 * sens.max()
    # the first-order part is the decay alone: −2ηλQ_k(1 − ...) ⇒ first = −2ηλ Q_k
    np.testing.assert_allclose(first, -2 * lr * lam * q[:-1], rtol=1e-9,
                               atol=1e-12 * sens.max())


def test_momentum_recursion_for_quadratic_laws():
    """Heavy ball β on a quadratic law: Q_{k+1} = Q_k + 2βP_k + K_k, P_{k+1} = βP_k + K_k,
    K_k = Q(Δθ_k) = R_k (printed), P_0 = 0 — exactly, to rounding; without the 2βP term the
    prediction fails (negative control)."""
    beta = 0.8
    traj = _every_step(BALANCE, 0.02, 50, momentum=beta)
    for law in ("query-key", "classifier-embedding"):
        q, sens = measured_quantity(law, traj)
        _, k = _split(traj, law)
        pk = np.zeros_like(q[0])
        pred, no_momentum = [q[0]], [q[0]]
        for j in range(len(k)):
            pred.append(pred[-1] + 2 * beta * pk + k[j])
            no_momentum.append(no_momentum[-1] + k[j])
            pk = beta * pk + k[j]
        assert np.abs(np.array(pred) - q).max() <= 1e-11 * sens.max()
        assert np.abs(np.array(no_momentum) - q).max() > 1e-6 * sens.max()


def test_sen_first_order_is_the_where_sen_breaks_rate():
    """When non-topic embeddings move (A2 fails, their scores equal and fixed), the printed
    first-order part of a step −η∇L is η × the 'where SEN breaks' deviation rate."""
    from numeric.laws import sen_deviation_rate

    s = build(SEN)
    rows = s.frozen_rows["keys"]
    params = dict(s.params)
    params["embeddings"] = params["embeddings"].copy()
    params["embeddings"][rows] = 0.2 * np.random.default_rng(0).standard_normal(
        (len(rows), SEN.d))
    traj = gradient_descent(params, s.data, s.spec, 1e-3, 1, frozen_rows={"keys": rows})
    ad = adapters(traj)[0]["SEN"]
    p = traj.snapshot(0)
    import numeric
    g = numeric.gradient(p, s.data, s.spec, wrt=s.spec.trained)
    d = {n: -1e-3 * g[n] if n in g else np.zeros_like(p[n]) for n in p}
    d["keys"][rows] = 0.0
    rate = sen_deviation_rate(p, s.data, s.spec, {"keys": rows})
    np.testing.assert_allclose(ad.first_order(p, d), 1e-3 * rate, rtol=1e-9,
                               atol=1e-15)
    assert np.abs(rate).max() > 1e-3


def test_adapters_report_why_sen_is_skipped():
    s = build(BALANCE)
    traj = Trajectory(s.data, s.spec, [0.0], {n: x[None] for n, x in s.params.items()})
    ads, skipped = adapters(traj)
    assert "SEN" not in ads and "query is trained" in skipped["SEN"]


# --- the audit -----------------------------------------------------------------------------

def test_discrete_step_theorem_holds_and_catches_a_wrong_remainder(monkeypatch):
    from proofs import theorems_broken
    from proofs.kernel import check_theorem

    assert check_theorem(theorems_broken.discrete_step()).ok
    closed = broken._closed_remainder
    monkeypatch.setattr(broken, "_closed_remainder", lambda law, f: 2 * closed(law, f))
    outcome = check_theorem(theorems_broken.discrete_step())
    assert not outcome.ok
    assert any("sen-step" in f for f in outcome.failures)


# --- property: any configuration, any optimizer -------------------------------------------

from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.strategies import configs  # noqa: E402

optimizers = st.fixed_dictionaries({
    "weight_decay": st.sampled_from([0.0, 0.0, 0.3]),
    "momentum": st.sampled_from([0.0, 0.0, 0.7]),
    "decoupled": st.booleans()})


@given(config=configs(max_sentences=12, max_m=6, max_dim=3), opt=optimizers)
def test_every_law_is_explained_along_any_gradient_descent_run(config, opt):
    """Whatever holds or fails (A1–A3, frozen parts, ragged sentences, ReLU kinks), the
    derived parts — assumptions, weight decay, momentum, discretisation — add up to each
    law's measured drift to rounding along a replayed run, and the replay is consistent."""
    from numeric.replay import Optimizer, explain

    if not opt["weight_decay"]:
        opt["decoupled"] = False
    s = build(config)
    try:
        traj = gradient_descent(s.params, s.data, s.spec, 0.05, 30, record_every=10,
                                frozen_rows=s.frozen_rows, **opt)
    except FloatingPointError:
        assume(False)
    traj = Trajectory(traj.data, traj.spec, traj.time, traj.params,
                      frozen_rows=s.frozen_rows)
    replay, atts, _ = explain(traj, Optimizer(0.05, **opt))
    assert replay.consistent, replay.to_dict()
    assert atts
    for a in atts:
        assert a.explained, a.to_dict()

"""Weight decay and heavy-ball momentum in the integrators: each step against its formula."""

import numpy as np
import pytest

import numeric
from numeric.campaign import Config, build
from numeric.integrate import gradient_descent, integrate_flow, rk4

SMALL = Config(seed=2, n_classes=3, m=3, n_sentences=8, d=2, d_key=2,
               trainable=("keys", "embeddings", "classifier"))


@pytest.fixture(scope="module")
def setup():
    return build(SMALL)


def _grad(s, p):
    return numeric.gradient(p, s.data, s.spec, wrt=s.spec.trained)


def _manual(s, lr, steps, lam=0.0, beta=0.0, decoupled=False):
    """Reference loop written from the definitions (PyTorch SGD convention)."""
    p = {n: x.copy() for n, x in s.params.items()}
    buf = {}
    for _ in range(steps):
        g = _grad(s, p)
        for n in s.spec.trained:
            d = g[n] + (0.0 if decoupled else lam) * p[n]
            buf[n] = beta * buf[n] + d if n in buf else d
        p = {n: (p[n] - lr * buf[n] - (lr * lam * p[n] if decoupled else 0.0))
             if n in s.spec.trained else p[n] for n in p}
    return p


@pytest.mark.parametrize("lam, beta, decoupled", [(0.3, 0.0, False), (0.3, 0.0, True),
                                                  (0.0, 0.9, False), (0.2, 0.8, False),
                                                  (0.2, 0.8, True)])
def test_gd_with_decay_and_momentum_follows_its_definition(setup, lam, beta, decoupled):
    traj = gradient_descent(setup.params, setup.data, setup.spec, 0.05, 6, weight_decay=lam,
                            momentum=beta, decoupled=decoupled)
    ref = _manual(setup, 0.05, 6, lam, beta, decoupled)
    for n in setup.spec.param_names:
        np.testing.assert_allclose(traj.final[n], ref[n], rtol=1e-13, atol=1e-15)


def test_decoupled_differs_from_l2_only_with_momentum(setup):
    s = setup
    kw = dict(weight_decay=0.3, momentum=0.5)
    a = gradient_descent(s.params, s.data, s.spec, 0.05, 4, **kw).final
    b = gradient_descent(s.params, s.data, s.spec, 0.05, 4, decoupled=True, **kw).final
    assert not np.allclose(a["keys"], b["keys"], rtol=1e-8, atol=0)
    a = gradient_descent(s.params, s.data, s.spec, 0.05, 4, weight_decay=0.3).final
    b = gradient_descent(s.params, s.data, s.spec, 0.05, 4, weight_decay=0.3,
                         decoupled=True).final
    np.testing.assert_allclose(a["keys"], b["keys"], rtol=1e-13)


def test_flow_with_weight_decay_agrees_with_rk4(setup):
    s = setup
    a = integrate_flow(s.params, s.data, s.spec, 1.0, weight_decay=0.5, t_eval=[0.0, 1.0])
    b = rk4(s.params, s.data, s.spec, 0.01, 100, weight_decay=0.5)
    plain = rk4(s.params, s.data, s.spec, 0.01, 100)
    for n in s.spec.trained:
        np.testing.assert_allclose(a.final[n], b.final[n], rtol=1e-8, atol=1e-10)
    assert not np.allclose(plain.final["classifier"], b.final["classifier"], rtol=1e-3)


def test_frozen_rows_neither_move_nor_decay(setup):
    s = setup
    rows = {"embeddings": np.array([0, 1])}
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 5, weight_decay=0.5, momentum=0.5,
                            decoupled=True, frozen_rows=rows)
    np.testing.assert_array_equal(traj.final["embeddings"][:2], s.params["embeddings"][:2])
    np.testing.assert_array_equal(traj.final["query"], s.params["query"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight_decay=-0.1), "weight_decay"), (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(weight_decay=float("inf")), "weight_decay"), (dict(weight_decay="0.1"), "weight_decay"),
    (dict(momentum=1.0), "momentum"), (dict(momentum=-0.5), "momentum"),
    (dict(momentum=float("nan")), "momentum"), (dict(decoupled=1), "decoupled")])
def test_gd_rejects_bad_options(setup, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradient_descent(setup.params, setup.data, setup.spec, 0.1, 2, **kwargs)


def test_flow_rejects_bad_weight_decay(setup):
    with pytest.raises(ValueError, match="weight_decay"):
        integrate_flow(setup.params, setup.data, setup.spec, 1.0, weight_decay=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        rk4(setup.params, setup.data, setup.spec, 0.1, 2, weight_decay=float("nan"))

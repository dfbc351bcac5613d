"""The laws `attnflow discover` found that the project did not list, watched numerically.

Each quantity is evaluated from its declaration (``proofs.conjecture.GENERIC``, instantiated at
the data's sizes by ``proofs.conjecture.instance``) along an adaptive run of the engine; it
must hold to the integrator's accuracy, and fail when one entry of the engine's gradient has
the wrong sign.
"""

import numpy as np
import pytest
import sympy as sp

import numeric
from numeric.campaign import Config, build
from numeric.integrate import integrate_flow
from proofs.conjecture import GENERIC, Example, _components, candidate_law, instance
from symbolic.discover import coordinate_symbol

CASES = {
    "key-sum": ("linear", ("query", "keys", "embeddings", "classifier"), (), "keys"),
    "key-across-query": ("linear", ("keys", "embeddings", "classifier"), ("A1",), "keys"),
    "classifier-sum": ("linear", ("keys", "embeddings", "classifier"), (), "classifier"),
    "output-weight-sum": ("mlp", ("keys", "embeddings", "classifier"), (), "output_weight"),
    "output-bias-sum": ("mlp", ("keys", "embeddings", "classifier"), (), "output_bias"),
}
NAMES = ("embeddings", "keys", "query", "classifier", "hidden_weight", "hidden_bias",
         "output_weight", "output_bias")


def law_values(name, classifier, trainable, assume, traj, setup):
    """``Q`` per component at every snapshot, from the declaration."""
    expression = next(e for n, e, _, _ in GENERIC if n == name)
    law = candidate_law(expression, classifier, trainable, assume)
    spec, data = setup.spec, setup.data
    ex = Example(data.n_words, spec.d, spec.d_key, data.n_classes, spec.hidden, (), 0)
    out = []
    for component in _components(law, ex):
        q = instance(law, ex, component)
        symbols = sorted(q.free_symbols, key=str)
        f = sp.lambdify(symbols, q, "numpy")
        columns = []
        for sym in symbols:
            short, *at = str(sym).split("_")
            name_ = next(n for n in NAMES if coordinate_symbol(n, tuple(map(int, at))) == sym)
            columns.append(traj.params[name_][(slice(None),) + tuple(map(int, at))])
        out.append(np.broadcast_to(f(*columns), (len(traj),)))
    return np.array(out)


def relative_drift(values, traj):
    moved = max(float(np.abs(traj.params[n] - traj.params[n][:1]).max())
                for n in traj.params)
    return float(np.abs(values - values[:, :1]).max()) / moved


def run(name, monkeypatch=None):
    classifier, trainable, assume, _ = CASES[name]
    config = Config(seed=3, n_classes=3, classifier=classifier, hidden=2, a2=False,
                    key_scale=0.5, embedding_scale=0.5, trainable=trainable)
    setup = build(config)
    traj = integrate_flow(setup.params, setup.data, setup.spec, 2.0)
    return relative_drift(law_values(name, classifier, trainable, assume, traj, setup), traj)


@pytest.mark.parametrize("name", sorted(CASES))
def test_discovered_law_holds_and_a_wrong_sign_breaks_it(monkeypatch, name):
    assert run(name) < 1e-7
    engine = numeric.value_and_gradient
    target = CASES[name][3]

    def wrong(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        g = np.array(grad[target])
        g[(0,) * g.ndim] = -g[(0,) * g.ndim]
        return loss, dict(grad, **{target: g})

    monkeypatch.setattr(numeric, "value_and_gradient", wrong)
    assert run(name) > 1e-4

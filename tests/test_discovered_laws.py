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


# --- the same laws as declared, first-class laws: numeric.laws, the audit ------------------

DECLARED = {  # law → (classifier, trainable) of a run where its preconditions hold
    "key-sum": ("linear", ("query", "keys", "embeddings", "classifier")),
    "key-across-query": ("mlp", ("keys", "embeddings", "classifier")),
    "classifier-sum": ("linear", ("keys", "embeddings", "classifier")),
    "output-weight-sum": ("mlp", ("keys", "embeddings", "classifier")),
    "output-bias-sum": ("mlp", ("keys", "embeddings", "classifier")),
}


def declared_report(name, classifier, trainable, seed=3, frozen_rows=None):
    from numeric.laws import check_laws
    config = Config(seed=seed, n_classes=3, classifier=classifier, hidden=2, a2=False,
                    key_scale=0.5, embedding_scale=0.5, trainable=trainable)
    setup = build(config)
    traj = integrate_flow(setup.params, setup.data, setup.spec, 2.0,
                          **({"frozen_rows": frozen_rows} if frozen_rows else {}))
    return next(r for r in check_laws(traj, 1e-6) if r.law == name)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_declared_law_holds_in_numeric_laws_and_a_wrong_sign_violates_it(monkeypatch, name):
    classifier, trainable = DECLARED[name]
    report = declared_report(name, classifier, trainable)
    assert report.verdict == "holds" and report.drift < 1e-9, report.to_dict()
    engine = numeric.value_and_gradient
    target = {"key-sum": "keys", "key-across-query": "keys"}.get(name, CASES[name][3])

    def wrong(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        g = np.array(grad[target])
        g[(0,) * g.ndim] = -g[(0,) * g.ndim]
        return loss, dict(grad, **{target: g})

    monkeypatch.setattr(numeric, "value_and_gradient", wrong)
    report = declared_report(name, classifier, trainable)
    assert report.verdict == "violated" and report.drift > 1e-4, report.to_dict()


@pytest.mark.parametrize("name, classifier, trainable, failing", [
    ("key-across-query", "linear", ("query", "keys", "classifier"), "A1"),
    ("classifier-sum", "linear", ("keys", "embeddings"), "trains-classifier"),
    ("output-bias-sum", "mlp", ("keys", "embeddings"), "trains-output_bias"),
    ("key-sum", "linear", ("embeddings", "classifier"), "trains-keys"),
])
def test_a_broken_precondition_is_not_applicable_never_holds(name, classifier, trainable,
                                                               failing):
    report = declared_report(name, classifier, trainable)
    assert report.verdict == "not applicable"
    assert failing in {c.name for c in report.conditions if not c.holds}
    if name == "key-across-query":  # a trained query really breaks the law
        assert report.drift > 1e-3


def test_key_sum_is_not_applicable_with_frozen_key_rows():
    report = declared_report("key-sum", "linear", ("keys", "embeddings", "classifier"),
                             frozen_rows={"keys": np.array([0])})
    assert report.verdict == "not applicable" and report.drift > 1e-4


# --- the audit: their theorems, and tampering that fails them --------------------------------

def _theorem(name, **changes):
    import dataclasses

    from proofs.conservation import conservation_theorem
    from symbolic import laws as SL
    return conservation_theorem(dataclasses.replace(SL.law(name), **changes))


def _failing(theorem):
    from proofs.kernel import check_theorem
    return {o.step.name for o in check_theorem(theorem).steps if not o.ok}


def test_the_audit_holds_a_passing_theorem_for_each_discovered_law():
    from proofs.registry import all_theorems
    names = {t.name for t in all_theorems()}
    for name in DECLARED:
        assert f"conservation-{name}" in names
        assert _failing(_theorem(name)) == set(), name


@pytest.mark.parametrize("name", ["key-sum", "classifier-sum", "output-weight-sum",
                                  "output-bias-sum"])
def test_without_the_softmax_sums_the_sum_laws_are_not_proved(name):
    assert _failing(_theorem(name, normaliser="canonical")) == {"rate", "dataset"}


def test_the_one_hot_label_assumption_is_content():
    from symbolic import laws as SL
    from symbolic.model import Y

    def no_label(e, model):  # "Y = 0": a label that is not one-hot
        return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == Y, lambda x: 0)

    for broken in ({"one-hot label": lambda e, model: e},                # Σ_c Y_c kept
                   {"one-hot label": no_label}):
        assumption = SL.ONE_HOT.__class__(SL.ONE_HOT.name, SL.ONE_HOT.statement,
                                          cases=broken)
        law = SL.law("classifier-sum")
        tampered = _theorem("classifier-sum", assumptions=(law.assumptions[0], assumption))
        assert "rate" in _failing(tampered)


def test_key_across_query_needs_the_query_frozen():
    from symbolic import laws as SL
    trained_query = SL.LawAssumption("A1", "the query trains", trained=("query",))
    tampered = _theorem("key-across-query", assumptions=(trained_query, SL.trains("keys")))
    assert "rate" in _failing(tampered)


def test_a_wrong_softmax_sum_fails_the_normaliser_self_test(monkeypatch):
    from proofs import normalisers
    from symbolic.model import EMBED, G
    # "Σ_k G_k = 1" is not a property of the model: the exactness check catches it
    monkeypatch.setitem(normalisers.SOFTMAX_OUTPUTS, G, EMBED)
    assert _failing(normalisers.theorems()[0]) == {"canonical-softmax-sums"}

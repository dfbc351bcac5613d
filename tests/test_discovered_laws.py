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
from numeric.campaign import Config, WrongSign, build
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


# --- embedding-across-classifier: Attn-FC's embedding laws, for any number of classes ---------

ACROSS = "embedding-across-classifier"
FC = ("keys", "embeddings")            # Attn-FC: the linear classifier is frozen


def across_report(trainable=FC, d=4, n_classes=3, seed=3, t_end=2.0):
    """The law on an adaptive run (d = 4, 3 classes: d − (C − 1) = 2 directions per word)."""
    from numeric.laws import check_laws
    setup = build(Config(seed=seed, n_classes=n_classes, d=d, a2=False, key_scale=0.5,
                         embedding_scale=0.5, trainable=trainable))
    traj = integrate_flow(setup.params, setup.data, setup.spec, t_end)
    return next(r for r in check_laws(traj, 1e-6) if r.law == ACROSS), traj


def test_embedding_across_classifier_holds_and_a_wrong_sign_violates_it():
    report, _ = across_report()
    conditions = {c.name: c for c in report.conditions}
    assert conditions["N"].measured == 2.0            # d − rank{U_c − U_0} = 4 − 2
    assert report.verdict == "holds" and report.drift < 1e-9, report.to_dict()
    with WrongSign("embeddings", (0, 0)).applied():
        report, _ = across_report()
    assert report.verdict == "violated" and report.drift > 1e-3, report.to_dict()


def test_a_moving_classifier_is_not_applicable_with_its_measured_deviation():
    report, _ = across_report(trainable=("keys", "embeddings", "classifier"))
    assert report.verdict == "not applicable"
    assert [c.name for c in report.conditions if not c.holds] == ["FC"]
    assert report.drift > 1e-3      # a trained U really moves the embeddings across Π


def test_no_direction_across_the_classes_is_not_applicable():
    report, _ = across_report(d=2, n_classes=3)       # rank{U_c − U_0} = 2 = d
    assert report.verdict == "not applicable"
    assert [c.name for c in report.conditions if not c.holds] == ["N"]


def test_frozen_embeddings_are_not_applicable_and_a_run_that_did_not_move_is_not_checked():
    from numeric.laws import check_laws
    from numeric.trajectory import Trajectory
    report, _ = across_report(trainable=("keys",))
    assert report.verdict == "not applicable"
    assert [c.name for c in report.conditions if not c.holds] == ["trains-embeddings"]
    _, traj = across_report()
    still = Trajectory(traj.data, traj.spec, [0.0, 1.0],
                       {n: np.stack([x[0], x[0]]) for n, x in traj.params.items()})
    report = next(r for r in check_laws(still, 1e-6) if r.law == ACROSS)
    assert report.applicable and report.verdict == "not checked", report.to_dict()


def test_the_projector_meets_every_class_row_equally():
    from numeric.laws import across_projector
    u = np.random.default_rng(0).standard_normal((4, 10))      # the paper's C = 4, d = 10
    pi, rank = across_projector(u)
    assert rank == 3 and np.linalg.matrix_rank(pi) == 7        # 7 directions per word
    np.testing.assert_allclose(pi @ (u[1:] - u[:1]).T, 0, atol=1e-12)
    np.testing.assert_allclose(pi @ pi, pi, atol=1e-12)


def test_the_case_of_assumption_n_is_exact_where_n_holds():
    """Σ_k Π[l,k] U[c,k] → β_l, checked on the law's own rate at explicit sizes with a Π whose
    rows meet every row of a random rational U equally (and refused by a Π that does not)."""
    import random

    from symbolic import laws as SL
    from symbolic import model as M
    rate = SL.rate(SL.EMBEDDING_ACROSS_CLASSIFIER, SL.LINEAR).to_sympy()
    rewritten = SL.directions_meet_rows_equally(rate)
    assert not rewritten.has(SL.Pi) and rewritten.has(SL.beta)
    sizes = {M.L: 2, M.d: 3, M.C: 3, SL.n_words: 2}
    rng = random.Random(1)
    u = sp.Matrix(3, 3, lambda c, k: sp.Rational(rng.randint(-9, 9), rng.randint(1, 4)))
    (n,) = sp.Matrix([u.row(c) - u.row(0) for c in (1, 2)]).nullspace()

    def value(expr, pi_row):
        """At the sizes, word 0 and row l = 0; Π's row, U and β = Π·U_0 as given, every
        other entry (a, P, Y, ω) the same rational wherever it occurs."""
        expr = expr.xreplace(sizes).doit().xreplace({SL.w: 0, M.EMBED.index(1): 0})
        beta = (sp.Matrix([pi_row]) * u.row(0).T)[0]

        def entry(x):
            i = tuple(int(j) for j in x.indices)
            if x.base == SL.Pi:
                return pi_row[i[1]]
            if x.base == M.U:
                return u[i]
            if x.base == SL.beta:
                return beta
            draw = random.Random(str(x))
            return sp.Rational(draw.randint(1, 9), draw.randint(1, 9))
        return expr.xreplace({x: entry(x) for x in expr.atoms(sp.Indexed)})

    assert value(rate, list(n)) == value(rewritten, list(n))
    wrong = [1, 0, 0]                                # meets the rows unequally: not exact
    assert value(rate, wrong) != value(rewritten, wrong)


def test_the_audit_proves_embedding_across_classifier():
    from proofs.registry import all_theorems
    assert f"conservation-{ACROSS}" in {t.name for t in all_theorems()}
    assert _failing(_theorem(ACROSS)) == set()


def _across_with(**assumptions):
    from symbolic import laws as SL
    law = SL.law(ACROSS)
    named = {x.name: x for x in law.assumptions}
    named.update(assumptions)
    return tuple(named.values())


def test_embedding_across_classifier_fails_without_its_assumptions_or_with_a_trained_u():
    from symbolic import laws as SL
    n = SL.ACROSS
    unused = SL.LawAssumption(n.name, n.statement, cases={"Π U_c = β": lambda e, model: e},
                              values=n.values)
    not_one_hot = SL.LawAssumption(SL.ONE_HOT.name, SL.ONE_HOT.statement,
                                   cases={"one-hot label": lambda e, model: e})
    trained_u = SL.LawAssumption("FC", "U trains", trained=("classifier",))
    assert _failing(_theorem(ACROSS, assumptions=_across_with(N=unused))) == {"rate",
                                                                               "dataset"}
    assert _failing(_theorem(ACROSS, assumptions=_across_with(Y=not_one_hot))) == {
        "rate", "dataset"}
    # a trained U: Q does not read U, so only the lemma that N persists can fail — and does,
    # as does the exact check (Σ_k Π[l,k] U[c,k] moves)
    assert _failing(_theorem(ACROSS, assumptions=_across_with(FC=trained_u))) == {
        "rows-persist", "rate", "dataset", "exact"}
    # N is stated at the start: applying it without the lemma that it persists is refused
    assert "rate" in _failing(_theorem(ACROSS, lemmas=()))
    assert _failing(_theorem(ACROSS, normaliser="canonical")) == {"rate", "dataset"}

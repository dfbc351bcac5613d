"""The self-attention family's laws checked on runs of the engine (numeric/laws.py): every law
holds to the integrator's accuracy along a DOP853 run of the flow, each one fails when one
head's (or one class row's) flow has the wrong sign, and the assumptions are measured on the
run (which parameters train and move; the loss, for the translation law)."""

import numpy as np
import pytest

import numeric
import numeric.integrate
from numeric.integrate import integrate_flow
from numeric.laws import ATTENTION_LAWS, LAWS, check_laws, laws_for

#: DOP853's tolerances, and the relative accuracy of its snapshots allowed (100 × rtol).
RTOL, ATOL, ACCURACY = 1e-10, 1e-12, 1e-8
NAMES = ["head-query-key", "head-value-output", "classifier-output", "embedding-projections",
         "attention-classifier-sum"]


def data() -> numeric.Dataset:
    """Six sentences of lengths 4, 3, 2, 4, 4, 4 over seven words, three classes."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 7, (6, 4))
    tokens[0, 3:] = tokens[2, 2:] = numeric.PAD
    return numeric.Dataset(tokens, rng.integers(0, 3, 6), 7, 3)


def spec(loss="cross-entropy", **kw) -> numeric.ModelSpec:
    return numeric.ModelSpec(architecture="multi-head", d=3, d_head=2, heads=2, loss=loss,
                             **kw)


def run(model: numeric.ModelSpec, t_end: float = 1.0):
    sentences = data()
    params = numeric.init_params(model, sentences, seed=1)
    return integrate_flow(params, sentences, model, t_end, rtol=RTOL, atol=ATOL)


def reports(traj) -> dict:
    return {r.law: r for r in check_laws(traj, 0.0, ACCURACY)}


@pytest.fixture
def flipped(monkeypatch):
    """``flipped(name, index)``: the integrators' flow with ``−`` on ``flow[name][index]``
    (one head's matrix, one class row) — a deliberately broken gradient."""
    original = numeric.integrate.trained_flow

    def tamper(name, index):
        def flow(params, data, spec, frozen_rows=None, weight_decay=0.0):
            loss, velocity = original(params, data, spec, frozen_rows, weight_decay)
            changed = velocity[name].copy()
            changed[index] *= -1
            return loss, dict(velocity, **{name: changed})
        monkeypatch.setattr(numeric.integrate, "trained_flow", flow)
    return tamper


def test_the_family_has_its_own_laws_and_the_papers_runs_keep_theirs():
    assert [law.name for law in laws_for(spec())] == NAMES
    assert [law.name for law in laws_for(numeric.ModelSpec(architecture="self-attention",
                                                           d=3))] == NAMES
    assert not set(NAMES) & {law.name for law in laws_for(numeric.ModelSpec())}
    assert [law.name for law in ATTENTION_LAWS] == NAMES and not set(LAWS) & set(ATTENTION_LAWS)


@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error"])
def test_every_applicable_law_holds_along_the_flow_to_the_integrators_accuracy(loss):
    found = reports(run(spec(loss)))
    expected = NAMES if loss == "cross-entropy" else NAMES[:-1]
    assert [name for name, r in found.items() if r.verdict == "holds"] == expected
    assert all(r.drift < 1e-9 for r in found.values() if r.verdict == "holds")
    assert all(all(c.holds for c in found[name].conditions) for name in expected)


def test_under_squared_error_the_translation_law_is_not_applicable_and_drifts():
    """The negative control of the loss: the sum of the class rows moves by O(1) of its
    summands' movement, and the report says why the law does not apply."""
    law = reports(run(spec("squared-error")))["attention-classifier-sum"]
    assert law.verdict == "not applicable" and law.drift > 0.1
    assert [c.name for c in law.conditions if not c.holds] == ["Y"]
    assert "squared-error" in law.reason


@pytest.mark.parametrize("law, name, index, worst", [
    ("head-query-key", "head_key", 1, "head 1"),
    ("head-value-output", "head_output", 1, "head 1"),
    ("classifier-output", "classifier", slice(None), "matrix"),
    ("embedding-projections", "head_value", 0, "matrix"),
    ("attention-classifier-sum", "classifier", 0, None),
])
def test_a_wrong_sign_in_one_part_of_the_flow_violates_the_law(flipped, law, name, index,
                                                              worst):
    flipped(name, index)
    report = reports(run(spec()))[law]
    assert report.applicable and report.verdict == "violated" and report.drift > 1e-3
    if worst is not None:
        assert report.worst == worst


def test_a_wrong_sign_in_one_head_leaves_the_other_heads_balance_alone(flipped):
    flipped("head_key", 1)
    found = reports(run(spec()))
    assert found["head-query-key"].verdict == "violated"
    assert found["head-value-output"].verdict == "holds"       # V̇ and Ȯ are still −∇L


@pytest.mark.parametrize("frozen, laws", [
    ("head_key", {"head-query-key", "embedding-projections"}),
    ("classifier", {"classifier-output", "attention-classifier-sum"}),
])
def test_a_frozen_factor_makes_its_laws_not_applicable_naming_it(frozen, laws):
    trained = tuple(n for n in spec().param_names if n != frozen)
    found = reports(run(spec(trainable=trained)))
    assert {name for name, r in found.items() if r.verdict == "not applicable"} == laws
    for name in laws:
        assert [c.name for c in found[name].conditions if not c.holds] == [f"trains-{frozen}"]

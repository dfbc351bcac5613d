"""The self-attention family's laws (symbolic/laws_attention.py), declared once and proved by
the generic conservation theorem: the declarations, the theorems' steps, and what breaks them
— a wrong law, the translation law under squared error, a trainable set too small, a flipped
flow, a changed node of the model."""

import contextlib
import dataclasses

import pytest
import sympy as sp

import symbolic.derive
from proofs import conservation, exact
from proofs.kernel import check_theorem
from symbolic import laws as SL
from symbolic import laws_attention as LA
from symbolic.models.attention import multi_head
from tests.test_exact import why

NAMES = ["head-query-key", "head-value-output", "classifier-output", "embedding-projections",
         "attention-classifier-sum"]


def failing_steps(theorem) -> set[str]:
    return {o.step.name for o in check_theorem(theorem).steps if not o.ok}


def only(theorem, *names):
    return dataclasses.replace(theorem, steps=tuple(s for s in theorem.steps if s.name in names))


# --- declarations ----------------------------------------------------------------------------

def test_each_law_is_declared_once_beside_its_model_with_the_losses_it_holds_for():
    assert [x.name for x in LA.LAWS] == NAMES
    every = [x.name for x in SL.every_law()]
    assert len(set(every)) == len(every) and every[-len(NAMES):] == NAMES
    assert not set(NAMES) & {x.name for x in SL.LAWS}        # the paper's table is unchanged
    for law in LA.LAWS:
        assert SL.law(law.name) is law and law.family == "multi-head"
    for law in LA.LAWS[:-1]:                 # any loss of the logits: proved on the abstract
        assert law.models == (LA.ABSTRACT,) and law.losses == ("cross-entropy", "squared-error")
        assert SL.covered_models(law) == (multi_head("cross-entropy"),
                                          multi_head("squared-error"))
    assert LA.CLASSIFIER_SUM.models == (LA.CROSS_ENTROPY,)
    assert LA.CLASSIFIER_SUM.losses == ("cross-entropy",)
    assert SL.ONE_HOT in LA.CLASSIFIER_SUM.assumptions


def test_a_law_claims_only_losses_and_nodes_of_what_it_is_proved_on():
    with pytest.raises(ValueError, match="claims the loss 'squared-error'"):
        dataclasses.replace(LA.CLASSIFIER_SUM, losses=("cross-entropy", "squared-error"))
    with pytest.raises(ValueError, match="names no loss"):
        dataclasses.replace(LA.HEAD_QUERY_KEY, losses=())
    with pytest.raises(ValueError, match="several families"):
        dataclasses.replace(LA.HEAD_QUERY_KEY, models=(LA.ABSTRACT, SL.ABSTRACT))
    with pytest.raises(ValueError, match="not nodes"):
        dataclasses.replace(LA.HEAD_QUERY_KEY, expand=("h",))
    with pytest.raises(ValueError, match="name classifiers, not losses"):
        dataclasses.replace(SL.QUERY_KEY, losses=("cross-entropy",))


def test_every_law_is_proved_by_the_generic_theorem_with_an_exact_check():
    theorems = {t.name: t for t in conservation.theorems()}
    for law in LA.LAWS:
        steps = {s.name: s.kind for s in theorems[f"conservation-{law.name}"].steps}
        any_loss = {"any-loss": "symbolic"} if law.models == (LA.ABSTRACT,) else {}
        assert steps == {"gradient": "instance", **any_loss, "rate": "symbolic",
                         "dataset": "symbolic", "exact": "exact"}, law.name


def test_the_statement_says_which_model_loss_and_trained_set_it_speaks_of():
    text = exact.statement(LA.CLASSIFIER_SUM)
    assert "the multi-head model with cross-entropy and one-hot labels" in text
    assert "Y (every label is one-hot)" in text
    text = exact.statement(LA.HEAD_QUERY_KEY, trained=("head_query", "head_key"))
    assert "any loss of z (G = ∂ℓ/∂z arbitrary per sentence)" in text
    assert "trained head_query, head_key; frozen embeddings, head_value" in text


# --- what breaks the proof -------------------------------------------------------------------

#: Q_h Q_hᵀ + K_h K_hᵀ: not conserved.
QUERY_PLUS_KEY = dataclasses.replace(LA.HEAD_QUERY_KEY, name="head-query-plus-key",
                                     b=-LA.HEAD_QUERY_KEY.b)


def test_a_wrong_sign_per_head_balance_fails_at_the_rate():
    theorem = conservation.conservation_theorem(QUERY_PLUS_KEY)
    assert failing_steps(only(theorem, "gradient", "rate")) == {"rate"}


def test_a_wrong_sign_per_head_balance_fails_its_exact_check_with_a_certified_rate():
    detail = why(QUERY_PLUS_KEY)
    assert "component h=0, x=0, y_=0" in detail and "certified ≠ 0" in detail


def test_the_translation_law_under_squared_error_fails_at_the_rate_and_the_exact_check():
    squared = multi_head("squared-error")
    law = dataclasses.replace(LA.CLASSIFIER_SUM, name="sum-under-squared-error",
                              models=(squared,), losses=("squared-error",),
                              assumptions=(SL.trains("classifier"),))
    assert failing_steps(conservation.conservation_theorem(law)) == {"rate", "dataset",
                                                                      "exact"}
    assert "multi-head, squared error" in why(law)


def test_a_law_holding_for_one_trainable_set_fails_with_another():
    """UᵀU − Σ_h O_hᵀO_h needs U to train with O: with U frozen it moves."""
    assert "certified ≠ 0" in why(LA.CLASSIFIER_OUTPUT, trained=("head_output",))
    theorem = conservation.conservation_theorem(LA.CLASSIFIER_OUTPUT)
    frozen_u = dataclasses.replace(theorem, assumptions=tuple(
        dataclasses.replace(a, content=SL.trains("head_output")) if a.name == "T" else a
        for a in theorem.assumptions))
    assert "rate" in failing_steps(only(frozen_u, "gradient", "rate"))


def test_an_assumption_about_the_papers_model_is_refused_by_the_exact_check():
    law = dataclasses.replace(LA.HEAD_QUERY_KEY, assumptions=LA.HEAD_QUERY_KEY.assumptions
                              + (SL.A3,))
    assert "A3 speak of the paper's model" in why(law)


def test_a_flipped_flow_fails_the_gradient_step(monkeypatch):
    original = symbolic.derive.flow
    monkeypatch.setattr(symbolic.derive, "flow",
                        lambda model, trainable: {n: -e for n, e in
                                                  original(model, trainable).items()})
    theorem = conservation.conservation_theorem(LA.CLASSIFIER_OUTPUT)
    assert failing_steps(only(theorem, "gradient")) == {"gradient"}


@contextlib.contextmanager
def changed_node(model, name, change):
    """``model`` (a shared, cached description) with node ``name`` replaced by
    ``change(node)`` (derivation caches cleared before and after)."""
    saved = model.nodes
    symbolic.derive._derive.cache_clear()
    try:
        object.__setattr__(model, "nodes", tuple(
            change(nd) if nd.name == name else nd for nd in model.nodes))
        yield
    finally:
        object.__setattr__(model, "nodes", saved)
        symbolic.derive._derive.cache_clear()


def test_a_changed_score_node_fails_the_per_head_balance_at_the_gradient():
    with changed_node(LA.ABSTRACT, "s",
                      lambda nd: dataclasses.replace(nd, definition=2 * nd.definition)):
        theorem = conservation.conservation_theorem(LA.HEAD_QUERY_KEY)
        assert failing_steps(only(theorem, "gradient")) == {"gradient"}


def test_a_loss_whose_backward_pass_differs_below_the_logits_fails_the_any_loss_step():
    """The pooling of the cross-entropy model alone made a sum instead of a mean: its
    gradients are no longer the abstract ones with G = ∂ℓ/∂z."""
    with changed_node(multi_head("cross-entropy"), "ybar", lambda nd: dataclasses.replace(
            nd, definition=nd.definition * sp.Symbol("L", integer=True, positive=True))):
        theorem = conservation.conservation_theorem(LA.CLASSIFIER_OUTPUT)
        assert failing_steps(only(theorem, "any-loss")) == {"any-loss"}


def test_a_case_function_is_applied_only_with_the_folds_its_battery_tested():
    """The one-hot case is tested with the paper's folds and with the cross-entropy
    multi-head model's; applied to the squared-error model's rate it is refused, naming it."""
    law = dataclasses.replace(LA.CLASSIFIER_SUM, name="sum-under-squared-error",
                              models=(multi_head("squared-error"),), losses=("squared-error",))
    theorem = conservation.conservation_theorem(law)
    rate = next(o for o in check_theorem(only(theorem, "gradient", "rate")).steps
                if o.step.name == "rate")
    assert not rate.ok and "not one theorem cases-exact tests" in rate.detail

"""The exact check (proofs/exact.py): the declared laws pass it on the model written out at
small sizes; wrong, vacuous and mis-stated laws fail it; it decides exactly; it stands under
every PROVED of conjecture and discover."""

import dataclasses

import pytest
import sympy as sp

from proofs import exact
from symbolic import laws as SL
from symbolic.model import C, U


def passes(law, **kw) -> bool:
    return exact.judge(exact.check_law(law, **kw))[0]


def why(law, **kw) -> str:
    ok, detail = exact.judge(exact.check_law(law, **kw))
    assert not ok
    return detail


# --- the declared laws, and their negative controls ------------------------------------------

@pytest.mark.parametrize("name", ["query-key", "key-sum", "key-across-query", "classifier-sum",
                                  "classifier-embedding", "embedding-across-classifier", "sen"])
def test_a_declared_law_passes_its_exact_check(name):
    assert passes(SL.law(name))


def test_a_wrong_sign_balance_fails_with_a_certified_nonzero_rate():
    detail = why(dataclasses.replace(SL.QUERY_KEY, b=-SL.QUERY_KEY.b))
    assert "certified ≠ 0" in detail and "component r=0, t=0" in detail


def test_sen_with_m_plus_1_fails_though_its_rate_is_tiny():
    """The rate is 3.6e-4 at the point: decided exactly, not by a tolerance."""
    assert "certified ≠ 0" in why(dataclasses.replace(SL.SEN, b=SL.SEN.b.subs(SL.m, SL.m + 1)))


def test_the_false_law_sum_of_squared_classifier_columns_fails():
    law = SL.declare("squares", "Σ_c U_ck²", sp.Sum(U[SL._ec, SL._k] ** 2, (SL._ec, 0, C - 1)),
                     0, models=(SL.LINEAR,), assumptions=(SL.trains("classifier"), SL.ONE_HOT))
    assert "certified ≠ 0" in why(law)


def test_every_parameter_not_named_frozen_trains():
    """key-across-query stated without A1 claims it holds whether the query trains or not:
    the query trains in the check, and the law fails."""
    without_a1 = dataclasses.replace(SL.KEY_ACROSS_QUERY, assumptions=(SL.trains("keys"),))
    assert "certified ≠ 0" in why(without_a1)
    assert passes(without_a1, trained=("keys",))


def test_an_assumption_stated_at_the_start_must_persist():
    """N holds at the start; with U trained, Π U_c moves, so the law is not proved (though
    dQ/dτ = 0 at the point)."""
    trained_u = dataclasses.replace(SL.EMBEDDING_ACROSS_CLASSIFIER,
                                    assumptions=SL.EMBEDDING_ACROSS_CLASSIFIER.assumptions[1:])
    assert "moves along the flow" in why(trained_u)


def test_a_law_over_parameters_that_do_not_move_is_no_theorem():
    assert "no parameter entry Q reads moves" in why(SL.KEY_SUM, trained=("embeddings",))
    assert "Q reads no parameter" in why(dataclasses.replace(SL.KEY_SUM, a=sp.S.Zero,
                                                             components=()))


def test_the_two_layer_relu_unit_law_needs_its_bias_to_train():
    assert passes(SL.RELU_UNIT, trained=("hidden_weight", "hidden_bias", "output_weight"))
    assert "certified ≠ 0" in why(SL.RELU_UNIT, trained=("hidden_weight", "output_weight"))


def test_what_the_check_cannot_make_concrete_fails_naming_it():
    custom = SL.LawAssumption("Z9", "something", cases={"any": lambda e, model: e})
    assert "Z9" in why(dataclasses.replace(SL.KEY_SUM, assumptions=(SL.trains("keys"), custom)))
    assert "reads c" in why(dataclasses.replace(SL.SEN, assumptions=(SL.A1, SL.A3)))
    assert "A2" in why(dataclasses.replace(SL.SEN, assumptions=(SL.A1, SL.A2)))
    undefined = dataclasses.replace(SL.KEY_SUM, a=SL.KEY_SUM.a / 0)
    assert not passes(undefined)


def test_the_statement_names_what_trains_what_is_frozen_and_the_assumptions():
    text = exact.statement(SL.SEN)
    assert "trained embeddings, keys; frozen query" in text
    assert "A3 (" in text and "A2 (" in text and "T (" not in text
    discover = exact.statement(SL.RELU_UNIT, trained=("hidden_weight", "output_weight"))
    assert "frozen embeddings, keys, query, hidden_bias, output_bias" in discover


# --- deciding exactly ---------------------------------------------------------------------------

def test_rational_exponentials_are_powers_of_one_transcendental():
    x = sp.Symbol("x")
    field = exact._Field({x: sp.Rational(1, 2)}, 4, 0)
    assert field(sp.exp(x) * sp.exp(x / 2)) == field.E ** 3
    assert field(sp.exp(2 * x) - sp.exp(x) ** 2) == 0
    assert field(sp.exp(x) - 1) != 0


def test_a_finer_exponent_starts_over_with_a_finer_e():
    x = sp.Symbol("x")
    field = exact._Field({x: sp.Rational(1, 3)}, 4, 0)
    with pytest.raises(exact._Restart) as need:
        field(sp.exp(x))
    assert need.value.denominator == 3


def test_a_relu_at_its_kink_is_not_decided():
    x = sp.Symbol("x")
    with pytest.raises(exact._Kink):
        exact._Field({x: sp.S.Zero}, 4, 0)(sp.Max(x, 0))
    assert exact._Field({x: sp.Rational(-1, 2)}, 4, 0)(sp.Heaviside(x)) == 0


# --- under every PROVED -------------------------------------------------------------------------

ALL = ("embeddings", "keys", "query", "classifier")


def test_a_conjecture_proved_by_a_tampered_reduction_is_not_proved(monkeypatch):
    """With the reduction's sums-to-one made to erase everything, a false candidate reduced to
    0; the exact check withholds PROVED."""
    from proofs import conjecture
    from symbolic.indexform import IExpr
    monkeypatch.setattr(conjecture, "sums_to_one", lambda expr, used=None: IExpr(()))
    verdict = conjecture.prove("Sum(U[e,k]**2,(e,0,C-1))", trainable=ALL, search=False,
                               kernel=False)
    assert verdict.status == "NOT PROVED" and not verdict.exact.ok
    assert verdict.steps[-1][0].startswith("exact check on the explicit model [failed]")


def test_a_conjecture_needing_a_frozen_query_is_proved_only_with_the_query_frozen():
    """Without --trainable query the statement holds the query frozen, and the exact check
    runs that flow; training the query makes the rate certified nonzero."""
    from proofs.conjecture import prove, prove_along
    verdict = prove("q[r]*K[w,t] - q[t]*K[w,r]", search=False, kernel=False)
    assert verdict.proved and verdict.exact.statement.endswith("frozen query.")
    moving = prove_along("q[r]*K[w,t] - q[t]*K[w,r]", "linear", ("keys", "query"))
    assert moving.status == "NOT PROVED"
    assert prove("q[r]*K[w,t] - q[t]*K[w,r]", assume=("A1",), search=False,
                 kernel=False).proved


def test_discover_does_not_list_a_law_a_tampered_reduction_proved(monkeypatch):
    """relu-unit with b1 frozen is not conserved; a reduction that reduces everything to 0
    proved it, and the exact check along the trained arrays refuses it."""
    from types import SimpleNamespace

    from proofs import conjecture
    from symbolic.discover import Setting
    monkeypatch.setattr(conjecture, "reduction", lambda *args: ([], [], set()))
    setting = Setting("mlp", trainable=("embeddings", "hidden_weight", "output_weight"))
    why_ = conjecture.explain(setting, SimpleNamespace(laws=[], symbols=[]))
    assert {n for n, _, _ in why_.proved} == {"hidden-embedding", "output-weight-sum"}


@pytest.mark.parametrize("quantity", [sp.S.Zero, sp.S.One, SL.n_words, sp.nan, sp.oo, sp.zoo,
                                      SL.V[SL.w, SL._k] - SL.V[SL.w, SL._k],
                                      sp.Function("g")(SL.n_words)],
                         ids=["0", "1", "W", "nan", "oo", "zoo", "V-V", "g(W)"])
def test_a_constant_or_undefined_quantity_is_never_exactly_conserved(quantity):
    law = SL.Law("vacuous", "vacuous", quantity, sp.S.Zero, (), "scalar", (SL.LINEAR,),
                 ("linear",), (SL.trains("embeddings", "keys", "classifier"),))
    detail = why(law)
    assert "Q reads no parameter" in detail or "undefined" in detail

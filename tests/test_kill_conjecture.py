"""The conjecture syntax and the case functions its proofs rest on: behaviours no other test
pinned down, each failing under a realistic one-line bug (``tests/mutation.py``)."""

from __future__ import annotations

import pytest

from symbolic import grammar as G
from symbolic import model as M


@pytest.mark.parametrize("text, found", [("V[w,k] * 1_000", "'1_' at column 10"),
                                         ("V[w,k] // 2", "'//' at column 8"),
                                         ("2 // V[w,k]", "'//' at column 3")])
def test_a_refusal_names_what_was_found_and_its_column(text, found):
    with pytest.raises(G.GrammarError) as err:
        G.read(text, M.Model("linear"))
    assert str(err.value).startswith(found + ":")


def test_every_case_function_of_the_declared_assumptions_is_exact_on_its_battery():
    """The audit's ``cases-exact`` theorem: each case's hypothesis, function and battery
    belong together (a hypothesis or battery given in the wrong place fails a step)."""
    from proofs import theorems_cases
    from proofs.kernel import check_theorem

    (theorem,) = theorems_cases.theorems()
    outcome = check_theorem(theorem)
    assert outcome.ok and len(outcome.steps) == len(theorems_cases.CASES)


def test_sen_is_proved_by_the_reduction_alone_with_its_lemma_attention():
    """The reduction's lemma attention has L = m + 1 tokens: SEN with coefficient 1/m is
    proved without the kernel, and with 1/(m + 1) it is not."""
    from proofs.conjecture import prove_along

    trained, assume = ("embeddings", "keys", "classifier"), ("A1", "A2", "A3")
    sen = "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w]-c)/{})/QQ"
    right = prove_along(sen.format("m"), "linear", trained, assume)
    assert right.proved and right.method == "conjecture reduction"
    assert not prove_along(sen.format("(m+1)"), "linear", trained, assume).proved


def test_discover_s_explanation_proves_what_trains_and_skips_the_across_law_when_u_trains():
    from types import SimpleNamespace

    from proofs import conjecture
    from symbolic.discover import Setting

    only_u = conjecture.explain(Setting("linear", trainable=("classifier",)),
                                SimpleNamespace(laws=[], symbols=[]))
    assert [name for name, _, _ in only_u.proved] == ["classifier-sum"]
    assert conjecture._across_classifier(Setting("linear", trainable=("embeddings",
                                                                      "classifier")), None) is None


@pytest.mark.parametrize("name", ["relu-unit", "embedding-across-classifier"])
def test_the_conservation_theorem_of_a_law_with_a_lemma_holds_step_by_step(name):
    """The lemma steps (relu, rows-persist) are checked and feed the rate."""
    from proofs.conservation import conservation_theorem
    from proofs.kernel import PASSED, check_theorem
    from symbolic import laws as SL

    outcome = check_theorem(conservation_theorem(SL.law(name)))
    assert outcome.ok and all(s.status == PASSED for s in outcome.steps)
    assert {"relu", "rows-persist"} & {s.step.name for s in outcome.steps}


def test_a_sum_counts_the_terms_of_what_it_sums():
    with pytest.raises(G.GrammarError, match="81 terms; at most 64"):
        G.read("Sum((V[w,k] + 1)^8 * (V[w,k] + 2)^8, (k,0,d-1))", M.Model("linear"))

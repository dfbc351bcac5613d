"""Conjectures (proofs/conjecture.py, attnflow conjecture): proved, refuted, bad usage."""

import pytest

from attnflow.cli import main
from proofs.conjecture import DRIFT, Example, drift_rate, prove

ALL = ("embeddings", "keys", "query", "classifier")


def test_balance_of_query_and_keys_is_proved_by_the_audit_kernel(tmp_path):
    import json
    verdict = prove("q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))", trainable=ALL, search=False)
    assert verdict.status == "PROVED" and verdict.exit_code == 0
    assert verdict.method == "audit kernel"
    from proofs.conjecture import write_certificate
    cert = json.loads(write_certificate(verdict, tmp_path / "c.json").read_text())
    assert cert["ok"] and cert["theorems"][0]["steps"]


@pytest.mark.parametrize("expression", ["Sum(K[w,r],(w,0,W-1))", "Sum(U[e,k],(e,0,C-1))"])
def test_shift_invariance_laws_are_proved(expression):
    """New laws found by discover: the key sum and the classifier's column sums (they need
    Σ_i a_i = 1 and Σ_c (P_c − Y_c) = 0, which the audit's named normalisers do not know)."""
    verdict = prove(expression, trainable=ALL, search=False)
    assert verdict.proved and verdict.method == "conjecture reduction"


def test_wrong_sign_balance_is_refuted_with_a_shrunk_counterexample():
    verdict = prove("q[r]*q[t] + Sum(K[w,r]*K[w,t],(w,0,W-1))", trainable=ALL,
                    max_examples=20)
    assert verdict.status == "REFUTED" and verdict.exit_code == 1
    ex = verdict.counterexample["example"]
    assert (ex.d, ex.d_key, len(ex.sentences)) == (1, 1, 1)
    # the printed command reruns it exactly
    again = Example.parse(ex.command(verdict.expression, "linear", ALL, ())
                          .split("--at ")[1])
    assert again == ex
    assert drift_rate(verdict.law, "linear", verdict.trainable, again) > DRIFT


def test_true_law_has_no_drift_at_the_same_example():
    """Negative control of the counterexample check: the right sign does not drift there."""
    verdict = prove("q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))", trainable=ALL, search=False)
    ex = Example(2, 1, 1, 2, 1, (((0, 1), 0),), 0)
    assert drift_rate(verdict.law, "linear", verdict.trainable, ex) < DRIFT


SEN = "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/m)/QQ"


def test_sen_is_proved_under_a1_a2_a3():
    verdict = prove(SEN, trainable=("embeddings", "keys", "classifier"),
                    assume=("A1", "A2", "A3"), search=False)
    assert verdict.proved and verdict.method == "audit kernel"
    assert [x.name for x in verdict.law.assumptions] == ["T", "A1", "A2", "A3"]


def test_sen_needs_its_assumptions_and_its_coefficient():
    """Negative controls: no assumptions, or e^{s−c}/(2m) instead of e^{s−c}/m."""
    assert not prove(SEN, trainable=("embeddings", "keys"), search=False).proved
    wrong = SEN.replace("/m", "/(2*m)")
    verdict = prove(wrong, trainable=("embeddings", "keys"), assume=("A1", "A2", "A3"))
    assert verdict.status == "NOT PROVED" and verdict.exit_code == 3


def test_cli_exit_codes(capsys):
    assert main(["conjecture", "q[r] + foo"]) == 2
    assert "unknown symbol foo" in capsys.readouterr().out
    assert main(["conjecture", "Sum(V[w,k],(w,0,W-1))", "--at",
                 "words=2,d=1,d_key=1,classes=2,hidden=1,seed=0,data=0.1:0"]) == 1
    assert main(["conjecture", "q[r]", "--assume", "A9"]) == 2

"""Conjectures (proofs/conjecture.py, proofs/counterexample.py, attnflow conjecture): proved,
refuted by a trajectory that drifts beyond the integrator's accuracy, bad usage."""

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from attnflow.cli import main
from numeric.campaign import Config, integrate_case
from numeric.integrate import StalledIntegration
from numeric.strategies import SMALLEST
from proofs import counterexample as X
from proofs.conjecture import declared, prove
from tests.conftest import thorough

ALL = ("embeddings", "keys", "query", "classifier")
ROOT = Path(__file__).resolve().parents[1]
SEN = "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/m)/QQ"
#: SEN with a wrong coefficient: e^{s−c}/(m+1) instead of e^{s−c}/m.
WRONG_SEN = SEN.replace("/m)", "/(m+1))")
SEN_SETTING = dict(trainable=("embeddings", "keys", "classifier"), assume=("A1", "A2", "A3"))
BALANCE = "q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))"
WRONG_BALANCE = BALANCE.replace(" - ", " + ")
#: Examples for the searches (the profile's: dev 10, ci 25).
EXAMPLES = settings.default.max_examples
#: Examples for the searches that must find nothing: each integrates a trajectory, and the
#: thorough profile runs the profile's number.
NOTHING_TO_FIND = EXAMPLES if thorough() else 8


def test_balance_of_query_and_keys_is_proved_by_the_audit_kernel(tmp_path, monkeypatch):
    import json

    import symbolic.generate
    # what the certificate says about the generated code is checked where a real one is
    # written (tests/test_docs.py runs the conjecture how-to's --certificate)
    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: [])
    monkeypatch.setattr(symbolic.generate, "derivation_hash", lambda: "ab" * 32)
    verdict = prove(BALANCE, trainable=ALL, search=False)
    assert verdict.status == "PROVED" and verdict.exit_code == 0
    assert verdict.method == "audit kernel"
    from proofs.conjecture import write_certificate
    cert = json.loads(write_certificate(verdict, tmp_path / "c.json").read_text())
    assert cert["ok"] and cert["theorems"][0]["steps"]


@pytest.mark.parametrize("expression, labels", [("Sum(K[w,r],(w,0,W-1))", False),
                                                ("Sum(U[e,k],(e,0,C-1))", True)])
def test_shift_invariance_laws_are_proved_by_the_kernel_with_the_label_assumption_they_use(
        expression, labels):
    """New laws found by discover: the key sum and the classifier's column sums need
    Σ_i a_i = 1 and Σ_c (P_c − Y_c) = 0. They were proved by the reduction alone (no
    certificate, and "assumptions used: T" although the column sums need one-hot labels):
    now the kernel re-checks them with the softmax sums, and the one-hot label assumption
    is listed exactly when the reduction used it."""
    from proofs.conjecture import no_certificate
    verdict = prove(expression, trainable=ALL, search=False)
    assert verdict.proved and verdict.method == "audit kernel" and not no_certificate(verdict)
    names = [x.name for x in verdict.law.assumptions]
    assert ("Y" in names) == labels
    # what the certificate lists: the kernel's theorem (written as in the test below)
    listed = [a.name for a in verdict.kernel.theorem.assumptions]
    assert verdict.kernel.ok and ("Y" in listed) == labels


# --- refuted by a trajectory ----------------------------------------------------------------

def _at_minimum(config: Config, **above) -> bool:
    return all(getattr(config, n) == above.get(n, low) for n, low in SMALLEST.items())


def test_wrong_sign_balance_is_refuted_by_a_drifting_trajectory():
    verdict = prove(WRONG_BALANCE, trainable=ALL, kernel=False, max_examples=EXAMPLES)
    assert verdict.status == "REFUTED" and verdict.exit_code == 1
    found = verdict.counterexample.found
    report = found.report
    assert report.applicable and report.verdict == "violated"
    # beyond the allowance δ·movement + δ·σ (relative: δ + floor), δ from the accepted steps
    assert report.drift > report.allowed
    assert report.tolerance == report.accuracy == found.accuracy == 10 * found.steps * 1e-10
    assert _at_minimum(found.config) and verdict.counterexample.shrunk
    # negative control on the same trajectory: the right sign stays within the allowance
    right, _ = declared(BALANCE, "linear", ALL)
    control = X.rerun(right, "linear", (), found.config)
    assert control.report.verdict == "holds" and not control.drifts


def test_search_shrinks_a_drift_that_needs_two_key_coordinates():
    """``q_r κ_{w,t} − q_t κ_{w,r}`` is conserved only with the query fixed; with the query
    trained it drifts, but only where ``d_key ≥ 2`` (at d_key = 1 it is identically 0). The
    search's first example (every size at its minimum) does not drift, so the counterexample
    is found elsewhere and shrunk: back to the minimum in every size but d_key = 2."""
    expression = "q[r]*K[w,t] - q[t]*K[w,r]"
    law, _ = declared(expression, "linear", ALL)
    search = X.search(law, "linear", ALL, max_examples=40)
    assert search.found is not None and search.shrunk and search.trajectories > 1
    assert _at_minimum(search.config, d_key=2), search.config
    smaller = dataclasses.replace(search.config, d_key=1)
    assert not X.rerun(law, "linear", (), smaller).drifts


def test_printed_command_reruns_the_same_figures_byte_for_byte(capsys):
    """The rerun command carries the candidate as read (canonical text, shell-quoted), never
    the text as typed."""
    typed = WRONG_BALANCE.replace(" + ", "  +  ")
    assert main(["conjecture", typed, "--trainable", ",".join(ALL),
                 "--max-examples", str(EXAMPLES)]) == 1
    out = capsys.readouterr().out
    command = next(x for x in out.splitlines() if "rerun: " in x).split("rerun: ")[1]
    figures = [x.strip() for x in out.splitlines() if x.startswith("  trajectory:")
               or x.startswith("  worst component")]
    assert len(figures) == 2
    args = shlex.split(command)
    assert args[0] == "attnflow" and "--trajectory" in args
    canonical = "q[r]*q[t] + Sum(K[w,r]*K[w,t], (w, 0, W - 1))"
    assert typed not in out and args[2] == canonical
    assert shlex.quote(canonical) in command
    # a fresh process, as a reader would run it
    done = subprocess.run([sys.executable, "-m", "attnflow", *args[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    again = [x for x in done.stdout.splitlines() if x.startswith("trajectory:")
             or x.startswith("worst component")]
    assert again == figures
    assert "REFUTED" in done.stdout


# --- c and m: instantiated from the configuration ------------------------------------------

@pytest.mark.slow  # every suite runs this through the CLI: the conjecture how-to (test_docs.py)
def test_sen_is_proved_under_a1_a2_a3():
    verdict = prove(SEN, **SEN_SETTING, search=False)
    assert verdict.proved and verdict.method == "audit kernel"
    assert [x.name for x in verdict.law.assumptions] == ["T", "A1", "A2", "A3"]


def test_wrong_sen_coefficient_is_refuted_on_a_trajectory_where_a1_a2_a3_hold():
    verdict = prove(WRONG_SEN, **SEN_SETTING, kernel=False, max_examples=EXAMPLES)
    assert verdict.status == "REFUTED"
    found = verdict.counterexample.found
    assert {c.name for c in found.report.conditions} == {"A1", "A2-embeddings", "A2-scores",
                                                        "A3"}
    assert all(c.holds for c in found.report.conditions)
    assert found.config.a2 and not found.config.ragged and _at_minimum(found.config)
    n_topic = found.config.n_classes * found.config.topics_per_class
    assert int(found.report.worst.split("=")[1]) < n_topic  # a topic word


def test_m_alone_is_searched_under_a3_on_configurations_where_everything_moves():
    """Under A3 alone: equal sentence lengths, non-topic words trained (no A2), m measured."""
    verdict = prove("Sum(V[w,k]**2,(k,0,d-1)) - m*s[w]", trainable=("embeddings", "keys"),
                    assume=("A3",), kernel=False, max_examples=EXAMPLES)
    found = verdict.counterexample.found
    assert [c.name for c in found.report.conditions] == ["A3"]
    assert found.report.conditions[0].holds and not found.config.ragged
    assert not found.config.a2 and _at_minimum(found.config)


def test_candidate_evaluator_is_the_declared_sen_evaluator():
    """The candidate printed at run time gives the declared SEN's Q and sensitivity (the same
    printer, c and m measured the same way), on topic words only."""
    from numeric import laws as NL
    law, _ = declared(SEN, "linear", ("embeddings", "keys"), SEN_SETTING["assume"])
    config = Config(seed=4, n_classes=3, topics_per_class=2, n_nontopic=4, m=3, d=2, d_key=3,
                    key_scale=0.1)
    traj = integrate_case(config)
    judge = X.numeric_law(law, "linear", SEN_SETTING["assume"])
    a, b, sens, labels = judge.terms(traj)
    a0, b0, sens0, labels0 = NL.sen_terms(traj)
    np.testing.assert_allclose(a - b, a0 - b0, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(sens, sens0, rtol=1e-12)
    assert [x.split("=")[1] for x in labels] == [x.split()[-1] for x in labels0]


def test_right_laws_are_never_refuted_by_the_search():
    """Run the search itself (not the proof) on true laws: nothing drifts beyond the
    accuracy. The same search refutes the wrong variants above."""
    for expression, trainable, assume in [(SEN, SEN_SETTING["trainable"],
                                           SEN_SETTING["assume"]), (BALANCE, ALL, ())]:
        law, _ = declared(expression, "linear", trainable, assume)
        search = X.search(law, "linear", trainable, assume, max_examples=NOTHING_TO_FIND)
        assert search.found is None, search.config.to_text()
        assert search.trajectories - search.stalled >= min(NOTHING_TO_FIND,
                                                           X.MAX_TRAJECTORIES) // 2


def test_c_and_m_need_the_assumptions_that_define_them(capsys):
    assert main(["conjecture", SEN]) == 2
    assert "uses c" in capsys.readouterr().err
    assert main(["conjecture", "s[w] + m", "--assume", "A1"]) == 2
    err = capsys.readouterr().err
    assert "uses m" in err and "A3" in err and "Traceback" not in err


# --- usage ------------------------------------------------------------------------------------

def test_cli_exit_codes(capsys):
    assert main(["conjecture", "q[r] + foo"]) == 2
    assert "unknown symbol foo" in capsys.readouterr().err
    assert main(["conjecture", "q[r]", "--assume", "A9"]) == 2
    assert main(["conjecture", "q[r]", "--trainable", "hidden_weight"]) == 2
    assert "unknown trainable" in capsys.readouterr().err
    case = "seed=0,n_sentences=2,classifier=mlp,trainable=keys+embeddings+classifier"
    assert main(["conjecture", "Sum(K[w,r],(w,0,W-1))", "--trajectory", case]) == 2
    assert "classifier=mlp" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["conjecture", "q[r]", "--trajectory", "seed=x"])
    assert exc.value.code == 2


def test_rerun_of_a_trajectory_within_the_accuracy_decides_nothing(capsys):
    """A true law on one trajectory: no drift, exit 3 (one trajectory proves nothing)."""
    case = "seed=1,n_sentences=2,trainable=query+keys+embeddings+classifier,a2=no"
    assert main(["conjecture", BALANCE, "--trainable", ",".join(ALL),
                 "--trajectory", case]) == 3
    assert "decides nothing" in capsys.readouterr().out


def test_sizes_read_by_the_candidate_are_taken_from_the_run():
    """``W·q_r``: the vocabulary size is a constant of the run, read off its data (a size
    that only bounds a sum is not passed at all)."""
    law, _ = declared("W*q[r] - Sum(K[w,r],(w,0,W-1))", "linear", ALL)
    traj = integrate_case(Config(seed=2, n_nontopic=3, a2=False, trainable=ALL))
    a, b, _, labels = X.numeric_law(law, "linear", ()).terms(traj)
    np.testing.assert_array_equal(a, traj.data.n_words * traj.params["query"])
    np.testing.assert_allclose(b, traj.params["keys"].sum(axis=1), rtol=1e-15)
    assert labels == ["r=0", "r=1"]


def test_candidate_the_printer_cannot_evaluate_is_not_proved_with_the_reason(capsys):
    """``L`` (tokens per sentence) has no single value on a run: no search, exit 3, never
    REFUTED without a trajectory."""
    assert main(["conjecture", "L*q[r]", "--trainable", "query,keys"]) == 3
    out = capsys.readouterr().out
    assert "NOT PROVED" in out and "cannot evaluate" in out and "REFUTED" not in out


@pytest.mark.parametrize("expression, assume", [
    ("V[w,k] - V[w_x,k]", "A3"),
    ("K[w,r] - K[w_x,r]", "A1,A3"),
    ("Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w_x] + exp(s[w_x]-c)/m)/QQ", "A1,A2,A3"),
])
def test_a2_a3_with_a_second_word_index_is_bad_usage(expression, assume, capsys, tmp_path):
    """A2/A3 describe one topic word: with a second free word index their cases took both
    words at the topic token (``w_x = w``) and printed PROVED with a certificate, although
    ``V_w − V_{w_x}`` moves on a data set where A3 holds (audit B, finding 1)."""
    cert = tmp_path / "c.json"
    assert main(["conjecture", expression, "--assume", assume, "--certificate",
                 str(cert)]) == 2
    err = capsys.readouterr().err
    assert "extra word index w_x" in err and "Traceback" not in err
    assert not cert.exists()


def test_a_rerun_whose_preconditions_fail_is_not_judged(capsys):
    """The wrong SEN coefficient on a case with A2 broken: Q drifts, but A2 fails, so the
    trajectory judges nothing (exit 3). It once printed "no drift … with every assumed
    precondition holding"."""
    case = ("seed=0,m=1,n_nontopic=1,n_sentences=2,d=1,d_key=1,hidden=1,"
            "trainable=keys+embeddings+classifier,a2=no,horizon=100.0")
    assert main(["conjecture", WRONG_SEN, "--trainable", "embeddings,keys,classifier",
                 "--assume", "A1,A2,A3", "--trajectory", case]) == 3
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict.startswith("verdict on this trajectory: not judged (not applicable)")
    assert "A2-scores fails" in verdict and "every assumed precondition holding" not in verdict


def test_a_rerun_whose_solver_stalls_checked_nothing(monkeypatch):
    def stalled(config):
        raise StalledIntegration("stalled")
    monkeypatch.setattr("numeric.campaign.integrate_case", stalled)
    from proofs.conjecture import candidate_law
    law = candidate_law(BALANCE, "linear", ALL)
    d = X.rerun(law, "linear", (), Config(seed=1, n_sentences=2))
    assert not d.judged and d.verdict() == "nothing checked: the adaptive solver stalled"


def test_a_search_that_judged_no_trajectory_says_nothing_was_compared(monkeypatch, capsys):
    """Every trajectory stalls: the search once said "no trajectory drifted beyond the
    integrator's accuracy"."""
    def stalled(config):
        raise StalledIntegration("stalled")
    monkeypatch.setattr("numeric.campaign.integrate_case", stalled)
    assert main(["conjecture", WRONG_SEN, "--trainable", "embeddings,keys,classifier",
                 "--assume", "A1,A2,A3", "--max-examples", "3"]) == 3
    out = capsys.readouterr().out
    assert "no trajectory could judge the candidate" in out and "0 judged" in out
    assert "no trajectory drifted" not in out


# --- what a proof says it proved -----------------------------------------------------------

KEY_ACROSS = "q[r]*K[w,t] - q[t]*K[w,r]"


def test_a_proof_that_needs_the_query_frozen_says_so_in_its_certificate(capsys, tmp_path,
                                                                       monkeypatch):
    """With the default --trainable the query does not train, and the proof takes its
    velocity 0; the certificate said the law holds "anything else trained or not", which is
    false when the query trains (the same candidate is refuted then)."""
    import json

    from proofs import audit
    from proofs.conjecture import candidate_law
    # the statement is what is checked here; derive --check has its own tests
    monkeypatch.setattr(audit, "check_sync",
                        lambda: audit.SyncStatus(False, False, (), "not run in this test"))
    cert = tmp_path / "c.json"
    assert main(["conjecture", KEY_ACROSS, "--certificate", str(cert)]) == 0
    out = capsys.readouterr().out
    assert "T: a flow that trains keys and holds query frozen (the parameters Q reads)" in out
    theorem = json.loads(cert.read_text())["theorems"][0]
    training = next(a for a in theorem["assumptions"] if a["name"] == "T")
    assert "holds query frozen" in training["statement"]
    assert theorem["statement"].endswith("frozen query.")  # built from the checked content
    assert "anything else trained or not" not in cert.read_text()
    law = candidate_law(KEY_ACROSS, "linear", ("embeddings", "keys", "classifier"))
    assert law.assumption("T").frozen == ("query",)  # the content the kernel's flow reads


def test_a_proof_without_the_certificate_asked_for_exits_non_zero_saying_why(
        capsys, tmp_path, monkeypatch):
    """A law proved by the conjecture reduction only (the kernel did not re-check it) has no
    certificate: --certificate once skipped it silently with exit 0."""
    monkeypatch.setattr("proofs.conjecture.kernel_proof", lambda *args: None)
    cert = tmp_path / "c.json"
    assert main(["conjecture", "Sum(K[w,r],(w,0,W-1))", "--certificate", str(cert)]) == 3
    out, err = capsys.readouterr()
    assert "PROVED, by the conjecture reduction" in out
    assert "no certificate" in err and "did not re-check" in err and len(err.splitlines()) == 1
    assert not cert.exists()


VACUOUS = ["0", "1", "W", "nan", "oo", "zoo", "1/0", "V[w,k]*0*oo", "V[w,k] - V[w,k]", "g(W)",
           "V[w,k]*0", "Sum(V[w,k],(k,0,d-1)) - Sum(V[w,l],(l,0,d-1))",
           "QQ - Sum(q[r]**2,(r,0,d_key-1))", "(V[w,k] + 1)**2 - V[w,k]**2 - 2*V[w,k]"]


@pytest.mark.parametrize("expression", VACUOUS)
def test_constant_undefined_or_non_finite_candidates_are_never_proved(expression, capsys,
                                                                      tmp_path):
    """Each was "PROVED, by the audit kernel", exit 0."""
    cert = tmp_path / "c.json"
    assert main(["conjecture", expression, "--trainable", ",".join(ALL),
                 "--certificate", str(cert)]) == 2
    out, err = capsys.readouterr()
    assert "PROVED" not in out and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not cert.exists()
    with pytest.raises(ValueError):
        prove(expression, trainable=ALL, search=False)


def test_a_candidate_that_reads_only_frozen_parameters_is_trivial_not_proved(capsys):
    from proofs.conjecture import prove_along
    verdict = prove("q[r]", search=False)  # the query is not trained by default
    assert verdict.status == "TRIVIAL" and not verdict.proved and verdict.exit_code == 3
    assert "query" in verdict.trivial and verdict.kernel is None
    assert prove_along("Sum(K[w,r],(w,0,W-1))", "linear", ("embeddings",)).status == "TRIVIAL"
    assert main(["conjecture", "q[r]"]) == 3
    out = capsys.readouterr().out
    assert "verdict: TRIVIAL" in out and "PROVED" not in out
    # negative control: with the query trained, the same candidate is a real question
    assert not prove("q[r]", trainable=ALL, search=False, kernel=False).trivial


@pytest.mark.parametrize("expression", ["Sum(K[w,r],(w,0,W-1))**3",
                                        "q[r]/Sum(K[w,r]**2,(w,0,W-1))",
                                        "(q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1)))**8"])
def test_a_candidate_outside_the_index_form_is_told_how_to_write_it(expression, capsys):
    """A sum to a power above 2 or in a denominator answered "unfolded normaliser …: name it
    before canonicalising"."""
    assert main(["conjecture", expression, "--trainable", "query,keys"]) == 2
    err = capsys.readouterr().err
    assert "outside the index form" in err and "product of sums over distinct indices" in err
    assert len(err.splitlines()) == 1

"""The auditor: registered theorems hold, tampered ones fail naming the broken step, and the
certificate, reports and command say what was checked."""

import argparse
import dataclasses
import json

import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import symbolic.generate
from attnflow.commands import audit as audit_command
from proofs import audit, registry
from proofs.kernel import Normalised, Theorem, check_theorem
from proofs.theorems_softmax import _p, _s

# --- tampering: each variant must make the audit fail and name the step ---------------------

def replace_step(theorem: Theorem, name: str, **changes) -> Theorem:
    steps = tuple(dataclasses.replace(s, **changes) if s.name == name else s
                  for s in theorem.steps)
    assert steps != theorem.steps, f"no step {name} in {theorem.name}"
    return dataclasses.replace(theorem, steps=steps)


def tamper_claim(theorem: Theorem, name: str, change) -> Theorem:
    """Apply ``change`` to the right-hand side of what step ``name`` claims."""
    original = next(s for s in theorem.steps if s.name == name).check

    def on_relation(rel):
        return rel.func(rel.lhs, change(rel.rhs), evaluate=False)

    def tampered(scope):
        claim = original(scope)
        if isinstance(claim, Normalised):
            return dataclasses.replace(claim, claim=on_relation(claim.claim))
        if isinstance(claim, dict):
            return {label: on_relation(c) for label, c in claim.items()}
        return on_relation(claim)
    return replace_step(theorem, name, check=tampered)


def drop_assumption(theorem: Theorem, name: str) -> Theorem:
    kept = tuple(a for a in theorem.assumptions if a.name != name)
    assert kept != theorem.assumptions
    return dataclasses.replace(theorem, assumptions=kept)


def cite_later_step(theorem: Theorem, name: str, later: str) -> Theorem:
    step = next(s for s in theorem.steps if s.name == name)
    return replace_step(theorem, name, uses=step.uses + (later,))


def assert_audit_fails_at(theorem: Theorem, step: str):
    """The kernel's check of ``theorem`` fails, naming ``step``. The audit adds only hashes of
    the sources (seconds each, the same for every tampered theorem; tested below) and reports
    the same failures, so the kernel's outcome is what is examined."""
    outcome = check_theorem(theorem)
    assert not outcome.ok
    assert any(f"step {step} " in f for f in outcome.failures), outcome.failures
    return outcome


@pytest.fixture
def hash_stubbed(monkeypatch):
    """The derivation hash as a constant, for tests of what the audit reports about its
    theorems: printing every generated file to hash it costs seconds per audit (the hash
    itself is tested below and in the certificate test)."""
    monkeypatch.setattr(symbolic.generate, "derivation_hash", lambda: "ab" * 32)


def registered(name: str) -> Theorem:
    return next(t for t in registry.all_theorems() if t.name == name)


SOFTMAX = "softmax-jacobian"
SOFTMAX_THEOREM = registered(SOFTMAX)
exp_p = sp.exp(_s[_p])


@pytest.mark.slow  # every suite runs `attnflow audit` from the tutorial (tests/test_docs.py)
def test_every_registered_theorem_holds():
    report = audit.run_audit(sync=False)
    assert report.ok, report.failures
    assert {row["theorem"] for row in report.rows} >= {SOFTMAX}


@pytest.mark.parametrize("name", ["sen-identity", "balance-query-keys",
                                  "balance-classifier-embeddings", "balance-hidden-embeddings",
                                  "balance-relu-unit", "conservation-key-sum",
                                  "conservation-key-across-query",
                                  "conservation-classifier-sum",
                                  "conservation-output-weight-sum",
                                  "conservation-output-bias-sum",
                                  "conservation-embedding-across-classifier"])
def test_sen_identity_and_balance_laws_are_symbolic_but_for_the_explicit_gradient_and_exact(name):
    kinds = {s.name: s.kind for s in registered(name).steps}
    assert kinds.pop("gradient") == "instance" and kinds.pop("exact") == "exact"
    assert set(kinds.values()) == {"symbolic"}


def test_softmax_jacobian_with_a_flipped_sign_fails_at_that_step():
    flipped = tamper_claim(registered(SOFTMAX), "J", lambda rhs: rhs.xreplace({exp_p: -exp_p}))
    assert_audit_fails_at(flipped, "J")


def test_softmax_jacobian_with_a_wrong_coefficient_fails_at_that_step():
    assert_audit_fails_at(tamper_claim(registered(SOFTMAX), "dZ", lambda rhs: 2 * rhs), "dZ")


@given(st.fractions().filter(lambda c: c != 1))
def test_softmax_jacobian_rejects_any_other_coefficient_of_a_p(c):
    first_two = dataclasses.replace(SOFTMAX_THEOREM, steps=SOFTMAX_THEOREM.steps[:2])
    scaled = tamper_claim(first_two, "J",
                          lambda rhs: rhs.xreplace({exp_p: sp.Rational(c) * exp_p}))
    failures = check_theorem(scaled).failures
    assert len(failures) == 1 and "step J " in failures[0]


def test_softmax_jacobian_with_a_wrong_instance_fails_at_that_step():
    wrong = tamper_claim(registered(SOFTMAX), "J-explicit", lambda rhs: rhs.T * 2)
    assert_audit_fails_at(wrong, "J-explicit")


def test_softmax_jacobian_without_the_range_assumption_fails_where_it_is_used():
    report = assert_audit_fails_at(drop_assumption(registered(SOFTMAX), "R"), "dZ")
    assert any("step rows " in f for f in report.failures)


def test_softmax_jacobian_citing_a_later_step_fails_at_that_step():
    assert_audit_fails_at(cite_later_step(registered(SOFTMAX), "J", "rows"), "J")


def test_a_normalised_step_with_a_wrong_total_fails():
    assert_audit_fails_at(tamper_claim(registered(SOFTMAX), "norm", lambda rhs: rhs + 1), "norm")


# --- the SEN identity and its curve ---------------------------------------------------------

def theorem_sen_identity():
    return registered("sen-identity")


def theorem_sen_curve():
    return registered("sen-curve")


# (tamperings of the declared laws' theorems, sen-identity included: tests/test_conservation.py)


def test_sen_curve_with_a_flipped_sign_fails_at_that_step():
    from proofs.derivations import m, s_t
    flipped = tamper_claim(theorem_sen_curve(), "level-set",
                           lambda rhs: rhs + 4 * (s_t + (sp.exp(s_t) - 1) / m))
    assert_audit_fails_at(flipped, "level-set")


def test_sen_curve_with_1_over_m_plus_1_fails_at_that_step():
    from proofs.derivations import m
    assert_audit_fails_at(tamper_claim(theorem_sen_curve(), "curve",
                                       lambda rhs: rhs.subs(m, m + 1)), "curve")


def test_sen_curve_without_its_starting_point_fails_where_it_is_used():
    assert_audit_fails_at(drop_assumption(theorem_sen_curve(), "I0"), "initial")


def test_sen_curve_citing_a_later_step_fails_at_that_step():
    assert_audit_fails_at(cite_later_step(theorem_sen_curve(), "initial", "curve"), "initial")


# --- where SEN breaks -----------------------------------------------------------------------

def test_breaks_embeddings_with_a_flipped_sign_fails_at_that_step():
    assert_audit_fails_at(tamper_claim(registered("sen-breaks-embeddings"), "deviation",
                                       lambda rhs: -rhs), "deviation")


def test_breaks_embeddings_with_1_over_m_plus_1_fails_at_that_step():
    from proofs.derivations import m
    th = registered("sen-breaks-embeddings")
    original = next(s for s in th.steps if s.name == "deviation").check

    def wrong_mean(scope):
        claim = original(scope)
        rel = claim.claim
        return dataclasses.replace(claim, claim=sp.Eq(rel.lhs, rel.rhs * m / (m + 1),
                                                      evaluate=False))
    assert_audit_fails_at(replace_step(th, "deviation", check=wrong_mean), "deviation")


def test_breaks_embeddings_without_the_score_assumption_fails_where_it_is_used():
    report = assert_audit_fails_at(drop_assumption(registered("sen-breaks-embeddings"), "A2s"),
                                   "flow-k")
    assert any("step attention " in f for f in report.failures)


def test_breaks_embeddings_citing_a_later_step_fails_at_that_step():
    assert_audit_fails_at(cite_later_step(registered("sen-breaks-embeddings"), "flow-k",
                                          "example"), "flow-k")


def test_breaks_query_with_a_flipped_sign_fails_at_that_step():
    from proofs.theorems_breaks import kappa_t
    def flip_key_term(rhs):
        return rhs.replace(lambda x: isinstance(x, sp.Indexed) and x.base == kappa_t,
                           lambda x: -x)
    flipped = tamper_claim(registered("sen-breaks-query"), "q-gradient", flip_key_term)
    assert_audit_fails_at(flipped, "q-gradient")


def test_breaks_query_with_1_over_m_plus_1_fails_at_that_step():
    from proofs.derivations import m
    assert_audit_fails_at(tamper_claim(registered("sen-breaks-query"), "q-gradient",
                                       lambda rhs: rhs.subs(m, m + 1)), "q-gradient")


def test_breaks_query_without_the_trained_query_fails_where_it_is_used():
    assert_audit_fails_at(drop_assumption(registered("sen-breaks-query"), "TQ"), "same-flows")


def test_breaks_query_imports_the_sen_identity_rather_than_restating_it():
    from proofs.theorems_sen import SEN_IDENTITY
    th = registered("sen-breaks-query")
    assert SEN_IDENTITY in th.assumption("SENR").statement
    broken = th.assumption("SENR").content()
    broken = tamper_claim(broken, "attention", lambda rhs: 2 * rhs)
    tampered = dataclasses.replace(th, assumptions=tuple(
        dataclasses.replace(a, content=lambda: broken) if a.name == "SENR" else a
        for a in th.assumptions))
    report = assert_audit_fails_at(tampered, "sen-identity")
    assert any("step deviation " in f for f in report.failures)


def test_breaks_query_citing_a_later_step_fails_at_that_step():
    assert_audit_fails_at(cite_later_step(registered("sen-breaks-query"), "deviation",
                                          "per-sentence"), "deviation")


# --- convergence with a fixed linear classifier -------------------------------------------

CONVERGENCE = "convergence-fixed-classifier"


def test_convergence_with_a_flipped_sign_in_the_system_fails_at_that_step():
    def flip_score_flow(rhs):
        return sp.Matrix([rhs[0], -rhs[1]])
    assert_audit_fails_at(tamper_claim(registered(CONVERGENCE), "system", flip_score_flow),
                          "system")


def test_convergence_with_a_wrong_attention_floor_fails_at_that_step():
    from proofs.derivations import m
    assert_audit_fails_at(tamper_claim(registered(CONVERGENCE), "attention-floor",
                                       lambda rhs: rhs.subs(m, m - sp.Rational(1, 2))),
                          "attention-floor")


def test_convergence_with_a_wrong_metric_coefficient_fails_at_the_gradient_form():
    from proofs.derivations import QQ
    assert_audit_fails_at(tamper_claim(registered(CONVERGENCE), "gradient-system",
                                       lambda rhs: rhs.subs(QQ, 2 * QQ)), "gradient-system")


def test_convergence_without_the_label_assumption_fails_where_it_is_used():
    report = assert_audit_fails_at(drop_assumption(registered(CONVERGENCE), "Y"), "system")
    assert any("step minus-log " in f for f in report.failures)


def test_convergence_citing_a_later_step_fails_at_that_step():
    assert_audit_fails_at(cite_later_step(registered(CONVERGENCE), "descent", "trajectories"),
                          "descent")


def test_convergence_numeric_step_fails_when_the_system_is_tampered():
    th = registered(CONVERGENCE)
    original = next(s for s in th.steps if s.name == "system").check

    def ascent(scope):      # the same system with the embedding flow reversed: not a descent
        claim = original(scope)
        lhs, rhs = claim.claim.lhs, claim.claim.rhs
        return dataclasses.replace(claim, claim=sp.Eq(sp.Matrix([-lhs[0], lhs[1]]),
                                                      sp.Matrix([-rhs[0], rhs[1]]),
                                                      evaluate=False))
    tampered = replace_step(th, "system", check=ascent)
    only = dataclasses.replace(tampered, steps=tuple(
        s for s in tampered.steps if s.name in ("attention", "system", "trajectories")))
    only = replace_step(only, "system", uses=("GF", "A1", "U", "A2", "Y"))
    failures = [f for f in check_theorem(only).failures if ", step " in f]
    assert len(failures) == 1 and "step trajectories " in failures[0], failures


# --- derive --check and the derivation hash -------------------------------------------------

@pytest.mark.usefixtures("hash_stubbed")
def test_audit_fails_when_the_derivation_cannot_be_checked(monkeypatch):
    monkeypatch.delattr(symbolic.generate, "check_generated")
    report = audit.run_audit([registered(SOFTMAX)])
    assert not report.ok and "check_generated() is not available" in report.failures[0]


@pytest.mark.usefixtures("hash_stubbed")
def test_audit_fails_naming_generated_files_that_differ(monkeypatch):
    diff = "--- engine.py (checked in)\n+++ engine.py (derived now)\n"
    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: [diff])
    report = audit.run_audit([registered(SOFTMAX)])
    assert not report.ok and "engine.py" in report.failures[0]


@pytest.mark.usefixtures("hash_stubbed")
def test_audit_passes_when_the_generated_code_is_in_sync(monkeypatch):
    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: [])
    assert audit.run_audit([registered(SOFTMAX)]).ok


def test_hash_of_generated_files_changes_with_any_byte(monkeypatch, tmp_path):
    monkeypatch.delattr(symbolic.generate, "derivation_hash")
    monkeypatch.setattr(audit, "generated_dir", lambda: tmp_path)
    (tmp_path / "engine.py").write_text("x = 1\n")
    before = audit.derivation_hash()
    (tmp_path / "engine.py").write_text("x = 2\n")
    after = audit.derivation_hash()
    assert before["sha256"] != after["sha256"] and "1 file(s)" in after["source"]


def test_hash_is_taken_from_the_derivation_when_it_provides_one(monkeypatch):
    monkeypatch.setattr(symbolic.generate, "derivation_hash", lambda: "ab" * 32)
    assert audit.derivation_hash()["sha256"] == "ab" * 32
    monkeypatch.setattr(symbolic.generate, "derivation_hash", lambda: "not a hash")
    with pytest.raises(ValueError, match="not a SHA-256"):
        audit.derivation_hash()


# --- renderings and the command -------------------------------------------------------------

def test_certificate_records_every_step_with_kind_outcome_and_versions():
    report = audit.run_audit([registered(SOFTMAX)], sync=False)
    cert = json.loads(json.dumps(audit.certificate(report)))
    assert cert["versions"]["sympy"] == sp.__version__ and cert["ok"] is True
    [th] = cert["theorems"]
    assert th["statement"] and [a["name"] for a in th["assumptions"]] == ["D", "R"]
    assert {s["kind"] for s in th["steps"]} == {"symbolic", "instance"}
    assert all(s["outcome"] == "passed" and s["seconds"] >= 0 for s in th["steps"])
    assert len(cert["derivation_hash"]["sha256"]) == 64


@pytest.mark.usefixtures("hash_stubbed")
def test_markdown_report_renders_statement_steps_and_mathematics():
    report = audit.run_audit([registered(SOFTMAX)], sync=False)
    md = audit.markdown_report(report)
    assert "## Theorem 1 (softmax-jacobian)" in md and "*Statement.*" in md
    assert r"\delta_{i p}" in md and "$$" in md and "∎" in md


@pytest.mark.usefixtures("hash_stubbed")
def test_markdown_report_says_which_step_broke():
    broken = tamper_claim(registered(SOFTMAX), "dZ", lambda rhs: 2 * rhs)
    md = audit.markdown_report(audit.run_audit([broken], sync=False))
    assert "**Not proved**: dZ" in md and "## Failures" in md


def run_command(argv):
    parser = argparse.ArgumentParser()
    audit_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.usefixtures("hash_stubbed")
def test_command_writes_certificate_and_report_and_exits_zero(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: [])
    softmax = registered(SOFTMAX)
    monkeypatch.setattr(registry, "all_theorems", lambda: (softmax,))
    status = run_command(["audit", "--json", str(tmp_path / "c.json"),
                          "--markdown", str(tmp_path / "r.md")])
    out = capsys.readouterr().out
    assert status == 0 and "AUDIT PASSED" in out and "Statement:" in out
    assert json.loads((tmp_path / "c.json").read_text())["ok"] is True
    assert (tmp_path / "r.md").read_text().startswith("# Audit")


@pytest.mark.usefixtures("hash_stubbed")
def test_command_exits_non_zero_when_a_step_fails(monkeypatch, capsys):
    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: [])
    broken = tamper_claim(registered(SOFTMAX), "J", lambda rhs: -rhs)
    monkeypatch.setattr(registry, "all_theorems", lambda: (broken,))
    assert run_command(["audit"]) == 1
    assert "step J (symbolic): failed" in capsys.readouterr().out


def test_command_refuses_a_missing_output_directory(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:   # refused while parsing, before the audit
        run_command(["audit", "--json", str(tmp_path / "nowhere" / "c.json")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err

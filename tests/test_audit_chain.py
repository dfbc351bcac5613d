"""The audit's chain from proof to running code, and what it trusts: each tampering the
review listed (issue 8) is applied to a copy and must make the audit fail, naming the broken
step or assumption."""

import dataclasses
import json
import re
import types

import pytest
import sympy as sp

import symbolic.generate
import symbolic.printer
from proofs import audit, registry
from proofs.kernel import FAILED, check_theorem
from symbolic.model import Model

# --- helpers ----------------------------------------------------------------------------------


def registered(name: str):
    return next(t for t in registry.all_theorems() if t.name == name)


def replace_step(theorem, name: str, **changes):
    steps = tuple(dataclasses.replace(s, **changes) if s.name == name else s
                  for s in theorem.steps)
    assert steps != theorem.steps
    return dataclasses.replace(theorem, steps=steps)


def replace_assumption(theorem, name: str, **changes):
    kept = tuple(dataclasses.replace(a, **changes) if a.name == name else a
                 for a in theorem.assumptions)
    assert kept != theorem.assumptions
    return dataclasses.replace(theorem, assumptions=kept)


def only_steps(theorem, names):
    return dataclasses.replace(theorem, steps=tuple(s for s in theorem.steps if s.name in names))


def failures_naming(theorem) -> list[str]:
    return check_theorem(theorem).failures


def step_failed(failures, step: str) -> bool:
    return any(f", step {step} (" in f for f in failures)


# --- the forward pass is in the chain (review #1) -----------------------------------------------

ENGINE = "printed-engine"


def _module_from(source: str, name: str):
    module = types.ModuleType(f"tampered_{name}")
    exec(compile(source, f"<tampered {name}>", "exec"), module.__dict__)
    return module


def _engine_theorem_running(modules: dict, classifier: str):
    """The printed-engine theorem on ``modules`` (classifier → module), for one classifier;
    its exact derivation step (tested on its own elsewhere) is replaced by a stub here."""
    theorem = replace_assumption(registered(ENGINE), "E", content=lambda: modules)
    theorem = replace_step(theorem, f"derivation-{classifier}",
                           check=lambda scope: {"stub": sp.Eq(sp.S.Zero, 0, evaluate=False)})
    return only_steps(theorem, (f"derivation-{classifier}", f"engine-{classifier}",
                                f"fd-{classifier}"))


@pytest.fixture(scope="module")
def doubled_score_softmax():
    """The printer with the forward template softmax(2·s), and the module it prints."""
    original = symbolic.printer._ModulePrinter.softmax

    def softmax_of_twice(self, node):
        original(self, node)
        line = next(k for k, text in enumerate(self.lines) if "_segment_softmax(" in text)
        self.lines[line] = self.lines[line].replace("_segment_softmax(s,",
                                                    "_segment_softmax(2 * s,")
    symbolic.printer._ModulePrinter.softmax = softmax_of_twice
    try:
        yield symbolic.printer.module_source(Model("linear"))
    finally:
        symbolic.printer._ModulePrinter.softmax = original


def test_a_forward_template_of_softmax_2s_passes_derive_check_but_fails_the_audit(
        doubled_score_softmax, tmp_path, monkeypatch):
    assert "a = _segment_softmax(2 * s, offsets)" in doubled_score_softmax
    # regenerated with the tampered printer, derive --check is green: it only compares bytes
    monkeypatch.setattr(symbolic.generate, "module_source",
                        lambda model: doubled_score_softmax if model.classifier == "linear"
                        else symbolic.printer.module_source(model))
    symbolic.generate.write_generated(tmp_path)
    assert symbolic.generate.check_generated(tmp_path) == []
    # ... and the audit re-runs that engine against the explicit model and names the step
    from numeric import _generated
    modules = {"linear": _module_from(doubled_score_softmax, "linear"), "mlp": _generated.mlp}
    failures = failures_naming(_engine_theorem_running(modules, "linear"))
    assert step_failed(failures, "engine-linear"), failures


@pytest.mark.parametrize("classifier, line, changed", [
    ("linear", "z = h @ classifier.T", "z = h @ classifier.T * 1.000001"),
    ("linear", 'grads["classifier"] = g_z.T @ h', 'grads["classifier"] = g_z.T @ h * 0.5'),
    ("mlp", "np.maximum(", "np.abs("),
    ("linear", "ell = log_Z_z[:, 0] - z[np.arange(z.shape[0]), labels]",
     "ell = log_Z_z[:, 0] - z[np.arange(z.shape[0]), labels] + 1e-9"),
])
def test_changing_a_printed_line_fails_the_audit_at_the_engine_step(classifier, line, changed):
    from numeric import _generated
    source = symbolic.printer.module_source(Model(classifier))
    assert line in source
    modules = {"linear": _generated.linear, "mlp": _generated.mlp}
    modules[classifier] = _module_from(source.replace(line, changed, 1), classifier)
    failures = failures_naming(_engine_theorem_running(modules, classifier))
    assert step_failed(failures, f"engine-{classifier}"), failures


def test_the_untampered_engine_passes_the_same_checks():
    from numeric import _generated
    modules = {"linear": _generated.linear, "mlp": _generated.mlp}
    assert [f for f in failures_naming(_engine_theorem_running(modules, "linear"))
            if ", step " in f] == []


def test_the_audit_runs_derive_check_first(monkeypatch):
    monkeypatch.setattr(symbolic.generate, "check_generated",
                        lambda: ["--- numeric/_generated/linear.py (checked in)\n+++ x\n"])
    monkeypatch.setattr(symbolic.generate, "derivation_hash", lambda: "ab" * 32)
    report = audit.run_audit([registered("softmax-jacobian")])
    assert not report.ok and report.failures[0].startswith("derive --check:")


# --- assumptions with content, normalisers from the registry (review #4, #5) -------------------

CONVERGENCE = "convergence-fixed-classifier"


def test_swapping_the_contents_of_c_and_not_c_fails_naming_the_steps():
    th = registered(CONVERGENCE)
    c, not_c = th.assumption("C"), th.assumption("notC")
    swapped = replace_assumption(th, "C", content=not_c.content, statement=not_c.statement)
    swapped = replace_assumption(swapped, "notC", content=c.content, statement=c.statement)
    failures = failures_naming(only_steps(swapped, (
        "attention", "context", "system", "margin", "others", "gordan", "push-split",
        "hull-linear", "hull", "trajectories", "control")))
    for step in ("push-split", "hull", "trajectories", "control"):
        assert step_failed(failures, step), (step, failures)


@pytest.mark.parametrize("name", ["C", "notC", "C2", "SM", "Y"])
def test_a_convergence_assumption_without_content_fails_naming_it(name):
    failures = failures_naming(only_steps(
        replace_assumption(registered(CONVERGENCE), name, content=True), ("g-increasing",)))
    assert any(f"assumption {name}:" in f for f in failures), failures


_GRADIENT_STEPS = ("context", "attention", "da", "system", "gradient-system")


def test_gradient_system_without_da_in_its_uses_fails():
    th = registered(CONVERGENCE)
    uses = next(s for s in th.steps if s.name == "gradient-system").uses
    tampered = replace_step(th, "gradient-system", uses=tuple(u for u in uses if u != "da"))
    failures = failures_naming(only_steps(tampered, _GRADIENT_STEPS))
    assert step_failed(failures, "gradient-system") and "'da'" in " ".join(failures)


def test_gradient_system_with_a_wrong_slope_from_da_fails():
    th = registered(CONVERGENCE)
    original = next(s for s in th.steps if s.name == "da").check

    def wrong_slope(scope):                 # claims a′ = a (1 + a): false, and read downstream
        claim = original(scope)
        return sp.Eq(claim.lhs, claim.rhs.subs(claim.rhs.args[-1], 2 - claim.rhs.args[-1]),
                     evaluate=False)
    failures = failures_naming(only_steps(replace_step(th, "da", check=wrong_slope),
                                          _GRADIENT_STEPS))
    assert step_failed(failures, "da")


def test_hull_with_real_weights_of_any_sign_fails():
    th = registered(CONVERGENCE)
    content = dict(th.assumption("notC").content)
    content["weights"] = sp.IndexedBase("lambda", real=True)
    failures = failures_naming(only_steps(replace_assumption(th, "notC", content=content),
                                          ("context", "hull-linear", "hull")))
    assert step_failed(failures, "hull"), failures


def test_trajectories_fail_when_u_y_is_inside_the_hull_and_control_when_it_is_not():
    th = registered(CONVERGENCE)
    c, not_c = dict(th.assumption("C").content), dict(th.assumption("notC").content)
    c["sample"], not_c["sample"] = not_c["sample"], c["sample"]
    tampered = replace_assumption(replace_assumption(th, "C", content=c), "notC",
                                  content=not_c)
    failures = failures_naming(only_steps(tampered, ("attention", "system", "context",
                                                     "trajectories", "control")))
    assert step_failed(failures, "trajectories") and step_failed(failures, "control")
    trajectories = next(f for f in failures if ", step trajectories (" in f)
    assert "measured error" in trajectories


def test_convergence_with_one_class_is_refused():
    th = registered(CONVERGENCE)
    one = sp.Symbol("C_o", integer=True, nonnegative=True)       # C_o = 0 allowed: C = 1
    from proofs.derivations import C
    content = {C: one + 1, next(k for k in th.assumption("C2").content if k != C): one}
    failures = failures_naming(only_steps(replace_assumption(th, "C2", content=content),
                                          ("minus-log", "p-y")))
    assert step_failed(failures, "p-y"), failures


def test_the_sen_rate_with_the_normaliser_e_to_0_fails_naming_the_step():
    th = registered("sen-identity")
    original = next(s for s in th.steps if s.name == "rate").check

    def zero_normaliser(scope):
        return dataclasses.replace(original(scope), normalise=lambda e: 0)
    failures = failures_naming(replace_step(th, "rate", check=zero_normaliser))
    assert step_failed(failures, "rate")
    assert "not a registered rewriting" in next(f for f in failures if ", step rate (" in f)


def test_a_step_reading_a_derivation_its_assumptions_do_not_grant_fails():
    th = registered(CONVERGENCE)
    failures = failures_naming(only_steps(replace_assumption(th, "U", derivations=()),
                                          _GRADIENT_STEPS))
    assert step_failed(failures, "gradient-system")
    assert "grants" in " ".join(failures)


# --- the axioms report and the certificate (item 6) --------------------------------------------

@pytest.fixture(scope="module")
def convergence_report():
    with pytest.MonkeyPatch.context() as patch:  # the derivation hash is not examined here
        patch.setattr(symbolic.generate, "derivation_hash", lambda: "ab" * 32)
        return audit.run_audit([registered(CONVERGENCE), registered("sen-curve")], sync=False)


def test_axioms_list_cited_steps_with_their_citation_and_prose_assumptions(convergence_report):
    found = audit.axioms(convergence_report.outcomes[0])
    cited = {c["step"]: c for c in found["cited"]}
    assert {"gordan", "converges", "gradient-floor", "decrease"} <= set(cited)
    assert "Gordan" in cited["gordan"]["source"] and cited["gordan"]["quote"]
    assert [a["name"] for a in found["prose_assumptions"]] == ["GE"]


def test_axioms_list_hypotheses_hidden_in_symbol_declarations(convergence_report):
    hypotheses = {h["symbol"]: h for h in
                  audit.axioms(convergence_report.outcomes[0])["symbol_hypotheses"]}
    assert hypotheses[r"\|q\|^{2}"]["declared"] == ["positive"]
    assert "descent" in hypotheses[r"\|q\|^{2}"]["steps"]
    assert hypotheses["mu[·]"]["declared"] == ["nonnegative"]
    assert "real" in hypotheses["z[·]"]["declared"]


def test_the_text_report_prints_what_is_trusted(convergence_report):
    text = audit.format_theorem(convergence_report.outcomes[0])
    assert "Trusted, not checked:" in text
    assert re.search(r"cited +gordan: P\. Gordan", text)
    assert re.search(r"prose +GE:", text) and re.search(r"declared +alpha: positive", text)


def test_the_certificate_holds_source_hashes_git_commit_and_axioms(convergence_report):
    cert = json.loads(json.dumps(audit.certificate(convergence_report)))
    assert cert["format"] == audit.CERTIFICATE_FORMAT
    for tree in ("symbolic", "proofs", "numeric/_generated"):
        assert re.fullmatch(r"[0-9a-f]{64}", cert["sources"][tree])
    assert cert["sources"]["git_commit"] is None or re.fullmatch(
        r"[0-9a-f]{40}", cert["sources"]["git_commit"])
    record = cert["theorems"][0]
    assert set(record["axioms"]) == {"cited", "prose_assumptions", "symbol_hypotheses",
                                     "rewritings"}
    step = next(s for s in record["steps"] if s["name"] == "system")
    assert step["on_model"] and step["derivations_read"] == ["linear/cross_entropy"]
    assert {a["name"]: a["kind"] for a in record["assumptions"]}["GE"] == "prose"


def test_source_hashes_change_with_any_byte(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = audit._tree_hash(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert audit._tree_hash(tmp_path) != before


def test_the_summary_counts_what_passed_on_the_model(convergence_report):
    row = next(r for r in convergence_report.rows if r["theorem"] == CONVERGENCE)
    assert 0 < row["on_model"]["symbolic"] < row["kinds"]["symbolic"]
    assert row["on_model"]["numeric"] == 2                 # trajectories and control
    summary = audit.format_summary(convergence_report)
    assert "passed on the model's expressions" in summary and "trusted, not checked" in summary


def test_a_failed_step_is_not_counted_as_checked_on_the_model():
    th = only_steps(registered(CONVERGENCE), ("context", "attention", "system"))
    broken = replace_step(th, "system", check=lambda scope: sp.S.One)
    outcome = check_theorem(broken)
    assert next(s for s in outcome.steps if s.step.name == "system").status == FAILED
    assert audit._summary_row(outcome)["on_model"]["symbolic"] == 1        # context only
    assert audit._summary_row(check_theorem(th))["on_model"]["symbolic"] == 2


def test_a_normalised_claim_keeps_its_registered_rewriting_in_the_report(convergence_report):
    names = {r["name"] for r in audit.axioms(convergence_report.outcomes[0])["rewritings"]}
    assert {"peel last term", "the canonical index form"} <= names


def test_the_sign_step_of_the_sen_curve_is_symbolic_and_fails_when_flipped():
    th = registered("sen-curve")
    sign = next(s for s in th.steps if s.name == "sign")
    assert sign.kind == "symbolic" and sign.citation is None

    def flipped(scope):
        claim = sign.check(scope)
        return sp.Gt(claim.lhs, claim.rhs, evaluate=False)
    assert step_failed(failures_naming(replace_step(th, "sign", check=flipped)), "sign")


def test_the_markdown_report_lists_what_is_trusted(convergence_report):
    text = audit.markdown_report(convergence_report)
    assert "*Trusted, not checked.*" in text and "- prose      GE:" in text

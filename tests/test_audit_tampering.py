"""Each tampering of the proof machinery a review made pass the audit is now reported by the
audit itself (``proofs.audit.run_audit``, what ``attnflow audit`` runs), naming what broke.
The untampered audit passing is tests/test_audit.py::test_every_registered_theorem_holds."""

import dataclasses
import importlib
import importlib.util
import marshal
import sys
import types

import numpy as np
import pytest
import sympy as sp

import symbolic.printer
from proofs import audit, normalisers, registry, theorems_cases
from proofs.conservation import conservation_theorem
from proofs.kernel import Assumption, Normalised, Step, Theorem
from proofs.rewritings import substitution
from symbolic import laws as SL
from symbolic.model import C, Model, U


@pytest.fixture(autouse=True)
def _derivation_hash_not_recomputed(monkeypatch):
    """The certificate's derivation hash re-derives every printed module; what these tests
    check does not read it."""
    monkeypatch.setattr(audit, "derivation_hash",
                        lambda: {"sha256": "0" * 64, "source": "not computed in this test"})


def registered(name: str) -> Theorem:
    return next(t for t in registry.all_theorems() if t.name == name)


def failed_steps(report) -> set[str]:
    return {f"{o.theorem.name}/{s.step.name}" for o in report.outcomes for s in o.steps
            if not s.ok}


def squared_columns(normaliser: str = "canonical") -> SL.Law:
    """The false law Σ_c U_ck² constant (cross-entropy, one-hot labels)."""
    return SL.declare("squared-columns", "Σ_c U_ck² is constant",
                      sp.Sum(U[SL._ec, SL._k] ** 2, (SL._ec, 0, C - 1)), 0,
                      models=(SL.LINEAR,), classifiers=("linear",),
                      assumptions=(SL.trains("classifier"), SL.ONE_HOT), normaliser=normaliser)


def without_classifier(expr):
    """Every entry of U written 0: wrong, but only where U occurs."""
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == U, lambda x: 0)


# --- a named normaliser wrong only on arrays the battery never showed ----------------------

def test_a_normaliser_wrong_on_the_classifier_fails_its_battery_and_the_false_law_its_exact_step(
        monkeypatch):
    name = "canonical-softmax-sums"
    right, meaning = normalisers.NORMALISERS[name]
    monkeypatch.setitem(normalisers.NORMALISERS, name,
                        (lambda e: without_classifier(right(e)), meaning))
    battery = registered("normalisers-exact")
    battery = dataclasses.replace(battery, steps=tuple(s for s in battery.steps
                                                       if s.name == name))
    report = audit.run_audit([battery, conservation_theorem(squared_columns(name))],
                             sync=False)
    assert not report.ok
    failed = failed_steps(report)
    assert f"normalisers-exact/{name}" in failed
    # the tampered normaliser decides the false law's rate; its exact check does not use it
    assert "conservation-squared-columns/rate" not in failed
    assert "conservation-squared-columns/exact" in failed


def test_a_named_normaliser_on_an_array_its_battery_does_not_hold_is_refused():
    xi = sp.IndexedBase("Xi")
    law = SL.declare("across-xi", "Σ_k Ξ[l,k] v_{w,k}", sp.Sum(xi[SL._l, SL._k] * SL.V[SL.w, SL._k],
                                                              (SL._k, 0, SL.d - 1)), 0,
                     models=(SL.LINEAR,), classifiers=("linear",),
                     assumptions=(SL.trains("embeddings"),), constants={xi: ()})
    report = audit.run_audit([conservation_theorem(law)], sync=False)
    rate = next(f for f in report.failures if ", step rate (" in f)
    assert "meets Xi" in rate and "does not exercise" in rate


# --- an assumption's case function ----------------------------------------------------------

def test_a_case_function_wrong_on_the_classifier_fails_cases_exact_and_the_exact_step(
        monkeypatch):
    right = SL.ONE_HOT.cases["one-hot label"]
    monkeypatch.setitem(SL.ONE_HOT.cases, "one-hot label",
                        lambda e, model: without_classifier(right(e, model)))
    report = audit.run_audit([theorems_cases.theorems()[0],
                              conservation_theorem(squared_columns())], sync=False)
    failed = failed_steps(report)
    assert "cases-exact/Y-one-hot" in failed
    assert "conservation-squared-columns/rate" not in failed
    assert "conservation-squared-columns/exact" in failed


def test_a_case_function_without_a_battery_is_refused():
    untested = SL.LawAssumption("Y", SL.ONE_HOT.statement,
                                cases={"one-hot label": lambda e, model: e})
    law = dataclasses.replace(SL.CLASSIFIER_SUM, assumptions=(SL.trains("classifier"), untested))
    report = audit.run_audit([conservation_theorem(law)], sync=False)
    rate = next(f for f in report.failures if ", step rate (" in f)
    assert "not one theorem cases-exact tests" in rate


# --- a rewriting forged in an assumption's content ------------------------------------------

x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)


def test_a_rewriting_forged_in_an_assumption_cannot_prove_x_equals_x_plus_1():
    forged = Assumption("F", "x = x (decided after x + 1 → x)",
                        content=Normalised(sp.Eq(x, x, evaluate=False),
                                           substitution("F", {x + 1: x})))

    def x_is_x_plus_1(scope):
        return Normalised(sp.Eq(x + 1, x, evaluate=False), scope.assumption("F").normalise,
                          "the assumption's rewriting")
    th = Theorem("forged", "x = x + 1", "x = x + 1", (forged,),
                 (Step("bad", "x = x + 1", "symbolic", x_is_x_plus_1, uses=("F",)),))
    report = audit.run_audit([th], sync=False)
    assert not report.ok
    assert any(", step bad (" in f and "rewriting refused" in f for f in report.failures)


def test_an_earlier_steps_rewriting_may_still_be_reused():
    square = Assumption("S", "x² = y", content={x ** 2: y})

    def first(scope):
        scope.assumption("S")
        return Normalised(sp.Eq(x ** 2 + 1, y + 1, evaluate=False),
                          substitution("S", {x ** 2: y}))

    def second(scope):
        return Normalised(sp.Eq(x ** 2, y, evaluate=False), scope.step("a").normalise)
    th = Theorem("reuse", "x² = y", "x² = y", (square,),
                 (Step("a", "x² + 1 = y + 1", "symbolic", first, uses=("S",)),
                  Step("b", "x² = y", "symbolic", second, uses=("a",))))
    assert audit.run_audit([th], sync=False).ok


# --- hypotheses carried by symbol declarations ------------------------------------------------

def test_every_symbol_hypothesis_is_listed_as_trusted():
    declared = [sp.Symbol("z", zero=True), sp.Symbol("e", extended_positive=True),
                sp.Symbol("n", prime=True), sp.Symbol("u", integer=True, nonnegative=True)]
    total = sp.Add(*declared, evaluate=False)
    th = Theorem("hypotheses", "symbols", "symbols", (),
                 (Step("s", "a sum equals itself", "symbolic",
                       lambda scope: sp.Eq(total, total, evaluate=False)),))
    report = audit.run_audit([th], sync=False)
    listed = {h["symbol"]: h["declared"] for h in
              audit.certificate(report)["theorems"][0]["axioms"]["symbol_hypotheses"]}
    assert "zero" in listed["z"] and "extended_positive" in listed["e"]
    assert "prime" in listed["n"] and listed["u"] == ["integer", "nonnegative"]
    text = audit.text_report(report)
    assert "declared   u: integer, nonnegative" in text and "zero" in text


# --- statements built from what was checked ----------------------------------------------------

def test_a_statement_that_differs_from_what_was_checked_fails_the_theorem():
    th = registered("conservation-key-sum")
    prose = dataclasses.replace(th, statement="Σ_w κ_w is constant whatever trains.")
    report = audit.run_audit([prose], sync=False)
    assert not report.ok
    assert any("statement differs from what step exact checked" in f for f in report.failures)


# --- the printed engine reads each sentence's own label ----------------------------------------

def _module_from(source: str, name: str):
    module = types.ModuleType(f"tampered_{name}")
    exec(compile(source, f"<tampered {name}>", "exec"), module.__dict__)
    return module


def test_a_printer_and_generated_code_reading_rolled_labels_fail_the_engine_step():
    """np.roll(labels, 1) in the loss and in its gradient: consistent with itself (finite
    differences agree), invisible on one sentence, wrong on a batch of distinct labels."""
    source = symbolic.printer.module_source(Model("linear"))
    rolled = (source.replace("z[np.arange(z.shape[0]), labels]",
                             "z[np.arange(z.shape[0]), np.roll(labels, 1)]")
              .replace("_one_hot(labels,", "_one_hot(np.roll(labels, 1),"))
    assert rolled.count("np.roll(labels, 1)") == 4
    from numeric import _generated
    modules = {"linear": _module_from(rolled, "linear"), "mlp": _generated.mlp}
    theorem = registered("printed-engine")
    theorem = dataclasses.replace(theorem, assumptions=tuple(
        dataclasses.replace(a, content=lambda: modules) if a.name == "E" else a
        for a in theorem.assumptions), steps=tuple(
        dataclasses.replace(s, check=lambda scope: {"stub": sp.Eq(sp.S.Zero, 0,
                                                                 evaluate=False)})
        if s.name == "derivation-linear" else s
        for s in theorem.steps if s.name in ("derivation-linear", "engine-linear",
                                             "fd-linear")))
    report = audit.run_audit([theorem], sync=False)
    assert failed_steps(report) == {"printed-engine/engine-linear"}


# --- bytecode that is not its source's -------------------------------------------------------

def _write_pyc(path, code_source: str, like) -> None:
    """A timestamp ``.pyc`` of ``code_source`` whose header matches the source file ``like``
    (its modification time and size), as the import system checks it."""
    stat = like.stat()
    header = (importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
              + (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
              + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little"))
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(header + marshal.dumps(compile(code_source, str(like), "exec")))


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``tamperedpkg`` on the path, its module ``mod`` byte-identical to its source
    (``VALUE = 1``); the caller writes its bytecode. Unloaded afterwards."""
    root = tmp_path / "tamperedpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield root
    for name in ("tamperedpkg.mod", "tamperedpkg"):
        sys.modules.pop(name, None)


def _import_mod(root, code_source):
    source = root / "mod.py"
    _write_pyc(root / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc", code_source,
               source)
    return importlib.import_module("tamperedpkg.mod")


def test_a_stale_pyc_beside_an_untouched_source_fails_the_audit(package, monkeypatch):
    module = _import_mod(package, "VALUE = 2\n")
    assert module.VALUE == 2                 # Python ran the bytecode, not the source
    monkeypatch.setattr(audit, "CHECKED_PACKAGES", audit.CHECKED_PACKAGES + ("tamperedpkg",))
    report = audit.run_audit([registered("softmax-jacobian")], sync=False)
    assert not report.ok
    assert any(f.startswith("bytecode: module tamperedpkg.mod") for f in report.failures)
    assert audit.certificate(report)["bytecode"]["problems"]


def test_bytecode_compiled_from_the_source_passes(package):
    module = _import_mod(package, "VALUE = 1\n")
    assert module.VALUE == 1 and audit.bytecode_problems([module]) == []


def test_the_engine_batch_has_distinct_labels():
    from proofs.theorems_engine import LABELS, SIZES
    for classifier, labels in LABELS.items():
        assert sorted(labels) == list(range(SIZES[classifier].classes))
        assert list(labels) != sorted(labels) and list(np.roll(labels, 1)) != list(labels)

"""What the audit's summary counts as checked on the model (``proofs.audit``): behaviours no
other test pinned down, each failing under a realistic one-line bug (``tests/mutation.py``).
Stand-in outcomes: the counting is under test, not the theorems."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from proofs.audit import _summary_row, model_linked
from proofs.kernel import FAILED, PASSED


@pytest.fixture(scope="module")
def a_model():
    from symbolic.models import load

    return load("paper").model()


def _outcome(assumptions, steps):
    theorem = SimpleNamespace(name="toy", title="toy", assumptions=[
        SimpleNamespace(name=n, derivations=False, content=c, kind="data")
        for n, c in assumptions])
    return SimpleNamespace(theorem=theorem, seconds=0.0, ok=True, steps=[
        SimpleNamespace(step=SimpleNamespace(name=n, kind="symbolic"), reads=reads,
                        derivations=False, status=status) for n, reads, status in steps])


def test_only_steps_reading_a_model_are_linked_to_it(a_model):
    outcome = _outcome([("numbers", (1, 2)), ("nested", ({"m": (a_model,)},))],
                       [("plain", ("numbers",), PASSED), ("on-model", ("nested",), PASSED),
                        ("after", ("on-model",), PASSED)])
    assert model_linked(outcome) == {"on-model", "after"}


def test_a_failed_step_on_the_model_is_not_counted_as_passed_on_it(a_model):
    outcome = _outcome([("model", (a_model,))],
                       [("good", ("model",), PASSED), ("bad", ("model",), FAILED),
                        ("elsewhere", (), PASSED)])
    row = _summary_row(outcome)
    assert row["on_model"]["symbolic"] == 1 and row["passed"] == 2 and row["failed"] == 1

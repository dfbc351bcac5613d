"""Kernel boundaries the suite used to miss: a numeric step whose measured error
equals its tolerance holds ("error ≤ tolerance"), one just above fails."""

import math

import pytest

from proofs.kernel import Measured, Step, Theorem, check_theorem


def _numeric(error, tolerance):
    step = Step("n", "measured", "numeric", lambda sc: Measured(error, tolerance))
    return check_theorem(Theorem("toy", "toy", "a measured claim", (), (step,)))


@pytest.mark.parametrize("error, ok", [(1e-8, True), (math.nextafter(1e-8, 1.0), False),
                                       (0.0, True)])
def test_numeric_step_at_its_tolerance(error, ok):
    report = _numeric(error, 1e-8)
    assert report.ok is ok
    assert ("≤" if ok else ">") in report.steps[0].detail

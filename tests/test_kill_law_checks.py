"""Behaviours of the law checks (``numeric.laws``) that no other test pinned down: each test
fails under a realistic one-line bug (``tests/mutation.py``) and passes on the code."""

from __future__ import annotations

import numpy as np
import pytest

from numeric import laws
from numeric.laws import no_evidence


def test_terms_that_moved_exactly_the_floor_are_no_evidence():
    """Movement must exceed the accuracy floor: at a floor of 0 (nothing to round), terms
    that stand still are still no evidence."""
    assert "did not move" in no_evidence(3, np.zeros(2), np.zeros(2))
    assert "did not move" in no_evidence(3, np.array([1e-9, 2e-9]), np.array([1e-9, 2e-9]))
    assert no_evidence(3, np.array([0.0, 3e-9]), np.array([1e-9, 2e-9])) == ""
    assert "single snapshot" in no_evidence(1, np.ones(2), np.zeros(2))


def test_embeddings_that_stand_still_have_no_movement_across_the_classifier():
    """The movement of embedding-across-classifier is measured at the displacement from the
    first snapshot, not at the embeddings themselves."""
    from numeric.laws import across_movement
    from numeric.trajectory import Trajectory
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    assert (across_movement(traj) > 0).any()
    still = np.repeat(traj.params["embeddings"][:1], len(traj.time), axis=0)
    frozen = Trajectory(traj.data, traj.spec, traj.time, {**traj.params, "embeddings": still})
    assert (across_movement(frozen) == 0).all()


def test_the_relative_drift_divides_by_the_movement_plus_the_accuracys_share():
    """‖ΔQ‖ = 1 with the terms moved 1 and σ = 2 at accuracy 0.25: 1 / (1 + 0.25·2)."""
    a = np.array([[0.0], [1.0]])
    b = np.zeros((2, 1))
    sens = np.array([[1.0], [2.0]])
    assert laws.relative_drift(a, b, sens, 0.25).tolist() == pytest.approx([1 / 1.5])


def test_frozen_parts_that_are_all_zero_name_no_worst_array():
    from types import SimpleNamespace
    traj = SimpleNamespace(params={"keys": np.zeros((2, 3, 2)), "query": np.zeros((2, 2))},
                           spec=SimpleNamespace(trained=()), frozen_rows={})
    condition = laws._frozen_parts_vanish(traj, ("keys", "query"))
    assert condition.holds and condition.measured == 0.0 and condition.detail == ""


def test_sen_needs_both_topic_and_non_topic_words_in_the_data():
    """Every word present a topic word: no common score c, the identity is not computable."""
    from types import SimpleNamespace

    tokens = np.array([[0, 1], [1, 0]])
    data = SimpleNamespace(topic_class=np.array([0, 1]), mask=np.ones((2, 2), bool),
                           tokens=tokens, safe_tokens=tokens, n_words=2)
    with pytest.raises(laws.NotComputable, match="2 topic and 0 non-topic words"):
        laws._topic_structure(SimpleNamespace(data=data))


@pytest.mark.parametrize("name, value", [("tolerance", -1e-3), ("tolerance", np.inf),
                                         ("accuracy", -1e-3), ("accuracy", np.nan)])
def test_a_negative_or_non_finite_allowance_is_refused(name, value):
    """A negative tolerance or accuracy would pass any drift, a non-finite one every drift."""
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    allowance = {"tolerance": 1e-6, "accuracy": 1e-12, name: value}
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        laws.check_laws(traj, **allowance)

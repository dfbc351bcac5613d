"""Behaviours of ``attnflow laws`` and its explaining options (``attnflow/explain_run.py``)
that no other test pinned down: each test fails under a realistic one-line bug
(``tests/mutation.py``) and passes on the code. Runs are the small ones of
``tests/test_replay.py``."""

from __future__ import annotations

import pytest

from attnflow.explain_run import Plan, explain
from numeric.replay import Optimizer, replay_cost
from tests.test_replay import _run


@pytest.fixture(scope="module")
def run():
    return _run(steps=20, every=10)


@pytest.mark.parametrize("replayed, method", [(True, "replay"),
                                              (False, "checkpoints only (approximation)")])
def test_the_report_names_how_the_run_was_explained(run, replayed, method):
    opt = Optimizer(0.05)
    cost = replay_cost(run, opt, laws=("SEN",)) if replayed else None
    report, text, _ = explain(run, Plan(opt, ("SEN",), cost), jobs=1)
    assert report["method"] == method
    assert text.splitlines()[1].startswith(f"Explaining the run ({method}): lr 0.05")

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


def test_laws_on_a_file_it_cannot_read_exit_2_with_one_line(tmp_path, capsys):
    from attnflow.cli import main
    (tmp_path / "run.npz").write_bytes(b"not a zip")
    assert main(["laws", str(tmp_path / "run.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"attnflow laws: cannot read {tmp_path / 'run.npz'}: ")
    assert "\n" not in err


def test_laws_refuse_to_write_the_report_over_the_input_with_exit_2(tmp_path, capsys):
    from attnflow.cli import main
    path = tmp_path / "run.npz"
    path.write_bytes(b"kept")
    assert main(["laws", str(path), "--json", str(path)]) == 2
    assert capsys.readouterr().err.startswith("attnflow laws: --json: ")
    assert path.read_bytes() == b"kept"

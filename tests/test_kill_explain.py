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
    report, text, status = explain(run, Plan(opt, ("SEN",), cost), jobs=1)
    assert report["method"] == method
    assert (report["verdict"], status) == ("explained" if replayed else "estimate", 0)
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


@pytest.fixture(scope="module")
def files(tmp_path_factory, run):
    from numeric.trajectory import Trajectory
    d = tmp_path_factory.mktemp("runs")
    run.save(d / "run.npz")
    Trajectory(run.data, run.spec, run.time[:1],
               {n: x[:1] for n, x in run.params.items()}).save(d / "one.npz")
    return d


def test_laws_without_lr_check_the_laws_and_explain_nothing(files, tmp_path, capsys):
    import json

    from attnflow.cli import main
    out = tmp_path / "r.json"
    assert main(["laws", str(files / "run.npz"), "--tolerance", "0.1", "--json", str(out)]) == 0
    assert "Explaining the run" not in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert (report["verdict"], report["ok"]) == ("holds", True) and "explanation" not in report


def test_laws_with_lr_on_one_snapshot_explain_nothing_and_check_nothing(files, tmp_path,
                                                                         capsys):
    """One snapshot: no interval to replay and no drift, so nothing is checked (exit 3)."""
    import json

    from attnflow.cli import main
    out = tmp_path / "r.json"
    assert main(["laws", str(files / "one.npz"), "--lr", "0.05", "--json", str(out)]) == 3
    assert "Explaining the run" not in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert (report["verdict"], report["ok"]) == ("not checked", False)
    assert "explanation" not in report


def test_a_replay_that_moves_where_the_laws_could_not_be_checked_exits_1(monkeypatch,
                                                                         tmp_path):
    """The snapshots let no law be checked, and the replay does not match them: a real
    mismatch (exit 1), not "nothing checked"."""
    from tests.test_kill_commands import _laws_run
    status, report = _laws_run(monkeypatch, tmp_path, "not checked", "not explained", 1)
    assert status == 1 and report["ok"] is False


def test_a_plan_is_a_read_only_record():
    """What was checked against the file is what runs: a plan cannot be changed after."""
    import dataclasses
    todo = Plan(Optimizer(0.05), ("SEN",), None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        todo.laws = ("SEN", "query-key")


def test_a_replay_that_does_not_match_the_run_explains_nothing(run, monkeypatch):
    """Every law's drift accounted for by a replay that does not reproduce the checkpoints
    is no explanation: "not explained", exit 1."""
    import numeric.replay
    real = numeric.replay.explain

    class Mismatched:
        consistent = False

        def __init__(self, replay):
            self.replay = replay

        def to_dict(self):
            return {**self.replay.to_dict(), "consistent": False}

    def mismatched(*args, **kwargs):
        replay, atts, skipped = real(*args, **kwargs)
        return Mismatched(replay), atts, skipped
    monkeypatch.setattr(numeric.replay, "explain", mismatched)
    opt = Optimizer(0.05)
    report, _, status = explain(run, Plan(opt, ("SEN",), replay_cost(run, opt, laws=("SEN",))),
                                jobs=1)
    assert all(a["verdict"] == "explained" for a in report["attribution"])
    assert (report["verdict"], status) == ("not explained", 1)


_PARTS = ("assumptions", "weight_decay", "momentum", "discretisation", "unexplained")


def _law(signed: str, unexplained=(1e-9, 2e-9)) -> dict:
    """An attribution of two components with every part, as ``Attribution.to_dict``."""
    comps = [{"component": f"c{k}", "unexplained": u,
              "signed": {"measured": 1.0, **{p: 0.25 for p in _PARTS}},
              "signed_share": dict.fromkeys(_PARTS, 0.25)}
             for k, u in enumerate(unexplained)]
    return {"signed": signed, "components": comps}


@pytest.mark.parametrize("weight_decay, momentum, shown", [
    (0.0, 0.0, ["assumptions", "discretisation"]),
    (0.1, 0.0, ["assumptions", "weight_decay", "discretisation"]),
    (0.0, 0.9, ["assumptions", "momentum", "discretisation"])])
def test_a_table_shows_the_weight_decay_and_momentum_parts_only_when_the_run_had_them(
        weight_decay, momentum, shown):
    from attnflow.explain_run import _table
    head = _table(_law("values"), {"weight_decay": weight_decay, "momentum": momentum})[1]
    assert head.split() == ["component", "ΔQ", "measured", *shown, "unexplained"]


def test_a_table_of_values_adds_up_to_the_measured_change_with_no_norm_column():
    from attnflow.explain_run import _table
    lines = _table(_law("values"), {"weight_decay": 0.0, "momentum": 0.0})
    assert lines[0] == ("    signed parts adding up to the measured ΔQ; in parentheses their "
                        "share of it")
    assert "‖unexplained‖" not in "\n".join(lines)


def test_a_table_along_the_drift_gives_each_components_unexplained_norm():
    from attnflow.explain_run import _table
    lines = _table(_law("along the drift"), {"weight_decay": 0.0, "momentum": 0.0})
    assert lines[0].endswith("; ‖unexplained‖ is what is compared with the accuracy")
    assert lines[1].split()[-1] == "‖unexplained‖"
    assert [ln.split()[-1] for ln in lines[2:]] == ["1.00e-09", "2.00e-09"]


@pytest.mark.parametrize("share, cell", [(None, "+1.50e-03"), (0.005, "+1.50e-03 (+0.5%)"),
                                         (-0.0005, "+1.50e-03 (-5.0e-04)"),
                                         (-0.0, "+1.50e-03 (+0.0%)")])
def test_a_signed_part_shows_its_share_in_percent_from_a_thousandth(share, cell):
    from attnflow.explain_run import _signed_cell
    assert _signed_cell(1.5e-3, share) == cell


def test_the_replay_uses_the_cores_this_process_may_run_on_by_default(monkeypatch):
    import os

    from attnflow.explain_run import _cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2} if pid == 0 else {0},
                        raising=False)
    assert _cores() == 3


def test_a_law_with_no_components_prints_a_table_of_its_header_only():
    from attnflow.explain_run import _table
    lines = _table({"signed": "values", "components": []}, {"weight_decay": 0.0,
                                                             "momentum": 0.0})
    assert [ln.split() for ln in lines[1:]] == [["component", "ΔQ", "measured"]]


def test_a_table_along_the_drift_without_an_unexplained_part_has_no_norm_column():
    from attnflow.explain_run import _table
    law = _law("along the drift")
    for c in law["components"]:
        del c["signed"]["unexplained"]
    lines = _table(law, {"weight_decay": 0.0, "momentum": 0.0})
    assert lines[0].endswith("; in parentheses their share of it")
    assert "‖unexplained‖" not in lines[1]


def test_a_table_of_exactly_max_rows_components_shows_them_all():
    from attnflow import explain_run
    n = explain_run.MAX_ROWS
    comps = [{"component": f"w{k}", "measured": float(n - k)} for k in range(n)]
    shown = explain_run._rows({"components": comps, "worst_component": "w0"})
    assert shown == comps
    more = comps + [{"component": "w+", "measured": 0.5}]
    assert len(explain_run._rows({"components": more, "worst_component": "w0"})) == n - 1

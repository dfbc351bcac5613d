"""No vacuous verdict from the campaign commands: when nothing could be checked, ``attnflow
check``, ``check --trajectory`` and ``attnflow verify`` say so and exit 3, never "holds"."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import numeric.campaign as campaign
from attnflow.cli import main
from attnflow.commands import verify
from attnflow.commands.check import format_summary
from numeric.campaign import CampaignResult, Config, LawRow, TrajectoryResult


def result(*rows) -> CampaignResult:
    return CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[], rows=list(rows))


def test_a_campaign_with_no_checked_law_is_not_checked():
    nothing = result(LawRow("SEN", trajectories=4), LawRow("query-key", trajectories=4))
    assert nothing.verdict == "not checked" and not nothing.ok
    assert "NOTHING CHECKED" in format_summary(nothing)
    assert "holds" not in format_summary(nothing).splitlines()[-1]
    assert nothing.to_dict()["verdict"] == "not checked"


def test_one_checked_law_holds_and_one_violation_fails():
    assert result(LawRow("SEN", trajectories=4, applicable=1)).verdict == "holds"
    bad = result(LawRow("SEN", applicable=1, violated=1), LawRow("query-key"))
    assert bad.verdict == "violated" and "FAILED" in format_summary(bad)


@pytest.mark.parametrize("rows, status", [
    ((LawRow("SEN", trajectories=2),), 3),
    ((LawRow("SEN", trajectories=2, applicable=2),), 0),
    ((LawRow("SEN", trajectories=2, applicable=2, violated=1),), 1),
])
def test_check_exit_status_follows_the_verdict(rows, status, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: result(*rows))
    assert main(["check", "--budget", "1", "--out", str(tmp_path)]) == status


def report(verdict: str):
    return SimpleNamespace(law="SEN", verdict=verdict, drift=0.0, allowed=1.0, usage=0.0,
                           worst="-")


@pytest.mark.parametrize("verdicts, status", [
    (("not checked", "not applicable"), 3), (("holds", "not checked"), 0),
    (("holds", "violated"), 1)])
def test_rerun_of_one_case_exits_3_without_evidence(verdicts, status, monkeypatch, capsys):
    case = Config(seed=0)
    monkeypatch.setattr(campaign, "run_case", lambda c: TrajectoryResult(
        case, "ok", [report(v) for v in verdicts], n_steps=10, tolerance=1e-9,
        score_growth=0.1))
    assert main(["check", "--trajectory", case.to_text()]) == status
    assert ("NOTHING CHECKED" in capsys.readouterr().out) == (status == 3)


@pytest.mark.parametrize("campaign_ok, status, last", [
    (None, 3, "NOTHING CHECKED by laws along random trajectories"),
    (True, 0, "all checks hold"), (False, 1, "FAILED")])
def test_verify_reports_a_campaign_that_checked_nothing(campaign_ok, status, last,
                                                        monkeypatch, capsys):
    for name in ("derive_check", "audit"):
        monkeypatch.setattr(verify, name, lambda: (True, "stubbed for the test"))
    monkeypatch.setattr(verify, "finite_differences", lambda seed: (True, "stubbed"))
    monkeypatch.setattr(verify, "campaign", lambda budget, seed: (campaign_ok, "0 laws"))
    assert main(["verify", "--budget", "1"]) == status
    out = capsys.readouterr().out
    assert last in out.strip().splitlines()[-1]
    assert ("NOT CHECKED" in out) == (campaign_ok is None)


@pytest.mark.parametrize("plain, status", [
    (result(LawRow("SEN", applicable=1, violated=1)), 1),
    (CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[], interrupted=True,
                    rows=[LawRow("SEN", applicable=1)]), 130),
    (result(LawRow("SEN", applicable=1)), 0)])
def test_check_compare_takes_the_plain_runs_verdict_too(plain, status, monkeypatch, tmp_path,
                                                         capsys):
    """``--compare`` once judged by the targeted run alone: a violation (or Ctrl-C) of the
    plain-sampling run exited 0 with "every applicable law holds"."""
    runs = iter([result(LawRow("SEN", applicable=1)), plain])
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: next(runs))
    assert main(["check", "--budget", "1", "--compare", "--out", str(tmp_path)]) == status
    out = capsys.readouterr().out
    assert ("plain sampling:" in out) == (status != 0)


def test_verify_after_ctrl_c_in_its_campaign_is_interrupted_not_pass(monkeypatch, capsys):
    """The campaign catches Ctrl-C to report what it did; verify once read its partial
    "holds" as PASS and exited 0."""
    stopped = CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[], interrupted=True,
                             rows=[LawRow("SEN", applicable=1)])
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: stopped)
    with pytest.raises(KeyboardInterrupt):
        verify.campaign(1.0, 0)
    done = CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[],
                          rows=[LawRow("SEN", applicable=1)])
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: done)
    assert verify.campaign(1.0, 0)[0] is True                          # the control


def test_verify_counts_cited_steps_as_trusted_not_re_checked(monkeypatch):
    """Cited steps are carried with their source, never run: "re-checked" once counted them."""
    import proofs.audit
    from proofs.kernel import CITED, PASSED

    steps = [SimpleNamespace(status=s) for s in (PASSED, PASSED, CITED)]
    report = SimpleNamespace(ok=True, failures=[], outcomes=[SimpleNamespace(steps=steps)])
    monkeypatch.setattr(proofs.audit, "run_audit", lambda sync, on_theorem: report)
    assert verify.audit() == (True, "1 theorems, 2 steps re-checked, 1 cited (trusted)")

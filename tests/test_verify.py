"""``attnflow verify`` says what it is doing while it works, then gives its summary."""

from types import SimpleNamespace

import pytest

from attnflow.cli import main
from attnflow.commands import verify


@pytest.fixture
def stubbed(monkeypatch, capsys):
    """Every stage replaced by one that records what the user had seen when it started."""
    seen = {}

    def stage(name):
        def check(*_):
            seen[name] = capsys.readouterr().out
            print(f"working on {name}")
            return True, f"{name} stubbed"
        return check
    for name in ("derive_check", "finite_differences", "audit", "campaign"):
        monkeypatch.setattr(verify, name, stage(name))
    return seen


def test_each_stage_is_named_before_it_runs_and_timed_when_it_ends(stubbed, capsys):
    assert main(["verify", "--budget", "1"]) == 0
    assert stubbed["derive_check"].strip() == "[1/4] derive --check ..."
    before_audit = stubbed["audit"].splitlines()
    assert before_audit[-1] == "[3/4] audit of every proof ..."
    assert before_audit[-3:-1] == ["working on finite_differences", "      PASS in 0.0 s"]
    rest = capsys.readouterr().out.splitlines()
    assert rest[-1] == "attnflow verify: all checks hold"
    assert sum(line.startswith("laws along random trajectories  PASS") for line in rest) == 1


def test_the_audit_stage_reports_each_theorem_as_it_is_checked(monkeypatch, capsys):
    def fake_run_audit(sync, on_theorem):
        outcomes = [SimpleNamespace(theorem=SimpleNamespace(name=n), ok=ok, seconds=0.5,
                                    steps=[]) for n, ok in (("first", True), ("second", False))]
        for o in outcomes:
            on_theorem(o)
            assert capsys.readouterr().out.strip().startswith(o.theorem.name)
        return SimpleNamespace(outcomes=outcomes, ok=False, failures=["second: step x"])
    monkeypatch.setattr("proofs.audit.run_audit", fake_run_audit)
    ok, detail = verify.audit()
    assert not ok and detail.endswith("failed: second: step x")

"""``attnflow verify``'s stages one by one, with the expensive parts replaced by stand-ins:
what each stage hands to the machinery below it and what it makes of the answer."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import numeric.campaign
from attnflow.commands import verify


def test_a_stage_is_timed_from_its_start_not_from_the_clock_origin():
    row = verify._timed("stage", lambda: (time.sleep(0.05), (True, "done"))[1])
    assert 0.05 <= row.seconds < 5.0
    assert (row.check, row.ok, row.detail, row.result) == ("stage", True, "done", "PASS")


@pytest.mark.parametrize("ok, shown", [(True, "PASS"), (False, "FAIL"), (None, "NOT CHECKED")])
def test_a_row_shows_pass_fail_or_nothing_checked(ok, shown):
    assert verify.Row("x", ok, "", 0.0).result == shown


def _campaign(monkeypatch, verdict="holds", interrupted=False):
    calls = []

    def run_campaign(budget, seed, progress, limits):
        calls.append((budget, seed, limits))
        return SimpleNamespace(verdict=verdict, interrupted=interrupted,
                               headline=lambda: f"headline {verdict}")
    monkeypatch.setattr(numeric.campaign, "run_campaign", run_campaign)
    return calls


def test_the_campaign_on_the_paper_has_no_limits_and_multi_head_names_its_model(monkeypatch):
    calls = _campaign(monkeypatch)
    assert verify.campaign(4.0, 7) == (True, "headline holds")
    assert verify.campaign(2.0, 7, model="multi-head") == (True, "headline holds")
    assert calls == [(4.0, 7, None), (2.0, 7, {"model": "multi-head"})]


@pytest.mark.parametrize("verdict, ok", [("holds", True), ("violated", False),
                                         ("not checked", None)])
def test_the_campaign_stage_passes_fails_or_checks_nothing_with_its_verdict(
        monkeypatch, verdict, ok):
    _campaign(monkeypatch, verdict)
    assert verify.campaign(1.0, 0)[0] is ok


def test_an_interrupted_campaign_is_not_a_pass_unless_it_already_found_a_violation(
        monkeypatch):
    _campaign(monkeypatch, "holds", interrupted=True)
    with pytest.raises(KeyboardInterrupt):
        verify.campaign(1.0, 0)
    _campaign(monkeypatch, "violated", interrupted=True)
    assert verify.campaign(1.0, 0)[0] is False


def test_each_audited_theorem_is_printed_as_it_is_checked(capsys):
    for ok in (True, False):
        verify._theorem_done(SimpleNamespace(theorem=SimpleNamespace(name="sen"), ok=ok,
                                             seconds=1.25))
    assert capsys.readouterr().out == (f"{verify.INDENT}sen: holds (1.2 s)\n"
                                       f"{verify.INDENT}sen: FAILS (1.2 s)\n")


def test_the_stages_run_in_order_and_the_last_checks_multi_head_on_half_the_budget(
        monkeypatch):
    calls = _campaign(monkeypatch)
    names = [name for name, _ in verify.stages(SimpleNamespace(seed=3, budget=8.0))]
    assert names == ["derive --check", "gradient vs finite differences",
                     "audit of every proof", "laws along random trajectories",
                     "laws of multi-head attention"]
    for _, fn in verify.stages(SimpleNamespace(seed=3, budget=8.0))[3:]:
        fn()
    assert calls == [(8.0, 3, None), (4.0, 3, {"model": "multi-head"})]


def test_verify_draws_its_configurations_from_seed_zero_by_default():
    from attnflow.cli import build_parser

    args = build_parser().parse_args(["verify"])
    assert (args.seed, args.budget) == (0, 20.0)


def test_the_finite_difference_stage_passes_on_the_real_engine():
    ok, detail = verify.finite_differences(0, count=2)
    assert ok is True and "2 random configurations" in detail


@pytest.mark.parametrize("stale, ok", [([], True), (["numeric/_generated/linear.py"], False)])
def test_the_derive_stage_passes_only_when_no_generated_file_is_stale(monkeypatch, stale, ok):
    import symbolic.generate

    monkeypatch.setattr(symbolic.generate, "check_generated", lambda: stale)
    passed, detail = verify.derive_check()
    assert passed is ok
    assert ("matches a fresh derivation" in detail) is ok


@pytest.mark.parametrize("outcomes, status, last", [
    ((True, True), 0, "attnflow verify: all checks hold"),
    ((True, None), 3, "attnflow verify: NOTHING CHECKED by b; the rest holds"),
    ((None, False), 1, "attnflow verify: FAILED"),
    ((False, True), 1, "attnflow verify: FAILED")])
def test_verify_fails_on_any_failed_stage_and_else_names_the_stages_that_checked_nothing(
        monkeypatch, capsys, outcomes, status, last):
    monkeypatch.setattr(verify, "stages", lambda args: [
        (name, lambda ok=ok: (ok, "detail")) for name, ok in zip("ab", outcomes)])
    assert verify.run(SimpleNamespace()) == status
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == last

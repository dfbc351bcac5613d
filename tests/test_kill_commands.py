"""Behaviours of the commands and their helpers that no other test pinned down: each test
fails under a realistic one-line bug (``tests/mutation.py``) and passes on the code. Fast:
the expensive parts (audits, campaigns) are replaced by small real ones or by stand-ins."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

import proofs.audit
from attnflow.cli import main
from attnflow.commands import verify
from numeric import limits
from proofs.kernel import Measured, Step, Theorem

# --- numeric.limits: how a refusal reads ------------------------------------------------------

def test_one_input_may_claim_half_of_physical_memory():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert limits.memory_limit() == int(0.5 * total)


@pytest.mark.parametrize("n, text", [(2.5, "2.5"), (3.0, "3"), (12, "12"), (1e20, "1e+20"),
                                     (10 ** 400, "1e+400")])
def test_a_count_reads_as_typed_when_short(n, text):
    assert limits.count_text(n) == text


@pytest.mark.parametrize("n, text", [(500, "500 bytes"), (999, "999 bytes"),
                                     (1000, "1 kB"), (3.2e9, "3.2 GB"), (5e15, "5e+03 TB")])
def test_a_byte_count_takes_the_largest_unit_below_a_thousand(n, text):
    assert limits.bytes_text(n) == text


@pytest.mark.parametrize("s, text", [(119, "119 s"), (120, "2 min"), (7199, "120 min"),
                                     (7200, "2 h")])
def test_a_duration_switches_unit_at_two_minutes_and_two_hours(s, text):
    assert limits.seconds_text(s) == text


# --- attnflow audit: its exit status and files follow the report ------------------------------

def _toy(error: float) -> Theorem:
    step = Step("n", "measured", "numeric", lambda sc: Measured(error, 1e-8))
    return Theorem("toy", "toy", "a measured claim", (), (step,))


@pytest.fixture
def audit_of(monkeypatch):
    """``attnflow audit`` over one toy theorem (no derive --check, no hashing of the sources
    or of the generated code, no bytecode scan: only the theorem decides): holds or fails."""
    real = proofs.audit.run_audit
    monkeypatch.setattr(proofs.audit, "derivation_hash",
                        lambda: {"sha256": "0" * 64, "source": "a stand-in"})
    monkeypatch.setattr(proofs.audit, "source_hashes", lambda: {})
    monkeypatch.setattr(proofs.audit, "bytecode_problems", lambda: [])

    def use(error):
        monkeypatch.setattr(proofs.audit, "run_audit", lambda **kw: real(
            theorems=[_toy(error)], sync=False, **kw))
    return use


@pytest.mark.parametrize("error, status", [(0.0, 0), (1.0, 1)])
def test_audit_exits_1_exactly_when_a_step_fails(audit_of, error, status, capsys):
    audit_of(error)
    assert main(["audit"]) == status
    out = capsys.readouterr().out
    assert "certificate written" not in out and "report written" not in out


def test_audit_writes_the_certificate_and_report_only_where_asked(audit_of, tmp_path, capsys):
    audit_of(0.0)
    cert, md = tmp_path / "audit.json", tmp_path / "audit.md"
    assert main(["audit", "--json", str(cert)]) == 0
    assert json.loads(cert.read_text())["ok"] is True and not md.exists()
    assert main(["audit", "--markdown", str(md)]) == 0
    assert md.read_text().strip()
    out = capsys.readouterr().out
    assert out.count("certificate written") == 1 and out.count("report written") == 1


# --- attnflow verify: the finite-difference row and the table --------------------------------

def _fd_stand_ins(monkeypatch, errors):
    """``random_problem``/``fd_check`` that record what they were asked and return the given
    worst errors in turn."""
    import numeric.checks as checks

    asked, worst = [], iter(errors)
    monkeypatch.setattr(checks, "random_problem", lambda seed, classifier, trainable: (
        asked.append((seed, classifier, tuple(trainable))) or ({}, None, SimpleNamespace(
            classifier=classifier))))
    monkeypatch.setattr(checks, "fd_check", lambda params, data, spec, seed: checks.FDResult(
        spec, next(worst), f"probe {seed}"))
    return asked


def test_finite_differences_draw_distinct_configurations_of_both_classifiers(monkeypatch):
    asked = _fd_stand_ins(monkeypatch, [0.0] * 12)
    ok, _ = verify.finite_differences(7)
    assert ok
    assert [seed for seed, _, _ in asked] == list(range(7, 19))
    assert {c for _, c, _ in asked} == {"linear", "mlp"}
    assert asked[0][1] != asked[1][1]
    assert len({t for _, _, t in asked}) == 4        # every trainable subset


@pytest.mark.parametrize("errors, ok", [([1e-7] * 12, True), ([1e-6] * 12, False),
                                        ([0.0] * 11 + [2e-6], False),
                                        ([0.0] * 5 + [float("nan")] + [0.0] * 6, False)])
def test_finite_differences_pass_only_below_their_tolerance_everywhere(monkeypatch, errors,
                                                                      ok):
    _fd_stand_ins(monkeypatch, errors)
    passed, detail = verify.finite_differences(0)
    assert passed is ok
    assert "tolerance 1e-06" in detail


def test_verify_prints_its_table_in_aligned_columns(monkeypatch, capsys):
    monkeypatch.setattr(verify, "derive_check", lambda: (True, "derive detail"))
    monkeypatch.setattr(verify, "finite_differences", lambda seed: (True, "fd detail"))
    monkeypatch.setattr(verify, "audit", lambda: (True, "audit detail"))
    monkeypatch.setattr(verify, "campaign", lambda *_, **__: (True, "campaign detail"))
    assert main(["verify", "--budget", "1"]) == 0
    # the table's rows, not the progress lines ("      PASS in 0.0 s") printed as it runs
    rows = [ln for ln in capsys.readouterr().out.splitlines()
            if ln.startswith("check") or ("PASS" in ln and not ln.startswith(" "))]
    assert len(rows) == 6
    assert len({ln.index("PASS") if "PASS" in ln else ln.index("result") for ln in rows}) == 1


# --- attnflow check: the options reach the campaign -------------------------------------------

def _campaigns(monkeypatch, *results):
    """``run_campaign`` stand-in returning ``results`` in turn; returns the calls' keywords."""
    import numeric.campaign as campaign

    calls, it = [], iter(results)
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: calls.append(k) or next(it))
    return calls


def _result(interrupted=False):
    from numeric.campaign import CampaignResult, LawRow

    return CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[], interrupted=interrupted,
                          rows=[LawRow("SEN", applicable=1)])


@pytest.mark.parametrize("flags, targeted", [([], True), (["--plain"], False)])
def test_check_plain_turns_the_targeted_search_off(monkeypatch, tmp_path, capsys, flags,
                                                   targeted):
    calls = _campaigns(monkeypatch, _result())
    assert main(["check", "--budget", "1", "--out", str(tmp_path), *flags]) == 0
    assert [c["targeted"] for c in calls] == [targeted]


def test_check_compare_after_ctrl_c_runs_no_plain_campaign(monkeypatch, tmp_path, capsys):
    calls = _campaigns(monkeypatch, _result(interrupted=True), _result())
    assert main(["check", "--budget", "1", "--compare", "--out", str(tmp_path)]) == 130
    assert len(calls) == 1
    assert "plain sampling with the same budget" not in capsys.readouterr().out


def test_check_refuses_a_model_file_pointing_to_discover(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--model", "mine.py"])
    err = capsys.readouterr().err
    assert "attnflow discover --model mine.py" in err and "unknown model" not in err


def test_the_law_column_is_as_wide_as_the_longest_declared_law():
    from attnflow.commands.check import format_summary
    from numeric.campaign import CampaignResult, LawRow

    name = "embedding-across-classifier"
    text = format_summary(CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[],
                                         rows=[LawRow(name, trajectories=3, applicable=1)]))
    row = next(ln for ln in text.splitlines() if ln.startswith(name))
    assert row.startswith(name + "     3 ")


# --- attnflow conjecture: what it prints and its exit status around the proof ----------------

def _verdict(proved=True, steps=(), **fields):
    import sympy as sp

    v = dict(law=SimpleNamespace(assumptions=()), trainable=("keys",), expression="K[w,r]",
             steps=list(steps), proved=proved, method="audit kernel", seconds=0.1,
             trivial="", search=None, not_searched="", kernel=None,
             status="PROVED" if proved else "NOT PROVED", exit_code=0 if proved else 3)
    v.update(fields)
    return SimpleNamespace(**v), sp


@pytest.fixture
def proving(monkeypatch):
    """``prove`` replaced by a given verdict; returns the keywords it was called with."""
    import proofs.conjecture as conjecture

    calls = []

    def use(verdict, why_no_certificate=""):
        monkeypatch.setattr(conjecture, "prove", lambda *a, **k: calls.append(k) or verdict)
        monkeypatch.setattr(conjecture, "no_certificate", lambda v: why_no_certificate)
        return calls
    return use


@pytest.mark.parametrize("render, shown", [("text", "x**2/2"), ("md", "$$\\frac{x^{2}}{2}$$"),
                                           ("tex", "\\[\\frac{x^{2}}{2}\\]")])
def test_conjecture_prints_each_step_as_rendered(proving, capsys, render, shown):
    v, sp = _verdict()
    v.steps = [("a step", sp.Symbol("x") ** 2 / 2)]
    proving(v)
    assert main(["conjecture", "K[w,r]", "--render", render]) == 0
    assert f"    {shown}\n" in capsys.readouterr().out


def test_conjecture_searches_forty_trajectories_by_default(proving, capsys):
    calls = proving(_verdict()[0])
    main(["conjecture", "K[w,r]"])
    main(["conjecture", "K[w,r]", "--max-examples", "3"])
    assert [c["max_examples"] for c in calls] == [40, 3]


@pytest.mark.parametrize("proved, status", [(True, 3), (False, 1)])
def test_a_certificate_that_cannot_be_written_fails_only_a_proof(proving, tmp_path, capsys,
                                                                 proved, status):
    """A proof without its certificate exits 3 (not its 0); a refuted candidate keeps its
    own status 1."""
    verdict = _verdict(proved=proved)[0]
    if not proved:
        verdict.status, verdict.exit_code = "REFUTED", 1
    proving(verdict, why_no_certificate="no kernel check")
    out = tmp_path / "cert.json"
    assert main(["conjecture", "K[w,r]", "--certificate", str(out)]) == status
    assert "no certificate written" in capsys.readouterr().err and not out.exists()


def test_a_proof_with_its_certificate_writes_it_and_exits_0(proving, tmp_path, capsys,
                                                            monkeypatch):
    import proofs.conjecture as conjecture

    proving(_verdict()[0])
    monkeypatch.setattr(conjecture, "write_certificate", lambda v, path: path.write_text("{}")
                        or path)
    out = tmp_path / "cert.json"
    assert main(["conjecture", "K[w,r]", "--certificate", str(out)]) == 0
    assert out.exists() and "audit certificate:" in capsys.readouterr().out


# --- attnflow reproduce: defaults and the summary table ----------------------------------------

def test_reproduce_defaults_to_results_folder_and_automatic_workers(monkeypatch, tmp_path,
                                                                    capsys):
    from numeric import experiments

    calls = []

    def run_ablation(out, **kw):
        calls.append((out, kw))
        return {"experiment": "ablation", "loss_threshold": 0.1, "runs": {}}
    monkeypatch.setattr(experiments, "run_ablation", run_ablation)
    monkeypatch.setattr(experiments, "read_timings", lambda out: {"wall_time_s": {}})
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "ablation"]) == 0
    assert main(["reproduce", "ablation", "--jobs", "2", "--out", "elsewhere"]) == 0
    assert [(str(out), kw["jobs"]) for out, kw in calls] == [
        (os.path.join("results", "ablation"), experiments.AUTO), ("elsewhere", 2)]


def _ablation_run(reached, drift=None):
    return {"epochs_to_threshold": reached, "final_train_loss": 0.05, "test_accuracy": 0.9,
            "sen_drift": drift}


def test_ablation_summary_says_which_runs_never_reached_the_threshold():
    from attnflow.commands.reproduce import summary

    text = summary({"experiment": "ablation", "loss_threshold": 0.1,
                    "runs": {"fast": _ablation_run(3), "slow": _ablation_run(None)}})
    fast = next(ln for ln in text.splitlines() if ln.startswith("fast"))
    slow = next(ln for ln in text.splitlines() if ln.startswith("slow"))
    assert " 3 " in fast and "not reached" not in fast
    assert "not reached" in slow


def test_a_run_without_a_drift_record_shows_n_a():
    from attnflow.commands.reproduce import drift_cell

    assert drift_cell(None) == drift_cell({}) == "n/a"
    assert drift_cell({"attributed": False, "reason": "why"}) == "not attributed (why)"


def test_verify_audits_without_running_derive_check_a_second_time(monkeypatch):
    """verify's first row is derive --check; its audit row re-checks the proofs only."""
    calls = []
    report = SimpleNamespace(ok=True, failures=[], outcomes=[])
    monkeypatch.setattr(proofs.audit, "run_audit",
                        lambda sync, **progress: calls.append(sync) or report)
    assert verify.audit()[0] is True and calls == [False]


# --- attnflow.options: the boundaries of each kind of number ----------------------------------

def test_a_seed_may_be_zero_but_not_negative():
    import argparse

    from attnflow.options import nonnegative_int, positive_int

    assert nonnegative_int("0") == 0 and nonnegative_int("7") == 7
    for bad in ("-1",):
        with pytest.raises(argparse.ArgumentTypeError, match=">= 0"):
            nonnegative_int(bad)
    assert positive_int("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1"):
        positive_int("0")


def test_finite_differences_probe_each_configuration_with_its_own_seed(monkeypatch):
    """The probe directions of configuration n are drawn with seed + n, like the
    configuration itself: one shared direction would test one slice of every gradient."""
    import numeric.checks as checks

    _fd_stand_ins(monkeypatch, [0.0] * 12)
    probed = []
    monkeypatch.setattr(checks, "fd_check", lambda params, data, spec, seed: probed.append(
        seed) or checks.FDResult(spec, 0.0, f"probe {seed}"))
    assert verify.finite_differences(7)[0]
    assert probed == list(range(7, 19))


def test_verify_runs_a_twenty_second_campaign_by_default(monkeypatch, capsys):
    budgets = []
    monkeypatch.setattr(verify, "derive_check", lambda: (True, "derive detail"))
    monkeypatch.setattr(verify, "finite_differences", lambda seed: (True, "fd detail"))
    monkeypatch.setattr(verify, "audit", lambda: (True, "audit detail"))
    monkeypatch.setattr(verify, "campaign", lambda budget, seed, model="paper": budgets.append(
        (budget, model)) or (True, "campaign detail"))
    assert main(["verify"]) == 0 and budgets == [(20.0, "paper"), (10.0, "multi-head")]


def test_verify_numbers_its_stages_as_it_starts_them(monkeypatch, capsys):
    monkeypatch.setattr(verify, "derive_check", lambda: (True, "derive detail"))
    monkeypatch.setattr(verify, "finite_differences", lambda seed: (True, "fd detail"))
    monkeypatch.setattr(verify, "audit", lambda: (True, "audit detail"))
    monkeypatch.setattr(verify, "campaign", lambda *_, **__: (True, "campaign detail"))
    assert main(["verify", "--budget", "1"]) == 0
    starts = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()
              if ln.startswith("[")]
    assert starts == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]


def test_laws_accept_a_relative_drift_of_one_percent_by_default():
    from attnflow.cli import build_parser
    assert build_parser().parse_args(["laws", "run.npz"]).tolerance == 0.01


# --- attnflow laws --lr: how the explanation's verdict and the laws' verdict combine ----------

class _Precision:
    def to_dict(self):
        return {"note": ""}


class _Snapshots(SimpleNamespace):
    """Two snapshots of a trajectory (only the header is read)."""

    def __len__(self):
        return 2


def _laws_run(monkeypatch, tmp_path, law_verdict, explained, explain_status,
              architecture="paper"):
    import numeric.laws
    import numeric.trajectory
    from attnflow.commands import laws as L

    spec = SimpleNamespace(architecture=architecture, classifier="linear", trained=("keys",),
                           heads=2, d=4, d_head=2, temperature=1.5, loss="squared_error")
    traj = _Snapshots(time=[0.0, 1.0], spec=spec, trainable_inferred=False,
                      precision=_Precision())
    report = SimpleNamespace(law="SEN", verdict=law_verdict, reason="nothing moved",
                             to_dict=lambda: {"law": "SEN", "verdict": law_verdict,
                                              "reason": "nothing moved", "statement": "s",
                                              "relative_drift": 0.5, "allowed": 0.01,
                                              "tolerance": 0.01, "worst_component": "t",
                                              "conditions": []})
    monkeypatch.setattr(numeric.trajectory.Trajectory, "load", staticmethod(lambda f: traj))
    monkeypatch.setattr(numeric.laws, "check_laws", lambda t, tol: [report])
    monkeypatch.setattr(L, "plan", lambda args, t, violated: (SimpleNamespace(), None))
    monkeypatch.setattr(L, "explain", lambda t, todo, violated, jobs: (
        {"verdict": explained}, "explanation", explain_status))
    out = tmp_path / "r.json"
    status = main(["laws", str(tmp_path / "run.npz"), "--lr", "0.1", "--json", str(out)])
    return status, json.loads(out.read_text())


def test_an_explained_run_whose_laws_could_not_be_checked_is_nothing_checked(
        monkeypatch, tmp_path):
    status, report = _laws_run(monkeypatch, tmp_path, "not checked", "explained", 0)
    assert status == 3 and report["ok"] is False


def test_a_checkpoint_estimate_leaves_the_laws_own_verdict(monkeypatch, tmp_path):
    status, report = _laws_run(monkeypatch, tmp_path, "holds", "estimate", 1)
    assert status == 0 and report["ok"] is True
    status, _ = _laws_run(monkeypatch, tmp_path, "violated", "estimate", 0)
    assert status == 1


def test_a_replay_verdict_decides_when_the_laws_were_checked(monkeypatch, tmp_path):
    assert _laws_run(monkeypatch, tmp_path, "violated", "explained", 0)[0] == 0
    assert _laws_run(monkeypatch, tmp_path, "holds", "not explained", 1)[0] == 1


def test_the_laws_report_names_the_classifier_only_for_the_papers_model(
        monkeypatch, tmp_path):
    _, paper = _laws_run(monkeypatch, tmp_path, "holds", "explained", 0)
    assert paper["classifier"] == "linear" and paper["model"] == "linear classifier"
    _, heads = _laws_run(monkeypatch, tmp_path, "holds", "explained", 0, "multi-head")
    assert heads["classifier"] is None
    assert heads["model"] == "multi-head, 2 heads, d = 4, d_head = 2, τ = 1.5, squared_error"


@pytest.mark.parametrize("argv, problem", [
    (["--decoupled"], "need --lr"), (["--momentum", "0.9"], "need --lr"),
    (["--weight-decay", "0.1"], "need --lr"), (["--checkpoints-only"], "need --lr"),
    (["--lr", "0.1", "--decoupled"], "--decoupled needs --weight-decay"),
    (["--max-replay-seconds", "5"], "--max-replay-seconds needs --lr"),
    (["--lr", "0.1", "--checkpoints-only", "--max-replay-seconds", "5"],
     "--max-replay-seconds needs --lr and a replay"),
    (["--lr", "0.1", "--weight-decay", "0.1", "--decoupled", "--momentum", "0.5"], "")])
def test_each_explaining_option_names_what_it_needs(argv, problem):
    from attnflow.cli import build_parser
    from attnflow.explain_run import option_problem

    found = option_problem(build_parser().parse_args(["laws", "run.npz", *argv]))
    assert (problem in found and found) if problem else found == ""

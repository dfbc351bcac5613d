"""The law campaign as a Hypothesis search (``numeric.campaign``) and ``attnflow check``:
case texts, shards, shrinking a negative control, the example database, the same report on a
Dask LocalCluster, option validation and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given

from attnflow.cli import main
from numeric.campaign import (
    Config,
    ShardResult,
    WrongSign,
    _to_smallest_sizes,
    build,
    random_config,
    run_campaign,
    run_case,
    targets,
    violated_laws,
)
from numeric.integrate import IntegrationFailed, StalledIntegration
from numeric.laws import LAWS
from numeric.strategies import SMALLEST, campaign_configurations

ROOT = Path(__file__).resolve().parents[1]
#: The negative control: one key entry of a topic word with the wrong sign.
KEY_ENTRY = WrongSign("keys", (0, 0))
#: Size bounds that keep the tests' trajectories cheap (the CI budget).
SMALL = dict(max_sentences=6, max_m=4, max_dim=3)


def without_timing(report: dict) -> dict:
    """A report with its wall-clock figures removed (they differ from run to run)."""
    out = {k: v for k, v in report.items() if k not in ("seconds",)}
    out["violations"] = [{k: v for k, v in x.items() if not k.endswith("_seconds")}
                         for x in report["violations"]]
    return out


# Seeds below were picked for cheap trajectories (the CI budget); any seed must pass.

# --- cases ----------------------------------------------------------------------------------

@given(campaign_configurations())
def test_a_case_text_gives_back_its_configuration(config):
    assert Config.from_text(config.to_text()) == config


@pytest.mark.parametrize("text, named", [("d=2", "seed"), ("seed=1,d=x", "d"),
                                         ("seed=1,colour=red", "colour"),
                                         ("seed=1,d=0", "d"), ("seed=1,a2=maybe", "a2"),
                                         ("seed=1,trainable=keys+bias", "trainable"),
                                         ("seed=1,horizon=inf", "horizon")])
def test_a_bad_case_text_names_its_field(text, named):
    with pytest.raises(ValueError, match=named):
        Config.from_text(text)


def test_configurations_reproduce_from_their_seed():
    assert random_config(123) == random_config(123)
    a, b = build(random_config(7)), build(random_config(7))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    np.testing.assert_array_equal(a.data.tokens, b.data.tokens)


def test_targets_are_the_applicable_laws_usage_and_drift():
    r = run_case("seed=1,trainable=keys+embeddings+classifier")
    applicable = [rep.law for rep in r.reports if rep.applicable]
    assert applicable and len(applicable) < len(r.reports)
    assert set(targets(r.reports)) == {f"{law} {what}" for law in applicable
                                       for what in ("usage", "drift")}
    rep = r.reports[0]
    assert targets(r.reports)[f"{rep.law} usage"] == pytest.approx(np.log10(rep.usage))


def test_numeric_search_modules_do_not_load_sympy():
    code = ("import sys, numeric.strategies, numeric.campaign, numeric.executors; "
            "assert 'sympy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- the campaign ---------------------------------------------------------------------------

def test_campaign_passes_and_checks_every_law():
    good = run_campaign(60.0, seed=10, progress=False, workers=1, examples=6, max_shards=1,
                        limits=SMALL)
    assert good.ok and good.trajectories >= 3 and "0 violated" in good.headline()
    assert [row.law for row in good.rows] == [law.name for law in LAWS]
    assert all(row.worst_shard == 0 for row in good.rows if row.worst is not None)


def test_a_wrong_key_entry_is_found_shrunk_stored_and_replayed(tmp_path, capsys):
    """Negative control: a sign error in one key entry is found, shrunk to the smallest size
    in every dimension, stored in the example database, and found first on the next run."""
    db = tmp_path / "examples"
    bad = run_campaign(120.0, seed=5, progress=False, workers=1, max_shards=1, database=db,
                       fault=KEY_ENTRY, limits=SMALL)
    assert not bad.ok and len(bad.violations) == 1
    v = bad.violations[0]
    assert v.shrunk and "SEN" in v.laws
    c = v.config
    assert {name: getattr(c, name) for name in SMALLEST} == SMALLEST
    assert c.classifier == "linear" and c.a2 and not c.ragged and c.horizon == 100.0
    assert set(c.trainable) == {"keys", "embeddings"}
    # the printed command reruns exactly that case: it fails with the patch, holds without
    assert main(["check", "--trajectory", c.to_text(), "--negative-control", "keys:0,0"]) == 1
    assert main(["check", "--trajectory", c.to_text()]) == 0
    assert "NEGATIVE CONTROL" in capsys.readouterr().out
    # the next run starts from the stored example: shard 0 fails on its first trajectory
    again = run_campaign(120.0, seed=6, progress=False, workers=1, max_shards=1, database=db,
                         fault=KEY_ENTRY, limits=SMALL)
    assert again.violations[0].config == c and len(again.shards[0].results) == 1


def test_sizes_hypothesis_left_above_their_minimum_are_brought_down():
    """Hypothesis shrinks one choice at a time: with data seed 0 this case needs 4 sentences,
    with another seed 2 suffice; the last pass finds that seed."""
    case = Config.from_text("seed=0,m=1,n_nontopic=1,d=1,d_key=1,hidden=1,horizon=100.0")
    assert case.n_sentences == 4
    with KEY_ENTRY.applied():
        out = ShardResult(0, 0, violation=run_case(case))
        assert violated_laws(out.violation)
        _to_smallest_sizes(out, run_case)
    assert out.violation.config.n_sentences == SMALLEST["n_sentences"]
    assert violated_laws(out.violation) and violated_laws(out.violation) == ["SEN"]


def test_same_seed_same_report_locally_and_on_a_local_cluster():
    pytest.importorskip("dask.distributed",
                        reason="the cluster mode needs the cluster extra (dask[distributed])")
    kwargs = dict(seed=2, progress=False, workers=2, examples=4, max_shards=2, limits=SMALL)
    local = run_campaign(300.0, **kwargs)
    cluster = run_campaign(300.0, scheduler="local", **kwargs)
    assert len(local.shards) == 2 and local.trajectories >= 4
    assert without_timing(local.to_dict()) == without_timing(cluster.to_dict())


def test_bad_campaign_arguments_raise_value_error():
    for kwargs in [dict(budget=0), dict(budget=float("nan")), dict(budget=1, seed=-1),
                   dict(budget=1, workers=0), dict(budget=1, examples=0),
                   dict(budget=1, max_shards=0)]:
        with pytest.raises(ValueError):
            run_campaign(progress=False, **kwargs)
    with pytest.raises(ValueError, match="index"):
        WrongSign.from_text("keys:a")


# --- the command ----------------------------------------------------------------------------

def test_check_command_writes_its_report_and_database(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["check", "--budget", "60", "--workers", "1", "--examples", "3",
                 "--shards", "1", "--seed", "10", "--out", str(out),
                 "--json", str(tmp_path / "check.json")]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] and report["trajectories"] >= 1 and report["targeted"]
    assert {row["law"] for row in report["laws"]} == {law.name for law in LAWS}
    row = next(r for r in report["laws"] if r["worst_case"])
    assert Config.from_text(row["worst_case"]) == Config(**{
        k: tuple(v) if k == "trainable" else v for k, v in row["worst_config"].items()})
    assert row["worst_shard"] == 0 and isinstance(row["worst_shard_seed"], int)
    assert (out / "examples").is_dir()
    assert "every applicable law holds" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--budget", "0"], ["--budget", "nan"],
                                    ["--budget", "-3"], ["--workers", "0"],
                                    ["--seed", "-1"], ["--examples", "0"], ["--shards", "x"],
                                    ["--trajectory", "seed=1,d=0"],
                                    ["--negative-control", "keys:a"],
                                    # read loosely by int()/float() once: 10, 3, 5
                                    ["--seed", "1_0"], ["--seed", "٣"], ["--budget", "５"],
                                    ["--trajectory", "٣"], ["--trajectory", "seed=1,seed=2"],
                                    ["--trajectory", "seed=1,d=1_0"]])
def test_check_rejects_bad_options_before_work_starts(option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", *option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("attnflow check: error: argument") and "Traceback" not in err


def test_check_output_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--out", str(tmp_path / "file")])
    assert exit_.value.code == 2


#: Bounds the subprocess tests only against a real hang: they wait for what the child prints,
#: never for a guess of how long it takes on a loaded machine.
HANG_SECONDS = 600


def read_until(proc, pattern: bytes, seconds: float = HANG_SECONDS) -> bytes:
    """The child's stderr up to the first match of ``pattern`` (AssertionError if it ends
    first or prints nothing matching for ``seconds``)."""
    import select

    seen, give_up = b"", time.monotonic() + seconds
    while not re.search(pattern, seen):
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, give_up - time.monotonic()))
        assert ready, f"no {pattern!r} on stderr within {seconds} s: {seen[-300:]!r}"
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, f"the command ended before printing {pattern!r}: {seen[-300:]!r}"
        seen += chunk
    return seen


def _as_from_a_terminal():
    """A shell starts a foreground command with SIGINT at its default, whatever this test
    process inherited or set (an ignored SIGINT survives exec: Ctrl-C would not reach it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_and_still_reports(tmp_path):
    """SIGINT to the whole process group (as a terminal's Ctrl-C): the report of what was
    done printed and written, exit status 130, no traceback. The test waits for the
    progress bar's first finished trajectory, not for a time: a loaded machine only makes
    it slower."""
    proc = subprocess.Popen([sys.executable, "-m", "attnflow", "check", "--budget", "3600",
                             "--workers", "1", "--out", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_as_from_a_terminal)
    try:
        seen = read_until(proc, rb"trajectories=[1-9]")  # the search has finished one
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=HANG_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert "Traceback" not in (seen + stderr).decode()
    assert "INTERRUPTED" in stdout.decode() and proc.returncode == 130
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] and report["trajectories"] >= 1


@pytest.mark.parametrize("error, stalled", [
    (StalledIntegration("budget"), True), (IntegrationFailed("step size"), True),
    (NotImplementedError("an engine bug"), False), (RecursionError("deep"), False)])
def test_only_the_solver_giving_up_counts_as_stalled(error, stalled, monkeypatch):
    """Any RuntimeError once counted as a stall (no evidence), so an engine bug on every
    MLP run was skipped and the campaign said "holds" about the rest."""
    import numeric.campaign as campaign

    def fails(*args, **kwargs):
        raise error
    monkeypatch.setattr(campaign, "integrate_case", fails)
    if stalled:
        assert campaign.run_trajectory(Config(seed=0)).status == "stalled"
    else:
        with pytest.raises(type(error)):
            campaign.run_trajectory(Config(seed=0))


@pytest.mark.parametrize("text, message", [
    ("foo", "bad parameter name"), ("keys:0", "keys has 2 axes"),
    ("query:0,0", "query has 1 axes"), ("keys:-1,0", "entries >= 0")])
def test_a_negative_control_that_could_patch_nothing_is_refused(text, message, capsys):
    """``--negative-control foo`` (no such parameter) or an index of the wrong rank patched
    nothing, yet the report said "NEGATIVE CONTROL … wrong sign" and the run exited 0."""
    with pytest.raises(ValueError, match=message):
        WrongSign.from_text(text)
    with pytest.raises(SystemExit) as stopped:  # argparse's own exit for a bad option
        main(["check", "--trajectory", "seed=1", "--negative-control", text])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert WrongSign.from_text("keys:0,0") == WrongSign("keys", (0, 0))   # the control


@pytest.mark.parametrize("text, message", [
    ("keys:99,99", "lies outside keys, which has shape (5, 2)"),
    ("keys:3,0", "word 3 is a non-topic word, held fixed"),
    ("query", "this case does not train query"),
    ("classifier:0,0", "this case does not train classifier")])
def test_a_negative_control_outside_the_rerun_case_is_refused(text, message, capsys):
    """``check --trajectory seed=1 --negative-control keys:99,99`` (an entry outside the
    case's arrays, a row A2 holds fixed, a frozen parameter) patched nothing, yet printed
    NEGATIVE CONTROL and exited 0."""
    assert main(["check", "--trajectory", "seed=1", "--negative-control", text]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert KEY_ENTRY.reaches(Config(seed=1))                            # the control


def test_a_negative_control_that_reaches_no_trajectory_of_a_campaign_is_exit_2(tmp_path,
                                                                              capsys):
    """In a campaign the shapes vary: an entry beyond every drawn configuration patched
    nothing, and the report said "holds" beside NEGATIVE CONTROL."""
    args = ["check", "--budget", "120", "--workers", "1", "--examples", "2", "--shards", "1",
            "--seed", "10", "--out", str(tmp_path)]
    assert main(args + ["--negative-control", "keys:99,99"]) == 2
    captured = capsys.readouterr()
    assert "reached none of the" in captured.err
    assert "changed the flow of 0 of" in captured.out


def test_a_scheduler_that_never_answers_is_exit_2_naming_it(tmp_path):
    """A loopback port that accepts the connection and stays silent: Dask bounds the
    connection, not the handshake after it, and ``check --scheduler`` hung forever."""
    pytest.importorskip("dask.distributed",
                        reason="the cluster mode needs the cluster extra (dask[distributed])")
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def accept_and_stay_silent():
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])
    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    code = ("import sys, numeric.executors as e; e.SCHEDULER_SECONDS = 1.0; "
            "from attnflow.cli import main; sys.exit(main(sys.argv[1:]))")
    try:
        done = subprocess.run([sys.executable, "-c", code, "check", "--scheduler", address,
                               "--budget", "5", "--out", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert held, "the client never connected"
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"attnflow check: the Dask scheduler at {address} did not "
                                   f"answer within 1 s (is it a Dask scheduler?)")


# --- behaviours a mutation round found unpinned -----------------------------------------------

def test_the_counterexample_search_climbs_towards_larger_usage(monkeypatch):
    """hypothesis.target maximises: the search must be handed +log10(usage) of the
    candidate's allowance, or it climbs away from the cases closest to drifting."""
    import hypothesis

    import proofs.counterexample as cx

    targeted = []
    monkeypatch.setattr(hypothesis, "target",
                        lambda value, label: targeted.append((label, value)))
    monkeypatch.setattr(cx, "numeric_law", lambda *args: None)

    judged = []

    def drift_on(judge, config):   # usage 10^−d ≤ 0.1: smaller for wider embeddings
        judged.append(config)
        report = SimpleNamespace(applicable=True, usage=10.0 ** -config.d, verdict="holds")
        return cx.Drift(config, report)
    monkeypatch.setattr(cx, "drift_on", drift_on)
    found = cx.search(None, "linear", ("keys",), max_examples=5, max_trajectories=5)
    assert found.found is None and found.trajectories == len(judged) >= 2
    assert targeted and {label for label, _ in targeted} == {"usage of the allowance"}
    assert {value for _, value in targeted} <= {-float(c.d) for c in judged}


def test_a_ragged_case_has_between_one_and_m_non_topic_words_per_sentence():
    """``ragged`` breaks A3 with lengths drawn in [1, m] non-topic words, padding at the end;
    without it every sentence has exactly m."""
    lengths = []
    for seed in range(5):
        data = build(Config(seed=seed, m=3, n_sentences=20, ragged=True)).data
        tokens = data.tokens
        assert (tokens[:, 0] >= 0).all() and (tokens[:, 1] >= 0).all()  # topic + ≥ 1 word
        padded = tokens < 0
        assert (np.diff(padded.astype(int), axis=1) >= 0).all()      # padding only at the end
        lengths += list((~padded).sum(axis=1) - 1)
    assert min(lengths) == 1 and max(lengths) == 3
    steady = build(Config(seed=0, m=3, n_sentences=20)).data.tokens
    assert steady.shape == (20, 4) and (steady >= 0).all()


@pytest.mark.parametrize("name", ["n_classes", "topics_per_class", "m", "n_nontopic",
                                  "n_sentences", "d", "d_key", "hidden", "heads", "d_head",
                                  "seed"])
def test_every_size_has_its_minimum_and_nothing_below(name):
    """The smallest configuration of each size is valid and one less is refused naming it
    (a case text with m=0 would build sentences without non-topic words)."""
    from numeric.campaign import SIZE_MINIMUM

    low = SIZE_MINIMUM[name]
    assert getattr(Config(**{"seed": 1, name: low}), name) == low
    with pytest.raises(ValueError, match=f"Config.{name} must be an integer >= {low}"):
        Config(**{"seed": 1, name: low - 1})
    assert {k: v for k, v in SIZE_MINIMUM.items() if k != "seed"} == dict(
        SMALLEST, n_sentences=1)   # the search never draws a single sentence


def test_verify_exits_3_when_its_campaign_checked_nothing(monkeypatch, capsys):
    """A campaign whose every law was not applicable (or never moved) is "not checked":
    verify's row is NOT CHECKED and its exit status 3, never a PASS."""
    from attnflow.commands import verify
    from numeric import campaign
    from numeric.campaign import CampaignResult, LawRow

    for name in ("derive_check", "audit"):
        monkeypatch.setattr(verify, name, lambda: (True, "stubbed"))
    monkeypatch.setattr(verify, "finite_differences", lambda seed: (True, "stubbed"))
    rows = {"not checked": [LawRow("SEN", trajectories=3)],
            "holds": [LawRow("SEN", trajectories=3, applicable=2)],
            "violated": [LawRow("SEN", trajectories=3, applicable=2, violated=1)]}
    for verdict, status in (("not checked", 3), ("holds", 0), ("violated", 1)):
        result = CampaignResult(seed=0, budget=1.0, seconds=1.0, shards=[], rows=rows[verdict])
        assert result.verdict == verdict
        monkeypatch.setattr(campaign, "run_campaign", lambda *a, r=result, **k: r)
        assert main(["verify", "--budget", "1"]) == status
        out = capsys.readouterr().out
        assert ("NOT CHECKED" in out) == (status == 3)


@pytest.mark.parametrize("address", ["nonsense", "ucx://127.0.0.1:1", "inproc://x"])
def test_a_scheduler_address_dask_cannot_use_is_exit_2_naming_it(address, tmp_path, capsys):
    """An unknown protocol (ucx without its package) ended in a TypeError traceback."""
    pytest.importorskip("dask.distributed",
                        reason="the cluster mode needs the cluster extra (dask[distributed])")
    assert main(["check", "--scheduler", address, "--budget", "1", "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"attnflow check: cannot reach the Dask scheduler at {address}: ")
    assert len(err.splitlines()) == 1

"""``attnflow laws FILE --lr …``: replay + attribution on the command line."""

import json

import pytest

from attnflow.cli import main
from tests.test_replay import _run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    _run().save(d / "good.npz")
    _run(lr=0.045, claimed_lr=0.05).save(d / "wrong_lr.npz")
    return d


def test_faithful_run_is_explained(files, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["laws", str(files / "good.npz"), "--lr", "0.05", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "replay" in text and "EXPLAINED" in text and "discretisation" in text
    report = json.loads(out.read_text())["explanation"]
    assert report["verdict"] == "explained" and report["replay"]["consistent"]
    sen = next(a for a in report["attribution"] if a["law"] == "SEN")
    assert all(c["unexplained_share"] < 1e-9 for c in sen["components"])


def test_wrong_learning_rate_exits_1_with_the_mismatch(files, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["laws", str(files / "wrong_lr.npz"), "--lr", "0.05", "--json",
                 str(out)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    report = json.loads(out.read_text())["explanation"]
    assert report["verdict"] == "not explained"
    ratio = report["replay"]["parameters"]["embeddings"]["movement_ratio"]
    assert ratio == pytest.approx(0.9, abs=0.02)


def test_checkpoint_only_estimate_is_never_a_verdict(files, capsys):
    assert main(["laws", str(files / "good.npz"), "--lr", "0.05", "--checkpoints-only"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint-only approximation" in text and "ESTIMATE" in text
    assert "EXPLAINED" not in text.replace("NOT EXPLAINED", "")


@pytest.mark.parametrize("argv, message", [
    (["--weight-decay", "0.1"], "need --lr"), (["--lr", "0.05", "--momentum", "1"], "[0, 1)"),
    (["--lr", "0.05", "--decoupled"], "needs --weight-decay"),
    (["--lr", "-1"], "> 0"), (["--lr", "nan"], "> 0"), (["--lr", "0.07"], "multiples of lr")])
def test_bad_options_exit_2_with_one_line(files, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        code = main(["laws", str(files / "good.npz"), *argv])
        raise SystemExit(code)
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err




@pytest.fixture(scope="module")
def decayed(tmp_path_factory):
    """Gradient descent with weight decay 0.5, everything trained: the sum laws (key-sum,
    classifier-sum) are violated, and the replay attributes only the quadratic laws."""
    from numeric.checks import random_problem
    from numeric.integrate import gradient_descent

    params, data, spec = random_problem(
        3, "linear", trainable=("keys", "embeddings", "classifier", "query"))
    path = tmp_path_factory.mktemp("decay") / "wd.npz"
    gradient_descent(params, data, spec, lr=0.05, steps=40, record_every=10,
                     weight_decay=0.5).save(path)
    return path


def test_a_violated_law_the_replay_does_not_attribute_is_not_explained(decayed, tmp_path,
                                                                       capsys):
    """The replay once said EXPLAINED (exit 0) while key-sum and classifier-sum were
    VIOLATED, because only the attributed laws counted."""
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed), "--lr", "0.05", "--weight-decay", "0.5", "--jobs", "1",
                 "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "key-sum: VIOLATED and not attributed" in text
    assert "the run's drift is NOT EXPLAINED" in text
    report = json.loads(out.read_text())
    assert not report["ok"] and report["explanation"]["verdict"] == "not explained"
    assert {"key-sum", "classifier-sum"} <= set(report["explanation"]["violated_unattributed"])


def test_a_checkpoint_only_estimate_keeps_the_laws_exit_status(decayed, tmp_path):
    """The estimate is never a verdict: a violated run exits 1 (it once exited 0, ok true)."""
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed), "--lr", "0.05", "--weight-decay", "0.5",
                 "--checkpoints-only", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["verdict"] == "violated" and not report["ok"]

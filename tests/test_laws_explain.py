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
    classifier-sum) are violated — weight decay shrinks them by (1 − ηλ) per step."""
    from numeric.checks import random_problem
    from numeric.integrate import gradient_descent

    params, data, spec = random_problem(
        3, "linear", trainable=("keys", "embeddings", "classifier", "query"))
    d = tmp_path_factory.mktemp("decay")
    for name, kw in (("wd", {}), ("wd_decoupled_momentum", dict(decoupled=True,
                                                                 momentum=0.5))):
        gradient_descent(params, data, spec, lr=0.05, steps=40, record_every=10,
                         weight_decay=0.5, **kw).save(d / f"{name}.npz")
    return d


@pytest.mark.parametrize("name, argv", [("wd", []), ("wd_decoupled_momentum",
                                                     ["--decoupled", "--momentum", "0.5"])])
def test_an_honest_run_with_weight_decay_is_explained(decayed, tmp_path, capsys, name, argv):
    """The sum laws are linear: L2 decay gives Q_{k+1} = (1 − ηλ)Q_k, decoupled decay and
    momentum their own exact recursions, so the replay attributes their whole drift. The run
    once ended "classifier-sum: VIOLATED and not attributed", NOT EXPLAINED, exit 1."""
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed / f"{name}.npz"), "--lr", "0.05", "--weight-decay", "0.5",
                 "--jobs", "1", *argv, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "classifier-sum: VIOLATED —" in text and "key-sum: VIOLATED —" in text
    assert "classifier-sum: EXPLAINED" in text and "key-sum: EXPLAINED" in text
    assert "the run's drift is EXPLAINED" in text
    report = json.loads(out.read_text())
    assert report["ok"] and report["explanation"]["verdict"] == "explained"
    assert report["explanation"]["violated_unattributed"] == []
    by = {a["law"]: a for a in report["explanation"]["attribution"]}
    for law in ("key-sum", "classifier-sum"):
        for c in by[law]["components"]:
            assert c["weight_decay"] > 0 and c["discretisation"] == 0.0


def test_a_violated_law_the_replay_does_not_attribute_is_not_explained(decayed, tmp_path,
                                                                       capsys, monkeypatch):
    """The replay once said EXPLAINED (exit 0) while a law was VIOLATED, because only the
    attributed laws counted; here the replay is made to know no key-sum."""
    import numeric.replay as replay

    found = replay.adapters
    monkeypatch.setattr(replay, "adapters", lambda traj: (
        {k: v for k, v in found(traj)[0].items() if k != "key-sum"}, found(traj)[1]))
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed / "wd.npz"), "--lr", "0.05", "--weight-decay", "0.5",
                 "--jobs", "1", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "key-sum: VIOLATED and not attributed" in text
    assert "the run's drift is NOT EXPLAINED" in text
    report = json.loads(out.read_text())
    assert not report["ok"] and report["explanation"]["verdict"] == "not explained"
    assert report["explanation"]["violated_unattributed"] == ["key-sum"]


def test_a_checkpoint_only_estimate_keeps_the_laws_exit_status(decayed, tmp_path):
    """The estimate is never a verdict: a violated run exits 1 (it once exited 0, ok true)."""
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed / "wd.npz"), "--lr", "0.05", "--weight-decay", "0.5",
                 "--checkpoints-only", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["verdict"] == "violated" and not report["ok"]


def _paper_run_float32(steps=60, every=20, **kw):
    """A short float32 gradient-descent run of the paper's Attn-TC (query fixed; keys,
    embeddings and the classifier train) on a small synthetic topic data set."""
    import dataclasses

    import numpy as np

    import numeric
    from numeric.data import synthetic_topic_data
    from numeric.experiments import model_spec
    from numeric.integrate import gradient_descent

    data = synthetic_topic_data(0, n_nontopic=40, m=6, n_sentences=60, n_train=50,
                                n_valid=5).train
    spec = dataclasses.replace(model_spec("Attn-TC", d=4, d_key=4), dtype="float32")
    params = {n: x.astype(np.float32) for n, x in numeric.init_params(spec, data, seed=0)
              .items()}
    return gradient_descent(params, data, spec, 0.1, steps, record_every=every, **kw)


@pytest.fixture(scope="module")
def float32_files(tmp_path_factory):
    """The same float32 run saved as float32 and as ``.astype(float64)`` (PyTorch's
    ``.double()`` export)."""
    import numpy as np

    d = tmp_path_factory.mktemp("f32")
    traj = _paper_run_float32()
    traj.save(d / "f32.npz")
    fields = dict(np.load(d / "f32.npz"))
    fields.update({n: x.astype(np.float64) for n, x in traj.params.items()})
    np.savez(d / "f32_as_f64.npz", **fields)
    return d


def test_a_float32_run_stored_as_float64_is_explained_like_the_float32_file(float32_files,
                                                                           tmp_path, capsys):
    """A float64 file whose every value is a float32 number once gave "MISMATCH 2.6e6× the
    replay's accuracy", NOT EXPLAINED, exit 1, while the float32 file was explained."""
    reports, texts = {}, {}
    for name in ("f32", "f32_as_f64"):
        out = tmp_path / f"{name}.json"
        assert main(["laws", str(float32_files / f"{name}.npz"), "--lr", "0.1", "--jobs", "1",
                     "--json", str(out)]) == 0
        texts[name] = capsys.readouterr().out
        reports[name] = json.loads(out.read_text())
    single, double = reports["f32"], reports["f32_as_f64"]
    assert double["explanation"]["verdict"] == single["explanation"]["verdict"] == "explained"
    assert [x["verdict"] for x in double["laws"]] == [x["verdict"] for x in single["laws"]]
    assert ([a["verdict"] for a in double["explanation"]["attribution"]]
            == [a["verdict"] for a in single["explanation"]["attribution"]])
    assert double["precision"]["dtype"] == "float32"
    assert double["precision"]["stored"] == "float64"
    assert single["precision"] == {**single["precision"], "dtype": "float32",
                                   "stored": "float32"}
    assert "judged as a float32 run" in texts["f32_as_f64"]
    assert "judged as a float32 run" not in texts["f32"]
    assert "float32 checkpoints (stored as float64" in texts["f32_as_f64"]


def test_a_float64_file_is_float32_only_when_every_value_is_a_float32_number(float32_files,
                                                                            tmp_path):
    """Exact, array by array: one value off float32 (a real float64 run) keeps float64."""
    import numpy as np

    from numeric.trajectory import Trajectory

    assert Trajectory.load(float32_files / "f32_as_f64.npz").spec.dtype == "float32"
    fields = dict(np.load(float32_files / "f32_as_f64.npz"))
    fields["keys"][-1, 0, 0] += 2.0 ** -40          # one value no float32 holds
    np.savez(tmp_path / "one_off.npz", **fields)
    judged = Trajectory.load(tmp_path / "one_off.npz")
    assert judged.spec.dtype == "float64" and judged.precision.dtype == "float64"
    assert "keys" not in judged.precision.float32_numbers
    assert "embeddings" in judged.precision.float32_numbers
    # nothing moves: no run to judge, the stored dtype stands
    still = {**fields, **{n: np.repeat(fields[n][:1], len(fields["time"]), axis=0)
                          for n in ("embeddings", "keys", "query", "classifier")}}
    still.pop("trainable")
    np.savez(tmp_path / "still.npz", **still)
    assert Trajectory.load(tmp_path / "still.npz").spec.dtype == "float64"


def test_a_genuine_float64_run_stays_float64(tmp_path):
    """The same paper run computed in float64: no parameter that moves lands on float32
    numbers, so it is judged against float64 rounding."""

    import numeric
    from numeric.data import synthetic_topic_data
    from numeric.experiments import model_spec
    from numeric.integrate import gradient_descent
    from numeric.trajectory import Trajectory

    data = synthetic_topic_data(0, n_nontopic=40, m=6, n_sentences=60, n_train=50,
                                n_valid=5).train
    spec = model_spec("Attn-TC", d=4, d_key=4)
    traj = gradient_descent(numeric.init_params(spec, data, seed=0), data, spec, 0.1, 20,
                            record_every=10)
    traj.save(tmp_path / "f64.npz")
    loaded = Trajectory.load(tmp_path / "f64.npz")
    assert loaded.spec.dtype == "float64" and loaded.precision.stored == "float64"
    assert not {"embeddings", "keys", "classifier"} & set(loaded.precision.float32_numbers)


def test_attribution_tables_print_signed_parts_that_add_up_to_the_drift():
    """The table once printed unsigned shares: "143% assumptions" beside "43%
    discretisation" for a drift of 100%. Parts now carry their signs and add up."""
    import numpy as np

    from attnflow.explain_run import format_explanation
    from numeric.replay import Attribution

    scalar = Attribution("SEN", ["topic word 0"], np.array([1.0]),
                         {"assumptions": np.array([1.43]),
                          "discretisation": np.array([-0.43])}, accuracy=1e-9)
    matrix = Attribution("query-key", ["matrix"], np.array([[[3.0, 0.0], [0.0, 4.0]]]),
                         {"assumptions": np.array([[[6.0, 1.0], [1.0, 8.0]]]),
                          "discretisation": np.array([[[-3.0, -1.0], [-1.0, -4.0]]])},
                         accuracy=1e-9)
    report = {"method": "replay", "optimizer": dict(lr=0.1, weight_decay=0.0,
                                                    decoupled=False, momentum=0.0),
              "replay": None, "attribution": [scalar.to_dict(), matrix.to_dict()],
              "skipped": {}, "violated_unattributed": [], "verdict": "explained"}
    text = format_explanation(report)
    assert "+1.43e+00 (+143.0%)" in text and "-4.30e-01 (-43.0%)" in text
    assert "signed parts adding up to the measured ΔQ" in text
    assert "signed parts along ΔQ (⟨part, ΔQ⟩/‖ΔQ‖), adding up to ‖ΔQ‖" in text
    # along ΔQ/‖ΔQ‖ = (3, 4)/5 on the diagonal: assumptions (18 + 32)/5 = 10, the rest −5
    assert "+1.00e+01 (+200.0%)" in text and "-5.00e+00 (-100.0%)" in text
    signed = matrix.to_dict()["components"][0]["signed"]
    assert signed == {"measured": 5.0, "assumptions": 10.0, "discretisation": -5.0,
                      "unexplained": 0.0}


def test_every_signed_row_adds_up_to_the_measured_drift(decayed, tmp_path):
    out = tmp_path / "r.json"
    assert main(["laws", str(decayed / "wd.npz"), "--lr", "0.05", "--weight-decay", "0.5",
                 "--jobs", "1", "--json", str(out)]) == 0
    for law in json.loads(out.read_text())["explanation"]["attribution"]:
        for c in law["components"]:
            signed = dict(c["signed"])
            total = signed.pop("measured")
            assert sum(signed.values()) == pytest.approx(total, rel=1e-12, abs=1e-15)
            if total:
                assert sum(c["signed_share"].values()) == pytest.approx(1.0, rel=1e-9)


def test_a_law_with_thousands_of_components_shows_its_largest_drifts_and_worst_rest():
    """A per-word law (embedding-across-classifier) printed one row per word: thousands of
    lines. The table keeps the largest drifts and the worst unexplained component."""
    import numpy as np

    from attnflow.explain_run import MAX_ROWS, format_explanation
    from numeric.replay import Attribution

    n = 40
    measured = np.arange(n, dtype=float)
    rest = np.zeros(n)
    rest[3] = 1e-3                                   # small drift, worst unexplained
    att = Attribution("embedding-across-classifier", [f"word {k}" for k in range(n)],
                      measured, {"assumptions": measured - rest}, accuracy=1e-9)
    report = {"method": "replay", "optimizer": dict(lr=0.1, weight_decay=0.0,
                                                    decoupled=False, momentum=0.0),
              "replay": None, "attribution": [att.to_dict()], "skipped": {},
              "violated_unattributed": [], "verdict": "not explained"}
    text = format_explanation(report)
    rows = [line.split()[1] for line in text.splitlines() if line.startswith("    word ")]
    assert rows == ["3"] + [str(k) for k in range(n - MAX_ROWS + 1, n)]
    assert f"({MAX_ROWS} of {n} components: the largest drifts and the worst unexplained; " \
           f"all in --json)" in text


@pytest.mark.parametrize("argv, message", [
    (["--lr", "1e-9"], "the limit is 3600 s (raise it with --max-replay-seconds)"),
    (["--lr", "0.05", "--max-replay-seconds", "1e-9"], "the limit is 1e-09 s "
                                                       "(--max-replay-seconds)"),
    (["--lr", "1e-300"], "more than any replay can take"),
    (["--lr", "1e-300", "--json", "{out}"], "more than any replay can take"),
    (["--lr", "0.0003"], "not multiples of lr = 0.0003"),
    (["--lr", "0.07", "--checkpoints-only"], "not multiples of lr = 0.07"),
    (["--max-replay-seconds", "10"], "--max-replay-seconds needs --lr"),
    (["--lr", "0.05", "--checkpoints-only", "--max-replay-seconds", "10"],
     "--max-replay-seconds needs --lr and a replay")])
def test_a_replay_that_cannot_or_should_not_run_is_refused_before_any_report(
        files, tmp_path, capsys, argv, message):
    """--lr 1e-9 replayed 3e9 steps (a hang); --lr 1e-300 overflowed the step count and
    printed "0 steps … CONSISTENT" beside an infinite distance (with --json: a traceback);
    --lr 0.0003 was refused only after the whole laws report. Each is now one line on
    stderr, exit 2, nothing printed or written before it."""
    import time

    out = tmp_path / "r.json"
    start = time.process_time()
    status = main(["laws", str(files / "good.npz"), *[a.format(out=out) for a in argv]])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == "" and not out.exists()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "estimated" in captured.err or "limit" not in message
    assert time.process_time() - start < 5


def test_the_replay_estimate_names_its_steps_and_time(files):
    from numeric.replay import Optimizer, explain, replay_cost
    from numeric.trajectory import Trajectory

    traj = Trajectory.load(files / "good.npz")
    cost = replay_cost(traj, Optimizer(0.05))
    assert cost.steps == 60 and 0 < cost.per_step < 1
    assert cost.seconds == pytest.approx(60 * cost.per_step)
    assert cost.refusal(0.05, cost.seconds * 2) == ""
    assert "60 replay steps" in cost.refusal(0.05, cost.seconds / 2)
    with pytest.raises(ValueError, match="the limit is 1e-09 s"):
        explain(traj, Optimizer(0.05), max_seconds=1e-9)
    assert replay_cost(traj, Optimizer(1e-9)).steps == 60 * 5 * 10 ** 7


def test_a_parameter_the_replay_does_not_move_is_null_in_the_json(tmp_path, capsys):
    """A trained query with zero gradient (keys at 0) moves neither in the run nor in the
    replay: its movement ratio 0/0 once ended --json in a traceback (non-finite number)."""
    from numeric.campaign import Config, build
    from numeric.integrate import gradient_descent

    s = build(Config(seed=3, trainable=("keys", "embeddings", "query"), key_scale=0.0,
                     a2=False))
    gradient_descent(s.params, s.data, s.spec, 0.05, 1, record_every=1).save(
        tmp_path / "one_step.npz")
    out = tmp_path / "r.json"
    assert main(["laws", str(tmp_path / "one_step.npz"), "--lr", "0.05", "--jobs", "1",
                 "--json", str(out)]) == 0
    query = json.loads(out.read_text())["explanation"]["replay"]["parameters"]["query"]
    assert query["movement_ratio"] is None
    assert "query                    0.00e+00     0.00e+00                         n/a" in \
        capsys.readouterr().out

"""Hostile input: what a careless or adversarial user can feed the API and every command.

Each case asserts the exact outcome: the error class and the name of the offending field or
option in the one-line message, or the verdict and the exit status (README, "Exit
statuses": 0 checked and holds, 1 violated, 2 bad usage or unreadable input, 3 nothing could
be checked).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import numeric
from attnflow.cli import main
from numeric import experiments, outputs
from numeric.campaign import Config, build
from numeric.data import read_sst_file, synthetic_topic_data
from numeric.integrate import gradient_descent, integrate_flow, rk4
from numeric.laws import check_laws
from numeric.model import Dataset, ModelSpec, check_params
from numeric.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    """``attnflow argv`` in process: (exit status, stdout, stderr); argparse's exit too."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status, err, *names):
    """Exit 2, one line on stderr naming every one of ``names``, no traceback."""
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)


def strict_load(text: str):
    """``json.loads`` that fails on NaN / Infinity (Python's reader accepts them)."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def finite_numbers_only(obj, where="$"):
    """Every number in a parsed report is finite (JSON null stands for a missing number)."""
    if isinstance(obj, float):
        assert math.isfinite(obj), where
    elif isinstance(obj, dict):
        for k, v in obj.items():
            finite_numbers_only(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            finite_numbers_only(v, f"{where}[{i}]")


# --- fixtures: small trajectories and files -----------------------------------------------

@pytest.fixture(scope="module")
def gd_run():
    """A short gradient-descent run of the paper's setting (every law evaluable)."""
    s = build(Config(seed=2, n_classes=3, m=5, n_sentences=10,
                     trainable=("keys", "embeddings", "classifier")))
    return s, gradient_descent(s.params, s.data, s.spec, 0.1, 60, record_every=20,
                               frozen_rows=s.frozen_rows)


@pytest.fixture(scope="module")
def files(gd_run, tmp_path_factory):
    """Trajectory files, good and damaged, by name."""
    s, traj = gd_run
    d = tmp_path_factory.mktemp("files")
    traj.save(d / "good.npz")
    good = (d / "good.npz").read_bytes()
    (d / "empty.npz").write_bytes(b"")
    (d / "truncated.npz").write_bytes(good[:len(good) // 2])
    (d / "corrupt.npz").write_bytes(bytes(range(256)) * 8)
    with open(d / "plain.npz", "wb") as f:
        np.save(f, traj.params["query"])
    (d / "text.npz").write_text("tokens,labels\n1,2\n")
    fields = dict(np.load(d / "good.npz"))
    np.savez(d / "object.npz", **dict(fields, topic_class=np.array([1, "x", None],
                                                                    dtype=object)))
    np.savez(d / "missing_query.npz", **{k: v for k, v in fields.items() if k != "query"})
    np.savez(d / "unknown_field.npz", **fields, velocity=np.zeros(3))
    np.savez(d / "time_backwards.npz", **dict(fields, time=fields["time"][::-1]))
    np.savez(d / "float_tokens.npz", **dict(fields, tokens=fields["tokens"] + 0.5))
    emb = fields["embeddings"].copy()
    emb[1, 0, 0] = np.nan
    np.savez(d / "nan_embeddings.npz", **dict(fields, embeddings=emb))
    with zipfile.ZipFile(d / "not_npy_member.npz", "w") as z:
        z.writestr("n_classes", "3")
    single = {k: (v[:1] if k in traj.params or k == "time" else v) for k, v in fields.items()}
    np.savez(d / "one_snapshot.npz", **single)
    still = {k: (np.repeat(v[:1], len(traj), axis=0) if k in traj.params else v)
             for k, v in fields.items()}
    np.savez(d / "identical.npz", **still)
    no_topic = {k: v for k, v in fields.items() if k != "topic_class"}
    np.savez(d / "no_topic_class.npz", **no_topic)
    return d


# --- command line: every numeric option and output path, checked before the work ---------

MISSING = "no/such/folder"

OPTION_CASES = [
    (["check", "--budget", "0"], "--budget"),
    (["check", "--budget", "-1"], "--budget"),
    (["check", "--budget", "nan"], "--budget"),
    (["check", "--budget", "inf"], "--budget"),
    (["check", "--budget", "ten"], "--budget"),
    (["check", "--workers", "0"], "--workers"),
    (["check", "--workers", "-1"], "--workers"),
    (["check", "--workers", "1.5"], "--workers"),
    (["check", "--seed", "-1"], "--seed"),
    (["check", "--trajectory", "-5"], "--trajectory"),
    (["check", "--json", f"{MISSING}/c.json"], "--json"),
    (["check", "--json", "."], "--json"),
    (["verify", "--budget", "0"], "--budget"),
    (["verify", "--budget", "nan"], "--budget"),
    (["verify", "--seed", "-3"], "--seed"),
    (["laws", "x.npz", "--tolerance", "-1"], "--tolerance"),
    (["laws", "x.npz", "--tolerance", "nan"], "--tolerance"),
    (["laws", "x.npz", "--tolerance", "inf"], "--tolerance"),
    (["laws", "x.npz", "--tolerance", "-inf"], "--tolerance"),
    (["laws", "x.npz", "--json", f"{MISSING}/l.json"], "--json"),
    (["laws", "x.npz", "--json", "."], "--json"),
    (["laws", "x.npz", "--lr", "0"], "--lr"),
    (["laws", "x.npz", "--lr", "nan"], "--lr"),
    (["laws", "x.npz", "--lr", "0.1", "--weight-decay", "-1"], "--weight-decay"),
    (["laws", "x.npz", "--lr", "0.1", "--momentum", "1"], "--momentum"),
    (["laws", "x.npz", "--lr", "0.1", "--jobs", "0"], "--jobs"),
    (["laws", "x.npz", "--momentum", "0.9"], "--lr"),           # needs --lr: before reading
    (["reproduce", "synthetic", "--epochs", "0"], "--epochs"),
    (["reproduce", "synthetic", "--epochs", "-2"], "--epochs"),
    (["reproduce", "synthetic", "--epochs", "2.5"], "--epochs"),
    (["reproduce", "ablation", "--seed", "-1"], "--seed"),
    (["reproduce", "synthetic", "--out", "README.md"], "--out"),
    (["reproduce", "synthetic", "--out", "README.md/sub"], "--out"),
    (["derive", "--render", "md", "--out", f"{MISSING}/d.md"], "--out"),
    (["derive", "--render", "md", "--out", "."], "--out"),
    (["derive", "--render", "pdf"], "--render"),
    (["audit", "--json", f"{MISSING}/c.json"], "--json"),
    (["audit", "--markdown", "."], "--markdown"),
    (["conjecture", "q", "--max-examples", "0"], "--max-examples"),
    (["conjecture", "q", "--certificate", f"{MISSING}/c.json"], "--certificate"),
    (["discover", "--classifier", "svm"], "--classifier"),
    (["frobnicate"], "frobnicate"),
    # errors the commands find after parsing: the same one line on stderr
    (["conjecture", "q[r] + foo"], "unknown symbol foo"),
    (["conjecture", "q[r]", "--assume", "A9"], "A9"),
    (["conjecture", "s[w] + c"], "uses c"),
    (["discover", "--trainable", "bogus"], "bogus"),
    (["discover", "--size", "words=0"], "words"),
]


@pytest.mark.parametrize("argv, option", OPTION_CASES, ids=[" ".join(a) for a, _ in
                                                             OPTION_CASES])
def test_bad_option_is_one_line_exit_2_naming_it(argv, option, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # README.md exists there, no/such/folder does not
    one_line_error(*run(argv, capsys)[::2], option)


def test_derive_out_without_render_is_refused(capsys):
    status, _, err = run(["derive", "--out", "x.md"], capsys)
    one_line_error(status, err, "--out", "--render")


# --- laws on damaged or inconsistent trajectory files -------------------------------------

FILE_CASES = [
    ("empty.npz", "not a readable trajectory archive"),
    ("truncated.npz", "not a readable trajectory archive"),
    ("corrupt.npz", "not a readable trajectory archive"),
    ("plain.npz", "plain .npy"),
    ("text.npz", "not a readable trajectory archive"),
    ("object.npz", "'topic_class' is an object array"),
    ("not_npy_member.npz", "'n_classes' is not a NumPy array"),
    ("missing_query.npz", "'query'"),
    ("unknown_field.npz", "'velocity'"),
    ("time_backwards.npz", "time must be strictly increasing"),
    ("float_tokens.npz", "tokens must be an integer array"),
    ("nan_embeddings.npz", "embeddings holds a non-finite value in snapshot 1"),
    ("does_not_exist.npz", "No such file"),
    (".", "Is a directory"),
]


@pytest.mark.parametrize("name, message", FILE_CASES, ids=[n for n, _ in FILE_CASES])
def test_unreadable_trajectory_file_is_exit_2_with_what_is_wrong(files, name, message,
                                                                 capsys):
    status, _, err = run(["laws", files / name], capsys)
    one_line_error(status, err, message)
    assert "pickle" not in err  # never the advice to load an untrusted file unsafely


@pytest.mark.parametrize("name, missing", [("one_snapshot.npz", "single snapshot"),
                                           ("identical.npz", "did not move")])
def test_vacuous_trajectory_is_not_checked_exit_3(files, name, missing, capsys, tmp_path):
    out = tmp_path / "r.json"
    status, printed, _ = run(["laws", files / name, "--json", out], capsys)
    report = strict_load(out.read_text())
    assert status == 3 and report["verdict"] == "not checked" and report["ok"] is False
    assert "NOTHING CHECKED" in printed and "HOLDS" not in printed
    applicable = [law for law in report["laws"] if law["applicable"]]
    assert applicable and all(law["verdict"] == "not checked" and missing in law["reason"]
                              for law in applicable)
    assert all(law["verdict"] != "holds" for law in report["laws"])
    finite_numbers_only(report)


def test_movement_below_the_accuracy_floor_is_not_evidence(gd_run):
    """Snapshots that differ only by rounding (relative 1e-15, below the 64ε floor) cannot
    tell conservation from standing still: "not checked", never "holds"."""
    _, traj = gd_run
    still = {n: np.repeat(x[:1], len(traj), axis=0) for n, x in traj.params.items()}
    wiggle = 1 + 1e-15 * np.arange(len(traj))[:, None, None]
    still["embeddings"] = still["embeddings"] * wiggle
    still["keys"] = still["keys"] * wiggle
    moved = Trajectory(traj.data, traj.spec, traj.time, still, frozen_rows=traj.frozen_rows)
    reports = {r.law: r for r in check_laws(moved, 0.01)}
    assert {r.verdict for r in reports.values()} <= {"not checked", "not applicable"}
    sen = reports["SEN"]
    assert sen.verdict == "not checked" and "accuracy floor" in sen.reason
    # the real run (60 steps of gradient descent: drift O(lr)) moves: it is evidence
    assert {r.law: r.verdict for r in check_laws(traj, 0.1)}["SEN"] == "holds"


def test_a_stated_optimizer_never_makes_a_vacuous_run_explained(files, capsys):
    """With --lr the laws are replayed; one snapshot has nothing to replay (exit 3), and
    snapshots that stand still while the replay moves are a mismatch (exit 1), never 0."""
    status, printed, err = run(["laws", files / "one_snapshot.npz", "--lr", "0.1"], capsys)
    assert status == 3 and "NOTHING CHECKED" in printed and not err
    status, printed, _ = run(["laws", files / "identical.npz", "--lr", "0.1"], capsys)
    assert status == 1 and "NOT EXPLAINED" in printed


def test_negative_tolerance_can_no_longer_pass_a_drift(gd_run):
    """The bug: tolerance −1 made every allowance negative, so every usage negative, so
    every law "held" at 100 % drift."""
    _, traj = gd_run
    for tolerance in (-1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="tolerance"):
            check_laws(traj, tolerance)
    with pytest.raises(ValueError, match="accuracy"):
        check_laws(traj, 0.01, accuracy=-1e-3)


def test_laws_never_overwrite_their_input(files, tmp_path, capsys):
    target = tmp_path / "run.npz"
    target.write_bytes((files / "good.npz").read_bytes())
    status, _, err = run(["laws", target, "--json", target], capsys)
    one_line_error(status, err, "--json", "input file")
    assert target.read_bytes() == (files / "good.npz").read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert run(["laws", target, "--json", link], capsys)[0] == 2


def test_undefined_law_is_null_with_a_reason_in_strict_json(files, tmp_path, capsys):
    out = tmp_path / "r.json"
    status, _, _ = run(["laws", files / "no_topic_class.npz", "--json", out], capsys)
    report = strict_load(out.read_text())
    sen = next(law for law in report["laws"] if law["law"] == "SEN")
    assert sen["verdict"] == "not applicable" and sen["relative_drift"] is None
    assert "topic_class" in sen["reason"]
    assert status == 0 and report["verdict"] == "holds"     # the balance laws were checked
    finite_numbers_only(report)


# --- the API: sizes, ids, parameters, integrator settings ---------------------------------

TOKENS, LABELS = np.array([[0, 1, -1], [2, 3, 4]]), np.array([0, 1])

DATASET_CASES = [
    (dict(n_words=5.9), "n_words"),
    (dict(n_classes=2.7), "n_classes"),
    (dict(n_words="7"), "n_words"),
    (dict(n_words=True), "n_words"),
    (dict(n_classes=np.float64(3.0)), "n_classes"),
    (dict(n_words=0), "n_words"),
    (dict(n_words=4), r"tokens\[1, 2\] = 4"),                  # an id equal to n_words
    (dict(tokens=np.array([[0, 2 ** 64 - 1]], dtype=np.uint64), labels=[0]), "tokens"),
    (dict(tokens=TOKENS.astype(float)), "tokens"),
    (dict(tokens=np.array([[-1, -1], [0, 1]])), "sentence 0"),
    (dict(labels=np.array([0, 2])), r"labels\[1\]"),
    (dict(topic_class=np.array([0, 0, -1, 5, -1])), r"topic_class\[3\]"),
]


@pytest.mark.parametrize("change, field", DATASET_CASES,
                         ids=[str(c)[:40] for c, _ in DATASET_CASES])
def test_dataset_refuses_to_coerce(change, field):
    kwargs = dict(tokens=TOKENS, labels=LABELS, n_words=5, n_classes=2)
    kwargs.update(change)
    with pytest.raises(ValueError, match=field):
        Dataset(**kwargs)


@pytest.mark.parametrize("change, field", [
    (dict(d=True), "ModelSpec.d"), (dict(d_key=2.0), "ModelSpec.d_key"),
    (dict(hidden=0), "ModelSpec.hidden"), (dict(d="4"), "ModelSpec.d"),
    (dict(trainable="keys"), "trainable"), (dict(trainable=("velocity",)), "velocity"),
    (dict(dtype="float16"), "dtype"), (dict(classifier="svm"), "classifier"),
    (dict(trainable=5), "trainable")])
def test_model_spec_refuses_to_coerce(change, field):
    with pytest.raises(ValueError, match=field):
        ModelSpec(**change)


@pytest.mark.parametrize("kwargs, field", [
    (dict(seed=1.5), "seed"), (dict(seed=-1), "seed"), (dict(query_scale=float("nan")),
                                                        "query_scale"),
    (dict(key_scale="0.3"), "key_scale"), (dict(embedding_scale=-1e-6), "embedding_scale")])
def test_init_params_refuses_bad_seeds_and_scales(kwargs, field):
    data = Dataset(TOKENS, LABELS, 5, 2)
    with pytest.raises(ValueError, match=field):
        numeric.init_params(ModelSpec(), data, **kwargs)


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_classes="4"), "n_classes"), (dict(m=2.5), "m"),
    (dict(n_nontopic=True), "n_nontopic"), (dict(n_sentences=3.0), "n_sentences")])
def test_synthetic_data_refuses_to_coerce(kwargs, field):
    with pytest.raises(ValueError, match=field):
        synthetic_topic_data(0, **kwargs)


@pytest.fixture(scope="module")
def problem():
    s = build(Config(seed=3))
    return s.params, s.data, s.spec


@pytest.mark.parametrize("kwargs, field", [
    (dict(t_eval=[0.1, float("nan"), 0.5]), r"t_eval\[1\]"),
    (dict(t_eval=[]), "t_eval"),
    (dict(t_eval=[0.5, 0.1]), "t_eval"),
    (dict(t_eval=[0.1, 2.0]), "t_eval"),
    (dict(rtol=-1), "rtol"),
    (dict(rtol=1e-20), "rtol"),
    (dict(atol=float("nan")), "atol"),
    (dict(max_evaluations=0), "max_evaluations"),
    (dict(t_end=0.0), "t_end"),
    (dict(t_end="1.0"), "t_end")])
def test_integrate_flow_refuses_bad_settings(problem, kwargs, field):
    kwargs = {"t_end": 1.0, **kwargs}
    with pytest.raises(ValueError, match=field):
        integrate_flow(*problem, **kwargs)


@pytest.mark.parametrize("step, value, field", [
    ("lr", "0.1", "lr"), ("lr", True, "lr"), ("lr", float("nan"), "lr"), ("lr", -0.1, "lr"),
    ("steps", 2.0, "steps"), ("steps", -1, "steps"), ("steps", True, "steps"),
    ("record_every", 0, "record_every"), ("dt", 0.0, "dt")])
def test_fixed_step_integrators_refuse_bad_settings(problem, step, value, field):
    kwargs = {"lr": 0.1, "steps": 2, step: value}
    if step == "dt":
        with pytest.raises(ValueError, match=field):
            rk4(*problem, value, 2)
        return
    with pytest.raises(ValueError, match=field):
        gradient_descent(*problem, **kwargs)


def test_parameters_of_the_wrong_dtype_or_value_are_named(problem):
    params, data, spec = problem
    p32 = dict(params, keys=params["keys"].astype(np.float32))
    with pytest.raises(ValueError, match="'keys' has dtype float32"):
        check_params(p32, spec, data)
    bad = dict(params, query=np.where(np.arange(spec.d_key) == 0, np.inf, params["query"]))
    with pytest.raises(ValueError, match="'query' holds a non-finite value"):
        check_params(bad, spec, data)
    with pytest.raises(ValueError, match=r"frozen_rows\['keys'\]"):
        gradient_descent(params, data, spec, 0.1, 1, frozen_rows={"keys": [data.n_words]})


@pytest.mark.parametrize("call, field", [
    (lambda p, d, s: numeric.loss(p, d, "linear"), "spec"),
    (lambda p, d, s: numeric.loss(p, (d.tokens, d.labels), s), "data"),
    (lambda p, d, s: numeric.loss(list(p.values()), d, s), "params"),
    (lambda p, d, s: numeric.gradient(p, d, s, wrt=("velocity",)), "velocity"),
    (lambda p, d, s: numeric.loss({**p, "bias": p["query"]}, d, s), "bias")])
def test_engine_entry_points_name_what_is_wrong(problem, call, field):
    with pytest.raises(ValueError, match=field):
        call(*problem)


def test_sst_file_with_old_mac_line_endings_reads_as_lines(tmp_path):
    (tmp_path / "cr.txt").write_bytes(b"1 a fine film\r0 a dull one\r1 good\r")
    assert read_sst_file(tmp_path / "cr.txt", 2) == [(1, ["a", "fine", "film"]),
                                                     (0, ["a", "dull", "one"]),
                                                     (1, ["good"])]
    (tmp_path / "bad.txt").write_bytes(b"1 fine\r7 odd label\r")
    with pytest.raises(ValueError, match="line 2: unknown label '7'"):
        read_sst_file(tmp_path / "bad.txt", 2)


def test_trajectory_load_refuses_damaged_files_without_pickle_advice(files):
    for name in ("empty.npz", "truncated.npz", "corrupt.npz", "text.npz"):
        with pytest.raises(ValueError, match="not a readable trajectory archive") as err:
            Trajectory.load(files / name)
        assert "pickle" not in str(err.value)


# --- outputs that cannot mix runs ---------------------------------------------------------

def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, capsys):
    with outputs.claim_folder(tmp_path / "out"):
        with (pytest.raises(outputs.OutputError, match="in use by another attnflow run"),
              outputs.claim_folder(tmp_path / "out")):
            pass
        status, _, err = run(["reproduce", "ablation", "--epochs", "1", "--out",
                              tmp_path / "out"], capsys)
        one_line_error(status, err, "in use", str(tmp_path / "out"))
    with outputs.claim_folder(tmp_path / "out"):                    # free again afterwards
        pass
    assert not (tmp_path / "out" / outputs.LOCK_NAME).exists()


def test_a_mistyped_data_folder_leaves_the_previous_results_alone(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    status, _, err = run(["reproduce", "sst2", "--data", tmp_path / "nowhere", "--out",
                          tmp_path], capsys)
    one_line_error(status, err, "stsa.binary.train")
    assert (tmp_path / "results.json").exists()


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    (tmp_path / outputs.LOCK_NAME).write_text("process 999999999")   # no flock held
    with outputs.claim_folder(tmp_path) as out:
        assert out == tmp_path


def test_a_new_run_clears_the_previous_results_and_their_figures_only(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(
        {"models": {"A": {"figures": ["a_sen.png", "a_sen.pdf", "../escape.png"]}}}))
    for name in ("a_sen.png", "a_sen.pdf", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path.parent / "escape.png").write_text("keep")
    with outputs.claim_folder(tmp_path):
        assert sorted(p.name for p in tmp_path.iterdir()) == [outputs.LOCK_NAME, "notes.txt"]
    assert (tmp_path.parent / "escape.png").exists()


def test_an_interrupted_write_keeps_the_old_file_whole(tmp_path):
    target = tmp_path / "results.json"
    outputs.write_json(target, {"run": 1})
    with pytest.raises(KeyboardInterrupt), outputs.atomic_path(target) as tmp:
        tmp.write_text('{"run": 2, "half')
        raise KeyboardInterrupt
    assert strict_load(target.read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]   # no temp left


def test_non_finite_numbers_never_reach_a_report(tmp_path):
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=r"\$\.laws\[1\]\.drift"):
            outputs.write_json(tmp_path / "r.json", {"laws": [{}, {"drift": bad}]})
    assert not (tmp_path / "r.json").exists()


def test_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    from attnflow.commands import verify

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(verify, "run", interrupted)
    status, _, err = run(["verify"], capsys)
    assert status == 130 and err.strip() == "attnflow verify: interrupted"


def test_output_piped_into_head_ends_without_a_traceback(files, tmp_path):
    """``attnflow laws FILE --json OUT | head -1``: the reader closes the pipe after one line;
    the command still writes OUT and exits with its verdict, without a traceback."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "attnflow", "laws", str(files / "good.npz"),
                             "--tolerance", "0.1", "--json", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert strict_load(out.read_text())["verdict"] == "holds"


def test_atomic_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = outputs.write_text(tmp_path / "new.md", "x")
        assert path.stat().st_mode & 0o777 == 0o644     # not mkstemp's private 0600
        path.chmod(0o640)
        outputs.write_text(path, "y")
        assert path.stat().st_mode & 0o777 == 0o640     # a replaced file keeps its mode
    finally:
        os.umask(umask)


# --- every report: strict JSON, every number finite or null -------------------------------

def test_every_report_is_strict_json_with_finite_numbers(files, tmp_path, capsys):
    reports = []
    for name in ("good.npz", "one_snapshot.npz", "identical.npz", "no_topic_class.npz"):
        out = tmp_path / f"{name}.json"
        run(["laws", files / name, "--json", out], capsys)
        reports.append(out)
    out = tmp_path / "check.json"
    status = run(["check", "--budget", "1", "--workers", "1", "--out", tmp_path / "check",
                  "--json", out], capsys)[0]
    assert status in (0, 3) and out.exists()   # 1 s may find no case to check (exit 3)
    reports += [out, tmp_path / "check" / "report.json"]
    data = synthetic_topic_data(0, n_classes=2, topics_per_class=1, n_nontopic=30, m=3,
                                n_sentences=60, n_train=40, n_valid=10)
    experiments.run_ablation(tmp_path / "ablation", epochs=3, data=data, progress=False)
    reports.append(tmp_path / "ablation" / "results.json")
    # 3 epochs end before SEN_FROM_EPOCH: the late-epoch figures are undefined (null)
    experiments.run_synthetic(tmp_path / "synthetic", epochs=3, data=data, progress=False,
                              models=("Attn-FC",))
    reports.append(tmp_path / "synthetic" / "results.json")
    assert strict_load(reports[-1].read_text())["models"]["Attn-FC"]["sen"][
        "max_rel_distance"] is None
    for path in reports:
        finite_numbers_only(strict_load(path.read_text()), str(path))



# --- files that would make the reader allocate, inflate or guess --------------------------

def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def _archive(path, members, compression=zipfile.ZIP_STORED):
    """A zip of ``(member name, bytes)`` pairs in order (a name may repeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a repeated name
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def test_a_field_stored_twice_is_refused(files, tmp_path, capsys):
    """Two members named embeddings.npy: numpy.load kept the last one silently, so the laws
    were checked on whichever copy came last."""
    fields = dict(np.load(files / "good.npz"))
    still = np.repeat(fields["embeddings"][:1], len(fields["time"]), axis=0)
    path = _archive(tmp_path / "twice.npz", [(f"{k}.npy", _npy(v)) for k, v in fields.items()]
                    + [("embeddings.npy", _npy(still))])
    status, _, err = run(["laws", path, "--tolerance", "0.1"], capsys)
    one_line_error(status, err, "'embeddings' is stored more than once")


def test_a_header_claiming_more_entries_than_its_member_holds_is_refused_unread(files,
                                                                               tmp_path,
                                                                               capsys):
    """A .npy header declaring 3.3e11 entries over 64 bytes of data: numpy allocated the
    declared 2.4 TiB first and the command ended in a MemoryError traceback."""
    fields = dict(np.load(files / "good.npz"))
    huge = _npy_header((3, 110_000_000_000, 1)) + bytes(64)
    path = _archive(tmp_path / "huge.npz", [(f"{k}.npy", huge if k == "embeddings" else
                                             _npy(v)) for k, v in fields.items()])
    status, _, err = run(["laws", path], capsys)
    one_line_error(status, err, "'embeddings' declares shape (3, 110000000000, 1)",
                   "holds 64 bytes")


def _bomb(path, fields, name, entries):
    """``fields`` with ``name`` replaced by ``entries`` float64 zeros, deflated: a few kB
    that declare ``8·entries`` bytes once inflated."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for k, v in fields.items():
            if k != name:
                z.writestr(f"{k}.npy", _npy(v))
        with z.open(f"{name}.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((entries,)))
            chunk = bytes(1 << 20)
            for _ in range(8 * entries // len(chunk)):
                member.write(chunk)
    return path


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(files, tmp_path):
    """A deflated member declaring 64 MB of zeros beside a 61-entry loss_time: every byte was
    inflated before the loss lengths were compared; its header alone now says it cannot
    belong to this trajectory."""
    import tracemalloc

    fields = dict(np.load(files / "good.npz"))
    path = _bomb(tmp_path / "bomb.npz", fields, "loss", 8 << 20)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"loss \(8388608,\) and loss_time \(61,\)"):
            Trajectory.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_a_file_declaring_more_than_the_memory_limit_is_refused_with_both(files, tmp_path,
                                                                          capsys,
                                                                          monkeypatch):
    """Sizes that agree with each other but exceed what the machine may give one input:
    refused from the zip directory, with the declared size and the limit."""
    import numeric.limits

    monkeypatch.setattr(numeric.limits, "memory_limit", lambda: 2000)
    status, _, err = run(["laws", files / "good.npz"], capsys)
    one_line_error(status, err, "once uncompressed", "the limit is 2 kB")


def test_a_damaged_member_is_named_not_a_traceback(files, tmp_path, capsys):
    """A member whose data ends early, and one whose npy version is unknown."""
    fields = dict(np.load(files / "good.npz"))
    short = _npy(fields["query"])[:-8]
    path = _archive(tmp_path / "short.npz", [(f"{k}.npy", short if k == "query" else _npy(v))
                                              for k, v in fields.items()])
    status, _, err = run(["laws", path], capsys)
    one_line_error(status, err, "'query' declares shape")
    odd = b"\x93NUMPY\x09\x00" + _npy(fields["query"])[8:]
    path = _archive(tmp_path / "odd.npz", [(f"{k}.npy", odd if k == "query" else _npy(v))
                                            for k, v in fields.items()])
    status, _, err = run(["laws", path], capsys)
    one_line_error(status, err, "'query' uses .npy format version 9.0")


# --- output folders that cannot be written ------------------------------------------------

@pytest.mark.parametrize("kind", ["dangling link", "link loop", "below a link loop"])
def test_an_output_folder_that_cannot_be_followed_is_one_line_exit_2(kind, tmp_path, capsys):
    """--out into a symbolic link to nothing or a loop of links ended in a FileExistsError
    or ELOOP traceback."""
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    out = {"dangling link": tmp_path / "dangling", "link loop": tmp_path / "loop",
           "below a link loop": tmp_path / "loop" / "sub"}[kind]
    status, _, err = run(["reproduce", "synthetic", "--epochs", "1", "--out", out], capsys)
    one_line_error(status, err, "--out", str(out))
    assert not (tmp_path / "nowhere").exists()


def test_a_read_only_output_folder_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """The lock file cannot be made in a read-only folder: a PermissionError traceback."""
    out = tmp_path / "read-only"
    out.mkdir()
    if os.geteuid() == 0:  # permissions do not bind root: the file system refuses instead
        def refused(path):
            raise PermissionError(13, "Permission denied", str(path))
        monkeypatch.setattr(outputs, "_lock", refused)
    else:
        out.chmod(0o555)
    try:
        status, _, err = run(["reproduce", "ablation", "--epochs", "1", "--out", out], capsys)
    finally:
        out.chmod(0o755)
    one_line_error(status, err, f"cannot write into {out}", "Permission denied")


# --- a terminated run takes its workers with it ---------------------------------------------

def _children(pid: int) -> dict[int, str]:
    """pid → command line of the processes whose parent is ``pid`` (Linux /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(entry)] = cmdline.decode(errors="replace")
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


def _read_available(stream, seconds: float = 5.0) -> bytes:
    """What ``stream`` holds until its end, or until it stays silent for ``seconds``."""
    import select

    data = b""
    while select.select([stream], [], [], seconds)[0]:
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        data += chunk
    return data


def _terminate_when(argv, ready: bytes, out: Path, group: bool = False):
    """Start ``attnflow argv``, wait until stderr shows ``ready``, note its child processes,
    send SIGTERM to it alone (the workers get nothing from outside) or to its whole process
    group (as ``timeout`` or a service manager do), and wait for it to exit. (exit status,
    stderr, the workers it had, those still running at its exit, files at its exit)."""
    from test_campaign import HANG_SECONDS, read_until

    proc = subprocess.Popen([sys.executable, "-m", "attnflow", *map(str, argv)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        seen = read_until(proc, ready)
        workers = {pid: cmd for pid, cmd in _children(proc.pid).items()
                   if "resource_tracker" not in cmd}  # ends with its pipe, after the parent
        (os.killpg if group else os.kill)(proc.pid, signal.SIGTERM)
        proc.wait(timeout=HANG_SECONDS)   # not for its stderr: a surviving worker holds it
        at_exit = _files(out)
        survivors = [cmd for pid, cmd in workers.items() if _running(pid)]
        err = _read_available(proc.stderr)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers if "workers" in locals() else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return proc.returncode, (seen + err).decode(errors="replace"), workers, survivors, at_exit


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_sigterm_to_reproduce_ends_its_workers_before_it_releases_the_folder(tmp_path):
    """SIGTERM to ``reproduce --jobs 2`` killed the parent alone: its workers ran on and
    wrote every figure into the folder after the parent had died and its lock was gone."""
    out = tmp_path / "out"
    status, err, workers, survivors, at_exit = _terminate_when(
        ["reproduce", "synthetic", "--epochs", "2000", "--jobs", "2", "--out", out],
        rb"[1-9]\d*/\d+ \[", out)
    assert len(workers) >= 2, workers              # the pool was running
    assert survivors == [], survivors
    assert status == 143 and err.strip().endswith("attnflow reproduce: terminated (SIGTERM)")
    assert "Traceback" not in err and "leaked" not in err
    assert outputs.LOCK_NAME not in at_exit        # released, and only now
    time.sleep(1)
    assert _files(out) == at_exit                  # nothing written after the exit


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("group", [False, True], ids=["parent", "process group"])
def test_sigterm_to_check_ends_its_workers_and_still_reports(group, tmp_path):
    """After SIGTERM to ``check``, its two shard workers and the queue's manager were still
    alive 30 s later; sent to the whole group (``timeout``), the manager died first and the
    run ended in a ConnectionResetError traceback, the shards' work lost."""
    status, err, workers, survivors, at_exit = _terminate_when(
        ["check", "--budget", "3600", "--workers", "2", "--out", tmp_path],
        rb"trajectories=[1-9]", tmp_path, group)
    assert len(workers) >= 2, workers
    assert survivors == [], survivors
    assert status == 130 and "Traceback" not in err, err[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] and report["trajectories"] >= 1
    time.sleep(1)
    assert _files(tmp_path) == at_exit


# --- sizes priced before any work ---------------------------------------------------------

@pytest.mark.parametrize("size", ["words=1000", "d=100000", "max_len=50",
                                  "words=40,d=40,d_key=40", f"words={10 ** 400}"])
def test_discover_refuses_sizes_it_cannot_finish_with_the_estimate_and_the_limit(
        size, capsys, monkeypatch):
    """words=1000 ended in a MemoryError after 6 GB (every bag of three words became a
    field object); d=100000, max_len=50 and 40×40×40 counted for hours without a word."""
    import symbolic.discover

    def counted(*args, **kwargs):
        raise AssertionError("the count started")
    monkeypatch.setattr(symbolic.discover, "count_laws", counted)
    status, _, err = run(["discover", "--size", size], capsys)
    one_line_error(status, err, "--size too large", "estimated to take", "of memory",
                   "--max-seconds", "half of this machine's memory")


def test_discover_refuses_past_its_time_limit_and_runs_within_it(capsys, monkeypatch):
    """The default sizes are estimated well within the default limit; --max-seconds below
    that estimate refuses them (the limit is the user's to raise)."""
    from attnflow.commands.discover import MAX_SECONDS, check_cost
    from symbolic.discover import Setting, estimate_cost

    cost = estimate_cost(Setting())
    assert 1 < cost.seconds < MAX_SECONDS / 10 and cost.bytes < 2e9
    check_cost(Setting(), True, MAX_SECONDS)
    status, _, err = run(["discover", "--max-seconds", "1"], capsys)
    one_line_error(status, err, "the limits are 1 s (--max-seconds)")


@pytest.mark.parametrize("name", ["words", "d", "d_key", "classes", "hidden", "max_len"])
def test_every_size_raises_the_estimate(name):
    from symbolic.discover import Setting, estimate_cost

    base = Setting("mlp")
    bigger = Setting("mlp", **{name: getattr(base, name) + 2})
    assert estimate_cost(bigger).seconds > estimate_cost(base).seconds
    assert estimate_cost(bigger).bytes >= estimate_cost(base).bytes
    assert (estimate_cost(base, closed_forms=False).seconds
            < estimate_cost(base, closed_forms=True).seconds)


@pytest.mark.parametrize("case", ["seed=1,n_sentences=100000000", "seed=1,d=100000000",
                                  "seed=1,m=1000000,n_sentences=1000",
                                  f"seed=1,n_nontopic={10 ** 500}"])
def test_a_rerun_case_too_large_to_run_is_refused_before_it_is_built(case, capsys,
                                                                     monkeypatch):
    """check --trajectory with 10⁸ sentences allocated 2.2 GB of tokens (a MemoryError
    traceback under a memory limit, minutes of work without one) before anything failed."""
    import numeric.campaign

    def built(*args, **kwargs):
        raise AssertionError("the case was built")
    monkeypatch.setattr(numeric.campaign, "build", built)
    status, _, err = run(["check", "--trajectory", case], capsys)
    one_line_error(status, err, "--trajectory", "case too large", "may take up to",
                   "the limits are")


def test_campaign_sized_cases_are_priced_within_the_limits():
    from numeric.campaign import MAX_CASE_SECONDS

    largest = Config(seed=1, n_classes=5, topics_per_class=3, n_nontopic=15, n_sentences=60,
                     m=25, d=8, d_key=8, classifier="mlp", hidden=5)
    seconds, memory = largest.cost()
    assert seconds < MAX_CASE_SECONDS / 10 and memory < 1e8
    largest.check_cost()


def test_check_into_a_read_only_folder_is_refused_before_the_campaign(tmp_path, capsys,
                                                                      monkeypatch):
    """The campaign ran its whole budget, then writing report.json failed with a
    PermissionError traceback."""
    from numeric import campaign

    def ran(*args, **kwargs):
        raise AssertionError("the campaign started")
    monkeypatch.setattr(campaign, "run_campaign", ran)
    out = tmp_path / "read-only"
    out.mkdir()
    if os.geteuid() == 0:  # permissions do not bind root: the file system refuses instead
        def refused(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(outputs.tempfile, "mkstemp", refused)
    else:
        out.chmod(0o555)
    try:
        status, _, err = run(["check", "--budget", "1", "--out", out], capsys)
    finally:
        out.chmod(0o755)
    one_line_error(status, err, f"cannot write into {out}", "Permission denied")


@pytest.mark.parametrize("experiment", ["synthetic", "ablation"])
def test_epochs_whose_records_exceed_the_memory_limit_are_refused_first(experiment, tmp_path,
                                                                        capsys, monkeypatch):
    """--epochs 10¹² started six runs whose per-epoch records (loss, traced scores) grow
    without bound; refused now before the folder's previous results are touched."""
    def trained(*args, **kwargs):
        raise AssertionError("the runs started")
    monkeypatch.setattr(experiments, "run_jobs", trained)
    (tmp_path / "results.json").write_text("{}")
    status, _, err = run(["reproduce", experiment, "--epochs", 10 ** 12, "--out", tmp_path],
                         capsys)
    one_line_error(status, err, "epochs = 1000000000000", "per-epoch records", "the limit is")
    assert (tmp_path / "results.json").read_text() == "{}"
    experiments.check_epochs(experiments.ABLATION_EPOCHS, 6)             # the paper's fit


def test_more_workers_than_memory_can_hold_are_refused_before_one_starts(tmp_path, capsys,
                                                                         monkeypatch):
    """check --workers 100000 spawned a process per shard as they were submitted, about
    100 MB each, until the machine ran out of memory."""
    import numeric.executors

    def started(*args, **kwargs):
        raise AssertionError("worker processes were started")
    monkeypatch.setattr(numeric.executors, "LocalProcesses", started)
    status, _, err = run(["check", "--workers", 100000, "--budget", "1", "--out", tmp_path],
                         capsys)
    one_line_error(status, err, "workers = 100000", "the limit is")

"""The paper's experiments end to end on a reduced size, and their measurements."""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numeric
from attnflow.commands import reproduce
from numeric import experiments as ex
from numeric.data import Splits, load_sst, synthetic_topic_data
from tests.conftest import thorough

# Two classes of one topic word each and m = 5: the topic words take a larger share of the
# gradient, so 300 epochs here go as far as about 4000 on the paper's data.
SMALL = dict(n_classes=2, topics_per_class=1, n_nontopic=200, m=5, n_sentences=400,
             n_train=300, n_valid=20)


def check_figures(out: Path, names):
    for name in names:
        data = (out / name).read_bytes()
        magic = b"\x89PNG" if name.endswith(".png") else b"%PDF"
        assert data.startswith(magic) and len(data) > 1000, name


def check_results_file(out: Path, results: dict):
    assert json.loads((out / "results.json").read_text()) == results


@given(s=st.floats(0, 30), m=st.integers(1, 60))
def test_points_on_the_sen_curve_have_distance_zero(s, m):
    y = np.sqrt(2 * (s + np.expm1(s) / m))
    assert ex.sen_distance(s, y, m) < 1e-12


@given(s=st.floats(0.01, 30), m=st.integers(1, 60), factor=st.floats(1.03, 3))
def test_points_off_the_sen_curve_are_caught(s, m, factor):
    """Negative control: a point 3 % or more above or below the curve is measured as such."""
    y = np.sqrt(2 * (s + np.expm1(s) / m))
    for off in (y * factor, y / factor):
        assert ex.sen_distance(s, off, m) == pytest.approx(1 - 1 / factor)


def test_orthogonal_distance_measures_the_normal_offset():
    m, s0 = 20, 1.0
    s = np.linspace(0.0, 3.0, 40)
    assert ex.sen_orthogonal_distance(s, ex.sen_curve(s, m), m).max() < 1e-12
    y0 = ex.sen_curve(s0, m)
    slope = (1 + np.exp(s0) / m) / y0
    normal = np.array([-slope, 1.0]) / np.hypot(slope, 1.0)
    point = np.array([s0, y0]) + 0.01 * normal
    assert ex.sen_orthogonal_distance(*point, m) == pytest.approx(
        0.01 / np.hypot(*point), rel=1e-3)
    # negative control: 5 % above the curve is more than 2 % away
    assert ex.sen_orthogonal_distance(2.0, 1.05 * ex.sen_curve(2.0, m), m) > 0.02
    # near the origin, where the curve is vertical, a lag in s is a small distance
    assert ex.sen_orthogonal_distance(1e-10, 1e-3, m) < 1e-3 < 0.9 < ex.sen_distance(
        1e-10, 1e-3, m)


def test_sen_distance_edge_cases():
    assert ex.sen_distance(0.0, 0.0, 20) == 0.0
    assert ex.sen_distance(0.0, 1e-6, 20) == 1.0   # the curve starts at the origin
    assert ex.sen_distance(-1e-3, 0.1, 20) == 1.0  # negative scores lie off the curve
    assert np.isnan(ex.sen_curve(-0.5, 20))


def test_epochs_to_threshold():
    assert ex.epochs_to_threshold(np.array([1.0, 0.5, 0.09, 0.2]), 0.1) == 2
    assert ex.epochs_to_threshold(np.array([1.0, 0.5]), 0.1) is None


def test_synthetic_end_to_end(tmp_path):
    data = synthetic_topic_data(0, **SMALL)
    r = ex.run_synthetic(tmp_path, epochs=300, data=data, progress=False)
    check_results_file(tmp_path, r)
    assert list(r["models"]) == ["Attn-FC", "Attn-TC", "Attn-TL"]
    for name, m in r["models"].items():
        tag = name.lower()
        assert sorted(m["figures"]) == sorted(f"{tag}_{kind}.{ext}" for kind in
                                              ("sen", "loss", "distributions")
                                              for ext in ("png", "pdf"))
        check_figures(tmp_path, m["figures"])
        assert 0 <= m["test_accuracy"] <= 1 and 0 <= m["train_accuracy"] <= 1
        assert m["test_accuracy"] == 1.0 and m["final_train_loss"] < 0.1
        assert len(m["final"]["topic_scores"]) == 2
        sen = m["sen"]
        assert sen["m"] == 5 and 0 < sen["within_tolerance_from_epoch"] <= 300
        assert sen["start_up_max_abs_distance"] < 0.05  # the start-up lag is near the origin
        assert len(sen["per_word_max_rel_distance"]) == 2
        assert max(sen["per_word_max_rel_distance"]) == sen["max_rel_distance"]
    # under A1-A3 up to small non-topic motion, Attn-FC follows the curve closely
    assert r["models"]["Attn-FC"]["sen"]["max_rel_distance"] < 0.02
    assert r["models"]["Attn-FC"]["sen"]["max_orthogonal_rel_distance"] < 0.02
    assert r["models"]["Attn-FC"]["sen"]["within_tolerance"]
    # topic words move, non-topic words barely
    fc = r["models"]["Attn-FC"]["final"]
    assert min(fc["topic_norms"]) > 10 * fc["nontopic_norm_mean"]


def test_same_seed_same_numbers():
    a, b, c = (ex.train_topic_model("Attn-TL", ex.model_spec("Attn-TL"),
                                    synthetic_topic_data(seed, **SMALL), 60, seed=seed,
                                    embedding_scale=0.1, progress=False) for seed in (1, 1, 2))
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.trace.scores, b.trace.scores)
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
    assert not np.array_equal(a.loss, c.loss)


def test_ablation_end_to_end(tmp_path):
    data = synthetic_topic_data(0, **SMALL)
    r = ex.run_ablation(tmp_path, epochs=300, data=data, threshold=0.3, progress=False)
    check_results_file(tmp_path, r)
    check_figures(tmp_path, r["figures"])
    assert sorted(r["figures"]) == ["ablation.pdf", "ablation.png"]
    assert len(r["runs"]) == 6 and r["loss_threshold"] == 0.3
    for model in ("Attn-FC", "Attn-TC"):
        both = r["runs"][f"{model}, both trained"]["epochs_to_threshold"]
        assert both is not None
        for variant in ("keys frozen", "embeddings frozen"):
            frozen = r["runs"][f"{model}, {variant}"]["epochs_to_threshold"]
            assert frozen is None or frozen > both, (model, variant)
    assert r["runs"]["Attn-FC, keys frozen"]["final_mean_topic_score"] == 0.0


def small_sst(folder, task):
    full = load_sst(folder, task)
    return Splits(full.train.subset(slice(0, 500)), full.valid.subset(slice(0, 100)),
                  full.test.subset(slice(0, 200)), full.words)


@pytest.mark.parametrize("task", ["sst2", "sst5"])
def test_sst_end_to_end(tmp_path, task, sst_dir):
    r = ex.run_sst(tmp_path, sst_dir, task, epochs=40, data=small_sst(sst_dir, task), eval_every=5,
                   patience=3, progress=False)
    check_results_file(tmp_path, r)
    assert 0 < r["uniform_pick_purity"] <= 1
    for m in r["models"].values():
        check_figures(tmp_path, m["figures"])
        assert len(m["figures"]) == 6
        assert 0 <= m["test_accuracy"] <= 1
        assert m["best_epoch"] <= m["epochs_run"] <= 40
        top = m["top_words"]
        assert len(top) == ex.SST_TOP_WORDS
        assert all(w["word"] != "<unk>" and w["m"] >= 0 for w in top)
        assert [w["score"] for w in top] == sorted((w["score"] for w in top), reverse=True)
        assert all(0 <= v <= 1 for v in m["picked_purity"]["values"])


def test_label_purity_and_sentence_length():
    data = numeric.Dataset([[1, 2, 2], [1, 3, -1], [1, -1, -1]], [0, 1, 0], 5, 2)
    purity = ex.label_purity(data)
    assert purity[1] == pytest.approx(2 / 3) and purity[2] == 1 and purity[3] == 1
    assert np.isnan(purity[0]) and np.isnan(purity[4])
    length = ex.mean_sentence_length(data)
    assert length[1] == pytest.approx(2) and length[2] == 3 and length[3] == 2
    # attention on word 2 in sentence 0; a tie between 1 and 3 in sentence 1
    attention = np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    expected = np.mean([1.0, (2 / 3 + 1) / 2, 2 / 3])
    assert ex.picked_purity(attention, data, purity) == pytest.approx(expected)


def cli(argv):
    parser = argparse.ArgumentParser()
    reproduce.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.usefixtures("figures_skipped")
def test_cli_runs_and_reports(tmp_path, capsys):
    assert cli(["reproduce", "ablation", "--epochs", "2", "--out", str(tmp_path),
                "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "Attn-TC, embeddings frozen" in printed and "wall time" in printed
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["epochs"] == 2 and results["seed"] == 3


def test_cli_rejects_bad_arguments(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(reproduce.SST_ENV, raising=False)
    assert cli(["reproduce", "sst2", "--out", str(tmp_path)]) == 2
    assert f"or set {reproduce.SST_ENV}=DIR" in capsys.readouterr().err
    assert cli(["reproduce", "ablation", "--data", str(tmp_path)]) == 2
    assert cli(["reproduce", "sst5", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["reproduce", "synthetic", "--epochs", "0"])
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            cli(["reproduce", "synthetic", "--jobs", bad])
    assert "--jobs" in capsys.readouterr().err


def tiny_sst():
    """An SST-shaped set without the text files: the reduced synthetic task (words unnamed)."""
    return synthetic_topic_data(0, **SMALL)


@pytest.mark.parametrize("experiment", ["sst", pytest.param("synthetic", marks=pytest.mark.skipif(
    not thorough(), reason="thorough profile only (SST covers the worker path in CI)"))])
def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path, experiment):
    """Same seed → the same results.json byte for byte, whether the models run one after
    the other here or in worker processes; wall times stay out of it."""
    data = tiny_sst()
    texts = []
    for jobs in (None, 2) + ((1,) if thorough() else ()):
        out = tmp_path / str(jobs)
        if experiment == "synthetic":
            ex.run_synthetic(out, epochs=30, data=data, progress=False, jobs=jobs,
                             models=("Attn-FC", "Attn-TL"))
        else:
            ex.run_sst(out, None, "sst2", epochs=12, data=data, eval_every=4, patience=2,
                       progress=False, jobs=jobs)
        texts.append((out / "results.json").read_bytes())
        timings = ex.read_timings(out)
        assert timings["jobs"] == jobs and all(s > 0 for s in timings["wall_time_s"].values())
    assert len(set(texts)) == 1
    assert b"wall_time" not in texts[0]


def test_bad_jobs_are_rejected(tmp_path):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="jobs must be a positive integer"):
            ex.run_synthetic(tmp_path, epochs=1, data=tiny_sst(), progress=False, jobs=bad)


def test_auto_worker_count_shares_the_cores_only_where_that_finishes_sooner():
    """Shared equally, costs 1.5, 1, 1 on two cores end at 2 (the cheap runs finish at 1.5,
    the costly one has 0.5 left), as one worker per core does: no gain, two workers. With
    costs 1.7, 1.3, 1.3 (the synthetic set's: 1.45 per epoch and its figures), one worker
    per core ends at 2.6, three sharing at 2.35: three. Six runs balance on two workers;
    one core or one job: one worker."""
    def jobs(*costs):
        return [ex.Job(f"run {n}", 1, started_at, cost=c) for n, c in enumerate(costs)]
    assert ex.makespan([1.5, 1, 1], 2, 2) == pytest.approx(2.0)
    assert ex.makespan([1.5, 1, 1], 2, 3) == pytest.approx(2.0)
    assert ex.makespan([1.7, 1.3, 1.3], 2, 2) == pytest.approx(2.6)
    assert ex.makespan([1.7, 1.3, 1.3], 2, 3) == pytest.approx(1.95 + 0.4)
    assert ex.makespan([3, 1, 1], 2, 2) == pytest.approx(3.0)
    assert ex.worker_count(jobs(1.5, 1, 1), 2) == 2
    assert ex.worker_count(jobs(1.7, 1.3, 1.3), 2) == 3
    assert ex.worker_count(jobs(*[1] * 6), 2) == 2
    assert ex.worker_count(jobs(1, 0.6, 1, 1, 0.6, 1), 2) == 2
    assert ex.worker_count(jobs(1, 1), 2) == 2
    assert ex.worker_count(jobs(1.7, 1.3, 1.3), 1) == 1
    assert ex.worker_count(jobs(1), 4) == 1
    assert ex.check_jobs("auto") == "auto"
    synthetic = [ex.Job(name, 5000, started_at, cost=5000 * ex.EPOCH_COST[ex.MODELS[name][0]]
                        + ex.SYNTHETIC_FIXED_COST) for name in ex.MODELS]
    assert ex.worker_count(synthetic, 2) == 3


def test_worker_errors_reach_the_caller():
    def job(epoch):
        return ex.Job("bad", 1, ex.synthetic_model, dict(name="Attn-XX", data=tiny_sst(),
                                                          epochs=epoch, seed=0, out=Path(".")))
    with pytest.raises(ValueError, match="unknown model 'Attn-XX'"):
        ex.run_jobs([job(1)], 1, progress=False)


def started_at(label, progress):
    """A job that reports when it started (the clock is system-wide, so across processes)."""
    return label, time.monotonic()


def worker_variables(names, progress):
    """A job that returns the worker's values of some environment variables."""
    return {name: os.environ.get(name) for name in names}


def test_workers_start_with_one_thread_and_fixed_malloc_thresholds(monkeypatch):
    """Spawned workers see one BLAS thread and the malloc tunables; a GLIBC_TUNABLES the
    user set is theirs, passed on untouched; this process's environment is restored."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GLIBC_TUNABLES")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    job = ex.Job("env", 1, worker_variables, dict(names=names))
    [seen] = ex.run_jobs([job], 1, progress=False)
    assert seen == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "GLIBC_TUNABLES": ex._MALLOC_TUNABLES}
    assert os.environ["OMP_NUM_THREADS"] == "7" and "GLIBC_TUNABLES" not in os.environ
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
    [seen] = ex.run_jobs([job], 1, progress=False)
    assert seen["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1"


def test_costliest_jobs_start_first_and_results_keep_their_order():
    """One worker runs the jobs in the order they start: the costliest first (the cheap
    one of cost 1 after the one of cost 5), yet the results come back in the jobs' order;
    without a cost, a job's epochs are its cost."""
    jobs = [ex.Job("cheap", 1, started_at, dict(label="cheap"), cost=1.0),
            ex.Job("costly", 1, started_at, dict(label="costly"), cost=5.0),
            ex.Job("long", 3, started_at, dict(label="long"))]
    assert [job.expected_cost for job in jobs] == [1.0, 5.0, 3.0]
    (first, t_cheap), (second, t_costly), (third, t_long) = ex.run_jobs(jobs, 1,
                                                                         progress=False)
    assert (first, second, third) == ("cheap", "costly", "long")
    assert t_costly < t_long < t_cheap


@pytest.mark.usefixtures("figures_skipped")
def test_short_runs_validate_at_the_end(tmp_path):
    """--epochs 2 with validation every 10 epochs: the last epoch is validated too, so the
    reported model is the trained one, not the untrained epoch-0 model."""
    r = ex.run_sst(tmp_path, None, "sst2", epochs=2, data=tiny_sst(), progress=False)
    for m in r["models"].values():
        assert m["picked_purity"]["epochs"] == [0, 2] and m["validated_epochs"] == 2
        assert m["best_epoch"] == 2 and m["epochs_run"] == 2


@pytest.mark.usefixtures("figures_skipped")
def test_the_reported_model_is_the_selected_one(tmp_path):
    """Early stopping reports the parameters of the best validation loss, not the last ones.
    With the validation labels flipped, validation loss rises from the start: the run stops
    ``patience`` evaluations in and reports epoch 0, whose numbers retraining reproduces
    exactly (and the last iterate's differ)."""
    data = tiny_sst()
    valid = data.valid
    flipped = Splits(data.train, numeric.Dataset(valid.tokens, 1 - valid.labels, valid.n_words,
                                                 valid.n_classes), data.test)
    r = ex.run_sst(tmp_path, None, "sst2", epochs=400, data=flipped, eval_every=7, patience=3,
                   progress=False)
    for name, m in r["models"].items():
        assert m["stopped_early"] and m["best_epoch"] == 0
        assert m["picked_purity"]["epochs"] == [0, 7, 14, 21] and m["epochs_run"] == 21
        spec = ex.model_spec(name, d=ex.SST_WIDTH[name])
        p0 = numeric.init_params(spec, data.train, seed=0, query_scale=0.3, key_scale=0.0,
                                 embedding_scale=1e-6)
        assert numeric.loss(p0, flipped.valid, spec) == m["best_valid_loss"]
        assert ex.accuracy(p0, data.train, spec) == m["train_accuracy"]
        last = numeric.gradient_descent(p0, data.train, spec, ex.LR, 21).final
        assert numeric.loss(last, flipped.valid, spec) > m["best_valid_loss"]
        assert ex.accuracy(last, data.train, spec) != m["train_accuracy"]


def test_unreadable_sst_data_exits_2_naming_it(tmp_path, capsys):
    """An OSError reading the files (here: a file that fails with EIO when read) was a
    traceback and exit 1, the status of a failed check."""
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux's /proc/self/mem, a file that cannot be read")
    for split in ("train", "dev", "test"):
        (tmp_path / f"stsa.binary.{split}").symlink_to("/proc/self/mem")
    code = reproduce.run(argparse.Namespace(experiment="sst2", data=tmp_path,
                                            out=tmp_path / "out", epochs=1, seed=0, jobs=1))
    assert code == 2 and "cannot read the SST data" in capsys.readouterr().err

"""``numeric.TrajectoryRecorder``: a training loop's snapshots written as a trajectory file."""

import numpy as np
import pytest

import numeric
from attnflow.cli import main
from numeric.data import synthetic_topic_data
from numeric.recorder import TrajectoryRecorder


@pytest.fixture(scope="module")
def small():
    data = synthetic_topic_data(0, n_classes=2, topics_per_class=1, n_nontopic=6, m=3,
                                n_sentences=12, n_train=10, n_valid=1).train
    return data


def descend(data, dtype, steps=40, every=10, lr=0.5):
    """A plain NumPy training loop (the kind a user writes) recording every ``every`` steps."""
    spec = numeric.ModelSpec(d=3, d_key=2, dtype=dtype)
    params = numeric.init_params(spec, data, seed=1, embedding_scale=0.1)
    recorder = TrajectoryRecorder(data.tokens, data.labels, data.n_classes,
                                  topic_class=data.topic_class, trainable=spec.trained)
    for step in range(steps + 1):
        loss, grads = numeric.value_and_gradient(params, data, spec, wrt=spec.trained)
        recorder.record_loss(lr * step, loss)
        if step % every == 0:
            recorder.record(lr * step, params)
        params = {n: p - lr * grads[n] if n in grads else p for n, p in params.items()}
    return recorder


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_recorded_run_keeps_its_dtype_and_reads_back_exactly(small, tmp_path, dtype):
    recorder = descend(small, dtype)
    path = recorder.save(tmp_path / "run.npz")
    traj = numeric.Trajectory.load(path)
    assert traj.spec.dtype == dtype and len(traj) == 5
    assert traj.params["embeddings"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(traj.params["keys"][-1],
                                  recorder.fields()["keys"][-1])
    assert traj.spec.trained == ("embeddings", "keys", "classifier")
    assert traj.loss.shape == (41,) and traj.loss_time[-1] == 20.0


def test_laws_hold_on_a_recorded_gradient_descent_run(small, tmp_path, capsys):
    path = descend(small, "float64", steps=200, every=50, lr=0.05).save(tmp_path / "run.npz")
    assert main(["laws", str(path)]) == 0
    assert "classifier-embedding: HOLDS" in capsys.readouterr().out


@pytest.mark.parametrize("value, message", [
    (np.zeros((3, 2), dtype=np.float16), "dtype float16"),
    (np.zeros((3, 2), dtype=np.int64), "dtype int64"),
    (np.array([[np.nan, 0.0]] * 3), "non-finite"),
])
def test_a_snapshot_that_is_no_float32_or_float64_finite_array_is_refused(value, message):
    recorder = TrajectoryRecorder([[0, 1]], [0], 2)
    with pytest.raises(ValueError, match=message):
        recorder.record(0.0, {"keys": value})


def test_snapshots_must_keep_names_shapes_dtypes_and_increasing_times():
    recorder = TrajectoryRecorder([[0, 1]], [0], 2)
    recorder.record(0.0, {"keys": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="times must increase"):
        recorder.record(0.0, {"keys": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"'keys' is float32 \(3, 2\) here but was float64"):
        recorder.record(1.0, {"keys": np.zeros((3, 2), dtype=np.float32)})
    with pytest.raises(ValueError, match="the first one held"):
        recorder.record(1.0, {"query": np.zeros(2)})
    with pytest.raises(ValueError, match="time must be a real number"):
        recorder.record("1", {"keys": np.zeros((3, 2))})
    assert len(recorder) == 1


def test_a_recording_the_reader_would_refuse_is_not_written(small, tmp_path):
    recorder = descend(small, "float64", steps=10, every=5)
    target = tmp_path / "run.npz"
    target.write_bytes(b"the previous file")
    bad = TrajectoryRecorder(small.tokens, small.labels, small.n_classes)
    bad.record(0.0, {"embeddings": np.zeros((small.n_words, 3))})
    with pytest.raises(ValueError, match="missing field"):
        bad.save(target)
    assert target.read_bytes() == b"the previous file"
    frozen = recorder.fields()["classifier"]
    claims_frozen = TrajectoryRecorder(small.tokens, small.labels, small.n_classes,
                                       trainable=("embeddings", "keys"))
    for k, snap in enumerate(frozen):
        claims_frozen.record(float(k), {**{n: recorder.fields()[n][k] for n in
                                           ("embeddings", "keys", "query")}, "classifier": snap})
    with pytest.raises(ValueError, match="classifier is not listed as trained"):
        claims_frozen.save(target)
    assert target.read_bytes() == b"the previous file"
    with pytest.raises(ValueError, match="nothing recorded"):
        TrajectoryRecorder([[0]], [0], 2).save(target)

"""Recording a training run as a trajectory file, from any framework's training loop.

A loop calls ``record(τ, params)`` every few steps, with ``τ`` the flow time of the
snapshot (learning rate × optimizer steps taken) and the parameters as arrays, then
``save(path)``. The arrays are copied as they are, so the file keeps the dtype the run was
trained in; ``save`` reads the recording back exactly as ``attnflow laws`` will and refuses,
naming the field, what that reader would refuse; the file is written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from numeric.outputs import atomic_path, check_output_file
from numeric.trajectory import Trajectory

#: Floating-point dtypes a trajectory file may hold.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class TrajectoryRecorder:
    """Snapshots ``θ(τ_0), θ(τ_1), …`` of one run on the sentences ``tokens`` (padding -1)
    with labels ``labels`` out of ``n_classes``.

    ``topic_class`` (one entry per word: its class, or -1 for a non-topic word) lets the SEN
    law find the topic words; ``trainable`` names the arrays the run trains (when omitted,
    the arrays that move are taken as trained); ``frozen_rows`` maps ``"embeddings"`` or
    ``"keys"`` to word ids held fixed while the rest of that array trains.
    """

    def __init__(self, tokens, labels, n_classes: int, *, topic_class=None, trainable=None,
                 frozen_rows: Mapping | None = None):
        self._data = {"tokens": np.array(tokens), "labels": np.array(labels),
                      "n_classes": np.array(n_classes)}
        if topic_class is not None:
            self._data["topic_class"] = np.array(topic_class)
        if trainable is not None:
            if isinstance(trainable, str):
                raise ValueError(f"trainable must be a collection of names, got {trainable!r}")
            self._data["trainable"] = np.array([str(n) for n in trainable], dtype=str)
        for name, rows in (frozen_rows or {}).items():
            self._data[f"frozen_rows_{name}"] = np.array(rows)
        self._times: list[float] = []
        self._snapshots: list[dict[str, np.ndarray]] = []
        self._loss: list[tuple[float, float]] = []

    def __len__(self) -> int:
        return len(self._times)

    def record(self, time, params: Mapping) -> None:
        """Keep a copy of ``params`` (name → array) as the snapshot at flow time ``time``."""
        time = _flow_time(time, self._times[-1] if self._times else None)
        if not isinstance(params, Mapping) or not params:
            raise ValueError("params must be a non-empty mapping of parameter names to arrays")
        snapshot = {str(name): np.array(x, copy=True) for name, x in params.items()}
        for name, x in snapshot.items():
            if x.dtype not in FLOAT_DTYPES:
                raise ValueError(f"parameter {name!r} has dtype {x.dtype}; a trajectory holds "
                                 f"float32 or float64 arrays (record the run's own values, "
                                 f"not a cast)")
            if not np.isfinite(x).all():
                raise ValueError(f"parameter {name!r} holds a non-finite value at τ = {time}")
        if self._snapshots:
            _same_layout(self._snapshots[0], snapshot)
        self._times.append(time)
        self._snapshots.append(snapshot)

    def record_loss(self, time, loss) -> None:
        """Keep the training loss at flow time ``time`` (any steps, not only snapshots)."""
        time = _flow_time(time, self._loss[-1][0] if self._loss else None)
        loss = float(loss)
        if not np.isfinite(loss):
            raise ValueError(f"loss at τ = {time} is not finite ({loss})")
        self._loss.append((time, loss))

    def fields(self) -> dict[str, np.ndarray]:
        """The arrays of the trajectory file (its format is the one ``attnflow laws`` reads)."""
        if not self._snapshots:
            raise ValueError("nothing recorded: call record(time, params) at least once")
        fields = dict(self._data, time=np.array(self._times))
        for name in self._snapshots[0]:
            fields[name] = np.stack([s[name] for s in self._snapshots])
        if self._loss:
            fields["loss_time"], fields["loss"] = (np.array(c) for c in zip(*self._loss))
        return fields

    def trajectory(self) -> Trajectory:
        """The recording as ``attnflow laws`` reads it (``ValueError`` naming a bad field)."""
        return Trajectory.from_fields(self.fields())

    def save(self, path) -> Path:
        """Check the recording, then write it to ``path`` (``.npz``) atomically."""
        path = check_output_file(path)
        fields = self.fields()
        Trajectory.from_fields(fields)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **fields)
        return path


def _flow_time(time, previous: float | None) -> float:
    if isinstance(time, (bool, np.bool_)) or not isinstance(
            time, (int, float, np.integer, np.floating)):
        raise ValueError(f"time must be a real number (the flow time lr × steps), got {time!r}")
    time = float(time)
    if not np.isfinite(time):
        raise ValueError(f"time must be finite, got {time}")
    if previous is not None and time <= previous:
        raise ValueError(f"times must increase: τ = {time} follows τ = {previous}")
    return time


def _same_layout(first: dict, snapshot: dict) -> None:
    if sorted(snapshot) != sorted(first):
        raise ValueError(f"this snapshot holds {sorted(snapshot)}, the first one held "
                         f"{sorted(first)}")
    for name, x in snapshot.items():
        if (x.shape, x.dtype) != (first[name].shape, first[name].dtype):
            raise ValueError(f"parameter {name!r} is {x.dtype} {x.shape} here but was "
                             f"{first[name].dtype} {first[name].shape} in the first snapshot")

"""Trajectories: parameter snapshots ``θ(τ_0), …, θ(τ_{T-1})`` of one training run.

A trajectory carries its data set and model specification, so that laws can check their
preconditions on it, and it is stored as an ``.npz`` file (DESIGN.md, "Trajectory file"):

- ``tokens`` (S, L) int (padding ``-1``), ``labels`` (S,) int, ``n_classes`` scalar int,
  optional ``topic_class`` (W,) int (class of each topic word, ``-1`` for non-topic words);
- ``time`` (T,) float, strictly increasing;
- one array per parameter with a leading snapshot axis: ``embeddings`` (T, W, d), ``keys``
  (T, W, d_key), ``query`` (T, d_key) and either ``classifier`` (T, C, d) or
  ``hidden_weight`` (T, H, d), ``hidden_bias`` (T, H), ``output_weight`` (T, C, H),
  ``output_bias`` (T, C);
- optional ``architecture`` (a string: ``"paper"``, the default when absent,
  ``"self-attention"`` or ``"multi-head"``); a self-attention file holds ``embeddings``
  (T, W, d), ``head_query``, ``head_key``, ``head_value``, ``head_output`` (T, H, d_head, d)
  and ``classifier`` (T, C, d), and may give ``temperature`` (a scalar, default √d_head) and
  ``loss_function`` (``"cross-entropy"``, the default, or ``"squared-error"``);
- optional ``trainable`` (array of parameter names); when absent, the parameters that move
  between snapshots are taken as the trainable ones (``Trajectory.trainable_inferred``);
- optional ``loss`` (N,) and ``loss_time`` (N,): the loss recorded during training;
- optional ``frozen_rows_embeddings`` / ``frozen_rows_keys`` (int word ids): rows of a trained
  array that were held fixed (``frozen_rows`` of the integrators).

Files are read with ``allow_pickle=False``; a missing, unknown or inconsistent field raises
``ValueError`` naming it.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from numeric.model import (
    ARCHITECTURES,
    ATTENTION_PARAMS,
    CLASSIFIER_PARAMS,
    LOSSES,
    Dataset,
    ModelSpec,
    check_params,
)

DATA_FIELDS = ("tokens", "labels", "n_classes", "topic_class")
#: Arrays whose rows (words) may be held fixed while the rest of the array trains.
ROW_FROZEN = ("embeddings", "keys")
#: The fields naming the model of a self-attention file (the paper's when absent).
MODEL_FIELDS = ("architecture", "temperature", "loss_function")
EXTRA_FIELDS = ("time", "trainable", "loss", "loss_time") + MODEL_FIELDS + tuple(
    f"frozen_rows_{n}" for n in ROW_FROZEN)
#: The self-attention family's parameters (the order of its generated module).
HEAD_PARAMS = ("embeddings", "head_query", "head_key", "head_value", "head_output",
               "classifier")
PAPER_PARAMS = ATTENTION_PARAMS + tuple(n for names in CLASSIFIER_PARAMS.values()
                                        for n in names)
PARAM_FIELDS = tuple(dict.fromkeys(PAPER_PARAMS + HEAD_PARAMS))


@dataclass(frozen=True)
class Precision:
    """The arithmetic a file's parameters come from: ``dtype`` judged, ``stored`` on disk.

    A float64 file is a float32 run when every value of every parameter array is a float32
    number (it round-trips through float32 exactly; checked array by array) and some
    parameter moves: values a float64 run computes land on float32 numbers only by chance
    (about 2⁻²⁹ per value), so a real float64 run never passes, while a float32 run exported
    with ``.double()`` always does. Such a file is judged against float32 rounding."""

    dtype: str
    stored: str
    #: the arrays that hold float32 numbers only
    float32_numbers: tuple[str, ...] = ()

    RULE = ("a float64 file is judged a float32 run when every value of every parameter "
            "array round-trips through float32 exactly and some parameter moves (float64 "
            "arithmetic lands on float32 numbers only by chance, about 2^-29 per value)")

    @classmethod
    def judge(cls, params: dict[str, np.ndarray]) -> Precision:
        stored = str(next(iter(params.values())).dtype)
        if stored != "float64":
            return cls(stored, stored)
        exact = tuple(n for n, x in params.items() if _float32_numbers(x))
        moves = any(not (x == x[:1]).all() for x in params.values())
        judged = "float32" if moves and len(exact) == len(params) else stored
        return cls(judged, stored, exact)

    def describe(self) -> str:
        """One line for the reports (empty when the file is judged in its stored dtype)."""
        if self.dtype == self.stored:
            return ""
        return f"stored as {self.stored}, every value a float32 number: judged as a float32 run"

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "stored": self.stored,
                "float32_numbers": list(self.float32_numbers), "note": self.describe(),
                "rule": self.RULE}


def _float32_numbers(x: np.ndarray) -> bool:
    """Every value of ``x`` is a float32 number (a value beyond float32's range is not)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool((x.astype(np.float32).astype(x.dtype) == x).all())


@dataclass
class Trajectory:
    """Snapshots ``params[name][i] = θ_name(time[i])`` of a run on ``data`` under ``spec``.

    ``loss[j]`` is the training loss at flow time ``loss_time[j]`` (for the fixed-step
    integrators: at every step). ``dense`` (adaptive integration only, not saved) evaluates
    the parameters at any time in ``[time[0], time[-1]]``.
    """

    data: Dataset
    spec: ModelSpec
    time: np.ndarray
    params: dict[str, np.ndarray]
    loss: np.ndarray | None = None
    loss_time: np.ndarray | None = None
    dense: Callable[[float], dict[str, np.ndarray]] | None = field(default=None, repr=False)
    trainable_inferred: bool = False
    #: the trainable set was read from a file's ``trainable`` field (a claim to check)
    trainable_listed: bool = False
    frozen_rows: dict[str, np.ndarray] = field(default_factory=dict)
    #: the precision the parameters are judged in and how a file stored them (default:
    #: the spec's dtype, as built in memory)
    precision: Precision | None = None

    def __post_init__(self):
        self.time = np.asarray(self.time, dtype=np.float64)
        _check_time("time", self.time)
        shapes = self.spec.shapes(self.data.n_words, self.data.n_classes)
        if sorted(self.params) != sorted(shapes):
            raise ValueError(f"trajectory parameters {sorted(self.params)} do not match "
                             f"{self.spec.describe()}'s {sorted(shapes)}")
        for name, shape in shapes.items():
            x = np.asarray(self.params[name])
            if x.shape != (len(self.time),) + shape:
                raise ValueError(f"{name} has shape {x.shape}, expected "
                                 f"{(len(self.time),) + shape} (snapshots × {shape})")
            self.params[name] = x
        check_params(self.snapshot(0), self.spec, self.data)
        if self.precision is None:
            self.precision = Precision(self.spec.dtype, self.spec.dtype)
        for name, x in self.params.items():
            if not np.isfinite(x).all():
                i = int(np.argwhere(~np.isfinite(x))[0][0])
                raise ValueError(f"{name} holds a non-finite value in snapshot {i}")
        for name, rows in self.frozen_rows.items():
            rows = np.asarray(rows)
            if name not in ROW_FROZEN or name not in self.spec.trained:
                raise ValueError(f"frozen_rows_{name}: only rows of trained {ROW_FROZEN} "
                                 f"can be frozen (trained: {self.spec.trained})")
            if rows.dtype.kind not in "iu" or rows.ndim != 1 or (
                    rows.size and (rows.min() < 0 or rows.max() >= self.data.n_words)):
                raise ValueError(f"frozen_rows_{name} must be 1-D word ids in "
                                 f"[0, {self.data.n_words})")
            self.frozen_rows[name] = rows.astype(np.int64)
        if (self.loss is None) != (self.loss_time is None):
            raise ValueError("loss and loss_time must be given together")
        if self.loss is not None:
            for name, x in (("loss", self.loss), ("loss_time", self.loss_time)):
                if np.asarray(x).dtype.kind not in "fiu":  # complex would lose its imaginary
                    raise ValueError(f"{name} must be real numbers, got dtype "
                                     f"{np.asarray(x).dtype}")
            self.loss = np.asarray(self.loss, dtype=np.float64)
            self.loss_time = np.asarray(self.loss_time, dtype=np.float64)
            if self.loss.ndim != 1 or self.loss.shape != self.loss_time.shape:
                raise ValueError(f"loss {self.loss.shape} and loss_time "
                                 f"{self.loss_time.shape} must be 1-D of equal length")

    def __len__(self) -> int:
        return len(self.time)

    def claimed_still(self) -> tuple[str, ...]:
        """Parameters a file lists as trainable that are identical in every snapshot while
        others move: a claim the snapshots contradict. A law reading one is not applicable:
        its preconditions rest on it. None when the trainable set was inferred or nothing
        moves (a run without evidence, "not checked"); in memory (an integrator's run) a
        trained parameter with a zero gradient may stand still, so only a file's list is a
        claim."""
        if not self.trainable_listed:
            return ()
        still = tuple(n for n, x in self.params.items() if (x == x[:1]).all())
        if len(still) == len(self.params):
            return ()
        return tuple(n for n in self.spec.trained if n in still)

    def snapshot(self, i: int) -> dict[str, np.ndarray]:
        """The parameters at ``time[i]``."""
        return {name: x[i] for name, x in self.params.items()}

    @property
    def final(self) -> dict[str, np.ndarray]:
        return self.snapshot(-1)

    def at(self, t: float) -> dict[str, np.ndarray]:
        """The parameters at flow time ``t`` from the dense output (adaptive runs only)."""
        if self.dense is None:
            raise ValueError("this trajectory has no dense output (only integrate_flow "
                             "produces one); use snapshot(i)")
        if not self.time[0] <= t <= self.time[-1]:
            raise ValueError(f"t = {t} lies outside [{self.time[0]}, {self.time[-1]}]")
        return self.dense(t)

    def save(self, path) -> None:
        """Write the ``.npz`` trajectory file (format in the module docstring)."""
        fields = {"tokens": self.data.tokens, "labels": self.data.labels,
                  "n_classes": np.int64(self.data.n_classes), "time": self.time,
                  "trainable": np.array(self.spec.trained, dtype=str)}
        if self.data.topic_class is not None:
            fields["topic_class"] = self.data.topic_class
        if self.spec.architecture != "paper":
            fields.update(architecture=np.array(self.spec.architecture),
                          temperature=np.float64(self.spec.temperature),
                          loss_function=np.array(self.spec.loss))
        if self.loss is not None:
            fields.update(loss=self.loss, loss_time=self.loss_time)
        fields.update({f"frozen_rows_{n}": r for n, r in self.frozen_rows.items()})
        fields.update(self.params)
        np.savez(path, **fields)

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read an ``.npz`` trajectory file without pickle; report bad fields by name.

        A file that is not a readable ``.npz`` archive (empty, truncated, corrupt, a plain
        ``.npy``, text) raises ``ValueError`` saying so; ``OSError`` if it cannot be opened.
        """
        return cls.from_fields(read_archive(path))

    @classmethod
    def from_fields(cls, fields: dict) -> Trajectory:
        unknown = sorted(set(fields) - set(DATA_FIELDS + EXTRA_FIELDS + PARAM_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; expected names from "
                             f"{list(DATA_FIELDS + EXTRA_FIELDS + PARAM_FIELDS)}")
        architecture = _architecture(fields)
        if architecture == "paper":
            stray = [k for k in fields if (k in HEAD_PARAMS and k not in PAPER_PARAMS)
                     or k in ("temperature", "loss_function")]
            if stray:
                raise ValueError(f"field(s) {stray} belong to the self-attention "
                                 f"architectures; a file of one names it in its field "
                                 f"'architecture'")
        else:
            stray = [k for k in fields if k in PARAM_FIELDS and k not in HEAD_PARAMS]
            if stray:
                raise ValueError(f"field(s) {stray} belong to the paper's model, not to the "
                                 f"{architecture} architecture")
        required = ATTENTION_PARAMS if architecture == "paper" else HEAD_PARAMS
        missing = [k for k in ("tokens", "labels", "n_classes", "time") + required
                   if k not in fields]
        if missing:
            raise ValueError(f"missing field(s) {missing}" + (
                "" if architecture == "paper" else f" of the {architecture} architecture"))
        classifier = _classifier_kind(fields) if architecture == "paper" else "linear"
        n_classes = fields["n_classes"]
        if n_classes.ndim != 0 or n_classes.dtype.kind not in "iu":
            raise ValueError(f"n_classes must be an integer scalar, got dtype "
                             f"{n_classes.dtype} and shape {n_classes.shape}")
        time = np.asarray(fields["time"])
        if time.dtype.kind not in "fiu":
            raise ValueError(f"time must be numeric, got dtype {time.dtype}")
        _check_time("time", time.astype(np.float64))
        names = (ATTENTION_PARAMS + CLASSIFIER_PARAMS[classifier] if architecture == "paper"
                 else HEAD_PARAMS)
        params = {n: np.asarray(fields[n]) for n in names}
        for n, x in params.items():
            if x.dtype.kind != "f":
                raise ValueError(f"{n} must be a floating-point array, got dtype {x.dtype}")
            if x.ndim < 2 or x.shape[0] != len(time):
                raise ValueError(f"{n} has shape {x.shape}: expected a leading snapshot axis "
                                 f"of length {len(time)} (the length of time)")
        dtypes = {str(x.dtype) for x in params.values()}
        if len(dtypes) != 1 or dtypes.pop() not in ("float64", "float32"):
            raise ValueError(f"parameters must all be float64 or all float32, got "
                             f"{ {n: str(x.dtype) for n, x in params.items()} }")
        precision = Precision.judge(params)
        if precision.dtype != precision.stored:
            params = {n: x.astype(precision.dtype) for n, x in params.items()}   # exact
        if architecture != "paper":
            return cls._attention(fields, architecture, time, params, precision)
        emb, keys, query = params["embeddings"], params["keys"], params["query"]
        if emb.ndim != 3 or keys.ndim != 3 or query.ndim != 2:
            raise ValueError(f"embeddings (T, W, d), keys (T, W, d_key), query (T, d_key) "
                             f"expected; got {emb.shape}, {keys.shape}, {query.shape}")
        if keys.shape[1] != emb.shape[1]:
            raise ValueError(f"keys has {keys.shape[1]} words but embeddings has {emb.shape[1]}")
        if keys.shape[2] != query.shape[1]:
            raise ValueError(f"keys have width d_key = {keys.shape[2]} but query has "
                             f"{query.shape[1]}")
        hidden = params["hidden_weight"].shape[1] if classifier == "mlp" else 10
        if classifier == "mlp" and params["hidden_weight"].ndim != 3:
            raise ValueError(f"hidden_weight must be (T, H, d), got "
                             f"{params['hidden_weight'].shape}")
        data = Dataset(fields["tokens"], fields["labels"], emb.shape[1], int(n_classes),
                       fields.get("topic_class"))
        trainable, inferred = _trainable(fields, params)
        spec = ModelSpec(d=emb.shape[2], d_key=keys.shape[2], classifier=classifier,
                         hidden=hidden, trainable=trainable, dtype=str(emb.dtype))
        return cls._finish(fields, data, spec, time, params, precision, inferred)

    @classmethod
    def _attention(cls, fields, architecture, time, params, precision) -> Trajectory:
        """A self-attention file: sizes from the shapes, temperature and loss from their
        fields (√d_head and cross-entropy when absent)."""
        emb, query = params["embeddings"], params["head_query"]
        if emb.ndim != 3 or query.ndim != 4:
            raise ValueError(f"embeddings (T, W, d) and head_query (T, H, d_head, d) expected; "
                             f"got {emb.shape} and {query.shape}")
        data = Dataset(fields["tokens"], fields["labels"], emb.shape[1],
                       int(fields["n_classes"]), fields.get("topic_class"))
        trainable, inferred = _trainable(fields, params)
        temperature = _scalar(fields, "temperature", "f")
        loss = _scalar(fields, "loss_function", "U")
        spec = ModelSpec(architecture=architecture, d=emb.shape[2], d_head=query.shape[2],
                         heads=query.shape[1], trainable=trainable, dtype=str(emb.dtype),
                         temperature=temperature,
                         loss="cross-entropy" if loss is None else loss)
        return cls._finish(fields, data, spec, time, params, precision, inferred)

    @classmethod
    def _finish(cls, fields, data, spec, time, params, precision, inferred) -> Trajectory:
        frozen = {n: fields[f"frozen_rows_{n}"] for n in ROW_FROZEN
                  if f"frozen_rows_{n}" in fields}
        traj = cls(data, spec, time, params, fields.get("loss"), fields.get("loss_time"),
                   trainable_inferred=inferred, trainable_listed=not inferred,
                   frozen_rows=frozen, precision=precision)
        _check_held_fixed(traj)
        return traj


def _architecture(fields) -> str:
    """The file's ``architecture`` field (the paper's model when absent)."""
    if "architecture" not in fields:
        return "paper"
    name = _scalar(fields, "architecture", "U")
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is unknown; expected one of "
                         f"{', '.join(ARCHITECTURES)}")
    return name


def _scalar(fields, name: str, kinds: str):
    """A scalar field (a string for kind ``U``, a number for ``f``), or None when absent."""
    if name not in fields:
        return None
    x = np.asarray(fields[name])
    if x.ndim != 0 or x.dtype.kind not in (kinds if kinds != "f" else "fiu"):
        want = "a string" if kinds == "U" else "a number"
        raise ValueError(f"{name} must be {want} (a scalar), got dtype {x.dtype} and shape "
                         f"{x.shape}")
    value = x.item()
    if kinds == "U" and name == "loss_function" and value not in LOSSES["multi-head"]:
        raise ValueError(f"loss_function {value!r} is unknown; expected one of "
                         f"{', '.join(LOSSES['multi-head'])}")
    return value if kinds == "U" else float(value)


def _trainable(fields, params) -> tuple[tuple[str, ...], bool]:
    """The file's ``trainable`` list, or the parameters that move (and whether inferred)."""
    if "trainable" not in fields:
        return tuple(n for n, x in params.items() if not (x == x[:1]).all()), True
    tr = fields["trainable"]
    if tr.dtype.kind != "U" or tr.ndim != 1:
        raise ValueError(f"trainable must be a 1-D array of parameter names, got "
                         f"dtype {tr.dtype} and shape {tr.shape}")
    return tuple(str(n) for n in tr), False


def _check_held_fixed(traj: Trajectory):
    """A file's claims that parts were held fixed (an array left out of ``trainable``, the
    rows of ``frozen_rows_*``) must agree with its snapshots: the laws' preconditions trust
    them, so a moving part claimed frozen could hide a violation."""
    for name, x in traj.params.items():
        if name not in traj.spec.trained and not (x == x[:1]).all():
            raise ValueError(f"trainable: {name} is not listed as trained, but it changes "
                             f"between snapshots")
    for name, rows in traj.frozen_rows.items():
        x = traj.params[name][:, rows]
        moved = np.flatnonzero(~(x == x[:1]).reshape(len(x), len(rows), -1).all(axis=(0, 2)))
        if moved.size:
            raise ValueError(f"frozen_rows_{name}: row {int(rows[moved[0]])} is said to be "
                             f"held fixed, but it changes between snapshots")


NOT_NPZ = "not a readable trajectory archive (.npz, as written by numpy.savez)"
#: What reading raises on bytes that are not an archive, or on a damaged member (an
#: encrypted member or an unknown compression method: RuntimeError, NotImplementedError).
_DAMAGED = (EOFError, zipfile.BadZipFile, zlib.error, ValueError, TypeError, KeyError,
            RuntimeError, NotImplementedError)
_NPY_MAGIC = b"\x93NUMPY"
#: Bytes read at a time while a member's data is inflated.
_CHUNK = 1 << 24


def read_archive(path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` archive ``path``, read without pickle.

    Nothing is inflated before it is known to fit: the sizes the zip directory declares
    must add up to at most ``max_bytes`` (default ``numeric.limits.memory_limit()``; else
    ``TooLarge``), each member's ``.npy`` header must declare a shape its declared size
    holds, and a member is read only up to that size. A field stored twice is refused
    (which copy is meant cannot be told)."""
    from numeric.limits import TooLarge, bytes_text, memory_limit

    limit = memory_limit() if max_bytes is None else max_bytes
    with open(path, "rb") as file:
        start = file.read(len(_NPY_MAGIC))
        file.seek(0)
        if start.startswith(_NPY_MAGIC):
            raise ValueError(f"{NOT_NPZ}: it holds a single array (a plain .npy file), not "
                             f"the named fields of a trajectory")
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile as err:
            # numpy takes unknown bytes for a pickle and suggests loading it unsafely; say
            # plainly what the file is not instead
            why = (_damage(EOFError()) if not start else _damage(err)
                   if start.startswith(b"PK") else "unrecognised contents")
            raise ValueError(f"{NOT_NPZ}: {why}") from None
        with archive:
            members = _members(archive)
            declared = sum(info.file_size for info in members.values())
            if declared > limit:
                name, info = max(members.items(), key=lambda item: item[1].file_size)
                raise TooLarge(f"{path}: its fields declare {bytes_text(declared)} once "
                               f"uncompressed (field {name!r}: {bytes_text(info.file_size)}); "
                               f"the limit is {bytes_text(limit)} (half of this machine's "
                               f"memory)")
            headers = {name: _read_member(archive, name, info, header_only=True)
                       for name, info in members.items()}
            check_declared_shapes({name: shape for name, (shape, _, _) in headers.items()})
            return {name: _read_member(archive, name, info) for name, info in members.items()}


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Field name (``numpy.savez``'s member name without ``.npy``) → its zip entry."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in members:
            raise ValueError(f"{NOT_NPZ}: field {name!r} is stored more than once (which "
                             f"copy is meant cannot be told)")
        members[name] = info
    return members


class _Explained(ValueError):
    """A member refused with its own message (not reworded as damage)."""


def _read_member(archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo,
                 header_only: bool = False):
    """One member as an array: its header checked against its declared size, then at most
    that many bytes inflated (``header_only``: just the header, ``(shape, fortran, dtype)``)."""
    try:
        with archive.open(info) as member:
            shape, fortran, dtype = _header(member, name)
            count = math.prod(shape)
            size = count * dtype.itemsize
            if member.tell() + size != info.file_size:
                raise _Explained(f"{NOT_NPZ}: field {name!r} declares shape {shape} of "
                                 f"{dtype} ({size} bytes) but its member holds "
                                 f"{info.file_size - member.tell()} bytes of data")
            if header_only:
                return shape, fortran, dtype
            data = bytearray(size)
            view, done = memoryview(data), 0
            while done < size:
                got = member.readinto(view[done:done + _CHUNK])
                if not got:
                    raise EOFError
                done += got
            member.read(1)  # at the declared end: reading on checks the member's CRC
            array = np.frombuffer(data, dtype=dtype, count=count)
    except _Explained:
        raise
    except _DAMAGED as err:
        raise ValueError(f"{NOT_NPZ}: field {name!r} is damaged ({_damage(err)})") from None
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def check_declared_shapes(shapes: dict[str, tuple]) -> None:
    """The sizes the fields declare agree with each other — snapshots (``time`` and every
    parameter's leading axis), sentences (``tokens``, ``labels``), words (``embeddings``,
    ``keys``, ``topic_class``), recorded losses — so a member inflated beyond what the
    others imply (a zip bomb) is refused from its header, before its data is read."""
    def axis(name, i):
        shape = shapes.get(name)
        return shape[i] if shape is not None and len(shape) > i else None

    time = shapes.get("time")
    if time is not None and len(time) == 1:
        for name in PARAM_FIELDS:
            if name in shapes and axis(name, 0) != time[0]:
                raise ValueError(f"{name} has shape {shapes[name]}: expected a leading "
                                 f"snapshot axis of length {time[0]} (the length of time)")
    if axis("tokens", 0) is not None and axis("labels", 0) not in (None, axis("tokens", 0)):
        raise ValueError(f"labels has shape {shapes['labels']}: expected one label per "
                         f"sentence of tokens {shapes['tokens']}")
    if "loss" in shapes and "loss_time" in shapes and shapes["loss"] != shapes["loss_time"]:
        raise ValueError(f"loss {shapes['loss']} and loss_time {shapes['loss_time']} must be "
                         f"1-D of equal length")
    words = {name: axis(name, i) for name, i in (("embeddings", 1), ("keys", 1),
                                                  ("topic_class", 0))
             if axis(name, i) is not None}
    if len(set(words.values())) > 1:
        raise ValueError("the fields disagree on the number of words: " + ", ".join(
            f"{name} {shapes[name]}" for name in words))


def _header(member, name: str):
    """``(shape, fortran order, dtype)`` from a member's ``.npy`` header."""
    from numpy.lib import format as npy

    if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:  # a zip member that is no .npy
        raise _Explained(f"{NOT_NPZ}: field {name!r} is not a NumPy array")
    member.seek(0)
    version = npy.read_magic(member)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise _Explained(f"{NOT_NPZ}: field {name!r} uses .npy format version "
                         f"{version[0]}.{version[1]}, which numpy.savez writes only for "
                         f"structured arrays; a trajectory holds none")
    shape, fortran, dtype = readers[version](member)
    if dtype.hasobject:
        raise _Explained(f"field {name!r} is an object array; a trajectory holds numeric "
                         f"and string arrays only")
    return shape, fortran, dtype


def _damage(err: BaseException) -> str:
    if isinstance(err, EOFError):
        return "the file is empty or ends early"
    if isinstance(err, zipfile.BadZipFile):
        return f"truncated or corrupt zip data ({err})"
    if isinstance(err, (RuntimeError, NotImplementedError)):
        return f"{err}"  # zipfile's own words: encrypted, or an unsupported compression
    return "unrecognised contents"


def _classifier_kind(fields) -> str:
    present = {kind: [n for n in names if n in fields]
               for kind, names in CLASSIFIER_PARAMS.items()}
    full = [kind for kind, names in CLASSIFIER_PARAMS.items() if len(present[kind]) == len(names)]
    partial = [kind for kind in CLASSIFIER_PARAMS if present[kind] and kind not in full]
    if len(full) != 1 or partial:
        raise ValueError(f"expected the fields of exactly one classifier, either "
                         f"{list(CLASSIFIER_PARAMS['linear'])} (linear) or "
                         f"{list(CLASSIFIER_PARAMS['mlp'])} (mlp); found "
                         f"{[n for names in present.values() for n in names]}")
    return full[0]


def _check_time(name: str, t: np.ndarray) -> None:
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"{name} holds a non-finite value")
    if (np.diff(t) <= 0).any():
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise ValueError(f"{name} must be strictly increasing; {name}[{i + 1}] = {t[i + 1]} "
                         f"follows {t[i]}")

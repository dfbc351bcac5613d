"""Data sets, model specifications and parameters of the attention classifier.

A sentence ``χ`` is a row of word ids; padding id ``-1`` marks positions that are not tokens
(masked out of the attention). The model (Lu, Mao & Nayak 2021): ``s_w = q·κ_w``,
``a_w(χ) = softmax_χ(s)``, ``h(χ) = Σ_w a_w v_w``, logits ``F(h)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

PAD = -1

#: Parameter names per classifier, in a fixed order.
ATTENTION_PARAMS = ("embeddings", "keys", "query")
CLASSIFIER_PARAMS = {
    "linear": ("classifier",),
    "mlp": ("hidden_weight", "hidden_bias", "output_weight", "output_bias"),
}
DTYPES = {"float64": np.float64, "float32": np.float32}


def _int_array(name: str, x, ndim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {x.shape}")
    if x.dtype.kind == "u" and x.size and x.max() > np.iinfo(np.int64).max:
        # casting would wrap 2**64 - 1 round to -1, the padding id
        where = tuple(int(i) for i in np.unravel_index(np.argmax(x), x.shape))
        raise ValueError(f"{name}{list(where)} = {x.max()} is out of range of int64 ids")
    return x.astype(np.int64, copy=False)


def integer(name: str, value, least: int) -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy; not a bool, float or
    string) of at least ``least``; else ``ValueError`` naming ``name``."""
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(
        least, f"an integer >= {least}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if value < least:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


class Dataset:
    """Sentences of word ids (padding ``-1``), their labels and the vocabulary sizes.

    ``topic_class[w]`` is the class decided by topic word ``w`` and ``-1`` for non-topic words.
    """

    def __init__(self, tokens, labels, n_words: int, n_classes: int, topic_class=None):
        tokens = _int_array("tokens", tokens, 2)
        labels = _int_array("labels", labels, 1)
        n_words, n_classes = integer("n_words", n_words, 1), integer("n_classes", n_classes, 2)
        if tokens.shape[0] == 0 or tokens.shape[1] == 0:
            raise ValueError(f"tokens must hold at least one sentence and one position, "
                             f"got shape {tokens.shape}")
        if labels.shape[0] != tokens.shape[0]:
            raise ValueError(f"labels has {labels.shape[0]} entries but tokens has "
                             f"{tokens.shape[0]} sentences")
        bad = np.argwhere((tokens < PAD) | (tokens >= n_words))
        if bad.size:
            s, p = bad[0]
            raise ValueError(f"tokens[{s}, {p}] = {tokens[s, p]} is out of range: word ids "
                             f"must lie in [0, {n_words}) or be the padding id {PAD}")
        empty = np.flatnonzero((tokens == PAD).all(axis=1))
        if empty.size:
            raise ValueError(f"sentence {empty[0]} holds only padding; every sentence needs "
                             f"at least one token")
        bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
        if bad.size:
            raise ValueError(f"labels[{bad[0]}] = {labels[bad[0]]} is out of range "
                             f"[0, {n_classes})")
        if topic_class is not None:
            topic_class = _int_array("topic_class", topic_class, 1)
            if topic_class.shape[0] != n_words:
                raise ValueError(f"topic_class has {topic_class.shape[0]} entries, expected "
                                 f"n_words = {n_words}")
            bad = np.flatnonzero((topic_class < -1) | (topic_class >= n_classes))
            if bad.size:
                raise ValueError(f"topic_class[{bad[0]}] = {topic_class[bad[0]]} must be -1 "
                                 f"(non-topic) or a class in [0, {n_classes})")
        self.tokens, self.labels = tokens, labels
        self.n_words, self.n_classes = n_words, n_classes
        self.topic_class = topic_class
        for a in (self.tokens, self.labels, self.topic_class):
            if a is not None:
                a.setflags(write=False)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __repr__(self) -> str:
        return (f"Dataset({len(self)} sentences × {self.tokens.shape[1]} positions, "
                f"{self.n_words} words, {self.n_classes} classes)")

    def subset(self, index) -> Dataset:
        """The sentences ``index`` (a slice, mask or index array) with the same vocabulary."""
        return Dataset(self.tokens[index], self.labels[index], self.n_words, self.n_classes,
                       self.topic_class)

    @cached_property
    def mask(self) -> np.ndarray:
        """``True`` where a position holds a token."""
        return self.tokens != PAD

    @cached_property
    def safe_tokens(self) -> np.ndarray:
        """Token ids with padding replaced by 0, so gathers stay in range (masked later)."""
        return np.where(self.mask, self.tokens, 0)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Number of tokens of each sentence."""
        return self.mask.sum(axis=1)

    @cached_property
    def flat_tokens(self) -> np.ndarray:
        """The real tokens (padding dropped), sentence after sentence: ``(N,)``, in the
        index dtype SciPy's sparse matrices use for this batch (``_index_dtype``)."""
        return self.tokens[self.mask].astype(self._index_dtype)

    @cached_property
    def offsets(self) -> np.ndarray:
        """``flat_tokens[offsets[b]:offsets[b + 1]]`` are sentence ``b``'s tokens: ``(S + 1,)``."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(self._index_dtype)

    @cached_property
    def _index_dtype(self) -> np.dtype:
        # SciPy stores CSR indices as int32 whenever they fit and would otherwise convert
        # int64 ones on every construction (a token-sized copy per step).
        fits = max(self.n_words, int(self.mask.sum())) < np.iinfo(np.int32).max
        return np.dtype(np.int32 if fits else np.int64)

    def mask_as(self, dtype) -> np.ndarray:
        """``mask`` as numbers of ``dtype`` (1 at tokens, 0 at padding), for padded engines."""
        cache = self.__dict__.setdefault("_masks", {})
        key = np.dtype(dtype)
        if key not in cache:
            cache[key] = self.mask.astype(key)
            cache[key].setflags(write=False)
        return cache[key]

    def scatter(self, dtype=np.float64) -> sp.csr_matrix:
        """Sparse ``(W, S·L)`` 0/1 matrix adding per-position values into their words."""
        key = np.dtype(dtype)
        cache = self.__dict__.setdefault("_scatter", {})
        if key not in cache:
            flat = self.tokens.ravel()
            cols = np.flatnonzero(flat != PAD)
            ones = np.ones(cols.size, dtype=key)
            cache[key] = sp.csr_matrix((ones, (flat[cols], cols)),
                                       shape=(self.n_words, flat.size))
        return cache[key]


#: The architectures of the catalogue the engine runs: the paper's model, and the
#: self-attention family (one generated module, ``self-attention`` being one head of it).
ARCHITECTURES = ("paper", "self-attention", "multi-head")
LOSSES = {"paper": ("cross-entropy",),
          "self-attention": ("cross-entropy", "squared-error"),
          "multi-head": ("cross-entropy", "squared-error")}
DEFAULT_TRAINABLE = {"paper": ("keys", "embeddings", "classifier")}


def attention_module():
    """The generated engine of the self-attention family (imported when first needed)."""
    from numeric._generated import multi_head
    return multi_head


@dataclass(frozen=True)
class ModelSpec:
    """Architecture, sizes, loss and trainable parameters of a model the engine runs.

    ``architecture="paper"`` (the default): ``d``, ``d_key``, ``classifier`` (``"linear"`` or
    ``"mlp"``) and ``hidden``; ``"classifier"`` in ``trainable`` stands for every array of the
    classifier. ``"self-attention"`` / ``"multi-head"``: ``d``, ``d_head`` (default ``d``),
    ``heads`` (1 / default 2), ``temperature`` τ (default √d_head), ``loss``
    (``"cross-entropy"`` or ``"squared-error"``). ``trainable`` defaults to the paper's
    ``("keys", "embeddings", "classifier")`` and to every parameter of the others.
    """

    d: int = 10
    d_key: int = 10
    classifier: str = "linear"
    hidden: int = 10
    trainable: tuple[str, ...] | None = None
    dtype: str = "float64"
    architecture: str = "paper"
    d_head: int | None = None
    heads: int | None = None
    temperature: float | None = None
    loss: str = "cross-entropy"
    _trainable: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; expected one of "
                             f"{', '.join(ARCHITECTURES)}")
        for name in ("d", "d_key", "hidden"):
            object.__setattr__(self, name, integer(f"ModelSpec.{name}", getattr(self, name), 1))
        if self.loss not in LOSSES[self.architecture]:
            expected = ", ".join(LOSSES[self.architecture])
            raise ValueError(f"unknown loss {self.loss!r} for the {self.architecture} "
                             f"architecture; expected one of {expected}")
        if self.architecture == "paper":
            self._check_paper()
        else:
            self._check_attention()
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {sorted(DTYPES)}")
        self._check_trainable()

    def _check_paper(self):
        if self.classifier not in CLASSIFIER_PARAMS:
            raise ValueError(f"unknown classifier {self.classifier!r}; expected one of "
                             f"{sorted(CLASSIFIER_PARAMS)}")
        for name in ("d_head", "heads", "temperature"):
            if getattr(self, name) is not None:
                raise ValueError(f"ModelSpec.{name} belongs to the self-attention "
                                 f"architectures, not to the paper's model")

    def _check_attention(self):
        d_head = self.d if self.d_head is None else self.d_head
        object.__setattr__(self, "d_head", integer("ModelSpec.d_head", d_head, 1))
        heads = (1 if self.architecture == "self-attention" else 2) if self.heads is None \
            else self.heads
        object.__setattr__(self, "heads", integer("ModelSpec.heads", heads, 1))
        if self.architecture == "self-attention" and self.heads != 1:
            raise ValueError(f"the self-attention architecture has one head, got heads="
                             f"{self.heads}; use architecture='multi-head'")
        tau = np.sqrt(self.d_head) if self.temperature is None else self.temperature
        if isinstance(tau, (bool, np.bool_)) or not isinstance(
                tau, (int, float, np.integer, np.floating)) or not 0 < tau < np.inf:
            raise ValueError(f"ModelSpec.temperature must be a finite number > 0, got "
                             f"{self.temperature!r}")
        object.__setattr__(self, "temperature", float(tau))

    def _check_trainable(self):
        if self.trainable is None:
            object.__setattr__(self, "trainable",
                               DEFAULT_TRAINABLE.get(self.architecture, self.param_names))
        if isinstance(self.trainable, str) or not hasattr(self.trainable, "__iter__"):
            raise ValueError(f"trainable must be a collection of names, got "
                             f"{self.trainable!r}")
        # a tuple first: a generator would be used up by the loop and stored empty
        object.__setattr__(self, "trainable", tuple(self.trainable))
        expanded = set()
        for name in self.trainable:
            if (name == "classifier" and self.architecture == "paper"
                    and self.classifier == "mlp"):
                expanded.update(CLASSIFIER_PARAMS["mlp"])
            elif name in self.param_names:
                expanded.add(name)
            else:
                raise ValueError(f"unknown trainable parameter {name!r} for {self.describe()}; "
                                 f"expected names from {self.param_names}"
                                 + (" (or 'classifier')" if self.architecture == "paper" else ""))
        object.__setattr__(self, "_trainable", frozenset(expanded))

    def describe(self) -> str:
        if self.architecture == "paper":
            return f"the {self.classifier} classifier"
        return f"the {self.architecture} architecture"

    @property
    def param_names(self) -> tuple[str, ...]:
        if self.architecture == "paper":
            return ATTENTION_PARAMS + CLASSIFIER_PARAMS[self.classifier]
        return tuple(attention_module().PARAMETERS)

    @property
    def trained(self) -> tuple[str, ...]:
        """The trainable parameter arrays, expanded and in canonical order."""
        return tuple(n for n in self.param_names if n in self._trainable)

    def shapes(self, n_words: int, n_classes: int) -> dict[str, tuple[int, ...]]:
        if self.architecture != "paper":
            sizes = {"words": n_words, "d": self.d, "d_head": self.d_head,
                     "heads": self.heads, "C": n_classes}
            return {name: tuple(sizes[a] for a in axes)
                    for name, axes in attention_module().PARAMETERS.items()}
        shapes = {"embeddings": (n_words, self.d), "keys": (n_words, self.d_key),
                  "query": (self.d_key,)}
        if self.classifier == "linear":
            shapes["classifier"] = (n_classes, self.d)
        else:
            h = self.hidden
            shapes.update(hidden_weight=(h, self.d), hidden_bias=(h,),
                          output_weight=(n_classes, h), output_bias=(n_classes,))
        return shapes

    @property
    def constants(self) -> dict[str, float]:
        """The model's fixed numbers the engine takes by name (the temperature ``tau``)."""
        return {} if self.architecture == "paper" else {"tau": self.temperature}

    @property
    def float(self):
        return DTYPES[self.dtype]


def init_params(spec: ModelSpec, data: Dataset, seed=0, *, query_scale: float | None = None,
                key_scale: float | None = None,
                embedding_scale: float | None = None) -> dict[str, np.ndarray]:
    """The paper's initialisation: ``q ~ N(0, 0.3²)``, keys 0, embeddings ``N(0, (1e-6)²)``;
    a linear classifier is standard normal with its diagonal set to 1 (the authors' Attn-FC),
    the MLP uses ``N(0, 1/fan_in)`` weights and zero biases.

    Self-attention: embeddings ``N(0, embedding_scale²)`` (default 1), every head matrix and
    the classifier ``N(0, 1/d)``.
    """
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"spec must be a numeric.ModelSpec, got {type(spec).__name__}")
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a numeric.Dataset, got {type(data).__name__}")
    seed = integer("seed", seed, 0)
    paper = spec.architecture == "paper"
    if not paper and (query_scale is not None or key_scale is not None):
        raise ValueError(f"query_scale and key_scale belong to the paper's model, not to "
                         f"{spec.describe()}")
    scales = {"query_scale": 0.3 if query_scale is None else query_scale,
              "key_scale": 0.0 if key_scale is None else key_scale,
              "embedding_scale": (1e-6 if paper else 1.0) if embedding_scale is None
              else embedding_scale}
    for name, scale in scales.items():
        if isinstance(scale, (bool, np.bool_)) or not isinstance(
                scale, (int, float, np.integer, np.floating)) or not 0 <= scale < np.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {scale!r}")
    rng = np.random.default_rng(seed)
    shapes = spec.shapes(data.n_words, data.n_classes)
    if not paper:
        p = {name: rng.standard_normal(shape) / np.sqrt(spec.d) for name, shape in shapes.items()}
        p["embeddings"] = scales["embedding_scale"] * rng.standard_normal(shapes["embeddings"])
        return {k: v.astype(spec.float) for k, v in p.items()}
    p = {"embeddings": scales["embedding_scale"] * rng.standard_normal(shapes["embeddings"]),
         "keys": scales["key_scale"] * rng.standard_normal(shapes["keys"]),
         "query": scales["query_scale"] * rng.standard_normal(shapes["query"])}
    if spec.classifier == "linear":
        u = rng.standard_normal(shapes["classifier"])
        np.fill_diagonal(u, 1.0)
        p["classifier"] = u
    else:
        p["hidden_weight"] = rng.standard_normal(shapes["hidden_weight"]) / np.sqrt(spec.d)
        p["hidden_bias"] = np.zeros(shapes["hidden_bias"])
        p["output_weight"] = (rng.standard_normal(shapes["output_weight"])
                              / np.sqrt(spec.hidden))
        p["output_bias"] = np.zeros(shapes["output_bias"])
    return {k: v.astype(spec.float) for k, v in p.items()}


def check_params(params, spec: ModelSpec, data: Dataset) -> dict[str, np.ndarray]:
    """Validate names, shapes, dtypes and finiteness; return arrays in the spec's dtype."""
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays, got {type(params).__name__}")
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"spec must be a numeric.ModelSpec, got {type(spec).__name__}")
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a numeric.Dataset, got {type(data).__name__}")
    shapes = spec.shapes(data.n_words, data.n_classes)
    unknown = sorted(set(params) - set(shapes))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {spec.describe()}; expected "
                         f"{sorted(shapes)}")
    missing = sorted(set(shapes) - set(params))
    if missing:
        raise ValueError(f"missing parameter(s) {missing}")
    out = {}
    for name, shape in shapes.items():
        x = np.asarray(params[name])
        if x.dtype.kind != "f":
            raise ValueError(f"parameter {name!r} must be a floating-point array, got dtype "
                             f"{x.dtype}")
        if x.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {x.shape}, expected {shape}")
        if not np.isfinite(x).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"parameter {name!r} holds a non-finite value at {where}")
        if x.dtype != spec.float:
            raise ValueError(f"parameter {name!r} has dtype {x.dtype} but the spec asks for "
                             f"{spec.dtype}")
        out[name] = x
    return out

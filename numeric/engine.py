"""The public engine: loss, gradient and flow, running the code that SymPy derived.

``L(θ) = (1/|D|) Σ_χ ℓ_χ(θ)``; the generated modules in ``numeric/_generated`` compute the
forward intermediates and ``∂L/∂θ``; this module validates input and chooses the module.
"""

from __future__ import annotations

import numpy as np

from numeric import _generated
from numeric._generated import _dense
from numeric.model import Dataset, ModelSpec, attention_module, check_params

_MODULES = {"linear": _generated.linear, "mlp": _generated.mlp}
#: Every intermediate of the model as defined (the context ``h`` included): the linear
#: module's ``forward`` may take the cheaper order through the classes, which skips ``h``.
_INTERMEDIATES = {"linear": _generated.linear.forward_context, "mlp": _generated.mlp.forward}


def _check_wrt(wrt, spec: ModelSpec) -> frozenset:
    if wrt is None:
        return frozenset(spec.param_names)
    if isinstance(wrt, str):
        raise ValueError(f"wrt must be a collection of parameter names, got the string {wrt!r}")
    if not hasattr(wrt, "__iter__"):
        raise ValueError(f"wrt must be a collection of parameter names, got {wrt!r}")
    wrt = frozenset(wrt)  # once: a generator is used up by its first reading
    unknown = sorted(wrt - set(spec.param_names))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} in wrt; expected names from "
                         f"{spec.param_names}")
    return wrt


def _check_data(data) -> Dataset:
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a numeric.Dataset, got {type(data).__name__}")
    return data


def _check_spec(spec) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"spec must be a numeric.ModelSpec, got {type(spec).__name__}")
    return spec


def _padded(spec: ModelSpec):
    """``(forward, backward)`` of the padded-batch engine of ``spec``'s loss."""
    return attention_module().FUNCTIONS[spec.loss]


def _padded_forward(p, data: Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    forward_fn = _padded(spec)[0]
    return forward_fn(data.safe_tokens, data.mask_as(spec.float), data.labels, **p,
                      **spec.constants)


def _flat_forward(params, data: Dataset, spec: ModelSpec, *,
                  context: bool = False) -> dict[str, np.ndarray]:
    """The generated forward pass: token-level ``s`` and ``a`` over the real tokens only;
    in the cheaper contraction order unless ``context`` asks for the context ``h``."""
    p = check_params(params, _check_spec(spec), _check_data(data))
    if spec.architecture != "paper":
        return _padded_forward(p, data, spec)
    run = _INTERMEDIATES[spec.classifier] if context else _MODULES[spec.classifier].forward
    return run(data.flat_tokens, data.offsets, data.labels, **p)


def forward(params, data: Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Forward intermediates: ``s``, ``a`` per sentence and position (0 at padding), ``h``,
    logits ``z``, ``P``, per-sentence ``ell`` (self-attention: every node of the model, per
    sentence, head and position)."""
    fw = _flat_forward(params, data, spec, context=True)
    if spec.architecture != "paper":
        return fw
    for name in [x for x in fw if x.startswith("rows_")]:
        del fw[name]  # the sparse attention matrix the backward pass reuses: not a quantity
    for name in ("s", "a"):
        padded = np.zeros(data.tokens.shape, dtype=fw[name].dtype)
        padded[data.mask] = fw[name]  # row-major, the order of the flat tokens
        fw[name] = padded
    return fw


def value_and_gradient(params, data: Dataset, spec: ModelSpec, wrt=None):
    """``(L(θ), {name: ∂L/∂θ_name})`` for the names in ``wrt`` (default: every parameter)."""
    wrt = _check_wrt(wrt, _check_spec(spec))
    return unchecked_value_and_gradient(check_params(params, spec, _check_data(data)), data,
                                        spec, wrt)


def unchecked_value_and_gradient(p, data: Dataset, spec: ModelSpec, wrt: frozenset,
                                 attention=None):
    """``value_and_gradient`` without validating ``p``: for an integrator that validated its
    start and makes every later iterate itself (right names, shapes and dtype; a value that
    overflowed shows as a non-finite loss). The finiteness scan of every (W, d) table per
    step costs about a fifth of an SST gradient. ``attention``: ``fixed_attention`` of a run
    whose iterates all share ``p``'s keys and query."""
    if spec.architecture != "paper":
        return _dense._step(*_padded(spec), data.safe_tokens, data.mask_as(spec.float),
                            data.labels, p, spec.constants, wrt)
    module = _MODULES[spec.classifier]
    fw = module.forward(data.flat_tokens, data.offsets, data.labels, **p, attention=attention)
    grads = module.backward(fw, data.flat_tokens, data.offsets, data.labels, **p, wrt=wrt)
    return float(fw["ell"].mean()), grads


def fixed_attention(p, data: Dataset, spec: ModelSpec):
    """The printed ``scores_and_attention`` at ``p`` when ``spec`` trains none of the
    parameters it reads (keys and query): constant along the run, so computed once; else
    ``None`` (and always ``None`` outside the paper's model)."""
    if spec.architecture != "paper":
        return None
    module = _MODULES[spec.classifier]
    if set(module.ATTENTION_ARGUMENTS) & set(spec.trained):
        return None
    return module.scores_and_attention(data.flat_tokens, data.offsets,
                                       *(p[name] for name in module.ATTENTION_ARGUMENTS))


def loss(params, data: Dataset, spec: ModelSpec) -> float:
    """The mean loss ``L(θ) = (1/|D|) Σ_χ ℓ_χ`` (cross-entropy, or the spec's loss)."""
    return float(_flat_forward(params, data, spec)["ell"].mean())


def gradient(params, data: Dataset, spec: ModelSpec, wrt=None) -> dict[str, np.ndarray]:
    """``∂L/∂θ`` for every parameter named in ``wrt`` (default: all of them)."""
    return value_and_gradient(params, data, spec, wrt)[1]


def flow(params, data: Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The gradient flow ``dθ/dτ``: ``−∂L/∂θ`` on trainable parameters, 0 on frozen ones."""
    grads = gradient(params, data, spec, wrt=spec.trained)
    return {name: -grads[name] if name in grads else np.zeros_like(params[name])
            for name in spec.param_names}


def score(params) -> np.ndarray:
    """``s_w = q · κ_w`` for every word (the paper's model)."""
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays, got {type(params).__name__}")
    missing = [n for n in ("keys", "query") if n not in params]
    if missing:
        raise ValueError(f"score needs the paper's parameters keys and query; missing "
                         f"{missing}")
    keys, query = (np.asarray(params[n]) for n in ("keys", "query"))
    for name, x, ndim in (("keys", keys, 2), ("query", query, 1)):
        if x.dtype.kind != "f" or x.ndim != ndim:
            raise ValueError(f"parameter {name!r} must be a floating-point array of {ndim} "
                             f"dimension(s), got dtype {x.dtype} and shape {x.shape}")
        if not np.isfinite(x).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"parameter {name!r} holds a non-finite value at {where}")
    if keys.shape[1] != query.shape[0]:
        raise ValueError(f"keys have width {keys.shape[1]} but the query has "
                         f"{query.shape[0]} entries")
    return keys @ query


def attention(params, data: Dataset, spec: ModelSpec | None = None) -> np.ndarray:
    """``a_w(χ)`` per sentence and position (0 at padding); self-attention: ``a^h_ij`` per
    sentence, head, query token and key token."""
    return _attention_spec_forward(params, data, spec)["a"]


def context(params, data: Dataset, spec: ModelSpec | None = None) -> np.ndarray:
    """``h(χ) = Σ_w a_w v_w`` per sentence (the paper's model)."""
    spec = spec or _spec_of(params)
    if spec.architecture != "paper":
        raise ValueError(f"the context h belongs to the paper's model; {spec.describe()} has "
                         f"head outputs 'ho' and the pooled output 'ybar' (numeric.forward)")
    return _flat_forward(params, data, spec, context=True)["h"]


def logits(params, data: Dataset, spec: ModelSpec) -> np.ndarray:
    """Classifier outputs ``F(h(χ))`` per sentence."""
    return _flat_forward(params, data, spec)["z"]


def _attention_spec_forward(params, data, spec):
    if spec is None:
        spec = _spec_of(params)
    return forward(params, data, spec)


def _spec_of(params) -> ModelSpec:
    """The smallest spec matching the arrays (attention quantities do not need the rest)."""
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays, got {type(params).__name__}")
    if "embeddings" not in params:
        raise ValueError("params has no 'embeddings'; give the spec")
    dtype = "float32" if np.asarray(params["embeddings"]).dtype == np.float32 else "float64"
    if "head_query" in params:
        heads, d_head, d = np.shape(params["head_query"])
        return ModelSpec(architecture="multi-head", d=d, d_head=d_head, heads=heads,
                         dtype=dtype)
    if "keys" not in params:
        raise ValueError("params has neither 'keys' (the paper's model) nor 'head_query' "
                         "(self-attention); give the spec")
    classifier = "linear" if "classifier" in params else "mlp"
    d, d_key = np.shape(params["embeddings"])[1], np.shape(params["keys"])[1]
    hidden = np.shape(params["hidden_weight"])[0] if classifier == "mlp" else 10
    return ModelSpec(d=d, d_key=d_key, classifier=classifier, hidden=hidden, dtype=dtype)

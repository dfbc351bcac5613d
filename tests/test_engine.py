"""The generated engine: finite differences, an independent oracle, padding, stability, input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numeric
from numeric.checks import fd_check, random_problem
from tests.reference import reference_gradient, reference_loss

CLASSIFIERS = st.sampled_from(["linear", "mlp"])


@given(seed=st.integers(0, 10_000), classifier=CLASSIFIERS)
def test_gradient_matches_central_differences(seed, classifier):
    params, data, spec = random_problem(seed, classifier)
    result = fd_check(params, data, spec, seed=seed)
    assert result.worst < 1e-6, f"relative error {result.worst:.2e} at {result.where}"


@given(seed=st.integers(0, 10_000), classifier=CLASSIFIERS, data_=st.data())
def test_every_trainable_subset_gets_the_same_gradient(seed, classifier, data_):
    params, data, spec = random_problem(seed, classifier)
    wrt = data_.draw(st.sets(st.sampled_from(spec.param_names)))
    full = numeric.gradient(params, data, spec)
    part = numeric.gradient(params, data, spec, wrt=wrt)
    assert set(part) == set(wrt)
    for name in wrt:
        np.testing.assert_array_equal(part[name], full[name])


@pytest.mark.parametrize("classifier", ["linear", "mlp"])
def test_engine_agrees_with_independent_reference(classifier):
    params, data, spec = random_problem(7, classifier)
    assert numeric.loss(params, data, spec) == pytest.approx(
        reference_loss(params, data, spec), rel=1e-13)
    ref = reference_gradient(params, data, spec)
    for name, g in numeric.gradient(params, data, spec).items():
        np.testing.assert_allclose(g, ref[name], rtol=1e-11, atol=1e-14, err_msg=name)


def test_flow_is_minus_gradient_on_trainable_and_zero_on_frozen():
    params, data, spec = random_problem(3, "linear", trainable=("keys", "query"))
    grads = numeric.gradient(params, data, spec)
    flow = numeric.flow(params, data, spec)
    for name in spec.param_names:
        expected = -grads[name] if name in ("keys", "query") else 0 * grads[name]
        np.testing.assert_array_equal(flow[name], expected)


def test_gradient_is_bitwise_deterministic():
    params, data, spec = random_problem(11, "mlp")
    a, b = numeric.gradient(params, data, spec), numeric.gradient(params, data, spec)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes()


def test_padding_is_masked_out():
    """A padded sentence gives the same loss and gradient as the same sentence unpadded."""
    params, data, spec = random_problem(5, "linear")
    short = numeric.Dataset(data.tokens[:1, :1], data.labels[:1], data.n_words, data.n_classes)
    padded = numeric.Dataset(data.tokens[:1], data.labels[:1], data.n_words, data.n_classes)
    assert (padded.tokens[0, 1:] == -1).all()
    assert numeric.loss(params, short, spec) == numeric.loss(params, padded, spec)
    gs, gp = numeric.gradient(params, short, spec), numeric.gradient(params, padded, spec)
    for name in gs:
        np.testing.assert_array_equal(gs[name], gp[name])
    a = numeric.attention(params, padded, spec)
    assert a[0, 0] == 1 and (a[0, 1:] == 0).all()


def test_float32_on_request():
    params, data, spec64 = random_problem(2, "linear")
    spec32 = numeric.ModelSpec(d=spec64.d, d_key=spec64.d_key, dtype="float32")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    g32, g64 = numeric.gradient(p32, data, spec32), numeric.gradient(params, data, spec64)
    for name in g32:
        assert g32[name].dtype == np.float32
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("scale", [500.0, -500.0])
def test_stable_for_scores_in_the_hundreds(scale):
    """Scores ±500 and logits in the hundreds: no overflow, no NaN, attention one-hot."""
    params, data, spec = random_problem(4, "linear")
    params["query"] = np.full_like(params["query"], 1.0)
    params["keys"] = np.zeros_like(params["keys"])
    word = data.tokens[1, 0]
    params["keys"][word, 0] = scale / 1.0
    params["classifier"] *= 100
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        value, grads = numeric.value_and_gradient(params, data, spec)
    assert np.isfinite(value)
    assert all(np.isfinite(g).all() for g in grads.values())
    a = numeric.attention(params, data, spec)
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a.sum(axis=1), 1.0)


def _problem():
    return random_problem(0, "linear")


@pytest.mark.parametrize("mutate,message", [
    (lambda p, d, s: p.__setitem__("keys", p["keys"][:, :-1]), "'keys' has shape"),
    (lambda p, d, s: p.__setitem__("bogus", p["query"]), "unknown parameter"),
    (lambda p, d, s: p.pop("query"), "missing parameter"),
    (lambda p, d, s: p["embeddings"].__setitem__((0, 0), np.nan), "non-finite value"),
    (lambda p, d, s: p["query"].__setitem__(0, np.inf), "non-finite value"),
    (lambda p, d, s: p.__setitem__("query", p["query"].astype(int)), "floating-point"),
])
def test_bad_parameters_are_named(mutate, message):
    params, data, spec = _problem()
    mutate(params, data, spec)
    with pytest.raises(ValueError, match=message):
        numeric.gradient(params, data, spec)


@pytest.mark.parametrize("build,message", [
    (lambda: numeric.Dataset([[0, 9]], [0], 5, 2), r"tokens\[0, 1\] = 9 is out of range"),
    (lambda: numeric.Dataset([[0, -2]], [0], 5, 2), "out of range"),
    (lambda: numeric.Dataset([[0, 1]], [2], 5, 2), r"labels\[0\] = 2 is out of range"),
    (lambda: numeric.Dataset([[0.0, 1.0]], [0], 5, 2), "integer array"),
    (lambda: numeric.Dataset([[0, 1]], [0, 1], 5, 2), "labels has 2 entries"),
    (lambda: numeric.Dataset([[-1, -1]], [0], 5, 2), "only padding"),
    (lambda: numeric.Dataset([0, 1], [0], 5, 2), "2 dimension"),
    (lambda: numeric.Dataset([[0, 1]], [0], 5, 2, topic_class=[0, 5, -1, -1, -1]),
     r"topic_class\[1\] = 5"),
    (lambda: numeric.ModelSpec(trainable=("keys", "kees")), "unknown trainable parameter"),
    (lambda: numeric.ModelSpec(classifier="rbf"), "unknown classifier"),
    (lambda: numeric.ModelSpec(d=0), "positive integer"),
])
def test_bad_data_and_specs_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_unknown_wrt_name_is_named():
    params, data, spec = _problem()
    with pytest.raises(ValueError, match="unknown parameter.*'kees'"):
        numeric.gradient(params, data, spec, wrt=("kees",))


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_scores_of_a_thousand_do_not_overflow_in_float64(scale):
    """exp(1000) overflows float64: only the per-sentence maximum subtracted keeps it finite.
    Sentences holding the word (score ±1000) and sentences without it are both checked."""
    params, data, spec = random_problem(4, "linear")
    params["query"] = np.full_like(params["query"], 1.0)
    params["keys"] = np.zeros_like(params["keys"])
    word = data.tokens[1, 0]
    params["keys"][word, 0] = scale
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        value, grads = numeric.value_and_gradient(params, data, spec)
        a = numeric.attention(params, data, spec)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    holds = (data.tokens == word).any(axis=1)
    picked = np.where(data.tokens == word, a, 0.0).sum(axis=1)
    np.testing.assert_allclose(picked[holds], 1.0 if scale > 0 else 0.0, atol=1e-300)


def test_only_real_tokens_are_stored():
    """The flat layout holds the real tokens only, sentence after sentence; padding is not
    stored, so a long padded row costs nothing beyond its tokens."""
    tokens = [[3, -1, -1, -1, -1, -1], [1, 2, 4, 0, 2, 2], [4, 4, -1, -1, -1, -1]]
    data = numeric.Dataset(tokens, [0, 1, 0], 5, 2)
    np.testing.assert_array_equal(data.flat_tokens, [3, 1, 2, 4, 0, 2, 2, 4, 4])
    np.testing.assert_array_equal(data.offsets, [0, 1, 7, 9])
    from numeric._generated._runtime import _rows
    rows = _rows(np.ones(9), data.flat_tokens, data.offsets, 5)
    assert rows.nnz == 9 and rows.shape == (3, 5)
    # the index dtype SciPy keeps as is (int32 here): no conversion per sparse construction
    assert data.flat_tokens.dtype == data.offsets.dtype == rows.indices.dtype == np.int32
    assert np.shares_memory(rows.indices, data.flat_tokens)


@given(st.integers(1, 12), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_row_reductions_match_numpy_bit_for_bit(n_classes, n_rows, seed):
    """The printed log-sum-exp reduces a short class axis column by column; every sum and
    maximum is NumPy's own, bit for bit, on either side of the 8-column switch."""
    from numeric._generated._runtime import _log_sum_exp, _row_reduce
    z = np.random.default_rng(seed).normal(size=(n_rows, n_classes)) * 30
    for ufunc in (np.add, np.maximum):
        np.testing.assert_array_equal(_row_reduce(ufunc, z), ufunc.reduce(z, axis=1,
                                                                          keepdims=True))
    top = z.max(axis=1, keepdims=True)
    np.testing.assert_array_equal(_log_sum_exp(z),
                                  top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))


def test_ragged_sentences_match_the_reference():
    """Sentences of very different lengths (1 to 40 tokens): the flat engine agrees with the
    padded, independent reference."""
    rng = np.random.default_rng(3)
    lengths = [1, 40, 2, 17, 1, 33]
    tokens = np.full((len(lengths), 40), -1)
    for b, n in enumerate(lengths):
        tokens[b, :n] = rng.integers(0, 12, n)
    data = numeric.Dataset(tokens, rng.integers(0, 3, len(lengths)), 12, 3)
    for classifier in ("linear", "mlp"):
        spec = numeric.ModelSpec(d=4, d_key=3, classifier=classifier, hidden=5,
                                 trainable=("keys", "embeddings", "query", "classifier"))
        params = numeric.init_params(spec, data, seed=1, key_scale=0.5, embedding_scale=0.5)
        assert numeric.loss(params, data, spec) == pytest.approx(
            reference_loss(params, data, spec), rel=1e-13)
        ref = reference_gradient(params, data, spec)
        for name, g in numeric.gradient(params, data, spec).items():
            np.testing.assert_allclose(g, ref[name], rtol=1e-11, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("columns", [2, 30])
def test_scatter_product_is_the_same_in_either_order(columns):
    """``rowsᵀ (x y)`` and ``(rowsᵀ x) y`` agree whichever order the helper picks; a wrong
    helper (forgetting ``y``) is caught."""
    from numeric._generated._runtime import _rows, _scatter_product
    rng = np.random.default_rng(0)
    data = numeric.Dataset(rng.integers(0, 9, (5, 4)), np.zeros(5, int), 9, 2)
    rows = _rows(rng.random(20), data.flat_tokens, data.offsets, 9)
    x, y = rng.random((5, columns)), rng.random((columns, 8))
    expected = rows.toarray().T @ x @ y
    np.testing.assert_allclose(_scatter_product(rows, x @ y, x, y), expected, rtol=1e-13)
    assert not np.allclose(np.asarray(rows.T @ x)[:, :1], expected[:, :1])


def test_flat_fallback_helpers_add_per_token_values_into_words():
    """``_scatter`` and ``_row_dot`` (printing rules no current model reaches) in the flat
    layout, against loops over the padded sentences."""
    from numeric._generated._runtime import _row_dot, _scatter
    rng = np.random.default_rng(1)
    tokens = np.array([[2, 0, -1], [1, 2, 2], [3, -1, -1]])
    data = numeric.Dataset(tokens, [0, 1, 0], 4, 2)
    x = rng.random((data.flat_tokens.size, 2))
    expected = np.zeros((4, 2))
    for n, w in enumerate(data.flat_tokens):
        expected[w] += x[n]
    np.testing.assert_allclose(_scatter(data.flat_tokens, 4, x), expected)
    table, y = rng.random((4, 3)), rng.random((3, 3))
    want = [table[w] @ y[b] for b in range(3) for w in tokens[b] if w >= 0]
    np.testing.assert_allclose(_row_dot(table, data.flat_tokens, data.offsets, y,
                                        chunk_elements=6), want)


def _ragged_problem(seed, n_words, n_classes, d, trainable):
    """Ragged sentences (lengths 1..12, padding -1) over a vocabulary of ``n_words``."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, n_words, size=(300, 12))
    for b, length in enumerate(rng.integers(1, 13, size=300)):
        tokens[b, length:] = -1
    data = numeric.Dataset(tokens, rng.integers(0, n_classes, 300), n_words, n_classes)
    spec = numeric.ModelSpec(d=d, d_key=3, classifier="linear", trainable=trainable)
    params = numeric.init_params(spec, data, seed=seed, query_scale=1.0, key_scale=1.0,
                                 embedding_scale=1.0)
    return params, data, spec


@pytest.mark.parametrize("n_classes, d", [(2, 40), (5, 40), (3, 3)])
@pytest.mark.parametrize("trainable", [("keys", "embeddings"),
                                       ("keys", "embeddings", "classifier", "query")])
def test_class_space_order_agrees_with_the_context_order(n_classes, d, trainable):
    """The linear module's two printed contraction orders (``z = rows_a @ (V Uᵀ)`` and
    ``z = (rows_a @ V) Uᵀ``) give the same loss and gradients to float64 rounding."""
    from numeric._generated import linear
    params, data, spec = _ragged_problem(3, 20, n_classes, d, trainable)
    args = (data.flat_tokens, data.offsets, data.labels)
    wrt = set(spec.param_names)
    fw_h = linear.forward_context(*args, **params)
    fw_c = linear.forward_classes(*args, **params)
    assert "h" not in fw_c and "VU" in fw_c
    np.testing.assert_allclose(fw_c["ell"], fw_h["ell"], rtol=1e-12)
    by_h = linear.backward_context(fw_h, *args, **params, wrt=wrt)
    by_c = linear.backward_classes(fw_c, *args, **params, wrt=wrt)
    assert set(by_c) == set(by_h) == wrt
    for name in wrt:
        scale = np.abs(by_h[name]).max()
        assert np.abs(by_c[name] - by_h[name]).max() <= 1e-12 * scale, name


def test_the_cheaper_order_is_chosen_by_the_shapes():
    """Through the classes when ``C < d`` and the ``(W, C)`` table is smaller than one
    number per token; through the context otherwise (a wide vocabulary, or ``C ≥ d``)."""
    from numeric._generated import linear
    from numeric._generated._runtime import _class_space_cheaper
    params, data, spec = _ragged_problem(4, 20, 2, 40, ("keys", "embeddings"))
    tokens = data.flat_tokens
    assert _class_space_cheaper(tokens, params["embeddings"], params["classifier"])
    assert not _class_space_cheaper(tokens, np.zeros((tokens.size, 40)), params["classifier"])
    assert not _class_space_cheaper(tokens, params["embeddings"], np.zeros((40, 40)))
    fw = linear.forward(data.flat_tokens, data.offsets, data.labels, **params)
    assert "VU" in fw
    # the public forward keeps every intermediate of the model, the context included
    assert numeric.forward(params, data, spec)["h"].shape == (len(data), 40)
    np.testing.assert_allclose(numeric.context(params, data, spec),
                               numeric.forward(params, data, spec)["h"])


def test_class_space_logits_are_the_context_logits_symbolically():
    """``Σ_i a[i] VU[i, c]`` with ``VU`` substituted is ``Σ_k U[c, k] h[k]`` with ``h``
    substituted, as index-form expressions (the reassociation the printer relies on)."""
    import sympy as sp

    from symbolic.indexform import IExpr, canonical
    from symbolic.model import VU, Model, h

    def logits(model, inner):
        nodes = {n.name: n for n in model.nodes}
        z = nodes["z"].definition
        table = nodes[inner]
        return z.replace(lambda x: isinstance(x, sp.Indexed) and x.base == table.base,
                         lambda x: table.definition.xreplace(dict(zip(table.indices,
                                                                      x.indices))))
    context = logits(Model("linear"), "h")
    classes = logits(Model("linear", contraction="classes"), "VU")
    assert context.has(h) is False and classes.has(VU) is False
    difference = IExpr.from_sympy(sp.expand(context - classes)).terms
    assert not canonical(difference).terms


@pytest.mark.parametrize("kwargs, message", [
    (dict(classifier="mlp", contraction="classes"), "needs the linear classifier"),
    (dict(classifier="linear", loss="abstract", contraction="classes"), "with cross-entropy"),
    (dict(classifier="linear", contraction="rows"), "unknown contraction"),
])
def test_bad_contraction_is_named(kwargs, message):
    from symbolic.model import Model
    with pytest.raises(ValueError, match=message):
        Model(**kwargs)


def nan_gradient(real):
    def gradient(*args, **kwargs):
        return {name: np.full_like(g, np.nan) for name, g in real(*args, **kwargs).items()}
    return gradient


def test_a_nan_gradient_fails_the_finite_difference_check(monkeypatch):
    """NaN errors were dropped by ``err > worst`` (and by verify's own maximum): an all-NaN
    gradient passed with worst error 0. Its control: the real gradient passes."""
    import numeric.checks as checks
    from attnflow.commands.verify import finite_differences

    params, data, spec = random_problem(1, "linear")
    assert fd_check(params, data, spec).worst < 1e-6 and finite_differences(0, count=2)[0]
    monkeypatch.setattr(checks, "gradient", nan_gradient(checks.gradient))
    assert np.isnan(fd_check(params, data, spec).worst)
    ok, detail = finite_differences(0, count=2)
    assert not ok and "worst relative error nan" in detail


def test_verify_keeps_a_nan_error_of_a_later_configuration(monkeypatch):
    import numeric.checks as checks
    from attnflow.commands.verify import finite_differences

    real, calls = checks.gradient, []

    def second_is_nan(*args, **kwargs):
        calls.append(1)
        return (nan_gradient(real) if len(calls) == 2 else real)(*args, **kwargs)
    monkeypatch.setattr(checks, "gradient", second_is_nan)
    assert not finite_differences(0, count=3)[0]



def test_names_given_as_a_generator_are_read_once():
    """A generator was used up by the first reading: ModelSpec stored trainable=() (so a
    dataclasses.replace of it trained nothing) and wrt gave an empty gradient."""
    import dataclasses

    params, data, spec = random_problem(1, "linear")
    from_generator = numeric.ModelSpec(d=spec.d, d_key=spec.d_key,
                                       trainable=(n for n in ("keys", "embeddings")))
    assert from_generator.trainable == ("keys", "embeddings")
    assert dataclasses.replace(from_generator, dtype="float32").trained == ("embeddings", "keys")
    grad = numeric.gradient(params, data, spec, wrt=(n for n in ("keys", "query")))
    assert set(grad) == {"keys", "query"}
    with pytest.raises(ValueError, match="wrt must be a collection"):
        numeric.gradient(params, data, spec, wrt=3)

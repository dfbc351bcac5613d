"""The padded-batch engine's runtime helpers (numeric/_generated/_dense.py): each one against
NumPy written plainly, and the multi-head step cut into thread shares against one share."""

import os

import numpy as np
import pytest

import numeric
from numeric._generated import _dense
from numeric.engine import _padded


def ragged(n_sentences, length, n_words=9, n_classes=3, seed=0) -> numeric.Dataset:
    """Sentences of 1..length tokens (some words repeated), padding at the end."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, n_words, (n_sentences, length))
    lengths = rng.integers(1, length + 1, n_sentences)
    tokens[np.arange(length)[None, :] >= lengths[:, None]] = numeric.PAD
    return numeric.Dataset(tokens, rng.integers(0, n_classes, n_sentences), n_words, n_classes)


def step(data, dtype="float64", wrt=None):
    spec = numeric.ModelSpec(architecture="multi-head", d=2, d_head=2, heads=2, dtype=dtype)
    params = numeric.init_params(spec, data, seed=3)
    return numeric.value_and_gradient(params, data, spec, wrt)


@pytest.mark.parametrize("length", range(1, 12))
def test_the_halving_maximum_equals_numpys_maximum_for_every_length_and_layout(length):
    x = np.random.default_rng(length).standard_normal((3, 4, length))
    expected = x.max(axis=-1, keepdims=True)
    transposed = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    assert np.array_equal(_dense._row_max(x), expected)
    assert np.array_equal(_dense._row_max(transposed), expected)


def test_the_scatter_adds_repeated_words_and_skips_padding():
    data = ragged(6, 5, n_words=4)
    x = np.random.default_rng(1).standard_normal((6, 5, 3))
    expected = np.zeros((4, 3))
    np.add.at(expected, data.tokens[data.mask], x[data.mask])
    got = _dense._scatter_padded(data.safe_tokens, data.mask_as(np.float64), 4, x)
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("spec", ["bik,hxk->bhix", "bhjx,bhix->bhij", "bhij,bhjx->bhix",
                                  "bik,bhix->hxk", "hxk,bhix->bik", "bhx,bhji->bhix",
                                  "bk,b->bk", "bhp,bhip->bhi"])
def test_a_contraction_equals_einsum_with_its_scale_and_outer_letter(spec):
    rng = np.random.default_rng(len(spec))
    sizes = dict(zip("bhijkpx", (5, 2, 3, 3, 4, 3, 2)))
    inputs, out = spec.split("->")
    x, y = (rng.standard_normal([sizes[ch] for ch in s]) for s in inputs.split(","))
    expected = np.einsum(spec, x, y)
    np.testing.assert_allclose(_dense._contract(spec, x, y), expected, rtol=1e-13)
    outer = out[-1]
    np.testing.assert_allclose(_dense._contract(spec, x, y, scale=0.5, outer=outer),
                               0.5 * expected, rtol=1e-13)


@pytest.mark.parametrize("threads, share_min, chunk_tokens", [
    (2, 0, 1 << 20), (3, 0, 1 << 20), (2, 1 << 60, 1 << 20),   # shares within one chunk
    (1, 0, 14), (2, 0, 14), (3, 1 << 60, 20)])                 # chunks of 2 or 3 sentences
def test_the_step_cut_into_chunks_and_thread_shares_equals_one_piece(
        monkeypatch, threads, share_min, chunk_tokens):
    data = ragged(23, 7)   # 161 token slots: the long parameter sums are cut too
    monkeypatch.setattr(_dense, "_THREADS", 1)
    monkeypatch.setattr(_dense, "_CHUNK_TOKENS", 1 << 20)
    value, grads = step(data)
    monkeypatch.setattr(_dense, "_THREADS", threads)
    monkeypatch.setattr(_dense, "_SHARE_MIN", share_min)
    monkeypatch.setattr(_dense, "_CHUNK_TOKENS", chunk_tokens)
    cut_value, cut = step(data)
    assert cut_value == pytest.approx(value, rel=1e-14)
    for name in grads:
        np.testing.assert_allclose(cut[name], grads[name], rtol=1e-12, atol=1e-15,
                                   err_msg=name)


@pytest.mark.parametrize("name", ["embeddings", "head_query", "head_key", "head_value",
                                  "head_output", "classifier"])
def test_a_gradient_asked_alone_equals_the_same_gradient_asked_with_all(name):
    data = ragged(5, 4)
    _, every = step(data)
    _, alone = step(data, wrt={name})
    assert set(alone) == {name}
    np.testing.assert_allclose(alone[name], every[name], rtol=1e-14, atol=1e-16)


def test_float32_stays_float32_through_every_intermediate_and_gradient():
    data = ragged(6, 5)
    spec = numeric.ModelSpec(architecture="multi-head", d=2, d_head=2, heads=2,
                             dtype="float32")
    params = numeric.init_params(spec, data, seed=3)
    fw = numeric.forward(params, data, spec)
    assert {n: x.dtype for n, x in fw.items() if x.dtype != np.float32} == {}
    _, grads = numeric.value_and_gradient(params, data, spec)
    assert {n: g.dtype for n, g in grads.items() if g.dtype != np.float32} == {}
    _, grads64 = step(data)
    for n in grads:
        np.testing.assert_allclose(grads[n], grads64[n], rtol=2e-4, atol=1e-6, err_msg=n)


def test_the_lean_forward_keeps_what_the_backward_reads_and_the_same_values():
    data = ragged(5, 4)
    spec = numeric.ModelSpec(architecture="multi-head", d=2, d_head=2, heads=2)
    params = numeric.init_params(spec, data, seed=3)
    forward, backward = _padded(spec)
    args = (data.safe_tokens, data.mask_as(np.float64), data.labels)
    every = forward(*args, **params, **spec.constants)
    lean = forward(*args, **params, **spec.constants, every=False)
    assert "s" in every and "s" not in lean and set(lean) < set(every)
    for n in lean:
        np.testing.assert_array_equal(lean[n], every[n], err_msg=n)
    wrt = frozenset(params)
    from_every = backward(every, *args, **params, **spec.constants, wrt=wrt)
    from_lean = backward(lean, *args, **params, **spec.constants, wrt=wrt)
    for n in from_every:
        np.testing.assert_array_equal(from_lean[n], from_every[n], err_msg=n)


@pytest.mark.parametrize("blas, omp, shares", [
    (None, "2", 1), ("2", "2", 1), ("1", "2", min(2, os.cpu_count() or 1)), ("1", "1", 1),
    (" 1 ", None, os.cpu_count() or 1)])
def test_the_batch_is_shared_among_threads_only_where_blas_runs_on_one(blas, omp, shares,
                                                                       monkeypatch):
    """Shares and a threaded BLAS contend for the cores: one or the other takes them."""
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    if blas is not None:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", blas)
    if omp is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert _dense._thread_budget() == shares

"""Models as data: the description API, the self-attention family, a model written in a test.

The self-attention family is derived from its description and printed by the generic padded
printer; both are checked against an independent writing of the loss (``sympy.diff`` of it,
exactly, and numerically against the engine), and the generic printer against the paper's own
engine. A researcher's model (linear attention) is defined here, with the public API only.
"""

import dataclasses
import itertools
import types

import numpy as np
import pytest
import sympy as sp

import numeric
from numeric.checks import random_problem
from symbolic import description as D
from symbolic.explicit import Expansion, compare_model
from symbolic.models import CATALOGUE, load
from symbolic.models.attention import d_head, heads, multi_head
from symbolic.print_dense import module_source
from tests.conftest import thorough

TINY = {D.L: 2, D.d: 1, d_head: 1, heads: 1, D.C: 2}


def compiled(source: str) -> types.ModuleType:
    """A printed module, loaded from its text (as ``attnflow derive`` would write it)."""
    module = types.ModuleType("printed")
    exec(compile(source, "printed", "exec"), module.__dict__)
    return module


def ragged_data(seed: int, n_words=7, n_classes=3, lengths=(3, 2, 3, 1)) -> numeric.Dataset:
    rng = np.random.default_rng(seed)
    tokens = np.full((len(lengths), max(lengths)), numeric.PAD)
    for b, n in enumerate(lengths):
        tokens[b, :n] = rng.integers(0, n_words, n)
    return numeric.Dataset(tokens, rng.integers(0, n_classes, len(lengths)), n_words,
                           n_classes)


# --- the catalogue and the description API ------------------------------------------------

def test_the_catalogue_holds_the_paper_and_the_self_attention_family():
    assert {"paper", "self-attention", "multi-head"} <= set(CATALOGUE)
    assert CATALOGUE["self-attention"].fixed == {"heads": 1}
    assert [p.name for p in CATALOGUE["multi-head"].model().params] == [
        "embeddings", "head_query", "head_key", "head_value", "head_output", "classifier"]


def test_an_unknown_model_name_is_refused_naming_the_catalogue():
    with pytest.raises(ValueError, match="unknown model 'transformer'.*multi-head"):
        load("transformer")


def _toy(**change):
    """A one-node model: z[c] = Σ_k U[c, k] Σ_i E[i, k], cross-entropy (pieces replaceable)."""
    i, k, c, e = D.TOKEN.index(0), D.EMBED.index(0), D.CLASS.index(0), D.CLASS.index(1)
    E, U, Y, z = (sp.IndexedBase(n) for n in ("E", "U", "Y", "z"))
    parts = dict(
        params=[D.Param("embeddings", E, (i, k), True, "x_i"),
                D.Param("classifier", U, (c, k), False, "U")],
        nodes=[D.node("z", (c,), sp.Sum(U[c, k] * sp.Sum(E[i, k], (i, 0, D.L - 1)),
                                        (k, 0, D.d - 1)), "logits")])
    ce, fold = D.cross_entropy(z, Y, c, e)
    parts["nodes"].append(ce)
    parts.update(change)
    return D.model("toy", "a toy", kinds=(D.TOKEN, D.EMBED, D.CLASS), loss="cross-entropy",
                   data=(D.Data("labels", Y, (c,), "label"),), folds=(fold,), **parts)


def test_a_valid_description_is_built():
    assert [n.name for n in _toy().nodes] == ["z", "ell"]


@pytest.mark.parametrize("change, message", [
    (lambda i, k, c: dict(nodes=[D.node("z", (c,), sp.IndexedBase("F")[c, k], "x")]),
     "reads F, which is neither a parameter"),
    (lambda i, k, c: dict(params=[D.Param("embeddings", sp.IndexedBase("E"), (k, i), True,
                                          "x")]), "first index must be a token"),
    (lambda i, k, c: dict(params=[
        D.Param("embeddings", sp.IndexedBase("E"), (i, k), True, "x"),
        D.Param("classifier", sp.IndexedBase("U"), (c, k), False, "U"),
        D.Param("unused", sp.IndexedBase("B"), (k,), False, "B")]), "read by no node"),
    (lambda i, k, c: dict(nodes=[D.node("z", (c,), sp.IndexedBase("U")[c, k], "x")]),
     "free index"),
    (lambda i, k, c: dict(nodes=[D.node("z", (c,), sp.Sum(sp.IndexedBase("U")[c, k] * sp.Symbol(
        "beta") * sp.IndexedBase("E")[i, k], (k, 0, D.d - 1), (i, 0, D.L - 1)), "x")]),
     "undeclared symbol"),
])
def test_a_description_that_reads_something_undeclared_is_refused(change, message):
    i, k, c = D.TOKEN.index(0), D.EMBED.index(0), D.CLASS.index(0)
    with pytest.raises(ValueError, match=message):
        _toy(**change(i, k, c))


def test_an_index_kind_the_model_does_not_declare_is_refused():
    extra = D.kind("rank", D.size("r_rank"), ("g_r",))
    i, k, c = D.TOKEN.index(0), D.EMBED.index(0), D.CLASS.index(0)
    U = sp.IndexedBase("U")
    with pytest.raises(ValueError, match="not an index of a declared kind|does not declare"):
        _toy(params=[D.Param("embeddings", sp.IndexedBase("E"), (i, k), True, "x"),
                     D.Param("classifier", U, (c, k, extra.index(0)), False, "U")])


def test_a_softmax_must_normalise_over_its_last_index():
    i, j = D.TOKEN.index(0), D.TOKEN.index(1)
    with pytest.raises(ValueError, match="last index must be j"):
        D.softmax("a", sp.IndexedBase("s"), (j, i), j, "attention")


# --- the self-attention family: derivation, engine, API ------------------------------------

@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error"])
def test_multi_head_gradients_equal_sympy_diff_of_the_loss_written_by_hand(loss):
    assert compare_model(multi_head(loss), TINY) == []


@pytest.mark.skipif(not thorough(), reason="long: runs in the thorough profile")
@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error", "abstract"])
@pytest.mark.parametrize("sizes", [{D.L: 2, D.d: 2, d_head: 1, heads: 2, D.C: 2},
                                   {D.L: 3, D.d: 1, d_head: 2, heads: 1, D.C: 3}])
def test_multi_head_gradients_on_the_grid(loss, sizes):
    assert compare_model(multi_head(loss), sizes) == []
    assert compare_model(multi_head(loss), sizes, by_hand=False, point=3) == []


def test_a_wrong_node_is_caught_by_the_comparison_with_the_writing_by_hand():
    """The description with the value projection doubled: its derivation is consistent with
    itself, so only the independent writing can tell, and it does, at every parameter that
    the value reaches."""
    model = multi_head("cross-entropy")
    nodes = tuple(dataclasses.replace(n, definition=2 * n.definition) if n.name == "xv" else n
                  for n in model.nodes)
    wrong = dataclasses.replace(model, nodes=nodes)
    assert {m.param for m in compare_model(wrong, TINY)} >= {"head_value", "head_output"}


def reference_loss(params, words, label, spec):
    """One sentence's loss, written by hand in NumPy (complex-safe: no max subtraction, so
    the complex step can differentiate it): ``softmax(X Qᵀ K Xᵀ/τ) X Vᵀ O`` per head, summed,
    mean over the tokens, ``z = U ȳ``."""
    x = params["embeddings"][words]
    y = 0
    for h in range(spec.heads):
        q, k, v = (x @ params[n][h].T for n in ("head_query", "head_key", "head_value"))
        e = np.exp(q @ k.T / spec.temperature)
        y = y + (e / e.sum(axis=1, keepdims=True)) @ v @ params["head_output"][h]
    z = params["classifier"] @ y.mean(axis=0)
    if spec.loss == "squared-error":
        return 0.5 * ((z - np.eye(len(z))[label]) ** 2).sum()
    return np.log(np.exp(z).sum()) - z[label]


def reference_gradient(params, data, spec):
    """The mean loss's gradient by the complex step ``Im f(θ + i·h·e) / h`` (exact to rounding,
    no cancellation), entry by entry, on the real tokens of each sentence."""
    step = 1e-30
    grads = {}
    for name, x in params.items():
        grads[name] = np.zeros_like(x)
        for at in itertools.product(*map(range, x.shape)):
            moved = {n: v.astype(complex) for n, v in params.items()}
            moved[name][at] += 1j * step
            grads[name][at] = sum(reference_loss(moved, data.tokens[b][data.mask[b]],
                                                 data.labels[b], spec).imag
                                  for b in range(len(data))) / (step * len(data))
    value = np.mean([reference_loss(params, data.tokens[b][data.mask[b]], data.labels[b],
                                    spec) for b in range(len(data))])
    return value, grads


@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error"])
def test_the_printed_engine_equals_a_reference_written_by_hand_on_ragged_sentences(loss):
    data = ragged_data(4)
    spec = numeric.ModelSpec(architecture="multi-head", d=2, d_head=2, heads=2, loss=loss,
                             temperature=0.7)
    params = numeric.init_params(spec, data, seed=2)
    value, grads = numeric.value_and_gradient(params, data, spec)
    expected_value, expected = reference_gradient(params, data, spec)
    assert value == pytest.approx(expected_value, rel=1e-13)
    for n in params:
        np.testing.assert_allclose(grads[n], expected[n], rtol=1e-11, atol=1e-14, err_msg=n)


def test_padding_changes_nothing_in_the_self_attention_engine():
    spec = numeric.ModelSpec(architecture="multi-head", d=3, d_head=2, heads=2)
    short = numeric.Dataset([[1, 4]], [1], 6, 2)
    padded = numeric.Dataset([[1, 4, numeric.PAD, numeric.PAD]], [1], 6, 2)
    params = numeric.init_params(spec, short, seed=5)
    a, ga = numeric.value_and_gradient(params, short, spec)
    b, gb = numeric.value_and_gradient(params, padded, spec)
    assert a == pytest.approx(b, rel=1e-15)
    for n in ga:
        np.testing.assert_allclose(ga[n], gb[n], rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scores_of_a_thousand_do_not_overflow_the_softmax(dtype):
    data = numeric.Dataset([[0, 1, 2]], [0], 3, 2)
    spec = numeric.ModelSpec(architecture="self-attention", d=1, d_head=1, temperature=1.0,
                             dtype=dtype)
    params = numeric.init_params(spec, data, seed=0)
    params["embeddings"] = np.array([[30.0], [-30.0], [1.0]], dtype=dtype)
    for name in ("head_query", "head_key"):
        params[name] = np.ones((1, 1, 1), dtype=dtype)   # scores x_i x_j up to ±900
    value, grads = numeric.value_and_gradient(params, data, spec)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())
    a = numeric.attention(params, data, spec)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("loss", ["cross-entropy", "squared-error"])
def test_the_generic_printer_reproduces_the_papers_engine(loss):
    """The padded printer, run on the paper's own descriptions, gives the paper's engine."""
    from symbolic.model import Model
    for classifier in ("linear", "mlp"):
        if loss != "cross-entropy":
            continue
        module = compiled(module_source([Model(classifier)]))
        params, data, spec = random_problem(5, classifier)
        fw = module.forward_cross_entropy(data.safe_tokens, data.mask_as(spec.float),
                                          data.labels, **params)
        grads = module.backward_cross_entropy(fw, data.safe_tokens, data.mask_as(spec.float),
                                              data.labels, **params, wrt=set(spec.param_names))
        value, expected = numeric.value_and_gradient(params, data, spec)
        assert fw["ell"].mean() == pytest.approx(value, rel=1e-13)
        for n in expected:
            np.testing.assert_allclose(grads[n], expected[n], rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    (dict(architecture="transformer"), "unknown architecture"),
    (dict(architecture="self-attention", heads=2), "one head"),
    (dict(architecture="multi-head", temperature=0.0), "temperature must be a finite number"),
    (dict(architecture="multi-head", temperature=float("inf")), "temperature"),
    (dict(architecture="multi-head", temperature=float("nan")), "temperature"),
    (dict(architecture="multi-head", temperature=True), "temperature"),
    (dict(architecture="multi-head", loss="hinge"), "unknown loss 'hinge'"),
    (dict(d_head=4), "belongs to the self-attention"),
    (dict(loss="squared-error"), "unknown loss"),
    (dict(architecture="multi-head", heads=0), "heads must be a positive integer"),
    (dict(architecture="multi-head", trainable=("keys",)), "unknown trainable parameter"),
])
def test_a_bad_spec_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        numeric.ModelSpec(**kwargs)


def test_the_default_temperature_is_the_square_root_of_the_head_width():
    spec = numeric.ModelSpec(architecture="multi-head", d=8, d_head=9, heads=3)
    assert spec.temperature == 3.0 and spec.trained == spec.param_names
    assert spec.shapes(20, 4)["head_output"] == (3, 9, 8)


@pytest.mark.parametrize("bad, message", [
    (lambda p, d, s: (p, d, dict(d=3)), "spec must be a numeric.ModelSpec"),
    (lambda p, d, s: (p, [[0, 1]], s), "data must be a numeric.Dataset"),
    (lambda p, d, s: ({k: v for k, v in p.items() if k != "head_key"}, d, s),
     r"missing parameter\(s\) \['head_key'\]"),
    (lambda p, d, s: ({**p, "head_key": None}, d, s), "head_key"),
])
def test_the_api_answers_a_wrong_argument_with_a_value_error_naming_it(bad, message):
    data = ragged_data(1)
    spec = numeric.ModelSpec(architecture="multi-head", d=2, d_head=1, heads=2)
    params = numeric.init_params(spec, data, seed=0)
    with pytest.raises(ValueError, match=message):
        numeric.gradient(*bad(params, data, spec))


def test_score_refuses_non_finite_keys():
    with pytest.raises(ValueError, match="non-finite value"):
        numeric.score({"keys": np.array([[np.nan, 1.0]]), "query": np.ones(2)})


# --- a researcher's own model, written with the public API only ---------------------------

def linear_attention():
    """Linear attention, one head: ``a_ij = s_ij / L`` with ``s_ij = (Q x_i)·(K x_j)`` (no
    softmax), ``y_i = Σ_j a_ij V x_j`` in ``ℝ^r``, mean over tokens, ``z = U ȳ``,
    cross-entropy."""
    r = D.size("r")
    rank = D.kind("rank", r, ("m_r", "n_r"))
    i, j = D.TOKEN.index(0), D.TOKEN.index(1)
    k, x, c, e = D.EMBED.index(0), rank.index(0), D.CLASS.index(0), D.CLASS.index(1)
    E, Q, K, V, U, Y = (sp.IndexedBase(n) for n in ("E", "Q", "K", "V", "U", "Y"))
    q, key, v, s, y, pooled, z = (sp.IndexedBase(n) for n in
                                  ("q", "key", "v", "s", "y", "pooled", "z"))

    def total(expr, idx):
        return sp.Sum(expr, (idx, 0, idx_size(idx) - 1))

    def idx_size(idx):
        return {D.TOKEN.index(0): D.L, D.TOKEN.index(1): D.L, k: D.d, x: r, c: D.C}[idx]
    nodes = [
        D.node("q", (i, x), total(Q[x, k] * E[i, k], k), "query"),
        D.node("key", (i, x), total(K[x, k] * E[i, k], k), "key"),
        D.node("v", (i, x), total(V[x, k] * E[i, k], k), "value"),
        D.node("s", (i, j), total(q[i, x] * key[j, x], x) / D.L, "linear attention"),
        D.node("y", (i, x), total(s[i, j] * v[j, x], j), "output"),
        D.node("pooled", (x,), total(y[i, x], i) / D.L, "pooled"),
        D.node("z", (c,), total(U[c, x] * pooled[x], x), "logits"),
    ]
    ce, fold = D.cross_entropy(z, Y, c, e)
    return D.model(
        "linear-attention", "linear attention (no softmax), one head, cross-entropy",
        kinds=(D.TOKEN, D.EMBED, rank, D.CLASS),
        params=[D.Param("embeddings", E, (i, k), True, "token vector"),
                D.Param("query_map", Q, (x, k), False, "Q"),
                D.Param("key_map", K, (x, k), False, "K"),
                D.Param("value_map", V, (x, k), False, "V"),
                D.Param("classifier", U, (c, x), False, "U")],
        nodes=nodes + [ce], loss="cross-entropy", data=(D.Data("labels", Y, (c,), "label"),),
        folds=(fold,))


def test_a_model_written_in_a_test_is_derived_and_equals_sympy_diff():
    model = linear_attention()
    assert compare_model(model, {D.L: 2, D.d: 1, D.size("r"): 1, D.C: 2}) == []


def test_a_model_written_in_a_test_is_printed_and_its_engine_equals_its_expansion():
    model = linear_attention()
    module = compiled(module_source([model]))
    assert module.PARAMETERS["query_map"] == ("r", "d")
    data = ragged_data(3, n_classes=2, lengths=(2, 3))
    rng = np.random.default_rng(0)
    shapes = {"embeddings": (7, 2), "query_map": (2, 2), "key_map": (2, 2),
              "value_map": (2, 2), "classifier": (2, 2)}
    params = {n: rng.standard_normal(s) for n, s in shapes.items()}
    mask = data.mask_as(np.float64)
    fw = module.forward_cross_entropy(data.safe_tokens, mask, data.labels, **params)
    grads = module.backward_cross_entropy(fw, data.safe_tokens, mask, data.labels, **params,
                                          wrt=set(shapes))
    expected = {n: np.zeros(s) for n, s in shapes.items()}
    total = 0.0
    for b in range(len(data)):
        words = data.tokens[b][data.mask[b]]
        ex = Expansion(model, {D.L: len(words), D.d: 2, D.size("r"): 2, D.C: 2})
        entries = [(p, at) for p in model.params for at in itertools.product(
            *map(range, (len(words),) + shapes[p.name][1:] if p.per_token else shapes[p.name]))]
        labels = [sp.Symbol(f"Y_{c}", real=True) for c in range(2)]
        loss = sp.lambdify([ex.entry(p.name, at) for p, at in entries] + labels, ex.loss)

        def at_point(moved=None, entries=entries, words=words, loss=loss, b=b):
            args = []
            for n, (p, at) in enumerate(entries):
                table = params[p.name][words] if p.per_token else params[p.name]
                args.append(table[at] + (1e-30j if n == moved else 0))
            return loss(*args, *np.eye(2)[data.labels[b]])
        total += at_point().real / len(data)
        for n, (p, at) in enumerate(entries):    # the complex step: exact to rounding
            where = (words[at[0]],) + at[1:] if p.per_token else at
            expected[p.name][where] += at_point(n).imag / 1e-30 / len(data)
    assert fw["ell"].mean() == pytest.approx(total, rel=1e-12)
    for n in shapes:
        np.testing.assert_allclose(grads[n], expected[n], rtol=1e-10, atol=1e-13, err_msg=n)


LINEAR_ATTENTION_FILE = """
import sympy as sp
from symbolic import description as D
from tests.test_models import linear_attention

MODEL = linear_attention()
"""


def run_cli(*args, cwd):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "attnflow", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})


def test_a_model_file_is_described_and_its_engine_written_by_the_command_line(tmp_path):
    (tmp_path / "mine.py").write_text(LINEAR_ATTENTION_FILE)
    shown = run_cli("models", "mine.py", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "query_map" in shown.stdout and "s[i, j] = " in shown.stdout
    derived = run_cli("derive", "--model", "mine.py", "--engine", "engine.py", cwd=tmp_path)
    assert derived.returncode == 0, derived.stderr
    assert "∂ℓ/∂Q[m_r, k]" in derived.stdout
    assert "def backward_cross_entropy(" in (tmp_path / "engine.py").read_text()


@pytest.mark.parametrize("text, message", [
    ("X = 1\n", "must define MODEL"),
    ("raise ValueError('boom')\n", "ValueError: boom"),
    ("from tests.test_models import _toy\nMODEL = _toy(nodes=[])\n", "no nodes"),
])
def test_a_bad_model_file_is_one_line_exit_2(tmp_path, text, message):
    (tmp_path / "bad.py").write_text(text)
    done = run_cli("models", "bad.py", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


# --- trajectory files of the self-attention family -----------------------------------------

def _attention_run(tmp_path, **spec_kwargs):
    data = ragged_data(2)
    spec = numeric.ModelSpec(architecture="multi-head", d=3, d_head=2, heads=2, **spec_kwargs)
    params = numeric.init_params(spec, data, seed=0)
    traj = numeric.gradient_descent(params, data, spec, lr=0.1, steps=6, record_every=3)
    path = tmp_path / "run.npz"
    traj.save(path)
    return traj, path


def test_a_self_attention_trajectory_round_trips_with_its_architecture(tmp_path):
    traj, path = _attention_run(tmp_path, temperature=0.5, loss="squared-error")
    back = numeric.Trajectory.load(path)
    assert back.spec == traj.spec and back.spec.architecture == "multi-head"
    for name, x in traj.params.items():
        np.testing.assert_array_equal(back.params[name], x)


def _rewrite(path, **change):
    fields = dict(np.load(path))
    for name, value in change.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    np.savez(path, **fields)


@pytest.mark.parametrize("change, message", [
    (dict(architecture=np.array("transformer")), "architecture 'transformer' is unknown"),
    (dict(architecture=None), r"belong to the self-attention architectures"),
    (dict(head_value=None), r"missing field\(s\) \['head_value'\]"),
    (dict(keys=np.zeros((3, 7, 2))), r"belong to the paper's model"),
    (dict(temperature=np.array([1.0, 2.0])), "temperature must be a number"),
    (dict(temperature=np.float64(-1.0)), "temperature must be a finite number > 0"),
    (dict(loss_function=np.array("hinge")), "loss_function 'hinge' is unknown"),
])
def test_a_self_attention_file_with_a_wrong_model_field_is_refused_naming_it(
        tmp_path, change, message):
    _, path = _attention_run(tmp_path)
    _rewrite(path, **change)
    with pytest.raises(ValueError, match=message):
        numeric.Trajectory.load(path)


def test_laws_reads_the_architecture_of_a_file(tmp_path):
    _, path = _attention_run(tmp_path)
    done = run_cli("laws", str(path), "--json", str(tmp_path / "r.json"), cwd=tmp_path)
    import json
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["architecture"] == "multi-head" and report["classifier"] is None
    assert "multi-head, 2 heads, d = 3, d_head = 2" in done.stdout


# --- campaigns over the self-attention family ----------------------------------------------

def test_a_self_attention_case_reruns_from_its_text_and_integrates():
    from numeric.campaign import Config, run_case
    config = Config(seed=3, architecture="multi-head", heads=2, d_head=2, d=2, a2=False,
                    trainable=("head_query", "head_key", "classifier"), horizon=20.0)
    assert Config.from_text(config.to_text()) == config
    result = run_case(config.to_text())
    assert result.status == "ok" and result.n_steps > 0 and result.score_growth > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(architecture="multi-head"), "a2"),
    (dict(architecture="multi-head", a2=False, d_key=3), "d_key belongs to the paper"),
    (dict(architecture="self-attention", a2=False, heads=2), "heads must be 1"),
    (dict(heads=2), "heads belongs to the self-attention"),
    (dict(architecture="multi-head", a2=False, trainable=("keys",)), "trainable"),
    (dict(architecture="multi-head", a2=False, loss="hinge"), "Config.loss"),
    (dict(loss="squared-error"), "Config.loss"),
])
def test_a_case_mixing_the_two_families_is_refused(kwargs, message):
    from numeric.campaign import Config
    with pytest.raises(ValueError, match=message):
        Config(seed=1, **kwargs)


@pytest.mark.parametrize("model, message", [
    ("mine.py", "no declared laws"), ("transformer", "unknown model 'transformer'")])
def test_check_refuses_a_model_it_cannot_check(tmp_path, model, message):
    done = run_cli("check", "--model", model, "--budget", "1", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr


# --- the audit's theorem on the self-attention engine -------------------------------------

def test_the_audit_catches_a_printed_engine_that_reads_another_sentences_label(monkeypatch):
    """The same printer template wrong in the printer and in the generated file would pass
    derive --check; the audit's engine step runs sentences with distinct labels."""
    from numeric._generated import multi_head as printed
    from proofs import theorems_engine_models as T
    from proofs.kernel import check_theorem
    source = module_source([multi_head(loss) for loss in T.LOSSES]).replace(
        "z[np.arange(z.shape[0]), labels]", "z[np.arange(z.shape[0]), np.roll(labels, 1)]")
    wrong = compiled(source)
    monkeypatch.setattr(T, "ENGINE", dataclasses.replace(T.ENGINE, content=lambda: wrong))
    theorem = T.printed_engine()
    cross_entropy = dataclasses.replace(theorem, steps=tuple(
        s for s in theorem.steps if s.name.endswith("cross-entropy")))
    outcome = check_theorem(cross_entropy)
    failed = {o.step.name for o in outcome.steps if o.status == "failed"}
    assert failed == {"engine-cross-entropy"}
    assert printed.FUNCTIONS  # the real module is untouched


def test_a_wrong_sign_in_one_head_fails_only_that_heads_balance_in_a_case():
    from numeric.campaign import Config, WrongSign, run_case, violated_laws
    case = Config.from_text("seed=0,m=1,n_nontopic=1,n_sentences=2,d=1,a2=no,horizon=10.0,"
                            "architecture=multi-head,heads=2,trainable=head_query+head_key")
    assert not violated_laws(run_case(case))
    with WrongSign("head_key", (1, 0, 0)).applied():
        result = run_case(case)
    assert violated_laws(result) == ["head-query-key"]
    worst = next(r for r in result.reports if r.law == "head-query-key")
    assert worst.worst.startswith("head 1")


@pytest.mark.skipif(not thorough(), reason="long: runs in the thorough profile (a case-level "
                    "test above covers the same patch)")
def test_a_campaign_over_multi_head_finds_and_shrinks_a_wrong_sign_in_one_head():
    from numeric.campaign import WrongSign, run_campaign
    bad = run_campaign(300.0, seed=1, progress=False, workers=1, max_shards=1,
                       fault=WrongSign("head_key", (1, 0, 0)),
                       limits={"model": "multi-head", "max_sentences": 6})
    (found,) = bad.violations
    assert found.shrunk and "head-query-key" in found.laws
    c = found.config
    assert (c.heads, c.d, c.d_head, c.m, c.n_sentences) == (2, 1, 1, 1, 2)


def _decayed_run(tmp_path):
    data = ragged_data(1)
    spec = numeric.ModelSpec(architecture="multi-head", d=3, d_head=2, heads=2)
    params = numeric.init_params(spec, data, seed=0)
    run = numeric.gradient_descent(params, data, spec, lr=0.05, steps=60, record_every=20,
                                   weight_decay=0.01, momentum=0.5)
    path = tmp_path / "run.npz"
    run.save(path)
    return path


def test_laws_lr_explains_the_drift_of_every_self_attention_law(tmp_path):
    """Weight decay and momentum break every balance law; the replay attributes each
    drift to them and to the finite step exactly, from the same declarations."""
    path = _decayed_run(tmp_path)
    done = run_cli("laws", str(path), "--lr", "0.05", "--weight-decay", "0.01", "--momentum",
                   "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    for law in ("head-query-key", "head-value-output", "classifier-output",
                "embedding-projections", "attention-classifier-sum"):
        assert f"{law}: EXPLAINED" in done.stdout
    assert "the run's drift is EXPLAINED" in done.stdout


def test_laws_lr_with_the_wrong_learning_rate_is_not_explained(tmp_path):
    path = _decayed_run(tmp_path)
    done = run_cli("laws", str(path), "--lr", "0.025", "--weight-decay", "0.01", "--momentum",
                   "0.5", cwd=tmp_path)
    assert done.returncode == 1 and "NOT EXPLAINED" in done.stdout

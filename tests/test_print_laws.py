"""The printed law evaluators (numeric/_generated/laws.py) against independent NumPy, and
``derive --check`` covering them."""

import numpy as np
import pytest

import symbolic.generate
from numeric._generated import laws as printed
from numeric.campaign import Config, build
from numeric.engine import forward
from numeric.laws import context_gradient

ATTENTION_LAWS = ("head-query-key", "head-value-output", "classifier-output",
                  "embedding-projections", "attention-classifier-sum")

RNG = np.random.default_rng(8)
T, W, D, DK, C, H = 3, 5, 4, 3, 3, 2
#: heads and head width of the self-attention family's matrices (every axis of its own length)
NH, DH = 2, 3
HEAD_MATRICES = ("head_query", "head_key", "head_value", "head_output")


def snapshots():
    p = {"embeddings": RNG.standard_normal((T, W, D)), "keys": RNG.standard_normal((T, W, DK)),
         "query": RNG.standard_normal((T, DK)), "classifier": RNG.standard_normal((T, C, D)),
         "hidden_weight": RNG.standard_normal((T, H, D)),
         "hidden_bias": RNG.standard_normal((T, H)),
         "output_weight": RNG.standard_normal((T, C, H)),
         "output_bias": RNG.standard_normal((T, C))}
    p.update({name: RNG.standard_normal((T, NH, DH, D)) for name in HEAD_MATRICES})
    const = {"c": RNG.standard_normal(T), "m": RNG.integers(1, 5, (T, W)).astype(float),
             "Pi": RNG.standard_normal((T, D, D))}
    return p, const


def attention_reference_terms(name, p):
    """A and B of the self-attention family's laws, typed independently."""
    rows = {n: np.einsum("thxk,thyk->thxy", p[n], p[n]) for n in HEAD_MATRICES}
    columns = {n: np.einsum("thxk,thxl->tkl", p[n], p[n]) for n in HEAD_MATRICES}
    return {"head-query-key": (rows["head_query"], rows["head_key"]),
            "head-value-output": (rows["head_value"], rows["head_output"]),
            "classifier-output": (np.einsum("tck,tcl->tkl", p["classifier"], p["classifier"]),
                                  columns["head_output"]),
            "embedding-projections": (np.einsum("twk,twl->tkl", p["embeddings"],
                                                p["embeddings"]),
                                      columns["head_query"] + columns["head_key"]
                                      + columns["head_value"]),
            "attention-classifier-sum": (p["classifier"].sum(axis=1), 0.0)}[name]


def reference_terms(name, p, const):
    """A and B typed independently (the tests' reference, not the engine's)."""
    if name in ATTENTION_LAWS:
        return attention_reference_terms(name, p)
    if name == "sen":
        s = np.einsum("twr,tr->tw", p["keys"], p["query"])
        q2 = (p["query"] ** 2).sum(axis=1)[:, None]
        return (0.5 * (p["embeddings"] ** 2).sum(axis=2),
                (s + np.exp(s - const["c"][:, None]) / const["m"]) / q2)
    gram = {"query-key": lambda: np.einsum("ti,tj->tij", p["query"], p["query"]),
            "classifier-embedding": lambda: np.einsum("tci,tcj->tij", p["classifier"],
                                                      p["classifier"]),
            "hidden-embedding": lambda: np.einsum("thi,thj->tij", p["hidden_weight"],
                                                  p["hidden_weight"])}
    sums = {"key-sum": lambda: p["keys"].sum(axis=1),
            "classifier-sum": lambda: p["classifier"].sum(axis=1),
            "output-weight-sum": lambda: p["output_weight"].sum(axis=1),
            "output-bias-sum": lambda: p["output_bias"].sum(axis=1)}
    if name in sums:
        return sums[name](), 0.0
    if name == "embedding-across-classifier":  # (T, W, l): Σ_k Π[l,k] v_{w,k}
        return np.einsum("tlk,twk->twl", const["Pi"], p["embeddings"]), 0.0
    if name == "key-across-query":  # (T, W, r, t): q_r κ_{w,t} and q_t κ_{w,r}
        return (np.einsum("tr,twu->twru", p["query"], p["keys"]),
                np.einsum("tu,twr->twru", p["query"], p["keys"]))
    if name in gram:
        words = p["keys"] if name == "query-key" else p["embeddings"]
        return gram[name](), np.einsum("twi,twj->tij", words, words)
    return ((p["output_weight"] ** 2).sum(axis=1),
            (p["hidden_weight"] ** 2).sum(axis=2) + p["hidden_bias"] ** 2)


def call(fn, p, const, **extra):
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    pool = dict(p, **const, **extra)
    return fn(**{n: pool[n] for n in names})


@pytest.mark.parametrize("name", printed.LAWS)
def test_printed_terms_equal_the_reference(name):
    p, const = snapshots()
    a, b = call(getattr(printed, f"{name.replace('-', '_')}_terms"), p, const)
    ra, rb = reference_terms(name, p, const)
    np.testing.assert_allclose(a, ra, rtol=1e-12)
    np.testing.assert_allclose(b, rb, rtol=1e-12)


def _quantity(name, p, const):
    a, b = call(getattr(printed, f"{name.replace('-', '_')}_terms"), p, const)
    return a - b


@pytest.mark.parametrize("name", printed.LAWS)
def test_printed_rate_is_the_derivative_of_the_printed_quantity(name):
    p, const = snapshots()
    velocity = {f"d_{n}": RNG.standard_normal(x.shape) for n, x in p.items()}
    rate = call(getattr(printed, f"{name.replace('-', '_')}_rate"), p, const, **velocity)
    eps = 1e-6
    ahead = {n: x + eps * velocity[f"d_{n}"] for n, x in p.items()}
    behind = {n: x - eps * velocity[f"d_{n}"] for n, x in p.items()}
    numeric_rate = (_quantity(name, ahead, const) - _quantity(name, behind, const)) / (2 * eps)
    np.testing.assert_allclose(rate, numeric_rate, rtol=1e-6, atol=1e-6)
    assert np.abs(rate).max() > 1e-3          # the velocities really move the quantity


@pytest.mark.parametrize("name", printed.LAWS)
def test_printed_sensitivity_bounds_relative_perturbations(name):
    p, const = snapshots()
    fn = name.replace("-", "_")
    sens = call(getattr(printed, f"{fn}_sensitivity"), p, const)
    slope_c = call(getattr(printed, f"{fn}_slopes"), p, const).get("c", 0.0)
    delta = 1e-7
    for _ in range(5):
        moved = {n: x * (1 + delta * RNG.uniform(-1, 1, x.shape)) for n, x in p.items()}
        change = np.abs(_quantity(name, moved, const) - _quantity(name, p, const))
        assert (change <= delta * sens * (1 + 1e-3) + 1e-15).all()
    if name == "sen":        # ∂Q/∂c: moving c by ε moves Q by about ε |∂Q/∂c|
        shifted = dict(const, c=const["c"] + 1e-7)
        change = np.abs(_quantity(name, p, shifted) - _quantity(name, p, const))
        np.testing.assert_allclose(change, 1e-7 * slope_c, rtol=1e-4)


@pytest.mark.parametrize("classifier", ["linear", "mlp"])
def test_printed_context_gradient_is_the_derivative_of_the_loss_in_h(classifier):
    s = build(Config(seed=3, n_classes=3, m=3, n_sentences=4, d=3, classifier=classifier))
    g = context_gradient(s.params, s.data, s.spec)
    fw = forward(s.params, s.data, s.spec)
    p = s.params

    def loss(h):                               # ℓ(h) written out here, not printed
        if classifier == "linear":
            z = h @ p["classifier"].T
        else:
            z = np.maximum(h @ p["hidden_weight"].T + p["hidden_bias"], 0) @ \
                p["output_weight"].T + p["output_bias"]
        top = z.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
        return lse - z[np.arange(len(z)), s.data.labels]
    eps = 1e-6
    for k in range(fw["h"].shape[1]):
        bump = np.zeros_like(fw["h"])
        bump[:, k] = eps
        fd = (loss(fw["h"] + bump) - loss(fw["h"] - bump)) / (2 * eps)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-5, atol=1e-8)


def test_derive_check_covers_the_printed_laws(monkeypatch):
    from symbolic import laws as SL
    wrong = SL.declare("sen", SL.SEN.statement, SL.SEN.a, SL.SEN.b.subs(SL.m, SL.m + 1),
                       components=SL.SEN.components, component=SL.SEN.component,
                       assumptions=SL.SEN.assumptions, constants=SL.SEN.constants,
                       lemmas=SL.SEN.lemmas)
    monkeypatch.setattr(SL, "LAWS", (wrong,) + SL.LAWS[1:])
    diffs = symbolic.generate.check_generated()
    # the evaluators and the broken-law terms are both printed from the declaration
    changed = {d.split("\n")[0].split("/")[-1].split(" ")[0] for d in diffs}
    assert changed == {"laws.py", "broken.py"}
    assert any("laws.py" in d.split("\n")[0] and "m + 1" in d for d in diffs)


def test_numeric_laws_take_their_terms_from_the_printed_code(monkeypatch):
    from numeric import laws
    from numeric.integrate import integrate_flow
    s = build(Config(seed=4, n_classes=3, m=4, n_sentences=12,
                     trainable=("keys", "embeddings", "classifier")))
    traj = integrate_flow(s.params, s.data, s.spec, 20.0, frozen_rows=s.frozen_rows)
    assert {r.law: r.verdict for r in laws.check_laws(traj, 1e-6)}["SEN"] == "holds"
    right = printed.sen_terms

    def drifting(**args):                  # a printed B that creeps with the snapshot index
        a, b = right(**args)
        return a, b * (1 + 1e-3 * np.arange(len(b))[:, None])
    monkeypatch.setattr(printed, "sen_terms", drifting)
    assert {r.law: r.verdict for r in laws.check_laws(traj, 1e-6)}["SEN"] == "violated"

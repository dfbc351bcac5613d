"""The symbolic derivation: textbook forms, every configuration, explicit-size cross-check."""

import itertools

import pytest
import sympy as sp

from symbolic.derive import derive, flow
from symbolic.explicit import Sizes, compare, grid
from symbolic.indexform import IExpr
from symbolic.model import CLASSIFIER_PARAMS, EMBED, FOLDS, KEY, TOKEN, G, L, Model, V, a, d, q
from tests.conftest import thorough

i, j, k, r = TOKEN.index(0), TOKEN.index(1), EMBED.index(0), KEY.index(0)


def test_score_gradient_is_the_textbook_form():
    """∂ℓ/∂s_i = a_i Σ_k V_ik G_k − a_i Σ_j a_j Σ_k V_jk G_k for any loss (G = ∂ℓ/∂h)."""
    der = derive(Model("linear", "abstract"))
    expected = IExpr.from_sympy(
        a[i] * sp.Sum(V[i, k] * G[k], (k, 0, d - 1))
        - a[i] * sp.Sum(a[j] * V[j, k] * G[k], (j, 0, L - 1), (k, 0, d - 1)), FOLDS)
    assert der.inlined("s") == expected
    assert der.inlined("keys") == expected.times(IExpr.from_sympy(q[r]))


def test_canonical_equality_tells_right_from_wrong():
    der = derive(Model("linear", "abstract"))
    assert (der.inlined("embeddings") - IExpr.from_sympy(G[k] * a[i])).is_zero()
    assert not (der.inlined("embeddings") - IExpr.from_sympy(2 * G[k] * a[i])).is_zero()


@pytest.mark.parametrize("classifier", sorted(CLASSIFIER_PARAMS))
def test_every_trainable_subset_has_a_flow(classifier):
    """The flow is −∂ℓ/∂θ on trainable parameters and exactly 0 on frozen ones."""
    model = Model(classifier)
    der = derive(model)
    names = [p.name for p in model.params]
    subsets = [s for n in range(len(names) + 1) for s in itertools.combinations(names, n)]
    if classifier == "mlp" and not thorough():
        subsets = subsets[::9] + [tuple(names)]
    for subset in subsets:
        f = flow(model, subset)
        assert set(f) == set(names)
        for name in names:
            assert f[name] == (-der.inlined(name) if name in subset else IExpr())
            assert f[name].is_zero() == (name not in subset)


def test_flow_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown parameter"):
        flow(Model("linear"), ("keys", "kees"))


def _grid():
    cases = []
    for sizes in grid(thorough()):
        cases.append(("mlp", sizes))
        if sizes.hidden == 1:  # the linear classifier has no hidden layer
            cases.append(("linear", sizes))
    return cases


@pytest.mark.parametrize("classifier,sizes", _grid(), ids=str)
def test_index_form_equals_explicit_diff(classifier, sizes):
    mismatches = compare(classifier, sizes)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_explicit_check_catches_a_wrong_expression():
    """Negative control: the keys gradient without its softmax-coupling term must fail."""
    der = derive(Model("linear"))
    grads = {name: der.inlined(name).to_sympy() for name in der.grads
             if name in {p.name for p in Model("linear").params}}
    right = der.inlined("keys")
    grads["keys"] = IExpr(right.terms[:1]).to_sympy()  # drop a term
    mismatches = compare("linear", Sizes(2, 1, 1, 2), grads)
    assert mismatches and {m.param for m in mismatches} == {"keys"}
    assert "keys" in str(mismatches[0]) and "L=2" in str(mismatches[0])
    grads["keys"] = -right.to_sympy()  # a flipped sign
    assert {m.param for m in compare("linear", Sizes(2, 1, 1, 2), grads)} == {"keys"}

"""``attnflow derive --render``: complete mathematics — every symbol defined, closed forms
factored and equal to the derivation, the flow over a data set shown."""

import itertools
import random

import pytest
import sympy as sp

from symbolic import render
from symbolic.model import KINDS, Model, c

SIZES = {kind.size: n for kind, n in zip(KINDS, (2, 2, 1, 2, 1))}  # L, d, d_key, C, H


def unfolded(expr, model):
    """``expr`` with each node that a closed form may name written out by its definition."""
    for node in model.nodes:
        if isinstance(node.definition, sp.Sum):
            own = node.indices

            def definition(ref, node=node, own=own):
                return node.definition.xreplace(dict(zip(own, ref.indices)))
            expr = expr.replace(lambda x, node=node: isinstance(x, sp.Indexed)
                                and x.base == node.base, definition)
    return expr


def written_out(total: sp.Sum):
    """A sum over numeric ranges as the explicit sum of its terms."""
    ranges = [range(int(lo), int(hi) + 1) for _, lo, hi in total.limits]
    names = [lim[0] for lim in total.limits]
    return sp.Add(*(total.function.xreplace(dict(zip(names, values)))
                    for values in itertools.product(*ranges)))


def at_random_point(expr, point: dict):
    """``expr`` at the sizes above with every indexed quantity drawn as a rational."""
    expr = expr.xreplace(SIZES).replace(lambda x: isinstance(x, sp.Sum), written_out)
    for x in sorted(expr.atoms(sp.Indexed), key=str):
        point.setdefault(x, sp.Rational(random.Random(str(x)).randint(-9, 9), 7))
    expr = expr.xreplace(point)
    return expr.replace(lambda x: isinstance(x, sp.Heaviside), lambda x: sp.Integer(1))


@pytest.mark.parametrize("model", render._MODELS(), ids=lambda m: f"{m.classifier}-{m.loss}")
def test_factored_closed_forms_equal_the_derivation(model):
    for p in model.params:
        raw, shown = render.closed_forms(model)[p.name]
        free = {x: 1 for x in p.indices}
        point = {}
        assert at_random_point(unfolded(shown.xreplace(free), model), point) == \
            at_random_point(unfolded(raw.xreplace(free), model), point), p.name


def test_closed_forms_are_factored_through_the_logit_gradient_and_the_context():
    shown = sp.latex(render.closed_forms(Model("linear"))["keys"][1])
    assert r"\left({P}_{c} - {Y}_{c}\right) \left({V}_{i,k} - {h}_{k}\right)" in shown


@pytest.mark.parametrize("fmt", ["md", "tex"])
def test_render_shows_the_data_set_flow_with_the_scatter_to_words(fmt):
    text = render.render(fmt)
    assert r"\frac{d {V}_{w,k}}{d\tau} = -\frac{1}{|D|} \sum_{\chi \in D}" in text
    assert r"\omega_\chi[i, w]" in text and r"\frac{d {q}_{r}}{d\tau}" in text
    for defined in ("${P}_{c}$", "$\\theta(x)$", "${G}_{k}$", "${Y}_{c}$", "$d_{key}$"):
        assert defined in text, defined


def test_a_symbol_without_a_meaning_stops_the_rendering():
    rows = render._symbol_table(render._MODELS())
    render._check_defined([sp.IndexedBase("P")[c] * sp.Heaviside(c)], rows)
    with pytest.raises(ValueError, match=r"uses \['R'\] without a meaning"):
        render._check_defined([sp.IndexedBase("P")[c] * sp.IndexedBase("R")[c]], rows)

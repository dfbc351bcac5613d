"""Behaviours of ``discover`` (its count, fields and command), the self-attention family's
laws that no other test pinned down: each test fails under a
realistic one-line bug (``tests/mutation.py``) and passes on the code. Counts and closed
forms are stand-ins or toy families here: each test runs in well under a second."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import sympy as sp

import attnflow.commands.discover as command
import proofs.conjecture
import symbolic.discover
from attnflow.cli import main
from proofs.conjecture import Explanation
from symbolic.discover import SymbolicFields, count_symbolic, linear_rank
from symbolic.laws_attention import LAWS as ATTENTION_LAWS

w1, w2 = sp.symbols("w1 w2")


def test_the_bag_count_keeps_the_sentence_length_past_a_trillion_words():
    """``log C(W + L − 1, L)`` for ``W`` past 1e12: the difference of two log-gammas near
    1e14 loses ``L``'s digits (errors ≈ 0.04 at W = 5e12), the asymptotic form does not."""
    for words, length in [(2 * 10 ** 12, 1), (5 * 10 ** 12, 3), (9 * 10 ** 12, 7)]:
        exact = length * math.log(words) - math.lgamma(length + 1)
        assert symbolic.discover._log_multisets(words, length) == pytest.approx(exact,
                                                                                rel=1e-12)


def test_the_span_of_a_symbolic_familys_fields_counts_the_directions_it_moves():
    """A toy family: (w₂x, w₁x) moves both coordinates, (w₂x, 0) only the first."""
    both = SymbolicFields((w1, w2), [[w2 * x, w1 * x] for x in (1, 2)])
    first = SymbolicFields((w1, w2), [[w2 * x, 0] for x in (1, 2)])
    assert linear_rank(both, [both.point(s) for s in (1, 2, 3)]).rank == 2
    assert linear_rank(first, [first.point(s) for s in (1, 2, 3)]).rank == 1


@pytest.mark.parametrize("read", ["_relu_argument", "_gated"])
def test_a_maximum_with_anything_but_zero_is_refused_as_not_a_relu(read):
    """``max(x, 1)`` is not a ReLU: refused by name, never read as one."""
    import symbolic.fields as F
    x = sp.Symbol("x")
    args = (sp.Max(x, 1),) if read == "_relu_argument" else (sp.Max(x, 1), {})
    with pytest.raises(ValueError, match=r"only max\(x, 0\) is supported"):
        getattr(F, read)(*args)


def test_the_per_head_balances_are_matrices_over_every_pair_of_rows():
    """``Q_h Q_hᵀ − K_h K_hᵀ`` and ``V_h V_hᵀ − O_h O_hᵀ``: every entry (x, y), off the
    diagonal too, for every head — three distinct free indices, all read by the quantity."""
    import symbolic.laws_attention as LA
    for law in (LA.HEAD_QUERY_KEY, LA.HEAD_VALUE_OUTPUT):
        assert len(set(law.components)) == 3
        assert set(law.components) <= law.quantity.free_symbols


# --- the command, with the count and the closed forms replaced by stand-ins ----------------

#: The paper's model with the query frozen: the setting of the topic-structure proofs.
QUERY_FROZEN = ["--trainable", "embeddings,keys,classifier"]


@pytest.fixture
def counted(monkeypatch):
    """A count of one law, found and explained (stand-ins)."""
    x = sp.Symbol("x")
    count = SimpleNamespace(laws=1, summary=lambda: "1 independent law (stand-in)",
                            dimension=2, rank=1, directions=0, frozen=0, gap_decades=40.0,
                            ranks={1: SimpleNamespace(depth=1, route="stand-in")}, lower={})
    monkeypatch.setattr(symbolic.discover, "count_laws", lambda setting: count)
    found = SimpleNamespace(laws=[x], symbols=(x,), rejected=[], independent=1,
                            worst_residual=1e-50, singular_gap=13.0, coefficients=[{}])
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    monkeypatch.setattr(proofs.conjecture, "explain",
                        lambda setting, f: Explanation([], [x], []))


@pytest.mark.parametrize("proved, status", [(True, 0), (False, 1)])
def test_the_papers_model_with_the_query_frozen_proves_the_topic_structure(
        counted, monkeypatch, capsys, proved, status):
    """A1–A3's reduced system is the paper's setting: its verdict decides the exit status."""
    seen = []
    monkeypatch.setattr(command, "_topic", lambda setting, report: seen.append(
        setting.model_name) or proved)
    assert main(["discover", *QUERY_FROZEN]) == status
    assert seen == ["paper"]


def test_the_singular_gap_is_reported_to_a_tenth_of_a_decade():
    found = SimpleNamespace(independent=1, worst_residual=1e-50, singular_gap=13.26,
                            rejected=[])
    assert command._found_report(found)["singular_gap_decades"] == 13.3


def test_a_model_without_declared_laws_says_none_is_declared():
    from proofs.discovered import declared_laws
    setting = SimpleNamespace(model=SimpleNamespace(name="toy", loss="abstract"))
    assert declared_laws(setting) == ([], "none is declared for model toy")


def test_a_scalar_last_node_under_an_abstract_loss_has_one_target_the_upstream_symbol():
    """∂ℓ/∂(a scalar output) is one symbol ``G``, not an array read at entries."""
    from symbolic.fields import target_entries
    G = sp.Symbol("G")
    model = SimpleNamespace(loss="abstract", nodes=[SimpleNamespace(indices=())], upstream=G)
    assert target_entries(model, {}) == [G]


def test_every_sum_of_a_declared_attention_law_runs_over_its_whole_range():
    """``Σ_w E_w E_wᵀ`` reads every word, ``Σ_c U_c`` every class, ``Σ_k`` every embedding
    entry: a sum that skipped one would state another quantity (the audit's rate step refuses
    it, the exact check finds it moving)."""
    import symbolic.laws_attention as LA
    from symbolic.indexform import kind_of
    for law in LA.LAWS:
        for total in (law.a + law.b).atoms(sp.Sum):
            for idx, low, high in total.limits:
                assert (low, high) == (0, kind_of(idx).size - 1), (law.name, total)


def test_the_topic_structure_passes_only_when_every_law_found_is_proved(monkeypatch, capsys):
    """Two laws of the reduced system, the first not proved: not a pass, whatever the last."""
    from symbolic.discover import E_T, N_T, S_T, Setting
    monkeypatch.setattr(symbolic.discover, "topic_laws",
                        lambda: SimpleNamespace(laws=[N_T - S_T, N_T - E_T]))
    verdicts = iter([False, True])
    monkeypatch.setattr(proofs.conjecture, "prove", lambda *a, **k: (
        lambda ok: SimpleNamespace(proved=ok, status="PROVED" if ok else "NOT PROVED"))(
        next(verdicts)))
    report = {}
    assert not command._topic(Setting("linear", trainable=("embeddings", "keys")), report)
    assert [x["proof"] for x in report["topic"]] == ["NOT PROVED", "PROVED"]


@pytest.mark.parametrize("loss, sum_law", [("cross-entropy", True), ("squared-error", False),
                                           ("abstract", False)])
def test_the_declared_laws_of_a_loss_are_those_proved_for_it_or_for_any_loss(loss, sum_law):
    """The multi-head family: the four balances hold for any loss; the classifier sum only
    under cross-entropy (its proof uses the softmax and one-hot labels)."""
    from proofs.discovered import declared_laws
    laws, _ = declared_laws(SimpleNamespace(model=SimpleNamespace(name="multi-head",
                                                                  loss=loss)))
    names = [law.name for law in laws]
    assert names[:4] == ["head-query-key", "head-value-output", "classifier-output",
                         "embedding-projections"]
    assert ("attention-classifier-sum" in names) is sum_law and len(names) == 4 + sum_law


def test_the_confirming_arithmetic_keeps_squared_rounding_noise_and_large_values():
    """Norms square values: rounding noise ≈ 1e-50 (and what it multiplies) squares far below
    1e-100, which must not be flushed to 0, nor 1e60 squared overflow: the exponent range
    lies far beyond the values'."""
    import decimal

    from symbolic.fields import context
    ctx = context()
    tiny, huge = decimal.Decimal("1e-60"), decimal.Decimal("1e60")
    assert ctx.multiply(tiny, tiny) == decimal.Decimal("1e-120")
    assert ctx.multiply(huge, huge) == decimal.Decimal("1e120")


def test_a_direction_only_a_bracket_reaches_is_counted():
    """Heisenberg: X₁ = ∂₁ and X₂ = ∂₂ + w₁∂₃ span two directions at each point, their
    bracket [X₁, X₂] = ∂₃ the third: no law. Without w₁ (X₂ = ∂₂) w₃ never moves: one law."""
    w3 = sp.Symbol("w3")
    assert count_symbolic(SymbolicFields((w1, w2, w3), [[1, 0, 0], [0, 1, w1]])) == {1: 0, 2: 0}
    assert count_symbolic(SymbolicFields((w1, w2, w3), [[1, 0, 0], [0, 1, 0]])) == {1: 1, 2: 1}


# --- the printed gradient program ------------------------------------------------------------

def _run(writer, text, **values):
    """The value of ``text`` after the writer's lines, at ``values``."""
    ns = {"jexp": math.exp, "R": tuple(float(c) for c in writer.constants), **values}
    exec("\n".join(line.strip() for line in writer.lines), ns)  # noqa: S102 - test's own text
    return eval(text, ns)  # noqa: S307 - the writer's printout of a test expression


def test_a_sum_read_twice_is_computed_once():
    """``x + y`` in two places: one line, its variable read twice."""
    from symbolic.fields import _Writer
    x, y = sp.symbols("x y")
    w = _Writer()
    first, second = (w.print(x + y, {x: "x", y: "y"}) for _ in range(2))
    assert first == second and len(w.lines) == 1
    assert _run(w, second, x=2.0, y=3.0) == 5.0


def test_a_negative_reciprocal_is_printed_with_its_denominator():
    """``−1/x``: not ``−1`` (the factor −1 alone in the numerator is a negation only when
    nothing divides it)."""
    from symbolic.fields import _Writer
    x = sp.Symbol("x")
    w = _Writer()
    assert _run(w, w.print(-1 / x, {x: "x"}), x=4.0) == -0.25
    assert _run(w, w.print(-x, {x: "x"}), x=4.0) == -4.0


def test_a_normaliser_a_gradient_reads_is_written_as_the_sum_of_its_exponentials():
    """A gradient holding ``Z_z`` (not folded into ``P``) gets the line
    ``Z_z = e^{z_0} + e^{z_1}``, over the row the softmax normalises."""
    from symbolic.fields import _normalisers, _Writer
    from symbolic.model import C, Model, Z_z, z
    w = _Writer()
    symbols = {z[0]: "z0", z[1]: "z1"}
    assert _normalisers(1 / Z_z, Model("linear"), {C: 2}, symbols, w) == 1 / Z_z
    assert _run(w, symbols[Z_z], z0=0.5, z1=-1.0) == pytest.approx(math.exp(0.5) + math.exp(-1))


# --- the closed forms: the ansatz and its check at fresh points ----------------------------

def test_the_ansatz_is_solved_when_every_field_vanishes_at_its_first_point():
    """X = (w₁ − r, 0) with r the ansatz's first random abscissa: no equation there (rank 0),
    the other points find the law w₂."""
    import numpy as np

    from symbolic.discover import conserved_polynomials
    r = sp.Rational(float(np.random.default_rng(7).uniform(-1, 1, 2)[0]))
    fields = SymbolicFields((w1, w2), [[w1 - r, 0]])
    assert conserved_polynomials(fields, (w1, w2), seed=7).laws == [w2]


def test_the_ansatz_solves_at_least_twice_as_many_equations_as_unknowns(monkeypatch):
    """Each point adds as many equations as its fields span (one here): 14 unknown
    coefficients in 4 coordinates, at least 28 equations."""
    import symbolic.discover as SD
    w3, w4 = sp.symbols("w3 w4")
    fields = SymbolicFields((w1, w2, w3, w4), [[1, 0, 0, 0]])
    rows = []
    real = SD._row_space
    monkeypatch.setattr(SD, "_row_space", lambda values: rows.append(len(real(values)))
                        or real(values))
    found = SD.conserved_polynomials(fields, fields.symbols)
    assert found.laws == [w2, w3, w4]
    assert sum(rows) >= 2 * len(SD.monomials(4))


def test_a_coordinate_no_field_moves_leaves_the_quadratic_laws_found():
    """A rotation of (w₁, w₂) with w₃ still: w₃ and w₁² + w₂². The monomials of w₃ have
    all-zero columns in the ansatz; scaled as if of norm 1e-300 they swamped the nullspace,
    and the linear laws read off it were not linear (a ValueError in their products)."""
    from symbolic.discover import conserved_polynomials
    w3 = sp.Symbol("w3")
    fields = SymbolicFields((w1, w2, w3), [[w2, -w1, 0]])
    found = conserved_polynomials(fields, fields.symbols)
    assert found.laws == [w3, w1 ** 2 + w2 ** 2] and not found.rejected


def test_a_found_law_is_verified_at_two_distinct_fresh_points(monkeypatch):
    from fractions import Fraction

    from symbolic.discover import _residuals
    fields = SymbolicFields((w1, w2), [[1, 0]])
    seeds = []
    real = fields.point
    monkeypatch.setattr(fields, "point", lambda seed: seeds.append(seed) or real(seed))
    assert _residuals(fields, [{(1,): Fraction(1)}]) == [0.0]
    assert len(set(seeds)) == 2


# --- the declared laws of a model, matched exactly -----------------------------------------

def test_a_law_that_needs_a_parameter_frozen_does_not_apply_where_it_trains():
    """key-across-query needs the keys trained and the query frozen."""
    from proofs.discovered import applies
    from symbolic import laws as SL
    law = SL.law("key-across-query")
    assert applies(law, SimpleNamespace(trained=("embeddings", "keys")))
    assert not applies(law, SimpleNamespace(trained=("keys", "query")))


def test_the_exact_check_runs_on_a_model_written_from_its_description_only():
    """Linear attention (no writing by hand): ‖Q‖² − ‖K‖² is conserved exactly (the scores
    read Q and K only through their product), ‖Q‖² + ‖K‖² is not."""
    from proofs.discovered import ExactRates, as_coefficients
    from symbolic.discover import ModelSetting
    from tests.test_models import linear_attention
    setting = ModelSetting(linear_attention(), ("query_map", "key_map", "value_map"),
                           (("C", 2), ("d", 2), ("r", 1)), 2, 2)
    rates = ExactRates(setting, None)
    q, k = ([setting.symbol((name, (0, x))) ** 2 for x in range(2)]
            for name in ("query_map", "key_map"))
    assert rates.conserved(as_coefficients(sum(q) - sum(k), setting, {}))
    assert not rates.conserved(as_coefficients(sum(q) + sum(k), setting, {}))


def test_a_declared_law_with_one_component_drifting_at_fresh_points_does_not_hold(monkeypatch):
    """Every component but the last stays at 0, the last drifts 1e-3: the law is NOT conserved,
    and its status names the worst residual."""
    from fractions import Fraction

    import proofs.discovered as PD
    from symbolic.discover import ModelSetting
    from symbolic.models.attention import multi_head
    model = multi_head("abstract")
    setting = ModelSetting(model, tuple(p.name for p in model.params),
                           (("C", 1), ("d", 1), ("d_head", 2), ("heads", 1)), 1, 1,
                           (("tau", Fraction(1)),))
    monkeypatch.setattr(PD, "exact_check", lambda law, setting, cache: (True, "stand-in"))
    monkeypatch.setattr(symbolic.discover, "_residuals",
                        lambda fields, inst: [0.0] * (len(inst) - 1) + [1e-3])
    monkeypatch.setattr(symbolic.discover, "_functional_rank", lambda span, fields: len(span))
    matched = PD.match(setting, SimpleNamespace(laws=[], coefficients=[]), {}, None)
    assert len(matched.declared) == 4 and not any(x.holds for x in matched.declared)
    assert all(x.status == "NOT conserved here: residual 1e-03 at fresh points"
               for x in matched.declared)


def _factors(expr):
    """Every (base, exponent) of a power in ``expr``, sums opened."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow):
            yield node.base, node.exp


@pytest.mark.parametrize("law", ATTENTION_LAWS, ids=lambda x: x.name)
def test_every_declared_attention_law_is_a_polynomial_of_degree_two_at_most(law):
    for side in (law.a, law.b):
        assert all(e.is_Integer and 0 < e <= 2 for _, e in _factors(side)), (law.name, side)
        for term in sp.Add.make_args(sp.expand(side)):
            body = term.function if isinstance(term, sp.Sum) else term
            entries = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.Indexed)]
            assert len(entries) <= 2, (law.name, term)


def test_the_exact_check_draws_one_hot_targets_for_three_classes():
    """Σ_c U[c, k] is conserved under cross-entropy only for targets summing to one: with
    three classes, targets that are not one-hot (two ones) make it move."""
    from fractions import Fraction

    from proofs.discovered import ExactRates, as_coefficients
    from symbolic.discover import ModelSetting
    from symbolic.models.attention import multi_head

    model = multi_head("cross-entropy")
    setting = ModelSetting(model, ("classifier",),
                           (("C", 3), ("d", 1), ("d_head", 1), ("heads", 1)), 1, 1,
                           (("tau", Fraction(1)),))
    rates = ExactRates(setting, None)
    total = sum(setting.symbol(("classifier", (c, 0))) for c in range(3))
    assert rates.conserved(as_coefficients(total, setting, {}))
    assert not rates.conserved(as_coefficients(setting.symbol(("classifier", (0, 0))),
                                               setting, {}))


def test_a_count_summarises_its_ranks_depth_gap_special_points_and_directions():
    """Rank 3 of 4 at points 1 and 2 (depths 2 and 1, gaps 20 and 30 decades), rank 2 at a
    special point 3, a span of 2: one law, two directions that never move, the deepest
    bracket and the smallest gap reported; the points' seconds add up."""
    from symbolic.discover import Count, LieRank
    ranks = {1: LieRank(3, 4, 2, 20.0, [], 1.5), 2: LieRank(3, 4, 1, 30.0, [], 2.0)}
    count = Count(None, 4, 1, ranks, 2, 40.0, lower={3: 2})
    assert (count.rank, count.laws, count.directions, count.seconds) == (3, 1, 2, 3.5)
    assert count.summary() == (
        "1 independent laws at generic points on 4 trained coordinates (Lie algebra rank 3 at "
        "points [1, 2], bracket depth 2, gap ≥ 20 decades; lower rank at special points "
        "{3: 2}); 2 of them say a direction never moves; 1 frozen coordinates are constant "
        "besides")
    assert "special" not in Count(None, 4, 1, ranks, 2, 40.0).summary()


def test_a_count_whose_points_disagree_has_no_rank():
    from symbolic.discover import Count, LieRank
    ranks = {1: LieRank(3, 4, 2, 20.0, []), 2: LieRank(2, 4, 1, 30.0, [])}
    with pytest.raises(RuntimeError, match="the rank differs between points"):
        _ = Count(None, 4, 0, ranks, 2, 40.0).rank

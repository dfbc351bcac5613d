"""Behaviours of ``discover``'s law count and closed-form search that no other test pinned
down: each test fails under a realistic one-line bug (``tests/mutation.py``) and passes on
the code. Fields are toy families or small settings: each test runs in well under a
second."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

import symbolic.discover as D
from symbolic.discover import Setting

x, y, z = sp.symbols("x y z")


def test_an_expression_costs_one_operation_per_join_and_per_function():
    """``x + y + z`` is two additions, ``x·y`` one product, ``exp(x + y)`` an exponential on
    an addition, ``Σ_{i<4} x_i`` four terms each with its addition."""
    i = sp.Symbol("i", integer=True)
    v = sp.IndexedBase("v")
    assert D._expression_cost(x + y + z, {}) == 2.0
    assert D._expression_cost(x * y, {}) == 1.0
    assert D._expression_cost(sp.exp(x + y), {}) == 2.0
    assert D._expression_cost(sp.Sum(v[i], (i, 0, 3)), {}) == 4.0


def test_a_per_token_table_has_one_row_per_word_before_its_own_sizes():
    """The embeddings ``E[w, k]`` of a 5-word vocabulary at ``d = 3``: a 5 × 3 table."""
    setting = Setting("linear", words=5, d=3)
    assert D._shape_unbuilt(setting, "embeddings") == (5.0, 3.0)


def test_the_cost_counts_the_ansatz_and_gram_schmidt_from_n_and_the_fields():
    """``M = n(n+3)/2`` monomials, an SVD of ``max(2M + 10n, M)·M²`` on a matrix of
    ``max(2M + 10n, M)·M`` entries; Gram–Schmidt ``G·n²`` for ``G`` fields."""
    cost = D.estimate_cost(Setting("linear", trainable=("embeddings", "keys")))
    counts = cost.counts
    n, fields = counts["trained coordinates"], counts["fields"]
    monomials = n * (n + 3) / 2
    assert counts["ansatz SVD"] == pytest.approx((2 * monomials + 10 * n) * monomials ** 2)
    assert cost.footprint["ansatz matrix"] == pytest.approx((2 * monomials + 10 * n) * monomials)
    assert counts["Gram-Schmidt"] == pytest.approx(fields * n * n)
    assert counts["ansatz field operations"] == pytest.approx(
        (n + 12) * counts["field operations"])
    per_field = counts["field operations"] / fields  # brackets: n² jets of an average field
    assert counts["bracket operations"] == pytest.approx(n * n * per_field)


def test_more_than_ten_thousand_relus_price_every_pattern_as_infinite():
    """``2^1500`` ReLU patterns overflow a float: infinite, refused like any other cost
    (the exponent is capped at 10⁴ only to keep it an int of sane size)."""
    setting = Setting("mlp")
    sizes = {k: float(v) for k, v in setting.size_values().items()}
    sizes[D.H_SIZE] = 1500.0
    assert D._fields_per_bag(setting, sizes) == math.inf


def test_the_declared_checks_are_priced_at_sizes_capped_at_two():
    """Five words at ``d = 3`` are priced as two words at ``d = 2``: every trained table at
    most 2 per axis, the programs of one and two tokens, five evaluations per field."""
    setting = Setting("linear", trainable=("embeddings", "keys"), words=5, d=3, d_key=3)
    capped = {k: 2.0 for k in setting.size_values()}
    n = 2 * 2 + 2 * 2  # embeddings 2 × 2, keys 2 × 2
    ops = sum(D.estimated_operations(setting.model, capped, length) for length in (1, 2))
    expected = n * ops * 5 * D._fields_per_bag(setting, capped)
    assert D._capped_work(setting) == pytest.approx(expected)


def test_a_rejected_residual_of_exactly_zero_counts_from_the_floor_of_twice_the_digits():
    """An exact zero vector's residual is 0: the gap is measured against ``10^(−2·DIGITS)``
    (a finite ``2·DIGITS`` decades above an accepted unit vector), never divided by 0."""
    with decimal.localcontext(D.context()):
        basis = D.ExactBasis(decimal.Decimal(1), 2)
        assert basis.offer([decimal.Decimal(1), decimal.Decimal(0)])
        assert basis.gap_decades == pytest.approx(D.DIGITS)  # nothing rejected yet
        assert not basis.offer([decimal.Decimal(0), decimal.Decimal(0)])
        assert basis.gap_decades == pytest.approx(2 * D.DIGITS)


@pytest.fixture(scope="module")
def tiny():
    """Two words, one-token sentences, ``d = d_key = 1``, embeddings and keys trained:
    four coordinates, four fields, and a random point."""
    return D.fields_at(Setting("linear", trainable=("embeddings", "keys"), words=2, max_len=1,
                               d=1, d_key=1), 1)


def _bracket_by_differences(fields, a, b, x, h=1e-5):
    """``[X_a, X_b](x) = DX_b(x)·X_a(x) − DX_a(x)·X_b(x)``, by central differences."""
    x = np.array([float(v) for v in x])

    def X(g, at):
        return np.array(fields(fields.generators[g], list(at), fast=True))

    def along(g, v):
        return (X(g, x + h * v) - X(g, x - h * v)) / (2 * h)
    return along(b, X(a, x)) - along(a, X(b, x))


def test_a_bracket_of_two_fields_is_their_lie_bracket_in_floats_and_in_decimals(tiny):
    """``[X_0, X_1]`` from jets equals the Lie bracket by differences, in either arithmetic
    (a unit ``ε`` in the jets: any other scales every bracket)."""
    fields, x = tiny
    expected = _bracket_by_differences(fields, 0, 1, x)
    assert np.abs(expected).max() > 1e-6
    floats = D._elements(fields, [(0, 1)], fields.state([x], D.FLOAT), 0, D.FLOAT)
    with decimal.localcontext(D.context()):
        decimals = D._elements(fields, [(0, 1)], fields.state([x], D.DECIMAL), 0, D.DECIMAL)
    assert np.asarray(floats, dtype=float)[0] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert np.asarray(decimals, dtype=float)[0] == pytest.approx(expected, rel=1e-6, abs=1e-12)


def _standing_in(monkeypatch, gap, ranks=None):
    """``count_laws`` on stand-ins: two coordinates, rank 1 (or ``ranks[seed]``) at every
    point with ``gap``."""
    fields = SimpleNamespace(n=2, point=lambda seed: [seed])
    ranks = ranks or {}
    monkeypatch.setattr(D, "fields_at", lambda setting, seed: (fields, None))
    monkeypatch.setattr(D, "lie_rank", lambda f, x: D.LieRank(ranks.get(x[0], 1), 2, 1, gap,
                                                                [(0,)]))
    monkeypatch.setattr(D, "linear_rank", lambda f, points: SimpleNamespace(rank=2,
                                                                              gap_decades=40.0))
    return SimpleNamespace(n_trained=2, coordinates=((0,), (1,)))


def test_a_rank_with_a_gap_of_twelve_decades_is_counted(monkeypatch):
    count = D.count_laws(_standing_in(monkeypatch, 12.0))
    assert count.laws == 1 and sorted(count.ranks) == [1, 2]


def test_a_lower_rank_at_one_point_is_outvoted_by_the_next_point(monkeypatch):
    """Ranks 2, 1 at points 1, 2: point 3 is drawn, agrees with 2, and point 2's rank is
    reported as a special point's."""
    count = D.count_laws(_standing_in(monkeypatch, 20.0, {1: 2, 2: 1, 3: 2}))
    assert sorted(count.ranks) == [1, 3] and count.lower == {2: 1}


def test_no_two_of_five_points_agreeing_is_an_error(monkeypatch):
    with pytest.raises(RuntimeError, match="no two of 5 points"):
        D.count_laws(_standing_in(monkeypatch, 20.0, {s: s for s in range(1, 9)}))


def test_a_count_is_as_sure_as_its_least_sure_rank():
    ranks = {1: D.LieRank(1, 2, 1, 20.0, []), 2: D.LieRank(1, 2, 1, 30.0, [])}
    assert D.Count(None, 2, 0, ranks, 2, 40.0).gap_decades == 20.0
    assert D.Count(None, 2, 0, ranks, 2, 15.0).gap_decades == 15.0


def test_a_rank_with_a_gap_under_twelve_decades_is_undecided(monkeypatch):
    with pytest.raises(RuntimeError, match="rank undecided"):
        D.count_laws(_standing_in(monkeypatch, 11.9))


def test_the_span_points_of_a_seed_are_its_own_thousand():
    """Seed 3's span points are points 3000…3005: no other seed's points among them."""
    fields = SimpleNamespace(point=lambda seed: seed)
    assert D._points(None, fields, 3) == [3000, 3001, 3002, 3003, 3004, 3005]


@pytest.fixture(scope="module")
def bracketed():
    """Two words, sentences up to two tokens, ``d = 2``, ``d_key = 1``, the query frozen: ten
    coordinates whose four directions at a point need one bracket (depth 2)."""
    setting = Setting("linear", trainable=("embeddings", "keys", "classifier"), words=2,
                      max_len=2, d=2, d_key=1)
    fields, _ = D.fields_at(setting, 1)
    return fields, fields.point(1)


def test_a_bracket_that_adds_a_direction_is_proposed_by_floats_and_confirmed_by_decimals(
        bracketed):
    fields, x = bracketed
    rank = D.lie_rank(fields, x)
    assert (rank.rank, rank.dimension, rank.depth) == (4, 10, 2)
    assert rank.route == D.LieRank.route
    assert any(len(word) == 2 for word in rank.basis)


def test_the_decimals_alone_reach_the_same_rank_at_the_same_depth(bracketed):
    """The fallback: generators offered first, then brackets depth by depth, each kept only
    when it adds a direction (depth 3 allowed: a basis that kept every bracket would still
    grow there)."""
    fields, x = bracketed
    with decimal.localcontext(D.context()):
        state = fields.state([x], D.DECIMAL)
        values = fields.batch(fields.generators, D._rows(state, len(fields.generators)),
                              D.DECIMAL)
        basis, words, depth = D._exact_greedy(fields, state, values,
                                              D._moving_scale_decimal(values), 3)
    assert (basis.rank, depth, len(words)) == (4, 2, 4)
    assert sum(len(w) == 2 for w in words) == 1


def test_the_span_checks_every_field_value_it_did_not_pick(tiny):
    """Values beyond the picked ones are measured against the span: their residuals (rounding
    noise) are recorded, so the gap is measured, not assumed."""
    fields, _ = tiny
    basis = D.linear_rank(fields, [fields.point(s) for s in (1, 2, 3)])
    assert basis.rank == 2  # twelve values, two directions: ten rows checked, not picked
    assert basis.largest_rejected is not None and basis.largest_rejected < 1e-40


def test_a_nonlinear_bracket_is_evaluated_along_the_point_it_starts_from():
    """X₁ = ∂₁, X₂ = ∂₂ + w₁²∂₃: ``[X₁, X₂] = 2w₁∂₃`` at ``w``, so no law at a point with
    ``w₁ ≠ 0``; without the bracket the third coordinate would look constant."""
    w1, w2, w3 = sp.symbols("w1 w2 w3")
    fields = D.SymbolicFields((w1, w2, w3), [[1, 0, 0], [0, 1, w1 ** 2]])
    at = [sp.Rational(1, 3), sp.Rational(1, 5), sp.Rational(1, 7)]
    import mpmath
    with mpmath.workdps(D.DPS):
        value = D._evaluate(fields, (0, 1), [D.to_mp(v) for v in at], 0)
    assert [float(v) for v in value] == pytest.approx([0.0, 0.0, 2 / 3])
    assert D.count_symbolic(fields) == {1: 0, 2: 0}


def test_a_symbolic_family_is_counted_at_points_one_and_two():
    w1, w2 = sp.symbols("w1 w2")
    assert D.count_symbolic(D.SymbolicFields((w1, w2), [[w2, -w1]])) == {1: 1, 2: 1}


def test_a_symbolic_familys_points_are_nonzero_ninety_sevenths_inside_minus_one_one():
    w = sp.symbols("w0:6")
    fields = D.SymbolicFields(w, [[1] * 6])
    drawn = [p for seed in range(200) for p in fields.point(seed)]
    assert all(p.denominator == 97 and 0 < abs(p) < 1 for p in drawn)
    assert {p.numerator for p in drawn} == set(range(-96, 97)) - {0}


def test_fields_below_half_the_digits_are_noise_and_above_them_motion():
    import mpmath
    with mpmath.workdps(D.DPS):
        with pytest.raises(D.NothingMoves):
            D.moving_scale([[mpmath.mpf(10) ** (-(D.DPS // 2)) / 2]])
        small = mpmath.mpf(10) ** (-(D.DPS // 2)) * 2
        assert D.moving_scale([[small], [small / 2]]) == small


def test_a_trained_last_layer_may_have_equal_rows():
    """Only a frozen last layer must separate the classes: a trained one moves away from any
    equal rows it starts from."""
    from fractions import Fraction
    setting = Setting("linear", trainable=("embeddings", "keys", "classifier"), classes=2)
    frozen = {c: Fraction(1, 8) for c in setting.coordinates}
    assert D._classes_distinct(setting, frozen)
    assert not D._classes_distinct(Setting("linear", trainable=("embeddings", "keys"),
                                           classes=2), frozen)


def test_a_quadratic_that_is_the_square_of_a_linear_law_is_dropped():
    from fractions import Fraction
    linear, square = {(0,): Fraction(1)}, {(0, 0): Fraction(1)}
    other = {(1, 1): Fraction(1)}
    assert D._drop_products([linear, square, other]) == [linear, other]


def test_the_functional_rank_counts_independent_gradients(tiny):
    """``x₀`` and ``x₁`` are independent, ``x₀`` and ``2x₀`` are not, no laws have rank 0."""
    from fractions import Fraction
    fields = tiny[0]
    first, second = {(0,): Fraction(1)}, {(1,): Fraction(1)}
    assert D._functional_rank([first, second], fields) == 2
    assert D._functional_rank([first, {(0,): Fraction(2)}], fields) == 1
    assert D._functional_rank([], fields) == 0


def test_a_family_without_laws_reports_the_whole_gap():
    """``X = ∂₁`` on one coordinate conserves no polynomial: nothing falls below the
    tolerance, and the gap is reported as 99 decades (none dropped)."""
    w1 = sp.Symbol("w1")
    found = D.conserved_polynomials(D.SymbolicFields((w1,), [[1]]), (w1,))
    assert found.laws == [] and found.independent == 0
    assert found.singular_gap == 99.0 and found.worst_residual == 0.0  # no law, no residual


@pytest.mark.parametrize("ratio", [5e-10, 1e-9])
def test_a_singular_value_under_a_billionth_of_the_largest_is_proposed_and_then_checked(
        monkeypatch, ratio):
    """``X = ∂₁`` on one coordinate, its ansatz matrix's second singular value forced to
    ``5·10⁻¹⁰`` or exactly ``10⁻⁹`` of the first: at most ``10⁻⁹``, so its direction is
    proposed as a law — and rejected at fresh points (``x + c·x²`` is not conserved); the
    gap is ``log10(1/ratio)``."""
    w1 = sp.Symbol("w1")
    svd = np.linalg.svd

    def forced(a, *args, **kwargs):
        out = svd(a, *args, **kwargs)
        if np.ndim(a) == 2 and a.shape[0] >= 3 and a.shape[1] == 2 and len(out) == 3:
            u, sing, vt = out
            return u, np.array([sing[0], ratio * sing[0]]), vt
        return out
    monkeypatch.setattr(np.linalg, "svd", forced)
    found = D.conserved_polynomials(D.SymbolicFields((w1,), [[1]]), (w1,))
    assert found.laws == [] and len(found.rejected) == 1
    assert found.singular_gap == pytest.approx(math.log10(1 / ratio))


def test_a_bracket_of_a_bracket_keeps_its_infinitesimals_apart():
    """X₀ = ∂₁, X₁ = ∂₂ + w₁∂₃ + (w₁²/2)∂₄: ``[X₀, X₁] = ∂₃ + w₁∂₄`` and
    ``[X₀, [X₀, X₁]] = ∂₄``, the fourth direction, reached only at depth 2: no law."""
    w = sp.symbols("w1:5")
    fields = D.SymbolicFields(w, [[1, 0, 0, 0], [0, 1, w[0], w[0] ** 2 / 2]])
    at = [sp.Rational(1, 3), sp.Rational(1, 5), sp.Rational(1, 7), sp.Rational(1, 11)]
    import mpmath
    with mpmath.workdps(D.DPS):
        x = [D.to_mp(v) for v in at]
        once = D._evaluate(fields, (0, 1), x, 0)
        twice = D._evaluate(fields, (0, (0, 1)), x, 0)
    assert [float(v) for v in once] == pytest.approx([0.0, 0.0, 1.0, 1 / 3])
    assert [float(v) for v in twice] == pytest.approx([0.0, 0.0, 0.0, 1.0])
    assert D.count_symbolic(fields) == {1: 0, 2: 0}


def test_the_ansatz_takes_twice_the_monomials_over_the_rank_plus_ten_points(monkeypatch):
    """``X = ∂₁`` on one coordinate: two monomials, rank 1, so ``2·2/1 + 10 = 14`` points,
    the first evaluated alone."""
    w1 = sp.Symbol("w1")
    seen, rows = [], D._field_rows

    def counted(fields, points):
        seen.append(len(points))
        return rows(fields, points)
    monkeypatch.setattr(D, "_field_rows", counted)
    D.conserved_polynomials(D.SymbolicFields((w1,), [[1]]), (w1,))
    assert seen == [1, 13]


@pytest.mark.parametrize("sizes, message", [
    ((("C", 2), ("d_head", 1), ("heads", 1)), "size(s) ['d'] missing"),
    ((("C", 2), ("d", 2), ("dd", 2), ("d_head", 1), ("heads", 1)), "unknown size(s) ['dd']"),
    ((("C", 2), ("dd", 2), ("d_head", 1), ("heads", 1)),
     "size(s) ['d'] missing; unknown size(s) ['dd']")])
def test_a_model_setting_names_its_missing_and_its_unknown_sizes_apart(sizes, message):
    from fractions import Fraction

    from symbolic.models.attention import multi_head
    with pytest.raises(ValueError) as error:
        D.ModelSetting(multi_head("cross-entropy"), ("head_query",), sizes, 3, 2,
                       (("tau", Fraction(1)),))
    assert str(error.value) == f"model multi-head: {message}"


def test_the_topic_proofs_are_priced_only_for_the_papers_own_setting():
    """The paper's description read as any model (another name) with embeddings and keys
    trained gets no topic-structure proofs, so none is priced; the paper's setting does."""
    model = Setting().model
    copy = D.ModelSetting(model, ("embeddings", "keys"),
                          tuple((n, 2) for n in model.sizes if n != "L"), entry="copy")
    assert D.estimate_cost(copy).counts["topic"] == 0.0
    assert D.estimate_cost(Setting(trainable=("embeddings", "keys"))).counts["topic"] == 1.0


def test_a_value_outside_the_span_lowers_the_smallest_accepted_residual_only():
    """``within`` records a residual above the threshold as accepted: the smallest of them
    (0.5, then 0.8 leaves it at 0.5)."""
    with decimal.localcontext(D.context()):
        basis = D.ExactBasis(decimal.Decimal(1), 2)
        assert not basis.within([decimal.Decimal("0.5"), decimal.Decimal(0)])
        assert not basis.within([decimal.Decimal("0.8"), decimal.Decimal(0)])
        assert basis.smallest_accepted == decimal.Decimal("0.5") and basis.rank == 0


def test_the_scale_of_field_values_is_their_largest_norm_or_one():
    import mpmath
    assert D.scale_of([[3, 4], [1, 1]]) == 5
    assert D.scale_of([[0, 0]]) == mpmath.mpf(1)


def test_a_fourth_point_is_drawn_when_the_third_agrees_with_no_one(monkeypatch):
    """Ranks 2, 1, 1, 2 at points 1…4: the count stops at point 4 with ranks 1 and 4
    kept (a stand-in that refuses a seventh evaluation: a loop that revisits old points never
    ends)."""
    setting = _standing_in(monkeypatch, 20.0, {1: 2, 2: 1, 3: 1, 4: 2})
    calls, rank = [], D.lie_rank

    def bounded(fields, x):
        calls.append(x)
        assert len(calls) <= 6, "points drawn again"
        return rank(fields, x)
    monkeypatch.setattr(D, "lie_rank", bounded)
    count = D.count_laws(setting)
    assert sorted(count.ranks) == [1, 4] and count.lower == {2: 1, 3: 1}


def test_a_monomials_gradient_is_the_product_rule():
    """At ``x = (3, 5)``: ``∇x₀ = (1, 0)``, ``∇x₀² = (6, 0)``, ``∇x₀x₁ = (5, 3)``."""
    rows = D._monomial_gradients([(0,), (1,), (0, 0), (0, 1), (1, 1)], [3.0, 5.0])
    assert rows.tolist() == [[1, 0], [0, 1], [6, 0], [5, 3], [0, 10]]


def test_a_law_of_fields_that_all_vanish_has_residual_zero():
    """``X = 0``: every quantity is conserved; the residual is measured against a scale of 1,
    never divided by 0."""
    from fractions import Fraction
    w1 = sp.Symbol("w1")
    assert D._residuals(D.SymbolicFields((w1,), [[0]]), [{(0,): Fraction(1)}]) == [0.0]


def test_a_topic_solution_is_kept_only_when_independent_of_those_kept_before():
    """``N``, ``N²`` (a function of ``N``), ``s``: ``N`` and ``s`` are kept."""
    N, S = D.N_T, D.S_T
    assert D._independent_topic([N, N ** 2, S]) == [N, S]


def test_fewer_equations_than_monomials_leave_the_unconstrained_directions_proposed(
        monkeypatch):
    """Fields that vanish at every point but the first give one equation for two monomials:
    the SVD is padded square, so the direction no equation constrains is proposed — and
    rejected at fresh points, where the real fields move."""
    w1 = sp.Symbol("w1")
    rows = D._field_rows

    def vanishing_after_the_first(fields, points):
        out = rows(fields, points)
        return out if len(points) == 1 else [0 * v for v in out]
    monkeypatch.setattr(D, "_field_rows", vanishing_after_the_first)
    found = D.conserved_polynomials(D.SymbolicFields((w1,), [[1]]), (w1,))
    assert found.laws == [] and len(found.rejected) == 1


def test_programs_past_the_lengths_read_are_priced_as_growing_with_the_square_of_the_length(
        monkeypatch):
    """Programs of ``L²`` operations read for lengths 1…8 and extrapolated from the eighth as
    ``P(8)·(L/8)²`` for lengths 9 and 10: the printed operations are ``Σ_{L≤10} L²``, and
    each length's program is evaluated once per field of that length."""
    read = []

    def squared(model, sizes, length):
        read.append(length)
        return float(length ** 2)
    monkeypatch.setattr(D, "estimated_operations", squared)
    counts = D.estimate_cost(Setting("linear", trainable=("embeddings", "keys"),
                                     max_len=10)).counts
    assert sorted(set(read)) == list(range(1, D._LENGTHS_READ + 1))
    assert counts["printed operations"] == pytest.approx(sum(n * n for n in range(1, 11)))
    bags = [math.comb(n + 2, 2) for n in range(1, 11)]  # three words: bags of n tokens
    per_bag = counts["fields"] / sum(bags)
    assert counts["field operations"] == pytest.approx(
        per_bag * sum(b * n * n for n, b in enumerate(bags, 1)))


def test_dropping_an_infinitesimal_leaves_a_plain_number_once_none_is_left():
    """``2 + 3ε₂`` without ``ε₂`` is the number 2; ``5ε₀ + 3ε₂`` keeps ``5ε₀``; ``3ε₂`` is 0."""
    assert D._real_in(D.Jet({0: 2, 2: 3}), 1) == 2
    assert not isinstance(D._real_in(D.Jet({0: 2, 2: 3}), 1), D.Jet)
    kept = D._real_in(D.Jet({1: 5, 2: 3}), 1)
    assert isinstance(kept, D.Jet) and kept.parts == {1: 5}
    assert D._real_in(D.Jet({2: 3}), 1) == 0


def test_a_quadratic_is_in_a_span_only_with_every_monomial_it_has():
    """``x₀ + x₁`` is not a multiple of ``x₀``, nor ``x₀`` of ``x₀ + x₁``: every monomial of
    either side is a column of the rank test."""
    from fractions import Fraction
    one = Fraction(1)
    assert not D._in_span({(0,): one, (1,): one}, [{(0,): one}])
    assert not D._in_span({(0,): one}, [{(0,): one, (1,): one}])
    assert D._in_span({(0,): 2 * one, (1,): 2 * one}, [{(0,): one, (1,): one}])


def test_a_nullspace_of_linear_laws_and_their_products_is_replaced_by_the_linear_laws():
    """Monomials ``x₀``, ``x₀²`` and the nullspace spanned by both: ``x₀²`` is the square of
    the linear law ``x₀``, so only ``x₀`` is kept (before rounding could miss the product)."""
    null = np.eye(2)
    kept = D._only_linear_if_rest_are_products(null, [(0,), (0, 0)], 1000)
    assert np.abs(kept).tolist() == [[1.0, 0.0]]
    # with x₁² among the monomials, x₀'s row is told apart by a zero singular value
    kept = D._only_linear_if_rest_are_products(np.eye(3)[:2], [(0,), (0, 0), (1, 1)], 1000)
    assert np.abs(kept).tolist() == [[1.0, 0.0, 0.0]]
    beyond = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # x₁² is no product of x₀
    assert D._only_linear_if_rest_are_products(beyond, [(0,), (0, 0), (1, 1)], 1000) is beyond


def test_a_residual_does_not_depend_on_the_scale_of_the_law():
    """A rotation ``X = w₂∂₁ − w₁∂₂``: ``w₁`` is no law, and ``1000·w₁`` is no more or less
    of one; the zero polynomial's gradient is 0 and its residual 0."""
    from fractions import Fraction
    w1, w2 = sp.symbols("w1 w2")
    fields = D.SymbolicFields((w1, w2), [[w2, -w1]])
    once, scaled, zero = D._residuals(fields, [{(0,): Fraction(1)}, {(0,): Fraction(1000)}, {}])
    assert once > 0.01 and scaled == pytest.approx(once, rel=1e-12) and zero == 0.0


def test_the_floats_pick_is_confirmed_in_one_decimal_basis(tiny, monkeypatch):
    """The decimals offer the floats' picks and check every other value against them: one
    basis, no second pass offering every value from scratch."""
    made = []

    class Counted(D.ExactBasis):
        def __init__(self, *args):
            made.append(args)
            super().__init__(*args)
    monkeypatch.setattr(D, "ExactBasis", Counted)
    fields, _ = tiny
    assert D.linear_rank(fields, [fields.point(s) for s in (1, 2, 3)]).rank == 2
    assert len(made) == 1


def test_a_residual_of_exactly_zero_in_mpmath_counts_from_the_floor_of_twice_the_digits():
    """As in decimals: nothing rejected is ``DPS`` decades, an exact zero ``2·DPS``."""
    import mpmath
    with mpmath.workdps(D.DPS):
        basis = D.Basis(mpmath.mpf(1))
        assert basis.offer([mpmath.mpf(1), mpmath.mpf(0)])
        assert basis.gap_decades == pytest.approx(D.DPS)
        assert not basis.offer([mpmath.mpf(0), mpmath.mpf(0)])
        assert basis.gap_decades == pytest.approx(2 * D.DPS)


def _ladder():
    """X₀ = ∂₁, X₁ = ∂₂ + w₁∂₃ + (w₁²/2)∂₄: brackets reach ∂₃ + w₁∂₄ at depth 1, ∂₄ at 2."""
    w = sp.symbols("w1:5")
    return D.SymbolicFields(w, [[1, 0, 0, 0], [0, 1, w[0], w[0] ** 2 / 2]])


def test_a_bracket_with_a_bracket_on_the_left_nests_its_infinitesimals_too():
    """X₀ = ∂₁, X₁ = ∂₂ + w₁∂₃ + (w₁³/6)∂₄: ``[X₀, X₁] = ∂₃ + (w₁²/2)∂₄`` and
    ``[[X₀, X₁], X₀] = −w₁∂₄``, the left element differentiated at the point, along the
    right one's value."""
    import mpmath
    w = sp.symbols("w1:5")
    fields = D.SymbolicFields(w, [[1, 0, 0, 0], [0, 1, w[0], w[0] ** 3 / 6]])
    at = [sp.Rational(1, 3), sp.Rational(1, 5), sp.Rational(1, 7), sp.Rational(1, 11)]
    with mpmath.workdps(D.DPS):
        value = D._evaluate(fields, ((0, 1), 0), [D.to_mp(v) for v in at], 0)
    assert [float(v) for v in value] == pytest.approx([0.0, 0.0, 0.0, -1 / 3])


def test_the_scalar_rank_reports_the_depth_its_last_direction_appeared_at():
    rank = D._scalar_lie_rank(_ladder(), [sp.Rational(1, 3), sp.Rational(1, 5),
                                          sp.Rational(1, 7), sp.Rational(1, 11)])
    assert (rank.rank, rank.dimension, rank.depth) == (4, 4, 2)


def test_the_singular_gap_is_measured_from_the_largest_value_dropped(monkeypatch):
    """``X = ∂₁`` on two coordinates: five monomials, the singular values forced to
    ``1, 1/2, 1/4, 5·10⁻¹⁰, 10⁻¹³``: the gap is ``log10((1/4) / 5·10⁻¹⁰)``, from the
    largest singular value dropped, not the smallest."""
    w1, w2 = sp.symbols("w1 w2")
    svd = np.linalg.svd

    def forced(a, *args, **kwargs):
        out = svd(a, *args, **kwargs)
        if np.ndim(a) == 2 and a.shape[1] == 5 and len(out) == 3:
            u, sing, vt = out
            return u, sing[0] * np.array([1, 0.5, 0.25, 5e-10, 1e-13]), vt
        return out
    monkeypatch.setattr(np.linalg, "svd", forced)
    found = D.conserved_polynomials(D.SymbolicFields((w1, w2), [[1, 0]]), (w1, w2))
    assert found.singular_gap == pytest.approx(math.log10(0.25 / 5e-10))


def test_the_row_space_of_field_values_weighs_each_direction_as_the_values_do():
    """Rows ``VΣ`` from the SVD ``UΣVᵀ`` of the values: as many as their rank, with the
    values' own Gram matrix (the equations are the fields', rotated)."""
    values = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 1.0, 3.0]]) * 1e-3
    rows = D._row_space(values)
    assert rows.shape == (2, 3)
    assert rows.T @ rows == pytest.approx(values.T @ values, abs=1e-15)


def test_a_residual_is_measured_against_the_largest_field_whatever_its_size():
    """``w₁`` under a rotation and under a thousand times the rotation: the same residual."""
    from fractions import Fraction
    w1, w2 = sp.symbols("w1 w2")
    law = [{(0,): Fraction(1)}]
    slow = D._residuals(D.SymbolicFields((w1, w2), [[w2, -w1]]), law)
    fast = D._residuals(D.SymbolicFields((w1, w2), [[1000 * w2, -1000 * w1]]), law)
    both = D._residuals(D.SymbolicFields((w1, w2), [[w2, -w1], [1000 * w2, -1000 * w1]]), law)
    assert slow[0] > 0.01 and fast == pytest.approx(slow, rel=1e-12)
    assert both == pytest.approx(slow, rel=1e-12)  # the larger field sets the scale


def test_two_laws_of_the_same_difference_are_one_function():
    """``w₁ − w₂`` and ``(w₁ − w₂)²`` are functionally dependent, ``w₁ − w₂`` and
    ``w₁² − w₂²`` are not (their gradients are parallel only where ``w₁ = w₂``)."""
    w1, w2 = sp.symbols("w1 w2")
    assert D.functional_rank([w1 - w2, (w1 - w2) ** 2], (w1, w2)) == 1
    assert D.functional_rank([w1 - w2, w1 ** 2 - w2 ** 2], (w1, w2)) == 2


class _Polynomial:
    """A stand-in for ``Fields``: two polynomial fields on ``n`` coordinates, evaluated on
    arrays or jets of arrays, one generator per row — ``X₀ = ∂₁`` and ``X₁`` from
    ``second(w₁, one, zero, half)``."""

    generators = [0, 1]

    def __init__(self, second, n=4):
        self.second, self.n = second, n

    def state(self, points, arithmetic):
        return np.array([[arithmetic.number(v) for v in x] for x in points],
                        dtype=float if arithmetic is D.FLOAT else object)

    def pad(self, values):
        return values

    def batch(self, generators, state, arithmetic):
        exact = arithmetic is not D.FLOAT
        rows = len(generators)
        w1 = (D.Jet({m: v[:, 0] for m, v in state.parts.items()}) if isinstance(state, D.Jet)
              else state[:, 0])
        one = np.full(rows, arithmetic.number(1), dtype=object if exact else float)
        zero = one * 0
        first = [one] + [zero] * (self.n - 1)
        second = self.second(w1, one, zero, arithmetic.number(Fraction(1, 2)))
        masks = [D._indicator(np.array([g == k for g in generators]), exact) for k in (0, 1)]
        # every entry reads the state, as a printed program's outputs do: a jet in, a jet out
        parts = [a * masks[0] + b * masks[1] + w1 * 0 for a, b in zip(first, second)]
        if not isinstance(state, D.Jet):
            return np.stack(parts, axis=1)
        bits = sorted({m for p in parts for m in p.parts})
        return D.Jet({m: np.stack([p.parts.get(m, zero) for p in parts], axis=1) for m in bits})


#: ``X₁ = ∂₂ + w₁∂₃ + (w₁²/2)∂₄``: ``[X₀, X₁] = ∂₃ + w₁∂₄``, ``[X₀, [X₀, X₁]] = ∂₄``.
_LADDER = _Polynomial(lambda w1, one, zero, half: [zero, one, w1, w1 * w1 * half])
#: ``X₁ = ∂₂``: the fields commute, two directions of four.
_FLAT = _Polynomial(lambda w1, one, zero, half: [zero, one, zero, zero])
_AT = [Fraction(1, 3), Fraction(1, 5), Fraction(1, 7), Fraction(1, 11)]


def _words_bracketed(monkeypatch):
    """The words of every top-level batch of brackets evaluated."""
    seen, elements = [], D._elements

    def recorded(fields, words, state, level, arithmetic, magnitudes=None):
        if level == 0 and len(words[0]) > 1:
            seen.append(list(words))
        return elements(fields, words, state, level, arithmetic, magnitudes)
    monkeypatch.setattr(D, "_elements", recorded)
    return seen


def test_the_floats_bracket_each_pair_of_generators_once_and_stop_at_full_rank(monkeypatch):
    """The ladder, ``X₁`` the larger field and picked first: ``[X₁, X₀]`` only at depth 1
    (``[X₀, X₁]`` is its negative, ``[X_g, X_g]`` is 0), ``[X₀, [X₁, X₀]]`` completes the
    four directions at depth 2, and a full basis is a proposal, not a basis still growing."""
    seen = _words_bracketed(monkeypatch)
    words, depth = D._propose(_LADDER, _AT, 6)
    assert (words, depth) == ([(1,), (0,), (1, 0), (0, 1, 0)], 2)
    assert seen[0] == [(1, 0)]


def test_the_floats_say_still_growing_only_when_the_deepest_bracket_added_a_direction():
    """Depth 1 allowed: ``[X₀, X₁]`` is new there and a fourth direction is missing. Two
    commuting fields: nothing new at depth 1 and two directions of four, a proposal."""
    with pytest.raises(D._StillGrowing):
        D._propose(_LADDER, _AT, 1)
    assert D._propose(_FLAT, _AT, 6) == ([(0,), (1,)], 1)


def test_the_decimals_alone_bracket_each_pair_once_and_every_generator_with_longer_words():
    """The ladder in decimals: ``[X₀, [X₀, X₁]]`` is offered at depth 2 (the rule that skips
    ``[X_g, X_h]`` for ``g ≥ h`` is for pairs of generators only), and no bracket that is
    0 by antisymmetry is offered: nothing is rejected."""
    with decimal.localcontext(D.context()):
        state = _LADDER.state([_AT], D.DECIMAL)
        values = _LADDER.batch(_LADDER.generators, D._rows(state, 2), D.DECIMAL)
        basis, words, depth = D._exact_greedy(_LADDER, state, values,
                                              D._moving_scale_decimal(values), 6)
    assert (basis.rank, depth, words) == (4, 2, [(0,), (1,), (0, 1), (0, 0, 1)])
    assert basis.largest_rejected is None


def _nearly_parallel(number):
    """``v``, then ``v + 10⁻²⁰·u``: the second direction's residual is ``10⁻²⁰`` of its size."""
    v = [number(1) / 3, number(2) / 7, number(5) / 11]
    u = [number(1) / 13, number(-3) / 17, number(1) / 19]
    return v, [a + number(10) ** -20 * c for a, c in zip(v, u)]


def test_a_direction_accepted_from_a_tiny_residual_is_orthogonal_to_the_digits():
    """Gram–Schmidt projects twice: once leaves the new row ``10⁻⁵⁰/10⁻²⁰ = 10⁻³⁰`` along the
    old one; twice, ``10⁻⁵⁰`` — in decimals and in mpmath alike."""
    import mpmath
    with decimal.localcontext(D.context()):
        basis = D.ExactBasis(decimal.Decimal(1), 3)
        assert all(basis.offer(v) for v in _nearly_parallel(decimal.Decimal))
        assert abs((basis.rows @ basis.rows.T)[0, 1]) < decimal.Decimal(10) ** -45
    with mpmath.workdps(D.DPS):
        basis = D.Basis(mpmath.mpf(1))
        assert all(basis.offer(v) for v in _nearly_parallel(mpmath.mpf))
        first, second = basis.vectors
        assert abs(sum(a * b for a, b in zip(first, second))) < mpmath.mpf(10) ** -45


def test_a_basis_that_accepted_nothing_reports_its_gap_against_a_unit_residual():
    """Only an exact zero offered: ``log10(1 / 10^(−2·DIGITS))``."""
    with decimal.localcontext(D.context()):
        basis = D.ExactBasis(decimal.Decimal(1), 2)
        assert not basis.offer([decimal.Decimal(0), decimal.Decimal(0)])
        assert basis.rank == 0 and basis.gap_decades == pytest.approx(2 * D.DIGITS)


def test_a_float_residual_of_exactly_the_tolerance_is_no_direction():
    """Residuals above ``FLOAT_TOLERANCE`` of the scale are proposed, not one equal to it."""
    tol = D.FLOAT_TOLERANCE
    picked, basis = D._select(np.zeros((0, 2)), np.array([[tol, 0.0]]), 1.0, tol)
    assert picked == [] and len(basis) == 0
    picked, _ = D._select(np.zeros((0, 2)), np.array([[2 * tol, 0.0]]), 1.0, tol)
    assert picked == [0]


def test_a_span_the_floats_undercount_is_counted_by_the_decimals_alone(tiny, monkeypatch):
    """The floats made to pick one value of a span of two: a value outside it fails the
    check, and the decimals offer every value until the span is whole."""
    select = D._select

    def one_pick(basis, candidates, scale, tol, magnitudes=None):
        picked, grown = select(basis, candidates, scale, tol, magnitudes)
        return picked[:1], grown[:1]
    monkeypatch.setattr(D, "_select", one_pick)
    fields, _ = tiny
    basis = D.linear_rank(fields, [fields.point(s) for s in (1, 2, 3)])
    assert basis.rank == 2 and basis.largest_rejected < 1e-40


def test_the_scalar_rank_brackets_every_pair_at_a_depth_before_the_next():
    """X₀ = ∂₁, X₁ = ∂₂ + w₁∂₄, X₂ = ∂₃ + w₁∂₅: ``[X₀, X₁] = ∂₄`` and ``[X₀, X₂] = ∂₅``
    are both needed at depth 1 — all five directions, no law."""
    w = sp.symbols("w1:6")
    fields = D.SymbolicFields(w, [[1, 0, 0, 0, 0], [0, 1, 0, w[0], 0], [0, 0, 1, 0, w[0]]])
    at = [sp.Rational(1, k) for k in (3, 5, 7, 11, 13)]
    rank = D._scalar_lie_rank(fields, at)
    assert (rank.rank, rank.depth) == (5, 1)


def test_a_point_is_drawn_once_even_when_the_first_two_disagree(monkeypatch):
    """Ranks 2, 1, 2 at points 1, 2, 3: the third point is point 3, not point 2 again."""
    setting = _standing_in(monkeypatch, 20.0, {1: 2, 2: 1, 3: 2})
    calls, rank = [], D.lie_rank

    def recorded(fields, x):
        calls.append(x[0])
        return rank(fields, x)
    monkeypatch.setattr(D, "lie_rank", recorded)
    D.count_laws(setting)
    assert calls == [1, 2, 3]


def test_a_gradient_program_prices_every_forward_node_but_the_loss(monkeypatch):
    """Every node at one operation, one entry, no backward pass: the paper's program prices
    each node but the cross-entropy itself (a gradient program never computes the loss's
    value); under an abstract loss the last node is the context, and it is priced."""
    import symbolic.derive
    monkeypatch.setattr(D, "_expression_cost", lambda expr, sizes: 1.0)
    monkeypatch.setattr(D, "_kind_size", lambda index: sp.Integer(1))
    monkeypatch.setattr(symbolic.derive, "derive", lambda model: SimpleNamespace(order=[]))
    for loss, priced in (("cross_entropy", -1), ("any", 0)):
        model = Setting(loss=loss).model
        assert D.estimated_operations(model, {}, 3) == len(model.nodes) + priced


def test_the_mpmath_basis_keeps_the_smallest_accepted_and_the_largest_rejected_residual():
    """``2·(3/5, 4/5)`` is a direction of residual 1 (over its own size), ``(3/5, 4/5) +
    10⁻³·(−4/5, 3/5)`` one of about ``10⁻³``; ``(1/3, 1/7)`` is rounding noise in their span
    and ``0`` an exact zero that leaves the largest rejected residual as it was."""
    import mpmath
    with mpmath.workdps(D.DPS):
        mp = mpmath.mpf
        basis = D.Basis(mp(1))
        assert basis.offer([mp(6) / 5, mp(8) / 5])
        assert basis.smallest_accepted == pytest.approx(1.0, rel=1e-12)
        assert basis.offer([mp(3) / 5 - mp(4) / 5000, mp(4) / 5 + mp(3) / 5000])
        assert basis.smallest_accepted == pytest.approx(1e-3, rel=1e-5)
        assert not basis.offer([mp(1) / 3, mp(1) / 7])
        noise = basis.largest_rejected
        assert 0 < noise < mp(10) ** -40
        assert not basis.offer([mp(0), mp(0)]) and basis.largest_rejected == noise
        assert basis.rank == 2
        floor = mp(10) ** (-2 * D.DPS)  # noise below it counts from it
        assert basis.gap_decades == pytest.approx(float(mpmath.log10(
            basis.smallest_accepted / max(noise, floor))))


def test_an_mpmath_basis_that_accepted_nothing_measures_its_gap_against_a_unit_residual():
    import mpmath
    with mpmath.workdps(D.DPS):
        basis = D.Basis(mpmath.mpf(1))
        assert not basis.offer([mpmath.mpf(0), mpmath.mpf(0)])
        assert basis.rank == 0 and basis.gap_decades == pytest.approx(2 * D.DPS)


def test_a_bracket_three_deep_takes_a_fresh_infinitesimal_at_each_level():
    """X₀ = ∂₁, X₁ = ∂₂ + w₁∂₃ + (w₁²/2)∂₄ + (w₁³/6)∂₅: ``[X₀, [X₀, [X₀, X₁]]] = ∂₅``."""
    import mpmath
    w = sp.symbols("w1:6")
    fields = D.SymbolicFields(w, [[1, 0, 0, 0, 0],
                                  [0, 1, w[0], w[0] ** 2 / 2, w[0] ** 3 / 6]])
    at = [sp.Rational(1, k) for k in (3, 5, 7, 11, 13)]
    with mpmath.workdps(D.DPS):
        value = D._evaluate(fields, (0, (0, (0, 1))), [D.to_mp(v) for v in at], 0)
    assert [float(v) for v in value] == pytest.approx([0.0, 0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("loss, text", [
    ("cross_entropy", "linear classifier, cross-entropy; trained: embeddings, keys; sizes: "
                      "3 words, d=2, d_key=2, 2 classes, sentences of 1–3 tokens"),
    ("any", "any loss of the context; trained: embeddings, keys; sizes: 3 words, d=2, "
            "d_key=2, sentences of 1–3 tokens")])
def test_a_setting_describes_its_loss_and_only_the_sizes_it_reads(loss, text):
    assert Setting("linear", loss=loss, trainable=("embeddings", "keys")).describe() == text


def test_the_decimals_reach_a_direction_three_brackets_deep():
    """X₁ = ∂₂ + w₁∂₃ + (w₁²/2)∂₄ + (w₁³/2)∂₅: ``[X₀, [X₀, [X₀, X₁]]] = 3∂₅`` is the fifth
    direction, each level of the bracket its own infinitesimal."""
    ladder = _Polynomial(lambda w1, one, zero, half: [zero, one, w1, w1 * w1 * half,
                                                      w1 * w1 * w1 * half], n=5)
    at = _AT + [Fraction(1, 13)]
    with decimal.localcontext(D.context()):
        state = ladder.state([at], D.DECIMAL)
        values = ladder.batch(ladder.generators, D._rows(state, 2), D.DECIMAL)
        basis, words, depth = D._exact_greedy(ladder, state, values,
                                              D._moving_scale_decimal(values), 6)
    assert (basis.rank, depth) == (5, 3) and words[-1] == (0, 0, 0, 1)


def test_the_decimal_basis_keeps_the_smallest_accepted_and_the_largest_rejected_residual():
    """As the mpmath basis does, in three dimensions: two directions in the plane, then a
    vector ``10⁻³⁰`` out of it (rejected, below ``10^(−DIGITS/2)``) and an exact zero."""
    Dd = decimal.Decimal
    with decimal.localcontext(D.context()):
        basis = D.ExactBasis(Dd(1), 3)
        assert basis.offer([Dd(6) / 5, Dd(8) / 5, Dd(0)])
        assert basis.smallest_accepted == 1  # its residual over its own size
        assert basis.offer([Dd(3) / 5 - Dd(4) / 5000, Dd(4) / 5 + Dd(3) / 5000, Dd(0)])
        assert float(basis.smallest_accepted) == pytest.approx(1e-3, rel=1e-5)
        assert not basis.offer([Dd(1) / 3, Dd(1) / 7, Dd(10) ** -30])
        noise = basis.largest_rejected
        assert Dd(10) ** -31 < noise < Dd(10) ** -29
        assert not basis.offer([Dd(0)] * 3) and basis.largest_rejected == noise


def test_a_size_past_ten_to_the_three_hundred_is_priced_as_ten_to_the_three_hundred():
    assert D._real(10 ** 400) == 1e300 and D._real(5) == 5.0


def test_a_rank_reports_the_seconds_it_took(bracketed):
    import time
    fields, x = bracketed
    start = time.perf_counter()
    rank = D.lie_rank(fields, x)
    assert 0 < rank.seconds <= time.perf_counter() - start


def test_decimal_fields_at_exactly_half_the_digits_move():
    """The noise floor ``10^(−DIGITS/2)`` itself is motion; below it, noise."""
    floor = decimal.Decimal(10) ** (-(D.DIGITS // 2))
    with decimal.localcontext(D.context()):
        assert D._moving_scale_decimal([[floor], [floor / 2]]) == floor
        with pytest.raises(D.NothingMoves):
            D._moving_scale_decimal([[floor / 2]])


def test_the_rows_that_must_differ_are_the_class_weights_and_every_words_row():
    """Multi-head attention: its classifier (first index a class) and its per-token
    embeddings, not the heads; the paper's model: its last layer unless the loss is any, and
    its per-token embeddings and keys."""
    from symbolic.models.attention import multi_head
    setting = D.ModelSetting(multi_head("cross-entropy"), ("head_query",),
                             (("C", 2), ("d", 2), ("d_head", 1), ("heads", 1)), 3, 2,
                             (("tau", Fraction(1)),))
    assert D._class_rows(setting) == ["classifier", "embeddings"]
    assert D._class_rows(Setting("linear")) == ["classifier", "embeddings", "keys"]
    assert D._class_rows(Setting("mlp"))[0] == "output_weight"
    assert D._class_rows(Setting(loss="any")) == ["embeddings", "keys"]

"""Behaviours of the law checks (``numeric.laws``) that no other test pinned down: each test
fails under a realistic one-line bug (``tests/mutation.py``) and passes on the code."""

from __future__ import annotations

import numpy as np
import pytest

from numeric import laws
from numeric.laws import no_evidence


def test_terms_that_moved_exactly_the_floor_are_no_evidence():
    """Movement must exceed the accuracy floor: at a floor of 0 (nothing to round), terms
    that stand still are still no evidence."""
    assert "did not move" in no_evidence(3, np.zeros(2), np.zeros(2))
    assert "did not move" in no_evidence(3, np.array([1e-9, 2e-9]), np.array([1e-9, 2e-9]))
    assert no_evidence(3, np.array([0.0, 3e-9]), np.array([1e-9, 2e-9])) == ""
    assert "single snapshot" in no_evidence(1, np.ones(2), np.zeros(2))


def test_embeddings_that_stand_still_have_no_movement_across_the_classifier():
    """The movement of embedding-across-classifier is measured at the displacement from the
    first snapshot, not at the embeddings themselves."""
    from numeric.laws import across_movement
    from numeric.trajectory import Trajectory
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    assert (across_movement(traj) > 0).any()
    still = np.repeat(traj.params["embeddings"][:1], len(traj.time), axis=0)
    frozen = Trajectory(traj.data, traj.spec, traj.time, {**traj.params, "embeddings": still})
    assert (across_movement(frozen) == 0).all()


def test_the_relative_drift_divides_by_the_movement_plus_the_accuracys_share():
    """‖ΔQ‖ = 1 with the terms moved 1 and σ = 2 at accuracy 0.25: 1 / (1 + 0.25·2)."""
    a = np.array([[0.0], [1.0]])
    b = np.zeros((2, 1))
    sens = np.array([[1.0], [2.0]])
    assert laws.relative_drift(a, b, sens, 0.25).tolist() == pytest.approx([1 / 1.5])


def test_frozen_parts_that_are_all_zero_name_no_worst_array():
    """All zero: nothing to divide by, so no 0/0 (no warning) and no worst array."""
    import warnings
    from types import SimpleNamespace
    traj = SimpleNamespace(params={"keys": np.zeros((2, 3, 2)), "query": np.zeros((2, 2))},
                           spec=SimpleNamespace(trained=()), frozen_rows={})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        condition = laws._frozen_parts_vanish(traj, ("keys", "query"))
    assert condition.holds and condition.measured == 0.0 and condition.detail == ""


def test_sen_needs_both_topic_and_non_topic_words_in_the_data():
    """Every word present a topic word: no common score c, the identity is not computable."""
    from types import SimpleNamespace

    tokens = np.array([[0, 1], [1, 0]])
    data = SimpleNamespace(topic_class=np.array([0, 1]), mask=np.ones((2, 2), bool),
                           tokens=tokens, safe_tokens=tokens, n_words=2)
    with pytest.raises(laws.NotComputable, match="2 topic and 0 non-topic words"):
        laws._topic_structure(SimpleNamespace(data=data))
    data.topic_class = np.array([0, 1, -1, -1])      # topic words 0, 1 occur in no sentence
    data.tokens = data.safe_tokens = tokens + 2
    data.n_words = 4
    with pytest.raises(laws.NotComputable, match="0 topic and 2 non-topic words"):
        laws._topic_structure(SimpleNamespace(data=data))


@pytest.mark.parametrize("name, value", [("tolerance", -1e-3), ("tolerance", np.inf),
                                         ("accuracy", -1e-3), ("accuracy", np.nan)])
def test_a_negative_or_non_finite_allowance_is_refused(name, value):
    """A negative tolerance or accuracy would pass any drift, a non-finite one every drift."""
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    allowance = {"tolerance": 1e-6, "accuracy": 1e-12, name: value}
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        laws.check_laws(traj, **allowance)


def test_a_frozen_row_at_exactly_the_precondition_tolerance_is_zero_enough():
    """Frozen row 0 of the keys at 1e-10 of the largest key: F holds (≤), just above it fails."""
    from types import SimpleNamespace
    keys = np.zeros((2, 3, 2))
    keys[:, 1, 0] = 1.0
    keys[:, 0, 1] = laws.PRECONDITION_TOL

    def frozen_row(value):
        keys[:, 0, 1] = value
        traj = SimpleNamespace(params={"keys": keys}, spec=SimpleNamespace(trained=("keys",)),
                               frozen_rows={"keys": np.array([0])})
        return laws._frozen_parts_vanish(traj, ("keys",))
    at = frozen_row(laws.PRECONDITION_TOL)
    assert at.holds and at.measured == laws.PRECONDITION_TOL and at.detail.endswith("keys")
    assert not frozen_row(2 * laws.PRECONDITION_TOL).holds


def _scores_run(scores, embeddings=None, query=(1.0, 0.0)):
    """Snapshots whose scores ``s_w = q·κ_w`` are ``scores`` (T, 4) over topic words 0, 1 and
    non-topic words 2, 3 (two sentences: [0, 2, 3], [1, 2, 3])."""
    from types import SimpleNamespace
    scores = np.asarray(scores, dtype=float)
    keys = np.zeros(scores.shape + (2,))
    keys[..., 0] = scores
    tokens = np.array([[0, 2, 3], [1, 2, 3]])
    data = SimpleNamespace(topic_class=np.array([0, 1, -1, -1]), mask=np.ones((2, 3), bool),
                           tokens=tokens, safe_tokens=tokens, n_words=4)
    emb = np.zeros((len(scores), 4, 2)) if embeddings is None else np.asarray(embeddings)
    q = np.broadcast_to(np.asarray(query, dtype=float), (len(scores), 2))
    return SimpleNamespace(data=data, params={"keys": keys, "query": q, "embeddings": emb},
                           spec=SimpleNamespace(trained=("keys", "embeddings")), frozen_rows={})


def _condition(conditions, name):
    return next(c for c in conditions if c.name == name)


def test_all_embeddings_zero_meet_a2s_zero_non_topic_embeddings():
    """No topic embedding to compare with: the non-topic ones are measured absolutely (0)."""
    a2 = _condition(laws.sen_conditions(_scores_run(np.zeros((2, 4)))), "A2-embeddings")
    assert a2.holds and a2.measured == 0.0
    emb = np.zeros((2, 4, 2))
    emb[:, 2, 0] = 1e-3
    a2 = _condition(laws.sen_conditions(_scores_run(np.zeros((2, 4)), emb)), "A2-embeddings")
    assert not a2.holds and a2.measured == pytest.approx(1e-3)


def test_a2_scores_measures_the_widest_spread_and_the_movement_of_c():
    """Spread 2δ at the last snapshot only (equal at the first): A2 fails by 2δ plus c's move;
    equal scores that move together: A2 fails by how far c moved."""
    delta = 1e-6
    spread = _condition(laws.sen_conditions(_scores_run([[0, 0, 1, 1],
                                                         [0, 0, 1 + delta, 1 - delta]])),
                        "A2-scores")
    assert not spread.holds
    assert spread.measured == pytest.approx(2 * delta + np.log(np.cosh(delta)), rel=1e-6)
    moved = _condition(laws.sen_conditions(_scores_run([[0, 0, 1, 1], [0, 0, 2, 2]])),
                       "A2-scores")
    assert not moved.holds and moved.measured == pytest.approx(1.0)
    still = _condition(laws.sen_conditions(_scores_run([[0, 0, 1, 1], [0, 0, 1, 1]])),
                       "A2-scores")
    assert still.holds and still.measured == 0.0


def test_a_query_that_moved_exactly_the_precondition_tolerance_is_fixed():
    """Relative movement max|q − q(0)| / max|q| = 2e-10 / 2 = 1e-10: A1 holds (≤)."""
    run = _scores_run(np.zeros((2, 4)))
    run.params["query"] = np.array([[2.0, 0.0], [2.0, 2 * laws.PRECONDITION_TOL]])
    for conditions in (laws.sen_conditions(run), laws._needs(query_fixed=True)(run)):
        a1 = _condition(conditions, "A1")
        assert a1.holds and a1.measured == laws.PRECONDITION_TOL
    run.params["query"] = np.array([[2.0, 0.0], [2.0, 4 * laws.PRECONDITION_TOL]])
    assert not _condition(laws._needs(query_fixed=True)(run), "A1").holds
    run.params["classifier"] = np.array([[[2.0, 0.0]] * 2, [[2.0, 0.0], [2.0, 2e-10]]])
    fc = _condition(laws.across_conditions(run), "FC")
    assert fc.holds and fc.measured == laws.PRECONDITION_TOL


def test_parameters_that_are_all_zero_have_no_relative_movement():
    assert laws._relative_movement(np.zeros((3, 2))) == 0.0


def test_attention_laws_read_the_attention_parameters():
    assert laws.reads("head-query-key") == ("head_query", "head_key")
    assert laws.reads("classifier-output") == ("head_output", "classifier")


def test_a_law_not_computable_on_the_run_keeps_the_tolerance_and_accuracy_asked_for():
    import dataclasses

    import numeric
    from numeric.trajectory import Trajectory
    from tests.test_replay import _run

    run = _run(steps=20, every=10)
    blind = numeric.Dataset(run.data.tokens, run.data.labels, run.data.n_words,
                            run.data.n_classes)             # no topic classes: SEN undefined
    traj = Trajectory(blind, run.spec, run.time, run.params)
    report = next(r for r in laws.check_laws(traj, 1e-6, 1e-12) if r.law == "SEN")
    assert report.verdict == "not applicable" and "topic_class" in report.reason
    assert (report.tolerance, report.accuracy) == (1e-6, 1e-12)
    assert dataclasses.asdict(report)["drift"] != dataclasses.asdict(report)["drift"]  # NaN


def test_a_classifier_of_one_row_meets_every_direction_equally():
    pi, rank = laws.across_projector(np.array([[1.0, 2.0, 3.0]]))
    assert rank == 0 and (pi == np.eye(3)).all()


def test_a_singular_value_at_the_rank_threshold_counts_as_zero():
    """As ``np.linalg.matrix_rank``: a singular value of exactly max(sv)·max(shape)·ε is not
    counted (here 3ε, exact for this diagonal difference matrix)."""
    eps = np.finfo(float).eps
    classifier = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3 * eps, 0.0]])
    pi, rank = laws.across_projector(classifier)
    assert rank == np.linalg.matrix_rank(classifier[1:]) == 1
    np.testing.assert_allclose(pi, np.diag([0.0, 1.0, 1.0]), atol=1e-15)
    assert laws.across_projector(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0],
                                           [0.0, 4 * eps, 0.0]]))[1] == 2
    # four classes in two dimensions: the threshold is 3ε (three differences), not 4ε
    four = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.5 * eps], [0.0, 0.0]])
    assert laws.across_projector(four)[1] == np.linalg.matrix_rank(four[1:]) == 2


def test_embedding_across_classifier_has_one_component_per_word():
    """Two snapshots of twelve words: twelve labels, one per word (not per snapshot)."""
    from tests.test_replay import _run

    traj = _run(steps=20, every=20)
    a, _, sens, labels = laws.across_terms(traj)
    words = traj.params["embeddings"].shape[1]
    assert len(traj.time) != words
    assert labels == [f"word {w}" for w in range(words)] and sens.shape == (2, words)


def test_a_component_just_past_its_allowance_is_violated_beside_an_overflowing_one():
    """Component c0 overflows; c1 uses twice its allowance: violated at c1, not "not
    checked" (any usage above 1 is a violation, however little above)."""
    from tests.test_laws import MOVING, OVERFLOW, Snapshots, toy_law
    a = np.stack([OVERFLOW, MOVING], axis=1)
    b = np.zeros_like(a) + [0.0, 1.0]
    at = toy_law(a, b).check(Snapshots(3), 1e-3)
    rep = toy_law(a, b).check(Snapshots(3), 1e-3 * at.usage / 2)
    assert rep.verdict == "violated" and rep.worst == "c1"
    assert rep.usage == pytest.approx(2.0, rel=1e-3)


def test_sens_common_score_share_is_its_slope_times_twice_the_query_by_the_longest_key(
        monkeypatch):
    """σ's term for c is |∂Q/∂c|·δc with δc = 2‖q‖·max_n ‖κ_n‖ over the non-topic words."""
    import numeric._generated.laws as printed
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    monkeypatch.setattr(printed, "sen_sensitivity", lambda **kw: np.zeros_like(kw["m"]))
    monkeypatch.setattr(printed, "sen_slopes", lambda **kw: {"c": np.ones_like(kw["m"])})
    *_, sens, labels = laws.sen_terms(traj)
    q = np.linalg.norm(traj.params["query"], axis=1)
    nontopic = np.flatnonzero(traj.data.topic_class < 0)
    longest = np.linalg.norm(traj.params["keys"][:, nontopic], axis=2).max(axis=1)
    expected = 2 * q * longest
    assert sens.shape == (len(traj), len(labels))
    assert np.allclose(sens, expected[:, None], rtol=1e-12, atol=0)


def test_sen_on_data_without_topic_classes_is_not_applicable_and_says_why():
    from numeric.model import Dataset
    from numeric.trajectory import Trajectory
    from tests.test_replay import _run

    traj = _run(steps=20, every=10)
    data = Dataset(traj.data.tokens, traj.data.labels, traj.data.n_words, traj.data.n_classes)
    bare = Trajectory(data, traj.spec, traj.time, traj.params)
    sen = next(x for x in laws.LAWS if x.name == "SEN")
    rep = sen.check(bare, 1e-2)
    assert rep.verdict == "not applicable" and "topic_class is unknown" in rep.reason


@pytest.mark.parametrize("loss, holds", [("cross-entropy", True), ("squared-error", False)])
def test_the_cross_entropy_condition_measures_one_when_the_loss_is_another(loss, holds):
    from types import SimpleNamespace
    cond = laws._cross_entropy(SimpleNamespace(spec=SimpleNamespace(loss=loss)))
    assert (cond.holds, cond.measured) == (holds, float(not holds))


def test_a_matrix_laws_sensitivity_is_the_frobenius_norm_of_its_entry_bounds(monkeypatch):
    """Per snapshot, entry bounds 3 and 4 (the rest 0) give ‖σ‖_F = 5."""
    from types import SimpleNamespace

    import numeric._generated.laws as printed
    entries = np.zeros((2, 3, 3))
    entries[:, 0, 1], entries[:, 2, 2] = 3.0, 4.0
    zero = np.zeros((2, 3, 3))
    monkeypatch.setattr(printed, "query_key_terms", lambda **kw: (zero, zero))
    monkeypatch.setattr(printed, "query_key_sensitivity", lambda **kw: entries)
    traj = SimpleNamespace(params={"keys": None, "query": None})
    *_, sens, labels = laws.query_key_terms(traj)
    assert labels == ["matrix"] and sens.tolist() == [[5.0], [5.0]]


def test_terms_that_moved_less_than_the_accuracy_times_the_sensitivity_are_no_evidence():
    """Terms moved by 1 at σ = 1e6 and accuracy 1e-3: rounding alone (1e3) could move them
    that far, so the run is no evidence; at σ = 1 it is."""
    from tests.test_laws import Snapshots

    def law(sigma):
        a = np.array([[0.0], [1.0]])
        return laws.Law("toy", "", ("linear",), conditions=lambda traj: [],
                        terms=lambda traj: (a, np.zeros_like(a), np.full_like(a, sigma), ["c"]))
    far = law(1e6).check(Snapshots(2), 1e-2, accuracy=1e-3)
    assert far.verdict == "not checked" and "did not move" in far.reason
    assert law(1.0).check(Snapshots(2), 1e-2, accuracy=1e-3).verdict == "violated"


def test_per_word_bounds_are_the_frobenius_norm_of_each_words_entries():
    x = np.array([[[3.0, 4.0], [0.0, -2.0]]])
    assert laws._per_word(x).tolist() == [[5.0, 2.0]]


def test_a_sum_law_whose_terms_stay_below_the_integrators_atol_is_not_violated():
    """The default campaign's shard 30 found this honest run: the output biases start at 0
    and stay within ~1e-14 (balanced classes), far below atol = 1e-12, so their sum's
    rounding-level drift was judged against their movement alone and called a violation.
    Entries near 0 are known only to the accumulated atol: no evidence either way."""
    from numeric.campaign import run_case

    case = ("seed=30,m=1,n_nontopic=1,n_sentences=46,d=1,d_key=1,classifier=mlp,hidden=1,"
            "trainable=keys+embeddings+classifier,horizon=100.0")
    report = {r.law: r for r in run_case(case).reports}["output-bias-sum"]
    assert report.applicable and report.verdict == "not checked"
    assert "accuracy floor" in report.reason


def test_the_resolution_floor_is_the_absolute_error_times_the_sum_laws_coefficients():
    """For Σ_c b_c the floor of an absolute error r in every entry is r·C exactly; with no
    resolution (a file's snapshots) the same tiny movement is judged on rounding alone."""
    from numeric.campaign import Config, integrate_case
    from numeric.laws import LAWS

    law = next(law for law in LAWS if law.name == "output-bias-sum")
    traj = integrate_case(Config(seed=3, classifier="mlp", horizon=10.0))
    sens = law.terms(traj)[2]
    assert law._unresolved(traj, 0.0, sens) == 0.0
    assert law._unresolved(traj, 1e-9, sens) == pytest.approx([2e-9], rel=1e-6)
    assert law.check(traj, 1e-8, 1e-8, resolution=1e-6).floor > 1e6 * law.check(
        traj, 1e-8, 1e-8).floor

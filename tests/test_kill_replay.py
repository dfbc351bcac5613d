"""Behaviours of the replay, its attribution and ``attnflow laws --lr`` that no other test
pinned down: each test fails under a realistic one-line bug (``tests/mutation.py``) and
passes on the code. Runs are the small ones of ``tests/test_replay.py``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import numeric.replay
from attnflow.explain_run import Plan, explain, plan
from numeric.attribution import measured_quantity
from numeric.replay import Optimizer, replay_cost
from tests.test_replay import _run


def _args(**kw):
    base = dict(lr=None, weight_decay=0.0, momentum=0.0, decoupled=False,
                checkpoints_only=False, max_replay_seconds=None)
    return SimpleNamespace(**{**base, **kw})


def test_a_plan_with_options_that_do_not_go_together_is_refused_before_the_file_is_read():
    todo, problem = plan(_args(lr=0.1, decoupled=True), traj=None)
    assert todo is None and problem == "attnflow laws: --decoupled needs --weight-decay"


@pytest.mark.parametrize("jobs, used", [(1, 1), (2, 2)])
def test_the_replay_uses_the_workers_asked_for(monkeypatch, jobs, used):
    traj = _run(steps=20, every=10)
    seen, real = [], numeric.replay.explain
    monkeypatch.setattr(numeric.replay, "explain", lambda *a, **k: seen.append(k["jobs"])
                        or real(*a, **k))
    opt = Optimizer(0.05)
    explain(traj, Plan(opt, ("SEN",), replay_cost(traj, opt, laws=("SEN",))), jobs=jobs)
    assert seen == [used]


def test_each_attribution_table_is_printed_in_aligned_columns():
    traj = _run(steps=20, every=10)
    opt = Optimizer(0.05)
    _, text, _ = explain(traj, Plan(opt, ("SEN", "query-key"), replay_cost(traj, opt)), jobs=1)
    lines = text.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.startswith("    signed parts")]
    assert len(heads) == 2
    for i in heads:
        table = [lines[i + 1]]
        for ln in lines[i + 2:]:
            if not ln.startswith("    ") or ln.startswith("    signed parts"):
                break
            table.append(ln)
        assert len(table) >= 2 and len({len(row) for row in table}) == 1, table


def test_a_replay_that_attributes_no_law_explains_nothing():
    """Asked only for a law this run does not have (hidden-embedding on a linear run): the
    replay matches, but with nothing attributed the verdict is "not explained", exit 1."""
    traj = _run(steps=20, every=10)
    opt = Optimizer(0.05)
    laws = ("hidden-embedding",)
    report, _, status = explain(traj, Plan(opt, laws, replay_cost(traj, opt, laws=laws)),
                                jobs=1)
    assert report["replay"]["consistent"] and report["attribution"] == []
    assert (report["verdict"], status) == ("not explained", 1)


def test_a_matrix_component_that_did_not_move_has_signed_parts_zero_not_nan():
    """Signed parts are lengths along ΔQ; where ΔQ = 0 there is no direction: 0, never 0/0."""
    import numpy as np

    from numeric.replay import Attribution
    moved = np.array([[1.0, 0.0], [0.0, 1.0]])
    measured = np.stack([moved, np.zeros((2, 2))])
    att = Attribution("query-key", ["moved", "still"], measured,
                      {"discretisation": measured / 2}, accuracy=1e-12)
    signed = att.signed()
    assert np.isfinite(np.concatenate(list(signed.values()))).all()
    assert signed["measured"].tolist() == pytest.approx([np.sqrt(2), 0.0])
    assert signed["discretisation"].tolist() == pytest.approx([np.sqrt(2) / 2, 0.0])


def test_a_first_order_part_that_is_one_number_is_kept_not_zeroed():
    """output-bias-sum: ``∇Q·Δθ = Σ_c Δb2_c`` is printed as one number; laid out as the law's
    one component it keeps its value (the remainder, the number 0, fills it with zeros)."""
    import numpy as np

    from numeric.attribution import BASES, Adapter
    adapter = Adapter("output-bias-sum", "output_bias_sum", ["sum"], (1,), bases=BASES)
    step = {"output_bias": np.array([0.1, 0.2, -0.05])}
    assert adapter.first_order({}, step).tolist() == pytest.approx([0.25])
    assert adapter.remainder({}, step).tolist() == [0.0]


def test_the_laws_report_spans_the_runs_first_and_last_times():
    from attnflow.commands.laws import laws_report
    traj = _run(steps=20, every=10)
    report = laws_report("run.npz", traj, [], 1e-8)
    assert report["time"] == [float(traj.time[0]), float(traj.time[-1])]
    assert report["time"][1] > report["time"][0]


def test_one_step_short_by_less_than_the_tolerance_is_one_step():
    """``Δt/lr`` within ``STEP_COUNT_TOL`` of 1 (absolute, below one step) is one step; twice
    that far it is not a whole number of steps."""
    import numpy as np

    from numeric.replay import STEP_COUNT_TOL as tol
    from numeric.replay import step_counts
    assert step_counts(np.array([0.0, 1 - tol * (1 - tol / 2)]), 1.0).tolist() == [1]
    with pytest.raises(ValueError, match="not multiples of lr"):
        step_counts(np.array([0.0, 1 - 2 * tol]), 1.0)


def test_the_text_table_shows_ten_components_of_a_long_law():
    """Nine largest drifts and the worst unexplained component (all of them in --json)."""
    from attnflow.explain_run import _rows
    comps = [{"component": f"word {k}", "measured": float(k)} for k in range(40)]
    rows = _rows({"components": comps, "worst_component": "word 3"})
    assert [r["component"] for r in rows] == ["word 3"] + [f"word {k}" for k in range(31, 40)]


def test_an_attention_laws_step_parts_read_the_attention_familys_arrays():
    """head-value-output, ``Q_h = V_h V_hᵀ − O_h O_hᵀ`` (quadratic): on the family's own
    arrays (head_value, head_output) the first-order part and the remainder add up to the
    exact change of Q over the step."""
    import numpy as np

    from numeric.attribution import ATTENTION_BASES, Adapter
    rng = np.random.default_rng(0)
    p = {"head_value": rng.normal(size=(2, 3, 4)), "head_output": rng.normal(size=(2, 3, 4))}
    d = {n: 0.1 * rng.normal(size=x.shape) for n, x in p.items()}

    def q(v, o):
        return np.einsum("hxk,hyk->hxy", v, v) - np.einsum("hxk,hyk->hxy", o, o)
    adapter = Adapter("head-value-output", "head_value_output", ["head 0", "head 1"], (2, 3, 3),
                      bases=ATTENTION_BASES)
    change = q(p["head_value"] + d["head_value"], p["head_output"] + d["head_output"]) \
        - q(p["head_value"], p["head_output"])
    np.testing.assert_allclose(adapter.first_order(p, d) + adapter.remainder(p, d), change,
                               rtol=1e-12, atol=1e-14)


def test_the_sen_attribution_stays_finite_for_non_topic_scores_of_plus_minus_1000():
    """``c = log mean_n e^{s_n}`` is taken from the largest non-topic score: with scores of
    +1000 and −1000 no exponential overflows, and c = 1000 + log(share of the +1000s)."""
    import math

    import numpy as np

    from numeric.attribution import SenAdapter
    traj = _run(steps=20, every=10)
    adapter = SenAdapter(traj)
    p = {n: x[0].astype(float) for n, x in traj.params.items()}
    q = p["query"]
    keys = np.zeros_like(p["keys"])
    signs = np.resize([1.0, -1.0], len(adapter.nontopics))
    assert (signs < 0).any()
    keys[adapter.nontopics] = np.outer(signs, 1000.0 * q / (q @ q))
    p["keys"] = keys
    new = {**p, "keys": keys * (1 + 1e-9), "embeddings": p["embeddings"] * (1 + 1e-9)}
    first, rest = adapter.step_parts(p, new)
    values, weights = adapter._state(p)
    assert values["c"] == pytest.approx(1000.0 + math.log((signs > 0).mean()), rel=1e-12)
    assert np.isfinite(weights).all() and np.isfinite(first).all() and np.isfinite(rest).all()


def test_a_run_with_one_unexplained_law_is_not_explained(monkeypatch):
    """Two laws attributed, one of them with a drift its parts do not account for: the run's
    drift is not explained (exit 1), although the other law's is."""
    import dataclasses

    traj = _run(steps=20, every=10)
    real = numeric.replay.explain

    def one_off(*args, **kwargs):
        replay, atts, skipped = real(*args, **kwargs)
        last = dataclasses.replace(atts[-1], measured=atts[-1].measured + 1.0)
        return replay, [*atts[:-1], last], skipped
    monkeypatch.setattr(numeric.replay, "explain", one_off)
    opt, laws = Optimizer(0.05), ("SEN", "query-key")
    report, _, status = explain(traj, Plan(opt, laws, replay_cost(traj, opt, laws=laws)),
                                jobs=1)
    assert [a["verdict"] for a in report["attribution"]] == ["explained", "unexplained"]
    assert (report["verdict"], status) == ("not explained", 1)


def _sen_run(tokens, trainable=("keys", "embeddings", "classifier")):
    """One snapshot of a linear run over topic words 0 (class 0), 1 (class 1) and non-topic
    words 2, 3."""
    import numpy as np

    import numeric
    from numeric.trajectory import Trajectory
    data = numeric.Dataset(tokens, [0, 1], 4, 2, topic_class=[0, 1, -1, -1])
    spec = numeric.ModelSpec(d=2, d_key=2, trainable=trainable)
    params = numeric.init_params(spec, data, seed=0)
    return Trajectory(data, spec, [0.0], {n: np.asarray(x)[None] for n, x in params.items()})


def test_sen_is_not_attributed_when_a_topic_word_occurs_only_without_non_topic_words():
    """Word 1 is alone in its sentence (m = 0, although word 0 has m = 2): no common score
    reaches it, so SEN is skipped with the reason, not attributed."""
    from numeric.attribution import adapters
    found, skipped = adapters(_sen_run([[0, 2, 3], [1, -1, -1]]))
    assert "SEN" not in found and "m = 0" in skipped["SEN"]


def test_sen_is_not_attributed_on_a_run_that_trains_the_query():
    from numeric.attribution import adapters
    found, skipped = adapters(_sen_run([[0, 2, 3], [1, 2, -1]],
                                       trainable=("keys", "embeddings", "query", "classifier")))
    assert "SEN" not in found and "query is trained" in skipped["SEN"]
    assert "SEN" in adapters(_sen_run([[0, 2, 3], [1, 2, -1]]))[0]


def test_the_sen_step_buffer_follows_the_keys_shape():
    """Steps of keys of another width through one adapter: its difference buffer is made
    anew, and the parts are those a fresh adapter gives."""
    import numpy as np

    from numeric.attribution import SenAdapter
    traj = _run(steps=20, every=10)
    adapter = SenAdapter(traj)
    p = {n: x[0].astype(float) for n, x in traj.params.items()}
    new = {n: x[-1].astype(float) for n, x in traj.params.items()}
    adapter.step_parts(p, new)
    wide = {**p, "keys": np.hstack([p["keys"], p["keys"][:, :1]]),
            "query": np.append(p["query"], 0.5)}
    wide_new = {**new, "keys": np.hstack([new["keys"], 0.9 * p["keys"][:, :1]]),
                "query": wide["query"]}
    got = adapter.step_parts(wide, wide_new)
    want = SenAdapter(traj).step_parts(wide, wide_new)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def test_an_attention_laws_measured_quantity_is_its_printed_q_per_head():
    """head-query-key: ``Q_h = Q_h Q_hᵀ − K_h K_hᵀ`` (flattened) per snapshot and head, two
    heads of width 3; classifier-output: ``UᵀU − Σ_h O_hᵀ O_h``."""
    import numpy as np

    import numeric
    from numeric.trajectory import Trajectory
    from tests.test_attention_law_checks import data
    sentences = data()
    model = numeric.ModelSpec(architecture="multi-head", d=3, d_head=3, heads=2)
    params = numeric.init_params(model, sentences, seed=1)
    traj = Trajectory(sentences, model, [0.0, 1.0],
                      {n: np.stack([x, 1.1 * x]) for n, x in params.items()})
    q, sens = measured_quantity("head-query-key", traj)
    hq, hk = params["head_query"], params["head_key"]
    want = np.einsum("hxk,hyk->hxy", hq, hq) - np.einsum("hxk,hyk->hxy", hk, hk)
    np.testing.assert_allclose(q, np.stack([want, 1.21 * want]).reshape(2, 2, 9), rtol=1e-12)
    assert sens.shape == (2, 2) and (sens > 0).all()
    u, o = params["classifier"], params["head_output"]
    q, _ = measured_quantity("classifier-output", traj)
    np.testing.assert_allclose(q[0, 0], u.T @ u - np.einsum("hkx,hky->xy", o, o), rtol=1e-12)


def test_an_attention_run_attributes_every_law_of_its_family():
    from numeric.laws import ATTENTION_LAWS
    from numeric.replay import always_attributed
    from tests.test_attention_law_checks import spec
    assert always_attributed(spec()) == tuple(law.name for law in ATTENTION_LAWS)
    assert always_attributed(_run(steps=20, every=10).spec) == numeric.replay.PAPER_LAWS


def test_the_worst_component_is_the_one_least_explained():
    import numpy as np

    from numeric.replay import Attribution
    att = Attribution("SEN", ["w0", "w1", "w2"], np.array([1.0, 1.0, 1.0]),
                      {"assumptions": np.array([0.9, 0.2, 1.0])}, accuracy=1e-12)
    assert att.to_dict()["worst_component"] == "w1"


def test_a_step_counts_tolerance_grows_with_the_count():
    """10⁶ + 0.5 steps is within 10⁻⁶ of 10⁶ relative to the count: 10⁶ steps."""
    import numpy as np

    from numeric.replay import step_counts
    assert step_counts(np.array([0.0, 1e6 + 0.5]), 1.0).tolist() == [10 ** 6]


def test_step_counts_up_to_two_to_the_53_are_accepted_and_the_largest_is_named():
    """2^53 steps is the largest count float64 holds exactly: accepted; 2^54 is refused, and
    the refusal names the interval of the largest count."""
    import numpy as np

    from numeric.replay import step_counts
    assert step_counts(np.array([0.0, 2.0 ** 53]), 1.0).tolist() == [2 ** 53]
    assert step_counts(np.array([0.0, 1.0, 1.0 + 2.0 ** 52]), 1.0).tolist() == [1, 2 ** 52]
    with pytest.raises(ValueError, match=r"from t = 1 to 1\.8\d*e\+19"):
        step_counts(np.array([0.0, 1.0, 1.0 + 2.0 ** 64]), 1.0)


def test_signed_parts_of_a_matrix_are_lengths_along_the_drift():
    """ΔQ = diag(3, 4): ‖ΔQ‖ = 5; a part diag(3, 0) has length ⟨part, ΔQ⟩/‖ΔQ‖ = 9/5 along it."""
    import numpy as np

    from numeric.replay import Attribution
    measured = np.diag([3.0, 4.0])[None]
    part = np.diag([3.0, 0.0])[None]
    signed = Attribution("query-key", ["matrix"], measured, {"discretisation": part},
                         accuracy=0.0).signed()
    assert signed["measured"].tolist() == pytest.approx([5.0])
    assert signed["discretisation"].tolist() == pytest.approx([9 / 5])
    assert signed["unexplained"].tolist() == pytest.approx([16 / 5])


def test_a_run_of_one_checkpoint_costs_no_replay_steps():
    import numpy as np

    from numeric.trajectory import Trajectory
    traj = _run(steps=20, every=10)
    one = Trajectory(traj.data, traj.spec, traj.time[:1],
                     {n: x[:1] for n, x in traj.params.items()})
    cost = replay_cost(one, Optimizer(0.05))
    assert cost.steps == 0 and cost.seconds == 0.0 and np.isfinite(cost.per_step)


def test_one_replay_step_costs_the_quicker_of_two_timed_steps(monkeypatch):
    """Steps timed on the process clock: 0.5 s, then 0.25 s → 0.25 s per step."""
    import time

    traj = _run(steps=20, every=10)
    ticks = iter([100.0, 100.5, 200.0, 200.25])
    monkeypatch.setattr(time, "process_time", lambda: next(ticks))
    cost = replay_cost(traj, Optimizer(0.05), laws=("SEN",))
    assert (cost.steps, cost.per_step) == (20, 0.25)


def test_workers_replay_each_interval_from_its_own_checkpoint():
    """Trained at lr 0.045, stated 0.05: every interval misses by about as much; a worker
    holding intervals 0 and 1 restarts interval 1 from its checkpoint as one process does,
    so the distances agree exactly (carried on from interval 0 they would grow)."""
    import numpy as np

    from numeric.replay import explain as replay
    traj = _run(lr=0.045, claimed_lr=0.05, steps=30, every=10)
    one, _, _ = replay(traj, Optimizer(0.05), laws=("SEN",))
    two, _, _ = replay(traj, Optimizer(0.05), laws=("SEN",), jobs=2)
    assert not one.consistent
    for n in one.relative:
        np.testing.assert_array_equal(one.relative[n], two.relative[n])


def test_a_frozen_arrays_step_part_is_a_zero_that_cannot_be_written_to():
    """Frozen parameters share one zero array per shape: writing into it must fail, not
    change every later step's parts."""
    import numpy as np

    from numeric.replay import _full
    part = _full({}, {"query": np.ones(3)})["query"]
    assert (part == 0).all() and not part.flags.writeable


def _estimate(laws=("SEN",), **kw):
    from numeric.replay import estimate_from_checkpoints
    traj = _run(steps=30, every=10)
    atts, _ = estimate_from_checkpoints(traj, Optimizer(0.05, **kw), laws=laws)
    return traj, atts[0]


def test_the_checkpoint_estimate_is_the_trapezoid_over_each_interval():
    """SEN over three intervals of 10 steps: discretisation Σ_i n_i·½(R(θ_i, δ_i) +
    R(θ_{i+1}, δ_i)), δ_i = (θ_{i+1} − θ_i)/n_i, R from the SEN adapter."""
    import numpy as np

    from numeric.attribution import SenAdapter
    traj, att = _estimate()
    adapter = SenAdapter(traj)
    snaps = [{n: x[i].astype(float) for n, x in traj.params.items()} for i in range(4)]
    want = 0.0
    for a, b in zip(snaps, snaps[1:]):
        delta = {n: (b[n] - a[n]) / 10 for n in a}
        want = want + 10 * 0.5 * (adapter.remainder(a, delta) + adapter.remainder(b, delta))
    np.testing.assert_allclose(att.parts["discretisation"], want, rtol=1e-12)


def test_the_checkpoint_estimates_decay_is_the_trapezoid_of_each_interval():
    """Weight decay λ = 0.1: Σ_i n_i·½(∇Q·(−ηλθ)|_{θ_i} + ∇Q·(−ηλθ)|_{θ_{i+1}}), trained
    arrays only."""
    import numpy as np

    from numeric.attribution import SenAdapter
    traj, att = _estimate(weight_decay=0.1)
    adapter = SenAdapter(traj)
    snaps = [{n: x[i].astype(float) for n, x in traj.params.items()} for i in range(4)]

    def decay(p):
        return adapter.first_order(p, {n: -0.05 * 0.1 * x if n in traj.spec.trained else 0 * x
                                       for n, x in p.items()})
    want = sum(10 * 0.5 * (decay(a) + decay(b)) for a, b in zip(snaps, snaps[1:]))
    assert not traj.frozen_rows
    np.testing.assert_allclose(att.parts["weight_decay"], want, rtol=1e-12)


def test_the_checkpoint_estimates_parts_add_up_to_the_drift_from_first_to_last():
    """The measured drift is Q(last) − Q(first) (four snapshots), and the rest
    first_order_rest is what discretisation and decay leave of it."""
    import numpy as np

    traj, att = _estimate(weight_decay=0.1)
    q = measured_quantity("SEN", traj)[0]
    np.testing.assert_array_equal(att.measured, q[-1] - q[0])
    assert np.abs(att.parts["discretisation"]).min() > 0
    assert np.abs(att.parts["weight_decay"]).min() > 0
    np.testing.assert_allclose(sum(att.parts.values()), att.measured, rtol=1e-12, atol=1e-18)


def test_a_step_drift_that_saw_no_step_attributes_nothing():
    import numpy as np

    from numeric.replay import StepDrift
    traj = _run(steps=20, every=10)
    params = {n: np.asarray(x[0]) for n, x in traj.params.items()}
    drift = StepDrift(params, traj.data, traj.spec)
    assert drift.adapter is not None and drift.result() is None


def test_the_sen_drift_summary_reports_the_largest_unexplained_share():
    """Word 0 leaves half its drift unexplained, word 1 none: the largest share is 0.5."""
    import numpy as np

    from numeric.replay import Attribution, sen_drift_summary
    att = Attribution("SEN", ["topic word 0", "topic word 1"], np.array([1.0, 2.0]),
                      {"assumptions": np.array([0.5, 2.0])}, accuracy=1e-12)
    assert sen_drift_summary(att)["max_unexplained_share"] == 0.5


def test_the_cost_of_a_replay_step_includes_the_chosen_laws_parts(monkeypatch):
    """Two timed steps, each splitting query-key's change: its remainder is computed twice."""
    from numeric.attribution import Adapter
    calls, real = [], Adapter.remainder
    monkeypatch.setattr(Adapter, "remainder", lambda self, p, d: calls.append(self.name)
                        or real(self, p, d))
    replay_cost(_run(steps=20, every=10), Optimizer(0.05), laws=("query-key",))
    assert calls == ["query-key", "query-key"]


@pytest.mark.parametrize("max_seconds", [None, 60.0])
def test_a_replay_of_one_snapshot_is_refused_as_having_no_interval(max_seconds):
    from numeric.trajectory import Trajectory
    traj = _run(steps=20, every=10)
    one = Trajectory(traj.data, traj.spec, traj.time[:1],
                     {n: x[:1] for n, x in traj.params.items()})
    with pytest.raises(ValueError, match="one snapshot has no interval to replay"):
        numeric.replay.explain(one, Optimizer(0.05), max_seconds=max_seconds)
    two = Trajectory(traj.data, traj.spec, traj.time[:2],
                     {n: x[:2] for n, x in traj.params.items()})
    replay, _, _ = numeric.replay.explain(two, Optimizer(0.05), max_seconds=max_seconds)
    assert replay.steps.tolist() == [10]


def test_a_word_whose_drift_measured_zero_counts_as_no_unexplained_share():
    """Word 0 did not move (no share), word 1 leaves half its drift unexplained: 0.5."""
    import numpy as np

    from numeric.replay import Attribution, sen_drift_summary
    att = Attribution("SEN", ["topic word 0", "topic word 1"], np.array([0.0, 2.0]),
                      {"assumptions": np.array([0.0, 1.0])}, accuracy=1e-12)
    assert sen_drift_summary(att)["max_unexplained_share"] == 0.5


def test_a_checkpoint_estimate_is_never_explained_even_when_its_parts_add_up():
    import numpy as np

    from numeric.replay import Attribution
    parts = {"assumptions": np.array([1.0])}
    assert Attribution("SEN", ["w"], np.array([1.0]), parts, 1e-12).explained
    assert not Attribution("SEN", ["w"], np.array([1.0]), parts, 1e-12, estimate=True).explained


def test_a_replay_runs_in_this_process_unless_asked_for_jobs(monkeypatch):
    def forked(*args):
        raise AssertionError("forked a worker")
    monkeypatch.setattr(numeric.replay, "_in_processes", forked)
    replay, _, _ = numeric.replay.explain(_run(steps=20, every=10), Optimizer(0.05))
    assert replay.steps.tolist() == [10, 10]


def test_a_replay_reports_the_seconds_it_took():
    import time
    traj = _run(steps=20, every=10)
    before = time.perf_counter()
    replay, _, _ = numeric.replay.explain(traj, Optimizer(0.05))
    assert 0 < replay.seconds <= time.perf_counter() - before


def test_a_replay_built_without_timing_reports_zero_seconds():
    import numpy as np

    from numeric.replay import Replay
    one = np.ones(1)
    replay = Replay(np.array([1]), {"p": one}, {"p": one}, {"p": 1.0}, one, "float64", False)
    assert replay.to_dict()["seconds"] == 0.0


@pytest.mark.parametrize("jobs", [2.0, 1.5, True, 0])
def test_a_replay_needs_a_whole_positive_number_of_jobs(jobs):
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        numeric.replay.explain(_run(steps=20, every=10), Optimizer(0.05), jobs=jobs)


def test_a_learning_rate_misstated_by_five_parts_in_a_million_is_refused():
    """1000 steps at lr 0.1 stated as lr 0.1·(1 + 5e-6): the counts are 5e-3 from whole."""
    import numpy as np

    from numeric.replay import step_counts
    times = np.array([0.0, 100.0, 200.0])
    assert step_counts(times, 0.1 * (1 + 5e-7)).tolist() == [1000, 1000]
    with pytest.raises(ValueError, match="not multiples of lr"):
        step_counts(times, 0.1 * (1 + 5e-6))


def test_on_the_fly_sen_attribution_says_why_when_sen_is_not_defined():
    import dataclasses

    from numeric.replay import StepDrift
    from tests.test_replay import RUN
    traj = _run(steps=2, every=1, config=dataclasses.replace(
        RUN, trainable=("keys", "embeddings", "classifier", "query")))
    params = {n: x[0] for n, x in traj.params.items()}
    drift = StepDrift(params, traj.data, traj.spec)
    assert drift.adapter is None and "query is trained" in drift.why


def test_checkpoints_that_stand_still_while_the_replay_moves_have_movement_ratio_zero():
    """The recorded run did not move along the replayed step at all: ratio 0, not
    undefined (undefined is for a replay that does not move)."""
    import numpy as np

    from numeric.trajectory import Trajectory
    traj = _run(steps=20, every=10)
    still = Trajectory(traj.data, traj.spec, traj.time,
                       {n: np.repeat(x[:1], len(traj), axis=0) for n, x in traj.params.items()})
    replay, _, _ = numeric.replay.explain(still, Optimizer(0.05))
    assert replay.movement_ratio and all(r == 0.0 for r in replay.movement_ratio.values())

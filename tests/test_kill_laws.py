"""Law and campaign bugs the suite used to miss, each seen to fail with its bug.

The campaign's tolerance loosened 1000× (one gradient off by 1e-4 must be caught, for every
law), precondition and verdict thresholds moved by 10× (tested at the boundary), the
sensitivity σ not bounding what it claims, and the campaign's summary and configuration
distribution. ``tests/mutation.py --named`` applies each bug.
"""

import numpy as np
import pytest

import numeric
from numeric.campaign import (
    Config,
    adaptive_tolerance,
    build,
    random_config,
    run_trajectory,
)
from numeric.integrate import integrate_flow
from numeric.laws import LAWS, LawReport, check_laws
from numeric.trajectory import Trajectory


def by_law(reports):
    return {r.law: r for r in reports}


# --- the campaign: small perturbations must be caught ---------------------------------------

def _scaled_gradient(monkeypatch, name, factor):
    """The engine with ``∂L/∂name`` scaled by ``factor`` (one gradient slightly wrong)."""
    engine = numeric.value_and_gradient

    def scaled(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        return loss, {n: g * factor if n == name else g for n, g in grad.items()}

    monkeypatch.setattr(numeric, "value_and_gradient", scaled)


#: (configuration, gradient to scale, law that must catch a relative error of 1e-4 in it)
PERTURBED = [
    (Config(seed=0, n_sentences=6), "keys", "SEN"),
    (Config(seed=0, n_sentences=6), "embeddings", "SEN"),
    (Config(seed=1, a2=False, key_scale=0.5, trainable=("query", "keys")), "query",
     "query-key"),
    (Config(seed=2, a2=False, trainable=("embeddings", "classifier")), "classifier",
     "classifier-embedding"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "hidden_weight", "hidden-embedding"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "output_weight", "relu-unit"),
    (Config(seed=3, a2=False, classifier="mlp", trainable=("embeddings", "classifier")),
     "hidden_bias", "relu-unit"),
]


@pytest.mark.parametrize("config,name,law", PERTURBED,
                         ids=[f"{law}-{name}" for _, name, law in PERTURBED])
def test_campaign_catches_one_gradient_off_by_one_part_in_ten_thousand(monkeypatch, config,
                                                                      name, law):
    """Each law holds along the exact flow and is violated when one gradient is scaled by
    1 + 1e-4 (a campaign tolerance loosened 1000× lets this through)."""
    good = by_law(run_trajectory(config).reports)[law]
    assert good.verdict == "holds", good
    _scaled_gradient(monkeypatch, name, 1 + 1e-4)
    bad = by_law(run_trajectory(config).reports)[law]
    assert bad.applicable and bad.verdict == "violated", bad
    assert bad.drift > 10 * bad.allowed  # caught with a margin, not by luck


def _one_entry_scaled(monkeypatch, name, at, factor):
    """The engine with the gradient entries ``at`` of ``name`` scaled by ``factor``."""
    engine = numeric.value_and_gradient

    def scaled(params, data, spec, wrt=None):
        loss, grad = engine(params, data, spec, wrt=wrt)
        g = np.array(grad[name])
        g[at] *= factor
        return loss, dict(grad, **{name: g})

    monkeypatch.setattr(numeric, "value_and_gradient", scaled)


def test_embedding_across_classifier_survives_a_uniform_scale_not_a_skewed_entry(
        monkeypatch):
    """The law says *where* embeddings move, not how fast: a gradient scaled as a whole still
    lies in span{U_c − U_e} (holds), one entry off by 1e-4 does not (violated, campaign
    tolerance)."""
    config = Config(seed=5, n_classes=3, d=4, a2=False, key_scale=0.5,
                    trainable=("keys", "embeddings"))      # Attn-FC: U frozen

    def law(r):
        return next(x for x in r.reports if x.law == "embedding-across-classifier")
    assert law(run_trajectory(config)).verdict == "holds"
    engine = numeric.value_and_gradient
    _one_entry_scaled(monkeypatch, "embeddings", (slice(None), slice(None)), 1 + 1e-4)
    assert law(run_trajectory(config)).verdict == "holds"
    monkeypatch.setattr(numeric, "value_and_gradient", engine)
    _one_entry_scaled(monkeypatch, "embeddings", (0, 0), 1 + 1e-4)
    bad = law(run_trajectory(config))
    assert bad.applicable and bad.verdict == "violated" and bad.drift > 10 * bad.allowed, bad


def test_adaptive_tolerance_is_ten_times_the_summed_local_errors():
    assert adaptive_tolerance(100, 1e-10) == pytest.approx(1e-7, rel=1e-12)
    assert adaptive_tolerance(0, 1e-10) == pytest.approx(1e-9, rel=1e-12)  # at least 1 step
    r = run_trajectory(Config(seed=0, n_sentences=6))
    assert r.tolerance == pytest.approx(10 * r.n_steps * 1e-10, rel=1e-12)
    assert all(rep.tolerance == rep.accuracy == r.tolerance for rep in r.reports)


def test_random_configurations_follow_the_documented_distribution():
    """README: 2–5 classes, 1–3 topic words per class, 1–25 non-topic words per sentence,
    2–60 sentences, d and d_key 1–8, A2 in 80 %, ragged in 15 %, query scale 0.3–3, key
    scale 0 or 0.01–1, embedding scale 1e-6–1, horizon 100–1e4."""
    cs = [random_config(i) for i in range(1500)]

    def span(field):
        values = [getattr(c, field) for c in cs]
        return min(values), max(values)

    assert span("n_classes") == (2, 5) and span("topics_per_class") == (1, 3)
    assert span("m") == (1, 25) and span("n_sentences") == (2, 60)
    assert span("d") == (1, 8) and span("d_key") == (1, 8) and span("hidden") == (1, 5)
    assert span("n_nontopic") == (1, 15)
    assert 0.75 < np.mean([c.a2 for c in cs]) < 0.85
    assert 0.11 < np.mean([c.ragged for c in cs]) < 0.19
    assert 0.45 < np.mean([c.classifier == "linear" for c in cs]) < 0.55
    lo, hi = span("query_scale")
    assert 10 ** -0.5 <= lo < 0.33 and 2.9 < hi <= 10 ** 0.5
    keys = np.array([c.key_scale for c in cs])
    assert 0.4 < np.mean(keys == 0) < 0.6
    assert 0.01 <= keys[keys > 0].min() < 0.012 and 0.9 < keys.max() <= 1.0
    lo, hi = span("embedding_scale")
    assert 1e-6 <= lo < 2e-6 and 0.8 < hi <= 1.0
    lo, hi = span("horizon")
    assert 100 <= lo < 110 and 9000 < hi <= 1e4
    # half the runs get the SEN setting: keys and embeddings trained, the query frozen
    sen = [set(c.trainable) >= {"keys", "embeddings"} and "query" not in c.trainable
           for c in cs]
    assert 0.5 < np.mean(sen) < 0.7


def test_a2_configuration_freezes_equal_zero_nontopic_words():
    s = build(Config(seed=6, n_classes=2, topics_per_class=2, n_nontopic=3, key_scale=0.5,
                     embedding_scale=0.5))
    rows = np.arange(4, 7)
    assert s.frozen_rows["embeddings"].tolist() == rows.tolist()
    assert s.frozen_rows["keys"].tolist() == rows.tolist()
    assert (s.params["embeddings"][rows] == 0).all()
    assert (s.params["keys"][rows] == s.params["keys"][4]).all()
    assert (s.params["embeddings"][:4] != 0).all() and (s.params["keys"][:4] != 0).any()
    tc = s.data.topic_class
    assert tc.tolist() == [0, 0, 1, 1, -1, -1, -1]
    # one topic word first in every sentence, deciding the label
    assert (tc[s.data.tokens[:, 0]] == s.data.labels).all()
    assert (tc[s.data.tokens[:, 1:]] == -1).all() and s.data.tokens.shape[1] == 3


def test_ragged_configuration_breaks_a3_and_mlp_biases_stay_off_the_kink():
    s = build(Config(seed=2, m=6, n_sentences=40, ragged=True))
    lengths = s.data.lengths - 1
    assert lengths.min() >= 1 and lengths.max() <= 6 and len(set(lengths.tolist())) > 2
    s = build(Config(seed=2, classifier="mlp", hidden=8))
    b = np.abs(s.params["hidden_bias"])
    assert (b >= 0.5).all() and (b <= 2.0).all()


# --- thresholds at their boundary ---------------------------------------------------------

@pytest.fixture(scope="module")
def sen_run():
    s = build(Config(seed=4, n_classes=2, m=4, n_sentences=10,
                     trainable=("keys", "embeddings", "classifier")))
    return s, integrate_flow(s.params, s.data, s.spec, 30.0, frozen_rows=s.frozen_rows)


def _with(traj, **params):
    return Trajectory(traj.data, traj.spec, traj.time, dict(traj.params, **params),
                      frozen_rows=traj.frozen_rows)


def _condition(traj, law, name):
    return {c.name: c for c in by_law(check_laws(traj, 1e-6))[law].conditions}[name]


@pytest.mark.parametrize("factor,holds", [(5.0, False), (0.5, True)])
def test_precondition_tolerance_at_its_boundary(sen_run, factor, holds):
    """A deviation of 5× the documented 1e-10 (README, ``PRECONDITION_TOL``) fails each
    measured precondition and 0.5× passes (a threshold moved by 10× breaks one side)."""
    s, traj = sen_run
    dev = factor * 1e-10
    t = traj.time / traj.time[-1]
    query = traj.params["query"] * (1 + dev * t)[:, None]
    a1 = _condition(_with(traj, query=query), "SEN", "A1")
    assert a1.holds is holds and a1.measured == pytest.approx(dev, rel=1e-3)
    nontopic = s.frozen_rows["embeddings"]
    emb = traj.params["embeddings"].copy()
    emb[:, nontopic[0], 0] = dev * np.abs(emb[:, :2]).max()
    a2 = _condition(_with(traj, embeddings=emb), "SEN", "A2-embeddings")
    assert a2.holds is holds and a2.measured == pytest.approx(dev, rel=1e-3)
    # A2-scores is absolute: the spread of non-topic scores plus the motion of c
    keys = traj.params["keys"].copy()
    q = traj.params["query"][0]
    keys[:, nontopic[0]] += dev * q / (q @ q)          # raises one non-topic score by dev
    a2s = _condition(_with(traj, keys=keys), "SEN", "A2-scores")
    assert a2s.holds is holds and a2s.measured == pytest.approx(dev, rel=1e-2)
    # F: frozen rows of a trained array that are not quite zero (classifier-embedding)
    f = _condition(_with(traj, embeddings=emb), "classifier-embedding", "F")
    assert f.holds is holds and f.measured == pytest.approx(dev, rel=1e-6)


def test_a3_and_flow_preconditions_are_measured():
    s = build(Config(seed=2, m=6, n_sentences=40, ragged=True))
    traj = integrate_flow(s.params, s.data, s.spec, 1.0, frozen_rows=s.frozen_rows)
    a3 = _condition(traj, "SEN", "A3")
    share = np.mean(s.data.lengths != s.data.lengths[0])
    assert not a3.holds and a3.measured == pytest.approx(share)
    s = build(Config(seed=2, m=3, n_sentences=8, trainable=("embeddings",)))
    traj = integrate_flow(s.params, s.data, s.spec, 1.0, frozen_rows=s.frozen_rows)
    flow = _condition(traj, "SEN", "flow")
    assert not flow.holds and flow.measured == 1 and "keys" in flow.detail


@pytest.mark.parametrize("factor,verdict", [(2.0, "holds"), (1.0, "holds"), (0.5, "violated")])
def test_verdict_threshold_at_its_boundary(sen_run, factor, verdict):
    """With the tolerance set to ``factor`` × the measured relative drift (no floor) the law
    holds for factor ≥ 1 and is violated below."""
    _, traj = sen_run
    keys = traj.params["keys"].copy()
    keys[:, 0] *= 1 + 1e-4 * traj.time[:, None] / traj.time[-1]
    bent = _with(traj, keys=keys)
    drift = by_law(check_laws(bent, 1.0, 0.0))["SEN"].drift
    assert 1e-6 < drift < 1e-2
    rep = by_law(check_laws(bent, factor * drift, 0.0))["SEN"]
    assert rep.verdict == verdict
    assert rep.usage == pytest.approx(1 / factor, rel=1e-9)
    assert rep.allowed == pytest.approx(factor * drift, rel=1e-12)


@pytest.mark.parametrize("factor,verdict", [(2.0, "holds"), (0.5, "violated")])
def test_accuracy_floor_at_its_boundary(sen_run, factor, verdict):
    """With no tolerance, the law holds exactly when the drift is within ``accuracy·σ``."""
    _, traj = sen_run
    keys = traj.params["keys"].copy()
    keys[:, 0] *= 1 + 1e-8 * traj.time[:, None] / traj.time[-1]
    bent = _with(traj, keys=keys)
    unit = by_law(check_laws(bent, 0.0, 1.0))["SEN"]            # floor per unit accuracy
    critical = unit.drift / unit.floor
    rep = by_law(check_laws(bent, 0.0, factor * critical))["SEN"]
    assert rep.verdict == verdict and rep.worst == "topic word 0"
    assert rep.floor == pytest.approx(factor * critical * unit.floor, rel=1e-9)


@pytest.mark.parametrize("dtype,eps", [("float64", np.finfo(np.float64).eps),
                                       ("float32", np.finfo(np.float32).eps)])
def test_default_accuracy_is_64_epsilon_of_the_dtype(sen_run, dtype, eps):
    _, traj = sen_run
    spec = numeric.ModelSpec(d=traj.spec.d, d_key=traj.spec.d_key, dtype=dtype,
                             trainable=traj.spec.trainable)
    params = {n: x.astype(dtype) for n, x in traj.params.items()}
    t = Trajectory(traj.data, spec, traj.time, params, frozen_rows=traj.frozen_rows)
    assert all(r.accuracy == 64 * eps for r in check_laws(t, 1e-3))


def test_law_report_verdict_and_json():
    report = LawReport("x", "", (), drift=0.1, floor=0.2, usage=1.0, absolute_drift=3.0,
                       worst="matrix", tolerance=0.5, accuracy=0.0)
    assert report.verdict == "holds" and report.allowed == pytest.approx(0.7)
    assert LawReport("x", "", (), 0.1, 0.2, np.nextafter(1.0, 2), 3.0, "m", 0.5,
                     0.0).verdict == "violated"
    d = report.to_dict()
    assert (d["relative_drift"], d["floor"], d["allowed"], d["usage"]) == (0.1, 0.2, 0.7, 1.0)
    nan = LawReport("x", "", (), float("nan"), 0.0, float("inf"), 1.0, "", 0.1, 0.0)
    assert nan.to_dict()["relative_drift"] is None and nan.to_dict()["usage"] is None


# --- the sensitivity bounds what it claims -----------------------------------------------------

SIGMA_CASES = {
    "SEN": Config(seed=8, n_classes=2, m=3, n_nontopic=3, n_sentences=6, d=2, d_key=2,
                  key_scale=0.5, embedding_scale=0.5),
    "query-key": Config(seed=9, a2=False, d=1, d_key=1, key_scale=0.7,
                        trainable=("query", "keys")),
    "classifier-embedding": Config(seed=10, a2=False, d=1, d_key=1,
                                   trainable=("embeddings", "classifier")),
    "hidden-embedding": Config(seed=11, a2=False, d=1, classifier="mlp", hidden=3,
                               trainable=("embeddings", "classifier")),
    "relu-unit": Config(seed=12, a2=False, d=2, classifier="mlp", hidden=2,
                        trainable=("embeddings", "classifier")),
}


def _law_q(law, data, spec, params):
    traj = Trajectory(data, spec, [0.0], {n: x[None].copy() for n, x in params.items()})
    a, b, sens, _ = law.terms(traj)
    return (a - b)[0].reshape(a.shape[1], -1), sens[0]


def _worst_changes(law, data, spec, params, delta=1e-7):
    """Per component: (|ΔQ| under a relative δ perturbation of every parameter in the worst
    direction, δ·σ). The worst direction's signs come from central differences."""
    q0, sigma = _law_q(law, data, spec, params)
    assert q0.shape[1] == 1, "scalar components, so the worst direction is a sign pattern"
    # c_i = θ_i ∂Q/∂θ_i per component, by central differences (Q is a polynomial or smooth)
    h = 1e-6
    coeffs = {n: np.zeros((q0.shape[0],) + x.shape) for n, x in params.items()}
    for n, x in params.items():
        for idx in np.ndindex(x.shape):
            if x[idx] == 0:
                continue
            plus, minus = dict(params), dict(params)
            plus[n], minus[n] = x.copy(), x.copy()
            plus[n][idx] *= 1 + h
            minus[n][idx] *= 1 - h
            diff = _law_q(law, data, spec, plus)[0] - _law_q(law, data, spec, minus)[0]
            coeffs[n][(slice(None),) + idx] = diff[:, 0] / (2 * h)
    out = []
    for k in range(q0.shape[0]):
        worst = {n: x * (1 + delta * np.sign(coeffs[n][k])) for n, x in params.items()}
        assert sum(np.abs(c[k]).sum() for c in coeffs.values()) > 0
        out.append((abs(_law_q(law, data, spec, worst)[0][k, 0] - q0[k, 0]),
                    delta * sigma[k]))
    return out


@pytest.mark.parametrize("name", list(SIGMA_CASES))
def test_sensitivity_bounds_the_change_under_relative_perturbations(name):
    """Perturbing every parameter by a relative δ in the worst direction changes each
    component of Q by at most δ·σ, and by at least δ·σ/4 (σ is a bound, not a wild one)."""
    law = next(x for x in LAWS if x.name == name)
    s = build(SIGMA_CASES[name])
    params = {n: x.astype(np.float64) for n, x in s.params.items()}
    for k, (change, bound) in enumerate(_worst_changes(law, s.data, s.spec, params)):
        assert change <= bound * (1 + 1e-6), (k, change, bound)
        assert change >= bound / 4, (k, change / bound)


def _common_score_case():
    """SEN where the non-topic keys are 30× the topic keys: Q's change through the common
    score c (log-mean-exp of the non-topic scores) dominates its sensitivity."""
    s = build(SIGMA_CASES["SEN"])
    params = {n: x.astype(np.float64) for n, x in s.params.items()}
    nontopic = s.data.topic_class < 0
    params["keys"][nontopic] *= 30
    return next(x for x in LAWS if x.name == "SEN"), s, params


def test_sen_sensitivity_bounds_the_change_through_the_common_score():
    law, s, params = _common_score_case()
    for k, (change, bound) in enumerate(_worst_changes(law, s.data, s.spec, params)):
        assert change <= bound * (1 + 1e-6), (k, change, bound)


def test_sen_sensitivity_without_its_common_score_term_is_caught(monkeypatch):
    """Negative control: σ without |∂Q/∂c|·δc no longer bounds that change."""
    import numeric._generated.laws as printed
    slopes = printed.sen_slopes
    monkeypatch.setattr(printed, "sen_slopes", lambda **kw: dict(
        slopes(**kw), c=np.zeros_like(slopes(**kw)["c"])))
    law, s, params = _common_score_case()
    assert any(change > bound * (1 + 1e-6)
               for change, bound in _worst_changes(law, s.data, s.spec, params))


# --- the campaign's summary (deterministic: no time budget involved) ---------------------------

def _report(law, usage, applicable=True, drift=None):
    from numeric.laws import Condition
    cond = (Condition("A1", "", applicable, 0.0 if applicable else 1.0),)
    drift = usage / 10 if drift is None else drift
    return LawReport(law, "", cond, drift, 0.0, usage, 1.0, "matrix", 0.1, 0.0)


def test_summary_counts_applicable_violated_and_keeps_the_worst():
    from numeric.campaign import CampaignResult, TrajectoryResult, summarize
    results = [
        TrajectoryResult(Config(seed=1), "ok", [_report("SEN", 0.5),
                                                 _report("query-key", 0.2, False, 0.3)]),
        TrajectoryResult(Config(seed=2), "ok", [_report("SEN", 3.0),
                                                 _report("query-key", 0.1, False, 0.7)]),
        TrajectoryResult(Config(seed=3), "ok", [_report("SEN", 0.9),
                                                 _report("query-key", 0.4),
                                                 _report("classifier-embedding", 1.0)]),
        TrajectoryResult(Config(seed=4), "stalled"),
        TrajectoryResult(Config(seed=5), "ok", [_report("query-key", float("nan"), False,
                                                        float("nan"))]),
    ]
    from numeric.campaign import ShardResult
    shards = [ShardResult(0, 11, results[:2]), ShardResult(1, 12, results[2:])]
    rows = {r.law: r for r in summarize(shards)}
    assert list(rows) == [law.name for law in LAWS]
    sen, qk, ce = rows["SEN"], rows["query-key"], rows["classifier-embedding"]
    assert (sen.trajectories, sen.applicable, sen.violated) == (3, 3, 1)
    assert sen.worst.usage == 3.0 and sen.worst_config.seed == 2
    assert (sen.worst_shard, sen.worst_shard_seed) == (0, 11)
    assert (qk.trajectories, qk.applicable, qk.violated) == (4, 1, 0)
    assert qk.worst.usage == 0.4 and qk.worst_not_applicable == 0.7
    assert (ce.applicable, ce.violated) == (1, 0) and rows["relu-unit"].worst is None
    result = CampaignResult(0, 5.0, 5.0, shards, list(rows.values()))
    assert (result.trajectories, result.stalled, result.ok) == (4, 1, False)
    d = result.to_dict()
    assert d["laws"][0]["worst_usage"] == 3.0 and d["laws"][0]["worst_config"]["seed"] == 2
    assert "1 violated" in result.headline() and "worst: SEN" in result.headline()
    fine = [ShardResult(0, 11, [r for r in results if r.config.seed != 2])]
    ok = CampaignResult(0, 5.0, 5.0, fine, summarize(fine))
    assert ok.ok and "0 violated" in ok.headline()
    assert not CampaignResult(0, 1.0, 1.0, [], summarize([])).ok   # nothing ran: not ok


# --- measurements behind every law --------------------------------------------------------------

def test_drift_measures_take_the_largest_change_and_the_largest_sensitivity():
    from numeric.laws import drift_measures
    a = np.array([1.0, 3.0, 2.0])[:, None]                     # (T, K = 1), scalar terms
    b = np.array([0.0, 1.5, 1.0])[:, None]
    sens = np.array([5.0, 2.0, 9.0])[:, None]
    absolute, movement, sigma = drift_measures(a, b, sens)
    assert (absolute[0], movement[0], sigma[0]) == (0.5, 2.0 + 1.5, 9.0)
    # matrix terms: Frobenius norms of the change from the first snapshot
    a = np.zeros((2, 1, 2, 2))
    a[1, 0] = [[3.0, 0.0], [0.0, 4.0]]
    absolute, movement, _ = drift_measures(a, np.zeros_like(a), np.ones((2, 1)))
    assert absolute[0] == 5.0 and movement[0] == 5.0


def _one_topic_trajectory(query_scale=1.0):
    """Word 0 is the only topic word present, word 2 the only non-topic word (word 1, a
    topic word of class 1, occurs in no sentence)."""
    data = numeric.Dataset([[0, 2], [2, 0]], [0, 0], 3, 2, topic_class=[0, 1, -1])
    spec = numeric.ModelSpec(d=2, d_key=2, trainable=("keys", "embeddings"))
    rng = np.random.default_rng(0)
    params = {"embeddings": rng.standard_normal((3, 2)), "keys": rng.standard_normal((3, 2)),
              "query": query_scale * rng.standard_normal(2),
              "classifier": rng.standard_normal((2, 2))}
    params["embeddings"][2] = 0.0
    traj = integrate_flow(params, data, spec, 2.0, frozen_rows={"embeddings": [2],
                                                                "keys": [2]})
    return traj


def test_sen_is_computed_with_one_topic_and_one_nontopic_word():
    sen = by_law(check_laws(_one_topic_trajectory(), 1e-6))["SEN"]
    assert sen.worst == "topic word 0" and sen.verdict == "holds"
    assert np.isfinite(sen.drift) and sen.absolute_drift < 1e-9


def test_sen_with_a_zero_query_in_one_snapshot_is_undefined_and_says_why():
    traj = _one_topic_trajectory()
    query = traj.params["query"].copy()
    query[-1] = 0.0
    bent = Trajectory(traj.data, traj.spec, traj.time, dict(traj.params, query=query),
                      frozen_rows=traj.frozen_rows)
    sen = by_law(check_laws(bent, 1e-6))["SEN"]
    assert sen.verdict == "not applicable" and np.isnan(sen.drift)
    assert "‖q‖ = 0" in sen.conditions[-1].detail


def test_runs_stop_once_scores_have_moved_or_at_a_relu_kink(monkeypatch):
    """A run ends where some score has moved by ``SCORE_GROWTH`` from its start (not where
    it reaches that size), and a ReLU run where a pre-activation comes within
    ``KINK_MARGIN`` of 0, never past it."""
    import numeric.campaign as campaign
    seen, real = [], campaign.integrate_flow

    def spy(*args, **kw):
        seen.append(real(*args, **kw))
        return seen[-1]

    monkeypatch.setattr(campaign, "integrate_flow", spy)
    r = run_trajectory(Config(seed=0, key_scale=0.3, query_scale=3.0, horizon=1e4, m=1,
                              n_nontopic=1))
    s0 = build(r.config).params
    assert np.abs(s0["keys"] @ s0["query"]).max() > 2.0       # scores start far from 0
    assert r.score_growth == pytest.approx(campaign.SCORE_GROWTH, rel=1e-6)
    assert seen[-1].time[-1] < 1e4
    config = Config(seed=1, classifier="mlp", a2=False, hidden=3, horizon=1e4,
                    embedding_scale=1.0, trainable=("embeddings", "classifier"))
    run_trajectory(config)
    traj, data = seen[-1], build(config).data
    gaps = [np.abs(numeric.context(p, data) @ p["hidden_weight"].T + p["hidden_bias"]).min()
            for p in map(traj.snapshot, range(len(traj)))]
    assert min(gaps) >= campaign.KINK_MARGIN * (1 - 1e-9)
    assert gaps[-1] == pytest.approx(campaign.KINK_MARGIN, rel=1e-6) and traj.time[-1] < 1e4


def test_summary_does_not_count_an_unchecked_law_as_evidence():
    """A report whose terms never moved ("not checked") must not count as an applicable check."""
    from dataclasses import replace

    from numeric.campaign import ShardResult, TrajectoryResult, summarize
    unchecked = replace(_report("SEN", 0.0), unchecked="no term moved above the accuracy floor")
    assert unchecked.verdict == "not checked"
    rows = {r.law: r for r in summarize([ShardResult(0, 1, [
        TrajectoryResult(Config(seed=1), "ok", [unchecked])])])}
    assert (rows["SEN"].trajectories, rows["SEN"].applicable, rows["SEN"].worst) == (1, 0, None)

"""Laws, their preconditions and reports; ``attnflow laws`` (the campaign and ``attnflow check``:
test_campaign.py)."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

import numeric
from attnflow.cli import main
from numeric.campaign import Config, build, run_trajectory
from numeric.integrate import gradient_descent, integrate_flow
from numeric.laws import LAWS, Law, LawReport, check_laws, relative_drift
from numeric.trajectory import Trajectory

EPS = np.finfo(float).eps


def by_law(reports):
    return {r.law: r for r in reports}


def test_relative_drift_measures_the_unexplained_share_of_the_movement():
    t = np.linspace(0, 1, 5)[:, None]
    a = 3.0 + t ** 2
    zero = np.zeros_like(a)
    assert relative_drift(a, a - 7.0, zero, 0.0)[0] == 0.0            # exact cancellation
    assert relative_drift(a, np.full_like(a, 2.0), zero, 0.0)[0] == pytest.approx(1.0)
    assert relative_drift(a, a + 1e-3 * t, zero, 0.0)[0] == pytest.approx(5e-4, rel=1e-2)
    still = np.full_like(a, 5.0)
    assert relative_drift(still, still, zero, 0.0)[0] == 0.0          # nothing moves
    # a large sensitivity (the drift parameters known to 1e-6 can cause) absorbs the drift
    assert relative_drift(a, a + 1e-3 * t, np.full_like(a, 1e8), 1e-6)[0] < 1e-4


def test_verdict_allows_the_accuracy_floor_but_not_more(paper_run):
    _, traj = paper_run
    sen = by_law(check_laws(traj, 0.0, 1e-6))["SEN"]
    assert sen.verdict == "holds" and sen.floor > sen.drift
    keys = traj.params["keys"].copy()
    keys[:, 0] *= 1 + 1e-3 * traj.time[:, None] / traj.time[-1]       # topic word 0 drifts
    sen = by_law(check_laws(_with(traj, keys=keys), 0.0, 1e-6))["SEN"]
    assert sen.verdict == "violated" and sen.worst == "topic word 0" and sen.usage > 1


@pytest.fixture(scope="module")
def paper_run():
    s = build(Config(seed=4, n_classes=3, m=4, n_sentences=12,
                     trainable=("keys", "embeddings", "classifier")))
    return s, integrate_flow(s.params, s.data, s.spec, 50.0, frozen_rows=s.frozen_rows)


def test_papers_setting_every_precondition_measured_and_holding(paper_run):
    _, traj = paper_run
    sen = by_law(check_laws(traj, 1e-6))["SEN"]
    assert [c.name for c in sen.conditions] == ["A1", "A2-embeddings", "A2-scores", "A3",
                                                "flow"]
    assert all(c.holds and c.measured == 0 for c in sen.conditions)
    assert sen.verdict == "holds"


def _with(traj, **params):
    """``traj`` with some parameter snapshots replaced."""
    new = dict(traj.params, **params)
    return Trajectory(traj.data, traj.spec, traj.time, new, frozen_rows=traj.frozen_rows)


def test_sen_preconditions_fail_by_name_with_the_measured_deviation(paper_run):
    s, traj = paper_run
    nontopic = s.frozen_rows["keys"]
    keys = traj.params["keys"].copy()
    keys[:, nontopic[0]] += 0.1                                       # unequal non-topic scores
    sen = by_law(check_laws(_with(traj, keys=keys), 1e-6))["SEN"]
    failed = {c.name: c.measured for c in sen.conditions if not c.holds}
    assert list(failed) == ["A2-scores"] and failed["A2-scores"] > 1e-3
    assert sen.verdict == "not applicable"

    query = traj.params["query"] * (1 + 1e-3 * traj.time)[:, None]    # a moving query
    sen = by_law(check_laws(_with(traj, query=query), 1.0))["SEN"]
    assert not sen.conditions[0].holds and sen.verdict == "not applicable"


def test_a_law_without_preconditions_is_never_reported_as_holding(paper_run):
    s, _ = paper_run
    spec = numeric.ModelSpec(d=2, d_key=2, trainable=())              # nothing moves
    traj = integrate_flow(s.params, s.data, spec, 1.0)
    reports = by_law(check_laws(traj, 1e-6))
    assert reports["SEN"].drift == 0.0 and reports["SEN"].verdict == "not applicable"


def test_sen_is_undefined_without_topic_words(paper_run):
    s, traj = paper_run
    data = numeric.Dataset(s.data.tokens, s.data.labels, s.data.n_words, s.data.n_classes)
    sen = by_law(check_laws(Trajectory(data, traj.spec, traj.time, dict(traj.params)), 1e-6))
    sen = sen["SEN"]
    assert sen.verdict == "not applicable" and np.isnan(sen.drift)
    assert sen.to_dict()["relative_drift"] is None
    assert "topic_class" in sen.conditions[-1].detail


def test_balance_needs_frozen_factors_to_vanish():
    s = build(Config(seed=5, n_classes=3, a2=False, key_scale=0.5,
                     trainable=("keys", "embeddings")))
    traj = integrate_flow(s.params, s.data, s.spec, 10.0)
    qk = by_law(check_laws(traj, 1e-6))["query-key"]
    assert qk.verdict == "not applicable" and qk.drift > 0.1          # frozen q ≠ 0
    ce = by_law(check_laws(traj, 1e-6))["classifier-embedding"]
    assert ce.verdict == "not applicable" and ce.drift > 0.1          # frozen U ≠ 0
    s.params["query"][:] = 0.0                                        # frozen at zero: fine
    traj = integrate_flow(s.params, s.data, s.spec, 10.0)
    qk = by_law(check_laws(traj, 1e-6))["query-key"]
    # ... but with q = 0 the keys' gradient (∝ q) vanishes too: nothing moves, no evidence
    assert qk.applicable and qk.verdict == "not checked" and "did not move" in qk.reason


def test_every_law_is_checked_for_its_classifier():
    both = {"SEN", "query-key", "key-sum", "key-across-query"}
    for classifier, expected in [("linear", both | {"classifier-embedding", "classifier-sum",
                                                    "embedding-across-classifier"}),
                                 ("mlp", both | {"hidden-embedding", "relu-unit",
                                                 "output-weight-sum", "output-bias-sum"})]:
        r = run_trajectory(Config(seed=1, classifier=classifier,
                                  trainable=("keys", "embeddings", "classifier")))
        assert {rep.law for rep in r.reports} == expected
    assert {law.name for law in LAWS} == {"SEN", "query-key", "classifier-embedding",
                                          "hidden-embedding", "relu-unit", "key-sum",
                                          "key-across-query", "classifier-sum",
                                          "output-weight-sum", "output-bias-sum",
                                          "embedding-across-classifier"}


def test_laws_command_on_a_saved_gradient_descent_run(tmp_path, capsys):
    s = build(Config(seed=2, n_classes=3, m=5, n_sentences=10,
                     trainable=("keys", "embeddings", "classifier")))
    traj = gradient_descent(s.params, s.data, s.spec, 0.1, 300, record_every=50,
                            frozen_rows=s.frozen_rows)
    traj.save(tmp_path / "run.npz")
    out = tmp_path / "laws.json"
    assert main(["laws", str(tmp_path / "run.npz"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    sen = next(law for law in report["laws"] if law["law"] == "SEN")
    assert sen["verdict"] == "holds" and 0 < sen["relative_drift"] < 1e-2
    assert {c["name"] for c in sen["conditions"]} == {"A1", "A2-embeddings", "A2-scores",
                                                      "A3", "flow"}
    # gradient descent is not the flow: a tolerance below its O(lr) drift reports it
    assert main(["laws", str(tmp_path / "run.npz"), "--tolerance", "1e-8"]) == 1
    assert "VIOLATED" in capsys.readouterr().out


def test_laws_command_names_a_bad_field(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", tokens=np.zeros((2, 2), int))
    assert main(["laws", str(tmp_path / "bad.npz")]) == 2
    assert "missing field(s)" in capsys.readouterr().err


class Snapshots:
    """Stand-in for a float64 trajectory of ``T`` snapshots (all ``Law.check`` reads)."""

    spec = SimpleNamespace(float=np.float64)

    def __init__(self, snapshots: int):
        self.snapshots = snapshots

    def __len__(self):
        return self.snapshots


def toy_law(a: np.ndarray, b: np.ndarray) -> Law:
    """``Q = A − B`` conserved componentwise, ``a``, ``b`` of shape (T, K), no
    preconditions."""
    return Law("toy", "A - B is constant", ("linear",),
               terms=lambda traj: (a, b, np.abs(a) + np.abs(b),
                                   [f"c{k}" for k in range(a.shape[1])]),
               conditions=lambda traj: [])


MOVING = np.array([1.0, 2.0, 3.0])
OVERFLOW = np.full(3, np.inf)   # its drift is inf - inf


def test_an_overflowing_component_cannot_hide_a_violated_one():
    """NaN usage at component 0 once made the verdict "holds" (NaN > 1 is false) although
    component 1 drifted by half its movement."""
    a = np.stack([OVERFLOW, MOVING], axis=1)
    rep = toy_law(a, np.zeros_like(a) + [0.0, 1.0]).check(Snapshots(3), 1e-3)
    assert rep.verdict == "violated" and rep.worst == "c1" and rep.usage > 1


def test_an_overflowing_component_is_not_checked_never_holds():
    a = np.stack([OVERFLOW, MOVING], axis=1)
    b = np.stack([OVERFLOW, MOVING - 1.0], axis=1)                # c1 conserved
    rep = toy_law(a, b).check(Snapshots(3), 1e-3)
    assert rep.verdict == "not checked" and rep.worst == "c0"
    assert "not finite at c0" in rep.reason and rep.to_dict()["verdict"] == "not checked"
    finite = toy_law(a[:, 1:], b[:, 1:]).check(Snapshots(3), 1e-3)
    assert finite.verdict == "holds"                              # the control


def test_a_nan_usage_is_never_holds():
    a = MOVING[:, None]
    rep = toy_law(a, a - 1.0).check(Snapshots(3), 1e-3)
    nan = LawReport(**{**rep.__dict__, "usage": float("nan")})
    assert rep.verdict == "holds" and nan.verdict == "not checked"
    assert nan.reason == "the drift is not a number"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_laws_command_fails_a_run_whose_other_entry_overflows(tmp_path, capsys):
    """End to end: entry 0 of Σ_w κ_w overflows, entry 1 drifts: exit 1, not 0."""
    t = np.array([0.0, 1.0, 2.0])
    keys = np.zeros((3, 3, 2))
    keys[:, :2, 0] = 1e308                          # entry 0 of the key sum is inf
    keys[:, 2, 1] = [1e299, 2e299, 3e299]           # entry 1 moves: key-sum violated
    np.savez(tmp_path / "run.npz", tokens=np.array([[0, 1, 2], [2, 1, -1]]),
             labels=np.array([0, 1]), n_classes=np.int64(2), time=t,
             embeddings=np.tile([[1.0, 0.5], [0.2, 0.3], [0.4, 0.1]], (3, 1, 1)),
             keys=keys, query=np.array([[1.0, 1.0], [1.1, 1.0], [1.2, 1.0]]),
             classifier=np.tile(np.eye(2), (3, 1, 1)), trainable=np.array(["keys", "query"]))
    assert main(["laws", str(tmp_path / "run.npz")]) == 1
    out = capsys.readouterr().out
    assert "key-sum: VIOLATED" in out and "at key entry 1" in out


def drifting_keys_fields() -> dict:
    """A saved run whose key rows all move by 0.05 per snapshot: key-sum is violated."""
    t = np.array([0.0, 1.0, 2.0])
    keys = np.tile([[0.1, 0.2], [0.3, -0.1], [0.2, 0.4]], (3, 1, 1)) + 0.05 * t[:, None, None]
    return dict(tokens=np.array([[0, 1, 2], [2, 1, -1]]), labels=np.array([0, 1]),
                n_classes=np.int64(2), time=t,
                embeddings=np.tile([[1.0, 0.5], [0.2, 0.3], [0.4, 0.1]], (3, 1, 1)),
                keys=keys, query=np.tile([1.0, 1.0], (3, 1)),
                classifier=np.tile(np.eye(2), (3, 1, 1)), trainable=np.array(["keys"]))


@pytest.mark.parametrize("claim, message", [
    (dict(frozen_rows_keys=np.array([0])), "frozen_rows_keys: row 0 is said to be held fixed"),
    (dict(trainable=np.array(["embeddings"])), "trainable: keys is not listed as trained")])
def test_a_frozen_claim_the_snapshots_contradict_is_refused(claim, message, tmp_path, capsys):
    """The preconditions trust what a file says was held fixed: claiming moving key rows
    frozen once turned key-sum's violation (exit 1) into "not checked" and exit 0."""
    np.savez(tmp_path / "run.npz", **drifting_keys_fields())
    assert main(["laws", str(tmp_path / "run.npz")]) == 1               # the control
    np.savez(tmp_path / "claim.npz", **{**drifting_keys_fields(), **claim})
    assert main(["laws", str(tmp_path / "claim.npz")]) == 2
    assert message in capsys.readouterr().err


def test_a_trainable_claim_the_snapshots_contradict_is_a_failed_precondition(tmp_path,
                                                                            capsys):
    """A file listing the query as trainable while it never moves made query-key VIOLATED
    with every precondition "[ok]": the balance needs the query's flow, which the claim
    asserts and the snapshots deny. Now the precondition fails, naming the query; laws that
    do not read the query keep their verdicts."""
    s = build(Config(seed=3, trainable=("keys", "embeddings"), key_scale=0.5, a2=False))
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 40, record_every=10)
    traj.save(tmp_path / "run.npz")
    fields = dict(np.load(tmp_path / "run.npz"))
    np.savez(tmp_path / "claim.npz", **{**fields, "trainable": np.array(
        ["keys", "embeddings", "query"])})
    honest = by_law(check_laws(Trajectory.load(tmp_path / "run.npz"), 0.01))
    claimed = by_law(check_laws(Trajectory.load(tmp_path / "claim.npz"), 0.01))
    query_key = claimed["query-key"]
    assert query_key.verdict == "not applicable"
    failed = [c for c in query_key.conditions if not c.holds]
    assert [c.name for c in failed] == ["claims"] and "query listed as trainable" in \
        failed[0].detail
    assert claimed["key-across-query"].verdict == "not applicable"      # it reads q too
    for law in ("key-sum", "classifier-embedding", "embedding-across-classifier"):
        assert claimed[law].verdict == honest[law].verdict, law
        assert "claims" not in {c.name for c in claimed[law].conditions}
    assert main(["laws", str(tmp_path / "claim.npz")]) == 0
    assert "[FAILS] claims" in capsys.readouterr().out
    # Π of embedding-across-classifier is made from the classifier: a claim on it counts
    np.savez(tmp_path / "claim_u.npz", **{**fields, "trainable": np.array(
        ["keys", "embeddings", "classifier"])})
    claimed = by_law(check_laws(Trajectory.load(tmp_path / "claim_u.npz"), 0.01))
    for law in ("classifier-embedding", "embedding-across-classifier"):
        assert "classifier listed as trainable" in _condition(claimed[law], "claims").detail
    assert claimed["key-sum"].verdict == honest["key-sum"].verdict
    # an integrator's run names its trained set; a parameter with zero gradient may stand
    spec = dataclasses.replace(traj.spec, trainable=("keys", "embeddings", "query"))
    assert Trajectory(traj.data, spec, traj.time, traj.params).claimed_still() == ()
    # nothing moves at all: no evidence of anything ("not checked"), no claim contradicted
    still = {k: np.repeat(v[:1], len(traj), axis=0) if k in traj.params else v
             for k, v in fields.items()}
    np.savez(tmp_path / "still.npz", **still)
    assert Trajectory.load(tmp_path / "still.npz").claimed_still() == ()


# --- the laws' preconditions and movements, each pinned down ----------------------------------

def _condition(report, name):
    return next(c for c in report.conditions if c.name == name)


@pytest.fixture(scope="module")
def sum_run():
    """Everything trains (linear classifier): the sum laws apply."""
    s = build(Config(seed=5, n_classes=3, m=3, n_sentences=12, key_scale=0.5, a2=False,
                     trainable=("keys", "embeddings", "classifier")))
    return s, gradient_descent(s.params, s.data, s.spec, 0.05, 20, record_every=5)


def test_a_sum_law_needs_its_array_trained_without_frozen_rows_and_moving(sum_run):
    """trains-keys: trained, no frozen row (an empty list of frozen rows is none), and a
    relative movement above 1e-10 — each part on its own fails it."""
    _, traj = sum_run

    def key_sum(params=None, spec=None, rows=None):
        t = Trajectory(traj.data, spec or traj.spec, traj.time, params or traj.params,
                       frozen_rows=rows or {})
        return by_law(check_laws(t, 0.01))["key-sum"]
    assert _condition(key_sum(), "trains-keys").holds
    assert _condition(key_sum(rows={"keys": np.array([], dtype=int)}), "trains-keys").holds
    assert not _condition(key_sum(rows={"keys": np.array([0])}), "trains-keys").holds
    frozen = dataclasses.replace(traj.spec, trainable=("embeddings", "classifier"))
    assert not _condition(key_sum(spec=frozen), "trains-keys").holds
    still = dict(traj.params, keys=np.repeat(traj.params["keys"][:1], len(traj), axis=0))
    condition = _condition(key_sum(params=still), "trains-keys")
    assert not condition.holds and condition.measured == 0.0


def test_a_sum_law_is_measured_against_its_summands_largest_displacement(sum_run):
    """classifier-sum's movement is max_τ Σ_c |U_ck(τ) − U_ck(0)| per entry k (the printed
    sensitivity at the displacement): with U going out and half-way back, the largest
    displacement is in the middle, not at the end, and not Σ_c |U_ck|."""
    _, traj = sum_run
    u = traj.params["classifier"]
    out_and_back = np.stack([u[0], u[0] + 1.0, u[0] + 0.5, u[0] + 0.25, u[0] + 0.5])
    t = Trajectory(traj.data, traj.spec, traj.time, dict(traj.params, classifier=out_and_back))
    law = next(x for x in LAWS if x.name == "classifier-sum")
    c = u.shape[1]
    np.testing.assert_array_equal(law.movement(t), np.full(u.shape[2], float(c)))
    report = by_law(check_laws(t, 0.01))["classifier-sum"]
    assert report.drift == pytest.approx(c * 1.0 / c, rel=1e-12)     # |ΔQ| = C at τ = 1


def test_with_no_direction_left_across_the_classes_condition_n_fails_measuring_zero():
    """C − 1 ≥ d: the differences U_c − U_0 span everything, no direction is conserved:
    N fails and measures d − rank = 0 (with one direction left it holds measuring 1)."""
    for n_classes, d, left in ((3, 2, 0.0), (2, 2, 1.0)):
        s = build(Config(seed=1, n_classes=n_classes, d=d, m=2, n_sentences=6,
                         trainable=("keys", "embeddings")))
        traj = gradient_descent(s.params, s.data, s.spec, 0.05, 10, record_every=5,
                                frozen_rows=s.frozen_rows)
        n = _condition(by_law(check_laws(traj, 0.01))["embedding-across-classifier"], "N")
        assert n.holds is (left > 0) and n.measured == left
        assert n.detail == f"conserved directions per word: d − rank = {d} − {int(d - left)}"


def test_sen_needs_its_topic_words_rows_to_follow_the_flow():
    """A2 freezes the non-topic rows (allowed); a frozen topic word's key row fails SEN's
    flow condition, naming keys."""
    s = build(Config(seed=2, m=3, n_sentences=8, trainable=("keys", "embeddings")))
    traj = gradient_descent(s.params, s.data, s.spec, 0.05, 10, record_every=5,
                            frozen_rows=s.frozen_rows)
    flow = _condition(by_law(check_laws(traj, 0.01))["SEN"], "flow")
    assert flow.holds and flow.measured == 0
    rows = {**s.frozen_rows, "keys": np.append(s.frozen_rows["keys"], 0)}   # topic word 0
    frozen = Trajectory(traj.data, traj.spec, traj.time, traj.params, frozen_rows=rows)
    flow = _condition(by_law(check_laws(frozen, 0.01))["SEN"], "flow")
    assert not flow.holds and flow.measured == 1 and flow.detail == \
        "frozen for topic words: ['keys']"


@pytest.fixture(scope="module")
def stationary(tmp_path_factory):
    """Embeddings and classifier at 0: every gradient is 0, nothing moves (nothing to
    check), and the replay stays put too."""
    s = build(Config(seed=3, key_scale=0.5, a2=False,
                     trainable=("keys", "embeddings", "classifier")))
    params = {**s.params, "embeddings": 0 * s.params["embeddings"],
              "classifier": 0 * s.params["classifier"]}
    path = tmp_path_factory.mktemp("still") / "stationary.npz"
    gradient_descent(params, s.data, s.spec, 0.05, 10, record_every=5).save(path)
    return path


@pytest.mark.parametrize("argv", [[], ["--lr", "0.05"], ["--lr", "0.05",
                                                         "--checkpoints-only"]],
                         ids=["laws", "replay", "estimate"])
def test_nothing_checked_exits_3_even_when_the_replay_is_explained(stationary, tmp_path,
                                                                   capsys, argv):
    """A replay that explains a run whose laws could not be checked is no evidence for
    them: exit 3 (NOTHING CHECKED), ok false — with or without the replay."""
    out = tmp_path / "r.json"
    assert main(["laws", str(stationary), "--jobs", "1", *argv, "--json", str(out)]
                if argv else ["laws", str(stationary), "--json", str(out)]) == 3
    report = json.loads(out.read_text())
    assert report["verdict"] == "not checked" and report["ok"] is False
    if argv[-1:] == ["0.05"]:
        assert report["explanation"]["verdict"] == "explained"
        assert report["explanation"]["replay"]["consistent"]
    assert "NOTHING CHECKED" in capsys.readouterr().out

"""Behaviours of the campaign that no other test pinned down: each test fails under a
realistic one-line bug (``tests/mutation.py``) and passes on the code."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import pytest

from numeric import campaign


def test_a_shard_out_of_time_reports_its_search_stopped_not_shrunk():
    result = campaign.run_shard(campaign.Shard(0, 0, 5, time.time() - 1.0))
    assert result.stopped and not result.shrunk and result.violation is None


def test_the_memory_estimate_holds_dense_output_for_every_step_dop853_can_take():
    """DOP853 spends 12 evaluations per step: ``MAX_EVALUATIONS`` allow that many steps, each
    keeping 8 values per parameter entry (8 bytes each)."""
    from scipy.integrate._ivp.rk import DOP853

    steps = campaign.MAX_EVALUATIONS // DOP853.n_stages
    assert 8 * 8 * steps == campaign.BYTES_PER_PARAMETER


def test_a_shard_that_runs_its_examples_is_not_reported_stopped():
    result = campaign.run_shard(campaign.Shard(0, 0, 1, time.time() + 600.0,
                                               limits=(("max_sentences", 3),)))
    assert not result.stopped and result.results


def test_the_time_estimate_grows_with_the_parameters():
    """Each evaluation reads every parameter: a vocabulary of ten million words costs more
    than one of ten at the same sentences and widths."""
    small = campaign.Config(seed=0, n_nontopic=10)
    large = dataclasses.replace(small, n_nontopic=10 ** 7)
    assert large.cost()[0] > 10 * small.cost()[0]


def test_the_attention_time_estimate_doubles_with_the_head_width_on_long_sentences():
    """Scores and attention take token pairs × head width: on long sentences (length 4000),
    twice the head width costs about twice the time."""
    narrow = campaign.Config(seed=0, architecture="multi-head", trainable=campaign.HEAD_PARAMS,
                             a2=False, m=3999, d=1, d_head=1)
    wide = dataclasses.replace(narrow, d_head=2)
    assert 1.9 < wide.cost()[0] / narrow.cost()[0] < 2.0


def test_a_small_configuration_is_estimated_at_seconds_not_minutes():
    """The default configuration (four sentences of three tokens) costs a few seconds at
    most (``MAX_EVALUATIONS`` evaluations of well under a millisecond): a fixed cost ten
    times too large would price every small case near a minute."""
    assert 1.0 < campaign.Config(seed=0).cost()[0] < 10.0


def test_a_size_is_priced_as_itself_up_to_1e300():
    assert campaign._real(5 * 10 ** 299) == 5e299
    assert campaign._real(10 ** 300) == campaign._real(10 ** 400) == 1e300


def test_the_time_estimate_grows_with_the_class_by_width_products():
    """Logits and their gradient take sentences × classes × d products: at d = 1000 and a
    thousand sentences, two more classes cost more time, not less."""
    narrow = campaign.Config(seed=0, n_sentences=1000, d=1000, n_classes=2)
    wide = dataclasses.replace(narrow, n_classes=4)
    per, s, d = campaign.EVALUATION_SECONDS, 1000, 1000
    grows = wide.cost()[0] - narrow.cost()[0]
    assert grows >= campaign.MAX_EVALUATIONS * per["products"] * s * 2 * d


@pytest.mark.parametrize("index, text", [(None, "keys"), ((0, 1), "keys[0,1]")])
def test_a_negative_control_names_its_parameter_and_entry(index, text):
    assert str(campaign.WrongSign("keys", index)) == f"wrong sign in the gradient of {text}"


def test_a_violation_reports_how_long_finding_and_shrinking_took(monkeypatch):
    monkeypatch.setattr(campaign, "violated_laws", lambda result: ["SEN"])
    shard = campaign.ShardResult(0, 5, violation=SimpleNamespace(config="case"), shrunk=True,
                                 found_at=12.0, finished=15.5)
    (v,) = campaign.violations([shard], start=10.0)
    assert (v.laws, v.find_seconds, v.shrink_seconds) == (["SEN"], 2.0, 3.5)
    assert (v.config, v.shard, v.shard_seed, v.shrunk) == ("case", 0, 5, True)


def test_a_case_of_an_unknown_architecture_is_refused_by_name():
    with pytest.raises(ValueError, match="Config.architecture must be one of paper, "
                                         "self-attention, multi-head, got 'transformer'"):
        campaign.Config.from_text("seed=0,architecture=transformer")


def test_a_case_whose_parameters_outgrow_the_memory_is_refused_before_it_runs():
    """A hundred thousand words of width 2 + 2: well within the time limit (under a
    minute), but DOP853's dense output of 400 000 parameter entries is about 13 GB."""
    from numeric.limits import TooLarge
    config = campaign.Config(seed=0, n_nontopic=100_000)
    assert config.cost()[0] < campaign.MAX_CASE_SECONDS
    with pytest.raises(TooLarge, match="case too large"):
        config.check_cost(max_bytes=1e9)


def test_a_law_never_applicable_under_plain_sampling_compares_as_no_usage():
    """``check --compare``: a law the plain campaign never checked has no worst usage (None,
    printed "-"), beside the targeted search's."""
    worst = campaign.LawRow("SEN", worst=SimpleNamespace(usage=0.25))
    targeted = SimpleNamespace(rows=[worst, campaign.LawRow("key-sum")])
    plain = SimpleNamespace(rows=[campaign.LawRow("SEN"), campaign.LawRow("key-sum")])
    assert campaign.compare_worst(targeted, plain) == [("SEN", 0.25, None),
                                                       ("key-sum", None, None)]


def _attention(**kw) -> campaign.Config:
    return campaign.Config(seed=0, architecture="multi-head", trainable=campaign.HEAD_PARAMS,
                           a2=False, **kw)


def test_each_architecture_has_only_its_own_sizes():
    paper, heads = campaign.Config(seed=0), _attention()
    assert paper.has_size("d_key") and paper.has_size("m") and not paper.has_size("heads")
    assert heads.has_size("heads") and heads.has_size("m") and not heads.has_size("d_key")


def test_a_description_names_the_seed_and_only_the_fields_changed():
    config = campaign.Config(seed=3, m=5, embedding_scale=0.123456)
    assert config.describe() == "Config(seed=3, m=5, embedding_scale=0.123)"


def test_a_trajectory_reports_its_own_wall_time():
    start = time.perf_counter()
    result = campaign.run_trajectory(campaign.Config(seed=0, horizon=5.0))
    took = time.perf_counter() - start
    assert result.status == "ok" and 0.0 < result.seconds <= took


def test_a_stalled_trajectory_reports_its_own_wall_time(monkeypatch):
    from numeric.integrate import StalledIntegration

    def stall(*args, **kwargs):
        raise StalledIntegration("kink")
    monkeypatch.setattr(campaign, "integrate_case", stall)
    start = time.perf_counter()
    result = campaign.run_trajectory(campaign.Config(seed=0))
    took = time.perf_counter() - start
    assert result.status == "stalled" and 0.0 <= result.seconds <= took
    assert result.n_steps == 0 and result.reports == []    # no step taken, no law checked


@pytest.mark.parametrize("index", [(0, 2), (5, 0)])
def test_a_negative_control_entry_outside_one_axis_does_not_reach_the_flow(index):
    """keys has shape (5, 2) here: an entry past the end of either axis patches nothing."""
    config = campaign.Config(seed=0, trainable=("keys",), a2=False)
    assert not campaign.WrongSign("keys", index).reaches(config)
    assert campaign.WrongSign("keys", (4, 1)).reaches(config)


def test_the_smallest_sizes_of_an_attention_violation_are_its_own_sizes():
    """After the shrink, each size of a multi-head case is tried at its minimum; the paper's
    sizes (d_key, hidden) are not the case's and are left alone (setting them would make a
    case the configuration refuses)."""
    config = _attention(heads=2, d_head=2)
    tried = []

    def checked(c):
        tried.append(c)
        return campaign.TrajectoryResult(c, "ok")
    out = campaign.ShardResult(0, 0, violation=campaign.TrajectoryResult(config, "ok"))
    campaign._to_smallest_sizes(out, checked)
    changed = {name for c in tried for name in campaign.SIZE_MINIMUM
               if name != "seed" and getattr(c, name) != getattr(config, name)}
    assert changed == {"n_sentences", "m", "n_nontopic", "d", "heads", "d_head"}
    assert len(tried) == 6 * campaign.SEEDS_PER_SIZE
    assert all(c.architecture == "multi-head" for c in tried)


class _Inline:
    """An executor running nothing: each submitted shard is handed back as a result with no
    trajectories once waited for; ``submitted`` lists the shards, ``most`` the most running
    at once."""

    def __init__(self, workers=None):
        self.workers = workers or 1
        self.submitted, self.running, self.most = [], 0, 0

    def submit(self, shard):
        self.submitted.append(shard)
        self.running += 1
        self.most = max(self.most, self.running)
        return shard

    def wait(self, pending, timeout):
        return set(pending), set()

    def result(self, shard):
        self.running -= 1
        return campaign.ShardResult(shard.index, shard.seed)

    def progress(self):
        return []

    def stop(self):
        pass

    def close(self):
        pass


@pytest.fixture
def inline(monkeypatch):
    """``run_campaign``'s local processes replaced by one ``_Inline`` executor."""
    import numeric.executors

    made = []

    class Recorded(_Inline):
        def __init__(self, workers=None):
            super().__init__(workers)
            made.append(self)
    monkeypatch.setattr(numeric.executors, "LocalProcesses", Recorded)
    return made


def test_a_campaign_runs_forty_examples_per_shard_by_default(inline):
    """``attnflow check --examples`` says "default 40"."""
    campaign.run_campaign(60.0, progress=False, max_shards=1)
    assert [s.examples for s in inline[0].submitted] == [40]


def test_a_campaign_runs_max_shards_never_more_at_once_than_its_workers(inline):
    campaign.run_campaign(60.0, progress=False, workers=2, max_shards=5)
    assert [s.index for s in inline[0].submitted] == [0, 1, 2, 3, 4]
    assert inline[0].most == 2
    campaign.run_campaign(60.0, progress=False, workers=3, max_shards=2)
    assert [s.index for s in inline[1].submitted] == [0, 1]


def test_a_campaigns_shards_stop_when_its_budget_is_spent(inline):
    before = time.time()
    campaign.run_campaign(60.0, progress=False, max_shards=1)
    (shard,) = inline[0].submitted
    assert before + 60.0 <= shard.deadline <= time.time() + 60.0


def test_a_campaign_without_progress_prints_nothing(inline, capsys):
    campaign.run_campaign(60.0, progress=False, max_shards=1)
    assert capsys.readouterr() == ("", "")


class _Clock:
    """``time.time()`` reading the given instants, the last one forever."""

    def __init__(self, *instants):
        self.instants = list(instants)

    def time(self):
        return self.instants.pop(0) if len(self.instants) > 1 else self.instants[0]


def test_draining_gives_shards_exactly_drain_seconds_then_leaves_them_out(monkeypatch):
    """After Ctrl-C: shards that hand in their results within ``DRAIN_SECONDS`` are kept;
    once that time has passed no further wait starts, and the silent ones are left out."""
    waits = []

    class Executor:
        def wait(self, pending, timeout):
            waits.append(timeout)
            done = {f for f in pending if f == "quick"}
            return done, pending - done

        def result(self, future):
            return future
    drain = campaign.DRAIN_SECONDS
    monkeypatch.setattr(campaign, "time", _Clock(100.0, 100.0, 100.0 + drain / 2,
                                                 100.0 + drain, 101.0 + drain))
    finished, pending = campaign._drain(Executor(), {"quick", "silent"})
    assert (finished, pending) == (["quick"], {"silent"})
    assert waits == [1.0, 1.0]    # a second at most each: the deadline is kept to a second


def test_a_case_text_names_the_seed_and_only_the_fields_changed():
    config = campaign.Config(seed=3, m=5, a2=False)
    assert config.to_text() == "seed=3,m=5,a2=no"
    assert campaign.Config.from_text(config.to_text()) == config


@pytest.mark.parametrize("text, trainable", [("keys+query", ("keys", "query")),
                                             ("none", ())])
def test_a_case_text_lists_what_trains_joined_by_plus(text, trainable):
    config = campaign.Config.from_text(f"seed=0,trainable={text}")
    assert config.trainable == trainable and config.to_text() == f"seed=0,trainable={text}"


@pytest.mark.parametrize("field", ["m=1_0", "seed=\u0663", "query_scale=1_0.5"])
def test_a_case_text_refuses_numbers_not_written_the_plain_way(field):
    name, _, raw = field.partition("=")
    with pytest.raises(ValueError, match=f"bad case field {name}="):
        campaign.Config.from_text(f"seed=0,{field}" if name != "seed" else field)


_MINIMUM = {"seed": 0, "n_classes": 2, "topics_per_class": 1, "m": 1, "n_nontopic": 1,
            "n_sentences": 1, "d": 1, "d_key": 1, "hidden": 1, "heads": 1, "d_head": 1}


@pytest.mark.parametrize("name, low", sorted(_MINIMUM.items()))
def test_each_size_below_its_minimum_is_refused_by_name(name, low):
    """Two classes, every other size at least 1, seeds from 0."""
    assert campaign.SIZE_MINIMUM == _MINIMUM
    with pytest.raises(ValueError, match=f"Config.{name} must be an integer >= {low}, "
                                         f"got {low - 1}"):
        campaign.Config(**{"seed": 0, name: low - 1})


def test_a_paper_case_with_an_attention_loss_is_refused_by_name():
    with pytest.raises(ValueError, match="Config.loss must be one of cross-entropy for the "
                                         "paper architecture, got 'squared-error'"):
        campaign.Config(seed=0, loss="squared-error")


def test_a_run_stops_once_some_score_has_moved_by_four_units():
    """The default case reaches that growth long before its horizon of 200."""
    result = campaign.run_trajectory(campaign.Config(seed=0))
    assert result.score_growth == pytest.approx(4.0, rel=1e-6)


def _priced_only(monkeypatch, term):
    """The estimate with every price 0 but ``term``'s, which is 1 per unit."""
    monkeypatch.setattr(campaign, "EVALUATION_SECONDS",
                        {k: float(k == term) for k in campaign.EVALUATION_SECONDS})


def _entries(config) -> int:
    import numpy as np
    shapes = config.spec.shapes(config.n_words, config.n_classes)
    return sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize("config", [
    campaign.Config(seed=0, n_classes=3, n_nontopic=5, d=7, d_key=11),
    campaign.Config(seed=0, n_classes=3, n_nontopic=5, d=7, d_key=11, classifier="mlp",
                    hidden=13),
    _attention(n_classes=3, n_nontopic=5, d=7, heads=2, d_head=11)],
    ids=["linear", "mlp", "multi-head"])
def test_the_estimates_count_every_parameter_entry_of_the_model(monkeypatch, config):
    """Priced per parameter entry only, an evaluation costs the model's number of entries,
    and the memory is ``BYTES_PER_PARAMETER`` per entry."""
    _priced_only(monkeypatch, "parameters")
    for name in ("BYTES_PER_TOKEN", "BYTES_PER_WIDTH"):
        monkeypatch.setattr(campaign, name, 0)
    seconds, memory = config.cost()
    assert seconds == campaign.MAX_EVALUATIONS * _entries(config)
    if config.architecture == "paper":  # the attention engine's buffers are not priced apart
        assert memory == campaign.BYTES_PER_PARAMETER * _entries(config)


def test_the_paper_time_estimate_prices_each_width_and_product_per_sentence(monkeypatch):
    """Per sentence: m + 1 tokens, widths d + d_key + classes + hidden, products of two widths
    classes·d + hidden·(d + classes) (the classifier's layers)."""
    config = campaign.Config(seed=0, n_sentences=17, n_classes=3, d=7, d_key=11,
                             classifier="mlp", hidden=13, m=19)
    _priced_only(monkeypatch, "tokens")
    assert config.cost()[0] == campaign.MAX_EVALUATIONS * 17 * (19 + 1)
    _priced_only(monkeypatch, "widths")
    assert config.cost()[0] == campaign.MAX_EVALUATIONS * 17 * (7 + 11 + 3 + 13)
    _priced_only(monkeypatch, "products")
    assert config.cost()[0] == campaign.MAX_EVALUATIONS * 17 * (3 * 7 + 13 * (7 + 3))


@pytest.mark.parametrize("config", [campaign.Config(seed=0, n_sentences=5),
                                    _attention(n_sentences=5)], ids=["paper", "multi-head"])
def test_the_memory_of_the_data_is_proportional_to_the_tokens(monkeypatch, config):
    """Without the parameters' share, twice the sentences (of the same length) take twice
    the memory."""
    monkeypatch.setattr(campaign, "BYTES_PER_PARAMETER", 0)
    twice = dataclasses.replace(config, n_sentences=10)
    assert twice.cost()[1] == pytest.approx(2 * config.cost()[1], rel=1e-12)


def test_a_negative_control_reads_a_name_and_an_entry_of_as_many_axes():
    assert campaign.WrongSign.from_text("keys:0,1") == campaign.WrongSign("keys", (0, 1))
    assert campaign.WrongSign.from_text("query") == campaign.WrongSign("query")
    for text in ("keys:0", "keys:0,-1"):
        with pytest.raises(ValueError, match="keys has 2 axes, so give 2 entries >= 0"):
            campaign.WrongSign.from_text(text)


def test_a_negative_control_on_a_parameter_the_case_does_not_train_reaches_nothing():
    config = campaign.Config(seed=0, trainable=("keys",), a2=False)
    assert not campaign.WrongSign("embeddings").reaches(config)
    with pytest.raises(ValueError, match="does not train embeddings \\(trained: keys\\)"):
        campaign.WrongSign("embeddings").check_reaches(config)


def test_a_negative_control_flips_its_entry_and_leaves_one_outside_the_array_alone():
    import numpy as np

    import numeric
    config = campaign.Config(seed=0, trainable=("keys",), a2=False)
    s = campaign.build(config)
    _, grad = numeric.value_and_gradient(s.params, s.data, s.spec)
    with campaign.WrongSign("keys", (1, 0)).applied():
        _, flipped = numeric.value_and_gradient(s.params, s.data, s.spec)
    with campaign.WrongSign("keys", (1, 2)).applied():
        _, outside = numeric.value_and_gradient(s.params, s.data, s.spec)
    expected = grad["keys"].copy()
    expected[1, 0] *= -1
    assert grad["keys"][1, 0] != 0
    np.testing.assert_array_equal(flipped["keys"], expected)
    np.testing.assert_array_equal(outside["keys"], grad["keys"])


def test_a_stop_flag_is_asked_again_once_a_quarter_second_has_passed(monkeypatch):
    """A stopped campaign abandons its running trajectories within 0.25 s."""
    now = [100.0]
    monkeypatch.setattr(campaign, "time", SimpleNamespace(monotonic=lambda: now[0]))
    asked = []
    stopped = campaign._polled(lambda: asked.append(now[0]) or True)
    now[0] = 100.125
    assert not stopped() and asked == []
    now[0] = 100.25
    assert stopped() and asked == [100.25]


def test_the_shards_saves_and_deletes_reach_the_example_database():
    from hypothesis.database import InMemoryExampleDatabase
    database = InMemoryExampleDatabase()
    database.save(b"key", b"old")
    log = [("save", b"key", b"new"), ("delete", b"key", b"old")]
    campaign._store(database, [campaign.ShardResult(0, 0, database_log=log)])
    assert list(database.fetch(b"key")) == [b"new"]


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf"), "60"])
def test_a_campaign_needs_a_positive_finite_budget(budget):
    with pytest.raises(ValueError, match="budget must be a positive number of seconds"):
        campaign._check_campaign_arguments(budget, 0, None, 1, None)


def test_workers_past_1e300_are_refused_as_too_many_not_overflowing():
    from numeric.limits import TooLarge
    with pytest.raises(TooLarge, match="that many worker processes"):
        campaign._check_campaign_arguments(60.0, 0, 10 ** 400, 1, None)


def test_the_memory_of_workers_past_1e300_is_a_lower_bound_not_an_estimate():
    from numeric.limits import TooLarge
    with pytest.raises(TooLarge, match="would take more than 1.28e\\+296 TB"):
        campaign._check_campaign_arguments(60.0, 0, 10 ** 400, 1, None)
    with pytest.raises(TooLarge, match="would take about 1.28e\\+296 TB"):
        campaign._check_campaign_arguments(60.0, 0, 10 ** 300 - 1, 1, None)


def test_workers_whose_memory_just_fits_the_limit_are_accepted(monkeypatch):
    import numeric.limits
    monkeypatch.setattr(numeric.limits, "memory_limit", lambda: 2 * campaign.WORKER_BYTES)
    campaign._check_campaign_arguments(60.0, 0, 2, 1, None)
    with pytest.raises(numeric.limits.TooLarge, match="workers = 3"):
        campaign._check_campaign_arguments(60.0, 0, 3, 1, None)


def test_the_progress_bar_shows_the_seconds_spent_up_to_the_budget(capsys):
    bar = campaign._ProgressBar(10.0, enabled=True, streamed=True)
    bar.trajectories([(3, 0.5)], 3.2)
    bar.trajectories([(2, 0.25)], 5.0)
    assert (bar.bar.n, bar.n, bar.laws, bar.worst) == (5, 2, 5, 0.5)
    bar.trajectories([], 50.0)
    assert bar.bar.n == 10
    bar.close()


def test_the_evaluation_prices_are_the_measured_ones():
    """Seconds per gradient evaluation, per unit of each size (measured on one core, rounded
    up): a price changed without measuring misjudges which cases fit the time limit."""
    assert campaign.EVALUATION_SECONDS == {"fixed": 6e-4, "tokens": 1e-7, "widths": 3e-8,
                                           "products": 1e-9, "parameters": 2e-8}


def test_the_attention_memory_grows_with_the_heads_score_rows():
    """On long sentences (length 4000) the score rows, token pairs × heads, take most of the
    memory: two heads take about twice that of one."""
    one = _attention(m=3999, d=1, d_head=1)
    two = dataclasses.replace(one, heads=2)
    assert 1.9 < two.cost()[1] / one.cost()[1] <= 2.0


def test_a_ragged_case_holds_sentences_of_every_length_from_1_to_m_alike():
    import numpy as np
    s = campaign.build(campaign.Config(seed=0, ragged=True, m=3, n_sentences=300))
    counts = np.bincount((s.data.tokens[:, 1:] >= 0).sum(axis=1), minlength=4)
    assert counts[0] == 0 and all(70 <= n <= 130 for n in counts[1:]), counts


def test_a_run_may_go_on_up_to_its_deadline(monkeypatch):
    """Out of budget only once the clock is past the deadline, not on it."""
    monkeypatch.setattr(campaign, "time", SimpleNamespace(time=lambda: 1000.0,
                                                          perf_counter=time.perf_counter))
    traj = campaign.integrate_case(campaign.Config(seed=0, horizon=5.0), deadline=1000.0)
    assert len(traj) > 1


def test_an_attention_run_grows_on_its_parameter_entries():
    result = campaign.run_trajectory(_attention(horizon=5.0))
    assert result.status == "ok" and result.n_steps > 0 and 0 < result.score_growth < 4.0


def test_a_negative_control_is_a_read_only_record():
    with pytest.raises(dataclasses.FrozenInstanceError):
        campaign.WrongSign("keys").parameter = "query"


def test_a_shard_searches_with_targets_under_its_own_seed_by_default():
    shard = campaign.Shard(5, 2, 1, 0.0)
    assert shard.targeted and shard.seed == campaign.shard_seed(5, 2)
    assert shard.seed != campaign.shard_seed(2, 5)


def test_a_campaign_reports_what_it_was_asked_and_the_models_laws(inline):
    from numeric.laws import ATTENTION_LAWS, LAWS
    result = campaign.run_campaign(60.0, seed=7, progress=False, max_shards=1)
    assert (result.seed, result.budget, result.targeted, result.examples) == (7, 60.0, True, 40)
    assert not result.interrupted and [r.law for r in result.rows] == [x.name for x in LAWS]
    heads = campaign.run_campaign(60.0, progress=False, max_shards=1,
                                  limits={"model": "multi-head"})
    assert [r.law for r in heads.rows] == [x.name for x in ATTENTION_LAWS]


def test_a_campaign_result_is_targeted_unless_told():
    assert campaign.CampaignResult(0, 1.0, 1.0, [], []).targeted


def test_a_shard_may_run_examples_up_to_its_deadline(monkeypatch):
    monkeypatch.setattr(campaign, "time", SimpleNamespace(time=lambda: 1000.0,
                                                          perf_counter=time.perf_counter))
    result = campaign.run_shard(campaign.Shard(0, 0, 1, 1000.0, limits=(("max_sentences", 3),)))
    assert not result.stopped and result.results


@pytest.mark.parametrize("streamed, counted", [(True, 0), (False, 1)])
def test_a_streamed_progress_bar_does_not_count_a_shards_trajectories_twice(streamed,
                                                                              counted):
    bar = campaign._ProgressBar(10.0, enabled=False, streamed=streamed)
    done = campaign.TrajectoryResult(campaign.Config(seed=0), "ok")
    bar.shard(campaign.ShardResult(0, 0, results=[done]))
    assert bar.n == counted


def test_a_case_whose_scores_cannot_move_runs_to_its_default_horizon_of_200():
    """Keys at 0 and only the query trained: no score moves, so only the horizon ends it."""
    config = campaign.Config(seed=0, trainable=("query",))
    assert config.horizon == 200.0
    assert campaign.integrate_case(config).time[-1] == 200.0


def test_the_attention_memory_holds_eight_buffers_per_token_of_score_row_width_and_d(
        monkeypatch):
    for name in ("BYTES_PER_TOKEN", "BYTES_PER_PARAMETER"):
        monkeypatch.setattr(campaign, name, 0)
    config = _attention(n_sentences=3, m=4, d=7, heads=2, d_head=5)
    tokens, length, width = 3 * 5, 5, 2 * 5
    assert config.cost()[1] == 8 * 8 * tokens * (length * 2 + width + 7)


def test_a_campaign_whose_budget_is_spent_at_its_first_look_starts_no_shard(inline,
                                                                           monkeypatch):
    monkeypatch.setattr(campaign, "time", _Clock(100.0, 160.0))
    result = campaign.run_campaign(60.0, progress=False, max_shards=3)
    assert inline[0].submitted == [] and result.shards == []


def test_ctrl_c_while_shards_run_keeps_what_they_hand_in(monkeypatch):
    """The interrupt reaches the campaign while it waits; the running shards are stopped and
    their results still collected."""
    import numeric.executors

    class Interrupted(_Inline):
        interrupts = 1

        def wait(self, pending, timeout):
            if self.interrupts:
                self.interrupts -= 1
                raise KeyboardInterrupt
            return super().wait(pending, timeout)
    monkeypatch.setattr(numeric.executors, "LocalProcesses", Interrupted)
    result = campaign.run_campaign(60.0, progress=False, workers=2, max_shards=2)
    assert result.interrupted and [s.index for s in result.shards] == [0, 1]


def test_a_shard_stops_searching_at_its_first_violation(monkeypatch):
    """Hypothesis's first example is already the smallest: it violates, and is the only
    trajectory run (no further search for other bugs before the shrink)."""
    from numeric.laws import LawReport

    def violating(config, deadline=None, stopped=None):
        report = LawReport("FC", "", (), 1.0, 0.0, 2.0, 1.0, "x", 1e-9, 1e-9)
        return campaign.TrajectoryResult(config, "ok", [report])
    monkeypatch.setattr(campaign, "run_trajectory", violating)
    out = campaign.run_shard(campaign.Shard(0, 0, 40, time.time() + 60.0, targeted=False))
    assert out.shrunk and out.violation is not None and len(out.results) == 1


def test_a_case_text_reads_back_as_the_same_case():
    config = campaign.Config(seed=3, horizon=100.0, query_scale=0.5, ragged=True, m=4,
                             trainable=("query", "keys"), classifier="mlp")
    back = campaign.Config.from_text(config.to_text())
    assert back == config and isinstance(back.horizon, float)


def test_a_run_past_its_deadline_or_told_to_stop_is_out_of_budget():
    config = campaign.Config(seed=0, horizon=5.0)
    with pytest.raises(campaign.OutOfBudget):
        campaign.integrate_case(config, deadline=time.time() - 1.0)
    with pytest.raises(campaign.OutOfBudget):
        campaign.integrate_case(config, stopped=lambda: True)
    assert len(campaign.integrate_case(config, stopped=lambda: False)) > 1


def test_an_attention_evaluation_has_four_times_the_papers_fixed_cost(monkeypatch):
    _priced_only(monkeypatch, "fixed")
    paper = campaign.Config(seed=0).cost()[0]
    assert paper == campaign.MAX_EVALUATIONS
    assert _attention().cost()[0] == 4 * paper


def test_an_mlp_cases_hidden_biases_lie_away_from_zero_on_both_sides():
    import numpy as np
    bias = campaign.build(campaign.Config(seed=0, classifier="mlp", hidden=40)).params[
        "hidden_bias"]
    assert (bias > 0).any() and (bias < 0).any()
    assert ((np.abs(bias) >= 0.5) & (np.abs(bias) <= 2.0)).all()


def test_a_shards_database_forgets_what_it_deletes_and_logs_it():
    db = campaign._recording_database(((b"key", (b"kept", b"gone")),))
    db.delete(b"key", b"gone")
    assert set(db.fetch(b"key")) == {b"kept"}
    assert db.log == [("delete", b"key", b"gone")]


@pytest.mark.parametrize("name, value", [("query_scale", -1.0), ("embedding_scale", -0.1),
                                         ("horizon", 0.0), ("key_scale", -0.5)])
def test_a_scale_or_horizon_of_the_wrong_sign_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"Config.{name} must be a finite number"):
        campaign.Config(seed=0, **{name: value})
    assert campaign.Config(seed=0, key_scale=0.0).key_scale == 0.0   # keys may start at 0


def test_a_campaign_without_a_negative_control_reports_none_and_with_one_names_it():
    assert campaign.CampaignResult(0, 1.0, 1.0, [], []).to_dict()["negative_control"] is None
    fault = campaign.WrongSign("keys", (0, 1))
    result = campaign.CampaignResult(0, 1.0, 1.0, [], [], fault=fault)
    assert result.to_dict()["negative_control"] == str(fault)


@pytest.mark.parametrize("stop_at_violation, shrunk, submitted, stops", [
    (True, True, [0], 1), (False, True, [0, 1], 0), (True, False, [0], 0)])
def test_a_shrunk_violation_stops_the_running_shards_only_when_asked(
        monkeypatch, stop_at_violation, shrunk, submitted, stops):
    """A violation not yet shrunk starts no new shard, but leaves the running ones alone."""
    import numeric.executors
    made = []

    class Violating(_Inline):
        stops = 0

        def __init__(self, workers=None):
            super().__init__(workers)
            made.append(self)

        def result(self, shard):
            self.running -= 1
            violation = campaign.TrajectoryResult(campaign.Config(seed=0), "ok")
            return campaign.ShardResult(shard.index, shard.seed, violation=violation,
                                        shrunk=shrunk, found_at=time.time(),
                                        finished=time.time())

        def stop(self):
            self.stops += 1
    monkeypatch.setattr(numeric.executors, "LocalProcesses", Violating)
    campaign.run_campaign(60.0, progress=False, max_shards=2,
                          stop_at_violation=stop_at_violation)
    assert [s.index for s in made[0].submitted] == submitted and made[0].stops == stops


def test_a_campaign_of_one_worker_one_example_and_one_shard_from_seed_0_is_accepted():
    campaign._check_campaign_arguments(60.0, 0, 1, 1, 1)
    campaign._check_campaign_arguments(0.5, 0, None, 1, None)   # half a second will do
    for args in [(60.0, -1, 1, 1, 1), (60.0, 0, 0, 1, 1), (60.0, 0, 1, 0, 1),
                 (60.0, 0, 1, 1, 0)]:
        with pytest.raises(ValueError, match="must be an integer >= "):
            campaign._check_campaign_arguments(*args)


@pytest.mark.parametrize("kw, named", [({"heads": 2}, "heads"), ({"d_head": 3}, "d_head")])
def test_a_paper_case_with_an_attention_size_is_refused_by_name(kw, named):
    with pytest.raises(ValueError, match=f"Config.{named} belongs to the self-attention"):
        campaign.Config(seed=0, **kw)


@pytest.mark.parametrize("kw, named", [({"d_key": 3}, "d_key"), ({"classifier": "mlp"},
                                                                 "classifier")])
def test_an_attention_case_with_a_paper_field_is_refused_by_name(kw, named):
    with pytest.raises(ValueError, match=f"Config.{named} belongs to the paper's model"):
        _attention(**kw)


def test_the_attention_time_estimate_prices_ten_projections_and_ten_score_products(
        monkeypatch):
    """Per evaluation: 10·(tokens·width·d + tokens·length·width) products."""
    _priced_only(monkeypatch, "products")
    config = _attention(n_sentences=3, m=4, d=7, heads=2, d_head=5)
    tokens, length, width = 3 * 5, 5, 2 * 5
    assert config.cost()[0] == campaign.MAX_EVALUATIONS * 10 * (
        tokens * width * 7 + tokens * length * width)


def test_a_campaign_hands_hypothesiss_secondary_and_pareto_examples_to_its_first_shard(
        inline):
    """Hypothesis keeps examples under its key and the key's ".secondary" and ".pareto"."""
    from hypothesis.database import InMemoryExampleDatabase
    db = InMemoryExampleDatabase()
    for suffix in (b"", b".secondary", b".pareto"):
        db.save(campaign.DATABASE_KEY + suffix, b"example" + suffix)
    campaign.run_campaign(60.0, progress=False, max_shards=2, workers=2, database=db)
    first, second = inline[0].submitted
    assert dict(first.stored) == {
        campaign.DATABASE_KEY + s: (b"example" + s,) for s in (b"", b".secondary", b".pareto")}
    assert second.stored == ()


#: ``random_config`` of seeds 0–3 as written when it was the campaign's sampler.
_RANDOM_CONFIGS = [
    "seed=0,n_classes=4,topics_per_class=3,m=13,n_nontopic=10,n_sentences=59,d=6,"
    "d_key=6,classifier=mlp,hidden=3,trainable=keys+embeddings+classifier,a2=no,"
    "ragged=yes,query_scale=2.2772162623358883,key_scale=0.011672695343339111,"
    "embedding_scale=0.023874411690960787,horizon=224.54905991317239",
    "seed=1,n_classes=5,topics_per_class=2,m=7,n_nontopic=13,n_sentences=17,d=4,"
    "d_key=6,classifier=mlp,hidden=1,trainable=embeddings+keys,"
    "query_scale=0.6756654570888586,embedding_scale=6.594304172115029e-05,"
    "horizon=807.2271845269056",
    "seed=2,n_classes=5,topics_per_class=3,m=25,n_sentences=53,d=1,d_key=5,"
    "trainable=query+keys+classifier,query_scale=0.8563095564728983,"
    "key_scale=0.21806933396881925,embedding_scale=0.00034411851462842074,"
    "horizon=1846.5828533266654",
    "seed=3,n_classes=3,topics_per_class=2,m=16,n_nontopic=8,n_sentences=17,d_key=6,"
    "classifier=mlp,hidden=1,trainable=embeddings+keys,"
    "query_scale=0.8523697341078864,embedding_scale=0.0267317089373902,"
    "horizon=8175.880020962225",
]


def test_an_old_reports_configuration_seed_reruns_the_same_configuration():
    """``random_config`` is kept so that the seeds old reports name rerun: each seed's
    configuration must stay the one it was."""
    for seed, text in enumerate(_RANDOM_CONFIGS):
        got = dataclasses.asdict(campaign.random_config(seed))
        want = dataclasses.asdict(campaign.Config.from_text(text))
        assert got.keys() == want.keys()
        for name, value in want.items():   # floats to a rounding of the platform's pow
            assert got[name] == (pytest.approx(value, rel=1e-13)
                                 if isinstance(value, float) else value), name


def test_a_negative_control_on_the_first_non_topic_word_of_an_a2_case_is_refused():
    """Words from n_words − n_nontopic on are non-topic, held fixed under A2; the word just
    before is a topic word and can be patched."""
    config = campaign.Config(seed=0)
    first = config.n_words - config.n_nontopic
    with pytest.raises(ValueError, match=f"word {first} is a non-topic word"):
        campaign.WrongSign("embeddings", (first, 0)).check_reaches(config)
    campaign.WrongSign("embeddings", (first - 1, 0)).check_reaches(config)


def test_a_case_training_an_unknown_parameter_is_refused_by_name():
    with pytest.raises(ValueError, match="Config.trainable must be distinct names among"):
        campaign.Config(seed=0, trainable=("keys", "bogus"))

"""The conjecture syntax and the case functions its proofs rest on: behaviours no other test
pinned down, each failing under a realistic one-line bug (``tests/mutation.py``)."""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp

from symbolic import grammar as G
from symbolic import model as M


@pytest.mark.parametrize("text, found", [("V[w,k] * 1_000", "'1_' at column 10"),
                                         ("V[w,k] // 2", "'//' at column 8"),
                                         ("2 // V[w,k]", "'//' at column 3")])
def test_a_refusal_names_what_was_found_and_its_column(text, found):
    with pytest.raises(G.GrammarError) as err:
        G.read(text, M.Model("linear"))
    assert str(err.value).startswith(found + ":")


def test_every_case_function_of_the_declared_assumptions_is_exact_on_its_battery():
    """The audit's ``cases-exact`` theorem: each case's hypothesis, function and battery
    belong together (a hypothesis or battery given in the wrong place fails a step)."""
    from proofs import theorems_cases
    from proofs.kernel import check_theorem

    (theorem,) = theorems_cases.theorems()
    outcome = check_theorem(theorem)
    assert outcome.ok and len(outcome.steps) == len(theorems_cases.CASES)


def test_sen_is_proved_by_the_reduction_alone_with_its_lemma_attention():
    """The reduction's lemma attention has L = m + 1 tokens: SEN with coefficient 1/m is
    proved without the kernel, and with 1/(m + 1) it is not."""
    from proofs.conjecture import prove_along

    trained, assume = ("embeddings", "keys", "classifier"), ("A1", "A2", "A3")
    sen = "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w]-c)/{})/QQ"
    right = prove_along(sen.format("m"), "linear", trained, assume)
    assert right.proved and right.method == "conjecture reduction"
    assert not prove_along(sen.format("(m+1)"), "linear", trained, assume).proved


def test_discover_s_explanation_proves_what_trains_and_skips_the_across_law_when_u_trains():
    from types import SimpleNamespace

    from proofs import conjecture
    from symbolic.discover import Setting

    only_u = conjecture.explain(Setting("linear", trainable=("classifier",)),
                                SimpleNamespace(laws=[], symbols=[]))
    assert [name for name, _, _ in only_u.proved] == ["classifier-sum"]
    assert conjecture._across_classifier(Setting("linear", trainable=("embeddings",
                                                                      "classifier")), None) is None


@pytest.mark.parametrize("name", ["relu-unit", "embedding-across-classifier"])
def test_the_conservation_theorem_of_a_law_with_a_lemma_holds_step_by_step(name):
    """The lemma steps (relu, rows-persist) are checked and feed the rate."""
    from proofs.conservation import conservation_theorem
    from proofs.kernel import PASSED, check_theorem
    from symbolic import laws as SL

    outcome = check_theorem(conservation_theorem(SL.law(name)))
    assert outcome.ok and all(s.status == PASSED for s in outcome.steps)
    assert {"relu", "rows-persist"} & {s.step.name for s in outcome.steps}


def test_a_sum_counts_the_terms_of_what_it_sums():
    with pytest.raises(G.GrammarError, match="81 terms; at most 64"):
        G.read("Sum((V[w,k] + 1)^8 * (V[w,k] + 2)^8, (k,0,d-1))", M.Model("linear"))


def test_a_sum_over_an_index_read_by_a_function_is_not_summed_to_one():
    """``Σ_i log a_i`` and ``Σ_i e^{s_i}`` stay (only ``Σ a_i``, ``Σ P_c``, ``Σ Y_c`` and
    ``Σ q_r²`` go)."""
    from proofs.conjecture import sums_to_one
    from proofs.derivations import i
    from symbolic.indexform import IExpr
    from symbolic.model import FOLDS, L, a, s
    used = set()
    for total in (sp.Sum(sp.log(a[i]), (i, 0, L - 1)), sp.Sum(sp.exp(s[i]), (i, 0, L - 1))):
        assert sums_to_one(IExpr.from_sympy(total, FOLDS), used).to_sympy() == total
    assert not used
    assert sums_to_one(IExpr.from_sympy(sp.Sum(a[i], (i, 0, L - 1)), FOLDS),
                       used).to_sympy() == 1 and used == {"softmax"}


def test_a_case_of_n_that_moves_a_beta_already_in_the_rate_fails_its_battery(monkeypatch):
    """The battery reads the directions as the law does, ``Σ_k Π[l,k] U[c,k] − β_l``: a case
    function that changes a β it was given (not only the one it sums into) is caught."""
    from proofs import theorems_cases
    from proofs.kernel import check_theorem
    from symbolic import laws as SL

    label = "Π U_c = β"
    real = SL.ACROSS.cases[label]

    def moves_beta(expr, model=None):
        return real(expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == SL.beta,
                                 lambda x: x + 1), model)
    monkeypatch.setitem(SL.ACROSS.cases, label, moves_beta)
    (theorem,) = theorems_cases.theorems()
    failed = [s.step.name for s in check_theorem(theorem).steps if not s.ok]
    assert failed == ["N-rows"]


def test_a_counterexample_trajectory_counts_its_accepted_steps_not_its_snapshots(monkeypatch):
    """Five snapshots are four accepted steps; the accuracy is that of four steps."""
    from types import SimpleNamespace

    import numpy as np

    from numeric import campaign
    from proofs.counterexample import drift_on
    class Snapshots(SimpleNamespace):
        def __len__(self):
            return len(self.time)
    traj = Snapshots(time=np.array([0.0, 1.0, 2.0, 2.5, 3.0]))
    monkeypatch.setattr(campaign, "integrate_case", lambda config: traj)
    seen = []
    judge = SimpleNamespace(check=lambda t, accuracy, movement: seen.append(accuracy) or "r")
    drift = drift_on(judge, config=None)
    assert (drift.steps, drift.end, drift.report) == (4, 3.0, "r")
    assert drift.accuracy == seen[0] == campaign.adaptive_tolerance(4)


def test_the_relu_unit_law_is_proved_by_the_reduction_with_its_lemma():
    """The MLP's reduction writes ``o_n = H(u_n) u_n`` (lemma relu): relu-unit reduces to 0,
    and with twice the hidden weights it does not."""
    from proofs.conjecture import prove
    law = "Sum(W2[e,n]**2,(e,0,C-1)) - {}*Sum(W1[n,k]**2,(k,0,d-1)) - b1[n]**2"
    assert prove(law.format(1), "mlp", ("classifier",), search=False, kernel=False).proved
    assert not prove(law.format(2), "mlp", ("classifier",), search=False,
                     kernel=False).proved


def test_prove_searches_forty_trajectories_by_default(monkeypatch):
    from proofs import conjecture
    asked = []
    monkeypatch.setattr(conjecture, "_search", lambda verdict, classifier, names, n:
                        asked.append(n))
    conjecture.prove("V[w,k]", kernel=False)
    assert asked == [40]


def test_the_directions_across_the_classifier_are_orthogonal_to_every_class_difference():
    """U's rows e₀, e₁, e₂: the differences U_c − U_0 leave one direction, (1, 1, 1)."""
    from fractions import Fraction
    from types import SimpleNamespace

    from proofs.conjecture import _directions_across
    values = {("classifier", (c, k)): Fraction(int(c == k)) for c in range(3) for k in range(3)}
    directions = _directions_across(SimpleNamespace(d=3, classes=3),
                                    SimpleNamespace(frozen_values=values))
    assert len(directions) == 1 and len(set(directions[0])) == 1 and directions[0][0] != 0


@pytest.mark.parametrize("closed_form, ok", [(lambda e, z: e / z, True),
                                             (lambda e, z: e * z, False)],
                         ids=["softmax", "times Z"])
def test_a2_s_battery_holds_the_attention_as_the_softmax_of_its_scores(monkeypatch,
                                                                       closed_form, ok):
    """Where A2 holds, the battery's attention is ``a_i = e^{s_i}/Z_s``: a case function that
    also writes ``a_i`` in closed form passes exactly when the closed form is the softmax."""
    from proofs import theorems_cases
    from proofs.kernel import check_theorem
    from symbolic import laws as SL
    from symbolic.model import Z_s, a, s

    real = SL.A2.cases["A2"]

    def with_attention(expr, model=None):
        return real(expr, model).replace(
            lambda x: isinstance(x, sp.Indexed) and x.base == a,
            lambda x: closed_form(sp.exp(s[x.indices[0]]), Z_s))
    monkeypatch.setitem(SL.A2.cases, "A2", with_attention)
    (theorem,) = theorems_cases.theorems()
    failed = [o.step.name for o in check_theorem(theorem).steps if not o.ok]
    assert failed == ([] if ok else ["A2"])


def test_a_search_integrates_at_most_150_trajectories_and_reports_its_own_time(monkeypatch):
    """The cap is a count (the same search every run); the time is the search's own."""
    import math
    import time
    from types import SimpleNamespace

    from proofs import counterexample as CE
    from symbolic import laws as SL
    monkeypatch.setattr(CE, "numeric_law", lambda law, classifier, assume: None)
    monkeypatch.setattr(CE, "drift_on", lambda judge, config: CE.Drift(
        config, SimpleNamespace(applicable=False, usage=math.nan, verdict="not applicable")))
    start = time.perf_counter()
    result = CE.search(SL.SEN, "linear", ("embeddings", "keys"), max_examples=1000)
    elapsed = time.perf_counter() - start
    assert result.trajectories == 150 and result.found is None
    assert 0 < result.seconds <= elapsed


def test_a_candidate_reads_the_runs_sizes_off_its_arrays_and_data():
    """``d``, ``d_key`` as numbers in a candidate: the embeddings' and keys' widths."""
    from types import SimpleNamespace

    import numpy as np

    from proofs.counterexample import _sizes
    traj = SimpleNamespace(params={"embeddings": np.zeros((1, 5, 3)),
                                   "keys": np.zeros((1, 5, 2))},
                           data=SimpleNamespace(n_words=5, n_classes=4),
                           spec=SimpleNamespace(hidden=6))
    read = {str(size): how(traj) for size, (_, how) in _sizes().items()}
    assert read == {"W": 5, "d": 3, "d_key": 2, "C": 4, "H": 6}


def test_the_hidden_embedding_law_is_proved_by_the_reduction_with_h_written_out():
    """``h`` read at ``k`` and at ``l`` in the rate is written by its definition at each
    index: W1ᵀW1 − Σ_w v_w v_wᵀ reduces to 0 (a wrong coefficient on the MLP's reduction
    is the relu-unit test's control)."""
    from proofs.conjecture import prove
    law = "Sum(W1[n,k]*W1[n,l],(n,0,H-1)) - Sum(V[w,k]*V[w,l],(w,0,W-1))"
    assert prove(law, "mlp", ("embeddings", "classifier"), search=False, kernel=False).proved


def test_the_search_draws_up_to_twelve_sentences_six_non_topic_words_and_widths_of_four():
    """The search's size bounds, each reached and none exceeded in fifty drawn cases (a
    counterexample stays small)."""
    from hypothesis import Phase, find, settings
    from hypothesis.errors import NoSuchExample

    from proofs.counterexample import strategy
    drawn = []

    def keep(config):
        drawn.append(config)
        return False
    with pytest.raises(NoSuchExample):
        find(strategy("linear", ("embeddings", "keys"), ()), keep,
             settings=settings(database=None, derandomize=True, max_examples=50,
                               phases=[Phase.generate]))
    assert len(drawn) == 50
    assert max(c.n_sentences for c in drawn) == 12 and max(c.m for c in drawn) == 6
    assert max(max(c.d, c.d_key) for c in drawn) == 4


def test_a_drift_and_the_evaluators_it_was_judged_by_are_read_only():
    """What a search returns is the record of what was judged: it cannot be altered."""
    import dataclasses

    from proofs.counterexample import Drift, Evaluators
    with pytest.raises(dataclasses.FrozenInstanceError):
        Drift(config=None, report=None).report = "holds"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Evaluators(None, "", None, None, None).source = "other"


def test_a_conjecture_proved_without_the_kernel_has_no_certificate_file(tmp_path):
    """The certificate is the kernel's: a verdict it did not re-check is refused by name,
    before anything is written."""
    from types import SimpleNamespace

    from proofs.conjecture import write_certificate
    reduced = SimpleNamespace(kernel=None, proved=True, status="PROVED")
    with pytest.raises(ValueError, match="no certificate: proved by the conjecture "
                                         "reduction only"):
        write_certificate(reduced, tmp_path / "certificate.json")
    assert not (tmp_path / "certificate.json").exists()


def test_a_found_law_that_is_a_product_of_proved_linear_laws_is_explained():
    """Only the classifier trains: Σ_e U[e,k] is proved for each k, so the product
    (Σ_e U[e,0])·(Σ_e U[e,1]) is conserved and explained; U[0,0]·U[1,1] is not."""
    from types import SimpleNamespace

    from proofs import conjecture
    from symbolic.discover import Setting, coordinate_symbol
    setting = Setting("linear", trainable=("classifier",))
    symbols = [coordinate_symbol(*c) for c in setting.coordinates[:setting.n_trained]]
    U = {c: coordinate_symbol("classifier", c) for c in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    product = sp.expand((U[0, 0] + U[1, 0]) * (U[0, 1] + U[1, 1]))
    other = U[0, 0] * U[1, 1]
    out = conjecture.explain(setting, SimpleNamespace(laws=[product, other], symbols=symbols))
    assert out.explained == [product] and out.unexplained == [other]


def test_a2_s_battery_holds_a_score_inside_a_longer_exponent(monkeypatch):
    """SEN's rate reads ``e^{s_p − c}``: a case function that takes the exponential of any
    expression in a score for that of the score alone fails the A2 step."""
    from proofs import theorems_cases
    from proofs.kernel import check_theorem
    from symbolic import laws as SL
    from symbolic.model import s

    real = SL.A2.cases["A2"]

    def scores(x):
        return sorted((y for y in x.args[0].atoms(sp.Indexed) if y.base == s), key=str)

    def exponent_read_as_its_score(expr, model=None):
        return real(expr.replace(
            lambda x: isinstance(x, sp.exp) and not isinstance(x.args[0], sp.Indexed)
            and bool(scores(x)), lambda x: sp.exp(scores(x)[0])), model)
    monkeypatch.setitem(SL.A2.cases, "A2", exponent_read_as_its_score)
    (theorem,) = theorems_cases.theorems()
    assert [o.step.name for o in check_theorem(theorem).steps if not o.ok] == ["A2"]


@pytest.mark.parametrize("query", ["trained", "frozen"])
@pytest.mark.parametrize("classifier", ["linear", "mlp"])
def test_only_key_across_query_waits_for_the_query_frozen(monkeypatch, classifier, query):
    """discover's generic candidates with every array training: each is put to the reduction
    as it stands (all hold with the query moving), but key-across-query, which is tried
    only with the query frozen (under A1)."""
    from types import SimpleNamespace

    from proofs import conjecture
    asked = {}

    def prove_along(expression, classifier, names, assume):
        asked[expression] = assume
        return SimpleNamespace(proved=False)
    monkeypatch.setattr(conjecture, "prove_along", prove_along)
    monkeypatch.setattr("symbolic.discover.fields_at", lambda setting, seed: (None, None))
    monkeypatch.setattr(conjecture, "_across_classifier", lambda setting, fields: None)
    arrays = {"linear": ("classifier",), "mlp": ("hidden_weight", "hidden_bias",
                                                 "output_weight", "output_bias")}[classifier]
    trained = ("embeddings", "keys", *arrays) + (("query",) if query == "trained" else ())
    conjecture.explain(SimpleNamespace(trained=trained, classifier=classifier),
                       SimpleNamespace(laws=[], symbols=[]))
    names = {expression: name for name, expression, _, _ in conjecture.GENERIC}
    own = {"linear": ["classifier-embedding", "classifier-sum"],
           "mlp": ["hidden-embedding", "relu-unit", "output-weight-sum", "output-bias-sum"]}
    expected = ["query-key", "key-sum", *own[classifier]] + (
        [] if query == "trained" else ["key-across-query"])
    assert sorted(names[e] for e in asked) == sorted(expected)
    assert all(assume == (("A1",) if names[e] == "key-across-query" else ())
               for e, assume in asked.items())


def test_the_kernel_reads_the_assumptions_in_the_order_the_sen_declaration_applies_them():
    """A1, T, A3, A2, then any other assumption (one-hot) in its declared place."""
    from types import SimpleNamespace

    from proofs import conjecture
    from symbolic import laws as SL
    law = SL.law("relu-unit")
    named = [SimpleNamespace(name=n) for n in ("one-hot", "A2", "T", "A3", "A1", "B")]
    out = conjecture.kernel_law(dataclasses.replace(law, assumptions=tuple(named)), "mlp", ())
    assert [x.name for x in out.assumptions] == ["A1", "T", "A3", "A2", "one-hot", "B"]
    assert (out.lemmas, out.expand, out.normaliser) == (("relu",), ("u", "h"), "canonical")
    under_a2 = conjecture.kernel_law(law, "linear", ("A2",))
    assert (under_a2.lemmas, under_a2.expand, under_a2.normaliser) == (
        ("attention",), (), "canonical-cancel")


@pytest.mark.parametrize("status, code", [("PROVED", 0), ("REFUTED", 1), ("NOT PROVED", 3),
                                          ("TRIVIAL", 3)])
def test_a_verdicts_exit_code_is_never_the_bad_input_code(status, code):
    """0 proved, 1 refuted, 3 neither; 2 stays the code of bad input."""
    from types import SimpleNamespace

    from proofs.conjecture import Verdict
    assert Verdict.exit_code.fget(SimpleNamespace(status=status)) == code


def test_the_smallest_drift_lowers_only_the_sizes_above_their_minimum():
    """A drift at d = 3 (every other size at its minimum) that still drifts at d = 1 with data
    seed 2: the last pass tries d = 1 with seeds 0, 1, 2 and nothing else."""
    from types import SimpleNamespace

    from numeric.strategies import SMALLEST
    from proofs.counterexample import _to_smallest_sizes
    Config = dataclasses.make_dataclass("Config", ["seed", *SMALLEST])
    tried = []

    def drift(config):
        tried.append(config)
        return SimpleNamespace(config=config, drifts=config.seed == 2)
    start = Config(seed=5, **{**SMALLEST, "d": 3})
    out = _to_smallest_sizes(SimpleNamespace(config=start, drifts=True), drift)
    assert tried == [dataclasses.replace(start, d=1, seed=s) for s in range(3)]
    assert out.config == dataclasses.replace(start, d=1, seed=2)


def test_a_squared_query_summed_with_another_factor_is_not_its_norm():
    """``Σ_r q_r² K[i, r]`` stays a sum; ``Σ_r q_r²`` alone is ``‖q‖²``."""
    from proofs.conjecture import sums_to_one
    from symbolic import laws as LW
    from symbolic.indexform import IExpr
    from symbolic.model import FOLDS, K, d_key, i, q, r
    weighted = sp.Sum(q[r] ** 2 * K[i, r], (r, 0, d_key - 1))
    assert sums_to_one(IExpr.from_sympy(weighted, FOLDS)).to_sympy() == weighted
    assert sums_to_one(IExpr.from_sympy(sp.Sum(q[r] ** 2, (r, 0, d_key - 1)),
                                        FOLDS)).to_sympy() == LW.QQ


def test_two_free_word_indices_are_refused_only_under_a_topic_assumption():
    """A2/A3 speak of one topic word: a candidate with words ``w`` and ``w_x`` is refused
    under them, and left to the proof without them."""
    from proofs.conjecture import _check_one_topic_word
    from symbolic import laws as LW
    from symbolic.model import V, k
    second = LW.WORD.index(1)
    quantity = V[LW.w, k] * V[second, k]
    assert _check_one_topic_word(quantity, ("A1",)) is None
    with pytest.raises(ValueError, match="one topic word"):
        _check_one_topic_word(quantity, ("A2",))


def test_a_case_on_another_model_than_the_papers_is_checked_on_its_own_reads_only():
    """The one-hot case of the self-attention family: its battery is its own reads (the
    paper's common inputs hold none of that model's arrays)."""
    from proofs.theorems_cases import CASES, battery
    (case,) = [c for c in CASES if c.model.name != "paper"]
    assert battery(case) == case.extra()


@pytest.mark.parametrize("usage, word", [(0.5, "≤"), (1.0, "≤"), (1.5, ">")])
def test_a_drifts_figures_compare_it_with_its_allowance(usage, word):
    """Within the allowance (usage ≤ 1) the figures say ``≤``, beyond it ``>``."""
    from types import SimpleNamespace

    from proofs.counterexample import Drift
    report = SimpleNamespace(absolute_drift=2.0, usage=usage, worst="Q[0]", drift=0.1,
                             allowed=0.2, conditions=())
    drift = Drift(SimpleNamespace(to_text=lambda: "stand-in"), report, 10, 1e-9, 1.0)
    assert f"|ΔQ| = 2.0 {word} allowance δ·movement + δ·σ = {2.0 / usage!r}" in \
        drift.figures()[1]


def test_the_across_classifier_law_is_listed_as_proved_and_explains_its_instances(
        monkeypatch):
    """Where embedding-across-classifier applies, its outcome is listed with the proved laws
    and a found law among its instances is explained."""
    from fractions import Fraction
    from types import SimpleNamespace

    from proofs import conjecture
    monkeypatch.setattr(conjecture, "prove_along",
                        lambda expression, classifier, names, assume:
                        SimpleNamespace(proved=False))
    monkeypatch.setattr("symbolic.discover.fields_at", lambda setting, seed: (None, None))
    across = ("embedding-across-classifier", "V·U", "outcome")
    monkeypatch.setattr(conjecture, "_across_classifier",
                        lambda setting, fields: (across, [{(0,): Fraction(1)}]))
    x = sp.Symbol("x")
    out = conjecture.explain(SimpleNamespace(trained=("embeddings",), classifier="linear"),
                             SimpleNamespace(laws=[x], symbols=[x]))
    assert out.proved == [across] and out.explained == [x]

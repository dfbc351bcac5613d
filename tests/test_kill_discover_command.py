"""``attnflow discover``'s own logic, without the count: option parsing, the completeness
statement, and how the closed forms' outcome becomes the printed lines, the JSON entries and
the exit status. The expensive parts (the count, the closed forms, the reduction) are
stand-ins, so each combination of outcomes is cheap to reach."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

import proofs.conjecture
import symbolic.discover
from attnflow.commands import discover as D

# --- options ----------------------------------------------------------------------------------

def test_sizes_are_read_with_spaces_around_names_and_values():
    assert D.parse_sizes(" d = 3 ,words=4") == {"d": 3, "words": 4}


@pytest.mark.parametrize("text, named", [("d", "'d'"), ("d=", "'d='"), ("d=x", "'d=x'"),
                                         ("d=-1", "'d=-1'"), ("d=2.5", "'d=2.5'")])
def test_a_size_that_is_not_name_equals_whole_number_is_refused_by_name(text, named):
    with pytest.raises(ValueError, match=f"bad item {named}"):
        D.parse_sizes(text)


def test_a_size_given_twice_is_refused():
    with pytest.raises(ValueError, match="d is given twice"):
        D.parse_sizes("d=2, d =3")


def test_constants_are_read_as_exact_fractions():
    assert D.parse_constants("tau=3/4, b = 2") == {"tau": Fraction(3, 4), "b": Fraction(2)}


@pytest.mark.parametrize("text", ["tau", "tau=", "tau=1/0", "tau=x", "tau=-1", "tau=0.5"])
def test_a_constant_that_is_not_a_positive_fraction_is_refused_by_name(text):
    with pytest.raises(ValueError, match="tau"):
        D.parse_constants(text)


def test_a_zero_constant_is_refused_as_not_positive():
    with pytest.raises(ValueError, match="tau must be positive, not 0"):
        D.parse_constants("tau=0/3")


def test_a_constant_given_twice_is_refused():
    with pytest.raises(ValueError, match="tau is given twice"):
        D.parse_constants("tau=1,tau=2")


# --- the completeness statement ---------------------------------------------------------------

@pytest.mark.parametrize("laws, declared, start, complete", [
    (0, 0, "no law holds at these sizes, and none is declared", True),
    (1, 1, "this declared law is the only law at these sizes", True),
    (2, 2, "these 2 declared laws are all the laws at these sizes", True),
    (3, 1, "2 of the 3 laws are not among the declared ones (1 declared", False),
    (1, 2, "the declared laws give 2 independent conserved quantities against 1 counted",
     False),
])
def test_the_statement_claims_completeness_only_when_the_declared_rank_is_the_count(
        laws, declared, start, complete):
    text, ok = D._statement(laws, declared, "the catalogue")
    assert text.startswith(start) and ok is complete


# --- the paper's closed forms: printed lines, JSON entries, exit status ------------------------

def _closed_forms(monkeypatch, capsys, *, counted=2, unexplained=(), rejected=(),
                  names=("key-sum", "a-new-law")):
    """Run ``_closed_forms`` on stand-ins: ``len(names)`` laws found and proved under those
    declaration names, plus ``unexplained`` found but not proved."""
    explained = [f"law{k}" for k in range(len(names))]
    found = SimpleNamespace(laws=explained + list(unexplained), rejected=list(rejected),
                            independent=len(explained) + len(unexplained),
                            worst_residual=1e-50, singular_gap=40.0, symbols=())
    why = SimpleNamespace(proved=[(n, f"Q_{n}", None) for n in names], explained=explained,
                          unexplained=list(unexplained))
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    setting = SimpleNamespace(loss="cross_entropy")
    # the stand-in explains only what it is asked about: this setting's closed forms
    monkeypatch.setattr(proofs.conjecture, "explain",
                        lambda s, f: why if (s, f) == (setting, found) else None)
    monkeypatch.setattr(D, "_independent", lambda f, laws: len(laws))
    monkeypatch.setattr(D, "_paper_names", lambda setting, f, w: list(names))
    report = {}
    ok = D._closed_forms(setting, SimpleNamespace(laws=counted), report)
    return ok, capsys.readouterr().out, report


def test_closed_forms_all_proved_and_counted_pass_and_are_reported_as_declared(
        monkeypatch, capsys):
    ok, out, report = _closed_forms(monkeypatch, capsys)
    assert ok is True
    assert "2 found in closed form" in out and "2 proved" in out
    assert [e["proof"] for e in report["laws"]] == ["PROVED", "PROVED"]
    assert [e["declared"] for e in report["laws"]] == [True, True]
    assert [e["name"] for e in report["laws"]] == ["key-sum", "a-new-law"]
    assert report["declared"][0] == {"name": "key-sum", "quantity": "Q_key-sum",
                                     "status": "PROVED", "holds": True}


def test_only_a_declaration_missing_from_the_law_table_is_tagged_new(monkeypatch, capsys):
    _, out, _ = _closed_forms(monkeypatch, capsys)
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if ": Q_" in line}
    assert "not in the project's law table" in lines["a-new-law"]
    assert "not in the project's law table" not in lines["key-sum"]


def test_a_found_law_no_declaration_explains_fails_the_run(monkeypatch, capsys):
    ok, out, report = _closed_forms(monkeypatch, capsys, counted=3, unexplained=["odd"])
    assert ok is False
    assert "not proved (no declaration explains it): odd" in out
    assert report["laws"][-1] == {"name": None, "closed_form": "odd",
                                  "proof": "verified at fresh points", "declared": False}


def test_a_proposal_not_verified_at_fresh_points_fails_the_run(monkeypatch, capsys):
    ok, out, report = _closed_forms(monkeypatch, capsys, rejected=[("bad", 1e-3)])
    assert ok is False
    assert "NOT verified" in out and "bad" in out
    assert report["closed_forms"]["not_verified"] == [{"closed_form": "bad",
                                                       "residual": 1e-3}]


def test_fewer_closed_forms_than_counted_laws_fail_the_run_and_say_how_many(
        monkeypatch, capsys):
    ok, out, _ = _closed_forms(monkeypatch, capsys, counted=5)
    assert ok is False
    assert "the other 3 were not found as polynomials of degree ≤ 2" in out


def test_more_closed_forms_than_counted_laws_fail_the_run_as_a_disagreement(
        monkeypatch, capsys):
    ok, out, _ = _closed_forms(monkeypatch, capsys, counted=1)
    assert ok is False
    assert "2 found against 1 counted" in out


# --- any other model: the declared laws matched against the closed forms -----------------------

def _declared(monkeypatch, capsys, *, counted=2, rank=2, unexplained=(), rejected=(),
              independent=None):
    """Run ``_declared`` on stand-ins: two declared laws that hold, explaining two found
    laws, plus ``unexplained`` found laws none of them explains."""
    import proofs.discovered

    explained = ["law0", "law1"]
    found = SimpleNamespace(laws=explained + list(unexplained), rejected=list(rejected),
                            independent=(len(explained) + len(unexplained)
                                         if independent is None else independent),
                            worst_residual=1e-40, singular_gap=30.0)
    declared = [SimpleNamespace(name=n, text=f"Q_{n}", status="PROVED", holds=True,
                                exact="exact: 0", instances=[]) for n in ("first", "second")]
    matched = SimpleNamespace(source="the catalogue", declared=declared, explained=explained,
                              unexplained=list(unexplained), declared_rank=rank)
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    monkeypatch.setattr(symbolic.discover, "fields_at",
                        lambda setting, seed: (SimpleNamespace(frozen_values={}), None))
    monkeypatch.setattr(proofs.discovered, "match", lambda *args: matched)
    monkeypatch.setattr(D, "_names", lambda f, laws, spans: ["first", None])
    report = {}
    ok = D._declared(SimpleNamespace(), SimpleNamespace(laws=counted), report)
    return ok, capsys.readouterr().out, report


def test_declared_laws_that_are_all_the_laws_pass_and_are_reported_as_declared(
        monkeypatch, capsys):
    ok, out, report = _declared(monkeypatch, capsys)
    assert ok is True
    assert "these 2 declared laws are all the laws at these sizes (the catalogue)" in out
    assert "  first: Q_first — PROVED" in out
    assert [(e["name"], e["declared"], e["proof"]) for e in report["laws"]] == [
        ("first", True, "exact (declared laws checked exactly)"),
        (None, True, "exact (declared laws checked exactly)")]
    assert report["declared"][0] == {"name": "first", "quantity": "Q_first",
                                     "status": "PROVED", "holds": True,
                                     "exact_check": "exact: 0"}
    assert report["complete"] is True and report["declared_independent"] == 2


def test_a_found_law_the_declared_ones_do_not_explain_fails_the_run(monkeypatch, capsys):
    ok, out, report = _declared(monkeypatch, capsys, counted=3, rank=3, unexplained=["odd"])
    assert ok is False and report["complete"] is True   # the counts agree: still no pass
    assert "not among the declared ones: odd" in out
    assert report["laws"][-1]["declared"] is False


def test_declared_laws_fewer_than_the_count_fail_the_run(monkeypatch, capsys):
    ok, out, report = _declared(monkeypatch, capsys, counted=3, rank=2, independent=3)
    assert ok is False and report["complete"] is False
    assert "1 of the 3 laws are not among the declared ones" in out


def test_a_model_with_no_declared_law_says_none(monkeypatch, capsys):
    import proofs.discovered

    monkeypatch.setattr(proofs.discovered, "match", lambda *args: SimpleNamespace(
        source="FILE.py", declared=[], explained=[], unexplained=[], declared_rank=0))
    found = SimpleNamespace(laws=[], rejected=[], independent=0, worst_residual=0.0,
                            singular_gap=0.0)
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    monkeypatch.setattr(symbolic.discover, "fields_at",
                        lambda setting, seed: (SimpleNamespace(frozen_values={}), None))
    report = {}
    assert D._declared(SimpleNamespace(), SimpleNamespace(laws=0), report) is True
    out = capsys.readouterr().out
    assert "declared laws (FILE.py):\n  none\n" in out
    assert "no law holds at these sizes, and none is declared (FILE.py)" in out


# --- the setting the options describe ---------------------------------------------------------

def _setting(*argv):
    from attnflow.cli import build_parser

    return D.build_setting(build_parser().parse_args(["discover", *argv]))


def _constants(setting) -> dict:
    return {str(k): v for k, v in setting.constant_values().items()}


def test_discover_refuses_runs_estimated_past_five_minutes_by_default():
    from attnflow.cli import build_parser

    assert build_parser().parse_args(["discover"]).max_seconds == 300.0


def test_the_papers_default_sizes_are_three_words_of_width_two_in_two_classes():
    s = _setting()
    assert "sizes: 3 words, d=2, d_key=2, 2 classes, sentences of 1–3 tokens" in s.describe()
    assert s.trainable == ("embeddings", "keys", "classifier")


def test_another_models_sizes_default_to_two_with_three_words_and_two_tokens():
    s = _setting("--model", "multi-head")
    assert (s.words, s.max_len, s.sizes) == (3, 2, (("d", 2), ("d_head", 2), ("heads", 2),
                                                    ("C", 2)))
    assert s.loss == "cross-entropy" and _constants(s) == {"tau": 1}


def test_a_size_the_catalogue_entry_fixes_keeps_its_value_and_cannot_be_changed():
    assert dict(_setting("--model", "self-attention").sizes)["heads"] == 1
    with pytest.raises(ValueError, match="fixes heads=1"):
        _setting("--model", "self-attention", "--size", "heads=2")
    assert dict(_setting("--model", "self-attention", "--size", "heads=1,d=3").sizes)["d"] == 3


def test_sizes_and_constants_of_another_model_are_read_by_their_names():
    s = _setting("--model", "multi-head", "--size", "d=3,words=4,max_len=3",
                 "--constants", "tau=3/2", "--trainable", "head_query, head_key")
    assert (dict(s.sizes)["d"], s.words, s.max_len) == (3, 4, 3)
    assert _constants(s) == {"tau": Fraction(3, 2)}
    assert s.trainable == ("head_query", "head_key")


@pytest.mark.parametrize("argv, problem", [
    (["--size", "width=3"], "unknown size(s) ['width'] for model paper"),
    (["--loss", "squared-error"], "model paper has no loss 'squared-error'"),
    (["--constants", "tau=1"], "model paper has no constants"),
    (["--model", "multi-head", "--size", "width=3"], "unknown size 'width' for model multi-head"),
    (["--model", "multi-head", "--constants", "beta=2"], "unknown constant 'beta'"),
    (["--model", "multi-head", "--classifier", "mlp"], "--classifier is the paper's option"),
])
def test_an_option_that_does_not_fit_the_model_is_refused_by_name(argv, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        _setting(*argv)


@pytest.mark.parametrize("argv, loss", [
    ([], "cross_entropy"), (["--loss", "any"], "any"),
    (["--model", "multi-head"], "cross-entropy"),
    (["--model", "multi-head", "--loss", "squared-error"], "squared-error"),
    (["--model", "multi-head", "--loss", "any"], "any")])
def test_the_loss_asked_for_is_the_loss_studied(argv, loss):
    assert _setting(*argv).loss == loss


def test_any_loss_is_refused_for_a_model_file_without_an_abstract_loss():
    path = str(Path(__file__).parent.parent / "docs" / "examples" / "linear_attention.py")
    with pytest.raises(ValueError, match="has no abstract loss"):
        _setting("--model", path, "--loss", "any")
    assert _setting("--model", path).loss == "cross-entropy"


# --- the cost estimate's refusal --------------------------------------------------------------

def _check_cost(monkeypatch, seconds, nbytes, at_least=False, max_seconds=10.0, memory=1000):
    import numeric.limits

    cost = symbolic.discover.Cost(seconds, nbytes, {"trained coordinates": 16, "fields": 40},
                                  {}, at_least)
    monkeypatch.setattr(symbolic.discover, "estimate_cost", lambda setting, closed: cost)
    monkeypatch.setattr(numeric.limits, "memory_limit", lambda: memory)
    D.check_cost(SimpleNamespace(), True, max_seconds)


def test_a_run_estimated_at_exactly_the_limits_is_allowed(monkeypatch):
    _check_cost(monkeypatch, 10.0, 1000)


@pytest.mark.parametrize("seconds, nbytes", [(10.5, 10), (1.0, 1001)])
def test_a_run_estimated_past_either_limit_is_refused_with_both_estimates(
        monkeypatch, seconds, nbytes):
    from numeric.limits import TooLarge

    with pytest.raises(TooLarge) as refused:
        _check_cost(monkeypatch, seconds, nbytes)
    text = str(refused.value)
    assert "16 trained coordinates and 40 per-sentence fields" in text
    assert "the limits are 10 s (--max-seconds) and 1 kB" in text
    assert "at least" not in text


def test_a_lower_bound_estimate_says_at_least_but_never_of_infinity(monkeypatch):
    from numeric.limits import TooLarge

    with pytest.raises(TooLarge) as refused:
        _check_cost(monkeypatch, 50.0, float("inf"), at_least=True)
    text = str(refused.value)
    assert "take at least 50 s of CPU" in text and "at least inf" not in text


# --- the run's glue ---------------------------------------------------------------------------

def test_discover_leaves_the_blas_threads_alone_once_numpy_is_loaded(monkeypatch, capsys):
    import os

    from attnflow.cli import main

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["discover", "--size", "d=x"]) == 2
    assert "bad item 'd=x'" in capsys.readouterr().err
    assert not {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(os.environ)


def test_a_json_report_that_cannot_be_written_is_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    status = D._finish(SimpleNamespace(json=tmp_path / "file" / "r.json"), {}, 0, 0.0, 0.0)
    assert status == 2 and "attnflow discover:" in capsys.readouterr().err


def test_the_closed_forms_for_any_loss_are_verified_never_declared(monkeypatch, capsys):
    found = SimpleNamespace(laws=["a", "b"], rejected=[], independent=2, worst_residual=1e-40,
                            singular_gap=30.0, symbols=())
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    report = {}
    ok = D._closed_forms(SimpleNamespace(loss="any"), SimpleNamespace(laws=2), report)
    assert ok is True and "not proved" in capsys.readouterr().out
    assert [(e["proof"], e["declared"]) for e in report["laws"]] == [
        ("verified at fresh points", False)] * 2
    assert D._closed_forms(SimpleNamespace(loss="any"), SimpleNamespace(laws=3), {}) is False


def _run(monkeypatch, capsys, *argv, closed_ok=True, topic_ok=True):
    """``attnflow discover`` with the count, the closed forms and the topic laws replaced by
    recorders: which stages run, on what, and the exit status they make."""
    from attnflow.cli import main

    calls = []
    count = SimpleNamespace(laws=2, dimension=16, rank=14, directions=1, frozen=0,
                            gap_decades=40.0, lower={},
                            ranks={1: SimpleNamespace(depth=2, route="floats")},
                            summary=lambda: "2 independent laws")
    monkeypatch.setattr(symbolic.discover, "count_laws", lambda setting: count)
    for name, ok in (("_closed_forms", closed_ok), ("_declared", closed_ok),
                     ("_topic", topic_ok)):
        monkeypatch.setattr(D, name, lambda *args, name=name, ok=ok: (
            calls.append((name, args)), ok)[1])
    status = main(["discover", *argv])
    capsys.readouterr()
    return status, calls, count


@pytest.mark.parametrize("argv, stages", [
    ([], ["_closed_forms", "_topic"]),
    (["--trainable", "embeddings,keys"], ["_closed_forms", "_topic"]),
    (["--trainable", "embeddings,keys,query"], ["_closed_forms"]),
    (["--trainable", "embeddings"], ["_closed_forms"]),
    (["--trainable", "embeddings,keys", "--no-closed-forms"], ["_topic"]),
    (["--model", "multi-head"], ["_declared"]),
    (["--model", "multi-head", "--trainable", "embeddings,head_query"], ["_declared"]),
])
def test_the_topic_laws_are_sought_only_for_the_paper_with_the_query_frozen(
        monkeypatch, capsys, argv, stages):
    status, calls, count = _run(monkeypatch, capsys, *argv)
    assert status == 0 and [name for name, _ in calls] == stages
    for name, args in calls:
        if name in ("_closed_forms", "_declared"):
            assert args[1] is count and isinstance(args[2], dict)
        else:   # the topic laws: the same setting and report
            assert hasattr(args[0], "trained") and isinstance(args[1], dict)
    assert len({id(args[0]) for _, args in calls}) == 1


@pytest.mark.parametrize("closed_ok, topic_ok, status", [
    (True, True, 0), (False, True, 1), (True, False, 1), (False, False, 1)])
def test_discover_passes_only_when_closed_forms_and_topic_laws_both_pass(
        monkeypatch, capsys, closed_ok, topic_ok, status):
    assert _run(monkeypatch, capsys, "--trainable", "embeddings,keys", closed_ok=closed_ok,
                topic_ok=topic_ok)[0] == status


@pytest.mark.parametrize("trainable, proved, expected", [
    (("embeddings", "keys", "classifier"), True, ("embeddings", "keys", "classifier")),
    (("embeddings", "keys"), False, ("embeddings", "keys"))])
def test_the_topic_law_is_proved_under_a1_to_a3_with_the_settings_trained_classifier(
        monkeypatch, capsys, trainable, proved, expected):
    asked = []

    def prove(text, classifier, trained, assumptions, search):
        asked.append((classifier, trained, assumptions, search, "Sum(V[w,k]**2" in text))
        return SimpleNamespace(proved=proved, status="PROVED" if proved else "NOT PROVED")
    monkeypatch.setattr(proofs.conjecture, "prove", prove)
    report = {}
    ok = D._topic(SimpleNamespace(classifier="mlp", trainable=trainable), report)
    assert ok is proved
    assert asked == [("mlp", expected, ("A1", "A2", "A3"), False, True)]
    assert report["topic"][0]["proof"] == ("PROVED" if proved else "NOT PROVED")
    assert "exp(s[w] - c)" in report["topic"][0]["as_written"]


def test_no_law_has_rank_zero_without_asking_for_it(monkeypatch):
    monkeypatch.setattr(symbolic.discover, "functional_rank", lambda laws, symbols: 7)
    assert D._independent(SimpleNamespace(symbols=()), []) == 0
    assert D._independent(SimpleNamespace(symbols=()), ["law"]) == 7


def test_a_law_keeps_the_name_of_the_first_declaration_spanning_it_with_linear_products(
        monkeypatch):
    spans = {"quadratic": [("q",)], "linear": [(("x",),)], "other": [("o",)]}
    monkeypatch.setattr(symbolic.discover, "products", lambda linear: [("product",)])
    monkeypatch.setattr(symbolic.discover, "_in_span",
                        lambda cf, basis: cf in basis and ("product",) in basis)
    found = SimpleNamespace(laws=["A", "B", "C"], coefficients=[("q",), ("o",), ("z",)])
    assert D._names(found, ["A", "B", "C"], spans) == ["quadratic", "other", None]


def test_closed_forms_equal_in_number_to_the_count_print_no_disagreement(monkeypatch, capsys):
    ok, out, _ = _closed_forms(monkeypatch, capsys, counted=2)
    assert ok is True and "counted" not in out and "not found" not in out


# --- the frozen values the names are sought at ------------------------------------------------

def _seed_of_the_closed_forms(monkeypatch, seeds) -> int:
    """The seed ``polynomial_laws`` draws its frozen values at (its solve a stand-in)."""
    monkeypatch.setattr(symbolic.discover, "conserved_polynomials", lambda *args: None)
    symbolic.discover.polynomial_laws(SimpleNamespace(coordinates=()))
    return seeds.pop()


@pytest.fixture
def seeds(monkeypatch):
    """``fields_at`` replaced by a stand-in that records the seeds it is asked for."""
    asked = []

    def fields_at(setting, seed):
        asked.append(seed)
        return SimpleNamespace(frozen_values={"at": seed}, n=0), None
    monkeypatch.setattr(symbolic.discover, "fields_at", fields_at)
    return asked


def test_names_are_sought_at_the_frozen_values_the_closed_forms_were_found_at(monkeypatch,
                                                                               seeds):
    """A law's coefficients hold the frozen values of the closed forms' draw: the spans of
    the declarations must be built at those same values."""
    from symbolic import laws as SL
    seed = _seed_of_the_closed_forms(monkeypatch, seeds)
    made, spans = [], {}
    monkeypatch.setattr(proofs.conjecture, "_instances",
                        lambda law, setting, fields: made.append((law, setting, fields))
                        or [f"instance of {law}"])
    monkeypatch.setattr(proofs.conjecture, "_directions_across",
                        lambda setting, fields: ["direction", setting, fields])
    monkeypatch.setattr(proofs.conjecture, "_across_instances",
                        lambda law, setting, fields, directions: made.append(
                            (law, setting, fields, directions)) or ["across instance"])
    monkeypatch.setattr(D, "_names", lambda found, laws, s: spans.update(s) or ["named"])
    across = SL.EMBEDDING_ACROSS_CLASSIFIER
    why = SimpleNamespace(explained=["law"], proved=[
        ("key-sum", "Q", SimpleNamespace(law="key-sum law")), (across.name, "Q", None)])
    assert D._paper_names("setting", "found", why) == ["named"]
    fields = made[0][2]
    assert seeds == [seed] and fields.frozen_values == {"at": seed}
    assert made == [("key-sum law", "setting", fields),
                    (across, "setting", fields, ["direction", "setting", fields])]
    assert spans == {"key-sum": ["instance of key-sum law"], across.name: ["across instance"]}


def test_declared_laws_are_matched_at_the_frozen_values_the_closed_forms_were_found_at(
        monkeypatch, seeds, capsys):
    import proofs.discovered
    seed = _seed_of_the_closed_forms(monkeypatch, seeds)
    found = SimpleNamespace(laws=[], rejected=[], independent=0, worst_residual=0.0,
                            singular_gap=0.0)
    monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: found)
    asked = []
    monkeypatch.setattr(proofs.discovered, "match", lambda *args: asked.append(args)
                        or SimpleNamespace(source="FILE.py", declared=[], explained=[],
                                           unexplained=[], declared_rank=0))
    assert D._declared("setting", SimpleNamespace(laws=0), {}) is True
    ((setting, matched_found, frozen, fields),) = asked
    assert seeds == [seed] and (setting, matched_found) == ("setting", found)
    assert frozen == fields.frozen_values == {"at": seed}


def test_the_count_report_gives_the_deepest_bracket_any_point_needed():
    count = SimpleNamespace(laws=2, dimension=16, rank=14, directions=1, frozen=0,
                            gap_decades=40.34, lower={},
                            ranks={1: SimpleNamespace(depth=3, route="floats"),
                                   2: SimpleNamespace(depth=1, route="exact")})
    report = D._count_report(count)
    assert report["depth"] == 3 and report["points"] == [1, 2]
    assert report["gap_decades"] == 40.3     # to a tenth of a decade
    assert report["route"] == ["exact", "floats"]


def test_the_topic_laws_fail_if_any_one_is_not_proved(monkeypatch, capsys):
    """Two topic laws, the first not proved: the run fails though the last is proved."""
    from symbolic.discover import E_T, N_T, S_T
    laws = [N_T / 2 - S_T, N_T - E_T]
    monkeypatch.setattr(symbolic.discover, "topic_laws", lambda: SimpleNamespace(laws=laws))
    verdicts = iter([False, True])

    def prove(text, classifier, trained, assumptions, search):
        proved = next(verdicts)
        return SimpleNamespace(proved=proved, status="PROVED" if proved else "NOT PROVED")
    monkeypatch.setattr(proofs.conjecture, "prove", prove)
    report = {}
    assert D._topic(SimpleNamespace(classifier="linear", trainable=("embeddings", "keys")),
                    report) is False
    assert [row["proof"] for row in report["topic"]] == ["NOT PROVED", "PROVED"]


def test_the_report_gives_wall_and_cpu_seconds_to_the_hundredth(monkeypatch):
    import time
    monkeypatch.setattr(time, "perf_counter", lambda: 101.23456)
    monkeypatch.setattr(time, "process_time", lambda: 10.5678)
    report = {}
    assert D._finish(SimpleNamespace(json=None), report, 1, 100.0, 10.0) == 1
    assert report == {"exit": 1, "seconds": 1.23, "cpu_seconds": 0.57}


def test_discover_times_its_run_by_the_wall_clock_and_the_cpu_clock(monkeypatch, capsys):
    import time
    seen = []
    real = D._finish
    monkeypatch.setattr(D, "_finish", lambda args, report, status, start, cpu: seen.append(
        (start, cpu)) or real(args, report, status, start, cpu))
    _run(monkeypatch, capsys, "--trainable", "embeddings,keys")
    ((start, cpu),) = seen
    assert abs(time.perf_counter() - start) < 60 and abs(time.process_time() - cpu) < 60
    assert abs(time.perf_counter() - time.process_time()) > 120   # the clocks are apart


@pytest.mark.parametrize("argv, closed_forms", [((), True), (("--no-closed-forms",), False)])
def test_the_estimate_prices_the_closed_forms_only_when_they_are_sought(monkeypatch, capsys,
                                                                         argv, closed_forms):
    asked = []
    real = D.check_cost
    monkeypatch.setattr(D, "check_cost", lambda setting, closed, seconds: asked.append(closed)
                        or real(setting, closed, seconds))
    _run(monkeypatch, capsys, *argv)
    assert asked == [closed_forms]

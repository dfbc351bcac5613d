"""``discover`` on every model: the count against an independent count and a known formula,
a researcher's model written in a test file, the declared laws checked exactly (with negative
controls), the floats' proposal confirmed or redone by the decimals, the command line."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import sympy as sp

from symbolic import laws as SL
from symbolic.discover import ModelSetting, Setting, count_laws, fields_at
from symbolic.models.attention import multi_head
from tests.conftest import thorough
from tests.lie_reference import independent_count
from tests.test_models import linear_attention

HEADS = ("head_query", "head_key", "head_value", "head_output")
TAU = (("tau", Fraction(1)),)


def attention(loss, trained, heads=1, d_head=1, d=2, classes=2, words=3, max_len=2):
    return ModelSetting(multi_head(loss), trained, (("C", classes), ("d", d),
                                                    ("d_head", d_head), ("heads", heads)),
                        words, max_len, TAU)


def agrees(setting) -> tuple[int, dict]:
    count = count_laws(setting)
    fields, _ = fields_at(setting, 1)
    reference = independent_count(setting, fields.frozen_values, fields.point(1))
    return count.laws, reference


# --- the count against an independent count and a known formula -------------------------------

CHEAP = {
    "paper, query and embeddings": Setting("linear", trainable=("embeddings", "keys", "query"),
                                           words=2, d=1, d_key=1, max_len=2),
    "paper, keys, query, classifier": Setting("linear", trainable=("keys", "query",
                                                                   "classifier"),
                                              words=2, d_key=1, max_len=2),
    "two heads, squared error": attention("squared-error", ("head_value", "head_output",
                                                            "classifier"), heads=2, words=2),
    "linear attention": ModelSetting(linear_attention(), ("query_map", "key_map", "value_map"),
                                     (("C", 2), ("d", 2), ("r", 1)), 2, 2),
}
THOROUGH = {
    "one head, any loss": attention("abstract", HEADS),
    "two heads, everything, cross-entropy": attention(
        "cross-entropy", HEADS + ("classifier",), heads=2, words=2),
    "paper, everything": Setting("linear", trainable=("embeddings", "keys", "query",
                                                      "classifier"), words=2, d_key=1,
                                 max_len=2),
    "linear attention, everything": ModelSetting(
        linear_attention(), ("embeddings", "query_map", "key_map", "value_map", "classifier"),
        (("C", 2), ("d", 2), ("r", 1)), 2, 2),
}


@pytest.mark.parametrize("name", list(CHEAP))
def test_the_count_equals_an_independent_count(name):
    """Fields from sympy.diff of the explicit loss, brackets by central differences at 80
    digits, every pair bracketed: the same number of laws, with a wide gap."""
    laws, reference = agrees(CHEAP[name])
    assert reference["laws"] == laws and reference["gap"] > 15


@pytest.mark.slow
@pytest.mark.skipif(not thorough(), reason="long: runs in the thorough profile")
@pytest.mark.parametrize("name", list(THOROUGH))
def test_the_count_equals_an_independent_count_at_more_sizes(name):
    laws, reference = agrees(THOROUGH[name])
    assert reference["laws"] == laws and reference["gap"] > 15


@pytest.mark.parametrize("d_head, d", [(1, 2), (2, 2)] + ([(2, 3), (1, 3)] if thorough() else []))
def test_one_head_has_the_balance_laws_of_its_two_products_and_no_other(d_head, d):
    """Marcotte, Gribonval & Peyré (Cor. 3.9): one head whose ``[Q; K]`` and ``[V; O]`` have
    full rank has exactly the laws of ``QQᵀ − KKᵀ`` and ``VVᵀ − OOᵀ``: ``d_head(d_head+1)``.
    Any loss of the logits, U frozen with as many classes as ``d`` (so the pooled output's
    gradient is any vector), ``d + 1`` words (fewer lie on an affine hyperplane, and the
    keys' component across it never moves)."""
    setting = attention("abstract", HEADS, d_head=d_head, d=d, classes=d, words=d + 1)
    count = count_laws(setting)
    assert count.laws == d_head * (d_head + 1) and count.directions == 0


# --- a model written in a test file goes through discover ------------------------------------

def test_a_model_written_in_a_test_file_is_counted_found_and_compared(tmp_path, capsys):
    """Linear attention, defined in tests/test_models.py with the public API only: counted,
    its laws found in closed form, and (none being declared for it) every one of them
    reported as not among the declared ones."""
    from attnflow.cli import main
    (tmp_path / "mine.py").write_text("from tests.test_models import linear_attention\n"
                                      "MODEL = linear_attention()\n")
    out = tmp_path / "out.json"
    status = main(["discover", "--model", str(tmp_path / "mine.py"), "--size",
                   "r=1,d=2,C=2,words=2", "--trainable", "query_map,key_map,value_map",
                   "--json", str(out)])
    report = json.loads(out.read_text(), parse_constant=_no_constant)
    assert status == 1 and report["exit"] == 1
    assert report["model"] == "linear-attention" and report["count"]["laws"] == 2
    assert report["closed_forms"]["found"] == 2 and len(report["laws"]) == 2
    assert report["statement"].startswith("2 of the 2 laws are not among the declared ones")
    assert "Q_0_0**2" in capsys.readouterr().out


def _no_constant(name):
    raise ValueError(f"{name} in strict JSON")


# --- the declared laws: checked exactly, and a wrong one refused ------------------------------

def test_the_declared_laws_of_two_heads_are_all_the_laws_and_the_command_says_so(tmp_path,
                                                                               capsys):
    from attnflow.cli import main
    out = tmp_path / "out.json"
    assert main(["discover", "--model", "multi-head", "--loss", "any", "--trainable",
                 ",".join(HEADS), "--size", "heads=2,d_head=1,d=1,C=1,words=2", "--json",
                 str(out)]) == 0
    report = json.loads(out.read_text(), parse_constant=_no_constant)
    assert report["complete"] is True and report["declared_independent"] == 4
    assert report["statement"].startswith("these 4 declared laws are all the laws")
    assert {x["name"] for x in report["laws"]} == {"head-query-key", "head-value-output"}
    assert all(x["proof"].startswith("exact") for x in report["laws"])
    assert "these 4 declared laws are all the laws at these sizes" in capsys.readouterr().out


def _wrong(law, sign):
    """The law with ``B`` added instead of subtracted (a wrong sign in the declaration)."""
    import dataclasses
    return dataclasses.replace(law, name=law.name + "-wrong", b=sign * law.b)


@pytest.mark.parametrize("name", ["head-query-key", "head-value-output"])
def test_a_declared_law_with_a_wrong_sign_fails_the_exact_check(name):
    """Negative control: ``QQᵀ + KKᵀ`` (or ``VVᵀ + OOᵀ``) is no law, and the exact check on
    the explicit model says so; the declaration itself passes."""
    from proofs.discovered import exact_check
    setting = attention("abstract", HEADS, heads=1, d_head=1, d=2, words=2)
    law = SL.law(name)
    assert exact_check(law, setting)[0]
    assert not exact_check(_wrong(law, -1), setting)[0]


def test_the_completeness_statement_counts_only_declared_laws_that_hold(monkeypatch):
    """With the value–output balance declared with a wrong sign, it fails its exact check,
    its components leave the span, and the statement says 2 laws are not among the declared
    ones (instead of all being declared)."""
    from proofs.discovered import match
    from symbolic.discover import polynomial_laws

    declared = SL.every_law

    def tampered():
        return tuple(_wrong(x, -1) if x.name == "head-value-output" else x for x in declared())
    monkeypatch.setattr(SL, "every_law", tampered)
    setting = attention("abstract", HEADS, heads=1, d_head=1, d=2, words=3)
    fields, _ = fields_at(setting, 1)
    matched = match(setting, polynomial_laws(setting), fields.frozen_values, fields)
    assert matched.declared_rank == 1
    assert [x.holds for x in matched.declared if x.name.startswith("head-")] == [True, False]
    assert len(matched.unexplained) == 1


# --- the floats propose, the decimals confirm --------------------------------------------------

def test_a_proposal_the_decimals_do_not_confirm_is_redone_by_them(monkeypatch):
    """Floats that see no direction beyond the fields (a tolerance of 0.99) propose too small
    a basis; the random bracket leaves its span, and the decimals alone count the same."""
    import symbolic.discover as SD
    setting = attention("squared-error", ("head_value", "head_output", "classifier"),
                        heads=2, words=2)
    right = count_laws(setting)
    assert {r.route for r in right.ranks.values()} == {SD.LieRank.route}
    monkeypatch.setattr(SD, "FLOAT_TOLERANCE", 0.99)
    redone = count_laws(setting)
    assert redone.laws == right.laws
    assert all(r.route.startswith("decimals alone") for r in redone.ranks.values())


def test_a_proposal_with_a_dependent_element_is_not_confirmed(monkeypatch):
    """An element proposed twice is dependent: the decimals refuse it."""
    import decimal

    import symbolic.discover as SD
    setting = attention("squared-error", ("head_value", "head_output", "classifier"),
                        heads=2, words=2)
    fields, x = fields_at(setting, 1)
    words, _ = SD._propose(fields, x, 6)
    with decimal.localcontext(SD.context()):
        state = fields.state([x], SD.DECIMAL)
        values = fields.batch(fields.generators, SD._rows(state, len(fields.generators)),
                              SD.DECIMAL)
        scale = SD._moving_scale_decimal(values)
        assert SD._confirm(fields, state, values, scale, words, x).rank == len(words)
        with pytest.raises(SD._Unconfirmed):
            SD._confirm(fields, state, values, scale, words + [words[-1]], x)
        with pytest.raises(SD._Unconfirmed):  # a basis too small: the bracket leaves it
            SD._confirm(fields, state, values, scale, [w for w in words if len(w) == 1], x)


# --- the command line: sizes, options and refusals ---------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--model", "multi-head", "--size", "dd=2"], "unknown size 'dd' for model multi-head"),
    (["--model", "self-attention", "--size", "heads=2"], "fixes heads=1"),
    (["--model", "multi-head", "--constants", "tau=0"], "tau must be positive"),
    (["--model", "multi-head", "--constants", "tau=-1"], "bad item 'tau=-1'"),
    (["--model", "multi-head", "--constants", "beta=1"], "unknown constant 'beta'"),
    (["--model", "multi-head", "--classifier", "mlp"], "--classifier is the paper's option"),
    (["--model", "multi-head", "--trainable", "keys"], "unknown trainable name(s) ['keys']"),
    (["--model", "paper", "--loss", "squared-error"], "no loss 'squared-error'"),
    (["--model", "transformer"], "unknown model 'transformer'"),
    (["--model", "multi-head", "--size", "d=100000"], "--size too large"),
    (["--model", "multi-head", "--size", "words=0"], "words must be a whole number"),
])
def test_a_bad_option_is_one_line_and_exit_2(args, message, capsys, monkeypatch):
    import symbolic.discover
    from attnflow.cli import main

    def counted(*args, **kwargs):
        raise AssertionError("the count started")
    monkeypatch.setattr(symbolic.discover, "count_laws", counted)
    assert main(["discover", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_paper_sizes_read_the_models_own_names_too():
    from argparse import Namespace

    from attnflow.commands.discover import build_setting
    args = Namespace(model="paper", classifier=None, trainable=None, loss=None,
                     size="words=2,C=3,H=1", constants=None)
    setting = build_setting(args)
    assert (setting.words, setting.classes, setting.hidden) == (2, 3, 1)


def test_a_model_setting_names_its_sizes_and_constants():
    setting = attention("cross-entropy", HEADS, heads=2)
    assert setting.sizes_text == {"words": 3, "C": 2, "d": 2, "d_head": 1, "heads": 2,
                                  "max_len": 2}
    assert dict(setting.program_sizes)[sp.Symbol("tau", positive=True)] == 1
    assert setting.n_trained == 16 and setting.shape("embeddings") == (3, 2)

"""Declared laws (symbolic/laws.py) and their generic conservation theorems (proofs/):
every tampering of the flow, the model, a declaration or an assumption fails, naming the step."""

import contextlib
import dataclasses

import pytest
import sympy as sp

import symbolic.derive
import symbolic.model
from proofs import conservation, normalisers
from proofs.kernel import check_theorem
from proofs.theorems_sen import sen_curve, sen_identity
from symbolic import laws as SL

THEOREMS = {law.name: conservation.theorem_name(law) for law in SL.LAWS}


def clear_derivations():
    """Forget cached derivations (the cache sits on ``derive`` or on a private helper)."""
    for name in ("derive", "_derive"):
        cached = getattr(symbolic.derive, name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def build(law):
    return (sen_identity() if law.name == "sen" else conservation.conservation_theorem(law))


def only(theorem, *names):
    """The theorem cut down to the named steps (fast checks of one step)."""
    return dataclasses.replace(theorem, steps=tuple(s for s in theorem.steps if s.name in names))


def failing_steps(theorem) -> set[str]:
    return {o.step.name for o in check_theorem(theorem).steps if not o.ok}


def with_law(theorem, law):
    """``theorem`` with its ``Q`` assumption holding another declaration."""
    return dataclasses.replace(theorem, assumptions=tuple(
        dataclasses.replace(a, content=law) if a.name == "Q" else a for a in theorem.assumptions))


def with_assumption(theorem, name, **changes):
    return dataclasses.replace(theorem, assumptions=tuple(
        dataclasses.replace(a, content=dataclasses.replace(a.content, **changes))
        if a.name == name else a for a in theorem.assumptions))


# --- declarations -------------------------------------------------------------------------

def test_every_law_is_declared_once_with_checkable_assumptions():
    assert [x.name for x in SL.LAWS] == ["sen", "query-key", "classifier-embedding",
                                         "hidden-embedding", "relu-unit", "key-sum",
                                         "key-across-query", "classifier-sum",
                                         "output-weight-sum", "output-bias-sum",
                                         "embedding-across-classifier"]
    for law in SL.LAWS:
        assert SL.law(law.name) is law
        assert all(x.kind == "content" for x in law.assumptions), law.name
        assert law.trainable(law.models[0]), law.name
    assert SL.SEN.trainable(SL.ABSTRACT) == ("embeddings", "keys")     # A1 freezes the query
    with pytest.raises(ValueError, match="no declared law"):
        SL.law("nope")


def test_a_law_from_a_user_expression_gets_a_generic_rate():
    emb = SL.declare("embedding-norms", "Σ_w ‖v_w‖²", "0", "Sum(V[w,k]**2, (w, 0, W - 1))",
                     assumptions=(SL.trains("embeddings"),))
    assert emb.components == (SL._idx("embed"),) and emb.parameters() == ("embeddings",)
    # d/dτ Σ_w V_wk² = 2 Σ_i V_ik V̇_ik with V̇_ik = −a_i G_k: not conserved, and no word left
    rate = SL.rate(emb, SL.ABSTRACT).to_sympy()
    assert not rate.has(SL.omega) and rate != 0 and rate.has(symbolic.model.G)


def test_declare_rejects_unknown_names_and_wrong_components():
    r = symbolic.model.KEY.index(0)
    unknown = sp.Sum(sp.IndexedBase("Z")[SL.w, r], (SL.w, 0, SL.n_words - 1))
    with pytest.raises(ValueError, match="neither parameters"):
        SL.declare("x", "x", "q[r]", unknown, assumptions=(SL.trains("query"),))
    with pytest.raises(ValueError, match="free indices"):
        SL.declare("x", "x", "q[r]", "0", components=(SL.w,), assumptions=(SL.trains("query"),))
    with pytest.raises(ValueError, match="cannot read"):
        SL.declare("x", "x", "q[r", "0")
    with pytest.raises(ValueError, match="no content"):
        SL.LawAssumption("T", "something holds")


def test_the_rate_is_the_chain_rule_on_the_declaration_not_a_typed_derivative():
    # SEN's rate in a sentence holding the word, before any assumption, reads ω[i, w]
    rate = SL.rate(SL.SEN, SL.ABSTRACT).to_sympy()
    assert rate.has(SL.omega) and rate.has(symbolic.model.s)
    # the balance law of query and keys vanishes identically per sentence, for any loss
    assert SL.rate(SL.QUERY_KEY, SL.ABSTRACT).is_zero()


# --- every declared law's theorem, and what breaks it ------------------------------------------

@pytest.mark.parametrize("law", SL.LAWS, ids=lambda x: x.name)
def test_a_flipped_flow_in_symbolic_derive_fails_every_law_at_the_gradient(law, monkeypatch):
    original = symbolic.derive.flow
    monkeypatch.setattr(symbolic.derive, "flow",
                        lambda model, trainable: {n: -e for n, e in
                                                  original(model, trainable).items()})
    assert failing_steps(only(build(law), "gradient")) == {"gradient"}


PAPER_CONFIGURATIONS = (("linear",), ("mlp",), ("linear", "abstract"),
                        ("linear", "cross_entropy", "classes"))


@contextlib.contextmanager
def changed_nodes(change):
    """Every description of the paper's family with ``change(node)`` in place of each node
    (the descriptions are shared values, so the laws and proofs see the change; derivation
    caches cleared before and after)."""
    models = [symbolic.model.Model(*args) for args in PAPER_CONFIGURATIONS]
    saved = [m.nodes for m in models]
    clear_derivations()
    try:
        for m in models:
            object.__setattr__(m, "nodes", tuple(change(nd) for nd in m.nodes))
        yield
    finally:
        for m, nodes in zip(models, saved):
            object.__setattr__(m, "nodes", nodes)
        clear_derivations()


@pytest.fixture
def doubled_score():
    """The model with score node s = 2 q·κ."""
    with changed_nodes(lambda nd: dataclasses.replace(nd, definition=2 * nd.definition)
                       if nd.name == "s" else nd):
        yield


def test_a_changed_node_fails_sen_at_the_gradient_and_the_rate_and_the_curve(doubled_score):
    assert {"gradient", "rate"} <= failing_steps(sen_identity())
    assert "imported" in failing_steps(only(sen_curve(), "imported"))


def test_a_changed_score_node_fails_the_query_key_law_at_the_gradient(doubled_score):
    assert failing_steps(only(build(SL.QUERY_KEY), "gradient")) == {"gradient"}


def test_a_changed_hidden_node_fails_the_relu_unit_law():
    bias = symbolic.model.b1[symbolic.model.n]
    with changed_nodes(lambda nd: dataclasses.replace(nd, definition=nd.definition + bias)
                       if nd.name == "u" else nd):
        assert "gradient" in failing_steps(only(build(SL.RELU_UNIT), "gradient"))


def test_the_training_assumption_is_content_the_flow_is_built_from():
    th = build(SL.QUERY_KEY)
    # "T: query frozen" instead of "query and keys train": the rate no longer vanishes
    frozen = with_assumption(th, "T", trained=("keys",), frozen=("query",))
    assert "rate" in failing_steps(frozen)
    dropped = dataclasses.replace(th, assumptions=tuple(a for a in th.assumptions
                                                        if a.name != "T"))
    assert {"gradient", "rate"} <= failing_steps(dropped)


def test_sen_with_a_wrong_quantity_fails_at_the_rate():
    wrong = dataclasses.replace(SL.SEN, b=SL.SEN.b.subs(SL.m, SL.m + 1))
    assert failing_steps(with_law(sen_identity(), wrong)) == {"rate", "dataset", "exact"}


def test_sen_without_a2_fails_where_a2_is_used():
    th = sen_identity()
    dropped = dataclasses.replace(th, assumptions=tuple(a for a in th.assumptions
                                                        if a.name != "A2"))
    assert {"attention", "rate"} <= failing_steps(dropped)


def test_sen_with_a3_saying_the_word_is_everywhere_fails_at_the_rate():
    everywhere = {"sentence holding w": lambda e, model: e.replace(
        lambda x: isinstance(x, sp.Indexed) and x.base == SL.omega, lambda x: sp.S.One)}
    assert "rate" in failing_steps(with_assumption(sen_identity(), "A3", cases=everywhere))


def test_a_wrong_lemma_fails_the_lemma_and_the_rate():
    th = sen_identity()
    original = next(s for s in th.steps if s.name == "attention").check

    def wrong(scope):
        claim = original(scope)
        rel = claim.claim
        return dataclasses.replace(claim, claim=sp.Eq(rel.lhs, rel.rhs.subs(SL.m, SL.m + 1),
                                                      evaluate=False))
    tampered = dataclasses.replace(th, steps=tuple(
        dataclasses.replace(s, check=wrong) if s.name == "attention" else s for s in th.steps))
    assert {"attention", "rate"} <= failing_steps(tampered)


def test_a_normaliser_must_be_named_and_exact(monkeypatch):
    with pytest.raises(KeyError, match="named set"):
        normalisers.normalised(sp.Eq(1, 0), "e -> 0")
    wrong = dataclasses.replace(SL.QUERY_KEY, normaliser="e -> 0")
    assert "rate" in failing_steps(only(with_law(build(SL.QUERY_KEY), wrong), "gradient",
                                        "any-classifier", "rate"))
    # replacing a registered normaliser by e → 0 fails the audit's self-test, naming it
    monkeypatch.setitem(normalisers.NORMALISERS, "canonical-cancel", (lambda e: 0 * e, "zero"))
    assert failing_steps(normalisers.theorems()[0]) == {"canonical-cancel"}


def test_sen_curve_reads_the_declared_quantity():
    from proofs.theorems_sen import sen_quantity
    v, s_t, c = SL.v, SL.s_t, SL.c
    l = symbolic.model.EMBED.index(1)  # noqa: E741
    expected = sp.Rational(1, 2) * sp.Sum(v[l] ** 2, (l, 0, symbolic.model.d - 1)) - (
        s_t + sp.exp(s_t) * sp.exp(-c) / SL.m) / SL.QQ
    assert sp.simplify(sen_quantity() - expected) == 0


def test_a_law_declared_at_run_time_gets_a_theorem_that_fails_when_it_is_not_conserved():
    kept = SL.declare("query-key-again", "q qᵀ − Σ_w κ_w κ_wᵀ", "q[r]*q[t]",
                      "Sum(K[w,r]*K[w,t], (w, 0, W - 1))",
                      assumptions=(SL.trains("query", "keys"),))
    assert check_theorem(conservation.conservation_theorem(kept)).ok
    norms = SL.declare("embedding-norms", "Σ_w ‖v_w‖²", "0", "Sum(V[w,k]**2, (w, 0, W - 1))",
                       assumptions=(SL.trains("embeddings"),))
    assert failing_steps(conservation.conservation_theorem(norms)) == {"rate", "dataset",
                                                                       "exact"}


def test_a_flipped_flow_fails_the_theorems_that_read_the_sen_flows(monkeypatch):
    from proofs.theorems_breaks import breaks_embeddings
    original = symbolic.derive.flow
    monkeypatch.setattr(symbolic.derive, "flow",
                        lambda model, trainable: {n: -e for n, e in
                                                  original(model, trainable).items()})
    assert "flow-v" in failing_steps(only(breaks_embeddings(), "flow-v"))
    assert failing_steps(only(sen_curve(), "imported")) == {"imported"}


def test_derivative_renames_a_clashing_target_index_apart():
    r = symbolic.model.KEY.index(0)        # also the summed index of the score node s
    slope = SL.derivative(SL.SEN.quantity, symbolic.model.q[r], SL.ABSTRACT)
    assert not slope.has(sp.Sum)           # no spurious Σ_r K[w, r] from a captured index
    assert slope.has(symbolic.model.K[SL.w, r]) and slope.has(symbolic.model.q[r])


def test_a3_on_a_law_of_two_words_is_not_a_theorem():
    """A3 places one topic word; its cases applied to ``V_w − V_{w_x}`` took ``w_x = w`` and
    the kernel passed a false law (``d/dτ (V_0 − V_1) ≠ 0`` on a data set where A3 holds)."""
    two = SL.declare("two-words", "V_w − V_{w_x}", "V[w,k]", "V[w_x,k]",
                     models=(symbolic.model.Model("linear"),), classifiers=("linear",),
                     assumptions=(SL.trains("embeddings", "keys", "classifier"), SL.A3))
    assert not check_theorem(conservation.conservation_theorem(two)).ok

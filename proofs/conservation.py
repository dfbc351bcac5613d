"""One conservation theorem per declared law, built generically from its declaration.

For a law ``Q = A − B`` of ``symbolic/laws.py`` the theorem reads everything from its
assumptions, through the kernel's scope:

- ``gradient`` (instance): the flow the ``GF`` assumption hands out (``symbolic.derive.flow``)
  is ``−∂ℓ/∂θ`` of the loss written out entry by entry at small sizes, independently of
  ``symbolic.model`` (so a flipped flow or a changed node fails here);
- ``any-classifier`` (symbolic; laws proved on the abstract loss): every concrete classifier's
  gradients are the abstract ones with ``G = ∂ℓ/∂h``;
- lemma steps the law names (``attention``, ``relu``);
- ``rate`` (symbolic): the per-sentence rate ``R_χ`` of :func:`symbolic.laws.sentence_rate`
  along that flow — the chain rule on the declaration, no derivative typed — reduced by the
  law's assumptions (their content: trainable set, substitutions per case) and lemmas, is
  exactly 0 after the law's named normaliser;
- ``dataset`` (symbolic): ``dQ/dτ = (1/|D|) Σ_χ R_χ = 0``.
"""

from __future__ import annotations

import itertools

import sympy as sp

import symbolic.derive as SD
from proofs import derivations as D
from proofs import exact, normalisers, theorems_cases
from proofs.kernel import Assumption, Normalised, Step, Theorem
from proofs.normalisers import normalised
from proofs.rewritings import each_sentence
from symbolic import laws as SL
from symbolic.explicit import (
    WRITTEN_BY_HAND,
    ExplicitModel,
    Sizes,
    _Opaque,
    _read_explicitly,
    differences_at_point,
)
from symbolic.indexform import kind_of
from symbolic.model import Model

#: Theorem names of the laws declared today (names other reports and tests refer to).
THEOREM_NAMES = {"sen": "sen-identity", "query-key": "balance-query-keys",
                 "classifier-embedding": "balance-classifier-embeddings",
                 "hidden-embedding": "balance-hidden-embeddings",
                 "relu-unit": "balance-relu-unit"}

#: Explicit sizes of the ``gradient`` step (tokens, d, d_key, classes, hidden).
GRADIENT_SIZES = Sizes(2, 1, 1, 2, 1)
#: The same for a model of the catalogue other than the paper's (sizes by name; every one
#: not named is 1), and the seed of the rational point its flow is compared at.
DESCRIBED_GRADIENT_SIZES = {"L": 2, "heads": 2, "C": 2}
GRADIENT_SEED = 1


def theorem_name(law: SL.Law) -> str:
    return THEOREM_NAMES.get(law.name, f"conservation-{law.name}")


# --- assumptions ------------------------------------------------------------------------------

def _granted_models(law: SL.Law) -> tuple[Model, ...]:
    models = list(law.models)
    models += [x for x in SL.covered_models(law) if x not in models]
    return tuple(models)


def gradient_flow(law: SL.Law) -> Assumption:
    """``GF``: the one flow, ``symbolic.derive.flow``; it grants the law's models."""
    return Assumption(
        "GF", "training follows the gradient flow dθ/dτ = −∇L(θ) of L = (1/|D|) Σ_χ ℓ_χ: per "
        "sentence the flow of symbolic.derive.flow; a word's embedding and key receive, from "
        "each sentence, the flow of the copies gathered at the tokens holding it (one word per "
        "token), so dQ/dτ = (1/|D|) Σ_χ R_χ with R_χ = Σ_{w,i} ω[i, w] ∂Q/∂θ_w·θ̇_χ[i] + "
        "∂Q/∂φ·φ̇_χ (symbolic.laws.sentence_rate)",
        content={"flow": _late("flow"), "derive": _late("derive")},
        derivations=_granted_models(law))


def _late(name: str):
    """``symbolic.derive.<name>``, looked up at each call (so a checker that wraps the module's
    functions sees every use)."""
    def call(*args, **kwargs):
        return getattr(SD, name)(*args, **kwargs)
    call.__name__ = name
    return call


def quantity(law: SL.Law) -> Assumption:
    return Assumption("Q", f"definition (law {law.name}, symbolic/laws.py): Q = A − B with "
                      f"A = {_text(law.a)}, B = {_text(law.b)}", content=law)


def _text(expr) -> str:
    return sp.sstr(expr).replace(str(SL.QQ), "‖q‖²")


def law_assumptions(law: SL.Law) -> tuple[Assumption, ...]:
    return tuple(Assumption(x.name, x.statement, content=x, kind=x.kind)
                 for x in law.assumptions)


def _trainable(scope, law: SL.Law, model: Model) -> tuple[str, ...]:
    """The flow's trainable set, from the content of the law's T / A1 assumptions."""
    trained, frozen = set(), set()
    for x in law.assumptions:
        if x.trained or x.frozen:
            content = scope.assumption(x.name)
            trained |= set(content.trained)
            frozen |= set(content.frozen)
    return tuple(p.name for p in model.params if p.name in trained - frozen)


def _training_uses(law: SL.Law) -> tuple[str, ...]:
    return tuple(x.name for x in law.assumptions if x.trained or x.frozen)


# --- gradient: the flow is −∇ℓ of the loss written out ---------------------------------------

def explicit_loss(model: Model, sizes: Sizes):
    """The loss of one sentence entry by entry; for the abstract loss ``ℓ = Σ_k G_k h_k``,
    whose ``∂ℓ/∂h`` is ``G`` (the explicit model is independent of ``symbolic.model``)."""
    ex = ExplicitModel(model.classifier, sizes)
    if model.loss == "abstract":
        ex.G = [sp.Symbol(f"G_{k}", real=True) for k in range(sizes.d)]
        for name in ("classifier", "hidden_weight", "hidden_bias", "output_weight",
                     "output_bias"):
            ex.params.pop(name, None)
        return ex, sum(g * x for g, x in zip(ex.G, ex.h))
    return ex, ex.loss


def _gradient_step(law: SL.Law):
    if law.family != "paper":
        return _described_gradient_step(law)

    def check(scope):
        law = scope.assumption("Q")
        flows_of = scope.assumption("GF")["flow"]
        out = {}
        for model in law.models:
            trainable = _trainable(scope, law, model)
            flows = flows_of(model, trainable)
            ex, loss = explicit_loss(model, GRADIENT_SIZES)
            opaque = _Opaque()
            lhs, rhs = [], []
            for prm in model.params:
                if prm.name not in trainable:
                    continue
                ranges = [range(int(kind_of(x).size.xreplace(GRADIENT_SIZES.subs())))
                          for x in prm.indices]
                for at in itertools.product(*ranges):
                    entry = flows[prm.name].to_sympy().xreplace(dict(zip(prm.indices, at)))
                    lhs.append(opaque(_read_explicitly(entry, ex, GRADIENT_SIZES)))
                    rhs.append(opaque(-sp.diff(loss, ex.entry(prm.name, at))))
            label = f"{model.label}, {GRADIENT_SIZES}"
            out[label] = sp.Eq(sp.Matrix(lhs), sp.Matrix(rhs), evaluate=False)
        return out
    return Step("gradient", "the flow GF hands out is −∂ℓ/∂θ of the sentence's loss written "
                "out entry by entry (independently of symbolic.model) on every trained "
                f"parameter, at {GRADIENT_SIZES}", "instance", check,
                uses=("GF", "Q") + _training_uses(law))


def described_sizes(model: Model) -> dict:
    """:data:`DESCRIBED_GRADIENT_SIZES` for ``model``'s size symbols (1 where not named)."""
    return {symbol: DESCRIBED_GRADIENT_SIZES.get(name, 1)
            for name, symbol in model.sizes.items()}


def _described_gradient_step(law: SL.Law):
    """The flow of a model other than the paper's against ``sympy.diff`` of its loss written
    by hand (``symbolic.explicit.WRITTEN_BY_HAND``), along a random direction per trained
    parameter at an exact rational point (``symbolic.explicit.differences_at_point``)."""
    def check(scope):
        law = scope.assumption("Q")
        flows_of = scope.assumption("GF")["flow"]
        out = {}
        for model in law.models:
            if model.name not in WRITTEN_BY_HAND:
                raise ValueError(f"the {model.name} model has no writing by hand to check "
                                 f"its flow against")
            trainable = _trainable(scope, law, model)
            flows = flows_of(model, trainable)
            sizes = described_sizes(model)
            grads = {name: (-flows[name]).to_sympy() for name in trainable}
            found = differences_at_point(model, sizes, grads, GRADIENT_SEED)
            label = f"{model.label}, {', '.join(f'{k}={v}' for k, v in sizes.items())}"
            out[label] = sp.Eq(sp.Matrix(list(found.values())), sp.zeros(len(found), 1),
                               evaluate=False)
        return out
    sizes = ", ".join(f"{k} = {v}" for k, v in DESCRIBED_GRADIENT_SIZES.items())
    return Step("gradient", "the flow GF hands out is −∂ℓ/∂θ of the sentence's loss written "
                "by hand (independently of the model's description and derivation) on every "
                "trained parameter: along a random direction per parameter, at an exact random "
                f"rational point, at {sizes} (other sizes 1), the two derivatives differ by "
                "exactly 0", "instance", check, uses=("GF", "Q") + _training_uses(law))


# --- any classifier -----------------------------------------------------------------------

def _any_classifier_step(law: SL.Law):
    if law.family != "paper":
        return _any_loss_step(law)

    def check(scope):
        law = scope.assumption("Q")
        gf = scope.assumption("GF")
        abstract = next(x for x in law.models if x.loss == "abstract")
        names = _trainable(scope, law, abstract)
        lhs, rhs = [], []
        for classifier in law.classifiers:
            der = gf["derive"](Model(classifier))
            g_h = der.symbols["h"]
            for name in names:
                lhs.append(der.inlined(name, keep=("h",)).to_sympy())
                rhs.append(gf["derive"](abstract).inlined(name).to_sympy().xreplace(
                    {D.G: g_h}))
        return normalised(sp.Eq(sp.Matrix(lhs), sp.Matrix(rhs), evaluate=False), "canonical")
    return Step("any-classifier", f"for the classifiers {', '.join(law.classifiers)} with "
                "cross-entropy, the gradients of the trained attention parameters are the "
                "abstract-loss ones with G = ∂ℓ/∂h: the law, proved for an arbitrary G, covers "
                "every classifier", "symbolic", check, uses=("GF", "Q") + _training_uses(law))


def _any_loss_step(law: SL.Law):
    """For a model other than the paper's: below the abstract model's last node ``X``, the
    backward pass of every concrete loss the law names is the abstract one — the same
    gradient formula for every node and parameter, in the upstream symbols ``g_Y`` of its
    consumers, once ``G`` is read as ``g_X = ∂ℓ/∂X`` — so every parameter's gradient is the
    abstract one with ``G = ∂ℓ/∂X``."""
    def check(scope):
        law = scope.assumption("Q")
        gf = scope.assumption("GF")
        abstract = next(x for x in law.models if x.loss == "abstract")
        general = gf["derive"](abstract)
        last = abstract.nodes[-1].name
        lhs, rhs = [], []
        for model in SL.covered_models(law):
            der = gf["derive"](model)
            upstream = {abstract.upstream: der.symbols[last]}
            for name in general.order:
                lhs.append(der.grads[name].to_sympy())
                rhs.append(general.grads[name].to_sympy().xreplace(upstream))
        return sp.Eq(sp.Matrix(lhs), sp.Matrix(rhs), evaluate=False)
    last = next(x for x in law.models if x.loss == "abstract").nodes[-1].name
    return Step("any-loss", f"for the losses {', '.join(law.losses)}, the backward pass below "
                f"{last} is the abstract one with G = ∂ℓ/∂{last} (every node's and "
                "parameter's gradient formula, in the upstream symbols of its consumers): the "
                "law, proved for an arbitrary G, covers every one of them", "symbolic", check,
                uses=("GF", "Q"))


# --- lemmas ---------------------------------------------------------------------------------

def _attention_lemma(law: SL.Law):
    def check(scope):
        model = scope.assumption("Q").models[0]
        scores = scope.assumption("A2").values["scores"]
        derived = SL.attention_closed_form(model, scores, scope.assumption("A3").values["tokens"])
        (x,) = next(nd for nd in model.nodes if nd.base == D.a).indices
        return normalised(sp.Eq(derived, D.attention_a2_a3(x), evaluate=False), "expand")
    return Step("attention", SL.LEMMAS["attention"].statement + "; in particular a_p = "
                "e^{s_t}/(e^{s_t} + m e^c) depends on s_t alone, the same in every sentence "
                "holding the topic word", "symbolic", check, uses=("Q", "A2", "A3"))


_x_pos = sp.Symbol("x", positive=True)
_x_neg = sp.Symbol("x", negative=True)


def relu_homogeneous(scope):
    """max(x, 0) = H(x) x, by the three cases x > 0, x < 0, x = 0 (H(0)·0 = 0 whatever H(0))."""
    cases = (_x_pos, _x_neg, sp.S.Zero)
    relu = sp.Matrix([sp.Max(x, 0, evaluate=False) for x in cases])
    gated = sp.Matrix([sp.Mul(sp.Heaviside(x, evaluate=False), x, evaluate=False)
                       for x in cases])
    return sp.Eq(relu, gated, evaluate=False)


def _relu_lemma(law: SL.Law):
    return Step("relu", SL.LEMMAS["relu"].statement, "symbolic", relu_homogeneous)


def _rows_persist_lemma(law: SL.Law):
    """N is stated at the start; it holds at every τ only if ``Σ_k Π[l,k] U[c,k]`` does not
    move: its rate along the flow of GF (the chain rule, as for Q) must be exactly 0 — so a
    trained classifier fails here, even though Q itself does not read U."""
    def check(scope):
        law = scope.assumption("Q")
        rows = scope.assumption(SL.ACROSS.name).values["rows"]
        flows_of = scope.assumption("GF")["flow"]
        rates = [SL.sentence_rate(law, model, flows_of(model, _trainable(scope, law, model)),
                                  quantity=rows).to_sympy() for model in law.models]
        return normalised(sp.Eq(sp.Matrix(rates), sp.zeros(len(rates), 1), evaluate=False),
                          "canonical")
    return Step("rows-persist", SL.LEMMAS["rows-persist"].statement + ": along the flow of "
                "GF, d/dτ Σ_k Π[l,k] U[c,k] = Σ_k Π[l,k] U̇[c,k] is exactly 0", "symbolic",
                check, uses=("GF", "Q", SL.ACROSS.name) + _training_uses(law))


LEMMA_STEPS = {"attention": _attention_lemma, "relu": _relu_lemma,
               "rows-persist": _rows_persist_lemma}


# --- the rate and the data set ---------------------------------------------------------------

def reduced_rates(scope) -> list[sp.Expr]:
    """``R_χ`` per model and per case of the law's assumptions, every rewriting applied: the
    assumptions' cases (in order), the lemmas (as established by their steps), the nodes the
    law expands by their definitions (all read from the declaration ``Q``)."""
    declared = law = scope.assumption("Q")
    flows_of = scope.assumption("GF")["flow"]
    scope.step("gradient")
    out = []
    for model in declared.models:
        rate = SL.sentence_rate(declared, model, flows_of(model, _trainable(scope, law, model)))
        branches = [rate.to_sympy()]
        for x in law.assumptions:
            content = scope.assumption(x.name)
            if content.cases:
                _persists(scope, content)
                branches = [_apply_case(content, label, e, model) for e in branches
                            for label in content.cases]
        for name in law.lemmas:
            established = scope.step(name)
            branches = [SL.LEMMAS[name].rewrite(e, model, established) for e in branches]
        for name in law.expand:
            node = next(nd for nd in model.nodes if nd.name == name)
            branches = [D.expand_node(e, model, node.base) for e in branches]
        out.extend(branches)
    return out


def _apply_case(content: SL.LawAssumption, label: str, expr, model: Model):
    """The case ``label`` of an assumption applied to a rate — only a case function theorem
    ``cases-exact`` tests, on a rate made of what its battery exercises (a case function is
    Python run inside the proof: untested, it would be trusted unseen)."""
    rewrite = content.cases[label]
    covered = theorems_cases.covered(rewrite, model)
    if covered is None:
        raise ValueError(f"the case {label!r} of assumption {content.name} is not one theorem "
                         f"cases-exact tests: its function would be trusted unchecked")
    missing = sorted(normalisers.elements(expr) - covered)
    if missing:
        raise ValueError(f"the case {label!r} of assumption {content.name} meets "
                         f"{', '.join(missing)}, which its battery in theorem cases-exact "
                         f"does not exercise")
    return rewrite(expr, model)


def _persists(scope, content) -> None:
    """An assumption stated at the start (``values["persists by"]``: N's Π U_c = β) is applied
    at every τ only after the lemma that shows it persists; reading that step fails unless the
    law proves it (out of scope) and it passed."""
    lemma = content.values.get("persists by")
    if lemma is not None:
        scope.step(lemma)


def _rate_step(law: SL.Law):
    def check(scope):
        law = scope.assumption("Q")
        rates = reduced_rates(scope)
        return normalised(sp.Eq(sp.Matrix(rates), sp.zeros(len(rates), 1), evaluate=False),
                          law.normaliser)
    uses = ("GF", "Q", "gradient") + tuple(x.name for x in law.assumptions) + law.lemmas
    cases = " × ".join(f"{x.name}: {', '.join(x.cases)}" for x in law.assumptions if x.cases)
    return Step("rate", "per sentence, R_χ = Σ_{w,i} ω[i, w] ∂Q/∂θ_w·θ̇_χ[i] + ∂Q/∂φ·φ̇_χ along "
                "the flow of GF (the chain rule on the declared Q), reduced by the law's "
                "assumptions" + (f" (cases {cases})" if cases else "")
                + (f", lemmas {', '.join(law.lemmas)}" if law.lemmas else "")
                + (f" and the definitions of {', '.join(law.expand)}" if law.expand else "")
                + f", is exactly 0 on every model ({', '.join(map(_model_label, law.models))})",
                "symbolic", check, uses=uses)


def _model_label(model: Model) -> str:
    if model.name != "paper":
        return (f"{model.name}, any loss of {model.nodes[-1].name}" if model.loss == "abstract"
                else f"{model.name}, {model.loss}")
    return "any loss of h" if model.loss == "abstract" else f"{model.classifier} classifier"


def _shared_bases(law: SL.Law) -> tuple:
    bases = {p.base for model in law.models for p in model.params if not p.per_token}
    return tuple(bases | {D.v, D.kappa})


def _dataset_step(law: SL.Law):
    def check(scope):
        scope.assumption("GF")
        rule = scope.step("rate")
        per_sentence = rule.claim.lhs
        total = per_sentence.applyfunc(
            lambda e: D.mean_over_sentences(e, _shared_bases(law)))
        return Normalised(sp.Eq(total, sp.zeros(*per_sentence.shape), evaluate=False),
                          each_sentence(rule.normalise),
                          f"reducing each sentence's term by {rule.how}, as in step rate")
    return Step("dataset", "over the data set dQ/dτ = (1/|D|) Σ_χ R_χ (GF: the sum over words "
                "regrouped by the tokens holding them) is a sum of zeros", "symbolic", check,
                uses=("GF", "rate"))


def _exact_step(law: SL.Law):
    """The statement checked on the model written out at small sizes (``proofs.exact``):
    reads the declaration and the names of its assumptions, nothing of the steps above."""
    def check(scope):
        declared = scope.assumption("Q")
        for x in declared.assumptions:
            scope.assumption(x.name)
        return exact.check_law(declared)
    return Step("exact", "independently of the index form, the normalisers, the case "
                "functions and the steps above: dQ/dτ = Σ_θ ∂Q/∂θ·(−∂L/∂θ), with L the "
                "data-set loss of concrete sentences written out entry by entry, sympy.diff on "
                "every parameter not named frozen and the assumptions made data, is exactly 0 "
                "at exact random rational points, and a parameter Q reads moves", "exact",
                check, uses=("Q",) + tuple(x.name for x in law.assumptions))


def conservation_theorem(law: SL.Law, name: str | None = None) -> Theorem:
    """The theorem ``dQ/dτ = 0`` for ``law``, every step read from its declaration; its
    statement is what step ``exact`` checks (built from the declaration, not written)."""
    steps = [_gradient_step(law)]
    if any(x.loss == "abstract" for x in law.models):
        steps.append(_any_classifier_step(law))
    steps += [LEMMA_STEPS[x](law) for x in law.lemmas]
    steps += [_rate_step(law), _dataset_step(law), _exact_step(law)]
    assumptions = (gradient_flow(law), quantity(law)) + law_assumptions(law)
    return Theorem(name or theorem_name(law), f"Conservation law {law.name}",
                   exact.statement(law), assumptions, tuple(steps))


BALANCE = ("query-key", "classifier-embedding", "hidden-embedding", "relu-unit")


def theorems() -> tuple[Theorem, ...]:
    """Every declared law's theorem but SEN's (built in ``proofs/theorems_sen.py``): the
    balance laws, the laws discovery found, then the self-attention family's laws."""
    return tuple(conservation_theorem(x) for x in SL.every_law() if x.name != "sen")

"""Declared laws: each conserved quantity written once, over the model's named quantities.

A law's quantity ``Q = A − B`` is a SymPy expression at *word level*: the per-token bases of
:mod:`symbolic.model` read at a **word** index ``w`` (``V[w, k]`` the embedding of word ``w``,
``K[w, r]`` its key, ``s[w]`` its score ``Σ_r q_r K[w, r]`` by the model's score node), the
shared parameters as they are (``q[r]``, ``U[c, k]``, …), and ``Σ_w`` over the vocabulary. Its
free indices are its components (a topic word ``w``, a hidden unit ``n``, matrix entries).

The proofs (``proofs/conservation.py``), the printed evaluators (``symbolic/print_laws.py``)
and the numeric checks all read these declarations; nothing else writes a law down again.

:func:`sentence_rate` gives ``dQ/dτ`` along :func:`symbolic.derive.flow` generically, by the
chain rule on the declaration: with the data-set flow of a word's parameter
``θ̇_w = (1/|D|) Σ_χ Σ_i ω_χ[i, w] θ̇_χ[i]`` (the per-sentence flows of the copies gathered at
the tokens ``i`` holding ``w``; ``ω[i, w] = 1`` iff token ``i`` holds word ``w``), and shared
``φ̇ = (1/|D|) Σ_χ φ̇_χ``, the rate is linear in the velocities, so

    dQ/dτ = (1/|D|) Σ_χ R_χ,   R_χ = Σ_{w,i} ω[i, w] ∂Q/∂θ_w · θ̇_χ[i] + ∂Q/∂φ · φ̇_χ,

and ``R_χ`` is returned in the per-sentence index form of the derivation (word reads at
token ``i`` become the gathered copies ``V[i, ·]``, ``K[i, ·]``, ``s[i]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from symbolic.derive import flow
from symbolic.indexform import IExpr, IndexKind, Term, canonical, fresh, kind_of
from symbolic.model import (
    CLASS,
    EMBED,
    FOLDS,
    HIDDEN,
    KEY,
    TOKEN,
    W1,
    W2,
    C,
    H,
    K,
    L,
    Model,
    U,
    V,
    a,
    b1,
    b2,
    d,
    d_key,
    q,
    s,
)

# --- word-level index form -------------------------------------------------------------------

#: Vocabulary size and the word index kind (``Σ_w`` ranges over every word of the data set).
n_words = sp.Symbol("W", integer=True, positive=True)
WORD = IndexKind("word", n_words, ("w", "w_x", "w_y"))
w = WORD.index(0)
#: ``ω[i, w]``: 1 when token ``i`` of the sentence holds word ``w``, else 0 (data, not a
#: parameter; exactly one word per token).
omega = sp.IndexedBase("omega")

#: ``‖q‖² = Σ_r q_r²``: written as this positive symbol wherever it divides (index form has
#: no sums in denominators).
QQ = sp.Symbol(r"\|q\|^{2}", positive=True)

# Symbols of PAPER.md's SEN statement (the same SymPy symbols proofs/derivations.py uses).
#: Topic token of a sentence, topic word's embedding and key, its score, the common
#: non-topic score, the number of non-topic tokens per sentence.
p = TOKEN.index(2)
v = sp.IndexedBase("v", real=True)
kappa = sp.IndexedBase("kappa", real=True)
s_t = sp.Symbol("s_t", real=True)
c = sp.Symbol("c", real=True)
m = sp.Symbol("m", integer=True, positive=True)


def _idx(kind_name: str, n: int = 0):
    return {"embed": EMBED, "key": KEY, "class": CLASS, "hidden": HIDDEN,
            "word": WORD, "token": TOKEN}[kind_name].index(n)


_k, _l = EMBED.index(0), EMBED.index(1)


def word_nodes(model: Model) -> dict:
    """Token-indexed nodes that depend only on the token's own parameters and shared ones
    (the score ``s``): a law may read them at a word, ``s[w]``."""
    per_token = {prm.base for prm in model.params if prm.per_token}
    shared = {prm.base for prm in model.params if not prm.per_token}
    out = {}
    for node in model.nodes:
        if not (node.indices and kind_of(node.indices[0]) is TOKEN) or node.normalisers:
            continue
        tok = node.indices[0]
        reads = node.definition.atoms(sp.Indexed)
        if all(x.base in shared or (x.base in per_token and x.indices[0] == tok)
               for x in reads):
            out[node.base] = node
    return out


def norm2_q(index=None) -> sp.Expr:
    """``Σ_r q_r²`` over the full key range (what :data:`QQ` abbreviates)."""
    x = index if index is not None else _idx("key")
    return sp.Sum(q[x] ** 2, (x, 0, d_key - 1))


def fold_norms(expr) -> sp.Expr:
    """Write every ``Σ_x q_x²`` over the full key range as :data:`QQ`."""
    def is_norm(x):
        return (isinstance(x, sp.Sum) and len(x.limits) == 1 and x.function.is_Pow
                and x.function.exp == 2 and isinstance(x.function.base, sp.Indexed)
                and x.function.base.base == q and x.function.base.indices == (x.limits[0][0],)
                and x.limits[0][1] == 0 and x.limits[0][2] == d_key - 1)
    return expr.replace(is_norm, lambda x: QQ)


def unfold_norms(expr) -> sp.Expr:
    """:data:`QQ` written back as ``Σ_r q_r²`` (so ``∂/∂q`` sees it)."""
    return expr.xreplace({QQ: norm2_q(fresh(kind_of(_idx("key"))))})


# --- declarations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LawAssumption:
    """A hypothesis of a law, as content the proof applies.

    ``frozen`` / ``trained``: parameter names the flow holds fixed / moves (they choose the
    flow's trainable set). ``cases``: ``{label: rewrite}``, each ``rewrite(expr, model)`` an
    exact substitution valid under the hypothesis (several cases: the rate must vanish in
    each, e.g. a sentence that holds the topic word and one that does not). ``values``: named
    content a lemma reads (A3's ``tokens = m + 1``, A2's score rewrite). ``kind``:
    ``"prose"`` when nothing of it is used (reported as trusted).
    """

    name: str
    statement: str
    frozen: tuple[str, ...] = ()
    trained: tuple[str, ...] = ()
    cases: Mapping[str, Callable] = field(default_factory=dict)
    values: Mapping[str, object] = field(default_factory=dict)
    kind: str = "content"

    def __post_init__(self):
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(f"law assumption name must be a word, got {self.name!r}")
        if not self.statement.strip():
            raise ValueError(f"law assumption {self.name!r} has an empty statement")
        if self.kind not in ("content", "prose"):
            raise ValueError(f"law assumption {self.name!r}: kind must be 'content' or "
                             f"'prose', got {self.kind!r}")
        if self.kind == "content" and not (self.frozen or self.trained or self.cases
                                           or self.values):
            raise ValueError(f"law assumption {self.name!r} has no content; mark it "
                             "kind='prose'")


@dataclass(frozen=True)
class Law:
    """A conserved quantity ``Q = A − B`` declared once.

    ``a``, ``b``: SymPy expressions at word level (see the module docstring); ``components``:
    their free indices, in the order the printed evaluators lay them out; ``component``: what
    one component is ("topic word", "hidden unit", "matrix"); ``models``: the models the
    conservation theorem is proved on (``Model("linear", "abstract")`` = any loss of the
    context); ``classifiers``: numeric classifiers the law is checked on; ``assumptions``:
    :class:`LawAssumption` in the order the proof applies them; ``constants``: symbols held
    fixed along the flow with the component indices they vary over in numeric data (``c``:
    one per snapshot; ``m``: one per topic word); ``expand``: node names the proof writes by
    their definitions; ``lemmas``: named facts the proof establishes first ("attention",
    "relu"); ``normaliser``: the named exact rewriting the rate is decided after;
    ``losses``: for a model of the catalogue other than the paper's (whose laws name
    ``classifiers``), the losses the law holds for — each one a model it is proved on, or
    covered by the abstract loss it is proved on (``covered_models``).
    """

    name: str
    statement: str
    a: sp.Expr
    b: sp.Expr
    components: tuple
    component: str
    models: tuple[Model, ...]
    classifiers: tuple[str, ...]
    assumptions: tuple[LawAssumption, ...] = ()
    constants: Mapping = field(default_factory=dict)
    expand: tuple[str, ...] = ()
    lemmas: tuple[str, ...] = ()
    normaliser: str = "canonical"
    losses: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(f"law name must be a word, got {self.name!r}")
        if not self.models:
            raise ValueError(f"law {self.name!r} names no model to be proved on")
        families = sorted({model.name for model in self.models})
        if len(families) > 1:
            raise ValueError(f"law {self.name!r} is proved on models of several families "
                             f"{families}; declare one law per family")
        _check_losses(self)
        free = _free_indices(self.quantity)
        if free != set(self.components):
            raise ValueError(f"law {self.name!r}: the free indices of A − B are "
                             f"{sorted(map(str, free))}, but its components are "
                             f"{[str(x) for x in self.components]}")
        for model in self.models:
            unknown = _unknown_bases(self, model)
            if unknown:
                raise ValueError(f"law {self.name!r} reads {sorted(unknown)}, which are "
                                 f"neither parameters nor word-level nodes of {model}")
        for model in self.models:
            nodes = {nd.name for nd in model.nodes}
            missing = [x for x in self.expand if x not in nodes]
            if missing:
                raise ValueError(f"law {self.name!r} expands {missing}, which are not nodes "
                                 f"of {model}")
        names = [x.name for x in self.assumptions]
        if len(set(names)) != len(names):
            raise ValueError(f"law {self.name!r}: assumption names repeat: {names}")
        unknown = [x for x in self.lemmas if x not in LEMMAS]
        if unknown:
            raise ValueError(f"law {self.name!r}: unknown lemma(s) {unknown}; known: "
                             f"{sorted(LEMMAS)}")

    @property
    def quantity(self) -> sp.Expr:
        """``Q = A − B``."""
        return self.a - self.b

    @property
    def family(self) -> str:
        """The name of the models the law is about (``paper``, ``multi-head``, …)."""
        return self.models[0].name

    @property
    def frozen(self) -> tuple[str, ...]:
        return tuple(n for x in self.assumptions for n in x.frozen)

    @property
    def trained(self) -> tuple[str, ...]:
        return tuple(n for x in self.assumptions for n in x.trained)

    def trainable(self, model: Model) -> tuple[str, ...]:
        """The flow's trainable set: the law's trained parameters, minus frozen ones."""
        names = [prm.name for prm in model.params]
        return tuple(n for n in names if n in self.trained and n not in self.frozen)

    def parameters(self) -> tuple[str, ...]:
        """Names of the parameters ``Q`` reads (directly or through a word-level node)."""
        bases = {x.base for x in self.quantity.atoms(sp.Indexed)}
        model = self.models[0]
        for base, node in word_nodes(model).items():
            if base in bases:
                bases |= {x.base for x in node.definition.atoms(sp.Indexed)}
        if self.quantity.has(QQ):
            bases.add(q)
        return tuple(prm.name for prm in model.params if prm.base in bases)

    def assumption(self, name: str) -> LawAssumption:
        for x in self.assumptions:
            if x.name == name:
                return x
        raise KeyError(f"law {self.name!r} has no assumption {name!r}")


def _check_losses(law: Law) -> None:
    """A law of another family than the paper's names the losses it holds for, and each is
    proved: on that loss's model, or on the abstract loss (any loss of the last node)."""
    if law.family == "paper":
        if law.losses:
            raise ValueError(f"law {law.name!r}: the paper's laws name classifiers, not losses")
        return
    if not law.losses:
        raise ValueError(f"law {law.name!r} names no loss it holds for")
    proved = {model.loss for model in law.models}
    for loss in law.losses:
        if loss == "abstract":
            raise ValueError(f"law {law.name!r}: 'abstract' is no loss a run trains with")
        if loss not in proved and "abstract" not in proved:
            raise ValueError(f"law {law.name!r} claims the loss {loss!r} but is proved on "
                             f"{sorted(proved)} only")


def covered_models(law: Law) -> tuple[Model, ...]:
    """The concrete models an abstract-loss proof of ``law`` covers: the paper's classifiers
    it names, or the losses of its family it names (built by the catalogue)."""
    if not any(model.loss == "abstract" for model in law.models):
        return ()
    if law.family == "paper":
        return tuple(Model(c) for c in law.classifiers)
    from symbolic.models import load
    entry = load(law.family)
    return tuple(entry.model(loss) for loss in law.losses)


def _free_indices(expr) -> set:
    return {x for x in expr.free_symbols if kind_of(x) is not None}


def _unknown_bases(law: Law, model: Model) -> set[str]:
    # a declared constant array (Π of embedding-across-classifier) is data of the run, not
    # a parameter: the flow does not move it
    known = ({prm.base for prm in model.params} | set(word_nodes(model))
             | {x for x in law.constants if isinstance(x, sp.IndexedBase)})
    return {str(x.base) for x in law.quantity.atoms(sp.Indexed) if x.base not in known}


def declare(name: str, statement: str, a, b, *, components=None, component="matrix",
            models=None, classifiers=("linear", "mlp"),
            assumptions=(), constants=None, expand=(), lemmas=(),
            normaliser="canonical", losses=()) -> Law:
    """A :class:`Law` from user expressions ``A`` and ``B`` (SymPy, word level; text is read
    by ``symbolic.grammar`` over the names of the first model). ``components`` default to
    the free indices of ``A − B`` sorted by name; ``models`` default to the abstract loss
    (any loss of the context). Raises ValueError on unknown names or mismatched indices."""
    if models is None:
        models = (ABSTRACT,)
    a, b = _parse(a, models[0]), _parse(b, models[0])
    if components is None:
        components = tuple(sorted(_free_indices(a - b), key=str))
    return Law(name, statement, a, b, tuple(components), component, tuple(models),
               tuple(classifiers), tuple(assumptions), dict(constants or {}), tuple(expand),
               tuple(lemmas), normaliser, tuple(losses))


def _parse(x, model: Model):
    """A SymPy expression or number as it is; text read by the grammar (never evaluated)."""
    if isinstance(x, str):
        from symbolic.grammar import read
        try:
            return read(x, model)
        except ValueError as exc:
            raise ValueError(f"cannot read law expression: {exc}") from None
    if isinstance(x, sp.Basic):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return sp.Integer(x)
    raise ValueError(f"a law expression is a SymPy expression, an integer or text, got "
                     f"{type(x).__name__}")


# --- dQ/dτ along the flow, generically -----------------------------------------------------

def derivative(law_expr, target, model: Model) -> sp.Expr:
    """``∂Q/∂target`` by the chain rule: directly, and through every word-level node read in
    ``Q`` (``∂Q/∂s[y] · ∂s[y]/∂target``, ``s[y]`` by the model's definition). The target's
    indices may be any names (a clash with a summed index of ``Q`` is renamed apart)."""
    own = target.indices if isinstance(target, sp.Indexed) else ()
    clash = set(own) & (law_expr.atoms(sp.Symbol) | _node_symbols(model))
    if clash:
        apart = {x: fresh(kind_of(x)) for x in own}
        result = derivative(law_expr, target.xreplace(apart), model)
        back = {new: old for old, new in apart.items()}
        return IExpr.from_sympy(result, model.folds).xreplace(back, model.folds).to_sympy()
    expr = unfold_norms(law_expr)
    total = sp.diff(expr, target)
    for base, node in word_nodes(model).items():
        if not expr.has(base):
            continue
        y = fresh(WORD)
        definition = node.definition.xreplace({node.indices[0]: y})
        total += sp.Sum(sp.diff(expr, base[y]) * sp.diff(definition, target),
                        (y, 0, n_words - 1))
    return fold_norms(total)


def _node_symbols(model: Model) -> set:
    return set().union(*(nd.definition.atoms(sp.Symbol) for nd in word_nodes(model).values()))


def sentence_rate(law: Law, model: Model, flows: Mapping[str, IExpr] | None = None,
                  quantity=None) -> IExpr:
    """``R_χ``: one sentence's contribution to ``|D| · dQ/dτ`` along ``flows`` (default
    ``flow(model, law.trainable(model))``), in per-sentence index form; ``ω[i, w]`` stays
    where a component word is read (the law's assumptions say where that word sits)."""
    if flows is None:
        flows = flow(model, law.trainable(model))
    quantity = law.quantity if quantity is None else quantity
    total = sp.S.Zero
    for prm in model.params:
        velocity = flows[prm.name]
        if velocity.is_zero():
            continue
        own = tuple(fresh(kind_of(x)) for x in prm.indices)
        rate_here = velocity.xreplace(dict(zip(prm.indices, own))).to_sympy()
        if prm.per_token:
            word = fresh(WORD)
            slope = derivative(quantity, prm.base[(word,) + own[1:]], model)
            term = slope * omega[own[0], word] * rate_here
            limits = [(word, 0, n_words - 1)] + [(x, 0, kind_of(x).size - 1) for x in own]
        else:
            slope = derivative(quantity, prm.base[own], model)
            term = slope * rate_here
            limits = [(x, 0, kind_of(x).size - 1) for x in own]
        if slope == 0:
            continue
        total += sp.Sum(term, *limits)
    return gather(IExpr.from_sympy(total, model.folds), model)


def gather(expr: IExpr, model: Model) -> IExpr:
    """Read word-level quantities at the token that holds the word:
    ``Σ_x ω[i, x] F(θ_x) = F(θ at token i)`` (one word per token) and
    ``ω[i, w] F(θ_w) = ω[i, w] F(θ at token i)``."""
    word_level = {prm.base for prm in model.params if prm.per_token} | set(word_nodes(model))
    terms = []
    for tm in expr.terms:
        body, summed = tm.body, list(tm.summed)
        for ref in [f for f in body.atoms(sp.Indexed) if f.base == omega]:
            tok, x = ref.indices
            reads = [f for f in body.atoms(sp.Indexed) if f != ref and x in f.free_symbols]
            if any(f.base not in word_level or f.indices[0] != x for f in reads):
                raise ValueError(f"word index {x} is read outside a word-level quantity "
                                 f"in {body}")
            moved = {f: f.base[(tok,) + f.indices[1:]] for f in reads}
            body = body.xreplace(moved)
            if x in summed:
                if x in body.xreplace({ref: 1}).free_symbols:
                    raise ValueError(f"word index {x} is still read in {body}")
                body = body.xreplace({ref: 1})
                summed.remove(x)
        terms.append(Term(tm.coeff, body, tuple(summed)))
    return canonical(terms, model.folds)


def rate(law: Law, model: Model, trainable=None) -> IExpr:
    """``dQ/dτ`` per sentence along ``symbolic.derive.flow(model, trainable)`` (default: the
    law's trainable set); the data-set rate is ``(1/|D|) Σ_χ`` of it."""
    if trainable is None:
        trainable = law.trainable(model)
    return sentence_rate(law, model, flow(model, tuple(trainable)))


# --- the five laws -------------------------------------------------------------------------

ABSTRACT = Model("linear", "abstract")
LINEAR, MLP = Model("linear"), Model("mlp")


def sen_quantity(word=None) -> tuple[sp.Expr, sp.Expr]:
    """``A = ½‖v_w‖²`` and ``B = (s_w + e^{s_w}·e^{−c}/m)/‖q‖²`` (``s_w = q·κ_w``)."""
    x = w if word is None else word
    a_term = sp.Rational(1, 2) * sp.Sum(V[x, _k] ** 2, (_k, 0, d - 1))
    b_term = (s[x] + sp.exp(s[x]) * sp.exp(-c) / m) / QQ
    return a_term, b_term


def attention_closed_form(model: Model, scores, tokens, token=None) -> sp.Expr:
    """The model's attention node ``a[x] = e^{s_x}/Σ_j e^{s_j}`` with ``scores`` (a rewrite of
    ``e^{s_x}``) applied and ``L = tokens``: read from the node, not typed."""
    node = next(nd for nd in model.nodes if nd.base == a)
    (x,) = node.indices
    numerator, denominator = sp.fraction(node.definition)
    total = IExpr.from_sympy(scores(denominator), model.folds).to_sympy().subs(L, tokens)
    closed = scores(numerator) / total
    return closed if token is None else closed.xreplace({x: token})


def _one_topic_word(expr):
    """A3 speaks of one topic word: ``ω[i, x]`` may be rewritten only when every ``ω`` in the
    rate reads the same word ``x``. With two words ``w``, ``w_x`` the rewrite would put both
    at token ``p`` (i.e. assume ``w = w_x``) and never examine "holds one but not the
    other"; ValueError names the words instead of proving that."""
    words = sorted({str(x.indices[1]) for x in expr.atoms(sp.Indexed) if x.base == omega})
    if len(words) > 1:
        raise ValueError(f"A3 describes one topic word, but the rate reads the words "
                         f"{', '.join(words)}: its cases would silently take them equal")


def _omega_at_topic(expr, model):
    """Sentence holding the topic word ``x``: ``ω[i, x] = δ_ip``."""
    _one_topic_word(expr)
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == omega,
                        lambda x: sp.KroneckerDelta(x.indices[0], p))


def _omega_absent(expr, model):
    """Sentence without the topic word ``x``: ``ω[i, x] = 0``."""
    _one_topic_word(expr)
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == omega,
                        lambda x: sp.S.Zero)


def embeddings_only_topic(expr, model=None):
    """A2 on embeddings: ``V[x, k] = δ_xp v_k`` (non-topic embeddings 0)."""
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == V
                        and kind_of(x.indices[0]) is TOKEN,
                        lambda x: sp.KroneckerDelta(x.indices[0], p) * v[x.indices[1]])


def exp_scores_a2(expr, model=None):
    """A2 on scores: ``e^{s_x} = δ_xp e^{s_t} + (1 − δ_xp) e^c`` and ``s_p = s_t``."""
    def value(x):
        delta = sp.KroneckerDelta(x.args[0].indices[0], p)
        return delta * sp.exp(s_t) + (1 - delta) * sp.exp(c)
    expr = expr.replace(lambda x: isinstance(x, sp.exp) and isinstance(x.args[0], sp.Indexed)
                        and x.args[0].base == s, value)
    return expr.xreplace({s[p]: s_t})


def _a2(expr, model):
    return exp_scores_a2(embeddings_only_topic(expr))


A1 = LawAssumption("A1", "the query q is fixed (not trained)", frozen=("query",))
SEN_TRAINS = LawAssumption("T", "the topic word's embedding and key train",
                           trained=("embeddings", "keys"))
A3 = LawAssumption(
    "A3", "every sentence holds the topic word w at most once and exactly m non-topic words: "
    "L = m + 1 tokens; in a sentence holding w it sits at token p (ω[i, w] = δ_ip), in any "
    "other ω[i, w] = 0",
    cases={"sentence holding w": _omega_at_topic, "sentence without w": _omega_absent},
    values={"tokens": m + 1})
A2 = LawAssumption(
    "A2", "non-topic words do not contribute: every non-topic embedding is 0 and every "
    "non-topic score equals a common constant c (V_x = δ_xp v, e^{s_x} = δ_xp e^{s_t} + "
    "(1 − δ_xp) e^c, s_p = s_t; c does not move)",
    cases={"A2": _a2}, values={"scores": exp_scores_a2, "embeddings": embeddings_only_topic})


def trains(*names: str) -> LawAssumption:
    return LawAssumption("T", f"the parameters {', '.join(names)} train (anything else "
                         "trained or not)", trained=names)


@dataclass(frozen=True)
class Lemma:
    """A fact a law's proof establishes before reducing the rate, and how the reduction uses
    it: ``rewrite(expr, model, established)`` with ``established`` what the proof's lemma step
    returned (its checked claim), so a wrong lemma cannot feed the rate."""

    name: str
    statement: str
    rewrite: Callable


def _attention_rewrite(expr, model, established):
    """``a[y] → `` the closed form the lemma established for ``a[x]``, read at ``y``."""
    (x,) = next(nd for nd in model.nodes if nd.base == a).indices
    closed = established.claim.rhs
    return expr.replace(lambda y: isinstance(y, sp.Indexed) and y.base == a,
                        lambda y: closed.xreplace({x: y.indices[0]}))


def _relu_rewrite(expr, model, established):
    """``o_n = max(u_n, 0) = H(u_n) u_n`` (the lemma), so ``o`` is written through ``u``."""
    node = next(nd for nd in model.nodes if nd.name == "o")
    (pre,) = [x for x in node.definition.args if x != 0]
    return expr.replace(lambda x: isinstance(x, sp.Indexed) and x.base == node.base,
                        lambda x: (sp.Heaviside(pre) * pre).xreplace(
                            dict(zip(node.indices, x.indices))))


def _rows_persist_rewrite(expr, model, established):
    """Nothing to substitute: the lemma licenses N's substitution at every τ, not only at the
    start (the rate step applies it as N's case after reading this step, ``persists by``)."""
    return expr


#: Named lemmas a law may list; ``proofs/conservation.py`` proves each before using it.
LEMMAS = {
    "attention": Lemma(
        "attention", "under A2 and A3 the model's attention node gives a_x = (δ_xp e^{s_t} + "
        "(1 − δ_xp) e^c)/(e^{s_t} + m e^c) for every token x", _attention_rewrite),
    "relu": Lemma("relu", "max(x, 0) = H(x)·x for every real x (cases x > 0, x < 0, x = 0)",
                  _relu_rewrite),
    "rows-persist": Lemma(
        "rows-persist", "Σ_k Π[l,k] U[c,k] does not move along the flow (U is fixed), so N, "
        "stated at the start, holds at every τ", _rows_persist_rewrite),
}


_r, _t = _idx("key", 0), _idx("key", 1)
_ec, _n = _idx("class", 0), _idx("hidden", 0)

SEN = Law(
    "sen", "½‖v_w‖² − (s_w + e^{s_w − c}/m)/‖q‖² is constant for every topic word w",
    *sen_quantity(), components=(w,), component="topic word", models=(ABSTRACT,),
    classifiers=("linear", "mlp"), assumptions=(A1, SEN_TRAINS, A3, A2),
    constants={c: (), m: (w,)}, lemmas=("attention",), normaliser="canonical-cancel")
QUERY_KEY = Law(
    "query-key", "q qᵀ − Σ_w κ_w κ_wᵀ is constant", q[_r] * q[_t],
    sp.Sum(K[w, _r] * K[w, _t], (w, 0, n_words - 1)), components=(_r, _t),
    component="matrix", models=(ABSTRACT,), classifiers=("linear", "mlp"),
    assumptions=(trains("query", "keys"),))
CLASSIFIER_EMBEDDING = Law(
    "classifier-embedding", "UᵀU − Σ_w v_w v_wᵀ is constant",
    sp.Sum(U[_ec, _k] * U[_ec, _l], (_ec, 0, C - 1)),
    sp.Sum(V[w, _k] * V[w, _l], (w, 0, n_words - 1)), components=(_k, _l),
    component="matrix", models=(LINEAR,), classifiers=("linear",),
    assumptions=(trains("classifier", "embeddings"),), expand=("h",))
HIDDEN_EMBEDDING = Law(
    "hidden-embedding", "W1ᵀW1 − Σ_w v_w v_wᵀ is constant",
    sp.Sum(W1[_n, _k] * W1[_n, _l], (_n, 0, H - 1)),
    sp.Sum(V[w, _k] * V[w, _l], (w, 0, n_words - 1)), components=(_k, _l),
    component="matrix", models=(MLP,), classifiers=("mlp",),
    assumptions=(trains("hidden_weight", "embeddings"),), expand=("h",))
RELU_UNIT = Law(
    "relu-unit", "‖W2[:, n]‖² − ‖W1[n, :]‖² − b1_n² is constant for every hidden unit n",
    sp.Sum(W2[_ec, _n] ** 2, (_ec, 0, C - 1)),
    sp.Sum(W1[_n, _k] ** 2, (_k, 0, d - 1)) + b1[_n] ** 2, components=(_n,),
    component="hidden unit", models=(MLP,), classifiers=("mlp",),
    assumptions=(trains("output_weight", "hidden_weight", "hidden_bias"),),
    expand=("u",), lemmas=("relu",))


# --- the laws `attnflow discover` found (issue 10) ------------------------------------------

def labels_sum_to_one(expr, model=None):
    """One-hot label: ``Σ_c Y_c = 1`` — a summed class index read only by ``Y`` is summed
    away (exact for a one-hot ``Y``)."""
    from symbolic.indexform import Term
    from symbolic.model import CLASS as _CLASS
    from symbolic.model import Y
    folds = _folds(model)
    terms = []
    for tm in IExpr.from_sympy(expr, folds).terms:
        body, summed = tm.body, list(tm.summed)
        for idx in list(summed):
            uses = [f for f in sp.Mul.make_args(body) if idx in f.free_symbols]
            if (len(uses) == 1 and uses[0] == Y[idx] and kind_of(idx) is _CLASS):
                body = body.xreplace({uses[0]: 1})
                summed.remove(idx)
        terms.append(Term(tm.coeff, body, tuple(summed)))
    return canonical(terms, folds).to_sympy()


def _folds(model: Model | None) -> tuple:
    """The folds a case function canonicalises with: the model's (the paper's by default)."""
    return FOLDS if model is None else model.folds


ONE_HOT = LawAssumption(
    "Y", "cross-entropy against a one-hot label: Y_c ∈ {0, 1} and Σ_c Y_c = 1",
    cases={"one-hot label": labels_sum_to_one})

KEY_SUM = Law(
    "key-sum", "Σ_w κ_w is constant (any loss of the context, query trained or not)",
    sp.Sum(K[w, _r], (w, 0, n_words - 1)), sp.S.Zero, components=(_r,), component="vector",
    models=(ABSTRACT,), classifiers=("linear", "mlp"), assumptions=(trains("keys"),),
    normaliser="canonical-softmax-sums")
KEY_ACROSS_QUERY = Law(
    "key-across-query", "q_r κ_{w,t} − q_t κ_{w,r} is constant for every word w when the "
    "query is fixed", q[_r] * K[w, _t], q[_t] * K[w, _r], components=(w, _r, _t),
    component="word", models=(ABSTRACT,), classifiers=("linear", "mlp"),
    assumptions=(A1, trains("keys")))
CLASSIFIER_SUM = Law(
    "classifier-sum", "Σ_c U[c, :] is constant under cross-entropy",
    sp.Sum(U[_ec, _k], (_ec, 0, C - 1)), sp.S.Zero, components=(_k,), component="vector",
    models=(LINEAR,), classifiers=("linear",), assumptions=(trains("classifier"), ONE_HOT),
    normaliser="canonical-softmax-sums")
OUTPUT_WEIGHT_SUM = Law(
    "output-weight-sum", "Σ_c W2[c, :] is constant under cross-entropy",
    sp.Sum(W2[_ec, _n], (_ec, 0, C - 1)), sp.S.Zero, components=(_n,), component="vector",
    models=(MLP,), classifiers=("mlp",), assumptions=(trains("output_weight"), ONE_HOT),
    normaliser="canonical-softmax-sums")
OUTPUT_BIAS_SUM = Law(
    "output-bias-sum", "Σ_c b2_c is constant under cross-entropy",
    sp.Sum(b2[_ec], (_ec, 0, C - 1)), sp.S.Zero, components=(), component="scalar",
    models=(MLP,), classifiers=("mlp",), assumptions=(trains("output_bias"), ONE_HOT),
    normaliser="canonical-softmax-sums")


# --- embeddings across a fixed classifier (Attn-FC) -----------------------------------------
#
# Each embedding moves by −(1/|D|) Σ a_i Uᵀ(P − Y) and Σ_c (P_c − Y_c) = 0, so it moves in
# span{U_c − U_e}: any direction that every class row U_c meets equally is never moved along.
# Such directions are constants of the run (they depend on the fixed U, not on the flow), so
# the law reads them as a constant matrix Π — its rows any such directions (the numeric check
# uses the projector onto the complement of span{U_c − U_0}) — and Q[w, l] = Σ_k Π[l,k] V[w,k].

#: The constant matrix of directions (not a parameter: its rows are chosen from the fixed U)
#: and the common value β_l = Σ_k Π[l,k] U[c,k] its rows take on every class row.
Pi = sp.IndexedBase("Pi")
beta = sp.IndexedBase("beta")


def directions_meet_rows_equally(expr, model=None):
    """``Σ_k Π[l,k] U[c,k] = β_l`` for every class ``c``: in each term, a summed embedding index
    read by exactly the two factors ``Π[l, k]`` and ``U[c, k]`` is summed into ``β_l``.
    Exact where Π's rows meet every class row of U equally (the assumption N)."""
    folds = _folds(model)
    terms = []
    for tm in IExpr.from_sympy(expr, folds).terms:
        body, summed = tm.body, list(tm.summed)
        for idx in [x for x in summed if kind_of(x) is EMBED]:
            uses = [f for f in sp.Mul.make_args(body) if idx in f.free_symbols]
            pair = {f.base: f for f in uses if isinstance(f, sp.Indexed)}
            if (len(uses) == 2 and set(pair) == {Pi, U} and pair[Pi].indices[1] == idx
                    and pair[U].indices[1] == idx):
                body = body.xreplace({pair[Pi]: beta[pair[Pi].indices[0]], pair[U]: 1})
                summed.remove(idx)
        terms.append(Term(tm.coeff, body, tuple(summed)))
    return canonical(terms, folds).to_sympy()


#: ``Σ_k Π[l,k] U[c,k]`` (free ``l``, ``c``): what N says is the same for every class.
ROWS_ALONG_PI = sp.Sum(Pi[_l, _k] * U[_ec, _k], (_k, 0, d - 1))

FIXED_CLASSIFIER = LawAssumption("FC", "the linear classifier U is fixed (Attn-FC: not "
                                 "trained)", frozen=("classifier",))
ACROSS = LawAssumption(
    "N", "Π is a constant matrix (not a parameter) whose rows meet every class row of U "
    "equally at the start: Σ_k Π[l,k] U[c,k] = β_l for every class c (each row of Π is "
    "orthogonal to every difference U_c − U_e)",
    cases={"Π U_c = β": directions_meet_rows_equally},
    values={"rows": ROWS_ALONG_PI, "persists by": "rows-persist"})
EMBEDDING_ACROSS_CLASSIFIER = Law(
    "embedding-across-classifier", "Σ_k Π[l,k] v_{w,k} is constant for every word w and "
    "every direction Π[l, :] that meets all rows of the fixed classifier U equally",
    sp.Sum(Pi[_l, _k] * V[w, _k], (_k, 0, d - 1)), sp.S.Zero, components=(w, _l),
    component="word", models=(LINEAR,), classifiers=("linear",),
    assumptions=(FIXED_CLASSIFIER, trains("embeddings"), ACROSS, ONE_HOT),
    constants={Pi: ()}, lemmas=("rows-persist",), normaliser="canonical-softmax-sums")

#: The laws declared by hand (issue 8), then the ones discovery found (issue 10).
ORIGINAL = (SEN, QUERY_KEY, CLASSIFIER_EMBEDDING, HIDDEN_EMBEDDING, RELU_UNIT)
DISCOVERED = (KEY_SUM, KEY_ACROSS_QUERY, CLASSIFIER_SUM, OUTPUT_WEIGHT_SUM, OUTPUT_BIAS_SUM,
              EMBEDDING_ACROSS_CLASSIFIER)
#: Every declared law, in report order.
LAWS = ORIGINAL + DISCOVERED


def every_law() -> tuple[Law, ...]:
    """Every declared law of every model: the paper's (:data:`LAWS`), then the self-attention
    family's (``symbolic.laws_attention``, declared beside its model)."""
    from symbolic import laws_attention
    return LAWS + laws_attention.LAWS


def law(name: str) -> Law:
    """The declared law called ``name`` (of any model); ValueError if there is none."""
    for x in every_law():
        if x.name == name:
            return x
    raise ValueError(f"no declared law {name!r}; declared: {[x.name for x in every_law()]}")

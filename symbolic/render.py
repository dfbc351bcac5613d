"""The derivations as readable mathematics (Markdown with LaTeX, or a LaTeX document).

Per model: the definitions of one sentence's nodes, the backward pass node by node, each
parameter's gradient in closed form (factored: common factors pulled out of the sums), and the
flow over a data set, where per-token gradients are scattered to the words that the tokens
hold. Every symbol the mathematics uses is defined first; a symbol without a meaning is an
error, so a new node or parameter cannot reach the page undefined.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symbolic.derive import derive, grad_symbol
from symbolic.indexform import kind_of
from symbolic.model import CLASSIFIER_PARAMS, KINDS, G, K, Model, P, V, Y

#: What each symbol that is neither a parameter nor a node of a model means.
MEANINGS = {
    "L": "number of tokens of the sentence",
    "d": "embedding width",
    "d_key": "key and query width",
    "C": "number of classes",
    "H": "hidden width of the two-layer classifier",
    "P": "class probabilities, $P_c = e^{z_c} / \\sum_e e^{z_e}$ (softmax of the logits)",
    "Y": "the sentence's label as a one-hot vector ($Y_c = 1$ for its class, else 0)",
    "G": "$\\partial \\ell / \\partial h_k$ of an arbitrary differentiable loss of the "
         "context, left symbolic",
    "Heaviside": "the Heaviside step: 1 for $x > 0$, 0 for $x < 0$ (the derivative of "
                 "$\\max(x, 0)$)",
}
#: The index letters of each kind, and the data set's.
INDEX_MEANINGS = {"token": "tokens of the sentence", "embedding": "embedding coordinates",
                  "key": "key coordinates", "class": "classes", "hidden": "hidden units"}
#: Word-level names of the per-token parameters (the names of the conservation laws).
WORD_LEVEL = {V: "embedding", K: "key"}


def _title(model: Model) -> str:
    if model.loss == "abstract":
        return "Any loss of the context (the classifier left open)"
    return {"linear": "Linear classifier, cross-entropy (Attn-FC, Attn-TC)",
            "mlp": "Two-layer ReLU classifier, cross-entropy (Attn-TL)"}[model.classifier]


def _lhs(x, of="\\ell") -> str:
    ref = x.base[x.indices] if x.indices else x.base
    return f"\\frac{{\\partial {of}}}{{\\partial {sp.latex(ref)}}}"


# --- factoring the closed forms -------------------------------------------------------------

def _sum_parts(term):
    """``(coefficient, factors outside the sum, the sum or None)`` of one term."""
    coeff, rest = term.as_coeff_Mul()
    factors = sp.Mul.make_args(rest)
    sums = [f for f in factors if isinstance(f, sp.Sum)]
    if len(sums) > 1:
        return None
    return coeff, [f for f in factors if not isinstance(f, sp.Sum)], (sums or [None])[0]


def _nested(term, common: set):
    """The term with the summed indices outside ``common`` moved inward, around the factors
    that read them (``Σ_{k,j} A_k B_{jk} = Σ_k A_k Σ_j B_{jk}``)."""
    coeff, outside, total = _sum_parts(term)
    if total is None:
        return term
    extra = [lim for lim in total.limits if lim[0] not in common]
    names = {lim[0] for lim in extra}
    factors = sp.Mul.make_args(total.function)
    inner = sp.Mul(*[f for f in factors if f.free_symbols & names])
    outer = sp.Mul(*[f for f in factors if not f.free_symbols & names])
    return coeff * sp.Mul(*outside) * outer * (sp.Sum(inner, *extra) if extra else 1)


def _signs_out(expr):
    """``−(−A + B)(C − D)`` as ``(A − B)(C − D)``: each sum written with its leading term
    positive, the signs collected into the coefficient."""
    coeff, factors = expr.as_coeff_mul()
    out = []
    for f in factors:
        if isinstance(f, sp.Add) and f.could_extract_minus_sign():
            coeff, f = -coeff, -f
        out.append(f)
    if coeff != 1:
        out.insert(0, coeff)
    return sp.Mul(*out, evaluate=False) if len(out) > 1 else out[0]


def _fold_nodes(expr, model: Model):
    """Sums that are a node's definition (e.g. ``Σ_j a_j V_{j,k}``) written as the node."""
    defined = [n for n in model.nodes if isinstance(n.definition, sp.Sum)
               and len(n.definition.limits) == 1]
    found = {}
    for total in expr.atoms(sp.Sum):
        if len(total.limits) != 1:
            continue
        (x, *rng), = total.limits
        for node in defined:
            (y, *own), = node.definition.limits
            if own == rng and total.function.xreplace({x: y}) == node.definition.function:
                found[total] = node.ref
    return expr.xreplace(found)


def factored(expr, model: Model):
    """A closed form as one sum over the indices every term sums, common factors pulled out
    and sums that are a node's definition written as that node."""
    terms = sp.Add.make_args(sp.expand(expr))
    parts = [_sum_parts(t) for t in terms]
    if any(p is None for p in parts):
        return expr
    limits = [{lim[0]: lim for lim in (s.limits if s is not None else ())} for *_, s in parts]
    common = set.intersection(*(set(lims) for lims in limits))
    body = sp.factor(sp.Add(*(_nested(t, common) for t in terms)))
    body = _signs_out(_fold_nodes(body, model))
    order = [limits[0][x] for x in limits[0] if x in common]
    return sp.Sum(body, *order) if order else body


# --- symbols --------------------------------------------------------------------------------

def _bases(expr) -> set[str]:
    """Names of the symbols, indexed bases and functions an expression reads."""
    names = {str(x.base) for x in expr.atoms(sp.Indexed)}
    names |= {str(x) for x in expr.free_symbols
              if not isinstance(x, (sp.Indexed, sp.IndexedBase)) and kind_of(x) is None}
    names |= {type(f).__name__ for f in expr.atoms(sp.Function)}
    return names


def _symbol_table(models) -> list[tuple[str, str, str]]:
    """(name, LaTeX, meaning) of every symbol the mathematics may use, parameters first."""
    rows, seen = [], set()

    def add(name, latex, meaning):
        if name not in seen:
            seen.add(name)
            rows.append((name, latex, meaning))
    for model in models:
        for p in model.params:
            word = WORD_LEVEL.get(p.base)
            meaning = (f"the {word} of the word at token $i$ (a copy of "
                       f"${sp.latex(p.base[sp.Symbol('w'), p.indices[1]])}$, the {word} of "
                       f"word $w$)" if word else p.meaning)
            add(str(p.base), sp.latex(p.ref), meaning)
    for model in models:
        for node in model.nodes:
            add(node.name, sp.latex(node.ref),
                f"the {node.meaning} (its definition opens each model's section)")
    for model in models:
        der = derive(model)
        for name in der.order:
            x = der.node(name) if name in {n.name for n in model.nodes} else der.param(name)
            sym = grad_symbol(x)
            add(str(sym), sp.latex(sym[x.indices] if x.indices else sym),
                f"$\\partial \\ell / \\partial {sp.latex(x.ref)}$")
    c, k = sp.Symbol("c"), sp.Symbol("k")
    for name, latex in (("P", sp.latex(P[c])), ("Y", sp.latex(Y[c])), ("G", sp.latex(G[k])),
                        ("Heaviside", "\\theta(x)")):
        add(name, latex, MEANINGS[name])
    for kind in KINDS:
        add(str(kind.size), sp.latex(kind.size), MEANINGS[str(kind.size)])
    return rows


#: Functions every reader knows.
STANDARD = {"exp", "log", "Max"}


def _check_defined(exprs, rows) -> None:
    missing = set().union(*(_bases(e) for e in exprs)) - {r[0] for r in rows} - STANDARD
    if missing:
        raise ValueError(f"the rendered mathematics uses {sorted(missing)} without a meaning; "
                         f"add it to symbolic.render.MEANINGS")


# --- sections -------------------------------------------------------------------------------

def _MODELS() -> list[Model]:
    return [Model(c) for c in sorted(CLASSIFIER_PARAMS)] + [Model("linear", "abstract")]


@cache
def closed_forms(model: Model) -> dict:
    """Per parameter: its per-sentence gradient in closed form, as derived and factored."""
    der = derive(model)
    raw = {p.name: der.inlined(p.name).to_sympy() for p in model.params}
    return {name: (expr, factored(expr, model)) for name, expr in raw.items()}


@cache
def _sections(model: Model):
    der = derive(model)
    exprs, defs, grads, closed, flows = [], [], [], [], []
    for node in model.nodes:
        exprs.append(node.definition)
        defs.append(f"{sp.latex(node.ref)} = {sp.latex(node.definition)}")
    for name in der.order:
        x = der.node(name) if name in {n.name for n in model.nodes} else der.param(name)
        sym = grad_symbol(x)
        value = der.grads[name].to_sympy()
        exprs.append(value)
        grads.append(f"{sp.latex(sym[x.indices] if x.indices else sym)} = {_lhs(x)} = "
                     f"{sp.latex(value)}")
    for p in model.params:
        value = closed_forms(model)[p.name][1]
        exprs.append(value)
        closed.append(f"{_lhs(p)} = {sp.latex(value)}")
        flows.append(_flow_line(p))
    return exprs, [("Definitions (one sentence of L tokens)", defs),
                   ("Backward pass, node by node", grads),
                   ("Per-sentence gradients in closed form", closed),
                   ("The flow over a data set", flows)]


def _flow_line(p) -> str:
    """``dθ/dτ = −(1/|D|) Σ_χ ∂ℓ_χ/∂θ``, per-token gradients scattered to their words."""
    per_sentence = _lhs(p, of="\\ell_\\chi")
    if not p.per_token:
        return (f"\\frac{{d {sp.latex(p.ref)}}}{{d\\tau}} = -\\frac{{1}}{{|D|}} "
                f"\\sum_{{\\chi \\in D}} {per_sentence}")
    word = sp.latex(p.base[(sp.Symbol("w"),) + p.indices[1:]])
    return (f"\\frac{{d {word}}}{{d\\tau}} = -\\frac{{1}}{{|D|}} \\sum_{{\\chi \\in D}} "
            f"\\sum_{{i=0}}^{{L_\\chi - 1}} \\omega_\\chi[i, w] \\, {per_sentence}")


DATA_SET_TEXT = (
    "Training follows the gradient flow of the mean loss over the data set $D$ in flow time "
    "$\\tau$ (gradient descent with learning rate $\\eta$ takes $\\tau = \\eta \\times$ "
    "steps), $d\\theta/d\\tau = -\\nabla_\\theta \\frac{1}{|D|} \\sum_{\\chi \\in D} "
    "\\ell_\\chi$ on the parameters that train, and $0$ on frozen ones. Sentence $\\chi$ has "
    "$L_\\chi$ tokens and loss $\\ell_\\chi$; it reads the embedding and key of word $w$ at "
    "every token $i$ that holds it ($\\omega_\\chi[i, w] = 1$, else 0), so its per-token "
    "gradients are scattered back to their words, while shared parameters add up the "
    "sentences' gradients.")


def render(fmt: str) -> str:
    """All derivations, as ``"md"`` (Markdown, $$-math) or ``"tex"`` (a LaTeX document)."""
    if fmt not in ("md", "tex"):
        raise ValueError(f"unknown render format {fmt!r}; expected 'md' or 'tex'")
    models = _MODELS()
    rows = _symbol_table(models)
    sections, exprs = [], []
    for model in models:
        used, blocks = _sections(model)
        exprs += used
        sections.append((_title(model), blocks))
    _check_defined(exprs, rows)
    intro = ("Derived by SymPy from the model's definition (symbolic/derive.py); the same "
             "expressions are printed into numeric/_generated/. The gradients of one sentence "
             "are taken node by node, each upstream gradient $g_X = \\partial \\ell / "
             "\\partial X$ kept as its own symbol, then substituted away for the closed forms.")
    if fmt == "md":
        return _markdown(intro, rows, sections)
    return _latex(intro, rows, sections)


def _markdown(intro, rows, sections) -> str:
    out = ["# The derived gradient flow", "", intro, "", "## Symbols", "",
           "| symbol | meaning |", "|---|---|"]
    out += [_symbol_row(latex, meaning) for name, latex, meaning in rows]
    out += ["", f"Indices: {_indices()}"]
    for title, blocks in sections:
        out += ["", f"## {title}"]
        for head, eqs in blocks:
            out += ["", f"### {head}", ""]
            if head.startswith("The flow"):
                out += [DATA_SET_TEXT, ""]
            out += "\n\n".join(f"$$\n{e}\n$$" for e in eqs).splitlines()
    return "\n".join(out) + "\n"


def _indices() -> str:
    """The index letters of each kind and their ranges, as one sentence."""
    return "; ".join(f"${', '.join(x for x in kind.letters if x.isalpha())}$"
                     f" the {INDEX_MEANINGS[kind.name]} (0 to ${sp.latex(kind.size)} - 1$)"
                     for kind in KINDS) + "."


def _symbol_row(latex: str, meaning: str) -> str:
    return f"| ${latex}$ | {meaning} |"


def _latex(intro, rows, sections) -> str:
    out = ["\\documentclass{article}", "\\usepackage{amsmath,breqn}", "\\begin{document}",
           "\\section*{The derived gradient flow}", intro, "",
           "\\subsection*{Symbols}", "\\begin{description}"]
    out += [f"\\item[${latex}$] {meaning}" for name, latex, meaning in rows]
    out.append(f"\\item[Indices] {_indices()}")
    out.append("\\end{description}")
    for title, blocks in sections:
        out.append(f"\\section*{{{title}}}")
        for head, eqs in blocks:
            out.append(f"\\subsection*{{{head}}}")
            if head.startswith("The flow"):
                out.append(DATA_SET_TEXT)
            out += [f"\\begin{{dmath*}} {e} \\end{{dmath*}}" for e in eqs]
    return "\n".join(out + ["\\end{document}"]) + "\n"


def render_model(entry, fmt: str) -> str:
    """One model of the catalogue (or a researcher's), every loss it is printed for: its
    parameters and nodes with their meanings, the backward pass node by node."""
    if fmt not in ("md", "tex"):
        raise ValueError(f"unknown render format {fmt!r}; expected 'md' or 'tex'")
    rows = [(sp.latex(p.ref), f"{p.meaning} ("
             f"{'gathered per token by word id' if p.per_token else 'shared'})")
            for p in entry.model().params]
    sections = []
    for model in entry.printed():
        der = derive(model)
        rows += [(sp.latex(n.ref), n.meaning) for n in model.nodes
                 if (sp.latex(n.ref), n.meaning) not in rows]
        defs = [f"{sp.latex(n.ref)} = {sp.latex(n.definition)}" for n in model.nodes]
        grads = []
        for name in der.order:
            x = der.node(name) if name in {n.name for n in model.nodes} else der.param(name)
            sym = grad_symbol(x)
            grads.append(f"{sp.latex(sym[x.indices] if x.indices else sym)} = {_lhs(x)} = "
                         f"{sp.latex(der.grads[name].to_sympy())}")
        sections.append((f"{model.name}, {model.loss}",
                         [("Definitions (one sentence of L tokens)", defs),
                          ("Backward pass, node by node", grads)]))
    intro = (f"{entry.summary[0].upper()}{entry.summary[1:]}. Derived by SymPy from the "
             f"model's description; the same expressions are printed as its NumPy engine. "
             f"$g_X = \\partial \\ell / \\partial X$ is the upstream gradient of node $X$.")
    if fmt == "md":
        out = [f"# {entry.name}", "", intro, "", "## Symbols", "", "| symbol | meaning |",
               "|---|---|"] + [_symbol_row(latex, meaning) for latex, meaning in rows]
        for title, blocks in sections:
            out += ["", f"## {title}"]
            for head, eqs in blocks:
                out += ["", f"### {head}", ""] + "\n\n".join(
                    f"$$\n{e}\n$$" for e in eqs).splitlines()
        return "\n".join(out) + "\n"
    out = ["\\documentclass{article}", "\\usepackage{amsmath,breqn}", "\\begin{document}",
           f"\\section*{{{entry.name}}}", intro, "", "\\begin{description}"]
    out += [f"\\item[${latex}$] {meaning}" for latex, meaning in rows] + ["\\end{description}"]
    for title, blocks in sections:
        out.append(f"\\section*{{{title}}}")
        for head, eqs in blocks:
            out.append(f"\\subsection*{{{head}}}")
            out += [f"\\begin{{dmath*}} {e} \\end{{dmath*}}" for e in eqs]
    return "\n".join(out + ["\\end{document}"]) + "\n"

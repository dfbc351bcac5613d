"""The derivations as readable mathematics (Markdown with LaTeX, or a LaTeX document)."""

from __future__ import annotations

import sympy as sp

from symbolic.derive import derive, grad_symbol
from symbolic.model import CLASSIFIER_PARAMS, Model


def _lhs(x, of="\\ell") -> str:
    ref = x.base[x.indices] if x.indices else x.base
    return f"\\frac{{\\partial {of}}}{{\\partial {sp.latex(ref)}}}"


def _sections(model: Model):
    der = derive(model)
    title = (f"{model.classifier} classifier, cross-entropy" if model.loss == "cross-entropy"
             else "any differentiable loss (G = ∂ℓ/∂h left symbolic)")
    defs = [f"{sp.latex(n.ref)} = {sp.latex(n.definition)}" for n in model.nodes]
    grads = []
    for name in der.order:
        x = (der.node(name) if name in {n.name for n in model.nodes} else der.param(name))
        sym = grad_symbol(x)
        label = sp.latex(sym[x.indices] if x.indices else sym)
        grads.append(f"{label} = {_lhs(x)} = {sp.latex(der.grads[name].to_sympy())}")
    closed = [f"{_lhs(p)} = {sp.latex(der.inlined(p.name).to_sympy())}" for p in model.params]
    return title, defs, grads, closed


def render(fmt: str) -> str:
    """All derivations, as ``"md"`` (Markdown, $$-math) or ``"tex"`` (a LaTeX document)."""
    if fmt not in ("md", "tex"):
        raise ValueError(f"unknown render format {fmt!r}; expected 'md' or 'tex'")
    models = [Model(c) for c in sorted(CLASSIFIER_PARAMS)] + [Model("linear", "abstract")]
    parts = []
    for model in models:
        title, defs, grads, closed = _sections(model)
        blocks = [("Definitions (one sentence, tokens i < L)", defs),
                  ("Backward pass, node by node (g_X = ∂ℓ/∂X)", grads),
                  ("Parameter gradients in closed form", closed)]
        if fmt == "md":
            parts.append(f"## {title}\n")
            for head, eqs in blocks:
                parts.append(f"### {head}\n\n" + "\n\n".join(f"$$ {e} $$" for e in eqs) + "\n")
        else:
            parts.append(f"\\section*{{{title}}}\n")
            for head, eqs in blocks:
                parts.append(f"\\subsection*{{{head}}}\n" + "\n".join(
                    f"\\begin{{dmath*}} {e} \\end{{dmath*}}" for e in eqs) + "\n")
    intro = ("Derived by SymPy from the model's definition (symbolic/derive.py); the same "
             "expressions are printed into numeric/_generated/.")
    if fmt == "md":
        return "# attnflow — the derived gradient flow\n\n" + intro + "\n\n" + "\n".join(parts)
    return ("\\documentclass{article}\n\\usepackage{amsmath,breqn}\n\\begin{document}\n"
            + intro + "\n\n" + "\n".join(parts) + "\\end{document}\n")


def render_model(entry, fmt: str) -> str:
    """One model of the catalogue (or a researcher's), every loss it is printed for: its
    definitions, the backward pass node by node and the parameter gradients."""
    if fmt not in ("md", "tex"):
        raise ValueError(f"unknown render format {fmt!r}; expected 'md' or 'tex'")
    parts = []
    for model in entry.printed():
        der = derive(model)
        defs = [f"{sp.latex(n.ref)} = {sp.latex(n.definition)}" for n in model.nodes]
        grads = []
        for name in der.order:
            x = der.node(name) if name in {n.name for n in model.nodes} else der.param(name)
            sym = grad_symbol(x)
            label = sp.latex(sym[x.indices] if x.indices else sym)
            grads.append(f"{label} = {_lhs(x)} = {sp.latex(der.grads[name].to_sympy())}")
        blocks = [("Definitions (one sentence, tokens i < L)", defs),
                  ("Backward pass, node by node (g_X = ∂ℓ/∂X)", grads)]
        title = f"{model.name}, {model.loss}"
        if fmt == "md":
            parts.append(f"## {title}\n")
            for head, eqs in blocks:
                parts.append(f"### {head}\n\n" + "\n\n".join(f"$$ {e} $$" for e in eqs) + "\n")
        else:
            parts.append(f"\\section*{{{title}}}\n")
            for head, eqs in blocks:
                parts.append(f"\\subsection*{{{head}}}\n" + "\n".join(
                    f"\\begin{{dmath*}} {e} \\end{{dmath*}}" for e in eqs) + "\n")
    intro = (f"{entry.summary}. Derived by SymPy from the model's description; the same "
             f"expressions are printed as its NumPy engine.")
    if fmt == "md":
        return f"# attnflow — {entry.name}\n\n" + intro + "\n\n" + "\n".join(parts)
    return ("\\documentclass{article}\n\\usepackage{amsmath,breqn}\n\\begin{document}\n"
            + intro + "\n\n" + "\n".join(parts) + "\\end{document}\n")

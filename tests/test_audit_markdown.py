"""The audit's Markdown report shows every checked step whole, long expressions folded."""

import re

import sympy as sp

from proofs import audit
from proofs.kernel import check_theorem
from proofs.registry import all_theorems

LONG = sp.latex(sp.Add(*(sp.Symbol(f"x_{n}") * sp.exp(sp.Symbol(f"y_{n}") - 1)
                         for n in range(60))) * sp.Symbol("z") - sp.Symbol("w"))


def unfolded(block: str) -> str:
    body = block.removeprefix("\\begin{aligned}\n").removesuffix("\n\\end{aligned}")
    return "".join(line.removeprefix("& ").removesuffix(" \\\\") for line in body.split("\n"))


def test_a_long_expression_is_folded_into_lines_and_keeps_every_character():
    folded = audit.fold_latex(LONG, width=80)
    lines = folded.splitlines()
    assert lines[0] == "\\begin{aligned}" and len(lines) > 10
    assert all(len(line) < 200 for line in lines)
    sized = LONG.replace("\\left(", "\\Bigl(").replace("\\right)", "\\Bigr)")
    assert unfolded(folded).replace(" ", "") == sized.replace(" ", "")
    assert audit.fold_latex("a + b", width=80) == "a + b"


def test_folding_never_breaks_inside_a_group_or_an_environment():
    inside = "\\frac{" + " + ".join(f"a_{n}" for n in range(80)) + "}{b} + c"
    matrix = ("\\begin{matrix}" + " - ".join(f"m_{n}" for n in range(80)) + "\\end{matrix}"
              " - d")
    for latex in (inside, matrix):
        lines = audit.fold_latex(latex, width=40).splitlines()
        assert lines[-2:] in (["& + c", "\\end{aligned}"], ["& - d", "\\end{aligned}"])


def test_every_step_of_a_theorem_with_long_claims_is_displayed():
    theorem = next(t for t in all_theorems() if t.name == "softmax-jacobian")
    outcome = check_theorem(theorem)
    assert max(len(x) for s in outcome.steps for x in s.latex) > 2000
    text = "\n".join(audit._markdown_theorem(1, outcome))
    assert "too long" not in text
    # the 4 × 4 instance of the Jacobian, entry by entry
    assert len(re.findall(r"\\text\{n = 4:\}\\quad \\text\{entry \}", text)) == 16
    assert text.count("$$") == 2 * sum(
        len(audit._shown(s)) for s in outcome.steps)

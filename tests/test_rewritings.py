"""The registry of rewritings: each entry preserves the value of its examples at random
points, and the test that says so catches a rewriting that does not (e ↦ 0)."""

import random

import pytest
import sympy as sp

from proofs import registry, rewritings
from proofs.derivations import QQ, norm2, q, r
from proofs.kernel import Normalised

registry.all_theorems()          # theorem modules register their own rewritings on import


def _evaluate(expr, seed: int):
    """A number: sizes (positive integer symbols) 3, free indices 1, then random values for
    every other symbol and indexed entry (positive where declared so)."""
    expr = expr.xreplace({QQ: norm2(q, r)})
    sizes = {s: 3 for s in expr.free_symbols
             if isinstance(s, sp.Symbol) and s.is_integer and s.is_positive}
    indices = {s: 1 for s in expr.free_symbols
               if isinstance(s, sp.Symbol) and s.is_integer and s not in sizes}
    expr = expr.xreplace({QQ: norm2(q, r)})            # the abbreviation ‖q‖² = Σ_r q_r²
    expr = expr.subs(sizes).subs(indices).doit()
    values = {}
    for atom in sorted(expr.atoms(sp.Indexed, sp.Symbol), key=sp.default_sort_key):
        if isinstance(atom, sp.Symbol) and any(atom == x.base.label
                                               for x in expr.atoms(sp.Indexed)):
            continue
        base = atom.base.label if isinstance(atom, sp.Indexed) else atom
        # the same atom gets the same value before and after the rewriting
        value = random.Random(f"{seed}:{sp.srepr(atom)}").uniform(0.2, 2.0)
        values[atom] = value if (base.is_nonnegative or base.is_positive) else value - 1.1
    return complex(sp.N(expr.xreplace(values)))


def preserves_values(rewrite, examples, points: int = 3) -> bool:
    for example in examples:
        after = rewrite(example)
        for seed in range(points):
            before_value, after_value = _evaluate(example, seed), _evaluate(after, seed)
            if abs(before_value - after_value) > 1e-9 * max(1.0, abs(before_value)):
                return False
    return True


@pytest.mark.parametrize("name", sorted(set(rewritings.REGISTRY) - set(rewritings.SUFFICIENT)))
def test_every_registered_rewriting_preserves_the_value_of_its_examples(name):
    assert rewritings.EXAMPLES[name]
    assert preserves_values(rewritings.REGISTRY[name], rewritings.EXAMPLES[name]), name


def test_the_value_test_catches_a_rewriting_that_is_not_exact():
    x = sp.Symbol("x", positive=True)
    assert not preserves_values(lambda e: sp.S.Zero, [x + 1])
    assert not preserves_values(lambda e: e.xreplace({x: 2 * x}), [x ** 2])


def test_a_name_cannot_be_registered_twice_or_without_examples():
    with pytest.raises(ValueError, match="registered twice"):
        rewritings.register("expand", "again", sp.expand, examples=(sp.S.One,))
    with pytest.raises(ValueError, match="needs examples"):
        rewritings.register("new-rewriting", "no examples", sp.expand)


def test_chains_and_substitutions_are_described_by_data():
    chain = rewritings.rewriting("expand", "cancel")
    assert chain.kind == "chain" and [p.name for p in chain.parts] == ["expand", "cancel"]
    x = sp.Symbol("x")
    sub = rewritings.substitution("A", {x: 2})
    assert sub(x + 1) == 3 and sub.source == "A"
    with pytest.raises(KeyError, match="no registered rewriting"):
        rewritings.rewriting("e -> 0")


def test_opening_sums_is_a_sufficient_condition_used_only_where_it_is_sound():
    open_sums = rewritings.REGISTRY["open sums"]
    i = sp.Symbol("i", integer=True, nonnegative=True)
    n, m = sp.symbols("n m", integer=True, positive=True)
    a, b = sp.IndexedBase("a"), sp.IndexedBase("b")
    x = sp.Symbol("x")
    # same ranges, summands cancel: the claim Σ (a+b)² − Σ a² − Σ (2ab + b²) = 0 opens to 0
    same = (sp.Sum((a[i] + b[i]) ** 2, (i, 0, n - 1)) - sp.Sum(a[i] ** 2, (i, 0, n - 1))
            - sp.Sum(2 * a[i] * b[i] + b[i] ** 2, (i, 0, n - 1)))
    assert open_sums(same) == 0
    # different ranges, a term outside the sums, or a factor on the dummy: left unopened
    for unsound in (sp.Sum(a[i], (i, 0, n - 1)) - sp.Sum(a[i], (i, 0, m - 1)),
                    sp.Sum(a[i], (i, 0, n - 1)) - a[i],
                    i * sp.Sum(a[i], (i, 0, n - 1)) - sp.Sum(i * a[i], (i, 0, n - 1))):
        assert open_sums(unsound) != 0 and open_sums(unsound).has(sp.Sum)
    assert open_sums(x * (x + 1) - x ** 2 - x) == 0          # no sums: only expanded


def _decided(claim):
    """The kernel's verdict on one symbolic step whose check returns ``claim``."""
    from proofs.kernel import Step, Theorem, check_theorem
    step = Step("claim", "the claim under test", "symbolic", lambda scope: claim)
    (outcome,) = check_theorem(Theorem("probe", "probe", "probe", (), (step,))).steps
    return outcome


def test_logarithms_are_expanded_only_where_the_arguments_are_positive():
    expand_logs = rewritings.rewriting("expand logarithms")
    a, b = sp.symbols("a b", negative=True)
    # log(ab) − log a − log b = 2πi for negative a, b: not an identity, so never decided
    false = sp.Eq(sp.log(a * b), sp.log(a) + sp.log(b), evaluate=False)
    assert not _decided(Normalised(false, expand_logs)).ok
    # real logits: e^z > 0, so log(e^z / Σ e^z) = z − log Σ e^z is expanded and decided
    z1, z2 = sp.symbols("z1 z2", real=True)
    total = sp.exp(z1) + sp.exp(z2)
    sound = sp.Eq(sp.log(sp.exp(z1) / total), z1 - sp.log(total), evaluate=False)
    assert _decided(Normalised(sound, expand_logs)).ok

"""A small proof kernel: theorems as named assumptions and a sequence of checked steps.

A step claims one thing and says how the claim is checked:

- ``symbolic``: its check returns a SymPy expression that must be exactly 0, or a relation
  (``Eq(derived, claimed)``, an inequality) that SymPy shows to hold, at general sizes;
- ``instance``: its check returns ``{label: expression or relation}`` on explicit small sizes,
  every one of which must hold exactly;
- ``numeric``: its check returns a :class:`Measured` error and the tolerance it must meet;
- ``cited``: a standard fact, carried as a precise :class:`Citation` (quotation and source);
- ``exact``: its check returns a :class:`proofs.exact.ExactCheck`, a conservation statement
  checked on the model written out at small sizes, independently of the index form; a
  theorem with such a step must state exactly what that step checked.

A step names what it uses (assumptions of its theorem and earlier steps). Its check receives a
:class:`Scope` through which, and only through which, it reads those: an assumption's content
or an earlier step's established result. Anything else — a later step, an undeclared
assumption, an unknown name — is out of scope and the step is rejected. The kernel also
enforces that

- a check reaches the derivation of a model (``symbolic.derive.derive``, ``flow``,
  ``Derivation.inlined``) only when an assumption the step uses grants that model
  (``Assumption.derivations``);
- a check does not call another step's check (it reads that step's result through
  ``scope.step``);
- a claim decided after a rewriting (:class:`Normalised`) uses one from
  ``proofs.rewritings.REGISTRY``, or substitutes equalities its scope gave it;
- every ``content`` assumption has content, and some step reads it.

Checks are callables re-run on every :func:`check_theorem`; nothing is cached between runs.
"""

from __future__ import annotations

import contextlib
import math
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symbolic.derive import DerivationAccessError, derivations_granted

KINDS = ("symbolic", "instance", "numeric", "cited", "exact")
PASSED, FAILED, CITED = "passed", "failed", "cited"


class ScopeError(Exception):
    """A step read something that is not in its scope."""


@dataclass(frozen=True)
class Assumption:
    """A named hypothesis; ``content`` is what steps that use it may read (e.g. substitutions).

    ``derivations``: the models (``symbolic.model.Model``) whose derivation and flow a step
    using this assumption may read. ``kind``: ``"content"`` when steps use it through its
    content (a substitution, an equality, a sign), ``"prose"`` when it is only stated (the
    audit lists it as trusted, never as checked).
    """

    name: str
    statement: str
    content: Any = None
    derivations: tuple = ()
    kind: str = "content"

    def __post_init__(self):
        _check_name("assumption", self.name)
        if not self.statement.strip():
            raise ValueError(f"assumption {self.name!r} has an empty statement")
        if self.kind not in ("content", "prose"):
            raise ValueError(f"assumption {self.name!r}: kind {self.kind!r} is not "
                             "'content' or 'prose'")


@dataclass(frozen=True)
class Citation:
    """A standard fact quoted precisely, and where it is stated."""

    quote: str
    source: str

    def __post_init__(self):
        if not self.quote.strip() or not self.source.strip():
            raise ValueError("a citation needs both a quotation and a source")


@dataclass(frozen=True)
class Measured:
    """Outcome of a ``numeric`` check: the error measured and the tolerance it had to meet."""

    error: float
    tolerance: float
    detail: str = ""


@dataclass(frozen=True)
class Normalised:
    """A claim shown as stated and decided after an exact rewriting ``normalise`` (named by
    ``how``) applied to both of its sides, e.g. collapsing Kronecker deltas over a range.
    The kernel accepts only rewritings of ``proofs.rewritings`` (registered, or substitutions
    of what the step read)."""

    claim: Any
    normalise: Callable[[Any], Any]
    how: str = ""

    def __post_init__(self):
        if not self.how:
            object.__setattr__(self, "how", getattr(self.normalise, "meaning", "") or
                               getattr(self.normalise, "__name__", "a rewriting"))

    def decided(self):
        """The claim with both sides rewritten: what :func:`holds` decides.

        A *sufficient* rewriting R (``proofs.rewritings.SUFFICIENT``: R(e) = 0 ⇒ e = 0, but
        R(e) ≠ e) decides ``lhs = rhs`` as R(lhs − rhs) = 0, one expression: R(lhs) = R(rhs)
        would not give lhs = rhs (Σ_{x<N} y opens to y, yet equals N y). It decides no other
        relation, since nothing is known of the sign of R(lhs − rhs)."""
        from proofs import rewritings  # imported late: rewritings registers proofs' own forms
        if rewritings.sufficient(self.normalise):
            return self._decided_as_difference()
        if isinstance(self.claim, sp.core.relational.Relational):
            return self.claim.func(self.normalise(self.claim.lhs),
                                   self.normalise(self.claim.rhs), evaluate=False)
        return self.normalise(self.claim)

    def _decided_as_difference(self):
        """R(lhs − rhs) for an equality, R(claim) for an expression claimed to be 0."""
        if isinstance(self.claim, sp.Equality):
            return self.normalise(self.claim.lhs - self.claim.rhs)
        if isinstance(self.claim, sp.core.relational.Relational):
            raise ValueError(f"{self.how!r} is a sufficient condition for an expression to be "
                             f"0, not a value-preserving rewriting: it cannot decide the "
                             f"relation {type(self.claim).__name__}")
        return self.normalise(self.claim)


@dataclass(frozen=True)
class Step:
    """One claim of a proof, how it is checked, and the names it uses."""

    name: str
    claim: str
    kind: str
    check: Callable[[Scope], Any] | None = None
    uses: tuple[str, ...] = ()
    citation: Citation | None = None

    def __post_init__(self):
        _check_name("step", self.name)
        if self.kind not in KINDS:
            raise ValueError(f"step {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if not self.claim.strip():
            raise ValueError(f"step {self.name!r} has an empty claim")
        if isinstance(self.uses, str) or not all(isinstance(u, str) for u in self.uses):
            raise ValueError(f"step {self.name!r}: uses must be a tuple of names, "
                             f"got {self.uses!r}")
        if self.kind == "cited":
            if self.citation is None or self.check is not None:
                raise ValueError(f"cited step {self.name!r} needs a citation and no check")
        elif not callable(self.check) or self.citation is not None:
            raise ValueError(f"{self.kind} step {self.name!r} needs a callable check "
                             f"and no citation")


@dataclass(frozen=True)
class Theorem:
    """A statement, the assumptions it rests on and the steps that establish it."""

    name: str
    title: str
    statement: str
    assumptions: tuple[Assumption, ...]
    steps: tuple[Step, ...]

    def __post_init__(self):
        _check_name("theorem", self.name)
        if not self.steps:
            raise ValueError(f"theorem {self.name!r} has no steps")
        names = [a.name for a in self.assumptions] + [s.name for s in self.steps]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"theorem {self.name!r}: names used twice: {duplicated}")

    def assumption(self, name: str) -> Assumption:
        for a in self.assumptions:
            if a.name == name:
                return a
        raise KeyError(name)


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"{what} name must be a non-empty string without spaces, "
                         f"got {name!r}")


class Scope:
    """What one step may read: the assumptions and earlier steps named in its ``uses``."""

    def __init__(self, step: Step, assumptions: Mapping[str, Assumption],
                 results: Mapping[str, Any]):
        self._step, self._assumptions, self._results = step, assumptions, results
        #: name → value of everything the check read (what substitutions may rely on).
        self.reads: dict[str, Any] = {}
        #: the names among ``reads`` that are earlier steps (checked when they ran).
        self.steps_read: set[str] = set()

    def _allowed(self, name: str) -> None:
        if name not in self._step.uses:
            raise ScopeError(f"step {self._step.name} reads {name!r}, which it does not "
                             f"declare in its uses {self._step.uses}")

    def assumption(self, name: str) -> Any:
        """The content of a declared assumption of the theorem."""
        self._allowed(name)
        if name not in self._assumptions:
            raise ScopeError(f"step {self._step.name} reads assumption {name!r}, which the "
                             f"theorem does not declare")
        self.reads[name] = self._assumptions[name].content
        return self.reads[name]

    def step(self, name: str) -> Any:
        """The result an earlier step established (what its check returned)."""
        self._allowed(name)
        if name not in self._results:
            raise ScopeError(f"step {self._step.name} reads {name!r}, which is not an "
                             f"earlier step")
        self.reads[name] = self._results[name]
        self.steps_read.add(name)
        return self.reads[name]


@dataclass(frozen=True)
class StepOutcome:
    """What re-checking one step gave: status, a one-line detail, rendered maths, time, and
    the models whose derivation its check read."""

    theorem: str
    step: Step
    status: str
    detail: str
    latex: tuple[str, ...]
    seconds: float
    derivations: tuple = ()
    value: Any = field(default=None, compare=False, repr=False)
    #: The names the check read through its scope (assumptions and earlier steps).
    reads: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    @property
    def message(self) -> str:
        return (f"theorem {self.theorem}, step {self.step.name} ({self.step.kind}): "
                f"{self.status} — {self.detail}")


@dataclass(frozen=True)
class TheoremOutcome:
    theorem: Theorem
    steps: tuple[StepOutcome, ...] = field(default_factory=tuple)
    #: Theorem-level problems, each naming the assumption at fault.
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and not self.problems

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def failures(self) -> list[str]:
        return ([f"theorem {self.theorem.name}, {p}" for p in self.problems]
                + [s.message for s in self.steps if not s.ok])


def scope_problems(theorem: Theorem, index: int) -> list[str]:
    """Why step ``index`` may not use what it names: later steps, undeclared or unknown names;
    and whether its check calls another step's check instead of reading its result."""
    step = theorem.steps[index]
    declared = {a.name for a in theorem.assumptions}
    position = {s.name: k for k, s in enumerate(theorem.steps)}
    problems = []
    for name in step.uses:
        if name in declared:
            continue
        if name not in position:
            problems.append(f"uses {name!r}, which is neither an assumption declared by "
                            f"theorem {theorem.name} nor one of its steps")
        elif position[name] >= index:
            problems.append(f"uses step {name!r}, which is not an earlier step "
                            f"(it is step {position[name] + 1}, this is step {index + 1})")
    return problems + direct_calls(theorem, index)


def direct_calls(theorem: Theorem, index: int) -> list[str]:
    """Steps whose check the check of step ``index`` reaches by Python reference (a global
    name, a closure, a nested function) instead of reading its result through ``scope.step``."""
    step = theorem.steps[index]
    if step.check is None:
        return []
    own = _code_of(step.check)
    reached = _codes_reachable(step.check)
    return [f"its check calls the check of step {other.name!r} directly; read that step's "
            f"result through scope.step({other.name!r})"
            for other in theorem.steps
            if other is not step and other.check is not None
            and _code_of(other.check) is not own and _code_of(other.check) in reached]


def _code_of(fn):
    return getattr(fn, "__code__", None)


#: Modules whose functions are never a step's check (not followed when looking for calls).
_LIBRARIES = ("sympy", "numpy", "scipy", "symbolic", "numeric", "builtins", "functools")


def _codes_reachable(fn, depth: int = 4) -> set:
    """Code objects ``fn`` may run: its own, nested ones, and those of the functions it names
    (globals, closure cells) outside the libraries and layers below ``proofs``, to ``depth``
    levels."""
    seen: set = set()

    def visit(code, namespace, cells, level):
        if code in seen:
            return
        seen.add(code)
        named = [namespace.get(n) for n in code.co_names] + list(cells)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit(const, namespace, (), level)
        if level >= depth:
            return
        for obj in named:
            if isinstance(obj, types.FunctionType) and not str(obj.__module__).startswith(
                    _LIBRARIES):
                visit(obj.__code__, obj.__globals__, _cell_values(obj), level + 1)
    code = _code_of(fn)
    if code is not None:
        visit(code, getattr(fn, "__globals__", {}), _cell_values(fn), 0)
    return seen


def _cell_values(fn) -> list:
    out = []
    for cell in getattr(fn, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell (a name not yet bound)
            out.append(cell.cell_contents)
    return out


def assumption_problems(theorem: Theorem, read: set[str]) -> list[str]:
    """A ``content`` assumption must carry content and be read by some step."""
    problems = []
    for a in theorem.assumptions:
        if a.kind != "content":
            continue
        if _trivial(a.content):
            problems.append(f"assumption {a.name}: declared as content but its content "
                            f"({a.content!r}) is empty; give it content a step uses, or mark "
                            f"it kind='prose'")
        elif a.name not in read:
            problems.append(f"assumption {a.name}: declared as content but no step reads it")
    return problems


def _trivial(content) -> bool:
    if content is None or isinstance(content, (bool, sp.logic.boolalg.BooleanAtom)):
        return True
    if isinstance(content, (str, bytes, Mapping, list, tuple, set, frozenset)):
        return len(content) == 0
    return False


def check_theorem(theorem: Theorem) -> TheoremOutcome:
    """Re-run every step's check in order; a step fails if anything it uses failed."""
    assumptions = {a.name: a for a in theorem.assumptions}
    results: dict[str, Any] = {}
    failed: set[str] = set()
    read: set[str] = set()
    outcomes = []
    for index, step in enumerate(theorem.steps):
        start = time.perf_counter()
        problems = scope_problems(theorem, index)
        broken = [u for u in step.uses if u in failed]
        reached: set = set()
        scope = Scope(step, assumptions, results)
        if problems:
            status, detail, latex, value = FAILED, "out of scope: " + "; ".join(problems), (), None
        elif broken:
            status, detail, latex, value = FAILED, f"uses failed step(s) {broken}", (), None
        else:
            status, detail, latex, value = _run(step, scope, _granted(step, assumptions),
                                                reached)
            read |= set(scope.reads)
        if status == FAILED:
            failed.add(step.name)
        else:
            results[step.name] = value
        outcomes.append(StepOutcome(theorem.name, step, status, detail, latex,
                                    time.perf_counter() - start,
                                    tuple(sorted(reached, key=repr)), value,
                                    tuple(scope.reads)))
    return TheoremOutcome(theorem, tuple(outcomes),
                          tuple(assumption_problems(theorem, read)
                                + statement_problems(theorem, outcomes)))


def statement_problems(theorem: Theorem, outcomes) -> list[str]:
    """A theorem with an ``exact`` step states exactly what that step checked (the statement
    built from the content it read): prose cannot claim more, or something else."""
    out = []
    for outcome in outcomes:
        if outcome.step.kind != "exact" or outcome.status != PASSED:
            continue
        checked = getattr(outcome.value, "statement", None)
        if checked != theorem.statement:
            out.append(f"its statement differs from what step {outcome.step.name} checked: "
                       f"“{checked}”")
    return out


def _granted(step: Step, assumptions: Mapping[str, Assumption]) -> frozenset:
    """The models whose derivation the step may read: those its assumptions grant."""
    return frozenset(m for name in step.uses if name in assumptions
                     for m in assumptions[name].derivations)


def _run(step: Step, scope: Scope, granted: frozenset, reached: set):
    if step.kind == "cited":
        return CITED, f"cited from {step.citation.source}", (), step.citation
    try:
        with derivations_granted(granted, reached):
            value = step.check(scope)
    except ScopeError as exc:
        return FAILED, f"out of scope: {exc}", (), None
    except DerivationAccessError as exc:
        return FAILED, f"out of scope: step {step.name} {exc}", (), None
    except Exception as exc:  # a check that crashes is a step that does not hold
        return FAILED, f"check raised {type(exc).__name__}: {exc}", (), None
    refused = _rewriting_problems(value, scope.reads, scope.steps_read)
    if refused:
        return FAILED, "rewriting refused: " + "; ".join(refused), (), None
    verdict = {"symbolic": _judge_symbolic, "instance": _judge_instance,
               "numeric": _judge_numeric, "exact": _judge_exact}[step.kind]
    try:
        ok, detail, latex = verdict(value)
    except Exception as exc:  # deciding the claim crashed (e.g. in its rewriting): not shown
        return FAILED, f"deciding the claim raised {type(exc).__name__}: {exc}", (), None
    return (PASSED if ok else FAILED), detail, latex, value


def _rewriting_problems(value, reads, steps_read=()) -> list[str]:
    """Every normaliser of the claims a check returned must be an allowed rewriting (one of
    an earlier step's claims may be reused; an assumption's content is no checked claim), and
    a named normaliser may only meet what its self-test exercises."""
    from proofs import rewritings  # imported late: rewritings registers proofs' own forms
    claims = value.values() if isinstance(value, Mapping) else (value,)
    earlier = {name: reads[name] for name in steps_read if name in reads}
    out: list[str] = []
    for claim in claims:
        if isinstance(claim, Normalised):
            found = rewritings.problems(claim.normalise, reads, earlier)
            found += rewritings.coverage_problems(claim.normalise, claim.claim)
            out += [p for p in found if p not in out]
    return out


def holds(claim) -> tuple[bool, str]:
    """Whether a SymPy claim holds exactly: an expression (or matrix) that is 0, an ``Eq``
    whose sides differ by 0, or a relation SymPy evaluates to ``True``; with a reason. A claim
    holding zoo, nan or AccumBounds (no numbers) never holds."""
    undefined = _undefined(claim.claim if isinstance(claim, Normalised) else claim)
    if undefined:
        return False, f"the claim contains {undefined}, which is no number: it states nothing"
    if isinstance(claim, Normalised):
        ok, why = holds(claim.decided())
        return ok, f"after {claim.how}, {why}"
    if isinstance(claim, (bool, sp.logic.boolalg.BooleanAtom)):
        return bool(claim), f"SymPy evaluates the relation to {claim}"
    if isinstance(claim, sp.Equality):
        if any(side.has(sp.oo, -sp.oo) for side in claim.args):
            return _infinite_sides(claim)
        return _is_zero(claim.lhs - claim.rhs)
    if isinstance(claim, sp.core.relational.Relational):
        return _decide(claim)
    if isinstance(claim, (sp.Expr, sp.MatrixBase)):
        return _is_zero(claim)
    raise TypeError(f"expected a SymPy expression or relation, got {type(claim).__name__}")


def _undefined(claim) -> str | None:
    """What makes ``claim`` no statement about numbers, or None: complex infinity (zoo, e.g.
    1/0), nan (e.g. oo − oo, 0·oo) or AccumBounds (a limit that does not exist). Equal
    structures of these (zoo = zoo, nan = nan) are no equality of values."""
    has = getattr(claim, "has", None)
    if has is None:
        return None
    if has(sp.zoo):
        return "zoo (complex infinity, e.g. a division by zero)"
    if has(sp.nan):
        return "nan (an undefined value, e.g. oo − oo or 0·oo)"
    if has(sp.AccumBounds):
        return "AccumBounds (a limit that does not exist)"
    return None


def _infinite_sides(claim) -> tuple[bool, str]:
    """An equality with ±oo (a limit, say) holds when both sides evaluate to the same value,
    not to the same undefined one (lim sin = lim cos are both AccumBounds(−1, 1))."""
    lhs, rhs = (sp.simplify(side.doit()) for side in claim.args)
    for side in (lhs, rhs):
        undefined = _undefined(side)
        if undefined:
            return False, f"a side evaluates to {sp.sstr(side)[:100]}: {undefined}"
    return lhs == rhs, f"both sides evaluate to {lhs} and {rhs}"


_SIGN = {sp.GreaterThan: "is_nonnegative", sp.StrictGreaterThan: "is_positive",
         sp.LessThan: "is_nonpositive", sp.StrictLessThan: "is_negative"}


def _decide(relation) -> tuple[bool, str]:
    """An inequality holds if SymPy simplifies it to True, or if the sign of lhs − rhs (as one
    factored fraction) follows from the symbols' assumptions (SymPy answers None if unsure)."""
    truth = sp.simplify(relation)
    if truth is sp.true:
        return True, "SymPy reduces the relation to True"
    if type(relation) not in _SIGN:
        return False, f"SymPy reduces the relation to {truth}"
    difference = sp.factor(sp.together(relation.lhs - relation.rhs))
    sign = getattr(difference, _SIGN[type(relation)])
    if sign:
        return True, (f"lhs − rhs = {sp.sstr(difference)[:200]} {_SIGN[type(relation)][3:]} "
                      f"by the symbols' assumptions")
    return False, f"SymPy cannot show lhs − rhs = {sp.sstr(difference)[:200]} " \
                  f"{_SIGN[type(relation)][3:]}"


def _is_zero(residual) -> tuple[bool, str]:
    if isinstance(residual, sp.MatrixBase):
        for index, entry in enumerate(residual):
            ok, why = _is_zero(entry)
            if not ok:
                return False, f"entry {divmod(index, residual.cols)}: {why}"
        return True, "every entry of the difference is exactly 0"
    if residual == 0:
        return True, "the difference is exactly 0"
    for simplifier in (sp.expand, sp.cancel, sp.simplify):
        reduced = simplifier(residual)
        if reduced == 0:
            return True, f"the difference reduces to exactly 0 ({simplifier.__name__})"
        if simplifier is sp.cancel and _rational_over_q(reduced):
            return False, (f"the difference is a non-zero rational function (cancelled, so "
                           f"no simplification makes it 0): {sp.sstr(reduced)[:300]}")
    return False, f"the difference does not reduce to 0: {sp.sstr(reduced)[:300]}"


def _rational_over_q(expr) -> bool:
    """Whether ``expr`` is a rational function with rational coefficients of plain symbols:
    there ``cancel`` is canonical (independent indeterminates), so a non-zero result is a
    non-zero function, and ``simplify`` (slow on high degrees) cannot find 0."""
    return all(isinstance(x, (sp.Symbol, sp.Rational, sp.Add, sp.Mul))
               or (isinstance(x, sp.Pow) and x.exp.is_Integer)
               for x in sp.preorder_traversal(expr))


def render(claim) -> str:
    """LaTeX of a claim as checked (a bare expression reads ``... = 0``)."""
    if isinstance(claim, Normalised):
        return render(claim.claim)
    if isinstance(claim, (sp.Expr, sp.MatrixBase)):
        return sp.latex(claim) + " = 0"
    return sp.latex(claim)


def _judge_symbolic(value):
    if isinstance(value, (Mapping, Measured, list, tuple, str)):
        kind = type(value).__name__
        return False, f"a symbolic check must return one SymPy claim, got {kind}", ()
    try:
        ok, why = holds(value)
    except TypeError as exc:
        return False, str(exc), ()
    return ok, why, (render(value),)


def _judge_instance(value):
    if not isinstance(value, Mapping) or not value:
        return False, "an instance check must return a non-empty {size label: claim} mapping", ()
    latex = []
    for label, claim in value.items():
        try:
            ok, why = holds(claim)
        except TypeError as exc:
            return False, f"instance {label}: {exc}", ()
        if not ok:
            return False, f"instance {label}: {why}", (render(claim),)
        text = str(label).replace("\\", "").replace("_", r"\_")
        latex.append(rf"\text{{{text}:}}\quad " + render(claim))
    return True, f"holds exactly on {len(value)} instance(s): {', '.join(map(str, value))}", \
        tuple(latex)


def _judge_exact(value):
    from proofs import exact  # imported late: the exact check reads symbolic only
    if not isinstance(value, exact.ExactCheck):
        return False, f"an exact check must return ExactCheck, got {type(value).__name__}", ()
    ok, detail = exact.judge(value)
    return ok, detail, ()


def _judge_numeric(value):
    if not isinstance(value, Measured):
        return False, f"a numeric check must return Measured, got {type(value).__name__}", ()
    error, tol = float(value.error), float(value.tolerance)
    if not (math.isfinite(tol) and tol > 0):
        return False, f"tolerance must be finite and positive, got {tol}", ()
    ok = math.isfinite(error) and error <= tol
    detail = f"measured error {error:.3g} {'≤' if ok else '>'} tolerance {tol:.3g}"
    if value.detail:
        detail += f" ({value.detail})"
    return ok, detail, ()

"""A numeric counterexample to a candidate law: a trajectory on which it drifts beyond the
integrator's accuracy.

The candidate (a :class:`symbolic.laws.Law` declared by ``proofs.conjecture.candidate_law``)
is printed into NumPy evaluators by the printer of the declared laws
(``symbolic.print_laws.law_functions``: its terms ``A``, ``B`` and its sensitivity), compiled in
memory, and judged exactly as ``attnflow check`` judges a declared law: ``numeric.laws.Law``
with tolerance = accuracy = ``numeric.campaign.adaptive_tolerance`` of the trajectory's
accepted steps. A trajectory is a counterexample when the law is *violated* there:
``‖ΔQ‖ > δ·movement + δ·σ`` at some component, with every assumed precondition (A1, A2, A3)
measured on the run and holding.

The search is Hypothesis over ``numeric.strategies.configurations`` — the campaign's own
strategy, with the candidate's classifier and trainable set, A2 (``Config.a2``) exactly when
A2 is assumed and equal sentence lengths when A3 is — integrating each configuration with
``numeric.campaign.integrate_case`` (the campaign's DOP853 run at ``RTOL``/``ATOL``). It
targets the log of the drift's usage of its allowance, shrinks a violation, and then sets
each size still above its minimum to the minimum where a data seed still fails (as the
campaign's last pass does). The case text (``Config.to_text``) reruns it bit for bit.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shlex
import time
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symbolic import laws as LW

#: Size bounds of the search (``numeric.strategies.configurations``): a refutation needs one
#: drifting trajectory and shrinks to the smallest one anyway; the campaign covers larger
#: sizes for the declared laws. Small sizes keep the search within 20 s.
LIMITS = dict(max_sentences=12, max_m=6, max_dim=4)
#: Trajectories a search may integrate (generation and shrinking together): a count, not a
#: wall-clock budget, so the same search finds the same counterexample on every run.
MAX_TRAJECTORIES = 150
#: Data seeds tried per size by the last pass that sets sizes to their minimum.
SEEDS_PER_SIZE = 8


def config_trainable(trainable) -> tuple[str, ...]:
    """The candidate's trainable names as a ``Config.trainable`` (campaign order); ValueError
    names one the campaign cannot train."""
    from numeric.campaign import TRAINABLE
    unknown = [n for n in trainable if n not in TRAINABLE]
    if unknown:
        raise ValueError(f"unknown trainable name(s) {unknown}; expected some of "
                         f"{', '.join(TRAINABLE)}")
    return tuple(n for n in TRAINABLE if n in trainable)


# --- the candidate as NumPy evaluators ------------------------------------------------------

class NotEvaluable(ValueError):
    """The candidate cannot be evaluated numerically (the law printer cannot print it)."""


def _sizes() -> dict:
    """Size symbols a candidate may read as numbers, the constant standing for each (a name
    of its own: the same symbol also bounds sums, and ``∂Q/∂W`` of a sum has no meaning), and
    how to read it off a trajectory."""
    from symbolic import model as M
    return {LW.n_words: (sp.Symbol("W_size"), lambda traj: traj.data.n_words),
            M.d: (sp.Symbol("d_size"), lambda traj: traj.params["embeddings"].shape[2]),
            M.d_key: (sp.Symbol("d_key_size"), lambda traj: traj.params["keys"].shape[2]),
            M.C: (sp.Symbol("C_size"), lambda traj: traj.data.n_classes),
            M.H: (sp.Symbol("H_size"), lambda traj: traj.spec.hidden)}


def _outside_sum_bounds(expr, mapping):
    """``expr`` with ``mapping`` applied everywhere except in the bounds of its sums."""
    if isinstance(expr, sp.Sum):
        return sp.Sum(_outside_sum_bounds(expr.function, mapping), *expr.limits)
    if expr in mapping:
        return mapping[expr]
    if not expr.args:
        return expr
    return expr.func(*[_outside_sum_bounds(x, mapping) for x in expr.args])


def numeric_declaration(law: LW.Law) -> LW.Law:
    """The candidate as the printer needs it: ``A`` its terms with a positive sign, ``B`` the
    others negated (so the movement of its terms is measured as a declared law's ``A``, ``B``
    are), and ``c``, ``m`` and the sizes it reads as numbers declared as per-snapshot
    constants (``c``, ``m`` are equal for every word under A2/A3)."""
    stand_in = {size: const for size, (const, _) in _sizes().items()}
    q = _outside_sum_bounds(law.quantity, stand_in)
    plus = [t for t in sp.Add.make_args(q) if not t.could_extract_minus_sign()]
    minus = [-t for t in sp.Add.make_args(q) if t.could_extract_minus_sign()]
    constants = {x: () for x in (LW.c, LW.m, *stand_in.values()) if x in q.free_symbols}
    return dataclasses.replace(law, a=sp.Add(*plus), b=sp.Add(*minus), constants=constants)


@dataclass(frozen=True)
class Evaluators:
    """The printed ``<law>_terms`` and ``<law>_sensitivity``, ``<law>_slopes`` of a
    declaration, with the source they were compiled from."""

    law: LW.Law
    source: str
    terms: object
    sensitivity: object
    slopes: object


def evaluators(law: LW.Law) -> Evaluators:
    """Print ``law`` with ``symbolic.print_laws`` (the printer of ``numeric/_generated/laws.py``)
    and compile it in memory. NotEvaluable when the printer cannot print it."""
    from symbolic import print_laws as PL
    decl = numeric_declaration(law)
    try:
        source = PL.HEADER + "\n\n" + "\n\n\n".join(PL.law_functions(decl)) + "\n"
    except (ValueError, TypeError, KeyError, StopIteration) as why:
        raise NotEvaluable(f"the law printer cannot evaluate the candidate: {why}") from None
    namespace: dict = {}
    exec(compile(source, f"<printed evaluators of {law.statement}>", "exec"), namespace)
    name = decl.name.replace("-", "_")
    return Evaluators(decl, source, namespace[f"{name}_terms"],
                      namespace[f"{name}_sensitivity"], namespace[f"{name}_slopes"])


def _word_axes(law: LW.Law) -> list[int]:
    from symbolic.indexform import kind_of
    return [n for n, idx in enumerate(law.components) if kind_of(idx) is LW.WORD]


def candidate_terms(ev: Evaluators, assume):
    """``traj -> (A, B, σ, labels)`` of ``numeric.laws.Law``: the printed evaluators at the
    run's parameters and measured constants (``run_constants``), per component. Under A3 a
    free word index is the topic word of the sentences holding it (A3's cases put it at the
    topic token), so it ranges over the topic words, as SEN's components do."""
    from numeric import laws as NL

    def terms(traj):
        args, c_moves = run_constants(ev.law, traj)
        args.update({n: traj.params[n] for n in ev.law.parameters()})
        a, b = (np.asarray(x, dtype=float) for x in ev.terms(**args))
        sens = np.asarray(ev.sensitivity(**args), dtype=float)
        if c_moves is not None:  # as SEN's: c is only known as well as the scores it is of
            slope = np.asarray(ev.slopes(**args)["c"], dtype=float)
            sens = sens + slope * c_moves.reshape((-1,) + (1,) * (slope.ndim - 1))
        keep = [np.arange(n) for n in a.shape[1:]]
        if "A3" in assume:
            for axis in _word_axes(ev.law):
                keep[axis] = NL._topic_structure(traj)[2]
        rows = np.ix_(np.arange(a.shape[0]), *keep)
        a, b, sens = (x[rows].reshape(a.shape[0], -1) for x in (a, b, sens))
        return a, b, sens, [_label(ev.law, at) for at in itertools.product(*keep)]
    return terms


def run_constants(law: LW.Law, traj):
    """``({name: (T,) array}, c_moves)``: the constants the declaration reads, measured on
    the run — ``c`` the common non-topic score (log-mean-exp of the non-topic scores, as
    the SEN check measures it; exact under A2), ``m`` the mean number of non-topic tokens per
    sentence (exact under A3), the sizes from the arrays — and ``c_moves``, the bound
    ``2‖q‖ max_n‖κ_n‖`` on how far ``c`` moves with a relative perturbation of the state
    (None when ``c`` is not read)."""
    from numeric import laws as NL
    n = len(traj.time)
    args = {str(x): np.full(n, float(size(traj)))
            for x, size in _sizes().values() if x in law.constants}
    c_moves = None
    if LW.c in law.constants or LW.m in law.constants:
        _, nontopic_tok, _, nontopics = NL._topic_structure(traj)
        if LW.c in law.constants:
            args["c"] = NL._common_score(NL.scores(traj), nontopics)
            kn = np.linalg.norm(traj.params["keys"], axis=2)
            c_moves = 2 * np.linalg.norm(traj.params["query"], axis=1) \
                * kn[:, nontopics].max(axis=1)
        if LW.m in law.constants:
            args["m"] = np.full(n, nontopic_tok.sum(axis=1).mean())
    return args, c_moves


def _label(law: LW.Law, at) -> str:
    return ", ".join(f"{idx}={int(i)}" for idx, i in zip(law.components, at)) or "Q"


def assumed_conditions(assume):
    """``traj -> [Condition]``: the assumed A1, A2, A3 measured on the run (the SEN check's
    measurements, ``numeric.laws.sen_conditions``); an assumption that cannot be measured
    there fails."""
    from numeric import laws as NL

    def conditions(traj):
        measured = [x for x in NL.sen_conditions(traj) if x.name.split("-")[0] in assume]
        missing = [a for a in assume if not any(x.name.split("-")[0] == a for x in measured)]
        return measured + [NL.Condition(a, f"{a} holds on the run", False, float("nan"),
                                        "not measurable here (no topic structure)")
                           for a in missing]
    return conditions


def numeric_law(law: LW.Law, classifier: str, assume):
    """The candidate as a ``numeric.laws.Law``: judged as ``attnflow check`` judges a declared
    law."""
    from numeric import laws as NL
    ev = evaluators(law)
    return NL.Law("conjecture", law.statement, (classifier,), candidate_terms(ev, assume),
                  assumed_conditions(tuple(assume)))


# --- one trajectory ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Drift:
    """The candidate on the campaign's trajectory of ``config``: ``report`` (None when the
    solver stalled), the accepted steps and the accuracy ``δ`` they give, the end time."""

    config: object
    report: object
    steps: int = 0
    accuracy: float = float("nan")
    end: float = float("nan")

    @property
    def drifts(self) -> bool:
        """Q moved beyond the integrator's accuracy, every assumed precondition holding."""
        return self.report is not None and self.report.verdict == "violated"

    @property
    def judged(self) -> bool:
        """The trajectory says something of the candidate: it drifts, or its terms moved
        with every assumed precondition holding and Q stayed within the accuracy."""
        return self.report is not None and self.report.verdict in ("violated", "holds")

    def verdict(self) -> str:
        """The one-line verdict of this trajectory alone."""
        if self.drifts:
            return "Q drifts beyond the integrator's accuracy (REFUTED)"
        if self.report is None:
            return "nothing checked: the adaptive solver stalled"
        if not self.judged:
            return f"not judged ({self.report.verdict}): {self.report.reason}"
        return ("no drift beyond the integrator's accuracy with every assumed precondition "
                "holding; one trajectory decides nothing")

    def figures(self) -> list[str]:
        """The drift figures, floats exact (``repr``), so a rerun can be compared byte for
        byte."""
        if self.report is None:
            return [f"trajectory {self.config.to_text()}: the adaptive solver stalled "
                    "(nothing checked)"]
        r = self.report
        allowance = r.absolute_drift / r.usage if r.usage else float("nan")
        beyond = ">" if r.usage > 1 else "≤"
        out = [f"trajectory: DOP853, {self.steps} accepted steps to τ = {self.end!r}; "
               f"accuracy δ = 10·steps·rtol = {self.accuracy!r}",
               f"worst component {r.worst}: |ΔQ| = {r.absolute_drift!r} {beyond} allowance "
               f"δ·movement + δ·σ = {allowance!r} (usage {r.usage!r}; as a relative drift "
               f"{r.drift!r} against an allowed {r.allowed!r})"]
        for c in r.conditions:
            out.append(f"precondition {c.name}: {'holds' if c.holds else 'FAILS'} "
                       f"(measured {c.measured!r}) — {c.statement}")
        return out


def drift_on(judge, config) -> Drift:
    """Integrate ``config`` as the campaign does and judge the candidate on it."""
    from numeric.campaign import adaptive_tolerance, integrate_case
    from numeric.integrate import SOLVER_GAVE_UP
    try:
        traj = integrate_case(config)
    except SOLVER_GAVE_UP:  # stalled (as run_trajectory reports it)
        return Drift(config, None)
    accuracy = adaptive_tolerance(len(traj) - 1)
    return Drift(config, judge.check(traj, accuracy, accuracy), len(traj) - 1, accuracy,
                 float(traj.time[-1]))


# --- the search -------------------------------------------------------------------------------

@dataclass
class Search:
    """What the search did: ``found``, the smallest drifting trajectory it reached (None: no
    trajectory drifted); ``shrunk`` when Hypothesis finished shrinking it (False: the
    trajectory cap stopped it first); trajectories integrated, of which ``stalled`` and of
    which ``judged`` (the candidate held or drifted there: preconditions holding, terms
    moved)."""

    found: Drift | None
    shrunk: bool
    trajectories: int
    stalled: int
    seconds: float
    max_examples: int
    judged: int = 0

    @property
    def config(self):
        return self.found.config

    def command(self, expression, classifier, trainable, assume) -> str:
        """The command that reruns the found trajectory and prints its figures."""
        parts = [f"attnflow conjecture {shlex.quote(expression)}", f"--classifier {classifier}",
                 f"--trainable {','.join(trainable)}"]
        if assume:
            parts.append(f"--assume {','.join(assume)}")
        return " ".join(parts + [f"--trajectory {self.config.to_text()}"])


class _Drifts(AssertionError):
    """The candidate drifted on an example: Hypothesis shrinks it."""


class _Enough(BaseException):  # noqa: N818  (a stop signal, not an error)
    """The trajectory cap is reached (a BaseException: Hypothesis lets it through)."""


def strategy(classifier: str, trainable, assume, limits=None):
    """``numeric.strategies.configurations`` for the candidate: its classifier and trainable
    set; A2 held (non-topic rows zero, equal and frozen) exactly when assumed — otherwise every
    entry follows the flow, as the candidate's flow has it; equal sentence lengths under A3."""
    from numeric.strategies import configurations
    return configurations(classifier=classifier, trainable=config_trainable(trainable),
                          a2="A2" in assume, ragged=False if "A3" in assume else None,
                          **(LIMITS if limits is None else limits))


def search(law: LW.Law, classifier: str, trainable, assume=(), max_examples=40, seed=0,
           limits=None, max_trajectories=MAX_TRAJECTORIES) -> Search:
    """Hypothesis (seeded, no database: the same search every run) for a trajectory on which
    ``law`` drifts beyond the integrator's accuracy, shrunk (``Search.found``)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hseed
    from hypothesis.errors import Unsatisfiable

    start = time.perf_counter()
    judge = numeric_law(law, classifier, assume)
    seen: dict = {}
    found: list[Drift] = []

    def drift(config) -> Drift:
        if config not in seen:
            if len(seen) >= max_trajectories:
                raise _Enough
            seen[config] = drift_on(judge, config)
        return seen[config]

    def example(config):
        d = drift(config)
        if d.report is not None and d.report.applicable and math.isfinite(d.report.usage):
            target(math.log10(max(d.report.usage, 1e-300)), label="usage of the allowance")
        if d.drifts:
            found.append(d)  # Hypothesis replays the shrunk example last
            raise _Drifts(config.to_text())

    test = settings(max_examples=max_examples, database=None, deadline=None,
                    derandomize=False, report_multiple_bugs=False, print_blob=False,
                    phases=[Phase.generate, Phase.target, Phase.shrink],
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)(
        hseed(seed)(given(strategy(classifier, trainable, assume, limits))(example)))
    shrunk = False
    try:
        test()
    except _Drifts:
        shrunk = True
    except (_Enough, Unsatisfiable):
        pass  # the smallest drift seen so far (if any) stands, marked not fully shrunk
    smallest = _to_smallest_sizes(found[-1], drift) if found else None
    stalled = sum(d.report is None for d in seen.values())
    judged = sum(d.judged for d in seen.values())
    return Search(smallest, shrunk and bool(found), len(seen), stalled,
                  time.perf_counter() - start, max_examples, judged)


def _to_smallest_sizes(found: Drift, drift) -> Drift:
    """Each size still above the strategies' minimum set to it, with the first of
    ``SEEDS_PER_SIZE`` data seeds that still drifts (Hypothesis shrinks one choice at a time,
    so a size can stay up when only its data seed fails there); as the campaign's last pass."""
    from numeric.strategies import SMALLEST
    for name, low in SMALLEST.items():
        if getattr(found.config, name) <= low:
            continue
        for s in range(SEEDS_PER_SIZE):
            try:
                d = drift(dataclasses.replace(found.config, **{name: low, "seed": s}))
            except _Enough:
                return found
            if d.drifts:
                found = d
                break
    return found


def rerun(law: LW.Law, classifier: str, assume, config) -> Drift:
    """The candidate on one case (``Config``), as the search judged it."""
    return drift_on(numeric_law(law, classifier, assume), config)

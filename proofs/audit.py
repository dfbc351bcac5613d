"""The auditor: re-check every step of every registered theorem, and say what was checked how.

``run_audit()`` confirms first that ``numeric/_generated/`` is what the symbolic derivation
prints today (``symbolic.generate.check_generated()``), so the theorems are about the code that
runs; then it re-runs every step's check (nothing is cached) and times it. The report renders as
text (``text_report``), a JSON certificate (``certificate``) and a Markdown appendix with the
mathematics as checked (``markdown_report``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import marshal
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sympy as sp

from proofs.derivations import CANONICAL_MEANING
from proofs.kernel import (
    CITED,
    FAILED,
    KINDS,
    PASSED,
    Normalised,
    Theorem,
    TheoremOutcome,
    check_theorem,
)

#: Characters of LaTeX per displayed line in the Markdown report; longer ones are folded.
LINE_WIDTH = 140
CERTIFICATE_FORMAT = "attnflow-audit-certificate/1"


@dataclass(frozen=True)
class SyncStatus:
    """Whether ``numeric/_generated/`` matches the derivation (``attnflow derive --check``)."""

    checked: bool
    ok: bool
    differing: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class AuditReport:
    outcomes: tuple[TheoremOutcome, ...]
    sync: SyncStatus
    derivation: dict
    versions: dict
    seconds: float
    created: str
    sources: dict = None          # SHA-256 of symbolic/, proofs/, numeric/_generated/; git
    #: Modules of the checked trees loaded from bytecode that does not match their source.
    bytecode: tuple = ()

    @property
    def ok(self) -> bool:
        """Every step holds (or is cited), the generated code matches the derivation and every
        checked module runs the code of its source."""
        return self.sync.ok and not self.bytecode and all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[str]:
        problems = [] if self.sync.ok else [f"derive --check: {self.sync.message}"]
        problems += [f"bytecode: {b}" for b in self.bytecode]
        return problems + [f for o in self.outcomes for f in o.failures]

    @property
    def rows(self) -> list[dict]:
        """One summary row per theorem: name, title, step counts by kind and outcome, time."""
        return [_summary_row(o) for o in self.outcomes]


def _summary_row(outcome: TheoremOutcome) -> dict:
    statuses = [s.status for s in outcome.steps]
    kinds = [s.step.kind for s in outcome.steps]
    linked = model_linked(outcome)
    on_model = {k: sum(1 for s in outcome.steps if s.step.kind == k and s.status == PASSED
                       and s.step.name in linked) for k in KINDS if k not in ("cited", "exact")}
    on_model["exact"] = sum(1 for s in outcome.steps if s.step.kind == "exact"
                            and s.status == PASSED)
    return {"theorem": outcome.theorem.name, "title": outcome.theorem.title,
            "steps": len(statuses), "passed": statuses.count(PASSED),
            "cited": statuses.count(CITED), "failed": statuses.count(FAILED),
            "kinds": {k: kinds.count(k) for k in KINDS}, "on_model": on_model,
            "prose_assumptions": sum(a.kind == "prose" for a in outcome.theorem.assumptions),
            "seconds": outcome.seconds, "ok": outcome.ok}


def _generate_api(name: str):
    """``symbolic.generate.<name>`` (the derivation's regenerate-and-compare API), or None."""
    try:
        from symbolic import generate
    except ImportError:
        return None
    return getattr(generate, name, None)


def check_sync() -> SyncStatus:
    """Run the derivation's regenerate-and-compare (``attnflow derive --check``)."""
    check_generated = _generate_api("check_generated")
    if check_generated is None:
        return SyncStatus(True, False, (), "symbolic.generate.check_generated() is not "
                          "available, so the audit cannot confirm that numeric/_generated/ is "
                          "what the derivation prints: the theorems are not tied to the "
                          "running code")
    try:
        diffs = tuple(str(f) for f in check_generated())
    except Exception as exc:  # report, do not crash: the steps are still worth re-checking
        return SyncStatus(True, False, (), f"symbolic.generate.check_generated() raised "
                          f"{type(exc).__name__}: {exc}")
    if diffs:
        heads = "; ".join(d.splitlines()[0] if d.strip() else "(empty diff)" for d in diffs)
        return SyncStatus(True, False, diffs, f"{len(diffs)} generated file(s) differ from the "
                          f"derivation ({heads}); run `attnflow derive`")
    return SyncStatus(True, True, (), "numeric/_generated/ matches the derivation byte for byte")


def generated_dir() -> Path:
    """``numeric/_generated/``: ``numeric`` is installed next to ``proofs``, as in the source."""
    return Path(__file__).resolve().parent.parent / "numeric" / "_generated"


def derivation_hash() -> dict:
    """SHA-256 of the derivations: ``symbolic.generate.derivation_hash()`` where the derivation
    provides it, else over the files of ``numeric/_generated/`` (relative path, content hash)."""
    provided = _generate_api("derivation_hash")
    if provided is not None:
        value = str(provided())
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError(f"symbolic.generate.derivation_hash() returned {value!r}, not a "
                             f"SHA-256 hex digest")
        return {"sha256": value, "source": "symbolic.generate.derivation_hash() (the generated "
                                           "sources as derived now)"}
    root = generated_dir()
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"sha256": digest.hexdigest(),
            "source": f"the {len(files)} file(s) of numeric/_generated/ (relative path and "
                      f"SHA-256 of the bytes of each, in sorted order)"}


def _tree_hash(root: Path, pattern: str = "*.py") -> str:
    """SHA-256 over the files of ``root`` matching ``pattern`` (relative path and the
    SHA-256 of its bytes, in sorted order; caches left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob(pattern)
                       if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def source_hashes() -> dict:
    """SHA-256 of the Python sources of symbolic/, proofs/ and numeric/_generated/, and the
    git commit (with whether those directories differ from it), when run from a checkout."""
    root = Path(__file__).resolve().parent.parent
    out = {name: _tree_hash(root / name)
           for name in ("symbolic", "proofs", "numeric/_generated")}
    out["git_commit"], out["git_dirty"] = _git_state(root)
    return out


def _git_state(root: Path):
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "symbolic", "proofs",
                                  "numeric/_generated"], cwd=root, capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(changed)


def versions() -> dict:
    try:
        attnflow = importlib.metadata.version("attnflow")
    except importlib.metadata.PackageNotFoundError:
        attnflow = "not installed (run from a source tree)"
    return {"attnflow": attnflow, "sympy": sp.__version__, "python": platform.python_version()}


def run_audit(theorems: Iterable[Theorem] | None = None, *, sync: bool = True,
              on_theorem: Callable[[TheoremOutcome], None] | None = None) -> AuditReport:
    """Re-check every step of ``theorems`` (default: all registered), after ``derive --check``
    unless ``sync`` is False (when the caller runs that check itself, as ``verify`` does)."""
    if theorems is None:
        from proofs.registry import all_theorems
        theorems = all_theorems()
    start = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    status = check_sync() if sync else SyncStatus(
        False, True, (), "not run by the audit (the caller checks the generated code)")
    outcomes = []
    for theorem in theorems:
        outcome = check_theorem(theorem)
        outcomes.append(outcome)
        if on_theorem is not None:
            on_theorem(outcome)
    return AuditReport(tuple(outcomes), status, derivation_hash(), versions(),
                       time.perf_counter() - start, created, source_hashes(),
                       tuple(bytecode_problems()))


# --- the code that ran is the code of the sources --------------------------------------------

#: Packages whose modules the audit checks (the ones the hashes and the theorems are about).
CHECKED_PACKAGES = ("symbolic", "proofs", "numeric")


def checked_modules(packages=None) -> list:
    """The loaded modules of ``packages`` (default :data:`CHECKED_PACKAGES`), submodules
    included."""
    packages = CHECKED_PACKAGES if packages is None else packages
    return [m for name, m in sorted(sys.modules.items())
            if m is not None and name.split(".")[0] in packages]


def bytecode_problems(modules=None) -> list[str]:
    """Modules loaded from bytecode that is not their source's: a ``.pyc`` Python accepts
    for the source (its header matches the source's time and size, or it is hash-based and
    unchecked, or its hash matches) whose code differs from compiling the source, or a module
    loaded from bytecode without a source. Source hashes and ``git status`` see only the
    ``.py`` files, so a tampered ``.pyc`` beside an untouched source would run unseen."""
    out = []
    for module in checked_modules() if modules is None else modules:
        problem = _bytecode_problem(module)
        if problem:
            out.append(f"module {module.__name__}: {problem}")
    return out


def _bytecode_problem(module) -> str | None:
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not origin or not isinstance(origin, str) or not origin.endswith((".py", ".pyc")):
        return None                               # built in, frozen, a namespace package
    if origin.endswith(".pyc"):
        return f"loaded from bytecode {origin} without a source"
    cached = getattr(spec, "cached", None)
    if not cached or not Path(cached).is_file():
        return None
    try:
        source, data = Path(origin).read_bytes(), Path(cached).read_bytes()
    except OSError as exc:
        return f"cannot read its source or bytecode ({exc})"
    if not _accepted(data, origin, source):
        return None                               # Python compiles the source instead
    try:
        loaded = marshal.loads(data[16:])
    except (EOFError, ValueError, TypeError):
        return f"its bytecode {cached} is unreadable"
    compiled = compile(source, origin, "exec", dont_inherit=True, optimize=-1)
    if loaded != compiled:
        return (f"the bytecode {cached} that Python loads for {origin} does not match "
                f"the source: delete it (or run with -B) and audit again")
    return None


def _accepted(data: bytes, origin: str, source: bytes) -> bool:
    """Whether the import system would load this ``.pyc`` for the source (PEP 552)."""
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(data[4:8], "little")
    if flags & 0b1:                               # hash-based
        checked = flags & 0b10
        return not checked or data[8:16] == importlib.util.source_hash(source)
    stat = Path(origin).stat()
    return (int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF)


# --- what is trusted rather than checked ----------------------------------------------------

def _claims(value) -> list:
    """The SymPy claims a step's check returned (for reading their symbols)."""
    if isinstance(value, Mapping):
        return [c for v in value.values() for c in _claims(v)]
    if isinstance(value, Normalised):
        return [value.claim]
    if isinstance(value, (sp.Basic, sp.MatrixBase)):
        return [value]
    return []


def declared_hypotheses(value) -> dict[str, tuple[str, ...]]:
    """Symbol name → every hypothesis its SymPy declaration makes (``positive``, ``zero``,
    ``prime``, ``extended_positive``, ``integer`` and ``nonnegative`` …; a declaration
    ``x=False`` as ``not x``), for every symbol of the claims a step checked — free or bound,
    indexed bases written ``name[·]``, typed index symbols included."""
    out: dict[str, tuple[str, ...]] = {}
    for claim in _claims(value):
        labels = {x.base.label for x in claim.atoms(sp.Indexed)}
        for atom in claim.atoms(sp.Symbol):
            declared = atom._assumptions_orig
            if declared:
                name = f"{atom}[·]" if atom in labels else str(atom)
                out[name] = tuple(fact if truth else f"not {fact}"
                                  for fact, truth in sorted(declared.items()))
    return out


def _is_typed_index(name: str, facts) -> bool:
    """A symbol of a typed index range (``symbolic.indexform``), declared only integer and
    non-negative: listed together in the text report."""
    from symbolic.indexform import _KIND_OF
    return tuple(facts) == ("integer", "nonnegative") and any(
        str(x) == name for x in _KIND_OF)


def _rewritings_used(value) -> list:
    """The registered rewritings (and named normalisers) a step's claims were decided after."""
    out = []
    for claim in (value.values() if isinstance(value, Mapping) else (value,)):
        normaliser = getattr(claim, "normalise", None)
        if normaliser is not None:
            out += _leaves(normaliser)
    return out


def _leaves(rewrite) -> list:
    """Registered rewritings as themselves; a plain function as the registered rewriting or
    named normaliser it is; chains and per-sum or per-sentence rewritings by their parts."""
    from proofs import rewritings
    kind = getattr(rewrite, "kind", None)
    if kind in ("chain", "within-sums", "per-sentence"):
        return [leaf for part in rewrite.parts for leaf in _leaves(part)]
    if kind is not None:
        return [rewrite]
    named = [r for r in rewritings.REGISTRY.values() if rewritings._FUNCTIONS[r.name] is rewrite]
    named += [rewritings.Rewriting(name, f"the named normaliser {name!r} (proofs.normalisers)")
              for name, fn in rewritings._named_normalisers().items() if fn is rewrite]
    return named[:1]


def axioms(outcome: TheoremOutcome) -> dict:
    """What the theorem trusts rather than checks: cited steps (with what they cite), prose
    assumptions, hypotheses made by symbol declarations, and the registered rewritings."""
    th = outcome.theorem
    cited = [{"step": s.step.name, "claim": s.step.claim, "quote": s.step.citation.quote,
              "source": s.step.citation.source}
             for s in outcome.steps if s.step.citation is not None]
    prose = [{"name": a.name, "statement": a.statement}
             for a in th.assumptions if a.kind == "prose"]
    symbols: dict[str, dict] = {}
    used: dict[str, dict] = {}
    for s in outcome.steps:
        for name, facts in declared_hypotheses(s.value).items():
            entry = symbols.setdefault(name, {"symbol": name, "declared": list(facts),
                                              "steps": []})
            entry["steps"].append(s.step.name)
        for leaf in _rewritings_used(s.value):
            if leaf.kind == "registered":
                entry = used.setdefault(leaf.name, {"name": leaf.name, "meaning": leaf.meaning,
                                                    "steps": []})
                if s.step.name not in entry["steps"]:
                    entry["steps"].append(s.step.name)
    return {"cited": cited, "prose_assumptions": prose,
            "symbol_hypotheses": sorted(symbols.values(), key=lambda e: e["symbol"]),
            "rewritings": sorted(used.values(), key=lambda e: e["name"])}


def model_linked(outcome: TheoremOutcome) -> set[str]:
    """Steps whose checked expressions come from the model: the check read a derivation, an
    assumption holding a model (``derivations`` granted or a Model in its content), or an
    earlier step that did."""
    from symbolic.description import Model
    assumptions = {a.name: a for a in outcome.theorem.assumptions}

    def holds_model(content) -> bool:
        if isinstance(content, Model):
            return True
        if isinstance(content, Mapping):
            return any(holds_model(v) for v in content.values())
        return isinstance(content, (tuple, list)) and any(holds_model(v) for v in content)
    linked: set[str] = set()
    for s in outcome.steps:
        for name in s.reads:
            a = assumptions.get(name)
            if name in linked or (a is not None and (a.derivations or holds_model(a.content))):
                linked.add(s.step.name)
        if s.derivations:
            linked.add(s.step.name)
    return linked


def format_axioms(outcome: TheoremOutcome) -> str:
    """The trusted part of a theorem, as plain text."""
    found = axioms(outcome)
    lines = ["  Trusted, not checked:"]
    lines += [f"    cited      {c['step']}: {c['source']} — “{c['quote']}”" for c in found["cited"]]
    lines += [f"    prose      {a['name']}: {a['statement']}" for a in found["prose_assumptions"]]
    indices = [h for h in found["symbol_hypotheses"]
               if _is_typed_index(h["symbol"], h["declared"])]
    lines += [f"    declared   {h['symbol']}: {', '.join(h['declared'])} "
              f"(steps {', '.join(h['steps'])})" for h in found["symbol_hypotheses"]
              if h not in indices]
    if indices:
        steps = sorted({x for h in indices for x in h["steps"]})
        lines.append(f"    declared   typed indices {', '.join(h['symbol'] for h in indices)}: "
                     f"integer, nonnegative (steps {', '.join(steps)})")
    lines += [f"    rewriting  {r['name']} (steps {', '.join(r['steps'])})"
              for r in found["rewritings"]]
    return "\n".join(lines if len(lines) > 1 else lines + ["    (nothing)"])


# --- renderings -----------------------------------------------------------------------------

def format_theorem(outcome: TheoremOutcome) -> str:
    """Plain-text block: statement, assumptions, steps with kind, outcome and time."""
    th = outcome.theorem
    verdict = "HOLDS" if outcome.ok else "FAILS"
    lines = [f"Theorem {th.name}: {th.title}  [{verdict}, {len(outcome.steps)} steps, "
             f"{outcome.seconds:.2f} s]", f"  Statement: {th.statement}", "  Assumptions:"]
    lines += [f"    {a.name}: {a.statement}" for a in th.assumptions] or ["    (none)"]
    lines.append("  Steps:")
    for s in outcome.steps:
        uses = f" [uses {', '.join(s.step.uses)}]" if s.step.uses else ""
        lines.append(f"    {s.step.name:<12} {s.step.kind:<9} {s.status:<7} {s.seconds:7.3f} s  "
                     f"{s.step.claim}{uses}")
        lines.append(f"    {'':<12} {s.detail}")
    lines += [f"  Theorem-level failure: {p}" for p in outcome.problems]
    lines.append(format_axioms(outcome))
    return "\n".join(lines)


def format_summary(report: AuditReport) -> str:
    rows = report.rows
    total = {k: sum(r["kinds"][k] for r in rows) for k in KINDS}
    on_model = {k: sum(r["on_model"][k] for r in rows) for k in KINDS if k != "cited"}
    how = {"cited": " (trusted, not checked)",
           "exact": f" ({on_model['exact']} passed on the model written out explicitly)"}
    lines = [f"derive --check: {report.sync.message}",
             f"derivation hash (SHA-256): {report.derivation['sha256']} "
             f"({report.derivation['source']})",
             f"SymPy {report.versions['sympy']}, attnflow {report.versions['attnflow']}",
             f"{len(report.outcomes)} theorem(s), "
             f"{sum(len(o.steps) for o in report.outcomes)} step(s) re-checked in "
             f"{report.seconds:.2f} s",
             "steps by kind: " + ", ".join(
                 f"{k} {total[k]}" + (how[k] if k in how else
                                      f" ({on_model[k]} passed on the model's expressions)")
                 for k in KINDS)
             + f"; prose assumptions (trusted) {sum(r['prose_assumptions'] for r in rows)}"]
    if report.sources:
        lines.append("sources (SHA-256): " + ", ".join(
            f"{k} {v[:16]}…" for k, v in report.sources.items()
            if k not in ("git_commit", "git_dirty"))
            + f"; git commit {report.sources['git_commit']}"
            + (" (with uncommitted changes)" if report.sources["git_dirty"] else ""))
    lines.append(f"bytecode: every loaded module of {', '.join(CHECKED_PACKAGES)} runs the code "
                 f"of its source" if not report.bytecode else
                 f"bytecode: {len(report.bytecode)} module(s) run code that is not their "
                 f"source's")
    failures = report.failures
    lines += ["AUDIT FAILED:"] + [f"  {f}" for f in failures] if failures else ["AUDIT PASSED"]
    return "\n".join(lines)


def text_report(report: AuditReport) -> str:
    return "\n\n".join([format_theorem(o) for o in report.outcomes] + [format_summary(report)])


def certificate(report: AuditReport) -> dict:
    """The audit as one JSON-ready object (format ``attnflow-audit-certificate/1``)."""
    return {
        "format": CERTIFICATE_FORMAT, "created": report.created, "ok": report.ok,
        "versions": report.versions, "derivation_hash": report.derivation,
        "derive_check": {"run": report.sync.checked, "ok": report.sync.ok,
                         "differing_files": list(report.sync.differing),
                         "message": report.sync.message},
        "seconds": report.seconds, "failures": report.failures,
        "sources": report.sources,
        "bytecode": {"modules_checked": len(checked_modules()),
                     "problems": list(report.bytecode)},
        "theorems": [_theorem_record(o) for o in report.outcomes],
    }


def _theorem_record(outcome: TheoremOutcome) -> dict:
    th = outcome.theorem
    linked = model_linked(outcome)
    return {
        "name": th.name, "title": th.title, "statement": th.statement, "ok": outcome.ok,
        "seconds": outcome.seconds, "problems": list(outcome.problems),
        "assumptions": [{"name": a.name, "statement": a.statement, "kind": a.kind,
                         "derivations": [m.label for m in a.derivations]}
                        for a in th.assumptions],
        "axioms": axioms(outcome),
        "steps": [{
            "name": s.step.name, "claim": s.step.claim, "kind": s.step.kind,
            "uses": list(s.step.uses), "outcome": s.status, "detail": s.detail,
            "seconds": s.seconds, "latex": list(s.latex),
            "reads": list(s.reads), "on_model": s.step.name in linked,
            "derivations_read": [m.label for m in s.derivations],
            "citation": (None if s.step.citation is None else
                         {"quote": s.step.citation.quote, "source": s.step.citation.source}),
        } for s in outcome.steps],
    }


_KIND_MEANING = {
    "symbolic": "SymPy shows the claim exactly at general sizes (a difference reduces to 0, "
                "or a relation evaluates to true)",
    "instance": "SymPy shows the claim exactly on the explicit small sizes listed",
    "numeric": "corroborated numerically; the measured error and the tolerance it met are given",
    "cited": "a standard fact, quoted with its source; not re-checked by machine",
    "exact": "the conservation statement checked on the model written out entry by entry at "
             "small sizes (sympy.diff of the data-set loss of concrete sentences, the "
             "assumptions made data), exactly at rational points, independently of the other "
             "steps",
}


def markdown_report(report: AuditReport) -> str:
    """A human report that reads like an appendix: each theorem, then its checked proof."""
    out = [
        "# Audit of attnflow's theorems", "",
        f"Every step below was re-checked by `attnflow audit` at {report.created} "
        f"(SymPy {report.versions['sympy']}, attnflow {report.versions['attnflow']}, "
        f"Python {report.versions['python']}); nothing is taken from a cache. "
        f"Verdict: **{'all theorems hold' if report.ok else 'AUDIT FAILED'}** "
        f"({report.seconds:.2f} s).", "",
        f"- Generated code: {report.sync.message}.",
        f"- Derivation hash (SHA-256): `{report.derivation['sha256']}`, over "
        f"{report.derivation['source']}.", "",
        "How each step is checked:", "",
    ]
    out += [f"- *{kind}*: {meaning}." for kind, meaning in _KIND_MEANING.items()]
    out += ["", "A displayed equation reads *derived = claimed*: the left side is what SymPy "
            "derived from the model (the expressions of `symbolic`, the ones printed into the "
            "engine), the right side the form the step claims. Where a claim is decided after "
            "an exact rewriting, the check names it; the most common, *the canonical index "
            f"form*, means: {CANONICAL_MEANING}."]
    out += ["", "| Theorem | Steps | " + " | ".join(KINDS) + " | Outcome | Time (s) |",
            "|---|---:|" + "---:|" * len(KINDS) + "---|---:|"]
    for row in report.rows:
        out.append(f"| {row['title']} (`{row['theorem']}`) | {row['steps']} | "
                   + " | ".join(str(row["kinds"][k]) for k in KINDS)
                   + f" | {'holds' if row['ok'] else 'FAILS'} | {row['seconds']:.2f} |")
    for number, outcome in enumerate(report.outcomes, 1):
        out += ["", *_markdown_theorem(number, outcome)]
    if report.failures:
        out += ["", "## Failures", ""] + [f"- {f}" for f in report.failures]
    return "\n".join(out) + "\n"


def _markdown_theorem(number: int, outcome: TheoremOutcome) -> list[str]:
    th = outcome.theorem
    out = [f"## Theorem {number} ({th.name}). {th.title}", "", f"*Statement.* {th.statement}",
           ""]
    if th.assumptions:
        out += ["*Assumptions.*", ""] + [f"- **{a.name}**: {a.statement}" for a in th.assumptions]
    else:
        out.append("*Assumptions.* None.")
    out += ["", "*Proof.*", ""]
    for k, s in enumerate(outcome.steps, 1):
        uses = f"; uses {', '.join(s.step.uses)}" if s.step.uses else ""
        out += [f"{k}. **Step {s.step.name}.** {s.step.claim} "
                f"*({s.step.kind}{uses}; {s.status}, {s.seconds:.3f} s)*", ""]
        for latex in _shown(s):
            out += ["   " + line for line in f"$$\n{latex}\n$$".splitlines()] + [""]
        if s.step.citation is not None:
            out += [f"   > {s.step.citation.quote}", ">".rjust(4),
                    f"   > — {s.step.citation.source}", ""]
        out += [f"   Check: {s.detail}.", ""]
    out.append("∎" if outcome.ok else
               "**Not proved**: " + "; ".join(s.step.name for s in outcome.steps if not s.ok)
               + " failed.")
    return out + ["", "*Trusted, not checked.*", "",
                  *(f"- {line.strip()}" for line in format_axioms(outcome).splitlines()[1:])]


def _shown(s) -> list[str]:
    """A step's checked mathematics for the Markdown report, every claim whole: a matrix
    equality entry by entry, long fractions as a factor, long lines folded."""
    claims = _claims_shown(s)
    if claims is None:
        return [fold_latex(latex) for latex in s.latex]
    return [fold_latex(prefix + part) for prefix, claim in claims for part in _entries(claim)]


def _claims_shown(s):
    """``(prefix, claim)`` per rendered claim of a passed step, or None (then its LaTeX as
    recorded is shown)."""
    value = s.value
    if s.status != PASSED or value is None:
        return None
    if s.step.kind == "instance" and isinstance(value, Mapping) and len(value) == len(s.latex):
        return [(rf"\text{{{_text(label)}:}}\quad ", claim) for label, claim in value.items()]
    if s.step.kind == "symbolic" and len(s.latex) == 1:
        return [("", value)]
    return None


def _text(label) -> str:
    return str(label).replace("\\", "").replace("_", r"\_")


def _entries(claim) -> list[str]:
    """LaTeX of a claim, one line per entry where both sides are matrices."""
    if isinstance(claim, Normalised):
        claim = claim.claim
    if isinstance(claim, sp.MatrixBase):
        claim = sp.Eq(claim, sp.zeros(*claim.shape), evaluate=False)
    if (isinstance(claim, sp.Equality) and isinstance(claim.lhs, sp.MatrixBase)
            and isinstance(claim.rhs, sp.MatrixBase) and claim.lhs.shape == claim.rhs.shape
            and len(claim.lhs) > 0):
        rows, cols = claim.lhs.shape
        where = (lambda i, j: "") if rows * cols == 1 else (
            lambda i, j: rf"\text{{entry }}({i}, {j}):\ ")
        return [where(i, j) + f"{_latex(claim.lhs[i, j])} = {_latex(claim.rhs[i, j])}"
                for i in range(rows) for j in range(cols)]
    if isinstance(claim, sp.Expr):
        return [_latex(claim) + " = 0"]
    return [_latex(claim)]


def _latex(expr) -> str:
    # a long numerator is printed as a factor 1/denominator, so the folding can break it
    return sp.latex(expr, long_frac_ratio=2)


#: ``\\left``/``\\right`` pairs cannot span lines; the fixed-size delimiters can.
_SIZED = (("\\left(", "\\Bigl("), ("\\right)", "\\Bigr)"), ("\\left[", "\\Bigl["),
          ("\\right]", "\\Bigr]"), ("\\left\\{", "\\Bigl\\{"), ("\\right\\}", "\\Bigr\\}"),
          ("\\left|", "\\Bigl|"), ("\\right|", "\\Bigr|"), ("\\left\\|", "\\Bigl\\|"),
          ("\\right\\|", "\\Bigr\\|"), ("\\left.", ""), ("\\right.", ""))


def fold_latex(latex: str, width: int = LINE_WIDTH) -> str:
    """``latex`` shown whole, over lines of about ``width`` characters, as an ``aligned``
    block (a short expression is returned unchanged): broken before a ``+``, ``-`` or ``=``
    outside every group and environment, preferably outside parentheses; a line that runs on
    for each further ``width`` characters may break one parenthesis deeper."""
    if len(latex) <= width:
        return latex
    for old, new in _SIZED:
        latex = latex.replace(old, new)
    lines, start, depth, env, parens = [], 0, 0, 0, 0
    for at, char in enumerate(latex):
        escaped = latex[at - 1:at] == "\\"
        if char in "{}" and not escaped:
            depth += 1 if char == "{" else -1
        elif latex.startswith("\\begin{", at):
            env += 1
        elif latex.startswith("\\end{", at):
            env -= 1
        elif depth == 0 and char in "([{":
            parens += 1
        elif depth == 0 and char in ")]}":
            parens -= 1
        elif (char in "+-=" and depth == 0 and env == 0 and at - start > width
              and parens <= (at - start - width) // width and _binary(latex, at)):
            lines.append(latex[start:at].rstrip())
            start = at
    lines.append(latex[start:])
    if len(lines) == 1:
        return latex
    return "\\begin{aligned}\n" + " \\\\\n".join(f"& {line}" for line in lines) + \
        "\n\\end{aligned}"


def _binary(latex: str, at: int) -> bool:
    """Whether the operator at ``at`` joins two terms (it is not a sign after an opening)."""
    before = latex[:at].rstrip()
    return bool(before) and not before.endswith(("(", "[", "{", "^", "_", "=", "+", "-", ",",
                                                 "&", "\\quad", "\\\\"))


def write_certificate(report: AuditReport, path) -> Path:
    """The certificate as strict JSON, written atomically (``numeric.outputs``)."""
    from numeric.outputs import write_json

    return write_json(path, certificate(report))


def write_markdown(report: AuditReport, path) -> Path:
    from numeric.outputs import write_text

    return write_text(path, markdown_report(report))

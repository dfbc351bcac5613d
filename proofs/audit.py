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
import platform
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sympy as sp

from proofs.derivations import CANONICAL_MEANING
from proofs.kernel import CITED, FAILED, KINDS, PASSED, Theorem, TheoremOutcome, check_theorem

#: Longer LaTeX than this is summarised in the Markdown report rather than displayed.
MAX_LATEX = 2000
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

    @property
    def ok(self) -> bool:
        """Every step holds (or is cited) and the generated code matches the derivation."""
        return self.sync.ok and all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[str]:
        problems = [] if self.sync.ok else [f"derive --check: {self.sync.message}"]
        return problems + [f for o in self.outcomes for f in o.failures]

    @property
    def rows(self) -> list[dict]:
        """One summary row per theorem: name, title, step counts by kind and outcome, time."""
        return [_summary_row(o) for o in self.outcomes]


def _summary_row(outcome: TheoremOutcome) -> dict:
    statuses = [s.status for s in outcome.steps]
    kinds = [s.step.kind for s in outcome.steps]
    return {"theorem": outcome.theorem.name, "title": outcome.theorem.title,
            "steps": len(statuses), "passed": statuses.count(PASSED),
            "cited": statuses.count(CITED), "failed": statuses.count(FAILED),
            "kinds": {k: kinds.count(k) for k in KINDS}, "seconds": outcome.seconds,
            "ok": outcome.ok}


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
                       time.perf_counter() - start, created)


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
    return "\n".join(lines)


def format_summary(report: AuditReport) -> str:
    lines = [f"derive --check: {report.sync.message}",
             f"derivation hash (SHA-256): {report.derivation['sha256']} "
             f"({report.derivation['source']})",
             f"SymPy {report.versions['sympy']}, attnflow {report.versions['attnflow']}",
             f"{len(report.outcomes)} theorem(s), "
             f"{sum(len(o.steps) for o in report.outcomes)} step(s) re-checked in "
             f"{report.seconds:.2f} s"]
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
        "theorems": [_theorem_record(o) for o in report.outcomes],
    }


def _theorem_record(outcome: TheoremOutcome) -> dict:
    th = outcome.theorem
    return {
        "name": th.name, "title": th.title, "statement": th.statement, "ok": outcome.ok,
        "seconds": outcome.seconds,
        "assumptions": [{"name": a.name, "statement": a.statement} for a in th.assumptions],
        "steps": [{
            "name": s.step.name, "claim": s.step.claim, "kind": s.step.kind,
            "uses": list(s.step.uses), "outcome": s.status, "detail": s.detail,
            "seconds": s.seconds, "latex": list(s.latex),
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
        for latex in s.latex:
            shown = (f"$$\n{latex}\n$$" if len(latex) <= MAX_LATEX else
                     f"*(the checked expression is {len(latex)} characters of LaTeX, too long "
                     f"to display; it is in the JSON certificate)*")
            out += ["   " + line for line in shown.splitlines()] + [""]
        if s.step.citation is not None:
            out += [f"   > {s.step.citation.quote}", ">".rjust(4),
                    f"   > — {s.step.citation.source}", ""]
        out += [f"   Check: {s.detail}.", ""]
    out.append("∎" if outcome.ok else
               "**Not proved**: " + "; ".join(s.step.name for s in outcome.steps if not s.ok)
               + " failed.")
    return out


def write_certificate(report: AuditReport, path) -> Path:
    """The certificate as strict JSON, written atomically (``numeric.outputs``)."""
    from numeric.outputs import write_json

    return write_json(path, certificate(report))


def write_markdown(report: AuditReport, path) -> Path:
    from numeric.outputs import write_text

    return write_text(path, markdown_report(report))

"""Mutation testing of attnflow: does the test suite kill realistic one-line bugs?

Not collected by pytest (no ``test_`` prefix) and not run in CI: it takes tens of minutes.
Run from the repository root, niced (the machine is shared)::

    nice python3 tests/mutation.py --sample 100 --seed 0 --jobs 2  # sample, run, report
    nice python3 tests/mutation.py --per-file 6 --seed 22 --files numeric/replay.py ...
    nice python3 tests/mutation.py --list                         # every mutant, not run
    nice python3 tests/mutation.py --only numeric/laws.py:37      # one mutant by its id
    nice python3 tests/mutation.py --only numeric/laws.py:37 --tests tests/test_x.py

Each mutant is one small change to one of ``TARGETS`` (``numeric/*.py`` but the plots, the
printer, the index form, the conjecture grammar, the proofs' kernel, audit, exact check,
conservation theorems, normalisers, case functions, conjecture reduction and counterexample
search, ``discover``'s count, fields and proofs, the self-attention family's laws, and the
commands), applied in a fresh temporary copy of the repository (the checkout is never
touched). Operators:

- AST: ``+``↔``−``, ``*``↔``/``, ``//``→``/``, ``**``→``*``; drop the right or left term of
  ``+``/``−``; ``<``↔``<=``, ``>``↔``>=``, ``==``↔``!=``, ``in``↔``not in``, ``is``↔``is not``;
  ``and``↔``or``, and one operand of ``and``/``or`` dropped; drop ``not`` and unary minus;
  integer constants ±1 (off-by-one, slices and ranges included), float constants ×10 and
  ÷10; ``True``↔``False``; ``max``↔``min``, ``maximum``↔``minimum``, ``argmax``↔``argmin``,
  ``any``↔``all``; augmented ``+=``↔``−=``; two neighbouring arguments of a call swapped
  (names, attributes, items or numbers; not ``isinstance`` and its kind); a guard
  ``if C: return/raise/continue/break`` dropped (``if False``) and an early ``return`` or
  ``continue`` taken always (``if True``).
- Text, in the code that ``symbolic/printer.py`` emits (its string literals): `` - x``
  dropped, `` - ``↔`` + ``, `` * ``↔`` / ``, ``max``↔``min``, ``-np.inf``→``0.0``,
  ``axis=1``→``axis=0`` — so "softmax printed without subtracting the row maximum" is a
  mutant like any other.

Docstrings, annotations, ``raise`` statements (their messages) and f-string contents are not
mutated. When a file under ``symbolic/`` that the engine derives from is mutated,
``numeric/_generated`` is regenerated in the copy (``python3 -m attnflow derive``) before the
tests run, and a mutant of the printer whose regenerated engine is identical to today's
(comments aside) is reported as *equivalent (same engine)* without running tests: the
engine is the printer's only product. Mutants read and judged equivalent are listed in
``EQUIVALENT`` with the reason, and reported as such without running.

Which tests run: first, once per set of test files (cached in the temporary folder), the
mutated files' ``TESTS`` run under coverage with one context per test, subprocesses
included; a mutant then runs only the tests that executed its lines (all of its files'
tests when the line runs at import), and a mutant whose line no test executes is reported
*uncovered* (a survivor) without running. A test that fails in that coverage run fails on
the unmutated code: it is named and deselected (it would "kill" every mutant it runs for).
``--all-tests`` skips the coverage run and runs every test file of ``TESTS``. The tests
run with ``CI=true``, ``-x`` and a per-mutant timeout; a mutant is *killed* when they fail
(a timeout counts as killed: the bug hangs the suite), *survived* when they pass. The
report gives the kill rate and lists every survivor with its diff line.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: ``numeric/plots.py`` is left out: it only draws figures (sizes, colours, labels), and no
#: reported number or verdict depends on it.
_PROOFS = ["proofs/audit.py", "proofs/conjecture.py", "proofs/conservation.py",
           "proofs/counterexample.py", "proofs/discovered.py", "proofs/exact.py",
           "proofs/kernel.py", "proofs/normalisers.py", "proofs/theorems_cases.py"]
_COMMANDS = ["attnflow/commands/audit.py", "attnflow/commands/check.py",
             "attnflow/commands/conjecture.py", "attnflow/commands/discover.py",
             "attnflow/commands/laws.py",
             "attnflow/commands/reproduce.py", "attnflow/commands/verify.py",
             "attnflow/explain_run.py", "attnflow/options.py"]
TARGETS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "numeric").glob("*.py")
                 if p.name not in ("__init__.py", "plots.py")) + [
    "symbolic/printer.py", "symbolic/indexform.py", "symbolic/grammar.py",
    "symbolic/discover.py", "symbolic/fields.py", "symbolic/laws_attention.py"] + _PROOFS + \
    _COMMANDS
#: Files under ``symbolic/`` that the generated engine does not depend on (no re-derive);
#: ``symbolic/laws_attention.py`` is re-derived: the generated law module lists every law.
NOT_DERIVED = {"symbolic/grammar.py", "symbolic/discover.py", "symbolic/fields.py"}
#: Test files run for a mutant of each file (fast, targeted ones first; -x stops early).
_ENGINE, _LAWS = "tests/test_kill_engine.py", "tests/test_kill_laws.py"
_EXPERIMENTS = "tests/test_kill_experiments.py"
_EXPLAIN = "tests/test_kill_explain.py"
_REPLAY = ["tests/test_kill_replay.py", "tests/test_replay.py", "tests/test_laws_explain.py",
           "tests/test_integrate_decay.py"]
_EXACT = ["tests/test_kill_exact.py", "tests/test_kill_audit.py", "tests/test_kill_conjecture.py",
          "tests/test_exact.py", "tests/test_audit_tampering.py"]
_CONJECTURE = ["tests/test_kill_conjecture.py", "tests/test_conjecture_grammar.py",
               "tests/test_conjecture.py"]
_CLI = ["tests/test_kill_commands.py", "tests/test_no_evidence.py", "tests/test_hostile.py"]
_DISCOVER = ["tests/test_kill_discover.py", "tests/test_kill_discover_search.py",
             "tests/test_kill_discover_command.py",
             "tests/test_discover_cli.py", "tests/test_discover.py",
             "tests/test_discover_models.py", "tests/test_discovered_laws.py"]
_ATTENTION = ["tests/test_attention_laws.py", "tests/test_attention_law_checks.py"]
TESTS = {
    "numeric/model.py": [_ENGINE, "tests/test_engine.py", "tests/test_integrate.py"],
    "numeric/engine.py": [_ENGINE, "tests/test_engine.py", "tests/test_integrate.py"],
    "numeric/checks.py": ["tests/test_engine.py"],
    "numeric/data.py": ["tests/test_data.py", _ENGINE, _EXPERIMENTS],
    "numeric/integrate.py": ["tests/test_integrate.py", _ENGINE, _LAWS, "tests/test_laws.py"],
    "numeric/trajectory.py": ["tests/test_hostile.py", "tests/test_integrate.py", _ENGINE, _LAWS,
                              "tests/test_laws.py", "tests/test_models.py"],
    "numeric/laws.py": ["tests/test_kill_law_checks.py", _LAWS, "tests/test_laws.py",
                        "tests/test_properties.py", *_ATTENTION, "tests/test_print_laws.py",
                        "tests/test_broken.py"],
    "numeric/campaign.py": ["tests/test_kill_campaign.py", _LAWS, "tests/test_laws.py",
                            "tests/test_campaign.py"],
    "numeric/experiments.py": [_EXPERIMENTS, "tests/test_experiments.py"],
    "numeric/replay.py": _REPLAY,
    "numeric/attribution.py": _REPLAY + ["tests/test_broken.py"],
    "numeric/limits.py": _CLI,
    "numeric/processes.py": ["tests/test_kill_processes.py", "tests/test_hostile.py",
                             "tests/test_experiments.py"],
    "numeric/executors.py": ["tests/test_hostile.py", "tests/test_campaign.py"],
    "numeric/outputs.py": ["tests/test_hostile.py", "tests/test_experiments.py"],
    "numeric/strategies.py": ["tests/test_properties.py", "tests/test_campaign.py"],
    "symbolic/printer.py": ["tests/test_generated.py", _ENGINE, "tests/test_engine.py"],
    "symbolic/indexform.py": ["tests/test_generated.py", "tests/test_derivation.py",
                              _ENGINE, "tests/test_engine.py", "tests/test_audit.py"],
    "symbolic/grammar.py": _CONJECTURE,
    "symbolic/discover.py": _DISCOVER + ["tests/test_hostile.py"],
    "symbolic/fields.py": ["tests/test_kill_fields.py", *_DISCOVER],
    "symbolic/laws_attention.py": _ATTENTION + _DISCOVER,
    "proofs/discovered.py": ["tests/test_kill_proofs.py", *_DISCOVER],
    "proofs/counterexample.py": _CONJECTURE + ["tests/test_properties.py"],
    "proofs/kernel.py": ["tests/test_kill_proofs.py", "tests/test_kernel.py",
                         "tests/test_audit.py"],
    "proofs/audit.py": _EXACT + ["tests/test_audit.py"],
    "proofs/exact.py": _EXACT,
    "proofs/conservation.py": _EXACT + ["tests/test_conservation.py"],
    "proofs/normalisers.py": _EXACT + ["tests/test_conservation.py"],
    "proofs/theorems_cases.py": _EXACT + ["tests/test_conservation.py"],
    "proofs/conjecture.py": _CONJECTURE,
    "attnflow/commands/audit.py": _CLI + ["tests/test_audit.py"],
    "attnflow/commands/check.py": _CLI + ["tests/test_campaign.py"],
    "attnflow/commands/conjecture.py": _CLI + _CONJECTURE,
    "attnflow/commands/discover.py": _DISCOVER + _CLI,
    "attnflow/commands/laws.py": [_EXPLAIN, *_CLI, *_REPLAY],
    "attnflow/commands/reproduce.py": _CLI + ["tests/test_experiments.py"],
    "attnflow/commands/verify.py": ["tests/test_kill_verify.py", *_CLI, "tests/test_campaign.py"],
    "attnflow/explain_run.py": [_EXPLAIN, *_CLI, *_REPLAY],
    "attnflow/options.py": _CLI,
}
#: Tests whose outcome depends on machine load (how many trajectories fit in a 2–3 s budget):
#: under load they fail without any mutant, which would count as false kills.
DESELECT = ["tests/test_laws.py::test_campaign_passes_and_catches_a_broken_engine",
            "tests/test_laws.py::test_check_command_writes_json",
            "tests/test_campaign.py::test_ctrl_c_stops_cleanly_and_still_reports"]
IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".hypothesis",
                                "results", "*.egg-info", ".ruff_cache")


@dataclass(frozen=True)
class Mutant:
    path: str          # file, relative to the repository root
    index: int         # number within the file (stable for a given source)
    line: int
    start: int         # character offsets into the file's source
    end: int
    replacement: str
    operator: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.index}"

    def apply(self, source: str) -> str:
        return source[:self.start] + self.replacement + source[self.end:]

    def describe(self, source: str) -> str:
        old = source[self.start:self.end]
        return f"{self.id} line {self.line} [{self.operator}]: {old!r} -> {self.replacement!r}"


# --- AST operators -------------------------------------------------------------------------

_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
               ast.FloorDiv: ast.Div, ast.Pow: ast.Mult}
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
             ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_NAME_SWAP = {"max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
              "argmax": "argmin", "argmin": "argmax", "any": "all", "all": "any",
              "nanmax": "nanmin", "nanmin": "nanmax"}


def _line_offsets(source: str) -> list[int]:
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


def _skipped_ranges(tree: ast.AST) -> list[tuple[int, int]]:
    """Line ranges never mutated: docstrings, annotations, raise statements, f-strings."""
    skip = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            skip.append((body[0].lineno, body[0].end_lineno))
        if isinstance(node, ast.Raise):
            skip.append((node.lineno, node.end_lineno))
    return skip


def _annotation_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        anns = []
        if isinstance(node, ast.AnnAssign):
            anns.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            anns.append(node.returns)
            args = node.args
            for a in args.args + args.posonlyargs + args.kwonlyargs + [args.vararg,
                                                                       args.kwarg]:
                if a is not None:
                    anns.append(a.annotation)
        for ann in anns:
            if ann is not None:
                out.update(id(n) for n in ast.walk(ann))
    return out


#: Calls whose arguments swapped are a type error on every run, not a plausible slip.
_TYPE_QUERIES = {"isinstance", "issubclass", "hasattr", "getattr", "setattr"}


def _plain(x: ast.AST) -> bool:
    """A value a caller could pass in another's place (a name, attribute, item or number; not
    text, whose swap is a type error rather than a plausible slip)."""
    return isinstance(x, (ast.Name, ast.Attribute, ast.Subscript)) or (
        isinstance(x, ast.Constant) and isinstance(x.value, (int, float))
        and not isinstance(x.value, bool))


def _ast_mutations(node: ast.AST):
    """``(replacement node or source, operator name)`` for one node."""
    if isinstance(node, ast.BinOp):
        if any(isinstance(x, ast.JoinedStr) or (isinstance(x, ast.Constant)
                                                and isinstance(x.value, str))
               for x in (node.left, node.right)):
            return  # string building: a type error, not a realistic bug
        swap = _BINOP_SWAP.get(type(node.op))
        if swap:
            yield ast.BinOp(node.left, swap(), node.right), f"{type(node.op).__name__}->" \
                                                           f"{swap.__name__}"
        if isinstance(node.op, (ast.Add, ast.Sub)):
            yield node.left, "drop right term"
            if isinstance(node.op, ast.Add):
                yield node.right, "drop left term"
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        swap = _CMP_SWAP.get(type(node.ops[0]))
        if swap:
            yield ast.Compare(node.left, [swap()], node.comparators), \
                f"{type(node.ops[0]).__name__}->{swap.__name__}"
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield ast.BoolOp(other(), node.values), f"{type(node.op).__name__}->{other.__name__}"
        for i in range(len(node.values)):   # one condition dropped
            rest = node.values[:i] + node.values[i + 1:]
            yield (rest[0] if len(rest) == 1 else ast.BoolOp(node.op, rest)), \
                f"drop operand {i + 1} of {type(node.op).__name__}"
    elif isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                            and node.func.id in _TYPE_QUERIES):
        for i in range(len(node.args) - 1):     # two neighbouring arguments swapped
            a, b = node.args[i], node.args[i + 1]
            if _plain(a) and _plain(b) and ast.dump(a) != ast.dump(b):
                args = [*node.args[:i], b, a, *node.args[i + 2:]]
                yield ast.Call(node.func, args, node.keywords), \
                    f"swap arguments {i + 1} and {i + 2}"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        yield node.operand, f"drop {type(node.op).__name__}"
    elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)):
        v = node.value
        if isinstance(v, bool):
            yield ast.Constant(not v), "flip bool"
        elif isinstance(v, int):
            yield ast.Constant(v + 1), "int +1"
            if v != 0:
                yield ast.Constant(v - 1), "int -1"
        elif isinstance(v, float):
            if v == 0.0:
                yield ast.Constant(1.0), "float 0->1"
            else:
                yield ast.Constant(v * 10), "float x10"
                yield ast.Constant(v / 10), "float /10"
    elif isinstance(node, ast.Name) and node.id in _NAME_SWAP and isinstance(node.ctx,
                                                                             ast.Load):
        yield ast.Name(_NAME_SWAP[node.id], ast.Load()), f"{node.id}->{_NAME_SWAP[node.id]}"
    elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAP:
        yield ast.Attribute(node.value, _NAME_SWAP[node.attr], node.ctx), \
            f".{node.attr}->.{_NAME_SWAP[node.attr]}"
    elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
        other = ast.Sub if isinstance(node.op, ast.Add) else ast.Add
        yield ast.AugAssign(node.target, other(), node.value), "augmented +/- swap"


def ast_mutants(path: str, source: str) -> list[tuple[int, int, int, str, str]]:
    tree = ast.parse(source)
    offsets = _line_offsets(source)
    skip = _skipped_ranges(tree)
    annotations = _annotation_nodes(tree)
    in_fstring = {id(n) for f in ast.walk(tree) if isinstance(f, ast.JoinedStr)
                  for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or id(node) in annotations or id(node) in in_fstring:
            continue
        if any(a <= node.lineno <= b for a, b in skip):
            continue
        start = offsets[node.lineno - 1] + _char_col(source, offsets, node.lineno,
                                                     node.col_offset)
        end = offsets[node.end_lineno - 1] + _char_col(source, offsets, node.end_lineno,
                                                       node.end_col_offset)
        for new, name in _ast_mutations(node):
            text = ast.unparse(new)
            if not isinstance(node, (ast.AugAssign,)):
                text = f"({text})"
            out.append((node.lineno, start, end, text, name))
        out.extend(_guard_mutants(node, source, offsets))
    return out


def _guard_mutants(node, source, offsets):
    """A guard ``if C: return/raise/continue/break`` (one statement, no ``else``) dropped
    (``if False``), and an early ``return``/``continue`` taken always (``if True``)."""
    if not (isinstance(node, ast.If) and not node.orelse and len(node.body) == 1
            and isinstance(node.body[0], (ast.Return, ast.Raise, ast.Continue, ast.Break))):
        return []
    test = node.test
    start = offsets[test.lineno - 1] + _char_col(source, offsets, test.lineno, test.col_offset)
    end = offsets[test.end_lineno - 1] + _char_col(source, offsets, test.end_lineno,
                                                   test.end_col_offset)
    out = [(node.lineno, start, end, "False", "drop guard")]
    if isinstance(node.body[0], (ast.Return, ast.Continue)):
        out.append((node.lineno, start, end, "True", "early exit always"))
    return out


def _char_col(source, offsets, lineno, byte_col) -> int:
    """AST column offsets count UTF-8 bytes; convert to characters."""
    line = source[offsets[lineno - 1]:offsets[lineno]]
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


# --- text operators on the code the printer emits --------------------------------------------

_TEXT_OPERATORS = [
    (re.compile(r" - [\w{}.]+(?:\[(?:[^\[\]]|\[[^\[\]]*\])*\])?(?:\([^()]*\))?"), lambda m: "",
     "emitted: drop subtracted term"),
    (re.compile(r" - "), lambda m: " + ", "emitted: - -> +"),
    (re.compile(r" \+ "), lambda m: " - ", "emitted: + -> -"),
    (re.compile(r" \* "), lambda m: " / ", "emitted: * -> /"),
    (re.compile(r" / "), lambda m: " * ", "emitted: / -> *"),
    (re.compile(r"\bmax\b"), lambda m: "min", "emitted: max -> min"),
    (re.compile(r"\bmaximum\b"), lambda m: "minimum", "emitted: maximum -> minimum"),
    (re.compile(r"-np\.inf"), lambda m: "0.0", "emitted: -inf -> 0"),
    (re.compile(r"axis=1"), lambda m: "axis=0", "emitted: axis=1 -> axis=0"),
    (re.compile(r"\bmask\b(?=, )"), lambda m: "True", "emitted: mask -> True"),
]


def text_mutants(path: str, source: str) -> list[tuple[int, int, int, str, str]]:
    """Mutations inside the code-carrying string literals of the printer (not docstrings,
    comments or header text)."""
    if path != "symbolic/printer.py":
        return []
    tree = ast.parse(source)
    skip = _skipped_ranges(tree)
    offsets = _line_offsets(source)
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.STRING or any(a <= tok.start[0] <= b for a, b in skip):
            continue
        if tok.string.lstrip("rbfRBF").startswith(("'#", '"#', "'''\\\n#")):
            continue
        base = offsets[tok.start[0] - 1] + tok.start[1]
        for pattern, repl, name in _TEXT_OPERATORS:
            for m in pattern.finditer(tok.string):
                line = tok.start[0] + tok.string[:m.start()].count("\n")
                out.append((line, base + m.start(), base + m.end(), repl(m), name))
    return out


#: The bugs issue 9 names, as exact text replacements ``(file, old, new, name)``; each must be
#: killed (``--named`` runs them all). ``old`` must occur exactly once in the file.
NAMED = [
    ("symbolic/printer.py", "a = s - np.repeat(np.maximum.reduceat(s, starts), lengths)",
     "a = s.copy()", "softmax without the row maximum"),
    ("symbolic/printer.py", "z_max = _row_reduce(np.maximum, z)",
     "z_max = 0.0 * _row_reduce(np.maximum, z)", "log-sum-exp without the row maximum"),
    # "padding left in the row maximum" has no counterpart since the softmax runs over real
    # tokens only (segments); tests/test_kill_engine.py keeps its regression test.
    ("numeric/campaign.py", "return 10 * max(n_steps, 1) * rtol",
     "return 10_000 * max(n_steps, 1) * rtol", "campaign tolerance loosened 1000x"),
    ("numeric/laws.py", "PRECONDITION_TOL = 1e-10", "PRECONDITION_TOL = 1e-9",
     "precondition threshold 10x looser"),
    ("numeric/laws.py", "PRECONDITION_TOL = 1e-10", "PRECONDITION_TOL = 1e-11",
     "precondition threshold 10x stricter"),
    ("numeric/laws.py", "if self.usage > 1.0:", "if self.usage > 10.0:", "verdict threshold 10x"),
    ("numeric/laws.py", "if self.usage > 1.0:", "if self.usage > 0.1:", "verdict threshold /10"),
    ("numeric/experiments.py", '"test_accuracy": accuracy(run.params, data.test, run.spec)',
     '"test_accuracy": accuracy(run.params, data.train, run.spec)',
     "synthetic test accuracy on the training set"),
    ("numeric/experiments.py", '"test_accuracy": accuracy(run.params, data.test, spec)',
     '"test_accuracy": accuracy(run.params, data.train, spec)',
     "ablation test accuracy on the training set"),
    ("numeric/experiments.py", '"test_accuracy": accuracy(best, data.test, spec)',
     '"test_accuracy": accuracy(best, data.train, spec)',
     "SST test accuracy on the training set"),
    ("numeric/experiments.py", "mean_sentence_length(data.train) - 1.0",
     "mean_sentence_length(data.train)", "SST m per word off by one"),
    ("numeric/experiments.py", "best = stop.best", "best = traj.final",
     "last model reported instead of the best"),
    ("numeric/experiments.py", "int(outside[-1]) + 1", "int(outside[0]) + 1",
     "settled epoch from the first excursion"),
    ("numeric/model.py", "(tokens >= n_words)", "(tokens > n_words)",
     "word id n_words accepted"),
    ("numeric/model.py", "if x.dtype != spec.float:", "if False:",
     "float32 parameter under a float64 spec accepted"),
    ("numeric/integrate.py", "idx.max() >= n", "idx.max() > n", "frozen row n_words accepted"),
    ("numeric/laws.py", '(printed.sen_sensitivity(**args) + printed.sen_slopes(**args)["c"] * dc)',
     "(printed.sen_sensitivity(**args))", "SEN sensitivity without its common-score term"),
    ("numeric/laws.py", "sens = np.sqrt((entries ** 2).sum(axis=(1, 2)))[:, None]",
     "sens = 0.5 * np.sqrt((entries ** 2).sum(axis=(1, 2)))[:, None]",
     "balance sensitivity halved"),
    ("numeric/laws.py", "sens = np.sqrt((entries ** 2).sum(axis=(1, 2)))[:, None]",
     "sens = 10 * np.sqrt((entries ** 2).sum(axis=(1, 2)))[:, None]",
     "balance sensitivity 10x too large"),
]


#: Mutants read and judged equivalent (no observable behaviour changes), with why; keyed by
#: ``(file, the mutated line's text, operator, replacement)`` so the judgement follows the
#: code, not line numbers or mutant ids. They are reported, not run.
_BATTERY_INPUT = ("an input of a self-test battery rewritten into another expression over the "
                  "same arrays, symbols and functions: correct normalisers and case functions "
                  "pass it alike, and the battery covers the same elements")
_SUM_ORDER = "the order of summation indices whose ranges are independent and full"
_GENERIC = ("random coefficients of a generic combination drawn from another range: the check "
            "it confirms differs only on a set of draws of measure zero")
_HALF = ("a draw of exactly 0.5 is the only difference: numpy's random() is k/2^53, one draw "
         "in 2^53, and no seed is known to give it")
_RENAMED = ("an index of a declared law renamed to another index of the same kind that no "
            "other factor of the law reads: the same law (component labels are values, not "
            "index names)")
#: The fallback of a platform check that is never taken on Linux, where the suite runs.
_CORES = 'return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1'
_OFF_LINUX = "a fallback for platforms without os.sched_getaffinity; never taken on Linux"
_FRESH_SEED = ("a fresh point drawn from another seed that no count, solve or exact check draws "
               "either (1–5, 1000–1005 and 99 are theirs): a law's residual is 0 at every point, "
               "a non-law's vanishes only on a set of points of measure zero")
_ZERO_COLUMN = ("the scale of an all-zero column of the ansatz: any positive one keeps it 0, and "
                "the nullspace M·v = 0 is S⁻¹ times that of M·S⁻¹ for every positive diagonal S "
                "(the monomial's unit vector lies in it at any scale)")
#: A whole number divided instead of multiplied by a sign.
_SIGN = "x / ±1 is x · ±1 exactly (a float of a small whole number, read back by Fraction)"
#: The early return of ``_only_linear_if_rest_are_products`` on an empty nullspace or no
#: quadratic monomial.
_NO_QUADRATIC = "if len(null) == 0 or not quad:"
_NOTHING_TO_SPLIT = ("a shortcut: with no nullspace row, one row, or no quadratic column the "
                     "SVD below leaves no singular value to tell linear rows apart (none is "
                     "small, or every row is), so the nullspace is returned unchanged either way")
#: The exact check's first guess at a field's size.
_GENERATORS = ("the first guess at the generators Z of a sample's field: a field short of them "
               "raises _Restart and is rebuilt with 2n + 1 (a handful of rebuilds, within the "
               "12 allowed), and whether a rate of ℚ(E, Z…) is zero does not depend on how "
               "many unused generators the field has")
_SAMPLE_GUESS = ("self.generators = 2 * (data + 1)  # a first guess: a field short of them "
                 "asks for more")
_FRESH_BITS = ("the brackets need infinitesimals other than ε_0 (the motion) and each other: "
               "ε_2, ε_3, … serve as ε_1, ε_2, … do (a jet's bits are any integers) and the "
               "values read back carry none of them")
_ORDER = "the smaller (larger) of two numbers, neither NaN, does not depend on their order"
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("proofs/discovered.py", "sizes = tuple((n, min(v, CHECK_SIZE)) for n, v in setting.sizes)",
     "swap arguments 1 and 2", "(min(CHECK_SIZE, v))"):
        "the smaller of two integers does not depend on their order",
    ("proofs/theorems_cases.py",
     'return {"non-topic words": N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s',
     "Sub->Add",
     "(N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s + s[D.p] + D.s_t)"):
        _BATTERY_INPUT,
    ("proofs/discovered.py", "worst = max(_residuals(fields, inst), default=0.0)", "float 0->1",
     "(1.0)"):
        "inst is not empty here (the branch above moves on from an empty one) and _residuals "
        "gives one residual per law: the default is never taken",
    ("symbolic/fields.py", "if n > 0:", "int +1", "(1)"):
        "the whole exponents above 0 and above 1 differ at 1 only, and a SymPy power never "
        "has exponent 1 (x**1 is x when built)",
    **{("proofs/conjecture.py", "assumptions=tuple(sorted(law.assumptions, key=lambda x: "
        "order.get(x.name, 9))),", op, new):
       "any place above 3 (the last of the named assumptions) sorts every other assumption "
       "after them, among themselves in declared order (sorted is stable)"
       for op, new in [("int +1", "(10)"), ("int -1", "(8)")]},
    **{("proofs/discovered.py", _SAMPLE_GUESS, op, new): _GENERATORS
       for op, new in [("int -1", "(1)"), ("int +1", "(3)"), ("drop left term", "(1)"),
                       ("Add->Sub", "(data - 1)"), ("drop right term", "(data)"),
                       ("int -1", "(0)"), ("int +1", "(2)")]},
    ("proofs/discovered.py", "self.field, self.values = _Field(point, 1, self.generators), {}",
     "int +1", "(2)"):
        "the first field with E = e^{1/2}, finer than needed: every whole exponent is a whole "
        "power of E, and the values (and which rates are zero) are the same; a rebuilt field "
        "then takes the sample's denominator as before",
    ("proofs/discovered.py", "self.point, self.denominator = point, 1", "int +1", "(2)"):
        "the first field is built with E = e^{1/1} whatever it says; a rebuilt one then has "
        "E = e^{1/lcm(2, q)}, finer than needed: every rational exponent is still a whole "
        "power of E and the values (and which rates are zero) are the same",
    ("proofs/discovered.py", 'if name == "Y" and model.loss == "abstract":', "drop guard",
     "False"):
        "under an abstract loss only ExplicitAttention reads the label, for every class, and "
        "its loss Σ G·z never uses it (Y[c] then maps to G[c]'s target symbol, unread); an "
        "Expansion reads Y only for data inputs, which an abstract-loss model cannot read "
        "(its printed program has no data inputs: discover refuses it before the check)",
    ("proofs/theorems_cases.py",
     'values[("beta", (row,))] = sum(values[("Pi", (row, k))] * rows[0][k]', "int +1", "(1)"):
        "each row of Π is a multiple of n, the null space of U_1 − U_0: Π U_0 = Π U_1, so β "
        "read off either row is the same",
    ("proofs/discovered.py",
     "self.point = [Fraction(rng.choice(VALUES) * rng.choice((-1, 1))) for _ in range(n)]",
     "Mult->Div", "(rng.choice(VALUES) / rng.choice((-1, 1)))"): _SIGN,
    ("proofs/discovered.py",
     "frozen_values = {c: Fraction(rng.choice(VALUES) * rng.choice((-1, 1)))", "Mult->Div",
     "(rng.choice(VALUES) / rng.choice((-1, 1)))"): _SIGN,
    ("attnflow/commands/discover.py",
     "if not sep or not match or (match.group(2) is not None and int(match.group(2)) == 0):",
     "drop operand 1 of Or",
     "(not match or (match.group(2) is not None and int(match.group(2)) == 0))"):
        "an item with no '=' has an empty value, which the fraction pattern refuses too",
    ("attnflow/commands/verify.py", 'print(f"[{k}/{len(checks)}] {name} ...", flush=True)',
     "flip bool", "(False)"): "flushing decides when a stage's line appears, not its text",
    ("attnflow/commands/verify.py",
     'print(f"{INDENT}{rows[-1].result} in {rows[-1].seconds:.1f} s", flush=True)',
     "flip bool", "(False)"): "flushing decides when a stage's line appears, not its text",
    ("attnflow/explain_run.py", _CORES, "int -1", "(0)"): _OFF_LINUX,
    ("attnflow/explain_run.py", _CORES, "int +1", "(2)"): _OFF_LINUX,
    ("attnflow/commands/verify.py", 'f"({outcome.seconds:.1f} s)", flush=True)', "flip bool",
     "(False)"): "flushing decides when a theorem's line appears, not what is printed",
    ("attnflow/commands/discover.py",
     'if not sep or not re.fullmatch(r"[0-9]+", value.strip()):', "drop operand 1 of Or",
     "(not re.fullmatch('[0-9]+', value.strip()))"):
        "an item with no '=' has an empty value, which the whole-number pattern refuses too",
    ("attnflow/commands/audit.py", "flush=True))", "flip bool", "(False)"):
        "flushing decides when a theorem's text appears, not what is printed",
    ("numeric/attribution.py",
     'if getattr(self, "_at", None) is None or any(x is not y for x, y in zip(at, self._at)):',
     "swap arguments 1 and 2", "(zip(self._at, at))"):
        "the pairs are compared by identity ('is not'), which is symmetric",
    ("numeric/laws.py",
     "traj = Trajectory(data, spec, [0.0], {n: x[None] for n, x in params.items()})",
     "float 0->1", "(1.0)"):
        "the one-snapshot trajectory of sen_deviation_rate is read for its data, spec and "
        "parameters; its time is never read",
    ("numeric/replay.py", "return _replay_intervals(*_SHARED[:4], group, False)", "int +1",
     "(5)"): "_SHARED holds exactly four items when a worker runs: [:5] is [:4]",
    ("numeric/replay.py",
     "mom = ({n: lr * beta * buffer[n] for n in g} if beta and buffer is not None else {})",
     "drop operand 1 of And", "(buffer is not None)"):
        "the buffer starts None and is only made by _step when momentum > 0, so it is never "
        "set while β = 0",
    ("numeric/replay.py", "[0.0, 1.0], ends)", "float x10", "(10.0)"):
        "the two-snapshot trajectory of StepDrift.result is read for its ends only "
        "(measured_quantity never reads the time)",
    ("numeric/replay.py", 'return Attribution("SEN", self.adapter.labels, q[-1] - q[0],',
     "drop USub", "(1)"):
        "the trajectory built just above has exactly two snapshots: q[1] is q[-1]",
    ("numeric/laws.py", "names = PARAM_FIELDS + tuple(attention_module().PARAMETERS)",
     "drop right term", "(PARAM_FIELDS)"):
        "PARAM_FIELDS already lists every parameter of the attention module (HEAD_PARAMS), "
        "and names is only tested for membership",
    ("numeric/laws.py", "absolute, movement, sens = drift_measures(a, b, sensitivity)",
     "swap arguments 1 and 2", "(drift_measures(b, a, sensitivity))"):
        "the norm of −ΔQ is that of ΔQ (negation is exact) and the two movements are added, "
        "which is commutative in floating point",
    ("numeric/laws.py", "if not differences.size or not np.abs(differences).max() > 0:",
     "drop operand 2 of Or", "(not differences.size)"):
        "finite rows (the reader refuses non-finite values) that are all equal give a zero "
        "difference matrix, whose SVD has rank 0: Π = I and rank 0, as returned early",
    ("numeric/processes.py",
     'libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)',
     "drop operand 1 of Or", "('libc.so.6')"):
        "prctl is called on Linux only, where find_library('c') names libc.so.6 (glibc)",
    ("numeric/processes.py",
     'libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)',
     "flip bool", "(False)"):
        "errno is never read after prctl (a failure is ignored by design)",
    ("proofs/normalisers.py",
     '"softmax sums": _sum(a[_i] * a[_j] * V[_j, _k] * G[_k], _i, _j, _k)', "Add->Sub",
     "(_sum(a[_i] * a[_j] * V[_j, _k] * G[_k], _i, _j, _k) - _sum(a[_i] * V[_i, _k] * G[_k], "
     "_i, _k) - _sum(P[_c] * G[_k] * v[_k], _c, _k))"): _BATTERY_INPUT,
    ("proofs/normalisers.py",
     "+ _sum(W1[_n, _k] * h[_k] * b1[_n] * o[_n], _n, _k) - _sum(b2[_c] * P[_c], _c),",
     "Mult->Div", "(W1[_n, _k] / h[_k])"): _BATTERY_INPUT,
    ("proofs/normalisers.py", "+ _sum(SL.Pi[_l, _k] * U[_c, _k] - SL.beta[_l], _l, _k, _c)",
     "swap arguments 3 and 4",
     "(_sum(SL.Pi[_l, _k] * U[_c, _k] - SL.beta[_l], _l, _c, _k))"): _SUM_ORDER,
    ("proofs/theorems_cases.py",
     "(n,) = sp.Matrix([[x - y for x, y in zip(rows[1], rows[0])]]).nullspace()",
     "swap arguments 1 and 2", "(zip(rows[0], rows[1]))"):
        "the null space of the row U_1 − U_0 is that of U_0 − U_1",
    ("proofs/theorems_cases.py",
     'return {"topic word": N._sum(SL.omega[_i, _w] * (K[_i, _r] * q[_r] * a[_i]',
     "swap arguments 3 and 4",
     "(N._sum(SL.omega[_i, _w] * (K[_i, _r] * q[_r] * a[_i] + V[_i, _k] * G[_k] * "
     "sp.exp(s[_i]) / Z_s), _i, _k, _r))"): _SUM_ORDER,
    ("proofs/theorems_cases.py", "+ V[_i, _k] * G[_k] * sp.exp(s[_i])", "Div->Mult",
     "(V[_i, _k] * G[_k] * sp.exp(s[_i]) * Z_s)"): _BATTERY_INPUT,
    ("proofs/theorems_cases.py",
     'return {"non-topic words": N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s',
     "Mult->Div", "(V[_i, _k] * sp.exp(s[_i]) / G[_k])"): _BATTERY_INPUT,
    ("proofs/theorems_cases.py", "weight = sp.Rational(rng.randint(1, 9), rng.randint(1, 4))",
     "int +1", "(5)"):
        "N holds for every non-zero weight of a row of Π: a battery drawn from other "
        "denominators is a battery where N holds alike",
    ("numeric/campaign.py",
     "if rng.random() < 0.5:  # half the runs in the SEN setting, where the identity applies",
     "Lt->LtE", "(rng.random() <= 0.5)"): _HALF,
    ("numeric/campaign.py", "subset = tuple(n for n in TRAINABLE if rng.random() < 0.5)",
     "Lt->LtE", "(rng.random() <= 0.5)"): _HALF,
    ("symbolic/laws_attention.py", "_k, _l = EMBED.index(0), EMBED.index(1)", "int +1",
     "(2)"): _RENAMED,
    ("symbolic/laws_attention.py", "_c = CLASS.index(0)", "int +1", "(1)"): _RENAMED,
    ("symbolic/laws_attention.py", "_h, _f = HEAD.index(0), HEAD.index(1)", "int +1", "(2)"):
        _RENAMED,
    ("symbolic/laws_attention.py", "_h, _f = HEAD.index(0), HEAD.index(1)", "int -1", "(0)"):
        "the summed head index of columns_gram named like the free head index of rows_gram: "
        "no law reads both, so each sum still binds its own index",
    ("symbolic/laws_attention.py", "return total(M[_f, _x, _k] * M[_f, _x, _l], _x, _f)",
     "swap arguments 2 and 3", "(total(M[_f, _x, _k] * M[_f, _x, _l], _f, _x))"): _SUM_ORDER,
    ("proofs/theorems_cases.py",
     'return {"directions": N._sum(SL.Pi[_l, _k] * U[_c, _k], _k) - SL.beta[_l]', "Sub->Add",
     "(N._sum(SL.Pi[_l, _k] * U[_c, _k], _k) + SL.beta[_l])"): _BATTERY_INPUT,
    ("numeric/replay.py", "bad = np.flatnonzero((np.abs(n - k) > STEP_COUNT_TOL * "
     "np.maximum(1.0, n)) | (k < 1))", "swap arguments 1 and 2", "(np.maximum(n, 1.0))"):
        "np.maximum is symmetric, NaN included (it propagates from either argument)",
    ("attnflow/commands/discover.py", "loss = args.loss or entry.losses[0]",
     "drop operand 2 of Or", "(args.loss)"):
        "no loss given: None is not 'any', and entry.model(None) builds the first declared "
        "loss, as entry.model(entry.losses[0]) does; nothing else reads loss",
    ("proofs/counterexample.py",
     'target(math.log10(max(d.report.usage, 1e-300)), label="usage of the allowance")',
     "swap arguments 1 and 2", "(max(1e-300, d.report.usage))"):
        "the usage is finite here (checked by the line above): the larger of two finite "
        "floats does not depend on their order",
    **{("numeric/campaign.py", "for name, shape in spec.shapes(1, 2).items()}", op, new):
       "only the number of axes of each shape is kept, and it does not depend on the sizes"
       for op, new in [("swap arguments 1 and 2", "(spec.shapes(2, 1))"), ("int -1", "(0)"),
                       ("int +1", "(2)"), ("int -1", "(1)"), ("int +1", "(3)")]},
    ("numeric/campaign.py", "return 10 * max(n_steps, 1) * rtol", "swap arguments 1 and 2",
     "(max(1, n_steps))"): "the larger of two integers does not depend on their order",
    ("numeric/campaign.py", 'out[f"{rep.law} {what}"] = math.log10(max(x, 1e-300))',
     "swap arguments 1 and 2", "(max(1e-300, x))"):
        "x is finite here (checked by the line above): the larger of two finite floats does "
        "not depend on their order",
    ("numeric/replay.py", "p, buffer, sums = _f64(traj.snapshot(0)), None, _sums(traj, ads, 1)",
     "int +1", "(2)"):
        "the cost's scratch sums are written at interval 0 only and never read: a second "
        "row changes neither the step count nor what is timed beyond an allocation",
    ("numeric/replay.py", "if opt.momentum > 0:", "Gt->GtE", "(opt.momentum >= 0)"):
        "momentum is never negative (the Optimizer refuses it); at 0 the buffer made is "
        "never read, since _parts adds momentum only when β ≠ 0",
    ("numeric/laws.py",
     "elif name in ROW_FROZEN and traj.frozen_rows.get(name) is not None:",
     "drop operand 1 of And", "(traj.frozen_rows.get(name) is not None)"):
        "a Trajectory refuses frozen rows of any array outside ROW_FROZEN, so a name with "
        "frozen rows is always in it",
    ("attnflow/commands/discover.py", "if k < count_laws:", "Lt->LtE", "(k <= count_laws)"):
        "k == count_laws has returned on the line above, so ≤ and < differ on no k that "
        "reaches this line",
    ("numeric/replay.py",
     "flat = {k: np.asarray(v, dtype=float).reshape(len(self.labels), -1)", "int +1",
     "(2)"): "NumPy's reshape reads any negative size as the one size left to infer: -2 "
             "gives the shape -1 gives",
    ("numeric/campaign.py", 'worst_usage=f"{self.worst:.1e}", refresh=False)', "flip bool",
     "(True)"): "refreshing decides when the progress bar is redrawn, not what it shows",
    ("numeric/campaign.py",
     "row.worst_not_applicable = max(row.worst_not_applicable, rep.drift)",
     "swap arguments 1 and 2", "(max(rep.drift, row.worst_not_applicable))"):
        "both are finite (the row starts at 0.0 and only takes drifts checked finite by the "
        "line above) and never -0.0 (a drift is a ratio of norms): the larger of two such "
        "floats does not depend on their order",
    ("symbolic/discover.py", "return to_decimal(Fraction(rng.choice((-1, 1)) * "
     "rng.randint(1, 10 ** 6), 10 ** 6))", "int +1", "(11)"): _GENERIC,
    ("symbolic/discover.py", "def _residuals(fields, laws: list, seeds=(11, 12)) -> list[float]:",
     "int -1", "(10)"): _FRESH_SEED,
    ("symbolic/discover.py", "def _residuals(fields, laws: list, seeds=(11, 12)) -> list[float]:",
     "int +1", "(13)"): _FRESH_SEED,
    ("proofs/conjecture.py", "if prm.name not in read:", "drop guard", "False"):
        "a parameter Q does not read (directly, through a word-level node, or through ‖q‖²) "
        "has ∂Q/∂θ = sp.diff(...) = 0, which passes the index form and is zero: skipping it "
        "or finding its slope 0 leaves the same verdict and the same refusal",
    ("proofs/theorems_cases.py",
     'return {"non-topic words": N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s',
     "Add->Sub", "(N._sum(V[_i, _k] * sp.exp(s[_i]) * G[_k], _i, _k) / Z_s - s[D.p])"):
        _BATTERY_INPUT,
    ("symbolic/discover.py", "scales[scales == 0] = 1.0  # a monomial no field moves: its "
     "column stays 0",
     "float /10", "(0.1)"): _ZERO_COLUMN,
    ("symbolic/discover.py", "scales[scales == 0] = 1.0  # a monomial no field moves: its "
     "column stays 0",
     "float x10", "(10.0)"): _ZERO_COLUMN,
    ("symbolic/fields.py", "if power.is_Integer and power < 0:", "int +1", "(1)"):
        "the integers below 1 and below 0 differ at 0 only, and no factor of a SymPy product "
        "has exponent 0 (x**0 evaluates to 1 when built)",
    ("symbolic/discover.py", "return to_decimal(Fraction(rng.choice((-1, 1)) * "
     "rng.randint(1, 10 ** 6), 10 ** 6))", "int -1", "(5)"): _GENERIC,
    ("symbolic/discover.py", "magnitudes[-1])", "int -1", "(0)"):
        "the list is fresh for one _elements call on words of length ≥ 2, which appends "
        "exactly once (its recursion gets no list): its last item is its first",
    ("symbolic/discover.py", "derivative_b = _element_values(fields, words, moved, 1, DECIMAL)",
     "int +1", "(2)"): _FRESH_BITS,
    ("symbolic/discover.py", "b_full = _evaluate(fields, right, [xi + eps * ai for xi, ai in "
     "zip(x, a)], level + 1)", "int +1", "(2)"): _FRESH_BITS,
    ("symbolic/discover.py", "else min(ratio, self.smallest_accepted))",
     "swap arguments 1 and 2", "(min(self.smallest_accepted, ratio))"): _ORDER,
    ("symbolic/discover.py", "else max(ratio, self.largest_rejected))",
     "swap arguments 1 and 2", "(max(self.largest_rejected, ratio))"): _ORDER,
    ("symbolic/discover.py", "return float((hi / max(lo, floor)).log10())",
     "swap arguments 1 and 2", "(max(floor, lo))"): _ORDER,
    ("symbolic/discover.py", "dot = sum(x * y for x, y in zip(w, b))", "swap arguments 1 and 2",
     "(zip(b, w))"): "x·y and y·x are the same product, rounded alike",
    ("symbolic/discover.py", "if not laws:", "drop guard", "False"):
        "a shortcut: with no laws what follows returns the same (no residual recorded at the "
        "fresh points; a 0 × n Jacobian, of rank 0)",
    **{("symbolic/discover.py", _NO_QUADRATIC, op, new): _NOTHING_TO_SPLIT
       for op, new in [("Or->And", "(len(null) == 0 and (not quad))"),
                       ("drop operand 2 of Or", "(len(null) == 0)"),
                       ("drop operand 1 of Or", "(not quad)"), ("drop guard", "False"),
                       ("int +1", "(1)")]},
    ("symbolic/discover.py", "gnorm = sqrt(sum(y * y for y in gv)) or 1", "int +1", "(2)"):
        "the divisor that stands in for a zero gradient, whose dot products are then 0: any "
        "nonzero one gives the residual 0",
    **{("symbolic/discover.py", "point = {x: sp.Rational(rng.choice([n for n in range(-96, 97) "
        "if n]), 97) for x in symbols}", op, new): _GENERIC
       for op, new in [("int -1", "(95)"), ("int +1", "(97)"), ("int -1", "(96)"),
                       ("int +1", "(98)")]},
}


def equivalent_reason(m: Mutant, source: str) -> str:
    line = source.splitlines()[m.line - 1].strip()
    return EQUIVALENT.get((m.path, line, m.operator, m.replacement), "")


def named_mutants() -> list[Mutant]:
    out = []
    for i, (path, old, new, name) in enumerate(NAMED):
        source = (ROOT / path).read_text(encoding="utf-8")
        if source.count(old) != 1:
            raise SystemExit(f"named mutant {name!r}: {old!r} occurs {source.count(old)} "
                             f"times in {path}; update NAMED")
        start = source.index(old)
        out.append(Mutant(path, 10_000 + i, source[:start].count("\n") + 1, start,
                          start + len(old), new, f"named: {name}"))
    return out


def all_mutants(paths=None) -> list[Mutant]:
    """Every mutant of ``paths`` (default: every target); a mutant's index depends on its
    own file only."""
    mutants = []
    for path in TARGETS if paths is None else [p for p in TARGETS if p in set(paths)]:
        source = (ROOT / path).read_text(encoding="utf-8")
        found = sorted(set(ast_mutants(path, source) + text_mutants(path, source)))
        for i, (line, start, end, text, name) in enumerate(found):
            m = Mutant(path, i, line, start, end, text, name)
            try:
                ast.parse(m.apply(source))
            except SyntaxError:
                continue
            mutants.append(m)
    return mutants


# --- running -------------------------------------------------------------------------------

def _engine_signature(gen: Path) -> str:
    """The generated modules with comments and docstrings dropped (``ast.dump``)."""
    parts = []
    for p in sorted(gen.glob("*.py")):
        try:
            parts.append(p.name + ast.dump(ast.parse(p.read_text(encoding="utf-8"))))
        except SyntaxError:
            parts.append(p.name + "<syntax error>")
    return "\n".join(parts)


# --- which tests run a line (coverage, per test) --------------------------------------------

#: A pytest plugin that names the coverage context after the running test, and tells
#: subprocesses the test's id (``sitecustomize`` below measures them under it).
_CONTEXT_PLUGIN = """
import os

import coverage
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cov = coverage.Coverage.current()
    os.environ["MUTATION_TEST"] = item.nodeid
    if cov is not None:
        cov.switch_context(item.nodeid)
    yield
    os.environ.pop("MUTATION_TEST", None)
    if cov is not None:
        cov.switch_context("")
"""
#: Measures a subprocess a test starts (``python -m attnflow ...``) under that test's id.
_SITECUSTOMIZE = """
import os

if os.environ.get("MUTATION_TEST") and os.environ.get("MUTATION_COVERAGE_RC"):
    import atexit

    import coverage

    _cov = coverage.Coverage(config_file=os.environ["MUTATION_COVERAGE_RC"],
                             context=os.environ["MUTATION_TEST"], data_suffix=True)
    _cov.start()

    def _save():
        _cov.stop()
        _cov.save()

    atexit.register(_save)
"""


def _function_lines(source: str) -> set[int]:
    """Lines inside a function's body (other lines run at import, under no test)."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            body = node.body if isinstance(node.body, list) else [node.body]
            lines.update(range(body[0].lineno, body[-1].end_lineno + 1))
    return lines


def coverage_map(test_files: list[str], timeout: float) -> dict[str, dict[int, list[str]]]:
    """``{file: {line: [test ids that ran it]}}`` for the target files, from one run of
    ``test_files`` under coverage with a context per test (subprocesses included). Cached
    in the system's temporary folder under a hash of the sources and tests."""
    import json

    digest = hashlib.sha256("|".join(test_files + DESELECT).encode())
    for f in sorted({*TARGETS, *test_files, *(p.relative_to(ROOT).as_posix()
                                               for p in (ROOT / "tests").glob("*.py"))}):
        if (ROOT / f).exists():
            digest.update(f.encode() + (ROOT / f).read_bytes())
    cache = Path(tempfile.gettempdir()) / (
        f"attnflow-mutation-coverage-{digest.hexdigest()[:16]}.json")
    if cache.exists():
        return {f: lines if f == FAILING else {int(k): v for k, v in lines.items()}
                for f, lines in json.loads(cache.read_text()).items()}
    import coverage

    with tempfile.TemporaryDirectory(prefix="attnflow-coverage-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=IGNORE)
        (copy / "mutation_context.py").write_text(_CONTEXT_PLUGIN, encoding="utf-8")
        (copy / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        rc = Path(tmp) / "coveragerc"
        packages = "".join(f"    {copy / d}\n" for d in ("numeric", "symbolic", "proofs",
                                                            "attnflow"))
        rc.write_text(f"[run]\nparallel = True\ndata_file = {tmp}/.coverage\nsource =\n"
                      f"{packages}", encoding="utf-8")
        env = dict(os.environ, CI="true", PYTHONDONTWRITEBYTECODE="1",
                   MUTATION_COVERAGE_RC=str(rc),
                   PYTHONPATH=os.pathsep.join([str(copy)] + [
                       x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]))
        env.pop("HYPOTHESIS_PROFILE", None)
        cmd = [sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest",
               "-q", "-p", "no:cacheprovider", "-p", "mutation_context",
               *[t for t in test_files if (copy / t).exists()],
               *[f"--deselect={t}" for t in DESELECT]]
        run = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                             timeout=timeout)
        # a test that fails on the unmutated code would "kill" every mutant it runs for
        failing = sorted({ln.split()[1] for ln in run.stdout.splitlines()
                          if ln.startswith(("FAILED ", "ERROR ")) and len(ln.split()) > 1})
        subprocess.run([sys.executable, "-m", "coverage", "combine", f"--rcfile={rc}"],
                       cwd=copy, env=env, capture_output=True, check=True)
        data = coverage.CoverageData(basename=f"{tmp}/.coverage")
        data.read()
        out: dict[str, dict[int, list[str]]] = {}
        for measured in data.measured_files():
            rel = Path(measured).resolve().relative_to(copy.resolve()).as_posix() \
                if Path(measured).resolve().is_relative_to(copy.resolve()) else None
            if rel in TARGETS:  # the empty context: run at import or collection, in no test
                out[rel] = {line: sorted(c or AT_IMPORT for c in contexts)
                            for line, contexts in data.contexts_by_lineno(measured).items()}
        out[FAILING] = failing
    cache.write_text(json.dumps(out), encoding="utf-8")
    return out


#: The coverage map's entry listing the tests that fail on the unmutated code (deselected).
FAILING = "<failing on the code>"
#: What the coverage map records for a line run outside any test: at import or collection
#: (a function a module calls as it is imported, e.g. to build its declarations).
AT_IMPORT = "<import>"


def covering_tests(m: Mutant, source: str, covered: dict[int, list[str]] | None) -> list[str]:
    """The test ids to run for ``m``: those that ran one of its lines, in the order of its
    file's ``TESTS``; every test file when the line runs at import (module or class level,
    or in a function called as a module is imported) or when there is no coverage map;
    ``[]`` when no test runs it."""
    files = TESTS[m.path]
    if covered is None:
        return files
    last = source[:m.end].count("\n") + 1
    lines = range(m.line, last + 1)
    if not set(lines) & _function_lines(source) or any(
            AT_IMPORT in covered.get(line, []) for line in lines):
        return files
    ids = sorted({t for line in lines for t in covered.get(line, [])},
                 key=lambda t: (files.index(t.split("::")[0]) if t.split("::")[0] in files
                                else len(files), t))
    return [t for t in ids if t.split("::")[0] in files]


def run_mutant(m: Mutant, timeout: float, baseline_engine: str,
               tests: list[str] | None = None, failing=()) -> tuple[str, float, str]:
    """``(status, seconds, detail)``; status: killed, survived, timeout, equivalent,
    uncovered (no test runs the mutated line: survived without running)."""
    if tests is not None and not tests:
        return "uncovered", 0.0, "no test runs this line"
    tests = TESTS[m.path] if tests is None else tests
    start = time.perf_counter()
    env = dict(os.environ, CI="true", PYTHONDONTWRITEBYTECODE="1")
    env.pop("HYPOTHESIS_PROFILE", None)
    with tempfile.TemporaryDirectory(prefix="attnflow-mutant-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=IGNORE)
        target = copy / m.path
        target.write_text(m.apply(target.read_text(encoding="utf-8")), encoding="utf-8")
        if m.path.startswith("symbolic/") and m.path not in NOT_DERIVED:
            try:
                derive = subprocess.run([sys.executable, "-m", "attnflow", "derive"],
                                        cwd=copy, env=env, capture_output=True,
                                        timeout=timeout)
            except subprocess.TimeoutExpired:
                return "timeout", time.perf_counter() - start, "derive hung"
            # the printer's only product is the engine; indexform also serves the proofs.
            # A derive that fails leaves the old engine in place: then the tests decide.
            if m.path == "symbolic/printer.py" and derive.returncode == 0 and _engine_signature(
                    copy / "numeric" / "_generated") == baseline_engine:
                return "equivalent", time.perf_counter() - start, "same generated engine"
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-p", "no:randomly", *[t for t in tests if (copy / t.split("::")[0]).exists()
                                      and t not in failing],
               *[f"--deselect={t}" for t in (*DESELECT, *failing)]]
        try:
            r = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - start, "tests exceeded the timeout"
    seconds = time.perf_counter() - start
    if r.returncode == 0:
        return "survived", seconds, ""
    failed = [ln for ln in r.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    return "killed", seconds, failed[0] if failed else f"pytest exit {r.returncode}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=int, default=100, help="mutants to run (0: all)")
    ap.add_argument("--per-file", type=int, default=0,
                    help="draw this many mutants from each file instead (a stratified sample)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant")
    ap.add_argument("--files", nargs="*", help="only mutate these files")
    ap.add_argument("--only", nargs="*", help="run these mutant ids (path:index)")
    ap.add_argument("--named", action="store_true",
                    help="run only the bugs issue 9 names (NAMED), all of them")
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at the same time")
    ap.add_argument("--log", help="also append one line per mutant to this file")
    ap.add_argument("--all-tests", action="store_true",
                    help="run every test file of the mutated file's TESTS, not only the tests "
                         "that run the mutated line (no coverage run first)")
    ap.add_argument("--tests", nargs="*",
                    help="run only these tests (files or node ids) for every mutant, no "
                         "coverage run: does a new test kill the mutants it was written for?")
    args = ap.parse_args(argv)

    paths = args.files or ({i.rpartition(":")[0] for i in args.only} if args.only else None)
    mutants = named_mutants() if args.named else all_mutants(paths)
    sources = {p: (ROOT / p).read_text(encoding="utf-8") for p in TARGETS}
    if args.files:
        mutants = [m for m in mutants if m.path in args.files]
    if args.only:
        mutants = [m for m in mutants if m.id in set(args.only)]
    elif (args.sample or args.per_file) and not args.named:
        # the N mutants with the smallest seeded hash of what they change: the same mutants
        # are drawn again after unrelated edits elsewhere (so runs can be compared)
        def key(m):
            src = sources[m.path]
            line = src.splitlines()[m.line - 1].strip()
            text = f"{args.seed}|{m.path}|{line}|{src[m.start:m.end]}|{m.replacement}|{m.operator}"
            return hashlib.sha256(text.encode()).hexdigest()
        if args.per_file:
            drawn = [m for path in sorted({m.path for m in mutants})
                     for m in sorted((m for m in mutants if m.path == path), key=key)[
                         :args.per_file]]
        else:
            drawn = sorted(mutants, key=key)[:args.sample]
        mutants = sorted(drawn, key=lambda m: (m.path, m.index))
    if args.list:
        for m in mutants:
            print(m.describe(sources[m.path]))
        print(f"{len(mutants)} mutants")
        return 0

    baseline = ""
    if any(m.path == "symbolic/printer.py" for m in mutants):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
            copy = Path(tmp) / "repo"
            shutil.copytree(ROOT, copy, ignore=IGNORE)
            subprocess.run([sys.executable, "-m", "attnflow", "derive"], cwd=copy, env=env,
                           capture_output=True, check=True)
            baseline = _engine_signature(copy / "numeric" / "_generated")

    tests: dict[str, list[str] | None] = {m.id: None for m in mutants}
    failing: list[str] = []
    if args.tests:
        tests = {m.id: list(args.tests) for m in mutants}
    elif not args.all_tests:
        files = list(dict.fromkeys(t for m in mutants for t in TESTS[m.path]))
        print(f"coverage of {len(files)} test files (once; cached) ...", flush=True)
        covered = coverage_map(files, timeout=max(3600.0, args.timeout))
        failing = covered.pop(FAILING, [])
        if failing:
            print(f"deselected, failing on the unmutated code: {', '.join(failing)}",
                  flush=True)
        tests = {m.id: covering_tests(m, sources[m.path], covered.get(m.path, {}))
                 for m in mutants}

    counts: dict[str, int] = {}
    survivors = []
    log = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115
    t0 = time.perf_counter()
    def report(i, m, status, seconds, detail):
        counts[status] = counts.get(status, 0) + 1
        line = (f"[{i}/{len(mutants)}] {status:10s} {seconds:6.1f}s "
                f"{m.describe(sources[m.path])}" + (f"  <- {detail}" if detail else ""))
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()
        if status in ("survived", "uncovered"):
            survivors.append(m)

    def run(m):
        why = equivalent_reason(m, sources[m.path])
        if why:
            return m, "equivalent", 0.0, why
        # a mutant is applied to a fresh copy of the file at its listed offsets: an edit
        # since the listing would mutate something else, killed or surviving for nothing
        if (ROOT / m.path).read_text(encoding="utf-8") != sources[m.path]:
            raise SystemExit(f"{m.path} changed since its mutants were listed: run again")
        return (m, *run_mutant(m, args.timeout, baseline, tests[m.id], failing))

    with ThreadPoolExecutor(args.jobs) as pool:
        for i, (m, status, seconds, detail) in enumerate(pool.map(run, mutants), 1):
            report(i, m, status, seconds, detail)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    equivalent = counts.get("equivalent", 0)
    judged = len(mutants) - equivalent
    print(f"\n{len(mutants)} mutants in {time.perf_counter() - t0:.0f} s: "
          f"{counts.get('killed', 0)} killed, {counts.get('timeout', 0)} timed out (killed), "
          f"{len(survivors)} survived ({counts.get('uncovered', 0)} run by no test), "
          f"{equivalent} equivalent (same generated engine, or EQUIVALENT)")
    if judged:
        print(f"kill rate {killed}/{judged} = {killed / judged:.1%} of the mutants not "
              f"shown equivalent")
    for m in survivors:
        print("SURVIVED", m.describe(sources[m.path]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

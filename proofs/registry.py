"""Where theorems are registered: each module listed here defines ``theorems()``."""

from __future__ import annotations

import importlib

from proofs.kernel import Theorem

#: Modules whose ``theorems()`` the auditor checks, in report order.
THEOREM_MODULES = (
    "proofs.theorems_softmax",
    "proofs.theorems_sen",
    "proofs.conservation",
    "proofs.theorems_breaks",
    "proofs.theorems_convergence",
    "proofs.theorems_broken",
    "proofs.theorems_engine",
    "proofs.theorems_engine_models",
    "proofs.normalisers",
    "proofs.theorems_cases",
)


def all_theorems() -> tuple[Theorem, ...]:
    """Every registered theorem, freshly built (their checks re-run when audited)."""
    found: list[Theorem] = []
    for module in THEOREM_MODULES:
        found.extend(importlib.import_module(module).theorems())
    names = [t.name for t in found]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"theorem names registered twice: {duplicated}")
    return tuple(found)

"""The exact check (``proofs.exact``): behaviours no other test pinned down, each failing
under a realistic one-line bug (``tests/mutation.py``)."""

from __future__ import annotations

import pytest
import sympy as sp

from proofs import exact
from symbolic import laws as SL


@pytest.mark.parametrize("quantity", [SL.V[SL.w, SL._k] - sp.oo, SL.V[SL.w, SL._k] + sp.oo],
                         ids=["V-oo", "V+oo"])
def test_a_quantity_infinite_of_either_sign_is_undefined_not_conserved(quantity):
    law = SL.Law("infinite", "infinite", quantity, sp.S.Zero, (SL.w, SL._k), "matrix",
                 (SL.LINEAR,), ("linear",), (SL.trains("embeddings", "keys", "classifier"),))
    ok, detail = exact.judge(exact.check_law(law))
    assert not ok and "undefined" in detail


def test_a_quantity_through_exp_and_log_of_parameters_is_decided():
    """Entries under exp/log become extra generators of the exact field: the check decides a
    drifting quantity through them (certified ≠ 0) and keeps a constant one at 0."""
    v = SL.V[SL.w, SL._k]
    drifting = SL.Law("exp-v", "exp-v", sp.exp(v) + sp.log(1 + v ** 2), sp.S.Zero,
                      (SL.w, SL._k), "matrix", (SL.LINEAR,), ("linear",),
                      (SL.trains("embeddings", "keys", "classifier"),))
    ok, detail = exact.judge(exact.check_law(drifting))
    assert not ok and "certified ≠ 0" in detail

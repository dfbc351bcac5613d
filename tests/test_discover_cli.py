"""``attnflow discover``'s exit statuses: 0 only when every counted law was found and proved,
1 when a found law is not explained (or the closed forms and the count disagree), 3 when
nothing could be counted (nothing moves, nothing trains). The count and the closed forms are
replaced by stand-ins here: the statuses, not the mathematics, are under test."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sympy as sp

import proofs.conjecture
import symbolic.discover
from attnflow.cli import main
from proofs.conjecture import Explanation

#: Query trained: the topic-structure proofs (A1–A3) do not run.
TRAINED = ["--trainable", "embeddings,keys,query,classifier"]
x, y = sp.symbols("x y")


@pytest.fixture
def counted(monkeypatch):
    """A count of two laws; ``found(laws, unexplained)`` sets what the ansatz finds and
    which of it no declaration explains."""
    count = SimpleNamespace(laws=2, summary=lambda: "2 independent laws (stand-in)",
                            dimension=4, rank=2, directions=0, frozen=0, gap_decades=40.0,
                            ranks={1: SimpleNamespace(depth=1, route="stand-in")}, lower={})
    monkeypatch.setattr(symbolic.discover, "count_laws", lambda setting: count)

    def found(laws, unexplained=(), independent=None):
        result = SimpleNamespace(laws=list(laws), symbols=(x, y), rejected=[],
                                 independent=len(laws) if independent is None else independent,
                                 worst_residual=1e-50, singular_gap=13.0,
                                 coefficients=[{}] * len(laws))
        monkeypatch.setattr(symbolic.discover, "polynomial_laws", lambda setting: result)
        explained = [law for law in laws if law not in unexplained]
        monkeypatch.setattr(proofs.conjecture, "explain", lambda setting, f: Explanation(
            [], explained, list(unexplained)))
    return found


def test_every_law_found_and_explained_is_exit_0(counted, capsys):
    counted([x, y])
    assert main(["discover", *TRAINED]) == 0


def test_a_found_law_that_nothing_explains_is_exit_1(counted, capsys):
    """Found and verified at fresh points but outside the span of every proved declaration:
    not proved, so not a pass."""
    counted([x, y], unexplained=[y])
    assert main(["discover", *TRAINED]) == 1
    assert "not proved (no declaration explains it): y" in capsys.readouterr().out


def test_fewer_laws_found_than_counted_is_exit_1(counted, capsys):
    counted([x])
    assert main(["discover", *TRAINED]) == 1
    assert "the other 1 were not found" in capsys.readouterr().out


def test_more_laws_found_than_counted_is_exit_1(counted, capsys):
    """The closed forms and the count disagree: one of them is wrong."""
    counted([x, y], independent=3)
    assert main(["discover", *TRAINED]) == 1
    assert "3 found against 2 counted" in capsys.readouterr().out


@pytest.mark.parametrize("why, message", [
    (symbolic.discover.NothingMoves("nothing moves at this sample"), "nothing moves"),
    (ValueError("nothing trains: every coordinate is trivially constant"), "nothing trains")])
def test_nothing_to_count_is_exit_3(why, message, monkeypatch, capsys):
    """No rank to count is "not checked" (3), never a count of laws (0) nor bad usage (2)."""
    def fails(setting):
        raise why
    monkeypatch.setattr(symbolic.discover, "count_laws", fails)
    assert main(["discover", *TRAINED]) == 3
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1

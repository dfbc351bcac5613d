"""Argument types shared by the commands: every number and output path is checked when the
arguments are parsed, before any work starts (argparse turns the error into exit status 2
with the option's name)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def _plain(text: str) -> bool:
    # int() and float() also read 1_0 as 10 and other scripts' digits (٣ as 3)
    return text.isascii() and "_" not in text


def _number(text: str) -> float:
    try:
        if _plain(text):
            return float(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")


def _integer(text: str) -> int:
    try:
        if _plain(text):
            return int(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")


def positive_finite_float(text: str) -> float:
    """A finite number > 0 (a time budget, a learning rate)."""
    x = _number(text)
    if not math.isfinite(x) or x <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return x


def nonnegative_finite_float(text: str) -> float:
    """A finite number ≥ 0 (a tolerance)."""
    x = _number(text)
    if not math.isfinite(x) or x < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return x


def fraction_below_one(text: str) -> float:
    """A number in [0, 1) (a momentum coefficient)."""
    x = _number(text)
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return x


def positive_int(text: str) -> int:
    """An integer ≥ 1 (epochs, worker processes)."""
    n = _integer(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0 (a seed)."""
    n = _integer(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return n


def output_file(text: str) -> Path:
    """A path a file can be written to: its folder exists and it is not a folder."""
    from numeric.outputs import OutputError, check_output_file

    try:
        return check_output_file(text)
    except OutputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def output_folder(text: str) -> Path:
    """A path usable as an output folder: a folder, or nothing yet (it is made)."""
    from numeric.outputs import OutputError, check_output_folder

    try:
        return check_output_folder(text)
    except OutputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def model_entry(text: str):
    """A model of the catalogue by name, or a Python file ``FILE.py`` exposing ``MODEL``."""
    from symbolic.models import load
    try:
        return load(text)
    except ValueError as why:
        raise argparse.ArgumentTypeError(str(why)) from None

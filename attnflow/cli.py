"""The ``attnflow`` command line: parses arguments and hands each command to its module.

Each module in ``attnflow.commands`` defines ``add_parser(subparsers)`` (which registers the
command and sets ``func``) and keeps its work in the layers below (symbolic, numeric, proofs).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import attnflow.commands

ORDER = ("verify", "derive", "audit", "check", "laws", "reproduce", "conjecture", "discover")


def _commands() -> list[str]:
    present = {m.name for m in pkgutil.iter_modules(attnflow.commands.__path__)}
    return [c for c in ORDER if c in present] + sorted(present - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnflow",
        description="Symbolic verification of the training dynamics of attention models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _commands():
        importlib.import_module(f"attnflow.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

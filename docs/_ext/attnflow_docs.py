"""Sphinx directives that keep the documentation tied to the program.

- ``attnflow-cli``: the reference of every command and option, read from the parser that
  ``attnflow`` itself uses (``attnflow.cli.build_parser``), so it cannot drift;
- ``attnflow-run``: runs the command given as its argument while the documentation is built
  (in ``docs/_generated/``, with this checkout's code) and shows it with the output it
  printed; the build fails if the exit status differs from ``:exit:`` (default 0).
  ``:keep:`` (a regular expression) shows only the matching lines of the output.

The tests (``tests/test_docs.py``) run every other command the pages show.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
#: Where commands run during the build write their files (figures the pages show).
GENERATED = ROOT / "docs" / "_generated"
logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    sys.path.insert(0, str(ROOT))
    from attnflow.cli import build_parser

    return build_parser()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's own parser, in the order ``attnflow --help`` lists them."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else
        action.dest.upper())
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def _option_help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default))
    if action.choices and not action.option_strings:
        text = (text + " " if text else "") + "One of: " + ", ".join(map(str, action.choices))
    return text or "(no description)"


class CliReference(SphinxDirective):
    """Every command of ``attnflow``: usage, description and each option with its help."""

    def run(self):
        parser = build_parser()
        out = []
        for name, sub in subcommands(parser).items():
            section = nodes.section(ids=[f"attnflow-{name}"])
            section += nodes.title(text=f"attnflow {name}")
            section += nodes.literal_block(text=sub.format_usage().strip(), language="text")
            if sub.description:
                section += nodes.paragraph(text=sub.description)
            for group in sub._action_groups:
                actions = [a for a in group._group_actions
                           if not isinstance(a, argparse._HelpAction)]
                if not actions:
                    continue
                section += nodes.rubric(text=group.title.capitalize())
                options = nodes.definition_list()
                for action in actions:
                    item = nodes.definition_list_item()
                    item += nodes.term("", "", nodes.literal(text=_option_name(action)))
                    item += nodes.definition("", nodes.paragraph(text=_option_help(action)))
                    options += item
                section += options
            out.append(section)
        return out


_RUNS: dict[tuple[str, ...], subprocess.CompletedProcess] = {}


def run_once(argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``attnflow ARGS`` in ``docs/_generated/`` with this checkout's code; a command two
    pages show runs once per build."""
    key = tuple(argv)
    if key not in _RUNS:
        GENERATED.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
        start = time.perf_counter()
        _RUNS[key] = subprocess.run([sys.executable, "-m", "attnflow", *argv[1:]],
                                    cwd=GENERATED, env=env, capture_output=True, text=True)
        logger.info(f"attnflow-run: {shlex.join(argv)} ({time.perf_counter() - start:.0f} s)")
    return _RUNS[key]


class RunCommand(SphinxDirective):
    """``$ attnflow ARGS`` and what it printed, run at build time."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"exit": directives.nonnegative_int, "keep": directives.unchanged}

    def run(self):
        command = self.arguments[0]
        argv = shlex.split(command)
        if argv[0] != "attnflow":
            raise self.error(f"attnflow-run runs attnflow commands, not {argv[0]!r}")
        done = run_once(argv)
        expected = self.options.get("exit", 0)
        if done.returncode != expected:
            raise self.error(f"`{command}` exited {done.returncode}, the page says {expected}:"
                             f"\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        lines = done.stdout.rstrip("\n").splitlines()
        if "keep" in self.options:
            lines = kept(lines, re.compile(self.options["keep"]))
        text = "\n".join([f"$ {command}", *lines])
        return [nodes.literal_block(text=text, language="console")]


def kept(lines: list[str], keep: re.Pattern) -> list[str]:
    """The lines ``keep`` matches, each run of left-out lines shown as one ``…``."""
    out = []
    for line in lines:
        if keep.search(line):
            out.append(line)
        elif not out or out[-1] != "…":
            out.append("…")
    return out


def setup(app):
    app.add_directive("attnflow-cli", CliReference)
    app.add_directive("attnflow-run", RunCommand)
    return {"parallel_read_safe": False, "parallel_write_safe": True}

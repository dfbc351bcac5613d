"""The ``attnflow`` command line: parses arguments and hands each command to its module.

Each module in ``attnflow.commands`` defines ``add_parser(subparsers)`` (which registers the
command and sets ``func``) and keeps its work in the layers below (symbolic, numeric, proofs).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading

import attnflow.commands

ORDER = ("verify", "derive", "audit", "check", "laws", "reproduce", "conjecture", "discover")


def _commands() -> list[str]:
    present = {m.name for m in pkgutil.iter_modules(attnflow.commands.__path__)}
    return [c for c in ORDER if c in present] + sorted(present - set(ORDER))


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit status 2) naming the option, with a pointer to --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="attnflow",
        description="Symbolic verification of the training dynamics of attention models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _commands():
        importlib.import_module(f"attnflow.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; its exit status: 0 holds, 1 violated/failed, 2 bad usage or
    unreadable input, 3 nothing could be checked (130: interrupted)."""
    try:
        args = build_parser().parse_args(argv)  # --help may meet a closed pipe too
    except BrokenPipeError:
        _silence_stdout()
        return 1
    stdout, sys.stdout = sys.stdout, PipeSafe(sys.stdout)
    try:
        with termination_unwinds():
            status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except Terminated as stop:
        print(f"attnflow {args.command}: terminated ({stop.name})", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"attnflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        outputs = sys.modules.get("numeric.outputs")
        if outputs is not None and isinstance(err, outputs.OutputError):
            print(f"attnflow {args.command}: {err}", file=sys.stderr)
            return 2
        raise
    finally:
        sys.stdout = stdout


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C: the command stops its worker processes and
    releases its output folder on the way out, instead of dying with its workers still
    writing there."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name


@contextlib.contextmanager
def termination_unwinds():
    """While inside, SIGTERM and SIGHUP raise ``Terminated`` in the main thread, once: a
    repeated signal must not cut short the clean-up the first one started."""
    def stop(signum, frame):
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    wanted = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class PipeSafe:
    """stdout that a reader may stop reading (``attnflow laws run.npz | head``): once the pipe
    is closed, further output is dropped and the command still finishes its work (files it
    writes, its exit status) instead of dying with a BrokenPipeError traceback."""

    def __init__(self, stream):
        self._stream, self.closed_pipe = stream, False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.closed_pipe = True
        _silence_stdout()  # the interpreter's own flush at exit must not fail either

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (e.g. captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())

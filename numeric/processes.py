"""Worker processes that never outlive the run that started them.

A run that is stopped (Ctrl-C, SIGTERM) must take its workers down before it exits and
before it releases its output folder: left running, they go on writing figures into a
folder another run may already hold. ``end_pool`` ends a ``ProcessPoolExecutor``'s workers
and returns only once they are gone. ``start_worker``, run first in every worker, leaves
Ctrl-C and termination to the parent — a signal sent to the whole process group (a
terminal's Ctrl-C, ``timeout``, a service manager) reaches the workers too, and the parent
decides what becomes of their work — and makes the kernel kill the worker if the parent
dies without cleaning up (SIGKILL).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1


def start_worker() -> None:
    """In a freshly started worker: ignore SIGINT, SIGTERM and SIGHUP (the parent stops the
    work and ends this process) and, on Linux, receive SIGKILL when the parent dies."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    # tqdm's default lock is a multiprocessing semaphore, which a terminated worker leaves
    # to the resource tracker (a "leaked semaphore" warning as the run exits); a worker's
    # bars are never shown, so a thread lock serves
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def end_processes(processes) -> None:
    """Kill ``processes`` (``multiprocessing.Process``; SIGKILL, as workers ignore SIGTERM
    and their work is abandoned) and return once every one has exited."""
    processes = [p for p in processes if p.is_alive()]
    for p in processes:
        with contextlib.suppress(OSError, ValueError):
            p.kill()
    for p in processes:
        p.join()


def end_pool(pool) -> None:
    """End a ``concurrent.futures.ProcessPoolExecutor`` now: queued work cancelled, running
    workers terminated (``shutdown`` alone waits for the running jobs to finish)."""
    # the executor keeps its processes in ``_processes`` (pid → Process); Python 3.14's
    # ``terminate_workers`` does the same
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    end_processes(processes)
    pool.shutdown(wait=True)

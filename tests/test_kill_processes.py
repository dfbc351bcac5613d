"""Worker processes never outlive their run (``numeric.processes``): behaviours no other test
pinned down, each failing under a realistic one-line bug (``tests/mutation.py``)."""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import ctypes.util
import multiprocessing
import signal
import sys
import time

import pytest

from numeric.processes import end_pool, start_worker

_PR_GET_PDEATHSIG = 2

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl: Linux")


def _death_signal_after_start(queue):
    start_worker()
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    sig = ctypes.c_int(-1)
    libc.prctl(_PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0)
    queue.put((sig.value, signal.getsignal(signal.SIGTERM) == signal.SIG_IGN,
               signal.getsignal(signal.SIGINT) == signal.SIG_IGN))


def test_a_started_worker_dies_with_its_parent_and_ignores_termination():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    p = ctx.Process(target=_death_signal_after_start, args=(queue,))
    p.start()
    got = queue.get(timeout=30)
    p.join()
    assert got == (signal.SIGKILL, True, True)


def test_ending_a_pool_takes_its_workers_down_before_it_returns():
    pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                  initializer=start_worker)
    job = pool.submit(time.sleep, 30)
    while not job.running():
        time.sleep(0.01)
    workers = list(pool._processes.values())
    start = time.monotonic()
    end_pool(pool)
    assert workers and not any(p.is_alive() for p in workers)
    assert time.monotonic() - start < 15          # the running job was not waited for

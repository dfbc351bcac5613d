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


def test_sigint_is_ignored_only_while_the_pool_may_still_spawn_a_worker(monkeypatch):
    """Ignoring SIGINT around every submit lost a Ctrl-C that arrived in that window (the
    campaign then ran on to its end); the pool spawns only during its first ``workers``
    submits, so only those need children that ignore it."""
    import contextlib

    import numeric.executors as executors

    windows = []

    @contextlib.contextmanager
    def recorded():
        windows.append(len(windows))
        yield

    class Pool:
        def submit(self, fn, *args):
            return cf.Future()

    monkeypatch.setattr(executors, "_interrupts_ignored_by_children", recorded)
    local = object.__new__(executors.LocalProcesses)
    local.workers, local._pool, local.channel, local._futures, local._submitted = \
        2, Pool(), None, set(), 0
    for _ in range(5):
        local.submit(None)
    assert len(windows) == 2 and len(local._futures) == 5


def _square(x):
    return x * x


def test_a_spawning_pool_starts_no_worker_after_it_has_them_all():
    """What the window above relies on: a pool of ``workers`` spawned processes has them all
    after ``workers`` submits, and later submits reuse them."""
    pool = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    try:
        assert [pool.submit(_square, k).result() for k in range(2)] == [0, 1]
        started = set(pool._processes)
        assert len(started) <= 2
        assert [pool.submit(_square, k).result() for k in range(2, 6)] == [4, 9, 16, 25]
        assert set(pool._processes) == started
    finally:
        pool.shutdown()

"""Where a campaign's shards run: local processes, or a Dask distributed cluster.

Both give ``submit(shard)`` → future, ``wait(futures, timeout)`` → (done, pending),
``result(future)``, ``stop()`` (ask running shards to stop at their next example) and
``close()``. Local processes also stream per-trajectory progress; Dask reports per shard.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import uuid
from multiprocessing.managers import SyncManager

from numeric.campaign import Shard, ShardResult, run_shard
from numeric.processes import end_pool, start_worker

#: What a call to the manager process raises once it is gone (a signal sent to the whole
#: process group reaches it too).
_MANAGER_GONE = (OSError, EOFError)


class _Channel:
    """Per-trajectory progress and the stop flag, shared with local worker processes."""

    def __init__(self, queue, event):
        self.queue, self.event = queue, event

    def put(self, item):
        with contextlib.suppress(*_MANAGER_GONE):
            self.queue.put(item)

    def stopped(self) -> bool:
        """Whether the campaign asked the shards to stop (or can no longer be asked)."""
        try:
            return self.event.is_set()
        except _MANAGER_GONE:
            return True


@contextlib.contextmanager
def _interrupts_ignored_by_children():
    """Processes started inside inherit an ignored SIGINT (it survives exec, and Python then
    installs no KeyboardInterrupt handler), so Ctrl-C reaches only this process, which stops
    the shards and still collects their work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: What Dask's nanny sets in every worker's environment (``distributed.nanny.pre-spawn-environ``):
#: single-threaded BLAS. Local workers get the same, so that a shard's floating-point results
#: — and the report — are bit for bit those of a Dask worker.
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}


class LocalProcesses:
    """Shards on ``workers`` fresh local processes (spawned, not forked: BLAS reads its
    thread count when NumPy loads, and a patch of this process must not leak into shards)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        # workers are spawned on demand, while shards are submitted: the environment they
        # inherit stays set until close()
        self._saved = {k: os.environ.get(k) for k in WORKER_ENVIRONMENT}
        os.environ.update(WORKER_ENVIRONMENT)
        self._manager = SyncManager()
        with _interrupts_ignored_by_children():  # Ctrl-C must not kill the shared queue
            self._manager.start(start_worker)
        self.channel = _Channel(self._manager.Queue(), self._manager.Event())
        self._pool = cf.ProcessPoolExecutor(self.workers,
                                            mp_context=multiprocessing.get_context("spawn"),
                                            initializer=start_worker)
        self._futures = set()
        self._submitted = 0

    def submit(self, shard: Shard):
        # the pool spawns a worker per submit until it has them all (and never again: one
        # dying breaks the pool); only then is SIGINT ignored, as a Ctrl-C meanwhile is lost
        spawning = self._submitted < self.workers
        with _interrupts_ignored_by_children() if spawning else contextlib.nullcontext():
            future = self._pool.submit(run_shard, shard, self.channel)
        self._submitted += 1
        self._futures.add(future)
        return future

    def wait(self, futures, timeout: float):
        done, pending = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done, pending

    def result(self, future) -> ShardResult:
        return future.result()

    def progress(self) -> list[tuple[int, float]]:
        """Trajectories finished since the last call: (laws checked, worst usage) each."""
        items = []
        with contextlib.suppress(*_MANAGER_GONE):
            while not self.channel.queue.empty():
                items.append(self.channel.queue.get())
        return items

    def stop(self):
        with contextlib.suppress(*_MANAGER_GONE):  # then the shards see it gone and stop
            self.channel.event.set()

    def close(self):
        """Shut the workers and the manager down, and return once they are gone: shards
        still running (a second Ctrl-C, or a drain that gave up) are terminated, not
        awaited."""
        if all(f.done() for f in self._futures):
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            end_pool(self._pool)
        self._manager.shutdown()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _DaskChannel:
    """The stop flag as a Dask ``Event`` (checked once per example); no progress stream."""

    def __init__(self, name: str):
        self.name = name

    def put(self, item):
        pass

    def stopped(self) -> bool:
        from dask.distributed import Event

        return Event(self.name).is_set()


#: Seconds a Dask scheduler has to answer: connection, handshake and first reply.
SCHEDULER_SECONDS = 15.0


def connect_client(address: str, seconds: float | None = None):
    """A ``dask.distributed.Client`` of the scheduler at ``address``; ValueError naming it when
    it cannot be reached or does not answer within ``seconds`` (default
    ``SCHEDULER_SECONDS``). Dask bounds the connection but not the handshake after it, so a
    port that accepts and stays silent would hang the client forever: it is made in a
    thread of its own, left behind if it does not return in time."""
    from dask.distributed import Client

    seconds = SCHEDULER_SECONDS if seconds is None else seconds
    outcome = {}

    def connect():
        try:
            outcome["client"] = Client(address, timeout=seconds)
        except BaseException as why:  # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = why

    thread = threading.Thread(target=connect, name="attnflow-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds + 1.0)  # Dask's own timeout, when it applies, fires first
    if thread.is_alive():
        raise ValueError(f"the Dask scheduler at {address} did not answer within "
                         f"{seconds:g} s (is it a Dask scheduler?)")
    why = outcome.get("error")
    if isinstance(why, Exception):  # any failure to make a client comes from the address
        # (an unknown protocol: TypeError from Dask's connector registry)
        text = str(why).splitlines()[0] if str(why).strip() else type(why).__name__
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {text}") from None
    if why is not None:
        raise why
    return outcome["client"]


class DaskCluster:
    """Shards on a Dask distributed cluster: ``address`` of a running scheduler, or
    ``"local"`` for a ``LocalCluster`` of ``workers`` single-threaded processes."""

    def __init__(self, address: str, workers: int | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--scheduler needs dask.distributed: "
                             "python3 -m pip install -e \".[cluster]\"") from None
        self._cluster = None
        if address == "local":
            with _interrupts_ignored_by_children():
                self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                             threads_per_worker=1, processes=True,
                                             dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            self._client = connect_client(address)
        self.workers = max(1, sum(self._client.nthreads().values()))
        self._stop_name = f"attnflow-check-stop-{uuid.uuid4().hex}"
        self.channel = _DaskChannel(self._stop_name)

    def submit(self, shard: Shard):
        return self._client.submit(run_shard, shard, self.channel, pure=False)

    def wait(self, futures, timeout: float):
        from dask.distributed import wait

        try:
            done, pending = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set(), set(futures)
        return set(done), set(pending)

    def result(self, future) -> ShardResult:
        return future.result()

    def progress(self) -> list[tuple[int, float]]:
        return []  # per shard only

    def stop(self):
        from dask.distributed import Event

        Event(self._stop_name, client=self._client).set()

    def close(self):
        # bounded: after Ctrl-C a LocalCluster's workers may already be gone
        self._client.close(timeout=10)
        if self._cluster is not None:
            self._cluster.close(timeout=10)

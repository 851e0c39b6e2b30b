"""Spreading large batches of Paillier work over the machine's cores: threads or worker processes.

gmpy2's list functions (``powmod_base_list``, used by full re-randomization) and the numba kernel of
decryption (:mod:`smpc.he.montgomery`) release the GIL, so they run on threads. Fixed-base encryption
and multi-exponentiation are Python loops of gmpy2 products, which hold the GIL; they run in worker
processes started with ``spawn`` (safe in a process that already runs threads). Only our own
integers and bytes cross to the workers.

A batch below ``threshold`` items stays in the calling thread, so small operations pay nothing. The
pools start on first use and live as long as their :class:`Parallelism`; :data:`DEFAULT` serves every
key that is not given one. A daemonic process (a party launched by ``smpc.launch``) may not start
children, so there the process work runs in the calling thread. As with any ``spawn`` pool, a script
that encrypts large arrays at import time must keep its work under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Sequence


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Parallelism:
    """How many cores large batches use, and from which size on (``workers=1``: always serial)."""

    def __init__(self, workers: int | None = None, threshold: int = 32):
        workers = available_cores() if workers is None else workers
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ValueError(f"threshold must be a positive integer, got {threshold!r}")
        self.workers = workers
        self.threshold = threshold
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"Parallelism(workers={self.workers}, threshold={self.threshold})"

    def use_for(self, items: int) -> bool:
        """Whether a batch of ``items`` is spread over the workers."""
        return self.workers > 1 and items >= self.threshold

    def split(self, items: Sequence, parts: int | None = None) -> list:
        """``items`` cut into at most ``parts`` (default: the workers) contiguous, near-equal chunks."""
        parts = max(1, min(len(items), parts or self.workers))
        size, extra = divmod(len(items), parts)
        chunks, start = [], 0
        for k in range(parts):
            stop = start + size + (k < extra)
            chunks.append(items[start:stop])
            start = stop
        return chunks

    def thread_map(self, fn: Callable, calls: Sequence[tuple]) -> list:
        """``[fn(*args) for args in calls]`` on the thread pool (for work that releases the GIL)."""
        return self._run(self._thread_pool(), fn, calls)

    def process_map(self, fn: Callable, calls: Sequence[tuple]) -> list:
        """``[fn(*args) for args in calls]`` in the worker processes (``fn`` importable, arguments picklable)."""
        if multiprocessing.current_process().daemon:  # daemons may not have children
            return [fn(*args) for args in calls]
        return self._run(self._process_pool(), fn, calls)

    def start(self, calls: Sequence[tuple] = (), fn: Callable | None = None) -> None:
        """Start the worker processes now (and run ``fn`` on ``calls`` there), so a later batch pays no start-up."""
        pool = self._process_pool()
        if fn is None:
            pool.submit(os.getpid).result()
        else:
            self._run(pool, fn, calls)

    def close(self) -> None:
        """Stop the pools (they restart on the next large batch)."""
        with self._lock:
            threads, processes = self._threads, self._processes
            self._threads = self._processes = None
        if threads is not None:
            threads.shutdown(wait=True)
        if processes is not None:
            processes.shutdown(wait=True, cancel_futures=True)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="smpc-he")
            return self._threads

    def _process_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._processes is None:
                context = multiprocessing.get_context("spawn")
                self._processes = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._processes

    @staticmethod
    def _run(pool: Executor, fn: Callable, calls: Sequence[tuple]) -> list:
        futures = [pool.submit(fn, *args) for args in calls]
        return [future.result() for future in futures]


#: used by every key that is not given its own
DEFAULT = Parallelism()

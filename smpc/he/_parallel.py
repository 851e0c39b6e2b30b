"""Spreading large Paillier batches over the machine's cores, on threads of this process.

Everything that runs here releases the GIL: the numba kernels of decryption
(:mod:`smpc.he.montgomery`), of encryption and of large matrix products (:mod:`smpc.he.lanes`),
and gmpy2's list exponentiations (``powmod_exp_list``, ``powmod_base_list``). No worker process is
ever started, so a script needs no ``if __name__ == "__main__":`` guard to encrypt, compute or
decrypt, and a daemonic process (a party launched by ``smpc.launch``) spreads its work like any
other. Work that holds the GIL (small multi-exponentiations in gmpy2 products) stays in the
calling thread.

A batch below ``threshold`` items stays in the calling thread, so small operations pay nothing;
whoever calls decides what an item is (one exponentiation, one ciphertext). The thread pool starts
on first use and lives as long as its :class:`Parallelism`; :data:`DEFAULT` serves every key that is
not given one.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Parallelism:
    """How many threads large batches use, and from which size on (``workers=1``: always serial)."""

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
        if len(calls) < 2:
            return [fn(*args) for args in calls]
        pool = self._thread_pool()
        futures = [pool.submit(fn, *args) for args in calls]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the thread pool (it restarts on the next large batch)."""
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="smpc-he")
            return self._threads


#: used by every key that is not given its own
DEFAULT = Parallelism()

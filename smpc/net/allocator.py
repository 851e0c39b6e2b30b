"""malloc settings under which protocol steps reuse freed array memory (glibc), and a way to apply them.

An MPC run allocates and frees arrays of many megabytes at every step (shares, masks, PRG output, one-hot
rows). By default glibc hands every allocation above its mmap threshold, and every thread's heap that
empties, back to the kernel, so the next array is first-touch memory the kernel must fault in and zero;
on virtual machines that return freed pages to the host this costs about 2 s per GB, more than the
protocol's own arithmetic (the AES key stream runs at 5 GB/s into warm memory and at 0.45 GB/s into fresh
memory on the project's 2-core machine; 10^6-element inv_sqrt takes half the time with the settings).

:data:`SETTINGS` keep freed memory in one heap: one arena for all threads, no per-allocation mmap, up to
4 GiB free at the heap's top before it is trimmed (with 1 GiB, a 10^6-element inv_sqrt, whose steps peak at
1.7 GiB, gave its top back and faulted it in again within each run: 2.4 s against 1.4 s). glibc reads
them from the environment when a process starts, so they cannot be switched on inside a running process:
smpc's own processes get them (the TCP launcher's party processes, ``python -m smpc`` and ``python -m
smpc_bench`` re-start themselves with them), and a user's process gets them from its environment (the README
shows how).
``SMPC_TUNE_MALLOC=0`` leaves the environment alone. :func:`release_freed_memory` returns every free page
at once (``malloc_trim``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading
from collections.abc import Mapping

#: glibc malloc tunables (mallopt(3); the trailing underscores are glibc's spelling)
SETTINGS = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}
OPT_OUT = "SMPC_TUNE_MALLOC"
_environ_lock = threading.Lock()


def applies(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the settings mean anything here (Linux with glibc) and are wanted (no ``SMPC_TUNE_MALLOC=0``)."""
    environ = os.environ if environ is None else environ
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and environ.get(OPT_OUT) != "0"


def tuned_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) with :data:`SETTINGS` added where not set already
    (a user's own values win), or unchanged where they do not apply."""
    environ = dict(os.environ if environ is None else environ)
    if applies(environ):
        for name, value in SETTINGS.items():
            environ.setdefault(name, value)
    return environ


def is_tuned(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``environ`` already names every setting (or they do not apply)."""
    environ = os.environ if environ is None else environ
    return not applies(environ) or all(name in environ for name in SETTINGS)


def restart_tuned() -> None:
    """Re-start this program (a ``python ...`` command line, as ``sys.orig_argv`` has it) with the settings,
    unless it already runs with them or they do not apply. For the ``__main__`` of smpc's own commands."""
    if is_tuned():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], tuned_environment())


def release_freed_memory() -> None:
    """Return every free page of malloc's heap to the system now (glibc ``malloc_trim``; else nothing)."""
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass


@contextlib.contextmanager
def for_child_processes():
    """Within the block, processes started from this one (multiprocessing's spawn) get the settings: they are
    put in this process's environment (where unset) and taken out again afterwards."""
    added = {name: value for name, value in tuned_environment().items() if name not in os.environ}
    with _environ_lock:
        os.environ.update(added)
        try:
            yield
        finally:
            for name in added:
                os.environ.pop(name, None)

"""Each simulated site's rows in a file of its own, read once per worker process.

Flower's simulation engine hands the ClientApp to its Ray workers with every message, so a ClientApp that
holds all sites' data in memory ships all of it each time (10 sites of 10^6 parameters: 80 MB per
message). The simulations here write each site's arrays to an ``.npz`` file (as a deployed site reads its
own file) and the ClientApp holds only the paths; a worker reads a file the first time it serves that
site and keeps it in :func:`load`'s cache (per process, keyed by path and modification time).
"""

from __future__ import annotations

import functools
import os

import numpy as np


def save(folder: str, index: int, **arrays: np.ndarray) -> str:
    """Write one site's arrays to ``folder/site_<index>.npz``; returns the path."""
    path = os.path.join(folder, f"site_{index}.npz")
    np.savez(path, **arrays)
    return path


def load(path: str) -> dict[str, np.ndarray]:
    """The arrays of a site's file (no pickles), read once per process while the file is unchanged."""
    return _load(path, os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: str, _mtime: int) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}

"""Which ring matmul kernel (numpy, row-update "axpy" or tiled "dot") a product of a given shape runs on, and
the lock every parallel numba launch holds. The matmul and conv2d kernels both pick their layout here.
"""

from __future__ import annotations

import threading

import numba

# Numba's "workqueue" threading layer aborts when two Python threads launch parallel
# kernels at once (parties run as threads). Every parallel launch holds this lock;
# nothing is lost, since one launch already uses every core.
PARALLEL_LOCK = threading.Lock()

# ---------------------------------------------------------------------------------------
# Dispatcher thresholds (see choose_kernel), measured on this project's 2-core AMD EPYC (Zen 4,
# AVX-512) VM with numba 0.68; best of many calls (timings on this VM are noisy, +-30%):
#  * numpy's generic loop costs ~0.65 ns per multiply-add (MAC) + ~1 us, a numba call
#    ~4 us: numpy wins up to ~6000 MACs (16^3: numpy 3.7 us, dot 5.5; 24^3: 9.6 vs 6.8),
#    and up to ~50k for a tiny output (2x1000 @ 1000x3: 4.9 vs 7.8 us; 1x5000 @ 5000x4:
#    15 vs 42 us).
#  * parallel (2 threads) beats serial from ~200k MACs on an idle machine (64^3: 24 vs
#    30 us, 128^3: 154 vs 189 us), but a launch stalls for milliseconds when another
#    thread (another party) holds a core, so parallel starts at 1M MACs.
#  * the dot kernel (4 x 4 tiles of dot products along k, b transposed) loses to the
#    row-update ("axpy") kernel for short k (300x32 @ 32x300: 289 vs 185 us; k=64: 393 vs
#    361 to 402 vs 482) and for few rows of a (8x500 @ 500x500: 200 vs 130 us; 16x500:
#    262 vs 288) unless b is large (8x2000 @ 2000x2000: 7.8 vs 6.3 ms; 12x2000: 8.6 vs
#    18 ms); axpy needs n >= 16 to fill its vectors (500x500 @ 500x1: 37 vs 227 us), and
#    with both k and n small numpy is best (1000x4 @ 4x4: 13 us, dot 14, axpy 26).
#  * few output tiles and a long k: the dot kernel splits k between threads.
# ---------------------------------------------------------------------------------------
_NUMPY_MAX_MACS = 6_000
_NUMPY_TINY_OUT_MAX_MACS = 50_000  # when m * n <= 16
_PARALLEL_MIN_MACS = 1_000_000
_DOT_MIN_K = 40
_DOT_MIN_M = 16
_DOT_MIN_M_BIG_B = 10  # ... when b has >= _BIG_B elements
_BIG_B = 1 << 18
_AXPY_MIN_N = 16


def nthreads() -> int:
    """The number of threads numba's parallel kernels use."""
    return numba.get_num_threads()


def choose_kernel(nb: int, m: int, k: int, n: int) -> tuple[str, bool]:
    """(method, parallel) for nb products of (m x k) @ (k x n), k >= 1."""
    macs = nb * m * k * n
    if macs <= _NUMPY_MAX_MACS or (m * n <= 16 and macs <= _NUMPY_TINY_OUT_MAX_MACS):
        return "numpy", False
    parallel = macs >= _PARALLEL_MIN_MACS and nthreads() > 1
    if n < _AXPY_MIN_N:
        return ("dot", parallel) if k >= 8 else ("numpy", False)
    if k >= _DOT_MIN_K and (m >= _DOT_MIN_M or (m >= _DOT_MIN_M_BIG_B and k * n >= _BIG_B)):
        return "dot", parallel
    return "axpy", parallel

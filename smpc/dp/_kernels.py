"""Numba kernels for DP noise and clipping: Box-Muller and Laplace from CSPRNG words, uniforms, a fused clipped sum.

numba has no vector math library here (no SVML), so ``math.log1p``/``sin``/``cos`` are scalar libm
calls (~35 ns for one Box-Muller pair). The kernels therefore evaluate log, sin and cos with their
own branch-free polynomials, which LLVM vectorises (AVX-512 on this project's VM):

* ``_log_unit(v)``: log v for v in (0, 1] a normal double. v = 2^e m with m in [sqrt(1/2), sqrt(2)),
  f = m - 1 (exact), s = f / (2 + f), and log(1 + f) = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R)) with
  R = sum_{j=1..11} 2 s^(2j) / (2j + 1) (|s| < 0.172, so the series is exact to 2^-60 relative).
  e ln2 is added in two parts (ln2 rounded to 40 bits, e ln2_hi exact, plus the remainder).
* ``_sincos(a)``: sin and cos of a double a in [0, 2 pi). k = round(a / (pi/2)), r = a - k pi/2 by
  Cody-Waite reduction with pi/2 in three parts (33 + 33 + 53 bits, so k * part is exact for k <= 4
  and the reduced argument keeps 53 good bits even at the nearest approach of a double to k pi/2,
  ~6e-17), carried as r + rl. On |r| <= pi/4 both Taylor series converge to < 2^-60 relative by x^17
  (sin) and x^18 (cos); the quadrant k mod 4 then swaps and negates.

Both agree with glibc's (correctly rounded in practice) log1p/sin/cos to about one ulp; the tests
check them against numpy. The words are AES key-stream output (smpc.ring.prg); a uniform is the top 53 bits
of a word times 2^-53, so 1 - u is exact and log1p(-u) = log(1 - u) needs no special care near 0.

Threading follows smpc.ring.matmul: serial variants for all but large inputs (see PARALLEL_MIN_*),
parallel ones cut into a few chunks per thread and launched under ``PARALLEL_LOCK`` (numba's
threading layers may abort on concurrent launches). ``error_model="numpy"`` drops Python's
division-by-zero checks, which would stop LLVM vectorising; ``fastmath`` stays off: the error-free
transformations of the range reduction rely on IEEE rounding of every operation, and sums keep
their order. The clipped sum and the sum of squares read arrays by address (``ndarray.ctypes.data``),
so one compiled variant serves writeable and read-only inputs alike and any number of updates.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.extending import intrinsic

from smpc.ring.kernel_choice import PARALLEL_LOCK

# Constants (derivation in tests/test_dp_fast.py::test_kernel_constants). pi/2 = P1 + P2 + P3 + O(2^-123):
_P1 = 1.5707963267341256  # 0x1.921fb544p+0, pi/2 rounded to 33 bits
_P2 = 6.077100506303966e-11  # 0x1.0b4611a6p-34, the next 33 bits
_P3 = 2.0222662487959506e-21  # 0x1.3198a2e037073p-69, the next 53 bits
_TWO_OVER_PI = 0.6366197723675814
_LN2_HI = 0.6931471805601177  # 0x1.62e42fefa4p-1: ln 2 rounded to 40 bits, so e * _LN2_HI is exact
_LN2_LO = -1.7239444525614835e-13  # ln 2 - _LN2_HI
_SQRT2 = 1.4142135623730951
_TWO_PI = 6.283185307179586  # 2.0 * math.pi, exactly
_UNIT = 2.0**-53
_SHIFT = np.uint64(11)  # a word's top 53 bits
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000

# Taylor coefficients: sin x = x + x^3 (S3 + x^2 (S5 + ...)), cos x = 1 - x^2/2 + x^4 (C4 + x^2 (C6 + ...)).
_S3, _S5, _S7, _S9 = -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880
_S11, _S13, _S15, _S17 = -1.0 / 39916800, 1.0 / 6227020800, -1.0 / 1307674368000, 1.0 / 355687428096000
_C4, _C6, _C8, _C10 = 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800
_C12, _C14, _C16, _C18 = 1.0 / 479001600, -1.0 / 87178291200, 1.0 / 20922789888000, -1.0 / 6402373705728000
# 2 / (2j + 1), j = 1..11: the atanh series of the log.
_L1, _L2, _L3, _L4 = 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9
_L5, _L6, _L7, _L8 = 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17
_L9, _L10, _L11 = 2.0 / 19, 2.0 / 21, 2.0 / 23

# Parallel launches. Serially a Box-Muller output costs ~2 ns and a clipped-sum element ~0.4 ns per
# update (memory-bound: a second core adds little). On this project's shared 2-core VM a parallel
# launch waits ~4-8 ms whenever something else holds the other core (10^6 draws: 2 ms serial, 8 ms
# parallel; 4 * 2^20: 8.5 ms serial, 16 ms parallel), so the kernels stay serial until the serial
# time is ~8 ms or more.
PARALLEL_MIN_NOISE = 1 << 22  # outputs
PARALLEL_MIN_SUM = 1 << 25  # elements times updates
_SUM_BLOCK = 1 << 17  # elements of the output (1 MiB, an L2) kept in cache while each update is added to it


def _nthreads() -> int:
    return numba.get_num_threads()


def _nchunks(items: int) -> int:
    """Chunks for a parallel launch: a few per thread (at most one per item)."""
    return max(1, min(4 * _nthreads(), items))


# ----------------------------------------------------------------------------- intrinsics
@intrinsic
def _bits(typingctx, x):
    """The IEEE bit pattern of a float64 as an int64 (a free bitcast)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 with bit pattern ``i`` (int64)."""
    if i != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _f64_pointer(typingctx, address):
    """A float64 pointer to ``address`` (an int64 from ``ndarray.ctypes.data``)."""
    if address != types.int64:
        return None
    result = types.CPointer(types.float64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(result))

    return result(types.int64), codegen


# ------------------------------------------------------------------------- elementary math
@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _log_unit(v):
    """log v for a normal double v in (0, 1] (accurate to ~1 ulp, relative even near v = 1)."""
    bits = _bits(v)
    e = (bits >> 52) - 1023
    m = _from_bits((bits & _MANTISSA) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0  # exact: m in [sqrt(1/2), sqrt(2))
    s = f / (2.0 + f)
    z = s * s
    r = z * (_L1 + z * (_L2 + z * (_L3 + z * (_L4 + z * (_L5 + z * (_L6 + z * (_L7 + z * (
        _L8 + z * (_L9 + z * (_L10 + z * _L11))))))))))
    hfsq = 0.5 * f * f
    k = np.float64(e)
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _sincos(a):
    """(cos a, sin a) for a double a in [0, 2 pi), to ~1 ulp."""
    k = np.floor(a * _TWO_OVER_PI + 0.5)  # 0..4
    r1 = a - k * _P1  # exact: k * _P1 is exact and the difference a multiple of ulp(a) below 1
    t2 = k * _P2  # exact
    r2 = r1 - t2
    bb = r2 - r1
    e2 = (r1 - (r2 - bb)) + (-t2 - bb)  # r1 - t2 = r2 + e2 exactly (TwoSum)
    lo = e2 - k * _P3
    r = r2 + lo
    rl = (r2 - r) + lo  # a - k pi/2 = r + rl to ~2^-115 absolute
    z = r * r
    ps = _S3 + z * (_S5 + z * (_S7 + z * (_S9 + z * (_S11 + z * (_S13 + z * (_S15 + z * _S17))))))
    sin_r = r + (r * z * ps + rl * (1.0 - 0.5 * z))
    pc = _C4 + z * (_C6 + z * (_C8 + z * (_C10 + z * (_C12 + z * (_C14 + z * (_C16 + z * _C18))))))
    hz = 0.5 * z
    w = 1.0 - hz
    cos_r = w + (((1.0 - w) - hz) + (z * z * pc - r * rl))
    q = np.int64(k) & 3
    swap = (q & 1) != 0
    c = sin_r if swap else cos_r
    s = cos_r if swap else sin_r
    c = -c if ((q + 1) & 2) != 0 else c
    s = -s if (q & 2) != 0 else s
    return c, s


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _uniform_of(word):
    return np.float64(word >> _SHIFT) * _UNIT


# --------------------------------------------------------------------------------- kernels
@njit(nogil=True, cache=True, error_model="numpy")
def _gaussian_range(words, out, std, lo, hi):
    """Box-Muller pairs lo..hi-1 (see gaussian_noise): out[i] = std r cos t, out[pairs + i] = std r sin t."""
    count = out.shape[0]
    pairs = words.shape[0] // 2
    full = max(lo, min(hi, count - pairs))  # pairs whose sine is kept: all but the last when count is odd
    # Slices starting at 0 let LLVM vectorise (an offset index like out[pairs + i] defeats it).
    first, second = words[lo:full], words[pairs + lo:pairs + full]
    cos_out, sin_out = out[lo:full], out[pairs + lo:pairs + full]
    for i in range(full - lo):
        radius = np.sqrt(-2.0 * _log_unit(1.0 - _uniform_of(first[i])))
        c, s = _sincos(_TWO_PI * _uniform_of(second[i]))
        cos_out[i] = std * (radius * c)
        sin_out[i] = std * (radius * s)
    for i in range(full, hi):
        radius = np.sqrt(-2.0 * _log_unit(1.0 - _uniform_of(words[i])))
        c, s = _sincos(_TWO_PI * _uniform_of(words[pairs + i]))
        out[i] = std * (radius * c)


@njit(nogil=True, cache=True, error_model="numpy")
def _gaussian_serial(words, out, std):
    _gaussian_range(words, out, std, 0, words.shape[0] // 2)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _gaussian_parallel(words, out, std, nchunks):
    pairs = words.shape[0] // 2
    for ch in prange(nchunks):
        _gaussian_range(words, out, std, ch * pairs // nchunks, (ch + 1) * pairs // nchunks)


@njit(nogil=True, cache=True, error_model="numpy")
def _laplace_range(words, out, scale, lo, hi):
    """out[i] = scale (E_i - E_{count+i}) with E = -log(1 - u), i in lo..hi-1."""
    count = out.shape[0]
    first, second, dest = words[lo:hi], words[count + lo:count + hi], out[lo:hi]
    for i in range(hi - lo):
        e1 = -_log_unit(1.0 - _uniform_of(first[i]))
        e2 = -_log_unit(1.0 - _uniform_of(second[i]))
        dest[i] = scale * (e1 - e2)


@njit(nogil=True, cache=True, error_model="numpy")
def _laplace_serial(words, out, scale):
    _laplace_range(words, out, scale, 0, out.shape[0])


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _laplace_parallel(words, out, scale, nchunks):
    count = out.shape[0]
    for ch in prange(nchunks):
        _laplace_range(words, out, scale, ch * count // nchunks, (ch + 1) * count // nchunks)


@njit(nogil=True, cache=True, error_model="numpy")
def _uniform_serial(words, out):
    for i in range(out.shape[0]):
        out[i] = _uniform_of(words[i])


@njit(nogil=True, cache=True, error_model="numpy")
def _sum_squares_at(address, n):
    """sum_j x[j]^2 of the n float64s at ``address``: 16 interleaved partial sums (lane l takes j = l mod 16),
    added pairwise at the end, then the tail in order. Deterministic; |error| <~ (n/16 + 5) eps sum."""
    x = carray(_f64_pointer(address), n)
    lanes = np.zeros(16, np.float64)
    body = n - n % 16
    for j0 in range(0, body, 16):
        block = x[j0:j0 + 16]
        for lane in range(16):
            lanes[lane] += block[lane] * block[lane]
    width = 16
    while width > 1:
        width //= 2
        for lane in range(width):
            lanes[lane] += lanes[lane + width]
    total = lanes[0]
    for j in range(body, n):
        total += x[j] * x[j]
    return total


@njit(nogil=True, cache=True, error_model="numpy")
def _weighted_sum_range(addresses, scales, out, lo, hi):
    """out[lo:hi] = sum_i scales[i] * u_i[lo:hi], added in the order i = 0, 1, ...; u_i is at addresses[i].

    Block by block, so the block of out stays in cache while every update's slice is added to it.
    """
    n = out.shape[0]
    k = addresses.shape[0]
    for b0 in range(lo, hi, _SUM_BLOCK):
        b1 = min(b0 + _SUM_BLOCK, hi)
        dest = out[b0:b1]
        u = carray(_f64_pointer(addresses[0]), n)[b0:b1]
        s = scales[0]
        for j in range(b1 - b0):
            dest[j] = s * u[j]
        for i in range(1, k):
            u = carray(_f64_pointer(addresses[i]), n)[b0:b1]
            s = scales[i]
            for j in range(b1 - b0):
                dest[j] += s * u[j]


@njit(nogil=True, cache=True, error_model="numpy")
def _weighted_sum_serial(addresses, scales, out):
    _weighted_sum_range(addresses, scales, out, 0, out.shape[0])


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _weighted_sum_parallel(addresses, scales, out, nchunks):
    n = out.shape[0]
    blocks = (n + _SUM_BLOCK - 1) // _SUM_BLOCK
    for ch in prange(nchunks):
        lo = min(n, ch * blocks // nchunks * _SUM_BLOCK)
        hi = min(n, (ch + 1) * blocks // nchunks * _SUM_BLOCK)
        _weighted_sum_range(addresses, scales, out, lo, hi)


# ------------------------------------------------------------------------------ front end
def _use_parallel(parallel: bool | None, work: int, threshold: int) -> bool:
    if parallel is None:
        parallel = work >= threshold
    return bool(parallel) and _nthreads() > 1


def gaussian_from_words(words: np.ndarray, count: int, std: float, parallel: bool | None = None) -> np.ndarray:
    """``count`` N(0, std^2) draws from 2 ceil(count / 2) uint64 words (1-D, C-contiguous), as gaussian_noise.

    ``parallel`` None picks by size; True or False forces a variant (tests reach both that way).
    """
    out = np.empty(count, np.float64)
    if count == 0:
        return out
    if _use_parallel(parallel, count, PARALLEL_MIN_NOISE):
        pairs = words.shape[0] // 2
        with PARALLEL_LOCK:
            _gaussian_parallel(words, out, float(std), _nchunks(pairs))
    else:
        _gaussian_serial(words, out, float(std))
    return out


def laplace_from_words(words: np.ndarray, count: int, scale: float, parallel: bool | None = None) -> np.ndarray:
    """``count`` Laplace(0, scale) draws from 2 count uint64 words (1-D, C-contiguous), as laplace_noise."""
    out = np.empty(count, np.float64)
    if count == 0:
        return out
    if _use_parallel(parallel, count, PARALLEL_MIN_NOISE):
        with PARALLEL_LOCK:
            _laplace_parallel(words, out, float(scale), _nchunks(count))
    else:
        _laplace_serial(words, out, float(scale))
    return out


def uniform_from_words(words: np.ndarray) -> np.ndarray:
    """The top 53 bits of each word times 2^-53, in one pass (memory-bound: no parallel variant)."""
    out = np.empty(words.shape, np.float64)
    _uniform_serial(words.reshape(-1), out.reshape(-1))
    return out


def sum_squares(x: np.ndarray) -> float:
    """sum x^2 of a C-contiguous float64 array (see _sum_squares_at), without a temporary."""
    return float(_sum_squares_at(x.ctypes.data, x.size))


def weighted_sum(vectors: list[np.ndarray], scales: np.ndarray, parallel: bool | None = None) -> np.ndarray:
    """sum_i scales[i] * vectors[i], one pass over each; every vector 1-D, float64, C-contiguous, of one length.

    The kernel reads the vectors by address: the caller keeps them alive and checks dtype, layout, lengths.
    """
    n = vectors[0].shape[0]
    addresses = np.array([v.ctypes.data for v in vectors], dtype=np.int64)
    scales = np.ascontiguousarray(scales, dtype=np.float64)
    out = np.empty(n, np.float64)
    if n == 0:
        return out
    if _use_parallel(parallel, n * len(vectors), PARALLEL_MIN_SUM):
        with PARALLEL_LOCK:
            _weighted_sum_parallel(addresses, scales, out, _nchunks(-(-n // _SUM_BLOCK)))
    else:
        _weighted_sum_serial(addresses, scales, out)
    return out


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel here, serial and parallel, on tiny inputs."""
    words = np.arange(1, 5, dtype=np.uint64) << np.uint64(40)
    out = np.empty(3, np.float64)
    vec = np.ones(3, np.float64)
    addresses = np.array([vec.ctypes.data], dtype=np.int64)
    scales = np.ones(1, np.float64)
    _gaussian_serial(words, out, 1.0)
    _laplace_serial(words, out[:2], 1.0)
    _uniform_serial(words, np.empty(4, np.float64))
    _sum_squares_at(vec.ctypes.data, 3)
    _weighted_sum_serial(addresses, scales, out)
    with PARALLEL_LOCK:
        _gaussian_parallel(words, out, 1.0, 1)
        _laplace_parallel(words, out[:2], 1.0, 1)
        _weighted_sum_parallel(addresses, scales, out, 1)

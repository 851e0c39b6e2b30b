"""AES-128 encryption of many blocks under one key (ECB) on the CPU's VAES instructions: four blocks per AVX-512
instruction, sixteen in flight, from a numba kernel.

OpenSSL's ECB mode (what ``cryptography`` offers) runs AES-NI on one 128-bit block per instruction; on a CPU with
VAES and AVX-512 (Intel from Ice Lake on, AMD from Zen 4 on) this kernel encrypts the same blocks 2 to 3 times as
fast. It is used only where the CPU reports both (:func:`available`), and it is checked against OpenSSL on first
use; elsewhere callers keep OpenSSL. The key schedule is FIPS-197's (section 5.2), computed here from the S-box,
itself computed from its definition (multiplicative inverse in GF(2^8), then the affine map; FIPS-197 section
5.1.1), not copied from a table.

Blocks are two uint64 words each, in memory order (a block's bytes as AES reads them), as
:class:`smpc.mpc.fss.fixed_key.FixedKeyAES` holds them.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from smpc.ring import cpu

ROUNDS = 10  # AES-128
# Callers use the kernels for buffers of this many bytes or more: below it OpenSSL is as quick, and a process that
# never reaches it never pays the kernels' first load and self-test (a third of a second per process).
MIN_BYTES = 1 << 16
_WIDE = 4  # zmm registers (four blocks each) in flight per step of the main loop


# ------------------------------------------------------------------------------ the S-box (FIPS-197 5.1.1)
def _xtime(b: int) -> int:
    b <<= 1
    return (b ^ 0x11B) if b & 0x100 else b


def _gf_mul(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        a = _xtime(a)
        b >>= 1
    return product


@functools.lru_cache(maxsize=1)
def sbox() -> tuple[int, ...]:
    """The AES S-box: the inverse in GF(2^8) (0 to 0), then the affine map b ^ rotl(b,1..4) ^ 0x63."""
    inverse = [0] * 256
    for a in range(1, 256):
        for b in range(1, 256):
            if _gf_mul(a, b) == 1:
                inverse[a] = b
                break
    out = []
    for b in inverse:
        rotations = 0
        for r in range(1, 5):
            rotations ^= ((b << r) | (b >> (8 - r))) & 0xFF
        out.append(b ^ rotations ^ 0x63)
    return tuple(out)


# ------------------------------------------------------------------------------ the kernels
_I64 = ir.IntType(64)
_ZMM = ir.VectorType(_I64, 8)  # four blocks
_XMM = ir.VectorType(_I64, 2)  # one block
_LANES = ir.VectorType(ir.IntType(32), 8)


def _vector_fn(module, name: str):
    return cgutils.get_or_insert_function(module, ir.FunctionType(_ZMM, [_ZMM, _ZMM]), name)


def _emit_encryption(builder, key_ptr, groups, load, store) -> None:
    """IR for: store(AES(load(g)), g) for every group g < ``groups`` of four blocks: the 11 round keys broadcast
    to zmm once, then _WIDE independent groups per step of the main loop (VAES's latency hidden), then one at a
    time. ``load(g)`` and ``store(value, g)`` emit a group's access."""
    enc = _vector_fn(builder.module, "llvm.x86.aesni.aesenc.512")
    last = _vector_fn(builder.module, "llvm.x86.aesni.aesenclast.512")
    keys = []
    for r in range(ROUNDS + 1):
        pointer = builder.bitcast(builder.gep(key_ptr, [ir.Constant(_I64, 2 * r)]), _XMM.as_pointer())
        pair = builder.load(pointer, align=8)
        keys.append(builder.shuffle_vector(pair, pair, ir.Constant(_LANES, [0, 1] * 4)))

    def encrypt_all(members) -> None:
        states = [builder.xor(load(m), keys[0]) for m in members]
        for r in range(1, ROUNDS):
            states = [builder.call(enc, [x, keys[r]]) for x in states]
        for x, member in zip(states, members):
            store(builder.call(last, [x, keys[ROUNDS]]), member)

    wide = builder.mul(builder.sdiv(groups, ir.Constant(_I64, _WIDE)), ir.Constant(_I64, _WIDE))
    with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), wide, ir.Constant(_I64, _WIDE), _I64) as (g, _):
        encrypt_all([builder.add(g, ir.Constant(_I64, w)) for w in range(_WIDE)])
    with cgutils.for_range_slice(builder, wide, groups, ir.Constant(_I64, 1), _I64) as (g, _):
        encrypt_all([g])


def _group_pointer(builder, base, group, step: int):
    """The zmm pointer to group ``group`` of an array whose groups are ``step`` elements of ``base``'s type apart."""
    address = builder.gep(base, [builder.mul(group, ir.Constant(_I64, step))])
    return builder.bitcast(address, _ZMM.as_pointer())


@intrinsic
def _ecb_groups(typingctx, src, dst, round_keys, groups):  # pragma: no cover (compiled)
    """dst[8 g : 8 g + 8] = AES(src[8 g : 8 g + 8]) for g < groups (uint64 arrays, four blocks per 8 words)."""
    sig = types.void(src, dst, round_keys, groups)

    def codegen(context, builder, signature, args):
        src_ptr, dst_ptr, key_ptr = (context.make_array(signature.args[i])(context, builder, args[i]).data
                                     for i in range(3))
        _emit_encryption(builder, key_ptr, args[3],
                         lambda g: builder.load(_group_pointer(builder, src_ptr, g, 8), align=8),
                         lambda value, g: builder.store(value, _group_pointer(builder, dst_ptr, g, 8), align=8))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _counter_groups(typingctx, dst, round_keys, first, groups):  # pragma: no cover (compiled)
    """dst's bytes [64 g, 64 g + 64) = AES of the four counter blocks first + 4 g .. first + 4 g + 3 (128-bit
    little-endian, below 2^64), for g < groups; the counters are made in registers (nothing is read but the keys),
    and dst (uint8) needs no alignment."""
    sig = types.void(dst, round_keys, first, groups)

    def codegen(context, builder, signature, args):
        dst_ptr, key_ptr = (context.make_array(signature.args[i])(context, builder, args[i]).data for i in range(2))
        steps = ir.Constant(_ZMM, [0, 0, 1, 0, 2, 0, 3, 0])
        low_words = ir.Constant(_ZMM, [1, 0, 1, 0, 1, 0, 1, 0])

        def counters(group):
            base = builder.add(args[2], builder.mul(group, ir.Constant(_I64, 4)))
            splat = builder.insert_element(ir.Constant(_ZMM, None), base, ir.Constant(ir.IntType(32), 0))
            splat = builder.shuffle_vector(splat, splat, ir.Constant(_LANES, [0] * 8))
            return builder.add(builder.mul(splat, low_words), steps)

        _emit_encryption(builder, key_ptr, args[3], counters,
                         lambda value, g: builder.store(value, _group_pointer(builder, dst_ptr, g, 64), align=1))
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def _counter_stream(dst, round_keys, first):  # pragma: no cover (compiled)
    """AES of the counter blocks first, first + 1, ... into dst (uint8, a multiple of 64 bytes)."""
    _counter_groups(dst, round_keys, np.int64(first), dst.shape[0] // 64)


def counter_stream(round_keys: np.ndarray, first: int, dst: np.ndarray) -> None:
    """dst (a flat uint8 array, any alignment, a multiple of 16 bytes) = AES(first) || AES(first + 1) || ...,
    each counter a 128-bit little-endian block below 2^63."""
    nbytes = dst.shape[0]
    if nbytes % 16:
        raise ValueError(f"counter_stream writes whole 16-byte blocks, got {nbytes} bytes")
    whole = nbytes - nbytes % 64
    if whole:
        _counter_stream(dst[:whole], round_keys, first)
    if whole < nbytes:
        tail = np.empty(64, np.uint8)
        _counter_stream(tail, round_keys, first + whole // 16)
        dst[whole:] = tail[: nbytes - whole]


@njit(nogil=True, cache=True)
def _expand(key, box, out):  # pragma: no cover (compiled)
    """FIPS-197 5.2 for AES-128 in numba: out (176 bytes) = the 11 round keys of key (16 bytes)."""
    out[:16] = key
    rcon = 1
    for i in range(4, 44):
        t0, t1, t2, t3 = out[4 * i - 4], out[4 * i - 3], out[4 * i - 2], out[4 * i - 1]
        if i % 4 == 0:
            t0, t1, t2, t3 = box[t1] ^ rcon, box[t2], box[t3], box[t0]
            rcon = ((rcon << 1) ^ 0x11B) if rcon & 0x80 else (rcon << 1)
        out[4 * i] = out[4 * i - 16] ^ t0
        out[4 * i + 1] = out[4 * i - 15] ^ t1
        out[4 * i + 2] = out[4 * i - 14] ^ t2
        out[4 * i + 3] = out[4 * i - 13] ^ t3


@functools.lru_cache(maxsize=1)
def _sbox_array() -> np.ndarray:
    return np.array(sbox(), dtype=np.uint8)


def expand_key(key: bytes) -> np.ndarray:
    """The 11 round keys of AES-128 for ``key`` (16 bytes), as (11, 2) uint64 words in memory order (compiled: a
    microsecond, so the PRG derives one per 512 KiB segment)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    out = np.empty(176, np.uint8)
    _expand(np.frombuffer(bytes(key), np.uint8), _sbox_array(), out)
    return out.view("<u8").astype(np.uint64).reshape(ROUNDS + 1, 2)


@njit(nogil=True, cache=True)
def ecb_groups(src, dst, round_keys):  # pragma: no cover (compiled)
    """AES of every block of src (flat C-contiguous uint64, two words a block, a multiple of four blocks) into dst:
    the compiled kernel, for callers that call it often on buffers they checked once (:func:`ecb_encrypt` takes
    any length)."""
    _ecb_groups(src, dst, round_keys, src.shape[0] // 8)


def ecb_encrypt(round_keys: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """dst = AES(src) block by block: src and dst flat C-contiguous uint64 arrays of the same even length, the
    whole blocks (a multiple of four) on VAES and the rest, if any, through the same kernel on a padded copy."""
    words = src.shape[0]
    whole = words - words % 8
    if whole:
        ecb_groups(src[:whole], dst[:whole], round_keys)
    if whole < words:
        pad = np.zeros(8, np.uint64)
        pad[: words - whole] = src[whole:]
        out = np.empty(8, np.uint64)
        ecb_groups(pad, out, round_keys)
        dst[whole:] = out[: words - whole]


# ------------------------------------------------------------------------------ availability
@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the CPU has VAES and AVX-512 (Linux's flags) and the kernel agrees with OpenSSL's AES here."""
    if not {"vaes", "avx512f", "aes"} <= cpu.flags():
        return False
    return _agrees_with_openssl()


def _agrees_with_openssl() -> bool:
    """Both kernels and the key schedule against OpenSSL's AES (ECB on random blocks, counter blocks)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(16))
    schedule = expand_key(key)
    encrypt = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update
    data = np.random.default_rng(0).integers(0, 2**64, 2 * 37, dtype=np.uint64)
    got = np.empty_like(data)
    ecb_encrypt(schedule, data, got)
    counters = np.zeros((37, 2), np.uint64)
    counters[:, 0] = np.arange(1000, 1037, dtype=np.uint64)
    stream = np.empty(37 * 16 + 1, np.uint8)[1:]  # unaligned on purpose
    counter_stream(schedule, 1000, stream)
    return got.tobytes() == encrypt(data.tobytes()) and stream.tobytes() == encrypt(counters.astype("<u8").tobytes())

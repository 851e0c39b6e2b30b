"""Bit slicing: 64-bit words to bit planes (bit i of 64 consecutive words in one word) and back.

A bit plane layout turns "bit i of every element" into whole words, so a circuit on the
bits of n elements works on arrays of n / 64 words. Plane ``i``, word ``w``, bit ``j``
is bit ``i`` of element ``64 w + j``; elements past the end count as 0.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit, prange

WORD_BITS = 64

# masks for the six swap steps of a 64 x 64 bit-matrix transpose
_MASKS = np.array(
    [0x00000000FFFFFFFF, 0x0000FFFF0000FFFF, 0x00FF00FF00FF00FF,
     0x0F0F0F0F0F0F0F0F, 0x3333333333333333, 0x5555555555555555],
    dtype=np.uint64,
)


@njit(nogil=True, cache=True)
def _transpose_block(block, masks):
    """Transpose a 64 x 64 bit matrix in place (row k is word k, column j is bit j).

    Six steps; step s swaps the off-diagonal sub-blocks of width 2^(5-s) (Warren,
    "Hacker's Delight", 2nd ed., section 7-3), so 6 * 32 swaps instead of 4096 bit moves.
    """
    width = 32
    for step in range(6):
        mask = masks[step]
        shift = np.uint64(width)
        for row in range(64):
            if row & width == 0:
                t = ((block[row] >> shift) ^ block[row + width]) & mask
                block[row] ^= t << shift
                block[row + width] ^= t
        width //= 2


@njit(nogil=True, cache=True)
def _block_to_planes(words, masks, out, w, block):
    """Word ``w`` of every plane of ``out`` from elements 64 w .. 64 w + 63 of ``words`` (``block``: scratch)."""
    n = words.shape[0]
    start = w * 64
    stop = min(start + 64, n)
    block[:] = 0
    for j in range(start, stop):
        block[j - start] = words[j]
    _transpose_block(block, masks)
    for i in range(64):
        out[i, w] = block[i]


@njit(parallel=True, nogil=True, cache=True)
def _to_planes(words, masks, out):
    for w in prange(out.shape[1]):
        _block_to_planes(words, masks, out, w, np.zeros(64, np.uint64))


@njit(nogil=True, cache=True)
def bit_planes_into(words, out):
    """:func:`to_bit_planes` of the uint64 array ``words`` into ``out`` (64, plane_words(n)), in the calling thread:
    for other numba kernels (``to_bit_planes`` spreads its blocks over numba's threads)."""
    block = np.zeros(64, np.uint64)
    for w in range(out.shape[1]):
        _block_to_planes(words, _MASKS, out, w, block)


def plane_words(count: int) -> int:
    """Words per bit plane for ``count`` elements."""
    return (count + WORD_BITS - 1) // WORD_BITS


def to_bit_planes(words: np.ndarray) -> np.ndarray:
    """The (64, ceil(n/64)) bit planes of a flat uint64 array of n words."""
    words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
    out = np.empty((WORD_BITS, plane_words(words.size)), np.uint64)
    if words.size:
        _to_planes(words, _MASKS, out)
    return out


def plane_to_bits(plane: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` bits of one plane, one uint64 word (0 or 1) per element."""
    plane = np.ascontiguousarray(plane, dtype=np.uint64)
    if sys.byteorder != "little":
        plane = plane.astype("<u8")
    return np.unpackbits(plane.view(np.uint8), bitorder="little")[:count].astype(np.uint64)


def bits_to_plane(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 values (one per element) into one plane of ceil(n/64) words."""
    bits = np.asarray(bits).reshape(-1)
    words = plane_words(bits.size)
    packed = np.zeros(words * 8, np.uint8)
    packed[: (bits.size + 7) // 8] = np.packbits(bits.astype(np.uint8), bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def warmup() -> None:
    """Compile (or load from numba's cache) the transpose kernel."""
    to_bit_planes(np.arange(3, dtype=np.uint64))

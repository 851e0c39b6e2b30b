"""The PRG of the DCF tree: fixed-key AES-128 in Matyas-Meyer-Oseas mode with small tweaks, on whole buffers.

A 128-bit seed ``s`` (two uint64 words, word 0 the low one) expands to the blocks

    G_j(s) = AES_K(s XOR j) XOR (s XOR j),   j = 0, 1, 2, ...

for one public, fixed key K. This is the fixed-key construction the FSS literature implements its length-doubling
PRG with (Boyle, Gilboa and Ishai, "Function Secret Sharing: Improvements and Extensions", CCS 2016, whose DPF
implementation expands seeds with AES in Matyas-Meyer-Oseas mode under fixed keys; one key with distinct tweaks
here, so one ECB call covers every block). Its security rests on AES_K being a random permutation, under which
``x -> AES_K(x) XOR x`` is correlation robust (Guo, Katz, Wang and Yu, "Efficient and Secure Multiparty
Computation from Fixed-Key Block Ciphers", IEEE S&P 2020, eprint 2019/074). The tweak ``j`` is XORed
into the low bits of word 0; the DCF (:mod:`.bit_dcf`) keeps bits 0 and 1 of every seed clear (an expanded block
carries the control and value bits there), so the inputs ``s XOR j`` of one seed (j = 0, 1: the two children)
are distinct, and seeds hold 126 random bits.

The key is public by design: it saves a key schedule per seed, and one AES-ECB call encrypts a whole tree level of
a chunk of a batch: :mod:`smpc.ring.vaes` (four blocks per instruction) where the CPU has VAES, else
``cryptography``'s (OpenSSL, AES-NI).
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smpc.ring import vaes
from smpc.ring.prg import derive_key

#: K, public: anyone may recompute it; nothing secret depends on it being unknown.
FIXED_KEY = derive_key(b"smpc function secret sharing", "fixed-key AES of the DCF tree")
BLOCK_BYTES = 16


@functools.lru_cache(maxsize=1)
def _round_keys() -> np.ndarray | None:
    """K's key schedule for the VAES kernel, or None where the CPU lacks VAES (OpenSSL then)."""
    return vaes.expand_key(FIXED_KEY) if vaes.available() else None


class FixedKeyAES:
    """AES_K on uint64 arrays whose last axis holds the two words of a block; one instance per thread."""

    def __init__(self):
        self._encryptor = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor()

    def permute(self, blocks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """AES_K of every block of the C-contiguous uint64 array ``blocks`` (last axis 2), in one ECB call.

        ``out``: a uint8 buffer of at least ``blocks.nbytes + 16`` bytes to write into (reused across calls, it
        saves the page faults of a fresh buffer per tree level); the result is a uint64 view of it.
        """
        return self.permuter(blocks, self.buffer(blocks) if out is None else out)()

    def permuter(self, blocks: np.ndarray, out: np.ndarray) -> Callable[[], np.ndarray]:
        """A call that does :meth:`permute` (``blocks`` into ``out``) again each time, with the buffers' views
        made once: a tree walk permutes the same blocks at every level, and a call per level and chunk is then
        one ECB call and nothing else."""
        nbytes = blocks.nbytes
        if not blocks.flags.c_contiguous:
            raise ValueError("blocks must be C-contiguous (the permuter reads them in place at every call)")
        if out.dtype != np.uint8 or out.ndim != 1 or out.size < nbytes + BLOCK_BYTES:
            raise ValueError(f"out must be a uint8 buffer of at least {nbytes + BLOCK_BYTES} bytes")
        result = out[:nbytes].view(np.uint64).reshape(blocks.shape)
        if not nbytes:
            return lambda: result
        round_keys = _round_keys() if nbytes >= vaes.MIN_BYTES else None  # small buffers: OpenSSL
        if round_keys is not None:
            words, into = blocks.reshape(-1), result.reshape(-1)
            if words.shape[0] % 8 == 0:  # whole groups of four blocks (every tree chunk): the kernel, directly
                kernel = vaes.ecb_groups

                def permute_groups() -> np.ndarray:
                    kernel(words, into, round_keys)
                    return result

                return permute_groups

            def permute_vaes() -> np.ndarray:
                vaes.ecb_encrypt(round_keys, words, into)
                return result

            return permute_vaes
        source, target = memoryview(blocks.reshape(-1).view(np.uint8)), memoryview(out)
        update_into = self._encryptor.update_into

        def permute() -> np.ndarray:
            update_into(source, target)
            return result

        return permute

    @staticmethod
    def buffer(blocks: np.ndarray) -> np.ndarray:
        """An ``out`` buffer for :meth:`permute` on arrays the size of ``blocks`` (``update_into`` wants one block
        of slack)."""
        return np.empty(blocks.nbytes + BLOCK_BYTES, np.uint8)

"""Conversions between arithmetic and binary sharing for the additive protocol.

* ``a2b``: each party's arithmetic share is a private input; the N words are added
  in binary (:mod:`smpc.mpc.circuits.adders`): carry-save adders reduce them to two (one round
  per level), then a Kogge-Stone parallel-prefix adder (Kogge and Stone, IEEE Trans.
  Computers, 1973) adds those in 1 + log2(64) = 7 rounds.
* ``msb``: the top bit of the sum, i.e. the sign of the two's complement value.
* ``b2a``: a shared bit to an arithmetic share with a dealer dabit (r shared both
  ways): open c = b ^ r, then b = c + r - 2 c r. One round.
"""

from __future__ import annotations

import functools

import numpy as np

from smpc.mpc.circuits.adders import WORD_BITS, add, carry_save
from smpc.mpc.additive.binary import BinaryTensor, and_many
from smpc.ring import fused
from smpc.ring.arith import wrapping


def private_inputs(party, share: np.ndarray) -> list[BinaryTensor]:
    """Each party's arithmetic share as a binary-shared word (its owner holds it, others 0: it is masked by its owner
    alone when ANDed)."""
    zero = np.zeros_like(share)
    return [BinaryTensor(party, share if rank == party.rank else zero, owner=rank) for rank in range(party.world_size)]


def a2b(party, share: np.ndarray) -> BinaryTensor:
    """Binary sharing of the ring value whose arithmetic share is ``share``."""
    and_many_fn = functools.partial(and_many, party)
    words = carry_save(and_many_fn, private_inputs(party, share))
    if len(words) == 1:
        return words[0]
    return add(and_many_fn, words[0], words[1])


def msb(party, share: np.ndarray) -> BinaryTensor:
    """The most significant bit (1 for negative two's complement values), as words 0/1."""
    return a2b(party, share).bit(WORD_BITS - 1)


@wrapping
def b2a_packed(party, bits: list[BinaryTensor]) -> np.ndarray:
    """Arithmetic shares (stacked: ``(len(bits), *shape)``) of up to 64 binary-shared bits of one shape (words 0/1),
    in one round with dabits: the masked bits travel packed, bit j of one word per element, so the opening is
    n words rather than n per bit."""
    if not 1 <= len(bits) <= 64:
        raise ValueError(f"b2a_packed takes 1 to 64 bits, got {len(bits)}")
    r_binary, r_arith = _received(party, party.dealer.dabits((len(bits), *bits[0].shape)))
    packed = fused.pack_masked_bits([bit.share for bit in bits], r_binary)
    opened = BinaryTensor(party, packed).reveal()
    return fused.unpack_dabit_shares(opened, r_arith, party.rank == 0)  # r (1 - 2c), and + c at party 0


@wrapping
def b2a(party, bit: BinaryTensor) -> np.ndarray:
    """An arithmetic share of a binary-shared bit (words 0/1), one round with a dabit."""
    r_binary, r_arith = _received(party, party.dealer.dabits(bit.shape))
    c = BinaryTensor(party, bit.share ^ r_binary).reveal()
    share = r_arith * (np.uint64(1) - np.uint64(2) * c)
    if party.rank == 0:
        share += c
    return share


def _received(party, dabits) -> tuple[np.ndarray, np.ndarray]:
    """Both shares of the dabits, completed at once: their XOR shares mask the bits about to be opened."""
    party.dealer.complete(dabits)
    return dabits.xor, dabits.arith

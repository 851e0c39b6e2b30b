"""Replicated XOR sharing of 64-bit words for the aby3 protocol (ABY3 section 3, boolean case).

x = b_0 ^ b_1 ^ b_2 bit-packed (one uint64 word carries 64 shared bits); party i holds
(b_i, b_{i+1}), indices mod 3, so component j is held by parties j and j-1.
Mohassel and Rindal, CCS 2018, https://eprint.iacr.org/2018/403.

Costs per party, n words: XOR, NOT, shifts, ``bit`` and AND with a public mask 0 rounds;
AND of two shared words 1 round and n words sent (``and_many``: 1 round and one message
for any number of ANDs); ``reveal`` 1 round, n words (to one party: only its successor
sends); ``share_binary`` 1 message of n words (source to its successor; its predecessor
gets a shape header unless every party passes ``shape``); ``share_known_by_two`` nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smpc.exceptions import PeerError, ProtocolError
from smpc.mpc.interfaces import BinaryShared
from smpc.mpc.sharing import max_share_elements, shape_from_meta

PARTIES = 3
WORD_BITS = 64
ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
ONE = np.uint64(1)


def next_rank(rank: int) -> int:
    return (rank + 1) % PARTIES


def prev_rank(rank: int) -> int:
    return (rank - 1) % PARTIES


def public_words(value) -> np.ndarray:
    """A public operand as uint64 words (signed integers wrap, bools become 0/1)."""
    words = np.asarray(value)
    if words.dtype == np.uint64:
        return words
    if words.dtype.kind not in "iub":
        raise TypeError(f"binary operands must be integer words, got {words.dtype}")
    if words.dtype.kind == "i":
        return words.astype(np.int64).view(np.uint64)
    return words.astype(np.uint64)


def _shift_bits(bits) -> np.uint64:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 0 <= bits < WORD_BITS:
        raise ValueError(f"shift must be an integer in [0, 63], got {bits!r}")
    return np.uint64(bits)


class ReplicatedBinaryTensor(BinaryShared):
    """This party's two components ``(b_i, b_{i+1})`` of a replicated XOR sharing of words
    (:class:`~smpc.mpc.interfaces.BinaryShared`)."""

    __array_ufunc__ = None  # `ndarray ^ tensor` defers to our reflected operators

    def __init__(self, party, components: tuple[np.ndarray, np.ndarray]):
        first, second = np.asarray(components[0]), np.asarray(components[1])
        if first.shape != second.shape:
            raise ValueError(f"component shapes differ: {first.shape} and {second.shape}")
        self.party = party
        self.components = (first, second)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.components[0].shape

    @property
    def ndim(self) -> int:
        return self.components[0].ndim

    @property
    def size(self) -> int:
        return self.components[0].size

    def __bool__(self):
        raise TypeError("a shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        return f"ReplicatedBinaryTensor(shape={self.shape}, party={self.party.rank})"

    def _new(self, first: np.ndarray, second: np.ndarray) -> "ReplicatedBinaryTensor":
        return ReplicatedBinaryTensor(self.party, (first, second))

    def _local(self, fn) -> "ReplicatedBinaryTensor":
        return self._new(fn(self.components[0]), fn(self.components[1]))

    def linear(self, fn) -> "ReplicatedBinaryTensor":
        return self._local(fn)

    def _shared(self, other) -> "ReplicatedBinaryTensor | None":
        """``other`` if it is a shared operand of this run, None if it is public."""
        if isinstance(other, ReplicatedBinaryTensor):
            if other.party is not self.party:
                raise ProtocolError("operands belong to different parties or runs")
            return other
        if hasattr(other, "party") or hasattr(other, "components"):
            raise ProtocolError(f"cannot combine a ReplicatedBinaryTensor with a {type(other).__name__}")
        return None

    # --- local operations ---------------------------------------------------------------
    def __xor__(self, other) -> "ReplicatedBinaryTensor":
        shared = self._shared(other)
        if shared is not None:
            return self._new(self.components[0] ^ shared.components[0], self.components[1] ^ shared.components[1])
        words = public_words(other)
        shape = np.broadcast_shapes(self.shape, words.shape)
        # a public value sits in component 0: party 0's first and party 2's second
        rank = self.party.rank
        first, second = self.components
        first = first ^ words if rank == 0 else _broadcast(first, shape)
        second = second ^ words if rank == 2 else _broadcast(second, shape)
        return self._new(first, second)

    __rxor__ = __xor__

    def __invert__(self) -> "ReplicatedBinaryTensor":
        return self ^ ONES

    def __and__(self, other) -> "ReplicatedBinaryTensor":
        """AND: local with a public mask; one round with a shared operand (see :func:`and_many`)."""
        shared = self._shared(other)
        if shared is not None:
            return and_many(self.party, [(self, shared)])[0]
        words = public_words(other)
        return self._local(lambda c: c & words)

    __rand__ = __and__

    def __lshift__(self, bits: int) -> "ReplicatedBinaryTensor":
        shift = _shift_bits(bits)
        return self._local(lambda c: c << shift)

    def __rshift__(self, bits: int) -> "ReplicatedBinaryTensor":
        """Logical right shift of every word."""
        shift = _shift_bits(bits)
        return self._local(lambda c: c >> shift)

    def bit(self, index: int) -> "ReplicatedBinaryTensor":
        """Bit ``index`` of every word, as words 0 or 1."""
        shift = _shift_bits(index)
        return self._local(lambda c: (c >> shift) & ONE)

    def reshape(self, *shape) -> "ReplicatedBinaryTensor":
        """The same words in a new shape (numpy semantics)."""
        return self._local(lambda c: c.reshape(*shape))

    # --- reveal ---------------------------------------------------------------------------
    def reveal(self, to: int | None = None) -> np.ndarray | None:
        """The words (uint64) at every party, or at party ``to`` only (others get None). One round.

        Party i lacks b_{i+2}, the second component of party i+1: to all, every party
        sends its second component to its predecessor; to ``to``, only ``to + 1`` sends.
        """
        party = self.party
        first, second = self.components
        if to is None:
            party.send(prev_rank(party.rank), second)
            return first ^ second ^ party.recv_like(next_rank(party.rank), self.shape)
        if isinstance(to, bool) or not isinstance(to, (int, np.integer)) or not 0 <= to < PARTIES:
            raise ValueError(f"reveal target {to!r} is not a party rank (0..2)")
        if party.rank == next_rank(to):
            party.send(to, second)
        if party.rank != to:
            return None
        return first ^ second ^ party.recv_like(next_rank(to), self.shape)


def _broadcast(component: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return component if component.shape == shape else np.broadcast_to(component, shape).copy()


def xor_zero_share(party, count: int) -> np.ndarray:
    """alpha_i with alpha_0 ^ alpha_1 ^ alpha_2 = 0, from the PRGs shared with both neighbours.

    alpha_i = r_{i,i+1} ^ r_{i-1,i}: every pairwise stream appears twice in the XOR.
    A fresh array of ``count`` words, no communication.
    """
    alpha = party.pair_prg(next_rank(party.rank)).random_ring(count)
    alpha ^= party.pair_prg(prev_rank(party.rank)).random_ring(count)
    return alpha


def and_many(
    party, pairs: Sequence[tuple[ReplicatedBinaryTensor, ReplicatedBinaryTensor]]
) -> list[ReplicatedBinaryTensor]:
    """The ANDs of several pairs of shared words in one round and one message (ABY3 section 3.2).

    Party i computes z_i = x_i&y_i ^ x_i&y_{i+1} ^ x_{i+1}&y_i ^ alpha_i, a fresh
    3-out-of-3 sharing (alpha a pseudo-random XOR sharing of zero), and sends all its z_i
    to party i-1 in one message; it receives z_{i+1} from party i+1. Operands broadcast.
    Cost per party: 1 round, one message of sum(result sizes) words.
    """
    if not pairs:
        return []
    for x, y in pairs:
        if not isinstance(x, ReplicatedBinaryTensor) or not isinstance(y, ReplicatedBinaryTensor):
            raise TypeError("and_many takes pairs of ReplicatedBinaryTensor")
        if x.party is not party or y.party is not party:
            raise ProtocolError("operands belong to different parties or runs")
    shapes = [np.broadcast_shapes(x.shape, y.shape) for x, y in pairs]
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes]
    mine = xor_zero_share(party, sum(sizes))
    offsets = np.cumsum([0, *sizes])
    scratch = np.empty(max(sizes), np.uint64)
    for (x, y), shape, start, stop in zip(pairs, shapes, offsets[:-1], offsets[1:]):
        (x_i, x_next), (y_i, y_next) = x.components, y.components
        z = mine[start:stop].reshape(shape)  # a view: writes go into mine
        t = scratch[: stop - start].reshape(shape)
        np.bitwise_xor(y_i, y_next, out=t)
        np.bitwise_and(t, x_i, out=t)  # x_i&y_i ^ x_i&y_{i+1}
        z ^= t
        np.bitwise_and(x_next, y_i, out=t)
        z ^= t
    party.send(prev_rank(party.rank), mine)
    theirs = party.recv_like(next_rank(party.rank), mine.shape)
    return [
        ReplicatedBinaryTensor(party, (mine[start:stop].reshape(shape), theirs[start:stop].reshape(shape)))
        for shape, start, stop in zip(shapes, offsets[:-1], offsets[1:])
    ]


def share_binary(party, words, src: int, shape: tuple[int, ...] | None = None) -> ReplicatedBinaryTensor:
    """Share words known to party ``src`` (the others pass None). One message of n words.

    With s = src: b_{s+2} = 0, b_s from the PRG that s shares with s-1, and
    b_{s+1} = x ^ b_s, sent to s+1 (the only message of words). Party s-1 holds
    (0, b_s), party s+1 holds (x ^ b_s, 0): each sees only pseudo-random words.
    Party s-1 learns the shape from a small header unless every party passes ``shape``.
    """
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < PARTIES:
        raise ValueError(f"src must be a party rank (0..2), got {src!r}")
    after, before = next_rank(src), prev_rank(src)
    if party.rank == src:
        if words is None:
            raise ValueError(f"party {src} is the source and must pass the words")
        value = public_words(words)
        if shape is not None and value.shape != tuple(shape):
            raise ValueError(f"words have shape {value.shape}, but shape={tuple(shape)} was given")
        if shape is None:
            party.send_meta(before, np.array([value.ndim, *value.shape], dtype=np.int64))
        own = party.pair_prg(before).random_ring(value.shape)
        following = own ^ value
        party.send(after, following)
        return ReplicatedBinaryTensor(party, (own, following))
    if words is not None:
        raise ValueError(f"only the source (party {src}) passes words; party {party.rank} got some")
    if party.rank == after:
        following = party.recv(src)
        if following.dtype != np.uint64 or (shape is not None and following.shape != tuple(shape)):
            raise PeerError(src, f"party {src} sent {following.dtype}{list(following.shape)} as a binary share")
        shape_from_meta([following.ndim, *following.shape], src)
        return ReplicatedBinaryTensor(party, (following, np.zeros_like(following)))
    if shape is None:
        header = party.recv_meta(src)
        shape = shape_from_meta([int(v) for v in header], src, max_share_elements(party))
    own = party.pair_prg(src).random_ring(tuple(shape))
    return ReplicatedBinaryTensor(party, (np.zeros_like(own), own))


def share_known_by_two(party, words, holders: tuple[int, int], shape: tuple[int, ...]) -> ReplicatedBinaryTensor:
    """Share words known to both ``holders`` (they pass the words, the third None). No messages.

    Any two of three parties are j-1 and j for one j, and component j is exactly the
    one they both hold: b_j = x, the other components 0 (ABY3 section 5.3 uses this for
    the arithmetic components). The third party holds zeros and learns nothing; the
    sharing is not re-randomised, which is safe here since every later message is masked.
    """
    low, high = sorted(int(h) for h in holders)
    if len(holders) != 2 or low == high or not 0 <= low < high < PARTIES:
        raise ValueError(f"holders must be two different party ranks, got {holders!r}")
    j = high if low == high - 1 else low  # {j-1, j} = holders
    shape = tuple(shape)
    if party.rank in (low, high):
        if words is None:
            raise ValueError(f"party {party.rank} holds the words and must pass them")
        value = public_words(words)
        if value.shape != shape:
            raise ValueError(f"words have shape {value.shape}, but shape={shape} was given")
    elif words is not None:
        raise ValueError(f"party {party.rank} is not a holder and must pass None")
    zero = np.zeros(shape, np.uint64)
    if party.rank == j:
        return ReplicatedBinaryTensor(party, (value, zero))
    if party.rank == prev_rank(j):
        return ReplicatedBinaryTensor(party, (zero, value))
    return ReplicatedBinaryTensor(party, (zero, zero.copy()))

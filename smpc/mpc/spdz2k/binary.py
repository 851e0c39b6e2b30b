"""Binary sharing under spdz2k: 64-bit words as 64 authenticated bits in the bit domain (k = 1, s = 63).

A word of shape S is held as bit planes (64, *S): plane j is bit j of every word, each bit a share in Z_2^64 with
a MAC share under beta (:mod:`.bit_requests`). XOR (with shared or public words), NOT, shifts and AND with public
words are local (plane-wise additions, public scalings and moves); AND of two shared words is one Beaver round on
all planes at once (1 KB per word to each peer). Opening a bit masks its upper 63 bits with a random 2 t and logs
it for the bit domain's MAC check. This is what the circuits of :mod:`smpc.mpc.circuits` and the functions'
bit decomposition (:mod:`smpc.mpc.bit_length`) run on, so a cheater is caught there too.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.interfaces import BinaryShared
from smpc.ring.arith import to_ring, wrapping
from smpc.ring.matmul import matmul as ring_matmul

WORD_BITS = 64
_PLANES = np.arange(WORD_BITS, dtype=np.uint64)


def planes_of(words: np.ndarray) -> np.ndarray:
    """The bit planes (64, *shape) of public uint64 words, as 0/1 words."""
    words = np.asarray(words, dtype=np.uint64)
    return (words[None] >> _PLANES.reshape((WORD_BITS,) + (1,) * words.ndim)) & np.uint64(1)


def words_of(planes: np.ndarray) -> np.ndarray:
    """Public uint64 words from their 0/1 bit planes (64, *shape)."""
    out = np.zeros(planes.shape[1:], np.uint64)
    for j in range(WORD_BITS):
        out |= (planes[j] & np.uint64(1)) << np.uint64(j)
    return out


class Spdz2kBinary(BinaryShared):
    """This party's authenticated bit planes of XOR-shared words: ``value`` and ``mac`` (64, *shape) uint64."""

    def __init__(self, party, value: np.ndarray, mac: np.ndarray):
        self.party = party
        self.value = value
        self.mac = mac

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape[1:]

    def __bool__(self):
        raise TypeError("a shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        return f"Spdz2kBinary(shape={self.shape}, party={self.party.rank})"

    @property
    def _checker(self):
        return self.party.dealer.bit_checker

    def _beta(self) -> np.uint64:
        return self._checker.alpha_share[0]

    def _new(self, value, mac) -> "Spdz2kBinary":
        return Spdz2kBinary(self.party, value, mac)

    # --- local operations ------------------------------------------------------------------------------------------
    @wrapping
    def _plus_public_planes(self, planes: np.ndarray) -> "Spdz2kBinary":
        """XOR with public bits (0/1 planes): party 0's value share adds them, every MAC share beta_i times them."""
        shape = np.broadcast_shapes(self.value.shape, planes.shape)
        value = self.value + planes if self.party.rank == 0 else np.broadcast_to(self.value, shape).copy()
        return self._new(value, self.mac + planes * self._beta())

    @wrapping
    def __xor__(self, other) -> "Spdz2kBinary":
        if isinstance(other, Spdz2kBinary):
            return self._new(self.value + other.value, self.mac + other.mac)
        return self._plus_public_planes(self._public_planes(other))

    __rxor__ = __xor__

    def _public_planes(self, words) -> np.ndarray:
        """The bit planes of public words, aligned with this tensor's planes for broadcasting."""
        value = np.asarray(words)
        if value.dtype.kind not in "iub":
            raise TypeError(f"binary operands must be integer words, got {value.dtype}")
        words = to_ring(value.astype(np.int64) if value.dtype.kind == "b" else value)
        if words.ndim < len(self.shape):
            words = words.reshape((1,) * (len(self.shape) - words.ndim) + words.shape)
        return planes_of(words)

    def __invert__(self) -> "Spdz2kBinary":
        return self._plus_public_planes(np.ones((WORD_BITS,) + (1,) * len(self.shape), np.uint64))

    @wrapping
    def __and__(self, other) -> "Spdz2kBinary":
        if isinstance(other, Spdz2kBinary):
            return and_many(self.party, [(self, other)])[0]
        planes = self._public_planes(other)
        return self._new(self.value * planes, self.mac * planes)

    __rand__ = __and__

    def _moved(self, shift: int) -> "Spdz2kBinary":
        """Planes moved up by ``shift`` (a left shift; negative: a logical right shift), zeros shifted in."""
        value, mac = np.zeros_like(self.value), np.zeros_like(self.mac)
        if shift >= 0:
            value[shift:], mac[shift:] = self.value[: WORD_BITS - shift], self.mac[: WORD_BITS - shift]
        else:
            value[: WORD_BITS + shift], mac[: WORD_BITS + shift] = self.value[-shift:], self.mac[-shift:]
        return self._new(value, mac)

    def __lshift__(self, bits: int) -> "Spdz2kBinary":
        return self._moved(_shift(bits))

    def __rshift__(self, bits: int) -> "Spdz2kBinary":
        return self._moved(-_shift(bits))

    def bit(self, index: int) -> "Spdz2kBinary":
        """Bit ``index`` of every word, as words 0/1 (plane 0; the others zero)."""
        value, mac = np.zeros_like(self.value), np.zeros_like(self.mac)
        value[0], mac[0] = self.value[index], self.mac[index]
        return self._new(value, mac)

    def linear(self, fn) -> "Spdz2kBinary":
        """The sharing of fn(x) for an XOR-linear ``fn`` on uint64 words (a shift, a public mask, a parity): fn is
        read off as the 64 x 64 bit matrix of its images of the unit words (per element, if it depends on the
        element), and each output plane is the matching sum of input planes (local)."""
        ndim = len(self.shape)
        units = np.broadcast_to((np.uint64(1) << _PLANES).reshape((WORD_BITS,) + (1,) * ndim),
                                (WORD_BITS, *self.shape)).copy()
        images = np.asarray(fn(units), dtype=np.uint64)  # images[j]: fn(2^j), per element
        first = images.reshape(WORD_BITS, -1)[:, :1]
        if images.size and np.all(images.reshape(WORD_BITS, -1) == first):  # the same map for every element
            matrix = planes_of(first[:, 0])  # matrix[k, j]: bit k of fn(2^j)
            return self._new(*(ring_matmul(matrix, planes.reshape(WORD_BITS, -1)).reshape(planes.shape)
                               for planes in (self.value, self.mac)))
        bits = planes_of(images)  # bits[k, j, ...]: bit k of fn(2^j) at each element
        with np.errstate(over="ignore"):
            value = np.einsum("kj...,j...->k...", bits, self.value)
            mac = np.einsum("kj...,j...->k...", bits, self.mac)
        return self._new(value, mac)

    # --- opening ---------------------------------------------------------------------------------------------------
    def open_planes(self) -> np.ndarray:
        """Every plane's bit (0/1 words), opened at every party with its upper 63 bits masked (one round; logged for
        the bit domain's MAC check, not yet checked)."""
        return open_bits(self.party, self.value, self.mac)

    def reveal(self, to: int | None = None) -> np.ndarray | None:
        """The plain words (uint64) to every party, or to party ``to`` only, after the MAC checks (1 + 4 + 4
        rounds)."""
        party = self.party
        if to is not None and not (isinstance(to, (int, np.integer)) and 0 <= to < party.world_size):
            raise ValueError(f"reveal target {to!r} is not a party rank (0..{party.world_size - 1})")
        planes = self.open_planes()
        check_both(party)
        return words_of(planes) if to is None or party.rank == to else None


def _shift(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 0 <= bits <= WORD_BITS:
        raise ValueError(f"shift must be an integer in 0..64, got {bits!r}")
    return int(bits)


@wrapping
def open_bits(party, value: np.ndarray, mac: np.ndarray) -> np.ndarray:
    """Open bit-domain shares (any shape) as 0/1 words: x~ + 2 t for the dealer's random t, logged; one round."""
    dealer = party.dealer
    mask = dealer.complete(dealer.bit_random(value.shape))
    masked = value + np.uint64(2) * mask.value
    masked_mac = mac + np.uint64(2) * mask.mac
    opened = open_words(party, [masked])[0]
    dealer.bit_checker.record_words(opened, masked_mac)
    return opened & np.uint64(1)


@wrapping
def open_words(party, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Open uint64 shares mod 2^64 at every party in one round."""
    for peer in party.others:
        for array in arrays:
            party.send(peer, array)
    totals = [np.array(array, dtype=np.uint64, copy=True) for array in arrays]
    for peer in party.others:
        for total in totals:
            total += party.recv_like(peer, total.shape)
    return totals


@wrapping
def and_many(party, pairs: list[tuple[Spdz2kBinary, Spdz2kBinary]]) -> list[Spdz2kBinary]:
    """The ANDs of several pairs of shared words in one Beaver round (all planes of all pairs opened together)."""
    dealer = party.dealer
    shapes = [(WORD_BITS, *np.broadcast_shapes(x.shape, y.shape)) for x, y in pairs]
    triples = [dealer.bit_triple(shape) for shape in shapes]
    differences = []
    for (x, y), shape, triple in zip(pairs, shapes, triples):
        differences += [np.broadcast_to(x.value, shape) - triple.a.value,
                        np.broadcast_to(y.value, shape) - triple.b.value]
    opened = open_words(party, differences)
    checker = dealer.bit_checker
    results = []
    for index, ((x, y), triple) in enumerate(zip(pairs, triples)):
        dealer.complete(triple)
        e, f = opened[2 * index], opened[2 * index + 1]
        checker.record_words(e, x.mac - triple.a.mac)
        checker.record_words(f, y.mac - triple.b.mac)
        b_value = triple.b.value + f if party.rank == 0 else triple.b.value
        value = e * b_value + triple.a.value * f + triple.c.value
        mac = e * (triple.b.mac + f * checker.alpha_share[0]) + triple.a.mac * f + triple.c.mac
        results.append(Spdz2kBinary(party, value, mac))
    checker.check_if_full()
    return results


def check_both(party) -> None:
    """Run both domains' MAC checks (the bit domain's first: arithmetic values may derive from it)."""
    party.dealer.bit_checker.check()
    party.dealer.checker.check()

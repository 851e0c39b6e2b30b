"""The spdz2k MAC check: every opened value is verified against its MAC shares before anything derived from it
leaves the protocol.

An opening of [y] (value shares summing to y, MAC shares m_i summing to alpha * y mod 2^(k+s)) is *partial*: the
parties learn y and each keeps (y, m_i) in its log. :meth:`MacChecker.check` verifies the whole log at once with a
random linear combination (Cramer et al., "SPDZ2k", CRYPTO 2018, section 4, protocol Pi_MACCheck):

1. Coin: every party commits to a fresh 32-byte seed (SHA-256), together with a digest of every opened value and
   input difference in its log, in order (so parties who were sent different values by a cheater notice: the
   openings act as a broadcast with a consistency check); then the seeds are opened and checked against the
   commitments, and chi_1..chi_t, uniform in [0, 2^s), are expanded from the hash of all seeds (an AES key stream,
   :class:`smpc.ring.prg.PRG`).
   Nobody can bias chi: an honest party's seed is uniform and was fixed before anyone saw it.
2. y = sum chi_j y_j and m_i = sum chi_j m_ij mod 2^(k+s); z_i = m_i - alpha_i y.
3. Every party commits to z_i (SHA-256 with a 16-byte nonce), then opens it; the check passes iff every commitment
   opens and sum z_i = 0 mod 2^(k+s). Committing first keeps a rushing party from choosing its z_i after seeing
   the others'.

4 rounds. With k = 64 and s statistical bits, a cheater who changed any opened value mod 2^k passes with
probability at most 2^(-s + log2(s + 1)) (the paper's Theorem 1); a failed check raises :class:`MacCheckError` at
every honest party. The log is checked at every reveal (before the value is returned), at the end of the run, and
whenever it holds more than :data:`CHECK_EVERY` elements (so memory stays bounded; these points depend on shapes
only, so all parties check together).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from smpc.exceptions import MacCheckError
from smpc.mpc.spdz2k import words
from smpc.ring.prg import PRG

#: opened elements kept before a check runs on its own (32 bytes each: the value and this party's MAC share)
CHECK_EVERY = 1 << 23
#: elements combined per pass of the check (bounds its temporaries)
_CHUNK = 1 << 20
K_BITS = 64


class MacChecker:
    """This party's MAC key share and its log of opened values (see the module docstring)."""

    def __init__(self, party, alpha_share: np.ndarray, statistical_bits: int, k_bits: int = K_BITS,
                 label: bytes = b"spdz2k"):
        self.party = party
        self.alpha_share = alpha_share
        self.statistical_bits = statistical_bits
        self.k_bits = k_bits  # values mod 2^k; MACs and the check mod 2^(k + s) (the bit domain: k = 1, s = 63)
        self.label = label
        self._values: list[np.ndarray] = []
        self._macs: list[np.ndarray] = []
        self._transcript = hashlib.sha256()
        self.pending = 0  # elements logged since the last check
        self._public_since_check = False
        self.checks = 0

    # --- the log ---------------------------------------------------------------------------------------------------
    def record(self, value: np.ndarray, mac: np.ndarray) -> None:
        """Log an opened value (limbs, the same at every honest party) with this party's MAC share of it."""
        self._values.append(np.ascontiguousarray(value).reshape(-1, 2))
        self._macs.append(np.ascontiguousarray(mac).reshape(-1, 2))
        self._transcript.update(self._values[-1])  # hashed in place (contiguous), not copied to bytes first
        self.pending += value.size // 2

    def record_words(self, value: np.ndarray, mac: np.ndarray) -> None:
        """Log an opened bit-domain value (uint64 words) with this party's MAC share of it."""
        self.record(np.stack([value, np.zeros_like(value)], axis=-1), np.stack([mac, np.zeros_like(mac)], axis=-1))

    def record_public(self, value: np.ndarray) -> None:
        """Log a value one party broadcast (an input's masked difference): its digest only, so the check confirms
        every party received the same."""
        self._transcript.update(np.ascontiguousarray(value))
        self._public_since_check = True

    def check_if_full(self) -> None:
        """Run the check when the log holds more than :data:`CHECK_EVERY` elements."""
        if self.pending > CHECK_EVERY:
            self.check()

    @property
    def has_pending(self) -> bool:
        return self.pending > 0 or self._public_since_check

    # --- the check ---------------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Verify every logged opening (4 rounds); raise :class:`MacCheckError` if any was tampered with."""
        if not self.has_pending:
            return
        party = self.party
        seed = np.frombuffer(os.urandom(32), dtype=np.uint8)
        digest = np.frombuffer(self._transcript.digest(), dtype=np.uint8)
        commitment = _hash(self.label + b" coin", party.rank, seed)
        seeds = self._exchange_committed(np.concatenate([commitment, digest]), seed, self.label + b" coin", 32,
                                         digest)
        chi_key = hashlib.sha256(b"".join(s.tobytes() for s in seeds)).digest()[:16]
        z = self._z_share(PRG(chi_key))
        nonce = np.frombuffer(os.urandom(16), dtype=np.uint8)
        opened_z = self._exchange_committed(_hash(self.label + b" z", party.rank, z.view(np.uint8), nonce),
                                            np.concatenate([z.view(np.uint8), nonce]), self.label + b" z", 32)
        total = np.zeros(2, np.uint64)
        for share in opened_z:
            total = words.add(total, share[:16].copy().view(np.uint64))
        self._values, self._macs, self.pending, self._public_since_check = [], [], 0, False
        self._transcript = hashlib.sha256()
        self.checks += 1
        if _reduce(total, self.k_bits + self.statistical_bits).any():
            raise MacCheckError("the MAC check failed: an opened value does not match its MACs, so a party "
                                "deviated from the protocol (it changed a share or a message)")

    def _exchange_committed(self, first: np.ndarray, opening: np.ndarray, label: bytes, digest_at: int,
                            digest: np.ndarray | None = None) -> list[np.ndarray]:
        """Send ``first`` (a 32-byte commitment to ``opening``, then optionally this party's log digest) to every
        peer and receive theirs; then send ``opening`` with a hash of every party's first message as this party
        received them, and receive theirs. A commitment that does not open, a digest or a view that differs from
        this party's raises :class:`MacCheckError` (a party that sent different messages to different parties is
        caught by the honest parties comparing what they received). Returns the openings in rank order. 2 rounds.
        """
        party = self.party
        for peer in party.others:
            party.send(peer, first)
        firsts = {peer: party.recv_like(peer, first.shape, np.uint8) for peer in party.others}
        firsts[party.rank] = first
        if digest is not None:
            differing = [peer for peer, theirs in firsts.items() if not np.array_equal(theirs[digest_at:], digest)]
            if differing:
                raise MacCheckError(f"parties {differing} saw different opened values than party {party.rank}: a "
                                    "message was changed on its way, or a party sent different values to different "
                                    "parties")
        view = _hash(label + b" view", 0, *(firsts[rank] for rank in range(party.world_size)))
        for peer in party.others:
            party.send(peer, np.concatenate([opening, view]))
        openings = []
        for rank in range(party.world_size):
            if rank == party.rank:
                openings.append(opening)
                continue
            theirs = party.recv_like(rank, (opening.size + view.size,), np.uint8)
            content, their_view = theirs[: opening.size], theirs[opening.size :]
            if not np.array_equal(their_view, view):
                raise MacCheckError(f"party {rank} received different MAC-check commitments than party {party.rank}")
            expected = _hash(label, rank, content[:16], content[16:]) if digest is None else _hash(label, rank, content)
            if not np.array_equal(firsts[rank][:digest_at], expected):
                raise MacCheckError(f"party {rank}'s MAC-check opening does not match its commitment")
            openings.append(content)
        return openings

    def _z_share(self, chi_prg: PRG) -> np.ndarray:
        """z_i = sum chi_j m_ij - alpha_i sum chi_j y_j mod 2^128 (limbs (2,))."""
        shift = np.uint64(64 - self.statistical_bits)
        y = np.zeros(2, np.uint64)
        m = np.zeros(2, np.uint64)
        for values, macs in zip(self._values, self._macs):
            for start in range(0, values.shape[0], _CHUNK):
                part_values, part_macs = values[start : start + _CHUNK], macs[start : start + _CHUNK]
                chi = np.zeros((part_values.shape[0], 2), np.uint64)
                chi[:, 0] = chi_prg.random_ring(part_values.shape[0]) >> shift
                y = words.add(y, words.sum_axes(words.mul(chi, part_values), 0))
                m = words.add(m, words.sum_axes(words.mul(chi, part_macs), 0))
        return words.sub(m, words.mul(self.alpha_share, y))


def _hash(label: bytes, rank: int, *parts: np.ndarray) -> np.ndarray:
    digest = hashlib.sha256(label + rank.to_bytes(4, "little"))
    for part in parts:
        digest.update(np.ascontiguousarray(part))
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _reduce(value: np.ndarray, bits: int) -> np.ndarray:
    """``value`` (limbs) mod 2^bits."""
    out = value.copy()
    if bits <= 64:
        out[1] = 0
        if bits < 64:
            out[0] &= np.uint64((1 << bits) - 1)
    elif bits < 128:
        out[1] &= np.uint64((1 << (bits - 64)) - 1)
    return out

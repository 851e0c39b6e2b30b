"""Two-party correlated randomness without a dealer: Beaver triples and truncation pairs from Paillier.

``smpc.run(fn, parties=2, protocol="additive", dealer="paillier")``. Party 0 owns a Paillier key
(2048 bits by default) and sends its public key to party 1 once. Each triple is then the classic
two-party product of Gilboa ("Two party RSA key generation", CRYPTO 1999, section 3.1) done with an
additively homomorphic scheme, as in the SPDZ "Paillier" offline phase (Damgard, Pastro, Smart and
Zakarias, CRYPTO 2012, section 6) without its zero-knowledge proofs (semi-honest parties):

1. Each party draws its own shares a_i, b_i (its local CSPRNG). For c = op(a, b) with a = a_0 + a_1 and
   b = b_0 + b_1, the products op(a_0, b_0) and op(a_1, b_1) are local; the cross terms are not.
2. Party 0 sends Enc(a_0) and Enc(b_0), element by element (fast fixed-base encryption).
3. Party 1 computes Enc(X) with X = op(a_0, b_1) + op(a_1, b_0) over the integers (ciphertexts raised to
   its plain integers, multiplied), adds a uniform mask t of ``bits(X) + STATISTICAL_BITS`` bits and
   packs several outputs into one plaintext (slots of ``bits(X) + 41`` bits, by Horner's rule on the
   ciphertexts); every packed ciphertext is re-randomized with a full r^n (circuit privacy: the key owner
   must not learn party 1's plain factors from the randomness).
4. Party 0 decrypts and unpacks X + t: statistically close (2^-40) to uniform, so it learns nothing;
   c_0 = op(a_0, b_0) + (X + t) and c_1 = op(a_1, b_1) - t, both mod 2^64.

Truncation pairs (see :mod:`smpc.mpc.additive.truncation`): party 1 draws the mask r alone; the pair carries one
oblivious product a * r_msb for the online step, made by steps 2-4 with a single operand.

Everything here runs inside ``party.offline()``: its time and bytes are offline; nothing reaches a
third endpoint. The material is whole when a request returns (the protocol's later
:meth:`~smpc.mpc.correlated.source.CorrelatedSource.complete` receives nothing). Comparisons need binary
triples and sign-bit material, which this source does not make (they would cost one Paillier product per
bit): they are not in its ``provides``, and asking for them (or for a conv2d triple) raises
:class:`~smpc.mpc.correlated.source.UnsupportedMaterial`, a :class:`ProtocolError`.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np
from gmpy2 import mpz

from smpc.exceptions import PeerError, ProtocolError
from smpc.he import paillier
from smpc.he.multiexp import multiexp
from smpc.mpc.additive.truncation import KnownMaskPair
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear
from smpc.mpc.correlated.source import CorrelatedSource, Triple, UnsupportedMaterial
from smpc.ring.arith import ring_add, ring_sub

STATISTICAL_BITS = 40  # masks hide every revealed sum up to a statistical distance of 2^-40
KEY_OWNER, EVALUATOR = 0, 1
_RING = 1 << 64


class PaillierDealerClient(CorrelatedSource):
    """The correlated-randomness source of two parties that share no dealer (see the module docstring)."""

    name = "dealer='paillier'"
    provides = frozenset({"triple", "trunc_pair"})
    unsupported_advice = ("dealer='paillier' makes arithmetic triples (mul, matmul) and truncation pairs only; "
                          "{what} need dealer='trusted' (or protocol='aby3')")

    def __init__(self, party, key_bits: int = 2048):
        if party.world_size != 2:
            raise ProtocolError(f"dealer='paillier' runs with exactly 2 parties, got {party.world_size}")
        super().__init__()
        self.party = party
        self.key_bits = key_bits
        self._public = None
        self._private = None

    # --- the correlated-randomness interface ------------------------------------------------------
    def triple(self, op: Bilinear, shape_x: tuple, shape_y: tuple) -> Triple:
        """This party's shares of a triple with ``c = op(a, b)`` (element-wise or matrix product)."""
        if op.code not in (MUL, MATMUL):
            raise UnsupportedMaterial(self, "triple", what=f"{op.name} triples")
        shape_z = op.output_shape(shape_x, shape_y)
        with self.party.offline():
            self._ensure_keys()
            a = self.party.prg.random_ring(shape_x)
            b = self.party.prg.random_ring(shape_y)
            local = op.apply(a, b)
            terms = 1 if op.code == MUL else (shape_x[-1] if shape_x else 1)
            bound = 2 * _RING * _RING * terms  # X = op(a0, b1) + op(a1, b0) < 2 K 2^128
            if self.party.rank == KEY_OWNER:
                self._send_encrypted(np.concatenate([a.reshape(-1), b.reshape(-1)]))
                masked = self._receive_masked(int(np.prod(shape_z, dtype=np.int64)), bound)
                c = ring_add(local, masked.reshape(shape_z))
            else:
                ciphers = self._receive_encrypted(a.size + b.size)
                enc_a = _object_array(ciphers[: a.size], shape_x)
                enc_b = _object_array(ciphers[a.size :], shape_y)
                cross = _cross_terms(op, enc_a, enc_b, a, b, self._public.nsquare)
                mask = self._send_masked(cross.reshape(-1).tolist(), bound)
                c = ring_sub(local, mask.reshape(shape_z))
        return self._track(Triple(a, b, c), f"triple({op.name}, {tuple(shape_x)}, {tuple(shape_y)})")

    def trunc_pair(self, shape: tuple, bits: int) -> KnownMaskPair:
        """A truncation pair whose mask party 1 draws, with the oblivious product a * r_msb."""
        shape = tuple(shape)
        count = int(np.prod(shape, dtype=np.int64))
        with self.party.offline():
            self._ensure_keys()
            if self.party.rank == KEY_OWNER:
                a = self.party.prg.random_ring(shape)
                self._send_encrypted(a.reshape(-1))
                share = self._receive_masked(count, _RING).reshape(shape)
                zeros = np.zeros(shape, np.uint64)
                pair = KnownMaskPair(zeros, zeros, zeros, a, share)
            else:
                r = self.party.prg.random_ring(shape)
                r_msb = r >> np.uint64(63)
                low = (r & np.uint64((1 << 63) - 1)) >> np.uint64(bits)
                ciphers = self._receive_encrypted(count)
                one = mpz(1)  # Enc(a)^0 = Enc(0) before re-randomization
                products = [c if bit else one for c, bit in zip(ciphers, r_msb.reshape(-1).tolist())]
                mask = self._send_masked(products, _RING)
                pair = KnownMaskPair(r, r_msb, low, None, ring_sub(np.zeros(shape, np.uint64), mask.reshape(shape)))
        return self._track(pair, f"truncation pair ({bits} bits, {shape})")

    # --- key set-up -------------------------------------------------------------------------------
    def _ensure_keys(self) -> None:
        if self._public is not None:
            return
        if self.party.rank == KEY_OWNER:
            self._public, self._private = paillier.keygen(self.key_bits)
            self.party.send(EVALUATOR, _to_limbs([self._public.n], _limbs(self.key_bits)))
        else:
            limbs = self.party.recv_like(KEY_OWNER, (1, _limbs(self.key_bits)))
            n = _from_limbs(limbs)[0]
            if n.bit_length() != self.key_bits:
                raise PeerError(KEY_OWNER, f"party 0 sent a Paillier modulus of {n.bit_length()} bits, "
                                           f"expected {self.key_bits}")
            try:
                self._public = paillier.PublicKey(int(n))
            except ValueError as exc:
                raise PeerError(KEY_OWNER, f"party 0 sent an invalid Paillier modulus: {exc}") from None

    # --- step 2: the key owner's encryptions ------------------------------------------------------
    def _send_encrypted(self, values: np.ndarray) -> None:
        ciphers = self._public.raw_encrypt_ints(values.astype(object).tolist())
        self.party.send(EVALUATOR, _to_limbs(ciphers, _limbs(2 * self.key_bits)))

    def _receive_encrypted(self, count: int) -> list:
        limbs = self.party.recv_like(KEY_OWNER, (count, _limbs(2 * self.key_bits)))
        ciphers = _from_limbs(limbs)
        nsquare = self._public.nsquare
        if any(not 0 < c < nsquare for c in ciphers):
            raise PeerError(KEY_OWNER, "party 0 sent a ciphertext outside [1, n^2)")
        return ciphers

    # --- steps 3 and 4: masked, packed return of Enc(X) ---------------------------------------------
    def _send_masked(self, ciphers: list, bound: int) -> np.ndarray:
        """Pack ``Enc(X_j + t_j)`` (X_j < bound), re-randomize, send; return the masks t_j mod 2^64."""
        layout = _Slots(bound, self.key_bits)
        masks = _random_masks(self.party.prg, len(ciphers), layout.mask_bits)
        nsquare = self._public.nsquare
        packed, plains = [], []
        for start in range(0, len(ciphers), layout.per_plaintext):
            accumulated, plain = mpz(1), mpz(0)
            for j in reversed(range(start, min(start + layout.per_plaintext, len(ciphers)))):
                accumulated = gmpy2.powmod(accumulated, layout.shift, nsquare) * ciphers[j] % nsquare
                plain = (plain << layout.slot_bits) + masks[j]
            packed.append(accumulated)
            plains.append(plain)
        # Enc(sum_j t_j 2^(s j)) with a full r^n: adds the masks and re-randomizes (circuit privacy)
        randomized = self._public.raw_encrypt_ints(plains, full=True)
        packed = [c * r % nsquare for c, r in zip(packed, randomized)]
        self.party.send(KEY_OWNER, _to_limbs(packed, _limbs(2 * self.key_bits)))
        return np.array([m & (_RING - 1) for m in masks], dtype=np.uint64)

    def _receive_masked(self, count: int, bound: int) -> np.ndarray:
        """Decrypt and unpack the X_j + t_j of :meth:`_send_masked`, mod 2^64."""
        layout = _Slots(bound, self.key_bits)
        groups = -(-count // layout.per_plaintext)
        limbs = self.party.recv_like(EVALUATOR, (groups, _limbs(2 * self.key_bits)), np.uint64)
        plains = self._private.raw_decrypt_ints(_from_limbs(limbs))
        out = np.empty(count, np.uint64)
        slot_mask = (1 << layout.slot_bits) - 1
        for g, plain in enumerate(plains):
            plain = int(plain)
            for j in range(min(layout.per_plaintext, count - g * layout.per_plaintext)):
                out[g * layout.per_plaintext + j] = ((plain >> (j * layout.slot_bits)) & slot_mask) & (_RING - 1)
        return out


class _Slots:
    """How masked values X + t (X < bound) pack into one plaintext below n."""

    def __init__(self, bound: int, key_bits: int):
        self.mask_bits = math.ceil(math.log2(bound)) + STATISTICAL_BITS
        self.slot_bits = self.mask_bits + 1  # X + t < 2^mask_bits + bound <= 2^slot_bits
        self.per_plaintext = max(1, (key_bits - 2) // self.slot_bits)
        self.shift = mpz(1) << self.slot_bits


def _cross_terms(op: Bilinear, enc_a: np.ndarray, enc_b: np.ndarray, a1: np.ndarray, b1: np.ndarray,
                 nsquare) -> np.ndarray:
    """Enc(op(a_0, b_1) + op(a_1, b_0)) over the integers, as an object array of ciphertexts."""
    a1, b1 = a1.astype(object), b1.astype(object)
    if op.code == MATMUL:
        return _matmul_cross(enc_a, enc_b, a1, b1, nsquare)
    shape = np.broadcast_shapes(enc_a.shape, enc_b.shape)
    operands = [np.broadcast_to(v, shape).reshape(-1) for v in (enc_a, enc_b, b1, a1)]
    out = [gmpy2.powmod(ca, pb, nsquare) * gmpy2.powmod(cb, pa, nsquare) % nsquare for ca, cb, pb, pa in zip(*operands)]
    return _object_array(out, shape)


def _matmul_cross(enc_a, enc_b, a1, b1, nsquare) -> np.ndarray:
    """Enc(a_0 @ b_1 + a_1 @ b_0) for 1-D, 2-D or batched operands (numpy's matmul shapes), by
    multi-exponentiation: row i of Enc(a_0) against b_1's columns, column j of Enc(b_0) against a_1's rows."""
    vector_x, vector_y = enc_a.ndim == 1, enc_b.ndim == 1
    if vector_x:
        enc_a, a1 = enc_a[None, :], a1[None, :]
    if vector_y:
        enc_b, b1 = enc_b[:, None], b1[:, None]
    batch = np.broadcast_shapes(enc_a.shape[:-2], enc_b.shape[:-2])
    rows, inner, cols = enc_a.shape[-2], enc_a.shape[-1], enc_b.shape[-1]
    ea, pa = (np.broadcast_to(v, (*batch, rows, inner)) for v in (enc_a, a1))
    eb, pb = (np.broadcast_to(v, (*batch, inner, cols)) for v in (enc_b, b1))
    out = np.empty((*batch, rows, cols), dtype=object)
    for index in np.ndindex(batch):
        exponents_b, exponents_a = pb[index].tolist(), pa[index].T.tolist()
        left = [multiexp(list(ea[index][i]), exponents_b, nsquare) for i in range(rows)]
        right = [multiexp(list(eb[index][:, j]), exponents_a, nsquare) for j in range(cols)]
        for i in range(rows):
            for j in range(cols):
                out[index][i, j] = left[i][j] * right[j][i] % nsquare
    if vector_x:
        out = out[..., 0, :]
    if vector_y:
        out = out[..., 0]
    return out


def _random_masks(prg, count: int, bits: int) -> list[int]:
    """``count`` uniform integers of ``bits`` bits from the CSPRNG."""
    words = -(-bits // 64)
    raw = prg.random_ring((count, words)).astype(object)
    top = (1 << (bits - 64 * (words - 1))) - 1
    masks = []
    for row in raw:
        value = 0
        for k, word in enumerate(row):
            value |= (int(word) & (top if k == words - 1 else _RING - 1)) << (64 * k)
        masks.append(value)
    return masks


def _object_array(items: list, shape: tuple) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


def _limbs(bits: int) -> int:
    return -(-bits // 64)


def _to_limbs(values: list, limbs: int) -> np.ndarray:
    """Non-negative integers below 2^(64 limbs) as little-endian uint64 words, one row each."""
    data = b"".join(int(v).to_bytes(8 * limbs, "little") for v in values)
    return np.frombuffer(data, dtype="<u8").reshape(len(values), limbs).astype(np.uint64)


def _from_limbs(words: np.ndarray) -> list:
    raw = np.ascontiguousarray(words, dtype="<u8").tobytes()
    width = 8 * words.shape[1]
    return [mpz(int.from_bytes(raw[i : i + width], "little")) for i in range(0, len(raw), width)]


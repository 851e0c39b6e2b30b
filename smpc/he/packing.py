"""Packed Paillier arrays: many fixed-point values per ciphertext, with a budget of additions.

Layout. Values ``v`` with ``|v| < 2^B`` (``B = bound_bits``) sit in slots of ``w = B + 1 +
ceil(log2(additions + 1))`` bits, ``slots = floor((bits - 1) / w)`` of them per plaintext, slot ``i`` at
bit ``w i``. A slot holds ``v + c 2^B``: the offset makes it non-negative, and ``c`` (``summands``) counts
the encrypted values summed into it. Since ``|v| <= c (2^B - 1)`` the slot stays in ``[0, 2c 2^B)``, which
fits ``w`` bits while ``c <= additions + 1``, so additions never carry into the next slot.

Operations: ``+`` of two packed arrays of one layout (summands add), ``+``/``-`` of a plain array
(values encoded at the array's fraction bits, one more summand), negation (slot ``2c 2^B - s``, the
offset is kept), ``*`` by a public integer scalar ``k`` (summands times ``|k|``). Exceeding the budget
raises :class:`PlaintextOverflowError`. Decryption checks that every slot and the unused top bits are in
range, so garbage is detected as for unpacked arrays. At 2048 bits with floats (B = 62) and the default
15 additions, a slot is 67 bits and a ciphertext carries 30 values.
"""

from __future__ import annotations

import math

import numpy as np
from gmpy2 import mpz

from smpc.he import array_ops, raw, serialization
from smpc.he.encoding import check_bound_fits, decode, encode_for_encryption, encode_plain, native_frac_bits
from smpc.he.errors import DecryptionError, EncodingError, PlaintextOverflowError, SerializationError
from smpc.he.paillier_keys import check_public_key

FORMAT = "smpc.paillier.PackedEncryptedArray"
_FIELDS = {"shape", "frac_bits", "bound_bits", "integer", "slot_bits", "slots", "summands", "max_summands"}


def encrypt_packed(public_key, x, *, additions: int = 15, frac_bits=None, bound_bits=None, random_bytes=None):
    """What :meth:`PublicKey.encrypt_packed` does: encode, lay out, pack and encrypt."""
    if not isinstance(additions, int) or isinstance(additions, bool) or additions < 0:
        raise ValueError(f"additions must be a non-negative integer, got {additions!r}")
    encoded = encode_for_encryption(x, frac_bits, bound_bits)
    bound = encoded.bound_bits
    slot_bits = bound + 1 + math.ceil(math.log2(additions + 1))
    slots = (public_key.bits - 1) // slot_bits
    if slots < 1:
        raise PlaintextOverflowError(f"a {slot_bits}-bit slot does not fit the {public_key.bits}-bit plaintext space")
    layout = Layout(bound, slot_bits, slots, additions + 1)
    plaintexts = layout.pack(encoded.values.reshape(-1).tolist(), summands=1)
    cts = raw.encrypt_ints(public_key, plaintexts, random_bytes=random_bytes)
    return PackedEncryptedArray(public_key, cts, encoded.values.shape, encoded.frac_bits, encoded.integer, layout, 1,
                                fresh=True)


class Layout:
    """Slot geometry of a packed array: value bound, slot width, slots per ciphertext, summand budget."""

    def __init__(self, bound_bits: int, slot_bits: int, slots: int, max_summands: int):
        if (max_summands << (bound_bits + 1)) > (1 << slot_bits):
            raise ValueError("slots too narrow for the summand budget")
        self.bound_bits, self.slot_bits, self.slots, self.max_summands = bound_bits, slot_bits, slots, max_summands

    def __eq__(self, other) -> bool:
        return isinstance(other, Layout) and self.key() == other.key()

    def key(self) -> tuple:
        return self.bound_bits, self.slot_bits, self.slots, self.max_summands

    def pack(self, values: list[int], summands: int) -> list[int]:
        """Plaintexts holding ``v + summands 2^B`` per slot (missing slots of the last plaintext hold 0)."""
        offset, w = summands << self.bound_bits, self.slot_bits
        out = []
        for start in range(0, len(values), self.slots):
            chunk = values[start : start + self.slots]
            chunk = chunk + [0] * (self.slots - len(chunk))
            m = 0
            for v in reversed(chunk):
                m = (m << w) + (v + offset)  # '+': a slot of the negation constant may be exactly 2^w
            out.append(m)
        return out

    def unpack(self, plaintexts: list[int], summands: int, count: int) -> list[int]:
        """The first ``count`` signed values, checking every slot's range and the unused top bits."""
        offset, w = summands << self.bound_bits, self.slot_bits
        mask, limit = (1 << w) - 1, summands * ((1 << self.bound_bits) - 1)
        values = []
        for index, m in enumerate(plaintexts):
            if m >> (w * self.slots):
                raise DecryptionError(f"packed ciphertext at index {index} decrypts outside its slots: "
                                      "wrong key, or a corrupted or forged ciphertext")
            for _ in range(self.slots):
                v = (m & mask) - offset
                if not -limit <= v <= limit:
                    raise DecryptionError(f"a slot of packed ciphertext at index {index} is out of range: "
                                          "wrong key, or a corrupted or forged ciphertext")
                values.append(v)
                m >>= w
        return values[:count]


class PackedEncryptedArray:
    """An array packed ``slots`` values per ciphertext (see the module docstring); decrypt with ``sk.decrypt``."""

    __array_ufunc__ = None

    def __init__(self, public_key, ciphertexts: list, shape: tuple, frac_bits: int, integer: bool, layout: Layout,
                 summands: int, *, fresh: bool = False):
        if not 0 <= summands <= layout.max_summands:
            raise PlaintextOverflowError(
                f"packed addition budget exceeded: {summands} summands per slot, the layout allows "
                f"{layout.max_summands} (encrypt_packed(..., additions={layout.max_summands - 1}))"
            )
        self.public_key, self._cts, self.shape = public_key, list(ciphertexts), tuple(shape)
        self.frac_bits, self.integer = frac_bits, integer and frac_bits == 0
        self.layout, self.summands = layout, summands
        self._fresh = fresh

    @property
    def size(self) -> int:
        return serialization.element_count(self.shape)

    @property
    def slots(self) -> int:
        return self.layout.slots

    @property
    def additions_left(self) -> int:
        """How many more packed arrays (each of one summand) may still be added."""
        return self.layout.max_summands - self.summands

    def _derive(self, cts: list, summands: int) -> "PackedEncryptedArray":
        return PackedEncryptedArray(self.public_key, cts, self.shape, self.frac_bits, self.integer, self.layout,
                                    summands)

    def reshape(self, *shape) -> "PackedEncryptedArray":
        new_shape = np.empty(self.shape, dtype=np.bool_).reshape(*shape).shape
        return PackedEncryptedArray(self.public_key, self._cts, new_shape, self.frac_bits, self.integer, self.layout,
                                    self.summands, fresh=self._fresh)

    def raw_ciphertexts(self) -> list:
        """The packed ciphertexts (gmpy2 mpz; hazmat)."""
        return list(self._cts)

    def __bool__(self):
        raise TypeError("a PackedEncryptedArray has no truth value: decrypt it first")

    def __repr__(self) -> str:
        return (f"PackedEncryptedArray(shape={self.shape}, frac_bits={self.frac_bits}, slots={self.slots}, "
                f"summands={self.summands}/{self.layout.max_summands}, key={self.public_key.fingerprint[:16]!r})")

    # ---- arithmetic ----
    def __add__(self, other):
        if isinstance(other, PackedEncryptedArray):
            self._check_compatible(other)
            return self._derive(raw.add(self.public_key, self._cts, other._cts), self.summands + other.summands)
        return self._add_plain(other, sign=1)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, PackedEncryptedArray):
            return self + (-other)
        return self._add_plain(other, sign=-1)

    def __rsub__(self, other):
        return (-self)._add_plain(other, sign=1)

    def __neg__(self):
        # slot s = v + c 2^B becomes 2c 2^B - s = -v + c 2^B: Enc(C) * Enc(M)^-1 with C = 2c 2^B in every slot
        twice = [0] * (self.layout.slots * len(self._cts))
        constant = self.layout.pack(twice, summands=2 * self.summands)
        inverted = raw.negate(self.public_key, self._cts)
        return self._derive(raw.add_plain(self.public_key, inverted, constant), self.summands)

    def __mul__(self, k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError("a packed array multiplies by a public integer scalar only (slots share one exponent)")
        k = int(k)
        base = -self if k < 0 else self
        if k == 0:
            return self._derive([mpz(1)] * len(self._cts), 0)
        summands = base.summands * abs(k)
        if summands > self.layout.max_summands:
            raise PlaintextOverflowError(f"packed addition budget exceeded: multiplying by {k} needs {summands} "
                                         f"summands per slot, the layout allows {self.layout.max_summands}")
        return base._derive(raw.mul_plain(self.public_key, base._cts, abs(k)), summands)

    __rmul__ = __mul__

    def _add_plain(self, other, sign: int):
        if hasattr(other, "_decrypt_with"):
            raise TypeError(f"cannot combine a PackedEncryptedArray and a {type(other).__name__}")
        plain = np.asarray(other)
        if plain.dtype.kind not in "biufO":
            return NotImplemented
        if self.integer and native_frac_bits(plain):
            raise EncodingError("cannot add fractional plain values to an integer packed array")
        encoded = encode_plain(np.broadcast_to(plain, self.shape), self.frac_bits)
        values = [sign * v for v in encoded.values.reshape(-1).tolist()]
        limit = (1 << self.layout.bound_bits) - 1
        for index, v in enumerate(values):
            if not -limit <= v <= limit:
                raise PlaintextOverflowError(f"the plain value at flat index {index} does not fit a packed slot "
                                             f"(|v| < 2^{self.layout.bound_bits} at {self.frac_bits} fraction bits)")
        if self.summands + 1 > self.layout.max_summands:
            raise PlaintextOverflowError(f"packed addition budget exceeded: the layout allows "
                                         f"{self.layout.max_summands} summands per slot")
        constant = self.layout.pack(values, summands=1)
        return self._derive(raw.add_plain(self.public_key, self._cts, constant), self.summands + 1)

    def _check_compatible(self, other: "PackedEncryptedArray") -> None:
        array_ops.check_same_key(self.public_key, other.public_key)
        if other.layout != self.layout or other.frac_bits != self.frac_bits or other.shape != self.shape:
            raise ValueError("packed arrays must share shape, fraction bits and slot layout to be added")

    def rerandomize(self, *, full: bool = True, random_bytes=None) -> "PackedEncryptedArray":
        """New ciphertexts of the same slots (see :meth:`EncryptedArray.rerandomize`)."""
        cts = raw.rerandomize(self.public_key, self._cts, full=full, random_bytes=random_bytes)
        return PackedEncryptedArray(self.public_key, cts, self.shape, self.frac_bits, self.integer, self.layout,
                                    self.summands, fresh=True)

    def _decrypt_with(self, private_key) -> np.ndarray:
        array_ops.check_same_key(private_key.public_key, self.public_key)
        plaintexts = private_key.raw_decrypt_ints(self._cts)
        values = self.layout.unpack(plaintexts, self.summands, self.size)
        bound = self.layout.bound_bits + max(0, self.summands - 1).bit_length()
        return decode(values, self.shape, self.frac_bits, bound, self.integer)

    # ---- formats (see smpc.he.serialization) ----
    def _fields(self) -> dict:
        layout = self.layout
        return {"shape": list(self.shape), "frac_bits": self.frac_bits, "bound_bits": layout.bound_bits,
                "integer": self.integer, "slot_bits": layout.slot_bits, "slots": layout.slots,
                "summands": self.summands, "max_summands": layout.max_summands}

    def _published(self, rerandomize: bool) -> "PackedEncryptedArray":
        return self.rerandomize() if rerandomize and not self._fresh else self

    def to_json(self, *, rerandomize: bool = True) -> str:
        arr = self._published(rerandomize)
        return serialization.array_json(FORMAT, self.public_key, arr._fields(), arr._cts)

    def to_bytes(self, *, rerandomize: bool = True) -> bytes:
        arr = self._published(rerandomize)
        return serialization.array_bytes(FORMAT, self.public_key, arr._fields(), arr._cts)

    @classmethod
    def from_json(cls, text, public_key) -> "PackedEncryptedArray":
        check_public_key(public_key)
        return cls._loaded(*serialization.load_array_json(text, FORMAT, _FIELDS, public_key), public_key)

    @classmethod
    def from_bytes(cls, data, public_key) -> "PackedEncryptedArray":
        check_public_key(public_key)
        return cls._loaded(*serialization.load_array_bytes(data, FORMAT, _FIELDS, public_key), public_key)

    @classmethod
    def _loaded(cls, doc: dict, cts: list, public_key) -> "PackedEncryptedArray":
        shape = serialization.shape_field(doc)
        bits = public_key.bits
        bound = serialization.int_field(doc, "bound_bits", 1, bits)
        slot_bits = serialization.int_field(doc, "slot_bits", 2, bits)
        slots = serialization.int_field(doc, "slots", 1, (bits - 1) // slot_bits)
        max_summands = serialization.int_field(doc, "max_summands", 1, 1 << 32)
        summands = serialization.int_field(doc, "summands", 0, max_summands)
        frac = serialization.int_field(doc, "frac_bits", 0, 1 << 16)
        integer = serialization.bool_field(doc, "integer")
        if integer and frac:
            raise SerializationError("an integer array must have frac_bits 0")
        try:
            layout = Layout(bound, slot_bits, slots, max_summands)
        except ValueError as error:
            raise SerializationError(f"malformed {FORMAT}: {error}") from None
        serialization.check_count(len(cts), -(-serialization.element_count(shape) // slots), FORMAT)
        check_bound_fits(bound, public_key.max_bits, "a packed slot")
        return cls(public_key, cts, shape, frac, integer, layout, summands, fresh=True)

"""EncryptedArray: an n-d array of Paillier ciphertexts of fixed-point values, with numpy-style operations.

``pk.encrypt(x)`` makes one; ``sk.decrypt(a)`` gives the array back. Operators: ``+ -`` with encrypted
or plain operands, ``*`` and ``@`` with plain operands (numpy broadcasting and 1-D/2-D matmul rules),
unary ``-``, ``sum(axis)``, ``reshape``, ``transpose``/``T`` and indexing.

Every array carries ``frac_bits`` (values are ``v / 2^frac_bits``; products add them, as phe's
exponents add) and ``bound_bits``, a public bound ``|v| < 2^bound_bits`` updated by every operation
(:mod:`smpc.he.array_ops`). Decryption checks it, so a ciphertext that is not what the array says
(another key's, corrupted, forged) raises instead of decrypting to a plausible number: a uniformly
random ciphertext passes with probability about ``2^(bound_bits + 1 - bits)``.

Results of homomorphic operations are re-randomized (uniform ``r^n``) when serialized, unless told
not to: a computed ciphertext must not reveal how it was computed (phe does the same on ``ciphertext()``).
"""

from __future__ import annotations

import numpy as np

from smpc.he import array_ops, phe_interop, raw, serialization
from smpc.he.encoding import MAX_FRAC_BITS, check_bound_fits, decode, encode_for_encryption
from smpc.he.errors import SerializationError
from smpc.he.paillier_keys import check_public_key

FORMAT = "smpc.paillier.EncryptedArray"
_FIELDS = {"shape", "frac_bits", "bound_bits", "integer"}


def encrypt_array(public_key, x, *, frac_bits=None, bound_bits=None, random_bytes=None) -> "EncryptedArray":
    """What :meth:`PublicKey.encrypt` does: encode, check the bound fits, encrypt every value."""
    encoded = encode_for_encryption(x, frac_bits, bound_bits)
    check_bound_fits(encoded.bound_bits, public_key.max_bits, "encryption")
    messages = [v % public_key.n for v in encoded.values.reshape(-1).tolist()]
    cts = raw.encrypt_ints(public_key, messages, random_bytes=random_bytes)
    shape = encoded.values.shape
    return EncryptedArray(public_key, array_ops.objects(cts, shape), encoded.frac_bits, encoded.bound_bits,
                          encoded.integer, fresh=True)


class EncryptedArray:
    """Ciphertexts of an array of fixed-point values under one public key (see the module docstring)."""

    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray + EncryptedArray works

    def __init__(self, public_key, ciphertexts: np.ndarray, frac_bits: int, bound_bits: int, integer: bool,
                 *, fresh: bool = False):
        check_bound_fits(bound_bits, public_key.max_bits, "the result")
        self.public_key = public_key
        self._cts = ciphertexts
        self.frac_bits = int(frac_bits)
        self.bound_bits = int(bound_bits)
        self.integer = bool(integer) and self.frac_bits == 0
        self._fresh = fresh

    def _derive(self, ciphertexts: np.ndarray, frac_bits: int, bound_bits: int, integer: bool) -> "EncryptedArray":
        return EncryptedArray(self.public_key, ciphertexts, frac_bits, bound_bits, integer)

    @classmethod
    def from_raw(cls, public_key, ciphertexts, *, shape=None, frac_bits: int = 0, bound_bits: int | None = None,
                 integer: bool | None = None, validate: bool = True) -> "EncryptedArray":
        """An array over raw ciphertexts (hazmat) whose plaintexts are ``v / 2^frac_bits`` with ``|v| < 2^bound_bits``.

        ``bound_bits`` defaults to the whole signed plaintext range (no garbage detection);
        ``validate`` checks each ciphertext lies in [1, n^2) and is coprime with n.
        """
        array = np.asarray(ciphertexts, dtype=object)
        flat = raw.validate(public_key, array.reshape(-1)) if validate else array.reshape(-1).tolist()
        shape = array.shape if shape is None else tuple(int(d) for d in shape)
        if any(d < 0 for d in shape) or serialization.element_count(shape) != len(flat):
            raise SerializationError(f"{len(flat)} ciphertexts do not fill shape {shape}")
        bound = public_key.max_bits if bound_bits is None else bound_bits
        integer = frac_bits == 0 if integer is None else integer
        return cls(public_key, array_ops.objects(flat, shape), frac_bits, bound, integer)

    def raw_ciphertexts(self) -> np.ndarray:
        """The ciphertexts (gmpy2 mpz) as an object array of this shape (hazmat; a copy)."""
        return self._cts.copy()

    # ---- shape ----
    @property
    def shape(self) -> tuple:
        return self._cts.shape

    @property
    def ndim(self) -> int:
        return self._cts.ndim

    @property
    def size(self) -> int:
        return self._cts.size

    @property
    def T(self) -> "EncryptedArray":
        return self.transpose()

    def transpose(self, *axes) -> "EncryptedArray":
        return self._view(self._cts.transpose(*axes))

    def reshape(self, *shape) -> "EncryptedArray":
        return self._view(self._cts.reshape(*shape))

    def __getitem__(self, key) -> "EncryptedArray":
        picked = self._cts[key]
        return self._view(picked if isinstance(picked, np.ndarray) else array_ops.objects([picked], ()))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d EncryptedArray")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d EncryptedArray")
        return (self[i] for i in range(self.shape[0]))

    def _view(self, cts: np.ndarray) -> "EncryptedArray":
        return EncryptedArray(self.public_key, cts, self.frac_bits, self.bound_bits, self.integer, fresh=self._fresh)

    def __bool__(self):
        raise TypeError("an EncryptedArray has no truth value: decrypt it first")

    def __repr__(self) -> str:
        return (f"EncryptedArray(shape={self.shape}, frac_bits={self.frac_bits}, bound_bits={self.bound_bits}, "
                f"key={self.public_key.fingerprint[:16]!r})")

    # ---- arithmetic ----
    def __add__(self, other):
        if isinstance(other, EncryptedArray):
            return array_ops.add_encrypted(self, other)
        plain = _plain(other, "+")
        return NotImplemented if plain is None else array_ops.add_plain(self, plain)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, EncryptedArray):
            return array_ops.add_encrypted(self, array_ops.negate(other))
        plain = _plain(other, "-")
        return NotImplemented if plain is None else array_ops.add_plain(self, plain, sign=-1)

    def __rsub__(self, other):
        plain = _plain(other, "-")
        return NotImplemented if plain is None else array_ops.add_plain(array_ops.negate(self), plain)

    def __neg__(self):
        return array_ops.negate(self)

    def __mul__(self, other):
        plain = _plain(other, "*")
        return NotImplemented if plain is None else array_ops.mul_plain(self, plain)

    __rmul__ = __mul__

    def __matmul__(self, other):
        plain = _plain(other, "@")
        return NotImplemented if plain is None else array_ops.matmul(self, plain, encrypted_left=True)

    def __rmatmul__(self, other):
        plain = _plain(other, "@")
        return NotImplemented if plain is None else array_ops.matmul(self, plain, encrypted_left=False)

    def sum(self, axis=None) -> "EncryptedArray":
        """The homomorphic sum over ``axis`` (an int, a tuple, or None for all elements)."""
        return array_ops.sum_axis(self, axis)

    def rerandomize(self, *, full: bool = True, random_bytes=None) -> "EncryptedArray":
        """New ciphertexts of the same values: ``c r^n``, r uniform (``full``: circuit-private), or fast ``c h_s^a``."""
        cts = raw.rerandomize(self.public_key, self._cts.reshape(-1).tolist(), full=full, random_bytes=random_bytes)
        return EncryptedArray(self.public_key, array_ops.objects(cts, self.shape), self.frac_bits, self.bound_bits,
                              self.integer, fresh=True)

    # ---- decryption (called by PrivateKey.decrypt) ----
    def _decrypt_with(self, private_key) -> np.ndarray:
        array_ops.check_same_key(private_key.public_key, self.public_key)
        n = self.public_key.n
        half = n // 2
        values = [v - n if v > half else v for v in private_key.raw_decrypt_ints(self._cts.reshape(-1).tolist())]
        return decode(values, self.shape, self.frac_bits, self.bound_bits, self.integer)

    # ---- formats (see smpc.he.serialization) ----
    def _fields(self) -> dict:
        return {"shape": list(self.shape), "frac_bits": self.frac_bits, "bound_bits": self.bound_bits,
                "integer": self.integer}

    def _published(self, rerandomize: bool) -> "EncryptedArray":
        return self.rerandomize() if rerandomize and not self._fresh else self

    def to_json(self, *, rerandomize: bool = True) -> str:
        """The documented JSON form; results of operations are first re-randomized unless ``rerandomize=False``."""
        arr = self._published(rerandomize)
        return serialization.array_json(FORMAT, self.public_key, arr._fields(), arr._cts.reshape(-1).tolist())

    def to_bytes(self, *, rerandomize: bool = True) -> bytes:
        """The documented bytes form (fixed-width ciphertexts after a JSON header)."""
        arr = self._published(rerandomize)
        return serialization.array_bytes(FORMAT, self.public_key, arr._fields(), arr._cts.reshape(-1).tolist())

    @classmethod
    def from_json(cls, text, public_key) -> "EncryptedArray":
        """Load and validate an array made under ``public_key``."""
        check_public_key(public_key)
        doc, cts = serialization.load_array_json(text, FORMAT, _FIELDS, public_key)
        return cls._loaded(doc, cts, public_key)

    @classmethod
    def from_bytes(cls, data, public_key) -> "EncryptedArray":
        """Load and validate the bytes form of an array made under ``public_key``."""
        check_public_key(public_key)
        doc, cts = serialization.load_array_bytes(data, FORMAT, _FIELDS, public_key)
        return cls._loaded(doc, cts, public_key)

    @classmethod
    def _loaded(cls, doc: dict, cts: list, public_key) -> "EncryptedArray":
        shape = serialization.shape_field(doc)
        serialization.check_count(len(cts), serialization.element_count(shape), FORMAT)
        frac = serialization.int_field(doc, "frac_bits", 0, MAX_FRAC_BITS)
        bound = serialization.int_field(doc, "bound_bits", 1, public_key.max_bits)
        integer = serialization.bool_field(doc, "integer")
        if integer and frac:
            raise SerializationError("an integer array must have frac_bits 0")
        return cls(public_key, array_ops.objects(cts, shape), frac, bound, integer, fresh=True)

    # ---- phe ----
    def to_phe(self):
        """Nested lists of this shape of ``phe.EncryptedNumber`` (exponent ``-frac_bits/4``); 0-d: one number.

        ``EncryptedArray.from_phe(a.to_phe(), pk)`` has ``a``'s shape (see :mod:`smpc.he.phe_interop`).
        """
        return phe_interop.array_to_phe(self)

    @classmethod
    def from_phe(cls, numbers, public_key, *, shape=None, bound_bits: int | None = None) -> "EncryptedArray":
        """An array from ``phe.EncryptedNumber`` values, shaped as their nesting or ``shape`` (see
        :func:`smpc.he.phe_interop.ciphertexts_from_phe`)."""
        check_public_key(public_key)
        cts, frac_bits, bound, integer = phe_interop.ciphertexts_from_phe(numbers, public_key, shape=shape,
                                                                           bound_bits=bound_bits)
        return cls(public_key, cts, frac_bits, bound, integer)


def _plain(other, op: str):
    """A public operand as an array, or None when it is not array-like numbers (Python then raises)."""
    if isinstance(other, EncryptedArray) and op in "*@":
        raise TypeError(
            f"encrypted {op} encrypted needs an interactive protocol: Paillier multiplies by plain operands only"
        )
    if hasattr(other, "_decrypt_with"):
        raise TypeError(f"cannot combine an EncryptedArray and a {type(other).__name__} with {op}")
    array = np.asarray(other) if not isinstance(other, np.ndarray) else other
    return array if array.dtype.kind in "biufO" else None

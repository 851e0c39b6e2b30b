"""The JSON and bytes formats of Paillier keys and ciphertext arrays (never pickle); loading validates all.

Version 1 formats. ``HEX`` is a lowercase hexadecimal integer without prefix or sign.

* ``PublicKey``: ``{"format": "smpc.paillier.PublicKey", "version": 1, "n": HEX}``
* ``PrivateKey``: ``{"format": "smpc.paillier.PrivateKey", "version": 1, "n": HEX, "p": HEX, "q": HEX}``
  (secret: store it as you would any private key)
* ``EncryptedArray``: ``{"format": "smpc.paillier.EncryptedArray", "version": 1, "key": FINGERPRINT,
  "shape": [d0, d1, ...], "frac_bits": f, "bound_bits": b, "integer": bool, "ciphertexts": [HEX, ...]}``
  with one ciphertext per element in C order; every plaintext v satisfies ``|v| < 2^b`` and the value
  is ``v / 2^f``.
* ``PackedEncryptedArray``: the same fields plus ``"slot_bits"``, ``"slots"``, ``"summands"`` and
  ``"max_summands"``; ``"ciphertexts"`` holds ``ceil(size / slots)`` packed ciphertexts.

The bytes form of an array is ``b"SMPCPHE1"``, the header length as 4 bytes big-endian, the header
(the JSON document without ``"ciphertexts"``, with ``"width"``: bytes per ciphertext), then every
ciphertext as a ``width``-byte big-endian integer.

Loading checks the format name, version, every field's type and range, that the shape matches the
number of ciphertexts, that the key fingerprint is the given key's, and that every ciphertext lies
in [1, n^2) and is coprime with n.
"""

from __future__ import annotations

import json
import re

import gmpy2
from gmpy2 import mpz

from smpc.he import raw
from smpc.he.errors import KeyMismatchError, SerializationError

VERSION = 1
MAGIC = b"SMPCPHE1"
_HEX = re.compile(r"[0-9a-f]+\Z")
_MAX_DIMS = 32


def to_hex(value) -> str:
    """Lowercase hexadecimal of a non-negative integer."""
    return gmpy2.digits(mpz(value), 16)


def dump(format_name: str, fields: dict) -> str:
    """A compact JSON document with the format name and version first."""
    return json.dumps({"format": format_name, "version": VERSION, **fields}, separators=(",", ":"))


def load(text, format_name: str, fields: set[str]) -> dict:
    """Parse a document of ``format_name`` that has exactly ``fields`` besides format and version."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise SerializationError(f"a serialized {format_name} must be UTF-8 JSON text") from None
    if not isinstance(text, str):
        raise TypeError(f"expected JSON text for {format_name}, got {type(text).__name__}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise SerializationError(f"malformed {format_name}: not valid JSON ({error.msg})") from None
    return check_fields(doc, format_name, fields)


def check_fields(doc, format_name: str, fields: set[str]) -> dict:
    """Check the format name, version and the exact set of fields of a parsed document."""
    if not isinstance(doc, dict):
        raise SerializationError(f"malformed {format_name}: expected a JSON object")
    if doc.get("format") != format_name:
        raise SerializationError(f"expected a {format_name} document, got format {str(doc.get('format'))[:64]!r}")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise SerializationError(f"unsupported {format_name} version (this library reads version {VERSION})")
    expected = fields | {"format", "version"}
    missing, extra = expected - doc.keys(), doc.keys() - expected
    if missing or extra:
        raise SerializationError(
            f"malformed {format_name}: missing fields {sorted(missing)}, unknown fields {sorted(extra)[:8]}"
        )
    return doc


def hex_field(doc: dict, name: str, max_bits: int) -> mpz:
    """A HEX field as an integer of at most ``max_bits`` bits."""
    value = doc[name]
    if not isinstance(value, str) or not _HEX.match(value) or len(value) > (max_bits + 3) // 4:
        raise SerializationError(f"field {name!r} must be a lowercase hex integer of at most {max_bits} bits")
    return mpz(value, 16)


def int_field(doc: dict, name: str, low: int, high: int) -> int:
    """An integer field in [low, high]."""
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SerializationError(f"field {name!r} must be an integer in [{low}, {high}]")
    return value


def bool_field(doc: dict, name: str) -> bool:
    value = doc[name]
    if not isinstance(value, bool):
        raise SerializationError(f"field {name!r} must be true or false")
    return value


def shape_field(doc: dict) -> tuple[int, ...]:
    shape = doc["shape"]
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS:
        raise SerializationError(f"field 'shape' must be a list of at most {_MAX_DIMS} dimensions")
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise SerializationError("field 'shape' must hold non-negative integers")
    return tuple(shape)


def check_key(doc: dict, public_key) -> None:
    """The document's key fingerprint must be ``public_key``'s."""
    key = doc["key"]
    if not isinstance(key, str):
        raise SerializationError("field 'key' must be a key fingerprint string")
    if key != public_key.fingerprint:
        raise KeyMismatchError(
            f"the ciphertexts were made under key {key[:32]!r}, not under the given key {public_key.fingerprint!r}"
        )


def array_json(format_name: str, public_key, fields: dict, ciphertexts) -> str:
    """An array document: ``fields`` (shape and metadata), the key fingerprint and the hex ciphertexts."""
    body = {"key": public_key.fingerprint, **fields, "ciphertexts": [to_hex(c) for c in ciphertexts]}
    return dump(format_name, body)


def load_array_json(text, format_name: str, fields: set[str], public_key) -> tuple[dict, list[mpz]]:
    """Parse and validate an array document; the ciphertexts come back checked (range, coprimality)."""
    doc = load(text, format_name, fields | {"key", "ciphertexts"})
    check_key(doc, public_key)
    items = doc["ciphertexts"]
    if not isinstance(items, list):
        raise SerializationError("field 'ciphertexts' must be a list of hex integers")
    limit = public_key.nsquare.bit_length()
    values = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _HEX.match(item) or len(item) > (limit + 3) // 4:
            raise SerializationError(f"ciphertext at index {index} is not a hex integer below n^2")
        values.append(mpz(item, 16))
    return doc, raw.validate(public_key, values)


def array_bytes(format_name: str, public_key, fields: dict, ciphertexts) -> bytes:
    """The bytes form: magic, header length, JSON header, fixed-width big-endian ciphertexts."""
    width = (public_key.nsquare.bit_length() + 7) // 8
    header = dump(format_name, {"key": public_key.fingerprint, **fields, "width": width}).encode("utf-8")
    payload = b"".join(int(c).to_bytes(width, "big") for c in ciphertexts)
    return MAGIC + len(header).to_bytes(4, "big") + header + payload


def load_array_bytes(data, format_name: str, fields: set[str], public_key) -> tuple[dict, list[mpz]]:
    """Parse and validate the bytes form; returns the header and the checked ciphertexts."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes for {format_name}, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise SerializationError(f"not a serialized {format_name}: bad magic or truncated header")
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    if len(data) < start + length:
        raise SerializationError(f"malformed {format_name}: truncated header")
    doc = load(data[start : start + length], format_name, fields | {"key", "width"})
    check_key(doc, public_key)
    width = (public_key.nsquare.bit_length() + 7) // 8
    if doc["width"] != width or isinstance(doc["width"], bool):
        raise SerializationError(f"field 'width' must be {width} for this key")
    payload = data[start + length :]
    if len(payload) % width:
        raise SerializationError(f"malformed {format_name}: payload is not a whole number of ciphertexts")
    values = [mpz(int.from_bytes(payload[i : i + width], "big")) for i in range(0, len(payload), width)]
    return doc, raw.validate(public_key, values)


def check_count(count: int, expected: int, format_name: str) -> None:
    """The number of ciphertexts must match what the shape (and packing) implies."""
    if count != expected:
        raise SerializationError(f"malformed {format_name}: {count} ciphertexts where the shape needs {expected}")

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
in [1, n^2) and is coprime with n. Before the JSON parser runs, the raw text is bounded: its length
(key documents and byte headers), its brackets (every format is one object holding flat lists, so
at most :data:`MAX_DEPTH` levels and :data:`MAX_BRACKETS` brackets) and every integer literal
(:data:`MAX_INT_DIGITS` digits). Fractions, exponents, NaN and Infinity are refused, and so is a
field given twice. Whatever is wrong, loading raises a :class:`~smpc.he.errors.PaillierError`
(a wrong Python type: :class:`~smpc.he.errors.InputTypeError`, also a ``TypeError``).
"""

from __future__ import annotations

import json
import re

import gmpy2
from gmpy2 import mpz

from smpc.he import raw
from smpc.he.errors import InputTypeError, KeyMismatchError, SerializationError

VERSION = 1
MAGIC = b"SMPCPHE1"
_HEX = re.compile(r"[0-9a-f]+\Z")
_BRACKETS = re.compile(r"[\[\]{}]")
_MAX_DIMS = 32
#: every format is one object whose fields are scalars or flat lists
MAX_DEPTH = 2
#: a document has at most 6 brackets ({ } and two lists); anything far beyond is refused unparsed
MAX_BRACKETS = 16
#: integer fields are below 2^64, so their literals have at most 20 digits
MAX_INT_DIGITS = 20
#: a key document (n, p and q of an 8192-bit key in hex) is below 5 KiB; so is a bytes header
MAX_KEY_CHARS = 1 << 16
MAX_HEADER_CHARS = 1 << 16
#: the most elements an array (or a dimension of its shape) may claim
MAX_ELEMENTS = 1 << 32


def to_hex(value) -> str:
    """Lowercase hexadecimal of a non-negative integer."""
    return gmpy2.digits(mpz(value), 16)


def dump(format_name: str, fields: dict) -> str:
    """A compact JSON document with the format name and version first."""
    return json.dumps({"format": format_name, "version": VERSION, **fields}, separators=(",", ":"))


def load(text, format_name: str, fields: set[str], *, max_chars: int | None = None) -> dict:
    """Parse a document of ``format_name`` that has exactly ``fields`` besides format and version.

    The raw text is checked before parsing (``max_chars``, brackets and nesting); integer literals
    are bounded while parsing. Every failure is a :class:`SerializationError`.
    """
    text = _as_text(text, format_name)
    if max_chars is not None and len(text) > max_chars:
        raise SerializationError(f"malformed {format_name}: {len(text)} characters, more than the "
                                 f"{max_chars} such a document can have")
    _check_brackets(text, format_name)
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_float=_refuse_fraction,
                         parse_constant=_refuse_constant, object_pairs_hook=_unique_fields)
    except json.JSONDecodeError as error:
        raise SerializationError(f"malformed {format_name}: not valid JSON ({error.msg})") from None
    except _Refused as error:
        raise SerializationError(f"malformed {format_name}: {error}") from None
    return check_fields(doc, format_name, fields)


class _Refused(Exception):
    """Raised by the parser's hooks; :func:`load` turns it into a SerializationError naming the format."""


def _as_text(text, format_name: str) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise SerializationError(f"a serialized {format_name} must be UTF-8 JSON text") from None
    if not isinstance(text, str):
        raise InputTypeError(f"expected JSON text for {format_name}, got {type(text).__name__}")
    return text


def _check_brackets(text: str, format_name: str) -> None:
    """Refuse, before parsing, what nests deeper than :data:`MAX_DEPTH` (json's parser would recurse)."""
    count = sum(text.count(bracket) for bracket in "[]{}")
    if count > MAX_BRACKETS:
        raise SerializationError(f"malformed {format_name}: {count} brackets, where the format has at most "
                                 f"{MAX_BRACKETS} (it is one object holding flat lists)")
    depth = 0
    for bracket in _BRACKETS.findall(text):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise SerializationError(f"malformed {format_name}: nested deeper than {MAX_DEPTH} levels "
                                     "(the format is one object holding flat lists)")


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_INT_DIGITS + 1 or len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer literal of {len(literal)} characters (integer fields have at most "
                       f"{MAX_INT_DIGITS} digits; big numbers are hex strings)")
    return int(literal)


def _refuse_fraction(literal: str):
    raise _Refused(f"a number with a fraction or an exponent ({literal[:24]!r}); every number in the format "
                   "is an integer")


def _refuse_constant(name: str):
    raise _Refused(f"{name} is not a number the format uses")


def _unique_fields(pairs: list) -> dict:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen, twice = set(), []
        for name, _ in pairs:
            if name in seen:
                twice.append(name)
            seen.add(name)
        raise _Refused(f"field {_short(twice[0])} is given more than once")
    return doc


def _short(value) -> str:
    """A value for an error message: short strings quoted, anything else by its type only."""
    if isinstance(value, str):
        return repr(value[:48]) + ("..." if len(value) > 48 else "")
    return "none" if value is None else f"a {type(value).__name__}"


def check_fields(doc, format_name: str, fields: set[str]) -> dict:
    """Check the format name, version and the exact set of fields of a parsed document."""
    if not isinstance(doc, dict):
        raise SerializationError(f"malformed {format_name}: expected a JSON object, got {_short(doc)}")
    if doc.get("format") != format_name:
        raise SerializationError(f"expected a {format_name} document, got format {_short(doc.get('format'))}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        shown = version if isinstance(version, int) and not isinstance(version, bool) else _short(version)
        raise SerializationError(f"unsupported {format_name} version {shown} (this library reads version {VERSION})")
    expected = fields | {"format", "version"}
    missing, extra = expected - doc.keys(), doc.keys() - expected
    if missing or extra:
        unknown = [_short(name) for name in sorted(extra)[:8]]
        raise SerializationError(
            f"malformed {format_name}: missing fields {sorted(missing)}, unknown fields [{', '.join(unknown)}]"
        )
    return doc


def hex_field(doc: dict, name: str, max_bits: int) -> mpz:
    """A HEX field as an integer of at most ``max_bits`` bits."""
    value = doc[name]
    if not isinstance(value, str) or len(value) > (max_bits + 3) // 4 or not _HEX.match(value):
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
    """The ``shape`` field: at most 32 dimensions, each and the element count at most :data:`MAX_ELEMENTS`."""
    shape = doc["shape"]
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS:
        raise SerializationError(f"field 'shape' must be a list of at most {_MAX_DIMS} dimensions")
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= MAX_ELEMENTS:
            raise SerializationError(f"field 'shape' must hold integers in [0, {MAX_ELEMENTS}]")
    nonzero = 1
    for d in shape:
        nonzero *= max(d, 1)
        if nonzero > MAX_ELEMENTS:
            raise SerializationError(f"field 'shape' claims more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def element_count(shape) -> int:
    """The number of elements of ``shape``, in Python integers (never wraps around as int64 does)."""
    count = 1
    for d in shape:
        count *= int(d)
    return count


def check_key(doc: dict, public_key) -> None:
    """The document's key fingerprint must be ``public_key``'s."""
    key = doc["key"]
    if not isinstance(key, str):
        raise SerializationError("field 'key' must be a key fingerprint string")
    if key != public_key.fingerprint:
        raise KeyMismatchError(
            f"the ciphertexts were made under key {_short(key[:32])}, not under the given key "
            f"{public_key.fingerprint!r}"
        )


def array_json(format_name: str, public_key, fields: dict, ciphertexts) -> str:
    """An array document: ``fields`` (shape and metadata), the key fingerprint and the hex ciphertexts."""
    body = {"key": public_key.fingerprint, **fields, "ciphertexts": [to_hex(c) for c in ciphertexts]}
    return dump(format_name, body)


def load_array_json(text, format_name: str, fields: set[str], public_key) -> tuple[dict, list[mpz]]:
    """Parse and validate an array document; the ciphertexts come back checked (range, coprimality).

    ``public_key`` is a checked key (:func:`smpc.he.paillier_keys.check_public_key`)."""
    doc = load(text, format_name, fields | {"key", "ciphertexts"})
    check_key(doc, public_key)
    items = doc["ciphertexts"]
    if not isinstance(items, list):
        raise SerializationError("field 'ciphertexts' must be a list of hex integers")
    limit = public_key.nsquare.bit_length()
    values = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or len(item) > (limit + 3) // 4 or not _HEX.match(item):
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
    """Parse and validate the bytes form; returns the header and the checked ciphertexts.

    ``public_key`` is a checked key (:func:`smpc.he.paillier_keys.check_public_key`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputTypeError(f"expected bytes for {format_name}, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise SerializationError(f"not a serialized {format_name}: bad magic or truncated header")
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    if length > MAX_HEADER_CHARS:
        raise SerializationError(f"malformed {format_name}: a header of {length} bytes (at most {MAX_HEADER_CHARS})")
    if len(data) < start + length:
        raise SerializationError(f"malformed {format_name}: truncated header")
    doc = load(data[start : start + length], format_name, fields | {"key", "width"}, max_chars=MAX_HEADER_CHARS)
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

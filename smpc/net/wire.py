"""The wire format: a small validated header followed by raw array bytes (never pickle).

Header (network byte order)::

    magic "SMPC" | version u8 | kind u8 | dtype u8 | ndim u8 | depth u32 | payload u64 | shape u64 * ndim

``depth`` carries the sender's round counter (see :mod:`smpc.net.stats`). The receiver
checks the magic, version, kind, dtype (allow-list), ndim, the shape's element count
against the payload length, and the payload against a size bound, before it reads the
payload; anything else is a :class:`~smpc.exceptions.WireFormatError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

from smpc.exceptions import WireFormatError

MAGIC = b"SMPC"
VERSION = 1
MAX_NDIM = 16
DEFAULT_MAX_PAYLOAD = 1 << 32  # 4 GiB
_FIXED = struct.Struct("!4sBBBBIQ")
FIXED_HEADER_BYTES = _FIXED.size


def frame_bytes(shape: tuple[int, ...], itemsize: int = 8) -> int:
    """Bytes on the wire of one DATA frame carrying an array of ``shape`` (8-byte elements by default)."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return FIXED_HEADER_BYTES + 8 * len(shape) + itemsize * count


class Kind(enum.IntEnum):
    """What a frame means."""

    DATA = 1  # an array for the protocol
    ABORT = 2  # the sender failed; payload is the (ASCII) exception type name
    HELLO = 3  # connection set-up: payload identifies the sender (see smpc.net.handshake)
    BYE = 4  # the sender finished normally and sends nothing more
    ACCEPT = 5  # connection set-up: the answer to a valid HELLO
    REJECT = 6  # connection set-up: the HELLO was refused; payload is the (ASCII) reason


_DTYPES = {
    1: np.dtype(np.uint64),
    2: np.dtype(np.int64),
    3: np.dtype(np.float64),
    4: np.dtype(np.uint8),
    5: np.dtype(np.bool_),
    6: np.dtype(np.uint32),
    7: np.dtype(np.int32),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}


@dataclass(frozen=True)
class Header:
    """A validated frame header."""

    kind: Kind
    dtype: np.dtype
    shape: tuple[int, ...]
    depth: int
    payload_bytes: int

    @property
    def extra_bytes(self) -> int:
        """Length of the shape part that follows the fixed part."""
        return 8 * len(self.shape)


def encode_frame(kind: Kind, array: np.ndarray | None = None, depth: int = 0,
                 copy: bool = True) -> tuple[bytes, memoryview]:
    """Serialise ``array`` (or nothing) as one frame: ``(header, payload)``.

    The payload is a private C-order copy of the array's bytes, so the caller may go on
    mutating its array; send the header and then the payload. ``copy=False``: the caller
    hands a C-contiguous array over and never touches it again, so its bytes travel as
    they are (a non-contiguous one is still copied).
    """
    arr = np.zeros(0, np.uint8) if array is None else np.asarray(array)
    code = _CODES.get(arr.dtype)
    if code is None:
        raise TypeError(f"dtype {arr.dtype} cannot be sent; allowed: {sorted(map(str, _CODES))}")
    if arr.ndim > MAX_NDIM:
        raise ValueError(f"arrays with more than {MAX_NDIM} dimensions cannot be sent")
    fixed = _FIXED.pack(MAGIC, VERSION, int(kind), code, arr.ndim, depth, arr.nbytes)
    shape = struct.pack(f"!{arr.ndim}Q", *arr.shape)
    payload = np.array(arr, order="C", copy=copy or None).reshape(-1).view(np.uint8)
    return fixed + shape, memoryview(payload)


def decode_fixed_header(data: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[int, int, int, int, int]:
    """Check the fixed part; return ``(kind, dtype code, ndim, depth, payload bytes)``."""
    if len(data) != FIXED_HEADER_BYTES:
        raise WireFormatError(f"truncated header ({len(data)} of {FIXED_HEADER_BYTES} bytes)")
    magic, version, kind, code, ndim, depth, payload = _FIXED.unpack(data)
    if magic != MAGIC:
        raise WireFormatError("bad magic: not an smpc frame")
    if version != VERSION:
        raise WireFormatError(f"unsupported wire version {version} (expected {VERSION})")
    if kind not in Kind._value2member_map_:
        raise WireFormatError(f"unknown frame kind {kind}")
    if code not in _DTYPES:
        raise WireFormatError(f"dtype code {code} is not on the allow-list")
    if ndim > MAX_NDIM:
        raise WireFormatError(f"ndim {ndim} exceeds the limit of {MAX_NDIM}")
    if payload > max_payload:
        raise WireFormatError(f"payload of {payload} bytes exceeds the limit of {max_payload}")
    return kind, code, ndim, depth, payload


def decode_header(fixed: bytes, shape_bytes: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Header:
    """Validate a whole header (fixed part and shape) and return it."""
    kind, code, ndim, depth, payload = decode_fixed_header(fixed, max_payload)
    if len(shape_bytes) != 8 * ndim:
        raise WireFormatError("truncated shape in header")
    shape = struct.unpack(f"!{ndim}Q", shape_bytes)
    dtype = _DTYPES[code]
    count = 1
    for dim in shape:
        if dim > max_payload:
            raise WireFormatError(f"dimension {dim} exceeds the limit of {max_payload}")
        count *= dim
        if count * dtype.itemsize > max_payload:
            raise WireFormatError("shape describes more data than the payload limit")
    if count * dtype.itemsize != payload:
        raise WireFormatError(
            f"shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, header says {payload}"
        )
    return Header(Kind(kind), dtype, tuple(int(d) for d in shape), depth, payload)


def decode_payload(header: Header, payload: bytes | bytearray | memoryview) -> np.ndarray:
    """The array a validated header and its payload describe (a writable copy)."""
    if len(payload) != header.payload_bytes:
        raise WireFormatError(f"payload has {len(payload)} bytes, header says {header.payload_bytes}")
    try:
        arr = np.frombuffer(payload, dtype=header.dtype).reshape(header.shape)
    except ValueError as exc:
        raise WireFormatError(f"payload does not fit shape {header.shape}: {exc}") from None
    return arr if arr.flags.writeable else arr.copy()


def decode_frame(header_bytes: bytes, payload, max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[Header, np.ndarray]:
    """Decode a frame held in memory as its header bytes and its payload."""
    fixed = header_bytes[:FIXED_HEADER_BYTES]
    header = decode_header(fixed, header_bytes[FIXED_HEADER_BYTES:], max_payload)
    return header, decode_payload(header, payload)

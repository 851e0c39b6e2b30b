import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smpc.exceptions import WireFormatError
from smpc.net import wire

DTYPES = [np.uint64, np.int64, np.float64, np.uint8, np.bool_, np.uint32, np.int32]


@given(st.sampled_from(DTYPES).flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0))),
       st.integers(0, 2**32 - 1))
def test_round_trip(array, depth):
    header, payload = wire.encode_frame(wire.Kind.DATA, array, depth)
    decoded_header, decoded = wire.decode_frame(header, payload)
    assert decoded_header.depth == depth and decoded_header.kind == wire.Kind.DATA
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    assert np.array_equal(decoded, array, equal_nan=array.dtype.kind == "f")


def test_payload_is_a_private_copy():
    array = np.arange(4, dtype=np.uint64)
    header, payload = wire.encode_frame(wire.Kind.DATA, array)
    array[0] = 99
    assert wire.decode_frame(header, payload)[1][0] == 0


def test_unsupported_dtype_is_refused_at_send():
    with pytest.raises(TypeError, match="cannot be sent"):
        wire.encode_frame(wire.Kind.DATA, np.array(["x"]))
    with pytest.raises(TypeError, match="cannot be sent"):
        wire.encode_frame(wire.Kind.DATA, np.array([object()]))


def _frame(magic=b"SMPC", version=1, kind=1, code=1, ndim=1, depth=0, payload=8, shape=(1,)):
    fixed = struct.pack("!4sBBBBIQ", magic, version, kind, code, ndim, depth, payload)
    return fixed, struct.pack(f"!{len(shape)}Q", *shape)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"magic": b"HTTP"}, "bad magic"),
        ({"version": 9}, "version"),
        ({"kind": 77}, "kind"),
        ({"code": 42}, "allow-list"),
        ({"ndim": 40, "shape": ()}, "ndim"),
        ({"payload": 16}, "needs 8 bytes"),
        ({"payload": 1 << 40, "shape": (1 << 37,)}, "exceeds the limit"),
        ({"shape": (1 << 40,), "payload": 8}, "dimension 1099511627776 exceeds the limit"),
        ({"ndim": 2, "shape": (1 << 20, 1 << 20), "payload": 8}, "more data than"),
        ({"ndim": 2, "shape": (0, 1 << 63), "payload": 0}, "dimension 9223372036854775808 exceeds the limit"),
    ],
)
def test_malformed_headers_are_rejected(fields, message):
    fixed, shape = _frame(**fields)
    with pytest.raises(WireFormatError, match=message):
        wire.decode_header(fixed, shape)


def test_truncated_header_and_payload():
    with pytest.raises(WireFormatError, match="truncated header"):
        wire.decode_fixed_header(b"SMPC")
    fixed, shape = _frame()
    with pytest.raises(WireFormatError, match="truncated shape"):
        wire.decode_header(fixed, shape[:3])
    header = wire.decode_header(fixed, shape)
    with pytest.raises(WireFormatError, match="payload has"):
        wire.decode_payload(header, b"1234")

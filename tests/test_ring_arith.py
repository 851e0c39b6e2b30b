import numpy as np
import pytest

from smpc.ring import arithmetic_shift, signed, to_ring
from smpc.ring.arith import as_ring_operand


def test_to_ring_wraps_negative_integers_and_refuses_floats():
    assert to_ring(np.array([-1, 2], np.int32)).tolist() == [2**64 - 1, 2]
    assert to_ring(np.array([7], np.uint8)).dtype == np.uint64
    with pytest.raises(TypeError, match="integer dtype"):
        to_ring(np.array([1.0]))


def test_signed_view_and_arithmetic_shift():
    ring = to_ring(np.array([-(2**40), 2**40, -1, 5], np.int64))
    assert signed(ring).tolist() == [-(2**40), 2**40, -1, 5]
    assert signed(arithmetic_shift(ring, 4)).tolist() == [-(2**36), 2**36, -1, 0]


def test_kernel_operands_are_uint64_or_int64_only():
    x = np.arange(3, dtype=np.int64)
    assert as_ring_operand(x, "x").base is x  # a view, no copy
    assert as_ring_operand(x.astype(">i8"), "x").tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="w must have dtype uint64 or int64, got int32"):
        as_ring_operand(x.astype(np.int32), "w")

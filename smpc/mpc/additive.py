"""N-party additive secret sharing over Z_2^64 with a trusted dealer (semi-honest).

:class:`AdditiveTensor` is the shared-tensor interface for this protocol: numpy-like
arithmetic with public or shared operands, fixed point, reveal. Costs (N parties,
n output elements, online): add/sub 0 rounds; integer ``*``/``@``/conv2d 1 round
(Beaver); fixed-point ``*``/``@``/conv2d 2 rounds (Beaver, then truncation); reveal
1 round. Fixed-point values carry ``frac_bits`` fraction bits; integer tensors carry 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc import dealer as dealer_module
from smpc.mpc.beaver import beaver_product
from smpc.mpc.bilinear import MATMUL, MUL, Bilinear
from smpc.mpc.sharing import open_shares, open_to, share_from
from smpc.mpc.truncation import truncate
from smpc.ring import decode, encode, sum_pool2d, to_ring
from smpc.ring.arith import wrapping


class AdditiveTensor:
    """This party's additive share of a tensor (uint64 ring elements plus a scale).

    ``frac_bits`` is 0 for an integer tensor and the party's ``frac_bits`` for a
    fixed-point one. A shared value refuses ``bool()``: it can never steer an ``if``.
    """

    __array_priority__ = 1000  # numpy defers `ndarray op tensor` to us

    def __init__(self, party, share: np.ndarray, frac_bits: int):
        self.party = party
        self.share = share
        self.frac_bits = frac_bits

    # --- basic attributes -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.share.shape

    @property
    def ndim(self) -> int:
        return self.share.ndim

    @property
    def size(self) -> int:
        return self.share.size

    @property
    def is_fixed_point(self) -> bool:
        return self.frac_bits > 0

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d shared tensor")
        return self.shape[0]

    def __bool__(self):
        raise TypeError("a shared value has no truth value; reveal it first")

    def __repr__(self) -> str:
        kind = "fixed" if self.is_fixed_point else "int"
        return f"AdditiveTensor(shape={self.shape}, {kind}, party={self.party.rank})"

    def _new(self, share: np.ndarray, frac_bits: int | None = None) -> "AdditiveTensor":
        return AdditiveTensor(self.party, share, self.frac_bits if frac_bits is None else frac_bits)

    # --- reveal -------------------------------------------------------------------------------
    def reveal(self, to: int | None = None) -> np.ndarray | None:
        """The plain value at every party (``to=None``) or at party ``to`` only (others: None).

        Fixed-point tensors decode to float64, integer tensors to int64. One round.
        """
        ring = self.reveal_ring(to)
        if ring is None:
            return None
        return decode(ring, self.frac_bits) if self.is_fixed_point else ring.view(np.int64)

    def reveal_ring(self, to: int | None = None) -> np.ndarray | None:
        """The raw ring elements (uint64), to all or to party ``to``."""
        if to is None:
            return open_shares(self.party, [self.share])[0]
        return open_to(self.party, self.share, to)

    # --- operand handling ---------------------------------------------------------------------
    def _coerce(self, other) -> "AdditiveTensor | tuple[np.ndarray, int]":
        """A shared operand as-is, a public one as (ring value, frac bits)."""
        if isinstance(other, AdditiveTensor):
            if other.party is not self.party:
                raise ProtocolError("operands belong to different parties or runs")
            return other
        if hasattr(other, "share") or hasattr(other, "reveal"):
            raise TypeError(f"cannot combine an AdditiveTensor with {type(other).__name__}")
        return public_to_ring(other, self.party.frac_bits)

    @wrapping
    def _aligned(self, share: np.ndarray, frac: int, target: int) -> np.ndarray:
        return share if frac == target else share * np.uint64(1 << (target - frac))

    # --- linear operations (local) -------------------------------------------------------------
    @wrapping
    def __add__(self, other):
        other = self._coerce(other)
        frac = max(self.frac_bits, _frac(other))
        mine = self._aligned(self.share, self.frac_bits, frac)
        if isinstance(other, AdditiveTensor):
            return self._new(mine + self._aligned(other.share, other.frac_bits, frac), frac)
        value = self._aligned(other[0], other[1], frac)
        shape = np.broadcast_shapes(mine.shape, value.shape)
        if self.party.rank == 0:
            return self._new(mine + value, frac)
        return self._new(np.broadcast_to(mine, shape).copy(), frac)

    __radd__ = __add__

    @wrapping
    def __neg__(self):
        return self._new(np.uint64(0) - self.share)

    def __sub__(self, other):
        return self + (-other if isinstance(other, AdditiveTensor) else _negate_public(other))

    def __rsub__(self, other):
        return (-self) + other

    # --- multiplication ---------------------------------------------------------------------------
    def __mul__(self, other):
        return self._bilinear(other, Bilinear(MUL), reverse=False)

    def __rmul__(self, other):
        return self._bilinear(other, Bilinear(MUL), reverse=True)

    def __matmul__(self, other):
        return self._bilinear(other, Bilinear(MATMUL), reverse=False)

    def __rmatmul__(self, other):
        return self._bilinear(other, Bilinear(MATMUL), reverse=True)

    def matmul(self, other):
        """Matrix product (numpy semantics: 1-D, batched, broadcast)."""
        return self @ other

    def conv2d(self, weight, stride=1, padding=0, dilation=1, groups=1):
        """2-D convolution of this NCHW tensor with an OIHW ``weight`` (shared or public)."""
        return self._bilinear(weight, Bilinear.conv2d(stride, padding, dilation, groups), reverse=False)

    @wrapping
    def _bilinear(self, other, op: Bilinear, reverse: bool):
        other = self._coerce(other)
        if isinstance(other, AdditiveTensor):
            left, right = (other, self) if reverse else (self, other)
            shape = op.output_shape(left.shape, right.shape)  # validate before asking the dealer
            frac = left.frac_bits + right.frac_bits
            excess = frac - self.party.frac_bits
            # ask for the truncation pair first: the dealer makes it during the Beaver round
            pair = self.party.dealer.trunc_pair(shape, excess) if excess > 0 else None
            product = beaver_product(self.party, left.share, right.share, op)
            if pair is not None:
                return self._new(truncate(self.party, product, excess, pair), self.party.frac_bits)
            return self._new(product, frac)
        else:
            value, value_frac = other
            left, right = (value, self.share) if reverse else (self.share, value)
            product = op.apply(left, right)
            frac = self.frac_bits + value_frac
        return self._rescaled(product, frac)

    def _rescaled(self, share: np.ndarray, frac: int) -> "AdditiveTensor":
        """Truncate a product carrying more than ``party.frac_bits`` fraction bits."""
        excess = frac - self.party.frac_bits
        if excess > 0:
            return self._new(truncate(self.party, share, excess), self.party.frac_bits)
        return self._new(share, frac)

    def truncate(self, bits: int) -> "AdditiveTensor":
        """Divide the underlying ring value by 2^bits (error < 1 unit; one round)."""
        return self._new(truncate(self.party, self.share, bits))

    def __truediv__(self, other):
        """Division by a public value: multiply by 2^s / d rounded, then truncate by s.

        ``s = frac_bits + ceil(log2 max|d|)`` keeps frac_bits significant bits in the
        reciprocal, so the error is below one unit plus |x / d| * 2^-(frac_bits+1), for
        |x| < 2^(61 - 2 * frac_bits) (2^29 with 16 fraction bits). One round.
        """
        if isinstance(other, AdditiveTensor):
            raise TypeError("division by a shared value is not available in this release")
        divisor = np.asarray(other, dtype=np.float64)
        if np.any(divisor == 0) or not np.all(np.isfinite(divisor)):
            raise ZeroDivisionError("division of a shared tensor by zero or a non-finite value")
        return self._divide_public(divisor)

    @wrapping
    def _divide_public(self, divisor: np.ndarray) -> "AdditiveTensor":
        target = self.party.frac_bits
        extra = max(0, int(np.ceil(np.log2(np.max(np.abs(divisor))))))
        scale_bits = target + extra
        reciprocal = np.rint(float(2**scale_bits) / divisor).astype(np.int64).view(np.uint64)
        product = self.share * reciprocal
        return self._new(truncate(self.party, product, self.frac_bits + scale_bits - target), target)

    # --- reductions and shape ------------------------------------------------------------------
    @wrapping
    def sum(self, axis=None, keepdims: bool = False) -> "AdditiveTensor":
        """Sum over ``axis`` (local, exact in the ring)."""
        return self._new(np.sum(self.share, axis=axis, keepdims=keepdims, dtype=np.uint64))

    def mean(self, axis=None, keepdims: bool = False) -> "AdditiveTensor":
        """Mean over ``axis``: a local sum, then division by the count (one round)."""
        count = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        if count == 0:
            raise ValueError("mean of an empty shared tensor")
        return self.sum(axis=axis, keepdims=keepdims) / count

    def reshape(self, *shape) -> "AdditiveTensor":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._new(self.share.reshape(shape))

    def flatten(self) -> "AdditiveTensor":
        return self._new(self.share.reshape(-1))

    def transpose(self, *axes) -> "AdditiveTensor":
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return self._new(np.ascontiguousarray(self.share.transpose(*axes) if axes else self.share.T))

    @property
    def T(self) -> "AdditiveTensor":
        return self.transpose()

    def __getitem__(self, index) -> "AdditiveTensor":
        if isinstance(index, AdditiveTensor):
            raise TypeError("indexing with a shared index is not supported")
        return self._new(np.array(self.share[index], dtype=np.uint64, copy=True))

    @wrapping
    def __setitem__(self, index, value) -> None:
        if isinstance(value, AdditiveTensor):
            if value.frac_bits != self.frac_bits:
                raise ValueError(
                    f"cannot assign a tensor with frac_bits={value.frac_bits} into one with {self.frac_bits}"
                )
            self.share[index] = value.share
            return
        ring, frac = public_to_ring(value, self.party.frac_bits)
        if frac > self.frac_bits:
            raise ValueError("cannot assign fixed-point values into an integer shared tensor")
        ring = self._aligned(ring, frac, self.frac_bits)
        self.share[index] = ring if self.party.rank == 0 else np.uint64(0)

    @wrapping
    def sum_pool2d(self, kernel_size, stride=None, padding=0) -> "AdditiveTensor":
        """Window sums over an NCHW tensor (local, exact)."""
        return self._new(sum_pool2d(self.share, kernel_size, stride, padding))

    def avg_pool2d(self, kernel_size, stride=None, padding=0) -> "AdditiveTensor":
        """Window averages: window sums divided by kh*kw (one round, see ``__truediv__``)."""
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
        return self.sum_pool2d(kernel_size, stride, padding) / (kh * kw)


@wrapping
def public_to_ring(value, frac_bits: int) -> tuple[np.ndarray, int]:
    """A public operand as ring elements: integers exactly (scale 0), floats in fixed point."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return to_ring(arr), 0
    if arr.dtype.kind == "f":
        return encode(arr, frac_bits), frac_bits
    raise TypeError(f"cannot use a public operand of dtype {arr.dtype}")


def _frac(operand) -> int:
    return operand.frac_bits if isinstance(operand, AdditiveTensor) else operand[1]


def _negate_public(value):
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        return (np.uint64(0) - arr).view(np.int64)
    return -arr


def concatenate(tensors: Sequence[AdditiveTensor], axis: int = 0) -> AdditiveTensor:
    """Join shared tensors along an existing axis (local)."""
    first, frac = _common(tensors)
    shares = [t._aligned(t.share, t.frac_bits, frac) for t in tensors]
    return AdditiveTensor(first.party, np.concatenate(shares, axis=axis), frac)


def stack(tensors: Sequence[AdditiveTensor], axis: int = 0) -> AdditiveTensor:
    """Join shared tensors along a new axis (local)."""
    first, frac = _common(tensors)
    shares = [t._aligned(t.share, t.frac_bits, frac) for t in tensors]
    return AdditiveTensor(first.party, np.stack(shares, axis=axis), frac)


def _common(tensors: Sequence[AdditiveTensor]) -> tuple[AdditiveTensor, int]:
    if not tensors:
        raise ValueError("need at least one tensor")
    if not all(isinstance(t, AdditiveTensor) for t in tensors):
        raise TypeError("concatenate/stack take shared tensors only")
    first = tensors[0]
    if any(t.party is not first.party for t in tensors):
        raise ProtocolError("tensors belong to different parties or runs")
    return first, max(t.frac_bits for t in tensors)


class AdditiveProtocol:
    """``protocol="additive"``: N >= 2 parties plus a trusted dealer endpoint."""

    name = "additive"
    has_dealer = True
    min_parties = 2

    def attach(self, party) -> None:
        """Give ``party`` this protocol and a dealer client."""
        party.protocol = self
        party.dealer = dealer_module.TrustedDealerClient(party)

    def serve_dealer(self, dealer_party) -> dict:
        """Run the trusted dealer until the parties finish."""
        return dealer_module.serve(dealer_party)

    def share(self, party, x, src: int) -> AdditiveTensor:
        """Secret-share ``x`` held by party ``src`` (the others pass None)."""
        if not isinstance(src, (int, np.integer)) or not 0 <= src < party.world_size:
            raise ValueError(f"src must be a party rank in 0..{party.world_size - 1}, got {src!r}")
        if party.rank == src:
            if x is None:
                raise ValueError(f"party {src} is the source of share() and must pass data, not None")
            if isinstance(x, AdditiveTensor):
                raise TypeError("x is already shared")
            ring, frac = public_to_ring(x, party.frac_bits)
            share, meta = share_from(party, ring, src, [frac, ring.ndim, *ring.shape])
        else:
            if x is not None:
                raise ValueError(
                    f"party {party.rank} passed data to share(src={src}); only the source passes data, "
                    "the others pass None"
                )
            share, meta = share_from(party, None, src, [])
        frac = meta[0]
        if frac not in (0, party.frac_bits):
            raise ProtocolError(f"party {src} shared a value with frac_bits={frac}, expected 0 or {party.frac_bits}")
        return AdditiveTensor(party, share, frac)

    def from_public(self, party, value) -> AdditiveTensor:
        """A public value as a (trivially) shared tensor: party 0 holds it, others zero."""
        ring, frac = public_to_ring(value, party.frac_bits)
        share = ring.copy() if party.rank == 0 else np.zeros_like(ring)
        return AdditiveTensor(party, share, frac)

"""Fault injection for tests and teaching: a model of a cheating party.

``tamper(x, delta)`` is what a party that deviates from the protocol could do to its own share; under
``protocol="spdz2k"`` the MAC check catches it (:class:`smpc.MacCheckError`), under the semi-honest protocols the
result is silently shifted. :class:`TamperedChannel` alters or drops one message on the wire.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.tensor_core import SharedTensorCore, public_to_ring


def tamper(tensor: SharedTensorCore, delta, *, raw: bool = False) -> SharedTensorCore:
    """This party's ``tensor`` with ``delta`` (a public value at the tensor's scale: a float for fixed point, an
    integer for an integer tensor; broadcast to its shape) added to its value share, its MAC share (if the
    protocol has MACs) left alone. ``raw``: ``delta`` is ring elements (uint64) added as they are, whatever the
    scale (to change one chosen bit)."""
    offset = getattr(tensor, "_offset_own_share", None)
    if offset is None:
        raise TypeError(f"tamper() takes a shared tensor, got {type(tensor).__name__}")
    if raw:
        ring = np.asarray(delta)
        if ring.dtype != np.uint64:
            raise TypeError(f"tamper(raw=True) takes uint64 ring elements, got {ring.dtype}")
        np.broadcast_shapes(ring.shape, tensor.shape)
        return offset(ring)
    ring, frac = public_to_ring(delta, tensor.frac_bits)
    if frac and not tensor.frac_bits:
        raise ValueError("tamper(): a fractional delta for an integer tensor")
    if frac < tensor.frac_bits:
        ring = ring * np.uint64(1 << (tensor.frac_bits - frac))
    np.broadcast_shapes(ring.shape, tensor.shape)  # ValueError for a delta that does not fit
    return offset(ring)


def tamper_message(party, peer: int, index: int, delta: int = 1, drop: bool = False) -> None:
    """Alter or drop one message on the wire: the ``index``-th array (0-based) that ``party`` sends to ``peer``
    from now on gets ``delta`` added to its first 64-bit word (wrapping), or is not sent at all with ``drop``.
    A model of a party (or a network) that changes a message; later messages pass unchanged."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    if not 0 <= peer <= party.world_size or peer == party.rank:
        raise ValueError(f"peer must be another endpoint's rank, got {peer!r}")
    count = 0

    def hook(to: int, array: np.ndarray) -> np.ndarray | None:
        nonlocal count
        if to != peer:
            return array
        count += 1
        if count - 1 != index:
            return array
        if drop:
            return None
        changed = np.array(array, copy=True)
        if not changed.nbytes:
            return changed
        words = changed.reshape(-1).view(np.uint8)[: 8 * (changed.nbytes // 8)].view(np.uint64)
        if words.size:
            with np.errstate(over="ignore"):
                words[0] += np.uint64(delta % (1 << 64))
        else:
            changed.reshape(-1).view(np.uint8)[0] ^= np.uint8(1)
        return changed

    party.set_send_hook(hook)

"""The trusted dealer: Beaver triples and truncation pairs, seed-compressed, served only when all parties agree.

The dealer is its own endpoint, never a computing party. It shares a PRG key with each
party (agreed at start-up). For every request, parties ``0..N-2`` expand their whole
share from that PRG; the last party expands what it can and gets one correction per
output from the dealer (the SPDZ-with-dealer offline phase, as in PySyft's crypto
provider and CrypTen's TTP, with the seed trick of e.g. Damgard et al., "New primitives
for actively-secure MPC over rings", S&P 2019, section 3).

Every party sends each request's description to the dealer (kind, op and shapes, as a
few int64 values; ``28 + 8 * len`` bytes, offline), and only the last party waits for a
reply. The dealer answers request ``i`` only once every party asked for the same
thing as its ``i``-th request, and otherwise stops the run with a :class:`ProtocolError`
naming who asked for what. So no single party can steer it: had the last party alone
chosen, it could ask for a truncation pair where the program needs a triple, shift
everyone's PRG streams against the dealer's, and read another party's share out of its
correction. Parties send the whole description rather than a hash because it costs
about the same (a hash frame is 60 bytes) and lets the dealer say what each asked for.

The dealer waits for the last party's request as long as the parties compute, then for
the others' with the run's timeout; at the end it reads every party's remaining frames
until it finishes, so an extra request is caught too. All of this is offline traffic.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from smpc.exceptions import PeerError, PeerFinished, PeerTimeoutError, ProtocolError
from smpc.mpc.circuits import sign_bit
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.one_hot import MAX_ONE_HOT_BITS, one_hot_rows
from smpc.ring.arith import wrapping

TRIPLE, TRUNC, BINARY_TRIPLE, DABITS, SIGN, ONE_HOT = 1, 2, 3, 4, 5, 6
MAX_ELEMENTS = 1 << 31
MAX_NDIM = 16
MAX_REQUEST_VALUES = 64


class _Delivery:
    """A correction the dealer will send: received on first use, in request order."""

    def __init__(self, client: "TrustedDealerClient", shape: tuple, split: bool):
        self._client = client
        self.shape = shape
        self.split = split  # deliver (value[0], value[1]) rather than value
        self.value = None

    def get(self):
        while self.value is None:
            self._client._receive_next()
        return self.value


class Triple:
    """One party's shares of a Beaver triple ``c = op(a, b)``; ``c`` may still be in transit."""

    def __init__(self, a: np.ndarray, b: np.ndarray, c: np.ndarray | _Delivery):
        self.a, self.b, self._c = a, b, c

    @property
    def c(self) -> np.ndarray:
        return self._c if isinstance(self._c, np.ndarray) else self._c.get()


class TruncPair:
    """One party's shares for exact truncation: ``r``, its top bit, and ``(r mod 2^63) >> bits``."""

    def __init__(self, r: np.ndarray, rest: tuple[np.ndarray, np.ndarray] | _Delivery):
        self.r, self._rest = r, rest

    @property
    def r_msb(self) -> np.ndarray:
        return self._parts()[0]

    @property
    def r_low_shifted(self) -> np.ndarray:
        return self._parts()[1]

    def _parts(self):
        return self._rest if isinstance(self._rest, tuple) else self._rest.get()


class TrustedDealerClient:
    """The party side of the trusted dealer (the correlated-randomness source interface).

    Every request is announced to the dealer by every party and returns at once: the
    last party's corrections are received when first used, so the dealer computes
    while the parties open their masked values, and a caller may ask for a truncation
    pair ahead of the product that needs it. ``requests`` counts the requests sent.
    """

    def __init__(self, party):
        self.party = party
        self._prg = party.pair_prg(party.dealer_endpoint)
        self._is_last = party.rank == party.world_size - 1
        self._pending: list[_Delivery] = []
        self.requests = 0

    def triple(self, op: Bilinear, shape_x: tuple, shape_y: tuple) -> Triple:
        """This party's shares of a triple with ``c = op(a, b)`` (offline)."""
        shape_z = op.output_shape(shape_x, shape_y)
        with self.party.offline():
            self._ask([TRIPLE, *op.encode(), *_shape_code(shape_x), *_shape_code(shape_y)])
            a = self._prg.random_ring(shape_x)
            b = self._prg.random_ring(shape_y)
            c = self._expect(shape_z, split=False) if self._is_last else self._prg.random_ring(shape_z)
        return Triple(a, b, c)

    def trunc_pair(self, shape: tuple, bits: int) -> TruncPair:
        """This party's shares of a truncation pair for ``bits`` (offline)."""
        shape = tuple(shape)
        with self.party.offline():
            self._ask([TRUNC, bits, *_shape_code(shape)])
            r = self._prg.random_ring(shape)
            if self._is_last:
                rest = self._expect((2, *shape), split=True)
            else:
                rest = (self._prg.random_ring(shape), self._prg.random_ring(shape))
        return TruncPair(r, rest)

    def binary_triple(self, shape: tuple) -> Triple:
        """This party's XOR shares of words a, b and c = a & b (offline)."""
        shape = tuple(shape)
        with self.party.offline():
            self._ask([BINARY_TRIPLE, *_shape_code(shape)])
            a = self._prg.random_ring(shape)
            b = self._prg.random_ring(shape)
            c = self._expect(shape, split=False) if self._is_last else self._prg.random_ring(shape)
        return Triple(a, b, c)

    def dabits(self, shape: tuple):
        """Random bits shared twice: ``(xor_share, additive_share)``, the first 0/1 words (offline)."""
        shape = tuple(shape)
        with self.party.offline():
            self._ask([DABITS, *_shape_code(shape)])
            if self._is_last:
                return self._expect((2, *shape), split=True).get()
            return self._prg.random_bits(shape), self._prg.random_ring(shape)

    def sign_material(self, count: int, with_product: bool = False) -> sign_bit.Material:
        """Randomness for the sign bit of ``count`` elements (see :mod:`smpc.mpc.circuits.sign_bit`; offline).

        ``with_product``: also shares of r * s, so x * msb(x) needs no multiplication.
        """
        fields = sign_bit.layout(count, with_mask=True, with_arith_bit=True, with_product=with_product)
        with self.party.offline():
            self._ask([SIGN, count, int(with_product)])
            if self._is_last:
                delivery = self._expect((sign_bit.correction_size(fields),), split=False)
                return sign_bit.expand(fields, self._prg, delivery.get)
            return sign_bit.expand(fields, self._prg, None)

    def random_one_hot(self, count: int, bits: int) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        """Shares of ``count`` random offsets r (uniform mod 2^bits) and, through a call, of their one-hot rows
        (count, 2^bits) (offline). Every party expands its r from its PRG (the dealer adds them up); the last
        party's rows are a correction of count 2^bits words received at that call, after the opening of x - r."""
        with self.party.offline():
            self._ask([ONE_HOT, count, bits])
            offsets = self._prg.random_ring((count,))
            if self._is_last:
                return offsets, self._expect((count, 1 << bits), split=False).get
            rows = self._prg.random_ring((count, 1 << bits))
            return offsets, lambda: rows

    def _ask(self, values: list[int]) -> None:
        """Tell the dealer what this party needs next (every party does; only the last waits for a reply)."""
        self.requests += 1
        self.party.send(self.party.dealer_endpoint, np.array(values, dtype=np.int64))

    def _expect(self, reply_shape: tuple, split: bool) -> _Delivery:
        delivery = _Delivery(self, reply_shape, split)
        self._pending.append(delivery)
        return delivery

    def _receive_next(self) -> None:
        delivery = self._pending.pop(0)
        party = self.party
        with party.offline():
            # twice the run's timeout: the dealer may first wait up to one timeout for the
            # other parties' requests, and must be the one to name a silent party
            value = party.recv(party.dealer_endpoint, timeout=2 * party.timeout)
        if value.shape != delivery.shape or value.dtype != np.uint64:
            raise PeerError(-1, f"the dealer sent {value.dtype}{list(value.shape)}, "
                                f"expected uint64{list(delivery.shape)}")
        delivery.value = (value[0], value[1]) if delivery.split else value


def serve(dealer) -> dict:
    """The dealer's loop: answer each of the last party's requests once every party made it too.

    Returns a summary (requests served). ``dealer`` is the dealer's :class:`Party`.
    Raises :class:`ProtocolError` when the parties' requests differ, and
    :class:`PeerTimeoutError` naming a party that stays silent past the run's timeout
    after the last party asked.
    """
    last = dealer.world_size - 1
    prgs = [dealer.pair_prg(rank) for rank in range(dealer.world_size)]
    served = 0
    while True:
        try:
            request = dealer.recv(last, timeout=None)  # idle while the parties compute
        except PeerFinished:
            # a party may work on long after the last party's final message (after a
            # reveal to it, say) and the dealer has nothing left to give: wait untimed
            _check_agreement(dealer, served + 1, None, timeout=None)
            return {"requests": served}
        values = _parse_request(request)
        _check_agreement(dealer, served + 1, tuple(values), timeout=dealer.timeout)
        with dealer.offline():
            correction = _correction(prgs, dealer.prg, values)
        dealer.send(last, correction)
        served += 1


def _check_agreement(dealer, number: int, wanted: tuple | None, timeout: float | None) -> None:
    """Receive request ``number`` from every party but the last, who asked for ``wanted``
    (None: it finished), all within one ``timeout`` (None: no limit); raise
    :class:`ProtocolError` naming the parties that differ."""
    last = dealer.world_size - 1
    deadline = None if timeout is None else time.monotonic() + timeout
    asked = {rank: _receive_ask(dealer, rank, number, deadline) for rank in range(last)}
    asked[last] = wanted
    if len(set(asked.values())) > 1:
        raise ProtocolError(_disagreement(number, asked))


def _receive_ask(dealer, rank: int, number: int, deadline: float | None) -> tuple | str | None:
    """Party ``rank``'s next request as a tuple of ints; None if it finished, a description if malformed."""
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        request = dealer.recv(rank, timeout=timeout)
    except PeerFinished:
        return None
    except PeerTimeoutError:
        last = dealer.world_size - 1
        raise PeerTimeoutError(rank, f"no message from party {rank} within {dealer.timeout:g} s of party "
                                     f"{last}'s dealer request {number}, which it must make too") from None
    if request.dtype != np.int64 or request.ndim != 1 or not 1 <= request.size <= MAX_REQUEST_VALUES:
        return f"a malformed request ({request.dtype}{list(request.shape)})"
    return tuple(int(v) for v in request)


def _disagreement(number: int, asked: dict) -> str:
    """'dealer request 3 differs between parties: party 0, party 1 asked for ...; party 2 asked for ...'."""
    groups: dict = {}
    for rank in sorted(asked):
        groups.setdefault(asked[rank], []).append(f"party {rank}")
    parts = [f"{', '.join(ranks)} asked for {_describe(ask)}" for ask, ranks in groups.items()]
    return f"dealer request {number} differs between parties: " + "; ".join(parts)


def _describe(ask: tuple | str | None) -> str:
    """A request in words, from its public description only (kind, op, shapes, bits)."""
    if ask is None:
        return "nothing more (it finished)"
    if isinstance(ask, str):
        return ask
    try:
        return _describe_values(list(ask))
    except (ProtocolError, ValueError):
        return f"a malformed request ({len(ask)} values)"


def _describe_values(values: list[int]) -> str:
    kind, rest = values[0], values[1:]
    if kind == TRIPLE:
        op, rest = Bilinear.decode(rest)
        shape_x, rest = _parse_shape(rest)
        shape_y, rest = _parse_shape(rest)
        _expect_end(rest)
        params = f" {list(op.params)}" if op.params else ""
        return f"triple({op.name}{params}, {shape_x}, {shape_y})"
    if kind == TRUNC and rest:
        shape, end = _parse_shape(rest[1:])
        _expect_end(end)
        return f"truncation pair ({rest[0]} bits, {shape})"
    if kind in (BINARY_TRIPLE, DABITS):
        shape, end = _parse_shape(rest)
        _expect_end(end)
        return f"{'binary triple' if kind == BINARY_TRIPLE else 'dabits'} {shape}"
    if kind == SIGN and len(rest) == 2:
        return f"sign-bit material ({rest[0]} elements{', with product' if rest[1] else ''})"
    if kind == ONE_HOT and len(rest) == 2:
        return f"random one-hot rows ({rest[0]} of 2^{rest[1]})"
    raise ProtocolError("malformed dealer request")


def _correction(prgs, own_prg, values: list[int]) -> np.ndarray:
    """What the last party gets for the (parsed, agreed) request ``values``."""
    kind, rest = values[0], values[1:]
    if kind == TRIPLE:
        return _make_triple(prgs, rest)
    if kind == TRUNC:
        return _make_trunc(prgs, rest)
    if kind == BINARY_TRIPLE:
        return _make_binary_triple(prgs, rest)
    if kind == DABITS:
        return _make_dabits(prgs, own_prg, rest)
    if kind == ONE_HOT:
        return _make_one_hot(prgs, rest)
    return _make_sign(prgs, rest)


@wrapping
def _make_triple(prgs, values: list[int]) -> np.ndarray:
    op, rest = Bilinear.decode(values)
    shape_x, rest = _parse_shape(rest)
    shape_y, rest = _parse_shape(rest)
    _expect_end(rest)
    shape_z = op.output_shape(shape_x, shape_y)
    _check_size(shape_z)
    a = np.zeros(shape_x, np.uint64)
    b = np.zeros(shape_y, np.uint64)
    c_others = np.zeros(shape_z, np.uint64)
    for index, prg in enumerate(prgs):
        a += prg.random_ring(shape_x)
        b += prg.random_ring(shape_y)
        if index < len(prgs) - 1:
            c_others += prg.random_ring(shape_z)
    return op.apply(a, b) - c_others


@wrapping
def _make_trunc(prgs, values: list[int]) -> np.ndarray:
    if len(values) < 2 or not 0 < values[0] < 63:
        raise ProtocolError("malformed truncation request")
    bits = values[0]
    shape, rest = _parse_shape(values[1:])
    _expect_end(rest)
    r = np.zeros(shape, np.uint64)
    others = np.zeros((2, *shape), np.uint64)
    for index, prg in enumerate(prgs):
        r += prg.random_ring(shape)
        if index < len(prgs) - 1:
            others[0] += prg.random_ring(shape)
            others[1] += prg.random_ring(shape)
    low_mask = np.uint64((1 << 63) - 1)
    out = np.empty((2, *shape), np.uint64)
    out[0] = r >> np.uint64(63)
    out[1] = (r & low_mask) >> np.uint64(bits)
    return out - others


def _make_binary_triple(prgs, values: list[int]) -> np.ndarray:
    """XOR-shared words a, b and c = a & b; returns the last party's c."""
    shape, rest = _parse_shape(values)
    _expect_end(rest)
    a = np.zeros(shape, np.uint64)
    b = np.zeros(shape, np.uint64)
    c_others = np.zeros(shape, np.uint64)
    for index, prg in enumerate(prgs):
        a ^= prg.random_ring(shape)
        b ^= prg.random_ring(shape)
        if index < len(prgs) - 1:
            c_others ^= prg.random_ring(shape)
    return (a & b) ^ c_others


@wrapping
def _make_dabits(prgs, own_prg, values: list[int]) -> np.ndarray:
    """Random bits r shared twice, XOR (bit 0 of a word) and additively; the last party's pair."""
    shape, rest = _parse_shape(values)
    _expect_end(rest)
    r = own_prg.random_bits(shape)
    out = np.empty((2, *shape), np.uint64)
    out[0], out[1] = r, r
    for prg in prgs[:-1]:
        out[0] ^= prg.random_bits(shape)
        out[1] -= prg.random_ring(shape)
    return out


def _make_sign(prgs, values: list[int]) -> np.ndarray:
    """The last party's corrections for the sign-bit circuit on ``values[0]`` elements."""
    if len(values) != 2 or values[0] < 0 or values[1] not in (0, 1):
        raise ProtocolError("malformed sign-bit request")
    _check_size((values[0],))
    fields = sign_bit.layout(values[0], with_mask=True, with_arith_bit=True, with_product=bool(values[1]))
    return sign_bit.deal(fields, prgs)


@wrapping
def _make_one_hot(prgs, values: list[int]) -> np.ndarray:
    """The last party's share of the one-hot rows of r = the sum of every party's PRG offsets."""
    if len(values) != 2 or values[0] < 0 or not 0 <= values[1] <= MAX_ONE_HOT_BITS:
        raise ProtocolError("malformed one-hot request")
    count, bits = values
    _check_size((count, 1 << bits))
    offsets = np.zeros(count, np.uint64)
    for prg in prgs:
        offsets += prg.random_ring((count,))
    rows = one_hot_rows(offsets, bits)
    for prg in prgs[:-1]:
        rows -= prg.random_ring((count, 1 << bits))
    return rows


def _parse_request(request: np.ndarray) -> list[int]:
    if request.dtype != np.int64 or request.ndim != 1 or not 2 <= request.size <= MAX_REQUEST_VALUES:
        raise ProtocolError("malformed dealer request")
    values = [int(v) for v in request]
    if values[0] not in (TRIPLE, TRUNC, BINARY_TRIPLE, DABITS, SIGN, ONE_HOT):
        raise ProtocolError(f"unknown dealer request type {values[0]}")
    return values


def _shape_code(shape: tuple) -> list[int]:
    return [len(shape), *shape]


def _parse_shape(values: list[int]) -> tuple[tuple[int, ...], list[int]]:
    if not values or not 0 <= values[0] <= MAX_NDIM or len(values) < 1 + values[0]:
        raise ProtocolError("malformed shape in dealer request")
    ndim = values[0]
    shape = tuple(values[1 : 1 + ndim])
    if any(d < 0 for d in shape):
        raise ProtocolError("negative dimension in dealer request")
    _check_size(shape)
    return shape, values[1 + ndim :]


def _check_size(shape: tuple) -> None:
    count = 1
    for dim in shape:
        count *= dim
    if count > MAX_ELEMENTS:
        raise ProtocolError(f"dealer request for {count} elements exceeds the limit of {MAX_ELEMENTS}")


def _expect_end(rest: list[int]) -> None:
    if rest:
        raise ProtocolError("trailing values in dealer request")

"""The party side of the spdz2k dealer: authenticated shares (a value share and a MAC share, Z_2^128 limbs).

Each request goes to the dealer from every party (the trusted dealer's agreement rule: the dealer answers only what
all parties asked for, :func:`smpc.mpc.correlated.trusted.serve`); parties ``0..N-2`` draw all their shares from
the PRG they share with the dealer, in the order :mod:`.requests` makes them, and the last party's corrections are
received in :meth:`~smpc.mpc.correlated.source.CorrelatedSource.complete`. The first request, made when the
protocol attaches to the party, sets up this party's share of the MAC key; the source keeps it, and with it the
log of opened values that :mod:`.mac_check` verifies against it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from smpc.mpc.bilinear import Bilinear
from smpc.mpc.correlated.source import CorrelatedSource, M
from smpc.mpc.correlated.trusted import receive_correction
from smpc.exceptions import ProtocolError
from smpc.mpc.spdz2k import bit_requests, fss, requests
from smpc.mpc.spdz2k.mac_check import MacChecker
from smpc.mpc.spdz2k.requests import Shares, draw


@dataclass(eq=False)
class AuthTriple:
    """Authenticated Beaver triple shares: c = op(a, b)."""

    a: Shares
    b: Shares
    c: Shares


@dataclass(eq=False)
class AuthTruncPair:
    """Authenticated shares of r (uniform in Z_2^128), of the top bit of r mod 2^64 and of (r mod 2^63) >> bits."""

    r: Shares
    msb: Shares
    low: Shares


@dataclass(eq=False)
class AuthRandom:
    """Authenticated shares of a uniform r, and r itself at the party that owns it (None elsewhere)."""

    r: Shares
    known: np.ndarray | None


@dataclass(eq=False)
class AuthBits:
    """Authenticated shares of masks r (count,) uniform in Z_2^128 and of the 64 bits of each r mod 2^64
    (64, count), bit i in row i."""

    r: Shares
    bits: Shares


class Spdz2kDealerClient(CorrelatedSource):
    """Authenticated triples, truncation pairs and random values from the spdz2k dealer (see the module docstring).

    ``checker`` is this party's :class:`~smpc.mpc.spdz2k.mac_check.MacChecker`, holding its MAC key share.
    """

    name = "dealer='trusted' (spdz2k)"
    provides = frozenset({"triple", "trunc_pair"})
    unsupported_advice = "protocol 'spdz2k' does not run {what} yet"

    def __init__(self, party, statistical_bits: int):
        super().__init__()
        self.party = party
        self._prg = party.pair_prg(party.dealer_endpoint)
        self._is_last = party.rank == party.world_size - 1
        request = requests.KeyRequest(statistical_bits)
        with party.offline():
            self._ask(request)
            share = None if self._is_last else draw(self._prg, ())
        holder = self._issue([share], request, _fill_key)
        self.checker = MacChecker(party, self.complete(holder)[0], statistical_bits)
        bit_request = bit_requests.BitKeyRequest()
        with party.offline():
            self._ask(bit_request)
            share = None if self._is_last else self._prg.random_ring((1,))
        holder = self._issue([share], bit_request, _fill_key)
        beta = self.complete(holder)[0]
        self.bit_checker = MacChecker(party, np.array([beta[0], 0], dtype=np.uint64),
                                      bit_requests.BIT_STATISTICAL_BITS, k_bits=1, label=b"spdz2k bits")

    def triple(self, op: Bilinear, shape_x: tuple, shape_y: tuple) -> AuthTriple:
        """Authenticated shares of a, b and c = op(a, b) (offline); the last party's MACs and c come at
        completion."""
        request = requests.TripleRequest(op, shape_x, shape_y)
        with self.party.offline():
            self._ask(request)
            a = Shares(draw(self._prg, request.shape_x), None)
            b = Shares(draw(self._prg, request.shape_y), None)
            c = Shares(None, None)
            if not self._is_last:
                a.mac, b.mac = draw(self._prg, request.shape_x), draw(self._prg, request.shape_y)
                c.value, c.mac = draw(self._prg, request.shape_z), draw(self._prg, request.shape_z)
        fill = functools.partial(_fill_triple, request)
        return self._issue(AuthTriple(a, b, c), request, fill)

    def trunc_pair(self, shape: tuple, bits: int) -> AuthTruncPair:
        """Authenticated truncation pair shares for ``bits`` (offline); the last party's come at completion."""
        request = requests.TruncRequest(shape, bits)
        with self.party.offline():
            self._ask(request)
            r = Shares(draw(self._prg, request.shape), None)
            fields = [None] * 5 if self._is_last else [draw(self._prg, request.shape) for _ in range(5)]
            pair = AuthTruncPair(r, Shares(None, None), Shares(None, None))
            pair.r.mac, pair.msb.value, pair.msb.mac, pair.low.value, pair.low.mac = fields
        return self._issue(pair, request, _fill_trunc)

    def random(self, shape: tuple, owner: int = -1) -> AuthRandom:
        """Authenticated shares of a uniform r of ``shape`` (offline), known to party ``owner`` (-1: nobody):
        input masks (owner: the input's source), private-output masks (owner: the receiver) and output masks."""
        request = requests.RandomRequest(tuple(shape), owner)
        with self.party.offline():
            self._ask(request)
            known = draw(self._prg, request.shape) if self.party.rank == request.owner else None
            shares = Shares(None, None) if self._is_last else Shares(draw(self._prg, request.shape),
                                                                      draw(self._prg, request.shape))
        return self._issue(AuthRandom(shares, known), request, _fill_random)

    def bits(self, count: int) -> AuthBits:
        """Authenticated masks and their bits for ``count`` comparisons (offline); the last party's MAC shares and
        bit shares come at completion."""
        request = requests.BitsRequest(count)
        with self.party.offline():
            self._ask(request)
            r = Shares(draw(self._prg, (request.count,)), None)
            bits = Shares(None, None)
            if not self._is_last:
                rest = draw(self._prg, request.reply_shape[:-1])
                r.mac, bits.value, bits.mac = rest[0], rest[1:65], rest[65:]
        return self._issue(AuthBits(r, bits), request, _fill_bits)

    # --- the bit domain (smpc.mpc.spdz2k.binary) ------------------------------------------------------------------
    def bit_triple(self, shape: tuple) -> AuthTriple:
        """Bit-domain Beaver triples (uint64 words; c = a b mod 2^64) with MACs under beta."""
        request = bit_requests.BitTripleRequest(tuple(shape))
        with self.party.offline():
            self._ask(request)
            a = Shares(self._prg.random_ring(request.shape), None)
            b = Shares(self._prg.random_ring(request.shape), None)
            c = Shares(None, None)
            if not self._is_last:
                a.mac, b.mac, c.value, c.mac = self._prg.random_ring(request.reply_shape)
        return self._issue(AuthTriple(a, b, c), request, _fill_bit_triple)

    def bit_random(self, shape: tuple) -> Shares:
        """Bit-domain authenticated uniform words (masks for opening bits)."""
        request = bit_requests.BitRandomRequest(tuple(shape))
        with self.party.offline():
            self._ask(request)
            shares = Shares(None, None) if self._is_last else Shares(*self._prg.random_ring(request.reply_shape))
        return self._issue(shares, request, _fill_pair)

    def auth_dabits(self, shape: tuple) -> tuple[Shares, Shares]:
        """Random bits authenticated in both domains: (arithmetic shares (limbs), bit-domain shares (words))."""
        request = bit_requests.DaBitsRequest(tuple(shape))
        arith, bit = Shares(None, None), Shares(None, None)
        with self.party.offline():
            self._ask(request)
            if not self._is_last:
                arith.value, arith.mac = draw(self._prg, (2, *request.shape))
                bit.value, bit.mac = self._prg.random_ring((2, *request.shape))
        fill = functools.partial(_fill_dabits, request.shape)
        return self._issue((arith, bit), request, fill)

    def edabits(self, shape: tuple) -> tuple[Shares, Shares]:
        """A mask r (arithmetic, authenticated) with the 64 bits of r mod 2^64 in the bit domain (planes first)."""
        request = bit_requests.EdaBitsRequest(tuple(shape))
        r, planes = Shares(None, None), Shares(None, None)
        with self.party.offline():
            self._ask(request)
            r.value = draw(self._prg, request.shape)
            if not self._is_last:
                r.mac = draw(self._prg, request.shape)
                planes.value, planes.mac = self._prg.random_ring((2, 64, *request.shape))
        fill = functools.partial(_fill_edabits, request.shape)
        return self._issue((r, planes), request, fill)

    def one_hot(self, count: int, bits: int) -> tuple[Shares, Shares]:
        """Offsets r uniform in Z_2^128 (authenticated) and the authenticated one-hot rows of r mod 2^bits."""
        request = bit_requests.OneHotRequest(count, bits)
        r, rows = Shares(None, None), Shares(None, None)
        with self.party.offline():
            self._ask(request)
            r.value = draw(self._prg, (request.count,))
            if not self._is_last:
                r.mac = draw(self._prg, (request.count,))
                rows.value, rows.mac = draw(self._prg, (2, *request.rows_shape))
        fill = functools.partial(_fill_one_hot, request)
        return self._issue((r, rows), request, fill)

    def auth_fss_sign(self, count: int, with_product: bool) -> fss.AuthFssSign:
        """Authenticated FSS sign material for ``count`` elements (two parties; :mod:`.fss`): the shares from the PRG
        at once, the DCF key (and party 1's other shares) at completion."""
        request = fss.FssSignRequest(count, with_product)
        if self.party.world_size != 2:
            raise ProtocolError(f"FSS comparisons are for two parties, this run has {self.party.world_size}")
        with self.party.offline():
            self._ask(request)
            material = fss.draw_shares(self._prg, self.party.rank, request.count, request.with_product)
        return self._issue(material, request, functools.partial(fss.fill, self.party.rank))

    def _ask(self, request: requests.AuthRequest) -> None:
        self.party.send(self.party.dealer_endpoint, request.encode())

    def _issue(self, material: M, request: requests.AuthRequest, fill: Callable) -> M:
        shape = request.reply_shape_for(self.party.rank)
        replies = self._is_last or request.reply_to_every_party
        receive = functools.partial(self._receive, material, shape, fill) if replies else None
        return self._track(material, request.describe(), receive)

    def _receive(self, material, shape: tuple, fill: Callable) -> None:
        fill(material, receive_correction(self.party, shape))


def _fill_key(holder: list, value: np.ndarray) -> None:
    holder[0] = value


def _fill_triple(request: requests.TripleRequest, triple: AuthTriple, value: np.ndarray) -> None:
    nx, ny, nz = request.sizes()
    cuts = np.cumsum([2 * nx, 2 * ny, 2 * nz])
    ma, mb, c, mc = np.split(value, cuts)
    triple.a.mac = ma.reshape(*request.shape_x, 2)
    triple.b.mac = mb.reshape(*request.shape_y, 2)
    triple.c.value = c.reshape(*request.shape_z, 2)
    triple.c.mac = mc.reshape(*request.shape_z, 2)


def _fill_trunc(pair: AuthTruncPair, value: np.ndarray) -> None:
    pair.r.mac, pair.msb.value, pair.msb.mac, pair.low.value, pair.low.mac = value


def _fill_random(random: AuthRandom, value: np.ndarray) -> None:
    random.r.value, random.r.mac = value[0], value[1]


def _fill_bits(material: AuthBits, value: np.ndarray) -> None:
    material.r.mac, material.bits.value, material.bits.mac = value[0], value[1:65], value[65:]


def _fill_bit_triple(triple: AuthTriple, value: np.ndarray) -> None:
    triple.a.mac, triple.b.mac, triple.c.value, triple.c.mac = value


def _fill_pair(shares: Shares, value: np.ndarray) -> None:
    shares.value, shares.mac = value


def _fill_dabits(shape: tuple, pair: tuple, value: np.ndarray) -> None:
    arith, bit = pair
    count = int(np.prod(shape, dtype=np.int64))
    arith.value, arith.mac = value[: 4 * count].reshape(2, *shape, 2)
    bit.value, bit.mac = value[4 * count :].reshape(2, *shape)


def _fill_edabits(shape: tuple, pair: tuple, value: np.ndarray) -> None:
    r, planes = pair
    count = int(np.prod(shape, dtype=np.int64))
    r.mac = value[: 2 * count].reshape(*shape, 2)
    planes.value, planes.mac = value[2 * count :].reshape(2, 64, *shape)


def _fill_one_hot(request, pair: tuple, value: np.ndarray) -> None:
    r, rows = pair
    r.mac = value[: 2 * request.count].reshape(request.count, 2)
    rows.value, rows.mac = value[2 * request.count :].reshape(2, *request.rows_shape, 2)

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

from smpc.exceptions import PeerError
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.correlated.source import CorrelatedSource, M
from smpc.mpc.spdz2k import requests
from smpc.mpc.spdz2k.mac_check import MacChecker
from smpc.mpc.spdz2k.requests import draw


@dataclass(eq=False)
class Shares:
    """This party's authenticated share of a value: its value share and its MAC share (Z_2^128 limbs; None at the
    last party until its material is completed)."""

    value: np.ndarray | None
    mac: np.ndarray | None


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

    def _ask(self, request: requests.AuthRequest) -> None:
        self.party.send(self.party.dealer_endpoint, request.encode())

    def _issue(self, material: M, request: requests.AuthRequest, fill: Callable) -> M:
        receive = functools.partial(self._receive, material, request.reply_shape, fill) if self._is_last else None
        return self._track(material, request.describe(), receive)

    def _receive(self, material, shape: tuple, fill: Callable) -> None:
        party = self.party
        with party.offline():
            value = party.recv(party.dealer_endpoint, timeout=2 * party.timeout)
        if value.shape != shape or value.dtype != np.uint64:
            raise PeerError(-1, f"the dealer sent {value.dtype}{list(value.shape)}, expected uint64{list(shape)}")
        fill(material, value)


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

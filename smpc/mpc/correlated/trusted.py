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

Requests are the typed messages of :mod:`.requests` (each validates itself, describes
itself and knows its answer). On the party side, :class:`TrustedDealerClient` implements
:class:`~smpc.mpc.correlated.source.CorrelatedSource`: the last party's corrections are
received only in :meth:`~smpc.mpc.correlated.source.CorrelatedSource.complete`, in request
order, where the protocol code calls it.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np

from smpc.exceptions import PeerError, PeerFinished, PeerTimeoutError, ProtocolError
from smpc.mpc.additive.truncation import TruncPair
from smpc.mpc.bilinear import Bilinear
from smpc.mpc.circuits import sign_bit
from smpc.mpc.circuits.masked_ands import SHARED, AndLayout
from smpc.mpc.correlated.requests import (MAX_REQUEST_VALUES, AndTriplesRequest, DabitsRequest, FssSignRequest,
                                          OneHotRequest, Request, SignRequest, TripleRequest, TruncRequest, decode)
from smpc.mpc.correlated.source import (KINDS, AndTriples, CorrelatedSource, Dabits, FssSignMaterial, M, OneHotMask,
                                        Triple)
from smpc.mpc.fss import compare as fss_compare, wire as fss_wire


class TrustedDealerClient(CorrelatedSource):
    """The party side of the trusted dealer: every kind of material, seed-compressed.

    Every request is announced to the dealer by every party and returns at once; the
    last party's corrections are received by :meth:`complete`, so the dealer computes
    while the parties open their masked values. ``requests`` counts the requests sent.
    """

    name = "dealer='trusted'"
    provides = frozenset(KINDS)

    def __init__(self, party):
        super().__init__()
        self.party = party
        self._prg = party.pair_prg(party.dealer_endpoint)
        self._is_last = party.rank == party.world_size - 1

    def triple(self, op: Bilinear, shape_x: tuple, shape_y: tuple) -> Triple:
        """This party's shares of a triple with ``c = op(a, b)`` (offline); the last party's c comes at completion."""
        request = TripleRequest(op, shape_x, shape_y)
        with self.party.offline():
            self._ask(request)
            a = self._prg.random_ring(request.shape_x)
            b = self._prg.random_ring(request.shape_y)
            c = None if self._is_last else self._prg.random_ring(request.reply_shape)
        return self._issue(Triple(a, b, c), request, _fill_c)

    def trunc_pair(self, shape: tuple, bits: int) -> TruncPair:
        """This party's shares of a truncation pair for ``bits`` (offline); the last party's r_msb and
        r_low_shifted come at completion."""
        request = TruncRequest(shape, bits)
        with self.party.offline():
            self._ask(request)
            r = self._prg.random_ring(request.shape)
            if self._is_last:
                pair = TruncPair(r, None, None)
            else:
                pair = TruncPair(r, self._prg.random_ring(request.shape), self._prg.random_ring(request.shape))
        return self._issue(pair, request, _fill_trunc)

    def and_triples(self, layout: AndLayout) -> AndTriples:
        """This party's shares of a round of ANDs' masks and products (offline): a mask from this party's PRG unless
        another party owns it, the products' shares from the PRG too, except at the last party, whose products come
        at completion (one reply, split per product)."""
        request = AndTriplesRequest(layout)
        rank = self.party.rank
        with self.party.offline():
            self._ask(request)
            masks = [self._prg.random_ring(shape) if owner in (SHARED, rank) else None
                     for shape, owner in request.layout.masks]
            products = None if self._is_last else [self._prg.random_ring(request.layout.product_shape(k))
                                                   for k in range(len(request.layout.products))]
        fill = functools.partial(_fill_products, request)
        return self._issue(AndTriples(masks, products), request, fill)

    def dabits(self, shape: tuple) -> Dabits:
        """Random bits shared twice (offline): every XOR share from the party's PRG; the last party's additive
        shares come at completion."""
        request = DabitsRequest(shape)
        with self.party.offline():
            self._ask(request)
            xor = self._prg.random_bits(request.shape)
            bits = Dabits(xor, None if self._is_last else self._prg.random_ring(request.shape))
        return self._issue(bits, request, _fill_dabits)

    def sign_material(self, count: int, with_product: bool = False) -> sign_bit.Material:
        """Randomness for the sign bit of ``count`` elements (see :mod:`smpc.mpc.circuits.sign_bit`; offline);
        the last party's derived fields come at completion.

        ``with_product``: also shares of r * s, so x * msb(x) needs no multiplication.
        """
        request = SignRequest(count, with_product)
        with self.party.offline():
            self._ask(request)
            material = sign_bit.expand(request.fields(), self._prg, derived=not self._is_last)
        return self._issue(material, request, sign_bit.Material.add_corrections)

    def random_one_hot(self, count: int, bits: int) -> OneHotMask:
        """Shares of ``count`` random offsets r (uniform mod 2^bits) and of their one-hot rows (count, 2^bits)
        (offline). Every party expands its r from its PRG (the dealer adds them up); the last party's rows are a
        correction of count 2^bits words received at completion, after the opening of x - r."""
        request = OneHotRequest(count, bits)
        with self.party.offline():
            self._ask(request)
            offsets = self._prg.random_ring((request.count,))
            rows = None if self._is_last else self._prg.random_ring(request.reply_shape)
        return self._issue(OneHotMask(offsets, rows), request, _fill_rows)

    def fss_sign(self, count: int, with_product: bool = False) -> FssSignMaterial:
        """This party's shares from its PRG at once (the masks r among them) and its FSS sign keys at completion
        (both parties receive keys: :class:`~smpc.mpc.correlated.requests.FssSignRequest`)."""
        request = FssSignRequest(count, with_product)
        if self.party.world_size != 2:
            raise ProtocolError(f"FSS comparisons are for two parties, this run has {self.party.world_size}")
        with self.party.offline():
            self._ask(request)
            shares = fss_compare.draw_shares(self._prg, self.party.rank, request.count, request.with_product)
        fill = functools.partial(_fill_fss_keys, self.party.rank)
        return self._issue(FssSignMaterial(shares), request, fill)

    def _ask(self, request: Request) -> None:
        """Tell the dealer what this party needs next (every party does; only the last waits for a reply)."""
        self.party.send(self.party.dealer_endpoint, request.encode())

    def _issue(self, material: M, request: Request, fill: Callable) -> M:
        """Track ``material``; at the last party its completion receives the correction and ``fill``s it in."""
        replies = self._is_last or request.reply_to_every_party
        shape = request.reply_shape_for(self.party.rank)
        receive = functools.partial(self._receive, material, shape, fill) if replies else None
        return self._track(material, request.describe(), receive)

    def _receive(self, material, shape: tuple, fill: Callable) -> None:
        """Receive the dealer's next correction (it must have ``shape``) and ``fill`` it into ``material``."""
        fill(material, receive_correction(self.party, shape))


def receive_correction(party, shape: tuple) -> np.ndarray:
    """The dealer's next correction to ``party`` (offline), checked to be uint64 of ``shape``."""
    with party.offline():
        # twice the run's timeout: the dealer may first wait up to one timeout for the
        # other parties' requests, and must be the one to name a silent party
        value = party.recv(party.dealer_endpoint, timeout=2 * party.timeout)
    if value.shape != shape or value.dtype != np.uint64:
        raise PeerError(-1, f"the dealer sent {value.dtype}{list(value.shape)}, expected uint64{list(shape)}")
    return value


def _fill_c(triple: Triple, value: np.ndarray) -> None:
    triple.c = value


def _fill_trunc(pair: TruncPair, value: np.ndarray) -> None:
    pair.r_msb, pair.r_low_shifted = value[0], value[1]


def _fill_products(request: AndTriplesRequest, triples: AndTriples, value: np.ndarray) -> None:
    sizes = np.cumsum(request.product_sizes())[:-1]
    shapes = [request.layout.product_shape(k) for k in range(len(request.layout.products))]
    triples.products = [part.reshape(shape) for part, shape in zip(np.split(value, sizes), shapes)]


def _fill_dabits(bits: Dabits, value: np.ndarray) -> None:
    bits.arith = value


def _fill_rows(mask: OneHotMask, value: np.ndarray) -> None:
    mask.rows = value


def _fill_fss_keys(rank: int, material: FssSignMaterial, value: np.ndarray) -> None:
    material.keys = fss_wire.unpack(rank, value, material.shares)


def serve(dealer, decoder: Callable[[np.ndarray], Request] = decode) -> dict:
    """The dealer's loop: answer each of the last party's requests once every party made it too.

    Returns a summary (requests served). ``dealer`` is the dealer's :class:`Party`; ``decoder`` reads a request
    (:func:`~smpc.mpc.correlated.requests.decode`; another protocol's dealer passes its own, whose requests may
    carry the dealer's state into their ``make``).
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
            _check_agreement(dealer, served + 1, None, timeout=None, decoder=decoder)
            return {"requests": served}
        parsed = decoder(request)  # the last party's request, checked whole before anything is made
        _check_agreement(dealer, served + 1, tuple(request.tolist()), timeout=dealer.timeout, decoder=decoder)
        with dealer.offline():
            correction = parsed.make(prgs, dealer.prg)
        if parsed.reply_to_every_party:  # every correction is a fresh array, dropped once sent: no copy
            for rank, reply in enumerate(correction):
                dealer.send(rank, reply, owned=True)
        else:
            dealer.send(last, correction, owned=True)
        served += 1


def _check_agreement(dealer, number: int, wanted: tuple | None, timeout: float | None,
                     decoder: Callable[[np.ndarray], Request] = decode) -> None:
    """Receive request ``number`` from every party but the last, who asked for ``wanted``
    (None: it finished), all within one ``timeout`` (None: no limit); raise
    :class:`ProtocolError` naming the parties that differ."""
    last = dealer.world_size - 1
    deadline = None if timeout is None else time.monotonic() + timeout
    asked = {rank: _receive_ask(dealer, rank, number, deadline) for rank in range(last)}
    asked[last] = wanted
    if len(set(asked.values())) > 1:
        raise ProtocolError(_disagreement(number, asked, decoder))


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


def _disagreement(number: int, asked: dict, decoder: Callable[[np.ndarray], Request] = decode) -> str:
    """'dealer request 3 differs between parties: party 0, party 1 asked for ...; party 2 asked for ...'."""
    groups: dict = {}
    for rank in sorted(asked):
        groups.setdefault(asked[rank], []).append(f"party {rank}")
    parts = [f"{', '.join(ranks)} asked for {_describe(ask, decoder)}" for ask, ranks in groups.items()]
    return f"dealer request {number} differs between parties: " + "; ".join(parts)


def _describe(ask: tuple | str | None, decoder: Callable[[np.ndarray], Request] = decode) -> str:
    """A request in words, from its public description only (kind, op, shapes, bits)."""
    if ask is None:
        return "nothing more (it finished)"
    if isinstance(ask, str):
        return ask
    try:
        return decoder(np.array(ask, dtype=np.int64)).describe()
    except ProtocolError:
        return f"a malformed request ({len(ask)} values)"

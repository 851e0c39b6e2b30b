"""Preprocessing ahead: all of a program's correlated randomness fetched before its online phase starts.

With ``smpc.run(..., preprocessing="ahead")`` every party first runs the program once as a *planning pass*
(:meth:`smpc.net.party.Party.planning_pass`): on its real inputs, but with no online message moving (sends to the
other parties are dropped, receives of a known shape give zeros; metadata such as share headers and everything the
source itself sends, like requests to the dealer, move for real). The party's source is wrapped in a
:class:`RecordingSource`, so every material the program asks for is made and received exactly as on demand, and
kept. The program's results of that pass are discarded. Then the program runs again, online, and a
:class:`ReplaySource` hands out the kept materials in order, with no I/O: the dealer's work and its messages are
off the online critical path, which is how the preprocessing model of SPDZ-style protocols is meant to run
(Damgard, Pastro, Smart and Zakarias, CRYPTO 2012, section 1: an offline phase independent of the inputs, then
an online phase).

The plan is the request sequence itself, which in a secret-sharing program depends only on shapes, never on
secret values. A program whose control flow depends on a *revealed* value can ask for different material online
than in the planning pass (which reveals garbage): the replay then stops with :class:`PlanMismatchError` naming
both requests. Nothing secret leaves a party in the planning pass: it sends only the share headers and dealer
requests the online pass sends again.

Cost: the program's local computation runs twice (once on garbage, in the offline phase) and all materials are
held in memory from the planning pass until used (freed one by one online). The online phase starts when every
party has finished its planning pass (an offline barrier), as it would in a deployment where the inputs arrive
after preprocessing.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import deque
from typing import Any, Callable

import numpy as np

from smpc.exceptions import ProtocolError
from smpc.mpc.correlated.source import KINDS, AndTriples, CorrelatedSource, Dabits, FssSignMaterial, OneHotMask, Triple

#: the modes of ``smpc.run(..., preprocessing=...)``; None fetches each material when the program asks for it
MODES = ("ahead",)


class PlanMismatchError(ProtocolError):
    """The online pass asked for material the planning pass did not ask for at that point."""


def _key(kind: str, args: tuple) -> tuple:
    """A request as a comparable, printable tuple: the kind and its arguments, shapes as tuples of ints."""
    return (kind, *(_normal(a) for a in args))


def _normal(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return value


def _describe(key: tuple) -> str:
    kind, *args = key
    return f"{KINDS[kind]} ({', '.join(map(str, args))})"


class _EveryKind(CorrelatedSource):
    """A source that routes every kind of request, with its arguments, to one method, :meth:`_request`."""

    provides = frozenset(KINDS)

    @abstractmethod
    def _request(self, kind: str, *args) -> Any:
        """This party's material of ``kind`` for ``args`` (the kind method's arguments)."""

    def triple(self, op, shape_x: tuple, shape_y: tuple) -> Triple:
        return self._request("triple", op, shape_x, shape_y)

    def trunc_pair(self, shape: tuple, bits: int):
        return self._request("trunc_pair", shape, bits)

    def and_triples(self, layout) -> AndTriples:
        return self._request("and_triples", layout)

    def dabits(self, shape: tuple) -> Dabits:
        return self._request("dabits", shape)

    def sign_material(self, count: int, with_product: bool = False):
        return self._request("sign_material", count, with_product)

    def random_one_hot(self, count: int, bits: int) -> OneHotMask:
        return self._request("random_one_hot", count, bits)

    def fss_sign(self, count: int, with_product: bool = False) -> FssSignMaterial:
        return self._request("fss_sign", count, with_product)


class RecordingSource(_EveryKind):
    """Wraps a party's source in the planning pass: every request goes to ``inner`` as usual, and the material is
    kept, in request order, for :class:`ReplaySource`."""

    def __init__(self, inner: CorrelatedSource):
        super().__init__()
        self.inner = inner
        self.kept: deque[tuple[tuple, Any]] = deque()

    @property
    def name(self) -> str:
        return self.inner.name

    def _request(self, kind: str, *args) -> Any:
        material = getattr(self.inner, kind)(*args)
        key = _key(kind, args)
        self.kept.append((key, material))
        return self._track(material, _describe(key), lambda: self.inner.complete(material))

    def finish(self) -> None:
        """Receive whatever the planning pass asked for but did not complete, so all of it is here."""
        while self._outstanding:
            self.complete(self._outstanding[0].material)


class ReplaySource(_EveryKind):
    """The online pass's source: hands out the planning pass's materials in order (no I/O), after checking each
    request is the one planned; raises :class:`PlanMismatchError` otherwise."""

    def __init__(self, recorded: RecordingSource):
        super().__init__()
        self._name = f"{recorded.name} (preprocessed ahead)"
        self._kept = recorded.kept
        recorded.kept = deque()
        self.planned = len(self._kept)

    @property
    def name(self) -> str:
        return self._name

    @property
    def unused(self) -> int:
        """Planned materials the online pass has not asked for (yet)."""
        return len(self._kept)

    def _request(self, kind: str, *args) -> Any:
        key = _key(kind, args)
        number = self.requests + 1
        if not self._kept:
            raise PlanMismatchError(
                f"the online pass's request {number} ({_describe(key)}) was not planned: the planning pass asked for "
                f"{self.planned} materials. The program's requests depend on a revealed value, which the planning "
                "pass does not know; run it without preprocessing='ahead'")
        planned, material = self._kept[0]
        if planned != key:
            raise PlanMismatchError(
                f"the online pass's request {number} ({_describe(key)}) differs from the planning pass's "
                f"({_describe(planned)}): the program's requests depend on a revealed value, which the planning pass "
                "does not know; run it without preprocessing='ahead'")
        self._kept.popleft()  # the online pass holds the only reference from here on
        return self._track(material, _describe(key))


def plan_ahead(party, fn: Callable) -> None:
    """Run ``fn(party)`` as a planning pass that fetches all its correlated randomness, then give ``party`` a
    :class:`ReplaySource` for the online run of ``fn``. The source must fetch everything through its own offline
    messages (the trusted dealer does; Paillier preprocessing does, its messages between the two parties being
    offline)."""
    if party.dealer is None:
        raise ProtocolError(f"{party.protocol.name if party.protocol else 'this protocol'} has no correlated "
                            "randomness source, so there is nothing to preprocess")
    recording = RecordingSource(party.dealer)
    party.dealer = recording
    with party.planning_pass():
        try:
            with np.errstate(all="ignore"):  # the pass computes on garbage: divisions by zero are expected
                fn(party)
        except Exception as exc:
            exc.add_note("raised in the planning pass of preprocessing='ahead', which runs the program once with "
                         "every online receive giving zeros, to fetch its correlated randomness")
            raise
        recording.finish()
    party.dealer = ReplaySource(recording)
    _wait_for_every_party(party)


def _wait_for_every_party(party) -> None:
    """An offline barrier: the online phase starts once every party has its material (one small message to and
    from each peer), so no party's online time includes a slower peer's planning pass."""
    with party.offline():
        for peer in party.others:
            party.send_meta(peer, np.zeros(1, np.int64))
        for peer in party.others:
            if party.recv_meta(peer).shape != (1,):
                raise ProtocolError(f"party {peer} sent a malformed end-of-preprocessing message")

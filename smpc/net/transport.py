"""The transport interface and its in-process (threads) implementation.

A transport moves already-encoded frames between endpoints ``0..N`` (parties ``0..N-1``
and, where the protocol has one, the dealer as endpoint ``N``). There is one FIFO
queue per ordered pair (sender, receiver), so messages from different peers never
block each other. A failing endpoint raises an *alarm* at every other endpoint, so a
party blocked on any peer stops at once with an error naming the one that failed.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod

from smpc.exceptions import PeerError, PeerFinished, PeerTimeoutError
from smpc.net.network import Link, Network
from smpc.net.peer_text import printable

_POLL_SECONDS = 0.05

# Items in an inbox: ("frame", header, payload[, deliver_at]) | ("abort", type name) | ("closed", reason or None)
FRAME, ABORT, CLOSED = "frame", "abort", "closed"


def endpoint_name(endpoint: int, world_size: int) -> str:
    """Human name of an endpoint: ``party 2`` or ``the dealer``."""
    return "the dealer" if endpoint == world_size else f"party {endpoint}"


def public_rank(endpoint: int, world_size: int) -> int:
    """Rank reported in errors: the party's rank, or -1 for the dealer."""
    return -1 if endpoint == world_size else endpoint


class Alarm:
    """Set once by the first peer failure an endpoint hears of."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.peer = -1
        self.message = ""

    def raise_(self, peer: int, message: str) -> None:
        """Record the first failure and wake waiting receivers."""
        with self._lock:
            if not self._event.is_set():
                self.peer, self.message = peer, message
                self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class Transport(ABC):
    """Moves frames between this endpoint and its peers."""

    def __init__(self, endpoint: int, world_size: int):
        self.endpoint = endpoint
        self.world_size = world_size
        self.alarm = Alarm()
        self._inbox: dict[int, queue.Queue] = {}
        self.network_wait = 0.0  # seconds spent waiting for a network model's delivery times (local transport)

    @property
    def peers(self) -> list[int]:
        return [e for e in range(self.world_size + 1) if e != self.endpoint and e in self._inbox]

    def name(self, endpoint: int) -> str:
        return endpoint_name(endpoint, self.world_size)

    @abstractmethod
    def send_raw(self, peer: int, header: bytes, payload: memoryview) -> None:
        """Queue one encoded frame for ``peer`` (returns without waiting for delivery)."""

    def recv_raw(self, peer: int, timeout: float | None) -> tuple[bytes, memoryview]:
        """The next frame from ``peer``; raises :class:`PeerError` on failure or timeout (None: none)."""
        inbox = self._inbox.get(peer)
        if inbox is None:
            raise PeerError(public_rank(peer, self.world_size), f"no channel to {self.name(peer)}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                item = inbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self.alarm.is_set():
                    raise PeerError(public_rank(self.alarm.peer, self.world_size), self.alarm.message) from None
                if deadline is not None and time.monotonic() > deadline:
                    raise PeerTimeoutError(
                        public_rank(peer, self.world_size),
                        f"no message from {self.name(peer)} within {timeout:g} s",
                    ) from None
                continue
            if item[0] == FRAME:
                if len(item) > 3:
                    self._wait_for_delivery(peer, item[3])
                self._consumed(peer, len(item[2]))
                return item[1], item[2]
            rank = public_rank(peer, self.world_size)
            if item[0] == ABORT:
                raise PeerError(rank, f"{self.name(peer)} failed ({printable(item[1])})")
            if item[1] is None:
                raise PeerFinished(rank, f"{self.name(peer)} finished while a message from it was expected")
            raise PeerError(rank, f"{self.name(peer)} sent nothing more ({item[1]}) while a message was expected")

    def _wait_for_delivery(self, peer: int, deliver_at: float) -> None:
        """Hold a frame until the network model delivers it (in short sleeps, so a peer's failure still wakes us)."""
        start = time.monotonic()
        while (left := deliver_at - time.monotonic()) > 0:
            if self.alarm.is_set():
                raise PeerError(public_rank(self.alarm.peer, self.world_size), self.alarm.message)
            time.sleep(min(left, _POLL_SECONDS))
        self.network_wait += time.monotonic() - start

    def _consumed(self, peer: int, nbytes: int) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Hook: the program has taken ``nbytes`` of payload from ``peer``'s inbox (nothing to do by default)."""

    @abstractmethod
    def abort(self, reason: str) -> None:
        """Tell every peer that this endpoint failed (best effort, never raises)."""

    @abstractmethod
    def close(self) -> None:
        """Finish normally: tell peers nothing more comes, release resources."""


class LocalHub:
    """In-memory channels between the endpoints of one run living in one process; with a ``network`` model
    (:mod:`smpc.net.network`) every directed channel is a link that delivers frames when that network would."""

    def __init__(self, world_size: int, has_dealer: bool, network: Network | None = None):
        self.world_size = world_size
        self.endpoints = list(range(world_size + (1 if has_dealer else 0)))
        self.queues = {(i, j): queue.Queue() for i in self.endpoints for j in self.endpoints if i != j}
        self.links = {pair: Link(network) for pair in self.queues} if network is not None else None
        self.alarms = [Alarm() for _ in self.endpoints]


class LocalTransport(Transport):
    """Threads in one process: frames travel through the hub's queues, not sockets."""

    def __init__(self, endpoint: int, hub: LocalHub):
        super().__init__(endpoint, hub.world_size)
        self._hub = hub
        self.alarm = hub.alarms[endpoint]
        self._inbox = {i: hub.queues[(i, endpoint)] for i in hub.endpoints if i != endpoint}

    def send_raw(self, peer: int, header: bytes, payload: memoryview) -> None:
        channel = (self.endpoint, peer)
        if self._hub.links is None:
            self._hub.queues[channel].put((FRAME, header, payload))
            return
        deliver_at = self._hub.links[channel].deliver_at(len(header) + len(payload))
        self._hub.queues[channel].put((FRAME, header, payload, deliver_at))

    def abort(self, reason: str) -> None:
        message = f"{self.name(self.endpoint)} failed ({reason})"
        for peer in self.peers:
            self._hub.queues[(self.endpoint, peer)].put((ABORT, reason))
            self._hub.alarms[peer].raise_(self.endpoint, message)

    def close(self) -> None:
        for peer in self.peers:
            self._hub.queues[(self.endpoint, peer)].put((CLOSED, None))

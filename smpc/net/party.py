"""A party: one endpoint of an SPMD computation, with its channels, keys and counters.

Every party runs the same program on its own shares. The party object carries all a
computation needs (no global state): its rank, validated send/receive, the pairwise
PRGs it shares with each peer, a local PRG, its statistics, and the protocol and
correlated-randomness source that :func:`smpc.run` attached.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from smpc.exceptions import PeerError, ProtocolError, WireFormatError
from smpc.net import wire
from smpc.net.network import Network
from smpc.net.stats import CommStats
from smpc.net.transport import Transport, public_rank
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS
from smpc.ring.prg import PRG, derive_key, fresh_key


if TYPE_CHECKING:  # annotations only: smpc.net never imports the protocol layer at run time
    from smpc.mpc.correlated.source import CorrelatedSource
    from smpc.mpc.interfaces import Protocol

RUN_TIMEOUT = object()  # default of Party.recv: the run's configured timeout


@dataclass(frozen=True)
class PartyOptions:
    """Settings every endpoint of one run shares."""

    frac_bits: int = DEFAULT_FRAC_BITS
    timeout: float = 60.0
    seed: bytes | None = None  # INSECURE: reproducible keys for debugging only
    max_payload: int = wire.DEFAULT_MAX_PAYLOAD
    network: Network | None = None  # the local transport's link model (smpc.net.network)
    preprocessing: str | None = None  # "ahead": a planning pass fetches all correlated randomness first


class Party:
    """One participant (or the dealer, whose ``rank`` equals ``world_size``).

    Attributes: ``rank``, ``world_size`` (computing parties, the dealer not counted),
    ``frac_bits``, ``prg`` (local CSPRNG), ``protocol`` and ``dealer`` (set by the
    protocol), ``stats`` (a dict snapshot, see :mod:`smpc.net.stats`).
    """

    def __init__(self, rank: int, world_size: int, transport: Transport, options: PartyOptions):
        self.rank = rank
        self.world_size = world_size
        self.options = options
        self.frac_bits = options.frac_bits
        self.timeout = options.timeout
        self._transport = transport
        self._stats = CommStats()
        self._network_wait_at_reset = 0.0
        self._pair_keys: dict[int, bytes] = {}
        self._pair_prgs: dict[int, PRG] = {}
        self.prg = PRG(self._derive_or_fresh(f"local {rank}"))
        self.protocol: Protocol | None = None  # set by the protocol's attach()
        self.dealer: CorrelatedSource | None = None  # None for a protocol that needs no correlated randomness
        self._offline_blocks = 0
        self._planning = False
        self._preprocessing_seconds = 0.0
        self._send_hook: Callable[[int, np.ndarray], np.ndarray | None] | None = None

    # --- identity -----------------------------------------------------------------------
    @property
    def is_dealer(self) -> bool:
        """True for the dealer endpoint."""
        return self.rank == self.world_size

    @property
    def dealer_endpoint(self) -> int:
        """The endpoint number of the dealer (``world_size``)."""
        return self.world_size

    @property
    def others(self) -> list[int]:
        """Ranks of the other computing parties."""
        return [r for r in range(self.world_size) if r != self.rank]

    def __repr__(self) -> str:
        role = "dealer" if self.is_dealer else f"party {self.rank}"
        return f"<Party {role} of {self.world_size}>"

    # --- statistics ---------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, float]:
        """Communication counters since the last :meth:`reset_stats` (a snapshot dict); ``network_seconds`` is
        the time spent waiting for a network model's deliveries (0 without one)."""
        snapshot = self._stats.as_dict()
        snapshot["network_seconds"] = self._transport.network_wait - self._network_wait_at_reset
        snapshot["preprocessing_seconds"] = self._preprocessing_seconds
        return snapshot

    def reset_stats(self) -> None:
        """Start counting bytes, messages, rounds, offline and network time from zero."""
        self._stats.reset()
        self._network_wait_at_reset = self._transport.network_wait

    @contextmanager
    def offline(self):
        """Count the time spent in this block, and the messages it moves, as offline (preprocessing)."""
        start = time.perf_counter()
        self._offline_blocks += 1
        try:
            yield
        finally:
            self._offline_blocks -= 1
            if not self._offline_blocks:
                self._stats.offline_seconds += time.perf_counter() - start

    # --- the planning pass of preprocessing="ahead" ----------------------------------------------------
    @property
    def planning(self) -> bool:
        """True while this party runs the program's planning pass (``smpc.run(..., preprocessing="ahead")``): the
        program runs once on its real inputs to fetch all its correlated randomness, but no online message moves
        (sends to other parties are dropped, receives of a known shape give zeros) and its results are discarded.
        A program may read it to skip side effects (printing, saving) in that pass."""
        return self._planning

    @contextmanager
    def planning_pass(self):
        """Run the block as a planning pass (see :attr:`planning`); its wall time is reported in
        ``stats["preprocessing_seconds"]`` (which :meth:`reset_stats` keeps) and counted as offline time."""
        if self._planning:
            raise ProtocolError("a planning pass is already running")
        start = time.perf_counter()
        self._planning = True
        try:
            with self.offline():
                yield
        finally:
            self._planning = False
            self._preprocessing_seconds += time.perf_counter() - start

    def _skipped_in_planning(self, peer: int) -> bool:
        """Whether a message with ``peer`` does not move because it is online traffic of a planning pass."""
        return self._planning and peer != self.dealer_endpoint and self._offline_blocks <= 1

    # --- messaging ----------------------------------------------------------------------
    def _check_peer(self, peer: int) -> None:
        if not isinstance(peer, (int, np.integer)) or not 0 <= peer <= self.world_size or peer == self.rank:
            raise ValueError(f"invalid peer {peer!r} for {self!r}")

    def _is_offline(self, peer: int) -> bool:
        return self.is_dealer or peer == self.dealer_endpoint or self._offline_blocks > 0

    def send(self, peer: int, array: np.ndarray, owned: bool = False) -> None:
        """Send an array to ``peer`` (a rank, or :attr:`dealer_endpoint`). Its bytes are copied, so the caller may
        change it afterwards; ``owned``: the caller hands a fresh array over and never touches it again (no copy)."""
        self._check_peer(peer)
        if self._planning and self._skipped_in_planning(peer):
            return
        array = np.asarray(array)
        if self._send_hook is not None:
            array = self._send_hook(peer, array)
            if array is None:  # dropped
                return
        nbytes = wire.FIXED_HEADER_BYTES + 8 * array.ndim + array.nbytes
        depth = self._stats.on_send(nbytes, self._is_offline(peer))
        header, payload = wire.encode_frame(wire.Kind.DATA, array, depth, copy=not owned)
        self._transport.send_raw(peer, header, payload)

    def recv(self, peer: int, timeout: float | None | object = RUN_TIMEOUT) -> np.ndarray:
        """Receive the next array from ``peer``; raises :class:`PeerError` naming it on failure.

        ``timeout`` defaults to the run's; ``None`` waits for as long as it takes (peers'
        failures still end the wait).
        """
        self._check_peer(peer)
        if self._planning and self._skipped_in_planning(peer):
            raise ProtocolError(f"{self!r} received a message of unknown shape from {self._transport.name(peer)} "
                                "in a planning pass (preprocessing='ahead'), where online messages do not move; "
                                "protocol code receives data with recv_like() and metadata with recv_meta()")
        timeout = self.timeout if timeout is RUN_TIMEOUT else timeout
        raw_header, payload = self._transport.recv_raw(peer, timeout)
        try:
            header, array = wire.decode_frame(raw_header, payload, self.options.max_payload)
        except WireFormatError as exc:
            who = self._transport.name(peer)
            raise PeerError(public_rank(peer, self.world_size), f"invalid frame from {who}: {exc}") from None
        if header.kind != wire.Kind.DATA:
            raise PeerError(public_rank(peer, self.world_size), f"unexpected {header.kind.name} frame")
        self._stats.on_receive(len(raw_header) + header.payload_bytes, header.depth, self._is_offline(peer))
        return array

    def recv_like(self, peer: int, shape: tuple[int, ...], dtype=np.uint64) -> np.ndarray:
        """Receive an array and check it has the shape and dtype the protocol expects (zeros in a planning pass)."""
        if self._planning and self._skipped_in_planning(peer):
            self._check_peer(peer)
            return np.zeros(shape, dtype)
        array = self.recv(peer)
        if array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            raise PeerError(
                public_rank(peer, self.world_size),
                f"{self._transport.name(peer)} sent {array.dtype}{list(array.shape)}, "
                f"expected {np.dtype(dtype)}{list(shape)}",
            )
        return array

    def send_meta(self, peer: int, values: np.ndarray) -> None:
        """Send public metadata (int64 values: a shape, a scale, a digest) to ``peer``. Unlike :meth:`send`, it
        moves in a planning pass too (where it counts as offline), since the pass needs shapes to plan."""
        values = np.asarray(values)
        if values.dtype != np.int64 or values.ndim != 1:
            raise ValueError(f"metadata is a 1-D int64 array, got {values.dtype}{list(values.shape)}")
        with self._moving_in_planning():
            self.send(peer, values)

    def recv_meta(self, peer: int) -> np.ndarray:
        """Receive :meth:`send_meta`'s values from ``peer`` (checked to be a 1-D int64 array; the caller checks
        their meaning)."""
        with self._moving_in_planning():
            values = self.recv(peer)
        if values.dtype != np.int64 or values.ndim != 1:
            raise PeerError(public_rank(peer, self.world_size),
                            f"{self._transport.name(peer)} sent {values.dtype}{list(values.shape)} as metadata")
        return values

    @contextmanager
    def _moving_in_planning(self):
        """In a planning pass, let the block's messages move (as offline traffic); a no-op otherwise."""
        if not self._planning:
            yield
            return
        self._offline_blocks += 1
        try:
            yield
        finally:
            self._offline_blocks -= 1

    # --- keys and PRGs ------------------------------------------------------------------
    def _derive_or_fresh(self, label: str) -> bytes:
        seed = self.options.seed
        return fresh_key() if seed is None else derive_key(seed, label)

    def agree_keys(self) -> None:
        """Agree a pairwise key with every other endpoint (X25519, or the debugging seed).

        Run once at start-up by the launcher; its traffic is not counted.
        """
        endpoints = [e for e in range(self.world_size + 1) if e != self.rank and e in self._transport.peers]
        if self.options.seed is not None:
            for peer in endpoints:
                low, high = sorted((self.rank, peer))
                self._pair_keys[peer] = derive_key(self.options.seed, f"pair {low} {high}")
        else:
            private = X25519PrivateKey.generate()
            public = np.frombuffer(private.public_key().public_bytes_raw(), dtype=np.uint8)
            for peer in endpoints:
                self.send(peer, public)
            for peer in endpoints:
                theirs = self.recv_like(peer, (32,), np.uint8)
                shared = private.exchange(X25519PublicKey.from_public_bytes(theirs.tobytes()))
                low, high = sorted((self.rank, peer))
                self._pair_keys[peer] = derive_key(shared, f"pair {low} {high}")
        self._stats.depth = 0
        self.reset_stats()

    def pair_prg(self, peer: int) -> PRG:
        """The PRG this party shares with ``peer`` (both draw the same stream in SPMD order)."""
        prg = self._pair_prgs.get(peer)
        if prg is None:
            key = self._pair_keys.get(peer)
            if key is None:
                raise ProtocolError(f"{self!r} has no key shared with endpoint {peer}")
            prg = self._pair_prgs[peer] = PRG(key)
        return prg

    def set_send_hook(self, hook: Callable[[int, np.ndarray], np.ndarray | None] | None) -> None:
        """Fault injection for tests (:func:`smpc.testing.tamper_message`): every array this party sends passes
        through ``hook(peer, array)``, which returns what is sent instead (None: nothing). None removes it."""
        self._send_hook = hook

    # --- the protocol's entry points --------------------------------------------------------
    def share(self, x=None, src: int = 0):
        """Secret-share ``x`` held by party ``src`` (the others pass ``None``)."""
        if self.protocol is None:
            raise ProtocolError("no protocol is attached to this party")
        return self.protocol.share(self, x, src)

    # --- life cycle ---------------------------------------------------------------------
    def abort(self, exc: BaseException) -> None:
        """Tell every peer this party failed.

        Only the exception's type name travels (a message could hold a secret), except
        for a :class:`PeerError`, whose message is smpc's own and names the origin.
        """
        reason = f"PeerError: {exc}" if isinstance(exc, PeerError) else type(exc).__name__
        self._transport.abort(reason[:200])

    def close(self) -> None:
        """Finish normally."""
        self._transport.close()

"""A network model for the local transport: every message arrives when a real link would deliver it.

``smpc.run(fn, ..., network="lan" | "wan" | Network(rtt_ms, bandwidth_mbps))`` makes the in-process transport hold
each frame until ``send time + queueing + size / bandwidth + RTT / 2``. Every directed link (sender, receiver) is a
queue of its own: a frame starts on the wire when the link is free (after the frames sent before it on that link),
so concurrent messages on one link share its bandwidth, while different links run in parallel (a full-duplex,
switched network, each endpoint with its own link to each peer). Wall times of a run then include what that
network would add, on every protocol, and ``party.stats["network_seconds"]`` reports how long the party waited for
the model beyond its own computing.

Limits: no packet loss, no TCP slow start or congestion window (a long-lived connection's steady state), no jitter,
and no per-message overhead beyond smpc's own frame bytes; the endpoints' compute shares this machine's cores as
before. The presets are the settings papers report: ``"lan"`` 3 Gbit/s and 0.3 ms round trip (Cheetah's LAN),
``"wan"`` 400 Mbit/s and 40 ms. TCP runs are real connections: shape a real link (``tc netem``) for them instead.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    """A link model: round-trip time in milliseconds and bandwidth in Mbit/s (per directed link)."""

    rtt_ms: float
    bandwidth_mbps: float
    name: str = ""

    def __post_init__(self) -> None:
        for field, value in (("rtt_ms", self.rtt_ms), ("bandwidth_mbps", self.bandwidth_mbps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Network {field} must be a finite number, got {value!r}")
        if self.rtt_ms < 0:
            raise ValueError(f"Network rtt_ms must be >= 0, got {self.rtt_ms!r}")
        if self.bandwidth_mbps <= 0:
            raise ValueError(f"Network bandwidth_mbps must be > 0, got {self.bandwidth_mbps!r}")

    @property
    def one_way_seconds(self) -> float:
        """The latency of one message: half the round trip."""
        return self.rtt_ms / 2000.0

    def transfer_seconds(self, nbytes: int) -> float:
        """How long ``nbytes`` occupy the link."""
        return 8.0 * nbytes / (self.bandwidth_mbps * 1e6)

    def __str__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"{label}{self.bandwidth_mbps:g} Mbit/s, {self.rtt_ms:g} ms round trip"


PRESETS = {
    "lan": Network(rtt_ms=0.3, bandwidth_mbps=3000.0, name="lan"),
    "wan": Network(rtt_ms=40.0, bandwidth_mbps=400.0, name="wan"),
}


def network_of(value) -> Network | None:
    """``None`` (no model: delivery as fast as the machine), a preset's name, or a :class:`Network`."""
    if value is None or isinstance(value, Network):
        return value
    if isinstance(value, str) and value in PRESETS:
        return PRESETS[value]
    raise ValueError(f"network must be None, a Network or one of {sorted(PRESETS)}, got {value!r}")


class Link:
    """One directed link: frames leave in order, each when the previous one has left."""

    def __init__(self, network: Network):
        self.network = network
        self._free_at = 0.0
        self._lock = threading.Lock()

    def deliver_at(self, nbytes: int) -> float:
        """The monotonic time at which a frame of ``nbytes`` sent now arrives at the receiver."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + self.network.transfer_seconds(nbytes)
            return self._free_at + self.network.one_way_seconds

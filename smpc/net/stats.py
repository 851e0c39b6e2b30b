"""Communication statistics, counted where messages move (in send and receive).

**Rounds.** A party's ``rounds`` counts its *receive phases*: a round begins at the
first receive after a send (or after a reset), and receives that follow each other
without a send in between belong to the same round. So a reveal to all costs 1 round
for every party; Beaver multiplication 1; a fixed-point product 2 (Beaver, then
truncation); a reveal to party r 1 round for r and 0 for the senders, who only send.
The rounds of a whole computation are the maximum over parties.

**Depth.** Every frame also carries its sender's Lamport clock: receiving a frame
stamped ``d`` sets the receiver's clock to ``max(own, d + 1)``. ``depth`` is how far
the clock moved since the reset: the length of the longest chain of messages, each
waiting for the previous, that this party's view depends on (the latency-critical
path). It can exceed the rounds of the operations since the reset when parties
entered them out of step (after a ``share``, the receivers are one step ahead).

Messages with the dealer, and any message moved inside ``party.offline()`` (e.g. the
two parties' Paillier preprocessing), are offline (correlated randomness can be made
before the inputs exist): they are counted apart and move neither rounds nor depth.
"""

from __future__ import annotations

import time


class CommStats:
    """Counters for one party: online and offline traffic, rounds, offline time."""

    def __init__(self) -> None:
        self.depth = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the Lamport clock keeps running; depth counts from here)."""
        self._depth_at_reset = self.depth
        self.rounds = 0
        self._sent_since_receive = True
        self.bytes_sent = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.offline_bytes_sent = 0
        self.offline_bytes_received = 0
        self.offline_messages = 0
        self.offline_seconds = 0.0
        self._started = time.perf_counter()

    def on_send(self, nbytes: int, offline: bool) -> int:
        """Count a frame of ``nbytes`` leaving; return the depth to stamp on it."""
        if offline:
            self.offline_bytes_sent += nbytes
            self.offline_messages += 1
        else:
            self.bytes_sent += nbytes
            self.messages_sent += 1
            self._sent_since_receive = True
        return self.depth

    def on_receive(self, nbytes: int, depth: int, offline: bool) -> None:
        """Count a frame of ``nbytes`` arriving with the sender's ``depth``."""
        if offline:
            self.offline_bytes_received += nbytes
            self.offline_messages += 1
        else:
            self.bytes_received += nbytes
            self.messages_received += 1
            self.depth = max(self.depth, depth + 1)
            if self._sent_since_receive:
                self.rounds += 1
                self._sent_since_receive = False

    def as_dict(self) -> dict[str, float]:
        """A snapshot: ``bytes`` (sent), ``rounds``, and the detailed counters."""
        return {
            "bytes": self.bytes_sent,
            "rounds": self.rounds,
            "depth": self.depth - self._depth_at_reset,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "offline_bytes_sent": self.offline_bytes_sent,
            "offline_bytes_received": self.offline_bytes_received,
            "offline_messages": self.offline_messages,
            "offline_seconds": self.offline_seconds,
            "seconds": time.perf_counter() - self._started,
        }

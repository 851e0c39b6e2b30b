"""Server-side aggregation: clients secret-share their updates to non-colluding servers, which add the shares they
hold and open only the sum.

This is the two-server model of Prio (Corrigan-Gibbs & Boneh, NSDI 2017, Sec. 3), for any registered protocol that
takes outsourced inputs (:meth:`smpc.mpc.interfaces.Protocol.client_messages`): with ``"additive"`` the servers hold
additive shares, with ``"aby3"`` three servers hold ABY3's replicated shares (Mohassel & Rindal, CCS 2018,
Sec. 2.1). Shares are seed-compressed: every share but one is the AES key stream (:class:`smpc.ring.prg.PRG`) of a
fresh 16-byte key that the client sends in its place, so a client uploads one ring vector in all (plus keys). The
servers learn the sum only, as long as they do not collude beyond the protocol's threshold (see the protocol's
``security`` in :func:`smpc.protocols`); a client can shift the sum by anything it likes (no range proofs here).

:func:`aggregate` runs the clients in this process one after another and the servers as the parties of one
``smpc.launch``: a client's messages reach the servers as arguments of the launched program (in a deployment each
client sends them over its own TLS connection to each server), so their bytes are counted from their sizes; the
servers' own traffic (opening the sum) is counted on the wire.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from smpc.api import launch, make_protocol
from smpc.mpc import registry
from smpc.ring import PRG, encode
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS
from smpc.ring.prg import fresh_key

Message = bytes | np.ndarray  # a PRG key standing for a share, or the share itself


def servers_of(protocol: str) -> int:
    """How many servers aggregate with ``protocol``: its usual party count (2 for additive, 3 for aby3)."""
    return registry.get(protocol).bench_parties


def client_messages(update: np.ndarray, protocol: str, frac_bits: int = DEFAULT_FRAC_BITS) -> list[list[Message]]:
    """What one client sends each server: ``messages[server]`` lists that server's share components."""
    servers = servers_of(protocol)
    ring = encode(np.asarray(update, dtype=np.float64), frac_bits)
    return make_protocol(protocol, servers).client_messages(ring, servers, fresh_key)


def message_bytes(messages: list[list[Message]]) -> int:
    """Bytes a client uploads (keys and ring vectors, without transport framing)."""
    return sum(len(m) if isinstance(m, bytes) else m.nbytes for server in messages for m in server)


def _component(message: Message, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(message, bytes):
        return PRG(message).random_ring(shape)
    if message.shape != shape or message.dtype != np.uint64:
        raise ValueError(f"a client's share is {message.dtype}{list(message.shape)}, expected uint64{list(shape)}")
    return message


def _server_program(inbox: list[list[list[Message]]], shape: tuple[int, ...], frac_bits: int):
    def program(party):
        start = time.perf_counter()
        totals = None
        for messages in inbox[party.rank]:  # one entry per client
            parts = [_component(m, shape) for m in messages]
            totals = parts if totals is None else [t + p for t, p in zip(totals, parts)]
        party.reset_stats()
        total = party.protocol.from_components(party, tuple(totals), frac_bits).reveal()
        stats = party.stats
        stats["wall"] = time.perf_counter() - start
        return total, stats

    return program


def aggregate(updates: Sequence[np.ndarray], protocol: str) -> dict:
    """Share every update to the protocol's servers, sum and open; the sum and the costs."""
    if not len(updates):
        raise ValueError("aggregate() needs at least one client's update")
    reason = registry.get(protocol).unsupported_reason("outsourced")
    if reason:
        raise ValueError(f"protocol {protocol!r} cannot aggregate clients' shares: {reason}")
    start = time.perf_counter()
    uploads = [client_messages(u, protocol) for u in updates]
    client_seconds = time.perf_counter() - start
    servers = servers_of(protocol)
    inbox = [[upload[s] for upload in uploads] for s in range(servers)]
    report = launch(_server_program(inbox, np.shape(updates[0]), DEFAULT_FRAC_BITS), parties=servers,
                    protocol=protocol)
    results = report.results
    return {"total": results[0][0], "client_seconds": client_seconds,
            "server_seconds": max(stats["wall"] for _, stats in results),
            "bytes_per_client": float(np.mean([message_bytes(u) for u in uploads])),
            "bytes_per_party": max(stats["bytes_sent"] for _, stats in results),
            "rounds": max(stats["rounds"] for _, stats in results)}


def error_bound(clients: int, frac_bits: int = DEFAULT_FRAC_BITS) -> float:
    """Each client's encoding rounds by at most half a unit; the ring sum and its decoding are exact."""
    return clients * 2.0 ** -(frac_bits + 1)

"""The additive and aby3 cells of the aggregation row: clients secret-share their updates to non-colluding servers,
which add the shares they hold and open only the sum.

This is the two-server model of Prio (Corrigan-Gibbs & Boneh, NSDI 2017, Sec. 3) with additive shares, and its
three-server form with ABY3's replicated shares (Mohassel & Rindal, CCS 2018, Sec. 2.1): server i holds
(x_i, x_{i+1}). Shares are seed-compressed: every share but one is the AES-CTR stream of a fresh 16-byte key that
the client sends in its place, so a client uploads one ring vector in all.

The clients run in this process one after another (as secure aggregation's clients share this machine's cores);
the servers are the parties of one ``smpc.launch``. A client's messages reach the servers as arguments of the
launched program (in a deployment each client sends them over its own TLS connection to each server), so their
bytes are counted from their sizes; the servers' own traffic (opening the sum) is counted on the wire.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

import smpc
from smpc.mpc.additive import AdditiveTensor
from smpc.mpc.aby3.tensor import ReplicatedTensor
from smpc.ring import PRG, encode
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS
from smpc.ring.prg import fresh_key

SERVERS = {"additive": 2, "aby3": 3}
TENSORS = {"additive": AdditiveTensor, "aby3": ReplicatedTensor}  # what the servers' summed components form
Message = bytes | np.ndarray  # a PRG key standing for a share, or the share itself


def client_messages(update: np.ndarray, protocol: str, frac_bits: int = DEFAULT_FRAC_BITS) -> list[list[Message]]:
    """What one client sends each server: ``messages[server]`` lists that server's share components."""
    ring = encode(update, frac_bits)
    keys = [fresh_key() for _ in range(2 if protocol == "aby3" else SERVERS[protocol] - 1)]
    last = ring
    for key in keys:
        last = last - PRG(key).random_ring(ring.shape)
    if protocol == "additive":
        return [[key] for key in keys] + [[last]]
    first, second = keys  # x = x0 + x1 + x2 with x0, x1 from keys; server i holds (x_i, x_{i+1})
    return [[first, second], [second, last], [last, first]]


def message_bytes(messages: list[list[Message]]) -> int:
    """Bytes a client uploads (keys and ring vectors, without transport framing)."""
    return sum(len(m) if isinstance(m, bytes) else m.nbytes for server in messages for m in server)


def _component(message: Message, shape: tuple[int, ...]) -> np.ndarray:
    return PRG(message).random_ring(shape) if isinstance(message, bytes) else message


def _server_program(inbox: list[list[list[Message]]], shape: tuple[int, ...], frac_bits: int, protocol: str):
    def program(party):
        start = time.perf_counter()
        totals = None
        for messages in inbox[party.rank]:  # one entry per client
            parts = [_component(m, shape) for m in messages]
            totals = parts if totals is None else [t + p for t, p in zip(totals, parts)]
        party.reset_stats()
        shared = TENSORS[protocol](party, tuple(totals), frac_bits)
        total = shared.reveal()
        stats = party.stats
        stats["wall"] = time.perf_counter() - start
        return total, stats

    return program


def aggregate(updates: Sequence[np.ndarray], protocol: str) -> dict:
    """Share every update to the protocol's servers, sum and open; the sum and the costs."""
    start = time.perf_counter()
    uploads = [client_messages(u, protocol) for u in updates]
    client_seconds = time.perf_counter() - start
    servers = SERVERS[protocol]
    inbox = [[upload[s] for upload in uploads] for s in range(servers)]
    report = smpc.launch(_server_program(inbox, updates[0].shape, DEFAULT_FRAC_BITS, protocol), parties=servers,
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

"""The masking graph: which clients share pairwise masks and hold each other's Shamir shares.

Bonawitz et al. (CCS 2017) use the complete graph. SecAgg+ (Bell et al., "Secure
Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020, eprint 2020/704) lets
each client mask with, and share its secrets among, only k neighbours on a random
k-regular graph. Ours is the Harary graph H(k, n) on a random cyclic order of the
clients: each client links to the k // 2 nearest on each side of the cycle, plus the
opposite client when k is odd (n even). For k >= 2, H(k, n) is k-connected, so fewer than k
dropouts never split the survivors; the server still checks connectivity before
unmasking, since a split would reveal the partial sum of each part. Choosing k is the
caller's part: Bell et al. show k = O(log n) keeps an honest majority in every
neighbourhood w.h.p. for constant fractions of corrupt and dropped clients.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Callable, Iterable, Mapping


def graph_degree(n_clients: int, neighbours: int | None = None) -> int:
    """The degree of every client: ``n_clients - 1`` for the complete graph (``neighbours=None``).

    An odd ``neighbours`` with an odd ``n_clients`` is rounded up (no k-regular graph
    has an odd number of odd-degree vertices).
    """
    if not isinstance(n_clients, int) or isinstance(n_clients, bool) or n_clients < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {n_clients!r}")
    if neighbours is None:
        return n_clients - 1
    low = min(2, n_clients - 1)  # degree 1 is a matching: never connected beyond 2 clients
    if not isinstance(neighbours, int) or isinstance(neighbours, bool) or not low <= neighbours <= n_clients - 1:
        raise ValueError(f"neighbours must be an integer in {low}..{n_clients - 1} for {n_clients} clients, "
                         f"got {neighbours!r}")
    if neighbours % 2 and n_clients % 2:
        return neighbours + 1
    return neighbours


def neighbour_graph(
    n_clients: int, neighbours: int | None = None, randbytes: Callable[[int], bytes] = os.urandom
) -> list[tuple[int, ...]]:
    """Each client's neighbours (sorted client indices): complete, or H(k, n) on a random order."""
    degree = graph_degree(n_clients, neighbours)
    if degree == n_clients - 1:
        return [tuple(v for v in range(n_clients) if v != u) for u in range(n_clients)]
    order = _random_permutation(n_clients, randbytes)
    offsets = list(range(1, degree // 2 + 1))
    if degree % 2:
        offsets.append(n_clients // 2)
    links: list[set[int]] = [set() for _ in range(n_clients)]
    for position, client in enumerate(order):
        for offset in offsets:
            other = order[(position + offset) % n_clients]
            links[client].add(other)
            links[other].add(client)
    return [tuple(sorted(s)) for s in links]


def is_connected(nodes: Iterable[int], adjacency: Mapping[int, Iterable[int]]) -> bool:
    """Whether ``nodes`` form one connected piece using only edges between members of ``nodes``."""
    members = set(nodes)
    if not members:
        return True
    start = next(iter(members))
    seen = {start}
    queue = deque([start])
    while queue:
        for other in adjacency[queue.popleft()]:
            if other in members and other not in seen:
                seen.add(other)
                queue.append(other)
    return seen == members


def _random_permutation(n: int, randbytes: Callable[[int], bytes]) -> list[int]:
    items = list(range(n))
    for i in range(n - 1, 0, -1):  # Fisher-Yates
        j = _below(i + 1, randbytes)
        items[i], items[j] = items[j], items[i]
    return items


def _below(bound: int, randbytes: Callable[[int], bytes]) -> int:
    limit = (1 << 64) - (1 << 64) % bound  # reject the incomplete last block: no modulo bias
    while True:
        value = int.from_bytes(randbytes(8), "big")
        if value < limit:
            return value % bound

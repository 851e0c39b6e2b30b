"""Random-offset one-hot rows for three-party replicated sharing, made by the parties without a dealer.

The offset is r = t_0 + t_1 + t_2 where t_j comes from the PRG of the two parties that hold component j
(parties j and j-1), so (t_0, t_1, t_2) is already a replicated sharing of r and no party knows r. The
one-hot of r starts as the one-hot of t_0 in component 0 (known to its two holders) and is rotated by t_1,
then by t_2. Rotating by t_j, known to the pair A = j, B = j-1 but not to C = j+1: between them A and B
hold every component, so they rotate all three, and re-share the result with fresh components for C from
the PRGs they each share with C (u_{j+1} with A, u_{j-1} with B); A and B then swap one masked component
each to agree on u_j = rotated - u_{j+1} - u_{j-1}. What each receives is masked by a PRG stream it does
not know, and C receives nothing: the re-randomising reshare of Araki et al., CCS 2016 (section 2), with
a permutation the pair applies before re-sharing, as in the three-party shuffles of Mohassel, Rindal and
Rosulek (ACNS 2020, section 4).

Cost: two rounds between the rotating pairs (offline: independent of the data), count 2^bits words
each way per rotation, nothing for the third party to send.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.one_hot import one_hot_rows
from smpc.ring.lookup import rotate_rows
from smpc.ring.arith import wrapping

PARTIES = 3


def random_one_hot(party, count: int, bits: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """This party's replicated components of random offsets r (``count``) and of their one-hot rows."""
    rank = party.rank
    offsets = _pair_offsets(party, count)
    # component j holds t_j; party i holds components (i, i+1)
    mine = {rank: offsets[rank], (rank + 1) % PARTIES: offsets[(rank + 1) % PARTIES]}
    rows = {j: np.zeros((count, 1 << bits), np.uint64) for j in mine}
    if 0 in mine:
        rows[0] = one_hot_rows(mine[0], bits)
    with party.offline():
        for j in (1, 2):
            rows = _rotate_and_reshare(party, rows, j, mine.get(j))
    first, second = rank, (rank + 1) % PARTIES
    return (offsets[first], offsets[second]), (rows[first], rows[second])


def _pair_offsets(party, count: int) -> dict[int, np.ndarray]:
    """t_j for the two components this party holds, from the PRG it shares with the other holder."""
    rank = party.rank
    return {
        rank: party.pair_prg((rank - 1) % PARTIES).random_ring((count,)),  # component i: parties i and i-1
        (rank + 1) % PARTIES: party.pair_prg((rank + 1) % PARTIES).random_ring((count,)),  # i+1: parties i, i+1
    }


@wrapping
def _rotate_and_reshare(party, rows: dict, j: int, shift: np.ndarray | None) -> dict:
    """Rotate the shared rows by t_j (known to parties j and j-1) and re-share them (module docstring)."""
    rank, shape = party.rank, next(iter(rows.values())).shape
    a, b, c = j, (j - 1) % PARTIES, (j + 1) % PARTIES
    after, before = (j + 1) % PARTIES, (j - 1) % PARTIES  # component indices j+1, j-1
    if rank == c:  # holds components j+1 and j-1: both become fresh PRG streams
        return {after: party.pair_prg(a).random_ring(shape), before: party.pair_prg(b).random_ring(shape)}
    # a holds components j and j+1 and re-randomises j+1 with c; b holds j-1 and j and re-randomises j-1 with c
    other, partner = (after, b) if rank == a else (before, a)
    fresh = party.pair_prg(c).random_ring(shape)  # u_other
    masked = rotate_rows(rows[other], shift)
    masked -= fresh
    party.send(partner, masked)
    own = rotate_rows(rows[j], shift)
    own += masked
    own += party.recv_like(partner, shape)  # the partner's masked rotation of the component this party lacks
    return {j: own, other: fresh}

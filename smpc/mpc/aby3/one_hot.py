"""Random-offset one-hot rows for three-party replicated sharing, made by the parties without a dealer.

The offset is r = t_0 + t_1 + t_2 where t_j comes from the PRG of the two parties that hold component j
(parties j and j-1), so (t_0, t_1, t_2) is already a replicated sharing of r and no party knows r. Its one-hot
e_r is the one-hot of t_0 rotated by t_1, then by t_2; each rotation is done by the two parties that know its
shift and re-shared with fresh components for the third, as in the re-randomising reshare of Araki et al.,
CCS 2016 (section 2), with a permutation the pair applies before re-sharing (the three-party shuffles of
Mohassel, Rindal and Rosulek, ACNS 2020, section 4). With u_j and u'_j PRG streams of component j's two holders:

1. Rotation by t_1 (parties 0 and 1 know it, party 2 does not). Party 0 knows t_0 + t_1, so it makes
   e(t_0 + t_1) itself and sends party 1 the masked e(t_0 + t_1) - u_0; party 1 sets component 1 to that minus
   u_2. Components 0 and 2 are u_0 and u_2 (party 2 holds both). Party 0 keeps no component 1: in step 2 its
   two components become fresh streams, so nothing is sent to it.
2. Rotation by t_2 (parties 1 and 2 know it, party 0 does not). Between them parties 1 and 2 hold every
   component; party 0's components become u'_0 and u'_1. Party 2 sends party 1 rot(c_0) - u'_0, party 1 sends
   party 2 rot(c_1) - u'_1, and both set component 2 to rot(c_2) plus both messages, so that the three sum to
   the rotated e(t_0 + t_1): e_r.

What each party receives is masked by a stream it does not know (party 1: u_0, then u'_0; party 2: u'_1), and
party 0 receives nothing. The messages are streamed in chunks of at most :data:`CHUNK_WORDS` words, each party
sending chunk k + 1 before it reads the partner's chunk k (so each step costs one trip's latency and its
transfer), and every party writes its components in place: it holds its two components (2 count 2^bits words)
and a few chunks, never a copy of a whole component or message.

Cost (offline: independent of the data): count 2^bits words from party 0 to party 1, then count 2^bits words
each way between parties 1 and 2, in two rounds; the frames' headers add 36 bytes per chunk.
"""

from __future__ import annotations

import numpy as np

from smpc.mpc.one_hot import one_hot_rows
from smpc.ring.arith import wrapping
from smpc.ring.lookup import rotate_rows

PARTIES = 3
#: the most words in one streamed message (32 MiB): a chunk of rows, never less than one row
CHUNK_WORDS = 1 << 22


def random_one_hot(party, count: int, bits: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """This party's replicated components of random offsets r (``count``) and of their one-hot rows."""
    rank = party.rank
    offsets = _pair_offsets(party, count)
    first, second = rank, (rank + 1) % PARTIES  # party i holds components (i, i+1)
    shape = (count, 1 << bits)
    with party.offline():
        if rank == 0:
            _send_first_rotation(party, offsets[0], offsets[1], shape)
            rows = (party.pair_prg(2).random_ring(shape), party.pair_prg(1).random_ring(shape))  # u'_0, u'_1
        elif rank == 1:
            rows = _receive_first_rotation(party, shape)
            _second_rotation(party, rows, 0, offsets[2])
        else:
            rows = (party.pair_prg(1).random_ring(shape), party.pair_prg(0).random_ring(shape))  # u_2, u_0
            _second_rotation(party, rows, 1, offsets[2])
    return (offsets[first], offsets[second]), rows


def _pair_offsets(party, count: int) -> dict[int, np.ndarray]:
    """t_j for the two components this party holds, from the PRG it shares with the other holder."""
    rank = party.rank
    return {
        rank: party.pair_prg((rank - 1) % PARTIES).random_ring((count,)),  # component i: parties i and i-1
        (rank + 1) % PARTIES: party.pair_prg((rank + 1) % PARTIES).random_ring((count,)),  # i+1: parties i, i+1
    }


def _spans(shape: tuple[int, int]) -> list[slice]:
    """The row ranges of the streamed chunks."""
    count, width = shape
    rows = max(1, CHUNK_WORDS // width)
    return [slice(start, min(start + rows, count)) for start in range(0, count, rows)]


@wrapping
def _send_first_rotation(party, t_0: np.ndarray, t_1: np.ndarray, shape: tuple[int, int]) -> None:
    """Party 0, step 1: e(t_0 + t_1) - u_0 to party 1, chunk by chunk (u_0 from the PRG shared with party 2)."""
    bits = shape[1].bit_length() - 1
    for span in _spans(shape):
        masked = one_hot_rows(t_0[span] + t_1[span], bits)
        masked -= party.pair_prg(2).random_ring(masked.shape)
        party.send(1, masked)


@wrapping
def _receive_first_rotation(party, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Party 1, step 1: components 1 (party 0's message minus u_2) and 2 (u_2, shared with party 2)."""
    u_2 = party.pair_prg(2).random_ring(shape)
    component = np.empty(shape, np.uint64)
    for span in _spans(shape):
        np.subtract(party.recv_like(0, component[span].shape), u_2[span], out=component[span])
    return component, u_2


@wrapping
def _second_rotation(party, rows: tuple[np.ndarray, np.ndarray], passed: int, t_2: np.ndarray) -> None:
    """Parties 1 and 2, step 2, in place: ``rows[passed]`` (component 1 at party 1, 0 at party 2) is rotated by
    t_2, masked by a stream shared with party 0 and sent to the partner, and becomes that stream; component 2
    becomes rot(c_2) plus both parties' messages. Each chunk goes out before the partner's previous one is read."""
    partner = 3 - party.rank
    passing, kept = rows[passed], rows[1 - passed]
    previous = None
    for span in _spans(passing.shape):
        fresh = party.pair_prg(0).random_ring(passing[span].shape)  # u'_1 at party 1, u'_0 at party 2
        masked = rotate_rows(passing[span], t_2[span])
        masked -= fresh
        passing[span] = fresh
        party.send(partner, masked)
        if previous is not None:
            _add_rotation(party, partner, kept, t_2, *previous)
        previous = span, masked
    if previous is not None:
        _add_rotation(party, partner, kept, t_2, *previous)


@wrapping
def _add_rotation(party, partner: int, kept: np.ndarray, t_2: np.ndarray, span: slice, masked: np.ndarray) -> None:
    """Component 2's rows ``span``: rot(c_2) plus this party's message and the partner's."""
    total = rotate_rows(kept[span], t_2[span])
    total += masked
    total += party.recv_like(partner, masked.shape)
    kept[span] = total

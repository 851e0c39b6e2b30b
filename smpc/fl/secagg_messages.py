"""The messages of secure aggregation: numpy frames built and checked in one place.

Endpoint 0 is the server, endpoint ``c + 1`` is client ``c``; clients talk only to the
server (Bonawitz et al., CCS 2017, section 4: the server relays everything). Before
each of rounds 1-3 the server sends a client a two-int64 *go* frame ``[round, status]``
(status 0: the run was aborted, the client stops). Every received array is checked for
dtype, shape and content before use; a failure raises :class:`MalformedMessageError`
naming the sender and the message, never the values.

=====  ==========================  =====================================================
round  client -> server            server -> client
=====  ==========================  =====================================================
0      uint8[64] c_PK | s_PK       go; int64[m] neighbour ids; uint8[m, 64] their keys
1      uint8[m, 168] encrypted     go; int64[m'] senders (subset of the neighbours);
       shares, neighbour order     uint8[m', 168] their encrypted shares for this client
2      ring[size] masked update    go; uint8[m'] 1 = sender sent its update, 0 = dropped
3      uint8[m' + 1, 66] shares    (nothing)
=====  ==========================  =====================================================

Round 3's first row is the client's share of its own self-mask seed; row j + 1 holds
the share of sender j's seed b if the flag is 1, of its mask key s_SK if 0.
"""

from __future__ import annotations

import numpy as np

from smpc.exceptions import PeerFinished
from smpc.fl import shamir
from smpc.fl.secagg_crypto import CIPHERTEXT_BYTES, PUBLIC_BYTES
from smpc.fl.secagg_errors import MalformedMessageError
from smpc.fl.shamir import SHARE_BYTES

SERVER = 0
ROUND_ADVERTISE, ROUND_SHARE, ROUND_MASKED, ROUND_UNMASK = 0, 1, 2, 3


def endpoint_of(client: int) -> int:
    """The endpoint (party rank) of client ``client``."""
    return client + 1


def name_of(endpoint: int) -> str:
    """``the server`` or ``client c``."""
    return "the server" if endpoint == SERVER else f"client {endpoint - 1}"


def recv_checked(party, peer: int, shape: tuple, dtype, what: str) -> np.ndarray:
    """The next array from ``peer``, which must have ``dtype`` and ``shape`` (None: any length)."""
    array = party.recv(peer)
    fits = array.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, array.shape))
    if array.dtype != np.dtype(dtype) or not fits:
        expected = "[" + ", ".join("m" if s is None else str(s) for s in shape) + "]"
        got = f"{array.dtype}{list(array.shape)}"
        raise MalformedMessageError(peer, f"{name_of(peer)} sent {got} as {what}, expected {np.dtype(dtype)}{expected}")
    return array


def _reject(peer: int, problem: str) -> MalformedMessageError:
    return MalformedMessageError(peer, f"{name_of(peer)} sent {problem}")


# --- the go frame ----------------------------------------------------------------------------
def send_go(party, client: int, round_no: int, proceed: bool = True) -> None:
    """Tell a client whether round ``round_no`` goes ahead."""
    party.send(endpoint_of(client), np.array([round_no, int(proceed)], dtype=np.int64))


def recv_go(party, round_no: int) -> bool:
    """True if the server goes on with ``round_no``; False if it aborted or ended the run without us."""
    try:
        frame = recv_checked(party, SERVER, (2,), np.int64, "a round header")
    except PeerFinished:
        return False
    if int(frame[0]) != round_no or int(frame[1]) not in (0, 1):
        raise _reject(SERVER, f"a header for round {int(frame[0])} with status {int(frame[1])}, "
                              f"expected round {round_no}")
    return bool(frame[1])


# --- round 0: AdvertiseKeys --------------------------------------------------------------------
def send_public_keys(party, advertised: bytes) -> None:
    """Client: advertise c_PK | s_PK."""
    party.send(SERVER, np.frombuffer(advertised, dtype=np.uint8))


def recv_public_keys(party, client: int) -> bytes:
    """Server: one client's 64 advertised key bytes."""
    return recv_checked(party, endpoint_of(client), (PUBLIC_BYTES,), np.uint8, "its public keys").tobytes()


def send_neighbours(party, client: int, ids: list[int], keys: list[bytes]) -> None:
    """Server: a client's neighbours (sorted) and their advertised keys."""
    party.send(endpoint_of(client), np.array(ids, dtype=np.int64))
    rows = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(ids), PUBLIC_BYTES)
    party.send(endpoint_of(client), rows)


def recv_neighbours(party, me: int, n_clients: int, degree: int, own_keys: bytes) -> tuple[list[int], list[bytes]]:
    """Client: neighbour ids (sorted, distinct, in range, not ``me``, at most ``degree``) and distinct keys."""
    ids = recv_checked(party, SERVER, (None,), np.int64, "the neighbour list")
    if len(ids) > degree:
        raise _reject(SERVER, f"{len(ids)} neighbours, more than the graph's degree {degree}")
    _check_ids(ids.tolist(), range(n_clients), me, "neighbour list")
    rows = recv_checked(party, SERVER, (len(ids), PUBLIC_BYTES), np.uint8, "the neighbours' keys")
    keys = [row.tobytes() for row in rows]
    halves = [own_keys[:32], own_keys[32:]] + [k[:32] for k in keys] + [k[32:] for k in keys]
    if len(set(halves)) != len(halves):
        raise _reject(SERVER, "public keys that repeat (Bonawitz et al. require all keys distinct)")
    return ids.tolist(), keys


# --- round 1: ShareKeys ------------------------------------------------------------------------
def send_encrypted_shares(party, blobs: list[bytes]) -> None:
    """Client: one encrypted share pair per neighbour, in neighbour order."""
    party.send(SERVER, np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), CIPHERTEXT_BYTES))


def recv_encrypted_shares(party, client: int, count: int) -> np.ndarray:
    """Server: a client's ``count`` encrypted share pairs."""
    return recv_checked(party, endpoint_of(client), (count, CIPHERTEXT_BYTES), np.uint8, "its encrypted shares")


def send_routed_shares(party, client: int, senders: list[int], rows: list[np.ndarray]) -> None:
    """Server: the encrypted shares addressed to ``client``, with who sent each."""
    party.send(endpoint_of(client), np.array(senders, dtype=np.int64))
    party.send(endpoint_of(client), np.stack(rows) if rows else np.zeros((0, CIPHERTEXT_BYTES), np.uint8))


def recv_routed_shares(party, me: int, neighbours: list[int]) -> tuple[list[int], list[bytes]]:
    """Client: senders (a sorted subset of its neighbours) and their encrypted shares."""
    senders = recv_checked(party, SERVER, (None,), np.int64, "the list of share senders").tolist()
    _check_ids(senders, set(neighbours), me, "list of share senders")
    rows = recv_checked(party, SERVER, (len(senders), CIPHERTEXT_BYTES), np.uint8, "the routed shares")
    return senders, [row.tobytes() for row in rows]


# --- round 2: MaskedInputCollection ------------------------------------------------------------
def recv_masked(party, client: int, size: int, dtype) -> np.ndarray:
    """Server: a client's masked update."""
    return recv_checked(party, endpoint_of(client), (size,), dtype, "its masked update")


def send_unmask_request(party, client: int, flags: list[bool]) -> None:
    """Server: for each of the client's share senders, 1 if it sent its masked update."""
    party.send(endpoint_of(client), np.array(flags, dtype=np.uint8))


def recv_unmask_request(party, count: int) -> list[bool]:
    """Client: the ``count`` survival flags (values 0 or 1 only)."""
    flags = recv_checked(party, SERVER, (count,), np.uint8, "the survivor flags")
    if np.any(flags > 1):
        raise _reject(SERVER, "survivor flags other than 0 and 1")
    return [bool(f) for f in flags]


# --- round 3: Unmasking ------------------------------------------------------------------------
def send_share_rows(party, rows: list[bytes]) -> None:
    """Client: its own self-mask share, then one share per sender."""
    party.send(SERVER, np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), SHARE_BYTES))


def recv_share_rows(party, client: int, count: int) -> list[int]:
    """Server: ``count`` Shamir shares from a client, each checked to be a field element."""
    rows = recv_checked(party, endpoint_of(client), (count, SHARE_BYTES), np.uint8, "its unmasking shares")
    try:
        return [shamir.decode_share(row.tobytes()) for row in rows]
    except shamir.ShamirError:
        raise _reject(endpoint_of(client), "an unmasking share that is not a field element") from None


def _check_ids(ids: list[int], allowed, me: int, what: str) -> None:
    if any(b <= a for a, b in zip(ids, ids[1:])):
        raise _reject(SERVER, f"a {what} that is not sorted and distinct")
    if any(i not in allowed or i == me for i in ids):
        raise _reject(SERVER, f"a {what} naming a client that may not be on it")

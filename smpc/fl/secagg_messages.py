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
0      uint8[128] c_PK | s_PK |    go; int64[m] neighbour ids; uint8[m, 128] their keys
       signature                   and signatures
1      uint8[m, 168] encrypted     go; int64[m'] senders (subset of the neighbours);
       shares, neighbour order     uint8[m', 168] their encrypted shares for this client
2      ring[size] masked update    go; int64[u] survivor list U3 (every client whose
                                   masked update arrived, sorted)
3      uint8[64] signature of U3   go; int64[c] confirming clients of this client's
                                   neighbourhood; uint8[c, 64] their signatures of U3
4      uint8[m' + 1, 66] shares    (nothing)
=====  ==========================  =====================================================

Signatures are Ed25519 under each client's enrolled key (:mod:`smpc.fl.secagg_identity`), over the
run's session id and the signed content.

Round 4's first row is the client's share of its own self-mask seed; row j + 1 holds
the share of sender j's seed b if sender j is in U3, of its mask key s_SK if not.
"""

from __future__ import annotations

import numpy as np

from smpc.exceptions import PeerFinished
from smpc.fl import shamir
from smpc.fl.secagg_crypto import CIPHERTEXT_BYTES, PUBLIC_BYTES
from smpc.fl.secagg_errors import MalformedMessageError
from smpc.fl.secagg_identity import SIGNATURE_BYTES
from smpc.fl.shamir import SHARE_BYTES

SERVER = 0
ROUND_ADVERTISE, ROUND_SHARE, ROUND_MASKED, ROUND_CHECK, ROUND_UNMASK = 0, 1, 2, 3, 4
#: a client's advertisement: c_PK | s_PK and its signature
ADVERTISED_BYTES = PUBLIC_BYTES + SIGNATURE_BYTES


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
    """Client: advertise c_PK | s_PK | signature."""
    party.send(SERVER, np.frombuffer(advertised, dtype=np.uint8))


def recv_public_keys(party, client: int) -> tuple[bytes, bytes]:
    """Server: one client's 64 advertised key bytes and their 64-byte signature."""
    row = recv_checked(party, endpoint_of(client), (ADVERTISED_BYTES,), np.uint8, "its public keys").tobytes()
    return row[:PUBLIC_BYTES], row[PUBLIC_BYTES:]


def send_neighbours(party, client: int, ids: list[int], rows: list[bytes]) -> None:
    """Server: a client's neighbours (sorted) and their advertisements (keys and signature)."""
    party.send(endpoint_of(client), np.array(ids, dtype=np.int64))
    party.send(endpoint_of(client), np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(ids), ADVERTISED_BYTES))


def recv_neighbours(party, me: int, n_clients: int, degree: int,
                    own_keys: bytes) -> tuple[list[int], list[bytes], list[bytes]]:
    """Client: neighbour ids (sorted, distinct, in range, not ``me``, at most ``degree``), their distinct keys
    and the signatures that came with them (checked by the caller against the enrolment)."""
    ids = recv_checked(party, SERVER, (None,), np.int64, "the neighbour list")
    if len(ids) > degree:
        raise _reject(SERVER, f"{len(ids)} neighbours, more than the graph's degree {degree}")
    _check_ids(ids.tolist(), range(n_clients), me, "neighbour list")
    rows = recv_checked(party, SERVER, (len(ids), ADVERTISED_BYTES), np.uint8, "the neighbours' keys")
    keys = [row[:PUBLIC_BYTES].tobytes() for row in rows]
    halves = [own_keys[:32], own_keys[32:]] + [k[:32] for k in keys] + [k[32:] for k in keys]
    if len(set(halves)) != len(halves):
        raise _reject(SERVER, "public keys that repeat (Bonawitz et al. require all keys distinct)")
    return ids.tolist(), keys, [row[PUBLIC_BYTES:].tobytes() for row in rows]


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


def send_survivors(party, client: int, survivors: list[int]) -> None:
    """Server: the survivor list U3, every client whose masked update arrived (sorted)."""
    party.send(endpoint_of(client), np.array(survivors, dtype=np.int64))


def recv_survivors(party, me: int, n_clients: int) -> list[int]:
    """Client: U3, sorted, distinct, of client ids, and naming this client (it sent its update)."""
    survivors = recv_checked(party, SERVER, (None,), np.int64, "the survivor list").tolist()
    _check_ids(survivors, range(n_clients), -1, "survivor list")
    if me not in survivors:
        raise _reject(SERVER, "a survivor list without this client, which sent its masked update")
    return survivors


# --- round 3: ConsistencyCheck -----------------------------------------------------------------
def send_signature(party, signature: bytes) -> None:
    """Client: its signature of the survivor list."""
    party.send(SERVER, np.frombuffer(signature, dtype=np.uint8))


def recv_signature(party, client: int) -> bytes:
    """Server: a client's 64-byte signature of the survivor list."""
    return recv_checked(party, endpoint_of(client), (SIGNATURE_BYTES,), np.uint8, "its signature").tobytes()


def send_confirmations(party, client: int, signers: list[int], signatures: list[bytes]) -> None:
    """Server: which clients of ``client``'s neighbourhood confirmed U3, and their signatures."""
    party.send(endpoint_of(client), np.array(signers, dtype=np.int64))
    rows = np.frombuffer(b"".join(signatures), dtype=np.uint8).reshape(len(signers), SIGNATURE_BYTES)
    party.send(endpoint_of(client), rows)


def recv_confirmations(party, group: set[int]) -> tuple[list[int], list[bytes]]:
    """Client: the confirming clients (sorted, distinct, of its neighbourhood ``group``) and their signatures."""
    signers = recv_checked(party, SERVER, (None,), np.int64, "the list of confirming clients").tolist()
    _check_ids(signers, group, -1, "list of confirming clients")
    rows = recv_checked(party, SERVER, (len(signers), SIGNATURE_BYTES), np.uint8, "the confirmations")
    return signers, [row.tobytes() for row in rows]


# --- round 4: Unmasking ------------------------------------------------------------------------
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

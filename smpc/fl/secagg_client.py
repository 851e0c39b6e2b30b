"""The client side of secure aggregation (Bonawitz et al., CCS 2017, figure 4, with the signatures and the
consistency check of its active-adversary version)."""

from __future__ import annotations

import numpy as np

from smpc.fl import shamir
from smpc.fl import secagg_messages as msg
from smpc.fl.secagg_config import SecAggConfig
from smpc.fl.secagg_crypto import (
    ClientKeys,
    KeyAgreementError,
    ShareDecryptionError,
    decrypt_shares,
    encrypt_shares,
    expand_mask,
    mask_seed,
    private_to_int,
    share_key,
    split_public,
)
from smpc.fl.secagg_errors import MalformedMessageError
from smpc.fl.secagg_identity import Enrolment, keys_statement, sign, survivors_statement
from smpc.fl.secagg_quantize import quantize, ring_dtype
from smpc.net.party import Party
from smpc.ring.prg import fresh_key


def run_client(party: Party, me: int, config: SecAggConfig, update: np.ndarray, signing_key: bytes) -> None:
    """Take part in one aggregation as client ``me`` with its float ``update``, signing with ``signing_key``
    (its enrolled long-term Ed25519 key, :mod:`smpc.fl.secagg_identity`).

    1. AdvertiseKeys: send c_PK | s_PK, signed; receive the neighbours' keys and refuse any whose
       signature does not verify under that neighbour's enrolled key (a substituted key).
    2. ShareKeys: draw the self-mask seed b (16 bytes, os.urandom); Shamir-share s_SK and b
       (threshold t) among itself and its neighbours; send each neighbour's shares
       encrypted under the c-key agreed with it. A client in ``drop_before`` stops here.
    3. MaskedInputCollection: y = x + PRG(b) + sum over neighbours v that shared,
       +PRG(s_uv) if me < v else -PRG(s_uv), in Z_2^32; send y. A client in ``drop_after``
       stops here.
    4. ConsistencyCheck: receive the survivor list U3 and sign it; receive the signatures of
       U3 from the clients of its neighbourhood that confirmed it, and refuse to go on unless
       at least t of them (itself included) signed this very list.
    5. Unmasking: for each neighbour, reveal its share of b_v if v is in U3, of s_v^SK if
       not (never both), plus its share of its own b.
    """
    enrolment = config.required_enrolment()
    keys = ClientKeys.generate()
    advertised = keys.public_bytes()
    msg.send_public_keys(party, advertised + sign(signing_key, keys_statement(config.session, me, advertised)))
    if not msg.recv_go(party, msg.ROUND_SHARE):
        return
    neighbours, their_keys, signatures = msg.recv_neighbours(party, me, config.n_clients, config.degree, advertised)
    for v, key, signature in zip(neighbours, their_keys, signatures):
        if not enrolment.verifies(v, signature, keys_statement(config.session, v, key)):
            raise MalformedMessageError(msg.SERVER, f"the server relayed public keys for client {v} that client {v} "
                                                    f"did not sign (its enrolled key): key substitution refused")
    _check_count(len(neighbours) + 1, config.threshold, "neighbours")
    public = {v: split_public(k) for v, k in zip(neighbours, their_keys)}

    seed = fresh_key()
    holders = [me, *neighbours]
    points = [h + 1 for h in holders]
    s_shares = shamir.split(private_to_int(keys.masking), config.threshold, points)
    b_shares = shamir.split(int.from_bytes(seed, "big"), config.threshold, points)
    blobs = [
        encrypt_shares(_agree(share_key, keys.encryption, public[v][0], me, v), me, v, s_shares[j], b_shares[j])
        for j, v in enumerate(holders) if v != me
    ]
    msg.send_encrypted_shares(party, blobs)
    if me in config.drop_before:
        return

    if not msg.recv_go(party, msg.ROUND_MASKED):
        return
    senders, routed = msg.recv_routed_shares(party, me, neighbours)
    _check_count(len(senders) + 1, config.threshold, "share senders")
    held = {v: _open(keys, public[v][0], v, me, blob) for v, blob in zip(senders, routed)}
    masked = _mask(quantize(update, config.clip, config.frac_bits, config.ring_bits), seed, keys, me, senders,
                   public, config)
    party.send(msg.SERVER, masked)
    if me in config.drop_after:
        return

    if not msg.recv_go(party, msg.ROUND_CHECK):
        return
    survivors = msg.recv_survivors(party, me, config.n_clients)
    statement = survivors_statement(config.session, survivors)
    msg.send_signature(party, sign(signing_key, statement))
    if not msg.recv_go(party, msg.ROUND_UNMASK):
        return
    _check_confirmations(party, enrolment, statement, {me, *neighbours}, config.threshold)
    alive = set(survivors)
    flags = [v in alive for v in senders]
    _check_count(sum(flags) + 1, config.threshold, "surviving neighbours")
    rows = [shamir.encode_share(b_shares[0])]
    rows += [held[v][1] if alive else held[v][0] for v, alive in zip(senders, flags)]
    msg.send_share_rows(party, rows)


def _check_confirmations(party, enrolment: Enrolment, statement: bytes, group: set[int], threshold: int) -> None:
    """At least ``threshold`` clients of the neighbourhood signed the survivor list this client was shown
    (Bonawitz et al., ConsistencyCheck): else the server told clients different lists, or too few confirmed."""
    signers, signatures = msg.recv_confirmations(party, group)
    for signer, signature in zip(signers, signatures):
        if not enrolment.verifies(signer, signature, statement):
            raise MalformedMessageError(msg.SERVER, f"client {signer}'s confirmation is not its signature of the "
                                                    f"survivor list this client was shown: the server announced "
                                                    f"different survivor lists to different clients")
    _check_count(len(signers), threshold, "clients of its neighbourhood confirming the survivor list")



def _mask(encoded: np.ndarray, seed: bytes, keys: ClientKeys, me: int, senders: list[int], public: dict,
          config: SecAggConfig) -> np.ndarray:
    """x + PRG(b) + the signed pairwise masks (Bonawitz et al., section 4, double masking); each expanded once."""
    dtype = ring_dtype(config.ring_bits)
    np.add(encoded, expand_mask(seed, config.size, dtype), out=encoded)
    for v in senders:
        pairwise = expand_mask(_agree(mask_seed, keys.masking, public[v][1], me, v), config.size, dtype)
        (np.add if me < v else np.subtract)(encoded, pairwise, out=encoded)
    return encoded


def _open(keys: ClientKeys, sender_public: bytes, sender: int, me: int, blob: bytes) -> tuple[bytes, bytes]:
    """The (s-share, b-share) ``sender`` encrypted for ``me``, checked to be field elements."""
    try:
        key = _agree(share_key, keys.encryption, sender_public, me, sender)
        s_share, b_share = decrypt_shares(key, sender, me, blob)
        shamir.decode_share(s_share)
        shamir.decode_share(b_share)
    except (ShareDecryptionError, shamir.ShamirError) as exc:
        raise MalformedMessageError(msg.SERVER, f"the server relayed bad shares: {exc}") from None
    return s_share, b_share


def _agree(derive, private, peer_public: bytes, me: int, peer: int) -> bytes:
    try:
        return derive(private, peer_public, me, peer)
    except KeyAgreementError:
        problem = f"the server relayed an unusable public key for client {peer}"
        raise MalformedMessageError(msg.SERVER, problem) from None


def _check_count(have: int, threshold: int, what: str) -> None:
    """Bonawitz et al.: a client aborts when fewer than t clients are left in a round."""
    if have < threshold:
        raise MalformedMessageError(msg.SERVER, f"the server went on with {have} {what} (counting this client), "
                                                f"below the threshold {threshold}")

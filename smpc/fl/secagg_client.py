"""The client side of secure aggregation (Bonawitz et al., CCS 2017, figure 4, with the signatures and the
consistency check of its active-adversary version)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

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
    (its enrolled long-term Ed25519 key, :mod:`smpc.fl.secagg_identity`), over smpc's runtime: the steps of
    :class:`ClientSession` in order, each after the server's go for its round. A client in ``drop_before``
    stops after ShareKeys, one in ``drop_after`` after sending its masked update."""
    session = ClientSession(me, config, signing_key)
    session.advertise(party)
    if not session.share_keys(party) or me in config.drop_before:
        return
    if not session.send_masked(party, update) or me in config.drop_after:
        return
    if session.confirm(party):
        session.unmask(party)


@dataclass
class ClientSession:
    """One client's part in one aggregation, step by step, with the state it keeps between steps.

    Every step reads the server's messages from ``link`` and writes its reply to it (``link`` has the
    ``recv(peer)`` / ``send(peer, array)`` of a :class:`~smpc.net.party.Party`; the Flower adapter's
    carries one message each way). Steps after the first return False when the server ended the run.

    1. :meth:`advertise` (AdvertiseKeys): send c_PK | s_PK, signed.
    2. :meth:`share_keys` (ShareKeys): refuse neighbours' keys whose signature does not verify under
       their enrolled keys (a substituted key); draw the self-mask seed b (16 bytes, os.urandom);
       Shamir-share s_SK and b (threshold t) among itself and its neighbours; send each neighbour's
       shares encrypted under the c-key agreed with it.
    3. :meth:`send_masked` (MaskedInputCollection): y = x + PRG(b) + sum over neighbours v that
       shared, +PRG(s_uv) if me < v else -PRG(s_uv), in Z_2^32; send y.
    4. :meth:`confirm` (ConsistencyCheck): sign the survivor list U3 it is shown.
    5. :meth:`unmask` (Unmasking): refuse unless at least t clients of its neighbourhood signed this
       very U3; then for each neighbour reveal its share of b_v if v is in U3, of s_v^SK if not
       (never both), plus its share of its own b.

    :meth:`state` and :meth:`restore` carry the session between steps as plain values (bytes, ints),
    for runtimes that keep no objects between messages.
    """

    me: int
    config: SecAggConfig
    signing_key: bytes
    keys: ClientKeys = field(default_factory=ClientKeys.generate)
    seed: bytes = b""
    own_share: int = 0
    neighbours: list[int] = field(default_factory=list)
    neighbour_keys: list[bytes] = field(default_factory=list)
    senders: list[int] = field(default_factory=list)
    held: list[tuple[bytes, bytes]] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)

    def advertise(self, link) -> None:
        """Round 0: send c_PK | s_PK and their signature."""
        advertised = self.keys.public_bytes()
        statement = keys_statement(self.config.session, self.me, advertised)
        msg.send_public_keys(link, advertised + sign(self.signing_key, statement))

    def share_keys(self, link) -> bool:
        """Round 1: check the neighbours' signed keys, send encrypted shares of s_SK and b."""
        cfg, me = self.config, self.me
        if not msg.recv_go(link, msg.ROUND_SHARE):
            return False
        enrolment = cfg.required_enrolment()
        neighbours, their_keys, signatures = msg.recv_neighbours(link, me, cfg.n_clients, cfg.degree,
                                                                 self.keys.public_bytes())
        for v, key, signature in zip(neighbours, their_keys, signatures):
            if not enrolment.verifies(v, signature, keys_statement(cfg.session, v, key)):
                raise MalformedMessageError(msg.SERVER, f"the server relayed public keys for client {v} that "
                                                        f"client {v} did not sign (its enrolled key): key "
                                                        f"substitution refused")
        _check_count(len(neighbours) + 1, cfg.threshold, "neighbours")
        self.neighbours, self.neighbour_keys = neighbours, their_keys
        self.seed = fresh_key()
        holders = [me, *neighbours]
        points = [h + 1 for h in holders]
        s_shares = shamir.split(private_to_int(self.keys.masking), cfg.threshold, points)
        b_shares = shamir.split(int.from_bytes(self.seed, "big"), cfg.threshold, points)
        self.own_share = b_shares[0]
        public = self._public()
        blobs = [encrypt_shares(_agree(share_key, self.keys.encryption, public[v][0], me, v), me, v, s_shares[j],
                                b_shares[j])
                 for j, v in enumerate(holders) if v != me]
        msg.send_encrypted_shares(link, blobs)
        return True

    def send_masked(self, link, update: np.ndarray, encoded: bool = False) -> bool:
        """Round 2: keep the shares routed to this client, send the masked update (``encoded``: ``update`` is
        already :func:`~smpc.fl.secagg_quantize.quantize` applied with the run's parameters)."""
        cfg, me = self.config, self.me
        if not msg.recv_go(link, msg.ROUND_MASKED):
            return False
        senders, routed = msg.recv_routed_shares(link, me, self.neighbours)
        _check_count(len(senders) + 1, cfg.threshold, "share senders")
        public = self._public()
        self.senders = senders
        self.held = [_open(self.keys, public[v][0], v, me, blob) for v, blob in zip(senders, routed)]
        ring = np.array(update, copy=True) if encoded else quantize(update, cfg.clip, cfg.frac_bits, cfg.ring_bits)
        masked = _mask(ring, self.seed, self.keys, me, senders, public, cfg)
        link.send(msg.SERVER, masked)
        return True

    def confirm(self, link) -> bool:
        """Round 3: sign the survivor list U3."""
        if not msg.recv_go(link, msg.ROUND_CHECK):
            return False
        self.survivors = msg.recv_survivors(link, self.me, self.config.n_clients)
        statement = survivors_statement(self.config.session, self.survivors, self.keys.public_bytes())
        msg.send_signature(link, sign(self.signing_key, statement))
        return True

    def unmask(self, link) -> bool:
        """Round 4: check the neighbourhood's confirmations of U3, then send one share per sender."""
        cfg = self.config
        if not msg.recv_go(link, msg.ROUND_UNMASK):
            return False
        keys = {self.me: self.keys.public_bytes(), **dict(zip(self.neighbours, self.neighbour_keys))}
        statements = {v: survivors_statement(cfg.session, self.survivors, k) for v, k in keys.items()}
        _check_confirmations(link, cfg.required_enrolment(), statements, cfg.threshold)
        alive = set(self.survivors)
        flags = [v in alive for v in self.senders]
        _check_count(sum(flags) + 1, cfg.threshold, "surviving neighbours")
        rows = [shamir.encode_share(self.own_share)]
        rows += [pair[1] if alive else pair[0] for pair, alive in zip(self.held, flags)]
        msg.send_share_rows(link, rows)
        return True

    def state(self) -> dict:
        """The session's secrets and progress as plain values (the config and signing key are not included)."""
        keys = self.keys
        return {"encryption": keys.encryption.private_bytes_raw(), "masking": keys.masking.private_bytes_raw(),
                "seed": self.seed, "own_share": shamir.encode_share(self.own_share), "neighbours": self.neighbours,
                "neighbour_keys": self.neighbour_keys, "senders": self.senders,
                "held": [s + b for s, b in self.held], "survivors": self.survivors}

    @classmethod
    def restore(cls, me: int, config: SecAggConfig, signing_key: bytes, state: dict) -> "ClientSession":
        """The session :meth:`state` described."""
        keys = ClientKeys(X25519PrivateKey.from_private_bytes(bytes(state["encryption"])),
                          X25519PrivateKey.from_private_bytes(bytes(state["masking"])))
        size = shamir.SHARE_BYTES
        held = [(bytes(h[:size]), bytes(h[size:])) for h in state["held"]]
        return cls(me, config, signing_key, keys, bytes(state["seed"]), shamir.decode_share(bytes(state["own_share"])),
                   [int(v) for v in state["neighbours"]], [bytes(k) for k in state["neighbour_keys"]],
                   [int(v) for v in state["senders"]], held, [int(v) for v in state["survivors"]])

    def _public(self) -> dict[int, tuple[bytes, bytes]]:
        return {v: split_public(k) for v, k in zip(self.neighbours, self.neighbour_keys)}


def _check_confirmations(party, enrolment: Enrolment, statements: dict[int, bytes], threshold: int) -> None:
    """At least ``threshold`` clients of the neighbourhood (the keys of ``statements``: each client's statement
    of the survivor list this client was shown, with that client's keys of this run) signed it (Bonawitz et
    al., ConsistencyCheck): else the server told clients different lists, replayed old confirmations, or
    too few confirmed."""
    signers, signatures = msg.recv_confirmations(party, set(statements))
    for signer, signature in zip(signers, signatures):
        if not enrolment.verifies(signer, signature, statements[signer]):
            raise MalformedMessageError(msg.SERVER, f"client {signer}'s confirmation is not its signature of the "
                                                    f"survivor list this client was shown: the server announced "
                                                    f"different survivor lists to different clients, or relayed "
                                                    f"another run's confirmations")
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

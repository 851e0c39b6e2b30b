"""Secure aggregation against an active server and cheating clients: signed keys, the ConsistencyCheck round,
the range check of the unmasked sum (Bonawitz et al., CCS 2017, the active-adversary version)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpc.exceptions import PartyFailedError
from smpc.fl import secagg_messages as msg
from smpc.fl import secure_aggregate
from smpc.fl.secagg_client import run_client
from smpc.fl.secagg_config import make_config
from smpc.fl.secagg_crypto import ClientKeys
from smpc.fl.secagg_errors import SecAggError
from smpc.fl.secagg_identity import (
    Enrolment,
    check_signing_keys,
    enrol,
    keys_statement,
    new_session,
    sign,
    survivors_statement,
)
from smpc.fl.secagg_server import SecAggServer
from tests.test_secagg import SIGNING_KEYS, run_with


class TamperingParty:
    """The server's party, with every array it sends passed through ``tamper(peer, array)`` first."""

    def __init__(self, party, tamper):
        self._party, self._tamper = party, tamper

    def send(self, peer, array):
        self._party.send(peer, self._tamper(peer, np.asarray(array)))

    def __getattr__(self, name):
        return getattr(self._party, name)


class KeySubstitutingServer(SecAggServer):
    """Relays its own fresh keys in place of client ``victim``'s (with the victim's signature, or one of its
    own), so that it could decrypt the shares sent to the victim and derive the victim's pairwise masks."""

    def __init__(self, config, victim, forged_signature=False):
        super().__init__(config)
        self.victim, self.forged = victim, forged_signature
        self._last_ids = {}

    def run(self, party):
        return super().run(TamperingParty(party, self._swap))

    def _swap(self, peer, array):
        if array.dtype == np.int64 and array.ndim == 1 and len(array) > 2:
            self._last_ids[peer] = array.tolist()  # a neighbour list comes just before its keys
        ids = self._last_ids.get(peer, [])
        if array.dtype == np.uint8 and array.shape == (len(ids), msg.ADVERTISED_BYTES) and self.victim in ids:
            array = array.copy()
            row = ids.index(self.victim)
            forged = ClientKeys.generate().public_bytes()
            array[row, :64] = np.frombuffer(forged, np.uint8)
            if self.forged:  # signed with a key the server made up: not the victim's enrolled one
                attacker, _ = enrol(1)
                signature = sign(attacker[0], keys_statement(self.config.session, self.victim, forged))
                array[row, 64:] = np.frombuffer(signature, np.uint8)
        return array


class SplitViewServer(SecAggServer):
    """Tells the clients in ``fooled`` that ``victim`` dropped, the others that it survived, and forwards every
    signature it got without checking (to learn both the victim's self-mask seed and its mask key)."""

    def __init__(self, config, victim, fooled, forward="all"):
        super().__init__(config)
        self.victim, self.fooled, self.forward = victim, set(fooled), forward
        self.views = {}

    def _announce_survivors(self, party, client, survivors):
        view = [u for u in survivors if u != self.victim] if client in self.fooled else list(survivors)
        self.views[client] = view
        msg.send_survivors(party, client, view)

    def _accepts(self, enrolment, client, signature, statement):
        if client not in self.views:  # the key advertisements, before any survivor list
            return enrolment.verifies(client, signature, statement)
        if self.forward == "all":
            return True
        # forward only the signatures that match what each side was shown: fewer of them
        keys = self._state.keys[client]
        return enrolment.verifies(client, signature, survivors_statement(self.config.session, self.views[client], keys))

    def _check_consistency(self, party):
        if self.forward == "matching":
            # send each client only the confirmations of clients shown the same list
            original = msg.send_confirmations

            def matching(party_, client, signers, signatures):
                same = [(s, g) for s, g in zip(signers, signatures) if self.views[s] == self.views[client]]
                original(party_, client, [s for s, _ in same], [g for _, g in same])

            msg.send_confirmations = matching
            try:
                return super()._check_consistency(party)
            finally:
                msg.send_confirmations = original
        return super()._check_consistency(party)


def config_for(n, threshold, shape=(8,), **kwargs):
    return make_config(n, shape, threshold, kwargs.pop("drop_before", ()), kwargs.pop("drop_after", ()), None,
                       16.0, 32, None, enrolment=Enrolment(enrol_first(n)), **kwargs)


def enrol_first(n):
    return Enrolment.of(SIGNING_KEYS[:n]).keys


# --- key substitution ------------------------------------------------------------------------------
@pytest.mark.parametrize("forged_signature", [False, True])
def test_a_server_substituting_a_clients_keys_is_caught_by_its_neighbours(forged_signature):
    n = 5
    config = config_for(n, 3)
    server = KeySubstitutingServer(config, victim=2, forged_signature=forged_signature)
    with pytest.raises(PartyFailedError, match="public keys for client 2 that client 2 did not sign .* key "
                                               "substitution refused"):
        run_with(config, [np.ones(8)] * n, server=server)


def test_the_same_run_with_an_honest_relay_sums_correctly():
    n = 5
    config = config_for(n, 3)
    updates = [np.full(8, c + 0.5) for c in range(n)]
    report = run_with(config, updates)
    outcome = report.results[0]
    assert outcome.failure is None and outcome.refused == ()
    assert np.allclose(outcome.total, sum(updates), atol=1e-5)
    assert outcome.included == outcome.confirmed == outcome.answered == tuple(range(n))


# --- inconsistent dropout claims ---------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_a_server_announcing_different_survivor_lists_is_caught(data):
    n = data.draw(st.integers(4, 7), label="clients")
    config = config_for(n, n // 2 + 1)
    victim = data.draw(st.integers(0, n - 1), label="victim")
    others = [c for c in range(n) if c != victim]
    fooled = data.draw(st.sets(st.sampled_from(others), min_size=1, max_size=len(others) - 1), label="fooled")
    server = SplitViewServer(config, victim, fooled)
    with pytest.raises(PartyFailedError, match="is not its signature of the survivor list this client was shown: "
                                               "the server announced different survivor lists"):
        run_with(config, [np.ones(8)] * n, server=server)


def test_forwarding_only_matching_confirmations_leaves_the_fooled_side_below_its_threshold():
    """Clients 3 and 4 are told client 0 dropped; each side sees only its own side's signatures. The side
    told the truth has 3 >= t = 3 confirmations (client 0's seed shares are due anyway), the fooled side 2:
    it refuses to reveal client 0's mask-key shares, so the server cannot strip client 0's masks."""
    n = 5
    config = config_for(n, 3)
    server = SplitViewServer(config, victim=0, fooled={3, 4}, forward="matching")
    with pytest.raises(PartyFailedError, match="went on with 2 clients of its neighbourhood confirming the survivor "
                                               "list .* below the threshold 3"):
        run_with(config, [np.ones(8)] * n, server=server)


class ConfirmationSwappingServer(SecAggServer):
    """Records the survivor-list confirmations it relays (``record``), or relays recorded ones instead of this
    run's (``replay``): the confirmations message is the uint8[c, 64] rows after the int64 list of signers."""

    def __init__(self, config, record=None, replay=None):
        super().__init__(config)
        self.record, self.replay, self._signers = record, replay, {}

    def run(self, party):
        return super().run(TamperingParty(party, self._swap))

    def _swap(self, peer, array):
        if array.dtype == np.int64 and array.ndim == 1:
            self._signers[peer] = array.tolist()
        signers = self._signers.get(peer, [])
        if array.dtype == np.uint8 and array.shape == (len(signers), 64) and signers:
            if self.record is not None:
                self.record.update({s: array[i].copy() for i, s in enumerate(signers)})
            if self.replay is not None:
                array = np.stack([self.replay[s] for s in signers])
        return array


def test_confirmations_replayed_from_an_earlier_run_are_refused_even_under_the_same_session():
    """The server picks the session id; reusing it, it relays last run's confirmations of the same survivor
    list. Each confirmation binds its signer's fresh keys of its own run, so they do not verify now."""
    n = 4
    config = config_for(n, 3)
    recorded = {}
    first = run_with(config, [np.ones(8)] * n, server=ConfirmationSwappingServer(config, record=recorded))
    assert first.results[0].failure is None and sorted(recorded) == list(range(n))
    with pytest.raises(PartyFailedError, match="is not its signature of the survivor list this client was shown"):
        run_with(config, [np.ones(8)] * n, server=ConfirmationSwappingServer(config, replay=recorded))


def test_a_server_leaving_a_client_off_the_survivor_list_is_refused():
    n = 4
    config = config_for(n, 3)

    class Omitting(SecAggServer):
        def _announce_survivors(self, party, client, survivors):
            msg.send_survivors(party, client, [u for u in survivors if u != 1])

    with pytest.raises(PartyFailedError, match="a survivor list without this client"):
        run_with(config, [np.ones(8)] * n, server=Omitting(config))


# --- cheating clients -----------------------------------------------------------------------------------
def test_a_client_signing_with_a_key_that_is_not_enrolled_is_left_out():
    n = 5
    config = config_for(n, 3)
    impostor, _ = enrol(1)

    def client(party, c, cfg, update, key):
        run_client(party, c, cfg, update, impostor[0] if c == 4 else key)

    updates = [np.full(8, float(c)) for c in range(n)]
    outcome = run_with(config, updates, client=client).results[0]
    assert outcome.refused == (4,) and outcome.failure is None
    assert np.allclose(outcome.total, sum(updates[:4]), atol=1e-5)


def test_a_client_masking_a_value_beyond_its_clip_is_caught_by_the_range_check():
    n = 4
    config = config_for(n, 3)
    honest = np.ones(8)

    def client(party, c, cfg, update, key):
        if c == 2:  # quantises with a far larger clip than everyone agreed on
            cfg, update = dataclasses.replace(cfg, clip=1000.0), np.full(8, 100.0)
        run_client(party, c, cfg, update, key)

    outcome = run_with(config, [honest] * n, client=client).results[0]
    kind, message, stage, outside, _ = outcome.failure
    assert kind == "out_of_range" and stage == "unmasking" and outside == 8
    assert "a client sent a value beyond its clipping range" in message and outcome.total is None


def test_a_shift_within_the_range_is_not_detectable_but_bounded():
    """What the README states a malicious client can still do: move the sum by at most its own clip plus what
    the others leave unused of theirs (here 20 where 16 was agreed, the sum stays within 4 x 16)."""
    n = 4
    config = config_for(n, 3)

    def client(party, c, cfg, update, key):
        if c == 2:
            cfg, update = dataclasses.replace(cfg, clip=1000.0), np.full(8, 20.0)
        run_client(party, c, cfg, update, key)

    outcome = run_with(config, [np.ones(8)] * n, client=client).results[0]
    assert outcome.failure is None and np.allclose(outcome.total, 23.0, atol=1e-5)


def test_an_out_of_range_sum_raises_a_secagg_error_from_secure_aggregate(monkeypatch):
    import smpc.fl.secagg as secagg
    original = secagg.run_client

    def cheating(party, c, cfg, update, key):
        if c == 0:
            cfg, update = dataclasses.replace(cfg, clip=1000.0), np.full(update.shape, 100.0)
        original(party, c, cfg, update, key)

    monkeypatch.setattr(secagg, "run_client", cheating)
    with pytest.raises(SecAggError, match="leaves the range 3 clipped updates can reach"):
        secure_aggregate([np.zeros(4)] * 3, threshold=2)


# --- identities -----------------------------------------------------------------------------------------
def test_signatures_bind_the_session_the_client_and_the_list():
    keys, enrolment = enrol(3)
    session, other = new_session(), new_session()
    advertised = ClientKeys.generate().public_bytes()
    signature = sign(keys[1], keys_statement(session, 1, advertised))
    assert enrolment.verifies(1, signature, keys_statement(session, 1, advertised))
    assert not enrolment.verifies(1, signature, keys_statement(other, 1, advertised))  # replayed in another run
    assert not enrolment.verifies(2, signature, keys_statement(session, 2, advertised))  # claimed for another client
    assert not enrolment.verifies(0, signature, keys_statement(session, 1, advertised))
    this_run, next_run = ClientKeys.generate().public_bytes(), ClientKeys.generate().public_bytes()
    listed = sign(keys[0], survivors_statement(session, [0, 1, 2], this_run))
    assert enrolment.verifies(0, listed, survivors_statement(session, [0, 1, 2], this_run))
    assert not enrolment.verifies(0, listed, survivors_statement(session, [0, 1], this_run))
    assert not enrolment.verifies(0, listed, survivors_statement(session, [0, 1, 2], next_run))  # replayed later
    assert not enrolment.verifies(5, listed, survivors_statement(session, [0, 1, 2], this_run))  # not enrolled
    assert not enrolment.verifies(0, listed[:63], survivors_statement(session, [0, 1, 2], this_run))


def test_enrolment_and_signing_keys_are_checked():
    keys, enrolment = enrol(3)
    with pytest.raises(ValueError, match="same verification key"):
        Enrolment((enrolment.keys[0], enrolment.keys[0]))
    with pytest.raises(ValueError, match="32-byte"):
        Enrolment((b"short",))
    with pytest.raises(ValueError, match="client 1's signing key does not match"):
        check_signing_keys([keys[0], keys[2], keys[1]], enrolment)
    with pytest.raises(ValueError, match="2 signing keys for 3"):
        check_signing_keys(keys[:2], enrolment)
    with pytest.raises(ValueError, match="give both signing_keys and their enrolment"):
        secure_aggregate([np.zeros(2)] * 3, signing_keys=keys)
    with pytest.raises(ValueError, match="Enrolment of 3 clients"):
        secure_aggregate([np.zeros(2)] * 3, signing_keys=keys, enrolment=Enrolment(enrolment.keys[:2]))
    total = secure_aggregate([np.ones(2)] * 3, signing_keys=keys, enrolment=enrolment)
    assert np.allclose(total, 3.0)
    with pytest.raises(ValueError, match="session must be 16 bytes"):
        make_config(3, (2,), None, (), (), None, 16.0, 32, None, enrolment=enrolment, session=b"x")
    with pytest.raises(ValueError, match="needs the clients' enrolment"):
        make_config(3, (2,), None, (), (), None, 16.0, 32, None).required_enrolment()

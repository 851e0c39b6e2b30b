"""Deployment attacks from the security review, each reproduced and refused.

Endpoints are real TCP transports on loopback, set up side by side in threads; "attackers" are the
same code with the wrong files, or raw sockets.
"""

import json
import logging
import os
import resource
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import net_helpers
import smpc
from net_helpers import creds, finish, listeners, start
from smpc.exceptions import PeerError
from smpc.net import handshake, wire

TIMEOUT = 20.0  # set-up timeout: every refusal below must come much sooner
FAST = 8.0


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- certificates bound to ranks ---------------------------------------------------------------
def test_two_ranks_on_one_certificate_are_refused_at_once(tmp_path):
    """An aby3 deployment: the holder of party 1's certificate also tries to run rank 2."""
    tls = net_helpers.deployment(tmp_path, 3)
    socks, addresses = listeners(3)
    threads = [start(0, 3, addresses, socks[0], creds(tls=tls, name="party0"), TIMEOUT),
               start(1, 3, addresses, socks[1], creds(tls=tls, name="party1"), TIMEOUT),
               start(2, 3, addresses, socks[2], creds(tls=tls, name="party1"), TIMEOUT)]
    for thread, _ in threads:
        thread.join(TIMEOUT + 10)
    outcomes = [o for _, o in threads]
    finish(*outcomes)
    errors = [str(o.error) for o in outcomes]
    assert all(o.error is not None and o.seconds < FAST for o in outcomes), errors
    # whoever caught it says what was expected and what was presented; the intruder is told so too,
    # unless the endpoint it dialled had already stopped because of its other connection
    assert any("expected a certificate for party2, the peer presented one for party1" in e for e in errors), errors
    # the honest endpoints stop too, at once: the one(s) it reached name the claimed rank and the presented
    # name; one it did not reach before giving up hears of it from a peer's ABORT
    assert all(isinstance(victim.error, PeerError) for victim in outcomes[:2])
    assert any("claiming party 2" in e and "presented one for party1" in e for e in errors[:2]), errors


def test_a_certificate_of_another_ca_is_refused_and_the_real_peer_still_gets_in(tmp_path, caplog):
    ours = net_helpers.deployment(tmp_path / "ours", 2)
    theirs = net_helpers.deployment(tmp_path / "theirs", 2)
    socks, addresses = listeners(2)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    party0_thread, party0 = start(0, 2, addresses, socks[0], creds(tls=ours, name="party0"), TIMEOUT)
    intruder_thread, intruder = start(1, 2, addresses, socks[1], creds(tls=theirs, name="party1"), TIMEOUT)
    intruder_thread.join(TIMEOUT + 10)
    assert intruder.error is not None and intruder.seconds < FAST
    assert "TLS handshake with party 0" in str(intruder.error)
    assert "not signed by our CA" in str(intruder.error)
    # party 0 logged the refusal with the address and went on waiting: the real party 1 connects
    deadline = time.monotonic() + FAST
    while not any("refused a connection from 127.0.0.1" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "party 0 did not log the refused connection"
        time.sleep(0.05)
    listener = net_helpers.listen_socket("127.0.0.1", addresses[1][1])
    real_thread, real = start(1, 2, addresses, listener, creds(tls=ours, name="party1"), TIMEOUT)
    real_thread.join(TIMEOUT + 10)
    party0_thread.join(TIMEOUT + 10)
    finish(party0, real)
    assert real.error is None and party0.error is None


def test_the_dialling_side_refuses_an_impostor(tmp_path):
    """Someone with party 2's certificate listens at party 0's address; party 1 must not talk to it."""
    tls = net_helpers.deployment(tmp_path, 3)
    socks, addresses = listeners(2)
    impostor_thread, impostor = start(0, 2, addresses, socks[0], creds(tls=tls, name="party2"), TIMEOUT)
    victim_thread, victim = start(1, 2, addresses, socks[1], creds(tls=tls, name="party1"), TIMEOUT)
    victim_thread.join(TIMEOUT + 10)
    impostor_thread.join(TIMEOUT + 10)
    finish(impostor, victim)
    assert victim.error is not None and victim.seconds < FAST
    assert "expected a certificate for party0, the peer presented one for party2" in str(victim.error)
    assert impostor.error is not None and impostor.seconds < FAST  # it was told, and it holds a CA certificate


def test_smpc_run_binds_each_process_to_its_own_certificate(tmp_path):
    tls = net_helpers.deployment(tmp_path, 2, dealer=True)
    assert np.allclose(smpc.run(_double_sum, parties=2, transport="tcp", tls=tls), 12.0, atol=1e-3)
    single = smpc.TlsConfig(str(tmp_path / "party0.pem"), str(tmp_path / "party0.key"), str(tmp_path / "ca.pem"))
    with pytest.raises(ValueError, match="names party0; this endpoint needs one naming exactly party1"):
        smpc.run(_double_sum, parties=2, transport="tcp", tls=single)


def _double_sum(party):
    x = party.share(np.arange(4.0) if party.rank == 0 else None, src=0)
    return float((x + x).sum().reveal())


# --- the session secret ------------------------------------------------------------------------------
def test_an_outsider_without_the_secret_cannot_take_a_rank(caplog):
    socks, addresses = listeners(2)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    party0_thread, party0 = start(0, 2, addresses, socks[0], creds(), TIMEOUT)
    outsider_thread, outsider = start(1, 2, addresses, socks[1], creds(secret=os.urandom(32)), TIMEOUT)
    outsider_thread.join(TIMEOUT + 10)
    assert outsider.error is not None and outsider.seconds < FAST
    assert "does not know the session secret" in str(outsider.error)
    real_thread, real = start(1, 2, addresses, net_helpers.listen_socket("127.0.0.1", addresses[1][1]), creds(),
                              TIMEOUT)
    real_thread.join(TIMEOUT + 10)
    party0_thread.join(TIMEOUT + 10)
    finish(party0, real)
    assert real.error is None and party0.error is None
    assert any("does not know the session secret" in r.getMessage() for r in caplog.records)


def _read(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _frame(kind, payload: bytes) -> bytes:
    header, body = wire.encode_frame(kind, np.frombuffer(payload, np.uint8))
    return header + bytes(body)


def _read_kind(sock):
    fixed = _read(sock, wire.FIXED_HEADER_BYTES)
    kind, _, ndim, _, size = wire.decode_fixed_header(fixed)
    _read(sock, 8 * ndim + size)
    return kind


def test_a_replayed_hello_is_rejected_on_a_fresh_connection(caplog):
    """A HELLO recorded on one connection (its MAC covers that connection's nonce) fails on the next."""
    socks, addresses = listeners(3)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    party0_thread, party0 = start(0, 3, addresses, socks[0], creds(), 4.0)  # waits for parties 1 and 2
    with socket.create_connection(addresses[0]) as first, socket.create_connection(addresses[0]) as replay:
        first.sendall(handshake._preamble(handshake.PLAIN))
        nonce_a = _read(first, 8 + handshake.NONCE_BYTES)[8:]
        hello = handshake.Hello(net_helpers.SESSION, 1, 0, 3, os.urandom(16), creds().fingerprint, b"",
                                "protocol test")
        recorded = handshake.Hello(**{**hello.__dict__, "mac": handshake._mac(net_helpers.SECRET, b"connect",
                                                                              hello, nonce_a)})
        first.sendall(_frame(wire.Kind.HELLO, handshake._encode_hello(recorded)))
        assert _read_kind(first) == wire.Kind.ACCEPT  # the genuine HELLO is accepted
        replay.sendall(handshake._preamble(handshake.PLAIN))
        _read(replay, 8 + handshake.NONCE_BYTES)
        replay.sendall(_frame(wire.Kind.HELLO, handshake._encode_hello(recorded)))
        assert _read_kind(replay) == wire.Kind.REJECT  # the same bytes again are not
    party0_thread.join(15)
    finish(party0)
    assert any("does not know the session secret" in r.getMessage() for r in caplog.records)


# --- memory before authentication ------------------------------------------------------------------
@pytest.mark.parametrize("after_preamble", [False, True])
def test_256_mib_behind_a_pre_authentication_header_is_not_buffered(after_preamble, caplog):
    socks, addresses = listeners(2)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    party0_thread, party0 = start(0, 2, addresses, socks[0], creds(), 6.0)
    before = _rss_bytes()
    chunk = bytes(1 << 20)
    sent = 0
    with socket.create_connection(addresses[0]) as sock:
        if after_preamble:
            sock.sendall(handshake._preamble(handshake.PLAIN))
            _read(sock, 8 + handshake.NONCE_BYTES)
        # a HELLO header announcing 256 MiB, then the 256 MiB
        sock.sendall(struct.pack("!4sBBBBIQ", wire.MAGIC, wire.VERSION, int(wire.Kind.HELLO), 4, 1, 0, 256 << 20)
                     + struct.pack("!Q", 256 << 20))
        try:
            for _ in range(256):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the endpoint closed the connection: what we want
    growth = _rss_bytes() - before
    party0_thread.join(15)
    finish(party0)
    assert sent < (256 << 20) or growth < (16 << 20)
    assert growth < 16 << 20, f"memory grew by {growth / 2**20:.1f} MiB"
    assert any("refused a connection" in r.getMessage() for r in caplog.records)


def test_a_frame_over_the_message_limit_after_authentication_is_refused():
    socks, addresses = listeners(2)
    party0 = net_helpers.Outcome()
    thread0, party0 = start(0, 2, addresses, socks[0], creds(), TIMEOUT, party0)
    thread1, party1 = start(1, 2, addresses, socks[1], creds(), TIMEOUT)
    thread0.join(TIMEOUT)
    thread1.join(TIMEOUT)
    # party 0 accepts at most 1 MiB per frame from here on
    party0.transport._max_payload = 1 << 20
    big = np.zeros(1 << 18, np.uint64)  # 2 MiB
    header, payload = wire.encode_frame(wire.Kind.DATA, big)
    party1.transport.send_raw(0, header, payload)
    with pytest.raises(PeerError, match="exceeds the limit of 1048576") as info:
        party0.transport.recv_raw(1, 10)
    assert info.value.rank == 1
    finish(party0, party1)


def test_a_share_header_cannot_make_a_party_allocate_more_than_a_message():
    with pytest.raises(smpc.PartyFailedError, match="over the limit of 131072"):
        smpc.run(_huge_share_header, parties=2, max_message_bytes=1 << 20, timeout=10)


def _huge_share_header(party):
    if party.rank == 0:
        party.send(1, np.array([16, 2, 1 << 20, 1 << 20], dtype=np.int64))  # 2^40 elements, 52 bytes
        return None
    return party.share(None, src=0)


# --- errors that help the operator --------------------------------------------------------------------
def test_tls_versus_plain_is_reported_at_once_on_both_sides(tmp_path, caplog):
    tls = net_helpers.deployment(tmp_path, 2)
    socks, addresses = listeners(2)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    thread0, party0 = start(0, 2, addresses, socks[0], creds(tls=tls, name="party0"), 3.0)
    thread1, party1 = start(1, 2, addresses, socks[1], creds(), TIMEOUT)
    thread1.join(TIMEOUT)
    assert party1.seconds < FAST
    assert "TLS versus plain mismatch: this endpoint uses plain TCP, party 0 at 127.0.0.1" in str(party1.error)
    thread0.join(TIMEOUT)
    assert any("TLS versus plain mismatch" in r.getMessage() for r in caplog.records)
    # party 0's timeout names the missing peer and what it refused meanwhile
    assert "no connection from party 1" in str(party0.error) and "TLS versus plain" in str(party0.error)


@pytest.mark.parametrize("field, expected", [("session", "session mismatch"), ("description", "protocol mismatch")])
def test_session_and_protocol_mismatches_are_reported_at_once(field, expected, caplog):
    socks, addresses = listeners(2)
    caplog.set_level(logging.WARNING, logger="smpc.net")
    thread0, party0 = start(0, 2, addresses, socks[0], creds(), 3.0)
    other = creds(session=os.urandom(16)) if field == "session" else creds(description="protocol aby3")
    thread1, party1 = start(1, 2, addresses, socks[1], other, TIMEOUT)
    thread1.join(TIMEOUT)
    thread0.join(TIMEOUT)
    assert party1.seconds < FAST and expected in str(party1.error)
    if field == "description":
        assert "'protocol test'" in str(party1.error) and "'protocol aby3'" in str(party1.error)
    assert any(expected in r.getMessage() for r in caplog.records)


def test_a_timeout_names_the_missing_peers_on_both_sides():
    socks, addresses = listeners(3)
    socks[1].close()  # party 1 never comes
    thread0, party0 = start(0, 3, addresses, socks[0], creds(), 2.0)
    thread2, party2 = start(2, 3, addresses, socks[2], creds(), 6.0)
    thread0.join(15)
    thread2.join(15)
    finish(party0, party2)
    assert f"no connection from party 1 at 127.0.0.1:{addresses[1][1]}" in str(party0.error)
    # party 2 stops with party 0, not 4 s later, and hears the missing peer's name from it
    assert party2.seconds < 5 and "party 0 failed" in str(party2.error) and "party 1 at" in str(party2.error)
    socks, addresses = listeners(2)
    socks[0].close()  # nobody listens at party 0's address
    thread1, party1 = start(1, 2, addresses, socks[1], creds(), 1.0)
    thread1.join(15)
    finish(party1)
    assert f"cannot reach party 0 at 127.0.0.1:{addresses[0][1]} (Connection refused)" in str(party1.error)


# --- the command line ----------------------------------------------------------------------------------
def test_cli_refuses_to_run_unauthenticated_unless_told(tmp_path):
    common = [sys.executable, "-m", "smpc", "party", "--rank", "0", "--peers", "127.0.0.1:1,127.0.0.1:2",
              "--dealer", "127.0.0.1:3", "x.py"]
    refused = subprocess.run(common, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "no way to authenticate peers" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    usage = subprocess.run([sys.executable, "-m", "smpc", "party", "--rank", "0", "--protocol", "aby3", "--peers",
                            "127.0.0.1:1,127.0.0.1:2", "--insecure-no-tls", "x.py"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and "aby3" in usage.stderr
    wrong_cert = subprocess.run(common[:-1] + ["--secret-file", str(tmp_path / "missing"), "x.py"],
                                capture_output=True, text=True, timeout=60)
    assert wrong_cert.returncode == 2 and "Traceback" not in wrong_cert.stderr


# --- the same data in every party ----------------------------------------------------------------------
RANDOM_AT_MODULE_LEVEL = """
import functools
import json
import sys

import numpy as np
import smpc

x = np.random.randn(3)          # drawn again by every spawned party
SCALE = 2.0                     # the same everywhere


def main(party):
    shared = party.share(x * SCALE if party.rank == 0 else None, src=0)
    return shared.reveal()


def from_argument(data, party):
    return party.share(data * SCALE if party.rank == 0 else None, src=0).reveal()


if __name__ == "__main__":
    program = functools.partial(main) if sys.argv[1] == "global" else functools.partial(from_argument, x)
    try:
        print(json.dumps([smpc.run(program, parties=2, transport="tcp", timeout=20)[0].tolist(), (x * SCALE).tolist()]))
    except smpc.PartyFailedError as exc:
        print("FAILED", exc)
"""


@pytest.mark.parametrize("mode", ["global", "argument"])
def test_tcp_parties_see_the_launchers_data_or_refuse(tmp_path, mode):
    script = tmp_path / "random_data.py"
    script.write_text(RANDOM_AT_MODULE_LEVEL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    if mode == "global":  # x differs in the spawned parties: refused, naming x and not SCALE
        assert "FAILED" in out.stdout and "different module-level data than the launcher: x " in out.stdout
        assert "functools.partial" in out.stdout
    else:  # passed as an argument, the launcher's x reaches every party
        got, expected = (np.array(v) for v in json.loads(out.stdout))
        assert np.allclose(got, expected, atol=1e-4)

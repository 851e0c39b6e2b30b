"""The runtime: both transports, failure propagation, timeouts, invalid frames, seeds, TLS, CLI."""

import functools
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import programs
import smpc
from conftest import TCP_PHASES, assert_close
from smpc.exceptions import PeerError
from smpc.net import wire
from smpc.net.party import Party, PartyOptions
from smpc.net.tcp import SESSION_BYTES, TcpTransport, listen_socket

TRANSPORTS = ["local", "tcp"]
F_ENC = 2.0**-17


@pytest.mark.parametrize("parties", [2, 3, 5])
@settings(max_examples=3, phases=TCP_PHASES)
@given(data=st.data())
def test_tcp_matches_numpy_and_local_counts(parties, data):
    m, k, n = data.draw(st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)))
    values = st.floats(-10, 10, allow_nan=False, width=32)
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    y = data.draw(hnp.arrays(np.float64, (k, n), elements=values))
    program = functools.partial(programs.arithmetic_suite, x, y)
    tcp = smpc.run(program, parties=parties, transport="tcp")
    local = smpc.run(program, parties=parties, transport="local")
    bound = k * (20 * F_ENC + F_ENC**2) + 2.0**-16
    for rank, result in enumerate(tcp):
        assert_close(result["matmul"], x @ y, bound)
        assert_close(result["mul"], x * x, 20 * F_ENC + 2.0**-16)
        assert_close(result["affine"], 3 * x - 1.5, 4 * F_ENC)
        assert_close(result["sum"], x.sum(axis=0), m * F_ENC)
        assert (result["to_last"] is None) == (rank != parties - 1)
        conv = np.pad(x, 1) * y[0, 0]
        assert_close(result["conv"], conv.reshape(1, 1, *conv.shape), 20 * F_ENC + 2.0**-16)
        assert_close(result["shape_ops"], np.concatenate([x.T, x.T[::-1]], axis=1)[:, 1:], F_ENC)
        assert_close(result["mean"], x.mean(axis=1), F_ENC + 10 * F_ENC + 2.0**-16)
        for key in ("bytes", "rounds", "bytes_received", "messages_sent"):
            assert result["matmul_stats"][key] == local[rank]["matmul_stats"][key]


@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=6), elements=st.integers(-(2**31), 2**31)))
@settings(max_examples=3, phases=TCP_PHASES)
def test_tcp_integer_products_are_exact(x):
    out = smpc.run(functools.partial(programs.integer_product, x), parties=3, transport="tcp")
    assert all(np.array_equal(o, x * x) for o in out)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("rank", [0, 2])
def test_a_raising_party_is_named_and_the_others_stop_fast(transport, rank):
    start = time.monotonic()
    with pytest.raises(smpc.PartyFailedError, match=f"party {rank} failed: ValueError: boom from {rank}") as info:
        smpc.run(functools.partial(programs.raise_on, rank), parties=3, transport=transport, timeout=30)
    assert info.value.rank == rank
    assert time.monotonic() - start < 15
    others = set(info.value.failures) - {rank}
    assert all(f"party {rank} failed" in info.value.failures[r] for r in others)


def test_a_killed_process_is_named_and_the_others_stop_fast():
    start = time.monotonic()
    with pytest.raises(smpc.PartyFailedError) as info:
        smpc.run(functools.partial(programs.die_on, 1), parties=3, transport="tcp", timeout=30)
    assert info.value.rank == 1
    assert "exited with code 3" in info.value.failures[1]
    assert "party 1" in info.value.failures[0]
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_silent_peer_times_out_with_its_rank_named(transport):
    start = time.monotonic()
    with pytest.raises(smpc.PartyFailedError, match="no message from party 1 within 1 s") as info:
        smpc.run(functools.partial(programs.sleep_on, 1, 4), parties=2, transport=transport, timeout=1)
    assert info.value.rank == 0 and "PeerTimeoutError" in info.value.failures[0]
    assert time.monotonic() - start < 10


def test_a_peer_that_finished_early_is_reported_at_once():
    start = time.monotonic()
    with pytest.raises(smpc.PartyFailedError, match="party 1 finished while a message from it was expected"):
        smpc.run(functools.partial(programs.sleep_on, 1, 0), parties=2, timeout=30)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_malformed_dealer_request_stops_everyone(transport):
    with pytest.raises(smpc.PartyFailedError, match="the dealer failed: ProtocolError") as info:
        smpc.run(programs.bad_dealer_request, parties=2, transport=transport, timeout=20)
    assert info.value.rank == -1


def test_tcp_refuses_functions_spawned_processes_cannot_import():
    with pytest.raises(TypeError, match="module level"):
        smpc.run(lambda party: None, parties=2, transport="tcp")


def test_seed_makes_runs_reproducible_and_default_runs_differ():
    first = smpc.run(programs.share_values, parties=3, seed=7)
    again = smpc.run(programs.share_values, parties=3, seed=7)
    fresh = smpc.run(programs.share_values, parties=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], fresh[1])


# --- invalid frames from a peer --------------------------------------------------------------
def _fake_peer_sends(garbage: bytes):
    """Party 0 (real) waits for party 1 (a raw socket that says HELLO, then ``garbage``)."""
    session = bytes(SESSION_BYTES)
    listener = listen_socket("127.0.0.1", 0)
    addresses = [("127.0.0.1", listener.getsockname()[1]), ("127.0.0.1", 1)]
    outcome = {}

    def real_party():
        try:
            transport = TcpTransport(0, 2, addresses, session=session, listener=listener, connect_timeout=10)
            party = Party(0, 2, transport, PartyOptions(timeout=10))
            start = time.monotonic()
            try:
                party.recv(1)
            except PeerError as exc:
                outcome["error"], outcome["seconds"] = exc, time.monotonic() - start
            transport.abort("test over")
        except Exception as exc:  # surfaced by the assertion below
            outcome["setup"] = exc

    thread = threading.Thread(target=real_party)
    thread.start()
    with socket.create_connection(addresses[0]) as sock:
        hello = np.frombuffer(session + (1).to_bytes(4, "big"), dtype=np.uint8)
        header, payload = wire.encode_frame(wire.Kind.HELLO, hello)
        sock.sendall(header + bytes(payload))
        time.sleep(0.2)
        sock.sendall(garbage)
        thread.join(20)
    assert "setup" not in outcome, outcome.get("setup")
    return outcome


@pytest.mark.parametrize(
    "garbage, message",
    [(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(20), "bad magic"),
     (b"SMPC\x01\x01\x2a\x01" + bytes(20), "allow-list"),
     (b"SMPC\x01\x01\x01\x01" + bytes(4) + (1 << 60).to_bytes(8, "big") + bytes(8), "exceeds the limit")],
)
def test_invalid_frame_stops_the_receiver_naming_the_peer(garbage, message):
    outcome = _fake_peer_sends(garbage)
    assert outcome["error"].rank == 1
    assert "party 1" in str(outcome["error"]) and message in str(outcome["error"])
    assert outcome["seconds"] < 5


# --- TLS ------------------------------------------------------------------------------------
def _make_certificates(folder):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, key, issuer, issuer_key, is_ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
        return builder.sign(issuer_key, hashes.SHA256())

    def write(path, data):
        path.write_bytes(data)
        return str(path)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smpc test CA")])
    ca = certificate(ca_name, ca_key, ca_name, ca_key, True)
    ca_path = write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smpc party")])
    cert = certificate(name, key, ca_name, ca_key, False)
    cert_path = write(folder / "party.pem", cert.public_bytes(serialization.Encoding.PEM))
    key_path = write(folder / "party.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, ca_path


def test_mutual_tls_transport(tmp_path):
    tls = smpc.TlsConfig(*_make_certificates(tmp_path))
    x, y = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    out = smpc.run(functools.partial(programs.arithmetic_suite, x, y), parties=2, transport="tcp", tls=tls)
    assert_close(out[0]["matmul"], x @ y, 0.01)


def test_tls_only_with_tcp(tmp_path):
    with pytest.raises(ValueError, match="tls applies to transport='tcp' only"):
        smpc.run(programs.share_values, parties=2, tls=smpc.TlsConfig("a", "b", "c"))


# --- the multi-host command line -------------------------------------------------------------
def _free_ports(count):
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


SCRIPT = """
import numpy as np

def main(party):
    x = party.share(np.array([1.5, -2.0]) if party.rank == 0 else None, src=0)
    y = party.share(np.array([4.0, 0.25]) if party.rank == 1 else None, src=1)
    return (x * y).reveal()
"""


@pytest.mark.parametrize("use_tls", [False, True])
def test_cli_runs_a_three_host_style_deployment(tmp_path, use_tls):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    ports = _free_ports(3)
    peers = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    common = ["--peers", peers, "--dealer", f"127.0.0.1:{ports[2]}", "--timeout", "30", "--session", "t"]
    if use_tls:
        cert, key, ca = _make_certificates(tmp_path)
        common += ["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca]
    commands = [[sys.executable, "-m", "smpc", "dealer", *common]] + [
        [sys.executable, "-m", "smpc", "party", "--rank", str(r), *common, f"{script}:main"] for r in range(2)
    ]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate(timeout=90) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    for out, _ in outputs[1:]:
        assert np.allclose(np.array(out.strip().strip("[]").split(), dtype=float), [6.0, -0.5], atol=1e-3)


def test_cli_rejects_bad_arguments(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "smpc", "party", "--rank", "5", "--peers", "127.0.0.1:1,127.0.0.1:2",
                          "--dealer", "127.0.0.1:3", "x.py"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--rank must be in 0..1" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "smpc", "dealer", "--peers", "nonsense"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not of the form host:port" in bad.stderr


FAILING_SCRIPT = """
import numpy as np

def main(party):
    if party.rank == 1:
        raise RuntimeError("party 1 gives up")
    return party.share(np.ones(2) if party.rank == 0 else None, src=0).reveal()
"""


def test_cli_a_failing_host_stops_the_others_naming_it(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(FAILING_SCRIPT)
    ports = _free_ports(3)
    common = ["--peers", f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", "--dealer", f"127.0.0.1:{ports[2]}",
              "--timeout", "30"]
    commands = [[sys.executable, "-m", "smpc", "dealer", *common]] + [
        [sys.executable, "-m", "smpc", "party", "--rank", str(r), *common, str(script)] for r in range(2)
    ]
    start = time.monotonic()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate(timeout=90) for p in processes]
    assert all(p.returncode == 1 for p in processes), outputs
    assert "RuntimeError: party 1 gives up" in outputs[2][1]
    assert "party 1 failed (RuntimeError)" in outputs[1][1]
    assert time.monotonic() - start < 30

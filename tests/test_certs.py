"""smpc.net.certs: deployment files and modes, a real mutual-TLS handshake, host SANs, secrets, argument errors."""

import argparse
import datetime
import ipaddress
import os
import socket
import ssl
import stat
import threading
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smpc.net import certs

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
HOSTS = ["127.0.0.1", "hostb.example", "::1", "Dealer.Example."]
NAMES = ["party0", "party1", "party2", "dealer"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Three parties and a dealer, each with a host; returns (folder, paths written)."""
    out = tmp_path_factory.mktemp("certs") / "deploy"
    return out, certs.write_deployment(out, 3, dealer=True, hosts=HOSTS)


@pytest.fixture(scope="module")
def other_deployment(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs") / "other"
    certs.write_deployment(out, 2)
    return out


def load_cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m smpc")
    certs.add_parser(parser.add_subparsers(dest="role", required=True))
    return parser.parse_args(["certs", *argv])


def context(purpose, ca_dir, cert_dir, name):
    """What an endpoint builds from its files; X509 strict checks on, as Python 3.13 does by default."""
    ctx = ssl.create_default_context(purpose, cafile=ca_dir / "ca.pem")
    ctx.load_cert_chain(cert_dir / f"{name}.pem", cert_dir / f"{name}.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def handshake(out, server, client, server_hostname, client_dir=None):
    """Mutual TLS over loopback TCP, hostname checked by the client.

    Returns (the server's certificate as the client sees it, the client's as the server sees it); a
    failure on the client raises, a failure on the server is returned in place of the client's certificate.
    """
    server_ctx = context(ssl.Purpose.CLIENT_AUTH, out, out, server)
    client_ctx = context(ssl.Purpose.SERVER_AUTH, out, client_dir or out, client)
    assert client_ctx.check_hostname
    seen = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve():
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen["client"] = tls.getpeercert()
                    tls.sendall(b"ok")
            except OSError as exc:  # ssl.SSLError is an OSError
                seen["client"] = exc

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    server_cert = tls.getpeercert()
                    reply = tls.recv(2)
        finally:
            thread.join(10)
    assert reply == b"ok"
    return server_cert, seen["client"]


def test_endpoint_cert_name():
    assert [certs.endpoint_cert_name(e, 3) for e in range(4)] == NAMES
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="not in 0..3"):
            certs.endpoint_cert_name(bad, 3)


def test_files_written(deployment):
    out, written = deployment
    expected = ["ca.pem"] + [f"{n}.{ext}" for n in NAMES for ext in ("pem", "key")] + ["session.secret"]
    assert list(written) == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert all(written[name] == out / name for name in expected)
    assert not (out / "ca.key").exists()


@posix_only
def test_file_modes(deployment):
    out, _ = deployment
    assert mode(out) == 0o700
    for name in NAMES:
        assert mode(out / f"{name}.key") == 0o600
        assert mode(out / f"{name}.pem") == 0o644
    assert mode(out / "ca.pem") == 0o644
    assert mode(out / "session.secret") == 0o600


@posix_only
def test_modes_do_not_depend_on_umask(tmp_path):
    old = os.umask(0)
    try:
        certs.write_deployment(tmp_path / "d", 2, keep_ca_key=True)
    finally:
        os.umask(old)
    assert {p.name: mode(p) for p in (tmp_path / "d").iterdir()} == {
        "ca.pem": 0o644, "ca.key": 0o600, "party0.pem": 0o644, "party0.key": 0o600,
        "party1.pem": 0o644, "party1.key": 0o600, "session.secret": 0o600}


def test_ca_certificate(deployment):
    out, _ = deployment
    ca = load_cert(out / "ca.pem")
    ca.verify_directly_issued_by(ca)
    (cn,) = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value.startswith("smpc deployment CA ") and len(cn.value) > len("smpc deployment CA ") + 8
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_leaf_certificates(deployment):
    out, _ = deployment
    ca = load_cert(out / "ca.pem")
    now = datetime.datetime.now(datetime.timezone.utc)
    serials = set()
    for name in NAMES:
        cert = load_cert(out / f"{name}.pem")
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName)[0] == name
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and not constraints.value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert now - datetime.timedelta(minutes=6) < cert.not_valid_before_utc < now - datetime.timedelta(minutes=4)
        assert abs(cert.not_valid_after_utc - now - datetime.timedelta(days=365)) < datetime.timedelta(minutes=1)
        pem = (out / f"{name}.key").read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not encrypted
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key.curve, ec.SECP256R1)
        assert key.public_key() == cert.public_key()
        serials.add(cert.serial_number)
    assert len(serials) == len(NAMES)


def test_leaves_pass_rfc5280_path_validation(deployment):
    verification = pytest.importorskip("cryptography.x509.verification")
    if not hasattr(verification.PolicyBuilder, "build_client_verifier"):
        pytest.skip("cryptography without client verification")
    out, _ = deployment
    builder = verification.PolicyBuilder().store(verification.Store([load_cert(out / "ca.pem")]))
    for name in NAMES:
        leaf = load_cert(out / f"{name}.pem")
        builder.build_server_verifier(x509.DNSName(name)).verify(leaf, [])
        builder.build_client_verifier().verify(leaf, [])
    with pytest.raises(verification.VerificationError):
        builder.build_server_verifier(x509.DNSName("party1")).verify(load_cert(out / "party0.pem"), [])


def test_mutual_tls_handshake_and_names(deployment):
    out, _ = deployment
    server_cert, client_cert = handshake(out, "party0", "party1", "party0")
    assert certs.certificate_names(server_cert) == ["party0"]
    assert certs.certificate_names(client_cert) == ["party1"]
    server_cert, client_cert = handshake(out, "dealer", "party2", "dealer")
    assert certs.certificate_names(server_cert) == ["dealer"]
    assert certs.certificate_names(client_cert) == ["party2"]


def test_hostname_check_rejects_another_endpoint(deployment):
    out, _ = deployment
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(out, "party0", "party1", "party1")


def test_ip_host_san_passes_hostname_check(deployment):
    out, _ = deployment
    server_cert, _ = handshake(out, "party0", "party1", "127.0.0.1")
    assert ("IP Address", "127.0.0.1") in server_cert["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(out, "party1", "party0", "127.0.0.1")


def test_server_rejects_client_of_another_deployment(deployment, other_deployment):
    out, _ = deployment
    with pytest.raises(ssl.SSLError, match="(?i)unknown.ca"):  # the server's alert, read by the client
        handshake(out, "party0", "party1", "party0", client_dir=other_deployment)


def test_host_sans(deployment):
    out, _ = deployment

    def sans(name):
        extension = load_cert(out / f"{name}.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return list(extension.value)

    assert sans("party0") == [x509.DNSName("party0"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    assert sans("party1") == [x509.DNSName("party1"), x509.DNSName("hostb.example")]
    assert sans("party2") == [x509.DNSName("party2"), x509.IPAddress(ipaddress.ip_address("::1"))]
    assert sans("dealer") == [x509.DNSName("dealer"), x509.DNSName("dealer.example")]


def test_one_host_applies_to_all(tmp_path):
    certs.write_deployment(tmp_path / "d", 2, dealer=True, hosts="[2001:db8::7]")
    address = x509.IPAddress(ipaddress.ip_address("2001:db8::7"))
    for name in ("party0", "party1", "dealer"):
        sans = load_cert(tmp_path / "d" / f"{name}.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert list(sans.value) == [x509.DNSName(name), address]


def test_host_named_as_its_own_endpoint_is_not_repeated(tmp_path):
    certs.write_deployment(tmp_path / "d", 2, hosts=["party0", "b.example"])
    sans = load_cert(tmp_path / "d" / "party0.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert list(sans.value) == [x509.DNSName("party0")]


def test_certificate_names():
    peer = {"subject": ((("countryName", "XX"),), (("commonName", "party3"),)),
            "subjectAltName": (("DNS", "party3"), ("DNS", "host.example"), ("IP Address", "10.0.0.1"),
                               ("DNS", "dealer"), ("DNS", "party03"), ("DNS", "party\u0663"), ("DNS", "PARTY1"))}
    assert certs.certificate_names(peer) == ["party3", "dealer"]
    assert certs.certificate_names({"subject": ((("commonName", "party12"),),)}) == ["party12"]
    assert certs.certificate_names({}) == []
    assert certs.certificate_names(None) == []


@pytest.mark.parametrize("argv, message", [
    (["--parties", "1"], "at least 2 parties"),
    (["--parties", "3", "--hosts", "a,b"], "2 hosts given for 3 endpoints"),
    (["--parties", "2", "--dealer", "--hosts", "a,b"], "then the dealer"),
    (["--parties", "2", "--hosts", "a.example:9000,b"], "without ports"),
    (["--parties", "2", "--hosts", "bad_host,b"], "neither a DNS name nor an IP address"),
    (["--parties", "2", "--hosts", "10.0.0.256"], "neither a DNS name nor an IP address"),
    (["--parties", "2", "--hosts", "a,,b"], "3 hosts given"),
    (["--parties", "2", "--hosts", ""], "neither a DNS name"),
    (["--parties", "2", "--hosts", "party1,b"], "another endpoint's name"),
    (["--parties", "2", "--days", "0"], "validity"),
])
def test_bad_arguments_exit_with_one_line(tmp_path, argv, message):
    out = tmp_path / "d"
    with pytest.raises(SystemExit) as info:
        certs.run(parse(["--out", str(out), *argv]))
    text = str(info.value.code)
    assert text.startswith("smpc certs: ") and message in text and "\n" not in text
    assert not out.exists()


def test_existing_dir_needs_force(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    certs.write_deployment(out, 2)  # an empty folder is fine
    with pytest.raises(SystemExit, match="is not empty .*--force"):
        certs.run(parse(["--out", str(out), "--parties", "2"]))
    (out / "notes.txt").write_text("mine")
    (out / "party5.pem").write_text("stale")
    (out / "ca.key").write_text("stale")
    old_ca = (out / "ca.pem").read_bytes()
    assert certs.run(parse(["--out", str(out), "--parties", "3", "--force"])) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "party5.pem").exists() and not (out / "ca.key").exists()
    assert (out / "party2.key").exists() and (out / "ca.pem").read_bytes() != old_ca


def test_file_in_place_of_dir(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(SystemExit, match="not a directory"):
        certs.run(parse(["--out", str(tmp_path / "f"), "--parties", "2"]))


def test_keep_ca_key(tmp_path):
    written = certs.write_deployment(tmp_path / "d", 2, keep_ca_key=True)
    key = serialization.load_pem_private_key(written["ca.key"].read_bytes(), password=None)
    assert key.public_key() == load_cert(written["ca.pem"]).public_key()


def test_run_prints_summary(tmp_path, capsys):
    out = tmp_path / "d"
    assert certs.run(parse(["--out", str(out), "--parties", "2", "--dealer", "--hosts", "h0,h1,h2"])) == 0
    text = capsys.readouterr().out
    for name, host in (("party0", "h0"), ("party1", "h1"), ("dealer", "h2")):
        assert f"{name} ({host}): --tls-cert {out / name}.pem --tls-key {out / name}.key --tls-ca {out}/ca.pem" in text
    assert f"{certs.SECRET_FLAG} {out}/session.secret" in text
    assert "No CA key was kept" in text


def test_secret_file_format(deployment):
    out, _ = deployment
    text = (out / "session.secret").read_bytes()
    assert len(text) == 65 and text.endswith(b"\n") and text[:-1] == text[:-1].lower()
    assert certs.load_secret(out / "session.secret") == bytes.fromhex(text.decode())


def test_two_runs_differ(tmp_path, deployment):
    out, _ = deployment
    other = tmp_path / "d"
    certs.write_deployment(other, 3, dealer=True, hosts=HOSTS)
    ca_a, ca_b = load_cert(out / "ca.pem"), load_cert(other / "ca.pem")
    assert ca_a.subject != ca_b.subject and ca_a.public_key() != ca_b.public_key()
    assert certs.load_secret(out / "session.secret") != certs.load_secret(other / "session.secret")
    with pytest.raises((ValueError, TypeError)):
        load_cert(other / "party0.pem").verify_directly_issued_by(ca_a)


def write_secret(path, text, file_mode=0o600):
    path.write_text(text)
    os.chmod(path, file_mode)
    return path


def test_load_secret_accepts_hex_with_whitespace(tmp_path):
    secret = bytes(range(16))
    assert certs.load_secret(write_secret(tmp_path / "s", f"  {secret.hex()[:10].upper()}\n{secret.hex()[10:]}\n")) \
        == secret


@pytest.mark.parametrize("text, message", [
    ("00" * 15, "holds 15 bytes; at least 16"),
    ("", "holds 0 bytes"),
    ("zz" + "ab" * 20, "is not a hex secret"),
    ("abc" * 11, "is not a hex secret"),
    ("0x" + "ab" * 20, "is not a hex secret"),
    ("ab" * 3000, "is not a hex secret"),
])
def test_load_secret_rejects_bad_content(tmp_path, text, message):
    path = write_secret(tmp_path / "s", text)
    with pytest.raises(ValueError, match=message) as info:
        certs.load_secret(path)
    assert str(path) in str(info.value)
    if text:
        assert text[:8] not in str(info.value)


def test_load_secret_missing_or_unreadable(tmp_path):
    with pytest.raises(ValueError, match=f"secret file {tmp_path / 'none'} does not exist"):
        certs.load_secret(tmp_path / "none")
    with pytest.raises(ValueError, match="cannot be read"):
        certs.load_secret(tmp_path)


@posix_only
def test_load_secret_warns_when_others_can_read(tmp_path):
    path = write_secret(tmp_path / "s", "ab" * 32, 0o644)
    with pytest.warns(certs.SecretFilePermissionWarning, match="chmod 600"):
        certs.load_secret(path)
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert certs.load_secret(path) == b"\xab" * 32

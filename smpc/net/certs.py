"""``python -m smpc certs``: a CA, one TLS key pair per endpoint and a session secret for a deployment.

Endpoint names: the party of rank ``i`` (0-based) is ``party<i>`` and the dealer is ``dealer``. Each leaf
certificate carries its endpoint's name as subject CN and as a DNS SAN, so both ends of a connection read
the peer's identity off its verified certificate (:func:`certificate_names`) and compare it with
:func:`endpoint_cert_name` of the rank the peer claims.

The CA key is not written unless asked for (``--keep-ca-key``): every certificate a deployment needs is
made in the same run, and a CA key left on disk could sign a certificate for any endpoint name. To add or
replace an endpoint, make a new deployment.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import secrets
import shlex
import stat
import warnings
from pathlib import Path
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
SECRET_FILE = "session.secret"
SECRET_FLAG = "--secret-file"
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

_CLOCK_SKEW = datetime.timedelta(minutes=5)
_MAX_DAYS = 100 * 365
_MAX_SECRET_FILE = 4096
_ENDPOINT_NAME = re.compile(r"party(?:0|[1-9][0-9]*)|dealer")
_DEPLOYMENT_FILE = re.compile(r"(?:ca|dealer|party(?:0|[1-9][0-9]*))\.(?:pem|key)|session\.secret")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_HEX = re.compile(rb"[0-9A-Fa-f]*")


class SecretFilePermissionWarning(UserWarning):
    """A secret file can be read or written by users other than its owner."""


def endpoint_cert_name(endpoint: int, world_size: int) -> str:
    """Certificate name of an endpoint: ``party<i>`` for a party, ``dealer`` for ``endpoint == world_size``."""
    if not 0 <= endpoint <= world_size:
        raise ValueError(f"endpoint {endpoint} is not in 0..{world_size} (parties, then the dealer)")
    return "dealer" if endpoint == world_size else f"party{endpoint}"


def certificate_names(peercert: dict[str, Any] | None) -> list[str]:
    """Endpoint names a verified peer certificate presents (``ssl.SSLSocket.getpeercert()``'s dict).

    DNS SANs first, then the subject CN; only names of the form ``party<i>`` or ``dealer``, each once.
    A certificate made by :func:`write_deployment` presents exactly one.
    """
    if not peercert:
        return []
    found = [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    found += [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return list(dict.fromkeys(n for n in found if isinstance(n, str) and _ENDPOINT_NAME.fullmatch(n)))


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a hex secret file (whitespace ignored, at least 16 bytes).

    Raises ``ValueError`` naming the path (never the content) if the file is missing, unreadable,
    not hex or too short; warns with :class:`SecretFilePermissionWarning` if others may read it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ValueError(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"secret file {path} cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        raw = _read_up_to(fd, _MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ValueError(f"secret file {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
        warnings.warn(f"secret file {path} is open to group or others (mode {stat.S_IMODE(mode):o}): chmod 600 it",
                      SecretFilePermissionWarning, stacklevel=2)
    digits = b"".join(raw.split())
    if len(raw) > _MAX_SECRET_FILE or not _HEX.fullmatch(digits) or len(digits) % 2:
        raise ValueError(f"secret file {path} is not a hex secret (expected {2 * SECRET_BYTES} hex digits)")
    if len(digits) < 2 * MIN_SECRET_BYTES:
        raise ValueError(f"secret file {path} holds {len(digits) // 2} bytes; at least {MIN_SECRET_BYTES} are needed")
    return bytes.fromhex(digits.decode("ascii"))


def write_deployment(
    out_dir: str | os.PathLike[str],
    parties: int,
    *,
    dealer: bool = False,
    hosts: Sequence[str] | str | None = None,
    days: int = 365,
    force: bool = False,
    keep_ca_key: bool = False,
) -> dict[str, Path]:
    """Write ``ca.pem``, ``party<i>.pem/.key`` (and ``dealer.pem/.key``) and ``session.secret`` into ``out_dir``.

    ``hosts``: one host name or IP address per endpoint (parties in rank order, then the dealer), or one
    for all (a list, or a comma-separated string); each goes into its endpoint's SANs. A non-empty
    ``out_dir`` is refused unless ``force``, which replaces the deployment files in it (``ca.*``,
    ``party<i>.*``, ``dealer.*``, ``session.secret``) and keeps any other file. ``ca.key`` is written
    only with ``keep_ca_key``. Private files get mode 0o600 from their creation. Returns the paths
    written, keyed by file name. Bad arguments raise ``ValueError``, a non-empty ``out_dir``
    ``FileExistsError``.
    """
    if parties < 2:
        raise ValueError(f"a deployment needs at least 2 parties, not {parties}")
    if not 1 <= days <= _MAX_DAYS:
        raise ValueError(f"validity must be 1..{_MAX_DAYS} days, not {days}")
    names = [endpoint_cert_name(e, parties) for e in range(parties + int(dealer))]
    host_names = _endpoint_hosts(hosts, names)
    out = Path(out_dir)
    _prepare_dir(out, force)
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - _CLOCK_SKEW, now + datetime.timedelta(days=days))
    ca_cert, ca_key = _make_ca(validity)
    written: dict[str, Path] = {}

    def write(file_name: str, data: bytes, mode: int) -> None:
        written[file_name] = out / file_name
        create_file(out / file_name, data, mode)

    write(CA_FILE, ca_cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    if keep_ca_key:
        write(CA_KEY_FILE, _key_pem(ca_key), PRIVATE_MODE)
    for name, host in zip(names, host_names, strict=True):
        cert, key = _make_leaf(name, host, ca_cert, ca_key, validity)
        write(f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
        write(f"{name}.key", _key_pem(key), PRIVATE_MODE)
    write(SECRET_FILE, os.urandom(SECRET_BYTES).hex().encode("ascii") + b"\n", PRIVATE_MODE)
    return written


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``certs`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "certs", help="write a CA, TLS certificates and a session secret for a deployment",
        description="Write ca.pem, party<i>.pem/.key (and dealer.pem/.key) and session.secret into DIR.")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if missing)")
    parser.add_argument("--parties", required=True, type=int, metavar="N", help="number of parties (at least 2)")
    parser.add_argument("--dealer", action="store_true", help="also make the dealer's certificate and key")
    parser.add_argument("--hosts", metavar="H1,H2,...",
                        help="host name or IP address of each party in rank order, then the dealer's "
                             "(one host: the same for all); each goes into its certificate")
    parser.add_argument("--days", type=int, default=365, help="validity in days (default: 365)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty DIR, replacing the deployment files in it")
    parser.add_argument("--keep-ca-key", action="store_true",
                        help="also write ca.key (it can sign a certificate for any endpoint: keep it offline)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the ``certs`` subcommand: write the deployment, print a summary; errors exit with one line."""
    hosts = args.hosts.split(",") if args.hosts is not None else None
    try:
        written = write_deployment(args.out, args.parties, dealer=args.dealer, hosts=hosts, days=args.days,
                                   force=args.force, keep_ca_key=args.keep_ca_key)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"smpc certs: {exc}") from None
    print(_summary(Path(args.out), args.parties, args.dealer, hosts, written))
    return 0


def _read_up_to(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from ``fd``, up to its end."""
    chunks, size = [], 0
    while size < limit and (chunk := os.read(fd, limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _endpoint_hosts(hosts: Sequence[str] | str | None, names: list[str]) -> list[x509.GeneralName | None]:
    """The host SAN of each endpoint (None without hosts), checking the count and each host."""
    if hosts is None:
        return [None] * len(names)
    hosts = hosts.split(",") if isinstance(hosts, str) else list(hosts)
    if len(hosts) == 1:
        hosts *= len(names)
    if len(hosts) != len(names):
        order = "the parties in rank order, then the dealer" if names[-1] == "dealer" else "the parties in rank order"
        raise ValueError(f"{len(hosts)} hosts given for {len(names)} endpoints: give one for all, or one each "
                         f"({order})")
    result = []
    for name, host in zip(names, hosts, strict=True):
        san = _host_san(host)
        if isinstance(san, x509.DNSName) and _ENDPOINT_NAME.fullmatch(san.value):
            if san.value != name:
                raise ValueError(f"host {host!r} of {name} is another endpoint's name: {name} could pass for it")
            san = None
        result.append(san)
    return result


def _host_san(host: str) -> x509.GeneralName:
    """One host to its SAN: an IPAddress if it parses as one, else a (lower-case) DNSName."""
    text = host.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        if getattr(address, "scope_id", None):
            raise ValueError(f"host {host!r}: an IPv6 zone cannot go into a certificate")
        return x509.IPAddress(address)
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        hint = " (give hosts without ports)" if ":" in text else ""
        raise ValueError(f"host {host!r} is neither a DNS name nor an IP address{hint}")
    return x509.DNSName(name.lower())


def _prepare_dir(out: Path, force: bool) -> None:
    """Create ``out`` (mode 0o700), or empty it of deployment files if ``force``; refuse other content."""
    if not out.is_dir():
        if out.exists() or out.is_symlink():
            raise FileExistsError(f"{out} exists and is not a directory")
        out.mkdir(mode=0o700, parents=True)
        return
    entries = list(out.iterdir())
    if entries and not force:
        raise FileExistsError(f"{out} is not empty (--force replaces the deployment files in it)")
    for entry in entries:
        if _DEPLOYMENT_FILE.fullmatch(entry.name) and (entry.is_symlink() or entry.is_file()):
            entry.unlink()


def create_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never an existing file or link), then write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    with os.fdopen(fd, "wb") as file:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the umask only narrowed it; make it exact before any byte is written
        file.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _common_name(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """CA: keyCertSign and cRLSign; leaf: digitalSignature and keyAgreement."""
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=not cert_sign, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _make_ca(validity: tuple[datetime.datetime, datetime.datetime],
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed P-256 CA that may sign leaves only (pathlen 0), with a name unique to this deployment."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _common_name(f"smpc deployment CA {secrets.token_hex(8)}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(name: str, host: x509.GeneralName | None, ca_cert: x509.Certificate,
               ca_key: ec.EllipticCurvePrivateKey, validity: tuple[datetime.datetime, datetime.datetime],
               ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """An endpoint's P-256 key and its certificate: TLS server and client, named ``name`` (and ``host``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(name)] + ([host] if host is not None else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_common_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _summary(out: Path, parties: int, dealer: bool, hosts: list[str] | None, written: dict[str, Path]) -> str:
    """What was written, and the flags each endpoint's command takes."""
    names = [endpoint_cert_name(e, parties) for e in range(parties + int(dealer))]
    where = hosts * len(names) if hosts is not None and len(hosts) == 1 else hosts
    ca = shlex.quote(str(out / CA_FILE))
    lines = [f"smpc certs: wrote {len(written)} files to {out}: {', '.join(written)}",
             f"copy {CA_FILE} and an endpoint's own .pem/.key to its host; .key files and {SECRET_FILE} are private "
             f"(mode 600). With TLS, each command takes:"]
    for i, name in enumerate(names):
        on = f" ({where[i].strip()})" if where else ""
        cert, key = (shlex.quote(str(out / f"{name}{ext}")) for ext in (".pem", ".key"))
        lines.append(f"  {name}{on}: --tls-cert {cert} --tls-key {key} --tls-ca {ca}")
    lines.append(f"Without TLS, every command takes the same secret: {SECRET_FLAG} "
                 f"{shlex.quote(str(out / SECRET_FILE))}")
    if CA_KEY_FILE in written:
        lines.append(f"{CA_KEY_FILE} can sign a certificate for any endpoint: move it offline or delete it.")
    else:
        lines.append("No CA key was kept: to add or replace an endpoint, make a new deployment (or use --keep-ca-key).")
    return "\n".join(lines)

"""Mutual TLS for the TCP transport: which files an endpoint uses, and whose certificate it accepts.

Every endpoint is both a TLS client (to the endpoints it dials) and a TLS server (to the ones that
dial it). A certificate names its endpoint: ``party<i>`` or ``dealer``, as its subject common name
or a DNS subject-alternative name (``python -m smpc certs`` writes such certificates). Both ends of
every connection check, after the CA's signature, that the other's certificate names exactly the
endpoint it claims or is expected to be; a certificate naming several endpoints is refused.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from smpc.net.certs import certificate_names, endpoint_cert_name

NAME_PLACEHOLDER = "{name}"


@dataclass(frozen=True)
class TlsConfig:
    """Paths for mutual TLS: this endpoint's certificate and key, and the CA to trust.

    ``cert`` and ``key`` may hold the placeholder ``{name}`` (``party0``, ..., ``dealer``), so one
    configuration serves every endpoint of a run on one machine (:meth:`from_directory`).
    """

    cert: str
    key: str
    ca: str

    @classmethod
    def from_directory(cls, folder: str | Path) -> "TlsConfig":
        """The files ``python -m smpc certs --out folder`` writes: ``{name}.pem``, ``{name}.key``, ``ca.pem``."""
        folder = Path(folder)
        return cls(str(folder / "{name}.pem"), str(folder / "{name}.key"), str(folder / "ca.pem"))

    def for_endpoint(self, name: str) -> "TlsConfig":
        """This configuration with ``{name}`` replaced by an endpoint's certificate name."""
        return TlsConfig(self.cert.replace(NAME_PLACEHOLDER, name), self.key.replace(NAME_PLACEHOLDER, name),
                         self.ca)

    def _context(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        for what, path in (("certificate", self.cert), ("key", self.key), ("CA certificate", self.ca)):
            if not Path(path).is_file():
                raise ValueError(f"TLS {what} file {path!r} does not exist")
        try:
            ctx = ssl.create_default_context(purpose, cafile=self.ca)
            ctx.load_cert_chain(self.cert, self.key)
        except ssl.SSLError as exc:
            raise ValueError(f"cannot load TLS files {self.cert!r}, {self.key!r}, {self.ca!r}: {exc}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        # the name is checked by check_peer_name on both sides (with a message saying what was
        # presented), so the client's hostname check is off; the chain is still verified
        ctx.check_hostname = False
        return ctx

    def server_context(self) -> ssl.SSLContext:
        """Context for connections this endpoint accepts (client certificates required)."""
        return self._context(ssl.Purpose.CLIENT_AUTH)

    def client_context(self) -> ssl.SSLContext:
        """Context for connections this endpoint dials."""
        return self._context(ssl.Purpose.SERVER_AUTH)


def own_certificate_names(tls: TlsConfig) -> list[str]:
    """The endpoint names the certificate file of ``tls`` carries (read with ``cryptography``)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(Path(tls.cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the TLS certificate {tls.cert!r}: {exc}") from None
    sans: list[tuple[str, str]] = []
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = [("DNS", name) for name in extension.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    common = [("commonName", str(a.value)) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return certificate_names({"subject": tuple((pair,) for pair in common), "subjectAltName": tuple(sans)})


def check_own_certificate(tls: TlsConfig, endpoint: int, world_size: int) -> None:
    """Refuse to start with a certificate that does not name this endpoint (a clear error, not a peer's)."""
    expected = endpoint_cert_name(endpoint, world_size)
    names = own_certificate_names(tls)
    if names != [expected]:
        presented = ", ".join(names) or "no endpoint name"
        raise ValueError(f"the TLS certificate {tls.cert!r} names {presented}; this endpoint needs one naming "
                         f"exactly {expected} (python -m smpc certs writes them)")


def peer_name_problem(peercert: dict | None, expected: str) -> str | None:
    """Why a verified peer certificate does not identify endpoint ``expected`` (None: it does)."""
    names = certificate_names(peercert or {})
    if names == [expected]:
        return None
    presented = ", ".join(names) if names else "no endpoint name"
    return f"expected a certificate for {expected}, the peer presented one for {presented}"

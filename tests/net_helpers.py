"""Test helpers for the TCP transport: endpoints set up side by side in threads, certificates, secrets."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from smpc.net.certs import write_deployment
from smpc.net.handshake import Credentials
from smpc.net.tcp import TcpTransport, listen_socket
from smpc.net.tls import TlsConfig

SESSION = bytes(range(16))
SECRET = bytes(range(100, 132))


def listeners(count: int):
    """``count`` listening sockets on loopback and their addresses."""
    socks = [listen_socket("127.0.0.1", 0) for _ in range(count)]
    return socks, [("127.0.0.1", s.getsockname()[1]) for s in socks]


def deployment(folder, parties: int, dealer: bool = False) -> TlsConfig:
    """A fresh CA and certificates for ``parties`` (and the dealer), as ``smpc certs`` writes them."""
    write_deployment(folder, parties, dealer=dealer)
    return TlsConfig.from_directory(folder)


def creds(*, tls: TlsConfig | None = None, name: str | None = None, secret: bytes | None = SECRET,
          session: bytes = SESSION, description: str = "protocol test") -> Credentials:
    """Credentials; ``name`` picks the certificate of that endpoint from a ``{name}`` configuration."""
    if tls is not None and name is not None:
        tls = tls.for_endpoint(name)
    return Credentials(session, description, secret, tls)


@dataclass
class Outcome:
    transport: TcpTransport | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    rejected: list[str] = field(default_factory=list)


def start(endpoint: int, world_size: int, addresses, listener, credentials: Credentials, timeout: float = 10.0,
          outcome: Outcome | None = None) -> tuple[threading.Thread, Outcome]:
    """Set up endpoint ``endpoint`` in a thread; its :class:`Outcome` fills in when set-up ends."""
    outcome = outcome or Outcome()

    def body():
        begin = time.monotonic()
        try:
            outcome.transport = TcpTransport(endpoint, world_size, addresses, credentials=credentials,
                                             listener=listener, connect_timeout=timeout)
        except BaseException as exc:  # inspected by the test
            outcome.error = exc
        outcome.seconds = time.monotonic() - begin

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, outcome


def finish(*outcomes: Outcome) -> None:
    """Close every transport that was set up."""
    for outcome in outcomes:
        if outcome.transport is not None:
            outcome.transport.abort("test over")


def random_session() -> bytes:
    return os.urandom(16)

"""Connection set-up between two endpoints: same mode, optional mutual TLS, an authenticated HELLO.

The endpoint with the higher number (C, endpoint c) dials the lower one (A, endpoint a):

1. C -> A  preamble: ``SMPC`` | handshake version | mode (plain or TLS) | 0.
2. A -> C  its own preamble and a fresh 16-byte nonce n_A. Each side stops if the other speaks
   another version or mode ("TLS versus plain"), naming both.
3. TLS mode: both upgrade the connection; the CA's signature is checked both ways, and C checks
   that A's certificate names endpoint a (``party<a>`` or ``dealer``).
4. C -> A  HELLO: session id, c, a, the number of parties, the run's description and its hash,
   a fresh nonce n_C and, with a session secret K, HMAC-SHA256(K, transcript | "connect") (RFC 2104;
   the transcript holds every field and both nonces, so a recorded HELLO cannot be replayed).
5. A checks the HELLO (session, ranks, protocol, the MAC; under TLS, that C's certificate names c)
   and answers ACCEPT with HMAC(K, transcript | "accept"), or REJECT with the reason.
6. C checks A's MAC: both know K, and both nonces were fresh.

Nothing before step 5 may make A allocate more than :data:`MAX_HELLO_BYTES`. A's rejections of
connections it cannot attribute to a deployment member (garbage, another CA, a wrong secret, an
unauthenticated session or protocol mismatch) are *soft*: logged with the address and the reason,
while A keeps waiting for the real peer, so one stray packet cannot stop a run. Everything C sees
is fatal for C, and a mismatch that an authenticated peer presents (a certificate of our CA for
another rank, a second connection for a rank) is fatal for A too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import os
import ssl
import struct
from dataclasses import dataclass

import numpy as np

from smpc.exceptions import SmpcError, WireFormatError
from smpc.net import wire
from smpc.net.certs import endpoint_cert_name
from smpc.net.peer_text import printable
from smpc.net.tls import TlsConfig, peer_name_problem

HANDSHAKE_VERSION = 2
PLAIN, TLS = 1, 2
MODE_NAMES = {PLAIN: "plain TCP", TLS: "TLS"}
NONCE_BYTES = 16
SESSION_BYTES = 16
MAC_BYTES = 32
MAX_DESCRIPTION = 200
MAX_HELLO_BYTES = 1024  # the most a peer may make us buffer before it is authenticated
_PREAMBLE = struct.Struct("!4sBBH")
_HELLO = struct.Struct(f"!{SESSION_BYTES}sIII{NONCE_BYTES}s16s{MAC_BYTES}sH")
_ACCEPT = struct.Struct(f"!I{MAC_BYTES}s")


class HandshakeError(SmpcError):
    """A connection could not be set up; ``fatal``: the run must stop (else: drop the connection)."""

    def __init__(self, message: str, fatal: bool, peer: int | None = None):
        super().__init__(message)
        self.fatal = fatal
        self.peer = peer  # the endpoint the connection claimed to be, once known


@dataclass(frozen=True)
class Credentials:
    """What an endpoint proves and expects at set-up: its run, its secret and TLS files."""

    session: bytes
    description: str = ""
    secret: bytes | None = None
    tls: TlsConfig | None = None

    def __post_init__(self) -> None:
        if len(self.session) != SESSION_BYTES:
            raise ValueError(f"session id must be {SESSION_BYTES} bytes")
        if self.secret is not None and len(self.secret) < 16:
            raise ValueError("a session secret must have at least 16 bytes")
        if len(self.description.encode()) > MAX_DESCRIPTION:
            raise ValueError(f"run description longer than {MAX_DESCRIPTION} bytes")

    @property
    def mode(self) -> int:
        return TLS if self.tls is not None else PLAIN

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha256(self.description.encode()).digest()[:16]

    @property
    def authenticates(self) -> bool:
        """Whether a peer must prove who it is (TLS or a secret); without, every claim is believed."""
        return self.tls is not None or self.secret is not None


@dataclass(frozen=True)
class Hello:
    """A parsed HELLO."""

    session: bytes
    sender: int
    target: int
    world_size: int
    nonce: bytes
    fingerprint: bytes
    mac: bytes
    description: str


def _mac(secret: bytes | None, label: bytes, hello: Hello, nonce_a: bytes) -> bytes:
    if secret is None:
        return bytes(MAC_BYTES)
    transcript = b"smpc hello v2|" + _HELLO.pack(hello.session, hello.sender, hello.target, hello.world_size,
                                                 hello.nonce, hello.fingerprint, bytes(MAC_BYTES), 0)
    return hmac.new(secret, transcript + nonce_a + hello.description.encode() + label, hashlib.sha256).digest()


async def _send_frame(writer: asyncio.StreamWriter, kind: wire.Kind, payload: bytes) -> None:
    header, body = wire.encode_frame(kind, np.frombuffer(payload, np.uint8))
    writer.write(header + bytes(body))
    await writer.drain()


async def _read_small_frame(reader: asyncio.StreamReader) -> tuple[wire.Kind, bytes]:
    """One frame of at most MAX_HELLO_BYTES, before the peer is authenticated."""
    fixed = await reader.readexactly(wire.FIXED_HEADER_BYTES)
    _, _, ndim, _, _ = wire.decode_fixed_header(fixed, MAX_HELLO_BYTES)
    header = wire.decode_header(fixed, await reader.readexactly(8 * ndim), MAX_HELLO_BYTES)
    return header.kind, await reader.readexactly(header.payload_bytes)


def _preamble(mode: int) -> bytes:
    return _PREAMBLE.pack(wire.MAGIC, HANDSHAKE_VERSION, mode, 0)


def _parse_preamble(data: bytes, who: str) -> int:
    magic, version, mode, _ = _PREAMBLE.unpack(data)
    if magic != wire.MAGIC:
        raise HandshakeError(f"{who} is not an smpc endpoint (it sent {printable(data, 40)})", fatal=False)
    if version != HANDSHAKE_VERSION:
        raise HandshakeError(f"{who} speaks smpc handshake version {version}, this endpoint {HANDSHAKE_VERSION} "
                             f"(run the same smpc version on every host)", fatal=False)
    if mode not in MODE_NAMES:
        raise HandshakeError(f"{who} asked for an unknown connection mode {mode}", fatal=False)
    return mode


def _mode_mismatch(ours: int, theirs: int, who: str) -> str:
    return (f"TLS versus plain mismatch: this endpoint uses {MODE_NAMES[ours]}, {who} uses {MODE_NAMES[theirs]} "
            f"(give --tls-* to every command, or to none)")


def _tls_failure(exc: BaseException, who: str) -> str:
    detail = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    text = f"{detail} {exc}".lower()
    hint = ""
    if isinstance(exc, ssl.SSLCertVerificationError) or "unknown ca" in text or "certificate verify failed" in text:
        hint = (" (its certificate is not signed by our CA, or ours not by its CA: use the files of one "
                "`smpc certs` run)")
    return f"TLS handshake with {who} failed: {printable(str(detail))}{hint}"


# --- the dialling side ---------------------------------------------------------------------------
async def dial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, creds: Credentials, endpoint: int,
               peer: int, world_size: int, who: str) -> None:
    """Steps 1-6 for the endpoint that dialled ``peer``; raises a fatal :class:`HandshakeError`."""
    try:
        writer.write(_preamble(creds.mode))
        await writer.drain()
        reply = await reader.readexactly(_PREAMBLE.size)
        try:
            mode = _parse_preamble(reply, who)
        except HandshakeError as exc:
            raise HandshakeError(str(exc), fatal=True) from None
        if mode != creds.mode:
            raise HandshakeError(_mode_mismatch(creds.mode, mode, who), fatal=True)
        nonce_a = await reader.readexactly(NONCE_BYTES)
        if creds.tls is not None:
            try:
                await writer.start_tls(creds.tls.client_context())
            except (ssl.SSLError, ConnectionError) as exc:
                raise HandshakeError(_tls_failure(exc, who), fatal=True) from None
            problem = peer_name_problem(writer.get_extra_info("peercert"), endpoint_cert_name(peer, world_size))
            if problem:
                await _reject_quietly(writer, f"party certificate check failed: {problem}")
                raise HandshakeError(f"{who}: {problem}", fatal=True)
        hello = Hello(creds.session, endpoint, peer, world_size, os.urandom(NONCE_BYTES), creds.fingerprint,
                      b"", creds.description)
        hello = dataclasses.replace(hello, mac=_mac(creds.secret, b"connect", hello, nonce_a))
        await _send_frame(writer, wire.Kind.HELLO, _encode_hello(hello))
        kind, payload = await _read_small_frame(reader)
    except asyncio.IncompleteReadError:
        raise HandshakeError(f"{who} closed the connection during set-up (see its log for why)", fatal=True) from None
    except WireFormatError as exc:
        raise HandshakeError(f"{who} sent an invalid set-up frame: {exc}", fatal=True) from None
    if kind == wire.Kind.REJECT:
        raise HandshakeError(f"{who} refused this endpoint: {printable(payload)}", fatal=True)
    if kind != wire.Kind.ACCEPT or len(payload) != _ACCEPT.size:
        raise HandshakeError(f"{who} answered the HELLO with an unexpected {kind.name} frame", fatal=True)
    accepted_as, mac = _ACCEPT.unpack(payload)
    if accepted_as != peer:
        raise HandshakeError(f"{who} says it is endpoint {accepted_as}", fatal=True)
    if not hmac.compare_digest(mac, _mac(creds.secret, b"accept", hello, nonce_a)):
        raise HandshakeError(f"{who} does not know the session secret (its HELLO answer fails authentication)",
                             fatal=True)


def _encode_hello(hello: Hello) -> bytes:
    text = hello.description.encode()
    return _HELLO.pack(hello.session, hello.sender, hello.target, hello.world_size, hello.nonce,
                       hello.fingerprint, hello.mac, len(text)) + text


async def _reject_quietly(writer: asyncio.StreamWriter, reason: str) -> None:
    try:
        await asyncio.wait_for(_send_frame(writer, wire.Kind.REJECT, reason.encode("ascii", "replace")[:400]), 2)
    except (OSError, asyncio.TimeoutError, ssl.SSLError, RuntimeError):
        pass


# --- the accepting side --------------------------------------------------------------------------
async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, creds: Credentials, endpoint: int,
                 world_size: int, expected: set[int], accepted: set[int], name) -> int:
    """Steps 1-5 for the endpoint that was dialled; returns the peer's endpoint number.

    ``expected``: endpoints that dial this one; ``accepted``: those already connected; ``name``
    maps an endpoint to its human name. Raises :class:`HandshakeError` (soft or fatal).
    """
    try:
        mode = _parse_preamble(await reader.readexactly(_PREAMBLE.size), "the connecting host")
        nonce_a = os.urandom(NONCE_BYTES)
        writer.write(_preamble(creds.mode) + nonce_a)
        await writer.drain()
        if mode != creds.mode:
            raise HandshakeError(_mode_mismatch(creds.mode, mode, "the connecting host"), fatal=not creds.authenticates)
        peercert = None
        if creds.tls is not None:
            try:
                await writer.start_tls(creds.tls.server_context())
            except (ssl.SSLError, ConnectionError) as exc:
                raise HandshakeError(_tls_failure(exc, "the connecting host"), fatal=False) from None
            peercert = writer.get_extra_info("peercert")
        kind, payload = await _read_small_frame(reader)
    except asyncio.IncompleteReadError:
        raise HandshakeError("the connecting host closed the connection during set-up", fatal=False) from None
    except WireFormatError as exc:
        raise HandshakeError(f"invalid set-up frame: {exc}", fatal=False) from None
    # a verified certificate of our CA makes the peer a deployment member: its mismatches are fatal
    member = peercert is not None
    if kind == wire.Kind.REJECT and member:
        raise HandshakeError(f"the connecting endpoint refused this one: {printable(payload)}", fatal=True)
    hello = _parse_hello(kind, payload)
    claimed = name(hello.sender) if 0 <= hello.sender <= world_size else f"endpoint {hello.sender}"
    try:
        if member:
            problem = peer_name_problem(peercert, endpoint_cert_name(hello.sender, world_size)
                                        if 0 <= hello.sender <= world_size else "?")
            if problem:
                raise HandshakeError(f"a connection claiming {claimed}: {problem}", fatal=True)
        _check_hello(hello, creds, endpoint, world_size, expected, name, claimed, fatal=member or not
                     creds.authenticates)
        if creds.secret is not None and not hmac.compare_digest(hello.mac, _mac(creds.secret, b"connect", hello,
                                                                                nonce_a)):
            raise HandshakeError(f"a connection claiming {claimed} does not know the session secret", fatal=member)
        if hello.sender in accepted:
            raise HandshakeError(f"a second connection claims {claimed}", fatal=creds.authenticates)
    except HandshakeError as exc:
        await _reject_quietly(writer, str(exc))
        exc.peer = hello.sender if 0 <= hello.sender <= world_size else None
        raise
    await _send_frame(writer, wire.Kind.ACCEPT, _ACCEPT.pack(endpoint, _mac(creds.secret, b"accept", hello, nonce_a)))
    return hello.sender


def _parse_hello(kind: wire.Kind, payload: bytes) -> Hello:
    if kind != wire.Kind.HELLO or len(payload) < _HELLO.size:
        raise HandshakeError(f"expected a HELLO, got a {kind.name} frame of {len(payload)} bytes", fatal=False)
    fields = _HELLO.unpack(payload[: _HELLO.size])
    text = payload[_HELLO.size :]
    if len(text) != fields[-1]:
        raise HandshakeError("HELLO with a malformed description", fatal=False)
    return Hello(*fields[:-1], description=printable(text, MAX_DESCRIPTION))


def _check_hello(hello: Hello, creds: Credentials, endpoint: int, world_size: int, expected: set[int], name,
                 claimed: str, fatal: bool) -> None:
    if hello.session != creds.session:
        raise HandshakeError(f"session mismatch: {claimed} belongs to session {hello.session.hex()[:12]}..., this "
                             f"run is {creds.session.hex()[:12]}... (use the same --session on every command)",
                             fatal)
    if hello.fingerprint != creds.fingerprint or hello.world_size != world_size:
        raise HandshakeError(f"protocol mismatch: this endpoint runs '{printable(creds.description)}' with "
                             f"{world_size} parties, {claimed} runs '{hello.description}' with "
                             f"{hello.world_size} parties", fatal)
    if hello.target != endpoint:
        raise HandshakeError(f"{claimed} dialled this address as {name(hello.target)}, but it is "
                             f"{name(endpoint)} (are the --peers lists the same?)", fatal)
    if hello.sender not in expected:
        raise HandshakeError(f"{claimed} is not an endpoint that connects to {name(endpoint)}", fatal)

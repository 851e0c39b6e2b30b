"""TCP transport (optionally mutual TLS): one connection per pair of endpoints.

Endpoint ``i`` connects to every endpoint ``j < i`` and accepts the others. The first
frame on a connection is HELLO (session token and rank). An asyncio loop in a
background thread owns the sockets: it reads every connection continuously (so two
parties sending large messages to each other never deadlock) and validates each
header before reading its payload. TLS identity: any certificate signed by the given
CA is accepted; the rank is the one the peer claims in HELLO.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import ssl
import struct
import threading
from dataclasses import dataclass

import numpy as np

from smpc.exceptions import PeerError, SmpcError, WireFormatError
from smpc.net import wire
from smpc.net.transport import ABORT, CLOSED, FRAME, Transport, public_rank

SESSION_BYTES = 16
_HELLO = struct.Struct("!16sI")
_RETRY_SECONDS = 0.05


@dataclass(frozen=True)
class TlsConfig:
    """Paths for mutual TLS: this endpoint's certificate and key, and the CA to trust."""

    cert: str
    key: str
    ca: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.check_hostname = False  # peers are identified by the CA and their HELLO
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` to ``(host, port)``, with a clear error."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {text!r} is not of the form host:port")
    return host, int(port)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (``port=0`` picks a free port)."""
    return socket.create_server((host, port), backlog=64)


class TcpTransport(Transport):
    """Endpoints as separate processes (or hosts) connected by TCP."""

    def __init__(
        self,
        endpoint: int,
        world_size: int,
        addresses: list[tuple[str, int]],
        *,
        session: bytes,
        listener: socket.socket | None = None,
        tls: TlsConfig | None = None,
        connect_timeout: float = 60.0,
        max_payload: int = wire.DEFAULT_MAX_PAYLOAD,
        peers: list[int] | None = None,
    ):
        super().__init__(endpoint, world_size)
        if len(addresses) not in (world_size, world_size + 1):
            raise ValueError(f"need {world_size} or {world_size + 1} addresses, got {len(addresses)}")
        if len(session) != SESSION_BYTES:
            raise ValueError(f"session token must be {SESSION_BYTES} bytes")
        self._addresses = addresses
        self._session = session
        self._tls = tls
        self._max_payload = max_payload
        self._linger = connect_timeout
        wanted = range(len(addresses)) if peers is None else peers
        self._wanted = [p for p in wanted if p != endpoint]
        self._inbox = {p: queue.Queue() for p in self._wanted}
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._finished: dict[int, asyncio.Event] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"smpc-io-{endpoint}", daemon=True)
        self._thread.start()
        if listener is None:
            listener = listen_socket(*addresses[endpoint])
        self._listener = listener
        future = asyncio.run_coroutine_threadsafe(self._connect_all(connect_timeout), self._loop)
        try:
            future.result(connect_timeout + 5)
        except BaseException:
            self._shutdown_loop()
            raise

    # --- set-up -------------------------------------------------------------------------
    async def _connect_all(self, timeout: float) -> None:
        accepted: dict[int, tuple] = {}
        all_accepted = asyncio.Event()
        expected_in = {p for p in self._wanted if p > self.endpoint}
        if not expected_in:
            all_accepted.set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                peer = await asyncio.wait_for(self._read_hello(reader), timeout)
            except (WireFormatError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
                writer.close()
                return
            if peer not in expected_in or peer in accepted:
                writer.close()
                return
            accepted[peer] = (reader, writer)
            if set(accepted) == expected_in:
                all_accepted.set()

        ssl_server = self._tls.server_context() if self._tls else None
        server = await asyncio.start_server(on_connect, sock=self._listener, ssl=ssl_server)
        try:
            outgoing = [self._connect(p, timeout) for p in self._wanted if p < self.endpoint]
            connected = await asyncio.wait_for(asyncio.gather(*outgoing), timeout)
            await asyncio.wait_for(all_accepted.wait(), timeout)
        except asyncio.TimeoutError:
            missing = sorted(expected_in - set(accepted))
            raise PeerError(
                public_rank(missing[0], self.world_size) if missing else -2,
                f"could not connect all peers within {timeout:g} s"
                + (f" (no connection from {', '.join(map(self.name, missing))})" if missing else ""),
            ) from None
        finally:
            server.close()
        for peer, (reader, writer) in [*connected, *accepted.items()]:
            self._writers[peer] = writer
            self._finished[peer] = asyncio.Event()
            self._loop.create_task(self._read_loop(peer, reader))

    async def _connect(self, peer: int, timeout: float):
        host, port = self._addresses[peer]
        ssl_client = self._tls.client_context() if self._tls else None
        deadline = self._loop.time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port, ssl=ssl_client)
                break
            except (ConnectionRefusedError, OSError) as exc:
                if self._loop.time() > deadline:
                    rank = public_rank(peer, self.world_size)
                    raise PeerError(rank, f"cannot reach {self.name(peer)}: {exc}") from None
                await asyncio.sleep(_RETRY_SECONDS)
        hello = np.frombuffer(_HELLO.pack(self._session, self.endpoint), dtype=np.uint8)
        header, payload = wire.encode_frame(wire.Kind.HELLO, hello)
        writer.write(header)
        writer.write(payload)
        await writer.drain()
        return peer, (reader, writer)

    async def _read_hello(self, reader: asyncio.StreamReader) -> int:
        _, header, payload = await self._read_frame(reader)
        if header.kind != wire.Kind.HELLO or header.payload_bytes != _HELLO.size:
            raise WireFormatError("expected a HELLO frame")
        session, peer = _HELLO.unpack(bytes(payload))
        if session != self._session:
            raise WireFormatError("HELLO from another session")
        return peer

    async def _read_frame(self, reader: asyncio.StreamReader):
        fixed = await reader.readexactly(wire.FIXED_HEADER_BYTES)
        _, _, ndim, _, _ = wire.decode_fixed_header(fixed, self._max_payload)
        shape = await reader.readexactly(8 * ndim)
        header = wire.decode_header(fixed, shape, self._max_payload)
        payload = await reader.readexactly(header.payload_bytes)
        return fixed + shape, header, payload

    # --- steady state -------------------------------------------------------------------
    async def _read_loop(self, peer: int, reader: asyncio.StreamReader) -> None:
        inbox = self._inbox[peer]
        said_bye = False
        try:
            while not said_bye:
                raw_header, header, payload = await self._read_frame(reader)
                if header.kind == wire.Kind.DATA:
                    inbox.put((FRAME, raw_header, memoryview(payload)))
                elif header.kind == wire.Kind.ABORT:
                    reason = _ascii(payload)
                    inbox.put((ABORT, reason))
                    self.alarm.raise_(peer, f"{self.name(peer)} failed ({reason})")
                elif header.kind == wire.Kind.BYE:
                    said_bye = True
                    inbox.put((CLOSED, None))
                else:
                    raise WireFormatError(f"unexpected {header.kind.name} frame")
        except asyncio.IncompleteReadError:
            if not said_bye:
                inbox.put((CLOSED, "connection lost"))
                self.alarm.raise_(peer, f"{self.name(peer)} closed the connection unexpectedly")
        except WireFormatError as exc:
            inbox.put((CLOSED, f"invalid frame: {exc}"))
            self.alarm.raise_(peer, f"invalid frame from {self.name(peer)}: {exc}")
        except (OSError, ssl.SSLError) as exc:
            if not said_bye:
                inbox.put((CLOSED, f"connection error: {type(exc).__name__}"))
                self.alarm.raise_(peer, f"connection to {self.name(peer)} failed ({type(exc).__name__})")
        finally:
            self._finished[peer].set()

    def send_raw(self, peer: int, header: bytes, payload: memoryview) -> None:
        if peer not in self._writers:
            raise PeerError(public_rank(peer, self.world_size), f"no connection to {self.name(peer)}")
        self._loop.call_soon_threadsafe(self._write, peer, header, payload)

    def _write(self, peer: int, header: bytes, payload: memoryview) -> None:
        writer = self._writers[peer]
        if writer.is_closing():
            return
        writer.write(header)
        if len(payload):
            writer.write(payload)

    def abort(self, reason: str) -> None:
        reason_bytes = np.frombuffer(reason.encode("ascii", "replace")[:200], np.uint8)
        header, payload = wire.encode_frame(wire.Kind.ABORT, reason_bytes)
        for peer in list(self._writers):
            try:
                self._loop.call_soon_threadsafe(self._write, peer, header, payload)
            except RuntimeError:
                pass
        self._finish(wait_seconds=min(2.0, self._linger))

    def close(self) -> None:
        header, payload = wire.encode_frame(wire.Kind.BYE)
        for peer in list(self._writers):
            self._loop.call_soon_threadsafe(self._write, peer, header, payload)
        self._finish(wait_seconds=self._linger)

    def _finish(self, wait_seconds: float) -> None:
        linger = self._linger
        async def drain_and_close() -> None:
            for writer in self._writers.values():
                try:
                    await asyncio.wait_for(writer.drain(), linger)
                except (OSError, asyncio.TimeoutError, RuntimeError, ssl.SSLError):
                    pass
            if self._finished:
                # wait for every peer's BYE (or failure): closing a socket that still has
                # unread data resets the connection and can destroy what we just sent,
                # an ABORT frame included
                waits = [event.wait() for event in self._finished.values()]
                try:
                    await asyncio.wait_for(asyncio.gather(*waits), wait_seconds)
                except asyncio.TimeoutError:
                    pass
            for writer in self._writers.values():
                writer.close()

        try:
            asyncio.run_coroutine_threadsafe(drain_and_close(), self._loop).result(2 * linger + 5)
        except (SmpcError, OSError, RuntimeError, TimeoutError):
            pass
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        try:
            self._listener.close()
        except OSError:
            pass


def _ascii(payload: bytes) -> str:
    return bytes(payload).decode("ascii", "replace")[:200]

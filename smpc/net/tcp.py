"""TCP transport (plain, with a session secret, or mutual TLS): one connection per pair of endpoints.

Endpoint ``i`` dials every endpoint ``j < i`` and accepts the others; each connection starts with
the handshake of :mod:`smpc.net.handshake` (same mode, TLS identities bound to ranks, an HMAC-
authenticated HELLO). An asyncio loop in a background thread owns the sockets: it reads every
connection continuously (so two parties sending large messages to each other never deadlock),
validates each header before reading its payload, and stops reading from a peer whose unread
frames exceed :data:`INBOX_PAUSE_BYTES` until the program has consumed them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import ssl
import threading

import numpy as np

from smpc.exceptions import PeerError, SmpcError, WireFormatError
from smpc.net import wire
from smpc.net.handshake import SESSION_BYTES, Credentials, HandshakeError, answer, dial
from smpc.net.peer_text import printable
from smpc.net.tls import TlsConfig
from smpc.net.transport import ABORT, CLOSED, FRAME, Transport, public_rank

__all__ = ["SESSION_BYTES", "Credentials", "TcpTransport", "TlsConfig", "listen_socket", "parse_address"]

logger = logging.getLogger("smpc.net")

_RETRY_SECONDS = 0.05
HANDSHAKE_SECONDS = 10.0  # the most one connection's set-up may take
MAX_PENDING_HANDSHAKES = 32  # connections being set up at once; more are closed at once
INBOX_PAUSE_BYTES = 256 << 20  # unread bytes from one peer above which reading it pauses
# a stream reader stops reading its socket once it buffers twice its limit: small during set-up (an
# unauthenticated peer can make us hold one socket read, at most 256 KiB, plus this), asyncio's
# default afterwards (a small one would pause and resume the socket every few KiB of a large frame)
_HANDSHAKE_BUFFER = 2048
_STEADY_BUFFER = 1 << 16


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` to ``(host, port)``, with a clear error."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {text!r} is not of the form host:port")
    return host, int(port)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (``port=0`` picks a free port)."""
    try:
        return socket.create_server((host, port), backlog=64)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _close(writer: asyncio.StreamWriter) -> None:
    """Close a stream, also one whose TLS upgrade failed half-way (asyncio then left it without a transport)."""
    try:
        writer.close()
    except (AttributeError, RuntimeError, OSError):
        pass


def _address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "an unknown address"


class TcpTransport(Transport):
    """Endpoints as separate processes (or hosts) connected by TCP."""

    def __init__(
        self,
        endpoint: int,
        world_size: int,
        addresses: list[tuple[str, int]],
        *,
        credentials: Credentials,
        listener: socket.socket | None = None,
        connect_timeout: float = 60.0,
        max_payload: int = wire.DEFAULT_MAX_PAYLOAD,
        peers: list[int] | None = None,
    ):
        super().__init__(endpoint, world_size)
        if len(addresses) not in (world_size, world_size + 1):
            raise ValueError(f"need {world_size} or {world_size + 1} addresses, got {len(addresses)}")
        self._addresses = addresses
        self._credentials = credentials
        self._max_payload = max_payload
        self._linger = connect_timeout
        wanted = range(len(addresses)) if peers is None else peers
        self._wanted = [p for p in wanted if p != endpoint]
        self._inbox = {p: queue.Queue() for p in self._wanted}
        self._unread = {p: 0 for p in self._wanted}
        self._resume: dict[int, asyncio.Event] = {}
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._finished: dict[int, asyncio.Event] = {}
        self.rejected: list[str] = []  # connections refused during set-up, with address and reason
        self._dial_problem: dict[int, str] = {}  # why the last attempt to reach a peer failed
        self._setup_failed: asyncio.Future | None = None  # set while connecting: a connected peer failed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"smpc-io-{endpoint}", daemon=True)
        self._thread.start()
        if listener is None:
            listener = listen_socket(*addresses[endpoint])
        self._listener = listener
        future = asyncio.run_coroutine_threadsafe(self._connect_all(connect_timeout), self._loop)
        try:
            future.result(connect_timeout + HANDSHAKE_SECONDS + 5)
        except BaseException:
            self._shutdown_loop()
            raise

    def _who(self, peer: int) -> str:
        host, port = self._addresses[peer]
        return f"{self.name(peer)} at {host}:{port}"

    # --- set-up -------------------------------------------------------------------------
    async def _connect_all(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        expected_in = {p for p in self._wanted if p > self.endpoint}
        accepted: dict[int, tuple] = {}
        all_accepted = asyncio.Event()
        fatal: asyncio.Future = loop.create_future()
        self._setup_failed = fatal
        slots = asyncio.Semaphore(MAX_PENDING_HANDSHAKES)
        handshaking: set[asyncio.StreamWriter] = set()
        if not expected_in:
            all_accepted.set()

        def refuse(address: str, exc: BaseException, peer: int | None) -> None:
            message = f"{self.name(self.endpoint)} refused a connection from {address}: {exc}"
            logger.warning(message)
            self.rejected.append(message)
            if isinstance(exc, HandshakeError) and exc.fatal and not fatal.done():
                fatal.set_exception(PeerError(public_rank(peer, self.world_size) if peer is not None else -2, message))

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = _address(writer)
            if slots.locked():
                refuse(address, HandshakeError("too many connections being set up at once", fatal=False), None)
                _close(writer)
                return
            async with slots:
                handshaking.add(writer)
                try:
                    peer = await asyncio.wait_for(
                        answer(reader, writer, self._credentials, self.endpoint, self.world_size, expected_in,
                               set(accepted), self.name),
                        min(HANDSHAKE_SECONDS, timeout))
                except HandshakeError as exc:
                    refuse(address, exc, exc.peer)
                    _close(writer)
                    return
                except (asyncio.TimeoutError, OSError, ssl.SSLError, AttributeError) as exc:
                    # AttributeError: asyncio's stream lost its transport (we closed it while stopping)
                    reason = "set-up took too long" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                    refuse(address, HandshakeError(reason, fatal=False), None)
                    _close(writer)
                    return
                finally:
                    handshaking.discard(writer)
            if peer in accepted:
                refuse(address, HandshakeError(f"a second connection claims {self.name(peer)}", fatal=True), peer)
                _close(writer)
                return
            accepted[peer] = (reader, writer)
            self._establish(peer, reader, writer)
            if set(accepted) == expected_in:
                all_accepted.set()

        server = await asyncio.start_server(on_connect, sock=self._listener, limit=_HANDSHAKE_BUFFER)
        dials = {loop.create_task(self._dial(p, deadline)): p for p in self._wanted if p < self.endpoint}
        waiting = {*dials, loop.create_task(all_accepted.wait()), fatal}
        connected = []
        try:
            while waiting - {fatal}:
                done, waiting = await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()),
                                                   return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    raise self._setup_timeout(timeout, expected_in - set(accepted),
                                              [dials[t] for t in waiting if t in dials])
                # take every finished connection first, so a failure below can tell it why we stop
                for task in done:
                    if task in dials and task.exception() is None:
                        peer, (reader, writer) = task.result()
                        connected.append((peer, (reader, writer)))
                        self._establish(peer, reader, writer)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()
        except BaseException as exc:
            # tell the peers already connected, so they stop now rather than at their own timeout
            await self._abort_connected(f"{type(exc).__name__}: {exc}")
            for writer in handshaking:
                _close(writer)
            raise
        finally:
            for task in waiting:
                if task is fatal:
                    continue
                if task.done() and not task.cancelled():
                    task.exception()  # a second failure after the first one: already reported by that one
                task.cancel()
            if not fatal.done():
                fatal.cancel()
            elif not fatal.cancelled():
                fatal.exception()  # reported through the first failure, or set-up had already finished
            server.close()
            self._setup_failed = None
            await asyncio.sleep(0)  # let cancelled set-ups close their sockets

    def _establish(self, peer: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An authenticated connection: start reading it (an ABORT during set-up then stops the set-up)."""
        self._writers[peer] = writer
        self._finished[peer] = asyncio.Event()
        self._resume[peer] = asyncio.Event()
        reader._limit = _STEADY_BUFFER  # no public setter; see _HANDSHAKE_BUFFER
        self._loop.create_task(self._read_loop(peer, reader))

    async def _abort_connected(self, reason: str) -> None:
        header, payload = wire.encode_frame(wire.Kind.ABORT, np.frombuffer(printable(reason).encode(), np.uint8))
        for writer in self._writers.values():
            try:
                writer.write(header + bytes(payload))
                await asyncio.wait_for(writer.drain(), 1.0)
            except (OSError, asyncio.TimeoutError, RuntimeError, ssl.SSLError):
                pass
            _close(writer)

    def _setup_timeout(self, timeout: float, missing_in: set[int], missing_out: list[int]) -> PeerError:
        parts = [f"no connection from {self._who(p)}" for p in sorted(missing_in)]
        parts += [f"cannot reach {self._who(p)} ({self._dial_problem.get(p, 'no answer')})"
                  for p in sorted(missing_out)]
        message = f"{self.name(self.endpoint)} could not connect all peers within {timeout:g} s: " + "; ".join(parts)
        if self.rejected:
            message += f" (refused meanwhile: {'; '.join(self.rejected[-3:])})"
        first = min([*missing_in, *missing_out], default=-2)
        return PeerError(public_rank(first, self.world_size) if first >= 0 else -2, message)

    async def _dial(self, peer: int, deadline: float):
        loop = asyncio.get_running_loop()
        host, port = self._addresses[peer]
        rank = public_rank(peer, self.world_size)
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port, limit=_HANDSHAKE_BUFFER)
                break
            except OSError as exc:  # refused or unreachable: the peer may not listen yet
                self._dial_problem[peer] = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
                if loop.time() > deadline:
                    raise PeerError(rank, f"cannot reach {self._who(peer)}: {self._dial_problem[peer]}") from None
                await asyncio.sleep(_RETRY_SECONDS)
        self._dial_problem[peer] = "it accepted the connection but set-up did not finish"
        try:
            await asyncio.wait_for(
                dial(reader, writer, self._credentials, self.endpoint, peer, self.world_size, self._who(peer)),
                max(0.5, min(HANDSHAKE_SECONDS, deadline - loop.time())))
        except HandshakeError as exc:
            _close(writer)
            raise PeerError(rank, f"{self.name(self.endpoint)} cannot connect: {exc}") from None
        except asyncio.TimeoutError:
            _close(writer)
            raise PeerError(rank, f"{self._who(peer)} accepted the connection but did not finish set-up "
                                  f"(is it an smpc endpoint of this run?)") from None
        except (OSError, ssl.SSLError) as exc:
            _close(writer)
            raise PeerError(rank, f"connection to {self._who(peer)} failed during set-up: {exc}") from None
        except BaseException:  # cancelled: another connection failed first
            _close(writer)
            raise
        return peer, (reader, writer)

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
                    self._unread[peer] += len(payload)
                    if self._unread[peer] > INBOX_PAUSE_BYTES:
                        self._resume[peer].clear()
                        await self._resume[peer].wait()
                elif header.kind == wire.Kind.ABORT:
                    reason = printable(payload)
                    inbox.put((ABORT, bytes(payload)))
                    self._alarm(peer, f"{self.name(peer)} failed ({reason})")
                elif header.kind == wire.Kind.BYE:
                    said_bye = True
                    inbox.put((CLOSED, None))
                else:
                    raise WireFormatError(f"unexpected {header.kind.name} frame")
        except asyncio.IncompleteReadError:
            if not said_bye:
                inbox.put((CLOSED, "connection lost"))
                self._alarm(peer, f"{self.name(peer)} closed the connection unexpectedly")
        except WireFormatError as exc:
            inbox.put((CLOSED, f"invalid frame: {exc}"))
            self._alarm(peer, f"invalid frame from {self.name(peer)}: {exc}")
        except (OSError, ssl.SSLError) as exc:
            if not said_bye:
                inbox.put((CLOSED, f"connection error: {type(exc).__name__}"))
                self._alarm(peer, f"connection to {self.name(peer)} failed ({type(exc).__name__})")
        finally:
            self._finished[peer].set()

    def _alarm(self, peer: int, message: str) -> None:
        """A peer failed: wake the program's receives, and the set-up if it is still waiting."""
        self.alarm.raise_(peer, message)
        if self._setup_failed is not None and not self._setup_failed.done():
            self._setup_failed.set_exception(PeerError(public_rank(peer, self.world_size), message))

    def _consumed(self, peer: int, nbytes: int) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_consumed, peer, nbytes)
        except RuntimeError:  # the loop has stopped
            pass

    def _on_consumed(self, peer: int, nbytes: int) -> None:
        self._unread[peer] -= nbytes
        if self._unread[peer] <= INBOX_PAUSE_BYTES and peer in self._resume:
            self._resume[peer].set()

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
        reason_bytes = np.frombuffer(printable(reason).encode("ascii"), np.uint8)
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
                _close(writer)

        try:
            asyncio.run_coroutine_threadsafe(drain_and_close(), self._loop).result(2 * linger + 5)
        except (SmpcError, OSError, RuntimeError, TimeoutError):
            pass
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), self._loop).result(5)
            except (TimeoutError, RuntimeError, asyncio.CancelledError):
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        try:
            self._listener.close()
        except OSError:
            pass


async def _cancel_other_tasks() -> None:
    """Cancel the loop's other tasks (read loops, set-ups in progress) and let them close their sockets."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2)

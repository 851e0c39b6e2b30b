"""Start the endpoints of one SPMD run (threads or processes) and gather their results.

``launch`` is protocol-agnostic: the protocol object it receives says whether a dealer
endpoint exists (``has_dealer``), prepares each party (``attach``) and runs the dealer
(``serve_dealer``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from smpc.exceptions import PartyFailedError, PeerError, PeerTimeoutError
from smpc.net import allocator, module_data
from smpc.net.certs import endpoint_cert_name
from smpc.net.handshake import Credentials
from smpc.net.party import Party, PartyOptions
from smpc.net.tcp import TcpTransport, listen_socket
from smpc.net.tls import TlsConfig, check_own_certificate
from smpc.net.transport import LocalHub, LocalTransport, public_rank

if TYPE_CHECKING:  # annotations only: smpc.net never imports the protocol layer at run time
    from smpc.mpc.interfaces import Protocol

TRANSPORTS = ("local", "tcp")


@dataclass
class RunReport:
    """What a run produced: results and statistics in rank order, the dealer's apart."""

    results: list
    stats: list[dict]
    dealer_stats: dict | None
    seconds: float


@dataclass
class _Failure:
    rank: int
    description: str
    is_peer_error: bool
    at: float
    exception: BaseException | None = None
    traceback: str = ""


def describe_run(protocol: Protocol, options: PartyOptions) -> str:
    """What every endpoint of one run must agree on, in words (compared at connection set-up)."""
    ahead = f", preprocessing {options.preprocessing}" if options.preprocessing else ""
    return f"{protocol.describe()}, {options.frac_bits} fraction bits{ahead}"


def run_endpoint(party: Party, fn: Callable, protocol: Protocol) -> tuple[Any, dict]:
    """Run one endpoint to completion: key agreement, then ``fn`` (or the dealer loop)."""
    try:
        party.agree_keys()
        if party.is_dealer:
            result = protocol.serve_dealer(party)
        else:
            protocol.attach(party)
            if party.options.preprocessing == "ahead":
                protocol.preprocess(party, fn)
            result = fn(party)
            finish = getattr(protocol, "finish", None)  # Protocol.finish; other endpoint kinds (secure
            if finish is not None:  # aggregation's) have no deferred checks
                finish(party)
    except BaseException as exc:
        party.abort(exc)
        raise
    party.close()
    return result, party.stats


def launch(
    fn: Callable,
    parties: int,
    protocol: Protocol,
    transport: str = "local",
    options: PartyOptions | None = None,
    tls: TlsConfig | None = None,
) -> RunReport:
    """Run ``fn(party)`` on every party (and the protocol's dealer) and collect results."""
    options = options or PartyOptions()
    if transport == "local":
        runner = _launch_local
    elif transport == "tcp":
        runner = _launch_tcp
    else:
        raise ValueError(f"unknown transport {transport!r}; choose one of {TRANSPORTS}")
    if tls is not None and transport != "tcp":
        raise ValueError("tls applies to transport='tcp' only")
    if options.network is not None and transport != "local":
        raise ValueError("network= models the local transport; a TCP run uses real connections (shape a real link, "
                         "e.g. with tc netem, to measure one)")
    endpoints = parties + (1 if protocol.has_dealer else 0)
    start = time.perf_counter()
    outcomes = runner(fn, parties, endpoints, protocol, options, tls)
    seconds = time.perf_counter() - start
    failures = [o for o in outcomes if isinstance(o, _Failure)]
    if failures:
        _raise_failures(failures)
    results = [outcomes[r][0] for r in range(parties)]
    stats = [outcomes[r][1] for r in range(parties)]
    dealer_stats = outcomes[parties][1] if endpoints > parties else None
    return RunReport(results, stats, dealer_stats, seconds)


def _raise_failures(failures: list[_Failure]) -> None:
    # the failure that started it all: not a reaction to a peer's failure, earliest first
    origin = min(failures, key=lambda f: (f.is_peer_error, f.at))
    described = {f.rank: f.description for f in failures}
    error = PartyFailedError(origin.rank, described)
    error.tracebacks = {f.rank: f.traceback for f in failures}
    raise error from origin.exception


def _reacts_to_peer(exc: BaseException) -> bool:
    """Whether a failure only echoes a peer's (its abort or disconnection); a timeout is an origin:
    the party that waited in vain names the silent peer itself."""
    return isinstance(exc, PeerError) and not isinstance(exc, PeerTimeoutError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- threads in this process -----------------------------------------------------------
def _launch_local(fn, parties, endpoints, protocol, options, tls) -> list:
    hub = LocalHub(parties, protocol.has_dealer, options.network)
    outcomes: list = [None] * endpoints

    def work(endpoint: int) -> None:
        party = Party(endpoint, parties, LocalTransport(endpoint, hub), options)
        try:
            outcomes[endpoint] = run_endpoint(party, fn, protocol)
        except BaseException as exc:  # reported to the caller by launch()
            outcomes[endpoint] = _Failure(
                public_rank(endpoint, parties), _describe(exc), _reacts_to_peer(exc),
                time.monotonic(), exc, traceback.format_exc(),
            )

    threads = [
        threading.Thread(target=work, args=(e,), name=f"smpc-{'dealer' if e == parties else f'party-{e}'}")
        for e in range(endpoints)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


# --- one OS process per endpoint, TCP on loopback ---------------------------------------
def _launch_tcp(fn, parties, endpoints, protocol, options, tls) -> list:
    _check_picklable(fn, "fn")
    _check_picklable(protocol, "protocol")
    if tls is not None:
        for endpoint in range(endpoints):
            check_own_certificate(tls.for_endpoint(endpoint_cert_name(endpoint, parties)), endpoint, parties)
    context = multiprocessing.get_context("spawn")
    # a fresh session id and secret per run: nothing outside this launcher can take a rank
    session = Credentials(os.urandom(16), describe_run(protocol, options), os.urandom(32), tls)
    data = module_data.fingerprints(fn)
    pipes, processes = [], []
    try:
        with allocator.for_child_processes():  # malloc settings read at their start (smpc.net.allocator)
            for endpoint in range(endpoints):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_tcp_child,
                    args=(endpoint, parties, fn, protocol, options, session, data, theirs),
                    name=f"smpc-{endpoint}",
                    daemon=True,
                )
                process.start()
                theirs.close()
                pipes.append(ours)
                processes.append(process)
        ports = [_receive(pipes[e], processes[e], options.timeout + 60, e, parties) for e in range(endpoints)]
        ports = [p if isinstance(p, (int, _Failure)) else _child_outcome(p, e, parties) for e, p in enumerate(ports)]
        failed = [p for p in ports if isinstance(p, _Failure)]
        if failed:
            return failed
        addresses = [("127.0.0.1", port) for port in ports]
        for pipe in pipes:
            pipe.send(addresses)
        return _gather(pipes, processes, parties, options.timeout)
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)


def _check_picklable(obj: Any, what: str) -> None:
    try:
        pickle.dumps(obj)
    except Exception as exc:
        raise TypeError(
            f"with transport='tcp', {what} must be picklable by reference: a function defined at "
            f"module level of an importable module or of a script guarded by "
            f"`if __name__ == '__main__':` (not a lambda or a nested function); got {obj!r} ({exc})"
        ) from None


def _receive(pipe, process, timeout: float, endpoint: int, parties: int):
    """One message from a child, or a failure if it died or stayed silent."""
    ready = multiprocessing.connection.wait([pipe, process.sentinel], timeout)
    if process.sentinel in ready:
        process.join(timeout)  # it is exiting: reap it, so its exit code is known
    if pipe.poll():
        try:
            return pipe.recv()
        except EOFError:
            process.join(timeout)
    rank = public_rank(endpoint, parties)
    if process.exitcode is not None:
        return _Failure(rank, f"process exited with code {process.exitcode}", False, time.monotonic())
    return _Failure(rank, f"no answer within {timeout:g} s", False, time.monotonic())


def _gather(pipes, processes, parties: int, timeout: float) -> list:
    outcomes: list = [None] * len(pipes)
    pending = set(range(len(pipes)))
    grace_deadline = None
    while pending:
        remaining = None if grace_deadline is None else max(0.0, grace_deadline - time.monotonic())
        waitables = [pipes[e] for e in pending] + [processes[e].sentinel for e in pending]
        ready = multiprocessing.connection.wait(waitables, remaining)
        if not ready:
            for e in pending:
                outcomes[e] = _Failure(public_rank(e, parties), "did not stop after a peer failed", True,
                                       time.monotonic())
            break
        for e in list(pending):
            if pipes[e] in ready or processes[e].sentinel in ready:
                outcome = _receive(pipes[e], processes[e], 1.0, e, parties)
                outcomes[e] = _child_outcome(outcome, e, parties)
                pending.discard(e)
                if isinstance(outcomes[e], _Failure) and grace_deadline is None:
                    grace_deadline = time.monotonic() + timeout + 10
    return outcomes


def _child_outcome(message, endpoint: int, parties: int):
    if isinstance(message, _Failure):
        return message
    if message[0] == "ok":
        return message[1], message[2]
    _, description, is_peer_error, trace = message
    return _Failure(public_rank(endpoint, parties), description, is_peer_error, time.monotonic(), None, trace)


def _tcp_child(endpoint, parties, fn, protocol, options, credentials, data, pipe) -> None:
    """Body of one spawned endpoint process."""
    try:
        if endpoint < parties:
            module_data.check_same_data(fn, data, f"party {endpoint}")
        listener = listen_socket("127.0.0.1", 0)
        pipe.send(listener.getsockname()[1])
        addresses = pipe.recv()
        endpoints = list(range(len(addresses)))
        if credentials.tls is not None:
            tls = credentials.tls.for_endpoint(endpoint_cert_name(endpoint, parties))
            credentials = Credentials(credentials.session, credentials.description, credentials.secret, tls)
        transport = TcpTransport(
            endpoint, parties, addresses, credentials=credentials, listener=listener,
            connect_timeout=options.timeout, max_payload=options.max_payload, peers=endpoints,
        )
        party = Party(endpoint, parties, transport, options)
        result, stats = run_endpoint(party, fn, protocol)
        try:
            pipe.send(("ok", result, stats))
        except Exception as exc:
            pipe.send(("error", f"result of fn cannot be sent back to the launcher: {_describe(exc)}",
                       False, traceback.format_exc()))
    except BaseException as exc:
        pipe.send(("error", _describe(exc), _reacts_to_peer(exc), traceback.format_exc()))
    finally:
        pipe.close()

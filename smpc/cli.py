"""``python -m smpc``: run one party (or the dealer) of a real multi-host deployment.

One command per host, all with the same ``--peers`` list (party i listens on entry i)
and, for protocols with a dealer, the same ``--dealer`` address::

    python -m smpc dealer --peers hostA:9000,hostB:9000 --dealer hostC:9000
    python -m smpc party --rank 0 --peers hostA:9000,hostB:9000 --dealer hostC:9000 prog.py:main
    python -m smpc party --rank 1 --peers hostA:9000,hostB:9000 --dealer hostC:9000 prog.py:main

The dealer is a command of its own (it may run on any host, beside a party or not; it
must be a machine the parties trust with their correlated randomness). Two additive
parties can do without it: ``--correlated paillier`` on both commands (and no
``--dealer``) makes their triples with Paillier. Each party
prints what ``fn(party)`` returns. Add ``--tls-cert/--tls-key/--tls-ca`` on every
command for mutual TLS; without TLS, traffic (including set-up) is unencrypted.
"""

from __future__ import annotations

import argparse
import hashlib
import runpy
import sys
from typing import Callable

import numpy as np

from smpc.api import make_protocol, seed_bytes
from smpc.net.launch import run_endpoint
from smpc.net.party import Party, PartyOptions
from smpc.net.tcp import TcpTransport, TlsConfig, listen_socket, parse_address
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smpc", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    party = sub.add_parser("party", help="run one computing party")
    party.add_argument("--rank", type=int, required=True, help="this party's rank (0-based)")
    party.add_argument("script", help="path/to/script.py[:function] (default function: main)")
    dealer = sub.add_parser("dealer", help="run the trusted dealer")
    for command in (party, dealer):
        command.add_argument("--peers", required=True, help="host:port of every party, comma-separated, in rank order")
        command.add_argument("--dealer", help="host:port of the dealer (protocols with a dealer)")
        command.add_argument("--protocol", default="additive")
        command.add_argument("--correlated", choices=["trusted", "paillier"], default="trusted",
                             help="where triples come from: the trusted dealer, or Paillier between 2 parties")
        command.add_argument("--frac-bits", type=int, default=DEFAULT_FRAC_BITS)
        command.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a peer")
        command.add_argument("--session", default="smpc", help="name shared by all commands of one run")
        command.add_argument("--bind", help="address to listen on (default: this endpoint's host)")
        command.add_argument("--seed", help="INSECURE reproducible keys, for debugging only")
        command.add_argument("--tls-cert")
        command.add_argument("--tls-key")
        command.add_argument("--tls-ca")
    return parser


def load_function(spec: str) -> Callable:
    """``script.py[:name]`` to the function it names (default ``main``)."""
    path, _, name = spec.partition(":") if not spec.endswith(".py") else (spec, "", "")
    namespace = runpy.run_path(path, run_name="__smpc_party__")
    fn = namespace.get(name or "main")
    if not callable(fn):
        raise SystemExit(f"{path} defines no function {name or 'main'!r}")
    return fn


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    addresses = [parse_address(a) for a in args.peers.split(",")]
    parties = len(addresses)
    protocol = make_protocol(args.protocol, parties, args.correlated)
    if protocol.has_dealer:
        if not args.dealer:
            raise SystemExit(f"protocol {args.protocol!r} needs --dealer host:port")
        addresses.append(parse_address(args.dealer))
    if args.role == "party":
        if not 0 <= args.rank < parties:
            raise SystemExit(f"--rank must be in 0..{parties - 1}")
        endpoint, fn = args.rank, load_function(args.script)
    else:
        if not protocol.has_dealer:
            raise SystemExit(f"protocol {args.protocol!r} has no dealer")
        endpoint, fn = parties, None
    tls_paths = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls_paths) and not all(tls_paths):
        raise SystemExit("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    tls = TlsConfig(*tls_paths) if all(tls_paths) else None
    host, port = addresses[endpoint]
    listener = listen_socket(args.bind or host, port)
    options = PartyOptions(frac_bits=args.frac_bits, timeout=args.timeout, seed=seed_bytes(args.seed))
    session = hashlib.sha256(args.session.encode()).digest()[:16]
    name = "dealer" if fn is None else f"party {endpoint}"
    try:
        transport = TcpTransport(endpoint, parties, addresses, session=session, listener=listener, tls=tls,
                                 connect_timeout=args.timeout)
        result, _ = run_endpoint(Party(endpoint, parties, transport, options), fn, protocol)
    except Exception as exc:
        print(f"smpc {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if fn is not None:
        print(np.array2string(result) if isinstance(result, np.ndarray) else result)
    return 0

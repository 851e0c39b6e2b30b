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
prints what ``fn(party)`` returns.

Every command needs a way to authenticate its peers: ``--tls-cert/--tls-key/--tls-ca`` (mutual
TLS; the certificate must name the endpoint, ``party<i>`` or ``dealer``), or ``--secret-file``
(a pre-shared session secret, HMAC-authenticated HELLOs, unencrypted traffic), or both.
``python -m smpc certs`` writes all of these files. ``--insecure-no-tls`` runs without either.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import runpy
import sys
import warnings
from typing import Callable

import numpy as np

from smpc.api import PREPROCESSING_MODES, check_preprocessing, make_protocol, seed_bytes
from smpc.mpc import registry
from smpc.net import certs
from smpc.net.handshake import Credentials
from smpc.net.launch import describe_run, run_endpoint
from smpc.net.party import Party, PartyOptions
from smpc.net.tcp import TcpTransport, listen_socket, parse_address
from smpc.net.tls import TlsConfig, check_own_certificate
from smpc.net.wire import DEFAULT_MAX_PAYLOAD
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS

INSECURE_WARNING = (
    "WARNING: running without TLS or a session secret (--insecure-no-tls): anyone who can reach this "
    "endpoint's port can take a peer's rank and read what is sent to it. Use only on a network you trust."
)


def _protocols_help() -> str:
    """The registered protocols in a line each (argparse help)."""
    lines = [f"{name}: {spec.summary}; {spec.party_range} parties" for name, spec in registry.protocols().items()]
    return "; ".join(lines) + " (default: additive)"


def _correlated_help() -> str:
    """Each protocol's correlated-randomness sources, its default first (argparse help)."""
    parts = [f"{name}: {' or '.join(kind.name for kind in spec.correlated)}"
             for name, spec in registry.protocols().items()]
    return "where correlated randomness comes from (default: the protocol's first); " + "; ".join(parts)


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
        command.add_argument("--protocol", default="additive", choices=list(registry.protocols()),
                             help=_protocols_help())
        command.add_argument("--correlated", choices=registry.correlated_kinds(), default=None,
                             help=_correlated_help())
        command.add_argument("--preprocessing", choices=PREPROCESSING_MODES, default=None,
                             help="ahead: every party first runs its program as a planning pass that fetches all "
                                  "its correlated randomness, then runs it online (every endpoint, the dealer "
                                  "included, must pass the same)")
        command.add_argument("--frac-bits", type=int, default=DEFAULT_FRAC_BITS)
        command.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a peer")
        command.add_argument("--session", default="smpc", help="name shared by all commands of one run")
        command.add_argument("--bind", help="address to listen on (default: this endpoint's host)")
        command.add_argument("--seed", help="INSECURE reproducible keys, for debugging only")
        command.add_argument("--tls-cert", help="this endpoint's certificate (naming party<rank> or dealer)")
        command.add_argument("--tls-key", help="this endpoint's private key")
        command.add_argument("--tls-ca", help="the CA certificate every endpoint's certificate is signed by")
        command.add_argument("--secret-file", help="pre-shared session secret (hex), as written by `smpc certs`")
        command.add_argument("--insecure-no-tls", action="store_true",
                             help="run without TLS and without a secret (anyone reaching a port can take a rank)")
        command.add_argument("--max-message-mib", type=float, default=DEFAULT_MAX_PAYLOAD / 2**20,
                             help="largest message accepted from an authenticated peer, in MiB (default 4096)")
    certs.add_parser(sub)
    enrol = sub.add_parser("enrol", help="write each site's signing key and the registry for secure aggregation",
                           description="Write site<i>.key and registry.json into DIR (smpc.fl.secagg_enrolment).")
    enrol.add_argument("--sites", required=True, type=int, metavar="N", help="number of sites (at least 2)")
    enrol.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if missing)")
    app = sub.add_parser("flower-app", help="write a Flower App project for flwr run (smpc.fl.flower.project)",
                         description="Write DIR/pyproject.toml: smpc's deployed ServerApp and ClientApp with the "
                                     "run config (needs the flower extra).")
    app.add_argument("--out", required=True, metavar="DIR", help="the project folder")
    app.add_argument("--registry", required=True, help="the server's copy of registry.json (python -m smpc enrol)")
    app.add_argument("--test", required=True, help="the server's held-out rows (CSV with a label column, or .npz)")
    app.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a run config value (rounds, local-epochs, lr, model, standardize, history-path, ...)")
    return parser


def load_function(spec: str) -> Callable:
    """``script.py[:name]`` to the function it names (default ``main``)."""
    path, _, name = spec.partition(":") if not spec.endswith(".py") else (spec, "", "")
    try:
        namespace = runpy.run_path(path, run_name="__smpc_party__")
    except OSError as exc:
        raise SystemExit(f"cannot read the party program {path!r}: {exc.strerror or exc}") from None
    fn = namespace.get(name or "main")
    if not callable(fn):
        raise SystemExit(f"{path} defines no function {name or 'main'!r}")
    return fn


def _credentials(args, endpoint: int, parties: int, description: str) -> Credentials:
    """TLS files and/or the session secret from the flags; refuses to run unauthenticated unless told to."""
    tls_paths = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls_paths) and not all(tls_paths):
        raise ValueError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    tls = TlsConfig(*tls_paths) if all(tls_paths) else None
    if tls is not None:
        check_own_certificate(tls, endpoint, parties)
        tls.server_context()  # load the files now: a bad key or CA fails here, not at the first peer
    secret = certs.load_secret(args.secret_file) if args.secret_file else None
    if tls is None and secret is None:
        if not args.insecure_no_tls:
            raise ValueError("no way to authenticate peers: give --tls-cert/--tls-key/--tls-ca or --secret-file "
                             "(python -m smpc certs writes both), or --insecure-no-tls on a network you trust")
        print(INSECURE_WARNING, file=sys.stderr)
    session = hashlib.sha256(args.session.encode()).digest()[:16]
    return Credentials(session, description, secret, tls)


def protocol_kind(args) -> str:
    """The correlated kind a command runs: --correlated, or its protocol's default."""
    return registry.get(args.protocol).kind(args.correlated).name


def _setup(args):
    """Everything the flags decide, checked: (endpoint, fn, protocol, addresses, transport options)."""
    addresses = [parse_address(a) for a in args.peers.split(",")]
    parties = len(addresses)
    protocol = make_protocol(args.protocol, parties, args.correlated)
    check_preprocessing(args.preprocessing, args.protocol, args.correlated)
    if protocol.has_dealer:
        if not args.dealer:
            raise ValueError(f"protocol {args.protocol!r} needs --dealer host:port")
        addresses.append(parse_address(args.dealer))
    elif args.dealer:
        raise ValueError(f"protocol {args.protocol!r} with --correlated {protocol_kind(args)} has no dealer; "
                         "drop --dealer")
    if args.role == "party":
        if not 0 <= args.rank < parties:
            raise ValueError(f"--rank must be in 0..{parties - 1}")
        endpoint = args.rank
    else:
        if not protocol.has_dealer:
            raise ValueError(f"protocol {args.protocol!r} with --correlated {protocol_kind(args)} has no dealer")
        endpoint = parties
    if not args.max_message_mib > 0:
        raise ValueError(f"--max-message-mib must be positive, got {args.max_message_mib:g}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout:g}")
    options = PartyOptions(frac_bits=args.frac_bits, timeout=args.timeout, seed=seed_bytes(args.seed),
                           max_payload=int(args.max_message_mib * 2**20), preprocessing=args.preprocessing)
    credentials = _credentials(args, endpoint, parties, describe_run(protocol, options))
    return endpoint, parties, protocol, addresses, options, credentials


def _enrol(args: argparse.Namespace) -> int:
    """Write the sites' signing keys and the registry (``smpc.fl.secagg_enrolment``); one line on error."""
    from smpc.fl.secagg_enrolment import write_enrolment

    try:
        written = write_enrolment(args.out, args.sites)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"smpc enrol: {exc}") from None
    print(f"wrote {len(written) - 1} signing keys (site<i>.key: give each to its site alone, mode 0600) and "
          f"registry.json (every site's verification key: give the same copy to every site and the server) "
          f"into {args.out}")
    return 0


def _flower_app(args: argparse.Namespace) -> int:
    """Write the Flower App project; one line on error."""
    try:
        from smpc.fl.flower.project import write_project
    except ImportError:
        raise SystemExit('smpc flower-app: Flower is not installed '
                         '(pip install "smpc-numpy[flower]", or ".[flower]" in a clone)') from None
    config = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"smpc flower-app: --set needs KEY=VALUE, got {item!r}")
        config[key.strip()] = _config_value(value.strip())
    try:
        path = write_project(args.out, args.registry, args.test, **config)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"smpc flower-app: {exc}") from None
    print(f"wrote {path}: run it with  flwr run {args.out} <your SuperLink connection> --stream")
    return 0


def _config_value(text: str):
    """A run config value from the command line: true/false, an integer, a number, else text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.role == "certs":
        return certs.run(args)
    if args.role == "enrol":
        return _enrol(args)
    if args.role == "flower-app":
        return _flower_app(args)
    name = "dealer" if args.role == "dealer" else f"party {args.rank}"
    logging.basicConfig(format=f"smpc {name}: %(message)s", stream=sys.stderr, level=logging.WARNING)
    warnings.simplefilter("default")
    try:
        endpoint, parties, protocol, addresses, options, credentials = _setup(args)
        host, port = addresses[endpoint]
        listener = listen_socket(args.bind or host, port)
    except (ValueError, OSError) as exc:
        print(f"smpc {name}: error: {exc}", file=sys.stderr)
        return 2
    fn = load_function(args.script) if args.role == "party" else None
    try:
        transport = TcpTransport(endpoint, parties, addresses, credentials=credentials, listener=listener,
                                 connect_timeout=args.timeout, max_payload=options.max_payload)
        result, _ = run_endpoint(Party(endpoint, parties, transport, options), fn, protocol)
    except Exception as exc:
        print(f"smpc {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if fn is not None:
        print(np.array2string(result) if isinstance(result, np.ndarray) else result)
    return 0

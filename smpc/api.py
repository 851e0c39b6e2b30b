"""The entry points: run a party program under a protocol and a transport."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Mapping

from smpc.mpc import registry
from smpc.mpc.correlated.preprocessed import MODES as PREPROCESSING_MODES
from smpc.mpc.registry import ProtocolSpec
from smpc.net.launch import TRANSPORTS, RunReport, launch as launch_endpoints
from smpc.net.network import Network, network_of
from smpc.net.party import PartyOptions
from smpc.net.tcp import TlsConfig
from smpc.net.wire import DEFAULT_MAX_PAYLOAD
from smpc.ring.fixed_point import DEFAULT_FRAC_BITS


def make_protocol(protocol: str, parties: int, dealer: str | None = None, dealer_key_bits: int | None = None,
                  comparisons: str | None = None) -> Any:
    """The protocol object for a registered name, after checking the party count and the correlated source
    (``dealer``; None: the protocol's default). See :func:`smpc.protocols` for what each one allows."""
    options = {} if dealer_key_bits is None else {"dealer_key_bits": dealer_key_bits}
    if comparisons is not None:
        options["comparisons"] = comparisons
    return registry.get(protocol).protocol(parties, dealer, **options)


def check_preprocessing(preprocessing: str | None, protocol: str, dealer: str | None) -> None:
    """Raise ValueError unless ``preprocessing`` is None or a mode the protocol's correlated source supports."""
    if preprocessing is None:
        return
    if preprocessing not in PREPROCESSING_MODES:
        raise ValueError(f"preprocessing must be None or one of {PREPROCESSING_MODES}, got {preprocessing!r}")
    kind = registry.get(protocol).kind(dealer)
    if not kind.preprocessing:
        able = [f"{name} (dealer={k.name!r})" for name, spec in registry.protocols().items()
                for k in spec.correlated if k.preprocessing]
        raise ValueError(f"preprocessing={preprocessing!r} does not apply to protocol {protocol!r} with "
                         f"dealer={kind.name!r}: it has no source that fetches its material ahead; it applies to "
                         f"{', '.join(able)}")


def seed_bytes(seed: int | str | bytes | None) -> bytes | None:
    """Normalise a debugging seed to bytes (None stays None)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, str, bytes)):
        raise TypeError(f"seed must be an int, str or bytes, got {type(seed).__name__}")
    raw = seed if isinstance(seed, bytes) else str(seed).encode()
    return hashlib.sha256(b"smpc-seed" + raw).digest()


def launch(
    fn: Callable,
    parties: int = 2,
    protocol: str = "additive",
    transport: str = "local",
    *,
    frac_bits: int = DEFAULT_FRAC_BITS,
    timeout: float = 60.0,
    seed: int | str | bytes | None = None,
    dealer: str | None = None,
    dealer_key_bits: int | None = None,
    tls: TlsConfig | None = None,
    max_message_bytes: int = DEFAULT_MAX_PAYLOAD,
    network: Network | str | None = None,
    comparisons: str | None = None,
    preprocessing: str | None = None,
) -> RunReport:
    """Like :func:`run`, but return a :class:`RunReport` with every party's and the dealer's stats."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose one of {TRANSPORTS}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(frac_bits, int) or not 0 < frac_bits <= 30:
        raise ValueError(f"frac_bits must be an integer in 1..30, got {frac_bits!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    chosen = make_protocol(protocol, parties, dealer, dealer_key_bits, comparisons)
    check_preprocessing(preprocessing, protocol, dealer)
    options = PartyOptions(frac_bits=frac_bits, timeout=float(timeout), seed=seed_bytes(seed),
                           max_payload=int(max_message_bytes), network=network_of(network),
                           preprocessing=preprocessing)
    return launch_endpoints(fn, parties, chosen, transport, options, tls)


def run(
    fn: Callable,
    parties: int = 2,
    protocol: str = "additive",
    transport: str = "local",
    **options: Any,
) -> list:
    """Call ``fn(party)`` once per party and return the results in rank order.

    ``transport="local"`` runs the parties (and the dealer) as threads of this process;
    ``transport="tcp"`` runs each as its own process connected over loopback TCP, which
    needs ``fn`` to be picklable by reference (a module-level function; in a script,
    keep the call under ``if __name__ == "__main__":``). Options: ``frac_bits`` (16),
    ``timeout`` (60 s, per receive), ``seed`` (reproducible keys: INSECURE, debugging
    only), ``dealer`` (where correlated randomness comes from, one of the protocol's kinds in
    :func:`smpc.protocols`; None: its default. For "additive": "trusted", a third endpoint
    deals it, or "paillier", two parties make their triples and truncation pairs with
    Paillier, see :mod:`smpc.mpc.correlated.paillier`), ``dealer_key_bits``
    (the Paillier modulus, 2048), ``network`` (local transport only: ``"lan"``, ``"wan"`` or a
    :class:`smpc.Network`; every message then arrives when that network would deliver it, see
    :mod:`smpc.net.network`), ``comparisons`` (``"fss"``: with ``protocol="additive"``, two parties and the
    trusted dealer, every comparison, ReLU and max opens x + r, evaluates the dealer's one-bit DCF keys and opens
    one bit per element: 2 rounds, see :mod:`smpc.mpc.fss`), ``preprocessing`` (``"ahead"``: every party first
    runs ``fn`` once as a planning pass that fetches all the correlated randomness it will need, with no online
    message moving, then runs it online with that material at hand; ``party.stats["preprocessing_seconds"]`` is
    the pass's wall time, see :mod:`smpc.mpc.correlated.preprocessed`), ``tls`` (a :class:`TlsConfig`, tcp only),
    ``max_message_bytes``. Raises :class:`smpc.PartyFailedError` if any party raised.
    """
    return launch(fn, parties, protocol, transport, **options).results


def protocols() -> Mapping[str, ProtocolSpec]:
    """Every registered protocol: name -> :class:`~smpc.mpc.registry.ProtocolSpec` (party counts, correlated
    sources and their dealers, security model, ring width, unsupported operations). Read-only."""
    return registry.protocols()

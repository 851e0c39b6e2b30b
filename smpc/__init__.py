"""smpc: privacy-preserving computation on numpy (secret sharing, Paillier, federated learning).

Start with :func:`smpc.run`; the layers are ``smpc.ring`` (Z_2^64 arithmetic),
``smpc.net`` (parties and transports) and ``smpc.mpc`` (protocols).
"""

from smpc.api import launch, protocols, run
from smpc.mpc.cost import cost
from smpc.mpc.tensor import concatenate, stack, where
from smpc.exceptions import (
    FixedPointPrecisionWarning,
    MacCheckError,
    PartyFailedError,
    PeerError,
    PeerTimeoutError,
    ProtocolError,
    SmpcError,
    WireFormatError,
)
from smpc.net.launch import RunReport
from smpc.net.network import Network
from smpc.net.party import Party
from smpc.net.tcp import TlsConfig

__version__ = "0.1.0"

__all__ = [
    "FixedPointPrecisionWarning",
    "MacCheckError",
    "Network",
    "Party",
    "PartyFailedError",
    "PeerError",
    "PeerTimeoutError",
    "ProtocolError",
    "RunReport",
    "SmpcError",
    "TlsConfig",
    "WireFormatError",
    "concatenate",
    "cost",
    "launch",
    "protocols",
    "run",
    "stack",
    "where",
]
